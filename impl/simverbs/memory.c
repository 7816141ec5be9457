/*
 * memory.c — protection domains and memory regions: registration checks, lkey/rkey
 * assignment (fabric.c's key table), and the device's max_pd / max_mr limits.
 */
#include <stdlib.h>

#include "sv_internal.h"

/* ---- protection domains ------------------------------------------------------------------- */

struct sv_pd *sv__pd_alloc(struct sv_ctx *c, int counted)
{
    struct sv_fabric *f = c->f;
    if (c->dev && c->dev->n_pd >= c->dev->attr.max_pd) {
        sv__err(f, "ibv_alloc_pd: device %s has max_pd %u PDs", c->dev->attr.name, c->dev->attr.max_pd);
        errno = ENOMEM;
        return NULL;
    }
    struct sv_pd *pd = calloc(1, sizeof *pd);
    if (!pd) {
        errno = ENOMEM;
        return NULL;
    }
    pd->pd.context = &c->ctx;
    pd->pd.handle = f->next_handle++;
    pd->ctx = c;
    if (c->dev)
        c->dev->n_pd++;
    c->nchildren++;
    sv__obj_add(f, &pd->obj, SV_K_PD, counted);
    return pd;
}

void sv__pd_free(struct sv_pd *pd) { free(pd); }

struct ibv_pd *ibv_alloc_pd(struct ibv_context *context)
{
    struct sv_ctx *c = (struct sv_ctx *)context;
    if (!c) {
        errno = EINVAL;
        return NULL;
    }
    if (!sv__dev_usable(c->f, c, "ibv_alloc_pd"))
        return NULL;
    struct sv_pd *pd = sv__pd_alloc(c, 1);
    return pd ? &pd->pd : NULL;
}

int ibv_dealloc_pd(struct ibv_pd *ibpd)
{
    struct sv_pd *pd = (struct sv_pd *)ibpd;
    if (!pd)
        return EINVAL;
    if (pd->refs) {
        sv__err(pd->ctx->f, "ibv_dealloc_pd: %u MRs/QPs/SRQs still use the PD", pd->refs);
        return EBUSY;
    }
    struct sv_ctx *c = pd->ctx;
    if (c->dev)
        c->dev->n_pd--;
    c->nchildren--;
    sv__obj_del(c->f, &pd->obj);
    sv__pd_free(pd);
    return 0;
}

/* ---- memory regions ------------------------------------------------------------------------- */

#define SV_ACCESS_KNOWN (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | \
                         IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_MW_BIND | IBV_ACCESS_ZERO_BASED |    \
                         IBV_ACCESS_ON_DEMAND | IBV_ACCESS_HUGETLB)

struct sv_mr *sv__mr_reg(struct sv_pd *pd, void *addr, uint64_t len, uint64_t iova, int access,
                         int counted)
{
    struct sv_ctx *c = pd->ctx;
    struct sv_fabric *f = c->f;
    /* optional access flags may be ignored, as libibverbs does without kernel support */
    access &= ~(int)IBV_ACCESS_OPTIONAL_RANGE;
    if (access & ~SV_ACCESS_KNOWN) {
        sv__err(f, "ibv_reg_mr: unknown access flags 0x%x", access & ~SV_ACCESS_KNOWN);
        errno = EINVAL;
        return NULL;
    }
    if ((access & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)) &&
        !(access & IBV_ACCESS_LOCAL_WRITE)) {
        sv__err(f, "ibv_reg_mr: REMOTE_WRITE/REMOTE_ATOMIC need LOCAL_WRITE");
        errno = EINVAL;
        return NULL;
    }
    if (!addr && len) {
        sv__err(f, "ibv_reg_mr: NULL address");
        errno = EFAULT;
        return NULL;
    }
    if (c->dev && len > c->dev->attr.max_mr_size) {
        sv__err(f, "ibv_reg_mr: length %llu > max_mr_size %llu", (unsigned long long)len,
                (unsigned long long)c->dev->attr.max_mr_size);
        errno = EINVAL;
        return NULL;
    }
    if (iova + len < iova) {
        errno = EINVAL;
        return NULL;
    }
    if (c->dev && c->dev->n_mr >= c->dev->attr.max_mr) {
        sv__err(f, "ibv_reg_mr: device %s has max_mr %u MRs", c->dev->attr.name, c->dev->attr.max_mr);
        errno = ENOMEM;
        return NULL;
    }
    struct sv_mr *mr = calloc(1, sizeof *mr);
    if (!mr || sv__mr_slot(f, mr) < 0) {
        free(mr);
        errno = ENOMEM;
        return NULL;
    }
    mr->pd = pd;
    mr->base = addr;
    mr->iova = iova;
    mr->len = len;
    mr->access = access;
    mr->mr.context = &c->ctx;
    mr->mr.pd = &pd->pd;
    mr->mr.addr = addr;
    mr->mr.length = (size_t)len;
    mr->mr.handle = f->next_handle++;
    mr->mr.lkey = mr->lkey;
    mr->mr.rkey = mr->rkey;
    pd->refs++;
    if (c->dev)
        c->dev->n_mr++;
    sv__obj_add(f, &mr->obj, SV_K_MR, counted);
    return mr;
}

void sv__mr_free(struct sv_mr *mr)
{
    free(mr->owned);
    free(mr);
}

struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *ibpd, void *addr, size_t length, uint64_t iova,
                                unsigned int access)
{
    struct sv_pd *pd = (struct sv_pd *)ibpd;
    if (!pd) {
        errno = EINVAL;
        return NULL;
    }
    if (!sv__dev_usable(pd->ctx->f, pd->ctx, "ibv_reg_mr"))
        return NULL;
    struct sv_mr *mr = sv__mr_reg(pd, addr, length, iova, (int)access, 1);
    return mr ? &mr->mr : NULL;
}

/* ibv_reg_mr and ibv_reg_mr_iova are macros in verbs.h; parenthesized names define the
 * functions those macros call for constant access flags. */
struct ibv_mr *(ibv_reg_mr)(struct ibv_pd *pd, void *addr, size_t length, int access)
{
    return ibv_reg_mr_iova2(pd, addr, length, (uint64_t)(uintptr_t)addr, (unsigned)access);
}

struct ibv_mr *(ibv_reg_mr_iova)(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova,
                                 int access)
{
    return ibv_reg_mr_iova2(pd, addr, length, iova, (unsigned)access);
}

int ibv_dereg_mr(struct ibv_mr *ibmr)
{
    struct sv_mr *mr = (struct sv_mr *)ibmr;
    if (!mr)
        return EINVAL;
    struct sv_ctx *c = mr->pd->ctx;
    sv__mr_unslot(c->f, mr);
    mr->pd->refs--;
    if (c->dev)
        c->dev->n_mr--;
    sv__obj_del(c->f, &mr->obj);
    sv__mr_free(mr);
    return 0;
}
