/* leech: owns one leecher's protocol logic (see leech.h): what it sends and how it reacts to what the seeder sends,
 * its request order and pipeline, block verification, and the misbehaviours (idle, silent, half-open, flooder,
 * invalid, mute, non-reader). The request strategy and the reaction to choke, unchoke and reject are those of
 * backend-sim/peer_wire.c. */
#include "leech.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- layout ---------------- */

int lk_torrent_layout(lk_torrent *t, uint64_t size, uint32_t piece_length)
{
    if (piece_length < LK_BLOCK || size == 0)
        return -1;
    uint64_t pieces = (size + piece_length - 1) / piece_length;
    if (pieces > UINT32_MAX / 64)
        return -1;
    t->size = size;
    t->piece_length = piece_length;
    t->piece_count = (uint32_t)pieces;
    t->bpp = (piece_length + LK_BLOCK - 1) / LK_BLOCK;
    uint64_t last = size - (uint64_t)(t->piece_count - 1) * piece_length;
    t->nblocks = (t->piece_count - 1) * t->bpp + (uint32_t)((last + LK_BLOCK - 1) / LK_BLOCK);
    return 0;
}

uint32_t lk_block_len(const lk_torrent *t, uint32_t b)
{
    uint32_t piece = b / t->bpp, begin = (b % t->bpp) * LK_BLOCK;
    uint64_t psize = piece + 1 < t->piece_count ? t->piece_length
                                                : t->size - (uint64_t)(t->piece_count - 1) * t->piece_length;
    uint64_t left = psize - begin;
    return left < LK_BLOCK ? (uint32_t)left : LK_BLOCK;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---------------- sending ---------------- */

static void send_simple(lk_peer *l, wire_msg_type t)
{
    uint8_t b[WIRE_SIMPLE_LEN];
    l->io.send(l->io.ctx, b, wire_encode_simple(b, t));
}

static void send_request(lk_peer *l, uint32_t index, uint32_t begin, uint32_t len)
{
    uint8_t b[WIRE_BLOCK_MSG_LEN];
    l->io.send(l->io.ctx, b, wire_encode_block(b, WIRE_REQUEST, index, begin, len));
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

static bool has_block(const lk_peer *l, uint32_t b)
{
    return l->have[b / 8] >> (b % 8) & 1;
}

static bool outstanding(const lk_peer *l, uint32_t b)
{
    for (uint32_t i = 0; i < l->nout; i++)
        if (l->out[i] == b)
            return true;
    return false;
}

static uint32_t *push(uint32_t *v, uint32_t *n, uint32_t *cap, uint32_t x)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        v = realloc(v, (size_t)*cap * sizeof *v);
        if (!v)
            abort();
    }
    v[(*n)++] = x;
    return v;
}

static uint32_t next_block(lk_peer *l)
{
    while (l->nrequeue) {
        uint32_t b = l->requeue[--l->nrequeue];
        if (!has_block(l, b) && !outstanding(l, b))
            return b;
    }
    while (l->cursor < l->t->nblocks) {
        uint32_t b = l->par->strategy == LK_RANDOM ? (uint32_t)perm_at(&l->order, l->cursor) : (uint32_t)l->cursor;
        l->cursor++;
        if (!has_block(l, b) && !outstanding(l, b))
            return b;
    }
    return LK_NO_BLOCK;
}

static bool out_remove(lk_peer *l, uint32_t b)
{
    for (uint32_t i = 0; i < l->nout; i++)
        if (l->out[i] == b) {
            l->out[i] = l->out[--l->nout];
            return true;
        }
    return false;
}

static void request_more(lk_peer *l)
{
    lk_behaviour beh = l->par->behaviour;
    if (!l->unchoked || l->conn_ended || beh == LK_IDLE || beh == LK_SILENT || beh == LK_INVALID ||
        beh == LK_FLOODER || l->stopped_reading)
        return;
    const lk_torrent *t = l->t;
    while (l->nout < l->par->pipeline) {
        uint32_t b = next_block(l);
        if (b == LK_NO_BLOCK)
            break;
        l->out = push(l->out, &l->nout, &l->capout, b);
        send_request(l, b / t->bpp, (b % t->bpp) * LK_BLOCK, lk_block_len(t, b));
    }
    if (beh == LK_NON_READER && l->nout > 0)
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
    const lk_torrent *t = l->t;
    for (uint32_t i = 0; i < l->par->flood_rate; i++) {
        uint32_t b = (uint32_t)(splitmix(&l->rng) % t->nblocks);
        send_request(l, b / t->bpp, (b % t->bpp) * LK_BLOCK, lk_block_len(t, b));
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
        send_request(l, l->t->piece_count + 7, 0, LK_BLOCK);
        break;
    case LK_INVALID_BEGIN:
        send_request(l, 0, l->t->piece_length, LK_BLOCK);
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
    wire_decoder_set_piece_count(&l->dec, l->t->piece_count);
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

/* The block's data against its verified digest; false on a mismatch. */
static bool verify_block(const lk_peer *l, uint32_t b, const uint8_t *data, uint32_t len)
{
    if (!l->t->block_sha1)
        return true;
    uint8_t d[20];
    SHA1(data, len, d);
    return memcmp(d, l->t->block_sha1[b], 20) == 0;
}

static void on_piece(lk_peer *l, const wire_msg *m)
{
    const lk_torrent *t = l->t;
    uint32_t index = m->u.piece.index, begin = m->u.piece.begin, len = m->u.piece.len;
    if (begin % LK_BLOCK != 0 || begin / LK_BLOCK >= t->bpp) {
        protocol_error(l);
        return;
    }
    uint32_t b = index * t->bpp + begin / LK_BLOCK;
    if (b >= t->nblocks || len != lk_block_len(t, b)) {
        protocol_error(l);
        return;
    }
    if (!out_remove(l, b))
        l->unrequested++;
    if (!verify_block(l, b, m->u.piece.data, len)) {
        l->bad_blocks++;
        protocol_error(l);
        return;
    }
    if (has_block(l, b)) {
        l->dup_blocks++;
    } else {
        l->have[b / 8] |= (uint8_t)(1u << (b % 8));
        l->received++;
        l->bytes += len;
    }
    if (l->par->behaviour == LK_FLOODER)
        return;
    if (l->par->behaviour == LK_HALF_OPEN && l->bytes >= l->par->vanish_after) {
        l->vanished = true;
        end_conn(l, LK_END_VANISHED, false);
        return;
    }
    if (l->received == t->nblocks) {
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
    if (!l->fast) {
        for (uint32_t i = 0; i < l->nout; i++)
            l->requeue = push(l->requeue, &l->nrequeue, &l->caprequeue, l->out[i]);
        l->nout = 0;
    }
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
        uint32_t b = m->u.block.index * l->t->bpp + m->u.block.begin / LK_BLOCK;
        if (l->par->behaviour != LK_FLOODER && b < l->t->nblocks && out_remove(l, b)) {
            l->requeue = push(l->requeue, &l->nrequeue, &l->caprequeue, b);
            request_more(l);
        }
        break;
    }
    default:
        break;
    }
}

void lk_feed(lk_peer *l, const uint8_t *p, size_t n)
{
    if (l->par->behaviour == LK_MUTE)
        return; /* it never sent its handshake: whatever comes, it says nothing (nor decodes) */
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
    l->have = calloc((t->nblocks + 7) / 8, 1);
    if (!l->have)
        abort();
    perm_init(&l->order, t->nblocks, seed);
    wire_decoder_init(&l->dec, NULL);
}

void lk_free(lk_peer *l)
{
    wire_decoder_free(&l->dec);
    free(l->have);
    free(l->out);
    free(l->requeue);
    l->have = NULL;
    l->out = l->requeue = NULL;
}

void lk_connection_start(lk_peer *l)
{
    wire_decoder_free(&l->dec);
    wire_limits lim = {.max_msg_len = 0, .piece_count = 0, .skip_handshake = false, .allow_unknown = true};
    wire_decoder_init(&l->dec, &lim);
    l->conn_ended = l->got_handshake = l->unchoked = l->fast = l->ext = false;
    for (uint32_t i = 0; i < l->nout; i++)
        l->requeue = push(l->requeue, &l->nrequeue, &l->caprequeue, l->out[i]);
    l->nout = 0;
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
    l->io.send(l->io.ctx, hs, wire_encode_handshake(hs, reserved, l->t->info_hash, peer_id));
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
    l->io.send(l->io.ctx, b, wire_encode_keepalive(b));
}
