/* trade: leecher-to-leecher exchange in the simulator ([peers] trade, issue 12 item 5) — the connections between
 * simulated leechers, what they say on them (handshake, bitfield, have, interest, choke/unchoke, request, piece,
 * written with the wire codec core/wire.h like the rest of the simulated peers), rarest-first requests among the
 * peers a leecher knows, and the tit-for-tat choker among leechers. Also the swarm's union of held blocks (the time
 * the leechers together first hold a full copy), kept with trading on or off.
 *
 * Model
 * -----
 * Only the normal peers of a scenario with [peers] trade = yes trade (leecher->trade not NULL); for every other peer
 * and every scenario without it nothing here runs, draws or logs, so their event logs are unchanged. A trading
 * peer, at its arrival, connects to up to [peers] connect earlier trading peers still present, drawn uniformly from
 * its own PRNG stream (no tracker, no PEX: that introduction is the only way peers learn of each other); a peer
 * accepts at most [peers] max_links connections (more are refused with a RST). A link is a pair of mailboxes and
 * one stream per direction carried in window-sized, ACK-clocked flights (stream.h), over the two peers' access
 * links (the generated star routes p<i> -> p<j> over p<i>_up and p<j>_down). Each end has a receiver actor on its
 * peer's host. Piece data has no content (virtual bytes), as the seeder's.
 *
 * Requests: on a link whose remote unchokes it, a peer keeps up to its profile's `pipeline` requests, the blocks of
 * the piece it is filling first, else of the rarest piece the remote has (fewest of its links' remotes have it;
 * a piece already begun first among equals; the rest of the ties from its PRNG), never a block held or already
 * asked (of the seeder or another link); refilled once half are answered. The seeder connection keeps its own
 * pipeline, picked the same way (the seeder has every piece): rarest first, piece by piece, so what a peer gets
 * from the seeder is soon worth trading. A choke (no fast extension between leechers) puts the link's requests back.
 * Serving: a peer answers a request of an unchoked remote for a piece it has announced (HAVE after the piece's
 * last block) through a 256 KiB send buffer; a choke drops the requests not yet written. Choking: every [peers]
 * rechoke, the `unchoke_slots - 1` interested remotes that uploaded the most to it over the period (a finished
 * peer: those it uploaded the most to; ties by peer number) stay or become unchoked, the rest choked, plus one
 * optimistic unchoke drawn among the others every [peers] optimistic; between rechokes an interested remote takes a
 * free slot at once. A finished peer closes its seeder connection, stays a seed for [peers] seed_time, then closes
 * its links (FIN) and ends.
 *
 * Contract
 * --------
 * trade_new (leechers_start, before simgrid_run) allocates a peer's state. Every other function runs in one of that
 * peer's actors and, except trade_finish (which sleeps) and trade_drain (which sends), makes no SimGrid call: what
 * must reach the network is queued and sent by trade_drain, called by leecher_drain, from the acting actor. Out of
 * memory aborts. Protocol errors on a link close it (counted in protocol_errors, logged), never fatal. Links and
 * their streams live until the process ends.
 */
#ifndef HEKATE_SIM_TRADE_H
#define HEKATE_SIM_TRADE_H

#include <stdbool.h>
#include <stdint.h>

#include "leecher.h"

struct sim_world;

/* The peer's trading state (l's layout must be set); NULL when l does not trade. */
struct trade_peer *trade_new(leecher *l);
/* At its arrival: present (accepts links); connects to up to [peers] connect earlier peers. */
void trade_arrive(leecher *l);
/* The next rechoke time (HK_TIME_NEVER: none), and the rechoke when it is due. */
hk_time trade_next(const leecher *l);
void trade_tick(leecher *l, hk_time now);
/* The seeder connection's requests (peer_wire.c): how many are outstanding; one asked; one answered (a piece or a
 * reject: true if it was asked of the seeder); every one put back (a choke or a new connection). */
uint32_t trade_seeder_out(const leecher *l);
/* The next block to ask of the seeder (it has every piece), rarest first as on a link; LK_NO_BLOCK: none. */
uint32_t trade_seeder_pick(leecher *l);
void trade_seeder_asked(leecher *l, uint32_t b);
void trade_seeder_answered(leecher *l, uint32_t b);
void trade_seeder_requeue_all(leecher *l);
/* Block b was taken into the book (from the seeder or a link): the piece's count, HAVE when it is complete. */
void trade_block_taken(leecher *l, uint32_t b);
/* At the end of the peer's life actor: seeds for [peers] seed_time if complete (sleeping, rechoking), then closes
 * every link. ob: the life actor's outbox. */
void trade_finish(leecher *l, sim_outbox *ob);
/* Sends what the peer's trading queued (from the calling actor, whose outbox is ob). */
void trade_drain(leecher *l, sim_outbox *ob);
/* Payload the peer received from other leechers, and sent to them. */
uint64_t trade_bytes_in(const leecher *l);
uint64_t trade_bytes_out(const leecher *l);

/* The swarm's union (every peer, trading or not): block b of torrent t now held by some peer. Torrent 0 only is
 * followed; w->swarm_copy_at is the time its every block was first held by some peer (0: never). */
void swarm_note_block(struct sim_world *w, uint32_t torrent, uint32_t b);

#endif
