/* store_path: opens a torrent's folder and the paths below it without following any symbolic link: openat2
 * (RESOLVE_NO_SYMLINKS, RESOLVE_BENEATH) where the kernel has it, else a walk with O_NOFOLLOW at every step (contract
 * in store_path.h). */
#include "store_path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
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

/* Opens directory comp below dfd (O_PATH, never following a symbolic link) into *out; messages name
 * folder/rel[0..shown). */
static sp_status open_dir_at(int dfd, const char *comp, int *out, char *err, size_t errlen, const char *folder,
                             const char *rel, size_t shown)
{
    int nfd = openat(dfd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (nfd >= 0) {
        *out = nfd;
        return SP_OK;
    }
    int e = errno;
    struct stat lst;
    if ((e == ENOTDIR || e == ELOOP) && fstatat(dfd, comp, &lst, AT_SYMLINK_NOFOLLOW) == 0)
        return fail(SP_FAULT, err, errlen, folder, rel, shown,
                    S_ISLNK(lst.st_mode) ? "is a symbolic link" : "is not a directory");
    return fail_errno(e, err, errlen, folder, rel, shown);
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
        int nfd = -1;
        sp_status s = open_dir_at(dfd, comp, &nfd, err, errlen, folder, rel, shown);
        if (s != SP_OK) {
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
    int dfd = -1;
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

/* ---- openat2 (Linux 5.6): one system call that refuses every symbolic link and every escape ---- */

/* 0 not tried yet, 1 it worked once, -1 the kernel (or a seccomp filter) refuses it: every call walks instead. */
static _Atomic int g_openat2;

/* openat2(dfd, path, flags, resolve), or -1 (errno set) if it failed or is not available; the caller then walks
 * component by component, which also gives the precise message. */
static int try_openat2(int dfd, const char *path, int flags, uint64_t resolve)
{
#ifdef SYS_openat2
    if (atomic_load_explicit(&g_openat2, memory_order_relaxed) >= 0) {
        struct open_how how = {.flags = (uint64_t)flags, .mode = 0, .resolve = resolve};
        long fd = syscall(SYS_openat2, dfd, path, &how, sizeof how);
        if (fd >= 0) {
            atomic_store_explicit(&g_openat2, 1, memory_order_relaxed);
            return (int)fd;
        }
        int e = errno;
        bool refused = e == ENOSYS || ((e == EPERM || e == EINVAL || e == E2BIG) &&
                                       atomic_load_explicit(&g_openat2, memory_order_relaxed) == 0);
        if (refused)
            atomic_store_explicit(&g_openat2, -1, memory_order_relaxed);
        errno = e;
        return -1;
    }
#else
    (void)dfd, (void)path, (void)flags, (void)resolve;
#endif
    errno = ENOSYS;
    return -1;
}

/* Opens the absolute directory path `folder` from "/" one component at a time, never following a link. */
static sp_status walk_folder(const char *folder, int *out, char *err, size_t errlen)
{
    int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return fail_errno(errno, err, errlen, "", "", 0);
    const char *rel = folder;
    while (*rel == '/')
        rel++;
    if (*rel == '\0') {
        *out = root;
        return SP_OK;
    }
    int dfd = -1;
    const char *last;
    sp_status s = open_parent(root, "", rel, &dfd, &last, err, errlen); /* messages: "/" + rel */
    close_quiet(root);
    if (s != SP_OK)
        return s;
    s = open_dir_at(dfd, last, out, err, errlen, "", rel, strlen(rel));
    close_quiet(dfd);
    return s;
}

sp_status sp_open_folder(const char *folder, const sp_id *expect, int *dirfd, sp_id *id, char *err, size_t errlen)
{
    if (folder[0] != '/') {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: not an absolute path", folder);
        errno = EINVAL;
        return SP_FAULT;
    }
    int fd = try_openat2(AT_FDCWD, folder, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                         RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
    if (fd < 0) {
        sp_status s = walk_folder(folder, &fd, err, errlen);
        if (s != SP_OK)
            return s;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return fail_errno(e, err, errlen, folder, "", 0);
    }
    if (expect != NULL && ((uint64_t)sb.st_dev != expect->dev || (uint64_t)sb.st_ino != expect->ino)) {
        close(fd);
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: replaced, not the folder that was scanned", folder);
        errno = EIO;
        return SP_FAULT;
    }
    if (id != NULL)
        *id = (sp_id){(uint64_t)sb.st_dev, (uint64_t)sb.st_ino};
    *dirfd = fd;
    return SP_OK;
}

/* Opens rel below root by walking it (a directory at a time, O_NOFOLLOW): the fallback of openat2, and the source of
 * precise messages when openat2 refused. */
static sp_status open_walk(int root, const char *folder, const char *rel, int *fd, char *err, size_t errlen)
{
    int dfd = -1;
    const char *last;
    sp_status s = open_parent(root, folder, rel, &dfd, &last, err, errlen);
    if (s != SP_OK)
        return s;
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
    *fd = f;
    return SP_OK;
}

sp_status sp_open_regular(const char *folder, const sp_id *folder_id, const char *rel, int *fd, struct stat *st,
                          char *err, size_t errlen)
{
    int root;
    sp_status s = sp_open_folder(folder, folder_id, &root, NULL, err, errlen);
    if (s != SP_OK)
        return s;
    /* O_NONBLOCK: opening a FIFO planted in the folder must not hang the loop; cleared once it is known regular. */
    int f = sp_relpath_ok(rel) ? try_openat2(root, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY,
                                             RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
                               : -1;
    if (f < 0)
        s = open_walk(root, folder, rel, &f, err, errlen);
    close_quiet(root);
    if (s != SP_OK)
        return s;
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

sp_status sp_stat_regular(const char *folder, const sp_id *folder_id, const char *rel, struct stat *st, char *err,
                          size_t errlen)
{
    int root;
    sp_status s = sp_open_folder(folder, folder_id, &root, NULL, err, errlen);
    if (s != SP_OK)
        return s;
    s = sp_lstat(root, folder, rel, NULL, st, err, errlen);
    close_quiet(root);
    return s;
}
