/* rescan: the walk, the sweep of paths not visited and the retry of deferred duplicates, a slice at a time (see
 * rescan.h). */
#include "rescan.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "scan.h"
#include "store.h"

enum { PH_WALK = 0, PH_COLLECT, PH_SWEEP, PH_DEFERRED, PH_DONE };

typedef struct path_list {
    char **v;
    size_t n, cap, next;
} path_list;

struct hk_rescan {
    hk_real *r;
    const char *const *dirs;
    size_t ndirs, dir;
    hk_scan_iter *it;              /* the walk of dirs[dir] */
    uint32_t mark;
    hk_rescan_cb cb;
    size_t progress_every, next_progress;
    int phase;
    path_list gone;                /* records the walk did not visit */
    path_list deferred;            /* duplicates of a torrent served from a path not visited yet */
    hk_rescan_stats st;
    struct timespec t0;
    char err[1024];
};

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static int list_push(path_list *l, const char *path)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        char **nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = ncap;
    }
    char *c = strdup(path);
    if (!c)
        return -1;
    l->v[l->n++] = c;
    return 0;
}

static void list_free(path_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static void emit(hk_rescan *rs, hk_rescan_kind kind, const char *path, const char *why, const uint8_t *ih,
                 const mi_torrent *mi, bool repeated)
{
    if (!rs->cb.on_event)
        return;
    hk_rescan_event ev = { .kind = kind, .path = path, .why = why, .info_hash = ih, .mi = mi,
                           .repeated = repeated };
    rs->cb.on_event(rs->cb.arg, &ev);
}

/* Loads one path and reports what changed. */
static void load(hk_rescan *rs, const char *path, const struct stat *seen, unsigned flags)
{
    hk_load_info info;
    hk_load_outcome out = hk_real_load(rs->r, path, seen, rs->mark, flags | HK_LOAD_WANT_MI, &info, rs->err,
                                       sizeof rs->err);
    if (info.old_removed) {
        rs->st.removed++;
        emit(rs, HK_RESCAN_REMOVED, path,
             out == HK_LOAD_REJECTED ? "its torrent file changed and is no longer usable"
                                     : "its torrent file now holds another torrent",
             info.old_hash, NULL, false);
    }
    switch (out) {
    case HK_LOAD_UNCHANGED:
        rs->st.unchanged++;
        break;
    case HK_LOAD_ADDED:
    case HK_LOAD_REPLACED:
        rs->st.added++;
        emit(rs, HK_RESCAN_ADDED, path, NULL, info.info_hash, info.mi, false);
        break;
    case HK_LOAD_READDED:
        rs->st.added++;
        emit(rs, HK_RESCAN_READDED, path,
             info.was_failed ? "its data is valid again" : "its torrent file was rewritten", info.info_hash,
             info.mi, false);
        break;
    case HK_LOAD_REJECTED:
        rs->st.failed++;
        emit(rs, HK_RESCAN_REJECTED, path, rs->err, NULL, NULL, info.repeated);
        break;
    case HK_LOAD_STILL_FAILED:
        rs->st.failed++;
        emit(rs, HK_RESCAN_STILL_FAILED, path, rs->err, info.info_hash, NULL, info.repeated);
        break;
    case HK_LOAD_ERROR:
        rs->st.failed++;
        emit(rs, HK_RESCAN_ERROR, path, rs->err, NULL, NULL, false);
        break;
    case HK_LOAD_OTHER_SHARD: /* logged at DEBUG by the catalog when read; counted in the summary */
        rs->st.other_shard++;
        break;
    case HK_LOAD_DEFERRED:
        if (list_push(&rs->deferred, path) != 0) {
            rs->st.failed++;
            emit(rs, HK_RESCAN_ERROR, path, "out of memory", NULL, NULL, false);
        }
        break;
    }
    if (info.mi)
        mi_free(info.mi);
}

/* One result of the walk; false when every folder was walked. */
static bool walk_one(hk_rescan *rs)
{
    while (rs->dir < rs->ndirs) {
        if (!rs->it) {
            rs->it = hk_scan_iter_new(rs->dirs[rs->dir]);
            const char *const *roots;
            size_t nroots;
            if (rs->it && hk_store_links(hk_real_store(rs->r), &roots, &nroots))
                hk_scan_iter_follow(rs->it, roots, nroots); /* --follow-links */
            if (!rs->it) {
                rs->st.problems++;
                emit(rs, HK_RESCAN_PROBLEM, rs->dirs[rs->dir], "out of memory; not scanned", NULL, NULL, false);
                rs->dir++;
                continue;
            }
        }
        const char *path, *why;
        struct stat st;
        hk_scan_event ev = hk_scan_iter_next(rs->it, &path, &why, &st);
        if (ev == HK_SCAN_END) {
            hk_scan_iter_free(rs->it);
            rs->it = NULL;
            rs->dir++;
            continue;
        }
        if (ev == HK_SCAN_PROBLEM) {
            rs->st.problems++;
            emit(rs, HK_RESCAN_PROBLEM, path, why, NULL, NULL, false);
            return true;
        }
        rs->st.files++;
        load(rs, path, &st, HK_LOAD_MAY_DEFER);
        if (rs->progress_every && rs->st.files >= rs->next_progress) {
            rs->next_progress += rs->progress_every;
            if (rs->cb.on_progress) {
                hk_rescan_stats now;
                hk_rescan_stats_get(rs, &now);
                rs->cb.on_progress(rs->cb.arg, &now);
            }
        }
        return true;
    }
    return false;
}

/* Lists the records the walk did not visit (their paths: a record may be deleted before it is examined). */
static void collect(hk_rescan *rs)
{
    const hk_served *t = hk_real_served(rs->r);
    size_t cursor = 0;
    for (const hk_served_rec *sv = hk_served_next(t, &cursor); sv; sv = hk_served_next(t, &cursor)) {
        if (sv->mark == rs->mark)
            continue;
        char path[HK_SERVED_PATH_MAX];
        if (list_push(&rs->gone, hk_served_path(sv, path, sizeof path)) != 0) {
            rs->st.failed++;
            emit(rs, HK_RESCAN_ERROR, path, "out of memory: not checked for removal", NULL, NULL, false);
        }
    }
}

/* The walk never follows a link below a folder it was given: a record below dirs[i] whose path now goes through a
 * link (a folder swapped for one) is not "still there", whatever lstat finds at the end of the link. Returns why, or
 * NULL if every folder between the given one and the file is a folder. */
static const char *linked_folder(const hk_rescan *rs, const char *path)
{
    char p[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof p)
        return NULL;
    for (size_t d = 0; d < rs->ndirs; d++) {
        size_t n = strlen(rs->dirs[d]);
        while (n > 1 && rs->dirs[d][n - 1] == '/')
            n--;
        if (strncmp(path, rs->dirs[d], n) != 0 || (path[n] != '/' && rs->dirs[d][n - 1] != '/'))
            continue;
        memcpy(p, path, len + 1);
        for (char *slash = strchr(p + n + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
            *slash = '\0';
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISLNK(st.st_mode))
                return "a folder on its path was replaced by a symbolic link";
            *slash = '/';
        }
        return NULL;
    }
    return NULL;
}

/* A record the walk did not visit: removed if its file is gone, kept if it is still there. */
static void sweep_one(hk_rescan *rs, const char *path)
{
    const hk_served_rec *sv = hk_served_find(hk_real_served(rs->r), path);
    if (!sv || sv->mark == rs->mark)
        return;
    struct stat st;
    const char *why = NULL;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            why = "torrent file deleted";
        } else {
            snprintf(rs->err, sizeof rs->err, "not reached by the scan, and cannot be examined: %s", strerror(errno));
            why = NULL;
        }
    } else if (!S_ISREG(st.st_mode)) {
        why = S_ISLNK(st.st_mode) ? "torrent file replaced by a symbolic link" : "torrent file is no longer a file";
    } else if ((why = linked_folder(rs, path)) == NULL) {
        snprintf(rs->err, sizeof rs->err, "not reached by the scan (a folder could not be read?) but still there");
    }
    if (!why) { /* still there, or unknown: leave it as it is */
        if (hk_served_storage(sv)) {
            rs->st.kept++;
            emit(rs, HK_RESCAN_KEPT, path, rs->err, hk_seeder_info_hash(hk_real_seeder(rs->r), sv->torrent), NULL,
                 false);
        }
        return;
    }
    uint8_t ih[20];
    if (hk_real_forget(rs->r, path, ih)) {
        rs->st.removed++;
        emit(rs, HK_RESCAN_REMOVED, path, why, ih, NULL, false);
    }
}

void hk_rescan_one(hk_real *r, const char *path, const struct stat *seen, const hk_rescan_cb *cb)
{
    hk_rescan rs = { .r = r, .mark = 0, .cb = cb ? *cb : (hk_rescan_cb){ 0 } };
    load(&rs, path, seen, 0); /* without HK_LOAD_MAY_DEFER: never DEFERRED, nothing listed */
}

bool hk_rescan_forget_one(hk_real *r, const char *path, const char *why, const hk_rescan_cb *cb)
{
    hk_rescan rs = { .r = r, .cb = cb ? *cb : (hk_rescan_cb){ 0 } };
    uint8_t ih[20];
    if (!hk_real_forget(r, path, ih))
        return false;
    emit(&rs, HK_RESCAN_REMOVED, path, why, ih, NULL, false);
    return true;
}

hk_rescan *hk_rescan_new(hk_real *r, const char *const *dirs, size_t ndirs, const hk_rescan_cb *cb,
                         size_t progress_every)
{
    hk_rescan *rs = calloc(1, sizeof *rs);
    if (!rs)
        return NULL;
    *rs = (hk_rescan){
        .r = r, .dirs = dirs, .ndirs = ndirs, .mark = hk_real_next_mark(r), .cb = cb ? *cb : (hk_rescan_cb){ 0 },
        .progress_every = progress_every, .next_progress = progress_every, .phase = PH_WALK,
    };
    clock_gettime(CLOCK_MONOTONIC, &rs->t0);
    return rs;
}

bool hk_rescan_step(hk_rescan *rs, double seconds)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        switch (rs->phase) {
        case PH_WALK:
            if (!walk_one(rs))
                rs->phase = PH_COLLECT;
            break;
        case PH_COLLECT:
            collect(rs);
            rs->phase = PH_SWEEP;
            break;
        case PH_SWEEP:
            if (rs->gone.next < rs->gone.n)
                sweep_one(rs, rs->gone.v[rs->gone.next++]);
            else
                rs->phase = PH_DEFERRED;
            break;
        case PH_DEFERRED:
            if (rs->deferred.next < rs->deferred.n)
                load(rs, rs->deferred.v[rs->deferred.next++], NULL, 0);
            else
                rs->phase = PH_DONE;
            break;
        default:
            break;
        }
    } while (rs->phase != PH_DONE && since(&t0) < seconds);
    if (rs->phase == PH_DONE && !rs->st.done) {
        rs->st.done = true;
        rs->st.seconds = since(&rs->t0);
        list_free(&rs->gone);
        list_free(&rs->deferred);
    }
    return rs->phase == PH_DONE;
}

void hk_rescan_stats_get(const hk_rescan *rs, hk_rescan_stats *out)
{
    *out = rs->st;
    out->served = hk_real_torrents(rs->r);
    if (!rs->st.done)
        out->seconds = since(&rs->t0);
}

void hk_rescan_free(hk_rescan *rs)
{
    if (!rs)
        return;
    hk_scan_iter_free(rs->it);
    list_free(&rs->gone);
    list_free(&rs->deferred);
    free(rs);
}

int hk_rescan_run(hk_real *r, const char *const *dirs, size_t ndirs, const hk_rescan_cb *cb, size_t progress_every,
                  hk_rescan_stats *out)
{
    hk_rescan *rs = hk_rescan_new(r, dirs, ndirs, cb, progress_every);
    if (!rs)
        return -1;
    while (!hk_rescan_step(rs, 3600.0)) {
    }
    if (out)
        hk_rescan_stats_get(rs, out);
    hk_rescan_free(rs);
    return 0;
}
