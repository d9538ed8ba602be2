/* test_containers: the shared containers of core/ (list.h, hash.h, ih_index) against reference models. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "ih_index.h"
#include "list.h"

typedef struct item {
    int value;
    hk_list node;
} item;

static int values(const hk_list *head, int *out, int max)
{
    int n = 0;
    hk_list *pos;
    HK_LIST_FOREACH(pos, head)
    {
        if (n < max)
            out[n] = HK_LIST_ENTRY(pos, item, node)->value;
        n++;
    }
    return n;
}

Test(list, fifo_lifo_remove_and_detached_nodes)
{
    hk_list head;
    hk_list_init(&head);
    cr_assert(hk_list_empty(&head));
    cr_assert_null(hk_list_first(&head));
    item it[5];
    for (int i = 0; i < 5; i++) {
        it[i].value = i;
        hk_list_init(&it[i].node);
        cr_assert_not(hk_list_linked(&it[i].node));
    }
    hk_list_insert_tail(&head, &it[1].node);
    hk_list_insert_tail(&head, &it[2].node);
    hk_list_insert_head(&head, &it[0].node);
    hk_list_insert_after(&it[1].node, &it[3].node); /* 0 1 3 2 */
    hk_list_insert_after(&it[2].node, &it[4].node); /* 0 1 3 2 4 */
    int v[8];
    cr_assert_eq(values(&head, v, 8), 5);
    int want[] = { 0, 1, 3, 2, 4 };
    cr_assert_arr_eq(v, want, sizeof want);
    cr_assert_eq(hk_list_first(&head), &it[0].node);
    cr_assert_eq(hk_list_last(&head), &it[4].node);
    cr_assert_null(hk_list_next(&head, &it[4].node));
    cr_assert_eq(hk_list_next(&head, &it[1].node), &it[3].node);

    hk_list_remove(&it[3].node);
    cr_assert_not(hk_list_linked(&it[3].node));
    hk_list_remove(&it[3].node); /* detached: no-op */
    hk_list_move_tail(&head, &it[0].node); /* 1 2 4 0 */
    int want2[] = { 1, 2, 4, 0 };
    cr_assert_eq(values(&head, v, 8), 4);
    cr_assert_arr_eq(v, want2, sizeof want2);

    hk_list *pos, *tmp;
    HK_LIST_FOREACH_SAFE(pos, tmp, &head)
    {
        if (HK_LIST_ENTRY(pos, item, node)->value % 2 == 0)
            hk_list_remove(pos);
    }
    cr_assert_eq(values(&head, v, 8), 1);
    cr_assert_eq(v[0], 1);
    hk_list_remove(&it[1].node);
    cr_assert(hk_list_empty(&head));
}

Test(hash, fixed_values)
{
    /* The outputs are part of the contract (tables and event logs depend on them). */
    cr_assert_eq(hk_fnv1a32_str(""), 2166136261u);
    cr_assert_eq(hk_fnv1a32_str("a"), 0xe40c292cu);
    cr_assert_eq(hk_fnv1a32_str("foobar"), 0xbf9cf968u);
    cr_assert_eq(hk_fnv1a32_u32(HK_FNV1A32_INIT, 0), 0x050c5d1fu);
    cr_assert_eq(hk_fnv1a64_str("a"), 0xaf63dc4c8601ec8cull);
    uint64_t st = 0;
    cr_assert_eq(hk_splitmix64(&st), 0xe220a8397b1dcdafull);
    cr_assert_eq(hk_splitmix64(&st), 0x6e789e6aa1b965f4ull);
    cr_assert_neq(hk_mix64(1), hk_mix64(2));
}

#define NREC 5000

typedef struct owner {
    uint8_t keys[NREC][20];
} owner;

static const uint8_t *key_of(const void *o, uint32_t rec)
{
    return ((const owner *)o)->keys[rec];
}

static void make_key(uint8_t k[20], uint32_t i)
{
    memset(k, 0, 20);
    memcpy(k + 16, &i, 4); /* patterned: only the last bytes differ (the mixer must still spread them) */
    k[0] = (uint8_t)(i % 3);
}

Test(ih_index, against_a_reference_array_with_shrink)
{
    static owner o;
    static bool in[NREC];
    memset(in, 0, sizeof in);
    hk_mem mem = { 0 };
    hk_ih_index ix;
    hk_ih_init(&ix, &mem, 16, true, key_of, &o);
    for (uint32_t i = 0; i < NREC; i++)
        make_key(o.keys[i], i);
    cr_assert_eq(hk_ih_find(&ix, o.keys[0]), HK_IH_NONE);
    cr_assert_eq(hk_ih_remove(&ix, o.keys[0]), HK_IH_NONE);
    uint64_t x = 7;
    uint32_t live = 0;
    for (int step = 0; step < 60000; step++) {
        uint32_t r = (uint32_t)(hk_splitmix64(&x) % NREC);
        bool add = step < 30000 ? (hk_splitmix64(&x) % 4) != 0 : (hk_splitmix64(&x) % 4) == 0;
        if (add && !in[r]) {
            cr_assert_eq(hk_ih_insert(&ix, r), 0);
            in[r] = true;
            live++;
        } else if (!add && in[r]) {
            cr_assert_eq(hk_ih_remove(&ix, o.keys[r]), r);
            in[r] = false;
            live--;
        }
        if (step % 997 == 0)
            for (uint32_t i = 0; i < NREC; i++)
                cr_assert_eq(hk_ih_find(&ix, o.keys[i]), in[i] ? i : HK_IH_NONE, "record %u", i);
        cr_assert_eq(ix.count, live);
        cr_assert(ix.count * 4 <= ix.cap * 3);
    }
    cr_assert_eq(mem.bytes, hk_ih_bytes(&ix));
    for (uint32_t i = 0; i < NREC; i++)
        if (in[i])
            cr_assert_eq(hk_ih_remove(&ix, o.keys[i]), i);
    cr_assert_eq(ix.count, 0);
    cr_assert_eq(ix.cap, 16, "shrinks back to min_cap (got %u)", ix.cap);
    hk_ih_free(&ix);
    cr_assert_eq(mem.bytes, 0);
}

Test(ih_index, without_shrink_keeps_its_capacity)
{
    static owner o;
    hk_mem mem = { 0 };
    hk_ih_index ix;
    hk_ih_init(&ix, &mem, 64, false, key_of, &o);
    for (uint32_t i = 0; i < 100; i++) {
        make_key(o.keys[i], i);
        cr_assert_eq(hk_ih_insert(&ix, i), 0);
    }
    cr_assert_eq(ix.cap, 256); /* 64 -> 128 at 49 records, -> 256 at 97 */
    for (uint32_t i = 0; i < 100; i++)
        cr_assert_eq(hk_ih_remove(&ix, o.keys[i]), i);
    cr_assert_eq(ix.cap, 256);
    hk_ih_free(&ix);
    cr_assert_eq(mem.bytes, 0);
}

Test(build, asserts_are_live_where_promised)
{
#if defined(HEKATE_ASSERTS_ON) && defined(NDEBUG)
    cr_fail("HEKATE_ASSERTS_ON but NDEBUG is defined: assert() is compiled out");
#endif
}
