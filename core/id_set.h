/* id_set: a set of 32-bit ids that an owner hands out densely (record numbers), as one bit per id up to the highest
 * id ever added: membership, insertion and removal in O(1), the next member at or after an id in O(gap / 64).
 *
 * Contract:
 *   - The set allocates through the hk_mem the caller passes (the same one every call); it grows to cover the id
 *     added (by at least an eighth of its words: few reallocations for ids added in order) and never shrinks.
 *   - An id is any value below HK_ID_SET_MAX (2^28: 32 MiB of bits at most); HK_ID_NONE is never a member.
 *   - Iterating with hk_id_set_next while adding or removing is allowed: it sees the set as it is at each call.
 * Cost: hk_id_set_bytes (the words allocated: (highest id + 1) / 8 rounded up to 8, plus up to an eighth).
 */
#ifndef HEKATE_ID_SET_H
#define HEKATE_ID_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"

#define HK_ID_NONE UINT32_MAX
#define HK_ID_SET_MAX (1u << 28)

typedef struct hk_id_set {
    uint64_t *words;          /* bit (id % 64) of words[id / 64] set: id is a member */
    uint32_t nwords;
    uint32_t count;           /* members */
} hk_id_set;

/* An empty set (allocates nothing). */
void hk_id_set_init(hk_id_set *s);
/* Frees the words (through mem); the set is empty again. */
void hk_id_set_free(hk_id_set *s, hk_mem *mem);
/* Adds id: 0 added, 1 already a member, -1 out of memory or id >= HK_ID_SET_MAX (the set unchanged). */
int hk_id_set_add(hk_id_set *s, hk_mem *mem, uint32_t id);
/* Removes id: true if it was a member. */
bool hk_id_set_remove(hk_id_set *s, uint32_t id);
static inline bool hk_id_set_has(const hk_id_set *s, uint32_t id)
{
    return id / 64 < s->nwords && (s->words[id / 64] >> (id % 64) & 1);
}
/* The least member >= from, or HK_ID_NONE when there is none. */
uint32_t hk_id_set_next(const hk_id_set *s, uint32_t from);
static inline uint32_t hk_id_set_count(const hk_id_set *s) { return s->count; }
static inline size_t hk_id_set_bytes(const hk_id_set *s) { return (size_t)s->nwords * sizeof(uint64_t); }

#endif
