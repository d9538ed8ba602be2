/* Unit tests for the seeder's timeouts (docs/design.md §6): each fires at exactly its time, not a nanosecond before,
 * through the single wake-up; each is counted and logged. */
#include <criterion/criterion.h>
#include <string.h>

#include "seeder_harness.h"
#include "wire.h"

static harness h;
#define NS1 ((hk_time)1)

/* The other timers are tested apart from the slot-squatting graces (issue 14 item 2): those are set beyond any run
 * unless a test asks for them (graces = true: the configured ones, the defaults for cfg NULL). */
static void start_with(const hk_config *cfg, bool graces)
{
    hk_config c;
    if (cfg)
        c = *cfg;
    else
        hk_config_defaults(&c);
    if (!graces)
        c.unchoked_grace = c.unchoked_stall = HK_SECONDS(100000);
    h_init(&h, &c);
    cr_assert_eq(h_add_single(&h, 32768, 100000), HK_ADD_OK);
}

static void start(const hk_config *c)
{
    start_with(c, false);
}

static void teardown(void)
{
    h_free(&h);
}

TestSuite(timeouts, .fini = teardown);

static hk_time t0(void)
{
    return h.fr->now;
}

static void until(hk_time t)
{
    fr_run_until(h.fr, h.s, t);
}

/* Peer c is still open a nanosecond before `at`, and closed at `at`. */
static void closed_exactly_at(int c, hk_time at)
{
    until(at - NS1);
    cr_assert_not(fr_closed(h.fr, c), "peer %d closed early", c);
    until(at);
    cr_assert(fr_closed(h.fr, c), "peer %d still open", c);
}

/* Peer c sends a keep-alive now. */
static void peer_keepalive(int c)
{
    uint8_t ka[4] = {0};
    h_recv(&h, c, ka, 4);
}

/* Peer c connects (fast) and says it is interested. */
static void connect_interested(int c)
{
    h_connect(&h, c, true, false);
    h_simple(&h, c, WIRE_INTERESTED);
}

/* Peer c connects with `room` bytes of send room, completes the handshake (fast) and says it is interested. */
static void accept_interested(int c, size_t room)
{
    h_accept(&h, c, room);
    h_handshake(&h, c, NULL, true, false);
    h_simple(&h, c, WIRE_INTERESTED);
}

/* One unchoke slot; the other settings from cfg (NULL: defaults). */
static void start_one_slot(hk_config *cfg)
{
    hk_config c;
    if (cfg)
        c = *cfg;
    else
        hk_config_defaults(&c);
    c.max_unchoked = 1;
    start(&c);
}

Test(timeouts, handshake)
{
    start(NULL);
    hk_time t = t0();
    h_accept(&h, 0, 1 << 20);
    cr_assert_eq(h.fr->wake, t + HK_SECONDS(10), "one wake-up, at the deadline");
    closed_exactly_at(0, t + HK_SECONDS(10));
    cr_assert_eq(h_stats(&h).timeouts[HK_TIMEOUT_HANDSHAKE], 1);
    cr_assert_geq(fr_find_log(h.fr, "timeout handshake", 0), 0);
    cr_assert_eq(h_stats(&h).peers, 0);
    cr_assert_eq(h.fr->wake, HK_TIME_NEVER, "nothing left to wake for");
}

Test(timeouts, handshake_without_peer_id)
{
    start(NULL);
    hk_time t = t0();
    h_accept(&h, 0, 1 << 20);
    uint8_t hs[WIRE_HANDSHAKE_LEN];
    uint8_t res[8] = {0}, id[20] = {0};
    wire_encode_handshake(hs, res, h.ih, id);
    h_recv(&h, 0, hs, 48); /* answered, but the peer id never comes */
    cr_assert_eq(fr_count_conn(h.fr, FR_SEND, 0), 1);
    closed_exactly_at(0, t + HK_SECONDS(10));
    cr_assert_eq(h_stats(&h).timeouts[HK_TIMEOUT_HANDSHAKE], 1);
}

Test(timeouts, handshake_timeout_is_configurable)
{
    hk_config c;
    hk_config_defaults(&c);
    c.handshake_timeout = HK_MILLIS(2500);
    start(&c);
    hk_time t = t0();
    h_accept(&h, 0, 1 << 20);
    closed_exactly_at(0, t + HK_MILLIS(2500));
}

Test(timeouts, idle_and_keepalives)
{
    start(NULL);
    hk_time t = t0();
    h_connect(&h, 0, true, false);
    /* our keep-alive after 90 s of our silence, not before */
    until(t + HK_SECONDS(90) - NS1);
    cr_assert_eq(h_count(&h, 0, WIRE_KEEPALIVE), 0);
    until(t + HK_SECONDS(90));
    cr_assert_eq(h_count(&h, 0, WIRE_KEEPALIVE), 1);
    /* the peer's silence: closed at 120 s */
    closed_exactly_at(0, t + HK_SECONDS(120));
    cr_assert_eq(h_stats(&h).timeouts[HK_TIMEOUT_IDLE], 1);
    cr_assert_geq(fr_find_log(h.fr, "timeout idle", 0), 0);
}

Test(timeouts, peer_keepalive_resets_idle)
{
    start(NULL);
    hk_time t = t0();
    h_connect(&h, 0, true, false);
    until(t + HK_SECONDS(100));
    peer_keepalive(0);
    until(t + HK_SECONDS(220) - NS1);
    cr_assert_not(fr_closed(h.fr, 0), "a keep-alive every 2 minutes is tolerated (Hekate closed after 60 s)");
    cr_assert_eq(h_count(&h, 0, WIRE_KEEPALIVE), 2, "ours at 90 s and 180 s");
    until(t + HK_SECONDS(220));
    cr_assert(fr_closed(h.fr, 0));
}

Test(timeouts, partial_message_does_not_reset_idle)
{
    start(NULL);
    hk_time t = t0();
    h_connect(&h, 0, true, false);
    until(t + HK_SECONDS(100));
    uint8_t part[3] = {0, 0, 0};
    h_recv(&h, 0, part, 3);
    until(t + HK_SECONDS(120));
    cr_assert(fr_closed(h.fr, 0));
}

Test(timeouts, unchoked_idle_with_a_waiter_chokes)
{
    start_one_slot(NULL);
    hk_time t = t0();
    connect_interested(0);
    connect_interested(1);
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 0);
    until(t + HK_SECONDS(30) - NS1);
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 0);
    until(t + HK_SECONDS(30));
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 1);
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 1);
    cr_assert_eq(h_stats(&h).timeouts[HK_TIMEOUT_UNCHOKED_IDLE], 1);
    cr_assert_eq(h_stats(&h).waiting, 1, "still interested: back in the line");
    cr_assert_not(fr_closed(h.fr, 0));
}

Test(timeouts, unchoked_idle_without_waiters_keeps_the_slot)
{
    start(NULL);
    hk_time t = t0();
    connect_interested(0);
    until(t + HK_SECONDS(30));
    cr_assert_eq(h_stats(&h).timeouts[HK_TIMEOUT_UNCHOKED_IDLE], 1);
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 0);
    cr_assert_eq(h_stats(&h).unchoked, 1);
    until(t + HK_SECONDS(60) - NS1);
    cr_assert_eq(h_stats(&h).timeouts[HK_TIMEOUT_UNCHOKED_IDLE], 1, "restarted at 30 s");
    until(t + HK_SECONDS(60));
    cr_assert_eq(h_stats(&h).timeouts[HK_TIMEOUT_UNCHOKED_IDLE], 2);
}

Test(timeouts, unchoked_idle_counts_from_the_last_block)
{
    start_one_slot(NULL);
    hk_time t = t0();
    connect_interested(0);
    connect_interested(1);
    until(t + HK_SECONDS(20));
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384); /* served at once: the queue is empty again at 20 s */
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1);
    until(t + HK_SECONDS(50) - NS1);
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 0);
    until(t + HK_SECONDS(50));
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 1);
}

Test(timeouts, send_stall)
{
    start(NULL);
    accept_interested(0, 20000); /* room for one block only; the peer never reads again */
    hk_time t = t0();
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    h_block(&h, 0, WIRE_REQUEST, 0, 16384, 16384);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1);
    /* keep the peer otherwise alive */
    until(t + HK_SECONDS(59));
    peer_keepalive(0);
    closed_exactly_at(0, t + HK_SECONDS(60));
    cr_assert_eq(h_stats(&h).timeouts[HK_TIMEOUT_SEND_STALL], 1);
}

Test(timeouts, send_stall_when_room_is_exactly_used_up)
{
    start(NULL);
    accept_interested(0, 16397 + 73 + 5); /* handshake reply + unchoke + one block, to the byte */
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1);
    hk_time t = t0();
    h_block(&h, 0, WIRE_REQUEST, 0, 16384, 16384); /* room is 0: waits, and the stall clock runs */
    until(t + HK_SECONDS(30));
    peer_keepalive(0);
    closed_exactly_at(0, t + HK_SECONDS(60));
    cr_assert_eq(h_stats(&h).timeouts[HK_TIMEOUT_SEND_STALL], 1);
}

Test(timeouts, room_granted_resets_the_stall)
{
    start(NULL);
    accept_interested(0, 20000);
    hk_time t = t0();
    for (uint32_t b = 0; b < 2; b++)
        h_block(&h, 0, WIRE_REQUEST, 0, b * 16384, 16384);
    h_block(&h, 0, WIRE_REQUEST, 1, 0, 16384);
    until(t + HK_SECONDS(50));
    h_room(&h, 0, 20000); /* progress: one more block, then stalled again from 50 s */
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 2);
    until(t + HK_SECONDS(100));
    peer_keepalive(0);
    closed_exactly_at(0, t + HK_SECONDS(110));
    cr_assert_eq(h_stats(&h).timeouts[HK_TIMEOUT_SEND_STALL], 1);
}

Test(timeouts, max_wait)
{
    hk_config c;
    hk_config_defaults(&c);
    c.max_wait = HK_SECONDS(100);
    c.unchoked_idle_timeout = HK_SECONDS(1000);
    start_one_slot(&c);
    hk_time t = t0();
    connect_interested(0);
    connect_interested(1);
    until(t + HK_SECONDS(60));
    peer_keepalive(0);
    peer_keepalive(1);
    closed_exactly_at(1, t + HK_SECONDS(100));
    cr_assert_not(fr_closed(h.fr, 0));
    cr_assert_eq(h_stats(&h).timeouts[HK_TIMEOUT_MAX_WAIT], 1);
    cr_assert_geq(fr_find_log(h.fr, "timeout max-wait", 0), 0);
}

Test(timeouts, max_wait_zero_is_unlimited)
{
    hk_config c;
    hk_config_defaults(&c);
    c.unchoked_idle_timeout = HK_SECONDS(100000);
    start_one_slot(&c);
    hk_time t = t0();
    connect_interested(0);
    connect_interested(1);
    for (int i = 1; i <= 20; i++) {
        until(t + HK_SECONDS(100) * (hk_time)i);
        peer_keepalive(0);
        peer_keepalive(1);
    }
    cr_assert_not(fr_closed(h.fr, 1));
    cr_assert_eq(h_stats(&h).timeouts[HK_TIMEOUT_MAX_WAIT], 0);
}

Test(timeouts, one_wake_for_many_peers)
{
    start(NULL);
    hk_time t = t0();
    for (int i = 0; i < 50; i++) {
        h.fr->now = t + HK_MILLIS(i * 10);
        h_accept(&h, i, 1 << 20);
    }
    cr_assert_eq(h.fr->wake, t + HK_SECONDS(10), "the earliest deadline");
    int wakes = fr_run_until(h.fr, h.s, t + HK_SECONDS(11));
    cr_assert_eq(h_stats(&h).timeouts[HK_TIMEOUT_HANDSHAKE], 50);
    cr_assert_eq(wakes, 50, "one wake-up per distinct deadline");
    for (int i = 0; i < 50; i++)
        cr_assert(fr_closed(h.fr, i));
}

/* A slot freed by a timeout goes to the head of the line before the next deadline of the same wake-up is looked at: a
 * late wake-up that finds the unchoked peer idle for too long and the waiter at its max-wait unchokes the waiter
 * (the slot was its) instead of dropping it too. */
Test(timeouts, slot_freed_by_a_timeout_goes_to_the_line_before_the_next_deadline)
{
    hk_config c;
    hk_config_defaults(&c);
    c.idle_timeout = HK_SECONDS(100);
    c.max_wait = HK_SECONDS(100);
    c.keepalive_interval = HK_SECONDS(1000);
    c.unchoked_idle_timeout = HK_SECONDS(1000);
    start_one_slot(&c);
    hk_time t = t0();
    connect_interested(0); /* unchoked; idle from t: closed at t + 100 s */
    until(t + HK_SECONDS(1));
    connect_interested(1); /* waits from t + 1 s: max-wait at t + 101 s */
    until(t + HK_SECONDS(50));
    peer_keepalive(1); /* peer 1 is not idle before t + 150 s */
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 0);
    h.fr->now = t + HK_SECONDS(102); /* the backend wakes the seeder late: both deadlines are due */
    h.fr->wake = HK_TIME_NEVER;
    hk_seeder_on_wake(h.s);
    cr_assert(fr_closed(h.fr, 0));
    cr_assert_not(fr_closed(h.fr, 1));
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 1);
    cr_assert_eq(h_stats(&h).timeouts[HK_TIMEOUT_IDLE], 1);
    cr_assert_eq(h_stats(&h).timeouts[HK_TIMEOUT_MAX_WAIT], 0);
    cr_assert_eq(h_stats(&h).unchoked, 1);
}

/* ---- Slot squatting (issue 14 item 2): slots go to peers that use them ------------------------------------------ */

/* Defaults (unchoked_grace 2 s, unchoked_stall 10 s) with `slots` unchoke slots. */
static void start_graces(uint32_t slots, uint64_t credit)
{
    hk_config c;
    hk_config_defaults(&c);
    c.max_unchoked = slots;
    c.credit = credit;
    start_with(&c, true);
}

/* Peer c connects and says it is interested `hello` later (its hello round trip: accept to first interested). */
static void connect_hello(int c, hk_time hello)
{
    h_connect(&h, c, true, false);
    until(t0() + hello);
    h_simple(&h, c, WIRE_INTERESTED);
}

Test(timeouts, grace_asked_for_nothing_with_a_waiter_chokes)
{
    start_graces(1, 1 << 20);
    connect_hello(0, HK_MILLIS(500)); /* interested, never requests; a hello of 2 s / 4 or more: the full grace */
    hk_time t = t0();
    connect_interested(1);
    until(t + HK_SECONDS(2) - NS1);
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 0);
    until(t + HK_SECONDS(2)); /* not the 30 s unchoked-idle timeout */
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 1);
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 1);
    cr_assert_eq(h_stats(&h).turns_unused, 1);
    cr_assert_not(fr_closed(h.fr, 0));
    cr_assert_geq(fr_find_log(h.fr, "peer 1: choked (asked for nothing for its grace; slot unused, 1 in a row)", 0), 0);
}

/* A peer that answered the handshake within `hello` gets unchoked_grace / 4 + 4 x hello to ask (issue 14: 10x). */
static void grace_after_hello(hk_time hello, hk_time grace)
{
    start_graces(1, 1 << 20);
    connect_hello(0, hello);
    hk_time t = t0();
    connect_interested(1);
    until(t + grace - NS1);
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 0, "choked before its grace of %llu ms", (unsigned long long)(grace / 1000000));
    until(t + grace);
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 1);
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 1);
}

Test(timeouts, an_instant_hello_gets_a_quarter_of_the_grace)
{
    grace_after_hello(0, HK_MILLIS(500));
}

Test(timeouts, a_hello_of_100_ms_gets_900_ms)
{
    grace_after_hello(HK_MILLIS(100), HK_MILLIS(900));
}

Test(timeouts, a_long_round_trip_gets_the_full_grace)
{
    grace_after_hello(HK_SECONDS(1), HK_SECONDS(2));
}

Test(timeouts, grace_counts_from_the_last_request)
{
    start_graces(1, 1 << 20);
    connect_hello(0, HK_MILLIS(500));
    hk_time t = t0();
    connect_interested(1);
    until(t + HK_SECONDS(1));
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384); /* served at once: idle again from 1 s */
    until(t + HK_SECONDS(3) - NS1);
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 0);
    until(t + HK_SECONDS(3));
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 1);
}

Test(timeouts, an_unused_turn_waits_behind_the_normal_line)
{
    start_graces(1, 16384); /* one block per turn */
    hk_time t = t0();
    connect_interested(0); /* the squatter */
    connect_interested(1);
    until(t + HK_MILLIS(500)); /* instant hello: 2 s / 4 */ /* the squatter's turn is unused: it goes to the low-priority line */
    connect_interested(2); /* joins later than the squatter went back, yet goes first */
    h_block(&h, 1, WIRE_REQUEST, 0, 0, 16384);
    h_block(&h, 1, WIRE_REQUEST, 0, 16384, 16384);
    cr_assert_eq(h_count(&h, 1, WIRE_CHOKE), 1, "peer 1's credit is used up, a normal peer waits");
    cr_assert_eq(h_count(&h, 2, WIRE_UNCHOKE), 1);
    cr_assert_eq(h_count(&h, 0, WIRE_UNCHOKE), 1, "the squatter's only unchoke is its first");
    h_block(&h, 2, WIRE_REQUEST, 1, 0, 16384);
    h_block(&h, 2, WIRE_REQUEST, 1, 16384, 16384);
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 2, "peer 1 (normal again) before the squatter");
    cr_assert_eq(h_count(&h, 0, WIRE_UNCHOKE), 1);
}

Test(timeouts, a_used_turn_is_not_ended_for_a_low_priority_waiter)
{
    start_graces(1, 16384);
    hk_time t = t0();
    connect_interested(0);
    connect_interested(1);
    until(t + HK_MILLIS(500)); /* instant hello: 2 s / 4 */ /* squatter 0 waits in the low line; peer 1 holds the slot */
    h_block(&h, 1, WIRE_REQUEST, 0, 0, 16384);
    h_block(&h, 1, WIRE_REQUEST, 0, 16384, 16384);
    cr_assert_eq(h_count(&h, 1, WIRE_CHOKE), 0, "only a low-priority peer waits: the turn is renewed");
    cr_assert_eq(h_count(&h, 1, WIRE_PIECE), 2);
    cr_assert_eq(h_stats(&h).waiting, 1);
}

Test(timeouts, a_spare_slot_goes_at_once_to_a_newcomer)
{
    start_graces(1, 1 << 20);
    hk_time t = t0();
    connect_interested(0); /* alone: keeps its slot past its grace (spare) */
    until(t + HK_SECONDS(10));
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 0);
    connect_interested(1);
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 1, "preempted in the same event");
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 1);
    cr_assert_eq(h_stats(&h).preemptions, 1);
    /* the squatter, now with a strike, is spare as soon as it is unchoked again with nothing asked */
    h_simple(&h, 1, WIRE_NOT_INTERESTED);
    cr_assert_eq(h_count(&h, 0, WIRE_UNCHOKE), 2);
    connect_interested(2);
    cr_assert_eq(h_count(&h, 2, WIRE_UNCHOKE), 1);
    cr_assert_eq(h_stats(&h).preemptions, 2);
}

Test(timeouts, a_requesting_peer_is_not_spare)
{
    start_graces(1, 1 << 20);
    connect_hello(0, HK_MILLIS(500)); /* the full 2 s grace */
    hk_time t = t0();
    until(t + HK_SECONDS(10)); /* spare */
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384); /* uses its slot again */
    connect_interested(1);
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 0);
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 0);
    until(t + HK_SECONDS(12)); /* its new grace, from the request at 10 s */
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 1);
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 1);
}

/* A non-reader fills its send buffer and never drains it: nothing read since the unchoke, so its stall gets the
 * (idle) grace, not unchoked_stall: here 2 s / 4 with an instant hello. */
Test(timeouts, a_non_reader_that_never_read_loses_its_turn_on_the_grace)
{
    start_graces(1, 1 << 20);
    accept_interested(0, 20000); /* room for one block; it never reads */
    hk_time t = t0();
    connect_interested(1);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    h_block(&h, 0, WIRE_REQUEST, 0, 16384, 16384); /* waits for room: stalled from now */
    until(t + HK_MILLIS(500) - NS1);
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 0);
    until(t + HK_MILLIS(500));
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 1);
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 1);
    cr_assert_not(fr_closed(h.fr, 0));
}

/* A slow reader (it drained some of its buffer in this turn) keeps unchoked_stall for its next stall. */
Test(timeouts, a_non_reader_loses_its_turn_on_the_unchoked_stall)
{
    start_graces(1, 1 << 20);
    accept_interested(0, 20000); /* room for one block */
    connect_interested(1);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    h_block(&h, 0, WIRE_REQUEST, 0, 16384, 16384); /* waits for room: stalled */
    h_room(&h, 0, 20000); /* it read: the second block goes out */
    h_block(&h, 0, WIRE_REQUEST, 1, 0, 16384);
    h_block(&h, 0, WIRE_REQUEST, 1, 16384, 16384); /* stalled again from now; it never reads again */
    hk_time t = t0();
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 2);
    until(t + HK_SECONDS(10) - NS1);
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 0);
    until(t + HK_SECONDS(10)); /* not the 60 s send-stall close */
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 1);
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 1);
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 2, "its two queued requests are answered by the choke");
    cr_assert_eq(h_stats(&h).queued_requests, 0);
    cr_assert_not(fr_closed(h.fr, 0));
}

/* Ten times as many squatters as slots, then a leecher: once every squatter has had one unused turn (ceil(50 / 5)
 * rounds of their grace, 2 s / 4 after an instant hello) the leecher is unchoked the moment it is interested, and
 * keeps its slot while only squatters wait. Arriving together with them, it waits at most those rounds. The leecher
 * requests within 10 ms of its unchoke. */
static void squatters_then_leecher(hk_time leecher_at, hk_time unchoked_by)
{
    start_graces(5, 16384);
    hk_time t = t0();
    for (int c = 0; c < 50; c++)
        connect_interested(c);
    until(t + leecher_at);
    connect_interested(50);
    while (h_count(&h, 50, WIRE_UNCHOKE) == 0 && t0() < t + unchoked_by)
        until(t0() + HK_MILLIS(10));
    cr_assert_eq(h_count(&h, 50, WIRE_UNCHOKE), 1, "the leecher is unchoked by %llu ms",
                 (unsigned long long)(unchoked_by / 1000000));
    for (uint32_t b = 0; b < 6; b++)
        h_block(&h, 50, WIRE_REQUEST, b / 2, (b % 2) * 16384, 16384);
    cr_assert_eq(h_count(&h, 50, WIRE_PIECE), 6, "six turns of one block in a row: squatters do not end them");
    cr_assert_eq(h_count(&h, 50, WIRE_CHOKE), 0);
    cr_assert_eq(h_stats(&h).unchoked, 5);
}

Test(timeouts, squatters_at_ten_times_the_slots_then_a_leecher)
{
    squatters_then_leecher(HK_SECONDS(30), HK_SECONDS(30));
    cr_assert_geq(h_stats(&h).preemptions, 1);
}

Test(timeouts, a_leecher_arriving_with_ten_times_the_slots_in_squatters)
{
    squatters_then_leecher(NS1, HK_SECONDS(5) + NS1); /* 20 s with the full grace for everyone */
}

/* Found by fuzz_seeder: a non-reader whose stall grace already fired (spare, nobody waiting) sends another request.
 * That does not make its slot used: no wake-up in the past, and a newcomer still takes the slot at once. */
Test(timeouts, a_stalled_spare_peer_that_requests_stays_spare)
{
    start_graces(1, 1 << 20);
    accept_interested(0, 20000);
    hk_time t = t0();
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    h_block(&h, 0, WIRE_REQUEST, 0, 16384, 16384); /* stalled from t */
    until(t + HK_SECONDS(10)); /* its stall grace: spare (nobody waits) */
    until(t + HK_SECONDS(20));
    h_block(&h, 0, WIRE_REQUEST, 1, 0, 16384);
    cr_assert(h.fr->wake == HK_TIME_NEVER || h.fr->wake >= h.fr->now, "a wake-up in the past");
    connect_interested(1);
    cr_assert_eq(h_count(&h, 1, WIRE_UNCHOKE), 1, "the non-reader's slot goes to the newcomer");
    cr_assert_eq(h_count(&h, 0, WIRE_CHOKE), 1);
    cr_assert_eq(h_stats(&h).preemptions, 1);
}
