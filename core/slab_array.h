/* slab_array: the shared container of fixed-size elements addressed by a 32-bit number, in slabs that never move
 * (the seeder's torrent records, core/torrent_table.h; the daemon's path records, served.c, and storage entries,
 * store_internal.h).
 *
 * Contract
 * --------
 * Element n is slot n & (2^bits - 1) of slab n >> bits; element size and slab bits are fixed at hk_sa_init. A slab
 * is allocated (zeroed, through the array's hk_mem, so the owner's accounting stays exact) by hk_sa_ensure of one of
 * its numbers; the array of slab entries (16 bytes each on LP64) covers the highest slab allocated and its capacity
 * doubles from HK_SA_MIN_SLABS (it never shrinks before hk_sa_free). Elements never move: a pointer from hk_sa_at /
 * hk_sa_get / hk_sa_ensure stays valid until its slab is freed (hk_sa_dec to zero, or hk_sa_free).
 *
 * Live counts (optional, the owner's choice per call): hk_sa_inc counts one element of a slab as in use, hk_sa_dec
 * one fewer; the slab whose count drops to 0 is freed, and nslabs drops over the top entries with no slab. An owner
 * that never calls hk_sa_dec keeps every slab until hk_sa_free (its free numbers are its own business, e.g. a chain
 * through the free elements). The container does not know which elements are in use: that is the owner's.
 *
 * Numbers: any uint32_t whose slab index (n >> bits) is below HK_SA_MAX_SLABS. Nothing allocates but hk_sa_ensure.
 * Pure data structure: no I/O.
 */
#ifndef HEKATE_SLAB_ARRAY_H
#define HEKATE_SLAB_ARRAY_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"

#define HK_SA_MIN_SLABS 16u
#define HK_SA_MAX_SLABS (1u << 30) /* slab indexes below it: the entries' capacity doubles without overflow */

/* One slab entry: its elements (NULL: not allocated) and the count of them the owner said are in use. */
typedef struct hk_sa_slab {
    void *elems;
    uint32_t live;
} hk_sa_slab;

typedef struct hk_slab_array {
    hk_sa_slab *slabs;         /* capslabs entries; element n is in slabs[n >> bits].elems */
    uint32_t nslabs;           /* 1 + the highest slab allocated (0: none) */
    uint32_t capslabs;         /* entries allocated */
    uint32_t allocated;        /* slabs allocated */
    uint32_t elem_size;
    uint8_t bits;
    hk_mem *mem;
} hk_slab_array;

/* An empty array of elements of elem_size (> 0) bytes, 2^bits (1..20) per slab, allocating through mem. Allocates
 * nothing. */
void hk_sa_init(hk_slab_array *a, hk_mem *mem, size_t elem_size, unsigned bits);
/* Frees every slab and the entries (the elements' own allocations are the owner's, freed before); a is empty again,
 * with the same geometry and hk_mem. */
void hk_sa_free(hk_slab_array *a);
/* Element n, its slab allocated zeroed if it had none (the entries grow to cover it, new ones empty). NULL if out of
 * memory or n's slab index is not below HK_SA_MAX_SLABS: no slab allocated (the entries' capacity may have grown). */
void *hk_sa_ensure(hk_slab_array *a, uint32_t n);
/* Counts one element of n's slab (allocated: asserted) as in use. */
void hk_sa_inc(hk_slab_array *a, uint32_t n);
/* One element of n's slab (count > 0: asserted) is no longer in use; at 0 the slab is freed (its pointers die) and
 * the top entries without a slab are dropped from nslabs. true if the slab was freed. */
bool hk_sa_dec(hk_slab_array *a, uint32_t n);
/* Bytes the array takes: the slabs allocated (all their elements) and the entries. */
static inline size_t hk_sa_bytes(const hk_slab_array *a)
{
    return (size_t)a->capslabs * sizeof(hk_sa_slab) + (size_t)a->allocated * ((size_t)a->elem_size << a->bits);
}
/* The first number >= n in an allocated slab, or UINT32_MAX if none (an owner's iteration skips missing slabs). */
uint32_t hk_sa_next_allocated(const hk_slab_array *a, uint32_t n);

/* Element n with the geometry given as constants (bits, size: the ones of hk_sa_init, asserted), so a typed owner's
 * accessor compiles to a shift, a mask and a constant multiply as a hand-written slab table does. n's slab must be
 * allocated (asserted). */
static inline void *hk_sa_at_fixed(const hk_slab_array *a, uint32_t n, unsigned bits, size_t size)
{
    assert(bits == a->bits && size == a->elem_size);
    assert((n >> bits) < a->nslabs && a->slabs[n >> bits].elems);
    return (char *)a->slabs[n >> bits].elems + (size_t)(n & ((1u << bits) - 1)) * size;
}
/* Element n, or NULL if its slab is not allocated (out of range included); the same constant geometry. */
static inline void *hk_sa_get_fixed(const hk_slab_array *a, uint32_t n, unsigned bits, size_t size)
{
    assert(bits == a->bits && size == a->elem_size);
    uint32_t si = n >> bits;
    if (si >= a->nslabs || !a->slabs[si].elems)
        return NULL;
    return (char *)a->slabs[si].elems + (size_t)(n & ((1u << bits) - 1)) * size;
}
/* The same with the geometry read from a. */
static inline void *hk_sa_at(const hk_slab_array *a, uint32_t n) { return hk_sa_at_fixed(a, n, a->bits, a->elem_size); }
static inline void *hk_sa_get(const hk_slab_array *a, uint32_t n)
{
    return hk_sa_get_fixed(a, n, a->bits, a->elem_size);
}

#endif
