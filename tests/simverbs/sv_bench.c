/*
 * sv_bench.c — how long one 4 KiB RDMA READ takes through simverbs (post, sv_qp_execute,
 * poll), next to a plain 4 KiB memcpy.  The clock is the benchmark's, not the fabric's.
 *
 *   sv_bench [iterations]        default 1000000
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <infiniband/verbs.h>

#include "simverbs.h"

#define IO 4096

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int connect_qp(struct ibv_qp *qp, uint32_t dest)
{
    struct ibv_qp_attr a;
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_INIT;
    a.port_num = 1;
    a.qp_access_flags = IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE;
    if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
        return -1;
    a.qp_state = IBV_QPS_RTR;
    a.dest_qp_num = dest;
    if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_DEST_QPN))
        return -1;
    a.qp_state = IBV_QPS_RTS;
    return ibv_modify_qp(qp, &a, IBV_QP_STATE);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    if (n < 1)
        n = 1;
    struct sv_fabric *f = sv_fabric_create();
    sv_device_add(f, NULL);
    struct ibv_device **l = ibv_get_device_list(NULL);
    struct ibv_context *c = ibv_open_device(l[0]);
    ibv_free_device_list(l);
    struct ibv_pd *pd = ibv_alloc_pd(c);
    struct ibv_cq *cq = ibv_create_cq(c, 256, NULL, NULL, 0);
    struct ibv_qp_init_attr qa;
    memset(&qa, 0, sizeof qa);
    qa.send_cq = qa.recv_cq = cq;
    qa.qp_type = IBV_QPT_RC;
    qa.cap.max_send_wr = 128;
    qa.cap.max_recv_wr = 1;
    qa.cap.max_send_sge = 4;
    qa.cap.max_recv_sge = 1;
    struct ibv_qp *t = ibv_create_qp(pd, &qa), *h = ibv_create_qp(pd, &qa);
    if (!t || !h || connect_qp(t, h->qp_num) || connect_qp(h, t->qp_num)) {
        fprintf(stderr, "setup failed: %s\n", sv_error(f));
        return 1;
    }
    uint8_t *src = aligned_alloc(4096, IO), *dst = aligned_alloc(4096, IO);
    memset(src, 0xAB, IO);
    memset(dst, 0, IO);
    struct ibv_mr *smr = ibv_reg_mr(pd, src, IO, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ);
    struct ibv_mr *dmr = ibv_reg_mr(pd, dst, IO, IBV_ACCESS_LOCAL_WRITE);
    struct ibv_sge sge = {.addr = (uintptr_t)dst, .length = IO, .lkey = dmr->lkey};
    struct ibv_send_wr wr, *bad;
    memset(&wr, 0, sizeof wr);
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = IBV_WR_RDMA_READ;
    wr.send_flags = IBV_SEND_SIGNALED;
    wr.wr.rdma.remote_addr = (uintptr_t)src;
    wr.wr.rdma.rkey = smr->rkey;
    struct ibv_wc wc[32];

    /* one at a time: post, execute, poll */
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        wr.wr_id = (uint64_t)i;
        if (ibv_post_send(t, &wr, &bad) || sv_qp_execute(f, t->qp_num) != 1 ||
            ibv_poll_cq(cq, 1, wc) != 1 || wc[0].status != IBV_WC_SUCCESS) {
            fprintf(stderr, "op %ld failed\n", i);
            return 1;
        }
    }
    double one = (now_ns() - t0) / (double)n;

    /* batches of 32 through sv_run, as a scheduler drives it */
    uint32_t ev[32];
    for (int i = 0; i < 32; i++)
        ev[i] = SV_EV_EXECUTE << 24 | (uint32_t)sv_qp_index(f, t->qp_num);
    long batches = n / 32 ? n / 32 : 1;
    t0 = now_ns();
    for (long b = 0; b < batches; b++) {
        for (int i = 0; i < 32; i++)
            ibv_post_send(t, &wr, &bad);
        if (sv_run(f, ev, 32) != 32 || ibv_poll_cq(cq, 32, wc) != 32) {
            fprintf(stderr, "batch %ld failed\n", b);
            return 1;
        }
    }
    double batched = (now_ns() - t0) / (double)(batches * 32);

    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        memcpy(dst, src, IO);
        __asm__ __volatile__("" : : "r"(dst), "r"(src) : "memory");
    }
    double mc = (now_ns() - t0) / (double)n;

    printf("rdma_read_4k post+execute+poll: %.1f ns/op; batched x32 via sv_run: %.1f ns/op; "
           "memcpy_4k: %.1f ns/op; ratio %.2f / %.2f\n", one, batched, mc, one / mc, batched / mc);
    sv_fabric_destroy(f);
    free(src);
    free(dst);
    return 0;
}
