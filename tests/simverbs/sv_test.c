/*
 * sv_test.c — simverbs provider tests, in the manner of rdma-core's own: each test is a
 * named function driving the verbs and CM APIs (and the harness API where a test needs
 * to decide execution or inject a fault), run as `sv_test NAME`; `sv_test --list` prints
 * the names.  Exit status 0 is a pass; a failure prints the check that failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "simverbs.h"

/* ---- checks ------------------------------------------------------------------------------ */

#define CHECK(c)                                                                              \
    do {                                                                                      \
        if (!(c)) {                                                                           \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c);             \
            return 1;                                                                         \
        }                                                                                     \
    } while (0)

#define CHECK_EQ(a, b)                                                                        \
    do {                                                                                      \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                 \
        if (va_ != vb_) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK_EQ(%s, %s) failed: %lld != %lld\n", __FILE__,       \
                    __LINE__, #a, #b, va_, vb_);                                              \
            return 1;                                                                         \
        }                                                                                     \
    } while (0)

#define TRY(x)                                                                                \
    do {                                                                                      \
        if (x)                                                                                \
            return 1;                                                                         \
    } while (0)

/* ---- a manually connected pair of QPs on one device ----------------------------------------- */

struct rig {
    struct sv_fabric *f;
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct ibv_cq *cqa, *cqb;
    struct ibv_qp *a, *b;
    uint8_t *mem;                /* 64 KiB, registered as mr (all access) */
    struct ibv_mr *mr;
};

static struct ibv_qp *mkqp(struct ibv_pd *pd, struct ibv_cq *cq, struct ibv_srq *srq, uint32_t wr,
                           uint32_t sge, int sig_all)
{
    struct ibv_qp_init_attr a;
    memset(&a, 0, sizeof a);
    a.send_cq = cq;
    a.recv_cq = cq;
    a.srq = srq;
    a.qp_type = IBV_QPT_RC;
    a.sq_sig_all = sig_all;
    a.cap.max_send_wr = wr;
    a.cap.max_recv_wr = wr;
    a.cap.max_send_sge = sge;
    a.cap.max_recv_sge = sge;
    a.cap.max_inline_data = 64;
    return ibv_create_qp(pd, &a);
}

/* RESET -> INIT -> RTR (to dest) -> RTS with full remote access, as a program that
 * exchanges QP numbers out of band would. */
static int connect_qp(struct ibv_qp *qp, uint32_t dest)
{
    struct ibv_qp_attr at;
    memset(&at, 0, sizeof at);
    at.qp_state = IBV_QPS_INIT;
    at.port_num = 1;
    at.qp_access_flags = IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_LOCAL_WRITE;
    CHECK_EQ(ibv_modify_qp(qp, &at, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS), 0);
    memset(&at, 0, sizeof at);
    at.qp_state = IBV_QPS_RTR;
    at.path_mtu = IBV_MTU_4096;
    at.dest_qp_num = dest;
    at.max_dest_rd_atomic = 4;
    CHECK_EQ(ibv_modify_qp(qp, &at, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
                                        IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER), 0);
    memset(&at, 0, sizeof at);
    at.qp_state = IBV_QPS_RTS;
    at.max_rd_atomic = 4;
    CHECK_EQ(ibv_modify_qp(qp, &at, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
                                        IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC), 0);
    return 0;
}

static int rig_make_attr(struct rig *r, const struct sv_device_attr *attr, uint32_t wr, int sig_all)
{
    memset(r, 0, sizeof *r);
    r->f = sv_fabric_create();
    CHECK(r->f);
    CHECK_EQ(sv_device_add(r->f, attr), 0);
    int n = 0;
    struct ibv_device **l = ibv_get_device_list(&n);
    CHECK(l && n == 1);
    r->ctx = ibv_open_device(l[0]);
    ibv_free_device_list(l);
    CHECK(r->ctx);
    r->pd = ibv_alloc_pd(r->ctx);
    r->cqa = ibv_create_cq(r->ctx, 256, NULL, NULL, 0);
    r->cqb = ibv_create_cq(r->ctx, 256, NULL, NULL, 0);
    CHECK(r->pd && r->cqa && r->cqb);
    r->a = mkqp(r->pd, r->cqa, NULL, wr, 4, sig_all);
    r->b = mkqp(r->pd, r->cqb, NULL, wr, 4, sig_all);
    CHECK(r->a && r->b);
    TRY(connect_qp(r->a, r->b->qp_num));
    TRY(connect_qp(r->b, r->a->qp_num));
    r->mem = calloc(1, 65536);
    CHECK(r->mem);
    r->mr = ibv_reg_mr(r->pd, r->mem, 65536,
                       IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE);
    CHECK(r->mr);
    return 0;
}

static int rig_make(struct rig *r, uint32_t wr, int sig_all)
{
    return rig_make_attr(r, NULL, wr, sig_all);
}

static void rig_free(struct rig *r)
{
    sv_fabric_destroy(r->f);
    free(r->mem);
}

static int post_send_wr(struct ibv_qp *qp, enum ibv_wr_opcode op, uint64_t wr_id, void *addr,
                        uint32_t len, uint32_t lkey, unsigned flags, uint64_t raddr, uint32_t rkey)
{
    struct ibv_sge sge = {.addr = (uintptr_t)addr, .length = len, .lkey = lkey};
    struct ibv_send_wr wr, *bad = NULL;
    memset(&wr, 0, sizeof wr);
    wr.wr_id = wr_id;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = op;
    wr.send_flags = flags;
    wr.wr.rdma.remote_addr = raddr;
    wr.wr.rdma.rkey = rkey;
    return ibv_post_send(qp, &wr, &bad);
}

static int post_recv_wr(struct ibv_qp *qp, uint64_t wr_id, void *addr, uint32_t len, uint32_t lkey)
{
    struct ibv_sge sge = {.addr = (uintptr_t)addr, .length = len, .lkey = lkey};
    struct ibv_recv_wr wr, *bad = NULL;
    memset(&wr, 0, sizeof wr);
    wr.wr_id = wr_id;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    return ibv_post_recv(qp, &wr, &bad);
}

static int poll1(struct ibv_cq *cq, struct ibv_wc *wc) { return ibv_poll_cq(cq, 1, wc); }

/* Expects exactly the next completion on cq to be (wr_id, status, opcode). */
static int expect_wc(struct ibv_cq *cq, uint64_t wr_id, enum ibv_wc_status st, enum ibv_wc_opcode op)
{
    struct ibv_wc wc;
    int n = poll1(cq, &wc);
    if (n != 1) {
        fprintf(stderr, "expected a completion for wr_id %llu, CQ empty\n", (unsigned long long)wr_id);
        return 1;
    }
    if (wc.wr_id != wr_id || wc.status != st || wc.opcode != op) {
        fprintf(stderr, "completion: wr_id %llu status %s opcode %d; expected %llu %s %d\n",
                (unsigned long long)wc.wr_id, ibv_wc_status_str(wc.status), wc.opcode,
                (unsigned long long)wr_id, ibv_wc_status_str(st), op);
        return 1;
    }
    return 0;
}

static int expect_empty(struct ibv_cq *cq)
{
    struct ibv_wc wc;
    int n = poll1(cq, &wc);
    if (n != 0) {
        fprintf(stderr, "expected an empty CQ, got wr_id %llu status %s\n", (unsigned long long)wc.wr_id,
                ibv_wc_status_str(wc.status));
        return 1;
    }
    return 0;
}

static int qp_state(struct ibv_qp *qp)
{
    struct ibv_qp_attr at;
    struct ibv_qp_init_attr ia;
    if (ibv_query_qp(qp, &at, IBV_QP_STATE, &ia))
        return -1;
    return at.qp_state;
}

static int expect_async(struct ibv_context *ctx, enum ibv_event_type t)
{
    struct ibv_async_event ev;
    if (ibv_get_async_event(ctx, &ev)) {
        fprintf(stderr, "expected async event %s, none queued\n", ibv_event_type_str(t));
        return 1;
    }
    ibv_ack_async_event(&ev);
    if (ev.event_type != t) {
        fprintf(stderr, "async event %s, expected %s\n", ibv_event_type_str(ev.event_type),
                ibv_event_type_str(t));
        return 1;
    }
    return 0;
}

static int fd_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* ---- device, port, MR ------------------------------------------------------------------- */

static int t_device_query(void)
{
    struct sv_fabric *f = sv_fabric_create();
    struct sv_device_attr a;
    sv_device_attr_default(&a);
    snprintf(a.name, sizeof a.name, "mlx_sim");
    a.max_qp = 77;
    a.max_qp_wr = 555;
    a.max_sge = 7;
    a.max_cqe = 999;
    a.max_qp_rd_atom = 3;
    a.max_qp_init_rd_atom = 5;
    a.max_srq = 0;
    a.port_mtu = 1024;
    CHECK_EQ(sv_device_add(f, &a), 0);
    CHECK_EQ(sv_device_add(f, NULL), 1);
    a.port_mtu = 1000;
    CHECK(sv_device_add(f, &a) < 0);
    CHECK_EQ(sv_device_ipv4(1), htonl(0x0A000002));

    int n = -1;
    struct ibv_device **l = ibv_get_device_list(&n);
    CHECK_EQ(n, 2);
    CHECK(l[2] == NULL);
    CHECK(strcmp(ibv_get_device_name(l[0]), "mlx_sim") == 0);
    CHECK(strcmp(ibv_get_device_name(l[1]), "simverbs1") == 0);
    CHECK(ibv_get_device_guid(l[0]) != ibv_get_device_guid(l[1]));
    struct ibv_context *c = ibv_open_device(l[0]);
    CHECK(c);
    CHECK(c->device == l[0]);
    ibv_free_device_list(l);

    struct ibv_device_attr da;
    CHECK_EQ(ibv_query_device(c, &da), 0);
    CHECK_EQ(da.max_qp, 77);
    CHECK_EQ(da.max_qp_wr, 555);
    CHECK_EQ(da.max_sge, 7);
    CHECK_EQ(da.max_cqe, 999);
    CHECK_EQ(da.max_qp_rd_atom, 3);
    CHECK_EQ(da.max_qp_init_rd_atom, 5);
    CHECK_EQ(da.max_srq, 0);
    CHECK_EQ(da.phys_port_cnt, 1);

    struct ibv_device_attr_ex dx;
    CHECK_EQ(ibv_query_device_ex(c, NULL, &dx), 0);   /* legacy fallback (no extended ops) */
    CHECK_EQ(dx.orig_attr.max_qp, 77);

    struct ibv_port_attr pa;
    CHECK_EQ(ibv_query_port(c, 1, &pa), 0);
    CHECK_EQ(pa.state, IBV_PORT_ACTIVE);
    CHECK_EQ(pa.active_mtu, IBV_MTU_1024);
    CHECK_EQ(pa.link_layer, IBV_LINK_LAYER_ETHERNET);
    CHECK(ibv_query_port(c, 2, &pa) != 0);

    union ibv_gid gid;
    CHECK_EQ(ibv_query_gid(c, 1, 0, &gid), 0);
    CHECK_EQ(gid.raw[10], 0xFF);
    CHECK_EQ(gid.raw[15], 1);      /* ::ffff:10.0.0.1 */

    struct ibv_pd *pd = ibv_alloc_pd(c);
    CHECK(pd);
    CHECK_EQ(ibv_close_device(c), EBUSY);
    CHECK_EQ(ibv_dealloc_pd(pd), 0);
    CHECK_EQ(ibv_close_device(c), 0);
    struct sv_stats st;
    sv_stats(f, &st);
    CHECK_EQ(st.live_objects, 0);
    sv_fabric_destroy(f);
    CHECK(sv_fabric_current() == NULL);
    return 0;
}

static int t_mr_keys_access(void)
{
    struct rig r;
    TRY(rig_make(&r, 8, 0));
    static uint8_t buf[3][4096];
    struct ibv_mr *m[3];
    for (int i = 0; i < 3; i++) {
        m[i] = ibv_reg_mr(r.pd, buf[i], sizeof buf[i], IBV_ACCESS_LOCAL_WRITE);
        CHECK(m[i]);
        CHECK(m[i]->lkey != 0 && m[i]->rkey != 0 && m[i]->lkey != m[i]->rkey);
        CHECK(m[i]->addr == buf[i] && m[i]->length == sizeof buf[i]);
        for (int j = 0; j < i; j++)
            CHECK(m[i]->lkey != m[j]->lkey && m[i]->rkey != m[j]->rkey);
    }
    /* access rules: REMOTE_WRITE needs LOCAL_WRITE; unknown bits refused */
    errno = 0;
    CHECK(ibv_reg_mr(r.pd, buf[0], 16, IBV_ACCESS_REMOTE_WRITE) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(ibv_reg_mr(r.pd, buf[0], 16, 1 << 12) == NULL);
    /* the optional-range flags are accepted (ignored) through ibv_reg_mr_iova2 */
    struct ibv_mr *ro = ibv_reg_mr(r.pd, buf[0], 16, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_RELAXED_ORDERING);
    CHECK(ro);
    CHECK_EQ(ibv_dereg_mr(ro), 0);

    /* a PD with MRs cannot go */
    struct ibv_pd *pd2 = ibv_alloc_pd(r.ctx);
    struct ibv_mr *m2 = ibv_reg_mr(pd2, buf[1], 64, IBV_ACCESS_LOCAL_WRITE);
    CHECK(m2);
    CHECK_EQ(ibv_dealloc_pd(pd2), EBUSY);

    /* a deregistered key is dead: a SEND from it fails LOC_PROT_ERR */
    uint32_t dead = m[2]->lkey;
    CHECK_EQ(ibv_dereg_mr(m[2]), 0);
    CHECK_EQ(post_recv_wr(r.b, 1, r.mem, 4096, r.mr->lkey), 0);
    CHECK_EQ(post_send_wr(r.a, IBV_WR_SEND, 7, buf[2], 64, dead, IBV_SEND_SIGNALED, 0, 0), 0);
    CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
    TRY(expect_wc(r.cqa, 7, IBV_WC_LOC_PROT_ERR, IBV_WC_SEND));
    /* a key reused after dereg is a different key (generation) */
    struct ibv_mr *m3 = ibv_reg_mr(r.pd, buf[2], 64, IBV_ACCESS_LOCAL_WRITE);
    CHECK(m3 && m3->lkey != dead);

    CHECK_EQ(ibv_dereg_mr(m2), 0);
    CHECK_EQ(ibv_dealloc_pd(pd2), 0);
    rig_free(&r);
    return 0;
}

/* ---- the send queue ---------------------------------------------------------------------- */

static int t_sq_in_order(void)
{
    struct rig r;
    TRY(rig_make(&r, 16, 0));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(post_recv_wr(r.b, 100 + i, r.mem + 1024 * i, 1024, r.mr->lkey), 0);
    for (int i = 0; i < 3; i++) {
        r.mem[8192 + 64 * i] = (uint8_t)(0xA0 + i);
        CHECK_EQ(post_send_wr(r.a, IBV_WR_SEND, 10 + i, r.mem + 8192 + 64 * i, 64, r.mr->lkey,
                              IBV_SEND_SIGNALED, 0, 0), 0);
    }
    struct sv_qp_info qi;
    CHECK_EQ(sv_qp_info(r.f, r.a->qp_num, &qi), 0);
    CHECK_EQ(qi.sq_pending, 3);
    CHECK_EQ(qi.peer_qp_num, r.b->qp_num);
    TRY(expect_empty(r.cqa));            /* nothing moves until executed */
    TRY(expect_empty(r.cqb));
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
        struct ibv_wc wc;
        CHECK_EQ(poll1(r.cqb, &wc), 1);
        CHECK_EQ(wc.wr_id, 100 + i);
        CHECK_EQ(wc.opcode, IBV_WC_RECV);
        CHECK_EQ(wc.byte_len, 64);
        CHECK_EQ(wc.qp_num, r.b->qp_num);
        CHECK_EQ(wc.src_qp, r.a->qp_num);
        CHECK_EQ(r.mem[1024 * i], 0xA0 + i);
        TRY(expect_wc(r.cqa, 10 + i, IBV_WC_SUCCESS, IBV_WC_SEND));
    }
    CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 0);
    CHECK(sv_qp_execute(r.f, 12345) < 0);
    rig_free(&r);
    return 0;
}

static int t_signaled_unsignaled(void)
{
    struct rig r;
    TRY(rig_make(&r, 4, 0));
    /* unsignaled WRITEs complete silently but keep their slots until a signaled one completes */
    for (int i = 0; i < 4; i++)
        CHECK_EQ(post_send_wr(r.a, IBV_WR_RDMA_WRITE, i, r.mem, 16, r.mr->lkey, 0,
                              (uintptr_t)(r.mem + 4096), r.mr->rkey), 0);
    CHECK_EQ(post_send_wr(r.a, IBV_WR_RDMA_WRITE, 9, r.mem, 16, r.mr->lkey, 0,
                          (uintptr_t)(r.mem + 4096), r.mr->rkey), ENOMEM);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
    TRY(expect_empty(r.cqa));
    struct sv_qp_info qi;
    sv_qp_info(r.f, r.a->qp_num, &qi);
    CHECK_EQ(qi.sq_pending, 0);
    CHECK_EQ(qi.sq_outstanding, 4);
    CHECK_EQ(post_send_wr(r.a, IBV_WR_RDMA_WRITE, 9, r.mem, 16, r.mr->lkey, 0,
                          (uintptr_t)(r.mem + 4096), r.mr->rkey), ENOMEM);
    rig_free(&r);

    /* one signaled WR releases the unsignaled ones before it */
    TRY(rig_make(&r, 4, 0));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(post_send_wr(r.a, IBV_WR_RDMA_WRITE, i, r.mem, 16, r.mr->lkey, 0,
                              (uintptr_t)(r.mem + 4096), r.mr->rkey), 0);
    CHECK_EQ(post_send_wr(r.a, IBV_WR_RDMA_WRITE, 3, r.mem, 16, r.mr->lkey, IBV_SEND_SIGNALED,
                          (uintptr_t)(r.mem + 4096), r.mr->rkey), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
    TRY(expect_wc(r.cqa, 3, IBV_WC_SUCCESS, IBV_WC_RDMA_WRITE));
    TRY(expect_empty(r.cqa));
    sv_qp_info(r.f, r.a->qp_num, &qi);
    CHECK_EQ(qi.sq_outstanding, 0);
    CHECK_EQ(qi.completions, 1);
    rig_free(&r);

    /* sq_sig_all signals everything */
    TRY(rig_make(&r, 4, 1));
    CHECK_EQ(post_send_wr(r.a, IBV_WR_RDMA_WRITE, 5, r.mem, 16, r.mr->lkey, 0,
                          (uintptr_t)(r.mem + 4096), r.mr->rkey), 0);
    CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
    TRY(expect_wc(r.cqa, 5, IBV_WC_SUCCESS, IBV_WC_RDMA_WRITE));
    rig_free(&r);
    return 0;
}

static int t_rdma_read_write_bytes(void)
{
    struct rig r;
    TRY(rig_make(&r, 8, 1));
    uint8_t *src = r.mem, *dst = r.mem + 16384;
    for (int i = 0; i < 8192; i++)
        src[i] = (uint8_t)(i * 31 + 7);
    /* a WRITE gathering three SGEs into one remote range */
    struct ibv_sge sg[3] = {
        {(uintptr_t)src, 1000, r.mr->lkey},
        {(uintptr_t)(src + 3000), 0, 0},           /* zero length: no key needed */
        {(uintptr_t)(src + 1000), 3096, r.mr->lkey},
    };
    struct ibv_send_wr wr, *bad;
    memset(&wr, 0, sizeof wr);
    wr.wr_id = 1;
    wr.sg_list = sg;
    wr.num_sge = 3;
    wr.opcode = IBV_WR_RDMA_WRITE;
    wr.wr.rdma.remote_addr = (uintptr_t)dst;
    wr.wr.rdma.rkey = r.mr->rkey;
    CHECK_EQ(ibv_post_send(r.a, &wr, &bad), 0);
    CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
    TRY(expect_wc(r.cqa, 1, IBV_WC_SUCCESS, IBV_WC_RDMA_WRITE));
    CHECK(memcmp(dst, src, 4096) == 0);

    /* a READ scattering one remote range into two SGEs, through an MR with its own IOVA */
    uint8_t *back = r.mem + 32768;
    struct ibv_mr *iv = ibv_reg_mr_iova(r.pd, back, 8192, 0x5000000, IBV_ACCESS_LOCAL_WRITE);
    CHECK(iv);
    struct ibv_sge rs[2] = {{0x5000000, 100, iv->lkey}, {0x5000000 + 100, 3996, iv->lkey}};
    wr.wr_id = 2;
    wr.sg_list = rs;
    wr.num_sge = 2;
    wr.opcode = IBV_WR_RDMA_READ;
    wr.wr.rdma.remote_addr = (uintptr_t)dst;
    CHECK_EQ(ibv_post_send(r.a, &wr, &bad), 0);
    CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
    struct ibv_wc wc;
    CHECK_EQ(poll1(r.cqa, &wc), 1);
    CHECK_EQ(wc.status, IBV_WC_SUCCESS);
    CHECK_EQ(wc.opcode, IBV_WC_RDMA_READ);
    CHECK_EQ(wc.byte_len, 4096);
    CHECK(memcmp(back, src, 4096) == 0);
    struct sv_stats st;
    sv_stats(r.f, &st);
    CHECK_EQ(st.rdma_reads, 1);
    CHECK_EQ(st.rdma_writes, 1);
    CHECK_EQ(st.bytes_moved, 8192);
    rig_free(&r);
    return 0;
}

/* The QP's queues after a failure: the failed WR, the rest of the send queue flushed in
 * order, then the receives flushed in order. */
static int t_remote_access_errors(void)
{
    struct cas {
        uint64_t off;
        uint32_t len;
        int wrong_key, read;
    } cases[] = {
        {65536 - 100, 200, 0, 1},    /* runs off the end of the MR */
        {0, 16, 1, 0},               /* no such rkey */
        {0, 16, 2, 1},               /* MR without REMOTE_READ */
        {0, 16, 3, 0},               /* MR in another PD */
        {0, 16, 4, 0},               /* an lkey is no rkey */
    };
    for (unsigned c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct rig r;
        TRY(rig_make(&r, 8, 0));
        static uint8_t other[64];
        struct ibv_mr *noread = ibv_reg_mr(r.pd, other, 64, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
        struct ibv_pd *pd2 = ibv_alloc_pd(r.ctx);
        struct ibv_mr *elsewhere = ibv_reg_mr(pd2, other, 64, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
                                                                  IBV_ACCESS_REMOTE_READ);
        CHECK(noread && elsewhere);
        uint64_t raddr = (uintptr_t)r.mem + cases[c].off;
        uint32_t rkey = r.mr->rkey;
        if (cases[c].wrong_key == 1)
            rkey = 0x7654321;
        if (cases[c].wrong_key == 2) {
            rkey = noread->rkey;
            raddr = (uintptr_t)other;
        }
        if (cases[c].wrong_key == 3) {
            rkey = elsewhere->rkey;
            raddr = (uintptr_t)other;
        }
        if (cases[c].wrong_key == 4)
            rkey = r.mr->lkey;
        CHECK_EQ(post_recv_wr(r.a, 50, r.mem, 64, r.mr->lkey), 0);
        CHECK_EQ(post_recv_wr(r.a, 51, r.mem, 64, r.mr->lkey), 0);
        CHECK_EQ(post_send_wr(r.a, cases[c].read ? IBV_WR_RDMA_READ : IBV_WR_RDMA_WRITE, 1,
                              r.mem + 1024, cases[c].len, r.mr->lkey, 0, raddr, rkey), 0);
        CHECK_EQ(post_send_wr(r.a, IBV_WR_SEND, 2, r.mem, 8, r.mr->lkey, 0, 0, 0), 0);
        CHECK_EQ(post_send_wr(r.a, IBV_WR_RDMA_WRITE, 3, r.mem, 8, r.mr->lkey, IBV_SEND_SIGNALED,
                              (uintptr_t)r.mem, r.mr->rkey), 0);
        CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
        /* errors complete even unsignaled; flushes complete unsignaled WRs too */
        TRY(expect_wc(r.cqa, 1, IBV_WC_REM_ACCESS_ERR, cases[c].read ? IBV_WC_RDMA_READ : IBV_WC_RDMA_WRITE));
        TRY(expect_wc(r.cqa, 2, IBV_WC_WR_FLUSH_ERR, IBV_WC_SEND));
        TRY(expect_wc(r.cqa, 3, IBV_WC_WR_FLUSH_ERR, IBV_WC_RDMA_WRITE));
        TRY(expect_wc(r.cqa, 50, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV));
        TRY(expect_wc(r.cqa, 51, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV));
        TRY(expect_empty(r.cqa));
        CHECK_EQ(qp_state(r.a), IBV_QPS_ERR);
        CHECK_EQ(qp_state(r.b), IBV_QPS_RTS);   /* the responder is untouched */
        struct sv_stats st;
        sv_stats(r.f, &st);
        CHECK_EQ(st.remote_access_errors, 1);
        CHECK_EQ(st.flushed, 4);
        struct sv_qp_info qi;
        sv_qp_info(r.f, r.a->qp_num, &qi);
        CHECK_EQ(qi.errors, 1);
        CHECK_EQ(qi.flushed, 4);
        CHECK_EQ(qi.sq_pending, 0);
        CHECK_EQ(qi.rq_posted, 0);
        rig_free(&r);
    }
    return 0;
}

static int t_local_prot_err(void)
{
    for (int c = 0; c < 4; c++) {
        struct rig r;
        TRY(rig_make(&r, 8, 1));
        static uint8_t ro[256];
        struct ibv_mr *nolw = ibv_reg_mr(r.pd, ro, sizeof ro, IBV_ACCESS_REMOTE_READ);
        struct ibv_pd *pd2 = ibv_alloc_pd(r.ctx);
        struct ibv_mr *other = ibv_reg_mr(pd2, ro, sizeof ro, IBV_ACCESS_LOCAL_WRITE);
        CHECK(nolw && other);
        CHECK_EQ(post_recv_wr(r.b, 9, r.mem, 4096, r.mr->lkey), 0);
        int rc;
        if (c == 0)          /* SGE beyond its MR */
            rc = post_send_wr(r.a, IBV_WR_SEND, 1, r.mem + 65000, 1000, r.mr->lkey, 0, 0, 0);
        else if (c == 1)     /* bad lkey */
            rc = post_send_wr(r.a, IBV_WR_SEND, 1, r.mem, 10, 0x1234, 0, 0, 0);
        else if (c == 2)     /* lkey of another PD */
            rc = post_send_wr(r.a, IBV_WR_SEND, 1, ro, 10, other->lkey, 0, 0, 0);
        else                 /* RDMA READ into memory without LOCAL_WRITE */
            rc = post_send_wr(r.a, IBV_WR_RDMA_READ, 1, ro, 10, nolw->lkey, 0, (uintptr_t)r.mem, r.mr->rkey);
        CHECK_EQ(rc, 0);
        CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
        TRY(expect_wc(r.cqa, 1, IBV_WC_LOC_PROT_ERR, c == 3 ? IBV_WC_RDMA_READ : IBV_WC_SEND));
        CHECK_EQ(qp_state(r.a), IBV_QPS_ERR);
        TRY(expect_empty(r.cqb));       /* the receive was not consumed */
        struct sv_qp_info qi;
        sv_qp_info(r.f, r.b->qp_num, &qi);
        CHECK_EQ(qi.rq_posted, 1);
        rig_free(&r);
    }
    return 0;
}

static int t_recv_too_small(void)
{
    struct rig r;
    TRY(rig_make(&r, 8, 1));
    CHECK_EQ(post_recv_wr(r.b, 9, r.mem, 32, r.mr->lkey), 0);
    CHECK_EQ(post_recv_wr(r.b, 10, r.mem, 32, r.mr->lkey), 0);
    CHECK_EQ(post_send_wr(r.a, IBV_WR_SEND, 1, r.mem + 4096, 64, r.mr->lkey, 0, 0, 0), 0);
    CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
    TRY(expect_wc(r.cqb, 9, IBV_WC_LOC_LEN_ERR, IBV_WC_RECV));
    TRY(expect_wc(r.cqb, 10, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV));
    TRY(expect_wc(r.cqa, 1, IBV_WC_REM_INV_REQ_ERR, IBV_WC_SEND));
    CHECK_EQ(qp_state(r.a), IBV_QPS_ERR);
    CHECK_EQ(qp_state(r.b), IBV_QPS_ERR);
    rig_free(&r);
    return 0;
}

static int t_flush_on_error(void)
{
    struct rig r;
    TRY(rig_make(&r, 8, 0));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(post_recv_wr(r.a, 20 + i, r.mem, 64, r.mr->lkey), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(post_send_wr(r.a, IBV_WR_SEND, 10 + i, r.mem, 8, r.mr->lkey, 0, 0, 0), 0);
    struct ibv_qp_attr at;
    memset(&at, 0, sizeof at);
    at.qp_state = IBV_QPS_ERR;
    CHECK_EQ(ibv_modify_qp(r.a, &at, IBV_QP_STATE), 0);
    for (int i = 0; i < 3; i++)
        TRY(expect_wc(r.cqa, 10 + i, IBV_WC_WR_FLUSH_ERR, IBV_WC_SEND));
    for (int i = 0; i < 3; i++)
        TRY(expect_wc(r.cqa, 20 + i, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV));
    TRY(expect_empty(r.cqa));
    /* RESET then back to RTS: a usable QP again */
    at.qp_state = IBV_QPS_RESET;
    CHECK_EQ(ibv_modify_qp(r.a, &at, IBV_QP_STATE), 0);
    TRY(connect_qp(r.a, r.b->qp_num));
    CHECK_EQ(post_recv_wr(r.b, 1, r.mem, 64, r.mr->lkey), 0);
    CHECK_EQ(post_send_wr(r.a, IBV_WR_SEND, 2, r.mem, 8, r.mr->lkey, IBV_SEND_SIGNALED, 0, 0), 0);
    CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
    TRY(expect_wc(r.cqa, 2, IBV_WC_SUCCESS, IBV_WC_SEND));
    /* a bad transition is refused */
    at.qp_state = IBV_QPS_RTR;
    CHECK_EQ(ibv_modify_qp(r.a, &at, IBV_QP_STATE), EINVAL);
    rig_free(&r);
    return 0;
}

static int t_post_to_error_qp(void)
{
    struct rig r;
    TRY(rig_make(&r, 2, 0));
    CHECK_EQ(sv_qp_to_error(r.f, r.a->qp_num), 0);
    TRY(expect_async(r.ctx, IBV_EVENT_QP_FATAL));
    /* more posts than the queue holds: each completes at once, flushed, in order */
    for (int i = 0; i < 5; i++)
        CHECK_EQ(post_send_wr(r.a, IBV_WR_SEND, i, r.mem, 8, r.mr->lkey, 0, 0, 0), 0);
    CHECK_EQ(post_recv_wr(r.a, 99, r.mem, 8, r.mr->lkey), 0);
    for (int i = 0; i < 5; i++)
        TRY(expect_wc(r.cqa, i, IBV_WC_WR_FLUSH_ERR, IBV_WC_SEND));
    TRY(expect_wc(r.cqa, 99, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV));
    CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 0);
    /* a SEND to a peer in error: retries exhausted, and the sender errors too */
    CHECK_EQ(post_send_wr(r.b, IBV_WR_SEND, 7, r.mem, 8, r.mr->lkey, 0, 0, 0), 0);
    CHECK_EQ(sv_qp_execute(r.f, r.b->qp_num), 1);
    TRY(expect_wc(r.cqb, 7, IBV_WC_RETRY_EXC_ERR, IBV_WC_SEND));
    CHECK_EQ(qp_state(r.b), IBV_QPS_ERR);
    rig_free(&r);
    return 0;
}

static int t_rnr_wait_then_success(void)
{
    struct rig r;
    TRY(rig_make(&r, 8, 1));
    CHECK_EQ(post_send_wr(r.a, IBV_WR_SEND, 1, r.mem, 8, r.mr->lkey, 0, 0, 0), 0);
    CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 0);
    CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 0);
    struct sv_stats st;
    sv_stats(r.f, &st);
    CHECK_EQ(st.rnr_waits, 2);
    TRY(expect_empty(r.cqa));
    CHECK_EQ(post_recv_wr(r.b, 5, r.mem + 100, 64, r.mr->lkey), 0);
    CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
    TRY(expect_wc(r.cqa, 1, IBV_WC_SUCCESS, IBV_WC_SEND));
    TRY(expect_wc(r.cqb, 5, IBV_WC_SUCCESS, IBV_WC_RECV));
    rig_free(&r);
    return 0;
}

static int t_injected_rnr(void)
{
    struct rig r;
    TRY(rig_make(&r, 8, 1));
    CHECK_EQ(post_recv_wr(r.b, 5, r.mem, 64, r.mr->lkey), 0);
    CHECK_EQ(sv_qp_rnr(r.f, r.a->qp_num, 1), 0);
    CHECK_EQ(post_send_wr(r.a, IBV_WR_SEND, 1, r.mem, 8, r.mr->lkey, 0, 0, 0), 0);
    CHECK_EQ(post_send_wr(r.a, IBV_WR_SEND, 2, r.mem, 8, r.mr->lkey, 0, 0, 0), 0);
    CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
    TRY(expect_wc(r.cqa, 1, IBV_WC_RNR_RETRY_EXC_ERR, IBV_WC_SEND));
    TRY(expect_wc(r.cqa, 2, IBV_WC_WR_FLUSH_ERR, IBV_WC_SEND));
    TRY(expect_empty(r.cqb));
    struct sv_stats st;
    sv_stats(r.f, &st);
    CHECK_EQ(st.rnr_errors, 1);
    rig_free(&r);
    return 0;
}

static int t_injected_enomem(void)
{
    struct rig r;
    TRY(rig_make(&r, 8, 1));
    CHECK_EQ(sv_qp_fail_posts(r.f, r.a->qp_num, 2), 0);
    struct ibv_sge sge = {(uintptr_t)r.mem, 8, r.mr->lkey};
    struct ibv_send_wr w2, w1, *bad = NULL;
    memset(&w1, 0, sizeof w1);
    memset(&w2, 0, sizeof w2);
    w1.wr_id = 1;
    w1.sg_list = &sge;
    w1.num_sge = 1;
    w1.opcode = IBV_WR_RDMA_WRITE;
    w1.wr.rdma.remote_addr = (uintptr_t)r.mem;
    w1.wr.rdma.rkey = r.mr->rkey;
    w2 = w1;
    w2.wr_id = 2;
    w1.next = &w2;
    CHECK_EQ(ibv_post_send(r.a, &w1, &bad), ENOMEM);
    CHECK(bad == &w1);
    struct ibv_recv_wr rw, *rbad = NULL;
    memset(&rw, 0, sizeof rw);
    rw.sg_list = &sge;
    rw.num_sge = 1;
    CHECK_EQ(ibv_post_recv(r.a, &rw, &rbad), ENOMEM);
    CHECK(rbad == &rw);
    struct sv_qp_info qi;
    sv_qp_info(r.f, r.a->qp_num, &qi);
    CHECK_EQ(qi.sq_pending, 0);
    CHECK_EQ(qi.rq_posted, 0);
    CHECK_EQ(qi.posts_send, 0);
    struct sv_stats st;
    sv_stats(r.f, &st);
    CHECK_EQ(st.failed_posts, 2);
    /* the third call goes through, the whole chain */
    CHECK_EQ(ibv_post_send(r.a, &w1, &bad), 0);
    sv_qp_info(r.f, r.a->qp_num, &qi);
    CHECK_EQ(qi.sq_pending, 2);
    rig_free(&r);
    return 0;
}

static int t_injected_remote_access(void)
{
    struct rig r;
    TRY(rig_make(&r, 8, 1));
    CHECK_EQ(sv_qp_remote_access_error(r.f, r.a->qp_num, 1), 0);
    CHECK_EQ(post_send_wr(r.a, IBV_WR_RDMA_READ, 1, r.mem, 8, r.mr->lkey, 0, (uintptr_t)r.mem + 64,
                          r.mr->rkey), 0);
    CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
    TRY(expect_wc(r.cqa, 1, IBV_WC_REM_ACCESS_ERR, IBV_WC_RDMA_READ));
    CHECK_EQ(qp_state(r.a), IBV_QPS_ERR);
    rig_free(&r);
    return 0;
}

static int t_post_bounds(void)
{
    struct rig r;
    TRY(rig_make(&r, 3, 1));
    /* a chain longer than the queue: the first 3 post, bad_wr is the 4th */
    struct ibv_sge sge = {(uintptr_t)r.mem, 8, r.mr->lkey};
    struct ibv_recv_wr rw[5], *rbad = NULL;
    for (int i = 0; i < 5; i++) {
        memset(&rw[i], 0, sizeof rw[i]);
        rw[i].wr_id = i;
        rw[i].sg_list = &sge;
        rw[i].num_sge = 1;
        rw[i].next = i < 4 ? &rw[i + 1] : NULL;
    }
    CHECK_EQ(ibv_post_recv(r.b, &rw[0], &rbad), ENOMEM);
    CHECK(rbad == &rw[3]);
    struct sv_qp_info qi;
    sv_qp_info(r.f, r.b->qp_num, &qi);
    CHECK_EQ(qi.rq_posted, 3);
    /* too many SGEs is EINVAL for that WR */
    struct ibv_sge many[5];
    for (int i = 0; i < 5; i++)
        many[i] = sge;
    struct ibv_send_wr sw, *bad = NULL;
    memset(&sw, 0, sizeof sw);
    sw.sg_list = many;
    sw.num_sge = 5;
    sw.opcode = IBV_WR_SEND;
    CHECK_EQ(ibv_post_send(r.a, &sw, &bad), EINVAL);
    CHECK(bad == &sw);
    /* atomics are not simulated */
    sw.num_sge = 1;
    sw.opcode = IBV_WR_ATOMIC_FETCH_AND_ADD;
    CHECK_EQ(ibv_post_send(r.a, &sw, &bad), EINVAL);
    /* posting sends in INIT is refused */
    struct ibv_qp *q = mkqp(r.pd, r.cqa, NULL, 4, 1, 0);
    CHECK(q);
    sw.opcode = IBV_WR_SEND;
    CHECK_EQ(ibv_post_send(q, &sw, &bad), EINVAL);
    CHECK_EQ(post_recv_wr(q, 1, r.mem, 8, r.mr->lkey), EINVAL);   /* RESET */
    /* caps beyond the device */
    struct ibv_qp_init_attr a;
    memset(&a, 0, sizeof a);
    a.send_cq = a.recv_cq = r.cqa;
    a.qp_type = IBV_QPT_RC;
    a.cap.max_send_wr = 4097;
    a.cap.max_send_sge = 1;
    CHECK(ibv_create_qp(r.pd, &a) == NULL);
    a.cap.max_send_wr = 4;
    a.cap.max_send_sge = 17;
    CHECK(ibv_create_qp(r.pd, &a) == NULL);
    a.cap.max_send_sge = 1;
    a.qp_type = IBV_QPT_UD;
    CHECK(ibv_create_qp(r.pd, &a) == NULL);
    /* busy objects */
    CHECK_EQ(ibv_destroy_cq(r.cqa), EBUSY);
    CHECK_EQ(ibv_dealloc_pd(r.pd), EBUSY);
    CHECK_EQ(ibv_destroy_qp(q), 0);
    rig_free(&r);
    return 0;
}

static int t_send_imm_inv_inline(void)
{
    struct rig r;
    TRY(rig_make(&r, 8, 1));
    for (int i = 0; i < 4; i++)
        CHECK_EQ(post_recv_wr(r.b, i, r.mem + 1024 * i, 1024, r.mr->lkey), 0);
    struct ibv_sge sge = {(uintptr_t)(r.mem + 8192), 16, r.mr->lkey};
    struct ibv_send_wr wr, *bad;
    memset(&wr, 0, sizeof wr);
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = IBV_WR_SEND_WITH_IMM;
    wr.imm_data = htonl(0xC0FFEE);
    CHECK_EQ(ibv_post_send(r.a, &wr, &bad), 0);
    wr.opcode = IBV_WR_SEND_WITH_INV;
    wr.invalidate_rkey = 0x4242;
    CHECK_EQ(ibv_post_send(r.a, &wr, &bad), 0);
    /* inline: the buffer may change right after the post */
    char msg[32] = "inline bytes";
    struct ibv_sge is = {(uintptr_t)msg, 13, 0};
    wr.sg_list = &is;
    wr.opcode = IBV_WR_SEND;
    wr.send_flags = IBV_SEND_INLINE;
    CHECK_EQ(ibv_post_send(r.a, &wr, &bad), 0);
    memcpy(msg, "CHANGED", 8);
    is.length = 65;              /* beyond max_inline_data 64 */
    CHECK_EQ(ibv_post_send(r.a, &wr, &bad), EINVAL);
    /* write with immediate consumes a receive */
    memset(&wr, 0, sizeof wr);
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
    wr.imm_data = htonl(7);
    wr.wr.rdma.remote_addr = (uintptr_t)r.mem + 20000;
    wr.wr.rdma.rkey = r.mr->rkey;
    CHECK_EQ(ibv_post_send(r.a, &wr, &bad), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
    struct ibv_wc wc;
    CHECK_EQ(poll1(r.cqb, &wc), 1);
    CHECK(wc.wc_flags & IBV_WC_WITH_IMM);
    CHECK_EQ(ntohl(wc.imm_data), 0xC0FFEE);
    CHECK_EQ(poll1(r.cqb, &wc), 1);
    CHECK(wc.wc_flags & IBV_WC_WITH_INV);
    CHECK_EQ(wc.invalidated_rkey, 0x4242);
    CHECK_EQ(poll1(r.cqb, &wc), 1);
    CHECK_EQ(wc.byte_len, 13);
    CHECK(memcmp(r.mem + 2048, "inline bytes", 13) == 0);
    CHECK_EQ(poll1(r.cqb, &wc), 1);
    CHECK_EQ(wc.opcode, IBV_WC_RECV_RDMA_WITH_IMM);
    CHECK_EQ(ntohl(wc.imm_data), 7);
    CHECK_EQ(wc.byte_len, 16);
    CHECK(memcmp(r.mem + 20000, r.mem + 8192, 16) == 0);
    rig_free(&r);
    return 0;
}

static int t_srq_shared(void)
{
    struct rig r;
    TRY(rig_make(&r, 8, 1));
    struct ibv_srq_init_attr sa;
    memset(&sa, 0, sizeof sa);
    sa.attr.max_wr = 8;
    sa.attr.max_sge = 1;
    struct ibv_srq *srq = ibv_create_srq(r.pd, &sa);
    CHECK(srq);
    struct ibv_cq *cq = ibv_create_cq(r.ctx, 64, NULL, NULL, 0);
    struct ibv_qp *t1 = mkqp(r.pd, cq, srq, 8, 1, 1), *t2 = mkqp(r.pd, cq, srq, 8, 1, 1);
    CHECK(t1 && t2);
    /* t1 <-> a, t2 <-> b */
    TRY(connect_qp(t1, r.a->qp_num));
    TRY(connect_qp(t2, r.b->qp_num));
    struct ibv_qp_attr at;
    memset(&at, 0, sizeof at);
    at.qp_state = IBV_QPS_RESET;
    CHECK_EQ(ibv_modify_qp(r.a, &at, IBV_QP_STATE), 0);
    CHECK_EQ(ibv_modify_qp(r.b, &at, IBV_QP_STATE), 0);
    TRY(connect_qp(r.a, t1->qp_num));
    TRY(connect_qp(r.b, t2->qp_num));
    CHECK_EQ(post_recv_wr(t1, 1, r.mem, 8, r.mr->lkey), EINVAL);   /* it has an SRQ */
    struct ibv_sge sge = {(uintptr_t)r.mem, 64, r.mr->lkey};
    struct ibv_recv_wr rw, *bad;
    memset(&rw, 0, sizeof rw);
    rw.sg_list = &sge;
    rw.num_sge = 1;
    for (int i = 0; i < 4; i++) {
        rw.wr_id = 100 + i;
        sge.addr = (uintptr_t)(r.mem + 256 * i);
        CHECK_EQ(ibv_post_srq_recv(srq, &rw, &bad), 0);
    }
    struct ibv_srq_attr lim = {.srq_limit = 3};
    CHECK_EQ(ibv_modify_srq(srq, &lim, IBV_SRQ_LIMIT), 0);
    CHECK_EQ(post_send_wr(r.a, IBV_WR_SEND, 1, r.mem + 4096, 8, r.mr->lkey, 0, 0, 0), 0);
    CHECK_EQ(post_send_wr(r.b, IBV_WR_SEND, 2, r.mem + 4096, 8, r.mr->lkey, 0, 0, 0), 0);
    CHECK_EQ(post_send_wr(r.a, IBV_WR_SEND, 3, r.mem + 4096, 8, r.mr->lkey, 0, 0, 0), 0);
    CHECK_EQ(sv_qp_execute(r.f, r.b->qp_num), 1);
    CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
    CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
    /* receives are taken in posting order, whichever QP the SEND arrives on */
    struct ibv_wc wc;
    CHECK_EQ(poll1(cq, &wc), 1);
    CHECK_EQ(wc.wr_id, 100);
    CHECK_EQ(wc.qp_num, t2->qp_num);
    CHECK_EQ(poll1(cq, &wc), 1);
    CHECK_EQ(wc.wr_id, 101);
    CHECK_EQ(wc.qp_num, t1->qp_num);
    CHECK_EQ(poll1(cq, &wc), 1);
    CHECK_EQ(wc.wr_id, 102);
    /* the limit (3) was crossed when 2 were left: one event */
    TRY(expect_async(r.ctx, IBV_EVENT_SRQ_LIMIT_REACHED));
    struct ibv_async_event ev;
    CHECK(ibv_get_async_event(r.ctx, &ev) < 0);
    /* one QP's error does not flush the SRQ; the QP reports its fatal error, then that it
     * takes no more receives from the SRQ (last WQE reached) */
    CHECK_EQ(sv_qp_to_error(r.f, t1->qp_num), 0);
    TRY(expect_empty(cq));
    TRY(expect_async(r.ctx, IBV_EVENT_QP_FATAL));
    TRY(expect_async(r.ctx, IBV_EVENT_QP_LAST_WQE_REACHED));
    CHECK(ibv_get_async_event(r.ctx, &ev) < 0);
    CHECK_EQ(post_send_wr(r.b, IBV_WR_SEND, 4, r.mem + 4096, 8, r.mr->lkey, 0, 0, 0), 0);
    CHECK_EQ(sv_qp_execute(r.f, r.b->qp_num), 1);
    CHECK_EQ(poll1(cq, &wc), 1);
    CHECK_EQ(wc.wr_id, 103);
    CHECK_EQ(wc.status, IBV_WC_SUCCESS);
    struct ibv_srq_attr q;
    CHECK_EQ(ibv_query_srq(srq, &q), 0);
    CHECK_EQ(q.max_wr, 8);
    /* resize keeps what is posted */
    rw.wr_id = 104;
    CHECK_EQ(ibv_post_srq_recv(srq, &rw, &bad), 0);
    q.max_wr = 16;
    CHECK_EQ(ibv_modify_srq(srq, &q, IBV_SRQ_MAX_WR), 0);
    CHECK_EQ(ibv_query_srq(srq, &q), 0);
    CHECK_EQ(q.max_wr, 16);
    CHECK_EQ(post_send_wr(r.b, IBV_WR_SEND, 5, r.mem + 4096, 8, r.mr->lkey, 0, 0, 0), 0);
    CHECK_EQ(sv_qp_execute(r.f, r.b->qp_num), 1);
    CHECK_EQ(poll1(cq, &wc), 1);
    CHECK_EQ(wc.wr_id, 104);
    q.srq_limit = 17;
    CHECK_EQ(ibv_modify_srq(srq, &q, IBV_SRQ_LIMIT), EINVAL);
    CHECK_EQ(ibv_destroy_srq(srq), EBUSY);
    CHECK_EQ(ibv_destroy_qp(t1), 0);
    CHECK_EQ(ibv_destroy_qp(t2), 0);
    CHECK_EQ(ibv_destroy_srq(srq), 0);
    rig_free(&r);

    /* a device without SRQs */
    struct sv_device_attr a;
    sv_device_attr_default(&a);
    a.max_srq = 0;
    TRY(rig_make_attr(&r, &a, 8, 1));
    errno = 0;
    CHECK(ibv_create_srq(r.pd, &sa) == NULL);
    CHECK_EQ(errno, EOPNOTSUPP);
    rig_free(&r);
    return 0;
}

static int t_cq_overrun(void)
{
    struct rig r;
    TRY(rig_make(&r, 8, 1));
    struct ibv_cq *small = ibv_create_cq(r.ctx, 2, NULL, NULL, 0);
    CHECK(small);
    CHECK(ibv_create_cq(r.ctx, 65537, NULL, NULL, 0) == NULL);   /* above max_cqe */
    struct ibv_qp *q = mkqp(r.pd, small, NULL, 8, 1, 1);
    CHECK(q);
    TRY(connect_qp(q, r.b->qp_num));
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(post_send_wr(q, IBV_WR_RDMA_WRITE, i, r.mem, 8, r.mr->lkey, 0, (uintptr_t)r.mem + 64,
                              r.mr->rkey), 0);
        CHECK_EQ(sv_qp_execute(r.f, q->qp_num), 1);
    }
    struct sv_stats st;
    sv_stats(r.f, &st);
    CHECK_EQ(st.cq_overruns, 1);
    CHECK(fd_readable(r.ctx->async_fd));
    struct ibv_async_event ev;
    CHECK_EQ(ibv_get_async_event(r.ctx, &ev), 0);
    CHECK_EQ(ev.event_type, IBV_EVENT_CQ_ERR);
    CHECK(ev.element.cq == small);
    ibv_ack_async_event(&ev);
    TRY(expect_wc(small, 0, IBV_WC_SUCCESS, IBV_WC_RDMA_WRITE));
    TRY(expect_wc(small, 1, IBV_WC_SUCCESS, IBV_WC_RDMA_WRITE));
    TRY(expect_empty(small));    /* the third was dropped */
    /* resize: grows, keeps what is queued */
    CHECK_EQ(post_send_wr(q, IBV_WR_RDMA_WRITE, 5, r.mem, 8, r.mr->lkey, 0, (uintptr_t)r.mem, r.mr->rkey), 0);
    CHECK_EQ(sv_qp_execute(r.f, q->qp_num), 1);
    CHECK_EQ(ibv_resize_cq(small, 8), 0);
    CHECK_EQ(small->cqe, 8);
    TRY(expect_wc(small, 5, IBV_WC_SUCCESS, IBV_WC_RDMA_WRITE));
    rig_free(&r);
    return 0;
}

static int t_async_fd_and_channels(void)
{
    struct rig r;
    TRY(rig_make(&r, 8, 1));
    struct ibv_async_event ev;
    /* empty: EAGAIN whether the fd blocks or not (no threads: never hang) */
    errno = 0;
    CHECK(ibv_get_async_event(r.ctx, &ev) < 0);
    CHECK_EQ(errno, EAGAIN);
    int fl = fcntl(r.ctx->async_fd, F_GETFL);
    CHECK_EQ(fcntl(r.ctx->async_fd, F_SETFL, fl | O_NONBLOCK), 0);
    errno = 0;
    CHECK(ibv_get_async_event(r.ctx, &ev) < 0);
    CHECK_EQ(errno, EAGAIN);
    CHECK(!fd_readable(r.ctx->async_fd));

    /* completion channel: armed CQ -> one event -> readable fd */
    struct ibv_comp_channel *ch = ibv_create_comp_channel(r.ctx);
    CHECK(ch);
    struct ibv_cq *cq = ibv_create_cq(r.ctx, 8, (void *)0x1234, ch, 0);
    CHECK(cq);
    CHECK_EQ(ibv_destroy_comp_channel(ch), EBUSY);
    struct ibv_qp *q = mkqp(r.pd, cq, NULL, 8, 1, 1);
    TRY(connect_qp(q, r.b->qp_num));
    CHECK_EQ(ibv_req_notify_cq(cq, 0), 0);
    CHECK(!fd_readable(ch->fd));
    CHECK_EQ(post_send_wr(q, IBV_WR_RDMA_WRITE, 1, r.mem, 8, r.mr->lkey, 0, (uintptr_t)r.mem, r.mr->rkey), 0);
    CHECK_EQ(post_send_wr(q, IBV_WR_RDMA_WRITE, 2, r.mem, 8, r.mr->lkey, 0, (uintptr_t)r.mem, r.mr->rkey), 0);
    CHECK_EQ(sv_qp_execute(r.f, q->qp_num), 1);
    CHECK_EQ(sv_qp_execute(r.f, q->qp_num), 1);
    CHECK(fd_readable(ch->fd));
    struct ibv_cq *got;
    void *gctx;
    CHECK_EQ(ibv_get_cq_event(ch, &got, &gctx), 0);
    CHECK(got == cq && gctx == (void *)0x1234);
    CHECK(ibv_get_cq_event(ch, &got, &gctx) < 0);   /* one event per arming */
    CHECK(!fd_readable(ch->fd));
    ibv_ack_cq_events(cq, 1);
    CHECK_EQ(ibv_destroy_qp(q), 0);
    CHECK_EQ(ibv_destroy_cq(cq), 0);
    CHECK_EQ(ibv_destroy_comp_channel(ch), 0);
    rig_free(&r);
    return 0;
}

static int t_destroyed_qp_events_dropped(void)
{
    struct rig r;
    TRY(rig_make(&r, 8, 1));
    CHECK_EQ(post_send_wr(r.a, IBV_WR_RDMA_WRITE, 1, r.mem, 8, r.mr->lkey, 0, (uintptr_t)r.mem, r.mr->rkey), 0);
    CHECK_EQ(sv_qp_execute(r.f, r.a->qp_num), 1);
    uint32_t qpn = r.a->qp_num;
    CHECK_EQ(sv_qp_to_error(r.f, qpn), 0);     /* QP_FATAL queued for a */
    CHECK(fd_readable(r.ctx->async_fd));
    CHECK_EQ(ibv_destroy_qp(r.a), 0);
    struct sv_stats st;
    sv_stats(r.f, &st);
    CHECK_EQ(st.dropped_events, 1);
    CHECK(!fd_readable(r.ctx->async_fd));
    struct ibv_async_event ev;
    CHECK(ibv_get_async_event(r.ctx, &ev) < 0);
    /* the completion it already generated stays on the CQ */
    TRY(expect_wc(r.cqa, 1, IBV_WC_SUCCESS, IBV_WC_RDMA_WRITE));
    /* its number is dead now, and a new QP does not get it */
    CHECK(sv_qp_execute(r.f, qpn) < 0);
    struct ibv_qp *n = mkqp(r.pd, r.cqa, NULL, 4, 1, 0);
    CHECK(n && n->qp_num != qpn);
    rig_free(&r);
    return 0;
}

static int t_sv_run_events(void)
{
    struct rig r;
    TRY(rig_make(&r, 8, 1));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(post_send_wr(r.a, IBV_WR_RDMA_WRITE, i, r.mem, 8, r.mr->lkey, 0, (uintptr_t)r.mem, r.mr->rkey), 0);
    CHECK_EQ(post_send_wr(r.b, IBV_WR_RDMA_WRITE, 9, r.mem, 8, r.mr->lkey, 0, (uintptr_t)r.mem, r.mr->rkey), 0);
    int ia = sv_qp_index(r.f, r.a->qp_num), ib = sv_qp_index(r.f, r.b->qp_num);
    CHECK(ia >= 0 && ib >= 0 && ia != ib && ia < 16 && ib < 16);
    uint32_t ev[] = {SV_EV_EXECUTE << 24 | (uint32_t)ib, SV_EV_EXECUTE << 24 | (uint32_t)ia,
                     SV_EV_EXECUTE << 24 | (uint32_t)ib, SV_EV_EXECUTE << 24 | (uint32_t)ia,
                     SV_EV_EXECUTE << 24 | 4000};
    CHECK_EQ(sv_run(r.f, ev, 5), 3);
    struct sv_qp_info qi;
    sv_qp_info(r.f, r.a->qp_num, &qi);
    CHECK_EQ(qi.sq_pending, 1);
    uint32_t bad[] = {SV_EV_EXECUTE << 24 | (uint32_t)ia, 9u << 24};
    CHECK(sv_run(r.f, bad, 2) < 0);
    sv_qp_info(r.f, r.a->qp_num, &qi);
    CHECK_EQ(qi.sq_pending, 1);       /* refused whole */
    uint32_t qps[8];
    CHECK_EQ(sv_qps(r.f, qps, 8), 2);
    CHECK(qps[0] < qps[1]);
    rig_free(&r);
    return 0;
}

/* ---- the CM ------------------------------------------------------------------------------------ */

struct cmx {
    struct sv_fabric *f;
    struct rdma_event_channel *sch, *cch;
    struct rdma_cm_id *lid, *cid, *sid;
    struct ibv_pd *spd, *cpd;
    struct ibv_cq *scq, *ccq;
    uint8_t *mem;
    struct ibv_mr *smr, *cmr;
};

static int get_ev(struct rdma_event_channel *ch, enum rdma_cm_event_type t, struct rdma_cm_event **out)
{
    struct rdma_cm_event *e;
    if (rdma_get_cm_event(ch, &e)) {
        fprintf(stderr, "expected %s, channel empty (errno %d)\n", rdma_event_str(t), errno);
        return 1;
    }
    if (e->event != t) {
        fprintf(stderr, "got %s (status %d), expected %s\n", rdma_event_str(e->event), e->status,
                rdma_event_str(t));
        return 1;
    }
    if (out)
        *out = e;
    else
        rdma_ack_cm_event(e);
    return 0;
}

static int chan_empty(struct rdma_event_channel *ch)
{
    struct rdma_cm_event *e;
    if (rdma_get_cm_event(ch, &e) == 0) {
        fprintf(stderr, "unexpected %s\n", rdma_event_str(e->event));
        return 1;
    }
    if (errno != EAGAIN) {
        fprintf(stderr, "rdma_get_cm_event: errno %d, expected EAGAIN\n", errno);
        return 1;
    }
    return 0;
}

static void sin_of(struct sockaddr_in *s, uint32_t ip, uint16_t port)
{
    memset(s, 0, sizeof *s);
    s->sin_family = AF_INET;
    s->sin_addr.s_addr = ip;
    s->sin_port = htons(port);
}

static struct ibv_qp *cm_qp(struct rdma_cm_id *id, struct ibv_pd *pd, struct ibv_cq *cq)
{
    struct ibv_qp_init_attr a;
    memset(&a, 0, sizeof a);
    a.send_cq = a.recv_cq = cq;
    a.qp_type = IBV_QPT_RC;
    a.cap.max_send_wr = 16;
    a.cap.max_recv_wr = 16;
    a.cap.max_send_sge = 2;
    a.cap.max_recv_sge = 2;
    return rdma_create_qp(id, pd, &a) ? NULL : id->qp;
}

static int cm_setup(struct cmx *x, int ndev)
{
    memset(x, 0, sizeof *x);
    x->f = sv_fabric_create();
    for (int i = 0; i < ndev; i++)
        CHECK_EQ(sv_device_add(x->f, NULL), i);
    x->sch = rdma_create_event_channel();
    x->cch = rdma_create_event_channel();
    CHECK(x->sch && x->cch);
    x->mem = calloc(1, 65536);
    return 0;
}

static int cm_listen(struct cmx *x, int dev, uint16_t port)
{
    struct sockaddr_in s;
    sin_of(&s, sv_device_ipv4(dev), port);
    CHECK_EQ(rdma_create_id(x->sch, &x->lid, (void *)0x11, RDMA_PS_TCP), 0);
    CHECK_EQ(rdma_bind_addr(x->lid, (struct sockaddr *)&s), 0);
    CHECK(x->lid->verbs != NULL);
    CHECK_EQ(rdma_listen(x->lid, 8), 0);
    return 0;
}

/* a client id with a resolved route, a PD, a CQ and a QP (one receive posted) */
static int cm_client(struct cmx *x, int dev, uint16_t port)
{
    struct sockaddr_in d;
    sin_of(&d, sv_device_ipv4(dev), port);
    CHECK_EQ(rdma_create_id(x->cch, &x->cid, (void *)0x22, RDMA_PS_TCP), 0);
    CHECK_EQ(rdma_resolve_addr(x->cid, NULL, (struct sockaddr *)&d, 1000), 0);
    TRY(get_ev(x->cch, RDMA_CM_EVENT_ADDR_RESOLVED, NULL));
    CHECK(x->cid->verbs != NULL);
    CHECK_EQ(rdma_resolve_route(x->cid, 1000), 0);
    TRY(get_ev(x->cch, RDMA_CM_EVENT_ROUTE_RESOLVED, NULL));
    x->cpd = ibv_alloc_pd(x->cid->verbs);
    x->ccq = ibv_create_cq(x->cid->verbs, 64, NULL, NULL, 0);
    CHECK(x->cpd && x->ccq && cm_qp(x->cid, x->cpd, x->ccq));
    x->cmr = ibv_reg_mr(x->cpd, x->mem, 32768,
                        IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE);
    CHECK(x->cmr);
    CHECK_EQ(post_recv_wr(x->cid->qp, 500, x->mem, 1024, x->cmr->lkey), 0);
    return 0;
}

static int cm_connect(struct cmx *x, const void *pd, uint8_t len, uint8_t init_depth, uint8_t resp_res)
{
    struct rdma_conn_param p;
    memset(&p, 0, sizeof p);
    p.private_data = pd;
    p.private_data_len = len;
    p.initiator_depth = init_depth;
    p.responder_resources = resp_res;
    p.rnr_retry_count = 7;
    CHECK_EQ(rdma_connect(x->cid, &p), 0);
    return 0;
}

/* the server takes the request (checked by the caller through *req) and builds its QP */
static int cm_take_request(struct cmx *x, struct rdma_cm_event **req)
{
    TRY(get_ev(x->sch, RDMA_CM_EVENT_CONNECT_REQUEST, req));
    x->sid = (*req)->id;
    CHECK(x->sid && x->sid != x->lid);
    x->spd = ibv_alloc_pd(x->sid->verbs);
    x->scq = ibv_create_cq(x->sid->verbs, 64, NULL, NULL, 0);
    CHECK(x->spd && x->scq && cm_qp(x->sid, x->spd, x->scq));
    x->smr = ibv_reg_mr(x->spd, x->mem + 32768, 32768,
                        IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE);
    CHECK(x->smr);
    CHECK_EQ(post_recv_wr(x->sid->qp, 600, x->mem + 32768, 1024, x->smr->lkey), 0);
    return 0;
}

static int cm_accept(struct cmx *x, const void *pd, uint8_t len, uint8_t init_depth, uint8_t resp_res)
{
    struct rdma_conn_param p;
    memset(&p, 0, sizeof p);
    p.private_data = pd;
    p.private_data_len = len;
    p.initiator_depth = init_depth;
    p.responder_resources = resp_res;
    CHECK_EQ(rdma_accept(x->sid, &p), 0);
    return 0;
}

/* listen, connect, accept, both ESTABLISHED */
static int cm_established(struct cmx *x, int ndev)
{
    TRY(cm_setup(x, ndev));
    TRY(cm_listen(x, 0, 4420));
    TRY(cm_client(x, 0, 4420));
    TRY(cm_connect(x, "hi", 2, 4, 4));
    struct rdma_cm_event *req;
    TRY(cm_take_request(x, &req));
    rdma_ack_cm_event(req);
    TRY(cm_accept(x, "ok", 2, 4, 4));
    TRY(get_ev(x->cch, RDMA_CM_EVENT_ESTABLISHED, NULL));
    TRY(get_ev(x->sch, RDMA_CM_EVENT_ESTABLISHED, NULL));
    return 0;
}

static void cm_free(struct cmx *x)
{
    sv_fabric_destroy(x->f);
    free(x->mem);
}

static int t_cm_connect_accept(void)
{
    struct cmx x;
    TRY(cm_setup(&x, 1));
    TRY(cm_listen(&x, 0, 4420));
    TRY(cm_client(&x, 0, 4420));
    CHECK_EQ(qp_state(x.cid->qp), IBV_QPS_INIT);
    static const char hello[] = "NVMe-oF connect private data";
    struct rdma_conn_param deep = {.initiator_depth = 17};     /* device max 16 */
    CHECK(rdma_connect(x.cid, &deep) < 0 && errno == EINVAL);
    char big[57] = {0};
    struct rdma_conn_param fat = {.private_data = big, .private_data_len = 57};
    CHECK(rdma_connect(x.cid, &fat) < 0 && errno == EINVAL);
    TRY(cm_connect(&x, hello, sizeof hello, 3, 2));
    struct rdma_cm_event *req;
    TRY(cm_take_request(&x, &req));
    CHECK(req->listen_id == x.lid);
    CHECK(x.sid->verbs == x.lid->verbs);
    CHECK(x.sid->channel == x.sch);
    CHECK(x.sid->context == (void *)0x11);
    CHECK_EQ(req->param.conn.private_data_len, 56);        /* the IB CM's REQ size */
    CHECK(memcmp(req->param.conn.private_data, hello, sizeof hello) == 0);
    CHECK_EQ(((const uint8_t *)req->param.conn.private_data)[sizeof hello], 0);
    CHECK_EQ(req->param.conn.initiator_depth, 2);   /* the client's responder resources */
    CHECK_EQ(req->param.conn.responder_resources, 3);
    CHECK_EQ(req->param.conn.qp_num, x.cid->qp->qp_num);
    rdma_ack_cm_event(req);
    const struct sockaddr_in *ls = (const struct sockaddr_in *)rdma_get_local_addr(x.sid);
    const struct sockaddr_in *ps = (const struct sockaddr_in *)rdma_get_peer_addr(x.sid);
    CHECK_EQ(ls->sin_addr.s_addr, sv_device_ipv4(0));
    CHECK_EQ(ntohs(rdma_get_src_port(x.sid)), 4420);
    CHECK_EQ(ps->sin_port, rdma_get_src_port(x.cid));
    CHECK_EQ(ntohs(rdma_get_dst_port(x.cid)), 4420);
    int n;
    struct ibv_context **devs = rdma_get_devices(&n);
    CHECK(n == 1 && devs[0] == x.sid->verbs && devs[1] == NULL);
    rdma_free_devices(devs);
    TRY(chan_empty(x.cch));

    static const char ok[] = "accepted";
    TRY(cm_accept(&x, ok, sizeof ok, 2, 3));
    CHECK_EQ(qp_state(x.sid->qp), IBV_QPS_RTS);
    struct rdma_cm_event *est;
    TRY(get_ev(x.cch, RDMA_CM_EVENT_ESTABLISHED, &est));
    CHECK_EQ(est->param.conn.private_data_len, 196);       /* REP */
    CHECK(memcmp(est->param.conn.private_data, ok, sizeof ok) == 0);
    CHECK_EQ(est->param.conn.initiator_depth, 3);
    CHECK_EQ(est->param.conn.responder_resources, 2);
    rdma_ack_cm_event(est);
    CHECK_EQ(qp_state(x.cid->qp), IBV_QPS_RTS);           /* moved on the event, as librdmacm */
    TRY(get_ev(x.sch, RDMA_CM_EVENT_ESTABLISHED, NULL));
    TRY(chan_empty(x.sch));

    /* data flows both ways */
    memcpy(x.mem + 4096, "abc", 4);
    CHECK_EQ(post_send_wr(x.cid->qp, IBV_WR_SEND, 1, x.mem + 4096, 4, x.cmr->lkey, IBV_SEND_SIGNALED, 0, 0), 0);
    CHECK_EQ(sv_qp_execute(x.f, x.cid->qp->qp_num), 1);
    TRY(expect_wc(x.scq, 600, IBV_WC_SUCCESS, IBV_WC_RECV));
    CHECK(memcmp(x.mem + 32768, "abc", 4) == 0);
    CHECK_EQ(post_send_wr(x.sid->qp, IBV_WR_RDMA_READ, 2, x.mem + 40000, 64, x.smr->lkey, IBV_SEND_SIGNALED,
                          (uintptr_t)(x.mem + 4096), x.cmr->rkey), 0);
    CHECK_EQ(sv_qp_execute(x.f, x.sid->qp->qp_num), 1);
    TRY(expect_wc(x.scq, 2, IBV_WC_SUCCESS, IBV_WC_RDMA_READ));
    struct sv_qp_info qi;
    sv_qp_info(x.f, x.sid->qp->qp_num, &qi);
    CHECK_EQ(qi.peer_qp_num, x.cid->qp->qp_num);
    CHECK_EQ(qi.device, 0);

    /* a clean teardown leaves nothing of the program's alive */
    rdma_destroy_qp(x.sid);
    rdma_destroy_qp(x.cid);
    CHECK_EQ(rdma_destroy_id(x.sid), 0);    /* established: the client hears DISCONNECTED */
    TRY(get_ev(x.cch, RDMA_CM_EVENT_DISCONNECTED, NULL));
    CHECK_EQ(rdma_destroy_id(x.cid), 0);
    CHECK_EQ(rdma_destroy_id(x.lid), 0);
    ibv_dereg_mr(x.smr);
    ibv_dereg_mr(x.cmr);
    CHECK_EQ(ibv_destroy_cq(x.scq), 0);
    CHECK_EQ(ibv_destroy_cq(x.ccq), 0);
    CHECK_EQ(ibv_dealloc_pd(x.spd), 0);
    CHECK_EQ(ibv_dealloc_pd(x.cpd), 0);
    rdma_destroy_event_channel(x.sch);
    rdma_destroy_event_channel(x.cch);
    struct sv_stats st;
    sv_stats(x.f, &st);
    CHECK_EQ(st.live_objects, 0);
    cm_free(&x);
    return 0;
}

static int t_cm_reject(void)
{
    struct cmx x;
    TRY(cm_setup(&x, 1));
    TRY(cm_listen(&x, 0, 4420));
    TRY(cm_client(&x, 0, 4420));
    TRY(cm_connect(&x, "req", 3, 1, 1));
    struct rdma_cm_event *req;
    TRY(get_ev(x.sch, RDMA_CM_EVENT_CONNECT_REQUEST, &req));
    struct rdma_cm_id *child = req->id;
    rdma_ack_cm_event(req);
    static const char why[] = "invalid host NQN";
    CHECK_EQ(rdma_reject(child, why, sizeof why), 0);
    CHECK(rdma_accept(child, NULL) < 0);         /* answered already */
    struct rdma_cm_event *rej;
    TRY(get_ev(x.cch, RDMA_CM_EVENT_REJECTED, &rej));
    CHECK_EQ(rej->status, 28);
    CHECK_EQ(rej->param.conn.private_data_len, 148);
    CHECK(memcmp(rej->param.conn.private_data, why, sizeof why) == 0);
    rdma_ack_cm_event(rej);
    CHECK_EQ(qp_state(x.cid->qp), IBV_QPS_ERR);
    TRY(expect_wc(x.ccq, 500, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV));
    CHECK_EQ(rdma_destroy_id(child), 0);
    TRY(chan_empty(x.cch));
    cm_free(&x);
    return 0;
}

static int t_cm_no_listener(void)
{
    struct cmx x;
    TRY(cm_setup(&x, 1));
    TRY(cm_listen(&x, 0, 4420));
    TRY(cm_client(&x, 0, 4421));
    TRY(cm_connect(&x, NULL, 0, 1, 1));
    struct rdma_cm_event *rej;
    TRY(get_ev(x.cch, RDMA_CM_EVENT_REJECTED, &rej));
    CHECK_EQ(rej->status, 8);                    /* invalid service ID */
    rdma_ack_cm_event(rej);
    TRY(chan_empty(x.sch));
    /* an address that is no device's */
    struct rdma_cm_id *id;
    struct sockaddr_in d;
    sin_of(&d, htonl(0x0A000009), 4420);
    CHECK_EQ(rdma_create_id(x.cch, &id, NULL, RDMA_PS_TCP), 0);
    CHECK_EQ(rdma_resolve_addr(id, NULL, (struct sockaddr *)&d, 100), 0);
    TRY(get_ev(x.cch, RDMA_CM_EVENT_ADDR_ERROR, NULL));
    /* binding: in use, not ours */
    struct rdma_cm_id *b;
    CHECK_EQ(rdma_create_id(x.sch, &b, NULL, RDMA_PS_TCP), 0);
    sin_of(&d, sv_device_ipv4(0), 4420);
    CHECK(rdma_bind_addr(b, (struct sockaddr *)&d) < 0 && errno == EADDRINUSE);
    sin_of(&d, htonl(0x7F000001), 4420);
    CHECK(rdma_bind_addr(b, (struct sockaddr *)&d) < 0 && errno == EADDRNOTAVAIL);
    sin_of(&d, htonl(INADDR_ANY), 0);
    CHECK_EQ(rdma_bind_addr(b, (struct sockaddr *)&d), 0);
    CHECK(b->verbs == NULL && ntohs(rdma_get_src_port(b)) != 0);
    cm_free(&x);
    return 0;
}

static int t_cm_disconnect_server(void)
{
    struct cmx x;
    TRY(cm_established(&x, 1));
    CHECK_EQ(post_send_wr(x.sid->qp, IBV_WR_SEND, 77, x.mem + 32768, 8, x.smr->lkey, 0, 0, 0), 0);
    CHECK_EQ(rdma_disconnect(x.sid), 0);
    TRY(get_ev(x.cch, RDMA_CM_EVENT_DISCONNECTED, NULL));
    TRY(get_ev(x.sch, RDMA_CM_EVENT_DISCONNECTED, NULL));
    CHECK_EQ(qp_state(x.sid->qp), IBV_QPS_ERR);
    CHECK_EQ(qp_state(x.cid->qp), IBV_QPS_ERR);
    TRY(expect_wc(x.scq, 77, IBV_WC_WR_FLUSH_ERR, IBV_WC_SEND));   /* sends first */
    TRY(expect_wc(x.scq, 600, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV));
    TRY(expect_wc(x.ccq, 500, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV));
    /* the other side answers; no second event anywhere */
    CHECK_EQ(rdma_disconnect(x.cid), 0);
    CHECK_EQ(rdma_disconnect(x.sid), 0);
    TRY(chan_empty(x.cch));
    TRY(chan_empty(x.sch));
    CHECK(rdma_disconnect(x.lid) < 0);
    cm_free(&x);
    return 0;
}

static int t_cm_disconnect_client(void)
{
    struct cmx x;
    TRY(cm_established(&x, 1));
    CHECK_EQ(rdma_disconnect(x.cid), 0);
    TRY(get_ev(x.sch, RDMA_CM_EVENT_DISCONNECTED, NULL));
    TRY(get_ev(x.cch, RDMA_CM_EVENT_DISCONNECTED, NULL));
    TRY(expect_wc(x.scq, 600, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV));
    TRY(expect_wc(x.ccq, 500, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV));
    cm_free(&x);
    return 0;
}

static int t_cm_hold_deliver(void)
{
    struct cmx x;
    TRY(cm_setup(&x, 1));
    TRY(cm_listen(&x, 0, 4420));
    TRY(cm_client(&x, 0, 4420));
    sv_cm_hold(x.f, 1);
    TRY(cm_connect(&x, "x", 1, 1, 1));
    CHECK_EQ(sv_cm_pending(x.f), 1);
    TRY(chan_empty(x.sch));
    CHECK_EQ(sv_cm_deliver(x.f), 1);
    CHECK_EQ(sv_cm_deliver(x.f), 0);
    struct rdma_cm_event *req;
    TRY(cm_take_request(&x, &req));
    rdma_ack_cm_event(req);
    TRY(cm_accept(&x, NULL, 0, 1, 1));
    CHECK_EQ(sv_cm_pending(x.f), 2);
    /* the server may send at once, but the client's QP is not ready until it sees the REP */
    CHECK_EQ(post_send_wr(x.sid->qp, IBV_WR_SEND, 1, x.mem + 32768, 8, x.smr->lkey, IBV_SEND_SIGNALED, 0, 0), 0);
    CHECK_EQ(sv_qp_execute(x.f, x.sid->qp->qp_num), 0);
    CHECK_EQ(sv_cm_deliver(x.f), 1);      /* the client's ESTABLISHED first */
    TRY(chan_empty(x.sch));
    TRY(get_ev(x.cch, RDMA_CM_EVENT_ESTABLISHED, NULL));
    CHECK_EQ(sv_qp_execute(x.f, x.sid->qp->qp_num), 1);
    TRY(expect_wc(x.ccq, 500, IBV_WC_SUCCESS, IBV_WC_RECV));
    sv_cm_hold(x.f, 0);                   /* releasing delivers the rest, in order */
    CHECK_EQ(sv_cm_pending(x.f), 0);
    TRY(get_ev(x.sch, RDMA_CM_EVENT_ESTABLISHED, NULL));
    struct sv_stats st;
    sv_stats(x.f, &st);
    CHECK_EQ(st.cm_events, 5);            /* addr, route, request, 2 x established */
    cm_free(&x);
    return 0;
}

static int t_cm_destroyed_id_events_dropped(void)
{
    struct cmx x;
    TRY(cm_setup(&x, 1));
    TRY(cm_listen(&x, 0, 4420));
    TRY(cm_client(&x, 0, 4420));
    sv_cm_hold(x.f, 1);
    TRY(cm_connect(&x, "x", 1, 1, 1));
    /* the listener goes while its request is held: the request is dropped, the client
     * rejected; nothing is delivered to the destroyed id */
    CHECK_EQ(rdma_destroy_id(x.lid), 0);
    struct sv_stats st;
    sv_stats(x.f, &st);
    CHECK_EQ(st.dropped_events, 1);
    CHECK_EQ(sv_cm_pending(x.f), 1);
    CHECK_EQ(sv_cm_deliver(x.f), 1);
    struct rdma_cm_event *rej;
    TRY(get_ev(x.cch, RDMA_CM_EVENT_REJECTED, &rej));
    rdma_ack_cm_event(rej);
    TRY(chan_empty(x.sch));
    /* an id destroyed with a delivered, not yet got event */
    struct rdma_cm_id *id;
    struct sockaddr_in d;
    sin_of(&d, sv_device_ipv4(0), 9);
    CHECK_EQ(rdma_create_id(x.sch, &id, NULL, RDMA_PS_TCP), 0);
    CHECK_EQ(rdma_resolve_addr(id, NULL, (struct sockaddr *)&d, 100), 0);
    CHECK_EQ(sv_cm_deliver(x.f), 1);
    CHECK(fd_readable(x.sch->fd));
    CHECK_EQ(rdma_destroy_id(id), 0);
    CHECK(!fd_readable(x.sch->fd));
    TRY(chan_empty(x.sch));
    sv_stats(x.f, &st);
    CHECK_EQ(st.dropped_events, 2);
    cm_free(&x);
    return 0;
}

static int t_cm_read_needs_responder_resources(void)
{
    /* the IB CM grants REMOTE_READ only to a side that accepted responder resources */
    struct cmx x;
    TRY(cm_setup(&x, 1));
    TRY(cm_listen(&x, 0, 4420));
    TRY(cm_client(&x, 0, 4420));
    TRY(cm_connect(&x, NULL, 0, 4, 0));      /* the client offers no responder resources */
    struct rdma_cm_event *req;
    TRY(cm_take_request(&x, &req));
    CHECK_EQ(req->param.conn.initiator_depth, 0);
    rdma_ack_cm_event(req);
    TRY(cm_accept(&x, NULL, 0, 0, 4));
    TRY(get_ev(x.cch, RDMA_CM_EVENT_ESTABLISHED, NULL));
    CHECK_EQ(post_send_wr(x.sid->qp, IBV_WR_RDMA_WRITE, 1, x.mem + 32768, 8, x.smr->lkey, IBV_SEND_SIGNALED,
                          (uintptr_t)x.mem, x.cmr->rkey), 0);
    CHECK_EQ(post_send_wr(x.sid->qp, IBV_WR_RDMA_READ, 2, x.mem + 32768, 8, x.smr->lkey, IBV_SEND_SIGNALED,
                          (uintptr_t)x.mem, x.cmr->rkey), 0);
    CHECK_EQ(sv_qp_execute(x.f, x.sid->qp->qp_num), 1);
    CHECK_EQ(sv_qp_execute(x.f, x.sid->qp->qp_num), 1);
    TRY(expect_wc(x.scq, 1, IBV_WC_SUCCESS, IBV_WC_RDMA_WRITE));
    TRY(expect_wc(x.scq, 2, IBV_WC_REM_ACCESS_ERR, IBV_WC_RDMA_READ));
    /* the other way round the client may read */
    CHECK_EQ(post_send_wr(x.cid->qp, IBV_WR_RDMA_READ, 3, x.mem, 8, x.cmr->lkey, IBV_SEND_SIGNALED,
                          (uintptr_t)x.mem + 32768, x.smr->rkey), 0);
    CHECK_EQ(sv_qp_execute(x.f, x.cid->qp->qp_num), 1);
    struct ibv_wc wc;
    CHECK_EQ(poll1(x.ccq, &wc), 1);
    CHECK_EQ(wc.wr_id, 3);
    /* the server QP is in error now: retries exhausted */
    CHECK_EQ(wc.status, IBV_WC_RETRY_EXC_ERR);
    cm_free(&x);
    return 0;
}

static int t_rdma_create_qp_defaults(void)
{
    struct cmx x;
    TRY(cm_setup(&x, 1));
    TRY(cm_listen(&x, 0, 4420));
    struct rdma_cm_id *id;
    struct sockaddr_in d;
    sin_of(&d, sv_device_ipv4(0), 4420);
    CHECK_EQ(rdma_create_id(x.cch, &id, NULL, RDMA_PS_TCP), 0);
    struct ibv_qp_init_attr a;
    memset(&a, 0, sizeof a);
    a.qp_type = IBV_QPT_RC;
    a.cap.max_send_wr = a.cap.max_recv_wr = 4;
    a.cap.max_send_sge = a.cap.max_recv_sge = 1;
    CHECK(rdma_create_qp(id, NULL, &a) < 0);    /* not bound to a device yet */
    CHECK_EQ(rdma_resolve_addr(id, NULL, (struct sockaddr *)&d, 100), 0);
    CHECK_EQ(rdma_create_qp(id, NULL, &a), 0);   /* default PD, CQs made for it */
    CHECK(id->qp && id->send_cq && id->recv_cq && id->pd);
    CHECK(rdma_create_qp(id, NULL, &a) < 0);    /* one QP per id */
    struct sv_stats st;
    sv_stats(x.f, &st);
    uint64_t live = st.live_objects;
    rdma_destroy_qp(id);
    CHECK(id->qp == NULL && id->send_cq == NULL);
    sv_stats(x.f, &st);
    CHECK_EQ(st.live_objects, live - 3);
    /* a QP destroyed behind the id's back is forgotten by it */
    struct ibv_pd *pd = ibv_alloc_pd(id->verbs);
    struct ibv_cq *cq = ibv_create_cq(id->verbs, 8, NULL, NULL, 0);
    CHECK(cm_qp(id, pd, cq));
    CHECK_EQ(ibv_destroy_qp(id->qp), 0);
    CHECK(id->qp == NULL);
    /* the extended forms with only a PD in the mask, as SPDK's verbs provider uses them */
    struct ibv_qp_init_attr_ex ax;
    memset(&ax, 0, sizeof ax);
    ax.send_cq = ax.recv_cq = cq;
    ax.qp_type = IBV_QPT_RC;
    ax.cap.max_send_wr = ax.cap.max_recv_wr = 4;
    ax.cap.max_send_sge = ax.cap.max_recv_sge = 1;
    ax.comp_mask = IBV_QP_INIT_ATTR_PD;
    ax.pd = pd;
    CHECK_EQ(rdma_create_qp_ex(id, &ax), 0);
    CHECK(id->qp && id->qp->pd == pd);
    struct ibv_qp *q2 = ibv_create_qp_ex(id->verbs, &ax);
    CHECK(q2);
    CHECK_EQ(ibv_destroy_qp(q2), 0);
    ax.comp_mask |= IBV_QP_INIT_ATTR_SEND_OPS_FLAGS;
    errno = 0;
    CHECK(ibv_create_qp_ex(id->verbs, &ax) == NULL && errno == EOPNOTSUPP);
    rdma_destroy_qp(id);
    CHECK_EQ(rdma_destroy_id(id), 0);
    cm_free(&x);
    return 0;
}

static int t_cm_migrate_id(void)
{
    struct cmx x;
    TRY(cm_setup(&x, 1));
    struct rdma_cm_id *id;
    struct sockaddr_in d;
    sin_of(&d, sv_device_ipv4(0), 4420);
    CHECK_EQ(rdma_create_id(x.cch, &id, NULL, RDMA_PS_TCP), 0);
    CHECK_EQ(rdma_resolve_addr(id, NULL, (struct sockaddr *)&d, 100), 0);
    CHECK(fd_readable(x.cch->fd));
    CHECK_EQ(rdma_migrate_id(id, x.sch), 0);     /* its queued event moves with it */
    CHECK(!fd_readable(x.cch->fd));
    CHECK(id->channel == x.sch);
    struct rdma_cm_event *e;
    TRY(get_ev(x.sch, RDMA_CM_EVENT_ADDR_RESOLVED, &e));
    CHECK(e->id == id);
    rdma_ack_cm_event(e);
    rdma_destroy_event_channel(x.cch);          /* no ids left on it: it goes */
    struct sv_stats st;
    sv_stats(x.f, &st);
    CHECK_EQ(st.live_objects, 2);               /* the server channel and the id */
    cm_free(&x);
    return 0;
}

static int t_autoprogress_comp_channel(void)
{
    /* an unmodified program that sleeps on a completion channel instead of polling */
    sv_fabric_set_current(NULL);
    int n = 0;
    struct ibv_device **l = ibv_get_device_list(&n);
    struct ibv_context *c = ibv_open_device(l[0]);
    ibv_free_device_list(l);
    struct ibv_pd *pd = ibv_alloc_pd(c);
    struct ibv_comp_channel *ch = ibv_create_comp_channel(c);
    struct ibv_cq *cq = ibv_create_cq(c, 8, NULL, ch, 0);
    struct ibv_qp *a = mkqp(pd, cq, NULL, 4, 1, 1), *b = mkqp(pd, cq, NULL, 4, 1, 1);
    CHECK(a && b);
    TRY(connect_qp(a, b->qp_num));
    TRY(connect_qp(b, a->qp_num));
    static uint8_t mem[256];
    struct ibv_mr *mr = ibv_reg_mr(pd, mem, sizeof mem, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
    CHECK_EQ(ibv_req_notify_cq(cq, 0), 0);
    CHECK_EQ(post_send_wr(a, IBV_WR_RDMA_WRITE, 1, mem, 8, mr->lkey, 0, (uintptr_t)mem + 64, mr->rkey), 0);
    CHECK(fd_readable(ch->fd));
    struct ibv_cq *got;
    void *gctx;
    CHECK_EQ(ibv_get_cq_event(ch, &got, &gctx), 0);
    ibv_ack_cq_events(got, 1);
    TRY(expect_wc(cq, 1, IBV_WC_SUCCESS, IBV_WC_RDMA_WRITE));
    sv_fabric_destroy(sv_fabric_current());
    return 0;
}

/* ---- faults: port, device ------------------------------------------------------------------- */

static int t_port_down(void)
{
    struct cmx x;
    TRY(cm_established(&x, 1));
    struct ibv_context *v = x.sid->verbs;
    CHECK(!fd_readable(v->async_fd));
    CHECK_EQ(sv_port_down(x.f, 0), 0);
    CHECK(fd_readable(v->async_fd));
    TRY(expect_async(v, IBV_EVENT_PORT_ERR));
    /* both QPs live on device 0: each gets its QP_FATAL, in qp_num order */
    struct ibv_async_event ev;
    CHECK_EQ(ibv_get_async_event(v, &ev), 0);
    CHECK_EQ(ev.event_type, IBV_EVENT_QP_FATAL);
    CHECK(ev.element.qp == x.cid->qp);
    CHECK_EQ(ibv_get_async_event(v, &ev), 0);
    CHECK(ev.element.qp == x.sid->qp);
    CHECK(!fd_readable(v->async_fd));
    CHECK_EQ(qp_state(x.sid->qp), IBV_QPS_ERR);
    TRY(expect_wc(x.scq, 600, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV));
    struct ibv_port_attr pa;
    CHECK_EQ(ibv_query_port(v, 1, &pa), 0);
    CHECK_EQ(pa.state, IBV_PORT_DOWN);
    /* a new connection to the down port is unreachable */
    struct rdma_cm_id *c2 = x.cid;
    TRY(cm_client(&x, 0, 4420));
    CHECK(x.cid != c2);
    TRY(cm_connect(&x, NULL, 0, 1, 1));
    TRY(get_ev(x.cch, RDMA_CM_EVENT_UNREACHABLE, NULL));
    TRY(chan_empty(x.sch));
    CHECK_EQ(sv_port_up(x.f, 0), 0);
    TRY(expect_async(v, IBV_EVENT_PORT_ACTIVE));
    CHECK_EQ(ibv_query_port(v, 1, &pa), 0);
    CHECK_EQ(pa.state, IBV_PORT_ACTIVE);
    cm_free(&x);
    return 0;
}

static int t_device_removal(void)
{
    struct cmx x;
    TRY(cm_setup(&x, 2));
    /* a connection on device 1, a listener on device 0 */
    struct rdma_cm_id *l0;
    struct sockaddr_in s;
    sin_of(&s, sv_device_ipv4(0), 4420);
    CHECK_EQ(rdma_create_id(x.sch, &l0, NULL, RDMA_PS_TCP), 0);
    CHECK_EQ(rdma_bind_addr(l0, (struct sockaddr *)&s), 0);
    CHECK_EQ(rdma_listen(l0, 1), 0);
    TRY(cm_listen(&x, 1, 4420));
    TRY(cm_client(&x, 1, 4420));
    TRY(cm_connect(&x, NULL, 0, 1, 1));
    struct rdma_cm_event *req;
    TRY(cm_take_request(&x, &req));
    rdma_ack_cm_event(req);
    TRY(cm_accept(&x, NULL, 0, 1, 1));
    TRY(get_ev(x.cch, RDMA_CM_EVENT_ESTABLISHED, NULL));
    TRY(get_ev(x.sch, RDMA_CM_EVENT_ESTABLISHED, NULL));
    int n;
    struct ibv_device **l = ibv_get_device_list(&n);
    struct ibv_context *own = ibv_open_device(l[1]);
    CHECK(own);
    CHECK_EQ(sv_device_remove(x.f, 1), 0);
    TRY(expect_async(own, IBV_EVENT_DEVICE_FATAL));
    TRY(expect_async(x.sid->verbs, IBV_EVENT_DEVICE_FATAL));
    /* every id on device 1 hears DEVICE_REMOVAL: the listener and the server child on the
     * server channel, the client on its own; device 0's listener does not */
    TRY(get_ev(x.sch, RDMA_CM_EVENT_DEVICE_REMOVAL, &req));
    CHECK(req->id == x.lid);
    rdma_ack_cm_event(req);
    TRY(get_ev(x.sch, RDMA_CM_EVENT_DEVICE_REMOVAL, &req));
    CHECK(req->id == x.sid);
    rdma_ack_cm_event(req);
    TRY(chan_empty(x.sch));
    TRY(get_ev(x.cch, RDMA_CM_EVENT_DEVICE_REMOVAL, NULL));
    CHECK_EQ(qp_state(x.sid->qp), IBV_QPS_ERR);
    CHECK_EQ(qp_state(x.cid->qp), IBV_QPS_ERR);
    /* still listed, but dead */
    struct ibv_device **l2 = ibv_get_device_list(&n);
    CHECK_EQ(n, 2);
    errno = 0;
    CHECK(ibv_open_device(l2[1]) == NULL);
    CHECK_EQ(errno, ENODEV);
    CHECK(ibv_alloc_pd(own) == NULL);
    ibv_free_device_list(l);
    ibv_free_device_list(l2);
    struct rdma_cm_id *b;
    CHECK_EQ(rdma_create_id(x.sch, &b, NULL, RDMA_PS_TCP), 0);
    sin_of(&s, sv_device_ipv4(1), 4421);
    CHECK(rdma_bind_addr(b, (struct sockaddr *)&s) < 0);
    CHECK_EQ(sv_port_up(x.f, 1), -ENODEV);
    cm_free(&x);
    return 0;
}

/* ---- the host ------------------------------------------------------------------------------------- */

struct tgt {
    struct sv_fabric *f;
    struct rdma_event_channel *ch;
    struct rdma_cm_id *lid, *id;
    struct ibv_pd *pd;
    struct ibv_cq *cq;
    uint8_t *mem;
    struct ibv_mr *mr;
};

static int tgt_listen(struct tgt *t)
{
    memset(t, 0, sizeof *t);
    t->f = sv_fabric_create();
    CHECK_EQ(sv_device_add(t->f, NULL), 0);
    t->ch = rdma_create_event_channel();
    CHECK(t->ch);
    CHECK_EQ(rdma_create_id(t->ch, &t->lid, NULL, RDMA_PS_TCP), 0);
    struct sockaddr_in s;
    sin_of(&s, htonl(INADDR_ANY), 4420);
    CHECK_EQ(rdma_bind_addr(t->lid, (struct sockaddr *)&s), 0);
    CHECK_EQ(rdma_listen(t->lid, 16), 0);
    t->mem = calloc(1, 65536);
    return 0;
}

static void host_params(struct sv_host_connect_params *p, const void *pd, uint8_t len)
{
    memset(p, 0, sizeof *p);
    p->dst_ipv4 = sv_device_ipv4(0);
    p->dst_port = 4420;
    p->private_data = pd;
    p->private_data_len = len;
    p->initiator_depth = 0;
    p->responder_resources = 16;
    p->send_depth = 4;
    p->recv_depth = 4;
    p->recv_size = 128;
}

/* the target takes a connect request and builds QP + MR + receives */
static int tgt_take(struct tgt *t, struct rdma_cm_event **req)
{
    TRY(get_ev(t->ch, RDMA_CM_EVENT_CONNECT_REQUEST, req));
    t->id = (*req)->id;
    CHECK(t->id->verbs);
    if (!t->pd) {
        t->pd = ibv_alloc_pd(t->id->verbs);
        t->cq = ibv_create_cq(t->id->verbs, 128, NULL, NULL, 0);
        t->mr = ibv_reg_mr(t->pd, t->mem, 65536, IBV_ACCESS_LOCAL_WRITE);
        CHECK(t->pd && t->cq && t->mr);
    }
    CHECK(cm_qp(t->id, t->pd, t->cq));
    for (int i = 0; i < 4; i++)
        CHECK_EQ(post_recv_wr(t->id->qp, 1000 + i, t->mem + 1024 * i, 1024, t->mr->lkey), 0);
    return 0;
}

/* a host connection with host_params' defaults, accepted with the request's depths */
static int tgt_host_established(struct tgt *t, int *conn, struct sv_host_conn_info *hi)
{
    struct sv_host_connect_params p;
    host_params(&p, NULL, 0);
    *conn = sv_host_connect(t->f, &p);
    struct rdma_cm_event *req;
    TRY(tgt_take(t, &req));
    rdma_ack_cm_event(req);
    CHECK_EQ(rdma_accept(t->id, NULL), 0);     /* no conn_param: the request's depths */
    sv_host_conn_info(t->f, *conn, hi);
    CHECK_EQ(hi->state, SV_HOST_ESTABLISHED);
    return 0;
}

static int t_host_end_to_end(void)
{
    struct tgt t;
    TRY(tgt_listen(&t));
    struct sv_host_connect_params p;
    static const uint8_t nvmf_pd[32] = {0, 0, 1, 0, 0x7f, 0, 0x20, 0};
    host_params(&p, nvmf_pd, sizeof nvmf_pd);
    int c = sv_host_connect(t.f, &p);
    CHECK(c >= 0);
    struct sv_host_conn_info hi;
    CHECK_EQ(sv_host_conn_info(t.f, c, &hi), 0);
    CHECK_EQ(hi.state, SV_HOST_CONNECTING);
    CHECK_EQ(hi.recvs_posted, 4);
    CHECK_EQ(sv_host_send(t.f, c, "x", 1, 1), -ENOTCONN);
    struct rdma_cm_event *req;
    TRY(tgt_take(&t, &req));
    CHECK(memcmp(req->param.conn.private_data, nvmf_pd, sizeof nvmf_pd) == 0);
    CHECK_EQ(req->param.conn.initiator_depth, 16);     /* host's responder resources */
    CHECK_EQ(req->param.conn.responder_resources, 0);
    CHECK_EQ(req->param.conn.qp_num, hi.qp_num);
    rdma_ack_cm_event(req);
    struct rdma_conn_param ap;
    memset(&ap, 0, sizeof ap);
    uint8_t rep[8] = {1, 0, 0x7f, 0};
    ap.private_data = rep;
    ap.private_data_len = sizeof rep;
    ap.initiator_depth = 16;
    CHECK_EQ(rdma_accept(t.id, &ap), 0);
    TRY(get_ev(t.ch, RDMA_CM_EVENT_ESTABLISHED, NULL));
    CHECK_EQ(sv_host_conn_info(t.f, c, &hi), 0);
    CHECK_EQ(hi.state, SV_HOST_ESTABLISHED);
    CHECK_EQ(hi.peer_qp_num, t.id->qp->qp_num);
    CHECK_EQ(hi.private_data_len, sizeof rep);
    CHECK(memcmp(hi.private_data, rep, sizeof rep) == 0);
    CHECK_EQ(hi.initiator_depth, 0);
    CHECK_EQ(hi.responder_resources, 16);
    struct sv_qp_info qi;
    CHECK_EQ(sv_qp_info(t.f, hi.qp_num, &qi), 0);
    CHECK(qi.is_host && qi.device == -1 && qi.peer_qp_num == t.id->qp->qp_num);

    /* host memory */
    int64_t rk = sv_host_mr_reg(t.f, 8192, IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE);
    int64_t rk2 = sv_host_mr_reg(t.f, 4096, IBV_ACCESS_REMOTE_READ);
    CHECK(rk > 0 && rk2 > 0 && rk != rk2);
    CHECK_EQ(sv_host_mr_iova(t.f, (uint32_t)rk), 0x100000000ull);
    CHECK_EQ(sv_host_mr_iova(t.f, (uint32_t)rk2), 0x200000000ull);
    uint8_t pat[4096];
    for (int i = 0; i < 4096; i++)
        pat[i] = (uint8_t)(i ^ 0x5A);
    CHECK_EQ(sv_host_mr_write(t.f, (uint32_t)rk, 0, pat, sizeof pat), 0);
    CHECK(sv_host_mr_write(t.f, (uint32_t)rk, 8000, pat, 500) < 0);

    /* a capsule: host SEND -> target receive */
    uint8_t cap[64];
    for (int i = 0; i < 64; i++)
        cap[i] = (uint8_t)i;
    CHECK_EQ(sv_host_send(t.f, c, cap, sizeof cap, 77), 0);
    CHECK_EQ(sv_host_conn_info(t.f, c, &hi), 0);
    CHECK_EQ(hi.sends_pending, 1);
    CHECK_EQ(sv_qp_execute(t.f, hi.qp_num), 1);
    struct ibv_wc wc;
    CHECK_EQ(poll1(t.cq, &wc), 1);
    CHECK_EQ(wc.wr_id, 1000);
    CHECK_EQ(wc.byte_len, 64);
    CHECK_EQ(wc.src_qp, hi.qp_num);
    CHECK(memcmp(t.mem, cap, 64) == 0);
    /* target RDMA READs host memory, WRITEs it back elsewhere, then SENDs a response */
    CHECK_EQ(post_send_wr(t.id->qp, IBV_WR_RDMA_READ, 1, t.mem + 8192, 4096, t.mr->lkey, IBV_SEND_SIGNALED,
                          0x100000000ull, (uint32_t)rk), 0);
    CHECK_EQ(post_send_wr(t.id->qp, IBV_WR_RDMA_WRITE, 2, t.mem + 8192, 4096, t.mr->lkey, 0,
                          0x100000000ull + 4096, (uint32_t)rk), 0);
    memcpy(t.mem + 16384, "CQE-response-16b", 16);
    CHECK_EQ(post_send_wr(t.id->qp, IBV_WR_SEND, 3, t.mem + 16384, 16, t.mr->lkey, IBV_SEND_SIGNALED, 0, 0), 0);
    /* writing a read-only host region is a remote access error */
    CHECK_EQ(post_send_wr(t.id->qp, IBV_WR_RDMA_WRITE, 4, t.mem, 8, t.mr->lkey, IBV_SEND_SIGNALED,
                          0x200000000ull, (uint32_t)rk2), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(sv_qp_execute(t.f, t.id->qp->qp_num), 1);
    TRY(expect_wc(t.cq, 1, IBV_WC_SUCCESS, IBV_WC_RDMA_READ));
    TRY(expect_wc(t.cq, 3, IBV_WC_SUCCESS, IBV_WC_SEND));
    CHECK(memcmp(t.mem + 8192, pat, 4096) == 0);
    uint8_t back[4096];
    CHECK_EQ(sv_host_mr_read(t.f, (uint32_t)rk, 4096, back, sizeof back), 0);
    CHECK(memcmp(back, pat, 4096) == 0);
    struct sv_host_completion hc[8];
    CHECK_EQ(sv_host_poll(t.f, c, hc, 8), 2);
    CHECK_EQ(hc[0].opcode, IBV_WC_SEND);
    CHECK_EQ(hc[0].wr_id, 77);
    CHECK_EQ(hc[0].status, IBV_WC_SUCCESS);
    CHECK_EQ(hc[1].opcode, IBV_WC_RECV);
    CHECK_EQ(hc[1].byte_len, 16);
    CHECK(memcmp(hc[1].data, "CQE-response-16b", 16) == 0);
    CHECK_EQ(sv_host_conn_info(t.f, c, &hi), 0);
    CHECK_EQ(hi.recvs_posted, 4);       /* the reaped receive went back */
    CHECK_EQ(sv_qp_execute(t.f, t.id->qp->qp_num), 1);
    TRY(expect_wc(t.cq, 4, IBV_WC_REM_ACCESS_ERR, IBV_WC_RDMA_WRITE));
    /* the host's send queue holds send_depth capsules, reaped or not */
    TRY(expect_wc(t.cq, 1001, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV));
    rdma_disconnect(t.id);
    TRY(get_ev(t.ch, RDMA_CM_EVENT_DISCONNECTED, NULL));
    CHECK_EQ(sv_host_conn_info(t.f, c, &hi), 0);
    CHECK_EQ(hi.state, SV_HOST_DISCONNECTED);
    CHECK_EQ(sv_host_conn_destroy(t.f, c), 0);
    CHECK(sv_host_conn_info(t.f, c, &hi) < 0);
    CHECK_EQ(sv_host_mr_dereg(t.f, (uint32_t)rk), 0);
    CHECK_EQ(sv_host_mr_iova(t.f, (uint32_t)rk), 0);
    sv_fabric_destroy(t.f);
    free(t.mem);
    return 0;
}

/* Unsignaled host SENDs (an initiator's choice): no completion of their own, their slots
 * held until a later signaled SEND's completion is reaped, or a flush; and
 * sv_qp_execute_all runs exactly the executions an sv_qp_execute loop would. */
static int t_host_unsignaled(void)
{
    struct tgt t;
    TRY(tgt_listen(&t));
    int c;
    struct sv_host_conn_info hi;
    TRY(tgt_host_established(&t, &c, &hi));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(sv_host_send_signaled(t.f, c, "capsule", 8, 10 + i, 0), 0);
    CHECK_EQ(sv_host_send_signaled(t.f, c, "capsule", 8, 13, 1), 0);
    CHECK_EQ(sv_host_send_signaled(t.f, c, "capsule", 8, 14, 0), -EAGAIN);
    CHECK_EQ(sv_qp_execute_all(t.f, hi.qp_num, -1), -EINVAL);
    CHECK(sv_qp_execute_all(t.f, 12345, 1) < 0);
    CHECK_EQ(sv_qp_execute_all(t.f, hi.qp_num, 2), 2);
    struct sv_qp_info qi;
    CHECK_EQ(sv_qp_info(t.f, hi.qp_num, &qi), 0);
    CHECK_EQ(qi.sq_pending, 2);
    CHECK_EQ(qi.sq_outstanding, 4);   /* executed unsignaled WRs keep their slots */
    struct sv_host_completion hc[4];
    CHECK_EQ(sv_host_poll(t.f, c, hc, 4), 0);
    CHECK_EQ(sv_qp_execute_all(t.f, hi.qp_num, 100), 2);
    CHECK_EQ(sv_qp_execute_all(t.f, hi.qp_num, 100), 0);
    CHECK_EQ(sv_qp_info(t.f, hi.qp_num, &qi), 0);
    CHECK_EQ(qi.sq_outstanding, 0);   /* the signaled completion released them all */
    for (int i = 0; i < 4; i++)
        TRY(expect_wc(t.cq, 1000 + (uint64_t)i, IBV_WC_SUCCESS, IBV_WC_RECV));
    /* one completion, the signaled SEND's, with the wr_id it was posted with */
    CHECK_EQ(sv_host_send_signaled(t.f, c, "capsule", 8, 14, 0), -EAGAIN);  /* not reaped */
    CHECK_EQ(sv_host_poll(t.f, c, hc, 4), 1);
    CHECK_EQ(hc[0].opcode, IBV_WC_SEND);
    CHECK_EQ(hc[0].status, IBV_WC_SUCCESS);
    CHECK_EQ(hc[0].wr_id, 13);
    /* reaping it freed all four slots */
    for (int i = 0; i < 4; i++)
        CHECK_EQ(sv_host_send_signaled(t.f, c, "capsule", 8, 20 + i, 0), 0);
    CHECK_EQ(sv_host_send_signaled(t.f, c, "capsule", 8, 24, 1), -EAGAIN);
    /* no receive at the target: RNR, nothing executes */
    CHECK_EQ(sv_qp_execute_all(t.f, hi.qp_num, 100), 0);
    /* a flush completes every pending SEND, signaled or not, in order */
    CHECK_EQ(sv_host_disconnect(t.f, c), 0);
    struct sv_host_completion all[16];
    int n = sv_host_poll(t.f, c, all, 16);
    CHECK_EQ(n, 8);                   /* sends 20..23, then the host's 4 receives */
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(all[i].opcode, IBV_WC_SEND);
        CHECK_EQ(all[i].status, IBV_WC_WR_FLUSH_ERR);
        CHECK_EQ(all[i].wr_id, 20 + (uint64_t)i);
    }
    for (int i = 4; i < 8; i++)
        CHECK_EQ(all[i].opcode, IBV_WC_RECV);
    CHECK_EQ(sv_host_conn_destroy(t.f, c), 0);
    sv_fabric_destroy(t.f);
    free(t.mem);
    return 0;
}

static int t_host_flow(void)
{
    struct tgt t;
    TRY(tgt_listen(&t));
    int c;
    struct sv_host_conn_info hi;
    TRY(tgt_host_established(&t, &c, &hi));
    CHECK_EQ(hi.responder_resources, 16);
    CHECK_EQ(hi.initiator_depth, 0);
    /* send_depth 4: the fifth waits for a reap */
    for (int i = 0; i < 4; i++)
        CHECK_EQ(sv_host_send(t.f, c, "capsule", 8, 10 + i), 0);
    CHECK_EQ(sv_host_send(t.f, c, "capsule", 8, 14), -EAGAIN);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(sv_qp_execute(t.f, hi.qp_num), 1);
    CHECK_EQ(sv_host_send(t.f, c, "capsule", 8, 14), -EAGAIN);
    struct sv_host_completion hc[2];
    CHECK_EQ(sv_host_poll(t.f, c, hc, 1), 1);
    CHECK_EQ(hc[0].wr_id, 10);
    CHECK_EQ(sv_host_send(t.f, c, "big capsule", 12, 14), 0);
    /* the target's receives ran out: the host waits (RNR), then goes once one is posted */
    CHECK_EQ(sv_qp_execute(t.f, hi.qp_num), 0);
    CHECK_EQ(post_recv_wr(t.id->qp, 2000, t.mem + 20000, 1024, t.mr->lkey), 0);
    CHECK_EQ(sv_qp_execute(t.f, hi.qp_num), 1);
    /* an injected fault on the host QP */
    CHECK_EQ(sv_qp_fail_posts(t.f, hi.qp_num, 1), 0);
    CHECK_EQ(sv_host_poll(t.f, c, hc, 2), 2);
    CHECK_EQ(sv_host_send(t.f, c, "x", 1, 15), -ENOMEM);
    /* host disconnect: target hears it, its QP flushed */
    CHECK_EQ(sv_host_disconnect(t.f, c), 0);
    TRY(get_ev(t.ch, RDMA_CM_EVENT_ESTABLISHED, NULL));
    TRY(get_ev(t.ch, RDMA_CM_EVENT_DISCONNECTED, NULL));
    CHECK_EQ(qp_state(t.id->qp), IBV_QPS_ERR);
    sv_host_conn_info(t.f, c, &hi);
    CHECK_EQ(hi.state, SV_HOST_DISCONNECTED);
    struct sv_host_completion all[16];
    int n = sv_host_poll(t.f, c, all, 16);
    CHECK_EQ(n, 6);                 /* sends 13 and 14, then the 4 receives flushed */
    CHECK_EQ(all[0].wr_id, 13);
    CHECK_EQ(all[1].wr_id, 14);
    for (int i = 2; i < 6; i++) {
        CHECK_EQ(all[i].opcode, IBV_WC_RECV);
        CHECK_EQ(all[i].status, IBV_WC_WR_FLUSH_ERR);
    }
    CHECK_EQ(sv_host_poll(t.f, c, all, 16), 0);      /* flushed receives are not re-posted */

    /* rejection, with private data; no listener; the port down */
    struct sv_host_connect_params p;
    host_params(&p, NULL, 0);
    int c2 = sv_host_connect(t.f, &p);
    CHECK_EQ(sv_host_conn_destroy(t.f, c2), -EBUSY);
    struct rdma_cm_event *req;
    TRY(get_ev(t.ch, RDMA_CM_EVENT_CONNECT_REQUEST, &req));
    struct rdma_cm_id *child = req->id;
    rdma_ack_cm_event(req);
    CHECK_EQ(rdma_reject(child, "no", 3), 0);
    rdma_destroy_id(child);
    sv_host_conn_info(t.f, c2, &hi);
    CHECK_EQ(hi.state, SV_HOST_REJECTED);
    CHECK_EQ(hi.reject_reason, 28);
    CHECK_EQ(hi.private_data_len, 3);
    CHECK(memcmp(hi.private_data, "no", 3) == 0);
    CHECK_EQ(sv_host_conn_destroy(t.f, c2), 0);
    p.dst_port = 4499;
    int c3 = sv_host_connect(t.f, &p);
    sv_host_conn_info(t.f, c3, &hi);
    CHECK_EQ(hi.state, SV_HOST_REJECTED);
    CHECK_EQ(hi.reject_reason, 8);
    p.dst_port = 4420;
    CHECK_EQ(sv_port_down(t.f, 0), 0);
    int c4 = sv_host_connect(t.f, &p);
    sv_host_conn_info(t.f, c4, &hi);
    CHECK_EQ(hi.state, SV_HOST_REJECTED);
    CHECK_EQ(hi.reject_reason, ETIMEDOUT);
    TRY(chan_empty(t.ch));
    sv_fabric_destroy(t.f);
    free(t.mem);
    return 0;
}

/* ---- determinism, autoprogress, teardown ------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t digest_wc(uint64_t h, const struct ibv_wc *wc)
{
    uint32_t v[7] = {(uint32_t)wc->wr_id, wc->status, wc->opcode, wc->byte_len, wc->qp_num, wc->src_qp,
                     wc->wc_flags};
    return fnv(h, v, sizeof v);
}

/* A scripted scenario: three hosts, target QPs on one SRQ-less CQ, interleaved execution,
 * RNR, a reject, a fault, a disconnect.  Every completion and event goes into the digest. */
static int scenario(uint64_t *out)
{
    uint64_t h = 0xcbf29ce484222325ull;
    struct tgt t;
    TRY(tgt_listen(&t));
    struct sv_host_connect_params p;
    int c[3];
    struct rdma_cm_id *ids[3];
    for (int i = 0; i < 3; i++) {
        uint8_t pd[8] = {(uint8_t)i};
        host_params(&p, pd, sizeof pd);
        c[i] = sv_host_connect(t.f, &p);
        struct rdma_cm_event *req;
        TRY(tgt_take(&t, &req));
        ids[i] = t.id;
        h = fnv(h, req->param.conn.private_data, 8);
        rdma_ack_cm_event(req);
        if (i == 1) {
            CHECK_EQ(rdma_reject(ids[i], "r", 2), 0);
        } else {
            CHECK_EQ(rdma_accept(ids[i], NULL), 0);
            TRY(get_ev(t.ch, RDMA_CM_EVENT_ESTABLISHED, NULL));
        }
    }
    int64_t rk = sv_host_mr_reg(t.f, 65536, IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE);
    h = fnv(h, &rk, sizeof rk);
    struct sv_host_conn_info hi[3];
    for (int i = 0; i < 3; i++)
        sv_host_conn_info(t.f, c[i], &hi[i]);
    uint32_t sched[64];
    size_t ns = 0;
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 3; i += 2) {
            uint8_t cap[64];
            memset(cap, round * 16 + i, sizeof cap);
            int rc = sv_host_send(t.f, c[i], cap, sizeof cap, (uint64_t)(round * 10 + i));
            h = fnv(h, &rc, sizeof rc);
            CHECK_EQ(post_send_wr(ids[i]->qp, round % 2 ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_READ, round,
                                  t.mem + 32768 + 512 * round, 512, t.mr->lkey, IBV_SEND_SIGNALED,
                                  0x100000000ull + 512 * (uint64_t)(round + i), (uint32_t)rk), 0);
            sched[ns++] = SV_EV_EXECUTE << 24 | (uint32_t)sv_qp_index(t.f, hi[i].qp_num);
            sched[ns++] = SV_EV_EXECUTE << 24 | (uint32_t)sv_qp_index(t.f, ids[i]->qp->qp_num);
        }
        if (round == 3)
            sv_qp_remote_access_error(t.f, ids[2]->qp->qp_num, 1);
        int64_t moved = sv_run(t.f, sched, ns);
        h = fnv(h, &moved, sizeof moved);
        ns = 0;
        struct ibv_wc wc[16];
        int n;
        while ((n = ibv_poll_cq(t.cq, 16, wc)) > 0)
            for (int k = 0; k < n; k++) {
                h = digest_wc(h, &wc[k]);
                /* a consumed receive goes back on the QP it came from */
                if (wc[k].opcode == IBV_WC_RECV && wc[k].status == IBV_WC_SUCCESS)
                    post_recv_wr(ids[wc[k].qp_num == ids[0]->qp->qp_num ? 0 : 2]->qp, wc[k].wr_id,
                                 t.mem + 1024 * (wc[k].wr_id % 16), 1024, t.mr->lkey);
            }
        for (int i = 0; i < 3; i++) {
            struct sv_host_completion hc[8];
            int m = sv_host_poll(t.f, c[i], hc, 8);
            for (int k = 0; k < m; k++)
                h = fnv(h, &hc[k], sizeof hc[k]);
        }
    }
    sv_host_disconnect(t.f, c[0]);
    struct rdma_cm_event *e;
    while (rdma_get_cm_event(t.ch, &e) == 0) {
        uint32_t v[2] = {e->event, (uint32_t)e->status};
        h = fnv(h, v, sizeof v);
        rdma_ack_cm_event(e);
    }
    uint8_t hostmem[65536];
    sv_host_mr_read(t.f, (uint32_t)rk, 0, hostmem, sizeof hostmem);
    h = fnv(h, hostmem, sizeof hostmem);
    h = fnv(h, t.mem, 65536);
    struct sv_stats st;
    sv_stats(t.f, &st);
    h = fnv(h, &st, sizeof st);
    uint32_t qps[16];
    int nq = sv_qps(t.f, qps, 16);
    h = fnv(h, qps, sizeof(uint32_t) * (size_t)nq);
    sv_fabric_destroy(t.f);
    free(t.mem);
    *out = h;
    return 0;
}

static int t_determinism(void)
{
    uint64_t a = 0, b = 0;
    TRY(scenario(&a));
    /* some unrelated allocation churn between the runs: pointers must not matter */
    void *junk[64];
    for (int i = 0; i < 64; i++)
        junk[i] = malloc((size_t)(i * 37 + 1));
    TRY(scenario(&b));
    for (int i = 0; i < 64; i++)
        free(junk[i]);
    if (a != b) {
        fprintf(stderr, "digests differ: %016llx %016llx\n", (unsigned long long)a, (unsigned long long)b);
        return 1;
    }
    printf("digest %016llx\n", (unsigned long long)a);
    return 0;
}

static int t_autoprogress_default(void)
{
    sv_fabric_set_current(NULL);
    int n = 0;
    struct ibv_device **l = ibv_get_device_list(&n);
    struct sv_fabric *f = sv_fabric_current();
    CHECK(f && n == 1 && l);
    struct ibv_context *c = ibv_open_device(l[0]);
    ibv_free_device_list(l);
    struct ibv_pd *pd = ibv_alloc_pd(c);
    struct ibv_cq *cq = ibv_create_cq(c, 8, NULL, NULL, 0);
    struct ibv_qp *a = mkqp(pd, cq, NULL, 4, 1, 1), *b = mkqp(pd, cq, NULL, 4, 1, 1);
    CHECK(a && b);
    TRY(connect_qp(a, b->qp_num));
    TRY(connect_qp(b, a->qp_num));
    static uint8_t mem[256];
    struct ibv_mr *mr = ibv_reg_mr(pd, mem, sizeof mem, IBV_ACCESS_LOCAL_WRITE);
    CHECK_EQ(post_send_wr(a, IBV_WR_SEND, 1, mem, 8, mr->lkey, 0, 0, 0), 0);
    CHECK_EQ(post_send_wr(b, IBV_WR_SEND, 2, mem, 8, mr->lkey, 0, 0, 0), 0);
    CHECK_EQ(post_recv_wr(a, 3, mem + 64, 64, mr->lkey), 0);
    /* a's SEND waits for a receive at b; b's goes; the poll runs both until nothing moves */
    struct ibv_wc wc[4];
    CHECK_EQ(ibv_poll_cq(cq, 4, wc), 2);
    CHECK_EQ(wc[0].wr_id, 3);
    CHECK_EQ(wc[1].wr_id, 2);
    CHECK_EQ(post_recv_wr(b, 4, mem + 128, 64, mr->lkey), 0);
    CHECK_EQ(ibv_poll_cq(cq, 4, wc), 2);
    CHECK_EQ(wc[0].wr_id, 4);       /* the receive completes before the SEND it answers */
    CHECK_EQ(wc[1].wr_id, 1);
    sv_fabric_destroy(f);
    CHECK(sv_fabric_current() == NULL);
    return 0;
}

static int t_fabric_destroy_frees(void)
{
    /* objects of every kind left behind: destroy frees them (ASan/LSan check the rest) */
    struct cmx x;
    TRY(cm_established(&x, 2));
    struct sv_host_connect_params p;
    struct rdma_cm_event *req;
    host_params(&p, "h", 1);
    CHECK(sv_host_connect(x.f, &p) >= 0);
    TRY(get_ev(x.sch, RDMA_CM_EVENT_CONNECT_REQUEST, &req));   /* got, never acked */
    CHECK(sv_host_mr_reg(x.f, 4096, IBV_ACCESS_REMOTE_READ) > 0);
    struct ibv_srq_init_attr sa = {.attr = {.max_wr = 4, .max_sge = 1}};
    CHECK(ibv_create_srq(x.spd, &sa));
    CHECK(ibv_create_comp_channel(x.sid->verbs));
    sv_cm_hold(x.f, 1);
    CHECK_EQ(rdma_disconnect(x.cid), 0);
    CHECK(sv_cm_pending(x.f) > 0);
    struct sv_stats st;
    sv_stats(x.f, &st);
    CHECK(st.live_objects > 10);
    rdma_destroy_event_channel(x.sch);     /* refused: ids on it */
    cm_free(&x);
    return 0;
}

/* ---- the table --------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*fn)(void);
} tests[] = {
    {"device_query", t_device_query},
    {"mr_keys_access", t_mr_keys_access},
    {"sq_in_order", t_sq_in_order},
    {"signaled_unsignaled", t_signaled_unsignaled},
    {"rdma_read_write_bytes", t_rdma_read_write_bytes},
    {"remote_access_errors", t_remote_access_errors},
    {"local_prot_err", t_local_prot_err},
    {"recv_too_small", t_recv_too_small},
    {"flush_on_error", t_flush_on_error},
    {"post_to_error_qp", t_post_to_error_qp},
    {"rnr_wait_then_success", t_rnr_wait_then_success},
    {"injected_rnr", t_injected_rnr},
    {"injected_enomem", t_injected_enomem},
    {"injected_remote_access", t_injected_remote_access},
    {"post_bounds", t_post_bounds},
    {"send_imm_inv_inline", t_send_imm_inv_inline},
    {"srq_shared", t_srq_shared},
    {"cq_overrun", t_cq_overrun},
    {"async_fd_and_channels", t_async_fd_and_channels},
    {"destroyed_qp_events_dropped", t_destroyed_qp_events_dropped},
    {"sv_run_events", t_sv_run_events},
    {"cm_connect_accept", t_cm_connect_accept},
    {"cm_reject", t_cm_reject},
    {"cm_no_listener", t_cm_no_listener},
    {"cm_disconnect_server", t_cm_disconnect_server},
    {"cm_disconnect_client", t_cm_disconnect_client},
    {"cm_hold_deliver", t_cm_hold_deliver},
    {"cm_destroyed_id_events_dropped", t_cm_destroyed_id_events_dropped},
    {"cm_read_needs_responder_resources", t_cm_read_needs_responder_resources},
    {"rdma_create_qp_defaults", t_rdma_create_qp_defaults},
    {"cm_migrate_id", t_cm_migrate_id},
    {"autoprogress_comp_channel", t_autoprogress_comp_channel},
    {"port_down", t_port_down},
    {"device_removal", t_device_removal},
    {"host_end_to_end", t_host_end_to_end},
    {"host_flow", t_host_flow},
    {"host_unsignaled", t_host_unsignaled},
    {"determinism", t_determinism},
    {"autoprogress_default", t_autoprogress_default},
    {"fabric_destroy_frees", t_fabric_destroy_frees},
};

int main(int argc, char **argv)
{
    size_t n = sizeof tests / sizeof tests[0];
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s NAME | --list\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], tests[i].name) == 0) {
            int rc = tests[i].fn();
            if (rc == 0)
                printf("PASS %s\n", tests[i].name);
            else
                printf("FAIL %s\n", tests[i].name);
            return rc ? 1 : 0;
        }
    }
    fprintf(stderr, "no test named %s\n", argv[1]);
    return 2;
}
