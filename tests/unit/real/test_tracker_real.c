/* The real backend's tracker transports on a libev loop: libcurl multi (status, body, size cap, timeouts, refused,
 * keep-alive reuse), the UDP sockets, the cached non-blocking resolver, and the announcer glue end to end. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "resolver.h"
#include "trackers.h"
#include "trackers_http.h"
#include "trackers_udp.h"

/* ---- a tiny blocking HTTP server on a thread: answers `nreq` requests with `reply`, keep-alive ---- */

typedef struct server {
    int lfd;
    uint16_t port;
    const char *reply;            /* NULL: accept and never answer */
    int accepted;
    int requests;
    char last_request[2048];
    pthread_t th;
    volatile int stop;
} server;

static void *server_main(void *arg)
{
    server *s = arg;
    while (!s->stop) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            break;
        s->accepted++;
        char buf[4096];
        size_t have = 0;
        for (;;) {
            ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
            if (n <= 0)
                break;
            have += (size_t)n;
            buf[have] = 0;
            char *end = strstr(buf, "\r\n\r\n");
            if (!end)
                continue;
            s->requests++;
            snprintf(s->last_request, sizeof s->last_request, "%.*s", (int)(end - buf), buf);
            size_t used = (size_t)(end + 4 - buf);
            memmove(buf, buf + used, have - used);
            have -= used;
            if (!s->reply)
                continue; /* never answer */
            if (write(fd, s->reply, strlen(s->reply)) < 0)
                break;
        }
        close(fd);
    }
    return NULL;
}

static void server_start(server *s, const char *reply)
{
    memset(s, 0, sizeof *s);
    s->reply = reply;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &l);
    s->port = ntohs(a.sin_port);
    listen(s->lfd, 16);
    pthread_create(&s->th, NULL, server_main, s);
}

static void server_stop(server *s)
{
    s->stop = 1;
    shutdown(s->lfd, SHUT_RDWR);
    close(s->lfd);
    pthread_join(s->th, NULL);
}

typedef struct result {
    int done;
    uint64_t token;
    int status;
    char body[4096];
    size_t len;
} result;

static void on_done(void *arg, uint64_t token, int status, const uint8_t *body, size_t len)
{
    result *r = arg;
    r->done++;
    r->token = token;
    r->status = status;
    r->len = len;
    snprintf(r->body, sizeof r->body, "%.*s", (int)len, (const char *)body);
}

static void run_until_done(struct ev_loop *loop, const int *done, int want, double max_s)
{
    double t_end = ev_time() + max_s;
    while (*done < want && ev_time() < t_end)
        ev_run(loop, EVRUN_ONCE);
    cr_assert_geq(*done, want, "no completion within %.0f s", max_s);
}

static const char *OK_REPLY = "HTTP/1.1 200 OK\r\nContent-Length: 16\r\nContent-Type: text/plain\r\n\r\nd8:intervali60ee";

/* A new loop, and a tracker thread answering every request with OK_REPLY. */
static struct ev_loop *loop_with_ok_server(server *s)
{
    server_start(s, OK_REPLY);
    return ev_loop_new(EVFLAG_AUTO);
}

Test(tracker_http_real, status_body_and_keepalive)
{
    server s;
    struct ev_loop *loop = loop_with_ok_server(&s);
    hk_http_opts o;
    hk_http_opts_default(&o);
    result r = { 0 };
    char err[128];
    hk_http *h = hk_http_new(loop, &o, on_done, &r, err, sizeof err);
    cr_assert_not_null(h, "%s", err);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/announce?x=1", s.port);
    cr_assert_eq(hk_http_get(h, url, 77), 0);
    cr_assert_eq(r.done, 0, "never completes from inside hk_http_get");
    run_until_done(loop, &r.done, 1, 10);
    cr_assert_eq(r.token, 77);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "d8:intervali60ee");
    cr_assert(strstr(s.last_request, "GET /announce?x=1 HTTP/1.1"), "%s", s.last_request);
    cr_assert(strstr(s.last_request, "User-Agent: hekate"), "%s", s.last_request);
    cr_assert_eq(hk_http_get(h, url, 78), 0);
    run_until_done(loop, &r.done, 2, 10);
    cr_assert_eq(r.token, 78);
    cr_assert_eq(s.requests, 2);
    cr_assert_eq(s.accepted, 1, "the second request reused the kept-alive connection");
    hk_http_stats st;
    hk_http_stats_get(h, &st);
    cr_assert_eq(st.connects, 1);
    cr_assert_eq(st.in_flight, 0);
    hk_http_free(h);
    server_stop(&s);
    ev_loop_destroy(loop);
}

Test(tracker_http_real, errors_timeouts_and_size_cap)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_http_opts o;
    hk_http_opts_default(&o);
    o.total_timeout_ms = 700;
    o.max_reply = 8;
    result r = { 0 };
    char err[128];
    hk_http *h = hk_http_new(loop, &o, on_done, &r, err, sizeof err);
    char url[128];

    server big;
    server_start(&big, OK_REPLY); /* 16 bytes of body > 8 */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/a", big.port);
    hk_http_get(h, url, 1);
    run_until_done(loop, &r.done, 1, 10);
    cr_assert_eq(r.status, HK_HTTP_ERR_TOO_LARGE);
    server_stop(&big);

    server mute;
    server_start(&mute, NULL); /* accepts, reads, never answers */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/a", mute.port);
    double t0 = ev_time();
    hk_http_get(h, url, 2);
    run_until_done(loop, &r.done, 2, 10);
    cr_assert_eq(r.status, HK_HTTP_ERR_TIMEOUT, "%d %s", r.status, r.body);
    cr_assert(ev_time() - t0 < 5, "the total timeout ends it");
    server_stop(&mute);

    int fd = socket(AF_INET, SOCK_STREAM, 0); /* a port nobody listens on */
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/a", ntohs(a.sin_port));
    hk_http_get(h, url, 3);
    run_until_done(loop, &r.done, 3, 10);
    close(fd);
    cr_assert_eq(r.status, HK_HTTP_ERR_TRANSPORT);
    cr_assert(strlen(r.body) > 0, "an error text comes with it");

    hk_http_get(h, "ftp://127.0.0.1/x", 4);
    run_until_done(loop, &r.done, 4, 10);
    cr_assert_eq(r.status, HK_HTTP_ERR_TRANSPORT, "other protocols are refused");
    hk_http_free(h);
    ev_loop_destroy(loop);
}

typedef struct udp_got {
    int n;
    hk_addr from;
    uint8_t bytes[64];
    size_t len;
} udp_got;

static void on_udp(void *arg, const hk_addr *from, const uint8_t *bytes, size_t len)
{
    udp_got *g = arg;
    g->n++;
    g->from = *from;
    g->len = len < sizeof g->bytes ? len : sizeof g->bytes;
    memcpy(g->bytes, bytes, g->len);
}

Test(tracker_udp_real, send_and_receive_v4)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    udp_got g = { 0 };
    hk_udp_trackers *u = hk_udp_trackers_new(loop, on_udp, &g);
    int peer = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bind(peer, (struct sockaddr *)&a, sizeof a);
    socklen_t l = sizeof a;
    getsockname(peer, (struct sockaddr *)&a, &l);
    hk_addr to = { .family = 4, .port = ntohs(a.sin_port) };
    memcpy(to.ip, &a.sin_addr, 4);
    cr_assert_eq(hk_udp_trackers_send(u, &to, (const uint8_t *)"ping", 4), 0);
    char buf[16];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(peer, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    cr_assert_eq(n, 4);
    hk_udp_trackers_stats st;
    hk_udp_trackers_stats_get(u, &st);
    cr_assert_eq(ntohs(from.sin_port), st.port4);
    cr_assert_eq(st.port6, 0, "the IPv6 socket is opened only when needed");
    sendto(peer, "pong!", 5, 0, (struct sockaddr *)&from, fl);
    run_until_done(loop, &g.n, 1, 5);
    cr_assert_eq(g.len, 5);
    cr_assert(memcmp(g.bytes, "pong!", 5) == 0);
    cr_assert_eq(g.from.port, to.port);
    cr_assert_eq(g.from.family, 4);
    close(peer);
    hk_udp_trackers_free(u);
    ev_loop_destroy(loop);
}

typedef struct res_got {
    int n;
    uint64_t token;
    size_t naddrs;
    hk_addr addrs[HK_RESOLVER_MAX_ADDRS];
} res_got;

static void on_res(void *arg, uint64_t token, const hk_addr *addrs, size_t n, const char *error)
{
    (void)error;
    res_got *g = arg;
    g->n++;
    g->token = token;
    g->naddrs = n;
    memcpy(g->addrs, addrs, n * sizeof *addrs);
}

Test(resolver, numeric_names_cache_and_failure)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    res_got g = { 0 };
    hk_resolver *r = hk_resolver_new(loop, 60, 5, 2, on_res, &g);
    cr_assert_eq(hk_resolver_resolve(r, "127.0.0.1", 1), 0);
    cr_assert_eq(g.n, 0, "never completes synchronously");
    run_until_done(loop, &g.n, 1, 5);
    cr_assert_eq(g.naddrs, 1);
    cr_assert_eq(g.addrs[0].family, 4);
    cr_assert_eq(g.addrs[0].ip[0], 127);
    hk_resolver_resolve(r, "::1", 2);
    run_until_done(loop, &g.n, 2, 5);
    cr_assert_eq(g.addrs[0].family, 6);
    cr_assert_eq(g.addrs[0].ip[15], 1);
    hk_resolver_resolve(r, "localhost", 3);
    hk_resolver_resolve(r, "localhost", 4);
    run_until_done(loop, &g.n, 4, 10);
    cr_assert_geq(g.naddrs, 1, "localhost resolves");
    hk_resolver_stats st;
    hk_resolver_stats_get(r, &st);
    cr_assert_eq(st.lookups, 1, "two requests, one lookup");
    hk_resolver_resolve(r, "localhost", 5);
    run_until_done(loop, &g.n, 5, 5);
    hk_resolver_stats_get(r, &st);
    cr_assert_eq(st.lookups, 1, "cached");
    cr_assert_eq(st.cache_hits, 3);
    hk_resolver_resolve(r, "no-such-host.invalid", 6);
    run_until_done(loop, &g.n, 6, 30);
    cr_assert_eq(g.token, 6);
    cr_assert_eq(g.naddrs, 0);
    hk_resolver_free(r);
    ev_loop_destroy(loop);
}

static uint64_t uploaded_cb(void *arg, const uint8_t ih[20])
{
    (void)arg;
    (void)ih;
    return 31337;
}

Test(trackers_glue, announce_and_stop_over_http)
{
    server s;
    struct ev_loop *loop = loop_with_ok_server(&s);
    hk_trackers_opts o;
    hk_trackers_opts_default(&o);
    memcpy(o.ann.peer_id, "-HK0100-123456789012", 20);
    o.ann.port = 4321;
    o.log_level = HK_LOG_WARN;
    char err[128];
    hk_trackers *t = hk_trackers_new(loop, &o, uploaded_cb, NULL, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/announce", s.port);
    const char *urls[] = { url };
    uint32_t one = 1;
    uint8_t ih[20];
    memset(ih, 0x11, 20);
    hk_announcer *a = hk_trackers_announcer(t);
    cr_assert_eq(hk_announcer_add_torrent(a, ih, urls, &one, 1), HK_ANN_OK);
    hk_announcer_stats st;
    double t_end = ev_time() + 10;
    do {
        ev_run(loop, EVRUN_ONCE);
        hk_announcer_stats_get(a, &st);
    } while (st.ok < 1 && ev_time() < t_end);
    cr_assert_eq(st.ok, 1);
    cr_assert(strstr(s.last_request, "event=started"), "%s", s.last_request);
    cr_assert(strstr(s.last_request, "uploaded=31337"), "%s", s.last_request);
    cr_assert(strstr(s.last_request, "port=4321"), "%s", s.last_request);
    hk_trackers_stop(t, 5);
    hk_announcer_stats_get(a, &st);
    cr_assert_eq(st.stopped_ok, 1);
    cr_assert(strstr(s.last_request, "event=stopped"), "%s", s.last_request);
    hk_trackers_free(t);
    server_stop(&s);
    ev_loop_destroy(loop);
}
