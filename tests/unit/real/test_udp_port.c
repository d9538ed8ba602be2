/* Tests of backend-real/lib/net/udp_port: binding (kernel-picked port, the listener's port, -4 / -6 / dual stack,
 * a numeric bind address, errors), demultiplexing by first byte to the KRPC and uTP handlers, drops counted
 * (unknown, unhandled, oversize), the read batch bound, and sends (to IPv4 on a dual-stack socket, to a family the
 * socket cannot reach). */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "udp_port.h"

typedef struct got {
    unsigned n;
    uint8_t last[HK_UDP_MAX_DATAGRAM];
    size_t last_len;
    hk_addr from;
} got;

static void on_dgram(void *arg, const uint8_t *data, size_t len, const hk_addr *from)
{
    got *g = arg;
    g->n++;
    memcpy(g->last, data, len);
    g->last_len = len;
    g->from = *from;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    (void)w;
    ev_break(loop, EVBREAK_ONE);
}

/* Runs the loop once for up to `seconds` (a readable socket is served, then the timer ends the run). */
static void run_for(struct ev_loop *loop, double seconds)
{
    ev_timer t;
    ev_timer_init(&t, tick_cb, seconds, 0.);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
}

/* A client UDP socket of family af, bound to loopback. */
static int client(int af)
{
    int fd = socket(af, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    return fd;
}

static void send_to(int fd, int af, uint16_t port, const void *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    if (af == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof *s4;
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        s6->sin6_addr = in6addr_loopback;
        sl = sizeof *s6;
    }
    cr_assert_eq(sendto(fd, buf, len, 0, (struct sockaddr *)&ss, sl), (ssize_t)len, "sendto: %s", strerror(errno));
}

static uint16_t local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
    return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                         : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static hk_udp_port *open_port(struct ev_loop *loop, hk_family fam, const char *bind_addr, uint16_t port)
{
    hk_udp_port_opts o;
    hk_udp_port_opts_default(&o);
    o.family = fam;
    o.bind_addr = bind_addr;
    o.port = port;
    char err[256] = "";
    hk_udp_port *u = hk_udp_port_new(loop, &o, err, sizeof err);
    cr_assert_not_null(u, "hk_udp_port_new: %s", err);
    return u;
}

static const uint8_t UTP_SYN[20] = { 0x41, 0, 0x12, 0x34 };

Test(udp_port, demultiplexes_by_first_byte_from_ipv4_and_ipv6)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_udp_port *u = open_port(loop, HK_FAMILY_ANY, NULL, 0);
    cr_assert_neq(hk_udp_port_port(u), 0);
    cr_assert_eq(hk_udp_port_family(u), HK_FAMILY_V6, "dual stack");
    got krpc = { 0 }, utp = { 0 };
    hk_udp_port_set_handler(u, HK_UDP_KRPC, on_dgram, &krpc);
    hk_udp_port_set_handler(u, HK_UDP_UTP, on_dgram, &utp);
    int c4 = client(AF_INET), c6 = client(AF_INET6);
    send_to(c4, AF_INET, hk_udp_port_port(u), "d1:ad2:id20:", 12);
    send_to(c4, AF_INET, hk_udp_port_port(u), UTP_SYN, sizeof UTP_SYN);
    send_to(c6, AF_INET6, hk_udp_port_port(u), UTP_SYN, sizeof UTP_SYN);
    const uint8_t junk[] = { 0x42, 1, 2 }, ver0[] = { 0x40, 0 }, type5[] = { 0x51, 0 };
    send_to(c4, AF_INET, hk_udp_port_port(u), junk, sizeof junk);
    send_to(c4, AF_INET, hk_udp_port_port(u), ver0, sizeof ver0);
    send_to(c4, AF_INET, hk_udp_port_port(u), type5, sizeof type5);
    for (int i = 0; i < 20 && krpc.n + utp.n < 3; i++)
        run_for(loop, 0.05);
    run_for(loop, 0.05);
    cr_assert_eq(krpc.n, 1);
    cr_assert_eq(krpc.last_len, 12);
    cr_assert_eq(memcmp(krpc.last, "d1:ad2:id20:", 12), 0);
    cr_assert_eq(utp.n, 2);
    cr_assert_eq(utp.last_len, 20);
    cr_assert_eq(utp.from.family, 6);
    cr_assert_eq(utp.from.port, local_port(c6));
    hk_udp_port_stats s;
    hk_udp_port_stats_get(u, &s);
    cr_assert_eq(s.received[HK_UDP_KRPC], 1);
    cr_assert_eq(s.received[HK_UDP_UTP], 2);
    cr_assert_eq(s.dropped_unknown, 3);
    cr_assert_eq(s.dropped_unhandled, 0);
    close(c4);
    close(c6);
    hk_udp_port_free(u);
    ev_loop_destroy(loop);
}

Test(udp_port, unhandled_and_oversize_are_dropped_and_counted)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_udp_port *u = open_port(loop, HK_FAMILY_V4, "127.0.0.1", 0);
    cr_assert_eq(hk_udp_port_family(u), HK_FAMILY_V4);
    got utp = { 0 };
    hk_udp_port_set_handler(u, HK_UDP_UTP, on_dgram, &utp);
    int c = client(AF_INET);
    static uint8_t big[HK_UDP_MAX_DATAGRAM + 100];
    memset(big, 0, sizeof big);
    big[0] = 0x41;
    send_to(c, AF_INET, hk_udp_port_port(u), "d1:ad2:id20:", 12);     /* no KRPC handler */
    send_to(c, AF_INET, hk_udp_port_port(u), big, sizeof big);          /* too long */
    send_to(c, AF_INET, hk_udp_port_port(u), big, HK_UDP_MAX_DATAGRAM); /* the most that fits */
    for (int i = 0; i < 10; i++)
        run_for(loop, 0.02);
    hk_udp_port_stats s;
    hk_udp_port_stats_get(u, &s);
    cr_assert_eq(s.dropped_unhandled, 1);
    cr_assert_eq(s.dropped_oversize, 1);
    cr_assert_eq(utp.n, 1);
    cr_assert_eq(utp.last_len, HK_UDP_MAX_DATAGRAM);
    hk_udp_port_set_handler(u, HK_UDP_UTP, NULL, NULL); /* handler removed: dropped from now on */
    send_to(c, AF_INET, hk_udp_port_port(u), UTP_SYN, sizeof UTP_SYN);
    for (int i = 0; i < 10; i++)
        run_for(loop, 0.02);
    hk_udp_port_stats_get(u, &s);
    cr_assert_eq(utp.n, 1);
    cr_assert_eq(s.dropped_unhandled, 2);
    close(c);
    hk_udp_port_free(u);
    ev_loop_destroy(loop);
}

Test(udp_port, reads_at_most_a_batch_per_event)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_udp_port_opts o;
    hk_udp_port_opts_default(&o);
    o.family = HK_FAMILY_V4;
    o.batch = 4;
    char err[256];
    hk_udp_port *u = hk_udp_port_new(loop, &o, err, sizeof err);
    cr_assert_not_null(u, "%s", err);
    got utp = { 0 };
    hk_udp_port_set_handler(u, HK_UDP_UTP, on_dgram, &utp);
    int c = client(AF_INET);
    for (int i = 0; i < 10; i++)
        send_to(c, AF_INET, hk_udp_port_port(u), UTP_SYN, sizeof UTP_SYN);
    usleep(20000);
    ev_run(loop, EVRUN_ONCE); /* one readable event */
    cr_assert_eq(utp.n, 4, "one event reads one batch");
    for (int i = 0; i < 10 && utp.n < 10; i++)
        run_for(loop, 0.02);
    cr_assert_eq(utp.n, 10, "the rest on the next events");
    close(c);
    hk_udp_port_free(u);
    ev_loop_destroy(loop);
}

Test(udp_port, sends_replies_to_ipv4_on_dual_stack_and_refuses_other_families)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_udp_port *u = open_port(loop, HK_FAMILY_ANY, NULL, 0);
    int c = client(AF_INET);
    struct sockaddr_in me = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(bind(c, (struct sockaddr *)&me, sizeof me), 0);
    hk_addr to = { .family = 4, .ip = { 127, 0, 0, 1 }, .port = local_port(c) };
    cr_assert_eq(hk_udp_port_send(u, (const uint8_t *)"hello", 5, &to), 0);
    char buf[16];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(c, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    cr_assert_eq(n, 5);
    cr_assert_eq(memcmp(buf, "hello", 5), 0);
    cr_assert_eq(ntohs(from.sin_port), hk_udp_port_port(u), "sent from the port itself");
    hk_addr bad = { .family = 0 };
    cr_assert_eq(hk_udp_port_send(u, (const uint8_t *)"x", 1, &bad), -1);
    hk_udp_port *v4 = open_port(loop, HK_FAMILY_V4, NULL, 0);
    hk_addr six = { .family = 6, .port = 1 };
    six.ip[15] = 1;
    cr_assert_eq(hk_udp_port_send(v4, (const uint8_t *)"x", 1, &six), -1, "an IPv4 socket cannot reach ::1");
    hk_udp_port_stats s;
    hk_udp_port_stats_get(u, &s);
    cr_assert_eq(s.sent, 1);
    cr_assert_eq(s.send_dropped, 1);
    hk_udp_port_stats_get(v4, &s);
    cr_assert_eq(s.send_dropped, 1);
    close(c);
    hk_udp_port_free(v4);
    hk_udp_port_free(u);
    ev_loop_destroy(loop);
}

Test(udp_port, binds_the_given_port_and_reports_errors)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_udp_port *a = open_port(loop, HK_FAMILY_ANY, NULL, 0);
    uint16_t port = hk_udp_port_port(a);
    hk_udp_port_opts o;
    hk_udp_port_opts_default(&o);
    o.port = port;
    char err[256] = "";
    cr_assert_null(hk_udp_port_new(loop, &o, err, sizeof err), "the port is taken");
    cr_assert(strstr(err, "udp bind") && strstr(err, "Address already in use"), "err: %s", err);
    o.bind_addr = "not-an-address";
    cr_assert_null(hk_udp_port_new(loop, &o, err, sizeof err));
    cr_assert(strstr(err, "not a numeric"), "err: %s", err);
    o.family = HK_FAMILY_V4;
    o.bind_addr = "::1";
    cr_assert_null(hk_udp_port_new(loop, &o, err, sizeof err), "an IPv6 address with -4");
    hk_udp_port_free(a);
    hk_udp_port *b = open_port(loop, HK_FAMILY_V6, "::1", port); /* free again: the same port binds */
    cr_assert_eq(hk_udp_port_port(b), port);
    cr_assert_eq(hk_udp_port_family(b), HK_FAMILY_V6);
    hk_udp_port_free(b);
    hk_udp_port_free(NULL);
    ev_loop_destroy(loop);
}
