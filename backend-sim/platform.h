/* platform: writes the SimGrid platform of a scenario as XML (C cannot create hosts). A star: one seeder host with
 * its disk and its access link (uplink/downlink, latency), one host per peer with its own down and up links; routes
 * go peer link -> seeder link (Cluster zone, no backbone). Names: host "seeder", disk "disk", links "s_up",
 * "s_down"; peer i: host "p<i>", links "p<i>_up", "p<i>_down". */
#ifndef HEKATE_SIM_PLATFORM_H
#define HEKATE_SIM_PLATFORM_H

#include <stdint.h>
#include <stdio.h>

#include "scenario.h"

typedef struct sim_peer_link {
    double down, up;   /* B/s */
    double latency;    /* s, one-way, on each of the peer's two links */
} sim_peer_link;

/* Returns 0, or -1 if writing failed. */
int platform_write(FILE *out, const scenario *sc, const sim_peer_link *peers, uint32_t npeers);

#endif
