/* seeder_rt: the seeder side of the simulation — the seeder's runtime table (hk_seeder_runtime) handed to the core
 * (ctx: the sim_seeder), the seeder's deferred-op queue and its drain, the per-connection receiver actors and the
 * timer actor (the core's single wake-up), with the backend-observed counters the report shows.
 *
 * Contract
 * --------
 * The runtime actions only change memory and queue ops; the seeder-host actor that called into the core drains the
 * queue after the core returns (seeder_drain), each op doing its state changes first and at most one SimGrid call
 * last. seeder_init ends the process (exit 2, message on stderr) when the core cannot be created or refuses a
 * torrent. Errors in what the core sends are counted (monitor_errors, sent_not_resident, ...), never fatal.
 */
#ifndef HEKATE_SIM_SEEDER_RT_H
#define HEKATE_SIM_SEEDER_RT_H

#include <simgrid/host.h>
#include <simgrid/semaphore.h>
#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "disk.h"
#include "prng.h"
#include "seeder.h"
#include "stream.h"

struct sim_world;

typedef struct sim_seeder {
    struct sim_world *world;     /* the run (the runtime actions get the seeder as ctx) */
    hk_seeder *core;
    hk_seeder_runtime rt;
    sg_host_t host;
    sim_opq ops;
    prng rng;
    uint8_t *enc_buf;            /* scratch for encrypting a send (MSE/PE peers) */
    size_t enc_cap;
    /* timer actor */
    hk_time wake_at;             /* what the core asked for */
    hk_time sleeping_until;      /* what the timer actor sleeps for (HK_TIME_NEVER: unbounded) */
    bool kick_queued;
    sg_sem_t timer_sem;
    sim_disk disk;
    /* counters (backend-observed) */
    uint64_t conns_open, conns_total, refused;
    uint64_t unchoked_now, unchoked_max;
    uint64_t sent_not_resident, extent_mismatch, monitor_errors, room_overruns;
    uint64_t data_bytes_sent, blocks_sent;
    uint64_t corrupt_sent;       /* data extents of a [torrent] corrupt piece handed to a connection (must stay 0) */
    uint64_t memory_max;
    uint64_t core_calls;
} sim_seeder;

/* Before simgrid_run: creates the core, adds the world's torrents, starts the timer and the disk workers. */
void seeder_init(struct sim_world *w);
/* Carries out the seeder's queued ops; ob: the calling (seeder-host) actor's sends. */
void seeder_drain(sim_seeder *s, sim_outbox *ob);
/* From a peer actor: starts the seeder's receiver actor of the new connection c (it takes a reference). */
void seeder_spawn_rx(sim_seeder *s, hk_conn *c);

#endif
