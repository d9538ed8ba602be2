/* Stateful fuzz target for the seeding engine (docs/design.md §11): a whole connection's bytes, split in chunks, fed
 * to a real hk_seeder through the fake runtime, with backend events (room grants, time passing, disk-load
 * completions, a competing peer) interleaved at the chunk boundaries. After every event it checks the engine's
 * invariants; at the end it checks the whole output stream and runs the same input again to check determinism.
 *
 * Input layout: byte 0 flags: bit 0 prepend a valid handshake for the test torrent (else the input carries its own),
 *   bit 1 fast extension bit in that handshake, bit 2 BEP 10 bit, bit 3 disk cold by default (forces the
 *   requeue/load path), bit 4 multi-file torrent with a pad file, bit 5 a competing interested peer (max_unchoked 1,
 *   so turns rotate and chokes happen), bit 6 tiny credit (one block per turn), bit 7 tiny queue cap (reqq 4).
 * Byte 1: chunking seed; its bit 7 also gives the runtime disk_verify (piece verification), its bit 6 then the
 *   background pass (verify_full, at 32 KiB/s). Then the stream (at most MAX_STREAM bytes). Between chunks the seed
 *   picks one event: nothing, room grant, 1..60 s passing, the oldest disk load completing (OK, rarely an error or a
 *   RETRY) or, with verification, as often the oldest verify (GOOD, 1 in 8 BAD, 1 in 32 RETRY), the competitor
 *   sending a request or a keep-alive.
 *
 * Invariants checked: unchoked <= max_unchoked (also the high-water mark); queued requests <= reqq per fast peer,
 * 4 x reqq per peer without the fast extension (its overflow cap: these torrents' pieces hold 2 blocks at most);
 * memory bounded; the wake-up asked for is never in the past; data (sends carrying extents) never exceed the room granted;
 * every extent sent was reported resident just before, or loaded; with verification, every data extent sent lies in
 * pieces a verify answered GOOD (never in one answered BAD, never in one not checked); the output to the peer decodes as a valid wire
 * stream (handshake then messages, piece messages within the torrent); the same input gives the same action log. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_runtime.h"
#include "seeder.h"
#include "torrent_builder.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STREAM 4096u
#define MEMORY_BOUND (4u << 20)

typedef struct run {
    fake_runtime *fr;
    hk_seeder_runtime rt;
    hk_config cfg;
    hk_seeder *s;
    hk_peer *p0, *p1;
    uint32_t pieces;
    size_t seen_actions;       /* actions already checked */
    uint64_t *pending;         /* disk-load tokens not completed yet, oldest first */
    size_t npending, cappending;
    uint64_t *loaded;          /* completed OK: tokens */
    size_t nloaded, caploaded;
    size_t room0;              /* room granted to conn 0 not yet used by data */
    bool verify;               /* the runtime has disk_verify */
    uint64_t *vpending;        /* verify tokens not answered yet, oldest first; vpiece: their pieces */
    uint64_t *vpiece;
    size_t nvpending, capvpending, capvpiece;
    uint8_t good[8], bad[8];   /* pieces answered GOOD / BAD (last answer wins) */
    uint64_t file_at[4];       /* each file's offset in the torrent */
    uint32_t piece_len;
} run;

static void push(uint64_t **a, size_t *n, size_t *cap, uint64_t v)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *a = realloc(*a, *cap * sizeof **a);
        if (!*a)
            abort();
    }
    (*a)[(*n)++] = v;
}

static bool contains(const uint64_t *a, size_t n, uint64_t v)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] == v)
            return true;
    return false;
}

static bool same_extent(const hk_extent *a, const hk_extent *b)
{
    return a->storage == b->storage && a->file == b->file && a->offset == b->offset && a->length == b->length;
}

/* An extent sent at action index `at` was answered resident, or loaded (its load's token completed OK). */
static bool extent_cleared(const run *r, size_t at, const hk_extent *e)
{
    for (size_t i = at; i-- > 0;) {
        const fr_action *a = &r->fr->actions[i];
        if (a->kind == FR_RESIDENT && same_extent(&a->ext, e) && a->answer)
            return true;
        if (a->kind == FR_LOAD && same_extent(&a->ext, e) && contains(r->loaded, r->nloaded, a->token))
            return true;
    }
    return false;
}

/* With verification: every piece the data extent covers was answered GOOD. */
static bool extent_verified(const run *r, const hk_extent *e)
{
    if (!r->verify || e->file == HK_FILE_METAINFO)
        return true;
    if (e->file >= 4 || e->length == 0)
        return false;
    uint64_t first = r->file_at[e->file] + e->offset, last = first + e->length - 1;
    for (uint64_t p = first / r->piece_len; p <= last / r->piece_len; p++)
        if (p >= 8 || !r->good[p] || r->bad[p])
            return false;
    return true;
}

static void check(run *r)
{
    hk_stats st;
    hk_seeder_stats(r->s, &st);
    if (st.unchoked > r->cfg.max_unchoked || st.max_unchoked_seen > r->cfg.max_unchoked)
        abort();
    if (st.peers > 2 || st.queued_requests > (uint64_t)r->cfg.reqq * 4 * 2)
        abort();
    if (st.memory_bytes > MEMORY_BOUND)
        abort();
    if (r->fr->wake != HK_TIME_NEVER && r->fr->wake < r->fr->now)
        abort();
    for (size_t i = r->seen_actions; i < r->fr->nactions; i++) {
        const fr_action *a = &r->fr->actions[i];
        if (a->kind == FR_LOAD)
            push(&r->pending, &r->npending, &r->cappending, a->token);
        if (a->kind == FR_VERIFY) {
            if (!r->verify)
                abort(); /* no disk_verify in the table: never called */
            push(&r->vpending, &r->nvpending, &r->capvpending, a->token);
            r->nvpending--;
            push(&r->vpiece, &r->nvpending, &r->capvpiece, a->piece);
        }
        if (a->kind != FR_SEND)
            continue;
        bool data = false;
        for (size_t k = 0; k < a->nsegs; k++) {
            const fr_seg *sg = &r->fr->segs[a->first_seg + k];
            if (sg->kind != HK_SEG_EXTENT)
                continue;
            data = true;
            if (!extent_cleared(r, i, &sg->ext))
                abort(); /* sent before it was resident or loaded */
            if (!extent_verified(r, &sg->ext))
                abort(); /* a piece not verified good */
        }
        if (data && a->conn == 0) {
            if (a->bytes > r->room0)
                abort(); /* data beyond the room granted */
            r->room0 -= (size_t)a->bytes;
        } else if (a->conn == 0) {
            r->room0 = a->bytes > r->room0 ? 0 : r->room0 - (size_t)a->bytes;
        }
    }
    r->seen_actions = r->fr->nactions;
}

/* The oldest pending verify answered: GOOD, or (v) 1 in 8 BAD, 1 in 32 RETRY. */
static void answer_verify(run *r, unsigned v)
{
    uint64_t t = r->vpending[0], piece = r->vpiece[0];
    memmove(r->vpending, r->vpending + 1, (r->nvpending - 1) * sizeof *r->vpending);
    memmove(r->vpiece, r->vpiece + 1, (r->nvpending - 1) * sizeof *r->vpiece);
    r->nvpending--;
    hk_verify_result res = v % 32 == 0 ? HK_VERIFY_RETRY : v % 8 == 1 ? HK_VERIFY_BAD : HK_VERIFY_GOOD;
    if (piece < 8 && res != HK_VERIFY_RETRY) {
        r->good[piece] = res == HK_VERIFY_GOOD;
        r->bad[piece] = res == HK_VERIFY_BAD;
    }
    hk_seeder_on_piece_verified(r->s, t, res);
}

static void room(run *r, size_t n)
{
    if (!r->p0 || fr_closed(r->fr, 0)) /* after close() the backend delivers nothing more */
        return;
    r->room0 = n;
    hk_seeder_on_sendable(r->s, r->p0, n);
}

static void feed(run *r, const uint8_t *b, size_t n)
{
    if (r->p0 && !fr_closed(r->fr, 0))
        hk_seeder_on_recv(r->s, r->p0, b, n);
}

static char *one_run(const uint8_t *data, size_t size)
{
    uint8_t flags = data[0];
    uint8_t seed = data[1];
    const uint8_t *stream = data + 2;
    size_t len = size - 2 > MAX_STREAM ? MAX_STREAM : size - 2;

    run r;
    memset(&r, 0, sizeof r);
    r.fr = fr_new(seed + 1u);
    r.fr->record_logs = false;
    r.rt = fr_runtime(r.fr);
    r.verify = seed & 0x80;
    if (r.verify)
        fr_enable_verify(&r.rt);
    hk_config_defaults(&r.cfg);
    r.cfg.verify_full = r.verify && (seed & 0x40);
    r.cfg.verify_rate = 32768;
    r.cfg.max_peers = 4;
    r.cfg.max_unchoked = flags & 0x20 ? 1 : 2;
    if (flags & 0x40)
        r.cfg.credit = 16384;
    if (flags & 0x80)
        r.cfg.reqq = 4;
    r.s = hk_seeder_new(&r.cfg, &r.rt);
    if (!r.s)
        abort();
    hk_seeder_set_log_level(r.s, HK_LOG_DEBUG); /* format every decision line (exercises the log paths) */
    if (flags & 0x08)
        fr_set_default_resident(r.fr, false);

    size_t tlen;
    uint8_t *torrent;
    if (flags & 0x10) {
        tb_file files[4] = {{"a", 20000, false}, {NULL, 12768, true}, {"b", 1, false}, {"c", 40000, false}};
        torrent = tb_torrent("multi", 16384, files, 4, &tlen);
        r.pieces = 5; /* 72769 bytes */
        r.piece_len = 16384;
        r.file_at[1] = 20000, r.file_at[2] = 32768, r.file_at[3] = 32769;
    } else {
        torrent = tb_single("single", 32768, 100000, &tlen);
        r.pieces = 4;
        r.piece_len = 32768;
    }
    uint8_t ih[20];
    if (!torrent || hk_seeder_add_torrent(r.s, torrent, tlen, 1, ih, NULL, 0) != HK_ADD_OK)
        abort();
    fr_set_metainfo(r.fr, 1, torrent, tlen);

    hk_addr a = {.family = 4, .ip = {10, 0, 0, 1}, .port = 1};
    r.p0 = hk_seeder_on_accept(r.s, fr_conn(r.fr, 0), &a);
    room(&r, 65536);
    if (flags & 0x20) {
        a.port = 2;
        r.p1 = hk_seeder_on_accept(r.s, fr_conn(r.fr, 1), &a);
        hk_seeder_on_sendable(r.s, r.p1, 1 << 20);
        uint8_t hs[WIRE_HANDSHAKE_LEN + WIRE_SIMPLE_LEN], res[8] = {0}, id[20] = {0};
        wire_reserved_set_fast(res);
        wire_encode_handshake(hs, res, ih, id);
        wire_encode_simple(hs + WIRE_HANDSHAKE_LEN, WIRE_INTERESTED);
        hk_seeder_on_recv(r.s, r.p1, hs, sizeof hs);
    }
    check(&r);
    if (flags & 0x01) {
        uint8_t hs[WIRE_HANDSHAKE_LEN], res[8] = {0}, id[20] = {0};
        if (flags & 0x02)
            wire_reserved_set_fast(res);
        if (flags & 0x04)
            wire_reserved_set_extended(res);
        wire_encode_handshake(hs, res, ih, id);
        feed(&r, hs, sizeof hs);
        check(&r);
    }

    uint32_t rng = seed * 2654435761u + 1;
    size_t at = 0;
    while (at < len) {
        rng = rng * 1103515245u + 12345u;
        size_t chunk = 1 + (rng >> 16) % 64;
        if (chunk > len - at)
            chunk = len - at;
        feed(&r, stream + at, chunk);
        at += chunk;
        check(&r);
        rng = rng * 1103515245u + 12345u;
        switch ((rng >> 16) % 8) {
        case 0:
        case 1:
            break;
        case 2:
            room(&r, (rng >> 8) % 70000);
            break;
        case 3:
            fr_run_until(r.fr, r.s, r.fr->now + HK_SECONDS(1 + (rng >> 10) % 60));
            break;
        case 4:
        case 5:
            if (r.verify && r.nvpending && ((rng >> 20) & 1)) {
                answer_verify(&r, (unsigned)((rng >> 12) % 64));
            } else if (r.npending) {
                uint64_t t = r.pending[0];
                memmove(r.pending, r.pending + 1, (r.npending - 1) * sizeof *r.pending);
                r.npending--;
                unsigned v = (unsigned)((rng >> 12) % 64); /* 1 in 64 an error, 7 in 64 a passing shortage */
                hk_disk_status st = v == 0 ? HK_DISK_ERROR : v < 8 ? HK_DISK_RETRY : HK_DISK_OK;
                if (st == HK_DISK_OK)
                    push(&r.loaded, &r.nloaded, &r.caploaded, t);
                hk_seeder_on_disk_loaded(r.s, t, st);
            }
            break;
        case 6:
            if (r.p1 && !fr_closed(r.fr, 1)) {
                uint8_t rq[WIRE_BLOCK_MSG_LEN];
                wire_encode_block(rq, WIRE_REQUEST, (rng >> 9) % 3, 0, 16384);
                hk_seeder_on_recv(r.s, r.p1, rq, sizeof rq);
            }
            break;
        case 7:
            if (r.p1 && !fr_closed(r.fr, 1)) {
                static const uint8_t ka[4];
                hk_seeder_on_recv(r.s, r.p1, ka, sizeof ka);
            }
            break;
        }
        check(&r);
    }
    /* drain: every pending verify says good, every pending load completes, time passes until every peer is gone */
    while (r.nvpending) {
        answer_verify(&r, 2);
        check(&r);
    }
    while (r.npending) {
        uint64_t t = r.pending[--r.npending];
        push(&r.loaded, &r.nloaded, &r.caploaded, t);
        hk_seeder_on_disk_loaded(r.s, t, HK_DISK_OK);
        check(&r);
    }
    room(&r, 1 << 20);
    check(&r);
    fr_run_until(r.fr, r.s, r.fr->now + HK_SECONDS(400));
    check(&r);
    hk_stats st;
    hk_seeder_stats(r.s, &st);
    if (st.peers != 0)
        abort(); /* the idle timeout removes everyone */

    /* everything sent to the fuzzed peer is a valid wire stream */
    fr_msgs m = fr_decode(r.fr, 0, r.pieces);
    if (m.error || m.partial)
        abort();
    for (size_t i = 0; i < m.n; i++)
        if (m.m[i].type == WIRE_PIECE && m.m[i].u.piece.index >= r.pieces)
            abort();
    fr_msgs_free(&m);

    char *log = fr_action_log(r.fr);
    hk_seeder_free(r.s);
    fr_free(r.fr);
    free(torrent);
    free(r.pending);
    free(r.loaded);
    free(r.vpending);
    free(r.vpiece);
    return log;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    char *a = one_run(data, size);
    char *b = one_run(data, size);
    if (strcmp(a, b) != 0)
        abort(); /* same events, same actions */
    free(a);
    free(b);
    return 0;
}
