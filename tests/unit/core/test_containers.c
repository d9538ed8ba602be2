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
    /* patterned: only a few bytes differ (the mixer must still spread them). Bytes 12 to 15, as hk_mix_info_hash
     * folds the first 16 only: at 16 to 19 (as before) every key had one of 3 homes, so the test probed runs of
     * thousands of records and left the table's spreading untested. */
    memcpy(k + 12, &i, 4);
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
    cr_assert_eq(ix.cap, 144); /* 64 -> 96 at 49 records, -> 144 at 73 */
    for (uint32_t i = 0; i < 100; i++)
        cr_assert_eq(hk_ih_remove(&ix, o.keys[i]), i);
    cr_assert_eq(ix.cap, 144);
    hk_ih_free(&ix);
    cr_assert_eq(mem.bytes, 0);
}

/* The home slot of a key in a table of cap slots (ih_index.h: multiply-shift). */
static uint32_t home_of(const uint8_t key[20], uint32_t cap)
{
    return (uint32_t)(((uint64_t)hk_mix_info_hash(key) * cap) >> 32);
}

/* The linear-probing invariant: every record is reachable from its home (no empty slot between them, cyclically),
 * and the slots hold exactly count records. */
static void check_structure(const hk_ih_index *ix, const owner *o)
{
    uint32_t n = 0;
    for (uint32_t j = 0; j < ix->cap; j++) {
        if (ix->slots[j] == 0)
            continue;
        n++;
        for (uint32_t i = home_of(o->keys[ix->slots[j] - 1], ix->cap); i != j; i = i + 1 < ix->cap ? i + 1 : 0)
            cr_assert_neq(ix->slots[i], 0, "slot %u empty between the home and slot %u (cap %u)", i, j, ix->cap);
    }
    cr_assert_eq(n, ix->count);
}

/* The reference: a linear scan of the live records. */
static uint32_t ref_find(const owner *o, const bool *in, uint32_t n, const uint8_t key[20])
{
    for (uint32_t i = 0; i < n; i++)
        if (in[i] && memcmp(o->keys[i], key, 20) == 0)
            return i;
    return HK_IH_NONE;
}

Test(ih_index, wrap_around_deletion_at_odd_capacities)
{
    static owner o;
    const uint32_t caps[] = { 5, 7, 13, 31, 97 };
    for (size_t c = 0; c < sizeof caps / sizeof *caps; c++) {
        uint32_t cap = caps[c];
        /* Records whose homes are the last two slots or slot 0, so their probe runs wrap past cap - 1; as many as
         * the table holds without growing (3/4 of cap). */
        uint32_t n = 0, want = cap * 3 / 4;
        for (uint32_t i = 0; n < want; i++) {
            make_key(o.keys[n], i + 100000 * (uint32_t)c);
            uint32_t h = home_of(o.keys[n], cap);
            if (h + 2 >= cap || (h == 0 && n % 3 == 0))
                n++;
        }
        for (uint64_t seed = 1; seed <= 40; seed++) {
            hk_mem mem = { 0 };
            hk_ih_index ix;
            hk_ih_init(&ix, &mem, cap, false, key_of, &o);
            bool in[NREC] = { 0 };
            for (uint32_t i = 0; i < n; i++) {
                cr_assert_eq(hk_ih_insert(&ix, i), 0);
                in[i] = true;
            }
            cr_assert_eq(ix.cap, cap, "no growth at 3/4");
            check_structure(&ix, &o);
            cr_assert(ix.slots[0] != 0, "the runs wrap (cap %u)", cap);
            /* removals in a seeded order, re-inserts now and then; every answer checked against the scan */
            uint64_t x = seed;
            for (int step = 0; step < 4 * (int)n; step++) {
                uint32_t r = (uint32_t)(hk_splitmix64(&x) % n);
                if (in[r]) {
                    cr_assert_eq(hk_ih_remove(&ix, o.keys[r]), r);
                    in[r] = false;
                } else if (hk_splitmix64(&x) % 2) {
                    cr_assert_eq(hk_ih_insert(&ix, r), 0);
                    in[r] = true;
                }
                check_structure(&ix, &o);
                for (uint32_t i = 0; i < n; i++)
                    cr_assert_eq(hk_ih_find(&ix, o.keys[i]), ref_find(&o, in, n, o.keys[i]), "cap %u record %u",
                                 cap, i);
            }
            cr_assert_eq(ix.cap, cap);
            hk_ih_free(&ix);
            cr_assert_eq(mem.bytes, 0);
        }
    }
}

Test(ih_index, growth_and_shrink_sequences_against_a_linear_scan)
{
    static owner o;
    static bool in[NREC];
    for (uint32_t i = 0; i < NREC; i++)
        make_key(o.keys[i], i * 7919u);
    const uint32_t mins[] = { 4, 16, 17, 64 };
    for (size_t m = 0; m < sizeof mins / sizeof *mins; m++) {
        memset(in, 0, sizeof in);
        hk_mem mem = { 0 };
        hk_ih_index ix;
        hk_ih_init(&ix, &mem, mins[m], true, key_of, &o);
        uint64_t x = 11 + m;
        uint32_t live = 0, grows = 0, shrinks = 0;
        /* waves: fill to 4,000, drain to 50, fill to 2,500, drain to 0 */
        const uint32_t targets[] = { 4000, 50, 2500, 0 };
        for (size_t w = 0; w < sizeof targets / sizeof *targets; w++) {
            while (live != targets[w]) {
                uint32_t r = (uint32_t)(hk_splitmix64(&x) % NREC), before = ix.cap;
                bool adding = live < targets[w];
                if (adding == in[r])
                    continue;
                if (adding) {
                    cr_assert_eq(hk_ih_insert(&ix, r), 0);
                    live++;
                    if (before != 0 && ix.cap != before) {
                        grows++;
                        cr_assert_eq(ix.cap, hk_ih_grown_cap(before), "grows by half");
                        cr_assert(ix.count * 2 >= ix.cap - 2, "about half full after growing (%u of %u)", ix.count,
                                  ix.cap);
                    }
                } else {
                    cr_assert_eq(hk_ih_remove(&ix, o.keys[r]), r);
                    live--;
                    if (ix.cap != before) {
                        shrinks++;
                        cr_assert(before > mins[m] && (uint64_t)ix.count * 8 < before);
                        cr_assert_eq(ix.cap, ix.count * 2 > mins[m] ? ix.count * 2 : mins[m], "back to half full");
                    }
                }
                in[r] = adding;
                cr_assert_eq(ix.count, live);
                cr_assert(ix.cap >= mins[m] && (uint64_t)ix.count * 4 <= (uint64_t)ix.cap * 3, "at most 3/4 full");
                cr_assert(ix.cap == mins[m] || (uint64_t)ix.count * 8 >= ix.cap, "at least 1/8 full");
                cr_assert_eq(mem.bytes, hk_ih_bytes(&ix));
                if (ix.cap != before) {
                    check_structure(&ix, &o);
                    for (uint32_t i = 0; i < NREC; i += 97)
                        cr_assert_eq(hk_ih_find(&ix, o.keys[i]), ref_find(&o, in, NREC, o.keys[i]), "record %u", i);
                }
            }
            check_structure(&ix, &o);
            for (uint32_t i = 0; i < NREC; i++)
                cr_assert_eq(hk_ih_find(&ix, o.keys[i]), in[i] ? i : HK_IH_NONE, "record %u", i);
        }
        cr_assert(grows > 10 && shrinks > 3, "%u growths, %u shrinks", grows, shrinks);
        cr_assert_eq(ix.cap, mins[m], "shrinks back to min_cap (got %u)", ix.cap);
        hk_ih_free(&ix);
        cr_assert_eq(mem.bytes, 0);
    }
}

Test(ih_index, capacity_sequence_from_16)
{
    /* ih_index.h: 10^6 records get 1,347,984 slots, 10^5 get 177,513 (the growth rule, not a test of a table). */
    uint32_t cap = 16, at_1e5 = 0, at_1e6 = 0;
    while (cap < 3000000u) {
        uint32_t next = hk_ih_grown_cap(cap);
        cr_assert(next > cap && (uint64_t)next * 2 <= (uint64_t)cap * 3);
        if (!at_1e5 && 100000ull * 4 <= (uint64_t)cap * 3)
            at_1e5 = cap;
        if (!at_1e6 && 1000000ull * 4 <= (uint64_t)cap * 3)
            at_1e6 = cap;
        cap = next;
    }
    cr_assert_eq(at_1e5, 177513);
    cr_assert_eq(at_1e6, 1347984);
}

Test(build, asserts_are_live_where_promised)
{
#if defined(HEKATE_ASSERTS_ON) && defined(NDEBUG)
    cr_fail("HEKATE_ASSERTS_ON but NDEBUG is defined: assert() is compiled out");
#endif
}
