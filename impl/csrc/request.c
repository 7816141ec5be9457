/*
 * request.c — the request engine: capsule parsing, the request state machine
 * (one switch, DESIGN 5.3), the queues requests wait in, completion handling
 * and command execution.
 *
 * Resources a request acquires, and the one place each is released:
 *   request slot + receive WR ... at NEW            -> req_release (recv reposted at SEND)
 *   shared data buffers ......... at NEED_BUFFER    -> req_release
 *   data WRs (posted+remainder) . at NEED_BUFFER    -> req_release
 *   read depth .................. at each READ post -> its READ completion
 *   send depth .................. at the SEND post  -> the SEND completion
 */
#include "nrt_internal.h"
#include <string.h>

static void queue_enter(struct request *r, struct link *q, uint8_t which)
{
    r->queue = which;
    list_push_tail(q, &r->qlink);
}

static void queue_leave(struct request *r)
{
    if (r->queue != NRT_QUEUE_NONE) {
        list_unlink(&r->qlink);
        r->queue = NRT_QUEUE_NONE;
    }
}

static bool is_head(struct link *q, struct request *r) { return q->next == &r->qlink; }

/* ---- parsing (DESIGN 5.7: every malformed capsule gets its status) -------------- */

static bool keyed(const struct nrt_sgl_desc *d)
{
    return d->type == NRT_SGL_TYPE_KEYED_DATA &&
           (d->subtype == NRT_SGL_SUBTYPE_ADDRESS || d->subtype == NRT_SGL_SUBTYPE_INVALIDATE);
}

static uint16_t parse_sgl(struct nrt_transport *t, struct request *r)
{
    const struct nrt_capsule *cap = r->cap;
    const struct nrt_sgl_desc *sgl = &cap->sgl;
    uint64_t total = 0;
    switch (sgl->type) {
    case NRT_SGL_TYPE_KEYED_DATA:
        if (!keyed(sgl))
            return NRT_SC_SGL_DESC_TYPE_INVALID;
        r->desc[0] = *sgl;
        r->ndesc = 1;
        total = sgl->length;
        break;
    case NRT_SGL_TYPE_DATA_BLOCK: {
        const struct host_slot *hs = r->recv->slot;
        if (sgl->subtype != NRT_SGL_SUBTYPE_OFFSET)
            return NRT_SC_SGL_DESC_TYPE_INVALID;
        if (r->xfer != 1)
            return NRT_SC_INVALID_FIELD;   /* in-capsule data only goes host to controller */
        if (sgl->addr > hs->icd_len)
            return NRT_SC_SGL_OFFSET_INVALID;
        if (sgl->length == 0 || sgl->addr + sgl->length > hs->icd_len)
            return NRT_SC_DATA_SGL_LENGTH_INVALID;
        r->icd = 1;
        r->icd_data = hs->icd + sgl->addr;
        r->length = sgl->length;
        return NRT_SC_SUCCESS;
    }
    case NRT_SGL_TYPE_LAST_SEGMENT: {
        uint32_t max = t->o.max_sgl_descriptors;
        if (sgl->subtype != NRT_SGL_SUBTYPE_OFFSET)
            return NRT_SC_SGL_DESC_TYPE_INVALID;
        if (cap->ndesc == 0 || cap->ndesc > max)
            return NRT_SC_INVALID_NUM_SGL_DESC;
        if (sgl->length != cap->ndesc * 16)
            return NRT_SC_INVALID_SGL_SEG_DESC;
        for (uint32_t i = 0; i < cap->ndesc; i++) {
            if (!keyed(&cap->list[i]))
                return NRT_SC_SGL_DESC_TYPE_INVALID;
            if (cap->list[i].length == 0)
                return NRT_SC_DATA_SGL_LENGTH_INVALID;
            r->desc[i] = cap->list[i];
            total += cap->list[i].length;
        }
        r->ndesc = cap->ndesc;
        break;
    }
    default:
        return NRT_SC_SGL_DESC_TYPE_INVALID;
    }
    if (total == 0 || total > t->o.max_io_size)
        return NRT_SC_DATA_SGL_LENGTH_INVALID;
    r->length = (uint32_t)total;
    return NRT_SC_SUCCESS;
}

static struct namespace *ctrlr_ns(struct nrt_transport *t, struct qpair *qp, uint32_t nsid)
{
    struct subsystem *s = &t->subsystems[qp->ctrlr->subsystem];
    return nsid >= 1 && nsid <= s->num_ns ? &s->ns[nsid - 1] : NULL;
}

static uint16_t parse(struct nrt_transport *t, struct request *r)
{
    const struct nrt_capsule *cap = r->cap;
    struct qpair *qp = r->qp;
    r->xfer = 0;
    r->length = 0;
    r->ndesc = 0;
    r->icd = 0;
    r->ns = NULL;
    if (cap->opcode == NRT_OPC_FABRICS) {
        switch (cap->fctype) {
        case NRT_FCTYPE_CONNECT:
            return qp->state == NRT_QP_CONNECTING ? NRT_SC_SUCCESS
                                                  : NRT_SC_COMMAND_SEQUENCE_ERROR;
        case NRT_FCTYPE_PROPERTY_GET:
        case NRT_FCTYPE_PROPERTY_SET:
            if (qp->state == NRT_QP_CONNECTING)
                return NRT_SC_COMMAND_SEQUENCE_ERROR;
            return qp->qid == 0 ? NRT_SC_SUCCESS : NRT_SC_INVALID_OPCODE;
        default:
            return NRT_SC_INVALID_OPCODE;
        }
    }
    if (qp->state == NRT_QP_CONNECTING)
        return NRT_SC_COMMAND_SEQUENCE_ERROR;
    bool admin = qp->qid == 0;
    switch (cap->opcode) {
    case NRT_OPC_IDENTIFY: case NRT_OPC_KEEP_ALIVE: case NRT_OPC_ABORT:
        if (!admin)
            return NRT_SC_INVALID_OPCODE;
        break;
    case NRT_OPC_FLUSH: case NRT_OPC_WRITE: case NRT_OPC_READ:
        if (admin)
            return NRT_SC_INVALID_OPCODE;
        break;
    default:
        return NRT_SC_INVALID_OPCODE;
    }
    r->xfer = cap->opcode & 3;
    if (r->xfer) {
        uint16_t sc = parse_sgl(t, r);
        if (sc)
            return sc;
    }
    switch (cap->opcode) {
    case NRT_OPC_IDENTIFY: {
        uint32_t cns = cap->cdw10 & 0xFF;
        if (cns == 0 && !ctrlr_ns(t, qp, cap->nsid))
            return NRT_SC_INVALID_NAMESPACE;
        if (cns > 1)
            return NRT_SC_INVALID_FIELD;
        if (r->length > 4096)
            return NRT_SC_DATA_SGL_LENGTH_INVALID;
        break;
    }
    case NRT_OPC_FLUSH: case NRT_OPC_WRITE: case NRT_OPC_READ: {
        struct namespace *ns = ctrlr_ns(t, qp, cap->nsid);
        if (!ns)
            return NRT_SC_INVALID_NAMESPACE;
        if (!ns->ready)
            return NRT_SC_NAMESPACE_NOT_READY;
        r->ns = ns;
        if (cap->opcode == NRT_OPC_FLUSH)
            break;
        if (cap->slba >= ns->num_blocks || (uint64_t)cap->nlb + 1 > ns->num_blocks - cap->slba)
            return NRT_SC_LBA_OUT_OF_RANGE;
        if (((uint64_t)cap->nlb + 1) * ns->block_size != r->length)
            return NRT_SC_DATA_SGL_LENGTH_INVALID;
        break;
    }
    default:
        break;
    }
    return NRT_SC_SUCCESS;
}

/* ---- data WRs: one per descriptor, another every max_sge buffer pieces ------------ */

/* Fill the request's WRs (wr_count() of them) with their remote and local ranges. */

static void wr_layout(struct nrt_transport *t, struct request *r)
{
    uint32_t ius = t->o.io_unit_size, n = 0, off = 0;
    for (uint32_t d = 0; d < r->ndesc; d++) {
        uint32_t remaining = r->desc[d].length;
        uint64_t raddr = r->desc[d].addr;
        while (remaining) {
            uint32_t len = 0, pieces = 0;
            while (remaining && pieces < t->o.max_sge) {
                uint32_t room = ius - (off + len) % ius;
                uint32_t piece = remaining < room ? remaining : room;
                len += piece;
                remaining -= piece;
                pieces++;
            }
            struct data_wr *wr = &t->wrs[r->wrs[n++]];
            wr->wire.kind = r->xfer == 1 ? WIRE_READ : WIRE_WRITE;
            wr->req = r;
            wr->raddr = raddr;
            wr->rkey = r->desc[d].key;
            wr->data_off = off;
            wr->len = len;
            off += len;
            raddr += len;
        }
    }
}

/* A WR handed out while a request still owns it means the pool holds it twice (a double
 * put).  Such a chain is refused rather than posting one WR for two requests, which would
 * corrupt the fabric's queues; the duplicate stays in the pool for the audit to report. */
static bool wrs_claim(struct nrt_transport *t, struct request *r)
{
    for (uint32_t i = 0; i < r->nwrs; i++) {
        struct data_wr *wr = &t->wrs[r->wrs[i]];
        if (wr->req) {
            while (i--)
                t->wrs[r->wrs[i]].req = NULL;
            return false;
        }
        wr->req = r;
    }
    return true;
}

/* What wr_layout() would count, in O(descriptors): a descriptor spanning p buffer
 * pieces takes ceil(p / max_sge) WRs. */
static uint32_t wr_count(const struct nrt_transport *t, const struct request *r)
{
    uint32_t ius = t->o.io_unit_size, n = 0, off = 0;
    for (uint32_t d = 0; d < r->ndesc; d++) {
        uint32_t len = r->desc[d].length;
        uint32_t pieces = (off + len - 1) / ius - off / ius + 1;
        n += (pieces + t->o.max_sge - 1) / t->o.max_sge;
        off += len;
    }
    return n;
}

static bool acquire_data(struct nrt_transport *t, struct request *r)
{
    uint32_t g = r->qp->group;
    uint32_t nbufs = (r->length + t->o.io_unit_size - 1) / t->o.io_unit_size;
    uint32_t nwrs = wr_count(t, r);
    if (!pool_get(&t->wr_pool, g, r->wrs, nwrs))
        return false;
    r->nwrs = nwrs;   /* the request links its WR chain from here on */
    bool claimed = wrs_claim(t, r);
    if (!claimed || !pool_get(&t->buf_pool, g, r->bufs, nbufs)) {
        for (uint32_t i = 0; claimed && i < nwrs; i++)
            t->wrs[r->wrs[i]].req = NULL;
        pool_put(&t->wr_pool, g, r->wrs, nwrs);
        /* Defect pool_double_put (SPDK issue 2541, fixed by 7fbda6d916): the WRs went
         * back to the pool on a buffer shortage but the request kept linking them, so
         * a forced completion (qpair error) puts them a second time. */
        if (!(t->o.defects & NRT_DEFECT_POOL_DOUBLE_PUT))
            r->nwrs = 0;
        return false;
    }
    r->nbufs = nbufs;
    r->wrs_posted = 0;
    r->wrs_outstanding = 0;
    wr_layout(t, r);
    return true;
}

/* ---- posting ------------------------------------------------------------------------ */

/* A depth counter is raised before the post and given back if the post fails. */
static void post_failed(struct nrt_transport *t, uint32_t *depth, uint32_t n)
{
    /* Defect post_fail_counter_leak (SPDK PR 224): the read/send depth taken for a
     * post was not given back when the post failed; after enough failures the qpair
     * stops serving. */
    if (!(t->o.defects & NRT_DEFECT_POST_FAIL_COUNTER_LEAK))
        *depth -= n;
}

static bool post_reads(struct nrt_transport *t, struct request *r)
{
    struct qpair *qp = r->qp;
    uint32_t room = qp->max_read_depth - qp->cur_read_depth;
    uint32_t n = r->nwrs - r->wrs_posted;
    if (n > room)
        n = room;   /* the rest stays held, unposted, until reads complete */
    if (!n)
        return false;
    qp->cur_read_depth += n;
    if (!qp_post_allowed(t, qp)) {
        post_failed(t, &qp->cur_read_depth, n);
        return false;
    }
    for (uint32_t i = 0; i < n; i++)
        list_push_tail(&qp->t2h, &t->wrs[r->wrs[r->wrs_posted + i]].wire.link);
    r->wrs_posted += n;
    r->wrs_outstanding += n;
    t->progress++;
    if (qp->cur_read_depth > qp->max_read_seen)
        qp->max_read_seen = qp->cur_read_depth;
    return true;
}

/* RDMA WRITEs (if any) and the response SEND, in one post. */
static bool post_response(struct nrt_transport *t, struct request *r, bool with_data)
{
    struct qpair *qp = r->qp;
    uint32_t n = (with_data ? r->nwrs : 0) + 1;
    if (qp->cur_send_depth + n > qp->max_send_depth)
        return false;
    qp->cur_send_depth += n;
    if (!qp_post_allowed(t, qp)) {
        post_failed(t, &qp->cur_send_depth, n);
        return false;
    }
    if (with_data) {
        for (uint32_t i = 0; i < r->nwrs; i++)
            list_push_tail(&qp->t2h, &t->wrs[r->wrs[i]].wire.link);
        r->wrs_posted = r->nwrs;
    }
    list_push_tail(&qp->t2h, &r->send.link);
    t->progress++;
    r->send_wrs = n;
    if (qp->cur_send_depth > qp->max_send_seen)
        qp->max_send_seen = qp->cur_send_depth;
    /* the capsule has been consumed: its receive goes back with the response */
    if ((t->o.defects & NRT_DEFECT_RECV_NOT_RELEASED) && r->status != NRT_SC_SUCCESS) {
        /* Defect recv_not_released (SPDK issue 2937, fixed by 470cee22fb): a request
         * completed with an error status never re-posted its receive buffer. */
        r->recv->slot = NULL;
        r->recv->state = RECV_IDLE;
    } else {
        recv_repost(qp, r->recv);
    }
    r->recv = NULL;
    return true;
}

/* ---- execution ----------------------------------------------------------------------- */

static void identify(struct nrt_transport *t, struct request *r)
{
    uint8_t page[4096];
    memset(page, 0, sizeof(page));
    struct qpair *qp = r->qp;
    if ((r->cap->cdw10 & 0xFF) == 1) {
        uint16_t cntlid = (uint16_t)(qp->ctrlr - t->ctrlrs + 1);
        page[0] = 0x1d;   /* vendor id, little endian */
        page[1] = 0x1d;
        memcpy(page + 24, "nrt compact target", 18);
        memcpy(page + 78, &cntlid, 2);
        uint32_t mdts_units = t->o.max_io_size / 4096;
        uint8_t mdts = 0;
        while ((1u << (mdts + 1)) <= mdts_units)
            mdts++;
        page[77] = mdts;
        uint32_t nn = t->subsystems[qp->ctrlr->subsystem].num_ns;
        memcpy(page + 516, &nn, 4);
    } else {
        struct namespace *ns = ctrlr_ns(t, qp, r->cap->nsid);
        memcpy(page + 0, &ns->num_blocks, 8);
        memcpy(page + 8, &ns->num_blocks, 8);
        memcpy(page + 16, &ns->num_blocks, 8);
        page[130] = ns->block_size == 4096 ? 12 : 9;   /* LBA format 0: log2 size */
    }
    req_copy_bufs(t, r, 0, page, r->length, true);
}

static uint16_t connect(struct nrt_transport *t, struct request *r)
{
    const struct nrt_capsule *cap = r->cap;
    struct qpair *qp = r->qp;
    if (cap->subsystem >= t->num_subsystems || cap->sqsize + 1 > qp->depth || cap->sqsize == 0)
        return NRT_SC_CONNECT_INVALID_PARAM;
    struct controller *c;
    if (cap->qid == 0) {
        uint32_t i = 0;
        while (i < t->o.max_qpairs && (t->ctrlrs[i].live || t->ctrlrs[i].refs))
            i++;
        if (i == t->o.max_qpairs)
            return NRT_SC_CONNECT_INVALID_PARAM;
        c = &t->ctrlrs[i];
        *c = (struct controller){.live = true, .subsystem = cap->subsystem, .admin = qp,
                                 .last_keep_alive = t->now,
                                 .kato = cap->kato ? cap->kato : t->o.keep_alive_ticks};
    } else {
        if (cap->cntlid == 0 || cap->cntlid > t->o.max_qpairs || cap->qid > t->o.max_qpairs)
            return NRT_SC_CONNECT_INVALID_PARAM;   /* unknown controller or qid out of range */
        c = &t->ctrlrs[cap->cntlid - 1];
        if (!c->live || c->subsystem != cap->subsystem)
            return NRT_SC_CONNECT_INVALID_PARAM;
        for (uint32_t i = 0; i < t->o.max_qpairs; i++) {
            struct qpair *o = t->qpairs[i];
            if (o && o != qp && o->ctrlr == c && o->qid == cap->qid && o->state != NRT_QP_ERROR)
                return NRT_SC_CONNECT_INVALID_PARAM;   /* qid already connected */
        }
    }
    qp->ctrlr = c;
    c->refs++;
    qp->qid = cap->qid;
    qp->state = NRT_QP_ACTIVE;
    r->result = (uint64_t)(c - t->ctrlrs + 1);
    return NRT_SC_SUCCESS;
}

static uint16_t property(struct nrt_transport *t, struct request *r, bool set)
{
    struct controller *c = r->qp->ctrlr;
    uint32_t ofst = r->cap->cdw10;
    if (set) {
        if (ofst != 0x14)
            return NRT_SC_INVALID_FIELD;   /* only CC is writable */
        c->cc = (uint32_t)r->cap->value;
        return NRT_SC_SUCCESS;
    }
    switch (ofst) {
    case 0x00: r->result = (uint64_t)(t->o.max_queue_depth - 1) | (1ull << 37); break;  /* CAP */
    case 0x08: r->result = 0x10400; break;                                              /* VS */
    case 0x14: r->result = c->cc; break;                                                /* CC */
    case 0x1C: r->result = c->cc & 1; break;                                            /* CSTS */
    default: return NRT_SC_INVALID_FIELD;
    }
    return NRT_SC_SUCCESS;
}

/* Block-device IO: the bytes move when the device completes. */
static void bdev_do_io(struct nrt_transport *t, struct request *r, uint16_t status)
{
    if (status == NRT_SC_SUCCESS && t->bdev_err_count) {
        t->bdev_err_count--;
        status = t->bdev_err_status;
    }
    r->status = status;
    if (status != NRT_SC_SUCCESS || r->cap_opcode == NRT_OPC_FLUSH)
        return;
    uint8_t *media = r->ns->data + r->slba * r->ns->block_size;
    if (r->cap_opcode == NRT_OPC_READ)
        req_copy_bufs(t, r, 0, media, r->length, true);
    else if (r->icd)
        memcpy(media, r->icd_data, r->length);
    else
        req_copy_bufs(t, r, 0, media, r->length, false);
}

void bdev_finish(struct nrt_transport *t, struct request *r, uint16_t status)
{
    bdev_do_io(t, r, status);
    req_set_state(t, r, NRT_REQ_EXECUTED);
    req_process(t, r);
}

static void execute(struct nrt_transport *t, struct request *r)
{
    const struct nrt_capsule *cap = r->cap;
    switch (cap->opcode) {
    case NRT_OPC_READ: case NRT_OPC_WRITE: case NRT_OPC_FLUSH:
        if (t->bdev_auto) {
            bdev_do_io(t, r, NRT_SC_SUCCESS);
            req_set_state(t, r, NRT_REQ_EXECUTED);
        } else {
            list_push_tail(&t->bdev_queue, &r->bdev_link);
            t->bdev_count++;
        }
        return;
    case NRT_OPC_FABRICS:
        if (cap->fctype == NRT_FCTYPE_CONNECT)
            r->status = connect(t, r);
        else
            r->status = property(t, r, cap->fctype == NRT_FCTYPE_PROPERTY_SET);
        break;
    case NRT_OPC_IDENTIFY:
        identify(t, r);
        break;
    case NRT_OPC_KEEP_ALIVE:
        r->qp->ctrlr->last_keep_alive = t->now;
        break;
    case NRT_OPC_ABORT:
        r->result = 1;   /* command not aborted */
        break;
    default:
        break;
    }
    req_set_state(t, r, NRT_REQ_EXECUTED);
}

/* ---- the request state machine ----------------------------------------------------------- */

/* The qpair failed: a request not waiting on a completion is finished now;
 * one with posted work waits for the flush (or the block device). */
static void req_abort_step(struct nrt_transport *t, struct request *r)
{
    switch (r->state) {
    case NRT_REQ_TRANSFER_TO_CTRLR_PENDING:
        /* Defect stale_read_queue_entry (SPDK 4e45c5636b): a request aborted while
         * partially posted was not taken off the pending RDMA-READ queue (only marked
         * off it); released once its posted READs flush, it is found there again by the
         * drain and completed a second time. */
        if ((t->o.defects & NRT_DEFECT_STALE_READ_QUEUE_ENTRY) && r->wrs_posted)
            r->queue = NRT_QUEUE_NONE;
        else
            queue_leave(r);
        req_set_state(t, r, r->wrs_outstanding ? NRT_REQ_TRANSFERRING_H2C : NRT_REQ_COMPLETED);
        break;
    case NRT_REQ_TRANSFERRING_H2C:
        if (!r->wrs_outstanding)
            req_set_state(t, r, NRT_REQ_COMPLETED);
        break;
    case NRT_REQ_NEW: case NRT_REQ_NEED_BUFFER: case NRT_REQ_READY_TO_EXECUTE:
    case NRT_REQ_EXECUTED: case NRT_REQ_TRANSFER_TO_HOST_PENDING: case NRT_REQ_READY_TO_COMPLETE:
        queue_leave(r);
        req_set_state(t, r, NRT_REQ_COMPLETED);
        break;
    case NRT_REQ_COMPLETED:
        req_release(t, r);
        break;
    default:   /* EXECUTING, TRANSFERRING_C2H, COMPLETING: a completion will come */
        break;
    }
}

void req_process(struct nrt_transport *t, struct request *r)
{
    struct qpair *qp = r->qp;
    struct poll_group *g = &t->groups[qp->group];
    uint8_t prev;
    do {
        prev = r->state;
        if (qp->state != NRT_QP_ACTIVE && qp->state != NRT_QP_CONNECTING) {
            req_abort_step(t, r);
            continue;
        }
        switch (r->state) {
        case NRT_REQ_FREE:
            break;
        case NRT_REQ_NEW:
            r->status = parse(t, r);
            if (r->status != NRT_SC_SUCCESS) {
                r->xfer = 0;   /* an error response carries no data */
                queue_enter(r, &qp->pending_send, NRT_QUEUE_PENDING_SEND);
                req_set_state(t, r, NRT_REQ_READY_TO_COMPLETE);
            } else if ((r->xfer == 0 || r->icd) &&
                       !(t->o.defects & NRT_DEFECT_ICD_WAITS_FOR_BUFFER)) {
                req_set_state(t, r, NRT_REQ_READY_TO_EXECUTE);
            } else {
                /* Defect icd_waits_for_buffer (SPDK issue 3646, fixed by f4c10e1a8e and
                 * 7251e4c26c): commands that need no buffer (in-capsule data, fabrics,
                 * admin) were queued for buffers too, behind IO waiting for them. */
                queue_enter(r, &g->pending_buf, NRT_QUEUE_PENDING_BUF);
                req_set_state(t, r, NRT_REQ_NEED_BUFFER);
            }
            break;
        case NRT_REQ_NEED_BUFFER:
            if (!is_head(&g->pending_buf, r) || (!r->icd && !acquire_data(t, r)))
                break;
            queue_leave(r);
            if (r->xfer == 1 && !r->icd) {
                queue_enter(r, &qp->pending_read, NRT_QUEUE_PENDING_READ);
                req_set_state(t, r, NRT_REQ_TRANSFER_TO_CTRLR_PENDING);
            } else {
                req_set_state(t, r, NRT_REQ_READY_TO_EXECUTE);
            }
            break;
        case NRT_REQ_TRANSFER_TO_CTRLR_PENDING:
            if (!is_head(&qp->pending_read, r) || !post_reads(t, r))
                break;
            if (r->wrs_posted == r->nwrs) {
                queue_leave(r);
                req_set_state(t, r, NRT_REQ_TRANSFERRING_H2C);
            }
            break;
        case NRT_REQ_TRANSFERRING_H2C:
            if (r->wrs_outstanding == 0)
                req_set_state(t, r, NRT_REQ_READY_TO_EXECUTE);
            break;
        case NRT_REQ_READY_TO_EXECUTE:
            req_set_state(t, r, NRT_REQ_EXECUTING);
            execute(t, r);
            break;
        case NRT_REQ_EXECUTING:
            break;   /* the block device completes it */
        case NRT_REQ_EXECUTED:
            if (r->xfer == 2 && r->status == NRT_SC_SUCCESS) {
                queue_enter(r, &qp->pending_write, NRT_QUEUE_PENDING_WRITE);
                req_set_state(t, r, NRT_REQ_TRANSFER_TO_HOST_PENDING);
            } else {
                queue_enter(r, &qp->pending_send, NRT_QUEUE_PENDING_SEND);
                req_set_state(t, r, NRT_REQ_READY_TO_COMPLETE);
            }
            break;
        case NRT_REQ_TRANSFER_TO_HOST_PENDING:
            if (!is_head(&qp->pending_write, r) || !post_response(t, r, true))
                break;
            queue_leave(r);
            req_set_state(t, r, NRT_REQ_TRANSFERRING_C2H);
            break;
        case NRT_REQ_READY_TO_COMPLETE:
            if (!is_head(&qp->pending_send, r) || !post_response(t, r, false))
                break;
            queue_leave(r);
            req_set_state(t, r, NRT_REQ_COMPLETING);
            break;
        case NRT_REQ_TRANSFERRING_C2H:
        case NRT_REQ_COMPLETING:
            break;   /* the SEND completion moves it on */
        case NRT_REQ_COMPLETED:
            req_release(t, r);
            break;
        }
    } while (r->state != prev);
}

/* The one release path: everything a request can hold goes back here. */
void req_release(struct nrt_transport *t, struct request *r)
{
    struct qpair *qp = r->qp;
    uint32_t g = qp->group;
    queue_leave(r);
    if (link_linked(&r->send.link))
        list_unlink(&r->send.link);
    if (link_linked(&r->send_cqe.link)) {
        list_unlink(&r->send_cqe.link);
        qp->cqes_in_cq--;
    }
    for (uint32_t i = 0; i < r->nwrs; i++) {
        struct data_wr *wr = &t->wrs[r->wrs[i]];
        if (wr->req != r)
            continue;   /* not ours (only a defect links WRs it does not own) */
        if (link_linked(&wr->wire.link))
            list_unlink(&wr->wire.link);
        if (link_linked(&wr->cqe.link)) {
            list_unlink(&wr->cqe.link);
            qp->cqes_in_cq--;
        }
        wr->req = NULL;
    }
    pool_put(&t->buf_pool, g, r->bufs, r->nbufs);
    uint32_t nput = r->nwrs;
    if ((t->o.defects & NRT_DEFECT_LEAK_REMAINING_WRS) && r->xfer == 1 && r->wrs_posted &&
        r->wrs_posted < r->nwrs) {
        /* Defect leak_remaining_wrs (SPDK issue 3290, fixed by 7068328493): an
         * abnormal completion freed only the posted WR chain, not the remainder
         * still waiting for read depth. */
        nput = r->wrs_posted;
    }
    pool_put(&t->wr_pool, g, r->wrs, nput);
    r->nbufs = r->wrs_posted = r->wrs_outstanding = 0;
    /* Defect stale_transfer_wr (SPDK issue 3129, fixed by 31beb3ed64): the transfer-WR
     * count was not cleared on free, so the next free of this slot puts the same WRs
     * again. */
    if (!(t->o.defects & NRT_DEFECT_STALE_TRANSFER_WR))
        r->nwrs = 0;
    if (r->recv) {
        recv_repost(qp, r->recv);
        r->recv = NULL;
    }
    if (qp->cur_send_depth >= r->send_wrs)
        qp->cur_send_depth -= r->send_wrs;
    r->send_wrs = 0;
    req_set_state(t, r, NRT_REQ_FREE);
    if (!link_linked(&r->flink))   /* a slot released twice (a defect) is listed once */
        list_push_tail(&qp->free_reqs, &r->flink);
    qp->slots_used--;
}

/* ---- queues ----------------------------------------------------------------------------- */

void qp_start_incoming(struct nrt_transport *t, struct qpair *qp)
{
    while (!list_empty(&qp->incoming) && !list_empty(&qp->free_reqs)) {
        struct recv *rv = container_of(qp->incoming.next, struct recv, link);
        list_unlink(&rv->link);
        rv->state = RECV_HELD;
        struct request *r = container_of(qp->free_reqs.next, struct request, flink);
        list_unlink(&r->flink);
        qp->slots_used++;
        r->recv = rv;
        r->cap = &rv->slot->cap;
        r->cap_opcode = r->cap->opcode;
        r->cid = r->cap->cid;
        r->slba = r->cap->slba;
        r->result = 0;
        r->status = 0;
        qp->sqhd = (uint16_t)((qp->sqhd + 1) % qp->depth);
        t->groups[qp->group].stats.requests++;
        req_set_state(t, r, NRT_REQ_NEW);
        req_process(t, r);
    }
}

static void process_queue(struct nrt_transport *t, struct link *q)
{
    struct link *head;
    while ((head = list_head(q))) {
        req_process(t, container_of(head, struct request, qlink));
        if (list_head(q) == head)
            break;   /* the head could not move on; FIFO order holds the rest */
    }
}

/* A failed qpair posts nothing more: whatever still waits on one of its pending queues
 * is completed now (SPDK's drain).  req_abort_step normally leaves these queues empty. */
static void drain_queue(struct nrt_transport *t, struct link *q)
{
    struct link *head;
    while ((head = list_head(q))) {
        struct request *r = container_of(head, struct request, qlink);
        list_unlink(head);
        r->queue = NRT_QUEUE_NONE;
        req_set_state(t, r, NRT_REQ_COMPLETED);
        req_process(t, r);
    }
}

void qp_process_pending(struct nrt_transport *t, struct qpair *qp)
{
    if (qp->state == NRT_QP_ERROR) {
        drain_queue(t, &qp->pending_read);
        drain_queue(t, &qp->pending_write);
        drain_queue(t, &qp->pending_send);
        return;
    }
    if (qp->state != NRT_QP_ACTIVE && qp->state != NRT_QP_CONNECTING)
        return;
    process_queue(t, &qp->pending_read);
    process_queue(t, &qp->pending_write);
    process_queue(t, &qp->pending_send);
}

void group_process_pending_buf(struct nrt_transport *t, struct poll_group *g)
{
    process_queue(t, &g->pending_buf);
}

/* ---- completions --------------------------------------------------------------------------- */

void cqe_handle(struct nrt_transport *t, struct cqe *c)
{
    struct qpair *qp = c->qp;
    switch (c->kind) {
    case CQE_RECV: {
        struct recv *rv = container_of(c, struct recv, cqe);
        if (c->status != WC_SUCCESS || qp->state == NRT_QP_ERROR) {
            rv->state = RECV_IDLE;
            rv->slot = NULL;
            if (c->status == WC_LOC_LEN_ERR)
                qp_set_error(t, qp);
            break;
        }
        rv->state = RECV_INCOMING;
        list_push_tail(&qp->incoming, &rv->link);
        break;
    }
    case CQE_READ: {
        struct data_wr *wr = container_of(c, struct data_wr, cqe);
        struct request *r = wr->req;
        r->wrs_outstanding--;
        qp->cur_read_depth--;
        if (c->status != WC_SUCCESS && c->status != WC_FLUSH_ERR)
            qp_set_error(t, qp);
        req_process(t, r);
        break;
    }
    case CQE_WRITE:   /* only errors complete an unsignaled WRITE */
        qp_set_error(t, qp);
        break;
    case CQE_SEND: {
        struct request *r = container_of(c, struct request, send_cqe);
        qp->cur_send_depth -= r->send_wrs;
        r->send_wrs = 0;
        if (c->status != WC_SUCCESS && c->status != WC_FLUSH_ERR)
            qp_set_error(t, qp);
        req_set_state(t, r, NRT_REQ_COMPLETED);
        req_process(t, r);
        break;
    }
    }
    if (!list_empty(&qp->incoming))
        qp_start_incoming(t, qp);
}
