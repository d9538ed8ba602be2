/* Tests for leech/'s host hooks and pieces not offered (leech.h: lk_hooks, lk_params.lack_refused), what hekate-sim's
 * peers run on: the clock's waits reach `answered`, new blocks reach `taken`, event lines reach `note`, the flooder
 * draws from the host's stream, the peer id carries the host's prefix; with lack_refused a piece left out of the
 * seeder's bitfield, or rejected LK_LACK_REJECTS times in a row while unchoked, is done without, and without it the
 * peer keeps asking. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "leech.h"
#include "leech_sink.h"
#include "wire.h"

#define PLEN (2 * LK_BLOCK)
#define SIZE (3 * PLEN) /* 3 pieces, 6 blocks */

static lk_torrent T;

typedef struct host {
    sink s;                      /* first: sink_io's ctx is the host */
    uint64_t clock;
    uint64_t waited_sum;
    int answered, taken, draws;
    char notes[8][64];
    int nnotes;
} host;

static uint64_t h_now(void *ctx) { return ((host *)ctx)->clock; }
static void h_answered(void *ctx, uint32_t b, uint64_t waited)
{
    (void)b;
    host *h = ctx;
    h->answered++;
    h->waited_sum += waited;
}
static void h_taken(void *ctx, uint32_t b, uint32_t len)
{
    (void)b;
    cr_assert_eq(len, LK_BLOCK);
    ((host *)ctx)->taken++;
}
static void h_note(void *ctx, const char *event)
{
    host *h = ctx;
    if (h->nnotes < 8)
        snprintf(h->notes[h->nnotes++], sizeof h->notes[0], "%s", event);
}
static uint64_t h_below(void *ctx, uint64_t n)
{
    ((host *)ctx)->draws++;
    return n - 1; /* always the last block */
}
static const lk_hooks hooks = {.now = h_now, .answered = h_answered, .taken = h_taken, .note = h_note,
                               .random_below = h_below};

static bool noted(const host *h, const char *event)
{
    for (int i = 0; i < h->nnotes; i++)
        if (strcmp(h->notes[i], event) == 0)
            return true;
    return false;
}

/* The blocks of every request in the host's output from byte `from` on (0: after the handshake). */
static int requests(const host *h, size_t from, uint32_t *blocks)
{
    wire_limits lim = {.skip_handshake = true};
    wire_decoder d;
    wire_decoder_init(&d, &lim);
    int k = 0;
    for (size_t off = from < WIRE_HANDSHAKE_LEN ? WIRE_HANDSHAKE_LEN : from; off < h->s.n;) {
        size_t used = 0;
        wire_msg m;
        wire_status st = wire_feed(&d, h->s.out + off, h->s.n - off, &used, &m);
        off += used;
        cr_assert_neq(st, WIRE_ERROR);
        if (st == WIRE_NEED_MORE)
            break;
        if (m.type == WIRE_REQUEST)
            blocks[k++] = m.u.block.index * T.lay.bpp + m.u.block.begin / LK_BLOCK;
    }
    wire_decoder_free(&d);
    return k;
}

static void start(lk_peer *l, const lk_params *par, host *h, bool fast)
{
    memset(&T, 0, sizeof T);
    cr_assert_eq(lk_torrent_layout(&T, SIZE, PLEN), 0);
    memset(T.info_hash, 0xcd, 20);
    lk_io io = sink_io(&h->s);
    io.hooks = &hooks;
    lk_init(l, par, &T, io, 42, 99);
    lk_connection_start(l);
    lk_connected(l);
    uint8_t reserved[WIRE_RESERVED_LEN] = {0}, id[20] = {0}, hs[WIRE_HANDSHAKE_LEN];
    if (fast)
        wire_reserved_set_fast(reserved);
    lk_feed(l, hs, wire_encode_handshake(hs, reserved, T.info_hash, id));
}

static void feed_simple(lk_peer *l, wire_msg_type t)
{
    uint8_t b[WIRE_SIMPLE_LEN];
    lk_feed(l, b, wire_encode_simple(b, t));
}

static void feed_block(lk_peer *l, wire_msg_type t, uint32_t blk)
{
    static uint8_t msg[WIRE_PIECE_HEADER_LEN + LK_BLOCK];
    uint32_t index = blk / T.lay.bpp, begin = (blk % T.lay.bpp) * LK_BLOCK;
    if (t == WIRE_REJECT) {
        lk_feed(l, msg, wire_encode_block(msg, WIRE_REJECT, index, begin, LK_BLOCK));
        return;
    }
    size_t n = wire_encode_piece_header(msg, index, begin, LK_BLOCK);
    lk_feed(l, msg, n + LK_BLOCK);
}

static void feed_bitfield_without(lk_peer *l, uint32_t piece)
{
    uint8_t msg[8] = {0, 0, 0, 2, WIRE_BITFIELD, 0};
    msg[5] = (uint8_t)(0xE0u & ~(0x80u >> piece)); /* 3 pieces, one left out */
    lk_feed(l, msg, 6);
}

Test(leech_hooks, the_clock_the_log_and_new_blocks_reach_the_host)
{
    lk_params par = {.behaviour = LK_NORMAL, .strategy = LK_SEQUENTIAL, .pipeline = 2, .peer_id_prefix = "-SM0100-"};
    host h = {.clock = 1000};
    lk_peer l;
    start(&l, &par, &h, false);
    cr_assert_eq(memcmp(h.s.out + 48, "-SM0100-000000000042", 20), 0, "the host's peer-id prefix");
    feed_simple(&l, WIRE_UNCHOKE);
    h.clock = 1750;
    feed_block(&l, WIRE_PIECE, 0);
    cr_assert_eq(h.answered, 1);
    cr_assert_eq(h.waited_sum, 750, "the wait by the host's clock");
    cr_assert_eq(h.taken, 1);
    feed_block(&l, WIRE_PIECE, 0); /* again: a duplicate, unrequested */
    cr_assert_eq(h.taken, 1, "a duplicate is not new");
    cr_assert_eq(l.dup_blocks, 1);
    cr_assert(noted(&h, "unrequested 0/0"), "first note: %s", h.nnotes ? h.notes[0] : "none");
    lk_free(&l);
}

Test(leech_hooks, a_flooder_draws_from_the_hosts_stream)
{
    lk_params par = {.behaviour = LK_FLOODER, .pipeline = 4, .flood_rate = 3};
    host h = {0};
    lk_peer l;
    start(&l, &par, &h, false);
    cr_assert_eq(h.draws, 3, "the flood on the handshake");
    uint32_t got[8];
    cr_assert_eq(requests(&h, 0, got), 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(got[i], T.lay.nblocks - 1);
    lk_free(&l);
}

Test(leech_hooks, a_piece_left_out_of_the_bitfield_is_done_without)
{
    lk_params par = {.behaviour = LK_NORMAL, .strategy = LK_SEQUENTIAL, .pipeline = 8, .lack_refused = true};
    host h = {0};
    lk_peer l;
    start(&l, &par, &h, false);
    feed_bitfield_without(&l, 1);
    cr_assert(noted(&h, "lacks piece 1"));
    size_t mark = h.s.n;
    feed_simple(&l, WIRE_UNCHOKE);
    uint32_t got[8];
    int n = requests(&h, mark, got);
    cr_assert_eq(n, 4, "pieces 0 and 2 only");
    for (int i = 0; i < n; i++)
        cr_assert_neq(got[i] / T.lay.bpp, 1u);
    for (int i = 0; i < n; i++)
        feed_block(&l, WIRE_PIECE, got[i]);
    cr_assert(l.completed, "complete without the piece not offered");
    cr_assert_eq(h.s.why, LK_END_COMPLETE);
    cr_assert(noted(&h, "complete"));
    lk_free(&l);
}

/* Rejects of block 0 while unchoked (fast extension): with lack_refused the 4th makes piece 0 lacking. */
static int rejects_until_given_up(bool lack_refused)
{
    lk_params par = {.behaviour = LK_NORMAL, .strategy = LK_SEQUENTIAL, .pipeline = 1, .fast = true,
                     .lack_refused = lack_refused};
    host h = {0};
    lk_peer l;
    start(&l, &par, &h, true);
    feed_simple(&l, WIRE_UNCHOKE);
    int asked_again = 0;
    for (int i = 0; i < LK_LACK_REJECTS; i++) {
        size_t mark = h.s.n;
        feed_block(&l, WIRE_REJECT, 0);
        uint32_t got[4];
        int n = requests(&h, mark, got);
        cr_assert_eq(n, 1);
        asked_again += got[0] == 0;
    }
    cr_assert_eq(l.rejects, LK_LACK_REJECTS);
    cr_assert_eq(noted(&h, "lacks piece 0"), lack_refused);
    lk_free(&l);
    return asked_again;
}

Test(leech_hooks, a_piece_rejected_again_and_again_is_done_without_only_when_asked_to)
{
    cr_assert_eq(rejects_until_given_up(true), LK_LACK_REJECTS - 1, "asked again 3 times, then the next piece");
    cr_assert_eq(rejects_until_given_up(false), LK_LACK_REJECTS, "asked again every time");
}
