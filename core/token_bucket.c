/* token_bucket: owns the integer arithmetic of a byte-rate token bucket (see token_bucket.h). */
#include "token_bucket.h"

static uint64_t clamp(uint64_t v, uint64_t max)
{
    return v < 1 ? 1 : v > max ? max : v;
}

void hk_tb_init(hk_token_bucket *b, uint64_t rate, uint64_t burst, hk_time now)
{
    b->rate = clamp(rate, HK_TB_RATE_MAX);
    b->burst = clamp(burst, HK_TB_BURST_MAX);
    b->tokens = b->burst;
    b->frac = 0;
    b->at = now;
}

void hk_tb_set(hk_token_bucket *b, uint64_t rate, uint64_t burst, hk_time now)
{
    hk_tb_refill(b, now);
    b->rate = clamp(rate, HK_TB_RATE_MAX);
    b->burst = clamp(burst, HK_TB_BURST_MAX);
    if (b->tokens >= b->burst) {
        b->tokens = b->burst;
        b->frac = 0;
    }
}

/* Nanoseconds after `at` at which the bucket holds n tokens (n <= burst): ceil((deficit * 1e9 - frac) / rate). */
static uint64_t ns_for(const hk_token_bucket *b, uint64_t n)
{
    if (b->tokens >= n)
        return 0;
    uint64_t need = (n - b->tokens) * HK_NS_PER_SEC - b->frac; /* deficit <= 2^34: no overflow */
    return (need + b->rate - 1) / b->rate;
}

void hk_tb_refill(hk_token_bucket *b, hk_time now)
{
    if (now <= b->at)
        return;
    hk_time elapsed = now - b->at;
    b->at = now;
    if (b->tokens >= b->burst)
        return;
    if (elapsed >= ns_for(b, b->burst)) {
        b->tokens = b->burst;
        b->frac = 0;
        return;
    }
    /* elapsed < the time to fill: sec * rate <= burst + rate, rem * rate < 1e9 * 2^34 < 2^64 - 1e9 */
    uint64_t sec = elapsed / HK_NS_PER_SEC, rem = elapsed % HK_NS_PER_SEC;
    uint64_t part = rem * b->rate + b->frac;
    b->tokens += sec * b->rate + part / HK_NS_PER_SEC;
    b->frac = part % HK_NS_PER_SEC;
    if (b->tokens >= b->burst) {
        b->tokens = b->burst;
        b->frac = 0;
    }
}

bool hk_tb_take(hk_token_bucket *b, uint64_t n)
{
    if (b->tokens < n)
        return false;
    b->tokens -= n;
    return true;
}

hk_time hk_tb_time_for(const hk_token_bucket *b, uint64_t n)
{
    if (n > b->burst)
        n = b->burst;
    uint64_t ns = ns_for(b, n);
    return b->at > HK_TIME_NEVER - 1 - ns ? HK_TIME_NEVER - 1 : b->at + ns;
}
