/* Unit tests for core/token_bucket: starts full, exact integer refill (often or seldom: the same tokens), the burst
 * bound, all-or-nothing takes, the time at which n tokens exist, rate changes, clamping, and no overflow at the
 * limits. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "token_bucket.h"

#define S HK_NS_PER_SEC

Test(token_bucket, starts_full_and_takes_all_or_nothing)
{
    hk_token_bucket b;
    hk_tb_init(&b, 1000, 500, 0);
    cr_assert_eq(b.tokens, 500);
    cr_assert(hk_tb_take(&b, 300));
    cr_assert_not(hk_tb_take(&b, 201), "a take larger than what is held takes nothing");
    cr_assert_eq(b.tokens, 200);
    cr_assert(hk_tb_take(&b, 200));
    cr_assert_eq(b.tokens, 0);
}

Test(token_bucket, refills_at_its_rate_up_to_the_burst)
{
    hk_token_bucket b;
    hk_tb_init(&b, 1000, 5000, 0);
    cr_assert(hk_tb_take(&b, 5000));
    hk_tb_refill(&b, S / 2);
    cr_assert_eq(b.tokens, 500);
    hk_tb_refill(&b, 2 * S);
    cr_assert_eq(b.tokens, 2000);
    hk_tb_refill(&b, 100 * S);
    cr_assert_eq(b.tokens, 5000, "never above the burst");
    hk_tb_refill(&b, 50 * S);
    cr_assert_eq(b.tokens, 5000, "time going backwards adds and removes nothing");
}

Test(token_bucket, refilling_often_or_seldom_gives_the_same_tokens)
{
    /* 3 bytes/s: a token every 333,333,333.33 ns; the fractions must carry exactly */
    hk_token_bucket often, seldom;
    hk_tb_init(&often, 3, 1000, 0);
    hk_tb_init(&seldom, 3, 1000, 0);
    cr_assert(hk_tb_take(&often, 1000));
    cr_assert(hk_tb_take(&seldom, 1000));
    for (hk_time t = 7; t <= 10 * S; t += 7777777)
        hk_tb_refill(&often, t);
    hk_tb_refill(&often, 10 * S);
    hk_tb_refill(&seldom, 10 * S);
    cr_assert_eq(often.tokens, 30);
    cr_assert_eq(seldom.tokens, 30);
    cr_assert_eq(often.frac, seldom.frac);
}

Test(token_bucket, time_for_is_the_first_instant_with_enough_tokens)
{
    hk_token_bucket b;
    hk_tb_init(&b, 163970, 16480, 0);
    cr_assert(hk_tb_take(&b, 16397));
    cr_assert_eq(b.tokens, 83);
    hk_time at = hk_tb_time_for(&b, 16397);
    /* ceil(16314 * 1e9 / 163970) */
    cr_assert_eq(at, 99493810ull);
    hk_token_bucket early = b, exact = b;
    hk_tb_refill(&early, at - 1);
    cr_assert_lt(early.tokens, 16397, "one nanosecond earlier is not enough");
    hk_tb_refill(&exact, at);
    cr_assert_geq(exact.tokens, 16397);
    cr_assert_eq(hk_tb_time_for(&exact, 16397), exact.at, "already enough: now");
    cr_assert_eq(hk_tb_time_for(&b, 1u << 30), hk_tb_time_for(&b, 16480), "more than the burst counts as the burst");
}

Test(token_bucket, set_changes_the_rate_from_now_on)
{
    hk_token_bucket b;
    hk_tb_init(&b, 1000, 10000, 0);
    cr_assert(hk_tb_take(&b, 10000));
    hk_tb_set(&b, 4000, 10000, S); /* 1000 earned at the old rate */
    cr_assert_eq(b.tokens, 1000);
    hk_tb_refill(&b, 2 * S);
    cr_assert_eq(b.tokens, 5000);
    hk_tb_set(&b, 4000, 2000, 2 * S);
    cr_assert_eq(b.tokens, 2000, "tokens above the new burst are lost");
}

Test(token_bucket, clamps_and_does_not_overflow_at_the_limits)
{
    hk_token_bucket b;
    hk_tb_init(&b, 0, 0, 0);
    cr_assert_eq(b.rate, 1);
    cr_assert_eq(b.burst, 1);
    hk_tb_init(&b, UINT64_MAX, UINT64_MAX, 0);
    cr_assert_eq(b.rate, HK_TB_RATE_MAX);
    cr_assert_eq(b.burst, HK_TB_BURST_MAX);
    cr_assert(hk_tb_take(&b, HK_TB_BURST_MAX));
    hk_tb_refill(&b, S - 1); /* the largest remainder times the largest rate */
    cr_assert_eq(b.tokens, (HK_TB_RATE_MAX * (S - 1)) / S);
    hk_tb_refill(&b, HK_TIME_NEVER - 1);
    cr_assert_eq(b.tokens, HK_TB_BURST_MAX);
    cr_assert(hk_tb_take(&b, HK_TB_BURST_MAX));
    hk_time at = hk_tb_time_for(&b, HK_TB_BURST_MAX);
    cr_assert_eq(at, HK_TIME_NEVER - 1, "saturates instead of wrapping");
    /* a slow bucket far from full: a huge elapsed time fills it without overflow */
    hk_tb_init(&b, 1, HK_TB_BURST_MAX, 0);
    cr_assert(hk_tb_take(&b, HK_TB_BURST_MAX));
    hk_tb_refill(&b, 1000 * S);
    cr_assert_eq(b.tokens, 1000);
    hk_tb_refill(&b, HK_TIME_NEVER - 1); /* 1.8e10 s at 1 B/s: more than the 2^34 burst */
    cr_assert_eq(b.tokens, HK_TB_BURST_MAX);
}
