/*
 * ctrlr_test.c — cases for the controller emulation (impl/csrc/ctrlr.c).
 *
 *   ctrlr_test --list     names of every case, one a line
 *   ctrlr_test NAME       runs one case: exit 0 = pass, 1 = fail (the reason on stderr)
 *
 * Each case builds its own emulation: subsystem 0 (any host) with namespace 1 (512-byte
 * blocks) and namespace 2 (4096-byte blocks), subsystem 1 that only allows HOST_OK.
 */
#include "ctrlr.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBNQN0 "nqn.2024-01.io.example:sub0"
#define SUBNQN1 "nqn.2024-01.io.example:sub1"
#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"
#define HOST_OK "nqn.2014-08.org.nvmexpress:uuid:allowed"
#define NS1_BLOCKS 2048u
#define NS2_BLOCKS 64u
#define MAX_CTRLRS 3u
#define MAX_IOQ 4u
#define QDEPTH 32u
#define MAX_IO 65536u
#define ICD 8192u
#define MSDBD 8u

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);       \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)
#define CHECK_EQ(a, b)                                                                     \
    do {                                                                                   \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);     \
        if (a_ != b_) {                                                                    \
            fprintf(stderr, "%s:%d: %s = 0x%llx, expected %s = 0x%llx\n", __FILE__,        \
                    __LINE__, #a, a_, #b, b_);                                             \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)
/* status and DNR of a completed command */
#define CHECK_ST(cmd, st, d)                                                               \
    do {                                                                                   \
        struct nvmf_emu_cmd once_ = (cmd); /* evaluated once: it may run a command */      \
        CHECK_EQ(once_.status, (st));                                                      \
        CHECK_EQ(once_.dnr, (d));                                                          \
    } while (0)

/* ---- fixture ---------------------------------------------------------------------------- */

static struct nvmf_emu *E;
static int n_fatal;
static uint16_t fatal_ids[16];
static int n_done;
static struct nvmf_emu_cmd *done_cmds[64];

static void cb_io_complete(void *ctx, struct nvmf_emu_cmd *cmd)
{
    (void)ctx;
    if (n_done < 64)
        done_cmds[n_done] = cmd;
    n_done++;
}

static void cb_fatal(void *ctx, uint16_t cntlid)
{
    (void)ctx;
    if (n_fatal < 16)
        fatal_ids[n_fatal] = cntlid;
    n_fatal++;
}

static struct nvmf_emu *setup_kato(uint32_t default_kato)
{
    struct nvmf_emu_opts o;
    nvmf_emu_opts_default(&o);
    o.max_subsystems = 4;
    o.max_namespaces = 4;
    o.max_controllers = MAX_CTRLRS;
    o.max_io_queues = MAX_IOQ;
    o.max_queue_depth = QDEPTH;
    o.max_io_size = MAX_IO;
    o.in_capsule_data_size = ICD;
    o.max_sgl_descriptors = MSDBD;
    o.default_kato_ticks = default_kato;
    struct nvmf_emu_callbacks cb = {.io_complete = cb_io_complete, .ctrlr_fatal = cb_fatal};
    char err[256];
    E = nvmf_emu_create(&o, &cb, err, sizeof(err));
    if (!E) {
        fprintf(stderr, "create: %s\n", err);
        exit(2);
    }
    if (nvmf_emu_subsystem_add(E, SUBNQN0) != 0 || nvmf_emu_namespace_add(E, 0, 512, NS1_BLOCKS) != 1 ||
        nvmf_emu_namespace_add(E, 0, 4096, NS2_BLOCKS) != 2 || nvmf_emu_subsystem_add(E, SUBNQN1) != 1 ||
        nvmf_emu_namespace_add(E, 1, 512, 16) != 1 || nvmf_emu_subsystem_allow_host(E, 1, HOST_OK) != 0) {
        fprintf(stderr, "setup: %s\n", nvmf_emu_error(E));
        exit(2);
    }
    return E;
}

static struct nvmf_emu *setup(void) { return setup_kato(0); }

static void qp_init(struct nvmf_emu_qpair *qp)
{
    memset(qp, 0, sizeof(*qp));
    qp->max_depth = QDEPTH;
}

/* one command with a flat buffer, or split at the given points */
static struct nvmf_emu_cmd *mkcmd(struct nvmf_emu_cmd *cmd, struct nvmf_emu_qpair *qp,
                                  const struct nvme_sqe *sqe, struct iovec *iov, uint32_t iovcnt)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->sqe = sqe;
    cmd->qp = qp;
    cmd->iov = iov;
    cmd->iovcnt = iovcnt;
    for (uint32_t i = 0; i < iovcnt; i++)
        cmd->length += (uint32_t)iov[i].iov_len;
    return cmd;
}

static struct nvmf_emu_cmd run(struct nvmf_emu_qpair *qp, const struct nvme_sqe *sqe, void *buf,
                               uint32_t len)
{
    struct nvmf_emu_cmd cmd;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    mkcmd(&cmd, qp, sqe, &iov, buf ? 1 : 0);
    int rc = nvmf_emu_exec(E, &cmd);
    if (rc != NVMF_EMU_DONE) {
        fprintf(stderr, "run: unexpected async completion\n");
        exit(2);
    }
    cmd.iov = NULL;
    return cmd;
}

struct host {
    uint8_t hostid[16];
    char hostnqn[256];
};

static struct host host_default(void)
{
    struct host h;
    memset(&h, 0, sizeof(h));
    for (int i = 0; i < 16; i++)
        h.hostid[i] = (uint8_t)(0xA0 + i);
    snprintf(h.hostnqn, sizeof(h.hostnqn), "%s", HOSTNQN);
    return h;
}

struct connect_args {
    uint16_t recfmt, qid, sqsize;
    uint32_t kato;
    uint16_t cntlid;
    const char *subnqn;
    struct host host;
    uint32_t datalen;
};

static struct connect_args cargs(uint16_t qid, uint16_t cntlid)
{
    struct connect_args a = {.recfmt = 0, .qid = qid, .sqsize = QDEPTH - 1, .kato = 0,
                             .cntlid = cntlid, .subnqn = SUBNQN0, .host = host_default(),
                             .datalen = 1024};
    return a;
}

static struct nvmf_emu_cmd connect_with(struct nvmf_emu_qpair *qp, const struct connect_args *a)
{
    struct nvmf_connect_sqe sqe;
    static uint8_t buf[2048];
    struct nvmf_connect_data *d = (struct nvmf_connect_data *)buf;
    memset(&sqe, 0, sizeof(sqe));
    memset(buf, 0, sizeof(buf));
    sqe.opc = 0x7F;
    sqe.fuse_psdt = 0x40;
    sqe.fctype = 0x01;
    sqe.recfmt = a->recfmt;
    sqe.qid = a->qid;
    sqe.sqsize = a->sqsize;
    sqe.kato = a->kato;
    memcpy(d->hostid, a->host.hostid, 16);
    d->cntlid = a->cntlid;
    snprintf(d->subnqn, sizeof(d->subnqn), "%s", a->subnqn);
    memcpy(d->hostnqn, a->host.hostnqn, sizeof(d->hostnqn));
    return run(qp, (struct nvme_sqe *)&sqe, buf, a->datalen);
}

static struct nvmf_emu_cmd connect_admin(struct nvmf_emu_qpair *qp, uint32_t kato)
{
    struct connect_args a = cargs(0, 0xFFFF);
    a.kato = kato;
    return connect_with(qp, &a);
}

static struct nvmf_emu_cmd connect_io(struct nvmf_emu_qpair *qp, uint16_t qid, uint16_t cntlid)
{
    struct connect_args a = cargs(qid, cntlid);
    return connect_with(qp, &a);
}

static struct nvmf_emu_cmd prop_get(struct nvmf_emu_qpair *qp, uint32_t ofst, uint8_t size8)
{
    struct nvmf_property_sqe sqe;
    memset(&sqe, 0, sizeof(sqe));
    sqe.opc = 0x7F;
    sqe.fctype = 0x04;
    sqe.attrib = size8;
    sqe.ofst = ofst;
    return run(qp, (struct nvme_sqe *)&sqe, NULL, 0);
}

static struct nvmf_emu_cmd prop_set(struct nvmf_emu_qpair *qp, uint32_t ofst, uint8_t size8,
                                    uint64_t value)
{
    struct nvmf_property_sqe sqe;
    memset(&sqe, 0, sizeof(sqe));
    sqe.opc = 0x7F;
    sqe.fctype = 0x00;
    sqe.attrib = size8;
    sqe.ofst = ofst;
    sqe.value = value;
    return run(qp, (struct nvme_sqe *)&sqe, NULL, 0);
}

#define CC_ENABLE (1u | 6u << 16 | 4u << 20)

static struct nvmf_emu_cmd enable(struct nvmf_emu_qpair *qp)
{
    return prop_set(qp, 0x14, 0, CC_ENABLE);
}

static struct nvmf_emu_cmd admin(struct nvmf_emu_qpair *qp, uint8_t opc, uint32_t nsid,
                                 uint32_t cdw10, uint32_t cdw11, void *buf, uint32_t len)
{
    struct nvme_sqe sqe;
    memset(&sqe, 0, sizeof(sqe));
    sqe.opc = opc;
    sqe.fuse_psdt = 0x40;
    sqe.nsid = nsid;
    sqe.cdw10 = cdw10;
    sqe.cdw11 = cdw11;
    return run(qp, &sqe, buf, len);
}

static void rw_sqe(struct nvme_sqe *sqe, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb0)
{
    memset(sqe, 0, sizeof(*sqe));
    sqe->opc = opc;
    sqe->fuse_psdt = 0x40;
    sqe->nsid = nsid;
    sqe->cdw10 = (uint32_t)slba;
    sqe->cdw11 = (uint32_t)(slba >> 32);
    sqe->cdw12 = nlb0;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p + 4) << 32 | le32(p); }

/* An admin queue (connected, enabled) and one I/O queue on it. */
struct assoc {
    struct nvmf_emu_qpair aq, ioq;
    uint16_t cntlid;
};

static int make_assoc(struct assoc *a, uint32_t kato)
{
    qp_init(&a->aq);
    qp_init(&a->ioq);
    struct nvmf_emu_cmd c = connect_admin(&a->aq, kato);
    CHECK_ST(c, 0, 0);
    a->cntlid = (uint16_t)c.cdw0;
    c = enable(&a->aq);
    CHECK_ST(c, 0, 0);
    c = connect_io(&a->ioq, 1, a->cntlid);
    CHECK_ST(c, 0, 0);
    return 0;
}

/* ---- Connect ------------------------------------------------------------------------------ */

static int t_admin_connect_dynamic(void)
{
    setup();
    struct nvmf_emu_qpair q1, q2;
    qp_init(&q1);
    qp_init(&q2);
    struct nvmf_emu_cmd c = connect_admin(&q1, 0);
    CHECK_ST(c, 0, 0);
    CHECK_EQ(c.cdw0 & 0xFFFF, 1);
    CHECK(q1.connected);
    CHECK_EQ(q1.qid, 0);
    CHECK_EQ(q1.cntlid, 1);
    CHECK_EQ(q1.sqsize, QDEPTH - 1);
    c = connect_admin(&q2, 0);
    CHECK_ST(c, 0, 0);
    CHECK_EQ(c.cdw0, 2);
    CHECK_EQ(q2.cntlid, 2);
    return 0;
}

static int t_io_connect_by_cntlid(void)
{
    setup();
    struct nvmf_emu_qpair aq, aq2, io1, io2;
    qp_init(&aq);
    qp_init(&aq2);
    qp_init(&io1);
    qp_init(&io2);
    CHECK_ST(connect_admin(&aq, 0), 0, 0);
    CHECK_ST(connect_admin(&aq2, 0), 0, 0);
    CHECK_ST(enable(&aq2), 0, 0);
    struct nvmf_emu_cmd c = connect_io(&io1, 1, aq2.cntlid);
    CHECK_ST(c, 0, 0);
    CHECK_EQ(c.cdw0, aq2.cntlid);
    CHECK(io1.connected);
    CHECK_EQ(io1.qid, 1);
    CHECK_EQ(io1.cntlid, aq2.cntlid);
    c = connect_io(&io2, MAX_IOQ, aq2.cntlid);   /* never set: max_io_queues granted */
    CHECK_ST(c, 0, 0);
    return 0;
}

static int t_connect_recfmt(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    struct connect_args a = cargs(0, 0xFFFF);
    a.recfmt = 1;
    struct nvmf_emu_cmd c = connect_with(&q, &a);
    CHECK_ST(c, 0x180, 1);
    CHECK(!q.connected);
    return 0;
}

static int t_connect_sqsize_zero(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    struct connect_args a = cargs(0, 0xFFFF);
    a.sqsize = 0;
    struct nvmf_emu_cmd c = connect_with(&q, &a);
    CHECK_ST(c, 0x182, 1);
    CHECK_EQ(c.cdw0, 44);                    /* IATTR 0 (SQE), IPO = SQSIZE at byte 44 */
    return 0;
}

static int t_connect_sqsize_too_big(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    struct connect_args a = cargs(0, 0xFFFF);
    a.sqsize = QDEPTH;                       /* QDEPTH + 1 entries > CAP.MQES + 1 */
    struct nvmf_emu_cmd c = connect_with(&q, &a);
    CHECK_ST(c, 0x182, 1);
    CHECK_EQ(c.cdw0, 44);
    q.max_depth = 8;                         /* the transport negotiated fewer */
    a.sqsize = 8;
    c = connect_with(&q, &a);
    CHECK_ST(c, 0x182, 1);
    CHECK_EQ(c.cdw0, 44);
    a.sqsize = 7;
    c = connect_with(&q, &a);
    CHECK_ST(c, 0, 0);
    return 0;
}

static int t_connect_short_data(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    struct connect_args a = cargs(0, 0xFFFF);
    a.datalen = 1023;
    struct nvmf_emu_cmd c = connect_with(&q, &a);
    CHECK_ST(c, 0x00F, 1);
    a.datalen = 2048;                        /* longer is accepted */
    c = connect_with(&q, &a);
    CHECK_ST(c, 0, 0);
    return 0;
}

static int t_connect_unknown_subnqn(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    struct connect_args a = cargs(0, 0xFFFF);
    a.subnqn = "nqn.2024-01.io.example:nope";
    struct nvmf_emu_cmd c = connect_with(&q, &a);
    CHECK_ST(c, 0x182, 1);
    CHECK_EQ(c.cdw0, 1u << 16 | 256);        /* IATTR 1 (data), IPO = SUBNQN */
    return 0;
}

static int t_connect_hostnqn_unterminated(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    struct connect_args a = cargs(0, 0xFFFF);
    memset(a.host.hostnqn, 'x', sizeof(a.host.hostnqn));
    struct nvmf_emu_cmd c = connect_with(&q, &a);
    CHECK_ST(c, 0x182, 1);
    CHECK_EQ(c.cdw0, 1u << 16 | 512);
    return 0;
}

static int t_connect_admin_cntlid_not_dynamic(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    struct connect_args a = cargs(0, 1);
    struct nvmf_emu_cmd c = connect_with(&q, &a);
    CHECK_ST(c, 0x182, 1);
    CHECK_EQ(c.cdw0, 1u << 16 | 16);         /* IPO = CNTLID in the data */
    return 0;
}

static int t_connect_invalid_host(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    struct connect_args a = cargs(0, 0xFFFF);
    a.subnqn = SUBNQN1;
    struct nvmf_emu_cmd c = connect_with(&q, &a);
    CHECK_ST(c, 0x184, 1);
    CHECK_EQ(c.cdw0, 1u << 16 | 512);        /* IPO = HOSTNQN */
    snprintf(a.host.hostnqn, sizeof(a.host.hostnqn), "%s", HOST_OK);
    c = connect_with(&q, &a);
    CHECK_ST(c, 0, 0);
    return 0;
}

static int t_connect_io_unknown_cntlid(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    struct nvmf_emu_qpair q;
    qp_init(&q);
    struct nvmf_emu_cmd c = connect_io(&q, 2, (uint16_t)(s.cntlid + 1));
    CHECK_ST(c, 0x182, 1);
    CHECK_EQ(c.cdw0, 1u << 16 | 16);
    c = connect_io(&q, 2, 0xFFFF);
    CHECK_ST(c, 0x182, 1);
    CHECK_EQ(c.cdw0, 1u << 16 | 16);
    /* the right CNTLID in another subsystem */
    struct connect_args a = cargs(2, s.cntlid);
    a.subnqn = SUBNQN1;
    snprintf(a.host.hostnqn, sizeof(a.host.hostnqn), "%s", HOST_OK);
    c = connect_with(&q, &a);
    CHECK_ST(c, 0x182, 1);
    CHECK_EQ(c.cdw0, 1u << 16 | 16);
    return 0;
}

static int t_connect_io_host_mismatch(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    struct nvmf_emu_qpair q;
    qp_init(&q);
    struct connect_args a = cargs(2, s.cntlid);
    snprintf(a.host.hostnqn, sizeof(a.host.hostnqn), "%s", "nqn.2014-08.org.nvmexpress:other");
    struct nvmf_emu_cmd c = connect_with(&q, &a);
    CHECK_ST(c, 0x182, 1);
    CHECK_EQ(c.cdw0, 1u << 16 | 512);        /* HOSTNQN */
    a = cargs(2, s.cntlid);
    a.host.hostid[3] ^= 1;
    c = connect_with(&q, &a);
    CHECK_ST(c, 0x182, 1);
    CHECK_EQ(c.cdw0, 1u << 16 | 0);          /* HOSTID at byte 0 of the data */
    CHECK(!q.connected);
    return 0;
}

static int t_connect_io_before_enable(void)
{
    setup();
    struct nvmf_emu_qpair aq, q;
    qp_init(&aq);
    qp_init(&q);
    CHECK_ST(connect_admin(&aq, 0), 0, 0);
    struct nvmf_emu_cmd c = connect_io(&q, 1, aq.cntlid);
    CHECK_ST(c, 0x00C, 1);
    CHECK(!q.connected);
    CHECK_ST(enable(&aq), 0, 0);
    CHECK_ST(connect_io(&q, 1, aq.cntlid), 0, 0);
    return 0;
}

static int t_connect_io_qid_beyond_granted(void)
{
    setup();
    struct nvmf_emu_qpair aq, q;
    qp_init(&aq);
    qp_init(&q);
    CHECK_ST(connect_admin(&aq, 0), 0, 0);
    CHECK_ST(enable(&aq), 0, 0);
    struct nvmf_emu_cmd c = connect_io(&q, MAX_IOQ + 1, aq.cntlid);
    CHECK_ST(c, 0x182, 1);
    CHECK_EQ(c.cdw0, 42);                    /* IATTR 0, IPO = QID at byte 42 */
    /* grant 2 I/O queues: NSQR = NCQR = 1 (0's based) */
    c = admin(&aq, 0x09, 0, 0x07, 1u << 16 | 1u, NULL, 0);
    CHECK_ST(c, 0, 0);
    CHECK_EQ(c.cdw0, 1u << 16 | 1u);
    c = connect_io(&q, 3, aq.cntlid);
    CHECK_ST(c, 0x182, 1);
    CHECK_EQ(c.cdw0, 42);
    CHECK_ST(connect_io(&q, 2, aq.cntlid), 0, 0);
    return 0;
}

static int t_connect_io_duplicate_qid(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    struct nvmf_emu_qpair q;
    qp_init(&q);
    struct nvmf_emu_cmd c = connect_io(&q, 1, s.cntlid);
    CHECK_ST(c, 0x00C, 1);
    CHECK(!q.connected);
    return 0;
}

static int t_connect_twice(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    CHECK_ST(connect_admin(&s.aq, 0), 0x00C, 1);
    CHECK_ST(connect_io(&s.ioq, 2, s.cntlid), 0x00C, 1);
    CHECK_EQ(s.ioq.qid, 1);
    return 0;
}

static int t_connect_controller_busy(void)
{
    setup();
    struct nvmf_emu_qpair q[MAX_CTRLRS + 1];
    for (uint32_t i = 0; i < MAX_CTRLRS; i++) {
        qp_init(&q[i]);
        CHECK_ST(connect_admin(&q[i], 0), 0, 0);
    }
    qp_init(&q[MAX_CTRLRS]);
    struct nvmf_emu_cmd c = connect_admin(&q[MAX_CTRLRS], 0);
    CHECK_ST(c, 0x181, 0);                   /* transient: no DNR */
    CHECK(!q[MAX_CTRLRS].connected);
    return 0;
}

static int t_commands_before_connect(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    static uint8_t buf[4096];
    CHECK_ST(admin(&q, 0x06, 0, 1, 0, buf, 4096), 0x00C, 1);
    CHECK_ST(admin(&q, 0x18, 0, 0, 0, NULL, 0), 0x00C, 1);
    CHECK_ST(prop_get(&q, 0, 1), 0x00C, 1);
    CHECK_ST(prop_set(&q, 0x14, 0, CC_ENABLE), 0x00C, 1);
    struct nvme_sqe sqe;
    rw_sqe(&sqe, 0x02, 1, 0, 0);
    CHECK_ST(run(&q, &sqe, buf, 512), 0x00C, 1);
    CHECK_EQ(nvmf_emu_bdev_pending(E), 0);
    return 0;
}

/* ---- properties ----------------------------------------------------------------------------- */

static int t_property_cap(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    CHECK_ST(connect_admin(&q, 0), 0, 0);
    struct nvmf_emu_cmd c = prop_get(&q, 0x00, 1);
    CHECK_ST(c, 0, 0);
    uint64_t cap = (uint64_t)c.cdw1 << 32 | c.cdw0;
    CHECK_EQ(cap & 0xFFFF, QDEPTH - 1);      /* MQES */
    CHECK_EQ((cap >> 16) & 1, 1);            /* CQR */
    CHECK((cap >> 24 & 0xFF) != 0);          /* TO */
    CHECK_EQ((cap >> 37) & 0xFF, 1);         /* CSS: NVM only */
    CHECK_EQ((cap >> 48) & 0xF, 0);          /* MPSMIN: 4 KiB */
    CHECK_EQ((cap >> 36) & 1, 0);            /* NSSRS */
    return 0;
}

static int t_property_vs(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    CHECK_ST(connect_admin(&q, 0), 0, 0);
    struct nvmf_emu_cmd c = prop_get(&q, 0x08, 0);
    CHECK_ST(c, 0, 0);
    CHECK_EQ(c.cdw0, 0x00010400);
    return 0;
}

static int t_property_cc_csts(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    CHECK_ST(connect_admin(&q, 0), 0, 0);
    struct nvmf_emu_cmd c = prop_get(&q, 0x14, 0);
    CHECK_ST(c, 0, 0);
    CHECK_EQ(c.cdw0, 0);
    c = prop_get(&q, 0x1C, 0);
    CHECK_ST(c, 0, 0);
    CHECK_EQ(c.cdw0 & 1, 0);                 /* not ready */
    CHECK_ST(enable(&q), 0, 0);
    c = prop_get(&q, 0x14, 0);
    CHECK_EQ(c.cdw0, CC_ENABLE);
    c = prop_get(&q, 0x1C, 0);
    CHECK_EQ(c.cdw0 & 1, 1);                 /* RDY follows EN */
    CHECK_EQ((c.cdw0 >> 2) & 3, 0);
    /* normal shutdown notification: SHST complete */
    CHECK_ST(prop_set(&q, 0x14, 0, CC_ENABLE | 1u << 14), 0, 0);
    c = prop_get(&q, 0x1C, 0);
    CHECK_EQ((c.cdw0 >> 2) & 3, 2);
    /* reset: EN 0 clears RDY */
    CHECK_ST(prop_set(&q, 0x14, 0, 6u << 16 | 4u << 20), 0, 0);
    c = prop_get(&q, 0x1C, 0);
    CHECK_EQ(c.cdw0 & 1, 0);
    CHECK_EQ((c.cdw0 >> 2) & 3, 0);
    return 0;
}

static int t_property_cc_bad_enable(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    CHECK_ST(connect_admin(&q, 0), 0, 0);
    CHECK_ST(prop_set(&q, 0x14, 0, 1u), 0x002, 1);                     /* IOSQES 0 */
    CHECK_ST(prop_set(&q, 0x14, 0, CC_ENABLE | 1u << 7), 0x002, 1);    /* MPS 8 KiB */
    CHECK_ST(prop_set(&q, 0x14, 0, CC_ENABLE | 1u << 4), 0x002, 1);    /* CSS 001b */
    struct nvmf_emu_cmd c = prop_get(&q, 0x1C, 0);
    CHECK_EQ(c.cdw0 & 1, 0);
    return 0;
}

static int t_property_size_mismatch(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    CHECK_ST(connect_admin(&q, 0), 0, 0);
    CHECK_ST(prop_get(&q, 0x00, 0), 0x002, 1);   /* CAP is 8 bytes */
    CHECK_ST(prop_get(&q, 0x08, 1), 0x002, 1);   /* VS is 4 */
    CHECK_ST(prop_get(&q, 0x14, 1), 0x002, 1);
    CHECK_ST(prop_get(&q, 0x1C, 1), 0x002, 1);
    CHECK_ST(prop_get(&q, 0x14, 2), 0x002, 1);   /* reserved size */
    CHECK_ST(prop_set(&q, 0x14, 1, CC_ENABLE), 0x002, 1);
    struct nvmf_emu_cmd c = prop_get(&q, 0x1C, 0);
    CHECK_EQ(c.cdw0 & 1, 0);
    return 0;
}

static int t_property_readonly_and_unknown(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    CHECK_ST(connect_admin(&q, 0), 0, 0);
    CHECK_ST(prop_set(&q, 0x00, 1, 0), 0x002, 1);    /* CAP */
    CHECK_ST(prop_set(&q, 0x08, 0, 0), 0x002, 1);    /* VS */
    CHECK_ST(prop_set(&q, 0x1C, 0, 0), 0x002, 1);    /* CSTS */
    CHECK_ST(prop_set(&q, 0x20, 0, 0x4E564D65), 0x002, 1);   /* NSSR */
    CHECK_ST(prop_get(&q, 0x20, 0), 0x002, 1);
    CHECK_ST(prop_get(&q, 0x24, 0), 0x002, 1);       /* AQA: reserved on fabrics */
    CHECK_ST(prop_get(&q, 0x18, 0), 0x002, 1);
    return 0;
}

static int t_property_on_io_queue(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    CHECK_ST(prop_get(&s.ioq, 0x00, 1), 0x001, 1);
    CHECK_ST(prop_set(&s.ioq, 0x14, 0, 0), 0x001, 1);
    struct nvmf_emu_cmd c = prop_get(&s.aq, 0x1C, 0);
    CHECK_EQ(c.cdw0 & 1, 1);
    return 0;
}

/* ---- Identify ---------------------------------------------------------------------------------- */

static int t_identify_controller(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    CHECK_ST(connect_admin(&q, 0), 0, 0);
    CHECK_ST(connect_admin(&q, 0), 0x00C, 1);
    static uint8_t id[4096];
    memset(id, 0xEE, sizeof(id));
    struct nvmf_emu_cmd c = admin(&q, 0x06, 0, 0x01, 0, id, sizeof(id));
    CHECK_ST(c, 0, 0);
    for (int i = 4; i < 24; i++)             /* SN: printable ASCII */
        CHECK(id[i] >= 0x20 && id[i] < 0x7F);
    CHECK(id[24] != ' ' && id[63] == ' ');   /* MN padded with spaces */
    CHECK(id[64] != ' ' && id[71] == ' ');   /* FR */
    CHECK_EQ(id[77], 4);                     /* MDTS: 64 KiB = 2^4 * 4 KiB */
    CHECK_EQ(le16(id + 78), q.cntlid);
    CHECK_EQ(le32(id + 80), 0x00010400);     /* VER = VS */
    CHECK_EQ(id[111], 1);                    /* CNTRLTYPE */
    CHECK_EQ(le16(id + 320), 1);             /* KAS */
    CHECK_EQ(id[512], 0x66);
    CHECK_EQ(id[513], 0x44);
    CHECK_EQ(le16(id + 514), QDEPTH);        /* MAXCMD */
    CHECK_EQ(le32(id + 516), 4);             /* NN = max_namespaces */
    uint32_t sgls = le32(id + 536);
    CHECK_EQ(sgls & 3, 1);                   /* SGLs supported */
    CHECK_EQ((sgls >> 2) & 1, 1);            /* keyed SGL data block */
    CHECK_EQ((sgls >> 20) & 1, 1);           /* offset addressing (in-capsule data) */
    CHECK_EQ((sgls >> 17) & 1, 0);           /* longer SGLs than data: no */
    CHECK(!memcmp(id + 768, SUBNQN0, strlen(SUBNQN0)));
    CHECK_EQ(id[768 + strlen(SUBNQN0)], 0);
    CHECK_EQ(le32(id + 1792), (64 + ICD) / 16);   /* IOCCSZ */
    CHECK_EQ(le32(id + 1796), 1);            /* IORCSZ */
    CHECK_EQ(le16(id + 1800), 0);            /* ICDOFF */
    CHECK_EQ(id[1802], 0);                   /* FCATT: dynamic */
    CHECK_EQ(id[1803], MSDBD);               /* MSDBD */
    CHECK_EQ(id[4095], 0);                   /* whole structure written */
    return 0;
}

static int t_identify_namespace(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    CHECK_ST(connect_admin(&q, 0), 0, 0);
    static uint8_t id[4096];
    struct nvmf_emu_cmd c = admin(&q, 0x06, 1, 0x00, 0, id, sizeof(id));
    CHECK_ST(c, 0, 0);
    CHECK_EQ(le64(id + 0), NS1_BLOCKS);      /* NSZE */
    CHECK_EQ(le64(id + 8), NS1_BLOCKS);      /* NCAP */
    CHECK_EQ(le64(id + 16), NS1_BLOCKS);     /* NUSE */
    CHECK_EQ(id[25], 0);                     /* NLBAF */
    CHECK_EQ(id[26], 0);                     /* FLBAS */
    CHECK_EQ((le32(id + 128) >> 16) & 0xFF, 9);   /* LBAF0.LBADS: 512 */
    CHECK_EQ(le32(id + 128) & 0xFFFF, 0);    /* no metadata */
    c = admin(&q, 0x06, 2, 0x00, 0, id, sizeof(id));
    CHECK_ST(c, 0, 0);
    CHECK_EQ(le64(id + 0), NS2_BLOCKS);
    CHECK_EQ((le32(id + 128) >> 16) & 0xFF, 12);  /* 4096 */
    /* inactive NSID (valid range, no namespace): zero filled */
    memset(id, 0xEE, sizeof(id));
    c = admin(&q, 0x06, 3, 0x00, 0, id, sizeof(id));
    CHECK_ST(c, 0, 0);
    CHECK_EQ(le64(id + 0), 0);
    CHECK_EQ(id[128], 0);
    return 0;
}

static int t_identify_invalid(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    CHECK_ST(connect_admin(&q, 0), 0, 0);
    static uint8_t id[8192];
    CHECK_ST(admin(&q, 0x06, 0, 0x00, 0, id, 4096), 0x00B, 1);        /* NSID 0 */
    CHECK_ST(admin(&q, 0x06, 5, 0x00, 0, id, 4096), 0x00B, 1);        /* > NN */
    CHECK_ST(admin(&q, 0x06, 0xFFFFFFFF, 0x00, 0, id, 4096), 0x00B, 1);
    CHECK_ST(admin(&q, 0x06, 0, 0x10, 0, id, 4096), 0x002, 1);        /* CNS 10h */
    CHECK_ST(admin(&q, 0x06, 0, 0x01, 0, id, 4095), 0x00F, 1);        /* short */
    CHECK_ST(admin(&q, 0x06, 0, 0x01, 0, id, 8192), 0, 0);            /* longer: fine */
    return 0;
}

static int t_identify_active_ns_list(void)
{
    setup();
    struct nvmf_emu_qpair q;
    qp_init(&q);
    CHECK_ST(connect_admin(&q, 0), 0, 0);
    static uint8_t id[4096];
    CHECK_ST(admin(&q, 0x06, 0, 0x02, 0, id, 4096), 0, 0);
    CHECK_EQ(le32(id + 0), 1);
    CHECK_EQ(le32(id + 4), 2);
    CHECK_EQ(le32(id + 8), 0);
    CHECK_ST(admin(&q, 0x06, 1, 0x02, 0, id, 4096), 0, 0);
    CHECK_EQ(le32(id + 0), 2);
    CHECK_EQ(le32(id + 4), 0);
    CHECK_ST(admin(&q, 0x06, 0xFFFFFFFE, 0x02, 0, id, 4096), 0x00B, 1);
    return 0;
}

/* ---- Features ------------------------------------------------------------------------------------ */

static int t_features_number_of_queues(void)
{
    setup();
    struct nvmf_emu_qpair aq, q;
    qp_init(&aq);
    qp_init(&q);
    CHECK_ST(connect_admin(&aq, 0), 0, 0);
    struct nvmf_emu_cmd c = admin(&aq, 0x0A, 0, 0x07, 0, NULL, 0);     /* get, current */
    CHECK_ST(c, 0, 0);
    CHECK_EQ(c.cdw0, (MAX_IOQ - 1) << 16 | (MAX_IOQ - 1));
    c = admin(&aq, 0x09, 0, 0x07, 2u << 16 | 1u, NULL, 0);             /* 2 SQs, 3 CQs */
    CHECK_ST(c, 0, 0);
    CHECK_EQ(c.cdw0, 2u << 16 | 1u);
    c = admin(&aq, 0x0A, 0, 0x07, 0, NULL, 0);
    CHECK_EQ(c.cdw0, 2u << 16 | 1u);
    c = admin(&aq, 0x09, 0, 0x07, 99u << 16 | 99u, NULL, 0);           /* capped */
    CHECK_ST(c, 0, 0);
    CHECK_EQ(c.cdw0, (MAX_IOQ - 1) << 16 | (MAX_IOQ - 1));
    CHECK_ST(admin(&aq, 0x09, 0, 0x07, 0xFFFFu, NULL, 0), 0x002, 1);   /* NSQR 65535 */
    CHECK_ST(admin(&aq, 0x09, 0, 0x07 | 1u << 31, 0, NULL, 0), 0x10D, 1);  /* SV */
    CHECK_ST(enable(&aq), 0, 0);
    CHECK_ST(connect_io(&q, 1, aq.cntlid), 0, 0);
    /* after an I/O queue exists: Command Sequence Error */
    CHECK_ST(admin(&aq, 0x09, 0, 0x07, 0, NULL, 0), 0x00C, 1);
    CHECK_ST(admin(&aq, 0x0A, 0, 0x07, 0, NULL, 0), 0, 0);
    return 0;
}

static int t_features_keep_alive_and_unknown(void)
{
    setup();
    struct nvmf_emu_qpair aq;
    qp_init(&aq);
    CHECK_ST(connect_admin(&aq, 12345), 0, 0);
    struct nvmf_emu_cmd c = admin(&aq, 0x0A, 0, 0x0F, 0, NULL, 0);
    CHECK_ST(c, 0, 0);
    CHECK_EQ(c.cdw0, 12345);
    CHECK_ST(admin(&aq, 0x0A, 0, 0x01, 0, NULL, 0), 0x002, 1);   /* arbitration: unsupported */
    CHECK_ST(admin(&aq, 0x09, 0, 0x06, 0, NULL, 0), 0x002, 1);
    CHECK_ST(admin(&aq, 0x0A, 0, 0x07 | 4u << 8, 0, NULL, 0), 0x002, 1);   /* SEL 100b */
    return 0;
}

/* ---- keep alive ------------------------------------------------------------------------------------ */

static int t_keep_alive_expiry(void)
{
    setup();
    struct nvmf_emu_qpair aq, other;
    qp_init(&aq);
    qp_init(&other);
    CHECK_ST(connect_admin(&aq, 100), 0, 0);
    CHECK_ST(connect_admin(&other, 0), 0, 0);   /* no keep alive: never expires */
    CHECK_EQ(nvmf_emu_advance_time(E, 100), 0);
    CHECK_EQ(n_fatal, 0);
    CHECK_EQ(nvmf_emu_advance_time(E, 1), 1);
    CHECK_EQ(n_fatal, 1);
    CHECK_EQ(fatal_ids[0], aq.cntlid);
    CHECK_EQ(nvmf_emu_now(E), 101);
    CHECK_EQ(nvmf_emu_advance_time(E, 100000), 0);   /* once */
    CHECK_EQ(n_fatal, 1);
    CHECK_ST(admin(&aq, 0x18, 0, 0, 0, NULL, 0), 0x019, 0);
    CHECK_ST(admin(&other, 0x18, 0, 0, 0, NULL, 0), 0, 0);
    return 0;
}

static int t_keep_alive_reset(void)
{
    setup();
    struct nvmf_emu_qpair aq;
    qp_init(&aq);
    static uint8_t id[4096];
    CHECK_ST(connect_admin(&aq, 100), 0, 0);
    CHECK_EQ(nvmf_emu_advance_time(E, 90), 0);
    CHECK_ST(admin(&aq, 0x18, 0, 0, 0, NULL, 0), 0, 0);    /* Keep Alive */
    CHECK_EQ(nvmf_emu_advance_time(E, 90), 0);
    CHECK_ST(admin(&aq, 0x06, 0, 1, 0, id, 4096), 0, 0);   /* any admin command */
    CHECK_EQ(nvmf_emu_advance_time(E, 100), 0);
    CHECK_EQ(nvmf_emu_advance_time(E, 1), 1);
    CHECK_EQ(n_fatal, 1);
    return 0;
}

static int t_keep_alive_default_kato(void)
{
    setup_kato(50);
    struct nvmf_emu_qpair aq;
    qp_init(&aq);
    CHECK_ST(connect_admin(&aq, 0), 0, 0);
    struct nvmf_emu_cmd c = admin(&aq, 0x0A, 0, 0x0F, 0, NULL, 0);
    CHECK_EQ(c.cdw0, 50);
    CHECK_EQ(nvmf_emu_advance_time(E, 51), 1);
    CHECK_EQ(fatal_ids[0], aq.cntlid);
    return 0;
}

static int t_keep_alive_io_queue_after_expiry(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 10))
        return 1;
    CHECK_EQ(nvmf_emu_advance_time(E, 11), 1);
    struct nvme_sqe sqe;
    static uint8_t buf[512];
    rw_sqe(&sqe, 0x02, 1, 0, 0);
    CHECK_ST(run(&s.ioq, &sqe, buf, 512), 0x019, 0);
    CHECK_EQ(nvmf_emu_bdev_pending(E), 0);
    return 0;
}

/* ---- Abort, opcodes, FUSE ---------------------------------------------------------------------- */

static int t_abort(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    struct nvmf_emu_cmd c = admin(&s.aq, 0x08, 0, 5u << 16 | 1u, 0, NULL, 0);
    CHECK_ST(c, 0, 0);
    CHECK_EQ(c.cdw0 & 1, 1);                 /* not aborted */
    CHECK_ST(admin(&s.ioq, 0x08, 0, 5u << 16 | 1u, 0, NULL, 0), 0x001, 1);
    return 0;
}

static int t_opcode_checks(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    static uint8_t buf[4096];
    CHECK_ST(admin(&s.ioq, 0x06, 0, 1, 0, buf, 4096), 0x001, 1);   /* Identify on IO */
    CHECK_ST(admin(&s.ioq, 0x18, 0, 0, 0, NULL, 0), 0x001, 1);     /* Keep Alive on IO */
    CHECK_ST(admin(&s.ioq, 0x7E, 1, 0, 0, NULL, 0), 0x001, 1);     /* unknown */
    CHECK_ST(admin(&s.aq, 0x7E, 0, 0, 0, NULL, 0), 0x001, 1);
    CHECK_ST(admin(&s.aq, 0x01, 0, 0, 0, NULL, 0), 0x001, 1);      /* Create I/O SQ */
    struct nvme_sqe sqe;
    rw_sqe(&sqe, 0x02, 1, 0, 0);
    CHECK_ST(run(&s.aq, &sqe, buf, 512), 0x001, 1);                /* 02h: no Get Log Page */
    rw_sqe(&sqe, 0x01, 1, 0, 0);
    CHECK_ST(run(&s.aq, &sqe, buf, 512), 0x001, 1);
    struct nvmf_fabric_sqe f;
    memset(&f, 0, sizeof(f));
    f.opc = 0x7F;
    f.fctype = 0x7E;
    CHECK_ST(run(&s.aq, (struct nvme_sqe *)&f, NULL, 0), 0x001, 1);
    CHECK_EQ(nvmf_emu_bdev_pending(E), 0);
    return 0;
}

static int t_fuse_nonzero(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    static uint8_t buf[512];
    struct nvme_sqe sqe;
    rw_sqe(&sqe, 0x01, 1, 0, 0);
    sqe.fuse_psdt = 0x41;
    CHECK_ST(run(&s.ioq, &sqe, buf, 512), 0x002, 1);
    CHECK_EQ(nvmf_emu_bdev_pending(E), 0);
    return 0;
}

/* ---- IO --------------------------------------------------------------------------------------------- */

static int t_io_roundtrip_multi_iovec(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    enum { LEN = 8 * 512 };
    static uint8_t src[LEN], dst[LEN], media[LEN];
    for (int i = 0; i < LEN; i++)
        src[i] = (uint8_t)(i * 7 + 3);
    struct iovec wiov[3] = {{src, 1000}, {src + 1000, 1500}, {src + 2500, LEN - 2500}};
    struct nvme_sqe sqe;
    rw_sqe(&sqe, 0x01, 1, 100, 7);
    struct nvmf_emu_cmd w;
    mkcmd(&w, &s.ioq, &sqe, wiov, 3);
    CHECK_EQ(nvmf_emu_exec(E, &w), NVMF_EMU_ASYNC);
    CHECK_EQ(nvmf_emu_bdev_pending(E), 1);
    CHECK_EQ(nvmf_emu_namespace_read(E, 0, 1, 100 * 512, media, LEN), 0);
    for (int i = 0; i < LEN; i++)
        CHECK_EQ(media[i], 0);               /* nothing moved before the device completes */
    CHECK_EQ(nvmf_emu_bdev_complete(E, 0, 0), 0);
    CHECK_EQ(n_done, 1);
    CHECK(done_cmds[0] == &w);
    CHECK_ST(w, 0, 0);
    CHECK_EQ(nvmf_emu_namespace_read(E, 0, 1, 100 * 512, media, LEN), 0);
    CHECK(!memcmp(media, src, LEN));

    struct iovec riov[4] = {{dst, 1}, {dst + 1, 511}, {dst + 512, 3000}, {dst + 3512, LEN - 3512}};
    struct nvme_sqe rsqe;
    rw_sqe(&rsqe, 0x02, 1, 100, 7);
    struct nvmf_emu_cmd r;
    mkcmd(&r, &s.ioq, &rsqe, riov, 4);
    CHECK_EQ(nvmf_emu_exec(E, &r), NVMF_EMU_ASYNC);
    CHECK_EQ(nvmf_emu_bdev_complete(E, 0, 0), 0);
    CHECK_EQ(n_done, 2);
    CHECK(done_cmds[1] == &r);
    CHECK_ST(r, 0, 0);
    CHECK(!memcmp(dst, src, LEN));

    /* Flush goes through the device as well */
    struct nvme_sqe fsqe;
    rw_sqe(&fsqe, 0x00, 1, 0, 0);
    struct nvmf_emu_cmd f;
    mkcmd(&f, &s.ioq, &fsqe, NULL, 0);
    CHECK_EQ(nvmf_emu_exec(E, &f), NVMF_EMU_ASYNC);
    CHECK_EQ(nvmf_emu_bdev_complete(E, 0, 0), 0);
    CHECK_ST(f, 0, 0);
    CHECK_EQ(n_done, 3);
    return 0;
}

static int t_io_lba_out_of_range(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    static uint8_t buf[4096];
    struct nvme_sqe sqe;
    rw_sqe(&sqe, 0x02, 1, NS1_BLOCKS, 0);
    CHECK_ST(run(&s.ioq, &sqe, buf, 512), 0x080, 1);
    rw_sqe(&sqe, 0x01, 1, NS1_BLOCKS - 1, 1);            /* last block + one beyond */
    CHECK_ST(run(&s.ioq, &sqe, buf, 1024), 0x080, 1);
    rw_sqe(&sqe, 0x02, 1, 0xFFFFFFFFFFFFFFFFull, 0);
    CHECK_ST(run(&s.ioq, &sqe, buf, 512), 0x080, 1);
    CHECK_EQ(nvmf_emu_bdev_pending(E), 0);
    struct nvmf_emu_cmd c;
    struct iovec iov = {buf, 512};
    rw_sqe(&sqe, 0x02, 1, NS1_BLOCKS - 1, 0);            /* the last block is fine */
    mkcmd(&c, &s.ioq, &sqe, &iov, 1);
    CHECK_EQ(nvmf_emu_exec(E, &c), NVMF_EMU_ASYNC);
    return 0;
}

static int t_io_length_mismatch(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    static uint8_t buf[8192];
    struct nvme_sqe sqe;
    rw_sqe(&sqe, 0x01, 1, 0, 1);                         /* 2 blocks = 1024 bytes */
    CHECK_ST(run(&s.ioq, &sqe, buf, 512), 0x00F, 1);
    CHECK_ST(run(&s.ioq, &sqe, buf, 1536), 0x00F, 1);
    rw_sqe(&sqe, 0x02, 2, 0, 0);                         /* 4096-byte blocks */
    CHECK_ST(run(&s.ioq, &sqe, buf, 512), 0x00F, 1);
    rw_sqe(&sqe, 0x02, 1, 0, 255);                       /* 128 KiB > MDTS (64 KiB) */
    CHECK_ST(run(&s.ioq, &sqe, buf, 8192), 0x002, 1);
    CHECK_EQ(nvmf_emu_bdev_pending(E), 0);
    return 0;
}

static int t_io_invalid_namespace(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    static uint8_t buf[512];
    struct nvme_sqe sqe;
    rw_sqe(&sqe, 0x02, 3, 0, 0);
    CHECK_ST(run(&s.ioq, &sqe, buf, 512), 0x00B, 1);
    rw_sqe(&sqe, 0x02, 0, 0, 0);
    CHECK_ST(run(&s.ioq, &sqe, buf, 512), 0x00B, 1);
    rw_sqe(&sqe, 0x00, 0xFFFFFFFF, 0, 0);
    CHECK_ST(run(&s.ioq, &sqe, NULL, 0), 0x00B, 1);
    return 0;
}

static int t_io_namespace_not_ready(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    static uint8_t buf[512];
    struct nvme_sqe sqe;
    rw_sqe(&sqe, 0x01, 1, 0, 0);
    CHECK_EQ(nvmf_emu_namespace_set_ready(E, 0, 1, false), 0);
    CHECK_ST(run(&s.ioq, &sqe, buf, 512), 0x082, 0);     /* transient: no DNR */
    CHECK_EQ(nvmf_emu_bdev_pending(E), 0);
    CHECK_EQ(nvmf_emu_namespace_set_ready(E, 0, 1, true), 0);
    struct nvmf_emu_cmd c;
    struct iovec iov = {buf, 512};
    mkcmd(&c, &s.ioq, &sqe, &iov, 1);
    CHECK_EQ(nvmf_emu_exec(E, &c), NVMF_EMU_ASYNC);
    CHECK_EQ(nvmf_emu_namespace_set_ready(E, 0, 9, true), -1);
    return 0;
}

static int t_io_manual_vs_auto(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    static uint8_t b[3][512];
    struct nvme_sqe sqe[3];
    struct nvmf_emu_cmd c[3];
    struct iovec iov[3];
    for (int i = 0; i < 3; i++) {
        memset(b[i], 'a' + i, 512);
        iov[i].iov_base = b[i];
        iov[i].iov_len = 512;
        rw_sqe(&sqe[i], 0x01, 1, (uint64_t)i, 0);
        mkcmd(&c[i], &s.ioq, &sqe[i], &iov[i], 1);
        CHECK_EQ(nvmf_emu_exec(E, &c[i]), NVMF_EMU_ASYNC);
    }
    CHECK_EQ(nvmf_emu_bdev_pending(E), 3);
    CHECK_EQ(nvmf_emu_bdev_complete(E, 1, 0), 0);        /* the middle one */
    CHECK(done_cmds[0] == &c[1]);
    CHECK_EQ(nvmf_emu_bdev_complete(E, 5, 0), 0);        /* 5 % 2 = 1: the third */
    CHECK(done_cmds[1] == &c[2]);
    CHECK_EQ(nvmf_emu_bdev_complete(E, 0, 0), 0);
    CHECK(done_cmds[2] == &c[0]);
    CHECK_EQ(nvmf_emu_bdev_pending(E), 0);
    CHECK_EQ(nvmf_emu_bdev_complete(E, 0, 0), -1);
    uint8_t m[512];
    CHECK_EQ(nvmf_emu_namespace_read(E, 0, 1, 2 * 512, m, 512), 0);
    CHECK_EQ(m[0], 'c');

    nvmf_emu_bdev_set_auto(E, true);
    memset(b[0], 'z', 512);
    rw_sqe(&sqe[0], 0x01, 1, 7, 0);
    mkcmd(&c[0], &s.ioq, &sqe[0], &iov[0], 1);
    CHECK_EQ(nvmf_emu_exec(E, &c[0]), NVMF_EMU_DONE);
    CHECK_ST(c[0], 0, 0);
    CHECK_EQ(nvmf_emu_bdev_pending(E), 0);
    CHECK_EQ(n_done, 3);                                 /* no callback for a DONE command */
    CHECK_EQ(nvmf_emu_namespace_read(E, 0, 1, 7 * 512, m, 512), 0);
    CHECK_EQ(m[511], 'z');
    return 0;
}

static int t_io_complete_with_status(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    static uint8_t b[512];
    memset(b, 0x5A, sizeof(b));
    struct nvme_sqe sqe;
    struct nvmf_emu_cmd c;
    struct iovec iov = {b, 512};
    rw_sqe(&sqe, 0x01, 1, 3, 0);
    mkcmd(&c, &s.ioq, &sqe, &iov, 1);
    CHECK_EQ(nvmf_emu_exec(E, &c), NVMF_EMU_ASYNC);
    CHECK_EQ(nvmf_emu_bdev_complete(E, 0, 0x281), 0);
    CHECK_ST(c, 0x281, 0);
    uint8_t m[512];
    CHECK_EQ(nvmf_emu_namespace_read(E, 0, 1, 3 * 512, m, 512), 0);
    CHECK_EQ(m[0], 0);                                   /* a failed write moves nothing */
    return 0;
}

static int t_io_injected_errors(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    static uint8_t b[512];
    struct nvme_sqe sqe[3];
    struct nvmf_emu_cmd c[3];
    struct iovec iov = {b, 512};
    CHECK_EQ(nvmf_emu_bdev_inject_error(E, 2, 0x281), 0);
    for (int i = 0; i < 3; i++) {
        rw_sqe(&sqe[i], 0x02, 1, (uint64_t)i, 0);
        mkcmd(&c[i], &s.ioq, &sqe[i], &iov, 1);
        CHECK_EQ(nvmf_emu_exec(E, &c[i]), NVMF_EMU_ASYNC);
    }
    for (int i = 0; i < 3; i++)
        CHECK_EQ(nvmf_emu_bdev_complete(E, 0, 0), 0);
    CHECK_ST(c[0], 0x281, 0);
    CHECK_ST(c[1], 0x281, 0);
    CHECK_ST(c[2], 0, 0);
    /* in auto mode as well */
    nvmf_emu_bdev_set_auto(E, true);
    CHECK_EQ(nvmf_emu_bdev_inject_error(E, 1, 0x006), 0);
    CHECK_EQ(nvmf_emu_exec(E, &c[0]), NVMF_EMU_DONE);
    CHECK_ST(c[0], 0x006, 0);
    CHECK_EQ(nvmf_emu_exec(E, &c[0]), NVMF_EMU_DONE);
    CHECK_ST(c[0], 0, 0);
    return 0;
}

static int t_io_cancel(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    static uint8_t b[512];
    struct nvme_sqe sqe;
    struct nvmf_emu_cmd c;
    struct iovec iov = {b, 512};
    rw_sqe(&sqe, 0x02, 1, 0, 0);
    mkcmd(&c, &s.ioq, &sqe, &iov, 1);
    CHECK_EQ(nvmf_emu_exec(E, &c), NVMF_EMU_ASYNC);
    CHECK_EQ(nvmf_emu_cancel(E, &c), 1);
    CHECK_EQ(nvmf_emu_bdev_pending(E), 0);
    CHECK_EQ(nvmf_emu_cancel(E, &c), 0);
    CHECK_EQ(nvmf_emu_bdev_complete(E, 0, 0), -1);
    CHECK_EQ(n_done, 0);
    return 0;
}

static int t_io_after_controller_reset(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    static uint8_t b[512];
    struct nvme_sqe sqe;
    rw_sqe(&sqe, 0x02, 1, 0, 0);
    CHECK_ST(prop_set(&s.aq, 0x14, 0, 0), 0, 0);         /* CC.EN = 0 */
    CHECK_ST(run(&s.ioq, &sqe, b, 512), 0x00C, 1);
    return 0;
}

/* ---- qpair lifetime ------------------------------------------------------------------------------ */

static int t_qpair_gone_releases_controller(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    CHECK_EQ(s.cntlid, 1);
    struct nvmf_emu_qpair q[MAX_CTRLRS];
    for (uint32_t i = 1; i < MAX_CTRLRS; i++) {
        qp_init(&q[i]);
        CHECK_ST(connect_admin(&q[i], 0), 0, 0);
    }
    qp_init(&q[0]);
    CHECK_ST(connect_admin(&q[0], 0), 0x181, 0);

    nvmf_emu_qpair_gone(E, &s.aq);                       /* the controller dies */
    CHECK(!s.aq.connected);
    static uint8_t b[512];
    struct nvme_sqe sqe;
    rw_sqe(&sqe, 0x02, 1, 0, 0);
    CHECK_ST(run(&s.ioq, &sqe, b, 512), 0x008, 0);
    struct nvmf_emu_qpair io2;
    qp_init(&io2);
    struct nvmf_emu_cmd c = connect_io(&io2, 2, s.cntlid);
    CHECK_ST(c, 0x182, 1);
    CHECK_EQ(c.cdw0, 1u << 16 | 16);
    CHECK_ST(connect_admin(&q[0], 0), 0x181, 0);         /* its I/O qpair holds the slot */

    nvmf_emu_qpair_gone(E, &s.ioq);
    nvmf_emu_qpair_gone(E, &s.ioq);                      /* twice is harmless */
    c = connect_admin(&q[0], 0);
    CHECK_ST(c, 0, 0);
    CHECK_EQ(c.cdw0, 1);                                 /* the only free CNTLID */
    return 0;
}

static int t_queued_io_completes_after_qpair_gone(void)
{
    setup();
    struct assoc s;
    if (make_assoc(&s, 0))
        return 1;
    static uint8_t b[512];
    memset(b, 0x33, sizeof(b));
    struct nvme_sqe sqe;
    struct nvmf_emu_cmd c;
    struct iovec iov = {b, 512};
    rw_sqe(&sqe, 0x01, 1, 9, 0);
    mkcmd(&c, &s.ioq, &sqe, &iov, 1);
    CHECK_EQ(nvmf_emu_exec(E, &c), NVMF_EMU_ASYNC);
    nvmf_emu_qpair_gone(E, &s.ioq);
    nvmf_emu_qpair_gone(E, &s.aq);
    CHECK_EQ(nvmf_emu_bdev_pending(E), 1);
    CHECK_EQ(nvmf_emu_bdev_complete(E, 0, 0), 0);
    CHECK_EQ(n_done, 1);
    CHECK_ST(c, 0, 0);
    uint8_t m[512];
    CHECK_EQ(nvmf_emu_namespace_read(E, 0, 1, 9 * 512, m, 512), 0);
    CHECK_EQ(m[100], 0x33);
    return 0;
}

static int t_kato_dead_controller_slot_reuse(void)
{
    setup();
    struct nvmf_emu_qpair q[MAX_CTRLRS], extra;
    for (uint32_t i = 0; i < MAX_CTRLRS; i++) {
        qp_init(&q[i]);
        CHECK_ST(connect_admin(&q[i], i == 1 ? 5 : 0), 0, 0);
    }
    CHECK_EQ(nvmf_emu_advance_time(E, 6), 1);
    CHECK_EQ(fatal_ids[0], q[1].cntlid);
    qp_init(&extra);
    CHECK_ST(connect_admin(&extra, 0), 0x181, 0);        /* the dead one still has a qpair */
    nvmf_emu_qpair_gone(E, &q[1]);
    struct nvmf_emu_cmd c = connect_admin(&extra, 0);
    CHECK_ST(c, 0, 0);
    CHECK_EQ(c.cdw0, q[1].cntlid);
    return 0;
}

static int t_config_errors(void)
{
    setup();
    CHECK_EQ(nvmf_emu_subsystem_add(E, SUBNQN0), -1);    /* duplicate */
    CHECK(strlen(nvmf_emu_error(E)) > 0);
    CHECK_EQ(nvmf_emu_namespace_add(E, 7, 512, 1), -1);
    CHECK_EQ(nvmf_emu_namespace_add(E, 0, 1000, 1), -1);
    CHECK(!strcmp(nvmf_emu_subsystem_nqn(E, 1), SUBNQN1));
    CHECK(nvmf_emu_subsystem_nqn(E, 2) == NULL);
    uint32_t bs = 0;
    uint64_t nb = 0;
    CHECK_EQ(nvmf_emu_namespace_info(E, 0, 2, &bs, &nb), 0);
    CHECK_EQ(bs, 4096);
    CHECK_EQ(nb, NS2_BLOCKS);
    uint8_t m[16];
    CHECK_EQ(nvmf_emu_namespace_read(E, 0, 2, NS2_BLOCKS * 4096 - 8, m, 16), -1);
    struct nvmf_emu_opts o;
    nvmf_emu_opts_default(&o);
    o.max_controllers = 0xFFF0;
    char err[128] = "";
    CHECK(nvmf_emu_create(&o, NULL, err, sizeof(err)) == NULL);
    CHECK(strlen(err) > 0);
    return 0;
}

/* ---- driver ------------------------------------------------------------------------------------ */

struct tcase {
    const char *name;
    int (*fn)(void);
};

#define CASE(n) {#n, t_##n}
static const struct tcase cases[] = {
    CASE(admin_connect_dynamic),
    CASE(io_connect_by_cntlid),
    CASE(connect_recfmt),
    CASE(connect_sqsize_zero),
    CASE(connect_sqsize_too_big),
    CASE(connect_short_data),
    CASE(connect_unknown_subnqn),
    CASE(connect_hostnqn_unterminated),
    CASE(connect_admin_cntlid_not_dynamic),
    CASE(connect_invalid_host),
    CASE(connect_io_unknown_cntlid),
    CASE(connect_io_host_mismatch),
    CASE(connect_io_before_enable),
    CASE(connect_io_qid_beyond_granted),
    CASE(connect_io_duplicate_qid),
    CASE(connect_twice),
    CASE(connect_controller_busy),
    CASE(commands_before_connect),
    CASE(property_cap),
    CASE(property_vs),
    CASE(property_cc_csts),
    CASE(property_cc_bad_enable),
    CASE(property_size_mismatch),
    CASE(property_readonly_and_unknown),
    CASE(property_on_io_queue),
    CASE(identify_controller),
    CASE(identify_namespace),
    CASE(identify_invalid),
    CASE(identify_active_ns_list),
    CASE(features_number_of_queues),
    CASE(features_keep_alive_and_unknown),
    CASE(keep_alive_expiry),
    CASE(keep_alive_reset),
    CASE(keep_alive_default_kato),
    CASE(keep_alive_io_queue_after_expiry),
    CASE(abort),
    CASE(opcode_checks),
    CASE(fuse_nonzero),
    CASE(io_roundtrip_multi_iovec),
    CASE(io_lba_out_of_range),
    CASE(io_length_mismatch),
    CASE(io_invalid_namespace),
    CASE(io_namespace_not_ready),
    CASE(io_manual_vs_auto),
    CASE(io_complete_with_status),
    CASE(io_injected_errors),
    CASE(io_cancel),
    CASE(io_after_controller_reset),
    CASE(qpair_gone_releases_controller),
    CASE(queued_io_completes_after_qpair_gone),
    CASE(kato_dead_controller_slot_reuse),
    CASE(config_errors),
};

int main(int argc, char **argv)
{
    size_t n = sizeof(cases) / sizeof(cases[0]);
    if (argc == 2 && !strcmp(argv[1], "--list")) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s --list | NAME\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(argv[1], cases[i].name)) {
            int rc = cases[i].fn();
            nvmf_emu_destroy(E);
            E = NULL;
            return rc ? 1 : 0;
        }
    }
    fprintf(stderr, "no case %s\n", argv[1]);
    return 2;
}
