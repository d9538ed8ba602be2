/* store: storages (compact per-torrent file tables), lazy open + mmap of their files under an LRU with budgets,
 * pins, residency, prefetch, page-in jobs and change detection (contract in store.h; path walking in store_path.c).
 *
 * Data layout (sizes on x86-64):
 *   handle table  st_entry[]   16 bytes per storage: pointer, generation (stale handles never resolve), free link
 *   storage       st_storage   32 bytes + 16 bytes per file (+1 entry for the .torrent) + names (one allocation)
 *   folder        st_folder    shared by consecutive storages of the same folder (a directory scan adds them so)
 *   open file     st_slot      64 bytes, only while the file is open and mapped (bounded by max_open_files + pinned)
 *   batching      st_pf[]      24 bytes per prefetch recorded in the current loop iteration (at most PF_MAX)
 *                 st_rc[]      RC_ENTRIES x 24 bytes: the residency cache, one 64-page window per entry
 * A handle is (generation << 32) | (table index + 1), so it is never 0.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_path.h"

#define NONE UINT32_MAX
#define SLOT_PAD (UINT32_MAX - 1)                /* st_file.slot of a pad file: no file on disk, zeros */
#define ZERO_REGION_BYTES ((size_t)1 << 32)      /* > any extent (length is a uint32_t); reserved, never touched */
#define PATH_BUF (MI_MAX_PATH + NAME_MAX + 2)
#define PF_MAX 4096u                             /* prefetches recorded before an early flush */
#define RC_PAGES 64u                             /* pages per residency window: one bit each in a uint64_t */
#define RC_BITS 8u
#define RC_ENTRIES (1u << RC_BITS)               /* windows cached at once (direct-mapped) */
#define PROBE_IOVS 64                            /* iovecs per RWF_NOWAIT probe read */

typedef struct st_folder {
    uint32_t refs;
    char path[];                                 /* absolute, from realpath */
} st_folder;

typedef struct st_file {
    uint64_t length;                             /* bytes, from the metainfo (the .torrent: its size at add) */
    uint32_t path;                               /* offset in the storage's names of its path below the root */
    uint32_t slot;                               /* NONE (closed), SLOT_PAD, or index in hk_store.slots */
} st_file;

typedef struct st_storage {
    st_folder *folder;
    char *why;                                   /* malloc'd reason once failed (NULL: "failed", out of memory) */
    uint32_t nfiles;                             /* data files; files[nfiles] is the .torrent file */
    uint32_t pins;                               /* pins outstanding on any of its files (pad files included) */
    uint32_t names_len;
    uint16_t name_off;                           /* offset in names of the torrent's name (0: the .torrent name) */
    uint8_t flags;                               /* ST_* */
    st_file files[];                             /* nfiles + 1, then names_len bytes of names */
} st_storage;

enum { ST_MULTI_FILE = 1, ST_FAILED = 2, ST_REMOVED = 4 };

/* The per-torrent figures above are a design target (millions of torrents): keep them from growing unnoticed. */
_Static_assert(sizeof(st_file) == 16, "a file entry is 16 bytes");
_Static_assert(sizeof(st_storage) <= 16 + 2 * sizeof(void *), "a storage record is 32 bytes on LP64");

typedef struct st_entry {
    st_storage *s;                               /* NULL when free */
    uint32_t gen;
    uint32_t next_free;
} st_entry;

typedef struct st_slot {
    uint8_t *map;                                /* len bytes of file, then one guard page past its end */
    uint64_t len;
    uint64_t dev, ino;
    uint32_t sidx, file;                         /* owner: table index and file index */
    uint32_t pins;
    uint32_t prev, next;                         /* LRU links while unpinned; next = free link when unused */
    int fd;                                      /* -1 when the slot is unused */
    uint8_t blind;                               /* mincore lies for this file: probe with RWF_NOWAIT reads */
} st_slot;

/* A prefetch recorded while batching: file offsets [first, end) of open slot `slot` (first is page-aligned). */
typedef struct st_pf {
    uint64_t first, end;
    uint32_t slot;
} st_pf;

/* One cached residency window: pages [window * RC_PAGES, +RC_PAGES) of open slot `slot`, clipped to the file's
 * pages; bit k set if page k was resident when mincore was asked. Valid only while epoch == hk_store.epoch. */
typedef struct st_rc {
    uint64_t bits;
    uint64_t window;
    uint32_t slot;
    uint32_t epoch;
} st_rc;

struct hk_store {
    hk_store_limits lim;
    st_entry *tab;
    uint32_t ntab, captab, free_tab;
    st_slot *slots;
    uint32_t nslots, capslots, free_slot;
    uint32_t lru_head, lru_tail;                 /* head: most recently used */
    uint32_t open, pinned_files, storages, blind;
    uint64_t mapped, maps, unmaps;
    st_folder *last_folder;
    uint8_t *zeros;                              /* ZERO_REGION_BYTES of PROT_READ anonymous memory, lazily */
    bool batching;                               /* hk_store_set_batching */
    st_pf *pf;                                   /* prefetches recorded, not yet advised */
    uint32_t npf, cappf;
    st_rc *rc;                                   /* RC_ENTRIES while batching (NULL: out of memory, no cache) */
    uint32_t epoch;                              /* >= 1; entries of other epochs are invalid */
    uint64_t madvise_calls, madvise_skipped, mincore_calls, probe_calls, rc_hits;
    char err[PATH_BUF + 128];
};

static const char *storage_names(const st_storage *s)
{
    return (const char *)(s->files + s->nfiles + 1);
}

static void set_err(hk_store *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(hk_store *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->err, sizeof st->err, fmt, ap);
    va_end(ap);
}

void hk_store_limits_default(hk_store_limits *lim)
{
    lim->max_mapped_bytes = 16ull << 30;
    lim->max_open_files = 1024;
}

hk_store *hk_store_new(const hk_store_limits *lim)
{
    hk_store *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    if (lim != NULL)
        st->lim = *lim;
    else
        hk_store_limits_default(&st->lim);
    st->free_tab = NONE;
    st->free_slot = NONE;
    st->lru_head = st->lru_tail = NONE;
    return st;
}

/* ---- handles ---- */

static st_storage *lookup(const hk_store *st, uint64_t handle, bool include_removed, uint32_t *sidx)
{
    uint32_t low = (uint32_t)handle;
    uint32_t gen = (uint32_t)(handle >> 32);
    if (low == 0 || low > st->ntab)
        return NULL;
    const st_entry *e = &st->tab[low - 1];
    if (e->s == NULL || e->gen != gen || ((e->s->flags & ST_REMOVED) && !include_removed))
        return NULL;
    if (sidx != NULL)
        *sidx = low - 1;
    return e->s;
}

/* The path of file f below the folder ("<name>", "<name>/<path>", or the .torrent's name). */
static void file_rel(const st_storage *s, uint32_t f, char *buf, size_t cap)
{
    const char *names = storage_names(s);
    if (f == s->nfiles)
        snprintf(buf, cap, "%s", names);
    else if (s->flags & ST_MULTI_FILE)
        snprintf(buf, cap, "%s/%s", names + s->name_off, names + s->files[f].path);
    else
        snprintf(buf, cap, "%s", names + s->name_off);
}

/* ---- LRU of unpinned open files ---- */

static void lru_unlink(hk_store *st, uint32_t i)
{
    st_slot *sl = &st->slots[i];
    if (sl->prev != NONE)
        st->slots[sl->prev].next = sl->next;
    else
        st->lru_head = sl->next;
    if (sl->next != NONE)
        st->slots[sl->next].prev = sl->prev;
    else
        st->lru_tail = sl->prev;
    sl->prev = sl->next = NONE;
}

static void lru_push_front(hk_store *st, uint32_t i)
{
    st_slot *sl = &st->slots[i];
    sl->prev = NONE;
    sl->next = st->lru_head;
    if (st->lru_head != NONE)
        st->slots[st->lru_head].prev = i;
    else
        st->lru_tail = i;
    st->lru_head = i;
}

static void lru_touch(hk_store *st, uint32_t i)
{
    if (st->slots[i].pins == 0 && st->lru_head != i) {
        lru_unlink(st, i);
        lru_push_front(st, i);
    }
}

/* ---- open slots ---- */

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* A file is mapped with one page more than it holds (rounded up to pages): that guard page lies wholly past the end
 * of the file, so it can never be in the page cache. It is never touched; it only tells whether mincore tells the
 * truth for this mapping. */
static size_t map_length(uint64_t len)
{
    size_t pg = page_size();
    return ((size_t)len + pg - 1) / pg * pg + pg;
}

/* Since Linux 5.0, mincore reports the page cache only for files the process owns or could open for writing; for any
 * other file (typical for a seeder: data owned by another user, or on a read-only mount) it claims every page is
 * resident. The guard page exposes that: a truthful mincore says it is not resident. */
static bool mincore_is_blind(const st_slot *sl)
{
    size_t pg = page_size();
    unsigned char v = 0;
    uint8_t *guard = sl->map + map_length(sl->len) - pg;
    return mincore(guard, pg, &v) != 0 || (v & 1) != 0;
}

static uint32_t slot_alloc(hk_store *st)
{
    if (st->free_slot != NONE) {
        uint32_t i = st->free_slot;
        st->free_slot = st->slots[i].next;
        return i;
    }
    if (st->nslots == st->capslots) {
        uint32_t cap = st->capslots ? st->capslots * 2 : 16;
        if (cap <= st->capslots || cap >= NONE - 1)
            return NONE;
        st_slot *n = realloc(st->slots, (size_t)cap * sizeof *n);
        if (n == NULL)
            return NONE;
        st->slots = n;
        st->capslots = cap;
    }
    return st->nslots++;
}

static void pf_flush(hk_store *st);
static void rc_drop_all(hk_store *st);

/* Unmaps and closes slot i (unpinned, hence on the LRU list) and detaches it from its file. Recorded prefetches are
 * issued first (those of a failed or removed storage are dropped), so no record outlives its slot, and the residency
 * cache is dropped: the slot may be reused for another file in the same loop iteration. */
static void slot_close(hk_store *st, uint32_t i)
{
    if (st->npf > 0)
        pf_flush(st);
    rc_drop_all(st);
    st_slot *sl = &st->slots[i];
    lru_unlink(st, i);
    munmap(sl->map, map_length(sl->len));
    close(sl->fd);
    st->mapped -= sl->len;
    st->open--;
    st->blind -= sl->blind;
    st->unmaps++;
    st_storage *s = st->tab[sl->sidx].s;
    s->files[sl->file].slot = NONE;
    sl->fd = -1;
    sl->map = NULL;
    sl->next = st->free_slot;
    st->free_slot = i;
}

/* Closes least recently used files until `need_fds` more descriptors and `need_bytes` more mapped bytes fit. */
static void evict(hk_store *st, uint32_t need_fds, uint64_t need_bytes)
{
    while (st->lru_tail != NONE && ((uint64_t)st->open + need_fds > st->lim.max_open_files ||
                                    st->mapped + need_bytes > st->lim.max_mapped_bytes))
        slot_close(st, st->lru_tail);
}

/* ---- failure ---- */

static void storage_close_unpinned(hk_store *st, st_storage *s)
{
    for (uint32_t f = 0; f <= s->nfiles; f++) {
        uint32_t i = s->files[f].slot;
        if (i != NONE && i != SLOT_PAD && st->slots[i].pins == 0)
            slot_close(st, i);
    }
}

/* Marks s failed with the message in st->err (kept). Returns true if it was not failed before. Its recorded
 * prefetches are dropped at the next flush (the flag is checked there) and the residency cache is dropped. */
static bool mark_failed(hk_store *st, st_storage *s)
{
    if (s->flags & ST_FAILED)
        return false;
    s->flags |= ST_FAILED;
    rc_drop_all(st);
    s->why = strdup(st->err);
    storage_close_unpinned(st, s);
    return true;
}

static void folder_unref(hk_store *st, st_folder *fo)
{
    if (--fo->refs == 0) {
        if (st->last_folder == fo)
            st->last_folder = NULL;
        free(fo);
    }
}

static void storage_free(hk_store *st, uint32_t sidx)
{
    st_storage *s = st->tab[sidx].s;
    folder_unref(st, s->folder);
    free(s->why);
    free(s);
    st_entry *e = &st->tab[sidx];
    e->s = NULL;
    e->gen = e->gen + 1 ? e->gen + 1 : 1;
    e->next_free = st->free_tab;
    st->free_tab = sidx;
}

/* ---- extents ---- */

/* Resolves ext to a live storage and internal file index, checking bounds. -1 (errno EINVAL) if invalid. */
static int resolve(hk_store *st, const hk_extent *ext, uint32_t *sidx, st_storage **sp, uint32_t *fp)
{
    st_storage *s = lookup(st, ext->storage, false, sidx);
    if (s == NULL) {
        set_err(st, "storage %llu: unknown", (unsigned long long)ext->storage);
        errno = EINVAL;
        return -1;
    }
    uint32_t f = ext->file == HK_FILE_METAINFO ? s->nfiles : ext->file;
    if (f > s->nfiles || (f == s->nfiles && ext->file != HK_FILE_METAINFO)) {
        set_err(st, "storage %llu: no file %u", (unsigned long long)ext->storage, ext->file);
        errno = EINVAL;
        return -1;
    }
    uint64_t len = s->files[f].length;
    if (ext->length == 0 || ext->offset > len || ext->length > len - ext->offset) {
        set_err(st, "storage %llu file %u: extent [%llu, +%u) outside its %llu bytes", (unsigned long long)ext->storage,
                ext->file, (unsigned long long)ext->offset, ext->length, (unsigned long long)len);
        errno = EINVAL;
        return -1;
    }
    *sp = s;
    *fp = f;
    return 0;
}

static int failed_error(hk_store *st, const st_storage *s)
{
    set_err(st, "%s", s->why ? s->why : "storage failed");
    errno = EIO;
    return -1;
}

/* Opens and maps file f of s if it is not already. Returns the slot index, or NONE with errno set (EIO: the storage
 * is now failed; otherwise a transient error) and st->err filled. */
static uint32_t slot_acquire(hk_store *st, uint32_t sidx, st_storage *s, uint32_t f)
{
    uint32_t cur = s->files[f].slot;
    if (cur != NONE)
        return cur;
    char rel[PATH_BUF];
    file_rel(s, f, rel, sizeof rel);
    evict(st, 1, 0);
    int fd;
    struct stat sb;
    sp_status ps = sp_open_regular(s->folder->path, rel, &fd, &sb, st->err, sizeof st->err);
    if (ps == SP_TRANSIENT)
        return NONE; /* errno from sp_open_regular */
    if (ps != SP_OK) {
        mark_failed(st, s);
        errno = EIO;
        return NONE;
    }
    uint64_t want = s->files[f].length;
    if (sb.st_size < 0 || (uint64_t)sb.st_size != want) {
        close(fd);
        set_err(st, "%s/%s: size %lld but %s %llu", s->folder->path, rel, (long long)sb.st_size,
                f == s->nfiles ? "it had" : "the torrent says", (unsigned long long)want);
        mark_failed(st, s);
        errno = EIO;
        return NONE;
    }
    if (want > SIZE_MAX - 2 * page_size()) {
        close(fd);
        set_err(st, "%s/%s: too large to map", s->folder->path, rel);
        mark_failed(st, s);
        errno = EIO;
        return NONE;
    }
    uint32_t i = slot_alloc(st);
    if (i == NONE) {
        close(fd);
        set_err(st, "%s/%s: out of memory", s->folder->path, rel);
        errno = ENOMEM;
        return NONE;
    }
    evict(st, 1, want);
    void *map = mmap(NULL, map_length(want), PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        int e = errno;
        close(fd);
        st->slots[i].next = st->free_slot;
        st->slots[i].fd = -1;
        st->free_slot = i;
        set_err(st, "%s/%s: mmap: %s", s->folder->path, rel, strerror(e));
        if (e == ENOMEM || e == EAGAIN || e == ENFILE) {
            errno = e;
            return NONE;
        }
        mark_failed(st, s);
        errno = EIO;
        return NONE;
    }
    st_slot *sl = &st->slots[i];
    sl->map = map;
    sl->len = want;
    sl->dev = (uint64_t)sb.st_dev;
    sl->ino = (uint64_t)sb.st_ino;
    sl->sidx = sidx;
    sl->file = f;
    sl->pins = 0;
    sl->fd = fd;
    sl->blind = mincore_is_blind(sl);
    st->mincore_calls++;
    st->blind += sl->blind;
    lru_push_front(st, i);
    s->files[f].slot = i;
    st->open++;
    st->mapped += want;
    st->maps++;
    return i;
}

static const uint8_t *zero_region(hk_store *st)
{
    if (st->zeros == NULL) {
        void *z = mmap(NULL, ZERO_REGION_BYTES, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (z == MAP_FAILED) {
            int e = errno;
            set_err(st, "zero region: mmap: %s", strerror(e));
            errno = e;
            return NULL;
        }
        st->zeros = z;
    }
    return st->zeros;
}

/* ---- public: pins ---- */

int hk_store_pin(hk_store *st, const hk_extent *ext, struct iovec *iov, const char **why)
{
    uint32_t sidx, f;
    st_storage *s;
    int rc = resolve(st, ext, &sidx, &s, &f);
    if (rc == 0 && (s->flags & ST_FAILED))
        rc = failed_error(st, s);
    if (rc == 0) {
        if (s->files[f].slot == SLOT_PAD) {
            const uint8_t *z = zero_region(st);
            if (z == NULL) {
                rc = -1;
            } else {
                iov->iov_base = (void *)z;
                iov->iov_len = ext->length;
                s->pins++;
            }
        } else {
            uint32_t i = slot_acquire(st, sidx, s, f);
            if (i == NONE) {
                rc = -1;
            } else {
                st_slot *sl = &st->slots[i];
                if (sl->pins++ == 0) {
                    lru_unlink(st, i);
                    st->pinned_files++;
                }
                s->pins++;
                iov->iov_base = sl->map + ext->offset;
                iov->iov_len = ext->length;
            }
        }
    }
    if (rc != 0 && why != NULL)
        *why = st->err;
    return rc;
}

void hk_store_unpin(hk_store *st, const hk_extent *ext)
{
    uint32_t sidx;
    st_storage *s = lookup(st, ext->storage, true, &sidx);
    if (s == NULL)
        return;
    uint32_t f = ext->file == HK_FILE_METAINFO ? s->nfiles : ext->file;
    if (f > s->nfiles || s->pins == 0)
        return;
    uint32_t i = s->files[f].slot;
    if (i == NONE)
        return; /* not pinned: a caller bug, ignored */
    if (i != SLOT_PAD) {
        st_slot *sl = &st->slots[i];
        if (sl->pins == 0)
            return;
        if (--sl->pins == 0) {
            st->pinned_files--;
            lru_push_front(st, i);
            if (s->flags & (ST_FAILED | ST_REMOVED))
                slot_close(st, i);
            else
                evict(st, 0, 0); /* budgets may have been exceeded while everything was pinned */
        }
    }
    if (--s->pins == 0 && (s->flags & ST_REMOVED))
        storage_free(st, sidx);
}

/* ---- batching: the residency cache ---- */

static uint32_t rc_index(uint32_t slot, uint64_t window)
{
    uint64_t x = ((uint64_t)slot << 40 ^ window) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> (64 - RC_BITS));
}

/* Invalidates every cached window (a new epoch; the table is cleared when the counter wraps). */
static void rc_drop_all(hk_store *st)
{
    if (st->rc == NULL)
        return;
    if (++st->epoch == 0) {
        memset(st->rc, 0, RC_ENTRIES * sizeof *st->rc);
        st->epoch = 1;
    }
}

/* The cached window `window` of slot i, or NULL if it is not cached in this epoch. */
static const st_rc *rc_find(const hk_store *st, uint32_t i, uint64_t window)
{
    const st_rc *e = &st->rc[rc_index(i, window)];
    return e->epoch == st->epoch && e->slot == i && e->window == window ? e : NULL;
}

/* The file's pages (the guard page excluded). */
static uint64_t file_pages(const st_slot *sl)
{
    size_t pg = page_size();
    return (sl->len + pg - 1) / pg;
}

/* Window `window` of slot i, from the cache or from one mincore over it (clipped to the file's pages). NULL if
 * mincore failed (nothing is cached then). */
static const st_rc *rc_window(hk_store *st, uint32_t i, uint64_t window)
{
    const st_rc *hit = rc_find(st, i, window);
    if (hit != NULL) {
        st->rc_hits++;
        return hit;
    }
    const st_slot *sl = &st->slots[i];
    size_t pg = page_size();
    uint64_t p0 = window * RC_PAGES, pages = file_pages(sl);
    size_t n = pages - p0 < RC_PAGES ? (size_t)(pages - p0) : RC_PAGES;
    unsigned char vec[RC_PAGES];
    st->mincore_calls++;
    if (mincore(sl->map + p0 * pg, n * pg, vec) != 0)
        return NULL;
    uint64_t bits = 0;
    for (size_t k = 0; k < n; k++)
        if (vec[k] & 1)
            bits |= 1ull << k;
    st_rc *e = &st->rc[rc_index(i, window)];
    *e = (st_rc){.bits = bits, .window = window, .slot = i, .epoch = st->epoch};
    return e;
}

/* Bits of pages [lo, hi] (0 <= lo <= hi < RC_PAGES). */
static uint64_t page_mask(uint64_t lo, uint64_t hi)
{
    uint64_t n = hi - lo + 1;
    return (n == 64 ? ~0ull : (1ull << n) - 1) << lo;
}

/* true if every page of file bytes [first, end) of slot i is resident according to the cache; windows not cached
 * are asked with mincore only if `fill` (otherwise they count as not known resident). */
static bool rc_resident(hk_store *st, uint32_t i, uint64_t first, uint64_t end, bool fill)
{
    size_t pg = page_size();
    uint64_t p_first = first / pg, p_last = (end - 1) / pg;
    for (uint64_t w = p_first / RC_PAGES; w <= p_last / RC_PAGES; w++) {
        const st_rc *e = fill ? rc_window(st, i, w) : rc_find(st, i, w);
        if (e == NULL)
            return false;
        uint64_t base = w * RC_PAGES;
        uint64_t lo = p_first > base ? p_first - base : 0;
        uint64_t hi = p_last < base + RC_PAGES - 1 ? p_last - base : RC_PAGES - 1;
        uint64_t m = page_mask(lo, hi);
        if ((e->bits & m) != m)
            return false;
    }
    return true;
}

/* Forgets the cached windows that cover file bytes [first, end) of slot i (their pages changed state). */
static void rc_forget(hk_store *st, uint32_t i, uint64_t first, uint64_t end)
{
    if (st->rc == NULL)
        return;
    size_t pg = page_size();
    for (uint64_t w = first / pg / RC_PAGES; w <= (end - 1) / pg / RC_PAGES; w++) {
        st_rc *e = &st->rc[rc_index(i, w)];
        if (e->slot == i && e->window == w)
            e->epoch = 0;
    }
}

/* ---- batching: prefetch records ---- */

static void advise(hk_store *st, const st_slot *sl, uint64_t first, uint64_t end)
{
    st->madvise_calls++;
    madvise(sl->map + first, (size_t)(end - first), MADV_WILLNEED);
}

static int pf_cmp(const void *a, const void *b)
{
    const st_pf *x = a, *y = b;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* Issues the recorded prefetches: per file, records whose page ranges touch or overlap are merged into one run, and
 * one madvise covers each run: exactly the pages the records asked for, nothing more. A run whose pages the cache
 * of this epoch already knows to be resident is skipped (WILLNEED would do nothing for it); records of a failed or
 * removed storage are dropped. */
static void pf_flush(hk_store *st)
{
    uint32_t n = st->npf;
    st->npf = 0; /* first: nothing below records again */
    if (n == 0)
        return;
    if (n > 1)
        qsort(st->pf, n, sizeof *st->pf, pf_cmp);
    size_t pg = page_size();
    for (uint32_t k = 0; k < n;) {
        uint32_t i = st->pf[k].slot;
        uint64_t first = st->pf[k].first, end = st->pf[k].end;
        for (k++; k < n && st->pf[k].slot == i && st->pf[k].first <= (end + pg - 1) / pg * pg; k++)
            if (st->pf[k].end > end)
                end = st->pf[k].end;
        const st_slot *sl = &st->slots[i];
        if (sl->fd < 0 || (st->tab[sl->sidx].s->flags & (ST_FAILED | ST_REMOVED)))
            continue;
        if (st->rc != NULL && !sl->blind && rc_resident(st, i, first, end, false)) {
            st->madvise_skipped++;
            continue;
        }
        advise(st, sl, first, end);
    }
}

/* Records a prefetch of [first, end) of slot i. false if it could not be recorded (out of memory). */
static bool pf_record(hk_store *st, uint32_t i, uint64_t first, uint64_t end)
{
    if (st->npf == st->cappf) {
        if (st->cappf >= PF_MAX) {
            pf_flush(st);
        } else {
            uint32_t cap = st->cappf ? st->cappf * 2 : 64;
            st_pf *n = realloc(st->pf, (size_t)cap * sizeof *n);
            if (n == NULL)
                return false;
            st->pf = n;
            st->cappf = cap;
        }
    }
    st->pf[st->npf++] = (st_pf){.first = first, .end = end, .slot = i};
    return true;
}

/* ---- public: residency and prefetch ---- */

static void page_range(const st_slot *sl, const hk_extent *ext, uint8_t **start, size_t *len)
{
    size_t pg = page_size();
    uint64_t first = ext->offset & ~(uint64_t)(pg - 1);
    *start = sl->map + first;
    *len = (size_t)(ext->offset + ext->length - first);
}

/* Asks the page cache with RWF_NOWAIT reads of [first, first+len) (file offsets): such a read stops short (or fails
 * with EAGAIN) at the first page that is not cached. The iovecs all point into one small buffer, so one call covers
 * up to PROBE_IOVS * sizeof scratch bytes while the copy stays in a few cache lines' worth of memory. Used where
 * mincore is blind. */
static bool probe_resident(hk_store *st, int fd, uint64_t first, size_t len)
{
    static uint8_t scratch[4096]; /* loop thread only; the bytes are never looked at */
    struct iovec iov[PROBE_IOVS];
    while (len > 0) {
        size_t want = 0;
        int n = 0;
        while (n < PROBE_IOVS && want < len) {
            size_t piece = len - want < sizeof scratch ? len - want : sizeof scratch;
            iov[n++] = (struct iovec){scratch, piece};
            want += piece;
        }
        st->probe_calls++;
        ssize_t got = preadv2(fd, iov, n, (off_t)first, RWF_NOWAIT);
        if (got < 0 || (size_t)got != want)
            return false;
        first += want;
        len -= want;
    }
    return true;
}

bool hk_store_resident(hk_store *st, const hk_extent *ext)
{
    uint32_t sidx, f;
    st_storage *s;
    if (resolve(st, ext, &sidx, &s, &f) != 0 || (s->flags & ST_FAILED))
        return false;
    uint32_t i = s->files[f].slot;
    if (i == SLOT_PAD)
        return true;
    if (i == NONE)
        return false;
    lru_touch(st, i);
    const st_slot *sl = &st->slots[i];
    uint8_t *start;
    size_t len;
    page_range(sl, ext, &start, &len);
    bool resident;
    if (sl->blind) {
        resident = probe_resident(st, sl->fd, (uint64_t)(start - sl->map), len);
    } else if (st->rc != NULL) {
        resident = rc_resident(st, i, (uint64_t)(start - sl->map), ext->offset + ext->length, true);
    } else {
        resident = true;
        size_t pg = page_size();
        unsigned char vec[256];
        while (resident && len > 0) {
            size_t chunk = len < sizeof vec * pg ? len : sizeof vec * pg;
            st->mincore_calls++;
            if (mincore(start, chunk, vec) != 0) {
                resident = false;
                break;
            }
            size_t pages = (chunk + pg - 1) / pg;
            for (size_t k = 0; k < pages; k++)
                if (!(vec[k] & 1))
                    resident = false;
            start += chunk;
            len -= chunk;
        }
    }
    if (!resident && st->npf > 0)
        pf_flush(st); /* the disk has work to do: start the recorded prefetches now rather than at the loop's end */
    return resident;
}

void hk_store_prefetch(hk_store *st, const hk_extent *ext)
{
    uint32_t sidx, f;
    st_storage *s;
    if (resolve(st, ext, &sidx, &s, &f) != 0 || (s->flags & ST_FAILED) || s->files[f].slot == SLOT_PAD)
        return;
    uint32_t i = slot_acquire(st, sidx, s, f);
    if (i == NONE)
        return;
    lru_touch(st, i);
    uint64_t first = ext->offset & ~(uint64_t)(page_size() - 1), end = ext->offset + ext->length;
    if (!st->batching || !pf_record(st, i, first, end))
        advise(st, &st->slots[i], first, end);
}

void hk_store_flush_prefetch(hk_store *st)
{
    pf_flush(st);
}

void hk_store_next_epoch(hk_store *st)
{
    rc_drop_all(st);
}

void hk_store_set_batching(hk_store *st, bool on)
{
    if (on == st->batching)
        return;
    pf_flush(st);
    st->batching = on;
    free(st->rc);
    st->rc = on ? calloc(RC_ENTRIES, sizeof *st->rc) : NULL; /* NULL: prefetches batched, residency uncached */
    st->epoch = 1;
}

/* ---- public: page-in jobs ---- */

int hk_store_job_prepare(hk_store *st, const hk_extent *ext, hk_store_job *job)
{
    job->fd = -1;
    job->error = 0;
    uint32_t sidx, f;
    st_storage *s;
    if (resolve(st, ext, &sidx, &s, &f) != 0)
        return -1;
    if (s->flags & ST_FAILED)
        return failed_error(st, s);
    job->storage = ext->storage;
    job->file = ext->file;
    job->offset = ext->offset;
    job->length = ext->length;
    if (s->files[f].slot == SLOT_PAD)
        return 0;
    uint32_t i = slot_acquire(st, sidx, s, f);
    if (i == NONE)
        return -1;
    lru_touch(st, i);
    int fd = fcntl(st->slots[i].fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        set_err(st, "page-in: dup: %s", strerror(e));
        errno = e;
        return -1;
    }
    job->fd = fd;
    return 0;
}

void hk_store_page_in(hk_store_job *job)
{
    job->error = 0;
    if (job->fd < 0)
        return;
#ifdef __linux__
    (void)readahead(job->fd, (off_t)job->offset, job->length); /* one request for the whole range; a hint */
#endif
    uint8_t scratch[64 * 1024]; /* this thread's own buffer: the mapping is never touched here */
    uint64_t off = job->offset;
    uint64_t end = job->offset + job->length;
    while (off < end) {
        size_t want = end - off < sizeof scratch ? (size_t)(end - off) : sizeof scratch;
        ssize_t r = pread(job->fd, scratch, want, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            job->error = errno;
            return;
        }
        if (r == 0) {
            job->error = EIO; /* end of file before the extent's end: the file shrank */
            return;
        }
        off += (uint64_t)r;
    }
}

void hk_store_job_release(hk_store *st, hk_store_job *job)
{
    if (job->fd >= 0)
        close(job->fd);
    job->fd = -1;
    uint32_t sidx;
    st_storage *s = lookup(st, job->storage, false, &sidx);
    if (s == NULL || (s->flags & ST_FAILED))
        return;
    uint32_t f = job->file == HK_FILE_METAINFO ? s->nfiles : job->file;
    if (f > s->nfiles)
        return;
    if (job->error == 0) {
        uint32_t i = s->files[f].slot;
        if (i != NONE && i != SLOT_PAD && job->length > 0)
            rc_forget(st, i, job->offset, job->offset + job->length); /* those pages are resident now */
        return;
    }
    char rel[PATH_BUF];
    file_rel(s, f, rel, sizeof rel);
    set_err(st, "%s/%s: read failed: %s", s->folder->path, rel,
            job->error == EIO ? "shorter than expected or I/O error" : strerror(job->error));
    mark_failed(st, s);
}

/* ---- public: change detection ---- */

uint32_t hk_store_check(hk_store *st)
{
    uint32_t newly = 0;
    for (uint32_t i = 0; i < st->nslots; i++) {
        st_slot *sl = &st->slots[i];
        if (sl->fd < 0)
            continue;
        st_storage *s = st->tab[sl->sidx].s;
        if (s->flags & (ST_FAILED | ST_REMOVED))
            continue;
        char rel[PATH_BUF];
        file_rel(s, sl->file, rel, sizeof rel);
        struct stat sb;
        bool bad = false;
        if (fstat(sl->fd, &sb) != 0) {
            set_err(st, "%s/%s: fstat: %s", s->folder->path, rel, strerror(errno));
            bad = true;
        } else if (sb.st_size < 0 || (uint64_t)sb.st_size != sl->len) {
            set_err(st, "%s/%s: size changed from %llu to %lld", s->folder->path, rel, (unsigned long long)sl->len,
                    (long long)sb.st_size);
            bad = true;
        } else if (sb.st_nlink == 0) {
            set_err(st, "%s/%s: deleted", s->folder->path, rel);
            bad = true;
        } else {
            sp_status ps = sp_stat_regular(s->folder->path, rel, &sb, st->err, sizeof st->err);
            if (ps == SP_TRANSIENT)
                continue;
            if (ps != SP_OK)
                bad = true;
            else if ((uint64_t)sb.st_dev != sl->dev || (uint64_t)sb.st_ino != sl->ino) {
                set_err(st, "%s/%s: replaced by another file", s->folder->path, rel);
                bad = true;
            }
        }
        if (bad && mark_failed(st, s))
            newly++;
    }
    return newly;
}

/* ---- public: storages ---- */

static st_folder *folder_get(hk_store *st, const char *dir, char *err, size_t errlen)
{
    char *real = realpath(dir, NULL);
    if (real == NULL) {
        snprintf(err, errlen, "%s: %s", dir, errno == ENOENT ? "missing" : strerror(errno));
        return NULL;
    }
    if (st->last_folder != NULL && strcmp(st->last_folder->path, real) == 0) {
        free(real);
        st->last_folder->refs++;
        return st->last_folder;
    }
    size_t n = strlen(real);
    st_folder *fo = malloc(sizeof *fo + n + 1);
    if (fo == NULL) {
        free(real);
        snprintf(err, errlen, "%s: out of memory", dir);
        return NULL;
    }
    fo->refs = 1;
    memcpy(fo->path, real, n + 1);
    free(real);
    st->last_folder = fo;
    return fo;
}

static uint32_t table_alloc(hk_store *st)
{
    if (st->free_tab != NONE) {
        uint32_t i = st->free_tab;
        st->free_tab = st->tab[i].next_free;
        return i;
    }
    if (st->ntab == st->captab) {
        uint32_t cap = st->captab ? st->captab * 2 : 64;
        if (cap <= st->captab || cap >= NONE - 1)
            return NONE;
        st_entry *n = realloc(st->tab, (size_t)cap * sizeof *n);
        if (n == NULL)
            return NONE;
        st->tab = n;
        st->captab = cap;
    }
    st->tab[st->ntab].gen = 1;
    return st->ntab++;
}

/* Checks every file of s on disk (symbolic links refused, sizes exact). 0, or -1 with err filled. */
static int storage_verify(st_storage *s, const mi_torrent *mi, char *err, size_t errlen)
{
    int root;
    if (sp_open_folder(s->folder->path, &root, err, errlen) != SP_OK)
        return -1;
    int rc = 0;
    sp_cache cache;
    sp_cache_init(&cache);
    char rel[PATH_BUF];
    struct stat sb;
    file_rel(s, s->nfiles, rel, sizeof rel);
    if (sp_lstat(root, s->folder->path, rel, NULL, &sb, err, errlen) != SP_OK) {
        rc = -1;
    } else if (sb.st_size < 0 || (uint64_t)sb.st_size < mi->info_end) {
        snprintf(err, errlen, "%s/%s: %lld bytes, shorter than its info dictionary's end %zu", s->folder->path, rel,
                 (long long)sb.st_size, mi->info_end);
        rc = -1;
    } else {
        s->files[s->nfiles].length = (uint64_t)sb.st_size;
    }
    for (uint32_t f = 0; rc == 0 && f < s->nfiles; f++) {
        if (s->files[f].slot == SLOT_PAD || s->files[f].length == 0)
            continue; /* no bytes on disk to serve */
        file_rel(s, f, rel, sizeof rel);
        if (sp_lstat(root, s->folder->path, rel, &cache, &sb, err, errlen) != SP_OK) {
            rc = -1;
        } else if (sb.st_size < 0 || (uint64_t)sb.st_size != s->files[f].length) {
            snprintf(err, errlen, "%s/%s: size %lld but the torrent says %llu", s->folder->path, rel,
                     (long long)sb.st_size, (unsigned long long)s->files[f].length);
            rc = -1;
        }
    }
    sp_cache_clear(&cache);
    close(root);
    return rc;
}

uint64_t hk_store_add(hk_store *st, const char *torrent_path, const mi_torrent *mi, char *err, size_t errlen)
{
    char dummy[8];
    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (torrent_path == NULL || mi == NULL || mi->file_count == 0 || mi->info_start >= mi->info_end) {
        snprintf(err, errlen, "invalid arguments");
        return 0;
    }
    const char *slash = strrchr(torrent_path, '/');
    const char *base = slash ? slash + 1 : torrent_path;
    if (!sp_component_ok(base, strlen(base))) {
        snprintf(err, errlen, "%s: not a file name", torrent_path);
        return 0;
    }
    if (!sp_component_ok(mi->name, strlen(mi->name)) || strlen(mi->name) != mi->name_len) {
        snprintf(err, errlen, "%s: torrent name is not a safe file name", torrent_path);
        return 0;
    }

    /* sizes: names = .torrent name, torrent name, then one path per data file (multi-file only) */
    size_t base_len = strlen(base), name_len = mi->name_len;
    uint64_t names = (uint64_t)base_len + 1 + name_len + 1;
    for (uint32_t f = 0; f < mi->file_count; f++) {
        const mi_file *mf = &mi->files[f];
        if ((mf->flags & MI_FILE_PAD) || !mi->multi_file)
            continue;
        const char *path = mi_file_path(mi, f);
        if (!sp_relpath_ok(path)) {
            snprintf(err, errlen, "%s: file %u has an unsafe path", torrent_path, f);
            return 0;
        }
        names += strlen(path) + 1;
    }
    if (names > UINT32_MAX || mi->file_count >= NONE - 1 || base_len + 1 > UINT16_MAX) {
        snprintf(err, errlen, "%s: too many files or names", torrent_path);
        return 0;
    }
    size_t bytes = sizeof(st_storage) + ((size_t)mi->file_count + 1) * sizeof(st_file) + (size_t)names;
    st_storage *s = calloc(1, bytes);
    if (s == NULL) {
        snprintf(err, errlen, "%s: out of memory", torrent_path);
        return 0;
    }
    s->nfiles = mi->file_count;
    s->names_len = (uint32_t)names;
    s->flags = mi->multi_file ? ST_MULTI_FILE : 0;
    char *nm = (char *)(s->files + s->nfiles + 1);
    size_t at = 0;
    memcpy(nm + at, base, base_len + 1);
    at += base_len + 1;
    s->name_off = (uint16_t)at;
    memcpy(nm + at, mi->name, name_len + 1);
    at += name_len + 1;
    for (uint32_t f = 0; f < mi->file_count; f++) {
        const mi_file *mf = &mi->files[f];
        s->files[f].length = mf->length;
        s->files[f].slot = (mf->flags & MI_FILE_PAD) ? SLOT_PAD : NONE;
        s->files[f].path = 0;
        if ((mf->flags & MI_FILE_PAD) || !mi->multi_file)
            continue;
        const char *path = mi_file_path(mi, f);
        size_t pl = strlen(path);
        s->files[f].path = (uint32_t)at;
        memcpy(nm + at, path, pl + 1);
        at += pl + 1;
    }
    s->files[s->nfiles].slot = NONE;
    s->files[s->nfiles].path = 0;

    char dir[PATH_MAX];
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == torrent_path)
        snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - torrent_path) >= sizeof dir) {
        snprintf(err, errlen, "%s: path too long", torrent_path);
        free(s);
        return 0;
    } else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - torrent_path), torrent_path);
    s->folder = folder_get(st, dir, err, errlen);
    if (s->folder == NULL) {
        free(s);
        return 0;
    }
    uint32_t sidx = NONE;
    if (storage_verify(s, mi, err, errlen) != 0 || (sidx = table_alloc(st)) == NONE) {
        if (sidx == NONE && err[0] == '\0')
            snprintf(err, errlen, "%s: out of memory", torrent_path);
        folder_unref(st, s->folder);
        free(s);
        return 0;
    }
    st->tab[sidx].s = s;
    st->storages++;
    return ((uint64_t)st->tab[sidx].gen << 32) | (uint64_t)(sidx + 1);
}

void hk_store_remove(hk_store *st, uint64_t storage)
{
    uint32_t sidx;
    st_storage *s = lookup(st, storage, false, &sidx);
    if (s == NULL)
        return;
    s->flags |= ST_REMOVED;
    st->storages--;
    storage_close_unpinned(st, s);
    if (s->pins == 0)
        storage_free(st, sidx);
}

bool hk_store_failed(const hk_store *st, uint64_t storage, const char **why)
{
    const st_storage *s = lookup(st, storage, false, NULL);
    if (s == NULL) {
        if (why != NULL)
            *why = "unknown storage";
        return true;
    }
    if (!(s->flags & ST_FAILED))
        return false;
    if (why != NULL)
        *why = s->why ? s->why : "storage failed";
    return true;
}

const char *hk_store_last_error(const hk_store *st)
{
    return st->err;
}

void hk_store_stats_get(const hk_store *st, hk_store_stats *out)
{
    out->mapped_bytes = st->mapped;
    out->open_files = st->open;
    out->pinned_files = st->pinned_files;
    out->storages = st->storages;
    out->blind_files = st->blind;
    out->maps = st->maps;
    out->unmaps = st->unmaps;
    out->madvise_calls = st->madvise_calls;
    out->madvise_skipped = st->madvise_skipped;
    out->mincore_calls = st->mincore_calls;
    out->probe_calls = st->probe_calls;
    out->cache_hits = st->rc_hits;
    out->prefetches_pending = st->npf;
}

size_t hk_store_storage_bytes(const hk_store *st, uint64_t storage)
{
    const st_storage *s = lookup(st, storage, false, NULL);
    if (s == NULL)
        return 0;
    size_t n = sizeof *s + ((size_t)s->nfiles + 1) * sizeof(st_file) + s->names_len + sizeof(st_entry);
    n += (sizeof(st_folder) + strlen(s->folder->path) + 1) / s->folder->refs;
    if (s->why != NULL)
        n += strlen(s->why) + 1;
    return n;
}

void hk_store_free(hk_store *st)
{
    if (st == NULL)
        return;
    for (uint32_t i = 0; i < st->nslots; i++) {
        st_slot *sl = &st->slots[i];
        if (sl->fd >= 0) { /* pinned or not: the caller promised nothing is in flight */
            munmap(sl->map, map_length(sl->len));
            close(sl->fd);
        }
    }
    for (uint32_t i = 0; i < st->ntab; i++)
        if (st->tab[i].s != NULL)
            storage_free(st, i);
    if (st->zeros != NULL)
        munmap(st->zeros, ZERO_REGION_BYTES);
    free(st->pf);
    free(st->rc);
    free(st->slots);
    free(st->tab);
    free(st);
}
