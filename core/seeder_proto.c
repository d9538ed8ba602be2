/* seeder_proto: owns the peer wire protocol as the seeder speaks it: decoding a connection's bytes, the handshake
 * (choosing the torrent at 48 bytes, answering with our handshake, HAVE_ALL or a full bitfield, and the extension
 * handshake), message legality, request validation and admission (reject/drop rules, cancel, duplicates), and the
 * extension messages (BEP 10 handshake, BEP 9 ut_metadata requests). */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "extension.h"
#include "infohash.h"
#include "piece_state.h"
#include "seeder_internal.h"

static unsigned long long pid(const hk_peer *p)
{
    return (unsigned long long)p->id;
}

static void protocol_error(hk_seeder *s, hk_peer *p, const char *what, const char *detail)
{
    s->stats.protocol_errors++;
    hks_close_peer(s, p, true, "protocol error: %s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Handshake                                                                                                         */

/* ut_metadata is offered when the info dictionary fits BEP 9's practical bound (64 MiB). */
static bool metadata_offered(const hk_torrent *t)
{
    return t->info_len > 0 && t->info_len <= EXT_METADATA_SIZE_MAX;
}

/* Sends handshake + HAVE_ALL (fast) or a full bitfield + the extension handshake (BEP 10 peers), in one send. */
static void send_handshake_reply(hk_seeder *s, hk_peer *p, const hk_torrent *t)
{
    uint8_t hs[WIRE_HANDSHAKE_LEN + WIRE_SIMPLE_LEN];
    size_t hl = wire_encode_handshake(hs, s->reserved, t->info_hash, s->peer_id);
    hk_segment segs[6];
    size_t nsegs = 0;
    uint8_t *bits = NULL;
    uint32_t nbits_bytes = 0;
    uint8_t bf_hdr[WIRE_BITFIELD_HEADER_LEN];
    const struct hk_pieces *ps = hk_torrent_pieces(t);
    if (p->fast && hk_pieces_nbad(ps) == 0) { /* a damaged torrent's bad pieces are left out (bitfield) */
        hl += wire_encode_simple(hs + hl, WIRE_HAVE_ALL);
        segs[nsegs++] = (hk_segment){.kind = HK_SEG_BYTES, .u.bytes = {hs, (uint32_t)hl}};
    } else {
        segs[nsegs++] = (hk_segment){.kind = HK_SEG_BYTES, .u.bytes = {hs, (uint32_t)hl}};
        uint32_t npieces = hk_torrent_piece_count(t);
        nbits_bytes = wire_bitfield_len(npieces);
        bits = hk_mem_alloc(&s->mem, nbits_bytes);
        if (!bits) {
            hks_close_peer(s, p, true, "out of memory for its bitfield");
            return;
        }
        hk_pieces_bitfield(ps, npieces, bits); /* every piece but the bad ones; spare bits zero */
        wire_encode_bitfield_header(bf_hdr, nbits_bytes);
        segs[nsegs++] = (hk_segment){.kind = HK_SEG_BYTES, .u.bytes = {bf_hdr, sizeof bf_hdr}};
        segs[nsegs++] = (hk_segment){.kind = HK_SEG_BYTES, .u.bytes = {bits, nbits_bytes}};
    }
    uint8_t ext[WIRE_EXTENDED_HEADER_LEN + EXT_HANDSHAKE_MAX];
    if (p->extended) {
        ext_handshake eh;
        memset(&eh, 0, sizeof eh);
        eh.has_m = true;
        if (metadata_offered(t)) {
            eh.m[EXT_UT_METADATA] = HK_EXT_UT_METADATA;
            eh.metadata_size = t->info_len;
        }
        eh.m[EXT_UPLOAD_ONLY] = HK_EXT_UPLOAD_ONLY;
        eh.has_upload_only = true;
        eh.upload_only = true;
        eh.reqq = s->cfg.reqq;
        eh.port = s->cfg.listen_port;
        static const char version[] = "hekate 0.1";
        memcpy(eh.v, version, sizeof version);
        eh.v_len = (uint8_t)(sizeof version - 1);
        size_t n = ext_handshake_encode(&eh, ext + WIRE_EXTENDED_HEADER_LEN, EXT_HANDSHAKE_MAX);
        if (n > 0) {
            wire_encode_extended_header(ext, EXT_HANDSHAKE_ID, (uint32_t)n);
            segs[nsegs++] =
                (hk_segment){.kind = HK_SEG_BYTES, .u.bytes = {ext, (uint32_t)(WIRE_EXTENDED_HEADER_LEN + n)}};
        }
    }
    uint8_t port_msg[WIRE_PORT_LEN];
    const uint8_t *theirs = wire_decoder_reserved(&p->dec);
    if (s->cfg.dht_port && theirs && wire_reserved_has_dht(theirs)) /* BEP 5: our DHT node's port */
        segs[nsegs++] = (hk_segment){.kind = HK_SEG_BYTES,
                                     .u.bytes = {port_msg, (uint32_t)wire_encode_port(port_msg, s->cfg.dht_port)}};
    size_t total = 0;
    for (size_t i = 0; i < nsegs; i++)
        total += segs[i].u.bytes.len;
    p->debt_limit = HK_CONTROL_DEBT_MAX + total; /* the reply itself may exceed the first room */
    hks_send_control(s, p, segs, nsegs);
    hk_mem_free(&s->mem, bits, nbits_bytes);
}

/* The first 48 bytes are in: pick the torrent and answer (before the peer id, which some peers only send after
 * seeing ours). */
static void choose_torrent(hk_seeder *s, hk_peer *p, const uint8_t *info_hash)
{
    char hex[IH_HEX_LEN + 1];
    ih_hex(info_hash, hex);
    if (p->via_mse && memcmp(info_hash, p->mse->ih, 20) != 0) {
        s->stats.mse_failures++;
        hks_close_peer(s, p, true, "mse handshake failed: the encrypted BitTorrent handshake names torrent %s, not "
                       "the SKEY's", hex);
        return;
    }
    uint32_t rec = hk_tt_find(&s->torrents, info_hash);
    hk_torrent *t = hk_tt_get(&s->torrents, rec);
    if (!t) {
        hks_close_peer(s, p, true, "unknown info-hash %s", hex);
        return;
    }
    if (t->state == HK_TORRENT_FAILED) {
        hks_close_peer(s, p, true, "torrent %s is in error (storage failed)", hex);
        return;
    }
    if (!hks_peer_attach(s, p, rec)) {
        hks_close_peer(s, p, true, "out of memory for torrent %s's side block", hex);
        return;
    }
    p->phase = HK_PHASE_REPLIED;
    const uint8_t *reserved = wire_decoder_reserved(&p->dec); /* known from byte 28 on; we are at 48 */
    p->fast = wire_reserved_has_fast(reserved);
    p->extended = wire_reserved_has_extended(reserved);
    wire_decoder_set_piece_count(&p->dec, hk_torrent_piece_count(t));
    hks_log(s, HK_LOG_DEBUG, "peer %llu: handshake for torrent %s (fast %s, extensions %s)", pid(p), hex,
           p->fast ? "yes" : "no", p->extended ? "yes" : "no");
    send_handshake_reply(s, p, t);
}

static void handshake_complete(hk_seeder *s, hk_peer *p, const wire_msg *m)
{
    p->phase = HK_PHASE_ACTIVE;
    char id[21];
    for (int i = 0; i < 20; i++) {
        uint8_t c = m->u.handshake.peer_id[i];
        id[i] = c >= 0x20 && c < 0x7f ? (char)c : '.';
    }
    id[20] = 0;
    hks_log(s, HK_LOG_DEBUG, "peer %llu: handshake complete, peer id %.8s", pid(p), id);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Requests                                                                                                          */

static void refuse(hk_seeder *s, hk_peer *p, const wire_block *b, const char *why)
{
    hks_log(s, HK_LOG_DEBUG, "peer %llu: %s request %u/%u/%u (%s)", pid(p), p->fast ? "reject" : "drop", b->index,
           b->begin, b->length, why);
    if (p->fast)
        hks_send_reject(s, p, b->index, b->begin, b->length);
    else
        s->stats.requests_rejected++;
}

static void on_request(hk_seeder *s, hk_peer *p, const wire_block *b)
{
    const hk_torrent *t = hks_peer_torrent(s, p);
    hk_block_check c = hk_torrent_check_block(t, b->index, b->begin, b->length, s->cfg.max_block);
    if (c != HK_BLOCK_OK) {
        char what[128];
        snprintf(what, sizeof what, "%u/%u/%u: %s", b->index, b->begin, b->length, hk_block_check_name(c));
        protocol_error(s, p, "invalid request", what);
        return;
    }
    if (p->choke.state != HK_CHOKE_UNCHOKED) {
        refuse(s, p, b, "choked");
        return;
    }
    if (p->reset_pending) {
        refuse(s, p, b, "over the cap: the coming choke discards it"); /* hks_choke_reset */
        return;
    }
    /* A duplicate of a queued request would be served twice; the queued one answers it. With the fast extension
     * every request needs exactly one answer, so the duplicate gets a reject; without it, it is dropped. */
    if (hk_rq_find(&p->rq, HK_REQ_BLOCK, b->index, b->begin, b->length) >= 0) {
        refuse(s, p, b, "duplicate of a queued request");
        return;
    }
    uint32_t queued = hk_rq_count(&p->rq, HK_REQ_BLOCK);
    if (queued >= s->cfg.reqq && p->fast) {
        refuse(s, p, b, "queue full"); /* the reject tells the peer */
        return;
    }
    /* Without the fast extension a refusal cannot be told: beyond reqq the request is still served, up to the
     * overflow cap; beyond that the peer is choked, which discards its requests in a way it sees (BEP 3). */
    if (queued >= hks_overflow_cap(&s->cfg, t->piece_length)) {
        hks_choke_reset(s, p, "request queue over its cap");
        refuse(s, p, b, "over the cap: the coming choke discards it");
        return;
    }
    hks_queue_block(s, p, b->index, b->begin, b->length);
}

static void on_cancel(hk_seeder *s, hk_peer *p, const wire_block *b)
{
    int64_t i = hk_rq_find(&p->rq, HK_REQ_BLOCK, b->index, b->begin, b->length);
    if (i < 0)
        return; /* already sent (or never queued): nothing to do */
    hk_rq_remove_at(&p->rq, (uint32_t)i, NULL);
    hks_mark_touched(s, p);
    /* BEP 6: with the fast extension a cancelled request still gets exactly one answer: a reject. */
    hks_log(s, HK_LOG_DEBUG, "peer %llu: cancel %u/%u/%u%s", pid(p), b->index, b->begin, b->length,
           p->fast ? ": rejected" : "");
    if (p->fast)
        hks_send_reject(s, p, b->index, b->begin, b->length);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Extension messages                                                                                                */

static void on_extended(hk_seeder *s, hk_peer *p, const wire_msg *m)
{
    const uint8_t *pl = m->u.ext.payload;
    uint32_t len = m->u.ext.len;
    if (m->u.ext.id == EXT_HANDSHAKE_ID) {
        ext_handshake in;
        ext_error err;
        if (ext_handshake_decode(pl, len, &in, &err) != 0) {
            protocol_error(s, p, "bad extension handshake", err.what);
            return;
        }
        if (in.ignored) /* harmless oddities of real clients: the rest of the handshake holds */
            hks_log(s, HK_LOG_DEBUG, "peer %llu: extension handshake: %u field(s) ignored, the first: %s", pid(p),
                    in.ignored, err.what);
        p->ut_metadata = in.m[EXT_UT_METADATA];
        p->lt_donthave = in.m[EXT_LT_DONTHAVE];
        bool upload_only = in.has_upload_only && in.upload_only;
        hks_log(s, HK_LOG_DEBUG, "peer %llu: extension handshake (ut_metadata id %u%s%s%.*s)", pid(p),
               in.m[EXT_UT_METADATA], upload_only ? ", upload only" : "", in.v_len ? ", client " : "",
               (int)in.v_len, in.v);
        if (upload_only)
            hks_close_peer(s, p, true, "peer is upload-only (a seed)");
        return;
    }
    const hk_torrent *t = hks_peer_torrent(s, p);
    if (m->u.ext.id == HK_EXT_UT_METADATA && metadata_offered(t)) {
        ext_ut_metadata_msg um;
        ext_error err;
        ext_status st = ext_ut_metadata_decode(pl, len, t->info_len, &um, &err);
        if (st == EXT_ERROR) {
            protocol_error(s, p, "bad ut_metadata message", err.what);
            return;
        }
        if (st == EXT_OK && um.type == EXT_UT_METADATA_REQUEST)
            hks_queue_metadata(s, p, um.piece);
        /* data and reject: we never ask for metadata; unknown types: ignored (BEP 9) */
        return;
    }
    if (m->u.ext.id == HK_EXT_UPLOAD_ONLY) {
        /* BEP 21 upload_only message: one byte, non-zero when the peer stops downloading */
        if (len >= 1 && pl[0] != 0)
            hks_close_peer(s, p, true, "peer is upload-only (a seed)");
        return;
    }
    /* other extended ids: not ours; ignored */
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Messages                                                                                                          */

static void on_message(hk_seeder *s, hk_peer *p, const wire_msg *m)
{
    if (m->type == WIRE_HANDSHAKE) {
        handshake_complete(s, p, m);
        return;
    }
    const hk_torrent *t = hks_peer_torrent(s, p);
    assert(t); /* messages flow after the handshake, which attached the peer; a removed torrent closed it */
    hk_msg_verdict v = hk_peer_check_msg(p, m, hk_torrent_piece_count(t));
    if (v == HK_MSG_SEED) {
        hks_close_peer(s, p, true, "%s", "peer is a seed");
        return;
    }
    if (v != HK_MSG_OK) {
        char what[96];
        snprintf(what, sizeof what, "%s: %s", wire_msg_name(m->type), hk_msg_verdict_name(v));
        protocol_error(s, p, what, NULL);
        return;
    }
    switch (m->type) {
    case WIRE_INTERESTED: hks_peer_interested(s, p); break;
    case WIRE_NOT_INTERESTED: hks_peer_not_interested(s, p); break;
    case WIRE_REQUEST: on_request(s, p, &m->u.block); break;
    case WIRE_CANCEL: on_cancel(s, p, &m->u.block); break;
    case WIRE_EXTENDED: on_extended(s, p, m); break;
    default: break; /* keep-alive, choke, unchoke, have, have_none, bitfield, port, suggest, allowed_fast, unknown */
    }
}

static void wire_recv_msgs(hk_seeder *s, hk_peer *p, const uint8_t *bytes, size_t len)
{
    size_t at = 0;
    while (!p->closed) {
        size_t used = 0;
        wire_msg m;
        wire_status st = wire_feed(&p->dec, bytes + at, len - at, &used, &m);
        at += used;
        if (p->phase == HK_PHASE_HANDSHAKE) {
            const uint8_t *ih = wire_decoder_info_hash(&p->dec);
            if (ih) {
                choose_torrent(s, p, ih);
                if (p->closed)
                    return;
            }
        }
        if (st == WIRE_ERROR) {
            char what[160];
            wire_error_format(wire_decoder_error(&p->dec), what, sizeof what);
            protocol_error(s, p, what, NULL);
            return;
        }
        if (st == WIRE_NEED_MORE) {
            /* every message of this chunk is handled: a large one's buffer is not kept for an idle peer */
            wire_decoder_trim(&p->dec);
            return;
        }
        p->last_recv = s->now;
        on_message(s, p, &m);
    }
}

void hks_wire_recv(hk_seeder *s, hk_peer *p, const uint8_t *bytes, size_t len)
{
    hks_mark_touched(s, p);
    uint64_t before = wire_decoder_memory(&p->dec);
    wire_recv_msgs(s, p, bytes, len);
    /* the decoder's growth or trim; a close meanwhile took what it held then, and the decoder changes no more */
    s->decoder_bytes = s->decoder_bytes + wire_decoder_memory(&p->dec) - before;
}
