/* leecher: the simulated peers — simulation-only BitTorrent clients written against the wire codec (core/wire.h)
 * and bencode, never the seeding engine. Per peer: a life actor (arrival, connect, keep-alives, flooding ticks, churn
 * departures and returns, reconnects) and one receiver actor per connection (the peer's end of the stream: ACKs,
 * decoding, requests). Behaviours: see scenario.h.
 *
 * Contract
 * --------
 * leechers_start, before simgrid_run, fills w->peers (one record per peer of every profile, in profile order; the
 * array never moves) and starts every life actor; each peer draws from its own PRNG stream, so its choices do not
 * depend on scheduling. A peer's results (the fields under "results") are final once `finished` is set. The life
 * actor counts itself in w->lives_running while it runs. Out of memory aborts.
 */
#ifndef HEKATE_SIM_LEECHER_H
#define HEKATE_SIM_LEECHER_H

#include <simgrid/host.h>
#include <simgrid/mailbox.h>
#include <simgrid/semaphore.h>
#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "leech.h"
#include "prng.h"
#include "scenario.h"
#include "stream.h"
#include "wire.h"

struct sim_world;

typedef enum lee_end {
    END_NONE = 0, END_COMPLETE, END_REFUSED, END_CLOSED_BY_SEEDER, END_DEPARTED, END_VANISHED, END_TIME
} lee_end;

typedef struct leecher {
    struct sim_world *world;     /* the run (what its actors start from) */
    uint32_t id;
    const sim_profile *prof;
    uint32_t profile_index;
    uint32_t torrent;
    prng rng;
    sg_host_t host;
    sg_mailbox_t dummy;
    /* life */
    sg_actor_t life;
    sim_outbox box;              /* sends issued by the life actor */
    sg_sem_t wake;
    bool wake_queued, life_sleeping;
    hk_time life_sleep_until;
    hk_conn *conn;               /* current connection (reference held) */
    bool conn_ended;             /* the NIC saw the end of conn */
    lee_end conn_end;
    sim_opq ops;
    hk_time leave_at;            /* churn departure (HK_TIME_NEVER: none) */
    bool finished;               /* life actor done */
    /* protocol: leech/leech.h's peer (the one leecher implementation) on this peer's torrent (peer_wire.c) */
    lk_peer lk;
    lk_torrent tor;              /* info-hash and block layout (a magnet peer's: once its metadata is in) */
    bool connected;              /* the SYN was accepted on the current connection */
    hk_time last_sent;
    hk_time next_flood;
    struct trade_peer *trade;    /* leecher-to-leecher exchange (trade.h); NULL: this peer does not trade */
    /* results */
    hk_time arrival, first_connect, complete_at, end_at;
    lee_end end;
    uint32_t connects, refusals, closed_by_seeder; /* the protocol's counts are lk's (bytes, rejects, completed...) */
    /* the last connection closed by the seeder, as the backend saw it */
    hk_time c_accepted, c_last_rx, c_last_ack, c_first_unchoke, c_first_choke, c_closed_at;
} leecher;

/* Before simgrid_run: every peer's record and life actor (w->peers allocated with w->npeers records). */
void leechers_start(struct sim_world *w);

#endif
