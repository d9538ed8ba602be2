/* fleet: hekate-swarm's leechers on libev — every peer of a scenario played for real over TCP against a running
 * seeder: arrivals (the simulator's draws, stream for stream), one connection at a time from its own 127.x.y.z
 * source address, the download rate as a token bucket on reading, the latency as a user-space delay line between the
 * socket and the protocol, hekate-sim's window (at most `window` bytes read and not yet out of the delay line),
 * churn by MTBF/MTTR, reconnects, keep-alives and flooding ticks. The protocol itself is leech/leech.h's.
 *
 * Contract
 * --------
 * fleet_run() plays sc against `target` until [run] duration or until every peer's life is over, then fills the
 * per-peer results (swarm_peer, below) and the run's figures (swarm); 0, or -1 with a message on stderr (setup
 * failures only: a connection that fails is a result, not an error). It raises RLIMIT_NOFILE to its hard limit.
 * fleet_free() releases it all (also after a failed fleet_run). */
#ifndef HEKATE_SWARM_FLEET_H
#define HEKATE_SWARM_FLEET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#include "leech.h"
#include "prng.h"
#include "scenario.h"

struct swarm;
struct dchunk;

typedef struct swarm_event {
    double t;                    /* seconds since the start of the run */
    bool unchoked;
    bool blind;                  /* not a message: the peer stopped reading while unchoked (counted as a choke) */
} swarm_event;

typedef struct swarm_peer {
    struct swarm *sw;
    uint32_t id, profile_index, torrent;
    const sim_profile *prof;
    lk_peer lk;
    prng rng;
    double down, latency, delay; /* B/s; one-way s; receive delay s */
    /* connection */
    int fd;
    bool connecting, open, reading, got_bytes;
    bool blind;                  /* stopped reading for the rest of this connection (non_reader, vanished) */
    void *io;                    /* ev_io, ev_timer x3 (fleet.c) */
    uint8_t *ob;
    size_t olen, ocap;
    double tokens, tb_last, rate, burst;
    uint64_t inflight;           /* bytes read and still in the delay line (at most swarm.window) */
    struct dchunk *dh, *dt;
    double conn_at, last_sent, next_flood, leave_at;
    double rx_time;              /* when the bytes being decoded were read from the socket */
    int phase;
    lk_end conn_end;
    /* results */
    double arrival, first_connect, complete_at, end_at;
    lk_end end;
    uint32_t connects, refusals, closed_by_seeder;
    bool finished, completed;
    swarm_event *hist;
    uint32_t nhist, caphist;
} swarm_peer;

typedef struct swarm_zombie {
    int fd;                      /* a vanished connection's socket, neither read nor written */
    uint32_t peer;
} swarm_zombie;

typedef struct swarm {
    const scenario *sc;
    lk_torrent *torrents;
    lk_params *params;           /* one per profile */
    swarm_peer *peers;
    uint32_t npeers;
    struct sockaddr_in target;
    uint64_t window;             /* [seeder] window: bytes per RTT per connection, as hekate-sim's flights; 0: none */
    void *loop;
    double t0, end_time, stop_time;
    uint32_t lives_running, unchoked_now, unchoked_max, connected_now, connected_max;
    int64_t seeder_unchoked_max;  /* hekate_peers_unchoked_max from --metrics; -1: not known */
    uint64_t payload_received, bytes_read;
    uint64_t rate_bytes[2];
    double rate_at[2];           /* 0: not sampled yet */
    double wall_s, cpu_s;
    FILE *series;                /* --series-csv: one row per [run] sample (time_s,payload_bytes,connected,
                                  * unchoked,peers_active); NULL: none */
    double next_sample;
    long rss_kib;
    swarm_zombie *zombie_fds;    /* vanished connections, closed once the seeder closed them */
    uint32_t nzombie, capzombie, zombies_closed;
} swarm;

int fleet_run(swarm *sw);
/* Frees what fleet_run allocated (the peers, the loop); the results go with them. */
void fleet_free(swarm *sw);
/* Seconds since the start of the run. */
double fleet_now(const swarm *sw);

#endif
