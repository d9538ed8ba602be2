/* watch: inotify watches on the folders below the DIRs, the dirty paths they report, and the debounced flush that
 * turns them into loads and removals (see watch.h). */
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "log.h"
#include "scan.h"

#define DIR_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF)

enum { DIRTY_DIR = 1, DIRTY_WENT = 2 }; /* the path was a folder; an event said it went (moved out, deleted) */

typedef struct folder {          /* one watched folder */
    int wd;
    bool root;
    char *path;
} folder;

typedef struct dirty {
    char *path;
    unsigned flags;
} dirty;

struct hk_watch {
    struct ev_loop *loop;
    ev_io io;
    ev_timer timer;
    hk_watch_sink sink;
    int fd;
    folder *f;                   /* sorted by wd */
    size_t nf, capf;
    char **roots;                /* normalised as the scan spells them */
    size_t nroots;
    dirty *d;
    size_t nd, capd;
    bool resync;                 /* events were lost: watch every folder again, then ask for a rescan */
    const char *resync_why;
    hk_watch_stats st;
};

static bool is_torrent_name(const char *name)
{
    size_t n = strlen(name);
    return n > 8 && memcmp(name + n - 8, ".torrent", 8) == 0;
}

/* dir + '/' + name into out (PATH_MAX). false if too long. */
static bool join(char *out, const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    bool slash = dl > 0 && dir[dl - 1] == '/';
    int n = snprintf(out, PATH_MAX, "%s%s%s", dir, slash ? "" : "/", name);
    return n > 0 && n < PATH_MAX;
}

/* true if path is dir itself or below it. */
static bool below(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (strncmp(path, dir, n) != 0)
        return false;
    return path[n] == '\0' || path[n] == '/' || (n > 0 && dir[n - 1] == '/');
}

/* ---- the folder table ---- */

static size_t folder_pos(const hk_watch *w, int wd)
{
    size_t lo = 0, hi = w->nf;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->f[mid].wd < wd)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static folder *folder_find(hk_watch *w, int wd)
{
    size_t i = folder_pos(w, wd);
    return i < w->nf && w->f[i].wd == wd ? &w->f[i] : NULL;
}

/* Records wd as path (a wd already known is the same folder under a new name). -1 if out of memory. */
static int folder_set(hk_watch *w, int wd, const char *path, bool root)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    size_t i = folder_pos(w, wd);
    if (i < w->nf && w->f[i].wd == wd) {
        free(w->f[i].path);
        w->f[i].path = copy;
        w->f[i].root = w->f[i].root || root;
        return 0;
    }
    if (w->nf == w->capf) {
        size_t ncap = w->capf ? w->capf * 2 : 64;
        folder *nv = realloc(w->f, ncap * sizeof *nv);
        if (!nv) {
            free(copy);
            return -1;
        }
        w->f = nv;
        w->capf = ncap;
    }
    memmove(w->f + i + 1, w->f + i, (w->nf - i) * sizeof *w->f);
    w->f[i] = (folder){ .wd = wd, .root = root, .path = copy };
    w->nf++;
    return 0;
}

static void folder_remove(hk_watch *w, int wd)
{
    size_t i = folder_pos(w, wd);
    if (i >= w->nf || w->f[i].wd != wd)
        return;
    free(w->f[i].path);
    memmove(w->f + i, w->f + i + 1, (w->nf - i - 1) * sizeof *w->f);
    w->nf--;
}

/* Drops the watches of dir and every folder below it (a folder moved out keeps its watch in the kernel). */
static void drop_below(hk_watch *w, const char *dir)
{
    size_t k = 0;
    for (size_t i = 0; i < w->nf; i++) {
        if (!w->f[i].root && below(w->f[i].path, dir)) {
            inotify_rm_watch(w->fd, w->f[i].wd);
            free(w->f[i].path);
            continue;
        }
        w->f[k++] = w->f[i];
    }
    w->nf = k;
}

/* ---- adding watches ---- */

static void watch_failed(hk_watch *w, const char *path, int error)
{
    if (error == ENOSPC || error == ENOMEM) {
        if (!w->st.limited)
            hk_log(HK_LOG_WARN, "%s: not watched: %s; folders left unwatched are seen by rescans only (--rescan, "
                   "SIGHUP)", path, error == ENOSPC ? "the limit on inotify watches (fs.inotify.max_user_watches) "
                   "is reached" : strerror(error));
        w->st.limited = true;
        return;
    }
    hk_log(HK_LOG_DEBUG, "%s: not watched: %s", path, strerror(error));
}

/* Watches path (a folder; a root may be a symbolic link to one, followed once). false if it could not be watched. */
static bool add_one(hk_watch *w, const char *path, bool root)
{
    int wd = inotify_add_watch(w->fd, path, DIR_MASK | IN_ONLYDIR | (root ? 0 : IN_DONT_FOLLOW));
    if (wd < 0) {
        watch_failed(w, path, errno);
        return false;
    }
    if (folder_set(w, wd, path, root) != 0) {
        inotify_rm_watch(w->fd, wd);
        watch_failed(w, path, ENOMEM);
        return false;
    }
    return true;
}

/* Is entry e of the folder at `path` (full path p) a folder, or a regular file? lstat when readdir cannot tell. */
static int entry_type(const struct dirent *e, const char *p, struct stat *st, bool *have_st)
{
    *have_st = false;
    if (e->d_type != DT_UNKNOWN)
        return e->d_type;
    if (lstat(p, st) != 0)
        return DT_UNKNOWN;
    *have_st = true;
    return S_ISDIR(st->st_mode) ? DT_DIR : S_ISREG(st->st_mode) ? DT_REG : DT_UNKNOWN;
}

/* Watches path and every folder below it; with report, sink.load for each .torrent in them. The watch comes before
 * the listing: a file written after the listing is reported by an event. false if path itself is not watched. */
static bool add_tree(hk_watch *w, const char *path, unsigned depth, bool root, bool report)
{
    if (!add_one(w, path, root))
        return false;
    DIR *d = opendir(path);
    if (!d)
        return true;
    char p[PATH_MAX];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.' || !join(p, path, e->d_name))
            continue;
        struct stat st;
        bool have_st;
        int type = entry_type(e, p, &st, &have_st);
        if (type == DT_DIR && depth < HK_SCAN_MAX_DEPTH) {
            (void)add_tree(w, p, depth + 1, false, report);
        } else if (type == DT_REG && report && is_torrent_name(e->d_name)) {
            if ((have_st || lstat(p, &st) == 0) && S_ISREG(st.st_mode)) {
                w->st.loads++;
                w->sink.load(w->sink.arg, p, &st);
            }
        }
    }
    closedir(d);
    return true;
}

/* ---- what a path is now ---- */

static const char *root_of(const hk_watch *w, const char *path)
{
    for (size_t i = 0; i < w->nroots; i++)
        if (below(path, w->roots[i]))
            return w->roots[i];
    return NULL;
}

/* lstat of path if it is reached from its root through folders only (no symbolic link on the way); -1 otherwise. */
static int lstat_reached(const hk_watch *w, const char *path, struct stat *st)
{
    const char *root = root_of(w, path);
    size_t len = strlen(path);
    if (!root || len >= PATH_MAX)
        return -1;
    char p[PATH_MAX];
    memcpy(p, path, len + 1);
    size_t rl = strlen(root);
    char *from = p + (rl < len ? rl + 1 : len); /* the first component below the root */
    for (char *slash = strchr(from, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        struct stat fs;
        if (lstat(p, &fs) != 0 || !S_ISDIR(fs.st_mode))
            return -1;
        *slash = '/';
    }
    return lstat(path, st);
}

bool hk_watch_reachable(const hk_watch *w, const char *path)
{
    struct stat st;
    const char *slash = strrchr(path, '/');
    return lstat_reached(w, path, &st) == 0 && S_ISREG(st.st_mode) && is_torrent_name(slash ? slash + 1 : path);
}

/* ---- events ---- */

static void arm(hk_watch *w)
{
    if (!ev_is_active(&w->timer)) {
        ev_timer_set(&w->timer, HK_WATCH_DEBOUNCE, 0.);
        ev_timer_start(w->loop, &w->timer);
    }
}

static void mark_dirty(hk_watch *w, const char *dir, const char *name, unsigned flags)
{
    char p[PATH_MAX];
    if (!join(p, dir, name))
        return;
    if (w->nd == w->capd) {
        size_t ncap = w->capd ? w->capd * 2 : 32;
        dirty *nv = realloc(w->d, ncap * sizeof *nv);
        if (!nv)
            goto lost;
        w->d = nv;
        w->capd = ncap;
    }
    char *copy = strdup(p);
    if (!copy)
        goto lost;
    w->d[w->nd++] = (dirty){ .path = copy, .flags = flags };
    arm(w);
    return;
lost: /* out of memory: the path is not lost for good, a rescan finds it */
    w->resync = true;
    w->resync_why = "out of memory recording a change";
    arm(w);
}

static void on_event(hk_watch *w, const struct inotify_event *ev)
{
    w->st.events++;
    if (ev->mask & IN_Q_OVERFLOW) {
        w->resync = true;
        w->resync_why = "inotify queue overflow (changes were lost)";
        arm(w);
        return;
    }
    folder *f = folder_find(w, ev->wd);
    if (!f)
        return;
    if (ev->mask & IN_IGNORED) {
        folder_remove(w, ev->wd);
        return;
    }
    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
        if (f->root) { /* a DIR itself went: everything below it is to be looked at again */
            if (ev->mask & IN_MOVE_SELF) /* watched elsewhere now: its events would name the wrong paths */
                inotify_rm_watch(w->fd, ev->wd);
            w->resync = true;
            w->resync_why = "a watched folder was moved or deleted";
            arm(w);
        }
        return;
    }
    if (ev->len == 0 || ev->name[0] == '.') /* hidden, partial: as the scan */
        return;
    unsigned went = ev->mask & (IN_MOVED_FROM | IN_DELETE) ? DIRTY_WENT : 0;
    if (ev->mask & IN_ISDIR)
        mark_dirty(w, f->path, ev->name, DIRTY_DIR | went);
    else if (is_torrent_name(ev->name) && (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)))
        mark_dirty(w, f->path, ev->name, went);
}

static void io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    hk_watch *w = io->data;
    char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return; /* EAGAIN: all read */
        }
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            on_event(w, ev);
            p += sizeof *ev + ev->len;
        }
    }
}

/* ---- the flush ---- */

static int cmp_dirty(const void *a, const void *b)
{
    return strcmp(((const dirty *)a)->path, ((const dirty *)b)->path);
}

/* Sorts the dirty paths and merges the repeats (their flags or'ed). */
static void coalesce(hk_watch *w)
{
    if (w->nd > 1)
        qsort(w->d, w->nd, sizeof *w->d, cmp_dirty);
    size_t k = 0;
    for (size_t i = 0; i < w->nd; i++) {
        if (k > 0 && strcmp(w->d[k - 1].path, w->d[i].path) == 0) {
            w->d[k - 1].flags |= w->d[i].flags;
            free(w->d[i].path);
            continue;
        }
        w->d[k++] = w->d[i];
    }
    w->nd = k;
}

static void clear_dirty(hk_watch *w)
{
    for (size_t i = 0; i < w->nd; i++)
        free(w->d[i].path);
    w->nd = 0;
}

static void forget_below(hk_watch *w, const char *dir)
{
    drop_below(w, dir);
    w->st.forget_belows++;
    w->sink.forget_below(w->sink.arg, dir);
}

/* Pass 1: a path that is gone. */
static void apply_gone(hk_watch *w, const dirty *d)
{
    if (d->flags & DIRTY_DIR) {
        forget_below(w, d->path);
        return;
    }
    w->st.forgets++;
    w->sink.forget(w->sink.arg, d->path);
}

/* Pass 2: a path that exists (st: its lstat). */
static void apply_present(hk_watch *w, const dirty *d, const struct stat *st)
{
    if (S_ISDIR(st->st_mode)) {
        if (d->flags & DIRTY_WENT) /* another folder under the same name: what the old one held is looked at */
            forget_below(w, d->path);
        (void)add_tree(w, d->path, 1, false, true);
    } else if (S_ISREG(st->st_mode) && !(d->flags & DIRTY_DIR)) {
        w->st.loads++;
        w->sink.load(w->sink.arg, d->path, st);
    } else if (d->flags & DIRTY_DIR) { /* a folder replaced by a file */
        forget_below(w, d->path);
    } else {
        w->st.forgets++;
        w->sink.forget(w->sink.arg, d->path);
    }
}

static void resync(hk_watch *w)
{
    w->resync = false;
    clear_dirty(w); /* the rescan looks at everything */
    for (size_t i = 0; i < w->nroots; i++)
        (void)add_tree(w, w->roots[i], 0, true, false);
    w->st.rescans++;
    w->sink.rescan(w->sink.arg, w->resync_why ? w->resync_why : "changes were lost");
}

void hk_watch_flush(hk_watch *w)
{
    if (w->sink.busy && w->sink.busy(w->sink.arg)) { /* a rescan is under way: later */
        if (w->nd || w->resync)
            arm(w);
        return;
    }
    if (w->resync) {
        resync(w);
        return;
    }
    if (w->nd == 0)
        return;
    w->st.flushes++;
    coalesce(w);
    dirty *d = w->d;
    size_t n = w->nd;
    w->d = NULL; /* events read from inside the sink (none expected) start a new spell */
    w->nd = w->capd = 0;
    struct stat *st = malloc(n * sizeof *st);
    bool *present = calloc(n, sizeof *present);
    for (size_t i = 0; i < n; i++) {
        if (st && present)
            present[i] = lstat_reached(w, d[i].path, &st[i]) == 0;
        if (!present || !present[i])
            apply_gone(w, &d[i]);
    }
    for (size_t i = 0; st && present && i < n; i++)
        if (present[i])
            apply_present(w, &d[i], &st[i]);
    if (!st || !present) { /* out of memory: what exists is found by a rescan */
        w->resync = true;
        w->resync_why = "out of memory applying changes";
        arm(w);
    }
    for (size_t i = 0; i < n; i++)
        free(d[i].path);
    free(d);
    free(st);
    free(present);
}

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    hk_watch_flush(t->data);
}

/* ---- life cycle ---- */

hk_watch *hk_watch_new(struct ev_loop *loop, const hk_watch_sink *sink, char *err, size_t errlen)
{
    hk_watch *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        snprintf(err, errlen, "inotify: %s", strerror(errno));
        free(w);
        return NULL;
    }
    w->loop = loop;
    w->sink = *sink;
    ev_io_init(&w->io, io_cb, w->fd, EV_READ);
    w->io.data = w;
    ev_io_start(loop, &w->io);
    ev_timer_init(&w->timer, timer_cb, HK_WATCH_DEBOUNCE, 0.);
    w->timer.data = w;
    return w;
}

int hk_watch_add_root(hk_watch *w, const char *root, char *err, size_t errlen)
{
    size_t len = strlen(root);
    while (len > 1 && root[len - 1] == '/')
        len--;
    struct stat st;
    if (len == 0 || len >= PATH_MAX || stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: not watched: not a folder", root);
        return -1;
    }
    char **nv = realloc(w->roots, (w->nroots + 1) * sizeof *nv);
    if (!nv || !(nv[w->nroots] = strndup(root, len))) {
        if (nv)
            w->roots = nv;
        snprintf(err, errlen, "%s: not watched: out of memory", root);
        return -1;
    }
    w->roots = nv;
    const char *r = w->roots[w->nroots++];
    if (!add_tree(w, r, 0, true, false)) {
        snprintf(err, errlen, "%s: not watched: %s", root, w->st.limited ? "no inotify watch left" : "cannot watch");
        return -1;
    }
    return 0;
}

size_t hk_watch_rewatch(hk_watch *w)
{
    size_t added = 0;
    for (size_t i = 0; i < w->nroots; i++) {
        bool watched = false;
        for (size_t k = 0; k < w->nf && !watched; k++)
            watched = w->f[k].root && strcmp(w->f[k].path, w->roots[i]) == 0;
        if (!watched && add_tree(w, w->roots[i], 0, true, false))
            added++;
    }
    return added;
}

void hk_watch_stats_get(const hk_watch *w, hk_watch_stats *out)
{
    *out = w->st;
    out->watched = w->nf;
}

void hk_watch_free(hk_watch *w)
{
    if (!w)
        return;
    ev_io_stop(w->loop, &w->io);
    ev_timer_stop(w->loop, &w->timer);
    close(w->fd);
    for (size_t i = 0; i < w->nf; i++)
        free(w->f[i].path);
    free(w->f);
    for (size_t i = 0; i < w->nroots; i++)
        free(w->roots[i]);
    free(w->roots);
    clear_dirty(w);
    free(w->d);
    free(w);
}
