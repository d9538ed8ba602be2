/* peer_wire: owns the simulator's side of a simulated peer's protocol. The protocol itself — handshake, interest,
 * requests by strategy and pipeline, choke/unchoke and reject handling, pieces not offered, ut_metadata, MSE/PE and
 * the misbehaviours of scenario.h — is leech/leech.c, the same code hekate-swarm runs against real sockets; this file
 * gives it the simulated connection (its stream, the peer ops of leecher.c), the run's clock and event log, the
 * peer's random stream and, for trading peers, trade.h's request book. See peer_wire.h. */
#include "peer_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leech_profile.h"
#include "trade.h"
#include "world.h"

bool peer_sends_keepalives(const leecher *l)
{
    return lk_sends_keepalives(&l->lk);
}

/* ---------------- the I/O face and hooks of leech.h ---------------- */

static void io_send(void *ctx, const uint8_t *b, size_t n)
{
    leecher *l = ctx;
    hk_conn *c = l->conn;
    if (!c || c->p_closed)
        return;
    stream_write(&c->p_out, b, (uint32_t)n);
    l->last_sent = sim_now(l->world);
    if (!c->p_flush_queued && !c->p_out.inflight) {
        c->p_flush_queued = true;
        leecher_push(l, POP_FLUSH, c);
    }
}

_Static_assert((int)LK_END_COMPLETE == (int)END_COMPLETE && (int)LK_END_CLOSED_BY_SEEDER == (int)END_CLOSED_BY_SEEDER &&
                   (int)LK_END_VANISHED == (int)END_VANISHED && (int)LK_END_TIME == (int)END_TIME,
               "leech's ends are the simulator's");

static void io_end(void *ctx, lk_end why, bool fin)
{
    leecher *l = ctx;
    if (why == LK_END_COMPLETE)
        l->complete_at = sim_now(l->world);
    if (why == LK_END_VANISHED && l->conn)
        l->conn->p_vanished = true; /* gone without a FIN: no ACK, no message, ever again */
    leecher_end_conn(l, (lee_end)why, fin);
}

static uint64_t hook_now(void *ctx)
{
    return sim_now(((leecher *)ctx)->world);
}

static void hook_note(void *ctx, const char *event)
{
    leecher *l = ctx;
    evlog_line(l->world->log, sim_now(l->world), "peer p%u %s", l->id, event);
}

/* Feeds [expect] request_latency_max. */
static void hook_answered(void *ctx, uint32_t b, uint64_t waited)
{
    leecher *l = ctx;
    if (l->trade)
        trade_seeder_answered(l, b);
    if (waited > l->world->request_latency_max)
        l->world->request_latency_max = waited;
}

static void hook_taken(void *ctx, uint32_t b, uint32_t len)
{
    leecher *l = ctx;
    l->world->payload_received += len; /* upload rate caps ([expect] rate_cap) */
    swarm_note_block(l->world, l->torrent, b);
    if (l->trade)
        trade_block_taken(l, b);
}

static void hook_handshake(void *ctx)
{
    leecher *l = ctx;
    if (l->prof->behaviour == BEH_FLOODER)
        l->next_flood = sim_now(l->world) + HK_NS_PER_SEC;
}

static uint64_t hook_random_below(void *ctx, uint64_t n)
{
    return prng_below(&((leecher *)ctx)->rng, n);
}

static void hook_random_fill(void *ctx, uint8_t *b, size_t n)
{
    prng_fill(&((leecher *)ctx)->rng, b, n);
}

/* A magnet peer learns the torrent's layout from its metadata; its request order is drawn now. */
static uint64_t hook_metadata(void *ctx, uint64_t total_length, uint32_t piece_length)
{
    leecher *l = ctx;
    if (lk_torrent_layout(&l->tor, total_length, piece_length) < 0)
        abort(); /* mi_parse bounds both */
    return prng_next(&l->rng);
}

static uint32_t hook_trade_out(void *ctx)
{
    return trade_seeder_out(ctx);
}

static uint32_t hook_trade_pick(void *ctx)
{
    return trade_seeder_pick(ctx);
}

static void hook_trade_asked(void *ctx, uint32_t b)
{
    trade_seeder_asked(ctx, b);
}

static void hook_trade_requeue_all(void *ctx)
{
    trade_seeder_requeue_all(ctx); /* the links' requests stand */
}

static const uint8_t *hook_zeros(void *ctx)
{
    (void)ctx;
    return sim_zero_bytes();
}

#define SIM_HOOKS                                                                                                   \
    .now = hook_now, .note = hook_note, .answered = hook_answered, .taken = hook_taken,                             \
    .handshake = hook_handshake, .random_below = hook_random_below, .random_fill = hook_random_fill,                \
    .metadata = hook_metadata, .zeros = hook_zeros

static const lk_hooks sim_hooks = {SIM_HOOKS};
static const lk_hooks sim_trading_hooks = {SIM_HOOKS, .trade_out = hook_trade_out, .trade_pick = hook_trade_pick,
                                           .trade_asked = hook_trade_asked,
                                           .trade_requeue_all = hook_trade_requeue_all};

/* ---------------- life ---------------- */

void peer_init(leecher *l, const lk_params *par, uint64_t size, uint32_t piece_length, bool trading)
{
    memcpy(l->tor.info_hash, l->world->info_hashes[l->torrent], 20);
    uint64_t seed = 0;
    if (par->behaviour != LK_MAGNET) {
        if (lk_torrent_layout(&l->tor, size, piece_length) < 0)
            abort(); /* the scenario loader bounds both */
        seed = prng_next(&l->rng);
    }
    lk_io io = {.ctx = l, .send = io_send, .end = io_end, .hooks = trading ? &sim_trading_hooks : &sim_hooks};
    lk_init(&l->lk, par, &l->tor, io, l->id, seed);
}

void peer_flood(leecher *l)
{
    lk_flood(&l->lk);
}

void peer_request_more(leecher *l)
{
    if (l->conn && l->connected)
        lk_request_more(&l->lk);
}

void peer_completed(leecher *l)
{
    lk_complete(&l->lk);
}

void peer_feed_part(leecher *l, const uint8_t *p, size_t n)
{
    lk_feed(&l->lk, p, n);
}

void peer_on_connected(leecher *l)
{
    l->connected = true;
    lk_connected(&l->lk);
    evlog_line(l->world->log, sim_now(l->world), "peer p%u connected c%llu%s", l->id, (unsigned long long)l->conn->id,
               l->prof->behaviour == BEH_MUTE ? " (mute)" : "");
}

void peer_reset_protocol(leecher *l)
{
    l->connected = false;
    lk_connection_start(&l->lk);
}

void peer_conn_lost(leecher *l)
{
    lk_connection_lost(&l->lk);
}

void peer_send_keepalive(leecher *l)
{
    lk_keepalive(&l->lk);
}
