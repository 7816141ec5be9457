/*
 * embed.c — what a program that carries its own target needs of the fabric: addresses
 * of its choosing for the devices, and a progress hook, so that autoprogress (a host
 * polling an empty CQ, waiting on a CM channel or a completion channel) also runs the
 * target's pollers in the same thread.
 */
#include "sv_internal.h"

void sv_fabric_set_progress_hook(struct sv_fabric *f, int (*hook)(void *arg), void *arg)
{
    if (!f)
        return;
    f->progress_hook = hook;
    f->progress_arg = arg;
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
