/* leech: owns one leecher's protocol logic (see leech.h): what it sends and how it reacts to what the seeder sends,
 * its request order and pipeline, block verification, and the misbehaviours (idle, silent, half-open, flooder,
 * invalid, mute, non-reader). The request strategy and the reaction to choke, unchoke and reject are those of
 * backend-sim/peer_wire.c. */
#include "leech.h"
#include "leech_mse.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- sending ---------------- */

static void send_simple(lk_peer *l, wire_msg_type t)
{
    uint8_t b[WIRE_SIMPLE_LEN];
    lk_send(l, b, wire_encode_simple(b, t));
}

static void send_request(lk_peer *l, uint32_t index, uint32_t begin, uint32_t len)
{
    uint8_t b[WIRE_BLOCK_MSG_LEN];
    lk_send(l, b, wire_encode_block(b, WIRE_REQUEST, index, begin, len));
}

static void send_extended(lk_peer *l, uint8_t id, const void *payload, size_t len)
{
    uint8_t h[WIRE_EXTENDED_HEADER_LEN];
    lk_send(l, h, wire_encode_extended_header(h, id, (uint32_t)len));
    lk_send(l, payload, len);
}

static void end_conn(lk_peer *l, lk_end why, bool fin)
{
    if (l->conn_ended)
        return;
    l->conn_ended = true;
    l->io.end(l->io.ctx, why, fin);
}

static void protocol_error(lk_peer *l)
{
    l->protocol_errors++;
    end_conn(l, LK_END_CLOSED_BY_SEEDER, true);
}

/* ---------------- blocks and requests ---------------- */

static void request_more(lk_peer *l)
{
    lk_behaviour beh = l->par->behaviour;
    if (!l->unchoked || l->meta.wanted || l->conn_ended || beh == LK_IDLE || beh == LK_SILENT || beh == LK_INVALID ||
        beh == LK_FLOODER || l->stopped_reading)
        return;
    const lk_layout *t = &l->t->lay;
    while (l->book.nout < l->par->pipeline) {
        uint32_t b = lk_book_next(&l->book, t);
        if (b == LK_NO_BLOCK)
            break;
        lk_book_ask(&l->book, b);
        send_request(l, b / t->bpp, (b % t->bpp) * LK_BLOCK, lk_layout_block_len(t, b));
    }
    if (beh == LK_NON_READER && l->book.nout > 0)
        l->stopped_reading = true; /* one burst, then it never reads again */
}

bool lk_flooding(const lk_peer *l)
{
    return l->par->behaviour == LK_FLOODER && l->got_handshake && !l->conn_ended;
}

void lk_flood(lk_peer *l)
{
    if (!lk_flooding(l))
        return;
    const lk_layout *t = &l->t->lay;
    for (uint32_t i = 0; i < l->par->flood_rate; i++) {
        uint32_t b = (uint32_t)(lk_splitmix(&l->rng) % t->nblocks);
        send_request(l, b / t->bpp, (b % t->bpp) * LK_BLOCK, lk_layout_block_len(t, b));
        l->flood_sent++;
    }
}

static void send_invalid(lk_peer *l)
{
    switch (l->par->invalid) {
    case LK_INVALID_LENGTH:
        send_request(l, 0, 0, 1u << 20);
        break;
    case LK_INVALID_INDEX:
        send_request(l, l->t->lay.piece_count + 7, 0, LK_BLOCK);
        break;
    case LK_INVALID_BEGIN:
        send_request(l, 0, l->t->lay.piece_length, LK_BLOCK);
        break;
    }
}

/* ---------------- incoming messages ---------------- */

static void on_handshake(lk_peer *l, const wire_msg *m)
{
    if (memcmp(m->u.handshake.info_hash, l->t->info_hash, 20) != 0) {
        protocol_error(l);
        return;
    }
    l->got_handshake = true;
    l->fast = l->par->fast && wire_reserved_has_fast(m->u.handshake.reserved);
    l->ext = wire_reserved_has_extended(m->u.handshake.reserved);
    if (!l->meta.wanted)
        wire_decoder_set_piece_count(&l->dec, l->t->lay.piece_count);
    if (l->meta.wanted) { /* a magnet user: the metadata first */
        if (!l->ext) {
            l->meta_failures++;
            protocol_error(l);
            return;
        }
        size_t n;
        const char *hs = lk_meta_our_handshake(&n);
        send_extended(l, 0, hs, n);
        return;
    }
    switch (l->par->behaviour) {
    case LK_IDLE:
    case LK_MUTE: /* it never sent its handshake: it says nothing at all */
        break;
    case LK_INVALID:
        send_simple(l, WIRE_INTERESTED);
        send_invalid(l);
        break;
    case LK_FLOODER:
        send_simple(l, WIRE_INTERESTED);
        lk_flood(l);
        break;
    default:
        send_simple(l, WIRE_INTERESTED);
        break;
    }
}

/* The block's data against the verified data or its verified digest; false on a mismatch. */
static bool verify_block(const lk_peer *l, uint32_t b, const uint8_t *data, uint32_t len)
{
    const lk_layout *t = &l->t->lay;
    if (l->t->block_data)
        return memcmp(data, l->t->block_data + (uint64_t)(b / t->bpp) * t->piece_length + (size_t)(b % t->bpp) * LK_BLOCK,
                      len) == 0;
    if (!l->t->block_sha1)
        return true;
    uint8_t d[20];
    SHA1(data, len, d);
    return memcmp(d, l->t->block_sha1[b], 20) == 0;
}

/* A ut_metadata status (meta.h) acted upon: requests sent, or the download begun, or the connection ended. */
static void on_meta_status(lk_peer *l, lk_meta_status st)
{
    switch (st) {
    case LK_META_REQUEST:
        for (uint32_t i = 0; i < lk_meta_pieces(&l->meta); i++) {
            char buf[64];
            send_extended(l, l->meta.seeder_id, buf, lk_meta_request(i, buf, sizeof buf));
        }
        break;
    case LK_META_DONE:
        if (l->meta.total_length != l->t->lay.size || l->meta.piece_length != l->t->lay.piece_length) {
            l->meta_failures++; /* a dictionary that hashes right cannot describe another layout: never happens */
            protocol_error(l);
            return;
        }
        wire_decoder_set_piece_count(&l->dec, l->t->lay.piece_count);
        send_simple(l, WIRE_INTERESTED);
        request_more(l); /* unchoked meanwhile: the pipeline starts at once */
        break;
    case LK_META_FAILED:
        l->meta_failures++;
        protocol_error(l);
        break;
    case LK_META_BAD:
        protocol_error(l);
        break;
    case LK_META_OK:
        break;
    }
}

static void on_extended(lk_peer *l, const wire_msg *m)
{
    const char *why = NULL;
    if (m->u.ext.id == 0)
        on_meta_status(l, lk_meta_on_ext_handshake(&l->meta, m->u.ext.payload, m->u.ext.len, &why));
    else if (m->u.ext.id == LK_META_OUR_ID)
        on_meta_status(l, lk_meta_on_message(&l->meta, m->u.ext.payload, m->u.ext.len, &why));
}

static void on_piece(lk_peer *l, const wire_msg *m)
{
    const lk_layout *t = &l->t->lay;
    uint32_t index = m->u.piece.index, begin = m->u.piece.begin, len = m->u.piece.len;
    if (l->meta.wanted || begin % LK_BLOCK != 0 || begin / LK_BLOCK >= t->bpp) {
        protocol_error(l);
        return;
    }
    uint32_t b = index * t->bpp + begin / LK_BLOCK;
    if (b >= t->nblocks || len != lk_layout_block_len(t, b)) {
        protocol_error(l);
        return;
    }
    if (!lk_book_answered(&l->book, b))
        l->unrequested++;
    if (!verify_block(l, b, m->u.piece.data, len)) {
        l->bad_blocks++;
        protocol_error(l);
        return;
    }
    if (!lk_book_take(&l->book, b))
        l->dup_blocks++;
    else
        l->bytes += len;
    if (l->par->behaviour == LK_FLOODER)
        return;
    if (l->par->behaviour == LK_HALF_OPEN && l->bytes >= l->par->vanish_after) {
        l->vanished = true;
        end_conn(l, LK_END_VANISHED, false);
        return;
    }
    if (l->book.received == t->nblocks) {
        l->completed = true;
        end_conn(l, LK_END_COMPLETE, true);
        return;
    }
    request_more(l);
}

static void on_choke(lk_peer *l, bool unchoke)
{
    if (unchoke) {
        /* with the fast extension every request is answered (piece or reject): those outstanding may be served */
        if (!l->unchoked) {
            l->unchokes++;
            if (l->io.choke)
                l->io.choke(l->io.ctx, true);
        }
        l->unchoked = true;
        request_more(l);
        return;
    }
    if (!l->unchoked)
        return;
    l->unchoked = false;
    l->chokes++;
    if (l->io.choke)
        l->io.choke(l->io.ctx, false);
    if (!l->fast)
        lk_book_requeue_all(&l->book);
}

static void on_wire(lk_peer *l, const wire_msg *m)
{
    switch (m->type) {
    case WIRE_HANDSHAKE:
        on_handshake(l, m);
        break;
    case WIRE_UNCHOKE:
    case WIRE_CHOKE:
        on_choke(l, m->type == WIRE_UNCHOKE);
        break;
    case WIRE_PIECE:
        on_piece(l, m);
        break;
    case WIRE_REJECT: {
        l->rejects++;
        uint32_t b = m->u.block.index * l->t->lay.bpp + m->u.block.begin / LK_BLOCK;
        if (l->par->behaviour != LK_FLOODER && b < l->t->lay.nblocks && lk_book_answered(&l->book, b)) {
            lk_book_requeue(&l->book, b);
            request_more(l);
        }
        break;
    }
    case WIRE_EXTENDED:
        on_extended(l, m);
        break;
    default:
        break;
    }
}

/* Bytes received while the MSE handshake is pending: those after it, or NULL (need more, or failed: ended). */
static const uint8_t *past_mse(lk_peer *l, const uint8_t *p, size_t *n)
{
    long used = lk_mse_feed(l, p, *n);
    if (used < 0) {
        l->mse_failures++;
        protocol_error(l);
        return NULL;
    }
    *n -= (size_t)used;
    return *n > 0 && l->mse.done ? p + used : NULL;
}

void lk_feed(lk_peer *l, const uint8_t *p, size_t n)
{
    if (l->par->behaviour == LK_MUTE || l->conn_ended)
        return; /* a mute peer never sent its handshake: whatever comes, it says nothing (nor decodes) */
    if (l->par->encryption != LK_ENC_NONE && !l->mse.done && (p = past_mse(l, p, &n)) == NULL)
        return;
    p = lk_mse_link_decrypt(&l->mse, p, n);
    while (n > 0 && !l->conn_ended && !l->stopped_reading) {
        size_t used = 0;
        wire_msg m;
        wire_status st = wire_feed(&l->dec, p, n, &used, &m);
        p += used;
        n -= used;
        if (st == WIRE_ERROR) {
            protocol_error(l);
            return;
        }
        if (st == WIRE_NEED_MORE)
            break;
        on_wire(l, &m);
    }
    wire_decoder_trim(&l->dec);
}

/* ---------------- life ---------------- */

void lk_init(lk_peer *l, const lk_params *par, const lk_torrent *t, lk_io io, uint32_t id, uint64_t seed)
{
    memset(l, 0, sizeof *l);
    l->par = par;
    l->t = t;
    l->io = io;
    l->id = id;
    l->rng = seed ^ 0x666c6f6f64ull;
    l->mse_rng = seed ^ 0x6d73655f6b6579ull;
    if (par->behaviour == LK_MAGNET)
        lk_meta_init(&l->meta, t->info_hash);
    lk_book_init(&l->book, &t->lay, par->strategy == LK_RANDOM, seed);
    wire_decoder_init(&l->dec, NULL);
}

void lk_free(lk_peer *l)
{
    lk_mse_link_free(&l->mse);
    lk_meta_free(&l->meta);
    wire_decoder_free(&l->dec);
    lk_book_free(&l->book);
}

void lk_connection_start(lk_peer *l)
{
    wire_decoder_free(&l->dec);
    wire_limits lim = {.max_msg_len = 0, .piece_count = 0, .skip_handshake = false, .allow_unknown = true};
    wire_decoder_init(&l->dec, &lim);
    l->conn_ended = l->got_handshake = l->unchoked = l->fast = l->ext = false;
    lk_mse_link_reset(&l->mse);
    lk_book_requeue_all(&l->book);
}

void lk_connected(lk_peer *l)
{
    if (l->par->behaviour == LK_MUTE)
        return;
    uint8_t reserved[WIRE_RESERVED_LEN] = {0}, peer_id[20], hs[WIRE_HANDSHAKE_LEN];
    if (l->par->fast)
        wire_reserved_set_fast(reserved);
    wire_reserved_set_extended(reserved);
    char id[21];
    snprintf(id, sizeof id, "-SW0100-%012u", l->id);
    memcpy(peer_id, id, 20);
    size_t hl = wire_encode_handshake(hs, reserved, l->t->info_hash, peer_id);
    if (l->par->encryption != LK_ENC_NONE)
        lk_mse_start(l, hs, hl); /* the handshake travels as the initial payload */
    else
        l->io.send(l->io.ctx, hs, hl);
}

bool lk_sends_keepalives(const lk_peer *l)
{
    switch (l->par->behaviour) {
    case LK_NORMAL:
    case LK_SLOW_READER:
    case LK_MAGNET:
    case LK_HALF_OPEN:
    case LK_FLOODER:
    case LK_NON_READER:
        return true;
    default:
        return false;
    }
}

void lk_keepalive(lk_peer *l)
{
    uint8_t b[WIRE_KEEPALIVE_LEN];
    lk_send(l, b, wire_encode_keepalive(b));
}
