/* sim_tracker: a simulated tracker (HTTP-like and UDP) and a deterministic discrete-event driver of the announcer
 * (core/announcer.h), to test announce behaviour at scale: a million torrents, losses, latency, outages, failure
 * replies.
 *
 * Contract
 * --------
 * sim_tracker_run plays one scenario in simulated time, alone (no SimGrid: the announcer talks to trackers only, so
 * an event queue of its wake-ups, replies and datagrams is the whole world). The announcer is the production code,
 * byte for byte, behind a runtime table whose now() is the simulated clock and random_bytes() a PRNG seeded by the
 * scenario; the same scenario and seed give the same run (the result's `hash` covers every announce the tracker
 * received, in order).
 * The tracker: every request reaches it after `latency` (plus uniform jitter), unless lost (probability `loss`, per
 * direction) or the tracker is in its outage window. HTTP: an answer (interval, or a failure reason with probability
 * `failure_rate`) comes back after the same delay; a lost request or answer ends with a timeout after `http_timeout`;
 * during an outage the connection is refused (outage_refuse) or nothing answers (timeout). UDP (BEP 15): connect and
 * announce are answered alike (connection ids valid 60 s at the tracker too); silence during an outage.
 * Every announce the tracker receives is counted in its simulated second (the per-second curve), and the first
 * announce of each torrent is recorded, so announces missed in the first interval can be counted (an announce sent
 * in the interval's last instant counts if it arrives within the network's delay).
 */
#ifndef HEKATE_SIM_TRACKER_H
#define HEKATE_SIM_TRACKER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct sim_tracker_cfg {
    uint64_t seed;
    uint32_t torrents;
    bool udp;                    /* the torrents' tracker is udp://... (else http://...) */
    double duration;             /* simulated seconds */
    double interval;             /* the tracker's `interval` */
    double min_interval;         /* its `min interval` (0: none) */
    double latency, jitter;      /* one-way delay: latency + U[0, jitter) seconds */
    double loss;                 /* probability a message is lost, per direction */
    double failure_rate;         /* probability of a failure-reason answer */
    double outage_start, outage_length; /* seconds; length 0: none */
    bool outage_refuse;          /* HTTP during the outage: connection refused at once (else silence) */
    double http_timeout;         /* the backend's total timeout for HTTP (seconds) */
    /* announcer settings (0: its defaults) */
    double spread;               /* default_interval: the first announces' window */
    uint32_t host_inflight;
    double retry_base, retry_max;
} sim_tracker_cfg;

void sim_tracker_cfg_default(sim_tracker_cfg *c);

typedef struct sim_tracker_result {
    uint32_t seconds;            /* length of the curve */
    uint32_t *per_second;        /* announces received by the tracker in each simulated second (malloc'd) */
    uint64_t received;           /* announces received in all */
    uint64_t stopped_received;
    uint32_t announced_in_first_interval; /* distinct torrents whose announce sent in [0, interval) arrived */
    uint64_t hash;               /* FNV-1a over (second, torrent, event) of every announce received */
    uint64_t memory_bytes;       /* the announcer's heap after the first interval */
    uint64_t memory_peak;
    uint64_t events;             /* simulation events processed */
    double wall_seconds_unused;  /* (the caller measures time) */
    uint64_t ok, failed, skipped, refused;
} sim_tracker_result;

/* 0 on success, -1 (with err) on a bad configuration or out of memory. */
int sim_tracker_run(const sim_tracker_cfg *cfg, sim_tracker_result *out, char *err, size_t errlen);
void sim_tracker_result_free(sim_tracker_result *r);

/* max / mean of per_second over [from, to) seconds; 0 if empty. */
double sim_tracker_peak_ratio(const sim_tracker_result *r, uint32_t from, uint32_t to, uint32_t *max,
                              double *mean);

/* Entry point of `hekate-sim --trackers SCENARIO [--curve FILE] [--seed N]` (sim_tracker_main.c). */
int sim_tracker_main(int argc, char **argv);

#endif
