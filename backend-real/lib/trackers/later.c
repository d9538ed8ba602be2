/* later: a queue of completions delivered from an idle watcher (see later.h). */
#include "later.h"


static void idle_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)revents;
    hk_later *l = w->data;
    ev_idle_stop(loop, w);
    hk_list turn; /* what is queued now; nodes queued while delivering wait in l->queue */
    hk_list_init(&turn);
    for (hk_list *n; (n = hk_later_take(l)) != NULL;)
        hk_list_insert_tail(&turn, n);
    for (hk_list *n; (n = hk_list_first(&turn)) != NULL;) {
        hk_list_remove(n);
        l->deliver(l->arg, n);
    }
}

void hk_later_init(hk_later *l, struct ev_loop *loop, hk_later_order order, hk_later_fn deliver, void *arg)
{
    l->loop = loop;
    hk_list_init(&l->queue);
    l->order = order;
    l->deliver = deliver;
    l->arg = arg;
    ev_idle_init(&l->idle, idle_cb);
    l->idle.data = l;
}

void hk_later_add(hk_later *l, hk_list *node)
{
    if (l->order == HK_LATER_LIFO)
        hk_list_insert_head(&l->queue, node);
    else
        hk_list_insert_tail(&l->queue, node);
    if (!ev_is_active(&l->idle))
        ev_idle_start(l->loop, &l->idle);
}

hk_list *hk_later_take(hk_later *l)
{
    hk_list *n = hk_list_first(&l->queue);
    if (n)
        hk_list_remove(n);
    return n;
}

void hk_later_stop(hk_later *l)
{
    ev_idle_stop(l->loop, &l->idle);
}
