/* seeder_serve: owns serving (docs/design.md §4): queuing accepted requests with an immediate prefetch, the block
 * readiness policy (resident -> send; not resident -> passed over once, its turn comes again later; still not ->
 * disk_load, send when loaded; the loads' records and completions are seeder_loads.c's), the service pass that lets
 * peers take turns while batching each peer's blocks into one send(), and rejects. */
#include <assert.h>
#include <string.h>

#include "extension.h"
#include "seeder_internal.h"

/* Pad files are zeros: sent from this buffer, never read from a disk. */
static const uint8_t zeros[16384];

/* ---------------------------------------------------------------------------------------------------------------- */
/* A request's extents                                                                                               */

typedef struct req_iter {
    bool md, md_done;
    hk_extent md_ext;
    uint64_t storage;
    hk_span_iter it;
} req_iter;

typedef struct req_piece {
    bool pad;
    hk_extent ext;           /* when !pad (for a pad span: only ext.length is meaningful) */
} req_piece;

/* t is record rec of the table (the peer's torrent). */
static bool req_iter_init(req_iter *ri, const hk_torrent *t, uint32_t rec, const hk_request *r)
{
    memset(ri, 0, sizeof *ri);
    ri->storage = hk_tt_storage(t, rec);
    if (r->kind == HK_REQ_METADATA) {
        ri->md = true;
        ri->md_ext.storage = ri->storage;
        ri->md_ext.file = HK_FILE_METAINFO;
        ri->md_ext.offset = t->info_start + (uint64_t)r->index * EXT_UT_METADATA_PIECE_LEN;
        ri->md_ext.length = r->length;
        return true;
    }
    uint64_t pos = (uint64_t)r->index * t->piece_length + r->begin;
    return hk_span_iter_init(&ri->it, t, pos, r->length);
}

static bool req_iter_next(req_iter *ri, req_piece *out)
{
    if (ri->md) {
        if (ri->md_done)
            return false;
        ri->md_done = true;
        out->pad = false;
        out->ext = ri->md_ext;
        return true;
    }
    hk_span sp;
    if (!hk_span_next(&ri->it, &sp))
        return false;
    out->pad = sp.pad;
    out->ext.storage = ri->storage;
    out->ext.file = sp.file;
    out->ext.offset = sp.offset;
    out->ext.length = sp.length;
    return true;
}

static void prefetch(hk_seeder *s, const hk_torrent *t, uint32_t rec, const hk_request *r)
{
    req_iter ri;
    req_piece pc;
    if (!req_iter_init(&ri, t, rec, r))
        return;
    while (req_iter_next(&ri, &pc))
        if (!pc.pad)
            s->rt.disk_prefetch(s->rt.base.ctx, &pc.ext);
}

static bool resident(hk_seeder *s, const hk_torrent *t, uint32_t rec, const hk_request *r)
{
    req_iter ri;
    req_piece pc;
    if (!req_iter_init(&ri, t, rec, r))
        return false;
    while (req_iter_next(&ri, &pc))
        if (!pc.pad && !s->rt.disk_resident(s->rt.base.ctx, &pc.ext))
            return false;
    return true;
}

/* Issues one disk_load per non-pad extent, all with the request's token. Returns the number issued. */
static uint32_t load(hk_seeder *s, const hk_torrent *t, uint32_t rec, hk_request *r, uint64_t token)
{
    req_iter ri;
    req_piece pc;
    uint32_t n = 0;
    if (!req_iter_init(&ri, t, rec, r))
        return 0;
    while (req_iter_next(&ri, &pc)) {
        if (pc.pad)
            continue;
        s->rt.disk_load(s->rt.base.ctx, &pc.ext, token);
        n++;
    }
    s->stats.disk_loads += n;
    return n;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Queuing and rejecting                                                                                             */

bool hks_send_reject(hk_seeder *s, hk_peer *p, uint32_t index, uint32_t begin, uint32_t length)
{
    uint8_t b[WIRE_BLOCK_MSG_LEN];
    wire_encode_block(b, WIRE_REJECT, index, begin, length);
    s->stats.requests_rejected++;
    return hks_send_control_bytes(s, p, b, sizeof b);
}

/* A peer whose queue was empty before this request goes to the front of the ready ring, not its back: its one block
 * is served (and flushed by the backend) before the bulk of the peers with long queues continues, so a quiet peer's
 * request waits for no burst of others (issue 12, reactivity). The long queues keep their order among themselves.
 * The pass serves such peers alone (serve_first): the others wait for the next wake-up, at once. */
static void mark_ready_first(hk_seeder *s, hk_peer *p, bool was_empty)
{
    if (!was_empty || p->closed || hk_list_linked(&p->ready_link) || p->room == 0 || hk_rq_len(&p->rq) == 0) {
        hks_mark_ready(s, p);
        return;
    }
    hk_list_insert_head(&s->ready, &p->ready_link);
    s->nready++;
    p->ready_first = true;
}

void hks_queue_block(hk_seeder *s, hk_peer *p, uint32_t index, uint32_t begin, uint32_t length)
{
    hk_torrent *t = hks_peer_torrent(s, p);
    bool was_empty = hk_rq_len(&p->rq) == 0;
    hk_request r = {.index = index, .begin = begin, .length = length, .kind = HK_REQ_BLOCK, .state = HK_RQ_FRESH,
                    .arrived = hk_rq_stamp(s->now)};
    if (!t || !hk_rq_push_back(&p->rq, &r)) {
        hks_log(s, HK_LOG_DEBUG, "peer %llu: %s request %u/%u/%u: out of memory", (unsigned long long)p->id,
               p->fast ? "reject" : "choke on", index, begin, length);
        if (p->fast)
            hks_send_reject(s, p, index, begin, length);
        else
            hks_choke_reset(s, p, "out of memory for its request"); /* cleared by a choke, never silently */
        return;
    }
    p->idle_armed = false; /* the unchoked-idle clock restarts when the queue empties again */
    hks_slot_used(s, p);
    prefetch(s, t, p->torrent, &r);
    mark_ready_first(s, p, was_empty);
    hks_mark_touched(s, p);
}

void hks_reject_queued_blocks(hk_seeder *s, hk_peer *p, const char *why)
{
    uint32_t n = hk_rq_count(&p->rq, HK_REQ_BLOCK);
    if (n == 0 || p->closed)
        return;
    hks_log(s, HK_LOG_DEBUG, "peer %llu: %s %u queued requests (%s)", (unsigned long long)p->id,
           p->fast ? "rejecting" : "dropping", n, why);
    /* All the rejects go out in one send; without memory for it, one send each. */
    size_t bytes = (size_t)n * WIRE_BLOCK_MSG_LEN;
    uint8_t *buf = p->fast ? hk_mem_alloc(&s->mem, bytes) : NULL;
    size_t at = 0;
    for (uint32_t i = 0; i < hk_rq_len(&p->rq) && !p->closed;) {
        hk_request r = *hk_rq_at(&p->rq, i);
        if (r.kind != HK_REQ_BLOCK) {
            i++;
            continue;
        }
        hk_rq_remove_at(&p->rq, i, NULL);
        if (!p->fast)
            s->stats.requests_rejected++;
        else if (buf)
            at += wire_encode_block(buf + at, WIRE_REJECT, r.index, r.begin, r.length);
        else
            hks_send_reject(s, p, r.index, r.begin, r.length);
    }
    if (buf) {
        s->stats.requests_rejected += at / WIRE_BLOCK_MSG_LEN;
        hks_send_control_bytes(s, p, buf, at);
        hk_mem_free(&s->mem, buf, bytes);
    }
    if (!p->closed && hk_rq_len(&p->rq) == 0)
        hk_rq_clear(&p->rq); /* a choked peer holds no queue memory */
    hks_mark_touched(s, p);
}

static bool send_metadata_reject(hk_seeder *s, hk_peer *p, uint32_t piece)
{
    uint8_t buf[WIRE_EXTENDED_HEADER_LEN + EXT_UT_METADATA_MSG_MAX];
    size_t n = ext_ut_metadata_encode_reject(buf + WIRE_EXTENDED_HEADER_LEN, EXT_UT_METADATA_MSG_MAX, piece);
    if (n == 0)
        return true;
    wire_encode_extended_header(buf, p->ut_metadata, (uint32_t)n);
    hks_log(s, HK_LOG_DEBUG, "peer %llu: ut_metadata reject piece %u", (unsigned long long)p->id, piece);
    return hks_send_control_bytes(s, p, buf, WIRE_EXTENDED_HEADER_LEN + n);
}

void hks_queue_metadata(hk_seeder *s, hk_peer *p, uint32_t piece)
{
    hk_torrent *t = hks_peer_torrent(s, p);
    if (!t)
        return;
    uint32_t pieces = ext_ut_metadata_piece_count(t->info_len);
    if (t->info_len == 0 || t->info_len > EXT_METADATA_SIZE_MAX || piece >= pieces || p->ut_metadata == 0 ||
        hk_rq_count(&p->rq, HK_REQ_METADATA) >= HK_METADATA_QUEUE) {
        if (p->ut_metadata)
            send_metadata_reject(s, p, piece);
        return;
    }
    uint32_t len = ext_ut_metadata_piece_len(t->info_len, piece);
    hk_request r = {.index = piece, .begin = 0, .length = len, .kind = HK_REQ_METADATA, .state = HK_RQ_FRESH};
    if (!hk_rq_push_back(&p->rq, &r)) {
        send_metadata_reject(s, p, piece);
        return;
    }
    hks_log(s, HK_LOG_DEBUG, "peer %llu: ut_metadata request piece %u queued", (unsigned long long)p->id, piece);
    prefetch(s, t, p->torrent, &r);
    hks_mark_ready(s, p);
    hks_mark_touched(s, p);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* The batch of one send()                                                                                           */

typedef struct batch {
    uint32_t nsegs;
    uint32_t entries;
    size_t bytes;            /* everything, headers included */
    uint64_t payload;        /* block payload bytes */
    uint32_t blocks;
} batch;

static bool add_seg(hk_seeder *s, batch *b, const hk_segment *seg)
{
    if (b->nsegs == s->segs_cap) {
        uint32_t ncap = s->segs_cap ? s->segs_cap * 2 : 256;
        hk_segment *n = hk_mem_realloc(&s->mem, s->segs, (size_t)s->segs_cap * sizeof *n, (size_t)ncap * sizeof *n);
        if (!n)
            return false;
        s->segs = n;
        s->segs_cap = ncap;
    }
    s->segs[b->nsegs++] = *seg;
    return true;
}

static bool add_bytes(hk_seeder *s, batch *b, const uint8_t *ptr, uint32_t len)
{
    hk_segment seg = {.kind = HK_SEG_BYTES, .u.bytes = {ptr, len}};
    return add_seg(s, b, &seg);
}

/* Header bytes of the message carrying r (written into hdr); 0 if it cannot be encoded. */
static size_t encode_header(const hk_seeder *s, const hk_peer *p, const hk_torrent *t, const hk_request *r,
                            uint8_t *hdr)
{
    (void)s;
    if (r->kind == HK_REQ_BLOCK)
        return wire_encode_piece_header(hdr, r->index, r->begin, r->length);
    size_t dict = ext_ut_metadata_encode_data_header(hdr + WIRE_EXTENDED_HEADER_LEN,
                                                     HK_BATCH_HDR - WIRE_EXTENDED_HEADER_LEN, r->index, t->info_len);
    if (dict == 0)
        return 0;
    wire_encode_extended_header(hdr, p->ut_metadata, (uint32_t)dict + r->length);
    return WIRE_EXTENDED_HEADER_LEN + dict;
}

/* Appends r's message (header + data segments) to the batch. false (batch unchanged) if out of memory. */
static bool append(hk_seeder *s, hk_peer *p, const hk_torrent *t, batch *b, const hk_request *r)
{
    uint32_t segs_before = b->nsegs;
    uint8_t *hdr = s->hdr + (size_t)b->entries * HK_BATCH_HDR;
    size_t hl = encode_header(s, p, t, r, hdr);
    req_iter ri;
    req_piece pc;
    if (hl == 0 || !req_iter_init(&ri, t, p->torrent, r) || !add_bytes(s, b, hdr, (uint32_t)hl))
        goto fail;
    while (req_iter_next(&ri, &pc)) {
        if (!pc.pad) {
            hk_segment seg = {.kind = HK_SEG_EXTENT, .u.extent = pc.ext};
            if (!add_seg(s, b, &seg))
                goto fail;
            continue;
        }
        for (uint32_t left = pc.ext.length; left;) {
            uint32_t n = left < sizeof zeros ? left : (uint32_t)sizeof zeros;
            if (!add_bytes(s, b, zeros, n))
                goto fail;
            left -= n;
        }
    }
    b->entries++;
    b->bytes += hl + r->length;
    if (r->kind == HK_REQ_BLOCK) {
        b->payload += r->length;
        b->blocks++;
        hk_hist_observe(&s->stats.first_byte, hk_rq_age(r->arrived, s->now)); /* flushed in this same call */
    }
    return true;
fail:
    b->nsegs = segs_before;
    return false;
}

static void flush(hk_seeder *s, hk_peer *p, batch *b)
{
    if (b->nsegs == 0)
        return;
    hk_torrent *t = hks_peer_torrent(s, p);
    assert(b->bytes <= p->room); /* data is batched within room */
    s->rt.send(s->rt.base.ctx, p->conn, s->segs, b->nsegs);
    hk_peer_account(p, b->bytes);
    p->last_send = s->now;
    p->uploaded += b->payload;
    if (t)
        hk_torrent_add_uploaded(t, b->payload); /* an attached peer: t has its side block (hk_tt_peer_attach) */
    s->stats.bytes_sent += b->payload;
    s->stats.blocks_sent += b->blocks;
    hks_log(s, HK_LOG_TRACE, "peer %llu: sent %u messages (%u blocks, %zu bytes) in one send",
            (unsigned long long)p->id, b->entries, b->blocks, b->bytes);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* One peer's turn                                                                                                   */

typedef enum serve_end {
    SERVE_SHARE_USED = 0,    /* sent its share; may have more */
    SERVE_YIELDED,           /* moved requests back (not resident): give it another turn after the others */
    SERVE_BLOCKED,           /* no room, waiting on the disk, or nothing queued */
    SERVE_GONE,              /* closed or choked during its turn */
    SERVE_RATE_GLOBAL,       /* upload rate caps: the global bucket is short (the pass stops) */
    SERVE_RATE_TORRENT,      /* upload rate caps: its torrent's bucket is short (the others go on) */
} serve_end;

/* A request is not resident. First time: passed over for this turn (docs/design.md §4's "back of the queue once": the
 * peer's other requests and the other peers go first, while the prefetch issued on arrival works); the relative
 * order of the requests is kept, which keeps disk reads in request order. Second time, in a later turn: disk_load,
 * sent when loaded. */
static bool not_resident(hk_seeder *s, hk_peer *p, const hk_torrent *t, hk_request *r, uint32_t *yielded)
{
    if (r->state == HK_RQ_FRESH) {
        r->state = HK_RQ_REQUEUED;
        r->turn = p->turn;
        s->stats.requeues++;
        (*yielded)++;
        hks_log(s, HK_LOG_TRACE, "peer %llu: %u/%u/%u not resident: its turn comes again later",
                (unsigned long long)p->id, r->index, r->begin, r->length);
        return true;
    }
    uint64_t token = hks_load_begin(s, p);
    if (token == 0) {
        hks_close_peer(s, p, true, "out of memory for a disk load");
        return false;
    }
    r->token = token;
    r->state = HK_RQ_LOADING;
    r->retry = 0;
    r->loads = load(s, t, p->torrent, r, token);
    hks_load_issued(s, token, r->loads);
    hks_log(s, HK_LOG_TRACE, "peer %llu: %u/%u/%u still not resident: disk load %llu", (unsigned long long)p->id,
            r->index, r->begin, r->length, (unsigned long long)token);
    if (r->loads == 0) {
        r->state = HK_RQ_LOADED; /* only pad bytes: nothing to wait for */
        r->token = 0;
    }
    return true;
}

typedef enum turn_check {
    TURN_GO_ON = 0,          /* the turn was renewed: serve on */
    TURN_STOP,               /* stop serving this peer for now */
    TURN_GONE,               /* choked or closed */
} turn_check;

/* A block of `length` bytes may not go out: p's credit or slice is used up. What is batched goes first (before any
 * choke), then the turn ends (seeder_choke.c): renewed, requeued or disconnected. */
static turn_check turn_used_up(hk_seeder *s, hk_peer *p, batch *b, uint32_t length)
{
    flush(s, p, b);
    if (p->choke.state != HK_CHOKE_UNCHOKED) {
        assert(!"a choked peer has no block queued: the choke rejected them");
        hks_reject_queued_blocks(s, p, "choked");
        return TURN_GO_ON;
    }
    bool credit_out = p->choke.credit < length;
    if (!hks_turn_over(s, p, credit_out ? "credit used up" : "slice over") || p->choke.state != HK_CHOKE_UNCHOKED)
        return TURN_GONE;
    if (!hk_choker_may_send(&s->choker, &p->choke, s->now, length)) {
        assert(!"a renewed turn allows one block (credit >= max_block)");
        return TURN_STOP;
    }
    return TURN_GO_ON;
}

/* Upload rate caps: the bytes of the data message carrying r (header included), what the buckets are charged. */
static uint64_t rate_cost(const hk_seeder *s, const hk_peer *p, const hk_torrent *t, const hk_request *r)
{
    if (r->kind == HK_REQ_BLOCK)
        return WIRE_PIECE_HEADER_LEN + (uint64_t)r->length;
    uint8_t hdr[HK_BATCH_HDR];
    return encode_header(s, p, t, r, hdr) + (uint64_t)r->length;
}

/* Upload rate caps: true when r's message may go now (*cost: the tokens to take, 0 when nothing caps it); when not,
 * *end says which bucket is short and r is counted as delayed (once). */
static bool rate_ok(hk_seeder *s, const hk_peer *p, const hk_torrent *t, hk_request *r, uint64_t *cost,
                    serve_end *end)
{
    *cost = 0;
    if (!s->cfg.upload_rate && !hk_torrent_rate_slot(t))
        return true; /* nothing caps it */
    *cost = rate_cost(s, p, t, r);
    hks_rate_verdict v = hks_rate_check(s, t, *cost);
    if (v == HKS_RATE_OK)
        return true;
    if (!r->rate_waited) {
        r->rate_waited = 1;
        s->stats.rate_delayed_bytes += *cost;
    }
    hks_log(s, HK_LOG_TRACE, "peer %llu: %u/%u/%u waits for %s tokens", (unsigned long long)p->id, r->index,
            r->begin, r->length, v == HKS_RATE_SHORT_GLOBAL ? "global" : "torrent");
    *end = v == HKS_RATE_SHORT_GLOBAL ? SERVE_RATE_GLOBAL : SERVE_RATE_TORRENT;
    return false;
}

/* The request at *i, or the first after it, that may be sent in this turn: those waiting for the disk, a retry,
 * their next turn or their piece's verification (seeder_verify.c) are passed over. NULL when none is left;
 * *gone when the peer was closed meanwhile. */
static hk_request *next_servable(hk_seeder *s, hk_peer *p, hk_torrent *t, uint32_t *i, bool *gone)
{
    *gone = false;
    while (*i < hk_rq_len(&p->rq)) {
        hk_request *r = hk_rq_at(&p->rq, *i);
        if (r->state == HK_RQ_LOADING || r->state == HK_RQ_BACKOFF ||
            (r->state == HK_RQ_REQUEUED && r->turn == p->turn)) {
            (*i)++;
            continue;
        }
        if (r->kind == HK_REQ_BLOCK && !t->all_good) {
            hks_gate g = hks_verify_gate(s, p, t, *i);
            if (g == HKS_GATE_GONE) {
                *gone = true;
                return NULL;
            }
            if (g == HKS_GATE_WAIT)
                (*i)++;
            if (g != HKS_GATE_GO)
                continue;
            r = hk_rq_at(&p->rq, *i);
        }
        return r;
    }
    return NULL;
}

/* The request at i goes into the batch: charged to the choker and the buckets, taken off the queue. false when
 * memory ran out (the peer is closed). */
static bool take_request(hk_seeder *s, hk_peer *p, hk_torrent *t, batch *b, uint32_t i, uint64_t cost)
{
    hk_request done = *hk_rq_at(&p->rq, i);
    if (!append(s, p, t, b, &done)) {
        flush(s, p, b);
        hks_close_peer(s, p, true, "out of memory while serving it");
        return false;
    }
    hk_rq_remove_at(&p->rq, i, NULL);
    if (done.kind == HK_REQ_BLOCK)
        hk_choker_charge(&s->choker, &p->choke, done.length);
    if (cost)
        hks_rate_charge(s, t, cost);
    return true;
}

/* One turn of peer p: at most `share` messages, batched HK_BATCH_BLOCKS per send(). */
static serve_end serve_peer(hk_seeder *s, hk_peer *p, uint32_t share, uint32_t *sent)
{
    hk_torrent *t = hks_peer_torrent(s, p);
    batch b;
    memset(&b, 0, sizeof b);
    *sent = 0;
    if (!t)
        return SERVE_BLOCKED;
    p->turn++;
    uint32_t i = 0, yielded = 0;
    bool no_room = false;
    serve_end end = SERVE_BLOCKED;
    for (;;) {
        if (b.entries >= HK_BATCH_BLOCKS)
            flush(s, p, &b);
        if (*sent >= share) {
            end = SERVE_SHARE_USED;
            break;
        }
        bool gone;
        hk_request *r = next_servable(s, p, t, &i, &gone);
        if (gone)
            return SERVE_GONE; /* closed: the batch is dropped with the connection */
        if (!r)
            break; /* nothing queued, or everything left waits (the disk, a verify, or its next turn) */
        size_t hdr = r->kind == HK_REQ_BLOCK ? WIRE_PIECE_HEADER_LEN : HK_BATCH_HDR; /* metadata: upper bound */
        if (p->room < b.bytes || p->room - b.bytes < hdr + r->length) {
            no_room = true;
            break;
        }
        if (r->state != HK_RQ_LOADED && !resident(s, t, p->torrent, r)) {
            r->checked = 1; /* a miss: counted in requeues (FRESH) */
            if (!not_resident(s, p, t, r, &yielded))
                return SERVE_GONE; /* closed: the batch is dropped with the connection */
            i++;
            continue;
        }
        if (!r->checked && r->state == HK_RQ_FRESH) { /* resident at its first check: a page-cache hit */
            r->checked = 1;
            s->stats.resident_hits++;
        }
        if (r->kind == HK_REQ_BLOCK && !hk_choker_may_send(&s->choker, &p->choke, s->now, r->length)) {
            turn_check tc = turn_used_up(s, p, &b, r->length);
            if (tc == TURN_GO_ON)
                continue;
            end = tc == TURN_GONE ? SERVE_GONE : end;
            break;
        }
        uint64_t cost;
        if (!rate_ok(s, p, t, r, &cost, &end))
            break;
        if (!take_request(s, p, t, &b, i, cost))
            return SERVE_GONE;
        (*sent)++;
    }
    if (p->closed)
        return SERVE_GONE;
    flush(s, p, &b);
    if (no_room && p->stall_since == HK_TIME_NEVER)
        p->stall_since = s->now;
    hks_mark_touched(s, p);
    if (end == SERVE_BLOCKED && yielded && !no_room)
        end = SERVE_YIELDED;
    return end;
}

/* Where p goes after its turn: back of the ring when it may have more (a turn cut short by tokens after sending
 * counts as its turn), kept ahead of the ring when tokens stopped it before it sent anything (upload rate caps). */
static void after_turn(hk_seeder *s, hk_peer *p, serve_end end, uint32_t sent)
{
    bool rate = end == SERVE_RATE_GLOBAL || end == SERVE_RATE_TORRENT;
    if (rate && !sent && !p->closed)
        hks_rate_pass_over(s, p);
    else if (end == SERVE_SHARE_USED || end == SERVE_YIELDED || rate)
        hks_mark_ready(s, p); /* back of the ring: others go first */
}

/* The peers at the ring's front whose queue was empty (mark_ready_first), each served as far as the budget goes (one
 * block, usually). True when it served one and peers that were ready before them are left: the pass ends there, so
 * the backend sends these short replies before the next pass queues the long refills of the others (issue 12,
 * reactivity: the refills of up to HK_PASS_BLOCKS blocks no longer run between a quiet peer's request and its reply).
 * hks_ev_end then asks to be woken at once (nready > 0, serve_at = now): the others lose a loop iteration, not their
 * turn. */
static bool serve_first(hk_seeder *s, uint32_t *budget)
{
    uint32_t ready = s->nready, served = 0; /* npassed is 0: no pass under way */
    hk_list *n;
    while (*budget > 0 && !s->rate_stopped && (n = hk_list_first(&s->ready)) != NULL) {
        hk_peer *p = HK_LIST_ENTRY(n, hk_peer, ready_link);
        if (!p->ready_first)
            break;
        hks_ready_pop(s);
        uint32_t sent = 0;
        serve_end end = serve_peer(s, p, *budget, &sent);
        hks_promote_freed(s);
        *budget -= sent < *budget ? sent : *budget;
        after_turn(s, p, end, sent);
        served++;
    }
    /* Only they were ready (one yielded, say: its second look comes in this same pass, as without them): go on. */
    return served > 0 && ready > served && s->nready > s->npassed;
}

void hks_serve_pass(hk_seeder *s)
{
    uint32_t budget = HK_PASS_BLOCKS;
    hks_rate_pass_begin(s);
    if (serve_first(s, &budget)) {
        hks_rate_pass_end(s);
        return;
    }
    while (budget > 0 && s->nready > s->npassed && !s->rate_stopped) {
        uint32_t n = s->nready - s->npassed;
        uint32_t share = budget / n ? budget / n : 1;
        bool progress = false;
        for (uint32_t k = 0; k < n && budget > 0 && !s->rate_stopped; k++) {
            hk_peer *p = hks_ready_pop(s);
            if (!p)
                break;
            uint32_t sent = 0;
            serve_end end = serve_peer(s, p, share < budget ? share : budget, &sent);
            hks_promote_freed(s); /* a slot its close freed goes to the line before the next peer's turn */
            budget -= sent < budget ? sent : budget;
            if (sent || end == SERVE_YIELDED)
                progress = true;
            after_turn(s, p, end, sent);
        }
        if (!progress)
            break;
    }
    hks_rate_pass_end(s);
}
