/*
 * make_corpus.c — writes the seed corpus of the capsule fuzzer (impl/csrc/fuzz_capsule.c).
 *
 *   cc -std=c11 -Iimpl/csrc impl/fuzz/make_corpus.c -o make_corpus && ./make_corpus DIR
 *
 * Each seed is a short, meaningful program in the format of impl/csrc/fuzz_capsule.h: a
 * valid write, read-back, identify, connect, a raw struct nrt_capsule, faults mid-transfer.
 * Seeds are a starting point only: libFuzzer mutates them, so they need not stay exact
 * when the format grows.  Raw capsules are written with this compiler's struct layout,
 * which is the layout the fuzzer is built with (same header, same ABI).
 * impl/tools/fuzz.sh regenerates the committed copies in impl/fuzz/corpus/ with
 * --regen-corpus.
 */
#include "nrt.h"
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

/* Harness qpair table: 0 = admin, 1 = IO, then any FOP_QP_CREATE'd ones. */
enum { ADMIN = 0, IO = 1 };

static void submit(struct seed *s, unsigned qp, unsigned kind, unsigned layout, unsigned cid,
                   unsigned nsid, unsigned slba, unsigned nlb, unsigned ndesc, unsigned addr,
                   unsigned flags)
{
    u8(s, FOP_SUBMIT);
    u8(s, qp);
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
 * every wire, poll every group; then the host reaps qpairs 0..nqps-1. */
static void settle(struct seed *s, unsigned rounds, unsigned nqps)
{
    op1(s, FOP_STEP, rounds - 1);
    for (unsigned i = 0; i < 4; i++)
        op2(s, FOP_BDEV_COMPLETE, 255, 0);
    op1(s, FOP_STEP, rounds - 1);
    for (unsigned qp = 0; qp < nqps; qp++)
        op2(s, FOP_REAP, qp, 16);
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

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
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
    settle(&s, 4, 2);
    rc |= write_seed(dir, "seed-write-read-layouts", &s);

    /* admin commands: identify controller and namespace, properties, keep-alive, abort */
    memset(&s, 0, sizeof(s));
    u8(&s, 1);
    submit(&s, ADMIN, FK_IDENTIFY, FL_KEYED, 10, 1, 1, 0, 1, 0, 0);   /* CNS 1 */
    submit(&s, ADMIN, FK_IDENTIFY, FL_KEYED, 11, 1, 0, 0, 1, 4096, 0);   /* CNS 0 */
    submit(&s, ADMIN, FK_PROP_GET, FL_KEYED, 12, 0, 0x14, 0, 1, 0, 0);
    settle(&s, 3, 1);
    submit(&s, ADMIN, FK_PROP_SET, FL_KEYED, 13, 0, 0x14, 1, 1, 0, 0);
    submit(&s, ADMIN, FK_KEEP_ALIVE, FL_KEYED, 14, 0, 0, 0, 1, 0, 0);
    submit(&s, ADMIN, FK_ABORT, FL_KEYED, 15, 0, 1, 3, 1, 0, 0);
    settle(&s, 3, 2);
    op1(&s, FOP_TICK, 200);   /* keep-alive expiry on preset 1 */
    settle(&s, 2, 2);
    rc |= write_seed(dir, "seed-admin-identify-props", &s);

    /* a third qpair: connect it as IO queue 2 of the controller, then write on it */
    memset(&s, 0, sizeof(s));
    u8(&s, 0);
    u8(&s, FOP_QP_CREATE);
    u8(&s, 1);   /* port 1 */
    u8(&s, 0);   /* group 0 */
    u8(&s, 8);   /* depth */
    u8(&s, FOP_CONNECT);
    u8(&s, 2);   /* the new qpair */
    u8(&s, 2);   /* qid */
    u8(&s, FCON_CNTLID);
    u8(&s, 7);   /* sqsize */
    settle(&s, 2, 3);
    submit(&s, 2, FK_WRITE, FL_KEYED, 20, 1, 4, 3, 1, 1024, 0);
    settle(&s, 3, 3);
    op1(&s, FOP_PORT_DOWN, 1);
    settle(&s, 2, 3);
    rc |= write_seed(dir, "seed-connect-third-qpair", &s);

    /* a valid read as raw struct nrt_capsule bytes, plus an in-capsule write raw */
    memset(&s, 0, sizeof(s));
    u8(&s, 0);
    struct nrt_capsule c;
    memset(&c, 0, sizeof(c));
    c.opcode = NRT_OPC_READ;
    c.cid = 30;
    c.nsid = 1;
    c.slba = 2;
    c.nlb = 3;
    c.sgl = (struct nrt_sgl_desc){.addr = 512, .length = 4 * 512, .key = 4097,   /* first region */
                                  .type = NRT_SGL_TYPE_KEYED_DATA,
                                  .subtype = NRT_SGL_SUBTYPE_ADDRESS};
    u8(&s, FOP_SUBMIT_RAW);
    u8(&s, IO);
    u16(&s, 0);
    raw(&s, &c, sizeof(c));
    memset(&c, 0, sizeof(c));
    c.opcode = NRT_OPC_WRITE;
    c.cid = 31;
    c.nsid = 1;
    c.nlb = 0;
    c.sgl = (struct nrt_sgl_desc){.addr = 0, .length = 512, .type = NRT_SGL_TYPE_DATA_BLOCK,
                                  .subtype = NRT_SGL_SUBTYPE_OFFSET};
    u8(&s, FOP_SUBMIT_RAW);
    u8(&s, IO);
    u16(&s, 512);
    raw(&s, &c, sizeof(c));
    for (int i = 0; i < 512; i++)
        u8(&s, i * 7);
    settle(&s, 4, 2);
    rc |= write_seed(dir, "seed-raw-read-and-icd-write", &s);

    /* faults mid-transfer: post failures, a qpair error with READs split by read depth,
     * a block-device error, a host disconnect with IO queued; drain-then-destroy */
    memset(&s, 0, sizeof(s));
    u8(&s, 2);
    op2(&s, FOP_FAIL_POSTS, IO, 2);
    submit(&s, IO, FK_WRITE, FL_LIST, 40, 1, 0, 3, 2, 0, 0);
    submit(&s, IO, FK_WRITE, FL_KEYED, 41, 1, 4, 3, 1, 8192, 0);
    op2(&s, FOP_DELIVER_H2T, IO, 7);
    op1(&s, FOP_POLL, 2);
    op2(&s, FOP_DELIVER_T2H, IO, 0);
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

    /* malformed: too many descriptors, LBA out of range, unaligned length, bad SGL type,
     * bad key */
    memset(&s, 0, sizeof(s));
    u8(&s, 3);
    submit(&s, IO, FK_READ, FL_LIST, 61, 1, 0, 15, 16, 0, 0);
    submit(&s, IO, FK_READ, FL_KEYED, 62, 1, 64, 0, 1, 0, 0);
    submit(&s, IO, FK_WRITE, FL_KEYED, 63, 1, 0, 1, 3, 0, FSUB_RAW_LENGTH);
    submit(&s, IO, FK_WRITE, FL_KEYED, 64, 1, 0, 0, 1, 0, FSUB_MUTATE);
    u8(&s, FM_SGL_TYPE);
    u32(&s, 0x2);
    settle(&s, 4, 2);
    /* last: a bad key fails the RDMA READ, which puts the qpair in error */
    submit(&s, IO, FK_WRITE, FL_KEYED, 60, 1, 0, 0, 1, 0, FSUB_BAD_KEY);
    settle(&s, 4, 2);
    rc |= write_seed(dir, "seed-malformed", &s);

    /* the C workload driver and nrt_run micro-events */
    memset(&s, 0, sizeof(s));
    u8(&s, 1);
    u8(&s, FOP_WORKLOAD);
    u8(&s, IO);
    u8(&s, 1);    /* write */
    u8(&s, 1);    /* 2 descriptors */
    u8(&s, 8);    /* IOs */
    u8(&s, 3);    /* queue depth 4 */
    u8(&s, 0);    /* 1 block each */
    submit(&s, IO, FK_READ, FL_KEYED, 70, 1, 0, 0, 1, 0, 0);
    u8(&s, FOP_RUN);
    u8(&s, 5);
    u8(&s, NRT_EV_DELIVER_H2T);
    u8(&s, 1);
    u8(&s, NRT_EV_POLL);
    u8(&s, 0);
    u8(&s, NRT_EV_DELIVER_T2H);
    u8(&s, 1);
    u8(&s, NRT_EV_BDEV);
    u8(&s, 0);
    u8(&s, NRT_EV_TICK);
    u8(&s, 3);
    settle(&s, 3, 2);
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
    return rc;
}
