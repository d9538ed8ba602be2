/* conn: one simulated connection (struct hk_conn, which the core only sees as an opaque pointer) — a mailbox pair,
 * one stream per direction, the seeder's half and the peer's half — and the deferred operations (ops) through which
 * the runtime actions and the peers' protocol reach SimGrid.
 *
 * Contract
 * --------
 * A connection is reference counted: the leecher's current-connection slot, each receiver actor and each queued op
 * hold one; conn_unref frees it (and both streams) with the last. An op queue is a FIFO of (type, connection); a
 * queued op holds a reference to its connection. opq_push aborts on out of memory; opq_pop returns false when empty.
 * op_finish ends an op: see below. Ops for the seeder are drained by seeder-host actors only, ops for a peer by that
 * peer's actors only (the issuing actor's host is the source of a communication).
 */
#ifndef HEKATE_SIM_CONN_H
#define HEKATE_SIM_CONN_H

#include <simgrid/actor.h>
#include <stdbool.h>
#include <stdint.h>

#include "monitor.h"
#include "seeder.h"
#include "stream.h"

struct leecher;
struct sim_world;

struct hk_conn {
    uint64_t id;
    uint32_t torrent;            /* the torrent the peer asks for (set by the peer) */
    int refs;
    struct sim_world *world;     /* the run it belongs to (what its receiver actors start from) */
    sg_mailbox_t mb_s, mb_p;     /* to the seeder, to the peer */
    struct leecher *lee;

    /* seeder half */
    hk_peer *peer;
    sim_stream s_out;
    hk_cipher *s_cipher;         /* set_cipher: applied to every byte the seeder writes from then on (MSE/PE) */
    bool s_mse_phase_over;       /* an MSE peer's connection: the seeder's BitTorrent handshake has been sent */
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
    sim_msg *p_next;             /* a slow reader: the flight received while it reads p_pending (freed if killed) */
    bool p_ack_owed;             /* a slow reader: a head taken while p_next was unread, acknowledged later */
    sg_comm_t p_get;             /* a slow reader: the receive posted while it reads (NULL: none) */
    void *p_get_data;            /* its message once done */
};

void conn_ref(hk_conn *c);
/* Drops one reference; the last frees the connection and its queued bytes. */
void conn_unref(hk_conn *c);

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

/* Appends an op (takes a reference to c when c is not NULL). */
void opq_push(sim_opq *q, sop_type type, hk_conn *c);
/* Takes the oldest op into *out (its reference passes to the caller); false if the queue is empty. */
bool opq_pop(sim_opq *q, sim_op *out);
void opq_free(sim_opq *q);

/* The end of a deferred op, shared by the seeder's and the peers' drains: releases the op's connection reference
 * (c may be NULL), then makes the op's one SimGrid call: put m to mb (or free it when `drop`: nobody will read it),
 * or, without a message, kill `victim`. Returns true if it did either, false if there was nothing to do. */
bool op_finish(sim_outbox *ob, hk_conn *c, sim_msg *m, sg_mailbox_t mb, bool drop, sg_actor_t victim);

/* What an op that stops a connection's receiver actor (SOP_KILL for the seeder's half, POP_KILL_NIC for the peer's)
 * does, decided without a SimGrid call: nothing (NULL) when that receiver is gone, is the calling actor or is already
 * stopping; kill it (NULL, *victim set) when that cancels none of its sends; otherwise wake it up with a MSG_STOP on
 * its own mailbox (returned, *mb and *drop set) and mark it stopping: it ends by itself. */
sim_msg *conn_stop_receiver(hk_conn *c, bool seeder_half, sg_mailbox_t *mb, bool *drop, sg_actor_t *victim);

#endif
