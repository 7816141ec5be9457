/*
 * poll.c — the transport's side of the fabric: posting through verbs, the poll group
 * (its CQs, its qpairs' pending queues, its pending buffer queue), qpair failure, and the
 * block device and clock of the controller emulation.
 *
 * The fabric itself is whatever provides libibverbs: simverbs in the suite, a NIC's
 * provider in production.  Nothing here knows which.
 */
#include "nrt_internal.h"
#include <errno.h>
#include <string.h>

/* Every ibv_post_send goes through here.  A failure (ENOMEM from the provider, or any
 * other errno) posted nothing: the caller keeps its state and retries from its queue. */
int qp_post_send(struct nrt_transport *t, struct qpair *qp, struct ibv_send_wr *wr)
{
    struct ibv_send_wr *bad = NULL;
    int rc = ibv_post_send(qp->qp, wr, &bad);
    if (rc)
        t->progress++;   /* a refused post is an event: the drain retries it */
    return rc;
}

void recv_repost(struct nrt_transport *t, struct qpair *qp, struct recv *rv)
{
    if (qp->state != NRT_QP_ACTIVE && qp->state != NRT_QP_CONNECTING) {
        rv->state = RECV_IDLE;
        return;
    }
    struct ibv_recv_wr *bad = NULL;
    rv->wr.next = NULL;
    if (ibv_post_recv(qp->qp, &rv->wr, &bad)) {
        rv->state = RECV_DEFERRED;   /* provider refused: try again at the next poll */
        list_push_tail(&qp->deferred, &rv->link);
        t->progress++;
        return;
    }
    rv->state = RECV_POSTED;
    qp->recvs_posted++;
}

void qp_retry_recvs(struct nrt_transport *t, struct qpair *qp)
{
    while (!list_empty(&qp->deferred)) {
        struct recv *rv = container_of(qp->deferred.next, struct recv, link);
        list_unlink(&rv->link);
        recv_repost(t, qp, rv);
        if (rv->state == RECV_DEFERRED) {
            /* recv_repost put it back at the tail: move it to the head, keep order */
            list_unlink(&rv->link);
            rv->link.next = qp->deferred.next;
            rv->link.prev = &qp->deferred;
            qp->deferred.next->prev = &rv->link;
            qp->deferred.next = &rv->link;
            return;
        }
    }
}

/* The qpair failed (completion error, disconnect, port down, keep-alive): move it to error
 * through the CM, which makes the provider flush everything posted, in order; a request not
 * waiting on a completion finishes now, one with posted work waits for its flush (or the
 * block device).  An admin qpair's failure takes its controller and the controller's IO
 * qpairs with it. */
void qp_set_error(struct nrt_transport *t, struct qpair *qp)
{
    if (qp->state == NRT_QP_ERROR || qp->state == NRT_QP_DESTROYED)
        return;
    qp->state = NRT_QP_ERROR;
    t->progress++;
    if (!qp->disconnected) {
        qp->disconnected = true;
        if (rdma_disconnect(qp->cm_id)) {
            /* no CM connection (never established): the QP itself goes to error */
            struct ibv_qp_attr attr = {.qp_state = IBV_QPS_ERR};
            ibv_modify_qp(qp->qp, &attr, IBV_QP_STATE);
        }
    }
    while (!list_empty(&qp->incoming)) {
        struct recv *rv = container_of(qp->incoming.next, struct recv, link);
        list_unlink(&rv->link);
        rv->state = RECV_IDLE;
    }
    while (!list_empty(&qp->deferred)) {
        struct recv *rv = container_of(qp->deferred.next, struct recv, link);
        list_unlink(&rv->link);
        rv->state = RECV_IDLE;
    }
    for (uint32_t i = 0; i < qp->depth; i++)
        if (qp->reqs[i].state != NRT_REQ_FREE)
            req_process(t, &qp->reqs[i]);
    bool admin = qp->emu.connected && qp->emu.qid == 0;
    uint16_t cntlid = qp->emu.cntlid;
    qp->emu_gone = true;
    nvmf_emu_qpair_gone(t->emu, &qp->emu);
    if (admin)
        for (uint32_t i = 0; i < t->o.max_qpairs; i++) {
            struct qpair *o = t->qpairs[i];
            if (o && o != qp && o->emu.cntlid == cntlid && o->emu.qid != 0)
                qp_set_error(t, o);
        }
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
            busy -= qp->reqs[i].in_bdev;
    /* Every posted receive and signaled WR has completed (flushed): unsignaled WRITEs
     * complete, if at all, before the signaled SEND that follows them. */
    return qp->state == NRT_QP_ERROR && busy == 0 && qp->recvs_posted == 0 &&
           qp->signaled_outstanding == 0 && list_empty(&qp->incoming);
}

int nrt_poll_group(struct nrt_transport *t, int group)
{
    if (group < 0 || (uint32_t)group >= t->o.num_poll_groups)
        return nrt_fail(t, NRT_ENOENT, "no poll group %d", group);
    struct poll_group *g = &t->groups[group];
    int reaped = 0;
    g->stats.polls++;
    for (uint32_t d = 0; d < t->num_devices && reaped < NRT_CQ_BATCH; d++) {
        struct ibv_cq *cq = t->devices[d].cqs ? t->devices[d].cqs[group] : NULL;
        if (!cq)
            continue;
        int n = ibv_poll_cq(cq, NRT_CQ_BATCH - reaped, t->wc);
        for (int i = 0; i < n; i++) {
            struct qpair *qp = wc_handle(t, &t->wc[i]);
            if (qp)
                qp->reaped_poll = g->stats.polls;
        }
        if (n > 0)
            reaped += n;
    }
    g->stats.completions += (uint64_t)reaped;
    t->progress += (uint64_t)reaped;
    if (!reaped)
        g->stats.idle_polls++;
    for (struct link *l = g->qpairs.next; l != &g->qpairs; l = l->next) {
        struct qpair *qp = container_of(l, struct qpair, group_link);
        if (!list_empty(&qp->deferred))
            qp_retry_recvs(t, qp);
        /* Defect pending_send_only_on_cqe (SPDK issue 3646, fixed by e775a7a4cf): a
         * qpair's pending send/read/write queues were processed only when that qpair
         * reaped a CQE, so a request whose post failed waited for one that never came. */
        if ((t->o.defects & NRT_DEFECT_PENDING_SEND_ONLY_ON_CQE) &&
            qp->reaped_poll != g->stats.polls)
            continue;
        qp_process_pending(t, qp);
    }
    /* Defect no_idle_pending_poll (SPDK issue 3328, fixed by 8e8f04346e): the
     * pending buffer queue was re-examined only after a CQE was reaped, so a
     * request waiting for WRs freed elsewhere waits forever on an idle group. */
    if (reaped || !(t->o.defects & NRT_DEFECT_NO_IDLE_PENDING_POLL))
        group_process_pending_buf(t, g);
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

/* ---- the block device and the clock: the controller emulation's ---------------------- */

int nrt_bdev_pending(struct nrt_transport *t) { return (int)nvmf_emu_bdev_pending(t->emu); }

int nrt_bdev_set_auto(struct nrt_transport *t, int on)
{
    nvmf_emu_bdev_set_auto(t->emu, on != 0);
    return 0;
}

int nrt_bdev_inject_error(struct nrt_transport *t, uint32_t count, uint16_t status)
{
    if (status == NRT_SC_SUCCESS && count)
        return nrt_fail(t, NRT_EINVAL, "an injected error needs a non-zero status");
    return nvmf_emu_bdev_inject_error(t->emu, count, status) < 0 ? NRT_EINVAL : 0;
}

int nrt_bdev_complete(struct nrt_transport *t, uint32_t index, uint16_t status)
{
    if (!nvmf_emu_bdev_pending(t->emu))
        return 0;
    t->progress++;
    return nvmf_emu_bdev_complete(t->emu, index, status) < 0 ? 0 : 1;
}

int nrt_advance_time(struct nrt_transport *t, uint64_t ticks)
{
    nvmf_emu_advance_time(t->emu, ticks);
    return 0;
}
