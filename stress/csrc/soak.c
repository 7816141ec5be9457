/*
 * soak.c — one seeded lifecycle of the soak: options, ports, subsystems, namespaces,
 * controllers (admin + IO qpairs), rounds of IO under drawn delivery/poll schedules and
 * faults, then a graceful or abrupt teardown.  Everything goes through nrt.h: the rig plays
 * the host, the transport calls add subsystems and namespaces, the pool counters and the
 * destroy report are the evidence.
 *
 * What is checked, and when:
 *   POOL-1  after every round: data-WR pool ring free + group caches + held by requests =
 *           capacity, no WR in two places (the target's audit), capacity = configured size;
 *   POOL-3  after every round: the same for the shared data buffers; every live qpair's
 *           request slots and receive WRs add up to its depth, none lost while it is live;
 *   DEPTH-1 after every round: no qpair above its negotiated read or send depth;
 *   POOL-2  at quiescence and in the destroy report: every WR and every buffer back;
 *   IO-1    every response is for a CID outstanding on that qpair (so no IO is answered
 *           twice), with success or a status that is legal for what happened to it (NVMe
 *           base 2.0 4.6.1); at quiescence every IO of a qpair no fault touched answered;
 *   DATA-1  every successful read returns what the last successful write put there: each
 *           logical block carries a stamp (namespace, LBA, write tag) at its start and a
 *           trailer at its end, poisoned in the host buffer before the read is sent;
 *   LIVE-1  teardown drains to quiescence: a drain that stops with work left is a stall.
 *
 * Chunks (io_size bytes of a namespace) are the unit of IO: at most one IO is in flight on
 * a chunk, so every read has one right answer.  A chunk an unanswered or failed write may
 * still change is retired for the rest of the lifecycle.
 */
#include "soak.h"
#include "soak_rng.h"
#include "nrt.h"
#include "nvmf_wire.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONNS 16
#define MAX_PORTS 2
#define MAX_SUBS 2
#define MAX_NS 4
#define ADMIN_DEPTH 4
#define DRAIN_ROUNDS 100000
#define CONNECT_SCRATCH 16
#define SUBNQN_FMT "nqn.2026-12.io.nrt-soak:subsystem-%d"
#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-6e7274736f6b"
#define CC_ENABLE 0x00460001u     /* EN, IOSQES 6, IOCQES 4 (NVMe base 2.0 3.1.3.5) */
#define REG_CC 0x14
#define SC_ABORTED_SQ_DELETION 0x0008

const char *const soak_fault_names[SOAK_F_COUNT] = {
    "qpair_error", "port_down", "post_failure", "host_disconnect", "qpair_disconnect",
    "remote_access_error", "bdev_error", "abrupt_destroy"};

enum { HOW_KEYED, HOW_MULTI, HOW_ICD };
enum { CH_FREE, CH_BUSY, CH_RETIRED };

struct io_slot {
    uint8_t busy, opc, how, ns;
    uint32_t chunk;
    uint64_t tag;
};

struct hconn {
    int conn;
    uint16_t qid;
    uint32_t depth;            /* host queue depth (HRQSIZE) */
    uint32_t group;
    int port;
    int sub;                   /* its controller's subsystem */
    int faulted;               /* a fault touched it: unanswered IO is legal */
    int dead;                  /* nothing more is submitted on it */
    int qpair_gone;            /* its target qpair is destroyed (a handle never comes back) */
    uint32_t outstanding;
    struct io_slot *slot;      /* by CID */
    uint16_t *freecid;
    uint32_t nfree;
    int64_t mkey;              /* its host memory: CID c's data at c * io_size */
    uint64_t miova;
    uint8_t *mem;              /* the same memory as the host addresses it: stamps are
                                  written and checked in place (nrt_rig_mr_data) */
};

struct nspace {
    int sub;
    uint32_t nsid, block, nchunks;
    uint32_t nlb;              /* logical blocks in a chunk (io_size / block) */
    uint32_t maxd;             /* most keyed descriptors a list for one chunk may have */
    uint64_t *tag;             /* last successful write's tag (0: never written, zeros) */
    uint8_t *state;
};

struct life {
    const struct soak_config *cfg;
    struct soak_figures *f;
    uint64_t index, seed;
    struct soak_rng rng;
    struct nrt_opts o;
    uint32_t caps;
    struct nrt_rig *r;
    struct nrt_transport *t;
    int nports, port_down[MAX_PORTS];
    uint32_t port_up_round[MAX_PORTS];
    int nsubs;
    struct nspace ns[MAX_NS];
    int nns;
    struct hconn c[MAX_CONNS];
    int nc;
    uint32_t max_depth;        /* deepest IO qpair this lifecycle draws */
    uint32_t max_qpairs_used;
    int64_t ckey;
    uint64_t ciova;
    uint32_t cslot;
    uint32_t io_size;
    uint64_t tagseq;
    uint16_t injected_status;
    uint32_t round;
    int failed;
    uint64_t wr_capacity, buf_capacity;
    uint8_t *buf;              /* capsule and data scratch */
    uint8_t *batch;            /* capsules of one submit batch, end to end */
    uint32_t *batch_lens;
    uint16_t *batch_cids;
};

/* ---- violations ----------------------------------------------------------------------- */

static void violation(struct life *L, const char *check, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void violation(struct life *L, const char *check, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct soak_figures *f = L->f;
    if (f->nviolations < SOAK_MAX_VIOLATIONS) {
        struct soak_violation *v = &f->v[f->nviolations];
        v->lifecycle = L->index;
        v->lifecycle_seed = L->seed;
        v->round = L->round;
        snprintf(v->check, sizeof(v->check), "%s", check);
        snprintf(v->message, sizeof(v->message), "%s", msg);
    }
    f->nviolations++;
    fprintf(stderr, "soak: VIOLATION %s in lifecycle %llu (run seed %llu, round %u): %s\n",
            check, (unsigned long long)L->index, (unsigned long long)L->cfg->seed, L->round,
            msg);
    L->failed = 1;
}

/* ---- options -------------------------------------------------------------------------- */

static void draw_options(struct life *L, struct nrt_opts *o)
{
    static const uint32_t qds[] = {8, 16, 32, 32, 64, 128};
    static const uint32_t units[] = {4096, 8192, 8192, 16384};
    static const uint32_t icds[] = {0, 1024, 4096, 4096, 8192};
    struct soak_rng *g = &L->rng;
    nrt_opts_default(o);
    o->max_queue_depth = SOAK_PICK(g, qds);
    o->io_unit_size = SOAK_PICK(g, units);
    uint32_t io = L->io_size > o->io_unit_size ? L->io_size : o->io_unit_size;
    o->max_io_size = (io + o->io_unit_size - 1) / o->io_unit_size * o->io_unit_size;
    if (o->max_io_size < NRT_MIN_IO_SIZE)
        o->max_io_size = NRT_MIN_IO_SIZE;
    if (soak_chance(g, 1, 3))
        o->max_io_size *= 2;
    o->in_capsule_data_size = SOAK_PICK(g, icds);
    o->num_poll_groups = soak_range(g, 1, 3);
    static const uint32_t read_depths[] = {1, 1, 2, 3, 4, 8, 16};
    o->max_read_depth = SOAK_PICK(g, read_depths);
    o->buf_cache_size = soak_range(g, 0, 32);
    o->wr_cache_size = soak_range(g, 0, 32);
    o->wr_pool_multiplier = soak_range(g, 1, 16);
    o->max_sgl_descriptors = soak_range(g, 1, 16);
    o->max_qpairs = 24;
    o->max_ports = MAX_PORTS;
    o->max_subsystems = MAX_SUBS;
    o->max_namespaces = 2;
    o->max_memory_regions = MAX_CONNS + 2;
    o->defects = L->cfg->defects;
    /* pools: in a third of the lifecycles just above the minimum that cannot deadlock (so
     * IO waits for WRs and buffers and the pending queues are exercised), else roomier */
    int tight = soak_chance(g, 1, 3);
    uint64_t min_wr = nrt_opts_min_wr_pool(o);
    uint64_t cap = (uint64_t)o->max_queue_depth * o->wr_pool_multiplier;
    if (cap < min_wr || soak_chance(g, 1, 3))
        o->wr_pool_size = (uint32_t)(min_wr + (tight ? soak_below(g, 8) : soak_range(g, 64, 512)));
    uint64_t min_buf = nrt_opts_min_buffers(o);
    o->num_shared_buffers =
        (uint32_t)(min_buf + (tight ? soak_below(g, 8) : soak_range(g, 64, 512)));
    uint32_t need_send = nrt_opts_max_wrs_per_request(o) + 1;
    o->max_send_depth = soak_chance(g, 1, 2) ? 0 : need_send + soak_below(g, 64);
    nrt_opts_fit(o);
}

/* ---- setup helpers ------------------------------------------------------------------- */

static int conn_alloc(struct life *L)
{
    return L->nc < MAX_CONNS ? L->nc++ : -1;
}

/* Submits one admin/fabrics capsule, drains, and returns its response's status. */
static int command(struct life *L, struct hconn *h, const void *cap, uint32_t len,
                   struct nrt_response *rsp)
{
    int rc = nrt_rig_submit(L->r, h->conn, cap, len);
    if (rc < 0)
        return rc;
    struct nrt_drain_result dr;
    nrt_rig_drain(L->r, DRAIN_ROUNDS, &dr);
    int n = nrt_rig_reap(L->r, h->conn, rsp, 1);
    if (n != 1) {
        violation(L, "LIVE-1", "connection %d: a %s command got no response after a drain "
                  "of %u rounds", h->conn, ((const uint8_t *)cap)[0] == NRT_OPC_FABRICS
                  ? "fabrics" : "admin", dr.rounds);
        return NRT_ESTATE;
    }
    return 0;
}

static int fabric_connect(struct life *L, struct hconn *h, int sub, uint16_t cntlid,
                          uint16_t *out_cntlid)
{
    uint8_t *cap = L->buf;
    uint32_t len = NVMF_SQE_SIZE;
    memset(cap, 0, NVMF_SQE_SIZE + NVMF_CONNECT_DATA_SIZE);
    struct nvmf_connect_sqe *sqe = (struct nvmf_connect_sqe *)cap;
    sqe->opc = NRT_OPC_FABRICS;
    sqe->fuse_psdt = 1u << 6;
    sqe->cid = 1;
    sqe->fctype = NRT_FCTYPE_CONNECT;
    sqe->qid = h->qid;
    sqe->sqsize = (uint16_t)(h->depth - 1);
    struct nvmf_connect_data d;
    memset(&d, 0, sizeof(d));
    for (int i = 0; i < 16; i++)
        d.hostid[i] = (uint8_t)(0x50 + i);
    d.cntlid = h->qid ? cntlid : 0xFFFF;   /* FFFFh: dynamic controller (NVMe-oF 1.1 3.3) */
    snprintf(d.subnqn, sizeof(d.subnqn), SUBNQN_FMT, sub);
    snprintf(d.hostnqn, sizeof(d.hostnqn), "%s", HOSTNQN);
    if (L->o.in_capsule_data_size >= NVMF_CONNECT_DATA_SIZE) {
        sqe->sgl1.unkeyed.length = NVMF_CONNECT_DATA_SIZE;
        sqe->sgl1.unkeyed.type_subtype = NVME_SGL_TYPE_DATA_BLOCK << 4 | NVME_SGL_SUBTYPE_OFFSET;
        memcpy(cap + NVMF_SQE_SIZE, &d, sizeof(d));
        len += NVMF_CONNECT_DATA_SIZE;
    } else {
        uint64_t off = (uint64_t)(L->cslot++ % CONNECT_SCRATCH) * NVMF_CONNECT_DATA_SIZE;
        nrt_rig_mr_write(L->r, (uint32_t)L->ckey, off, &d, sizeof(d));
        nvme_sgl_keyed_set(&sqe->sgl1.keyed, L->ciova + off, NVMF_CONNECT_DATA_SIZE,
                           (uint32_t)L->ckey, NVME_SGL_SUBTYPE_ADDRESS);
    }
    struct nrt_response rsp;
    int rc = command(L, h, cap, len, &rsp);
    if (rc < 0)
        return rc;
    if (rsp.status != NRT_SC_SUCCESS) {
        violation(L, "SETUP", "fabrics Connect qid %u on connection %d failed: status 0x%04x",
                  h->qid, h->conn, rsp.status);
        return NRT_ESTATE;
    }
    if (out_cntlid)
        *out_cntlid = (uint16_t)rsp.result;
    return 0;
}

static int enable_controller(struct life *L, struct hconn *h)
{
    struct nvmf_property_sqe sqe;
    memset(&sqe, 0, sizeof(sqe));
    sqe.opc = NRT_OPC_FABRICS;
    sqe.fuse_psdt = 1u << 6;
    sqe.cid = 2;
    sqe.fctype = NRT_FCTYPE_PROPERTY_SET;
    sqe.ofst = REG_CC;
    sqe.value = CC_ENABLE;
    struct nrt_response rsp;
    int rc = command(L, h, &sqe, sizeof(sqe), &rsp);
    if (rc < 0)
        return rc;
    if (rsp.status != NRT_SC_SUCCESS) {
        violation(L, "SETUP", "Property Set CC.EN on connection %d failed: status 0x%04x",
                  h->conn, rsp.status);
        return NRT_ESTATE;
    }
    return 0;
}

/* An RDMA CM connection for qid with host depth `depth`; returns its table index. */
static int open_conn(struct life *L, int port, int sub, uint16_t qid, uint32_t depth)
{
    int i = conn_alloc(L);
    if (i < 0)
        return -1;
    struct hconn *h = &L->c[i];
    memset(h, 0, sizeof(*h));
    h->qid = qid;
    h->depth = depth;
    h->port = port;
    h->sub = sub;
    h->group = soak_below(&L->rng, L->o.num_poll_groups);
    struct nrt_connect_params p;
    nrt_connect_params_default(&p, (uint32_t)port, h->group, qid, depth);
    int conn = nrt_rig_connect(L->r, &p);
    if (conn < 0) {
        violation(L, "SETUP", "RDMA CM connect qid %u depth %u: %s", qid, depth,
                  nrt_rig_error(L->r));
        h->dead = 1;
        return -1;
    }
    h->conn = conn;
    struct nrt_conn_info ci;
    nrt_rig_conn_info(L->r, conn, &ci);
    if (ci.state != 2) {
        violation(L, "SETUP", "RDMA CM connect qid %u depth %u not established (state %u, "
                  "reject status %u)", qid, depth, ci.state, ci.reject_sts);
        h->dead = 1;
        return -1;
    }
    if (qid) {
        h->mkey = nrt_rig_mr_register(L->r, (uint64_t)depth * L->io_size);
        if (h->mkey <= 0) {
            violation(L, "SETUP", "host memory: %s", nrt_rig_error(L->r));
            return -1;
        }
        h->miova = nrt_rig_mr_iova(L->r, (uint32_t)h->mkey);
        h->mem = nrt_rig_mr_data(L->r, (uint32_t)h->mkey);
        if (!h->mem) {
            violation(L, "SETUP", "host memory: %s", nrt_rig_error(L->r));
            return -1;
        }
    }
    h->slot = calloc(depth, sizeof(*h->slot));
    h->freecid = calloc(depth, sizeof(*h->freecid));
    if (!h->slot || !h->freecid) {
        violation(L, "SETUP", "out of memory");
        return -1;
    }
    for (uint32_t c = 0; c < depth; c++)
        h->freecid[c] = (uint16_t)(depth - 1 - c);
    h->nfree = depth;
    L->f->connects++;
    L->max_qpairs_used++;
    return i;
}

/* A controller: admin queue (Connect, CC.EN = 1) then IO queues (NVMe base 2.0 3.5.1). */
static void connect_controller(struct life *L)
{
    static const uint32_t depths[] = {4, 8, 16, 32, 32, 64, 128};
    int up[MAX_PORTS], nup = 0;
    for (int p = 0; p < L->nports; p++)
        if (!L->port_down[p])
            up[nup++] = p;
    if (!nup)
        return;
    int port = up[soak_below(&L->rng, (uint32_t)nup)];
    int sub = (int)soak_below(&L->rng, (uint32_t)L->nsubs);
    uint32_t nio = soak_range(&L->rng, 1, 3);
    if (L->max_qpairs_used + 1 + nio > L->o.max_qpairs)
        return;
    int ai = open_conn(L, port, sub, 0, ADMIN_DEPTH);
    if (ai < 0)
        return;
    uint16_t cntlid = 0;
    if (fabric_connect(L, &L->c[ai], sub, 0, &cntlid) < 0 || enable_controller(L, &L->c[ai]) < 0)
        return;
    L->c[ai].dead = 1;   /* the admin queue carries no IO */
    for (uint32_t q = 1; q <= nio && !L->failed; q++) {
        uint32_t d = SOAK_PICK(&L->rng, depths);
        if (d > L->max_depth)
            d = L->max_depth;
        int ii = open_conn(L, port, sub, (uint16_t)q, d);
        if (ii < 0 || fabric_connect(L, &L->c[ii], sub, cntlid, NULL) < 0)
            return;
    }
}

/* ---- IO --------------------------------------------------------------------------------- */

static inline void stamp_put(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint64_t stamp_get(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t stamp_id(const struct nspace *n, uint64_t lba)
{
    return (uint64_t)n->nsid << 48 | lba;
}

/* Block stamps of a write: (ns, LBA) and the tag at the block's start, tag ^ LBA at its
 * end; a never-written block is all zeros. */
static void stamp_blocks(const struct nspace *n, uint64_t slba, uint64_t tag, uint8_t *data,
                         uint32_t len)
{
    for (uint32_t off = 0, b = 0; off < len; off += n->block, b++) {
        stamp_put(data + off, stamp_id(n, slba + b));
        stamp_put(data + off + 8, tag);
        stamp_put(data + off + n->block - 8, tag ^ (slba + b));
    }
}

static const char *check_blocks(const struct nspace *n, uint64_t slba, uint64_t tag,
                                const uint8_t *data, uint32_t len, uint32_t *bad_block)
{
    for (uint32_t off = 0, b = 0; off < len; off += n->block, b++) {
        uint64_t id = stamp_get(data + off), t = stamp_get(data + off + 8);
        uint64_t tail = stamp_get(data + off + n->block - 8);
        *bad_block = b;
        if (tag == 0) {
            if (id || t || tail)
                return "a never-written block is not zero";
            continue;
        }
        if (id != stamp_id(n, slba + b))
            return "block carries another LBA's stamp";
        if (t != tag)
            return "block carries another write's data";
        if (tail != (tag ^ (slba + b)))
            return "block's trailer does not match its header (partial transfer)";
    }
    return NULL;
}

static const uint8_t poison[16] = {0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5,
                                   0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A};

static void set_keyed(const struct hconn *h, union nvme_sgl_desc *d, uint64_t off, uint32_t len)
{
    nvme_sgl_keyed_set(&d->keyed, h->miova + off, len, (uint32_t)h->mkey,
                       NVME_SGL_SUBTYPE_ADDRESS);
}

/* Prepares one IO on h: its capsule at cap (length in *len), its CID, chunk and host
 * buffer reserved.  Returns 1, or 0 with nothing to do (no CID or chunk free). */
static int prepare_io(struct life *L, struct hconn *h, uint8_t *cap, uint32_t *len_out)
{
    if (!h->nfree)
        return 0;
    struct soak_rng *g = &L->rng;
    int mine[MAX_NS], nmine = 0;
    for (int i = 0; i < L->nns; i++)
        if (L->ns[i].sub == h->sub)
            mine[nmine++] = i;
    if (!nmine)
        return 0;
    struct nspace *n = &L->ns[mine[soak_below(g, (uint32_t)nmine)]];
    uint32_t pick = soak_below(g, 64);
    uint8_t opc = pick == 0 ? NRT_OPC_FLUSH : pick < 27 ? NRT_OPC_WRITE : NRT_OPC_READ;
    uint32_t chunk = 0;
    if (opc != NRT_OPC_FLUSH) {
        int tries = 0;
        do
            chunk = soak_below(g, n->nchunks);
        while (n->state[chunk] != CH_FREE && ++tries < 4);
        if (n->state[chunk] != CH_FREE)
            return 0;
    }
    uint16_t cid = h->freecid[h->nfree - 1];
    uint32_t nlb = n->nlb;
    uint64_t slba = (uint64_t)chunk * nlb;
    uint64_t hoff = (uint64_t)cid * L->io_size;
    memset(cap, 0, NVMF_SQE_SIZE);
    struct nvme_sqe *sqe = (struct nvme_sqe *)cap;
    sqe->opc = opc;
    sqe->fuse_psdt = 1u << 6;   /* PSDT 01b: SGLs (NVMe-oF 1.1 2.1) */
    sqe->cid = cid;
    sqe->nsid = n->nsid;
    uint32_t len = NVMF_SQE_SIZE;
    uint8_t how = HOW_KEYED;
    uint64_t tag = 0;
    if (opc != NRT_OPC_FLUSH) {
        sqe->cdw10 = (uint32_t)slba;
        sqe->cdw11 = (uint32_t)(slba >> 32);
        sqe->cdw12 = nlb - 1;   /* NLB is 0's based (NVMe NVM command set 3.2.6) */
        uint32_t icd = L->o.in_capsule_data_size, maxd = n->maxd;
        if (opc == NRT_OPC_WRITE && L->io_size <= icd && soak_chance(g, 1, 8))
            how = HOW_ICD;
        else if (maxd >= 2 && soak_chance(g, 1, 8))
            how = HOW_MULTI;
        if (opc == NRT_OPC_WRITE) {
            tag = ++L->tagseq;
            /* in the capsule, or in the host buffer the target reads */
            stamp_blocks(n, slba, tag, how == HOW_ICD ? cap + NVMF_SQE_SIZE : h->mem + hoff,
                         L->io_size);
        } else {
            /* poison every stamp first: a read that moves nothing (or part) is seen */
            uint8_t *data = h->mem + hoff;
            for (uint32_t off = 0; off < L->io_size; off += n->block) {
                memcpy(data + off, poison, 16);
                memcpy(data + off + n->block - 8, poison, 8);
            }
        }
        if (how == HOW_ICD) {
            sqe->sgl1.unkeyed.length = L->io_size;
            sqe->sgl1.unkeyed.type_subtype =
                NVME_SGL_TYPE_DATA_BLOCK << 4 | NVME_SGL_SUBTYPE_OFFSET;
            len += L->io_size;
        } else if (how == HOW_MULTI) {
            /* a last segment in the capsule listing ndesc keyed blocks, block aligned,
             * in host order (NVMe base 2.0 4.4; NVMe/RDMA 1.0 2.2) */
            uint32_t nd = soak_range(g, 2, maxd), blocks = nlb, done = 0;
            union nvme_sgl_desc *list = (union nvme_sgl_desc *)(cap + NVMF_SQE_SIZE);
            for (uint32_t i = 0; i < nd; i++) {
                uint32_t nb = i + 1 == nd ? blocks - done : (blocks - done) / (nd - i);
                set_keyed(h, &list[i], hoff + (uint64_t)done * n->block, nb * n->block);
                done += nb;
            }
            sqe->sgl1.unkeyed.length = nd * NVMF_SGL_DESC_SIZE;
            sqe->sgl1.unkeyed.type_subtype =
                NVME_SGL_TYPE_LAST_SEGMENT << 4 | NVME_SGL_SUBTYPE_OFFSET;
            len += nd * NVMF_SGL_DESC_SIZE;
        } else {
            set_keyed(h, &sqe->sgl1, hoff, L->io_size);
        }
    }
    h->nfree--;
    h->slot[cid] = (struct io_slot){1, opc, how, (uint8_t)(n - L->ns), chunk, tag};
    if (opc != NRT_OPC_FLUSH)
        n->state[chunk] = CH_BUSY;
    *len_out = len;
    return 1;
}

/* A prepared IO the connection refused: its CID and chunk go back. */
static void unprepare_io(struct life *L, struct hconn *h, uint16_t cid)
{
    struct io_slot *s = &h->slot[cid];
    if (s->opc != NRT_OPC_FLUSH && L->ns[s->ns].state[s->chunk] == CH_BUSY)
        L->ns[s->ns].state[s->chunk] = CH_FREE;
    s->busy = 0;
    h->freecid[h->nfree++] = cid;
}

/* Tops h up to `fill` IOs outstanding, the new capsules sent as one batch. */
static void fill_conn(struct life *L, struct hconn *h, uint32_t fill)
{
    if (h->dead || h->outstanding >= fill)
        return;
    uint32_t nb = 0;
    size_t pos = 0;
    while (h->outstanding + nb < fill &&
           prepare_io(L, h, L->batch + pos, &L->batch_lens[nb])) {
        memcpy(&L->batch_cids[nb], L->batch + pos + 2, 2);
        pos += L->batch_lens[nb];
        nb++;
    }
    if (!nb || L->failed)
        return;
    int sent = nrt_rig_submit_batch(L->r, h->conn, L->batch, L->batch_lens, nb);
    if (sent < (int)nb) {
        if (!h->faulted)
            violation(L, "IO-1", "connection %d (qid %u) refused a capsule with no fault on "
                      "it: %s", h->conn, h->qid, nrt_rig_error(L->r));
        h->dead = 1;
        for (uint32_t i = sent < 0 ? 0 : (uint32_t)sent; i < nb; i++)
            unprepare_io(L, h, L->batch_cids[i]);
        if (sent < 0)
            sent = 0;
    }
    h->outstanding += (uint32_t)sent;
    if (h->outstanding > L->f->max_queue_depth_seen)
        L->f->max_queue_depth_seen = h->outstanding;
}

static int status_legal(struct life *L, const struct hconn *h, uint16_t st)
{
    if (st == NRT_SC_SUCCESS)
        return 1;
    if (L->injected_status && st == L->injected_status)
        return 1;
    /* a transport or path fault: the command may end in a data transfer error, an internal
     * error, or be aborted with its queue (NVMe base 2.0 4.6.1.2.1) */
    return h->faulted && (st == NRT_SC_DATA_TRANSFER_ERROR || st == NRT_SC_INTERNAL_ERROR ||
                          st == SC_ABORTED_SQ_DELETION);
}

static void complete_io(struct life *L, struct hconn *h, const struct nrt_response *rsp)
{
    struct soak_figures *f = L->f;
    if (rsp->unexpected || rsp->cid >= h->depth || !h->slot[rsp->cid].busy) {
        violation(L, "IO-1", "connection %d (qid %u): a response for CID %u, which is not "
                  "outstanding (an IO answered twice, or never sent)", h->conn, h->qid,
                  rsp->cid);
        return;
    }
    struct io_slot *s = &h->slot[rsp->cid];
    struct nspace *n = &L->ns[s->ns];
    if (!status_legal(L, h, rsp->status)) {
        violation(L, "IO-1", "connection %d (qid %u) CID %u %s: status 0x%04x is not legal "
                  "here (%s)", h->conn, h->qid, rsp->cid,
                  s->opc == NRT_OPC_READ ? "read" : s->opc == NRT_OPC_WRITE ? "write" : "flush",
                  rsp->status, h->faulted ? "after a fault" : "no fault touched it");
        return;
    }
    f->ios++;
    if (s->opc == NRT_OPC_FLUSH) {
        f->flushes++;
    } else {
        f->bytes += L->io_size;
        f->multi_descriptor += s->how == HOW_MULTI;
        f->in_capsule += s->how == HOW_ICD;
        if (s->opc == NRT_OPC_READ)
            f->reads++;
        else
            f->writes++;
    }
    if (rsp->status != NRT_SC_SUCCESS) {
        f->io_errors++;
        if (s->opc == NRT_OPC_WRITE)
            n->state[s->chunk] = CH_RETIRED;   /* media content unknown now */
    } else if (s->opc == NRT_OPC_WRITE && n->state[s->chunk] != CH_RETIRED) {
        n->tag[s->chunk] = s->tag;
    } else if (s->opc == NRT_OPC_READ && n->state[s->chunk] != CH_RETIRED) {
        uint32_t bad = 0;
        const char *why = check_blocks(n, (uint64_t)s->chunk * n->nlb,
                                       n->tag[s->chunk], h->mem + (uint64_t)rsp->cid * L->io_size,
                                       L->io_size, &bad);
        if (why) {
            violation(L, "DATA-1", "connection %d CID %u: read of nsid %u chunk %u (%s): "
                      "block %u: %s", h->conn, rsp->cid, n->nsid, s->chunk,
                      s->how == HOW_MULTI ? "descriptor list" : "one keyed descriptor", bad,
                      why);
            return;
        }
        f->reads_verified++;
    }
    if (s->opc != NRT_OPC_FLUSH && n->state[s->chunk] == CH_BUSY)
        n->state[s->chunk] = CH_FREE;
    s->busy = 0;
    h->freecid[h->nfree++] = rsp->cid;
    h->outstanding--;
}

static void reap_all(struct life *L)
{
    struct nrt_response rsp[64];
    for (int i = 0; i < L->nc && !L->failed; i++) {
        struct hconn *h = &L->c[i];
        if (!h->slot || h->qid == 0)
            continue;
        /* fewer than asked: nothing more was received (nrt_rig_reap takes every response
         * the host has before it returns short) */
        int n = 64;
        while (!L->failed && n == 64 && (n = nrt_rig_reap(L->r, h->conn, rsp, 64)) > 0)
            for (int k = 0; k < n && !L->failed; k++)
                complete_io(L, h, &rsp[k]);
    }
}

/* ---- faults ----------------------------------------------------------------------------- */

/* A fault touched h: what it had outstanding may never be answered, and a write of it may
 * still land later, so its chunks leave the game. */
static void mark_faulted(struct life *L, struct hconn *h)
{
    h->faulted = 1;
    h->dead = 1;
    for (uint32_t c = 0; c < h->depth; c++)
        if (h->slot[c].busy && h->slot[c].opc != NRT_OPC_FLUSH)
            L->ns[h->slot[c].ns].state[h->slot[c].chunk] = CH_RETIRED;
}

static struct hconn *pick_live_io(struct life *L)
{
    int live[MAX_CONNS], n = 0;
    for (int i = 0; i < L->nc; i++)
        if (L->c[i].slot && L->c[i].qid && !L->c[i].dead)
            live[n++] = i;
    return n ? &L->c[live[soak_below(&L->rng, (uint32_t)n)]] : NULL;
}

static void inject_fault(struct life *L)
{
    struct soak_rng *g = &L->rng;
    enum soak_fault k = (enum soak_fault)soak_below(g, SOAK_F_ABRUPT_DESTROY);
    struct hconn *h = pick_live_io(L);
    int rc = -1;
    if (k == SOAK_F_BDEV_ERROR) {
        L->injected_status = NRT_SC_UNRECOVERED_READ_ERROR;
        rc = nrt_bdev_inject_error(L->t, soak_range(g, 1, 3), L->injected_status);
    } else if (k == SOAK_F_PORT_DOWN) {
        if (!h || L->port_down[h->port])
            return;
        rc = nrt_rig_port_down(L->r, h->port);
        if (rc >= 0) {
            L->port_down[h->port] = 1;
            L->port_up_round[h->port] = L->round + soak_range(g, 1, 3);
            for (int i = 0; i < L->nc; i++)
                if (L->c[i].slot && L->c[i].port == h->port)
                    mark_faulted(L, &L->c[i]);
        }
    } else {
        if (!h)
            return;
        /* the fault is armed or fires now: either way the connection is faulted first */
        mark_faulted(L, h);
        switch (k) {
        case SOAK_F_QPAIR_ERROR: rc = nrt_rig_qpair_error(L->r, h->conn); break;
        case SOAK_F_POST_FAILURE:
            rc = nrt_rig_fail_posts(L->r, h->conn, soak_range(g, 1, 3));
            break;
        case SOAK_F_HOST_DISCONNECT: rc = nrt_rig_host_disconnect(L->r, h->conn); break;
        case SOAK_F_QPAIR_DISCONNECT: rc = nrt_rig_qpair_disconnect(L->r, h->conn); break;
        case SOAK_F_REMOTE_ACCESS: rc = nrt_rig_remote_access_error(L->r, h->conn, 1); break;
        default: break;
        }
    }
    if (rc >= 0)
        L->f->faults[k]++;
}

static void ports_back_up(struct life *L, int all)
{
    for (int p = 0; p < L->nports; p++)
        if (L->port_down[p] && (all || L->round >= L->port_up_round[p])) {
            nrt_rig_port_up(L->r, p);
            L->port_down[p] = 0;
        }
}

/* ---- schedules ------------------------------------------------------------------------ */

/* Deliver everything, complete the block device, poll every group; until nothing moves. */
static void schedule_burst(struct life *L)
{
    nrt_bdev_set_auto(L->t, 1);
    for (int pass = 0; pass < 64; pass++) {
        uint64_t before = nrt_rig_progress(L->r);
        for (int i = 0; i < L->nc; i++)
            if (L->c[i].slot)
                nrt_rig_deliver_all_h2t(L->r, L->c[i].conn);
        for (uint32_t g = 0; g < L->o.num_poll_groups; g++)
            nrt_rig_poll(L->r, (int)g);
        while (nrt_bdev_pending(L->t) > 0)
            nrt_bdev_complete(L->t, 0, NRT_SC_SUCCESS);
        for (int i = 0; i < L->nc; i++)
            if (L->c[i].slot)
                nrt_rig_deliver_all_t2h(L->r, L->c[i].conn);
        for (uint32_t g = 0; g < L->o.num_poll_groups; g++)
            nrt_rig_poll(L->r, (int)g);
        reap_all(L);
        if (nrt_rig_progress(L->r) == before || L->failed)
            break;
    }
    nrt_bdev_set_auto(L->t, 0);
}

static void inject_fault(struct life *L);

/* A drawn interleaving of micro-events: single deliveries in either direction, polls of
 * any group, block device completions in any order, CM/async processing; with fault_at,
 * a fault strikes in the middle, with IO caught in whatever state it reached. */
static void schedule_micro(struct life *L, int fault_mid)
{
    uint32_t ev[512];
    int conns[MAX_CONNS], nconn = 0;
    uint32_t outstanding = 0;
    for (int i = 0; i < L->nc; i++)
        if (L->c[i].slot) {
            conns[nconn++] = L->c[i].conn;
            outstanding += L->c[i].outstanding;
        }
    /* enough events to move most IOs several steps (each takes about six), not more */
    uint32_t most = 32 + 8 * outstanding < 512 ? 32 + 8 * outstanding : 512;
    uint32_t n = soak_range(&L->rng, 16, most);
    if (!nconn)
        return;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = soak_below(&L->rng, 16), arg;
        uint32_t kind;
        if (k < 5) {
            kind = NRT_EV_DELIVER_H2T;
            arg = (uint32_t)conns[soak_below(&L->rng, (uint32_t)nconn)];
        } else if (k < 10) {
            kind = NRT_EV_DELIVER_T2H;
            arg = (uint32_t)conns[soak_below(&L->rng, (uint32_t)nconn)];
        } else if (k < 13) {
            kind = NRT_EV_POLL;
            arg = soak_below(&L->rng, L->o.num_poll_groups);
        } else if (k < 15) {
            kind = NRT_EV_BDEV;
            arg = soak_below(&L->rng, 8);
        } else {
            kind = NRT_EV_ACCEPT;
            arg = 0;
        }
        ev[i] = kind << 24 | arg;
    }
    uint32_t half = fault_mid ? soak_below(&L->rng, n) : n;
    if (nrt_rig_run(L->r, ev, half) < 0 ||
        (fault_mid && (inject_fault(L), nrt_rig_run(L->r, ev + half, n - half) < 0)))
        violation(L, "SETUP", "nrt_rig_run: %s", nrt_rig_error(L->r));
    reap_all(L);
}

/* ---- continuous checks ------------------------------------------------------------------- */

static void pool_check(struct life *L, const char *check, const char *what, int wr)
{
    struct nrt_pool_counts p;
    int rc = wr ? nrt_wr_pool_counts(L->t, &p) : nrt_buf_pool_counts(L->t, &p);
    if (rc < 0)
        return;
    uint64_t back = p.ring_free + p.cached;
    uint64_t cap = wr ? L->wr_capacity : L->buf_capacity;
    if ((L->caps & NRT_CAP_WR_HELD) && p.duplicates)
        violation(L, check, "%s: %llu object(s) in two places at once (ring %llu, cached "
                  "%llu, held %llu, capacity %llu)", what, (unsigned long long)p.duplicates,
                  (unsigned long long)p.ring_free, (unsigned long long)p.cached,
                  (unsigned long long)p.held, (unsigned long long)p.capacity);
    else if ((L->caps & NRT_CAP_WR_HELD) && (back + p.held != p.capacity || p.missing))
        violation(L, check, "%s: ring free %llu + cached %llu + held by requests %llu = %llu, "
                  "capacity %llu (%llu object(s) nowhere)", what,
                  (unsigned long long)p.ring_free, (unsigned long long)p.cached,
                  (unsigned long long)p.held, (unsigned long long)(back + p.held),
                  (unsigned long long)p.capacity, (unsigned long long)p.missing);
    else if (back > p.capacity)
        violation(L, check, "%s: ring free %llu + cached %llu exceed the capacity %llu", what,
                  (unsigned long long)p.ring_free, (unsigned long long)p.cached,
                  (unsigned long long)p.capacity);
    else if (p.capacity != cap)
        violation(L, check, "%s: capacity %llu, the configuration gives %llu", what,
                  (unsigned long long)p.capacity, (unsigned long long)cap);
    double frac = p.capacity ? (double)back / (double)p.capacity : 1.0;
    if (wr && frac < L->f->wr_low_water) {
        L->f->wr_low_water = frac;
        L->f->wr_low_water_count = back;
    }
    if (!wr && frac < L->f->buf_low_water) {
        L->f->buf_low_water = frac;
        L->f->buf_low_water_count = back;
    }
}

static void qpair_checks(struct life *L)
{
    if (!(L->caps & (NRT_CAP_RECEIVES | NRT_CAP_DEPTHS)))
        return;
    for (int i = 0; i < L->nc && !L->failed; i++) {
        struct hconn *h = &L->c[i];
        struct nrt_qpair_info q;
        if (!h->slot || h->qpair_gone)
            continue;
        int rc = nrt_rig_qpair_info(L->r, h->conn, &q);
        if (rc < 0) {
            h->qpair_gone = rc == NRT_ENOENT;   /* its target qpair is gone, for good */
            continue;
        }
        if (L->caps & NRT_CAP_RECEIVES) {
            uint32_t recvs = q.recv_posted + q.recv_in_cq + q.recv_held + q.recv_idle;
            if (q.slots_free + q.slots_used != q.depth)
                violation(L, "POOL-3", "qpair %d (qid %u): request slots free %u + used %u, "
                          "depth %u", q.id, q.qid, q.slots_free, q.slots_used, q.depth);
            else if (recvs != q.depth)
                violation(L, "POOL-3", "qpair %d (qid %u): receive WRs posted %u + in CQ %u + "
                          "held %u + idle %u = %u, depth %u", q.id, q.qid, q.recv_posted,
                          q.recv_in_cq, q.recv_held, q.recv_idle, recvs, q.depth);
            else if ((q.state == NRT_QP_ACTIVE || q.state == NRT_QP_CONNECTING) && q.recv_idle)
                violation(L, "POOL-3", "qpair %d (qid %u) is live but %u receive WR(s) are "
                          "neither posted nor held (lost receives)", q.id, q.qid, q.recv_idle);
        }
        if (L->caps & NRT_CAP_DEPTHS) {
            if (q.cur_read_depth > q.max_read_depth || q.cur_send_depth > q.max_send_depth)
                violation(L, "DEPTH-1", "qpair %d: read depth %u of %u, send depth %u of %u",
                          q.id, q.cur_read_depth, q.max_read_depth, q.cur_send_depth,
                          q.max_send_depth);
            if (q.max_read_depth_seen > L->f->max_read_depth_seen)
                L->f->max_read_depth_seen = q.max_read_depth_seen;
            if (q.max_send_depth_seen > L->f->max_send_depth_seen)
                L->f->max_send_depth_seen = q.max_send_depth_seen;
        }
    }
}

static void round_checks(struct life *L)
{
    L->f->pool_checks++;
    if (L->caps & NRT_CAP_WR_POOL)
        pool_check(L, "POOL-1", "data-WR pool", 1);
    if (!L->failed && (L->caps & NRT_CAP_BUF_POOL))
        pool_check(L, "POOL-3", "data buffers", 0);
    if (!L->failed)
        qpair_checks(L);
}

/* ---- teardown ----------------------------------------------------------------------------- */

static void quiesce(struct life *L)
{
    ports_back_up(L, 1);
    struct nrt_drain_result dr;
    nrt_rig_drain(L->r, DRAIN_ROUNDS, &dr);
    reap_all(L);
    if (L->failed)
        return;
    struct soak_figures *f = L->f;
    f->quiescence_rounds_total += dr.rounds;
    f->quiescence_count++;
    if (dr.rounds > f->quiescence_rounds_max)
        f->quiescence_rounds_max = dr.rounds;
    if (!dr.quiescent) {
        violation(L, "LIVE-1", "teardown drain %s after %u rounds with work left", dr.stalled
                  ? "stalled" : "did not finish", dr.rounds);
        return;
    }
    for (int i = 0; i < L->nc; i++) {
        struct hconn *h = &L->c[i];
        if (!h->slot || !h->outstanding)
            continue;
        if (!h->faulted) {
            violation(L, "IO-1", "connection %d (qid %u): %u IO(s) never answered at "
                      "quiescence, no fault touched them", h->conn, h->qid, h->outstanding);
            return;
        }
        f->lost_to_faults += h->outstanding;
    }
    struct nrt_pool_counts p;
    if ((L->caps & NRT_CAP_WR_POOL) && nrt_wr_pool_counts(L->t, &p) >= 0 &&
        (p.ring_free + p.cached != L->wr_capacity ||
         ((L->caps & NRT_CAP_WR_HELD) && p.held))) {
        violation(L, "POOL-2", "data-WR pool returned %llu of %llu at quiescence (%llu still "
                  "held by requests)", (unsigned long long)(p.ring_free + p.cached),
                  (unsigned long long)L->wr_capacity, (unsigned long long)p.held);
        return;
    }
    if ((L->caps & NRT_CAP_BUF_POOL) && nrt_buf_pool_counts(L->t, &p) >= 0 &&
        (p.ring_free + p.cached != L->buf_capacity ||
         ((L->caps & NRT_CAP_WR_HELD) && p.held)))
        violation(L, "POOL-3", "data buffers returned %llu of %llu at quiescence (%llu still "
                  "held)", (unsigned long long)(p.ring_free + p.cached),
                  (unsigned long long)L->buf_capacity, (unsigned long long)p.held);
}

static void destroy(struct life *L)
{
    struct nrt_destroy_report rep;
    memset(&rep, 0, sizeof(rep));
    int rc = nrt_rig_destroy(L->r, &rep);
    L->r = NULL;
    L->t = NULL;
    if (L->failed)
        return;
    /* each count is judged only where the target declares it (NRT_CAP_*), as the gate's
     * judging scope does */
    int wrs = (L->caps & NRT_CAP_WR_POOL) != 0, bufs = (L->caps & NRT_CAP_BUF_POOL) != 0;
    int report = (L->caps & NRT_CAP_DESTROY_REPORT) != 0;
    if (rc < 0)
        violation(L, "POOL-2", "destroy failed: %d", rc);
    else if (wrs && rep.wr_returned != L->wr_capacity)
        violation(L, "POOL-2", "data-WR pool returned %llu of %llu at destroy (target says: "
                  "%s)", (unsigned long long)rep.wr_returned,
                  (unsigned long long)L->wr_capacity, rep.message[0] ? rep.message : "nothing");
    else if (bufs && rep.buf_returned != L->buf_capacity)
        violation(L, "POOL-3", "data buffers returned %llu of %llu at destroy (target says: "
                  "%s)", (unsigned long long)rep.buf_returned,
                  (unsigned long long)L->buf_capacity, rep.message[0] ? rep.message : "nothing");
    else if (report && wrs && rep.wr_expected != L->wr_capacity)
        violation(L, "POOL-2", "destroy report expects %llu data WRs, the configuration "
                  "gives %llu", (unsigned long long)rep.wr_expected,
                  (unsigned long long)L->wr_capacity);
    else if (report && bufs && rep.buf_expected != L->buf_capacity)
        violation(L, "POOL-3", "destroy report expects %llu data buffers, the configuration "
                  "gives %llu", (unsigned long long)rep.buf_expected,
                  (unsigned long long)L->buf_capacity);
    else if (report && wrs && bufs && rep.message[0])
        violation(L, "POOL-2", "destroy report complains although every count is exact: %s",
                  rep.message);
}

/* ---- the lifecycle ------------------------------------------------------------------------ */

static int setup(struct life *L)
{
    char err[NRT_ERRMSG_LEN];
    for (int attempt = 0; attempt < 16 && !L->r; attempt++) {
        draw_options(L, &L->o);
        if (nrt_opts_validate(&L->o, err, sizeof(err)) < 0) {
            L->f->option_refusals++;
            continue;
        }
        L->r = nrt_rig_create(&L->o, err, sizeof(err));
        if (!L->r)
            L->f->option_refusals++;
    }
    if (!L->r) {
        violation(L, "SETUP", "16 drawn option sets refused, the last: %s", err);
        return -1;
    }
    L->t = nrt_rig_transport(L->r);
    nrt_transport_get_opts(L->t, &L->o);
    struct nrt_target_desc desc;
    memset(&desc, 0, sizeof(desc));
    if (nrt_target_describe(L->t, &desc) >= 0) {
        L->caps = desc.caps;
        snprintf(L->f->target_name, sizeof(L->f->target_name), "%s", desc.name);
        snprintf(L->f->target_version, sizeof(L->f->target_version), "%s", desc.version);
    }
    struct nrt_pool_counts p;
    L->wr_capacity = L->o.wr_pool_size ? L->o.wr_pool_size
                                       : (uint64_t)L->o.max_queue_depth * L->o.wr_pool_multiplier;
    if (!(L->caps & NRT_CAP_WR_CAP_EXACT) && nrt_wr_pool_counts(L->t, &p) >= 0)
        L->wr_capacity = p.capacity;   /* the target does not promise the configured size */
    L->buf_capacity = L->o.num_shared_buffers;
    L->max_depth = L->o.max_queue_depth < 128 ? L->o.max_queue_depth : 128;
    L->buf = malloc(NVMF_SQE_SIZE + 256 + (L->io_size > NVMF_CONNECT_DATA_SIZE
                                           ? L->io_size : NVMF_CONNECT_DATA_SIZE));
    size_t most = NVMF_SQE_SIZE + (L->io_size > 256 ? L->io_size : 256);
    L->batch = malloc(L->max_depth * most);
    L->batch_lens = malloc(L->max_depth * sizeof(*L->batch_lens));
    L->batch_cids = malloc(L->max_depth * sizeof(*L->batch_cids));
    if (!L->buf || !L->batch || !L->batch_lens || !L->batch_cids)
        return -1;
    L->nports = (int)soak_range(&L->rng, 1, MAX_PORTS);
    for (int i = 0; i < L->nports; i++)
        if (nrt_rig_port_add(L->r) < 0) {
            violation(L, "SETUP", "port: %s", nrt_rig_error(L->r));
            return -1;
        }
    L->nsubs = (int)soak_range(&L->rng, 1, MAX_SUBS);
    for (int s = 0; s < L->nsubs; s++) {
        char nqn[64];
        snprintf(nqn, sizeof(nqn), SUBNQN_FMT, s);
        if (nrt_subsystem_add(L->t, nqn) < 0) {
            violation(L, "SETUP", "subsystem: %s", nrt_transport_error(L->t));
            return -1;
        }
        uint32_t per = soak_range(&L->rng, 1, 2);
        for (uint32_t k = 0; k < per && L->nns < MAX_NS; k++) {
            struct nspace *n = &L->ns[L->nns];
            n->sub = s;
            n->block = L->io_size % 4096 == 0 && soak_chance(&L->rng, 3, 4) ? 4096 : 512;
            n->nchunks = soak_range(&L->rng, 64, 256);
            n->nlb = L->io_size / n->block;
            /* a list of up to 4 descriptors, as the target and the capsule allow */
            n->maxd = L->o.max_sgl_descriptors < 4 ? L->o.max_sgl_descriptors : 4;
            if (L->o.in_capsule_data_size / NVMF_SGL_DESC_SIZE < n->maxd)
                n->maxd = L->o.in_capsule_data_size / NVMF_SGL_DESC_SIZE;
            if (n->nlb < n->maxd)
                n->maxd = n->nlb;
            uint64_t nblocks = (uint64_t)n->nchunks * n->nlb;
            int nsid = nrt_namespace_add(L->t, s, n->block, nblocks);
            if (nsid < 0) {
                violation(L, "SETUP", "namespace: %s", nrt_transport_error(L->t));
                return -1;
            }
            n->nsid = (uint32_t)nsid;
            n->tag = calloc(n->nchunks, sizeof(*n->tag));
            n->state = calloc(n->nchunks, 1);
            if (!n->tag || !n->state)
                return -1;
            L->nns++;
        }
    }
    /* every subsystem's namespaces are reachable only through a controller of that
     * subsystem; the driver sends each IO to a namespace of the qpair's subsystem */
    if (L->o.in_capsule_data_size < NVMF_CONNECT_DATA_SIZE) {
        L->ckey = nrt_rig_mr_register(L->r, CONNECT_SCRATCH * NVMF_CONNECT_DATA_SIZE);
        if (L->ckey <= 0) {
            violation(L, "SETUP", "host memory: %s", nrt_rig_error(L->r));
            return -1;
        }
        L->ciova = nrt_rig_mr_iova(L->r, (uint32_t)L->ckey);
    }
    uint32_t nctrl = soak_range(&L->rng, 1, 2);
    for (uint32_t k = 0; k < nctrl && !L->failed; k++)
        connect_controller(L);
    return L->failed ? -1 : 0;
}

static int live_io_conns(const struct life *L)
{
    int n = 0;
    for (int i = 0; i < L->nc; i++)
        n += L->c[i].slot && L->c[i].qid && !L->c[i].dead;
    return n;
}

static void io_round(struct life *L)
{
    struct soak_rng *g = &L->rng;
    ports_back_up(L, 0);
    /* a fault in one round of 32: before the round's IO, or in the middle of its schedule */
    int fault = L->cfg->faults && soak_chance(g, 1, 32);
    if (fault && soak_chance(g, 1, 2)) {
        inject_fault(L);
        fault = 0;
    }
    if (!live_io_conns(L) && L->nc + 4 <= MAX_CONNS)
        connect_controller(L);   /* every IO queue is gone: a new controller */
    for (int i = 0; i < L->nc && !L->failed; i++) {
        struct hconn *h = &L->c[i];
        if (!h->slot || !h->qid || h->dead)
            continue;
        uint32_t fill = soak_chance(g, 3, 4) ? h->depth : soak_range(g, 1, h->depth);
        fill_conn(L, h, fill);
    }
    if (L->failed)
        return;
    if (!fault && soak_chance(g, 5, 6))
        schedule_burst(L);
    else
        schedule_micro(L, fault);
    if (!L->failed)
        round_checks(L);
    L->f->rounds++;
}

static void life_free(struct life *L)
{
    for (int i = 0; i < MAX_CONNS; i++) {
        free(L->c[i].slot);
        free(L->c[i].freecid);
    }
    for (int i = 0; i < MAX_NS; i++) {
        free(L->ns[i].tag);
        free(L->ns[i].state);
    }
    free(L->buf);
    free(L->batch);
    free(L->batch_lens);
    free(L->batch_cids);
}

uint64_t soak_lifecycle(const struct soak_config *cfg, uint64_t index, struct soak_figures *f)
{
    struct life *L = calloc(1, sizeof(*L));
    if (!L)
        return 0;
    L->cfg = cfg;
    L->f = f;
    L->index = index;
    L->seed = soak_lifecycle_seed(cfg->seed, index);
    L->io_size = cfg->io_size;
    soak_rng_seed(&L->rng, L->seed);
    uint64_t ios_before = f->ios;
    if (setup(L) == 0) {
        uint32_t rounds = soak_range(&L->rng, 8, 256);
        for (L->round = 1; L->round <= rounds && !L->failed; L->round++)
            io_round(L);
        L->round = rounds + 1;
        if (!L->failed) {
            if (cfg->faults && soak_chance(&L->rng, 1, 4)) {
                /* abrupt: the transport goes with IO in flight, submitted this round */
                for (int i = 0; i < L->nc; i++)
                    if (L->c[i].slot && L->c[i].qid && !L->c[i].dead)
                        fill_conn(L, &L->c[i], L->c[i].depth);
                if (soak_chance(&L->rng, 1, 2))
                    schedule_micro(L, 0);
                f->faults[SOAK_F_ABRUPT_DESTROY]++;
                f->abrupt_teardowns++;
                for (int i = 0; i < L->nc; i++)
                    if (L->c[i].slot)
                        f->lost_to_faults += L->c[i].outstanding;
            } else {
                quiesce(L);
                f->graceful_teardowns++;
            }
        }
    }
    if (L->r)
        destroy(L);
    f->lifecycles++;
    life_free(L);
    free(L);
    return f->ios - ios_before;
}

/* ---- figures ------------------------------------------------------------------------------ */

void soak_figures_init(struct soak_figures *f)
{
    memset(f, 0, sizeof(*f));
    f->wr_low_water = f->buf_low_water = 1.0;
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

void soak_figures_json(FILE *out, const struct soak_config *cfg, const struct soak_figures *f,
                       double elapsed)
{
#define U(name, v) fprintf(out, ", \"%s\": %llu", name, (unsigned long long)(v))
    fprintf(out, "{\"seed\": %llu", (unsigned long long)cfg->seed);
    U("ios", f->ios);
    fprintf(out, ", \"ios_per_s\": %.0f", elapsed > 0 ? (double)f->ios / elapsed : 0.0);
    fprintf(out, ", \"seconds\": %.3f", elapsed);
    /* IOs per second of this process's CPU time: the one-core rate, whatever else the
     * machine runs */
    fprintf(out, ", \"ios_per_cpu_s\": %.0f",
            f->cpu_seconds > 0 ? (double)f->ios / f->cpu_seconds : 0.0);
    fprintf(out, ", \"cpu_seconds\": %.3f", f->cpu_seconds);
    U("io_size", cfg->io_size);
    U("reads", f->reads);
    U("writes", f->writes);
    U("flushes", f->flushes);
    U("multi_descriptor", f->multi_descriptor);
    U("in_capsule", f->in_capsule);
    U("bytes", f->bytes);
    U("io_errors", f->io_errors);
    U("lost_to_faults", f->lost_to_faults);
    U("reads_verified", f->reads_verified);
    U("lifecycles", f->lifecycles);
    U("rounds", f->rounds);
    U("pool_checks", f->pool_checks);
    U("option_refusals", f->option_refusals);
    U("connects", f->connects);
    U("graceful_teardowns", f->graceful_teardowns);
    U("abrupt_teardowns", f->abrupt_teardowns);
    uint64_t total = 0;
    fprintf(out, ", \"faults\": {");
    for (int k = 0; k < SOAK_F_COUNT; k++) {
        fprintf(out, "%s\"%s\": %llu", k ? ", " : "", soak_fault_names[k],
                (unsigned long long)f->faults[k]);
        total += f->faults[k];
    }
    fprintf(out, "}");
    U("faults_total", total);
    U("max_queue_depth_seen", f->max_queue_depth_seen);
    U("max_read_depth_seen", f->max_read_depth_seen);
    U("max_send_depth_seen", f->max_send_depth_seen);
    fprintf(out, ", \"wr_pool_low_water\": %.4f", f->wr_low_water);
    U("wr_pool_low_water_count", f->wr_low_water_count);
    fprintf(out, ", \"buf_pool_low_water\": %.4f", f->buf_low_water);
    U("buf_pool_low_water_count", f->buf_low_water_count);
    U("quiescence_rounds_max", f->quiescence_rounds_max);
    fprintf(out, ", \"quiescence_rounds_mean\": %.2f",
            f->quiescence_count ? (double)f->quiescence_rounds_total / (double)f->quiescence_count
                                : 0.0);
    fprintf(out, ", \"defects\": %u, \"faults_enabled\": %s", cfg->defects,
            cfg->faults ? "true" : "false");
    if (cfg->only_lifecycle >= 0)
        fprintf(out, ", \"lifecycle\": %lld", (long long)cfg->only_lifecycle);
    fprintf(out, ", \"target\": ");
    json_string(out, f->target_name);
    fprintf(out, ", \"target_version\": ");
    json_string(out, f->target_version);
    U("violation_count", f->nviolations);
    fprintf(out, ", \"violations\": [");
    uint32_t shown = f->nviolations < SOAK_MAX_VIOLATIONS ? f->nviolations : SOAK_MAX_VIOLATIONS;
    for (uint32_t i = 0; i < shown; i++) {
        const struct soak_violation *v = &f->v[i];
        fprintf(out, "%s{\"check\": ", i ? ", " : "");
        json_string(out, v->check);
        fprintf(out, ", \"lifecycle\": %llu, \"lifecycle_seed\": %llu, \"round\": %u, "
                "\"message\": ", (unsigned long long)v->lifecycle,
                (unsigned long long)v->lifecycle_seed, v->round);
        json_string(out, v->message);
        fprintf(out, "}");
    }
    fprintf(out, "]}\n");
#undef U
}
