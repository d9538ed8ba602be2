/* scan: recursive, symlink-free, sorted walk for .torrent files, one result at a time (see scan.h). */
#include "scan.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One folder on the current path: its sorted entry names and the next one to examine. */
typedef struct frame {
    char **names;
    size_t n, next;
    size_t len;                      /* length of the folder's path in it->path */
    dev_t dev;                       /* the folder read (fstat of the open folder), checked again at each resume */
    ino_t ino;
} frame;

enum { ST_START = 0, ST_WALK, ST_END };

struct hk_scan_iter {
    int state;
    bool root_failed;
    hk_scan_stats st;
    unsigned depth;                  /* frames in use: the folder being read is stack[depth - 1] */
    frame stack[HK_SCAN_MAX_DEPTH + 1];
    char *root;                      /* as given */
    const char *const *follow;       /* hk_scan_iter_follow: links to folders below these are followed (NULL: none) */
    size_t nfollow;
    char path[PATH_MAX];
    char why[192];
};

static bool is_torrent_name(const char *name)
{
    size_t n = strlen(name);
    return n > 8 && memcmp(name + n - 8, ".torrent", 8) == 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Reads a folder's entry names (without "." / ".." / hidden ones), sorted, and the folder's identity. */
static int read_names(const char *path, char ***out, size_t *count, struct stat *id)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    if (fstat(dirfd(d), id) != 0) {
        int err = errno;
        closedir(d);
        errno = err;
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            char **nn = realloc(names, ncap * sizeof *nn);
            if (!nn)
                goto nomem;
            names = nn;
            cap = ncap;
        }
        names[n] = strdup(e->d_name);
        if (!names[n])
            goto nomem;
        n++;
        errno = 0;
    }
    if (errno != 0) {
        int err = errno;
        free_names(names, n);
        closedir(d);
        errno = err;
        return -1;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_names);
    *out = names;
    *count = n;
    return 0;
nomem:
    free_names(names, n);
    closedir(d);
    errno = ENOMEM;
    return -1;
}

static hk_scan_event problem(hk_scan_iter *it, const char *path, const char **path_out, const char **why_out)
{
    it->st.problems++;
    *path_out = path;
    *why_out = it->why;
    return HK_SCAN_PROBLEM;
}

/* Enters the folder in it->path (length len): pushes its frame, or reports why it cannot. Returns HK_SCAN_END when
 * the folder was entered (nothing to report). */
static hk_scan_event enter(hk_scan_iter *it, size_t len, const char **path, const char **why)
{
    if (it->depth > HK_SCAN_MAX_DEPTH) {
        snprintf(it->why, sizeof it->why, "folder tree too deep; not scanned further");
        return problem(it, it->path, path, why);
    }
    frame *f = &it->stack[it->depth];
    struct stat id;
    if (read_names(it->path, &f->names, &f->n, &id) != 0) {
        snprintf(it->why, sizeof it->why, "cannot read folder: %s", strerror(errno));
        return problem(it, it->path, path, why);
    }
    f->next = 0;
    f->len = len;
    f->dev = id.st_dev;
    f->ino = id.st_ino;
    it->depth++;
    it->st.folders++;
    return HK_SCAN_END;
}

static hk_scan_event start(hk_scan_iter *it, const char **path, const char **why, struct stat *out)
{
    size_t len = strlen(it->root);
    while (len > 1 && it->root[len - 1] == '/')
        len--;
    it->root_failed = true; /* until root turns out to be a folder or a .torrent */
    if (len == 0 || len >= sizeof it->path) {
        snprintf(it->why, sizeof it->why, "%s", len == 0 ? "empty path" : "path too long");
        return problem(it, it->root, path, why);
    }
    memcpy(it->path, it->root, len);
    it->path[len] = '\0';
    struct stat st;
    if (lstat(it->path, &st) != 0) {
        snprintf(it->why, sizeof it->why, "%s", strerror(errno));
        return problem(it, it->path, path, why);
    }
    if (S_ISLNK(st.st_mode)) {
        /* The root was named explicitly by the user: a link to a folder is followed (only this once). */
        if (stat(it->path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            it->st.symlinks_skipped++;
            snprintf(it->why, sizeof it->why, "is a symbolic link to something other than a folder; not followed");
            return problem(it, it->path, path, why);
        }
    }
    if (S_ISDIR(st.st_mode)) {
        it->root_failed = false;
        it->state = ST_WALK;
        return enter(it, len, path, why);
    }
    if (S_ISREG(st.st_mode) && is_torrent_name(it->path)) {
        it->root_failed = false;
        it->st.torrents++;
        *path = it->path;
        if (out)
            *out = st;
        return HK_SCAN_TORRENT;
    }
    snprintf(it->why, sizeof it->why, "not a folder or a .torrent file");
    return problem(it, it->path, path, why);
}

/* Between two calls (a rescan runs a slice at a time) a folder on the current path may have been replaced, or swapped
 * for a symbolic link to another tree: its path, resolved now, would lead the walk out of the tree. At each resume the
 * folder being read must still be the one entered (its path resolves to the same device and inode; that covers every
 * folder above it too); else its frame is dropped (a folder that is gone silently: its records are swept as gone) and
 * the one above is checked in turn. Returns HK_SCAN_PROBLEM for a folder that changed, HK_SCAN_END otherwise. */
static hk_scan_event check_folders(hk_scan_iter *it, const char **path, const char **why)
{
    while (it->depth > 0) {
        frame *f = &it->stack[it->depth - 1];
        it->path[f->len] = '\0';
        struct stat st;
        int rc = stat(it->path, &st);
        if (rc == 0 && S_ISDIR(st.st_mode) && st.st_dev == f->dev && st.st_ino == f->ino)
            return HK_SCAN_END;
        bool gone = rc != 0 && (errno == ENOENT || errno == ENOTDIR);
        free_names(f->names, f->n);
        f->names = NULL;
        it->depth--;
        if (!gone) {
            snprintf(it->why, sizeof it->why, "folder replaced while it was being scanned; not scanned further");
            return problem(it, it->path, path, why);
        }
    }
    return HK_SCAN_END;
}

hk_scan_iter *hk_scan_iter_new(const char *root)
{
    hk_scan_iter *it = calloc(1, sizeof *it);
    if (!it)
        return NULL;
    it->root = strdup(root);
    if (!it->root) {
        free(it);
        return NULL;
    }
    return it;
}

/* A symbolic link met at it->path (never followed): counted; true when it is said as a problem (it->why set): a
 * link named like a .torrent, or one to a folder (issue 11 item 8g: said, not silent). */
static bool link_is_said(hk_scan_iter *it, const char *name)
{
    it->st.symlinks_skipped++;
    struct stat target;
    if (is_torrent_name(name)) {
        snprintf(it->why, sizeof it->why, "is a symbolic link; not followed");
        return true;
    }
    if (stat(it->path, &target) == 0 && S_ISDIR(target.st_mode)) {
        snprintf(it->why, sizeof it->why, "is a symbolic link to a folder; not followed (nothing below it is served)");
        return true;
    }
    return false;
}

void hk_scan_iter_follow(hk_scan_iter *it, const char *const *roots, size_t n)
{
    it->follow = n ? roots : NULL;
    it->nfollow = n;
}

/* true if real (from realpath) lies in one of the folders links may lead to. */
static bool inside_follow(const hk_scan_iter *it, const char *real)
{
    for (size_t i = 0; i < it->nfollow; i++) {
        if (it->follow[i] == NULL)
            continue; /* a served folder that does not exist (yet) */
        size_t n = strcmp(it->follow[i], "/") == 0 ? 0 : strlen(it->follow[i]);
        if (strncmp(real, it->follow[i], n) == 0 && (real[n] == '/' || real[n] == '\0'))
            return true;
    }
    return false;
}

/* With hk_scan_iter_follow, a symbolic link met at it->path (length len): a link to a folder inside the served folders
 * is entered (HK_SCAN_END, or a problem entering it), unless that folder is one the walk is already inside (a loop);
 * one leading outside is said as a problem; any other link is treated as without following. */
static hk_scan_event follow_link(hk_scan_iter *it, const char *name, size_t len, const char **path, const char **why)
{
    struct stat target;
    if (is_torrent_name(name) || stat(it->path, &target) != 0 || !S_ISDIR(target.st_mode))
        return link_is_said(it, name) ? problem(it, it->path, path, why) : HK_SCAN_END;
    char *real = realpath(it->path, NULL);
    bool inside = real != NULL && inside_follow(it, real);
    free(real);
    if (!inside) {
        it->st.symlinks_skipped++;
        snprintf(it->why, sizeof it->why, "is a symbolic link to a folder outside the served folders; not followed");
        return problem(it, it->path, path, why);
    }
    for (unsigned d = 0; d < it->depth; d++) {
        if (it->stack[d].dev == target.st_dev && it->stack[d].ino == target.st_ino) {
            it->st.symlinks_skipped++;
            snprintf(it->why, sizeof it->why, "is a symbolic link to a folder it is in (a loop); not followed");
            return problem(it, it->path, path, why);
        }
    }
    it->st.symlinks_followed++;
    return enter(it, len, path, why);
}

hk_scan_event hk_scan_iter_next(hk_scan_iter *it, const char **path, const char **why, struct stat *out)
{
    const char *dummy_path, *dummy_why;
    if (!path)
        path = &dummy_path;
    if (!why)
        why = &dummy_why;
    *path = NULL;
    *why = NULL;
    if (it->state == ST_START) {
        it->state = ST_END; /* unless start() enters the root folder */
        hk_scan_event ev = start(it, path, why, out);
        if (ev != HK_SCAN_END)
            return ev;
    } else if (it->state == ST_WALK) {
        hk_scan_event ev = check_folders(it, path, why);
        if (ev != HK_SCAN_END)
            return ev;
    }
    while (it->state == ST_WALK && it->depth > 0) {
        frame *f = &it->stack[it->depth - 1];
        if (f->next == f->n) {
            free_names(f->names, f->n);
            f->names = NULL;
            it->depth--;
            continue;
        }
        const char *name = f->names[f->next++];
        size_t len = f->len;
        size_t nl = strlen(name);
        bool slash = len > 0 && it->path[len - 1] == '/';
        size_t need = len + (slash ? 0 : 1) + nl;
        if (need >= sizeof it->path) {
            snprintf(it->why, sizeof it->why, "path too long; skipped");
            return problem(it, name, path, why);
        }
        size_t at = len;
        if (!slash)
            it->path[at++] = '/';
        memcpy(it->path + at, name, nl + 1);
        struct stat st;
        if (lstat(it->path, &st) != 0) {
            if (errno == ENOENT) /* vanished meanwhile: nothing to say */
                continue;
            snprintf(it->why, sizeof it->why, "cannot examine: %s", strerror(errno));
            return problem(it, it->path, path, why);
        }
        if (S_ISLNK(st.st_mode) && it->follow) {
            hk_scan_event ev = follow_link(it, name, need, path, why);
            if (ev != HK_SCAN_END)
                return ev;
        } else if (S_ISLNK(st.st_mode)) {
            if (link_is_said(it, name))
                return problem(it, it->path, path, why);
        } else if (S_ISDIR(st.st_mode)) {
            hk_scan_event ev = enter(it, need, path, why);
            if (ev != HK_SCAN_END)
                return ev;
        } else if (S_ISREG(st.st_mode) && is_torrent_name(name)) {
            it->st.torrents++;
            *path = it->path;
            if (out)
                *out = st;
            return HK_SCAN_TORRENT;
        }
    }
    it->state = ST_END;
    return HK_SCAN_END;
}

bool hk_scan_iter_root_failed(const hk_scan_iter *it)
{
    return it->root_failed;
}

void hk_scan_iter_stats(const hk_scan_iter *it, hk_scan_stats *out)
{
    *out = it->st;
}

void hk_scan_iter_free(hk_scan_iter *it)
{
    if (!it)
        return;
    while (it->depth > 0) {
        frame *f = &it->stack[--it->depth];
        free_names(f->names, f->n);
    }
    free(it->root);
    free(it);
}

int hk_scan_stats_run(const char *root, const hk_scan_cb *cb, hk_scan_stats *stats)
{
    hk_scan_iter *it = hk_scan_iter_new(root);
    if (!it)
        return -1;
    int rc = 0;
    for (;;) {
        const char *path, *why;
        hk_scan_event ev = hk_scan_iter_next(it, &path, &why, NULL);
        if (ev == HK_SCAN_END)
            break;
        if (ev == HK_SCAN_TORRENT)
            rc = cb->on_torrent(cb->arg, path);
        else
            rc = cb->on_problem ? cb->on_problem(cb->arg, path, why) : 0;
        if (rc != 0)
            break;
    }
    if (it->root_failed)
        rc = -1;
    if (stats)
        hk_scan_iter_stats(it, stats);
    hk_scan_iter_free(it);
    return rc;
}

int hk_scan(const char *root, const hk_scan_cb *cb)
{
    return hk_scan_stats_run(root, cb, NULL);
}
