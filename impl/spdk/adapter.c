/*
 * adapter.c — SPDK's NVMe-oF RDMA transport (lib/nvmf/rdma.c of a user's tree) behind nrt.h.
 *
 * This translation unit includes, from the SPDK tree being judged, the transport itself
 * (rdma.c, transport.c), SPDK's buffer pools (lib/thread/iobuf.c, the production code) and
 * SPDK's test environment (test_env.c: a mock clock, rings, allocations), as SPDK's own unit
 * test for rdma.c does.  Around them it provides what SPDK's nvmf core and env would:
 *
 *   - the core: a target object (a registered io_device), poll groups on one SPDK thread
 *     that the harness polls, the new-qpair path (poll group add), request execution and
 *     completion (commands go to the suite's controller emulation, ctrlr.h, on RAM
 *     namespaces), qpair disconnect and teardown the way nvmf.c sequences them;
 *   - the env: memory maps (every address is registered, as DPDK registers all of its
 *     memory), and a log callback that keeps SPDK's own messages (the destroy-time
 *     "transport wr pool count is X but should be Y" among them);
 *   - the nrt.h transport calls the rig makes, and introspection read from rdma.c's own
 *     objects: the data-WR pool through SPDK's mempool count and its configured size,
 *     request states and queues from the request objects, read and send depths.
 *
 * SPDK's globals (its thread library, the test env's core count and clock) mean one
 * transport per process: a second create while one is alive is refused.
 *
 * Release differences are absorbed through nrt_spdk_probes.h (compile probes run by
 * impl/spdk/build.py), never through version numbers.
 */
#include "nrt_spdk_probes.h"

#include "spdk/stdinc.h"

/* test_env.c's mempool is a count whose elements are fresh allocations, freed on put: not
 * what rdma.c runs on in production.  DPDK's mempool hands out elements of one zeroed
 * arena, keeps their contents across put and get, and frees nothing until the pool goes -
 * rdma.c relies on that (it clears a WR's SGE count when it puts the WR back and reads it
 * when it walks a chain).  The adapter's own mempool below has those semantics; the test
 * env's is compiled under other names and not used. */
#define spdk_mempool_create nrt_unused_test_mempool_create
#define spdk_mempool_free nrt_unused_test_mempool_free
#define spdk_mempool_get nrt_unused_test_mempool_get
#define spdk_mempool_get_bulk nrt_unused_test_mempool_get_bulk
#define spdk_mempool_put nrt_unused_test_mempool_put
#define spdk_mempool_put_bulk nrt_unused_test_mempool_put_bulk
#define spdk_mempool_count nrt_unused_test_mempool_count
/* later trees' mock.h pastes some mock names from the unexpanded function name */
#define ut_mqh_spdk_mempool_create ut_mqh_nrt_unused_test_mempool_create
#define ut_mqh_spdk_mempool_get ut_mqh_nrt_unused_test_mempool_get
#define ut_mqh_spdk_mempool_count ut_mqh_nrt_unused_test_mempool_count
#define ut_mqe_spdk_mempool_create ut_mqe_nrt_unused_test_mempool_create
#define ut_mqe_spdk_mempool_get ut_mqe_nrt_unused_test_mempool_get
#define ut_mqe_spdk_mempool_count ut_mqe_nrt_unused_test_mempool_count
#define ut_mq_dequeue_spdk_mempool_create ut_mq_dequeue_nrt_unused_test_mempool_create
#define ut_mq_dequeue_spdk_mempool_get ut_mq_dequeue_nrt_unused_test_mempool_get
#define ut_mq_dequeue_spdk_mempool_count ut_mq_dequeue_nrt_unused_test_mempool_count
#include "common/lib/test_env.c"
#undef spdk_mempool_create
#undef spdk_mempool_free
#undef spdk_mempool_get
#undef spdk_mempool_get_bulk
#undef spdk_mempool_put
#undef spdk_mempool_put_bulk
#undef spdk_mempool_count

struct nrt_mempool {
    size_t count;                /* elements */
    size_t elt_size;
    size_t free;                 /* elements on the stack */
    uint8_t *arena;              /* count x elt_size, zeroed at creation */
    void **stack;
};

struct spdk_mempool *spdk_mempool_create(const char *name, size_t count, size_t ele_size,
                                         size_t cache_size, int socket_id)
{
    (void)name;
    (void)cache_size;   /* one SPDK thread: a per-core cache would hold nothing back */
    (void)socket_id;
    struct nrt_mempool *mp = calloc(1, sizeof(*mp));
    size_t sz = (ele_size + 63) & ~(size_t)63;
    if (!mp || !count)
        goto fail;
    mp->arena = calloc(count, sz);
    mp->stack = calloc(count, sizeof(void *));
    if (!mp->arena || !mp->stack)
        goto fail;
    mp->count = count;
    mp->elt_size = sz;
    for (size_t i = 0; i < count; i++)
        mp->stack[mp->free++] = mp->arena + (count - 1 - i) * sz;
    return (struct spdk_mempool *)mp;
fail:
    if (mp) {
        free(mp->arena);
        free(mp->stack);
    }
    free(mp);
    return NULL;
}

void spdk_mempool_free(struct spdk_mempool *_mp)
{
    struct nrt_mempool *mp = (struct nrt_mempool *)_mp;
    if (!mp)
        return;
    free(mp->arena);
    free(mp->stack);
    free(mp);
}

void *spdk_mempool_get(struct spdk_mempool *_mp)
{
    struct nrt_mempool *mp = (struct nrt_mempool *)_mp;
    return mp && mp->free ? mp->stack[--mp->free] : NULL;
}

int spdk_mempool_get_bulk(struct spdk_mempool *_mp, void **ele_arr, size_t count)
{
    struct nrt_mempool *mp = (struct nrt_mempool *)_mp;
    if (!mp || mp->free < count)
        return -ENOENT;   /* all or nothing, as DPDK's */
    for (size_t i = 0; i < count; i++)
        ele_arr[i] = mp->stack[--mp->free];
    return 0;
}

void spdk_mempool_put(struct spdk_mempool *_mp, void *ele)
{
    struct nrt_mempool *mp = (struct nrt_mempool *)_mp;
    /* A put beyond the pool's size (a double put) or of a foreign pointer is where DPDK
     * would corrupt its ring: the adapter aborts, a crash the suite reports (CRASH-1). */
    uint8_t *p = ele;
    if (!mp || mp->free >= mp->count || p < mp->arena ||
        p >= mp->arena + mp->count * mp->elt_size || (size_t)(p - mp->arena) % mp->elt_size) {
        fprintf(stderr, "nrt spdk adapter: mempool put of %p: %s\n", ele,
                mp && mp->free >= mp->count ? "the pool is full (an element put twice)"
                                            : "not an element of the pool");
        abort();
    }
    mp->stack[mp->free++] = ele;
}

void spdk_mempool_put_bulk(struct spdk_mempool *mp, void **ele_arr, size_t count)
{
    for (size_t i = 0; i < count; i++)
        spdk_mempool_put(mp, ele_arr[i]);
}

size_t spdk_mempool_count(const struct spdk_mempool *_mp)
{
    const struct nrt_mempool *mp = (const struct nrt_mempool *)_mp;
    return mp ? mp->free : 0;
}
#include "CUnit/Basic.h"      /* the build's shim: SPDK's test doubles assert with CUnit */
#if HAVE_IOBUF_C
/* SPDK's iobuf itself, not its test double test_iobuf.c: the double keeps one global wait
 * queue for both pools and every channel, and its spdk_iobuf_entry_abort and
 * spdk_iobuf_for_each_entry are stubs, so a request rdma.c aborts while it waits for a
 * buffer (nvmf_request_get_buffers_abort, on qpair teardown) stays queued, and a later
 * spdk_iobuf_put hands a buffer to a request object that is free or serves another qpair:
 * the SIGSEGV / `tgroup != NULL` abort in nvmf_request_iobuf_get_cb and the buffers lost to
 * it.  The real iobuf queues per pool per thread (the poll groups here share one thread,
 * so one queue), wakes FIFO on put, keeps a re-queued entry at the head, takes its caches
 * from the pool and aborts what is asked.  Included (not linked) so the counts below can
 * read its statics. */
#include "thread/iobuf.c"
#else
#include "common/lib/test_iobuf.c"
#endif
#include "nvmf/rdma.c"
#include "nvmf/transport.c"
#include "spdk/json.h"

#include "nrt.h"
#include "ctrlr.h"
#include "simverbs.h"

#include <arpa/inet.h>
#include <execinfo.h>
#include <signal.h>

#ifndef NRT_SPDK_COMMIT
#define NRT_SPDK_COMMIT "unknown"
#endif

SPDK_LOG_REGISTER_COMPONENT(nvmf)

#if HAVE_QPAIR_ENABLED
#define QPAIR_READY SPDK_NVMF_QPAIR_CONNECTING   /* the core's state once in a poll group */
#else
#define QPAIR_READY SPDK_NVMF_QPAIR_ACTIVE
#endif

#define HANDLE_SLOTS 4096         /* qpair handle = generation x HANDLE_SLOTS + slot, so that a
                                     reused slot never answers for a destroyed qpair */
#define SHUTDOWN_ROUNDS 1000      /* poll rounds a shutdown may take to drain its qpairs */
#define CORE_LOG_LINES 64
#define CORE_LINE_LEN 256
#define MAP_EMPTY ((uintptr_t)0)
#define MAP_GONE ((uintptr_t)1)

/* ---- a pointer map (requests and qpairs to the core's own records) ------------------------ */

struct pmap {
    uintptr_t *keys;
    void **vals;
    uint32_t cap;                /* a power of two */
};

static int pmap_init(struct pmap *m, uint32_t want)
{
    uint32_t cap = 16;
    while (cap < want * 2)
        cap <<= 1;
    m->keys = calloc(cap, sizeof(*m->keys));
    m->vals = calloc(cap, sizeof(*m->vals));
    m->cap = cap;
    return m->keys && m->vals ? 0 : -1;
}

static void pmap_free(struct pmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

static uint32_t pmap_hash(uintptr_t k) { return (uint32_t)((k >> 4) * 2654435761u); }

static void *pmap_get(const struct pmap *m, const void *key)
{
    uintptr_t k = (uintptr_t)key;
    for (uint32_t i = pmap_hash(k) & (m->cap - 1), n = 0; n < m->cap; n++, i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == MAP_EMPTY)
            return NULL;
        if (m->keys[i] == k)
            return m->vals[i];
    }
    return NULL;
}

static int pmap_put(struct pmap *m, const void *key, void *val)
{
    uintptr_t k = (uintptr_t)key;
    int64_t gone = -1;
    for (uint32_t i = pmap_hash(k) & (m->cap - 1), n = 0; n < m->cap; n++, i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == k) {
            m->vals[i] = val;
            return 0;
        }
        if (m->keys[i] == MAP_GONE && gone < 0)
            gone = i;
        if (m->keys[i] == MAP_EMPTY) {
            uint32_t at = gone >= 0 ? (uint32_t)gone : i;
            m->keys[at] = k;
            m->vals[at] = val;
            return 0;
        }
    }
    if (gone >= 0) {
        m->keys[gone] = k;
        m->vals[gone] = val;
        return 0;
    }
    return -1;
}

static void pmap_del(struct pmap *m, const void *key)
{
    uintptr_t k = (uintptr_t)key;
    for (uint32_t i = pmap_hash(k) & (m->cap - 1), n = 0; n < m->cap; n++, i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == MAP_EMPTY)
            return;
        if (m->keys[i] == k) {
            m->keys[i] = MAP_GONE;
            m->vals[i] = NULL;
            return;
        }
    }
}

/* ---- the core's records -------------------------------------------------------------------- */

struct core_qpair {
    struct spdk_nvmf_qpair *qp;
    struct nvmf_emu_qpair emu;
    int32_t handle;
    uint32_t group;
    uint16_t sqhd;
    uint32_t outstanding;        /* executed by the core, not yet completed */
    bool in_group;               /* poll group add succeeded */
    bool disconnecting;          /* spdk_nvmf_qpair_disconnect ran */
    bool fini_started;
    bool gone;                   /* the emulation was told */
};

struct core_cmd {
    struct nvmf_emu_cmd cmd;
    struct spdk_nvmf_request *req;
    struct core_qpair *cq;
    struct core_cmd *next_free;
};

struct core_group {
    struct spdk_nvmf_poll_group pg;
    struct spdk_nvmf_transport_poll_group *tg;
};

struct nrt_transport {
    struct nrt_opts o;
    char err[NRT_ERRMSG_LEN];
    struct spdk_thread *thread;
    struct spdk_nvmf_tgt tgt;
    struct spdk_nvmf_transport *transport;
    struct spdk_nvmf_rdma_transport *rt;
    struct core_group *groups;
    struct nvmf_emu *emu;
    struct core_qpair **qpairs;  /* by slot */
    uint32_t *gen;               /* by slot */
    struct pmap qp_map;          /* spdk_nvmf_qpair * -> core_qpair */
    struct pmap cmd_map;         /* spdk_nvmf_request * -> core_cmd */
    struct core_cmd *cmds, *free_cmds;
    uint32_t ncmds;
    int next_group;
    uint32_t rr;
    uint64_t progress;
    uint64_t wr_capacity;
    uint32_t num_ports;
    struct nrt_async_event events[64];
    uint32_t num_events;
    uint8_t *arena;              /* the benchmark's memcpy floor only */
    char json[256];
    struct spdk_json_val json_vals[16];
    /* SPDK's own log */
    char log[CORE_LOG_LINES][CORE_LINE_LEN];
    uint32_t log_next;
    char last_error[CORE_LINE_LEN];
    char destroy_message[CORE_LINE_LEN];
};

static struct nrt_transport *g_core;   /* the one live transport (SPDK's globals) */

/* ---- the data buffers: iobuf's small pool ----------------------------------------------------
 * Both iobuf buffer sizes are io_unit_size, so every data buffer rdma.c takes is a small
 * one.  A free buffer is in the pool's ring or in a poll group's cache (iobuf.c moves
 * buffers between them in batches); the test double has counts only, and its caches are
 * not taken from its pool. */
static uint64_t core_bufs_in_pool(void)
{
#if HAVE_IOBUF_C
#if HAVE_IOBUF_NODE
    struct spdk_ring *ring = g_iobuf.node[0].small_pool;
#else
    struct spdk_ring *ring = g_iobuf.small_pool;
#endif
    return ring ? spdk_ring_count(ring) : 0;
#else
    return g_iobuf.small_pool_count;
#endif
}

static uint64_t core_bufs_cached(const struct nrt_transport *t)
{
    uint64_t n = 0;
#if HAVE_IOBUF_C
    for (uint32_t i = 0; t->groups && i < t->o.num_poll_groups; i++) {
        const struct spdk_nvmf_transport_poll_group *tg = t->groups[i].tg;
        if (!tg || !tg->buf_cache)
            continue;
#if HAVE_IOBUF_NUMA
        n += tg->buf_cache->cache[0].small.cache_count;
#else
        n += tg->buf_cache->small.cache_count;
#endif
    }
#else
    (void)t;
#endif
    return n;
}

static void core_iobuf_finished(void *arg) { (void)arg; }

/* iobuf's end: its io_device goes, and with it the pools, after SPDK's own audit of them
 * ("small iobuf pool count is X, expected Y", kept with the destroy messages).  A no-op if
 * it was never initialised or has already finished. */
static void core_iobuf_finish(struct nrt_transport *t);

static int core_fail(struct nrt_transport *t, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int core_fail(struct nrt_transport *t, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err, sizeof(t->err), fmt, ap);
    va_end(ap);
    return code;
}

/* ---- the env: SPDK's log, memory maps -------------------------------------------------------- */

static char g_log_sink[CORE_LINE_LEN];
static FILE *g_log_file;         /* nrt_target_set_log_file: SPDK's log appended here too */

static void core_log(int level, const char *file, const int line, const char *func,
                     const char *format, va_list args)
{
    (void)file;
    (void)line;
    char msg[CORE_LINE_LEN];
    int n = snprintf(msg, sizeof(msg), "%s: ", func ? func : "spdk");
    if (n < 0 || n >= (int)sizeof(msg))
        n = 0;
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, format, args);
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        msg[--len] = '\0';
    struct nrt_transport *t = g_core;
    if (!t) {
        snprintf(g_log_sink, sizeof(g_log_sink), "%s", msg);
        return;
    }
    snprintf(t->log[t->log_next++ % CORE_LOG_LINES], CORE_LINE_LEN, "%s", msg);
    if (level <= SPDK_LOG_ERROR)
        snprintf(t->last_error, sizeof(t->last_error), "%s", msg);
    if (strstr(msg, "wr pool count") || strstr(msg, "iobuf pool count")) {
        size_t used = strlen(t->destroy_message);
        if (used + 3 < sizeof(t->destroy_message))
            snprintf(t->destroy_message + used, sizeof(t->destroy_message) - used, "%s%s",
                     used ? "; " : "", msg);
    }
    if (getenv("NRT_SPDK_LOG"))
        fprintf(stderr, "spdk[%d] %s\n", level, msg);
    if (g_log_file)
        fprintf(g_log_file, "spdk[%d] %s\n", level, msg);
}

/* The whole user address space is one registered region, as all of DPDK's memory is:
 * SPDK allocates buffers and queues wherever the allocator puts them. */
#define MAP_BASE ((uint64_t)0x1000)
#define MAP_END ((uint64_t)1 << 47)

struct spdk_mem_map {
    uint64_t default_translation;
    uint64_t translation;        /* of [MAP_BASE, MAP_END) */
    bool set;
    const struct spdk_mem_map_ops *ops;
    void *cb_ctx;
};

struct spdk_mem_map *spdk_mem_map_alloc(uint64_t default_translation,
                                        const struct spdk_mem_map_ops *ops, void *cb_ctx)
{
    struct spdk_mem_map *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->default_translation = default_translation;
    m->ops = ops;
    m->cb_ctx = cb_ctx;
    if (ops && ops->notify_cb &&
        ops->notify_cb(cb_ctx, m, SPDK_MEM_MAP_NOTIFY_REGISTER, (void *)(uintptr_t)MAP_BASE,
                       MAP_END - MAP_BASE) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

void spdk_mem_map_free(struct spdk_mem_map **pmap)
{
    struct spdk_mem_map *m = pmap ? *pmap : NULL;
    if (!m)
        return;
    if (m->ops && m->ops->notify_cb && m->set)
        m->ops->notify_cb(m->cb_ctx, m, SPDK_MEM_MAP_NOTIFY_UNREGISTER,
                          (void *)(uintptr_t)MAP_BASE, MAP_END - MAP_BASE);
    free(m);
    *pmap = NULL;
}

int spdk_mem_map_set_translation(struct spdk_mem_map *map, uint64_t vaddr, uint64_t size,
                                 uint64_t translation)
{
    if (vaddr != MAP_BASE || size != MAP_END - MAP_BASE)
        return -EINVAL;
    map->translation = translation;
    map->set = true;
    return 0;
}

int spdk_mem_map_clear_translation(struct spdk_mem_map *map, uint64_t vaddr, uint64_t size)
{
    (void)vaddr;
    (void)size;
    map->set = false;
    return 0;
}

uint64_t spdk_mem_map_translate(const struct spdk_mem_map *map, uint64_t vaddr, uint64_t *size)
{
    if (map->set && vaddr >= MAP_BASE && vaddr < MAP_END) {
        if (size && *size > MAP_END - vaddr)
            *size = MAP_END - vaddr;
        return map->translation;
    }
    if (size)
        *size = 0;
    return map->default_translation;
}

struct spdk_mempool *spdk_mempool_lookup(const char *name)
{
    (void)name;
    return NULL;   /* one process, no shared pools: creation never finds one */
}

/* ---- the core: transport ids ------------------------------------------------------------------ */

int spdk_nvme_transport_id_compare(const struct spdk_nvme_transport_id *a,
                                   const struct spdk_nvme_transport_id *b)
{
    int c = (int)a->trtype - (int)b->trtype;
    if (!c)
        c = (int)a->adrfam - (int)b->adrfam;
    if (!c)
        c = strcasecmp(a->traddr, b->traddr);
    if (!c)
        c = strcasecmp(a->trsvcid, b->trsvcid);
    return c;
}

const char *spdk_nvme_transport_id_adrfam_str(enum spdk_nvmf_adrfam adrfam)
{
    switch (adrfam) {
    case SPDK_NVMF_ADRFAM_IPV4: return "IPv4";
    case SPDK_NVMF_ADRFAM_IPV6: return "IPv6";
    case SPDK_NVMF_ADRFAM_IB: return "IB";
    case SPDK_NVMF_ADRFAM_FC: return "FC";
    default: return NULL;
    }
}

const char *spdk_nvme_transport_id_trtype_str(enum spdk_nvme_transport_type trtype)
{
    return trtype == SPDK_NVME_TRANSPORT_RDMA ? "RDMA" : NULL;
}

int spdk_nvme_transport_id_populate_trstring(struct spdk_nvme_transport_id *trid,
                                             const char *trstring)
{
    if (!trstring || strlen(trstring) >= sizeof(trid->trstring))
        return -EINVAL;
    for (size_t i = 0; trstring[i]; i++)
        trid->trstring[i] = (char)toupper((unsigned char)trstring[i]);
    trid->trstring[strlen(trstring)] = '\0';
    return 0;
}

void spdk_nvme_trid_populate_transport(struct spdk_nvme_transport_id *trid,
                                       enum spdk_nvme_transport_type trtype)
{
    trid->trtype = trtype;
    spdk_nvme_transport_id_populate_trstring(trid, trtype == SPDK_NVME_TRANSPORT_RDMA ? "RDMA" : "");
}

int spdk_nvmf_qpair_get_listen_trid(struct spdk_nvmf_qpair *qpair,
                                    struct spdk_nvme_transport_id *trid)
{
    return nvmf_transport_qpair_get_listen_trid(qpair, trid);
}

bool spdk_nvmf_request_get_dif_ctx(struct spdk_nvmf_request *req, struct spdk_dif_ctx *dif_ctx)
{
    (void)req;
    (void)dif_ctx;
    return false;   /* RAM namespaces carry no protection information */
}

void spdk_nvmf_ctrlr_abort_aer(struct spdk_nvmf_ctrlr *ctrlr) { (void)ctrlr; }

#if HAVE_SUBSYSTEM_GET_FIRST_IN_NVMF_H
struct spdk_nvmf_subsystem *spdk_nvmf_subsystem_get_first(struct spdk_nvmf_tgt *tgt)
{
    (void)tgt;
    return NULL;   /* subsystems live in the controller emulation, not in SPDK objects */
}

struct spdk_nvmf_subsystem *spdk_nvmf_subsystem_get_next(struct spdk_nvmf_subsystem *s)
{
    (void)s;
    return NULL;
}
#endif

/* ---- the core: qpairs ----------------------------------------------------------------------- */

static struct core_qpair *core_qpair_of(struct spdk_nvmf_qpair *qp)
{
    return g_core ? pmap_get(&g_core->qp_map, qp) : NULL;
}

static void core_drain_thread(struct nrt_transport *t)
{
    for (int i = 0; i < 1000 && spdk_thread_poll(t->thread, 0, 0) > 0; i++)
        ;
}

static void core_iobuf_finish(struct nrt_transport *t)
{
#if HAVE_IOBUF_C
    spdk_iobuf_finish(core_iobuf_finished, NULL);
    core_drain_thread(t);
#else
    (void)t;
#endif
}

static void core_disconnect(struct spdk_nvmf_qpair *qp);

/* The emulation forgets the qpair.  An admin qpair takes its controller with it, and
 * nvmf's ctrlr.c then disconnects the controller's IO qpairs: the association ends with
 * its admin queue (NVMe-oF 1.1 3.4). */
static void core_qpair_gone(struct nrt_transport *t, struct core_qpair *cq)
{
    if (cq->gone)
        return;
    cq->gone = true;
    bool admin = cq->emu.connected && cq->emu.qid == 0;
    uint16_t cntlid = cq->emu.cntlid;
    nvmf_emu_qpair_gone(t->emu, &cq->emu);
    if (!admin)
        return;
    for (uint32_t i = 0; i < t->o.max_qpairs; i++) {
        struct core_qpair *o = t->qpairs[i];
        if (o && o != cq && o->emu.connected && o->emu.cntlid == cntlid && o->emu.qid != 0)
            core_disconnect(o->qp);
    }
}

static void core_fini_done(void *arg)
{
    struct core_qpair *cq = arg;
    struct nrt_transport *t = g_core;
    if (!t)
        return;
    core_qpair_gone(t, cq);
    pmap_del(&t->qp_map, cq->qp);
    uint32_t slot = (uint32_t)cq->handle % HANDLE_SLOTS;
    if (t->qpairs[slot] == cq)
        t->qpairs[slot] = NULL;
    t->progress++;
    free(cq);
}

/* nvmf.c's order: out of the poll group, then the transport finishes the qpair. */
static void core_qpair_destroy(struct nrt_transport *t, struct core_qpair *cq)
{
    if (cq->fini_started)
        return;
    cq->fini_started = true;
    core_qpair_gone(t, cq);
    struct spdk_nvmf_qpair *qp = cq->qp;
    qp->state = SPDK_NVMF_QPAIR_ERROR;   /* nvmf.c: leaving the poll group */
    if (cq->in_group && qp->group) {
        struct core_group *g = &t->groups[cq->group];
        TAILQ_REMOVE(&g->pg.qpairs, qp, link);
        nvmf_transport_poll_group_remove(g->tg, qp);
    }
    nvmf_transport_qpair_fini(qp, core_fini_done, cq);
}

static void core_disconnect(struct spdk_nvmf_qpair *qp)
{
    struct nrt_transport *t = g_core;
    struct core_qpair *cq = core_qpair_of(qp);
    if (!t || !cq || cq->disconnecting)
        return;
    cq->disconnecting = true;
    t->progress++;
    if (!cq->in_group) {
        core_qpair_destroy(t, cq);
        return;
    }
    qp->state = SPDK_NVMF_QPAIR_DEACTIVATING;
    core_qpair_gone(t, cq);
    if (cq->outstanding == 0)
        core_qpair_destroy(t, cq);
    /* else: the last completion destroys it (spdk_nvmf_request_complete) */
}

#if HAVE_QPAIR_DISCONNECT_CB
int spdk_nvmf_qpair_disconnect(struct spdk_nvmf_qpair *qpair, nvmf_qpair_disconnect_cb cb_fn, void *ctx)
{
    core_disconnect(qpair);
    if (cb_fn)
        cb_fn(ctx);
    return 0;
}
#else
int spdk_nvmf_qpair_disconnect(struct spdk_nvmf_qpair *qpair)
{
    core_disconnect(qpair);
    return 0;
}
#endif

struct core_add_ctx {
    struct spdk_nvmf_qpair *qp;
};

static void core_poll_group_add(void *arg)
{
    struct spdk_nvmf_qpair *qp = arg;
    struct nrt_transport *t = g_core;
    struct core_qpair *cq = core_qpair_of(qp);
    if (!t || !cq)
        return;
    struct core_group *g = &t->groups[cq->group];
    TAILQ_INIT(&qp->outstanding);
    qp->group = &g->pg;
    if (nvmf_transport_poll_group_add(g->tg, qp) != 0) {
        qp->group = NULL;
        core_qpair_destroy(t, cq);
        return;
    }
    cq->in_group = true;
    TAILQ_INSERT_TAIL(&g->pg.qpairs, qp, link);
    qp->state = QPAIR_READY;
    t->progress++;
}

void spdk_nvmf_tgt_new_qpair(struct spdk_nvmf_tgt *tgt, struct spdk_nvmf_qpair *qpair)
{
    (void)tgt;
    struct nrt_transport *t = g_core;
    int32_t handle = -1;
    uint32_t slot = 0;
    for (uint32_t i = 0; t && i < t->o.max_qpairs && i < HANDLE_SLOTS; i++)
        if (!t->qpairs[i] && t->gen[i] + 1 < (1u << 18)) {
            slot = i;
            handle = (int32_t)(++t->gen[i] * HANDLE_SLOTS + i);
            break;
        }
    struct core_qpair *cq = handle >= 0 ? calloc(1, sizeof(*cq)) : NULL;
    if (!cq || pmap_put(&t->qp_map, qpair, cq) != 0) {
        free(cq);
        if (t)
            snprintf(t->last_error, sizeof(t->last_error), "qpair table full (max_qpairs = %u)",
                     t->o.max_qpairs);
        nvmf_transport_qpair_fini(qpair, NULL, NULL);
        return;
    }
    cq->qp = qpair;
    cq->handle = handle;
    cq->group = t->next_group >= 0 ? (uint32_t)t->next_group % t->o.num_poll_groups
                                   : t->rr++ % t->o.num_poll_groups;
    t->qpairs[slot] = cq;
    /* nvmf.c hands a new qpair to its poll group's thread with a message */
    spdk_thread_send_msg(t->thread, core_poll_group_add, qpair);
}

/* ---- the core: requests ------------------------------------------------------------------- */

static void core_request_done(struct nrt_transport *t, struct core_cmd *c);
static uint32_t core_used(struct core_qpair *cq);

static void core_io_complete(void *ctx, struct nvmf_emu_cmd *cmd)
{
    struct nrt_transport *t = ctx;
    core_request_done(t, SPDK_CONTAINEROF(cmd, struct core_cmd, cmd));
}

static void core_ctrlr_fatal(void *ctx, uint16_t cntlid)
{
    struct nrt_transport *t = ctx;
    if (t->num_events < sizeof(t->events) / sizeof(t->events[0]))
        t->events[t->num_events++] = (struct nrt_async_event){NRT_ASYNC_KEEP_ALIVE_EXPIRED, cntlid};
    for (uint32_t i = 0; i < t->o.max_qpairs; i++) {
        struct core_qpair *cq = t->qpairs[i];
        if (cq && cq->emu.connected && cq->emu.cntlid == cntlid)
            core_disconnect(cq->qp);
    }
}

static void core_set_status(struct spdk_nvmf_request *req, uint16_t status, bool dnr)
{
    struct spdk_nvme_cpl *rsp = &req->rsp->nvme_cpl;
    rsp->status.sct = (uint8_t)(status >> 8);
    rsp->status.sc = (uint8_t)(status & 0xFF);
    rsp->status.dnr = dnr;
}

void spdk_nvmf_request_exec(struct spdk_nvmf_request *req)
{
    struct nrt_transport *t = g_core;
    struct spdk_nvmf_qpair *qp = req->qpair;
    struct core_qpair *cq = core_qpair_of(qp);
    t->progress++;
    TAILQ_INSERT_TAIL(&qp->outstanding, req, link);
    struct core_cmd *c = t->free_cmds;
    if (!cq || !c || cq->disconnecting) {
        /* nvmf.c aborts commands on a qpair being torn down */
        req->rsp->nvme_cpl.cdw0 = 0;
        core_set_status(req, NRT_SC_INTERNAL_ERROR | (cq && cq->disconnecting ? 0x07 : 0), true);
        if (cq && cq->disconnecting)
            core_set_status(req, 0x0008 /* aborted: SQ deletion */, false);
        if (cq)
            cq->outstanding++;
        spdk_nvmf_request_complete(req);
        return;
    }
    t->free_cmds = c->next_free;
    c->req = req;
    c->cq = cq;
    cq->outstanding++;
    pmap_put(&t->cmd_map, req, c);
    const struct nvme_sqe *sqe = (const struct nvme_sqe *)&req->cmd->nvme_cmd;
    uint32_t xfer = nvmf_cmd_xfer(sqe);
    /* The controller writes only the data it has (an Identify page) into a buffer the SGL
     * may make longer, and all of it goes to the host: admin data is zeroed first, as
     * nvmf's ctrlr.c does. */
    if (xfer == 2 && qp->qid == 0)
        for (uint32_t i = 0; i < req->iovcnt; i++)
            memset(req->iov[i].iov_base, 0, req->iov[i].iov_len);
    c->cmd = (struct nvmf_emu_cmd){.sqe = sqe, .qp = &cq->emu, .iov = req->iov,
                                   .iovcnt = req->length ? req->iovcnt : 0,
                                   .length = req->length, .cb_arg = c};
    if (nvmf_emu_exec(t->emu, &c->cmd) == NVMF_EMU_ASYNC)
        return;   /* the block device completes it: core_io_complete */
    core_request_done(t, c);
}

/* The poll group's nvmf_get_stats counters, kept where nvmf's ctrlr.c keeps them: a
 * successful Fabrics Connect adds an admin or IO qpair, a completed NVM command counts. */
static void core_count_stat(struct nrt_transport *t, struct core_qpair *cq, struct core_cmd *c)
{
    if (cq->group >= t->o.num_poll_groups)
        return;
    struct spdk_nvmf_poll_group_stat *st = &t->groups[cq->group].pg.stat;
    const struct nvme_sqe *sqe = c->cmd.sqe;
    if (sqe->opc == NRT_OPC_FABRICS) {
        const struct nvmf_fabric_sqe *f = (const struct nvmf_fabric_sqe *)(const void *)sqe;
        if (f->fctype == NRT_FCTYPE_CONNECT && c->cmd.status == 0) {
            if (cq->emu.qid == 0)
                st->admin_qpairs++;
            else
                st->io_qpairs++;
        }
    } else if (cq->emu.qid != 0) {
        st->completed_nvme_io++;
    }
}

static void core_request_done(struct nrt_transport *t, struct core_cmd *c)
{
    struct spdk_nvmf_request *req = c->req;
    struct core_qpair *cq = c->cq;
    struct spdk_nvme_cpl *rsp = &req->rsp->nvme_cpl;
    rsp->cdw0 = c->cmd.cdw0;
    rsp->cdw1 = c->cmd.cdw1;
    core_set_status(req, c->cmd.status, c->cmd.dnr);
    core_count_stat(t, cq, c);
#if HAVE_QPAIR_ENABLED
    if (cq->emu.connected && req->qpair->state == SPDK_NVMF_QPAIR_CONNECTING)
        req->qpair->state = SPDK_NVMF_QPAIR_ENABLED;
#endif
    pmap_del(&t->cmd_map, req);
    c->req = NULL;
    c->next_free = t->free_cmds;
    t->free_cmds = c;
    spdk_nvmf_request_complete(req);
}

/* What nvmf's ctrlr.c does for every response: CID, SQ head, SQ id, phase; then the
 * transport sends it.  The last completion of a qpair being torn down destroys it. */
int spdk_nvmf_request_complete(struct spdk_nvmf_request *req)
{
    struct nrt_transport *t = g_core;
    struct spdk_nvmf_qpair *qp = req->qpair;
    struct core_qpair *cq = core_qpair_of(qp);
    struct spdk_nvme_cpl *rsp = &req->rsp->nvme_cpl;
    struct core_cmd *c = pmap_get(&t->cmd_map, req);
    if (c) {
        /* the transport completes a command the block device still has (abort): drop it */
        nvmf_emu_cancel(t->emu, &c->cmd);
        pmap_del(&t->cmd_map, req);
        c->req = NULL;
        c->next_free = t->free_cmds;
        t->free_cmds = c;
    }
    rsp->cid = req->cmd->nvme_cmd.cid;
    rsp->status.p = 0;
    t->progress++;
    if (cq) {
        rsp->sqid = cq->emu.qid;
        uint32_t depth = cq->emu.sqsize ? (uint32_t)cq->emu.sqsize + 1u : 0;
        if (!depth) {
            struct spdk_nvmf_rdma_qpair *rq = SPDK_CONTAINEROF(qp, struct spdk_nvmf_rdma_qpair, qpair);
            depth = rq->max_queue_depth ? rq->max_queue_depth : 1;
        }
        cq->sqhd = (uint16_t)((cq->sqhd + 1) % depth);
        rsp->sqhd = cq->sqhd;
    }
    TAILQ_REMOVE(&qp->outstanding, req, link);
    (void)nvmf_transport_req_complete(req);
    if (cq && cq->outstanding) {
        cq->outstanding--;
        if (cq->outstanding == 0 && cq->disconnecting)
            core_qpair_destroy(t, cq);
    }
    return 0;
}

int nvmf_ctrlr_abort_request(struct spdk_nvmf_request *req)
{
    /* Abort of a command the transport no longer has: the emulation answers Abort itself
     * (command not aborted), so this path only completes the Abort. */
    spdk_nvmf_request_complete(req);
    return 0;
}

/* ---- the io_device SPDK's transport takes channels on ------------------------------------------ */

static int tgt_channel_create(void *io_device, void *ctx) { (void)io_device; (void)ctx; return 0; }
static void tgt_channel_destroy(void *io_device, void *ctx) { (void)io_device; (void)ctx; }

/* ---- nrt.h: options ---------------------------------------------------------------------------- */

void nrt_opts_default(struct nrt_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_queue_depth = 128;
    o->max_io_size = 131072;
    o->io_unit_size = 8192;
    o->in_capsule_data_size = 4096;
    o->num_shared_buffers = 4095;
    o->buf_cache_size = 32;
    o->wr_pool_multiplier = 16;
    o->wr_cache_size = 32;
    o->num_poll_groups = 4;
    o->max_read_depth = 16;
    o->max_sge = 16;
    o->max_sgl_descriptors = 16;
    o->max_qpairs = 256;
    o->max_ports = 4;
    o->max_subsystems = 64;
    o->max_namespaces = 4;
    o->max_memory_regions = 64;
}

uint64_t nrt_opts_min_wr_pool(const struct nrt_opts *o) { (void)o; return 0; }
uint64_t nrt_opts_min_buffers(const struct nrt_opts *o) { (void)o; return 0; }
uint32_t nrt_opts_max_wrs_per_request(const struct nrt_opts *o)
{
    return o->max_sgl_descriptors ? o->max_sgl_descriptors : 1;
}

static uint32_t pow2_at_least(uint32_t v)
{
    uint32_t p = 1;
    while (p < v && p < (1u << 31))
        p <<= 1;
    return p;
}

#define FIT(field, value)                                                                  \
    do {                                                                                   \
        uint32_t v_ = (uint32_t)(value);                                                   \
        if (o->field != v_) {                                                              \
            o->field = v_;                                                                 \
            changed++;                                                                     \
        }                                                                                  \
    } while (0)

/* The most receive WRs an SRQ of a simverbs device holds (its max_srq_wr): the SRQ depth
 * rdma.c asks for is lowered to it. */
#define NRT_SPDK_MAX_SRQ_WR 4096u

/* The options SPDK's transport keeps exactly as given (transport.c and nvmf_rdma_create
 * silently raise or lower the rest, or refuse them). */
int nrt_opts_fit(struct nrt_opts *o)
{
    int changed = 0;
    uint32_t groups = o->num_poll_groups ? o->num_poll_groups : 1;
    FIT(max_io_size, o->max_io_size < 8192 ? 8192 : pow2_at_least(o->max_io_size));
    uint32_t ius = pow2_at_least(o->io_unit_size ? o->io_unit_size : 1);
    uint32_t min_ius = o->max_io_size / SPDK_NVMF_MAX_SGL_ENTRIES;
    if (min_ius < SPDK_NVMF_RDMA_MIN_IO_BUFFER_SIZE)
        min_ius = SPDK_NVMF_RDMA_MIN_IO_BUFFER_SIZE;
    if (ius < min_ius)
        ius = min_ius;
    if (ius > o->max_io_size)
        ius = o->max_io_size;
    FIT(io_unit_size, ius);
    uint32_t min_icd = (uint32_t)(sizeof(struct spdk_nvme_sgl_descriptor) * SPDK_NVMF_MAX_SGL_ENTRIES);
    uint32_t icd = o->in_capsule_data_size < min_icd ? min_icd : (o->in_capsule_data_size + 15) & ~15u;
    FIT(in_capsule_data_size, icd);
    uint32_t bufs = o->num_shared_buffers;
    if (bufs < SPDK_NVMF_MAX_SGL_ENTRIES * 2)
        bufs = SPDK_NVMF_MAX_SGL_ENTRIES * 2;
    if (bufs < groups * o->buf_cache_size)
        bufs = groups * o->buf_cache_size;
    FIT(num_shared_buffers, bufs);
    FIT(max_sgl_descriptors, 16);   /* rdma.c's MSDBD */
    FIT(defects, 0);
    /* SRQ: on or off (rdma.c's no_srq); its depth is clamped by nvmf_rdma_poller_create to
     * the device's max_srq_wr, and a depth without an SRQ means nothing */
    FIT(srq, o->srq != 0);
    if (!o->srq)
        FIT(max_srq_depth, 0);
    else if (o->max_srq_depth > NRT_SPDK_MAX_SRQ_WR)
        FIT(max_srq_depth, NRT_SPDK_MAX_SRQ_WR);
#if HAVE_DATA_WR_POOL_SIZE
    uint64_t pool = o->wr_pool_size ? o->wr_pool_size : (uint64_t)o->max_queue_depth * o->wr_pool_multiplier;
    uint64_t floor = (uint64_t)SPDK_NVMF_MAX_SGL_ENTRIES * 2 * groups;
    if (pool < floor)
        FIT(wr_pool_size, floor);
#else
    FIT(wr_pool_size, 0);
    FIT(wr_pool_multiplier, SPDK_NVMF_MAX_SGL_ENTRIES);
#endif
    return changed;
}

/* Only what the adapter itself needs; every limit SPDK has is SPDK's to refuse. */
int nrt_opts_validate(const struct nrt_opts *o, char *err, size_t len)
{
    const char *why = NULL;
    char buf[NRT_ERRMSG_LEN];
    if (!o->num_poll_groups || o->num_poll_groups > NRT_MAX_POLL_GROUPS)
        why = "num_poll_groups must be 1..64";
    else if (!o->max_qpairs || !o->max_ports || !o->max_subsystems || !o->max_namespaces)
        why = "max_qpairs, max_ports, max_subsystems and max_namespaces must be at least 1";
    else if (o->defects) {
        snprintf(buf, sizeof(buf), "the spdk target has no defect switches (defects = 0x%x)",
                 o->defects);
        why = buf;
    }
    else if (o->srq > 1)
        why = "srq must be 0 (a receive queue per qpair) or 1 (shared receive queues)";
    else if (!o->srq && o->max_srq_depth) {
        snprintf(buf, sizeof(buf), "max_srq_depth = %u without srq: there is no shared "
                 "receive queue to size", o->max_srq_depth);
        why = buf;
    }
    else if (o->max_srq_depth > 0xFFFF) {
        snprintf(buf, sizeof(buf), "max_srq_depth = %u does not fit rdma.c's 16-bit SRQ depth",
                 o->max_srq_depth);
        why = buf;
    }
#if !HAVE_DATA_WR_POOL_SIZE
    else if ((o->wr_pool_size && o->wr_pool_size != (uint64_t)o->max_queue_depth * 16) ||
             (!o->wr_pool_size && o->wr_pool_multiplier != 16)) {
        snprintf(buf, sizeof(buf), "this SPDK tree has no data_wr_pool_size: its data-WR pool is "
                 "max_queue_depth x 16 = %u (asked for %u)", o->max_queue_depth * 16,
                 o->wr_pool_size ? o->wr_pool_size : o->max_queue_depth * o->wr_pool_multiplier);
        why = buf;
    }
#endif
    if (why) {
        if (err && len)
            snprintf(err, len, "%s", why);
        return NRT_EINVAL;
    }
    return 0;
}

/* ---- nrt.h: the transport --------------------------------------------------------------------- */

/* A crash of SPDK's code (or ours) ends the process that runs the target - with isolation,
 * its own child - and the suite reports it as CRASH-1 with the child's stderr: a backtrace
 * there says where.  Sanitizer builds keep the sanitizer's own handlers and reports. */
static void core_fatal_signal(int sig)
{
    static const char head[] = "nrt spdk adapter: fatal signal, backtrace:\n";
    void *frames[64];
    int n = backtrace(frames, 64);
    ssize_t w = write(2, head, sizeof(head) - 1);
    (void)w;
    backtrace_symbols_fd(frames, n, 2);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void core_crash_handlers(void)
{
#if !defined(__SANITIZE_ADDRESS__)
    static bool done;
    if (done)
        return;
    done = true;
    void *frames[1];
    backtrace(frames, 1);   /* loads libgcc's unwinder now, not inside a signal handler */
    const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = core_fatal_signal;
        sa.sa_flags = (int)SA_RESETHAND;
        sigaction(sigs[i], &sa, NULL);
    }
#endif
}

static void core_free(struct nrt_transport *t)
{
    if (t->emu)
        nvmf_emu_destroy(t->emu);
    pmap_free(&t->qp_map);
    pmap_free(&t->cmd_map);
    free(t->cmds);
    free(t->qpairs);
    free(t->gen);
    free(t->groups);
    free(t->arena);
    free(t);
}

static void core_thread_fini(struct nrt_transport *t)
{
    if (!t->thread)
        return;
    core_iobuf_finish(t);
    spdk_io_device_unregister(&t->tgt, NULL);
    core_drain_thread(t);
    spdk_thread_exit(t->thread);
    for (int i = 0; i < 1000 && !spdk_thread_is_exited(t->thread); i++)
        spdk_thread_poll(t->thread, 0, 0);
    spdk_thread_destroy(t->thread);
    spdk_set_thread(NULL);
    spdk_thread_lib_fini();
    free_cores();
    t->thread = NULL;
}

static struct nrt_transport *refuse(struct nrt_transport *t, char *err, size_t len,
                                    const char *what)
{
    if (err && len)
        snprintf(err, len, "%s%s%s", what, t->last_error[0] ? ": " : "", t->last_error);
    if (t->thread)
        core_thread_fini(t);
    g_core = NULL;
    core_free(t);
    return NULL;
}

static int build_transport_specific(struct nrt_transport *t)
{
    /* rdma.c reads its own options from a JSON object: srq maps onto no_srq (off: receives
     * and request slots per qpair, as the built-in target has them; on: one SRQ and its
     * requests per poll group and device, nvmf_rdma_poller_create), max_srq_depth onto
     * max_srq_depth (0: rdma.c's default) */
    if (!t->o.srq)
        snprintf(t->json, sizeof(t->json), "{\"no_srq\": true}");
    else if (!t->o.max_srq_depth)
        snprintf(t->json, sizeof(t->json), "{\"no_srq\": false}");
    else
        snprintf(t->json, sizeof(t->json), "{\"no_srq\": false, \"max_srq_depth\": %u}",
                 t->o.max_srq_depth);
    ssize_t n = spdk_json_parse(t->json, strlen(t->json), t->json_vals,
                                sizeof(t->json_vals) / sizeof(t->json_vals[0]), NULL,
                                SPDK_JSON_PARSE_FLAG_DECODE_IN_PLACE);
    return n > 0 ? 0 : -1;
}

struct nrt_transport *nrt_transport_create(const struct nrt_opts *opts, char *err, size_t len)
{
    struct nrt_opts o;
    if (!opts)
        nrt_opts_default(&o);
    else
        o = *opts;
    if (nrt_opts_validate(&o, err, len))
        return NULL;
    if (g_core) {
        if (err && len)
            snprintf(err, len, "the spdk target runs one transport per process and one is alive");
        return NULL;
    }
    struct nrt_transport *t = calloc(1, sizeof(*t));
    if (!t) {
        if (err && len)
            snprintf(err, len, "out of memory");
        return NULL;
    }
    t->o = o;
    t->next_group = -1;
    g_core = t;
    if (getenv("NRT_ISOLATED_CHILD"))   /* a crash ends only this child: say where */
        core_crash_handlers();
    t->ncmds = o.max_qpairs * (o.max_queue_depth + 1);
    t->cmds = calloc(t->ncmds, sizeof(*t->cmds));
    t->qpairs = calloc(o.max_qpairs, sizeof(*t->qpairs));
    t->gen = calloc(o.max_qpairs, sizeof(*t->gen));
    t->groups = calloc(o.num_poll_groups, sizeof(*t->groups));
    if (!t->cmds || !t->qpairs || !t->gen || !t->groups || pmap_init(&t->qp_map, o.max_qpairs + 8) ||
        pmap_init(&t->cmd_map, t->ncmds) || build_transport_specific(t))
        return refuse(t, err, len, "out of memory");
    for (uint32_t i = 0; i < t->ncmds; i++) {
        t->cmds[i].next_free = t->free_cmds;
        t->free_cmds = &t->cmds[i];
    }
    struct nvmf_emu_opts eo;
    nvmf_emu_opts_default(&eo);
    eo.max_subsystems = o.max_subsystems;
    eo.max_namespaces = o.max_namespaces;
    eo.max_controllers = o.max_qpairs;
    eo.max_io_queues = o.max_qpairs;
    eo.max_queue_depth = o.max_queue_depth;
    eo.max_io_size = o.max_io_size;
    eo.in_capsule_data_size = o.in_capsule_data_size;
    eo.max_sgl_descriptors = 16;   /* rdma.c's NVMF_DEFAULT_MSDBD */
    eo.default_kato_ticks = o.keep_alive_ticks;
    eo.max_outstanding_io = o.max_qpairs * o.max_queue_depth;
    struct nvmf_emu_callbacks cb = {.io_complete = core_io_complete,
                                    .ctrlr_fatal = core_ctrlr_fatal, .ctx = t};
    char emu_err[NRT_ERRMSG_LEN] = "";
    t->emu = nvmf_emu_create(&eo, &cb, emu_err, sizeof(emu_err));
    if (!t->emu)
        return refuse(t, err, len, emu_err);

    /* SPDK's env and thread: as many "cores" as poll groups (SPDK sizes caches and pools
     * by the core count), one thread the harness polls, SPDK's log into ours */
    allocate_cores(o.num_poll_groups);
    spdk_log_open(core_log);
    spdk_thread_lib_init(NULL, 0);
    t->thread = spdk_thread_create("nrt_spdk", NULL);
    if (!t->thread)
        return refuse(t, err, len, "spdk_thread_create failed");
    spdk_set_thread(t->thread);
    spdk_io_device_register(&t->tgt, tgt_channel_create, tgt_channel_destroy, sizeof(int),
                            "nrt_nvmf_tgt");
    snprintf(t->tgt.name, sizeof(t->tgt.name), "nrt");
    t->tgt.num_poll_groups = (uint16_t)o.num_poll_groups;
    TAILQ_INIT(&t->tgt.transports);
    TAILQ_INIT(&t->tgt.poll_groups);

    struct spdk_iobuf_opts io;
    memset(&io, 0, sizeof(io));
#if HAVE_IOBUF_GET_OPTS_SIZE
    spdk_iobuf_get_opts(&io, sizeof(io));
#else
    spdk_iobuf_get_opts(&io);
#endif
    io.small_pool_count = o.num_shared_buffers;
    io.large_pool_count = o.num_shared_buffers;
    io.small_bufsize = o.io_unit_size;
    io.large_bufsize = o.io_unit_size;
#if HAVE_IOBUF_OPTS_SIZE
    io.opts_size = sizeof(io);
#endif
#if HAVE_IOBUF_C
    /* What SPDK's iobuf subsystem does at start-up: the options, then the pools.
     * spdk_iobuf_set_opts has floors of its own (64 small and 8 large buffers, 4 KiB and
     * 8 KiB buffers) that are configuration policy, not the pools' mechanics: it is given
     * at least those, and the pools are then sized as the suite asked (the options the
     * targets share; a buffer is still rounded up to iobuf's 4 KiB alignment). */
    struct spdk_iobuf_opts asked = io;
    if (io.small_pool_count < IOBUF_MIN_SMALL_POOL_SIZE)
        io.small_pool_count = IOBUF_MIN_SMALL_POOL_SIZE;
    if (io.large_pool_count < IOBUF_MIN_LARGE_POOL_SIZE)
        io.large_pool_count = IOBUF_MIN_LARGE_POOL_SIZE;
    if (io.small_bufsize < IOBUF_MIN_SMALL_BUFSIZE)
        io.small_bufsize = IOBUF_MIN_SMALL_BUFSIZE;
    if (io.large_bufsize < IOBUF_MIN_LARGE_BUFSIZE)
        io.large_bufsize = IOBUF_MIN_LARGE_BUFSIZE;
    if (spdk_iobuf_set_opts(&io) != 0)
        return refuse(t, err, len, "SPDK's iobuf refused its options");
    g_iobuf.opts.small_pool_count = asked.small_pool_count;
    g_iobuf.opts.large_pool_count = asked.large_pool_count;
    g_iobuf.opts.small_bufsize = asked.small_bufsize;
    g_iobuf.opts.large_bufsize = asked.large_bufsize;
    if (spdk_iobuf_initialize() != 0)
        return refuse(t, err, len, "SPDK's iobuf could not create its pools");
#else
    spdk_iobuf_set_opts(&io);
#endif

    struct spdk_nvmf_transport_opts to;
    memset(&to, 0, sizeof(to));
    if (!spdk_nvmf_transport_opts_init("RDMA", &to, sizeof(to)))
        return refuse(t, err, len, "SPDK's transport options for RDMA are unavailable");
    to.max_queue_depth = (uint16_t)o.max_queue_depth;
    to.max_qpairs_per_ctrlr = (uint16_t)(o.max_qpairs < 0xFFFF ? o.max_qpairs : 0xFFFF);
    to.in_capsule_data_size = o.in_capsule_data_size;
    to.max_io_size = o.max_io_size;
    to.io_unit_size = o.io_unit_size;
    to.max_aq_depth = (uint32_t)o.max_queue_depth;
    to.num_shared_buffers = o.num_shared_buffers;
    to.buf_cache_size = o.buf_cache_size;
    to.acceptor_poll_rate = 0;
    to.transport_specific = t->json_vals;
#if HAVE_DATA_WR_POOL_SIZE
    to.data_wr_pool_size = o.wr_pool_size ? o.wr_pool_size
                                          : (size_t)o.max_queue_depth * o.wr_pool_multiplier;
    t->wr_capacity = to.data_wr_pool_size;
#else
    t->wr_capacity = (uint64_t)o.max_queue_depth * SPDK_NVMF_MAX_SGL_ENTRIES;
#endif
    t->transport = spdk_nvmf_transport_create("RDMA", &to);
    core_drain_thread(t);
    if (!t->transport)
        return refuse(t, err, len, "SPDK refused the transport options");
    t->transport->tgt = &t->tgt;
    t->rt = SPDK_CONTAINEROF(t->transport, struct spdk_nvmf_rdma_transport, transport);
    /* SPDK may size its pool above what was asked (a minimum per core): what it holds is
     * what the destroy check and the counts compare against */
    if (t->rt->data_wr_pool)
        t->wr_capacity = spdk_mempool_count(t->rt->data_wr_pool);
    /* the harness decides when CM and async events are processed, and which group polls */
    if (t->rt->accept_poller)
        spdk_poller_pause(t->rt->accept_poller);
    for (uint32_t i = 0; i < o.num_poll_groups; i++) {
        struct core_group *g = &t->groups[i];
        g->pg.thread = t->thread;
        g->pg.tgt = &t->tgt;
        TAILQ_INIT(&g->pg.tgroups);
        TAILQ_INIT(&g->pg.qpairs);
        pthread_mutex_init(&g->pg.mutex, NULL);
        g->tg = nvmf_transport_poll_group_create(t->transport, &g->pg);
        if (!g->tg) {
            for (uint32_t j = 0; j < i; j++)
                nvmf_transport_poll_group_destroy(t->groups[j].tg);
            spdk_nvmf_transport_destroy(t->transport, NULL, NULL);
            t->transport = NULL;
            return refuse(t, err, len, "SPDK could not create a poll group");
        }
        g->tg->group = &g->pg;
        TAILQ_INSERT_TAIL(&g->pg.tgroups, g->tg, link);
#if HAVE_TGROUP_POLLER
        if (g->tg->poller)
            spdk_poller_pause(g->tg->poller);
#endif
    }
    core_drain_thread(t);
    return t;
}

static void core_destroy_done(void *arg) { (void)arg; }

int nrt_transport_destroy(struct nrt_transport *t, struct nrt_destroy_report *rep)
{
    if (!t)
        return NRT_EINVAL;
    struct nrt_destroy_report r;
    memset(&r, 0, sizeof(r));
    /* A target shutting down with IO in any state, in nvmf.c's order: every qpair is
     * disconnected and drained (its block IO completes, rdma.c reaps its flushes and forces
     * the rest of its requests through COMPLETED) before the poll groups go; then the
     * transport, which audits its data-WR pool.  rdma.c asserts that a destroyed qpair has
     * no request left, so the poll groups are destroyed only once their qpairs are gone. */
    for (uint32_t i = 0; i < t->o.max_qpairs; i++)
        if (t->qpairs[i] && !t->qpairs[i]->disconnecting) {
            r.requests_released += core_used(t->qpairs[i]);
            core_disconnect(t->qpairs[i]->qp);   /* may free the record at once */
        }
    uint32_t live = 0, rounds = 0;
    for (; rounds < SHUTDOWN_ROUNDS; rounds++) {
        live = 0;
        for (uint32_t i = 0; i < t->o.max_qpairs; i++)
            live += t->qpairs[i] != NULL;
        if (!live)
            break;
        while (nvmf_emu_bdev_pending(t->emu))
            nvmf_emu_bdev_complete(t->emu, 0, 0);
        nvmf_rdma_accept(t->transport);
        for (uint32_t g = 0; g < t->o.num_poll_groups; g++)
            nvmf_transport_poll_group_poll(t->groups[g].tg);
        core_drain_thread(t);
    }
    if (live) {
        /* SPDK did not finish: its objects are left as they are (destroying them would
         * trip its own assertions); the report says so */
        snprintf(r.message, sizeof(r.message),
                 "SPDK did not finish tearing down %u qpair(s) in %u poll rounds", live, rounds);
        r.wr_expected = t->wr_capacity;
        r.wr_returned = t->rt->data_wr_pool ? spdk_mempool_count(t->rt->data_wr_pool) : 0;
        r.buf_expected = t->o.num_shared_buffers;
        r.buf_returned = core_bufs_in_pool() + core_bufs_cached(t);
        g_core = NULL;
        if (rep)
            *rep = r;
        return 0;
    }
    for (uint32_t i = 0; i < t->o.num_poll_groups; i++) {
        if (t->groups[i].tg)
            nvmf_transport_poll_group_destroy(t->groups[i].tg);
        t->groups[i].tg = NULL;
    }
    core_drain_thread(t);
    r.wr_expected = t->wr_capacity;
    r.wr_returned = t->rt->data_wr_pool ? spdk_mempool_count(t->rt->data_wr_pool) : 0;
    r.buf_expected = t->o.num_shared_buffers;
    r.buf_returned = core_bufs_in_pool() + core_bufs_cached(t);   /* the caches are back */
    spdk_nvmf_transport_destroy(t->transport, core_destroy_done, NULL);
    core_drain_thread(t);
    core_iobuf_finish(t);
    snprintf(r.message, sizeof(r.message), "%s", t->destroy_message);
    for (uint32_t i = 0; i < t->o.max_qpairs; i++)
        free(t->qpairs[i]);   /* records of qpairs the poll group destroy took with it */
    core_thread_fini(t);
    g_core = NULL;
    core_free(t);
    if (rep)
        *rep = r;
    return 0;
}

const char *nrt_transport_error(struct nrt_transport *t) { return t ? t->err : "no transport"; }
void nrt_transport_get_opts(struct nrt_transport *t, struct nrt_opts *out) { *out = t->o; }
struct nvmf_emu *nrt_transport_emu(struct nrt_transport *t) { return t->emu; }

int nrt_transport_buffer_arena(struct nrt_transport *t, uint8_t **arena, uint32_t *count,
                               uint32_t *unit)
{
    if (!t->arena)
        t->arena = malloc((size_t)t->o.num_shared_buffers * t->o.io_unit_size + 1);
    if (!t->arena)
        return NRT_ENOMEM;
    *arena = t->arena;
    *count = t->o.num_shared_buffers;
    *unit = t->o.io_unit_size;
    return 0;
}

int nrt_listen(struct nrt_transport *t, uint32_t ipv4, uint16_t service)
{
    if (t->num_ports >= t->o.max_ports)
        return core_fail(t, NRT_ELIMIT, "port table full (max_ports = %u)", t->o.max_ports);
    struct spdk_nvme_transport_id trid;
    memset(&trid, 0, sizeof(trid));
    spdk_nvme_trid_populate_transport(&trid, SPDK_NVME_TRANSPORT_RDMA);
    trid.adrfam = SPDK_NVMF_ADRFAM_IPV4;
    struct in_addr a = {.s_addr = ipv4};
    inet_ntop(AF_INET, &a, trid.traddr, sizeof(trid.traddr));
    snprintf(trid.trsvcid, sizeof(trid.trsvcid), "%u", service);
    struct spdk_nvmf_listen_opts lo;
    memset(&lo, 0, sizeof(lo));
    lo.opts_size = sizeof(lo);
    t->last_error[0] = '\0';
    int rc = spdk_nvmf_transport_listen(t->transport, &trid, &lo);
    core_drain_thread(t);
    if (rc) {
        /* A device that appeared after the transport was created is found by the rescan a
         * failed listen starts (its pollers are added by messages); then listen again, as
         * SPDK's listener retry does. */
        t->last_error[0] = '\0';
        rc = spdk_nvmf_transport_listen(t->transport, &trid, &lo);
        core_drain_thread(t);
    }
    if (rc)
        return core_fail(t, NRT_EINVAL, "SPDK could not listen on %s:%s: %s", trid.traddr,
                         trid.trsvcid, t->last_error[0] ? t->last_error : spdk_strerror(-rc));
    return (int)t->num_ports++;
}

int nrt_subsystem_add(struct nrt_transport *t, const char *nqn)
{
    int rc = nvmf_emu_subsystem_add(t->emu, nqn);
    return rc < 0 ? core_fail(t, NRT_EINVAL, "%s", nvmf_emu_error(t->emu)) : rc;
}

int nrt_namespace_add(struct nrt_transport *t, int subsystem, uint32_t block_size, uint64_t num_blocks)
{
    int rc = nvmf_emu_namespace_add(t->emu, subsystem, block_size, num_blocks);
    return rc < 0 ? core_fail(t, NRT_EINVAL, "%s", nvmf_emu_error(t->emu)) : rc;
}

int nrt_namespace_set_ready(struct nrt_transport *t, int subsystem, uint32_t nsid, int ready)
{
    int rc = nvmf_emu_namespace_set_ready(t->emu, subsystem, nsid, ready != 0);
    return rc < 0 ? core_fail(t, NRT_EINVAL, "%s", nvmf_emu_error(t->emu)) : rc;
}

int nrt_namespace_read(struct nrt_transport *t, int subsystem, uint32_t nsid, uint64_t offset,
                       void *buf, uint64_t len)
{
    int rc = nvmf_emu_namespace_read(t->emu, subsystem, nsid, offset, buf, len);
    return rc < 0 ? core_fail(t, NRT_EINVAL, "%s", nvmf_emu_error(t->emu)) : rc;
}

void nrt_set_next_group(struct nrt_transport *t, int group) { t->next_group = group; }

int nrt_accept_poll(struct nrt_transport *t)
{
    uint64_t before = t->progress;
    int rc = nvmf_rdma_accept(t->transport);
    core_drain_thread(t);
    t->progress += rc > 0;
    return (int)(t->progress - before);
}

int nrt_poll_group(struct nrt_transport *t, int group)
{
    if (group < 0 || (uint32_t)group >= t->o.num_poll_groups || !t->groups[group].tg)
        return core_fail(t, NRT_ENOENT, "no poll group %d", group);
    int n = nvmf_transport_poll_group_poll(t->groups[group].tg);
    core_drain_thread(t);
    if (n > 0)
        t->progress += (uint64_t)n;
    return n < 0 ? 0 : n;
}

static struct core_qpair *core_qpair_at(struct nrt_transport *t, int handle)
{
    if (handle < 0)
        return NULL;
    uint32_t slot = (uint32_t)handle % HANDLE_SLOTS;
    struct core_qpair *cq = slot < t->o.max_qpairs ? t->qpairs[slot] : NULL;
    return cq && cq->handle == handle ? cq : NULL;
}

int nrt_qpair_disconnect(struct nrt_transport *t, int qpair)
{
    struct core_qpair *cq = core_qpair_at(t, qpair);
    if (!cq)
        return core_fail(t, NRT_ENOENT, "no qpair %d", qpair);
    core_disconnect(cq->qp);
    core_drain_thread(t);
    return 0;
}

static struct spdk_nvmf_rdma_qpair *rq_of(struct core_qpair *cq)
{
    return SPDK_CONTAINEROF(cq->qp, struct spdk_nvmf_rdma_qpair, qpair);
}

int nrt_qpair_by_qp_num(struct nrt_transport *t, uint32_t qp_num)
{
    for (uint32_t i = 0; i < t->o.max_qpairs; i++) {
        struct core_qpair *cq = t->qpairs[i];
        if (cq && rq_of(cq)->qp_num == qp_num)
            return cq->handle;
        if (cq && rq_of(cq)->cm_id && rq_of(cq)->cm_id->qp && rq_of(cq)->cm_id->qp->qp_num == qp_num)
            return cq->handle;
    }
    return core_fail(t, NRT_ENOENT, "no qpair with QP number %u", qp_num);
}

/* The requests of one qpair: with SRQ off, its own resources; with SRQ on, the poller's
 * shared ones (rdma.c's nvmf_rdma_qpair_initialize), among which a request is the qpair's
 * while its req.qpair names it. */
static struct spdk_nvmf_rdma_resources *res_of(struct core_qpair *cq)
{
    struct spdk_nvmf_rdma_qpair *rq = rq_of(cq);
    return rq->resources ? rq->resources : (rq->poller ? rq->poller->resources : NULL);
}

/* How many request objects res_of() holds: the qpair's depth, or the SRQ's depth (as
 * rdma.c's nvmf_rdma_qpair_destroy walks them). */
static uint32_t res_count(struct core_qpair *cq)
{
    struct spdk_nvmf_rdma_qpair *rq = rq_of(cq);
    if (rq->srq)
        return rq->poller ? rq->poller->max_srq_depth : 0;
    return rq->max_queue_depth;
}

static uint32_t stailq_len_rdma(struct spdk_nvmf_rdma_request *first)
{
    uint32_t n = 0;
    for (struct spdk_nvmf_rdma_request *r = first; r; r = STAILQ_NEXT(r, state_link))
        n++;
    return n;
}

static uint8_t queue_of(struct core_qpair *cq, struct spdk_nvmf_rdma_request *rr)
{
    struct spdk_nvmf_rdma_qpair *rq = rq_of(cq);
    struct spdk_nvmf_rdma_request *x;
    STAILQ_FOREACH(x, &rq->pending_rdma_read_queue, state_link)
        if (x == rr)
            return NRT_QUEUE_PENDING_READ;
    STAILQ_FOREACH(x, &rq->pending_rdma_write_queue, state_link)
        if (x == rr)
            return NRT_QUEUE_PENDING_WRITE;
    STAILQ_FOREACH(x, &rq->pending_rdma_send_queue, state_link)
        if (x == rr)
            return NRT_QUEUE_PENDING_SEND;
#if HAVE_PENDING_IOBUF_QUEUE
    STAILQ_FOREACH(x, &rq->pending_iobuf_queue, state_link)
        if (x == rr)
            return NRT_QUEUE_PENDING_BUF;
#endif
    if (rq->poller && rq->poller->group) {
        struct spdk_nvmf_request *q;
        STAILQ_FOREACH(q, &rq->poller->group->group.pending_buf_queue, buf_link)
            if (q == &rr->req)
                return NRT_QUEUE_PENDING_BUF;
    }
    return NRT_QUEUE_NONE;
}

static bool req_of_qpair(struct core_qpair *cq, struct spdk_nvmf_rdma_request *rr)
{
    return rr->state != RDMA_REQUEST_STATE_FREE && rr->req.qpair == cq->qp;
}

/* Requests of the qpair not in FREE, counted from the request objects (later trees keep no
 * counter of them). */
static uint32_t core_used(struct core_qpair *cq)
{
    struct spdk_nvmf_rdma_qpair *rq = rq_of(cq);
    struct spdk_nvmf_rdma_resources *res = res_of(cq);
    uint32_t n = 0;
    uint32_t count = res_count(cq);
    (void)rq;
    for (uint32_t i = 0; res && i < count; i++)
        n += req_of_qpair(cq, &res->reqs[i]);
    return n;
}

int nrt_qpair_info(struct nrt_transport *t, int qpair, struct nrt_qpair_info *out)
{
    struct core_qpair *cq = core_qpair_at(t, qpair);
    if (!cq)
        return core_fail(t, NRT_ENOENT, "no qpair %d", qpair);
    struct spdk_nvmf_rdma_qpair *rq = rq_of(cq);
    memset(out, 0, sizeof(*out));
    out->id = qpair;
    out->qid = cq->emu.connected ? cq->emu.qid : 0;
    out->group = cq->group;
    out->cntlid = cq->emu.cntlid;
    if (cq->fini_started)
        out->state = NRT_QP_ERROR;
    else if (cq->disconnecting || rq->ibv_in_error_state)
        out->state = NRT_QP_ERROR;
    else if (!cq->in_group || !cq->emu.connected)
        out->state = NRT_QP_CONNECTING;
    else
        out->state = NRT_QP_ACTIVE;
    out->depth = rq->max_queue_depth;
    out->max_read_depth = rq->max_read_depth;
    out->max_send_depth = rq->max_send_depth;
    out->cur_read_depth = rq->current_read_depth;
    out->cur_send_depth = rq->current_send_depth;
    out->slots_used = core_used(cq);
    out->slots_free = rq->max_queue_depth > out->slots_used ? rq->max_queue_depth - out->slots_used : 0;
    out->pending_read = stailq_len_rdma(STAILQ_FIRST(&rq->pending_rdma_read_queue));
    out->pending_write = stailq_len_rdma(STAILQ_FIRST(&rq->pending_rdma_write_queue));
    out->pending_send = stailq_len_rdma(STAILQ_FIRST(&rq->pending_rdma_send_queue));
    out->qp_num = rq->qp_num;
    struct spdk_nvmf_rdma_resources *res = res_of(cq);
    if (res && rq->max_queue_depth) {
        out->req_states[RDMA_REQUEST_STATE_FREE] = out->slots_free;
        for (uint32_t i = 0; i < res_count(cq); i++) {
            struct spdk_nvmf_rdma_request *rr = &res->reqs[i];
            if (req_of_qpair(cq, rr) && rr->state < NRT_MAX_STATES)
                out->req_states[rr->state]++;
        }
    }
    return 0;
}

int nrt_qpair_requests(struct nrt_transport *t, int qpair, struct nrt_request_info *out, uint32_t max)
{
    struct core_qpair *cq = core_qpair_at(t, qpair);
    if (!cq)
        return core_fail(t, NRT_ENOENT, "no qpair %d", qpair);
    struct spdk_nvmf_rdma_qpair *rq = rq_of(cq);
    struct spdk_nvmf_rdma_resources *res = res_of(cq);
    uint32_t n = 0, count = res_count(cq);
    (void)rq;
    for (uint32_t i = 0; res && i < count; i++) {
        struct spdk_nvmf_rdma_request *rr = &res->reqs[i];
        if (!req_of_qpair(cq, rr))
            continue;
        if (n < max) {
            struct nrt_request_info *ri = &out[n];
            memset(ri, 0, sizeof(*ri));
            ri->slot = i;
            ri->state = rr->state;
            if (rr->req.cmd) {
                ri->cid = rr->req.cmd->nvme_cmd.cid;
                ri->opcode = rr->req.cmd->nvme_cmd.opc;
            }
            ri->queue = queue_of(cq, rr);
            ri->xfer = rr->req.xfer == SPDK_NVME_DATA_HOST_TO_CONTROLLER ? 1 :
                       rr->req.xfer == SPDK_NVME_DATA_CONTROLLER_TO_HOST ? 2 : 0;
            ri->length = rr->req.length;
            ri->num_bufs = rr->req.data_from_pool ? rr->req.iovcnt : 0;
            ri->wrs_outstanding = rr->num_outstanding_data_wr;
        }
        n++;
    }
    return (int)n;
}

int nrt_qpairs(struct nrt_transport *t, int32_t *out, uint32_t max)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->o.max_qpairs; i++)
        if (t->qpairs[i]) {
            if (n < max)
                out[n] = t->qpairs[i]->handle;
            n++;
        }
    return (int)n;
}

int nrt_transport_busy(struct nrt_transport *t)
{
    if (nvmf_emu_bdev_pending(t->emu))
        return 1;
    for (uint32_t i = 0; i < t->o.max_qpairs; i++) {
        struct core_qpair *cq = t->qpairs[i];
        if (!cq)
            continue;
        if (cq->disconnecting || cq->fini_started)
            return 1;          /* teardown still to finish */
        struct spdk_nvmf_rdma_qpair *rq = rq_of(cq);
        if (core_used(cq) || !STAILQ_EMPTY(&rq->pending_rdma_read_queue) ||
            !STAILQ_EMPTY(&rq->pending_rdma_write_queue) ||
            !STAILQ_EMPTY(&rq->pending_rdma_send_queue))
            return 1;
        struct spdk_nvmf_rdma_resources *res = res_of(cq);
        if (res && !STAILQ_EMPTY(&res->incoming_queue))
            return 1;
    }
    for (uint32_t g = 0; g < t->o.num_poll_groups; g++)
        if (t->groups[g].tg && !STAILQ_EMPTY(&t->groups[g].tg->pending_buf_queue))
            return 1;
    return 0;
}

int nrt_bdev_pending(struct nrt_transport *t) { return (int)nvmf_emu_bdev_pending(t->emu); }

/* As nrt.h says: 1 when a block IO completed, 0 when none was pending. */
int nrt_bdev_complete(struct nrt_transport *t, uint32_t index, uint16_t status)
{
    if (!nvmf_emu_bdev_pending(t->emu))
        return 0;
    int rc = nvmf_emu_bdev_complete(t->emu, index, status);
    core_drain_thread(t);
    t->progress++;
    return rc < 0 ? core_fail(t, NRT_EINVAL, "%s", nvmf_emu_error(t->emu)) : 1;
}

int nrt_bdev_set_auto(struct nrt_transport *t, int on)
{
    nvmf_emu_bdev_set_auto(t->emu, on != 0);
    return 0;
}

int nrt_bdev_inject_error(struct nrt_transport *t, uint32_t count, uint16_t status)
{
    return nvmf_emu_bdev_inject_error(t->emu, count, status);
}

int nrt_advance_time(struct nrt_transport *t, uint64_t ticks)
{
    int n = nvmf_emu_advance_time(t->emu, ticks);
    spdk_delay_us(ticks * 1000);   /* 1 tick = 1 ms, SPDK's mock clock too */
    core_drain_thread(t);
    return n;
}

int nrt_wr_pool_counts(struct nrt_transport *t, struct nrt_pool_counts *out)
{
    memset(out, 0, sizeof(*out));
    out->capacity = t->wr_capacity;
    out->ring_free = t->rt && t->rt->data_wr_pool ? spdk_mempool_count(t->rt->data_wr_pool) : 0;
    return 0;   /* held and the audit are not declared (NRT_CAP_WR_HELD) */
}

int nrt_buf_pool_counts(struct nrt_transport *t, struct nrt_pool_counts *out)
{
    memset(out, 0, sizeof(*out));
    out->capacity = t->o.num_shared_buffers;
    out->ring_free = core_bufs_in_pool();
    out->cached = core_bufs_cached(t);
    return 0;
}

int nrt_group_stats(struct nrt_transport *t, int group, struct nrt_group_stats *out)
{
    if (group < 0 || (uint32_t)group >= t->o.num_poll_groups || !t->groups[group].tg)
        return core_fail(t, NRT_ENOENT, "no poll group %d", group);
    memset(out, 0, sizeof(*out));
    struct spdk_nvmf_rdma_poll_group *rg =
        SPDK_CONTAINEROF(t->groups[group].tg, struct spdk_nvmf_rdma_poll_group, group);
    struct spdk_nvmf_rdma_poller *p;
    TAILQ_FOREACH(p, &rg->pollers, link) {
        out->polls += p->stat.polls;
        out->idle_polls += p->stat.idle_polls;
        out->completions += p->stat.completions;
        out->requests += p->stat.requests;
    }
    out->pending_data_buffer = rg->stat.pending_data_buffer;
    struct spdk_nvmf_qpair *qp;
    TAILQ_FOREACH(qp, &t->groups[group].pg.qpairs, link)
        out->num_qpairs++;
    return 0;
}

int nrt_state_transitions(struct nrt_transport *t, uint64_t *out, uint32_t max)
{
    (void)out;
    (void)max;
    return core_fail(t, NRT_EINVAL, "the spdk target does not count state transitions");
}

int nrt_async_events(struct nrt_transport *t, struct nrt_async_event *out, uint32_t max)
{
    uint32_t n = t->num_events < max ? t->num_events : max;
    memcpy(out, t->events, n * sizeof(*out));
    memmove(t->events, t->events + n, (t->num_events - n) * sizeof(*out));
    t->num_events -= n;
    return (int)n;
}

/* Progress: the core's own events (executions, completions, qpair changes) plus every work
 * request SPDK got onto the fabric - rdma.c batches its posts and may put them on the wire a
 * poll later than it decided them (after a poll that reaped an error, say), and a post is a
 * step forward even when no counter of rdma.c moved. */
uint64_t nrt_progress_counter(struct nrt_transport *t)
{
    struct sv_stats st;
    uint64_t posted = sv_stats(sv_fabric_current(), &st) == 0 ? st.posted : 0;
    return t->progress + posted;
}

/* ---- what this target declares ------------------------------------------------------------ */

struct state_name {
    int state;
    const char *name;
    uint8_t queue;
};

/* rdma.c's own states, by its own names (the enum differs between releases) */
static const struct state_name STATES[] = {
    {RDMA_REQUEST_STATE_FREE, "FREE", NRT_QUEUE_NONE},
    {RDMA_REQUEST_STATE_NEW, "NEW", NRT_QUEUE_NONE},
#ifdef TRACE_RDMA_REQUEST_STATE_NEED_DATA_WR
    {RDMA_REQUEST_STATE_NEED_DATA_WR, "NEED_DATA_WR", NRT_QUEUE_PENDING_BUF},
#endif
    {RDMA_REQUEST_STATE_NEED_BUFFER, "NEED_BUFFER", NRT_QUEUE_PENDING_BUF},
#ifdef TRACE_RDMA_REQUEST_STATE_HAVE_BUFFER
    {RDMA_REQUEST_STATE_HAVE_BUFFER, "HAVE_BUFFER", NRT_QUEUE_NONE},
#endif
    {RDMA_REQUEST_STATE_DATA_TRANSFER_TO_CONTROLLER_PENDING,
     "DATA_TRANSFER_TO_CONTROLLER_PENDING", NRT_QUEUE_PENDING_READ},
    {RDMA_REQUEST_STATE_TRANSFERRING_HOST_TO_CONTROLLER, "TRANSFERRING_HOST_TO_CONTROLLER",
     NRT_QUEUE_NONE},
    {RDMA_REQUEST_STATE_READY_TO_EXECUTE, "READY_TO_EXECUTE", NRT_QUEUE_NONE},
    {RDMA_REQUEST_STATE_EXECUTING, "EXECUTING", NRT_QUEUE_NONE},
    {RDMA_REQUEST_STATE_EXECUTED, "EXECUTED", NRT_QUEUE_NONE},
    {RDMA_REQUEST_STATE_DATA_TRANSFER_TO_HOST_PENDING, "DATA_TRANSFER_TO_HOST_PENDING",
     NRT_QUEUE_PENDING_WRITE},
    {RDMA_REQUEST_STATE_READY_TO_COMPLETE_PENDING, "READY_TO_COMPLETE_PENDING",
     NRT_QUEUE_PENDING_SEND},
    {RDMA_REQUEST_STATE_READY_TO_COMPLETE, "READY_TO_COMPLETE", NRT_QUEUE_NONE},
    {RDMA_REQUEST_STATE_TRANSFERRING_CONTROLLER_TO_HOST, "TRANSFERRING_CONTROLLER_TO_HOST",
     NRT_QUEUE_NONE},
    {RDMA_REQUEST_STATE_COMPLETING, "COMPLETING", NRT_QUEUE_NONE},
    {RDMA_REQUEST_STATE_COMPLETED, "COMPLETED", NRT_QUEUE_NONE},
};

int nrt_target_describe(struct nrt_transport *t, struct nrt_target_desc *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "spdk");
    snprintf(out->version, sizeof(out->version), "%s", NRT_SPDK_COMMIT);
    /* Declared: the data-WR pool as SPDK's mempool count against its configured size;
     * request states and queues read from rdma.c's request objects; read and send depths;
     * the destroy-time audit is SPDK's own log line; keep-alive lives in the emulation.
     * Not declared: per-request WR holdings, buffer conservation (no per-request holdings
     * or audit of the buffers; iobuf's own audit at its end is in the destroy message),
     * transition counts, poll group stats per group (SPDK counts per device
     * poller), defect switches. */
    out->caps = NRT_CAP_WR_POOL | NRT_CAP_REQUESTS | NRT_CAP_QUEUES | NRT_CAP_DEPTHS |
                NRT_CAP_DESTROY_REPORT | NRT_CAP_KEEP_ALIVE;
#if HAVE_DATA_WR_POOL_SIZE
    out->caps |= NRT_CAP_WR_CAP_EXACT;
#endif
    /* with SRQs a qpair's receives and request objects are its poll group's (per device) */
    if (t && t->o.srq)
        out->caps |= NRT_CAP_SHARED_RECEIVES;
    out->num_states = RDMA_REQUEST_NUM_STATES < NRT_MAX_STATES ? RDMA_REQUEST_NUM_STATES
                                                               : NRT_MAX_STATES;
    out->free_state = RDMA_REQUEST_STATE_FREE;
    for (size_t i = 0; i < sizeof(STATES) / sizeof(STATES[0]); i++) {
        if (STATES[i].state >= NRT_MAX_STATES)
            continue;
        snprintf(out->state_names[STATES[i].state], NRT_STATE_NAME_LEN, "%s", STATES[i].name);
        out->queue_of_state[STATES[i].state] = STATES[i].queue;
    }
    /* rdma.c keeps a write whose RDMA READs were posted in part on the pending read queue
     * while it is TRANSFERRING_HOST_TO_CONTROLLER, the rest of its READs waiting there */
    out->also_on_queue[RDMA_REQUEST_STATE_TRANSFERRING_HOST_TO_CONTROLLER] = NRT_QUEUE_PENDING_READ;
    /* No transition graph is declared: transitions are not observable from outside
     * rdma.c's switch, so SM-1 judges states against queues only. */
    return 0;
}

/* ---- served in-process (impl/dropin): SPDK's log into a file, nvmf_get_stats ------------------ */

int nrt_target_set_log_file(const char *path);
int nrt_target_stats_json(struct nrt_transport *t, char *buf, size_t len);

/* From now on every line SPDK logs is appended to path as well (NULL: stop); 1 if open. */
int nrt_target_set_log_file(const char *path)
{
    if (g_log_file)
        fclose(g_log_file);
    g_log_file = path ? fopen(path, "a") : NULL;
    if (g_log_file)
        setvbuf(g_log_file, NULL, _IOLBF, 0);
    return g_log_file ? 1 : 0;
}

struct stats_buf {
    char *buf;
    size_t len, used;            /* used may pass len: the size the caller needs */
};

static int stats_buf_write(void *ctx, const void *data, size_t size)
{
    struct stats_buf *b = ctx;
    if (b->used < b->len) {
        size_t n = b->len - b->used < size ? b->len - b->used : size;
        memcpy(b->buf + b->used, data, n);
    }
    b->used += size;
    return 0;
}

/* nvmf_get_stats' result as SPDK's nvmf_rpc.c writes it: tick rate, then per poll group
 * the core's counters and, per transport, trtype and what rdma.c's own
 * nvmf_rdma_poll_group_dump_stat writes (pending_data_buffer, devices).  Returns the
 * length of the JSON text (NUL-terminated in buf when shorter than len). */
int nrt_target_stats_json(struct nrt_transport *t, char *buf, size_t len)
{
    struct stats_buf b = {buf, len, 0};
    struct spdk_json_write_ctx *w = spdk_json_write_begin(stats_buf_write, &b, 0);
    if (!w)
        return NRT_ENOMEM;
    spdk_json_write_object_begin(w);
    spdk_json_write_named_uint64(w, "tick_rate", spdk_get_ticks_hz());
    spdk_json_write_named_array_begin(w, "poll_groups");
    for (uint32_t g = 0; g < t->o.num_poll_groups; g++) {
        struct core_group *cg = &t->groups[g];
        if (!cg->tg)
            continue;
        uint32_t cur_admin = 0, cur_io = 0;
        struct spdk_nvmf_qpair *qp;
        TAILQ_FOREACH(qp, &cg->pg.qpairs, link) {
            struct core_qpair *cq = core_qpair_of(qp);
            if (!cq || !cq->emu.connected)
                continue;
            if (cq->emu.qid == 0)
                cur_admin++;
            else
                cur_io++;
        }
        int pending = g == 0 ? nrt_bdev_pending(t) : 0;
        spdk_json_write_object_begin(w);
        spdk_json_write_named_string_fmt(w, "name", "nvmf_tgt_poll_group_%03u", g);
        spdk_json_write_named_uint32(w, "admin_qpairs", cg->pg.stat.admin_qpairs);
        spdk_json_write_named_uint32(w, "io_qpairs", cg->pg.stat.io_qpairs);
        spdk_json_write_named_uint32(w, "current_admin_qpairs", cur_admin);
        spdk_json_write_named_uint32(w, "current_io_qpairs", cur_io);
        spdk_json_write_named_uint64(w, "pending_bdev_io", pending > 0 ? (uint64_t)pending : 0);
        spdk_json_write_named_uint64(w, "completed_nvme_io", cg->pg.stat.completed_nvme_io);
        spdk_json_write_named_array_begin(w, "transports");
        spdk_json_write_object_begin(w);
        spdk_json_write_named_string(w, "trtype", "RDMA");
        nvmf_rdma_poll_group_dump_stat(cg->tg, w);
        spdk_json_write_object_end(w);
        spdk_json_write_array_end(w);
        spdk_json_write_object_end(w);
    }
    spdk_json_write_array_end(w);
    spdk_json_write_object_end(w);
    if (spdk_json_write_end(w) != 0)
        return NRT_EINVAL;
    if (b.used < len)
        buf[b.used] = '\0';
    return (int)b.used;
}
