/* Unit tests for lazy piece verification (core/seeder_verify.c, core/piece_state.c; the disk_verify contract in
 * core/seeder_runtime.h), through the fake runtime's disk_verify: a block of a piece not yet verified waits for one
 * verify of the whole piece (hash extent in the .torrent); a good piece is served, a bad one never: rejected (fast)
 * or dropped then discarded by choke + unchoke (no fast), left out of a new peer's bitfield, logged as damaged,
 * counted; RETRY checks again after a backoff, ERROR fails the torrent; the state's memory is freed once every piece
 * is good; without disk_verify nothing is checked. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request_queue.h"
#include "fixtures.h"
#include "metainfo.h"
#include "piece_state.h"
#include "seeder_harness.h"
#include "seeder_internal.h" /* HKS_BAD_REJECT_HOLD */
#include "wire.h"

static harness h;

static void teardown(void) { h_free(&h); }

TestSuite(seeder_verify, .fini = teardown);

#define PIECE 32768u
#define NPIECES 8u

/* A harness whose runtime has disk_verify, with a single-file torrent of NPIECES pieces (everything resident). */
static void setup_verify(void)
{
    memset(&h, 0, sizeof h);
    h.fr = fr_new(12345);
    h.rt = fr_runtime(h.fr);
    fr_enable_verify(&h.rt);
    h.fr->echo_logs = getenv("ECHO") != NULL;
    hk_config_defaults(&h.cfg);
    h.s = hk_seeder_new(&h.cfg, &h.rt);
    cr_assert(h.s);
    cr_assert_eq(h_add_single(&h, PIECE, (uint64_t)PIECE * NPIECES - 1000), HK_ADD_OK);
}

static void peer(int c, bool fast)
{
    h_accept(&h, c, 1 << 20);
    h_handshake(&h, c, NULL, fast, false);
    h_simple(&h, c, WIRE_INTERESTED);
}

static const fr_action *last_verify(size_t expect_count)
{
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), expect_count, "verifies: %zu, expected %zu",
                 fr_count(h.fr, FR_VERIFY), expect_count);
    return fr_last(h.fr, FR_VERIFY);
}

/* The bitfield peer c received (NULL if none), copied into bits. */
static bool bitfield_of(int c, uint8_t *bits, size_t cap)
{
    fr_msgs m = h_msgs(&h, c);
    bool found = false;
    for (size_t i = 0; i < m.n; i++)
        if (m.m[i].type == WIRE_BITFIELD && m.m[i].u.bitfield.len <= cap) {
            memcpy(bits, m.m[i].u.bitfield.bits, m.m[i].u.bitfield.len);
            found = true;
        }
    fr_msgs_free(&m);
    return found;
}

Test(seeder_verify, a_block_waits_for_one_verify_of_its_piece_then_is_served)
{
    setup_verify();
    peer(0, true);
    h_block(&h, 0, WIRE_REQUEST, 2, 0, 16384);
    h_block(&h, 0, WIRE_REQUEST, 2, 16384, 16384);
    const fr_action *v = last_verify(1);
    cr_assert_eq(v->piece, 2);
    cr_assert_eq(v->vbytes, PIECE, "the whole piece is read");
    mi_torrent *mi;
    cr_assert_eq(mi_parse(h.torrent, h.torrent_len, &mi, NULL), 0);
    cr_assert_eq(v->ext.file, HK_FILE_METAINFO);
    cr_assert_eq(v->ext.offset, mi->pieces_offset + 40, "the piece's hash in the .torrent");
    cr_assert_eq(v->ext.length, 20);
    mi_free(mi);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 0, "nothing sent before the piece is verified");
    hk_seeder_on_piece_verified(h.s, v->token, HK_VERIFY_GOOD);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 2);
    cr_assert_eq(h_stats(&h).pieces_verified, 1);
    h_block(&h, 0, WIRE_REQUEST, 2, 0, 16384);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 3, "a good piece is not checked again");
    last_verify(1);
}

/* The torrent of the harness: its stats (the only one). */
static hk_torrent_stats only_torrent(void)
{
    uint32_t cursor = 0;
    uint8_t ih[20];
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_next(h.s, &cursor, ih, &ts));
    return ts;
}

/* Metrics (issue 11 item 1): a verify in flight counts for its torrent (state "verifying") and in
 * verifies_pending; the block that waited for it is observed in the first-byte histogram with its whole wait. */
Test(seeder_verify, verifying_state_and_first_byte_latency)
{
    setup_verify();
    peer(0, true);
    cr_assert_eq(only_torrent().verifying, 0u);
    h_block(&h, 0, WIRE_REQUEST, 3, 0, 16384);
    h_block(&h, 0, WIRE_REQUEST, 5, 0, 16384);
    cr_assert_eq(only_torrent().verifying, 2u, "two pieces being checked");
    cr_assert_eq(h_stats(&h).verifies_pending, 2u);
    fr_set_now(h.fr, h.fr->now + 7000000u); /* the check of piece 3 takes 7 ms */
    uint64_t token3 = 0;
    for (size_t i = 0; i < h.fr->nactions; i++)
        if (h.fr->actions[i].kind == FR_VERIFY && h.fr->actions[i].piece == 3)
            token3 = h.fr->actions[i].token;
    cr_assert_neq(token3, 0u);
    hk_seeder_on_piece_verified(h.s, token3, HK_VERIFY_GOOD);
    cr_assert_eq(only_torrent().verifying, 1u);
    cr_assert_eq(h_stats(&h).verifies_pending, 1u);
    hk_stats st = h_stats(&h);
    cr_assert_eq(st.first_byte.count, h_count(&h, 0, WIRE_PIECE), "every block sent is observed");
    cr_assert_geq(st.first_byte.count, 1u);
    cr_assert_geq(st.first_byte.sum_ns, 7000000u - (1u << HK_RQ_TICK_SHIFT), "the wait is in its latency: %llu ns",
                  (unsigned long long)st.first_byte.sum_ns);
    cr_assert_leq(st.first_byte.sum_ns, 7000000u + (1u << HK_RQ_TICK_SHIFT));
    hk_seeder_on_piece_verified(h.s, last_verify(2)->token, HK_VERIFY_BAD);
    hk_torrent_stats ts = only_torrent();
    cr_assert_eq(ts.verifying, 0u);
    cr_assert_eq(ts.pieces_bad, 1u, "damaged");
    cr_assert_eq(h_stats(&h).verifies_pending, 0u);
}

Test(seeder_verify, two_peers_asking_the_same_piece_share_one_verify)
{
    setup_verify();
    peer(0, true);
    peer(1, false);
    h_block(&h, 0, WIRE_REQUEST, 4, 0, 16384);
    h_block(&h, 1, WIRE_REQUEST, 4, 16384, 16384);
    const fr_action *v = last_verify(1);
    hk_seeder_on_piece_verified(h.s, v->token, HK_VERIFY_GOOD);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1);
    cr_assert_eq(h_count(&h, 1, WIRE_PIECE), 1);
    hk_seeder_on_piece_verified(h.s, v->token, HK_VERIFY_GOOD); /* stale: ignored */
    cr_assert_eq(h_stats(&h).pieces_verified, 1);
}

Test(seeder_verify, a_bad_piece_is_rejected_to_a_fast_peer_and_never_sent)
{
    setup_verify();
    peer(0, true);
    h_block(&h, 0, WIRE_REQUEST, 3, 0, 16384);
    hk_seeder_on_piece_verified(h.s, last_verify(1)->token, HK_VERIFY_BAD);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 0);
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 0, "no lt_donthave: the reject is held for HKS_BAD_REJECT_HOLD");
    h_advance(&h, HKS_BAD_REJECT_HOLD - HK_MILLIS(10));
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 0);
    h_advance(&h, HK_MILLIS(20));
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 1, "then sent");
    cr_assert_not(fr_closed(h.fr, 0));
    cr_assert_eq(h_stats(&h).pieces_bad, 1);
    cr_assert_geq(fr_find_log(h.fr, "damaged: piece 3 fails its hash", 0), 0);
    for (uint32_t k = 1; k <= 3; k++) { /* it asks again at once, each time: one reject per hold, not one per ask */
        h_block(&h, 0, WIRE_REQUEST, 3, 16384, 16384);
        cr_assert_eq(h_count(&h, 0, WIRE_REJECT), k);
        h_advance(&h, HKS_BAD_REJECT_HOLD + HK_MILLIS(10));
        cr_assert_eq(h_count(&h, 0, WIRE_REJECT), k + 1, "asked again: rejected again, not checked again");
    }
    last_verify(1);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 0);
    /* the other pieces are unaffected */
    h_block(&h, 0, WIRE_REQUEST, 5, 0, 16384);
    hk_seeder_on_piece_verified(h.s, last_verify(2)->token, HK_VERIFY_GOOD);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1);
    cr_assert_eq(h_stats(&h).pieces_bad, 1);
}

/* The payloads of the lt_donthave messages (extended id `id`) peer c received, as piece indexes; their count. */
static size_t donthaves_of(int c, uint8_t id, uint32_t *pieces, size_t cap)
{
    fr_msgs m = h_msgs(&h, c);
    size_t n = 0;
    for (size_t i = 0; i < m.n; i++)
        if (m.m[i].type == WIRE_EXTENDED && m.m[i].u.ext.id == id) {
            cr_assert_eq(m.m[i].u.ext.len, 4, "BEP 54: a 4-byte piece index");
            const uint8_t *b = m.m[i].u.ext.payload;
            if (n < cap)
                pieces[n] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
            n++;
        }
    fr_msgs_free(&m);
    return n;
}

Test(seeder_verify, peers_speaking_lt_donthave_are_told_a_bad_piece_is_gone_once)
{
    setup_verify();
    static const char ext_lt[] = "d1:md11:lt_donthavei7eee", ext_none[] = "d1:md11:ut_metadatai3eee";
    h_accept(&h, 0, 1 << 20); /* fast, speaks lt_donthave (id 7): the one that meets the bad piece */
    h_handshake(&h, 0, NULL, true, true);
    h_extended(&h, 0, 0, ext_lt, sizeof ext_lt - 1);
    h_simple(&h, 0, WIRE_INTERESTED);
    h_accept(&h, 1, 1 << 20); /* another, idle, also speaking it: told as well (it was offered the piece too) */
    h_handshake(&h, 1, NULL, true, true);
    h_extended(&h, 1, 0, ext_lt, sizeof ext_lt - 1);
    h_accept(&h, 2, 1 << 20); /* extended, without lt_donthave: nothing to tell it */
    h_handshake(&h, 2, NULL, true, true);
    h_extended(&h, 2, 0, ext_none, sizeof ext_none - 1);
    h_block(&h, 0, WIRE_REQUEST, 3, 0, 16384);
    hk_seeder_on_piece_verified(h.s, last_verify(1)->token, HK_VERIFY_BAD);
    uint32_t got[4];
    cr_assert_eq(donthaves_of(0, 7, got, 4), 1);
    cr_assert_eq(got[0], 3);
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 1, "its pending request is still refused");
    cr_assert_eq(donthaves_of(1, 7, got, 4), 1);
    cr_assert_eq(got[0], 3);
    cr_assert_eq(donthaves_of(2, 3, got, 4), 0);
    cr_assert_eq(donthaves_of(2, 7, got, 4), 0);
    h_block(&h, 0, WIRE_REQUEST, 3, 16384, 16384); /* asks again anyway: rejected, not told again */
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 2);
    cr_assert_eq(donthaves_of(0, 7, got, 4), 1);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 0);
    cr_assert_geq(fr_find_log(h.fr, "lt_donthave 3: the piece fails its hash", 0), 0);
}

Test(seeder_verify, a_peer_without_fast_asking_a_bad_piece_has_it_dropped_then_choked_unchoked_and_the_rest_served)
{
    setup_verify();
    peer(0, false);
    h_block(&h, 0, WIRE_REQUEST, 1, 0, 16384);
    hk_seeder_on_piece_verified(h.s, last_verify(1)->token, HK_VERIFY_BAD);
    cr_assert(!fr_closed(h.fr, 0), "it cannot be refused, but closing it would lose it the rest: kept");
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 0);
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 0, "no reject to a peer without the fast extension");
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 0, "no choke while it may still ask for more");
    h_advance(&h, HK_SECONDS(3)); /* it asks for nothing for its grace (2 s): a choke discards the dropped request */
    size_t chokes = h_count(&h, 0, WIRE_CHOKE);
    cr_assert_eq(chokes, 1);
    cr_assert_eq(h_count(&h, 0, WIRE_UNCHOKE), 2, "unchoked again at once (the first unchoke, then this one)");
    h_block(&h, 0, WIRE_REQUEST, 1, 16384, 16384); /* asked again: dropped again, never verified again */
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 0);
    h_advance(&h, HK_SECONDS(3));
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), chokes + 1);
    cr_assert(!fr_closed(h.fr, 0));
    h_block(&h, 0, WIRE_REQUEST, 5, 0, 16384);
    hk_seeder_on_piece_verified(h.s, last_verify(2)->token, HK_VERIFY_GOOD);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1, "the good piece is served");
    cr_assert(!fr_closed(h.fr, 0));
}

Test(seeder_verify, a_new_peer_gets_a_bitfield_without_the_bad_pieces)
{
    setup_verify();
    peer(0, true);
    h_block(&h, 0, WIRE_REQUEST, 1, 0, 16384);
    h_block(&h, 0, WIRE_REQUEST, 6, 0, 16384);
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 2);
    uint64_t tokens[2];
    size_t nt = 0;
    for (size_t i = 0; i < h.fr->nactions; i++)
        if (h.fr->actions[i].kind == FR_VERIFY)
            tokens[nt++] = h.fr->actions[i].token;
    for (size_t k = 0; k < nt; k++)
        hk_seeder_on_piece_verified(h.s, tokens[k], HK_VERIFY_BAD);
    cr_assert_eq(h_stats(&h).pieces_bad, 2);
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &ts));
    cr_assert_eq(ts.pieces_bad, 2);
    cr_assert_eq(ts.pieces_good, 0);
    cr_assert_geq(fr_find_log(h.fr, "damaged: pieces 1, 6 fail their hash", 0), 0);
    for (int c = 1; c <= 2; c++) {
        peer(c, c == 1); /* one fast (no HAVE_ALL now), one not */
        uint8_t bits[1] = {0};
        cr_assert(bitfield_of(c, bits, sizeof bits), "peer %d got a bitfield", c);
        cr_assert_eq(bits[0], 0xFF & ~(0x80 >> 1) & ~(0x80 >> 6), "bitfield %02x", bits[0]);
        cr_assert_eq(h_count(&h, c, WIRE_HAVE_ALL), 0);
    }
    /* a fast peer that had HAVE_ALL before: its request of a bad piece is rejected */
    h_block(&h, 0, WIRE_REQUEST, 6, 16384, 16384);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 0);
}

Test(seeder_verify, retry_checks_again_after_a_backoff_and_error_fails_the_torrent)
{
    setup_verify();
    peer(0, true);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    hk_seeder_on_piece_verified(h.s, last_verify(1)->token, HK_VERIFY_RETRY);
    cr_assert_eq(h_stats(&h).verify_retries, 1);
    cr_assert_not(fr_closed(h.fr, 0));
    last_verify(1);
    h_advance(&h, HK_MILLIS(60));
    hk_seeder_on_piece_verified(h.s, last_verify(2)->token, HK_VERIFY_GOOD);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1);
    h_block(&h, 0, WIRE_REQUEST, 7, 0, 1000);
    hk_seeder_on_piece_verified(h.s, last_verify(3)->token, HK_VERIFY_ERROR);
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &ts));
    cr_assert(ts.failed, "a piece that cannot be read fails the torrent");
}

Test(seeder_verify, the_state_memory_is_freed_once_every_piece_is_good)
{
    setup_verify();
    uint64_t idle = only_torrent().memory_bytes; /* every piece unknown: the record and its name, no side block */
    peer(0, true);
    uint64_t attached = only_torrent().memory_bytes; /* a peer's count and the upload counter: the side block */
    cr_assert_eq(attached, idle + sizeof(hk_torrent_ext));
    /* warm up the peer's own buffers (queue, send scratch) with a first piece */
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 1000);
    cr_assert_eq(only_torrent().memory_bytes, attached, "a verify in flight: in the same side block");
    hk_seeder_on_piece_verified(h.s, last_verify(1)->token, HK_VERIFY_GOOD);
    cr_assert_gt(only_torrent().memory_bytes, attached, "a piece known: the side block and the state block");
    uint64_t steady = h_stats(&h).memory_bytes;
    for (uint32_t i = 1; i < NPIECES; i++) {
        h_block(&h, 0, WIRE_REQUEST, i, 0, 1000);
        hk_seeder_on_piece_verified(h.s, last_verify(i + 1)->token, HK_VERIFY_GOOD);
        if (i + 1 < NPIECES)
            cr_assert_leq(h_stats(&h).memory_bytes, steady, "%llu > %llu: the state grows",
                          (unsigned long long)h_stats(&h).memory_bytes, (unsigned long long)steady);
    }
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), NPIECES);
    cr_assert_lt(h_stats(&h).memory_bytes, steady, "the state block is freed for a fully verified torrent");
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &ts));
    cr_assert_eq(ts.pieces_good, NPIECES);
    cr_assert_eq(ts.pieces_bad, 0);
    cr_assert_eq(ts.memory_bytes, attached, "nothing in flight, every piece good: only the side block of the peer and "
                 "the upload counter is left");
    h_block(&h, 0, WIRE_REQUEST, 0, 1000, 1000);
    last_verify(NPIECES); /* all good: never checked again */
}

Test(seeder_verify, without_disk_verify_nothing_is_checked)
{
    h_init(&h, NULL);
    cr_assert_eq(h_add_single(&h, PIECE, (uint64_t)PIECE * NPIECES), HK_ADD_OK);
    peer(0, true);
    h_block(&h, 0, WIRE_REQUEST, 2, 0, 16384);
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 0);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1);
    cr_assert_eq(h_count(&h, 0, WIRE_HAVE_ALL), 1);
}

/* ---- core/piece_state.c directly ---- */

Test(seeder_verify, piece_state_machine)
{
    hk_mem mem;
    memset(&mem, 0, sizeof mem);
    hk_pieces *ps = NULL;
    bool all = false;
    cr_assert_eq(hk_pieces_get(ps, all, 9), HK_PIECE_UNKNOWN);
    cr_assert_eq(hk_pieces_set(&mem, &ps, &all, 10, 9, false), 0);
    cr_assert_eq(hk_pieces_set(&mem, &ps, &all, 10, 2, false), 0);
    cr_assert_eq(hk_pieces_set(&mem, &ps, &all, 10, 5, true), 0);
    cr_assert_eq(hk_pieces_get(ps, all, 9), HK_PIECE_BAD);
    cr_assert_eq(hk_pieces_get(ps, all, 5), HK_PIECE_GOOD);
    cr_assert_eq(hk_pieces_get(ps, all, 4), HK_PIECE_UNKNOWN);
    cr_assert_eq(hk_pieces_nbad(ps), 2);
    cr_assert_eq(ps->bad[0], 2, "sorted");
    uint8_t bf[2];
    hk_pieces_bitfield(ps, 10, bf);
    cr_assert_eq(bf[0], 0xDF);
    cr_assert_eq(bf[1], 0x80, "piece 9 out, spare bits zero");
    cr_assert_eq(mem.bytes, hk_pieces_bytes(ps));
    for (uint32_t i = 0; i < 10; i++)
        cr_assert_eq(hk_pieces_set(&mem, &ps, &all, 10, i, true), 0);
    cr_assert(all);
    cr_assert_null(ps);
    cr_assert_eq(mem.bytes, 0, "freed once all good");
    cr_assert_eq(hk_pieces_set(&mem, &ps, &all, 10, 3, false), 0); /* a good torrent turning bad */
    cr_assert_not(all);
    cr_assert_eq(hk_pieces_get(ps, all, 4), HK_PIECE_GOOD);
    cr_assert_eq(hk_pieces_get(ps, all, 3), HK_PIECE_BAD);
    hk_pieces_free(&mem, &ps);
    cr_assert_eq(mem.bytes, 0);
}

/* A hybrid (v1 + v2) torrent made by libtorrent's creator: each piece's verify names, besides its SHA-1, its v2 root
 * in the .torrent (core/metainfo_v2.h): an entry of the long file's piece layer, or a short file's pieces root, with
 * the bytes of the file under the tree and the tree's width (the padding after each file is not hashed by v2). */
Test(seeder_verify, a_hybrid_piece_names_its_v2_root)
{
    char *dir = fx_mkdtemp("seeder-v2");
    cr_assert_not_null(dir);
    cr_assert_eq(fx_make_lt_hybrid(dir, 32768), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/h.torrent", dir);
    memset(&h, 0, sizeof h);
    h.fr = fr_new(12345);
    h.rt = fr_runtime(h.fr);
    fr_enable_verify(&h.rt);
    hk_config_defaults(&h.cfg);
    h.s = hk_seeder_new(&h.cfg, &h.rt);
    h.torrent = fx_read(path, &h.torrent_len);
    fx_rmtree(dir);
    free(dir);
    cr_assert_not_null(h.torrent);
    cr_assert_eq(hk_seeder_add_torrent(h.s, h.torrent, h.torrent_len, H_STORAGE, h.ih, NULL, 0), HK_ADD_OK);
    fr_set_metainfo(h.fr, H_STORAGE, h.torrent, h.torrent_len);
    mi_torrent *mi;
    cr_assert_eq(mi_parse(h.torrent, h.torrent_len, &mi, NULL), 0);
    cr_assert_not_null(mi->v2_hashes);
    cr_assert_eq(mi->piece_count, 6u, "big: 4 pieces (the last of 1696 bytes), small: 1, tiny: 1");
    /* piece -> (file, entry in its hashes, bytes under the tree, leaves) */
    static const struct { uint32_t piece, file, entry; uint64_t len; uint32_t leaves; } want[] = {
        {1, 0, 1, 32768, 2}, {3, 0, 3, 1696, 2}, {4, 2, 0, 20000, 2}, {5, 4, 0, 5000, 1},
    };
    peer(0, true);
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        h_block(&h, 0, WIRE_REQUEST, want[k].piece, 0, 1000);
        const fr_action *v = last_verify(k + 1);
        cr_assert_eq(v->piece, want[k].piece);
        cr_assert_eq(v->ext.offset, mi->pieces_offset + 20u * want[k].piece, "the SHA-1 as before");
        cr_assert_eq(v->v2_hash.file, HK_FILE_METAINFO);
        cr_assert_eq(v->v2_hash.length, 32);
        cr_assert_eq(v->v2_hash.offset, mi->v2_hashes[want[k].file] + 32u * want[k].entry, "piece %u", v->piece);
        cr_assert_eq(v->v2_length, want[k].len, "piece %u: %llu bytes", v->piece, (unsigned long long)v->v2_length);
        cr_assert_eq(v->v2_leaves, want[k].leaves, "piece %u", v->piece);
    }
    mi_free(mi);
}
