/* Tests of backend-real/lib/net/utp_bridge: uTP clients (core/utp_conn, dialling side, on their own UDP sockets)
 * against a bridge on a real UDP port and libev loop. The per-address and total bounds refuse SYNs (left to the
 * caller); bytes go both ways between a client and the local socket handed to the accept function, byte for byte; a
 * local socket that is not read stops the client (the window), without the bridge holding more than its bounds; the
 * local socket's close reaches the client as a FIN, and both FINs free the connection. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"
#include "udp_port.h"
#include "utp_bridge.h"
#include "utp_conn.h"
#include "wake.h"

typedef struct world {
    struct ev_loop *loop;
    hk_udp_port *udp;
    hk_utp_bridge *b;
    uint16_t port;
    int fds[16];
    unsigned nfds, refused;
} world;

static void on_dgram(void *arg, const uint8_t *data, size_t len, const hk_addr *from)
{
    world *w = arg;
    if (!hk_utp_bridge_input(w->b, data, len, from))
        w->refused++;
}

static void on_accept(void *arg, int fd, const hk_addr *from)
{
    (void)from;
    world *w = arg;
    cr_assert_lt(w->nfds, 16);
    w->fds[w->nfds++] = fd;
}

static void world_init(world *w, unsigned max_conns, unsigned per_address)
{
    memset(w, 0, sizeof *w);
    hk_log_set_level(HK_LOG_ERROR);
    w->loop = ev_loop_new(EVFLAG_AUTO);
    hk_udp_port_opts uo;
    hk_udp_port_opts_default(&uo);
    uo.family = HK_FAMILY_V4;
    uo.bind_addr = "127.0.0.1";
    char err[256];
    w->udp = hk_udp_port_new(w->loop, &uo, err, sizeof err);
    cr_assert_not_null(w->udp, "%s", err);
    w->port = hk_udp_port_port(w->udp);
    hk_utp_bridge_opts o;
    hk_utp_bridge_opts_default(&o);
    o.max_conns = max_conns;
    o.per_address = per_address;
    w->b = hk_utp_bridge_new(w->loop, w->udp, &o, on_accept, w, 42);
    cr_assert_not_null(w->b);
    hk_udp_port_set_handler(w->udp, HK_UDP_UTP, on_dgram, w);
}

static void world_free(world *w)
{
    hk_utp_bridge_free(w->b);
    hk_udp_port_free(w->udp);
    for (unsigned i = 0; i < w->nfds; i++)
        if (w->fds[i] >= 0)
            close(w->fds[i]);
    ev_loop_destroy(w->loop);
}

typedef struct client {
    int fd;
    uint16_t port;
    hk_utp_conn *c;
    uint8_t *got;
    size_t got_len, got_cap, room;
    bool eof, closed;
} client;

static void cl_send(void *ctx, const uint8_t *pkt, size_t len)
{
    client *cl = ctx;
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(cl->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    (void)sendto(cl->fd, pkt, len, 0, (struct sockaddr *)&to, sizeof to);
}

static void cl_deliver(void *ctx, const uint8_t *d, size_t len)
{
    client *cl = ctx;
    if (!d) {
        cl->eof = true;
        return;
    }
    cr_assert_leq(cl->got_len + len, cl->got_cap);
    memcpy(cl->got + cl->got_len, d, len);
    cl->got_len += len;
}

static size_t cl_room(void *ctx)
{
    return ((client *)ctx)->room;
}

static void cl_closed(void *ctx, hk_utp_close_reason why)
{
    (void)why;
    ((client *)ctx)->closed = true;
}

/* A client on its own UDP socket at 127.0.0.`host`, dialling the bridge's port. */
static void client_open(client *cl, world *w, uint8_t host, uint16_t id, size_t cap)
{
    static const hk_utp_conn_ops ops = { .send = cl_send, .deliver = cl_deliver, .room = cl_room,
                                         .closed = cl_closed };
    memset(cl, 0, sizeof *cl);
    cl->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    cr_assert_geq(cl->fd, 0);
    struct sockaddr_in me = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000000u | host) };
    cr_assert_eq(bind(cl->fd, (struct sockaddr *)&me, sizeof me), 0, "%s", strerror(errno));
    cl->port = w->port;
    cl->got = malloc(cap ? cap : 1);
    cl->got_cap = cap;
    cl->room = 1 << 20;
    cl->c = hk_utp_conn_new(NULL, &ops, cl);
    hk_utp_conn_connect(cl->c, id, (uint16_t)(id * 7), hk_clock_now());
}

static void client_close(client *cl)
{
    hk_utp_conn_free(cl->c);
    close(cl->fd);
    free(cl->got);
}

static void client_pump(client *cl)
{
    uint8_t buf[2048];
    ssize_t n;
    while ((n = recv(cl->fd, buf, sizeof buf, 0)) > 0)
        hk_utp_conn_input(cl->c, buf, (size_t)n, hk_clock_now());
    if (hk_utp_conn_deadline(cl->c) <= hk_clock_now())
        hk_utp_conn_tick(cl->c, hk_clock_now());
}

static void stop_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)t;
    (void)revents;
    ev_break(loop, EVBREAK_ONE);
}

static void run_ms(world *w, client *cls, unsigned n, unsigned ms)
{
    ev_timer t;
    ev_timer_init(&t, stop_cb, ms / 1000., 0.);
    ev_timer_start(w->loop, &t);
    ev_run(w->loop, 0);
    ev_timer_stop(w->loop, &t);
    for (unsigned i = 0; i < n; i++)
        client_pump(&cls[i]);
}

Test(utp_bridge, per_address_and_total_bounds)
{
    world w;
    world_init(&w, 4, 2);
    client cl[5];
    client_open(&cl[0], &w, 1, 100, 0);
    client_open(&cl[1], &w, 1, 200, 0);
    client_open(&cl[2], &w, 1, 300, 0); /* a third from 127.0.0.1: over the per-address bound */
    client_open(&cl[3], &w, 2, 400, 0);
    client_open(&cl[4], &w, 2, 500, 0);
    for (int i = 0; i < 20; i++)
        run_ms(&w, cl, 5, 10);
    hk_utp_bridge_stats s;
    hk_utp_bridge_stats_get(w.b, &s);
    cr_assert_eq(s.accepted, 4);
    cr_assert_eq(s.active, 4);
    cr_assert_eq(w.nfds, 4, "each accepted connection's local end went to accept");
    cr_assert_geq(s.refused, 1);
    cr_assert_eq(hk_utp_conn_state(cl[0].c), HK_UTP_CONNECTED);
    cr_assert_eq(hk_utp_conn_state(cl[2].c), HK_UTP_SYN_SENT, "refused: no reply from the bridge");
    client c6;
    client_open(&c6, &w, 3, 600, 0); /* 127.0.0.3: within its address bound, over the total */
    for (int i = 0; i < 20; i++)
        run_ms(&w, &c6, 1, 10);
    hk_utp_bridge_stats_get(w.b, &s);
    cr_assert_eq(s.accepted, 4);
    cr_assert_eq(hk_utp_conn_state(c6.c), HK_UTP_SYN_SENT);
    client_close(&c6);
    for (int i = 0; i < 5; i++)
        client_close(&cl[i]);
    world_free(&w);
}

static uint8_t *pattern(size_t n, uint64_t seed)
{
    uint8_t *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)hk_splitmix64(&seed);
    return b;
}

Test(utp_bridge, bytes_both_ways_backpressure_and_fins)
{
    world w;
    world_init(&w, 4, 2);
    const size_t up = 3 << 20, down = 2 << 20;
    client cl;
    client_open(&cl, &w, 1, 0x1111, down);
    uint8_t *src_up = pattern(up, 1), *src_down = pattern(down, 2);
    for (int i = 0; i < 20 && w.nfds == 0; i++)
        run_ms(&w, &cl, 1, 10);
    cr_assert_eq(w.nfds, 1);
    int app = w.fds[0];
    cr_assert_eq(hk_utp_conn_state(cl.c), HK_UTP_CONNECTED);
    /* the application does not read: the client's stream stops at the window, the bridge holds its bounds */
    size_t off_up = 0;
    for (int i = 0; i < 100; i++) {
        off_up += hk_utp_conn_write(cl.c, src_up + off_up, up - off_up, hk_clock_now());
        run_ms(&w, &cl, 1, 10);
    }
    hk_utp_bridge_stats s;
    hk_utp_bridge_stats_get(w.b, &s);
    cr_assert_lt(s.bytes_received, up / 2, "%llu bytes taken with nobody reading", (unsigned long long)s.bytes_received);
    cr_assert_lt(off_up, up, "the client's writes were held back");
    /* now both sides move: the application reads what came up and writes the down stream */
    uint8_t *got_up = malloc(up);
    size_t got = 0, off_down = 0;
    for (int i = 0; i < 3000 && (got < up || cl.got_len < down); i++) {
        off_up += hk_utp_conn_write(cl.c, src_up + off_up, up - off_up, hk_clock_now());
        ssize_t n;
        while (got < up && (n = recv(app, got_up + got, up - got, MSG_DONTWAIT)) > 0)
            got += (size_t)n;
        while (off_down < down && (n = send(app, src_down + off_down, down - off_down, MSG_DONTWAIT)) > 0)
            off_down += (size_t)n;
        run_ms(&w, &cl, 1, 2);
    }
    cr_assert_eq(got, up);
    cr_assert(memcmp(got_up, src_up, up) == 0, "the up stream byte for byte");
    cr_assert_eq(cl.got_len, down);
    cr_assert(memcmp(cl.got, src_down, down) == 0, "the down stream byte for byte");
    /* the application closes: a FIN reaches the client; the client's FIN ends the connection */
    close(app);
    w.fds[0] = -1;
    for (int i = 0; i < 100 && !cl.eof; i++)
        run_ms(&w, &cl, 1, 10);
    cr_assert(cl.eof, "the local close came as a FIN");
    hk_utp_conn_shutdown(cl.c, hk_clock_now());
    for (int i = 0; i < 100 && s.active; i++) {
        run_ms(&w, &cl, 1, 10);
        hk_utp_bridge_stats_get(w.b, &s);
    }
    cr_assert_eq(s.active, 0);
    cr_assert_eq(s.bytes_sent, down);
    cr_assert_eq(s.bytes_received, up);
    free(got_up);
    free(src_up);
    free(src_down);
    client_close(&cl);
    world_free(&w);
}
