/* seeder_vpass: owns the background verification pass (seeder.h, "Background verification"; docs/design.md §13):
 * the queue of torrents to check, the sweep over each one's pieces, and the pass's lines. The pacing and the
 * progress counters are core/verify_pass.c's; the verifies themselves, shared with lazy checks, seeder_verify.c's. */
#include <string.h>

#include "infohash.h"
#include "piece_state.h"
#include "seeder_internal.h"

void hks_vpass_init(hk_seeder *s)
{
    hk_vpass_init(&s->vpass, s->cfg.verify_rate, HKS_VPASS_INFLIGHT);
    s->vq_rec = HK_TT_NONE;
}

void hks_vpass_free(hk_seeder *s)
{
    hk_mem_free(&s->mem, s->vq, (size_t)s->vq_cap * sizeof *s->vq);
    s->vq = NULL;
    s->vq_cap = s->vq_len = s->vq_head = 0;
}

/* The ring one larger (its entries moved to the front). false: out of memory. */
static bool grow_queue(hk_seeder *s)
{
    uint32_t ncap = s->vq_cap ? s->vq_cap * 2 : 16;
    uint32_t *n = hk_mem_alloc(&s->mem, (size_t)ncap * sizeof *n);
    if (!n)
        return false;
    for (uint32_t k = 0; k < s->vq_len; k++)
        n[k] = s->vq[(s->vq_head + k) % s->vq_cap];
    hk_mem_free(&s->mem, s->vq, (size_t)s->vq_cap * sizeof *s->vq);
    s->vq = n;
    s->vq_cap = ncap;
    s->vq_head = 0;
    return true;
}

bool hks_vpass_queue(hk_seeder *s, uint32_t rec)
{
    const hk_torrent *t = hk_tt_get(&s->torrents, rec);
    if (!t || !s->rt.disk_verify)
        return false;
    if (s->vq_len == s->vq_cap && !grow_queue(s)) {
        hks_log(s, HK_LOG_WARN, "verify: out of memory to queue a torrent for a full check (checked lazily)");
        return false;
    }
    s->vq[(s->vq_head + s->vq_len++) % s->vq_cap] = rec;
    hk_vpass_add(&s->vpass, t->total_length, s->now);
    return true;
}

/* Bytes of t from piece `from` to its end. */
static uint64_t bytes_from(const hk_torrent *t, uint32_t from)
{
    uint64_t at = (uint64_t)from * t->piece_length;
    return at < t->total_length ? t->total_length - at : 0;
}

void hks_vpass_forget_torrent(hk_seeder *s, uint32_t rec)
{
    const hk_torrent *t = hk_tt_get(&s->torrents, rec);
    for (uint32_t k = 0; k < s->vq_len; k++) {
        uint32_t *e = &s->vq[(s->vq_head + k) % s->vq_cap];
        if (*e == rec) {
            *e = HK_TT_NONE;
            hk_vpass_torrent_done(&s->vpass, t ? t->total_length : 0);
        }
    }
    if (s->vq_rec == rec) {
        hk_vpass_torrent_done(&s->vpass, t ? bytes_from(t, s->vq_piece) : 0);
        s->vq_rec = HK_TT_NONE;
    }
}

void hks_vpass_completed(hk_seeder *s, uint32_t rec, uint32_t piece, bool again)
{
    const hk_torrent *t = rec == HK_TT_NONE ? NULL : hk_tt_get(&s->torrents, rec);
    uint32_t size = t ? hk_torrent_piece_size(t, piece) : 0;
    hk_vpass_completed(&s->vpass, size, again);
    if (again && t) /* a passing shortage: the torrent is swept again once the queue comes back to it */
        hks_vpass_queue(s, rec);
}

/* The next torrent of the queue, as the one being swept; false when the queue is empty. */
static bool next_torrent(hk_seeder *s)
{
    while (s->vq_len) {
        uint32_t rec = s->vq[s->vq_head];
        s->vq_head = (s->vq_head + 1) % s->vq_cap;
        s->vq_len--;
        if (rec == HK_TT_NONE)
            continue; /* dropped: already counted done */
        s->vq_rec = rec;
        s->vq_piece = 0;
        return true;
    }
    return false;
}

/* The next piece of the torrent being swept that needs a check of its own (known pieces and pieces being checked
 * for a request are counted done); false when the torrent is finished (counted done, none being swept). */
static bool next_piece(hk_seeder *s, uint32_t *piece)
{
    const hk_torrent *t = hk_tt_get(&s->torrents, s->vq_rec);
    if (t && t->state == HK_TORRENT_ACTIVE && !t->all_good && t->pieces_rel != 0) {
        for (uint32_t npieces = hk_torrent_piece_count(t); s->vq_piece < npieces; s->vq_piece++) {
            uint32_t i = s->vq_piece, size = hk_torrent_piece_size(t, i);
            if (hk_pieces_get(hk_torrent_pieces(t), t->all_good, i) != HK_PIECE_UNKNOWN ||
                hks_verify_pending(s, s->vq_rec, i)) {
                hk_vpass_skip(&s->vpass, size);
                continue;
            }
            *piece = i;
            s->vq_piece++;
            return true;
        }
    }
    hk_vpass_torrent_done(&s->vpass, t ? bytes_from(t, s->vq_piece) : 0);
    s->vq_rec = HK_TT_NONE;
    return false;
}

/* "verify: pass done: 3 torrents, 4.0 GiB in 61 s (67.1 MiB/s); 1 damaged" */
static void log_done(hk_seeder *s)
{
    uint32_t damaged = 0;
    for (uint32_t r = hk_tt_next(&s->torrents, HK_TT_NONE); r != HK_TT_NONE; r = hk_tt_next(&s->torrents, r))
        damaged += hk_pieces_nbad(hk_torrent_pieces(hk_tt_get(&s->torrents, r))) > 0;
    char line[160];
    hk_vpass_format(&s->vpass, s->now, line, sizeof line);
    hk_time secs = (s->now - s->vpass.started) / HK_NS_PER_SEC;
    hks_log(s, HK_LOG_INFO, "verify: pass done in %llu s (%s); %u torrent%s damaged", (unsigned long long)secs,
            line + strlen("verify: "), damaged, damaged == 1 ? "" : "s");
}

hk_time hks_vpass_run(hk_seeder *s)
{
    hk_vpass *vp = &s->vpass;
    if (!vp->active)
        return HK_TIME_NEVER;
    while (hk_vpass_may_issue(vp, s->now)) {
        uint32_t piece;
        if (s->vq_rec == HK_TT_NONE && !next_torrent(s))
            break;
        if (!next_piece(s, &piece))
            continue;
        if (!hks_verify_start_pass(s, s->vq_rec, piece)) {
            hks_log(s, HK_LOG_WARN, "verify: out of memory for a check: the rest of a torrent is checked lazily");
            hk_vpass_torrent_done(vp, bytes_from(hk_tt_get(&s->torrents, s->vq_rec), piece));
            s->vq_rec = HK_TT_NONE;
            continue;
        }
        hk_vpass_issued(vp, hk_torrent_piece_size(hk_tt_get(&s->torrents, s->vq_rec), piece), s->now);
    }
    if (vp->inflight == 0 && s->vq_rec == HK_TT_NONE && s->vq_len == 0) {
        log_done(s);
        hk_vpass_finish(vp);
        hks_vpass_free(s);
        return HK_TIME_NEVER;
    }
    if (hk_vpass_report_due(vp, s->now, HKS_VPASS_REPORT)) {
        char line[160];
        hks_log(s, HK_LOG_INFO, "%s", hk_vpass_format(vp, s->now, line, sizeof line));
    }
    bool more = s->vq_rec != HK_TT_NONE || s->vq_len > 0; /* else only completions are awaited */
    hk_time wake = more ? hk_vpass_wake(vp, s->now) : HK_TIME_NEVER;
    hk_time report = hks_time_add(vp->reported, HKS_VPASS_REPORT);
    return wake < report ? wake : report;
}

/* ---- public ---- */

/* Torrent rec's marks dropped: every piece unknown; checks under way read what may be the old data. */
static void forget_marks(hk_seeder *s, uint32_t rec, hk_torrent *t)
{
    hks_verifies_stale_torrent(s, rec);
    hk_tt_pieces_free(&s->torrents, t);
    t->all_good = t->pieces_rel == 0; /* no v1 hashes: nothing can be checked (served as before) */
}

bool hk_seeder_verify_torrent(hk_seeder *s, const uint8_t info_hash[20])
{
    hks_ev_begin(s);
    uint32_t rec = hk_tt_find(&s->torrents, info_hash);
    bool ok = rec != HK_TT_NONE && s->rt.disk_verify;
    if (ok) {
        hk_torrent *t = hk_tt_get(&s->torrents, rec);
        forget_marks(s, rec, t);
        char hex[IH_HEX_LEN + 1];
        ih_hex(info_hash, hex);
        hks_log(s, HK_LOG_INFO, "torrent %s: marks dropped, queued for a full check", hex);
        ok = hks_vpass_queue(s, rec);
    }
    hks_ev_end(s);
    return ok;
}

bool hk_seeder_forget_pieces(hk_seeder *s, const uint8_t info_hash[20])
{
    hks_ev_begin(s);
    uint32_t rec = hk_tt_find(&s->torrents, info_hash);
    bool ok = rec != HK_TT_NONE && s->rt.disk_verify;
    if (ok) {
        hk_torrent *t = hk_tt_get(&s->torrents, rec);
        bool had = t->all_good || hk_torrent_pieces(t);
        forget_marks(s, rec, t);
        char hex[IH_HEX_LEN + 1];
        ih_hex(info_hash, hex);
        hks_log(s, had ? HK_LOG_INFO : HK_LOG_DEBUG, "torrent %s: data changed on disk: its pieces are checked again",
                hex);
        if (s->cfg.verify_full)
            hks_vpass_queue(s, rec);
    }
    hks_ev_end(s);
    return ok;
}

void hk_seeder_verify_progress(const hk_seeder *s, hk_verify_progress *out)
{
    const hk_vpass *vp = &s->vpass;
    *out = (hk_verify_progress){
        .active = vp->active, .torrents_total = vp->torrents_total, .torrents_done = vp->torrents_done,
        .bytes_total = vp->bytes_total, .bytes_done = vp->bytes_done, .bytes_checked = vp->bytes_checked,
        .inflight = vp->inflight,
    };
}

uint32_t hk_seeder_bad_pieces(const hk_seeder *s, const uint8_t info_hash[20], uint32_t *out, uint32_t cap)
{
    uint32_t rec = hk_tt_find(&s->torrents, info_hash);
    const hk_torrent *t = rec == HK_TT_NONE ? NULL : hk_tt_get(&s->torrents, rec);
    const hk_pieces *ps = t ? hk_torrent_pieces(t) : NULL;
    uint32_t n = hk_pieces_nbad(ps);
    for (uint32_t k = 0; k < n && k < cap; k++)
        out[k] = ps->bad[k];
    return n;
}
