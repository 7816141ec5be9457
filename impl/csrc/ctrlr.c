/*
 * ctrlr.c — the NVMe-oF controller emulation behind ctrlr.h.
 *
 * References (section numbers as cited throughout):
 *   NVMe Base 2.0  — 3.1 controller properties (CAP, VS, CC, CSTS), 3.9 keep alive,
 *                    4.6 completion status (Figure 97 generic codes, Figure 98 NVM codes),
 *                    5.1 Abort, 5.15 Get Features, 5.17 Identify, 5.21 Set Features,
 *                    5.25 Keep Alive; NVM Command Set 1.0: Flush, Read, Write.
 *   NVMe-oF 1.1    — 3.3 Connect (Figures 19-21), 3.4 Property Get, 3.5 Property Set,
 *                    4.2 controller model (dynamic), 4.4 Identify Controller fabrics area.
 *
 * Choices the specifications leave open (each repeated where it is made):
 *   - CC.EN: only an I/O queue Connect requires CC.EN = 1 and CSTS.RDY = 1 (else Command
 *     Sequence Error).  Admin commands (Identify, Features, Keep Alive...) are accepted on a
 *     connected admin queue before enable so that existing hosts, which identify first,
 *     keep working; NVMe Base 2.0 3.5.1 lets a controller be that lenient.  I/O commands on
 *     an I/O queue while CC.EN = 0 (after a host reset) fail with Command Sequence Error.
 *   - Keep alive: the timer restarts on every command the admin queue executes, not only
 *     Keep Alive (as ctrlr.h states).  CTRATT.TBKAS is not claimed since I/O commands do not
 *     restart it.  Expiry is "more than KATO ticks since the last restart".
 *   - Data lengths: Connect needs >= 1024 bytes and Identify >= 4096 bytes of data, else
 *     Data SGL Length Invalid; longer buffers are accepted and only the first 1024/4096
 *     bytes are used.  Block IO needs exactly (NLB + 1) * block size.
 *   - CNTLIDs are allocated next-fit in 1..max_controllers, so a CNTLID is not handed out
 *     again right after it was released.
 */
#include "ctrlr.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- status values: SCT << 8 | SC (NVMe Base 2.0, 4.6.1.2) ----------------------- */
#define SC_SUCCESS              0x000
#define SC_INVALID_OPCODE       0x001
#define SC_INVALID_FIELD        0x002
#define SC_INTERNAL_ERROR       0x006
#define SC_ABORTED_SQ_DELETION  0x008
#define SC_INVALID_NAMESPACE    0x00B
#define SC_CMD_SEQUENCE_ERROR   0x00C
#define SC_DATA_SGL_LENGTH      0x00F
#define SC_KATO_EXPIRED         0x019
#define SC_LBA_OUT_OF_RANGE     0x080
#define SC_NS_NOT_READY         0x082
#define SC_FEATURE_NOT_SAVEABLE 0x10D
/* Connect command specific (NVMe-oF 1.1, 3.3, Figure 21), SCT 1h */
#define SC_CONNECT_FORMAT       0x180
#define SC_CONNECT_CTRL_BUSY    0x181
#define SC_CONNECT_INVALID_PARAM 0x182
#define SC_CONNECT_INVALID_HOST 0x184

/* ---- opcodes ------------------------------------------------------------------------ */
#define OPC_ADMIN_ABORT        0x08
#define OPC_ADMIN_SET_FEATURES 0x09
#define OPC_ADMIN_GET_FEATURES 0x0A
#define OPC_ADMIN_IDENTIFY     0x06
#define OPC_ADMIN_KEEP_ALIVE   0x18
#define OPC_IO_FLUSH           0x00
#define OPC_IO_WRITE           0x01
#define OPC_IO_READ            0x02
#define OPC_FABRICS            0x7F
#define FCTYPE_PROPERTY_SET    0x00
#define FCTYPE_CONNECT         0x01
#define FCTYPE_PROPERTY_GET    0x04

/* ---- properties (NVMe Base 2.0, 3.1.3) ------------------------------------------------ */
#define PROP_CAP   0x00
#define PROP_VS    0x08
#define PROP_CC    0x14
#define PROP_CSTS  0x1C

#define CC_EN            (1u << 0)
#define CC_CSS_SHIFT     4
#define CC_MPS_SHIFT     7
#define CC_AMS_SHIFT     11
#define CC_SHN_SHIFT     14
#define CC_IOSQES_SHIFT  16
#define CC_IOCQES_SHIFT  20
/* EN, CSS, MPS, AMS, SHN, IOSQES, IOCQES; other bits reserved, stored as 0 */
#define CC_WRITABLE_MASK 0x00FFFFF1u
#define CSTS_RDY         (1u << 0)
#define CSTS_CFS         (1u << 1)
#define CSTS_SHST_DONE   (2u << 2)

#define EMU_VS 0x00010400u    /* 1.4.0: the features implemented here; VER matches */

/* ---- feature identifiers (NVMe Base 2.0, 5.21.1) ---------------------------------------- */
#define FID_NUMBER_OF_QUEUES 0x07
#define FID_KEEP_ALIVE_TIMER 0x0F

#define ID_DATA_SIZE 4096u
#define NQN_SIZE 256u
#define CNTLID_DYNAMIC 0xFFFFu

/* Byte offsets inside the Connect SQE / data, for IPO (NVMe-oF 1.1, 3.3, Figure 21). */
#define IPO_SQE_QID      ((uint32_t)offsetof(struct nvmf_connect_sqe, qid))
#define IPO_SQE_SQSIZE   ((uint32_t)offsetof(struct nvmf_connect_sqe, sqsize))
#define IPO_DATA_HOSTID  ((uint32_t)offsetof(struct nvmf_connect_data, hostid))
#define IPO_DATA_CNTLID  ((uint32_t)offsetof(struct nvmf_connect_data, cntlid))
#define IPO_DATA_SUBNQN  ((uint32_t)offsetof(struct nvmf_connect_data, subnqn))
#define IPO_DATA_HOSTNQN ((uint32_t)offsetof(struct nvmf_connect_data, hostnqn))

struct emu_ns {
    bool present;
    bool ready;
    uint32_t block_size;
    uint8_t lbads;              /* log2(block_size) */
    uint64_t num_blocks;
    uint8_t *data;
};

struct emu_subsys {
    bool in_use;
    char nqn[NQN_SIZE];
    struct emu_ns *ns;          /* [max_namespaces], nsid = index + 1 */
    uint32_t num_hosts;         /* 0: any host may connect */
    char (*hosts)[NQN_SIZE];
};

struct emu_ctrlr {
    bool in_use;                /* the slot (CNTLID) is taken: some qpair still refers to it */
    bool alive;                 /* admin queue present and keep alive not expired */
    bool kato_expired;          /* died through keep alive (else: admin qpair gone) */
    bool io_queue_created;      /* Set Features Number of Queues is refused after this */
    uint16_t cntlid;
    uint32_t subsys;
    uint8_t hostid[16];
    char hostnqn[NQN_SIZE];
    uint32_t kato;              /* ms = ticks; 0 = no keep alive */
    uint64_t ka_last;           /* tick of the last timer restart */
    uint32_t cc;
    uint32_t csts;
    uint16_t nsqa, ncqa;        /* granted I/O queues, 0's based */
    uint32_t num_qpairs;
    struct nvmf_emu_qpair **qps;/* [max_io_queues + 1], index = QID */
};

struct emu_io {
    struct nvmf_emu_cmd *cmd;
    struct emu_ns *ns;
    uint64_t offset;            /* bytes */
    uint32_t length;
    uint8_t opc;
    uint16_t injected;          /* status the media reports (0: success) */
};

struct nvmf_emu {
    struct nvmf_emu_opts o;
    struct nvmf_emu_callbacks cb;
    struct emu_subsys *subsys;  /* [max_subsystems] */
    uint32_t num_subsys;
    struct emu_ctrlr *ctrlrs;   /* [max_controllers], CNTLID = index + 1 */
    uint32_t next_cntlid_idx;
    struct emu_io *ios;         /* pending block IO, oldest first */
    uint32_t num_ios;
    uint32_t cap_ios;
    bool auto_complete;
    uint32_t inject_count;
    uint16_t inject_status;
    uint64_t now;
    char err[256];
    uint8_t scratch[ID_DATA_SIZE];
};

/* ---- small helpers ------------------------------------------------------------------------ */

static void emu_set_err(struct nvmf_emu *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emu_set_err(struct nvmf_emu *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->err, sizeof(e->err), fmt, ap);
    va_end(ap);
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ASCII field padded with spaces (NVMe Base 2.0, 5.17.2.1: SN, MN, FR). */
static void put_ascii(uint8_t *p, size_t width, const char *s)
{
    size_t n = strlen(s);
    if (n > width)
        n = width;
    memset(p, ' ', width);
    memcpy(p, s, n);
}

static bool nul_terminated(const char *s, size_t max)
{
    return memchr(s, '\0', max) != NULL;
}

/* Copies between the command's iovec list (from byte off) and a flat buffer, at most
 * cmd->length bytes in all: into the iovecs when to_iov, out of them otherwise. */
static uint64_t iov_copy(const struct nvmf_emu_cmd *cmd, uint64_t off, uint8_t *buf,
                         uint64_t len, bool to_iov)
{
    uint64_t done = 0, pos = 0, limit = cmd->length;
    if (off >= limit)
        return 0;
    if (len > limit - off)
        len = limit - off;
    if (off == 0 && cmd->iovcnt && cmd->iov[0].iov_len >= len) {
        /* the whole range in the first iovec (a block IO of one buffer): one copy */
        if (to_iov)
            memcpy(cmd->iov[0].iov_base, buf, len);
        else
            memcpy(buf, cmd->iov[0].iov_base, len);
        return len;
    }
    for (uint32_t i = 0; i < cmd->iovcnt && done < len; i++) {
        uint64_t l = cmd->iov[i].iov_len;
        if (off < pos + l) {
            uint64_t skip = off > pos ? off - pos : 0;
            uint64_t n = l - skip;
            if (n > len - done)
                n = len - done;
            uint8_t *iov = (uint8_t *)cmd->iov[i].iov_base + skip;
            if (to_iov)
                memcpy(iov, buf + done, n);
            else
                memcpy(buf + done, iov, n);
            done += n;
            off += n;
        }
        pos += l;
    }
    return done;
}

static uint64_t iov_to_buf(const struct nvmf_emu_cmd *cmd, uint64_t off, void *buf, uint64_t len)
{
    return iov_copy(cmd, off, buf, len, false);
}

static uint64_t buf_to_iov(struct nvmf_emu_cmd *cmd, uint64_t off, const void *buf, uint64_t len)
{
    return iov_copy(cmd, off, (uint8_t *)(uintptr_t)buf, len, true);
}

/* Completion helpers.  DNR (NVMe Base 2.0, 4.6.1.1): set when the same command would fail
 * again; cleared for transient conditions (busy, namespace not ready, controller gone). */
static int fail(struct nvmf_emu_cmd *cmd, uint16_t status, bool dnr)
{
    cmd->status = status;
    cmd->dnr = dnr;
    return NVMF_EMU_DONE;
}

/* Connect Invalid Parameters / Invalid Host: CDW0 bits 15:0 IPO (byte offset of the
 * parameter), bit 16 IATTR (1: in the connect data, 0: in the SQE) — NVMe-oF 1.1, 3.3,
 * Figure 21. */
static int fail_connect(struct nvmf_emu_cmd *cmd, uint16_t status, bool in_data, uint32_t ipo)
{
    cmd->cdw0 = (in_data ? 1u << 16 : 0) | (ipo & 0xFFFFu);
    return fail(cmd, status, true);
}

/* ---- options, creation ------------------------------------------------------------------- */

void nvmf_emu_opts_default(struct nvmf_emu_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_subsystems = 64;
    o->max_namespaces = 4;
    o->max_controllers = 64;
    o->max_io_queues = 16;
    o->max_queue_depth = 128;
    o->max_io_size = 131072;
    o->in_capsule_data_size = 4096;
    o->max_sgl_descriptors = 16;
    o->default_kato_ticks = 0;
}

static const char *opts_check(const struct nvmf_emu_opts *o)
{
    if (o->max_subsystems < 1 || o->max_subsystems > 4096)
        return "max_subsystems must be 1..4096";
    if (o->max_namespaces < 1 || o->max_namespaces > 1024)
        return "max_namespaces must be 1..1024";
    if (o->max_controllers < 1 || o->max_controllers > 0xFFEF)
        return "max_controllers must be 1..65519 (CNTLID FFF0h and above are reserved)";
    if (o->max_io_queues < 1 || o->max_io_queues > 0xFFFE)
        return "max_io_queues must be 1..65534";
    if (o->max_queue_depth < 2 || o->max_queue_depth > 0x10000)
        return "max_queue_depth must be 2..65536 (CAP.MQES is 16 bits, 0's based)";
    if (o->max_io_size < 512)
        return "max_io_size must be at least 512";
    if (o->in_capsule_data_size % 16)
        return "in_capsule_data_size must be a multiple of 16 (IOCCSZ is in 16-byte units)";
    if (o->max_sgl_descriptors > 255)
        return "max_sgl_descriptors must be 0..255 (MSDBD is one byte)";
    return NULL;
}

struct nvmf_emu *nvmf_emu_create(const struct nvmf_emu_opts *o, const struct nvmf_emu_callbacks *cb,
                                 char *err, size_t errlen)
{
    struct nvmf_emu_opts def;
    if (!o) {
        nvmf_emu_opts_default(&def);
        o = &def;
    }
    const char *bad = opts_check(o);
    if (bad) {
        if (err && errlen)
            snprintf(err, errlen, "%s", bad);
        return NULL;
    }
    struct nvmf_emu *e = calloc(1, sizeof(*e));
    if (!e)
        goto nomem;
    e->o = *o;
    if (cb)
        e->cb = *cb;
    e->subsys = calloc(o->max_subsystems, sizeof(*e->subsys));
    e->ctrlrs = calloc(o->max_controllers, sizeof(*e->ctrlrs));
    /* every queued IO is an outstanding command of some qpair: bounded by the qpairs the
     * controllers may have times their depth */
    uint64_t cap = o->max_outstanding_io
                       ? o->max_outstanding_io
                       : (uint64_t)o->max_controllers * (o->max_io_queues + 1u) * o->max_queue_depth;
    if (cap > (1u << 24))
        cap = 1u << 24;
    e->cap_ios = (uint32_t)cap;
    e->ios = calloc(e->cap_ios, sizeof(*e->ios));
    if (!e->subsys || !e->ctrlrs || !e->ios)
        goto nomem;
    for (uint32_t i = 0; i < o->max_subsystems; i++) {
        e->subsys[i].ns = calloc(o->max_namespaces, sizeof(struct emu_ns));
        if (!e->subsys[i].ns)
            goto nomem;
    }
    for (uint32_t i = 0; i < o->max_controllers; i++) {
        e->ctrlrs[i].qps = calloc(o->max_io_queues + 1u, sizeof(struct nvmf_emu_qpair *));
        if (!e->ctrlrs[i].qps)
            goto nomem;
    }
    return e;
nomem:
    nvmf_emu_destroy(e);
    if (err && errlen)
        snprintf(err, errlen, "out of memory creating the controller emulation");
    return NULL;
}

void nvmf_emu_destroy(struct nvmf_emu *e)
{
    if (!e)
        return;
    if (e->subsys) {
        for (uint32_t i = 0; i < e->o.max_subsystems; i++) {
            struct emu_subsys *s = &e->subsys[i];
            if (s->ns)
                for (uint32_t n = 0; n < e->o.max_namespaces; n++)
                    free(s->ns[n].data);
            free(s->ns);
            free(s->hosts);
        }
    }
    if (e->ctrlrs)
        for (uint32_t i = 0; i < e->o.max_controllers; i++)
            free(e->ctrlrs[i].qps);
    free(e->subsys);
    free(e->ctrlrs);
    free(e->ios);
    free(e);
}

const char *nvmf_emu_error(const struct nvmf_emu *e)
{
    return e ? e->err : "no emulation";
}

/* ---- configuration ---------------------------------------------------------------------- */

static struct emu_subsys *subsys_get(struct nvmf_emu *e, int subsystem)
{
    if (subsystem < 0 || (uint32_t)subsystem >= e->num_subsys)
        return NULL;
    return &e->subsys[subsystem];
}

static struct emu_ns *ns_get(struct emu_subsys *s, const struct nvmf_emu_opts *o, uint32_t nsid)
{
    if (!s || nsid < 1 || nsid > o->max_namespaces || !s->ns[nsid - 1].present)
        return NULL;
    return &s->ns[nsid - 1];
}

int nvmf_emu_subsystem_add(struct nvmf_emu *e, const char *subnqn)
{
    if (!subnqn || !subnqn[0] || strlen(subnqn) >= NQN_SIZE) {
        emu_set_err(e, "subsystem NQN must be 1..255 characters");
        return -1;
    }
    for (uint32_t i = 0; i < e->num_subsys; i++)
        if (!strcmp(e->subsys[i].nqn, subnqn)) {
            emu_set_err(e, "subsystem %s already exists", subnqn);
            return -1;
        }
    if (e->num_subsys >= e->o.max_subsystems) {
        emu_set_err(e, "subsystem table full (%u)", e->o.max_subsystems);
        return -1;
    }
    struct emu_subsys *s = &e->subsys[e->num_subsys];
    s->in_use = true;
    snprintf(s->nqn, sizeof(s->nqn), "%s", subnqn);
    return (int)e->num_subsys++;
}

const char *nvmf_emu_subsystem_nqn(const struct nvmf_emu *e, int subsystem)
{
    if (!e || subsystem < 0 || (uint32_t)subsystem >= e->num_subsys)
        return NULL;
    return e->subsys[subsystem].nqn;
}

/* Addition to ctrlr.h: restricts a subsystem to listed hosts (NVMe-oF 1.1, 3.3: a host
 * not allowed gets Connect Invalid Host).  With no host listed, every host may connect. */
int nvmf_emu_subsystem_allow_host(struct nvmf_emu *e, int subsystem, const char *hostnqn)
{
    struct emu_subsys *s = subsys_get(e, subsystem);
    if (!s) {
        emu_set_err(e, "no subsystem %d", subsystem);
        return -1;
    }
    if (!hostnqn || !hostnqn[0] || strlen(hostnqn) >= NQN_SIZE) {
        emu_set_err(e, "host NQN must be 1..255 characters");
        return -1;
    }
    for (uint32_t i = 0; i < s->num_hosts; i++)
        if (!strcmp(s->hosts[i], hostnqn))
            return 0;
    char (*h)[NQN_SIZE] = realloc(s->hosts, (s->num_hosts + 1u) * sizeof(*h));
    if (!h) {
        emu_set_err(e, "out of memory");
        return -1;
    }
    s->hosts = h;
    snprintf(s->hosts[s->num_hosts], NQN_SIZE, "%s", hostnqn);
    s->num_hosts++;
    return 0;
}

int nvmf_emu_namespace_add(struct nvmf_emu *e, int subsystem, uint32_t block_size,
                           uint64_t num_blocks)
{
    struct emu_subsys *s = subsys_get(e, subsystem);
    if (!s) {
        emu_set_err(e, "no subsystem %d", subsystem);
        return -1;
    }
    if (block_size < 512 || (block_size & (block_size - 1)) || block_size > (1u << 16)) {
        emu_set_err(e, "block size %u: must be a power of two, 512..65536", block_size);
        return -1;
    }
    if (num_blocks < 1 || num_blocks > (UINT64_MAX / block_size) ||
        num_blocks * block_size > (uint64_t)SIZE_MAX) {
        emu_set_err(e, "namespace of %llu blocks does not fit", (unsigned long long)num_blocks);
        return -1;
    }
    uint32_t idx = 0;
    while (idx < e->o.max_namespaces && s->ns[idx].present)
        idx++;
    if (idx >= e->o.max_namespaces) {
        emu_set_err(e, "subsystem %d: namespace table full (%u)", subsystem, e->o.max_namespaces);
        return -1;
    }
    uint8_t *data = calloc(1, (size_t)(num_blocks * block_size));
    if (!data) {
        emu_set_err(e, "out of memory for a %llu-byte namespace",
                    (unsigned long long)(num_blocks * block_size));
        return -1;
    }
    struct emu_ns *ns = &s->ns[idx];
    ns->present = true;
    ns->ready = true;
    ns->block_size = block_size;
    ns->lbads = 0;
    while ((1u << ns->lbads) < block_size)
        ns->lbads++;
    ns->num_blocks = num_blocks;
    ns->data = data;
    return (int)(idx + 1);
}

int nvmf_emu_namespace_set_ready(struct nvmf_emu *e, int subsystem, uint32_t nsid, bool ready)
{
    struct emu_ns *ns = ns_get(subsys_get(e, subsystem), &e->o, nsid);
    if (!ns) {
        emu_set_err(e, "no namespace %u in subsystem %d", nsid, subsystem);
        return -1;
    }
    ns->ready = ready;
    return 0;
}

int nvmf_emu_namespace_read(struct nvmf_emu *e, int subsystem, uint32_t nsid, uint64_t offset,
                            void *buf, uint64_t len)
{
    struct emu_ns *ns = ns_get(subsys_get(e, subsystem), &e->o, nsid);
    if (!ns) {
        emu_set_err(e, "no namespace %u in subsystem %d", nsid, subsystem);
        return -1;
    }
    uint64_t size = ns->num_blocks * ns->block_size;
    if (offset > size || len > size - offset) {
        emu_set_err(e, "read of %llu bytes at %llu beyond the namespace (%llu bytes)",
                    (unsigned long long)len, (unsigned long long)offset, (unsigned long long)size);
        return -1;
    }
    if (len)
        memcpy(buf, ns->data + offset, (size_t)len);
    return 0;
}

uint8_t *nvmf_emu_namespace_data(struct nvmf_emu *e, int subsystem, uint32_t nsid)
{
    struct emu_ns *ns = ns_get(subsys_get(e, subsystem), &e->o, nsid);
    return ns ? ns->data : NULL;
}

int nvmf_emu_namespace_info(struct nvmf_emu *e, int subsystem, uint32_t nsid,
                            uint32_t *block_size, uint64_t *num_blocks)
{
    struct emu_ns *ns = ns_get(subsys_get(e, subsystem), &e->o, nsid);
    if (!ns) {
        emu_set_err(e, "no namespace %u in subsystem %d", nsid, subsystem);
        return -1;
    }
    if (block_size)
        *block_size = ns->block_size;
    if (num_blocks)
        *num_blocks = ns->num_blocks;
    return 0;
}

/* ---- controllers ----------------------------------------------------------------------- */

static struct emu_ctrlr *ctrlr_by_cntlid(struct nvmf_emu *e, uint16_t cntlid)
{
    if (cntlid < 1 || cntlid > e->o.max_controllers)
        return NULL;
    struct emu_ctrlr *c = &e->ctrlrs[cntlid - 1];
    return c->in_use ? c : NULL;
}

/* The controller a connected qpair belongs to, if the qpair is still registered with it. */
static inline struct emu_ctrlr *ctrlr_of(struct nvmf_emu *e, const struct nvmf_emu_qpair *qp)
{
    struct emu_ctrlr *c = ctrlr_by_cntlid(e, qp->cntlid);
    if (!c || qp->qid > e->o.max_io_queues || c->qps[qp->qid] != qp)
        return NULL;
    return c;
}

static struct emu_ctrlr *ctrlr_alloc(struct nvmf_emu *e)
{
    for (uint32_t n = 0; n < e->o.max_controllers; n++) {
        uint32_t i = (e->next_cntlid_idx + n) % e->o.max_controllers;
        struct emu_ctrlr *c = &e->ctrlrs[i];
        if (!c->in_use) {
            struct nvmf_emu_qpair **qps = c->qps;
            memset(qps, 0, (e->o.max_io_queues + 1u) * sizeof(*qps));
            memset(c, 0, sizeof(*c));
            c->qps = qps;
            c->in_use = true;
            c->cntlid = (uint16_t)(i + 1);
            e->next_cntlid_idx = (i + 1) % e->o.max_controllers;
            return c;
        }
    }
    return NULL;
}

static void ctrlr_attach(struct emu_ctrlr *c, struct nvmf_emu_qpair *qp, uint16_t qid,
                         uint16_t sqsize)
{
    c->qps[qid] = qp;
    c->num_qpairs++;
    qp->connected = true;
    qp->qid = qid;
    qp->cntlid = c->cntlid;
    qp->sqsize = sqsize;
}

/* ---- Fabrics Connect (NVMe-oF 1.1, 3.3) ---------------------------------------------------- */

static int do_connect(struct nvmf_emu *e, struct nvmf_emu_cmd *cmd)
{
    const struct nvmf_connect_sqe *sqe = (const struct nvmf_connect_sqe *)cmd->sqe;
    struct nvmf_emu_qpair *qp = cmd->qp;
    struct nvmf_connect_data d;

    /* A queue is connected once; a second Connect is out of sequence. */
    if (qp->connected)
        return fail(cmd, SC_CMD_SEQUENCE_ERROR, true);
    /* RECFMT 0 is the only record format (3.3, Figure 19). */
    if (sqe->recfmt != 0)
        return fail(cmd, SC_CONNECT_FORMAT, true);
    /* The Connect data is 1024 bytes (3.3, Figure 20): a shorter buffer cannot hold it. */
    if (cmd->length < NVMF_CONNECT_DATA_SIZE ||
        iov_to_buf(cmd, 0, &d, sizeof(d)) != sizeof(d))
        return fail(cmd, SC_DATA_SGL_LENGTH, true);

    uint16_t qid = sqe->qid;
    uint16_t sqsize = sqe->sqsize;
    /* SQSIZE is 0's based; 0 (a one-entry queue) is invalid (3.3, Figure 19). */
    if (sqsize == 0)
        return fail_connect(cmd, SC_CONNECT_INVALID_PARAM, false, IPO_SQE_SQSIZE);
    if ((uint32_t)sqsize + 1u > e->o.max_queue_depth ||
        (qp->max_depth && (uint32_t)sqsize + 1u > qp->max_depth))
        return fail_connect(cmd, SC_CONNECT_INVALID_PARAM, false, IPO_SQE_SQSIZE);

    /* SUBNQN: NUL terminated and a configured subsystem. */
    if (!nul_terminated(d.subnqn, sizeof(d.subnqn)))
        return fail_connect(cmd, SC_CONNECT_INVALID_PARAM, true, IPO_DATA_SUBNQN);
    uint32_t si;
    for (si = 0; si < e->num_subsys; si++)
        if (!strcmp(e->subsys[si].nqn, d.subnqn))
            break;
    if (si == e->num_subsys)
        return fail_connect(cmd, SC_CONNECT_INVALID_PARAM, true, IPO_DATA_SUBNQN);
    struct emu_subsys *s = &e->subsys[si];

    /* HOSTNQN: NUL terminated, non-empty, and allowed by the subsystem. */
    if (!nul_terminated(d.hostnqn, sizeof(d.hostnqn)) || !d.hostnqn[0])
        return fail_connect(cmd, SC_CONNECT_INVALID_PARAM, true, IPO_DATA_HOSTNQN);
    if (s->num_hosts) {
        uint32_t h;
        for (h = 0; h < s->num_hosts; h++)
            if (!strcmp(s->hosts[h], d.hostnqn))
                break;
        if (h == s->num_hosts)
            return fail_connect(cmd, SC_CONNECT_INVALID_HOST, true, IPO_DATA_HOSTNQN);
    }

    if (qid == 0) {
        /* Admin queue, dynamic controller model (4.2): CNTLID must be FFFFh. */
        if (d.cntlid != CNTLID_DYNAMIC)
            return fail_connect(cmd, SC_CONNECT_INVALID_PARAM, true, IPO_DATA_CNTLID);
        struct emu_ctrlr *c = ctrlr_alloc(e);
        /* No controller left to allocate: Connect Controller Busy (3.3, Figure 21).  Not
         * DNR: a slot frees when another association ends. */
        if (!c)
            return fail(cmd, SC_CONNECT_CTRL_BUSY, false);
        c->alive = true;
        c->subsys = si;
        memcpy(c->hostid, d.hostid, sizeof(c->hostid));
        memcpy(c->hostnqn, d.hostnqn, sizeof(c->hostnqn));
        c->kato = sqe->kato ? sqe->kato : e->o.default_kato_ticks;
        c->ka_last = e->now;
        c->nsqa = c->ncqa = (uint16_t)(e->o.max_io_queues - 1u);
        ctrlr_attach(c, qp, 0, sqsize);
        cmd->cdw0 = c->cntlid;     /* CNTLID in bits 15:0 (3.3, Figure 21) */
        return fail(cmd, SC_SUCCESS, false);
    }

    /* I/O queue: CNTLID names a live controller of this subsystem, of this host. */
    struct emu_ctrlr *c = ctrlr_by_cntlid(e, d.cntlid);
    if (!c || !c->alive || c->subsys != si)
        return fail_connect(cmd, SC_CONNECT_INVALID_PARAM, true, IPO_DATA_CNTLID);
    if (strcmp(c->hostnqn, d.hostnqn))
        return fail_connect(cmd, SC_CONNECT_INVALID_PARAM, true, IPO_DATA_HOSTNQN);
    if (memcmp(c->hostid, d.hostid, sizeof(c->hostid)))
        return fail_connect(cmd, SC_CONNECT_INVALID_PARAM, true, IPO_DATA_HOSTID);
    /* I/O queues exist only on an enabled controller (NVMe Base 2.0 3.5.1, NVMe-oF 1.1
     * 3.5.1): before CC.EN = 1 and CSTS.RDY = 1 the Connect is out of sequence. */
    if (!(c->cc & CC_EN) || !(c->csts & CSTS_RDY))
        return fail(cmd, SC_CMD_SEQUENCE_ERROR, true);
    /* QID within the queues granted by Set Features Number of Queues (NVMe Base 2.0
     * 5.21.1.7); SQ and CQ come in pairs on fabrics, so the smaller count rules. */
    uint32_t granted = (uint32_t)(c->nsqa < c->ncqa ? c->nsqa : c->ncqa) + 1u;
    if (qid > granted)
        return fail_connect(cmd, SC_CONNECT_INVALID_PARAM, false, IPO_SQE_QID);
    /* That queue already exists on the controller: out of sequence. */
    if (c->qps[qid])
        return fail(cmd, SC_CMD_SEQUENCE_ERROR, true);
    c->io_queue_created = true;
    ctrlr_attach(c, qp, qid, sqsize);
    cmd->cdw0 = c->cntlid;
    return fail(cmd, SC_SUCCESS, false);
}

/* ---- Property Get / Set (NVMe-oF 1.1, 3.4 / 3.5; registers NVMe Base 2.0, 3.1.3) ---------- */

static uint64_t prop_cap(const struct nvmf_emu *e)
{
    uint64_t cap = 0;
    cap |= (uint64_t)(e->o.max_queue_depth - 1u) & 0xFFFFu;   /* MQES, 0's based */
    cap |= 1ull << 16;                                       /* CQR: contiguous queues */
    /* AMS 18:17 = 0: round robin only */
    cap |= 15ull << 24;                                      /* TO: 7.5 s in 500 ms units */
    /* DSTRD 35:32 = 0, NSSRS 36 = 0 */
    cap |= 1ull << 37;                                       /* CSS bit 0: NVM command set */
    /* MPSMIN 51:48 = 0 and MPSMAX 55:52 = 0: 4 KiB pages only */
    return cap;
}

static int prop_get(struct nvmf_emu *e, struct emu_ctrlr *c, struct nvmf_emu_cmd *cmd)
{
    const struct nvmf_property_sqe *p = (const struct nvmf_property_sqe *)cmd->sqe;
    uint32_t size = p->attrib & 7u;          /* 0: 4 bytes, 1: 8 bytes, others reserved */
    uint64_t v;
    uint32_t need;
    switch (p->ofst) {
    case PROP_CAP:  v = prop_cap(e); need = 8; break;
    case PROP_VS:   v = EMU_VS; need = 4; break;
    case PROP_CC:   v = c->cc; need = 4; break;
    case PROP_CSTS: v = c->csts; need = 4; break;
    default:
        /* INTMS/INTMC/AQA/ASQ/ACQ are reserved on fabrics; NSSR is absent (CAP.NSSRS = 0);
         * CMB and PMR registers are not implemented. */
        return fail(cmd, SC_INVALID_FIELD, true);
    }
    if (size > 1 || (size == 0 ? 4u : 8u) != need)
        return fail(cmd, SC_INVALID_FIELD, true);
    /* The value: CQE bytes 07:00 (3.4, Figure 24). */
    cmd->cdw0 = (uint32_t)v;
    cmd->cdw1 = need == 8 ? (uint32_t)(v >> 32) : 0;
    return fail(cmd, SC_SUCCESS, false);
}

static int prop_set_cc(struct emu_ctrlr *c, struct nvmf_emu_cmd *cmd, uint32_t v)
{
    v &= CC_WRITABLE_MASK;
    uint32_t old = c->cc;
    uint32_t shn = (v >> CC_SHN_SHIFT) & 3u;
    if (v & CC_EN) {
        /* Enabled with what this controller supports (NVMe Base 2.0 3.1.3.5): NVM command
         * set (CSS 000b), 4 KiB pages (MPS 0, CAP.MPSMAX), round robin (AMS 000b), and the
         * entry sizes of Identify SQES/CQES (64 and 16 bytes). */
        if (((v >> CC_CSS_SHIFT) & 7u) != 0 || ((v >> CC_MPS_SHIFT) & 0xFu) != 0 ||
            ((v >> CC_AMS_SHIFT) & 7u) != 0 || ((v >> CC_IOSQES_SHIFT) & 0xFu) != 6 ||
            ((v >> CC_IOCQES_SHIFT) & 0xFu) != 4)
            return fail(cmd, SC_INVALID_FIELD, true);
        /* While enabled, CSS/MPS/AMS may not change (3.1.3.5: modified only while EN=0). */
        if ((old & CC_EN) && ((old ^ v) & 0x00FF3FF0u))
            return fail(cmd, SC_INVALID_FIELD, true);
    }
    c->cc = v;
    /* CSTS.RDY follows CC.EN at once: nothing here takes time. */
    if (v & CC_EN)
        c->csts |= CSTS_RDY;
    else
        c->csts &= ~CSTS_RDY;
    /* A shutdown notification completes at once (SHST 10b); clearing SHN clears SHST. */
    c->csts &= ~(3u << 2);
    if (shn)
        c->csts |= CSTS_SHST_DONE;
    return fail(cmd, SC_SUCCESS, false);
}

static int prop_set(struct emu_ctrlr *c, struct nvmf_emu_cmd *cmd)
{
    const struct nvmf_property_sqe *p = (const struct nvmf_property_sqe *)cmd->sqe;
    uint32_t size = p->attrib & 7u;
    switch (p->ofst) {
    case PROP_CC:
        if (size != 0)
            return fail(cmd, SC_INVALID_FIELD, true);
        return prop_set_cc(c, cmd, (uint32_t)p->value);
    case PROP_CAP:
    case PROP_VS:
    case PROP_CSTS:
    default:
        /* read-only, reserved on fabrics, or not implemented (NSSR: CAP.NSSRS = 0) */
        return fail(cmd, SC_INVALID_FIELD, true);
    }
}

/* ---- Identify (NVMe Base 2.0, 5.17) ----------------------------------------------------------- */

static uint8_t mdts_of(uint32_t max_io_size)
{
    /* units of CAP.MPSMIN (4 KiB), as a power of two; 0 would mean "no limit", so sizes of
     * 4 KiB or less cannot be expressed and report 0. */
    uint8_t n = 0;
    uint32_t pages = max_io_size / 4096u;
    while (pages > 1) {
        pages >>= 1;
        n++;
    }
    return n;
}

static void identify_ctrlr(struct nvmf_emu *e, struct emu_ctrlr *c, uint8_t *id)
{
    char sn[21];
    const struct emu_subsys *s = &e->subsys[c->subsys];
    memset(id, 0, ID_DATA_SIZE);
    put_le16(id + 0, 0);                     /* VID: none (fabrics) */
    put_le16(id + 2, 0);                     /* SSVID */
    /* SN and MN are per subsystem: every controller of it reports the same. */
    snprintf(sn, sizeof(sn), "NVMFEMU%08X", c->subsys + 1u);
    put_ascii(id + 4, 20, sn);
    put_ascii(id + 24, 40, "nvmf-emu RAM controller");
    put_ascii(id + 64, 8, "1.0");
    id[76] = 1u << 1;                        /* CMIC: may have two or more controllers */
    id[77] = mdts_of(e->o.max_io_size);      /* MDTS */
    put_le16(id + 78, c->cntlid);            /* CNTLID */
    put_le32(id + 80, EMU_VS);               /* VER */
    put_le32(id + 96, 1u << 0);              /* CTRATT: 128-bit host identifier */
    id[111] = 1;                             /* CNTRLTYPE: I/O controller */
    id[258] = 3;                             /* ACL: 4 Aborts, 0's based */
    id[260] = 1u << 1 | 1u;                  /* FRMW: one slot, read only */
    put_le16(id + 320, 1);                   /* KAS: 100 ms granularity */
    id[512] = 0x66;                          /* SQES: 64 bytes required and maximum */
    id[513] = 0x44;                          /* CQES: 16 bytes */
    put_le16(id + 514, (uint16_t)(e->o.max_queue_depth > 0xFFFF ? 0xFFFF : e->o.max_queue_depth));
    put_le32(id + 516, e->o.max_namespaces); /* NN */
    id[530] = 1;                             /* NVSCC */
    /* SGLS (Figure 275): bits 1:0 = 01b SGLs supported, bit 2 keyed SGL data block,
     * bit 20 SGL address may be an offset (in-capsule data). */
    uint32_t sgls = 1u | 1u << 2;
    if (e->o.in_capsule_data_size)
        sgls |= 1u << 20;
    put_le32(id + 536, sgls);
    memcpy(id + 768, s->nqn, strlen(s->nqn));/* SUBNQN, NUL padded */
    /* NVMe over Fabrics attributes (NVMe-oF 1.1, 4.4, Figure 30: bytes 2047:1792) */
    put_le32(id + 1792, (64u + e->o.in_capsule_data_size) / 16u);   /* IOCCSZ */
    put_le32(id + 1796, 1);                  /* IORCSZ: 16-byte response capsule */
    put_le16(id + 1800, 0);                  /* ICDOFF: data right after the SQE */
    id[1802] = 0;                            /* FCATT: dynamic controller model */
    id[1803] = (uint8_t)e->o.max_sgl_descriptors;   /* MSDBD */
}

static void identify_ns(struct nvmf_emu *e, uint32_t subsys, uint32_t nsid,
                        const struct emu_ns *ns, uint8_t *id)
{
    memset(id, 0, ID_DATA_SIZE);
    if (!ns)
        return;              /* inactive NSID: zero filled (5.17.2.1, CNS 00h) */
    put_le64(id + 0, ns->num_blocks);        /* NSZE */
    put_le64(id + 8, ns->num_blocks);        /* NCAP */
    put_le64(id + 16, ns->num_blocks);       /* NUSE: RAM is fully allocated */
    id[25] = 0;                              /* NLBAF: one format, 0's based */
    id[26] = 0;                              /* FLBAS: format 0, no metadata */
    id[30] = 1;                              /* NMIC: shared by controllers */
    /* NGUID (104-119): unique and stable for the emulation's lifetime */
    put_le32(id + 104, 0x4E564D45u);        /* "EMVN" */
    put_le32(id + 108, subsys + 1u);
    put_le32(id + 112, nsid);
    put_le32(id + 116, 0x554D4521u);
    put_le32(id + 128, (uint32_t)ns->lbads << 16);   /* LBAF0: MS 0, LBADS, RP 0 */
    (void)e;
}

static int admin_identify(struct nvmf_emu *e, struct emu_ctrlr *c, struct nvmf_emu_cmd *cmd)
{
    const struct nvme_sqe *sqe = cmd->sqe;
    uint8_t cns = (uint8_t)(sqe->cdw10 & 0xFFu);
    uint8_t *id = e->scratch;
    struct emu_subsys *s = &e->subsys[c->subsys];

    switch (cns) {
    case 0x00:
        /* NSID 0, beyond NN, or FFFFFFFFh (no namespace management): Invalid Namespace. */
        if (sqe->nsid < 1 || sqe->nsid > e->o.max_namespaces)
            return fail(cmd, SC_INVALID_NAMESPACE, true);
        break;
    case 0x01:
        break;
    case 0x02:
        /* Active NSID list above NSID; FFFFFFFEh and FFFFFFFFh are invalid here. */
        if (sqe->nsid >= 0xFFFFFFFEu)
            return fail(cmd, SC_INVALID_NAMESPACE, true);
        break;
    default:
        return fail(cmd, SC_INVALID_FIELD, true);
    }
    /* The data structure is 4096 bytes: a shorter buffer is a Data SGL too short (4.6.1.2.1,
     * Data SGL Length Invalid).  A longer one receives the first 4096 bytes. */
    if (cmd->length < ID_DATA_SIZE)
        return fail(cmd, SC_DATA_SGL_LENGTH, true);

    if (cns == 0x01) {
        identify_ctrlr(e, c, id);
    } else if (cns == 0x00) {
        identify_ns(e, c->subsys, sqe->nsid, ns_get(s, &e->o, sqe->nsid), id);
    } else {
        memset(id, 0, ID_DATA_SIZE);
        uint32_t n = 0;
        for (uint32_t nsid = sqe->nsid + 1u; nsid <= e->o.max_namespaces && n < 1024; nsid++)
            if (ns_get(s, &e->o, nsid))
                put_le32(id + 4 * n++, nsid);
    }
    if (buf_to_iov(cmd, 0, id, ID_DATA_SIZE) != ID_DATA_SIZE)
        return fail(cmd, SC_DATA_SGL_LENGTH, true);
    return fail(cmd, SC_SUCCESS, false);
}

/* ---- Features (NVMe Base 2.0, 5.15 Get / 5.21 Set) --------------------------------------------- */

static int admin_set_features(struct nvmf_emu *e, struct emu_ctrlr *c, struct nvmf_emu_cmd *cmd)
{
    const struct nvme_sqe *sqe = cmd->sqe;
    uint8_t fid = (uint8_t)(sqe->cdw10 & 0xFFu);
    bool sv = (sqe->cdw10 >> 31) & 1u;
    switch (fid) {
    case FID_NUMBER_OF_QUEUES: {
        /* Nothing is saveable (ONCS bit 4 = 0): SV gives Feature Identifier Not Saveable. */
        if (sv)
            return fail(cmd, SC_FEATURE_NOT_SAVEABLE, true);
        /* After any I/O queue exists: Command Sequence Error (5.21.1.7). */
        if (c->io_queue_created)
            return fail(cmd, SC_CMD_SEQUENCE_ERROR, true);
        uint32_t nsqr = sqe->cdw11 & 0xFFFFu, ncqr = sqe->cdw11 >> 16;
        /* 65535 (65536 queues) is invalid (5.21.1.7). */
        if (nsqr == 0xFFFFu || ncqr == 0xFFFFu)
            return fail(cmd, SC_INVALID_FIELD, true);
        uint32_t max = e->o.max_io_queues - 1u;   /* 0's based */
        c->nsqa = (uint16_t)(nsqr < max ? nsqr : max);
        c->ncqa = (uint16_t)(ncqr < max ? ncqr : max);
        cmd->cdw0 = (uint32_t)c->ncqa << 16 | c->nsqa;
        return fail(cmd, SC_SUCCESS, false);
    }
    case FID_KEEP_ALIVE_TIMER:
        if (sv)
            return fail(cmd, SC_FEATURE_NOT_SAVEABLE, true);
        c->kato = sqe->cdw11;               /* KATO in ms; 0 disables */
        c->ka_last = e->now;
        return fail(cmd, SC_SUCCESS, false);
    default:
        return fail(cmd, SC_INVALID_FIELD, true);
    }
}

static int admin_get_features(struct nvmf_emu *e, struct emu_ctrlr *c, struct nvmf_emu_cmd *cmd)
{
    const struct nvme_sqe *sqe = cmd->sqe;
    uint8_t fid = (uint8_t)(sqe->cdw10 & 0xFFu);
    uint32_t sel = (sqe->cdw10 >> 8) & 7u;   /* 0 current, 1 default, 2 saved, 3 capabilities */
    uint32_t max = e->o.max_io_queues - 1u;
    if (sel > 3)
        return fail(cmd, SC_INVALID_FIELD, true);
    switch (fid) {
    case FID_NUMBER_OF_QUEUES:
        if (sel == 3)
            cmd->cdw0 = 1u << 2;            /* changeable, not saveable, not per namespace */
        else if (sel == 0)
            cmd->cdw0 = (uint32_t)c->ncqa << 16 | c->nsqa;
        else                                 /* default; saved is default (nothing saved) */
            cmd->cdw0 = max << 16 | max;
        return fail(cmd, SC_SUCCESS, false);
    case FID_KEEP_ALIVE_TIMER:
        if (sel == 3)
            cmd->cdw0 = 1u << 2;
        else if (sel == 0)
            cmd->cdw0 = c->kato;
        else
            cmd->cdw0 = e->o.default_kato_ticks;
        return fail(cmd, SC_SUCCESS, false);
    default:
        return fail(cmd, SC_INVALID_FIELD, true);
    }
}

static int exec_admin(struct nvmf_emu *e, struct emu_ctrlr *c, struct nvmf_emu_cmd *cmd)
{
    /* Keep alive (3.9 / 5.25): every command the admin queue executes restarts the timer
     * (the choice ctrlr.h documents; TBKAS is not claimed). */
    c->ka_last = e->now;
    switch (cmd->sqe->opc) {
    case OPC_ADMIN_IDENTIFY:
        return admin_identify(e, c, cmd);
    case OPC_ADMIN_SET_FEATURES:
        return admin_set_features(e, c, cmd);
    case OPC_ADMIN_GET_FEATURES:
        return admin_get_features(e, c, cmd);
    case OPC_ADMIN_KEEP_ALIVE:
        return fail(cmd, SC_SUCCESS, false);
    case OPC_ADMIN_ABORT:
        /* 5.1: CQE Dword 0 bit 0 set = the command was not aborted; a controller may
         * always answer so (abort is best effort). */
        cmd->cdw0 = 1;
        return fail(cmd, SC_SUCCESS, false);
    default:
        /* Create/Delete I/O queue are not used on fabrics; Get Log Page, AER and the rest
         * are not implemented; I/O opcodes do not belong here. */
        return fail(cmd, SC_INVALID_OPCODE, true);
    }
}

/* ---- the block device ------------------------------------------------------------------------- */

static void io_execute(struct emu_io *io, uint16_t status)
{
    struct nvmf_emu_cmd *cmd = io->cmd;
    cmd->cdw0 = 0;
    cmd->cdw1 = 0;
    if (!status)
        status = io->injected;
    if (status) {
        /* an error the media reported: may succeed on retry */
        cmd->status = status;
        cmd->dnr = false;
        return;
    }
    if (io->opc == OPC_IO_WRITE)
        iov_to_buf(cmd, 0, io->ns->data + io->offset, io->length);
    else if (io->opc == OPC_IO_READ)
        buf_to_iov(cmd, 0, io->ns->data + io->offset, io->length);
    cmd->status = SC_SUCCESS;
    cmd->dnr = false;
}

static int exec_io(struct nvmf_emu *e, struct emu_ctrlr *c, struct nvmf_emu_cmd *cmd)
{
    const struct nvme_sqe *sqe = cmd->sqe;
    uint8_t opc = sqe->opc;
    if (opc != OPC_IO_FLUSH && opc != OPC_IO_WRITE && opc != OPC_IO_READ)
        return fail(cmd, SC_INVALID_OPCODE, true);
    /* After a controller reset (CC.EN cleared) I/O queues are no longer usable. */
    if (!(c->cc & CC_EN))
        return fail(cmd, SC_CMD_SEQUENCE_ERROR, true);
    struct emu_ns *ns = ns_get(&e->subsys[c->subsys], &e->o, sqe->nsid);
    if (!ns)   /* includes FFFFFFFFh: VWC = 0 claims no broadcast flush */
        return fail(cmd, SC_INVALID_NAMESPACE, true);
    if (!ns->ready)
        return fail(cmd, SC_NS_NOT_READY, false);

    uint64_t offset = 0;
    uint32_t length = 0;
    if (opc != OPC_IO_FLUSH) {
        uint64_t slba = (uint64_t)sqe->cdw11 << 32 | sqe->cdw10;
        uint64_t nlb = (uint64_t)(sqe->cdw12 & 0xFFFFu) + 1u;   /* 0's based */
        if (slba >= ns->num_blocks || nlb > ns->num_blocks - slba)
            return fail(cmd, SC_LBA_OUT_OF_RANGE, true);
        uint64_t bytes = nlb * ns->block_size;
        /* Larger than MDTS: Invalid Field in Command (5.17.2.1, MDTS). */
        if (bytes > e->o.max_io_size)
            return fail(cmd, SC_INVALID_FIELD, true);
        /* SGLS bit 17 = 0: the data SGL must describe exactly the transfer. */
        if (cmd->length != bytes)
            return fail(cmd, SC_DATA_SGL_LENGTH, true);
        offset = slba * ns->block_size;
        length = (uint32_t)bytes;
    }

    struct emu_io io = {
        .cmd = cmd, .ns = ns, .offset = offset, .length = length, .opc = opc, .injected = 0,
    };
    if (e->inject_count) {
        e->inject_count--;
        io.injected = e->inject_status;
    }
    if (e->auto_complete) {
        io_execute(&io, 0);
        return NVMF_EMU_DONE;
    }
    if (e->num_ios >= e->cap_ios)
        return fail(cmd, SC_INTERNAL_ERROR, false);   /* cannot happen within the limits */
    e->ios[e->num_ios++] = io;
    return NVMF_EMU_ASYNC;
}

uint32_t nvmf_emu_bdev_pending(const struct nvmf_emu *e)
{
    return e->num_ios;
}

int nvmf_emu_bdev_complete(struct nvmf_emu *e, uint32_t index, uint16_t status)
{
    if (!e->num_ios)
        return -1;
    index %= e->num_ios;
    struct emu_io io = e->ios[index];
    memmove(&e->ios[index], &e->ios[index + 1], (e->num_ios - index - 1u) * sizeof(*e->ios));
    e->num_ios--;
    io_execute(&io, status);
    if (e->cb.io_complete)
        e->cb.io_complete(e->cb.ctx, io.cmd);
    return 0;
}

void nvmf_emu_bdev_set_auto(struct nvmf_emu *e, bool on)
{
    e->auto_complete = on;
}

int nvmf_emu_bdev_inject_error(struct nvmf_emu *e, uint32_t count, uint16_t status)
{
    if (count && !status) {
        emu_set_err(e, "an injected error needs a non-zero status");
        return -1;
    }
    e->inject_count = count;
    e->inject_status = status;
    return 0;
}

int nvmf_emu_cancel(struct nvmf_emu *e, struct nvmf_emu_cmd *cmd)
{
    for (uint32_t i = 0; i < e->num_ios; i++) {
        if (e->ios[i].cmd == cmd) {
            memmove(&e->ios[i], &e->ios[i + 1], (e->num_ios - i - 1u) * sizeof(*e->ios));
            e->num_ios--;
            return 1;
        }
    }
    return 0;
}

/* ---- commands --------------------------------------------------------------------------------- */

int nvmf_emu_exec(struct nvmf_emu *e, struct nvmf_emu_cmd *cmd)
{
    cmd->status = SC_SUCCESS;
    cmd->dnr = false;
    cmd->cdw0 = 0;
    cmd->cdw1 = 0;
    if (!cmd->sqe || !cmd->qp)
        return fail(cmd, SC_INTERNAL_ERROR, true);
    const struct nvme_sqe *sqe = cmd->sqe;
    struct nvmf_emu_qpair *qp = cmd->qp;

    /* Fused operations are not supported (FUSES = 0): FUSE must be 00b (4.1, Figure 88). */
    if (sqe->fuse_psdt & 3u)
        return fail(cmd, SC_INVALID_FIELD, true);

    uint8_t fctype = ((const struct nvmf_fabric_sqe *)sqe)->fctype;
    if (sqe->opc == OPC_FABRICS && fctype == FCTYPE_CONNECT)
        return do_connect(e, cmd);

    /* Before a successful Connect only Connect is accepted (NVMe-oF 1.1, 3.3). */
    if (!qp->connected)
        return fail(cmd, SC_CMD_SEQUENCE_ERROR, true);
    struct emu_ctrlr *c = ctrlr_of(e, qp);
    if (!c)
        return fail(cmd, SC_CMD_SEQUENCE_ERROR, true);
    if (!c->alive)   /* the association ended: keep alive expiry or the admin queue gone */
        return fail(cmd, c->kato_expired ? SC_KATO_EXPIRED : SC_ABORTED_SQ_DELETION, false);

    if (sqe->opc == OPC_FABRICS) {
        /* Property Get/Set are admin queue commands (3.4/3.5); unknown FCTYPE: invalid. */
        if (qp->qid != 0)
            return fail(cmd, SC_INVALID_OPCODE, true);
        c->ka_last = e->now;
        if (fctype == FCTYPE_PROPERTY_GET)
            return prop_get(e, c, cmd);
        if (fctype == FCTYPE_PROPERTY_SET)
            return prop_set(c, cmd);
        return fail(cmd, SC_INVALID_OPCODE, true);
    }
    if (qp->qid == 0)
        return exec_admin(e, c, cmd);
    return exec_io(e, c, cmd);
}

void nvmf_emu_qpair_gone(struct nvmf_emu *e, struct nvmf_emu_qpair *qp)
{
    if (!qp || !qp->connected)
        return;
    struct emu_ctrlr *c = ctrlr_of(e, qp);
    qp->connected = false;
    if (!c)
        return;
    c->qps[qp->qid] = NULL;
    c->num_qpairs--;
    if (qp->qid == 0)
        c->alive = false;    /* the admin queue carries the association */
    if (c->num_qpairs == 0)
        c->in_use = false;   /* no qpair refers to this CNTLID any more: reusable */
}

/* ---- time ------------------------------------------------------------------------------------- */

int nvmf_emu_advance_time(struct nvmf_emu *e, uint64_t ticks)
{
    int reported = 0;
    e->now += ticks;
    for (uint32_t i = 0; i < e->o.max_controllers; i++) {
        struct emu_ctrlr *c = &e->ctrlrs[i];
        if (!c->in_use || !c->alive || !c->kato)
            continue;
        if (e->now - c->ka_last > c->kato) {
            /* Keep Alive Timer expired (3.9): the controller stops processing commands,
             * reports a fatal status, and the host must reconnect. */
            c->alive = false;
            c->kato_expired = true;
            c->csts |= CSTS_CFS;
            reported++;
            if (e->cb.ctrlr_fatal)
                e->cb.ctrlr_fatal(e->cb.ctx, c->cntlid);
        }
    }
    return reported;
}

uint64_t nvmf_emu_now(const struct nvmf_emu *e)
{
    return e->now;
}
