/*
 * soak.h — the C soak driver: seeded lifecycles, IO and faults against any target that
 * exports impl/csrc/nrt.h (the rig, the transport calls, the pool counters and the
 * destroy report).  The driver reads only what nrt.h exposes; it never looks inside a
 * target.
 */
#ifndef SOAK_H
#define SOAK_H
#include <stdint.h>
#include <stdio.h>

/* fault kinds, in the order the figures list them */
enum soak_fault {
    SOAK_F_QPAIR_ERROR,       /* the target's QP moves to the error state */
    SOAK_F_PORT_DOWN,         /* the port goes down (and comes up a round later) */
    SOAK_F_POST_FAILURE,      /* the target's next posts on a QP fail */
    SOAK_F_HOST_DISCONNECT,   /* the host disconnects through the CM */
    SOAK_F_QPAIR_DISCONNECT,  /* the target closes a qpair with IO in any state */
    SOAK_F_REMOTE_ACCESS,     /* the next RDMA operation hits a remote access error */
    SOAK_F_BDEV_ERROR,        /* the block device fails the next IOs */
    SOAK_F_ABRUPT_DESTROY,    /* the transport is destroyed with IO in flight */
    SOAK_F_COUNT
};

extern const char *const soak_fault_names[SOAK_F_COUNT];

struct soak_config {
    uint64_t seed;
    double seconds;            /* time budget; 0 = none (then lifecycles must be set) */
    uint64_t lifecycles;       /* lifecycle budget; 0 = none */
    int64_t only_lifecycle;    /* >= 0: run just this lifecycle (a replay) */
    uint32_t io_size;          /* bytes per data IO */
    uint32_t defects;          /* passed to the target's options, never read */
    uint32_t max_violations;   /* stop after this many */
    int faults;                /* 0: no faults (clean IO only) */
    int progress;              /* progress lines on stderr about once a second */
};

#define SOAK_MAX_VIOLATIONS 64

struct soak_violation {
    uint64_t lifecycle;
    uint64_t lifecycle_seed;
    uint32_t round;
    char check[16];            /* POOL-1, POOL-2, POOL-3, IO-1, DATA-1, LIVE-1, SETUP */
    char message[256];
};

struct soak_figures {
    uint64_t ios, reads, writes, flushes, multi_descriptor, in_capsule;
    uint64_t bytes;
    uint64_t io_errors;        /* legal error responses */
    uint64_t lost_to_faults;   /* IOs a fault left without a response */
    uint64_t reads_verified;
    uint64_t lifecycles, rounds, option_refusals, connects;
    uint64_t abrupt_teardowns, graceful_teardowns;
    uint64_t faults[SOAK_F_COUNT];
    uint64_t max_queue_depth_seen;     /* IOs outstanding on one qpair */
    uint64_t max_read_depth_seen, max_send_depth_seen;  /* the target's own, if declared */
    double wr_low_water, buf_low_water;  /* lowest (free + cached) / capacity seen */
    uint64_t wr_low_water_count, buf_low_water_count;
    uint64_t quiescence_rounds_max, quiescence_rounds_total, quiescence_count;
    uint64_t pool_checks;
    double cpu_seconds;        /* CPU time of the process over the run */
    uint32_t nviolations;
    struct soak_violation v[SOAK_MAX_VIOLATIONS];
    char target_name[32];
    char target_version[96];
};

/* Runs lifecycle `index` of the run (its own rig from first call to destroy).  Returns the
 * IOs it completed.  Violations land in f. */
uint64_t soak_lifecycle(const struct soak_config *cfg, uint64_t index, struct soak_figures *f);

void soak_figures_init(struct soak_figures *f);
void soak_figures_json(FILE *out, const struct soak_config *cfg, const struct soak_figures *f,
                       double elapsed);

#endif
