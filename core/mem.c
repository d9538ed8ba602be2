/* mem: owns the accounted allocation wrappers (see mem.h). */
#include "mem.h"

#include <stdlib.h>

/* No single allocation of the core is anywhere near this; larger requests fail without reaching the allocator. */
#define HK_MEM_MAX_REQUEST (1ull << 40)

static void account_add(hk_mem *m, size_t n)
{
    m->bytes += n;
    if (m->bytes > m->peak)
        m->peak = m->bytes;
}

void *hk_mem_alloc(hk_mem *m, size_t n)
{
    if (n == 0 || n > HK_MEM_MAX_REQUEST)
        return NULL;
    void *p = malloc(n);
    if (p)
        account_add(m, n);
    return p;
}

void *hk_mem_calloc(hk_mem *m, size_t count, size_t size)
{
    if (count == 0 || size == 0 || count > SIZE_MAX / size || count * size > HK_MEM_MAX_REQUEST)
        return NULL;
    void *p = calloc(count, size);
    if (p)
        account_add(m, count * size);
    return p;
}

void *hk_mem_realloc(hk_mem *m, void *p, size_t old_n, size_t new_n)
{
    if (new_n == 0) {
        hk_mem_free(m, p, old_n);
        return NULL;
    }
    if (new_n > HK_MEM_MAX_REQUEST)
        return NULL;
    void *q = realloc(p, new_n);
    if (!q)
        return NULL;
    m->bytes -= p ? old_n : 0;
    account_add(m, new_n);
    return q;
}

void hk_mem_free(hk_mem *m, void *p, size_t n)
{
    if (!p)
        return;
    free(p);
    m->bytes = m->bytes >= n ? m->bytes - n : 0;
}
