/* rt_common: the base runtime actions (core/runtime.h) that every core object's table on the real backend uses as they
 * are: the monotonic clock, the system's randomness and the process log (the seeder's table in real_runtime.c, the
 * announcer's in trackers/trackers.c). Their context is unused; none fails (hk_random_fill aborts without
 * randomness, see wake.h). */
#ifndef HEKATE_RT_COMMON_H
#define HEKATE_RT_COMMON_H

#include <stddef.h>

#include "log.h"
#include "runtime.h"
#include "wake.h"

static inline hk_time hk_rt_now(void *ctx)
{
    (void)ctx;
    return hk_clock_now();
}

static inline void hk_rt_random_bytes(void *ctx, void *buf, size_t n)
{
    (void)ctx;
    hk_random_fill(buf, n);
}

static inline void hk_rt_log(void *ctx, hk_log_level level, const char *line)
{
    (void)ctx;
    hk_log_line(level, line);
}

#endif
