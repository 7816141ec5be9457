/*
 * workload.c — a C-native workload driver over the public API: keeps
 * queue_depth IOs in flight on one qpair, delivering every wire and polling
 * in a fixed order, with no Python per IO.  Used by the benchmark and the
 * soak driver.  nrt_memcpy_baseline moves the same bytes with plain memcpy
 * (host region -> io_unit buffers -> media, or back), each of the queue_depth IOs in
 * flight through its own buffers as in the target, as the physical floor.
 */
#include "nrt_internal.h"
#include <string.h>

#define WL_PREBUILT 64   /* slots whose capsule is built once */

struct wl_geometry {
    struct qpair *qp;
    struct namespace *ns;
    struct memory_region *mr;
    uint32_t qd;
    uint32_t nlb;   /* blocks per IO */
};

static int wl_check(struct nrt_transport *t, int id, const struct nrt_workload *w,
                    struct wl_geometry *geo)
{
    struct qpair *qp = qpair_lookup(t, id);
    if (!qp || qp->state != NRT_QP_ACTIVE || qp->qid == 0)
        return nrt_fail(t, NRT_ESTATE, "workload needs an active IO qpair, %d is not", id);
    if (w->opcode != NRT_OPC_READ && w->opcode != NRT_OPC_WRITE)
        return nrt_fail(t, NRT_EINVAL, "workload opcode must be read or write");
    if (w->ndesc < 1 || w->ndesc > NRT_MAX_SGL_DESC || w->ndesc > w->io_bytes)
        return nrt_fail(t, NRT_EINVAL, "workload ndesc = %u: must be 1..16", w->ndesc);
    if (qp->slots_used || qp->hr_count || !list_empty(&qp->h2t) || !list_empty(&qp->t2h))
        return nrt_fail(t, NRT_ESTATE, "workload needs an idle qpair: %d has IO outstanding",
                        id);
    struct subsystem *s = &t->subsystems[qp->ctrlr->subsystem];
    if (w->nsid < 1 || w->nsid > s->num_ns)
        return nrt_fail(t, NRT_EINVAL, "workload nsid %u not in the controller's subsystem",
                        w->nsid);
    struct namespace *ns = &s->ns[w->nsid - 1];
    uint32_t qd = w->queue_depth < qp->depth ? w->queue_depth : qp->depth;
    if (qd == 0 || w->io_bytes == 0 || w->io_bytes % ns->block_size)
        return nrt_fail(t, NRT_EINVAL, "workload needs qd >= 1 and io_bytes a block multiple");
    uint64_t span = (uint64_t)qd * w->io_bytes;
    if (span > ns->num_blocks * ns->block_size)
        return nrt_fail(t, NRT_EINVAL, "namespace smaller than queue_depth x io_bytes");
    struct memory_region *mr = mr_lookup(t, w->mkey);
    if (!mr || mr->size < span)
        return nrt_fail(t, NRT_EINVAL, "memory region %u missing or smaller than %llu bytes",
                        w->mkey, (unsigned long long)span);
    *geo = (struct wl_geometry){qp, ns, mr, qd, w->io_bytes / ns->block_size};
    return 0;
}

/* Build the slot's capsule once; later IOs of the slot reuse it unchanged (same cid,
 * LBAs and host range), so the driver touches no capsule bytes per IO. */
static void wl_capsule(const struct nrt_workload *w, const struct wl_geometry *geo,
                       uint32_t slot, struct nrt_capsule *cap)
{
    memset(cap, 0, sizeof(*cap));
    cap->opcode = w->opcode;
    cap->cid = (uint16_t)slot;
    cap->nsid = w->nsid;
    cap->slba = (uint64_t)slot * geo->nlb;
    cap->nlb = geo->nlb - 1;
    uint64_t base = (uint64_t)slot * w->io_bytes;
    if (w->ndesc == 1) {
        cap->sgl = (struct nrt_sgl_desc){base, w->io_bytes, w->mkey, NRT_SGL_TYPE_KEYED_DATA,
                                         NRT_SGL_SUBTYPE_ADDRESS};
        return;
    }
    uint32_t each = w->io_bytes / w->ndesc, off = 0;
    for (uint32_t i = 0; i < w->ndesc; i++) {
        uint32_t len = i + 1 == w->ndesc ? w->io_bytes - off : each;
        cap->list[i] = (struct nrt_sgl_desc){base + off, len, w->mkey, NRT_SGL_TYPE_KEYED_DATA,
                                             NRT_SGL_SUBTYPE_ADDRESS};
        off += len;
    }
    cap->ndesc = w->ndesc;
    cap->sgl = (struct nrt_sgl_desc){0, w->ndesc * 16, 0, NRT_SGL_TYPE_LAST_SEGMENT,
                                     NRT_SGL_SUBTYPE_OFFSET};
}

int64_t nrt_workload_run(struct nrt_transport *t, int id, const struct nrt_workload *w)
{
    struct wl_geometry geo;
    int rc = wl_check(t, id, w, &geo);
    if (rc)
        return rc;
    bool was_auto = t->bdev_auto;
    t->bdev_auto = true;
    struct nrt_capsule cap, caps[WL_PREBUILT];
    struct nrt_response rsp[64];
    uint64_t submitted = 0, completed = 0;
    int group = (int)geo.qp->group;
    int64_t result = 0;
    for (uint32_t s = 0; s < geo.qd && submitted < w->ios; s++, submitted++) {
        struct nrt_capsule *c = s < WL_PREBUILT ? &caps[s] : &cap;
        wl_capsule(w, &geo, s, c);
        if ((rc = nrt_host_submit(t, id, c, NULL, 0)))
            goto out_rc;
    }
    while (completed < w->ios) {
        uint64_t before = t->progress;
        while (nrt_deliver_h2t(t, id))
            ;
        nrt_poll_group(t, group);
        while (nrt_deliver_t2h(t, id))
            ;
        nrt_poll_group(t, group);
        int n;
        while ((n = nrt_host_reap(t, id, rsp, 64)) > 0) {
            for (int i = 0; i < n; i++) {
                if (rsp[i].cid >= geo.qd || rsp[i].unexpected) {
                    result = nrt_fail(t, NRT_ESTATE, "workload got a response for CID %u, "
                                      "which it did not submit", rsp[i].cid);
                    goto out;
                }
                if (rsp[i].status != NRT_SC_SUCCESS) {
                    result = nrt_fail(t, NRT_ESTATE, "workload IO cid %u failed: status 0x%04x",
                                      rsp[i].cid, rsp[i].status);
                    goto out;
                }
                completed++;
                if (submitted < w->ios) {
                    struct nrt_capsule *c = &cap;
                    if (rsp[i].cid < WL_PREBUILT)
                        c = &caps[rsp[i].cid];
                    else
                        wl_capsule(w, &geo, rsp[i].cid, &cap);
                    if ((rc = nrt_host_submit(t, id, c, NULL, 0)))
                        goto out_rc;
                    submitted++;
                }
            }
        }
        if (t->progress == before) {
            result = nrt_fail(t, NRT_ESTATE, "workload stalled after %llu IOs",
                              (unsigned long long)completed);
            goto out;
        }
    }
    result = (int64_t)completed;
    goto out;
out_rc:
    result = rc;
out:
    t->bdev_auto = was_auto;
    return result;
}

/* Copy through io_unit buffers first..first+n (mod the arena), as a request holds them. */
static void chunked_copy(uint8_t *arena, uint32_t nbufs_total, uint32_t first, uint32_t ius,
                         uint8_t *lin, uint32_t len, bool to_bufs)
{
    for (uint32_t off = 0, b = first; off < len; off += ius, b++) {
        uint32_t n = len - off < ius ? len - off : ius;
        uint8_t *buf = arena + (size_t)(b % nbufs_total) * ius;
        if (to_bufs)
            memcpy(buf, lin + off, n);
        else
            memcpy(lin + off, buf, n);
    }
}

int64_t nrt_memcpy_baseline(struct nrt_transport *t, int id, const struct nrt_workload *w)
{
    struct wl_geometry geo;
    int rc = wl_check(t, id, w, &geo);
    if (rc)
        return rc;
    uint32_t ius = t->o.io_unit_size, total = t->o.num_shared_buffers;
    uint32_t per_io = (w->io_bytes + ius - 1) / ius;
    for (uint64_t i = 0; i < w->ios; i++) {
        /* queue_depth IOs in flight each hold their own buffers, as in the target */
        uint32_t slot = (uint32_t)(i % geo.qd), first = slot * per_io;
        uint8_t *host = geo.mr->data + (size_t)slot * w->io_bytes;
        uint8_t *media = geo.ns->data + (size_t)slot * w->io_bytes;
        if (w->opcode == NRT_OPC_WRITE) {
            chunked_copy(t->buf_arena, total, first, ius, host, w->io_bytes, true);
            chunked_copy(t->buf_arena, total, first, ius, media, w->io_bytes, false);
        } else {
            chunked_copy(t->buf_arena, total, first, ius, media, w->io_bytes, true);
            chunked_copy(t->buf_arena, total, first, ius, host, w->io_bytes, false);
        }
    }
    return (int64_t)w->ios;
}
