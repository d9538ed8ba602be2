/* leech: owns one leecher's protocol logic (see leech.h): what it sends and how it reacts to what the seeder sends,
 * its request order and pipeline, block verification, pieces not offered, and the misbehaviours (idle, silent,
 * half-open, flooder, invalid, mute, non-reader). hekate-swarm and hekate-sim both run it; the host's optional hooks
 * (lk_hooks) are called through the small helpers below, each a no-op or the default when the hook is absent. */
#include "leech.h"
#include "leech_mse.h"

#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- the host's optional hooks ---------------- */

static const lk_hooks no_hooks;

static const lk_hooks *hooks(const lk_peer *l)
{
    return l->io.hooks ? l->io.hooks : &no_hooks;
}

/* One line of the host's event log, formatted only when the host keeps one. */
static void note(lk_peer *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(lk_peer *l, const char *fmt, ...)
{
    if (!hooks(l)->note)
        return;
    char line[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    hooks(l)->note(l->io.ctx, line);
}

static bool trading(const lk_peer *l)
{
    return hooks(l)->trade_pick != NULL;
}

static void requeue_all(lk_peer *l)
{
    if (trading(l))
        hooks(l)->trade_requeue_all(l->io.ctx); /* the links' requests stand */
    else
        lk_book_requeue_all(&l->book);
}

/* Block b's request is answered (a piece or a reject): false if it was not outstanding. */
static bool answered(lk_peer *l, uint32_t b)
{
    const lk_hooks *h = hooks(l);
    if (!h->now)
        return lk_book_answered(&l->book, b);
    uint64_t at;
    if (!lk_book_answered_at(&l->book, b, &at))
        return false;
    if (h->answered)
        h->answered(l->io.ctx, b, h->now(l->io.ctx) - at);
    return true;
}

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

/* The seeder broke the protocol (why: for the host's event log): the connection ends. */
static void protocol_error(lk_peer *l, const char *why)
{
    l->protocol_errors++;
    note(l, "error %s", why);
    end_conn(l, LK_END_CLOSED_BY_SEEDER, true);
}

void lk_complete(lk_peer *l)
{
    l->completed = true;
    note(l, "complete");
    end_conn(l, LK_END_COMPLETE, true);
}

/* ---------------- blocks and requests ---------------- */

static void request_more(lk_peer *l)
{
    lk_behaviour beh = l->par->behaviour;
    if (!l->unchoked || l->meta.wanted || l->conn_ended || beh == LK_IDLE || beh == LK_SILENT || beh == LK_INVALID ||
        beh == LK_FLOODER || l->stopped_reading)
        return;
    const lk_layout *t = &l->t->lay;
    const lk_hooks *h = hooks(l);
    bool trade = trading(l);
    while ((trade ? h->trade_out(l->io.ctx) : l->book.nout) < l->par->pipeline) {
        uint32_t b = trade ? h->trade_pick(l->io.ctx) : lk_book_next(&l->book, t);
        if (b == LK_NO_BLOCK)
            break;
        lk_book_ask_at(&l->book, b, h->now ? h->now(l->io.ctx) : 0);
        if (trade)
            h->trade_asked(l->io.ctx, b);
        send_request(l, b / t->bpp, (b % t->bpp) * LK_BLOCK, lk_layout_block_len(t, b));
    }
    if (beh == LK_NON_READER && l->book.nout > 0) {
        l->stopped_reading = true; /* one burst, then it never reads again */
        note(l, "stops reading");
    }
}

void lk_request_more(lk_peer *l)
{
    request_more(l);
}

bool lk_flooding(const lk_peer *l)
{
    return l->par->behaviour == LK_FLOODER && l->got_handshake && !l->conn_ended && l->t->lay.nblocks > 0;
}

void lk_flood(lk_peer *l)
{
    if (!lk_flooding(l))
        return;
    const lk_layout *t = &l->t->lay;
    for (uint32_t i = 0; i < l->par->flood_rate; i++) {
        uint32_t b = hooks(l)->random_below ? (uint32_t)hooks(l)->random_below(l->io.ctx, t->nblocks)
                                            : (uint32_t)(lk_splitmix(&l->rng) % t->nblocks);
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
        protocol_error(l, "handshake for another torrent");
        return;
    }
    l->got_handshake = true;
    if (hooks(l)->handshake)
        hooks(l)->handshake(l->io.ctx);
    l->fast = l->par->fast && wire_reserved_has_fast(m->u.handshake.reserved);
    l->ext = wire_reserved_has_extended(m->u.handshake.reserved);
    if (!l->meta.wanted)
        wire_decoder_set_piece_count(&l->dec, l->t->lay.piece_count);
    if (l->meta.wanted) { /* a magnet user: the metadata first */
        if (!l->ext) {
            l->meta_failures++;
            protocol_error(l, "seeder has no extension protocol");
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

/* The metadata is complete and checked: the request order (a host with hooks->metadata draws it now), then
 * interested. */
static void meta_done(lk_peer *l)
{
    if (hooks(l)->metadata) {
        uint64_t seed = hooks(l)->metadata(l->io.ctx, l->meta.total_length, l->meta.piece_length);
        lk_book_init(&l->book, &l->t->lay, l->par->strategy == LK_RANDOM, seed);
    }
    if (l->meta.total_length != l->t->lay.size || l->meta.piece_length != l->t->lay.piece_length) {
        l->meta_failures++; /* a dictionary that hashes right cannot describe another layout: never happens */
        protocol_error(l, "metadata of another layout");
        return;
    }
    wire_decoder_set_piece_count(&l->dec, l->t->lay.piece_count);
    note(l, "metadata %u bytes", l->meta.size);
    send_simple(l, WIRE_INTERESTED);
    request_more(l); /* unchoked meanwhile: the pipeline starts at once */
}

/* A ut_metadata status (meta.h) acted upon: requests sent, or the download begun, or the connection ended. */
static void on_meta_status(lk_peer *l, lk_meta_status st, const char *why)
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
        l->meta_failures++;
        protocol_error(l, why ? why : "metadata failed");
        break;
    case LK_META_BAD:
        protocol_error(l, why ? why : "bad metadata message");
        break;
    case LK_META_OK:
        break;
    }
}

static void on_extended(lk_peer *l, const wire_msg *m)
{
    const char *why = NULL;
    if (m->u.ext.id == 0) {
        lk_meta_status st = lk_meta_on_ext_handshake(&l->meta, m->u.ext.payload, m->u.ext.len, &why);
        on_meta_status(l, st, why);
    } else if (m->u.ext.id == LK_META_OUR_ID) {
        lk_meta_status st = lk_meta_on_message(&l->meta, m->u.ext.payload, m->u.ext.len, &why);
        on_meta_status(l, st, why);
    }
}

/* Piece `piece` is not offered by the seeder: its blocks not yet received are no longer asked for. */
static void lack(lk_peer *l, uint32_t piece)
{
    if (lk_book_lack_piece(&l->book, piece))
        note(l, "lacks piece %u", piece);
}

/* lack_refused: the seeder's bitfield leaves out the pieces that failed their hash. */
static void on_bitfield(lk_peer *l, const wire_msg *m)
{
    const lk_layout *t = &l->t->lay;
    if (!l->par->lack_refused || l->meta.wanted || m->u.bitfield.len * 8u < t->piece_count)
        return;
    for (uint32_t i = 0; i < t->piece_count; i++)
        if (!(m->u.bitfield.bits[i / 8] & (0x80u >> (i % 8))))
            lack(l, i);
}

/* lack_refused: a piece rejected again and again is one the seeder refuses. true when the peer now takes it as
 * lacking (and may have completed). */
static bool reject_gives_up(lk_peer *l, uint32_t piece)
{
    if (!l->par->lack_refused || piece >= l->t->lay.piece_count || !l->unchoked)
        return false; /* a choke rejects what was queued (after the CHOKE): not a refusal of the piece */
    if (!l->piece_rejects && !(l->piece_rejects = calloc(l->t->lay.piece_count, 1)))
        abort();
    if (++l->piece_rejects[piece] < LK_LACK_REJECTS)
        return false;
    lack(l, piece);
    if (lk_book_done(&l->book) && !l->completed)
        lk_complete(l);
    return true;
}

static void on_reject(lk_peer *l, const wire_msg *m)
{
    l->rejects++;
    uint32_t b = m->u.block.index * l->t->lay.bpp + m->u.block.begin / LK_BLOCK;
    if (l->par->behaviour == LK_FLOODER || b >= l->t->lay.nblocks || !answered(l, b))
        return;
    if (reject_gives_up(l, m->u.block.index) && l->conn_ended)
        return; /* it completed without the piece */
    if (!lk_book_lacks(&l->book, b))
        lk_book_requeue(&l->book, b);
    request_more(l);
}

static void on_piece(lk_peer *l, const wire_msg *m)
{
    const lk_layout *t = &l->t->lay;
    uint32_t index = m->u.piece.index, begin = m->u.piece.begin, len = m->u.piece.len;
    if (l->meta.wanted || begin % LK_BLOCK != 0 || begin / LK_BLOCK >= t->bpp) {
        protocol_error(l, "piece at an offset never requested");
        return;
    }
    uint32_t b = index * t->bpp + begin / LK_BLOCK;
    if (b >= t->nblocks || len != lk_layout_block_len(t, b)) {
        protocol_error(l, "piece of the wrong length");
        return;
    }
    if (!answered(l, b)) {
        l->unrequested++;
        note(l, "unrequested %u/%u", index, begin);
    }
    if (!verify_block(l, b, m->u.piece.data, len)) {
        l->bad_blocks++;
        protocol_error(l, "block fails its hash");
        return;
    }
    if (!lk_book_take(&l->book, b)) {
        l->dup_blocks++;
    } else {
        if (l->piece_rejects)
            l->piece_rejects[index] = 0;
        l->bytes += len;
        if (hooks(l)->taken)
            hooks(l)->taken(l->io.ctx, b, len);
    }
    if (l->par->behaviour == LK_FLOODER)
        return;
    if (l->par->behaviour == LK_HALF_OPEN && l->bytes >= l->par->vanish_after) {
        l->vanished = true; /* gone without a FIN: no ACK, no message, ever again */
        note(l, "vanish");
        end_conn(l, LK_END_VANISHED, false);
        return;
    }
    if (lk_book_done(&l->book)) {
        lk_complete(l);
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
        requeue_all(l);
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
    case WIRE_BITFIELD:
        on_bitfield(l, m);
        break;
    case WIRE_REJECT:
        on_reject(l, m);
        break;
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
        protocol_error(l, lk_mse_link_error(&l->mse));
        return NULL;
    }
    if (l->mse.done)
        note(l, "mse %s", hk_mse_method_name(l->mse.res.selected));
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
    if (p == NULL)
        p = hooks(l)->zeros(l->io.ctx); /* contentless bytes (a simulator's payload) */
    while (n > 0 && !l->conn_ended && !l->stopped_reading) {
        size_t used = 0;
        wire_msg m;
        wire_status st = wire_feed(&l->dec, p, n, &used, &m);
        p += used;
        n -= used;
        if (st == WIRE_ERROR) {
            char why[160] = "";
            if (hooks(l)->note)
                wire_error_format(wire_decoder_error(&l->dec), why, sizeof why);
            protocol_error(l, why);
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
    bool magnet = par->behaviour == LK_MAGNET;
    if (magnet)
        lk_meta_init(&l->meta, t->info_hash);
    if (!magnet || !hooks(l)->metadata)
        lk_book_init(&l->book, &t->lay, par->strategy == LK_RANDOM, seed);
    wire_decoder_init(&l->dec, NULL);
}

void lk_free(lk_peer *l)
{
    lk_mse_link_free(&l->mse);
    lk_meta_free(&l->meta);
    wire_decoder_free(&l->dec);
    lk_book_free(&l->book);
    free(l->piece_rejects);
    l->piece_rejects = NULL;
}

void lk_connection_start(lk_peer *l)
{
    wire_decoder_free(&l->dec);
    wire_limits lim = {.max_msg_len = 0, .piece_count = 0, .skip_handshake = false, .allow_unknown = true};
    wire_decoder_init(&l->dec, &lim);
    l->conn_ended = l->got_handshake = l->unchoked = l->fast = l->ext = false;
    lk_mse_link_reset(&l->mse);
    requeue_all(l);
}

void lk_connection_lost(lk_peer *l)
{
    l->conn_ended = true;
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
    snprintf(id, sizeof id, "%.8s%012u", l->par->peer_id_prefix ? l->par->peer_id_prefix : "-SW0100-", l->id);
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
