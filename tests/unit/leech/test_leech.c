/* Tests for leech/: one leecher's protocol logic against a scripted seeder — the handshake and interest, the
 * pipeline and its refill, completion, block verification (a corrupted block ends the connection), requests
 * dropped by a choke asked again, rejects, and the non-reader's single burst. */
#include <criterion/criterion.h>
#include <openssl/sha.h>
#include <string.h>

#include "leech.h"
#include "leech_sink.h"
#include "wire.h"

#define PLEN (2 * LK_BLOCK)
#define SIZE (2 * PLEN + 1000) /* 3 pieces, 5 blocks, the last short */

static uint8_t data[SIZE];
static uint8_t digests[8][20];
static lk_torrent T;

static void setup_torrent(bool verify)
{
    for (size_t i = 0; i < SIZE; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    memset(&T, 0, sizeof T);
    cr_assert_eq(lk_torrent_layout(&T, SIZE, PLEN), 0);
    cr_assert_eq(T.lay.piece_count, 3);
    cr_assert_eq(T.lay.nblocks, 5);
    cr_assert_eq(lk_block_len(&T, 4), 1000);
    for (uint32_t b = 0; b < T.lay.nblocks; b++)
        SHA1(data + (size_t)b * LK_BLOCK, lk_block_len(&T, b), digests[b]);
    memset(T.info_hash, 0xab, 20);
    T.block_sha1 = verify ? (const uint8_t(*)[20])digests : NULL;
}

/* The requests in s->out[from..] (from 0: everything after the handshake): their block numbers into blocks;
 * returns how many. */
static int requests(const sink *s, size_t from, uint32_t *blocks)
{
    if (from < WIRE_HANDSHAKE_LEN)
        from = WIRE_HANDSHAKE_LEN;
    wire_limits lim = {.skip_handshake = true};
    wire_decoder d;
    wire_decoder_init(&d, &lim);
    int k = 0;
    size_t off = from;
    while (off < s->n) {
        size_t used = 0;
        wire_msg m;
        wire_status st = wire_feed(&d, s->out + off, s->n - off, &used, &m);
        off += used;
        cr_assert_neq(st, WIRE_ERROR);
        if (st == WIRE_NEED_MORE)
            break;
        if (m.type == WIRE_REQUEST) {
            cr_assert_eq(m.u.block.begin % LK_BLOCK, 0);
            blocks[k++] = m.u.block.index * T.lay.bpp + m.u.block.begin / LK_BLOCK;
            cr_assert_eq(m.u.block.length, lk_block_len(&T, blocks[k - 1]));
        }
    }
    wire_decoder_free(&d);
    return k;
}

static void feed_simple(lk_peer *l, wire_msg_type t)
{
    uint8_t b[WIRE_SIMPLE_LEN];
    lk_feed(l, b, wire_encode_simple(b, t));
}

static void feed_piece(lk_peer *l, uint32_t blk, bool corrupt)
{
    uint8_t msg[WIRE_PIECE_HEADER_LEN + LK_BLOCK];
    uint32_t len = lk_block_len(&T, blk);
    size_t h = wire_encode_piece_header(msg, blk / T.lay.bpp, (blk % T.lay.bpp) * LK_BLOCK, len);
    memcpy(msg + h, data + (size_t)blk * LK_BLOCK, len);
    if (corrupt)
        msg[h + 5] ^= 1;
    lk_feed(l, msg, h + len);
}

/* A peer connected and handshaken with the scripted seeder (fast extension on both sides when fast). */
static void start(lk_peer *l, lk_params *par, sink *s, bool fast)
{
    lk_io io = sink_io(s);
    lk_init(l, par, &T, io, 7, 12345);
    lk_connection_start(l);
    lk_connected(l);
    if (par->behaviour == LK_MUTE) {
        cr_assert_eq(s->n, 0);
        return;
    }
    cr_assert_eq(s->n, WIRE_HANDSHAKE_LEN);
    cr_assert_eq(memcmp(s->out + 28, T.info_hash, 20), 0);
    uint8_t reserved[WIRE_RESERVED_LEN] = {0}, id[20] = {0}, hs[WIRE_HANDSHAKE_LEN];
    if (fast)
        wire_reserved_set_fast(reserved);
    lk_feed(l, hs, wire_encode_handshake(hs, reserved, T.info_hash, id));
}

Test(leech, downloads_everything_in_its_pipeline_and_completes)
{
    setup_torrent(true);
    lk_params par = {.behaviour = LK_NORMAL, .strategy = LK_RANDOM, .pipeline = 2, .fast = true};
    sink s = {0};
    lk_peer l;
    start(&l, &par, &s, true);
    cr_assert_eq(s.n, WIRE_HANDSHAKE_LEN + WIRE_SIMPLE_LEN, "interested after the handshake");
    cr_assert_eq(s.out[WIRE_HANDSHAKE_LEN + 4], WIRE_INTERESTED);
    size_t mark = s.n;
    feed_simple(&l, WIRE_UNCHOKE);
    cr_assert_eq(s.unchokes, 1);
    uint32_t got[16];
    cr_assert_eq(requests(&s, mark, got), 2, "exactly the pipeline");
    bool seen[5] = {0};
    uint32_t served = 0;
    while (served < 5) {
        mark = s.n;
        uint32_t n = (uint32_t)requests(&s, 0, got);
        cr_assert_leq(n, 5);
        uint32_t b = got[served];
        cr_assert(!seen[b], "block %u asked twice", b);
        seen[b] = true;
        feed_piece(&l, b, false);
        served++;
    }
    cr_assert_eq(l.book.received, 5);
    cr_assert_eq(l.bytes, SIZE);
    cr_assert(l.completed);
    cr_assert_eq(s.ends, 1);
    cr_assert_eq(s.why, LK_END_COMPLETE);
    cr_assert(s.fin);
    cr_assert_eq(l.bad_blocks, 0);
    lk_free(&l);
}

Test(leech, a_corrupted_block_ends_the_connection)
{
    setup_torrent(true);
    lk_params par = {.behaviour = LK_NORMAL, .strategy = LK_SEQUENTIAL, .pipeline = 4};
    sink s = {0};
    lk_peer l;
    start(&l, &par, &s, false);
    feed_simple(&l, WIRE_UNCHOKE);
    uint32_t got[16];
    cr_assert_eq(requests(&s, 0, got), 4);
    cr_assert_eq(got[0], 0, "sequential order");
    feed_piece(&l, 0, false);
    feed_piece(&l, 1, true);
    cr_assert_eq(l.bad_blocks, 1);
    cr_assert_eq(l.book.received, 1, "the bad block is not kept");
    cr_assert_eq(s.ends, 1);
    cr_assert_eq(s.why, LK_END_CLOSED_BY_SEEDER);
    size_t n = s.n;
    feed_piece(&l, 2, false); /* after the end: ignored */
    cr_assert_eq(l.book.received, 1);
    cr_assert_eq(s.n, n);
    lk_free(&l);
}

Test(leech, without_verification_a_corrupted_block_passes)
{
    setup_torrent(false);
    lk_params par = {.behaviour = LK_NORMAL, .strategy = LK_SEQUENTIAL, .pipeline = 4};
    sink s = {0};
    lk_peer l;
    start(&l, &par, &s, false);
    feed_simple(&l, WIRE_UNCHOKE);
    feed_piece(&l, 0, true);
    cr_assert_eq(l.bad_blocks, 0);
    cr_assert_eq(l.book.received, 1);
    cr_assert_eq(s.ends, 0);
    lk_free(&l);
}

Test(leech, a_choke_without_the_fast_extension_drops_requests_asked_again_later)
{
    setup_torrent(true);
    lk_params par = {.behaviour = LK_NORMAL, .strategy = LK_SEQUENTIAL, .pipeline = 2};
    sink s = {0};
    lk_peer l;
    start(&l, &par, &s, false);
    feed_simple(&l, WIRE_UNCHOKE);
    uint32_t got[16];
    cr_assert_eq(requests(&s, 0, got), 2);
    feed_simple(&l, WIRE_CHOKE);
    cr_assert_eq(s.chokes, 1);
    cr_assert_eq(l.book.nout, 0);
    size_t mark = s.n;
    feed_simple(&l, WIRE_UNCHOKE);
    cr_assert_eq(requests(&s, mark, got), 2);
    cr_assert((got[0] == 0 && got[1] == 1) || (got[0] == 1 && got[1] == 0), "the dropped blocks again");
    lk_free(&l);
}

Test(leech, a_rejected_request_is_asked_again)
{
    setup_torrent(true);
    lk_params par = {.behaviour = LK_NORMAL, .strategy = LK_SEQUENTIAL, .pipeline = 1, .fast = true};
    sink s = {0};
    lk_peer l;
    start(&l, &par, &s, true);
    feed_simple(&l, WIRE_UNCHOKE);
    size_t mark = s.n;
    uint8_t b[WIRE_BLOCK_MSG_LEN];
    lk_feed(&l, b, wire_encode_block(b, WIRE_REJECT, 0, 0, LK_BLOCK));
    cr_assert_eq(l.rejects, 1);
    uint32_t got[4];
    cr_assert_eq(requests(&s, mark, got), 1);
    cr_assert_eq(got[0], 0);
    lk_free(&l);
}

Test(leech, a_non_reader_sends_one_burst_then_reads_nothing)
{
    setup_torrent(true);
    lk_params par = {.behaviour = LK_NON_READER, .strategy = LK_SEQUENTIAL, .pipeline = 3};
    sink s = {0};
    lk_peer l;
    start(&l, &par, &s, false);
    feed_simple(&l, WIRE_UNCHOKE);
    uint32_t got[8];
    cr_assert_eq(requests(&s, 0, got), 3);
    cr_assert(lk_stopped_reading(&l));
    feed_piece(&l, 0, false);
    cr_assert_eq(l.book.received, 0, "nothing decoded any more");
    lk_free(&l);
}

Test(leech, idle_and_mute_peers_ask_for_nothing)
{
    setup_torrent(true);
    lk_params idle = {.behaviour = LK_IDLE, .pipeline = 4}, mute = {.behaviour = LK_MUTE, .pipeline = 4};
    sink s = {0}, m = {0};
    lk_peer l, k;
    start(&l, &idle, &s, false);
    feed_simple(&l, WIRE_UNCHOKE);
    cr_assert_eq(s.n, WIRE_HANDSHAKE_LEN, "an idle peer says nothing after its handshake");
    cr_assert(!lk_sends_keepalives(&l));
    start(&k, &mute, &m, false);
    cr_assert_eq(m.n, 0);
    uint8_t reserved[WIRE_RESERVED_LEN] = {0}, id[20] = {0}, hs[WIRE_HANDSHAKE_LEN];
    lk_feed(&k, hs, wire_encode_handshake(hs, reserved, T.info_hash, id));
    feed_simple(&k, WIRE_UNCHOKE);
    cr_assert_eq(m.n, 0, "a mute peer answers nothing, not even a handshake and an unchoke (found by fuzz_leech)");
    lk_free(&l);
    lk_free(&k);
}

Test(leech, a_flooder_asks_flood_rate_blocks_per_tick_choked_or_not)
{
    setup_torrent(true);
    lk_params par = {.behaviour = LK_FLOODER, .pipeline = 4, .flood_rate = 10};
    sink s = {0};
    lk_peer l;
    start(&l, &par, &s, false);
    uint32_t got[64];
    cr_assert_eq(requests(&s, 0, got), 10, "its first tick at the handshake");
    cr_assert(lk_flooding(&l));
    lk_flood(&l);
    cr_assert_eq(requests(&s, 0, got), 20);
    cr_assert_eq(l.flood_sent, 20);
    lk_free(&l);
}

/* hekate-swarm keeps the verified data of small torrents and compares each block with its bytes (block_data): the
 * block's place in it must follow the piece layout (blocks of later pieces, the short last block). */
Test(leech, verification_against_the_data_itself_places_every_block)
{
    setup_torrent(false);
    T.block_data = data;
    lk_params par = {.behaviour = LK_NORMAL, .strategy = LK_SEQUENTIAL, .pipeline = 5};
    sink s = {0};
    lk_peer l;
    start(&l, &par, &s, false);
    feed_simple(&l, WIRE_UNCHOKE);
    for (uint32_t b = 0; b < 5; b++)
        feed_piece(&l, b, false);
    cr_assert_eq(l.bad_blocks, 0);
    cr_assert(l.completed);
    cr_assert_eq(s.why, LK_END_COMPLETE);
    lk_free(&l);

    sink s2 = {0};
    lk_peer l2;
    start(&l2, &par, &s2, false);
    feed_simple(&l2, WIRE_UNCHOKE);
    for (uint32_t b = 0; b < 4; b++)
        feed_piece(&l2, b, false);
    feed_piece(&l2, 4, true); /* the short last block, corrupted */
    cr_assert_eq(l2.bad_blocks, 1);
    cr_assert_eq(l2.book.received, 4);
    cr_assert_eq(s2.why, LK_END_CLOSED_BY_SEEDER);
    lk_free(&l2);
    T.block_data = NULL;
}
