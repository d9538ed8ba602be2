/* platform: writes the SimGrid platform of a scenario as XML (C cannot create hosts). A star: one seeder host with
 * its disk and its access link (uplink/downlink, latency), one host per peer with its own down and up links; routes
 * go peer link -> seeder link (Cluster zone, no backbone). Names: host "seeder", disk "disk", links "s_up",
 * "s_down"; peer i: host "p<i>", links "p<i>_up", "p<i>_down". With full_routes the same links and routes are
 * written as a Full zone with explicit routes (seeder -> p<i>: s_up, p<i>_down; p<i> -> seeder: p<i>_up, s_down),
 * which SimGrid's Paje tracer can trace (it aborts on the Cluster zone) and which simulates the same run (the same
 * hash); its routing table holds (N+1)^2 entries, hence PLATFORM_FULL_MAX_PEERS. */
#ifndef HEKATE_SIM_PLATFORM_H
#define HEKATE_SIM_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "scenario.h"

typedef struct sim_peer_link {
    double down, up;   /* B/s */
    double latency;    /* s, one-way, on each of the peer's two links */
} sim_peer_link;

#define PLATFORM_FULL_MAX_PEERS 3000

/* Returns 0, or -1 if writing failed. */
int platform_write(FILE *out, const scenario *sc, const sim_peer_link *peers, uint32_t npeers, bool full_routes);

#endif
