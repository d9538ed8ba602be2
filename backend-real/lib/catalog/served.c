/* served: the table of .torrent paths and what is served from each, indexed by path and by storage (see served.h). */
#include "served.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

struct hk_served {
    hk_served_rec **by_path;       /* cap slots */
    hk_served_rec **by_storage;    /* cap slots */
    size_t cap;                    /* power of two, 0 before the first insert */
    size_t count, with_storage;
    size_t bytes;                  /* record allocations */
};

/* 64-bit FNV-1a finished with the splitmix64 mixer (its high bits are the best spread), folded to 32 bits. */
static uint32_t hash_path(const char *s)
{
    return (uint32_t)(hk_mix64(hk_fnv1a64_str(s)) >> 32);
}

static size_t home_path(const hk_served *t, const hk_served_rec *r)
{
    return r->path_hash & (t->cap - 1);
}

static size_t home_storage(const hk_served *t, const hk_served_rec *r)
{
    return (size_t)hk_mix64(r->storage) & (t->cap - 1);
}

hk_served *hk_served_new(void)
{
    return calloc(1, sizeof(hk_served));
}

void hk_served_free(hk_served *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->cap; i++)
        free(t->by_path[i]);
    free(t->by_path);
    free(t->by_storage);
    free(t);
}

hk_served_rec *hk_served_find(const hk_served *t, const char *path)
{
    if (t->cap == 0)
        return NULL;
    uint32_t h = hash_path(path);
    size_t mask = t->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        hk_served_rec *r = t->by_path[i];
        if (!r)
            return NULL;
        if (r->path_hash == h && strcmp(r->path, path) == 0)
            return r;
    }
}

hk_served_rec *hk_served_find_storage(const hk_served *t, uint64_t storage)
{
    if (t->cap == 0 || storage == 0)
        return NULL;
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)hk_mix64(storage) & mask;; i = (i + 1) & mask) {
        hk_served_rec *r = t->by_storage[i];
        if (!r)
            return NULL;
        if (r->storage == storage)
            return r;
    }
}

static void put(hk_served_rec **tab, size_t mask, size_t home, hk_served_rec *r)
{
    size_t i = home;
    while (tab[i])
        i = (i + 1) & mask;
    tab[i] = r;
}

static int grow(hk_served *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 64;
    hk_served_rec **np = calloc(ncap, sizeof *np);
    hk_served_rec **ns = calloc(ncap, sizeof *ns);
    if (!np || !ns) {
        free(np);
        free(ns);
        return -1;
    }
    size_t ocap = t->cap;
    hk_served_rec **op = t->by_path;
    t->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        hk_served_rec *r = op[i];
        if (!r)
            continue;
        put(np, ncap - 1, home_path(t, r), r);
        if (r->storage)
            put(ns, ncap - 1, home_storage(t, r), r);
    }
    free(op);
    free(t->by_storage);
    t->by_path = np;
    t->by_storage = ns;
    return 0;
}

hk_served_rec *hk_served_insert(hk_served *t, const char *path)
{
    assert(!hk_served_find(t, path));
    if ((t->count + 1) * 2 > t->cap && grow(t) != 0)
        return NULL;
    size_t n = strlen(path);
    hk_served_rec *r = calloc(1, sizeof *r + n + 1);
    if (!r)
        return NULL;
    memcpy(r->path, path, n + 1);
    r->path_hash = hash_path(path);
    put(t->by_path, t->cap - 1, home_path(t, r), r);
    t->count++;
    t->bytes += sizeof *r + n + 1;
    return r;
}

/* Removes slot i of tab and shifts back the entries of its probe run that may move (no tombstones). */
static void erase(hk_served *t, hk_served_rec **tab, size_t i, bool by_path)
{
    size_t mask = t->cap - 1;
    tab[i] = NULL;
    for (size_t j = (i + 1) & mask; tab[j]; j = (j + 1) & mask) {
        size_t k = by_path ? home_path(t, tab[j]) : home_storage(t, tab[j]);
        /* The entry at j stays if its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        tab[i] = tab[j];
        tab[j] = NULL;
        i = j;
    }
}

static void unindex_storage(hk_served *t, hk_served_rec *r)
{
    size_t mask = t->cap - 1;
    for (size_t i = home_storage(t, r);; i = (i + 1) & mask) {
        if (t->by_storage[i] == r) {
            erase(t, t->by_storage, i, false);
            t->with_storage--;
            return;
        }
        if (!t->by_storage[i]) {
            assert(!"a record with a storage is indexed by it");
            return;
        }
    }
}

void hk_served_set_storage(hk_served *t, hk_served_rec *rec, uint64_t storage)
{
    if (rec->storage == storage)
        return;
    if (rec->storage)
        unindex_storage(t, rec);
    rec->storage = storage;
    if (storage) {
        assert(!hk_served_find_storage(t, storage)); /* handles are unique */
        put(t->by_storage, t->cap - 1, home_storage(t, rec), rec);
        t->with_storage++;
    }
}

void hk_served_delete(hk_served *t, hk_served_rec *rec)
{
    hk_served_set_storage(t, rec, 0);
    size_t mask = t->cap - 1;
    for (size_t i = home_path(t, rec);; i = (i + 1) & mask) {
        if (t->by_path[i] == rec) {
            erase(t, t->by_path, i, true);
            break;
        }
        if (!t->by_path[i]) {
            assert(!"every record is in the path table");
            break;
        }
    }
    t->count--;
    t->bytes -= sizeof *rec + strlen(rec->path) + 1;
    free(rec);
}

size_t hk_served_count(const hk_served *t)
{
    return t->count;
}

size_t hk_served_with_storage(const hk_served *t)
{
    return t->with_storage;
}

hk_served_rec *hk_served_next(const hk_served *t, size_t *cursor)
{
    while (*cursor < t->cap) {
        hk_served_rec *r = t->by_path[(*cursor)++];
        if (r)
            return r;
    }
    return NULL;
}

size_t hk_served_memory(const hk_served *t)
{
    return sizeof *t + 2 * t->cap * sizeof(hk_served_rec *) + t->bytes;
}
