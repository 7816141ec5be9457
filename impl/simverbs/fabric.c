/*
 * fabric.c — the fabric: its devices, its object registry, the QP and MR number tables,
 * statistics, and the current-fabric pointer.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "sv_internal.h"

/* The one piece of process-wide state.  Verbs calls that take no object
 * (ibv_get_device_list, rdma_create_event_channel, rdma_get_devices) must find a fabric
 * somewhere; every other call reaches its fabric through the object it is given. */
static struct sv_fabric *sv_current;

void sv__err(struct sv_fabric *f, const char *fmt, ...)
{
    if (!f)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->err, sizeof f->err, fmt, ap);
    va_end(ap);
}

const char *sv_error(const struct sv_fabric *f)
{
    return f ? f->err : "no fabric";
}

void sv_device_attr_default(struct sv_device_attr *a)
{
    memset(a, 0, sizeof *a);
    a->max_mr_size = UINT64_MAX;   /* what mlx5 and rxe report: no limit below the address space */
    a->max_qp = 1024;
    a->max_qp_wr = 4096;
    a->max_sge = 16;
    a->max_cq = 1024;
    a->max_cqe = 65536;
    a->max_mr = 65536;
    a->max_pd = 256;
    a->max_qp_rd_atom = 16;
    a->max_qp_init_rd_atom = 16;
    a->max_srq = 256;
    a->max_srq_wr = 4096;
    a->max_srq_sge = 16;
    a->device_cap_flags = IBV_DEVICE_RC_RNR_NAK_GEN | IBV_DEVICE_SRQ_RESIZE |
                          IBV_DEVICE_RESIZE_MAX_WR | IBV_DEVICE_PORT_ACTIVE_EVENT;
    a->port_mtu = 4096;
}

struct sv_fabric *sv_fabric_create(void)
{
    struct sv_fabric *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    sv_list_init(&f->objs);
    sv_list_init(&f->hold);
    sv_list_init(&f->got);
    sv_list_init(&f->ids);
    f->next_port = SV_EPHEMERAL_PORT;
    f->next_handle = 1;
    sv_current = f;
    return f;
}

void sv_fabric_set_current(struct sv_fabric *f) { sv_current = f; }
struct sv_fabric *sv_fabric_current(void) { return sv_current; }
void sv_fabric_set_autoprogress(struct sv_fabric *f, int on)
{
    if (f)
        f->autoprogress = !!on;
}

/* An unmodified verbs program never builds a fabric: give it one device with the default
 * attributes, and run every posted WR whenever it polls, so it behaves like a real RNIC. */
struct sv_fabric *sv__fabric(void)
{
    if (!sv_current) {
        struct sv_fabric *f = sv_fabric_create();
        if (!f)
            return NULL;
        if (sv_device_add(f, NULL) < 0) {
            sv_fabric_destroy(f);
            return NULL;
        }
        f->autoprogress = 1;
    }
    return sv_current;
}

static void free_raw(struct sv_obj *o)
{
    switch (o->kind) {
    case SV_K_CTX: sv__ctx_free(sv_container_of(o, struct sv_ctx, obj)); break;
    case SV_K_PD: sv__pd_free(sv_container_of(o, struct sv_pd, obj)); break;
    case SV_K_MR: sv__mr_free(sv_container_of(o, struct sv_mr, obj)); break;
    case SV_K_CQ: sv__cq_free(sv_container_of(o, struct sv_cq, obj)); break;
    case SV_K_QP: sv__qp_free(sv_container_of(o, struct sv_qp, obj)); break;
    case SV_K_SRQ: sv__srq_free(sv_container_of(o, struct sv_srq, obj)); break;
    case SV_K_COMPCH: sv__compch_free(sv_container_of(o, struct sv_compch, obj)); break;
    case SV_K_CHAN: sv__chan_free(sv_container_of(o, struct sv_chan, obj)); break;
    case SV_K_ID: sv__id_free(sv_container_of(o, struct sv_id, obj)); break;
    case SV_K_HOST: sv__host_free(sv_container_of(o, struct sv_hconn, obj)); break;
    default: break;
    }
}

void sv_fabric_destroy(struct sv_fabric *f)
{
    if (!f)
        return;
    f->st.leaked_objects = f->st.live_objects;
    /* Events first: they point at ids but own nothing else. */
    while (!sv_list_empty(&f->hold)) {
        struct sv_cmev *e = sv_container_of(f->hold.next, struct sv_cmev, link);
        sv_list_del(&e->link);
        sv__cmev_free(e);
    }
    while (!sv_list_empty(&f->got)) {
        struct sv_cmev *e = sv_container_of(f->got.next, struct sv_cmev, link);
        sv_list_del(&e->link);
        sv__cmev_free(e);
    }
    /* Newest first, each object freeing only its own memory: parents outlive children
     * in the list, and nothing dereferences a neighbour. */
    while (!sv_list_empty(&f->objs)) {
        struct sv_obj *o = sv_container_of(f->objs.prev, struct sv_obj, link);
        sv_list_del(&o->link);
        free_raw(o);
    }
    for (int d = 0; d < f->ndev; d++)
        free(f->devs[d]);
    free(f->qps);
    free(f->qp_gen);
    free(f->qp_free);
    free(f->mrs);
    free(f->mr_gen);
    free(f->mr_free);
    free(f->hosts);
    if (sv_current == f)
        sv_current = NULL;
    free(f);
}

uint32_t sv_device_ipv4(int dev)
{
    return htonl(0x0A000000u | (uint32_t)(dev + 1));
}

static int mtu_ok(uint32_t m)
{
    return m == 256 || m == 512 || m == 1024 || m == 2048 || m == 4096;
}

int sv_device_add(struct sv_fabric *f, const struct sv_device_attr *attr)
{
    if (!f)
        return -EINVAL;
    if (f->ndev >= SV_MAX_DEVICES) {
        sv__err(f, "sv_device_add: at most %d devices", SV_MAX_DEVICES);
        return -ENOSPC;
    }
    struct sv_device_attr a;
    if (attr)
        a = *attr;
    else
        sv_device_attr_default(&a);
    if (!mtu_ok(a.port_mtu)) {
        sv__err(f, "sv_device_add: port_mtu %u is not 256, 512, 1024, 2048 or 4096", a.port_mtu);
        return -EINVAL;
    }
    if (memchr(a.name, 0, sizeof a.name) == NULL) {
        sv__err(f, "sv_device_add: name is not NUL-terminated");
        return -EINVAL;
    }
    struct sv_dev *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    int i = f->ndev;
    if (!a.name[0])
        snprintf(a.name, sizeof a.name, "simverbs%d", i);
    d->f = f;
    d->index = i;
    d->ipv4 = sv_device_ipv4(i);
    d->attr = a;
    d->port_up = 1;
    d->ibdev.node_type = IBV_NODE_CA;
    d->ibdev.transport_type = IBV_TRANSPORT_IB;
    snprintf(d->ibdev.name, sizeof d->ibdev.name, "%s", a.name);
    snprintf(d->ibdev.dev_name, sizeof d->ibdev.dev_name, "uverbs%d", i);
    snprintf(d->ibdev.dev_path, sizeof d->ibdev.dev_path, "/sys/class/infiniband_verbs/uverbs%d", i);
    snprintf(d->ibdev.ibdev_path, sizeof d->ibdev.ibdev_path, "/sys/class/infiniband/%s", a.name);
    f->devs[i] = d;
    f->ndev = i + 1;
    return i;
}

/* ---- registry ------------------------------------------------------------------------- */

void sv__obj_add(struct sv_fabric *f, struct sv_obj *o, int kind, int counted)
{
    o->kind = (uint8_t)kind;
    o->counted = (uint8_t)!!counted;
    sv_list_add_tail(&f->objs, &o->link);
    if (o->counted)
        f->st.live_objects++;
}

void sv__obj_del(struct sv_fabric *f, struct sv_obj *o)
{
    sv_list_del(&o->link);
    if (o->counted)
        f->st.live_objects--;
}

/* ---- number tables: index + generation, free slots reused last-freed first ------------- */

static int grow(void **arr, size_t elem, uint32_t *cap, uint32_t need)
{
    if (need <= *cap)
        return 0;
    uint32_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, (size_t)n * elem);
    if (!p)
        return -1;
    memset((char *)p + (size_t)*cap * elem, 0, (size_t)(n - *cap) * elem);
    *arr = p;
    *cap = n;
    return 0;
}

int sv__qp_slot(struct sv_fabric *f, struct sv_qp *qp)
{
    uint32_t idx;
    if (f->qp_nfree) {
        idx = f->qp_free[--f->qp_nfree];
    } else {
        if (f->qp_used >= SV_QP_IDX_LIMIT)
            return -1;
        uint32_t c1 = f->qp_cap, c2 = f->qp_cap, c3 = f->qp_cap;
        if (grow((void **)&f->qps, sizeof *f->qps, &c1, f->qp_used + 1) ||
            grow((void **)&f->qp_gen, sizeof *f->qp_gen, &c2, f->qp_used + 1) ||
            grow((void **)&f->qp_free, sizeof *f->qp_free, &c3, f->qp_used + 1))
            return -1;
        f->qp_cap = c1;
        idx = f->qp_used++;
    }
    f->qps[idx] = qp;
    qp->idx = idx;
    qp->qp.qp_num = sv_qpn_make(idx, f->qp_gen[idx]);
    return 0;
}

void sv__qp_unslot(struct sv_fabric *f, struct sv_qp *qp)
{
    f->qps[qp->idx] = NULL;
    f->qp_gen[qp->idx]++;
    f->qp_free[f->qp_nfree++] = qp->idx;
}

int sv__mr_slot(struct sv_fabric *f, struct sv_mr *mr)
{
    uint32_t idx;
    if (f->mr_nfree) {
        idx = f->mr_free[--f->mr_nfree];
    } else {
        if (f->mr_used >= SV_KEY_IDX_LIMIT)
            return -1;
        uint32_t c1 = f->mr_cap, c2 = f->mr_cap, c3 = f->mr_cap;
        if (grow((void **)&f->mrs, sizeof *f->mrs, &c1, f->mr_used + 1) ||
            grow((void **)&f->mr_gen, sizeof *f->mr_gen, &c2, f->mr_used + 1) ||
            grow((void **)&f->mr_free, sizeof *f->mr_free, &c3, f->mr_used + 1))
            return -1;
        f->mr_cap = c1;
        idx = f->mr_used++;
    }
    /* generation 1..2047 in bits 20..30: never a zero key */
    uint32_t gen = (uint32_t)(f->mr_gen[idx] % 2047u) + 1u;
    f->mrs[idx] = mr;
    mr->idx = idx;
    mr->lkey = (gen << SV_KEY_IDX_BITS) | idx;
    mr->rkey = mr->lkey | SV_RKEY_BIT;
    return 0;
}

void sv__mr_unslot(struct sv_fabric *f, struct sv_mr *mr)
{
    f->mrs[mr->idx] = NULL;
    f->mr_gen[mr->idx]++;
    f->mr_free[f->mr_nfree++] = mr->idx;
}

int sv_stats(struct sv_fabric *f, struct sv_stats *out)
{
    if (!f || !out)
        return -EINVAL;
    *out = f->st;
    return 0;
}
