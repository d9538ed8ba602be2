/* sim_tracker_main: `hekate-sim --trackers SCENARIO [--seed N] [--curve FILE]`: loads a tracker scenario (INI,
 * sections [trackers], [announcer], [expect]), runs it (sim_tracker.c), prints the announce rate figures and the
 * per-second curve around an outage, and exits non-zero when an expectation fails. */
#include <ini.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_tracker.h"

typedef struct tscenario {
    sim_tracker_cfg cfg;
    double max_ratio;            /* [expect] peak_ratio: max/mean per second in the first interval (0: unchecked) */
    double max_ratio_after;      /* [expect] peak_ratio_after_outage: in the interval after the outage */
    long max_missed;             /* [expect] missed: torrents not announced in the first interval (-1: unchecked) */
    char err[256];
} tscenario;

static int num(const char *v, double lo, double hi, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi))
        return -1;
    *out = x;
    return 0;
}

/* A key whose value is the word a or the word b: *out = (value is `yes`, one of them). Returns inih's 1 (taken),
 * or 0 with the error in t->err. */
static int choice(tscenario *t, const char *section, const char *key, const char *value, const char *a,
                  const char *b, const char *yes, bool *out)
{
    if (strcmp(value, a) && strcmp(value, b)) {
        snprintf(t->err, sizeof t->err, "[%s] %s = %s: %s or %s", section, key, value, a, b);
        return 0;
    }
    *out = strcmp(value, yes) == 0;
    return 1;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
    tscenario *t = user;
    sim_tracker_cfg *c = &t->cfg;
    double x;
#define NUM(k, lo, hi, dst)                                                                                   \
    if (strcmp(key, k) == 0) {                                                                                \
        if (num(value, lo, hi, &x) != 0) {                                                                    \
            snprintf(t->err, sizeof t->err, "[%s] %s = %s: expected a number in [%g, %g]", section, key, value, \
                     (double)(lo), (double)(hi));                                                             \
            return 0;                                                                                         \
        }                                                                                                     \
        dst;                                                                                                  \
        return 1;                                                                                             \
    }
    if (strcmp(section, "trackers") == 0) {
        NUM("seed", 0, 9007199254740992.0, c->seed = (uint64_t)x)
        NUM("torrents", 1, 50000000, c->torrents = (uint32_t)x)
        NUM("duration", 1, 30 * 86400, c->duration = x)
        NUM("interval", 1, 86400, c->interval = x)
        NUM("min_interval", 0, 86400, c->min_interval = x)
        NUM("latency", 0, 60, c->latency = x)
        NUM("jitter", 0, 60, c->jitter = x)
        NUM("loss", 0, 0.99, c->loss = x)
        NUM("failure_rate", 0, 1, c->failure_rate = x)
        NUM("outage_start", 0, 30 * 86400, c->outage_start = x)
        NUM("outage_length", 0, 30 * 86400, c->outage_length = x)
        NUM("http_timeout", 0.001, 3600, c->http_timeout = x)
        if (strcmp(key, "protocol") == 0)
            return choice(t, section, key, value, "http", "udp", "udp", &c->udp);
        if (strcmp(key, "outage") == 0)
            return choice(t, section, key, value, "refuse", "silent", "refuse", &c->outage_refuse);
    } else if (strcmp(section, "announcer") == 0) {
        NUM("spread", 0, 86400, c->spread = x)
        NUM("host_inflight", 1, 65536, c->host_inflight = (uint32_t)x)
        NUM("retry_base", 0, 86400, c->retry_base = x)
        NUM("retry_max", 0, 86400, c->retry_max = x)
    } else if (strcmp(section, "expect") == 0) {
        NUM("peak_ratio", 1, 1000, t->max_ratio = x)
        NUM("peak_ratio_after_outage", 1, 1000, t->max_ratio_after = x)
        NUM("missed", 0, 50000000, t->max_missed = (long)x)
    }
#undef NUM
    snprintf(t->err, sizeof t->err, "unknown key [%s] %s", section, key);
    return 0;
}

static void interval_line(const sim_tracker_result *r, const char *what, uint32_t from, uint32_t to)
{
    uint32_t max;
    double mean;
    double ratio = sim_tracker_peak_ratio(r, from, to, &max, &mean);
    printf("%-28s [%6u s, %6u s): mean %8.1f/s, max %6u/s, max/mean %.3f\n", what, from, to, mean, max, ratio);
}

static int usage(void)
{
    fprintf(stderr, "usage: hekate-sim --trackers SCENARIO.ini [--seed N] [--curve FILE.csv]\n");
    return 2;
}

/* The scenario file into t (with its defaults); 0, or 2 after a message on stderr. */
static int load(const char *path, tscenario *t)
{
    memset(t, 0, sizeof *t);
    sim_tracker_cfg_default(&t->cfg);
    t->max_missed = -1;
    int rc = ini_parse(path, on_key, t);
    if (rc != 0) {
        fprintf(stderr, "hekate-sim: %s: %s\n", path,
                t->err[0] ? t->err : rc < 0 ? "cannot read the file" : "syntax error");
        if (t->err[0] && rc > 0)
            fprintf(stderr, "  (line %d)\n", rc);
        return 2;
    }
    return 0;
}

static void print_header(const char *path, const sim_tracker_cfg *c)
{
    printf("trackers scenario %s: %u torrents on one %s tracker, interval %.0f s, latency %.3f+%.3f s, loss %.4f, "
           "failure rate %.4f, seed %llu\n", path, c->torrents, c->udp ? "UDP" : "HTTP", c->interval, c->latency,
           c->jitter, c->loss, c->failure_rate, (unsigned long long)c->seed);
    if (c->outage_length > 0)
        printf("outage: %.0f s from t = %.0f s (%s)\n", c->outage_length, c->outage_start,
               c->udp ? "silence" : c->outage_refuse ? "connections refused" : "silence, HTTP timeouts");
}

/* The figures of every run: both intervals, missed torrents, outcomes, memory, speed. Returns the missed count. */
static long print_figures(const sim_tracker_cfg *c, const sim_tracker_result *r, double wall, double cpu)
{
    uint32_t iv = (uint32_t)c->interval;
    interval_line(r, "first interval", 0, iv);
    if (c->duration >= 2 * c->interval)
        interval_line(r, "second interval", iv, 2 * iv);
    long missed = (long)c->torrents - (long)r->announced_in_first_interval;
    printf("torrents announced in the first interval: %u of %u (missed %ld)\n", r->announced_in_first_interval,
           c->torrents, missed);
    printf("announces received %llu (stopped %llu); announcer outcomes: ok %llu, refused %llu, failed %llu, "
           "skipped (tracker unresponsive) %llu\n", (unsigned long long)r->received,
           (unsigned long long)r->stopped_received, (unsigned long long)r->ok, (unsigned long long)r->refused,
           (unsigned long long)r->failed, (unsigned long long)r->skipped);
    printf("announcer memory after the first interval: %llu bytes, %.1f bytes per torrent (peak %llu)\n",
           (unsigned long long)r->memory_bytes, (double)r->memory_bytes / c->torrents,
           (unsigned long long)r->memory_peak);
    printf("simulation: %llu events in %.2f s wall, %.2f s CPU; trace hash %016llx\n", (unsigned long long)r->events,
           wall, cpu, (unsigned long long)r->hash);
    return missed;
}

/* 10-second windows (mean/s [min..max]) from 2 minutes before the outage [s, e) to an interval after it. */
static void print_outage_curve(const sim_tracker_result *r, uint32_t s, uint32_t e, uint32_t iv)
{
    printf("per-second announce curve around the outage (10-s windows: mean/s [min..max]):\n");
    uint32_t from = s > 120 ? s - 120 : 0, to = e + iv < r->seconds ? e + iv : r->seconds;
    for (uint32_t w = from; w + 10 <= to; w += 10) {
        uint32_t mn = UINT32_MAX, mx = 0;
        uint64_t sum = 0;
        for (uint32_t k = w; k < w + 10; k++) {
            sum += r->per_second[k];
            mn = r->per_second[k] < mn ? r->per_second[k] : mn;
            mx = r->per_second[k] > mx ? r->per_second[k] : mx;
        }
        printf("  t=%6u s %7.1f/s [%u..%u]%s\n", w, sum / 10.0, mn, mx, w >= s && w < e ? "  (outage)" : "");
    }
}

/* The rates around the outage; returns the peak after it over the mean before it (0 without an outage). */
static double print_outage(const sim_tracker_cfg *c, const sim_tracker_result *r)
{
    if (c->outage_length <= 0)
        return 0;
    uint32_t iv = (uint32_t)c->interval;
    uint32_t s = (uint32_t)c->outage_start, e = (uint32_t)(c->outage_start + c->outage_length);
    uint32_t before = s > iv ? s - iv : 0;
    interval_line(r, "before the outage", before, s);
    interval_line(r, "during the outage", s, e);
    interval_line(r, "interval after the outage", e, e + iv);
    uint32_t max;
    double mean_before;
    sim_tracker_peak_ratio(r, before, s, NULL, &mean_before);
    sim_tracker_peak_ratio(r, e, e + iv, &max, NULL);
    double ratio_after = mean_before > 0 ? max / mean_before : 0;
    printf("after the outage: max %u/s = %.3f x the mean before it\n", max, ratio_after);
    print_outage_curve(r, s, e, iv);
    return ratio_after;
}

static void write_curve(const char *curve, const sim_tracker_result *r)
{
    FILE *f = fopen(curve, "w");
    if (!f) {
        fprintf(stderr, "hekate-sim: cannot write %s\n", curve);
        return;
    }
    fprintf(f, "second,announces\n");
    for (uint32_t k = 0; k + 1 < r->seconds; k++)
        fprintf(f, "%u,%u\n", k, r->per_second[k]);
    fclose(f);
    printf("per-second curve written to %s\n", curve);
}

/* Prints each failed expectation; returns 1 if any failed, else 0. */
static int check(const tscenario *t, const sim_tracker_result *r, double ratio_after, long missed)
{
    int status = 0;
    double ratio = sim_tracker_peak_ratio(r, 0, (uint32_t)t->cfg.interval, NULL, NULL);
    if (t->max_ratio > 0 && ratio > t->max_ratio) {
        printf("EXPECTATION FAILED: peak_ratio %.3f > %.3f\n", ratio, t->max_ratio);
        status = 1;
    }
    if (t->max_ratio_after > 0 && ratio_after > t->max_ratio_after) {
        printf("EXPECTATION FAILED: peak_ratio_after_outage %.3f > %.3f\n", ratio_after, t->max_ratio_after);
        status = 1;
    }
    if (t->max_missed >= 0 && missed > t->max_missed) {
        printf("EXPECTATION FAILED: missed %ld > %ld\n", missed, t->max_missed);
        status = 1;
    }
    if (status == 0)
        printf("all expectations met\n");
    return status;
}

int sim_tracker_main(int argc, char **argv)
{
    const char *path = NULL, *curve = NULL;
    long long seed = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--curve") == 0 && i + 1 < argc)
            curve = argv[++i];
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = atoll(argv[++i]);
        else if (!path && argv[i][0] != '-')
            path = argv[i];
        else
            return usage();
    }
    tscenario t;
    if (!path)
        return usage();
    if (load(path, &t) != 0)
        return 2;
    if (seed >= 0)
        t.cfg.seed = (uint64_t)seed;
    print_header(path, &t.cfg);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_t c0 = clock();
    sim_tracker_result r;
    char err[256];
    if (sim_tracker_run(&t.cfg, &r, err, sizeof err) != 0) {
        fprintf(stderr, "hekate-sim: %s\n", err);
        return 2;
    }
    clock_t c1 = clock();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    long missed = print_figures(&t.cfg, &r, wall, (double)(c1 - c0) / CLOCKS_PER_SEC);
    double ratio_after = print_outage(&t.cfg, &r);
    if (curve)
        write_curve(curve, &r);
    int status = check(&t, &r, ratio_after, missed);
    sim_tracker_result_free(&r);
    return status;
}
