/* perm: owns the table-free random permutation used for the random request strategy (see perm.h). */
#include "perm.h"

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dull;
    x ^= x >> 33;
    return x;
}

void perm_init(perm *p, uint64_t n, uint64_t seed)
{
    unsigned bits = 2;
    while (bits < 64 && (1ull << bits) < n)
        bits++;
    if (bits & 1)
        bits++;
    p->n = n;
    p->half_bits = bits / 2;
    p->half_mask = (1ull << p->half_bits) - 1;
    for (int i = 0; i < 4; i++)
        p->keys[i] = mix(seed + 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1));
}

static uint64_t feistel(const perm *p, uint64_t x)
{
    uint64_t l = x >> p->half_bits, r = x & p->half_mask;
    for (int i = 0; i < 4; i++) {
        uint64_t nl = r;
        r = l ^ (mix(r ^ p->keys[i]) & p->half_mask);
        l = nl;
    }
    return (l << p->half_bits) | r;
}

uint64_t perm_at(const perm *p, uint64_t i)
{
    uint64_t x = i;
    do
        x = feistel(p, x);
    while (x >= p->n);
    return x;
}
