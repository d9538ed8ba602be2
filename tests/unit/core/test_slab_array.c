/* Unit tests for core/slab_array: element addressing across slabs, zeroed slabs, stable addresses, live counts with
 * the empty slab freed and nslabs trimmed, sparse numbers, iteration over allocated slabs, exact accounting. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "slab_array.h"

typedef struct elem {
    uint64_t a;
    uint32_t b;
} elem;

#define BITS 4u
#define PER (1u << BITS)

static size_t slab_bytes(void) { return (size_t)PER * sizeof(elem); }

Test(slab_array, empty_allocates_nothing)
{
    hk_mem mem = { 0 };
    hk_slab_array a;
    hk_sa_init(&a, &mem, sizeof(elem), BITS);
    cr_assert_null(hk_sa_get(&a, 0));
    cr_assert_null(hk_sa_get(&a, UINT32_MAX));
    cr_assert_eq(hk_sa_bytes(&a), 0);
    cr_assert_eq(hk_sa_next_allocated(&a, 0), UINT32_MAX);
    hk_sa_free(&a);
    cr_assert_eq(mem.bytes, 0);
}

Test(slab_array, ensure_addresses_zeroed_elements_that_never_move)
{
    hk_mem mem = { 0 };
    hk_slab_array a;
    hk_sa_init(&a, &mem, sizeof(elem), BITS);
    elem *first = hk_sa_ensure(&a, 0);
    cr_assert_not_null(first);
    cr_assert_eq(first->a, 0);
    first->a = 42;
    for (uint32_t n = 1; n < 40 * PER; n++) { /* past the 16 initial entries: the entries grow, slabs stay */
        elem *e = hk_sa_ensure(&a, n);
        cr_assert_not_null(e);
        cr_assert(e->a == 0 && e->b == 0, "a new slab is zeroed");
        e->a = n;
        e->b = ~n;
    }
    cr_assert_eq(hk_sa_get(&a, 0), first);
    cr_assert_eq(first->a, 42);
    for (uint32_t n = 1; n < 40 * PER; n++) {
        elem *e = hk_sa_at_fixed(&a, n, BITS, sizeof(elem));
        cr_assert(e->a == n && e->b == ~n);
        cr_assert_eq(hk_sa_get(&a, n), e);
        cr_assert_eq(hk_sa_at(&a, n), e);
        cr_assert_eq(hk_sa_ensure(&a, n), e, "ensure of an allocated slab returns the same element");
    }
    cr_assert_eq(a.nslabs, 40);
    cr_assert_eq(a.capslabs, 64);
    cr_assert_eq(hk_sa_bytes(&a), 40 * slab_bytes() + 64 * sizeof(hk_sa_slab));
    cr_assert_eq(mem.bytes, hk_sa_bytes(&a), "the accounting is exact");
    cr_assert_null(hk_sa_get(&a, 40 * PER), "beyond the highest slab");
    hk_sa_free(&a);
    cr_assert_eq(mem.bytes, 0);
    cr_assert_eq(a.nslabs, 0);
    cr_assert_not_null(hk_sa_ensure(&a, 3), "usable again after free");
    hk_sa_free(&a);
    cr_assert_eq(mem.bytes, 0);
}

Test(slab_array, sparse_numbers_allocate_only_their_slabs)
{
    hk_mem mem = { 0 };
    hk_slab_array a;
    hk_sa_init(&a, &mem, sizeof(elem), BITS);
    cr_assert_not_null(hk_sa_ensure(&a, 5));
    cr_assert_not_null(hk_sa_ensure(&a, 100 * PER + 3));
    cr_assert_eq(a.allocated, 2);
    cr_assert_eq(a.nslabs, 101);
    cr_assert_eq(hk_sa_bytes(&a), 2 * slab_bytes() + 128 * sizeof(hk_sa_slab));
    cr_assert_null(hk_sa_get(&a, 50 * PER), "a number in no slab");
    cr_assert_eq(hk_sa_next_allocated(&a, 0), 0);
    cr_assert_eq(hk_sa_next_allocated(&a, 7), 7, "inside an allocated slab: itself");
    cr_assert_eq(hk_sa_next_allocated(&a, PER), 100 * PER, "jumps the slabs not allocated");
    cr_assert_eq(hk_sa_next_allocated(&a, 101 * PER), UINT32_MAX);
    hk_sa_free(&a);
    cr_assert_eq(mem.bytes, 0);
}

Test(slab_array, live_counts_free_the_empty_slab_and_trim_the_top)
{
    hk_mem mem = { 0 };
    hk_slab_array a;
    hk_sa_init(&a, &mem, sizeof(elem), BITS);
    for (uint32_t n = 0; n < 3 * PER; n++) {
        cr_assert_not_null(hk_sa_ensure(&a, n));
        hk_sa_inc(&a, n);
    }
    /* the middle slab emptied: freed, nslabs unchanged */
    for (uint32_t n = PER; n < 2 * PER; n++)
        cr_assert_eq(hk_sa_dec(&a, n), n == 2 * PER - 1);
    cr_assert_null(hk_sa_get(&a, PER));
    cr_assert_eq(a.nslabs, 3);
    cr_assert_eq(a.allocated, 2);
    cr_assert_eq(hk_sa_next_allocated(&a, PER), 2 * PER);
    /* the top slab emptied: nslabs drops over the empty middle one too */
    for (uint32_t n = 2 * PER; n < 3 * PER; n++)
        (void)hk_sa_dec(&a, n);
    cr_assert_eq(a.nslabs, 1);
    cr_assert_null(hk_sa_get(&a, 2 * PER));
    cr_assert_eq(mem.bytes, hk_sa_bytes(&a));
    cr_assert_eq(hk_sa_bytes(&a), slab_bytes() + 16 * sizeof(hk_sa_slab));
    /* a freed slab comes back zeroed */
    elem *e = hk_sa_ensure(&a, PER + 1);
    cr_assert(e && e->a == 0);
    hk_sa_inc(&a, PER + 1);
    cr_assert_eq(a.nslabs, 2);
    cr_assert(hk_sa_dec(&a, PER + 1));
    for (uint32_t n = 0; n < PER; n++)
        (void)hk_sa_dec(&a, n);
    cr_assert_eq(a.nslabs, 0);
    cr_assert_eq(a.allocated, 0);
    cr_assert_eq(mem.bytes, 16 * sizeof(hk_sa_slab), "only the entries are left");
    hk_sa_free(&a);
    cr_assert_eq(mem.bytes, 0);
}

Test(slab_array, numbers_beyond_the_slab_limit_fail)
{
    hk_mem mem = { 0 };
    hk_slab_array a;
    hk_sa_init(&a, &mem, sizeof(elem), 1);
    cr_assert_null(hk_sa_ensure(&a, UINT32_MAX), "slab index 2^31 - 1 is not below HK_SA_MAX_SLABS");
    cr_assert_eq(mem.bytes, 0);
    hk_sa_free(&a);
}
