/*
 * fuzz_capsule.h — the input format of the capsule fuzzer (fuzz_capsule.c), shared with the
 * seed-corpus generator (impl/fuzz/make_corpus.c).  Not part of the target's contract and
 * not compiled into the Python extension (nothing there includes it).
 *
 * An input is one configuration byte followed by a program of operations:
 *
 *   byte 0            bits 0-1: option preset (FUZZ_PRESET_*)
 *                     bit  2:   end with an abrupt transport destroy (IO in any state)
 *                               instead of drain-then-destroy
 *   then, repeatedly  op byte (taken modulo FUZZ_NOPS) and the op's operands, below.
 *
 * Operands are little-endian; a truncated input reads as zeros, so every byte string is a
 * valid program.  "qp" operands index the harness's qpair table (modulo its size + 1: the
 * extra index is a handle that never existed); "group" operands are taken modulo
 * num_poll_groups + 1 (the extra one is invalid).  Status operands index
 * fuzz_status_table (modulo its size).
 */
#ifndef FUZZ_CAPSULE_H
#define FUZZ_CAPSULE_H

#define FUZZ_PRESET_MASK   0x03
#define FUZZ_ABRUPT_END    0x04

enum fuzz_op {
    /* qp:u8 icd_len:u16 capsule:sizeof(struct nrt_capsule) icd:icd_len bytes
     * (icd_len is clamped to in_capsule_data_size + 16, so oversize data is tried too) */
    FOP_SUBMIT_RAW = 0,
    /* qp:u8 kind:u8 layout:u8 cid:u16 nsid:u8 slba:u16 nlb:u8 ndesc:u8 addr:u16 flags:u8
     * [flags & FSUB_MUTATE: field:u8 value:u32]; in-capsule data is a byte pattern */
    FOP_SUBMIT,
    FOP_DELIVER_H2T,     /* qp:u8 count:u8 */
    FOP_DELIVER_T2H,     /* qp:u8 count:u8 */
    FOP_POLL,            /* group:u8 */
    FOP_BDEV_COMPLETE,   /* index:u8 status:u8 */
    FOP_BDEV_AUTO,       /* on:u8 */
    FOP_BDEV_INJECT,     /* count:u8 status:u8 */
    FOP_TICK,            /* ticks:u8 */
    FOP_REAP,            /* qp:u8 max:u8 */
    FOP_QP_ERROR,        /* qp:u8 */
    FOP_QP_DISCONNECT,   /* qp:u8 */
    FOP_HOST_DISCONNECT, /* qp:u8 */
    FOP_FAIL_POSTS,      /* qp:u8 count:u8 */
    FOP_PORT_DOWN,       /* port:u8 */
    FOP_PORT_UP,         /* port:u8 */
    FOP_NS_READY,        /* nsid:u8 ready:u8 */
    FOP_QP_CREATE,       /* port:u8 group:u8 depth:u8 */
    FOP_RUN,             /* n:u8 then n x (kind:u8 arg:u8): nrt_run micro-events */
    FOP_MR_WRITE,        /* off:u16 len:u8 bytes:len */
    FOP_MR_CYCLE,        /* deregister the host region and register a new one */
    FOP_STEP,            /* rounds:u8: deliver every wire, poll every group (no bdev) */
    FOP_DRAIN,           /* rounds:u8: nrt_drain */
    FOP_WORKLOAD,        /* qp:u8 write:u8 ndesc:u8 ios:u8 qd:u8 blocks:u8 */
    FOP_CONNECT,         /* qp:u8 qid:u8 flags:u8 (FCON_*) sqsize:u8 */
    /* opts:sizeof(struct nrt_opts): validate; a transport that small enough to build is
     * created and destroyed, and must agree with the validation (CFG-1) */
    FOP_OPTIONS,
    FOP_READ_BACK,       /* which:u8 nsid:u8 off:u32 len:u16: namespace or host-memory read */
    /* qp:u8 count:u8 nlb:u8 shape:u8: count valid READs/WRITEs of nlb+1 blocks at once (the
     * pressure that exhausts buffers, WRs, read depth, slots and the host's response ring);
     * shape bit 0: write, bits 1-2: layout, bits 3-6: descriptors - 1, bit 7: no delivery */
    FOP_BURST,
    FUZZ_NOPS
};

/* FOP_SUBMIT nsid operand, modulo 8: 0-4 namespace 1, 5 namespace 2, 6 nsid 0, 7 nsid 3 */

/* FOP_SUBMIT kind (modulo FK_COUNT) */
enum fuzz_kind {
    FK_READ, FK_WRITE, FK_FLUSH, FK_IDENTIFY, FK_KEEP_ALIVE, FK_ABORT, FK_PROP_GET,
    FK_PROP_SET, FK_COUNT
};

/* FOP_SUBMIT layout (modulo FL_COUNT) */
enum fuzz_layout { FL_IN_CAPSULE, FL_KEYED, FL_LIST, FL_COUNT };

/* FOP_SUBMIT slba operand: modulo 80 (namespace 1 has 64 blocks, namespace 2 has 8) */

/* FOP_SUBMIT flags */
#define FSUB_MUTATE      0x80   /* one field is then overwritten with a raw value */
#define FSUB_BAD_KEY     0x40   /* keyed descriptors carry key + 1 (no such region) */
#define FSUB_INVALIDATE  0x20   /* keyed descriptors use the invalidate subtype */
#define FSUB_RAW_LENGTH  0x10   /* data length = nlb * 256 + ndesc (not block-aligned) */

/* FOP_SUBMIT mutate field (modulo FM_COUNT) */
enum fuzz_mutate {
    FM_OPCODE, FM_FCTYPE, FM_NSID, FM_SLBA, FM_NLB, FM_CDW10, FM_SGL_TYPE, FM_SGL_SUBTYPE,
    FM_SGL_LENGTH, FM_SGL_ADDR, FM_SGL_KEY, FM_NDESC, FM_LIST_LENGTH, FM_LIST_TYPE,
    FM_LIST_KEY, FM_CID, FM_COUNT
};

/* FOP_CONNECT flags */
#define FCON_CNTLID      0x01   /* carry the controller id the setup connected */
#define FCON_BAD_SUBSYS  0x02   /* name a subsystem that does not exist */
#define FCON_KATO        0x04   /* ask for a keep-alive timeout of sqsize ticks */

#endif
