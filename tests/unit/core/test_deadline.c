/* Unit tests for core/deadline: (time, sequence) order, reschedule, cancel, due popping, memory release. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "deadline.h"

typedef struct owner {
    int id;
    hk_deadline dl;
} owner;

/* Every test starts from an empty heap and must leave nothing allocated once it is freed. */
static hk_mem m;
static hk_deadline_heap h;

static void setup(void)
{
    hk_dl_heap_init(&h, &m);
}

static void teardown(void)
{
    hk_dl_heap_free(&h);
    cr_assert_eq(m.bytes, 0, "%llu bytes left", (unsigned long long)m.bytes);
}

TestSuite(deadline, .init = setup, .fini = teardown);

/* Two owners, scheduled at ta then tb. */
static void two(owner *a, owner *b, hk_time ta, hk_time tb)
{
    a->id = 1;
    b->id = 2;
    hk_deadline_init(&a->dl);
    hk_deadline_init(&b->dl);
    hk_dl_schedule(&h, &a->dl, ta);
    hk_dl_schedule(&h, &b->dl, tb);
}

static owner *of(hk_deadline *d)
{
    return (owner *)((char *)d - offsetof(owner, dl));
}

Test(deadline, empty_heap)
{
    cr_assert_null(hk_dl_peek(&h));
    cr_assert_eq(hk_dl_next_time(&h), HK_TIME_NEVER);
    cr_assert_null(hk_dl_pop_due(&h, HK_TIME_NEVER));
}

Test(deadline, pops_in_time_then_schedule_order)
{
    owner o[6];
    hk_time t[6] = {50, 10, 30, 10, 30, 20};
    for (int i = 0; i < 6; i++) {
        o[i].id = i;
        hk_deadline_init(&o[i].dl);
        cr_assert(hk_dl_schedule(&h, &o[i].dl, t[i]));
    }
    int expect[6] = {1, 3, 5, 2, 4, 0}; /* ties broken by scheduling order, not by address */
    cr_assert_null(hk_dl_pop_due(&h, 9));
    for (int i = 0; i < 6; i++) {
        hk_deadline *d = hk_dl_pop_due(&h, 100);
        cr_assert_not_null(d);
        cr_assert_eq(of(d)->id, expect[i], "pop %d gave %d", i, of(d)->id);
        cr_assert(!hk_deadline_queued(d));
    }
    cr_assert_null(hk_dl_pop_due(&h, 100));
}

Test(deadline, pop_due_respects_now)
{
    owner a, b;
    two(&a, &b, 100, 200);
    cr_assert_null(hk_dl_pop_due(&h, 99));
    cr_assert_eq(hk_dl_pop_due(&h, 100), &a.dl);
    cr_assert_null(hk_dl_pop_due(&h, 199));
    cr_assert_eq(hk_dl_next_time(&h), 200);
}

Test(deadline, reschedule_and_cancel)
{
    owner o[4];
    for (int i = 0; i < 4; i++) {
        o[i].id = i;
        hk_deadline_init(&o[i].dl);
        hk_dl_schedule(&h, &o[i].dl, 100 + (hk_time)i);
    }
    hk_dl_schedule(&h, &o[3].dl, 1);     /* earlier */
    hk_dl_schedule(&h, &o[0].dl, 1000);  /* later */
    hk_dl_cancel(&h, &o[1].dl);
    hk_dl_cancel(&h, &o[1].dl);          /* twice: no-op */
    cr_assert_eq(hk_dl_len(&h), 3);
    cr_assert_eq(hk_dl_pop_due(&h, 5000), &o[3].dl);
    cr_assert_eq(hk_dl_pop_due(&h, 5000), &o[2].dl);
    cr_assert_eq(hk_dl_pop_due(&h, 5000), &o[0].dl);
    cr_assert_eq(hk_dl_len(&h), 0);
}

Test(deadline, same_time_reschedule_keeps_place)
{
    owner a, b;
    two(&a, &b, 10, 10);
    hk_dl_schedule(&h, &a.dl, 10); /* unchanged: a stays first */
    cr_assert_eq(hk_dl_pop_due(&h, 10), &a.dl);
}

/* A pseudo-random workload checked against a brute-force model: the heap always pops the (when, seq) minimum. */
Test(deadline, matches_a_model_under_random_operations)
{
    enum { N = 300 };
    static owner o[N];
    for (int i = 0; i < N; i++) {
        o[i].id = i;
        hk_deadline_init(&o[i].dl);
    }
    uint64_t x = 88172645463325252ull;
    for (int step = 0; step < 20000; step++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        int i = (int)(x % N);
        int op = (int)((x >> 20) % 4);
        if (op < 2) {
            cr_assert(hk_dl_schedule(&h, &o[i].dl, (x >> 32) % 1000));
        } else if (op == 2) {
            hk_dl_cancel(&h, &o[i].dl);
        } else {
            /* the model: smallest (when, seq) among queued nodes */
            int best = -1;
            for (int k = 0; k < N; k++) {
                if (!hk_deadline_queued(&o[k].dl))
                    continue;
                if (best < 0 || o[k].dl.when < o[best].dl.when ||
                    (o[k].dl.when == o[best].dl.when && o[k].dl.seq < o[best].dl.seq))
                    best = k;
            }
            hk_deadline *d = hk_dl_pop_due(&h, HK_TIME_NEVER);
            if (best < 0)
                cr_assert_null(d);
            else
                cr_assert_eq(of(d)->id, best);
        }
    }
    uint32_t queued = 0;
    for (int k = 0; k < N; k++)
        queued += hk_deadline_queued(&o[k].dl);
    cr_assert_eq(queued, hk_dl_len(&h));
    while (hk_dl_pop_due(&h, HK_TIME_NEVER))
        ;
    cr_assert_leq(m.bytes, 16 * sizeof(void *), "the array shrinks back when emptied");
}
