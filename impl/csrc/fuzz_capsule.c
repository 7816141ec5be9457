/*
 * fuzz_capsule.c — coverage-guided fuzzer (libFuzzer) for the target, through nrt.h only
 * (and the wire layouts of nvmf_wire.h).
 *
 * Each input builds a small rig (one of four option presets, all accepted and so, by
 * DESIGN 5.2, stall-free): two ports, two subsystems (one with two namespaces), a host
 * memory region, and an admin and an IO connection made through the RDMA CM and the
 * Fabrics Connect command.  It then runs the input as a program of operations (format in
 * fuzz_capsule.h): raw capsules (wire bytes: a 64-byte SQE and in-capsule data, every bit
 * from the input), structured capsules with one field or byte optionally overwritten, wire
 * deliveries, polls, block-device completions, faults, nrt_rig_run micro-events, CM connects
 * with fuzzed private data, Fabrics Connects, the C workload driver.  At the end it either
 * drains to quiescence (reaping the host side) or destroys abruptly.
 *
 * Besides ASan/UBSan/LSan, it abort()s, with a message naming the property, when:
 *   POOL-1  after any operation, a pool audit finds an object twice or nowhere, or
 *           ring free + cached + held != capacity;
 *   DEPTH-1 a qpair's read depth, send depth or used slots exceed its limits;
 *   LIVE-1  drain-then-reap rounds end in a stall rather than quiescence;
 *   POOL-2  at quiescence something is still held;
 *   SHUT-1  the destroy report is not exact (every WR and buffer back, no message);
 *   CFG-1   nrt_opts_validate and nrt_transport_create / nrt_rig_create disagree on fuzzed
 *           options, or a refusal comes without a message;
 *   WL-1    the workload driver ran on a connection with IO outstanding (it must refuse);
 *   CQ-1    after any operation, a completion queue has overrun (the fabric counts every
 *           completion that found its CQ full: a verbs program sizes its CQs for all it
 *           can have outstanding, and a lost completion leaves a queue pair undrainable).
 *
 * Build: impl/tools/fuzz.sh (tox -e fuzz).  With -DNRT_FUZZ_STANDALONE it gets a main()
 * that runs the files named on the command line once each (no libFuzzer needed), which is
 * how tests/test_fuzz_harness.py replays the seed corpus with gcc.
 */
#include "nrt.h"
#include "nvmf_wire.h"
#include "fuzz_capsule.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MR_SIZE     65536u
#define MAX_QPAIRS  8         /* the transport's qpair table */
#define MAX_CONNS   16        /* harness table: connections made, rejected ones included */
#define MAX_OPS     4096
#define ICD_PATTERN 0xA5
#define NO_CONN     0x7FFFFF  /* never a connection handle; fits a micro-event argument */
#define CAPSULE_MAX (NVMF_SQE_SIZE + 65536 + 32)
#define CONNECT_DATA_OFF (MR_SIZE - NVMF_CONNECT_DATA_SIZE)   /* keyed connect data */
#define CC_ENABLE   0x00460001u   /* CC: EN, IOSQES 6 (64 bytes), IOCQES 4 (16 bytes) */
#define CC_SHN_NORMAL (1u << 14)
#define PROP_CC     0x14
#define CONN_ESTABLISHED 2

static const char SUBNQN0[] = "nqn.2016-06.io.nrt:fuzz-subsystem-0";
static const char SUBNQN1[] = "nqn.2016-06.io.nrt:fuzz-subsystem-1";
static const char HOSTNQN[] = "nqn.2014-08.org.nvmexpress:uuid:6e72742d-6675-7a7a-0000-000000000001";
static const char OTHER_HOSTNQN[] =
    "nqn.2014-08.org.nvmexpress:uuid:6e72742d-6675-7a7a-0000-000000000002";

static const uint16_t fuzz_status_table[] = {
    NRT_SC_SUCCESS, NRT_SC_UNRECOVERED_READ_ERROR, NRT_SC_INTERNAL_ERROR,
    NRT_SC_DATA_TRANSFER_ERROR, NRT_SC_LBA_OUT_OF_RANGE, 0x7FF,
};
#define NSTATUS (sizeof(fuzz_status_table) / sizeof(fuzz_status_table[0]))

/* ---- failing loudly -------------------------------------------------------------------- */

static void fail(const char *property, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));
static void fail(const char *property, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz_capsule: %s violated: ", property);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* ---- reading the input ------------------------------------------------------------------- */

struct reader {
    const uint8_t *p;
    size_t n;
};

static uint8_t rd8(struct reader *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

static uint16_t rd16(struct reader *r)
{
    uint16_t lo = rd8(r);
    return (uint16_t)(lo | (uint16_t)rd8(r) << 8);
}

static uint32_t rd32(struct reader *r)
{
    uint32_t lo = rd16(r);
    return lo | (uint32_t)rd16(r) << 16;
}

/* Copies len bytes (zeros past the end of the input). */
static void rd_bytes(struct reader *r, void *dst, size_t len)
{
    size_t n = len < r->n ? len : r->n;
    memcpy(dst, r->p, n);
    memset((uint8_t *)dst + n, 0, len - n);
    r->p += n;
    r->n -= n;
}

/* ---- the harness's state ------------------------------------------------------------------ */

/* A capsule as it goes on the wire: the SQE (viewed as whichever command it is) and the
 * in-capsule bytes after it. */
struct capsule {
    union {
        struct nvme_sqe sqe;
        struct nvmf_connect_sqe connect;
        struct nvmf_property_sqe prop;
        uint8_t b[CAPSULE_MAX];
    } u;
    uint32_t len;
    uint32_t list_off;          /* where a descriptor list starts in the in-capsule area */
};

struct harness {
    struct nrt_rig *r;
    struct nrt_transport *t;
    struct nrt_opts o;
    uint64_t wr_capacity;
    int port;
    int sub;
    uint32_t block_size;
    uint32_t key;               /* the host region (keys may use bit 31) */
    uint64_t iova;              /* its IO virtual address: what keyed SGLs carry */
    int32_t conns[MAX_CONNS];
    uint32_t nconns;
    uint16_t cntlid;
    uint16_t next_cid;
    bool trace;                 /* standalone builds: FUZZ_TRACE=1 prints each op */
    struct capsule cap;         /* the capsule being built and submitted */
    uint8_t buf[65536];         /* read-backs and host memory writes */
};

static void preset(struct nrt_opts *o, unsigned which)
{
    nrt_opts_default(o);
    o->max_qpairs = MAX_QPAIRS;
    o->max_ports = 2;
    o->max_subsystems = 2;
    o->max_namespaces = 2;
    o->max_memory_regions = 4;
    switch (which) {
    case 0:   /* tight: pools and buffers at their exact minimum, READs split by depth 2 */
        o->num_poll_groups = 2;
        o->max_queue_depth = 8;
        o->io_unit_size = 1024;
        o->max_io_size = 8192;
        o->in_capsule_data_size = 1024;
        o->buf_cache_size = 2;
        o->wr_cache_size = 2;
        o->max_read_depth = 2;
        o->max_sge = 2;
        o->num_shared_buffers = (uint32_t)nrt_opts_min_buffers(o);
        o->wr_pool_size = (uint32_t)nrt_opts_min_wr_pool(o);
        break;
    case 1:   /* roomier: one group, 4 KiB units, keep-alive on */
        o->num_poll_groups = 1;
        o->max_queue_depth = 16;
        o->io_unit_size = 4096;
        o->max_io_size = 16384;
        o->in_capsule_data_size = 4096;
        o->buf_cache_size = 4;
        o->wr_cache_size = 4;
        o->max_read_depth = 4;
        o->max_sge = 4;
        o->max_sgl_descriptors = 4;
        o->keep_alive_ticks = 50;
        o->num_shared_buffers = (uint32_t)nrt_opts_min_buffers(o) + 8;
        o->wr_pool_multiplier = 16;
        break;
    case 2:   /* no caches, no in-capsule data, one SGE per WR, read depth 1 */
        o->num_poll_groups = 3;
        o->max_queue_depth = 4;
        o->io_unit_size = 512;
        o->max_io_size = NRT_MIN_IO_SIZE;
        o->in_capsule_data_size = 0;
        o->buf_cache_size = 0;
        o->wr_cache_size = 0;
        o->max_read_depth = 1;
        o->max_sge = 1;
        o->max_sgl_descriptors = 2;
        o->num_shared_buffers = (uint32_t)nrt_opts_min_buffers(o);
        o->wr_pool_size = (uint32_t)nrt_opts_min_wr_pool(o);
        break;
    default:  /* send depth at its minimum, pools one above theirs */
        o->num_poll_groups = 2;
        o->max_queue_depth = 8;
        o->io_unit_size = 1024;
        o->max_io_size = 4096;
        o->in_capsule_data_size = 2048;
        o->buf_cache_size = 1;
        o->wr_cache_size = 3;
        o->max_read_depth = 3;
        o->max_sge = 3;
        o->max_sgl_descriptors = 8;
        o->num_shared_buffers = (uint32_t)nrt_opts_min_buffers(o) + 1;
        o->wr_pool_size = (uint32_t)nrt_opts_min_wr_pool(o) + 1;
        o->max_send_depth = nrt_opts_max_wrs_per_request(o) + 1;
        break;
    }
}

static int conn_handle(struct harness *g, uint8_t sel)
{
    uint32_t i = sel % (g->nconns + 1);
    return i < g->nconns ? g->conns[i] : NO_CONN;   /* the extra index: never a handle */
}

static int group_sel(struct harness *g, uint8_t sel) { return sel % (g->o.num_poll_groups + 1); }

static int port_sel(uint8_t sel) { return sel % 3; }   /* 2: no such port */

static void reap_all(struct harness *g)
{
    struct nrt_response rsp[32];
    for (uint32_t i = 0; i < g->nconns; i++)
        while (nrt_rig_reap(g->r, g->conns[i], rsp, 32) > 0)
            ;
}

static void step(struct harness *g)
{
    for (uint32_t i = 0; i < g->nconns; i++) {
        while (nrt_rig_deliver_h2t(g->r, g->conns[i]))
            ;
        while (nrt_rig_deliver_t2h(g->r, g->conns[i]))
            ;
    }
    for (uint32_t i = 0; i < g->o.num_poll_groups; i++)
        nrt_rig_poll(g->r, (int)i);
}

/* ---- properties checked after every operation ------------------------------------------ */

static void audit_pool(const char *what, const struct nrt_pool_counts *p, uint64_t capacity)
{
    if (p->capacity != capacity)
        fail("CFG-1", "%s pool capacity %llu, configured %llu", what,
             (unsigned long long)p->capacity, (unsigned long long)capacity);
    if (p->duplicates || p->missing)
        fail("POOL-1", "%s pool audit: %llu duplicates, %llu missing", what,
             (unsigned long long)p->duplicates, (unsigned long long)p->missing);
    if (p->ring_free + p->cached + p->held != p->capacity)
        fail("POOL-1", "%s pool: ring %llu + cached %llu + held %llu != capacity %llu", what,
             (unsigned long long)p->ring_free, (unsigned long long)p->cached,
             (unsigned long long)p->held, (unsigned long long)p->capacity);
}

/* The host's CQs hold its whole send and receive queues: an overrun is the target's. */
static void audit_cqs(struct harness *g)
{
    struct nrt_fabric_stats fs;
    nrt_rig_fabric_stats(g->r, &fs);
    if (fs.cq_overruns)
        fail("CQ-1", "%llu completions found their CQ full (a CQ smaller than what its "
             "queue pairs can have outstanding)", (unsigned long long)fs.cq_overruns);
}

/* Only the target's read-only views: the rig's own queries absorb host completions, which
 * would make the audit part of the program. */
static void audit(struct harness *g, bool quiescent)
{
    struct nrt_pool_counts wr, buf;
    nrt_wr_pool_counts(g->t, &wr);
    nrt_buf_pool_counts(g->t, &buf);
    audit_pool("data-WR", &wr, g->wr_capacity);
    audit_pool("buffer", &buf, g->o.num_shared_buffers);
    if (quiescent && (wr.held || buf.held))
        fail("POOL-2", "quiescent, yet %llu WRs and %llu buffers held",
             (unsigned long long)wr.held, (unsigned long long)buf.held);
    int32_t ids[MAX_QPAIRS];
    int n = nrt_qpairs(g->t, ids, MAX_QPAIRS);
    for (int i = 0; i < n && i < MAX_QPAIRS; i++) {
        struct nrt_qpair_info q;
        if (nrt_qpair_info(g->t, ids[i], &q))
            fail("DEPTH-1", "qpair %d listed by nrt_qpairs has no info: %s", ids[i],
                 nrt_transport_error(g->t));
        if (q.cur_read_depth > q.max_read_depth || q.cur_send_depth > q.max_send_depth ||
            q.slots_used > q.depth || q.slots_used + q.slots_free != q.depth)
            fail("DEPTH-1", "qpair %d: read %u/%u send %u/%u slots %u+%u/%u", q.id,
                 q.cur_read_depth, q.max_read_depth, q.cur_send_depth, q.max_send_depth,
                 q.slots_used, q.slots_free, q.depth);
        struct nrt_request_info reqs[4];
        nrt_qpair_requests(g->t, ids[i], reqs, 4);   /* exercised for ASan */
    }
    struct nrt_group_stats gs;
    for (uint32_t i = 0; i < g->o.num_poll_groups; i++)
        nrt_group_stats(g->t, (int)i, &gs);
    struct nrt_async_event ev[4];
    nrt_async_events(g->t, ev, 4);
    uint64_t transitions[NRT_REQ_NSTATES * NRT_REQ_NSTATES];
    nrt_state_transitions(g->t, transitions, NRT_REQ_NSTATES * NRT_REQ_NSTATES);
    audit_cqs(g);
}

/* ---- capsules -------------------------------------------------------------------------- */

static void put_len24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
}

static void put_key(uint8_t *p, uint32_t v)
{
    put_len24(p, v);
    p[3] = (uint8_t)(v >> 24);
}

static union nvme_sgl_desc keyed_desc(struct harness *g, uint64_t off, uint32_t len,
                                      uint32_t key, uint8_t flags)
{
    union nvme_sgl_desc d;
    memset(&d, 0, sizeof(d));
    nvme_sgl_keyed_set(&d.keyed, g->iova + off, len, key,
                       flags & FSUB_INVALIDATE ? NVME_SGL_SUBTYPE_INVALIDATE
                                               : NVME_SGL_SUBTYPE_ADDRESS);
    return d;
}

static union nvme_sgl_desc unkeyed_desc(uint64_t addr, uint32_t len, uint8_t type,
                                        uint8_t subtype)
{
    union nvme_sgl_desc d;
    memset(&d, 0, sizeof(d));
    d.unkeyed.address = addr;
    d.unkeyed.length = len;
    d.unkeyed.type_subtype = (uint8_t)(type << 4 | subtype);
    return d;
}

/* Descriptor i of the list in the in-capsule area (false: past the buffer). */
static bool list_get(const struct capsule *c, uint32_t i, union nvme_sgl_desc *d)
{
    size_t at = NVMF_SQE_SIZE + (size_t)c->list_off + 16 * (size_t)i;
    if (at + 16 > sizeof(c->u.b))
        return false;
    memcpy(d, c->u.b + at, 16);
    return true;
}

static void list_put(struct capsule *c, uint32_t i, const union nvme_sgl_desc *d)
{
    size_t at = NVMF_SQE_SIZE + (size_t)c->list_off + 16 * (size_t)i;
    if (at + 16 <= sizeof(c->u.b))
        memcpy(c->u.b + at, d, 16);
}

static void capsule_begin(struct capsule *c, uint8_t opc, uint16_t cid)
{
    memset(c->u.b, 0, NVMF_SQE_SIZE);
    c->u.sqe.opc = opc;
    c->u.sqe.fuse_psdt = 1u << 6;   /* PSDT 01b: SGLs, as NVMe-oF requires */
    c->u.sqe.cid = cid;
    c->len = NVMF_SQE_SIZE;
    c->list_off = 0;
}

static uint32_t caplen_limit(struct harness *g)
{
    return NVMF_SQE_SIZE + g->o.in_capsule_data_size + 17;
}

static void mutate(struct harness *g, struct capsule *c, uint8_t field, uint32_t v)
{
    struct nvme_sqe *s = &c->u.sqe;
    union nvme_sgl_desc *sgl = &s->sgl1;
    union nvme_sgl_desc d;
    uint32_t entry = v % NRT_MAX_SGL_DESC;
    switch (field % FM_COUNT) {
    case FM_OPCODE: s->opc = (uint8_t)v; break;
    case FM_FUSE_PSDT: s->fuse_psdt = (uint8_t)v; break;
    case FM_CID: s->cid = (uint16_t)v; break;
    case FM_NSID: s->nsid = v; break;
    case FM_CDW2: s->cdw2 = s->cdw3 = v; break;
    case FM_MPTR: s->mptr = (uint64_t)v << (v & 32); break;
    case FM_SLBA: {
        uint64_t slba = (uint64_t)v << (v & 32);
        s->cdw10 = (uint32_t)slba;
        s->cdw11 = (uint32_t)(slba >> 32);
        break;
    }
    case FM_CDW10: s->cdw10 = v; break;
    case FM_CDW11: s->cdw11 = v; break;
    case FM_CDW12: s->cdw12 = v; break;
    case FM_CDW13: s->cdw13 = v; break;
    case FM_CDW14: s->cdw14 = v; break;
    case FM_CDW15: s->cdw15 = v; break;
    case FM_SGL_ADDR: sgl->unkeyed.address += (uint64_t)(int64_t)(int32_t)v; break;
    case FM_SGL_LENGTH:
        if (sgl->raw[15] >> 4 == NVME_SGL_TYPE_KEYED_DATA)
            put_len24(sgl->keyed.length, v);
        else
            sgl->unkeyed.length = v;
        break;
    case FM_SGL_KEY: put_key(sgl->keyed.key, v); break;
    case FM_SGL_TYPE: sgl->raw[15] = (uint8_t)((v & 0xF) << 4 | (sgl->raw[15] & 0xF)); break;
    case FM_SGL_SUBTYPE: sgl->raw[15] = (uint8_t)((sgl->raw[15] & 0xF0) | (v & 0xF)); break;
    case FM_SGL_RESERVED: put_len24(sgl->unkeyed.reserved, v); break;
    case FM_LIST_ADDR:
        if (list_get(c, entry, &d)) {
            d.keyed.address += (uint64_t)(int64_t)((int32_t)v >> 4);
            list_put(c, entry, &d);
        }
        break;
    case FM_LIST_LENGTH:
        if (list_get(c, entry, &d)) {
            put_len24(d.keyed.length, v >> 4);
            list_put(c, entry, &d);
        }
        break;
    case FM_LIST_TYPE:
        if (list_get(c, entry, &d)) {
            d.raw[15] = (uint8_t)(v >> 4);
            list_put(c, entry, &d);
        }
        break;
    case FM_LIST_KEY:
        if (list_get(c, entry, &d)) {
            put_key(d.keyed.key, v >> 4);
            list_put(c, entry, &d);
        }
        break;
    case FM_BYTE: c->u.b[v % NVMF_SQE_SIZE] = (uint8_t)(v >> 8); break;
    case FM_ICD_BYTE:
        if (c->len > NVMF_SQE_SIZE)
            c->u.b[NVMF_SQE_SIZE + (v >> 8) % (c->len - NVMF_SQE_SIZE)] = (uint8_t)v;
        break;
    case FM_CAPLEN: c->len = v % caplen_limit(g); break;
    }
}

/* Fills c's SGL1 (and the in-capsule area) for len bytes; sets the capsule length. */
static void place_data(struct harness *g, struct capsule *c, uint8_t layout, uint32_t len,
                       uint32_t ndesc, uint64_t addr, uint8_t flags)
{
    uint32_t key = g->key + (flags & FSUB_BAD_KEY ? 1 : 0);
    uint32_t off = flags & FSUB_OFFSET ? 16 : 0, room = g->o.in_capsule_data_size;
    uint8_t *icd = c->u.b + NVMF_SQE_SIZE;
    c->len = NVMF_SQE_SIZE;
    c->list_off = off;
    if (!len)
        return;
    memset(icd, 0xEE, off);   /* what an offset skips */
    if (layout == FL_IN_CAPSULE) {
        /* data the receive buffer cannot hold is cut at its size: the SGL still says len */
        uint32_t sent = off + len <= room ? off + len : room;
        if (sent > off)
            memset(icd + off, ICD_PATTERN ^ (uint8_t)c->u.sqe.cid, sent - off);
        c->u.sqe.sgl1 = unkeyed_desc(off, len, NVME_SGL_TYPE_DATA_BLOCK, NVME_SGL_SUBTYPE_OFFSET);
        c->len = NVMF_SQE_SIZE + sent;
        return;
    }
    if (layout == FL_KEYED) {
        c->u.sqe.sgl1 = keyed_desc(g, addr, len, key, flags);
        return;
    }
    if (ndesc > len)
        ndesc = len;
    uint32_t each = len / ndesc, gap = (uint32_t)(addr & 0xFF) + 1;
    for (uint32_t i = 0; i < ndesc; i++) {
        uint32_t n = i + 1 == ndesc ? len - each * i : each;
        /* placed in reverse order with gaps, as the target's tests do */
        uint64_t a = (addr + (uint64_t)(ndesc - 1 - i) * (each + gap)) % MR_SIZE;
        union nvme_sgl_desc d = keyed_desc(g, a, n, key, flags);
        list_put(c, i, &d);
    }
    /* a list the receive buffer cannot hold is refused by the rig (EMSGSIZE) */
    c->u.sqe.sgl1 = unkeyed_desc(off, ndesc * 16, NVME_SGL_TYPE_LAST_SEGMENT,
                                 NVME_SGL_SUBTYPE_OFFSET);
    c->len = NVMF_SQE_SIZE + off + ndesc * 16;
}

static int submit(struct harness *g, int conn, const char *what)
{
    struct capsule *c = &g->cap;
    int rc = nrt_rig_submit(g->r, conn, c->u.b, c->len);
    if (g->trace)
        fprintf(stderr, "  %s opcode 0x%02x cid %u len %u on connection %d: %d%s%s\n", what,
                c->len ? c->u.sqe.opc : 0, c->len >= 4 ? c->u.sqe.cid : 0, c->len, conn, rc,
                rc ? " " : "", rc ? nrt_rig_error(g->r) : "");
    return rc;
}

static void op_submit(struct harness *g, struct reader *in)
{
    static const uint8_t nsids[8] = {1, 1, 1, 1, 1, 2, 0, 3};
    static const uint8_t opcodes[FK_COUNT] = {
        NRT_OPC_READ, NRT_OPC_WRITE, NRT_OPC_FLUSH, NRT_OPC_IDENTIFY, NRT_OPC_KEEP_ALIVE,
        NRT_OPC_ABORT, NRT_OPC_FABRICS, NRT_OPC_FABRICS, 0x09, 0x0A};
    struct capsule *c = &g->cap;
    int conn = conn_handle(g, rd8(in));
    uint8_t kind = rd8(in) % FK_COUNT, layout = rd8(in) % FL_COUNT;
    uint16_t cid = rd16(in);
    uint32_t nsid = nsids[rd8(in) % 8];
    uint32_t slba = rd16(in) % 80, nlb = rd8(in) % 16;
    uint32_t ndesc = rd8(in) % NRT_MAX_SGL_DESC + 1;
    uint64_t addr = rd16(in);
    uint8_t flags = rd8(in);
    capsule_begin(c, opcodes[kind], cid);
    c->u.sqe.nsid = nsid;
    uint32_t len = 0;
    switch (kind) {
    case FK_READ: case FK_WRITE:
        c->u.sqe.cdw10 = slba;
        c->u.sqe.cdw12 = nlb;
        len = (nlb + 1) * g->block_size;
        break;
    case FK_IDENTIFY:
        c->u.sqe.cdw10 = slba & 3;   /* CNS: 0 namespace, 1 controller, 2 list, 3 invalid */
        len = 4096;
        break;
    case FK_ABORT:
        c->u.sqe.cdw10 = slba << 16 | nlb;
        break;
    case FK_PROP_GET: case FK_PROP_SET:
        c->u.prop.fctype = kind == FK_PROP_GET ? NRT_FCTYPE_PROPERTY_GET : NRT_FCTYPE_PROPERTY_SET;
        c->u.prop.ofst = slba & 0x1C;
        c->u.prop.attrib = (uint8_t)((kind == FK_PROP_GET && c->u.prop.ofst == 0) ^ (nlb >> 3 & 1));
        if (kind == FK_PROP_SET)
            c->u.prop.value = (nlb & 1 ? CC_ENABLE : 0) | (nlb & 2 ? CC_SHN_NORMAL : 0);
        break;
    case FK_SET_FEATURES:
        c->u.sqe.cdw10 = (slba & 1 ? 0x0F : 0x07) | (nlb & 8 ? 1u << 31 : 0);
        c->u.sqe.cdw11 = slba;
        len = 16;
        break;
    case FK_GET_FEATURES:
        c->u.sqe.cdw10 = (slba & 1 ? 0x0F : 0x07) | (nlb & 7) << 8;
        len = 16;
        break;
    default:
        break;
    }
    if (flags & FSUB_RAW_LENGTH)
        len = nlb * 256 + ndesc;
    place_data(g, c, layout, len, ndesc, addr, flags);
    if (flags & FSUB_MUTATE) {
        uint8_t field = rd8(in);
        mutate(g, c, field, rd32(in));
    }
    submit(g, conn, "submit");
}

/* count valid IOs in one go, each on its own stretch of LBAs and host memory */
static void op_burst(struct harness *g, struct reader *in)
{
    struct capsule *c = &g->cap;
    int conn = conn_handle(g, rd8(in));
    uint32_t count = rd8(in) % 17, nlb = rd8(in) % 16;
    uint8_t shape = rd8(in);
    uint32_t len = (nlb + 1) * g->block_size;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t opc = shape & 1 ? NRT_OPC_WRITE : NRT_OPC_READ;
        capsule_begin(c, opc, g->next_cid++);
        c->u.sqe.nsid = 1;
        c->u.sqe.cdw10 = i * (nlb + 1) % (64 - nlb);
        c->u.sqe.cdw12 = nlb;
        uint64_t addr = (uint64_t)i * (len + 64) % (MR_SIZE - len + 1);   /* len <= MR_SIZE */
        uint8_t layout = (shape >> 1) % FL_COUNT;
        if (layout == FL_IN_CAPSULE && opc == NRT_OPC_READ)
            layout = FL_KEYED;
        place_data(g, c, layout, len, ((shape >> 3) & 15) + 1, addr, 0);
        if (submit(g, conn, "burst"))
            break;
    }
    if (!(shape & 0x80)) {
        while (nrt_rig_deliver_h2t(g->r, conn))
            ;
        for (uint32_t i = 0; i < g->o.num_poll_groups; i++)
            nrt_rig_poll(g->r, (int)i);
    }
}

static void op_submit_raw(struct harness *g, struct reader *in)
{
    struct capsule *c = &g->cap;
    int conn = conn_handle(g, rd8(in));
    uint8_t fix = rd8(in);
    c->len = rd16(in) % caplen_limit(g);
    c->list_off = 0;
    rd_bytes(in, c->u.b, c->len);
    union nvme_sgl_desc *sgl = &c->u.sqe.sgl1;
    if (fix & FRAW_SGL_ADDR)
        sgl->keyed.address += g->iova;
    if (fix & FRAW_SGL_KEY)
        put_key(sgl->keyed.key, nvme_sgl_keyed_key(&sgl->keyed) + g->key);
    for (uint32_t i = 0; fix & FRAW_LIST && NVMF_SQE_SIZE + 16 * (i + 1) <= c->len; i++) {
        union nvme_sgl_desc d;
        list_get(c, i, &d);
        if (d.raw[15] >> 4 != NVME_SGL_TYPE_KEYED_DATA)
            continue;
        d.keyed.address += g->iova;
        put_key(d.keyed.key, nvme_sgl_keyed_key(&d.keyed) + g->key);
        list_put(c, i, &d);
    }
    if (fix & FRAW_FRESH_CID)
        c->u.sqe.cid = g->next_cid++;
    submit(g, conn, "raw");
}

/* A Fabrics Connect capsule: connect data in the capsule when it fits, else (or when asked)
 * through a keyed SGL from the host region. */
static void connect_capsule(struct harness *g, uint16_t cid, uint16_t qid, uint16_t sqsize,
                            uint16_t cntlid, uint32_t kato, uint8_t flags)
{
    struct capsule *c = &g->cap;
    struct nvmf_connect_data d;
    memset(&d, 0, sizeof(d));
    for (int i = 0; i < 16; i++)
        d.hostid[i] = (uint8_t)(flags & FCON_HOSTID ? 0xF0 | i : i + 1);
    d.cntlid = cntlid;
    const char *sub = flags & FCON_SUB1 ? SUBNQN1 : SUBNQN0;
    int sublen = (int)strlen(sub) - (flags & FCON_BAD_SUBSYS ? 1 : 0);
    snprintf(d.subnqn, sizeof(d.subnqn), "%.*s", sublen, sub);
    snprintf(d.hostnqn, sizeof(d.hostnqn), "%s", flags & FCON_BAD_HOST ? OTHER_HOSTNQN : HOSTNQN);
    uint32_t dlen = flags & FCON_SHORT ? NVMF_CONNECT_DATA_SIZE - 1 : NVMF_CONNECT_DATA_SIZE;
    capsule_begin(c, NRT_OPC_FABRICS, cid);
    c->u.connect.fctype = NRT_FCTYPE_CONNECT;
    c->u.connect.qid = qid;
    c->u.connect.sqsize = sqsize;
    c->u.connect.kato = kato;
    if ((flags & FCON_KEYED) || g->o.in_capsule_data_size < NVMF_CONNECT_DATA_SIZE) {
        nrt_rig_mr_write(g->r, (int)g->key, CONNECT_DATA_OFF, &d, sizeof(d));
        c->u.connect.sgl1 = keyed_desc(g, CONNECT_DATA_OFF, dlen, g->key, 0);
    } else {
        memcpy(c->u.b + NVMF_SQE_SIZE, &d, dlen);
        c->u.connect.sgl1 = unkeyed_desc(0, dlen, NVME_SGL_TYPE_DATA_BLOCK,
                                         NVME_SGL_SUBTYPE_OFFSET);
        c->len = NVMF_SQE_SIZE + dlen;
    }
}

static void op_connect(struct harness *g, struct reader *in)
{
    int conn = conn_handle(g, rd8(in));
    uint8_t qid = rd8(in), flags = rd8(in), sqsize = rd8(in);
    connect_capsule(g, g->next_cid++, qid % (MAX_QPAIRS + 2), sqsize % 16,
                    flags & FCON_CNTLID ? g->cntlid : 0xFFFF, flags & FCON_KATO ? sqsize : 0,
                    flags);
    submit(g, conn, "connect");
}

static void op_cm_connect(struct harness *g, struct reader *in)
{
    int port = port_sel(rd8(in));
    uint32_t group = (uint32_t)group_sel(g, rd8(in));
    uint16_t qid = rd8(in);
    uint32_t depth = rd8(in) % (g->o.max_queue_depth + 2);
    uint8_t flags = rd8(in);
    struct nrt_connect_params p;
    nrt_connect_params_default(&p, (uint32_t)port, group, qid, depth);
    if (flags & FCM_FIELDS) {
        /* the host posts hrqsize receives: kept small; raw private data says anything */
        p.hrqsize = rd16(in) % 1024;
        p.hsqsize = rd16(in);
        p.cntlid = rd16(in);
        p.recfmt = rd16(in);
        p.private_data_len = rd8(in);
        p.initiator_depth = rd8(in);
        p.responder_resources = rd8(in);
    }
    if (flags & FCM_RAW) {
        p.raw = 1;
        p.private_data_len = rd8(in);
        rd_bytes(in, p.raw_private_data, sizeof(p.raw_private_data));
    }
    int conn = nrt_rig_connect(g->r, &p);
    if (conn >= 0 && g->nconns < MAX_CONNS)
        g->conns[g->nconns++] = conn;
    if (g->trace) {
        struct nrt_conn_info ci;
        memset(&ci, 0, sizeof(ci));
        if (conn >= 0)
            nrt_rig_conn_info(g->r, conn, &ci);
        fprintf(stderr, "  cm connect port %d qid %u hrqsize %u hsqsize %u: %d state %u "
                "qpair %d reject sts %u%s%s\n", port, p.qid, p.hrqsize, p.hsqsize, conn,
                ci.state, ci.qpair, ci.reject_sts, conn < 0 ? " " : "",
                conn < 0 ? nrt_rig_error(g->r) : "");
    }
}

static void op_run(struct harness *g, struct reader *in)
{
    uint32_t ev[16];
    uint32_t n = rd8(in) % 17;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t kind = rd8(in) % 8;   /* 0 and 7 are not event kinds */
        uint32_t arg = rd8(in);
        if (kind == NRT_EV_DELIVER_H2T || kind == NRT_EV_DELIVER_T2H)
            arg = (uint32_t)conn_handle(g, (uint8_t)arg);
        ev[i] = kind << 24 | arg;
    }
    nrt_rig_run(g->r, ev, n);
}

/* What nrt_rig_workload_run must refuse: IO outstanding on the connection (capsules the
 * host sent without a response reaped, or requests the target still holds). */
static bool conn_busy(struct harness *g, int conn)
{
    struct nrt_qpair_info q;
    if (nrt_rig_qpair_info(g->r, conn, &q))
        return false;
    return q.slots_used || q.host_outstanding || q.host_unreaped;
}

static void op_workload(struct harness *g, struct reader *in)
{
    /* one operand per statement: the order initializers are evaluated in is unspecified */
    int conn = conn_handle(g, rd8(in));
    struct nrt_workload w = {.nsid = 1, .mkey = g->key};
    w.opcode = rd8(in) & 1 ? NRT_OPC_WRITE : NRT_OPC_READ;
    w.ndesc = rd8(in) % 4 + 1;
    w.ios = rd8(in) % 16;
    w.queue_depth = rd8(in) % 8 + 1;
    w.io_bytes = (rd8(in) % 4 + 1) * g->block_size;
    bool busy = conn_busy(g, conn);
    int64_t rc = nrt_rig_workload_run(g->r, conn, &w);
    if (g->trace)
        fprintf(stderr, "  workload on connection %d%s: %lld%s%s\n", conn,
                busy ? " (IO outstanding)" : "", (long long)rc, rc < 0 ? " " : "",
                rc < 0 ? nrt_rig_error(g->r) : "");
    if (busy && rc >= 0)
        fail("WL-1", "nrt_rig_workload_run ran %lld IOs on connection %d with IO outstanding",
             (long long)rc, conn);
    busy = conn_busy(g, conn);
    rc = nrt_rig_memcpy_baseline(g->r, conn, &w);
    if (busy && rc >= 0)
        fail("WL-1", "nrt_rig_memcpy_baseline ran on connection %d with IO outstanding", conn);
}

/* Options straight from the input.  The nrt_opts_min_* helpers are only called on options
 * the target accepted: on unvalidated ones they divide by io_unit_size and max_sge. */
static void op_options(struct reader *in)
{
    struct nrt_opts o;
    char err[NRT_ERRMSG_LEN], err2[NRT_ERRMSG_LEN], err3[NRT_ERRMSG_LEN];
    rd_bytes(in, &o, sizeof(o));
    o.defects = 0;   /* a defect switch breaks the exact destroy report on purpose */
    err[0] = err2[0] = err3[0] = 0;
    int rc = nrt_opts_validate(&o, err, sizeof(err));
    if (rc) {
        if (rc != NRT_EINVAL || !err[0])
            fail("CFG-1", "options refused with %d and message \"%s\"", rc, err);
        if (nrt_transport_create(&o, err2, sizeof(err2)) || strcmp(err, err2))
            fail("CFG-1", "validate refused (%s) but create said \"%s\"", err, err2);
        if (nrt_rig_create(&o, err3, sizeof(err3)) || strcmp(err, err3))
            fail("CFG-1", "validate refused (%s) but the rig said \"%s\"", err, err3);
        return;
    }
    uint64_t wr_cap = o.wr_pool_size ? o.wr_pool_size
                                     : (uint64_t)o.max_queue_depth * o.wr_pool_multiplier;
    if (wr_cap < nrt_opts_min_wr_pool(&o) || o.num_shared_buffers < nrt_opts_min_buffers(&o))
        fail("CFG-1", "accepted options below their own minimum (pool %llu, buffers %u)",
             (unsigned long long)wr_cap, o.num_shared_buffers);
    /* build only what stays small: a few MiB of buffers and tables */
    if ((uint64_t)o.num_shared_buffers * o.io_unit_size > (4u << 20) || wr_cap > 65536 ||
        o.max_qpairs > 64 || o.max_subsystems > 64 || o.max_memory_regions > 64 ||
        o.num_shared_buffers > 65536)
        return;
    /* on the rig's fabric (the current one): only its CM event channel */
    struct nrt_transport *t = nrt_transport_create(&o, err2, sizeof(err2));
    if (!t)
        fail("CFG-1", "validated options refused at creation: %s", err2);
    struct nrt_opts back;
    nrt_transport_get_opts(t, &back);
    struct nrt_destroy_report rep;
    nrt_transport_destroy(t, &rep);
    if (rep.wr_returned != wr_cap || rep.wr_expected != wr_cap || rep.message[0] ||
        rep.buf_returned != o.num_shared_buffers)
        fail("SHUT-1", "idle transport destroyed with WRs %llu/%llu: %s",
             (unsigned long long)rep.wr_returned, (unsigned long long)wr_cap, rep.message);
}

static void op_read_back(struct harness *g, struct reader *in)
{
    uint8_t which = rd8(in), nsid = rd8(in) % 4;
    uint32_t off = rd32(in);
    uint16_t len = rd16(in);
    if (which & 1)
        nrt_namespace_read(g->t, which & 2 ? g->sub + 1 : g->sub, nsid, off, g->buf, len);
    else
        nrt_rig_mr_read(g->r, (int)(which & 2 ? g->key + 4096 : g->key), off, g->buf, len);
}

/* A host region of MR_SIZE bytes; false if the rig gave none.  A key may have bit 31 set,
 * so the int the rig returns is no success test: the region's address is. */
static bool register_region(struct harness *g)
{
    int key = nrt_rig_mr_register(g->r, MR_SIZE);
    uint64_t iova = nrt_rig_mr_iova(g->r, key);
    if (!iova)
        return false;
    g->key = (uint32_t)key;
    g->iova = iova;
    return true;
}

static void run_op(struct harness *g, struct reader *in)
{
    struct nrt_rig *r = g->r;
    struct nrt_transport *t = g->t;
    uint8_t op = rd8(in) % FUZZ_NOPS;
    if (g->trace)
        fprintf(stderr, "op %u\n", op);
    switch ((enum fuzz_op)op) {
    case FOP_SUBMIT_RAW: op_submit_raw(g, in); break;
    case FOP_SUBMIT: op_submit(g, in); break;
    case FOP_DELIVER_H2T: {
        int conn = conn_handle(g, rd8(in));
        for (uint8_t n = rd8(in) % 8 + 1; n; n--)
            nrt_rig_deliver_h2t(r, conn);
        break;
    }
    case FOP_DELIVER_T2H: {
        int conn = conn_handle(g, rd8(in));
        for (uint8_t n = rd8(in) % 8 + 1; n; n--)
            nrt_rig_deliver_t2h(r, conn);
        break;
    }
    case FOP_POLL: nrt_rig_poll(r, group_sel(g, rd8(in))); break;
    case FOP_BDEV_COMPLETE: {
        uint8_t index = rd8(in);
        nrt_bdev_complete(t, index, fuzz_status_table[rd8(in) % NSTATUS]);
        break;
    }
    case FOP_BDEV_AUTO: nrt_bdev_set_auto(t, rd8(in) & 1); break;
    case FOP_BDEV_INJECT: {
        uint8_t count = rd8(in) % 4;
        nrt_bdev_inject_error(t, count, fuzz_status_table[rd8(in) % NSTATUS]);
        break;
    }
    case FOP_TICK: nrt_advance_time(t, rd8(in)); break;
    case FOP_REAP: {
        struct nrt_response rsp[16];
        int conn = conn_handle(g, rd8(in));
        int n = nrt_rig_reap(r, conn, rsp, rd8(in) % 17);
        for (int i = 0; g->trace && i < n; i++)
            fprintf(stderr, "  connection %d: cid %u status 0x%04x result 0x%llx%s\n", conn,
                    rsp[i].cid, rsp[i].status, (unsigned long long)rsp[i].result,
                    rsp[i].unexpected ? " (unexpected)" : "");
        break;
    }
    case FOP_QP_ERROR: nrt_rig_qpair_error(r, conn_handle(g, rd8(in))); break;
    case FOP_QP_DISCONNECT: nrt_rig_qpair_disconnect(r, conn_handle(g, rd8(in))); break;
    case FOP_HOST_DISCONNECT: nrt_rig_host_disconnect(r, conn_handle(g, rd8(in))); break;
    case FOP_FAIL_POSTS: {
        int conn = conn_handle(g, rd8(in));
        nrt_rig_fail_posts(r, conn, rd8(in) % 8);
        break;
    }
    case FOP_PORT_DOWN: nrt_rig_port_down(r, port_sel(rd8(in))); break;
    case FOP_PORT_UP: nrt_rig_port_up(r, port_sel(rd8(in))); break;
    case FOP_NS_READY: {
        uint8_t nsid = rd8(in) % 4;
        nrt_namespace_set_ready(t, g->sub, nsid, rd8(in) & 1);
        break;
    }
    case FOP_CM_CONNECT: op_cm_connect(g, in); break;
    case FOP_RUN: op_run(g, in); break;
    case FOP_MR_WRITE: {
        uint16_t off = rd16(in);
        uint8_t len = rd8(in);
        rd_bytes(in, g->buf, len);
        nrt_rig_mr_write(r, (int)g->key, off, g->buf, len);
        break;
    }
    case FOP_MR_CYCLE:
        nrt_rig_mr_deregister(r, (int)g->key);
        register_region(g);   /* on failure the old (gone) key stays */
        break;
    case FOP_STEP:
        for (uint8_t n = rd8(in) % 8 + 1; n; n--)
            step(g);
        break;
    case FOP_DRAIN: {
        struct nrt_drain_result dr;
        nrt_rig_drain(r, rd8(in) % 16 + 1, &dr);
        break;
    }
    case FOP_WORKLOAD: op_workload(g, in); break;
    case FOP_CONNECT: op_connect(g, in); break;
    case FOP_OPTIONS: op_options(in); break;
    case FOP_READ_BACK: op_read_back(g, in); break;
    case FOP_BURST: op_burst(g, in); break;
    case FOP_REMOTE_ACCESS: {
        int conn = conn_handle(g, rd8(in));
        nrt_rig_remote_access_error(r, conn, rd8(in) % 4);
        break;
    }
    case FOP_RNR: {
        int conn = conn_handle(g, rd8(in));
        nrt_rig_rnr(r, conn, rd8(in) % 4);
        break;
    }
    case FOP_DEVICE_REMOVE: nrt_rig_device_remove(r, port_sel(rd8(in))); break;
    case FUZZ_NOPS: break;
    }
}

/* ---- setup and teardown ------------------------------------------------------------------ */

/* Submits g->cap, drains, and returns the one response to it. */
static struct nrt_response run_now(struct harness *g, int conn, const char *what)
{
    uint16_t cid = g->cap.u.sqe.cid;
    if (nrt_rig_submit(g->r, conn, g->cap.u.b, g->cap.len))
        fail("setup", "%s submit: %s", what, nrt_rig_error(g->r));
    struct nrt_drain_result dr;
    nrt_rig_drain(g->r, 100, &dr);
    struct nrt_response rsp;
    if (nrt_rig_reap(g->r, conn, &rsp, 1) != 1 || rsp.cid != cid || rsp.unexpected)
        fail("setup", "no response to %s on connection %d", what, conn);
    if (rsp.status != NRT_SC_SUCCESS)
        fail("setup", "%s refused: status 0x%04x", what, rsp.status);
    return rsp;
}

static int connect_cm(struct harness *g, uint32_t group, uint16_t qid, uint32_t depth)
{
    struct nrt_connect_params p;
    nrt_connect_params_default(&p, (uint32_t)g->port, group, qid, depth);
    int conn = nrt_rig_connect(g->r, &p);
    struct nrt_conn_info ci;
    if (conn < 0)
        fail("setup", "CM connect of queue %u: %s", qid, nrt_rig_error(g->r));
    if (nrt_rig_conn_info(g->r, conn, &ci) || ci.state != CONN_ESTABLISHED || ci.qpair < 0)
        fail("setup", "CM connect of queue %u: state %u, reject status %u", qid, ci.state,
             ci.reject_sts);
    g->conns[g->nconns++] = conn;
    return conn;
}

static void setup(struct harness *g, uint8_t cfg)
{
    char err[NRT_ERRMSG_LEN];
    memset(g, 0, sizeof(*g));
    preset(&g->o, cfg & FUZZ_PRESET_MASK);
    g->r = nrt_rig_create(&g->o, err, sizeof(err));
    if (!g->r)
        fail("setup", "preset %u refused: %s", cfg & FUZZ_PRESET_MASK, err);
    g->t = nrt_rig_transport(g->r);
    g->wr_capacity = g->o.wr_pool_size ? g->o.wr_pool_size
                                       : (uint64_t)g->o.max_queue_depth * g->o.wr_pool_multiplier;
    g->block_size = (cfg & 1) ? 4096 : 512;
    g->port = nrt_rig_port_add(g->r);
    /* a second port (no connections until FOP_CM_CONNECT) and a second, empty subsystem */
    if (g->port < 0 || nrt_rig_port_add(g->r) < 0)
        fail("setup", "ports: %s", nrt_rig_error(g->r));
    g->sub = nrt_subsystem_add(g->t, SUBNQN0);
    if (g->sub < 0 || nrt_subsystem_add(g->t, SUBNQN1) < 0 ||
        nrt_namespace_add(g->t, g->sub, g->block_size, 64) != 1 ||
        nrt_namespace_add(g->t, g->sub, 4096 + 512 - g->block_size, 8) != 2)
        fail("setup", "topology: %s", nrt_transport_error(g->t));
    if (!register_region(g))
        fail("setup", "host memory: %s", nrt_rig_error(g->r));
    int admin = connect_cm(g, 0, 0, 4);
    int io = connect_cm(g, g->o.num_poll_groups - 1, 1, g->o.max_queue_depth);
    g->next_cid = 0xF000;
    connect_capsule(g, g->next_cid++, 0, 3, 0xFFFF, 0, 0);
    struct nrt_response rsp = run_now(g, admin, "admin connect");
    g->cntlid = (uint16_t)rsp.result;
    if (g->cntlid == 0)
        fail("setup", "admin connect gave CNTLID 0");
    /* I/O queues need an enabled controller */
    capsule_begin(&g->cap, NRT_OPC_FABRICS, g->next_cid++);
    g->cap.u.prop.fctype = NRT_FCTYPE_PROPERTY_SET;
    g->cap.u.prop.ofst = PROP_CC;
    g->cap.u.prop.value = CC_ENABLE;
    run_now(g, admin, "CC.EN = 1");
    connect_capsule(g, g->next_cid++, 1, (uint16_t)(g->o.max_queue_depth - 1), g->cntlid, 0, 0);
    run_now(g, io, "IO connect");
}

static void teardown(struct harness *g, bool abrupt)
{
    if (!abrupt) {
        /* Liveness mode (LIVE-1): drain, let the host reap (a host that does not reap
         * legitimately leaves the target's SENDs waiting), repeat until quiescent. */
        nrt_bdev_inject_error(g->t, 0, NRT_SC_SUCCESS);
        for (uint32_t i = 0; i < g->nconns; i++)
            nrt_rig_fail_posts(g->r, g->conns[i], 0);
        struct nrt_drain_result dr = {0};
        for (int round = 0; round < 64 && !dr.quiescent; round++) {
            nrt_rig_drain(g->r, 1000, &dr);
            reap_all(g);
        }
        audit_cqs(g);   /* a lost completion is the cause of a stall, if there is one */
        if (!dr.quiescent)
            fail("LIVE-1", "no quiescence after 64 drain-and-reap rounds (stalled=%u)",
                 dr.stalled);
        audit(g, true);
    }
    if (g->trace) {
        struct nrt_pool_counts wr, buf;
        nrt_wr_pool_counts(g->t, &wr);
        nrt_buf_pool_counts(g->t, &buf);
        fprintf(stderr, "end: pool get failures: %llu WR, %llu buffer\n",
                (unsigned long long)wr.get_failures, (unsigned long long)buf.get_failures);
    }
    struct nrt_destroy_report rep;
    memset(&rep, 0xFF, sizeof(rep));
    if (nrt_rig_destroy(g->r, &rep))
        fail("SHUT-1", "nrt_rig_destroy failed");
    if (rep.wr_expected != g->wr_capacity || rep.wr_returned != rep.wr_expected ||
        rep.buf_expected != g->o.num_shared_buffers || rep.buf_returned != rep.buf_expected ||
        memchr(rep.message, 0, sizeof(rep.message)) == NULL || rep.message[0] != 0)
        fail("SHUT-1", "destroy report: WRs %llu/%llu (configured %llu), buffers %llu/%llu "
             "(configured %u): %.*s",
             (unsigned long long)rep.wr_returned, (unsigned long long)rep.wr_expected,
             (unsigned long long)g->wr_capacity, (unsigned long long)rep.buf_returned,
             (unsigned long long)rep.buf_expected, g->o.num_shared_buffers,
             (int)sizeof(rep.message), rep.message);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct harness g;   /* ~130 KiB: not on the stack */
    struct reader in = {data, size};
    uint8_t cfg = rd8(&in);
    setup(&g, cfg);
#ifdef NRT_FUZZ_STANDALONE
    g.trace = getenv("FUZZ_TRACE") != NULL;
#endif
    audit(&g, false);
    for (int ops = 0; in.n && ops < MAX_OPS; ops++) {
        run_op(&g, &in);
        audit(&g, false);
    }
    teardown(&g, (cfg & FUZZ_ABRUPT_END) != 0);
    return 0;
}

#ifdef NRT_FUZZ_STANDALONE
/* Replay: run each file named on the command line once. */
int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 2;
        }
        size_t cap = 1 << 20;
        uint8_t *buf = malloc(cap);
        if (!buf)
            return 2;
        size_t n = fread(buf, 1, cap, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
        printf("ok %s (%zu bytes)\n", argv[i], n);
        fflush(stdout);   /* an abort() on a later input must not lose this line */
    }
    return 0;
}
#endif
