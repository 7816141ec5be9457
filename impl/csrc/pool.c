/*
 * pool.c — object pools with a shared ring and per-poll-group caches.
 *
 * Gets and puts go through the caller's group cache: a get that finds the
 * cache short refills it from the ring in bulk (up to cache_size beyond what
 * it needs), a put that leaves the cache above cache_size flushes the excess
 * back.  Objects sitting in one group's cache are invisible to the others:
 * that is the real starvation mode the target's minimum-size rule accounts for.
 */
#include "nrt_internal.h"
#include <stdlib.h>
#include <string.h>

int pool_init(struct pool *p, uint32_t capacity, uint32_t num_caches, uint32_t cache_size,
              uint32_t max_get)
{
    memset(p, 0, sizeof(*p));
    p->capacity = capacity;
    p->cache_size = cache_size;
    p->max_get = max_get;
    p->num_caches = num_caches;
    /* room for twice the capacity: a double put is kept, not dropped (see ring_push) */
    p->ring = calloc(capacity ? 2 * (size_t)capacity : 1, sizeof(uint32_t));
    p->seen = calloc(capacity ? capacity : 1, sizeof(uint32_t));
    p->caches = calloc(num_caches, sizeof(struct pool_cache));
    if (!p->ring || !p->seen || !p->caches)
        return NRT_ENOMEM;
    for (uint32_t g = 0; g < num_caches; g++) {
        /* a cache holds at most cache_size after a put, plus one refill */
        p->caches[g].objs = calloc((size_t)cache_size + max_get + 1, sizeof(uint32_t));
        if (!p->caches[g].objs)
            return NRT_ENOMEM;
    }
    for (uint32_t i = 0; i < capacity; i++)
        p->ring[i] = capacity - 1 - i;  /* lowest index handed out first */
    p->ring_count = capacity;
    return 0;
}

void pool_fini(struct pool *p)
{
    if (p->caches)
        for (uint32_t g = 0; g < p->num_caches; g++)
            free(p->caches[g].objs);
    free(p->caches);
    free(p->ring);
    free(p->seen);
    memset(p, 0, sizeof(*p));
}

/* pool_get's refill (nrt_internal.h): all or nothing, as there. */
bool pool_get_slow(struct pool *p, uint32_t group, uint32_t *out, uint32_t n)
{
    struct pool_cache *c = &p->caches[group];
    if (n == 0)
        return true;
    if (n > p->max_get) {
        p->get_failures++;
        return false;
    }
    if (c->count < n) {
        uint32_t want = p->cache_size + n - c->count;
        uint32_t take = want < p->ring_count ? want : p->ring_count;
        memcpy(&c->objs[c->count], &p->ring[p->ring_count - take], take * sizeof(uint32_t));
        c->count += take;
        p->ring_count -= take;
    }
    if (c->count < n) {
        p->get_failures++;
        return false;
    }
    c->count -= n;
    for (uint32_t i = 0; i < n; i++)   /* n is small: a loop beats a memcpy call */
        out[i] = c->objs[c->count + i];
    return true;
}

static void ring_push(struct pool *p, const uint32_t *objs, uint32_t n)
{
    /* A correct ring never holds more than capacity.  A double put (a defect) is
     * kept, so the audit sees the duplicate and the counts exceed the capacity;
     * only beyond twice the capacity is anything dropped, to stay in bounds. */
    uint32_t room = 2 * p->capacity - p->ring_count;
    if (n > room)
        n = room;
    memcpy(&p->ring[p->ring_count], objs, n * sizeof(uint32_t));
    p->ring_count += n;
}

/* pool_put's general case (nrt_internal.h): the cache gives its excess over cache_size to
 * the ring. */
void pool_put_slow(struct pool *p, uint32_t group, const uint32_t *objs, uint32_t n)
{
    struct pool_cache *c = &p->caches[group];
    uint32_t cap = p->cache_size + p->max_get + 1;
    /* The usual put: one chunk, the loop's first pass.  An empty put changes nothing,
     * not even a cache a failed get left above cache_size. */
    if (n && n <= cap - c->count) {
        for (uint32_t i = 0; i < n; i++)
            c->objs[c->count + i] = objs[i];
        c->count += n;
        if (c->count > p->cache_size) {
            ring_push(p, &c->objs[p->cache_size], c->count - p->cache_size);
            c->count = p->cache_size;
        }
        return;
    }
    while (n) {
        uint32_t chunk = cap - c->count < n ? cap - c->count : n;
        for (uint32_t i = 0; i < chunk; i++)
            c->objs[c->count + i] = objs[i];
        c->count += chunk;
        objs += chunk;
        n -= chunk;
        if (c->count > p->cache_size) {
            uint32_t excess = c->count - p->cache_size;
            ring_push(p, &c->objs[p->cache_size], excess);
            c->count = p->cache_size;
        }
    }
}

uint32_t pool_cached(const struct pool *p)
{
    uint32_t sum = 0;
    for (uint32_t g = 0; g < p->num_caches; g++)
        sum += p->caches[g].count;
    return sum;
}

void pool_flush_caches(struct pool *p)
{
    for (uint32_t g = 0; g < p->num_caches; g++) {
        ring_push(p, p->caches[g].objs, p->caches[g].count);
        p->caches[g].count = 0;
    }
}
