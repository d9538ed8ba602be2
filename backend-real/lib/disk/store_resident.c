/* store_resident: residency, prefetch and page-in (layering in store_internal.h, contract in store.h).
 *
 * Owns the answers to "is this extent in the page cache?": mincore over the mapping in chunks of 256 pages, or the
 * residency cache (store_cache.c) while batching, or, for files where mincore is blind (the guard page test),
 * preadv2(RWF_NOWAIT) probes into a scratch buffer. Also hk_store_prefetch (madvise WILLNEED, recorded while
 * batching), the batching switches, and page-in jobs (prepared and released on the loop thread, run on a pool
 * thread with their own descriptor: the mapping is never touched off the loop thread).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "store_internal.h"

/* Since Linux 5.0, mincore reports the page cache only for files the process owns or could open for writing; for any
 * other file (typical for a seeder: data owned by another user, or on a read-only mount) it claims every page is
 * resident. The guard page exposes that: a truthful mincore says it is not resident. */
bool st_mincore_is_blind(const st_slot *sl)
{
    size_t pg = st_page_size();
    unsigned char v = 0;
    uint8_t *guard = sl->map + st_map_length(sl->len) - pg;
    return mincore(guard, pg, &v) != 0 || (v & 1) != 0;
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

/* mincore over [start, start+len) of a mapping, 256 pages per call: true only if every page is resident. */
static bool mincore_resident(hk_store *st, const uint8_t *start, size_t len)
{
    size_t pg = st_page_size();
    unsigned char vec[256];
    bool resident = true;
    while (resident && len > 0) {
        size_t chunk = len < sizeof vec * pg ? len : sizeof vec * pg;
        st->mincore_calls++;
        if (mincore((void *)(uintptr_t)start, chunk, vec) != 0)
            return false;
        size_t pages = (chunk + pg - 1) / pg;
        for (size_t k = 0; k < pages; k++)
            if (!(vec[k] & 1))
                resident = false;
        start += chunk;
        len -= chunk;
    }
    return resident;
}

/* The page-aligned start of ext in the file. */
static uint64_t page_start(uint64_t offset)
{
    return offset & ~(uint64_t)(st_page_size() - 1);
}

bool hk_store_resident(hk_store *st, const hk_extent *ext)
{
    uint32_t sidx, f;
    st_storage *s;
    if (st_resolve(st, ext, &sidx, &s, &f) != 0 || (s->flags & ST_FAILED))
        return false;
    uint32_t i = st_fslot(s, f);
    if (i == SLOT_PAD)
        return true;
    if (i == NONE)
        return false;
    st_lru_touch(st, i);
    const st_slot *sl = st_slot_at(st, i);
    uint64_t first = page_start(ext->offset), end = ext->offset + ext->length;
    bool resident;
    if (sl->blind)
        resident = probe_resident(st, sl->fd, first, (size_t)(end - first));
    else if (st->rc != NULL)
        resident = st_rc_resident(st, i, first, end, true);
    else
        resident = mincore_resident(st, sl->map + first, (size_t)(end - first));
    if (!resident && st->npf > 0)
        st_pf_flush(st); /* the disk has work to do: start the recorded prefetches now rather than at the loop's end */
    return resident;
}

void hk_store_prefetch(hk_store *st, const hk_extent *ext)
{
    uint32_t sidx, f;
    st_storage *s;
    if (st_resolve(st, ext, &sidx, &s, &f) != 0 || (s->flags & ST_FAILED) || st_fslot(s, f) == SLOT_PAD)
        return;
    uint32_t i = st_slot_acquire(st, sidx, s, f);
    if (i == NONE)
        return;
    st_lru_touch(st, i);
    uint64_t first = page_start(ext->offset), end = ext->offset + ext->length;
    if (st->batching && st->rc != NULL && !st_slot_at(st, i)->blind && st_rc_resident(st, i, first, end, false)) {
        st->madvise_skipped++; /* the cache knows it resident: the flush would skip it, so it is not even recorded */
        return;
    }
    if (!st->batching || !st_pf_record(st, i, first, end))
        st_advise(st, st_slot_at(st, i), first, end);
}

void hk_store_flush_prefetch(hk_store *st)
{
    st_pf_flush(st);
}

void hk_store_next_epoch(hk_store *st)
{
    st_rc_next_epoch(st);
    st_folder_cache_drop(st);
}

void hk_store_set_batching(hk_store *st, bool on)
{
    if (on == st->batching)
        return;
    st_pf_flush(st);
    st->batching = on;
    free(st->rc);
    st->rc = on ? calloc(RC_ENTRIES, sizeof *st->rc) : NULL; /* NULL: prefetches batched, residency uncached */
    st->epoch = 1;
}

/* ---- page-in jobs ---- */

int hk_store_job_prepare(hk_store *st, const hk_extent *ext, hk_store_job *job)
{
    job->fd = -1;
    job->error = 0;
    uint32_t sidx, f;
    st_storage *s;
    if (st_resolve(st, ext, &sidx, &s, &f) != 0)
        return -1;
    if (s->flags & ST_FAILED)
        return st_failed_error(st, s);
    job->storage = ext->storage;
    job->file = ext->file;
    job->offset = ext->offset;
    job->length = ext->length;
    if (st_fslot(s, f) == SLOT_PAD)
        return 0;
    uint32_t i = st_slot_acquire(st, sidx, s, f);
    if (i == NONE)
        return -1;
    st_lru_touch(st, i);
    int fd = fcntl(st_slot_at(st, i)->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        st_set_err(st, "page-in: dup: %s", strerror(e));
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
    st_storage *s = st_lookup(st, job->storage, false, &sidx);
    if (s == NULL || (s->flags & ST_FAILED))
        return;
    uint32_t f = st_file_index(s, job->file);
    if (f > s->nfiles)
        return;
    if (job->error == 0) {
        uint32_t i = st_fslot(s, f);
        if (i != NONE && i != SLOT_PAD && job->length > 0)
            st_rc_forget(st, i, job->offset, job->offset + job->length); /* those pages are resident now */
        return;
    }
    char rel[PATH_BUF];
    st_file_rel(st, sidx, s, f, rel, sizeof rel);
    st_set_err(st, "%s/%s: read failed: %s", st_folder_of(s, f)->path, rel,
               job->error == EIO ? "shorter than expected or I/O error" : strerror(job->error));
    if (!hk_store_transient(job->error))
        st_mark_failed(st, s); /* a shortage (ENOMEM...) leaves it healthy: the caller retries */
}
