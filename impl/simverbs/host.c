/*
 * host.c — the harness plays the NVMe-oF host: memory regions at synthetic IOVAs, and
 * connections built from the same objects a program uses (a CM id on the host's channel,
 * a QP with one CQ, receive buffers in an MR), so the target cannot tell them apart from
 * a real initiator.  The host's CM events are processed the moment they are delivered.
 */
#include <arpa/inet.h>
#include <stdlib.h>

#include "sv_internal.h"

enum { SV_HOST_IPV4 = 0x0A000101u };   /* 10.0.1.1: the host machine, on no device */

static int host_domain(struct sv_fabric *f)
{
    if (f->host_ctx)
        return 0;
    f->host_ctx = sv__ctx_open(NULL, f, 2);
    if (!f->host_ctx)
        return -ENOMEM;
    f->host_pd = sv__pd_alloc(f->host_ctx, 0);
    f->host_chan = sv__chan_create(f, 1);
    return f->host_pd && f->host_chan ? 0 : -ENOMEM;
}

static struct sv_hconn *host_of(struct sv_fabric *f, int conn)
{
    if (!f || conn < 0 || (uint32_t)conn >= f->nhosts || !f->hosts[conn]) {
        if (f)
            sv__err(f, "no host connection %d", conn);
        return NULL;
    }
    return f->hosts[conn];
}

/* ---- host memory ----------------------------------------------------------------------------- */

static struct sv_mr *host_mr(struct sv_fabric *f, uint32_t rkey)
{
    struct sv_mr *mr = f ? sv__mr_rkey(f, rkey) : NULL;
    if (!mr || mr->pd != f->host_pd || !mr->owned)
        return NULL;
    return mr;
}

int64_t sv_host_mr_reg(struct sv_fabric *f, uint64_t size, int access)
{
    if (!f)
        return -EINVAL;
    if (!size || size > 0x100000000ull) {
        sv__err(f, "sv_host_mr_reg: size %llu not in 1..4 GiB", (unsigned long long)size);
        return -EINVAL;
    }
    if (host_domain(f) < 0)
        return -ENOMEM;
    uint8_t *mem = calloc(1, size);
    if (!mem)
        return -ENOMEM;
    /* region i lives at (i + 1) * 4 GiB: never 0, never overlapping, stable across runs */
    uint64_t iova = 0x100000000ull * ((uint64_t)f->host_regions + 1);
    struct sv_mr *mr = sv__mr_reg(f->host_pd, mem, size, iova, access | IBV_ACCESS_LOCAL_WRITE, 0);
    if (!mr) {
        free(mem);
        return errno == ENOMEM ? -ENOMEM : -EINVAL;
    }
    mr->owned = mem;
    f->host_regions++;
    return (int64_t)mr->rkey;
}

int sv_host_mr_dereg(struct sv_fabric *f, uint32_t rkey)
{
    struct sv_mr *mr = host_mr(f, rkey);
    if (!mr)
        return f ? -ENOENT : -EINVAL;
    return -ibv_dereg_mr(&mr->mr);
}

uint64_t sv_host_mr_iova(struct sv_fabric *f, uint32_t rkey)
{
    struct sv_mr *mr = host_mr(f, rkey);
    return mr ? mr->iova : 0;
}

static int host_range(struct sv_fabric *f, uint32_t rkey, uint64_t off, uint64_t len, uint8_t **p)
{
    struct sv_mr *mr = host_mr(f, rkey);
    if (!mr)
        return f ? -ENOENT : -EINVAL;
    if (off > mr->len || len > mr->len - off) {
        sv__err(f, "host region %#x: [%llu, +%llu) outside its %llu bytes", rkey,
                (unsigned long long)off, (unsigned long long)len, (unsigned long long)mr->len);
        return -ERANGE;
    }
    *p = mr->base + off;
    return 0;
}

int sv_host_mr_write(struct sv_fabric *f, uint32_t rkey, uint64_t offset, const void *buf,
                     uint64_t len)
{
    uint8_t *p;
    int rc = host_range(f, rkey, offset, len, &p);
    if (rc == 0 && len)
        memcpy(p, buf, len);
    return rc;
}

void *sv_host_mr_data(struct sv_fabric *f, uint32_t rkey)
{
    uint8_t *p;
    return host_range(f, rkey, 0, 0, &p) == 0 ? p : NULL;
}

int sv_host_mr_read(struct sv_fabric *f, uint32_t rkey, uint64_t offset, void *buf, uint64_t len)
{
    uint8_t *p;
    int rc = host_range(f, rkey, offset, len, &p);
    if (rc == 0 && len)
        memcpy(buf, p, len);
    return rc;
}

/* ---- connections ----------------------------------------------------------------------------- */

static int host_post_recv(struct sv_hconn *h, uint32_t i)
{
    struct ibv_sge sge = {
        .addr = (uint64_t)(uintptr_t)(h->rbuf + (size_t)i * h->p.recv_size),
        .length = h->p.recv_size,
        .lkey = h->rmr->lkey,
    };
    struct ibv_recv_wr wr = {.wr_id = i, .sg_list = &sge, .num_sge = 1}, *bad;
    return h->qp->ctx->ctx.ops.post_recv(&h->qp->qp, &wr, &bad);
}

/* Re-posts the receive buffers idx[0..n) in that order.  One post of the chain is the n
 * posts one by one (none can find the receive queue full: each buffer's receive was just
 * reaped), unless a post failure is armed on the QP (it fails one post) or the fabric
 * progresses at every post (autoprogress): they go one by one then. */
static void host_repost_recvs(struct sv_hconn *h, const uint32_t *idx, uint32_t n)
{
    if (!n)
        return;
    if (h->qp->fail_posts || h->f->autoprogress) {
        for (uint32_t j = 0; j < n; j++)
            host_post_recv(h, idx[j]);
        return;
    }
    struct ibv_sge sge[16];
    struct ibv_recv_wr wr[16], *bad;
    for (uint32_t j = 0; j < n; j++) {
        sge[j] = (struct ibv_sge){
            .addr = (uint64_t)(uintptr_t)(h->rbuf + (size_t)idx[j] * h->p.recv_size),
            .length = h->p.recv_size, .lkey = h->rmr->lkey};
        wr[j] = (struct ibv_recv_wr){.wr_id = idx[j], .next = j + 1 < n ? &wr[j + 1] : NULL,
                                     .sg_list = &sge[j], .num_sge = 1};
    }
    h->qp->ctx->ctx.ops.post_recv(&h->qp->qp, wr, &bad);
}

int sv_host_connect(struct sv_fabric *f, const struct sv_host_connect_params *p)
{
    if (!f || !p)
        return -EINVAL;
    if (p->private_data_len > SV_REQ_PDATA || (p->private_data_len && !p->private_data) ||
        p->send_depth < 1 || p->send_depth > 65536 || p->recv_depth < 1 || p->recv_depth > 65536 ||
        p->recv_size < 16) {
        sv__err(f, "sv_host_connect: need private_data_len <= 56, send/recv depth 1..65536, "
                "recv_size >= 16");
        return -EINVAL;
    }
    if (host_domain(f) < 0)
        return -ENOMEM;
    if (f->nhosts == f->hosts_cap) {
        uint32_t n = f->hosts_cap ? f->hosts_cap * 2 : 16;
        struct sv_hconn **a = realloc(f->hosts, n * sizeof *a);
        if (!a)
            return -ENOMEM;
        f->hosts = a;
        f->hosts_cap = n;
    }
    struct sv_hconn *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->f = f;
    h->p = *p;
    h->p.private_data = NULL;    /* copied into the request below; not kept */
    h->cq = sv__cq_create(f->host_ctx, (int)(p->send_depth + p->recv_depth), NULL, NULL, 0);
    h->rbuf = calloc(p->recv_depth, p->recv_size);
    struct ibv_qp_init_attr a = {
        .send_cq = h->cq ? &h->cq->cq : NULL,
        .recv_cq = h->cq ? &h->cq->cq : NULL,
        .cap = {.max_send_wr = p->send_depth, .max_recv_wr = p->recv_depth,
                .max_send_sge = 1, .max_recv_sge = 1},
        .qp_type = IBV_QPT_RC,
        .sq_sig_all = 0,         /* each host SEND says whether it is signaled */
    };
    if (h->cq && h->rbuf)
        h->qp = sv__qp_create(f->host_pd, &a, 0);
    if (h->qp) {
        h->qp->host_bufs = calloc((size_t)h->qp->sq_mask + 1, sizeof *h->qp->host_bufs);
        h->qp->host_caps = calloc((size_t)h->qp->sq_mask + 1, sizeof *h->qp->host_caps);
        h->wr_ids = calloc((size_t)h->qp->sq_mask + 1, sizeof *h->wr_ids);
        h->rmr = sv__mr_reg(f->host_pd, h->rbuf, (uint64_t)p->recv_depth * p->recv_size,
                            (uint64_t)(uintptr_t)h->rbuf, IBV_ACCESS_LOCAL_WRITE, 0);
    }
    if (h->rmr) {
        h->rmr->owned = h->rbuf;
        h->id = sv__id_create(f, f->host_chan, NULL, 0);
    }
    if (!h->id || !h->qp->host_bufs || !h->qp->host_caps || !h->wr_ids) {
        if (h->qp)
            sv__qp_destroy(h->qp);
        if (h->rmr)
            ibv_dereg_mr(&h->rmr->mr);
        else
            free(h->rbuf);
        if (h->cq)
            sv__cq_destroy(h->cq);
        free(h->wr_ids);
        free(h);
        return -ENOMEM;
    }
    h->handle = (int)f->nhosts;
    f->hosts[f->nhosts++] = h;
    sv__obj_add(f, &h->obj, SV_K_HOST, 0);
    h->qp->host = h;
    sv__qp_set_state(h->qp, IBV_QPS_INIT);
    for (uint32_t i = 0; i < p->recv_depth; i++)
        host_post_recv(h, i);
    h->info.state = SV_HOST_CONNECTING;
    h->info.qp_num = h->qp->qp.qp_num;

    struct sv_id *id = h->id;
    id->host = h;
    id->qp = h->qp;
    id->id.qp = &h->qp->qp;
    h->qp->cm = id;
    id->port = (uint16_t)(SV_EPHEMERAL_PORT + (uint32_t)h->handle % (65536u - SV_EPHEMERAL_PORT));
    struct sockaddr_in *src = &id->id.route.addr.src_sin, *dst = &id->id.route.addr.dst_sin;
    src->sin_family = AF_INET;
    src->sin_addr.s_addr = htonl(SV_HOST_IPV4);
    src->sin_port = htons(id->port);
    dst->sin_family = AF_INET;
    dst->sin_addr.s_addr = p->dst_ipv4;
    dst->sin_port = htons(p->dst_port);
    id->state = SV_ID_ROUTE_RESOLVED;
    struct rdma_conn_param cp = {
        .private_data = p->private_data,
        .private_data_len = p->private_data_len,
        .initiator_depth = p->initiator_depth,
        .responder_resources = p->responder_resources,
        .flow_control = 1,
        .retry_count = 7,
        .rnr_retry_count = 7,
    };
    if (sv__id_connect(id, &cp) < 0)
        return -ENOMEM;
    return h->handle;
}

void sv__host_qp_error(struct sv_hconn *h)
{
    if (h->info.state == SV_HOST_ESTABLISHED || h->info.state == SV_HOST_CONNECTING)
        h->info.state = SV_HOST_DISCONNECTED;
}

static void keep_pdata(struct sv_hconn *h, const struct sv_cmev *e)
{
    uint8_t n = e->actual_len < sizeof h->info.private_data ? e->actual_len
                                                           : (uint8_t)sizeof h->info.private_data;
    memcpy(h->info.private_data, e->pdata, n);
    h->info.private_data_len = n;
}

void sv__host_event(struct sv_hconn *h, struct sv_cmev *e)
{
    switch (e->ev.event) {
    case RDMA_CM_EVENT_ESTABLISHED:
        if (h->info.state == SV_HOST_CONNECTING) {
            h->info.state = SV_HOST_ESTABLISHED;
            keep_pdata(h, e);
            h->info.initiator_depth = e->ev.param.conn.initiator_depth;
            h->info.responder_resources = e->ev.param.conn.responder_resources;
        }
        if (h->qp->qp.state != IBV_QPS_ERR)
            sv__qp_ready(h->qp);
        break;
    case RDMA_CM_EVENT_REJECTED:
    case RDMA_CM_EVENT_UNREACHABLE:
        sv__qp_error(h->qp);     /* as librdmacm does on a rejection */
        h->info.state = SV_HOST_REJECTED;
        h->info.reject_reason = (uint32_t)(e->ev.status < 0 ? -e->ev.status : e->ev.status);
        keep_pdata(h, e);
        break;
    case RDMA_CM_EVENT_DISCONNECTED:
        if (h->info.state != SV_HOST_REJECTED)
            h->info.state = SV_HOST_DISCONNECTED;
        break;
    default:
        break;
    }
}

int sv_host_conn_info(struct sv_fabric *f, int conn, struct sv_host_conn_info *out)
{
    struct sv_hconn *h = host_of(f, conn);
    if (!h || !out)
        return h ? -EINVAL : -ENOENT;
    *out = h->info;
    out->qp_num = h->qp->qp.qp_num;
    out->peer_qp_num = h->qp->peer_qpn;
    out->sends_pending = h->qp->sq_tail - h->qp->sq_head;
    out->recvs_posted = h->qp->rq.tail - h->qp->rq.head;
    return 0;
}

/* A host send owns its ring slot's buffer until it executes; the buffer only grows, so a
 * steady stream of capsules allocates nothing.  The slot itself is held until a completion
 * at or after it is reaped: its own if signaled, else the next signaled SEND's (RC: an
 * unsignaled WR's slot is freed by a later completion, IB spec 10.8.3.1) or a flush. */
int sv_host_send_signaled(struct sv_fabric *f, int conn, const void *buf, uint32_t len,
                          uint64_t wr_id, int signaled)
{
    struct sv_hconn *h = host_of(f, conn);
    if (!h)
        return -ENOENT;
    struct sv_qp *qp = h->qp;
    if (h->info.state != SV_HOST_ESTABLISHED || qp->qp.state != IBV_QPS_RTS)
        return -ENOTCONN;
    if (qp->fail_posts) {
        qp->fail_posts--;
        f->st.failed_posts++;
        return -ENOMEM;
    }
    /* completions not yet reaped hold their place too: the host CQ never overruns */
    if (h->sends_held >= h->p.send_depth)
        return -EAGAIN;
    uint32_t pos = qp->sq_tail & qp->sq_mask;
    if (qp->host_caps[pos] < len) {
        uint8_t *b = realloc(qp->host_bufs[pos], len);
        if (!b)
            return -ENOMEM;
        qp->host_bufs[pos] = b;
        qp->host_caps[pos] = len;
    }
    if (len)
        sv_move_msg(qp->host_bufs[pos], buf, len);
    h->wr_ids[pos] = wr_id;
    struct sv_swqe *w = sv_sq_slot(qp, qp->sq_tail);
    w->wr_id = qp->sq_tail;      /* the position: its completion tells which slots it frees */
    w->remote_addr = 0;
    w->rkey = 0;
    w->imm = 0;
    w->data = qp->host_bufs[pos];
    w->total = len;
    w->opcode = IBV_WR_SEND;
    w->flags = (signaled ? SV_WQE_SIGNALED : 0) | SV_WQE_INLINE;
    w->num_sge = 0;
    qp->sq_tail++;
    qp->posts_send++;
    h->sends_held++;
    return 0;
}

int sv_host_send(struct sv_fabric *f, int conn, const void *buf, uint32_t len, uint64_t wr_id)
{
    return sv_host_send_signaled(f, conn, buf, len, wr_id, 1);
}

int sv_host_poll(struct sv_fabric *f, int conn, struct sv_host_completion *out, int max)
{
    struct sv_hconn *h = host_of(f, conn);
    if (!h)
        return -ENOENT;
    if (max < 0 || (max && !out))
        return -EINVAL;
    struct sv_cq *cq = h->cq;
    struct ibv_wc wc[16];
    int n = 0;
    while (n < max) {
        int want = max - n < 16 ? max - n : 16;
        int got = cq->ctx->ctx.ops.poll_cq(&cq->cq, want, wc);
        if (got <= 0)
            break;
        uint32_t repost[16], nrepost = 0;   /* at most want (16) receives per chunk */
        for (int j = 0; j < got; j++) {
            struct sv_host_completion *c = &out[n++];
            c->wr_id = 0;
            c->status = wc[j].status;
            c->byte_len = wc[j].byte_len;
            if (wc[j].opcode & IBV_WC_RECV) {
                c->opcode = IBV_WC_RECV;
                uint32_t i = (uint32_t)wc[j].wr_id;
                uint32_t k = 0;
                if (wc[j].status == IBV_WC_SUCCESS && wc[j].opcode == IBV_WC_RECV) {
                    k = wc[j].byte_len < sizeof c->data ? wc[j].byte_len : (uint32_t)sizeof c->data;
                }
                memset(c->data, 0, sizeof c->data);   /* a constant size: no call */
                const uint8_t *rb = h->rbuf + (size_t)i * h->p.recv_size;
                if (k == 16)
                    memcpy(c->data, rb, 16);   /* an NVMe CQE: a constant size too */
                else if (k)
                    memcpy(c->data, rb, k);
                if (h->qp->qp.state != IBV_QPS_ERR && h->qp->qp.state != IBV_QPS_RESET)
                    repost[nrepost++] = i;
            } else {
                c->opcode = IBV_WC_SEND;
                uint32_t at = (uint32_t)wc[j].wr_id;   /* its send-queue position */
                c->wr_id = h->wr_ids[at & h->qp->sq_mask];
                memset(c->data, 0, sizeof c->data);
                h->sends_held -= at + 1 - h->released;  /* it and the unsignaled before it */
                h->released = at + 1;
            }
        }
        host_repost_recvs(h, repost, nrepost);
        if (got < want)
            break;
    }
    return n;
}

int sv_host_disconnect(struct sv_fabric *f, int conn)
{
    struct sv_hconn *h = host_of(f, conn);
    if (!h)
        return -ENOENT;
    if (h->info.state == SV_HOST_REJECTED)
        return 0;
    sv__id_disconnect(h->id);
    sv__qp_error(h->qp);
    h->info.state = SV_HOST_DISCONNECTED;
    return 0;
}

int sv_host_conn_destroy(struct sv_fabric *f, int conn)
{
    struct sv_hconn *h = host_of(f, conn);
    if (!h)
        return -ENOENT;
    if (h->info.state != SV_HOST_DISCONNECTED && h->info.state != SV_HOST_REJECTED) {
        sv__err(f, "sv_host_conn_destroy: connection %d is not disconnected or rejected", conn);
        return -EBUSY;
    }
    sv__id_destroy(h->id);
    sv__qp_destroy(h->qp);
    sv__cq_destroy(h->cq);
    ibv_dereg_mr(&h->rmr->mr);
    f->hosts[conn] = NULL;
    sv__obj_del(f, &h->obj);
    sv__host_free(h);
    return 0;
}

void sv__host_free(struct sv_hconn *h)
{
    free(h->wr_ids);
    free(h);
}
