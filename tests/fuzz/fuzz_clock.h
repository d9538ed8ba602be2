/* fuzz_clock: the clock and random source that the announcer fuzz targets (fuzz_tracker_http, fuzz_tracker_udp) give
 * the base of hk_announcer_runtime: a time the target moves, the one wake-up the announcer asked for, and a fixed
 * LCG behind random_bytes.
 * A target's runtime context starts with a fuzz_clock, so the callbacks below take that context as it is. */
#ifndef HEKATE_FUZZ_CLOCK_H
#define HEKATE_FUZZ_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "announcer.h"

typedef struct fuzz_clock {
    hk_time now, wake;
    uint64_t rng;
} fuzz_clock;

/* 100 s into the run, no wake-up asked for, the LCG seeded with `seed`. */
static inline fuzz_clock fuzz_clock_start(uint64_t seed)
{
    return (fuzz_clock){.now = HK_SECONDS(100), .wake = HK_TIME_NEVER, .rng = seed};
}

static inline hk_time fuzz_clock_now(void *c) { return ((fuzz_clock *)c)->now; }
static inline void fuzz_clock_wake(void *c, hk_time t) { ((fuzz_clock *)c)->wake = t; }

static inline void fuzz_clock_rand(void *c, void *buf, size_t n)
{
    fuzz_clock *k = c;
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++) {
        k->rng = k->rng * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (uint8_t)(k->rng >> 56);
    }
}

/* Delivers the announcer's wake-ups due by t (at most 1000), moving the clock to each. */
static inline void fuzz_clock_run(hk_announcer *a, fuzz_clock *k, hk_time t)
{
    for (int guard = 0; k->wake <= t && guard < 1000; guard++) {
        if (k->wake > k->now)
            k->now = k->wake;
        k->wake = HK_TIME_NEVER;
        hk_announcer_on_wake(a);
    }
}

#endif
