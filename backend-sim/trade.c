/* trade: owns leecher-to-leecher exchange — the links between trading peers (mailboxes, streams, receiver actors,
 * their deferred sends), the protocol on them, rarest-first requests, the tit-for-tat choker and the swarm's union
 * of held blocks. Model and contract: trade.h. */
#include "trade.h"

#include <simgrid/actor.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer_wire.h"
#include "world.h"

#define TBLOCK 16384u
/* The uploader's send buffer: requests are written to the stream while less than this is queued or in flight, so a
 * choke drops the requests not yet written, and only these bytes still arrive after it. */
#define SERVE_BUF (256u * 1024)

typedef struct trade_link trade_link;

/* One end of a link: what its peer sends and knows about the remote. */
typedef struct trade_end {
    leecher *l;
    trade_link *link;
    int side;                    /* 0: the initiator's end */
    sim_stream out;              /* what this end sends */
    sg_mailbox_t mb;             /* what this end receives */
    sim_outbox box;              /* sends of this end's receiver actor */
    wire_decoder dec;
    bool open;                   /* in its peer's list of ends */
    bool shaken;                 /* the remote's handshake arrived */
    bool hello_sent;             /* its own handshake and bitfield are out */
    bool rx_done;                /* the receiver actor ends after this message */
    bool flush_queued;
    bool am_choking, am_interested, peer_choking, peer_interested;
    uint8_t *rhave;              /* per piece: the remote announced it */
    uint32_t *asked, nasked, capasked; /* blocks asked of the remote, not answered */
    uint32_t *rq, nrq, caprq;    /* blocks the remote asked of it, not yet written (oldest first) */
    uint32_t cur_piece;          /* the piece it fills on this link (UINT32_MAX: none) */
    uint64_t got_period, sent_period; /* payload from / to the remote since the last rechoke */
} trade_end;

struct trade_link {
    uint64_t id;
    trade_end e[2];
};

typedef enum top_type { TOP_SYN = 1, TOP_SYNACK, TOP_RST, TOP_FLUSH, TOP_ACK, TOP_FIN, TOP_STOP } top_type;

typedef struct trade_op {
    uint8_t type;
    trade_end *e;
} trade_op;

struct trade_peer {
    prng rng;
    bool present;                /* arrived and not gone: accepts links */
    trade_end **ends;            /* open ends, in the order they opened */
    uint32_t nends, capends;
    uint16_t *avail;             /* per piece: open ends whose remote has it */
    uint16_t *piece_got;         /* per piece: blocks held */
    uint8_t *pending;            /* per block: 0, 1 asked of the seeder, 2 asked on a link */
    uint32_t seeder_out;
    uint32_t seeder_piece;       /* the piece the seeder connection fills (UINT32_MAX: none) */
    hk_time next_rechoke, next_optimistic;
    uint64_t optimistic;         /* the link of the optimistic unchoke (0: none) */
    trade_op *ops;
    uint32_t ophead, oplen, opcap;
    uint64_t bytes_in, bytes_out;
};

enum { PEND_NONE = 0, PEND_SEEDER, PEND_LINK };

static trade_end *remote(trade_end *e)
{
    return &e->link->e[1 - e->side];
}

static hk_time now_of(const leecher *l)
{
    return sim_now(l->world);
}

static void top_push(leecher *l, top_type t, trade_end *e)
{
    struct trade_peer *tr = l->trade;
    if (tr->oplen == tr->opcap) {
        uint32_t cap = tr->opcap ? tr->opcap * 2 : 32;
        trade_op *v = malloc(cap * sizeof *v);
        if (!v)
            abort();
        for (uint32_t i = 0; i < tr->oplen; i++)
            v[i] = tr->ops[(tr->ophead + i) % tr->opcap];
        free(tr->ops);
        tr->ops = v;
        tr->opcap = cap;
        tr->ophead = 0;
    }
    tr->ops[(tr->ophead + tr->oplen++) % tr->opcap] = (trade_op){.type = (uint8_t)t, .e = e};
}

void trade_drain(leecher *l, sim_outbox *ob)
{
    struct trade_peer *tr = l->trade;
    while (tr->oplen) {
        trade_op op = tr->ops[tr->ophead];
        tr->ophead = (tr->ophead + 1) % tr->opcap;
        tr->oplen--;
        trade_end *e = op.e, *r = remote(e);
        switch ((top_type)op.type) {
        case TOP_SYN: msg_put(ob, r->mb, msg_new_ctl(MSG_SYN)); break;
        case TOP_SYNACK: msg_put(ob, r->mb, msg_new_ctl(MSG_SYNACK)); break;
        case TOP_RST: msg_put(ob, r->mb, msg_new_ctl(MSG_RST)); break;
        case TOP_ACK: msg_put(ob, r->mb, msg_new_ctl(MSG_ACK)); break;
        case TOP_FIN: msg_put(ob, r->mb, msg_new_ctl(MSG_FIN)); break;
        case TOP_STOP: msg_put(ob, e->mb, msg_new_ctl(MSG_STOP)); break;
        case TOP_FLUSH: {
            e->flush_queued = false;
            if (!e->open)
                break;
            sim_msg *m = stream_take_flight(&e->out, l->world->sc->seeder.window);
            if (!m)
                break;
            msg_put(ob, r->mb, msg_new_ctl(MSG_HEAD)); /* the flight's first segment (stream.h) */
            msg_put(ob, r->mb, m);
            break;
        }
        }
    }
}

/* ---------------- sending on a link ---------------- */

static void send_bytes(trade_end *e, const uint8_t *b, size_t n, uint32_t virt)
{
    if (!e->open)
        return;
    if (n)
        stream_write(&e->out, b, (uint32_t)n);
    if (virt)
        stream_write_virtual(&e->out, virt);
    if (!e->flush_queued && !e->out.inflight) {
        e->flush_queued = true;
        top_push(e->l, TOP_FLUSH, e);
    }
}

static void send_simple(trade_end *e, wire_msg_type t)
{
    uint8_t b[WIRE_SIMPLE_LEN];
    send_bytes(e, b, wire_encode_simple(b, t), 0);
}

static uint32_t blocks_in_piece(const leecher *l, uint32_t p)
{
    uint32_t first = p * l->tor.lay.bpp, end = first + l->tor.lay.bpp;
    return (end > l->tor.lay.nblocks ? l->tor.lay.nblocks : end) - first;
}

static bool piece_complete(const leecher *l, uint32_t p)
{
    return l->trade->piece_got[p] == blocks_in_piece(l, p);
}

/* The handshake, then the bitfield of the complete pieces (none: no bitfield). */
static void send_hello(trade_end *e)
{
    leecher *l = e->l;
    uint8_t reserved[WIRE_RESERVED_LEN] = {0}, peer_id[20], hs[WIRE_HANDSHAKE_LEN];
    char id[21];
    snprintf(id, sizeof id, "-SM0100-%012u", l->id);
    memcpy(peer_id, id, 20);
    send_bytes(e, hs, wire_encode_handshake(hs, reserved, l->world->info_hashes[l->torrent], peer_id), 0);
    e->hello_sent = true;
    uint32_t n = wire_bitfield_len(l->tor.lay.piece_count), have = 0;
    uint8_t *bits = calloc(n + WIRE_BITFIELD_HEADER_LEN, 1);
    if (!bits)
        abort();
    for (uint32_t p = 0; p < l->tor.lay.piece_count; p++)
        if (piece_complete(l, p)) {
            bits[WIRE_BITFIELD_HEADER_LEN + p / 8] |= (uint8_t)(0x80u >> (p % 8));
            have++;
        }
    if (have) {
        wire_encode_bitfield_header(bits, n);
        send_bytes(e, bits, WIRE_BITFIELD_HEADER_LEN + n, 0);
    }
    free(bits);
}

static void set_choking(trade_end *e, bool choke)
{
    if (e->am_choking == choke)
        return;
    e->am_choking = choke;
    if (choke)
        e->nrq = 0; /* no fast extension between leechers: the requests not yet written are dropped */
    send_simple(e, choke ? WIRE_CHOKE : WIRE_UNCHOKE);
}

/* Writes the remote's requests while the send buffer has room. */
static void serve(trade_end *e)
{
    leecher *l = e->l;
    uint32_t done = 0;
    while (done < e->nrq && e->open && !e->am_choking && e->out.queued + e->out.inflight < SERVE_BUF) {
        uint32_t b = e->rq[done++], len = lk_layout_block_len(&l->tor.lay, b);
        uint8_t h[WIRE_PIECE_HEADER_LEN];
        send_bytes(e, h, wire_encode_piece_header(h, b / l->tor.lay.bpp, (b % l->tor.lay.bpp) * TBLOCK, len), len);
        e->sent_period += len;
        l->trade->bytes_out += len;
    }
    if (done) { /* rq is NULL until the first request */
        memmove(e->rq, e->rq + done, (e->nrq - done) * sizeof *e->rq);
        e->nrq -= done;
    }
}

/* ---------------- the peer's ends ---------------- */

static void add_end(trade_end *e)
{
    struct trade_peer *tr = e->l->trade;
    if (tr->nends == tr->capends) {
        tr->capends = tr->capends ? tr->capends * 2 : 16;
        tr->ends = realloc(tr->ends, tr->capends * sizeof *tr->ends);
        if (!tr->ends)
            abort();
    }
    tr->ends[tr->nends++] = e;
    e->open = true;
}

/* The link's requests go back to the book (another link or the seeder may ask them). */
static void requeue_asked(trade_end *e)
{
    leecher *l = e->l;
    for (uint32_t i = 0; i < e->nasked; i++) {
        uint32_t b = e->asked[i];
        if (l->trade->pending[b] == PEND_LINK) {
            l->trade->pending[b] = PEND_NONE;
            lk_book_answered(&l->lk.book, b);
            lk_book_requeue(&l->lk.book, b);
        }
    }
    e->nasked = 0;
    e->cur_piece = UINT32_MAX;
}

static void request_more(trade_end *e);

/* Requests were put back: every link, and the seeder connection, may ask them now. */
static void prompt_all(leecher *l)
{
    for (uint32_t i = 0; i < l->trade->nends; i++)
        request_more(l->trade->ends[i]);
    peer_request_more(l);
}

/* Closes e on its side: out of the list, its remote's pieces out of the availability, its requests back; with fin
 * the remote is told and e's receiver stopped (from another actor: a MSG_STOP; from itself: rx_done). */
static void close_end(trade_end *e, bool fin, bool from_rx)
{
    leecher *l = e->l;
    struct trade_peer *tr = l->trade;
    if (!e->open)
        return;
    e->open = false;
    for (uint32_t i = 0; i < tr->nends; i++)
        if (tr->ends[i] == e) {
            memmove(&tr->ends[i], &tr->ends[i + 1], (tr->nends - i - 1) * sizeof *tr->ends);
            tr->nends--;
            break;
        }
    for (uint32_t p = 0; p < l->tor.lay.piece_count; p++)
        if (e->rhave[p])
            tr->avail[p]--;
    requeue_asked(e);
    stream_clear(&e->out);
    evlog_line(l->world->log, now_of(l), "peer p%u unlink t%llu", l->id, (unsigned long long)e->link->id);
    if (fin)
        top_push(l, TOP_FIN, e);
    if (from_rx)
        e->rx_done = true;
    else
        top_push(l, TOP_STOP, e);
    if (tr->present)
        prompt_all(l);
}

static void link_error(trade_end *e, const char *why)
{
    e->l->lk.protocol_errors++;
    evlog_line(e->l->world->log, now_of(e->l), "peer p%u link t%llu error %s", e->l->id,
               (unsigned long long)e->link->id, why);
    close_end(e, true, true);
}

/* ---------------- requests (rarest first) ---------------- */

static bool askable(const leecher *l, uint32_t b)
{
    return !lk_book_has(&l->lk.book, b) && l->trade->pending[b] == PEND_NONE && !lk_book_lacks(&l->lk.book, b);
}

static uint32_t askable_in(const leecher *l, uint32_t p)
{
    for (uint32_t b = p * l->tor.lay.bpp, n = blocks_in_piece(l, p); n > 0; b++, n--)
        if (askable(l, b))
            return b;
    return LK_NO_BLOCK;
}

/* The next block to ask of a remote that has the pieces rhave (NULL: every piece, the seeder): of the piece it
 * fills (*cur), else of the rarest piece (a begun one first among equals, the rest of the ties from the peer's
 * PRNG), which becomes *cur. LK_NO_BLOCK: none. */
static uint32_t pick(leecher *l, const uint8_t *rhave, uint32_t *cur)
{
    struct trade_peer *tr = l->trade;
    if (*cur != UINT32_MAX) {
        uint32_t b = askable_in(l, *cur);
        if (b != LK_NO_BLOCK)
            return b;
    }
    uint32_t np = l->tor.lay.piece_count, off = (uint32_t)prng_below(&tr->rng, np), best = UINT32_MAX;
    uint64_t best_key = UINT64_MAX;
    for (uint32_t i = 0; i < np; i++) {
        uint32_t p = (i + off) % np;
        if ((rhave && !rhave[p]) || piece_complete(l, p))
            continue;
        uint64_t key = (uint64_t)tr->avail[p] * 2 + (tr->piece_got[p] ? 0 : 1);
        if (key < best_key && askable_in(l, p) != LK_NO_BLOCK) {
            best_key = key;
            best = p;
        }
    }
    *cur = best;
    return best == UINT32_MAX ? LK_NO_BLOCK : askable_in(l, best);
}

static void request_more(trade_end *e)
{
    leecher *l = e->l;
    if (!e->open || !e->shaken || e->peer_choking || !e->am_interested || l->lk.completed)
        return;
    if (e->nasked > l->prof->pipeline / 2)
        return; /* refilled in batches: fewer, larger request flights */
    while (e->nasked < l->prof->pipeline) {
        uint32_t b = pick(l, e->rhave, &e->cur_piece);
        if (b == LK_NO_BLOCK)
            break;
        l->trade->pending[b] = PEND_LINK;
        lk_book_ask_at(&l->lk.book, b, now_of(l));
        if (e->nasked == e->capasked) {
            e->capasked = e->capasked ? e->capasked * 2 : 16;
            e->asked = realloc(e->asked, e->capasked * sizeof *e->asked);
            if (!e->asked)
                abort();
        }
        e->asked[e->nasked++] = b;
        uint8_t m[WIRE_BLOCK_MSG_LEN];
        send_bytes(e, m, wire_encode_block(m, WIRE_REQUEST, b / l->tor.lay.bpp, (b % l->tor.lay.bpp) * TBLOCK,
                                           lk_layout_block_len(&l->tor.lay, b)), 0);
    }
}

/* Interested exactly when the remote has a piece e's peer lacks. */
static void update_interest(trade_end *e)
{
    leecher *l = e->l;
    bool want = false;
    for (uint32_t p = 0; p < l->tor.lay.piece_count && !want && !l->lk.completed; p++)
        want = e->rhave[p] && !piece_complete(l, p) && !lk_book_lacks(&l->lk.book, p * l->tor.lay.bpp);
    if (want != e->am_interested) {
        e->am_interested = want;
        send_simple(e, want ? WIRE_INTERESTED : WIRE_NOT_INTERESTED);
    }
    request_more(e);
}

/* ---------------- choking ---------------- */

static uint32_t unchoked_count(const struct trade_peer *tr)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < tr->nends; i++)
        n += !tr->ends[i]->am_choking;
    return n;
}

static uint64_t tft_score(const leecher *l, const trade_end *e)
{
    return l->lk.completed ? e->sent_period : e->got_period;
}

/* e before f in the tit-for-tat order: the higher score, then the lower peer number. */
static bool tft_before(const leecher *l, const trade_end *e, const trade_end *f)
{
    uint64_t a = tft_score(l, e), b = tft_score(l, f);
    return a != b ? a > b : e->link->e[1 - e->side].l->id < f->link->e[1 - f->side].l->id;
}

static void rechoke(leecher *l, hk_time now)
{
    struct trade_peer *tr = l->trade;
    const sim_peers_cfg *pc = &l->world->sc->peers;
    trade_end **c = malloc((tr->nends + 1) * sizeof *c);
    if (!c)
        abort();
    uint32_t n = 0;
    for (uint32_t i = 0; i < tr->nends; i++)
        if (tr->ends[i]->shaken && tr->ends[i]->peer_interested) {
            uint32_t k = n++; /* insertion sort: a few dozen ends at most */
            while (k > 0 && tft_before(l, tr->ends[i], c[k - 1])) {
                c[k] = c[k - 1];
                k--;
            }
            c[k] = tr->ends[i];
        }
    uint32_t regular = pc->unchoke_slots - 1 < n ? pc->unchoke_slots - 1 : n;
    bool opt_valid = false;
    for (uint32_t i = regular; i < n; i++)
        opt_valid |= c[i]->link->id == tr->optimistic;
    if ((now >= tr->next_optimistic || !opt_valid) && n > regular) {
        tr->optimistic = c[regular + prng_below(&tr->rng, n - regular)]->link->id;
        if (now >= tr->next_optimistic)
            tr->next_optimistic = now + pc->optimistic;
    }
    for (uint32_t i = 0; i < tr->nends; i++) {
        trade_end *e = tr->ends[i];
        bool keep = e->link->id == tr->optimistic && e->peer_interested;
        for (uint32_t k = 0; k < regular && !keep; k++)
            keep = c[k] == e;
        set_choking(e, !keep);
        e->got_period = e->sent_period = 0;
    }
    free(c);
}

hk_time trade_next(const leecher *l)
{
    return l->trade && l->trade->present ? l->trade->next_rechoke : HK_TIME_NEVER;
}

void trade_tick(leecher *l, hk_time now)
{
    struct trade_peer *tr = l->trade;
    if (!tr->present || now < tr->next_rechoke)
        return;
    rechoke(l, now);
    tr->next_rechoke = now + l->world->sc->peers.rechoke;
}

/* ---------------- incoming messages ---------------- */

static void on_have(trade_end *e, uint32_t p)
{
    if (p >= e->l->tor.lay.piece_count || e->rhave[p])
        return;
    e->rhave[p] = 1;
    e->l->trade->avail[p]++;
}

static void on_bitfield(trade_end *e, const wire_msg *m)
{
    for (uint32_t p = 0; p < e->l->tor.lay.piece_count; p++)
        if (m->u.bitfield.bits[p / 8] & (0x80u >> (p % 8)))
            on_have(e, p);
    update_interest(e);
}

static void on_request(trade_end *e, const wire_msg *m)
{
    leecher *l = e->l;
    uint32_t p = m->u.block.index, begin = m->u.block.begin, len = m->u.block.length;
    uint32_t b = p * l->tor.lay.bpp + begin / TBLOCK;
    if (p >= l->tor.lay.piece_count || begin % TBLOCK || begin / TBLOCK >= l->tor.lay.bpp || b >= l->tor.lay.nblocks ||
        len != lk_layout_block_len(&l->tor.lay, b)) {
        link_error(e, "bad request");
        return;
    }
    if (e->am_choking || !piece_complete(l, p))
        return; /* no fast extension between leechers: dropped */
    if (e->nrq == e->caprq) {
        e->caprq = e->caprq ? e->caprq * 2 : 16;
        e->rq = realloc(e->rq, e->caprq * sizeof *e->rq);
        if (!e->rq)
            abort();
    }
    e->rq[e->nrq++] = b;
    serve(e);
}

static void take_asked(trade_end *e, uint32_t b, bool *was)
{
    *was = false;
    for (uint32_t i = 0; i < e->nasked; i++)
        if (e->asked[i] == b) {
            e->asked[i] = e->asked[--e->nasked];
            *was = true;
            return;
        }
}

static void on_piece(trade_end *e, const wire_msg *m)
{
    leecher *l = e->l;
    uint32_t p = m->u.piece.index, begin = m->u.piece.begin, len = m->u.piece.len;
    uint32_t b = p * l->tor.lay.bpp + begin / TBLOCK;
    if (begin % TBLOCK || begin / TBLOCK >= l->tor.lay.bpp || b >= l->tor.lay.nblocks ||
        len != lk_layout_block_len(&l->tor.lay, b)) {
        link_error(e, "bad piece");
        return;
    }
    bool was;
    take_asked(e, b, &was);
    if (was && l->trade->pending[b] == PEND_LINK) {
        l->trade->pending[b] = PEND_NONE;
        lk_book_answered(&l->lk.book, b);
    } else if (!was)
        l->lk.unrequested++;
    if (l->lk.completed || !lk_book_take(&l->lk.book, b)) {
        l->lk.dup_blocks++;
        request_more(e);
        return;
    }
    l->lk.bytes += len;
    l->trade->bytes_in += len;
    e->got_period += len;
    swarm_note_block(l->world, l->torrent, b);
    trade_block_taken(l, b);
    if (lk_book_done(&l->lk.book)) {
        peer_completed(l);
        return;
    }
    request_more(e);
}

static void on_wire(trade_end *e, const wire_msg *m)
{
    leecher *l = e->l;
    switch (m->type) {
    case WIRE_HANDSHAKE:
        if (memcmp(m->u.handshake.info_hash, l->world->info_hashes[l->torrent], 20) != 0) {
            link_error(e, "handshake for another torrent");
            return;
        }
        e->shaken = true;
        wire_decoder_set_piece_count(&e->dec, l->tor.lay.piece_count);
        break;
    case WIRE_BITFIELD: on_bitfield(e, m); break;
    case WIRE_HAVE:
        on_have(e, m->u.index);
        update_interest(e);
        break;
    case WIRE_CHOKE:
        e->peer_choking = true;
        if (e->nasked) {
            requeue_asked(e);
            prompt_all(l);
        }
        break;
    case WIRE_UNCHOKE:
        e->peer_choking = false;
        request_more(e);
        break;
    case WIRE_INTERESTED:
        e->peer_interested = true;
        if (e->am_choking && unchoked_count(l->trade) < l->world->sc->peers.unchoke_slots)
            set_choking(e, false); /* a free slot is taken at once */
        break;
    case WIRE_NOT_INTERESTED:
        e->peer_interested = false;
        set_choking(e, true);
        break;
    case WIRE_REQUEST: on_request(e, m); break;
    case WIRE_PIECE: on_piece(e, m); break;
    default: break;
    }
}

static void feed(trade_end *e, const uint8_t *p, size_t n)
{
    while (n > 0 && e->open) {
        size_t used = 0;
        wire_msg m;
        wire_status st = wire_feed(&e->dec, p, n, &used, &m);
        p += used;
        n -= used;
        if (st == WIRE_ERROR) {
            char why[160];
            wire_error_format(wire_decoder_error(&e->dec), why, sizeof why);
            link_error(e, why);
            return;
        }
        if (st == WIRE_NEED_MORE)
            return;
        on_wire(e, &m);
    }
}

/* ---------------- the receiver actor of one end ---------------- */

/* A SYN at the acceptor's end: accepted if its peer is present and has room. */
static void on_syn(trade_end *e)
{
    leecher *l = e->l;
    if (!l->trade->present || l->trade->nends >= l->world->sc->peers.max_links) {
        top_push(l, TOP_RST, e);
        e->rx_done = true;
        return;
    }
    add_end(e);
    evlog_line(l->world->log, now_of(l), "peer p%u accept t%llu p%u", l->id, (unsigned long long)e->link->id,
               remote(e)->l->id);
    top_push(l, TOP_SYNACK, e);
    send_hello(e);
}

static void on_msg(trade_end *e, sim_msg *m)
{
    switch ((sim_msg_type)m->type) {
    case MSG_SYN: on_syn(e); break;
    case MSG_SYNACK: send_hello(e); break;
    case MSG_RST:
        if (e->open)
            evlog_line(e->l->world->log, now_of(e->l), "peer p%u refused t%llu", e->l->id,
                       (unsigned long long)e->link->id);
        close_end(e, false, true);
        break;
    case MSG_HEAD:
        if (e->open)
            top_push(e->l, TOP_ACK, e);
        break;
    case MSG_DATA:
        if (!e->open)
            break;
        if (stream_delivered(&remote(e)->out, m->len))
            top_push(e->l, TOP_ACK, e);
        for (uint32_t i = 0; i < m->nparts && e->open; i++)
            feed(e, m->parts[i].virt ? sim_zero_bytes() : m->parts[i].bytes, m->parts[i].len);
        break;
    case MSG_ACK:
        e->out.inflight = 0;
        serve(e);
        if (e->open && e->out.queued && !e->flush_queued) {
            e->flush_queued = true;
            top_push(e->l, TOP_FLUSH, e);
        }
        break;
    case MSG_FIN: close_end(e, false, true); break;
    case MSG_STOP: e->rx_done = true; break;
    }
}

static void rx_exit(int failed, void *data)
{
    (void)failed;
    trade_end *e = data;
    outbox_drop(&e->box); /* empty unless killed */
}

static void rx_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    trade_end *e = sg_actor_self_get_data();
    sg_actor_daemonize(sg_actor_self());
    sg_actor_on_exit(rx_exit, e);
    sg_mailbox_set_receiver(sg_mailbox_get_name(e->mb));
    while (!e->rx_done) {
        sim_msg *m = sg_mailbox_get(e->mb);
        on_msg(e, m);
        msg_release(m);
        leecher_drain(e->l, &e->box);
        outbox_reap(&e->box);
    }
    outbox_close(&e->box);
}

/* ---------------- arrival, departure ---------------- */

static void end_init(trade_end *e, trade_link *k, int side, leecher *l)
{
    e->l = l;
    e->link = k;
    e->side = side;
    stream_init(&e->out);
    wire_limits lim = {.max_msg_len = 0, .piece_count = 0, .skip_handshake = false, .allow_unknown = true};
    wire_decoder_init(&e->dec, &lim);
    e->am_choking = e->peer_choking = true;
    e->cur_piece = UINT32_MAX;
    e->rhave = calloc(l->tor.lay.piece_count, 1);
    if (!e->rhave)
        abort();
    char name[48];
    snprintf(name, sizeof name, "t%llu.%d", (unsigned long long)k->id, side);
    e->mb = sg_mailbox_by_name(name);
}

static void connect_to(leecher *l, leecher *r)
{
    trade_link *k = calloc(1, sizeof *k);
    if (!k)
        abort();
    k->id = ++l->world->next_link_id;
    end_init(&k->e[0], k, 0, l);
    end_init(&k->e[1], k, 1, r);
    add_end(&k->e[0]);
    evlog_line(l->world->log, now_of(l), "peer p%u link t%llu p%u", l->id, (unsigned long long)k->id, r->id);
    char name[48];
    for (int s = 0; s < 2; s++) {
        snprintf(name, sizeof name, "trx%llu.%d", (unsigned long long)k->id, s);
        sim_spawn(name, k->e[s].l->host, rx_main, &k->e[s]);
    }
    top_push(l, TOP_SYN, &k->e[0]);
}

void trade_arrive(leecher *l)
{
    struct trade_peer *tr = l->trade;
    sim_world *w = l->world;
    tr->present = true;
    tr->next_rechoke = now_of(l) + w->sc->peers.rechoke;
    tr->next_optimistic = now_of(l) + w->sc->peers.optimistic;
    uint32_t *cand = malloc((w->npeers + 1) * sizeof *cand), n = 0;
    if (!cand)
        abort();
    for (uint32_t i = 0; i < w->npeers; i++)
        if (i != l->id && w->peers[i].trade && w->peers[i].trade->present && w->peers[i].torrent == l->torrent)
            cand[n++] = i;
    for (uint32_t k = 0; k < w->sc->peers.connect && k < n; k++) { /* a partial Fisher-Yates draw */
        uint32_t j = k + (uint32_t)prng_below(&tr->rng, n - k), t = cand[k];
        cand[k] = cand[j];
        cand[j] = t;
        if (tr->nends < w->sc->peers.max_links)
            connect_to(l, &w->peers[cand[k]]);
    }
    free(cand);
}

void trade_finish(leecher *l, sim_outbox *ob)
{
    struct trade_peer *tr = l->trade;
    hk_time stop = l->world->sc->run.duration - l->world->sc->run.quiesce;
    hk_time until = l->lk.completed ? now_of(l) + l->world->sc->peers.seed_time : now_of(l);
    if (until > stop)
        until = stop;
    while (now_of(l) < until) {
        hk_time t = tr->next_rechoke < until ? tr->next_rechoke : until, now = now_of(l);
        if (t > now + 1000)
            sg_actor_sleep_for((double)(t - now) / 1e9);
        else if (t > l->world->now_floor)
            l->world->now_floor = t; /* within SimGrid's precision of the deadline: act on it (world.h) */
        trade_tick(l, now_of(l));
        leecher_drain(l, ob);
        outbox_reap(ob);
    }
    tr->present = false;
    while (tr->nends)
        close_end(tr->ends[tr->nends - 1], true, false);
    leecher_drain(l, ob);
}

/* ---------------- the seeder connection's share, pieces ---------------- */

struct trade_peer *trade_new(leecher *l)
{
    struct trade_peer *tr = calloc(1, sizeof *tr);
    if (!tr)
        abort();
    prng_seed(&tr->rng, l->world->sc->run.seed, 0x7472616465000000ull + l->id);
    tr->avail = calloc(l->tor.lay.piece_count, sizeof *tr->avail);
    tr->piece_got = calloc(l->tor.lay.piece_count, sizeof *tr->piece_got);
    tr->pending = calloc(l->tor.lay.nblocks, 1);
    if (!tr->avail || !tr->piece_got || !tr->pending)
        abort();
    tr->next_rechoke = tr->next_optimistic = HK_TIME_NEVER;
    tr->seeder_piece = UINT32_MAX;
    return tr;
}

uint32_t trade_seeder_pick(leecher *l)
{
    return pick(l, NULL, &l->trade->seeder_piece);
}

uint32_t trade_seeder_out(const leecher *l)
{
    return l->trade->seeder_out;
}

void trade_seeder_asked(leecher *l, uint32_t b)
{
    l->trade->pending[b] = PEND_SEEDER;
    l->trade->seeder_out++;
}

void trade_seeder_answered(leecher *l, uint32_t b)
{
    if (b < l->tor.lay.nblocks && l->trade->pending[b] == PEND_SEEDER) {
        l->trade->pending[b] = PEND_NONE;
        l->trade->seeder_out--;
    }
}

void trade_seeder_requeue_all(leecher *l)
{
    for (uint32_t b = 0; b < l->tor.lay.nblocks && l->trade->seeder_out; b++)
        if (l->trade->pending[b] == PEND_SEEDER) {
            l->trade->pending[b] = PEND_NONE;
            l->trade->seeder_out--;
            lk_book_answered(&l->lk.book, b);
            lk_book_requeue(&l->lk.book, b);
        }
}

void trade_block_taken(leecher *l, uint32_t b)
{
    struct trade_peer *tr = l->trade;
    uint32_t p = b / l->tor.lay.bpp;
    tr->piece_got[p]++;
    if (!piece_complete(l, p))
        return;
    for (uint32_t i = 0; i < tr->nends; i++) {
        trade_end *e = tr->ends[i];
        if (!e->hello_sent)
            continue; /* its bitfield, sent with the handshake, will have the piece */
        uint8_t m[WIRE_INDEX_MSG_LEN];
        send_bytes(e, m, wire_encode_index(m, WIRE_HAVE, p), 0);
        if (e->shaken)
            update_interest(e);
    }
}

uint64_t trade_bytes_in(const leecher *l)
{
    return l->trade ? l->trade->bytes_in : 0;
}

uint64_t trade_bytes_out(const leecher *l)
{
    return l->trade ? l->trade->bytes_out : 0;
}

/* ---------------- the swarm's union ---------------- */

void swarm_note_block(sim_world *w, uint32_t torrent, uint32_t b)
{
    if (torrent != 0)
        return;
    if (!w->swarm_have) {
        lk_layout t;
        if (lk_book_layout(&t, w->torrents[0].size, w->torrents[0].piece_length) < 0)
            abort();
        w->swarm_nblocks = t.nblocks;
        w->swarm_have = calloc((t.nblocks + 7) / 8, 1);
        if (!w->swarm_have)
            abort();
    }
    if (b >= w->swarm_nblocks || (w->swarm_have[b / 8] >> (b % 8) & 1))
        return;
    w->swarm_have[b / 8] |= (uint8_t)(1u << (b % 8));
    if (++w->swarm_held == w->swarm_nblocks)
        w->swarm_copy_at = sim_now(w);
}
