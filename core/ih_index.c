/* ih_index: owns the open-addressing slot array of an info-hash index (probe, grow, shrink, backward-shift
 * deletion). See ih_index.h. */
#include "ih_index.h"

#include <assert.h>
#include <string.h>

#include "hash.h"

/* The home slot of a mix: multiply-shift range reduction onto [0, cap) (the mix's high bits, its best spread; no
 * power of two needed). */
static inline uint32_t home(uint32_t mix, uint32_t cap)
{
    return (uint32_t)(((uint64_t)mix * cap) >> 32);
}

/* The slot after i, wrapping at cap. */
static inline uint32_t next(uint32_t i, uint32_t cap)
{
    return i + 1 < cap ? i + 1 : 0;
}

/* How far slot j is past slot i along the probe order (cyclically): 0 .. cap - 1. */
static inline uint32_t dist(uint32_t i, uint32_t j, uint32_t cap)
{
    return j >= i ? j - i : j + (cap - i);
}

uint32_t hk_ih_grown_cap(uint32_t cap)
{
    uint64_t n = (uint64_t)cap + cap / 2;
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

void hk_ih_init(hk_ih_index *ix, hk_mem *mem, uint32_t min_cap, bool shrink, hk_ih_key_fn key, const void *owner)
{
    assert(min_cap >= 4 && key);
    *ix = (hk_ih_index){ .min_cap = min_cap, .shrink = shrink, .mem = mem, .key = key, .owner = owner };
}

void hk_ih_set_mix_fn(hk_ih_index *ix, hk_ih_mix_fn mix)
{
    assert(ix->count == 0);
    ix->mix = mix;
}

void hk_ih_free(hk_ih_index *ix)
{
    hk_mem_free(ix->mem, ix->slots, (size_t)ix->cap * sizeof *ix->slots);
    ix->slots = NULL;
    ix->cap = ix->count = 0;
}

/* hk_mix_info_hash of record rec's key: the owner's stored value when it keeps one (no key fetch). */
static uint32_t mix_of_record(const hk_ih_index *ix, uint32_t rec)
{
    return ix->mix ? ix->mix(ix->owner, rec) : hk_mix_info_hash(ix->key(ix->owner, rec));
}

/* The slot holding `ih`, or the empty slot where it would go (*found says which). cap > 0. */
static uint32_t probe(const hk_ih_index *ix, const uint8_t key[20], bool *found)
{
    uint8_t ih[20];
    memcpy(ih, key, 20); /* key may be the key function's reused buffer, which the comparisons below overwrite */
    uint32_t cap = ix->cap, mix = hk_mix_info_hash(ih);
    for (uint32_t i = home(mix, cap);; i = next(i, cap)) {
        uint32_t v = ix->slots[i];
        if (v != 0 && ix->mix && ix->mix(ix->owner, v - 1) != mix)
            continue; /* a stored mix that differs: not this key, and no key fetched */
        if (v == 0 || memcmp(ix->key(ix->owner, v - 1), ih, 20) == 0) {
            *found = v != 0;
            return i;
        }
    }
}

static bool resize(hk_ih_index *ix, uint32_t ncap)
{
    uint32_t *ns = hk_mem_calloc(ix->mem, ncap, sizeof *ns);
    if (!ns)
        return false;
    uint32_t *old = ix->slots;
    uint32_t oldcap = ix->cap;
    ix->slots = ns;
    ix->cap = ncap;
    for (uint32_t i = 0; i < oldcap; i++) {
        if (old[i] == 0)
            continue;
        /* keys are distinct: the first empty slot from the home is the one a probe would find */
        uint32_t j = home(mix_of_record(ix, old[i] - 1), ncap);
        while (ns[j] != 0)
            j = next(j, ncap);
        ns[j] = old[i];
    }
    hk_mem_free(ix->mem, old, (size_t)oldcap * sizeof *old);
    return true;
}

uint32_t hk_ih_find(const hk_ih_index *ix, const uint8_t ih[20])
{
    if (ix->count == 0)
        return HK_IH_NONE;
    bool found;
    uint32_t i = probe(ix, ih, &found);
    return found ? ix->slots[i] - 1 : HK_IH_NONE;
}

int hk_ih_insert(hk_ih_index *ix, uint32_t rec)
{
    assert(rec < UINT32_MAX);
    if (ix->cap == 0 || ((uint64_t)ix->count + 1) * 4 > (uint64_t)ix->cap * 3) {
        uint32_t ncap = ix->cap ? hk_ih_grown_cap(ix->cap) : ix->min_cap;
        if (ncap <= ix->cap || !resize(ix, ncap))
            return -1;
    }
    bool found;
    uint32_t i = probe(ix, ix->key(ix->owner, rec), &found);
    assert(!found); /* the owner checks for duplicates first */
    ix->slots[i] = rec + 1;
    ix->count++;
    return 0;
}

/* Empties slot i and shifts later members of its probe run back so no lookup passes over a hole. */
static void remove_at(hk_ih_index *ix, uint32_t i)
{
    uint32_t cap = ix->cap;
    ix->slots[i] = 0;
    for (uint32_t j = next(i, cap); ix->slots[j] != 0; j = next(j, cap)) {
        /* j's entry may fill the hole at i unless its home lies cyclically in (i, j] */
        if (dist(home(mix_of_record(ix, ix->slots[j] - 1), cap), j, cap) >= dist(i, j, cap)) {
            ix->slots[i] = ix->slots[j];
            ix->slots[j] = 0;
            i = j;
        }
    }
}

uint32_t hk_ih_remove(hk_ih_index *ix, const uint8_t ih[20])
{
    if (ix->count == 0)
        return HK_IH_NONE;
    bool found;
    uint32_t i = probe(ix, ih, &found);
    if (!found)
        return HK_IH_NONE;
    uint32_t rec = ix->slots[i] - 1;
    remove_at(ix, i);
    ix->count--;
    if (ix->shrink && ix->cap > ix->min_cap && (uint64_t)ix->count * 8 < ix->cap) {
        /* back to half full (as after a growth), never under min_cap; failure to shrink is harmless */
        uint32_t ncap = ix->count * 2 > ix->min_cap ? ix->count * 2 : ix->min_cap;
        (void)resize(ix, ncap);
    }
    return rec;
}

size_t hk_ih_bytes(const hk_ih_index *ix)
{
    return (size_t)ix->cap * sizeof *ix->slots;
}
