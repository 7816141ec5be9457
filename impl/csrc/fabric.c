/*
 * fabric.c — the simulated RDMA fabric (DESIGN 5.4), the block device (5.5)
 * and the harness's stepping calls.
 *
 * Each qpair has two wires: h2t carries host capsules (SENDs landing in the
 * target's posted receives), t2h carries what the target posted on its send
 * queue (RDMA READ, RDMA WRITE, response SEND).  The harness delivers the head
 * of either wire; RC ordering holds per qpair and direction.  Completions land
 * on the poll group's CQ and are reaped by nrt_poll_group().
 */
#include "nrt_internal.h"
#include <string.h>

void cq_push(struct nrt_transport *t, struct qpair *qp, struct cqe *c, uint8_t kind,
             uint8_t status)
{
    c->kind = kind;
    c->status = status;
    c->qp = qp;
    qp->cqes_in_cq++;
    list_push_tail(&t->groups[qp->group].cq, &c->link);
}

void recv_repost(struct qpair *qp, struct recv *rv)
{
    rv->slot = NULL;
    if (qp->state == NRT_QP_ACTIVE || qp->state == NRT_QP_CONNECTING) {
        rv->state = RECV_POSTED;
        list_push_tail(&qp->recv_posted, &rv->link);
    } else {
        rv->state = RECV_IDLE;
    }
}

/* Asked before every ibv_post_send.  An injected failure acts like ENOMEM
 * from the provider: nothing is posted and the caller keeps its state. */
bool qp_post_allowed(struct nrt_transport *t, struct qpair *qp)
{
    if (qp->fail_posts) {
        qp->fail_posts--;
        t->progress++;
        return false;
    }
    return true;
}

/* Flush everything the qpair had in flight, in order, and release what is
 * not waiting for a completion.  Admin qpair failure takes the controller's
 * IO qpairs with it. */
void qp_set_error(struct nrt_transport *t, struct qpair *qp)
{
    if (qp->state == NRT_QP_ERROR || qp->state == NRT_QP_DESTROYED)
        return;
    qp->state = NRT_QP_ERROR;
    t->progress++;
    while (!list_empty(&qp->t2h)) {
        struct wire_item *w = container_of(qp->t2h.next, struct wire_item, link);
        list_unlink(&w->link);
        if (w->kind == WIRE_READ) {
            struct data_wr *wr = container_of(w, struct data_wr, wire);
            cq_push(t, qp, &wr->cqe, CQE_READ, WC_FLUSH_ERR);
        } else if (w->kind == WIRE_SEND) {
            struct request *r = container_of(w, struct request, send);
            cq_push(t, qp, &r->send_cqe, CQE_SEND, WC_FLUSH_ERR);
        } /* RDMA WRITEs are unsignaled: their SEND's flush covers them */
    }
    while (!list_empty(&qp->recv_posted)) {
        struct recv *rv = container_of(qp->recv_posted.next, struct recv, link);
        list_unlink(&rv->link);
        rv->state = RECV_IN_CQ;
        cq_push(t, qp, &rv->cqe, CQE_RECV, WC_FLUSH_ERR);
    }
    while (!list_empty(&qp->h2t)) {   /* capsules that never arrived */
        struct host_slot *hs = container_of(qp->h2t.next, struct host_slot, link);
        list_unlink(&hs->link);
        hs->state = HS_DELIVERED;      /* lost: no response will come */
    }
    while (!list_empty(&qp->incoming)) {
        struct recv *rv = container_of(qp->incoming.next, struct recv, link);
        list_unlink(&rv->link);
        rv->state = RECV_IDLE;
    }
    for (uint32_t i = 0; i < qp->depth; i++)
        if (qp->reqs[i].state != NRT_REQ_FREE)
            req_process(t, &qp->reqs[i]);
    struct controller *c = qp->ctrlr;
    if (c && c->admin == qp) {
        c->live = false;
        for (uint32_t i = 0; i < t->o.max_qpairs; i++)
            if (t->qpairs[i] && t->qpairs[i]->ctrlr == c)
                qp_set_error(t, t->qpairs[i]);
    }
}

/* ---- host side ------------------------------------------------------------------- */

int nrt_host_submit(struct nrt_transport *t, int id, const struct nrt_capsule *cap,
                    const void *icd, uint32_t icd_len)
{
    struct qpair *qp = qpair_lookup(t, id);
    if (!qp)
        return nrt_fail(t, NRT_ENOENT, "no qpair %d (never created or destroyed)", id);
    if (!cap)
        return nrt_fail(t, NRT_EINVAL, "no capsule");
    if (qp->state != NRT_QP_ACTIVE && qp->state != NRT_QP_CONNECTING)
        return nrt_fail(t, NRT_ENOTCONN, "qpair %d is not connected", id);
    if (icd_len > t->o.in_capsule_data_size)
        return nrt_fail(t, NRT_EMSGSIZE, "%u in-capsule bytes exceed in_capsule_data_size %u",
                        icd_len, t->o.in_capsule_data_size);
    if (icd_len && !icd)
        return nrt_fail(t, NRT_EINVAL, "in-capsule length %u with no data", icd_len);
    /* The slot cid % depth first keeps response matching O(1) for the usual case. */
    struct host_slot *hs = &qp->hslots[cap->cid % qp->depth];
    if (hs->state != HS_FREE) {
        if (list_empty(&qp->host_free))
            return nrt_fail(t, NRT_EBUSY, "qpair %d has %u capsules outstanding", id, qp->depth);
        hs = container_of(qp->host_free.next, struct host_slot, link);
    }
    list_unlink(&hs->link);
    /* copy the capsule up to the descriptors it carries, not the whole list */
    uint32_t ndesc = cap->ndesc < NRT_MAX_SGL_DESC ? cap->ndesc : NRT_MAX_SGL_DESC;
    memcpy(&hs->cap, cap, offsetof(struct nrt_capsule, list) + ndesc * sizeof(cap->list[0]));
    hs->cap.ndesc = cap->ndesc;
    hs->icd_len = icd_len;
    if (icd_len)
        memcpy(hs->icd, icd, icd_len);
    hs->state = HS_ON_WIRE;
    list_push_tail(&qp->h2t, &hs->link);
    return 0;
}

static struct host_slot *host_slot_for(struct qpair *qp, uint16_t cid, uint8_t state)
{
    struct host_slot *hs = &qp->hslots[cid % qp->depth];
    if (hs->state == state && hs->cap.cid == cid)
        return hs;
    for (uint32_t i = 0; i < qp->depth; i++)
        if (qp->hslots[i].state == state && qp->hslots[i].cap.cid == cid)
            return &qp->hslots[i];
    return NULL;
}

int nrt_host_reap(struct nrt_transport *t, int id, struct nrt_response *out, uint32_t max)
{
    struct qpair *qp = qpair_lookup(t, id);
    if (!qp)
        return nrt_fail(t, NRT_ENOENT, "no qpair %d (never created or destroyed)", id);
    uint32_t n = 0;
    while (n < max && qp->hr_count) {
        struct nrt_response *r = &qp->host_ring[qp->hr_head];
        out[n++] = *r;
        qp->hr_head = (qp->hr_head + 1) % qp->hr_cap;
        qp->hr_count--;
        struct host_slot *hs = r->unexpected ? NULL : host_slot_for(qp, r->cid, HS_ANSWERED);
        if (hs) {
            hs->state = HS_FREE;
            list_push_tail(&qp->host_free, &hs->link);
        }
    }
    return (int)n;
}

/* ---- delivery ---------------------------------------------------------------------- */

int nrt_deliver_h2t(struct nrt_transport *t, int id)
{
    struct qpair *qp = qpair_lookup(t, id);
    if (!qp || list_empty(&qp->h2t))
        return 0;
    if (list_empty(&qp->recv_posted))
        return 0;   /* receiver not ready: the capsule waits on the wire */
    struct host_slot *hs = container_of(qp->h2t.next, struct host_slot, link);
    list_unlink(&hs->link);
    hs->state = HS_DELIVERED;
    struct recv *rv = container_of(qp->recv_posted.next, struct recv, link);
    list_unlink(&rv->link);
    rv->slot = hs;
    rv->state = RECV_IN_CQ;
    cq_push(t, qp, &rv->cqe, CQE_RECV, WC_SUCCESS);
    t->progress++;
    return 1;
}

void req_copy_bufs(struct nrt_transport *t, struct request *r, uint32_t off, uint8_t *lin,
                   uint32_t len, bool to_bufs)
{
    uint32_t ius = t->o.io_unit_size;
    while (len) {
        uint32_t b = off / ius, o = off % ius, n = ius - o < len ? ius - o : len;
        uint8_t *p = t->buf_arena + (size_t)r->bufs[b] * ius + o;
        if (to_bufs)
            memcpy(p, lin, n);
        else
            memcpy(lin, p, n);
        off += n;
        lin += n;
        len -= n;
    }
}


static uint8_t *host_range(struct nrt_transport *t, uint32_t key, uint64_t addr, uint32_t len)
{
    struct memory_region *m = mr_lookup(t, key);
    if (!m || addr > m->size || len > m->size - addr)
        return NULL;
    return m->data + addr;
}

static void host_receive_response(struct nrt_transport *t, struct qpair *qp, struct request *r)
{
    struct nrt_response rsp = {.cid = r->cid, .status = r->status, .sqhd = qp->sqhd,
                               .result = r->result};
    struct host_slot *hs = host_slot_for(qp, r->cid, HS_DELIVERED);
    if (hs)
        hs->state = HS_ANSWERED;
    else
        rsp.unexpected = 1;
    qp->host_ring[(qp->hr_head + qp->hr_count) % qp->hr_cap] = rsp;
    qp->hr_count++;
    (void)t;
}

int nrt_deliver_t2h(struct nrt_transport *t, int id)
{
    struct qpair *qp = qpair_lookup(t, id);
    if (!qp || list_empty(&qp->t2h))
        return 0;
    struct wire_item *w = container_of(qp->t2h.next, struct wire_item, link);
    if (w->kind == WIRE_SEND && qp->hr_count == qp->hr_cap)
        return 0;   /* host has not reaped its completion queue */
    list_unlink(&w->link);
    t->progress++;
    if (w->kind == WIRE_SEND) {
        struct request *r = container_of(w, struct request, send);
        host_receive_response(t, qp, r);
        cq_push(t, qp, &r->send_cqe, CQE_SEND, WC_SUCCESS);
        return 1;
    }
    struct data_wr *wr = container_of(w, struct data_wr, wire);
    uint8_t *host = host_range(t, wr->rkey, wr->raddr, wr->len);
    if (!host) {   /* bad key or range: remote access error; RC moves the qpair to
                    * error at once, so nothing behind this WR reaches the host */
        cq_push(t, qp, &wr->cqe, w->kind == WIRE_READ ? CQE_READ : CQE_WRITE,
                WC_REM_ACCESS_ERR);
        qp_set_error(t, qp);
        return 1;
    }
    if (w->kind == WIRE_READ) {
        req_copy_bufs(t, wr->req, wr->data_off, host, wr->len, true);
        cq_push(t, qp, &wr->cqe, CQE_READ, WC_SUCCESS);
    } else {
        req_copy_bufs(t, wr->req, wr->data_off, host, wr->len, false);   /* unsignaled */
    }
    return 1;
}

/* ---- faults ------------------------------------------------------------------------ */

int nrt_qpair_inject_error(struct nrt_transport *t, int id)
{
    struct qpair *qp = qpair_lookup(t, id);
    if (!qp)
        return nrt_fail(t, NRT_ENOENT, "no qpair %d (never created or destroyed)", id);
    qp_set_error(t, qp);
    return 0;
}

int nrt_qpair_disconnect(struct nrt_transport *t, int id)
{
    struct qpair *qp = qpair_lookup(t, id);
    if (!qp)
        return nrt_fail(t, NRT_ENOENT, "no qpair %d (never created or already destroyed)", id);
    if (qp->state == NRT_QP_ERROR)
        return nrt_fail(t, NRT_ESTATE, "qpair %d is already disconnecting", id);
    qp_set_error(t, qp);
    return 0;
}

int nrt_host_disconnect(struct nrt_transport *t, int id)
{
    struct qpair *qp = qpair_lookup(t, id);
    if (!qp)
        return nrt_fail(t, NRT_ENOENT, "no qpair %d (never created or destroyed)", id);
    qp->host_gone = true;
    qp_set_error(t, qp);
    return 0;
}

int nrt_qpair_fail_posts(struct nrt_transport *t, int id, uint32_t count)
{
    struct qpair *qp = qpair_lookup(t, id);
    if (!qp)
        return nrt_fail(t, NRT_ENOENT, "no qpair %d (never created or destroyed)", id);
    qp->fail_posts = count;
    return 0;
}

/* ---- polling ----------------------------------------------------------------------- */

static bool qp_can_be_destroyed(struct nrt_transport *t, const struct qpair *qp)
{
    uint32_t busy = qp->slots_used;
    /* Defect double_qpair_destroy (SPDK issue 851): the transport destroyed a qpair
     * drained of fabric work while IO of it was still in the block device; when that
     * IO completed, the request-completion path destroyed the qpair again. */
    if (t->o.defects & NRT_DEFECT_DOUBLE_QPAIR_DESTROY)
        for (uint32_t i = 0; i < qp->depth; i++)
            busy -= link_linked(&qp->reqs[i].bdev_link);
    return qp->state == NRT_QP_ERROR && busy == 0 && qp->cqes_in_cq == 0 &&
           list_empty(&qp->t2h) && list_empty(&qp->incoming);
}

int nrt_poll_group(struct nrt_transport *t, int group)
{
    if (group < 0 || (uint32_t)group >= t->o.num_poll_groups)
        return nrt_fail(t, NRT_ENOENT, "no poll group %d", group);
    struct poll_group *g = &t->groups[group];
    int reaped = 0;
    g->stats.polls++;
    while (reaped < NRT_CQ_BATCH && !list_empty(&g->cq)) {
        struct cqe *c = container_of(g->cq.next, struct cqe, link);
        list_unlink(&c->link);
        c->qp->cqes_in_cq--;
        c->qp->reaped_poll = g->stats.polls;
        reaped++;
        cqe_handle(t, c);
    }
    g->stats.completions += (uint64_t)reaped;
    t->progress += (uint64_t)reaped;
    if (!reaped)
        g->stats.idle_polls++;
    for (struct link *l = g->qpairs.next; l != &g->qpairs; l = l->next) {
        struct qpair *qp = container_of(l, struct qpair, group_link);
        /* Defect pending_send_only_on_cqe (SPDK issue 3646, fixed by e775a7a4cf): a
         * qpair's pending send/read/write queues were processed only when that qpair
         * reaped a CQE, so a request whose post failed waited for one that never came. */
        if ((t->o.defects & NRT_DEFECT_PENDING_SEND_ONLY_ON_CQE) &&
            qp->reaped_poll != g->stats.polls)
            continue;
        qp_process_pending(t, qp);
    }
    if (reaped || !(t->o.defects & NRT_DEFECT_NO_IDLE_PENDING_POLL))
        group_process_pending_buf(t, g);
    /* Defect no_idle_pending_poll (SPDK issue 3328, fixed by 8e8f04346e): the
     * pending buffer queue was re-examined only after a CQE was reaped, so a
     * request waiting for WRs freed elsewhere waits forever on an idle group. */
    for (struct link *l = g->qpairs.next, *next; l != &g->qpairs; l = next) {
        next = l->next;
        struct qpair *qp = container_of(l, struct qpair, group_link);
        if (qp_can_be_destroyed(t, qp)) {
            qp->state = NRT_QP_DESTROYED;
            qpair_free(t, qp);
            t->progress++;
        }
    }
    return reaped;
}

/* ---- block device --------------------------------------------------------------------- */

int nrt_bdev_pending(struct nrt_transport *t) { return (int)t->bdev_count; }

int nrt_bdev_set_auto(struct nrt_transport *t, int on)
{
    t->bdev_auto = on != 0;
    return 0;
}

int nrt_bdev_inject_error(struct nrt_transport *t, uint32_t count, uint16_t status)
{
    if (status == NRT_SC_SUCCESS && count)
        return nrt_fail(t, NRT_EINVAL, "an injected error needs a non-zero status");
    t->bdev_err_count = count;
    t->bdev_err_status = status;
    return 0;
}

int nrt_bdev_complete(struct nrt_transport *t, uint32_t index, uint16_t status)
{
    if (!t->bdev_count)
        return 0;
    struct link *l = t->bdev_queue.next;
    for (uint32_t i = index % t->bdev_count; i; i--)
        l = l->next;
    struct request *r = container_of(l, struct request, bdev_link);
    list_unlink(&r->bdev_link);
    t->bdev_count--;
    t->progress++;
    struct qpair *qp = r->qp;
    bdev_finish(t, r, status);
    if (qp->state == NRT_QP_DESTROYED)
        qpair_free(t, qp);   /* the IO outlived its qpair's teardown: finish it */
    return 1;
}

int nrt_advance_time(struct nrt_transport *t, uint64_t ticks)
{
    t->now += ticks;
    for (uint32_t i = 0; i < t->o.max_qpairs; i++) {
        struct controller *c = &t->ctrlrs[i];
        if (!c->live || !c->kato || t->now - c->last_keep_alive <= c->kato)
            continue;
        if (t->num_events < NRT_MAX_ASYNC_EVENTS)
            t->events[t->num_events++] =
                (struct nrt_async_event){NRT_ASYNC_KEEP_ALIVE_EXPIRED, i + 1};
        qp_set_error(t, c->admin);
    }
    return 0;
}

/* ---- batch stepping and liveness mode -------------------------------------------------- */

int64_t nrt_run(struct nrt_transport *t, const uint32_t *events, size_t n)
{
    uint64_t start = t->progress;
    for (size_t i = 0; i < n; i++) {
        uint32_t kind = events[i] >> 24, arg = events[i] & 0xFFFFFFu;
        switch (kind) {
        case NRT_EV_DELIVER_H2T: {
            /* arg is a qpair slot index: handles need more than 24 bits */
            struct qpair *qp = arg < t->o.max_qpairs ? t->qpairs[arg] : NULL;
            if (qp)
                nrt_deliver_h2t(t, qp->id);
            break;
        }
        case NRT_EV_DELIVER_T2H: {
            struct qpair *qp = arg < t->o.max_qpairs ? t->qpairs[arg] : NULL;
            if (qp)
                nrt_deliver_t2h(t, qp->id);
            break;
        }
        case NRT_EV_POLL:
            if (arg < t->o.num_poll_groups)
                nrt_poll_group(t, (int)arg);
            break;
        case NRT_EV_BDEV:
            nrt_bdev_complete(t, arg, NRT_SC_SUCCESS);
            break;
        case NRT_EV_TICK:
            nrt_advance_time(t, arg);
            break;
        default:
            return nrt_fail(t, NRT_EINVAL, "event %zu has unknown kind %u", i, kind);
        }
    }
    return (int64_t)(t->progress - start);
}

static bool transport_quiescent(struct nrt_transport *t)
{
    if (t->bdev_count)
        return false;
    for (uint32_t i = 0; i < t->o.num_poll_groups; i++)
        if (!list_empty(&t->groups[i].cq) || !list_empty(&t->groups[i].pending_buf))
            return false;
    for (uint32_t i = 0; i < t->o.max_qpairs; i++) {
        struct qpair *qp = t->qpairs[i];
        if (!qp)
            continue;
        if (qp->state == NRT_QP_ERROR || qp->slots_used || !list_empty(&qp->h2t) ||
            !list_empty(&qp->t2h) || !list_empty(&qp->incoming))
            return false;
    }
    return true;
}

int nrt_drain(struct nrt_transport *t, uint32_t max_rounds, struct nrt_drain_result *out)
{
    struct nrt_drain_result r = {0};
    uint64_t start = t->progress;
    while (r.rounds < max_rounds) {
        if (transport_quiescent(t)) {
            r.quiescent = 1;
            break;
        }
        uint64_t before = t->progress;
        r.rounds++;
        for (uint32_t i = 0; i < t->o.max_qpairs; i++) {
            struct qpair *qp = t->qpairs[i];
            if (!qp)
                continue;
            while (nrt_deliver_h2t(t, qp->id))
                ;
            while (nrt_deliver_t2h(t, qp->id))
                ;
        }
        while (t->bdev_count)
            nrt_bdev_complete(t, 0, NRT_SC_SUCCESS);
        for (uint32_t g = 0; g < t->o.num_poll_groups; g++)
            while (nrt_poll_group(t, (int)g) > 0)
                ;
        if (t->progress == before) {
            r.stalled = 1;
            break;
        }
    }
    if (!r.quiescent && !r.stalled && transport_quiescent(t))
        r.quiescent = 1;
    r.progress = t->progress - start;
    if (out)
        *out = r;
    return 0;
}
