/* Unit tests for HK_DISK_RETRY (core/seeder_runtime.h's disk_load contract): a load that hits a passing shortage
 * keeps the torrent and its peers, the request waits with a backoff kept in the peer's own deadline (50 ms, doubling
 * to 2 s) and is loaded again, then sent; a fast peer's block is rejected after 8 rounds in a row, a peer without the
 * fast extension keeps retrying; a block over two files retries when one of its loads said RETRY. */
#include <criterion/criterion.h>
#include <string.h>

#include "seeder_harness.h"
#include "wire.h"

static harness h;

static void teardown(void) { h_free(&h); }

TestSuite(disk_retry, .fini = teardown);

/* A single-file torrent, nothing resident, peer 0 unchoked (fast or not) with room. */
static void cold_peer(bool fast)
{
    h_init(&h, NULL);
    cr_assert_eq(h_add_single(&h, 32768, 32768 * 16), HK_ADD_OK);
    fr_set_default_resident(h.fr, false);
    h_accept(&h, 0, 1 << 20);
    h_handshake(&h, 0, NULL, fast, false);
    h_simple(&h, 0, WIRE_INTERESTED);
}

static bool torrent_failed(void)
{
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &ts));
    return ts.failed;
}

/* The token of the newest load, asserting that exactly `n` loads were issued so far. */
static uint64_t loads_so_far(size_t n)
{
    cr_assert_eq(fr_count(h.fr, FR_LOAD), n, "loads issued: %zu, expected %zu", fr_count(h.fr, FR_LOAD), n);
    return fr_last(h.fr, FR_LOAD)->token;
}

Test(disk_retry, retry_keeps_torrent_and_peer_then_loads_again_after_the_backoff)
{
    cold_peer(true);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    uint64_t t = loads_so_far(1);
    hk_seeder_on_disk_loaded(h.s, t, HK_DISK_RETRY);
    cr_assert_not(fr_closed(h.fr, 0), "the peer stays");
    cr_assert_not(torrent_failed(), "a shortage never fails the torrent");
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 0);
    cr_assert_eq(h_stats(&h).disk_retries, 1);
    cr_assert_eq(h_stats(&h).queued_requests, 1, "the request waits");
    h_advance(&h, HK_MILLIS(49));
    loads_so_far(1); /* not before the backoff */
    h_advance(&h, HK_MILLIS(2));
    t = loads_so_far(2);
    const fr_action *ld = fr_last(h.fr, FR_LOAD);
    cr_assert_eq(ld->ext.offset, 0);
    cr_assert_eq(ld->ext.length, 16384);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 0);
    hk_seeder_on_disk_loaded(h.s, t, HK_DISK_OK);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1, "sent once the shortage passed");
    cr_assert_eq(h_stats(&h).queued_requests, 0);
    cr_assert_not(torrent_failed());
}

Test(disk_retry, the_wait_doubles_up_to_two_seconds)
{
    cold_peer(true);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    hk_time waits[7] = {50, 100, 200, 400, 800, 1600, 2000};
    for (size_t k = 0; k < 7; k++) {
        hk_seeder_on_disk_loaded(h.s, loads_so_far(k + 1), HK_DISK_RETRY);
        h_advance(&h, HK_MILLIS(waits[k] - 1));
        loads_so_far(k + 1);
        h_advance(&h, HK_MILLIS(2));
        loads_so_far(k + 2);
    }
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 0, "7 rounds: still tried");
    cr_assert_not(fr_closed(h.fr, 0));
}

Test(disk_retry, a_fast_peer_gets_a_reject_after_eight_rounds_and_stays)
{
    cold_peer(true);
    h_block(&h, 0, WIRE_REQUEST, 3, 0, 16384);
    for (size_t k = 0; k < 8; k++) {
        hk_seeder_on_disk_loaded(h.s, loads_so_far(k + 1), HK_DISK_RETRY);
        h_advance(&h, HK_SECONDS(2));
    }
    loads_so_far(8);
    fr_msgs m = h_msgs(&h, 0);
    size_t rejects = 0;
    for (size_t i = 0; i < m.n; i++)
        if (m.m[i].type == WIRE_REJECT) {
            rejects++;
            cr_assert_eq(m.m[i].u.block.index, 3);
            cr_assert_eq(m.m[i].u.block.length, 16384);
        }
    fr_msgs_free(&m);
    cr_assert_eq(rejects, 1);
    cr_assert_eq(h_stats(&h).disk_retry_rejects, 1);
    cr_assert_eq(h_stats(&h).queued_requests, 0);
    cr_assert_not(fr_closed(h.fr, 0), "the peer stays");
    cr_assert_not(torrent_failed());
    /* the shortage is over: the same block asked again is served */
    h_block(&h, 0, WIRE_REQUEST, 3, 0, 16384);
    hk_seeder_on_disk_loaded(h.s, loads_so_far(9), HK_DISK_OK);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1);
}

Test(disk_retry, a_peer_without_fast_keeps_retrying_then_is_served)
{
    cold_peer(false);
    h_block(&h, 0, WIRE_REQUEST, 1, 16384, 16384);
    for (size_t k = 0; k < 12; k++) {
        hk_seeder_on_disk_loaded(h.s, loads_so_far(k + 1), HK_DISK_RETRY);
        h_advance(&h, HK_SECONDS(2));
    }
    cr_assert_eq(h_stats(&h).disk_retry_rejects, 0);
    cr_assert_eq(h_stats(&h).queued_requests, 1);
    hk_seeder_on_disk_loaded(h.s, loads_so_far(13), HK_DISK_OK);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1);
    cr_assert_not(fr_closed(h.fr, 0));
    cr_assert_not(torrent_failed());
}

Test(disk_retry, one_retry_among_a_blocks_loads_retries_the_block)
{
    h_init(&h, NULL);
    tb_file files[2] = {{"a", 20000, false}, {"b", 20000, false}};
    cr_assert_eq(h_add_files(&h, 16384, files, 2), HK_ADD_OK);
    fr_set_default_resident(h.fr, false);
    h_accept(&h, 0, 1 << 20);
    h_handshake(&h, 0, NULL, true, false);
    h_simple(&h, 0, WIRE_INTERESTED);
    h_block(&h, 0, WIRE_REQUEST, 1, 0, 16384); /* a 16384..19999, b 0..12767 */
    uint64_t t = loads_so_far(2);
    hk_seeder_on_disk_loaded(h.s, t, HK_DISK_OK);
    hk_seeder_on_disk_loaded(h.s, t, HK_DISK_RETRY);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 0, "not sent with one extent short");
    cr_assert_not(torrent_failed());
    h_advance(&h, HK_MILLIS(60));
    t = loads_so_far(4); /* both extents again (the residency is asked first) */
    hk_seeder_on_disk_loaded(h.s, t, HK_DISK_OK);
    hk_seeder_on_disk_loaded(h.s, t, HK_DISK_OK);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1);
}

Test(disk_retry, a_resident_block_after_the_wait_needs_no_second_load)
{
    cold_peer(true);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    hk_seeder_on_disk_loaded(h.s, loads_so_far(1), HK_DISK_RETRY);
    fr_set_default_resident(h.fr, true); /* e.g. another load brought the pages in meanwhile */
    h_advance(&h, HK_MILLIS(60));
    loads_so_far(1);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1);
}

Test(disk_retry, retry_for_a_gone_peer_or_a_cancelled_request_is_harmless)
{
    cold_peer(true);
    h_accept(&h, 1, 1 << 20);
    h_handshake(&h, 1, NULL, true, false);
    h_simple(&h, 1, WIRE_INTERESTED);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    uint64_t t0 = loads_so_far(1);
    h_block(&h, 1, WIRE_REQUEST, 2, 0, 16384);
    uint64_t t1 = loads_so_far(2);
    h_block(&h, 1, WIRE_CANCEL, 2, 0, 16384);
    h_closed(&h, 0);
    hk_seeder_on_disk_loaded(h.s, t0, HK_DISK_RETRY);
    hk_seeder_on_disk_loaded(h.s, t1, HK_DISK_RETRY);
    cr_assert_not(torrent_failed());
    cr_assert_not(fr_closed(h.fr, 1));
    cr_assert_eq(h_stats(&h).disk_retries, 0, "nothing waits");
    h_advance(&h, HK_SECONDS(3));
    loads_so_far(2);
}
