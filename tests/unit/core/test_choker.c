/* Unit tests for core/choker: every transition of the credit choker (docs/design.md §5) with explicit times. */
#include <criterion/criterion.h>

#include "choker.h"

#define C 1000u
#define T 300u

static hk_choker ch;
static hk_choke_entry e[8];

static void setup2(void)
{
    hk_choker_init(&ch, 2, C, T);
    for (int i = 0; i < 8; i++)
        hk_choke_entry_init(&e[i]);
}

TestSuite(choker, .init = setup2);

Test(choker, interest_unchokes_while_slots_are_free)
{
    cr_assert(hk_choker_interested(&ch, &e[0], 5));
    cr_assert_eq(e[0].state, HK_CHOKE_UNCHOKED);
    cr_assert_eq(e[0].credit, C);
    cr_assert_eq(e[0].slice_end, 5 + T);
    cr_assert(hk_choker_interested(&ch, &e[1], 6));
    cr_assert_eq(ch.unchoked, 2);
    /* third one waits */
    cr_assert_not(hk_choker_interested(&ch, &e[2], 7));
    cr_assert_eq(e[2].state, HK_CHOKE_WAITING);
    cr_assert_eq(e[2].since, 7);
    cr_assert_eq(ch.waiting, 1);
    cr_assert_eq(hk_choker_position(&ch, &e[2]), 1);
    /* re-declaring interest changes nothing */
    cr_assert(hk_choker_interested(&ch, &e[0], 8));
    cr_assert_not(hk_choker_interested(&ch, &e[2], 8));
    cr_assert_eq(ch.unchoked, 2);
    cr_assert_eq(ch.waiting, 1);
}

Test(choker, no_queue_jumping_when_someone_waits)
{
    hk_choker_interested(&ch, &e[0], 0);
    hk_choker_interested(&ch, &e[1], 0);
    hk_choker_interested(&ch, &e[2], 0); /* waits */
    cr_assert(hk_choker_leave(&ch, &e[0]));
    /* a slot is free but e[2] waits: a newcomer must not take it */
    cr_assert_not(hk_choker_interested(&ch, &e[3], 1));
    cr_assert_eq(hk_choker_position(&ch, &e[3]), 2);
    cr_assert_eq(hk_choker_promote(&ch, 2), &e[2]);
    cr_assert_eq(e[2].state, HK_CHOKE_UNCHOKED);
    cr_assert_eq(e[2].slice_end, 2 + T);
    cr_assert_null(hk_choker_promote(&ch, 2), "slots full again");
    cr_assert_eq(hk_choker_position(&ch, &e[3]), 1);
}

Test(choker, not_interested_frees_the_slot_or_line_place)
{
    hk_choker_interested(&ch, &e[0], 0);
    hk_choker_interested(&ch, &e[1], 0);
    hk_choker_interested(&ch, &e[2], 0);
    hk_choker_interested(&ch, &e[3], 0);
    cr_assert_not(hk_choker_leave(&ch, &e[2]), "leaving the line frees no slot");
    cr_assert_eq(ch.waiting, 1);
    cr_assert_eq(e[2].state, HK_CHOKE_IDLE);
    cr_assert(hk_choker_leave(&ch, &e[1]));
    cr_assert_eq(ch.unchoked, 1);
    cr_assert_eq(hk_choker_promote(&ch, 9), &e[3]);
    cr_assert_eq(ch.waiting, 0);
    cr_assert(hk_list_empty(&ch.line));
    cr_assert_not(hk_choker_leave(&ch, &e[5]), "idle entry: nothing to free");
}

Test(choker, credit_exhaustion_without_waiters_refills_credit_and_slice)
{
    hk_choker_interested(&ch, &e[0], 0);
    cr_assert(hk_choker_may_send(&ch, &e[0], 1, 600));
    hk_choker_charge(&ch, &e[0], 600);
    cr_assert_eq(e[0].credit, 400);
    cr_assert_not(hk_choker_may_send(&ch, &e[0], 2, 600), "block bigger than the credit left");
    cr_assert_eq(hk_choker_turn_over(&ch, &e[0], 50, false), HK_TURN_REFILLED);
    cr_assert_eq(e[0].credit, C);
    cr_assert_eq(e[0].slice_end, 50 + T, "the slice restarts too (the original forgot it)");
    cr_assert(hk_choker_may_send(&ch, &e[0], 51, 600));
    cr_assert_eq(ch.turns, 2u, "the unchoke and the renewed turn (metrics: hekate_choker_turns_total)");
}

Test(choker, credit_exhaustion_with_waiters_requeues_at_the_back)
{
    hk_choker_interested(&ch, &e[0], 0);
    hk_choker_interested(&ch, &e[1], 0);
    hk_choker_interested(&ch, &e[2], 1);
    hk_choker_interested(&ch, &e[3], 2);
    hk_choker_charge(&ch, &e[0], C);
    cr_assert_not(hk_choker_may_send(&ch, &e[0], 3, 1));
    cr_assert_eq(hk_choker_turn_over(&ch, &e[0], 10, false), HK_TURN_REQUEUED);
    cr_assert_eq(e[0].state, HK_CHOKE_WAITING);
    cr_assert_eq(e[0].since, 10);
    cr_assert_eq(hk_choker_position(&ch, &e[0]), 3, "back of the line");
    cr_assert_eq(ch.unchoked, 1);
    cr_assert_eq(ch.turns, 2u, "two unchokes; a turn that ends requeued is not a new turn");
    cr_assert_eq(hk_choker_promote(&ch, 10), &e[2], "the line head gets the slot");
    cr_assert_null(hk_choker_promote(&ch, 10));
}

Test(choker, slice_expiry_without_waiters_refills)
{
    hk_choker_interested(&ch, &e[0], 100);
    cr_assert(hk_choker_may_send(&ch, &e[0], 100 + T - 1, 1));
    cr_assert_not(hk_choker_may_send(&ch, &e[0], 100 + T, 1), "slice over at exactly slice_end");
    cr_assert_eq(hk_choker_turn_over(&ch, &e[0], 100 + T, false), HK_TURN_REFILLED);
    cr_assert_eq(e[0].slice_end, 100 + 2 * T);
    cr_assert(hk_choker_may_send(&ch, &e[0], 100 + T, 1));
}

Test(choker, slice_expiry_with_waiters_requeues)
{
    hk_choker_interested(&ch, &e[0], 0);
    hk_choker_interested(&ch, &e[1], 0);
    hk_choker_interested(&ch, &e[2], 5);
    cr_assert_not(hk_choker_may_send(&ch, &e[1], T, 1));
    cr_assert_eq(hk_choker_turn_over(&ch, &e[1], T, false), HK_TURN_REQUEUED);
    cr_assert_eq(hk_choker_promote(&ch, T), &e[2]);
    cr_assert_eq(hk_choker_position(&ch, &e[1]), 1);
}

Test(choker, line_full_disconnects)
{
    hk_choker_interested(&ch, &e[0], 0);
    hk_choker_interested(&ch, &e[1], 0);
    hk_choker_interested(&ch, &e[2], 0);
    cr_assert_eq(hk_choker_turn_over(&ch, &e[0], 7, true), HK_TURN_DISCONNECT);
    cr_assert_eq(e[0].state, HK_CHOKE_IDLE);
    cr_assert_eq(ch.unchoked, 1);
    cr_assert_eq(ch.waiting, 1);
    cr_assert_not(hk_choker_leave(&ch, &e[0]), "already out: leaving frees nothing");
    cr_assert_eq(ch.unchoked, 1);
    cr_assert_eq(hk_choker_promote(&ch, 7), &e[2]);
}

Test(choker, line_full_without_waiters_still_refills)
{
    hk_choker_interested(&ch, &e[0], 0);
    cr_assert_eq(hk_choker_turn_over(&ch, &e[0], 7, true), HK_TURN_REFILLED);
}

Test(choker, no_slice_means_no_time_limit)
{
    hk_choker_init(&ch, 1, C, 0);
    hk_choker_interested(&ch, &e[0], 0);
    cr_assert_eq(e[0].slice_end, HK_TIME_NEVER);
    cr_assert(hk_choker_may_send(&ch, &e[0], HK_TIME_NEVER - 1, C));
}

Test(choker, slice_end_saturates)
{
    hk_choker_interested(&ch, &e[0], HK_TIME_NEVER - 10);
    cr_assert_eq(e[0].slice_end, HK_TIME_NEVER);
}

Test(choker, only_unchoked_entries_may_send)
{
    hk_choker_interested(&ch, &e[0], 0);
    hk_choker_interested(&ch, &e[1], 0);
    hk_choker_interested(&ch, &e[2], 0);
    cr_assert_not(hk_choker_may_send(&ch, &e[2], 0, 1));
    cr_assert_not(hk_choker_may_send(&ch, &e[3], 0, 1));
}

Test(choker, fifo_order_over_many_rotations)
{
    hk_choker_init(&ch, 1, C, T);
    for (int i = 0; i < 5; i++)
        hk_choker_interested(&ch, &e[i], 0);
    /* each turn-over sends the holder to the back; the slot passes 0,1,2,3,4,0,1,... */
    int holder = 0;
    for (int round = 1; round <= 12; round++) {
        cr_assert_eq(hk_choker_turn_over(&ch, &e[holder], (hk_time)round, false), HK_TURN_REQUEUED);
        hk_choke_entry *n = hk_choker_promote(&ch, (hk_time)round);
        cr_assert_eq(n, &e[round % 5]);
        holder = round % 5;
        cr_assert_eq(ch.unchoked, 1);
        cr_assert_eq(ch.waiting, 4);
    }
    cr_assert_eq(hk_choke_state_name(HK_CHOKE_WAITING)[0], 'w');
}

/* ---- Slot squatting (issue 14 item 2) ---- */

Test(choker, an_unused_turn_strikes_and_waits_in_the_low_line)
{
    hk_choker_interested(&ch, &e[0], 0);
    hk_choker_interested(&ch, &e[1], 0);
    hk_choker_interested(&ch, &e[2], 0); /* waits, normal */
    cr_assert_eq(hk_choker_turn_unused(&ch, &e[0], 5, false), HK_TURN_REQUEUED);
    cr_assert_eq(e[0].strikes, 1);
    cr_assert(e[0].low);
    cr_assert_eq(ch.waiting, 2);
    cr_assert_eq(ch.waiting_low, 1);
    cr_assert_eq(hk_choker_position(&ch, &e[0]), 2, "the low line comes after the normal one");
    hk_choker_interested(&ch, &e[3], 6); /* later, but normal: ahead of the struck one */
    cr_assert_eq(hk_choker_position(&ch, &e[3]), 2);
    cr_assert_eq(hk_choker_position(&ch, &e[0]), 3);
    cr_assert_eq(hk_choker_promote(&ch, 6), &e[2]);
    cr_assert_eq(hk_choker_turn_over(&ch, &e[1], 7, false), HK_TURN_REQUEUED); /* a normal one waits */
    cr_assert_eq(hk_choker_promote(&ch, 7), &e[3]);
    /* only the struck peer waits now: a used turn is renewed, an unused one is not */
    cr_assert_eq(hk_choker_turn_over(&ch, &e[2], 8, false), HK_TURN_REQUEUED, "e[1] waits (normal)");
    cr_assert_eq(hk_choker_promote(&ch, 8), &e[1]);
    cr_assert_eq(ch.waiting, 2); /* e[0] low, e[2] normal */
    cr_assert_eq(hk_choker_promote(&ch, 8), NULL);
}

Test(choker, a_used_turn_ignores_low_waiters_and_clears_strikes)
{
    hk_choker_init(&ch, 1, C, T);
    hk_choker_interested(&ch, &e[0], 0);
    hk_choker_interested(&ch, &e[1], 0);
    cr_assert_eq(hk_choker_turn_unused(&ch, &e[0], 1, false), HK_TURN_REQUEUED);
    cr_assert_eq(hk_choker_promote(&ch, 1), &e[1]);
    cr_assert_eq(hk_choker_turn_over(&ch, &e[1], 2, false), HK_TURN_REFILLED, "only a low-priority peer waits");
    cr_assert_eq(hk_choker_turn_unused(&ch, &e[1], 3, false), HK_TURN_REQUEUED, "an unused turn goes to anyone");
    cr_assert_eq(hk_choker_promote(&ch, 3), &e[0]);
    cr_assert_eq(hk_choker_turn_over(&ch, &e[0], 4, false), HK_TURN_REFILLED, "only e[1] (1 strike) waits");
    cr_assert_eq(e[0].strikes, 0, "a used turn clears the strikes");
    hk_choker_interested(&ch, &e[2], 5);
    cr_assert_eq(hk_choker_turn_over(&ch, &e[0], 6, false), HK_TURN_REQUEUED, "a normal peer waits");
    cr_assert_not(e[0].low, "normal again");
    cr_assert_eq(hk_choker_promote(&ch, 6), &e[2]);
    cr_assert_eq(hk_choker_turn_over(&ch, &e[2], 7, false), HK_TURN_REQUEUED);
    cr_assert_eq(hk_choker_promote(&ch, 7), &e[0], "ahead of e[1], which waited longer with a strike");
}

Test(choker, a_spare_slot_is_preempted_for_the_normal_line_only)
{
    hk_choker_init(&ch, 1, C, T);
    hk_turn_result r;
    hk_choker_interested(&ch, &e[0], 0);
    hk_choker_set_spare(&ch, &e[0], true);
    cr_assert(hk_choker_is_spare(&e[0]));
    cr_assert_null(hk_choker_preempt(&ch, 1, false, &r), "nobody waits");
    hk_choker_interested(&ch, &e[1], 1);
    cr_assert_eq(hk_choker_preempt(&ch, 1, false, &r), &e[0]);
    cr_assert_eq(r, HK_TURN_REQUEUED);
    cr_assert_not(hk_choker_is_spare(&e[0]));
    cr_assert_eq(hk_choker_promote(&ch, 1), &e[1]);
    hk_choker_set_spare(&ch, &e[1], true);
    cr_assert_null(hk_choker_preempt(&ch, 2, false, &r), "only a low-priority peer waits");
    hk_choker_set_spare(&ch, &e[1], false);
    cr_assert_not(hk_choker_is_spare(&e[1]));
    cr_assert(hk_choker_leave(&ch, &e[1]));
    cr_assert_eq(hk_choker_promote(&ch, 3), &e[0]);
    hk_choker_set_spare(&ch, &e[0], true);
    cr_assert(hk_choker_leave(&ch, &e[0]));
    cr_assert_not(hk_choker_is_spare(&e[0]), "leaving unlinks a spare entry");
    hk_choker_set_spare(&ch, &e[2], true);
    cr_assert_not(hk_choker_is_spare(&e[2]), "only an unchoked peer can be spare");
}

Test(choker, preempting_when_connections_are_full_disconnects)
{
    hk_choker_init(&ch, 1, C, T);
    hk_turn_result r;
    hk_choker_interested(&ch, &e[0], 0);
    hk_choker_set_spare(&ch, &e[0], true);
    hk_choker_interested(&ch, &e[1], 1);
    cr_assert_eq(hk_choker_preempt(&ch, 1, true, &r), &e[0]);
    cr_assert_eq(r, HK_TURN_DISCONNECT);
    cr_assert_eq(e[0].state, HK_CHOKE_IDLE);
    cr_assert_eq(ch.unchoked, 0);
}

/* Slot squatting at 10x (issue 14 item 2): a peer's grace is full / 4 + 4 x its hello, at most full. */
Test(choker, grace_follows_the_hello)
{
    const hk_time full = HK_SECONDS(2);
    hk_choke_entry g;
    hk_choke_entry_init(&g);
    cr_assert_eq(hk_choker_grace(&g, full), full, "hello unknown: the full grace");
    hk_choker_set_hello(&g, 0);
    cr_assert_eq(hk_choker_grace(&g, full), full / 4, "instant hello: a quarter");
    hk_choker_set_hello(&g, HK_SECONDS(1)); /* the first hello is kept */
    cr_assert_eq(hk_choker_grace(&g, full), full / 4);
    hk_choke_entry_init(&g);
    hk_choker_set_hello(&g, 100 * 1000000ull);
    cr_assert_eq(hk_choker_grace(&g, full), 900 * 1000000ull, "100 ms: 500 + 400 ms");
    hk_choke_entry_init(&g);
    hk_choker_set_hello(&g, 375 * 1000000ull);
    cr_assert_eq(hk_choker_grace(&g, full), full, "375 ms or more: the full grace");
    hk_choke_entry_init(&g);
    hk_choker_set_hello(&g, HK_SECONDS(100000)); /* saturates, still known */
    cr_assert_eq(hk_choker_grace(&g, full), full);
    cr_assert_neq(g.hello_us, HK_HELLO_UNKNOWN);
}
