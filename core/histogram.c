/* histogram: fixed-bucket latency histogram, pure (see histogram.h). */
#include "histogram.h"

#include <string.h>

int hk_hist_init(hk_histogram *h, const uint64_t *bounds_ns, size_t n)
{
    if (n > HK_HIST_MAX_BUCKETS)
        return -1;
    for (size_t i = 1; i < n; i++)
        if (bounds_ns[i] <= bounds_ns[i - 1])
            return -1;
    memset(h, 0, sizeof *h);
    h->nbounds = n;
    if (n)
        memcpy(h->bounds_ns, bounds_ns, n * sizeof *bounds_ns);
    return 0;
}

void hk_hist_init_latency(hk_histogram *h)
{
    static const uint64_t us = 1000, ms = 1000 * 1000;
    static const uint64_t b[] = { 50 * us, 100 * us, 250 * us, 500 * us, 1 * ms, 2500 * us, 5 * ms, 10 * ms,
                                  25 * ms, 50 * ms, 100 * ms, 250 * ms, 500 * ms, 1000 * ms, 2500 * ms, 10000 * ms };
    (void)hk_hist_init(h, b, sizeof b / sizeof *b);
}

void hk_hist_observe(hk_histogram *h, uint64_t ns)
{
    size_t i = 0;
    while (i < h->nbounds && ns > h->bounds_ns[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum_ns = h->sum_ns + ns < h->sum_ns ? UINT64_MAX : h->sum_ns + ns;
}
