/*
 * nrt.h — the one public contract of the compact NVMe-oF RDMA target (nrt).
 *
 * Two parts:
 *
 *  - the transport (nrt_transport_*, nrt_poll_group, ...): the request and resource engine
 *    of an SPDK-style NVMe-oF RDMA transport, in a fraction of the size.  It is a verbs
 *    program: it calls only libibverbs and librdmacm (rdma-core's headers), receives 64-byte
 *    SQEs in posted receives, moves data with RDMA READ/WRITE against keyed host memory and
 *    answers with 16-byte CQEs.  Commands execute in the controller emulation (ctrlr.h).
 *    It has no threads, no clocks and no randomness of its own.
 *
 *  - the rig (nrt_rig_*): the harness's C half.  It owns a simverbs fabric and one
 *    transport on it, plays the host (CM connect with NVMe/RDMA private data, host memory,
 *    SENDs of capsule bytes, response receives), and decides every delivery, poll, block
 *    device completion and fault.  Same calls => same execution, bit for bit.
 *
 * Everything is addressed by small integer handles.  Functions returning int give 0 (or a
 * non-negative handle/count) on success and a negative NRT_E* code on failure;
 * nrt_rig_error() / nrt_transport_error() then hold a human-readable message.
 *
 * The block between CDEF-BEGIN and CDEF-END is also fed to cffi verbatim, so
 * it holds only plain declarations and integer #defines.
 */
#ifndef NRT_H
#define NRT_H
#include <stddef.h>
#include <stdint.h>

/* CDEF-BEGIN */

/* ---- error codes (negative returns) ------------------------------------ */
#define NRT_EINVAL     -1   /* bad argument or option; message says which */
#define NRT_ENOENT     -2   /* no such handle (never existed or destroyed) */
#define NRT_ENOMEM     -3   /* allocation at setup time failed */
#define NRT_EBUSY      -4   /* host queue full (qd capsules outstanding) */
#define NRT_ENOTCONN   -5   /* qpair no longer accepts capsules */
#define NRT_ENETDOWN   -6   /* port is down */
#define NRT_ELIMIT     -7   /* a configured table (qpairs, ports...) is full */
#define NRT_EMSGSIZE   -8   /* in-capsule bytes exceed the receive buffer */
#define NRT_ESTATE     -9   /* call not valid in the object's current state */

/* ---- limits ------------------------------------------------------------- */
#define NRT_MAX_SGL_DESC      16   /* keyed descriptors in a last-segment list */
#define NRT_MAX_POLL_GROUPS   64
#define NRT_MIN_IO_SIZE       4096 /* max_io_size floor: an Identify page fits one request */
#define NRT_ERRMSG_LEN        256

/* ---- defect switches (DESIGN section 2); off by default ----------------- */
#define NRT_DEFECT_LEAK_REMAINING_WRS      0x0001
#define NRT_DEFECT_NO_IDLE_PENDING_POLL    0x0002
#define NRT_DEFECT_FIXED_POOL_SIZE         0x0004
#define NRT_DEFECT_POOL_DOUBLE_PUT         0x0008
#define NRT_DEFECT_STALE_TRANSFER_WR       0x0010
#define NRT_DEFECT_STALE_READ_QUEUE_ENTRY  0x0020
#define NRT_DEFECT_PENDING_SEND_ONLY_ON_CQE 0x0040
#define NRT_DEFECT_ICD_WAITS_FOR_BUFFER    0x0080
#define NRT_DEFECT_POST_FAIL_COUNTER_LEAK  0x0100
#define NRT_DEFECT_RECV_NOT_RELEASED       0x0200
#define NRT_DEFECT_DOUBLE_QPAIR_DESTROY    0x0400
#define NRT_DEFECT_WRONG_EXPECTED_CAPACITY 0x0800

/* ---- NVMe opcodes ------------------------------------------------------- */
#define NRT_OPC_FLUSH          0x00
#define NRT_OPC_WRITE          0x01
#define NRT_OPC_READ           0x02
#define NRT_OPC_ABORT          0x08
#define NRT_OPC_IDENTIFY       0x06
#define NRT_OPC_KEEP_ALIVE     0x18
#define NRT_OPC_FABRICS        0x7F
#define NRT_FCTYPE_PROPERTY_SET 0x00
#define NRT_FCTYPE_CONNECT      0x01
#define NRT_FCTYPE_PROPERTY_GET 0x04

/* ---- SGL descriptor types / subtypes (NVMe base spec) ------------------- */
#define NRT_SGL_TYPE_DATA_BLOCK     0x0
#define NRT_SGL_TYPE_LAST_SEGMENT   0x3
#define NRT_SGL_TYPE_KEYED_DATA     0x4
#define NRT_SGL_SUBTYPE_ADDRESS     0x0
#define NRT_SGL_SUBTYPE_OFFSET      0x1
#define NRT_SGL_SUBTYPE_INVALIDATE  0xF

/* ---- NVMe status: (status code type << 8) | status code ----------------- */
#define NRT_SC_SUCCESS                0x0000
#define NRT_SC_INVALID_OPCODE         0x0001
#define NRT_SC_INVALID_FIELD          0x0002
#define NRT_SC_DATA_TRANSFER_ERROR    0x0004
#define NRT_SC_INTERNAL_ERROR         0x0006
#define NRT_SC_INVALID_NAMESPACE      0x000B
#define NRT_SC_COMMAND_SEQUENCE_ERROR 0x000C
#define NRT_SC_INVALID_SGL_SEG_DESC   0x000D
#define NRT_SC_INVALID_NUM_SGL_DESC   0x000E
#define NRT_SC_DATA_SGL_LENGTH_INVALID 0x000F
#define NRT_SC_SGL_DESC_TYPE_INVALID  0x0011
#define NRT_SC_SGL_OFFSET_INVALID     0x0016
#define NRT_SC_LBA_OUT_OF_RANGE       0x0080
#define NRT_SC_NAMESPACE_NOT_READY    0x0082
#define NRT_SC_CONNECT_INVALID_PARAM  0x0182
#define NRT_SC_UNRECOVERED_READ_ERROR 0x0281

/* ---- request states (DESIGN 5.3); the legal graph lives in the checks --- */
#define NRT_REQ_FREE                     0
#define NRT_REQ_NEW                      1
#define NRT_REQ_NEED_BUFFER              2
#define NRT_REQ_TRANSFER_TO_CTRLR_PENDING 3
#define NRT_REQ_TRANSFERRING_H2C         4
#define NRT_REQ_READY_TO_EXECUTE         5
#define NRT_REQ_EXECUTING                6
#define NRT_REQ_EXECUTED                 7
#define NRT_REQ_TRANSFER_TO_HOST_PENDING 8
#define NRT_REQ_READY_TO_COMPLETE        9
#define NRT_REQ_TRANSFERRING_C2H         10
#define NRT_REQ_COMPLETING               11
#define NRT_REQ_COMPLETED                12
#define NRT_REQ_NSTATES                  13

/* ---- the target protocol: what a target declares about itself ----------------------
 * Every target behind nrt.h (the built-in one, SPDK's rdma.c through its adapter) fills a
 * description: which introspection it offers (NRT_CAP_*), and its request states by its
 * own names, with the legal transition graph and the queue each state implies.  The checks
 * judge only what is declared and the reports say what was not judged. */
#define NRT_MAX_STATES          32
#define NRT_STATE_NAME_LEN      48
#define NRT_CAP_WR_POOL         0x0001  /* nrt_wr_pool_counts: capacity, free, cached, held */
#define NRT_CAP_BUF_POOL        0x0002  /* nrt_buf_pool_counts likewise for data buffers */
#define NRT_CAP_REQUESTS        0x0004  /* nrt_qpair_requests + req_states: per-request state */
#define NRT_CAP_TRANSITIONS     0x0008  /* nrt_state_transitions: every transition counted */
#define NRT_CAP_QUEUES          0x0010  /* request_info.queue and qpair pending_* counts */
#define NRT_CAP_DEPTHS          0x0020  /* qpair cur/max read and send depth */
#define NRT_CAP_RECEIVES        0x0040  /* qpair slots_* and recv_* counts */
#define NRT_CAP_GROUP_STATS     0x0080  /* nrt_group_stats in the shape of nvmf_get_stats */
#define NRT_CAP_DESTROY_REPORT  0x0100  /* the destroy report carries the target's own audit */
#define NRT_CAP_DEFECTS         0x0200  /* nrt_opts.defects switches are honoured */
#define NRT_CAP_KEEP_ALIVE      0x0400  /* keep-alive expiry (nrt_advance_time) */
#define NRT_CAP_WR_CAP_EXACT    0x0800  /* pool capacity = the configured size exactly (CFG-1) */
#define NRT_CAP_WR_HELD         0x1000  /* pool counts include held-by-requests and the audit */
#define NRT_CAP_SHARED_RECEIVES 0x2000  /* running with shared receive queues (nrt_opts.srq):
                                           receive WRs and request slots belong to a poll
                                           group's SRQ, not to a qpair, so per-qpair receive
                                           and slot counts are not the qpair's own */

struct nrt_target_desc {
    char name[32];               /* "builtin", "spdk" */
    char version[96];            /* what code is under test: a commit, a version */
    uint32_t caps;               /* NRT_CAP_* */
    uint32_t num_states;         /* request states, 0 .. num_states - 1 */
    uint32_t free_state;         /* the state of an unused request slot */
    uint32_t reserved;
    char state_names[NRT_MAX_STATES][NRT_STATE_NAME_LEN];
    uint8_t queue_of_state[NRT_MAX_STATES];   /* NRT_QUEUE_* a request in the state sits on */
    uint32_t legal[NRT_MAX_STATES];           /* bit j of legal[i]: i -> j is legal */
    uint8_t also_on_queue[NRT_MAX_STATES];    /* a second queue the state may sit on (0
                                                 none): e.g. a transfer posted in part,
                                                 its rest waiting in line */
};

/* which queue a request is linked on (SM-1: must match its state) */
#define NRT_QUEUE_NONE          0
#define NRT_QUEUE_PENDING_BUF   1   /* poll group's pending buffer queue */
#define NRT_QUEUE_PENDING_READ  2   /* qpair's pending RDMA-read queue */
#define NRT_QUEUE_PENDING_WRITE 3   /* qpair's pending RDMA-write queue */
#define NRT_QUEUE_PENDING_SEND  4   /* qpair's pending send queue */

/* ---- qpair states -------------------------------------------------------- */
#define NRT_QP_CONNECTING  0   /* RDMA connected, fabrics CONNECT not yet done */
#define NRT_QP_ACTIVE      1
#define NRT_QP_ERROR       2   /* draining: flushes and bdev IO still to finish */
#define NRT_QP_DESTROYED   3

/* ---- micro-events for nrt_rig_run() ------------------------------------- */
#define NRT_EV_DELIVER_H2T  1  /* arg = connection: the host QP's next posted SEND executes */
#define NRT_EV_DELIVER_T2H  2  /* arg = connection: the target QP's next posted WR executes */
#define NRT_EV_POLL         3  /* arg = poll group */
#define NRT_EV_BDEV         4  /* arg = index (mod pending) of bdev IO to complete */
#define NRT_EV_TICK         5  /* arg = ticks to advance */
#define NRT_EV_ACCEPT       6  /* the target processes its CM and async events */

/* ---- async events --------------------------------------------------------- */
#define NRT_ASYNC_PORT_DOWN  1
#define NRT_ASYNC_PORT_UP    2
#define NRT_ASYNC_KEEP_ALIVE_EXPIRED 3

struct nrt_opts {
    uint32_t max_queue_depth;      /* request slots and receive WRs per qpair (max) */
    uint32_t max_io_size;          /* bytes */
    uint32_t io_unit_size;         /* bytes per shared data buffer */
    uint32_t in_capsule_data_size; /* bytes of receive buffer after the capsule */
    uint32_t num_shared_buffers;
    uint32_t buf_cache_size;       /* per poll group */
    uint32_t wr_pool_multiplier;   /* pool = max_queue_depth * multiplier ... */
    uint32_t wr_pool_size;         /* ... unless this is non-zero */
    uint32_t wr_cache_size;        /* per poll group */
    uint32_t num_poll_groups;
    uint32_t max_read_depth;       /* outstanding RDMA READs per qpair */
    uint32_t max_send_depth;       /* outstanding send-queue WRs per qpair; 0 = 2*qd */
    uint32_t max_sge;              /* SGEs per data WR */
    uint32_t max_sgl_descriptors;  /* keyed descriptors accepted in a list */
    uint32_t keep_alive_ticks;     /* 0 = keep-alive timer off */
    uint32_t max_qpairs;
    uint32_t max_ports;
    uint32_t max_subsystems;
    uint32_t max_namespaces;       /* per subsystem */
    uint32_t max_memory_regions;
    uint32_t defects;              /* NRT_DEFECT_* bit mask */
    uint32_t srq;                  /* 1: the qpairs of a poll group on one device share a
                                      receive queue (an SRQ) and its request slots; 0: each
                                      qpair has its own.  A target without SRQs refuses 1
                                      (and nrt_opts_fit moves it to 0) */
    uint32_t max_srq_depth;        /* receive WRs (and request slots) of each SRQ; 0 = the
                                      target's default; must be 0 without srq */
};

struct nrt_response {
    uint16_t cid;
    uint16_t status;        /* (SCT << 8) | SC, from the CQE's status word */
    uint16_t sqhd;
    uint16_t unexpected;    /* 1 if this CID was not outstanding on the host */
    uint64_t result;        /* CQE dwords 0 and 1: connect: cntlid; property get: value */
    uint16_t sqid;
    uint16_t raw_status;    /* the status word as received: phase, SC, SCT, CRD, M, DNR */
    uint32_t byte_len;      /* bytes the response SEND carried (16 for a CQE) */
};

struct nrt_async_event {
    uint32_t type;
    uint32_t object;        /* port or controller */
};

struct nrt_pool_counts {
    uint64_t capacity;
    uint64_t ring_free;
    uint64_t cached;        /* sum of every poll group's cache */
    uint64_t held;          /* counted by walking every live request */
    uint64_t duplicates;    /* objects seen in two places at once (audit) */
    uint64_t missing;       /* objects seen nowhere (audit) */
    uint64_t get_failures;
};

struct nrt_group_stats {
    uint64_t polls;
    uint64_t idle_polls;
    uint64_t completions;       /* work completions reaped */
    uint64_t requests;          /* requests started */
    uint64_t pending_data_buffer;
    uint32_t num_qpairs;
    uint32_t cq_entries;        /* always 0: a verbs program cannot see into its CQ */
    uint32_t wr_cached;
    uint32_t buf_cached;
};

struct nrt_qpair_info {
    int32_t id;
    uint32_t qid;
    uint32_t group;
    uint32_t port;
    uint32_t state;             /* NRT_QP_* */
    uint32_t cntlid;
    uint32_t depth;
    uint32_t max_read_depth;
    uint32_t max_send_depth;
    uint32_t cur_read_depth;
    uint32_t cur_send_depth;
    uint32_t slots_free;
    uint32_t slots_used;
    uint32_t recv_posted;       /* receive WRs posted, completion not yet reaped */
    uint32_t recv_in_cq;        /* reaped, waiting for a free request slot */
    uint32_t recv_held;         /* owned by a request */
    uint32_t recv_idle;         /* neither posted nor held (only after errors) */
    uint32_t pending_read;
    uint32_t pending_write;
    uint32_t pending_send;
    uint32_t wire_h2t;          /* rig: host SENDs posted, not yet executed */
    uint32_t wire_t2h;          /* rig: target send-queue WRs posted, not yet executed */
    uint32_t host_outstanding;  /* rig: capsules without a reaped response */
    uint32_t host_unreaped;     /* rig: responses received, not yet reaped */
    uint64_t max_read_depth_seen;
    uint64_t max_send_depth_seen;
    uint32_t req_states[NRT_MAX_STATES];  /* in the target's own numbering (its description) */
    uint32_t qp_num;            /* the target's verbs QP */
    uint32_t signaled_outstanding;  /* posted signaled WRs whose completion is not reaped */
};

struct nrt_request_info {
    uint32_t slot;
    uint16_t cid;
    uint8_t opcode;
    uint8_t state;
    uint8_t queue;              /* NRT_QUEUE_* */
    uint8_t xfer;               /* 0 none, 1 host->ctrlr, 2 ctrlr->host */
    uint32_t length;
    uint32_t num_bufs;
    uint32_t num_wrs;           /* data WRs held (posted + unposted + done) */
    uint32_t wrs_posted;        /* data WRs posted so far */
    uint32_t wrs_outstanding;   /* posted, completion not yet seen */
};

struct nrt_destroy_report {
    uint64_t wr_expected;
    uint64_t wr_returned;
    uint64_t buf_expected;
    uint64_t buf_returned;
    uint64_t requests_released;
    char message[NRT_ERRMSG_LEN];
};

struct nrt_drain_result {
    uint32_t rounds;
    uint32_t quiescent;         /* no work left anywhere */
    uint32_t stalled;           /* a full round made no progress with work left */
    uint64_t progress;          /* events that changed something */
};

struct nrt_workload {
    uint8_t opcode;             /* NRT_OPC_READ or NRT_OPC_WRITE */
    uint32_t nsid;
    uint32_t io_bytes;
    uint32_t ndesc;             /* 1 = one keyed descriptor, >1 = list */
    uint32_t queue_depth;
    uint64_t ios;               /* IOs to complete */
    uint32_t mkey;              /* host memory region used for the data */
};

/* What the host asks for in the RDMA CM connect request (NVMe/RDMA 3.3). */
struct nrt_connect_params {
    uint32_t port;              /* rig port (device + listener) */
    uint32_t group;             /* placement hint for the target: its poll group */
    uint16_t qid;
    uint16_t hrqsize;           /* host receive queue size, 1's based */
    uint16_t hsqsize;           /* host send queue size, 0's based */
    uint16_t cntlid;
    uint16_t recfmt;
    uint8_t private_data_len;   /* 32 normally; other values for CONN-1 */
    uint8_t initiator_depth;
    uint8_t responder_resources;
    uint8_t raw;                /* 1: send raw_private_data instead of the fields above */
    uint8_t raw_private_data[56];
};

struct nrt_conn_info {
    int32_t conn;
    uint32_t state;             /* 1 connecting, 2 established, 3 rejected, 4 disconnected */
    int32_t qpair;              /* the target's qpair handle, -1 if none (any more) */
    uint16_t reject_sts;        /* NVMe/RDMA reject status (0 if accepted) */
    uint16_t reject_recfmt;
    uint16_t crqsize;           /* accept private data */
    uint16_t accept_recfmt;
    uint8_t accept_len;         /* private data bytes that came with accept or reject */
    uint8_t initiator_depth;
    uint8_t responder_resources;
    uint8_t reserved;
    uint32_t host_qp_num;
    uint32_t target_qp_num;
    uint32_t host_qp_state;     /* what the fabric says: enum ibv_qp_state (6 = error), */
    uint32_t target_qp_state;   /* 0 once the QP is gone */
};

struct nrt_fabric_stats {
    uint64_t executed;
    uint64_t sends, rdma_reads, rdma_writes;
    uint64_t bytes_moved;
    uint64_t completions;
    uint64_t flushed;
    uint64_t remote_access_errors;
    uint64_t rnr_waits;
    uint64_t rnr_errors;
    uint64_t failed_posts;
    uint64_t cm_events;
    uint64_t async_events;
    uint64_t dropped_events;
    uint64_t cq_overruns;
    uint64_t live_objects;
    uint64_t leaked_objects;
};

struct nrt_group_view {         /* what the rig asked of one poll group and saw */
    uint64_t polls;
    uint64_t idle_polls;        /* polls that returned no completion */
    uint64_t reaped;            /* completions the polls returned */
};

struct nrt_transport;
struct nrt_rig;

/* ---- options ------------------------------------------------------------------- */
void nrt_opts_default(struct nrt_opts *opts);
/* Minimum pool and buffer counts for these options (what creation demands). */
uint64_t nrt_opts_min_wr_pool(const struct nrt_opts *opts);
uint64_t nrt_opts_min_buffers(const struct nrt_opts *opts);
uint32_t nrt_opts_max_wrs_per_request(const struct nrt_opts *opts);
/* Moves options into the space this target honours exactly as asked (the nearest values:
 * a target that would silently adjust a value or refuse it gets one it keeps); returns the
 * number of fields changed.  The built-in target changes only srq and max_srq_depth (to 0:
 * it has no SRQ mode), so Options(srq=1).fitted() tells whether a target takes SRQs. */
int nrt_opts_fit(struct nrt_opts *opts);
/* 0 if the options would be accepted, else NRT_EINVAL with the reason in errbuf. */
int nrt_opts_validate(const struct nrt_opts *opts, char *errbuf, size_t errlen);

/* ---- the transport (a verbs program) ------------------------------------------------ */
/* NULL on refusal; errbuf (may be NULL) then says why, naming any minimum. */
struct nrt_transport *nrt_transport_create(const struct nrt_opts *opts, char *errbuf, size_t errlen);
/* Abrupt: releases every request in any state, then audits the pools. */
int nrt_transport_destroy(struct nrt_transport *t, struct nrt_destroy_report *report);
const char *nrt_transport_error(struct nrt_transport *t);
void nrt_transport_get_opts(struct nrt_transport *t, struct nrt_opts *out);
/* Listens on (ipv4 in network order, port); returns the listener's port index. */
int nrt_listen(struct nrt_transport *t, uint32_t ipv4, uint16_t service);
int nrt_subsystem_add(struct nrt_transport *t, const char *nqn);
/* returns nsid (1-based) */
int nrt_namespace_add(struct nrt_transport *t, int subsystem, uint32_t block_size, uint64_t num_blocks);
int nrt_namespace_set_ready(struct nrt_transport *t, int subsystem, uint32_t nsid, int ready);
int nrt_namespace_read(struct nrt_transport *t, int subsystem, uint32_t nsid, uint64_t offset, void *buf, uint64_t len);
/* The poll group the next accepted connection goes to (-1: round robin). */
void nrt_set_next_group(struct nrt_transport *t, int group);
/* Processes CM events (connect requests, established, disconnects) and async events. */
int nrt_accept_poll(struct nrt_transport *t);
int nrt_poll_group(struct nrt_transport *t, int group);    /* work completions reaped */
/* Target-side close with IO in any state: to ERROR, released as IO drains. */
int nrt_qpair_disconnect(struct nrt_transport *t, int qpair);
int nrt_qpair_by_qp_num(struct nrt_transport *t, uint32_t qp_num);
int nrt_qpair_info(struct nrt_transport *t, int qpair, struct nrt_qpair_info *out);
/* Fills up to max entries; returns the number of non-free requests. */
int nrt_qpair_requests(struct nrt_transport *t, int qpair, struct nrt_request_info *out, uint32_t max);
/* Handles of every qpair not yet destroyed; returns the count. */
int nrt_qpairs(struct nrt_transport *t, int32_t *out, uint32_t max);
/* 1 while any request, receive, pending queue, block IO or draining qpair holds work. */
int nrt_transport_busy(struct nrt_transport *t);
int nrt_bdev_pending(struct nrt_transport *t);
/* Completes pending block IO number index (mod the count) with status: 1 if one completed,
 * 0 if none was pending, negative on error. */
int nrt_bdev_complete(struct nrt_transport *t, uint32_t index, uint16_t status);
int nrt_bdev_set_auto(struct nrt_transport *t, int on);
int nrt_bdev_inject_error(struct nrt_transport *t, uint32_t count, uint16_t status);
int nrt_advance_time(struct nrt_transport *t, uint64_t ticks);
int nrt_wr_pool_counts(struct nrt_transport *t, struct nrt_pool_counts *out);
int nrt_buf_pool_counts(struct nrt_transport *t, struct nrt_pool_counts *out);
int nrt_group_stats(struct nrt_transport *t, int group, struct nrt_group_stats *out);
/* The target's description (what it declares; see NRT_CAP_*). */
int nrt_target_describe(struct nrt_transport *t, struct nrt_target_desc *out);
/* Transition counts: out[from * num_states + to] (num_states from the description),
 * cumulative. */
int nrt_state_transitions(struct nrt_transport *t, uint64_t *out, uint32_t max);
int nrt_async_events(struct nrt_transport *t, struct nrt_async_event *out, uint32_t max);
uint64_t nrt_progress_counter(struct nrt_transport *t);

/* ---- the rig: fabric + host + one transport ----------------------------------------- */
struct nrt_rig *nrt_rig_create(const struct nrt_opts *opts, char *errbuf, size_t errlen);
int nrt_rig_destroy(struct nrt_rig *r, struct nrt_destroy_report *report);
const char *nrt_rig_error(struct nrt_rig *r);
struct nrt_transport *nrt_rig_transport(struct nrt_rig *r);
/* A device on the fabric with the target listening on it; returns the port index. */
int nrt_rig_port_add(struct nrt_rig *r);
int nrt_rig_port_down(struct nrt_rig *r, int port);
int nrt_rig_port_up(struct nrt_rig *r, int port);
int nrt_rig_device_remove(struct nrt_rig *r, int port);
/* Host memory: returns its key (the rkey, > 0); iova is the address keyed SGLs carry. */
int64_t nrt_rig_mr_register(struct nrt_rig *r, uint64_t size);
int nrt_rig_mr_deregister(struct nrt_rig *r, uint32_t key);
uint64_t nrt_rig_mr_iova(struct nrt_rig *r, uint32_t key);
int nrt_rig_mr_write(struct nrt_rig *r, uint32_t key, uint64_t offset, const void *buf, uint64_t len);
int nrt_rig_mr_read(struct nrt_rig *r, uint32_t key, uint64_t offset, void *buf, uint64_t len);
void nrt_connect_params_default(struct nrt_connect_params *p, uint32_t port, uint32_t group,
                                uint16_t qid, uint32_t depth);
/* RDMA CM connect; the target's CM events are processed.  Returns a connection handle
 * (also when the target rejected: nrt_rig_conn_info says so). */
int nrt_rig_connect(struct nrt_rig *r, const struct nrt_connect_params *p);
int nrt_rig_conn_info(struct nrt_rig *r, int conn, struct nrt_conn_info *out);
/* The target qpair's info plus the host's view (wires, outstanding, unreaped). */
int nrt_rig_qpair_info(struct nrt_rig *r, int conn, struct nrt_qpair_info *out);
int nrt_rig_requests(struct nrt_rig *r, int conn, struct nrt_request_info *out, uint32_t max);
/* Connections whose target qpair still exists, or whose host side has work; returns count. */
int nrt_rig_conns(struct nrt_rig *r, int32_t *out, uint32_t max);
/* Capsule bytes (64-byte SQE + in-capsule data) as one host SEND. */
int nrt_rig_submit(struct nrt_rig *r, int conn, const void *capsule, uint32_t len);
/* n capsules laid end to end (lens[i] bytes each), each as one host SEND in order, with
 * the checks of nrt_rig_submit; the connection is looked up once for the batch.  Returns
 * the number sent: fewer than n if one was refused (nrt_rig_error says why), or the error
 * if the first was. */
int nrt_rig_submit_batch(struct nrt_rig *r, int conn, const void *capsules,
                         const uint32_t *lens, uint32_t n);
int nrt_rig_reap(struct nrt_rig *r, int conn, struct nrt_response *out, uint32_t max);
int nrt_rig_deliver_h2t(struct nrt_rig *r, int conn);   /* 1 progressed, 0 nothing */
int nrt_rig_deliver_t2h(struct nrt_rig *r, int conn);
int nrt_rig_poll(struct nrt_rig *r, int group);
int nrt_rig_host_disconnect(struct nrt_rig *r, int conn);
int nrt_rig_qpair_error(struct nrt_rig *r, int conn);
int nrt_rig_fail_posts(struct nrt_rig *r, int conn, uint32_t count);
int nrt_rig_remote_access_error(struct nrt_rig *r, int conn, uint32_t count);
int nrt_rig_rnr(struct nrt_rig *r, int conn, uint32_t count);
int nrt_rig_qpair_disconnect(struct nrt_rig *r, int conn);
/* Executes n micro-events; events[i] = (kind << 24) | arg; deliver args are connection
 * handles.  Returns progress. */
int64_t nrt_rig_run(struct nrt_rig *r, const uint32_t *events, size_t n);
/* Liveness mode: rounds of deliver-everything, complete-every-IO, poll-every-group. */
int nrt_rig_drain(struct nrt_rig *r, uint32_t max_rounds, struct nrt_drain_result *out);
uint64_t nrt_rig_progress(struct nrt_rig *r);
int nrt_rig_group_view(struct nrt_rig *r, int group, struct nrt_group_view *out);
uint64_t nrt_rig_target_completions(struct nrt_rig *r);
int nrt_rig_fabric_stats(struct nrt_rig *r, struct nrt_fabric_stats *out);

/* ---- C-native workload driver (benchmark and soak) --------------------------------- */
/* Runs w->ios IOs on an idle IO connection with the block device in auto mode. */
int64_t nrt_rig_workload_run(struct nrt_rig *r, int conn, const struct nrt_workload *w);
/* The same bytes moved by plain memcpy: the physical floor for the workload. */
int64_t nrt_rig_memcpy_baseline(struct nrt_rig *r, int conn, const struct nrt_workload *w);
/* The same copies in the target's order at depth qd: each run of queue_depth IOs makes its
 * first copy for every IO of the run, then its second (all qd IOs' data in buffers at once,
 * as in a transport that polls a batch of qd completions): the floor with the target's
 * cache footprint, against which what remains is bookkeeping. */
int64_t nrt_rig_memcpy_batched(struct nrt_rig *r, int conn, const struct nrt_workload *w);

/* CDEF-END */

/* ---- for the rig, not for the harness: what every target behind nrt.h also offers ---- */
struct nvmf_emu;
/* The controller emulation (ctrlr.h) the target hands its commands to. */
struct nvmf_emu *nrt_transport_emu(struct nrt_transport *t);
/* Memory shaped like the target's data buffers (count x unit bytes), for the benchmark's
 * memcpy floor. */
int nrt_transport_buffer_arena(struct nrt_transport *t, uint8_t **arena, uint32_t *count,
                               uint32_t *unit);

/* ---- for C drivers in the rig's process (the soak), not for cffi ---------------------- */
/* Host memory region `key`'s bytes, as the host itself addresses them (what
 * nrt_rig_mr_read/nrt_rig_mr_write copy from and to), valid until the region or the rig
 * goes; NULL (nrt_rig_error says why) if there is no such region.  The caller keeps to the
 * size it registered. */
uint8_t *nrt_rig_mr_data(struct nrt_rig *r, uint32_t key);
/* Exactly the nrt_rig_deliver_h2t (t2h) calls a caller would make on conn until one gives
 * 0, with the connection and the QP looked up once; returns how many progressed. */
int nrt_rig_deliver_all_h2t(struct nrt_rig *r, int conn);
int nrt_rig_deliver_all_t2h(struct nrt_rig *r, int conn);

#endif
