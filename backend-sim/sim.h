/* sim: the shared state of one simulation run — the world (scenario, torrents, seeder endpoint, peers, counters),
 * the simulated connection (a mailbox pair, one ACK-clocked stream per direction) and the simulated peer.
 *
 * Rules every file of backend-sim follows (see notes/simgrid.md):
 *   - The core never calls SimGrid. Runtime actions only change memory and queue deferred operations (ops); the
 *     actor that called into the core drains the queue after the core returns. Each op does its state changes
 *     first and at most ONE SimGrid call last, so an actor killed at a SimGrid call never leaves half an op done.
 *   - Ops issued for the seeder are drained by seeder-host actors only, ops for a peer by that peer's actors only
 *     (the issuing actor's host is the source of a communication).
 *   - Everything that decides is a function of simulated time and seeded PRNG streams: no pointer-keyed order, no
 *     wall clock.
 */
#ifndef HEKATE_SIM_SIM_H
#define HEKATE_SIM_SIM_H

#include <simgrid/actor.h>
#include <simgrid/comm.h>
#include <simgrid/engine.h>
#include <simgrid/host.h>
#include <simgrid/mailbox.h>
#include <simgrid/semaphore.h>
#include <simgrid/disk.h>
#include <stdbool.h>
#include <stdint.h>

#include "evlog.h"
#include "pagecache.h"
#include "perm.h"
#include "prng.h"
#include "scenario.h"
#include "seeder.h"
#include "torrentgen.h"
#include "wire.h"

#define SIM_MSG_HEADER 40u   /* simulated bytes added to every message (TCP/IP headers) */
#define SIM_BLOCK 16384u

/* ---------------- messages and streams ---------------- */

/* MSG_STOP: a local wake-up telling a connection's receiver actor to end (instead of killing it, see sim_outbox) */
typedef enum sim_msg_type { MSG_SYN = 1, MSG_SYNACK, MSG_RST, MSG_DATA, MSG_ACK, MSG_FIN, MSG_STOP } sim_msg_type;

typedef struct sim_part {
    uint32_t len;
    uint32_t virt;               /* 1: data-file bytes (no content in the simulation) */
    const uint8_t *bytes;        /* real bytes (virt == 0), inside the message allocation */
} sim_part;

typedef struct sim_msg {
    uint8_t type;
    uint8_t refs;                /* the sender's outbox and the receiver: freed by the last msg_release */
    uint32_t len;                /* payload bytes (DATA) */
    uint32_t nparts;
    sim_part parts[];
} sim_msg;

typedef struct sim_chunk {
    struct sim_chunk *next;
    uint32_t len, off, cap;
    uint8_t virt;
    uint8_t data[];
} sim_chunk;

typedef struct sim_stream {
    sim_chunk *head, *tail;
    uint64_t queued;             /* bytes in the queue, not yet in a flight */
    uint32_t inflight;           /* bytes of the flight in flight (0: none) */
} sim_stream;

void stream_write(sim_stream *s, const uint8_t *bytes, uint32_t len);
void stream_write_virtual(sim_stream *s, uint32_t len);
/* Builds the next flight (at most window bytes) and marks it in flight; NULL if one is in flight or nothing queued. */
sim_msg *stream_take_flight(sim_stream *s, uint32_t window);
void stream_clear(sim_stream *s);
sim_msg *msg_new_ctl(sim_msg_type type);
/* Frees a message that was never put. */
void msg_free(sim_msg *m);
/* The receiver is done with a message it got (or holds and drops). */
void msg_release(sim_msg *m);

/* The sends one actor has issued and not yet reaped.
 *
 * Why not fire-and-forget (put_init + detach): SimGrid 3.32 keeps every detached communication in ONE global list
 * (the maestro's activities) and removes it with a linear std::list::remove at each of its completions, so every
 * message cost O(messages in flight in the whole simulation) - 12,000 during the 10,000-peer handshake burst, ~360
 * afterwards, each node a cache miss. A non-detached send instead stays in its issuer's own activity list until the
 * issuer waits on it. So every actor that sends owns an outbox: msg_put starts the send (put_async, same timing as
 * a detached put) and records it; outbox_reap waits on the sends whose receiver already got the message (done: the
 * wait returns at once, nothing blocks) once there are enough of them to matter; outbox_close, before the actor
 * ends, waits for the sends still in flight (an actor that ends cancels its unfinished sends) and drops the rest.
 * For the same reason an actor with sends in flight is never killed: it gets a MSG_STOP (msg_stop). */
typedef struct sim_sent {
    sg_comm_t comm;
    sim_msg *m;                  /* one reference */
} sim_sent;

typedef struct sim_outbox {
    sim_sent *v;
    uint32_t n, cap;
    sim_msg *waiting;            /* the message of the send being started or waited on (not in v meanwhile) */
} sim_outbox;

/* put_async; simulated size = payload + SIM_MSG_HEADER (MSG_STOP: 0). The ONE SimGrid call of an op. */
void msg_put(sim_outbox *ob, sg_mailbox_t mb, sim_msg *m);
/* true if every send of ob has reached its receiver (killing the actor would cancel nothing) */
bool outbox_all_delivered(const sim_outbox *ob);
/* Called where the owning actor may block: reaps delivered sends once they are numerous (simcalls). */
void outbox_reap(sim_outbox *ob);
/* Called by the owning actor before it ends: waits for sends in flight, then forgets everything (simcalls). */
void outbox_close(sim_outbox *ob);
/* From an on_exit callback (no simcall), for an actor killed before outbox_close (the end of the simulation): drops
 * the handles. Without it the communications, and through them the actors and their stacks, would never be freed. */
void outbox_drop(sim_outbox *ob);
/* A read-only buffer of zeros standing for data-file bytes (at least the largest window). */
const uint8_t *sim_zero_bytes(void);
size_t sim_zero_size(void);

/* ---------------- connections ---------------- */

struct leecher;

/* What the seeder's output stream showed (sim/monitor.c): the backend checks it at send time. */
typedef struct sim_monitor {
    uint8_t state;               /* framing state */
    uint8_t id;
    uint32_t need;               /* bytes left in the current unit */
    uint8_t hdr[13];
    uint32_t have;
    uint64_t piece_off;          /* torrent offset the next piece data byte must come from */
    bool unchoked;
    bool broken;                 /* framing error seen: stop checking this stream */
} sim_monitor;

struct hk_conn {
    uint64_t id;
    uint32_t torrent;            /* the torrent the peer asks for (set by the peer) */
    int refs;
    sg_mailbox_t mb_s, mb_p;     /* to the seeder, to the peer */
    struct leecher *lee;

    /* seeder half */
    hk_peer *peer;
    sim_stream s_out;
    sg_actor_t s_actor;
    sim_outbox s_box;            /* sends issued by s_actor */
    bool s_started, s_closed, s_stopping, s_flush_queued;
    uint64_t s_unacked;          /* bytes given by the core, not yet acknowledged */
    int64_t room_left;           /* granted room minus large messages sent since */
    sim_monitor mon;
    hk_time accepted_at, last_rx, last_ack, first_unchoke, first_choke_after_unchoke, closed_at;
    bool closed_by_seeder;

    /* peer half */
    sim_stream p_out;
    sg_actor_t p_actor;
    sim_outbox p_box;            /* sends issued by p_actor */
    bool p_closed, p_vanished, p_flush_queued, p_stopping;
    sim_msg *p_pending;          /* message the peer's receiver holds while it sleeps (freed if killed) */
};

void conn_ref(hk_conn *c);
void conn_unref(hk_conn *c);
/* The end of a deferred op, shared by the seeder's and the peers' drains: releases the op's connection reference
 * (c may be NULL), then makes the op's one SimGrid call: put m to mb (or free it when `drop`: nobody will read it),
 * or, without a message, kill `victim`. Returns true if it did either. */
bool op_finish(sim_outbox *ob, hk_conn *c, sim_msg *m, sg_mailbox_t mb, bool drop, sg_actor_t victim);

/* ---------------- seeder endpoint (sim/seeder_rt.c, sim/disk.c) ---------------- */

typedef enum sop_type {
    SOP_FLUSH = 1, SOP_ACK, SOP_FIN, SOP_SYNACK, SOP_KILL, SOP_TIMER_KICK, SOP_DISK_KICK, /* seeder */
    POP_FLUSH, POP_ACK, POP_FIN, POP_SYN, POP_KILL_NIC, POP_WAKE,                     /* peer */
} sop_type;

typedef struct sim_op {
    uint8_t type;
    hk_conn *c;                  /* holds a reference when not NULL */
} sim_op;

typedef struct sim_opq {
    sim_op *v;
    uint32_t head, len, cap;
} sim_opq;

void opq_push(sim_opq *q, sop_type type, hk_conn *c);
bool opq_pop(sim_opq *q, sim_op *out);
void opq_free(sim_opq *q);

typedef struct disk_job disk_job;

typedef struct sim_disk {
    pagecache *pc;
    sg_disk_t disk;
    sg_sem_t sem;                /* jobs available */
    disk_job *q_head, *q_tail;   /* FIFO */
    disk_job *waiting;           /* loads waiting for pages read by other jobs */
    uint64_t last_end_key;       /* position after the last read (sequential reads skip the seek) */
    bool has_last;
    uint32_t busy;               /* jobs being served */
    uint32_t workers_spawned;
    uint64_t jobs_queued;        /* in the FIFO */
    /* counters */
    uint64_t reads, bytes_read, prefetches, loads, load_errors, resident_checks, resident_yes;
} sim_disk;

typedef struct sim_seeder {
    hk_seeder *core;
    hk_runtime rt;
    sg_host_t host;
    sim_opq ops;
    prng rng;
    hk_time now_floor;
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
    uint64_t memory_max;
    uint64_t core_calls;
} sim_seeder;

/* ---------------- peers (sim/leecher.c) ---------------- */

typedef enum lee_end {
    END_NONE = 0, END_COMPLETE, END_REFUSED, END_CLOSED_BY_SEEDER, END_DEPARTED, END_VANISHED, END_TIME
} lee_end;

typedef struct leecher {
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
    /* protocol */
    wire_decoder dec;
    bool connected, got_handshake, got_have, interested_sent, unchoked, fast, ext, vanished;
    uint8_t *have;               /* received blocks bitmap */
    uint32_t nblocks, received, bpp;
    uint32_t piece_length, piece_count;
    uint64_t size;
    perm order;
    uint64_t cursor;
    struct { uint32_t block; } *out; /* outstanding requests */
    uint32_t nout, capout;
    uint32_t *requeue;
    uint32_t nrequeue, caprequeue;
    hk_time last_sent;
    uint64_t flood_sent;
    hk_time next_flood;
    uint32_t meta_fail, protocol_errors;
    /* magnet */
    bool need_meta;
    uint8_t seeder_ut_metadata;
    uint32_t meta_size, meta_got;
    uint8_t *meta;
    uint8_t *meta_have;
    /* results */
    hk_time arrival, first_connect, complete_at, end_at;
    lee_end end;
    uint64_t bytes;              /* payload received */
    uint32_t connects, refusals, closed_by_seeder, unrequested, dup_blocks, rejects;
    bool completed;
    /* the last connection closed by the seeder, as the backend saw it */
    hk_time c_accepted, c_last_rx, c_last_ack, c_first_unchoke, c_first_choke, c_closed_at;
} leecher;

/* ---------------- the world ---------------- */

typedef struct sim_world {
    scenario *sc;
    sim_torrent *torrents;
    uint32_t ntorrents;
    uint8_t (*info_hashes)[20];
    sim_seeder seeder;
    leecher *peers;
    uint32_t npeers;
    evlog *log;
    uint64_t next_conn_id;
    uint32_t lives_running;
    bool stopping;
    bool fault_extent_offset;    /* --fault extent-offset: the backend sends every data extent one byte late */
    FILE *csv_time;              /* per sample period */
    /* peak tracking, figures */
    uint32_t waiting_max;
    uint64_t queued_requests_max;
    hk_time end_time;
    double wall_s;
    long rss_kib;
    uint64_t log_lines;
    char hash[65];
} sim_world;

extern sim_world *g_world;

/* seeder_rt.c */
hk_time sim_now(void);
void seeder_init(sim_world *w);            /* before simgrid_run: creates the core and the seeder actors */
void seeder_drain(sim_outbox *ob);         /* carries out the seeder's ops; ob: the calling actor's sends */
void seeder_spawn_rx(hk_conn *c);          /* from a peer actor: the seeder side of a new connection */
/* disk.c */
void disk_init(sim_seeder *s, const sim_disk_cfg *cfg);
void disk_spawn_workers(sim_seeder *s, uint32_t n);
void disk_rt_prefetch(void *ctx, const hk_extent *ext);
bool disk_rt_resident(void *ctx, const hk_extent *ext);
void disk_rt_load(void *ctx, const hk_extent *ext, uint64_t token);
/* true if ext is a data extent whose pages are all resident; touches them (a send reads them) */
bool disk_check_and_touch(sim_seeder *s, const hk_extent *ext);
bool disk_idle(const sim_seeder *s);
/* monitor.c: feeds what the core sends on c; checks framing, piece/extent agreement, tracks choke state */
void monitor_bytes(hk_conn *c, const uint8_t *p, uint32_t len);
void monitor_extent(hk_conn *c, const hk_extent *ext);
/* leecher.c */
void leechers_start(sim_world *w);

#endif
