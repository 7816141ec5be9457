/*
 * rig.c — the harness's C half: a simverbs fabric, one transport on it, and the host.
 *
 * The transport is a verbs program and knows nothing of this file.  The rig adds a device
 * per port and has the transport listen on it, connects host QPs through the CM with the
 * NVMe/RDMA private data, sends capsule bytes, keeps what the host knows (which CIDs are
 * outstanding, the responses received and not yet reaped) and decides every execution:
 * a host SEND (h2t), a target work request (t2h), a poll, a block device completion, a
 * clock tick.  Faults are simverbs faults; after each one the transport's CM and async
 * event handling runs, as a real target's event poller would.
 */
#include "nrt.h"
#include "ctrlr.h"
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include "../simverbs/simverbs.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RIG_SERVICE 4420         /* the NVMe-oF port (IANA) */
#define RIG_RECV_SIZE 64         /* a host receive: a CQE plus room to see an oversized one */

enum { CONN_FREE = 0, CONN_USED };

struct conn {
    uint8_t used;
    int hconn;                   /* simverbs host connection */
    uint32_t host_qpn;
    uint32_t target_qpn;
    uint8_t target_gone;         /* the fabric destroyed target_qpn (QP numbers are never
                                    reused): nothing to execute or inspect there any more */
    int32_t qpair;               /* target handle, -1 if none */
    uint32_t depth;
    uint32_t outstanding;
    uint8_t *cids;               /* 65536 bits: CIDs sent and not yet answered */
    struct nrt_response *ring;   /* responses received, not yet reaped */
    uint32_t ring_head, ring_count, ring_cap;
    struct nrt_conn_info info;
};

/* What the host and the rig saw of one poll group: STATS-1 compares the target's own
 * stats with these. */
struct group_view {
    uint64_t polls, idle_polls, reaped;
};

struct nrt_rig {
    struct sv_fabric *f;
    struct group_view *groups;
    struct nrt_transport *t;
    char err[NRT_ERRMSG_LEN];
    uint32_t max_conns;
    struct conn *conns;
    uint32_t num_ports;
    int *devs;
    uint64_t progress;           /* rig events: executions and injected faults */
};

static int rig_fail(struct nrt_rig *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int rig_fail(struct nrt_rig *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
    return code;
}

static int from_target(struct nrt_rig *r, int rc)
{
    if (rc < 0)
        snprintf(r->err, sizeof(r->err), "%s", nrt_transport_error(r->t));
    return rc;
}

/* Every poll of the target goes through here, so the rig knows what it asked for. */
static int rig_poll(struct nrt_rig *r, int group)
{
    int n = nrt_poll_group(r->t, group);
    if (n >= 0) {
        struct group_view *g = &r->groups[group];
        g->polls++;
        g->idle_polls += n == 0;
        g->reaped += (uint64_t)n;
    }
    return n;
}

struct nrt_rig *nrt_rig_create(const struct nrt_opts *opts, char *err, size_t len)
{
    if (opts && nrt_opts_validate(opts, err, len))
        return NULL;
    struct nrt_rig *r = calloc(1, sizeof(*r));
    if (!r) {
        if (err && len)
            snprintf(err, len, "out of memory");
        return NULL;
    }
    r->f = sv_fabric_create();
    if (!r->f) {
        free(r);
        if (err && len)
            snprintf(err, len, "cannot create the simulated fabric");
        return NULL;
    }
    sv_fabric_set_current(r->f);
    r->t = nrt_transport_create(opts, err, len);
    if (!r->t) {
        sv_fabric_destroy(r->f);
        free(r);
        return NULL;
    }
    r->max_conns = opts->max_qpairs + 64;
    r->conns = calloc(r->max_conns, sizeof(*r->conns));
    r->devs = calloc(opts->max_ports, sizeof(int));
    r->groups = calloc(opts->num_poll_groups, sizeof(*r->groups));
    if (!r->conns || !r->devs || !r->groups) {
        struct nrt_destroy_report rep;
        nrt_rig_destroy(r, &rep);
        if (err && len)
            snprintf(err, len, "out of memory");
        return NULL;
    }
    return r;
}

int nrt_rig_destroy(struct nrt_rig *r, struct nrt_destroy_report *report)
{
    if (!r)
        return NRT_EINVAL;
    sv_fabric_set_current(r->f);
    int rc = r->t ? nrt_transport_destroy(r->t, report) : 0;
    if (r->conns)
        for (uint32_t i = 0; i < r->max_conns; i++) {
            free(r->conns[i].cids);
            free(r->conns[i].ring);
        }
    sv_fabric_destroy(r->f);
    free(r->conns);
    free(r->devs);
    free(r->groups);
    free(r);
    return rc;
}

const char *nrt_rig_error(struct nrt_rig *r) { return r ? r->err : "no rig"; }
struct nrt_transport *nrt_rig_transport(struct nrt_rig *r) { return r->t; }

/* ---- ports ------------------------------------------------------------------------ */

int nrt_rig_port_add(struct nrt_rig *r)
{
    struct nrt_opts o;
    nrt_transport_get_opts(r->t, &o);
    if (r->num_ports >= o.max_ports)
        return rig_fail(r, NRT_ELIMIT, "port table full (max_ports = %u)", o.max_ports);
    struct sv_device_attr a;
    sv_device_attr_default(&a);
    int dev = sv_device_add(r->f, &a);
    if (dev < 0)
        return rig_fail(r, NRT_ENOMEM, "sv_device_add: %s", sv_error(r->f));
    int port = nrt_listen(r->t, sv_device_ipv4(dev), RIG_SERVICE);
    if (port < 0)
        return from_target(r, port);
    r->devs[port] = dev;
    r->num_ports++;
    return port;
}

static int port_dev(struct nrt_rig *r, int port)
{
    return port >= 0 && (uint32_t)port < r->num_ports ? r->devs[port] : -1;
}

#define PORT_FAULT(name, call)                                                             \
    int nrt_rig_##name(struct nrt_rig *r, int port)                                        \
    {                                                                                      \
        int dev = port_dev(r, port);                                                       \
        if (dev < 0)                                                                       \
            return rig_fail(r, NRT_ENOENT, "no port %d", port);                            \
        if (call(r->f, dev) < 0)                                                           \
            return rig_fail(r, NRT_EINVAL, #call ": %s", sv_error(r->f));                  \
        r->progress++;                                                                     \
        nrt_accept_poll(r->t);                                                             \
        return 0;                                                                          \
    }
PORT_FAULT(port_down, sv_port_down)
PORT_FAULT(port_up, sv_port_up)
PORT_FAULT(device_remove, sv_device_remove)

/* ---- host memory ----------------------------------------------------------------------- */

int64_t nrt_rig_mr_register(struct nrt_rig *r, uint64_t size)
{
    int64_t key = sv_host_mr_reg(r->f, size, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ |
                                                 IBV_ACCESS_REMOTE_WRITE);
    if (key < 0)
        return rig_fail(r, NRT_ENOMEM, "sv_host_mr_reg: %s", sv_error(r->f));
    return key;
}

int nrt_rig_mr_deregister(struct nrt_rig *r, uint32_t key)
{
    return sv_host_mr_dereg(r->f, key) < 0
               ? rig_fail(r, NRT_ENOENT, "no memory region %u", key) : 0;
}

uint64_t nrt_rig_mr_iova(struct nrt_rig *r, uint32_t key) { return sv_host_mr_iova(r->f, key); }

int nrt_rig_mr_write(struct nrt_rig *r, uint32_t key, uint64_t off, const void *buf, uint64_t len)
{
    return sv_host_mr_write(r->f, key, off, buf, len) < 0
               ? rig_fail(r, NRT_EINVAL, "host memory write: %s", sv_error(r->f)) : 0;
}

int nrt_rig_mr_read(struct nrt_rig *r, uint32_t key, uint64_t off, void *buf, uint64_t len)
{
    return sv_host_mr_read(r->f, key, off, buf, len) < 0
               ? rig_fail(r, NRT_EINVAL, "host memory read: %s", sv_error(r->f)) : 0;
}

uint8_t *nrt_rig_mr_data(struct nrt_rig *r, uint32_t key)
{
    uint8_t *p = sv_host_mr_data(r->f, key);
    if (!p)
        rig_fail(r, NRT_ENOENT, "no memory region %u", key);
    return p;
}

/* ---- connections ------------------------------------------------------------------------- */

static struct conn *conn_get(struct nrt_rig *r, int c)
{
    return c >= 0 && (uint32_t)c < r->max_conns && r->conns[c].used ? &r->conns[c] : NULL;
}

static void conn_refresh(struct nrt_rig *r, struct conn *c);

/* A connection to act on (submit, faults): once the target destroyed the qpair it was
 * connected to, the handle is gone for every call but the read-only ones (NRT_ENOENT: "no
 * such handle (never existed or destroyed)"), as for nrt_rig_qpair_disconnect.  A
 * connection that never had a target qpair (rejected) is still there, just not connected. */
static struct conn *conn_live(struct nrt_rig *r, int conn, int *rc)
{
    struct conn *c = conn_get(r, conn);
    if (!c) {
        *rc = rig_fail(r, NRT_ENOENT, "no connection %d", conn);
        return NULL;
    }
    conn_refresh(r, c);
    if (c->qpair < 0 && c->target_qpn) {
        *rc = rig_fail(r, NRT_ENOENT, "connection %d: its target qpair was destroyed", conn);
        return NULL;
    }
    return c;
}

void nrt_connect_params_default(struct nrt_connect_params *p, uint32_t port, uint32_t group,
                                uint16_t qid, uint32_t depth)
{
    memset(p, 0, sizeof(*p));
    p->port = port;
    p->group = group;
    p->qid = qid;
    p->hrqsize = (uint16_t)depth;
    p->hsqsize = (uint16_t)(depth ? depth - 1 : 0);
    p->cntlid = qid ? 0 : 0xFFFF;
    p->private_data_len = sizeof(struct nvmf_rdma_request_private_data);
    p->initiator_depth = 16;
    p->responder_resources = 16;
}

/* The target QP's fabric view, false once it is gone (remembered, so a connection whose
 * target QP was destroyed costs no failed lookup, and no error message, per call). */
static bool target_qp_info(struct nrt_rig *r, struct conn *c, struct sv_qp_info *qi)
{
    if (!c->target_qpn || c->target_gone)
        return false;
    if (sv_qp_info(r->f, c->target_qpn, qi) >= 0)
        return true;
    c->target_gone = 1;
    return false;
}

/* The host's and the fabric's view of c, and whether its target qpair still exists; when
 * it does, *qpair_info holds the target's info of it (the existence check is that call). */
static void conn_refresh_info(struct nrt_rig *r, struct conn *c,
                              struct nrt_qpair_info *qpair_info)
{
    struct sv_host_conn_info hi;
    if (sv_host_conn_info(r->f, c->hconn, &hi) < 0)
        return;
    c->info.state = hi.state;
    c->info.host_qp_num = hi.qp_num;
    if (hi.peer_qp_num) {
        if (hi.peer_qp_num != c->target_qpn)
            c->target_gone = 0;
        c->target_qpn = c->info.target_qp_num = hi.peer_qp_num;
    }
    c->info.initiator_depth = hi.initiator_depth;
    c->info.responder_resources = hi.responder_resources;
    c->info.accept_len = hi.private_data_len;
    if (hi.state == SV_HOST_REJECTED && hi.private_data_len >= 4) {
        memcpy(&c->info.reject_recfmt, hi.private_data, 2);
        memcpy(&c->info.reject_sts, hi.private_data + 2, 2);
    } else if (hi.state != SV_HOST_REJECTED && hi.private_data_len >= 4) {
        memcpy(&c->info.accept_recfmt, hi.private_data, 2);
        memcpy(&c->info.crqsize, hi.private_data + 2, 2);
    }
    struct sv_qp_info qi;
    c->info.host_qp_state = sv_qp_info(r->f, hi.qp_num, &qi) >= 0 ? qi.state : 0;
    c->info.target_qp_state = target_qp_info(r, c, &qi) ? qi.state : 0;
    if (c->qpair < 0 && c->target_qpn && hi.state == SV_HOST_ESTABLISHED) {
        int id = nrt_qpair_by_qp_num(r->t, c->target_qpn);
        c->qpair = id >= 0 ? id : -1;
    }
    if (c->qpair >= 0 && nrt_qpair_info(r->t, c->qpair, qpair_info) < 0)
        c->qpair = -1;   /* the target destroyed it */
    c->info.qpair = c->qpair;
}

static void conn_refresh(struct nrt_rig *r, struct conn *c)
{
    struct nrt_qpair_info qi;
    conn_refresh_info(r, c, &qi);
}

int nrt_rig_connect(struct nrt_rig *r, const struct nrt_connect_params *p)
{
    int dev = port_dev(r, (int)p->port);
    if (dev < 0)
        return rig_fail(r, NRT_ENOENT, "no port %u", p->port);
    /* the target takes the group as a hint (modulo its group count): an out-of-range one
     * would silently land the connection in another group than the caller asked for */
    struct nrt_opts o;
    nrt_transport_get_opts(r->t, &o);
    if (p->group >= o.num_poll_groups)
        return rig_fail(r, NRT_ENOENT, "no poll group %u", p->group);
    uint32_t slot = 0;
    while (slot < r->max_conns && r->conns[slot].used)
        slot++;
    if (slot == r->max_conns)
        return rig_fail(r, NRT_ELIMIT, "connection table full (%u)", r->max_conns);
    struct conn *c = &r->conns[slot];
    uint32_t depth = p->hrqsize ? p->hrqsize : 1;
    uint32_t ring_cap = 2 * depth + 8;
    if (!c->cids)
        c->cids = calloc(65536 / 8, 1);
    free(c->ring);
    c->ring = calloc(ring_cap, sizeof(*c->ring));
    if (!c->cids || !c->ring)
        return rig_fail(r, NRT_ENOMEM, "out of memory");
    memset(c->cids, 0, 65536 / 8);
    struct nvmf_rdma_request_private_data pd = {
        .recfmt = p->recfmt, .qid = p->qid, .hrqsize = p->hrqsize, .hsqsize = p->hsqsize,
        .cntlid = p->cntlid};
    uint8_t bytes[56];
    memset(bytes, 0, sizeof(bytes));
    if (p->raw)
        memcpy(bytes, p->raw_private_data, sizeof(bytes));
    else
        memcpy(bytes, &pd, sizeof(pd));
    struct sv_host_connect_params hp = {
        .dst_ipv4 = sv_device_ipv4(dev), .dst_port = RIG_SERVICE,
        .private_data = p->private_data_len ? bytes : NULL,
        .private_data_len = p->private_data_len > 56 ? 56 : p->private_data_len,
        .initiator_depth = p->initiator_depth, .responder_resources = p->responder_resources,
        .send_depth = depth, .recv_depth = depth, .recv_size = RIG_RECV_SIZE};
    nrt_set_next_group(r->t, (int)p->group);
    int h = sv_host_connect(r->f, &hp);
    if (h < 0)
        return rig_fail(r, NRT_ENOMEM, "sv_host_connect: %s", sv_error(r->f));
    c->used = CONN_USED;
    c->hconn = h;
    c->qpair = -1;
    c->target_qpn = 0;
    c->target_gone = 0;
    c->depth = depth;
    c->outstanding = 0;
    c->ring_head = c->ring_count = 0;
    c->ring_cap = ring_cap;
    memset(&c->info, 0, sizeof(c->info));
    c->info.conn = (int32_t)slot;
    /* the target's CM poller: the request, then (after accept) the established event */
    nrt_accept_poll(r->t);
    nrt_accept_poll(r->t);
    nrt_set_next_group(r->t, -1);
    conn_refresh(r, c);
    struct sv_host_conn_info hi;
    if (sv_host_conn_info(r->f, h, &hi) >= 0)
        c->host_qpn = hi.qp_num;
    r->progress++;
    return (int)slot;
}

int nrt_rig_conn_info(struct nrt_rig *r, int conn, struct nrt_conn_info *out)
{
    struct conn *c = conn_get(r, conn);
    if (!c)
        return rig_fail(r, NRT_ENOENT, "no connection %d", conn);
    conn_refresh(r, c);
    *out = c->info;
    return 0;
}

int nrt_rig_conns(struct nrt_rig *r, int32_t *out, uint32_t max)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->max_conns; i++) {
        struct conn *c = &r->conns[i];
        if (!c->used)
            continue;
        conn_refresh(r, c);
        if (c->qpair < 0)
            continue;
        if (n < max)
            out[n] = (int32_t)i;
        n++;
    }
    return (int)n;
}

/* Moves what the host received into the connection's ring while it has room; a full ring
 * leaves the host's receives unposted, so the target's next SEND waits (RNR). */
static void conn_absorb(struct nrt_rig *r, struct conn *c)
{
    struct sv_host_completion wc[16];
    while (c->ring_count < c->ring_cap) {
        int room = (int)(c->ring_cap - c->ring_count);
        int want = room < 16 ? room : 16;
        int n = sv_host_poll(r->f, c->hconn, wc, want);
        if (n <= 0)
            return;
        for (int i = 0; i < n; i++) {
            if (wc[i].opcode != IBV_WC_RECV || wc[i].status != IBV_WC_SUCCESS)
                continue;   /* our own SEND completions, and flushes of our receives */
            struct nvme_cqe cqe;
            memset(&cqe, 0, sizeof(cqe));
            memcpy(&cqe, wc[i].data, wc[i].byte_len < sizeof(cqe) ? wc[i].byte_len : sizeof(cqe));
            struct nrt_response rsp = {
                .cid = cqe.cid, .sqhd = cqe.sqhd, .sqid = cqe.sqid, .raw_status = cqe.status,
                .status = (uint16_t)(NVME_CQE_SCT(cqe.status) << 8 | NVME_CQE_SC(cqe.status)),
                .result = (uint64_t)cqe.cdw0 | (uint64_t)cqe.cdw1 << 32,
                .byte_len = wc[i].byte_len};
            uint8_t bit = (uint8_t)(1u << (cqe.cid & 7));
            if (c->cids[cqe.cid >> 3] & bit) {
                c->cids[cqe.cid >> 3] &= (uint8_t)~bit;
                c->outstanding--;
            } else {
                rsp.unexpected = 1;
            }
            uint32_t tail = c->ring_head + c->ring_count;   /* both below ring_cap */
            c->ring[tail >= c->ring_cap ? tail - c->ring_cap : tail] = rsp;
            c->ring_count++;
        }
        if (n < want)
            return;   /* the host's CQ is empty: nothing moves until the next execution */
    }
}

int nrt_rig_qpair_info(struct nrt_rig *r, int conn, struct nrt_qpair_info *out)
{
    struct conn *c = conn_get(r, conn);
    if (!c)
        return rig_fail(r, NRT_ENOENT, "no connection %d", conn);
    conn_refresh_info(r, c, out);
    if (c->qpair < 0)
        return rig_fail(r, NRT_ENOENT, "connection %d has no target qpair", conn);
    conn_absorb(r, c);
    struct sv_qp_info qi;
    out->wire_t2h = target_qp_info(r, c, &qi) ? qi.sq_pending : 0;
    out->wire_h2t = sv_qp_info(r->f, c->host_qpn, &qi) >= 0 ? qi.sq_pending : 0;
    out->host_outstanding = c->outstanding;
    out->host_unreaped = c->ring_count;
    return 0;
}

int nrt_rig_requests(struct nrt_rig *r, int conn, struct nrt_request_info *out, uint32_t max)
{
    struct conn *c = conn_get(r, conn);
    if (!c || c->qpair < 0)
        return rig_fail(r, NRT_ENOENT, "connection %d has no target qpair", conn);
    return from_target(r, nrt_qpair_requests(r->t, c->qpair, out, max));
}

/* ---- capsules and responses ------------------------------------------------------------- */

/* One capsule on a live, established connection (the checks every submit makes). */
static int submit_one(struct nrt_rig *r, struct conn *c, int conn, const struct nrt_opts *o,
                      const void *capsule, uint32_t len)
{
    if (len > NVMF_SQE_SIZE + o->in_capsule_data_size)
        return rig_fail(r, NRT_EMSGSIZE, "%u in-capsule bytes exceed in_capsule_data_size %u",
                        len - NVMF_SQE_SIZE, o->in_capsule_data_size);
    if (c->outstanding >= c->depth)
        return rig_fail(r, NRT_EBUSY, "connection %d has %u capsules outstanding", conn,
                        c->depth);
    uint16_t cid;
    memcpy(&cid, (const uint8_t *)capsule + 2, 2);
    uint8_t bit = (uint8_t)(1u << (cid & 7));
    if (c->cids[cid >> 3] & bit)
        return rig_fail(r, NRT_EBUSY, "CID %u is already outstanding on connection %d", cid,
                        conn);
    int rc = sv_host_send(r->f, c->hconn, capsule, len, cid);
    if (rc == -EAGAIN)
        return rig_fail(r, NRT_EBUSY, "connection %d: host send queue full", conn);
    if (rc < 0)
        return rig_fail(r, NRT_ENOTCONN, "connection %d: %s", conn, sv_error(r->f));
    c->cids[cid >> 3] |= bit;
    c->outstanding++;
    return 0;
}

static int capsule_too_short(struct nrt_rig *r, const void *capsule, uint32_t len)
{
    return len < 4 || !capsule
               ? rig_fail(r, NRT_EINVAL, "a capsule of %u bytes has no CID", len) : 0;
}

static struct conn *conn_established(struct nrt_rig *r, struct conn *c, int conn, int *rc)
{
    struct sv_host_conn_info hi;
    if (sv_host_conn_info(r->f, c->hconn, &hi) < 0 || hi.state != SV_HOST_ESTABLISHED) {
        *rc = rig_fail(r, NRT_ENOTCONN, "connection %d is not established", conn);
        return NULL;
    }
    return c;
}

int nrt_rig_submit(struct nrt_rig *r, int conn, const void *capsule, uint32_t len)
{
    int rc;
    struct conn *c = conn_live(r, conn, &rc);
    if (!c)
        return rc;
    if ((rc = capsule_too_short(r, capsule, len)) < 0)
        return rc;
    if (!conn_established(r, c, conn, &rc))
        return rc;
    struct nrt_opts o;
    nrt_transport_get_opts(r->t, &o);
    return submit_one(r, c, conn, &o, capsule, len);
}

int nrt_rig_submit_batch(struct nrt_rig *r, int conn, const void *capsules,
                         const uint32_t *lens, uint32_t n)
{
    int rc;
    struct conn *c = conn_live(r, conn, &rc);
    if (!c || !conn_established(r, c, conn, &rc))
        return rc;
    struct nrt_opts o;
    nrt_transport_get_opts(r->t, &o);
    const uint8_t *p = capsules;
    for (uint32_t i = 0; i < n; p += lens[i], i++) {
        rc = capsule_too_short(r, p, lens[i]);
        if (rc == 0)
            rc = submit_one(r, c, conn, &o, p, lens[i]);
        if (rc < 0)
            return i ? (int)i : rc;
    }
    return (int)n;
}

int nrt_rig_reap(struct nrt_rig *r, int conn, struct nrt_response *out, uint32_t max)
{
    struct conn *c = conn_get(r, conn);
    if (!c)
        return rig_fail(r, NRT_ENOENT, "no connection %d", conn);
    conn_absorb(r, c);
    uint32_t n = 0;
    while (n < max && c->ring_count) {
        out[n++] = c->ring[c->ring_head];
        c->ring_head = c->ring_head + 1 == c->ring_cap ? 0 : c->ring_head + 1;
        c->ring_count--;
        if (!c->ring_count)
            conn_absorb(r, c);
    }
    return (int)n;
}

/* ---- progress ----------------------------------------------------------------------------- */

static int execute(struct nrt_rig *r, uint32_t qpn)
{
    if (!qpn)
        return 0;
    int rc = sv_qp_execute(r->f, qpn);
    if (rc > 0) {
        r->progress++;
        return 1;
    }
    return 0;
}

static int execute_all(struct nrt_rig *r, uint32_t qpn);

/* The target QP's next WR; a QP found gone is remembered as gone. */
static int execute_target(struct nrt_rig *r, struct conn *c)
{
    if (!c->target_qpn || c->target_gone)
        return 0;
    int rc = sv_qp_execute(r->f, c->target_qpn);
    if (rc > 0) {
        r->progress++;
        return 1;
    }
    if (rc == -ENOENT)
        c->target_gone = 1;
    return 0;
}

int nrt_rig_deliver_h2t(struct nrt_rig *r, int conn)
{
    struct conn *c = conn_get(r, conn);
    return c ? execute(r, c->host_qpn) : 0;
}

int nrt_rig_deliver_t2h(struct nrt_rig *r, int conn)
{
    struct conn *c = conn_get(r, conn);
    if (!c)
        return 0;
    if (c->ring_count == c->ring_cap)
        conn_absorb(r, c);
    return execute_target(r, c);
}

/* The target QP's WRs until none moves, in one lookup (execute_target until it gives 0). */
static int execute_all_target(struct nrt_rig *r, struct conn *c)
{
    if (!c->target_qpn || c->target_gone)
        return 0;
    int n = sv_qp_execute_all(r->f, c->target_qpn, INT32_MAX);
    if (n == -ENOENT)
        c->target_gone = 1;
    if (n <= 0)
        return 0;
    r->progress += (uint64_t)n;
    return n;
}

int nrt_rig_deliver_all_h2t(struct nrt_rig *r, int conn)
{
    struct conn *c = conn_get(r, conn);
    return c ? execute_all(r, c->host_qpn) : 0;
}

/* As nrt_rig_deliver_t2h until it gives 0: its absorb of a full ring takes nothing (the
 * absorb stops at a full ring), so the run is the target QP's WRs, all of them. */
int nrt_rig_deliver_all_t2h(struct nrt_rig *r, int conn)
{
    struct conn *c = conn_get(r, conn);
    return c ? execute_all_target(r, c) : 0;
}

int nrt_rig_poll(struct nrt_rig *r, int group) { return from_target(r, rig_poll(r, group)); }

int nrt_rig_group_view(struct nrt_rig *r, int group, struct nrt_group_view *out)
{
    struct nrt_opts o;
    nrt_transport_get_opts(r->t, &o);
    if (group < 0 || (uint32_t)group >= o.num_poll_groups)
        return rig_fail(r, NRT_ENOENT, "no poll group %d", group);
    out->polls = r->groups[group].polls;
    out->idle_polls = r->groups[group].idle_polls;
    out->reaped = r->groups[group].reaped;
    return 0;
}

/* Work completions the fabric generated for the target's QPs: all of them minus the
 * host's (host QPs live as long as the rig). */
uint64_t nrt_rig_target_completions(struct nrt_rig *r)
{
    struct sv_stats s;
    if (sv_stats(r->f, &s) < 0)
        return 0;
    uint64_t host = 0;
    for (uint32_t i = 0; i < r->max_conns; i++) {
        struct sv_qp_info qi;
        if (r->conns[i].used && r->conns[i].host_qpn &&
            sv_qp_info(r->f, r->conns[i].host_qpn, &qi) >= 0)
            host += qi.completions;
    }
    return s.completions - host;
}

#define CONN_FAULT(name, body)                                                             \
    int nrt_rig_##name(struct nrt_rig *r, int conn)                                        \
    {                                                                                      \
        int rc;                                                                            \
        struct conn *c = conn_live(r, conn, &rc);                                          \
        if (!c)                                                                            \
            return rc;                                                                     \
        rc = (body);                                                                       \
        if (rc < 0)                                                                        \
            return rig_fail(r, NRT_ESTATE, #name " on connection %d: %s", conn,            \
                            sv_error(r->f));                                               \
        r->progress++;                                                                     \
        nrt_accept_poll(r->t);                                                             \
        return 0;                                                                          \
    }
CONN_FAULT(host_disconnect, sv_host_disconnect(r->f, c->hconn))
CONN_FAULT(qpair_error, sv_qp_to_error(r->f, c->target_qpn))

/* Faults that arm a count on the target QP: the next count posts, RDMA ops or SENDs. */
static int count_fault(struct nrt_rig *r, int conn, uint32_t count, const char *what,
                       int (*arm)(struct sv_fabric *, uint32_t, uint32_t))
{
    int rc;
    struct conn *c = conn_live(r, conn, &rc);
    if (!c)
        return rc;
    return arm(r->f, c->target_qpn, count) < 0
               ? rig_fail(r, NRT_ESTATE, "%s: %s", what, sv_error(r->f)) : 0;
}

int nrt_rig_fail_posts(struct nrt_rig *r, int conn, uint32_t count)
{
    return count_fault(r, conn, count, "fail_posts", sv_qp_fail_posts);
}

int nrt_rig_remote_access_error(struct nrt_rig *r, int conn, uint32_t count)
{
    return count_fault(r, conn, count, "remote_access_error", sv_qp_remote_access_error);
}

int nrt_rig_rnr(struct nrt_rig *r, int conn, uint32_t count)
{
    return count_fault(r, conn, count, "rnr", sv_qp_rnr);
}

int nrt_rig_qpair_disconnect(struct nrt_rig *r, int conn)
{
    struct conn *c = conn_get(r, conn);
    if (!c || c->qpair < 0)
        return rig_fail(r, NRT_ENOENT, "connection %d has no target qpair", conn);
    return from_target(r, nrt_qpair_disconnect(r->t, c->qpair));
}

uint64_t nrt_rig_progress(struct nrt_rig *r) { return r->progress + nrt_progress_counter(r->t); }

int64_t nrt_rig_run(struct nrt_rig *r, const uint32_t *events, size_t n)
{
    uint64_t start = nrt_rig_progress(r);
    for (size_t i = 0; i < n; i++) {
        uint32_t kind = events[i] >> 24, arg = events[i] & 0xFFFFFFu;
        switch (kind) {
        case NRT_EV_DELIVER_H2T:
            nrt_rig_deliver_h2t(r, (int)arg);
            break;
        case NRT_EV_DELIVER_T2H:
            nrt_rig_deliver_t2h(r, (int)arg);
            break;
        case NRT_EV_POLL:
            rig_poll(r, (int)arg);
            break;
        case NRT_EV_BDEV:
            nrt_bdev_complete(r->t, arg, NRT_SC_SUCCESS);
            break;
        case NRT_EV_TICK:
            nrt_advance_time(r->t, arg);
            break;
        case NRT_EV_ACCEPT:
            nrt_accept_poll(r->t);
            break;
        default:
            return rig_fail(r, NRT_EINVAL, "event %zu has unknown kind %u", i, kind);
        }
    }
    return (int64_t)(nrt_rig_progress(r) - start);
}

/* Work on the host side the target cannot see: SENDs not executed, responses not yet
 * absorbed or reaped do not count (the harness reaps); target WRs not executed do. */
static bool fabric_busy(struct nrt_rig *r)
{
    for (uint32_t i = 0; i < r->max_conns; i++) {
        struct conn *c = &r->conns[i];
        if (!c->used)
            continue;
        struct sv_qp_info qi;
        if (target_qp_info(r, c, &qi) && qi.sq_pending)
            return true;
        if (c->host_qpn && sv_qp_info(r->f, c->host_qpn, &qi) >= 0 && qi.sq_pending &&
            qi.state != IBV_QPS_ERR)
            return true;
    }
    return false;
}

/* Rounds until one changes nothing: then quiescent if no work is left anywhere, else a
 * stall.  At least one round always runs: a completion waiting in a CQ is work the target
 * cannot see until it polls. */
int nrt_rig_drain(struct nrt_rig *r, uint32_t max_rounds, struct nrt_drain_result *out)
{
    struct nrt_drain_result res = {0};
    uint64_t start = nrt_rig_progress(r);
    struct nrt_opts o;
    nrt_transport_get_opts(r->t, &o);
    while (res.rounds < max_rounds) {
        uint64_t before = nrt_rig_progress(r);
        res.rounds++;
        nrt_accept_poll(r->t);
        for (uint32_t i = 0; i < r->max_conns; i++) {
            struct conn *c = &r->conns[i];
            if (!c->used)
                continue;
            while (execute(r, c->host_qpn))
                ;
            while (nrt_rig_deliver_t2h(r, (int)i))
                ;
        }
        while (nrt_bdev_pending(r->t))
            nrt_bdev_complete(r->t, 0, NRT_SC_SUCCESS);
        for (uint32_t g = 0; g < o.num_poll_groups; g++)
            while (rig_poll(r, (int)g) > 0)
                ;
        if (nrt_rig_progress(r) == before) {
            if (nrt_transport_busy(r->t) || fabric_busy(r))
                res.stalled = 1;
            else
                res.quiescent = 1;
            break;
        }
    }
    res.progress = nrt_rig_progress(r) - start;
    if (out)
        *out = res;
    return 0;
}

int nrt_rig_fabric_stats(struct nrt_rig *r, struct nrt_fabric_stats *out)
{
    struct sv_stats s;
    if (sv_stats(r->f, &s) < 0)
        return rig_fail(r, NRT_EINVAL, "sv_stats: %s", sv_error(r->f));
    *out = (struct nrt_fabric_stats){
        s.executed, s.sends, s.rdma_reads, s.rdma_writes, s.bytes_moved, s.completions,
        s.flushed, s.remote_access_errors, s.rnr_waits, s.rnr_errors, s.failed_posts,
        s.cm_events, s.async_events, s.dropped_events, s.cq_overruns, s.live_objects,
        s.leaked_objects};
    return 0;
}

/* ---- the C workload driver (benchmark, soak): no Python per IO --------------------------- */

#define WL_MAX_QD 1024

struct wl {
    struct conn *c;
    uint32_t qd;
    uint32_t nlb;
    uint32_t block;
    uint64_t iova;
    uint32_t caplen;
    int group;
};

static int wl_check(struct nrt_rig *r, int conn, const struct nrt_workload *w, struct wl *g)
{
    struct conn *c = conn_get(r, conn);
    if (!c)
        return rig_fail(r, NRT_ENOENT, "no connection %d", conn);
    conn_refresh(r, c);
    struct nrt_qpair_info qi;
    if (c->qpair < 0 || nrt_qpair_info(r->t, c->qpair, &qi) < 0 || qi.state != NRT_QP_ACTIVE ||
        qi.qid == 0)
        return rig_fail(r, NRT_ESTATE, "workload needs an active IO connection, %d is not", conn);
    if (w->opcode != NRT_OPC_READ && w->opcode != NRT_OPC_WRITE)
        return rig_fail(r, NRT_EINVAL, "workload opcode must be read or write");
    if (w->ndesc < 1 || w->ndesc > NRT_MAX_SGL_DESC || w->ndesc > w->io_bytes)
        return rig_fail(r, NRT_EINVAL, "workload ndesc = %u: must be 1..16", w->ndesc);
    conn_absorb(r, c);
    if (qi.slots_used || c->outstanding || c->ring_count)
        return rig_fail(r, NRT_ESTATE, "workload needs an idle connection: %d has IO outstanding",
                        conn);
    uint32_t block = 0;
    uint64_t nblocks = 0;
    struct nrt_opts o;
    nrt_transport_get_opts(r->t, &o);
    if (nvmf_emu_namespace_info(nrt_transport_emu(r->t), 0, w->nsid, &block, &nblocks) < 0)
        return rig_fail(r, NRT_EINVAL, "workload nsid %u not in subsystem 0", w->nsid);
    uint32_t qd = w->queue_depth < c->depth ? w->queue_depth : c->depth;
    if (qd > WL_MAX_QD)
        qd = WL_MAX_QD;
    if (qd == 0 || w->io_bytes == 0 || w->io_bytes % block)
        return rig_fail(r, NRT_EINVAL, "workload needs qd >= 1 and io_bytes a block multiple");
    uint64_t span = (uint64_t)qd * w->io_bytes;
    if (span > nblocks * block)
        return rig_fail(r, NRT_EINVAL, "namespace smaller than queue_depth x io_bytes");
    if (w->io_bytes > o.max_io_size)
        return rig_fail(r, NRT_EINVAL, "workload io_bytes %u exceed max_io_size %u", w->io_bytes,
                        o.max_io_size);
    uint64_t iova = sv_host_mr_iova(r->f, w->mkey);
    uint8_t last;
    if (!iova || sv_host_mr_read(r->f, w->mkey, span - 1, &last, 1) < 0)
        return rig_fail(r, NRT_EINVAL, "memory region %u missing or smaller than %llu bytes",
                        w->mkey, (unsigned long long)span);
    *g = (struct wl){c, qd, w->io_bytes / block, block, iova,
                     NVMF_SQE_SIZE + (w->ndesc > 1 ? 16 * w->ndesc : 0), (int)qi.group};
    return 0;
}

/* The slot's capsule: SQE (and a last-segment list in the capsule); built once and sent
 * unchanged for every IO of the slot (same CID, LBAs and host range). */
static void wl_capsule(const struct nrt_workload *w, const struct wl *g, uint32_t slot,
                       uint8_t *out)
{
    memset(out, 0, g->caplen);
    struct nvme_sqe *sqe = (struct nvme_sqe *)out;
    sqe->opc = w->opcode;
    sqe->fuse_psdt = 1u << 6;
    sqe->cid = (uint16_t)slot;
    sqe->nsid = w->nsid;
    uint64_t slba = (uint64_t)slot * g->nlb;
    sqe->cdw10 = (uint32_t)slba;
    sqe->cdw11 = (uint32_t)(slba >> 32);
    sqe->cdw12 = g->nlb - 1;
    uint64_t base = g->iova + (uint64_t)slot * w->io_bytes;
    if (w->ndesc == 1) {
        nvme_sgl_keyed_set(&sqe->sgl1.keyed, base, w->io_bytes, w->mkey, NVME_SGL_SUBTYPE_ADDRESS);
        return;
    }
    union nvme_sgl_desc *list = (union nvme_sgl_desc *)(out + NVMF_SQE_SIZE);
    uint32_t each = w->io_bytes / w->ndesc, off = 0;
    for (uint32_t i = 0; i < w->ndesc; i++) {
        uint32_t len = i + 1 == w->ndesc ? w->io_bytes - off : each;
        nvme_sgl_keyed_set(&list[i].keyed, base + off, len, w->mkey, NVME_SGL_SUBTYPE_ADDRESS);
        off += len;
    }
    sqe->sgl1.unkeyed.address = 0;
    sqe->sgl1.unkeyed.length = 16 * w->ndesc;
    sqe->sgl1.unkeyed.type_subtype = NVME_SGL_TYPE_LAST_SEGMENT << 4 | NVME_SGL_SUBTYPE_OFFSET;
}

/* Executes everything pending on one QP's send queue (the loop of execute() calls). */
static int execute_all(struct nrt_rig *r, uint32_t qpn)
{
    if (!qpn)
        return 0;
    int n = sv_qp_execute_all(r->f, qpn, INT32_MAX);
    if (n <= 0)
        return 0;
    r->progress += (uint64_t)n;
    return n;
}

/* The workload's host posts its SENDs the way an initiator does: unsignaled, but for one
 * in every `every`, any that takes the last free send-queue slot and the workload's last
 * one (so no slot stays held after it), whose completions release the slots of the
 * unsignaled ones before them (RC).  A SEND refused for want of a slot waits in `ready`
 * and goes out, in order, once a completion frees one. */
struct wl_host {
    uint64_t total;              /* SENDs the workload makes */
    uint32_t depth;              /* the host's send depth */
    uint32_t every;              /* one signaled SEND in every this many */
    uint32_t since_signaled;     /* unsignaled SENDs posted since the last signaled one */
    uint64_t posted, released;   /* SEND sequence numbers: posted, slots released below */
    uint16_t *ready;             /* CIDs answered and not yet re-sent, oldest first */
    uint32_t ready_head, ready_count;
};

static int wl_send(struct nrt_rig *r, struct conn *c, struct wl_host *h, const uint8_t *capsule,
                   uint32_t len)
{
    bool last_slot = h->posted - h->released + 1 >= h->depth;
    bool signaled = last_slot || h->posted + 1 >= h->total || h->since_signaled + 1 >= h->every;
    int rc = sv_host_send_signaled(r->f, c->hconn, capsule, len, h->posted, signaled);
    if (rc < 0)
        return rc;
    h->posted++;
    h->since_signaled = signaled ? 0 : h->since_signaled + 1;
    return 0;
}

/* Re-sends the answered CIDs while the send queue has room; -EAGAIN keeps the rest. */
static int wl_send_ready(struct nrt_rig *r, struct conn *c, struct wl_host *h,
                         const uint8_t *caps, uint32_t caplen, uint32_t qd)
{
    while (h->ready_count) {
        uint16_t cid = h->ready[h->ready_head];
        int rc = wl_send(r, c, h, caps + (size_t)cid * caplen, caplen);
        if (rc == -EAGAIN)
            return 0;
        if (rc < 0)
            return rc;
        h->ready_head = h->ready_head + 1 == qd ? 0 : h->ready_head + 1;
        h->ready_count--;
    }
    return 0;
}

int64_t nrt_rig_workload_run(struct nrt_rig *r, int conn, const struct nrt_workload *w)
{
    struct wl g;
    int rc = wl_check(r, conn, w, &g);
    if (rc)
        return rc;
    struct conn *c = g.c;
    uint8_t *caps = malloc((size_t)g.qd * g.caplen);
    uint16_t *ready = malloc((size_t)g.qd * sizeof(*ready));
    if (!caps || !ready) {
        free(caps);
        free(ready);
        return rig_fail(r, NRT_ENOMEM, "out of memory");
    }
    for (uint32_t s = 0; s < g.qd; s++)
        wl_capsule(w, &g, s, caps + (size_t)s * g.caplen);
    struct wl_host h = {.total = w->ios, .depth = c->depth, .every = c->depth / 2 ? c->depth / 2 : 1,
                        .ready = ready};
    nrt_bdev_set_auto(r->t, 1);
    struct sv_host_completion wc[32];
    uint64_t submitted = 0, completed = 0;
    int64_t result = 0;
    for (uint32_t s = 0; s < g.qd && submitted < w->ios; s++, submitted++)
        if (wl_send(r, c, &h, caps + (size_t)s * g.caplen, g.caplen) < 0) {
            result = rig_fail(r, NRT_ESTATE, "workload send failed: %s", sv_error(r->f));
            goto out;
        }
    while (completed < w->ios) {
        uint64_t before = nrt_rig_progress(r);
        execute_all(r, c->host_qpn);
        rig_poll(r, g.group);
        execute_all(r, c->target_qpn);
        rig_poll(r, g.group);
        int n;
        while ((n = sv_host_poll(r->f, c->hconn, wc, 32)) > 0) {
            for (int i = 0; i < n; i++) {
                if (wc[i].status != IBV_WC_SUCCESS) {
                    result = rig_fail(r, NRT_ESTATE, "workload %s failed: status %u",
                                      wc[i].opcode == IBV_WC_RECV ? "receive" : "send",
                                      wc[i].status);
                    goto out;
                }
                if (wc[i].opcode != IBV_WC_RECV) {
                    h.released = wc[i].wr_id + 1;   /* this SEND's slot and those before */
                    continue;
                }
                const struct nvme_cqe *cqe = (const struct nvme_cqe *)wc[i].data;
                if (cqe->cid >= g.qd) {
                    result = rig_fail(r, NRT_ESTATE, "workload got a response for CID %u, "
                                      "which it did not submit", cqe->cid);
                    goto out;
                }
                if (NVME_CQE_SC(cqe->status) || NVME_CQE_SCT(cqe->status)) {
                    result = rig_fail(r, NRT_ESTATE, "workload IO cid %u failed: status 0x%04x",
                                      cqe->cid, cqe->status);
                    goto out;
                }
                completed++;
                if (submitted < w->ios) {
                    uint32_t tail = h.ready_head + h.ready_count;
                    h.ready[tail >= g.qd ? tail - g.qd : tail] = cqe->cid;
                    h.ready_count++;
                    submitted++;
                }
            }
            if (wl_send_ready(r, c, &h, caps, g.caplen, g.qd) < 0) {
                result = rig_fail(r, NRT_ESTATE, "workload send failed: %s", sv_error(r->f));
                goto out;
            }
        }
        if (nrt_rig_progress(r) == before) {
            result = rig_fail(r, NRT_ESTATE, "workload stalled after %llu IOs",
                              (unsigned long long)completed);
            goto out;
        }
    }
    result = (int64_t)completed;
out:
    nrt_bdev_set_auto(r->t, 0);
    free(caps);
    free(ready);
    return result;
}

/* Copy through io_unit buffers first..first+n (mod the arena), as a request holds them. */
static void chunked_copy(uint8_t *arena, uint32_t nbufs_total, uint32_t first, uint32_t ius,
                         uint8_t *lin, uint32_t len, bool to_bufs)
{
    for (uint32_t off = 0, b = first; off < len; off += ius, b++) {
        uint32_t n = len - off < ius ? len - off : ius;
        uint8_t *buf = arena + (size_t)(b % nbufs_total) * ius;
        if (to_bufs)
            memcpy(buf, lin + off, n);
        else
            memcpy(lin + off, buf, n);
    }
}

/* The physical floor: the same bytes, host region -> io_unit buffers -> media (or back),
 * each of the queue_depth IOs in flight through its own buffers, as in the target; IO by
 * IO (both copies of an IO, then the next IO), or batched: a run of queue_depth IOs' first
 * copies, then their second copies. */
static int64_t memcpy_floor(struct nrt_rig *r, int conn, const struct nrt_workload *w, bool batched)
{
    struct wl g;
    int rc = wl_check(r, conn, w, &g);
    if (rc)
        return rc;
    uint8_t *host = sv_host_mr_data(r->f, w->mkey);
    uint8_t *media = nvmf_emu_namespace_data(nrt_transport_emu(r->t), 0, w->nsid);
    uint8_t *arena = NULL;
    uint32_t ius = 0, total = 0;
    if (!host || !media || nrt_transport_buffer_arena(r->t, &arena, &total, &ius) < 0)
        return rig_fail(r, NRT_EINVAL, "no host region %u, namespace %u or buffers", w->mkey,
                        w->nsid);
    uint32_t per_io = (w->io_bytes + ius - 1) / ius;
    bool write = w->opcode == NRT_OPC_WRITE;
    uint64_t run = batched ? g.qd : 1;
    for (uint64_t i0 = 0; i0 < w->ios; i0 += run) {
        uint64_t end = i0 + run < w->ios ? i0 + run : w->ios;
        for (int second = 0; second < 2; second++)
            for (uint64_t i = i0; i < end; i++) {
                uint32_t slot = (uint32_t)(i % g.qd);
                uint8_t *h = host + (size_t)slot * w->io_bytes;
                uint8_t *m = media + (size_t)slot * w->io_bytes;
                /* first: the source into the buffers; second: the buffers out */
                uint8_t *lin = second ? (write ? m : h) : (write ? h : m);
                chunked_copy(arena, total, slot * per_io, ius, lin, w->io_bytes, !second);
            }
    }
    return (int64_t)w->ios;
}

int64_t nrt_rig_memcpy_baseline(struct nrt_rig *r, int conn, const struct nrt_workload *w)
{
    return memcpy_floor(r, conn, w, false);
}

int64_t nrt_rig_memcpy_batched(struct nrt_rig *r, int conn, const struct nrt_workload *w)
{
    return memcpy_floor(r, conn, w, true);
}
