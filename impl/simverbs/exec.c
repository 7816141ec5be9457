/*
 * exec.c — the data path: posting (the context ops rdma-core's inline ibv_post_send /
 * ibv_post_recv / ibv_post_srq_recv / ibv_poll_cq / ibv_req_notify_cq call), executing a
 * send queue's head with RC semantics, completions, and flushing.
 *
 * Nothing here allocates: WRs are copied into rings made at QP creation, completions into
 * the CQ's ring, and lookups by key or QP number are table indexes.
 */
#include "sv_internal.h"

/* Autoprogress (a default fabric, for unmodified programs): besides every poll, a post, a
 * notify request or a completion-channel read runs everything, so a program that sleeps
 * on a completion channel instead of polling still sees its work complete. */
static inline void autoprogress(struct sv_fabric *f)
{
    if (SV_UNLIKELY(f->autoprogress))
        sv__progress_all(f);
}

/* ---- completions ---------------------------------------------------------------------- */

static const uint8_t wc_opcode_of[] = {
    [IBV_WR_RDMA_WRITE] = IBV_WC_RDMA_WRITE,
    [IBV_WR_RDMA_WRITE_WITH_IMM] = IBV_WC_RDMA_WRITE,
    [IBV_WR_SEND] = IBV_WC_SEND,
    [IBV_WR_SEND_WITH_IMM] = IBV_WC_SEND,
    [IBV_WR_RDMA_READ] = IBV_WC_RDMA_READ,
    [IBV_WR_SEND_WITH_INV] = IBV_WC_SEND,
};

static void cq_overrun(struct sv_cq *cq)
{
    cq->f->st.cq_overruns++;
    /* one event per episode: a flush into a full CQ would otherwise raise thousands */
    if (!cq->overrun_reported) {
        cq->overrun_reported = 1;
        sv__async(cq->ctx, IBV_EVENT_CQ_ERR, cq);
    }
}

static void cq_notify(struct sv_cq *cq)
{
    cq->armed = 0;
    if (cq->ch && !cq->ev_queued) {
        cq->ev_queued = 1;
        int was_empty = sv_list_empty(&cq->ch->evq);
        sv_list_add_tail(&cq->ch->evq, &cq->evlink);
        if (was_empty)
            sv__fd_signal(cq->ch->ch.fd);
    }
}

/* Every work completion goes through here: counted for the QP and the fabric, then placed
 * on the CQ, or dropped (cq_overruns, IBV_EVENT_CQ_ERR) if the CQ is full. */
static inline void complete(struct sv_qp *qp, struct sv_cq *cq, uint64_t wr_id,
                            enum ibv_wc_status st, unsigned op, uint32_t len, uint32_t imm,
                            unsigned flags, uint32_t src_qp)
{
    struct sv_fabric *f = qp->f;
    f->st.completions++;
    qp->completions++;
    if (SV_UNLIKELY(st != IBV_WC_SUCCESS)) {
        if (st == IBV_WC_WR_FLUSH_ERR) {
            qp->flushed++;
            f->st.flushed++;
        } else {
            qp->errors++;
        }
    }
    if (SV_UNLIKELY(cq->count == cq->cap)) {
        cq_overrun(cq);
        return;
    }
    uint32_t pos = cq->head + cq->count;
    if (pos >= cq->cap)
        pos -= cq->cap;
    cq->count++;
    /* every field a verbs program can read, one by one: a compound literal would zero the
     * entry first (a string instruction, for 48 bytes); the ring's padding stays calloc's 0 */
    struct ibv_wc *wc = &cq->ring[pos];
    wc->wr_id = wr_id;
    wc->status = st;
    wc->opcode = (enum ibv_wc_opcode)op;
    wc->vendor_err = 0;
    wc->byte_len = len;
    wc->imm_data = imm;
    wc->qp_num = qp->qp.qp_num;
    wc->src_qp = src_qp;
    wc->wc_flags = flags;
    wc->pkey_index = 0;
    wc->slid = 0;
    wc->sl = 0;
    wc->dlid_path_bits = 0;
    if (SV_UNLIKELY(cq->armed))
        cq_notify(cq);
}

static int poll_cq(struct ibv_cq *ibcq, int n, struct ibv_wc *wc)
{
    struct sv_cq *cq = (struct sv_cq *)ibcq;
    autoprogress(cq->f);
    if (SV_UNLIKELY(n <= 0))
        return n < 0 ? -1 : 0;
    uint32_t k = (uint32_t)n < cq->count ? (uint32_t)n : cq->count;
    uint32_t first = cq->cap - cq->head;
    if (first > k)
        first = k;
    memcpy(wc, &cq->ring[cq->head], (size_t)first * sizeof *wc);
    if (k > first)
        memcpy(wc + first, cq->ring, (size_t)(k - first) * sizeof *wc);
    cq->head += k;
    if (cq->head >= cq->cap)
        cq->head -= cq->cap;
    cq->count -= k;
    if (k)
        cq->overrun_reported = 0;
    return (int)k;
}

static int req_notify_cq(struct ibv_cq *ibcq, int solicited_only)
{
    struct sv_cq *cq = (struct sv_cq *)ibcq;
    (void)solicited_only;        /* every completion counts as solicited here */
    cq->armed = 1;
    autoprogress(cq->f);
    return 0;
}

/* ---- posting ------------------------------------------------------------------------------ */

/* The opcodes simulated, as one bit each (every opcode checked here is below 32). */
#define SV_OPS_SUPPORTED                                                                  \
    (1u << IBV_WR_SEND | 1u << IBV_WR_SEND_WITH_IMM | 1u << IBV_WR_SEND_WITH_INV |       \
     1u << IBV_WR_RDMA_WRITE | 1u << IBV_WR_RDMA_WRITE_WITH_IMM | 1u << IBV_WR_RDMA_READ)

static int op_supported(enum ibv_wr_opcode op)
{
    return (unsigned)op < 32 && (SV_OPS_SUPPORTED >> (unsigned)op & 1u);
}

static uint32_t peer_of(const struct sv_qp *qp) { return qp->peer_qpn; }

/* An error QP completes every post at once, flushed, in order.  (Out of line: the error
 * paths keep the posting fast path's registers free.) */
static __attribute__((noinline, cold)) int post_send_flush(struct sv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
    for (; wr; wr = wr->next) {
        if (wr->num_sge < 0 || (uint32_t)wr->num_sge > qp->max_send_sge || !op_supported(wr->opcode)) {
            *bad = wr;
            return EINVAL;
        }
        qp->posts_send++;
        complete(qp, qp->scq, wr->wr_id, IBV_WC_WR_FLUSH_ERR, wc_opcode_of[wr->opcode], 0, 0, 0,
                 peer_of(qp));
    }
    return 0;
}

static int do_post_send(struct sv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
    if (SV_UNLIKELY(qp->fail_posts)) {
        qp->fail_posts--;
        qp->f->st.failed_posts++;
        *bad = wr;
        return ENOMEM;
    }
    if (SV_UNLIKELY(qp->qp.state != IBV_QPS_RTS)) {
        if (qp->qp.state == IBV_QPS_ERR)
            return post_send_flush(qp, wr, bad);
        sv__err(qp->f, "ibv_post_send: QP %u is in state %d, not RTS", qp->qp.qp_num, qp->qp.state);
        *bad = wr;
        return EINVAL;
    }
    for (; wr; wr = wr->next) {
        if (SV_UNLIKELY(qp->sq_tail - qp->sq_done >= qp->max_send_wr)) {
            *bad = wr;
            return ENOMEM;
        }
        uint32_t n = (uint32_t)wr->num_sge;
        if (SV_UNLIKELY(wr->num_sge < 0 || n > qp->max_send_sge || !op_supported(wr->opcode))) {
            sv__err(qp->f, "ibv_post_send: num_sge %d (max %u) or opcode %d not supported",
                    wr->num_sge, qp->max_send_sge, wr->opcode);
            *bad = wr;
            return EINVAL;
        }
        struct sv_swqe *w = sv_sq_slot(qp, qp->sq_tail);
        uint64_t total = 0;
        uint8_t flags = (wr->send_flags & IBV_SEND_SIGNALED) || qp->sig_all ? SV_WQE_SIGNALED : 0;
        if (SV_UNLIKELY(wr->send_flags & IBV_SEND_INLINE)) {
            /* the data is copied now: the caller may reuse its buffers on return */
            uint8_t *dst = (uint8_t *)&w->sge[qp->max_send_sge];
            if (wr->opcode == IBV_WR_RDMA_READ) {
                *bad = wr;
                return EINVAL;
            }
            for (uint32_t i = 0; i < n; i++)
                total += wr->sg_list[i].length;
            if (total > qp->max_inline) {
                sv__err(qp->f, "ibv_post_send: %llu inline bytes > max_inline_data %u",
                        (unsigned long long)total, qp->max_inline);
                *bad = wr;
                return EINVAL;
            }
            uint32_t off = 0;
            for (uint32_t i = 0; i < n; i++) {
                memcpy(dst + off, (const void *)(uintptr_t)wr->sg_list[i].addr, wr->sg_list[i].length);
                off += wr->sg_list[i].length;
            }
            w->data = dst;
            w->num_sge = 0;
            flags |= SV_WQE_INLINE;
        } else {
            for (uint32_t i = 0; i < n; i++) {
                w->sge[i] = wr->sg_list[i];
                total += wr->sg_list[i].length;
            }
            if (SV_UNLIKELY(total > 0x80000000ull)) {
                *bad = wr;
                return EINVAL;
            }
            w->num_sge = (uint16_t)n;
        }
        w->wr_id = wr->wr_id;
        w->remote_addr = wr->wr.rdma.remote_addr;
        w->rkey = wr->wr.rdma.rkey;
        w->imm = wr->imm_data;
        w->total = (uint32_t)total;
        w->opcode = (uint8_t)wr->opcode;
        w->flags = flags;
        qp->sq_tail++;
        qp->posts_send++;
    }
    return 0;
}

static inline int rq_post(struct sv_rq *rq, const struct ibv_recv_wr *wr)
{
    if (SV_UNLIKELY(rq->tail - rq->head >= rq->max_wr))
        return ENOMEM;
    uint32_t n = (uint32_t)wr->num_sge;
    if (SV_UNLIKELY(wr->num_sge < 0 || n > rq->max_sge))
        return EINVAL;
    struct sv_rwqe *r = sv_rq_slot(rq, rq->tail);
    r->wr_id = wr->wr_id;
    r->num_sge = n;
    if (SV_LIKELY(n == 1)) {   /* the usual receive: one buffer, its length the total */
        r->sge[0] = wr->sg_list[0];
        r->total = wr->sg_list[0].length;
    } else {
        uint64_t total = 0;
        for (uint32_t i = 0; i < n; i++) {
            r->sge[i] = wr->sg_list[i];
            total += wr->sg_list[i].length;
        }
        r->total = total > 0xFFFFFFFFull ? 0xFFFFFFFFu : (uint32_t)total;
    }
    rq->tail++;
    return 0;
}

/* An error QP flushes every receive posted to it at once, in order (out of line). */
static __attribute__((noinline, cold)) int post_recv_flush(struct sv_qp *qp, struct ibv_recv_wr *wr,
                                                           struct ibv_recv_wr **bad)
{
    for (; wr; wr = wr->next) {
        if (wr->num_sge < 0 || (uint32_t)wr->num_sge > qp->rq.max_sge) {
            *bad = wr;
            return EINVAL;
        }
        qp->posts_recv++;
        complete(qp, qp->rcq, wr->wr_id, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV, 0, 0, 0, peer_of(qp));
    }
    return 0;
}

static int do_post_recv(struct sv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
    if (SV_UNLIKELY(qp->fail_posts)) {
        qp->fail_posts--;
        qp->f->st.failed_posts++;
        *bad = wr;
        return ENOMEM;
    }
    if (SV_UNLIKELY(qp->srq || qp->qp.state == IBV_QPS_RESET)) {
        sv__err(qp->f, "ibv_post_recv: QP %u %s", qp->qp.qp_num,
                qp->srq ? "uses an SRQ" : "is in RESET");
        *bad = wr;
        return EINVAL;
    }
    if (SV_UNLIKELY(qp->qp.state == IBV_QPS_ERR))
        return post_recv_flush(qp, wr, bad);
    for (; wr; wr = wr->next) {
        int rc = rq_post(&qp->rq, wr);
        if (SV_UNLIKELY(rc)) {
            *bad = wr;
            return rc;
        }
        qp->posts_recv++;
    }
    return 0;
}

static int do_post_srq_recv(struct sv_srq *srq, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
    for (; wr; wr = wr->next) {
        int rc = rq_post(&srq->rq, wr);
        if (SV_UNLIKELY(rc)) {
            *bad = wr;
            return rc;
        }
        srq->f->st.posted++;
    }
    return 0;
}

static int post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
    struct sv_qp *qp = (struct sv_qp *)ibqp;
    uint64_t before = qp->posts_send;
    int rc = do_post_send(qp, wr, bad);
    qp->f->st.posted += qp->posts_send - before;
    autoprogress(qp->f);
    return rc;
}

static int post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
    struct sv_qp *qp = (struct sv_qp *)ibqp;
    uint64_t before = qp->posts_recv;
    int rc = do_post_recv(qp, wr, bad);
    qp->f->st.posted += qp->posts_recv - before;
    autoprogress(qp->f);
    return rc;
}

static int post_srq_recv(struct ibv_srq *ibsrq, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
    struct sv_srq *srq = (struct sv_srq *)ibsrq;
    int rc = do_post_srq_recv(srq, wr, bad);
    autoprogress(srq->f);
    return rc;
}

const struct ibv_context_ops sv__ops = {
    .poll_cq = poll_cq,
    .req_notify_cq = req_notify_cq,
    .post_srq_recv = post_srq_recv,
    .post_send = post_send,
    .post_recv = post_recv,
};

/* ---- memory checks -------------------------------------------------------------------------- */

/* A local SGE is usable if an MR of that lkey, in the QP's PD, with the access it needs,
 * covers it.  Zero-length SGEs touch no memory and are not checked. */
static inline int sge_ok(const struct sv_fabric *f, const struct sv_pd *pd, const struct ibv_sge *s,
                         int need)
{
    if (!s->length)
        return 1;
    const struct sv_mr *m = sv__mr_lkey(f, s->lkey);
    if (SV_UNLIKELY(!m || m->pd != pd || (m->access & need) != need))
        return 0;
    uint64_t off = s->addr - m->iova;
    return s->addr >= m->iova && off <= m->len && s->length <= m->len - off;
}

static inline int sges_ok(const struct sv_fabric *f, const struct sv_pd *pd,
                          const struct ibv_sge *s, uint32_t n, int need)
{
    for (uint32_t i = 0; i < n; i++)
        if (SV_UNLIKELY(!sge_ok(f, pd, &s[i], need)))
            return 0;
    return 1;
}

/* Checks and translates one SGE at once (the single-SGE fast path).  A zero-length SGE
 * is fine and translates to NULL: callers copy nothing for a zero-length WR. */
static inline int sge_at(const struct sv_fabric *f, const struct sv_pd *pd, const struct ibv_sge *s,
                         int need, uint8_t **p)
{
    *p = NULL;
    if (!s->length)
        return 1;
    const struct sv_mr *m = sv__mr_lkey(f, s->lkey);
    if (SV_UNLIKELY(!m || m->pd != pd || (m->access & need) != need))
        return 0;
    uint64_t off = s->addr - m->iova;
    if (SV_UNLIKELY(s->addr < m->iova || off > m->len || s->length > m->len - off))
        return 0;
    *p = m->base + off;
    return 1;
}

static inline uint8_t *sge_ptr(const struct sv_fabric *f, const struct ibv_sge *s)
{
    const struct sv_mr *m = sv__mr_lkey(f, s->lkey);
    return m->base + (s->addr - m->iova);
}

/* The responder side of RDMA: an MR of that rkey in the peer QP's PD, with the remote
 * access, and the QP itself allowing it (the CM grants REMOTE_READ only to a side that
 * offered responder resources). */
static inline int remote_at(const struct sv_fabric *f, const struct sv_qp *peer, uint32_t rkey,
                            uint64_t addr, uint32_t len, int need, uint8_t **p)
{
    *p = NULL;
    if (!len)
        return 1;                /* zero-length RDMA checks no R_Key */
    const struct sv_mr *m = sv__mr_rkey(f, rkey);
    if (SV_UNLIKELY(!m || m->pd != peer->pd || !(m->access & need) ||
                    !(peer->attr.qp_access_flags & need)))
        return 0;
    uint64_t off = addr - m->iova;
    if (SV_UNLIKELY(addr < m->iova || off > m->len || len > m->len - off))
        return 0;
    *p = m->base + off;
    return 1;
}

/* ---- copying between a contiguous buffer and an SGE list --------------------------------- */

static void gather(const struct sv_fabric *f, uint8_t *dst, const struct ibv_sge *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (!s[i].length)
            continue;
        memmove(dst, sge_ptr(f, &s[i]), s[i].length);
        dst += s[i].length;
    }
}

static void scatter(const struct sv_fabric *f, const struct ibv_sge *s, uint32_t n, const uint8_t *src,
                    uint32_t len)
{
    for (uint32_t i = 0; i < n && len; i++) {
        uint32_t c = s[i].length < len ? s[i].length : len;
        if (!c)
            continue;
        memmove(sge_ptr(f, &s[i]), src, c);
        src += c;
        len -= c;
    }
}

/* SGE list to SGE list (a SEND without inline data). */
/* The receive was checked to hold the whole message, so d never runs out. */
static void sge_copy(const struct sv_fabric *f, const struct ibv_sge *d, const struct ibv_sge *s,
                     uint32_t ns)
{
    uint32_t di = 0, doff = 0;
    for (uint32_t si = 0; si < ns; si++) {
        uint32_t left = s[si].length;
        if (!left)
            continue;
        const uint8_t *sp = sge_ptr(f, &s[si]);
        while (left) {
            while (d[di].length == doff) {
                di++;
                doff = 0;
            }
            uint32_t room = d[di].length - doff;
            uint32_t c = room < left ? room : left;
            memmove(sge_ptr(f, &d[di]) + doff, sp, c);
            sp += c;
            left -= c;
            doff += c;
        }
    }
}

/* ---- execution ------------------------------------------------------------------------------ */

static inline void sq_success(struct sv_qp *qp, const struct sv_swqe *w, uint32_t peer_qpn)
{
    qp->f->st.executed++;
    qp->sq_head++;
    if (w->flags & SV_WQE_SIGNALED) {
        /* a signaled completion releases every earlier unsignaled slot too */
        qp->sq_done = qp->sq_head;
        complete(qp, qp->scq, w->wr_id, IBV_WC_SUCCESS, wc_opcode_of[w->opcode], w->total, 0, 0,
                 peer_qpn);
    }
}

/* The head failed: its completion is generated whatever its signaling, and the QP goes to
 * error, flushing the rest of its send queue, then its receives. */
static int sq_fail(struct sv_qp *qp, const struct sv_swqe *w, enum ibv_wc_status st)
{
    qp->f->st.executed++;
    qp->sq_head++;
    qp->sq_done = qp->sq_head;
    complete(qp, qp->scq, w->wr_id, st, wc_opcode_of[w->opcode], 0, 0, 0, peer_of(qp));
    sv__qp_error(qp);
    return 1;
}

/* The receiver's side of an error: its receive completes in error and it goes to error. */
static void rq_fail(struct sv_qp *peer, struct sv_rq *rq, const struct sv_rwqe *r,
                    enum ibv_wc_status st, uint32_t src_qpn)
{
    rq->head++;
    complete(peer, peer->rcq, r->wr_id, st, IBV_WC_RECV, 0, 0, 0, src_qpn);
    if (peer->srq)
        sv__srq_check_limit(peer->srq);
    sv__qp_error(peer);
}

/* A remote access violation, real or injected (sv_qp_remote_access_error): the requester
 * gets IBV_WC_REM_ACCESS_ERR and goes to error; the responder is left as it was. */
static int remote_fail(struct sv_qp *qp, const struct sv_swqe *w)
{
    if (qp->rae)
        qp->rae--;
    qp->f->st.remote_access_errors++;
    return sq_fail(qp, w, IBV_WC_REM_ACCESS_ERR);
}

void sv__srq_check_limit(struct sv_srq *srq)
{
    if (srq->limit && srq->rq.tail - srq->rq.head < srq->limit) {
        srq->limit = 0;          /* one event, then disarmed, as the verbs API says */
        sv__async(srq->ctx, IBV_EVENT_SRQ_LIMIT_REACHED, srq);
    }
}

static int exec_read(struct sv_qp *qp, struct sv_swqe *w, struct sv_qp *peer)
{
    struct sv_fabric *f = qp->f;
    uint8_t *lp = NULL, *rp = NULL;
    int one = w->num_sge == 1;
    if (SV_UNLIKELY(one ? !sge_at(f, qp->pd, &w->sge[0], IBV_ACCESS_LOCAL_WRITE, &lp)
                        : !sges_ok(f, qp->pd, w->sge, w->num_sge, IBV_ACCESS_LOCAL_WRITE)))
        return sq_fail(qp, w, IBV_WC_LOC_PROT_ERR);
    if (SV_UNLIKELY(qp->rae ||
                    !remote_at(f, peer, w->rkey, w->remote_addr, w->total, IBV_ACCESS_REMOTE_READ, &rp)))
        return remote_fail(qp, w);
    if (w->total) {
        if (SV_LIKELY(one))
            memmove(lp, rp, w->total);
        else
            scatter(f, w->sge, w->num_sge, rp, w->total);
    }
    f->st.rdma_reads++;
    f->st.bytes_moved += w->total;
    sq_success(qp, w, peer->qp.qp_num);
    return 1;
}

/* Finds the receive a SEND or WRITE_WITH_IMM consumes; NULL: RNR, retry later. */
static inline struct sv_rq *peer_rq(struct sv_qp *peer)
{
    struct sv_rq *rq = peer->srq ? &peer->srq->rq : &peer->rq;
    return rq->head != rq->tail ? rq : NULL;
}

static int exec_write(struct sv_qp *qp, struct sv_swqe *w, struct sv_qp *peer)
{
    struct sv_fabric *f = qp->f;
    int imm = w->opcode == IBV_WR_RDMA_WRITE_WITH_IMM;
    struct sv_rq *rq = NULL;
    if (imm) {
        if (qp->rnr) {
            qp->rnr--;
            f->st.rnr_errors++;
            return sq_fail(qp, w, IBV_WC_RNR_RETRY_EXC_ERR);
        }
        if (!(rq = peer_rq(peer))) {
            f->st.rnr_waits++;
            return 0;
        }
    }
    uint8_t *lp = NULL, *rp = NULL;
    int inl = w->flags & SV_WQE_INLINE, one = w->num_sge == 1;
    if (!inl && SV_UNLIKELY(one ? !sge_at(f, qp->pd, &w->sge[0], 0, &lp)
                                : !sges_ok(f, qp->pd, w->sge, w->num_sge, 0)))
        return sq_fail(qp, w, IBV_WC_LOC_PROT_ERR);
    if (SV_UNLIKELY(qp->rae ||
                    !remote_at(f, peer, w->rkey, w->remote_addr, w->total, IBV_ACCESS_REMOTE_WRITE, &rp)))
        return remote_fail(qp, w);
    if (w->total) {
        if (inl)
            memmove(rp, w->data, w->total);
        else if (SV_LIKELY(one))
            memmove(rp, lp, w->total);
        else
            gather(f, rp, w->sge, w->num_sge);
    }
    f->st.rdma_writes++;
    f->st.bytes_moved += w->total;
    if (imm) {
        struct sv_rwqe *r = sv_rq_slot(rq, rq->head);
        rq->head++;
        complete(peer, peer->rcq, r->wr_id, IBV_WC_SUCCESS, IBV_WC_RECV_RDMA_WITH_IMM, w->total,
                 w->imm, IBV_WC_WITH_IMM, qp->qp.qp_num);
        if (peer->srq)
            sv__srq_check_limit(peer->srq);
    }
    sq_success(qp, w, peer->qp.qp_num);
    return 1;
}

static int exec_send(struct sv_qp *qp, struct sv_swqe *w, struct sv_qp *peer)
{
    struct sv_fabric *f = qp->f;
    if (SV_UNLIKELY(qp->rnr)) {
        qp->rnr--;
        f->st.rnr_errors++;
        return sq_fail(qp, w, IBV_WC_RNR_RETRY_EXC_ERR);
    }
    struct sv_rq *rq = peer_rq(peer);
    if (!rq) {
        f->st.rnr_waits++;
        return 0;
    }
    /* Single-SGE sides (the usual capsule and response) are checked and translated in
     * one step (sge_at); the checks and their order are those of sges_ok. */
    int inl = w->flags & SV_WQE_INLINE;
    const uint8_t *sp = inl ? w->data : NULL;
    if (!inl && SV_UNLIKELY(w->num_sge == 1 ? !sge_at(f, qp->pd, &w->sge[0], 0, (uint8_t **)&sp)
                                           : !sges_ok(f, qp->pd, w->sge, w->num_sge, 0)))
        return sq_fail(qp, w, IBV_WC_LOC_PROT_ERR);
    struct sv_rwqe *r = sv_rq_slot(rq, rq->head);
    uint8_t *dp = NULL;
    int rone = r->num_sge == 1;
    if (SV_UNLIKELY(rone ? !sge_at(f, peer->pd, &r->sge[0], IBV_ACCESS_LOCAL_WRITE, &dp)
                         : !sges_ok(f, peer->pd, r->sge, r->num_sge, IBV_ACCESS_LOCAL_WRITE))) {
        rq_fail(peer, rq, r, IBV_WC_LOC_PROT_ERR, qp->qp.qp_num);
        return sq_fail(qp, w, IBV_WC_REM_OP_ERR);
    }
    if (SV_UNLIKELY(w->total > r->total)) {
        rq_fail(peer, rq, r, IBV_WC_LOC_LEN_ERR, qp->qp.qp_num);
        return sq_fail(qp, w, IBV_WC_REM_INV_REQ_ERR);
    }
    if (SV_LIKELY(rone && (inl || w->num_sge == 1))) {
        /* the receive holds the whole message (checked above), so a non-zero total has
         * a non-zero receive SGE and both pointers are set */
        if (w->total)
            sv_move_msg(dp, sp, w->total);
    } else if (inl) {
        scatter(f, r->sge, r->num_sge, w->data, w->total);
    } else {
        sge_copy(f, r->sge, w->sge, w->num_sge);
    }
    rq->head++;
    unsigned flags = 0;
    uint32_t imm = 0;
    if (w->opcode == IBV_WR_SEND_WITH_IMM) {
        flags = IBV_WC_WITH_IMM;
        imm = w->imm;
    } else if (w->opcode == IBV_WR_SEND_WITH_INV) {
        flags = IBV_WC_WITH_INV;
        imm = w->imm;
    }
    f->st.sends++;
    f->st.bytes_moved += w->total;
    complete(peer, peer->rcq, r->wr_id, IBV_WC_SUCCESS, IBV_WC_RECV, w->total, imm, flags,
             qp->qp.qp_num);
    if (peer->srq)
        sv__srq_check_limit(peer->srq);
    sq_success(qp, w, peer->qp.qp_num);
    return 1;
}

/* The send queue's head against peer, the QP peer_qpn names (NULL: none). */
static inline __attribute__((always_inline)) int qp_exec_head(struct sv_qp *qp, struct sv_qp *peer)
{
    if (qp->sq_head == qp->sq_tail || qp->qp.state != IBV_QPS_RTS)
        return 0;
    struct sv_swqe *w = sv_sq_slot(qp, qp->sq_head);
    if (SV_UNLIKELY(!peer || peer->qp.state < IBV_QPS_RTR || peer->qp.state > IBV_QPS_SQE)) {
        /* a peer still in INIT is about to be made ready (the CM's RTU is on its way):
         * wait; a peer that is gone or in error never answers: retries exhausted */
        if (peer && peer->qp.state == IBV_QPS_INIT)
            return 0;
        return sq_fail(qp, w, IBV_WC_RETRY_EXC_ERR);
    }
    switch (w->opcode) {
    case IBV_WR_RDMA_READ:
        return exec_read(qp, w, peer);
    case IBV_WR_RDMA_WRITE:
    case IBV_WR_RDMA_WRITE_WITH_IMM:
        return exec_write(qp, w, peer);
    default:
        return exec_send(qp, w, peer);
    }
}

int sv__qp_exec(struct sv_qp *qp)
{
    return qp_exec_head(qp, sv__qp_find(qp->f, qp->peer_qpn));
}

/* Executions change QP states, never a QP's peer number nor which QPs exist, so the peer
 * found for the first WR is the peer of every WR of the run (its state is checked per WR). */
int sv__qp_exec_all(struct sv_qp *qp, int max)
{
    struct sv_qp *peer = sv__qp_find(qp->f, qp->peer_qpn);
    int n = 0;
    while (n < max && qp_exec_head(qp, peer) > 0)
        n++;
    return n;
}

void sv__qp_flush(struct sv_qp *qp)
{
    uint32_t src = peer_of(qp);
    for (uint32_t p = qp->sq_head; p != qp->sq_tail; p++) {
        const struct sv_swqe *w = sv_sq_slot(qp, p);
        complete(qp, qp->scq, w->wr_id, IBV_WC_WR_FLUSH_ERR, wc_opcode_of[w->opcode], 0, 0, 0, src);
    }
    qp->sq_head = qp->sq_done = qp->sq_tail;
    if (qp->srq)
        return;                  /* an SRQ's receives belong to every QP on it */
    for (uint32_t p = qp->rq.head; p != qp->rq.tail; p++) {
        const struct sv_rwqe *r = sv_rq_slot(&qp->rq, p);
        complete(qp, qp->rcq, r->wr_id, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV, 0, 0, 0, src);
    }
    qp->rq.head = qp->rq.tail;
}
