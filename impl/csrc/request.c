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
 *   send depth .................. at each READ post -> its READ completion
 *                                 at the SEND post  -> the SEND completion
 *
 * The send depth is the QP's send queue (max_send_wr = max_send_depth): RDMA READs sit on
 * it as much as the WRITEs and SENDs do, so they count against it too.  Kept that way, the
 * provider never finds the send queue full, and a post is refused whole or taken whole.
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

/* A request waits on the queue of its state only when it cannot go on at once: its turn
 * comes when it heads the queue, or, not on it yet, finds it empty (it would head it).  Kept
 * that way, a request seen outside req_process in a waiting state is on that state's queue,
 * in arrival order, and one that never waited never touched a queue. */
static bool queue_turn(struct link *q, const struct request *r, uint8_t which)
{
    return r->queue == which ? q->next == &r->qlink : list_empty(q);
}

static void queue_wait(struct request *r, struct link *q, uint8_t which)
{
    if (r->queue != which)
        queue_enter(r, q, which);
}

/* ---- parsing: the transport's part of a capsule (NVMe base 4.4, NVMe-oF 2.1) ---------
 * The transport checks what it must to move the data: PSDT, the data direction and SGL1
 * (keyed data block, in-capsule data block, or a last segment of keyed descriptors in the
 * capsule).  Everything about the command itself is the controller emulation's. */

static bool keyed_ok(uint8_t type_subtype)
{
    uint8_t sub = type_subtype & 0xF;
    return type_subtype >> 4 == NVME_SGL_TYPE_KEYED_DATA &&
           (sub == NVME_SGL_SUBTYPE_ADDRESS || sub == NVME_SGL_SUBTYPE_INVALIDATE);
}

static uint16_t parse_sgl(struct nrt_transport *t, struct request *r)
{
    const union nvme_sgl_desc *sgl = &r->sqe->sgl1;
    uint32_t icd_len = r->recv->byte_len - NVMF_SQE_SIZE;
    const uint8_t *icd = r->recv->buf + NVMF_SQE_SIZE;
    uint64_t total = 0;
    uint8_t type = sgl->raw[15] >> 4, sub = sgl->raw[15] & 0xF;
    switch (type) {
    case NVME_SGL_TYPE_KEYED_DATA:
        if (!keyed_ok(sgl->raw[15]))
            return NRT_SC_SGL_DESC_TYPE_INVALID;
        r->desc[0].addr = sgl->keyed.address;
        r->desc[0].len = nvme_sgl_keyed_length(&sgl->keyed);
        r->desc[0].key = nvme_sgl_keyed_key(&sgl->keyed);
        if (r->desc[0].len == 0) {
            /* a zero-length data block transfers nothing (NVMe base 2.0, 4.4.1): hosts send
             * one for commands whose opcode has a direction but no data (Set Features);
             * the controller judges whether the command needed data */
            r->xfer = 0;
            return NRT_SC_SUCCESS;
        }
        r->ndesc = 1;
        total = r->desc[0].len;
        break;
    case NVME_SGL_TYPE_DATA_BLOCK: {
        uint64_t off = sgl->unkeyed.address;
        uint32_t len = sgl->unkeyed.length;
        if (sub != NVME_SGL_SUBTYPE_OFFSET)
            return NRT_SC_SGL_DESC_TYPE_INVALID;
        if (r->xfer != 1)
            return NRT_SC_INVALID_FIELD;   /* in-capsule data only goes host to controller */
        if (off > icd_len)
            return NRT_SC_SGL_OFFSET_INVALID;
        if (len == 0 || off + len > icd_len)
            return NRT_SC_DATA_SGL_LENGTH_INVALID;
        r->icd = 1;
        r->iov[0].iov_base = (void *)(icd + off);
        r->iov[0].iov_len = len;
        r->length = len;
        return NRT_SC_SUCCESS;
    }
    case NVME_SGL_TYPE_LAST_SEGMENT: {
        uint64_t off = sgl->unkeyed.address;
        uint32_t len = sgl->unkeyed.length;
        if (sub != NVME_SGL_SUBTYPE_OFFSET)
            return NRT_SC_SGL_DESC_TYPE_INVALID;
        if (len == 0 || len / 16 > t->o.max_sgl_descriptors)
            return NRT_SC_INVALID_NUM_SGL_DESC;
        if (len % 16)
            return NRT_SC_INVALID_SGL_SEG_DESC;
        if (off > icd_len || off + len > icd_len)
            return NRT_SC_SGL_OFFSET_INVALID;
        const union nvme_sgl_desc *list = (const union nvme_sgl_desc *)(icd + off);
        r->ndesc = len / 16;
        for (uint32_t i = 0; i < r->ndesc; i++) {
            if (!keyed_ok(list[i].raw[15]))
                return NRT_SC_SGL_DESC_TYPE_INVALID;
            r->desc[i].addr = list[i].keyed.address;
            r->desc[i].len = nvme_sgl_keyed_length(&list[i].keyed);
            r->desc[i].key = nvme_sgl_keyed_key(&list[i].keyed);
            if (r->desc[i].len == 0)
                return NRT_SC_DATA_SGL_LENGTH_INVALID;
            total += r->desc[i].len;
        }
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

static uint16_t parse(struct nrt_transport *t, struct request *r)
{
    const struct nvme_sqe *sqe = r->sqe;
    r->length = 0;
    r->ndesc = 0;
    r->icd = 0;
    r->xfer = (uint8_t)nvmf_cmd_xfer(sqe);
    /* NVMe-oF 1.1, 2.1: commands carry SGLs, PSDT 01b (10b is not meaningful over RDMA). */
    if ((sqe->fuse_psdt >> 6) != 1)
        return NRT_SC_INVALID_FIELD;
    if (r->xfer == 3)
        return NRT_SC_INVALID_FIELD;   /* bidirectional transfers are not supported */
    return r->xfer ? parse_sgl(t, r) : NRT_SC_SUCCESS;
}

/* ---- data WRs: one per descriptor, another every max_sge buffer pieces ------------ */

/* Fill the request's WRs (wr_count() of them): remote range, and local SGEs over its
 * buffers, one SGE per buffer piece, at most max_sge per WR. */

/* One descriptor within one io unit (a small IO): one buffer, one WR of one SGE. */
static bool one_piece(const struct nrt_transport *t, const struct request *r)
{
    return r->ndesc == 1 && r->desc[0].len <= t->o.io_unit_size;
}

static void wr_layout(struct nrt_transport *t, struct request *r)
{
    /* io_unit_size is a power of two (nrt_opts_validate): shifts and masks, no divisions */
    uint32_t ius = t->o.io_unit_size, mask = ius - 1, shift = t->ius_shift, n = 0, off = 0;
    uint32_t lkey = r->qp->dev->buf_mr->lkey, max_sge = t->o.max_sge;
    enum ibv_wr_opcode opcode = r->xfer == 1 ? IBV_WR_RDMA_READ : IBV_WR_RDMA_WRITE;
    unsigned int flags = r->xfer == 1 ? IBV_SEND_SIGNALED : 0;
    if (one_piece(t, r)) {   /* what the loops below give for it, without the loops */
        struct data_wr *wr = &t->wrs[r->wrs[0]];
        wr->sge[0].addr = (uintptr_t)(t->buf_arena + ((size_t)r->bufs[0] << shift));
        wr->sge[0].length = r->desc[0].len;
        wr->sge[0].lkey = lkey;
        wr->req = r;
        wr->wr.num_sge = 1;
        wr->wr.opcode = opcode;
        wr->wr.send_flags = flags;
        wr->wr.wr.rdma.remote_addr = r->desc[0].addr;
        wr->wr.wr.rdma.rkey = r->desc[0].key;
        wr->data_off = 0;
        wr->len = r->desc[0].len;
        return;
    }
    for (uint32_t d = 0; d < r->ndesc; d++) {
        uint32_t remaining = r->desc[d].len;
        uint64_t raddr = r->desc[d].addr;
        while (remaining) {
            struct data_wr *wr = &t->wrs[r->wrs[n++]];
            uint32_t len = 0, pieces = 0;
            while (remaining && pieces < max_sge) {
                uint32_t at = off + len, room = ius - (at & mask);
                uint32_t piece = remaining < room ? remaining : room;
                wr->sge[pieces].addr = (uintptr_t)(t->buf_arena +
                                                   ((size_t)r->bufs[at >> shift] << shift) +
                                                   (at & mask));
                wr->sge[pieces].length = piece;
                wr->sge[pieces].lkey = lkey;
                len += piece;
                remaining -= piece;
                pieces++;
            }
            wr->req = r;
            /* wr_id and sg_list were set when the transport was created, next is set
             * by post_chain before every post, and nothing writes the other fields: the
             * WR is the one a compound literal with these members would give */
            wr->wr.num_sge = (int)pieces;
            wr->wr.opcode = opcode;
            wr->wr.send_flags = flags;
            wr->wr.wr.rdma.remote_addr = raddr;
            wr->wr.wr.rdma.rkey = r->desc[d].key;
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
    if (one_piece(t, r))
        return 1;
    uint32_t shift = t->ius_shift, max_sge = t->o.max_sge, n = 0, off = 0;
    for (uint32_t d = 0; d < r->ndesc; d++) {
        uint32_t len = r->desc[d].len;
        uint32_t pieces = ((off + len - 1) >> shift) - (off >> shift) + 1;
        n += pieces <= max_sge ? 1 : (pieces + max_sge - 1) / max_sge;
        off += len;
    }
    return n;
}

static bool acquire_data(struct nrt_transport *t, struct request *r)
{
    uint32_t g = r->qp->group;
    uint32_t nbufs = (r->length + t->o.io_unit_size - 1) >> t->ius_shift;
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
    uint32_t ius = t->o.io_unit_size, shift = t->ius_shift;
    for (uint32_t i = 0; i < nbufs; i++) {
        r->iov[i].iov_base = t->buf_arena + ((size_t)r->bufs[i] << shift);
        r->iov[i].iov_len = i + 1 < nbufs ? ius : r->length - i * ius;
    }
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

/* The send-queue room r may take.  The head of the pending RDMA-WRITE queue needs room
 * for all its WRITEs and its SEND at once (up to the whole send queue); READs and SENDs
 * that take slots as they free would keep it waiting for ever under steady traffic.  So
 * while it waits, everyone else on the qpair gets only the room beyond what it needs: the
 * work in flight completes, the head goes out, and the others follow. */
static uint32_t send_room(struct qpair *qp, const struct request *r)
{
    uint32_t room = qp->cur_send_depth < qp->max_send_depth
                        ? qp->max_send_depth - qp->cur_send_depth : 0;
    struct link *head = list_head(&qp->pending_write);
    if (head && head != &r->qlink) {
        const struct request *w = container_of(head, struct request, qlink);
        uint32_t need = w->nwrs + 1;
        room = room > need ? room - need : 0;
    }
    return room;
}

/* Posts a chain of n data WRs (linked in order); on failure nothing was posted. */
static bool post_chain(struct nrt_transport *t, struct request *r, uint32_t first, uint32_t n,
                       struct ibv_send_wr *tail)
{
    for (uint32_t i = 0; i < n; i++)
        t->wrs[r->wrs[first + i]].wr.next =
            i + 1 < n ? &t->wrs[r->wrs[first + i + 1]].wr : tail;
    struct ibv_send_wr *head = n ? &t->wrs[r->wrs[first]].wr : tail;
    return qp_post_send(t, r->qp, head) == 0;
}

static bool post_reads(struct nrt_transport *t, struct request *r)
{
    struct qpair *qp = r->qp;
    uint32_t room = qp->max_read_depth - qp->cur_read_depth;
    uint32_t sq_room = send_room(qp, r);
    uint32_t n = r->nwrs - r->wrs_posted;
    if (room > sq_room)
        room = sq_room;
    if (n > room)
        n = room;   /* the rest stays held, unposted, until reads (or sends) complete */
    if (!n)
        return false;
    qp->cur_read_depth += n;
    qp->cur_send_depth += n;
    if (!post_chain(t, r, r->wrs_posted, n, NULL)) {
        post_failed(t, &qp->cur_read_depth, n);
        post_failed(t, &qp->cur_send_depth, n);
        return false;
    }
    r->wrs_posted += n;
    r->wrs_outstanding += n;
    qp->signaled_outstanding += n;
    t->progress++;
    if (qp->cur_read_depth > qp->max_read_seen)
        qp->max_read_seen = qp->cur_read_depth;
    if (qp->cur_send_depth > qp->max_send_seen)
        qp->max_send_seen = qp->cur_send_depth;
    return true;
}

/* The response CQE (NVMe base 4.6; the phase tag is reserved over fabrics). */
static void fill_response(struct request *r)
{
    struct qpair *qp = r->qp;
    *r->rsp = (struct nvme_cqe){
        .cdw0 = r->cmd.cdw0, .cdw1 = r->cmd.cdw1, .sqhd = qp->sqhd, .sqid = qp->emu.qid,
        .cid = r->cid, .status = NVME_CQE_STATUS(r->status, r->status && r->cmd.dnr)};
}

/* RDMA WRITEs (if any, unsignaled) and the response SEND (signaled), in one post. */
static bool post_response(struct nrt_transport *t, struct request *r, bool with_data)
{
    struct qpair *qp = r->qp;
    uint32_t nw = with_data ? r->nwrs : 0, n = nw + 1;
    if (n > send_room(qp, r))
        return false;   /* waits on its queue; the room it needs is kept for it */
    qp->cur_send_depth += n;
    fill_response(r);
    r->send_wr.next = NULL;
    if (!post_chain(t, r, 0, nw, &r->send_wr)) {
        post_failed(t, &qp->cur_send_depth, n);
        return false;
    }
    if (with_data)
        r->wrs_posted = r->nwrs;
    qp->signaled_outstanding++;
    t->progress++;
    r->send_wrs = n;
    if (qp->cur_send_depth > qp->max_send_seen)
        qp->max_send_seen = qp->cur_send_depth;
    /* the capsule has been consumed: its receive goes back with the response */
    if ((t->o.defects & NRT_DEFECT_RECV_NOT_RELEASED) && r->status != NRT_SC_SUCCESS) {
        /* Defect recv_not_released (SPDK issue 2937, fixed by 470cee22fb): a request
         * completed with an error status never re-posted its receive buffer. */
        r->recv->state = RECV_IDLE;
    } else {
        recv_repost(t, qp, r->recv);
    }
    r->recv = NULL;
    r->sqe = NULL;
    return true;
}

/* ---- execution: the controller emulation runs the command ------------------------------ */

static void execute(struct nrt_transport *t, struct request *r)
{
    struct qpair *qp = r->qp;
    /* The controller writes only the data it has (an Identify page, say) into a buffer the
     * SGL may make longer, and the whole SGL goes to the host: admin data is zeroed first
     * so that no stale bytes of an earlier request leak (SPDK zeroes admin data too).  An
     * NVM Read fills exactly its length. */
    if (r->xfer == 2 && qp->emu.qid == 0)
        for (uint32_t i = 0; i < r->nbufs; i++)
            memset(r->iov[i].iov_base, 0, r->iov[i].iov_len);
    r->cmd = (struct nvmf_emu_cmd){
        .sqe = r->sqe, .qp = &qp->emu, .iov = r->iov,
        .iovcnt = r->xfer ? (r->icd ? 1 : r->nbufs) : 0, .length = r->length, .cb_arg = r};
    if (nvmf_emu_exec(t->emu, &r->cmd) == NVMF_EMU_ASYNC) {
        r->in_bdev = 1;
        return;   /* the block device completes it: req_io_complete */
    }
    r->status = r->cmd.status;
    if (qp->state == NRT_QP_CONNECTING && qp->emu.connected)
        qp->state = NRT_QP_ACTIVE;
    req_move(t, r, NRT_REQ_EXECUTING, NRT_REQ_EXECUTED);
}

void req_io_complete(void *ctx, struct nvmf_emu_cmd *cmd)
{
    struct nrt_transport *t = ctx;
    struct request *r = cmd->cb_arg;
    r->in_bdev = 0;
    r->status = cmd->status;
    req_set_state(t, r, NRT_REQ_EXECUTED);
    struct qpair *qp = r->qp;
    req_process(t, r);
    if (qp->state == NRT_QP_DESTROYED)
        qpair_free(t, qp);   /* the IO outlived its qpair's teardown: finish it */
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
                r->cmd.dnr = true;
                req_move(t, r, NRT_REQ_NEW, NRT_REQ_READY_TO_COMPLETE);
            } else if ((r->xfer == 0 || r->icd) &&
                       !(t->o.defects & NRT_DEFECT_ICD_WAITS_FOR_BUFFER)) {
                req_move(t, r, NRT_REQ_NEW, NRT_REQ_READY_TO_EXECUTE);
            } else {
                /* Defect icd_waits_for_buffer (SPDK issue 3646, fixed by f4c10e1a8e and
                 * 7251e4c26c): commands that need no buffer (in-capsule data, fabrics,
                 * admin) were queued for buffers too, behind IO waiting for them. */
                req_move(t, r, NRT_REQ_NEW, NRT_REQ_NEED_BUFFER);
            }
            break;
        case NRT_REQ_NEED_BUFFER: {
            struct link *q = &t->groups[qp->group].pending_buf;
            if (!queue_turn(q, r, NRT_QUEUE_PENDING_BUF) || (!r->icd && !acquire_data(t, r))) {
                queue_wait(r, q, NRT_QUEUE_PENDING_BUF);
                break;
            }
            queue_leave(r);
            if (r->xfer == 1 && !r->icd)
                req_move(t, r, NRT_REQ_NEED_BUFFER, NRT_REQ_TRANSFER_TO_CTRLR_PENDING);
            else
                req_move(t, r, NRT_REQ_NEED_BUFFER, NRT_REQ_READY_TO_EXECUTE);
            break;
        }
        case NRT_REQ_TRANSFER_TO_CTRLR_PENDING:
            if (!queue_turn(&qp->pending_read, r, NRT_QUEUE_PENDING_READ) || !post_reads(t, r) ||
                r->wrs_posted != r->nwrs) {
                /* the rest stays held, unposted, until reads (or sends) complete */
                queue_wait(r, &qp->pending_read, NRT_QUEUE_PENDING_READ);
                break;
            }
            queue_leave(r);
            req_move(t, r, NRT_REQ_TRANSFER_TO_CTRLR_PENDING, NRT_REQ_TRANSFERRING_H2C);
            break;
        case NRT_REQ_TRANSFERRING_H2C:
            if (r->wrs_outstanding == 0)
                req_move(t, r, NRT_REQ_TRANSFERRING_H2C, NRT_REQ_READY_TO_EXECUTE);
            break;
        case NRT_REQ_READY_TO_EXECUTE:
            req_move(t, r, NRT_REQ_READY_TO_EXECUTE, NRT_REQ_EXECUTING);
            execute(t, r);
            break;
        case NRT_REQ_EXECUTING:
            break;   /* the block device completes it */
        case NRT_REQ_EXECUTED:
            if (r->xfer == 2 && r->status == NRT_SC_SUCCESS)
                req_move(t, r, NRT_REQ_EXECUTED, NRT_REQ_TRANSFER_TO_HOST_PENDING);
            else
                req_move(t, r, NRT_REQ_EXECUTED, NRT_REQ_READY_TO_COMPLETE);
            break;
        case NRT_REQ_TRANSFER_TO_HOST_PENDING:
            if (!queue_turn(&qp->pending_write, r, NRT_QUEUE_PENDING_WRITE) ||
                !post_response(t, r, true)) {
                queue_wait(r, &qp->pending_write, NRT_QUEUE_PENDING_WRITE);
                break;
            }
            queue_leave(r);
            req_move(t, r, NRT_REQ_TRANSFER_TO_HOST_PENDING, NRT_REQ_TRANSFERRING_C2H);
            break;
        case NRT_REQ_READY_TO_COMPLETE:
            if (!queue_turn(&qp->pending_send, r, NRT_QUEUE_PENDING_SEND) ||
                !post_response(t, r, false)) {
                queue_wait(r, &qp->pending_send, NRT_QUEUE_PENDING_SEND);
                break;
            }
            queue_leave(r);
            req_move(t, r, NRT_REQ_READY_TO_COMPLETE, NRT_REQ_COMPLETING);
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
    if (r->in_bdev) {   /* only an abrupt destroy releases a request the device holds */
        nvmf_emu_cancel(t->emu, &r->cmd);
        r->in_bdev = 0;
    }
    for (uint32_t i = 0; i < r->nwrs; i++) {
        struct data_wr *wr = &t->wrs[r->wrs[i]];
        if (wr->req == r)   /* not ours: only a defect links WRs it does not own */
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
        recv_repost(t, qp, r->recv);
        r->recv = NULL;
    }
    r->sqe = NULL;
    if (qp->cur_send_depth >= r->send_wrs)
        qp->cur_send_depth -= r->send_wrs;
    r->send_wrs = 0;
    req_set_state(t, r, NRT_REQ_FREE);
    if (!link_linked(&r->flink))   /* a slot released twice (a defect) is listed once */
        list_push_tail(&qp->free_reqs, &r->flink);
    qp->slots_used--;
}

/* ---- queues ----------------------------------------------------------------------------- */

/* A received capsule becomes a request in a free slot (there is one) and starts. */
static void start_request(struct nrt_transport *t, struct qpair *qp, struct recv *rv)
{
    rv->state = RECV_HELD;
    struct request *r = container_of(qp->free_reqs.next, struct request, flink);
    list_unlink(&r->flink);
    qp->slots_used++;
    r->recv = rv;
    r->sqe = (const struct nvme_sqe *)rv->buf;
    r->cap_opcode = r->sqe->opc;
    r->cid = r->sqe->cid;
    r->cmd.cdw0 = r->cmd.cdw1 = 0;
    r->cmd.dnr = false;
    r->status = 0;
    qp->sqhd = (uint16_t)(qp->sqhd + 1u == qp->depth ? 0 : qp->sqhd + 1u);
    t->groups[qp->group].stats.requests++;
    req_set_state(t, r, NRT_REQ_NEW);   /* counted from the state found: FREE, unless a defect */
    req_process(t, r);
}

void qp_start_incoming(struct nrt_transport *t, struct qpair *qp)
{
    while (!list_empty(&qp->incoming) && !list_empty(&qp->free_reqs)) {
        struct recv *rv = container_of(qp->incoming.next, struct recv, link);
        list_unlink(&rv->link);
        start_request(t, qp, rv);
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

/* Handles one work completion; returns the qpair it belonged to (NULL if none any more). */
struct qpair *wc_handle(struct nrt_transport *t, const struct ibv_wc *wc)
{
    uint8_t *kind = (uint8_t *)(uintptr_t)wc->wr_id;
    bool ok = wc->status == IBV_WC_SUCCESS;
    struct qpair *qp;
    switch (*kind) {
    case WRK_RECV: {
        struct recv *rv = container_of(kind, struct recv, kind);
        qp = rv->qp;
        qp->recvs_posted--;
        if (!ok || qp->state == NRT_QP_ERROR || qp->state == NRT_QP_DESTROYED) {
            rv->state = RECV_IDLE;
            if (!ok)   /* a flush too: the QP is in error, whoever moved it there */
                qp_set_error(t, qp);
            break;
        }
        if (wc->byte_len < NVMF_SQE_SIZE) {
            /* not a capsule: nothing to answer (no CID), the connection is broken */
            rv->state = RECV_IDLE;
            qp_set_error(t, qp);
            break;
        }
        rv->byte_len = wc->byte_len;
        if (list_empty(&qp->incoming) && !list_empty(&qp->free_reqs)) {
            start_request(t, qp, rv);   /* nothing received before it waits: no queue */
            return qp;
        }
        rv->state = RECV_INCOMING;
        list_push_tail(&qp->incoming, &rv->link);
        break;
    }
    case WRK_DATA: {
        struct data_wr *wr = container_of(kind, struct data_wr, kind);
        struct request *r = wr->req;
        if (!r)
            return NULL;   /* a flushed WRITE of a request a defect already released */
        qp = r->qp;
        if (r->xfer != 1) {   /* an unsignaled WRITE completes only with an error */
            qp_set_error(t, qp);
            break;
        }
        r->wrs_outstanding--;
        qp->cur_read_depth--;
        qp->cur_send_depth--;   /* a READ holds a send-queue slot until it completes */
        qp->signaled_outstanding--;
        if (!ok)
            qp_set_error(t, qp);
        /* A successful READ with others of its request still outstanding moves nothing:
         * in TRANSFERRING_H2C, req_process (and the abort step of a failed qpair) waits
         * for the last one, so the call is skipped. */
        if (!ok || r->state != NRT_REQ_TRANSFERRING_H2C || r->wrs_outstanding == 0)
            req_process(t, r);
        break;
    }
    case WRK_SEND: {
        struct request *r = container_of(kind, struct request, send_kind);
        qp = r->qp;
        qp->signaled_outstanding--;
        qp->cur_send_depth -= r->send_wrs;
        r->send_wrs = 0;
        if (!ok)
            qp_set_error(t, qp);
        req_set_state(t, r, NRT_REQ_COMPLETED);
        req_process(t, r);
        break;
    }
    default:
        return NULL;
    }
    if (!list_empty(&qp->incoming))
        qp_start_incoming(t, qp);
    return qp;
}
