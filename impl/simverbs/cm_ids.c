/*
 * cm_ids.c — librdmacm's ids: creation, the address and port space (device d owns
 * 10.0.0.(d+1); INADDR_ANY binds to every device), binding, listening, address and
 * route resolution, the CM's device contexts, and the QP an id owns (rdma_create_qp).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdlib.h>

#include "sv_internal.h"

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
    if (!out) {
        errno = EINVAL;
        return -1;
    }
    if (ps != RDMA_PS_TCP && ps != RDMA_PS_IB) {
        if (ch)
            sv__err(ch->f, "rdma_create_id: only RDMA_PS_TCP / RDMA_PS_IB are simulated");
        errno = EPROTONOSUPPORT;
        return -1;
    }
    int sync = !ch;
    if (sync) {
        /* librdmacm's synchronous mode: the id gets a channel of its own, and the calls
         * that start a CM exchange wait for its event (cm_active.c) */
        struct sv_fabric *f = sv__fabric();
        ch = f ? sv__chan_create(f, 0) : NULL;
        if (!ch) {
            errno = ENOMEM;
            return -1;
        }
        ch->obj.counted = 0;     /* the id's, not the program's */
        f->st.live_objects--;
    }
    struct sv_id *id = sv__id_create(ch->f, ch, context, 1);
    if (!id) {
        if (sync) {
            sv__obj_del(ch->f, &ch->obj);
            sv__chan_free(ch);
        }
        errno = ENOMEM;
        return -1;
    }
    id->sync = sync;
    if (sync)
        id->id.channel = NULL;
    id->id.ps = ps;
    *out = &id->id;
    return 0;
}

struct sv_id *sv__id_of_link(struct sv_link *l)
{
    return sv_container_of(l, struct sv_id, idlink);
}

/* ---- addresses and ports ------------------------------------------------------------ */

int sv__dev_of_ip(const struct sv_fabric *f, uint32_t ip)
{
    for (int d = 0; d < f->ndev; d++)
        if (f->devs[d]->ipv4 == ip)
            return d;
    return -1;
}

static int port_in_use(struct sv_fabric *f, int dev, uint16_t port)
{
    for (struct sv_link *l = f->ids.next; l != &f->ids; l = l->next) {
        struct sv_id *o = sv__id_of_link(l);
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

void sv__set_sin(struct sockaddr_in *s, uint32_t ip, uint16_t port)
{
    memset(s, 0, sizeof *s);
    s->sin_family = AF_INET;
    s->sin_addr.s_addr = ip;
    s->sin_port = htons(port);
}

void sv__bind_dev(struct sv_id *id, int dev)
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
        dev = sv__dev_of_ip(f, ip);
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
    sv__bind_dev(id, dev);
    sv__set_sin(&id->id.route.addr.src_sin, ip, port);
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
    int dev = sv__dev_of_ip(f, d->sin_addr.s_addr);
    if (dev < 0 || f->devs[dev]->removed) {
        id->state = SV_ID_ERROR;
        sv__ev_simple(id, RDMA_CM_EVENT_ADDR_ERROR, dev < 0 ? -EHOSTUNREACH : -ENODEV);
        return id->sync ? sv__sync_wait(id, RDMA_CM_EVENT_ADDR_RESOLVED) : 0;
    }
    /* The route to a device's address leaves through that device (loopback). */
    if (!id->bound) {
        id->port = ephemeral(f, dev);
        id->bound = 1;
    }
    if (id->dev < 0)
        sv__bind_dev(id, dev);
    sv__set_sin(&id->id.route.addr.src_sin, f->devs[id->dev]->ipv4, id->port);
    id->state = SV_ID_ADDR_RESOLVED;
    sv__ev_simple(id, RDMA_CM_EVENT_ADDR_RESOLVED, 0);
    return id->sync ? sv__sync_wait(id, RDMA_CM_EVENT_ADDR_RESOLVED) : 0;
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
    sv__ev_simple(id, RDMA_CM_EVENT_ROUTE_RESOLVED, 0);
    return id->sync ? sv__sync_wait(id, RDMA_CM_EVENT_ROUTE_RESOLVED) : 0;
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

/* The extended form, as SPDK's verbs provider calls it: only IBV_QP_INIT_ATTR_PD is
 * understood (send-ops flags would need ibv_qp_ex, which is not simulated). */
int rdma_create_qp_ex(struct rdma_cm_id *cid, struct ibv_qp_init_attr_ex *ax)
{
    if (!cid || !ax) {
        errno = EINVAL;
        return -1;
    }
    if (ax->comp_mask & ~(uint32_t)IBV_QP_INIT_ATTR_PD) {
        errno = EOPNOTSUPP;
        return -1;
    }
    struct ibv_qp_init_attr a;
    memset(&a, 0, sizeof a);
    a.qp_context = ax->qp_context;
    a.send_cq = ax->send_cq;
    a.recv_cq = ax->recv_cq;
    a.srq = ax->srq;
    a.cap = ax->cap;
    a.qp_type = ax->qp_type;
    a.sq_sig_all = ax->sq_sig_all;
    int rc = rdma_create_qp(cid, (ax->comp_mask & IBV_QP_INIT_ATTR_PD) ? ax->pd : NULL, &a);
    if (rc == 0)
        ax->cap = a.cap;
    return rc;
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
