/*
 * device.c — libibverbs' device layer: the device list, contexts and their async events,
 * device and port queries, completion channels.  PDs and MRs are in memory.c.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sv_internal.h"

/* The fds we hand out are eventfds kept at "readable iff something is queued": written
 * once when a queue becomes non-empty, drained when it becomes empty.  We never read one
 * that is not readable, so a blocking fd never blocks us. */
void sv__fd_signal(int fd)
{
    uint64_t one = 1;
    if (fd >= 0 && write(fd, &one, sizeof one) < 0) {
        /* cannot fail short of a counter overflow, which our protocol never reaches */
    }
}

void sv__fd_drain(int fd)
{
    uint64_t v;
    if (fd >= 0 && read(fd, &v, sizeof v) < 0) {
        /* only called when readable */
    }
}

static struct sv_dev *dev_of(struct ibv_device *device)
{
    return device ? sv_container_of(device, struct sv_dev, ibdev) : NULL;
}

static struct sv_ctx *ctx_of(struct ibv_context *c) { return (struct sv_ctx *)c; }

int sv__dev_usable(struct sv_fabric *f, struct sv_ctx *c, const char *what)
{
    if (c->dev && c->dev->removed) {
        sv__err(f, "%s: device %s was removed", what, c->dev->attr.name);
        errno = ENODEV;
        return 0;
    }
    return 1;
}

/* ---- the device list ---------------------------------------------------------------------- */

struct ibv_device **ibv_get_device_list(int *num_devices)
{
    struct sv_fabric *f = sv__fabric();
    if (!f) {
        errno = ENOMEM;
        return NULL;
    }
    struct ibv_device **l = calloc((size_t)f->ndev + 1, sizeof *l);
    if (!l) {
        errno = ENOMEM;
        return NULL;
    }
    for (int i = 0; i < f->ndev; i++)
        l[i] = &f->devs[i]->ibdev;
    if (num_devices)
        *num_devices = f->ndev;
    return l;
}

void ibv_free_device_list(struct ibv_device **list) { free(list); }

const char *ibv_get_device_name(struct ibv_device *device)
{
    return device ? device->name : NULL;
}

/* A made-up OUI and the device index: stable across runs. */
__be64 ibv_get_device_guid(struct ibv_device *device)
{
    struct sv_dev *d = dev_of(device);
    return htobe64(0x5356000000000000ull | (uint64_t)(d ? d->index + 1 : 0));
}

int ibv_get_device_index(struct ibv_device *device)
{
    struct sv_dev *d = dev_of(device);
    return d ? d->index : -1;
}

int ibv_fork_init(void) { return 0; }

/* ---- contexts ------------------------------------------------------------------------------- */

struct sv_ctx *sv__ctx_open(struct sv_dev *d, struct sv_fabric *f, int lib_owned)
{
    struct sv_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ctx.async_fd = eventfd(0, EFD_CLOEXEC);
    if (c->ctx.async_fd < 0) {
        free(c);
        return NULL;
    }
    c->ctx.device = d ? &d->ibdev : NULL;
    c->ctx.ops = sv__ops;
    c->ctx.cmd_fd = -1;
    c->ctx.num_comp_vectors = 1;
    c->ctx.abi_compat = NULL;    /* not __VERBS_ABI_IS_EXTENDED: verbs_get_ctx() is NULL */
    c->f = f;
    c->dev = d;
    c->lib_owned = lib_owned;
    sv__obj_add(f, &c->obj, SV_K_CTX, !lib_owned);
    return c;
}

void sv__ctx_free(struct sv_ctx *c)
{
    if (c->ctx.async_fd >= 0)
        close(c->ctx.async_fd);
    free(c->aq);
    free(c);
}

/* The CM's context for a device: one per device, opened on first use, kept for the
 * fabric's life (librdmacm likewise keeps its device contexts open). */
struct sv_ctx *sv__cm_ctx(struct sv_dev *d)
{
    if (!d->cm_ctx)
        d->cm_ctx = sv__ctx_open(d, d->f, 1);
    return d->cm_ctx;
}

struct ibv_context *ibv_open_device(struct ibv_device *device)
{
    struct sv_dev *d = dev_of(device);
    if (!d) {
        errno = EINVAL;
        return NULL;
    }
    if (d->removed) {
        sv__err(d->f, "ibv_open_device: device %s was removed", d->attr.name);
        errno = ENODEV;
        return NULL;
    }
    struct sv_ctx *c = sv__ctx_open(d, d->f, 0);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    return &c->ctx;
}

int ibv_close_device(struct ibv_context *context)
{
    struct sv_ctx *c = ctx_of(context);
    if (!c)
        return EINVAL;
    if (c->lib_owned) {
        sv__err(c->f, "ibv_close_device: the context belongs to the CM (rdma_get_devices)");
        return EINVAL;
    }
    if (c->nchildren) {
        /* Freeing it would leave its PDs/CQs pointing at freed memory. */
        sv__err(c->f, "ibv_close_device: %u objects still open on the context", c->nchildren);
        return EBUSY;
    }
    struct sv_fabric *f = c->f;
    sv__obj_del(f, &c->obj);
    sv__ctx_free(c);
    return 0;
}

/* ---- queries ----------------------------------------------------------------------------- */

int ibv_query_device(struct ibv_context *context, struct ibv_device_attr *a)
{
    struct sv_ctx *c = ctx_of(context);
    if (!c || !a || !c->dev)
        return EINVAL;
    const struct sv_device_attr *s = &c->dev->attr;
    memset(a, 0, sizeof *a);
    snprintf(a->fw_ver, sizeof a->fw_ver, "simverbs 1.0");
    a->node_guid = ibv_get_device_guid(&c->dev->ibdev);
    a->sys_image_guid = a->node_guid;
    a->max_mr_size = s->max_mr_size;
    a->page_size_cap = 0xFFFFF000u;
    a->vendor_id = 0x5356;
    a->vendor_part_id = 1;
    a->hw_ver = 1;
    a->max_qp = (int)s->max_qp;
    a->max_qp_wr = (int)s->max_qp_wr;
    a->device_cap_flags = s->device_cap_flags;
    a->max_sge = (int)s->max_sge;
    a->max_sge_rd = (int)s->max_sge;
    a->max_cq = (int)s->max_cq;
    a->max_cqe = (int)s->max_cqe;
    a->max_mr = (int)s->max_mr;
    a->max_pd = (int)s->max_pd;
    a->max_qp_rd_atom = (int)s->max_qp_rd_atom;
    a->max_res_rd_atom = (int)(s->max_qp_rd_atom * s->max_qp);
    a->max_qp_init_rd_atom = (int)s->max_qp_init_rd_atom;
    a->atomic_cap = IBV_ATOMIC_NONE;
    a->max_srq = (int)s->max_srq;
    a->max_srq_wr = (int)s->max_srq_wr;
    a->max_srq_sge = (int)s->max_srq_sge;
    a->max_pkeys = 1;
    a->local_ca_ack_delay = 16;
    a->phys_port_cnt = 1;
    return 0;
}

static enum ibv_mtu mtu_enum(uint32_t bytes)
{
    switch (bytes) {
    case 256: return IBV_MTU_256;
    case 512: return IBV_MTU_512;
    case 1024: return IBV_MTU_1024;
    case 2048: return IBV_MTU_2048;
    default: return IBV_MTU_4096;
    }
}

/* verbs.h makes ibv_query_port a macro over an inline that zeroes a whole ibv_port_attr
 * and calls this; the parentheses keep the macro from expanding here.  We fill only the
 * fields of the old (compat) layout, which every caller's struct begins with. */
int(ibv_query_port)(struct ibv_context *context, uint8_t port_num,
                    struct _compat_ibv_port_attr *port_attr)
{
    struct sv_ctx *c = ctx_of(context);
    if (!c || !port_attr || !c->dev || port_num != 1)
        return EINVAL;
    struct ibv_port_attr *p = (struct ibv_port_attr *)(void *)port_attr;
    const struct sv_dev *d = c->dev;
    p->state = d->port_up ? IBV_PORT_ACTIVE : IBV_PORT_DOWN;
    p->max_mtu = mtu_enum(d->attr.port_mtu);
    p->active_mtu = p->max_mtu;
    p->gid_tbl_len = 1;
    p->port_cap_flags = 0;
    p->max_msg_sz = 0x80000000u;
    p->bad_pkey_cntr = 0;
    p->qkey_viol_cntr = 0;
    p->pkey_tbl_len = 1;
    p->lid = 0;                  /* RoCE: no LIDs */
    p->sm_lid = 0;
    p->lmc = 0;
    p->max_vl_num = 1;
    p->sm_sl = 0;
    p->subnet_timeout = 0;
    p->init_type_reply = 0;
    p->active_width = 2;         /* 4x */
    p->active_speed = 32;        /* EDR-like */
    p->phys_state = d->port_up ? 5 : 3;   /* LinkUp : Disabled */
    p->link_layer = IBV_LINK_LAYER_ETHERNET;
    return 0;
}

/* RoCE v2 style: the IPv4-mapped address of the device. */
int ibv_query_gid(struct ibv_context *context, uint8_t port_num, int index, union ibv_gid *gid)
{
    struct sv_ctx *c = ctx_of(context);
    if (!c || !gid || !c->dev || port_num != 1 || index != 0)
        return -1;
    memset(gid, 0, sizeof *gid);
    gid->raw[10] = 0xFF;
    gid->raw[11] = 0xFF;
    uint32_t ip = c->dev->ipv4;
    memcpy(&gid->raw[12], &ip, 4);
    return 0;
}

int ibv_query_pkey(struct ibv_context *context, uint8_t port_num, int index, __be16 *pkey)
{
    struct sv_ctx *c = ctx_of(context);
    if (!c || !pkey || !c->dev || port_num != 1 || index != 0)
        return -1;
    *pkey = htons(0xFFFF);
    return 0;
}

/* ---- async events -------------------------------------------------------------------------- */

void sv__async(struct sv_ctx *c, enum ibv_event_type type, void *elem)
{
    if (!c || c->lib_owned == 2)
        return;
    if (c->aq_len == c->aq_cap) {
        uint32_t n = c->aq_cap ? c->aq_cap * 2 : 8;
        struct ibv_async_event *q = malloc((size_t)n * sizeof *q);
        if (!q)
            return;
        for (uint32_t i = 0; i < c->aq_len; i++)
            q[i] = c->aq[(c->aq_head + i) % c->aq_cap];
        free(c->aq);
        c->aq = q;
        c->aq_cap = n;
        c->aq_head = 0;
    }
    struct ibv_async_event *e = &c->aq[(c->aq_head + c->aq_len) % c->aq_cap];
    memset(e, 0, sizeof *e);
    e->event_type = type;
    switch (type) {
    case IBV_EVENT_PORT_ERR:
    case IBV_EVENT_PORT_ACTIVE:
    case IBV_EVENT_LID_CHANGE:
    case IBV_EVENT_PKEY_CHANGE:
    case IBV_EVENT_SM_CHANGE:
    case IBV_EVENT_CLIENT_REREGISTER:
    case IBV_EVENT_GID_CHANGE:
        e->element.port_num = 1;
        break;
    case IBV_EVENT_CQ_ERR:
        e->element.cq = elem;
        break;
    case IBV_EVENT_SRQ_ERR:
    case IBV_EVENT_SRQ_LIMIT_REACHED:
        e->element.srq = elem;
        break;
    case IBV_EVENT_DEVICE_FATAL:
        break;
    default:
        e->element.qp = elem;
        break;
    }
    if (c->aq_len++ == 0)
        sv__fd_signal(c->ctx.async_fd);
    c->f->st.async_events++;
}

/* An object is going away: its queued events would hand the program a freed pointer. */
void sv__async_purge(struct sv_ctx *c, const void *elem)
{
    if (!c || !c->aq_len)
        return;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < c->aq_len; i++) {
        struct ibv_async_event e = c->aq[(c->aq_head + i) % c->aq_cap];
        int ported = e.event_type == IBV_EVENT_PORT_ERR || e.event_type == IBV_EVENT_PORT_ACTIVE ||
                     e.event_type == IBV_EVENT_DEVICE_FATAL || e.event_type == IBV_EVENT_LID_CHANGE ||
                     e.event_type == IBV_EVENT_PKEY_CHANGE || e.event_type == IBV_EVENT_SM_CHANGE ||
                     e.event_type == IBV_EVENT_CLIENT_REREGISTER || e.event_type == IBV_EVENT_GID_CHANGE;
        if (!ported && (const void *)e.element.qp == elem) {
            c->f->st.dropped_events++;
            continue;
        }
        c->aq[(c->aq_head + kept) % c->aq_cap] = e;
        kept++;
    }
    if (kept == 0 && c->aq_len)
        sv__fd_drain(c->ctx.async_fd);
    c->aq_len = kept;
}

/* There are no threads to wait for: an empty queue is EAGAIN whether the fd blocks or not. */
int ibv_get_async_event(struct ibv_context *context, struct ibv_async_event *event)
{
    struct sv_ctx *c = ctx_of(context);
    if (!c || !event) {
        errno = EINVAL;
        return -1;
    }
    if (!c->aq_len) {
        errno = EAGAIN;
        return -1;
    }
    *event = c->aq[c->aq_head];
    c->aq_head = (c->aq_head + 1) % c->aq_cap;
    if (--c->aq_len == 0)
        sv__fd_drain(c->ctx.async_fd);
    return 0;
}

void ibv_ack_async_event(struct ibv_async_event *event) { (void)event; }

/* ---- completion channels ------------------------------------------------------------------- */

struct ibv_comp_channel *ibv_create_comp_channel(struct ibv_context *context)
{
    struct sv_ctx *c = ctx_of(context);
    if (!c) {
        errno = EINVAL;
        return NULL;
    }
    struct sv_compch *ch = calloc(1, sizeof *ch);
    if (!ch) {
        errno = ENOMEM;
        return NULL;
    }
    ch->ch.fd = eventfd(0, EFD_CLOEXEC);
    if (ch->ch.fd < 0) {
        free(ch);
        return NULL;
    }
    ch->ch.context = context;
    ch->ch.refcnt = 0;
    ch->ctx = c;
    sv_list_init(&ch->evq);
    c->nchildren++;
    sv__obj_add(c->f, &ch->obj, SV_K_COMPCH, 1);
    return &ch->ch;
}

void sv__compch_free(struct sv_compch *ch)
{
    if (ch->ch.fd >= 0)
        close(ch->ch.fd);
    free(ch);
}

int ibv_destroy_comp_channel(struct ibv_comp_channel *channel)
{
    struct sv_compch *ch = (struct sv_compch *)channel;
    if (!ch)
        return EINVAL;
    if (ch->refs) {
        sv__err(ch->ctx->f, "ibv_destroy_comp_channel: %u CQs still use it", ch->refs);
        return EBUSY;
    }
    ch->ctx->nchildren--;
    sv__obj_del(ch->ctx->f, &ch->obj);
    sv__compch_free(ch);
    return 0;
}

int ibv_get_cq_event(struct ibv_comp_channel *channel, struct ibv_cq **cq, void **cq_context)
{
    struct sv_compch *ch = (struct sv_compch *)channel;
    if (!ch || !cq || !cq_context) {
        errno = EINVAL;
        return -1;
    }
    if (ch->ctx->f->autoprogress)
        sv__progress_all(ch->ctx->f);
    if (sv_list_empty(&ch->evq)) {
        errno = EAGAIN;          /* no threads: an empty channel never blocks */
        return -1;
    }
    struct sv_cq *c = sv_container_of(ch->evq.next, struct sv_cq, evlink);
    sv_list_del(&c->evlink);
    c->ev_queued = 0;
    if (sv_list_empty(&ch->evq))
        sv__fd_drain(ch->ch.fd);
    *cq = &c->cq;
    *cq_context = c->cq.cq_context;
    return 0;
}

void ibv_ack_cq_events(struct ibv_cq *cq, unsigned int nevents)
{
    if (cq)
        cq->comp_events_completed += nevents;
}
