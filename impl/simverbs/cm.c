/*
 * cm.c — librdmacm: event channels, ids, addresses and ports, listening, the connection
 * handshake (REQ / REP+RTU / REJ) and disconnection, for target ids, client ids of a plain
 * verbs program, and the harness's host ids alike.
 *
 * The handshake happens at once, in the calls: rdma_connect finds the listener and queues
 * its CONNECT_REQUEST; rdma_accept connects the two QPs and queues ESTABLISHED for both
 * ends.  Events are queued on their channel at once, or held in a fabric FIFO while
 * sv_cm_hold is on.  The active side's QP moves to RTR/RTS when its ESTABLISHED event is
 * got, as librdmacm does while processing the REP.
 *
 * Private data lengths are those of the IB CM the kernel reports on RoCE: a CONNECT_REQUEST
 * says 56 bytes, an active ESTABLISHED 196, a REJECTED 148, zero-padded past what the peer
 * passed (the IB CM carries no length).  Channels and event delivery are in cm_events.c,
 * ids and addresses in cm_ids.c.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdlib.h>

#include "sv_internal.h"

/* ---- the handshake ---------------------------------------------------------------------- */

static struct sv_id *find_listener(struct sv_fabric *f, int dev, uint16_t port)
{
    struct sv_id *any = NULL;
    for (struct sv_link *l = f->ids.next; l != &f->ids; l = l->next) {
        struct sv_id *o = sv__id_of_link(l);
        if (o->state != SV_ID_LISTEN || o->port != port)
            continue;
        if (o->dev == dev)
            return o;
        if (o->dev < 0 && !any)
            any = o;
    }
    return any;
}

static uint8_t clamp8(uint32_t v, uint32_t max) { return (uint8_t)(v < max ? v : max); }

/* The active side's half of rdma_connect (the program's ids and the host's). */
int sv__id_connect(struct sv_id *id, const struct rdma_conn_param *p)
{
    struct sv_fabric *f = id->f;
    const struct sockaddr_in *dst = &id->id.route.addr.dst_sin;
    int dev = sv__dev_of_ip(f, dst->sin_addr.s_addr);
    struct sv_dev *ld = id->qp ? id->qp->ctx->dev : NULL;   /* our own device, if any */
    id->active = 1;
    /* RDMA_MAX_INIT_DEPTH / RDMA_MAX_RESP_RES (0xFF) ask for the device's maximum */
    id->init_depth = p ? p->initiator_depth : 0;
    id->resp_res = p ? p->responder_resources : 0;
    if (ld) {
        id->init_depth = clamp8(id->init_depth, ld->attr.max_qp_init_rd_atom);
        id->resp_res = clamp8(id->resp_res, ld->attr.max_qp_rd_atom);
    }
    id->rnr_retry = p ? p->rnr_retry_count : 0;
    if (dev < 0 || f->devs[dev]->removed || !f->devs[dev]->port_up) {
        id->state = SV_ID_REJECTED;
        sv__ev_simple(id, RDMA_CM_EVENT_UNREACHABLE, -ETIMEDOUT);
        return 0;
    }
    uint16_t port = ntohs(dst->sin_port);
    struct sv_id *lst = find_listener(f, dev, port);
    if (!lst) {
        id->state = SV_ID_REJECTED;
        struct sv_cmev *e = sv__ev_new(id, RDMA_CM_EVENT_REJECTED, SV_REJ_INVALID_SID);
        if (e)
            sv__ev_pdata(e, NULL, 0, SV_REJ_PDATA);
        sv__ev_queue(f, e);
        return 0;
    }
    /* The child exists from now on, but is the program's only once it gets the event. */
    struct sv_id *ch = sv__id_create(f, lst->chan, lst->id.context, 0);
    struct sv_cmev *e = ch ? sv__ev_new(ch, RDMA_CM_EVENT_CONNECT_REQUEST, 0) : NULL;
    if (!e) {
        if (ch)
            sv__id_destroy(ch);
        errno = ENOMEM;
        return -1;
    }
    ch->id.ps = lst->id.ps;
    ch->listener = lst;
    ch->port = lst->port;
    ch->state = SV_ID_REQ_RCVD;
    sv__bind_dev(ch, dev);
    sv__set_sin(&ch->id.route.addr.src_sin, f->devs[dev]->ipv4, lst->port);
    memcpy(&ch->id.route.addr.dst_sin, &id->id.route.addr.src_sin, sizeof(struct sockaddr_in));
    ch->peer = id;
    id->peer = ch;
    /* the passive side's view: what rdma_accept(NULL) or 0xFF values agree to */
    ch->init_depth = clamp8(id->resp_res, f->devs[dev]->attr.max_qp_init_rd_atom);
    ch->resp_res = clamp8(id->init_depth, f->devs[dev]->attr.max_qp_rd_atom);
    id->state = SV_ID_CONNECTING;
    e->listener = lst;
    e->ev.listen_id = &lst->id;
    sv__ev_pdata(e, p ? p->private_data : NULL, p ? p->private_data_len : 0, SV_REQ_PDATA);
    /* what the passive side may do: read as deep as we respond, respond as deep as we read */
    e->ev.param.conn.initiator_depth = id->resp_res;
    e->ev.param.conn.responder_resources = id->init_depth;
    e->ev.param.conn.flow_control = p ? p->flow_control : 0;
    e->ev.param.conn.retry_count = p ? p->retry_count : 0;
    e->ev.param.conn.rnr_retry_count = id->rnr_retry;
    e->ev.param.conn.srq = id->qp && id->qp->srq;
    e->ev.param.conn.qp_num = id->qp ? id->qp->qp.qp_num : 0;
    sv__ev_queue(f, e);
    return 0;
}

/* librdmacm refuses depths beyond the device (0xFF: "the maximum" is always fine). */
static int depths_ok(struct sv_fabric *f, const struct sv_dev *d, const struct rdma_conn_param *p,
                     const char *what)
{
    if (!p || !d)
        return 1;
    if ((p->initiator_depth != RDMA_MAX_INIT_DEPTH && p->initiator_depth > d->attr.max_qp_init_rd_atom) ||
        (p->responder_resources != RDMA_MAX_RESP_RES && p->responder_resources > d->attr.max_qp_rd_atom)) {
        sv__err(f, "%s: initiator_depth %u / responder_resources %u exceed the device's %u / %u", what,
                p->initiator_depth, p->responder_resources, d->attr.max_qp_init_rd_atom,
                d->attr.max_qp_rd_atom);
        return 0;
    }
    return 1;
}

int rdma_connect(struct rdma_cm_id *cid, struct rdma_conn_param *p)
{
    struct sv_id *id = (struct sv_id *)cid;
    if (!id || id->state != SV_ID_ROUTE_RESOLVED || !id->qp) {
        if (id)
            sv__err(id->f, "rdma_connect: the id needs a resolved route and a QP (rdma_create_qp)");
        errno = EINVAL;
        return -1;
    }
    if (!depths_ok(id->f, id->qp->ctx->dev, p, "rdma_connect")) {
        errno = EINVAL;
        return -1;
    }
    if (p && p->private_data_len > SV_REQ_PDATA) {
        sv__err(id->f, "rdma_connect: private_data_len %u > %d", p->private_data_len, SV_REQ_PDATA);
        errno = EINVAL;
        return -1;
    }
    int rc = sv__id_connect(id, p);
    if (rc == 0 && id->sync)
        rc = sv__sync_wait(id, RDMA_CM_EVENT_ESTABLISHED);
    else if (rc == 0 && id->f->autoprogress)
        sv__progress_all(id->f);   /* the answer is on the channel (its fd readable) at once */
    return rc;
}

/* A QP joins its peer: RTR then RTS, as librdmacm drives it from the CM's attributes. */
static void qp_connect(struct sv_qp *qp, uint32_t peer_qpn, uint8_t rd_atomic, uint8_t dest_rd_atomic)
{
    qp->peer_qpn = peer_qpn;
    qp->attr.dest_qp_num = peer_qpn;
    qp->attr.max_rd_atomic = rd_atomic;
    qp->attr.max_dest_rd_atomic = dest_rd_atomic;
    /* the IB CM grants remote reads only to a side that has responder resources */
    qp->attr.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | (dest_rd_atomic ? IBV_ACCESS_REMOTE_READ : 0);
}

int rdma_accept(struct rdma_cm_id *cid, struct rdma_conn_param *p)
{
    struct sv_id *id = (struct sv_id *)cid;
    if (!id || !id->delivered || id->state != SV_ID_REQ_RCVD || !id->qp) {
        if (id)
            sv__err(id->f, "rdma_accept: the id is no pending connect request with a QP");
        errno = EINVAL;
        return -1;
    }
    struct sv_fabric *f = id->f;
    if (p && p->private_data_len > SV_REP_PDATA) {
        sv__err(f, "rdma_accept: private_data_len %u > %d", p->private_data_len, SV_REP_PDATA);
        errno = EINVAL;
        return -1;
    }
    struct sv_id *cl = id->peer;
    if (!cl || !cl->qp || id->qp->qp.state == IBV_QPS_ERR) {
        sv__err(f, "rdma_accept: the connecting side is gone");
        errno = EINVAL;
        return -1;
    }
    const struct sv_dev *d = f->devs[id->dev];
    if (!depths_ok(f, d, p, "rdma_accept")) {
        errno = EINVAL;
        return -1;
    }
    /* no conn_param, or 0xFF, keeps what the request offered (already within the device) */
    if (p && p->initiator_depth != RDMA_MAX_INIT_DEPTH)
        id->init_depth = p->initiator_depth;
    if (p && p->responder_resources != RDMA_MAX_RESP_RES)
        id->resp_res = p->responder_resources;
    /* the active side's view of the same agreement */
    cl->init_depth = id->resp_res;
    cl->resp_res = id->init_depth;
    qp_connect(id->qp, cl->qp->qp.qp_num, id->init_depth, id->resp_res);
    qp_connect(cl->qp, id->qp->qp.qp_num, cl->init_depth, cl->resp_res);
    sv__qp_ready(id->qp);
    id->state = SV_ID_ESTABLISHED;
    cl->state = SV_ID_ESTABLISHED;
    struct sv_cmev *e = sv__ev_new(cl, RDMA_CM_EVENT_ESTABLISHED, 0);
    if (e) {
        sv__ev_pdata(e, p ? p->private_data : NULL, p ? p->private_data_len : 0, SV_REP_PDATA);
        e->ev.param.conn.initiator_depth = cl->init_depth;
        e->ev.param.conn.responder_resources = cl->resp_res;
        e->ev.param.conn.qp_num = id->qp->qp.qp_num;
    }
    sv__ev_queue(f, e);
    e = sv__ev_new(id, RDMA_CM_EVENT_ESTABLISHED, 0);
    if (e) {
        e->ev.param.conn.initiator_depth = id->init_depth;
        e->ev.param.conn.responder_resources = id->resp_res;
        e->ev.param.conn.qp_num = cl->qp->qp.qp_num;
    }
    sv__ev_queue(f, e);
    return 0;
}

int rdma_reject(struct rdma_cm_id *cid, const void *pdata, uint8_t len)
{
    struct sv_id *id = (struct sv_id *)cid;
    if (!id || !id->delivered || id->state != SV_ID_REQ_RCVD) {
        errno = EINVAL;
        return -1;
    }
    if (len > SV_REJ_PDATA) {
        sv__err(id->f, "rdma_reject: private_data_len %u > %d", len, SV_REJ_PDATA);
        errno = EINVAL;
        return -1;
    }
    id->state = SV_ID_REJECTED;
    struct sv_id *cl = id->peer;
    id->peer = NULL;
    if (cl) {
        cl->peer = NULL;
        cl->state = SV_ID_REJECTED;
        struct sv_cmev *e = sv__ev_new(cl, RDMA_CM_EVENT_REJECTED, SV_REJ_CONSUMER);
        if (e)
            sv__ev_pdata(e, pdata, len, SV_REJ_PDATA);
        sv__ev_queue(id->f, e);
    }
    return 0;
}

/* The active side gives up before an answer: the passive child hears a REJ (timeout) if
 * the program already has it, or silently never existed if its request was not got. */
static void abandon(struct sv_id *id)
{
    struct sv_id *ch = id->peer;
    id->peer = NULL;
    if (!ch)
        return;
    ch->peer = NULL;
    if (ch->delivered) {
        ch->state = SV_ID_REJECTED;
        struct sv_cmev *e = sv__ev_new(ch, RDMA_CM_EVENT_REJECTED, SV_REJ_TIMEOUT);
        if (e)
            sv__ev_pdata(e, NULL, 0, SV_REJ_PDATA);
        sv__ev_queue(id->f, e);
    } else {
        sv__id_destroy(ch);
    }
}

/* Either end of an established connection disconnects: both QPs go to error (flushing),
 * the peer hears DISCONNECTED (the DREQ), then this end (the DREP) if it asked to. */
static void conn_disconnect(struct sv_id *id, int self_event)
{
    struct sv_id *peer = id->peer;
    if (id->qp)
        sv__qp_error(id->qp);
    id->peer = NULL;
    id->state = SV_ID_DISCONNECTED;
    if (peer) {
        peer->peer = NULL;
        peer->state = SV_ID_DISCONNECTED;
        if (peer->qp)
            sv__qp_error(peer->qp);
        sv__ev_simple(peer, RDMA_CM_EVENT_DISCONNECTED, 0);
    }
    if (self_event)
        sv__ev_simple(id, RDMA_CM_EVENT_DISCONNECTED, 0);
}

int sv__id_disconnect(struct sv_id *id)
{
    switch (id->state) {
    case SV_ID_ESTABLISHED:
        conn_disconnect(id, 1);
        return 0;
    case SV_ID_DISCONNECTED:
        if (id->qp)
            sv__qp_error(id->qp);
        return 0;
    case SV_ID_CONNECTING:
        abandon(id);
        id->state = SV_ID_DISCONNECTED;
        if (id->qp)
            sv__qp_error(id->qp);
        return 0;
    default:
        errno = EINVAL;
        return -1;
    }
}

int rdma_disconnect(struct rdma_cm_id *cid)
{
    if (!cid) {
        errno = EINVAL;
        return -1;
    }
    struct sv_id *id = (struct sv_id *)cid;
    int rc = sv__id_disconnect(id);
    if (rc == 0 && id->f->autoprogress)
        sv__progress_all(id->f);   /* the peer handles its DISCONNECTED now */
    return rc;
}

void sv__id_destroy(struct sv_id *id)
{
    struct sv_fabric *f = id->f;
    switch (id->state) {
    case SV_ID_ESTABLISHED:
        conn_disconnect(id, 0);
        break;
    case SV_ID_CONNECTING:
        abandon(id);
        break;
    case SV_ID_REQ_RCVD:
        /* destroying an unanswered request rejects it, as the IB CM does (also when the
         * program never got it: its listener went away) */
        if (id->peer) {
            struct sv_id *cl = id->peer;
            cl->peer = NULL;
            cl->state = SV_ID_REJECTED;
            struct sv_cmev *e = sv__ev_new(cl, RDMA_CM_EVENT_REJECTED, SV_REJ_CONSUMER);
            if (e)
                sv__ev_pdata(e, NULL, 0, SV_REJ_PDATA);
            sv__ev_queue(f, e);
        }
        id->peer = NULL;
        break;
    case SV_ID_LISTEN:
        for (struct sv_link *l = f->ids.next, *n; l != &f->ids; l = n) {
            n = l->next;
            struct sv_id *c = sv__id_of_link(l);
            if (c->listener != id)
                continue;
            c->listener = NULL;
            if (!c->delivered)
                sv__id_destroy(c);   /* unlinks only c, never n */
        }
        break;
    default:
        break;
    }
    if (id->qp) {
        id->qp->cm = NULL;       /* the QP stays the program's; it is no longer on an id */
        id->qp = NULL;
    }
    if (id->sync && id->id.event) {
        rdma_ack_cm_event(id->id.event);
        id->id.event = NULL;
    }
    sv__purge_id(f, id);
    sv_list_del(&id->idlink);
    id->chan->nids--;
    struct sv_chan *own = id->sync ? id->chan : NULL;
    sv__obj_del(f, &id->obj);
    sv__id_free(id);
    if (own) {
        sv__obj_del(f, &own->obj);
        sv__chan_free(own);
    }
}

int rdma_destroy_id(struct rdma_cm_id *cid)
{
    if (!cid) {
        errno = EINVAL;
        return -1;
    }
    sv__id_destroy((struct sv_id *)cid);
    return 0;
}

void sv__cm_device_removed(struct sv_fabric *f, int dev)
{
    for (struct sv_link *l = f->ids.next; l != &f->ids; l = l->next) {
        struct sv_id *id = sv__id_of_link(l);
        if (id->dev == dev && !id->host && (id->delivered || !id->listener))
            sv__ev_simple(id, RDMA_CM_EVENT_DEVICE_REMOVAL, 0);
    }
}

