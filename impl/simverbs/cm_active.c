/*
 * cm_active.c — the rest of librdmacm's active side that an unmodified initiator calls:
 * rdma_getaddrinfo / rdma_freeaddrinfo, rdma_create_ep / rdma_destroy_ep, and the
 * synchronous mode (an id made without an event channel).
 *
 * A synchronous id has a channel of its own.  rdma_resolve_addr, rdma_resolve_route and
 * rdma_connect on it return only once their answer arrived, as librdmacm's do: the event
 * is got from the id's channel (running the fabric and, through the progress hook, an
 * in-process target meanwhile), kept in id->event until the next call or the id's end, and
 * a failure is the call's failure (a rejection: ECONNREFUSED, as librdmacm reports it;
 * the REJECTED event with its private data stays in id->event).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <stdlib.h>

#include "sv_internal.h"

enum { SV_SYNC_ROUNDS = 100000 };   /* fabric runs a synchronous call waits through */

int sv__sync_wait(struct sv_id *id, enum rdma_cm_event_type want)
{
    struct sv_fabric *f = id->f;
    if (id->id.event) {
        rdma_ack_cm_event(id->id.event);
        id->id.event = NULL;
    }
    for (int round = 0; round < SV_SYNC_ROUNDS; round++) {
        struct rdma_cm_event *ev;
        if (rdma_get_cm_event(&id->chan->ch, &ev) == 0) {
            id->id.event = ev;
            if (ev->event == want && ev->status == 0)
                return 0;
            if (ev->event == RDMA_CM_EVENT_REJECTED)
                errno = ECONNREFUSED;
            else if (ev->status < 0)
                errno = -ev->status;
            else
                errno = ev->status ? ev->status : EIO;
            return -1;
        }
        if (f->cm_hold && !f->autoprogress)
            break;               /* the harness holds the events: nothing will come */
        sv__progress_all(f);
    }
    sv__err(f, "a synchronous CM call found no event for its id");
    errno = ETIMEDOUT;
    return -1;
}

/* ---- rdma_getaddrinfo ------------------------------------------------------------------ */

struct sv_addrinfo {
    struct rdma_addrinfo ai;     /* first: rdma_freeaddrinfo frees the whole block */
    struct sockaddr_in src, dst;
};

static int parse_service(const char *service, uint16_t *port)
{
    if (!service) {
        *port = 0;
        return 0;
    }
    char *end;
    unsigned long v = strtoul(service, &end, 10);
    if (!*service || *end || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

static int parse_node(const char *node, uint32_t *ip)
{
    if (!node) {
        *ip = htonl(INADDR_ANY);
        return 0;
    }
    struct in_addr a;
    if (inet_pton(AF_INET, node, &a) == 1) {
        *ip = a.s_addr;
        return 0;
    }
    struct addrinfo hints = {.ai_family = AF_INET}, *res = NULL;
    if (getaddrinfo(node, NULL, &hints, &res) != 0 || !res)
        return -1;
    *ip = ((const struct sockaddr_in *)(const void *)res->ai_addr)->sin_addr.s_addr;
    freeaddrinfo(res);
    return 0;
}

int rdma_getaddrinfo(const char *node, const char *service, const struct rdma_addrinfo *hints,
                     struct rdma_addrinfo **res)
{
    if (!res || (!node && !service)) {
        errno = EINVAL;
        return -1;
    }
    if (hints && hints->ai_family && hints->ai_family != AF_INET) {
        errno = EAFNOSUPPORT;    /* only IPv4 addresses are simulated */
        return -1;
    }
    if (hints && hints->ai_port_space && hints->ai_port_space != RDMA_PS_TCP &&
        hints->ai_port_space != RDMA_PS_IB) {
        errno = EOPNOTSUPP;
        return -1;
    }
    uint32_t ip;
    uint16_t port;
    if (parse_node(node, &ip) < 0 || parse_service(service, &port) < 0) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    struct sv_addrinfo *a = calloc(1, sizeof *a);
    if (!a) {
        errno = ENOMEM;
        return -1;
    }
    int passive = hints && (hints->ai_flags & RAI_PASSIVE);
    a->ai.ai_flags = hints ? hints->ai_flags : 0;
    a->ai.ai_family = AF_INET;
    a->ai.ai_qp_type = IBV_QPT_RC;
    a->ai.ai_port_space = hints && hints->ai_port_space ? hints->ai_port_space : RDMA_PS_TCP;
    if (passive) {
        sv__set_sin(&a->src, ip, port);
        a->ai.ai_src_addr = (struct sockaddr *)(void *)&a->src;
        a->ai.ai_src_len = sizeof a->src;
    } else {
        sv__set_sin(&a->dst, ip, port);
        a->ai.ai_dst_addr = (struct sockaddr *)(void *)&a->dst;
        a->ai.ai_dst_len = sizeof a->dst;
        if (hints && hints->ai_src_addr && hints->ai_src_addr->sa_family == AF_INET) {
            memcpy(&a->src, hints->ai_src_addr, sizeof a->src);
            a->ai.ai_src_addr = (struct sockaddr *)(void *)&a->src;
            a->ai.ai_src_len = sizeof a->src;
        }
    }
    *res = &a->ai;
    return 0;
}

void rdma_freeaddrinfo(struct rdma_addrinfo *res)
{
    while (res) {
        struct rdma_addrinfo *next = res->ai_next;
        free(res);               /* each is one sv_addrinfo block */
        res = next;
    }
}

/* ---- endpoints ----------------------------------------------------------------------- */

int rdma_create_ep(struct rdma_cm_id **out, struct rdma_addrinfo *res, struct ibv_pd *pd,
                   struct ibv_qp_init_attr *qp_init_attr)
{
    if (!out || !res) {
        errno = EINVAL;
        return -1;
    }
    struct rdma_cm_id *cid;
    if (rdma_create_id(NULL, &cid, NULL, (enum rdma_port_space)res->ai_port_space) < 0)
        return -1;
    int rc;
    if (res->ai_flags & RAI_PASSIVE) {
        rc = res->ai_src_addr ? rdma_bind_addr(cid, res->ai_src_addr) : (errno = EINVAL, -1);
        if (rc == 0 && qp_init_attr) {
            /* the QP attributes a passive endpoint keeps for rdma_get_request: not simulated */
            errno = EOPNOTSUPP;
            rc = -1;
        }
    } else {
        rc = rdma_resolve_addr(cid, res->ai_src_addr, res->ai_dst_addr, 2000);
        if (rc == 0)
            rc = rdma_resolve_route(cid, 2000);
        if (rc == 0 && qp_init_attr)
            rc = rdma_create_qp(cid, pd, qp_init_attr);
    }
    if (rc < 0) {
        int e = errno;
        rdma_destroy_ep(cid);
        errno = e;
        return -1;
    }
    *out = cid;
    return 0;
}

void rdma_destroy_ep(struct rdma_cm_id *cid)
{
    if (!cid)
        return;
    if (cid->qp)
        rdma_destroy_qp(cid);
    rdma_destroy_id(cid);
}
