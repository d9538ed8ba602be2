/* hekate-swarm: plays a hekate-sim scenario file for real — its peer profiles as TCP leechers on 127.0.0.0/8 against
 * a running seeder — and prints hekate-sim's results format and [expect] verdicts. See docs/hekate-swarm.md.
 *
 * Usage: hekate-swarm SCENARIO.ini --make-torrents DIR
 *        hekate-swarm SCENARIO.ini --hekate-args
 *        hekate-swarm SCENARIO.ini --target HOST:PORT --torrents DIR [--peers-csv FILE] [--chokes-csv FILE]
 *                     [--seed N] [--drop-profile NAME] [--no-verify] [--no-window] [--metrics HOST:PORT]
 *                     [--series-csv FILE]
 * Exit: 0 every measurable expectation holds, 1 some failed, 2 usage, scenario or setup error. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"
#include "metrics_get.h"
#include "swarm_report.h"
#include "torrents.h"

typedef struct options {
    const char *scenario, *target, *torrents, *make, *peers_csv, *chokes_csv, *drop, *metrics, *series;
    bool hekate_args, no_verify, seed_set, no_window;
    uint64_t seed;
} options;

static void usage(int rc)
{
    fprintf(rc ? stderr : stdout,
            "usage: hekate-swarm SCENARIO.ini --make-torrents DIR\n"
            "       hekate-swarm SCENARIO.ini --hekate-args\n"
            "       hekate-swarm SCENARIO.ini --target HOST:PORT --torrents DIR [--peers-csv FILE]\n"
            "                    [--chokes-csv FILE] [--seed N] [--drop-profile NAME] [--no-verify]\n"
            "                    [--no-window] [--metrics HOST:PORT] [--series-csv FILE]\n"
            "  --make-torrents DIR  write the scenario's torrents and their data into DIR (then serve DIR)\n"
            "  --hekate-args        print the hekate options that match the scenario's [seeder] section\n"
            "  --target HOST:PORT   the seeder (an IPv4 address)\n"
            "  --torrents DIR       where --make-torrents wrote them\n"
            "  --peers-csv FILE     one row per peer (hekate-sim's columns)\n"
            "  --chokes-csv FILE    every choke and unchoke each peer saw: peer,time_s,event\n"
            "  --series-csv FILE    every [run] sample: time_s,payload_bytes,connected,unchoked,peers_active\n"
            "  --seed N             overrides [run] seed\n"
            "  --drop-profile NAME  runs without that profile (or comma-separated profiles)\n"
            "  --no-verify          do not hash received blocks (pure load)\n"
            "  --no-window          do not emulate [seeder] window (at most window bytes per connection per RTT)\n"
            "  --metrics HOST:PORT  the seeder's /metrics: [expect] unchoked_max then uses its own count\n");
    exit(rc);
}

static void parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = strcmp(a, "--target") == 0          ? &o->target
                            : strcmp(a, "--torrents") == 0      ? &o->torrents
                            : strcmp(a, "--make-torrents") == 0 ? &o->make
                            : strcmp(a, "--peers-csv") == 0     ? &o->peers_csv
                            : strcmp(a, "--chokes-csv") == 0    ? &o->chokes_csv
                            : strcmp(a, "--drop-profile") == 0  ? &o->drop
                            : strcmp(a, "--metrics") == 0       ? &o->metrics
                            : strcmp(a, "--series-csv") == 0    ? &o->series
                                                                : NULL;
        if (slot && next)
            *slot = argv[++i];
        else if (strcmp(a, "--seed") == 0 && next) {
            if (units_u64(argv[++i], &o->seed) < 0)
                usage(2);
            o->seed_set = true;
        } else if (strcmp(a, "--hekate-args") == 0)
            o->hekate_args = true;
        else if (strcmp(a, "--no-verify") == 0)
            o->no_verify = true;
        else if (strcmp(a, "--no-window") == 0)
            o->no_window = true;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            usage(0);
        else if (a[0] != '-' && !o->scenario)
            o->scenario = a;
        else
            usage(2);
    }
    if (!o->scenario || (!o->make && !o->hekate_args && (!o->target || !o->torrents)))
        usage(2);
}

static double secs(hk_time t)
{
    return (double)t / 1e9;
}

/* The hekate command-line options for the scenario's [seeder] section (what the simulated seeder runs with). */
static void print_hekate_args(const scenario *sc)
{
    static const char *const enc[] = {"allow", "prefer-plain", "require", "off"};
    const hk_config *c = &sc->seeder.core;
    printf("--max-unchoked=%u --max-peers=%u --credit=%" PRIu64 " --slice=%.9g --handshake-timeout=%.9g "
           "--idle-timeout=%.9g --keepalive-interval=%.9g --unchoked-idle-timeout=%.9g --send-stall-timeout=%.9g "
           "--unchoked-grace=%.9g --unchoked-stall=%.9g --max-wait=%.9g --reqq=%u --max-block=%u "
           "--max-peers-per-address=%u --max-peers-per-prefix=%u --encryption=%s",
           c->max_unchoked, c->max_peers, c->credit, secs(c->slice), secs(c->handshake_timeout),
           secs(c->idle_timeout), secs(c->keepalive_interval), secs(c->unchoked_idle_timeout),
           secs(c->send_stall_timeout), secs(c->unchoked_grace), secs(c->unchoked_stall), secs(c->max_wait),
           c->reqq, c->max_block, c->max_peers_per_address, c->max_peers_per_prefix,
           (unsigned)c->encryption < 4 ? enc[c->encryption] : "allow");
    if (c->upload_rate)
        printf(" --upload-rate=%" PRIu64, c->upload_rate);
    if (c->torrent_upload_rate)
        printf(" --torrent-upload-rate=%" PRIu64, c->torrent_upload_rate);
    if (c->upload_burst)
        printf(" --upload-burst=%" PRIu64, c->upload_burst);
    printf("\n");
}

static int parse_target(const char *s, struct sockaddr_in *a)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    return *end || port <= 0 || port > 65535 || inet_pton(AF_INET, host, &a->sin_addr) != 1 ? -1 : 0;
}

static int load(const options *o, scenario *sc)
{
    char err[1024];
    if (scenario_load(o->scenario, sc, err, sizeof err) < 0) {
        fprintf(stderr, "hekate-swarm: %s\n", err);
        return 2;
    }
    if (o->seed_set)
        sc->run.seed = o->seed;
    if (o->drop && scenario_drop_profile(sc, o->drop) < 0) {
        fprintf(stderr, "hekate-swarm: --drop-profile: no profile named \"%s\"\n", o->drop);
        return 2;
    }
    return 0;
}

/* A run against the seeder: the fleet, then its results; the exit status. */
static int run(const options *o, scenario *sc)
{
    signal(SIGPIPE, SIG_IGN);
    static swarm sw;
    sw.sc = sc;
    sw.npeers = sc->npeers;
    sw.window = o->no_window ? 0 : sc->seeder.window;
    struct sockaddr_in maddr;
    if (parse_target(o->target, &sw.target) < 0 || (o->metrics && parse_target(o->metrics, &maddr) < 0)) {
        fprintf(stderr, "hekate-swarm: --target / --metrics: expected IPV4:PORT\n");
        return 2;
    }
    if (swarm_torrents_load(sc, o->torrents, !o->no_verify, &sw.torrents) < 0)
        return 2;
    if (o->series) {
        sw.series = fopen(o->series, "w");
        if (!sw.series) {
            fprintf(stderr, "hekate-swarm: cannot create %s\n", o->series);
            return 2;
        }
        fprintf(sw.series, "time_s,payload_bytes,connected,unchoked,peers_active\n");
    }
    int rc = 2;
    if (fleet_run(&sw) == 0) {
        double v;
        sw.seeder_unchoked_max =
            o->metrics && metrics_get(&maddr, "hekate_peers_unchoked_max", &v) == 0 ? (int64_t)v : -1;
        if (o->metrics && sw.seeder_unchoked_max < 0)
            fprintf(stderr, "hekate-swarm: --metrics %s: no hekate_peers_unchoked_max\n", o->metrics);
        swarm_summary(&sw, stdout);
        if (o->peers_csv && swarm_peers_csv(&sw, o->peers_csv) < 0)
            fprintf(stderr, "hekate-swarm: cannot write %s\n", o->peers_csv);
        if (o->chokes_csv && swarm_chokes_csv(&sw, o->chokes_csv) < 0)
            fprintf(stderr, "hekate-swarm: cannot write %s\n", o->chokes_csv);
        int failures = swarm_expectations(&sw, stdout);
        printf("result %s (%d expectation%s failed)\n", failures ? "FAIL" : "ok", failures, failures == 1 ? "" : "s");
        rc = failures ? 1 : 0;
    }
    if (sw.series && fclose(sw.series) != 0)
        fprintf(stderr, "hekate-swarm: writing %s failed\n", o->series);
    fleet_free(&sw);
    swarm_torrents_free(sw.torrents, sc->torrent.count);
    return rc;
}

int main(int argc, char **argv)
{
    options o;
    parse_args(argc, argv, &o);
    scenario sc;
    int rc = load(&o, &sc);
    if (rc)
        return rc;
    if (o.hekate_args || o.make) {
        if (o.hekate_args)
            print_hekate_args(&sc);
        else
            rc = swarm_torrents_make(&sc, o.make) < 0 ? 2 : 0;
        scenario_free(&sc);
        return rc;
    }
    rc = run(&o, &sc);
    scenario_free(&sc);
    return rc;
}
