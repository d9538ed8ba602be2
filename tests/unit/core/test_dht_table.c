/* Unit tests for core/dht_table: XOR distance, bucket splitting on our own range only, K nodes per bucket,
 * replacement caches and ping candidates, BEP 5 liveness (good / questionable / bad), closest-node selection,
 * refresh targets inside a bucket's range, and bounded memory under many inserts. */
#include <criterion/criterion.h>
#include <string.h>

#include "dht_table.h"
#include "hash.h"

#define S HK_NS_PER_SEC

static void id_from(uint64_t seed, uint8_t id[20])
{
    for (int i = 0; i < 20; i += 8) {
        uint64_t x = hk_splitmix64(&seed);
        memcpy(id + i, &x, i + 8 <= 20 ? 8 : 4);
    }
}

static hk_addr addr_of(uint32_t n)
{
    hk_addr a = { .family = 4, .ip = { 10, (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n }, .port = 6881 };
    return a;
}

Test(dht_table, distance_and_common_bits)
{
    uint8_t a[20] = { 0 }, b[20] = { 0 }, t[20] = { 0 };
    cr_assert_eq(hk_dht_common_bits(a, b), 160);
    b[0] = 0x10;
    cr_assert_eq(hk_dht_common_bits(a, b), 3);
    b[0] = 0;
    b[19] = 1;
    cr_assert_eq(hk_dht_common_bits(a, b), 159);
    a[0] = 0x01;
    cr_assert_lt(hk_dht_cmp_distance(t, b, a), 0, "b is closer to zero");
    cr_assert_gt(hk_dht_cmp_distance(t, a, b), 0);
    cr_assert_eq(hk_dht_cmp_distance(t, a, a), 0);
}

Test(dht_table, far_buckets_hold_k_and_only_our_range_splits)
{
    hk_mem mem = { 0 };
    hk_dht_table t;
    uint8_t own[20] = { 0 };
    cr_assert_eq(hk_dht_table_init(&t, &mem, own), 0);
    /* 20 nodes all with the top bit set: they share 0 bits with us, bucket 0 must hold 8 and no more */
    unsigned added = 0, repl = 0;
    for (uint32_t i = 0; i < 20; i++) {
        uint8_t id[20];
        id_from(i, id);
        id[0] |= 0x80;
        hk_addr a = addr_of(i);
        hk_dht_insert r = hk_dht_table_replied(&t, id, &a, S, NULL, NULL);
        added += r == HK_DHT_INS_ADDED;
        repl += r == HK_DHT_INS_REPLACEMENT;
    }
    cr_assert_eq(added, 8);
    cr_assert_eq(repl, 12);
    hk_dht_table_stats st;
    hk_dht_table_stats_get(&t, S, &st);
    cr_assert_eq(st.nodes, 8);
    cr_assert_eq(st.replacements, 8, "the replacement cache is bounded by K");
    cr_assert_eq(st.buckets, 2, "the bucket covering our id split once, the far one never");
    hk_dht_table_free(&t);
    cr_assert_eq(mem.bytes, 0);
}

Test(dht_table, own_id_and_address_takeover_are_ignored)
{
    hk_mem mem = { 0 };
    hk_dht_table t;
    uint8_t own[20], id[20];
    id_from(1, own);
    id_from(2, id);
    hk_dht_table_init(&t, &mem, own);
    hk_addr a = addr_of(1), b = addr_of(2);
    cr_assert_eq(hk_dht_table_replied(&t, own, &a, S, NULL, NULL), HK_DHT_INS_IGNORED);
    cr_assert_eq(hk_dht_table_replied(&t, id, &a, S, NULL, NULL), HK_DHT_INS_ADDED);
    cr_assert_eq(hk_dht_table_replied(&t, id, &b, S, NULL, NULL), HK_DHT_INS_IGNORED);
    cr_assert_eq(hk_dht_table_replied(&t, id, &a, 2 * S, NULL, NULL), HK_DHT_INS_UPDATED);
    cr_assert_not(hk_dht_table_queried(&t, id, &b, 3 * S));
    cr_assert(hk_dht_table_queried(&t, id, &a, 3 * S));
    hk_dht_table_free(&t);
}

Test(dht_table, liveness_follows_bep5)
{
    hk_dht_node n = { .last_reply = S };
    cr_assert_eq(hk_dht_node_liveness(&n, S + HK_SECONDS(60)), HK_DHT_GOOD);
    cr_assert_eq(hk_dht_node_liveness(&n, S + HK_SECONDS(16 * 60)), HK_DHT_QUESTIONABLE);
    n.last_query = S + HK_SECONDS(10 * 60);
    cr_assert_eq(hk_dht_node_liveness(&n, S + HK_SECONDS(16 * 60)), HK_DHT_GOOD, "replied once and queried us lately");
    hk_dht_node q = { .last_query = S };
    cr_assert_eq(hk_dht_node_liveness(&q, 2 * S), HK_DHT_QUESTIONABLE, "a query alone is not enough");
    n.fails = HK_DHT_BAD_FAILS;
    cr_assert_eq(hk_dht_node_liveness(&n, S + HK_SECONDS(60)), HK_DHT_BAD);
}

Test(dht_table, a_bad_node_gives_way_to_a_replacement_after_a_ping)
{
    hk_mem mem = { 0 };
    hk_dht_table t;
    uint8_t own[20] = { 0 };
    hk_dht_table_init(&t, &mem, own);
    uint8_t ids[9][20];
    for (uint32_t i = 0; i < 9; i++) {
        id_from(100 + i, ids[i]);
        ids[i][0] |= 0x80;
        hk_addr a = addr_of(i);
        hk_dht_node ping;
        bool has = false;
        hk_time now = i < 8 ? S : HK_SECONDS(20 * 60); /* the ninth comes when the first eight are questionable */
        hk_dht_insert r = hk_dht_table_replied(&t, ids[i], &a, now, &ping, &has);
        if (i == 8) {
            cr_assert_eq(r, HK_DHT_INS_REPLACEMENT);
            cr_assert(has, "a questionable node is offered for a ping");
            hk_dht_table_pinged(&t, ping.id, now);
            cr_assert(hk_dht_table_failed(&t, ping.id, &ping.addr));
            cr_assert(hk_dht_table_failed(&t, ping.id, &ping.addr));
            hk_dht_node out[16];
            size_t n = hk_dht_table_closest(&t, ids[8], now, out, 16);
            bool found = false, old = false;
            for (size_t k = 0; k < n; k++) {
                found |= memcmp(out[k].id, ids[8], 20) == 0;
                old |= memcmp(out[k].id, ping.id, 20) == 0;
            }
            cr_assert(found, "the replacement took the bad node's place");
            cr_assert_not(old);
        }
    }
    hk_dht_table_free(&t);
}

Test(dht_table, closest_are_sorted_and_exact)
{
    hk_mem mem = { 0 };
    hk_dht_table t;
    uint8_t own[20], target[20];
    id_from(7, own);
    id_from(8, target);
    hk_dht_table_init(&t, &mem, own);
    for (uint32_t i = 0; i < 2000; i++) {
        uint8_t id[20];
        id_from(1000 + i, id);
        hk_addr a = addr_of(i);
        hk_dht_table_replied(&t, id, &a, S, NULL, NULL);
    }
    hk_dht_node out[8];
    size_t n = hk_dht_table_closest(&t, target, S, out, 8);
    cr_assert_eq(n, 8);
    for (size_t i = 1; i < n; i++)
        cr_assert_lt(hk_dht_cmp_distance(target, out[i - 1].id, out[i].id), 0);
    /* nothing in the table is closer than the 8th */
    for (unsigned bi = 0; bi < t.nbuckets; bi++)
        for (unsigned k = 0; k < t.buckets[bi].n; k++) {
            bool in = false;
            for (size_t j = 0; j < n; j++)
                in |= memcmp(out[j].id, t.buckets[bi].nodes[k].id, 20) == 0;
            if (!in)
                cr_assert_gt(hk_dht_cmp_distance(target, t.buckets[bi].nodes[k].id, out[7].id), 0);
        }
    hk_dht_table_stats st;
    hk_dht_table_stats_get(&t, S, &st);
    cr_assert_leq(st.nodes, st.buckets * HK_DHT_K);
    cr_assert_lt(st.buckets, 30, "2000 random ids need about log2(2000/8) splits, not more");
    cr_assert_eq(hk_dht_table_bytes(&t), st.buckets * sizeof(hk_dht_bucket));
    hk_dht_table_free(&t);
}

Test(dht_table, bucket_targets_fall_in_their_bucket)
{
    hk_mem mem = { 0 };
    hk_dht_table t;
    uint8_t own[20];
    id_from(3, own);
    hk_dht_table_init(&t, &mem, own);
    for (uint32_t i = 0; i < 500; i++) {
        uint8_t id[20];
        id_from(50 + i, id);
        hk_addr a = addr_of(i);
        hk_dht_table_replied(&t, id, &a, S, NULL, NULL);
    }
    for (unsigned b = 0; b < t.nbuckets; b++) {
        uint8_t rnd[20], id[20];
        id_from(900 + b, rnd);
        hk_dht_table_bucket_target(&t, b, rnd, id);
        unsigned c = hk_dht_common_bits(own, id);
        if (b < t.nbuckets - 1)
            cr_assert_eq(c, b);
        else
            cr_assert_geq(c, b);
    }
    cr_assert_eq(hk_dht_table_stale_bucket(&t, S + HK_SECONDS(10), HK_SECONDS(15 * 60)), -1);
    cr_assert_geq(hk_dht_table_stale_bucket(&t, S + HK_SECONDS(16 * 60), HK_SECONDS(15 * 60)), 0);
    hk_dht_table_free(&t);
}
