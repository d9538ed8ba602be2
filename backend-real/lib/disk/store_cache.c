/* store_cache: the caches below the mappings (layering in store_internal.h, batching contract in store.h).
 *
 * Owns, while batching is on:
 *   - the residency cache: RC_ENTRIES direct-mapped windows of RC_PAGES pages, each the answer of one mincore over an
 *     aligned window of an open slot, valid for one epoch (a loop iteration), or for lim.resident_keep_ms if every
 *     page of it was resident;
 *   - the prefetch records of the current iteration and their flush: sorted, merged per file into runs whose page
 *     ranges touch or overlap, one madvise(WILLNEED) per run unless the cache knows the run resident.
 * The mapping code (store_map.c) calls down into these when it closes a slot or marks a storage failed; nothing here
 * opens, closes or evicts a slot.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "hash.h"
#include "store_internal.h"

/* ---- the residency cache ---- */

/* Fibonacci hashing of (slot, window) to an entry. */
static uint32_t rc_index(uint32_t slot, uint64_t window)
{
    uint64_t x = ((uint64_t)slot << 40 ^ window) * HK_GOLDEN64;
    return (uint32_t)(x >> (64 - RC_BITS));
}

#define MS_MASK 0x7fffffffu

/* A new epoch; the table is cleared when the counter wraps. */
static void rc_bump_epoch(hk_store *st)
{
    if (++st->epoch == 0) {
        memset(st->rc, 0, RC_ENTRIES * sizeof *st->rc);
        st->epoch = 1;
    }
}

void st_rc_drop_all(hk_store *st)
{
    if (st->rc == NULL)
        return;
    rc_bump_epoch(st);
    if (++st->rc_gen == 0) {
        memset(st->rc, 0, RC_ENTRIES * sizeof *st->rc);
        st->rc_gen = 1;
    }
}

void st_rc_next_epoch(hk_store *st)
{
    if (st->rc == NULL)
        return;
    rc_bump_epoch(st);
    struct timespec ts;
    if (st->lim.resident_keep_ms > 0 && clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0)
        st->now_ms = (uint32_t)((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) & MS_MASK;
}

/* The cached window `window` of slot i, or NULL if it is not cached now. */
static const st_rc *rc_find(const hk_store *st, uint32_t i, uint64_t window)
{
    const st_rc *e = &st->rc[rc_index(i, window)];
    if (e->slot != i || e->window != window || e->gen != st->rc_gen || e->epoch == 0)
        return NULL;
    if (e->epoch == st->epoch)
        return e;
    bool recent = ((st->now_ms - e->at_ms) & MS_MASK) < st->lim.resident_keep_ms;
    return e->full && recent ? e : NULL;
}

/* The file's pages (the guard page excluded). */
static uint64_t file_pages(const st_slot *sl)
{
    size_t pg = st_page_size();
    return (sl->len + pg - 1) / pg;
}

/* Window `window` of slot i, from the cache or from one mincore over it (clipped to the file's pages). NULL if
 * mincore failed (nothing is cached then). */
static const st_rc *rc_window(hk_store *st, uint32_t i, uint64_t window)
{
    const st_rc *hit = rc_find(st, i, window);
    if (hit != NULL) {
        st->rc_hits++;
        return hit;
    }
    const st_slot *sl = st_slot_at(st, i);
    size_t pg = st_page_size();
    uint64_t p0 = window * RC_PAGES, pages = file_pages(sl);
    assert(p0 < pages);
    size_t n = pages - p0 < RC_PAGES ? (size_t)(pages - p0) : RC_PAGES;
    unsigned char vec[RC_PAGES];
    st->mincore_calls++;
    if (mincore(sl->map + p0 * pg, n * pg, vec) != 0)
        return NULL;
    uint64_t bits = 0;
    for (size_t k = 0; k < n; k++)
        if (vec[k] & 1)
            bits |= 1ull << k;
    st_rc *e = &st->rc[rc_index(i, window)];
    uint64_t all = n == 64 ? ~0ull : (1ull << n) - 1;
    *e = (st_rc){.bits = bits, .window = window, .slot = i, .epoch = st->epoch, .gen = st->rc_gen,
                 .at_ms = st->now_ms & MS_MASK, .full = bits == all};
    return e;
}

/* Bits of pages [lo, hi] (0 <= lo <= hi < RC_PAGES). */
static uint64_t page_mask(uint64_t lo, uint64_t hi)
{
    assert(lo <= hi && hi < RC_PAGES);
    uint64_t n = hi - lo + 1;
    return (n == 64 ? ~0ull : (1ull << n) - 1) << lo;
}

bool st_rc_resident(hk_store *st, uint32_t i, uint64_t first, uint64_t end, bool fill)
{
    size_t pg = st_page_size();
    uint64_t p_first = first / pg, p_last = (end - 1) / pg;
    for (uint64_t w = p_first / RC_PAGES; w <= p_last / RC_PAGES; w++) {
        const st_rc *e = fill ? rc_window(st, i, w) : rc_find(st, i, w);
        if (e == NULL)
            return false;
        uint64_t base = w * RC_PAGES;
        uint64_t lo = p_first > base ? p_first - base : 0;
        uint64_t hi = p_last < base + RC_PAGES - 1 ? p_last - base : RC_PAGES - 1;
        uint64_t m = page_mask(lo, hi);
        if ((e->bits & m) != m)
            return false;
    }
    return true;
}

void st_rc_forget(hk_store *st, uint32_t i, uint64_t first, uint64_t end)
{
    if (st->rc == NULL)
        return;
    size_t pg = st_page_size();
    for (uint64_t w = first / pg / RC_PAGES; w <= (end - 1) / pg / RC_PAGES; w++) {
        st_rc *e = &st->rc[rc_index(i, w)];
        if (e->slot == i && e->window == w)
            e->epoch = 0;
    }
}

/* ---- prefetch records ---- */

void st_advise(hk_store *st, const st_slot *sl, uint64_t first, uint64_t end)
{
    st->madvise_calls++;
    madvise(sl->map + first, (size_t)(end - first), MADV_WILLNEED);
}

static int pf_cmp(const void *a, const void *b)
{
    const st_pf *x = a, *y = b;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* Issues the recorded prefetches: per file, records whose page ranges touch or overlap are merged into one run, and
 * one madvise covers each run: exactly the pages the records asked for, nothing more. A run whose pages the cache
 * of this epoch already knows to be resident is skipped (WILLNEED would do nothing for it); records of a failed or
 * removed storage are dropped. */
void st_pf_flush(hk_store *st)
{
    uint32_t n = st->npf;
    st->npf = 0; /* first: nothing below records again */
    if (n == 0)
        return;
    if (n > 1)
        qsort(st->pf, n, sizeof *st->pf, pf_cmp);
    size_t pg = st_page_size();
    for (uint32_t k = 0; k < n;) {
        uint32_t i = st->pf[k].slot;
        uint64_t first = st->pf[k].first, end = st->pf[k].end;
        for (k++; k < n && st->pf[k].slot == i && st->pf[k].first <= (end + pg - 1) / pg * pg; k++)
            if (st->pf[k].end > end)
                end = st->pf[k].end;
        const st_slot *sl = st_slot_at(st, i);
        if (sl->fd < 0 || (st_at(st, sl->sidx)->flags & (ST_FAILED | ST_REMOVED)))
            continue;
        if (st->rc != NULL && !sl->blind && st_rc_resident(st, i, first, end, false)) {
            st->madvise_skipped++;
            continue;
        }
        st_advise(st, sl, first, end);
    }
}

bool st_pf_record(hk_store *st, uint32_t i, uint64_t first, uint64_t end)
{
    if (st->npf == st->cappf) {
        if (st->cappf >= PF_MAX) {
            st_pf_flush(st);
        } else {
            st_pf *n = st_grow(st->pf, &st->cappf, 64, sizeof *n);
            if (n == NULL)
                return false;
            st->pf = n;
        }
    }
    st->pf[st->npf++] = (st_pf){.first = first, .end = end, .slot = i};
    return true;
}
