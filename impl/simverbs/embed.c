/*
 * embed.c — what a program that carries its own target needs of the fabric: addresses
 * of its choosing for the devices, and a progress hook, so that autoprogress (a host
 * polling an empty CQ, waiting on a CM channel or a completion channel) also runs the
 * target's pollers in the same thread.
 */
#include "sv_internal.h"

int sv_fabric_add_progress_hook(struct sv_fabric *f, int (*hook)(void *arg), void *arg)
{
    if (!f || !hook)
        return -EINVAL;
    if (f->nhooks == SV_MAX_HOOKS) {
        sv__err(f, "sv_fabric_add_progress_hook: at most %d hooks", SV_MAX_HOOKS);
        return -ENOSPC;
    }
    f->hooks[f->nhooks].fn = hook;
    f->hooks[f->nhooks].arg = arg;
    f->nhooks++;
    return 0;
}

int sv_fabric_remove_progress_hook(struct sv_fabric *f, int (*hook)(void *arg), void *arg)
{
    if (!f)
        return -EINVAL;
    for (uint32_t i = 0; i < f->nhooks; i++) {
        if (f->hooks[i].fn == hook && f->hooks[i].arg == arg) {
            memmove(&f->hooks[i], &f->hooks[i + 1], (f->nhooks - i - 1) * sizeof f->hooks[0]);
            f->nhooks--;
            return 0;
        }
    }
    return -ENOENT;
}

const char *sv_device_name(struct sv_fabric *f, int dev)
{
    return f && dev >= 0 && dev < f->ndev ? f->devs[dev]->attr.name : NULL;
}

int sv_device_set_ipv4(struct sv_fabric *f, int dev, uint32_t ipv4)
{
    if (!f || dev < 0 || dev >= f->ndev)
        return -EINVAL;
    for (int d = 0; d < f->ndev; d++) {
        if (d != dev && f->devs[d]->ipv4 == ipv4) {
            sv__err(f, "sv_device_set_ipv4: device %d already has that address", d);
            return -EADDRINUSE;
        }
    }
    f->devs[dev]->ipv4 = ipv4;
    return 0;
}

int sv_device_find_ipv4(struct sv_fabric *f, uint32_t ipv4)
{
    if (!f)
        return -EINVAL;
    int d = sv__dev_of_ip(f, ipv4);
    return d >= 0 ? d : -ENOENT;
}
