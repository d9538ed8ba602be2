/* hekate: the seeding daemon. Owns start-up (options, limits, signals), the scan of the folders given on the command
 * line, the start-up report (or the --list report) and the clean stop on SIGINT/SIGTERM. Everything else lives in
 * backend-real/lib (real_runtime.h) and core/ (seeder.h). */
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
#include "scan.h"

#define MAGNETS_SHOWN 5 /* magnet links printed at start-up without -v */

typedef struct shown {
    char *magnet;
    char *name;
} shown;

typedef struct app {
    const hk_options *opt;
    hk_real *real;
    size_t served, rejected;
    shown first[MAGNETS_SHOWN];
    size_t nfirst;
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

static int on_problem(void *arg, const char *path, const char *why)
{
    app *a = arg;
    if (a->opt->list) {
        printf("rejected %s: %s\n", path, why);
    } else {
        hk_log(HK_LOG_WARN, "skipped %s: %s", path, why);
    }
    return 0;
}

static int on_torrent(void *arg, const char *path)
{
    app *a = arg;
    char err[1024];
    mi_torrent *mi = NULL;
    if (hk_real_add_torrent_file(a->real, path, &mi, err, sizeof err) != 0) {
        a->rejected++;
        if (a->opt->list)
            printf("rejected %s: %s\n", path, err);
        else
            hk_log(HK_LOG_WARN, "rejected %s: %s", path, err);
        return 0;
    }
    a->served++;
    char hex[41];
    for (int i = 0; i < 20; i++)
        snprintf(hex + 2 * i, 3, "%02x", mi->info_hash[i]);
    if (a->opt->list) {
        char size[32];
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
    } else {
        hk_log(HK_LOG_DEBUG, "serving %s (%s, %u files)", path, hex, mi->file_count);
        if (a->opt->verbosity > 0) { /* -v: every magnet link, as the torrents come */
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
    mi_free(mi);
    return 0;
}

static void free_shown(app *a)
{
    for (size_t i = 0; i < a->nfirst; i++) {
        free(a->first[i].magnet);
        free(a->first[i].name);
    }
    a->nfirst = 0;
}

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
    hk_scan_cb cb = { .on_torrent = on_torrent, .on_problem = on_problem, .arg = &a };
    for (size_t i = 0; i < opt.ndirs; i++)
        hk_scan(opt.dirs[i], &cb);

    int status = 0;
    if (opt.list) {
        printf("%zu torrent%s would be served, %zu rejected\n", a.served, a.served == 1 ? "" : "s", a.rejected);
        status = a.served > 0 ? 0 : 1;
        goto out;
    }
    if (a.served == 0) {
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

    ev_signal sigint, sigterm;
    ev_signal_init(&sigint, stop_cb, SIGINT);
    ev_signal_init(&sigterm, stop_cb, SIGTERM);
    ev_signal_start(loop, &sigint);
    ev_signal_start(loop, &sigterm);
    ev_timer stats;
    ev_timer_init(&stats, stats_cb, 60., 60.);
    stats.data = real;
    ev_timer_start(loop, &stats);

    ev_run(loop, 0);
    log_stats(real, HK_LOG_INFO, "stopped");
    hk_real_stop_trackers(real, 5.0); /* trackers: `stopped` everywhere, at most 5 s */

    ev_timer_stop(loop, &stats);
    ev_signal_stop(loop, &sigint);
    ev_signal_stop(loop, &sigterm);
out:
    free_shown(&a);
    hk_real_free(real);
    ev_loop_destroy(loop);
    return status;
}
