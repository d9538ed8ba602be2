/* Tests of backend-real/lib/net/listener: dual-stack accept from 127.0.0.1 and ::1, the IPv4 fallback, -4 / -6,
 * socket options of accepted sockets, batching, bind errors, and survival when descriptors run out (EMFILE). */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listener.h"

#define MAX_ACCEPTED 256

typedef struct accepted {
    int fds[MAX_ACCEPTED];
    hk_addr from[MAX_ACCEPTED];
    size_t n;
} accepted;

static void on_accept(void *arg, int fd, const hk_addr *from)
{
    accepted *a = arg;
    cr_assert_lt(a->n, MAX_ACCEPTED);
    a->fds[a->n] = fd;
    a->from[a->n] = *from;
    a->n++;
}

static void close_accepted(accepted *a)
{
    for (size_t i = 0; i < a->n; i++)
        close(a->fds[i]);
    a->n = 0;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    (*(unsigned *)w->data)++;
}

/* Runs the loop for `seconds`, or until *count reaches `until` (0: run the whole time). Returns the ticks (10 ms). */
static unsigned run_for(struct ev_loop *loop, double seconds, const size_t *count, size_t until)
{
    unsigned ticks = 0;
    ev_timer tick;
    ev_timer_init(&tick, tick_cb, 0.01, 0.01);
    tick.data = &ticks;
    ev_timer_start(loop, &tick);
    ev_now_update(loop);
    ev_tstamp end = ev_now(loop) + seconds;
    while (ev_now(loop) < end) {
        if (count && until && *count >= until)
            break;
        ev_run(loop, EVRUN_ONCE);
    }
    ev_timer_stop(loop, &tick);
    return ticks;
}

static int connect_to(int af, const char *ip, uint16_t port)
{
    int fd = socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc;
    if (af == AF_INET) {
        struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(port) };
        inet_pton(AF_INET, ip, &s.sin_addr);
        rc = connect(fd, (struct sockaddr *)&s, sizeof s);
    } else {
        struct sockaddr_in6 s = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
        inet_pton(AF_INET6, ip, &s.sin6_addr);
        rc = connect(fd, (struct sockaddr *)&s, sizeof s);
    }
    if (rc != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static uint16_t local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
    hk_addr a;
    cr_assert(hk_addr_from_sockaddr((struct sockaddr *)&ss, sl, &a));
    return a.port;
}

/* Does this host have a usable ::1? */
static bool host_has_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 s = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    bool ok = bind(fd, (struct sockaddr *)&s, sizeof s) == 0;
    close(fd);
    return ok;
}

static hk_listener *make(struct ev_loop *loop, hk_family fam, accepted *a)
{
    hk_listener_opts o;
    hk_listener_opts_default(&o);
    o.port = 0;
    o.family = fam;
    char err[256] = "";
    hk_listener *l = hk_listener_new(loop, &o, on_accept, a, err, sizeof err);
    cr_assert_not_null(l, "listener: %s", err);
    return l;
}

Test(listener, dual_stack_accepts_ipv4_and_ipv6)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    accepted a = { .n = 0 };
    hk_listener *l = make(loop, HK_FAMILY_ANY, &a);
    uint16_t port = hk_listener_port(l);
    cr_assert_neq(port, 0);

    int c4 = connect_to(AF_INET, "127.0.0.1", port);
    cr_assert_geq(c4, 0, "connect 127.0.0.1: %s", strerror(errno));
    if (!host_has_ipv6_loopback()) {
        /* No ::1 here: the listener must have said that it fell back to IPv4, and still serve IPv4. */
        cr_assert_eq(hk_listener_family(l), HK_FAMILY_V4);
        cr_assert(hk_listener_fell_back(l));
        run_for(loop, 2.0, &a.n, 1);
        cr_assert_eq(a.n, 1);
        cr_assert_eq(a.from[0].family, 4);
        close(c4);
        close_accepted(&a);
        hk_listener_free(l);
        ev_loop_destroy(loop);
        return;
    }
    cr_assert_eq(hk_listener_family(l), HK_FAMILY_ANY, "one dual-stack socket expected");
    cr_assert_not(hk_listener_fell_back(l));
    int c6 = connect_to(AF_INET6, "::1", port);
    cr_assert_geq(c6, 0, "connect ::1: %s", strerror(errno));

    run_for(loop, 2.0, &a.n, 2);
    cr_assert_eq(a.n, 2);
    bool saw4 = false, saw6 = false;
    for (size_t i = 0; i < a.n; i++) {
        if (a.from[i].family == 4) {
            /* v4-mapped addresses are reported as IPv4 */
            const uint8_t lo4[4] = { 127, 0, 0, 1 };
            cr_assert_eq(memcmp(a.from[i].ip, lo4, 4), 0);
            cr_assert_eq(a.from[i].port, local_port(c4));
            saw4 = true;
        } else {
            cr_assert_eq(a.from[i].family, 6);
            const uint8_t lo6[16] = { [15] = 1 };
            cr_assert_eq(memcmp(a.from[i].ip, lo6, 16), 0);
            cr_assert_eq(a.from[i].port, local_port(c6));
            saw6 = true;
        }
    }
    cr_assert(saw4 && saw6);
    char buf[64];
    hk_addr_format(&a.from[0], buf, sizeof buf);
    cr_assert(strstr(buf, "127.0.0.1:") == buf || strstr(buf, "[::1]:") == buf, "%s", buf);

    close(c4);
    close(c6);
    close_accepted(&a);
    hk_listener_free(l);
    ev_loop_destroy(loop);
}

Test(listener, falls_back_to_ipv4_and_reports_it)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    accepted a = { .n = 0 };
    hk_listener_opts o;
    hk_listener_opts_default(&o);
    o.port = 0;
    o.test_no_ipv6 = true;
    char err[256] = "";
    hk_listener *l = hk_listener_new(loop, &o, on_accept, &a, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    cr_assert_eq(hk_listener_family(l), HK_FAMILY_V4);
    cr_assert(hk_listener_fell_back(l));
    int c4 = connect_to(AF_INET, "127.0.0.1", hk_listener_port(l));
    cr_assert_geq(c4, 0);
    run_for(loop, 2.0, &a.n, 1);
    cr_assert_eq(a.n, 1);
    cr_assert_eq(a.from[0].family, 4);
    /* The fallback socket is IPv4 only: ::1 on that port is not ours. */
    if (host_has_ipv6_loopback()) {
        int c6 = connect_to(AF_INET6, "::1", hk_listener_port(l));
        cr_assert_lt(c6, 0);
    }
    close(c4);
    close_accepted(&a);
    hk_listener_free(l);
    ev_loop_destroy(loop);
}

Test(listener, asking_for_ipv6_only_without_ipv6_fails_clearly)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    accepted a = { .n = 0 };
    hk_listener_opts o;
    hk_listener_opts_default(&o);
    o.port = 0;
    o.family = HK_FAMILY_V6;
    o.test_no_ipv6 = true;
    char err[256] = "";
    hk_listener *l = hk_listener_new(loop, &o, on_accept, &a, err, sizeof err);
    cr_assert_null(l);
    cr_assert(strstr(err, "socket") && strstr(err, "Address family not supported"), "%s", err);
    ev_loop_destroy(loop);
}

Test(listener, ipv4_only_refuses_ipv6)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    accepted a = { .n = 0 };
    hk_listener *l = make(loop, HK_FAMILY_V4, &a);
    cr_assert_eq(hk_listener_family(l), HK_FAMILY_V4);
    cr_assert_not(hk_listener_fell_back(l));
    uint16_t port = hk_listener_port(l);
    int c4 = connect_to(AF_INET, "127.0.0.1", port);
    cr_assert_geq(c4, 0);
    if (host_has_ipv6_loopback())
        cr_assert_lt(connect_to(AF_INET6, "::1", port), 0);
    run_for(loop, 2.0, &a.n, 1);
    cr_assert_eq(a.n, 1);
    close(c4);
    close_accepted(&a);
    hk_listener_free(l);
    ev_loop_destroy(loop);
}

Test(listener, ipv6_only_refuses_ipv4)
{
    if (!host_has_ipv6_loopback()) {
        /* Without IPv6 the -6 listener cannot exist: it must say so rather than fall back silently. */
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        accepted a = { .n = 0 };
        hk_listener_opts o;
        hk_listener_opts_default(&o);
        o.port = 0;
        o.family = HK_FAMILY_V6;
        char err[256] = "";
        cr_assert_null(hk_listener_new(loop, &o, on_accept, &a, err, sizeof err));
        cr_assert_neq(err[0], '\0');
        ev_loop_destroy(loop);
        return;
    }
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    accepted a = { .n = 0 };
    hk_listener *l = make(loop, HK_FAMILY_V6, &a);
    cr_assert_eq(hk_listener_family(l), HK_FAMILY_V6);
    uint16_t port = hk_listener_port(l);
    int c6 = connect_to(AF_INET6, "::1", port);
    cr_assert_geq(c6, 0);
    cr_assert_lt(connect_to(AF_INET, "127.0.0.1", port), 0);
    run_for(loop, 2.0, &a.n, 1);
    cr_assert_eq(a.n, 1);
    cr_assert_eq(a.from[0].family, 6);
    close(c6);
    close_accepted(&a);
    hk_listener_free(l);
    ev_loop_destroy(loop);
}

Test(listener, bind_address_and_errors)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    accepted a = { .n = 0 };
    hk_listener_opts o;
    hk_listener_opts_default(&o);
    o.port = 0;
    o.bind_addr = "127.0.0.1";
    char err[256] = "";
    hk_listener *l = hk_listener_new(loop, &o, on_accept, &a, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    cr_assert_eq(hk_listener_family(l), HK_FAMILY_V4);

    /* The same port again: bind fails, and the message names the step, the address and the reason. */
    hk_listener_opts o2 = o;
    o2.port = hk_listener_port(l);
    o2.bind_addr = "127.0.0.1";
    hk_listener *l2 = hk_listener_new(loop, &o2, on_accept, &a, err, sizeof err);
    cr_assert_null(l2);
    char want[64];
    snprintf(want, sizeof want, "bind 127.0.0.1:%u: Address already in use", (unsigned)o2.port);
    cr_assert_str_eq(err, want);

    /* Not a numeric address, or of the wrong family. */
    o2.port = 0;
    o2.bind_addr = "localhost";
    cr_assert_null(hk_listener_new(loop, &o2, on_accept, &a, err, sizeof err));
    cr_assert(strstr(err, "localhost") && strstr(err, "not a numeric"), "%s", err);
    o2.bind_addr = "::1";
    o2.family = HK_FAMILY_V4;
    cr_assert_null(hk_listener_new(loop, &o2, on_accept, &a, err, sizeof err));
    cr_assert(strstr(err, "IPv4"), "%s", err);

    hk_listener_free(l);
    hk_listener_free(NULL);
    ev_loop_destroy(loop);
}

Test(listener, accepted_sockets_are_configured)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    accepted a = { .n = 0 };
    hk_listener *l = make(loop, HK_FAMILY_ANY, &a);
    int c = connect_to(AF_INET, "127.0.0.1", hk_listener_port(l));
    cr_assert_geq(c, 0);
    run_for(loop, 2.0, &a.n, 1);
    cr_assert_eq(a.n, 1);
    int fd = a.fds[0];
    int v = 0;
    socklen_t sl = sizeof v;
    cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &sl), 0);
    cr_assert_neq(v, 0, "SO_KEEPALIVE on the accepted socket");
    v = 0;
    sl = sizeof v;
    cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &sl), 0);
    cr_assert_neq(v, 0, "TCP_NODELAY on the accepted socket");
    cr_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
    cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(c);
    close_accepted(&a);
    hk_listener_free(l);
    ev_loop_destroy(loop);
}

Test(listener, accepts_at_most_a_batch_per_event)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    accepted a = { .n = 0 };
    hk_listener_opts o;
    hk_listener_opts_default(&o);
    o.port = 0;
    o.bind_addr = "127.0.0.1";
    o.batch = 8;
    char err[256] = "";
    hk_listener *l = hk_listener_new(loop, &o, on_accept, &a, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    int clients[20];
    for (int i = 0; i < 20; i++) {
        clients[i] = connect_to(AF_INET, "127.0.0.1", hk_listener_port(l));
        cr_assert_geq(clients[i], 0);
    }
    ev_run(loop, EVRUN_ONCE);
    cr_assert_eq(a.n, 8, "one readable event accepts one batch, got %zu", a.n);
    run_for(loop, 2.0, &a.n, 20);
    cr_assert_eq(a.n, 20);
    hk_listener_stats st;
    hk_listener_stats_get(l, &st);
    cr_assert_eq(st.accepted, 20);
    cr_assert_eq(st.dropped, 0);
    for (int i = 0; i < 20; i++)
        close(clients[i]);
    close_accepted(&a);
    hk_listener_free(l);
    ev_loop_destroy(loop);
}

/* The highest open descriptor, and how many numbers below it are free (holes). */
static int highest_fd(int *holes)
{
    int hi = -1, open_count = 0;
    for (int fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) != -1) {
            hi = fd;
            open_count++;
        }
    *holes = hi + 1 - open_count;
    return hi;
}

Test(listener, survives_running_out_of_descriptors)
{
    enum { CLIENTS = 40, ROOM = 6 };
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    accepted a = { .n = 0 };
    hk_listener_opts o;
    hk_listener_opts_default(&o);
    o.port = 0;
    o.bind_addr = "127.0.0.1";
    o.pause = 0.1;
    char err[256] = "";
    hk_listener *l = hk_listener_new(loop, &o, on_accept, &a, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    int clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = connect_to(AF_INET, "127.0.0.1", hk_listener_port(l));
        cr_assert_geq(clients[i], 0, "connect: %s", strerror(errno));
    }

    struct rlimit saved;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
    struct rlimit tight = saved;
    int holes = 0;
    tight.rlim_cur = (rlim_t)highest_fd(&holes) + 1 + ROOM;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &tight), 0);
    size_t room = (size_t)(ROOM + holes); /* descriptors the listener can still get */

    /* Out of descriptors with connections pending: the loop must keep running (its timer ticks) and must not spin
     * on the readable listener (few accept4 calls), and the listener must pause and drop the oldest pending. */
    unsigned ticks = run_for(loop, 0.6, NULL, 0);
    hk_listener_stats st;
    hk_listener_stats_get(l, &st);
    cr_assert_leq(a.n, room, "accepted %zu, room %zu, holes %d limit %lu", a.n, room, holes, (unsigned long)tight.rlim_cur);
    cr_assert_geq(a.n, room - 1, "accepted %zu before running out (room %zu)", a.n, room);
    cr_assert_geq(ticks, 10, "the loop stalled: %u ticks of 10 ms in 0.6 s", ticks);
    cr_assert_geq(st.pauses, 3, "expected the accept watcher to pause, pauses=%llu", (unsigned long long)st.pauses);
    cr_assert_leq(st.pauses, 8);
    cr_assert_leq(st.accept_calls, a.n + 3 * st.pauses + 2, "accept4 spinning: %llu calls",
                  (unsigned long long)st.accept_calls);
    cr_assert_geq(st.dropped, 1);

    /* Free the descriptors: everything still pending is accepted. */
    close_accepted(&a);
    size_t before = (size_t)st.accepted;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
    size_t total_target = (size_t)(CLIENTS - st.dropped);
    size_t got = 0;
    for (int round = 0; round < 300 && before + got < total_target; round++) {
        run_for(loop, 0.02, NULL, 0);
        got += a.n;
        close_accepted(&a);
    }
    hk_listener_stats_get(l, &st);
    cr_assert_gt(st.accepted, before, "nothing accepted after descriptors were freed");
    cr_assert_eq(st.accepted + st.dropped, CLIENTS, "accepted %llu + dropped %llu != %d",
                 (unsigned long long)st.accepted, (unsigned long long)st.dropped, CLIENTS);

    /* The dropped clients were told at once: their sockets read EOF (or a reset). */
    size_t told = 0;
    for (int i = 0; i < CLIENTS; i++) {
        char b;
        ssize_t r = recv(clients[i], &b, 1, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            told++;
        close(clients[i]);
    }
    cr_assert_geq(told, st.dropped);
    hk_listener_free(l);
    ev_loop_destroy(loop);
}

Test(listener, raises_the_descriptor_limit)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    struct rlimit low = rl;
    low.rlim_cur = rl.rlim_max > 256 ? 256 : rl.rlim_max;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    unsigned long got = hk_raise_fd_limit();
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    cr_assert_eq(rl.rlim_cur, rl.rlim_max);
    cr_assert_eq(got, rl.rlim_max == RLIM_INFINITY ? (unsigned long)-1 : (unsigned long)rl.rlim_max);
}

Test(listener, addresses_convert_and_format)
{
    struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(6881) };
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &s6.sin6_addr);
    hk_addr a;
    cr_assert(hk_addr_from_sockaddr((struct sockaddr *)&s6, sizeof s6, &a));
    cr_assert_eq(a.family, 4);
    cr_assert_eq(a.port, 6881);
    char buf[64];
    hk_addr_format(&a, buf, sizeof buf);
    cr_assert_str_eq(buf, "10.1.2.3:6881");
    inet_pton(AF_INET6, "2001:db8::7", &s6.sin6_addr);
    cr_assert(hk_addr_from_sockaddr((struct sockaddr *)&s6, sizeof s6, &a));
    cr_assert_eq(a.family, 6);
    hk_addr_format(&a, buf, sizeof buf);
    cr_assert_str_eq(buf, "[2001:db8::7]:6881");
    struct sockaddr_un_like { sa_family_t f; char p[20]; } u = { .f = AF_UNIX };
    cr_assert_not(hk_addr_from_sockaddr((struct sockaddr *)&u, sizeof u, &a));
    cr_assert_not(hk_addr_from_sockaddr((struct sockaddr *)&s6, 8, &a), "short length refused");
}
