/* slab_array: owns the slabs of fixed-size elements and the array of slab entries (see slab_array.h). */
#include "slab_array.h"

#include <string.h>

_Static_assert(HK_SA_MAX_SLABS <= UINT32_MAX / 2, "the entries' capacity doubles without overflow");

void hk_sa_init(hk_slab_array *a, hk_mem *mem, size_t elem_size, unsigned bits)
{
    assert(elem_size > 0 && elem_size <= UINT32_MAX && bits >= 1 && bits <= 20);
    memset(a, 0, sizeof *a);
    a->elem_size = (uint32_t)elem_size;
    a->bits = (uint8_t)bits;
    a->mem = mem;
}

static size_t slab_bytes(const hk_slab_array *a)
{
    return (size_t)a->elem_size << a->bits;
}

void hk_sa_free(hk_slab_array *a)
{
    for (uint32_t si = 0; si < a->nslabs; si++)
        hk_mem_free(a->mem, a->slabs[si].elems, slab_bytes(a));
    hk_mem_free(a->mem, a->slabs, (size_t)a->capslabs * sizeof *a->slabs);
    hk_sa_init(a, a->mem, a->elem_size, a->bits);
}

/* Entries for slab index si (< HK_SA_MAX_SLABS), doubling. false if out of memory (nothing changed). */
static bool entries_room(hk_slab_array *a, uint32_t si)
{
    if (si < a->capslabs)
        return true;
    uint32_t ncap = a->capslabs ? a->capslabs : HK_SA_MIN_SLABS;
    while (ncap <= si)
        ncap *= 2;
    hk_sa_slab *n = hk_mem_realloc(a->mem, a->slabs, (size_t)a->capslabs * sizeof *n, (size_t)ncap * sizeof *n);
    if (!n)
        return false;
    memset(n + a->capslabs, 0, (size_t)(ncap - a->capslabs) * sizeof *n);
    a->slabs = n;
    a->capslabs = ncap;
    return true;
}

void *hk_sa_ensure(hk_slab_array *a, uint32_t n)
{
    uint32_t si = n >> a->bits;
    if (si >= HK_SA_MAX_SLABS || !entries_room(a, si))
        return NULL;
    hk_sa_slab *sl = &a->slabs[si];
    if (!sl->elems) {
        sl->elems = hk_mem_calloc(a->mem, (size_t)1 << a->bits, a->elem_size);
        if (!sl->elems)
            return NULL;
        a->allocated++;
        if (si >= a->nslabs)
            a->nslabs = si + 1;
    }
    return (char *)sl->elems + (size_t)(n & ((1u << a->bits) - 1)) * a->elem_size;
}

void hk_sa_inc(hk_slab_array *a, uint32_t n)
{
    hk_sa_slab *sl = &a->slabs[n >> a->bits];
    assert((n >> a->bits) < a->nslabs && sl->elems && sl->live < (1u << a->bits));
    sl->live++;
}

bool hk_sa_dec(hk_slab_array *a, uint32_t n)
{
    hk_sa_slab *sl = &a->slabs[n >> a->bits];
    assert((n >> a->bits) < a->nslabs && sl->elems && sl->live > 0);
    if (--sl->live > 0)
        return false;
    hk_mem_free(a->mem, sl->elems, slab_bytes(a));
    sl->elems = NULL;
    a->allocated--;
    while (a->nslabs > 0 && !a->slabs[a->nslabs - 1].elems)
        a->nslabs--;
    return true;
}

uint32_t hk_sa_next_allocated(const hk_slab_array *a, uint32_t n)
{
    for (uint32_t si = n >> a->bits; si < a->nslabs; si++)
        if (a->slabs[si].elems)
            return si == n >> a->bits ? n : si << a->bits;
    return UINT32_MAX;
}
