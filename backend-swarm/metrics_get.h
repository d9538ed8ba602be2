/* metrics_get: one figure from a running hekate's /metrics endpoint (docs/metrics.md), fetched with a plain HTTP/1.0
 * GET on loopback: what only the seeder knows exactly (the peers unchoked at once), for hekate-swarm's verdicts.
 *
 * Contract: metrics_get(addr, name, &value) connects to addr (an IPv4 address and port), reads the whole answer
 * within 5 s and parses the line "NAME VALUE" (a metric without labels); 0, or -1 (no answer, no such metric). */
#ifndef HEKATE_SWARM_METRICS_GET_H
#define HEKATE_SWARM_METRICS_GET_H

#include <netinet/in.h>

int metrics_get(const struct sockaddr_in *addr, const char *name, double *value);

#endif
