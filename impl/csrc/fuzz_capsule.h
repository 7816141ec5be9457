/*
 * fuzz_capsule.h — the input format of the capsule fuzzer (fuzz_capsule.c), shared with the
 * seed-corpus generator (impl/fuzz/make_corpus.c).  Not part of the target's contract and
 * not compiled into the Python extension (nothing there includes it).
 *
 * The harness drives the rig (nrt_rig_*): the host connects through the RDMA CM and sends
 * capsules as wire bytes, a 64-byte SQE (nvmf_wire.h) plus in-capsule bytes, one host SEND
 * each.  An input is one configuration byte followed by a program of operations:
 *
 *   byte 0            bits 0-1: option preset (FUZZ_PRESET_*)
 *                     bit  2:   end with an abrupt rig destroy (IO in any state)
 *                               instead of drain-then-destroy
 *   then, repeatedly  op byte (taken modulo FUZZ_NOPS) and the op's operands, below.
 *
 * Operands are little-endian; a truncated input reads as zeros, so every byte string is a
 * valid program.  "conn" operands index the harness's connection table (modulo its size + 1:
 * the extra index is a handle that never existed): entry 0 is the admin connection, 1 the
 * IO connection, then those FOP_CM_CONNECT made.  "group" operands are taken modulo
 * num_poll_groups + 1 (the extra one is invalid), "port" operands modulo 3 (two ports and
 * one that does not exist).  Status operands index fuzz_status_table (modulo its size).
 * Host addresses in operands are offsets into the host memory region; the harness adds its
 * IO virtual address (and the region's key) where it builds descriptors itself.
 */
#ifndef FUZZ_CAPSULE_H
#define FUZZ_CAPSULE_H

#define FUZZ_PRESET_MASK   0x03
#define FUZZ_ABRUPT_END    0x04

enum fuzz_op {
    /* conn:u8 fix:u8 (FRAW_*) len:u16 bytes:len -- the whole capsule, SQE and in-capsule
     * bytes, raw; len is taken modulo 64 + in_capsule_data_size + 17, so short capsules
     * (no SQE: refused by the rig below 4 bytes) and oversize ones are tried too */
    FOP_SUBMIT_RAW = 0,
    /* conn:u8 kind:u8 layout:u8 cid:u16 nsid:u8 slba:u16 nlb:u8 ndesc:u8 addr:u16 flags:u8
     * [flags & FSUB_MUTATE: field:u8 value:u32]; in-capsule data is a byte pattern */
    FOP_SUBMIT,
    FOP_DELIVER_H2T,     /* conn:u8 count:u8: the host's next SENDs execute */
    FOP_DELIVER_T2H,     /* conn:u8 count:u8: the target's next send-queue WRs execute */
    FOP_POLL,            /* group:u8 */
    FOP_BDEV_COMPLETE,   /* index:u8 status:u8 */
    FOP_BDEV_AUTO,       /* on:u8 */
    FOP_BDEV_INJECT,     /* count:u8 status:u8 */
    FOP_TICK,            /* ticks:u8 */
    FOP_REAP,            /* conn:u8 max:u8 */
    FOP_QP_ERROR,        /* conn:u8: the target QP goes to error (simverbs fault) */
    FOP_QP_DISCONNECT,   /* conn:u8: the target closes its qpair */
    FOP_HOST_DISCONNECT, /* conn:u8 */
    FOP_FAIL_POSTS,      /* conn:u8 count:u8 */
    FOP_PORT_DOWN,       /* port:u8 */
    FOP_PORT_UP,         /* port:u8 */
    FOP_NS_READY,        /* nsid:u8 ready:u8 */
    /* port:u8 group:u8 qid:u8 depth:u8 flags:u8 (FCM_*)
     * [flags & FCM_FIELDS: hrqsize:u16 hsqsize:u16 cntlid:u16 recfmt:u16 pdlen:u8 ird:u8
     *  ord:u8] [flags & FCM_RAW: pdlen:u8 private_data:56]: an RDMA CM connect with
     * struct nrt_connect_params (nrt_connect_params_default(port, group, qid, depth) unless
     * overridden; depth modulo max_queue_depth + 2, hrqsize modulo 1024 since the host posts
     * that many receives: raw private data carries any HRQSIZE); the new connection joins
     * the table (rejected ones too) */
    FOP_CM_CONNECT,
    FOP_RUN,             /* n:u8 then n x (kind:u8 arg:u8): nrt_rig_run micro-events */
    FOP_MR_WRITE,        /* off:u16 len:u8 bytes:len */
    FOP_MR_CYCLE,        /* deregister the host region and register a new one */
    FOP_STEP,            /* rounds:u8: deliver every wire, poll every group (no bdev) */
    FOP_DRAIN,           /* rounds:u8: nrt_rig_drain */
    FOP_WORKLOAD,        /* conn:u8 write:u8 ndesc:u8 ios:u8 qd:u8 blocks:u8 */
    FOP_CONNECT,         /* conn:u8 qid:u8 flags:u8 (FCON_*) sqsize:u8: Fabrics Connect */
    /* opts:sizeof(struct nrt_opts): validate; a transport small enough to build is
     * created and destroyed, and must agree with the validation (CFG-1) */
    FOP_OPTIONS,
    FOP_READ_BACK,       /* which:u8 nsid:u8 off:u32 len:u16: namespace or host-memory read */
    /* conn:u8 count:u8 nlb:u8 shape:u8: count valid READs/WRITEs of nlb+1 blocks at once (the
     * pressure that exhausts buffers, WRs, read depth, slots and the host's receives);
     * shape bit 0: write, bits 1-2: layout, bits 3-6: descriptors - 1, bit 7: no delivery */
    FOP_BURST,
    FOP_REMOTE_ACCESS,   /* conn:u8 count:u8: the next RDMA READ/WRITEs fail remotely */
    FOP_RNR,             /* conn:u8 count:u8: the next SENDs find no receive (RNR error) */
    FOP_DEVICE_REMOVE,   /* port:u8 */
    FUZZ_NOPS
};

/* FOP_SUBMIT_RAW fix bits: relocations into the harness's host memory region, added to
 * whatever the raw bytes say (0 there = the region's start, the region's key) */
#define FRAW_SGL_ADDR    0x01   /* SGL1 address += the region's IO virtual address */
#define FRAW_SGL_KEY     0x02   /* SGL1 keyed key += the region's key */
#define FRAW_LIST        0x04   /* each keyed descriptor in the in-capsule area: both */
#define FRAW_FRESH_CID   0x08   /* the CID is replaced by a fresh one (never outstanding) */

/* FOP_SUBMIT nsid operand, modulo 8: 0-4 namespace 1, 5 namespace 2, 6 nsid 0, 7 nsid 3 */

/* FOP_SUBMIT kind (modulo FK_COUNT) */
enum fuzz_kind {
    FK_READ, FK_WRITE, FK_FLUSH, FK_IDENTIFY, FK_KEEP_ALIVE, FK_ABORT, FK_PROP_GET,
    FK_PROP_SET, FK_SET_FEATURES, FK_GET_FEATURES, FK_COUNT
};

/* FOP_SUBMIT layout (modulo FL_COUNT): data block offset SGL (in-capsule data), one keyed
 * data block, or a last segment (offset) of ndesc keyed descriptors in the capsule */
enum fuzz_layout { FL_IN_CAPSULE, FL_KEYED, FL_LIST, FL_COUNT };

/* FOP_SUBMIT slba operand: modulo 80 (namespace 1 has 64 blocks, namespace 2 has 8).
 * Identify: CNS = slba & 3.  Property Get/Set: OFST = slba & 0x1C; nlb bit 3 flips ATTRIB's
 * size; Set: nlb bit 0 = CC enable (EN, IOSQES 6, IOCQES 4), bit 1 = shutdown notification.
 * Features: FID = slba & 1 ? keep alive timer : number of queues; Set: CDW11 = slba,
 * nlb bit 3 = SV; Get: SEL = nlb & 7. */

/* FOP_SUBMIT flags */
#define FSUB_MUTATE      0x80   /* one field is then overwritten with a raw value */
#define FSUB_BAD_KEY     0x40   /* keyed descriptors carry key + 1 (no such region) */
#define FSUB_INVALIDATE  0x20   /* keyed descriptors use the invalidate subtype */
#define FSUB_RAW_LENGTH  0x10   /* data length = nlb * 256 + ndesc (not block-aligned) */
#define FSUB_OFFSET      0x08   /* in-capsule data / the list start 16 bytes into the
                                   in-capsule area (SGL1 address 16) */

/* FOP_SUBMIT mutate field (modulo FM_COUNT); v is the u32 value */
enum fuzz_mutate {
    FM_OPCODE,       /* byte 0 = v */
    FM_FUSE_PSDT,    /* byte 1 = v: FUSE and PSDT */
    FM_CID,          /* = v */
    FM_NSID,         /* = v */
    FM_CDW2,         /* reserved dwords 2 and 3 (v << 32 | v) */
    FM_MPTR,         /* = v << (v & 32) */
    FM_SLBA,         /* CDW10-11 = v << (v & 32) */
    FM_CDW10, FM_CDW11, FM_CDW12, FM_CDW13, FM_CDW14, FM_CDW15,   /* = v */
    FM_SGL_ADDR,     /* SGL1 address += (int32_t)v: an offset, or a host address */
    FM_SGL_LENGTH,   /* SGL1 length = v (24 bits in the keyed form) */
    FM_SGL_KEY,      /* SGL1 keyed key = v */
    FM_SGL_TYPE,     /* SGL1 type = v & 0xF */
    FM_SGL_SUBTYPE,  /* SGL1 subtype = v & 0xF */
    FM_SGL_RESERVED, /* SGL1 bytes 12-14 (unkeyed reserved) = v */
    FM_LIST_ADDR,    /* list entry (v % 16): address += (int32_t)v >> 4 */
    FM_LIST_LENGTH,  /* list entry (v % 16): keyed length = v >> 4 */
    FM_LIST_TYPE,    /* list entry (v % 16): type/subtype byte = v >> 4 */
    FM_LIST_KEY,     /* list entry (v % 16): key = v >> 4 */
    FM_BYTE,         /* SQE byte v % 64 = v >> 8: any field, reserved bits included */
    FM_ICD_BYTE,     /* in-capsule byte (v >> 8) % its length = v */
    FM_CAPLEN,       /* capsule length = v % (64 + in_capsule_data_size + 17) */
    FM_COUNT
};

/* FOP_CONNECT flags */
#define FCON_CNTLID      0x01   /* carry the controller id the setup connected (else FFFFh) */
#define FCON_BAD_SUBSYS  0x02   /* SUBNQN a prefix of the real one (no such subsystem) */
#define FCON_KATO        0x04   /* ask for a keep-alive timeout of sqsize ticks */
#define FCON_SUB1        0x08   /* the second (namespace-less) subsystem */
#define FCON_BAD_HOST    0x10   /* another HOSTNQN than the setup's */
#define FCON_KEYED       0x20   /* connect data through a keyed SGL from host memory (also
                                   when in_capsule_data_size < 1024) */
#define FCON_SHORT       0x40   /* 1023 bytes of connect data */
#define FCON_HOSTID      0x80   /* another HOSTID than the setup's */

/* FOP_CM_CONNECT flags */
#define FCM_FIELDS       0x01   /* private data fields and CM depths from the input */
#define FCM_RAW          0x02   /* raw private data (56 bytes) from the input */

#endif
