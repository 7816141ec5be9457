/*
 * nrt_internal.h — the target's objects (DESIGN 5.1).  Private to impl/csrc.
 *
 * Memory is allocated when objects are created (transport, qpair, namespace,
 * memory region), never on the IO path.  Queues are intrusive doubly-linked
 * lists so a request can leave any queue in O(1) when its qpair fails.
 */
#ifndef NRT_INTERNAL_H
#define NRT_INTERNAL_H
#include "ctrlr.h"
#include "nrt.h"
#include "nvmf_wire.h"
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
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
    uint32_t *seen;             /* audit scratch: the last audit that saw each object */
    uint32_t audit;             /* the running audit's number (never 0 while auditing) */
    uint64_t get_failures;
};

/* ---- work request contexts: wr_id points at one of these tags ------------------ */
enum wr_kind { WRK_RECV = 1, WRK_DATA, WRK_SEND };

/* Fields in the order the data path touches them: the WR's own (kind, req, sge, offsets)
 * share a cache line with the head of the ibv_send_wr, the part a post reads; the rest of
 * the ibv_send_wr (fields other transports and opcodes use) comes last. */
struct data_wr {
    uint8_t kind;               /* WRK_DATA: first, wr_id points here */
    struct request *req;
    struct ibv_sge *sge;        /* max_sge entries in the transport's SGE arena */
    uint32_t data_off;          /* offset in the request's data */
    uint32_t len;
    struct ibv_send_wr wr;
};

enum recv_state { RECV_IDLE = 0, RECV_POSTED, RECV_INCOMING, RECV_HELD, RECV_DEFERRED };
struct recv {
    uint8_t kind;               /* WRK_RECV */
    uint8_t state;
    struct link link;           /* the qpair's incoming list */
    struct qpair *qp;
    uint8_t *buf;               /* 64-byte SQE + in_capsule_data_size, in the qpair's MR */
    uint32_t byte_len;          /* what the SEND carried */
    struct ibv_recv_wr wr;
    struct ibv_sge sge;
};

struct request {
    uint8_t send_kind;          /* WRK_SEND: wr_id of the response SEND points here */
    struct link qlink;          /* the one pending queue of its state */
    struct link flink;          /* the qpair's free list, while FREE */
    struct qpair *qp;
    struct recv *recv;
    const struct nvme_sqe *sqe; /* in the receive buffer; valid while the recv is held */
    uint8_t cap_opcode;
    uint32_t slot;
    uint8_t state;
    uint8_t queue;              /* NRT_QUEUE_* */
    uint8_t xfer;               /* 0 none, 1 host->ctrlr, 2 ctrlr->host */
    uint8_t icd;                /* data is in the capsule */
    uint8_t in_bdev;            /* its IO waits in the block device */
    uint16_t cid;
    uint16_t status;
    uint32_t length;
    uint32_t ndesc;
    uint32_t nbufs;
    uint32_t *bufs;             /* shared buffer indices, max_bufs_per_request */
    uint32_t nwrs;              /* data WRs held: posted + remainder */
    uint32_t wrs_posted;
    uint32_t wrs_outstanding;   /* posted READs whose completion is not seen */
    uint32_t send_wrs;          /* send-queue depth this request's post took */
    uint32_t *wrs;              /* data WR indices, max_wrs_per_request */
    struct iovec *iov;          /* the data as the controller emulation sees it */
    struct nvmf_emu_cmd cmd;
    struct nvme_cqe *rsp;       /* the response CQE, in the qpair's MR */
    struct ibv_send_wr send_wr;
    struct ibv_sge send_sge;
    /* last: a request of one descriptor (the usual one) touches only the first of these, so
     * the fields above stay on as few cache lines as they can */
    struct { uint64_t addr; uint32_t len, key; } desc[NRT_MAX_SGL_DESC];
};

struct device {
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct ibv_mr *buf_mr;      /* the shared data buffers, registered with this PD */
    struct ibv_cq **cqs;        /* one per poll group */
    uint32_t *cq_need;          /* entries the group's qpairs on this device can generate */
    uint32_t max_qp_wr;
    uint32_t max_sge;
    uint32_t max_rd_atom;
    bool port_up;
};

struct listener {
    struct rdma_cm_id *id;
    struct device *dev;
};

struct qpair {
    int32_t id;
    uint32_t index;
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
    struct nvmf_emu_qpair emu;  /* qid, cntlid, connected: the controller's view */
    struct rdma_cm_id *cm_id;
    struct ibv_qp *qp;
    uint32_t qp_num;
    struct device *dev;
    struct ibv_mr *mr;          /* receive buffers and response CQEs */
    struct link group_link;
    struct request *reqs;
    struct link free_reqs;
    uint32_t slots_used;
    struct recv *recvs;
    struct link incoming;       /* receives waiting for a free request slot */
    struct link deferred;       /* receives whose re-post failed: retried at each poll */
    struct link pending_read;
    struct link pending_write;
    struct link pending_send;
    uint32_t recvs_posted;      /* posted to the QP, completion not yet reaped */
    uint32_t signaled_outstanding;
    uint64_t reaped_poll;       /* the group's poll count when a completion of ours was last reaped */
    uint16_t sqhd;
    bool disconnected;          /* rdma_disconnect done */
    bool verbs_gone;            /* QP, id and MR destroyed */
    bool emu_gone;              /* the controller emulation was told the qpair is gone */
    void *mem;                  /* the single allocation behind the arrays above */
    uint8_t *bufs;              /* the registered part of mem */
};

struct poll_group {
    struct link pending_buf;
    struct link qpairs;
    struct nrt_group_stats stats;
};

struct nrt_transport {
    struct nrt_opts o;
    char err[NRT_ERRMSG_LEN];
    uint32_t ius_shift;         /* log2(io_unit_size), a power of two */
    uint32_t max_bufs_per_req;
    uint32_t max_wrs_per_req;
    uint64_t wr_expected;       /* what the destroy check expects back */
    struct pool wr_pool;
    struct data_wr *wrs;
    struct ibv_sge *wr_sges;
    struct pool buf_pool;
    uint8_t *buf_arena;
    struct poll_group *groups;
    struct rdma_event_channel *cm_channel;
    uint32_t num_devices;
    struct device *devices;     /* max_ports entries */
    uint32_t num_ports;
    struct listener *listeners;
    struct nvmf_emu *emu;
    struct qpair **qpairs;
    uint32_t *qpair_gen;
    int next_group;
    uint32_t rr_group;
    uint64_t progress;
    uint64_t transitions[NRT_REQ_NSTATES * NRT_REQ_NSTATES];
    struct nrt_async_event events[NRT_MAX_ASYNC_EVENTS];
    uint32_t num_events;
    struct ibv_wc wc[NRT_CQ_BATCH];
};

/* pool.c */
int pool_init(struct pool *p, uint32_t capacity, uint32_t num_caches, uint32_t cache_size,
              uint32_t max_get);
void pool_fini(struct pool *p);
bool pool_get_slow(struct pool *p, uint32_t group, uint32_t *out, uint32_t n);
void pool_put_slow(struct pool *p, uint32_t group, const uint32_t *objs, uint32_t n);

/* All or nothing: either n objects land in out, or none are taken.  The usual get, one
 * the group's cache holds, is served here; pool_get_slow refills the cache from the ring
 * (or fails) exactly as this would after a refill. */
static inline bool pool_get(struct pool *p, uint32_t group, uint32_t *out, uint32_t n)
{
    struct pool_cache *c = &p->caches[group];
    if (n - 1u < c->count && n <= p->max_get) {   /* 1 <= n <= count */
        c->count -= n;
        for (uint32_t i = 0; i < n; i++)   /* n is small: a loop beats a memcpy call */
            out[i] = c->objs[c->count + i];
        return true;
    }
    return pool_get_slow(p, group, out, n);
}

/* The usual put leaves the group's cache at or below cache_size: appended here;
 * pool_put_slow flushes the excess to the ring.  An empty put changes nothing. */
static inline void pool_put(struct pool *p, uint32_t group, const uint32_t *objs, uint32_t n)
{
    struct pool_cache *c = &p->caches[group];
    if (n && n <= p->cache_size - c->count && c->count <= p->cache_size) {
        for (uint32_t i = 0; i < n; i++)
            c->objs[c->count + i] = objs[i];
        c->count += n;
        return;
    }
    pool_put_slow(p, group, objs, n);
}
uint32_t pool_cached(const struct pool *p);
void pool_flush_caches(struct pool *p);

/* transport.c */
int nrt_fail(struct nrt_transport *t, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct qpair *qpair_lookup(struct nrt_transport *t, int id);
void qpair_free(struct nrt_transport *t, struct qpair *qp);
void async_event(struct nrt_transport *t, uint32_t type, uint32_t object);

/* poll.c */
void qp_set_error(struct nrt_transport *t, struct qpair *qp);
void recv_repost(struct nrt_transport *t, struct qpair *qp, struct recv *rv);
int qp_post_send(struct nrt_transport *t, struct qpair *qp, struct ibv_send_wr *wr);
void qp_retry_recvs(struct nrt_transport *t, struct qpair *qp);

/* request.c */
/* A transition from the state r leaves (from == r->state): counted, then made.  Inside the
 * state machine's switch the caller names it, so the count lands at a constant place. */
static inline void req_move(struct nrt_transport *t, struct request *r, uint8_t from, uint8_t to)
{
    t->transitions[from * NRT_REQ_NSTATES + to]++;
    t->progress++;
    r->state = to;
}
static inline void req_set_state(struct nrt_transport *t, struct request *r, uint8_t state)
{
    req_move(t, r, r->state, state);
}
void req_process(struct nrt_transport *t, struct request *r);
void req_release(struct nrt_transport *t, struct request *r);
void qp_start_incoming(struct nrt_transport *t, struct qpair *qp);
void qp_process_pending(struct nrt_transport *t, struct qpair *qp);
void group_process_pending_buf(struct nrt_transport *t, struct poll_group *g);
struct qpair *wc_handle(struct nrt_transport *t, const struct ibv_wc *wc);
void req_io_complete(void *ctx, struct nvmf_emu_cmd *cmd);

#pragma GCC visibility pop

#endif
