/* hekate-sim: runs one scenario — the real seeding engine (core/) under SimGrid with simulated peers — and prints
 * its summary, writes its event log (and SHA-256), metrics CSVs, the JSON results, and exits 1 when an expectation
 * fails. Usage: see usage() below and docs/scenarios.md (`hekate-sim --help`).
 * --fault extent-offset is a test hook: the backend then sends every data extent one byte off, which the output
 * monitor must catch (it shows that the seeder_errors_max expectation can fail).
 * Exit: 0 all expectations hold, 1 some failed (each named on stdout), 2 usage, scenario or setup error. */
#include <errno.h>
#include <signal.h>
#include <simgrid/engine.h>
#include <simgrid/host.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xbt/config.h>
#include <xbt/log.h>

#include "platform.h"
#include "report.h"
#include "sim_dht.h"
#include "sim_tracker.h"
#include "world.h"

#define MAX_ARGS 64

typedef struct options {
    const char *scenario, *events, *metrics_csv, *peers_csv, *json, *drop, *fault, *platform;
    bool seed_set, baseline_child, keep_platform;
    uint64_t seed;
    const char *sets[MAX_ARGS];   /* --set SECTION.KEY=VALUE */
    size_t nsets;
    const char *cfgs[MAX_ARGS];   /* --cfg=KEY:VALUE, for SimGrid */
    size_t ncfgs;
    char *sg_argv[2 * MAX_ARGS + 4]; /* what simgrid_init parses: argv[0], the --cfg, --log and --help-* options */
    int sg_argc;
} options;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hekate-sim SCENARIO.ini [options]      run a scenario (docs/scenarios.md)\n"
            "       hekate-sim --trackers SCENARIO.ini [--seed N] [--curve FILE]   the announcer against a simulated "
            "tracker\n"
            "options:\n"
            "  --set SECTION.KEY=VALUE  override a key of the file (repeatable; e.g. seeder.max_unchoked=10,\n"
            "                           profile.normal.count=200); a value may refer to a key as ${SECTION.KEY}\n"
            "  --seed N                 override [run] seed\n"
            "  --events FILE            write the event log (its SHA-256 is the run's hash)\n"
            "  --metrics-csv FILE       one row per [run] sample: connections, unchoked, bytes sent, ...\n"
            "  --peers-csv FILE         one row per simulated peer (columns in docs/scenarios.md)\n"
            "  --json FILE              the results as JSON: parameters, figures, expectations, hash\n"
            "  --platform FILE          use this SimGrid platform instead of the generated one (host \"seeder\"\n"
            "                           with a disk, hosts \"p0\" .. \"pN-1\"; see docs/scenarios.md)\n"
            "  --keep-platform          keep the generated platform file (its path is printed)\n"
            "  --drop-profile NAME      run without that profile (the baseline of median_vs_baseline_max)\n"
            "  --cfg=KEY:VALUE          a SimGrid option (e.g. --cfg=network/model:LV08, --cfg=tracing:yes);\n"
            "                           a bad one is an error\n"
            "  --help-simgrid           SimGrid's own configuration keys\n"
            "  --fault extent-offset    test hook: send every data extent one byte off\n"
            "  --help                   this text\n"
            "exit: 0 every expectation holds, 1 one failed, 2 usage, scenario or setup error\n");
}

static void bad_usage(const char *why, const char *arg)
{
    fprintf(stderr, "hekate-sim: %s%s%s (hekate-sim --help)\n", why, arg ? ": " : "", arg ? arg : "");
    exit(2);
}

/* An option for SimGrid: --cfg=, --log=, --help-simgrid (SimGrid's --help), --help-models, --help-tracing. */
static bool simgrid_arg(options *o, char *a)
{
    if (strncmp(a, "--cfg=", 6) == 0) {
        if (o->ncfgs == MAX_ARGS)
            bad_usage("too many --cfg options", NULL);
        o->cfgs[o->ncfgs++] = a + 6;
    } else if (strcmp(a, "--help-simgrid") == 0)
        a = "--help";
    else if (strncmp(a, "--log=", 6) != 0 && strcmp(a, "--help-models") != 0 && strcmp(a, "--help-tracing") != 0)
        return false;
    o->sg_argv[o->sg_argc++] = a;
    return true;
}

/* An option of hekate-sim's own that takes a value (argv[i+1]); false if a is none. */
static bool value_arg(options *o, const char *a, const char *v)
{
    const char **dst = strcmp(a, "--events") == 0        ? &o->events
                       : strcmp(a, "--metrics-csv") == 0 ? &o->metrics_csv
                       : strcmp(a, "--peers-csv") == 0   ? &o->peers_csv
                       : strcmp(a, "--json") == 0        ? &o->json
                       : strcmp(a, "--drop-profile") == 0 ? &o->drop
                       : strcmp(a, "--platform") == 0    ? &o->platform
                                                         : NULL;
    if (dst)
        *dst = v;
    else if (strcmp(a, "--set") == 0) {
        if (o->nsets == MAX_ARGS)
            bad_usage("too many --set options", NULL);
        o->sets[o->nsets++] = v;
    } else if (strcmp(a, "--seed") == 0) {
        if (units_u64(v, &o->seed) < 0)
            bad_usage("--seed: not a non-negative integer", v);
        o->seed_set = true;
    } else if (strcmp(a, "--fault") == 0) {
        if (strcmp(v, "extent-offset") != 0)
            bad_usage("--fault: only extent-offset", v);
        o->fault = v;
    } else
        return false;
    return true;
}

static void parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->sg_argv[o->sg_argc++] = argv[0];
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (simgrid_arg(o, a))
            continue;
        else if (strcmp(a, "--baseline-child") == 0)
            o->baseline_child = true;
        else if (strcmp(a, "--keep-platform") == 0)
            o->keep_platform = true;
        else if (a[0] == '-' && i + 1 < argc && value_arg(o, a, argv[i + 1]))
            i++;
        else if (a[0] == '-')
            bad_usage(i + 1 < argc ? "unknown option" : "unknown option or missing value", a);
        else if (o->scenario)
            bad_usage("one scenario at a time", a);
        else
            o->scenario = a;
    }
    o->sg_argv[o->sg_argc] = NULL;
    bool sg_help = false;
    for (int i = 1; i < o->sg_argc; i++)
        sg_help |= strncmp(o->sg_argv[i], "--help", 6) == 0;
    if (!o->scenario && !sg_help)
        bad_usage("no scenario file", NULL);
}

/* Whether the command line sets SimGrid option key (then hekate-sim's own default for it is not applied). */
static bool cfg_given(const options *o, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < o->ncfgs; i++)
        if (strncmp(o->cfgs[i], key, n) == 0 && o->cfgs[i][n] == ':')
            return true;
    return false;
}

/* SimGrid aborts (rc 134) on a bad option or platform file: what SimGrid would do with `cfg` (a --cfg value) or
 * `platform` is tried first in a child process; 0 if it went through, else -1 with SimGrid's message in msg. */
static int try_in_child(const options *o, const char *cfg, const char *platform, char *msg, size_t msglen)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        char arg[600];
        snprintf(arg, sizeof arg, "--cfg=%s", cfg ? cfg : "network/model:CM02");
        char *av[] = {o->sg_argv[0], arg, NULL};
        int ac = 2;
        xbt_log_control_set("root.thres:critical");
        simgrid_init(&ac, av);
        if (platform)
            simgrid_load_platform(platform);
        _exit(ac == 1 ? 0 : 3);
    }
    close(fds[1]);
    char buf[8192];
    size_t n = 0;
    ssize_t r;
    while ((r = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0 || (r < 0 && errno == EINTR))
        n += r > 0 ? (size_t)r : 0;
    close(fds[0]);
    buf[n] = '\0';
    int st = 0;
    if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    char *m = strstr(buf, "CRITICAL] "), *eol;
    m = m ? m + 10 : "not accepted";
    if ((eol = strchr(m, '\n')) != NULL)
        *eol = '\0';
    snprintf(msg, msglen, "%s", m);
    return -1;
}

/* Whether the command line asks for SimGrid's Paje tracing. */
static bool tracing(const options *o)
{
    for (size_t i = 0; i < o->ncfgs; i++)
        if (strncmp(o->cfgs[i], "tracing", 7) == 0)
            return true;
    return false;
}

/* Every --cfg (and --platform) checked before SimGrid sees it. Returns 0, or 2 after a message. */
static int check_cfgs(const options *o)
{
    char msg[1024];
    for (size_t i = 0; i < o->ncfgs; i++)
        if (try_in_child(o, o->cfgs[i], NULL, msg, sizeof msg) < 0) {
            fprintf(stderr, "hekate-sim: --cfg=%s: %s (hekate-sim --help-simgrid lists SimGrid's keys)\n",
                    o->cfgs[i], msg);
            return 2;
        }
    if (o->platform && try_in_child(o, NULL, o->platform, msg, sizeof msg) < 0) {
        fprintf(stderr, "hekate-sim: --platform %s: %s\n", o->platform, msg);
        return 2;
    }
    return 0;
}

/* The same scenario without one profile, in a child process (SimGrid runs once per process), with the same
 * overrides, SimGrid options and platform; its "baseline-median NAME SECONDS" lines fill medians. */
static int run_baseline(const options *o, const scenario *sc, double *medians)
{
    char exe[4096], seed[32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)sc->run.seed);
    const char *av[3 * MAX_ARGS + 16];
    int ac = 0;
    const char *fixed[] = {exe, o->scenario, "--baseline-child", "--drop-profile", sc->expect.baseline_without,
                           "--seed", seed};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        av[ac++] = fixed[i];
    for (size_t i = 0; i < o->nsets; i++) {
        av[ac++] = "--set";
        av[ac++] = o->sets[i];
    }
    for (int i = 1; i < o->sg_argc; i++)
        av[ac++] = o->sg_argv[i];
    if (o->platform) {
        av[ac++] = "--platform";
        av[ac++] = o->platform;
    }
    av[ac] = NULL;
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execv(exe, (char *const *)av);
        _exit(127);
    }
    close(fds[1]);
    FILE *p = pid > 0 ? fdopen(fds[0], "r") : NULL;
    if (!p) {
        close(fds[0]);
        return -1;
    }
    char line[512];
    while (fgets(line, sizeof line, p)) {
        char name[64];
        double v;
        if (sscanf(line, "baseline-median %63s %lf", name, &v) == 2)
            for (uint32_t i = 0; i < sc->nprofiles; i++)
                if (strcmp(sc->profiles[i].name, name) == 0)
                    medians[i] = v;
    }
    fclose(p);
    int st = 0;
    return waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) > 1 ? -1 : 0;
}

/* Upload rate caps: the payload received so far, at the first samples at or after [expect] rate_window's ends. */
static void sample_rate_window(sim_world *w, hk_time now)
{
    const units_range *win = &w->sc->expect.rate_window;
    double ends[2] = {win->lo, win->hi};
    for (int i = 0; i < 2 && win->hi > 0; i++)
        if (!w->rate_at[i] && (double)now >= ends[i] * 1e9) {
            w->rate_at[i] = now;
            w->rate_bytes[i] = w->payload_received;
        }
}

/* Samples the seeder every [run] sample; ends the run at `duration`, or earlier once every peer is done and the
 * seeder holds no connection and no disk work. */
static void controller_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    sim_world *w = sg_actor_self_get_data();
    sim_seeder *s = &w->seeder;
    hk_time prev_at = 0;
    uint64_t prev_sent = 0;
    for (;;) {
        hk_time now = sim_now(w);
        if (now > prev_at) { /* the busiest sample period of the payload delivered (the summary's utilisation) */
            double rate = (double)(w->payload_received - prev_sent) / ((double)(now - prev_at) / 1e9);
            if (rate > w->uplink_peak)
                w->uplink_peak = rate;
            prev_at = now;
            prev_sent = w->payload_received;
        }
        hk_stats st;
        hk_seeder_stats(s->core, &st);
        if (st.memory_bytes > s->memory_max)
            s->memory_max = st.memory_bytes;
        if (st.waiting > w->waiting_max)
            w->waiting_max = st.waiting;
        if (st.queued_requests > w->queued_requests_max)
            w->queued_requests_max = st.queued_requests;
        if (w->csv_time) {
            pc_stats pcs;
            pc_get_stats(s->disk.pc, &pcs);
            fprintf(w->csv_time, "%.3f,%llu,%u,%u,%u,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu\n", (double)now / 1e9,
                    (unsigned long long)s->conns_open, st.peers, st.unchoked, st.waiting,
                    (unsigned long long)st.queued_requests, (unsigned long long)s->data_bytes_sent,
                    (unsigned long long)s->disk.bytes_read, (unsigned long long)s->disk.reads,
                    (unsigned long long)pcs.resident, (unsigned long long)st.memory_bytes,
                    (unsigned long long)st.requests_rejected, (unsigned long long)w->lives_running);
        }
        sample_rate_window(w, now);
        if (now >= w->sc->run.duration)
            break;
        if (w->lives_running == 0 && st.peers == 0 && s->conns_open == 0 && disk_idle(s))
            break;
        hk_time next = now + w->sc->run.sample;
        if (next > w->sc->run.duration)
            next = w->sc->run.duration;
        sg_actor_sleep_for((double)(next - now) / 1e9);
    }
    w->end_time = sim_now(w);
    return;
}

/* Every peer's access links, drawn from its profile's ranges by its own PRNG stream (the generated platform). */
static sim_peer_link *draw_links(const scenario *sc)
{
    sim_peer_link *links = calloc(sc->npeers ? sc->npeers : 1, sizeof *links);
    if (!links)
        return NULL;
    for (uint32_t pi = 0; pi < sc->nprofiles; pi++) {
        const sim_profile *p = &sc->profiles[pi];
        for (uint32_t k = 0; k < p->count; k++) {
            uint32_t id = p->first_peer + k;
            prng r;
            prng_seed(&r, sc->run.seed, 0x4000000ull + id);
            links[id].down = prng_uniform(&r, p->down.lo, p->down.hi);
            links[id].up = prng_uniform(&r, p->up.lo, p->up.hi);
            links[id].latency = prng_uniform(&r, p->latency.lo, p->latency.hi);
        }
    }
    return links;
}

static int write_platform(const scenario *sc, const sim_peer_link *links, bool full_routes, char *dir, size_t dirlen,
                          char *path, size_t pathlen)
{
    snprintf(dir, dirlen, "/tmp/hekate-sim-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, pathlen, "%s/platform.xml", dir);
    FILE *f = fopen(path, "w");
    int rc = f ? platform_write(f, sc, links, sc->npeers, full_routes) : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    return rc;
}

/* The scenario with the command line's changes (overrides, seed, dropped profile); 0, or 2 after a message. */
static int load_scenario(const options *o, scenario *sc)
{
    char err[1024];
    if (scenario_load_ex(o->scenario, o->sets, o->nsets, sc, err, sizeof err) < 0) {
        fprintf(stderr, "hekate-sim: %s\n", err);
        return 2;
    }
    if (o->seed_set)
        sc->run.seed = o->seed;
    if (o->drop && scenario_drop_profile(sc, o->drop) < 0) {
        fprintf(stderr, "hekate-sim: --drop-profile: no profile named \"%s\"\n", o->drop);
        return 2;
    }
    if (o->baseline_child)
        sc->expect.baseline_without[0] = '\0';
    return 0;
}

/* The median completion time of every profile in the baseline run (-1: none), or NULL after a message. */
static double *baseline_medians(const options *o, const scenario *sc)
{
    double *medians = malloc((sc->nprofiles + 1) * sizeof *medians);
    if (!medians)
        return NULL;
    for (uint32_t i = 0; i < sc->nprofiles; i++)
        medians[i] = -1;
    if (sc->expect.baseline_without[0]) {
        fflush(stdout);
        if (run_baseline(o, sc, medians) < 0) {
            fprintf(stderr, "hekate-sim: the baseline run failed\n");
            free(medians);
            return NULL;
        }
    }
    return medians;
}

/* An operator's platform (--platform) must hold the hosts the run uses: "seeder" with a disk, "p0" .. "pN-1". The
 * peers' links are then the platform's routes (bottleneck bandwidth and latency) to and from the seeder. Returns 0,
 * or 2 after a message. */
static int check_platform(const options *o, const scenario *sc, sim_peer_link *links)
{
    sg_host_t seeder = sg_host_by_name("seeder");
    unsigned ndisks = 0;
    sg_disk_t *disks = NULL;
    if (seeder)
        sg_host_get_disks(seeder, &ndisks, &disks);
    free(disks);
    if (!seeder || ndisks == 0) {
        fprintf(stderr, "hekate-sim: %s: no host \"seeder\" with a disk (see docs/scenarios.md, --platform)\n",
                o->platform);
        return 2;
    }
    for (uint32_t i = 0; i < sc->npeers; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%u", i);
        sg_host_t h = sg_host_by_name(name);
        if (!h) {
            fprintf(stderr, "hekate-sim: %s: no host \"%s\" (the scenario has %u peers: p0 .. p%u)\n", o->platform,
                    name, sc->npeers, sc->npeers - 1);
            return 2;
        }
        links[i].down = sg_host_get_route_bandwidth(seeder, h);
        links[i].up = sg_host_get_route_bandwidth(h, seeder);
        links[i].latency = sg_host_get_route_latency(h, seeder);
    }
    return 0;
}

/* The world, SimGrid's configuration and the platform (generated, or the operator's); 0, or 2 after a message. */
static int setup_simulation(sim_world *w, scenario *sc, const options *o, report_run *rr, char *kept, size_t keptlen)
{
    if (world_build(w, sc) < 0 || !(rr->links = draw_links(sc))) {
        fprintf(stderr, "hekate-sim: out of memory building the world\n");
        return 2;
    }
    /* SimGrid's tracer aborts on the generated Cluster zone: the same star as a Full zone (same run, same hash) */
    bool full = tracing(o) && !o->platform;
    if (full && sc->npeers > PLATFORM_FULL_MAX_PEERS) {
        fprintf(stderr, "hekate-sim: Paje tracing (--cfg=tracing...) needs the generated platform as a Full zone, "
                        "whose routing table grows as N^2: at most %u peers (this scenario has %u); use --events "
                        "and --metrics-csv, or --platform\n", PLATFORM_FULL_MAX_PEERS, sc->npeers);
        return 2;
    }
    char dir[64], plat[128];
    if (!o->platform && write_platform(sc, rr->links, full, dir, sizeof dir, plat, sizeof plat) < 0) {
        fprintf(stderr, "hekate-sim: cannot write the platform file\n");
        return 2;
    }
    /* hekate-sim's defaults, unless the command line sets them: CM02 (no latency correction factors) and no cross
     * traffic (ACKs and requests do not take bandwidth from the data flowing the other way: ~25 % faster) */
    if (!cfg_given(o, "network/model"))
        sg_cfg_set_string("network/model", "CM02");
    if (!cfg_given(o, "network/crosstraffic"))
        sg_cfg_set_boolean("network/crosstraffic", "no");
    /* 3 actors per connected peer: beyond ~30,000 actors the guard pages exhaust vm.max_map_count */
    if ((uint64_t)sc->npeers * 3 > 20000 && !cfg_given(o, "contexts/guard-size"))
        sg_cfg_set_int("contexts/guard-size", 0);
    simgrid_load_platform(o->platform ? o->platform : plat);
    if (o->platform)
        rr->platform = o->platform;
    else if (o->keep_platform) {
        snprintf(kept, keptlen, "%s", plat);
        rr->platform_kept = kept;
    } else {
        unlink(plat);
        rmdir(dir);
    }
    rr->crosstraffic = sg_cfg_get_boolean("network/crosstraffic") != 0;
    return o->platform ? check_platform(o, sc, (sim_peer_link *)rr->links) : 0;
}

/* The event log and the metrics CSV; 0, or 2 after a message on stderr. */
static int open_outputs(sim_world *w, const options *o)
{
    w->log = evlog_open(o->events);
    if (!w->log) {
        fprintf(stderr, "hekate-sim: cannot create the event log %s\n", o->events ? o->events : "");
        return 2;
    }
    if (o->metrics_csv) {
        w->csv_time = fopen(o->metrics_csv, "w");
        if (!w->csv_time) {
            fprintf(stderr, "hekate-sim: cannot create %s\n", o->metrics_csv);
            return 2;
        }
        fprintf(w->csv_time, "time_s,connections,core_peers,unchoked,waiting,queued_requests,data_bytes_sent,"
                             "disk_bytes_read,disk_reads,cache_pages,core_memory_bytes,requests_rejected,"
                             "peers_active\n");
    }
    return 0;
}

/* Starts the actors, runs the simulation to its end and closes the event log (its last line: the core's state). */
static void run(sim_world *w, hk_stats *end)
{
    seeder_init(w);
    leechers_start(w);
    sim_spawn("controller", w->seeder.host, controller_main, w);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    simgrid_run();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    w->wall_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    w->rss_kib = ru.ru_maxrss;

    hk_seeder_stats(w->seeder.core, end);
    evlog_line(w->log, w->end_time, "end peers=%u unchoked=%u waiting=%u queued=%llu", end->peers, end->unchoked,
               end->waiting, (unsigned long long)end->queued_requests);
    w->log_lines = evlog_count(w->log);
    if (evlog_close(w->log, w->hash) < 0)
        fprintf(stderr, "hekate-sim: writing the event log failed\n");
    w->log = NULL;
    if (w->csv_time)
        fclose(w->csv_time);
}

/* The summary, the peers CSV, the JSON and the verdicts on stdout; the exit status (1: some expectation failed). */
static int report(const options *o, const report_run *rr, const sim_world *w, const hk_stats *end,
                  const double *medians)
{
    report_summary(w, rr, stdout, end);
    int rc = 0;
    if (o->peers_csv && report_peers_csv(w, rr, o->peers_csv) < 0) {
        fprintf(stderr, "hekate-sim: cannot write %s\n", o->peers_csv);
        rc = 2;
    }
    if (o->json && report_json(w, rr, o->json, end, medians) < 0) {
        fprintf(stderr, "hekate-sim: cannot write %s\n", o->json);
        rc = 2;
    }
    int failures = report_expectations(w, stdout, end, medians);
    printf("hash %s\n", w->hash);
    printf("result %s (%d expectation%s failed)\n", failures ? "FAIL" : "ok", failures, failures == 1 ? "" : "s");
    fflush(stdout);
    return rc ? rc : failures ? 1 : 0;
}

/* The network model in force (SimGrid's, after the command line and hekate-sim's default). */
static const char *network_model(const options *o)
{
    for (size_t i = o->ncfgs; i-- > 0;)
        if (strncmp(o->cfgs[i], "network/model:", 14) == 0)
            return o->cfgs[i] + 14;
    return "CM02";
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--trackers") == 0) /* trackers: the announcer at scale (sim_tracker.h) */
        return sim_tracker_main(argc - 1, argv + 1);
    if (argc >= 2 && argv[1][0] != '-' && sim_dht_is_scenario(argv[1])) /* a [dht] scenario (sim_dht.h) */
        return sim_dht_main(argc, argv);
    static options o;
    parse_args(argc, argv, &o);
    int rc = check_cfgs(&o);
    if (rc)
        return rc;
    xbt_log_control_set("root.thres:critical");
    simgrid_init(&o.sg_argc, o.sg_argv);
    if (o.sg_argc > 1) /* SimGrid left an option it did not take */
        bad_usage("not a SimGrid option", o.sg_argv[1]);

    scenario sc;
    if ((rc = load_scenario(&o, &sc)) != 0)
        return rc;
    double *medians = baseline_medians(&o, &sc);
    if (!medians)
        return 2;
    static sim_world world;
    static char kept[160];
    report_run rr = {.sets = o.sets, .nsets = o.nsets, .network_model = network_model(&o)};
    world.fault_extent_offset = o.fault != NULL;
    if ((rc = setup_simulation(&world, &sc, &o, &rr, kept, sizeof kept)) != 0 || (rc = open_outputs(&world, &o)) != 0)
        return rc;
    if (rr.platform_kept)
        fprintf(stderr, "hekate-sim: platform kept in %s\n", rr.platform_kept);
    hk_stats end;
    run(&world, &end);
    if (o.baseline_child)
        report_baseline_lines(&world, stdout);
    else
        rc = report(&o, &rr, &world, &end, medians);
    free(medians);
    free((void *)rr.links);
    /* SimGrid tears down its actors at exit; the core and the world end with the process. */
    return rc;
}
