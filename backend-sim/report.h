/* report: what a finished run shows — per-profile results (completions and their time percentiles, bytes, Jain's
 * fairness index of download rates, seeder-side closes), the choker, disk and timeout figures, the human summary on
 * stdout, the per-peer CSV, and the verdict on every expectation of the scenario (each failure is named). */
#ifndef HEKATE_SIM_REPORT_H
#define HEKATE_SIM_REPORT_H

#include <stdio.h>

#include "world.h"

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
void report_summary(const sim_world *w, FILE *out, const hk_stats *end_stats);
int report_peers_csv(const sim_world *w, const char *path);
/* Checks every expectation; prints "EXPECT ok|FAIL name: detail" lines; returns the number of failures. */
int report_expectations(const sim_world *w, FILE *out, const hk_stats *end_stats, const double *baseline_medians);

#endif
