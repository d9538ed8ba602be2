/* Tests of the UDP port in backend-real/lib/real_runtime: opened on the listener's address and bound port, a
 * libtorrent-style uTP SYN answered with the reset (from that port, the SYN's connection id, acknowledging its
 * seq_nr) and counted, libutp's SYN, other uTP packets and KRPC left unanswered, no UDP port without a listener, and
 * TCP serving kept when the UDP port is taken. */
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
#include "utp_reset.h"

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

/* libtorrent's SYN: version 1, no extension, connection id 0xbeef, seq_nr 0x0102. */
static size_t syn(uint8_t *p)
{
    memset(p, 0, 30);
    p[0] = 0x41, p[2] = 0xbe, p[3] = 0xef, p[16] = 0x01, p[17] = 0x02;
    return 20;
}

Test(real_udp, a_utp_syn_on_the_listen_port_gets_a_reset)
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
    send_to(c, port, q, syn(q));
    uint16_t from = 0;
    ssize_t n = await_reply(loop, c, a, sizeof a, &from, 2.0);
    cr_assert_eq(n, HK_UTP_HEADER);
    cr_assert_eq(from, port, "the reset comes from the port the SYN went to");
    hk_utp_header h;
    cr_assert_eq(hk_utp_parse(a, (size_t)n, &h), HK_UTP_OK);
    cr_assert_eq(h.type, HK_UTP_ST_RESET);
    cr_assert_eq(h.connection_id, 0xbeef);
    cr_assert_eq(h.ack_nr, 0x0102);
    hk_utp_stats s;
    cr_assert(hk_real_utp_stats(r, &s));
    cr_assert_eq(s.syn, 1);
    cr_assert_eq(s.resets, 1);
    /* libutp's SYN (extension bits), an ST_STATE, an ST_RESET and a KRPC query get nothing */
    q[1] = 2, q[20] = 0, q[21] = 8;
    send_to(c, port, q, 30);
    q[0] = 0x21;
    q[1] = 0; /* no extension */
    send_to(c, port, q, 20);
    q[0] = 0x31;
    send_to(c, port, q, 20);
    send_to(c, port, (const uint8_t *)"d1:ad2:id20:", 12);
    cr_assert_eq(await_reply(loop, c, a, sizeof a, &from, 0.3), -1);
    cr_assert(hk_real_utp_stats(r, &s));
    cr_assert_eq(s.ignored, 2);
    cr_assert_eq(s.libutp_syn, 1);
    cr_assert_eq(s.syn, 2);
    cr_assert_eq(s.resets, 1);
    hk_udp_port_stats us;
    hk_udp_port_stats_get(u, &us);
    cr_assert_eq(us.received[HK_UDP_KRPC], 1);
    cr_assert_eq(us.dropped_unhandled, 1, "KRPC is the DHT's: unhandled here");
    close(c);
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
    /* a UDP socket takes a port first; hekate's TCP listener binds that port number, its UDP port cannot */
    int taken = udp_client();
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    cr_assert_eq(getsockname(taken, (struct sockaddr *)&a, &al), 0);
    uint16_t port = ntohs(a.sin_port);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_real *r = start(loop, port);
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
