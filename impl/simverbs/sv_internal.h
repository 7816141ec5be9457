/*
 * sv_internal.h — simverbs' private object model, shared by its source files only.
 *
 * Every verbs object embeds the public rdma-core struct as its FIRST member, so the
 * pointer the program holds converts to ours with a cast (and back with &x->pub).  Every
 * object also carries an sv_obj that links it on its fabric's registry, which is how
 * sv_fabric_destroy finds what is left and how sv_stats counts live objects.
 *
 * Lookup by number is O(1): a QP number and an MR key both encode a table index plus a
 * generation, so a stale number never finds a reused slot's new owner (until the
 * generation wraps).  Send and receive queues are rings preallocated at creation: the hot
 * path (post, execute, poll) never allocates.
 *
 * Everything declared here has hidden visibility: only libibverbs / librdmacm names and
 * the sv_* harness API are exported.
 */
#ifndef SV_INTERNAL_H
#define SV_INTERNAL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "simverbs.h"

#pragma GCC visibility push(hidden)

#define SV_LIKELY(x) __builtin_expect(!!(x), 1)
#define SV_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define sv_container_of(p, T, m) ((T *)(void *)((char *)(p) - offsetof(T, m)))

enum {
    SV_MAX_DEVICES = 64,
    SV_MAX_INLINE = 1024,        /* per-WR inline bytes a QP may ask for (no device attr) */
    SV_REQ_PDATA = 56,           /* RDMA CM private data sizes on IB/RoCE (REQ, REP, REJ) */
    SV_REP_PDATA = 196,
    SV_REJ_PDATA = 148,
    SV_REJ_TIMEOUT = 4,          /* IB CM REJ reasons the CM reports as event status */
    SV_REJ_INVALID_SID = 8,      /* no listener */
    SV_REJ_CONSUMER = 28,        /* rdma_reject */
    SV_EPHEMERAL_PORT = 49152,
    SV_MAX_HOOKS = 8,            /* progress hooks (in-process targets) per fabric */
};

/* qp_num = (index + 1) << 8 | generation: ascending qp_num is ascending index, the number
 * is never 0 or 1 (the special QPs), and it fits in the 24 bits of an IB QPN. */
#define SV_QP_IDX_LIMIT 0xFFFFu
static inline uint32_t sv_qpn_make(uint32_t idx, uint32_t gen) { return ((idx + 1) << 8) | (gen & 0xFF); }
static inline uint32_t sv_qpn_idx(uint32_t qpn) { return (qpn >> 8) - 1; }

/* MR keys: lkey = gen << 20 | index with gen in 1..2047 (never 0); rkey = lkey | bit 31, so
 * the two differ and an lkey used as an rkey (or the reverse) finds nothing. */
#define SV_KEY_IDX_BITS 20
#define SV_KEY_IDX_MASK ((1u << SV_KEY_IDX_BITS) - 1)
#define SV_KEY_IDX_LIMIT SV_KEY_IDX_MASK
#define SV_RKEY_BIT 0x80000000u

/* Moves a message of len bytes.  The two sizes the NVMe-oF transports send most, a 64-byte
 * command capsule and a 16-byte response, go through 16-byte registers instead of a library
 * call: every load comes before the first store, so an overlap is as safe as memmove's. */
typedef uint8_t sv_v16 __attribute__((vector_size(16)));
static inline void sv_move_msg(void *dst, const void *src, uint32_t len)
{
    const uint8_t *s = src;
    uint8_t *d = dst;
    if (len == 64) {
        sv_v16 a, b, c, e;
        memcpy(&a, s, 16);
        memcpy(&b, s + 16, 16);
        memcpy(&c, s + 32, 16);
        memcpy(&e, s + 48, 16);
        memcpy(d, &a, 16);
        memcpy(d + 16, &b, 16);
        memcpy(d + 32, &c, 16);
        memcpy(d + 48, &e, 16);
    } else if (len == 16) {
        sv_v16 a;
        memcpy(&a, s, 16);
        memcpy(d, &a, 16);
    } else {
        memmove(d, s, len);
    }
}

/* ---- intrusive lists ------------------------------------------------------------------- */

struct sv_link {
    struct sv_link *prev, *next;
};
static inline void sv_list_init(struct sv_link *h) { h->prev = h->next = h; }
static inline int sv_list_empty(const struct sv_link *h) { return h->next == h; }
static inline void sv_list_add_tail(struct sv_link *h, struct sv_link *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}
static inline void sv_list_del(struct sv_link *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* ---- object registry ------------------------------------------------------------------- */

enum sv_kind {
    SV_K_CTX = 1, SV_K_PD, SV_K_MR, SV_K_CQ, SV_K_QP, SV_K_SRQ, SV_K_COMPCH,
    SV_K_CHAN, SV_K_ID, SV_K_HOST,
};

struct sv_obj {
    struct sv_link link;         /* on fabric->objs, in creation order */
    uint8_t kind;
    uint8_t counted;             /* the program's (live_objects), not the library's */
};

struct sv_fabric;
struct sv_ctx;
struct sv_qp;
struct sv_id;
struct sv_hconn;

struct sv_dev {
    struct ibv_device ibdev;     /* first: ibv_get_device_list hands out &ibdev */
    struct sv_fabric *f;
    int index;
    int port_up;
    int removed;
    struct sv_device_attr attr;
    uint32_t n_pd, n_mr, n_cq, n_qp, n_srq;  /* against the attr limits */
    uint32_t ipv4;               /* network byte order: 10.0.0.(index+1) unless set */
    struct sv_ctx *cm_ctx;       /* the CM's own context (rdma_get_devices, id->verbs) */
    struct sv_pd *cm_pd;         /* rdma_create_qp(id, NULL, ...) */
};

struct sv_ctx {
    struct ibv_context ctx;      /* first */
    struct sv_obj obj;
    struct sv_fabric *f;
    struct sv_dev *dev;          /* NULL: the host side's context */
    int lib_owned;               /* 1: the CM's, 2: the host side's (gets no async events);
                                  * the program may not close either */
    uint32_t nchildren;          /* PDs, CQs, comp channels on it */
    /* async events: a ring, grown when full (events are rare) */
    struct ibv_async_event *aq;
    uint32_t aq_head, aq_len, aq_cap;
};

struct sv_pd {
    struct ibv_pd pd;
    struct sv_obj obj;
    struct sv_ctx *ctx;
    uint32_t refs;               /* MRs, QPs, SRQs */
};

struct sv_mr {
    struct ibv_mr mr;
    struct sv_obj obj;
    struct sv_pd *pd;
    uint8_t *base;               /* host pointer of iova */
    uint64_t iova;
    uint64_t len;
    uint32_t lkey, rkey;
    uint32_t idx;
    int access;
    uint8_t *owned;              /* host regions: memory simverbs allocated */
};

struct sv_compch {
    struct ibv_comp_channel ch;
    struct sv_obj obj;
    struct sv_ctx *ctx;
    struct sv_link evq;          /* CQs with an event to get, oldest first */
    uint32_t refs;
};

struct sv_cq {
    struct ibv_cq cq;
    struct sv_obj obj;
    struct sv_fabric *f;
    struct sv_ctx *ctx;
    struct ibv_wc *ring;
    uint32_t cap, head, count;
    uint32_t refs;               /* QPs using it */
    int armed;
    int overrun_reported;        /* one IBV_EVENT_CQ_ERR per overrun episode */
    struct sv_compch *ch;
    struct sv_link evlink;       /* on ch->evq while an event waits */
    int ev_queued;
};

/* A receive WR as posted. */
struct sv_rwqe {
    uint64_t wr_id;
    uint32_t num_sge;
    uint32_t total;
    struct ibv_sge sge[];
};

/* A receive queue (a QP's own or an SRQ's): a ring of power-of-two slots, with a logical
 * bound max_wr on what may be posted. */
struct sv_rq {
    uint8_t *ring;
    uint32_t stride, mask, head, tail, max_wr, max_sge;
};
static inline struct sv_rwqe *sv_rq_slot(const struct sv_rq *rq, uint32_t pos)
{
    return (struct sv_rwqe *)(void *)(rq->ring + (size_t)(pos & rq->mask) * rq->stride);
}

struct sv_srq {
    struct ibv_srq srq;
    struct sv_obj obj;
    struct sv_fabric *f;
    struct sv_ctx *ctx;
    struct sv_pd *pd;
    struct sv_rq rq;
    uint32_t limit;              /* armed IBV_EVENT_SRQ_LIMIT_REACHED threshold, 0: off */
    uint32_t refs;
};

enum { SV_WQE_SIGNALED = 1, SV_WQE_INLINE = 2 };

/* A send WR as posted: the ibv_send_wr fields execution needs, its SGEs, and room for
 * inline data after them. */
struct sv_swqe {
    uint64_t wr_id;
    uint64_t remote_addr;
    const uint8_t *data;         /* inline: the copied bytes */
    uint32_t rkey;
    uint32_t imm;                /* imm_data or invalidate_rkey, as posted */
    uint32_t total;              /* sum of SGE lengths (or inline length) */
    uint8_t opcode;              /* enum ibv_wr_opcode */
    uint8_t flags;               /* SV_WQE_* */
    uint16_t num_sge;
    struct ibv_sge sge[];
};

struct sv_qp {
    struct ibv_qp qp;            /* first */
    struct sv_obj obj;
    struct sv_fabric *f;
    struct sv_ctx *ctx;
    struct sv_pd *pd;
    struct sv_cq *scq, *rcq;
    struct sv_srq *srq;
    uint32_t peer_qpn;           /* where SENDs and RDMA go (RTR dest_qp_num or the CM); a
                                  * number, not a pointer, so a destroyed peer is simply
                                  * not found */
    struct sv_id *cm;            /* the CM id whose QP this is */
    struct sv_hconn *host;       /* a host-side QP */
    uint32_t idx;
    int dev;                     /* device index, -1 for the host */
    /* send queue: [done, head) executed but not yet released (unsignaled WRs hold their
     * slot until a later signaled completion, as on real hardware), [head, tail) pending */
    uint8_t *sq;
    uint32_t sq_stride, sq_mask, sq_head, sq_tail, sq_done;
    uint32_t max_send_wr, max_send_sge, max_inline;
    uint8_t **host_bufs;         /* host QPs: per-slot send buffers (inline data) */
    uint32_t *host_caps;
    struct sv_rq rq;
    int sig_all;
    struct ibv_qp_attr attr;     /* as last modified, for ibv_query_qp */
    /* injected faults */
    uint32_t fail_posts, rae, rnr;
    /* counters */
    uint64_t posts_send, posts_recv, completions, flushed, errors;
};
static inline struct sv_swqe *sv_sq_slot(const struct sv_qp *qp, uint32_t pos)
{
    return (struct sv_swqe *)(void *)(qp->sq + (size_t)(pos & qp->sq_mask) * qp->sq_stride);
}

/* ---- the CM ------------------------------------------------------------------------------ */

struct sv_cmev {
    struct rdma_cm_event ev;     /* first: the program gets &ev, ack converts back */
    struct sv_link link;         /* on a channel, the hold FIFO or the got-not-acked list */
    struct sv_id *to;            /* the id it is for (the child for CONNECT_REQUEST) */
    struct sv_id *listener;      /* CONNECT_REQUEST: the listener */
    uint8_t actual_len;          /* private data bytes the peer really passed */
    uint8_t pdata[SV_REP_PDATA];
};

struct sv_chan {
    struct rdma_event_channel ch;  /* first */
    struct sv_obj obj;
    struct sv_fabric *f;
    struct sv_link q;            /* delivered, not yet got */
    uint32_t nq;
    uint32_t nids;
    int host;                    /* the host side's channel: events processed at delivery */
};

enum sv_id_state {
    SV_ID_IDLE = 0, SV_ID_BOUND, SV_ID_LISTEN, SV_ID_ADDR_RESOLVED, SV_ID_ROUTE_RESOLVED,
    SV_ID_CONNECTING,            /* active: rdma_connect sent, no answer yet */
    SV_ID_REQ_RCVD,              /* passive child: CONNECT_REQUEST, not accepted/rejected */
    SV_ID_ESTABLISHED,
    SV_ID_REJECTED,
    SV_ID_DISCONNECTED,
    SV_ID_ERROR,                 /* address or route resolution failed */
};

struct sv_id {
    struct rdma_cm_id id;        /* first */
    struct sv_obj obj;
    struct sv_link idlink;       /* on fabric->ids (port and listener lookup) */
    struct sv_fabric *f;
    struct sv_chan *chan;
    int state;
    int dev;                     /* bound device, -1: none / any */
    int bound;                   /* holds (dev, port) in the port space */
    uint16_t port;               /* local port, host order */
    int active;                  /* rdma_connect side */
    int delivered;               /* child: its CONNECT_REQUEST reached the program */
    struct sv_id *peer;          /* the other end of the connection */
    struct sv_id *listener;      /* child: its listener (until the request is delivered) */
    struct sv_qp *qp;
    struct sv_hconn *host;
    struct sv_cq *auto_scq, *auto_rcq;  /* rdma_create_qp made them */
    uint8_t init_depth, resp_res;       /* as this side asked / was accepted with */
    uint8_t rnr_retry;
    int sync;                    /* no channel given: calls wait for their own events on a
                                  * channel of the id's own (librdmacm's synchronous mode) */
};

/* ---- the host ------------------------------------------------------------------------- */

struct sv_hconn {
    struct sv_obj obj;
    struct sv_fabric *f;
    int handle;
    struct sv_host_connect_params p;
    struct sv_id *id;
    struct sv_qp *qp;
    struct sv_cq *cq;
    struct sv_mr *rmr;           /* the receive buffers */
    uint8_t *rbuf;
    uint32_t sends_held;         /* posted sends whose slot is not yet released: a reaped
                                  * completion releases its slot and every earlier one */
    uint32_t released;           /* send-queue position up to which slots are released */
    uint64_t *wr_ids;            /* per send-queue slot: the wr_id the caller gave */
    struct sv_host_conn_info info;
};

/* ---- the fabric ----------------------------------------------------------------------- */

struct sv_fabric {
    char err[256];
    int autoprogress;
    int cm_hold;
    /* autoprogress also runs the program's own progress (in-process targets' pollers) */
    struct { int (*fn)(void *arg); void *arg; } hooks[SV_MAX_HOOKS];
    uint32_t nhooks;
    int in_progress_hook;
    int ndev;
    struct sv_dev *devs[SV_MAX_DEVICES];
    struct sv_link objs;         /* every object, creation order */
    struct sv_stats st;
    uint32_t next_handle;
    /* QP table */
    struct sv_qp **qps;
    uint8_t *qp_gen;
    uint32_t *qp_free;
    uint32_t qp_cap, qp_used, qp_nfree;
    uint32_t nqp_pending;        /* QPs whose send queue has pending WRs (autoprogress) */
    /* MR table */
    struct sv_mr **mrs;
    uint16_t *mr_gen;
    uint32_t *mr_free;
    uint32_t mr_cap, mr_used, mr_nfree;
    /* CM */
    struct sv_link hold;         /* held CM events (sv_cm_hold) */
    uint32_t nhold;
    struct sv_link got;          /* got by the program, not yet acked */
    struct sv_link ids;          /* live ids, creation order (for port and listener lookup) */
    uint16_t next_port;
    /* host */
    struct sv_ctx *host_ctx;
    struct sv_pd *host_pd;
    struct sv_chan *host_chan;
    struct sv_hconn **hosts;
    uint32_t nhosts, hosts_cap;
    uint32_t host_regions;       /* host MRs ever registered: the next IOVA slot */
};

/* fabric.c */
void sv__err(struct sv_fabric *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct sv_fabric *sv__fabric(void);      /* current, or a default one (autoprogress) */
void sv__obj_add(struct sv_fabric *f, struct sv_obj *o, int kind, int counted);
void sv__obj_del(struct sv_fabric *f, struct sv_obj *o);
int sv__qp_slot(struct sv_fabric *f, struct sv_qp *qp);
void sv__qp_unslot(struct sv_fabric *f, struct sv_qp *qp);
int sv__mr_slot(struct sv_fabric *f, struct sv_mr *mr);
void sv__mr_unslot(struct sv_fabric *f, struct sv_mr *mr);
void sv__progress_all(struct sv_fabric *f);

static inline struct sv_qp *sv__qp_find(const struct sv_fabric *f, uint32_t qpn)
{
    uint32_t i = sv_qpn_idx(qpn);
    if (SV_UNLIKELY(i >= f->qp_used))
        return NULL;
    struct sv_qp *qp = f->qps[i];
    return (qp && qp->qp.qp_num == qpn) ? qp : NULL;
}
static inline struct sv_mr *sv__mr_lkey(const struct sv_fabric *f, uint32_t key)
{
    uint32_t i = key & SV_KEY_IDX_MASK;
    if (SV_UNLIKELY(i >= f->mr_used))
        return NULL;
    struct sv_mr *m = f->mrs[i];
    return (m && m->lkey == key) ? m : NULL;
}
static inline struct sv_mr *sv__mr_rkey(const struct sv_fabric *f, uint32_t key)
{
    uint32_t i = key & SV_KEY_IDX_MASK;
    if (SV_UNLIKELY(i >= f->mr_used))
        return NULL;
    struct sv_mr *m = f->mrs[i];
    return (m && m->rkey == key) ? m : NULL;
}

/* device.c */
void sv__fd_signal(int fd);              /* an eventfd becomes readable */
void sv__fd_drain(int fd);               /* ... and not */
struct sv_ctx *sv__ctx_open(struct sv_dev *d, struct sv_fabric *f, int lib_owned);
void sv__ctx_free(struct sv_ctx *c);
void sv__async(struct sv_ctx *c, enum ibv_event_type type, void *elem);
void sv__async_purge(struct sv_ctx *c, const void *elem);
struct sv_pd *sv__pd_alloc(struct sv_ctx *c, int counted);
void sv__pd_free(struct sv_pd *pd);
struct sv_mr *sv__mr_reg(struct sv_pd *pd, void *addr, uint64_t len, uint64_t iova, int access,
                         int counted);
void sv__mr_free(struct sv_mr *mr);
void sv__compch_free(struct sv_compch *ch);
struct sv_ctx *sv__cm_ctx(struct sv_dev *d);
int sv__dev_usable(struct sv_fabric *f, struct sv_ctx *c, const char *what);

/* queues.c */
struct sv_cq *sv__cq_create(struct sv_ctx *c, int cqe, struct sv_compch *ch, void *cq_ctx,
                            int counted);
void sv__cq_free(struct sv_cq *cq);
int sv__cq_destroy(struct sv_cq *cq);
struct sv_qp *sv__qp_create(struct sv_pd *pd, struct ibv_qp_init_attr *a, int counted);
void sv__qp_free(struct sv_qp *qp);
void sv__qp_destroy(struct sv_qp *qp);
void sv__qp_set_state(struct sv_qp *qp, enum ibv_qp_state s);
void sv__qp_error(struct sv_qp *qp);         /* to IBV_QPS_ERR, flushing */
void sv__qp_ready(struct sv_qp *qp);         /* on through INIT and RTR to RTS */
void sv__srq_free(struct sv_srq *srq);
int sv__rq_init(struct sv_rq *rq, uint32_t max_wr, uint32_t max_sge);

/* exec.c */
extern const struct ibv_context_ops sv__ops;
int sv__qp_exec(struct sv_qp *qp);
int sv__qp_exec_all(struct sv_qp *qp, int max);   /* sv__qp_exec until 0 or max */
void sv__qp_flush(struct sv_qp *qp);
void sv__srq_check_limit(struct sv_srq *srq);

/* cm_events.c */
struct sv_cmev *sv__ev_new(struct sv_id *to, enum rdma_cm_event_type type, int status);
void sv__ev_pdata(struct sv_cmev *e, const void *p, uint8_t len, uint8_t padded);
void sv__ev_queue(struct sv_fabric *f, struct sv_cmev *e);   /* to its channel, or held */
void sv__ev_simple(struct sv_id *to, enum rdma_cm_event_type type, int status);
void sv__purge_id(struct sv_fabric *f, struct sv_id *id);    /* drops its undelivered events */
void sv__cm_deliver(struct sv_fabric *f, struct sv_cmev *e);
void sv__cmev_free(struct sv_cmev *e);
void sv__chan_free(struct sv_chan *ch);
struct sv_chan *sv__chan_create(struct sv_fabric *f, int host);

/* cm_ids.c */
struct sv_id *sv__id_of_link(struct sv_link *l);          /* from fabric->ids */
int sv__dev_of_ip(const struct sv_fabric *f, uint32_t ip);  /* -1: no device's */
void sv__set_sin(struct sockaddr_in *s, uint32_t ip, uint16_t port);
void sv__bind_dev(struct sv_id *id, int dev);             /* id->verbs = the CM's context */
struct sv_id *sv__id_create(struct sv_fabric *f, struct sv_chan *ch, void *context, int counted);
void sv__id_free(struct sv_id *id);
void sv__id_qp_gone(struct sv_id *id);

/* cm.c */
void sv__cm_device_removed(struct sv_fabric *f, int dev);
int sv__id_connect(struct sv_id *id, const struct rdma_conn_param *p);
int sv__id_disconnect(struct sv_id *id);
void sv__id_destroy(struct sv_id *id);

/* cm_active.c */
int sv__sync_wait(struct sv_id *id, enum rdma_cm_event_type want);

/* host.c */
void sv__host_event(struct sv_hconn *h, struct sv_cmev *e);
void sv__host_qp_error(struct sv_hconn *h);
void sv__host_free(struct sv_hconn *h);

#pragma GCC visibility pop

#endif
