/* scan: recursive, symlink-free, sorted walk for .torrent files (see scan.h). */
#include "scan.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct walk {
    const hk_scan_cb *cb;
    hk_scan_stats st;
    char path[PATH_MAX];
} walk;

static int problem(walk *w, const char *path, const char *why)
{
    w->st.problems++;
    return w->cb->on_problem ? w->cb->on_problem(w->cb->arg, path, why) : 0;
}

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

/* Reads a folder's entry names (without "." / ".." / hidden ones), sorted. */
static int read_names(const char *path, char ***out, size_t *count)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
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

/* w->path holds the folder (length len). */
static int walk_dir(walk *w, size_t len, unsigned depth)
{
    if (depth > HK_SCAN_MAX_DEPTH)
        return problem(w, w->path, "folder tree too deep; not scanned further");
    char **names;
    size_t n;
    if (read_names(w->path, &names, &n) != 0) {
        char why[128];
        snprintf(why, sizeof why, "cannot read folder: %s", strerror(errno));
        return problem(w, w->path, why);
    }
    w->st.folders++;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t nl = strlen(names[i]);
        bool slash = len > 0 && w->path[len - 1] == '/';
        size_t need = len + (slash ? 0 : 1) + nl;
        if (need >= sizeof w->path) {
            rc = problem(w, names[i], "path too long; skipped");
            continue;
        }
        size_t at = len;
        if (!slash)
            w->path[at++] = '/';
        memcpy(w->path + at, names[i], nl + 1);
        struct stat st;
        if (lstat(w->path, &st) != 0) {
            if (errno != ENOENT) { /* vanished meanwhile: nothing to say */
                char why[128];
                snprintf(why, sizeof why, "cannot examine: %s", strerror(errno));
                rc = problem(w, w->path, why);
            }
        } else if (S_ISLNK(st.st_mode)) {
            w->st.symlinks_skipped++;
            if (is_torrent_name(names[i]))
                rc = problem(w, w->path, "is a symbolic link; not followed");
        } else if (S_ISDIR(st.st_mode)) {
            rc = walk_dir(w, need, depth + 1);
        } else if (S_ISREG(st.st_mode) && is_torrent_name(names[i])) {
            w->st.torrents++;
            rc = w->cb->on_torrent(w->cb->arg, w->path);
        }
        w->path[len] = '\0';
    }
    free_names(names, n);
    return rc;
}

int hk_scan_stats_run(const char *root, const hk_scan_cb *cb, hk_scan_stats *stats)
{
    walk *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->cb = cb;
    int rc;
    size_t len = strlen(root);
    while (len > 1 && root[len - 1] == '/')
        len--;
    if (len == 0 || len >= sizeof w->path) {
        problem(w, root, len == 0 ? "empty path" : "path too long");
        rc = -1;
        goto out;
    }
    memcpy(w->path, root, len);
    w->path[len] = '\0';
    struct stat st;
    if (lstat(w->path, &st) != 0) {
        char why[128];
        snprintf(why, sizeof why, "%s", strerror(errno));
        problem(w, w->path, why);
        rc = -1;
    } else if (S_ISDIR(st.st_mode)) {
        rc = walk_dir(w, len, 0);
    } else if (S_ISREG(st.st_mode) && is_torrent_name(w->path)) {
        w->st.torrents++;
        rc = cb->on_torrent(cb->arg, w->path);
    } else if (S_ISLNK(st.st_mode)) {
        /* The root was named explicitly by the user: a link to a folder is followed (only this once). */
        if (stat(w->path, &st) == 0 && S_ISDIR(st.st_mode)) {
            rc = walk_dir(w, len, 0);
        } else {
            w->st.symlinks_skipped++;
            problem(w, w->path, "is a symbolic link to something other than a folder; not followed");
            rc = -1;
        }
    } else {
        problem(w, w->path, "not a folder or a .torrent file");
        rc = -1;
    }
out:
    if (stats)
        *stats = w->st;
    free(w);
    return rc;
}

int hk_scan(const char *root, const hk_scan_cb *cb)
{
    return hk_scan_stats_run(root, cb, NULL);
}
