/* Unit tests for the credit choker as the seeder applies it (docs/design.md §5): unchoke on interest, the slot cap,
 * credit exhaustion and slice expiry with and without waiters, not-interested frees the slot, line full -> disconnect,
 * FIFO rotation, the connection cap, and turn taking between peers within a service pass. */
#include <criterion/criterion.h>
#include <string.h>

#include "seeder_harness.h"
#include "wire.h"

static harness h;

static void start(uint32_t max_unchoked, uint64_t credit, hk_time slice, uint32_t max_peers)
{
    hk_config c;
    hk_config_defaults(&c);
    c.max_unchoked = max_unchoked;
    c.max_peers = max_peers;
    c.credit = credit;
    c.slice = slice;
    c.send_stall_timeout = HK_SECONDS(100000);
    c.idle_timeout = HK_SECONDS(100000);
    c.unchoked_idle_timeout = HK_SECONDS(100000);
    c.keepalive_interval = HK_SECONDS(100000);
    c.unchoked_grace = HK_SECONDS(100000); /* the slot-squatting graces have their own tests */
    c.unchoked_stall = HK_SECONDS(100000);
    h_init(&h, &c);
    cr_assert_eq(h_add_single(&h, 32768, 32768 * 64), HK_ADD_OK); /* 64 full pieces */
}

static void teardown(void)
{
    h_free(&h);
}

TestSuite(choke, .fini = teardown);

static void interested(int c, bool fast)
{
    h_connect(&h, c, fast, false);
    h_simple(&h, c, WIRE_INTERESTED);
}

/* One slot: peer 0 holds it, peer 1 waits (both fast). */
static void one_slot_two_interested(void)
{
    start(1, 1 << 20, 0, 20);
    interested(0, true);
    interested(1, true);
}

static void request_blocks(int c, uint32_t first_piece, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        h_block(&h, c, WIRE_REQUEST, first_piece + i / 2, (i % 2) * 16384, 16384);
}

Test(choke, only_interested_peers_are_unchoked)
{
    start(2, 1 << 20, 0, 20);
    h_connect(&h, 0, true, false);
    cr_assert_eq(h_count(&h, 0, WIRE_UNCHOKE), 0, "free slots, but not interested: stays choked");
    h_simple(&h, 0, WIRE_INTERESTED);
    cr_assert_eq(h_count(&h, 0, WIRE_UNCHOKE), 1);
    h_simple(&h, 0, WIRE_INTERESTED); /* again: nothing new */
    cr_assert_eq(h_count(&h, 0, WIRE_UNCHOKE), 1);
    cr_assert_geq(fr_find_log(h.fr, "peer 1: unchoked", 0), 0);
}

Test(choke, at_most_n_unchoked_rest_wait_fifo)
{
    start(2, 1 << 20, 0, 20);
    for (int c = 0; c < 5; c++)
        interested(c, true);
    hk_stats st = h_stats(&h);
    cr_assert_eq(st.unchoked, 2);
    cr_assert_eq(st.waiting, 3);
    cr_assert_eq(st.max_unchoked_seen, 2);
    cr_assert_eq(h_count(&h, 2, WIRE_UNCHOKE), 0);
    cr_assert_geq(fr_find_log(h.fr, "waiting in line at position 3", 0), 0);
    /* a slot frees: the line head (peer 2), not a later one */
    h_closed(&h, 0);
    cr_assert_eq(h_count(&h, 2, WIRE_UNCHOKE), 1);
    cr_assert_eq(h_count(&h, 3, WIRE_UNCHOKE), 0);
    /* a waiter leaving frees no slot and keeps the order */
    h_closed(&h, 3);
    cr_assert_eq(h_stats(&h).waiting, 1);
    h_closed(&h, 1);
    cr_assert_eq(h_count(&h, 4, WIRE_UNCHOKE), 1);
    cr_assert_eq(h_stats(&h).waiting, 0);
}

Test(choke, not_interested_frees_the_slot)
{
    one_slot_two_interested();
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    h_room(&h, 0, 0);
    h_block(&h, 0, WIRE_REQUEST, 0, 16384, 16384); /* queued: no room */
    h_simple(&h, 0, WIRE_NOT_INTERESTED);
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 1);
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 1, "its queued request is rejected");
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 1);
    cr_assert_eq(h_stats(&h).unchoked, 1);
    cr_assert_eq(h_stats(&h).waiting, 0, "not interested: not in the line either");
    /* interested again: joins the back of the line */
    h_simple(&h, 0, WIRE_INTERESTED);
    cr_assert_eq(h_stats(&h).waiting, 1);
}

Test(choke, credit_exhausted_nobody_waiting_refills)
{
    start(1, 32768, 0, 20); /* two blocks per turn */
    interested(0, true);
    request_blocks(0, 0, 6);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 6);
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 0);
    cr_assert_geq(fr_find_log(h.fr, "turn renewed (credit used up; nobody waiting)", 0), 0);
}

Test(choke, credit_exhausted_with_waiters_requeues)
{
    start(1, 32768, 0, 20);
    interested(0, true);
    interested(1, true);
    h_room(&h, 0, 0);
    request_blocks(0, 0, 4); /* queued: no room */
    h_room(&h, 0, 1 << 20);
    fr_msgs m = h_msgs(&h, 0);
    cr_assert_eq(fr_msgs_count(&m, WIRE_PIECE), 2, "the credit: two blocks");
    cr_assert_eq(fr_msgs_count(&m, WIRE_REJECT), 2, "the rest rejected (fast)");
    /* order on the wire: pieces, then choke, then rejects */
    size_t first_choke = 0;
    for (size_t i = 0; i < m.n; i++)
        if (m.m[i].type == WIRE_CHOKE) {
            first_choke = i;
            break;
        }
    cr_assert_gt(first_choke, 0);
    for (size_t i = first_choke; i < m.n; i++)
        cr_assert_neq(m.m[i].type, WIRE_PIECE, "no data after the choke");
    fr_msgs_free(&m);
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 1, "the waiter gets the slot");
    cr_assert_eq(h_stats(&h).waiting, 1, "the choked one waits at the back");
    cr_assert_eq(h_stats(&h).queued_requests, 0);
    /* the next turn comes back */
    request_blocks(1, 10, 2);
    request_blocks(1, 20, 1);
    cr_assert_eq(h_count(&h, 0, WIRE_UNCHOKE), 2, "peer 0's turn again once peer 1's credit is used");
}

Test(choke, without_fast_the_rest_is_dropped)
{
    start(1, 32768, 0, 20);
    interested(0, false);
    interested(1, false);
    h_room(&h, 0, 0);
    request_blocks(0, 0, 4);
    h_room(&h, 0, 1 << 20);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 2);
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 1);
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 0);
    cr_assert_eq(h_stats(&h).queued_requests, 0);
}

Test(choke, slice_over_nobody_waiting_restarts_the_slice)
{
    start(1, 1 << 20, HK_SECONDS(100), 20);
    hk_time t = h.fr->now;
    interested(0, true);
    h_advance(&h, HK_SECONDS(100));
    cr_assert_eq(fr_find_log(h.fr, "turn renewed (slice over", 0) >= 0, true);
    size_t n1 = 0;
    for (long i = 0; (i = fr_find_log(h.fr, "slice over", (size_t)i)) >= 0; i++)
        n1++;
    cr_assert_eq(n1, 1);
    /* the slice was restarted: no re-check before every block as in the original */
    request_blocks(0, 0, 4);
    size_t n2 = 0;
    for (long i = 0; (i = fr_find_log(h.fr, "slice over", (size_t)i)) >= 0; i++)
        n2++;
    cr_assert_eq(n2, 1);
    fr_run_until(h.fr, h.s, t + HK_SECONDS(200) - 1);
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 0);
}

Test(choke, slice_over_with_waiters_chokes_even_a_slow_peer)
{
    start(1, 1 << 20, HK_SECONDS(100), 20);
    hk_time t = h.fr->now;
    interested(0, true);
    interested(1, true);
    h_room(&h, 0, 0);
    request_blocks(0, 0, 3); /* it never gets room: stuck with its slot */
    fr_run_until(h.fr, h.s, t + HK_SECONDS(100) - 1);
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 0);
    fr_run_until(h.fr, h.s, t + HK_SECONDS(100));
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 1);
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 3);
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 1);
}

Test(choke, line_full_disconnects)
{
    start(1, 32768, 0, 2); /* connections capped at 2 */
    interested(0, true);
    interested(1, true);
    cr_assert_null(h_accept(&h, 2, 1 << 20), "over the connection cap");
    cr_assert_eq(h_stats(&h).peers_refused, 1);
    request_blocks(0, 0, 3);
    cr_assert(fr_closed(h.fr, 0), "turn over while connections are full: disconnected to make room");
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 2);
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 1);
    cr_assert_eq(h_stats(&h).peers, 1);
    cr_assert_eq(h_stats(&h).unchoked, 1);
    cr_assert_not_null(h_accept(&h, 3, 1 << 20), "room for a newcomer");
}

Test(choke, rotation_is_fifo)
{
    start(1, 16384, 0, 20); /* one block per turn */
    for (int c = 0; c < 3; c++)
        interested(c, true);
    const int expect[8] = {0, 1, 2, 0, 1, 2, 0, 1};
    size_t unchokes[3] = {1, 0, 0};
    for (int k = 0; k < 7; k++) {
        int holder = expect[k], next = expect[k + 1];
        cr_assert_eq(h_count(&h, holder, WIRE_UNCHOKE), unchokes[holder], "step %d", k);
        request_blocks(holder, (uint32_t)k, 2); /* the second block finds the credit used up */
        unchokes[next]++;
        cr_assert_eq(h_count(&h, next, WIRE_UNCHOKE), unchokes[next], "step %d: peer %d is next", k, next);
        cr_assert_eq(h_stats(&h).unchoked, 1);
        cr_assert_eq(h_stats(&h).waiting, 2);
    }
    cr_assert_eq(h_stats(&h).max_unchoked_seen, 1);
}

Test(choke, waiting_peer_requests_are_rejected)
{
    one_slot_two_interested();
    h_block(&h, 1, WIRE_REQUEST, 0, 0, 16384);
    cr_assert_eq(h_count(&h, 1, WIRE_REJECT), 1);
    cr_assert_eq(h_count(&h, 1, WIRE_PIECE), 0);
}

Test(choke, turns_are_shared_within_a_pass)
{
    hk_config c;
    hk_config_defaults(&c);
    c.reqq = 1000;
    c.credit = 1ull << 40;
    h_init(&h, &c);
    cr_assert_eq(h_add_single(&h, 32768, 32768ull * 1000), HK_ADD_OK);
    interested(0, true);
    interested(1, true);
    h_room(&h, 0, 0);
    h_room(&h, 1, 0);
    request_blocks(0, 0, 600);
    request_blocks(1, 300, 600);
    h_room(&h, 0, 100u << 20);
    size_t a1 = h_count(&h, 0, WIRE_PIECE);
    cr_assert_eq(a1, 256, "one pass is bounded");
    cr_assert_eq(h.fr->wake, h.fr->now, "and asks to continue at once");
    h_room(&h, 1, 100u << 20);
    size_t a2 = h_count(&h, 0, WIRE_PIECE), b2 = h_count(&h, 1, WIRE_PIECE);
    cr_assert_eq(a2 - a1, 128, "both ready: equal shares");
    cr_assert_eq(b2, 128);
    h.fr->wake = HK_TIME_NEVER;
    hk_seeder_on_wake(h.s); /* one continuation */
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE) - a2, 128, "a %zu b %zu", h_count(&h, 0, WIRE_PIECE),
                 h_count(&h, 1, WIRE_PIECE));
    cr_assert_eq(h_count(&h, 1, WIRE_PIECE) - b2, 128);
    h_advance(&h, HK_SECONDS(1));
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 600);
    cr_assert_eq(h_count(&h, 1, WIRE_PIECE), 600);
}

/* ---- A peer without the fast extension that pipelines beyond reqq (issue 9: Enhanced CTorrent) ----------------- */

#define PIPE_BLOCK 1024u    /* small blocks keep the recorded stream small: the cap counts requests, not bytes */
#define PIPE_N 1000u

/* A BEP 3 client without the fast extension: it sends its requests in one pipelined burst, counts a PIECE as the
 * answer to its request, and takes a CHOKE as discarding everything outstanding, re-requesting after the UNCHOKE. */
typedef struct pipe_client {
    bool served[PIPE_N], outstanding[PIPE_N];
    bool unchoked;
    size_t seen;             /* messages of the stream already processed */
    uint32_t served_n, chokes, max_queued;
} pipe_client;

static void pipe_read(pipe_client *pc)
{
    fr_msgs m = fr_decode(h.fr, 0, h.pieces);
    cr_assert_not(m.error);
    for (; pc->seen < m.n; pc->seen++) {
        const wire_msg *x = &m.m[pc->seen];
        if (x->type == WIRE_CHOKE) {
            pc->unchoked = false;
            pc->chokes++;
            memset(pc->outstanding, 0, sizeof pc->outstanding);
        } else if (x->type == WIRE_UNCHOKE) {
            pc->unchoked = true;
        } else if (x->type == WIRE_PIECE) {
            uint32_t i = (x->u.piece.index * h.piece_len + x->u.piece.begin) / PIPE_BLOCK;
            cr_assert_lt(i, PIPE_N);
            cr_assert_eq(x->u.piece.len, PIPE_BLOCK);
            if (!pc->served[i])
                pc->served_n++;
            pc->served[i] = true;
            pc->outstanding[i] = false;
        }
    }
    fr_msgs_free(&m);
}

/* Sends, in one receive, a request for every block neither served nor outstanding. */
static void pipe_request(pipe_client *pc)
{
    static uint8_t burst[PIPE_N * WIRE_BLOCK_MSG_LEN];
    size_t at = 0;
    for (uint32_t i = 0; i < PIPE_N; i++) {
        if (pc->served[i] || pc->outstanding[i])
            continue;
        uint64_t pos = (uint64_t)i * PIPE_BLOCK;
        at += wire_encode_block(burst + at, WIRE_REQUEST, (uint32_t)(pos / h.piece_len),
                                (uint32_t)(pos % h.piece_len), PIPE_BLOCK);
        pc->outstanding[i] = true;
    }
    if (at)
        h_recv(&h, 0, burst, at);
}

static uint32_t pipe_outstanding(const pipe_client *pc)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < PIPE_N; i++)
        n += pc->outstanding[i];
    return n;
}

/* Runs the client to completion: bursts of requests, each followed by 64 KiB of room. The seeder's queue never holds
 * more than the cap (bounded memory); `exact`: it holds just what the client waits for. */
static void pipe_run(pipe_client *pc, uint32_t cap, uint64_t mem_bound, bool exact)
{
    memset(pc, 0, sizeof *pc);
    h_connect(&h, 0, false, false);
    h_simple(&h, 0, WIRE_INTERESTED);
    h_room(&h, 0, 0);
    pipe_read(pc);
    cr_assert(pc->unchoked);
    for (int round = 0; round < 400 && pc->served_n < PIPE_N; round++) {
        if (pc->unchoked)
            pipe_request(pc);
        pipe_read(pc);
        hk_stats st = h_stats(&h);
        if (exact) /* below the cap: everything the peer waits for is queued */
            cr_assert_eq(st.queued_requests, pipe_outstanding(pc), "round %d: the seeder holds %llu requests, the "
                         "peer waits for %u", round, (unsigned long long)st.queued_requests, pipe_outstanding(pc));
        cr_assert_leq(st.queued_requests, cap);
        cr_assert_leq(st.memory_bytes, mem_bound, "round %d: %llu bytes", round, (unsigned long long)st.memory_bytes);
        if (st.queued_requests > pc->max_queued)
            pc->max_queued = (uint32_t)st.queued_requests;
        h_room(&h, 0, 65536);
        pipe_read(pc);
        /* once the seeder has nothing left to send, the peer waits for nothing: a request neither served nor
         * cleared by a choke it saw would be a silent drop */
        if (h_stats(&h).queued_requests == 0)
            cr_assert_eq(pipe_outstanding(pc), 0, "round %d: %u requests silently dropped", round,
                         pipe_outstanding(pc));
    }
    cr_assert_eq(pc->served_n, PIPE_N, "every block arrives (%u of %u)", pc->served_n, PIPE_N);
    cr_assert_not(fr_closed(h.fr, 0));
}

static void pipe_start(uint32_t reqq)
{
    hk_config c;
    hk_config_defaults(&c);
    c.reqq = reqq;
    h_init(&h, &c);
    cr_assert_eq(h_add_single(&h, 32768, PIPE_N * PIPE_BLOCK), HK_ADD_OK);
}

Test(choke, non_fast_pipeline_beyond_reqq_is_served)
{
    pipe_start(256); /* the default: 1,000 requests stay below the overflow cap (4 x reqq) */
    pipe_client pc;
    pipe_run(&pc, 1024, 256 * 1024, true);
    cr_assert_eq(pc.max_queued, PIPE_N, "the whole burst is queued");
    cr_assert_eq(pc.chokes, 0);
    cr_assert_eq(h_stats(&h).choke_resets, 0);
}

Test(choke, non_fast_pipeline_beyond_the_cap_is_choked_visibly)
{
    pipe_start(8); /* overflow cap 32: the burst overflows, the peer is choked (and at once unchoked) again */
    pipe_client pc;
    pipe_run(&pc, 32, 256 * 1024, false);
    cr_assert_eq(pc.max_queued, 32);
    cr_assert_gt(pc.chokes, 0);
    cr_assert_eq(h_stats(&h).choke_resets, pc.chokes);
    cr_assert_geq(fr_find_log(h.fr, "its 32 queued requests are served, then a choke discards the rest", 0), 0);
}

Test(choke, fast_peer_beyond_reqq_still_gets_rejects)
{
    pipe_start(8);
    h_connect(&h, 0, true, false);
    h_simple(&h, 0, WIRE_INTERESTED);
    h_room(&h, 0, 0);
    for (uint32_t i = 0; i < 20; i++)
        h_block(&h, 0, WIRE_REQUEST, i / 32, (i % 32) * PIPE_BLOCK, PIPE_BLOCK);
    cr_assert_eq(h_stats(&h).queued_requests, 8);
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 12);
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 0);
}
