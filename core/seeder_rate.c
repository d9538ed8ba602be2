/* seeder_rate: owns the upload rate caps (docs/design.md §14): the global token bucket and the per-torrent ones (a
 * pool addressed by hk_torrent_rate_slot, kept in the torrent's side block), the check and charge the service pass
 * makes before each data message, the peers passed over for tokens (they keep their place at the front of the ready
 * ring, so the next pass goes on where this one stopped) and when the ring can be served again (serve_at, which
 * hks_ev_end turns into the one wake-up). Control messages never come here. */
#include <string.h>

#include "infohash.h"
#include "seeder_internal.h"

/* A tenth of a second of the rate, at least the largest message (or cfg.upload_burst when set). */
static uint64_t burst_for(const hk_seeder *s, uint64_t rate)
{
    if (s->cfg.upload_burst)
        return s->cfg.upload_burst;
    uint64_t b = rate / 10, min = HKS_RATE_MIN_BURST(&s->cfg);
    return b < min ? min : b;
}

/* Tokens to wait for when `cost` is short: the message, or 5 ms of the rate when that is more (fewer wake-ups at
 * high rates), never more than the burst. */
static uint64_t wait_for(const hk_token_bucket *b, uint64_t cost)
{
    uint64_t q = b->rate / 200;
    q = q > cost ? q : cost;
    return q < b->burst ? q : b->burst;
}

static hk_token_bucket *torrent_bucket(const hk_seeder *s, const hk_torrent *t)
{
    uint32_t slot = t ? hk_torrent_rate_slot(t) : 0;
    return slot ? &s->tbuckets[slot - 1].tb : NULL;
}

void hks_rate_init(hk_seeder *s)
{
    hk_list_init(&s->rate_passed);
    s->tb_free = HKS_TB_NONE;
    s->rate_torrent_at = HK_TIME_NEVER;
    s->serve_at = s->now;
    if (s->cfg.upload_rate)
        hk_tb_init(&s->rate, s->cfg.upload_rate, burst_for(s, s->cfg.upload_rate), s->now);
}

void hks_rate_config_changed(hk_seeder *s, uint64_t old_rate)
{
    uint64_t rate = s->cfg.upload_rate;
    if (!rate)
        return; /* no cap from now on: the bucket is no longer consulted */
    if (old_rate)
        hk_tb_set(&s->rate, rate, burst_for(s, rate), s->now);
    else
        hk_tb_init(&s->rate, rate, burst_for(s, rate), s->now);
    hks_log(s, HK_LOG_DEBUG, "upload rate cap now %llu bytes/s", (unsigned long long)rate);
}

void hks_rate_free(hk_seeder *s)
{
    hk_mem_free(&s->mem, s->tbuckets, (size_t)s->tb_cap * sizeof *s->tbuckets);
    s->tbuckets = NULL;
    s->tb_cap = s->tb_used = 0;
    s->tb_free = HKS_TB_NONE;
}

/* A free bucket index (the pool grows by doubling; freed ones are reused last-freed-first); HKS_TB_NONE when out of
 * memory. */
static uint32_t bucket_alloc(hk_seeder *s)
{
    if (s->tb_free != HKS_TB_NONE) {
        uint32_t i = s->tb_free;
        s->tb_free = s->tbuckets[i].next_free;
        return i;
    }
    if (s->tb_used == s->tb_cap) {
        uint32_t ncap = s->tb_cap ? s->tb_cap * 2 : 16;
        hks_tbucket *nb = hk_mem_realloc(&s->mem, s->tbuckets, (size_t)s->tb_cap * sizeof *nb,
                                         (size_t)ncap * sizeof *nb);
        if (!nb)
            return HKS_TB_NONE;
        s->tbuckets = nb;
        s->tb_cap = ncap;
    }
    return s->tb_used++;
}

/* Gives torrent t its own cap of `rate` (> 0): a new full bucket, or the old one at the new rate. */
static bool torrent_set(hk_seeder *s, hk_torrent *t, uint64_t rate)
{
    hk_token_bucket *b = torrent_bucket(s, t);
    if (b) {
        hk_tb_set(b, rate, burst_for(s, rate), s->now);
        return true;
    }
    hk_torrent_ext *x = hk_tt_ext(&s->torrents, t); /* the slot is kept in the torrent's side block */
    if (!x)
        return false;
    uint32_t i = bucket_alloc(s);
    if (i == HKS_TB_NONE) {
        hk_tt_ext_trim(&s->torrents, t);
        return false;
    }
    hk_tb_init(&s->tbuckets[i].tb, rate, burst_for(s, rate), s->now);
    x->rate_slot = i + 1;
    return true;
}

static void torrent_clear(hk_seeder *s, hk_torrent *t)
{
    uint32_t slot = t ? hk_torrent_rate_slot(t) : 0;
    if (!slot)
        return;
    s->tbuckets[slot - 1].next_free = s->tb_free;
    s->tb_free = slot - 1;
    t->ext->rate_slot = 0;
    hk_tt_ext_trim(&s->torrents, t);
}

bool hks_rate_torrent_added(hk_seeder *s, uint32_t rec)
{
    hk_torrent *t = hk_tt_get(&s->torrents, rec);
    return !t || !s->cfg.torrent_upload_rate || torrent_set(s, t, s->cfg.torrent_upload_rate);
}

void hks_rate_torrent_removed(hk_seeder *s, uint32_t rec)
{
    torrent_clear(s, hk_tt_get(&s->torrents, rec));
}

hks_rate_verdict hks_rate_check(hk_seeder *s, const hk_torrent *t, uint64_t cost)
{
    if (s->cfg.upload_rate && !hk_tb_has(&s->rate, cost)) {
        s->rate_stopped = true;
        s->serve_at = hk_tb_time_for(&s->rate, wait_for(&s->rate, cost));
        s->stats.rate_stops++;
        return HKS_RATE_SHORT_GLOBAL;
    }
    hk_token_bucket *b = torrent_bucket(s, t);
    if (b) {
        hk_tb_refill(b, s->now);
        if (!hk_tb_has(b, cost)) {
            hk_time at = hk_tb_time_for(b, wait_for(b, cost));
            if (at < s->rate_torrent_at)
                s->rate_torrent_at = at;
            s->stats.rate_stops++;
            return HKS_RATE_SHORT_TORRENT;
        }
    }
    return HKS_RATE_OK;
}

void hks_rate_charge(hk_seeder *s, const hk_torrent *t, uint64_t cost)
{
    if (s->cfg.upload_rate)
        hk_tb_take(&s->rate, cost);
    hk_token_bucket *b = torrent_bucket(s, t);
    if (b)
        hk_tb_take(b, cost);
}

void hks_rate_pass_begin(hk_seeder *s)
{
    s->serve_at = s->now;
    s->rate_stopped = false;
    s->rate_torrent_at = HK_TIME_NEVER;
    if (s->cfg.upload_rate)
        hk_tb_refill(&s->rate, s->now);
}

void hks_rate_pass_over(hk_seeder *s, hk_peer *p)
{
    hk_list_insert_tail(&s->rate_passed, &p->ready_link);
    p->rate_passed = true;
    s->nready++;
    s->npassed++;
}

void hks_rate_pass_end(hk_seeder *s)
{
    if (!s->rate_stopped && s->nready == s->npassed && s->npassed)
        s->serve_at = s->rate_torrent_at; /* only peers waiting for their torrent's tokens are left */
    hk_list *n;
    while ((n = hk_list_last(&s->rate_passed)) != NULL) {
        hk_peer *p = HK_LIST_ENTRY(n, hk_peer, ready_link);
        hk_list_remove(n);
        hk_list_insert_head(&s->ready, n);
        p->rate_passed = false;
    }
    s->npassed = 0;
}

bool hk_seeder_set_torrent_rate(hk_seeder *s, const uint8_t info_hash[20], uint64_t rate)
{
    hks_ev_begin(s);
    hk_torrent *t = hk_tt_get(&s->torrents, hk_tt_find(&s->torrents, info_hash));
    bool ok = t && rate <= HK_TB_RATE_MAX;
    if (ok && rate)
        ok = torrent_set(s, t, rate);
    else if (ok)
        torrent_clear(s, t);
    if (ok) {
        char hex[IH_HEX_LEN + 1];
        ih_hex(info_hash, hex);
        hks_log(s, HK_LOG_DEBUG, "torrent %s: upload rate cap %llu B/s%s", hex, (unsigned long long)rate,
                rate ? "" : " (none)");
    }
    hks_ev_end(s);
    return ok;
}
