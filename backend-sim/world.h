/* world: the state of one simulation run — the scenario, the torrents, the seeder endpoint, the peers, the event log
 * and the run's figures — and the two things every module of backend-sim needs from it: the simulated clock and a
 * way to start an actor with its argument.
 *
 * Rules every file of backend-sim follows (see docs/simgrid.md):
 *   - The core never calls SimGrid. Runtime actions only change memory and queue deferred operations (ops); the
 *     actor that called into the core drains the queue after the core returns. Each op does its state changes
 *     first and at most ONE SimGrid call last, so an actor killed at a SimGrid call never leaves half an op done.
 *   - Ops issued for the seeder are drained by seeder-host actors only, ops for a peer by that peer's actors only
 *     (the issuing actor's host is the source of a communication).
 *   - Everything that decides is a function of simulated time and seeded PRNG streams: no pointer-keyed order, no
 *     wall clock.
 *   - There is no global: the world is passed explicitly, and an actor gets its record (the world, a peer or a
 *     connection, each of which leads to the world) as the argument of its start function (sim_spawn).
 *
 * Module map: stream.h (messages, streams, outboxes), conn.h (connections, ops), seeder_rt.h (the runtime table,
 * receiver and timer actors), disk.h (disk workers; pagecache.h the page cache), monitor.h (checks of the seeder's
 * output), leecher.h (simulated peers' actors; peer_wire.h their protocol), report.h (figures and expectations),
 * scenario.h + units.h (the file format), platform.h, torrentgen.h, evlog.h, prng.h, perm.h (pure helpers),
 * sim_tracker.h (the trackers mode: no SimGrid at all). main.c drives a run.
 */
#ifndef HEKATE_SIM_WORLD_H
#define HEKATE_SIM_WORLD_H

#include <simgrid/actor.h>
#include <simgrid/host.h>
#include <simgrid/semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "evlog.h"
#include "leecher.h"
#include "scenario.h"
#include "seeder_rt.h"
#include "torrentgen.h"

typedef struct sim_world {
    scenario *sc;
    sim_torrent *torrents;
    uint32_t ntorrents;
    uint8_t (*info_hashes)[20];
    sim_seeder seeder;
    leecher *peers;
    uint32_t npeers;
    lk_params *peer_params;      /* per profile: what leech.h's peers of that profile do (leechers_start) */
    evlog *log;
    hk_time now_floor;           /* sim_now never goes back below what the actors already acted on */
    uint64_t next_conn_id;
    uint32_t lives_running;
    bool stopping;
    bool fault_extent_offset;    /* --fault extent-offset: the backend sends every data extent one byte late */
    FILE *csv_time;              /* per sample period */
    /* peak tracking, figures */
    uint32_t waiting_max;
    uint64_t queued_requests_max;
    double uplink_peak;          /* most payload received per second (all peers) over one [run] sample period */
    hk_time end_time;
    double wall_s;
    long rss_kib;
    uint64_t log_lines;
    char hash[65];
    /* upload rate caps: payload received by every peer, and its samples at [expect] rate_window's ends */
    uint64_t payload_received;
    hk_time request_latency_max; /* piece verification: the longest a block request waited for its piece */
    uint64_t rate_bytes[2];
    hk_time rate_at[2];          /* 0: not sampled yet */
    /* leechers that trade (trade.h): link numbers; the swarm's union of held blocks of torrent 0 */
    uint64_t next_link_id;
    uint8_t *swarm_have;
    uint32_t swarm_nblocks, swarm_held;
    hk_time swarm_copy_at;       /* the union first held every block (0: never) */
} sim_world;

/* Builds the torrents and the (zeroed) peer records of the scenario sc. Returns 0, or -1 out of memory. */
int world_build(sim_world *w, scenario *sc);
/* The simulated time in ns: SimGrid's clock rounded, never below w->now_floor (raised when an actor acts on a
 * deadline a little ahead of the clock, within SimGrid's precision). */
hk_time sim_now(sim_world *w);
/* Starts an actor named `name` on `host` running fn, which finds `arg` with sg_actor_self_get_data() as its first
 * step. The same simcalls as sg_actor_create (init, then start), so scheduling is unchanged. */
sg_actor_t sim_spawn(const char *name, sg_host_t host, void (*fn)(int, char **), void *arg);
/* Blocks the calling actor on sem until it is released or, unless until is HK_TIME_NEVER, until `until` (now: the
 * current simulated time, below it). One simcall. */
void sim_sem_wait_until(sg_sem_t sem, hk_time until, hk_time now);

#endif
