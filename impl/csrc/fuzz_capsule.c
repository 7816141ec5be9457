/*
 * fuzz_capsule.c — coverage-guided fuzzer (libFuzzer) for the target, through nrt.h only.
 *
 * Each input builds a small transport (one of four option presets, all accepted and so, by
 * DESIGN 5.2, stall-free), two ports, two subsystems (one with two namespaces), a host
 * memory region and a connected admin + IO qpair, then runs the input as a program of operations (format
 * in fuzz_capsule.h): raw capsules (struct nrt_capsule bytes + in-capsule data), structured
 * capsules with one field optionally overwritten, wire deliveries, polls, block-device
 * completions, faults, nrt_run micro-events, extra qpairs and connects.  At the end it
 * either drains to quiescence (reaping the host side) or destroys abruptly.
 *
 * Besides ASan/UBSan/LSan, it abort()s, with a message naming the property, when:
 *   POOL-1  after any operation, a pool audit finds an object twice or nowhere, or
 *           ring free + cached + held != capacity;
 *   DEPTH-1 a qpair's read depth, send depth or used slots exceed its limits;
 *   LIVE-1  drain-then-reap rounds end in a stall rather than quiescence;
 *   POOL-2  at quiescence something is still held;
 *   SHUT-1  the destroy report is not exact (every WR and buffer back, no message);
 *   CFG-1   nrt_opts_validate and nrt_transport_create disagree on fuzzed options, or a
 *           refusal comes without a message.
 *
 * Build: impl/tools/fuzz.sh (tox -e fuzz).  With -DNRT_FUZZ_STANDALONE it gets a main()
 * that runs the files named on the command line once each (no libFuzzer needed), which is
 * how tests/test_fuzz_harness.py replays the seed corpus with gcc.
 */
#include "nrt.h"
#include "fuzz_capsule.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MR_SIZE     65536u
#define MAX_QPAIRS  8         /* harness table; the transport allows the same */
#define MAX_OPS     4096
#define ICD_PATTERN 0xA5

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

/* ---- the rig --------------------------------------------------------------------------- */

struct rig {
    struct nrt_transport *t;
    struct nrt_opts o;
    uint64_t wr_capacity;
    int port;
    int sub;
    uint32_t block_size;
    int key;
    int32_t qps[MAX_QPAIRS];
    uint32_t nqps;
    uint16_t cntlid;
    uint16_t next_cid;
    bool trace;                 /* standalone builds: FUZZ_TRACE=1 prints each op */
    uint8_t icd[65536 + 16];    /* in-capsule data being submitted */
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
        o->max_io_size = 2048;
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

static int32_t qp_handle(struct rig *g, uint8_t sel)
{
    uint32_t i = sel % (g->nqps + 1);
    return i < g->nqps ? g->qps[i] : 0x7FFFFFF;   /* the extra index: never a handle */
}

static int group_sel(struct rig *g, uint8_t sel) { return sel % (g->o.num_poll_groups + 1); }

static void reap_all(struct rig *g)
{
    struct nrt_response rsp[32];
    for (uint32_t i = 0; i < g->nqps; i++)
        while (nrt_host_reap(g->t, g->qps[i], rsp, 32) > 0)
            ;
}

static void step(struct rig *g)
{
    for (uint32_t i = 0; i < g->nqps; i++) {
        while (nrt_deliver_h2t(g->t, g->qps[i]))
            ;
        while (nrt_deliver_t2h(g->t, g->qps[i]))
            ;
    }
    for (uint32_t i = 0; i < g->o.num_poll_groups; i++)
        nrt_poll_group(g->t, (int)i);
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

static void audit(struct rig *g, bool quiescent)
{
    struct nrt_pool_counts wr, buf;
    nrt_wr_pool_counts(g->t, &wr);
    nrt_buf_pool_counts(g->t, &buf);
    audit_pool("data-WR", &wr, g->wr_capacity);
    audit_pool("buffer", &buf, g->o.num_shared_buffers);
    if (quiescent && (wr.held || buf.held))
        fail("POOL-2", "quiescent, yet %llu WRs and %llu buffers held",
             (unsigned long long)wr.held, (unsigned long long)buf.held);
    for (uint32_t i = 0; i < g->nqps; i++) {
        struct nrt_qpair_info q;
        if (nrt_qpair_info(g->t, g->qps[i], &q))
            continue;   /* destroyed */
        if (q.cur_read_depth > q.max_read_depth || q.cur_send_depth > q.max_send_depth ||
            q.slots_used > q.depth || q.slots_used + q.slots_free != q.depth)
            fail("DEPTH-1", "qpair %d: read %u/%u send %u/%u slots %u+%u/%u", q.id,
                 q.cur_read_depth, q.max_read_depth, q.cur_send_depth, q.max_send_depth,
                 q.slots_used, q.slots_free, q.depth);
        struct nrt_request_info reqs[4];
        nrt_qpair_requests(g->t, g->qps[i], reqs, 4);   /* exercised for ASan */
    }
    struct nrt_group_stats gs;
    for (uint32_t i = 0; i < g->o.num_poll_groups; i++)
        nrt_group_stats(g->t, (int)i, &gs);
    struct nrt_async_event ev[4];
    nrt_async_events(g->t, ev, 4);
    uint64_t transitions[NRT_REQ_NSTATES * NRT_REQ_NSTATES];
    nrt_state_transitions(g->t, transitions, NRT_REQ_NSTATES * NRT_REQ_NSTATES);
    int32_t ids[MAX_QPAIRS];
    nrt_qpairs(g->t, ids, MAX_QPAIRS);
}

/* ---- capsules -------------------------------------------------------------------------- */

static struct nrt_sgl_desc keyed_desc(uint64_t addr, uint32_t len, uint32_t key, uint8_t flags)
{
    return (struct nrt_sgl_desc){
        .addr = addr, .length = len, .key = key, .type = NRT_SGL_TYPE_KEYED_DATA,
        .subtype = flags & FSUB_INVALIDATE ? NRT_SGL_SUBTYPE_INVALIDATE : NRT_SGL_SUBTYPE_ADDRESS};
}

static void mutate(struct nrt_capsule *c, uint8_t field, uint32_t v)
{
    switch (field % FM_COUNT) {
    case FM_OPCODE: c->opcode = (uint8_t)v; break;
    case FM_FCTYPE: c->fctype = (uint8_t)v; break;
    case FM_NSID: c->nsid = v; break;
    case FM_SLBA: c->slba = (uint64_t)v << (v & 32); break;
    case FM_NLB: c->nlb = v; break;
    case FM_CDW10: c->cdw10 = v; break;
    case FM_SGL_TYPE: c->sgl.type = (uint8_t)v; break;
    case FM_SGL_SUBTYPE: c->sgl.subtype = (uint8_t)v; break;
    case FM_SGL_LENGTH: c->sgl.length = v; break;
    case FM_SGL_ADDR: c->sgl.addr = (uint64_t)v << (v & 32); break;
    case FM_SGL_KEY: c->sgl.key = v; break;
    case FM_NDESC: c->ndesc = v; break;
    case FM_LIST_LENGTH: c->list[v % NRT_MAX_SGL_DESC].length = v >> 4; break;
    case FM_LIST_TYPE: c->list[v % NRT_MAX_SGL_DESC].type = (uint8_t)(v >> 4); break;
    case FM_LIST_KEY: c->list[v % NRT_MAX_SGL_DESC].key = v >> 4; break;
    case FM_CID: c->cid = (uint16_t)v; break;
    }
}

/* Fills c's data descriptors (and icd) for len bytes; returns the in-capsule length. */
static uint32_t place_data(struct rig *g, struct nrt_capsule *c, uint8_t layout, uint32_t len,
                           uint32_t ndesc, uint64_t addr, uint8_t flags)
{
    uint32_t key = (uint32_t)g->key + (flags & FSUB_BAD_KEY ? 1 : 0);
    if (!len)
        return 0;
    if (layout == FL_IN_CAPSULE) {
        uint32_t icd_len = len <= g->o.in_capsule_data_size ? len : g->o.in_capsule_data_size;
        c->sgl = (struct nrt_sgl_desc){.addr = 0, .length = len,
                                       .type = NRT_SGL_TYPE_DATA_BLOCK,
                                       .subtype = NRT_SGL_SUBTYPE_OFFSET};
        memset(g->icd, ICD_PATTERN ^ (uint8_t)c->cid, icd_len);
        return icd_len;
    }
    if (layout == FL_KEYED) {
        c->sgl = keyed_desc(addr, len, key, flags);
        return 0;
    }
    if (ndesc > len)
        ndesc = len;
    uint32_t each = len / ndesc, gap = (uint32_t)(addr & 0xFF) + 1;
    for (uint32_t i = 0; i < ndesc; i++) {
        uint32_t n = i + 1 == ndesc ? len - each * i : each;
        /* placed in reverse order with gaps, as the target's tests do */
        uint64_t a = (addr + (uint64_t)(ndesc - 1 - i) * (each + gap)) % MR_SIZE;
        c->list[i] = keyed_desc(a, n, key, flags);
    }
    c->ndesc = ndesc;
    c->sgl = (struct nrt_sgl_desc){.length = ndesc * 16, .type = NRT_SGL_TYPE_LAST_SEGMENT,
                                   .subtype = NRT_SGL_SUBTYPE_OFFSET};
    return 0;
}

static void op_submit(struct rig *g, struct reader *in)
{
    static const uint8_t nsids[8] = {1, 1, 1, 1, 1, 2, 0, 3};
    int32_t qp = qp_handle(g, rd8(in));
    uint8_t kind = rd8(in) % FK_COUNT, layout = rd8(in) % FL_COUNT;
    struct nrt_capsule c;
    memset(&c, 0, sizeof(c));
    c.cid = rd16(in);
    c.nsid = nsids[rd8(in) % 8];
    c.slba = rd16(in) % 80;
    c.nlb = rd8(in) % 16;
    uint32_t ndesc = rd8(in) % NRT_MAX_SGL_DESC + 1;
    uint64_t addr = rd16(in);
    uint8_t flags = rd8(in);
    static const uint8_t opcodes[FK_COUNT] = {
        NRT_OPC_READ, NRT_OPC_WRITE, NRT_OPC_FLUSH, NRT_OPC_IDENTIFY, NRT_OPC_KEEP_ALIVE,
        NRT_OPC_ABORT, NRT_OPC_FABRICS, NRT_OPC_FABRICS};
    c.opcode = opcodes[kind];
    uint32_t len = 0;
    switch (kind) {
    case FK_READ: case FK_WRITE:
        len = (c.nlb + 1) * g->block_size;
        break;
    case FK_IDENTIFY:
        c.cdw10 = c.slba & 3;   /* CNS: 0 namespace, 1 controller, else invalid */
        len = 4096;
        break;
    case FK_ABORT:
        c.cdw10 = (uint32_t)c.slba << 16 | c.nlb;
        break;
    case FK_PROP_GET: case FK_PROP_SET:
        c.fctype = kind == FK_PROP_GET ? NRT_FCTYPE_PROPERTY_GET : NRT_FCTYPE_PROPERTY_SET;
        c.cdw10 = (uint32_t)(c.slba & 0x1C);
        c.value = c.nlb & 1;
        break;
    default:
        break;
    }
    if (flags & FSUB_RAW_LENGTH)
        len = c.nlb * 256 + ndesc;
    uint32_t icd_len = place_data(g, &c, layout, len, ndesc, addr, flags);
    if (flags & FSUB_MUTATE) {
        uint8_t field = rd8(in);
        mutate(&c, field, rd32(in));
    }
    int rc = nrt_host_submit(g->t, qp, &c, icd_len ? g->icd : NULL, icd_len);
    if (g->trace)
        fprintf(stderr, "  submit opcode 0x%02x cid %u len %u on qpair %d: %d\n", c.opcode,
                c.cid, len, qp, rc);
}

/* count valid IOs in one go, each on its own stretch of LBAs and host memory */
static void op_burst(struct rig *g, struct reader *in)
{
    int32_t qp = qp_handle(g, rd8(in));
    uint32_t count = rd8(in) % 17, nlb = rd8(in) % 16;
    uint8_t shape = rd8(in);
    uint32_t len = (nlb + 1) * g->block_size;
    for (uint32_t i = 0; i < count; i++) {
        struct nrt_capsule c;
        memset(&c, 0, sizeof(c));
        c.opcode = shape & 1 ? NRT_OPC_WRITE : NRT_OPC_READ;
        c.cid = g->next_cid++;
        c.nsid = 1;
        c.nlb = nlb;
        c.slba = (uint64_t)i * (nlb + 1) % (64 - nlb);
        uint64_t addr = (uint64_t)i * (len + 64) % (MR_SIZE - len + 1);   /* len <= MR_SIZE */
        uint8_t layout = (shape >> 1) % FL_COUNT;
        if (layout == FL_IN_CAPSULE && c.opcode == NRT_OPC_READ)
            layout = FL_KEYED;
        uint32_t icd_len = place_data(g, &c, layout, len, ((shape >> 3) & 15) + 1, addr, 0);
        if (nrt_host_submit(g->t, qp, &c, icd_len ? g->icd : NULL, icd_len))
            break;
    }
    if (!(shape & 0x80)) {
        while (nrt_deliver_h2t(g->t, qp))
            ;
        for (uint32_t i = 0; i < g->o.num_poll_groups; i++)
            nrt_poll_group(g->t, (int)i);
    }
}

static void op_submit_raw(struct rig *g, struct reader *in)
{
    uint8_t *icd = g->icd;   /* raw bytes, not the pattern */
    int32_t qp = qp_handle(g, rd8(in));
    uint32_t icd_len = rd16(in) % (g->o.in_capsule_data_size + 17);
    struct nrt_capsule c;
    rd_bytes(in, &c, sizeof(c));
    rd_bytes(in, icd, icd_len);
    int rc = nrt_host_submit(g->t, qp, &c, icd_len ? icd : NULL, icd_len);
    if (g->trace)
        fprintf(stderr, "  raw opcode 0x%02x cid %u icd %u on qpair %d: %d\n", c.opcode, c.cid,
                icd_len, qp, rc);
}

static void op_connect(struct rig *g, struct reader *in)
{
    int32_t qp = qp_handle(g, rd8(in));
    uint8_t qid = rd8(in), flags = rd8(in), sqsize = rd8(in);
    struct nrt_capsule c;
    memset(&c, 0, sizeof(c));
    c.opcode = NRT_OPC_FABRICS;
    c.fctype = NRT_FCTYPE_CONNECT;
    c.cid = g->next_cid++;
    c.qid = qid % 4;
    c.cntlid = flags & FCON_CNTLID ? g->cntlid : 0;
    c.subsystem = flags & FCON_BAD_SUBSYS ? 7u : (uint32_t)g->sub;
    c.sqsize = sqsize % 16;
    c.kato = flags & FCON_KATO ? sqsize : 0;
    nrt_host_submit(g->t, qp, &c, NULL, 0);
}

static void op_run(struct rig *g, struct reader *in)
{
    uint32_t ev[16];
    uint32_t n = rd8(in) % 17;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t kind = rd8(in) % 7;   /* 0 and 6 are not event kinds */
        uint32_t arg = rd8(in);
        if (kind == NRT_EV_DELIVER_H2T || kind == NRT_EV_DELIVER_T2H)
            arg %= MAX_QPAIRS + 1;     /* a qpair slot index */
        ev[i] = kind << 24 | arg;
    }
    nrt_run(g->t, ev, n);
}

static void op_workload(struct rig *g, struct reader *in)
{
    int32_t qp = qp_handle(g, rd8(in));
    struct nrt_workload w = {
        .opcode = rd8(in) & 1 ? NRT_OPC_WRITE : NRT_OPC_READ,
        .nsid = 1,
        .ndesc = rd8(in) % 4 + 1,
        .ios = rd8(in) % 16,
        .queue_depth = rd8(in) % 8 + 1,
        .mkey = (uint32_t)g->key,
    };
    w.io_bytes = (rd8(in) % 4 + 1) * g->block_size;
    nrt_workload_run(g->t, qp, &w);
    nrt_memcpy_baseline(g->t, qp, &w);
}

/* Options straight from the input.  The nrt_opts_min_* helpers are only called on options
 * the target accepted: on unvalidated ones they divide by io_unit_size and max_sge. */
static void op_options(struct reader *in)
{
    struct nrt_opts o;
    char err[NRT_ERRMSG_LEN], err2[NRT_ERRMSG_LEN];
    rd_bytes(in, &o, sizeof(o));
    o.defects = 0;   /* a defect switch breaks the exact destroy report on purpose */
    err[0] = err2[0] = 0;
    int rc = nrt_opts_validate(&o, err, sizeof(err));
    if (rc) {
        if (rc != NRT_EINVAL || !err[0])
            fail("CFG-1", "options refused with %d and message \"%s\"", rc, err);
        if (nrt_transport_create(&o, err2, sizeof(err2)) || strcmp(err, err2))
            fail("CFG-1", "validate refused (%s) but create said \"%s\"", err, err2);
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

static void op_read_back(struct rig *g, struct reader *in)
{
    uint8_t which = rd8(in), nsid = rd8(in) % 4;
    uint32_t off = rd32(in);
    uint16_t len = rd16(in);
    if (which & 1)
        nrt_namespace_read(g->t, which & 2 ? g->sub + 1 : g->sub, nsid, off, g->icd, len);
    else
        nrt_mr_read(g->t, which & 2 ? g->key + 4096 : g->key, off, g->icd, len);
}

static void run_op(struct rig *g, struct reader *in)
{
    struct nrt_transport *t = g->t;
    uint8_t op = rd8(in) % FUZZ_NOPS;
    if (g->trace)
        fprintf(stderr, "op %u\n", op);
    switch ((enum fuzz_op)op) {
    case FOP_SUBMIT_RAW: op_submit_raw(g, in); break;
    case FOP_SUBMIT: op_submit(g, in); break;
    case FOP_DELIVER_H2T: {
        int32_t qp = qp_handle(g, rd8(in));
        for (uint8_t n = rd8(in) % 8 + 1; n; n--)
            nrt_deliver_h2t(t, qp);
        break;
    }
    case FOP_DELIVER_T2H: {
        int32_t qp = qp_handle(g, rd8(in));
        for (uint8_t n = rd8(in) % 8 + 1; n; n--)
            nrt_deliver_t2h(t, qp);
        break;
    }
    case FOP_POLL: nrt_poll_group(t, group_sel(g, rd8(in))); break;
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
        int32_t qp = qp_handle(g, rd8(in));
        int n = nrt_host_reap(t, qp, rsp, rd8(in) % 17);
        for (int i = 0; g->trace && i < n; i++)
            fprintf(stderr, "  qpair %d: cid %u status 0x%04x%s\n", qp, rsp[i].cid,
                    rsp[i].status, rsp[i].unexpected ? " (unexpected)" : "");
        break;
    }
    case FOP_QP_ERROR: nrt_qpair_inject_error(t, qp_handle(g, rd8(in))); break;
    case FOP_QP_DISCONNECT: nrt_qpair_disconnect(t, qp_handle(g, rd8(in))); break;
    case FOP_HOST_DISCONNECT: nrt_host_disconnect(t, qp_handle(g, rd8(in))); break;
    case FOP_FAIL_POSTS: {
        int32_t qp = qp_handle(g, rd8(in));
        nrt_qpair_fail_posts(t, qp, rd8(in) % 8);
        break;
    }
    case FOP_PORT_DOWN: nrt_port_down(t, rd8(in) % 3); break;
    case FOP_PORT_UP: nrt_port_up(t, rd8(in) % 3); break;
    case FOP_NS_READY: {
        uint8_t nsid = rd8(in) % 4;
        nrt_namespace_set_ready(t, g->sub, nsid, rd8(in) & 1);
        break;
    }
    case FOP_QP_CREATE: {
        int port = rd8(in) % 3, group = group_sel(g, rd8(in));
        uint32_t depth = rd8(in) % (g->o.max_queue_depth + 1);
        int32_t id = nrt_qpair_create(t, port, group, depth);
        if (id >= 0 && g->nqps < MAX_QPAIRS)
            g->qps[g->nqps++] = id;
        break;
    }
    case FOP_RUN: op_run(g, in); break;
    case FOP_MR_WRITE: {
        uint8_t buf[256];
        uint16_t off = rd16(in);
        uint8_t len = rd8(in);
        rd_bytes(in, buf, len);
        nrt_mr_write(t, g->key, off, buf, len);
        break;
    }
    case FOP_MR_CYCLE: {
        nrt_mr_deregister(t, g->key);
        int key = nrt_mr_register(t, MR_SIZE);
        if (key > 0)
            g->key = key;
        break;
    }
    case FOP_STEP:
        for (uint8_t n = rd8(in) % 8 + 1; n; n--)
            step(g);
        break;
    case FOP_DRAIN: {
        struct nrt_drain_result dr;
        nrt_drain(t, rd8(in) % 16 + 1, &dr);
        break;
    }
    case FOP_WORKLOAD: op_workload(g, in); break;
    case FOP_CONNECT: op_connect(g, in); break;
    case FOP_OPTIONS: op_options(in); break;
    case FOP_READ_BACK: op_read_back(g, in); break;
    case FOP_BURST: op_burst(g, in); break;
    case FUZZ_NOPS: break;
    }
}

/* ---- setup and teardown ------------------------------------------------------------------ */

static uint16_t connect_now(struct rig *g, int32_t qp, uint16_t qid, uint32_t sqsize,
                            uint64_t *result)
{
    struct nrt_capsule c;
    memset(&c, 0, sizeof(c));
    c.opcode = NRT_OPC_FABRICS;
    c.fctype = NRT_FCTYPE_CONNECT;
    c.cid = g->next_cid++;
    c.qid = qid;
    c.cntlid = g->cntlid;
    c.subsystem = (uint32_t)g->sub;
    c.sqsize = sqsize;
    if (nrt_host_submit(g->t, qp, &c, NULL, 0))
        fail("setup", "connect submit: %s", nrt_transport_error(g->t));
    struct nrt_drain_result dr;
    nrt_drain(g->t, 100, &dr);
    struct nrt_response rsp;
    if (nrt_host_reap(g->t, qp, &rsp, 1) != 1 || rsp.cid != c.cid)
        fail("setup", "no response to connect on qpair %d", qp);
    *result = rsp.result;
    return rsp.status;
}

static void setup(struct rig *g, uint8_t cfg)
{
    char err[NRT_ERRMSG_LEN];
    memset(g, 0, sizeof(*g));
    preset(&g->o, cfg & FUZZ_PRESET_MASK);
    g->t = nrt_transport_create(&g->o, err, sizeof(err));
    if (!g->t)
        fail("setup", "preset %u refused: %s", cfg & FUZZ_PRESET_MASK, err);
    g->wr_capacity = g->o.wr_pool_size ? g->o.wr_pool_size
                                       : (uint64_t)g->o.max_queue_depth * g->o.wr_pool_multiplier;
    g->block_size = (cfg & 1) ? 4096 : 512;
    g->port = nrt_port_add(g->t);
    g->sub = nrt_subsystem_add(g->t);
    /* a second port (no qpairs until FOP_QP_CREATE) and a second, empty subsystem */
    if (g->port < 0 || nrt_port_add(g->t) < 0 || g->sub < 0 || nrt_subsystem_add(g->t) < 0 ||
        nrt_namespace_add(g->t, g->sub, g->block_size, 64) != 1 ||
        nrt_namespace_add(g->t, g->sub, 4096 + 512 - g->block_size, 8) != 2)
        fail("setup", "topology: %s", nrt_transport_error(g->t));
    g->key = nrt_mr_register(g->t, MR_SIZE);
    int32_t admin = nrt_qpair_create(g->t, g->port, 0, 4);
    int32_t io = nrt_qpair_create(g->t, g->port, (int)g->o.num_poll_groups - 1,
                                  g->o.max_queue_depth);
    if (g->key <= 0 || admin < 0 || io < 0)
        fail("setup", "region/qpairs: %s", nrt_transport_error(g->t));
    g->qps[g->nqps++] = admin;
    g->qps[g->nqps++] = io;
    g->next_cid = 0xF000;
    uint64_t result = 0;
    if (connect_now(g, admin, 0, 3, &result) != NRT_SC_SUCCESS || result == 0)
        fail("setup", "admin connect refused");
    g->cntlid = (uint16_t)result;
    if (connect_now(g, io, 1, g->o.max_queue_depth - 1, &result) != NRT_SC_SUCCESS)
        fail("setup", "IO connect refused");
}

static void teardown(struct rig *g, bool abrupt)
{
    if (!abrupt) {
        /* Liveness mode (LIVE-1): drain, let the host reap (a full response ring
         * legitimately blocks SENDs), repeat until quiescent. */
        nrt_bdev_inject_error(g->t, 0, NRT_SC_SUCCESS);
        for (uint32_t i = 0; i < g->nqps; i++)
            nrt_qpair_fail_posts(g->t, g->qps[i], 0);
        struct nrt_drain_result dr = {0};
        for (int round = 0; round < 64 && !dr.quiescent; round++) {
            nrt_drain(g->t, 1000, &dr);
            reap_all(g);
        }
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
    if (nrt_transport_destroy(g->t, &rep))
        fail("SHUT-1", "nrt_transport_destroy failed");
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
    struct reader in = {data, size};
    struct rig g;
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
    }
    return 0;
}
#endif
