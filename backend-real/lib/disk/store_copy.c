/* store_copy: small files sent by copy (store.h, hk_store_copy) and the classification of passing shortages
 * (hk_store_transient). A block of 16 KiB may span thousands of tiny files; mapping and pinning each would hold one
 * descriptor per file until the block is written. A file of at most HK_STORE_COPY_MAX bytes is instead read with
 * pread into the caller's buffer: from the descriptor of its open slot when it is mapped already, else opened (the
 * same confined open and size check as a map, st_open_checked), read and closed at once. Nothing here maps, evicts or
 * keeps a descriptor, so any number of small files fits any budget.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_internal.h"

bool hk_store_transient(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOMEM || err == ENOBUFS || err == EAGAIN;
}

/* Reads len bytes at off of fd into buf. 0; -1 with errno (EIO when the file ends first). */
static int read_all(int fd, uint8_t *buf, uint32_t len, uint64_t off)
{
    uint32_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = EIO;
            return -1;
        }
        got += (uint32_t)r;
    }
    return 0;
}

/* A read of file f failed with e: a shortage is reported as is, anything else fails the storage (EIO). */
static int read_failed(hk_store *st, uint32_t sidx, st_storage *s, uint32_t f, int e)
{
    char rel[PATH_BUF];
    st_file_rel(st, sidx, s, f, rel, sizeof rel);
    st_set_err(st, "%s/%s: read failed: %s", st_folder_of(s, f)->path, rel,
               e == EIO ? "shorter than expected or I/O error" : strerror(e));
    if (hk_store_transient(e)) {
        errno = e;
        return -1;
    }
    st_mark_failed(st, s);
    errno = EIO;
    return -1;
}

static int copy_file(hk_store *st, uint32_t sidx, st_storage *s, uint32_t f, const hk_extent *ext, uint8_t *buf)
{
    uint32_t i = st_fslot(s, f);
    if (i != NONE) { /* open already (mapped for a prefetch, a load or a pin): its descriptor, never its memory */
        st_lru_touch(st, i);
        if (read_all(st_slot_at(st, i)->fd, buf, ext->length, ext->offset) != 0)
            return read_failed(st, sidx, s, f, errno);
        return 1;
    }
    char rel[PATH_BUF];
    st_file_rel(st, sidx, s, f, rel, sizeof rel);
    int fd;
    struct stat sb;
    if (st_open_checked(st, s, f, rel, &fd, &sb) != 0)
        return -1; /* errno and st->err set; a fault marked the storage */
    int rc = read_all(fd, buf, ext->length, ext->offset);
    int e = errno;
    close(fd);
    if (rc != 0)
        return read_failed(st, sidx, s, f, e);
    return 1;
}

int hk_store_copy(hk_store *st, const hk_extent *ext, uint8_t *buf, size_t cap, const char **why)
{
    uint32_t sidx, f;
    st_storage *s;
    int rc = st_resolve(st, ext, &sidx, &s, &f);
    if (rc == 0 && (s->flags & ST_FAILED))
        rc = st_failed_error(st, s);
    if (rc == 0) {
        if (f >= s->nfiles || st_fslot(s, f) == SLOT_PAD || st_flen(s, f) > HK_STORE_COPY_MAX ||
            ext->length > cap)
            return 0; /* the .torrent, a pad file, a large file: pinned instead */
        rc = copy_file(st, sidx, s, f, ext, buf);
    }
    if (rc < 0 && why != NULL)
        *why = st->err;
    return rc;
}
