/* ih_index_bench: the info-hash index (core/ih_index.h) alone at N records (default 10^6): insert time, lookup time
 * of keys present (every record, in a scattered order) and absent, and the slots it holds. Keys are random 20-byte
 * info-hashes in one array (the owner's pool: a probe reads one key per slot passed, as in the torrent table). Not
 * built by CMake (a one-off measurement recorded in docs/benchmarks.md); against any build's core library:
 *   cc -O2 -Icore bench/ih_index_bench.c build/core/libhekate_core.a -o /tmp/ih_index_bench
 *   /tmp/ih_index_bench [N] [rounds] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hash.h"
#include "ih_index.h"

static uint8_t (*keys)[20];

static const uint8_t *key_of(const void *o, uint32_t r)
{
    (void)o;
    return keys[r];
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1000000u;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    keys = malloc((size_t)n * 2 * 20); /* n present, then n absent */
    uint64_t st = 42;
    for (size_t i = 0; i < (size_t)n * 2 * 20; i += 8) {
        uint64_t x = hk_splitmix64(&st);
        memcpy(keys[0] + i, &x, 8);
    }
    hk_mem mem = { 0 };
    hk_ih_index ix;
    hk_ih_init(&ix, &mem, 16, true, key_of, NULL);
    double t0 = now();
    for (uint32_t i = 0; i < n; i++)
        if (hk_ih_insert(&ix, i) != 0)
            return 1;
    double t1 = now(), hit = 1e9, miss = 1e9;
    uint32_t ok = 0;
    for (int r = 0; r < rounds; r++) {
        double a = now();
        for (uint32_t i = 0; i < n; i++) {
            uint32_t k = (uint32_t)(((uint64_t)i * 2654435761u) % n);
            ok += hk_ih_find(&ix, keys[k]) == k;
        }
        double b = now();
        for (uint32_t i = 0; i < n; i++)
            ok += hk_ih_find(&ix, keys[n + (uint32_t)(((uint64_t)i * 2654435761u) % n)]) == HK_IH_NONE;
        double c = now();
        hit = b - a < hit ? b - a : hit;
        miss = c - b < miss ? c - b : miss;
    }
    printf("%u records: %u slots (load %.3f, %.2f B/record), insert %.0f ns each, lookups (best of %d) %.1f ns "
           "present, %.1f ns absent (%u ok of %llu)\n", n, ix.cap, (double)n / ix.cap, (double)hk_ih_bytes(&ix) / n,
           (t1 - t0) / n * 1e9, rounds, hit / n * 1e9, miss / n * 1e9, ok, 2ull * n * (unsigned long long)rounds);
    hk_ih_free(&ix);
    return 0;
}
