/*
 * control.c — the harness's hand on execution: QP inspection, executing a send queue's
 * head, micro-event runs, autoprogress, and fault injection.
 */
#include "sv_internal.h"

int sv_qp_info(struct sv_fabric *f, uint32_t qp_num, struct sv_qp_info *out)
{
    if (!f || !out)
        return -EINVAL;
    struct sv_qp *qp = sv__qp_find(f, qp_num);
    if (!qp) {
        sv__err(f, "sv_qp_info: no QP %u", qp_num);
        return -ENOENT;
    }
    memset(out, 0, sizeof *out);
    out->qp_num = qp->qp.qp_num;
    out->peer_qp_num = qp->peer_qpn;
    out->device = qp->dev;
    out->state = qp->qp.state;
    out->is_host = qp->host != NULL;
    out->sq_pending = qp->sq_tail - qp->sq_head;
    out->rq_posted = qp->srq ? 0 : qp->rq.tail - qp->rq.head;
    out->sq_outstanding = qp->sq_tail - qp->sq_done;
    out->posts_send = qp->posts_send;
    out->posts_recv = qp->posts_recv;
    out->completions = qp->completions;
    out->flushed = qp->flushed;
    out->errors = qp->errors;
    return 0;
}

int sv_qps(struct sv_fabric *f, uint32_t *out, uint32_t max)
{
    if (!f)
        return -EINVAL;
    uint32_t n = 0;
    for (uint32_t i = 0; i < f->qp_used; i++) {
        if (!f->qps[i])
            continue;
        if (out && n < max)
            out[n] = f->qps[i]->qp.qp_num;
        n++;
    }
    return (int)n;
}

int sv_qp_execute(struct sv_fabric *f, uint32_t qp_num)
{
    if (SV_UNLIKELY(!f))
        return -EINVAL;
    struct sv_qp *qp = sv__qp_find(f, qp_num);
    if (SV_UNLIKELY(!qp)) {
        sv__err(f, "sv_qp_execute: no QP %u", qp_num);
        return -ENOENT;
    }
    return sv__qp_exec(qp);
}

int sv_qp_execute_all(struct sv_fabric *f, uint32_t qp_num, int max)
{
    if (SV_UNLIKELY(!f || max < 0))
        return -EINVAL;
    struct sv_qp *qp = sv__qp_find(f, qp_num);
    if (SV_UNLIKELY(!qp)) {
        sv__err(f, "sv_qp_execute_all: no QP %u", qp_num);
        return -ENOENT;
    }
    /* exactly the sv_qp_execute calls a caller would make until one returns 0: an
     * execution never destroys its own QP, so the lookup holds for the whole run */
    return sv__qp_exec_all(qp, max);
}

int sv_qp_index(struct sv_fabric *f, uint32_t qp_num)
{
    if (!f)
        return -EINVAL;
    struct sv_qp *qp = sv__qp_find(f, qp_num);
    return qp ? (int)qp->idx : -ENOENT;
}

int64_t sv_run(struct sv_fabric *f, const uint32_t *events, size_t n)
{
    if (!f || (n && !events))
        return -EINVAL;
    /* Refuse the whole run up front, so an error never leaves half of it done. */
    for (size_t i = 0; i < n; i++) {
        if ((events[i] >> 24) != SV_EV_EXECUTE) {
            sv__err(f, "sv_run: event %zu has unknown kind %u", i, events[i] >> 24);
            return -EINVAL;
        }
    }
    int64_t moved = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t idx = events[i] & 0xFFFFFFu;
        /* a QP destroyed since the schedule was made is simply not there any more */
        if (idx < f->qp_used && f->qps[idx] && sv__qp_exec(f->qps[idx]) > 0)
            moved++;
    }
    return moved;
}

/* Autoprogress: everything that can move, moves, in ascending qp_num order, until a whole
 * pass moves nothing (a SEND waiting for a receive stays waiting). */
void sv__progress_all(struct sv_fabric *f)
{
    int moved;
    do {
        moved = 0;
        for (uint32_t i = 0; i < f->qp_used; i++) {
            struct sv_qp *qp = f->qps[i];
            if (!qp)
                continue;
            while (qp->sq_head != qp->sq_tail && sv__qp_exec(qp) > 0)
                moved = 1;
        }
        /* the program's own progress (never re-entered: its verbs calls autoprogress too) */
        if (SV_UNLIKELY(f->nhooks != 0) && !f->in_progress_hook) {
            f->in_progress_hook = 1;
            for (uint32_t h = 0; h < f->nhooks; h++)
                if (f->hooks[h].fn(f->hooks[h].arg) > 0)
                    moved = 1;
            f->in_progress_hook = 0;
        }
    } while (moved);
}

/* ---- faults ----------------------------------------------------------------------------- */

static struct sv_qp *fault_qp(struct sv_fabric *f, uint32_t qp_num, const char *what)
{
    if (!f)
        return NULL;
    struct sv_qp *qp = sv__qp_find(f, qp_num);
    if (!qp)
        sv__err(f, "%s: no QP %u", what, qp_num);
    return qp;
}

int sv_qp_to_error(struct sv_fabric *f, uint32_t qp_num)
{
    struct sv_qp *qp = fault_qp(f, qp_num, "sv_qp_to_error");
    if (!qp)
        return f ? -ENOENT : -EINVAL;
    /* the fatal error is reported first; a QP on an SRQ then reports its last WQE */
    if (!qp->host && qp->qp.state != IBV_QPS_ERR)
        sv__async(qp->ctx, IBV_EVENT_QP_FATAL, qp);
    sv__qp_error(qp);
    return 0;
}

int sv_qp_fail_posts(struct sv_fabric *f, uint32_t qp_num, uint32_t count)
{
    struct sv_qp *qp = fault_qp(f, qp_num, "sv_qp_fail_posts");
    if (!qp)
        return f ? -ENOENT : -EINVAL;
    qp->fail_posts = count;
    return 0;
}

int sv_qp_remote_access_error(struct sv_fabric *f, uint32_t qp_num, uint32_t count)
{
    struct sv_qp *qp = fault_qp(f, qp_num, "sv_qp_remote_access_error");
    if (!qp)
        return f ? -ENOENT : -EINVAL;
    qp->rae = count;
    return 0;
}

int sv_qp_rnr(struct sv_fabric *f, uint32_t qp_num, uint32_t count)
{
    struct sv_qp *qp = fault_qp(f, qp_num, "sv_qp_rnr");
    if (!qp)
        return f ? -ENOENT : -EINVAL;
    qp->rnr = count;
    return 0;
}

static struct sv_dev *fault_dev(struct sv_fabric *f, int dev, const char *what)
{
    if (!f)
        return NULL;
    if (dev < 0 || dev >= f->ndev) {
        sv__err(f, "%s: no device %d", what, dev);
        return NULL;
    }
    return f->devs[dev];
}

/* Every context open on the device, oldest first (the CM's included: programs watch its
 * async_fd through rdma_get_devices / id->verbs). */
static void dev_async(struct sv_fabric *f, struct sv_dev *d, enum ibv_event_type t)
{
    for (struct sv_link *l = f->objs.next; l != &f->objs; l = l->next) {
        struct sv_obj *o = sv_container_of(l, struct sv_obj, link);
        if (o->kind != SV_K_CTX)
            continue;
        struct sv_ctx *c = sv_container_of(o, struct sv_ctx, obj);
        if (c->dev == d)
            sv__async(c, t, NULL);
    }
}

static void dev_qps_error(struct sv_fabric *f, int dev, int fatal_event)
{
    for (uint32_t i = 0; i < f->qp_used; i++) {
        struct sv_qp *qp = f->qps[i];
        if (!qp || qp->dev != dev || qp->qp.state == IBV_QPS_ERR)
            continue;
        sv__qp_error(qp);
        if (fatal_event)
            sv__async(qp->ctx, IBV_EVENT_QP_FATAL, qp);
    }
}

int sv_port_down(struct sv_fabric *f, int dev)
{
    struct sv_dev *d = fault_dev(f, dev, "sv_port_down");
    if (!d)
        return -EINVAL;
    if (d->removed)
        return -ENODEV;
    if (!d->port_up)
        return 0;
    d->port_up = 0;
    dev_async(f, d, IBV_EVENT_PORT_ERR);
    dev_qps_error(f, dev, 1);
    return 0;
}

int sv_port_up(struct sv_fabric *f, int dev)
{
    struct sv_dev *d = fault_dev(f, dev, "sv_port_up");
    if (!d)
        return -EINVAL;
    if (d->removed)
        return -ENODEV;
    if (d->port_up)
        return 0;
    d->port_up = 1;
    dev_async(f, d, IBV_EVENT_PORT_ACTIVE);
    return 0;
}

int sv_device_remove(struct sv_fabric *f, int dev)
{
    struct sv_dev *d = fault_dev(f, dev, "sv_device_remove");
    if (!d)
        return -EINVAL;
    if (d->removed)
        return 0;
    d->removed = 1;
    d->port_up = 0;
    dev_async(f, d, IBV_EVENT_DEVICE_FATAL);
    dev_qps_error(f, dev, 0);
    sv__cm_device_removed(f, dev);
    return 0;
}
