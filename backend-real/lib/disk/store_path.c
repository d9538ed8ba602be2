/* store_path: walks '/'-separated paths below a folder with O_NOFOLLOW at every step (contract in store_path.h). */
#include "store_path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

bool sp_component_ok(const char *s, size_t len)
{
    if (len == 0 || len > NAME_MAX)
        return false;
    if (len == 1 && s[0] == '.')
        return false;
    if (len == 2 && s[0] == '.' && s[1] == '.')
        return false;
    return memchr(s, '/', len) == NULL && memchr(s, '\0', len) == NULL;
}

bool sp_relpath_ok(const char *rel)
{
    if (rel == NULL || *rel == '\0')
        return false;
    const char *p = rel;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (!sp_component_ok(p, len))
            return false;
        if (slash == NULL)
            return true;
        p = slash + 1;
    }
}

static bool transient_errno(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOMEM || e == ENOBUFS;
}

/* "<folder>/<rel[0..shown)>: <what>" */
static sp_status fail(sp_status kind, char *err, size_t errlen, const char *folder, const char *rel, size_t shown,
                      const char *what)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s/%.*s: %s", folder, (int)(shown > INT_MAX ? INT_MAX : shown), rel, what);
    return kind;
}

static sp_status fail_errno(int e, char *err, size_t errlen, const char *folder, const char *rel, size_t shown)
{
    const char *what;
    switch (e) {
    case ENOENT: what = "missing"; break;
    case ELOOP: what = "is a symbolic link"; break;
    default: what = strerror(e); break;
    }
    sp_status s = fail(transient_errno(e) ? SP_TRANSIENT : SP_FAULT, err, errlen, folder, rel, shown, what);
    errno = e;
    return s;
}

/* close() that leaves errno as it was (the caller reports an earlier error). */
static void close_quiet(int fd)
{
    int e = errno;
    close(fd);
    errno = e;
}

sp_status sp_open_folder(const char *folder, int *dirfd, char *err, size_t errlen)
{
    int fd = open(folder, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: %s", folder, e == ENOENT ? "missing" : strerror(e));
        errno = e;
        return transient_errno(e) ? SP_TRANSIENT : SP_FAULT;
    }
    *dirfd = fd;
    return SP_OK;
}

void sp_cache_init(sp_cache *c)
{
    c->fd = -1;
    c->len = 0;
    c->dir[0] = '\0';
}

void sp_cache_clear(sp_cache *c)
{
    if (c->fd >= 0)
        close(c->fd);
    sp_cache_init(c);
}

/* Opens the directory holding the last component of rel, below root. On SP_OK, *dirfd is a new descriptor the caller
 * closes, and *last points at the last component in rel. */
static sp_status open_parent(int root, const char *folder, const char *rel, int *dirfd, const char **last, char *err,
                             size_t errlen)
{
    int dfd = root;
    const char *p = rel;
    char comp[NAME_MAX + 1];
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        size_t shown = (size_t)(p - rel) + len;
        if (!sp_component_ok(p, len)) {
            if (dfd != root)
                close_quiet(dfd);
            return fail(SP_FAULT, err, errlen, folder, rel, shown, "unsafe path component");
        }
        if (slash == NULL) {
            if (dfd == root) {
                dfd = fcntl(root, F_DUPFD_CLOEXEC, 0);
                if (dfd < 0)
                    return fail_errno(errno, err, errlen, folder, rel, 0);
            }
            *dirfd = dfd;
            *last = p;
            return SP_OK;
        }
        memcpy(comp, p, len);
        comp[len] = '\0';
        int nfd = openat(dfd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0) {
            int e = errno;
            sp_status s;
            struct stat lst;
            if ((e == ENOTDIR || e == ELOOP) && fstatat(dfd, comp, &lst, AT_SYMLINK_NOFOLLOW) == 0)
                s = fail(SP_FAULT, err, errlen, folder, rel, shown,
                         S_ISLNK(lst.st_mode) ? "is a symbolic link" : "is not a directory");
            else
                s = fail_errno(e, err, errlen, folder, rel, shown);
            if (dfd != root)
                close_quiet(dfd);
            return s;
        }
        if (dfd != root)
            close(dfd);
        dfd = nfd;
        p = slash + 1;
    }
}

static sp_status check_regular(const struct stat *st, char *err, size_t errlen, const char *folder, const char *rel)
{
    if (S_ISLNK(st->st_mode))
        return fail(SP_FAULT, err, errlen, folder, rel, strlen(rel), "is a symbolic link");
    if (!S_ISREG(st->st_mode))
        return fail(SP_FAULT, err, errlen, folder, rel, strlen(rel), "is not a regular file");
    return SP_OK;
}

sp_status sp_lstat(int root, const char *folder, const char *rel, sp_cache *cache, struct stat *st, char *err,
                   size_t errlen)
{
    const char *slash = strrchr(rel, '/');
    size_t dirlen = slash ? (size_t)(slash - rel) : 0;
    int dfd;
    const char *last;
    bool from_cache = false;
    if (cache != NULL && cache->fd >= 0 && cache->len == dirlen && memcmp(cache->dir, rel, dirlen) == 0) {
        dfd = cache->fd;
        last = slash ? slash + 1 : rel;
        if (!sp_component_ok(last, strlen(last)))
            return fail(SP_FAULT, err, errlen, folder, rel, strlen(rel), "unsafe path component");
        from_cache = true;
    } else {
        sp_status s = open_parent(root, folder, rel, &dfd, &last, err, errlen);
        if (s != SP_OK)
            return s;
    }
    sp_status result = SP_OK;
    if (fstatat(dfd, last, st, AT_SYMLINK_NOFOLLOW) != 0)
        result = fail_errno(errno, err, errlen, folder, rel, strlen(rel));
    else
        result = check_regular(st, err, errlen, folder, rel);
    if (!from_cache) {
        if (cache != NULL && dirlen < sizeof cache->dir) {
            int e = errno;
            sp_cache_clear(cache);
            errno = e;
            cache->fd = dfd;
            cache->len = dirlen;
            memcpy(cache->dir, rel, dirlen);
        } else {
            close_quiet(dfd);
        }
    }
    return result;
}

sp_status sp_open_regular(const char *folder, const char *rel, int *fd, struct stat *st, char *err, size_t errlen)
{
    int root;
    sp_status s = sp_open_folder(folder, &root, err, errlen);
    if (s != SP_OK)
        return s;
    int dfd;
    const char *last;
    s = open_parent(root, folder, rel, &dfd, &last, err, errlen);
    close_quiet(root);
    if (s != SP_OK)
        return s;
    /* O_NONBLOCK: opening a FIFO planted in the folder must not hang the loop; cleared once it is known regular. */
    int f = openat(dfd, last, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    int e = errno;
    if (f < 0) {
        struct stat lst;
        if (e == ELOOP && fstatat(dfd, last, &lst, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISLNK(lst.st_mode))
            s = fail(SP_FAULT, err, errlen, folder, rel, strlen(rel), strerror(e));
        else
            s = fail_errno(e, err, errlen, folder, rel, strlen(rel));
        close_quiet(dfd);
        return s;
    }
    close(dfd);
    if (fstat(f, st) != 0) {
        s = fail_errno(errno, err, errlen, folder, rel, strlen(rel));
        close_quiet(f);
        return s;
    }
    s = check_regular(st, err, errlen, folder, rel);
    if (s == SP_OK) {
        int fl = fcntl(f, F_GETFL);
        if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) != 0)
            s = fail_errno(errno, err, errlen, folder, rel, strlen(rel));
    }
    if (s != SP_OK) {
        close_quiet(f);
        return s;
    }
    *fd = f;
    return SP_OK;
}

sp_status sp_stat_regular(const char *folder, const char *rel, struct stat *st, char *err, size_t errlen)
{
    int root;
    sp_status s = sp_open_folder(folder, &root, err, errlen);
    if (s != SP_OK)
        return s;
    s = sp_lstat(root, folder, rel, NULL, st, err, errlen);
    close_quiet(root);
    return s;
}
