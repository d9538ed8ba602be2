/* seeder_verify: owns lazy piece verification (docs/design.md §13): a block request of a piece whose state is
 * unknown starts (or joins) one disk_verify of the whole piece; its requests wait (HK_RQ_VERIFYING) and the peers
 * that wait are marked ready when the result arrives. A good piece is served as usual; a bad one is never sent: its
 * requests are rejected (fast peers) or dropped, then discarded by a choke + unchoke (peers without the fast
 * extension), new peers get a bitfield without it (seeder_proto.c), and the torrent is logged as damaged with its bad
 * pieces. The piece states themselves are core/piece_state.c's. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "infohash.h"
#include "piece_state.h"
#include "seeder_internal.h"

typedef struct hks_waiter {
    uint32_t slot;
    uint64_t peer_id;
} hks_waiter;

/* One pending disk_verify. Token = gen << 32 | index; a free record has gen 0. */
typedef struct hks_verify {
    uint32_t gen;
    uint32_t torrent;            /* record number; HK_TT_NONE once that torrent was removed */
    uint32_t piece;
    bool pass;                   /* started by the background pass (seeder_vpass.c): it counts the completion */
    bool stale;                  /* the torrent's marks were dropped while it ran: its result is not recorded */
    uint32_t nwait, wait_cap;
    hks_waiter *wait;            /* the peers whose requests wait for it */
} hks_verify;

void hks_verifies_free(hk_seeder *s)
{
    for (uint32_t i = 0; i < s->verifies_cap; i++)
        hk_mem_free(&s->mem, s->verifies[i].wait, (size_t)s->verifies[i].wait_cap * sizeof(hks_waiter));
    hk_mem_free(&s->mem, s->verifies, (size_t)s->verifies_cap * sizeof *s->verifies);
    s->verifies = NULL;
    s->verifies_cap = s->verifies_used = 0;
}

void hks_verifies_stale_torrent(hk_seeder *s, uint32_t rec)
{
    for (uint32_t i = 0; i < s->verifies_cap; i++)
        if (s->verifies[i].gen != 0 && s->verifies[i].torrent == rec)
            s->verifies[i].stale = true;
}

void hks_verifies_forget_torrent(hk_seeder *s, uint32_t rec)
{
    for (uint32_t i = 0; i < s->verifies_cap; i++)
        if (s->verifies[i].gen != 0 && s->verifies[i].torrent == rec)
            s->verifies[i].torrent = HK_TT_NONE;
}

/* The pending verify of (rec, piece), or NULL. */
static hks_verify *find_verify(hk_seeder *s, uint32_t rec, uint32_t piece)
{
    for (uint32_t i = 0; i < s->verifies_cap; i++) {
        hks_verify *v = &s->verifies[i];
        if (v->gen != 0 && v->torrent == rec && v->piece == piece)
            return v;
    }
    return NULL;
}

/* A free record (grown when none is), or NULL when out of memory. */
static hks_verify *new_verify(hk_seeder *s, uint32_t *index)
{
    for (uint32_t i = 0; i < s->verifies_cap; i++)
        if (s->verifies[i].gen == 0) {
            *index = i;
            return &s->verifies[i];
        }
    uint32_t ncap = s->verifies_cap ? s->verifies_cap * 2 : 8;
    hks_verify *n = hk_mem_realloc(&s->mem, s->verifies, (size_t)s->verifies_cap * sizeof *n,
                                   (size_t)ncap * sizeof *n);
    if (!n)
        return NULL;
    memset(n + s->verifies_cap, 0, (size_t)(ncap - s->verifies_cap) * sizeof *n);
    *index = s->verifies_cap;
    s->verifies = n;
    s->verifies_cap = ncap;
    return &n[*index];
}

static bool add_waiter(hk_seeder *s, hks_verify *v, const hk_peer *p)
{
    for (uint32_t k = 0; k < v->nwait; k++)
        if (v->wait[k].slot == p->slot && v->wait[k].peer_id == p->id)
            return true;
    if (v->nwait == v->wait_cap) {
        uint32_t ncap = v->wait_cap ? v->wait_cap * 2 : 4;
        hks_waiter *n = hk_mem_realloc(&s->mem, v->wait, (size_t)v->wait_cap * sizeof *n, (size_t)ncap * sizeof *n);
        if (!n)
            return false;
        v->wait = n;
        v->wait_cap = ncap;
    }
    v->wait[v->nwait++] = (hks_waiter){.slot = p->slot, .peer_id = p->id};
    return true;
}

/* The v2 part of the request of a piece of `size` bytes of a hybrid torrent whose first extent `first` is in a file
 * with v2 hashes (core/metainfo_v2.h: such a file starts on a piece boundary, padding follows its end). */
static void v2_part(const hk_torrent *t, const hk_extent *first, uint32_t size, hk_verify_req *req)
{
    const uint64_t *v2 = hk_torrent_v2_hashes(t);
    if (!v2 || v2[first->file] == 0 || first->offset % t->piece_length != 0)
        return;
    hk_file_entry fe = hk_torrent_file(t, first->file);
    uint64_t flen = hk_file_length(&fe);
    if (flen > t->piece_length) { /* an entry of the file's piece layer */
        req->v2_hash.offset = v2[first->file] + 32u * (first->offset / t->piece_length);
        req->v2_length = flen - first->offset < size ? flen - first->offset : size;
        req->v2_leaves = t->piece_length / 16384u;
    } else {                      /* the file's pieces root: its tree is as wide as its blocks need */
        uint64_t blocks = (flen + 16383u) / 16384u;
        req->v2_hash.offset = v2[first->file];
        req->v2_length = flen;
        for (req->v2_leaves = 1; req->v2_leaves < blocks; req->v2_leaves *= 2)
            ;
    }
    req->v2_hash.storage = first->storage;
    req->v2_hash.file = HK_FILE_METAINFO;
    req->v2_hash.length = 32;
}

/* Issues the disk_verify of piece `piece` of t (record rec) with the token of record `index`. false: out of memory. */
static bool issue(hk_seeder *s, const hk_torrent *t, uint32_t rec, uint32_t piece, uint64_t token)
{
    uint32_t size = hk_torrent_piece_size(t, piece);
    uint64_t pos = (uint64_t)piece * t->piece_length;
    uint64_t storage = hk_tt_storage(t, rec);
    hk_span_iter it;
    hk_span sp;
    uint32_t n = 0;
    if (!hk_span_iter_init(&it, t, pos, size))
        return false;
    while (hk_span_next(&it, &sp))
        n++;
    hk_extent *exts = hk_mem_alloc(&s->mem, (size_t)n * sizeof *exts);
    if (!exts || !hk_span_iter_init(&it, t, pos, size)) {
        hk_mem_free(&s->mem, exts, (size_t)n * sizeof *exts);
        return false;
    }
    for (uint32_t k = 0; k < n && hk_span_next(&it, &sp); k++)
        exts[k] = (hk_extent){.storage = storage, .file = sp.file, .offset = sp.offset, .length = sp.length};
    hk_verify_req req = {
        .piece = piece,
        .nexts = n,
        .exts = exts,
        .hash = {.storage = storage, .file = HK_FILE_METAINFO, .offset = t->info_start + t->pieces_rel + 20u * (uint64_t)piece,
                 .length = 20},
    };
    if (n > 0)
        v2_part(t, &exts[0], size, &req);
    s->rt.disk_verify(s->rt.base.ctx, &req, token);
    s->stats.verifies++;
    hk_mem_free(&s->mem, exts, (size_t)n * sizeof *exts);
    return true;
}

/* A new pending record for (rec, piece), waited for by p (NULL: the background pass's own); its disk_verify issued.
 * false: out of memory (nothing pending). */
static bool start_verify(hk_seeder *s, hk_peer *p, uint32_t rec, uint32_t piece)
{
    uint32_t index;
    hks_verify *v = new_verify(s, &index);
    if (!v)
        return false;
    if (s->next_verify_gen == 0)
        s->next_verify_gen = 1; /* no token has gen 0 */
    v->gen = s->next_verify_gen++;
    v->torrent = rec;
    v->piece = piece;
    v->pass = p == NULL;
    v->stale = false;
    v->nwait = 0;
    if (p && !add_waiter(s, v, p)) {
        v->gen = 0;
        return false;
    }
    s->verifies_used++;
    uint64_t token = (uint64_t)v->gen << 32 | index;
    if (p)
        hks_log(s, HK_LOG_TRACE, "peer %llu: piece %u not verified yet: disk verify %llu", (unsigned long long)p->id,
                piece, (unsigned long long)token);
    else
        hks_log(s, HK_LOG_TRACE, "verify: piece %u: background check: disk verify %llu", piece,
                (unsigned long long)token);
    hk_torrent *t = hk_tt_get(&s->torrents, rec);
    if (!hk_tt_ext(&s->torrents, t) || !issue(s, t, rec, piece, token)) { /* the count is in the side block */
        hk_tt_ext_trim(&s->torrents, t);
        v->gen = 0;
        v->nwait = 0;
        s->verifies_used--;
        return false;
    }
    hk_torrent *tw = hk_tt_get(&s->torrents, rec); /* a peer's check or the background pass's: both verifying */
    if (tw && tw->ext)
        tw->ext->verifying++;
    return true;
}

/* Starts the verify of (p's torrent, piece), or joins the pending one; p waits for it. false: out of memory. */
static bool start_or_join(hk_seeder *s, hk_peer *p, uint32_t piece)
{
    hks_verify *v = find_verify(s, p->torrent, piece);
    if (v)
        return add_waiter(s, v, p);
    return start_verify(s, p, p->torrent, piece);
}

bool hks_verify_pending(hk_seeder *s, uint32_t rec, uint32_t piece)
{
    return s->verifies_used && find_verify(s, rec, piece) != NULL;
}

bool hks_verify_start_pass(hk_seeder *s, uint32_t rec, uint32_t piece)
{
    return start_verify(s, NULL, rec, piece);
}

/* The block request at position `at` of p's queue names a bad piece. A peer without the fast extension cannot be
 * refused: its request is dropped, the rest it asks for is served, and once it asks for nothing for its grace a
 * choke + unchoke tells it the dropped one is gone (BEP 3: it asks again after the unchoke). Closing it instead lost
 * rtorrent 0.9.8, which does not come back, the rest of the torrent; leaving the request unanswered stalls ctorrent,
 * which waits for it; a choke at once stalls rtorrent, which asks again only ~30 s after a choke. A fast peer gets a
 * reject; one that was not told with lt_donthave (tell_donthave) that the piece is gone gets it after
 * HKS_BAD_REJECT_HOLD (the request waits as BACKOFF, its `tries` saying it was held), so that asking again at once
 * makes one round a second, not thousands. */
static hks_gate refuse_bad(hk_seeder *s, hk_peer *p, uint32_t at)
{
    hk_request *r = hk_rq_at(&p->rq, at);
    if (p->fast && p->lt_donthave == 0 && r->tries == 0) {
        r->state = HK_RQ_BACKOFF;
        r->tries = 1;
        hk_time due = hks_time_add(s->now, HKS_BAD_REJECT_HOLD);
        if (due < p->disk_retry_at)
            p->disk_retry_at = due;
        hks_mark_touched(s, p); /* its deadline now includes disk_retry_at */
        return HKS_GATE_WAIT;
    }
    hk_request gone;
    hk_rq_remove_at(&p->rq, at, &gone);
    hks_log(s, HK_LOG_DEBUG, "peer %llu: %u/%u/%u %s: the piece fails its hash%s", (unsigned long long)p->id,
            gone.index, gone.begin, gone.length, p->fast ? "rejected" : "dropped",
            p->fast ? "" : " (no fast extension to refuse it)");
    if (p->fast)
        hks_send_reject(s, p, gone.index, gone.begin, gone.length);
    else
        p->bad_dropped = true; /* discarded by a choke + unchoke once it asks for nothing (seeder_timers.c) */
    hks_mark_touched(s, p);
    return p->closed ? HKS_GATE_GONE : HKS_GATE_DROPPED;
}

hks_gate hks_verify_gate(hk_seeder *s, hk_peer *p, hk_torrent *t, uint32_t at)
{
    hk_request *r = hk_rq_at(&p->rq, at);
    switch (hk_pieces_get(hk_torrent_pieces(t), t->all_good, r->index)) {
    case HK_PIECE_GOOD:
        if (r->state == HK_RQ_VERIFYING)
            r->state = HK_RQ_FRESH;
        return HKS_GATE_GO;
    case HK_PIECE_BAD:
        return refuse_bad(s, p, at);
    case HK_PIECE_UNKNOWN:
        break;
    }
    if (!start_or_join(s, p, r->index)) {
        hks_close_peer(s, p, true, "out of memory for a piece verification");
        return HKS_GATE_GONE;
    }
    r->state = HK_RQ_VERIFYING;
    return HKS_GATE_WAIT;
}

/* "torrent HEX (name): damaged: pieces 3, 17 fail their hash" (the first 32 bad pieces, then a count). */
static void log_damaged(hk_seeder *s, const hk_torrent *t)
{
    char hex[IH_HEX_LEN + 1], list[400];
    ih_hex(t->info_hash, hex);
    const hk_pieces *ps = hk_torrent_pieces(t);
    uint32_t nlen, nbad = hk_pieces_nbad(ps);
    const char *name = hk_tt_name(&s->torrents, t, &nlen);
    size_t at = 0;
    list[0] = 0;
    for (uint32_t k = 0; k < nbad && k < 32 && at < sizeof list; k++)
        at += (size_t)snprintf(list + at, sizeof list - at, "%s%u", k ? ", " : "", ps->bad[k]);
    if (nbad > 32 && at < sizeof list)
        snprintf(list + at, sizeof list - at, " and %u more", nbad - 32);
    hks_log(s, HK_LOG_WARN, "torrent %s (%.*s): damaged: %s %s %s; %s never sent", hex, (int)nlen, name,
            nbad == 1 ? "piece" : "pieces", list, nbad == 1 ? "fails its hash" : "fail their hash",
            nbad == 1 ? "it is" : "they are");
}

/* The peers that waited for v, marked ready: their requests see the piece's new state at their next turn. With
 * backoff (a RETRY), their waiting requests of that piece wait like a disk RETRY first. */
static void wake_waiters(hk_seeder *s, const hks_verify *v, bool backoff)
{
    for (uint32_t k = 0; k < v->nwait; k++) {
        uint32_t slot = v->wait[k].slot;
        hk_peer *p = slot < s->peers_cap ? s->peers[slot] : NULL;
        if (!p || p->closed || p->id != v->wait[k].peer_id)
            continue;
        for (uint32_t i = 0; i < hk_rq_len(&p->rq); i++) {
            hk_request *r = hk_rq_at(&p->rq, i);
            if (r->state != HK_RQ_VERIFYING || r->index != v->piece || r->kind != HK_REQ_BLOCK)
                continue;
            r->state = backoff ? HK_RQ_BACKOFF : HK_RQ_FRESH;
        }
        if (backoff) {
            hk_time at = hks_time_add(s->now, HKS_RETRY_FIRST);
            if (at < p->disk_retry_at)
                p->disk_retry_at = at;
        } else {
            hks_mark_ready(s, p);
        }
        hks_mark_touched(s, p);
    }
}

/* BEP 54: every active peer of the torrent in record rec that speaks lt_donthave is told that the piece, offered
 * to it before it was found bad (HAVE_ALL or a bitfield with it), is not here after all, so it stops asking for it
 * instead of meeting a reject (or a dropped request) each time it asks again: a fast client re-asks at once after a
 * reject, thousands of times a second. Peers without it keep the reject / drop path (hks_verify_gate). */
static void tell_donthave(hk_seeder *s, uint32_t rec, uint32_t piece)
{
    uint8_t msg[WIRE_EXTENDED_HEADER_LEN + 4];
    for (uint32_t i = 0; i < s->peers_cap; i++) {
        hk_peer *p = s->peers[i];
        if (!p || p->closed || p->torrent != rec || p->phase != HK_PHASE_ACTIVE || p->lt_donthave == 0)
            continue;
        wire_encode_extended_header(msg, p->lt_donthave, 4);
        uint8_t *be = msg + WIRE_EXTENDED_HEADER_LEN; /* BEP 54 payload: the piece index, big-endian */
        be[0] = (uint8_t)(piece >> 24), be[1] = (uint8_t)(piece >> 16);
        be[2] = (uint8_t)(piece >> 8), be[3] = (uint8_t)piece;
        hks_log(s, HK_LOG_DEBUG, "peer %llu: lt_donthave %u: the piece fails its hash", (unsigned long long)p->id,
                piece);
        hks_send_control_bytes(s, p, msg, sizeof msg);
        hks_mark_touched(s, p);
    }
}

/* Records the result for the torrent in record rec; false when out of memory (logged; the piece stays unknown). */
static void record_result(hk_seeder *s, uint32_t rec, uint32_t piece, bool good)
{
    hk_torrent *t = hk_tt_get(&s->torrents, rec);
    if (!t || hk_torrent_piece_size(t, piece) == 0) /* piece >= its piece count */
        return;
    if (hk_tt_pieces_set(&s->torrents, t, piece, good) != 0) {
        hks_log(s, HK_LOG_WARN, "piece %u: out of memory for its verification state (checked again later)", piece);
        return;
    }
    if (good) {
        s->stats.pieces_verified++;
        return;
    }
    s->stats.pieces_bad++;
    log_damaged(s, t);
    tell_donthave(s, rec, piece);
}

void hks_piece_verified(hk_seeder *s, uint64_t token, hk_verify_result result)
{
    uint32_t i = (uint32_t)token, gen = (uint32_t)(token >> 32);
    if (gen == 0 || i >= s->verifies_cap || s->verifies[i].gen != gen) {
        hks_log(s, HK_LOG_TRACE, "disk verify %llu: completion for no pending verify (ignored)",
                (unsigned long long)token);
        return;
    }
    hks_verify *v = &s->verifies[i];
    uint32_t rec = v->torrent;
    hk_torrent *t = rec != HK_TT_NONE ? hk_tt_get(&s->torrents, rec) : NULL;
    if (t && hk_torrent_verifying(t) > 0)
        t->ext->verifying--; /* the side block is trimmed below, once the result is recorded */
    bool stale = v->stale && (result == HK_VERIFY_GOOD || result == HK_VERIFY_BAD);
    if (v->pass)
        hks_vpass_completed(s, rec, v->piece, result == HK_VERIFY_RETRY || stale);
    if (stale) {
        hks_log(s, HK_LOG_DEBUG, "disk verify %llu of piece %u: read before its data changed; checked again",
                (unsigned long long)token, v->piece); /* its waiters start a new check at their next turn */
    } else if (rec != HK_TT_NONE) {
        if (result == HK_VERIFY_GOOD || result == HK_VERIFY_BAD)
            record_result(s, rec, v->piece, result == HK_VERIFY_GOOD);
        else if (result == HK_VERIFY_RETRY)
            s->stats.verify_retries++;
        else
            hks_torrent_failed(s, rec, "a piece could not be read to verify it");
    }
    hk_torrent *tr = rec != HK_TT_NONE ? hk_tt_get(&s->torrents, rec) : NULL;
    if (tr)
        hk_tt_ext_trim(&s->torrents, tr); /* nothing in flight and no piece state left: no side block */
    v->gen = 0; /* released before waking: a waiter may start the next verify of the piece */
    s->verifies_used--;
    wake_waiters(s, v, result == HK_VERIFY_RETRY);
    v->nwait = 0;
    if (s->verifies_used == 0)
        hks_verifies_free(s);
}
