/* sim_dht_main: `hekate-sim DHT-SCENARIO.ini [--seed N] [--curve FILE]` for a scenario with a [dht] section:
 * loads it (sections [dht], [hekate], [expect]; docs/scenarios.md), runs it (sim_dht.c), prints the figures (the
 * fraction findable over time, queries per announce, the max per-second query rate, memory, wall time) and the
 * run's sha256, checks the expectations ("EXPECT ok|FAIL NAME: ...") and exits 1 when one fails, 2 on a bad file. */
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "sim_dht.h"

typedef struct dscenario {
    sim_dht_cfg cfg;
    double findable_min;         /* [expect] findable: fraction at findable_at and every probe after (<0: unchecked) */
    double findable_end_min;     /* [expect] findable_end: fraction at the end (after churn) (<0: unchecked) */
    double rate_max;             /* [expect] query_rate_max: max queries hekate sends in a second (<0: unchecked) */
    char err[256];
} dscenario;

static int num(const char *v, double lo, double hi, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi))
        return -1;
    *out = x;
    return 0;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
    dscenario *t = user;
    sim_dht_cfg *c = &t->cfg;
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
    if (strcmp(section, "dht") == 0) {
        NUM("seed", 0, 9007199254740992.0, c->seed = (uint64_t)x)
        NUM("nodes", 8, 4000000, c->nodes = (uint32_t)x)
        NUM("duration", 1, 30 * 86400, c->duration = x)
        NUM("latency", 0, 10, c->latency = x)
        NUM("jitter", 0, 10, c->jitter = x)
        NUM("loss", 0, 0.9, c->loss = x)
        NUM("churn", 0, 1, c->churn = x)
        NUM("churn_start", 0, 30 * 86400, c->churn_start = x)
        NUM("churn_length", 0, 30 * 86400, c->churn_length = x)
        NUM("store_ttl", 1, 86400, c->store_ttl = x)
        NUM("token_rotate", 1, 86400, c->token_rotate = x)
        NUM("probe_every", 0, 86400, c->probe_every = x)
    } else if (strcmp(section, "hekate") == 0) {
        NUM("torrents", 0, 10000000, c->torrents = (uint32_t)x)
        NUM("announce_period", 1, 86400, c->announce_period = x)
        NUM("query_rate", 1, 1000000, c->query_rate = (uint32_t)x)
        NUM("query_burst", 1, 1000000, c->query_burst = (uint32_t)x)
        NUM("bootstrap", 1, 64, c->bootstrap = (uint32_t)x)
        NUM("max_lookups", 1, 256, c->max_lookups = (uint32_t)x)
        if (strcmp(key, "reannounce") == 0 && (!strcmp(value, "yes") || !strcmp(value, "no"))) {
            c->reannounce = strcmp(value, "yes") == 0;
            return 1;
        }
    } else if (strcmp(section, "expect") == 0) {
        NUM("findable_at", 0, 30 * 86400, c->findable_at = x)
        NUM("findable", 0, 1, t->findable_min = x)
        NUM("findable_end", 0, 1, t->findable_end_min = x)
        NUM("query_rate_max", 0, 1000000, t->rate_max = x)
    }
#undef NUM
    snprintf(t->err, sizeof t->err, "unknown key or bad value [%s] %s = %s", section, key, value);
    return 0;
}

/* 0, or 2 after a message on stderr. */
static int load(const char *path, dscenario *t)
{
    memset(t, 0, sizeof *t);
    sim_dht_cfg_default(&t->cfg);
    t->findable_min = t->findable_end_min = t->rate_max = -1;
    int rc = ini_parse(path, on_key, t);
    if (rc != 0) {
        fprintf(stderr, "hekate-sim: %s: %s", path, t->err[0] ? t->err : rc < 0 ? "cannot read the file" : "syntax");
        fprintf(stderr, rc > 0 ? " (line %d)\n" : "\n", rc);
        return 2;
    }
    if (t->cfg.findable_at <= 0)
        t->cfg.findable_at = t->cfg.announce_period;
    return 0;
}

static void print_figures(const char *path, const sim_dht_cfg *c, const sim_dht_result *r, double wall)
{
    printf("dht scenario %s: %u nodes, %u torrents, announce period %.0f s, query cap %u/s (burst %u), latency "
           "%.3f+%.3f s, loss %.3f, churn %.2f in [%.0f, %.0f) s, node store ttl %.0f s, seed %llu\n", path,
           c->nodes, c->torrents, c->announce_period, c->query_rate, c->query_burst, c->latency, c->jitter, c->loss,
           c->churn, c->churn_start, c->churn_start + c->churn_length, c->store_ttl, (unsigned long long)c->seed);
    printf("fraction findable over time (a get_peers lookup from a random live node returns hekate):\n");
    for (uint32_t k = 0; k < r->nprobes; k++)
        printf("  t=%7.0f s  findable %6u / %u = %.4f  live nodes %u  hekate queries so far %llu\n", r->probes[k].t,
               r->probes[k].findable, c->torrents, c->torrents ? (double)r->probes[k].findable / c->torrents : 1,
               r->probes[k].alive, (unsigned long long)r->probes[k].hekate_queries);
    double per = r->lookups_done ? (double)r->queries_sent / (double)r->lookups_done : 0;
    printf("hekate: %llu queries sent (%llu by lookups, %llu announce_peer, %llu ok), %llu lookups done, %llu "
           "announced, %.1f queries per announce, %llu timeouts, %llu rounds (last period %.0f s), %u good nodes\n",
           (unsigned long long)r->queries_sent, (unsigned long long)r->lookup_queries,
           (unsigned long long)r->announce_peer_sent, (unsigned long long)r->announce_peer_ok,
           (unsigned long long)r->lookups_done, (unsigned long long)r->announces_done, per,
           (unsigned long long)r->timeouts, (unsigned long long)r->rounds, r->last_period, r->good4);
    printf("max query rate: %u queries in second %.0f (cap %u/s)\n", r->max_rate, r->max_rate_at, c->query_rate);
    printf("hekate's DHT memory %llu bytes (%llu per-torrent, %.1f bytes per torrent)\n",
           (unsigned long long)r->dht_memory, (unsigned long long)r->torrent_bytes,
           c->torrents ? (double)r->torrent_bytes / c->torrents : 0);
    printf("network: %llu datagrams, %llu lost, %llu to departed nodes; nodes: %llu replies, %llu peers stored, %llu "
           "bad tokens; churn: %u left, %u joined\n", (unsigned long long)r->datagrams, (unsigned long long)r->lost,
           (unsigned long long)r->to_departed, (unsigned long long)r->node_replies,
           (unsigned long long)r->node_stored, (unsigned long long)r->node_bad_token, r->departed, r->joined);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("simulation: %llu events in %.2f s wall, peak RSS %ld MiB\n", (unsigned long long)r->events, wall,
           ru.ru_maxrss / 1024);
    printf("event hash: sha256 ");
    for (int k = 0; k < 32; k++)
        printf("%02x", r->sha256[k]);
    printf("\n");
}

static bool expect(bool ok, const char *name, const char *detail)
{
    printf("EXPECT %s %s: %s\n", ok ? "ok  " : "FAIL", name, detail);
    return ok;
}

/* 1 if an expectation failed, else 0. */
static int check(const dscenario *t, const sim_dht_result *r)
{
    const sim_dht_cfg *c = &t->cfg;
    char d[200];
    bool ok = true;
    if (t->findable_min >= 0) {
        double worst = 2;
        double at = 0;
        for (uint32_t k = 0; k < r->nprobes; k++) {
            double f = c->torrents ? (double)r->probes[k].findable / c->torrents : 1;
            if (r->probes[k].t >= c->findable_at - 1e-9 && f < worst) {
                worst = f;
                at = r->probes[k].t;
            }
        }
        snprintf(d, sizeof d, "lowest fraction findable from t = %.0f s on: %.4f at t = %.0f s (min %.4f)",
                 c->findable_at, worst, at, t->findable_min);
        ok &= expect(worst >= t->findable_min && worst <= 1, "findable", d);
    }
    if (t->findable_end_min >= 0 && r->nprobes) {
        double f = c->torrents ? (double)r->probes[r->nprobes - 1].findable / c->torrents : 1;
        snprintf(d, sizeof d, "fraction findable at the end (%u of the nodes left, %u joined): %.4f (min %.4f)",
                 r->departed, r->joined, f, t->findable_end_min);
        ok &= expect(f >= t->findable_end_min, "findable_end", d);
    }
    if (t->rate_max >= 0) {
        snprintf(d, sizeof d, "max %u queries in one second (at %.0f s), max %.0f", r->max_rate, r->max_rate_at,
                 t->rate_max);
        ok &= expect(r->max_rate <= t->rate_max, "query_rate_max", d);
    }
    return ok ? 0 : 1;
}

static void write_curve(const char *path, const sim_dht_result *r)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "hekate-sim: cannot write %s\n", path);
        return;
    }
    fprintf(f, "second,queries\n");
    for (uint32_t k = 0; k < r->seconds; k++)
        fprintf(f, "%u,%u\n", k, r->per_second[k]);
    fclose(f);
}

bool sim_dht_is_scenario(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strncmp(line, "[dht]", 5) == 0;
    fclose(f);
    return found;
}

int sim_dht_main(int argc, char **argv)
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
        else {
            fprintf(stderr, "usage: hekate-sim DHT-SCENARIO.ini [--seed N] [--curve FILE.csv]\n");
            return 2;
        }
    }
    dscenario t;
    if (!path || load(path, &t) != 0)
        return 2;
    if (seed >= 0)
        t.cfg.seed = (uint64_t)seed;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sim_dht_result r;
    char err[256];
    if (sim_dht_run(&t.cfg, &r, err, sizeof err) != 0) {
        fprintf(stderr, "hekate-sim: %s\n", err);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    print_figures(path, &t.cfg, &r, wall);
    if (curve)
        write_curve(curve, &r);
    int rc = check(&t, &r);
    sim_dht_result_free(&r);
    return rc;
}
