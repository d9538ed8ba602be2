/* hekate: the seeding daemon. Owns start-up (options, limits, signals), the first scan of the folders given on the
 * command line, the start-up report (or the --list report), the rescans (SIGHUP, --rescan) with their log lines,
 * and the clean stop on SIGINT/SIGTERM. Everything else lives in backend-real/lib (real_runtime.h, rescan.h) and
 * core/ (seeder.h). */
#include <errno.h>
#include <ev.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infohash.h"
#include "log.h"
#include "metainfo.h"
#include "options.h"
#include "real_runtime.h"
#include "rescan.h"

#define MAGNETS_SHOWN 5          /* magnet links printed at start-up without -v */
#define PROGRESS_EVERY 10000     /* a progress line every this many .torrent files examined */
#define STEP_SECONDS 0.010       /* rescan work per loop iteration, so serving goes on during a long rescan */

typedef struct shown {
    char *magnet;
    char *name;
} shown;

typedef struct app {
    const hk_options *opt;
    hk_real *real;
    struct ev_loop *loop;
    bool started;                /* the first scan is over: later changes are logged at INFO */
    size_t served, rejected;     /* first scan */
    shown first[MAGNETS_SHOWN];
    size_t nfirst;
    /* rescans */
    hk_rescan *rs;               /* the rescan under way, or NULL */
    bool again;                  /* SIGHUP during a rescan: another one follows it */
    bool asked;                  /* the rescan under way was asked for (SIGHUP), not periodic */
    size_t loud;                 /* lines it logged above DEBUG: a quiet periodic rescan logs at DEBUG only */
    ev_prepare rs_step;          /* a slice of the rescan each loop iteration */
    ev_idle rs_idle;             /* ... without blocking in between */
    ev_signal sighup;
    ev_timer rescan_timer;       /* --rescan */
} app;

static const char *prog = "hekate";

static void human_size(uint64_t n, char *buf, size_t cap)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
    double v = (double)n;
    unsigned u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof *units) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%" PRIu64 " B", n);
    else
        snprintf(buf, cap, "%.1f %s", v, units[u]);
}

static char *make_magnet(const mi_torrent *mi)
{
    size_t need = mi_magnet(mi, NULL, 0) + 1;
    char *m = malloc(need);
    if (m)
        mi_magnet(mi, m, need);
    return m;
}

static void hex_of(const uint8_t ih[20], char hex[41])
{
    for (int i = 0; i < 20; i++)
        snprintf(hex + 2 * i, 3, "%02x", ih[i]);
}

/* --list: what would be served, with trackers (and magnet links with -v). */
static void list_served(app *a, const char *path, const mi_torrent *mi)
{
    char hex[41], size[32];
    hex_of(mi->info_hash, hex);
    human_size(mi->total_length, size, sizeof size);
    printf("served   %s  %s (%" PRIu64 " bytes), %u file%s  \"%s\"  %s\n", hex, size, mi->total_length,
           mi->file_count, mi->file_count == 1 ? "" : "s", mi->name, path);
    if (a->opt->verbosity > 0) {
        char *m = make_magnet(mi);
        if (m)
            printf("         %s\n", m);
        free(m);
    }
    for (uint32_t t = 0; t < mi->tier_count; t++) { /* trackers, by tier (BEP 12) */
        printf("         tier %u:", t + 1);
        for (uint32_t k = 0; k < mi->tiers[t].count; k++)
            printf(" %s", mi->trackers[mi->tiers[t].first + k]);
        printf("\n");
    }
    if (mi->tier_count == 0)
        printf("         no trackers\n");
}

/* A torrent added by the first scan: magnet links as they come (-v), or the first few kept for the report. */
static void startup_served(app *a, const char *path, const mi_torrent *mi)
{
    char hex[41];
    hex_of(mi->info_hash, hex);
    hk_log(HK_LOG_DEBUG, "serving %s (%s, %u files)", path, hex, mi->file_count);
    if (a->opt->verbosity > 0) {
        char *m = make_magnet(mi);
        if (m)
            printf("  %s\n    %s\n", mi->name, m);
        free(m);
    } else if (a->nfirst < MAGNETS_SHOWN) { /* printed after the summary if there are no more than these */
        a->first[a->nfirst].magnet = make_magnet(mi);
        a->first[a->nfirst].name = strdup(mi->name);
        a->nfirst++;
    }
}

static void on_event(void *arg, const hk_rescan_event *ev)
{
    app *a = arg;
    if (!(ev->repeated && (ev->kind == HK_RESCAN_REJECTED || ev->kind == HK_RESCAN_STILL_FAILED)))
        a->loud++;
    char hex[41] = "";
    if (ev->info_hash)
        hex_of(ev->info_hash, hex);
    if (!a->started) { /* the first scan: the start-up report (or the --list report) */
        switch (ev->kind) {
        case HK_RESCAN_ADDED:
        case HK_RESCAN_READDED:
            a->served++;
            if (a->opt->list)
                list_served(a, ev->path, ev->mi);
            else
                startup_served(a, ev->path, ev->mi);
            return;
        case HK_RESCAN_REJECTED:
        case HK_RESCAN_STILL_FAILED:
        case HK_RESCAN_ERROR:
            a->rejected++;
            if (a->opt->list)
                printf("rejected %s: %s\n", ev->path, ev->why);
            else
                hk_log(HK_LOG_WARN, "rejected %s: %s", ev->path, ev->why);
            return;
        case HK_RESCAN_PROBLEM:
            if (a->opt->list)
                printf("rejected %s: %s\n", ev->path, ev->why);
            else
                hk_log(HK_LOG_WARN, "skipped %s: %s", ev->path, ev->why);
            return;
        case HK_RESCAN_REMOVED:
        case HK_RESCAN_KEPT:
            break; /* nothing was served before the first scan */
        }
    }
    switch (ev->kind) {
    case HK_RESCAN_ADDED: {
        char size[32];
        human_size(ev->mi->total_length, size, sizeof size);
        hk_log(HK_LOG_INFO, "added %s (%s): \"%s\", %s, %u file%s", ev->path, hex, ev->mi->name, size,
               ev->mi->file_count, ev->mi->file_count == 1 ? "" : "s");
        if (a->opt->verbosity > 0) {
            char *m = make_magnet(ev->mi);
            if (m)
                hk_log(HK_LOG_INFO, "  %s", m);
            free(m);
        }
        break;
    }
    case HK_RESCAN_READDED:
        hk_log(HK_LOG_INFO, "added %s again (%s): %s", ev->path, hex, ev->why);
        break;
    case HK_RESCAN_REMOVED:
        hk_log(HK_LOG_INFO, "removed %s (%s): %s", ev->path, hex, ev->why);
        break;
    case HK_RESCAN_REJECTED:
        hk_log(ev->repeated ? HK_LOG_DEBUG : HK_LOG_WARN, "rejected %s: %s", ev->path, ev->why);
        break;
    case HK_RESCAN_STILL_FAILED:
        hk_log(ev->repeated ? HK_LOG_DEBUG : HK_LOG_WARN, "still failed %s (%s): %s", ev->path, hex, ev->why);
        break;
    case HK_RESCAN_ERROR:
        hk_log(HK_LOG_WARN, "could not examine %s now: %s (left as it is)", ev->path, ev->why);
        break;
    case HK_RESCAN_KEPT:
        hk_log(HK_LOG_WARN, "kept %s (%s): %s", ev->path, hex, ev->why);
        break;
    case HK_RESCAN_PROBLEM:
        hk_log(HK_LOG_WARN, "skipped %s: %s", ev->path, ev->why);
        break;
    }
}

static void on_progress(void *arg, const hk_rescan_stats *st)
{
    app *a = arg;
    if (a->opt->list)
        return;
    hk_log(HK_LOG_INFO, "%s: %zu .torrent files examined so far (%zu added, %zu removed, %zu failed) in %.1f s",
           a->started ? "rescan" : "scan", st->files, st->added, st->removed, st->failed, st->seconds);
}

static void log_summary(const app *a, const hk_rescan_stats *st)
{
    hk_log(a->started && (a->asked || a->loud > 0) ? HK_LOG_INFO : HK_LOG_DEBUG,
           "%s done: %zu added, %zu removed, %zu failed; %zu torrent%s served (%zu .torrent file%s examined, %zu "
           "unchanged%s) in %.3f s",
           a->started ? "rescan" : "scan", st->added, st->removed, st->failed, st->served,
           st->served == 1 ? "" : "s", st->files, st->files == 1 ? "" : "s", st->unchanged,
           st->kept ? ", some kept: see above" : "", st->seconds);
    if (a->started && st->served == 0)
        hk_log(HK_LOG_WARN, "serving nothing until a rescan finds a torrent");
}

static void free_shown(app *a)
{
    for (size_t i = 0; i < a->nfirst; i++) {
        free(a->first[i].magnet);
        free(a->first[i].name);
    }
    a->nfirst = 0;
}

/* ---- rescans ---- */

static void start_rescan(app *a, const char *why, bool asked)
{
    const hk_rescan_cb cb = { .on_event = on_event, .on_progress = on_progress, .arg = a };
    a->rs = hk_rescan_new(a->real, (const char *const *)a->opt->dirs, a->opt->ndirs, &cb, PROGRESS_EVERY);
    if (!a->rs) {
        hk_log(HK_LOG_ERROR, "cannot rescan: out of memory");
        return;
    }
    a->asked = asked;
    a->loud = 0;
    hk_log(asked ? HK_LOG_INFO : HK_LOG_DEBUG, "%s: rescanning %zu folder%s", why, a->opt->ndirs,
           a->opt->ndirs == 1 ? "" : "s");
    ev_prepare_start(a->loop, &a->rs_step);
    ev_idle_start(a->loop, &a->rs_idle);
}

static void stop_rescan(app *a)
{
    ev_prepare_stop(a->loop, &a->rs_step);
    ev_idle_stop(a->loop, &a->rs_idle);
    hk_rescan_free(a->rs);
    a->rs = NULL;
}

static void rs_step_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    app *a = w->data;
    if (!a->rs || !hk_rescan_step(a->rs, STEP_SECONDS))
        return;
    hk_rescan_stats st;
    hk_rescan_stats_get(a->rs, &st);
    log_summary(a, &st);
    stop_rescan(a);
    if (a->again) {
        a->again = false;
        start_rescan(a, "SIGHUP received during the last rescan", true);
    }
}

static void rs_idle_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents; /* keeps the loop from blocking while a rescan has work left */
}

static void sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    app *a = w->data;
    if (a->rs) {
        a->again = true;
        hk_log(HK_LOG_INFO, "SIGHUP received: a rescan is under way; another one follows it");
        return;
    }
    start_rescan(a, "SIGHUP received", true);
}

static void rescan_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    app *a = w->data;
    if (!a->rs) /* a rescan still under way is not queued again by the timer */
        start_rescan(a, "periodic rescan (--rescan)", false);
}

/* ---- life cycle ---- */

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    hk_log(HK_LOG_INFO, "%s received: stopping", strsignal(w->signum));
    ev_break(loop, EVBREAK_ALL);
}

static void log_stats(hk_real *r, hk_log_level level, const char *when)
{
    hk_stats s;
    hk_seeder_stats(hk_real_seeder(r), &s);
    hk_conn_stats cs;
    hk_conn_hub_stats(hk_real_hub(r), &cs);
    hk_log(level,
           "%s: %" PRIu64 " blocks (%" PRIu64 " bytes) sent; %" PRIu64 " writev calls (%" PRIu64 " iovecs, %" PRIu64
           " bytes), %" PRIu64 " reads; %" PRIu64 " connections, %" PRIu64 " refused; %" PRIu64 " disk loads",
           when, s.blocks_sent, s.bytes_sent, cs.writes, cs.iovecs, cs.bytes_written, cs.reads, cs.opened,
           s.peers_refused, s.disk_loads);
}

static void stats_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    hk_real *r = w->data;
    hk_stats s;
    hk_seeder_stats(hk_real_seeder(r), &s);
    hk_log(HK_LOG_DEBUG, "now: %u peers, %u unchoked, %u waiting, %" PRIu64 " requests queued; core memory %" PRIu64
           " bytes", s.peers, s.unchoked, s.waiting, s.queued_requests, s.memory_bytes);
    log_stats(r, HK_LOG_DEBUG, "so far");
}

static const char *family_name(const hk_listener *l)
{
    switch (hk_listener_family(l)) {
    case HK_FAMILY_V4: return hk_listener_fell_back(l) ? "IPv4 only: no IPv6 on this host" : "IPv4";
    case HK_FAMILY_V6: return "IPv6";
    case HK_FAMILY_ANY: return "IPv4 and IPv6";
    }
    return "?";
}

int main(int argc, char **argv)
{
    if (argc > 0 && argv[0] && argv[0][0]) {
        const char *slash = strrchr(argv[0], '/');
        prog = slash ? slash + 1 : argv[0];
    }
    hk_options opt;
    char err[1024];
    switch (hk_options_parse(&opt, argc, argv, err, sizeof err)) {
    case HK_OPTIONS_HELP:
        hk_options_usage(stdout, prog);
        return 0;
    case HK_OPTIONS_VERSION:
        printf("hekate %s\n", HEKATE_VERSION);
        return 0;
    case HK_OPTIONS_ERROR:
        fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n", prog, err, prog);
        return 2;
    case HK_OPTIONS_RUN:
        break;
    }
    hk_log_set_level(hk_options_log_level(&opt));
    signal(SIGPIPE, SIG_IGN); /* a peer that goes away must not kill us; sends use MSG_NOSIGNAL as well */
    unsigned long fds = hk_raise_fd_limit();
    hk_log(HK_LOG_DEBUG, "descriptor limit: %lu", fds);

    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    if (!loop) {
        fprintf(stderr, "%s: cannot initialise the event loop (libev)\n", prog);
        return 1;
    }

    hk_real_opts ro;
    hk_real_opts_default(&ro);
    ro.cfg = opt.cfg;
    ro.listen = !opt.list;
    ro.listener.port = opt.port;
    ro.listener.family = opt.family;
    ro.listener.bind_addr = opt.bind_addr;
    ro.store.max_mapped_bytes = opt.max_mapped;
    ro.store.max_open_files = opt.max_open_files;
    ro.disk_threads = opt.disk_threads;
    ro.trackers = !opt.no_trackers && !opt.list; /* trackers: core/announcer.h through trackers.h */
    ro.trackers_opts.ann.family = opt.family == HK_FAMILY_V4 ? 4 : opt.family == HK_FAMILY_V6 ? 6 : 0;
    if (opt.announce_interval)
        ro.trackers_opts.ann.default_interval = opt.announce_interval;
    if (opt.announce_rate)
        ro.trackers_opts.ann.start_rate = opt.announce_rate;
    ro.trackers_opts.log_level = hk_options_log_level(&opt);

    hk_real *real = hk_real_new(loop, &ro, err, sizeof err);
    if (!real) {
        fprintf(stderr, "%s: cannot start: %s\n", prog, err);
        return 1;
    }

    app a;
    memset(&a, 0, sizeof a);
    a.opt = &opt;
    a.real = real;
    a.loop = loop;
    ev_prepare_init(&a.rs_step, rs_step_cb);
    a.rs_step.data = &a;
    ev_idle_init(&a.rs_idle, rs_idle_cb);
    a.rs_idle.data = &a;
    ev_signal_init(&a.sighup, sighup_cb, SIGHUP);
    a.sighup.data = &a;
    ev_timer_init(&a.rescan_timer, rescan_timer_cb, (double)opt.rescan_interval / 1e9,
                  (double)opt.rescan_interval / 1e9);
    a.rescan_timer.data = &a;
    if (!opt.list) /* from here on, a SIGHUP asks for a rescan (one during the first scan is served after it) */
        ev_signal_start(loop, &a.sighup);

    const hk_rescan_cb cb = { .on_event = on_event, .on_progress = on_progress, .arg = &a };
    hk_rescan_stats first;
    if (hk_rescan_run(real, (const char *const *)opt.dirs, opt.ndirs, &cb, PROGRESS_EVERY, &first) != 0) {
        fprintf(stderr, "%s: cannot scan: out of memory\n", prog);
        hk_real_free(real);
        ev_loop_destroy(loop);
        return 1;
    }
    log_summary(&a, &first);
    a.started = true;

    int status = 0;
    if (opt.list) {
        printf("%zu torrent%s would be served, %zu rejected\n", a.served, a.served == 1 ? "" : "s", a.rejected);
        status = a.served > 0 ? 0 : 1;
        goto out;
    }
    if (a.served == 0 && opt.rescan_interval == 0) {
        fprintf(stderr, "%s: nothing to serve: no valid torrent with complete data below %s%s\n", prog, opt.dirs[0],
                opt.ndirs > 1 ? " (and the other folders)" : "");
        status = 1;
        goto out;
    }

    const hk_listener *l = hk_real_listener(real);
    if (opt.verbosity >= 0) {
        printf("hekate %s: serving %zu torrent%s on port %u (%s)%s", HEKATE_VERSION, a.served,
               a.served == 1 ? "" : "s", (unsigned)hk_listener_port(l), family_name(l),
               a.rejected ? ", " : "\n");
        if (a.rejected)
            printf("%zu rejected (see the messages above)\n", a.rejected);
        if (a.served <= MAGNETS_SHOWN) {
            for (size_t i = 0; i < a.nfirst; i++)
                printf("  %s\n    %s\n", a.first[i].name ? a.first[i].name : "?",
                       a.first[i].magnet ? a.first[i].magnet : "?");
        }
        fflush(stdout);
    }
    free_shown(&a);
    if (a.served == 0)
        hk_log(HK_LOG_WARN, "serving nothing until a rescan finds a torrent (every %.9g s, or on SIGHUP)",
               (double)opt.rescan_interval / 1e9);

    ev_signal sigint, sigterm;
    ev_signal_init(&sigint, stop_cb, SIGINT);
    ev_signal_init(&sigterm, stop_cb, SIGTERM);
    ev_signal_start(loop, &sigint);
    ev_signal_start(loop, &sigterm);
    ev_timer stats;
    ev_timer_init(&stats, stats_cb, 60., 60.);
    stats.data = real;
    ev_timer_start(loop, &stats);
    if (opt.rescan_interval)
        ev_timer_start(loop, &a.rescan_timer);

    ev_run(loop, 0);
    if (a.rs) {
        hk_log(HK_LOG_INFO, "rescan abandoned (an unfinished rescan removes nothing)");
        stop_rescan(&a);
    }
    log_stats(real, HK_LOG_INFO, "stopped");
    hk_real_stop_trackers(real, 5.0); /* trackers: `stopped` everywhere, at most 5 s */

    ev_timer_stop(loop, &a.rescan_timer);
    ev_timer_stop(loop, &stats);
    ev_signal_stop(loop, &sigint);
    ev_signal_stop(loop, &sigterm);
out:
    ev_signal_stop(loop, &a.sighup);
    free_shown(&a);
    hk_real_free(real);
    ev_loop_destroy(loop);
    return status;
}
