/* peer_wire: owns what a simulated peer says and understands — the BitTorrent protocol written against the wire
 * codec (core/wire.h) and bencode, never the seeding engine: handshake, interest, requests by strategy and pipeline,
 * choke/unchoke and reject handling, the magnet users' ut_metadata exchange (through leech/meta.h, shared with
 * hekate-swarm), and the misbehaviours of scenario.h
 * (idle, silent, half-open, flooder, invalid, mute, non-reader). See peer_wire.h. */
#include "peer_wire.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metainfo.h"
#include "trade.h"
#include "world.h"

#define SIM_BLOCK 16384u

bool peer_sends_keepalives(const leecher *l)
{
    switch (l->prof->behaviour) {
    case BEH_NORMAL:
    case BEH_SLOW_READER:
    case BEH_MAGNET:
    case BEH_HALF_OPEN:
    case BEH_FLOODER:
    case BEH_NON_READER:
        return true;
    default:
        return false;
    }
}

/* ---------------- sending ---------------- */

static void send_raw(leecher *l, const uint8_t *b, size_t n)
{
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

/* BitTorrent bytes: an encrypted peer sends nothing before its MSE handshake is done, then through its cipher. */
static void send_bytes(leecher *l, const uint8_t *b, size_t n)
{
    if (l->prof->encryption == SIM_ENC_NONE) {
        send_raw(l, b, n);
        return;
    }
    if (!l->mse.done)
        return;
    send_raw(l, lk_mse_link_encrypt(&l->mse, b, n), n);
}

static void send_simple(leecher *l, wire_msg_type t)
{
    uint8_t b[WIRE_SIMPLE_LEN];
    send_bytes(l, b, wire_encode_simple(b, t));
}

static void send_request(leecher *l, uint32_t index, uint32_t begin, uint32_t len)
{
    uint8_t b[WIRE_BLOCK_MSG_LEN];
    send_bytes(l, b, wire_encode_block(b, WIRE_REQUEST, index, begin, len));
}

static void send_extended(leecher *l, uint8_t id, const void *payload, size_t len)
{
    uint8_t h[WIRE_EXTENDED_HEADER_LEN];
    size_t n = wire_encode_extended_header(h, id, (uint32_t)len);
    send_bytes(l, h, n);
    send_bytes(l, payload, len);
}

static void peer_protocol_error(leecher *l, const char *why)
{
    l->protocol_errors++;
    evlog_line(l->world->log, sim_now(l->world), "peer p%u error %s", l->id, why);
    leecher_end_conn(l, END_CLOSED_BY_SEEDER, true);
}

/* ---------------- blocks and requests ---------------- */

void peer_setup_layout(leecher *l, uint64_t size, uint32_t piece_length)
{
    if (lk_book_layout(&l->lay, size, piece_length) < 0)
        abort(); /* the scenario loader and mi_parse bound both */
    lk_book_init(&l->book, &l->lay, l->prof->strategy == STRAT_RANDOM, prng_next(&l->rng));
}

static uint32_t block_len(const leecher *l, uint32_t b)
{
    return lk_layout_block_len(&l->lay, b);
}

/* Block b's request is answered (a piece or a reject): false if it was not outstanding; else how long it waited
 * feeds [expect] request_latency_max. */
static bool answered(leecher *l, uint32_t b)
{
    uint64_t at;
    if (!lk_book_answered_at(&l->book, b, &at))
        return false;
    if (l->trade)
        trade_seeder_answered(l, b);
    hk_time waited = sim_now(l->world) - at;
    if (waited > l->world->request_latency_max)
        l->world->request_latency_max = waited;
    return true;
}

/* Piece `piece` is not offered by the seeder (piece verification): its blocks not yet received are no longer asked
 * for; they count toward completion as lacking (leech/book.h). */
static void mark_lacking(leecher *l, uint32_t piece)
{
    if (lk_book_lack_piece(&l->book, piece))
        evlog_line(l->world->log, sim_now(l->world), "peer p%u lacks piece %u", l->id, piece);
}

static void request_more(leecher *l)
{
    sim_behaviour beh = l->prof->behaviour;
    if (!l->unchoked || l->need_meta || l->conn_ended || beh == BEH_IDLE || beh == BEH_SILENT ||
        beh == BEH_INVALID || beh == BEH_FLOODER || l->stopped_reading)
        return;
    while ((l->trade ? trade_seeder_out(l) : l->book.nout) < l->prof->pipeline) {
        uint32_t b = l->trade ? trade_seeder_pick(l) : lk_book_next(&l->book, &l->lay);
        if (b == LK_NO_BLOCK)
            break;
        lk_book_ask_at(&l->book, b, sim_now(l->world));
        if (l->trade)
            trade_seeder_asked(l, b);
        send_request(l, b / l->lay.bpp, (b % l->lay.bpp) * SIM_BLOCK, block_len(l, b));
    }
    if (beh == BEH_NON_READER && l->book.nout > 0) {
        l->stopped_reading = true; /* one burst, then it never reads again */
        evlog_line(l->world->log, sim_now(l->world), "peer p%u stops reading", l->id);
    }
}

void peer_flood(leecher *l)
{
    if (l->conn_ended || !l->got_handshake || l->lay.nblocks == 0)
        return;
    for (uint32_t i = 0; i < l->prof->flood_rate; i++) {
        uint32_t b = (uint32_t)prng_below(&l->rng, l->lay.nblocks);
        send_request(l, b / l->lay.bpp, (b % l->lay.bpp) * SIM_BLOCK, block_len(l, b));
        l->flood_sent++;
    }
}

static void send_invalid(leecher *l)
{
    switch (l->prof->invalid) {
    case INVALID_LENGTH:
        send_request(l, 0, 0, 1u << 20);
        break;
    case INVALID_INDEX:
        send_request(l, l->lay.piece_count + 7, 0, SIM_BLOCK);
        break;
    case INVALID_BEGIN:
        send_request(l, 0, l->lay.piece_length, SIM_BLOCK);
        break;
    }
}

void peer_request_more(leecher *l)
{
    if (l->conn && l->connected)
        request_more(l);
}

void peer_completed(leecher *l)
{
    l->completed = true;
    l->complete_at = sim_now(l->world);
    evlog_line(l->world->log, l->complete_at, "peer p%u complete", l->id);
    leecher_end_conn(l, END_COMPLETE, true);
}

/* ---------------- metadata (magnet users: leech/meta.c) ---------------- */

/* The metadata is complete and checked: the torrent's layout from it, then interested. */
static void meta_done(leecher *l)
{
    peer_setup_layout(l, l->meta.total_length, l->meta.piece_length);
    l->need_meta = false;
    wire_decoder_set_piece_count(&l->dec, l->lay.piece_count);
    evlog_line(l->world->log, sim_now(l->world), "peer p%u metadata %u bytes", l->id, l->meta.size);
    send_simple(l, WIRE_INTERESTED);
    l->interested_sent = true;
}

static void on_meta_status(leecher *l, lk_meta_status st, const char *why)
{
    switch (st) {
    case LK_META_REQUEST:
        for (uint32_t i = 0; i < lk_meta_pieces(&l->meta); i++) {
            char buf[64];
            send_extended(l, l->meta.seeder_id, buf, lk_meta_request(i, buf, sizeof buf));
        }
        break;
    case LK_META_DONE:
        meta_done(l);
        break;
    case LK_META_FAILED:
        l->meta_fail++;
        peer_protocol_error(l, why);
        break;
    case LK_META_BAD:
        peer_protocol_error(l, why);
        break;
    case LK_META_OK:
        break;
    }
}

/* ---------------- incoming messages ---------------- */

static void on_handshake(leecher *l, const wire_msg *m)
{
    if (memcmp(m->u.handshake.info_hash, l->world->info_hashes[l->torrent], 20) != 0) {
        peer_protocol_error(l, "handshake for another torrent");
        return;
    }
    l->got_handshake = true;
    l->fast = l->prof->fast && wire_reserved_has_fast(m->u.handshake.reserved);
    l->ext = wire_reserved_has_extended(m->u.handshake.reserved);
    if (!l->need_meta)
        wire_decoder_set_piece_count(&l->dec, l->lay.piece_count);
    switch (l->prof->behaviour) {
    case BEH_IDLE:
        break;
    case BEH_MAGNET:
        if (l->need_meta) {
            if (!l->ext) {
                l->meta_fail++;
                peer_protocol_error(l, "seeder has no extension protocol");
                return;
            }
            size_t hl;
            const char *hs = lk_meta_our_handshake(&hl);
            send_extended(l, 0, hs, hl);
            break;
        }
        send_simple(l, WIRE_INTERESTED);
        l->interested_sent = true;
        break;
    case BEH_INVALID:
        send_simple(l, WIRE_INTERESTED);
        send_invalid(l);
        break;
    case BEH_FLOODER:
        send_simple(l, WIRE_INTERESTED);
        peer_flood(l);
        l->next_flood = sim_now(l->world) + HK_NS_PER_SEC;
        break;
    default:
        send_simple(l, WIRE_INTERESTED);
        l->interested_sent = true;
        break;
    }
}

static void on_piece(leecher *l, const wire_msg *m)
{
    uint32_t index = m->u.piece.index, begin = m->u.piece.begin, len = m->u.piece.len;
    if (l->need_meta || begin % SIM_BLOCK != 0 || begin / SIM_BLOCK >= l->lay.bpp) {
        peer_protocol_error(l, "piece at an offset never requested");
        return;
    }
    uint32_t b = index * l->lay.bpp + begin / SIM_BLOCK;
    if (b >= l->lay.nblocks || len != block_len(l, b)) {
        peer_protocol_error(l, "piece of the wrong length");
        return;
    }
    if (!answered(l, b)) {
        l->unrequested++;
        evlog_line(l->world->log, sim_now(l->world), "peer p%u unrequested %u/%u", l->id, index, begin);
    }
    if (!lk_book_take(&l->book, b)) {
        l->dup_blocks++;
    } else {
        if (l->piece_rejects)
            l->piece_rejects[index] = 0;
        l->bytes += len;
        l->world->payload_received += len; /* upload rate caps ([expect] rate_cap) */
        swarm_note_block(l->world, l->torrent, b);
        if (l->trade)
            trade_block_taken(l, b);
    }
    if (l->prof->behaviour == BEH_FLOODER)
        return;
    if (l->prof->behaviour == BEH_HALF_OPEN && l->bytes >= l->prof->vanish_after) {
        /* gone without a FIN: no ACK, no message, ever again */
        l->vanished = true;
        l->conn->p_vanished = true;
        evlog_line(l->world->log, sim_now(l->world), "peer p%u vanish", l->id);
        leecher_end_conn(l, END_VANISHED, false);
        return;
    }
    if (lk_book_done(&l->book)) {
        peer_completed(l);
        return;
    }
    request_more(l);
}

/* Piece verification only: the seeder's bitfield leaves out the pieces that failed their hash. */
static void on_bitfield(leecher *l, const wire_msg *m)
{
    if (l->world->sc->seeder.verify == SIM_VERIFY_OFF || l->need_meta || m->u.bitfield.len * 8u < l->lay.piece_count)
        return;
    for (uint32_t i = 0; i < l->lay.piece_count; i++)
        if (!(m->u.bitfield.bits[i / 8] & (0x80u >> (i % 8))))
            mark_lacking(l, i);
}

#define LACK_REJECTS 4 /* rejects of a piece in a row (verification on) after which it is taken as not offered */

/* Piece verification only: a piece rejected again and again is one the seeder refuses (it failed its hash). true
 * when the peer now takes it as lacking (and may have completed). */
static bool reject_gives_up(leecher *l, uint32_t piece)
{
    if (l->world->sc->seeder.verify == SIM_VERIFY_OFF || piece >= l->lay.piece_count || !l->unchoked)
        return false; /* a choke rejects what was queued (after the CHOKE): not a refusal of the piece */
    if (!l->piece_rejects && !(l->piece_rejects = calloc(l->lay.piece_count, 1)))
        abort();
    if (++l->piece_rejects[piece] < LACK_REJECTS)
        return false;
    mark_lacking(l, piece);
    if (lk_book_done(&l->book) && !l->completed)
        peer_completed(l);
    return true;
}

static void on_wire(leecher *l, const wire_msg *m)
{
    switch (m->type) {
    case WIRE_HANDSHAKE:
        on_handshake(l, m);
        break;
    case WIRE_BITFIELD:
        on_bitfield(l, m);
        l->got_have = true;
        break;
    case WIRE_HAVE_ALL:
    case WIRE_HAVE:
        l->got_have = true;
        break;
    case WIRE_UNCHOKE:
        /* With the fast extension every request is answered (piece or reject), choked or not, so requests still
         * outstanding here are not lost: they may be served now. Without it, the choke dropped them (below). A
         * seeder that silently drops requests of a fast peer leaves it stuck: the scenario shows it. */
        l->unchoked = true;
        request_more(l);
        break;
    case WIRE_CHOKE:
        if (l->unchoked) {
            l->unchoked = false;
            if (!l->fast && l->trade)
                trade_seeder_requeue_all(l); /* the links' requests stand */
            else if (!l->fast)
                lk_book_requeue_all(&l->book);
        }
        break;
    case WIRE_PIECE:
        on_piece(l, m);
        break;
    case WIRE_REJECT: {
        l->rejects++;
        uint32_t b = m->u.block.index * l->lay.bpp + m->u.block.begin / SIM_BLOCK;
        if (l->prof->behaviour != BEH_FLOODER && b < l->lay.nblocks && answered(l, b)) {
            if (reject_gives_up(l, m->u.block.index) && l->conn_ended)
                break; /* it completed without the piece */
            if (!lk_book_lacks(&l->book, b))
                lk_book_requeue(&l->book, b);
            request_more(l);
        }
        break;
    }
    case WIRE_EXTENDED:
    {
        const char *why = NULL;
        if (m->u.ext.id == 0)
            on_meta_status(l, lk_meta_on_ext_handshake(&l->meta, m->u.ext.payload, m->u.ext.len, &why), why);
        else if (m->u.ext.id == LK_META_OUR_ID)
            on_meta_status(l, lk_meta_on_message(&l->meta, m->u.ext.payload, m->u.ext.len, &why), why);
        break;
    }
    default:
        break;
    }
}

void peer_feed(leecher *l, const uint8_t *p, size_t n)
{
    while (n > 0 && !l->conn_ended) {
        size_t used = 0;
        wire_msg m;
        wire_status st = wire_feed(&l->dec, p, n, &used, &m);
        p += used;
        n -= used;
        if (st == WIRE_ERROR) {
            char why[160];
            wire_error_format(wire_decoder_error(&l->dec), why, sizeof why);
            peer_protocol_error(l, why);
            return;
        }
        if (st == WIRE_NEED_MORE)
            return;
        on_wire(l, &m);
    }
}

/* The MSE initiator (leech/mse_link.h) with the BitTorrent handshake as its IA: Ya and PadA go out at once. */
static void mse_start(leecher *l, const uint8_t *hs, size_t hl)
{
    uint8_t priv[HK_MSE_PRIV_LEN], pad[64];
    prng_fill(&l->rng, priv, sizeof priv);
    prng_fill(&l->rng, pad, sizeof pad);
    size_t n;
    const uint8_t *out = lk_mse_link_start(&l->mse, l->prof->encryption == SIM_ENC_RC4,
                                           l->world->info_hashes[l->torrent], priv, pad, hs, hl, &n);
    send_raw(l, out, n);
}

/* Bytes of the MSE handshake; returns how many were used (the rest is the BitTorrent stream), or n when more are
 * needed or the handshake failed (the connection then ends). */
static size_t mse_feed(leecher *l, const uint8_t *p, size_t n)
{
    if (!p || l->mse.done)
        return n;
    const uint8_t *out;
    size_t k;
    long used = lk_mse_link_feed(&l->mse, p, n, &out, &k);
    if (k)
        send_raw(l, out, k);
    if (used < 0) {
        peer_protocol_error(l, lk_mse_link_error(&l->mse));
        return n;
    }
    if (!l->mse.done)
        return n;
    evlog_line(l->world->log, sim_now(l->world), "peer p%u mse %s", l->id, hk_mse_method_name(l->mse.res.selected));
    return (size_t)used;
}

void peer_feed_part(leecher *l, const uint8_t *p, size_t n)
{
    if (l->prof->encryption != SIM_ENC_NONE && !l->mse.done) {
        size_t used = mse_feed(l, p, n);
        p += used;
        n -= used;
    }
    if (n == 0 || l->conn_ended)
        return;
    const uint8_t *d = lk_mse_link_decrypt(&l->mse, p, n); /* contentless bytes (NULL) stay zeros */
    peer_feed(l, d ? d : sim_zero_bytes(), n);
}

void peer_mse_reset(leecher *l)
{
    lk_mse_link_reset(&l->mse);
}

void peer_on_connected(leecher *l)
{
    l->connected = true;
    if (l->prof->behaviour == BEH_MUTE) {
        evlog_line(l->world->log, sim_now(l->world), "peer p%u connected c%llu (mute)", l->id,
                   (unsigned long long)l->conn->id);
        return;
    }
    uint8_t reserved[WIRE_RESERVED_LEN] = {0}, peer_id[20], hs[WIRE_HANDSHAKE_LEN];
    if (l->prof->fast)
        wire_reserved_set_fast(reserved);
    wire_reserved_set_extended(reserved);
    char id[21];
    snprintf(id, sizeof id, "-SM0100-%012u", l->id);
    memcpy(peer_id, id, 20);
    size_t hl = wire_encode_handshake(hs, reserved, l->world->info_hashes[l->torrent], peer_id);
    if (l->prof->encryption == SIM_ENC_NONE)
        send_bytes(l, hs, hl);
    else
        mse_start(l, hs, hl);
    evlog_line(l->world->log, sim_now(l->world), "peer p%u connected c%llu", l->id, (unsigned long long)l->conn->id);
}


void peer_reset_protocol(leecher *l)
{
    wire_decoder_free(&l->dec);
    wire_limits lim = {.max_msg_len = 0, .piece_count = 0, .skip_handshake = false, .allow_unknown = true};
    wire_decoder_init(&l->dec, &lim);
    l->connected = l->got_handshake = l->got_have = l->interested_sent = l->unchoked = false;
    l->fast = l->ext = false;
    peer_mse_reset(l);
    if (l->trade)
        trade_seeder_requeue_all(l); /* the links' requests stand */
    else
        lk_book_requeue_all(&l->book);
}

void peer_send_keepalive(leecher *l)
{
    uint8_t b[WIRE_KEEPALIVE_LEN];
    send_bytes(l, b, wire_encode_keepalive(b));
}
