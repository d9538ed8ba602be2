/* Tests of backend-real/lib/trackers/later: completions queued on an idle watcher are delivered from the loop, never
 * from hk_later_add, in FIFO or LIFO order; what is queued while delivering waits for the next turn; hk_later_take
 * unqueues without delivering. */
#include <criterion/criterion.h>

#include <ev.h>
#include <stdlib.h>

#include "later.h"

typedef struct item {
    hk_list link;
    int value;
} item;

typedef struct rec {
    hk_later later;
    int got[16];
    int n;
    int requeue_below; /* a delivered value below this queues value + 100 */
} rec;

static item *item_new(int value)
{
    item *it = calloc(1, sizeof *it);
    cr_assert_not_null(it);
    it->value = value;
    return it;
}

static void deliver(void *arg, hk_list *node)
{
    rec *r = arg;
    item *it = HK_LIST_ENTRY(node, item, link);
    cr_assert(!hk_list_linked(node), "a node is off the queue when it is delivered");
    cr_assert_lt(r->n, 16);
    r->got[r->n++] = it->value;
    if (it->value < r->requeue_below)
        hk_later_add(&r->later, &item_new(it->value + 100)->link);
    free(it);
}

static void run(rec *r, hk_later_order order, struct ev_loop *loop)
{
    hk_later_init(&r->later, loop, order, deliver, r);
    for (int v = 1; v <= 3; v++)
        hk_later_add(&r->later, &item_new(v)->link);
    cr_assert_eq(r->n, 0, "never delivered from inside hk_later_add");
    ev_run(loop, EVRUN_NOWAIT);
}

Test(later, fifo_delivers_oldest_first_from_the_loop)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    rec r = { .n = 0 };
    run(&r, HK_LATER_FIFO, loop);
    cr_assert_eq(r.n, 3);
    cr_assert(r.got[0] == 1 && r.got[1] == 2 && r.got[2] == 3);
    hk_later_stop(&r.later);
    ev_loop_destroy(loop);
}

Test(later, lifo_delivers_newest_first)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    rec r = { .n = 0 };
    run(&r, HK_LATER_LIFO, loop);
    cr_assert_eq(r.n, 3);
    cr_assert(r.got[0] == 3 && r.got[1] == 2 && r.got[2] == 1);
    hk_later_stop(&r.later);
    ev_loop_destroy(loop);
}

Test(later, queued_while_delivering_waits_for_the_next_turn)
{
    for (int order = HK_LATER_FIFO; order <= HK_LATER_LIFO; order++) {
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        rec r = { .requeue_below = 3 };
        run(&r, (hk_later_order)order, loop);
        cr_assert_eq(r.n, 3, "order %d: only what was queued before the turn", order);
        ev_run(loop, EVRUN_NOWAIT);
        cr_assert_eq(r.n, 5, "order %d: the two requeued on the next turn", order);
        cr_assert(r.got[3] >= 101 && r.got[4] >= 101);
        hk_later_stop(&r.later);
        ev_loop_destroy(loop);
    }
}

Test(later, take_unqueues_without_delivering)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    rec r = { .n = 0 };
    hk_later_init(&r.later, loop, HK_LATER_FIFO, deliver, &r);
    cr_assert_null(hk_later_take(&r.later));
    hk_later_add(&r.later, &item_new(7)->link);
    hk_later_add(&r.later, &item_new(8)->link);
    hk_list *n = hk_later_take(&r.later);
    cr_assert_eq(HK_LIST_ENTRY(n, item, link)->value, 7);
    free(HK_LIST_ENTRY(n, item, link));
    hk_later_stop(&r.later);
    ev_run(loop, EVRUN_NOWAIT);
    cr_assert_eq(r.n, 0, "nothing is delivered once stopped");
    n = hk_later_take(&r.later);
    cr_assert_eq(HK_LIST_ENTRY(n, item, link)->value, 8);
    free(HK_LIST_ENTRY(n, item, link));
    cr_assert_null(hk_later_take(&r.later));
    ev_loop_destroy(loop);
}
