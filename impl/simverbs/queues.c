/*
 * queues.c — completion queues, queue pairs and shared receive queues as objects:
 * creation against the device's limits, state changes, queries and destruction.  Posting,
 * executing and polling are in exec.c.
 */
#include <stdlib.h>

#include "sv_internal.h"

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* ---- completion queues ---------------------------------------------------------------- */

struct sv_cq *sv__cq_create(struct sv_ctx *c, int cqe, struct sv_compch *ch, void *cq_ctx,
                            int counted)
{
    struct sv_fabric *f = c->f;
    if (cqe < 1 || (c->dev && (uint32_t)cqe > c->dev->attr.max_cqe)) {
        sv__err(f, "ibv_create_cq: cqe %d not in 1..max_cqe %u", cqe, c->dev ? c->dev->attr.max_cqe : 0);
        errno = EINVAL;
        return NULL;
    }
    if (c->dev && c->dev->n_cq >= c->dev->attr.max_cq) {
        sv__err(f, "ibv_create_cq: device %s has max_cq %u CQs", c->dev->attr.name, c->dev->attr.max_cq);
        errno = ENOMEM;
        return NULL;
    }
    struct sv_cq *cq = calloc(1, sizeof *cq);
    struct ibv_wc *ring = calloc((size_t)cqe, sizeof *ring);
    if (!cq || !ring) {
        free(cq);
        free(ring);
        errno = ENOMEM;
        return NULL;
    }
    cq->cq.context = &c->ctx;
    cq->cq.channel = ch ? &ch->ch : NULL;
    cq->cq.cq_context = cq_ctx;
    cq->cq.handle = f->next_handle++;
    cq->cq.cqe = cqe;
    cq->f = f;
    cq->ctx = c;
    cq->ring = ring;
    cq->cap = (uint32_t)cqe;
    cq->ch = ch;
    sv_list_init(&cq->evlink);
    if (ch) {
        ch->refs++;
        ch->ch.refcnt++;
    }
    if (c->dev)
        c->dev->n_cq++;
    c->nchildren++;
    sv__obj_add(f, &cq->obj, SV_K_CQ, counted);
    return cq;
}

void sv__cq_free(struct sv_cq *cq)
{
    free(cq->ring);
    free(cq);
}

int sv__cq_destroy(struct sv_cq *cq)
{
    if (cq->refs) {
        sv__err(cq->f, "ibv_destroy_cq: %u QP queues still use the CQ", cq->refs);
        return EBUSY;
    }
    struct sv_ctx *c = cq->ctx;
    sv__async_purge(c, cq);
    if (cq->ev_queued) {
        sv_list_del(&cq->evlink);
        if (sv_list_empty(&cq->ch->evq))
            sv__fd_drain(cq->ch->ch.fd);
        cq->f->st.dropped_events++;
    }
    if (cq->ch) {
        cq->ch->refs--;
        cq->ch->ch.refcnt--;
    }
    if (c->dev)
        c->dev->n_cq--;
    c->nchildren--;
    sv__obj_del(cq->f, &cq->obj);
    sv__cq_free(cq);
    return 0;
}

struct ibv_cq *ibv_create_cq(struct ibv_context *context, int cqe, void *cq_context,
                             struct ibv_comp_channel *channel, int comp_vector)
{
    struct sv_ctx *c = (struct sv_ctx *)context;
    if (!c) {
        errno = EINVAL;
        return NULL;
    }
    if (!sv__dev_usable(c->f, c, "ibv_create_cq"))
        return NULL;
    if (comp_vector < 0 || comp_vector >= c->ctx.num_comp_vectors ||
        (channel && channel->context != context)) {
        sv__err(c->f, "ibv_create_cq: bad comp_vector %d or channel of another context", comp_vector);
        errno = EINVAL;
        return NULL;
    }
    struct sv_cq *cq = sv__cq_create(c, cqe, (struct sv_compch *)channel, cq_context, 1);
    return cq ? &cq->cq : NULL;
}

int ibv_destroy_cq(struct ibv_cq *cq)
{
    return cq ? sv__cq_destroy((struct sv_cq *)cq) : EINVAL;
}

int ibv_resize_cq(struct ibv_cq *ibcq, int cqe)
{
    struct sv_cq *cq = (struct sv_cq *)ibcq;
    if (!cq)
        return EINVAL;
    if (cqe < 1 || (cq->ctx->dev && (uint32_t)cqe > cq->ctx->dev->attr.max_cqe) ||
        (uint32_t)cqe < cq->count) {
        sv__err(cq->f, "ibv_resize_cq: cqe %d below the %u queued or above max_cqe", cqe, cq->count);
        return EINVAL;
    }
    struct ibv_wc *ring = calloc((size_t)cqe, sizeof *ring);
    if (!ring)
        return ENOMEM;
    for (uint32_t i = 0; i < cq->count; i++)
        ring[i] = cq->ring[(cq->head + i) % cq->cap];
    free(cq->ring);
    cq->ring = ring;
    cq->head = 0;
    cq->cap = (uint32_t)cqe;
    cq->cq.cqe = cqe;
    if (cq->count < cq->cap)
        cq->overrun_reported = 0;
    return 0;
}

/* ---- receive queues (a QP's own, or an SRQ's) ------------------------------------------ */

int sv__rq_init(struct sv_rq *rq, uint32_t max_wr, uint32_t max_sge)
{
    uint32_t cap = pow2_at_least(max_wr ? max_wr : 1);
    uint32_t stride = (uint32_t)(sizeof(struct sv_rwqe) + (size_t)max_sge * sizeof(struct ibv_sge));
    uint8_t *ring = calloc(cap, stride);
    if (!ring)
        return -1;
    rq->ring = ring;
    rq->stride = stride;
    rq->mask = cap - 1;
    rq->head = rq->tail = 0;
    rq->max_wr = max_wr;
    rq->max_sge = max_sge;
    return 0;
}

static int rq_resize(struct sv_rq *rq, uint32_t max_wr)
{
    struct sv_rq n;
    if (sv__rq_init(&n, max_wr, rq->max_sge) < 0)
        return -1;
    for (uint32_t p = rq->head; p != rq->tail; p++)
        memcpy(sv_rq_slot(&n, n.tail++), sv_rq_slot(rq, p), rq->stride);
    free(rq->ring);
    *rq = n;
    return 0;
}

/* ---- queue pairs -------------------------------------------------------------------------- */

struct sv_qp *sv__qp_create(struct sv_pd *pd, struct ibv_qp_init_attr *a, int counted)
{
    struct sv_ctx *c = pd->ctx;
    struct sv_fabric *f = c->f;
    struct sv_dev *d = c->dev;
    struct sv_cq *scq = (struct sv_cq *)a->send_cq, *rcq = (struct sv_cq *)a->recv_cq;
    struct sv_srq *srq = (struct sv_srq *)a->srq;
    struct ibv_qp_cap cap = a->cap;

    if (a->qp_type != IBV_QPT_RC) {
        sv__err(f, "ibv_create_qp: only IBV_QPT_RC is simulated (got %d)", a->qp_type);
        errno = EOPNOTSUPP;
        return NULL;
    }
    if (!scq || !rcq || scq->ctx != c || rcq->ctx != c || (srq && srq->ctx != c)) {
        sv__err(f, "ibv_create_qp: send_cq and recv_cq are required, all on the PD's context");
        errno = EINVAL;
        return NULL;
    }
    if (srq)
        cap.max_recv_wr = cap.max_recv_sge = 0;
    if (d) {
        const struct sv_device_attr *da = &d->attr;
        if (cap.max_send_wr > da->max_qp_wr || cap.max_recv_wr > da->max_qp_wr ||
            cap.max_send_sge > da->max_sge || cap.max_recv_sge > da->max_sge) {
            sv__err(f, "ibv_create_qp: caps (send %u x %u sge, recv %u x %u sge) exceed "
                    "max_qp_wr %u / max_sge %u", cap.max_send_wr, cap.max_send_sge,
                    cap.max_recv_wr, cap.max_recv_sge, da->max_qp_wr, da->max_sge);
            errno = EINVAL;
            return NULL;
        }
        if (d->n_qp >= da->max_qp) {
            sv__err(f, "ibv_create_qp: device %s has max_qp %u QPs", da->name, da->max_qp);
            errno = ENOMEM;
            return NULL;
        }
    }
    if (cap.max_inline_data > SV_MAX_INLINE) {
        sv__err(f, "ibv_create_qp: max_inline_data %u > %u", cap.max_inline_data, SV_MAX_INLINE);
        errno = EINVAL;
        return NULL;
    }
    struct sv_qp *qp = calloc(1, sizeof *qp);
    if (!qp) {
        errno = ENOMEM;
        return NULL;
    }
    uint32_t sq_cap = pow2_at_least(cap.max_send_wr ? cap.max_send_wr : 1);
    size_t stride = sizeof(struct sv_swqe) + (size_t)cap.max_send_sge * sizeof(struct ibv_sge) +
                    cap.max_inline_data;
    stride = (stride + 15) & ~(size_t)15;
    qp->sq = calloc(sq_cap, stride);
    if (!qp->sq || (!srq && sv__rq_init(&qp->rq, cap.max_recv_wr, cap.max_recv_sge) < 0) ||
        sv__qp_slot(f, qp) < 0) {
        free(qp->sq);
        free(qp->rq.ring);
        free(qp);
        sv__err(f, "ibv_create_qp: out of memory or QP numbers");
        errno = ENOMEM;
        return NULL;
    }
    qp->sq_stride = (uint32_t)stride;
    qp->sq_mask = sq_cap - 1;
    qp->max_send_wr = cap.max_send_wr;
    qp->max_send_sge = cap.max_send_sge;
    qp->max_inline = cap.max_inline_data;
    qp->f = f;
    qp->ctx = c;
    qp->pd = pd;
    qp->scq = scq;
    qp->rcq = rcq;
    qp->srq = srq;
    qp->dev = d ? d->index : -1;
    qp->sig_all = a->sq_sig_all;
    qp->qp.context = &c->ctx;
    qp->qp.qp_context = a->qp_context;
    qp->qp.pd = &pd->pd;
    qp->qp.send_cq = a->send_cq;
    qp->qp.recv_cq = a->recv_cq;
    qp->qp.srq = a->srq;
    qp->qp.handle = f->next_handle++;
    qp->qp.state = IBV_QPS_RESET;
    qp->qp.qp_type = IBV_QPT_RC;
    qp->attr.qp_state = IBV_QPS_RESET;
    qp->attr.port_num = 1;
    qp->attr.path_mtu = IBV_MTU_1024;
    qp->attr.cap = cap;
    pd->refs++;
    scq->refs++;
    rcq->refs++;
    if (srq)
        srq->refs++;
    if (d)
        d->n_qp++;
    sv__obj_add(f, &qp->obj, SV_K_QP, counted);
    a->cap = cap;
    return qp;
}

void sv__qp_free(struct sv_qp *qp)
{
    if (qp->host_bufs) {
        for (uint32_t i = 0; i <= qp->sq_mask; i++)
            free(qp->host_bufs[i]);
        free(qp->host_bufs);
        free(qp->host_caps);
    }
    free(qp->sq);
    free(qp->rq.ring);
    free(qp);
}

/* Pending WRs of a destroyed QP vanish without completions; completions it already put
 * on a CQ stay there (hardware does not reach into a CQ to take them back). */
void sv__qp_destroy(struct sv_qp *qp)
{
    struct sv_fabric *f = qp->f;
    if (qp->cm)
        sv__id_qp_gone(qp->cm);
    sv__async_purge(qp->ctx, qp);
    sv__qp_unslot(f, qp);
    qp->pd->refs--;
    qp->scq->refs--;
    qp->rcq->refs--;
    if (qp->srq)
        qp->srq->refs--;
    if (qp->ctx->dev)
        qp->ctx->dev->n_qp--;
    sv__obj_del(f, &qp->obj);
    sv__qp_free(qp);
}

struct ibv_qp *ibv_create_qp(struct ibv_pd *ibpd, struct ibv_qp_init_attr *attr)
{
    struct sv_pd *pd = (struct sv_pd *)ibpd;
    if (!pd || !attr) {
        errno = EINVAL;
        return NULL;
    }
    if (!sv__dev_usable(pd->ctx->f, pd->ctx, "ibv_create_qp"))
        return NULL;
    struct sv_qp *qp = sv__qp_create(pd, attr, 1);
    return qp ? &qp->qp : NULL;
}

int ibv_destroy_qp(struct ibv_qp *qp)
{
    if (!qp)
        return EINVAL;
    sv__qp_destroy((struct sv_qp *)qp);
    return 0;
}

void sv__qp_error(struct sv_qp *qp)
{
    if (qp->qp.state == IBV_QPS_ERR)
        return;
    qp->qp.state = IBV_QPS_ERR;
    qp->attr.qp_state = IBV_QPS_ERR;
    sv__qp_flush(qp);
    if (qp->host)
        sv__host_qp_error(qp->host);
    /* A QP on an SRQ that enters the error state takes no more receives from it once its
     * last WQE has completed - here at once, its send queue flushed above - and the verbs
     * consumer is told so (IBV_EVENT_QP_LAST_WQE_REACHED, InfiniBand 1.4 11.6.3): a
     * consumer such as SPDK waits for it before destroying the QP. */
    else if (qp->srq)
        sv__async(qp->ctx, IBV_EVENT_QP_LAST_WQE_REACHED, qp);
}

void sv__qp_set_state(struct sv_qp *qp, enum ibv_qp_state s)
{
    if (s == IBV_QPS_ERR) {
        sv__qp_error(qp);
        return;
    }
    if (s == IBV_QPS_RESET) {
        /* reset forgets every WR without completing it, and the connection */
        qp->sq_head = qp->sq_done = qp->sq_tail;
        if (!qp->srq)
            qp->rq.head = qp->rq.tail;
        qp->peer_qpn = 0;
    }
    qp->qp.state = s;
    qp->attr.qp_state = s;
}

void sv__qp_ready(struct sv_qp *qp)
{
    if (qp->qp.state == IBV_QPS_RESET)
        sv__qp_set_state(qp, IBV_QPS_INIT);
    if (qp->qp.state == IBV_QPS_INIT)
        sv__qp_set_state(qp, IBV_QPS_RTR);
    if (qp->qp.state == IBV_QPS_RTR)
        sv__qp_set_state(qp, IBV_QPS_RTS);
}

static int transition_ok(enum ibv_qp_state cur, enum ibv_qp_state nxt)
{
    if (nxt == IBV_QPS_RESET || nxt == IBV_QPS_ERR)
        return 1;
    switch (cur) {
    case IBV_QPS_RESET: return nxt == IBV_QPS_INIT;
    case IBV_QPS_INIT: return nxt == IBV_QPS_INIT || nxt == IBV_QPS_RTR;
    case IBV_QPS_RTR: return nxt == IBV_QPS_RTS;
    case IBV_QPS_RTS: return nxt == IBV_QPS_RTS || nxt == IBV_QPS_SQD;
    case IBV_QPS_SQD: return nxt == IBV_QPS_RTS || nxt == IBV_QPS_SQD;
    case IBV_QPS_SQE: return nxt == IBV_QPS_RTS;
    default: return 0;
    }
}

int ibv_modify_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr, int mask)
{
    struct sv_qp *qp = (struct sv_qp *)ibqp;
    if (!qp || !attr)
        return EINVAL;
    struct sv_fabric *f = qp->f;
    enum ibv_qp_state cur = qp->qp.state;
    enum ibv_qp_state nxt = (mask & IBV_QP_STATE) ? attr->qp_state : cur;
    if ((mask & IBV_QP_CUR_STATE) && attr->cur_qp_state != cur) {
        sv__err(f, "ibv_modify_qp: cur_qp_state %d but the QP is in %d", attr->cur_qp_state, cur);
        return EINVAL;
    }
    if ((mask & IBV_QP_STATE) && !transition_ok(cur, nxt)) {
        sv__err(f, "ibv_modify_qp: no transition from state %d to %d", cur, nxt);
        return EINVAL;
    }
    if (qp->ctx->dev && qp->ctx->dev->removed && nxt != IBV_QPS_ERR && nxt != IBV_QPS_RESET)
        return EIO;
    const struct sv_device_attr *da = qp->ctx->dev ? &qp->ctx->dev->attr : NULL;
    if (da && (mask & IBV_QP_MAX_QP_RD_ATOMIC) && attr->max_rd_atomic > da->max_qp_init_rd_atom) {
        sv__err(f, "ibv_modify_qp: max_rd_atomic %u > max_qp_init_rd_atom %u", attr->max_rd_atomic,
                da->max_qp_init_rd_atom);
        return EINVAL;
    }
    if (da && (mask & IBV_QP_MAX_DEST_RD_ATOMIC) && attr->max_dest_rd_atomic > da->max_qp_rd_atom) {
        sv__err(f, "ibv_modify_qp: max_dest_rd_atomic %u > max_qp_rd_atom %u",
                attr->max_dest_rd_atomic, da->max_qp_rd_atom);
        return EINVAL;
    }
    if ((mask & IBV_QP_PORT) && attr->port_num != 1)
        return EINVAL;
    if ((mask & IBV_QP_DEST_QPN) && !sv__qp_find(f, attr->dest_qp_num)) {
        sv__err(f, "ibv_modify_qp: dest_qp_num %u is no QP on the fabric", attr->dest_qp_num);
        return EINVAL;
    }
    struct ibv_qp_attr *s = &qp->attr;
    if (mask & IBV_QP_ACCESS_FLAGS) s->qp_access_flags = attr->qp_access_flags;
    if (mask & IBV_QP_PKEY_INDEX) s->pkey_index = attr->pkey_index;
    if (mask & IBV_QP_PORT) s->port_num = attr->port_num;
    if (mask & IBV_QP_QKEY) s->qkey = attr->qkey;
    if (mask & IBV_QP_AV) s->ah_attr = attr->ah_attr;
    if (mask & IBV_QP_PATH_MTU) s->path_mtu = attr->path_mtu;
    if (mask & IBV_QP_TIMEOUT) s->timeout = attr->timeout;
    if (mask & IBV_QP_RETRY_CNT) s->retry_cnt = attr->retry_cnt;
    if (mask & IBV_QP_RNR_RETRY) s->rnr_retry = attr->rnr_retry;
    if (mask & IBV_QP_RQ_PSN) s->rq_psn = attr->rq_psn;
    if (mask & IBV_QP_MAX_QP_RD_ATOMIC) s->max_rd_atomic = attr->max_rd_atomic;
    if (mask & IBV_QP_MIN_RNR_TIMER) s->min_rnr_timer = attr->min_rnr_timer;
    if (mask & IBV_QP_SQ_PSN) s->sq_psn = attr->sq_psn;
    if (mask & IBV_QP_MAX_DEST_RD_ATOMIC) s->max_dest_rd_atomic = attr->max_dest_rd_atomic;
    if (mask & IBV_QP_DEST_QPN) {
        s->dest_qp_num = attr->dest_qp_num;
        qp->peer_qpn = attr->dest_qp_num;
    }
    if ((mask & IBV_QP_STATE) && (nxt != cur || nxt == IBV_QPS_RESET))
        sv__qp_set_state(qp, nxt);
    return 0;
}

int ibv_query_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr, int mask,
                 struct ibv_qp_init_attr *init)
{
    struct sv_qp *qp = (struct sv_qp *)ibqp;
    (void)mask;
    if (!qp || !attr)
        return EINVAL;
    *attr = qp->attr;
    attr->qp_state = qp->qp.state;
    attr->cur_qp_state = qp->qp.state;
    attr->dest_qp_num = qp->peer_qpn;
    if (init) {
        memset(init, 0, sizeof *init);
        init->qp_context = qp->qp.qp_context;
        init->send_cq = qp->qp.send_cq;
        init->recv_cq = qp->qp.recv_cq;
        init->srq = qp->qp.srq;
        init->cap = qp->attr.cap;
        init->qp_type = IBV_QPT_RC;
        init->sq_sig_all = qp->sig_all;
    }
    return 0;
}

/* ---- shared receive queues --------------------------------------------------------------- */

struct ibv_srq *ibv_create_srq(struct ibv_pd *ibpd, struct ibv_srq_init_attr *a)
{
    struct sv_pd *pd = (struct sv_pd *)ibpd;
    if (!pd || !a) {
        errno = EINVAL;
        return NULL;
    }
    struct sv_ctx *c = pd->ctx;
    struct sv_fabric *f = c->f;
    if (!sv__dev_usable(f, c, "ibv_create_srq"))
        return NULL;
    struct sv_dev *d = c->dev;
    if (!d || d->attr.max_srq == 0) {
        sv__err(f, "ibv_create_srq: the device has no SRQ support (max_srq 0)");
        errno = EOPNOTSUPP;
        return NULL;
    }
    if (a->attr.max_wr < 1 || a->attr.max_wr > d->attr.max_srq_wr ||
        a->attr.max_sge > d->attr.max_srq_sge) {
        sv__err(f, "ibv_create_srq: max_wr %u / max_sge %u not within 1..%u / %u", a->attr.max_wr,
                a->attr.max_sge, d->attr.max_srq_wr, d->attr.max_srq_sge);
        errno = EINVAL;
        return NULL;
    }
    if (d->n_srq >= d->attr.max_srq) {
        sv__err(f, "ibv_create_srq: device %s has max_srq %u SRQs", d->attr.name, d->attr.max_srq);
        errno = ENOMEM;
        return NULL;
    }
    struct sv_srq *srq = calloc(1, sizeof *srq);
    if (!srq || sv__rq_init(&srq->rq, a->attr.max_wr, a->attr.max_sge) < 0) {
        free(srq);
        errno = ENOMEM;
        return NULL;
    }
    srq->srq.context = &c->ctx;
    srq->srq.srq_context = a->srq_context;
    srq->srq.pd = &pd->pd;
    srq->srq.handle = f->next_handle++;
    srq->f = f;
    srq->ctx = c;
    srq->pd = pd;
    pd->refs++;
    d->n_srq++;
    sv__obj_add(f, &srq->obj, SV_K_SRQ, 1);
    return &srq->srq;
}

void sv__srq_free(struct sv_srq *srq)
{
    free(srq->rq.ring);
    free(srq);
}

int ibv_modify_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr, int mask)
{
    struct sv_srq *srq = (struct sv_srq *)ibsrq;
    if (!srq || !attr)
        return EINVAL;
    const struct sv_device_attr *da = &srq->ctx->dev->attr;
    uint32_t max_wr = srq->rq.max_wr;
    if (mask & IBV_SRQ_MAX_WR) {
        if (!(da->device_cap_flags & IBV_DEVICE_SRQ_RESIZE) || attr->max_wr < 1 ||
            attr->max_wr > da->max_srq_wr || attr->max_wr < srq->rq.tail - srq->rq.head) {
            sv__err(srq->f, "ibv_modify_srq: cannot resize to %u", attr->max_wr);
            return EINVAL;
        }
        max_wr = attr->max_wr;
    }
    if ((mask & IBV_SRQ_LIMIT) && attr->srq_limit > max_wr) {
        sv__err(srq->f, "ibv_modify_srq: srq_limit %u > max_wr %u", attr->srq_limit, max_wr);
        return EINVAL;
    }
    if ((mask & IBV_SRQ_MAX_WR) && max_wr != srq->rq.max_wr && rq_resize(&srq->rq, max_wr) < 0)
        return ENOMEM;
    if (mask & IBV_SRQ_LIMIT)
        srq->limit = attr->srq_limit;
    return 0;
}

int ibv_query_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr)
{
    struct sv_srq *srq = (struct sv_srq *)ibsrq;
    if (!srq || !attr)
        return EINVAL;
    attr->max_wr = srq->rq.max_wr;
    attr->max_sge = srq->rq.max_sge;
    attr->srq_limit = srq->limit;
    return 0;
}

int ibv_destroy_srq(struct ibv_srq *ibsrq)
{
    struct sv_srq *srq = (struct sv_srq *)ibsrq;
    if (!srq)
        return EINVAL;
    if (srq->refs) {
        sv__err(srq->f, "ibv_destroy_srq: %u QPs still use the SRQ", srq->refs);
        return EBUSY;
    }
    sv__async_purge(srq->ctx, srq);
    srq->pd->refs--;
    srq->ctx->dev->n_srq--;
    sv__obj_del(srq->f, &srq->obj);
    sv__srq_free(srq);
    return 0;
}
