/* verify_pass: owns a background verification pass's pacing clock and progress counters (contract in
 * verify_pass.h). */
#include "verify_pass.h"

#include <stdio.h>

static hk_time add_sat(hk_time a, hk_time b)
{
    return a > HK_TIME_NEVER - b ? HK_TIME_NEVER : a + b;
}

static uint64_t clamp_rate(uint64_t rate)
{
    return rate < 1 ? 1 : rate > HK_VPASS_RATE_MAX ? HK_VPASS_RATE_MAX : rate;
}

void hk_vpass_init(hk_vpass *p, uint64_t rate, uint32_t max_inflight)
{
    *p = (hk_vpass){.rate = clamp_rate(rate), .max_inflight = max_inflight ? max_inflight : 1};
}

void hk_vpass_set_rate(hk_vpass *p, uint64_t rate)
{
    p->rate = clamp_rate(rate);
    p->carry = 0;
}

void hk_vpass_add(hk_vpass *p, uint64_t bytes, hk_time now)
{
    if (!p->active) {
        p->active = true;
        p->started = p->reported = now;
        p->torrents_total = p->torrents_done = 0;
        p->bytes_total = p->bytes_done = p->bytes_checked = 0;
        if (p->next_at < now)
            p->next_at = now;
    }
    p->torrents_total++;
    p->bytes_total += bytes;
}

bool hk_vpass_may_issue(const hk_vpass *p, hk_time now)
{
    return p->active && p->inflight < p->max_inflight && now >= p->next_at;
}

void hk_vpass_issued(hk_vpass *p, uint64_t n, hk_time now)
{
    if (p->next_at < now)
        p->next_at = now; /* time not used is not saved up */
    /* n / rate seconds in nanoseconds, exactly over many pieces: whole seconds, then the rest with the carry */
    uint64_t rest = (n % p->rate) * HK_NS_PER_SEC + p->carry; /* < rate x 10^9 + rate: fits (rate <= 2^34) */
    uint64_t whole = n / p->rate;
    uint64_t step = whole > HK_TIME_NEVER / HK_NS_PER_SEC ? HK_TIME_NEVER : whole * HK_NS_PER_SEC;
    step = add_sat(step, rest / p->rate);
    p->carry = rest % p->rate;
    p->next_at = add_sat(p->next_at, step);
    p->inflight++;
}

void hk_vpass_completed(hk_vpass *p, uint64_t n, bool again)
{
    if (p->inflight)
        p->inflight--;
    if (!again) {
        p->bytes_done += n;
        p->bytes_checked += n;
    }
}

void hk_vpass_skip(hk_vpass *p, uint64_t n)
{
    p->bytes_done += n;
}

void hk_vpass_torrent_done(hk_vpass *p, uint64_t remaining)
{
    p->torrents_done++;
    p->bytes_done += remaining;
}

void hk_vpass_finish(hk_vpass *p)
{
    p->active = false;
}

hk_time hk_vpass_wake(const hk_vpass *p, hk_time now)
{
    if (!p->active || p->inflight >= p->max_inflight)
        return HK_TIME_NEVER;
    return p->next_at > now ? p->next_at : now;
}

bool hk_vpass_report_due(hk_vpass *p, hk_time now, hk_time every)
{
    if (!p->active || now < add_sat(p->reported, every))
        return false;
    p->reported = now;
    return true;
}

uint64_t hk_vpass_rate_now(const hk_vpass *p, hk_time now)
{
    hk_time ms = now > p->started ? (now - p->started) / 1000000u : 0;
    if (ms == 0)
        return 0;
    return p->bytes_checked / ms * 1000u + p->bytes_checked % ms * 1000u / ms; /* no overflow below 16 PiB */
}

/* bytes as "812 KiB", "1.2 GiB" */
static void human(uint64_t v, char *buf, size_t len)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
    double d = (double)v;
    unsigned u = 0;
    while (d >= 1024.0 && u + 1 < sizeof units / sizeof *units) {
        d /= 1024.0;
        u++;
    }
    snprintf(buf, len, u == 0 ? "%.0f %s" : "%.1f %s", d, units[u]);
}

char *hk_vpass_format(const hk_vpass *p, hk_time now, char *buf, size_t len)
{
    char done[32], total[32], rate[32], eta[32];
    uint64_t r = hk_vpass_rate_now(p, now);
    human(p->bytes_done, done, sizeof done);
    human(p->bytes_total, total, sizeof total);
    human(r, rate, sizeof rate);
    uint64_t left = p->bytes_total > p->bytes_done ? p->bytes_total - p->bytes_done : 0;
    if (left == 0)
        snprintf(eta, sizeof eta, "0 s");
    else if (r == 0)
        snprintf(eta, sizeof eta, "unknown");
    else
        snprintf(eta, sizeof eta, "%llu s", (unsigned long long)((left + r - 1) / r));
    snprintf(buf, len, "verify: %u/%u torrents, %s of %s, %s/s, ETA %s", p->torrents_done, p->torrents_total, done,
             total, rate, eta);
    return buf;
}
