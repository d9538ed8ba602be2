/* Tests of backend-real/lib/real_runtime: the libev runtime wired to the real seeder, driven by a raw TCP peer on
 * 127.0.0.1. A block goes out byte for byte; the handshake timeout fires on time (never early); a data file
 * truncated while served fails its torrent (peers dropped, new ones refused) without killing the process; loading
 * .torrent files reports each kind of rejection; freeing the runtime closes live connections. */
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

/* A single-file torrent for `name` of `len` bytes of `content`; returns its length in out. */
static size_t make_torrent(uint8_t *out, size_t cap, const char *name, const uint8_t *content, size_t len,
                           uint8_t ih[20])
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
    cr_assert_leq(at + 16, cap);
    memcpy(out, "d4:info", 7);
    memcpy(out + 7, info, at);
    out[7 + at] = 'e';
    free(info);
    return at + 8;
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

static void rig_start(rig *g, double handshake_timeout, double check_interval)
{
    g->loop = ev_loop_new(EVFLAG_AUTO);
    hk_real_opts o;
    hk_real_opts_default(&o);
    o.listener.port = 0;
    o.listener.bind_addr = "127.0.0.1";
    if (handshake_timeout > 0)
        o.cfg.handshake_timeout = (hk_time)(handshake_timeout * 1e9);
    o.check_interval = check_interval;
    char err[512] = "";
    g->r = hk_real_new(g->loop, &o, err, sizeof err);
    cr_assert_not_null(g->r, "%s", err);
    g->port = hk_listener_port(hk_real_listener(g->r));
    cr_assert_neq(g->port, 0);
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

static void peer_handshake(peer *p)
{
    uint8_t hs[68] = { 19 };
    memcpy(hs + 1, "BitTorrent protocol", 19);
    memcpy(hs + 28, info_hash, 20);
    memcpy(hs + 48, "-TT0001-testpeer0001", 20);
    peer_send(p, hs, sizeof hs);
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
static void peer_get_unchoked(rig *g, peer *p)
{
    peer_connect(p, g->port);
    peer_handshake(p);
    pump(g, p, has_handshake, NULL, 5);
    cr_assert_geq(p->len, 68, "no handshake from the seeder");
    cr_assert_eq(memcmp(p->buf + 28, info_hash, 20), 0);
    peer_msg(p, 2, NULL, 0); /* interested */
    uint32_t want[2] = { 1, 0 }; /* unchoke */
    pump(g, p, has_msg, want, 5);
    cr_assert_neq(find_msg(p, 1, 0), 0, "not unchoked");
}

static void request_and_check(rig *g, peer *p, uint32_t index, uint32_t begin, uint32_t length)
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
    cr_assert_eq(memcmp(p->buf + at + 8, data + (size_t)index * PIECE_LEN + begin, length), 0, "block bytes differ");
}

/* ---- tests ---- */

Test(real_runtime, serves_blocks_byte_for_byte)
{
    rig g;
    rig_start(&g, 0, 1.0);
    peer p;
    peer_get_unchoked(&g, &p);
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
    rig_start(&g, 0, 0.1);
    peer p;
    peer_get_unchoked(&g, &p);
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
    rig_start(&g, 0, 1.0);
    peer p;
    peer_get_unchoked(&g, &p);
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
