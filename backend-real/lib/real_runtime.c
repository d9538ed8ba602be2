/* real_runtime: the seeder's runtime table (hk_seeder_runtime) on libev and its wiring: sockets, store and pool to the seeder's events,
 * the periodic storage check, the store's batching watchers, and the life cycle of every part (see real_runtime.h).
 * The torrents by .torrent path are the catalog's (catalog/catalog.h). */
#include "real_runtime.h"

#include <assert.h>
#include <errno.h>
#include <ev.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hash.h"
#include "histogram.h"
#include "list.h"
#include "log.h"
#include "pool.h"
#include "rt_common.h"
#include "udp_port.h"
#include "utp_bridge.h"
#include "utp_reset.h"
#include "verify.h"
#include "wake.h"

typedef struct load_job {
    hk_list link;                  /* in jobs (on the pool), waiting_jobs (not started) or failed_jobs (to report) */
    hk_real *r;
    uint64_t token;
    hk_extent ext;                 /* what to load (kept while it waits for a free place among the jobs) */
    int prep_error;                /* prepare or submit failed: reported from the loop (ERROR, or RETRY: a shortage) */
    bool prepared;
    uint64_t submitted_ns;         /* CLOCK_MONOTONIC when the core asked (metrics: disk-load latency) */
    hk_store_job job;
} load_job;

struct hk_real {
    struct ev_loop *loop;
    hk_seeder_runtime rt;
    hk_config cfg;
    hk_seeder *seeder;
    hk_store *store;
    hk_pool *pool;
    hk_verifier *verifier;         /* piece verification (disk_verify) on the pool */
    hk_conn_hub *hub;
    hk_listener *listener;
    hk_udp_port *udp;              /* UDP on the listener's port: uTP resets, the DHT (NULL if it could not be bound) */
    hk_utp_responder utp;          /* answers the uTP SYNs the bridge does not take with a reset (core/utp_reset.h) */
    hk_utp_bridge *utp_bridge;     /* uTP connections bridged to the accept path (net/utp_bridge.h; NULL without UDP) */
    uint64_t utp_resets_sent;      /* resets the kernel took */

    hk_wake wake;                  /* the seeder's one wake-up */
    ev_timer check;

    ev_prepare deferred;           /* reports disk loads that could not start */
    ev_idle deferred_idle;
    hk_list failed_jobs;           /* newest first: reported in that order */

    hk_list jobs;                  /* outstanding jobs submitted to the pool, newest first */

    /* disk loads under a descriptor budget (issue 14, items 4 and 5): */
    hk_list waiting_jobs;          /* loads not started yet (max_jobs in flight), oldest first */
    unsigned inflight, max_jobs;   /* jobs holding a descriptor (prepared, on the pool) and their bound */
    bool short_burst;              /* a shortage is being reported: logged once when it starts and once at its end */
    uint64_t short_retries;        /* loads answered RETRY during the current burst */
    double short_last;             /* ev_now of the last RETRY */

    ev_prepare store_flush;        /* store batching: issues the iteration's prefetches (runs last) */
    ev_check store_epoch;          /* store batching: a new residency epoch after each wait (runs first) */

    hk_catalog *catalog;           /* the torrents by .torrent path (catalog.h) */

    hk_trackers *trackers;         /* NULL without opts.trackers */
    hk_dht_glue *dht;              /* NULL without opts.dht or without the UDP socket */

    hk_histogram disk_latency;     /* metrics: page-in jobs, submission to completion on the loop */
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void hk_real_opts_default(hk_real_opts *o)
{
    memset(o, 0, sizeof *o);
    hk_config_defaults(&o->cfg);
    o->listen = true;
    hk_listener_opts_default(&o->listener);
    hk_conn_limits_default(&o->conn);
    hk_store_limits_default(&o->store);
    o->disk_threads = 8;
    o->disk_jobs = 0; /* 0: 4 per disk thread */
    o->check_interval = 1.0;
    o->trackers = false;
    hk_trackers_opts_default(&o->trackers_opts);
}

/* ---- the seeder's wake-up (now, random_bytes and log: rt_common.h) ---- */

static void rt_wake_at(void *ctx, hk_time when)
{
    hk_real *r = ctx;
    hk_wake_at(&r->wake, when);
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

static void rt_set_cipher(void *ctx, hk_conn *conn, hk_cipher *cipher)
{
    (void)ctx;
    hk_conn_set_cipher(conn, cipher);
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

static void conn_on_fault(void *ctx, hk_conn *c, const hk_extent *ext, const char *why)
{
    hk_real *r = ctx;
    (void)c;
    /* A mapping page vanished (EFAULT) or an extent could not be pinned: the catalog finds out which files changed. */
    hk_catalog_on_send_fault(r->catalog, ext->storage, why);
}

static int conn_pin(void *ctx, const hk_extent *ext, struct iovec *iov, const char **why)
{
    hk_real *r = ctx;
    /* Metadata is sent from the .torrent itself: never from one that changed since it was read (the fault that
     * follows makes the catalog read it again). */
    if (ext->file == HK_FILE_METAINFO && !hk_catalog_torrent_file_current(r->catalog, ext->storage)) {
        if (why)
            *why = "its .torrent changed on disk";
        return -1;
    }
    return hk_store_pin(r->store, ext, iov, why);
}

static int conn_copy(void *ctx, const hk_extent *ext, uint8_t *buf, size_t cap, const char **why)
{
    hk_real *r = ctx;
    return hk_store_copy(r->store, ext, buf, cap, why); /* never the .torrent: metadata is pinned (checked above) */
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

static void job_work(void *arg)
{
    load_job *j = arg;
    hk_store_page_in(&j->job);
}

/* Says once per burst that loads hit a passing shortage (and that they are retried); the burst is over when no load
 * said RETRY for SHORTAGE_QUIET seconds, which the periodic check notices (shortage_tick) and says in one line. */
#define SHORTAGE_QUIET 2.0

static void shortage_note(hk_real *r, int error)
{
    r->short_retries++;
    r->short_last = ev_now(r->loop);
    if (r->short_burst)
        return;
    r->short_burst = true;
    hk_log(HK_LOG_WARN, "disk: short of %s (%s): loads wait and are retried, every torrent stays served; raise the "
           "descriptor limit (ulimit -n) or lower --max-peers / --max-open-files",
           error == EMFILE || error == ENFILE ? "descriptors" : "memory", strerror(error));
}

static void shortage_tick(hk_real *r)
{
    if (!r->short_burst || ev_now(r->loop) - r->short_last < SHORTAGE_QUIET)
        return;
    hk_log(HK_LOG_INFO, "disk: the shortage is over (%llu loads were retried)", (unsigned long long)r->short_retries);
    r->short_burst = false;
    r->short_retries = 0;
}

/* The completion status of a load that ended with errno-style `error` (0: success). */
static hk_disk_status load_status(hk_real *r, int error)
{
    if (error == 0)
        return HK_DISK_OK;
    if (hk_store_transient(error)) {
        shortage_note(r, error);
        return HK_DISK_RETRY;
    }
    return HK_DISK_ERROR;
}

static void start_job(hk_real *r, load_job *j);

/* Starts waiting loads while there is room among the jobs. */
static void pump_jobs(hk_real *r)
{
    while (r->inflight < r->max_jobs && !hk_list_empty(&r->waiting_jobs)) {
        hk_list *n = hk_list_first(&r->waiting_jobs);
        hk_list_remove(n);
        start_job(r, HK_LIST_ENTRY(n, load_job, link));
    }
}

static void job_done(void *arg)
{
    load_job *j = arg;
    hk_real *r = j->r;
    hk_list_remove(&j->link);
    hk_hist_observe(&r->disk_latency, mono_ns() - j->submitted_ns);
    int error = j->job.error;
    uint64_t storage = j->job.storage;
    hk_store_job_release(r->store, &j->job);
    uint64_t token = j->token;
    free(j);
    r->inflight--;
    pump_jobs(r);
    if (error != 0 && !hk_store_transient(error))
        hk_catalog_on_load_error(r->catalog, storage, error);
    hk_seeder_on_disk_loaded(r->seeder, token, load_status(r, error));
}

static void defer_failed_job(hk_real *r, load_job *j, int error)
{
    assert(!hk_list_linked(&j->link));
    j->prep_error = error ? error : EIO;
    hk_list_insert_head(&r->failed_jobs, &j->link);
    if (!ev_is_active(&r->deferred_idle))
        ev_idle_start(r->loop, &r->deferred_idle);
}

/* Prepares j (its descriptor: one of max_jobs) and hands it to the pool; a failure is reported from the loop. */
static void start_job(hk_real *r, load_job *j)
{
    if (hk_store_job_prepare(r->store, &j->ext, &j->job) != 0) {
        int e = errno;
        hk_log(HK_LOG_DEBUG, "disk load %llu cannot start: %s", (unsigned long long)j->token,
               hk_store_last_error(r->store));
        defer_failed_job(r, j, e);
        return;
    }
    j->prepared = true;
    hk_list_insert_head(&r->jobs, &j->link);
    r->inflight++;
    if (hk_pool_submit(r->pool, job_work, job_done, j) != 0) {
        hk_list_remove(&j->link);
        hk_store_job_release(r->store, &j->job);
        j->prepared = false;
        r->inflight--;
        defer_failed_job(r, j, ENOMEM);
    }
}

/* At most max_jobs loads hold a descriptor at once (a block over thousands of tiny files issues one load per file):
 * the others wait, in order, for a job to end. */
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
    hk_list_init(&j->link);
    j->r = r;
    j->token = token;
    j->submitted_ns = mono_ns(); /* metrics: the wait for a free job counts too */
    j->ext = *ext;
    if (r->inflight >= r->max_jobs) {
        hk_list_insert_tail(&r->waiting_jobs, &j->link);
        return;
    }
    start_job(r, j);
}

/* ---- piece verification (disk/verify.h) ---- */

static void verify_done(void *arg, uint64_t token, hk_verify_result result, int error)
{
    hk_real *r = arg;
    if (result == HK_VERIFY_RETRY)
        shortage_note(r, error); /* said once per burst, as for loads */
    hk_seeder_on_piece_verified(r->seeder, token, result);
}

static void rt_disk_verify(void *ctx, const hk_verify_req *req, uint64_t token)
{
    hk_real *r = ctx;
    if (hk_verifier_submit(r->verifier, req, token) != 0)
        hk_log(HK_LOG_ERROR, "disk verify %llu of piece %u dropped: out of memory", (unsigned long long)token,
               req->piece); /* as a dropped load: the core's deadlines end the wait */
}

/* The first job of a list, unlinked; NULL when the list is empty. */
static load_job *job_pop(hk_list *head)
{
    hk_list *n = hk_list_first(head);
    if (!n)
        return NULL;
    hk_list_remove(n);
    return HK_LIST_ENTRY(n, load_job, link);
}

static void deferred_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    hk_real *r = w->data;
    for (load_job *j; (j = job_pop(&r->failed_jobs)) != NULL;) {
        uint64_t token = j->token;
        int e = j->prep_error;
        free(j);
        hk_seeder_on_disk_loaded(r->seeder, token, load_status(r, e));
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

/* ---- the loop's watchers: the seeder's wake-up, the storage check, store batching ---- */

static void wake_fire(void *arg)
{
    hk_real *r = arg;
    hk_seeder_on_wake(r->seeder);
}

static void check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    hk_catalog_check_storages(w->data); /* the catalog (set when it is created) */
    shortage_tick((hk_real *)(void *)((char *)w - offsetof(hk_real, check)));
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

/* ---- torrents by path: the catalog's (catalog.h) ---- */

int hk_real_add_torrent_file(hk_real *r, const char *path, mi_torrent **mi_out, char *err, size_t errlen)
{
    return hk_catalog_add_file(r->catalog, path, mi_out, err, errlen);
}

hk_load_outcome hk_real_load(hk_real *r, const char *path, const struct stat *seen, uint32_t mark, unsigned flags,
                             hk_load_info *info, char *err, size_t errlen)
{
    return hk_catalog_load(r->catalog, path, seen, mark, flags, info, err, errlen);
}

bool hk_real_forget(hk_real *r, const char *path, uint8_t info_hash_out[20])
{
    return hk_catalog_forget(r->catalog, path, info_hash_out);
}

uint32_t hk_real_next_mark(hk_real *r)
{
    return hk_catalog_next_mark(r->catalog);
}

const hk_served *hk_real_served(const hk_real *r)
{
    return hk_catalog_served(r->catalog);
}

uint32_t hk_real_torrents(const hk_real *r)
{
    return hk_catalog_torrents(r->catalog);
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

/* The watchers and lists, initialised (none started), so that hk_real_free can run from any failure on. */
static void init_watchers(hk_real *r, const hk_real_opts *o)
{
    double every = o->check_interval > 0 ? o->check_interval : 1.0;
    hk_list_init(&r->jobs);
    hk_list_init(&r->failed_jobs);
    hk_list_init(&r->waiting_jobs);
    r->max_jobs = o->disk_jobs ? o->disk_jobs : 4 * (o->disk_threads ? o->disk_threads : 8);
    hk_wake_init(&r->wake, r->loop, wake_fire, r);
    ev_timer_init(&r->check, check_cb, every, every);
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
}

/* The seeder's runtime table. */
static hk_seeder_runtime runtime_table(hk_real *r)
{
    return (hk_seeder_runtime){
        .base = { .ctx = r, .now = hk_rt_now, .wake_at = rt_wake_at, .random_bytes = hk_rt_random_bytes,
                  .log = hk_rt_log },
        .send = rt_send,
        .close = rt_close,
        .disk_prefetch = rt_disk_prefetch,
        .disk_resident = rt_disk_resident,
        .disk_load = rt_disk_load,
        .set_cipher = rt_set_cipher,
    };
}

/* ---- UDP on the listen port: uTP connections are accepted and bridged to on_accept (the SYNs over the bridge's
 * bounds get the reset responder's policy); the DHT registers HK_UDP_KRPC itself ---- */

static void on_utp(void *arg, const uint8_t *data, size_t len, const hk_addr *from)
{
    hk_real *r = arg;
    if (r->utp_bridge && hk_utp_bridge_input(r->utp_bridge, data, len, from))
        return;
    uint8_t reply[HK_UTP_HEADER];
    uint64_t libutp = r->utp.stats.libutp_syn;
    size_t n = hk_utp_respond(&r->utp, data, len, from, hk_clock_now(), reply);
    bool sent = n && hk_udp_port_send(r->udp, reply, n, from) == 0;
    if (sent)
        r->utp_resets_sent++;
    if (hk_log_get_level() >= HK_LOG_DEBUG && (sent || r->utp.stats.libutp_syn != libutp)) {
        char who[64];
        hk_addr_format(from, who, sizeof who);
        if (sent)
            hk_log(HK_LOG_DEBUG, "utp: reset sent to %s (SYN of %zu bytes, connection id %u)", who, len,
                   (unsigned)(reply[2] << 8 | reply[3]));
        else
            hk_log(HK_LOG_DEBUG, "utp: libutp SYN from %s left unanswered (it falls back to TCP only after a uTP "
                   "timeout)", who);
    }
}

/* The UDP socket on the listener's bound port and family. One that cannot be bound costs the uTP fallback (clients
 * then wait out their uTP timeout before TCP) but not the TCP service: a warning, and serving goes on. */
static void open_udp(hk_real *r, const hk_real_opts *o)
{
    hk_udp_port_opts uo;
    hk_udp_port_opts_default(&uo);
    uo.port = hk_listener_port(r->listener);
    uo.family = o->listener.family;
    if (o->listener.family == HK_FAMILY_ANY && hk_listener_family(r->listener) == HK_FAMILY_V4)
        uo.family = HK_FAMILY_V4; /* the listener fell back to IPv4: so does the UDP port */
    uo.bind_addr = o->listener.bind_addr;
    char err[256];
    r->udp = hk_udp_port_new(r->loop, &uo, err, sizeof err);
    if (!r->udp) {
        hk_log(HK_LOG_WARN, "%s: no UDP on the listen port; uTP clients fall back to TCP only after their timeout",
               err);
        return;
    }
    uint64_t seed;
    hk_random_fill(&seed, sizeof seed);
    hk_utp_responder_init(&r->utp, NULL, seed, hk_clock_now());
    hk_utp_bridge_opts bo;
    hk_utp_bridge_opts_default(&bo);
    bo.fd_cap = o->listener.fd_cap;
    r->utp_bridge = hk_utp_bridge_new(r->loop, r->udp, &bo, on_accept, r, hk_mix64(seed ^ 0x75747062));
    hk_udp_port_set_handler(r->udp, HK_UDP_UTP, on_utp, r);
}

/* The listening socket (with o->listen) and the configuration with the port it bound. 0, or -1 with err set. */
static int open_listener(hk_real *r, const hk_real_opts *o, char *err, size_t errlen)
{
    if (o->listen) {
        r->listener = hk_listener_new(r->loop, &o->listener, on_accept, r, err, errlen);
        if (!r->listener)
            return -1;
        r->cfg.listen_port = hk_listener_port(r->listener);
        open_udp(r, o);
        if (o->dht && r->udp)
            r->cfg.dht_port = hk_udp_port_port(r->udp); /* the DHT bit and PORT (seeder.h) */
    }
    const char *bad = hk_config_check(&r->cfg);
    if (bad) {
        snprintf(err, errlen, "configuration: %s", bad);
        return -1;
    }
    return 0;
}

/* Store, connections, thread pool and the seeder on them. 0, or -1 with err set. */
static int create_engine(hk_real *r, const hk_real_opts *o, char *err, size_t errlen)
{
    r->store = hk_store_new(&o->store);
    static const hk_conn_ops ops = {
        .on_recv = conn_on_recv, .on_room = conn_on_room, .on_closed = conn_on_closed,
        .on_fault = conn_on_fault, .pin = conn_pin, .unpin = conn_unpin, .copy = conn_copy,
    };
    r->hub = hk_conn_hub_new(r->loop, &o->conn, &ops, r);
    r->pool = hk_pool_new(r->loop, o->disk_threads ? o->disk_threads : 8, 1.0);
    r->verifier = r->store && r->pool ? hk_verifier_new(r->store, r->pool, verify_done, r) : NULL;
    r->rt = runtime_table(r);
    if (!o->verify_off)
        r->rt.disk_verify = rt_disk_verify; /* piece verification (lazy): pieces checked before they are first sent */
    if (!r->store || !r->hub || !r->pool || !r->verifier) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->seeder = hk_seeder_new(&r->cfg, &r->rt);
    if (!r->seeder) {
        snprintf(err, errlen, "cannot create the seeder (out of memory?)");
        return -1;
    }
    hk_seeder_set_log_level(r->seeder, hk_log_get_level()); /* the core does not even format filtered lines */
    return 0;
}

/* The DHT node on the listen port's UDP socket, for the families the listener serves (dht_glue.h). */
static int create_dht(hk_real *r, const hk_real_opts *o, char *err, size_t errlen)
{
    hk_dht_glue_opts go = o->dht_opts;
    go.port = r->cfg.listen_port;
    hk_family f = hk_listener_family(r->listener);
    go.v4 = f != HK_FAMILY_V6;
    go.v6 = f != HK_FAMILY_V4;
    go.log_level = hk_log_get_level();
    r->dht = hk_dht_glue_new(r->loop, r->udp, &go, err, errlen);
    if (!r->dht)
        return -1;
    hk_catalog_set_dht(r->catalog, hk_dht_glue_node(r->dht));
    return 0;
}

/* With trackers: an announcer beside the seeder (trackers.h). Then the catalog on store, seeder and announcer.
 * 0, or -1 with err set. */
static int create_trackers_and_catalog(hk_real *r, const hk_real_opts *o, char *err, size_t errlen)
{
    if (o->trackers && o->listen) {
        hk_trackers_opts to = o->trackers_opts;
        memcpy(to.ann.peer_id, hk_seeder_peer_id(r->seeder), 20);
        to.ann.port = r->cfg.listen_port;
        r->trackers = hk_trackers_new(r->loop, &to, torrent_uploaded, r, err, errlen);
        if (!r->trackers)
            return -1;
    }
    r->catalog = hk_catalog_new(r->store, r->seeder, hk_real_announcer(r));
    if (!r->catalog) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (o->dht && o->listen && r->udp && create_dht(r, o, err, errlen) != 0)
        return -1;
    hk_catalog_set_shard(r->catalog, o->shard_k, o->shard_n);
    r->check.data = r->catalog; /* the periodic check is the catalog's */
    return 0;
}

hk_real *hk_real_new(struct ev_loop *loop, const hk_real_opts *o, char *err, size_t errlen)
{
    hk_real *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->loop = loop;
    r->cfg = o->cfg;
    hk_hist_init_latency(&r->disk_latency);
    init_watchers(r, o);
    if (open_listener(r, o, err, errlen) != 0 || create_engine(r, o, err, errlen) != 0 ||
        create_trackers_and_catalog(r, o, err, errlen) != 0) {
        hk_real_free(r);
        return NULL;
    }
    ev_timer_start(loop, &r->check);
    ev_prepare_start(loop, &r->deferred);
    hk_store_set_batching(r->store, true);
    ev_prepare_start(loop, &r->store_flush);
    ev_check_start(loop, &r->store_epoch);
    return r;
}

void hk_real_free(hk_real *r)
{
    if (!r)
        return;
    hk_trackers_free(r->trackers); /* first: it reads the seeder's counters */
    r->trackers = NULL;
    if (r->catalog)
        hk_catalog_set_dht(r->catalog, NULL);
    hk_dht_glue_free(r->dht);      /* before the UDP socket it sends on; writes the state file */
    r->dht = NULL;
    hk_utp_bridge_free(r->utp_bridge); /* resets its peers through the UDP port: before it */
    r->utp_bridge = NULL;
    hk_udp_port_free(r->udp);
    r->udp = NULL;
    hk_listener_free(r->listener);
    r->listener = NULL;
    hk_conn_hub_free(r->hub); /* closes every connection, unpinning what they had queued */
    r->hub = NULL;
    hk_pool_free(r->pool);    /* waits for page-ins in flight; runs no completion */
    r->pool = NULL;
    hk_verifier_free(r->verifier); /* after the pool: releases the verifies it ran no completion for */
    r->verifier = NULL;
    for (load_job *j; (j = job_pop(&r->jobs)) != NULL;) {
        hk_store_job_release(r->store, &j->job);
        free(j);
    }
    for (load_job *j; (j = job_pop(&r->failed_jobs)) != NULL;)
        free(j);
    for (load_job *j; (j = job_pop(&r->waiting_jobs)) != NULL;)
        free(j);
    hk_wake_stop(&r->wake);
    ev_timer_stop(r->loop, &r->check);
    ev_prepare_stop(r->loop, &r->deferred);
    ev_idle_stop(r->loop, &r->deferred_idle);
    ev_prepare_stop(r->loop, &r->store_flush);
    ev_check_stop(r->loop, &r->store_epoch);
    hk_seeder_free(r->seeder);
    hk_store_free(r->store);
    hk_catalog_free(r->catalog);
    free(r);
}

hk_seeder *hk_real_seeder(hk_real *r)
{
    return r->seeder;
}

hk_catalog *hk_real_catalog(hk_real *r)
{
    return r->catalog;
}

hk_store *hk_real_store(hk_real *r)
{
    return r->store;
}

const hk_listener *hk_real_listener(const hk_real *r)
{
    return r->listener;
}

hk_dht *hk_real_dht(hk_real *r)
{
    return hk_dht_glue_node(r->dht);
}

hk_udp_port *hk_real_udp_port(hk_real *r)
{
    return r->udp;
}

bool hk_real_utp_stats(const hk_real *r, hk_utp_stats *out)
{
    if (!r->udp)
        return false;
    *out = r->utp.stats;
    out->resets = r->utp_resets_sent;
    return true;
}

bool hk_real_utp_bridge_stats(const hk_real *r, hk_utp_bridge_stats *out)
{
    if (!r->utp_bridge)
        return false;
    hk_utp_bridge_stats_get(r->utp_bridge, out);
    return true;
}

const hk_conn_hub *hk_real_hub(const hk_real *r)
{
    return r->hub;
}

const hk_histogram *hk_real_disk_latency(const hk_real *r)
{
    return &r->disk_latency;
}
