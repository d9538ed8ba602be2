/* Unit tests for core/mem: exact accounting, overflow checks, failure leaves the counter untouched. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "mem.h"

Test(mem, alloc_free_counts_exactly)
{
    hk_mem m = {0};
    void *a = hk_mem_alloc(&m, 100);
    void *b = hk_mem_calloc(&m, 10, 30);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_eq(m.bytes, 400);
    cr_assert_eq(((unsigned char *)b)[299], 0);
    hk_mem_free(&m, a, 100);
    cr_assert_eq(m.bytes, 300);
    cr_assert_eq(m.peak, 400);
    hk_mem_free(&m, b, 300);
    cr_assert_eq(m.bytes, 0);
}

Test(mem, realloc_moves_the_count)
{
    hk_mem m = {0};
    char *p = hk_mem_realloc(&m, NULL, 0, 16);
    cr_assert_not_null(p);
    memcpy(p, "0123456789abcdef", 16);
    cr_assert_eq(m.bytes, 16);
    p = hk_mem_realloc(&m, p, 16, 4096);
    cr_assert_not_null(p);
    cr_assert_eq(memcmp(p, "0123456789abcdef", 16), 0);
    cr_assert_eq(m.bytes, 4096);
    p = hk_mem_realloc(&m, p, 4096, 8);
    cr_assert_eq(m.bytes, 8);
    cr_assert_null(hk_mem_realloc(&m, p, 8, 0));
    cr_assert_eq(m.bytes, 0);
}

Test(mem, zero_and_overflow_requests_allocate_nothing)
{
    hk_mem m = {0};
    cr_assert_null(hk_mem_alloc(&m, 0));
    cr_assert_null(hk_mem_calloc(&m, 0, 8));
    cr_assert_null(hk_mem_calloc(&m, SIZE_MAX / 2, 4));
    cr_assert_eq(m.bytes, 0);
    hk_mem_free(&m, NULL, 123);
    cr_assert_eq(m.bytes, 0);
}

Test(mem, failed_allocation_leaves_counter)
{
    hk_mem m = {0};
    void *p = hk_mem_alloc(&m, 64);
    cr_assert_not_null(p);
    /* An impossible size fails without touching the counter or the block. */
    cr_assert_null(hk_mem_realloc(&m, p, 64, SIZE_MAX - 16));
    cr_assert_eq(m.bytes, 64);
    hk_mem_free(&m, p, 64);
    cr_assert_eq(m.bytes, 0);
}
