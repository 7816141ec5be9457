/*
 * rdma_pingpong.c — a server and a client in one process, written only to libibverbs and
 * librdmacm: it builds and runs unchanged on real rdma-core (-libverbs -lrdmacm) and on
 * simverbs (link the impl/simverbs sources instead), where autoprogress makes it run.
 *
 *   rdma_pingpong [address [port]]      defaults: 10.0.0.1 7471
 *
 * The server listens; the client resolves, connects with private data; the server checks
 * it and accepts, handing back its buffer's address and rkey in the accept's private data;
 * then ping and pong SENDs, an RDMA WRITE into the server's buffer and an RDMA READ back,
 * byte checks, and a disconnect.  One line of output says how it went.  Every wait is
 * bounded: a missing event or completion fails with a message, never hangs.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#define BUF_SIZE 4096
#define WAIT_TRIES 200           /* x 10 ms poll(): 2 s per CM event */
#define POLL_TRIES 20000000L     /* busy polls per completion */

struct hello {                   /* the connect request's private data */
    char magic[8];
    uint32_t version;
};

struct offer {                   /* the accept's private data: where the client may RDMA */
    uint64_t addr;
    uint32_t rkey;
    uint32_t len;
};

struct side {
    struct rdma_cm_id *id;
    struct ibv_pd *pd;
    struct ibv_cq *cq;
    struct ibv_mr *mr;
    uint8_t *buf;                /* [0, BUF_SIZE): receive, [BUF_SIZE, 2*BUF_SIZE): send/RDMA */
};

static const char *fail_msg;

static int fail(const char *what)
{
    if (!fail_msg)
        fail_msg = what;
    return -1;
}

static int nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Waits (bounded) for the next event on the channel; it must be of the expected type.
 * The event is returned un-acked so its private data can be read. */
static int get_event(struct rdma_event_channel *ec, enum rdma_cm_event_type want,
                     struct rdma_cm_event **out)
{
    for (int i = 0; i < WAIT_TRIES; i++) {
        if (rdma_get_cm_event(ec, out) == 0) {
            if ((*out)->event != want) {
                fprintf(stderr, "expected %s, got %s (status %d)\n", rdma_event_str(want),
                        rdma_event_str((*out)->event), (*out)->status);
                rdma_ack_cm_event(*out);
                return fail("unexpected CM event");
            }
            return 0;
        }
        if (errno != EAGAIN)
            return fail("rdma_get_cm_event");
        struct pollfd p = {.fd = ec->fd, .events = POLLIN};
        poll(&p, 1, 10);
    }
    fprintf(stderr, "timed out waiting for %s\n", rdma_event_str(want));
    return fail("CM event timeout");
}

static int expect_event(struct rdma_event_channel *ec, enum rdma_cm_event_type want)
{
    struct rdma_cm_event *ev;
    if (get_event(ec, want, &ev))
        return -1;
    rdma_ack_cm_event(ev);
    return 0;
}

static int wait_wc(struct ibv_cq *cq, enum ibv_wc_opcode op, uint64_t wr_id, uint32_t *len)
{
    struct ibv_wc wc;
    for (long i = 0; i < POLL_TRIES; i++) {
        int n = ibv_poll_cq(cq, 1, &wc);
        if (n < 0)
            return fail("ibv_poll_cq");
        if (n == 0)
            continue;
        if (wc.status != IBV_WC_SUCCESS) {
            fprintf(stderr, "completion %llu: %s\n", (unsigned long long)wc.wr_id,
                    ibv_wc_status_str(wc.status));
            return fail("completion error");
        }
        if (wc.opcode != op || wc.wr_id != wr_id)
            return fail("unexpected completion");
        if (len)
            *len = wc.byte_len;
        return 0;
    }
    return fail("completion timeout");
}

/* PD, CQ, buffer, MR and an RC QP on the id's device. */
static int side_setup(struct side *s, int access)
{
    struct ibv_qp_init_attr qa;
    s->pd = ibv_alloc_pd(s->id->verbs);
    s->cq = s->pd ? ibv_create_cq(s->id->verbs, 16, NULL, NULL, 0) : NULL;
    s->buf = calloc(1, 2 * BUF_SIZE);
    if (!s->cq || !s->buf)
        return fail("PD / CQ / buffer");
    s->mr = ibv_reg_mr(s->pd, s->buf, 2 * BUF_SIZE, access);
    if (!s->mr)
        return fail("ibv_reg_mr");
    memset(&qa, 0, sizeof qa);
    qa.send_cq = s->cq;
    qa.recv_cq = s->cq;
    qa.qp_type = IBV_QPT_RC;
    qa.cap.max_send_wr = 8;
    qa.cap.max_recv_wr = 8;
    qa.cap.max_send_sge = 1;
    qa.cap.max_recv_sge = 1;
    if (rdma_create_qp(s->id, s->pd, &qa))
        return fail("rdma_create_qp");
    return 0;
}

static int post_recv(struct side *s, uint64_t wr_id)
{
    struct ibv_sge sge = {.addr = (uintptr_t)s->buf, .length = BUF_SIZE, .lkey = s->mr->lkey};
    struct ibv_recv_wr wr, *bad;
    memset(&wr, 0, sizeof wr);
    wr.wr_id = wr_id;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    return ibv_post_recv(s->id->qp, &wr, &bad) ? fail("ibv_post_recv") : 0;
}

static int post_send(struct side *s, enum ibv_wr_opcode op, uint64_t wr_id, uint32_t len,
                     uint64_t raddr, uint32_t rkey)
{
    struct ibv_sge sge = {.addr = (uintptr_t)(s->buf + BUF_SIZE), .length = len, .lkey = s->mr->lkey};
    struct ibv_send_wr wr, *bad;
    memset(&wr, 0, sizeof wr);
    wr.wr_id = wr_id;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = op;
    wr.send_flags = IBV_SEND_SIGNALED;
    wr.wr.rdma.remote_addr = raddr;
    wr.wr.rdma.rkey = rkey;
    return ibv_post_send(s->id->qp, &wr, &bad) ? fail("ibv_post_send") : 0;
}

static void side_teardown(struct side *s)
{
    if (s->id && s->id->qp)
        rdma_destroy_qp(s->id);
    if (s->mr)
        ibv_dereg_mr(s->mr);
    if (s->cq)
        ibv_destroy_cq(s->cq);
    if (s->pd)
        ibv_dealloc_pd(s->pd);
    free(s->buf);
    if (s->id)
        rdma_destroy_id(s->id);
}

static int run(const char *addr, int port, unsigned *moved)
{
    struct rdma_event_channel *sch = rdma_create_event_channel();
    struct rdma_event_channel *cch = rdma_create_event_channel();
    struct rdma_cm_id *listener = NULL;
    struct side srv, cli;
    struct rdma_cm_event *ev;
    struct sockaddr_in sin;
    int rc = -1;

    memset(&srv, 0, sizeof srv);
    memset(&cli, 0, sizeof cli);
    if (!sch || !cch || nonblock(sch->fd) || nonblock(cch->fd))
        return fail("event channels");
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
        return fail("bad address");

    /* server: listen */
    if (rdma_create_id(sch, &listener, NULL, RDMA_PS_TCP) ||
        rdma_bind_addr(listener, (struct sockaddr *)&sin) || rdma_listen(listener, 4)) {
        fail("listen");
        goto out;
    }

    /* client: resolve, QP, receive, connect with private data */
    if (rdma_create_id(cch, &cli.id, NULL, RDMA_PS_TCP) ||
        rdma_resolve_addr(cli.id, NULL, (struct sockaddr *)&sin, 2000) ||
        expect_event(cch, RDMA_CM_EVENT_ADDR_RESOLVED) || rdma_resolve_route(cli.id, 2000) ||
        expect_event(cch, RDMA_CM_EVENT_ROUTE_RESOLVED) || side_setup(&cli, IBV_ACCESS_LOCAL_WRITE) ||
        post_recv(&cli, 100))
        goto out;
    struct hello hi;
    memset(&hi, 0, sizeof hi);
    memcpy(hi.magic, "PINGPONG", 8);
    hi.version = 1;
    struct rdma_conn_param cp;
    memset(&cp, 0, sizeof cp);
    cp.private_data = &hi;
    cp.private_data_len = sizeof hi;
    cp.initiator_depth = 1;
    cp.responder_resources = 1;
    cp.retry_count = 7;
    cp.rnr_retry_count = 7;
    if (rdma_connect(cli.id, &cp)) {
        fail("rdma_connect");
        goto out;
    }

    /* server: the request, its private data, accept with an offer */
    if (get_event(sch, RDMA_CM_EVENT_CONNECT_REQUEST, &ev))
        goto out;
    srv.id = ev->id;
    int pd_ok = ev->param.conn.private_data_len >= sizeof hi &&
                memcmp(ev->param.conn.private_data, &hi, sizeof hi) == 0;
    uint8_t resp_res = ev->param.conn.responder_resources;
    uint8_t init_depth = ev->param.conn.initiator_depth;
    rdma_ack_cm_event(ev);
    if (!pd_ok) {
        rdma_reject(srv.id, NULL, 0);
        fail("connect private data did not round-trip");
        goto out;
    }
    if (side_setup(&srv, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ) ||
        post_recv(&srv, 200))
        goto out;
    struct offer of = {.addr = (uintptr_t)(srv.buf + BUF_SIZE), .rkey = srv.mr->rkey, .len = BUF_SIZE};
    memset(&cp, 0, sizeof cp);
    cp.private_data = &of;
    cp.private_data_len = sizeof of;
    cp.responder_resources = resp_res;
    cp.initiator_depth = init_depth;
    if (rdma_accept(srv.id, &cp)) {
        fail("rdma_accept");
        goto out;
    }
    if (get_event(cch, RDMA_CM_EVENT_ESTABLISHED, &ev))
        goto out;
    struct offer got;
    int offer_ok = ev->param.conn.private_data_len >= sizeof got;
    if (offer_ok)
        memcpy(&got, ev->param.conn.private_data, sizeof got);
    rdma_ack_cm_event(ev);
    if (!offer_ok || got.rkey != of.rkey || got.addr != of.addr) {
        fail("accept private data did not round-trip");
        goto out;
    }
    if (expect_event(sch, RDMA_CM_EVENT_ESTABLISHED))
        goto out;

    /* ping: client to server */
    uint32_t len = 0;
    memcpy(cli.buf + BUF_SIZE, "ping", 5);
    if (post_send(&cli, IBV_WR_SEND, 1, 5, 0, 0) || wait_wc(cli.cq, IBV_WC_SEND, 1, NULL) ||
        wait_wc(srv.cq, IBV_WC_RECV, 200, &len))
        goto out;
    if (len != 5 || memcmp(srv.buf, "ping", 5)) {
        fail("ping bytes");
        goto out;
    }
    /* pong: server to client */
    memcpy(srv.buf + BUF_SIZE, "pong", 5);
    if (post_send(&srv, IBV_WR_SEND, 2, 5, 0, 0) || wait_wc(srv.cq, IBV_WC_SEND, 2, NULL) ||
        wait_wc(cli.cq, IBV_WC_RECV, 100, &len))
        goto out;
    if (len != 5 || memcmp(cli.buf, "pong", 5)) {
        fail("pong bytes");
        goto out;
    }
    /* RDMA WRITE a pattern into the server's buffer, then READ it back over it */
    for (int i = 0; i < BUF_SIZE; i++)
        cli.buf[BUF_SIZE + i] = (uint8_t)(i * 7 + 3);
    if (post_send(&cli, IBV_WR_RDMA_WRITE, 3, BUF_SIZE, got.addr, got.rkey) ||
        wait_wc(cli.cq, IBV_WC_RDMA_WRITE, 3, NULL))
        goto out;
    if (memcmp(srv.buf + BUF_SIZE, cli.buf + BUF_SIZE, BUF_SIZE)) {
        fail("RDMA WRITE bytes");
        goto out;
    }
    for (int i = 0; i < BUF_SIZE; i++)
        srv.buf[BUF_SIZE + i] = (uint8_t)(i * 13 + 1);
    memset(cli.buf + BUF_SIZE, 0, BUF_SIZE);
    if (post_send(&cli, IBV_WR_RDMA_READ, 4, BUF_SIZE, got.addr, got.rkey) ||
        wait_wc(cli.cq, IBV_WC_RDMA_READ, 4, NULL))
        goto out;
    if (memcmp(srv.buf + BUF_SIZE, cli.buf + BUF_SIZE, BUF_SIZE)) {
        fail("RDMA READ bytes");
        goto out;
    }
    *moved = 2 * 5 + 2 * BUF_SIZE;

    /* the client disconnects; both ends hear it; the server answers in kind */
    if (rdma_disconnect(cli.id) || expect_event(sch, RDMA_CM_EVENT_DISCONNECTED) ||
        expect_event(cch, RDMA_CM_EVENT_DISCONNECTED))
        goto out;
    rdma_disconnect(srv.id);
    rc = 0;
out:
    side_teardown(&srv);
    side_teardown(&cli);
    if (listener)
        rdma_destroy_id(listener);
    if (sch)
        rdma_destroy_event_channel(sch);
    if (cch)
        rdma_destroy_event_channel(cch);
    return rc;
}

int main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : "10.0.0.1";
    int port = argc > 2 ? atoi(argv[2]) : 7471;
    unsigned moved = 0;
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: %s [address [port]]\n", argv[0]);
        return 2;
    }
    if (run(addr, port, &moved)) {
        printf("rdma_pingpong: FAIL %s\n", fail_msg ? fail_msg : "?");
        return 1;
    }
    printf("rdma_pingpong: OK %s:%d send+recv x2, rdma write+read %d bytes, %u bytes checked\n",
           addr, port, BUF_SIZE, moved);
    return 0;
}
