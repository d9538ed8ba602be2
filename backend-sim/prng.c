/* prng: owns the pseudo-random streams of the simulation (xoshiro256**, seeded by core/hash.h's splitmix64). */
#include "prng.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#include "hash.h"

void prng_seed_state(prng *r, uint64_t x)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = hk_splitmix64(&x);
}

void prng_seed(prng *r, uint64_t seed, uint64_t stream)
{
    prng_seed_state(r, seed ^ (stream * 0xd1342543de82ef95ull + 0x2545f4914f6cdd1dull));
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t prng_next(prng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double prng_unit(prng *r)
{
    return (double)(prng_next(r) >> 11) * 0x1.0p-53;
}

double prng_uniform(prng *r, double lo, double hi)
{
    if (hi <= lo)
        return lo;
    return lo + (hi - lo) * prng_unit(r);
}

double prng_exponential(prng *r, double mean)
{
    return -mean * log1p(-prng_unit(r));
}

uint64_t prng_below(prng *r, uint64_t n)
{
    assert(n > 0);
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = prng_next(r);
    while (x >= limit);
    return x % n;
}

void prng_fill(prng *r, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n >= 8) {
        uint64_t x = prng_next(r);
        memcpy(p, &x, 8);
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t x = prng_next(r);
        memcpy(p, &x, n);
    }
}
