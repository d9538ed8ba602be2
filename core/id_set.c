/* id_set: the bit set of dense 32-bit ids (see id_set.h). */
#include "id_set.h"

#include <assert.h>
#include <string.h>

void hk_id_set_init(hk_id_set *s)
{
    memset(s, 0, sizeof *s);
}

void hk_id_set_free(hk_id_set *s, hk_mem *mem)
{
    hk_mem_free(mem, s->words, hk_id_set_bytes(s));
    hk_id_set_init(s);
}

/* Covers word w: 0, or -1 out of memory. New words are zero. */
static int grow_to(hk_id_set *s, hk_mem *mem, uint32_t w)
{
    uint32_t n = s->nwords + s->nwords / 8;
    if (n <= w)
        n = w + 1;
    if (n < 4)
        n = 4;
    uint64_t *p = hk_mem_realloc(mem, s->words, hk_id_set_bytes(s), (size_t)n * sizeof *p);
    if (!p)
        return -1;
    memset(p + s->nwords, 0, (size_t)(n - s->nwords) * sizeof *p);
    s->words = p;
    s->nwords = n;
    return 0;
}

int hk_id_set_add(hk_id_set *s, hk_mem *mem, uint32_t id)
{
    if (id >= HK_ID_SET_MAX)
        return -1;
    if (hk_id_set_has(s, id))
        return 1;
    if (id / 64 >= s->nwords && grow_to(s, mem, id / 64) != 0)
        return -1;
    s->words[id / 64] |= (uint64_t)1 << (id % 64);
    s->count++;
    return 0;
}

bool hk_id_set_remove(hk_id_set *s, uint32_t id)
{
    if (!hk_id_set_has(s, id))
        return false;
    s->words[id / 64] &= ~((uint64_t)1 << (id % 64));
    assert(s->count > 0);
    s->count--;
    return true;
}

uint32_t hk_id_set_next(const hk_id_set *s, uint32_t from)
{
    if (from >= HK_ID_SET_MAX || s->count == 0)
        return HK_ID_NONE;
    uint32_t w = from / 64;
    if (w >= s->nwords)
        return HK_ID_NONE;
    uint64_t bits = s->words[w] & (~(uint64_t)0 << (from % 64));
    while (bits == 0) {
        if (++w == s->nwords)
            return HK_ID_NONE;
        bits = s->words[w];
    }
    return w * 64 + (uint32_t)__builtin_ctzll(bits);
}
