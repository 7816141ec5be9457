/*
 * simverbs.h — the harness's side of simverbs, a deterministic simulated RDMA provider.
 *
 * simverbs defines the libibverbs and librdmacm symbols that RDMA target transports use
 * (ibv_get_device_list, ibv_open_device, ibv_alloc_pd, ibv_reg_mr / ibv_reg_mr_iova2,
 * ibv_create_cq, ibv_create_srq, rdma_create_event_channel, rdma_create_id, rdma_bind_addr,
 * rdma_listen, rdma_get_cm_event, rdma_create_qp, rdma_accept, rdma_reject,
 * rdma_disconnect, ...) and fills each context's ops table, so rdma-core's inline
 * ibv_post_send / ibv_post_recv / ibv_post_srq_recv / ibv_poll_cq dispatch to it.  A verbs
 * program includes only <infiniband/verbs.h> and <rdma/rdma_cma.h> and never this header.
 *
 * This header is for the harness: it builds the fabric (devices with their attributes),
 * plays the host (connects through the CM with private data, registers host memory, sends
 * capsule bytes, receives responses), decides every execution (nothing moves until the
 * harness executes a queue pair's next posted work request) and injects faults.
 *
 * No threads, clocks or randomness: the same calls give the same execution, bit for bit.
 * The only process-wide state is the current fabric, which verbs calls without an object
 * argument (ibv_get_device_list, rdma_create_event_channel) act on.
 *
 * Addresses: device d (0-based) owns IPv4 address 10.0.0.(d+1) (sv_device_set_ipv4 gives it
 * another).  A listener binds to (address, port); a host connects to the same pair.  Host memory regions live at
 * synthetic, deterministic IO virtual addresses (the address a keyed SGL carries).
 *
 * Queue pairs are named by qp_num everywhere in this API; target and host QPs share the
 * number space.
 *
 * Return conventions: int functions give >= 0 on success, a negative errno (-EINVAL,
 * -ENOENT, -ENOMEM, -EAGAIN, ...) on failure; sv_error() then says why.
 *
 * Simulation notes (what a verbs program sees; each as real RoCE hardware and rdma-core do
 * unless said otherwise):
 *  - Only RC QPs.  Opcodes: SEND, SEND_WITH_IMM, SEND_WITH_INV (reported to the receiver
 *    with IBV_WC_WITH_INV; nothing is invalidated: there are no memory windows), RDMA_WRITE,
 *    RDMA_WRITE_WITH_IMM, RDMA_READ.  Atomics, MW binds, UD, XRC and the _ex verbs objects
 *    (verbs_get_ctx() is NULL) are not simulated.
 *  - A send queue slot is held from the post until its completion is generated; an
 *    unsignaled WR's slot is released by the next signaled completion of the same QP (or a
 *    flush), so a QP that never signals fills up and ibv_post_send returns ENOMEM.
 *  - A SEND to a peer QP still in INIT waits like an RNR (the CM is about to make it
 *    ready); to a peer that is gone, in RESET or in ERR it fails IBV_WC_RETRY_EXC_ERR.
 *    RNR waits forever (rnr_retry 7) unless sv_qp_rnr injects the error.
 *  - A receive too small: the receiver's WR completes IBV_WC_LOC_LEN_ERR and the sender's
 *    IBV_WC_REM_INV_REQ_ERR, both QPs to error.  A remote access violation completes
 *    IBV_WC_REM_ACCESS_ERR and errors the requester only.
 *  - The CM grants a QP IBV_ACCESS_REMOTE_READ only if its side ended up with responder
 *    resources > 0 (the IB CM's rule), IBV_ACCESS_REMOTE_WRITE always.
 *  - CM private data lengths are the IB CM's: a CONNECT_REQUEST reports 56 bytes, the
 *    active side's ESTABLISHED 196, a REJECTED 148, zero-padded.  rdma_reject gives status
 *    28 (consumer defined); no listener gives REJECTED with status 8 (invalid service ID);
 *    a down port or removed device gives UNREACHABLE with status -ETIMEDOUT.
 *    RDMA_CM_EVENT_TIMEWAIT_EXIT is never generated.  An id made without an event
 *    channel is synchronous, as in librdmacm: rdma_resolve_addr / rdma_resolve_route /
 *    rdma_connect wait for their event (running the fabric) and keep it in id->event.
 *  - A completion that finds its CQ full is dropped and counted (cq_overruns), with one
 *    IBV_EVENT_CQ_ERR per overrun episode (until the CQ is polled again).
 *  - RDMA READs complete when executed, so the initiator depth is never the limit.
 */
#ifndef SIMVERBS_H
#define SIMVERBS_H
#include <stddef.h>
#include <stdint.h>

struct sv_fabric;

/* ---- the fabric and its devices ------------------------------------------------------ */

struct sv_device_attr {          /* what ibv_query_device / ibv_query_port report */
    char name[32];               /* ibv_get_device_name(); default "simverbs<d>" */
    uint64_t max_mr_size;
    uint32_t max_qp;
    uint32_t max_qp_wr;
    uint32_t max_sge;
    uint32_t max_cq;
    uint32_t max_cqe;
    uint32_t max_mr;
    uint32_t max_pd;
    uint32_t max_qp_rd_atom;     /* responder resources */
    uint32_t max_qp_init_rd_atom;/* initiator depth: bounds outstanding RDMA READs */
    uint32_t max_srq;            /* 0: no SRQ support */
    uint32_t max_srq_wr;
    uint32_t max_srq_sge;
    uint32_t device_cap_flags;   /* IBV_DEVICE_* */
    uint32_t port_mtu;           /* bytes: 256..4096 */
};

void sv_device_attr_default(struct sv_device_attr *a);

/* Creates an empty fabric and makes it current. */
struct sv_fabric *sv_fabric_create(void);
/* Frees the fabric and everything still on it (a leaked verbs object is counted in
 * sv_stats.leaked_objects first; the fabric is gone afterwards, so a harness that wants
 * the number reads sv_stats().live_objects just before).  The current fabric becomes NULL
 * if it was this one. */
void sv_fabric_destroy(struct sv_fabric *f);
void sv_fabric_set_current(struct sv_fabric *f);
struct sv_fabric *sv_fabric_current(void);
/* Autoprogress (off for fabrics made here): every ibv_poll_cq and rdma_get_cm_event first
 * executes every pending WR of every QP, ascending qp_num, until a pass moves nothing.
 * An unmodified verbs program that calls a verbs entry point with no current fabric gets
 * a default one (one device, sv_device_attr_default) with autoprogress on. */
void sv_fabric_set_autoprogress(struct sv_fabric *f, int on);
const char *sv_error(const struct sv_fabric *f);

/* Adds a device (attr NULL: defaults); returns its index. */
int sv_device_add(struct sv_fabric *f, const struct sv_device_attr *attr);
/* The default IPv4 address of device d, in network byte order (10.0.0.(d+1)). */
uint32_t sv_device_ipv4(int dev);
/* Gives device dev another address (network byte order; unique on the fabric). */
int sv_device_set_ipv4(struct sv_fabric *f, int dev, uint32_t ipv4);
/* The device that owns ipv4, or -ENOENT. */
int sv_device_find_ipv4(struct sv_fabric *f, uint32_t ipv4);
/* With autoprogress on, every pass of it also calls each hook(arg), in the order added
 * (none is re-entered while a hook runs: a hook's own verbs calls autoprogress too); a hook
 * returns > 0 when it did something, and passes repeat until neither the fabric nor any
 * hook moves.  For programs that run targets in-process (a drop-in libibverbs,
 * impl/dropin).  At most 8 hooks: -ENOSPC. */
int sv_fabric_add_progress_hook(struct sv_fabric *f, int (*hook)(void *arg), void *arg);
int sv_fabric_remove_progress_hook(struct sv_fabric *f, int (*hook)(void *arg), void *arg);
/* The device's name (ibv_get_device_name), NULL if there is no such device. */
const char *sv_device_name(struct sv_fabric *f, int dev);

/* ---- host side ------------------------------------------------------------------------- */

/* Host memory: returns the region's rkey (> 0).  access: IBV_ACCESS_* (REMOTE_READ lets the
 * target RDMA READ it, REMOTE_WRITE lets it RDMA WRITE it). */
int64_t sv_host_mr_reg(struct sv_fabric *f, uint64_t size, int access);
int sv_host_mr_dereg(struct sv_fabric *f, uint32_t rkey);
uint64_t sv_host_mr_iova(struct sv_fabric *f, uint32_t rkey);   /* 0 if no such region */
int sv_host_mr_write(struct sv_fabric *f, uint32_t rkey, uint64_t offset, const void *buf,
                     uint64_t len);
int sv_host_mr_read(struct sv_fabric *f, uint32_t rkey, uint64_t offset, void *buf,
                    uint64_t len);
/* The region's bytes in place (NULL if no such region): for a memcpy floor that touches
 * the very memory the fabric copies from and to. */
void *sv_host_mr_data(struct sv_fabric *f, uint32_t rkey);

struct sv_host_connect_params {
    uint32_t dst_ipv4;           /* network byte order */
    uint16_t dst_port;           /* host byte order */
    const void *private_data;    /* sent with the connect request (NULL: none) */
    uint8_t private_data_len;    /* <= 56 (RC connect request) */
    uint8_t initiator_depth;     /* RDMA READs the host may have outstanding at the target */
    uint8_t responder_resources; /* RDMA READs the target may have outstanding at the host */
    uint32_t send_depth;         /* host send queue: capsules in flight */
    uint32_t recv_depth;         /* host receives posted for responses */
    uint32_t recv_size;          /* bytes per host receive buffer (>= 16) */
};

enum sv_host_conn_state {
    SV_HOST_CONNECTING = 1,      /* connect request waiting for the target's answer */
    SV_HOST_ESTABLISHED = 2,
    SV_HOST_REJECTED = 3,        /* the target called rdma_reject (or no listener) */
    SV_HOST_DISCONNECTED = 4,    /* either side disconnected, or the QP went to error */
};

struct sv_host_conn_info {
    uint32_t state;              /* enum sv_host_conn_state */
    uint32_t qp_num;             /* the host QP */
    uint32_t peer_qp_num;        /* the target QP (0 until accepted) */
    uint32_t reject_reason;      /* RDMA CM status of a rejection (0 if none): 28 for
                                  * rdma_reject, 8 for no listener, 110 (ETIMEDOUT) for
                                  * an unreachable port */
    uint8_t private_data[56];    /* what came back with accept or reject: the bytes the
                                  * target passed (private_data_len of them, at most 56),
                                  * without the CM's padding */
    uint8_t private_data_len;
    uint8_t initiator_depth;     /* as accepted */
    uint8_t responder_resources;
    uint32_t sends_pending;      /* posted, not yet executed */
    uint32_t recvs_posted;       /* receive buffers free for responses */
};

/* Starts a connection: the target's listener sees RDMA_CM_EVENT_CONNECT_REQUEST with the
 * private data.  Returns a host connection handle (>= 0). */
int sv_host_connect(struct sv_fabric *f, const struct sv_host_connect_params *p);
int sv_host_conn_info(struct sv_fabric *f, int conn, struct sv_host_conn_info *out);
/* Posts a SEND of len bytes (copied now).  -EAGAIN if the host send queue is full,
 * -ENOTCONN unless ESTABLISHED. */
int sv_host_send(struct sv_fabric *f, int conn, const void *buf, uint32_t len, uint64_t wr_id);
/* The same, signaled or not, as an initiator chooses: an unsignaled SEND generates no
 * completion when it succeeds, and its send-queue slot stays held (counted against the
 * send depth) until a later signaled SEND's completion, or a flush, is reaped. */
int sv_host_send_signaled(struct sv_fabric *f, int conn, const void *buf, uint32_t len,
                          uint64_t wr_id, int signaled);

struct sv_host_completion {
    uint64_t wr_id;              /* SEND: as posted; RECV: 0 */
    uint32_t opcode;             /* IBV_WC_SEND or IBV_WC_RECV */
    uint32_t status;             /* enum ibv_wc_status */
    uint32_t byte_len;           /* RECV: bytes received */
    uint8_t data[64];            /* RECV: the first min(byte_len, 64) bytes */
};
/* Reaps up to max host completions (oldest first); a reaped receive is re-posted. */
int sv_host_poll(struct sv_fabric *f, int conn, struct sv_host_completion *out, int max);
/* The host disconnects: both QPs go to error, the target sees RDMA_CM_EVENT_DISCONNECTED. */
int sv_host_disconnect(struct sv_fabric *f, int conn);
/* Frees a disconnected or rejected host connection. */
int sv_host_conn_destroy(struct sv_fabric *f, int conn);

/* ---- execution: nothing moves until the harness says so --------------------------------- */

struct sv_qp_info {
    uint32_t qp_num;
    uint32_t peer_qp_num;
    int32_t device;              /* -1 for a host QP */
    uint32_t state;              /* enum ibv_qp_state */
    uint32_t is_host;
    uint32_t sq_pending;         /* posted send-queue WRs not yet executed */
    uint32_t rq_posted;          /* receives posted on the QP (not counting an SRQ) */
    uint32_t sq_outstanding;     /* posted, completion (if signaled) not yet generated;
                                  * executed unsignaled WRs count until the next signaled
                                  * completion frees their slots */
    uint64_t posts_send;         /* successful ibv_post_send WRs */
    uint64_t posts_recv;
    uint64_t completions;        /* work completions generated for this QP */
    uint64_t flushed;            /* of them, IBV_WC_WR_FLUSH_ERR */
    uint64_t errors;             /* of them, any other non-success status */
};
int sv_qp_info(struct sv_fabric *f, uint32_t qp_num, struct sv_qp_info *out);
/* Every QP on the fabric (host and target), ascending qp_num; returns the count. */
int sv_qps(struct sv_fabric *f, uint32_t *out, uint32_t max);

/* Executes the head of the QP's send queue (RC: in order).  SEND consumes the peer's next
 * posted receive (its own RQ or its SRQ); RDMA READ / WRITE copy bytes against the peer's
 * memory by rkey, with bounds and access checks.  Returns 1 if it executed, 0 if there is
 * nothing to execute or it must wait (a SEND with no receive at the peer: RNR, retried on
 * the next call), < 0 on a bad qp_num. */
int sv_qp_execute(struct sv_fabric *f, uint32_t qp_num);
/* sv_qp_execute until it returns 0 or max executions: returns how many executed (the same
 * executions, in the same order, as that loop), < 0 on a bad qp_num or max. */
int sv_qp_execute_all(struct sv_fabric *f, uint32_t qp_num, int max);

/* Micro-events for sv_run (kind << 24 | arg); arg is a qp index (sv_qp_index). */
#define SV_EV_EXECUTE   1u
/* The dense index (< 2^24) of a live QP, for micro-event arguments; < 0 if none. */
int sv_qp_index(struct sv_fabric *f, uint32_t qp_num);
/* Runs n micro-events of the kinds above; unknown kinds are an error.  Returns the number
 * that executed something. */
int64_t sv_run(struct sv_fabric *f, const uint32_t *events, size_t n);

/* CM and async events are queued on their channel / context at once by default.  With
 * holding on, CM events wait in a fabric FIFO until sv_cm_deliver() hands the oldest one
 * to its channel.  Turning holding off delivers whatever is still held, oldest first.
 * The host's own events are held too: its state changes when they are delivered. */
void sv_cm_hold(struct sv_fabric *f, int on);
int sv_cm_pending(struct sv_fabric *f);
int sv_cm_deliver(struct sv_fabric *f);          /* 1 delivered, 0 none */

/* ---- faults ----------------------------------------------------------------------------------- */

int sv_qp_to_error(struct sv_fabric *f, uint32_t qp_num);   /* + IBV_EVENT_QP_FATAL (target) */
/* Port down: IBV_EVENT_PORT_ERR on every context of the device, every QP on it to error
 * (IBV_EVENT_QP_FATAL for each); port up: IBV_EVENT_PORT_ACTIVE.  Connects to a device
 * whose port is down are rejected (unreachable). */
int sv_port_down(struct sv_fabric *f, int dev);
int sv_port_up(struct sv_fabric *f, int dev);
/* Device removal: IBV_EVENT_DEVICE_FATAL, RDMA_CM_EVENT_DEVICE_REMOVAL on every id bound to
 * the device, every QP on it to error.  The device stays listed but dead. */
int sv_device_remove(struct sv_fabric *f, int dev);
/* The QP's next count ibv_post_send / ibv_post_recv calls fail with ENOMEM, posting nothing. */
int sv_qp_fail_posts(struct sv_fabric *f, uint32_t qp_num, uint32_t count);
/* The QP's next count RDMA READ/WRITE WRs complete with IBV_WC_REM_ACCESS_ERR. */
int sv_qp_remote_access_error(struct sv_fabric *f, uint32_t qp_num, uint32_t count);
/* The QP's next count SENDs find the peer not ready: IBV_WC_RNR_RETRY_EXC_ERR. */
int sv_qp_rnr(struct sv_fabric *f, uint32_t qp_num, uint32_t count);

/* ---- what the fabric did ------------------------------------------------------------------------ */

struct sv_stats {
    uint64_t executed;           /* WRs executed */
    uint64_t sends, rdma_reads, rdma_writes;
    uint64_t bytes_moved;
    uint64_t completions;        /* every work completion generated */
    uint64_t flushed;
    uint64_t remote_access_errors;
    uint64_t rnr_waits;          /* executes that found no receive at the peer */
    uint64_t rnr_errors;
    uint64_t failed_posts;       /* injected ENOMEM */
    uint64_t cm_events;          /* delivered to channels (the host's included) */
    uint64_t async_events;
    uint64_t dropped_events;     /* for a destroyed id or QP */
    uint64_t cq_overruns;
    uint64_t live_objects;       /* PDs, MRs, CQs, QPs, SRQs, ids, channels, contexts: the
                                  * program's (a connect request's id once it got the
                                  * event), not the CM's device contexts, default PDs or
                                  * the host side's objects */
    uint64_t leaked_objects;     /* set by sv_fabric_destroy */
    uint64_t posted;             /* WRs accepted by post send / recv / SRQ recv */
};
int sv_stats(struct sv_fabric *f, struct sv_stats *out);

#endif
