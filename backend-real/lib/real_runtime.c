/* real_runtime: the hk_runtime action table on libev, the glue from sockets, store and pool to the seeder's
 * events, and the torrents by .torrent path: adding, re-adding and removing them across store, seeder and announcer
 * (see real_runtime.h). */
#include "real_runtime.h"
#include "wake.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pool.h"

/* hk_served_rec.reported: hk_seeder_storage_failed was called for its storage. */

typedef struct load_job {
    struct load_job *prev, *next;  /* outstanding jobs (on the pool or waiting to be reported) */
    hk_real *r;
    uint64_t token;
    int prep_error;                /* hk_store_job_prepare or hk_pool_submit failed: report ERROR from the loop */
    bool prepared;
    hk_store_job job;
} load_job;

struct hk_real {
    struct ev_loop *loop;
    hk_runtime rt;
    hk_config cfg;
    hk_seeder *seeder;
    hk_store *store;
    hk_pool *pool;
    hk_conn_hub *hub;
    hk_listener *listener;

    hk_wake wake;                  /* the seeder's one wake-up */
    ev_timer check;

    ev_prepare deferred;           /* reports disk loads that could not start */
    ev_idle deferred_idle;
    load_job *failed_jobs;         /* singly linked through next */

    load_job *jobs;                /* outstanding jobs submitted to the pool */

    ev_prepare store_flush;        /* store batching: issues the iteration's prefetches (runs last) */
    ev_check store_epoch;          /* store batching: a new residency epoch after each wait (runs first) */

    hk_served *served;             /* one record per .torrent path (served.h) */
    uint32_t mark;                 /* the last rescan number handed out */

    hk_trackers *trackers;         /* NULL without opts.trackers */
};

void hk_real_opts_default(hk_real_opts *o)
{
    memset(o, 0, sizeof *o);
    hk_config_defaults(&o->cfg);
    o->listen = true;
    hk_listener_opts_default(&o->listener);
    hk_conn_limits_default(&o->conn);
    hk_store_limits_default(&o->store);
    o->disk_threads = 8;
    o->check_interval = 1.0;
    o->trackers = false;
    hk_trackers_opts_default(&o->trackers_opts);
}

/* ---- time, randomness, log ---- */

static hk_time rt_now(void *ctx)
{
    (void)ctx;
    return hk_clock_now();
}

static void rt_wake_at(void *ctx, hk_time when)
{
    hk_real *r = ctx;
    hk_wake_at(&r->wake, when);
}

static void wake_fire(void *arg)
{
    hk_real *r = arg;
    hk_seeder_on_wake(r->seeder);
}

static void rt_random_bytes(void *ctx, void *buf, size_t n)
{
    (void)ctx;
    hk_random_fill(buf, n);
}

static void rt_log(void *ctx, hk_log_level level, const char *line)
{
    (void)ctx;
    hk_log_line(level, line);
}

/* ---- connections ---- */

static void rt_send(void *ctx, hk_conn *conn, const hk_segment *segs, size_t nsegs)
{
    (void)ctx;
    hk_conn_send(conn, segs, nsegs);
}

static void rt_close(void *ctx, hk_conn *conn)
{
    (void)ctx;
    hk_conn_close(conn);
}

static void conn_on_recv(void *ctx, hk_conn *c, const uint8_t *bytes, size_t len)
{
    hk_real *r = ctx;
    hk_peer *p = hk_conn_user(c);
    if (p)
        hk_seeder_on_recv(r->seeder, p, bytes, len);
}

static void conn_on_room(void *ctx, hk_conn *c, size_t room)
{
    hk_real *r = ctx;
    hk_peer *p = hk_conn_user(c);
    if (p)
        hk_seeder_on_sendable(r->seeder, p, room);
}

static void conn_on_closed(void *ctx, hk_conn *c, hk_close_reason why, int error)
{
    hk_real *r = ctx;
    hk_peer *p = hk_conn_user(c);
    if (p && hk_log_enabled(HK_LOG_TRACE))
        hk_log(HK_LOG_TRACE, "peer %llu: connection closed %s%s%s", (unsigned long long)hk_peer_number(p),
               why == HK_CLOSED_BY_PEER ? "by the peer" : "on error", error ? ": " : "", error ? strerror(error) : "");
    if (p)
        hk_seeder_on_closed(r->seeder, p, why);
}

static hk_served_rec *find_served(hk_real *r, uint64_t storage)
{
    return hk_served_find_storage(r->served, storage);
}

static void report_storage_failed(hk_real *r, hk_served_rec *sv, const char *why)
{
    if (sv->reported)
        return;
    sv->reported = true;
    hk_log(HK_LOG_DEBUG, "storage %llu failed: %s (reported to the seeder)", (unsigned long long)sv->storage,
           why);
    hk_seeder_storage_failed(r->seeder, sv->storage, why);
}

/* Runs hk_store_check and reports every storage it newly marked failed. */
static void check_storages(hk_real *r)
{
    if (hk_store_check(r->store) == 0)
        return;
    size_t cursor = 0;
    for (hk_served_rec *sv = hk_served_next(r->served, &cursor); sv; sv = hk_served_next(r->served, &cursor)) {
        const char *why = NULL;
        if (sv->storage && !sv->reported && hk_store_failed(r->store, sv->storage, &why))
            report_storage_failed(r, sv, why ? why : "data changed on disk");
    }
}

static void conn_on_fault(void *ctx, hk_conn *c, const hk_extent *ext, const char *why)
{
    hk_real *r = ctx;
    (void)c;
    /* A mapping page vanished (EFAULT) or an extent could not be pinned: find out which files changed. */
    check_storages(r);
    hk_served_rec *sv = find_served(r, ext->storage);
    if (!sv || sv->reported)
        return;
    const char *store_why = NULL;
    if (hk_store_failed(r->store, ext->storage, &store_why))
        report_storage_failed(r, sv, store_why ? store_why : why);
    else if (strstr(why, "vanished"))
        report_storage_failed(r, sv, why); /* EFAULT: the data is broken even if the files look fine now */
    else
        hk_log(HK_LOG_WARN, "could not send from storage %llu: %s", (unsigned long long)ext->storage, why);
}

static int conn_pin(void *ctx, const hk_extent *ext, struct iovec *iov, const char **why)
{
    hk_real *r = ctx;
    return hk_store_pin(r->store, ext, iov, why);
}

static void conn_unpin(void *ctx, const hk_extent *ext)
{
    hk_real *r = ctx;
    hk_store_unpin(r->store, ext);
}

static void on_accept(void *arg, int fd, const hk_addr *from)
{
    hk_real *r = arg;
    hk_conn *c = hk_conn_new(r->hub, fd);
    if (!c)
        return;
    hk_peer *p = hk_seeder_on_accept(r->seeder, c, from);
    if (!p && hk_log_enabled(HK_LOG_DEBUG)) {
        char a[64];
        hk_addr_format(from, a, sizeof a);
        hk_log(HK_LOG_DEBUG, "connection from %s refused by the seeder (connection cap)", a);
    }
    if (!p) {
        hk_conn_close(c);
        return;
    }
    hk_conn_set_user(c, p);
    hk_seeder_on_sendable(r->seeder, p, hk_conn_grant_room(c));
}

/* ---- disk ---- */

static void rt_disk_prefetch(void *ctx, const hk_extent *ext)
{
    hk_real *r = ctx;
    hk_store_prefetch(r->store, ext);
}

static bool rt_disk_resident(void *ctx, const hk_extent *ext)
{
    hk_real *r = ctx;
    return hk_store_resident(r->store, ext);
}

static void job_unlink(hk_real *r, load_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        r->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    j->prev = j->next = NULL;
}

static void job_work(void *arg)
{
    load_job *j = arg;
    hk_store_page_in(&j->job);
}

static void job_done(void *arg)
{
    load_job *j = arg;
    hk_real *r = j->r;
    job_unlink(r, j);
    int error = j->job.error;
    uint64_t storage = j->job.storage;
    hk_store_job_release(r->store, &j->job);
    uint64_t token = j->token;
    free(j);
    if (error != 0) {
        hk_served_rec *sv = find_served(r, storage);
        const char *why = NULL;
        if (sv && hk_store_failed(r->store, storage, &why))
            report_storage_failed(r, sv, why ? why : strerror(error));
    }
    hk_seeder_on_disk_loaded(r->seeder, token, error == 0 ? HK_DISK_OK : HK_DISK_ERROR);
}

static void defer_failed_job(hk_real *r, load_job *j, int error)
{
    j->prep_error = error ? error : EIO;
    j->next = r->failed_jobs;
    r->failed_jobs = j;
    if (!ev_is_active(&r->deferred_idle))
        ev_idle_start(r->loop, &r->deferred_idle);
}

static void rt_disk_load(void *ctx, const hk_extent *ext, uint64_t token)
{
    hk_real *r = ctx;
    load_job *j = calloc(1, sizeof *j);
    if (!j) {
        /* Without memory for the job the completion cannot be queued either; the core's own deadlines (send stall)
         * end the wait. Say so loudly. */
        hk_log(HK_LOG_ERROR, "disk load %llu dropped: out of memory", (unsigned long long)token);
        return;
    }
    j->r = r;
    j->token = token;
    if (hk_store_job_prepare(r->store, ext, &j->job) != 0) {
        int e = errno;
        hk_log(HK_LOG_DEBUG, "disk load %llu cannot start: %s", (unsigned long long)token,
               hk_store_last_error(r->store));
        defer_failed_job(r, j, e);
        return;
    }
    j->prepared = true;
    j->next = r->jobs;
    if (r->jobs)
        r->jobs->prev = j;
    r->jobs = j;
    if (hk_pool_submit(r->pool, job_work, job_done, j) != 0) {
        job_unlink(r, j);
        hk_store_job_release(r->store, &j->job);
        j->prepared = false;
        defer_failed_job(r, j, ENOMEM);
    }
}

static void deferred_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    hk_real *r = w->data;
    while (r->failed_jobs) {
        load_job *j = r->failed_jobs;
        r->failed_jobs = j->next;
        uint64_t token = j->token;
        free(j);
        hk_seeder_on_disk_loaded(r->seeder, token, HK_DISK_ERROR);
    }
    if (ev_is_active(&r->deferred_idle))
        ev_idle_stop(loop, &r->deferred_idle);
}

static void deferred_idle_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents; /* keeps the loop from blocking while completions wait in the prepare watcher */
}

static void check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    check_storages(w->data);
}

/* Store batching (store.h): the prefetches recorded during an iteration go out merged once its callbacks are done
 * (the lowest-priority prepare watcher, so after the others' work), and residency answers are cached only until the
 * loop has waited (the highest-priority check watcher, before any I/O callback). */
static void store_flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    hk_real *r = w->data;
    hk_store_flush_prefetch(r->store);
}

static void store_epoch_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)loop;
    (void)revents;
    hk_real *r = w->data;
    hk_store_next_epoch(r->store);
}

/* ---- torrents ---- */

/* Reads a regular file of at most max bytes without following a symbolic link; id (may be NULL) gets the identity
 * of what was read. On failure *error_out is the errno behind it (0: the file itself is unusable: not regular, too
 * large, shrank). */
static uint8_t *read_file_id(const char *path, size_t max, size_t *len, hk_file_id *id, int *error_out, char *err,
                             size_t errlen)
{
    *error_out = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        *error_out = errno;
        snprintf(err, errlen, "cannot open: %s", errno == ELOOP ? "is a symbolic link" : strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        close(fd);
        return NULL;
    }
    if ((uint64_t)st.st_size > max) {
        snprintf(err, errlen, "file too large: %lld bytes (at most %zu)", (long long)st.st_size, max);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        *error_out = ENOMEM;
        snprintf(err, errlen, "out of memory reading %zu bytes", size);
        close(fd);
        return NULL;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *error_out = n < 0 ? errno : 0;
            snprintf(err, errlen, "read error: %s", n < 0 ? strerror(errno) : "file shrank while being read");
            free(buf);
            close(fd);
            return NULL;
        }
        got += (size_t)n;
    }
    close(fd);
    if (id) {
        *id = (hk_file_id){
            .dev = (uint64_t)st.st_dev, .ino = (uint64_t)st.st_ino, .size = (uint64_t)st.st_size,
            .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
            .ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec,
        };
    }
    *len = size;
    return buf;
}

uint8_t *hk_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    int error;
    return read_file_id(path, max, len, NULL, &error, err, errlen);
}

static void file_id_of(hk_file_id *id, const struct stat *st)
{
    *id = (hk_file_id){
        .dev = (uint64_t)st->st_dev, .ino = (uint64_t)st->st_ino, .size = (uint64_t)st->st_size,
        .mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
        .ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec,
    };
}

static bool same_file_id(const hk_file_id *a, const hk_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns &&
           a->ctime_ns == b->ctime_ns;
}

static uint32_t hash_text(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h ? h : 1;
}

/* Errors that say nothing about the file: the process is short of descriptors or memory for now. */
static bool transient_error(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOMEM || e == EAGAIN || e == EINTR;
}

/* True if the torrent served from sv has failed (its storage, or a disk load, in the seeder's eyes); a storage the
 * store marked failed but the periodic check has not reported yet is reported now. */
static bool served_failed(hk_real *r, hk_served_rec *sv)
{
    if (sv->reported)
        return true;
    const char *why = NULL;
    if (hk_store_failed(r->store, sv->storage, &why)) {
        report_storage_failed(r, sv, why ? why : "data changed on disk");
        return true;
    }
    hk_torrent_stats ts;
    return hk_seeder_torrent_stats(r->seeder, sv->info_hash, &ts) && ts.failed;
}

/* Stops serving sv's torrent: the seeder first (it closes the torrent's connections, whose send queues unpin
 * their extents), then `stopped` to its trackers (if announce_stop), then the store releases the storage. */
static void unserve(hk_real *r, hk_served_rec *sv, bool announce_stop)
{
    hk_seeder_remove_torrent(r->seeder, sv->info_hash);
    if (announce_stop && r->trackers)
        hk_announcer_remove_torrent(hk_trackers_announcer(r->trackers), sv->info_hash);
    hk_store_remove(r->store, sv->storage);
    hk_served_set_storage(r->served, sv, 0);
    sv->reported = false;
}

/* Hands bytes (already validated on `storage`) to the seeder and records it in sv. On failure releases storage. */
static int serve_on(hk_real *r, hk_served_rec *sv, const uint8_t *bytes, size_t len, uint64_t storage,
                    const mi_torrent *mi, char *err, size_t errlen)
{
    uint8_t ih[20];
    char aerr[256] = "";
    hk_add_result res = hk_seeder_add_torrent(r->seeder, bytes, len, storage, ih, aerr, sizeof aerr);
    if (res != HK_ADD_OK) {
        if (res == HK_ADD_DUPLICATE)
            snprintf(err, errlen, "duplicate: a torrent with the same info-hash is already served");
        else if (res == HK_ADD_NOMEM)
            snprintf(err, errlen, "out of memory");
        else
            snprintf(err, errlen, "refused by the seeder: %s", aerr[0] ? aerr : "invalid");
        hk_store_remove(r->store, storage);
        return -1;
    }
    memcpy(sv->info_hash, ih, 20);
    sv->info_start = mi->info_start;
    sv->reported = false;
    hk_served_set_storage(r->served, sv, storage);
    return 0;
}

static void announce_added(hk_real *r, const char *path, const mi_torrent *mi)
{
    if (!r->trackers) /* a torrent without usable tracker URLs is simply not announced */
        return;
    if (hk_announcer_add_metainfo(hk_trackers_announcer(r->trackers), mi) == HK_ANN_NOMEM)
        hk_log(HK_LOG_WARN, "%s: served, but not announced: out of memory", path);
}

/* The path's outcome is a rejection (err says why): what it served before is removed, the reason remembered. */
static hk_load_outcome reject(hk_real *r, hk_served_rec *sv, const char *path, uint32_t mark, const hk_file_id *id,
                              bool bad_file, hk_load_info *info, const char *err)
{
    bool existed = sv != NULL;
    if (sv && sv->storage) {
        memcpy(info->old_hash, sv->info_hash, 20);
        info->old_removed = true;
        unserve(r, sv, true);
    }
    if (!sv)
        sv = hk_served_insert(r->served, path);
    if (!sv) /* out of memory: nothing remembered, the rejection repeats loudly */
        return HK_LOAD_REJECTED;
    uint32_t h = hash_text(err);
    info->repeated = existed && !info->old_removed && sv->why_hash == h;
    sv->why_hash = h;
    sv->mark = mark;
    sv->bad_file = bad_file;
    if (id)
        sv->id = *id;
    else
        memset(&sv->id, 0, sizeof sv->id);
    return HK_LOAD_REJECTED;
}

/* The torrent served from sv (same info-hash as mi) goes onto fresh storage: the data is validated first; only
 * then the seeder forgets the old storage (closing its peers) and takes the new one. The announcer keeps it. */
static hk_load_outcome readd(hk_real *r, hk_served_rec *sv, const char *path, uint32_t mark, bool failed,
                             const uint8_t *bytes, size_t len, const mi_torrent *mi, const hk_file_id *id,
                             hk_load_info *info, char *err, size_t errlen)
{
    info->was_failed = failed;
    char serr[512];
    uint64_t storage = hk_store_add(r->store, path, mi, serr, sizeof serr);
    if (storage == 0) {
        snprintf(err, errlen, "data: %s", serr);
        if (!failed) /* its .torrent changed and its data is not valid: nothing can be served from it */
            return reject(r, sv, path, mark, id, false, info, err);
        uint32_t h = hash_text(err);
        info->repeated = sv->why_hash == h;
        sv->why_hash = h;
        sv->mark = mark;
        sv->id = *id;
        return HK_LOAD_STILL_FAILED;
    }
    hk_seeder_remove_torrent(r->seeder, sv->info_hash);
    hk_store_remove(r->store, sv->storage);
    hk_served_set_storage(r->served, sv, 0);
    if (serve_on(r, sv, bytes, len, storage, mi, err, errlen) != 0) {
        if (r->trackers)
            hk_announcer_remove_torrent(hk_trackers_announcer(r->trackers), mi->info_hash);
        memcpy(info->old_hash, mi->info_hash, 20);
        info->old_removed = true;
        return reject(r, sv, path, mark, id, false, info, err);
    }
    sv->mark = mark;
    sv->id = *id;
    sv->why_hash = 0;
    sv->bad_file = false;
    memcpy(info->info_hash, sv->info_hash, 20);
    return HK_LOAD_READDED;
}

hk_load_outcome hk_real_load(hk_real *r, const char *path, const struct stat *seen, uint32_t mark, unsigned flags,
                             hk_load_info *info, char *err, size_t errlen)
{
    memset(info, 0, sizeof *info);
    if (errlen)
        err[0] = '\0';
    hk_served_rec *sv = hk_served_find(r->served, path);
    if (sv && mark != 0 && sv->mark == mark) { /* visited already by this rescan */
        if (sv->storage)
            memcpy(info->info_hash, sv->info_hash, 20);
        return HK_LOAD_UNCHANGED;
    }
    bool failed = sv && sv->storage && served_failed(r, sv);
    if (sv && seen) {
        hk_file_id sid;
        file_id_of(&sid, seen);
        if (same_file_id(&sid, &sv->id)) {
            if (sv->storage && !failed) {
                sv->mark = mark;
                memcpy(info->info_hash, sv->info_hash, 20);
                return HK_LOAD_UNCHANGED;
            }
            if (!sv->storage && sv->bad_file) {
                snprintf(err, errlen, "unchanged since it was rejected");
                sv->mark = mark;
                info->repeated = true;
                return HK_LOAD_REJECTED;
            }
        }
    }

    size_t len = 0;
    hk_file_id id;
    int rerr = 0;
    uint8_t *bytes = read_file_id(path, HK_MAX_TORRENT_FILE, &len, &id, &rerr, err, errlen);
    if (!bytes) {
        if (transient_error(rerr)) {
            if (sv)
                sv->mark = mark;
            return HK_LOAD_ERROR;
        }
        return reject(r, sv, path, mark, NULL, true, info, err);
    }
    mi_torrent *mi = NULL;
    mi_error me;
    if (mi_parse(bytes, len, &mi, &me) != 0) {
        snprintf(err, errlen, "invalid torrent: %s", me.what);
        free(bytes);
        return reject(r, sv, path, mark, &id, true, info, err);
    }

    hk_load_outcome out;
    if (sv && sv->storage && memcmp(sv->info_hash, mi->info_hash, 20) == 0) {
        if (!failed && sv->id.size == len && sv->info_start == mi->info_start) {
            sv->mark = mark; /* touched, or rewritten the same way: the store's view of it is still right */
            sv->id = id;
            memcpy(info->info_hash, sv->info_hash, 20);
            out = HK_LOAD_UNCHANGED;
        } else {
            out = readd(r, sv, path, mark, failed, bytes, len, mi, &id, info, err, errlen);
        }
        goto done;
    }
    if (sv && sv->storage) { /* another torrent in the same file: the old one goes */
        memcpy(info->old_hash, sv->info_hash, 20);
        info->old_removed = true;
        unserve(r, sv, true);
    }
    hk_torrent_stats ts;
    if (hk_seeder_torrent_stats(r->seeder, mi->info_hash, &ts)) {
        hk_served_rec *owner = find_served(r, ts.storage);
        if ((flags & HK_LOAD_MAY_DEFER) && owner && owner->mark != mark) {
            out = HK_LOAD_DEFERRED; /* the record keeps its old mark: the retry is not taken for a second visit */
            goto done;
        }
        snprintf(err, errlen, "duplicate: the same torrent (same info-hash) is already served from %s",
                 owner ? owner->path : "another path");
        out = reject(r, sv, path, mark, &id, false, info, err);
        goto done;
    }
    char serr[512];
    uint64_t storage = hk_store_add(r->store, path, mi, serr, sizeof serr);
    if (storage == 0) {
        snprintf(err, errlen, "data: %s", serr);
        out = reject(r, sv, path, mark, &id, false, info, err);
        goto done;
    }
    if (!sv)
        sv = hk_served_insert(r->served, path);
    if (!sv) {
        hk_store_remove(r->store, storage);
        snprintf(err, errlen, "out of memory");
        out = HK_LOAD_REJECTED;
        goto done;
    }
    if (serve_on(r, sv, bytes, len, storage, mi, err, errlen) != 0) {
        out = reject(r, sv, path, mark, &id, false, info, err);
        goto done;
    }
    announce_added(r, path, mi);
    sv->mark = mark;
    sv->id = id;
    sv->why_hash = 0;
    sv->bad_file = false;
    memcpy(info->info_hash, sv->info_hash, 20);
    out = info->old_removed ? HK_LOAD_REPLACED : HK_LOAD_ADDED;
done:
    if ((flags & HK_LOAD_WANT_MI) && (out == HK_LOAD_ADDED || out == HK_LOAD_REPLACED || out == HK_LOAD_READDED))
        info->mi = mi;
    else
        mi_free(mi);
    free(bytes);
    return out;
}

bool hk_real_forget(hk_real *r, const char *path, uint8_t info_hash_out[20])
{
    hk_served_rec *sv = hk_served_find(r->served, path);
    if (!sv)
        return false;
    bool served = sv->storage != 0;
    if (served) {
        if (info_hash_out)
            memcpy(info_hash_out, sv->info_hash, 20);
        unserve(r, sv, true);
    }
    hk_served_delete(r->served, sv);
    return served;
}

uint32_t hk_real_next_mark(hk_real *r)
{
    if (++r->mark == 0)
        r->mark = 1;
    return r->mark;
}

const hk_served *hk_real_served(const hk_real *r)
{
    return r->served;
}

int hk_real_add_torrent_file(hk_real *r, const char *path, mi_torrent **mi_out, char *err, size_t errlen)
{
    hk_served_rec *sv = hk_served_find(r->served, path);
    if (sv && sv->storage) {
        snprintf(err, errlen, "duplicate: this path is already served");
        return -1;
    }
    bool existed = sv != NULL;
    hk_load_info info;
    hk_load_outcome out = hk_real_load(r, path, NULL, r->mark, mi_out ? HK_LOAD_WANT_MI : 0, &info, err, errlen);
    if (out == HK_LOAD_ADDED) {
        if (mi_out)
            *mi_out = info.mi;
        return 0;
    }
    if (info.mi) /* not handed out on failure */
        mi_free(info.mi);
    if (out == HK_LOAD_ERROR && errlen && !err[0])
        snprintf(err, errlen, "cannot be read now");
    sv = hk_served_find(r->served, path);
    if (sv && !existed && !sv->storage) /* a rejection here leaves nothing behind */
        hk_served_delete(r->served, sv);
    return -1;
}

/* ---- trackers ---- */

static uint64_t torrent_uploaded(void *arg, const uint8_t info_hash[20])
{
    hk_real *r = arg;
    hk_torrent_stats ts;
    return hk_seeder_torrent_stats(r->seeder, info_hash, &ts) ? ts.uploaded : 0;
}

void hk_real_stop_trackers(hk_real *r, double seconds)
{
    if (r && r->trackers)
        hk_trackers_stop(r->trackers, seconds);
}

hk_announcer *hk_real_announcer(hk_real *r)
{
    return r->trackers ? hk_trackers_announcer(r->trackers) : NULL;
}

/* ---- life cycle ---- */

hk_real *hk_real_new(struct ev_loop *loop, const hk_real_opts *o, char *err, size_t errlen)
{
    hk_real *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->loop = loop;
    r->cfg = o->cfg;
    hk_wake_init(&r->wake, loop, wake_fire, r);
    ev_timer_init(&r->check, check_cb, o->check_interval > 0 ? o->check_interval : 1.0,
                  o->check_interval > 0 ? o->check_interval : 1.0);
    r->check.data = r;
    ev_prepare_init(&r->deferred, deferred_cb);
    r->deferred.data = r;
    ev_idle_init(&r->deferred_idle, deferred_idle_cb);
    r->deferred_idle.data = r;
    ev_prepare_init(&r->store_flush, store_flush_cb);
    ev_set_priority(&r->store_flush, EV_MINPRI);
    r->store_flush.data = r;
    ev_check_init(&r->store_epoch, store_epoch_cb);
    ev_set_priority(&r->store_epoch, EV_MAXPRI);
    r->store_epoch.data = r;

    if (o->listen) {
        r->listener = hk_listener_new(loop, &o->listener, on_accept, r, err, errlen);
        if (!r->listener)
            goto fail;
        r->cfg.listen_port = hk_listener_port(r->listener);
    }
    const char *bad = hk_config_check(&r->cfg);
    if (bad) {
        snprintf(err, errlen, "configuration: %s", bad);
        goto fail;
    }
    r->store = hk_store_new(&o->store);
    r->served = hk_served_new();
    static const hk_conn_ops ops = {
        .on_recv = conn_on_recv, .on_room = conn_on_room, .on_closed = conn_on_closed,
        .on_fault = conn_on_fault, .pin = conn_pin, .unpin = conn_unpin,
    };
    r->hub = hk_conn_hub_new(loop, &o->conn, &ops, r);
    r->pool = hk_pool_new(loop, o->disk_threads ? o->disk_threads : 8, 1.0);
    r->rt = (hk_runtime){
        .ctx = r,
        .now = rt_now,
        .wake_at = rt_wake_at,
        .random_bytes = rt_random_bytes,
        .send = rt_send,
        .close = rt_close,
        .disk_prefetch = rt_disk_prefetch,
        .disk_resident = rt_disk_resident,
        .disk_load = rt_disk_load,
        .udp_send = NULL,
        .http_get = NULL,
        .log = rt_log,
    };
    if (!r->store || !r->served || !r->hub || !r->pool) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    r->seeder = hk_seeder_new(&r->cfg, &r->rt);
    if (!r->seeder) {
        snprintf(err, errlen, "cannot create the seeder (out of memory?)");
        goto fail;
    }
    hk_seeder_set_log_level(r->seeder, hk_log_get_level()); /* the core does not even format filtered lines */
    if (o->trackers && o->listen) { /* trackers: an announcer beside the seeder (trackers.h) */
        hk_trackers_opts to = o->trackers_opts;
        memcpy(to.ann.peer_id, hk_seeder_peer_id(r->seeder), 20);
        to.ann.port = r->cfg.listen_port;
        r->trackers = hk_trackers_new(loop, &to, torrent_uploaded, r, err, errlen);
        if (!r->trackers)
            goto fail;
    }
    ev_timer_start(loop, &r->check);
    ev_prepare_start(loop, &r->deferred);
    hk_store_set_batching(r->store, true);
    ev_prepare_start(loop, &r->store_flush);
    ev_check_start(loop, &r->store_epoch);
    return r;
fail:
    hk_real_free(r);
    return NULL;
}

void hk_real_free(hk_real *r)
{
    if (!r)
        return;
    hk_trackers_free(r->trackers); /* first: it reads the seeder's counters */
    r->trackers = NULL;
    hk_listener_free(r->listener);
    r->listener = NULL;
    hk_conn_hub_free(r->hub); /* closes every connection, unpinning what they had queued */
    r->hub = NULL;
    hk_pool_free(r->pool);    /* waits for page-ins in flight; runs no completion */
    r->pool = NULL;
    while (r->jobs) {
        load_job *j = r->jobs;
        job_unlink(r, j);
        hk_store_job_release(r->store, &j->job);
        free(j);
    }
    while (r->failed_jobs) {
        load_job *j = r->failed_jobs;
        r->failed_jobs = j->next;
        free(j);
    }
    hk_wake_stop(&r->wake);
    ev_timer_stop(r->loop, &r->check);
    ev_prepare_stop(r->loop, &r->deferred);
    ev_idle_stop(r->loop, &r->deferred_idle);
    ev_prepare_stop(r->loop, &r->store_flush);
    ev_check_stop(r->loop, &r->store_epoch);
    hk_seeder_free(r->seeder);
    hk_store_free(r->store);
    hk_served_free(r->served);
    free(r);
}

hk_seeder *hk_real_seeder(hk_real *r)
{
    return r->seeder;
}

hk_store *hk_real_store(hk_real *r)
{
    return r->store;
}

const hk_listener *hk_real_listener(const hk_real *r)
{
    return r->listener;
}

const hk_conn_hub *hk_real_hub(const hk_real *r)
{
    return r->hub;
}

uint32_t hk_real_torrents(const hk_real *r)
{
    return (uint32_t)hk_served_with_storage(r->served);
}
