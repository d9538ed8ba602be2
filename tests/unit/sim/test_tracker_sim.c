/* The announcer at scale against the simulated tracker (backend-sim/sim_tracker.c, linked as the hekate_sim_tracker
 * library: it needs only the core): even first announces, nothing missed, backoff without a burst after an outage (HTTP and UDP), and
 * determinism of the whole run. The million-torrent figures come from `hekate-sim --trackers scenarios/...`. */
#include <criterion/criterion.h>

#include "sim_tracker.h"

/* The defaults with a size and a length; each test sets the rest. */
static sim_tracker_cfg scenario(uint32_t torrents, double duration)
{
    sim_tracker_cfg c;
    sim_tracker_cfg_default(&c);
    c.torrents = torrents;
    c.duration = duration;
    return c;
}

static sim_tracker_result run(const sim_tracker_cfg *c)
{
    sim_tracker_result r;
    char err[256];
    cr_assert_eq(sim_tracker_run(c, &r, err, sizeof err), 0, "%s", err);
    return r;
}

Test(tracker_sim, even_first_interval_nothing_missed)
{
    sim_tracker_cfg c = scenario(100000, 1200);
    c.interval = 600;
    c.spread = 600;
    c.failure_rate = 0.001;
    sim_tracker_result r = run(&c);
    uint32_t max;
    double mean;
    double ratio = sim_tracker_peak_ratio(&r, 0, 600, &max, &mean);
    cr_log_info("100k torrents, 600 s: mean %.1f/s, max %u/s, max/mean %.3f; %.1f bytes per torrent", mean, max,
                ratio, (double)r.memory_bytes / c.torrents);
    cr_assert(ratio <= 1.5, "first interval max/mean %.3f", ratio);
    cr_assert(mean > 160 && mean < 175, "about 100000 / 600 per second: %.1f", mean);
    cr_assert_eq(r.announced_in_first_interval, c.torrents, "missed %u", c.torrents - r.announced_in_first_interval);
    ratio = sim_tracker_peak_ratio(&r, 600, 1200, NULL, NULL);
    cr_assert(ratio <= 1.5, "second interval max/mean %.3f", ratio);
    cr_assert(r.memory_bytes / c.torrents < 128, "%llu bytes per torrent", (unsigned long long)(r.memory_bytes / c.torrents));
    sim_tracker_result_free(&r);
}

static void outage_case(bool udp, bool refuse)
{
    sim_tracker_cfg c = scenario(100000, 5400);
    c.udp = udp;
    c.interval = 1800;
    c.spread = 1800;
    c.loss = 0.001;
    c.outage_start = 2400;
    c.outage_length = 600;
    c.outage_refuse = refuse;
    sim_tracker_result r = run(&c);
    double before, during;
    sim_tracker_peak_ratio(&r, 600, 2400, NULL, &before);
    sim_tracker_peak_ratio(&r, 2400, 3000, NULL, &during);
    uint32_t max_after;
    double mean_after;
    sim_tracker_peak_ratio(&r, 3000, 4800, &max_after, &mean_after);
    cr_log_info("%s outage (%s): before %.1f/s, during %.1f/s, after: max %u/s (%.2f x before), mean %.1f/s",
                udp ? "UDP" : "HTTP", refuse ? "refused" : "silent", before, during, max_after, max_after / before,
                mean_after);
    cr_assert_eq(during, 0, "the tracker received nothing while down");
    cr_assert(max_after <= 2.0 * before, "no burst after the outage: %u/s against %.1f/s before", max_after, before);
    cr_assert(r.skipped > 0 || udp, "announces held back while the tracker was down");
    /* everyone gets back: over the interval after the outage every torrent announces again */
    uint64_t after = 0;
    for (uint32_t s = 3000; s < 4800; s++)
        after += r.per_second[s];
    cr_assert(after >= c.torrents * 0.95, "%llu announces in the interval after the outage", (unsigned long long)after);
    sim_tracker_result_free(&r);
}

Test(tracker_sim, http_outage_silent_backs_off) { outage_case(false, false); }
Test(tracker_sim, http_outage_refused_backs_off) { outage_case(false, true); }
Test(tracker_sim, udp_outage_backs_off) { outage_case(true, false); }

Test(tracker_sim, deterministic)
{
    sim_tracker_cfg c = scenario(20000, 2000);
    c.loss = 0.01;
    c.failure_rate = 0.01;
    c.udp = true;
    sim_tracker_result a = run(&c), b = run(&c);
    cr_assert_eq(a.hash, b.hash, "same scenario, same seed: same trace");
    cr_assert_eq(a.received, b.received);
    c.seed = 99;
    sim_tracker_result d = run(&c);
    cr_assert_neq(a.hash, d.hash, "another seed: another trace");
    sim_tracker_result_free(&a);
    sim_tracker_result_free(&b);
    sim_tracker_result_free(&d);
}
