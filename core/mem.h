/* mem: heap allocation with accounting, so the seeder can report exactly what it holds (hk_stats.memory_bytes).
 *
 * Contract
 * --------
 * Every allocation made by the seeding engine goes through an hk_mem counter owned by the object that uses it (one
 * per seeder; no global state). Frees are SIZED: the caller passes the size it allocated, so no header is stored and
 * the counter stays exact. hk_mem_calloc and hk_mem_realloc check size overflow and return NULL on it. A failed
 * allocation changes nothing (the counter is untouched; realloc leaves the old block valid). Zero-size requests
 * and requests above 2^40 bytes (no legitimate use in the core) return NULL without calling the allocator; freeing
 * NULL is a no-op.
 */
#ifndef HEKATE_MEM_H
#define HEKATE_MEM_H

#include <stddef.h>
#include <stdint.h>

typedef struct hk_mem {
    uint64_t bytes;   /* currently allocated */
    uint64_t peak;    /* high-water mark of bytes */
} hk_mem;

void *hk_mem_alloc(hk_mem *m, size_t n);
void *hk_mem_calloc(hk_mem *m, size_t count, size_t size);
/* Resizes p (allocated with old_n bytes, or NULL with old_n == 0) to new_n bytes; new_n == 0 frees. */
void *hk_mem_realloc(hk_mem *m, void *p, size_t old_n, size_t new_n);
void hk_mem_free(hk_mem *m, void *p, size_t n);

#endif
