/* addr_limit: owns the per-address and per-prefix connection counts (canonical keys, the entry pool, the caps).
 * See addr_limit.h. */
#include "addr_limit.h"

#include <assert.h>
#include <string.h>

#include "hash.h"

#define KIND_ADDR 'A'
#define KIND_PREFIX 'P'

static const uint8_t *entry_key(const void *owner, uint32_t rec)
{
    const hk_addr_limit *al = owner;
    return al->ents[rec].key;
}

void hk_al_init(hk_addr_limit *al, hk_mem *mem, uint32_t per_addr, uint32_t per_prefix)
{
    *al = (hk_addr_limit){.free_head = HK_AL_NONE, .per_addr = per_addr, .per_prefix = per_prefix, .mem = mem};
    hk_ih_init(&al->index, mem, 16, true, entry_key, al);
}

void hk_al_free(hk_addr_limit *al)
{
    hk_ih_free(&al->index);
    hk_mem_free(al->mem, al->ents, (size_t)al->cap * sizeof *al->ents);
    al->ents = NULL;
    al->cap = al->used = 0;
    al->free_head = HK_AL_NONE;
}

/* The 16-byte canonical form of a (v4 as ::ffff:a.b.c.d); false for an address that is not counted. */
static bool canonical(const hk_addr *a, uint8_t out[16], bool *v4)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!a || (a->family != 4 && a->family != 6))
        return false;
    if (a->family == 4) {
        memcpy(out, mapped, 12);
        memcpy(out + 12, a->ip, 4);
    } else {
        memcpy(out, a->ip, 16);
    }
    *v4 = memcmp(out, mapped, 12) == 0;
    return true;
}

/* The index key of the canonical address (kind KIND_ADDR) or of its prefix (KIND_PREFIX). */
static void make_key(const uint8_t canon[16], bool v4, uint8_t kind, uint8_t key[20])
{
    uint8_t c[16];
    memcpy(c, canon, 16);
    if (kind == KIND_PREFIX) {
        if (v4)
            c[15] = 0;                 /* /24 */
        else
            memset(c + 8, 0, 8);       /* /64 */
    }
    uint64_t hi, lo;
    memcpy(&hi, c, 8);
    memcpy(&lo, c + 8, 8);
    hi = hk_mix64(hi ^ ((uint64_t)kind * HK_GOLDEN64));
    lo = hk_mix64(lo ^ ((uint64_t)kind * HK_GOLDEN64));
    memcpy(key, &hi, 8);
    memcpy(key + 8, &lo, 8);
    key[16] = kind;
    key[17] = key[18] = key[19] = 0;
}

static uint32_t count_of(const hk_addr_limit *al, const uint8_t key[20])
{
    uint32_t rec = hk_ih_find(&al->index, key);
    return rec == HK_IH_NONE ? 0 : al->ents[rec].count;
}

/* A free record (from the free list, else fresh, growing the pool); HK_AL_NONE when out of memory. */
static uint32_t take_record(hk_addr_limit *al)
{
    if (al->free_head != HK_AL_NONE) {
        uint32_t rec = al->free_head;
        al->free_head = al->ents[rec].count;
        return rec;
    }
    if (al->used == al->cap) {
        uint32_t ncap = al->cap ? al->cap * 2 : 16;
        if (ncap <= al->cap || ncap >= HK_AL_NONE)
            return HK_AL_NONE;
        hk_al_entry *n = hk_mem_alloc(al->mem, (size_t)ncap * sizeof *n);
        if (!n)
            return HK_AL_NONE;
        if (al->cap)
            memcpy(n, al->ents, (size_t)al->cap * sizeof *n);
        hk_mem_free(al->mem, al->ents, (size_t)al->cap * sizeof *al->ents);
        al->ents = n;
        al->cap = ncap;
    }
    return al->used++;
}

static void put_record(hk_addr_limit *al, uint32_t rec)
{
    al->ents[rec].count = al->free_head;
    al->free_head = rec;
}

/* One more connection under key: its record, or HK_AL_NONE when out of memory (nothing changed). */
static uint32_t add_one(hk_addr_limit *al, const uint8_t key[20])
{
    uint32_t rec = hk_ih_find(&al->index, key);
    if (rec != HK_IH_NONE) {
        al->ents[rec].count++;
        return rec;
    }
    rec = take_record(al);
    if (rec == HK_AL_NONE)
        return HK_AL_NONE;
    memcpy(al->ents[rec].key, key, 20);
    al->ents[rec].count = 1;
    if (hk_ih_insert(&al->index, rec) != 0) {
        put_record(al, rec);
        return HK_AL_NONE;
    }
    return rec;
}

static void drop_one(hk_addr_limit *al, uint32_t rec)
{
    if (rec == HK_AL_NONE)
        return;
    assert(rec < al->used && al->ents[rec].count > 0);
    if (--al->ents[rec].count > 0)
        return;
    uint32_t gone = hk_ih_remove(&al->index, al->ents[rec].key);
    assert(gone == rec);
    (void)gone;
    put_record(al, rec);
}

hk_al_verdict hk_al_acquire(hk_addr_limit *al, const hk_addr *a, hk_addr_hold *hold)
{
    *hold = HK_ADDR_HOLD_NONE;
    uint8_t canon[16], akey[20], pkey[20];
    bool v4 = false;
    if ((al->per_addr == 0 && al->per_prefix == 0) || !canonical(a, canon, &v4))
        return HK_AL_OK;
    make_key(canon, v4, KIND_ADDR, akey);
    make_key(canon, v4, KIND_PREFIX, pkey);
    if (al->per_addr && count_of(al, akey) >= al->per_addr)
        return HK_AL_ADDRESS;
    if (al->per_prefix && count_of(al, pkey) >= al->per_prefix)
        return HK_AL_PREFIX;
    hk_addr_hold h = HK_ADDR_HOLD_NONE;
    if (al->per_addr && (h.addr = add_one(al, akey)) == HK_AL_NONE)
        return HK_AL_NOMEM;
    if (al->per_prefix && (h.prefix = add_one(al, pkey)) == HK_AL_NONE) {
        drop_one(al, h.addr);
        return HK_AL_NOMEM;
    }
    *hold = h;
    return HK_AL_OK;
}

void hk_al_release(hk_addr_limit *al, hk_addr_hold *hold)
{
    drop_one(al, hold->addr);
    drop_one(al, hold->prefix);
    *hold = HK_ADDR_HOLD_NONE;
}

static uint32_t count_kind(const hk_addr_limit *al, const hk_addr *a, uint8_t kind)
{
    uint8_t canon[16], key[20];
    bool v4 = false;
    if (!canonical(a, canon, &v4))
        return 0;
    make_key(canon, v4, kind, key);
    return count_of(al, key);
}

uint32_t hk_al_address_count(const hk_addr_limit *al, const hk_addr *a)
{
    return count_kind(al, a, KIND_ADDR);
}

uint32_t hk_al_prefix_count(const hk_addr_limit *al, const hk_addr *a)
{
    return count_kind(al, a, KIND_PREFIX);
}

unsigned hk_al_prefix_bits(const hk_addr *a)
{
    uint8_t canon[16];
    bool v4 = false;
    if (!canonical(a, canon, &v4))
        return 0;
    return v4 ? 24 : 64;
}

uint32_t hk_al_entries(const hk_addr_limit *al)
{
    return al->index.count;
}

size_t hk_al_bytes(const hk_addr_limit *al)
{
    return (size_t)al->cap * sizeof *al->ents + hk_ih_bytes(&al->index);
}

const char *hk_al_verdict_name(hk_al_verdict v)
{
    switch (v) {
    case HK_AL_OK: return "ok";
    case HK_AL_ADDRESS: return "per-address cap";
    case HK_AL_PREFIX: return "per-prefix cap";
    case HK_AL_NOMEM: return "out of memory";
    }
    return "?";
}
