/* announcer_index: owns the announcer's storage: growable arrays and pointer tables, the due-time slot heap, slot
 * runs, each slot's tier order and the torrents-by-info-hash index (see announcer_internal.h). */
#include <assert.h>
#include <string.h>

#include "announcer_internal.h"

/* ---------------- growable arrays ---------------- */

bool an_grow(hk_announcer *a, void **p, uint32_t *cap, size_t elem, uint32_t need)
{
    if (need <= *cap)
        return true;
    uint32_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > UINT32_MAX / 2)
            return false;
        ncap *= 2;
    }
    void *n = hk_mem_realloc(&a->mem, *p, (size_t)*cap * elem, (size_t)ncap * elem);
    if (!n)
        return false;
    *p = n;
    *cap = ncap;
    return true;
}

bool an_table_grow(hk_announcer *a, void ***ptrs, uint32_t **gen, uint32_t **free_idx, uint32_t *cap, uint32_t n)
{
    if (n != *cap)
        return true;
    uint32_t cap1 = *cap, cap2 = *cap;
    if (!an_grow(a, (void **)ptrs, cap, sizeof **ptrs, n + 1))
        return false;
    if (!an_grow(a, (void **)gen, &cap1, sizeof **gen, *cap) ||
        !an_grow(a, (void **)free_idx, &cap2, sizeof **free_idx, *cap))
        return false; /* the arrays stay consistent: the larger capacity is simply not used yet */
    memset(*ptrs + n, 0, (size_t)(*cap - n) * sizeof **ptrs); /* NULL */
    memset(*gen + n, 0, (size_t)(*cap - n) * sizeof **gen);
    return true;
}

void an_index_free(hk_announcer *a)
{
    hk_mem_free(&a->mem, a->slots, (size_t)a->capslots * sizeof *a->slots);
    hk_mem_free(&a->mem, a->heap, (size_t)a->heap_cap * sizeof *a->heap);
    hk_mem_free(&a->mem, a->torrents, (size_t)a->captorrents * sizeof *a->torrents);
    hk_ih_free(&a->by_ih);
}

/* ---------------- the slot heap ---------------- */

static bool hent_before(const an_hent *x, const an_hent *y)
{
    return x->due < y->due || (x->due == y->due && x->slot < y->slot);
}

static void heap_place(hk_announcer *a, uint32_t i, an_hent e)
{
    assert(i < a->heap_len && e.slot < a->nslots);
    a->heap[i] = e;
    a->slots[e.slot].link = i;
}

static void heap_up(hk_announcer *a, uint32_t i)
{
    an_hent e = a->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!hent_before(&e, &a->heap[p]))
            break;
        heap_place(a, i, a->heap[p]);
        i = p;
    }
    heap_place(a, i, e);
}

static void heap_down(hk_announcer *a, uint32_t i)
{
    an_hent e = a->heap[i];
    for (;;) {
        uint32_t l = 2 * i + 1, best = i;
        const an_hent *b = &e;
        if (l < a->heap_len && hent_before(&a->heap[l], b)) {
            best = l;
            b = &a->heap[l];
        }
        if (l + 1 < a->heap_len && hent_before(&a->heap[l + 1], b))
            best = l + 1;
        if (best == i)
            break;
        heap_place(a, i, a->heap[best]);
        i = best;
    }
    heap_place(a, i, e);
}

static void heap_remove(hk_announcer *a, uint32_t s)
{
    uint32_t i = a->slots[s].link;
    assert(a->slots[s].state == SLOT_QUEUED && i < a->heap_len && a->heap[i].slot == s);
    an_hent last = a->heap[--a->heap_len];
    if (i < a->heap_len) {
        heap_place(a, i, last);
        heap_up(a, i);
        heap_down(a, a->slots[last.slot].link);
    }
    a->slots[s].link = AN_NONE;
}

uint32_t an_heap_pop(hk_announcer *a)
{
    assert(a->heap_len > 0);
    uint32_t s = a->heap[0].slot;
    heap_remove(a, s);
    a->slots[s].state = SLOT_IDLE;
    return s;
}

hk_time an_slot_due(const hk_announcer *a, uint32_t s)
{
    return a->slots[s].state == SLOT_QUEUED ? a->heap[a->slots[s].link].due : HK_TIME_NEVER;
}

/* Heap capacity is reserved when slots are allocated, so queuing never fails. */
void an_slot_schedule(hk_announcer *a, uint32_t s, hk_time when)
{
    an_slot *sl = &a->slots[s];
    assert(s < a->nslots && sl->state != SLOT_FREE);
    if (sl->state == SLOT_QUEUED) {
        uint32_t i = sl->link;
        a->heap[i].due = when;
        heap_up(a, i);
        heap_down(a, a->slots[s].link);
        return;
    }
    assert(a->heap_len < a->heap_cap);
    sl->state = SLOT_QUEUED;
    a->heap_len++;
    heap_place(a, a->heap_len - 1, (an_hent){ when, s });
    heap_up(a, a->heap_len - 1);
}

void an_slot_unqueue(hk_announcer *a, uint32_t s)
{
    if (a->slots[s].state == SLOT_QUEUED)
        heap_remove(a, s);
    a->slots[s].state = SLOT_IDLE;
    a->slots[s].link = AN_NONE;
}

/* ---------------- slot runs ---------------- */

uint32_t an_slots_alloc(hk_announcer *a, uint32_t n)
{
    assert(n >= 1 && n <= HK_ANN_MAX_TIERS);
    uint32_t first = a->free_runs[n];
    if (first != AN_NONE) {
        a->free_runs[n] = a->slots[first].link;
        return first;
    }
    if (a->nslots > UINT32_MAX - 1 - n)
        return AN_NONE;
    if (!an_grow(a, (void **)&a->slots, &a->capslots, sizeof *a->slots, a->nslots + n))
        return AN_NONE;
    if (!an_grow(a, (void **)&a->heap, &a->heap_cap, sizeof *a->heap, a->capslots))
        return AN_NONE;
    first = a->nslots;
    a->nslots += n;
    return first;
}

void an_slots_release(hk_announcer *a, uint32_t first, uint32_t n)
{
    assert(n >= 1 && n <= HK_ANN_MAX_TIERS && first + n <= a->nslots);
    for (uint32_t k = 0; k < n; k++)
        a->slots[first + k].state = SLOT_FREE;
    a->slots[first].link = a->free_runs[n];
    a->free_runs[n] = first;
}

/* ---------------- tier order ---------------- */

static unsigned nib(uint64_t order, unsigned k)
{
    return (unsigned)(order >> (4 * k)) & 15u;
}

static uint64_t set_nib(uint64_t order, unsigned k, unsigned v)
{
    return (order & ~(15ull << (4 * k))) | ((uint64_t)v << (4 * k));
}

uint64_t an_shuffled_order(hk_announcer *a, unsigned n)
{
    assert(n <= HK_ANN_MAX_TIER_TRACKERS);
    uint64_t o = 0;
    for (unsigned k = 0; k < n; k++)
        o = set_nib(o, k, k);
    for (unsigned k = n; k > 1; k--) { /* Fisher-Yates */
        unsigned j = (unsigned)an_rand_below(a, k);
        unsigned x = nib(o, k - 1), y = nib(o, j);
        o = set_nib(set_nib(o, k - 1, y), j, x);
    }
    return o;
}

uint64_t an_move_to_front(uint64_t o, unsigned pos)
{
    unsigned v = nib(o, pos);
    for (unsigned k = pos; k > 0; k--)
        o = set_nib(o, k, nib(o, k - 1));
    return set_nib(o, 0, v);
}

static const an_tierset *slot_set(const hk_announcer *a, uint32_t s)
{
    return &a->sets[a->torrents[a->slots[s].torrent].tierset];
}

unsigned an_tier_size(const hk_announcer *a, uint32_t s)
{
    const an_tierset *set = slot_set(a, s);
    unsigned t = a->slots[s].tier;
    return set->start[t + 1] - set->start[t];
}

uint32_t an_slot_tracker_at(const hk_announcer *a, uint32_t s, unsigned pos)
{
    const an_tierset *set = slot_set(a, s);
    const an_slot *sl = &a->slots[s];
    assert(pos < an_tier_size(a, s) && nib(sl->order, pos) < an_tier_size(a, s));
    return set->trackers[set->start[sl->tier] + nib(sl->order, pos)];
}

uint32_t an_slot_tracker(const hk_announcer *a, uint32_t s)
{
    return an_slot_tracker_at(a, s, a->slots[s].pos);
}

/* ---------------- torrents by info-hash ---------------- */

static const uint8_t *torrent_key(const void *owner, uint32_t rec)
{
    const hk_announcer *a = owner;
    return a->torrents[rec].ih;
}

/* 64 slots at first, doubled at 3/4 full, never shrunk. */
void an_index_init(hk_announcer *a)
{
    hk_ih_init(&a->by_ih, &a->mem, 64, false, torrent_key, a);
}

uint32_t an_torrent_find(const hk_announcer *a, const uint8_t ih[20])
{
    uint32_t ti = hk_ih_find(&a->by_ih, ih);
    return ti == HK_IH_NONE ? AN_NONE : ti;
}

bool an_torrent_index(hk_announcer *a, uint32_t ti)
{
    assert(ti < a->ntorrents && a->by_ih.count == a->live_torrents);
    return hk_ih_insert(&a->by_ih, ti) == 0;
}

void an_torrent_unindex(hk_announcer *a, const uint8_t ih[20])
{
    uint32_t ti = hk_ih_remove(&a->by_ih, ih);
    assert(ti != HK_IH_NONE && a->by_ih.count + 1 == a->live_torrents);
    (void)ti;
}
