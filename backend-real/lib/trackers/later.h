/* later: completions handed back from the libev loop, never from inside the call that produced them (the resolver's
 * answers, the tracker requests refused at once).
 *
 * Contract
 * --------
 * An hk_later is a queue of nodes (hk_list, embedded in the caller's records) and one ev_idle watcher. hk_later_add
 * queues a node and starts the watcher; on the loop's next idle turn every node queued so far is taken off the
 * queue, in queue order, and handed to `deliver`, which runs its completion and frees it. Nodes queued while
 * delivering wait for the next turn. Queue order: HK_LATER_FIFO appends (delivered oldest first), HK_LATER_LIFO
 * prepends (newest first). hk_later_take unqueues one node without delivering it (to free what is left before the
 * owner goes); hk_later_stop stops the watcher. Nothing here allocates or fails.
 */
#ifndef HEKATE_LATER_H
#define HEKATE_LATER_H

#include <ev.h>

#include "list.h"

typedef void (*hk_later_fn)(void *arg, hk_list *node);

typedef enum hk_later_order { HK_LATER_FIFO = 0, HK_LATER_LIFO } hk_later_order;

typedef struct hk_later {
    ev_idle idle;
    struct ev_loop *loop;
    hk_list queue;
    hk_later_order order;
    hk_later_fn deliver;
    void *arg;
} hk_later;

/* The hk_later must not move in memory afterwards (its queue head is pointed at by the nodes). */
void hk_later_init(hk_later *l, struct ev_loop *loop, hk_later_order order, hk_later_fn deliver, void *arg);
void hk_later_add(hk_later *l, hk_list *node);
/* The next node that would be delivered, unqueued; NULL when the queue is empty. */
hk_list *hk_later_take(hk_later *l);
void hk_later_stop(hk_later *l);

#endif
