/* store_map: the mappings of the store (layering in store_internal.h, contract in store.h).
 *
 * Owns the open slots: lazy open + fstat check + mmap (PROT_READ, MAP_SHARED, one guard page past the end) of a data
 * file on its first use, the budgets of mapped bytes and open descriptors, the LRU of unpinned open files (evicted
 * from its tail), the free list of unused slots, pins (hk_store_pin / hk_store_unpin), the shared zero region of pad
 * files, failure marking and change detection (hk_store_check). Closing a slot calls down into the caches
 * (store_cache.c) so that no recorded prefetch or cached window outlives it.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_internal.h"
#include "store_path.h"

size_t st_page_size(void)
{
    /* Asked once: it is called per block served (residency, prefetch) and sysconf showed in perf (1 % of hekate at
     * K = 500). Any thread may be first; they all store the same value. */
    static size_t pg;
    size_t v = __atomic_load_n(&pg, __ATOMIC_RELAXED);
    if (v == 0) {
        v = (size_t)sysconf(_SC_PAGESIZE);
        __atomic_store_n(&pg, v, __ATOMIC_RELAXED);
    }
    return v;
}

/* A file is mapped with one page more than it holds (rounded up to pages): that guard page lies wholly past the end
 * of the file, so it can never be in the page cache. It is never touched; it only tells whether mincore tells the
 * truth for this mapping (st_mincore_is_blind). */
size_t st_map_length(uint64_t len)
{
    size_t pg = st_page_size();
    return ((size_t)len + pg - 1) / pg * pg + pg;
}

/* ---- LRU of unpinned open files (head: most recently used) ---- */

static void lru_push_front(hk_store *st, st_slot *sl)
{
    hk_list_insert_head(&st->lru, &sl->link);
}

void st_lru_touch(hk_store *st, uint32_t i)
{
    st_slot *sl = st_slot_at(st, i);
    if (sl->pins == 0) {
        assert(hk_list_linked(&sl->link));
        hk_list_remove(&sl->link);
        lru_push_front(st, sl);
    }
}

/* ---- slots ---- */

/* An unused slot: the one closed last, else a new one. NONE with errno ENOMEM if out of memory, EMFILE if
 * ST_MAX_SLOTS files are open already (slot numbers are 16 bits in a storage's entry: store.h). */
static uint32_t slot_alloc(hk_store *st)
{
    hk_list *reuse = hk_list_first(&st->free_slots);
    if (reuse != NULL) {
        hk_list_remove(reuse);
        return HK_LIST_ENTRY(reuse, st_slot, link)->index;
    }
    errno = EMFILE;
    if (st->nslots >= ST_MAX_SLOTS)
        return NONE;
    errno = ENOMEM;
    if (st->nslots == st->capslots) {
        st_slot **n = st_grow(st->slots, &st->capslots, 16, sizeof *n);
        if (n == NULL)
            return NONE;
        st->slots = n;
    }
    st_slot *sl = calloc(1, sizeof *sl);
    if (sl == NULL)
        return NONE;
    sl->index = st->nslots;
    sl->fd = -1;
    hk_list_init(&sl->link);
    st->slots[st->nslots] = sl;
    return st->nslots++;
}

/* Puts an unused slot (on no list) back on the free list. */
static void slot_release(hk_store *st, st_slot *sl)
{
    assert(!hk_list_linked(&sl->link));
    sl->fd = -1;
    sl->map = NULL;
    hk_list_insert_head(&st->free_slots, &sl->link);
}

/* Unmaps and closes slot i (unpinned, hence on the LRU list) and detaches it from its file. Recorded prefetches are
 * issued first (those of a failed or removed storage are dropped), so no record outlives its slot, and the residency
 * cache is dropped: the slot may be reused for another file in the same loop iteration. */
static void slot_close(hk_store *st, uint32_t i)
{
    if (st->npf > 0)
        st_pf_flush(st);
    st_rc_drop_all(st);
    st_slot *sl = st_slot_at(st, i);
    assert(sl->fd >= 0 && sl->pins == 0);
    hk_list_remove(&sl->link);
    munmap(sl->map, st_map_length(sl->len));
    close(sl->fd);
    st->mapped -= sl->len;
    st->open--;
    st->blind -= sl->blind;
    st->unmaps++;
    st_set_fslot(st_at(st, sl->sidx), sl->file, NONE);
    slot_release(st, sl);
}

/* Closes least recently used files until `need_fds` more descriptors and `need_bytes` more mapped bytes fit. */
static void evict(hk_store *st, uint32_t need_fds, uint64_t need_bytes)
{
    while (!hk_list_empty(&st->lru) && ((uint64_t)st->open + need_fds > st->lim.max_open_files ||
                                        st->mapped + need_bytes > st->lim.max_mapped_bytes))
        slot_close(st, HK_LIST_ENTRY(hk_list_last(&st->lru), st_slot, link)->index);
}

void st_close_all(hk_store *st)
{
    for (uint32_t i = 0; i < st->nslots; i++) {
        st_slot *sl = st_slot_at(st, i);
        if (sl->fd >= 0) { /* pinned or not: the caller promised nothing is in flight */
            munmap(sl->map, st_map_length(sl->len));
            close(sl->fd);
        }
        free(sl);
    }
}

/* ---- failure ---- */

void st_close_unpinned(hk_store *st, st_storage *s)
{
    for (uint32_t f = 0; f <= s->nfiles; f++) {
        uint32_t i = st_fslot(s, f);
        if (i != NONE && i != SLOT_PAD && st_slot_at(st, i)->pins == 0)
            slot_close(st, i);
    }
}

int64_t st_stat_mtime_ns(const struct stat *sb)
{
    return (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
}

bool st_note_mtime(hk_store *st, st_storage *s, uint32_t f, int64_t m)
{
    if (f >= s->nfiles || (s->flags & ST_FAILED) || m <= s->stamp_ns)
        return false; /* the .torrent's own changes are the catalog's (hk_store_next_open_torrent) */
    s->stamp_ns = m;
    if (!(s->flags & ST_MODIFIED)) {
        s->flags |= ST_MODIFIED;
        st->modified++;
    }
    return true;
}

/* Its recorded prefetches are dropped at the next flush (the flag is checked there) and the residency cache is
 * dropped. */
bool st_mark_failed(hk_store *st, st_storage *s)
{
    if (s->flags & ST_FAILED)
        return false;
    if (s->flags & ST_MODIFIED) {
        s->flags &= (uint8_t)~ST_MODIFIED; /* failed: nothing of it is served, there are no marks to drop */
        st->modified--;
    }
    s->flags |= ST_FAILED;
    st_rc_drop_all(st);
    s->why = strdup(st->err);
    st_close_unpinned(st, s);
    return true;
}

/* ---- opening and mapping ---- */

/* A data fault while acquiring: closes fd (if open), marks s failed, NONE with errno EIO. */
static uint32_t acquire_fault(hk_store *st, st_storage *s, int fd)
{
    if (fd >= 0)
        close(fd);
    st_mark_failed(st, s);
    errno = EIO;
    return NONE;
}

int st_open_checked(hk_store *st, st_storage *s, uint32_t f, const char *rel, int *fd, struct stat *sb)
{
    char rbuf[PATH_BUF];
    sp_beneath b;
    sp_status ps = f < s->nfiles && st_beneath(st, s->folder, rbuf, &b)
                       ? sp_open_beneath(&b, rel, fd, sb, st->err, sizeof st->err)
                       : sp_open_regular(st_folder_of(s, f)->path, &st_folder_of(s, f)->id, rel, fd, sb, st->err,
                                         sizeof st->err);
    if (ps == SP_TRANSIENT)
        return -1; /* errno from sp_open_regular */
    if (ps != SP_OK) {
        acquire_fault(st, s, -1);
        return -1;
    }
    uint64_t want = st_flen(s, f);
    if (sb->st_size < 0 || (uint64_t)sb->st_size != want) {
        st_set_err(st, "%s/%s: size %lld but %s %llu", st_folder_of(s, f)->path, rel, (long long)sb->st_size,
                   f == s->nfiles ? "it had" : "the torrent says", (unsigned long long)want);
        acquire_fault(st, s, *fd);
        return -1;
    }
    if (want > SIZE_MAX - 2 * st_page_size()) {
        st_set_err(st, "%s/%s: too large to map", st_folder_of(s, f)->path, rel);
        acquire_fault(st, s, *fd);
        return -1;
    }
    return 0;
}

/* mmap failed for file f in slot i (not yet used) and descriptor fd: both are given back. Running out of address space or
 * descriptors is transient; anything else marks s failed. */
static uint32_t map_failed(hk_store *st, st_storage *s, uint32_t f, uint32_t i, int fd, const char *rel)
{
    int e = errno;
    close(fd);
    slot_release(st, st_slot_at(st, i));
    st_set_err(st, "%s/%s: mmap: %s", st_folder_of(s, f)->path, rel, strerror(e));
    if (e == ENOMEM || e == EAGAIN || e == ENFILE) {
        errno = e;
        return NONE;
    }
    return acquire_fault(st, s, -1);
}

/* Slot i now holds the mapping of file f of storage sidx: it joins the LRU at its front. */
static void slot_fill(hk_store *st, uint32_t i, uint32_t sidx, uint32_t f, int fd, const struct stat *sb, void *map)
{
    st_storage *s = st_at(st, sidx);
    st_slot *sl = st_slot_at(st, i);
    sl->map = map;
    sl->len = st_flen(s, f);
    sl->dev = (uint64_t)sb->st_dev;
    sl->ino = (uint64_t)sb->st_ino;
    sl->mtime_ns = st_stat_mtime_ns(sb);
    sl->sidx = sidx;
    sl->file = f;
    sl->pins = 0;
    sl->fd = fd;
    sl->blind = st_mincore_is_blind(sl);
    st->mincore_calls++;
    st->blind += sl->blind;
    lru_push_front(st, sl);
    st_set_fslot(s, f, i);
    st->open++;
    st->mapped += sl->len;
    st->maps++;
}

uint32_t st_slot_acquire(hk_store *st, uint32_t sidx, st_storage *s, uint32_t f)
{
    uint32_t cur = st_fslot(s, f);
    if (cur != NONE)
        return cur;
    char rel[PATH_BUF];
    st_file_rel(st, sidx, s, f, rel, sizeof rel);
    evict(st, 1, 0);
    int fd;
    struct stat sb;
    if (st_open_checked(st, s, f, rel, &fd, &sb) != 0)
        return NONE;
    st_note_mtime(st, s, f, st_stat_mtime_ns(&sb)); /* written while it was closed */
    uint32_t i = slot_alloc(st);
    if (i == NONE) {
        int e = errno;
        close(fd);
        if (e == EMFILE)
            st_set_err(st, "%s/%s: too many files open at once (%u, the store's cap)", st_folder_of(s, f)->path, rel,
                       ST_MAX_SLOTS);
        else
            st_set_err(st, "%s/%s: out of memory", st_folder_of(s, f)->path, rel);
        errno = e;
        return NONE;
    }
    uint64_t want = st_flen(s, f);
    evict(st, 1, want);
    void *map = mmap(NULL, st_map_length(want), PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        return map_failed(st, s, f, i, fd, rel);
    slot_fill(st, i, sidx, f, fd, &sb, map);
    return i;
}

/* ---- public: pins ---- */

static const uint8_t *zero_region(hk_store *st)
{
    if (st->zeros == NULL) {
        void *z = mmap(NULL, ZERO_REGION_BYTES, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (z == MAP_FAILED) {
            int e = errno;
            st_set_err(st, "zero region: mmap: %s", strerror(e));
            errno = e;
            return NULL;
        }
        st->zeros = z;
    }
    return st->zeros;
}

/* Pins file f of s (resolved and healthy) for ext. 0, or -1 with errno and st->err set. */
static int pin_file(hk_store *st, uint32_t sidx, st_storage *s, uint32_t f, const hk_extent *ext,
                    struct iovec *iov)
{
    if (s->pins >= ST_MAX_PINS) { /* the entry counts them in 24 bits: refused like a passing shortage */
        char rel[PATH_BUF];
        st_file_rel(st, sidx, s, f, rel, sizeof rel);
        st_set_err(st, "%s/%s: pinned %u times already", st_folder_of(s, f)->path, rel, ST_MAX_PINS);
        errno = EAGAIN;
        return -1;
    }
    if (st_fslot(s, f) == SLOT_PAD) {
        const uint8_t *z = zero_region(st);
        if (z == NULL)
            return -1;
        iov->iov_base = (void *)z;
        iov->iov_len = ext->length;
        s->pins++;
        return 0;
    }
    uint32_t i = st_slot_acquire(st, sidx, s, f);
    if (i == NONE)
        return -1;
    st_slot *sl = st_slot_at(st, i);
    if (sl->pins++ == 0) {
        hk_list_remove(&sl->link); /* a pinned file is never evicted: off the LRU */
        st->pinned_files++;
    }
    s->pins++;
    iov->iov_base = sl->map + ext->offset;
    iov->iov_len = ext->length;
    return 0;
}

int hk_store_pin(hk_store *st, const hk_extent *ext, struct iovec *iov, const char **why)
{
    uint32_t sidx, f;
    st_storage *s;
    int rc = st_resolve(st, ext, &sidx, &s, &f);
    if (rc == 0 && (s->flags & ST_FAILED))
        rc = st_failed_error(st, s);
    if (rc == 0)
        rc = pin_file(st, sidx, s, f, ext, iov);
    if (rc != 0 && why != NULL)
        *why = st->err;
    return rc;
}

void hk_store_unpin(hk_store *st, const hk_extent *ext)
{
    uint32_t sidx;
    st_storage *s = st_lookup(st, ext->storage, true, &sidx);
    if (s == NULL)
        return;
    uint32_t f = st_file_index(s, ext->file);
    if (f > s->nfiles || s->pins == 0)
        return;
    uint32_t i = st_fslot(s, f);
    if (i == NONE)
        return; /* not pinned: a caller bug, ignored */
    if (i != SLOT_PAD) {
        st_slot *sl = st_slot_at(st, i);
        if (sl->pins == 0)
            return;
        if (--sl->pins == 0) {
            st->pinned_files--;
            lru_push_front(st, sl);
            if (s->flags & (ST_FAILED | ST_REMOVED))
                slot_close(st, i);
            else
                evict(st, 0, 0); /* budgets may have been exceeded while everything was pinned */
        }
    }
    if (--s->pins == 0 && (s->flags & ST_REMOVED))
        st_storage_free(st, sidx);
}

/* ---- public: change detection ---- */

/* Checks one open file of a live storage against the disk. true if it changed (st->err says how); false also when
 * its path could not be looked at for lack of resources (the next check tries again). A new mtime with the same
 * size and inode (written in place) is not a failure: the storage is flagged modified (st_note_mtime). */
static bool slot_changed(hk_store *st, st_slot *sl, st_storage *s)
{
    char rel[PATH_BUF];
    st_file_rel(st, sl->sidx, s, sl->file, rel, sizeof rel);
    struct stat sb;
    if (fstat(sl->fd, &sb) != 0) {
        st_set_err(st, "%s/%s: fstat: %s", st_folder_of(s, sl->file)->path, rel, strerror(errno));
        return true;
    }
    if (sb.st_size < 0 || (uint64_t)sb.st_size != sl->len) {
        st_set_err(st, "%s/%s: size changed from %llu to %lld", st_folder_of(s, sl->file)->path, rel, (unsigned long long)sl->len,
                   (long long)sb.st_size);
        return true;
    }
    if (sb.st_nlink == 0) {
        st_set_err(st, "%s/%s: deleted", st_folder_of(s, sl->file)->path, rel);
        return true;
    }
    if (st_stat_mtime_ns(&sb) != sl->mtime_ns) {
        sl->mtime_ns = st_stat_mtime_ns(&sb);
        if (!st_note_mtime(st, s, sl->file, sl->mtime_ns) && sl->file < s->nfiles && !(s->flags & ST_MODIFIED)) {
            s->flags |= ST_MODIFIED; /* moved, even backwards (touch -d): its bytes may have changed */
            st->modified++;
        }
    }
    char rbuf[PATH_BUF];
    sp_beneath b;
    sp_status ps = sl->file < s->nfiles && st_beneath(st, s->folder, rbuf, &b)
                       ? sp_open_beneath(&b, rel, NULL, &sb, st->err, sizeof st->err)
                       : sp_stat_regular(st_folder_of(s, sl->file)->path, &st_folder_of(s, sl->file)->id, rel, &sb,
                                         st->err, sizeof st->err);
    if (ps == SP_TRANSIENT)
        return false;
    if (ps != SP_OK)
        return true;
    if ((uint64_t)sb.st_dev != sl->dev || (uint64_t)sb.st_ino != sl->ino) {
        st_set_err(st, "%s/%s: replaced by another file", st_folder_of(s, sl->file)->path, rel);
        return true;
    }
    return false;
}

uint32_t hk_store_check(hk_store *st)
{
    uint32_t newly = 0;
    for (uint32_t i = 0; i < st->nslots; i++) {
        st_slot *sl = st_slot_at(st, i);
        if (sl->fd < 0)
            continue;
        st_storage *s = st_at(st, sl->sidx);
        if (s->flags & (ST_FAILED | ST_REMOVED))
            continue;
        if (slot_changed(st, sl, s) && st_mark_failed(st, s))
            newly++;
    }
    return newly + st->modified;
}
