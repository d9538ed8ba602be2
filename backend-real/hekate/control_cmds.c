/* control_cmds: the control socket's commands on the daemon's state (see control_cmds.h). */
#include "control_cmds.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_reload.h"
#include "control.h"
#include "log.h"
#include "rescans.h"
#include "served.h"

/* ---- reading ---- */

static void peers_members(hk_jw *w, const hk_stats *s)
{
    hk_jw_ku64(w, "peers", s->peers);
    hk_jw_ku64(w, "unchoked", s->unchoked);
    hk_jw_ku64(w, "waiting", s->waiting);
    hk_jw_ku64(w, "encrypted", s->peers_encrypted);
    hk_jw_ku64(w, "plain", s->peers - s->peers_encrypted);
}

static void cmd_status(app *a, hk_jw *w)
{
    hk_stats s;
    hk_seeder_stats(hk_real_seeder(a->real), &s);
    hk_conn_stats cs;
    hk_conn_hub_stats(hk_real_hub(a->real), &cs);
    hk_control_stats ct;
    hk_control_stats_get(a->control, &ct);
    hk_jw_raw(w, "{\"ok\":true");
    hk_jw_kstr(w, "version", HEKATE_VERSION);
    hk_jw_ku64(w, "pid", (uint64_t)getpid());
    hk_jw_key(w, "uptime_seconds");
    hk_jw_double(w, ev_now(a->loop) - a->started_at);
    hk_jw_ku64(w, "torrents", hk_real_torrents(a->real));
    peers_members(w, &s);
    hk_jw_ku64(w, "bytes_sent", s.bytes_sent);
    hk_jw_ku64(w, "blocks_sent", s.blocks_sent);
    hk_jw_ku64(w, "bytes_written", cs.bytes_written);
    hk_jw_ku64(w, "connections_opened", cs.opened);
    hk_jw_ku64(w, "peers_refused", s.peers_refused);
    hk_jw_ku64(w, "requests_rejected", s.requests_rejected);
    hk_jw_ku64(w, "disk_loads", s.disk_loads);
    hk_jw_ku64(w, "core_memory_bytes", s.memory_bytes);
    hk_jw_key(w, "rescan_running");
    hk_jw_bool(w, a->rs != NULL);
    hk_jw_ku64(w, "rescans_done", a->rescans_done);
    hk_jw_ku64(w, "control_clients", ct.clients);
    hk_jw_ku64(w, "control_bad_requests", ct.bad_requests);
    hk_jw_raw(w, "}\n");
}

static void cmd_peers(app *a, hk_jw *w)
{
    hk_stats s;
    hk_seeder_stats(hk_real_seeder(a->real), &s);
    hk_jw_raw(w, "{\"ok\":true");
    peers_members(w, &s);
    hk_jw_ku64(w, "max_unchoked_seen", s.max_unchoked_seen);
    hk_jw_ku64(w, "queued_requests", s.queued_requests);
    hk_jw_raw(w, "}\n");
}

/* The first that applies: failed, stale (its .torrent changed), damaged (pieces fail their hash), verifying (a piece
 * check in flight, or the background pass on it), served; the same states as /metrics' hekate_torrents. */
static const char *state_of(const hk_served_rec *rec, const hk_torrent_stats *ts)
{
    return ts->failed ? "failed" : rec->stale ? "stale" : ts->pieces_bad ? "damaged"
           : ts->verifying || ts->in_pass ? "verifying" : "served";
}

/* One torrent as an object. */
static void torrent_object(hk_jw *w, const uint8_t ih[20], const hk_served_rec *rec, const hk_torrent_stats *ts)
{
    hk_jw_raw(w, "{");
    hk_jw_key(w, "info_hash");
    hk_jw_hex(w, ih, 20);
    hk_jw_kstr(w, "state", state_of(rec, ts));
    hk_jw_ku64(w, "peers", ts->peers);
    hk_jw_ku64(w, "uploaded", ts->uploaded);
    hk_jw_ku64(w, "pieces", ts->pieces);
    hk_jw_ku64(w, "length", ts->total_length);
    hk_jw_kstr(w, "path", HK_SERVED_PATH(rec));
    hk_jw_raw(w, "}");
}

/* The record serving info_hash, or NULL, in O(1): the seeder's torrent table finds the torrent by its info-hash
 * (core/torrent_table.h, through the info-hash index) and the storage it is served from; the table of paths finds
 * the record by that storage (served.h). */
static const hk_served_rec *find_hash(app *a, const uint8_t ih[20])
{
    hk_torrent_stats ts;
    if (!hk_seeder_torrent_stats(hk_real_seeder(a->real), ih, &ts) || !ts.storage)
        return NULL;
    const hk_served_rec *rec = hk_served_find_storage(hk_real_served(a->real), ts.storage);
    const uint8_t *served = rec && hk_served_storage(rec) ? hk_seeder_info_hash(hk_real_seeder(a->real), rec->torrent) : NULL;
    return served && memcmp(served, ih, 20) == 0 ? rec : NULL;
}

static void cmd_torrent(app *a, const hk_ctl_request *req, hk_jw *w)
{
    const hk_served_rec *rec = find_hash(a, req->info_hash);
    hk_torrent_stats ts;
    if (!rec || !hk_seeder_torrent_stats(hk_real_seeder(a->real), req->info_hash, &ts)) {
        hk_ctl_error_reply(w, "torrent: no such torrent is served");
        return;
    }
    hk_jw_raw(w, "{\"ok\":true");
    hk_jw_key(w, "torrent");
    torrent_object(w, req->info_hash, rec, &ts);
    hk_jw_raw(w, "}\n");
}

/* ---- torrents --top N: a min-heap of the N most uploaded ---- */

typedef struct top_item {
    uint64_t uploaded;
    const hk_served_rec *rec;
} top_item;

static bool less(const top_item *x, const top_item *y)
{
    return x->uploaded < y->uploaded || (x->uploaded == y->uploaded && hk_served_path_cmp(x->rec, y->rec) > 0);
}

static void sift_down(top_item *h, size_t n, size_t i)
{
    for (;;) {
        size_t m = i, l = 2 * i + 1, r = l + 1;
        if (l < n && less(&h[l], &h[m]))
            m = l;
        if (r < n && less(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        top_item t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void sift_up(top_item *h, size_t i)
{
    while (i > 0 && less(&h[i], &h[(i - 1) / 2])) {
        top_item t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

/* The heap of the top `cap` records by uploaded; returns its size. */
static size_t top_heap(app *a, top_item *h, size_t cap)
{
    const hk_served *t = hk_real_served(a->real);
    const hk_seeder *sd = hk_real_seeder(a->real);
    size_t n = 0, cur = 0;
    for (const hk_served_rec *rec; (rec = hk_served_next(t, &cur));) {
        hk_torrent_stats ts;
        if (!hk_served_storage(rec) || !hk_seeder_torrent_stats(sd, hk_seeder_info_hash(sd, rec->torrent), &ts))
            continue;
        top_item it = { ts.uploaded, rec };
        if (n < cap) {
            h[n] = it;
            sift_up(h, n++);
        } else if (less(&h[0], &it)) {
            h[0] = it;
            sift_down(h, n, 0);
        }
    }
    return n;
}

static void cmd_torrents(app *a, const hk_ctl_request *req, hk_jw *w)
{
    top_item *h = malloc(req->top * sizeof *h);
    if (!h) {
        hk_ctl_error_reply(w, "torrents: out of memory");
        return;
    }
    size_t n = top_heap(a, h, req->top);
    for (size_t k = n; k > 1; k--) { /* heap sort: the least at the end, so the array runs from most to least */
        top_item t = h[0];
        h[0] = h[k - 1];
        h[k - 1] = t;
        sift_down(h, k - 1, 0);
    }
    hk_jw_raw(w, "{\"ok\":true");
    hk_jw_ku64(w, "torrents_served", hk_real_torrents(a->real));
    hk_jw_ku64(w, "top", req->top);
    hk_jw_key(w, "torrents");
    hk_jw_raw(w, "[");
    const hk_seeder *sd = hk_real_seeder(a->real);
    for (size_t i = 0; i < n; i++) {
        hk_torrent_stats ts;
        const uint8_t *ih = hk_seeder_info_hash(sd, h[i].rec->torrent);
        hk_seeder_torrent_stats(sd, ih, &ts);
        if (i)
            hk_jw_raw(w, ",");
        torrent_object(w, ih, h[i].rec, &ts);
    }
    hk_jw_raw(w, "]}\n");
    free(h);
}

/* ---- changing what is served ---- */

/* The last component of path, which must name a visible *.torrent file: true if it does. */
static bool torrent_name(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    return base[0] != '.' && n > 8 && strcmp(base + n - 8, ".torrent") == 0;
}

/* true if a folder of the given path `parent` between the folder whose real path is real_dir and parent itself is a
 * symbolic link (the scan never follows one): walks up from parent, one component at a time, until real_dir. */
static bool through_link(const char *parent, const char *real_dir)
{
    char buf[PATH_MAX], real[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", parent);
    for (;;) {
        size_t n = strlen(buf);
        while (n > 1 && buf[n - 1] == '/')
            buf[--n] = '\0';
        if (realpath(buf, real) && strcmp(real, real_dir) == 0)
            return false;
        struct stat st;
        if (lstat(buf, &st) == 0 && S_ISLNK(st.st_mode))
            return true;
        char *slash = strrchr(buf, '/');
        if (!slash || slash == buf)
            return false; /* not reached: the caller found real_dir above parent */
        *slash = '\0';
    }
}

/* dir (as given on the command line) + rest (the real folder below it, "" or "/a/b") + "/" + base into out: 0, or
 * -1 with err set. */
static int spell_below(const char *dir, const char *rest, const char *base, char *out, size_t outlen, char *err,
                       size_t errlen)
{
    size_t dl = strlen(dir);
    bool slash = dl > 0 && dir[dl - 1] == '/';
    if (*rest == '/' && slash)
        rest++;
    int n = snprintf(out, outlen, "%s%s%s%s", dir, rest, slash && !*rest ? "" : "/", base);
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "add: path too long");
        return -1;
    }
    return 0;
}

/* path as the scan of one of the DIRs would spell it, into out: 0, or -1 with err saying why it is refused. */
static int confine(app *a, const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
    struct stat st;
    if (path[0] != '/') {
        snprintf(err, errlen, "add: %s: not an absolute path", path);
        return -1;
    }
    if (!torrent_name(path)) {
        snprintf(err, errlen, "add: %s: not a .torrent file name", path);
        return -1;
    }
    if (lstat(path, &st) != 0) {
        snprintf(err, errlen, "add: %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "add: %s: not a regular file (a symbolic link is not followed)", path);
        return -1;
    }
    char parent[PATH_MAX], real_parent[PATH_MAX], real_dir[PATH_MAX];
    const char *base = strrchr(path, '/') + 1;
    snprintf(parent, sizeof parent, "%.*s", (int)(base - path), path); /* with its trailing '/' */
    if (!realpath(parent, real_parent)) {
        snprintf(err, errlen, "add: %s: %s", path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < a->opt->ndirs; i++) {
        const char *dir = a->opt->dirs[i];
        if (!realpath(dir, real_dir) || stat(real_dir, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        size_t n = strlen(real_dir);
        if (strcmp(real_dir, "/") == 0)
            n = 0;
        if (strncmp(real_parent, real_dir, n) != 0 || (real_parent[n] != '/' && real_parent[n] != '\0'))
            continue;
        if (through_link(parent, real_dir)) {
            snprintf(err, errlen, "add: %s: reached through a symbolic link below %s; the scan would not follow it",
                     path, dir);
            return -1;
        }
        return spell_below(dir, real_parent + n, base, out, outlen, err, errlen);
    }
    snprintf(err, errlen, "add: %s: not below any folder hekate serves", path);
    return -1;
}

static bool refuse_during_rescan(app *a, const char *cmd, hk_jw *w)
{
    if (!a->rs && a->started) /* the first scan counts as a rescan (the loop serves during it) */
        return false;
    char msg[128];
    snprintf(msg, sizeof msg, "%s: a rescan is under way; try again when it is done", cmd);
    hk_ctl_error_reply(w, msg);
    return true;
}

static void cmd_add(app *a, const hk_ctl_request *req, hk_jw *w)
{
    if (refuse_during_rescan(a, "add", w))
        return;
    char path[PATH_MAX], err[HK_CTL_MAX_LINE + 1024], why[PATH_MAX + sizeof err + 16];
    if (confine(a, req->path, path, sizeof path, err, sizeof err) != 0) {
        hk_log(HK_LOG_WARN, "control: %s", err);
        hk_ctl_error_reply(w, err);
        return;
    }
    mi_torrent *mi = NULL;
    if (hk_real_add_torrent_file(a->real, path, &mi, err, sizeof err) != 0) {
        snprintf(why, sizeof why, "add: %s: %s", path, err);
        hk_log(HK_LOG_WARN, "control: %s", why);
        hk_ctl_error_reply(w, why);
        return;
    }
    char hex[41];
    for (size_t i = 0; i < 20; i++)
        snprintf(hex + 2 * i, 3, "%02x", mi->info_hash[i]);
    hk_log(HK_LOG_INFO, "control: added %s (%s)", path, hex);
    hk_jw_raw(w, "{\"ok\":true");
    hk_jw_kstr(w, "added", path);
    hk_jw_kstr(w, "info_hash", hex);
    hk_jw_raw(w, "}\n");
    mi_free(mi);
}

static void cmd_remove(app *a, const hk_ctl_request *req, hk_jw *w)
{
    if (refuse_during_rescan(a, "remove", w))
        return;
    const hk_served_rec *rec = find_hash(a, req->info_hash);
    if (!rec) {
        hk_ctl_error_reply(w, "remove: no such torrent is served");
        return;
    }
    char path[PATH_MAX];
    hk_served_path(rec, path, sizeof path); /* the record goes with it */
    hk_real_forget(a->real, path, NULL);
    hk_jw_raw(w, "{\"ok\":true");
    hk_jw_kstr(w, "removed", path);
    hk_jw_key(w, "info_hash");
    hk_jw_hex(w, req->info_hash, 20);
    hk_jw_raw(w, "}\n");
    hk_log(HK_LOG_INFO, "control: removed %s", path);
}

/* verify H: every mark of the torrent's pieces dropped and a full check queued on the seeder's background pass
 * (core/seeder_vpass.c) at --verify-rate; serving goes on, each piece checked again before it is next sent. */
static void cmd_verify(app *a, const hk_ctl_request *req, hk_jw *w)
{
    hk_seeder *s = hk_real_seeder(a->real);
    hk_torrent_stats ts;
    if (!hk_seeder_torrent_stats(s, req->info_hash, &ts)) {
        hk_ctl_error_reply(w, "verify: no such torrent is served");
        return;
    }
    if (a->opt->verify == HK_VERIFY_OFF) {
        hk_ctl_error_reply(w, "verify: hekate runs with --verify=off (nothing is checked)");
        return;
    }
    if (ts.failed) {
        hk_ctl_error_reply(w, "verify: the torrent's storage failed: nothing of it is served or checked");
        return;
    }
    if (!hk_seeder_verify_torrent(s, req->info_hash)) {
        hk_ctl_error_reply(w, "verify: out of memory (its pieces are checked again lazily)");
        return;
    }
    hk_verify_progress p;
    hk_seeder_verify_progress(s, &p);
    hk_jw_raw(w, "{\"ok\":true");
    hk_jw_kstr(w, "verify", "started");
    hk_jw_key(w, "info_hash");
    hk_jw_hex(w, req->info_hash, 20);
    hk_jw_ku64(w, "bytes", ts.total_length);
    hk_jw_ku64(w, "rate", hk_seeder_config(s)->verify_rate);
    hk_jw_ku64(w, "queued_torrents", p.torrents_total - p.torrents_done);
    hk_jw_raw(w, "}\n");
    char hex[41];
    for (size_t i = 0; i < 20; i++)
        snprintf(hex + 2 * i, 3, "%02x", req->info_hash[i]);
    hk_log(HK_LOG_INFO, "control: verify %s: a full check started", hex);
}

static void cmd_rescan(app *a, hk_jw *w)
{
    bool now = rescans_request(a, "rescan asked on the control socket");
    hk_jw_raw(w, "{\"ok\":true");
    hk_jw_kstr(w, "rescan", now ? "started" : "queued");
    hk_jw_ku64(w, "rescans_done", a->rescans_done);
    hk_jw_raw(w, "}\n");
}

/* The config file read again, as a SIGHUP does (config_reload.h); its errors are in hekate's log. */
static void cmd_reload_config(app *a, hk_jw *w)
{
    if (!a->opt->config_path) {
        hk_ctl_error_reply(w, "reload-config: hekate was started without a config file (-c FILE)");
        return;
    }
    int rc = app_reload_config(a);
    if (rc < 0) {
        hk_ctl_error_reply(w, "reload-config: the config file has an error (see hekate's log); nothing changed");
        return;
    }
    hk_jw_raw(w, "{\"ok\":true");
    hk_jw_kstr(w, "reload", rc == 1 ? "applied, folders changed: rescan started" : "applied");
    hk_jw_raw(w, "}\n");
}

static void handle(void *ud, const hk_ctl_request *req, hk_jw *w)
{
    app *a = ud;
    switch (req->cmd) {
    case HK_CTL_STATUS: cmd_status(a, w); return;
    case HK_CTL_TORRENTS: cmd_torrents(a, req, w); return;
    case HK_CTL_TORRENT: cmd_torrent(a, req, w); return;
    case HK_CTL_PEERS: cmd_peers(a, w); return;
    case HK_CTL_ADD: cmd_add(a, req, w); return;
    case HK_CTL_REMOVE: cmd_remove(a, req, w); return;
    case HK_CTL_RESCAN: cmd_rescan(a, w); return;
    case HK_CTL_VERIFY: cmd_verify(a, req, w); return;
    case HK_CTL_RELOAD_CONFIG: cmd_reload_config(a, w); return;
    }
    hk_ctl_error_reply(w, "unknown command");
}

int control_cmds_open(app *a, const char *prog)
{
    ev_now_update(a->loop);
    a->started_at = ev_now(a->loop);
    if (!a->opt->control_path)
        return 0;
    char err[1024];
    a->control = hk_control_open(a->loop, a->opt->control_path, handle, a, err, sizeof err);
    if (!a->control) {
        fprintf(stderr, "%s: cannot open the control socket: %s\n", prog, err);
        return -1;
    }
    hk_log(HK_LOG_INFO, "control socket: %s", a->opt->control_path);
    return 0;
}

void control_cmds_close(app *a)
{
    hk_control_close(a->control);
    a->control = NULL;
}
