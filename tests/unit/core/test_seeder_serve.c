/* Unit tests for serving (docs/design.md §4): prefetch on accept, residency -> requeue once -> disk_load -> send after
 * the load (never before), batching several blocks into one send, blocks spanning files, pad files as zeros, flow
 * control within room, disk errors (also after the requesting peer or request is gone), stale completions. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "seeder_harness.h"
#include "wire.h"

static harness h;

static void teardown(void)
{
    h_free(&h);
}

TestSuite(serve, .fini = teardown);

static void single(void)
{
    h_init(&h, NULL);
    cr_assert_eq(h_add_single(&h, 32768, 32768 * 16), HK_ADD_OK);
}

static void unchoked(int c, size_t room)
{
    h_accept(&h, c, room);
    h_handshake(&h, c, NULL, true, false);
    h_simple(&h, c, WIRE_INTERESTED);
}

/* Every piece message sent to c carries the bytes of the torrent at its position (pattern per file). */
/* A torrent of two 20000-byte files (block 1/0 spans both), nothing resident. */
static void two_files_cold(void)
{
    h_init(&h, NULL);
    tb_file files[2] = {{"a", 20000, false}, {"b", 20000, false}};
    cr_assert_eq(h_add_files(&h, 16384, files, 2), HK_ADD_OK);
    fr_set_default_resident(h.fr, false);
}

/* Nothing resident; peer 0 (and peer 1 with two_peers) unchoked; peer 0 asks for block 0/0/16384, which goes to the
 * disk: the token of its load. */
static uint64_t cold_request(bool two_peers)
{
    fr_set_default_resident(h.fr, false);
    unchoked(0, 1 << 20);
    if (two_peers)
        unchoked(1, 1 << 20);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    return fr_last(h.fr, FR_LOAD)->token;
}

static size_t check_pieces(int c, const uint64_t *file_offsets, const bool *pad, size_t nfiles)
{
    fr_msgs m = h_msgs(&h, c);
    cr_assert_not(m.error);
    size_t n = 0;
    for (size_t i = 0; i < m.n; i++) {
        if (m.m[i].type != WIRE_PIECE)
            continue;
        n++;
        uint64_t pos = (uint64_t)m.m[i].u.piece.index * h.piece_len + m.m[i].u.piece.begin;
        for (uint32_t b = 0; b < m.m[i].u.piece.len; b++) {
            uint64_t at = pos + b;
            size_t f = 0;
            while (f + 1 < nfiles && file_offsets[f + 1] <= at)
                f++;
            uint8_t want = pad[f] ? 0 : fr_pattern_byte(H_STORAGE, (uint32_t)f, at - file_offsets[f]);
            cr_assert_eq(m.m[i].u.piece.data[b], want, "byte %llu", (unsigned long long)at);
        }
    }
    fr_msgs_free(&m);
    return n;
}

Test(serve, prefetch_at_once_on_accepting_a_request)
{
    single();
    unchoked(0, 0); /* no room: nothing can be sent yet */
    h_block(&h, 0, WIRE_REQUEST, 5, 16384, 16384);
    cr_assert_eq(fr_count(h.fr, FR_PREFETCH), 1);
    const fr_action *a = fr_last(h.fr, FR_PREFETCH);
    cr_assert_eq(a->ext.storage, H_STORAGE);
    cr_assert_eq(a->ext.file, 0);
    cr_assert_eq(a->ext.offset, 5 * 32768 + 16384);
    cr_assert_eq(a->ext.length, 16384);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 0);
}

Test(serve, resident_block_is_sent_as_header_plus_extent)
{
    single();
    unchoked(0, 1 << 20);
    h_block(&h, 0, WIRE_REQUEST, 2, 0, 16384);
    const fr_action *s = fr_last(h.fr, FR_SEND);
    cr_assert_eq(s->nsegs, 2);
    const fr_seg *hdr = &h.fr->segs[s->first_seg], *ext = &h.fr->segs[s->first_seg + 1];
    cr_assert_eq(hdr->kind, HK_SEG_BYTES);
    cr_assert_eq(hdr->len, WIRE_PIECE_HEADER_LEN);
    cr_assert_eq(ext->kind, HK_SEG_EXTENT);
    cr_assert_eq(ext->ext.offset, 2 * 32768);
    cr_assert_eq(ext->ext.length, 16384);
    uint64_t off[1] = {0};
    bool pad[1] = {false};
    cr_assert_eq(check_pieces(0, off, pad, 1), 1);
    cr_assert_eq(h_stats(&h).blocks_sent, 1);
    cr_assert_eq(h_stats(&h).requeues, 0);
    cr_assert_eq(h_stats(&h).resident_hits, 1, "resident at its first check: one page-cache hit");
}

Test(serve, not_resident_requeue_once_then_load_then_send)
{
    single();
    fr_set_resident(h.fr, H_STORAGE, 0, 0, 32768, false); /* piece 0 cold */
    unchoked(0, 1 << 20);
    size_t mark = h.fr->nactions;
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 0, "never sent before resident or loaded");
    cr_assert_eq(h_stats(&h).requeues, 1);
    cr_assert_eq(h_stats(&h).disk_loads, 1);
    /* the sequence: asked twice (once, then after the yield), then one load */
    int asked = 0;
    const fr_action *load = NULL;
    for (size_t i = mark; i < h.fr->nactions; i++) {
        const fr_action *a = &h.fr->actions[i];
        if (a->kind == FR_RESIDENT) {
            cr_assert_null(load, "no residency question after the load was issued");
            cr_assert_not(a->answer);
            asked++;
        }
        if (a->kind == FR_LOAD)
            load = a;
        cr_assert(!(a->kind == FR_SEND && a->conn == 0 && a->bytes > 100), "no data before the load completes");
    }
    cr_assert_eq(asked, 2);
    cr_assert_not_null(load);
    cr_assert_eq(load->ext.offset, 0);
    cr_assert_eq(load->ext.length, 16384);
    cr_assert_eq(h_stats(&h).queued_requests, 1);
    uint64_t token = load->token;
    hk_seeder_on_disk_loaded(h.s, token, HK_DISK_OK);
    uint64_t off[1] = {0};
    bool pad[1] = {false};
    cr_assert_eq(check_pieces(0, off, pad, 1), 1);
    cr_assert_eq(h_stats(&h).queued_requests, 0);
    cr_assert_eq(h_stats(&h).resident_hits, 0, "a miss (requeued), never a hit");
    /* a repeated or stale completion is ignored */
    hk_seeder_on_disk_loaded(h.s, token, HK_DISK_OK);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1);
}

Test(serve, the_yield_lets_resident_blocks_go_first)
{
    single();
    fr_set_resident(h.fr, H_STORAGE, 0, 0, 32768, false);
    unchoked(0, 0);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);    /* cold */
    h_block(&h, 0, WIRE_REQUEST, 3, 0, 16384);    /* warm */
    h_block(&h, 0, WIRE_REQUEST, 0, 16384, 16384); /* cold */
    h_room(&h, 0, 1 << 20);
    fr_msgs m = h_msgs(&h, 0);
    cr_assert_eq(fr_msgs_count(&m, WIRE_PIECE), 1);
    cr_assert_eq(m.m[m.n - 1].u.piece.index, 3);
    fr_msgs_free(&m);
    cr_assert_eq(h_stats(&h).requeues, 2);
    cr_assert_eq(fr_count(h.fr, FR_LOAD), 2);
    /* completions in the reverse order: blocks go out as they are loaded */
    size_t nl = 0;
    uint64_t tokens[2];
    for (size_t i = 0; i < h.fr->nactions; i++)
        if (h.fr->actions[i].kind == FR_LOAD)
            tokens[nl++] = h.fr->actions[i].token;
    cr_assert_neq(tokens[0], tokens[1]);
    hk_seeder_on_disk_loaded(h.s, tokens[1], HK_DISK_OK);
    m = h_msgs(&h, 0);
    cr_assert_eq(m.m[m.n - 1].u.piece.begin, 16384);
    fr_msgs_free(&m);
    hk_seeder_on_disk_loaded(h.s, tokens[0], HK_DISK_OK);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 3);
}

Test(serve, prefetch_that_worked_needs_no_load)
{
    single();
    fr_set_resident(h.fr, H_STORAGE, 0, 0, 32768, false);
    unchoked(0, 0);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    h_room(&h, 0, 1 << 20); /* first check: cold -> requeued; second check in a later turn... */
    cr_assert_eq(fr_count(h.fr, FR_LOAD), 1, "still cold: loaded");
    /* with the page cache warm by the second look, no load */
    h_free(&h);
    single();
    unchoked(0, 0);
    fr_set_resident(h.fr, H_STORAGE, 0, 0, 32768, false);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    h_block(&h, 0, WIRE_REQUEST, 1, 0, 16384);
    /* cold at the first look only */
    h_room(&h, 0, 20000); /* room for one: block 1 (warm) goes, block 0 was moved back */
    cr_assert_eq(h_stats(&h).requeues, 1);
    fr_set_resident(h.fr, H_STORAGE, 0, 0, 32768, true);
    h_room(&h, 0, 1 << 20);
    cr_assert_eq(fr_count(h.fr, FR_LOAD), 0, "resident at its second turn: sent without a load");
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 2);
}

Test(serve, disk_error_fails_the_torrent)
{
    single();
    fr_set_default_resident(h.fr, false);
    unchoked(0, 1 << 20);
    unchoked(1, 1 << 20);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    const fr_action *ld = fr_last(h.fr, FR_LOAD);
    cr_assert_not_null(ld);
    hk_seeder_on_disk_loaded(h.s, ld->token, HK_DISK_ERROR);
    cr_assert(fr_closed(h.fr, 0));
    cr_assert(fr_closed(h.fr, 1), "every peer of the torrent");
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &ts));
    cr_assert(ts.failed);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 0);
}

Test(serve, completion_for_a_gone_peer_is_ignored)
{
    single();
    uint64_t token = cold_request(false);
    h_closed(&h, 0);
    unchoked(1, 1 << 20); /* reuses the slot */
    hk_seeder_on_disk_loaded(h.s, token, HK_DISK_OK);
    /* the load had its one completion: a second one is stale, ignored even as an error */
    hk_seeder_on_disk_loaded(h.s, token, HK_DISK_ERROR);
    hk_seeder_on_disk_loaded(h.s, 0, HK_DISK_ERROR);
    hk_seeder_on_disk_loaded(h.s, UINT64_MAX, HK_DISK_ERROR);
    hk_seeder_on_disk_loaded(h.s, token ^ (1ull << 32), HK_DISK_ERROR); /* right record, wrong generation */
    cr_assert_not(fr_closed(h.fr, 1));
    cr_assert_eq(h_count(&h, 1, WIRE_PIECE), 0);
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &ts));
    cr_assert_not(ts.failed);
}

/* The torrent is failed: every peer of it closed, new handshakes refused. */
static void assert_torrent_failed(int other_peer)
{
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &ts));
    cr_assert(ts.failed);
    cr_assert_eq(ts.peers, 0);
    cr_assert(fr_closed(h.fr, other_peer), "the torrent's other peer is dropped");
    cr_assert_eq(h_count(&h, other_peer, WIRE_PIECE), 0);
    h_accept(&h, 9, 1 << 20);
    h_handshake(&h, 9, NULL, true, false);
    cr_assert(fr_closed(h.fr, 9), "a failed torrent refuses handshakes");
    cr_assert_geq(fr_find_log(h.fr, "storage failed: a disk load failed", 0), 0);
}

Test(serve, disk_error_after_its_peer_left_fails_the_torrent)
{
    single();
    uint64_t token = cold_request(false);
    h_closed(&h, 0);
    unchoked(1, 1 << 20); /* takes the slot peer 0 had */
    hk_seeder_on_disk_loaded(h.s, token, HK_DISK_ERROR);
    assert_torrent_failed(1);
}

Test(serve, disk_error_after_the_request_was_cancelled_fails_the_torrent)
{
    single();
    uint64_t token = cold_request(true);
    h_block(&h, 0, WIRE_CANCEL, 0, 0, 16384);
    cr_assert_eq(h_stats(&h).queued_requests, 0);
    hk_seeder_on_disk_loaded(h.s, token, HK_DISK_ERROR);
    assert_torrent_failed(1);
    cr_assert(fr_closed(h.fr, 0));
}

Test(serve, disk_error_on_the_second_extent_after_the_peer_left)
{
    two_files_cold();
    unchoked(0, 1 << 20);
    unchoked(1, 1 << 20);
    h_block(&h, 0, WIRE_REQUEST, 1, 0, 16384); /* two extents: two loads, one token */
    cr_assert_eq(fr_count(h.fr, FR_LOAD), 2);
    uint64_t t = fr_last(h.fr, FR_LOAD)->token;
    hk_seeder_on_disk_loaded(h.s, t, HK_DISK_OK);
    h_closed(&h, 0);
    cr_assert_not(fr_closed(h.fr, 1));
    hk_seeder_on_disk_loaded(h.s, t, HK_DISK_ERROR);
    assert_torrent_failed(1);
}

Test(serve, disk_error_for_a_removed_torrent_fails_nothing)
{
    single();
    uint64_t token = cold_request(false);
    cr_assert(hk_seeder_remove_torrent(h.s, h.ih));
    cr_assert(fr_closed(h.fr, 0));
    /* added again: it takes the same torrent record */
    cr_assert_eq(hk_seeder_add_torrent(h.s, h.torrent, h.torrent_len, H_STORAGE, NULL, NULL, 0), HK_ADD_OK);
    unchoked(1, 1 << 20);
    hk_seeder_on_disk_loaded(h.s, token, HK_DISK_ERROR);
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &ts));
    cr_assert_not(ts.failed, "the error was the removed torrent's");
    cr_assert_not(fr_closed(h.fr, 1));
    cr_assert_eq(ts.peers, 1);
}

Test(serve, pending_loads_hold_memory_until_their_last_completion)
{
    single();
    fr_set_default_resident(h.fr, false);
    unchoked(0, 1 << 20);
    uint64_t base = h_stats(&h).memory_bytes;
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    h_block(&h, 0, WIRE_REQUEST, 1, 0, 16384);
    cr_assert_eq(fr_count(h.fr, FR_LOAD), 2);
    uint64_t tokens[2], k = 0;
    for (size_t i = 0; i < h.fr->nactions; i++)
        if (h.fr->actions[i].kind == FR_LOAD)
            tokens[k++] = h.fr->actions[i].token;
    cr_assert_neq(tokens[0], tokens[1]);
    h_closed(&h, 0); /* the peer and its queue go; the records of its loads stay */
    uint64_t gone = h_stats(&h).memory_bytes;
    cr_assert_lt(gone, base, "peer freed");
    hk_seeder_on_disk_loaded(h.s, tokens[0], HK_DISK_OK);
    cr_assert_eq(h_stats(&h).memory_bytes, gone, "one load still pending: the records stay");
    hk_seeder_on_disk_loaded(h.s, tokens[1], HK_DISK_OK);
    uint64_t after = h_stats(&h).memory_bytes;
    cr_assert_lt(after, gone, "the last completion releases the records");
    /* nothing pending: a stale completion finds nothing */
    hk_seeder_on_disk_loaded(h.s, tokens[1], HK_DISK_ERROR);
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &ts));
    cr_assert_not(ts.failed);
}

Test(serve, cancel_while_loading)
{
    single();
    uint64_t token = cold_request(false);
    h_block(&h, 0, WIRE_CANCEL, 0, 0, 16384);
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 1);
    hk_seeder_on_disk_loaded(h.s, token, HK_DISK_OK);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 0, "cancelled: never sent");
}

Test(serve, many_blocks_in_one_send)
{
    single();
    unchoked(0, 0);
    uint8_t buf[10 * WIRE_BLOCK_MSG_LEN];
    for (uint32_t i = 0; i < 10; i++)
        wire_encode_block(buf + i * WIRE_BLOCK_MSG_LEN, WIRE_REQUEST, i / 2, (i % 2) * 16384, 16384);
    h_recv(&h, 0, buf, sizeof buf);
    size_t sends = fr_count(h.fr, FR_SEND);
    h_room(&h, 0, 1 << 20);
    cr_assert_eq(fr_count(h.fr, FR_SEND), sends + 1, "ten blocks, one send");
    const fr_action *s = fr_last(h.fr, FR_SEND);
    cr_assert_eq(s->nsegs, 20);
    cr_assert_eq(s->bytes, 10 * (16384 + WIRE_PIECE_HEADER_LEN));
    uint64_t off[1] = {0};
    bool pad[1] = {false};
    cr_assert_eq(check_pieces(0, off, pad, 1), 10);
    /* requests arriving in one read are also answered in one send */
    h_recv(&h, 0, buf, sizeof buf);
    cr_assert_eq(fr_count(h.fr, FR_SEND), sends + 2);
}

Test(serve, batches_are_bounded)
{
    hk_config c;
    hk_config_defaults(&c);
    c.reqq = 200;
    h_init(&h, &c);
    cr_assert_eq(h_add_single(&h, 32768, 32768 * 100), HK_ADD_OK);
    unchoked(0, 0);
    for (uint32_t i = 0; i < 150; i++)
        h_block(&h, 0, WIRE_REQUEST, i / 2, (i % 2) * 16384, 16384);
    size_t sends = fr_count(h.fr, FR_SEND);
    h_room(&h, 0, 100u << 20);
    cr_assert_eq(fr_count(h.fr, FR_SEND), sends + 3, "64 + 64 + 22");
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 150);
}

Test(serve, room_is_never_exceeded)
{
    single();
    unchoked(0, 0);
    for (uint32_t i = 0; i < 8; i++)
        h_block(&h, 0, WIRE_REQUEST, i / 2, (i % 2) * 16384, 16384);
    size_t mark = h.fr->nactions;
    h_room(&h, 0, 3 * 16397 + 100);
    uint64_t sent = 0;
    for (size_t i = mark; i < h.fr->nactions; i++)
        if (h.fr->actions[i].kind == FR_SEND)
            sent += h.fr->actions[i].bytes;
    cr_assert_eq(sent, 3 * 16397, "three whole messages fit; the fourth waits");
    h_room(&h, 0, 16396);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 3, "one byte short: nothing");
    h_room(&h, 0, 16397);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 4);
}

Test(serve, block_across_files_and_pad_zeros)
{
    h_init(&h, NULL);
    /* a(10000) pad(6384) b(5000) c(30000): piece 16384 */
    tb_file files[4] = {{"a", 10000, false}, {NULL, 6384, true}, {"b", 5000, false}, {"c", 30000, false}};
    cr_assert_eq(h_add_files(&h, 16384, files, 4), HK_ADD_OK);
    unchoked(0, 1 << 20);
    h_block(&h, 0, WIRE_REQUEST, 0, 8000, 8384);  /* a tail + the whole pad */
    const fr_action *s = fr_last(h.fr, FR_SEND);
    cr_assert_eq(s->nsegs, 3, "header, extent of a, zeros");
    cr_assert_eq(h.fr->segs[s->first_seg + 1].kind, HK_SEG_EXTENT);
    cr_assert_eq(h.fr->segs[s->first_seg + 2].kind, HK_SEG_BYTES, "the pad is never a disk extent");
    h_block(&h, 0, WIRE_REQUEST, 1, 0, 16384);    /* b + start of c */
    s = fr_last(h.fr, FR_SEND);
    cr_assert_eq(s->nsegs, 3);
    cr_assert_eq(h.fr->segs[s->first_seg + 1].ext.file, 2);
    cr_assert_eq(h.fr->segs[s->first_seg + 1].ext.length, 5000);
    cr_assert_eq(h.fr->segs[s->first_seg + 2].ext.file, 3);
    cr_assert_eq(h.fr->segs[s->first_seg + 2].ext.offset, 0);
    cr_assert_eq(h.fr->segs[s->first_seg + 2].ext.length, 11384);
    h_block(&h, 0, WIRE_REQUEST, 3, 0, 1) ; /* last piece: 51384 - 49152 = 2232 bytes */
    h_block(&h, 0, WIRE_REQUEST, 3, 0, 2232);
    uint64_t off[4] = {0, 10000, 16384, 21384};
    bool pad[4] = {false, true, false, false};
    cr_assert_eq(check_pieces(0, off, pad, 4), 4);
    /* prefetches never name the pad file */
    for (size_t i = 0; i < h.fr->nactions; i++)
        if (h.fr->actions[i].kind == FR_PREFETCH || h.fr->actions[i].kind == FR_RESIDENT)
            cr_assert_neq(h.fr->actions[i].ext.file, 1);
}

Test(serve, cold_multi_file_block_loads_each_extent)
{
    two_files_cold();
    unchoked(0, 1 << 20);
    h_block(&h, 0, WIRE_REQUEST, 1, 0, 16384); /* 16384..32767: a 16384..19999, b 0..12767 */
    cr_assert_eq(fr_count(h.fr, FR_LOAD), 2);
    uint64_t t = fr_last(h.fr, FR_LOAD)->token;
    hk_seeder_on_disk_loaded(h.s, t, HK_DISK_OK);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 0, "one of two extents loaded: not yet");
    hk_seeder_on_disk_loaded(h.s, t, HK_DISK_OK);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1);
    uint64_t off[2] = {0, 20000};
    bool pad[2] = {false, false};
    cr_assert_eq(check_pieces(0, off, pad, 2), 1);
}

Test(serve, uploaded_counts_per_torrent)
{
    h_init(&h, NULL);
    cr_assert_eq(h_add_single(&h, 32768, 32768 * 4), HK_ADD_OK);
    uint8_t first[20];
    memcpy(first, h.ih, 20);
    size_t len;
    uint8_t *other = tb_single("other", 16384, 40000, &len);
    uint8_t ih2[20];
    cr_assert_eq(hk_seeder_add_torrent(h.s, other, len, 9, ih2, NULL, 0), HK_ADD_OK);
    free(other);
    unchoked(0, 1 << 20);
    h_accept(&h, 1, 1 << 20);
    h_handshake(&h, 1, ih2, true, false);
    h_simple(&h, 1, WIRE_INTERESTED);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    h_block(&h, 1, WIRE_REQUEST, 2, 0, 7232); /* the short last piece of the other */
    hk_torrent_stats a, b;
    cr_assert(hk_seeder_torrent_stats(h.s, first, &a));
    cr_assert(hk_seeder_torrent_stats(h.s, ih2, &b));
    cr_assert_eq(a.uploaded, 16384);
    cr_assert_eq(b.uploaded, 7232);
    cr_assert_eq(a.peers, 1);
    cr_assert_eq(b.peers, 1);
    const fr_action *s = fr_last(h.fr, FR_SEND);
    cr_assert_eq(h.fr->segs[s->first_seg + 1].ext.storage, 9);
}

/* Reactivity (issue 12): a request from a peer whose queue was empty is served in its own event, alone: the pass ends
 * after it while a peer with a long queue and room is still ready, and that peer's refill comes at the next wake-up
 * (asked for at once). Before, the same event went on to queue up to HK_PASS_BLOCKS (256) blocks for the long queue
 * between the quiet peer's request and its reply. */
static size_t sends_to(int c, size_t from)
{
    size_t n = 0;
    for (size_t i = from; i < h.fr->nactions; i++)
        n += h.fr->actions[i].kind == FR_SEND && h.fr->actions[i].conn == c;
    return n;
}

Test(serve, a_quiet_peer_is_served_alone_before_the_bulk_goes_on)
{
    hk_config c;
    hk_config_defaults(&c);
    c.reqq = 700;
    h_init(&h, &c);
    cr_assert_eq(h_add_single(&h, 32768, 32768 * 400), HK_ADD_OK);
    unchoked(1, 1 << 20); /* the quiet peer */
    unchoked(0, 0);       /* the bulk peer: no room yet, its requests wait */
    for (uint32_t k = 0; k < 700; k++)
        h_block(&h, 0, WIRE_REQUEST, k / 2, (k % 2) * 16384, 16384);
    h_room(&h, 0, 64u << 20);
    uint64_t bulk = h_stats(&h).blocks_sent;
    cr_assert_eq(bulk, 256, "one pass: HK_PASS_BLOCKS blocks, the rest waits (%llu)", (unsigned long long)bulk);
    cr_assert_eq(h.fr->wake, h.fr->now, "the rest of the long queue asks for a wake-up at once");
    size_t mark = h.fr->nactions;
    h_block(&h, 1, WIRE_REQUEST, 399, 16384, 16384);
    cr_assert_eq(sends_to(1, mark), 1, "the quiet peer's block goes in its own event");
    cr_assert_eq(sends_to(0, mark), 0, "and nothing for the long queue in that event");
    cr_assert_eq(h_stats(&h).blocks_sent, bulk + 1);
    cr_assert_eq(h.fr->wake, h.fr->now, "the long queue continues at the next wake-up, at once");
    h_advance(&h, 0);
    cr_assert_gt(sends_to(0, mark), 0, "it did");
    cr_assert_eq(h_stats(&h).blocks_sent, 700 + 1, "everything served in the end");
    cr_assert_eq(h_count(&h, 1, WIRE_PIECE), 1);
}
