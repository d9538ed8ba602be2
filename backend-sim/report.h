/* report: what a finished run shows — per-profile results (completions and their time percentiles, bytes, Jain's
 * fairness index of download rates, seeder-side closes), the choker, disk and timeout figures, the human summary on
 * stdout, the per-peer CSV, and the verdict on every expectation of the scenario (each failure is named). */
#ifndef HEKATE_SIM_REPORT_H
#define HEKATE_SIM_REPORT_H

#include <stdio.h>

#include "platform.h"
#include "world.h"

/* How the run was set up, beyond the scenario (the command line's choices), for the summary and the JSON results. */
typedef struct report_run {
    const char *const *sets;     /* --set overrides, in order */
    size_t nsets;
    const char *network_model;   /* SimGrid's network/model in force */
    bool crosstraffic;           /* SimGrid's network/crosstraffic in force */
    const char *platform;        /* the operator's platform file (--platform), or NULL: generated */
    const char *platform_kept;   /* where the generated platform was kept (--keep-platform), or NULL */
    const sim_peer_link *links;  /* per peer: the access links drawn (generated) or the routes (--platform) */
} report_run;

typedef struct profile_result {
    uint32_t peers, completed, closed_by_seeder_peers, refused_peers;
    double p50, p95, max;        /* completion time after arrival, s (-1: none) */
    uint64_t bytes;
    double jain;                 /* -1: fewer than 2 peers with a rate */
    double baseline_median;      /* s, from the baseline run; -1 unknown */
} profile_result;

void report_profile(const sim_world *w, uint32_t pi, profile_result *out);
/* Prints "baseline-median NAME SECONDS" for every profile (the baseline child's answer). */
void report_baseline_lines(const sim_world *w, FILE *out);
/* The human summary: the parameters that differ from the defaults (and the overrides), the results. */
void report_summary(const sim_world *w, const report_run *run, FILE *out, const hk_stats *end_stats);
/* The per-peer CSV (columns in docs/scenarios.md); 0, or -1 if it cannot be written. */
int report_peers_csv(const sim_world *w, const report_run *run, const char *path);
/* The JSON results: the effective scenario, the run's setup, the figures of the summary, every expectation's
 * verdict and the hash (format in docs/scenarios.md); 0, or -1 if it cannot be written. */
int report_json(const sim_world *w, const report_run *run, const char *path, const hk_stats *end_stats,
                const double *baseline_medians);
/* Checks every expectation; prints "EXPECT ok|FAIL name: detail" lines; returns the number of failures. */
int report_expectations(const sim_world *w, FILE *out, const hk_stats *end_stats, const double *baseline_medians);

/* Internal to report.c and report_json.c. */
typedef struct report_uplink_figures {
    double capacity;             /* [seeder] uplink, B/s */
    double mean_run;             /* payload the peers received (piece data) / simulated time */
    double mean_busy;            /* the same over busy_s: first connect of any peer .. last peer's end */
    double busy_s;
    double peak;                 /* the same over the busiest [run] sample period */
} report_uplink_figures;
void report_uplink(const sim_world *w, report_uplink_figures *u);
/* The swarm (leechers that trade, trade.h; computed with trading on or off): what the seeder sent per copy the
 * peers completed, when the leechers together first held every block of torrent 0, completion times over every
 * peer, and what the leechers exchanged among themselves. */
typedef struct report_swarm_figures {
    bool trade;                  /* [peers] trade */
    uint64_t seeder_bytes;       /* piece payload the seeder sent */
    uint32_t completed, peers;
    double per_copy;             /* seeder_bytes / (completed x [torrent] size); INFINITY: none completed */
    double copy_s;               /* the union's first full copy (torrent 0), s; -1: never */
    double first_complete_s;     /* the first peer's completion, s; -1: none */
    double p50, p90;             /* completion time after arrival over every peer, s; -1: none */
    uint64_t traded;             /* payload the peers received from each other */
} report_swarm_figures;
void report_swarm(const sim_world *w, report_swarm_figures *f);
/* The name of a peer's end (lee_end): none, complete, refused, closed_by_seeder, departed, vanished, time. */
const char *report_end_name(int end);
/* The verdicts as EXPECT lines, or (json) as comma-separated JSON objects; the number of failures. */
int report_expectations_as(const sim_world *w, FILE *out, bool json, const hk_stats *st,
                           const double *baseline_medians);
/* s as a JSON string (quoted, escaped). */
void report_json_string(FILE *out, const char *s);

#endif
