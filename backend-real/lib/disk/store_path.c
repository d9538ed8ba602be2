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
#include <stdlib.h>
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
    if (slash == NULL) { /* a file of the folder itself: root is its parent, nothing to open or close */
        if (!sp_component_ok(rel, strlen(rel)))
            return fail(SP_FAULT, err, errlen, folder, rel, strlen(rel), "unsafe path component");
        if (fstatat(root, rel, st, AT_SYMLINK_NOFOLLOW) != 0)
            return fail_errno(errno, err, errlen, folder, rel, strlen(rel));
        return check_regular(st, err, errlen, folder, rel);
    }
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

/* ---- following symbolic links beneath a served folder (--follow-links) ---- */

#define SP_MAX_HOPS 40       /* links followed in one resolution (the kernel's own limit) */
#define SP_MAX_DEPTH 256     /* directories on the resolved path below the root */

/* The resolution state: a descriptor per directory from the root down (dirs[0] is the root), the components still to
 * resolve (a '/'-separated string at rest[at..]), and where messages point. */
typedef struct sp_walk {
    int dirs[SP_MAX_DEPTH + 1];
    unsigned depth;
    char rest[2 * PATH_MAX];
    size_t at;
    unsigned hops;
    const sp_beneath *b;
    const char *rel;         /* the path asked for, below the folder (messages) */
    const char *cur_root;    /* the served folder dirs[0] is */
} sp_walk;

static void walk_close(sp_walk *w, unsigned keep)
{
    while (w->depth > keep)
        close_quiet(w->dirs[w->depth--]);
}

/* Fails the resolution: every directory closed, the root too. */
static sp_status walk_fail(sp_walk *w, sp_status kind, char *err, size_t errlen, const char *what)
{
    int e = errno;
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s%s%s/%s: %s", w->b->root, w->b->folder_rel[0] ? "/" : "", w->b->folder_rel,
                 w->rel, what);
    walk_close(w, 0);
    if (w->dirs[0] >= 0)
        close_quiet(w->dirs[0]);
    w->dirs[0] = -1;
    errno = kind == SP_TRANSIENT ? e : EIO;
    return kind;
}

/* Puts text (a link's target, or the path asked for) in front of what is left to resolve. */
static bool walk_prepend(sp_walk *w, const char *text, size_t len)
{
    size_t left = strlen(w->rest + w->at);
    if (len + 1 + left + 1 > sizeof w->rest)
        return false;
    char tail[2 * PATH_MAX];
    memcpy(tail, w->rest + w->at, left + 1);
    memcpy(w->rest, text, len);
    w->rest[len] = '/';
    memcpy(w->rest + len + 1, tail, left + 1);
    w->at = 0;
    return true;
}

/* The next component (copied into comp), or false when nothing is left. */
static bool walk_next(sp_walk *w, char comp[NAME_MAX + 1], bool *last, bool *too_long)
{
    *too_long = false;
    while (w->rest[w->at] == '/')
        w->at++;
    if (w->rest[w->at] == '\0')
        return false;
    const char *p = w->rest + w->at;
    size_t n = strcspn(p, "/");
    if (n > NAME_MAX) {
        *too_long = true;
        return true;
    }
    memcpy(comp, p, n);
    comp[n] = '\0';
    w->at += n;
    const char *q = w->rest + w->at;
    while (*q == '/')
        q++;
    *last = *q == '\0';
    return true;
}

/* Goes on from the served folder that the absolute path abs lies in (the longest match; abs holds what is left to
 * resolve): every directory is closed and that folder opened (its identity checked); what follows its path in abs
 * becomes what is left. SP_FAULT when abs lies in no served folder. */
static sp_status walk_reanchor(sp_walk *w, const char *abs_in, char *err, size_t errlen)
{
    const sp_beneath *b = w->b;
    char abs[3 * PATH_MAX];
    size_t k = 0;
    for (const char *p = abs_in; *p && k + 1 < sizeof abs; p++) /* "a//b" is "a/b": matched against the folders */
        if (!(*p == '/' && k > 0 && abs[k - 1] == '/'))
            abs[k++] = *p;
    abs[k] = '\0';
    long best = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < b->nothers; i++) {
        if (b->others[i] == NULL)
            continue; /* a served folder that does not exist (yet) */
        size_t n = strcmp(b->others[i], "/") == 0 ? 0 : strlen(b->others[i]);
        if (strncmp(abs, b->others[i], n) == 0 && (abs[n] == '/' || abs[n] == '\0') && (best < 0 || n >= best_len)) {
            best = (long)i;
            best_len = n;
        }
    }
    if (best < 0)
        return walk_fail(w, SP_FAULT, err, errlen, "a symbolic link on the way leads outside the served folders");
    char left[2 * PATH_MAX];
    snprintf(left, sizeof left, "%s", abs + best_len);
    walk_close(w, 0);
    close_quiet(w->dirs[0]);
    w->dirs[0] = -1;
    char oerr[PATH_MAX + 64];
    if (sp_open_folder(b->others[best], &b->other_ids[best], &w->dirs[0], NULL, oerr, sizeof oerr) != SP_OK) {
        w->dirs[0] = -1;
        return walk_fail(w, SP_FAULT, err, errlen, oerr);
    }
    w->cur_root = b->others[best];
    w->at = 0;
    w->rest[0] = '\0';
    if (!walk_prepend(w, left, strlen(left)))
        return walk_fail(w, SP_FAULT, err, errlen, "path too long");
    return SP_OK;
}

/* ".." at the current root: the root's parent (its path has no link: realpath) with what is left; in another served
 * folder, or outside. cur_root is the path of the served folder dirs[0] is. */
static sp_status walk_above(sp_walk *w, char *err, size_t errlen)
{
    char abs[2 * PATH_MAX + 2];
    size_t n = strlen(w->cur_root);
    while (n > 0 && w->cur_root[n - 1] != '/')
        n--;
    if (n > 1)
        n--; /* without the slash, unless the parent is "/" */
    snprintf(abs, sizeof abs, "%.*s/%s", (int)n, w->cur_root, w->rest + w->at);
    return walk_reanchor(w, abs, err, errlen);
}

/* A symbolic link at comp below the current directory: its target replaces it. An absolute target is resolved from
 * the served folder it lies in (never from "/"), or refused; ".." never climbs above a served folder except into
 * another one. */
static sp_status walk_link(sp_walk *w, const char *comp, char *err, size_t errlen)
{
    if (++w->hops > SP_MAX_HOPS)
        return walk_fail(w, SP_FAULT, err, errlen, "too many levels of symbolic links");
    char target[PATH_MAX];
    ssize_t n = readlinkat(w->dirs[w->depth], comp, target, sizeof target - 1);
    if (n < 0)
        return walk_fail(w, transient_errno(errno) ? SP_TRANSIENT : SP_FAULT, err, errlen, strerror(errno));
    target[n] = '\0';
    if (target[0] == '/') {
        char abs[3 * PATH_MAX];
        snprintf(abs, sizeof abs, "%s/%s", target, w->rest + w->at);
        return walk_reanchor(w, abs, err, errlen);
    }
    if (!walk_prepend(w, target, (size_t)n))
        return walk_fail(w, SP_FAULT, err, errlen, "path too long");
    return SP_OK;
}

/* One component that is not a link: a directory to descend into, or the last one (*done: left in *out_st, and opened
 * into *fd when fd is not NULL). SP_OK with *again when it turned into a link meanwhile (resolve it again). */
static sp_status walk_step(sp_walk *w, const char *comp, bool last, int *fd, struct stat *out_st, bool *done,
                           bool *again, char *err, size_t errlen)
{
    int dfd = w->dirs[w->depth];
    if (!last) {
        if (w->depth == SP_MAX_DEPTH)
            return walk_fail(w, SP_FAULT, err, errlen, "path too deep");
        int nfd = openat(dfd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
            struct stat lst;
            if (fstatat(dfd, comp, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode)) {
                *again = true;
                return SP_OK;
            }
            return walk_fail(w, SP_FAULT, err, errlen, "is not a directory");
        }
        if (nfd < 0)
            return walk_fail(w, transient_errno(errno) ? SP_TRANSIENT : SP_FAULT, err, errlen,
                             errno == ENOENT ? "missing" : strerror(errno));
        w->dirs[++w->depth] = nfd;
        return SP_OK;
    }
    *done = true;
    if (fd == NULL) {
        if (fstatat(dfd, comp, out_st, AT_SYMLINK_NOFOLLOW) != 0)
            return walk_fail(w, transient_errno(errno) ? SP_TRANSIENT : SP_FAULT, err, errlen,
                             errno == ENOENT ? "missing" : strerror(errno));
        return SP_OK;
    }
    int f = openat(dfd, comp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (f < 0 && errno == ELOOP) {
        *done = false;
        *again = true; /* became a link between the look and the open */
        return SP_OK;
    }
    if (f < 0)
        return walk_fail(w, transient_errno(errno) ? SP_TRANSIENT : SP_FAULT, err, errlen,
                         errno == ENOENT ? "missing" : strerror(errno));
    if (fstat(f, out_st) != 0) {
        close_quiet(f);
        return walk_fail(w, SP_FAULT, err, errlen, strerror(errno));
    }
    *fd = f;
    return SP_OK;
}

/* Opens the root (its identity checked) and walks the folder below it without following anything (its identity
 * checked too): w->dirs[0..depth] then hold the root and every directory down to the folder. */
static sp_status walk_to_folder(sp_walk *w, char *err, size_t errlen)
{
    const sp_beneath *b = w->b;
    sp_status s = sp_open_folder(b->root, b->root_id, &w->dirs[0], NULL, err, errlen);
    if (s != SP_OK)
        return s;
    w->depth = 0;
    for (const char *p = b->folder_rel; *p;) {
        size_t n = strcspn(p, "/");
        char comp[NAME_MAX + 1];
        if (!sp_component_ok(p, n) || w->depth == SP_MAX_DEPTH)
            return walk_fail(w, SP_FAULT, err, errlen, "unsafe folder path");
        memcpy(comp, p, n);
        comp[n] = '\0';
        int nfd = -1;
        s = open_dir_at(w->dirs[w->depth], comp, &nfd, err, errlen, b->root, b->folder_rel,
                        (size_t)(p - b->folder_rel) + n);
        if (s != SP_OK) {
            walk_close(w, 0);
            close_quiet(w->dirs[0]);
            return s;
        }
        w->dirs[++w->depth] = nfd;
        p += n;
        while (*p == '/')
            p++;
    }
    struct stat sb;
    if (fstat(w->dirs[w->depth], &sb) != 0 || (uint64_t)sb.st_dev != b->folder_id->dev ||
        (uint64_t)sb.st_ino != b->folder_id->ino) {
        walk_close(w, 0);
        close_quiet(w->dirs[0]);
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s/%s: replaced, not the folder that was scanned", b->root, b->folder_rel);
        errno = EIO;
        return SP_FAULT;
    }
    return SP_OK;
}

sp_status sp_open_beneath(const sp_beneath *b, const char *rel, int *fd, struct stat *st, char *err, size_t errlen)
{
    if (!sp_relpath_ok(rel))
        return fail(SP_FAULT, err, errlen, b->root, rel, strlen(rel), "unsafe path component");
    sp_walk *w = malloc(sizeof *w);
    if (w == NULL)
        return fail_errno(ENOMEM, err, errlen, b->root, rel, strlen(rel));
    w->b = b;
    w->rel = rel;
    w->dirs[0] = -1;
    w->depth = 0;
    w->cur_root = b->root;
    w->hops = 0;
    w->at = 0;
    w->rest[0] = '\0';
    sp_status s = walk_to_folder(w, err, errlen);
    if (s == SP_OK && !walk_prepend(w, rel, strlen(rel)))
        s = walk_fail(w, SP_FAULT, err, errlen, "path too long");
    bool done = false;
    while (s == SP_OK && !done) {
        char comp[NAME_MAX + 1];
        bool last = false, too_long, again = false;
        if (!walk_next(w, comp, &last, &too_long) || too_long) {
            s = walk_fail(w, SP_FAULT, err, errlen, too_long ? "name too long" : "resolves to a folder");
            break;
        }
        if (strcmp(comp, ".") == 0)
            continue;
        if (strcmp(comp, "..") == 0) {
            if (w->depth == 0)
                s = walk_above(w, err, errlen);
            else
                close_quiet(w->dirs[w->depth--]);
            continue;
        }
        struct stat lst;
        if (fstatat(w->dirs[w->depth], comp, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode)) {
            s = walk_link(w, comp, err, errlen);
            continue;
        }
        s = walk_step(w, comp, last, fd, st, &done, &again, err, errlen);
        if (s == SP_OK && again)
            s = walk_link(w, comp, err, errlen); /* it is a link now: resolved as one */
    }
    if (s == SP_OK) {
        walk_close(w, 0);
        close_quiet(w->dirs[0]);
        s = check_regular(st, err, errlen, b->root, rel);
        if (s == SP_OK && fd != NULL) { /* opened O_NONBLOCK (a FIFO must not hang the loop): blocking again */
            int fl = fcntl(*fd, F_GETFL);
            if (fl < 0 || fcntl(*fd, F_SETFL, fl & ~O_NONBLOCK) != 0)
                s = fail_errno(errno, err, errlen, b->root, rel, strlen(rel));
        }
        if (s != SP_OK && fd != NULL)
            close_quiet(*fd);
    }
    free(w);
    return s;
}
