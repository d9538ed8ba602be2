/* histogram: a fixed-bucket latency histogram (the core keeps its request and tracker latencies in them, the backend
 * its disk loads; backend-real/lib/ops/metrics_render.h renders them). Pure: no I/O, no clock (the caller measures).
 *
 * Contract
 * --------
 * Buckets have upper bounds in nanoseconds, strictly increasing, at most HK_HIST_MAX_BUCKETS of them, plus the
 * implicit +Inf bucket. Counts are kept per bucket (not cumulative; the renderer accumulates them), with the count
 * and the sum of every observation. Observing is O(buckets), allocates nothing and cannot fail. Not thread-safe: the
 * daemon observes and renders on its loop thread only.
 */
#ifndef HEKATE_HISTOGRAM_H
#define HEKATE_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define HK_HIST_MAX_BUCKETS 24

typedef struct hk_histogram {
    size_t nbounds;                              /* finite buckets */
    uint64_t bounds_ns[HK_HIST_MAX_BUCKETS];     /* upper bounds (inclusive: le), increasing */
    uint64_t counts[HK_HIST_MAX_BUCKETS + 1];    /* per bucket; counts[nbounds] is the +Inf bucket */
    uint64_t count;                              /* observations */
    uint64_t sum_ns;                             /* their sum (saturating) */
} hk_histogram;

/* An empty histogram with these bounds: 0, or -1 if n > HK_HIST_MAX_BUCKETS or the bounds do not increase. */
int hk_hist_init(hk_histogram *h, const uint64_t *bounds_ns, size_t n);
/* The default disk latency buckets: 50 us to 10 s, roughly x2.5 apart. Always succeeds. */
void hk_hist_init_latency(hk_histogram *h);
void hk_hist_observe(hk_histogram *h, uint64_t ns);

#endif
