/*
 * verbs_extras.c — libibverbs calls beyond the core verbs that an unmodified program (or a
 * binding such as pyverbs) makes while it opens a device: the fork status, the extended
 * GID queries and the fork-range calls.  The one GID is RoCE v2 (ibv_query_gid's
 * IPv4-mapped device address).
 */
#include <stdlib.h>

#include "sv_internal.h"

/* No memory is pinned by a kernel: a child process after fork() is no danger to the
 * fabric, which is what rdma-core reports when the kernel makes fork safe. */
enum ibv_fork_status ibv_is_fork_initialized(void) { return IBV_FORK_UNNEEDED; }

/* libibverbs exports these without declaring them in verbs.h any more. */
int ibv_dontfork_range(void *base, size_t size);
int ibv_dofork_range(void *base, size_t size);
int ibv_query_gid_type(struct ibv_context *context, uint8_t port_num, unsigned int index,
                       uint32_t *type);

int ibv_dontfork_range(void *base, size_t size)
{
    (void)base;
    (void)size;
    return 0;
}

int ibv_dofork_range(void *base, size_t size)
{
    (void)base;
    (void)size;
    return 0;
}

enum { SV_GID_TYPE_SYSFS_ROCE_V2 = 1 };   /* rdma-core's IBV_GID_TYPE_SYSFS_ROCE_V2 */

int ibv_query_gid_type(struct ibv_context *context, uint8_t port_num, unsigned int index,
                       uint32_t *type)
{
    union ibv_gid gid;
    if (!type || ibv_query_gid(context, port_num, (int)index, &gid) != 0)
        return EINVAL;
    *type = SV_GID_TYPE_SYSFS_ROCE_V2;
    return 0;
}

int _ibv_query_gid_ex(struct ibv_context *context, uint32_t port_num, uint32_t gid_index,
                      struct ibv_gid_entry *entry, uint32_t flags, size_t entry_size)
{
    if (!entry || flags || entry_size < sizeof *entry || port_num > 255 || gid_index > INT32_MAX)
        return EINVAL;
    memset(entry, 0, entry_size);
    if (ibv_query_gid(context, (uint8_t)port_num, (int)gid_index, &entry->gid) != 0)
        return ENODATA;          /* rdma-core's answer for an empty table slot */
    entry->gid_index = gid_index;
    entry->port_num = port_num;
    entry->gid_type = IBV_GID_TYPE_ROCE_V2;
    entry->ndev_ifindex = 0;
    return 0;
}

ssize_t _ibv_query_gid_table(struct ibv_context *context, struct ibv_gid_entry *entries,
                             size_t max_entries, uint32_t flags, size_t entry_size)
{
    if (!context || (max_entries && !entries) || flags || entry_size < sizeof *entries) {
        errno = EINVAL;
        return -EINVAL;
    }
    if (!max_entries)
        return 0;
    struct ibv_gid_entry *e = (struct ibv_gid_entry *)(void *)entries;
    return _ibv_query_gid_ex(context, 1, 0, e, 0, entry_size) == 0 ? 1 : 0;
}
