/* hekate: the seeding daemon, from start to stop. It catches the signals first (early_signals.h: one that arrives
 * before the loop watches it is recorded, not fatal), reads the command line, prepares the process (log level,
 * descriptor limit, and the descriptor budget: --max-peers lowered, or a refusal, when RLIMIT_NOFILE is too small for
 * it) and the runtime (the port is bound first), serves what the resume state holds (--state, resume_run.h), runs the
 * first scan of the folders given (in steps, the loop serving what is found so far between two, with a progress
 * line every few seconds: a SIGINT, SIGTERM or SIGQUIT abandons it and stops cleanly), then either prints the --list report or serves until SIGINT/SIGTERM/SIGQUIT and stops cleanly;
 * while serving, SIGUSR1 and every fifth statistics tick log a status line. What it says about torrents is
 * report.c's, the rescans after start-up (SIGHUP, --rescan) are rescans.c's; the runtime itself lives in
 * backend-real/lib (real_runtime.h, rescan.h) and core/ (seeder.h). A bare --verify checks every torrent found
 * instead of serving (verify_run.h). Exit status: 0 served (or listed, or verified intact) something, or stopped
 * before serving; 1 nothing, cannot start, --list or --verify stopped by a signal, or a damaged or missing torrent
 * found by --verify; 2 usage. */
#include <ev.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "app.h"
#include "control_cmds.h"
#include "early_signals.h"
#include "fd_budget.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "options.h"
#include "paths.h"
#include "privdrop.h"
#include "real_runtime.h"
#include "report.h"
#include "rescans.h"
#include "resume_run.h"
#include "verify_run.h"
#include "utp_bridge.h"
#include "watches.h"

#define FIRST_SCAN_STEP 0.020   /* seconds of first-scan work between two looks at a pending SIGINT/SIGTERM */
#define FIRST_SCAN_PROGRESS 3.0 /* seconds between two progress lines of the first scan */
#define STATS_EVERY 60.0        /* seconds between two statistics lines (DEBUG) */
#define STATUS_CHECK 1.0        /* seconds between two looks at whether --status-interval has passed (live) */

static const char *prog = "hekate";

/* ---- start-up ---- */

static void name_program(int argc, char **argv)
{
    if (argc > 0 && argv[0] && argv[0][0]) {
        const char *slash = strrchr(argv[0], '/');
        prog = slash ? slash + 1 : argv[0];
    }
}

/* The exit status for --help, --version and command-line errors; -1 to run. */
static int read_command_line(hk_options *opt, int argc, char **argv)
{
    char err[1024];
    switch (hk_options_parse(opt, argc, argv, err, sizeof err)) {
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
    return -1;
}

static void prepare_process(const hk_options *opt)
{
    hk_log_set_level(hk_options_log_level(opt)); /* SIGPIPE is ignored from the start: early_signals_install */
    unsigned long fds = hk_raise_fd_limit();
    hk_log(HK_LOG_DEBUG, "descriptor limit: %lu", fds);
}

/* The runtime's settings from the command line: no listener and no trackers for --list and a bare --verify. */
static void runtime_options(const hk_options *opt, hk_real_opts *ro)
{
    hk_real_opts_default(ro);
    ro->cfg = opt->cfg;
    ro->listen = !opt->list && !opt->verify_check;
    ro->listener.port = opt->port;
    ro->listener.family = opt->family;
    ro->listener.bind_addr = opt->bind_addr;
    ro->store.max_mapped_bytes = opt->max_mapped;
    ro->store.max_open_files = opt->max_open_files;
    ro->disk_threads = opt->disk_threads;
    ro->conn.zero_copy = !opt->no_zero_copy; /* net/conn_splice.h */
    ro->verify_off = opt->verify == HK_VERIFY_OFF && !opt->verify_check;
    /* trackers: core/announcer.h through trackers.h */
    ro->trackers = !opt->no_trackers && !opt->list && !opt->verify_check;
    ro->trackers_opts.ann.family = opt->family == HK_FAMILY_V4 ? 4 : opt->family == HK_FAMILY_V6 ? 6 : 0;
    if (opt->announce_interval)
        ro->trackers_opts.ann.default_interval = opt->announce_interval;
    if (opt->announce_rate)
        ro->trackers_opts.ann.start_rate = opt->announce_rate;
    ro->trackers_opts.log_level = hk_options_log_level(opt);
    ro->dht = !opt->no_dht && !opt->list; /* the DHT: core/dht.h through dht_glue.h */
    for (size_t i = 0; i < opt->ndht_bootstrap; i++)
        ro->dht_opts.bootstrap[i] = opt->dht_bootstrap[i];
    ro->dht_opts.nbootstrap = opt->ndht_bootstrap;
    ro->dht_opts.state_path = opt->dht_state;
    ro->shard_k = opt->shard_k; /* --shard */
    ro->shard_n = opt->shard_n;
}

/* The descriptor budget (fd_budget.h) against the soft limit, raised to the hard one by prepare_process: logged in
 * one line; when it does not fit, --max-peers and --max-open-files are lowered to what does (a warning naming the
 * options), or, when not even --max-unchoked peers fit, the daemon refuses to start (false). Sets the listener's
 * descriptor reserve. */
static bool check_descriptors(hk_real_opts *ro)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return true;
    unsigned threads = ro->disk_threads ? ro->disk_threads : 8;
    unsigned jobs = ro->disk_jobs ? ro->disk_jobs : 4 * threads;
    hk_fd_budget b;
    hk_fd_verdict v = hk_fd_budget_plan((uint64_t)rl.rlim_cur, ro->cfg.max_peers, ro->cfg.max_unchoked,
                                        ro->store.max_open_files, jobs, &b);
    char line[512];
    hk_fd_budget_line(&b, line, sizeof line);
    if (v == HK_FD_REFUSED) {
        fprintf(stderr, "%s: cannot start: %s\n", prog, line);
        return false;
    }
    hk_log(v == HK_FD_FITS ? HK_LOG_INFO : HK_LOG_WARN, "%s", line);
    ro->cfg.max_peers = b.peers;
    ro->store.max_open_files = b.files;
    ro->listener.fd_cap = b.fd_cap;
    return true;
}

/* --user/--group (ops/privdrop.h): the names looked up before binding (a bad one is said before anything starts),
 * the ids changed once the port is bound. False after saying why: the daemon then refuses to run. */
static bool resolve_privileges(const hk_options *opt, hk_privdrop *pd)
{
    char err[512];
    if (hk_privdrop_resolve(pd, opt->user, opt->group, err, sizeof err) == 0)
        return true;
    fprintf(stderr, "%s: cannot start: %s\n", prog, err);
    return false;
}

static bool drop_privileges(const hk_privdrop *pd)
{
    char err[512];
    if (hk_privdrop_apply(pd, err, sizeof err) != 0) {
        fprintf(stderr, "%s: cannot start: %s\n", prog, err);
        return false;
    }
    if (pd->set_uid || pd->set_gid)
        hk_log(HK_LOG_INFO, "running as uid %u, gid %u", (unsigned)getuid(), (unsigned)getgid());
    return true;
}

/* The runtime on the loop (the port bound unless --list), then --user/--group applied; NULL after saying why. */
static hk_real *start_runtime(struct ev_loop *loop, const hk_options *opt)
{
    hk_real_opts ro;
    runtime_options(opt, &ro);
    hk_privdrop pd;
    if (!resolve_privileges(opt, &pd))
        return NULL;
    if (ro.listen && !check_descriptors(&ro))
        return NULL;
    char err[1024];
    hk_real *real = hk_real_new(loop, &ro, err, sizeof err);
    if (!real)
        fprintf(stderr, "%s: cannot start: %s\n", prog, err);
    if (real && (!paths_apply(real, opt) || !drop_privileges(&pd))) {
        hk_real_free(real);
        return NULL;
    }
    return real;
}

/* --metrics: the endpoint on the loop (answered once the loop runs); NULL when off. *ok false after saying why it
 * cannot listen. */
static hk_metrics *start_metrics(struct ev_loop *loop, const hk_options *opt, hk_real *real, bool *ok)
{
    *ok = true;
    if (!opt->metrics_addr || opt->list || opt->verify_check)
        return NULL;
    char err[1024];
    hk_metrics *m = hk_metrics_start(loop, real, opt->metrics_addr, opt->metrics_top, err, sizeof err);
    if (!m) {
        fprintf(stderr, "%s: cannot start: %s\n", prog, err);
        *ok = false;
        return NULL;
    }
    hk_log(HK_LOG_INFO, "metrics: serving %s", hk_metrics_url(m));
    return m;
}

static void app_init(app *a, hk_options *opt, hk_real *real, struct ev_loop *loop, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->opt = opt;
    a->argc = argc; /* config file: parsed again on a reload (config_reload.h) */
    a->argv = argv;
    a->real = real;
    a->loop = loop;
    rescans_init(a);
}

typedef enum scan_end { SCAN_DONE, SCAN_STOPPED, SCAN_FAILED } scan_end;

/* Every FIRST_SCAN_PROGRESS seconds of a long first scan: found, served, failed, rate. */
static void first_scan_progress(const app *a, hk_rescan *rs)
{
    hk_rescan_stats st;
    hk_rescan_stats_get(rs, &st);
    hk_log(HK_LOG_INFO, "first scan: %zu .torrent files found, %zu torrents served (%zu read now, %zu from the resume "
           "state), %zu failed; %.0f files/s over %.1f s", st.files, st.served, st.added, st.unchanged, st.failed,
           st.seconds > 0 ? (double)st.files / st.seconds : 0.0, st.seconds);
    (void)a;
}

/* The first scan, before serving, in steps of FIRST_SCAN_STEP with a look at a pending SIGINT/SIGTERM between two:
 * SCAN_STOPPED (said) if one came during start-up or the scan (the scan is abandoned: what it added stays until the
 * runtime is freed, never announced), SCAN_FAILED (said) if out of memory. */
static scan_end first_scan(app *a)
{
    const hk_options *opt = a->opt;
    int sig = early_signals_stop();
    if (sig) {
        report_first_scan_stopped(a, sig, NULL);
        return SCAN_STOPPED;
    }
    if (resume_warm(a) != 0) { /* --state: unchanged torrents served from it, before the walk */
        report_first_scan_stopped(a, early_signals_stop(), NULL);
        return SCAN_STOPPED;
    }
    hk_log(opt->list || opt->verify_check ? HK_LOG_DEBUG : HK_LOG_INFO, "first scan: scanning %zu folder%s",
           opt->ndirs,
           opt->ndirs == 1 ? "" : "s");
    const hk_rescan_cb cb = report_callbacks(a);
    hk_rescan *rs = hk_rescan_new(a->real, (const char *const *)opt->dirs, opt->ndirs, &cb, 0);
    if (!rs) {
        fprintf(stderr, "%s: cannot scan: out of memory\n", prog);
        return SCAN_FAILED;
    }
    bool done = false;
    ev_tstamp said = ev_time();
    while ((sig = early_signals_stop()) == 0 && !(done = hk_rescan_step(rs, FIRST_SCAN_STEP))) {
        if (opt->list)
            continue;
        ev_run(a->loop, EVRUN_NOWAIT); /* serving starts before the scan ends: what is found so far is served */
        if (ev_time() - said >= FIRST_SCAN_PROGRESS) {
            said = ev_time();
            first_scan_progress(a, rs);
        }
    }
    hk_rescan_stats st;
    hk_rescan_stats_get(rs, &st);
    hk_rescan_free(rs); /* unfinished: abandoned, nothing removed */
    if (!done) {
        report_first_scan_stopped(a, sig, &st);
        return SCAN_STOPPED;
    }
    report_scan_done(a, &st);
    a->started = true;
    return SCAN_DONE;
}

/* ---- serving ---- */

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    hk_log(HK_LOG_INFO, "%s received: stopping", strsignal(w->signum));
    hk_notify_stopping(); /* systemd (ops/notify.h) */
    ev_break(loop, EVBREAK_ALL);
}

static void log_stats(hk_real *r, hk_log_level level, const char *when)
{
    hk_stats s;
    hk_seeder_stats(hk_real_seeder(r), &s);
    hk_conn_stats cs;
    hk_conn_hub_stats(hk_real_hub(r), &cs);
    if (s.mse_handshakes || s.mse_failures) /* MSE/PE (issue 9) */
        hk_log(level, "%s: %" PRIu64 " encrypted handshakes, %" PRIu64 " failed; %" PRIu64 " bytes encrypted", when,
               s.mse_handshakes, s.mse_failures, cs.bytes_encrypted);
    hk_utp_stats us;
    if (hk_real_utp_stats(r, &us) && (us.resets || us.rate_limited)) /* uTP resets (issue 9) */
        hk_log(level, "%s: %" PRIu64 " uTP connection attempts answered with a reset, %" PRIu64 " over the rate bound",
               when, us.resets, us.rate_limited);
    hk_utp_bridge_stats ub;
    if (hk_real_utp_bridge_stats(r, &ub) && ub.accepted) /* the uTP transport (issue 9) */
        hk_log(level, "%s: %" PRIu64 " uTP connections accepted (%" PRIu64 " open, %" PRIu64 " refused over the bounds); %"
               PRIu64 " bytes sent over uTP, %" PRIu64 " packets resent", when, ub.accepted, ub.active, ub.refused,
               ub.bytes_sent, ub.retransmits);
    if (cs.holds) /* write and read coalescing (net/conn.h) */
        hk_log(level, "%s: %" PRIu64 " short queues held for more, %" PRIu64 " of them written when the hold ran out; %"
               PRIu64 " of them empty; %" PRIu64 " low water changes, %" PRIu64 " reads that met a raised one",
               when, cs.holds, cs.holds_expired, cs.holds_empty, cs.lowat_sets, cs.lowat_reads);
    if (cs.splices) /* zero-copy writes (net/conn_splice.h) */
        hk_log(level, "%s: %" PRIu64 " zero-copy writes (vmsplice + splice) of %" PRIu64 " bytes; %" PRIu64
               " bytes left in the pipe by full sockets, sent again later", when, cs.splices, cs.bytes_spliced,
               cs.splice_discarded);
    if (s.rate_stops) /* upload rate caps (issue 11 item 5) */
        hk_log(level, "%s: upload rate caps held back %" PRIu64 " bytes; %" PRIu64 " turns stopped for tokens", when,
               s.rate_delayed_bytes, s.rate_stops);
    hk_log(level,
           "%s: %" PRIu64 " blocks (%" PRIu64 " bytes) sent; %" PRIu64 " writev calls (%" PRIu64 " iovecs, %" PRIu64
           " bytes), %" PRIu64 " reads; %" PRIu64 " connections, %" PRIu64 " refused (%" PRIu64 " per address, %" PRIu64
           " per prefix); %" PRIu64 " disk loads",
           when, s.blocks_sent, s.bytes_sent, cs.writes, cs.iovecs, cs.bytes_written, cs.reads, cs.opened,
           s.peers_refused, s.refused_per_address, s.refused_per_prefix, s.disk_loads);
}

/* While serving: what the status line (INFO, every --status-interval and on SIGUSR1) compares with. */
typedef struct status_clock {
    hk_real *r;
    struct ev_loop *loop;
    uint64_t bytes;              /* bytes sent at the last status line */
    ev_tstamp at;                /* and when */
    const hk_options *opt;       /* status_interval, which a config reload may change */
} status_clock;

/* One line at INFO: torrents, peers and the upload rate since the last status line (why: "" or " (SIGUSR1)"). */
static void log_status(status_clock *sc, const char *why)
{
    hk_stats s;
    hk_seeder_stats(hk_real_seeder(sc->r), &s);
    ev_tstamp now = ev_now(sc->loop), dt = now - sc->at;
    double rate = dt > 0 ? (double)(s.bytes_sent - sc->bytes) / dt / 1e6 : 0.0;
    hk_log(HK_LOG_INFO, "status%s: %u torrent%s, %u peer%s (%u unchoked, %u waiting); %.2f MB/s over the last %.1f s, "
           "%.1f MiB sent since start", why, s.torrents, s.torrents == 1 ? "" : "s", s.peers, s.peers == 1 ? "" : "s",
           s.unchoked, s.waiting, rate, dt, (double)s.bytes_sent / (1024.0 * 1024.0));
    sc->bytes = s.bytes_sent;
    sc->at = now;
    hk_dht *dht = hk_real_dht(sc->r);
    if (dht) {
        hk_dht_stats d;
        hk_dht_stats_get(dht, &d);
        hk_log(HK_LOG_INFO, "dht%s: %u torrent%s announced, %u good nodes (IPv4 %u, IPv6 %u); %" PRIu64 " announces "
               "acknowledged, last round %.0f s; %" PRIu64 " queries sent, %" PRIu64 " received", why, d.torrents,
               d.torrents == 1 ? "" : "s", d.good4 + d.good6, d.good4, d.good6, d.announces_done,
               (double)d.last_period / 1e9, d.queries_sent, d.queries_received);
    }
}

/* Once a second: the status line when --status-interval (0: never) has passed since the last one. */
static void status_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    status_clock *sc = w->data;
    double every = (double)sc->opt->status_interval / 1e9;
    if (every > 0 && ev_now(loop) - sc->at >= every)
        log_status(sc, "");
}

/* SIGUSR1: the status line and the statistics so far, at INFO; serving goes on. */
static void usr1_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    status_clock *sc = w->data;
    log_status(sc, " (SIGUSR1)");
    log_stats(sc->r, HK_LOG_INFO, "so far");
}

static void stats_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    status_clock *sc = w->data;
    hk_real *r = sc->r;
    hk_stats s;
    hk_seeder_stats(hk_real_seeder(r), &s);
    hk_log(HK_LOG_DEBUG, "now: %u peers (%u encrypted, %u plain), %u unchoked, %u waiting, %" PRIu64
           " requests queued; core memory %" PRIu64 " bytes", s.peers, s.peers_encrypted, s.peers - s.peers_encrypted,
           s.unchoked, s.waiting, s.queued_requests, s.memory_bytes);
    log_stats(r, HK_LOG_DEBUG, "so far");
    hk_notify_status("%u torrent%s, %u peers (%u unchoked, %u waiting), %" PRIu64 " bytes sent", s.torrents,
                     s.torrents == 1 ? "" : "s", s.peers, s.unchoked, s.waiting,
                     s.bytes_sent); /* systemd: `systemctl status` (ops/notify.h) */
}

/* The stop: `stopped` to the trackers that have a torrent registered (none if it never served), at most 5 s. */
static void stop_serving(app *a)
{
    log_stats(a->real, HK_LOG_INFO, "stopped");
    resume_save(a, "at the stop"); /* --state: before the trackers' `stopped` round, which may take seconds */
    hk_real_stop_trackers(a->real, 5.0); /* trackers: `stopped` everywhere, at most 5 s (the loop runs meanwhile) */
}

/* systemd readiness (ops/notify.h): the port is bound and the first scan is over, so the torrents found are served. */
static void notify_ready(const app *a)
{
    char status[160];
    snprintf(status, sizeof status, "serving %zu torrent%s on port %u", a->served, a->served == 1 ? "" : "s",
             (unsigned)hk_listener_port(hk_real_listener(a->real)));
    hk_notify_ready(status);
}

/* Serves until SIGINT, SIGTERM or SIGQUIT, then stops: the rescan under way dropped, `stopped` sent to the trackers.
 * A stop recorded before the watchers were started (early_signals.h) stops at once; a SIGHUP, a rescan
 * (rescans_start); a SIGUSR1, a status line. */
static void run_until_stopped(app *a)
{
    static const int stops[] = { SIGINT, SIGTERM, SIGQUIT };
    ev_signal stop[3], usr1;
    for (int i = 0; i < 3; i++) {
        ev_signal_init(&stop[i], stop_cb, stops[i]);
        ev_signal_start(a->loop, &stop[i]);
    }
    status_clock sc = { .r = a->real, .loop = a->loop, .at = ev_now(a->loop), .opt = a->opt };
    ev_signal_init(&usr1, usr1_cb, SIGUSR1);
    usr1.data = &sc;
    ev_signal_start(a->loop, &usr1);
    ev_timer stats;
    ev_timer_init(&stats, stats_cb, STATS_EVERY, STATS_EVERY);
    stats.data = &sc;
    ev_timer_start(a->loop, &stats);
    ev_timer status;
    ev_timer_init(&status, status_cb, STATUS_CHECK, STATUS_CHECK);
    status.data = &sc;
    ev_timer_start(a->loop, &status);
    hk_notify_watchdog watchdog; /* systemd: WatchdogSec= (ops/notify.h) */
    hk_notify_watchdog_start(&watchdog, a->loop);

    int early = early_signals_stop(); /* the watchers are started: a later one is libev's */
    if (!early && early_signals_take_usr1())
        usr1_cb(a->loop, &usr1, 0);
    if (early) {
        hk_log(HK_LOG_INFO, "%s received before serving: stopping", strsignal(early));
        hk_notify_stopping();
    } else {
        rescans_start(a);
        watches_start(a);
        resume_start_timer(a);
        notify_ready(a);
        ev_run(a->loop, 0);
    }

    watches_stop(a); /* nothing loaded or removed during the stop */
    rescans_abandon(a);
    stop_serving(a);
    rescans_stop_timer(a);
    ev_timer_stop(a->loop, &stats);
    ev_timer_stop(a->loop, &status);
    hk_notify_watchdog_stop(&watchdog, a->loop);
    ev_signal_stop(a->loop, &usr1);
    for (int i = 0; i < 3; i++)
        ev_signal_stop(a->loop, &stop[i]);
    early_signals_install(); /* libev put the defaults back: signals until exit are recorded, never fatal */
}

/* After the first scan: nothing to serve (and no --rescan to wait for) is exit status 1; else serve until stopped. */
static int serve(app *a)
{
    const hk_options *opt = a->opt;
    if (a->served == 0 && opt->rescan_interval == 0) {
        fprintf(stderr, "%s: nothing to serve: no valid torrent with complete data below %s%s\n", prog, opt->dirs[0],
                opt->ndirs > 1 ? " (and the other folders)" : "");
        return 1;
    }
    report_startup(a);
    run_until_stopped(a);
    return 0;
}

/* --list: the report is printed; exit status 0 if something would be served. */
static int list_only(const app *a)
{
    report_list_total(a);
    return a->served > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    early_signals_install(); /* first: a signal from now on is recorded, never fatal */
    name_program(argc, argv);
    hk_options opt;
    int status = read_command_line(&opt, argc, argv);
    if (status >= 0)
        return status;
    prepare_process(&opt);

    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    if (!loop) {
        fprintf(stderr, "%s: cannot initialise the event loop (libev)\n", prog);
        return 1;
    }
    hk_real *real = start_runtime(loop, &opt);
    if (!real) {
        hk_options_free(&opt);
        return 1;
    }
    bool metrics_ok;
    hk_metrics *metrics = start_metrics(loop, &opt, real, &metrics_ok);
    if (!metrics_ok) {
        hk_real_free(real);
        ev_loop_destroy(loop);
        hk_options_free(&opt);
        return 1;
    }

    app a;
    app_init(&a, &opt, real, loop, argc, argv);
    bool offline = opt.list || opt.verify_check; /* nothing served: no control socket, no state, no stop report */
    /* --control and --state: before the scan, so a clash or an unusable state folder stops at once */
    if (!offline && (control_cmds_open(&a, prog) != 0 || resume_open(&a, prog) != 0)) {
        control_cmds_close(&a);
        hk_metrics_stop(metrics);
        hk_real_free(real);
        ev_loop_destroy(loop);
        hk_options_free(&opt);
        return 1;
    }
    switch (first_scan(&a)) {
    case SCAN_DONE:
        status = opt.list ? list_only(&a) : opt.verify_check ? verify_run(&a) : serve(&a);
        break;
    case SCAN_STOPPED: /* --list, --verify: the report is incomplete, 1; serving: a clean stop, as from serving, 0 */
        if (!offline) {
            hk_notify_stopping();
            stop_serving(&a);
        }
        status = offline ? 1 : 0;
        break;
    case SCAN_FAILED:
        status = 1;
        break;
    }

    control_cmds_close(&a);
    resume_close(&a);
    rescans_close(&a);
    early_signals_install(); /* its SIGHUP watcher is gone too: recorded again, never fatal */
    report_free(&a);
    hk_metrics_stop(metrics);
    report_links_free(&a);
    hk_real_free(real);
    ev_loop_destroy(loop);
    hk_options_free(&opt); /* config file: its DIRs and values */
    return status;
}
