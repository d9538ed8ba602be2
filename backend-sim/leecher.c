/* leecher: owns the simulated peers — simulation-only BitTorrent clients written against the wire codec
 * (core/wire.h) and bencode, never the seeding engine. Per peer: a life actor (arrival, connect, keep-alives,
 * flooding ticks, churn departures and returns, reconnects) and one receiver actor per connection (the peer's end of
 * the stream: ACKs, decoding, requests). Behaviours: see scenario.h; contract: leecher.h. */
#include "leecher.h"

#include <assert.h>
#include <math.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bencode.h"
#include "metainfo.h"
#include "world.h"

#define SIM_BLOCK 16384u
#define OUR_UT_METADATA 3
#define META_PIECE 16384u
#define NO_BLOCK UINT32_MAX

static bool sends_keepalives(const leecher *l)
{
    switch (l->prof->behaviour) {
    case BEH_NORMAL:
    case BEH_SLOW_READER:
    case BEH_MAGNET:
    case BEH_HALF_OPEN:
    case BEH_FLOODER:
        return true;
    default:
        return false;
    }
}

static bool reconnects(const leecher *l)
{
    sim_behaviour b = l->prof->behaviour;
    return l->prof->reconnect > 0 && (b == BEH_NORMAL || b == BEH_SLOW_READER || b == BEH_MAGNET);
}

static hk_time stop_time(const leecher *l)
{
    return l->world->sc->run.duration - l->world->sc->run.quiesce;
}

/* ---------------- peer-side deferred ops ---------------- */

static void lee_push(leecher *l, sop_type t, hk_conn *c)
{
    opq_push(&l->ops, t, c);
}

/* ob: the sends of the calling actor (the life actor's or the connection receiver's) */
static void lee_drain(leecher *l, sim_outbox *ob)
{
    sim_op op;
    while (opq_pop(&l->ops, &op)) {
        hk_conn *c = op.c;
        sim_msg *m = NULL;
        sg_mailbox_t mb = c ? c->mb_s : NULL;
        sg_actor_t victim = NULL;
        bool drop = c && (c->p_vanished || (c->s_closed && op.type != POP_SYN));
        switch ((sop_type)op.type) {
        case POP_FLUSH:
            c->p_flush_queued = false;
            m = stream_take_flight(&c->p_out, l->world->sc->seeder.window);
            break;
        case POP_ACK:
            m = msg_new_ctl(MSG_ACK);
            break;
        case POP_FIN:
            m = msg_new_ctl(MSG_FIN);
            break;
        case POP_SYN:
            m = msg_new_ctl(MSG_SYN);
            break;
        case POP_KILL_NIC:
            m = conn_stop_receiver(c, false, &mb, &drop, &victim);
            break;
        case POP_WAKE:
            l->wake_queued = false;
            break;
        default:
            assert(!"a seeder op in a peer's queue");
            abort();
        }
        if (!op_finish(ob, c, m, mb, drop, victim) && op.type == POP_WAKE)
            sg_sem_release(l->wake);
    }
}

static void wake_life(leecher *l)
{
    if (!l->wake_queued) {
        l->wake_queued = true;
        lee_push(l, POP_WAKE, NULL);
    }
}

/* ---------------- sending ---------------- */

static void send_bytes(leecher *l, const uint8_t *b, size_t n)
{
    hk_conn *c = l->conn;
    if (!c || c->p_closed)
        return;
    stream_write(&c->p_out, b, (uint32_t)n);
    l->last_sent = sim_now(l->world);
    if (!c->p_flush_queued && !c->p_out.inflight) {
        c->p_flush_queued = true;
        lee_push(l, POP_FLUSH, c);
    }
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

/* ---------------- ending a connection ---------------- */

static void end_conn(leecher *l, lee_end why, bool fin)
{
    hk_conn *c = l->conn;
    if (!c || l->conn_ended)
        return;
    l->conn_ended = true;
    l->conn_end = why;
    if (fin)
        lee_push(l, POP_FIN, c);
    c->p_closed = true;
    lee_push(l, POP_KILL_NIC, c); /* no-op when the receiver itself ends the connection */
    wake_life(l);
}

static void peer_protocol_error(leecher *l, const char *why)
{
    l->protocol_errors++;
    evlog_line(l->world->log, sim_now(l->world), "peer p%u error %s", l->id, why);
    end_conn(l, END_CLOSED_BY_SEEDER, true);
}

/* ---------------- blocks and requests ---------------- */

static void setup_layout(leecher *l, uint64_t size, uint32_t piece_length)
{
    l->size = size;
    l->piece_length = piece_length;
    l->piece_count = (uint32_t)((size + piece_length - 1) / piece_length);
    l->bpp = (piece_length + SIM_BLOCK - 1) / SIM_BLOCK;
    uint64_t last = size - (uint64_t)(l->piece_count - 1) * piece_length;
    l->nblocks = (l->piece_count - 1) * l->bpp + (uint32_t)((last + SIM_BLOCK - 1) / SIM_BLOCK);
    if (!l->have) {
        l->have = calloc((l->nblocks + 7) / 8, 1);
        if (!l->have)
            abort();
    }
    perm_init(&l->order, l->nblocks, prng_next(&l->rng));
}

static bool has_block(const leecher *l, uint32_t b)
{
    return l->have[b / 8] >> (b % 8) & 1;
}

static uint32_t block_len(const leecher *l, uint32_t b)
{
    uint32_t piece = b / l->bpp, begin = (b % l->bpp) * SIM_BLOCK;
    uint64_t psize = piece + 1 < l->piece_count ? l->piece_length
                                                : l->size - (uint64_t)(l->piece_count - 1) * l->piece_length;
    uint64_t left = psize - begin;
    return left < SIM_BLOCK ? (uint32_t)left : SIM_BLOCK;
}

static bool outstanding(const leecher *l, uint32_t b)
{
    for (uint32_t i = 0; i < l->nout; i++)
        if (l->out[i].block == b)
            return true;
    return false;
}

/* Makes room for one more element in a growable array of *cap elements of `size` bytes (16, then doubling). */
static void *grow(void *v, uint32_t n, uint32_t *cap, size_t size)
{
    if (n < *cap)
        return v;
    *cap = *cap ? 2 * *cap : 16;
    v = realloc(v, (size_t)*cap * size);
    if (!v)
        abort();
    return v;
}

static void requeue_push(leecher *l, uint32_t b)
{
    l->requeue = grow(l->requeue, l->nrequeue, &l->caprequeue, sizeof *l->requeue);
    l->requeue[l->nrequeue++] = b;
}

static uint32_t next_block(leecher *l)
{
    while (l->nrequeue) {
        uint32_t b = l->requeue[--l->nrequeue];
        if (!has_block(l, b) && !outstanding(l, b))
            return b;
    }
    while (l->cursor < l->nblocks) {
        uint32_t b = l->prof->strategy == STRAT_RANDOM ? (uint32_t)perm_at(&l->order, l->cursor) : (uint32_t)l->cursor;
        l->cursor++;
        if (!has_block(l, b) && !outstanding(l, b))
            return b;
    }
    return NO_BLOCK;
}

static void out_add(leecher *l, uint32_t b)
{
    l->out = grow(l->out, l->nout, &l->capout, sizeof *l->out);
    l->out[l->nout].block = b;
    l->nout++;
}

static bool out_remove(leecher *l, uint32_t b)
{
    for (uint32_t i = 0; i < l->nout; i++)
        if (l->out[i].block == b) {
            l->out[i] = l->out[--l->nout];
            return true;
        }
    return false;
}

static void request_more(leecher *l)
{
    sim_behaviour beh = l->prof->behaviour;
    if (!l->unchoked || l->need_meta || l->conn_ended || beh == BEH_IDLE || beh == BEH_SILENT ||
        beh == BEH_INVALID || beh == BEH_FLOODER)
        return;
    while (l->nout < l->prof->pipeline) {
        uint32_t b = next_block(l);
        if (b == NO_BLOCK)
            break;
        out_add(l, b);
        send_request(l, b / l->bpp, (b % l->bpp) * SIM_BLOCK, block_len(l, b));
    }
}

static void flood(leecher *l)
{
    if (l->conn_ended || !l->got_handshake || l->nblocks == 0)
        return;
    for (uint32_t i = 0; i < l->prof->flood_rate; i++) {
        uint32_t b = (uint32_t)prng_below(&l->rng, l->nblocks);
        send_request(l, b / l->bpp, (b % l->bpp) * SIM_BLOCK, block_len(l, b));
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
        send_request(l, l->piece_count + 7, 0, SIM_BLOCK);
        break;
    case INVALID_BEGIN:
        send_request(l, 0, l->piece_length, SIM_BLOCK);
        break;
    }
}

static void completed(leecher *l)
{
    l->completed = true;
    l->complete_at = sim_now(l->world);
    evlog_line(l->world->log, l->complete_at, "peer p%u complete", l->id);
    end_conn(l, END_COMPLETE, true);
}

/* ---------------- metadata (magnet users) ---------------- */

static void meta_request_all(leecher *l)
{
    uint32_t pieces = (l->meta_size + META_PIECE - 1) / META_PIECE;
    for (uint32_t i = 0; i < pieces; i++) {
        char buf[64];
        int n = snprintf(buf, sizeof buf, "d8:msg_typei0e5:piecei%uee", i);
        send_extended(l, l->seeder_ut_metadata, buf, (size_t)n);
    }
}

static void on_ext_handshake(leecher *l, const uint8_t *p, uint32_t len)
{
    ben_doc d;
    ben_error e;
    if (ben_decode(p, len, 1024, &d, &e) < 0) {
        peer_protocol_error(l, "bad extension handshake");
        return;
    }
    int64_t m = ben_dict_find(&d, 0, "m"), ut = m >= 0 ? ben_dict_find(&d, (uint32_t)m, "ut_metadata") : -1;
    int64_t id = 0, size = 0;
    bool have_id = ut >= 0 && ben_get_int(&d, ut, &id) && id > 0 && id < 256;
    bool have_size = ben_get_int(&d, ben_dict_find(&d, 0, "metadata_size"), &size) && size > 0 && size < (16 << 20);
    ben_doc_free(&d);
    if (!l->need_meta)
        return;
    if (!have_id || !have_size) {
        l->meta_fail++;
        peer_protocol_error(l, "seeder offers no ut_metadata");
        return;
    }
    l->seeder_ut_metadata = (uint8_t)id;
    if (!l->meta || l->meta_size != (uint32_t)size) {
        free(l->meta);
        free(l->meta_have);
        l->meta_size = (uint32_t)size;
        l->meta = malloc(l->meta_size);
        l->meta_have = calloc((l->meta_size + META_PIECE - 1) / META_PIECE, 1);
        if (!l->meta || !l->meta_have)
            abort();
        l->meta_got = 0;
    }
    meta_request_all(l);
}

static void meta_done(leecher *l)
{
    uint8_t ih[20];
    SHA1(l->meta, l->meta_size, ih);
    if (memcmp(ih, l->world->info_hashes[l->torrent], 20) != 0) {
        l->meta_fail++;
        peer_protocol_error(l, "metadata does not hash to the info-hash");
        return;
    }
    size_t tlen = (size_t)l->meta_size + 8;
    uint8_t *t = malloc(tlen);
    if (!t)
        abort();
    memcpy(t, "d4:info", 7);
    memcpy(t + 7, l->meta, l->meta_size);
    t[tlen - 1] = 'e';
    mi_torrent *mt = NULL;
    mi_error me;
    int rc = mi_parse(t, tlen, &mt, &me);
    free(t);
    if (rc < 0) {
        l->meta_fail++;
        peer_protocol_error(l, "metadata does not parse");
        return;
    }
    setup_layout(l, mt->total_length, mt->piece_length);
    mi_free(mt);
    l->need_meta = false;
    wire_decoder_set_piece_count(&l->dec, l->piece_count);
    evlog_line(l->world->log, sim_now(l->world), "peer p%u metadata %u bytes", l->id, l->meta_size);
    send_simple(l, WIRE_INTERESTED);
    l->interested_sent = true;
}

static void on_ut_metadata(leecher *l, const uint8_t *p, uint32_t len)
{
    ben_doc d;
    ben_error e;
    size_t used = 0;
    if (ben_decode_prefix(p, len, 64, &d, &used, &e) < 0) {
        peer_protocol_error(l, "bad ut_metadata message");
        return;
    }
    int64_t type = -1, piece = -1, total = -1;
    ben_get_int(&d, ben_dict_find(&d, 0, "msg_type"), &type);
    ben_get_int(&d, ben_dict_find(&d, 0, "piece"), &piece);
    ben_get_int(&d, ben_dict_find(&d, 0, "total_size"), &total);
    ben_doc_free(&d);
    if (!l->need_meta || !l->meta)
        return;
    uint32_t pieces = (l->meta_size + META_PIECE - 1) / META_PIECE;
    if (type == 2) {
        l->meta_fail++;
        peer_protocol_error(l, "metadata request rejected");
        return;
    }
    if (type != 1 || piece < 0 || piece >= pieces || total != l->meta_size) {
        peer_protocol_error(l, "unexpected ut_metadata message");
        return;
    }
    uint32_t off = (uint32_t)piece * META_PIECE;
    uint32_t want = l->meta_size - off < META_PIECE ? l->meta_size - off : META_PIECE;
    if (len - used != want) {
        peer_protocol_error(l, "metadata piece of the wrong size");
        return;
    }
    if (!l->meta_have[piece]) {
        memcpy(l->meta + off, p + used, want);
        l->meta_have[piece] = 1;
        l->meta_got++;
    }
    if (l->meta_got == pieces)
        meta_done(l);
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
        wire_decoder_set_piece_count(&l->dec, l->piece_count);
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
            static const char hs[] = "d1:md11:ut_metadatai3eee";
            send_extended(l, 0, hs, sizeof hs - 1);
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
        flood(l);
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
    if (l->need_meta || begin % SIM_BLOCK != 0 || begin / SIM_BLOCK >= l->bpp) {
        peer_protocol_error(l, "piece at an offset never requested");
        return;
    }
    uint32_t b = index * l->bpp + begin / SIM_BLOCK;
    if (b >= l->nblocks || len != block_len(l, b)) {
        peer_protocol_error(l, "piece of the wrong length");
        return;
    }
    if (!out_remove(l, b)) {
        l->unrequested++;
        evlog_line(l->world->log, sim_now(l->world), "peer p%u unrequested %u/%u", l->id, index, begin);
    }
    if (has_block(l, b)) {
        l->dup_blocks++;
    } else {
        l->have[b / 8] |= (uint8_t)(1u << (b % 8));
        l->received++;
        l->bytes += len;
    }
    if (l->prof->behaviour == BEH_FLOODER)
        return;
    if (l->prof->behaviour == BEH_HALF_OPEN && l->bytes >= l->prof->vanish_after) {
        /* gone without a FIN: no ACK, no message, ever again */
        l->vanished = true;
        l->conn->p_vanished = true;
        evlog_line(l->world->log, sim_now(l->world), "peer p%u vanish", l->id);
        end_conn(l, END_VANISHED, false);
        return;
    }
    if (l->received == l->nblocks) {
        completed(l);
        return;
    }
    request_more(l);
}

static void on_wire(leecher *l, const wire_msg *m)
{
    switch (m->type) {
    case WIRE_HANDSHAKE:
        on_handshake(l, m);
        break;
    case WIRE_HAVE_ALL:
    case WIRE_BITFIELD:
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
            if (!l->fast) {
                for (uint32_t i = 0; i < l->nout; i++)
                    requeue_push(l, l->out[i].block);
                l->nout = 0;
            }
        }
        break;
    case WIRE_PIECE:
        on_piece(l, m);
        break;
    case WIRE_REJECT: {
        l->rejects++;
        uint32_t b = m->u.block.index * l->bpp + m->u.block.begin / SIM_BLOCK;
        if (l->prof->behaviour != BEH_FLOODER && b < l->nblocks && out_remove(l, b)) {
            requeue_push(l, b);
            request_more(l);
        }
        break;
    }
    case WIRE_EXTENDED:
        if (m->u.ext.id == 0)
            on_ext_handshake(l, m->u.ext.payload, m->u.ext.len);
        else if (m->u.ext.id == OUR_UT_METADATA)
            on_ut_metadata(l, m->u.ext.payload, m->u.ext.len);
        break;
    default:
        break;
    }
}

static void feed(leecher *l, const uint8_t *p, size_t n)
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

static void on_connected(leecher *l)
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
    send_bytes(l, hs, wire_encode_handshake(hs, reserved, l->world->info_hashes[l->torrent], peer_id));
    evlog_line(l->world->log, sim_now(l->world), "peer p%u connected c%llu", l->id, (unsigned long long)l->conn->id);
}

static hk_time next_timer(const leecher *l);

/* ---------------- receiver actor (peer side of one connection) ---------------- */

static void nic_exit(int failed, void *data)
{
    (void)failed;
    hk_conn *c = data;
    c->p_actor = NULL;
    outbox_drop(&c->p_box); /* empty unless killed */
    if (c->p_pending) {
        msg_release(c->p_pending);
        c->p_pending = NULL;
    }
    conn_unref(c);
}

/* One message from the seeder on the current connection c. A slow reader holds a data message while it "reads". */
static void nic_dispatch(leecher *l, hk_conn *c, sim_msg *m)
{
    switch ((sim_msg_type)m->type) {
    case MSG_SYNACK:
        on_connected(l);
        break;
    case MSG_RST:
        l->refusals++;
        evlog_line(l->world->log, sim_now(l->world), "peer p%u refused", l->id);
        end_conn(l, END_REFUSED, false);
        break;
    case MSG_DATA:
        if (l->prof->behaviour == BEH_SLOW_READER) {
            c->p_pending = m;
            sg_actor_sleep_for((double)m->len / l->prof->read_rate);
            c->p_pending = NULL;
        }
        lee_push(l, POP_ACK, c);
        for (uint32_t i = 0; i < m->nparts && !l->conn_ended; i++)
            feed(l, m->parts[i].virt ? sim_zero_bytes() : m->parts[i].bytes, m->parts[i].len);
        break;
    case MSG_ACK:
        c->p_out.inflight = 0;
        if (c->p_out.queued && !c->p_flush_queued) {
            c->p_flush_queued = true;
            lee_push(l, POP_FLUSH, c);
        }
        break;
    case MSG_FIN:
        evlog_line(l->world->log, sim_now(l->world), "peer p%u closed-by-seeder c%llu", l->id,
                   (unsigned long long)c->id);
        end_conn(l, END_CLOSED_BY_SEEDER, false);
        break;
    default:
        break;
    }
}

static void nic_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    hk_conn *c = sg_actor_self_get_data();
    leecher *l = c->lee;
    sg_actor_daemonize(sg_actor_self());
    sg_actor_on_exit(nic_exit, c);
    c->p_actor = sg_actor_self();
    sg_mailbox_set_receiver(sg_mailbox_get_name(c->mb_p));
    while (!c->p_closed) {
        void *data = NULL;
        sg_comm_t comm = sg_mailbox_get_async(c->mb_p, &data);
        if (sg_comm_wait(comm) != SG_OK) {
            end_conn(l, END_CLOSED_BY_SEEDER, false);
            lee_drain(l, &c->p_box);
            break;
        }
        sim_msg *m = data;
        if (c->p_closed || l->conn != c) {
            msg_release(m);
            break;
        }
        nic_dispatch(l, c, m);
        msg_release(m);
        if (next_timer(l) < l->life_sleep_until)
            wake_life(l); /* a keep-alive or flooding deadline appeared or moved earlier */
        lee_drain(l, &c->p_box);
        outbox_reap(&c->p_box);
    }
    c->p_stopping = true; /* nobody kills or wakes it any more */
    outbox_close(&c->p_box);
    return;
}

/* ---------------- life actor ---------------- */

static void reset_protocol(leecher *l)
{
    wire_decoder_free(&l->dec);
    wire_limits lim = {.max_msg_len = 0, .piece_count = 0, .skip_handshake = false, .allow_unknown = true};
    wire_decoder_init(&l->dec, &lim);
    l->connected = l->got_handshake = l->got_have = l->interested_sent = l->unchoked = false;
    l->fast = l->ext = false;
    for (uint32_t i = 0; i < l->nout; i++)
        requeue_push(l, l->out[i].block);
    l->nout = 0;
}

static void connect_once(leecher *l)
{
    hk_conn *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->id = l->world->next_conn_id++;
    c->world = l->world;
    c->torrent = l->torrent;
    c->lee = l;
    c->refs = 1; /* l->conn */
    char name[48];
    snprintf(name, sizeof name, "c%llus", (unsigned long long)c->id);
    c->mb_s = sg_mailbox_by_name(name);
    snprintf(name, sizeof name, "c%llup", (unsigned long long)c->id);
    c->mb_p = sg_mailbox_by_name(name);
    l->conn = c;
    l->conn_ended = false;
    l->conn_end = END_NONE;
    reset_protocol(l);
    l->connects++;
    if (!l->first_connect)
        l->first_connect = sim_now(l->world);
    evlog_line(l->world->log, sim_now(l->world), "peer p%u connect c%llu", l->id, (unsigned long long)c->id);

    conn_ref(c);
    snprintf(name, sizeof name, "nic%llu", (unsigned long long)c->id);
    sim_spawn(name, l->host, nic_main, c);
    seeder_spawn_rx(&l->world->seeder, c);
    lee_push(l, POP_SYN, c);
    lee_drain(l, &l->box);
}

static hk_time next_timer(const leecher *l)
{
    hk_time t = stop_time(l);
    if (l->leave_at < t)
        t = l->leave_at;
    if (l->connected && !l->conn_ended && sends_keepalives(l) && l->last_sent + l->prof->keepalive < t)
        t = l->last_sent + l->prof->keepalive;
    if (l->prof->behaviour == BEH_FLOODER && l->got_handshake && !l->conn_ended && l->next_flood < t)
        t = l->next_flood;
    return t;
}

static void on_timer(leecher *l)
{
    hk_time now = sim_now(l->world);
    if (l->conn_ended)
        return;
    if (now >= stop_time(l)) {
        end_conn(l, END_TIME, true);
        return;
    }
    if (now >= l->leave_at) {
        bool fin = l->prof->departure == DEPART_FIN;
        evlog_line(l->world->log, now, "peer p%u depart %s", l->id, fin ? "fin" : "vanish");
        if (!fin)
            l->conn->p_vanished = true;
        end_conn(l, END_DEPARTED, fin);
        return;
    }
    if (l->connected && sends_keepalives(l) && now >= l->last_sent + l->prof->keepalive) {
        uint8_t b[WIRE_KEEPALIVE_LEN];
        send_bytes(l, b, wire_encode_keepalive(b));
    }
    if (l->prof->behaviour == BEH_FLOODER && l->got_handshake && now >= l->next_flood) {
        flood(l);
        l->next_flood = now + HK_NS_PER_SEC;
    }
}

/* Sleeps until t (or a wake-up); true if the sleep ran its full course. */
static void life_sleep_until(leecher *l, hk_time t)
{
    hk_time now = sim_now(l->world);
    if (t <= now + 1000) {
        if (t > now && t != HK_TIME_NEVER)
            l->world->now_floor = t > l->world->now_floor ? t : l->world->now_floor;
        return;
    }
    l->life_sleep_until = t;
    sim_sem_wait_until(l->wake, t, now);
    l->life_sleep_until = 0;
}

/* Sleeps until t, but never past the moment peers stop (duration - quiesce). */
static void plain_sleep_until(leecher *l, hk_time t)
{
    hk_time now = sim_now(l->world);
    if (t > stop_time(l))
        t = stop_time(l);
    if (t > now + 1000)
        sg_actor_sleep_for((double)(t - now) / 1e9);
}

static void life_exit(int failed, void *data)
{
    (void)failed;
    leecher *l = data;
    outbox_drop(&l->box); /* empty unless killed */
}

/* Away for a downtime (mttr), then back with a new uptime (mtbf); false if the peer never comes back. */
static bool away(leecher *l)
{
    const sim_profile *p = l->prof;
    if (!p->mttr)
        return false;
    plain_sleep_until(l, sim_now(l->world) + (hk_time)prng_exponential(&l->rng, (double)p->mttr));
    l->leave_at = sim_now(l->world) + (hk_time)prng_exponential(&l->rng, (double)p->mtbf);
    return true;
}

/* One connection, from connect to its end (keep-alives, flooding, departure meanwhile); returns why it ended. */
static lee_end live_connection(leecher *l)
{
    connect_once(l);
    while (!l->conn_ended) {
        outbox_reap(&l->box);
        life_sleep_until(l, next_timer(l));
        on_timer(l);
        lee_drain(l, &l->box);
    }
    hk_conn *c = l->conn;
    l->conn = NULL;
    conn_unref(c);
    return l->conn_end;
}

static void life_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    leecher *l = sg_actor_self_get_data();
    const sim_profile *p = l->prof;
    sg_actor_on_exit(life_exit, l);
    plain_sleep_until(l, l->arrival);
    l->leave_at = p->mtbf ? sim_now(l->world) + (hk_time)prng_exponential(&l->rng, (double)p->mtbf) : HK_TIME_NEVER;
    while (sim_now(l->world) < stop_time(l)) {
        if (sim_now(l->world) >= l->leave_at) {
            /* the uptime ran out while waiting to (re)connect: away for a downtime, then back */
            if (!away(l))
                break;
            continue;
        }
        lee_end why = live_connection(l);
        l->end = why;
        if (why == END_COMPLETE || why == END_VANISHED || why == END_TIME)
            break;
        if (why == END_DEPARTED) {
            if (!away(l))
                break;
            continue;
        }
        /* refused or closed by the seeder */
        if (!reconnects(l))
            break;
        plain_sleep_until(l, sim_now(l->world) + p->reconnect);
    }
    if (l->end == END_NONE)
        l->end = END_TIME;
    l->end_at = sim_now(l->world);
    l->finished = true;
    l->world->lives_running--;
    evlog_line(l->world->log, l->end_at, "peer p%u end %d", l->id, (int)l->end);
    /* Its last messages (a FIN) must still reach the seeder if the simulation goes on, but waiting for them must
     * not keep the simulation alive: a daemon ends with the last ordinary actor. */
    sg_actor_daemonize(sg_actor_self());
    outbox_close(&l->box);
    return;
}

void leechers_start(sim_world *w)
{
    for (uint32_t pi = 0; pi < w->sc->nprofiles; pi++) {
        const sim_profile *p = &w->sc->profiles[pi];
        prng arr;
        prng_seed(&arr, w->sc->run.seed, 0x617272ull + pi);
        double t = (double)p->start / 1e9;
        for (uint32_t k = 0; k < p->count; k++) {
            uint32_t id = p->first_peer + k;
            leecher *l = &w->peers[id];
            l->world = w;
            l->id = id;
            l->prof = p;
            l->profile_index = pi;
            prng_seed(&l->rng, w->sc->run.seed, 0x1000000ull + id);
            if (p->arrival == ARRIVE_POISSON)
                t += prng_exponential(&arr, 1.0 / p->rate);
            else if (p->arrival == ARRIVE_UNIFORM && k > 0)
                t += 1.0 / p->rate;
            l->arrival = (hk_time)llround(t * 1e9);
            l->torrent = p->torrent >= 0 ? (uint32_t)p->torrent : (uint32_t)prng_below(&l->rng, w->ntorrents);
            l->need_meta = p->behaviour == BEH_MAGNET;
            if (!l->need_meta) {
                const sim_torrent *tt = &w->torrents[l->torrent];
                setup_layout(l, tt->size, tt->piece_length);
            }
            wire_decoder_init(&l->dec, NULL);
            l->wake = sg_sem_init(0);
            l->leave_at = HK_TIME_NEVER;
            char name[32];
            snprintf(name, sizeof name, "p%u", id);
            l->host = sg_host_by_name(name);
            snprintf(name, sizeof name, "life%u", id);
            sim_spawn(name, l->host, life_main, l);
            w->lives_running++;
        }
    }
}
