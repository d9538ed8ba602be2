/* prng: the simulation's only source of randomness — xoshiro256** streams seeded with splitmix64 (hk_splitmix64,
 * core/hash.h) from the scenario seed and a stream id, so each component (the core, each peer, the platform, the
 * simulated tracker) draws from its own reproducible stream whatever the scheduling order.
 *
 * Contract: pure functions of the stream state, no allocation, no failure; the sequence of every seed is fixed
 * forever (scenario event logs depend on it). */
#ifndef HEKATE_SIM_PRNG_H
#define HEKATE_SIM_PRNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct prng {
    uint64_t s[4];
} prng;

void prng_seed(prng *r, uint64_t seed, uint64_t stream);
void prng_seed_state(prng *r, uint64_t x);          /* the 4 words are splitmix64 outputs from state x */
uint64_t prng_next(prng *r);
double prng_unit(prng *r);                          /* uniform in [0, 1) */
double prng_uniform(prng *r, double lo, double hi); /* uniform in [lo, hi]; lo when lo == hi */
double prng_exponential(prng *r, double mean);      /* mean > 0 */
uint64_t prng_below(prng *r, uint64_t n);           /* uniform in [0, n), n > 0, unbiased */
void prng_fill(prng *r, void *buf, size_t n);

#endif
