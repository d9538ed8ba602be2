/* swarm_report: what a hekate-swarm run shows, in hekate-sim's results format (backend-sim/report.h): the summary
 * (per-profile completions and their time percentiles, bytes, Jain's index of download rates, seeder-side closes,
 * refusals; the choker as the fleet saw it on the wire), the per-peer CSV with hekate-sim's columns, the choke and
 * unchoke history, and the verdict on every [expect] the fleet can measure ("EXPECT n/a" for those only the
 * simulator's instrumented seeder can: disk, memory, output framing, leaks, timeouts' exact moments). */
#ifndef HEKATE_SWARM_REPORT_H
#define HEKATE_SWARM_REPORT_H

#include <stdio.h>

#include "fleet.h"

void swarm_summary(const swarm *sw, FILE *out);
/* 0, or -1 if the file cannot be written. */
int swarm_peers_csv(const swarm *sw, const char *path);
/* One row per choke state change: peer,time_s,event (unchoke, choke, or blind: the peer stopped reading while
 * unchoked, see fleet.c). 0 or -1. */
int swarm_chokes_csv(const swarm *sw, const char *path);
/* Prints "EXPECT ok|FAIL|n/a name: detail" lines; returns the number of failures. */
int swarm_expectations(const swarm *sw, FILE *out);

#endif
