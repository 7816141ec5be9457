/*
 * cm_events.c — librdmacm's event side: event channels (a pollable fd, readable while
 * events wait), queueing and the harness's hold FIFO, getting and acking events, and the
 * processing librdmacm does while handing an event over (the active side's QP reaches
 * RTS on ESTABLISHED; a rejection puts it in error).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sv_internal.h"

/* ---- events ------------------------------------------------------------------------------ */

struct sv_cmev *sv__ev_new(struct sv_id *to, enum rdma_cm_event_type type, int status)
{
    struct sv_cmev *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->ev.id = &to->id;
    e->ev.event = type;
    e->ev.status = status;
    e->to = to;
    sv_list_init(&e->link);
    return e;
}

void sv__ev_pdata(struct sv_cmev *e, const void *p, uint8_t len, uint8_t padded)
{
    if (p && len)
        memcpy(e->pdata, p, len);
    e->actual_len = len;
    e->ev.param.conn.private_data = e->pdata;
    e->ev.param.conn.private_data_len = padded;
}

void sv__cmev_free(struct sv_cmev *e) { free(e); }

void sv__cm_deliver(struct sv_fabric *f, struct sv_cmev *e)
{
    struct sv_chan *ch = e->to->chan;
    f->st.cm_events++;
    if (ch->host) {
        sv__host_event(e->to->host, e);
        sv__cmev_free(e);
        return;
    }
    sv_list_add_tail(&ch->q, &e->link);
    if (ch->nq++ == 0)
        sv__fd_signal(ch->ch.fd);
}

void sv__ev_queue(struct sv_fabric *f, struct sv_cmev *e)
{
    if (!e)
        return;
    if (f->cm_hold) {
        sv_list_add_tail(&f->hold, &e->link);
        f->nhold++;
    } else {
        sv__cm_deliver(f, e);
    }
}

void sv__ev_simple(struct sv_id *to, enum rdma_cm_event_type type, int status)
{
    sv__ev_queue(to->f, sv__ev_new(to, type, status));
}

/* The id is going away: events not yet got for it are dropped, never delivered. */
void sv__purge_id(struct sv_fabric *f, struct sv_id *id)
{
    struct sv_chan *ch = id->chan;
    for (struct sv_link *l = ch->q.next, *n; l != &ch->q; l = n) {
        n = l->next;
        struct sv_cmev *e = sv_container_of(l, struct sv_cmev, link);
        if (e->to != id)
            continue;
        sv_list_del(l);
        sv__cmev_free(e);
        f->st.dropped_events++;
        if (--ch->nq == 0)
            sv__fd_drain(ch->ch.fd);
    }
    for (struct sv_link *l = f->hold.next, *n; l != &f->hold; l = n) {
        n = l->next;
        struct sv_cmev *e = sv_container_of(l, struct sv_cmev, link);
        if (e->to != id)
            continue;
        sv_list_del(l);
        sv__cmev_free(e);
        f->st.dropped_events++;
        f->nhold--;
    }
}

void sv_cm_hold(struct sv_fabric *f, int on)
{
    if (!f)
        return;
    f->cm_hold = !!on;
    /* releasing the hold delivers what was held, in order, before anything newer */
    if (!on)
        while (sv_cm_deliver(f) > 0) {
        }
}

int sv_cm_pending(struct sv_fabric *f) { return f ? (int)f->nhold : -EINVAL; }

int sv_cm_deliver(struct sv_fabric *f)
{
    if (!f)
        return -EINVAL;
    if (sv_list_empty(&f->hold))
        return 0;
    struct sv_cmev *e = sv_container_of(f->hold.next, struct sv_cmev, link);
    sv_list_del(&e->link);
    f->nhold--;
    sv__cm_deliver(f, e);
    return 1;
}

/* ---- channels -------------------------------------------------------------------------- */

struct sv_chan *sv__chan_create(struct sv_fabric *f, int host)
{
    struct sv_chan *ch = calloc(1, sizeof *ch);
    if (!ch)
        return NULL;
    ch->ch.fd = -1;
    if (!host && (ch->ch.fd = eventfd(0, EFD_CLOEXEC)) < 0) {
        free(ch);
        return NULL;
    }
    ch->f = f;
    ch->host = host;
    sv_list_init(&ch->q);
    sv__obj_add(f, &ch->obj, SV_K_CHAN, !host);
    return ch;
}

void sv__chan_free(struct sv_chan *ch)
{
    while (!sv_list_empty(&ch->q)) {
        struct sv_cmev *e = sv_container_of(ch->q.next, struct sv_cmev, link);
        sv_list_del(&e->link);
        sv__cmev_free(e);
    }
    if (ch->ch.fd >= 0)
        close(ch->ch.fd);
    free(ch);
}

struct rdma_event_channel *rdma_create_event_channel(void)
{
    struct sv_fabric *f = sv__fabric();
    struct sv_chan *ch = f ? sv__chan_create(f, 0) : NULL;
    if (!ch) {
        errno = ENOMEM;
        return NULL;
    }
    return &ch->ch;
}

void rdma_destroy_event_channel(struct rdma_event_channel *channel)
{
    struct sv_chan *ch = (struct sv_chan *)channel;
    if (!ch)
        return;
    if (ch->nids) {
        /* Its ids would be left pointing at freed memory: refuse (the fabric frees it). */
        sv__err(ch->f, "rdma_destroy_event_channel: %u ids still use the channel", ch->nids);
        errno = EBUSY;
        return;
    }
    ch->f->st.dropped_events += ch->nq;
    sv__obj_del(ch->f, &ch->obj);
    sv__chan_free(ch);
}

int rdma_migrate_id(struct rdma_cm_id *cid, struct rdma_event_channel *channel)
{
    struct sv_id *id = (struct sv_id *)cid;
    struct sv_chan *to = (struct sv_chan *)channel;
    if (!id || !to || to->host) {
        errno = EINVAL;
        return -1;
    }
    struct sv_chan *from = id->chan;
    if (from == to)
        return 0;
    for (struct sv_link *l = from->q.next, *n; l != &from->q; l = n) {
        n = l->next;
        struct sv_cmev *e = sv_container_of(l, struct sv_cmev, link);
        if (e->to != id)
            continue;
        sv_list_del(l);
        if (--from->nq == 0)
            sv__fd_drain(from->ch.fd);
        sv_list_add_tail(&to->q, l);
        if (to->nq++ == 0)
            sv__fd_signal(to->ch.fd);
    }
    from->nids--;
    to->nids++;
    id->chan = to;
    id->id.channel = &to->ch;
    return 0;
}

/* ---- getting events ----------------------------------------------------------------------- */

int rdma_get_cm_event(struct rdma_event_channel *channel, struct rdma_cm_event **event)
{
    struct sv_chan *ch = (struct sv_chan *)channel;
    if (!ch || !event || ch->host) {
        errno = EINVAL;
        return -1;
    }
    struct sv_fabric *f = ch->f;
    if (f->autoprogress)
        sv__progress_all(f);
    if (sv_list_empty(&ch->q)) {
        errno = EAGAIN;          /* no threads: an empty channel never blocks */
        return -1;
    }
    struct sv_cmev *e = sv_container_of(ch->q.next, struct sv_cmev, link);
    sv_list_del(&e->link);
    if (--ch->nq == 0)
        sv__fd_drain(ch->ch.fd);
    sv_list_add_tail(&f->got, &e->link);
    struct sv_id *to = e->to;
    switch (e->ev.event) {
    case RDMA_CM_EVENT_CONNECT_REQUEST:
        /* from here on the child is the program's to accept, reject and destroy */
        to->delivered = 1;
        to->obj.counted = 1;
        f->st.live_objects++;
        break;
    case RDMA_CM_EVENT_ESTABLISHED:
        if (to->active && to->qp && to->qp->qp.state != IBV_QPS_ERR)
            sv__qp_ready(to->qp);
        break;
    case RDMA_CM_EVENT_REJECTED:
    case RDMA_CM_EVENT_UNREACHABLE:
        if (to->active && to->qp)
            sv__qp_error(to->qp);
        break;
    default:
        break;
    }
    *event = &e->ev;
    return 0;
}

int rdma_ack_cm_event(struct rdma_cm_event *event)
{
    if (!event) {
        errno = EINVAL;
        return -1;
    }
    struct sv_cmev *e = (struct sv_cmev *)event;
    sv_list_del(&e->link);
    sv__cmev_free(e);
    return 0;
}
