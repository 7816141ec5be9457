/*
 * nrt_internal.h — the target's objects (DESIGN 5.1).  Private to impl/csrc.
 *
 * Memory is allocated when objects are created (transport, qpair, namespace,
 * memory region), never on the IO path.  Queues are intrusive doubly-linked
 * lists so a request can leave any queue in O(1) when its qpair fails.
 */
#ifndef NRT_INTERNAL_H
#define NRT_INTERNAL_H
#include "nrt.h"
#include <stdbool.h>
#include <stddef.h>

/* Everything below is private to the library: hidden symbols bind directly, without
 * going through the PLT of the shared object (nrt.h keeps the public API visible). */
#pragma GCC visibility push(hidden)

#define NRT_CQ_BATCH 32
#define NRT_HANDLE_SLOTS 4096u          /* handle = generation * 4096 + index */
#define NRT_MAX_ASYNC_EVENTS 256

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

struct link {
    struct link *prev, *next;
};

static inline void list_init(struct link *l) { l->prev = l->next = l; }
static inline bool list_empty(const struct link *l) { return l->next == l; }
static inline bool link_linked(const struct link *n) { return n->next != NULL && n->next != n; }
static inline void list_push_tail(struct link *l, struct link *n)
{
    n->prev = l->prev;
    n->next = l;
    l->prev->next = n;
    l->prev = n;
}
static inline void list_unlink(struct link *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}
static inline struct link *list_head(struct link *l) { return list_empty(l) ? NULL : l->next; }

/* ---- pools: a shared ring plus one cache per poll group (mempool semantics) */
struct pool_cache {
    uint32_t *objs;
    uint32_t count;
};

struct pool {
    uint32_t capacity;          /* objects that exist */
    uint32_t *ring;             /* free object indices */
    uint32_t ring_count;
    uint32_t cache_size;        /* kept per group after a put */
    uint32_t max_get;           /* largest single get (sizes the cache arrays) */
    uint32_t num_caches;
    struct pool_cache *caches;
    uint8_t *seen;              /* audit scratch, one byte per object */
    uint64_t get_failures;
};

/* ---- completions ---------------------------------------------------------- */
enum cqe_kind { CQE_RECV = 1, CQE_READ, CQE_WRITE, CQE_SEND };
enum wc_status { WC_SUCCESS = 0, WC_FLUSH_ERR, WC_REM_ACCESS_ERR, WC_LOC_LEN_ERR };

struct cqe {
    struct link link;           /* on the poll group's CQ */
    uint8_t kind;
    uint8_t status;
    struct qpair *qp;
};

/* Something posted on a qpair's send queue, waiting on the wire. */
enum wire_kind { WIRE_READ = 1, WIRE_WRITE, WIRE_SEND };
struct wire_item {
    struct link link;
    uint8_t kind;
};

struct data_wr {
    struct wire_item wire;
    struct cqe cqe;
    struct request *req;
    uint64_t raddr;             /* offset in the host memory region */
    uint32_t rkey;
    uint32_t data_off;          /* offset in the request's data */
    uint32_t len;
};

/* ---- host side of one connection ------------------------------------------ */
enum host_slot_state { HS_FREE = 0, HS_ON_WIRE, HS_DELIVERED, HS_ANSWERED };
struct host_slot {
    struct link link;           /* free list or h2t wire */
    struct nrt_capsule cap;
    uint32_t icd_len;
    uint8_t state;
    uint8_t *icd;               /* in_capsule_data_size bytes */
};

enum recv_state { RECV_IDLE = 0, RECV_POSTED, RECV_IN_CQ, RECV_INCOMING, RECV_HELD };
struct recv {
    struct link link;           /* posted list or incoming list */
    struct cqe cqe;
    struct host_slot *slot;     /* the capsule that landed here */
    uint8_t state;
};

struct request {
    struct link qlink;          /* the one pending queue of its state */
    struct link flink;          /* the qpair's free list, while FREE */
    struct wire_item send;      /* the response SEND */
    struct cqe send_cqe;
    struct link bdev_link;
    struct qpair *qp;
    struct recv *recv;
    const struct nrt_capsule *cap;  /* valid until the response is posted */
    uint8_t cap_opcode;
    uint64_t slba;
    uint32_t slot;
    uint8_t state;
    uint8_t queue;              /* NRT_QUEUE_* */
    uint8_t xfer;               /* 0 none, 1 host->ctrlr, 2 ctrlr->host */
    uint8_t icd;                /* data is in the capsule */
    uint16_t cid;
    uint16_t status;
    uint64_t result;
    uint32_t length;
    struct namespace *ns;
    uint32_t ndesc;
    struct nrt_sgl_desc desc[NRT_MAX_SGL_DESC];
    const uint8_t *icd_data;
    uint32_t nbufs;
    uint32_t *bufs;             /* shared buffer indices, max_bufs_per_request */
    uint32_t nwrs;              /* data WRs held: posted + remainder */
    uint32_t wrs_posted;
    uint32_t wrs_outstanding;   /* posted READs whose completion is not seen */
    uint32_t send_wrs;          /* send-queue depth this request's post took */
    uint32_t *wrs;              /* data WR indices, max_wrs_per_request */
};

struct qpair {
    int32_t id;
    uint32_t index;
    uint32_t qid;
    uint32_t group;
    uint32_t port;
    uint32_t state;
    uint32_t depth;
    uint32_t max_read_depth;
    uint32_t max_send_depth;
    uint32_t cur_read_depth;
    uint32_t cur_send_depth;
    uint64_t max_read_seen;
    uint64_t max_send_seen;
    struct controller *ctrlr;
    struct link group_link;
    struct request *reqs;
    struct link free_reqs;
    uint32_t slots_used;
    struct recv *recvs;
    struct link recv_posted;
    struct link incoming;       /* receives waiting for a free request slot */
    struct host_slot *hslots;
    struct link host_free;
    struct link h2t;            /* host capsules in flight to the target */
    struct link t2h;            /* target send-queue WRs in flight to the host */
    struct link pending_read;
    struct link pending_write;
    struct link pending_send;
    struct nrt_response *host_ring;
    uint32_t hr_head, hr_count, hr_cap;
    uint32_t host_outstanding;
    uint32_t cqes_in_cq;
    uint32_t fail_posts;
    uint64_t reaped_poll;       /* the group's poll count when a CQE of ours was last reaped */
    uint16_t sqhd;
    bool host_gone;
    void *mem;                  /* the single allocation behind the arrays above */
};

struct controller {
    bool live;
    uint32_t refs;              /* qpairs attached; the slot is reused at zero */
    uint32_t subsystem;
    struct qpair *admin;
    uint64_t last_keep_alive;
    uint64_t kato;
    uint32_t cc;
};

struct namespace {
    bool present;
    bool ready;
    uint32_t block_size;
    uint64_t num_blocks;
    uint8_t *data;
};

struct subsystem {
    uint32_t num_ns;
    struct namespace *ns;
};

struct memory_region {
    uint32_t gen;
    bool live;
    uint64_t size;
    uint8_t *data;
};

struct poll_group {
    struct link cq;
    struct link pending_buf;
    struct link qpairs;
    struct nrt_group_stats stats;
};

struct nrt_transport {
    struct nrt_opts o;
    char err[NRT_ERRMSG_LEN];
    uint32_t max_bufs_per_req;
    uint32_t max_wrs_per_req;
    uint64_t wr_expected;       /* what the destroy check expects back */
    struct pool wr_pool;
    struct data_wr *wrs;
    struct pool buf_pool;
    uint8_t *buf_arena;
    struct poll_group *groups;
    uint32_t num_ports;
    bool *port_up;
    uint32_t num_subsystems;
    struct subsystem *subsystems;
    struct memory_region *mrs;
    struct qpair **qpairs;
    uint32_t *qpair_gen;
    struct controller *ctrlrs;
    struct link bdev_queue;
    uint32_t bdev_count;
    bool bdev_auto;
    uint32_t bdev_err_count;
    uint16_t bdev_err_status;
    uint64_t now;
    uint64_t progress;
    uint64_t transitions[NRT_REQ_NSTATES * NRT_REQ_NSTATES];
    struct nrt_async_event events[NRT_MAX_ASYNC_EVENTS];
    uint32_t num_events;
};

/* pool.c */
int pool_init(struct pool *p, uint32_t capacity, uint32_t num_caches, uint32_t cache_size,
              uint32_t max_get);
void pool_fini(struct pool *p);
bool pool_get(struct pool *p, uint32_t group, uint32_t *out, uint32_t n);
void pool_put(struct pool *p, uint32_t group, const uint32_t *objs, uint32_t n);
uint32_t pool_cached(const struct pool *p);
void pool_flush_caches(struct pool *p);

/* transport.c */
int nrt_fail(struct nrt_transport *t, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct qpair *qpair_lookup(struct nrt_transport *t, int id);
struct memory_region *mr_lookup(struct nrt_transport *t, uint32_t key);
void qpair_free(struct nrt_transport *t, struct qpair *qp);

/* fabric.c */
void cq_push(struct nrt_transport *t, struct qpair *qp, struct cqe *c, uint8_t kind, uint8_t status);
bool qp_post_allowed(struct nrt_transport *t, struct qpair *qp);
void req_copy_bufs(struct nrt_transport *t, struct request *r, uint32_t off, uint8_t *lin,
                   uint32_t len, bool to_bufs);
void qp_set_error(struct nrt_transport *t, struct qpair *qp);
void recv_repost(struct qpair *qp, struct recv *rv);

/* request.c */
static inline void req_set_state(struct nrt_transport *t, struct request *r, uint8_t state)
{
    t->transitions[r->state * NRT_REQ_NSTATES + state]++;
    t->progress++;
    r->state = state;
}
void req_process(struct nrt_transport *t, struct request *r);
void req_release(struct nrt_transport *t, struct request *r);
void qp_start_incoming(struct nrt_transport *t, struct qpair *qp);
void qp_process_pending(struct nrt_transport *t, struct qpair *qp);
void group_process_pending_buf(struct nrt_transport *t, struct poll_group *g);
void cqe_handle(struct nrt_transport *t, struct cqe *c);
void bdev_finish(struct nrt_transport *t, struct request *r, uint16_t status);

#pragma GCC visibility pop

#endif
