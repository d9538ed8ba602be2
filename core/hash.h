/* hash: the one set of hash functions and mixers of the tree (core and both backends).
 *
 * Contract
 * --------
 * Pure, total functions: no state, no allocation, no failure. None is cryptographic; they spread keys over the
 * buckets of in-memory tables, and the simulator's pseudo-random streams are seeded through hk_splitmix64. Each
 * function's output is fixed forever (tables and scenario event logs depend on it): change one only with a new name.
 *
 * - hk_fnv1a32_*: 32-bit FNV-1a of a C string, or folded over 32-bit words one at a time (start from
 *   HK_FNV1A32_INIT).
 * - hk_fnv1a64_str: 64-bit FNV-1a of a C string (the raw value; finish it with hk_mix64 for high-bit quality).
 * - hk_mix64: the splitmix64 finaliser (Stafford variant 13): a bijection on 64 bits, every input bit reaching every
 *   output bit. Use it to turn a structured key (a handle, a counter, an address) into a bucket.
 * - hk_splitmix64: the splitmix64 generator step: advances *state by the golden-ratio increment and returns its mix.
 * - hk_mix_info_hash: a 32-bit home position for a 20-byte info-hash; SHA-1 outputs are uniform already, but tests,
 *   benchmarks and hostile peers use patterned hashes, so 16 bytes are folded and mixed.
 */
#ifndef HEKATE_HASH_H
#define HEKATE_HASH_H

#include <stdint.h>
#include <string.h>

#define HK_FNV1A32_INIT 2166136261u
#define HK_FNV1A32_PRIME 16777619u
#define HK_FNV1A64_INIT 14695981039346656037ull
#define HK_FNV1A64_PRIME 1099511628211ull
#define HK_GOLDEN64 0x9E3779B97F4A7C15ull

/* One 32-bit word folded in whole (not byte by byte): the announcer's interned tier sets hash this way. */
static inline uint32_t hk_fnv1a32_u32(uint32_t h, uint32_t word)
{
    return (h ^ word) * HK_FNV1A32_PRIME;
}

static inline uint32_t hk_fnv1a32_str(const char *s)
{
    uint32_t h = HK_FNV1A32_INIT;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * HK_FNV1A32_PRIME;
    return h;
}

static inline uint64_t hk_fnv1a64_str(const char *s)
{
    uint64_t h = HK_FNV1A64_INIT;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * HK_FNV1A64_PRIME;
    return h;
}

static inline uint64_t hk_mix64(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static inline uint64_t hk_splitmix64(uint64_t *state)
{
    return hk_mix64(*state += HK_GOLDEN64);
}

static inline uint32_t hk_mix_info_hash(const uint8_t ih[20])
{
    uint64_t x, y;
    memcpy(&x, ih, 8);
    memcpy(&y, ih + 8, 8);
    x = (x ^ (y * 0xC2B2AE3D27D4EB4Full)) * HK_GOLDEN64;
    return (uint32_t)(x >> 32);
}

#endif
