/* test_id_set: the bit set of dense ids (core/id_set.h): membership, counts, next-member search across words,
 * growth, the id bound, and the accounting of its bytes through hk_mem. */
#include <criterion/criterion.h>

#include "id_set.h"

Test(id_set, add_remove_has_count)
{
    hk_mem mem = { 0 };
    hk_id_set s;
    hk_id_set_init(&s);
    cr_assert(!hk_id_set_has(&s, 0));
    cr_assert_eq(hk_id_set_next(&s, 0), HK_ID_NONE);
    cr_assert_eq(hk_id_set_add(&s, &mem, 5), 0);
    cr_assert_eq(hk_id_set_add(&s, &mem, 5), 1);
    cr_assert_eq(hk_id_set_add(&s, &mem, 700), 0);
    cr_assert_eq(hk_id_set_count(&s), 2);
    cr_assert(hk_id_set_has(&s, 5) && hk_id_set_has(&s, 700) && !hk_id_set_has(&s, 6) && !hk_id_set_has(&s, 99999));
    cr_assert(hk_id_set_remove(&s, 5));
    cr_assert(!hk_id_set_remove(&s, 5));
    cr_assert(!hk_id_set_remove(&s, 123456));
    cr_assert_eq(hk_id_set_count(&s), 1);
    cr_assert_eq(mem.bytes, hk_id_set_bytes(&s));
    hk_id_set_free(&s, &mem);
    cr_assert_eq(mem.bytes, 0);
    cr_assert_eq(hk_id_set_count(&s), 0);
}

Test(id_set, next_walks_members_in_order_across_words)
{
    hk_mem mem = { 0 };
    hk_id_set s;
    hk_id_set_init(&s);
    const uint32_t ids[] = { 0, 1, 63, 64, 127, 128, 1000, 4095, 70000 };
    for (size_t i = sizeof ids / sizeof *ids; i-- > 0;) /* added backwards: order is by id, not by insertion */
        cr_assert_eq(hk_id_set_add(&s, &mem, ids[i]), 0);
    uint32_t at = 0;
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        uint32_t id = hk_id_set_next(&s, at);
        cr_assert_eq(id, ids[i], "member %zu: %u, expected %u", i, id, ids[i]);
        at = id + 1;
    }
    cr_assert_eq(hk_id_set_next(&s, at), HK_ID_NONE);
    cr_assert_eq(hk_id_set_next(&s, 65), 127);
    cr_assert_eq(hk_id_set_next(&s, 4096), 70000);
    cr_assert_eq(hk_id_set_next(&s, HK_ID_NONE), HK_ID_NONE);
    hk_id_set_free(&s, &mem);
}

Test(id_set, bounded_ids_and_failed_growth_leave_it_unchanged)
{
    hk_mem mem = { 0 };
    hk_id_set s;
    hk_id_set_init(&s);
    cr_assert_eq(hk_id_set_add(&s, &mem, HK_ID_SET_MAX), -1);
    cr_assert_eq(hk_id_set_add(&s, &mem, HK_ID_NONE), -1);
    cr_assert_eq(hk_id_set_count(&s), 0);
    cr_assert_eq(hk_id_set_add(&s, &mem, HK_ID_SET_MAX - 1), 0); /* the largest id: 32 MiB of bits */
    cr_assert_eq(hk_id_set_next(&s, 0), HK_ID_SET_MAX - 1);
    cr_assert_leq(hk_id_set_bytes(&s), (size_t)HK_ID_SET_MAX / 8 + (size_t)HK_ID_SET_MAX / 64);
    hk_id_set_free(&s, &mem);
}

Test(id_set, dense_ids_cost_one_bit_each_plus_an_eighth)
{
    hk_mem mem = { 0 };
    hk_id_set s;
    hk_id_set_init(&s);
    for (uint32_t id = 0; id < 1000000; id++)
        cr_assert_eq(hk_id_set_add(&s, &mem, id), 0);
    cr_assert_eq(hk_id_set_count(&s), 1000000);
    cr_assert_leq(hk_id_set_bytes(&s), 1000000 / 8 * 9 / 8 + 64);
    hk_id_set_free(&s, &mem);
}
