/*
 * serve.c — a target behind nrt.h served in-process on the drop-in libibverbs: the fabric
 * and the device at the serving address, the progress hook that runs the target's CM
 * handling and every poll group whenever the process's host waits (simverbs'
 * autoprogress), and the target's statistics as SPDK's nvmf_get_stats JSON.
 *
 * Linked into each served target library (the built-in one, SPDK's adapter) next to the
 * target itself; it uses only nrt.h and simverbs' public API, and the libibverbs it calls
 * is the process's one copy of the fabric.
 *
 * One lock serialises the target: the hook holds it while the target runs, and the
 * statistics are read under it, so a JSON-RPC server thread may ask while the host
 * thread drives the target.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nrt.h"
#include "simverbs.h"

/* SPDK's adapter provides these (its own log, SPDK's poll_group_dump_stat); the built-in
 * target does not, and the JSON is made here from its group statistics. */
int nrt_target_set_log_file(const char *path) __attribute__((weak));
int nrt_target_stats_json(struct nrt_transport *t, char *buf, size_t len) __attribute__((weak));

struct seen_qpair {
    int32_t handle;
    uint32_t group;
    uint32_t qid;
    uint32_t qp_num;
    uint64_t send_wrs, recv_wrs;     /* as of the last look */
    int live;
    int counted;                     /* in admin_qpairs / io_qpairs */
};

struct group_totals {
    uint64_t admin_qpairs, io_qpairs;    /* ever placed in the group */
    uint64_t retired_send_wrs, retired_recv_wrs;   /* of qpairs gone */
};

struct nrt_dropin_server {
    struct nrt_transport *t;
    struct sv_fabric *f;
    pthread_mutex_t lock;
    pthread_t owner;                 /* the thread running the target, while running */
    volatile int running;
    uint32_t groups;
    char dev_name[32];               /* the serving device's, for the statistics */
    uint64_t passes;                 /* hook calls */
    uint64_t scanned_at;             /* the target's progress counter at the last scan */
    struct seen_qpair *seen;
    uint32_t nseen, seen_cap;
    struct group_totals totals[NRT_MAX_POLL_GROUPS];
};

int nrt_dropin_fabric(uint32_t ipv4, char *err, size_t errlen);
struct nrt_dropin_server *nrt_dropin_attach(struct nrt_transport *t, uint32_t ipv4, char *err,
                                            size_t errlen);
int nrt_dropin_detach(struct nrt_dropin_server *s);
int nrt_dropin_progress(struct nrt_dropin_server *s);
uint64_t nrt_dropin_passes(struct nrt_dropin_server *s);
int nrt_dropin_stats_json(struct nrt_dropin_server *s, char *buf, size_t len);
int nrt_dropin_set_log_file(const char *path);

static void say(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The process's fabric (made here with autoprogress if there is none yet) with a device
 * at ipv4 (network order); returns the device index. */
int nrt_dropin_fabric(uint32_t ipv4, char *err, size_t errlen)
{
    struct sv_fabric *f = sv_fabric_current();
    if (!f) {
        f = sv_fabric_create();
        if (!f) {
            say(err, errlen, "no memory for a fabric");
            return NRT_ENOMEM;
        }
    }
    sv_fabric_set_autoprogress(f, 1);
    int dev = sv_device_find_ipv4(f, ipv4);
    if (dev >= 0)
        return dev;
    dev = sv_device_add(f, NULL);
    if (dev < 0 || sv_device_set_ipv4(f, dev, ipv4) < 0) {
        say(err, errlen, "adding the device: %s", sv_error(f));
        return NRT_EINVAL;
    }
    return dev;
}

/* Looks at every qpair: new ones are counted in their group, gone ones leave their WR
 * counts behind.  Called when the CM moved and before statistics are read. */
static void scan_qpairs(struct nrt_dropin_server *s)
{
    int32_t handles[1024];
    int n = nrt_qpairs(s->t, handles, 1024);
    if (n < 0)
        return;
    if (n > 1024)
        n = 1024;
    for (uint32_t i = 0; i < s->nseen; i++)
        s->seen[i].live = -s->seen[i].live;   /* 1 -> -1: unconfirmed */
    for (int k = 0; k < n; k++) {
        struct nrt_qpair_info qi;
        if (nrt_qpair_info(s->t, handles[k], &qi) != 0)
            continue;
        struct seen_qpair *q = NULL;
        for (uint32_t i = 0; i < s->nseen; i++)
            if (s->seen[i].handle == handles[k] && s->seen[i].live == -1 &&
                s->seen[i].qp_num == qi.qp_num)
                q = &s->seen[i];
        if (!q) {
            if (s->nseen == s->seen_cap) {
                uint32_t cap = s->seen_cap ? s->seen_cap * 2 : 16;
                struct seen_qpair *a = realloc(s->seen, cap * sizeof *a);
                if (!a)
                    continue;
                s->seen = a;
                s->seen_cap = cap;
            }
            q = &s->seen[s->nseen++];
            memset(q, 0, sizeof *q);
            q->handle = handles[k];
            q->group = qi.group < NRT_MAX_POLL_GROUPS ? qi.group : 0;
            q->qp_num = qi.qp_num;
        }
        q->live = 1;
        q->qid = qi.qid;
        /* counted once its Fabrics Connect made it active, as admin or IO queue */
        if (!q->counted && qi.state == NRT_QP_ACTIVE) {
            q->counted = 1;
            if (qi.qid == 0)
                s->totals[q->group].admin_qpairs++;
            else
                s->totals[q->group].io_qpairs++;
        }
        struct sv_qp_info vi;
        if (qi.qp_num && sv_qp_info(s->f, qi.qp_num, &vi) == 0) {
            q->send_wrs = vi.posts_send;
            q->recv_wrs = vi.posts_recv;
        }
    }
    /* the ones not confirmed are gone: keep their counts, drop the entries */
    uint32_t kept = 0;
    for (uint32_t i = 0; i < s->nseen; i++) {
        struct seen_qpair *q = &s->seen[i];
        if (q->live == -1) {
            s->totals[q->group].retired_send_wrs += q->send_wrs;
            s->totals[q->group].retired_recv_wrs += q->recv_wrs;
            continue;
        }
        s->seen[kept++] = *q;
    }
    s->nseen = kept;
}

static int run_target(struct nrt_dropin_server *s)
{
    uint64_t before = nrt_progress_counter(s->t);
    int did = 0;
    /* a qpair a Connect made active since the last look is counted before a CM event can
     * take it away */
    if (before != s->scanned_at) {
        scan_qpairs(s);
        s->scanned_at = before;
    }
    if (nrt_accept_poll(s->t) > 0) {
        did = 1;
        scan_qpairs(s);
    }
    for (uint32_t g = 0; g < s->groups; g++)
        if (nrt_poll_group(s->t, (int)g) > 0)
            did = 1;
    s->passes++;
    return did || nrt_progress_counter(s->t) != before;
}

/* The target's own verbs calls autoprogress too: the thread already running the target
 * is not let in again (simverbs guards its hook calls; a pass by hand,
 * nrt_dropin_progress, needs this). */
static int progress_hook(void *arg)
{
    struct nrt_dropin_server *s = arg;
    if (s->running && pthread_equal(s->owner, pthread_self()))
        return 0;
    pthread_mutex_lock(&s->lock);
    s->owner = pthread_self();
    s->running = 1;
    int did = run_target(s);
    s->running = 0;
    pthread_mutex_unlock(&s->lock);
    return did;
}

/* The transport (listening on ipv4's device) joins the fabric's autoprogress. */
struct nrt_dropin_server *nrt_dropin_attach(struct nrt_transport *t, uint32_t ipv4, char *err,
                                            size_t errlen)
{
    struct sv_fabric *f = sv_fabric_current();
    if (!t || !f) {
        say(err, errlen, "attach needs a transport on the process's fabric (nrt_dropin_fabric)");
        return NULL;
    }
    struct nrt_dropin_server *s = calloc(1, sizeof *s);
    if (!s) {
        say(err, errlen, "no memory");
        return NULL;
    }
    struct nrt_opts o;
    nrt_transport_get_opts(t, &o);
    s->t = t;
    s->f = f;
    s->groups = o.num_poll_groups < NRT_MAX_POLL_GROUPS ? o.num_poll_groups : NRT_MAX_POLL_GROUPS;
    pthread_mutex_init(&s->lock, NULL);
    nrt_bdev_set_auto(t, 1);
    int dev = sv_device_find_ipv4(f, ipv4);
    snprintf(s->dev_name, sizeof s->dev_name, "%s",
             dev >= 0 && sv_device_name(f, dev) ? sv_device_name(f, dev) : "simverbs");
    if (sv_fabric_add_progress_hook(f, progress_hook, s) < 0) {
        say(err, errlen, "%s", sv_error(f));
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    return s;
}

/* One pass of the target by hand (what the hook does), for a caller that does not wait. */
int nrt_dropin_progress(struct nrt_dropin_server *s)
{
    return s ? progress_hook(s) : NRT_EINVAL;
}

uint64_t nrt_dropin_passes(struct nrt_dropin_server *s) { return s ? s->passes : 0; }

int nrt_dropin_detach(struct nrt_dropin_server *s)
{
    if (!s)
        return NRT_EINVAL;
    pthread_mutex_lock(&s->lock);
    sv_fabric_remove_progress_hook(s->f, progress_hook, s);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_destroy(&s->lock);
    free(s->seen);
    free(s);
    return 0;
}

int nrt_dropin_set_log_file(const char *path)
{
    return nrt_target_set_log_file ? nrt_target_set_log_file(path) : 0;
}

/* ---- statistics: the shape of SPDK's nvmf_get_stats -------------------------------------- */

struct out {
    char *buf;
    size_t len, used;            /* used may pass len: the size a caller needs */
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->used < o->len ? o->len - o->used : 0;
    int n = vsnprintf(room ? o->buf + o->used : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->used += (size_t)n;
}

static void builtin_stats(struct nrt_dropin_server *s, struct out *o)
{
    scan_qpairs(s);
    const char *dev_name = s->dev_name;
    put(o, "{\"tick_rate\":%u,\"poll_groups\":[", 1000000u);
    for (uint32_t g = 0; g < s->groups; g++) {
        struct nrt_group_stats gs;
        memset(&gs, 0, sizeof gs);
        nrt_group_stats(s->t, (int)g, &gs);
        uint64_t cur_admin = 0, cur_io = 0, send_wrs = s->totals[g].retired_send_wrs,
                 recv_wrs = s->totals[g].retired_recv_wrs;
        uint64_t pend_read = 0, pend_write = 0, pend_send = 0;
        for (uint32_t i = 0; i < s->nseen; i++) {
            struct seen_qpair *q = &s->seen[i];
            if (q->group != g || !q->counted)
                continue;
            if (q->qid == 0)
                cur_admin++;
            else
                cur_io++;
            send_wrs += q->send_wrs;
            recv_wrs += q->recv_wrs;
            struct nrt_qpair_info qi;
            if (nrt_qpair_info(s->t, q->handle, &qi) == 0) {
                pend_read += qi.pending_read;
                pend_write += qi.pending_write;
                pend_send += qi.pending_send;
            }
        }
        int bdev = g == 0 ? nrt_bdev_pending(s->t) : 0;
        put(o, "%s{\"name\":\"nvmf_tgt_poll_group_%03u\",\"admin_qpairs\":%llu,"
            "\"io_qpairs\":%llu,\"current_admin_qpairs\":%llu,\"current_io_qpairs\":%llu,"
            "\"pending_bdev_io\":%d,\"completed_nvme_io\":%llu,\"transports\":[{"
            "\"trtype\":\"RDMA\",\"pending_data_buffer\":%llu,\"devices\":[{"
            "\"name\":\"%s\",\"polls\":%llu,\"idle_polls\":%llu,\"completions\":%llu,"
            "\"requests\":%llu,\"request_latency\":0,\"pending_free_request\":0,"
            "\"pending_rdma_read\":%llu,\"pending_rdma_write\":%llu,"
            "\"pending_rdma_send\":%llu,\"total_send_wrs\":%llu,"
            "\"send_doorbell_updates\":%llu,\"total_recv_wrs\":%llu,"
            "\"recv_doorbell_updates\":%llu}]}]}",
            g ? "," : "", g, (unsigned long long)s->totals[g].admin_qpairs,
            (unsigned long long)s->totals[g].io_qpairs, (unsigned long long)cur_admin,
            (unsigned long long)cur_io, bdev < 0 ? 0 : bdev, (unsigned long long)gs.requests,
            (unsigned long long)gs.pending_data_buffer, dev_name,
            (unsigned long long)gs.polls, (unsigned long long)gs.idle_polls,
            (unsigned long long)gs.completions, (unsigned long long)gs.requests,
            (unsigned long long)pend_read, (unsigned long long)pend_write,
            (unsigned long long)pend_send, (unsigned long long)send_wrs,
            (unsigned long long)send_wrs, (unsigned long long)recv_wrs,
            (unsigned long long)recv_wrs);
    }
    put(o, "]}");
}

/* The statistics as JSON into buf (NUL-terminated when it fits); returns the length the
 * whole text needs (call again with more room if that is >= len), < 0 on error. */
int nrt_dropin_stats_json(struct nrt_dropin_server *s, char *buf, size_t len)
{
    if (!s || (len && !buf))
        return NRT_EINVAL;
    pthread_mutex_lock(&s->lock);
    int n;
    if (nrt_target_stats_json) {
        n = nrt_target_stats_json(s->t, buf, len);
    } else {
        struct out o = {buf, len, 0};
        builtin_stats(s, &o);
        n = (int)o.used;
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}
