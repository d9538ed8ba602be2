/* Unit tests for the upload rate caps (docs/design.md §14, core/seeder_rate.c) through the seeder harness: the global
 * cap holds over an interval, a torrent's cap holds while another torrent is not capped, the wake-up is asked for
 * the instant the tokens exist, peers take turns under the cap (the pass goes on where it stopped: no peer is
 * favoured, none starves), control messages are not capped, the per-torrent API and the configuration checks. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "seeder_harness.h"
#include "seeder_internal.h" /* hks_tbucket, hk_torrent_ext */
#include "wire.h"

static harness h;

static void teardown(void)
{
    h_free(&h);
}

TestSuite(rate, .fini = teardown);

#define BLOCK 16384u
#define MSG (BLOCK + 13u) /* what a block's piece message costs in tokens */
#define PIECE 32768u
#define PIECES 512u       /* 16 MiB: 1024 blocks */

static void capped(uint64_t global, uint64_t per_torrent)
{
    hk_config cfg;
    hk_config_defaults(&cfg);
    cfg.upload_rate = global;
    cfg.torrent_upload_rate = per_torrent;
    h_init(&h, &cfg);
    cr_assert_eq(h_add_single(&h, PIECE, (uint64_t)PIECE * PIECES), HK_ADD_OK);
}

/* Peer c (fast) on the torrent `ih` (NULL: the last added), unchoked, asking for `n` blocks from block `first`. */
static void leecher(int c, const uint8_t *ih, uint32_t first, uint32_t n)
{
    h_accept(&h, c, 1u << 20);
    h_handshake(&h, c, ih, true, false);
    h_simple(&h, c, WIRE_INTERESTED);
    for (uint32_t k = first; k < first + n; k++)
        h_block(&h, c, WIRE_REQUEST, k / 2, (k % 2) * BLOCK, BLOCK);
}

/* Advances the clock in 10 ms steps for dt, granting every listed peer its full room again each step, and peer 0
 * `extra` more times (events that run the service pass while the tokens are short). */
static void run_extra(hk_time dt, int npeers, int extra)
{
    hk_time until = h.fr->now + dt;
    while (h.fr->now < until) {
        h_advance(&h, HK_MILLIS(10));
        for (int c = 0; c < npeers; c++)
            if (!fr_closed(h.fr, c))
                h_room(&h, c, 1u << 20);
        for (int k = 0; k < extra; k++)
            h_room(&h, 0, 1u << 20);
    }
}

static void run(hk_time dt, int npeers)
{
    run_extra(dt, npeers, 0);
}

/* Piece messages sent to c, in order: how many. */
static size_t pieces_to(int c)
{
    return h_count(&h, c, WIRE_PIECE);
}

Test(rate, global_cap_holds_over_an_interval)
{
    capped(1000000, 0); /* 1 MB/s; auto burst 100 kB */
    for (int c = 0; c < 4; c++)
        leecher(c, NULL, (uint32_t)c * 256, 256);
    run(HK_SECONDS(1), 4);
    uint64_t at1 = h_stats(&h).bytes_sent;
    run(HK_SECONDS(3), 4);
    uint64_t at4 = h_stats(&h).bytes_sent;
    /* 3 s at 1 MB/s of piece messages: payload 3e6 * 16384 / 16397, within one message either way */
    double want = 3e6 * BLOCK / MSG, got = (double)(at4 - at1);
    cr_assert(got > want - MSG && got < want + MSG, "sent %.0f payload bytes in 3 s, want %.0f", got, want);
    /* without a cap the same room lets 4 x 1 MiB per 10 ms step go: the cap is what holds it */
    hk_stats st = h_stats(&h);
    cr_assert_gt(st.rate_stops, 0);
    cr_assert_gt(st.rate_delayed_bytes, 0);
}

/* A reload (hk_seeder_set_config) changes the global cap at once: lowered, raised from none, lifted. */
Test(rate, global_cap_changes_live)
{
    capped(0, 0);
    for (int c = 0; c < 2; c++)
        leecher(c, NULL, (uint32_t)c * 512, 512);
    hk_config n = *hk_seeder_config(h.s);
    n.upload_rate = 500000;
    cr_assert_null(hk_seeder_set_config(h.s, &n));
    cr_assert_eq(hk_seeder_config(h.s)->upload_rate, 500000);
    run(HK_SECONDS(1), 2);
    uint64_t at1 = h_stats(&h).bytes_sent;
    run(HK_SECONDS(2), 2);
    double want = 2 * 500000.0 * BLOCK / MSG, got = (double)(h_stats(&h).bytes_sent - at1);
    cr_assert(got > want - MSG && got < want + MSG, "capped live: %.0f payload bytes in 2 s, want %.0f", got, want);
    n.upload_rate = 0;
    cr_assert_null(hk_seeder_set_config(h.s, &n));
    uint64_t before = h_stats(&h).bytes_sent;
    run(HK_MILLIS(100), 2);
    cr_assert_gt(h_stats(&h).bytes_sent - before, 10u * MSG, "the cap lifted: far more than 500 kB/s goes out");
}

Test(rate, torrent_cap_holds_while_another_torrent_is_not_capped)
{
    capped(0, 0);
    uint8_t capped_ih[20];
    memcpy(capped_ih, h.ih, 20);
    cr_assert(hk_seeder_set_torrent_rate(h.s, capped_ih, 500000));
    cr_assert_eq(h_add_single(&h, PIECE, (uint64_t)PIECE * (PIECES - 1)), HK_ADD_OK); /* another info-hash */
    leecher(0, capped_ih, 0, 256);
    leecher(1, capped_ih, 256, 256);
    leecher(2, h.ih, 0, 256);
    run(HK_SECONDS(1), 3);
    hk_torrent_stats a1, b1, a3, b3;
    cr_assert(hk_seeder_torrent_stats(h.s, capped_ih, &a1));
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &b1));
    cr_assert_eq(a1.upload_rate, 500000);
    cr_assert_eq(b1.upload_rate, 0);
    run(HK_SECONDS(2), 3);
    cr_assert(hk_seeder_torrent_stats(h.s, capped_ih, &a3));
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &b3));
    double want = 1e6 * BLOCK / MSG, got = (double)(a3.uploaded - a1.uploaded);
    cr_assert(got > want - MSG && got < want + MSG, "capped torrent sent %.0f in 2 s, want %.0f", got, want);
    cr_assert_eq(b3.uploaded, 256ull * BLOCK, "the uncapped torrent's peer got all it asked for at once");
    /* both peers of the capped torrent share it */
    size_t p0 = pieces_to(0), p1 = pieces_to(1);
    /* peer 0 came first and had the full bucket (50 kB: 3 messages) to itself; then they alternate */
    cr_assert(p0 <= p1 + 4 && p1 <= p0 + 1, "peer 0 got %zu blocks, peer 1 %zu", p0, p1);
}

Test(rate, wake_up_is_asked_for_when_the_tokens_exist)
{
    capped(163970, 0); /* 10 messages a second; auto burst: the 16480-byte minimum */
    h.fr->echo_logs = getenv("ECHO") != NULL;
    leecher(0, NULL, 0, 4);
    cr_assert_eq(pieces_to(0), 1, "the full bucket holds one message");
    /* 83 tokens left; 16397 needed: ceil(16314e9 / 163970) ns after the bucket's last refill (now) */
    hk_time due = h.fr->now + 99493810ull;
    cr_assert_eq(h.fr->wake, due);
    h_advance(&h, due - 1 - h.fr->now);
    cr_assert_eq(pieces_to(0), 1, "not a nanosecond early");
    h_advance(&h, 1);
    cr_assert_eq(pieces_to(0), 2);
    /* the next one a message's worth of time later: 16397e9 / 163970 = 100,000,000 ns minus the carried 0.2 ns */
    cr_assert(h.fr->wake > due + HK_MILLIS(99) && h.fr->wake <= due + HK_MILLIS(100) + 1);
    hk_stats st = h_stats(&h);
    cr_assert_eq(st.rate_delayed_bytes, 2ull * MSG, "blocks 2 and 3 each counted once");
}

/* The sequence of connections the piece messages went to, in send order (at most cap). */
static size_t piece_order(int *out, size_t cap, int npeers)
{
    size_t n = 0;
    for (size_t i = 0; i < h.fr->nactions && n < cap; i++) {
        const fr_action *a = &h.fr->actions[i];
        if (a->kind == FR_SEND && a->conn >= 0 && a->conn < npeers && a->bytes >= BLOCK)
            out[n++] = a->conn;
    }
    return n;
}

Test(rate, peers_take_turns_under_the_cap)
{
    capped(163970, 0); /* one message per wake-up */
    for (int c = 0; c < 3; c++)
        leecher(c, NULL, (uint32_t)c * 100, 100);
    /* two more events per step: passes that find no tokens must not move the ring (a peer stopped before sending
     * keeps its place), else the order would follow the events, not the turns */
    run_extra(HK_SECONDS(3), 3, 2);
    int order[64];
    size_t n = piece_order(order, 64, 3);
    cr_assert_geq(n, 28);
    /* every window of three sends serves three different peers: the pass goes on where it stopped */
    for (size_t i = 1; i + 2 < n; i++) /* the first went to peer 0 alone, from the full bucket */
        cr_assert(order[i] != order[i + 1] && order[i] != order[i + 2] && order[i + 1] != order[i + 2],
                  "sends %zu..%zu went to %d %d %d", i, i + 2, order[i], order[i + 1], order[i + 2]);
}

Test(rate, peers_of_a_capped_torrent_take_turns_beside_an_uncapped_one)
{
    capped(0, 163970); /* the default cap of every torrent added */
    uint8_t a[20];
    memcpy(a, h.ih, 20);
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(h.s, a, &ts));
    cr_assert_eq(ts.upload_rate, 163970);
    cr_assert_eq(h_add_single(&h, PIECE, (uint64_t)PIECE * (PIECES - 1)), HK_ADD_OK);
    cr_assert(hk_seeder_set_torrent_rate(h.s, h.ih, 0), "the second torrent's default cap is removed");
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &ts));
    cr_assert_eq(ts.upload_rate, 0);
    leecher(0, a, 0, 100);
    leecher(1, a, 100, 100);
    leecher(2, h.ih, 0, 256);
    run(HK_SECONDS(3), 3);
    size_t p0 = pieces_to(0), p1 = pieces_to(1);
    cr_assert_geq(p0 + p1, 29, "about 10 a second for the capped torrent");
    cr_assert_leq(p0 + p1, 32);
    cr_assert(p0 + 1 >= p1 && p1 + 1 >= p0, "peer 0 got %zu, peer 1 %zu: neither starves", p0, p1);
    cr_assert_eq(pieces_to(2), 256, "the uncapped torrent is not held back");
}

Test(rate, control_messages_are_not_capped)
{
    capped(163970, 0);
    leecher(0, NULL, 0, 50); /* takes the bucket's tokens */
    size_t before = pieces_to(0);
    h_accept(&h, 1, 1u << 20);
    h_handshake(&h, 1, NULL, true, false);
    h_simple(&h, 1, WIRE_INTERESTED);
    cr_assert_eq(h_count(&h, 1, WIRE_HAVE_ALL), 1, "handshake and have-all go out at once");
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 1, "so does the unchoke");
    h_block(&h, 1, WIRE_REQUEST, 0, 0, BLOCK);
    h_block(&h, 1, WIRE_CANCEL, 0, 0, BLOCK);
    cr_assert_eq(h_count(&h, 1, WIRE_REJECT), 1, "the cancel's reject goes out with no tokens");
    cr_assert_eq(pieces_to(0), before);
}

Test(rate, api_and_config_checks)
{
    capped(0, 0);
    uint8_t unknown[20] = {1};
    cr_assert_not(hk_seeder_set_torrent_rate(h.s, unknown, 1000));
    cr_assert_not(hk_seeder_set_torrent_rate(h.s, h.ih, HK_TB_RATE_MAX + 1));
    cr_assert(hk_seeder_set_torrent_rate(h.s, h.ih, 1000));
    cr_assert(hk_seeder_set_torrent_rate(h.s, h.ih, 2000), "a new rate for the same bucket");
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &ts));
    cr_assert_eq(ts.upload_rate, 2000);
    uint64_t capped_bytes = ts.memory_bytes; /* the record, its name, its bucket and its side block (the slot) */
    cr_assert(hk_seeder_set_torrent_rate(h.s, h.ih, 0));
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &ts));
    cr_assert_eq(ts.upload_rate, 0);
    cr_assert_eq(ts.memory_bytes + sizeof(hks_tbucket) + sizeof(hk_torrent_ext), capped_bytes,
                 "no cap: neither the bucket nor the side block");
    cr_assert(hk_seeder_remove_torrent(h.s, h.ih));
    hk_config cfg;
    hk_config_defaults(&cfg);
    cr_assert_null(hk_config_check(&cfg));
    cfg.upload_rate = HK_TB_RATE_MAX + 1;
    cr_assert_not_null(strstr(hk_config_check(&cfg), "upload_rate"));
    hk_config_defaults(&cfg);
    cfg.torrent_upload_rate = HK_TB_RATE_MAX + 1;
    cr_assert_not_null(strstr(hk_config_check(&cfg), "torrent_upload_rate"));
    hk_config_defaults(&cfg);
    cfg.upload_burst = 16384; /* below a block's message */
    cr_assert_not_null(strstr(hk_config_check(&cfg), "upload_burst"));
    cfg.upload_burst = 16384 + 96;
    cr_assert_null(hk_config_check(&cfg));
}
