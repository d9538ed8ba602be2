/* Unit tests for the background verification pass: the pure pacer and progress counters (core/verify_pass.c) and
 * the seeder's pass (core/seeder_vpass.c) through the fake runtime's disk_verify: every piece checked at the verify
 * rate, at most HKS_VPASS_INFLIGHT at once, lazy checks of requested pieces first (never paced), good pieces served
 * while the pass runs, a request of a piece the pass checks joining its check, progress lines, marks dropped by
 * hk_seeder_verify_torrent / hk_seeder_forget_pieces, bad pieces listed, removal during a pass. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "seeder_harness.h"
#include "seeder_internal.h" /* HKS_BAD_REJECT_HOLD */
#include "verify_pass.h"
#include "wire.h"

/* ---- the pacer ---- */

Test(verify_pass, pacing_is_a_virtual_clock_at_the_rate)
{
    hk_vpass p;
    hk_vpass_init(&p, 1u << 20, 2); /* 1 MiB/s */
    cr_assert_not(hk_vpass_may_issue(&p, 0), "idle: nothing to do");
    hk_vpass_add(&p, 4u << 20, 0);
    cr_assert(hk_vpass_may_issue(&p, 0));
    hk_vpass_issued(&p, 256u << 10, 0);
    cr_assert_eq(p.next_at, HK_MILLIS(250), "256 KiB at 1 MiB/s: 250 ms");
    cr_assert_not(hk_vpass_may_issue(&p, HK_MILLIS(249)));
    cr_assert_eq(hk_vpass_wake(&p, HK_MILLIS(100)), HK_MILLIS(250));
    cr_assert(hk_vpass_may_issue(&p, HK_MILLIS(250)));
    hk_vpass_issued(&p, 256u << 10, HK_MILLIS(250));
    cr_assert_not(hk_vpass_may_issue(&p, HK_SECONDS(10)), "two in flight: the bound holds");
    cr_assert_eq(hk_vpass_wake(&p, HK_SECONDS(10)), HK_TIME_NEVER, "a completion wakes it, not the clock");
    hk_vpass_completed(&p, 256u << 10, false);
    cr_assert(hk_vpass_may_issue(&p, HK_SECONDS(10)));
    hk_vpass_issued(&p, 1u << 20, HK_SECONDS(10));
    cr_assert_eq(p.next_at, HK_SECONDS(11), "idle time is not saved up");
}

Test(verify_pass, the_remainder_is_carried_so_the_average_rate_is_exact)
{
    hk_vpass p;
    hk_vpass_init(&p, 3, 1000);
    hk_vpass_add(&p, 3, 0);
    for (int i = 0; i < 3; i++)
        hk_vpass_issued(&p, 1, 0);
    cr_assert_eq(p.next_at, HK_SECONDS(1), "3 bytes at 3 B/s take exactly a second (%llu)",
                 (unsigned long long)p.next_at);
    hk_vpass_init(&p, HK_VPASS_RATE_MAX + 5, 1);
    cr_assert_eq(p.rate, HK_VPASS_RATE_MAX, "clamped");
    hk_vpass_add(&p, 1, 0);
    hk_vpass_issued(&p, HK_VPASS_RATE_MAX - 1, 0); /* the largest remainder: no overflow */
    cr_assert_lt(p.next_at, HK_SECONDS(1));
    cr_assert_gt(p.next_at, HK_MILLIS(999));
}

Test(verify_pass, progress_counts_and_the_line)
{
    hk_vpass p;
    hk_vpass_init(&p, 1u << 20, 2);
    hk_vpass_add(&p, 3u << 20, HK_SECONDS(100));
    hk_vpass_add(&p, 1u << 20, HK_SECONDS(100));
    hk_vpass_issued(&p, 1u << 20, HK_SECONDS(100));
    hk_vpass_completed(&p, 1u << 20, false);
    hk_vpass_skip(&p, 1u << 20);
    cr_assert_not(hk_vpass_report_due(&p, HK_SECONDS(104), HK_SECONDS(5)));
    cr_assert(hk_vpass_report_due(&p, HK_SECONDS(105), HK_SECONDS(5)));
    cr_assert_not(hk_vpass_report_due(&p, HK_SECONDS(106), HK_SECONDS(5)), "the clock was reset");
    char line[160];
    hk_vpass_format(&p, HK_SECONDS(102), line, sizeof line);
    cr_assert_str_eq(line, "verify: 0/2 torrents, 2.0 MiB of 4.0 MiB, 512.0 KiB/s, ETA 4 s", "%s", line);
    hk_vpass_torrent_done(&p, 1u << 20);
    hk_vpass_completed(&p, 1u << 20, true); /* a retry counts nothing done */
    cr_assert_eq(p.bytes_done, 3u << 20);
    cr_assert_eq(p.torrents_done, 1);
    hk_vpass_finish(&p);
    cr_assert_not(hk_vpass_may_issue(&p, HK_SECONDS(200)));
    hk_vpass_add(&p, 7, HK_SECONDS(200));
    cr_assert_eq(p.torrents_total, 1, "a new pass counts from zero");
    cr_assert_eq(p.bytes_done, 0);
}

/* ---- the seeder's pass ---- */

static harness h;
static hk_time t0; /* the fake clock when the seeder was made */

static void teardown(void) { h_free(&h); }

TestSuite(seeder_vpass, .fini = teardown);

#define PIECE 32768u
#define NPIECES 8u

/* A seeder with disk_verify, verify_full as given and a rate of one piece per second; one torrent of NPIECES. */
static void setup_pass(bool full)
{
    memset(&h, 0, sizeof h);
    h.fr = fr_new(777);
    h.rt = fr_runtime(h.fr);
    fr_enable_verify(&h.rt);
    h.fr->echo_logs = getenv("ECHO") != NULL;
    hk_config_defaults(&h.cfg);
    h.cfg.verify_full = full;
    h.cfg.verify_rate = PIECE; /* one piece a second */
    t0 = h.fr->now;
    h.s = hk_seeder_new(&h.cfg, &h.rt);
    cr_assert(h.s);
    cr_assert_eq(h_add_single(&h, PIECE, (uint64_t)PIECE * NPIECES), HK_ADD_OK);
}

/* The pieces of the VERIFY actions so far, in order, into out; their number. */
static size_t verified_pieces(uint32_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < h.fr->nactions && n < cap; i++)
        if (h.fr->actions[i].kind == FR_VERIFY)
            out[n++] = h.fr->actions[i].piece;
    return n;
}

/* Answers the VERIFY action number k (in order) with result. */
static void answer(size_t k, hk_verify_result result)
{
    size_t seen = 0;
    for (size_t i = 0; i < h.fr->nactions; i++)
        if (h.fr->actions[i].kind == FR_VERIFY && seen++ == k) {
            uint64_t token = h.fr->actions[i].token;
            hk_seeder_on_piece_verified(h.s, token, result);
            return;
        }
    cr_assert_fail("no verify number %zu", k);
}

/* Runs the fake clock to t0 + t, delivering the wakes. */
static void run(hk_time t)
{
    fr_run_until(h.fr, h.s, t0 + t);
}

static hk_verify_progress progress(void)
{
    hk_verify_progress p;
    hk_seeder_verify_progress(h.s, &p);
    return p;
}

Test(seeder_vpass, full_mode_checks_every_piece_at_the_rate_then_reports_done)
{
    setup_pass(true);
    cr_assert(progress().active);
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 1, "the first piece at once, the next one a second later");
    run(HK_MILLIS(999));
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 1);
    run(HK_SECONDS(1));
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 2);
    run(HK_SECONDS(5));
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 2, "two in flight: the pass waits for a completion");
    answer(0, HK_VERIFY_GOOD);
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 3, "a completion lets the next one go (the pace allows it)");
    size_t k = 1;
    for (hk_time t = HK_SECONDS(5); t <= HK_SECONDS(20); t += HK_MILLIS(500)) {
        run(t);
        while (k < fr_count(h.fr, FR_VERIFY))
            answer(k++, HK_VERIFY_GOOD);
    }
    uint32_t pieces[32];
    size_t n = verified_pieces(pieces, 32);
    cr_assert_eq(n, NPIECES, "every piece once (%zu)", n);
    for (uint32_t i = 0; i < NPIECES; i++)
        cr_assert_eq(pieces[i], i, "in order");
    hk_verify_progress p = progress();
    cr_assert_not(p.active, "the pass is over");
    cr_assert_eq(p.torrents_done, 1);
    cr_assert_eq(p.bytes_checked, (uint64_t)PIECE * NPIECES);
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &ts));
    cr_assert_eq(ts.pieces_good, NPIECES);
    cr_assert_geq(fr_find_log(h.fr, "verify: 0/1 torrents", 0), 0, "a progress line while it ran");
    cr_assert_geq(fr_find_log(h.fr, "verify: pass done", 0), 0);
    cr_assert_geq(fr_find_log(h.fr, "0 torrents damaged", 0), 0);
}

Test(seeder_vpass, requested_pieces_are_checked_first_and_good_ones_are_not_delayed)
{
    setup_pass(true);
    answer(0, HK_VERIFY_GOOD); /* piece 0 good */
    h_accept(&h, 0, 1 << 20);
    h_handshake(&h, 0, NULL, true, false);
    h_simple(&h, 0, WIRE_INTERESTED);
    size_t before = fr_count(h.fr, FR_VERIFY);
    h_block(&h, 0, WIRE_REQUEST, 6, 0, 16384);
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), before + 1, "a lazy check at once, whatever the pace");
    cr_assert_eq(fr_last(h.fr, FR_VERIFY)->piece, 6);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1, "a piece already good is served at once during the pass");
    answer(before, HK_VERIFY_GOOD);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 2);
    size_t k = 1;
    for (hk_time t = 0; t <= HK_SECONDS(20); t += HK_MILLIS(250)) {
        run(t);
        for (; k < fr_count(h.fr, FR_VERIFY); k++)
            if (k != before)
                answer(k, HK_VERIFY_GOOD);
    }
    uint32_t pieces[32];
    size_t n = verified_pieces(pieces, 32);
    cr_assert_eq(n, NPIECES, "piece 6 not checked twice (%zu checks)", n);
    cr_assert_not(progress().active);
}

Test(seeder_vpass, a_request_of_a_piece_the_pass_checks_joins_its_check)
{
    setup_pass(true);
    cr_assert_eq(fr_last(h.fr, FR_VERIFY)->piece, 0);
    h_accept(&h, 0, 1 << 20);
    h_handshake(&h, 0, NULL, false, false);
    h_simple(&h, 0, WIRE_INTERESTED);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 1, "no second check of piece 0");
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 0);
    answer(0, HK_VERIFY_GOOD);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1, "served when the pass's check says good");
}

Test(seeder_vpass, a_bad_piece_found_by_the_pass_is_listed_and_never_offered)
{
    setup_pass(true);
    run(HK_SECONDS(1));
    answer(0, HK_VERIFY_GOOD);
    answer(1, HK_VERIFY_BAD);
    uint32_t bad[4];
    cr_assert_eq(hk_seeder_bad_pieces(h.s, h.ih, bad, 4), 1);
    cr_assert_eq(bad[0], 1);
    cr_assert_eq(hk_seeder_bad_pieces(h.s, h.ih, NULL, 0), 1);
    cr_assert_geq(fr_find_log(h.fr, "damaged: piece 1 fails its hash", 0), 0);
    h_accept(&h, 1, 1 << 20);
    h_handshake(&h, 1, NULL, true, false);
    cr_assert_eq(h_count(&h, 1, WIRE_HAVE_ALL), 0, "no HAVE_ALL with a bad piece");
    cr_assert_eq(h_count(&h, 1, WIRE_BITFIELD), 1);
}

Test(seeder_vpass, verify_torrent_drops_the_marks_and_checks_it_all_again)
{
    setup_pass(false);
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 0, "lazy only: nothing checked in the background");
    cr_assert_not(progress().active);
    h_accept(&h, 0, 1 << 20);
    h_handshake(&h, 0, NULL, true, false);
    h_simple(&h, 0, WIRE_INTERESTED);
    h_block(&h, 0, WIRE_REQUEST, 2, 0, 16384);
    answer(0, HK_VERIFY_BAD);
    cr_assert_eq(hk_seeder_bad_pieces(h.s, h.ih, NULL, 0), 1);
    cr_assert(hk_seeder_verify_torrent(h.s, h.ih));
    cr_assert_eq(hk_seeder_bad_pieces(h.s, h.ih, NULL, 0), 0, "every mark dropped");
    cr_assert(progress().active);
    cr_assert_geq(fr_find_log(h.fr, "marks dropped, queued for a full check", 0), 0);
    size_t k = 1;
    for (hk_time t = 0; t <= HK_SECONDS(20); t += HK_MILLIS(250)) {
        run(t);
        for (; k < fr_count(h.fr, FR_VERIFY); k++)
            answer(k, HK_VERIFY_GOOD); /* repaired */
    }
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 1 + NPIECES, "piece 2 too, though it was known bad");
    cr_assert_not(progress().active);
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &ts));
    cr_assert_eq(ts.pieces_good, NPIECES);
    cr_assert_eq(ts.pieces_bad, 0);
    uint8_t other[20] = {1};
    cr_assert_not(hk_seeder_verify_torrent(h.s, other), "not served");
}

Test(seeder_vpass, forget_pieces_makes_a_good_piece_checked_again_on_next_use)
{
    setup_pass(false);
    h_accept(&h, 0, 1 << 20);
    h_handshake(&h, 0, NULL, true, false);
    h_simple(&h, 0, WIRE_INTERESTED);
    h_block(&h, 0, WIRE_REQUEST, 3, 0, 16384);
    answer(0, HK_VERIFY_GOOD);
    h_block(&h, 0, WIRE_REQUEST, 3, 16384, 16384);
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 1, "good: not checked again");
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 2);
    cr_assert(hk_seeder_forget_pieces(h.s, h.ih));
    cr_assert_not(progress().active, "lazy mode: no pass, checked on next use");
    h_block(&h, 0, WIRE_REQUEST, 3, 0, 16384);
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 2, "its data changed: checked again before it is sent");
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 2);
    answer(1, HK_VERIFY_BAD);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 2, "now bad: never sent");
    h_advance(&h, HKS_BAD_REJECT_HOLD + HK_MILLIS(10)); /* no lt_donthave: the reject is held */
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 1);
}

Test(seeder_vpass, removing_the_torrent_ends_the_pass)
{
    setup_pass(true);
    cr_assert(progress().active);
    cr_assert(hk_seeder_remove_torrent(h.s, h.ih));
    answer(0, HK_VERIFY_GOOD); /* the pending check comes back for a torrent gone */
    cr_assert_not(progress().active);
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 1);
    run(HK_SECONDS(30));
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 1, "nothing more is checked");
}

Test(seeder_vpass, without_disk_verify_there_is_no_pass)
{
    memset(&h, 0, sizeof h);
    h.fr = fr_new(5);
    h.rt = fr_runtime(h.fr);
    hk_config_defaults(&h.cfg);
    h.cfg.verify_full = true;
    h.s = hk_seeder_new(&h.cfg, &h.rt);
    cr_assert_eq(h_add_single(&h, PIECE, (uint64_t)PIECE * NPIECES), HK_ADD_OK);
    cr_assert_not(progress().active);
    cr_assert_not(hk_seeder_verify_torrent(h.s, h.ih));
    cr_assert_not(hk_seeder_forget_pieces(h.s, h.ih));
}

Test(seeder_vpass, the_rate_is_checked_and_live)
{
    hk_config c;
    hk_config_defaults(&c);
    cr_assert_eq(c.verify_rate, 64ull << 20);
    c.verify_rate = 0;
    cr_assert_not_null(hk_config_check(&c));
    c.verify_rate = HK_VPASS_RATE_MAX + 1;
    cr_assert_not_null(hk_config_check(&c));
    setup_pass(true);
    hk_config n = h.cfg;
    n.verify_rate = PIECE / 4; /* 4 s a piece */
    cr_assert_null(hk_seeder_set_config(h.s, &n));
    run(HK_SECONDS(1)); /* the second piece was paced at the old rate */
    answer(0, HK_VERIFY_GOOD);
    answer(1, HK_VERIFY_GOOD);
    run(HK_SECONDS(4));
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 2);
    run(HK_SECONDS(5));
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 3, "the third one 4 s after the second");
}

Test(seeder_vpass, a_check_under_way_when_the_marks_drop_is_not_trusted)
{
    setup_pass(false);
    h_accept(&h, 0, 1 << 20);
    h_handshake(&h, 0, NULL, true, false);
    h_simple(&h, 0, WIRE_INTERESTED);
    h_block(&h, 0, WIRE_REQUEST, 5, 0, 16384);
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 1);
    cr_assert(hk_seeder_forget_pieces(h.s, h.ih)); /* the file changed while piece 5 was being read */
    answer(0, HK_VERIFY_GOOD);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 0, "a result read before the change is not trusted");
    cr_assert_eq(fr_count(h.fr, FR_VERIFY), 2, "the waiting request starts a new check");
    cr_assert_eq(fr_last(h.fr, FR_VERIFY)->piece, 5);
    answer(1, HK_VERIFY_BAD);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 0);
    h_advance(&h, HKS_BAD_REJECT_HOLD + HK_MILLIS(10)); /* no lt_donthave: the reject is held */
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 1, "the new data fails: rejected");
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &ts));
    cr_assert_eq(ts.pieces_good, 0);
    cr_assert_eq(ts.pieces_bad, 1);
}
