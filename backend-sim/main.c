/* hekate-sim: runs one scenario — the real seeding engine (core/) under SimGrid with simulated peers — and prints
 * its summary, writes its event log (and SHA-256), metrics CSVs, and exits 1 when an expectation fails.
 *
 * Usage: hekate-sim SCENARIO.ini [--events FILE] [--metrics-csv FILE] [--peers-csv FILE] [--seed N]
 *                   [--drop-profile NAME] [--baseline-child] [--fault extent-offset]
 *                   [--cfg=simgrid/option:value ...]
 * --fault extent-offset is a test hook: the backend then sends every data extent one byte off, which the output
 * monitor must catch (it shows that the seeder_errors_max expectation can fail).
 * Exit: 0 all expectations hold, 1 some failed (each named on stdout), 2 usage, scenario or setup error. */
#include <simgrid/engine.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <xbt/config.h>
#include <xbt/log.h>

#include "platform.h"
#include "report.h"
#include "sim_tracker.h"
#include "world.h"

typedef struct options {
    const char *scenario, *events, *metrics_csv, *peers_csv, *drop, *fault;
    bool seed_set, baseline_child;
    uint64_t seed;
} options;

static void usage(void)
{
    fprintf(stderr, "usage: hekate-sim SCENARIO.ini [--events FILE] [--metrics-csv FILE] [--peers-csv FILE] "
                    "[--seed N] [--drop-profile NAME] [--baseline-child] [--fault extent-offset] [--cfg=...]\n");
    exit(2);
}

static void parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--events") == 0 && next)
            o->events = argv[++i];
        else if (strcmp(a, "--metrics-csv") == 0 && next)
            o->metrics_csv = argv[++i];
        else if (strcmp(a, "--peers-csv") == 0 && next)
            o->peers_csv = argv[++i];
        else if (strcmp(a, "--drop-profile") == 0 && next)
            o->drop = argv[++i];
        else if (strcmp(a, "--fault") == 0 && next && strcmp(next, "extent-offset") == 0)
            o->fault = argv[++i];
        else if (strcmp(a, "--seed") == 0 && next) {
            if (units_u64(argv[++i], &o->seed) < 0)
                usage();
            o->seed_set = true;
        } else if (strcmp(a, "--baseline-child") == 0)
            o->baseline_child = true;
        else if (a[0] != '-' && !o->scenario)
            o->scenario = a;
        else
            usage();
    }
    if (!o->scenario)
        usage();
}

/* The same scenario without one profile, in a child process (SimGrid runs once per process). */
static int run_baseline(const options *o, const scenario *sc, double *medians)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    if (strchr(exe, '\'') || strchr(o->scenario, '\''))
        return -1;
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "'%s' '%s' --baseline-child --drop-profile '%s' --seed %llu", exe, o->scenario,
             sc->expect.baseline_without, (unsigned long long)sc->run.seed);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[512];
    while (fgets(line, sizeof line, p)) {
        char name[64];
        double v;
        if (sscanf(line, "baseline-median %63s %lf", name, &v) == 2)
            for (uint32_t i = 0; i < sc->nprofiles; i++)
                if (strcmp(sc->profiles[i].name, name) == 0)
                    medians[i] = v;
    }
    int st = pclose(p);
    return st == -1 ? -1 : 0;
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
    for (;;) {
        hk_time now = sim_now(w);
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

static int write_platform(const scenario *sc, char *dir, size_t dirlen, char *path, size_t pathlen)
{
    snprintf(dir, dirlen, "/tmp/hekate-sim-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, pathlen, "%s/platform.xml", dir);
    sim_peer_link *links = calloc(sc->npeers ? sc->npeers : 1, sizeof *links);
    if (!links)
        return -1;
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
    FILE *f = fopen(path, "w");
    int rc = f ? platform_write(f, sc, links, sc->npeers) : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    free(links);
    return rc;
}

/* The scenario with the command line's changes (seed, dropped profile); 0, or 2 after a message on stderr. */
static int load_scenario(const options *o, scenario *sc)
{
    char err[1024];
    if (scenario_load(o->scenario, sc, err, sizeof err) < 0) {
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

/* The world, SimGrid's configuration and the platform; 0, or 2 after a message on stderr. */
static int setup_simulation(sim_world *w, scenario *sc)
{
    if (world_build(w, sc) < 0) {
        fprintf(stderr, "hekate-sim: out of memory building the world\n");
        return 2;
    }
    char dir[64], plat[128];
    if (write_platform(sc, dir, sizeof dir, plat, sizeof plat) < 0) {
        fprintf(stderr, "hekate-sim: cannot write the platform file\n");
        return 2;
    }
    sg_cfg_set_string("network/model", "CM02");
    /* ACKs and requests do not take bandwidth from the data flowing the other way: ~25 % faster, same behaviour */
    sg_cfg_set_boolean("network/crosstraffic", "no");
    /* 3 actors per connected peer: beyond ~30,000 actors the guard pages exhaust vm.max_map_count */
    if ((uint64_t)sc->npeers * 3 > 20000)
        sg_cfg_set_int("contexts/guard-size", 0);
    simgrid_load_platform(plat);
    unlink(plat);
    rmdir(dir);
    return 0;
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

/* The summary, the peers CSV and the verdicts on stdout; the exit status (1: some expectation failed). */
static int report(const options *o, const sim_world *w, const hk_stats *end, const double *medians)
{
    report_summary(w, stdout, end);
    if (o->peers_csv && report_peers_csv(w, o->peers_csv) < 0)
        fprintf(stderr, "hekate-sim: cannot write %s\n", o->peers_csv);
    int failures = report_expectations(w, stdout, end, medians);
    printf("hash %s\n", w->hash);
    printf("result %s (%d expectation%s failed)\n", failures ? "FAIL" : "ok", failures, failures == 1 ? "" : "s");
    fflush(stdout);
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--trackers") == 0) /* trackers: the announcer at scale (sim_tracker.h) */
        return sim_tracker_main(argc - 1, argv + 1);
    xbt_log_control_set("root.thres:critical");
    simgrid_init(&argc, argv);
    options o;
    parse_args(argc, argv, &o);

    scenario sc;
    int rc = load_scenario(&o, &sc);
    if (rc)
        return rc;
    double *medians = baseline_medians(&o, &sc);
    if (!medians)
        return 2;
    static sim_world world;
    world.fault_extent_offset = o.fault != NULL;
    if ((rc = setup_simulation(&world, &sc)) != 0 || (rc = open_outputs(&world, &o)) != 0)
        return rc;
    hk_stats end;
    run(&world, &end);
    if (o.baseline_child)
        report_baseline_lines(&world, stdout);
    else
        rc = report(&o, &world, &end, medians);
    free(medians);
    /* SimGrid tears down its actors at exit; the core and the world end with the process. */
    return rc;
}
