/* Tests of the UDP port in backend-real/lib/real_runtime: opened on the listener's address and bound port, uTP SYNs
 * accepted as connections (an ST_STATE from that port with the SYN's connection id) up to the per-address bound and
 * the reset policy beyond it, a uTP client's stream reaching the seeder through the bridge and the seeder's close
 * coming back as a FIN, unknown uTP packets and KRPC left unanswered, no UDP port without a listener, and TCP
 * serving kept when the UDP port is taken. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "real_runtime.h"
#include "udp_port.h"
#include "utp_bridge.h"
#include "utp_conn.h"
#include "utp_reset.h"
#include "wake.h"

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ONE);
}

static void run_for(struct ev_loop *loop, double seconds)
{
    ev_timer t;
    ev_timer_init(&t, tick_cb, seconds, 0.);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
}

static hk_real *start(struct ev_loop *loop, uint16_t port)
{
    hk_log_set_level(HK_LOG_ERROR);
    hk_real_opts o;
    hk_real_opts_default(&o);
    o.listener.port = port;
    o.listener.bind_addr = "127.0.0.1";
    char err[512] = "";
    hk_real *r = hk_real_new(loop, &o, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    return r;
}

static int udp_client(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in me = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(bind(fd, (struct sockaddr *)&me, sizeof me), 0);
    return fd;
}

static void send_to(int fd, uint16_t port, const uint8_t *b, size_t n)
{
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(sendto(fd, b, n, 0, (struct sockaddr *)&to, sizeof to), (ssize_t)n, "%s", strerror(errno));
}

/* The loop runs for up to `seconds` while the client waits for a datagram: its length, or -1 if none came. */
static ssize_t await_reply(struct ev_loop *loop, int fd, uint8_t *buf, size_t cap, uint16_t *from_port, double seconds)
{
    for (int i = 0; i < (int)(seconds / 0.02); i++) {
        run_for(loop, 0.02);
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(fd, buf, cap, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (n >= 0) {
            *from_port = ntohs(from.sin_port);
            return n;
        }
    }
    return -1;
}

/* libtorrent's SYN: version 1, no extension, connection id `id`, seq_nr 0x0102. */
static size_t syn(uint8_t *p, uint16_t id)
{
    memset(p, 0, 30);
    p[0] = 0x41, p[2] = (uint8_t)(id >> 8), p[3] = (uint8_t)id, p[16] = 0x01, p[17] = 0x02;
    p[12] = 0x00, p[13] = 0x10; /* wnd 1 MiB */
    return 20;
}

Test(real_udp, a_utp_syn_is_accepted_and_syns_over_the_bounds_get_the_reset)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_real *r = start(loop, 0);
    uint16_t port = hk_listener_port(hk_real_listener(r));
    hk_udp_port *u = hk_real_udp_port(r);
    cr_assert_not_null(u);
    cr_assert_eq(hk_udp_port_port(u), port, "the listener's bound port");
    cr_assert_eq(hk_udp_port_family(u), HK_FAMILY_V4, "the listener's address family");
    int c = udp_client();
    uint8_t q[64], a[64];
    uint16_t from = 0;
    hk_utp_header h;
    /* 8 connections from one address are accepted: each SYN answered by an ST_STATE with its id */
    for (uint16_t i = 0; i < 8; i++) {
        send_to(c, port, q, syn(q, (uint16_t)(0xbe00 + 2 * i)));
        ssize_t n = await_reply(loop, c, a, sizeof a, &from, 2.0);
        cr_assert_eq(n, HK_UTP_HEADER);
        cr_assert_eq(from, port, "the reply comes from the port the SYN went to");
        cr_assert_eq(hk_utp_parse(a, (size_t)n, &h), HK_UTP_OK);
        cr_assert_eq(h.type, HK_UTP_ST_STATE);
        cr_assert_eq(h.connection_id, 0xbe00 + 2 * i);
        cr_assert_eq(h.ack_nr, 0x0102);
    }
    hk_utp_bridge_stats bs;
    cr_assert(hk_real_utp_bridge_stats(r, &bs));
    cr_assert_eq(bs.accepted, 8);
    cr_assert_eq(bs.active, 8);
    /* the 9th is over the per-address bound: the reset responder's policy (a reset to libtorrent's SYN) */
    send_to(c, port, q, syn(q, 0xbeef));
    ssize_t n = await_reply(loop, c, a, sizeof a, &from, 2.0);
    cr_assert_eq(n, HK_UTP_HEADER);
    cr_assert_eq(hk_utp_parse(a, (size_t)n, &h), HK_UTP_OK);
    cr_assert_eq(h.type, HK_UTP_ST_RESET);
    cr_assert_eq(h.connection_id, 0xbeef);
    hk_utp_stats s;
    cr_assert(hk_real_utp_stats(r, &s));
    cr_assert_eq(s.syn, 1, "only the refused SYN reached the responder");
    cr_assert_eq(s.resets, 1);
    cr_assert(hk_real_utp_bridge_stats(r, &bs));
    cr_assert_eq(bs.refused, 1);
    /* libutp's SYN over the bound, an unknown ST_STATE and a KRPC query get nothing */
    syn(q, 0x7000);
    q[1] = 2, q[20] = 0, q[21] = 8;
    send_to(c, port, q, 30);
    q[0] = 0x21;
    q[1] = 0;
    send_to(c, port, q, 20);
    send_to(c, port, (const uint8_t *)"d1:ad2:id20:", 12);
    cr_assert_eq(await_reply(loop, c, a, sizeof a, &from, 0.3), -1);
    cr_assert(hk_real_utp_stats(r, &s));
    cr_assert_eq(s.libutp_syn, 1);
    cr_assert_eq(s.ignored, 1);
    hk_udp_port_stats us;
    hk_udp_port_stats_get(u, &us);
    cr_assert_eq(us.received[HK_UDP_KRPC], 1);
    cr_assert_eq(us.dropped_unhandled, 1, "KRPC is the DHT's: unhandled here");
    close(c);
    hk_real_free(r);
    ev_loop_destroy(loop);
}

/* ---- a uTP client (core/utp_conn, dialling side) against the runtime: the stream reaches the seeder ---- */

typedef struct client {
    int fd;
    uint16_t port;
    uint8_t got[256];
    size_t got_len;
    bool eof, closed;
} client;

static void cl_send(void *ctx, const uint8_t *pkt, size_t len)
{
    client *cl = ctx;
    send_to(cl->fd, cl->port, pkt, len);
}

static void cl_deliver(void *ctx, const uint8_t *d, size_t len)
{
    client *cl = ctx;
    if (!d) {
        cl->eof = true;
        return;
    }
    size_t n = len < sizeof cl->got - cl->got_len ? len : sizeof cl->got - cl->got_len;
    memcpy(cl->got + cl->got_len, d, n);
    cl->got_len += n;
}

static size_t cl_room(void *ctx)
{
    (void)ctx;
    return 65536;
}

static void cl_closed(void *ctx, hk_utp_close_reason why)
{
    (void)why;
    ((client *)ctx)->closed = true;
}

Test(real_udp, a_utp_stream_reaches_the_seeder_and_its_close_comes_back_as_fin)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_real *r = start(loop, 0);
    client cl = { .fd = udp_client(), .port = hk_listener_port(hk_real_listener(r)) };
    static const hk_utp_conn_ops ops = { .send = cl_send, .deliver = cl_deliver, .room = cl_room,
                                         .closed = cl_closed };
    hk_utp_conn *c = hk_utp_conn_new(NULL, &ops, &cl);
    hk_utp_conn_connect(c, 0x4000, 1, hk_clock_now());
    /* a BitTorrent handshake for a torrent hekate does not serve: the seeder reads it and closes the peer */
    uint8_t hs[68] = { 19 };
    memcpy(hs + 1, "BitTorrent protocol", 19);
    memset(hs + 28, 0xab, 20);
    memcpy(hs + 48, "-XX0000-000000000000", 20);
    cr_assert_eq(hk_utp_conn_write(c, hs, sizeof hs, hk_clock_now()), sizeof hs);
    for (int i = 0; i < 200 && !cl.eof; i++) {
        run_for(loop, 0.01);
        uint8_t buf[2048];
        ssize_t n;
        while ((n = recv(cl.fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
            hk_utp_conn_input(c, buf, (size_t)n, hk_clock_now());
        if (hk_utp_conn_deadline(c) <= hk_clock_now())
            hk_utp_conn_tick(c, hk_clock_now());
    }
    cr_assert_eq(hk_utp_conn_state(c), HK_UTP_CONNECTED, "the SYN was answered");
    hk_utp_bridge_stats bs;
    cr_assert(hk_real_utp_bridge_stats(r, &bs));
    cr_assert_eq(bs.accepted, 1);
    cr_assert_eq(bs.bytes_received, sizeof hs, "the handshake went through the bridge");
    hk_stats st;
    hk_seeder_stats(hk_real_seeder(r), &st);
    cr_assert_eq(st.peers_refused, 0, "the seeder took the bridged connection");
    cr_assert_eq(st.peers, 0, "and closed it");
    cr_assert(cl.eof, "the seeder closed the peer (unknown torrent): a FIN came back");
    hk_utp_conn_shutdown(c, hk_clock_now());
    for (int i = 0; i < 100 && bs.active; i++) {
        run_for(loop, 0.01);
        uint8_t buf[2048];
        ssize_t n;
        while ((n = recv(cl.fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
            hk_utp_conn_input(c, buf, (size_t)n, hk_clock_now());
        hk_real_utp_bridge_stats(r, &bs);
    }
    cr_assert_eq(bs.active, 0, "both FINs: the bridge's connection is gone");
    hk_utp_conn_free(c);
    close(cl.fd);
    hk_real_free(r);
    ev_loop_destroy(loop);
}

Test(real_udp, no_udp_port_without_a_listener)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_real_opts o;
    hk_real_opts_default(&o);
    o.listen = false;
    char err[256] = "";
    hk_real *r = hk_real_new(loop, &o, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    cr_assert_null(hk_real_udp_port(r));
    hk_utp_stats s;
    cr_assert_not(hk_real_utp_stats(r, &s));
    hk_real_free(r);
    ev_loop_destroy(loop);
}

Test(real_udp, a_taken_udp_port_leaves_tcp_serving)
{
    /* a UDP socket takes a port first; hekate's TCP listener binds that port number, its UDP port cannot. The TCP
     * port of that number may be in use by another test's connection meanwhile: then another UDP port is taken. */
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_log_set_level(HK_LOG_ERROR);
    hk_real *r = NULL;
    int taken = -1;
    uint16_t port = 0;
    char err[512] = "";
    for (int attempt = 0; attempt < 20 && r == NULL; attempt++) {
        if (taken >= 0)
            close(taken);
        taken = udp_client();
        struct sockaddr_in a;
        socklen_t al = sizeof a;
        cr_assert_eq(getsockname(taken, (struct sockaddr *)&a, &al), 0);
        port = ntohs(a.sin_port);
        hk_real_opts o;
        hk_real_opts_default(&o);
        o.listener.port = port;
        o.listener.bind_addr = "127.0.0.1";
        r = hk_real_new(loop, &o, err, sizeof err);
    }
    cr_assert_not_null(r, "%s", err);
    cr_assert_eq(hk_listener_port(hk_real_listener(r)), port);
    cr_assert_null(hk_real_udp_port(r), "UDP could not be bound: none, and no error");
    int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(connect(t, (struct sockaddr *)&to, sizeof to), 0, "TCP is served: %s", strerror(errno));
    close(t);
    close(taken);
    hk_real_free(r);
    ev_loop_destroy(loop);
}
