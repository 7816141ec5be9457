/*
 * make_corpus.c — writes the seed corpus of the capsule fuzzer (impl/csrc/fuzz_capsule.c).
 *
 *   cc -std=gnu11 -Iimpl/csrc impl/fuzz/make_corpus.c -o make_corpus
 *   ./make_corpus DIR [REGRESSIONS_DIR]
 *
 * Each seed is a short, meaningful program in the format of impl/csrc/fuzz_capsule.h: a
 * valid write, read-back, identify, connects (RDMA CM and Fabrics), raw SQE bytes, faults
 * mid-transfer.  Seeds are a starting point only: libFuzzer mutates them, so they need not
 * stay exact when the format grows.  Raw capsules are wire bytes (nvmf_wire.h: the layouts
 * are the specifications', checked by static asserts); raw options are struct nrt_opts as
 * this compiler lays it out, which is the layout the fuzzer is built with.
 * With a second directory it also writes the regression inputs (impl/fuzz/regressions/:
 * programs that once showed a target bug).  impl/tools/fuzz.sh --regen-corpus regenerates
 * the committed copies of both.
 */
#include "nrt.h"
#include "nvmf_wire.h"
#include "fuzz_capsule.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct seed {
    uint8_t b[8192];
    size_t n;
};

static void u8(struct seed *s, unsigned v)
{
    if (s->n >= sizeof(s->b)) {
        fprintf(stderr, "seed too long\n");
        exit(1);
    }
    s->b[s->n++] = (uint8_t)v;
}

static void u16(struct seed *s, unsigned v)
{
    u8(s, v & 0xFF);
    u8(s, v >> 8);
}

static void u32(struct seed *s, uint32_t v)
{
    u16(s, v & 0xFFFF);
    u16(s, v >> 16);
}

static void raw(struct seed *s, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        u8(s, ((const uint8_t *)p)[i]);
}

/* Harness connection table: 0 = admin, 1 = IO, then each FOP_CM_CONNECT's (rejected ones
 * included). */
enum { ADMIN = 0, IO = 1 };

/* The harness's CC enable value and property offset (fuzz_capsule.c). */
#define CC_ENABLE 0x00460001u

static void submit(struct seed *s, unsigned conn, unsigned kind, unsigned layout, unsigned cid,
                   unsigned nsid, unsigned slba, unsigned nlb, unsigned ndesc, unsigned addr,
                   unsigned flags)
{
    u8(s, FOP_SUBMIT);
    u8(s, conn);
    u8(s, kind);
    u8(s, layout);
    u16(s, cid);
    u8(s, nsid);
    u16(s, slba);
    u8(s, nlb);
    u8(s, ndesc - 1);
    u16(s, addr);
    u8(s, flags);
}

/* submit() with FSUB_MUTATE: one field of the built capsule then overwritten */
static void submit_mutated(struct seed *s, unsigned conn, unsigned kind, unsigned layout,
                           unsigned cid, unsigned slba, unsigned nlb, unsigned ndesc,
                           unsigned flags, unsigned field, uint32_t value)
{
    submit(s, conn, kind, layout, cid, 1, slba, nlb, ndesc, 0, flags | FSUB_MUTATE);
    u8(s, field);
    u32(s, value);
}

static void op2(struct seed *s, unsigned op, unsigned a, unsigned b)
{
    u8(s, op);
    u8(s, a);
    u8(s, b);
}

static void op1(struct seed *s, unsigned op, unsigned a)
{
    u8(s, op);
    u8(s, a);
}

/* Block-device IOs already queued complete (in reverse order), then rounds of: deliver
 * every wire, poll every group; then the host reaps connections 0..nconns-1. */
static void settle(struct seed *s, unsigned rounds, unsigned nconns)
{
    op1(s, FOP_STEP, rounds - 1);
    for (unsigned i = 0; i < 4; i++)
        op2(s, FOP_BDEV_COMPLETE, 255, 0);
    op1(s, FOP_STEP, rounds - 1);
    for (unsigned c = 0; c < nconns; c++)
        op2(s, FOP_REAP, c, 16);
}

/* A raw capsule: len wire bytes, with the harness's relocations fix (FRAW_*). */
static void submit_raw(struct seed *s, unsigned conn, unsigned fix, const void *bytes,
                       size_t len)
{
    u8(s, FOP_SUBMIT_RAW);
    u8(s, conn);
    u8(s, fix);
    u16(s, (unsigned)len);
    raw(s, bytes, len);
}

/* An RDMA CM connect with the rig's default parameters for (port, group, qid, depth). */
static void cm_connect(struct seed *s, unsigned port, unsigned group, unsigned qid,
                       unsigned depth)
{
    u8(s, FOP_CM_CONNECT);
    u8(s, port);
    u8(s, group);
    u8(s, qid);
    u8(s, depth);
    u8(s, 0);
}

/* ... with every private data field and CM depth given */
static void cm_connect_fields(struct seed *s, unsigned port, unsigned qid, unsigned hrqsize,
                              unsigned hsqsize, unsigned cntlid, unsigned recfmt,
                              unsigned pdlen, unsigned ird, unsigned ord)
{
    u8(s, FOP_CM_CONNECT);
    u8(s, port);
    u8(s, 0);
    u8(s, qid);
    u8(s, hrqsize);
    u8(s, FCM_FIELDS);
    u16(s, hrqsize);
    u16(s, hsqsize);
    u16(s, cntlid);
    u16(s, recfmt);
    u8(s, pdlen);
    u8(s, ird);
    u8(s, ord);
}

/* A Fabrics Connect command on conn */
static void fabrics_connect(struct seed *s, unsigned conn, unsigned qid, unsigned flags,
                            unsigned sqsize)
{
    u8(s, FOP_CONNECT);
    u8(s, conn);
    u8(s, qid);
    u8(s, flags);
    u8(s, sqsize);
}

static void workload(struct seed *s, unsigned conn, unsigned write, unsigned ndesc,
                     unsigned ios, unsigned qd, unsigned blocks)
{
    u8(s, FOP_WORKLOAD);
    u8(s, conn);
    u8(s, write);
    u8(s, ndesc - 1);
    u8(s, ios);
    u8(s, qd - 1);
    u8(s, blocks - 1);
}

static struct nvme_sqe sqe_io(uint8_t opc, uint16_t cid, uint32_t slba, uint32_t nlb)
{
    struct nvme_sqe q;
    memset(&q, 0, sizeof(q));
    q.opc = opc;
    q.fuse_psdt = 1u << 6;
    q.cid = cid;
    q.nsid = 1;
    q.cdw10 = slba;
    q.cdw12 = nlb;
    return q;
}

static int write_seed(const char *dir, const char *name, const struct seed *s)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(s->b, 1, s->n, f) != s->n || fclose(f)) {
        perror(path);
        return 1;
    }
    printf("%s (%zu bytes)\n", path, s->n);
    return 0;
}

/* The finding of impl/fuzz/regressions/workload-foreign-cid-uninit-capsule: the workload
 * driver, run on a connection with a capsule of the host's own outstanding, took that
 * capsule's response for one of its IOs and resubmitted a capsule it never built.  It must
 * refuse such a connection (WL-1): here with the READ at the block device, then with its
 * response received but not reaped; once reaped, the workload runs. */
/* Raw inputs the fuzzer found, kept byte for byte as found (each bug is fixed; `why` says
 * what each showed).  They are programs in today's input format: a format change must
 * translate them. */
static const struct { const char *name; const char *why; size_t n; const uint8_t *b; } raw_findings[] = {
    {"cfg-max-queue-depth-one-accepted-then-refused",
     "CFG-1: the options validator accepted max_queue_depth = 1, which creation then refused (a queue holds at least two entries)",
     86, (const uint8_t[]){0x00, 0x19, 0x01, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
    {"cq-too-small-for-outstanding-reads-loses-a-flush",
     "CQ-1 / LIVE-1: a group's CQ was sized without the RDMA READs a qpair may have outstanding; flushes after a qpair error overran it and one receive's flush was lost",
     143, (const uint8_t[]){0x03, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x05, 0x00, 0x00, 0x15, 0x00, 0x09, 0x00, 0x00, 0x09, 0x00, 0x00, 0x01, 0x01, 0x00, 0x01, 0x43, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x45, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01, 0x02, 0x46, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x57, 0x2e, 0x00, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x47, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x88, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x49, 0x00, 0x01}},
    {"workload-baseline-beyond-the-host-region",
     "ASan: the memcpy floor copied past the host region (the workload checked the namespace, not the host region nor max_io_size)",
     8, (const uint8_t[]){0x07, 0x17, 0x01, 0x00, 0x00, 0x08, 0x87, 0x52}},
};

static int regressions(const char *dir)
{
    int rc = 0;
    for (size_t i = 0; i < sizeof(raw_findings) / sizeof(raw_findings[0]); i++) {
        struct seed r;
        memcpy(r.b, raw_findings[i].b, raw_findings[i].n);
        r.n = raw_findings[i].n;
        rc |= write_seed(dir, raw_findings[i].name, &r);
    }
    struct seed s;
    memset(&s, 0, sizeof(s));
    u8(&s, 1);
    workload(&s, IO, 1, 1, 8, 4, 1);            /* idle: runs */
    submit(&s, IO, FK_READ, FL_KEYED, 1, 1, 0, 0, 1, 0, 0);
    u8(&s, FOP_RUN);
    u8(&s, 2);
    u8(&s, NRT_EV_DELIVER_H2T);
    u8(&s, IO);
    u8(&s, NRT_EV_POLL);
    u8(&s, 0);
    workload(&s, IO, 0, 1, 4, 1, 1);            /* READ at the bdev: refused */
    op2(&s, FOP_BDEV_COMPLETE, 0, 0);
    op1(&s, FOP_STEP, 1);
    workload(&s, IO, 0, 1, 4, 1, 1);            /* response not reaped: refused */
    op2(&s, FOP_REAP, IO, 16);
    workload(&s, IO, 0, 2, 4, 2, 1);            /* idle again: runs */
    settle(&s, 2, 2);
    return rc | write_seed(dir, "workload-foreign-cid-uninit-capsule", &s);
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s DIR [REGRESSIONS_DIR]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int rc = 0;
    struct seed s;

    /* write through each SGL layout, then read it back (preset 0: tight pools) */
    memset(&s, 0, sizeof(s));
    u8(&s, 0);
    submit(&s, IO, FK_WRITE, FL_KEYED, 1, 1, 0, 7, 1, 0, 0);
    submit(&s, IO, FK_WRITE, FL_IN_CAPSULE, 2, 1, 8, 1, 1, 0, 0);
    submit(&s, IO, FK_WRITE, FL_LIST, 3, 1, 16, 15, 4, 4096, 0);
    settle(&s, 4, 2);
    submit(&s, IO, FK_READ, FL_LIST, 4, 1, 16, 15, 4, 8192, 0);
    submit(&s, IO, FK_READ, FL_KEYED, 5, 1, 0, 7, 1, 32768, 0);
    submit(&s, IO, FK_WRITE, FL_IN_CAPSULE, 6, 1, 24, 0, 1, 0, FSUB_OFFSET);
    submit(&s, IO, FK_READ, FL_LIST, 7, 1, 24, 0, 2, 16384, FSUB_OFFSET | FSUB_INVALIDATE);
    settle(&s, 4, 2);
    rc |= write_seed(dir, "seed-write-read-layouts", &s);

    /* admin commands: identify controller, namespace and list, properties, features,
     * keep-alive, abort; then a keep-alive expiry (preset 1: 50 ticks, then KATO 101) */
    memset(&s, 0, sizeof(s));
    u8(&s, 1);
    submit(&s, ADMIN, FK_IDENTIFY, FL_KEYED, 10, 1, 1, 0, 1, 0, 0);      /* CNS 1 */
    submit(&s, ADMIN, FK_IDENTIFY, FL_KEYED, 11, 1, 0, 0, 1, 4096, 0);   /* CNS 0 */
    submit(&s, ADMIN, FK_PROP_GET, FL_KEYED, 12, 0, 0x14, 0, 1, 0, 0);   /* CC */
    settle(&s, 3, 1);
    submit(&s, ADMIN, FK_PROP_GET, FL_KEYED, 13, 0, 0, 0, 1, 0, 0);      /* CAP, 8 bytes */
    submit(&s, ADMIN, FK_IDENTIFY, FL_LIST, 16, 1, 2, 0, 2, 8192, 0);    /* CNS 2 */
    settle(&s, 3, 1);
    submit(&s, ADMIN, FK_PROP_SET, FL_KEYED, 13, 0, 0x14, 1, 1, 0, 0);   /* CC.EN again */
    submit(&s, ADMIN, FK_SET_FEATURES, FL_KEYED, 17, 0, 101, 0, 1, 0, 0);   /* KATO 101 */
    submit(&s, ADMIN, FK_GET_FEATURES, FL_KEYED, 18, 0, 0, 0, 1, 0, 0);  /* queues */
    settle(&s, 3, 1);
    submit(&s, ADMIN, FK_KEEP_ALIVE, FL_KEYED, 14, 0, 0, 0, 1, 0, 0);
    submit(&s, ADMIN, FK_ABORT, FL_KEYED, 15, 0, 1, 3, 1, 0, 0);
    settle(&s, 3, 2);
    op1(&s, FOP_TICK, 200);   /* keep-alive expiry */
    submit(&s, IO, FK_READ, FL_KEYED, 19, 1, 0, 0, 1, 0, 0);
    settle(&s, 2, 2);
    rc |= write_seed(dir, "seed-admin-identify-props", &s);

    /* a third connection, on port 1: connect it as IO queue 2 of the controller, then
     * write on it; then its port goes down */
    memset(&s, 0, sizeof(s));
    u8(&s, 0);
    cm_connect(&s, 1, 0, 2, 8);
    fabrics_connect(&s, 2, 2, FCON_CNTLID, 7);
    settle(&s, 2, 3);
    submit(&s, 2, FK_WRITE, FL_KEYED, 20, 1, 4, 3, 1, 1024, 0);
    settle(&s, 3, 3);
    op1(&s, FOP_PORT_DOWN, 1);
    settle(&s, 2, 3);
    rc |= write_seed(dir, "seed-connect-third-qpair", &s);

    /* raw wire bytes: a keyed READ (address and key relocated into the host region), an
     * in-capsule WRITE with its data, a WRITE through a last-segment list 16 bytes into the
     * capsule, and a READ with reserved fields set */
    memset(&s, 0, sizeof(s));
    u8(&s, 0);
    uint8_t cap[NVMF_SQE_SIZE + 1024];
    struct nvme_sqe q = sqe_io(NRT_OPC_READ, 30, 2, 3);
    nvme_sgl_keyed_set(&q.sgl1.keyed, 512, 4 * 512, 0, NVME_SGL_SUBTYPE_ADDRESS);
    submit_raw(&s, IO, FRAW_SGL_ADDR | FRAW_SGL_KEY, &q, sizeof(q));
    q = sqe_io(NRT_OPC_WRITE, 31, 0, 0);
    q.sgl1.unkeyed.length = 512;
    q.sgl1.unkeyed.type_subtype = NVME_SGL_TYPE_DATA_BLOCK << 4 | NVME_SGL_SUBTYPE_OFFSET;
    memcpy(cap, &q, sizeof(q));
    for (int i = 0; i < 512; i++)
        cap[NVMF_SQE_SIZE + i] = (uint8_t)(i * 7);
    submit_raw(&s, IO, 0, cap, NVMF_SQE_SIZE + 512);
    q = sqe_io(NRT_OPC_WRITE, 32, 4, 1);
    q.sgl1.unkeyed.address = 16;
    q.sgl1.unkeyed.length = 32;
    q.sgl1.unkeyed.type_subtype = NVME_SGL_TYPE_LAST_SEGMENT << 4 | NVME_SGL_SUBTYPE_OFFSET;
    memset(cap, 0, sizeof(cap));
    memcpy(cap, &q, sizeof(q));
    memset(cap + NVMF_SQE_SIZE, 0xEE, 16);
    union nvme_sgl_desc list[2];
    memset(list, 0, sizeof(list));
    nvme_sgl_keyed_set(&list[0].keyed, 20000, 600, 0, NVME_SGL_SUBTYPE_ADDRESS);
    nvme_sgl_keyed_set(&list[1].keyed, 10000, 424, 0, NVME_SGL_SUBTYPE_INVALIDATE);
    memcpy(cap + NVMF_SQE_SIZE + 16, list, sizeof(list));
    submit_raw(&s, IO, FRAW_LIST, cap, NVMF_SQE_SIZE + 16 + sizeof(list));
    q = sqe_io(NRT_OPC_READ, 33, 4, 1);
    q.cdw2 = 0xFFFFFFFF;
    q.cdw3 = 0x12345678;
    q.mptr = 0xDEADBEEFCAFEull;
    q.cdw13 = 0xFF;
    nvme_sgl_keyed_set(&q.sgl1.keyed, 30000, 1024, 0, NVME_SGL_SUBTYPE_ADDRESS);
    submit_raw(&s, IO, FRAW_SGL_ADDR | FRAW_SGL_KEY | FRAW_FRESH_CID, &q, sizeof(q));
    settle(&s, 4, 2);
    rc |= write_seed(dir, "seed-raw-read-and-icd-write", &s);

    /* faults mid-transfer (preset 2: no in-capsule data, read depth 1, one SGE per WR):
     * post failures, a remote access error, a qpair error with READs split by read depth,
     * a block-device error, a host disconnect with IO queued; drain-then-destroy */
    memset(&s, 0, sizeof(s));
    u8(&s, 2);
    op2(&s, FOP_FAIL_POSTS, IO, 2);
    submit(&s, IO, FK_WRITE, FL_KEYED, 40, 1, 0, 3, 1, 0, 0);
    submit(&s, IO, FK_WRITE, FL_KEYED, 41, 1, 4, 3, 1, 8192, 0);
    op2(&s, FOP_DELIVER_H2T, IO, 7);
    op1(&s, FOP_POLL, 2);
    op2(&s, FOP_DELIVER_T2H, IO, 0);
    op1(&s, FOP_POLL, 2);
    op2(&s, FOP_REMOTE_ACCESS, IO, 1);
    op2(&s, FOP_DELIVER_T2H, IO, 1);
    op1(&s, FOP_POLL, 2);
    op1(&s, FOP_QP_ERROR, IO);
    op2(&s, FOP_BDEV_INJECT, 1, 1);
    submit(&s, ADMIN, FK_KEEP_ALIVE, FL_KEYED, 42, 0, 0, 0, 1, 0, 0);
    op1(&s, FOP_HOST_DISCONNECT, ADMIN);
    settle(&s, 3, 2);
    rc |= write_seed(dir, "seed-faults-mid-transfer", &s);

    /* abrupt destroy with IO in every state: waiting for buffers, mid-READ, at the bdev */
    memset(&s, 0, sizeof(s));
    u8(&s, FUZZ_ABRUPT_END | 0);
    for (unsigned i = 0; i < 6; i++)
        submit(&s, IO, i & 1 ? FK_READ : FK_WRITE, FL_LIST, 50 + i, 1, 8 * i, 7, 3,
               4096 * i, 0);
    op2(&s, FOP_DELIVER_H2T, IO, 7);
    op1(&s, FOP_POLL, 1);
    op2(&s, FOP_DELIVER_T2H, IO, 1);
    op1(&s, FOP_POLL, 1);
    op2(&s, FOP_DELIVER_T2H, IO, 1);
    op1(&s, FOP_POLL, 1);
    rc |= write_seed(dir, "seed-abrupt-destroy", &s);

    /* malformed (preset 3: 8 descriptors, 2 KiB in capsule): too many descriptors, LBA out
     * of range, unaligned length, a segment SGL, PSDT 00b, FUSE set, a reserved dword, a
     * zero-length and a mistyped list entry, list and data offsets past the capsule, an
     * unknown and a bidirectional opcode; last, a bad key fails the RDMA READ (the qpair
     * goes to error) and a capsule shorter than an SQE breaks the admin connection */
    memset(&s, 0, sizeof(s));
    u8(&s, 3);
    submit(&s, IO, FK_READ, FL_LIST, 61, 1, 0, 15, 16, 0, 0);
    submit(&s, IO, FK_READ, FL_KEYED, 62, 1, 64, 0, 1, 0, 0);
    submit(&s, IO, FK_WRITE, FL_KEYED, 63, 1, 0, 1, 3, 0, FSUB_RAW_LENGTH);
    submit_mutated(&s, IO, FK_WRITE, FL_KEYED, 64, 0, 0, 1, 0, FM_SGL_TYPE, NVME_SGL_TYPE_SEGMENT);
    submit_mutated(&s, IO, FK_READ, FL_KEYED, 65, 0, 0, 1, 0, FM_FUSE_PSDT, 0x00);
    submit_mutated(&s, IO, FK_READ, FL_KEYED, 66, 0, 0, 1, 0, FM_FUSE_PSDT, 0x41);
    settle(&s, 4, 2);
    submit_mutated(&s, IO, FK_READ, FL_KEYED, 67, 0, 0, 1, 0, FM_BYTE, 0xFF << 8 | 9);
    submit_mutated(&s, IO, FK_WRITE, FL_LIST, 68, 0, 1, 2, 0, FM_LIST_LENGTH, 0);
    submit_mutated(&s, IO, FK_WRITE, FL_LIST, 69, 0, 1, 2, 0, FM_LIST_TYPE, 0x01 << 4 | 1);
    submit_mutated(&s, IO, FK_WRITE, FL_LIST, 70, 0, 1, 2, 0, FM_SGL_ADDR, 2000);
    submit_mutated(&s, IO, FK_WRITE, FL_IN_CAPSULE, 71, 0, 0, 1, FSUB_OFFSET, FM_SGL_ADDR,
                   4000);
    submit_mutated(&s, IO, FK_READ, FL_KEYED, 72, 0, 0, 1, 0, FM_OPCODE, 0x55);
    submit_mutated(&s, IO, FK_READ, FL_KEYED, 73, 0, 0, 1, 0, FM_OPCODE, 0x03);
    submit_mutated(&s, IO, FK_WRITE, FL_KEYED, 74, 0, 0, 1, 0, FM_SGL_LENGTH, 0);
    settle(&s, 4, 2);
    submit(&s, IO, FK_WRITE, FL_KEYED, 60, 1, 0, 0, 1, 0, FSUB_BAD_KEY);
    submit_mutated(&s, ADMIN, FK_KEEP_ALIVE, FL_KEYED, 75, 0, 0, 1, 0, FM_CAPLEN, 40);
    settle(&s, 4, 2);
    rc |= write_seed(dir, "seed-malformed", &s);

    /* the C workload driver on an idle connection, then nrt_rig_run micro-events */
    memset(&s, 0, sizeof(s));
    u8(&s, 1);
    workload(&s, IO, 1, 2, 8, 4, 1);
    submit(&s, IO, FK_READ, FL_KEYED, 70, 1, 0, 0, 1, 0, 0);
    u8(&s, FOP_RUN);
    u8(&s, 6);
    u8(&s, NRT_EV_DELIVER_H2T);
    u8(&s, IO);
    u8(&s, NRT_EV_POLL);
    u8(&s, 0);
    u8(&s, NRT_EV_BDEV);
    u8(&s, 0);
    u8(&s, NRT_EV_DELIVER_T2H);
    u8(&s, IO);
    u8(&s, NRT_EV_TICK);
    u8(&s, 3);
    u8(&s, NRT_EV_ACCEPT);
    u8(&s, 0);
    settle(&s, 3, 2);
    workload(&s, IO, 0, 4, 15, 8, 2);
    rc |= write_seed(dir, "seed-workload-and-run", &s);

    /* options: a small accepted set, then the same with io_unit_size 0 (refused) and a
     * pool one below its minimum (refused, naming the minimum); then read-backs */
    memset(&s, 0, sizeof(s));
    u8(&s, 0);
    struct nrt_opts o = {
        .max_queue_depth = 16, .max_io_size = 8192, .io_unit_size = 4096,
        .in_capsule_data_size = 1024, .num_shared_buffers = 64, .buf_cache_size = 4,
        .wr_pool_multiplier = 16, .wr_cache_size = 4, .num_poll_groups = 2,
        .max_read_depth = 4, .max_sge = 4, .max_sgl_descriptors = 4, .max_qpairs = 8,
        .max_ports = 1, .max_subsystems = 1, .max_namespaces = 1, .max_memory_regions = 2};
    u8(&s, FOP_OPTIONS);
    raw(&s, &o, sizeof(o));
    o.io_unit_size = 0;
    u8(&s, FOP_OPTIONS);
    raw(&s, &o, sizeof(o));
    o.io_unit_size = 4096;
    o.wr_pool_size = 2 * (4 + 4 + (2 - 1) / 4) - 1;
    u8(&s, FOP_OPTIONS);
    raw(&s, &o, sizeof(o));
    u8(&s, FOP_READ_BACK);
    u8(&s, 1);   /* namespace */
    u8(&s, 1);
    u32(&s, 512);
    u16(&s, 1024);
    u8(&s, FOP_READ_BACK);
    u8(&s, 0);   /* host memory, past its end */
    u8(&s, 0);
    u32(&s, 65000);
    u16(&s, 1024);
    rc |= write_seed(dir, "seed-options-and-read-back", &s);

    /* pressure (preset 0: buffers and WRs at their minimum): 8 writes of 8 KiB at once
     * exhaust the buffers, so requests wait for them; then 8 reads through 4-descriptor
     * lists; everything completes without the host reaping until the end */
    memset(&s, 0, sizeof(s));
    u8(&s, 0);
    u8(&s, FOP_BDEV_AUTO);
    u8(&s, 1);
    u8(&s, FOP_BURST);
    u8(&s, IO);
    u8(&s, 8);               /* count */
    u8(&s, 15);              /* nlb: 16 blocks */
    u8(&s, 1 | FL_KEYED << 1);
    op1(&s, FOP_STEP, 7);
    op2(&s, FOP_REAP, IO, 16);
    u8(&s, FOP_BURST);
    u8(&s, IO);
    u8(&s, 8);
    u8(&s, 15);
    u8(&s, 0 | FL_LIST << 1 | 3 << 3);
    op1(&s, FOP_STEP, 7);
    op1(&s, FOP_STEP, 7);
    settle(&s, 4, 2);
    rc |= write_seed(dir, "seed-burst-exhausts-buffers", &s);

    /* RDMA CM connect requests (preset 0: queues of 8, 8 qpairs): short private data, a
     * bad RECFMT, QID, HRQSIZE and HSQSIZE, no responder resources, raw private data, a
     * port that does not exist, a queue deeper than the target's; then one accepted, and
     * Fabrics Connects on it that must fail (unknown or other subsystem, other host, other
     * host id, short data, QID beyond the granted queues, SQSIZE 0 or beyond the
     * negotiated depth) before an admin Connect makes it a second association's queue and
     * a second Connect is out of sequence */
    memset(&s, 0, sizeof(s));
    u8(&s, 0);
    cm_connect_fields(&s, 1, 1, 4, 3, 0, 0, 16, 16, 16);     /* conn 2: 16 bytes */
    cm_connect_fields(&s, 1, 1, 4, 3, 0, 1, 32, 16, 16);     /* conn 3: RECFMT 1 */
    cm_connect(&s, 1, 0, 200, 4);                            /* conn 4: QID 200 */
    cm_connect_fields(&s, 1, 1, 1, 3, 0, 0, 32, 16, 16);     /* conn 5: HRQSIZE 1 */
    cm_connect_fields(&s, 1, 1, 4, 0, 0, 0, 32, 16, 16);     /* conn 6: HSQSIZE 0 */
    cm_connect_fields(&s, 1, 1, 4, 3, 0, 0, 32, 16, 0);      /* conn 7: no responder res. */
    u8(&s, FOP_CM_CONNECT);                                  /* conn 8: raw, HRQSIZE FFFFh */
    u8(&s, 1);
    u8(&s, 0);
    u8(&s, 1);
    u8(&s, 4);
    u8(&s, FCM_RAW);
    u8(&s, 32);
    struct nvmf_rdma_request_private_data pd = {.recfmt = 0, .qid = 1, .hrqsize = 0xFFFF,
                                                .hsqsize = 3, .cntlid = 0};
    uint8_t pdraw[56];
    memset(pdraw, 0x5A, sizeof(pdraw));
    memcpy(pdraw, &pd, sizeof(pd));
    raw(&s, pdraw, sizeof(pdraw));
    cm_connect(&s, 2, 0, 1, 4);                              /* no port 2: no connection */
    cm_connect(&s, 1, 0, 1, 9);                              /* conn 9: deeper than 8 */
    cm_connect(&s, 1, 1, 1, 4);                              /* conn 10: accepted */
    fabrics_connect(&s, 10, 1, FCON_CNTLID | FCON_BAD_SUBSYS, 3);
    fabrics_connect(&s, 10, 1, FCON_CNTLID | FCON_SUB1, 3);
    fabrics_connect(&s, 10, 1, FCON_CNTLID | FCON_BAD_HOST, 3);
    settle(&s, 2, 11);   /* the host keeps at most 4 capsules outstanding here */
    fabrics_connect(&s, 10, 1, FCON_CNTLID | FCON_HOSTID, 3);
    fabrics_connect(&s, 10, 1, FCON_CNTLID | FCON_SHORT | FCON_KEYED, 3);
    fabrics_connect(&s, 10, 9, FCON_CNTLID, 3);
    settle(&s, 2, 11);
    fabrics_connect(&s, 10, 1, FCON_CNTLID, 0);
    fabrics_connect(&s, 10, 1, FCON_CNTLID, 4);
    fabrics_connect(&s, 10, 0, FCON_KEYED | FCON_KATO, 3);
    settle(&s, 2, 11);
    fabrics_connect(&s, 10, 0, 0, 3);
    settle(&s, 2, 11);
    rc |= write_seed(dir, "seed-cm-connect-private-data", &s);

    /* fabric faults (preset 3): RNR on the response SEND, the host region deregistered
     * under an RDMA READ, a device removed under a connection, a port down with IO
     * outstanding, a connect to a down port, then up and connected again */
    memset(&s, 0, sizeof(s));
    u8(&s, 3);
    cm_connect(&s, 1, 0, 2, 8);                              /* conn 2 on port 1 */
    fabrics_connect(&s, 2, 2, FCON_CNTLID, 7);
    settle(&s, 2, 3);
    submit(&s, IO, FK_READ, FL_KEYED, 80, 1, 0, 0, 1, 0, 0);   /* 4 KiB blocks here */
    op2(&s, FOP_RNR, IO, 1);
    settle(&s, 2, 3);
    submit(&s, 2, FK_WRITE, FL_KEYED, 81, 1, 0, 0, 1, 0, 0);
    op2(&s, FOP_DELIVER_H2T, 2, 0);
    op1(&s, FOP_POLL, 0);
    u8(&s, FOP_MR_CYCLE);
    op2(&s, FOP_DELIVER_T2H, 2, 0);
    op1(&s, FOP_POLL, 0);
    submit(&s, 2, FK_WRITE, FL_KEYED, 82, 1, 4, 0, 1, 0, 0);
    op2(&s, FOP_DELIVER_H2T, 2, 0);
    op1(&s, FOP_DEVICE_REMOVE, 1);
    submit(&s, ADMIN, FK_KEEP_ALIVE, FL_KEYED, 83, 0, 0, 0, 1, 0, 0);
    op1(&s, FOP_PORT_DOWN, 0);
    cm_connect(&s, 0, 0, 0, 4);                              /* conn 3: port down */
    op1(&s, FOP_PORT_UP, 0);
    cm_connect(&s, 0, 0, 0, 4);                              /* conn 4 */
    fabrics_connect(&s, 4, 0, 0, 3);
    settle(&s, 3, 5);
    rc |= write_seed(dir, "seed-fabric-faults", &s);

    if (argc == 3)
        rc |= regressions(argv[2]);
    return rc;
}
