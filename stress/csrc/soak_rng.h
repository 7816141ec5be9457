/*
 * soak_rng.h — the soak driver's seeded pseudo-random numbers.
 *
 * splitmix64 turns a seed (and a lifecycle index) into the 256-bit state of a xoshiro256**
 * generator; every draw of the driver comes from that generator, so a seed and a lifecycle
 * index fix every decision the driver makes.  Nothing else (no clock, no address) is ever
 * mixed in: the same seed gives the same event sequence on any machine.
 */
#ifndef SOAK_RNG_H
#define SOAK_RNG_H
#include <stdint.h>

struct soak_rng {
    uint64_t s[4];
};

static inline uint64_t soak_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The seed of lifecycle `index` of a run seeded `seed`: independent of every other
 * lifecycle, so one lifecycle replays alone. */
static inline uint64_t soak_lifecycle_seed(uint64_t seed, uint64_t index)
{
    uint64_t x = seed ^ (index * 0xD1B54A32D192ED03ull);
    soak_splitmix64(&x);
    return soak_splitmix64(&x);
}

static inline void soak_rng_seed(struct soak_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = soak_splitmix64(&x);
}

static inline uint64_t soak_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t soak_next(struct soak_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = soak_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = soak_rotl(s[3], 45);
    return out;
}

/* Uniform in 0 .. n-1 (n >= 1), by Lemire's multiply-shift (the tiny bias is irrelevant
 * here and the result is still a pure function of the state). */
static inline uint32_t soak_below(struct soak_rng *r, uint32_t n)
{
    return (uint32_t)(((soak_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* True with probability num/den. */
static inline int soak_chance(struct soak_rng *r, uint32_t num, uint32_t den)
{
    return soak_below(r, den) < num;
}

/* Uniform in lo .. hi inclusive. */
static inline uint32_t soak_range(struct soak_rng *r, uint32_t lo, uint32_t hi)
{
    return lo + soak_below(r, hi - lo + 1);
}

#define SOAK_PICK(rng, arr) ((arr)[soak_below((rng), sizeof(arr) / sizeof((arr)[0]))])

#endif
