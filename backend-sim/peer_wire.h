/* peer_wire: the protocol side of a simulated peer (leecher.h): leech/leech.h's peer (the leecher logic hekate-swarm
 * also runs) given the simulated connection, the run's clock, event log and random streams, and trade.h's book.
 *
 * Contract
 * --------
 * Internal to the leecher module: every function runs in one of the peer's actors and makes no SimGrid call (what
 * must reach the network is queued as a peer op with leecher_push, drained by the calling actor). Protocol errors of
 * the seeder are counted (protocol_errors, meta_fail), logged, and end the connection as closed by the seeder; they
 * are never fatal. Out of memory aborts.
 */
#ifndef HEKATE_SIM_PEER_WIRE_H
#define HEKATE_SIM_PEER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leecher.h"

/* Before the peer's first connection: its leech.h peer for its torrent of size and piece_length (the layout and the request order drawn from
 * its stream now; a magnet peer's when its metadata is in), with trade.h's request book when trading. */
void peer_init(leecher *l, const lk_params *par, uint64_t size, uint32_t piece_length, bool trading);
/* A new connection: a fresh decoder, nothing received; requests still outstanding are asked again later. */
void peer_reset_protocol(leecher *l);
/* The SYN was accepted: sends the handshake (a mute peer sends nothing). */
void peer_on_connected(leecher *l);
/* One received part: p NULL for data-file bytes without content (fed as zeros; an RC4 stream still advances over
 * them, as the seeder's did). An encrypted peer's bytes go through its MSE initiator, then are decrypted. */
void peer_feed_part(leecher *l, const uint8_t *p, size_t n);
/* The connection ended as the peer's host saw it (leecher_end_conn): nothing more is sent or decoded on it. */
void peer_conn_lost(leecher *l);
/* true for the behaviours that keep an idle connection alive */
bool peer_sends_keepalives(const leecher *l);
void peer_send_keepalive(leecher *l);
/* A flooder's tick: flood_rate requests for random blocks. */
void peer_flood(leecher *l);

/* The peer has every block (a trading link's doing): completion logged, the seeder connection ended (with a FIN). */
void peer_completed(leecher *l);
/* Requests on the seeder connection up to the pipeline (when unchoked). */
void peer_request_more(leecher *l);

/* Provided by leecher.c: queues a peer op for the peer's actors. */
void leecher_push(leecher *l, sop_type t, hk_conn *c);
/* Provided by leecher.c: carries out the peer's queued ops (its trading's too) from the calling actor (outbox ob). */
void leecher_drain(leecher *l, sim_outbox *ob);
/* Provided by leecher.c: ends the current connection (with a FIN if fin), once; wakes the life actor. */
void leecher_end_conn(leecher *l, lee_end why, bool fin);

#endif
