/* Unit tests for core/request_queue: FIFO order, cap, rotate, find/remove, tokens, memory release. */
#include <criterion/criterion.h>

#include "request_queue.h"

/* Every test opens one queue and must leave nothing allocated once it is freed. */
static hk_mem m;
static hk_rq_home home = {.mem = &m};
static hk_request_queue q;

static void open_queue(uint32_t max)
{
    hk_rq_init(&q, &home, max);
}

static void teardown(void)
{
    hk_rq_free(&q);
    cr_assert_eq(m.bytes, 0, "%llu bytes left", (unsigned long long)m.bytes);
    cr_assert_eq(home.blocks, 0, "the home's sum of blocks follows the queue down to 0");
}

TestSuite(request_queue, .fini = teardown);

static hk_request blk(uint32_t index, uint32_t begin)
{
    hk_request r = {.index = index, .begin = begin, .length = 16384, .kind = HK_REQ_BLOCK};
    return r;
}

Test(request_queue, fifo_and_cap)
{
    open_queue(5);
    for (uint32_t i = 0; i < 5; i++) {
        hk_request r = blk(i, 0);
        cr_assert(hk_rq_push_back(&q, &r));
    }
    cr_assert(hk_rq_full(&q));
    hk_request extra = blk(99, 0);
    cr_assert_not(hk_rq_push_back(&q, &extra), "full queue refuses, never evicts");
    cr_assert_eq(hk_rq_len(&q), 5);
    for (uint32_t i = 0; i < 5; i++) {
        hk_request out;
        cr_assert(hk_rq_pop_front(&q, &out));
        cr_assert_eq(out.index, i);
    }
    cr_assert_not(hk_rq_pop_front(&q, NULL));
    cr_assert_null(hk_rq_front(&q));
}

Test(request_queue, wraps_around_and_grows_in_order)
{
    open_queue(64);
    uint32_t next_in = 0, next_out = 0;
    for (int round = 0; round < 50; round++) {
        for (int k = 0; k < 3; k++) {
            hk_request r = blk(next_in++, 0);
            cr_assert(hk_rq_push_back(&q, &r));
        }
        hk_request out;
        cr_assert(hk_rq_pop_front(&q, &out));
        cr_assert_eq(out.index, next_out++);
        if (hk_rq_len(&q) > 40) {
            while (hk_rq_pop_front(&q, &out))
                cr_assert_eq(out.index, next_out++);
        }
    }
    cr_assert_leq(q.cap, 64);
}

Test(request_queue, rotate_moves_front_to_back)
{
    open_queue(8);
    for (uint32_t i = 0; i < 3; i++) {
        hk_request r = blk(i, 0);
        hk_rq_push_back(&q, &r);
    }
    hk_rq_rotate(&q);
    cr_assert_eq(hk_rq_at(&q, 0)->index, 1);
    cr_assert_eq(hk_rq_at(&q, 1)->index, 2);
    cr_assert_eq(hk_rq_at(&q, 2)->index, 0);
    cr_assert_null(hk_rq_at(&q, 3));
    hk_rq_clear(&q);
    cr_assert_eq(m.bytes, 0);
    hk_request r = blk(7, 0);
    hk_rq_push_back(&q, &r);
    hk_rq_rotate(&q); /* single entry: no-op */
    cr_assert_eq(hk_rq_front(&q)->index, 7);
}

Test(request_queue, find_and_remove_keep_order)
{
    open_queue(8);
    for (uint32_t i = 0; i < 6; i++) {
        hk_request r = blk(i / 2, (i % 2) * 16384);
        hk_rq_push_back(&q, &r);
    }
    hk_request md = {.index = 0, .begin = 0, .length = 100, .kind = HK_REQ_METADATA};
    hk_rq_push_back(&q, &md);
    cr_assert_eq(hk_rq_count(&q, HK_REQ_BLOCK), 6);
    cr_assert_eq(hk_rq_count(&q, HK_REQ_METADATA), 1);
    cr_assert_eq(hk_rq_find(&q, HK_REQ_BLOCK, 1, 16384, 16384), 3);
    cr_assert_eq(hk_rq_find(&q, HK_REQ_BLOCK, 1, 16384, 100), -1, "length must match");
    cr_assert_eq(hk_rq_find(&q, HK_REQ_METADATA, 0, 0, 100), 6);
    cr_assert_eq(hk_rq_find(&q, HK_REQ_BLOCK, 0, 0, 100), -1, "kind must match");
    hk_request out;
    cr_assert(hk_rq_remove_at(&q, 3, &out));
    cr_assert_eq(out.index, 1);
    cr_assert_eq(out.begin, 16384);
    cr_assert_eq(hk_rq_count(&q, HK_REQ_BLOCK), 5);
    uint32_t expect_idx[] = {0, 0, 1, 2, 2};
    for (uint32_t i = 0; i < 5; i++)
        cr_assert_eq(hk_rq_at(&q, i)->index, expect_idx[i]);
    cr_assert_not(hk_rq_remove_at(&q, 6, NULL));
}

Test(request_queue, tokens)
{
    open_queue(8);
    hk_request a = blk(1, 0), b = blk(2, 0);
    b.token = 42;
    b.state = HK_RQ_LOADING;
    hk_rq_push_back(&q, &a);
    hk_rq_push_back(&q, &b);
    cr_assert_eq(hk_rq_find_token(&q, 42), 1);
    cr_assert_eq(hk_rq_find_token(&q, 0), -1, "token 0 means none");
    cr_assert_eq(hk_rq_find_token(&q, 43), -1);
}

/* kind and state are bit fields (a request stays 32 bytes with its arrival stamp): every value they take is kept. */
Test(request_queue, bit_fields_and_arrival_stamp_kept)
{
    open_queue(8);
    hk_request r = blk(1, 0);
    r.kind = HK_REQ_METADATA;
    r.state = HK_RQ_VERIFYING;
    r.retry = 1;
    r.rate_waited = 1;
    r.arrived = hk_rq_stamp(123456789012ull);
    cr_assert(hk_rq_push_back(&q, &r));
    const hk_request *f = hk_rq_front(&q);
    cr_assert_eq(f->kind, HK_REQ_METADATA);
    cr_assert_eq(f->state, HK_RQ_VERIFYING);
    cr_assert_eq(f->retry, 1);
    cr_assert_eq(f->rate_waited, 1);
    cr_assert_eq(hk_rq_count(&q, HK_REQ_METADATA), 1u);
    /* the age is exact to one tick (16.4 us), also across the stamp's wrap */
    uint64_t age = hk_rq_age(f->arrived, 123456789012ull + 2500000);
    cr_assert(age <= 2500000 + (1u << HK_RQ_TICK_SHIFT) && age + (1u << HK_RQ_TICK_SHIFT) >= 2500000, "%llu",
              (unsigned long long)age);
    uint64_t before_wrap = ((uint64_t)UINT32_MAX << HK_RQ_TICK_SHIFT);
    cr_assert_eq(hk_rq_age(hk_rq_stamp(before_wrap), before_wrap + (10u << HK_RQ_TICK_SHIFT)),
                 10u << HK_RQ_TICK_SHIFT);
}

/* remove_at shifts whichever side is shorter: against a plain array, removing at every position of a ring that has
 * wrapped (head moved by pops and pushes) keeps the others' order, the counts and push/pop working afterwards. */
Test(request_queue, remove_at_every_position_of_a_wrapped_ring)
{
    for (uint32_t len = 1; len <= 9; len++) {
        for (uint32_t at = 0; at < len; at++) {
            open_queue(16);
            uint32_t ref[16], n = 0, next = 0;
            for (uint32_t i = 0; i < 16; i++) { /* grow to 16, then pop 11 and push: the head is at 11 */
                hk_request r = blk(next++, 0);
                cr_assert(hk_rq_push_back(&q, &r));
            }
            for (uint32_t i = 0; i < 16; i++)
                cr_assert(hk_rq_pop_front(&q, NULL));
            for (uint32_t i = 0; i < 11; i++) {
                hk_request r = blk(next++, 0);
                cr_assert(hk_rq_push_back(&q, &r));
                cr_assert(hk_rq_pop_front(&q, NULL));
            }
            for (uint32_t i = 0; i < len; i++) {
                hk_request r = blk(next, 0);
                ref[n++] = next++;
                cr_assert(hk_rq_push_back(&q, &r));
            }
            hk_request out;
            cr_assert(hk_rq_remove_at(&q, at, &out));
            cr_assert_eq(out.index, ref[at], "len %u at %u", len, at);
            for (uint32_t k = at; k + 1 < n; k++)
                ref[k] = ref[k + 1];
            n--;
            hk_request r = blk(next, 0); /* the ring still takes pushes at the right place */
            ref[n++] = next++;
            cr_assert(hk_rq_push_back(&q, &r));
            cr_assert_eq(hk_rq_len(&q), n);
            cr_assert_eq(hk_rq_count(&q, HK_REQ_BLOCK), n);
            for (uint32_t k = 0; k < n; k++)
                cr_assert_eq(hk_rq_at(&q, k)->index, ref[k], "len %u at %u: position %u", len, at, k);
            for (uint32_t k = 0; k < n; k++) {
                cr_assert(hk_rq_pop_front(&q, &out));
                cr_assert_eq(out.index, ref[k]);
            }
            hk_rq_free(&q);
        }
    }
}

/* The index behind hk_rq_find (capacity >= 64) answers what a scan of the queue answers, through pushes, pops,
 * rotations, removals anywhere (both shift directions), wrap-around, growth and duplicate keys. */
static int64_t scan_find(hk_req_kind kind, uint32_t index, uint32_t begin, uint32_t length)
{
    for (uint32_t i = 0; i < hk_rq_len(&q); i++) {
        const hk_request *r = hk_rq_at(&q, i);
        if (r->kind == kind && r->index == index && r->begin == begin && r->length == length)
            return i;
    }
    return -1;
}

static uint32_t lcg(uint64_t *st)
{
    *st = *st * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*st >> 33);
}

Test(request_queue, indexed_find_matches_a_scan)
{
    open_queue(3000);
    uint64_t st = 12345;
    uint32_t checks = 0, hits = 0;
    for (uint32_t step = 0; step < 60000; step++) {
        uint32_t op = lcg(&st) % 10;
        uint32_t len = hk_rq_len(&q);
        if (op < 5 && !hk_rq_full(&q)) { /* keys from a small space: duplicates happen */
            hk_request r = blk(lcg(&st) % 40, (lcg(&st) % 64) * 16384);
            r.kind = lcg(&st) % 8 == 0 ? HK_REQ_METADATA : HK_REQ_BLOCK;
            cr_assert(hk_rq_push_back(&q, &r));
        } else if (op == 5 && len) {
            cr_assert(hk_rq_pop_front(&q, NULL));
        } else if (op == 6) {
            hk_rq_rotate(&q);
        } else if (op < 9 && len) {
            cr_assert(hk_rq_remove_at(&q, lcg(&st) % len, NULL));
        }
        for (int k = 0; k < 3; k++) {
            hk_req_kind kind = lcg(&st) % 8 == 0 ? HK_REQ_METADATA : HK_REQ_BLOCK;
            uint32_t index = lcg(&st) % 40, begin = (lcg(&st) % 64) * 16384;
            int64_t want = scan_find(kind, index, begin, 16384);
            cr_assert_eq(hk_rq_find(&q, kind, index, begin, 16384), want, "step %u: %u/%u", step, index, begin);
            checks++;
            hits += want >= 0;
        }
        if ((len = hk_rq_len(&q)) > 0) { /* an entry's own key finds it, or an earlier duplicate of it */
            const hk_request *r = hk_rq_at(&q, lcg(&st) % len);
            int64_t at = hk_rq_find(&q, r->kind, r->index, r->begin, r->length);
            cr_assert(at >= 0);
            cr_assert_eq(at, scan_find(r->kind, r->index, r->begin, r->length));
        }
        if (step == 30000) /* drain: the index must follow the queue down to empty and up again */
            while (hk_rq_pop_front(&q, NULL))
                ;
    }
    cr_assert_gt(q.cap, 64, "the index was in use (capacity %u)", q.cap);
    cr_assert_gt(hits, checks / 20, "enough finds hit (%u of %u)", hits, checks);
    cr_assert_lt(hits, checks, "and some missed");
}

/* The index's memory is the ring's: counted in hk_mem (4 bytes per ring entry more) and released by clear. */
Test(request_queue, index_memory_released_by_clear)
{
    open_queue(2048);
    for (uint32_t i = 0; i < 2000; i++) {
        hk_request r = blk(i / 16, (i % 16) * 16384);
        cr_assert(hk_rq_push_back(&q, &r));
    }
    cr_assert_eq(hk_rq_find(&q, HK_REQ_BLOCK, 124, 15 * 16384, 16384), 1999);
    cr_assert_eq(hk_rq_find(&q, HK_REQ_BLOCK, 125, 0, 16384), -1);
    cr_assert_geq(m.bytes, (uint64_t)q.cap * sizeof(hk_request) + 2 * q.cap * sizeof(uint16_t));
    hk_rq_clear(&q);
    cr_assert_eq(m.bytes, 0);
}
