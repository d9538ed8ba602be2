/* scenario: owns the scenario file format: a pre-scan of the section headers (duplicates, unknown sections, line
 * length), the key tables per section (parsed through libinih) and the defaults and cross-checks (see scenario.h and
 * docs/scenarios.md). */
#include "scenario.h"

#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE (1u << 20)
#define MAX_LINE 190
#define MAX_PROFILES 64

typedef struct parse_ctx {
    scenario *sc;
    char *err;
    size_t errlen;
    bool failed;
    char (*seen)[96];   /* "section\x1fkey" already given */
    size_t nseen, capseen;
} parse_ctx;

static void vfail(parse_ctx *c, const char *section, const char *key, const char *fmt, va_list ap)
{
    if (c->failed)
        return;
    c->failed = true;
    char what[256];
    vsnprintf(what, sizeof what, fmt, ap);
    if (key)
        snprintf(c->err, c->errlen, "[%s] %s: %s", section, key, what);
    else
        snprintf(c->err, c->errlen, "[%s]: %s", section, what);
}

static void fail(parse_ctx *c, const char *section, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(parse_ctx *c, const char *section, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, section, key, fmt, ap);
    va_end(ap);
}

/* Returns ok; when it is false, records the error (the first one only). */
static bool check(parse_ctx *c, bool ok, const char *section, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static bool check(parse_ctx *c, bool ok, const char *section, const char *key, const char *fmt, ...)
{
    if (!ok) {
        va_list ap;
        va_start(ap, fmt);
        vfail(c, section, key, fmt, ap);
        va_end(ap);
    }
    return ok;
}

const char *sim_behaviour_name(sim_behaviour b)
{
    static const char *names[BEH_COUNT] = {"normal", "slow_reader", "idle", "silent",
                                           "half_open", "flooder", "invalid", "magnet", "mute"};
    return (unsigned)b < BEH_COUNT ? names[b] : "?";
}

const char *sim_ref_name(sim_ref_timeout r)
{
    switch (r) {
    case REF_HANDSHAKE: return "handshake_timeout";
    case REF_IDLE: return "idle_timeout";
    case REF_UNCHOKED_IDLE: return "unchoked_idle_timeout";
    case REF_SEND_STALL: return "send_stall_timeout";
    case REF_PROTOCOL: return "protocol";
    default: return "none";
    }
}

static void profile_defaults(sim_profile *p, const char *name)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%.31s", name);
    p->count = 1;
    p->arrival = ARRIVE_BURST;
    p->rate = 0;
    p->behaviour = BEH_NORMAL;
    p->strategy = STRAT_RANDOM;
    p->pipeline = 16;
    p->down = (units_range){10e6, 10e6};
    p->up = (units_range){1e6, 1e6};
    p->latency = (units_range){0.02, 0.02};
    p->departure = DEPART_FIN;
    p->read_rate = 50e3;
    p->vanish_after = 256 * 1024;
    p->flood_rate = 1000;
    p->invalid = INVALID_LENGTH;
    p->torrent = -1;
    p->reconnect = HK_SECONDS(30);
    p->keepalive = HK_SECONDS(60);
    p->fast = true;
    p->expect.complete_min = -1;
    p->expect.complete_by = HK_TIME_NEVER;
    p->expect.jain_min = -1;
    p->expect.tolerance = HK_SECONDS(1);
    p->expect.closed_by_seeder_max = -1;
    p->expect.median_vs_baseline_max = -1;
}

static void scenario_defaults(scenario *sc)
{
    memset(sc, 0, sizeof *sc);
    hk_config_defaults(&sc->seeder.core);
    sc->seeder.uplink = 100e6;
    sc->seeder.downlink = 100e6;
    sc->seeder.latency = 0.001;
    sc->seeder.sndbuf = 256 * 1024;
    sc->seeder.window = 64 * 1024;
    sc->disk.seek = HK_MILLIS(8);
    sc->disk.bandwidth = 150e6;
    sc->disk.queue_depth = 1;
    sc->disk.cache = 1ull << 30;
    sc->disk.page = 4096;
    sc->torrent.size = 4ull << 20;
    sc->torrent.piece_length = 256 * 1024;
    sc->torrent.count = 1;
    sc->run.duration = HK_SECONDS(3600);
    sc->run.seed = 1;
    sc->run.quiesce = 0;
    sc->run.sample = HK_SECONDS(1);
    sc->run.log_level = HK_LOG_DEBUG;
    sc->expect.unchoked_max = -1;
    sc->expect.disk_read_per_sent_max = -1;
    sc->expect.sent_not_resident_max = -1;
    sc->expect.seeder_errors_max = -1;
}

/* ---- value helpers: each returns false after recording an error ---- */

static bool get_u32(parse_ctx *c, const char *sec, const char *key, const char *v, uint32_t lo, uint32_t hi,
                    uint32_t *out)
{
    uint64_t x = 0;
    bool ok = units_u64(v, &x) == 0 && x >= lo && x <= hi;
    if (ok)
        *out = (uint32_t)x;
    return check(c, ok, sec, key, "\"%s\" is not an integer in [%u, %u]", v, lo, hi);
}

static bool get_size(parse_ctx *c, const char *sec, const char *key, const char *v, uint64_t lo, uint64_t hi,
                     uint64_t *out)
{
    uint64_t x = 0;
    bool ok = units_size(v, &x) == 0 && x >= lo && x <= hi;
    if (ok)
        *out = x;
    return check(c, ok, sec, key, "\"%s\" is not a size in [%llu, %llu] bytes (units: B, KiB, MiB, GiB, kB, MB, GB)",
                 v, (unsigned long long)lo, (unsigned long long)hi);
}

static bool get_size32(parse_ctx *c, const char *sec, const char *key, const char *v, uint64_t lo, uint64_t hi,
                       uint32_t *out)
{
    uint64_t x = 0;
    if (!get_size(c, sec, key, v, lo, hi, &x))
        return false;
    *out = (uint32_t)x;
    return true;
}

static bool get_time(parse_ctx *c, const char *sec, const char *key, const char *v, hk_time *out)
{
    uint64_t x = 0;
    bool ok = units_time(v, &x) == 0 && x <= HK_SECONDS(10ull * 365 * 86400);
    if (ok)
        *out = x;
    return check(c, ok, sec, key, "\"%s\" is not a duration (units: ns, us, ms, s, min, h; bare number = s)", v);
}

static bool get_bw(parse_ctx *c, const char *sec, const char *key, const char *v, double *out)
{
    double x = 0;
    bool ok = units_bandwidth(v, &x) == 0 && x >= 1 && x <= 1e13;
    if (ok)
        *out = x;
    return check(c, ok, sec, key, "\"%s\" is not a bandwidth >= 1 B/s (units: B/s, kB/s, MB/s, GB/s, KiB/s, "
                                  "MiB/s, kbit/s, Mbit/s, Gbit/s)", v);
}

static bool get_double(parse_ctx *c, const char *sec, const char *key, const char *v, double lo, double hi,
                       double *out)
{
    double x = 0;
    bool ok = units_double(v, &x) == 0 && x >= lo && x <= hi;
    if (ok)
        *out = x;
    return check(c, ok, sec, key, "\"%s\" is not a number in [%g, %g]", v, lo, hi);
}

static bool get_bool(parse_ctx *c, const char *sec, const char *key, const char *v, bool *out)
{
    return check(c, units_bool(v, out) == 0, sec, key, "\"%s\" is not yes/no", v);
}

static bool get_range(parse_ctx *c, const char *sec, const char *key, const char *v, char kind, double min,
                      units_range *out)
{
    units_range r = {0, 0};
    bool ok = units_range_parse(v, kind, &r) == 0 && r.lo >= min;
    if (ok)
        *out = r;
    return check(c, ok, sec, key, "\"%s\" is not a %s or a range A..B (A <= B, A >= %g)", v,
                 kind == 'b' ? "bandwidth" : kind == 't' ? "duration" : "size", min);
}

static bool get_enum(parse_ctx *c, const char *sec, const char *key, const char *v, const char *const *names,
                     int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return true;
        }
    char list[256] = "";
    for (int i = 0; i < n; i++) {
        strncat(list, names[i], sizeof list - strlen(list) - 1);
        if (i + 1 < n)
            strncat(list, ", ", sizeof list - strlen(list) - 1);
    }
    fail(c, sec, key, "\"%s\" is not one of: %s", v, list);
    return false;
}

static bool get_ref(parse_ctx *c, const char *sec, const char *key, const char *v, sim_ref_timeout *out)
{
    static const char *const names[] = {"none", "handshake_timeout", "idle_timeout", "unchoked_idle_timeout",
                                        "send_stall_timeout", "protocol"};
    int i = 0;
    if (!get_enum(c, sec, key, v, names, 6, &i))
        return false;
    *out = (sim_ref_timeout)i;
    return true;
}

/* ---- sections ---- */

static bool key_is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static void unknown_key(parse_ctx *c, const char *sec, const char *key)
{
    fail(c, sec, key, "unknown key (see docs/scenarios.md)");
}

static void seeder_key(parse_ctx *c, const char *s, const char *k, const char *v)
{
    sim_seeder_cfg *sd = &c->sc->seeder;
    hk_config *h = &sd->core;
    uint64_t x = 0;
    if (key_is(k, "max_unchoked"))
        get_u32(c, s, k, v, 1, 1000000, &h->max_unchoked);
    else if (key_is(k, "max_peers"))
        get_u32(c, s, k, v, 1, 10000000, &h->max_peers);
    else if (key_is(k, "credit")) {
        if (get_size(c, s, k, v, 1, UINT64_MAX, &x))
            h->credit = x;
    } else if (key_is(k, "slice"))
        get_time(c, s, k, v, &h->slice);
    else if (key_is(k, "handshake_timeout"))
        get_time(c, s, k, v, &h->handshake_timeout);
    else if (key_is(k, "idle_timeout"))
        get_time(c, s, k, v, &h->idle_timeout);
    else if (key_is(k, "keepalive_interval"))
        get_time(c, s, k, v, &h->keepalive_interval);
    else if (key_is(k, "unchoked_idle_timeout"))
        get_time(c, s, k, v, &h->unchoked_idle_timeout);
    else if (key_is(k, "send_stall_timeout"))
        get_time(c, s, k, v, &h->send_stall_timeout);
    else if (key_is(k, "max_wait"))
        get_time(c, s, k, v, &h->max_wait);
    else if (key_is(k, "reqq"))
        get_u32(c, s, k, v, 1, 1000000, &h->reqq);
    else if (key_is(k, "max_block"))
        get_size32(c, s, k, v, 1, 128 * 1024, &h->max_block);
    else if (key_is(k, "max_message"))
        get_size32(c, s, k, v, 1, 16u << 20, &h->max_message);
    else if (key_is(k, "uplink"))
        get_bw(c, s, k, v, &sd->uplink);
    else if (key_is(k, "downlink"))
        get_bw(c, s, k, v, &sd->downlink);
    else if (key_is(k, "latency")) {
        if (get_time(c, s, k, v, &x))
            sd->latency = (double)x / 1e9;
    } else if (key_is(k, "sndbuf"))
        get_size32(c, s, k, v, 4096, 64u << 20, &sd->sndbuf);
    else if (key_is(k, "window"))
        get_size32(c, s, k, v, 1024, 16u << 20, &sd->window);
    else
        unknown_key(c, s, k);
}

static void disk_key(parse_ctx *c, const char *s, const char *k, const char *v)
{
    sim_disk_cfg *d = &c->sc->disk;
    if (key_is(k, "seek"))
        get_time(c, s, k, v, &d->seek);
    else if (key_is(k, "bandwidth"))
        get_bw(c, s, k, v, &d->bandwidth);
    else if (key_is(k, "queue_depth"))
        get_u32(c, s, k, v, 1, 1024, &d->queue_depth);
    else if (key_is(k, "cache"))
        get_size(c, s, k, v, 64 * 1024, 1ull << 44, &d->cache);
    else if (key_is(k, "page"))
        get_size32(c, s, k, v, 512, 1u << 20, &d->page);
    else
        unknown_key(c, s, k);
}

static void torrent_key(parse_ctx *c, const char *s, const char *k, const char *v)
{
    sim_torrent_cfg *t = &c->sc->torrent;
    if (key_is(k, "size"))
        get_size(c, s, k, v, 1, 1ull << 40, &t->size);
    else if (key_is(k, "piece_length"))
        get_size32(c, s, k, v, 16 * 1024, 64u << 20, &t->piece_length);
    else if (key_is(k, "count"))
        get_u32(c, s, k, v, 1, 100000, &t->count);
    else
        unknown_key(c, s, k);
}

static void run_key(parse_ctx *c, const char *s, const char *k, const char *v)
{
    sim_run_cfg *r = &c->sc->run;
    if (key_is(k, "duration"))
        get_time(c, s, k, v, &r->duration);
    else if (key_is(k, "seed")) {
        if (units_u64(v, &r->seed) < 0)
            fail(c, s, k, "\"%s\" is not a non-negative integer", v);
    } else if (key_is(k, "quiesce"))
        get_time(c, s, k, v, &r->quiesce);
    else if (key_is(k, "sample"))
        get_time(c, s, k, v, &r->sample);
    else if (key_is(k, "log_level")) {
        static const char *const names[] = {"error", "warn", "info", "debug", "trace"};
        int i;
        if (get_enum(c, s, k, v, names, 5, &i))
            r->log_level = (hk_log_level)i;
    } else
        unknown_key(c, s, k);
}

static void expect_key(parse_ctx *c, const char *s, const char *k, const char *v)
{
    sim_expect *e = &c->sc->expect;
    uint32_t u = 0;
    if (key_is(k, "unchoked_max")) {
        if (get_u32(c, s, k, v, 0, 10000000, &u))
            e->unchoked_max = u;
    } else if (key_is(k, "no_leak"))
        get_bool(c, s, k, v, &e->no_leak);
    else if (key_is(k, "disk_read_per_sent_max"))
        get_double(c, s, k, v, 0, 1e9, &e->disk_read_per_sent_max);
    else if (key_is(k, "sent_not_resident_max")) {
        if (get_u32(c, s, k, v, 0, UINT32_MAX, &u))
            e->sent_not_resident_max = u;
    } else if (key_is(k, "memory_max"))
        get_size(c, s, k, v, 1, UINT64_MAX, &e->memory_max);
    else if (key_is(k, "seeder_errors_max")) {
        if (get_u32(c, s, k, v, 0, UINT32_MAX, &u))
            e->seeder_errors_max = u;
    } else if (key_is(k, "baseline_without")) {
        if (!scenario_find_profile(c->sc, v))
            fail(c, s, k, "no profile named \"%s\"", v);
        else
            snprintf(e->baseline_without, sizeof e->baseline_without, "%s", v);
    } else
        unknown_key(c, s, k);
}

static void profile_expect_key(parse_ctx *c, const char *s, sim_profile *p, const char *k, const char *v)
{
    sim_profile_expect *e = &p->expect;
    uint32_t u = 0;
    if (key_is(k, "complete"))
        get_double(c, s, k, v, 0, 1, &e->complete_min);
    else if (key_is(k, "complete_by"))
        get_time(c, s, k, v, &e->complete_by);
    else if (key_is(k, "jain_min"))
        get_double(c, s, k, v, 0, 1, &e->jain_min);
    else if (key_is(k, "closed_after"))
        get_ref(c, s, k, v, &e->closed_after);
    else if (key_is(k, "choked_after"))
        get_ref(c, s, k, v, &e->choked_after);
    else if (key_is(k, "tolerance"))
        get_time(c, s, k, v, &e->tolerance);
    else if (key_is(k, "closed_by_seeder_max")) {
        if (get_u32(c, s, k, v, 0, UINT32_MAX, &u))
            e->closed_by_seeder_max = u;
    } else if (key_is(k, "median_vs_baseline_max"))
        get_double(c, s, k, v, 0, 1e6, &e->median_vs_baseline_max);
    else
        unknown_key(c, s, k);
}

static void profile_key(parse_ctx *c, const char *s, sim_profile *p, const char *k, const char *v)
{
    int i = 0;
    uint64_t x = 0;
    if (key_is(k, "count"))
        get_u32(c, s, k, v, 1, 1000000, &p->count);
    else if (key_is(k, "arrival")) {
        static const char *const names[] = {"burst", "poisson", "uniform"};
        if (get_enum(c, s, k, v, names, 3, &i))
            p->arrival = (sim_arrival)i;
    } else if (key_is(k, "start"))
        get_time(c, s, k, v, &p->start);
    else if (key_is(k, "rate"))
        get_double(c, s, k, v, 1e-6, 1e9, &p->rate);
    else if (key_is(k, "behaviour")) {
        static const char *const names[] = {"normal", "slow_reader", "idle", "silent",
                                            "half_open", "flooder", "invalid", "magnet", "mute"};
        if (get_enum(c, s, k, v, names, BEH_COUNT, &i))
            p->behaviour = (sim_behaviour)i;
    } else if (key_is(k, "strategy")) {
        static const char *const names[] = {"random", "sequential"};
        if (get_enum(c, s, k, v, names, 2, &i))
            p->strategy = (sim_strategy)i;
    } else if (key_is(k, "pipeline"))
        get_u32(c, s, k, v, 1, 4096, &p->pipeline);
    else if (key_is(k, "down"))
        get_range(c, s, k, v, 'b', 1, &p->down);
    else if (key_is(k, "up"))
        get_range(c, s, k, v, 'b', 1, &p->up);
    else if (key_is(k, "latency"))
        get_range(c, s, k, v, 't', 0, &p->latency);
    else if (key_is(k, "mtbf"))
        get_time(c, s, k, v, &p->mtbf);
    else if (key_is(k, "mttr"))
        get_time(c, s, k, v, &p->mttr);
    else if (key_is(k, "departure")) {
        static const char *const names[] = {"fin", "vanish"};
        if (get_enum(c, s, k, v, names, 2, &i))
            p->departure = (sim_departure)i;
    } else if (key_is(k, "read_rate"))
        get_bw(c, s, k, v, &p->read_rate);
    else if (key_is(k, "vanish_after"))
        get_size(c, s, k, v, 0, 1ull << 40, &p->vanish_after);
    else if (key_is(k, "flood_rate"))
        get_u32(c, s, k, v, 1, 1000000, &p->flood_rate);
    else if (key_is(k, "invalid")) {
        static const char *const names[] = {"length", "index", "begin"};
        if (get_enum(c, s, k, v, names, 3, &i))
            p->invalid = (sim_invalid)i;
    } else if (key_is(k, "torrent")) {
        if (strcmp(v, "any") == 0)
            p->torrent = -1;
        else if (units_u64(v, &x) < 0 || x >= 100000)
            fail(c, s, k, "\"%s\" is not a torrent index or \"any\"", v);
        else
            p->torrent = (int32_t)x;
    } else if (key_is(k, "reconnect"))
        get_time(c, s, k, v, &p->reconnect);
    else if (key_is(k, "keepalive"))
        get_time(c, s, k, v, &p->keepalive);
    else if (key_is(k, "fast"))
        get_bool(c, s, k, v, &p->fast);
    else
        unknown_key(c, s, k);
}

static sim_profile *find_profile_mut(scenario *sc, const char *name)
{
    for (uint32_t i = 0; i < sc->nprofiles; i++)
        if (strcmp(sc->profiles[i].name, name) == 0)
            return &sc->profiles[i];
    return NULL;
}

const sim_profile *scenario_find_profile(const scenario *sc, const char *name)
{
    return find_profile_mut((scenario *)sc, name);
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx *c = user;
    if (c->failed)
        return 0;
    /* duplicate keys (also catches continuation lines, which inih reports as the same key again) */
    char tag[96];
    snprintf(tag, sizeof tag, "%s\x1f%s", section, name);
    for (size_t i = 0; i < c->nseen; i++)
        if (strcmp(c->seen[i], tag) == 0) {
            fail(c, section, name, "given twice");
            return 0;
        }
    if (c->nseen == c->capseen) {
        size_t n = c->capseen ? 2 * c->capseen : 64;
        void *q = realloc(c->seen, n * sizeof *c->seen);
        if (!q) {
            fail(c, section, name, "out of memory");
            return 0;
        }
        c->seen = q;
        c->capseen = n;
    }
    snprintf(c->seen[c->nseen++], sizeof c->seen[0], "%s", tag);

    if (strcmp(section, "seeder") == 0)
        seeder_key(c, section, name, value);
    else if (strcmp(section, "disk") == 0)
        disk_key(c, section, name, value);
    else if (strcmp(section, "torrent") == 0)
        torrent_key(c, section, name, value);
    else if (strcmp(section, "run") == 0)
        run_key(c, section, name, value);
    else if (strcmp(section, "expect") == 0)
        expect_key(c, section, name, value);
    else if (strncmp(section, "profile ", 8) == 0) {
        sim_profile *p = find_profile_mut(c->sc, section + 8);
        if (!p)
            fail(c, section, name, "internal: profile not pre-scanned");
        else
            profile_key(c, section, p, name, value);
    } else if (strncmp(section, "expect ", 7) == 0) {
        sim_profile *p = find_profile_mut(c->sc, section + 7);
        if (!p)
            fail(c, section, NULL, "no profile named \"%s\"", section + 7);
        else
            profile_expect_key(c, section, p, name, value);
    } else if (section[0] == '\0')
        fail(c, "(none)", name, "key outside any section");
    else
        fail(c, section, NULL, "unknown section");
    return c->failed ? 0 : 1;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= SIM_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
              ch == '-'))
            return false;
    }
    return true;
}

/* The section headers met so far (prescan). */
typedef struct section_list {
    char (*v)[64];
    size_t n, cap;
} section_list;

/* Records a pre-scan error; returns -1. */
static int scan_error(parse_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int scan_error(parse_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* The name between the '[' at p[0] and the next ']' of the line p[0..len) into sec; 0, or -1 with the error. */
static int header_name(parse_ctx *c, const char *name, int lineno, const char *p, size_t len, char sec[64])
{
    const char *close = memchr(p, ']', len);
    if (!close)
        return scan_error(c, "%s:%d: section header without ']'", name, lineno);
    size_t sl = (size_t)(close - (p + 1));
    if (sl >= 64)
        return scan_error(c, "%s:%d: section name too long", name, lineno);
    memcpy(sec, p + 1, sl);
    sec[sl] = '\0';
    return 0;
}

/* A header [sec]: a known, well-named section not given before; a profile is created in file order. 0 or -1. */
static int scan_section(parse_ctx *c, const char *name, int lineno, const char *sec, section_list *seen)
{
    bool known = strcmp(sec, "seeder") == 0 || strcmp(sec, "disk") == 0 || strcmp(sec, "torrent") == 0 ||
                 strcmp(sec, "run") == 0 || strcmp(sec, "expect") == 0;
    bool is_profile = strncmp(sec, "profile ", 8) == 0;
    bool is_pexpect = strncmp(sec, "expect ", 7) == 0;
    if (!known && !is_profile && !is_pexpect)
        return scan_error(c, "%s:%d: unknown section [%s]", name, lineno, sec);
    if ((is_profile && !valid_name(sec + 8)) || (is_pexpect && !valid_name(sec + 7)))
        return scan_error(c, "%s:%d: [%s]: a name is 1-31 of [A-Za-z0-9_-]", name, lineno, sec);
    for (size_t k = 0; k < seen->n; k++)
        if (strcmp(seen->v[k], sec) == 0)
            return scan_error(c, "%s:%d: section [%s] given twice", name, lineno, sec);
    if (seen->n == seen->cap) {
        seen->cap = seen->cap ? seen->cap * 2 : 16;
        void *q = realloc(seen->v, seen->cap * sizeof *seen->v);
        if (!q)
            return scan_error(c, "out of memory");
        seen->v = q;
    }
    snprintf(seen->v[seen->n++], sizeof seen->v[0], "%s", sec);
    if (is_profile) {
        if (c->sc->nprofiles == MAX_PROFILES)
            return scan_error(c, "%s:%d: more than %d profiles", name, lineno, MAX_PROFILES);
        profile_defaults(&c->sc->profiles[c->sc->nprofiles++], sec + 8);
    }
    return 0;
}

/* First pass over the raw text: line lengths, section headers (known, not repeated), profiles created in order. */
static int prescan(parse_ctx *c, const char *text, const char *name)
{
    section_list seen = {NULL, 0, 0};
    int lineno = 0, rc = 0;
    for (const char *p = text; *p && rc == 0;) {
        lineno++;
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        size_t i = 0;
        while (i < len && (p[i] == ' ' || p[i] == '\t'))
            i++;
        char sec[64];
        if (len > MAX_LINE)
            rc = scan_error(c, "%s:%d: line longer than %d bytes", name, lineno, MAX_LINE);
        else if (i < len && p[i] == '[')
            rc = header_name(c, name, lineno, p + i, len - i, sec) < 0 ? -1
                                                                      : scan_section(c, name, lineno, sec, &seen);
        p = eol ? eol + 1 : p + len;
    }
    /* [expect NAME] must name a profile (even when it holds no key) */
    for (size_t k = 0; rc == 0 && k < seen.n; k++)
        if (strncmp(seen.v[k], "expect ", 7) == 0 && !find_profile_mut(c->sc, seen.v[k] + 7))
            rc = scan_error(c, "%s: [%s]: no profile named \"%s\"", name, seen.v[k], seen.v[k] + 7);
    free(seen.v);
    return rc;
}

static int cross_check(scenario *sc, char *err, size_t errlen)
{
    const char *why = hk_config_check(&sc->seeder.core);
    if (why) {
        snprintf(err, errlen, "[seeder]: %s", why);
        return -1;
    }
    if (sc->nprofiles == 0) {
        snprintf(err, errlen, "no [profile NAME] section: a scenario needs peers");
        return -1;
    }
    if (sc->seeder.window > sc->seeder.sndbuf) {
        snprintf(err, errlen, "[seeder] window (%u) is larger than sndbuf (%u)", sc->seeder.window,
                 sc->seeder.sndbuf);
        return -1;
    }
    if (sc->run.quiesce >= sc->run.duration) {
        snprintf(err, errlen, "[run] quiesce must be shorter than duration");
        return -1;
    }
    if (sc->run.sample == 0) {
        snprintf(err, errlen, "[run] sample must be > 0");
        return -1;
    }
    if (sc->disk.cache % sc->disk.page != 0 || sc->disk.cache / sc->disk.page < 16) {
        snprintf(err, errlen, "[disk] cache must be a multiple of page and hold at least 16 pages");
        return -1;
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < sc->nprofiles; i++) {
        sim_profile *p = &sc->profiles[i];
        if ((p->arrival == ARRIVE_POISSON || p->arrival == ARRIVE_UNIFORM) && p->rate <= 0) {
            snprintf(err, errlen, "[profile %s] arrival = %s needs a rate", p->name,
                     p->arrival == ARRIVE_POISSON ? "poisson" : "uniform");
            return -1;
        }
        if (p->torrent >= 0 && (uint32_t)p->torrent >= sc->torrent.count) {
            snprintf(err, errlen, "[profile %s] torrent %d: there are only %u torrents", p->name, p->torrent,
                     sc->torrent.count);
            return -1;
        }
        if (p->expect.median_vs_baseline_max >= 0 && sc->expect.baseline_without[0] == '\0') {
            snprintf(err, errlen, "[expect %s] median_vs_baseline_max needs [expect] baseline_without", p->name);
            return -1;
        }
        if (p->expect.choked_after == REF_PROTOCOL || p->expect.choked_after == REF_HANDSHAKE) {
            snprintf(err, errlen, "[expect %s] choked_after: only idle_timeout, unchoked_idle_timeout or "
                                  "send_stall_timeout make sense", p->name);
            return -1;
        }
        p->first_peer = (uint32_t)total;
        total += p->count;
    }
    if (total > 1000000) {
        snprintf(err, errlen, "more than 1,000,000 peers");
        return -1;
    }
    sc->npeers = (uint32_t)total;
    return 0;
}

int scenario_load_string(const char *text, const char *name, scenario *sc, char *err, size_t errlen)
{
    scenario_defaults(sc);
    snprintf(sc->path, sizeof sc->path, "%s", name);
    sc->profiles = calloc(MAX_PROFILES, sizeof *sc->profiles);
    if (!sc->profiles) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    parse_ctx c = {.sc = sc, .err = err, .errlen = errlen};
    if (prescan(&c, text, name) < 0) {
        scenario_free(sc);
        return -1;
    }
    int line = ini_parse_string(text, handler, &c);
    free(c.seen);
    if (line != 0 || c.failed) {
        if (c.failed) {
            char what[512];
            snprintf(what, sizeof what, "%s", err);
            snprintf(err, errlen, "%s:%d: %s", name, line, what);
        } else {
            snprintf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)", name, line);
        }
        scenario_free(sc);
        return -1;
    }
    if (cross_check(sc, err, errlen) < 0) {
        char what[512];
        snprintf(what, sizeof what, "%s", err);
        snprintf(err, errlen, "%s: %s", name, what);
        scenario_free(sc);
        return -1;
    }
    return 0;
}

int scenario_load(const char *path, scenario *sc, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return -1;
    }
    char *buf = malloc(MAX_FILE + 1);
    if (!buf) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t n = fread(buf, 1, MAX_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > MAX_FILE) {
        free(buf);
        snprintf(err, errlen, "%s: %s", path, bad ? "read error" : "larger than 1 MiB");
        return -1;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        free(buf);
        snprintf(err, errlen, "%s: contains a NUL byte", path);
        return -1;
    }
    int rc = scenario_load_string(buf, path, sc, err, errlen);
    free(buf);
    return rc;
}

void scenario_free(scenario *sc)
{
    free(sc->profiles);
    sc->profiles = NULL;
    sc->nprofiles = 0;
}

int scenario_drop_profile(scenario *sc, const char *name)
{
    for (uint32_t i = 0; i < sc->nprofiles; i++)
        if (strcmp(sc->profiles[i].name, name) == 0) {
            memmove(&sc->profiles[i], &sc->profiles[i + 1], (sc->nprofiles - i - 1) * sizeof *sc->profiles);
            sc->nprofiles--;
            uint64_t total = 0;
            for (uint32_t k = 0; k < sc->nprofiles; k++) {
                sc->profiles[k].first_peer = (uint32_t)total;
                total += sc->profiles[k].count;
            }
            sc->npeers = (uint32_t)total;
            return 0;
        }
    return -1;
}
