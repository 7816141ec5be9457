/*
 * ctrlr.h — the NVMe-oF controller emulation, apart from any transport (as SPDK keeps
 * ctrlr.c apart from rdma.c).  Every target on simverbs hands it the commands it parsed:
 * the built-in transport here, SPDK's rdma.c through its adapter.
 *
 * It owns subsystems (by NQN), RAM namespaces, controllers (dynamic model, CNTLID
 * allocated at an admin Connect), the property registers, keep-alive, and a block device
 * whose IO waits until the caller completes it (or completes at once in auto mode).
 * No threads, no clocks: time is ticks the caller advances (1 tick = 1 ms for KATO).
 *
 * The transport owns the SQE bytes and the data.  It passes the command's data as an iovec
 * list: for host-to-controller commands the bytes are already there (RDMA READ done or
 * in-capsule), for controller-to-host commands the emulation fills them.
 */
#ifndef NVMF_CTRLR_H
#define NVMF_CTRLR_H
#include "nvmf_wire.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct nvmf_emu;

struct nvmf_emu_opts {
    uint32_t max_subsystems;
    uint32_t max_namespaces;      /* per subsystem */
    uint32_t max_controllers;
    uint32_t max_io_queues;       /* per controller: Set Features Number of Queues caps here */
    uint32_t max_queue_depth;     /* CAP.MQES + 1 */
    uint32_t max_io_size;         /* MDTS, in bytes (a power of two times 4096 or less) */
    uint32_t in_capsule_data_size;/* IOCCSZ = (64 + this) / 16 */
    uint32_t max_sgl_descriptors; /* MSDBD */
    uint32_t default_kato_ticks;  /* used when Connect's KATO is 0: 0 = none */
    uint32_t max_outstanding_io;  /* block IOs queued at once (0: controllers x queues x
                                     depth); the transport knows its own bound */
};

/* Data direction from the opcode (NVMe base 4.1 / NVMe-oF 3.1: bits 1:0 of OPC, or of
 * FCTYPE for fabrics commands): 0 none, 1 host to controller, 2 controller to host,
 * 3 bidirectional (refused). */
static inline uint32_t nvmf_cmd_xfer(const struct nvme_sqe *sqe)
{
    if (sqe->opc == 0x7F)
        return ((const struct nvmf_fabric_sqe *)sqe)->fctype & 3u;
    return sqe->opc & 3u;
}

/* A transport's qpair as the emulation sees it.  The transport zeroes it at connect time
 * (RDMA CM) and keeps it for the qpair's life; the emulation fills it at Fabrics Connect. */
struct nvmf_emu_qpair {
    bool connected;               /* a Connect on it succeeded */
    uint16_t qid;
    uint16_t cntlid;
    uint16_t sqsize;              /* 0's based, from Connect */
    uint32_t max_depth;           /* what the transport negotiated (RDMA CM): Connect's
                                     SQSIZE + 1 may not exceed it */
    void *transport_ctx;          /* for the transport's callbacks */
};

enum { NVMF_EMU_DONE = 0, NVMF_EMU_ASYNC = 1 };

struct nvmf_emu_cmd {
    const struct nvme_sqe *sqe;
    struct nvmf_emu_qpair *qp;
    struct iovec *iov;
    uint32_t iovcnt;
    uint32_t length;              /* data bytes described by iov */
    /* out: command specific dwords and status (SCT << 8 | SC) and DNR */
    uint32_t cdw0;
    uint32_t cdw1;
    uint16_t status;
    bool dnr;
    void *cb_arg;                 /* the transport's request, for async completion */
};

struct nvmf_emu_callbacks {
    /* A block IO queued by nvmf_emu_exec() finished: cmd's status/cdw0 are final. */
    void (*io_complete)(void *ctx, struct nvmf_emu_cmd *cmd);
    /* A controller died (keep-alive timeout): the transport disconnects its qpairs. */
    void (*ctrlr_fatal)(void *ctx, uint16_t cntlid);
    void *ctx;
};

void nvmf_emu_opts_default(struct nvmf_emu_opts *o);
struct nvmf_emu *nvmf_emu_create(const struct nvmf_emu_opts *o, const struct nvmf_emu_callbacks *cb,
                                 char *err, size_t errlen);
void nvmf_emu_destroy(struct nvmf_emu *e);
const char *nvmf_emu_error(const struct nvmf_emu *e);

/* ---- configuration ---------------------------------------------------------------- */
int nvmf_emu_subsystem_add(struct nvmf_emu *e, const char *subnqn);   /* index >= 0 */
const char *nvmf_emu_subsystem_nqn(const struct nvmf_emu *e, int subsystem);
/* Restricts the subsystem to the hosts allowed this way (Connect from another host: Connect
 * Invalid Host, NVMe-oF 1.1 3.3).  With none allowed, any host may connect.  0 or -1. */
int nvmf_emu_subsystem_allow_host(struct nvmf_emu *e, int subsystem, const char *hostnqn);
int nvmf_emu_namespace_add(struct nvmf_emu *e, int subsystem, uint32_t block_size,
                           uint64_t num_blocks);                          /* nsid >= 1 */
int nvmf_emu_namespace_set_ready(struct nvmf_emu *e, int subsystem, uint32_t nsid, bool ready);
int nvmf_emu_namespace_read(struct nvmf_emu *e, int subsystem, uint32_t nsid, uint64_t offset,
                            void *buf, uint64_t len);
/* The media in place, for a benchmark's memcpy floor (NULL if no such namespace). */
uint8_t *nvmf_emu_namespace_data(struct nvmf_emu *e, int subsystem, uint32_t nsid);
int nvmf_emu_namespace_info(struct nvmf_emu *e, int subsystem, uint32_t nsid,
                            uint32_t *block_size, uint64_t *num_blocks);

/* ---- commands ---------------------------------------------------------------------- */
/* Executes one command whose transport-level checks (SGL, lengths) passed.  Returns
 * NVMF_EMU_DONE with cmd->status set, or NVMF_EMU_ASYNC: a block IO waits in the device
 * and io_complete() reports it later.  Commands before a successful Connect, other than
 * Connect, fail with Command Sequence Error. */
int nvmf_emu_exec(struct nvmf_emu *e, struct nvmf_emu_cmd *cmd);
/* The transport gave up a qpair (error, disconnect, destroy): the controller drops it; an
 * admin qpair takes its controller with it.  Queued block IO of it still completes. */
void nvmf_emu_qpair_gone(struct nvmf_emu *e, struct nvmf_emu_qpair *qp);
/* A command's block IO is abandoned (transport destroy): removed from the device queue
 * without a callback.  Returns 1 if it was queued. */
int nvmf_emu_cancel(struct nvmf_emu *e, struct nvmf_emu_cmd *cmd);

/* ---- the block device ---------------------------------------------------------------- */
uint32_t nvmf_emu_bdev_pending(const struct nvmf_emu *e);
/* Completes the queued IO at index % pending with status (0 = as the media says). */
int nvmf_emu_bdev_complete(struct nvmf_emu *e, uint32_t index, uint16_t status);
void nvmf_emu_bdev_set_auto(struct nvmf_emu *e, bool on);   /* IO completes inside exec */
int nvmf_emu_bdev_inject_error(struct nvmf_emu *e, uint32_t count, uint16_t status);

/* ---- time --------------------------------------------------------------------------- */
/* Advances the clock; a controller whose KATO passed without a Keep Alive (or any admin
 * command) is reported through ctrlr_fatal.  Returns the number reported. */
int nvmf_emu_advance_time(struct nvmf_emu *e, uint64_t ticks);
uint64_t nvmf_emu_now(const struct nvmf_emu *e);

#endif
