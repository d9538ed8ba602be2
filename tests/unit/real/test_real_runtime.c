/* Tests of backend-real/lib/real_runtime: the libev runtime wired to the real seeder, driven by a raw TCP peer on
 * 127.0.0.1. A block goes out byte for byte; the handshake timeout fires on time (never early); a data file
 * truncated while served fails its torrent (peers dropped, new ones refused) without killing the process; loading
 * .torrent files reports each kind of rejection; freeing the runtime closes live connections.
 * Hot add and remove (rescan.h over real_runtime): a rescan adds a new .torrent (served), leaves unchanged ones alone
 * (a connected peer keeps downloading), removes a deleted one (its peer disconnected while sends of it were still
 * queued and pinned: the store holds no pin and no storage for it afterwards, and new handshakes for it are refused),
 * replaces a .torrent that holds another torrent, re-adds a failed torrent once its data is valid again (and says
 * "still failed" quietly the second time), resolves a duplicate whose original disappeared in the same rescan,
 * keeps a torrent the walk cannot reach but whose file is still there, serves nothing (and keeps listening) when
 * every torrent is gone, runs a slice at a time while a peer is being served, hands added and removed torrents to
 * the announcer, and removes a torrent safely right after the seeder asked for page-ins of it (their completions
 * come back for a torrent that is gone).
 * A .torrent rewritten in place at the same size (issue 14; its metadata is served from the file itself, fetched here
 * by a raw ut_metadata peer): whether it was mapped or not, the next metadata send refuses the changed bytes, and
 * without a request the periodic check finds it; either way one log line names the path and the file is read again
 * at once (the old info-hash refused, the new one served with the file's new bytes). A .torrent only touched goes on
 * being served undisturbed. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "infohash.h"
#include "log.h"
#include "real_runtime.h"
#include "rescan.h"
#include "scan.h"

#define DATA_LEN 100000u
#define PIECE_LEN 16384u
#define PIECES ((DATA_LEN + PIECE_LEN - 1) / PIECE_LEN)

static char dir[64];
static uint8_t data[DATA_LEN];
static uint8_t info_hash[20];
static char torrent_path[128], data_path[128];

/* ---- files ---- */

static void write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static size_t make_torrent_announcing(uint8_t *out, size_t cap, const char *name, const uint8_t *content,
                                      size_t len, uint8_t ih[20], const char *announce);

/* A single-file torrent for `name` of `len` bytes of `content`; returns its length in out. */
static size_t make_torrent(uint8_t *out, size_t cap, const char *name, const uint8_t *content, size_t len,
                           uint8_t ih[20])
{
    return make_torrent_announcing(out, cap, name, content, len, ih, NULL);
}

/* The same with an announce URL (NULL: none) before the info dictionary. */
static size_t make_torrent_announcing(uint8_t *out, size_t cap, const char *name, const uint8_t *content,
                                      size_t len, uint8_t ih[20], const char *announce)
{
    size_t pieces = (len + PIECE_LEN - 1) / PIECE_LEN;
    uint8_t *info = malloc(256 + 20 * pieces);
    int n = snprintf((char *)info, 256, "d6:lengthi%zue4:name%zu:%s12:piece lengthi%ue6:pieces%zu:", len,
                     strlen(name), name, PIECE_LEN, 20 * pieces);
    size_t at = (size_t)n;
    for (size_t i = 0; i < pieces; i++) {
        size_t plen = i + 1 < pieces ? PIECE_LEN : len - i * PIECE_LEN;
        cr_assert(ih_sha1(content + i * PIECE_LEN, plen, info + at));
        at += 20;
    }
    info[at++] = 'e';
    cr_assert(ih_sha1(info, at, ih));
    char head[256];
    int hl = announce ? snprintf(head, sizeof head, "d8:announce%zu:%s4:info", strlen(announce), announce)
                      : snprintf(head, sizeof head, "d4:info");
    cr_assert_leq((size_t)hl + at + 1, cap);
    memcpy(out, head, (size_t)hl);
    memcpy(out + hl, info, at);
    out[(size_t)hl + at] = 'e';
    free(info);
    return (size_t)hl + at + 1;
}

static void make_dir(void)
{
    hk_log_set_level(HK_LOG_WARN);
    snprintf(dir, sizeof dir, "/tmp/hekate-rt-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < DATA_LEN; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data[i] = (uint8_t)x;
    }
    snprintf(data_path, sizeof data_path, "%s/data.bin", dir);
    snprintf(torrent_path, sizeof torrent_path, "%s/data.torrent", dir);
    write_file(data_path, data, DATA_LEN);
    uint8_t t[4096];
    size_t tl = make_torrent(t, sizeof t, "data.bin", data, DATA_LEN, info_hash);
    write_file(torrent_path, t, tl);
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (strncmp(dir, "/tmp/hekate-rt-", 15) == 0)
        cr_assert_eq(system(cmd), 0);
}

TestSuite(real_runtime, .init = make_dir, .fini = remove_dir, .timeout = 60);

/* ---- the runtime ---- */

typedef struct rig {
    struct ev_loop *loop;
    hk_real *r;
    uint16_t port;
} rig;

static bool g_verify_off; /* the next rig without piece verification (--verify=off) */

static void rig_start_opts(rig *g, double handshake_timeout, double check_interval, bool trackers)
{
    g->loop = ev_loop_new(EVFLAG_AUTO);
    hk_real_opts o;
    hk_real_opts_default(&o);
    o.verify_off = g_verify_off;
    o.listener.port = 0;
    o.listener.bind_addr = "127.0.0.1";
    if (handshake_timeout > 0)
        o.cfg.handshake_timeout = (hk_time)(handshake_timeout * 1e9);
    o.check_interval = check_interval;
    o.trackers = trackers;
    char err[512] = "";
    g->r = hk_real_new(g->loop, &o, err, sizeof err);
    cr_assert_not_null(g->r, "%s", err);
    g->port = hk_listener_port(hk_real_listener(g->r));
    cr_assert_neq(g->port, 0);
}

static void rig_start(rig *g, double handshake_timeout, double check_interval)
{
    rig_start_opts(g, handshake_timeout, check_interval, false);
    char err[512] = "";
    mi_torrent *mi = NULL;
    cr_assert_eq(hk_real_add_torrent_file(g->r, torrent_path, &mi, err, sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(mi->info_hash, info_hash, 20), 0);
    mi_free(mi);
    cr_assert_eq(hk_real_torrents(g->r), 1);
}

static void rig_stop(rig *g)
{
    hk_real_free(g->r);
    ev_loop_destroy(g->loop);
}

/* ---- a raw peer ---- */

typedef struct peer {
    int fd;
    uint8_t buf[1 << 18];
    size_t len;
    bool eof;
} peer;

static void peer_connect(peer *p, uint16_t port)
{
    memset(p, 0, sizeof *p);
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(p->fd, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(connect(p->fd, (struct sockaddr *)&a, sizeof a), 0);
}

static void peer_send(peer *p, const void *b, size_t n)
{
    cr_assert_eq(send(p->fd, b, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void peer_handshake_for(peer *p, const uint8_t ih[20])
{
    uint8_t hs[68] = { 19 };
    memcpy(hs + 1, "BitTorrent protocol", 19);
    memcpy(hs + 28, ih, 20);
    memcpy(hs + 48, "-TT0001-testpeer0001", 20);
    peer_send(p, hs, sizeof hs);
}

static void peer_handshake(peer *p)
{
    peer_handshake_for(p, info_hash);
}

static void peer_msg(peer *p, uint8_t id, const uint32_t *args, int nargs)
{
    uint8_t m[17];
    uint32_t len = 1 + 4 * (uint32_t)nargs;
    uint32_t be = htonl(len);
    memcpy(m, &be, 4);
    m[4] = id;
    for (int i = 0; i < nargs; i++) {
        be = htonl(args[i]);
        memcpy(m + 5 + 4 * i, &be, 4);
    }
    peer_send(p, m, 4 + len);
}

static void peer_read(peer *p)
{
    for (;;) {
        if (p->len == sizeof p->buf)
            return;
        ssize_t r = recv(p->fd, p->buf + p->len, sizeof p->buf - p->len, MSG_DONTWAIT);
        if (r > 0) {
            p->len += (size_t)r;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            p->eof = true;
        return;
    }
}

/* Finds the first message with this id after the 68-byte handshake; returns its payload offset or 0. */
static size_t find_msg(const peer *p, uint8_t id, size_t min_payload)
{
    size_t at = 68;
    while (at + 4 <= p->len) {
        uint32_t be;
        memcpy(&be, p->buf + at, 4);
        uint32_t len = ntohl(be);
        if (at + 4 + len > p->len)
            return 0;
        if (len >= 1 && p->buf[at + 4] == id && len - 1 >= min_payload)
            return at + 5;
        at += 4 + len;
    }
    return 0;
}

static void tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

typedef bool (*cond_fn)(peer *p, void *arg);

/* Runs the loop (and reads the peer) until cond holds or `seconds` pass. Returns the seconds it took. */
static double pump(rig *g, peer *p, cond_fn cond, void *arg, double seconds)
{
    ev_timer t;
    ev_timer_init(&t, tick, 0.002, 0.002);
    ev_timer_start(g->loop, &t);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    double el = 0;
    for (;;) {
        ev_run(g->loop, EVRUN_ONCE);
        if (p)
            peer_read(p);
        clock_gettime(CLOCK_MONOTONIC, &b);
        el = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
        if ((cond && cond(p, arg)) || el > seconds)
            break;
    }
    ev_timer_stop(g->loop, &t);
    return el;
}

static bool has_handshake(peer *p, void *arg)
{
    (void)arg;
    return p->len >= 68 || p->eof;
}

static bool has_msg(peer *p, void *arg)
{
    const uint32_t *want = arg; /* id, min payload */
    return find_msg(p, (uint8_t)want[0], want[1]) != 0 || p->eof;
}

static bool is_eof(peer *p, void *arg)
{
    (void)arg;
    return p->eof;
}

/* Handshake + interested, up to the unchoke. */
static void peer_get_unchoked_for(rig *g, peer *p, const uint8_t ih[20])
{
    peer_connect(p, g->port);
    peer_handshake_for(p, ih);
    pump(g, p, has_handshake, NULL, 5);
    cr_assert_geq(p->len, 68, "no handshake from the seeder");
    cr_assert_eq(memcmp(p->buf + 28, ih, 20), 0);
    peer_msg(p, 2, NULL, 0); /* interested */
    uint32_t want[2] = { 1, 0 }; /* unchoke */
    pump(g, p, has_msg, want, 5);
    cr_assert_neq(find_msg(p, 1, 0), 0, "not unchoked");
}

static void peer_get_unchoked(rig *g, peer *p)
{
    peer_get_unchoked_for(g, p, info_hash);
}

/* A rig serving the fixture (storage checked every check_interval seconds) and a peer unchoked on it. */
static void rig_with_peer(rig *g, double check_interval, peer *p)
{
    rig_start(g, 0, check_interval);
    peer_get_unchoked(g, p);
}

static void request_and_check_in(rig *g, peer *p, const uint8_t *content, uint32_t index, uint32_t begin,
                                 uint32_t length);

static void request_and_check(rig *g, peer *p, uint32_t index, uint32_t begin, uint32_t length)
{
    request_and_check_in(g, p, data, index, begin, length);
}

static void request_and_check_in(rig *g, peer *p, const uint8_t *content, uint32_t index, uint32_t begin,
                                 uint32_t length)
{
    uint32_t args[3] = { index, begin, length };
    p->len = 68; /* forget earlier messages (all were whole: the handshake and small ones) */
    peer_msg(p, 6, args, 3);
    uint32_t want[2] = { 7, 8 + length };
    pump(g, p, has_msg, want, 5);
    size_t at = find_msg(p, 7, 8 + length);
    cr_assert_neq(at, 0, "no piece message for %u/%u/%u", index, begin, length);
    uint32_t be;
    memcpy(&be, p->buf + at - 5, 4);
    cr_assert_eq(ntohl(be), 9 + length);
    memcpy(&be, p->buf + at, 4);
    cr_assert_eq(ntohl(be), index);
    memcpy(&be, p->buf + at + 4, 4);
    cr_assert_eq(ntohl(be), begin);
    cr_assert_eq(memcmp(p->buf + at + 8, content + (size_t)index * PIECE_LEN + begin, length), 0,
                 "block bytes differ");
}

/* ---- tests ---- */

Test(real_runtime, serves_blocks_byte_for_byte)
{
    rig g;
    peer p;
    rig_with_peer(&g, 1.0, &p);
    request_and_check(&g, &p, 1, 0, 16384);
    request_and_check(&g, &p, 0, 100, 1000);
    request_and_check(&g, &p, PIECES - 1, 0, DATA_LEN - (PIECES - 1) * PIECE_LEN); /* the short last piece */
    const hk_conn_hub *hub = hk_real_hub(g.r);
    hk_conn_stats cs;
    hk_conn_hub_stats(hub, &cs);
    cr_assert_eq(cs.live, 1);
    cr_assert_gt(cs.bytes_written, 16384 + 1000);
    close(p.fd);
    pump(&g, NULL, NULL, NULL, 0.05);
    hk_conn_hub_stats(hub, &cs);
    cr_assert_eq(cs.live, 0, "the closed peer is gone");
    rig_stop(&g);
}

Test(real_runtime, handshake_timeout_fires_on_time_not_early)
{
    rig g;
    rig_start(&g, 0.3, 1.0);
    peer p;
    peer_connect(&p, g.port);
    double t = pump(&g, &p, is_eof, NULL, 5);
    cr_assert(p.eof, "a silent peer must be closed");
    cr_assert_geq(t, 0.3, "closed after %.3f s: before the 0.3 s handshake timeout", t);
    cr_assert_lt(t, 1.0, "closed after %.3f s: long after the 0.3 s timeout", t);
    close(p.fd);
    rig_stop(&g);
}

Test(real_runtime, truncated_data_fails_the_torrent_not_the_process)
{
    rig g;
    peer p;
    rig_with_peer(&g, 0.1, &p);
    request_and_check(&g, &p, 2, 0, 16384); /* maps the file */
    cr_assert_eq(truncate(data_path, 50000), 0);
    double t = pump(&g, &p, is_eof, NULL, 3);
    cr_assert(p.eof, "the peer of a failed torrent is disconnected");
    cr_assert_lt(t, 1.0, "the periodic check (0.1 s) should notice within a second, took %.2f s", t);
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(hk_real_seeder(g.r), info_hash, &ts));
    cr_assert(ts.failed, "the seeder knows the torrent failed");
    const char *why = NULL;
    cr_assert(hk_store_failed(hk_real_store(g.r), ts.storage, &why));
    cr_assert(why && strstr(why, "data.bin"), "%s", why ? why : "(null)");
    close(p.fd);

    /* New peers for that torrent are refused; the process keeps serving (the listener still accepts). */
    peer q;
    peer_connect(&q, g.port);
    peer_handshake(&q);
    pump(&g, &q, is_eof, NULL, 3);
    cr_assert(q.eof, "a handshake for a failed torrent is refused");
    close(q.fd);
    rig_stop(&g);
}

Test(real_runtime, freeing_closes_live_connections)
{
    rig g;
    peer p;
    rig_with_peer(&g, 1.0, &p);
    rig_stop(&g);
    uint8_t b[4096];
    ssize_t r;
    int spins = 0;
    while ((r = recv(p.fd, b, sizeof b, 0)) > 0 && spins++ < 1000) {
    }
    cr_assert_eq(r, 0, "the peer sees the connection end");
    close(p.fd);
}

static void expect_reject(hk_real *r, const char *path, const char *want)
{
    char err[512] = "";
    mi_torrent *mi = (mi_torrent *)1;
    cr_assert_eq(hk_real_add_torrent_file(r, path, &mi, err, sizeof err), -1, "%s was accepted", path);
    cr_assert(strstr(err, want), "%s: '%s' should contain '%s'", path, err, want);
    cr_assert_eq(mi, (mi_torrent *)1, "no description handed out on failure");
}

Test(real_runtime, rejections_say_why)
{
    rig g;
    rig_start(&g, 0, 1.0);
    char p[256];

    expect_reject(g.r, torrent_path, "duplicate");

    snprintf(p, sizeof p, "%s/garbage.torrent", dir);
    write_file(p, "d4:infoi3ee", 11);
    expect_reject(g.r, p, "invalid torrent: ");

    uint8_t other[DATA_LEN];
    memcpy(other, data, sizeof other);
    other[0] ^= 1;
    uint8_t t[4096], ih[20];
    size_t tl = make_torrent(t, sizeof t, "missing.bin", other, DATA_LEN, ih);
    snprintf(p, sizeof p, "%s/missing.torrent", dir);
    write_file(p, t, tl);
    expect_reject(g.r, p, "data: ");
    expect_reject(g.r, p, "missing.bin");

    snprintf(p, sizeof p, "%s/link.torrent", dir);
    cr_assert_eq(symlink(torrent_path, p), 0);
    expect_reject(g.r, p, "symbolic link");

    snprintf(p, sizeof p, "%s/folder.torrent", dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    expect_reject(g.r, p, "not a regular file");

    snprintf(p, sizeof p, "%s/huge.torrent", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)HK_MAX_TORRENT_FILE + 1), 0);
    close(fd);
    expect_reject(g.r, p, "file too large");

    snprintf(p, sizeof p, "%s/absent.torrent", dir);
    expect_reject(g.r, p, "No such file");

    cr_assert_eq(hk_real_torrents(g.r), 1, "rejections leave nothing behind");
    rig_stop(&g);
}

Test(real_runtime, list_mode_has_no_listener)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_real_opts o;
    hk_real_opts_default(&o);
    o.listen = false;
    char err[256] = "";
    hk_real *r = hk_real_new(loop, &o, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    cr_assert_null(hk_real_listener(r));
    cr_assert_eq(hk_real_add_torrent_file(r, torrent_path, NULL, err, sizeof err), 0, "%s", err);
    hk_real_free(r);
    ev_loop_destroy(loop);
}

Test(real_runtime, a_port_in_use_is_an_error)
{
    rig g;
    rig_start(&g, 0, 1.0);
    hk_real_opts o;
    hk_real_opts_default(&o);
    o.listener.port = g.port;
    o.listener.bind_addr = "127.0.0.1";
    char err[256] = "";
    cr_assert_null(hk_real_new(g.loop, &o, err, sizeof err));
    cr_assert(strstr(err, "Address already in use"), "%s", err);
    rig_stop(&g);
}

/* ---- hot add and remove ---- */

#define MAX_EVENTS 64

typedef struct events {
    size_t n;
    hk_rescan_kind kind[MAX_EVENTS];
    char path[MAX_EVENTS][256];
    char why[MAX_EVENTS][512];
    bool repeated[MAX_EVENTS];
    uint8_t ih[MAX_EVENTS][20];
    size_t progress;
} events;

static void on_rescan_event(void *arg, const hk_rescan_event *ev)
{
    events *e = arg;
    cr_assert_lt(e->n, MAX_EVENTS);
    e->kind[e->n] = ev->kind;
    snprintf(e->path[e->n], sizeof e->path[e->n], "%s", ev->path);
    snprintf(e->why[e->n], sizeof e->why[e->n], "%s", ev->why ? ev->why : "");
    e->repeated[e->n] = ev->repeated;
    if (ev->info_hash)
        memcpy(e->ih[e->n], ev->info_hash, 20);
    if (ev->kind == HK_RESCAN_ADDED || ev->kind == HK_RESCAN_READDED) {
        cr_assert_not_null(ev->mi, "an added torrent comes with its description");
        cr_assert_eq(memcmp(ev->mi->info_hash, ev->info_hash, 20), 0);
    }
    e->n++;
}

static void on_rescan_progress(void *arg, const hk_rescan_stats *st)
{
    events *e = arg;
    e->progress++;
    cr_assert_eq(st->files, e->progress, "progress every file: %zu files at call %zu", st->files, e->progress);
}

static hk_rescan_stats rescan(rig *g, events *e)
{
    memset(e, 0, sizeof *e);
    const char *dirs[] = { dir };
    hk_rescan_cb cb = { .on_event = on_rescan_event, .on_progress = on_rescan_progress, .arg = e };
    hk_rescan_stats st;
    cr_assert_eq(hk_rescan_run(g->r, dirs, 1, &cb, 1, &st), 0);
    cr_assert(st.done);
    cr_assert_eq(st.served, hk_real_torrents(g->r));
    return st;
}

/* A rig serving the fixture after a first rescan, and a peer unchoked on it. */
static void rig_serving(rig *g, events *e, peer *p)
{
    rig_start_opts(g, 0, 1.0, false);
    rescan(g, e);
    peer_get_unchoked(g, p);
}

/* A new peer is unchoked on the fixture and gets one block of it intact. */
static void check_served_to_new_peer(rig *g, uint32_t index, uint32_t begin, uint32_t length)
{
    peer q;
    peer_get_unchoked(g, &q);
    request_and_check(g, &q, index, begin, length);
    close(q.fd);
}

/* The event of this kind for the path ending in `tail`, or NULL. */
static size_t find_event(const events *e, hk_rescan_kind kind, const char *tail)
{
    for (size_t i = 0; i < e->n; i++) {
        size_t pl = strlen(e->path[i]), tl = strlen(tail);
        if (e->kind[i] == kind && pl >= tl && strcmp(e->path[i] + pl - tl, tail) == 0)
            return i + 1;
    }
    return 0;
}

/* Pseudo-random content, different per seed. */
static uint8_t *make_content(size_t len, uint64_t seed)
{
    uint8_t *c = malloc(len);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c[i] = (uint8_t)x;
    }
    return c;
}

/* <dir>/<name> holding content, and <dir>/<tname> its torrent (announcing `announce` if not NULL). */
static void add_files(const char *name, const char *tname, const uint8_t *content, size_t len, uint8_t ih[20],
                      const char *announce)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    write_file(p, content, len);
    size_t cap = 512 + 20 * (len / PIECE_LEN + 1);
    uint8_t *t = malloc(cap);
    size_t tl = make_torrent_announcing(t, cap, name, content, len, ih, announce);
    snprintf(p, sizeof p, "%s/%s", dir, tname);
    write_file(p, t, tl);
    free(t);
}

static const char *dir_path_of(const char *name)
{
    static char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static void remove_file(const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    cr_assert_eq(unlink(p), 0, "%s: %s", p, strerror(errno));
}

/* Connects, sends a handshake for ih and checks the seeder closes without answering it. */
static void expect_handshake_refused(rig *g, const uint8_t ih[20])
{
    peer *q = malloc(sizeof *q);
    peer_connect(q, g->port);
    peer_handshake_for(q, ih);
    pump(g, q, is_eof, NULL, 3);
    cr_assert(q->eof, "a handshake for a torrent not served is refused");
    cr_assert_lt(q->len, 68, "no handshake comes back");
    close(q->fd);
    free(q);
}

/* Runs the loop, discarding what arrives, until the peer's connection ends (EOF or reset). */
static bool drain_until_closed(rig *g, int fd, double seconds)
{
    ev_timer t;
    ev_timer_init(&t, tick, 0.002, 0.002);
    ev_timer_start(g->loop, &t);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    bool closed = false;
    static uint8_t sink[1 << 16];
    while (!closed) {
        ev_run(g->loop, EVRUN_ONCE);
        for (;;) {
            ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
            if (n > 0)
                continue;
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                closed = true;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        if ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9 > seconds)
            break;
    }
    ev_timer_stop(g->loop, &t);
    return closed;
}

Test(real_runtime, rescan_adds_new_torrents_and_leaves_unchanged_ones_alone)
{
    rig g;
    rig_start_opts(&g, 0, 1.0, false);
    cr_assert_eq(hk_real_torrents(g.r), 0);
    events e;
    hk_rescan_stats st = rescan(&g, &e);
    cr_assert_eq(st.added, 1);
    cr_assert_eq(st.files, 1);
    cr_assert_eq(e.progress, 1);
    cr_assert(find_event(&e, HK_RESCAN_ADDED, "/data.torrent"));
    cr_assert_eq(memcmp(e.ih[0], info_hash, 20), 0);
    peer p;
    peer_get_unchoked(&g, &p);
    request_and_check(&g, &p, 1, 0, 16384);

    /* A second torrent appears: added; the first is untouched, its peer stays connected and keeps downloading. */
    uint8_t *other = make_content(50000, 7);
    uint8_t ih2[20];
    add_files("other.bin", "other.torrent", other, 50000, ih2, NULL);
    st = rescan(&g, &e);
    cr_assert_eq(st.added, 1, "%zu added", st.added);
    cr_assert_eq(st.unchanged, 1);
    cr_assert_eq(st.removed, 0);
    cr_assert_eq(st.served, 2);
    cr_assert_eq(e.n, 1, "one line per change: %zu events", e.n);
    cr_assert(find_event(&e, HK_RESCAN_ADDED, "/other.torrent"));
    peer_read(&p);
    cr_assert(!p.eof, "the unchanged torrent's peer is still connected");
    request_and_check(&g, &p, 2, 0, 16384);
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(hk_real_seeder(g.r), info_hash, &ts));
    cr_assert_eq(ts.peers, 1);

    peer q;
    peer_get_unchoked_for(&g, &q, ih2);
    request_and_check_in(&g, &q, other, 3, 0, 50000 - 3 * PIECE_LEN);

    /* A .torrent merely touched (same content): read again, still unchanged, nothing logged. */
    char tp[256];
    snprintf(tp, sizeof tp, "%s/other.torrent", dir);
    cr_assert_eq(utimensat(AT_FDCWD, tp, NULL, 0), 0);
    st = rescan(&g, &e);
    cr_assert_eq(st.unchanged, 2);
    cr_assert_eq(e.n, 0);
    peer_read(&q);
    cr_assert(!q.eof);
    close(p.fd);
    close(q.fd);
    free(other);
    rig_stop(&g);
}

Test(real_runtime, removal_disconnects_peers_with_pinned_sends_and_releases_the_storage)
{
    rig g;
    rig_start_opts(&g, 0, 1.0, false);
    const size_t big_len = 12u << 20; /* more than the kernel's socket buffers take (tcp_wmem up to 4 MiB) */
    uint8_t *big = make_content(big_len, 11);
    uint8_t ihb[20];
    add_files("big.bin", "big.torrent", big, big_len, ihb, NULL);
    events e;
    hk_rescan_stats st = rescan(&g, &e);
    cr_assert_eq(st.added, 2);

    /* A peer that asks for everything and reads nothing, with a tiny receive buffer: once the kernel's buffers
     * are full, the connection's queue holds extents pinned in the store. */
    peer *p = malloc(sizeof *p);
    memset(p, 0, sizeof *p);
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    cr_assert_eq(setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(g.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(connect(p->fd, (struct sockaddr *)&a, sizeof a), 0);
    peer_handshake_for(p, ihb);
    pump(&g, p, has_handshake, NULL, 5);
    cr_assert_geq(p->len, 68);
    peer_msg(p, 2, NULL, 0);
    uint32_t want[2] = { 1, 0 };
    pump(&g, p, has_msg, want, 5);
    cr_assert_neq(find_msg(p, 1, 0), 0, "not unchoked");
    hk_store_stats ss;
    hk_conn_stats cs;
    uint32_t next = 0, pieces = (uint32_t)(big_len / PIECE_LEN);
    for (int i = 0; i < 300 && next < pieces; i++) { /* batches within reqq, until the socket is full */
        for (uint32_t k = 0; k < 128 && next < pieces; k++, next++) {
            uint32_t args[3] = { next, 0, PIECE_LEN };
            peer_msg(p, 6, args, 3);
        }
        pump(&g, NULL, NULL, NULL, 0.02);
        hk_conn_hub_stats(hk_real_hub(g.r), &cs);
        if (cs.write_blocked > 0 || cs.short_writes > 0)
            break;
    }
    pump(&g, NULL, NULL, NULL, 0.1);
    hk_store_stats_get(hk_real_store(g.r), &ss);
    cr_assert_gt(ss.pinned_files, 0, "sends of the big torrent are queued and pin its file");
    cr_assert_eq(ss.storages, 2);

    /* Its .torrent goes; the rescan removes it: the peer is closed at once, which drops its queue and unpins. */
    remove_file("big.torrent");
    st = rescan(&g, &e);
    cr_assert_eq(st.removed, 1);
    size_t k = find_event(&e, HK_RESCAN_REMOVED, "/big.torrent");
    cr_assert(k, "a removal event");
    cr_assert_eq(memcmp(e.ih[k - 1], ihb, 20), 0);
    cr_assert(strstr(e.why[k - 1], "deleted"), "%s", e.why[k - 1]);
    /* The peer's queued sends are dropped at once; a disk job already running for the storage (a lazy check hashing
     * one of its pieces from the pinned mapping, on a loaded machine) keeps its pin until it ends: wait for it. */
    hk_store_stats_get(hk_real_store(g.r), &ss);
    for (int i = 0; i < 100 && (ss.pinned_files > 0 || ss.storages != 1); i++) {
        pump(&g, NULL, NULL, NULL, 0.05);
        hk_store_stats_get(hk_real_store(g.r), &ss);
    }
    cr_assert_eq(ss.pinned_files, 0, "no send pins the removed storage");
    cr_assert_eq(ss.storages, 1, "the storage is released");
    cr_assert_eq(ss.open_files, 0, "its file is unmapped and closed");
    hk_torrent_stats ts;
    cr_assert(!hk_seeder_torrent_stats(hk_real_seeder(g.r), ihb, &ts), "the seeder forgot it");
    cr_assert(drain_until_closed(&g, p->fd, 5), "the removed torrent's peer is disconnected");
    close(p->fd);
    free(p);
    expect_handshake_refused(&g, ihb);

    /* The other torrent is still served. */
    check_served_to_new_peer(&g, 0, 0, 16384);
    free(big);
    rig_stop(&g);
}

Test(real_runtime, a_torrent_file_holding_another_torrent_replaces_the_old_one)
{
    rig g;
    events e;
    peer p;
    rig_serving(&g, &e, &p);

    /* data.torrent now describes other data (another info-hash) at the same path. */
    uint8_t *other = make_content(30000, 3);
    uint8_t ih2[20];
    add_files("new.bin", "data.torrent", other, 30000, ih2, NULL);
    hk_rescan_stats st = rescan(&g, &e);
    cr_assert_eq(st.removed, 1);
    cr_assert_eq(st.added, 1);
    cr_assert_eq(st.served, 1);
    size_t r = find_event(&e, HK_RESCAN_REMOVED, "/data.torrent");
    size_t a = find_event(&e, HK_RESCAN_ADDED, "/data.torrent");
    cr_assert(r && a && r < a, "removed, then added");
    cr_assert_eq(memcmp(e.ih[r - 1], info_hash, 20), 0);
    cr_assert_eq(memcmp(e.ih[a - 1], ih2, 20), 0);
    cr_assert(strstr(e.why[r - 1], "another torrent"), "%s", e.why[r - 1]);
    pump(&g, &p, is_eof, NULL, 3);
    cr_assert(p.eof, "the old torrent's peer is disconnected");
    close(p.fd);
    expect_handshake_refused(&g, info_hash);
    peer q;
    peer_get_unchoked_for(&g, &q, ih2);
    request_and_check_in(&g, &q, other, 1, 0, 30000 - PIECE_LEN);
    close(q.fd);

    /* Then garbage: removed, rejected; the rejection repeats quietly. */
    write_file(torrent_path, "d4:infoi3ee", 11);
    st = rescan(&g, &e);
    cr_assert_eq(st.removed, 1);
    cr_assert_eq(st.served, 0);
    r = find_event(&e, HK_RESCAN_REMOVED, "/data.torrent");
    size_t j = find_event(&e, HK_RESCAN_REJECTED, "/data.torrent");
    cr_assert(r && j);
    cr_assert(strstr(e.why[j - 1], "invalid torrent"), "%s", e.why[j - 1]);
    cr_assert(!e.repeated[j - 1]);
    st = rescan(&g, &e);
    j = find_event(&e, HK_RESCAN_REJECTED, "/data.torrent");
    cr_assert(j && e.repeated[j - 1], "the same rejection again is marked repeated");
    cr_assert_eq(st.failed, 1);
    free(other);
    rig_stop(&g);
}

Test(real_runtime, a_failed_torrent_is_added_again_once_its_data_is_valid)
{
    rig g;
    rig_start_opts(&g, 0, 0.1, false);
    events e;
    rescan(&g, &e);
    peer p;
    peer_get_unchoked(&g, &p);
    request_and_check(&g, &p, 2, 0, 16384); /* maps the file */
    cr_assert_eq(truncate(data_path, 50000), 0);
    pump(&g, &p, is_eof, NULL, 3);
    cr_assert(p.eof, "the failed torrent's peer is dropped");
    close(p.fd);
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(hk_real_seeder(g.r), info_hash, &ts) && ts.failed);

    /* Still truncated: still failed (said once, then quietly), nothing removed, new peers still refused. */
    hk_rescan_stats st = rescan(&g, &e);
    size_t k = find_event(&e, HK_RESCAN_STILL_FAILED, "/data.torrent");
    cr_assert(k, "still failed");
    cr_assert(strstr(e.why[k - 1], "data.bin"), "%s", e.why[k - 1]);
    cr_assert(!e.repeated[k - 1]);
    cr_assert_eq(st.failed, 1);
    cr_assert_eq(st.removed, 0);
    cr_assert_eq(st.served, 1);
    st = rescan(&g, &e);
    k = find_event(&e, HK_RESCAN_STILL_FAILED, "/data.torrent");
    cr_assert(k && e.repeated[k - 1]);
    expect_handshake_refused(&g, info_hash);

    /* The data is put back: added again, served byte for byte. */
    write_file(data_path, data, DATA_LEN);
    st = rescan(&g, &e);
    k = find_event(&e, HK_RESCAN_READDED, "/data.torrent");
    cr_assert(k, "added again");
    cr_assert(strstr(e.why[k - 1], "valid again"), "%s", e.why[k - 1]);
    cr_assert_eq(st.added, 1);
    cr_assert(hk_seeder_torrent_stats(hk_real_seeder(g.r), info_hash, &ts) && !ts.failed);
    hk_store_stats ss;
    hk_store_stats_get(hk_real_store(g.r), &ss);
    cr_assert_eq(ss.storages, 1, "the failed storage was released");
    peer q;
    peer_get_unchoked(&g, &q);
    request_and_check(&g, &q, 2, 0, 16384);
    request_and_check(&g, &q, PIECES - 1, 0, DATA_LEN - (PIECES - 1) * PIECE_LEN);
    close(q.fd);
    rig_stop(&g);
}

Test(real_runtime, a_duplicate_whose_original_goes_in_the_same_rescan_is_served)
{
    rig g;
    rig_start_opts(&g, 0, 1.0, false);
    /* b-copy.torrent holds the same torrent as data.torrent (same data file beside it). */
    char copy[256];
    snprintf(copy, sizeof copy, "%s/b-copy.torrent", dir);
    size_t len = 0;
    char err[256];
    uint8_t *t = hk_read_file(torrent_path, 1 << 20, &len, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    write_file(copy, t, len);
    free(t);
    events e;
    hk_rescan_stats st = rescan(&g, &e);
    cr_assert_eq(st.added, 1);
    cr_assert(find_event(&e, HK_RESCAN_ADDED, "/b-copy.torrent"), "sorted order: b-copy first");
    size_t k = find_event(&e, HK_RESCAN_REJECTED, "/data.torrent");
    cr_assert(k);
    cr_assert(strstr(e.why[k - 1], "duplicate") && strstr(e.why[k - 1], "b-copy.torrent"), "%s", e.why[k - 1]);

    /* The original goes: the copy is served from then on, in this one rescan. */
    remove_file("b-copy.torrent");
    st = rescan(&g, &e);
    cr_assert(find_event(&e, HK_RESCAN_REMOVED, "/b-copy.torrent"));
    cr_assert(find_event(&e, HK_RESCAN_ADDED, "/data.torrent"), "the deferred duplicate is added after the removal");
    cr_assert_eq(st.served, 1);
    peer p;
    peer_get_unchoked(&g, &p);
    request_and_check(&g, &p, 0, 0, 16384);
    close(p.fd);
    rig_stop(&g);
}

Test(real_runtime, a_torrent_the_walk_cannot_reach_is_kept_and_a_gone_folder_is_emptied)
{
    rig g;
    rig_start_opts(&g, 0, 1.0, false);
    /* Served from below the walk's depth limit (added directly): the walk never reaches it, the file is there. */
    char deep[1024];
    int n = snprintf(deep, sizeof deep, "%s", dir);
    for (int i = 0; i <= HK_SCAN_MAX_DEPTH; i++) {
        n += snprintf(deep + n, sizeof deep - (size_t)n, "/d");
        cr_assert_eq(mkdir(deep, 0755), 0);
    }
    uint8_t *c = make_content(20000, 5);
    char p[1100];
    snprintf(p, sizeof p, "%s/deep.bin", deep);
    write_file(p, c, 20000);
    uint8_t t[1024], ih[20];
    size_t tl = make_torrent(t, sizeof t, "deep.bin", c, 20000, ih);
    snprintf(p, sizeof p, "%s/deep.torrent", deep);
    write_file(p, t, tl);
    char err[512];
    events e;
    rescan(&g, &e); /* first: the record added below carries mark 1, which comes round again (4 bits, served.h) */
    cr_assert_eq(hk_real_add_torrent_file(g.r, p, NULL, err, sizeof err), 0, "%s", err);

    hk_rescan_stats st = rescan(&g, &e);
    cr_assert_eq(st.kept, 1);
    cr_assert_eq(st.removed, 0);
    cr_assert_eq(st.problems, 1, "the walk says the tree is too deep");
    cr_assert(find_event(&e, HK_RESCAN_KEPT, "/deep.torrent"));
    cr_assert(find_event(&e, HK_RESCAN_PROBLEM, "/d"));
    cr_assert_eq(st.served, 2);
    /* The marks wrap after HK_SERVED_MARK_MAX rescans: the record the walk never visits is never taken for visited
     * (the catalog clears every mark before it hands out 1 again), so it is kept, and reported, every time. */
    for (unsigned i = 0; i < 2 * HK_SERVED_MARK_MAX; i++) {
        st = rescan(&g, &e);
        cr_assert_eq(st.kept, 1, "rescan %u", i);
        cr_assert_eq(st.unchanged, 1, "rescan %u", i);
        cr_assert_eq(st.served, 2, "rescan %u", i);
    }

    /* Every .torrent goes: nothing is served, the runtime keeps listening (and refuses handshakes). */
    remove_file("data.torrent");
    cr_assert_eq(unlink(p), 0);
    st = rescan(&g, &e);
    cr_assert_eq(st.removed, 2);
    cr_assert_eq(st.served, 0);
    cr_assert_eq(hk_real_torrents(g.r), 0);
    expect_handshake_refused(&g, info_hash);
    expect_handshake_refused(&g, ih);
    hk_store_stats ss;
    hk_store_stats_get(hk_real_store(g.r), &ss);
    cr_assert_eq(ss.storages, 0);
    cr_assert_eq(hk_served_count(hk_real_served(g.r)), 0, "no record left");

    /* And a later rescan brings one back. */
    uint8_t again[20];
    add_files("data.bin", "data.torrent", data, DATA_LEN, again, NULL);
    cr_assert_eq(memcmp(again, info_hash, 20), 0);
    st = rescan(&g, &e);
    cr_assert_eq(st.added, 1);
    check_served_to_new_peer(&g, 1, 100, 5000);
    free(c);
    rig_stop(&g);
}

/* Regression (fuzz_catalog): a served torrent whose folder was swapped for a symbolic link was kept by every rescan
 * ("not reached by the scan ... but still there": lstat of its path went through the link and found a file there),
 * its record never removed although the walk never follows the link. */
Test(real_runtime, a_torrent_whose_folder_became_a_link_is_removed)
{
    rig g;
    rig_start_opts(&g, 0, 1.0, false);
    char p[512], q[512];
    uint8_t *c = make_content(30000, 9);
    uint8_t t[1024], ih[20];
    size_t tl = make_torrent(t, sizeof t, "o.bin", c, 30000, ih);
    const char *trees[] = { "sub", ".elsewhere" }; /* the same files in both; the hidden one is never walked */
    for (size_t i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, trees[i]);
        cr_assert_eq(mkdir(p, 0755), 0);
        snprintf(p, sizeof p, "%s/%s/o.bin", dir, trees[i]);
        write_file(p, c, 30000);
        snprintf(p, sizeof p, "%s/%s/o.torrent", dir, trees[i]);
        write_file(p, t, tl);
    }
    events e;
    hk_rescan_stats st = rescan(&g, &e);
    cr_assert_eq(st.added, 2, "data.torrent and sub/o.torrent");
    cr_assert(find_event(&e, HK_RESCAN_ADDED, "/sub/o.torrent"));

    /* sub becomes a link to .elsewhere, which holds the same names. */
    snprintf(p, sizeof p, "%s/sub", dir);
    snprintf(q, sizeof q, "%s/.old", dir);
    cr_assert_eq(rename(p, q), 0);
    snprintf(q, sizeof q, "%s/.elsewhere", dir);
    cr_assert_eq(symlink(q, p), 0);
    st = rescan(&g, &e);
    cr_assert_eq(st.kept, 0, "not kept");
    cr_assert_eq(st.removed, 1);
    size_t ev = find_event(&e, HK_RESCAN_REMOVED, "/sub/o.torrent");
    cr_assert(ev);
    cr_assert(strstr(e.why[ev - 1], "symbolic link"), "%s", e.why[ev - 1]);
    cr_assert_eq(memcmp(e.ih[ev - 1], ih, 20), 0);
    cr_assert_eq(hk_real_torrents(g.r), 1);
    cr_assert_eq(hk_served_count(hk_real_served(g.r)), 1, "its record is gone");
    st = rescan(&g, &e);
    cr_assert_eq(st.removed + st.added + st.kept, 0, "and it stays gone");
    free(c);
    rig_stop(&g);
}

Test(real_runtime, a_rescan_runs_a_slice_at_a_time_while_peers_are_served)
{
    rig g;
    events e;
    peer p;
    rig_serving(&g, &e, &p);
    uint8_t ihs[12][20];
    uint8_t *c = make_content(20000, 9);
    for (int i = 0; i < 12; i++) {
        char name[32], tname[32];
        snprintf(name, sizeof name, "f%02d.bin", i);
        snprintf(tname, sizeof tname, "f%02d.torrent", i);
        c[0] = (uint8_t)i; /* a different torrent each */
        add_files(name, tname, c, 20000, ihs[i], NULL);
    }
    memset(&e, 0, sizeof e);
    const char *dirs[] = { dir };
    hk_rescan_cb cb = { .on_event = on_rescan_event, .on_progress = on_rescan_progress, .arg = &e };
    hk_rescan *rs = hk_rescan_new(g.r, dirs, 1, &cb, 1);
    cr_assert_not_null(rs);
    int steps = 0;
    uint32_t block = 0;
    while (!hk_rescan_step(rs, 0)) { /* one path per step; the peer is served in between */
        steps++;
        hk_rescan_stats st;
        hk_rescan_stats_get(rs, &st);
        cr_assert(!st.done);
        cr_assert_eq(st.served, 1 + st.added);
        if (steps % 4 == 0)
            request_and_check(&g, &p, block++ % PIECES, 0, 1000);
        cr_assert_lt(steps, 100);
    }
    hk_rescan_stats st;
    hk_rescan_stats_get(rs, &st);
    hk_rescan_free(rs);
    cr_assert(st.done);
    cr_assert_geq(steps, 12, "13 files take at least 13 steps");
    cr_assert_eq(st.files, 13);
    cr_assert_eq(st.added, 12);
    cr_assert_eq(st.unchanged, 1);
    cr_assert_eq(e.progress, 13);
    cr_assert_eq(hk_real_torrents(g.r), 13);
    cr_assert_geq(block, 3);

    /* Abandoned half-way: what was added stays, nothing is removed. */
    remove_file("f00.torrent");
    rs = hk_rescan_new(g.r, dirs, 1, NULL, 0);
    cr_assert(!hk_rescan_step(rs, 0));
    hk_rescan_free(rs);
    cr_assert_eq(hk_real_torrents(g.r), 13, "an unfinished rescan removes nothing");
    close(p.fd);
    free(c);
    rig_stop(&g);
}

Test(real_runtime, added_and_removed_torrents_go_to_the_announcer)
{
    rig g;
    rig_start_opts(&g, 0, 1.0, true);
    hk_announcer *ann = hk_real_announcer(g.r);
    cr_assert_not_null(ann);
    /* Announcing to a closed port: the announces fail, which does not matter here. */
    uint8_t *c = make_content(20000, 13);
    uint8_t ih[20];
    add_files("ann.bin", "ann.torrent", c, 20000, ih, "http://127.0.0.1:1/announce");
    events e;
    hk_rescan_stats st = rescan(&g, &e);
    cr_assert_eq(st.added, 2);
    hk_announcer_stats as;
    hk_announcer_stats_get(ann, &as);
    cr_assert_eq(as.torrents, 1, "the torrent with a tracker is handed to the announcer");
    hk_slot_info si;
    cr_assert(hk_announcer_slot_info(ann, ih, 0, &si));

    remove_file("ann.torrent");
    st = rescan(&g, &e);
    cr_assert_eq(st.removed, 1);
    hk_announcer_stats_get(ann, &as);
    cr_assert_eq(as.torrents, 0, "the removed torrent is removed from the announcer");
    cr_assert(!hk_announcer_slot_info(ann, ih, 0, &si));
    free(c);
    hk_real_stop_trackers(g.r, 0.5);
    rig_stop(&g);
}

/* The tracker URL hekate announces c's torrent (ih) to now. */
static void expect_tracker(hk_announcer *ann, const uint8_t ih[20], const char *url)
{
    hk_slot_info si;
    cr_assert(hk_announcer_slot_info(ann, ih, 0, &si), "the torrent is in the announcer");
    cr_assert_str_eq(si.url, url);
}

/* issue 11 item 6: the same info dictionary rewritten with another tracker list is announced to the new list, both
 * when the file keeps its size and the info's place (UNCHANGED) and when it does not (READDED); before, both kept
 * the old tracker. */
Test(real_runtime, a_torrent_file_rewritten_with_other_trackers_is_announced_to_them)
{
    rig g;
    rig_start_opts(&g, 0, 1.0, true);
    hk_announcer *ann = hk_real_announcer(g.r);
    cr_assert_not_null(ann);
    uint8_t *c = make_content(20000, 14);
    uint8_t ih[20], ih2[20];
    add_files("trk.bin", "trk.torrent", c, 20000, ih, "http://127.0.0.1:1/announce");
    events e;
    hk_rescan_stats st = rescan(&g, &e);
    cr_assert_eq(st.added, 2);
    expect_tracker(ann, ih, "http://127.0.0.1:1/announce");

    usleep(20000); /* a new mtime */
    add_files("trk.bin", "trk.torrent", c, 20000, ih2, "http://127.0.0.1:2/announce"); /* same size, same place */
    cr_assert_eq(memcmp(ih, ih2, 20), 0, "the same info dictionary");
    st = rescan(&g, &e);
    cr_assert_eq(st.added + st.removed + st.failed, 0, "nothing else changes");
    expect_tracker(ann, ih, "http://127.0.0.1:2/announce");

    usleep(20000);
    add_files("trk.bin", "trk.torrent", c, 20000, ih2, "http://127.0.0.1:3/longer/announce"); /* info moves */
    st = rescan(&g, &e);
    cr_assert_eq(st.removed + st.failed, 0);
    expect_tracker(ann, ih, "http://127.0.0.1:3/longer/announce");
    hk_announcer_stats as;
    hk_announcer_stats_get(ann, &as);
    cr_assert_eq(as.torrents, 1, "one torrent in the announcer, not a copy per tracker list");
    free(c);
    hk_real_stop_trackers(g.r, 0.5);
    rig_stop(&g);
}

Test(real_runtime, two_torrent_files_that_swap_contents_converge_in_one_rescan)
{
    rig g;
    rig_start_opts(&g, 0, 1.0, false);
    uint8_t *c = make_content(25000, 21);
    uint8_t ih2[20];
    add_files("two.bin", "two.torrent", c, 25000, ih2, NULL);
    events e;
    hk_rescan_stats st = rescan(&g, &e);
    cr_assert_eq(st.added, 2);
    char a[256], b[256], tmp[256];
    snprintf(a, sizeof a, "%s/data.torrent", dir);
    snprintf(b, sizeof b, "%s/two.torrent", dir);
    snprintf(tmp, sizeof tmp, "%s/swap.tmp", dir);
    cr_assert_eq(rename(a, tmp), 0);
    cr_assert_eq(rename(b, a), 0);
    cr_assert_eq(rename(tmp, b), 0);
    st = rescan(&g, &e);
    cr_assert_eq(st.removed, 2);
    cr_assert_eq(st.added, 2);
    cr_assert_eq(st.failed, 0, "no duplicate left over");
    cr_assert_eq(st.served, 2);
    size_t k = find_event(&e, HK_RESCAN_ADDED, "/data.torrent");
    cr_assert(k);
    cr_assert_eq(memcmp(e.ih[k - 1], ih2, 20), 0);
    k = find_event(&e, HK_RESCAN_ADDED, "/two.torrent");
    cr_assert(k);
    cr_assert_eq(memcmp(e.ih[k - 1], info_hash, 20), 0);
    peer p;
    peer_get_unchoked_for(&g, &p, ih2);
    request_and_check_in(&g, &p, c, 0, 0, 16384);
    close(p.fd);
    check_served_to_new_peer(&g, 0, 0, 16384);
    st = rescan(&g, &e);
    cr_assert_eq(st.unchanged, 2);
    cr_assert_eq(e.n, 0, "then nothing changes");
    free(c);
    rig_stop(&g);
}

/* Removal while disk work is in flight: disk loads (verification off) or piece verifies (lazy verification: the
 * verify reads the piece first). */
static void removal_while_disk_work_in_flight(bool verify)
{
    rig g;
    g_verify_off = !verify;
    rig_start_opts(&g, 0, 1.0, false);
    const size_t len = 4u << 20;
    uint8_t *c = make_content(len, 17);
    uint8_t ih[20];
    add_files("cold.bin", "cold.torrent", c, len, ih, NULL);
    char dp[256];
    snprintf(dp, sizeof dp, "%s/cold.bin", dir);
    int fd = open(dp, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(fdatasync(fd), 0);
    cr_assert_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0); /* out of the page cache where the fs allows */
    close(fd);
    events e;
    rescan(&g, &e);
    cr_assert_eq(hk_real_torrents(g.r), 2);
    peer *p = malloc(sizeof *p);
    peer_get_unchoked_for(&g, p, ih);
    for (uint32_t i = 0; i < 64; i++) {
        uint32_t args[3] = { i * 4, 0, PIECE_LEN };
        peer_msg(p, 6, args, 3);
    }
    /* Until the seeder has asked for loads (the file is not mapped yet: nothing is known resident). */
    hk_stats st;
    for (int i = 0; i < 2000; i++) {
        ev_run(g.loop, EVRUN_ONCE | EVRUN_NOWAIT);
        hk_seeder_stats(hk_real_seeder(g.r), &st);
        if ((verify ? st.verifies : st.disk_loads) > 0)
            break;
    }
    if (verify)
        cr_assert_gt(st.verifies, 0, "the requests needed piece verifies");
    else
        cr_assert_gt(st.disk_loads, 0, "the requests needed disk loads");
    /* Removed at once: loads still on the pool complete later for a torrent that is gone. */
    cr_assert(hk_real_forget(g.r, dir_path_of("cold.torrent"), NULL));
    cr_assert(drain_until_closed(&g, p->fd, 5), "its peer is disconnected");
    pump(&g, NULL, NULL, NULL, 0.3); /* let every completion arrive */
    hk_store_stats ss;
    hk_store_stats_get(hk_real_store(g.r), &ss);
    cr_assert_eq(ss.storages, 1);
    cr_assert_eq(ss.pinned_files, 0);
    close(p->fd);
    free(p);
    check_served_to_new_peer(&g, 3, 0, 16384);
    free(c);
    rig_stop(&g);
    g_verify_off = false;
}

Test(real_runtime, removal_while_disk_loads_are_in_flight_is_safe)
{
    removal_while_disk_work_in_flight(false);
}

Test(real_runtime, removal_while_piece_verifies_are_in_flight_is_safe)
{
    removal_while_disk_work_in_flight(true);
}

/* ---- a .torrent rewritten in place (issue 14): its metadata (ut_metadata, BEP 9) is served from the file ---- */

/* An extended message (BEP 10, id 20) with extension id ext_id and a bencoded dictionary. */
static void peer_ext(peer *p, uint8_t ext_id, const char *dict)
{
    size_t n = strlen(dict);
    uint8_t m[128];
    cr_assert_leq(6 + n, sizeof m);
    uint32_t be = htonl((uint32_t)(2 + n));
    memcpy(m, &be, 4);
    m[4] = 20;
    m[5] = ext_id;
    memcpy(m + 6, dict, n);
    peer_send(p, m, 6 + n);
}

/* The first extended message with extension id ext_id after the handshake: the offset of what follows the id (its
 * length in *len), or 0. */
static size_t find_ext(const peer *p, uint8_t ext_id, size_t *len)
{
    size_t at = 68;
    while (at + 4 <= p->len) {
        uint32_t be;
        memcpy(&be, p->buf + at, 4);
        uint32_t n = ntohl(be);
        if (at + 4 + n > p->len)
            return 0;
        if (n >= 2 && p->buf[at + 4] == 20 && p->buf[at + 5] == ext_id) {
            *len = n - 2;
            return at + 6;
        }
        at += 4 + n;
    }
    return 0;
}

static bool has_ext(peer *p, void *arg)
{
    size_t n;
    return find_ext(p, *(const uint8_t *)arg, &n) != 0 || p->eof;
}

/* Connects for ih with the extension protocol (ut_metadata as our id 3) and waits for the seeder's extension
 * handshake, which must offer ut_metadata. */
static void peer_get_ext_handshake(rig *g, peer *p, const uint8_t ih[20])
{
    peer_connect(p, g->port);
    uint8_t hs[68] = { 19 };
    memcpy(hs + 1, "BitTorrent protocol", 19);
    hs[25] = 0x10; /* BEP 10 */
    memcpy(hs + 28, ih, 20);
    memcpy(hs + 48, "-TT0001-testpeer0002", 20);
    peer_send(p, hs, sizeof hs);
    peer_ext(p, 0, "d1:md11:ut_metadatai3eee");
    uint8_t id = 0;
    pump(g, p, has_ext, &id, 5);
    size_t n;
    size_t at = find_ext(p, 0, &n);
    cr_assert_neq(at, 0, "no extension handshake from the seeder");
    cr_assert_eq(memcmp(p->buf + 28, ih, 20), 0);
    cr_assert_not_null(memmem(p->buf + at, n, "11:ut_metadatai1e", 17), "ut_metadata offered as 1");
}

/* Asks for metadata piece 0 and runs the loop until the answer comes, the connection ends or `seconds` pass. true
 * with the piece's bytes in *bytes, *n if a data message came. */
static bool fetch_metadata(rig *g, peer *p, const uint8_t **bytes, size_t *n, double seconds)
{
    p->len = 68; /* forget earlier messages (all whole: handshake, bitfield, extension handshake) */
    peer_ext(p, 1, "d8:msg_typei0e5:piecei0ee");
    uint8_t id = 3;
    pump(g, p, has_ext, &id, seconds);
    size_t len;
    size_t at = find_ext(p, 3, &len);
    if (at == 0)
        return false;
    static const char head[] = "d8:msg_typei1e5:piecei0e10:total_sizei";
    cr_assert_geq(len, sizeof head, "a short ut_metadata message");
    if (memcmp(p->buf + at, head, sizeof head - 1) != 0)
        return false; /* a reject */
    size_t d = sizeof head - 1;
    while (d < len && p->buf[at + d] >= '0' && p->buf[at + d] <= '9')
        d++;
    cr_assert(d + 2 <= len && p->buf[at + d] == 'e' && p->buf[at + d + 1] == 'e', "bad data dictionary");
    d += 2;
    *bytes = p->buf + at + d;
    *n = len - d;
    return true;
}

static int stderr_to(const char *path)
{
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(saved >= 0 && fd >= 0);
    cr_assert_geq(dup2(fd, 2), 0);
    close(fd);
    return saved;
}

static void stderr_back(int saved)
{
    fflush(stderr);
    cr_assert_geq(dup2(saved, 2), 0);
    close(saved);
}

/* The fixture's .torrent as written, its info dictionary at [7, len - 1). */
typedef struct tfile {
    uint8_t *b;
    size_t len;
    size_t name_at;     /* offset of "data.bin" in it */
} tfile;

static void tfile_read(tfile *t)
{
    char err[256];
    t->b = hk_read_file(torrent_path, 1 << 20, &t->len, err, sizeof err);
    cr_assert_not_null(t->b, "%s", err);
    const uint8_t *nm = memmem(t->b, t->len, "8:data.bin", 10);
    cr_assert_not_null(nm);
    t->name_at = (size_t)(nm - t->b) + 2;
}

/* Sets the mtime of path one second past its current one (same inode, same size). */
static void bump_mtime(int fd)
{
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, st.st_mtim };
    ts[1].tv_sec += 1;
    cr_assert_eq(futimens(fd, ts), 0);
}

/* Rewrites the fixture's .torrent in place: "data.bin" becomes "dbta.bin" (same size, still valid, another
 * info-hash: new_ih), mtime bumped. The data under the new name is there too, so the new torrent is valid. */
static void rewrite_torrent(tfile *t, uint8_t new_ih[20])
{
    write_file(dir_path_of("dbta.bin"), data, DATA_LEN);
    t->b[t->name_at + 1] = 'b';
    cr_assert(ih_sha1(t->b + 7, t->len - 8, new_ih));
    int fd = open(torrent_path, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, "b", 1, (off_t)t->name_at + 1), 1);
    bump_mtime(fd);
    close(fd);
}

static bool file_has(const char *path, const char *a, const char *b)
{
    char err[256];
    size_t n;
    uint8_t *s = hk_read_file(path, 1 << 20, &n, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    bool found = false;
    for (const uint8_t *at = s; (at = memmem(at, n - (size_t)(at - s), a, strlen(a))) != NULL; at++) {
        const uint8_t *eol = memchr(at, '\n', n - (size_t)(at - s));
        size_t left = eol ? (size_t)(eol - at) : n - (size_t)(at - s);
        if (memmem(at, left, b, strlen(b))) {
            found = true;
            break;
        }
    }
    free(s);
    return found;
}

/* After the rewrite (t, new_ih): the old torrent is gone, its metadata is not served; the new one is served with
 * its metadata (the file's new bytes); a log line named the path. */
static void expect_rescanned(rig *g, const tfile *t, const uint8_t new_ih[20], const char *log)
{
    hk_torrent_stats ts;
    cr_assert(!hk_seeder_torrent_stats(hk_real_seeder(g->r), info_hash, &ts), "the old torrent is not served");
    cr_assert(hk_seeder_torrent_stats(hk_real_seeder(g->r), new_ih, &ts), "the rewritten .torrent is served");
    cr_assert(!ts.failed);
    cr_assert_eq(hk_real_torrents(g->r), 1);
    expect_handshake_refused(g, info_hash);
    peer q;
    peer_get_ext_handshake(g, &q, new_ih);
    const uint8_t *b;
    size_t n;
    cr_assert(fetch_metadata(g, &q, &b, &n, 3), "the new torrent's metadata is served");
    cr_assert_eq(n, t->len - 8);
    cr_assert_eq(memcmp(b, t->b + 7, n), 0);
    close(q.fd);
    cr_assert(file_has(log, torrent_path, "the .torrent changed on disk; its metadata is no longer served"),
              "a log line names the .torrent");
}

/* Serves the fixture with the storage checked every check_interval seconds; a peer that fetched the metadata once
 * (the .torrent is mapped) if `fetch`. */
static void rig_metadata(rig *g, double check_interval, peer *p, tfile *t, bool fetch)
{
    rig_start(g, 0, check_interval);
    tfile_read(t);
    peer_get_ext_handshake(g, p, info_hash);
    if (!fetch)
        return;
    const uint8_t *b;
    size_t n;
    cr_assert(fetch_metadata(g, p, &b, &n, 3), "metadata served");
    cr_assert_eq(n, t->len - 8);
    cr_assert_eq(memcmp(b, t->b + 7, n), 0, "the info dictionary byte for byte");
}

/* The peer asks again right after the rewrite: what comes back must not be the changed bytes under the old
 * info-hash. */
static void expect_changed_bytes_not_served(rig *g, peer *p, const tfile *t)
{
    const uint8_t *b;
    size_t n;
    bool got = fetch_metadata(g, p, &b, &n, 2);
    cr_assert(!(got && n == t->len - 8 && memcmp(b, t->b + 7, n) == 0),
              "the rewritten .torrent's bytes were served as the old torrent's metadata");
    cr_assert(!got, "no metadata of the old torrent once its .torrent changed");
    pump(g, p, is_eof, NULL, 3);
    cr_assert(p->eof, "the old torrent's peer is disconnected");
}

Test(real_runtime, a_torrent_file_rewritten_in_place_while_mapped_stops_its_metadata_at_the_next_send)
{
    rig g;
    peer p;
    tfile t;
    char log[128];
    snprintf(log, sizeof log, "%s/log", dir);
    rig_metadata(&g, 3600, &p, &t, true); /* no periodic check during the test: the send must catch it */
    uint8_t ih2[20];
    int saved = stderr_to(log);
    rewrite_torrent(&t, ih2);
    expect_changed_bytes_not_served(&g, &p, &t);
    pump(&g, NULL, NULL, NULL, 0.1);
    stderr_back(saved);
    close(p.fd);
    expect_rescanned(&g, &t, ih2, log);
    free(t.b);
    rig_stop(&g);
}

Test(real_runtime, a_torrent_file_rewritten_in_place_before_it_is_mapped_never_serves_the_new_bytes)
{
    rig g;
    peer p;
    tfile t;
    char log[128];
    snprintf(log, sizeof log, "%s/log", dir);
    rig_metadata(&g, 3600, &p, &t, false);
    uint8_t ih2[20];
    int saved = stderr_to(log);
    rewrite_torrent(&t, ih2);
    expect_changed_bytes_not_served(&g, &p, &t);
    pump(&g, NULL, NULL, NULL, 0.1);
    stderr_back(saved);
    close(p.fd);
    expect_rescanned(&g, &t, ih2, log);
    free(t.b);
    rig_stop(&g);
}

Test(real_runtime, the_periodic_check_finds_a_torrent_file_rewritten_in_place_and_rescans_it)
{
    rig g;
    peer p;
    tfile t;
    char log[128];
    snprintf(log, sizeof log, "%s/log", dir);
    rig_metadata(&g, 0.1, &p, &t, true);
    uint8_t ih2[20];
    int saved = stderr_to(log);
    rewrite_torrent(&t, ih2);
    double el = pump(&g, &p, is_eof, NULL, 3); /* no request: the check alone finds it */
    stderr_back(saved);
    cr_assert(p.eof, "the old torrent's peer is disconnected");
    cr_assert_lt(el, 1.0, "found within the check interval (0.1 s), took %.2f s", el);
    close(p.fd);
    expect_rescanned(&g, &t, ih2, log);
    free(t.b);
    rig_stop(&g);
}

Test(real_runtime, a_torrent_file_only_touched_goes_on_being_served)
{
    rig g;
    peer p;
    tfile t;
    rig_metadata(&g, 0.1, &p, &t, true);
    int fd = open(torrent_path, O_WRONLY);
    cr_assert_geq(fd, 0);
    bump_mtime(fd); /* new mtime and ctime, the same bytes */
    close(fd);
    pump(&g, &p, is_eof, NULL, 0.3);
    cr_assert(!p.eof, "a touched .torrent does not disturb its peers");
    const uint8_t *b;
    size_t n;
    cr_assert(fetch_metadata(&g, &p, &b, &n, 3), "metadata still served");
    cr_assert_eq(n, t.len - 8);
    cr_assert_eq(memcmp(b, t.b + 7, n), 0);
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(hk_real_seeder(g.r), info_hash, &ts) && !ts.failed);
    close(p.fd);
    free(t.b);
    rig_stop(&g);
}
