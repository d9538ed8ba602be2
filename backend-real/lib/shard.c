/* shard: the shard function of --shard=K/N and the parsing of its value (see shard.h). */
#include "shard.h"

#include <stdio.h>

uint32_t hk_shard_of(const uint8_t info_hash[20], uint32_t n)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = (x << 8) | info_hash[i];
    return n ? (uint32_t)(x % n) : 0;
}

bool hk_shard_has(const uint8_t info_hash[20], uint32_t k, uint32_t n)
{
    return n <= 1 || hk_shard_of(info_hash, n) == k;
}

/* Decimal digits at *p up to a value of HK_SHARD_MAX (more is an error): 0 and *p past them, or -1. */
static int digits(const char **p, uint32_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > HK_SHARD_MAX)
            return -1;
    }
    *p = s;
    *out = (uint32_t)v;
    return 0;
}

int hk_shard_parse(const char *what, const char *s, uint32_t *k, uint32_t *n, char *err, size_t errlen)
{
    const char *p = s;
    uint32_t kk, nn;
    if (digits(&p, &kk) != 0 || *p++ != '/' || digits(&p, &nn) != 0 || *p != '\0' || nn == 0) {
        snprintf(err, errlen, "%s: '%s' is not K/N (expected e.g. 0/3: shard K of N, 1 <= N <= %u, K from 0 to N-1)",
                 what, s, HK_SHARD_MAX);
        return -1;
    }
    if (kk >= nn) {
        snprintf(err, errlen, "%s: '%s': K must be below N (shards are numbered from 0: 0/%u to %u/%u)", what, s, nn,
                 nn - 1, nn);
        return -1;
    }
    *k = kk;
    *n = nn;
    return 0;
}
