/* deadline: the core's one timer structure, a binary min-heap of deadlines behind the single rt->wake_at.
 *
 * Contract
 * --------
 * A deadline (hk_deadline) is a small node embedded in the object it belongs to (a peer); the heap holds pointers to
 * nodes and orders them by (when, seq), where seq is a counter the heap stamps on every schedule call. Two deadlines
 * at the same time therefore fire in the order they were scheduled, never in pointer order: the ordering is a
 * function of the call sequence only (determinism contract).
 *
 * Operations: schedule (insert, or move an already queued node; O(log n)), cancel (O(log n); no-op when not queued),
 * peek the earliest, pop the earliest that is due (when <= now). A node knows its own heap position, so cancel and
 * reschedule need no search. Rescheduling a node to the time it already has keeps its place (and its seq).
 *
 * Memory: the pointer array grows geometrically through the owner's hk_mem and shrinks when it becomes a quarter
 * full. hk_dl_schedule returns false only when it must grow and cannot (the node is then left unqueued).
 * A node must be cancelled (or popped) before its memory is freed.
 */
#ifndef HEKATE_DEADLINE_H
#define HEKATE_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>

#include "mem.h"
#include "runtime.h"

#define HK_DL_NOT_QUEUED UINT32_MAX

typedef struct hk_deadline {
    hk_time when;
    uint64_t seq;
    uint32_t pos;            /* index in the heap, HK_DL_NOT_QUEUED when not queued */
} hk_deadline;

typedef struct hk_deadline_heap {
    hk_deadline **items;
    uint32_t len, cap;
    uint64_t next_seq;
    hk_mem *mem;
} hk_deadline_heap;

void hk_dl_heap_init(hk_deadline_heap *h, hk_mem *mem);
/* Frees the array; queued nodes are simply forgotten (their pos is left as is). */
void hk_dl_heap_free(hk_deadline_heap *h);

void hk_deadline_init(hk_deadline *d);
static inline bool hk_deadline_queued(const hk_deadline *d) { return d->pos != HK_DL_NOT_QUEUED; }

bool hk_dl_schedule(hk_deadline_heap *h, hk_deadline *d, hk_time when);
void hk_dl_cancel(hk_deadline_heap *h, hk_deadline *d);
/* Earliest node, or NULL when empty. */
hk_deadline *hk_dl_peek(const hk_deadline_heap *h);
/* Time of the earliest node, HK_TIME_NEVER when empty. */
hk_time hk_dl_next_time(const hk_deadline_heap *h);
/* Removes and returns the earliest node if its time is <= now, else NULL. */
hk_deadline *hk_dl_pop_due(hk_deadline_heap *h, hk_time now);
static inline uint32_t hk_dl_len(const hk_deadline_heap *h) { return h->len; }

#endif
