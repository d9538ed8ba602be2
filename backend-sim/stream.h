/* stream: the simulated byte stream of one connection direction and what carries it — messages put to mailboxes,
 * the queue of chunks they are cut from (ACK-clocked flights: at most one window unacknowledged per direction) and
 * the outbox of sends each actor owns.
 *
 * The sliding window
 * ------------------
 * A flight is put as two messages: a MSG_HEAD (no payload: it arrives one latency after the send, as the flight's
 * first segment does) and the MSG_DATA carrying the bytes (one latency plus its transfer). The receiver acknowledges
 * the head, so the window reopens one round trip after the flight left, not a round trip plus its transfer: a
 * connection gets window / RTT, as a TCP sender whose window slides, and its link's share when that is smaller. The
 * mailboxes keep the order of the puts, so a receiver takes a head only after the previous flight's data. A flight
 * is at most the window minus the data still in transit (sent, not yet taken by the receiver): where the link
 * binds, at most one window travels, and a sender whose window is full of data in transit asks the receiver for an
 * acknowledgement of its arrival. A receiver that does not read (a non-reader, a slow reader still reading) holds
 * the window closed.
 *
 * Contract
 * --------
 * stream_* and msg_* only touch memory (no SimGrid call); they abort on out of memory. The outbox functions make
 * simcalls, except outbox_drop, the one callable from an on_exit callback. Every message is reference counted: the
 * sender's outbox holds one reference and the receiver one; whoever releases the last frees it.
 */
#ifndef HEKATE_SIM_STREAM_H
#define HEKATE_SIM_STREAM_H

#include <simgrid/comm.h>
#include <simgrid/mailbox.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"

#define SIM_MSG_HEADER 40u   /* simulated bytes added to every message (TCP/IP headers) */

/* MSG_STOP: a local wake-up telling a connection's receiver actor to end (instead of killing it, see sim_outbox) */
/* MSG_HEAD: the first segment of a flight (see "The sliding window"), acknowledged by MSG_ACK */
typedef enum sim_msg_type { MSG_SYN = 1, MSG_SYNACK, MSG_RST, MSG_DATA, MSG_ACK, MSG_FIN, MSG_STOP, MSG_HEAD } sim_msg_type;

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
    hk_list link;                /* in its stream's queue */
    uint32_t len, off, cap;
    uint8_t virt;
    uint8_t data[];
} sim_chunk;

typedef struct sim_stream {
    hk_list chunks;              /* sim_chunk, oldest first (the stream must not move while it holds any) */
    uint64_t queued;             /* bytes in the queue, not yet in a flight */
    uint32_t inflight;           /* bytes of the flight whose head is not acknowledged yet (0: none) */
    uint64_t sent, delivered;    /* data bytes put, and taken by the receiver: in transit = sent - delivered */
    uint64_t learnt;             /* delivered bytes the sender has learnt of (at its acknowledgements) */
    bool want_delivery;          /* the window is full of data in transit: the receiver acknowledges its arrival */
} sim_stream;

/* An empty stream (before any other stream_* call). */
void stream_init(sim_stream *s);
/* Queues real bytes (copied). */
void stream_write(sim_stream *s, const uint8_t *bytes, uint32_t len);
/* Queues len data-file bytes, which have no content (coalesced with a virtual tail chunk). */
void stream_write_virtual(sim_stream *s, uint32_t len);
/* Builds the next flight (at most window bytes minus those still in transit) and marks it in flight; NULL if one is
 * in flight, nothing is queued or the window is full of data in transit (then want_delivery is set). The caller
 * puts a MSG_HEAD (msg_new_ctl) just before it. */
sim_msg *stream_take_flight(sim_stream *s, uint32_t window);
/* At an acknowledgement: the data bytes delivered since the last one (they leave the sender's buffer). */
uint64_t stream_learn_delivered(sim_stream *s);
/* The receiver took len data bytes of s; true if the sender waits for that (the receiver then sends a MSG_ACK). */
bool stream_delivered(sim_stream *s, uint32_t len);
/* Drops everything queued (the flight in flight, if any, stays counted in `inflight`). */
void stream_clear(sim_stream *s);
/* A control message (no payload) with one reference. */
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
 * For the same reason an actor with sends in flight is never killed: it gets a MSG_STOP. */
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
/* For an actor with no record of its own to hold its outbox (the timer, the disk workers): a heap outbox that the
 * calling actor's exit callback drops and frees (it cannot live on the stack: the callback runs after the stack is
 * unwound). One simcall (sg_actor_on_exit); aborts on out of memory. */
sim_outbox *outbox_new_for_self(void);
/* A read-only buffer of zeros standing for data-file bytes (at least the largest window). */
const uint8_t *sim_zero_bytes(void);
size_t sim_zero_size(void);

#endif
