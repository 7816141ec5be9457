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
 * passed (the IB CM carries no length).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sv_internal.h"

/* ---- events ------------------------------------------------------------------------------ */

static struct sv_cmev *ev_new(struct sv_id *to, enum rdma_cm_event_type type, int status)
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

static void ev_pdata(struct sv_cmev *e, const void *p, uint8_t len, uint8_t padded)
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

static void ev_queue(struct sv_fabric *f, struct sv_cmev *e)
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

static void ev_simple(struct sv_id *to, enum rdma_cm_event_type type, int status)
{
    ev_queue(to->f, ev_new(to, type, status));
}

/* The id is going away: events not yet got for it are dropped, never delivered. */
static void purge_id(struct sv_fabric *f, struct sv_id *id)
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

/* ---- ids ----------------------------------------------------------------------------------- */

struct sv_id *sv__id_create(struct sv_fabric *f, struct sv_chan *ch, void *context, int counted)
{
    struct sv_id *id = calloc(1, sizeof *id);
    if (!id)
        return NULL;
    id->id.channel = &ch->ch;
    id->id.context = context;
    id->id.ps = RDMA_PS_TCP;
    id->id.qp_type = IBV_QPT_RC;
    id->f = f;
    id->chan = ch;
    id->dev = -1;
    ch->nids++;
    sv__obj_add(f, &id->obj, SV_K_ID, counted);
    sv_list_add_tail(&f->ids, &id->idlink);
    return id;
}

void sv__id_free(struct sv_id *id) { free(id); }

int rdma_create_id(struct rdma_event_channel *channel, struct rdma_cm_id **out, void *context,
                   enum rdma_port_space ps)
{
    struct sv_chan *ch = (struct sv_chan *)channel;
    if (!out || !ch) {
        /* synchronous ids (no channel) would block inside calls: not simulated */
        errno = EINVAL;
        return -1;
    }
    if (ps != RDMA_PS_TCP && ps != RDMA_PS_IB) {
        sv__err(ch->f, "rdma_create_id: only RDMA_PS_TCP / RDMA_PS_IB are simulated");
        errno = EPROTONOSUPPORT;
        return -1;
    }
    struct sv_id *id = sv__id_create(ch->f, ch, context, 1);
    if (!id) {
        errno = ENOMEM;
        return -1;
    }
    id->id.ps = ps;
    *out = &id->id;
    return 0;
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

static struct sv_id *id_of_link(struct sv_link *l)
{
    return sv_container_of(l, struct sv_id, idlink);
}

/* ---- addresses and ports ------------------------------------------------------------ */

static int dev_of_ip(const struct sv_fabric *f, uint32_t ip)
{
    for (int d = 0; d < f->ndev; d++)
        if (sv_device_ipv4(d) == ip)
            return d;
    return -1;
}

static int port_in_use(struct sv_fabric *f, int dev, uint16_t port)
{
    for (struct sv_link *l = f->ids.next; l != &f->ids; l = l->next) {
        struct sv_id *o = id_of_link(l);
        if (o->bound && o->port == port && (o->dev == dev || o->dev < 0 || dev < 0))
            return 1;
    }
    return 0;
}

static uint16_t ephemeral(struct sv_fabric *f, int dev)
{
    for (uint32_t tries = 0; tries < 65536 - SV_EPHEMERAL_PORT; tries++) {
        uint16_t p = f->next_port;
        f->next_port = p == 65535 ? SV_EPHEMERAL_PORT : (uint16_t)(p + 1);
        if (!port_in_use(f, dev, p))
            return p;
    }
    return 0;
}

static void set_sin(struct sockaddr_in *s, uint32_t ip, uint16_t port)
{
    memset(s, 0, sizeof *s);
    s->sin_family = AF_INET;
    s->sin_addr.s_addr = ip;
    s->sin_port = htons(port);
}

static void bind_dev(struct sv_id *id, int dev)
{
    id->dev = dev;
    if (dev >= 0) {
        struct sv_ctx *c = sv__cm_ctx(id->f->devs[dev]);
        id->id.verbs = c ? &c->ctx : NULL;
        id->id.port_num = 1;
    }
}

int rdma_bind_addr(struct rdma_cm_id *cid, struct sockaddr *addr)
{
    struct sv_id *id = (struct sv_id *)cid;
    if (!id || !addr || id->state != SV_ID_IDLE) {
        errno = EINVAL;
        return -1;
    }
    struct sv_fabric *f = id->f;
    if (addr->sa_family != AF_INET) {
        sv__err(f, "rdma_bind_addr: only AF_INET is simulated");
        errno = EAFNOSUPPORT;
        return -1;
    }
    const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)addr;
    uint32_t ip = sin->sin_addr.s_addr;
    int dev = -1;
    if (ip != htonl(INADDR_ANY)) {
        dev = dev_of_ip(f, ip);
        if (dev < 0 || f->devs[dev]->removed) {
            sv__err(f, "rdma_bind_addr: %s is no device's address", inet_ntoa(sin->sin_addr));
            errno = EADDRNOTAVAIL;
            return -1;
        }
    }
    uint16_t port = ntohs(sin->sin_port);
    if (!port) {
        port = ephemeral(f, dev);
        if (!port) {
            errno = EADDRINUSE;
            return -1;
        }
    } else if (port_in_use(f, dev, port)) {
        sv__err(f, "rdma_bind_addr: port %u is in use", port);
        errno = EADDRINUSE;
        return -1;
    }
    id->port = port;
    id->bound = 1;
    id->state = SV_ID_BOUND;
    bind_dev(id, dev);
    set_sin(&id->id.route.addr.src_sin, ip, port);
    return 0;
}

int rdma_listen(struct rdma_cm_id *cid, int backlog)
{
    struct sv_id *id = (struct sv_id *)cid;
    (void)backlog;
    if (!id || id->state != SV_ID_BOUND) {
        errno = EINVAL;
        return -1;
    }
    id->state = SV_ID_LISTEN;
    return 0;
}

int rdma_resolve_addr(struct rdma_cm_id *cid, struct sockaddr *src, struct sockaddr *dst,
                      int timeout_ms)
{
    struct sv_id *id = (struct sv_id *)cid;
    (void)timeout_ms;
    if (!id || !dst || (id->state != SV_ID_IDLE && id->state != SV_ID_BOUND)) {
        errno = EINVAL;
        return -1;
    }
    struct sv_fabric *f = id->f;
    if (dst->sa_family != AF_INET || (src && src->sa_family != AF_INET)) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    if (src && id->state == SV_ID_IDLE && rdma_bind_addr(cid, src) < 0)
        return -1;
    const struct sockaddr_in *d = (const struct sockaddr_in *)(const void *)dst;
    memcpy(&id->id.route.addr.dst_sin, d, sizeof *d);
    int dev = dev_of_ip(f, d->sin_addr.s_addr);
    if (dev < 0 || f->devs[dev]->removed) {
        id->state = SV_ID_ERROR;
        ev_simple(id, RDMA_CM_EVENT_ADDR_ERROR, dev < 0 ? -EHOSTUNREACH : -ENODEV);
        return 0;
    }
    /* The route to a device's address leaves through that device (loopback). */
    if (!id->bound) {
        id->port = ephemeral(f, dev);
        id->bound = 1;
    }
    if (id->dev < 0)
        bind_dev(id, dev);
    set_sin(&id->id.route.addr.src_sin, sv_device_ipv4(id->dev), id->port);
    id->state = SV_ID_ADDR_RESOLVED;
    ev_simple(id, RDMA_CM_EVENT_ADDR_RESOLVED, 0);
    return 0;
}

int rdma_resolve_route(struct rdma_cm_id *cid, int timeout_ms)
{
    struct sv_id *id = (struct sv_id *)cid;
    (void)timeout_ms;
    if (!id || id->state != SV_ID_ADDR_RESOLVED) {
        errno = EINVAL;
        return -1;
    }
    id->state = SV_ID_ROUTE_RESOLVED;
    ev_simple(id, RDMA_CM_EVENT_ROUTE_RESOLVED, 0);
    return 0;
}

__be16 rdma_get_src_port(struct rdma_cm_id *id) { return id ? id->route.addr.src_sin.sin_port : 0; }
__be16 rdma_get_dst_port(struct rdma_cm_id *id) { return id ? id->route.addr.dst_sin.sin_port : 0; }

struct ibv_context **rdma_get_devices(int *num_devices)
{
    struct sv_fabric *f = sv__fabric();
    if (!f) {
        errno = ENOMEM;
        return NULL;
    }
    struct ibv_context **l = calloc((size_t)f->ndev + 1, sizeof *l);
    if (!l) {
        errno = ENOMEM;
        return NULL;
    }
    int n = 0;
    for (int d = 0; d < f->ndev; d++) {
        struct sv_ctx *c = sv__cm_ctx(f->devs[d]);
        if (c)
            l[n++] = &c->ctx;
    }
    if (num_devices)
        *num_devices = n;
    return l;
}

void rdma_free_devices(struct ibv_context **list) { free(list); }

int rdma_set_option(struct rdma_cm_id *id, int level, int optname, void *optval, size_t optlen)
{
    (void)optval;
    (void)optlen;
    if (!id || (level != RDMA_OPTION_ID && level != RDMA_OPTION_IB)) {
        errno = EINVAL;
        return -1;
    }
    (void)optname;               /* TOS, REUSEADDR, AFONLY, ACK_TIMEOUT, paths: no effect */
    return 0;
}

int rdma_notify(struct rdma_cm_id *id, enum ibv_event_type event)
{
    (void)event;
    return id ? 0 : -1;
}

/* ---- QPs on ids ------------------------------------------------------------------------- */

void sv__id_qp_gone(struct sv_id *id)
{
    id->qp = NULL;
    id->id.qp = NULL;
}

int rdma_create_qp(struct rdma_cm_id *cid, struct ibv_pd *ibpd, struct ibv_qp_init_attr *attr)
{
    struct sv_id *id = (struct sv_id *)cid;
    if (!id || !attr || !id->id.verbs || id->qp) {
        errno = EINVAL;
        return -1;
    }
    struct sv_fabric *f = id->f;
    struct sv_ctx *c = (struct sv_ctx *)id->id.verbs;
    if (!sv__dev_usable(f, c, "rdma_create_qp"))
        return -1;
    struct sv_pd *pd = (struct sv_pd *)ibpd;
    if (!pd) {
        /* librdmacm's per-device default PD */
        if (c->dev && !c->dev->cm_pd)
            c->dev->cm_pd = sv__pd_alloc(c, 0);
        pd = c->dev ? c->dev->cm_pd : NULL;
        if (!pd)
            return -1;
    }
    if (pd->ctx != c) {
        sv__err(f, "rdma_create_qp: the PD belongs to another context than id->verbs");
        errno = EINVAL;
        return -1;
    }
    struct ibv_qp_init_attr a = *attr;
    struct sv_cq *scq = NULL, *rcq = NULL;
    if (!a.send_cq) {
        scq = sv__cq_create(c, a.cap.max_send_wr ? (int)a.cap.max_send_wr : 1, NULL, NULL, 1);
        a.send_cq = scq ? &scq->cq : NULL;
    }
    if (!a.recv_cq) {
        rcq = sv__cq_create(c, a.cap.max_recv_wr ? (int)a.cap.max_recv_wr : 1, NULL, NULL, 1);
        a.recv_cq = rcq ? &rcq->cq : NULL;
    }
    struct sv_qp *qp = (a.send_cq && a.recv_cq) ? sv__qp_create(pd, &a, 1) : NULL;
    if (!qp) {
        int e = errno;
        if (scq)
            sv__cq_destroy(scq);
        if (rcq)
            sv__cq_destroy(rcq);
        errno = e ? e : ENOMEM;
        return -1;
    }
    attr->cap = a.cap;
    qp->cm = id;
    id->qp = qp;
    id->id.qp = &qp->qp;
    id->id.pd = &pd->pd;
    id->auto_scq = scq;
    id->auto_rcq = rcq;
    if (scq)
        id->id.send_cq = &scq->cq;
    if (rcq)
        id->id.recv_cq = &rcq->cq;
    sv__qp_set_state(qp, IBV_QPS_INIT);
    return 0;
}

void rdma_destroy_qp(struct rdma_cm_id *cid)
{
    struct sv_id *id = (struct sv_id *)cid;
    if (!id)
        return;
    if (id->qp)
        sv__qp_destroy(id->qp);
    if (id->auto_scq && sv__cq_destroy(id->auto_scq) == 0) {
        id->auto_scq = NULL;
        id->id.send_cq = NULL;
    }
    if (id->auto_rcq && sv__cq_destroy(id->auto_rcq) == 0) {
        id->auto_rcq = NULL;
        id->id.recv_cq = NULL;
    }
}

/* ---- the handshake ---------------------------------------------------------------------- */

static struct sv_id *find_listener(struct sv_fabric *f, int dev, uint16_t port)
{
    struct sv_id *any = NULL;
    for (struct sv_link *l = f->ids.next; l != &f->ids; l = l->next) {
        struct sv_id *o = id_of_link(l);
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
    int dev = dev_of_ip(f, dst->sin_addr.s_addr);
    struct sv_dev *ld = id->qp ? id->qp->ctx->dev : NULL;   /* our own device, if any */
    id->active = 1;
    id->init_depth = p ? p->initiator_depth : 0;
    id->resp_res = p ? p->responder_resources : 0;
    if (ld) {
        id->init_depth = clamp8(id->init_depth, ld->attr.max_qp_init_rd_atom);
        id->resp_res = clamp8(id->resp_res, ld->attr.max_qp_rd_atom);
    }
    id->rnr_retry = p ? p->rnr_retry_count : 0;
    if (dev < 0 || f->devs[dev]->removed || !f->devs[dev]->port_up) {
        id->state = SV_ID_REJECTED;
        ev_simple(id, RDMA_CM_EVENT_UNREACHABLE, -ETIMEDOUT);
        return 0;
    }
    uint16_t port = ntohs(dst->sin_port);
    struct sv_id *lst = find_listener(f, dev, port);
    if (!lst) {
        id->state = SV_ID_REJECTED;
        struct sv_cmev *e = ev_new(id, RDMA_CM_EVENT_REJECTED, SV_REJ_INVALID_SID);
        if (e)
            ev_pdata(e, NULL, 0, SV_REJ_PDATA);
        ev_queue(f, e);
        return 0;
    }
    /* The child exists from now on, but is the program's only once it gets the event. */
    struct sv_id *ch = sv__id_create(f, lst->chan, lst->id.context, 0);
    struct sv_cmev *e = ch ? ev_new(ch, RDMA_CM_EVENT_CONNECT_REQUEST, 0) : NULL;
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
    bind_dev(ch, dev);
    set_sin(&ch->id.route.addr.src_sin, sv_device_ipv4(dev), lst->port);
    memcpy(&ch->id.route.addr.dst_sin, &id->id.route.addr.src_sin, sizeof(struct sockaddr_in));
    ch->peer = id;
    id->peer = ch;
    id->state = SV_ID_CONNECTING;
    e->listener = lst;
    e->ev.listen_id = &lst->id;
    ev_pdata(e, p ? p->private_data : NULL, p ? p->private_data_len : 0, SV_REQ_PDATA);
    /* what the passive side may do: read as deep as we respond, respond as deep as we read */
    e->ev.param.conn.initiator_depth = id->resp_res;
    e->ev.param.conn.responder_resources = id->init_depth;
    e->ev.param.conn.flow_control = p ? p->flow_control : 0;
    e->ev.param.conn.retry_count = p ? p->retry_count : 0;
    e->ev.param.conn.rnr_retry_count = id->rnr_retry;
    e->ev.param.conn.srq = id->qp && id->qp->srq;
    e->ev.param.conn.qp_num = id->qp ? id->qp->qp.qp_num : 0;
    ev_queue(f, e);
    return 0;
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
    if (p && p->private_data_len > SV_REQ_PDATA) {
        sv__err(id->f, "rdma_connect: private_data_len %u > %d", p->private_data_len, SV_REQ_PDATA);
        errno = EINVAL;
        return -1;
    }
    return sv__id_connect(id, p);
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
    const struct sv_device_attr *da = &f->devs[id->dev]->attr;
    id->init_depth = clamp8(p ? p->initiator_depth : 0, da->max_qp_init_rd_atom);
    id->resp_res = clamp8(p ? p->responder_resources : 0, da->max_qp_rd_atom);
    /* the active side's view of the same agreement */
    cl->init_depth = id->resp_res;
    cl->resp_res = id->init_depth;
    qp_connect(id->qp, cl->qp->qp.qp_num, id->init_depth, id->resp_res);
    qp_connect(cl->qp, id->qp->qp.qp_num, cl->init_depth, cl->resp_res);
    sv__qp_ready(id->qp);
    id->state = SV_ID_ESTABLISHED;
    cl->state = SV_ID_ESTABLISHED;
    struct sv_cmev *e = ev_new(cl, RDMA_CM_EVENT_ESTABLISHED, 0);
    if (e) {
        ev_pdata(e, p ? p->private_data : NULL, p ? p->private_data_len : 0, SV_REP_PDATA);
        e->ev.param.conn.initiator_depth = cl->init_depth;
        e->ev.param.conn.responder_resources = cl->resp_res;
        e->ev.param.conn.qp_num = id->qp->qp.qp_num;
    }
    ev_queue(f, e);
    e = ev_new(id, RDMA_CM_EVENT_ESTABLISHED, 0);
    if (e) {
        e->ev.param.conn.initiator_depth = id->init_depth;
        e->ev.param.conn.responder_resources = id->resp_res;
        e->ev.param.conn.qp_num = cl->qp->qp.qp_num;
    }
    ev_queue(f, e);
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
        struct sv_cmev *e = ev_new(cl, RDMA_CM_EVENT_REJECTED, SV_REJ_CONSUMER);
        if (e)
            ev_pdata(e, pdata, len, SV_REJ_PDATA);
        ev_queue(id->f, e);
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
        struct sv_cmev *e = ev_new(ch, RDMA_CM_EVENT_REJECTED, SV_REJ_TIMEOUT);
        if (e)
            ev_pdata(e, NULL, 0, SV_REJ_PDATA);
        ev_queue(id->f, e);
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
        ev_simple(peer, RDMA_CM_EVENT_DISCONNECTED, 0);
    }
    if (self_event)
        ev_simple(id, RDMA_CM_EVENT_DISCONNECTED, 0);
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
    return sv__id_disconnect((struct sv_id *)cid);
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
            struct sv_cmev *e = ev_new(cl, RDMA_CM_EVENT_REJECTED, SV_REJ_CONSUMER);
            if (e)
                ev_pdata(e, NULL, 0, SV_REJ_PDATA);
            ev_queue(f, e);
        }
        id->peer = NULL;
        break;
    case SV_ID_LISTEN:
        for (struct sv_link *l = f->ids.next, *n; l != &f->ids; l = n) {
            n = l->next;
            struct sv_id *c = id_of_link(l);
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
    purge_id(f, id);
    sv_list_del(&id->idlink);
    id->chan->nids--;
    sv__obj_del(f, &id->obj);
    sv__id_free(id);
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
        struct sv_id *id = id_of_link(l);
        if (id->dev == dev && !id->host && (id->delivered || !id->listener))
            ev_simple(id, RDMA_CM_EVENT_DEVICE_REMOVAL, 0);
    }
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
