/* The announce scheduler (core/announcer.h) driven by a fake runtime: spreading, intervals, backoff, tiers, caps,
 * unresponsive trackers, stopped on removal and shutdown, and the BEP 15 state machine as the announcer uses it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "announcer.h"
#include "fake_announcer.h"
#include "tracker_udp.h"

static fake_announcer F;

static void reset(void)
{
    fa_reset(&F);
}

static hk_announcer_config config(void)
{
    hk_announcer_config c;
    hk_announcer_config_defaults(&c);
    memcpy(c.peer_id, "-HK0100-000000000000", 20);
    c.port = 6881;
    return c;
}

static hk_announcer *new_ann(const hk_announcer_config *c)
{
    hk_announcer_runtime rt = fa_runtime(&F);
    hk_announcer *a = hk_announcer_new(c, &rt, fa_uploaded, &F);
    cr_assert_not_null(a);
    return a;
}

/* Delivers wake-ups up to time t (each at its own time), then sets the clock to t. */
static void run_until(hk_announcer *a, hk_time t)
{
    while (F.wake <= t) {
        if (F.wake > F.now)
            F.now = F.wake;
        F.wake = HK_TIME_NEVER;
        hk_announcer_on_wake(a);
    }
    if (t > F.now)
        F.now = t;
}

/* Like run_until, answering every announce at once (at the time it was sent). */
static void run_until_answering(hk_announcer *a, hk_time t, const char *body)
{
    while (F.wake <= t) {
        if (F.wake > F.now)
            F.now = F.wake;
        F.wake = HK_TIME_NEVER;
        size_t before = F.nhttp;
        hk_announcer_on_wake(a);
        for (size_t k = before; k < F.nhttp; k++)
            hk_announcer_on_http_done(a, F.http[k].token, 200, (const uint8_t *)body, strlen(body));
    }
    if (t > F.now)
        F.now = t;
}

static void ih_of(uint32_t n, uint8_t ih[20])
{
    uint64_t x = n * 0x9E3779B97F4A7C15ull + 12345;
    for (int i = 0; i < 20; i++) {
        x ^= x >> 29;
        x *= 0xBF58476D1CE4E5B9ull;
        ih[i] = (uint8_t)(x >> 56);
    }
}

static void add1(hk_announcer *a, uint32_t n, const char *url)
{
    uint8_t ih[20];
    ih_of(n, ih);
    uint32_t one = 1;
    cr_assert_eq(hk_announcer_add_torrent(a, ih, &url, &one, 1), HK_ANN_OK);
}

static void reply(hk_announcer *a, size_t call, const char *body)
{
    hk_announcer_on_http_done(a, F.http[call].token, 200, (const uint8_t *)body, strlen(body));
}

static const char *last_url(void)
{
    cr_assert(F.nhttp > 0);
    return F.http[F.nhttp - 1].url;
}

static hk_slot_info slot(hk_announcer *a, uint32_t n, uint32_t tier)
{
    uint8_t ih[20];
    ih_of(n, ih);
    hk_slot_info si;
    cr_assert(hk_announcer_slot_info(a, ih, tier, &si));
    return si;
}

TestSuite(announcer, .init = reset, .fini = reset);

Test(announcer, first_announce_then_interval)
{
    hk_announcer_config c = config();
    hk_announcer *a = new_ann(&c);
    F.uploaded = 4242;
    add1(a, 1, "http://t.example/announce");
    cr_assert_eq(F.nhttp, 0, "nothing is sent from inside add_torrent");
    cr_assert(F.wake <= F.now, "a wake-up is asked for at once");
    run_until(a, F.now + HK_MILLIS(200));
    cr_assert_eq(F.nhttp, 1, "a single torrent is announced within 1/start_rate s");
    const char *u = last_url();
    cr_assert(strstr(u, "http://t.example/announce?info_hash="), "%s", u);
    cr_assert(strstr(u, "&event=started"), "%s", u);
    cr_assert(strstr(u, "&uploaded=4242&downloaded=0&left=0&compact=1&numwant=0"), "%s", u);
    cr_assert(strstr(u, "&port=6881"), "%s", u);
    cr_assert(strstr(u, "&peer_id=-HK0100-000000000000"), "%s", u);
    hk_time t_reply = F.now;
    reply(a, 0, "d8:intervali900ee");
    hk_slot_info si = slot(a, 1, 0);
    cr_assert(si.registered);
    cr_assert_eq(si.state, HK_SLOT_QUEUED);
    cr_assert_eq(si.due, t_reply + HK_SECONDS(900));
    run_until(a, t_reply + HK_SECONDS(900) - 1);
    cr_assert_eq(F.nhttp, 1, "not before the interval");
    run_until(a, t_reply + HK_SECONDS(900));
    cr_assert_eq(F.nhttp, 2);
    cr_assert(!strstr(last_url(), "event="), "a regular announce has no event: %s", last_url());
    hk_announcer_free(a);
}

Test(announcer, min_interval_floor_and_tracker_id)
{
    hk_announcer_config c = config();
    hk_announcer *a = new_ann(&c);
    add1(a, 1, "http://t.example/a");
    run_until(a, F.now + HK_SECONDS(1));
    hk_time t0 = F.now;
    reply(a, 0, "d8:intervali60e12:min intervali300e10:tracker id4:T-42e");
    cr_assert_eq(slot(a, 1, 0).due, t0 + HK_SECONDS(300), "min interval wins over a shorter interval");
    run_until(a, t0 + HK_SECONDS(300));
    cr_assert_eq(F.nhttp, 2);
    cr_assert(strstr(last_url(), "&trackerid=T-42"), "the tracker id is echoed: %s", last_url());
    t0 = F.now;
    reply(a, 1, "d8:intervali5ee");
    cr_assert_eq(slot(a, 1, 0).due, t0 + HK_SECONDS(60), "raised to interval_floor");
    run_until(a, t0 + HK_SECONDS(60));
    t0 = F.now;
    reply(a, 2, "d5:peers0:e");
    cr_assert_eq(slot(a, 1, 0).due, t0 + c.default_interval, "no interval: the default");
    run_until(a, F.now + c.default_interval);
    t0 = F.now;
    reply(a, 3, "d8:intervali999999999ee");
    cr_assert_eq(slot(a, 1, 0).due, t0 + c.interval_ceiling, "lowered to interval_ceiling");
    hk_announcer_free(a);
}

static double max_over_mean(const uint32_t *per, size_t n)
{
    uint64_t sum = 0, max = 0;
    for (size_t i = 0; i < n; i++) {
        sum += per[i];
        if (per[i] > max)
            max = per[i];
    }
    return sum ? (double)max * (double)n / (double)sum : 0;
}

Test(announcer, first_announces_spread_over_the_interval)
{
    hk_announcer_config c = config();
    c.default_interval = HK_SECONDS(600);
    hk_announcer *a = new_ann(&c);
    const uint32_t n = 30000;
    for (uint32_t i = 0; i < n; i++)
        add1(a, i, "http://t.example/announce");
    hk_time t0 = F.now;
    uint32_t per[600] = { 0 };
    size_t seen = 0;
    for (unsigned s = 0; s < 600; s++) {
        run_until_answering(a, t0 + HK_SECONDS(s + 1) - 1, "d8:intervali600ee");
        per[s] = (uint32_t)(F.nhttp - seen);
        seen = F.nhttp;
    }
    cr_assert_eq(seen, n, "every torrent announced once in the first interval");
    double r = max_over_mean(per, 600);
    cr_assert(r <= 1.1, "per-second max/mean %.3f", r);
    cr_assert(per[0] < 100, "no burst at start-up: %u in the first second", per[0]);
    /* second interval: same evenness, nobody announced twice */
    memset(per, 0, sizeof per);
    for (unsigned s = 0; s < 600; s++) {
        run_until_answering(a, t0 + HK_SECONDS(600 + s + 1) - 1, "d8:intervali600ee");
        per[s] = (uint32_t)(F.nhttp - seen);
        seen = F.nhttp;
    }
    cr_assert_eq(seen, 2 * (size_t)n);
    r = max_over_mean(per, 600);
    cr_assert(r <= 1.1, "second interval max/mean %.3f", r);
    hk_announcer_stats st;
    hk_announcer_stats_get(a, &st);
    cr_assert_eq(st.trackers, 1, "one URL interned once");
    cr_assert_eq(st.hosts, 1);
    cr_assert_eq(st.tier_lists, 1);
    cr_assert_eq(st.torrents, n);
    double per_torrent = (double)st.memory_bytes / n;
    cr_log_info("announcer memory: %.1f bytes per torrent (one tracker) at %u torrents", per_torrent, n);
    cr_assert(per_torrent < 128, "%.1f bytes per torrent", per_torrent);
    hk_announcer_free(a);
}

Test(announcer, small_additions_are_announced_quickly)
{
    hk_announcer_config c = config();
    c.start_rate = 10;
    hk_announcer *a = new_ann(&c);
    for (uint32_t i = 0; i < 5; i++)
        add1(a, i, "http://t.example/announce");
    hk_time t0 = F.now;
    run_until(a, t0 + HK_MILLIS(500));
    cr_assert_eq(F.nhttp, 5, "5 torrents at 10/s: all within 0.5 s");
    for (size_t k = 0; k < 5; k++)
        cr_assert(F.http[k].at >= t0 && F.http[k].at < t0 + HK_MILLIS(500));
    hk_announcer_free(a);
}

Test(announcer, backoff_with_jitter_capped)
{
    hk_announcer_config c = config();
    c.retry_base = HK_SECONDS(60);
    c.retry_max = HK_SECONDS(600);
    hk_announcer *a = new_ann(&c);
    add1(a, 1, "http://t.example/announce");
    add1(a, 2, "http://other.example/announce");
    run_until(a, F.now + HK_SECONDS(1));
    cr_assert_eq(F.nhttp, 2);
    reply(a, 1, "d8:intervali1800ee"); /* keeps other.example "heard" */
    hk_time expect_lo[] = { 30, 60, 120, 240, 300, 300, 300 };
    hk_time expect_hi[] = { 60, 120, 240, 480, 600, 600, 600 };
    size_t call = 0;
    for (unsigned k = 0; k < 7; k++) {
        hk_time t = F.now;
        reply(a, call, "d14:failure reason4:oopse"); /* refused: the tracker answers, only the slot backs off */
        hk_slot_info si = slot(a, 1, 0);
        cr_assert_eq(si.fails, k + 1);
        cr_assert(si.due >= t + HK_SECONDS(expect_lo[k]) && si.due <= t + HK_SECONDS(expect_hi[k]),
                  "failure %u: retry after %.1f s, expected %llu..%llu", k + 1, (double)(si.due - t) / 1e9,
                  (unsigned long long)expect_lo[k], (unsigned long long)expect_hi[k]);
        size_t before = F.nhttp;
        run_until(a, si.due - 1);
        cr_assert_eq(F.nhttp, before, "not before the backoff");
        run_until(a, si.due);
        cr_assert_eq(F.nhttp, before + 1, "retried when due");
        call = F.nhttp - 1;
        cr_assert(strstr(F.http[call].url, "t.example"));
    }
    hk_time t = F.now;
    reply(a, call, "d8:intervali1800ee");
    hk_slot_info si = slot(a, 1, 0);
    cr_assert_eq(si.fails, 0, "an answer resets the backoff");
    cr_assert(si.due >= t + HK_SECONDS(1350) && si.due <= t + HK_SECONDS(2250),
              "a slot that went late draws its next time in [3/4, 5/4] of the interval: %.1f s",
              (double)(si.due - t) / 1e9);
    run_until(a, si.due);
    t = F.now;
    reply(a, F.nhttp - 1, "d8:intervali1800ee");
    cr_assert_eq(slot(a, 1, 0).due, t + HK_SECONDS(1800), "then the interval itself again");
    hk_announcer_free(a);
}

Test(announcer, jitter_spreads_retries)
{
    hk_announcer_config c = config();
    c.host_inflight = 1000;
    hk_announcer *a = new_ann(&c);
    const uint32_t n = 200;
    for (uint32_t i = 0; i < n; i++)
        add1(a, i, "http://t.example/announce");
    run_until(a, F.now + HK_SECONDS(20));
    cr_assert_eq(F.nhttp, n);
    /* half refused (the tracker answered), so it stays responsive; look at the spread of their retries */
    hk_time lo = HK_TIME_NEVER, hi = 0;
    for (uint32_t i = 0; i < n; i++)
        hk_announcer_on_http_done(a, F.http[i].token, 200, (const uint8_t *)"d14:failure reason4:nopee", 25);
    for (uint32_t i = 0; i < n; i++) {
        hk_time d = slot(a, i, 0).due;
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    cr_assert(hi - lo > HK_SECONDS(20), "retries spread over %.1f s", (double)(hi - lo) / 1e9);
    cr_assert(F.warns >= 1 && strstr(F.last_warn, "nope"), "the failure reason is logged: %s", F.last_warn);
    cr_assert(F.warns < 5, "refusals are rate-limited in the log (%u WARN lines)", F.warns);
    hk_announcer_free(a);
}

static void add_tiers(hk_announcer *a, uint32_t n, const char *const *urls, const uint32_t *sizes, uint32_t ntiers)
{
    uint8_t ih[20];
    ih_of(n, ih);
    cr_assert_eq(hk_announcer_add_torrent(a, ih, urls, sizes, ntiers), HK_ANN_OK);
}

Test(announcer, tier_shuffle_failover_and_move_to_front)
{
    hk_announcer_config c = config();
    hk_announcer *a = new_ann(&c);
    const char *urls[] = { "http://a.example/x", "http://b.example/x", "http://c.example/x" };
    uint32_t sizes[] = { 3 };
    unsigned first_seen[3] = { 0 };
    for (uint32_t i = 0; i < 60; i++) {
        add_tiers(a, i, urls, sizes, 1);
        hk_slot_info si = slot(a, i, 0);
        cr_assert_eq(si.tier_size, 3);
        for (int k = 0; k < 3; k++)
            if (strcmp(si.order[0], urls[k]) == 0)
                first_seen[k]++;
    }
    for (int k = 0; k < 3; k++)
        cr_assert(first_seen[k] >= 5, "tier order is shuffled: %s first %u times of 60", urls[k], first_seen[k]);
    hk_announcer_free(a);

    reset();
    a = new_ann(&c);
    add_tiers(a, 7, urls, sizes, 1);
    run_until(a, F.now + HK_SECONDS(1));
    cr_assert_eq(F.nhttp, 1);
    hk_slot_info si = slot(a, 7, 0);
    const char *first = si.order[0], *second = si.order[1], *third = si.order[2];
    cr_assert(strncmp(F.http[0].url, first, strlen(first)) == 0);
    hk_announcer_on_http_done(a, F.http[0].token, 404, (const uint8_t *)"", 0);
    run_until(a, F.now);
    cr_assert_eq(F.nhttp, 2, "the next tracker of the tier is tried at once");
    cr_assert(strncmp(F.http[1].url, second, strlen(second)) == 0);
    cr_assert(strstr(F.http[1].url, "event=started"));
    reply(a, 1, "d8:intervali1800ee");
    si = slot(a, 7, 0);
    cr_assert_str_eq(si.order[0], second, "the tracker that answered moves to the front");
    cr_assert_str_eq(si.order[1], first);
    cr_assert_str_eq(si.order[2], third);
    cr_assert_str_eq(si.url, second);
    cr_assert_eq(si.fails, 0);
    /* now every tracker of the tier fails in a row: then, and only then, the slot backs off */
    run_until(a, si.due);
    size_t base = F.nhttp;
    for (unsigned k = 0; k < 3; k++) {
        cr_assert_eq(F.nhttp, base + k + 0 * k);
        hk_announcer_on_http_done(a, F.http[F.nhttp - 1].token, 200, (const uint8_t *)"x", 1);
        run_until(a, F.now);
    }
    si = slot(a, 7, 0);
    cr_assert_eq(F.nhttp, base + 2, "three attempts, one per tracker, then backoff");
    cr_assert_eq(si.fails, 1);
    cr_assert(si.due >= F.now + HK_SECONDS(30));
    hk_announcer_free(a);
}

Test(announcer, all_tiers_or_first_working_tier)
{
    const char *urls[] = { "http://a.example/x", "http://b.example/x" };
    uint32_t sizes[] = { 1, 1 };
    hk_announcer_config c = config();
    hk_announcer *a = new_ann(&c);
    add_tiers(a, 1, urls, sizes, 2);
    run_until(a, F.now + HK_SECONDS(1));
    cr_assert_eq(F.nhttp, 2, "all_tiers: every tier announced");
    hk_announcer_free(a);

    reset();
    c.all_tiers = false;
    a = new_ann(&c);
    add_tiers(a, 1, urls, sizes, 2);
    run_until(a, F.now + HK_SECONDS(1));
    cr_assert_eq(F.nhttp, 1, "BEP 12: the first tier only");
    cr_assert(strncmp(F.http[0].url, urls[0], strlen(urls[0])) == 0);
    hk_announcer_on_http_done(a, F.http[0].token, HK_HTTP_ERR_TRANSPORT, (const uint8_t *)"refused", 7);
    run_until(a, F.now);
    cr_assert_eq(F.nhttp, 2, "the tier failed: the next tier at once");
    cr_assert(strncmp(F.http[1].url, urls[1], strlen(urls[1])) == 0);
    hk_announcer_on_http_done(a, F.http[1].token, HK_HTTP_ERR_TIMEOUT, NULL, 0);
    run_until(a, F.now + HK_SECONDS(29));
    cr_assert_eq(F.nhttp, 2, "every tier failed: back off");
    hk_slot_info s0 = slot(a, 1, 0), s1 = slot(a, 1, 1);
    cr_assert_eq(s0.state, HK_SLOT_QUEUED, "the round starts again from the first tier");
    cr_assert_eq(s1.state, HK_SLOT_IDLE);
    cr_assert_eq(s0.fails, 1);
    hk_announcer_free(a);
}

Test(announcer, per_host_cap)
{
    hk_announcer_config c = config();
    c.host_inflight = 4;
    hk_announcer *a = new_ann(&c);
    for (uint32_t i = 0; i < 10; i++)
        add1(a, i, i % 2 ? "http://T.example:8080/a" : "https://t.example/b"); /* same host, other URLs */
    run_until(a, F.now + HK_SECONDS(5));
    cr_assert_eq(F.nhttp, 4, "at most 4 in flight per host");
    hk_tracker_info ti;
    cr_assert(hk_announcer_tracker_info(a, "https://t.example/b", &ti));
    cr_assert_eq(ti.host_in_flight, 4);
    cr_assert_eq(ti.host_waiting, 6);
    hk_announcer_stats st;
    hk_announcer_stats_get(a, &st);
    cr_assert_eq(st.trackers, 2);
    cr_assert_eq(st.hosts, 1, "hosts are compared case-insensitively");
    reply(a, 0, "d8:intervali1800ee");
    cr_assert_eq(F.nhttp, 5, "a completion lets the next one go");
    for (size_t k = 1; k < 10; k++) {
        reply(a, k, "d8:intervali1800ee");
        run_until(a, F.now);
    }
    cr_assert_eq(F.nhttp, 10);
    hk_announcer_stats_get(a, &st);
    cr_assert_eq(st.in_flight, 0);
    cr_assert_eq(st.waiting, 0);
    cr_assert_eq(st.ok, 10);
    hk_announcer_free(a);
}

/* The waiting counts (stats and the host's) of tracker url: never above max, and returned. */
static uint32_t waiting_counts(hk_announcer *a, const char *url, uint32_t max)
{
    hk_announcer_stats st;
    hk_announcer_stats_get(a, &st);
    hk_tracker_info ti;
    cr_assert(hk_announcer_tracker_info(a, url, &ti));
    cr_assert_leq(st.waiting, max, "stats.waiting %u with %u requests", st.waiting, max);
    cr_assert_leq(ti.host_waiting, max, "host_waiting %u with %u requests", ti.host_waiting, max);
    cr_assert_eq(st.waiting, ti.host_waiting);
    return st.waiting;
}

/* Requests queued behind the host cap that end in dispatch (here: the tracker went quiet and the gate closed
 * behind its probe) leave the waiting counts right. */
Test(announcer, waiting_counts_when_dispatch_fails)
{
    const char *url = "http://t.example/announce";
    hk_announcer_config c = config();
    c.host_inflight = 2;
    hk_announcer *a = new_ann(&c);
    for (uint32_t i = 0; i < 4; i++)
        add1(a, i, url);
    run_until(a, F.now + HK_SECONDS(5));
    cr_assert_eq(F.nhttp, 2, "the host's cap");
    cr_assert_eq(waiting_counts(a, url, 4), 2);
    /* the first timeout marks the tracker unresponsive; the first waiting request goes as its probe */
    hk_announcer_on_http_done(a, F.http[0].token, HK_HTTP_ERR_TIMEOUT, NULL, 0);
    cr_assert_eq(F.nhttp, 3, "the probe");
    cr_assert_eq(waiting_counts(a, url, 4), 1);
    /* the second: the last waiting request meets the closed gate in dispatch and is skipped */
    hk_announcer_on_http_done(a, F.http[1].token, HK_HTTP_ERR_TIMEOUT, NULL, 0);
    cr_assert_eq(F.nhttp, 3, "no request while the probe is out");
    cr_assert_eq(waiting_counts(a, url, 4), 0);
    hk_announcer_stats st;
    hk_announcer_stats_get(a, &st);
    cr_assert_eq(st.skipped, 1);
    cr_assert_eq(st.in_flight, 1);
    /* the probe is answered; everything that comes afterwards is answered too */
    reply(a, 2, "d8:intervali1800ee");
    size_t answered = F.nhttp;
    for (unsigned s = 0; s < 600; s++) {
        run_until(a, F.now + HK_SECONDS(1));
        waiting_counts(a, url, 4);
        for (; answered < F.nhttp; answered++)
            reply(a, answered, "d8:intervali1800ee");
    }
    cr_assert_eq(waiting_counts(a, url, 4), 0);
    hk_announcer_stats_get(a, &st);
    cr_assert_eq(st.in_flight, 0);
    cr_assert_eq(st.ok, 4, "every torrent announced in the end");
    hk_announcer_free(a);
}

Test(announcer, unresponsive_tracker_is_probed_not_flooded)
{
    hk_announcer_config c = config();
    c.default_interval = HK_SECONDS(100);
    hk_announcer *a = new_ann(&c);
    for (uint32_t i = 0; i < 1000; i++)
        add1(a, i, "http://t.example/announce");
    hk_time t0 = F.now;
    run_until(a, t0 + HK_SECONDS(1));
    size_t sent = F.nhttp;
    cr_assert(sent >= 5 && sent <= 15, "%zu sent in the first second", sent);
    for (size_t k = 0; k < sent; k++)
        hk_announcer_on_http_done(a, F.http[k].token, HK_HTTP_ERR_TRANSPORT, (const uint8_t *)"refused", 7);
    hk_tracker_info ti;
    cr_assert(hk_announcer_tracker_info(a, "http://t.example/announce", &ti));
    cr_assert(ti.unresponsive);
    run_until(a, t0 + HK_SECONDS(100));
    size_t during = F.nhttp - sent;
    cr_assert(during <= 10, "while the tracker is down, only probes go out: %zu requests", during);
    hk_announcer_stats st;
    hk_announcer_stats_get(a, &st);
    cr_assert(st.skipped > 900, "the others failed at once: %llu", (unsigned long long)st.skipped);
    /* the probe is answered: the tracker is back; slots return at their own jittered times, not all at once */
    for (size_t k = sent; k < F.nhttp; k++)
        if (hk_announcer_tracker_info(a, "http://t.example/announce", &ti) && ti.probing)
            reply(a, k, "d8:intervali100ee");
    while (hk_announcer_tracker_info(a, "http://t.example/announce", &ti) && ti.unresponsive) {
        run_until(a, F.now + HK_SECONDS(1));
        for (size_t k = sent; k < F.nhttp; k++)
            reply(a, k, "d8:intervali100ee"); /* stale tokens are ignored */
        sent = F.nhttp;
    }
    hk_time back = F.now;
    size_t base = F.nhttp;
    uint32_t per[60] = { 0 };
    for (unsigned s = 0; s < 60; s++) {
        run_until(a, back + HK_SECONDS(s + 1));
        per[s] = (uint32_t)(F.nhttp - base);
        for (size_t k = base; k < F.nhttp; k++)
            reply(a, k, "d8:intervali100ee");
        base = F.nhttp;
    }
    uint32_t max = 0;
    for (unsigned s = 0; s < 60; s++)
        max = per[s] > max ? per[s] : max;
    cr_assert(max < 200, "no burst when the tracker comes back: %u in one second", max);
    hk_announcer_free(a);
}

static void register_one(hk_announcer *a, uint32_t n, const char *url)
{
    add1(a, n, url);
    run_until(a, F.now + HK_SECONDS(1));
    reply(a, F.nhttp - 1, "d8:intervali1800ee");
    cr_assert(slot(a, n, 0).registered);
}

Test(announcer, stopped_on_removal)
{
    hk_announcer_config c = config();
    hk_announcer *a = new_ann(&c);
    register_one(a, 1, "http://t.example/announce");
    uint8_t ih[20];
    ih_of(1, ih);
    F.uploaded = 777;
    cr_assert(hk_announcer_remove_torrent(a, ih));
    cr_assert(!hk_announcer_remove_torrent(a, ih), "already gone");
    cr_assert_eq(F.nhttp, 2);
    cr_assert(strstr(last_url(), "&event=stopped"), "%s", last_url());
    cr_assert(strstr(last_url(), "&uploaded=777"), "%s", last_url());
    reply(a, 1, "d8:intervali1800ee");
    hk_announcer_stats st;
    hk_announcer_stats_get(a, &st);
    cr_assert_eq(st.stopped_ok, 1);
    cr_assert_eq(st.torrents, 0);
    cr_assert_eq(st.trackers, 0, "the last reference to the tracker went with the stopped request");
    cr_assert_eq(st.hosts, 0);
    /* never announced: nothing to stop */
    add1(a, 2, "http://t.example/announce");
    ih_of(2, ih);
    cr_assert(hk_announcer_remove_torrent(a, ih));
    run_until(a, F.now + HK_SECONDS(10));
    cr_assert_eq(F.nhttp, 2);
    /* removed while its `started` is out: the answer is followed by a `stopped` */
    add1(a, 3, "http://t.example/announce");
    run_until(a, F.now + HK_SECONDS(1));
    cr_assert_eq(F.nhttp, 3);
    ih_of(3, ih);
    cr_assert(hk_announcer_remove_torrent(a, ih));
    reply(a, 2, "d8:intervali1800ee");
    cr_assert_eq(F.nhttp, 4);
    cr_assert(strstr(last_url(), "&event=stopped"));
    hk_announcer_free(a);
}

Test(announcer, stopped_given_up_after_stop_timeout)
{
    hk_announcer_config c = config();
    c.host_inflight = 1;
    c.stop_timeout = HK_SECONDS(30);
    hk_announcer *a = new_ann(&c);
    register_one(a, 1, "http://t.example/announce");
    register_one(a, 2, "http://t.example/announce");
    add1(a, 3, "http://t.example/announce");
    run_until(a, F.now + HK_SECONDS(1));
    size_t busy = F.nhttp; /* torrent 3's started occupies the only slot of the host */
    uint8_t ih[20];
    ih_of(1, ih);
    hk_announcer_remove_torrent(a, ih);
    cr_assert_eq(F.nhttp, busy, "waits for the host's cap");
    run_until(a, F.now + HK_SECONDS(31));
    hk_announcer_stats st;
    hk_announcer_stats_get(a, &st);
    cr_assert_eq(st.abandoned, 1, "given up after stop_timeout");
    cr_assert_eq(st.waiting, 0);
    reply(a, busy - 1, "d8:intervali1800ee");
    cr_assert_eq(F.nhttp, busy, "the abandoned stopped is not sent later");
    hk_announcer_free(a);
}

Test(announcer, shutdown_sends_stopped_bounded_in_time)
{
    hk_announcer_config c = config();
    hk_announcer *a = new_ann(&c);
    for (uint32_t i = 0; i < 3; i++)
        register_one(a, i, "http://t.example/announce");
    add1(a, 3, "http://t.example/announce");
    run_until(a, F.now + HK_SECONDS(1));
    size_t started3 = F.nhttp - 1;
    add1(a, 4, "http://t.example/announce"); /* never announced */
    hk_time t0 = F.now;
    hk_announcer_shutdown(a, t0 + HK_SECONDS(5));
    cr_assert_eq(F.nhttp, started3 + 1 + 3, "stopped for the three registered torrents");
    for (size_t k = started3 + 1; k < F.nhttp; k++)
        cr_assert(strstr(F.http[k].url, "event=stopped"));
    cr_assert(!hk_announcer_finished(a));
    reply(a, started3, "d8:intervali1800ee");
    cr_assert_eq(F.nhttp, started3 + 5, "the one answered during shutdown is stopped too");
    for (size_t k = started3 + 1; k < F.nhttp; k++)
        reply(a, k, "d8:intervali1800ee");
    cr_assert(hk_announcer_finished(a));
    hk_announcer_stats st;
    hk_announcer_stats_get(a, &st);
    cr_assert_eq(st.stopped_ok, 4);
    uint8_t ih[20];
    ih_of(9, ih);
    const char *url = "http://t.example/announce";
    uint32_t one = 1;
    cr_assert_eq(hk_announcer_add_torrent(a, ih, &url, &one, 1), HK_ANN_STOPPING);
    hk_announcer_free(a);

    reset();
    a = new_ann(&c);
    for (uint32_t i = 0; i < 3; i++)
        register_one(a, i, "http://t.example/announce");
    t0 = F.now;
    hk_announcer_shutdown(a, t0 + HK_SECONDS(5));
    run_until(a, t0 + HK_SECONDS(5) - 1);
    cr_assert(!hk_announcer_finished(a));
    run_until(a, t0 + HK_SECONDS(5));
    cr_assert(hk_announcer_finished(a), "finished at the deadline even without answers");
    hk_announcer_stats_get(a, &st);
    cr_assert_eq(st.abandoned, 3);
    hk_announcer_free(a);
}

Test(announcer, unusable_urls_and_duplicates)
{
    hk_announcer_config c = config();
    hk_announcer *a = new_ann(&c);
    uint8_t ih[20];
    ih_of(1, ih);
    const char *bad[] = { "wss://t.example/x", "http://", "" };
    uint32_t sizes[] = { 3 };
    cr_assert_eq(hk_announcer_add_torrent(a, ih, bad, sizes, 1), HK_ANN_NO_TRACKERS);
    const char *urls[] = { "http://t.example/x", "http://t.example/x", "udp://u.example:80" };
    cr_assert_eq(hk_announcer_add_torrent(a, ih, urls, sizes, 1), HK_ANN_OK);
    cr_assert_eq(slot(a, 1, 0).tier_size, 2, "a repeated URL is used once");
    cr_assert_eq(hk_announcer_add_torrent(a, ih, urls, sizes, 1), HK_ANN_DUPLICATE);
    hk_announcer_stats st;
    hk_announcer_stats_get(a, &st);
    cr_assert_eq(st.trackers, 2);
    cr_assert_eq(hk_announcer_config_check(&c), NULL);
    c.host_inflight = 0;
    cr_assert_not_null(hk_announcer_config_check(&c));
    hk_announcer_free(a);
}

/* ---- UDP ---- */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static hk_addr v4(uint8_t last, uint16_t port)
{
    hk_addr x = { .family = 4, .port = port };
    x.ip[0] = 127;
    x.ip[3] = last;
    return x;
}

static void udp_reply(hk_announcer *a, hk_addr from, uint32_t action, uint32_t tid, uint64_t x, uint32_t y,
                      size_t extra)
{
    uint8_t b[64] = { 0 };
    b[3] = (uint8_t)action;
    b[4] = (uint8_t)(tid >> 24);
    b[5] = (uint8_t)(tid >> 16);
    b[6] = (uint8_t)(tid >> 8);
    b[7] = (uint8_t)tid;
    size_t len;
    if (action == 0) {
        for (int i = 0; i < 8; i++)
            b[8 + i] = (uint8_t)(x >> (56 - 8 * i));
        len = 16;
    } else if (action == 1) {
        b[8] = (uint8_t)(y >> 24);
        b[9] = (uint8_t)(y >> 16);
        b[10] = (uint8_t)(y >> 8);
        b[11] = (uint8_t)y;
        len = 20 + extra;
    } else {
        memcpy(b + 8, "denied", 6);
        len = 14;
    }
    hk_announcer_on_datagram(a, &from, b, len);
}

Test(announcer, udp_connect_announce_and_connection_reuse)
{
    hk_announcer_config c = config();
    hk_announcer *a = new_ann(&c);
    add1(a, 1, "udp://tracker.example:6969/announce");
    add1(a, 2, "udp://tracker.example:6969/announce");
    run_until(a, F.now + HK_SECONDS(1));
    cr_assert_eq(F.nres, 1, "one resolution for the tracker");
    cr_assert_str_eq(F.res[0].host, "tracker.example");
    hk_addr addrs[2] = { v4(9, 0), v4(10, 0) };
    addrs[1].family = 6;
    hk_announcer_on_resolved(a, F.res[0].token, addrs, 2);
    cr_assert_eq(F.nudp, 1, "one connect for both torrents");
    cr_assert_eq(F.udp[0].len, 16);
    cr_assert_eq(F.udp[0].to.port, 6969, "the URL's port");
    cr_assert_eq(F.udp[0].to.ip[3], 9);
    uint32_t ctid = rd32(F.udp[0].bytes + 12);
    hk_addr from = v4(9, 6969);
    udp_reply(a, from, 0, ctid ^ 1, 0x1111, 0, 0);
    cr_assert_eq(F.nudp, 1, "a wrong transaction id is ignored");
    udp_reply(a, v4(66, 6969), 0, ctid, 0x1111, 0, 0);
    cr_assert_eq(F.nudp, 1, "a reply from another address is ignored");
    udp_reply(a, from, 0, ctid, 0x0123456789ABCDEFull, 0, 0);
    cr_assert_eq(F.nudp, 3, "both announces go out with the connection id");
    for (int k = 1; k <= 2; k++) {
        cr_assert_eq(F.udp[k].len, 98 + 2 + 9 + 1, "with the URL's path as BEP 41 URLData");
        cr_assert_eq(rd32(F.udp[k].bytes), 0x01234567);
        cr_assert_eq(rd32(F.udp[k].bytes + 8), 1);
        cr_assert_eq(rd32(F.udp[k].bytes + 80), 2, "started");
    }
    uint32_t t1 = rd32(F.udp[1].bytes + 12), t2 = rd32(F.udp[2].bytes + 12);
    cr_assert_neq(t1, t2);
    cr_assert_neq(t1, ctid);
    udp_reply(a, from, 1, t1, 0, 900, 6);
    hk_time t_ok = F.now;
    cr_assert(slot(a, 1, 0).registered);
    cr_assert_eq(slot(a, 1, 0).due, t_ok + HK_SECONDS(900), "UDP interval honoured");
    udp_reply(a, from, 3, t2, 0, 0, 0);
    cr_assert_eq(slot(a, 2, 0).fails, 1, "an error reply is a refusal");
    cr_assert(strstr(F.last_warn, "denied"), "%s", F.last_warn);
    hk_announcer_stats st;
    hk_announcer_stats_get(a, &st);
    cr_assert_eq(st.stray_datagrams, 2);
    /* 30 s later, within the minute: the id is reused (no connect) */
    uint8_t ih[20];
    ih_of(2, ih);
    cr_assert(hk_announcer_remove_torrent(a, ih));
    run_until(a, F.now + HK_SECONDS(29));
    add1(a, 3, "udp://tracker.example:6969/announce");
    run_until(a, F.now + HK_SECONDS(1));
    cr_assert_eq(F.nudp, 4);
    cr_assert_eq(F.udp[3].len, 110, "an announce, not a connect");
    udp_reply(a, from, 1, rd32(F.udp[3].bytes + 12), 0, 1800, 0);
    /* after the minute: a new resolution and connect first */
    run_until(a, t_ok + HK_SECONDS(61));
    add1(a, 4, "udp://tracker.example:6969/announce");
    run_until(a, F.now + HK_SECONDS(1));
    cr_assert_eq(F.nres, 2, "each new exchange resolves again (the backend caches)");
    hk_announcer_on_resolved(a, F.res[1].token, addrs, 1);
    cr_assert_eq(F.udp[F.nudp - 1].len, 16, "a connect");
    hk_announcer_free(a);
}

Test(announcer, udp_retransmission_timing_and_give_up)
{
    hk_announcer_config c = config();
    c.udp_max_n = 2;
    hk_announcer *a = new_ann(&c);
    add1(a, 1, "udp://tracker.example:6969");
    run_until(a, F.now + HK_SECONDS(1));
    hk_addr addr = v4(9, 0);
    hk_announcer_on_resolved(a, F.res[0].token, &addr, 1);
    hk_time t0 = F.now;
    cr_assert_eq(F.nudp, 1);
    run_until(a, t0 + HK_SECONDS(15) - 1);
    cr_assert_eq(F.nudp, 1);
    run_until(a, t0 + HK_SECONDS(15));
    cr_assert_eq(F.nudp, 2, "retransmitted after 15 s");
    cr_assert_neq(rd32(F.udp[0].bytes + 12), rd32(F.udp[1].bytes + 12), "a fresh transaction id");
    run_until(a, t0 + HK_SECONDS(45) - 1);
    cr_assert_eq(F.nudp, 2);
    run_until(a, t0 + HK_SECONDS(45));
    cr_assert_eq(F.nudp, 3, "then after 30 s more");
    hk_tracker_info ti;
    cr_assert(hk_announcer_tracker_info(a, "udp://tracker.example:6969", &ti));
    cr_assert(ti.unresponsive);
    run_until(a, t0 + HK_SECONDS(105) - 1);
    cr_assert_eq(slot(a, 1, 0).state, HK_SLOT_BUSY);
    run_until(a, t0 + HK_SECONDS(105));
    cr_assert_eq(F.nudp, 3, "n reached udp_max_n: given up");
    hk_slot_info si = slot(a, 1, 0);
    cr_assert_eq(si.state, HK_SLOT_QUEUED);
    cr_assert_eq(si.fails, 1);

    /* announce retransmission: connect answered, announce lost */
    hk_announcer_free(a);
    reset();
    c.udp_max_n = 8;
    a = new_ann(&c);
    add1(a, 1, "udp://tracker.example:6969");
    run_until(a, F.now + HK_SECONDS(1));
    hk_announcer_on_resolved(a, F.res[0].token, &addr, 1);
    hk_addr from = v4(9, 6969);
    udp_reply(a, from, 0, rd32(F.udp[0].bytes + 12), 42, 0, 0);
    cr_assert_eq(F.nudp, 2);
    t0 = F.now;
    run_until(a, t0 + HK_SECONDS(15));
    cr_assert_eq(F.nudp, 3, "announce retransmitted after 15 s, the id still valid");
    cr_assert_eq(F.udp[2].len, 98);
    run_until(a, t0 + HK_SECONDS(45));
    cr_assert_eq(F.nudp, 4, "again after 30 s more, the id still valid (60 s)");
    cr_assert_eq(F.udp[3].len, 98);
    run_until(a, t0 + HK_SECONDS(105));
    cr_assert_eq(F.nudp, 4, "the id expired: resolve and connect first");
    cr_assert_eq(F.nres, 2);
    hk_announcer_on_resolved(a, F.res[1].token, &addr, 1);
    cr_assert_eq(F.udp[4].len, 16);
    udp_reply(a, from, 0, rd32(F.udp[4].bytes + 12), 43, 0, 0);
    cr_assert_eq(F.udp[5].len, 98);
    cr_assert_eq(rd32(F.udp[5].bytes + 4), 43, "the new connection id (low word)");
    udp_reply(a, from, 1, rd32(F.udp[5].bytes + 12), 0, 1800, 0);
    cr_assert(slot(a, 1, 0).registered);
    hk_announcer_stats st;
    hk_announcer_stats_get(a, &st);
    cr_assert_eq(st.announces, 1, "one announce, retransmitted");
    cr_assert_eq(st.udp_retransmits, 3);
    hk_announcer_free(a);
}

Test(announcer, udp_ipv6_reply_and_bad_reply)
{
    hk_announcer_config c = config();
    hk_announcer *a = new_ann(&c);
    add1(a, 1, "udp://[::1]:6969");
    add1(a, 2, "udp://[::1]:6969");
    run_until(a, F.now + HK_SECONDS(1));
    cr_assert_str_eq(F.res[0].host, "::1");
    hk_addr addr = { .family = 6 };
    addr.ip[15] = 1;
    hk_announcer_on_resolved(a, F.res[0].token, &addr, 1);
    addr.port = 6969;
    udp_reply(a, addr, 0, rd32(F.udp[0].bytes + 12), 7, 0, 0);
    cr_assert_eq(F.nudp, 3);
    udp_reply(a, addr, 1, rd32(F.udp[1].bytes + 12), 0, 1800, 18);
    cr_assert(slot(a, 1, 0).registered, "18-byte IPv6 peer entries over IPv6");
    udp_reply(a, addr, 1, rd32(F.udp[2].bytes + 12), 0, 1800, 6);
    cr_assert(!slot(a, 2, 0).registered, "a 6-byte entry over IPv6 is a bad reply");
    cr_assert_eq(slot(a, 2, 0).fails, 1);
    hk_announcer_free(a);
}

Test(announcer, udp_family_filter_and_resolution_failure)
{
    hk_announcer_config c = config();
    c.family = 6;
    hk_announcer *a = new_ann(&c);
    add1(a, 1, "udp://tracker.example:6969");
    run_until(a, F.now + HK_SECONDS(1));
    hk_addr addr = v4(9, 0);
    hk_announcer_on_resolved(a, F.res[0].token, &addr, 1);
    cr_assert_eq(F.nudp, 0, "no IPv6 address: nothing sent");
    hk_slot_info si = slot(a, 1, 0);
    cr_assert_eq(si.fails, 1);
    cr_assert(strstr(F.last_warn, "tracker.example"), "%s", F.last_warn);
    hk_announcer_on_resolved(a, F.res[0].token, &addr, 1); /* stale completion: ignored */
    hk_announcer_free(a);
}

Test(announcer, deterministic)
{
    hk_announcer_config c = config();
    char first[256] = "";
    for (int run = 0; run < 2; run++) {
        reset();
        hk_announcer *a = new_ann(&c);
        const char *urls[] = { "http://a.example/x", "http://b.example/x", "udp://c.example:1" };
        uint32_t sizes[] = { 3 };
        for (uint32_t i = 0; i < 50; i++)
            add_tiers(a, i, urls, sizes, 1);
        run_until(a, F.now + HK_SECONDS(10));
        char sig[256];
        snprintf(sig, sizeof sig, "%zu %zu %zu %s", F.nhttp, F.nudp, F.nres, F.nhttp ? F.http[F.nhttp / 2].url : "");
        if (run == 0)
            snprintf(first, sizeof first, "%s", sig);
        else
            cr_assert_str_eq(sig, first, "same calls, same random bytes: same decisions");
        hk_announcer_free(a);
    }
}

Test(announcer, udp_second_torrent_joins_the_connect_under_way)
{
    hk_announcer_config c = config();
    hk_announcer *a = new_ann(&c);
    add1(a, 1, "udp://tracker.example:6969/announce");
    run_until(a, F.now + HK_SECONDS(1));
    hk_addr addr = v4(9, 0);
    hk_announcer_on_resolved(a, F.res[0].token, &addr, 1);
    cr_assert_eq(F.nudp, 1);
    add1(a, 2, "udp://tracker.example:6969/announce");
    run_until(a, F.now + HK_SECONDS(1));
    cr_assert_eq(F.nres, 1, "no second resolution");
    cr_assert_eq(F.nudp, 1, "no second connect while one is under way");
    udp_reply(a, v4(9, 6969), 0, rd32(F.udp[0].bytes + 12), 5, 0, 0);
    cr_assert_eq(F.nudp, 3, "both announces after the one connect");
    hk_announcer_free(a);
}

Test(announcer, pacer_spreads_a_backlog)
{
    hk_announcer_config c = config();
    c.default_interval = HK_SECONDS(100);
    c.start_rate = 1;
    hk_announcer *a = new_ann(&c);
    for (uint32_t i = 0; i < 1000; i++)
        add1(a, i, "http://t.example/announce");
    hk_time t0 = F.now;
    run_until_answering(a, t0 + HK_SECONDS(100), "d8:intervali100ee");
    cr_assert_eq(F.nhttp, 1000);
    /* the clock jumps 1000 s (a suspended machine): every slot is overdue at once */
    F.now += HK_SECONDS(1000);
    hk_time t1 = F.now;
    size_t base = F.nhttp;
    uint32_t per[200] = { 0 };
    for (unsigned s = 0; s < 200; s++) {
        run_until_answering(a, t1 + HK_SECONDS(s + 1) - 1, "d8:intervali100ee");
        per[s] = (uint32_t)(F.nhttp - base);
        base = F.nhttp;
    }
    uint32_t max = 0, total = 0;
    for (unsigned s = 0; s < 200; s++) {
        max = per[s] > max ? per[s] : max;
        total += per[s];
    }
    /* steady rate 10/s; the pacer allows 12.5/s plus 0.2 s of burst */
    cr_assert(max <= 16, "the overdue backlog drains at the pacer's rate, not at once: %u in one second", max);
    cr_assert(total >= 1000, "and everyone gets through: %u", total);
    hk_announcer_stats st;
    hk_announcer_stats_get(a, &st);
    cr_assert_gt(st.paced, 500);
    hk_announcer_free(a);
}

/* Thousands of torrents added and removed in waves (the info-hash index grows many times and removes by backward
 * shift): exactly the live torrents are found, a live one cannot be added twice, and once all are gone no tracker,
 * host or tier list is left. */
Test(announcer, add_remove_waves_keep_the_index_exact)
{
    hk_announcer_config c = config();
    hk_announcer *a = new_ann(&c);
    const char *urls[] = { "http://a.example/announce", "http://b.example/announce", "http://B.example:80/x" };
    enum { N = 3000 };
    for (uint32_t n = 0; n < N; n++)
        add1(a, n, urls[n % 3]);
    hk_announcer_stats st;
    hk_announcer_stats_get(a, &st);
    cr_assert_eq(st.torrents, N);
    cr_assert_eq(st.slots, N);
    cr_assert_eq(st.trackers, 3);
    cr_assert_eq(st.hosts, 2, "host names are compared without case");
    cr_assert_eq(st.tier_lists, 3);
    uint8_t ih[20];
    for (uint32_t n = 0; n < N; n++) {
        ih_of(n, ih);
        if (n % 4 != 0)
            cr_assert(hk_announcer_remove_torrent(a, ih), "torrent %u", n);
    }
    hk_slot_info si;
    for (uint32_t n = 0; n < N + 100; n++) {
        ih_of(n, ih);
        cr_assert_eq(hk_announcer_slot_info(a, ih, 0, &si), n < N && n % 4 == 0, "torrent %u", n);
    }
    for (uint32_t n = 0; n < N; n += 2) {
        ih_of(n, ih);
        const char *url = urls[n % 3];
        uint32_t one = 1;
        cr_assert_eq(hk_announcer_add_torrent(a, ih, &url, &one, 1), n % 4 == 0 ? HK_ANN_DUPLICATE : HK_ANN_OK);
    }
    hk_announcer_stats_get(a, &st);
    cr_assert_eq(st.torrents, N / 2);
    for (uint32_t n = 0; n < N; n++) {
        ih_of(n, ih);
        cr_assert_eq(hk_announcer_remove_torrent(a, ih), n % 2 == 0, "torrent %u", n);
    }
    hk_announcer_stats_get(a, &st);
    cr_assert_eq(st.torrents, 0);
    cr_assert_eq(st.slots, 0);
    cr_assert_eq(st.trackers, 0);
    cr_assert_eq(st.hosts, 0);
    cr_assert_eq(st.tier_lists, 0);
    hk_announcer_free(a);
}
