/* deadline: owns the binary min-heap of embedded deadline nodes ordered by (when, seq). See deadline.h. */
#include "deadline.h"

#include <assert.h>

#define DL_MIN_CAP 16u

void hk_dl_heap_init(hk_deadline_heap *h, hk_mem *mem)
{
    h->items = NULL;
    h->len = h->cap = 0;
    h->next_seq = 0;
    h->mem = mem;
}

void hk_dl_heap_free(hk_deadline_heap *h)
{
    hk_mem_free(h->mem, h->items, (size_t)h->cap * sizeof *h->items);
    h->items = NULL;
    h->len = h->cap = 0;
}

void hk_deadline_init(hk_deadline *d)
{
    d->when = HK_TIME_NEVER;
    d->seq = 0;
    d->pos = HK_DL_NOT_QUEUED;
}

static bool before(const hk_deadline *a, const hk_deadline *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void place(hk_deadline_heap *h, uint32_t i, hk_deadline *d)
{
    h->items[i] = d;
    d->pos = i;
}

static void sift_up(hk_deadline_heap *h, uint32_t i)
{
    hk_deadline *d = h->items[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!before(d, h->items[parent]))
            break;
        place(h, i, h->items[parent]);
        i = parent;
    }
    place(h, i, d);
}

static void sift_down(hk_deadline_heap *h, uint32_t i)
{
    hk_deadline *d = h->items[i];
    for (;;) {
        uint32_t l = 2 * i + 1;
        if (l >= h->len)
            break;
        uint32_t m = l;
        if (l + 1 < h->len && before(h->items[l + 1], h->items[l]))
            m = l + 1;
        if (!before(h->items[m], d))
            break;
        place(h, i, h->items[m]);
        i = m;
    }
    place(h, i, d);
}

static bool resize(hk_deadline_heap *h, uint32_t cap)
{
    hk_deadline **n = hk_mem_realloc(h->mem, h->items, (size_t)h->cap * sizeof *h->items, (size_t)cap * sizeof *n);
    if (!n)
        return false;
    h->items = n;
    h->cap = cap;
    return true;
}

bool hk_dl_schedule(hk_deadline_heap *h, hk_deadline *d, hk_time when)
{
    if (hk_deadline_queued(d)) {
        assert(d->pos < h->len && h->items[d->pos] == d); /* queued in this heap */
        if (d->when == when)
            return true;
        bool earlier = when < d->when;
        d->when = when;
        d->seq = h->next_seq++;
        if (earlier)
            sift_up(h, d->pos);
        else
            sift_down(h, d->pos);
        return true;
    }
    if (h->len == h->cap) {
        if (h->cap > UINT32_MAX / 2)
            return false;
        if (!resize(h, h->cap ? h->cap * 2 : DL_MIN_CAP))
            return false;
    }
    d->when = when;
    d->seq = h->next_seq++;
    place(h, h->len++, d);
    sift_up(h, d->pos);
    return true;
}

static void remove_at(hk_deadline_heap *h, uint32_t i)
{
    assert(i < h->len);
    hk_deadline *d = h->items[i];
    d->pos = HK_DL_NOT_QUEUED;
    h->len--;
    if (i < h->len) {
        hk_deadline *last = h->items[h->len];
        place(h, i, last);
        if (i > 0 && before(last, h->items[(i - 1) / 2]))
            sift_up(h, i);
        else
            sift_down(h, i);
    }
    if (h->cap > DL_MIN_CAP && h->len < h->cap / 4)
        (void)resize(h, h->cap / 2); /* failure to shrink is harmless */
}

void hk_dl_cancel(hk_deadline_heap *h, hk_deadline *d)
{
    if (!hk_deadline_queued(d))
        return;
    assert(d->pos < h->len && h->items[d->pos] == d); /* queued in this heap */
    if (d->pos >= h->len || h->items[d->pos] != d)
        return;
    remove_at(h, d->pos);
}

hk_deadline *hk_dl_peek(const hk_deadline_heap *h)
{
    return h->len ? h->items[0] : NULL;
}

hk_time hk_dl_next_time(const hk_deadline_heap *h)
{
    return h->len ? h->items[0]->when : HK_TIME_NEVER;
}

hk_deadline *hk_dl_pop_due(hk_deadline_heap *h, hk_time now)
{
    if (!h->len || h->items[0]->when > now)
        return NULL;
    hk_deadline *d = h->items[0];
    remove_at(h, 0);
    return d;
}
