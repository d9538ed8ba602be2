/* served: the table of .torrent paths and what is served from each (records in the shared slab_array, their last
 * components in a name arena), indexed by path and by storage, and the folders of the paths interned once each (see
 * served.h). */
#include "served.h"

#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "slab_array.h"

/* A folder part of paths ("/a/b/", the last '/' included; "" for a path without one), shared by its records. */
struct hk_served_folder {
    const hk_served *table;        /* whose name arena holds its records' last components */
    uint64_t fnv;                  /* the raw 64-bit FNV-1a state after path: a record's path hash starts from it */
    uint32_t refs;                 /* records holding it; freed at 0 */
    uint32_t len;
    uint32_t hash;
    char path[];
};

#define EXT ".torrent"
#define EXT_LEN (sizeof EXT - 1)
#define SLAB_BITS 10u
#define SLAB (1u << SLAB_BITS)     /* records per slab */
#define ARENA_MIN_COMPACT 4096u

struct hk_served {
    uint32_t *by_path;             /* cap slots: tag << HK_SERVED_REC_BITS | (record number + 1), 0 empty */
    uint32_t *by_index;            /* capindex entries, by a storage handle's table index (store.h: its low 32
                                      bits): record number + 1, 0 none (issue 10: 4 bytes per storage, not a
                                      second hash table of 2 slots per record) */
    uint32_t capindex;
    hk_slab_array recs;            /* record number n (core/slab_array.h, SLAB a slab); a free one has folder NULL
                                      and the next free number in base_off */
    hk_mem recs_mem;               /* what recs allocates */
    uint32_t nrecs;                /* numbers handed out (live or free) */
    uint32_t free_head;            /* last freed number, NO_REC: none */
    uint32_t max_recs;             /* live records at most (HK_SERVED_MAX_RECS, or hk_served_set_limit's) */
    const hk_served_rec *last_rec; /* the record inserted last (NULL once deleted) and its number: the catalog sets */
    uint32_t last_num;             /* its storage next, which needs the number */
    size_t cap;                    /* slots of by_path (any number: 16, then grown by half), 0 before the first
                                      insert */
    size_t count, with_storage;
    char *names;                   /* the records' last components, each NUL terminated (base_off) */
    uint32_t names_len, names_cap, names_garbage;
    hk_served_folder **folders;    /* open addressing by folder hash, at most half full, NULL empty */
    size_t fcap, nfolders, fbytes; /* slots, folders, their allocations */
};

#define NO_REC UINT32_MAX
#define NUM_MASK HK_SERVED_MAX_RECS        /* a slot's record number + 1 */
#define TAG_MASK 0x3fu                     /* a slot's tag: the low 6 bits of the path hash (the home slot comes
                                              from its high bits, so entries near each other have unrelated tags) */
_Static_assert(HK_SERVED_REC_BITS + 6 == 32, "a slot is a record number + 1 and a 6-bit tag");

/* The raw 64-bit FNV-1a state h continued over s[0, n). */
static uint64_t fnv_more(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * HK_FNV1A64_PRIME;
    return h;
}

/* A finished path hash: 64-bit FNV-1a mixed with splitmix64 (its high bits are the best spread), folded to 32. */
static uint32_t hash_finish(uint64_t fnv)
{
    return (uint32_t)(hk_mix64(fnv) >> 32);
}

static uint32_t hash_path(const char *s)
{
    return hash_finish(hk_fnv1a64_str(s));
}

/* The slot value of record number num for a path of hash h. */
static uint32_t slot_val(uint32_t num, uint32_t h)
{
    return (h & TAG_MASK) << HK_SERVED_REC_BITS | (num + 1);
}

/* true if slot value v (!= 0) may hold a path of hash h (its tag matches). */
static bool tag_ok(uint32_t v, uint32_t h)
{
    return (v >> HK_SERVED_REC_BITS) == (h & TAG_MASK);
}

/* The home slot of a path hash in by_path: multiply-shift range reduction onto [0, cap) (the hash's high bits; cap
 * need not be a power of two). */
static size_t home_of(const hk_served *t, uint32_t h)
{
    return (size_t)(((uint64_t)h * t->cap) >> 32);
}

static size_t home_path(const hk_served *t, const hk_served_rec *r)
{
    return home_of(t, hk_served_path_hash(r));
}

/* The slot after i in by_path, wrapping at cap. */
static inline size_t next_slot(const hk_served *t, size_t i)
{
    return i + 1 < t->cap ? i + 1 : 0;
}

/* The table index of a storage handle (store.h: its low 32 bits). */
static uint32_t index_of(uint64_t storage)
{
    return (uint32_t)storage;
}

/* true if storage can be a store handle a record holds (served.h: a 16-bit generation, never 0). */
static bool is_handle(uint64_t storage)
{
    return (storage >> 32) != 0 && (storage >> 48) == 0 && (uint32_t)storage < (1u << HK_SERVED_TORRENT_BITS);
}

/* Record number n. */
static inline hk_served_rec *rec_at(const hk_served *t, uint32_t n)
{
    return hk_sa_at_fixed(&t->recs, n, SLAB_BITS, sizeof(hk_served_rec));
}

/* The record in slot value v (!= 0). */
static inline hk_served_rec *rec_of(const hk_served *t, uint32_t v)
{
    return rec_at(t, (v & NUM_MASK) - 1);
}

/* r's last component (without ".torrent" if torrent_ext). */
static inline const char *base_of(const hk_served_rec *r)
{
    return r->folder->table->names + r->base_off;
}

const char *hk_served_path(const hk_served_rec *r, char *buf, size_t cap)
{
    if (cap == 0)
        return buf;
    const char *parts[3] = { r->folder->path, base_of(r), r->torrent_ext ? EXT : "" };
    size_t at = 0;
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(parts[i]);
        if (n > cap - 1 - at)
            n = cap - 1 - at;
        memcpy(buf + at, parts[i], n);
        at += n;
    }
    buf[at] = '\0';
    return buf;
}

const char *hk_served_base(const hk_served_rec *r, char *buf, size_t cap)
{
    const char *base = base_of(r);
    size_t n = strlen(base), e = r->torrent_ext ? EXT_LEN : 0;
    if (n + e >= cap)
        return NULL;
    memcpy(buf, base, n);
    memcpy(buf + n, EXT, e);
    buf[n + e] = '\0';
    return buf;
}

size_t hk_served_path_len(const hk_served_rec *r)
{
    return r->folder->len + strlen(base_of(r)) + (r->torrent_ext ? EXT_LEN : 0);
}

uint32_t hk_served_path_hash(const hk_served_rec *r)
{
    const char *base = base_of(r);
    uint64_t h = fnv_more(r->folder->fnv, base, strlen(base));
    return hash_finish(r->torrent_ext ? fnv_more(h, EXT, EXT_LEN) : h);
}

int hk_served_path_cmp(const hk_served_rec *a, const hk_served_rec *b)
{
    char pa[HK_SERVED_PATH_MAX], pb[HK_SERVED_PATH_MAX];
    return strcmp(hk_served_path(a, pa, sizeof pa), hk_served_path(b, pb, sizeof pb));
}

/* true if r's path is exactly path. */
static bool path_is(const hk_served_rec *r, const char *path)
{
    const hk_served_folder *f = r->folder;
    if (strncmp(path, f->path, f->len) != 0)
        return false;
    path += f->len;
    const char *base = base_of(r);
    size_t n = strlen(base);
    if (strncmp(path, base, n) != 0)
        return false;
    return strcmp(path + n, r->torrent_ext ? EXT : "") == 0;
}

static int folders_grow(hk_served *t)
{
    size_t ncap = t->fcap ? t->fcap * 2 : 16;
    hk_served_folder **nf = calloc(ncap, sizeof *nf);
    if (!nf)
        return -1;
    for (size_t i = 0; i < t->fcap; i++) {
        hk_served_folder *f = t->folders[i];
        if (!f)
            continue;
        size_t j = f->hash & (ncap - 1);
        while (nf[j])
            j = (j + 1) & (ncap - 1);
        nf[j] = f;
    }
    free(t->folders);
    t->folders = nf;
    t->fcap = ncap;
    return 0;
}

/* The interned folder path[0, n) with one more reference, or NULL when out of memory. */
static hk_served_folder *folder_ref(hk_served *t, const char *path, size_t n)
{
    uint64_t fnv = fnv_more(HK_FNV1A64_INIT, path, n);
    uint32_t h = hash_finish(fnv);
    for (size_t i = t->fcap ? h & (t->fcap - 1) : 0; t->fcap; i = (i + 1) & (t->fcap - 1)) {
        hk_served_folder *f = t->folders[i];
        if (!f)
            break;
        if (f->hash == h && f->len == n && memcmp(f->path, path, n) == 0) {
            f->refs++;
            return f;
        }
    }
    if ((t->nfolders + 1) * 2 > t->fcap && folders_grow(t) != 0)
        return NULL;
    hk_served_folder *f = malloc(sizeof *f + n + 1);
    if (!f)
        return NULL;
    *f = (hk_served_folder){ .table = t, .refs = 1, .len = (uint32_t)n, .hash = h, .fnv = fnv };
    memcpy(f->path, path, n);
    f->path[n] = '\0';
    size_t i = h & (t->fcap - 1);
    while (t->folders[i])
        i = (i + 1) & (t->fcap - 1);
    t->folders[i] = f;
    t->nfolders++;
    t->fbytes += sizeof *f + n + 1;
    return f;
}

/* Drops a reference; the last one frees the folder (backward-shift deletion in the folder table). */
static void folder_unref(hk_served *t, hk_served_folder *f)
{
    if (--f->refs > 0)
        return;
    size_t mask = t->fcap - 1, i = f->hash & mask;
    while (t->folders[i] != f)
        i = (i + 1) & mask;
    t->folders[i] = NULL;
    for (size_t j = (i + 1) & mask; t->folders[j]; j = (j + 1) & mask) {
        size_t k = t->folders[j]->hash & mask;
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        t->folders[i] = t->folders[j];
        t->folders[j] = NULL;
        i = j;
    }
    t->nfolders--;
    t->fbytes -= sizeof *f + f->len + 1;
    free(f);
}

hk_served *hk_served_new(void)
{
    hk_served *t = calloc(1, sizeof(hk_served));
    if (t) {
        t->free_head = NO_REC;
        hk_sa_init(&t->recs, &t->recs_mem, sizeof(hk_served_rec), SLAB_BITS);
        t->max_recs = HK_SERVED_MAX_RECS;
    }
    return t;
}

void hk_served_free(hk_served *t)
{
    if (!t)
        return;
    hk_sa_free(&t->recs);
    for (size_t i = 0; i < t->fcap; i++)
        free(t->folders[i]);
    free(t->folders);
    free(t->names);
    free(t->by_path);
    free(t->by_index);
    free(t);
}

hk_served_rec *hk_served_find(const hk_served *t, const char *path)
{
    if (t->cap == 0)
        return NULL;
    uint32_t h = hash_path(path);
    for (size_t i = home_of(t, h);; i = next_slot(t, i)) {
        uint32_t v = t->by_path[i];
        if (!v)
            return NULL;
        if (!tag_ok(v, h))
            continue;
        hk_served_rec *r = rec_of(t, v);
        if (path_is(r, path))
            return r;
    }
}

hk_served_rec *hk_served_find_storage(const hk_served *t, uint64_t storage)
{
    if (!is_handle(storage) || index_of(storage) >= t->capindex)
        return NULL;
    uint32_t v = t->by_index[index_of(storage)];
    hk_served_rec *r = v ? rec_of(t, v) : NULL;
    return r && hk_served_storage(r) == storage ? r : NULL;
}

/* Stores v in the first empty slot from home (t->cap slots). */
static void put(const hk_served *t, uint32_t *tab, size_t home, uint32_t v)
{
    size_t i = home;
    while (tab[i])
        i = next_slot(t, i);
    tab[i] = v;
}

/* by_path grown by half (16 slots first): about half full afterwards, as the seeder's indexes (ih_index.h). Every
 * record's home is computed again from its path (the slots keep only a tag of its hash), in record-number order:
 * the slabs and the name arena are read in the order they were filled, only the new slots at random. */
static int grow(hk_served *t)
{
    size_t ncap = t->cap ? t->cap + t->cap / 2 : 16;
    if (ncap > ((size_t)1 << 31))
        return -1; /* record numbers + 1 fit in 32 bits */
    uint32_t *np = calloc(ncap, sizeof *np);
    if (!np)
        return -1;
    free(t->by_path);
    t->cap = ncap;
    for (uint32_t n = 0; n < t->nrecs; n++) {
        const hk_served_rec *r = rec_at(t, n);
        if (!r->folder) /* free */
            continue;
        uint32_t h = hk_served_path_hash(r);
        put(t, np, home_of(t, h), slot_val(n, h));
    }
    t->by_path = np;
    return 0;
}

/* A record number for a new record (its entry zeroed), or NO_REC when out of memory. */
static uint32_t alloc_number(hk_served *t)
{
    if (t->free_head != NO_REC) {
        uint32_t n = t->free_head;
        t->free_head = rec_at(t, n)->base_off;
        memset(rec_at(t, n), 0, sizeof(hk_served_rec));
        return n;
    }
    if (!hk_sa_ensure(&t->recs, t->nrecs)) /* a new slab (zeroed) every SLAB */
        return NO_REC;
    assert(t->nrecs < HK_SERVED_MAX_RECS);
    return t->nrecs++; /* zeroed by calloc, never used */
}

/* Compacts the name arena (drops the garbage of deleted records' names). Keeps the garbage if out of memory. */
static void names_compact(hk_served *t)
{
    uint32_t live = t->names_len - t->names_garbage, at = 0;
    char *n = malloc(live ? live : 1);
    if (!n)
        return;
    for (uint32_t i = 0; i < t->nrecs; i++) {
        hk_served_rec *r = rec_at(t, i);
        if (!r->folder)
            continue;
        size_t len = strlen(t->names + r->base_off) + 1;
        memcpy(n + at, t->names + r->base_off, len);
        r->base_off = at;
        at += (uint32_t)len;
    }
    assert(at == live);
    free(t->names);
    t->names = n;
    t->names_len = t->names_cap = at;
    t->names_garbage = 0;
}

/* Appends s[0, n) and a NUL to the name arena: its offset in *off. false if out of memory (nothing changed). */
static bool names_add(hk_served *t, const char *s, size_t n, uint32_t *off)
{
    if (n + 1 > UINT32_MAX - t->names_len)
        return false;
    if (t->names_len + n + 1 > t->names_cap) {
        /* grown by a quarter (issue 10: doubling left up to half of it unused): still O(1) amortized per byte */
        uint64_t ncap = t->names_cap ? (uint64_t)t->names_cap + t->names_cap / 4 : 4096;
        while (ncap < (uint64_t)t->names_len + n + 1)
            ncap += ncap / 4;
        if (ncap > UINT32_MAX)
            ncap = UINT32_MAX;
        char *nn = realloc(t->names, (size_t)ncap);
        if (!nn)
            return false;
        t->names = nn;
        t->names_cap = (uint32_t)ncap;
    }
    *off = t->names_len;
    memcpy(t->names + t->names_len, s, n);
    t->names[t->names_len + n] = '\0';
    t->names_len += (uint32_t)(n + 1);
    return true;
}

bool hk_served_full(const hk_served *t)
{
    return t->count >= t->max_recs;
}

void hk_served_set_limit(hk_served *t, uint32_t max)
{
    assert(max >= 1 && max <= HK_SERVED_MAX_RECS);
    t->max_recs = max;
}

hk_served_rec *hk_served_insert(hk_served *t, const char *path)
{
    assert(!hk_served_find(t, path));
    if (hk_served_full(t)) /* (so record numbers stay below HK_SERVED_MAX_RECS: at most count are in use) */
        return NULL;
    if ((t->count + 1) * 4 > t->cap * 3 && grow(t) != 0)
        return NULL;
    size_t len = strlen(path);
    if (len >= HK_SERVED_PATH_MAX)
        return NULL;
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path) + 1 : 0, n = len - dir;
    bool ext = n > EXT_LEN && memcmp(path + len - EXT_LEN, EXT, EXT_LEN) == 0;
    if (ext)
        n -= EXT_LEN;
    uint32_t base_off;
    if (!names_add(t, path + dir, n, &base_off))
        return NULL;
    hk_served_folder *f = folder_ref(t, path, dir);
    uint32_t num = f ? alloc_number(t) : NO_REC;
    if (num == NO_REC) {
        if (f)
            folder_unref(t, f);
        t->names_len = base_off; /* the name was the last one added */
        return NULL;
    }
    hk_served_rec *r = rec_at(t, num);
    r->folder = f;
    r->torrent_ext = ext;
    r->base_off = base_off;
    uint32_t h = hash_path(path);
    put(t, t->by_path, home_of(t, h), slot_val(num, h));
    t->last_rec = r;
    t->last_num = num;
    t->count++;
    return r;
}

/* Removes slot i of tab and shifts back the entries of its probe run that may move (no tombstones). */
static void erase(hk_served *t, uint32_t *tab, size_t i)
{
    tab[i] = 0;
    for (size_t j = next_slot(t, i); tab[j]; j = next_slot(t, j)) {
        const hk_served_rec *r = rec_of(t, tab[j]);
        size_t k = home_path(t, r);
        /* The entry at j stays if its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        tab[i] = tab[j];
        tab[j] = 0;
        i = j;
    }
}

/* The slot of tab holding rec, probing from home; the table must hold it. */
static size_t slot_of(const hk_served *t, const uint32_t *tab, size_t home, const hk_served_rec *rec)
{
    size_t i = home;
    while (tab[i] && rec_of(t, tab[i]) != rec)
        i = next_slot(t, i);
    assert(tab[i] && "a record is indexed where its home's probe run reaches");
    return i;
}

static void unindex_storage(hk_served *t, hk_served_rec *r)
{
    t->by_index[index_of(hk_served_storage(r))] = 0;
    t->with_storage--;
}

/* Room in by_index for table index i (doubling). 0, or -1 when out of memory (nothing changed). */
static int index_room(hk_served *t, uint32_t i)
{
    if (i < t->capindex)
        return 0;
    uint64_t ncap = t->capindex ? t->capindex : 64;
    while (ncap <= i)
        ncap *= 2;
    if (ncap > UINT32_MAX)
        return -1;
    uint32_t *n = realloc(t->by_index, (size_t)ncap * sizeof *n);
    if (!n)
        return -1;
    memset(n + t->capindex, 0, (size_t)(ncap - t->capindex) * sizeof *n);
    t->by_index = n;
    t->capindex = (uint32_t)ncap;
    return 0;
}

int hk_served_set_storage(hk_served *t, hk_served_rec *rec, uint64_t storage)
{
    if (hk_served_storage(rec) == storage)
        return 0;
    if (storage && (!is_handle(storage) || index_room(t, index_of(storage)) != 0))
        return -1; /* not a handle, or out of memory: rec keeps what it had */
    if (hk_served_storage(rec))
        unindex_storage(t, rec);
    rec->storage_gen = (uint16_t)(storage >> 32);
    if (storage) {
        rec->torrent = index_of(storage);
        assert(t->by_index[index_of(storage)] == 0 && "one live storage per table index");
        assert(rec != t->last_rec || rec_at(t, t->last_num) == rec);
        uint32_t v = rec == t->last_rec ? t->last_num + 1 /* just inserted: no probe (nor hash) needed */
                                        : t->by_path[slot_of(t, t->by_path, home_path(t, rec), rec)] & NUM_MASK;
        t->by_index[index_of(storage)] = v;
        t->with_storage++;
    }
    return 0;
}

void hk_served_delete(hk_served *t, hk_served_rec *rec)
{
    hk_served_set_storage(t, rec, 0);
    size_t i = slot_of(t, t->by_path, home_path(t, rec), rec);
    uint32_t num = (t->by_path[i] & NUM_MASK) - 1;
    erase(t, t->by_path, i);
    if (rec == t->last_rec)
        t->last_rec = NULL;
    t->names_garbage += (uint32_t)strlen(base_of(rec)) + 1;
    folder_unref(t, (hk_served_folder *)rec->folder);
    memset(rec, 0, sizeof *rec); /* folder NULL: free */
    rec->base_off = t->free_head;
    t->free_head = num;
    t->count--;
    if (t->names_garbage > ARENA_MIN_COMPACT && t->names_garbage * 2 > t->names_len)
        names_compact(t);
}

void hk_served_clear_marks(hk_served *t)
{
    for (uint32_t i = 0; i < t->nrecs; i++) {
        hk_served_rec *r = rec_at(t, i);
        if (r->folder) /* (a free one keeps the free list in base_off) */
            r->mark = 0;
    }
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
        uint32_t v = t->by_path[(*cursor)++];
        if (v)
            return rec_of(t, v);
    }
    return NULL;
}

size_t hk_served_memory(const hk_served *t)
{
    return sizeof *t + t->cap * sizeof(uint32_t) + (size_t)t->capindex * sizeof(uint32_t) +
           hk_sa_bytes(&t->recs) +
           t->names_cap + hk_served_folder_bytes(t);
}

size_t hk_served_folder_bytes(const hk_served *t)
{
    return t->fcap * sizeof *t->folders + t->fbytes;
}
