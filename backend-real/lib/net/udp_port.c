/* udp_port: the UDP socket on the listener's address and port: binding with the listener's family rules, the
 * libev watcher, batched reads into one buffer, demultiplexing by first byte to the uTP and KRPC handlers, and
 * unbuffered sends (see udp_port.h). */
#include "udp_port.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct udp_handler {
    hk_udp_recv_fn fn;
    void *arg;
} udp_handler;

struct hk_udp_port {
    struct ev_loop *loop;
    ev_io io;
    int fd;
    int af;                       /* AF_INET or AF_INET6 (dual stack unless v6only) */
    bool v6only;
    hk_family family;             /* HK_FAMILY_V4 or HK_FAMILY_V6 */
    uint16_t port;
    unsigned batch;
    udp_handler handlers[HK_UDP_CLASSES];
    hk_udp_port_stats stats;
    uint8_t buf[HK_UDP_MAX_DATAGRAM];
};

void hk_udp_port_opts_default(hk_udp_port_opts *o)
{
    memset(o, 0, sizeof *o);
    o->family = HK_FAMILY_ANY;
    o->batch = 64;
}

/* The class of a datagram by its first byte (udp_port.h); -1: unknown. */
static int classify(const uint8_t *d, size_t len)
{
    if (len == 0)
        return -1;
    if (d[0] == 'd')
        return HK_UDP_KRPC;
    if ((d[0] & 0x0f) == 1 && (d[0] >> 4) <= 4)
        return HK_UDP_UTP;
    return -1;
}

static void dispatch(hk_udp_port *u, const uint8_t *d, size_t len, const hk_addr *from)
{
    int c = classify(d, len);
    if (c < 0) {
        u->stats.dropped_unknown++;
        return;
    }
    u->stats.received[c]++;
    const udp_handler *h = &u->handlers[c];
    if (!h->fn) {
        u->stats.dropped_unhandled++;
        return;
    }
    h->fn(h->arg, d, len, from);
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    hk_udp_port *u = w->data;
    for (unsigned i = 0; i < u->batch; i++) {
        struct sockaddr_storage ss;
        struct iovec iov = { .iov_base = u->buf, .iov_len = sizeof u->buf };
        struct msghdr m = { .msg_name = &ss, .msg_namelen = sizeof ss, .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n = recvmsg(u->fd, &m, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* EAGAIN: drained; ECONNREFUSED (an ICMP error for an earlier send) and the rest: next event */
        }
        if (m.msg_flags & MSG_TRUNC) {
            u->stats.dropped_oversize++;
            continue;
        }
        hk_addr from;
        if (!hk_addr_from_sockaddr((struct sockaddr *)&ss, m.msg_namelen, &from)) {
            u->stats.dropped_unknown++;
            continue;
        }
        dispatch(u, u->buf, (size_t)n, &from);
    }
}

/* The socket address for `a` on this socket's family (IPv4 becomes v4-mapped on a dual-stack IPv6 socket).
 * Its length, or 0 when the socket cannot reach that family. */
static socklen_t to_sockaddr(const hk_udp_port *u, const hk_addr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (u->af == AF_INET) {
        if (a->family != 4)
            return 0;
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(a->port);
        memcpy(&s4->sin_addr, a->ip, 4);
        return sizeof *s4;
    }
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(a->port);
    if (a->family == 4) {
        if (u->v6only)
            return 0;
        s6->sin6_addr.s6_addr[10] = 0xff;
        s6->sin6_addr.s6_addr[11] = 0xff;
        memcpy(s6->sin6_addr.s6_addr + 12, a->ip, 4);
    } else if (a->family == 6) {
        memcpy(s6->sin6_addr.s6_addr, a->ip, 16);
    } else {
        return 0;
    }
    return sizeof *s6;
}

int hk_udp_port_send(hk_udp_port *u, const uint8_t *data, size_t len, const hk_addr *to)
{
    struct sockaddr_storage ss;
    socklen_t sl = to_sockaddr(u, to, &ss);
    if (sl == 0 || len > HK_UDP_MAX_DATAGRAM) {
        u->stats.send_dropped++;
        return -1;
    }
    ssize_t n;
    do
        n = sendto(u->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&ss, sl);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)len) {
        u->stats.send_dropped++;
        return -1;
    }
    u->stats.sent++;
    return 0;
}

/* ---- binding: the listener's family rules (listener.h) ---- */

static bool family_unavailable(int e)
{
    return e == EAFNOSUPPORT || e == EPROTONOSUPPORT || e == EADDRNOTAVAIL;
}

/* A bound non-blocking close-on-exec UDP socket, or -1 with errno set and *stage naming the failed step. */
static int open_bound(int af, bool v6only, const unsigned char *ip, uint16_t port, const char **stage)
{
    *stage = "socket";
    int fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    if (af == AF_INET6) {
        int v = v6only ? 1 : 0;
        *stage = "setsockopt(IPV6_V6ONLY)";
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v) != 0)
            goto fail;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        if (ip)
            memcpy(&s6->sin6_addr, ip, 16);
        else
            s6->sin6_addr = in6addr_any;
        sl = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        if (ip)
            memcpy(&s4->sin_addr, ip, 4);
        else
            s4->sin_addr.s_addr = htonl(INADDR_ANY);
        sl = sizeof *s4;
    }
    *stage = "bind";
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

/* Parses the bind address for the family: 0 with *af and ip set, or -1. */
static int parse_bind(const char *s, hk_family fam, int *af, unsigned char ip[16])
{
    if (fam != HK_FAMILY_V4 && inet_pton(AF_INET6, s, ip) == 1) {
        *af = AF_INET6;
        return 0;
    }
    if (fam != HK_FAMILY_V6 && inet_pton(AF_INET, s, ip) == 1) {
        *af = AF_INET;
        return 0;
    }
    return -1;
}

/* Opens the socket of the options into u (fd, af, v6only, family). 0, or -1 with err filled. */
static int open_planned(hk_udp_port *u, const hk_udp_port_opts *o, char *err, size_t errlen)
{
    unsigned char ip[16];
    const unsigned char *bind_ip = NULL;
    int af = o->family == HK_FAMILY_V4 ? AF_INET : AF_INET6;
    bool v6only = o->family == HK_FAMILY_V6;
    if (o->bind_addr) {
        if (parse_bind(o->bind_addr, o->family, &af, ip) != 0) {
            snprintf(err, errlen, "udp bind address %s: not a numeric %s address", o->bind_addr,
                     o->family == HK_FAMILY_V4 ? "IPv4" : o->family == HK_FAMILY_V6 ? "IPv6" : "IP");
            return -1;
        }
        bind_ip = ip;
        if (af == AF_INET6 && !IN6_IS_ADDR_UNSPECIFIED((const struct in6_addr *)(const void *)ip) &&
            !IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)ip))
            v6only = true; /* a specific IPv6 address serves IPv6 only, as the listener */
    }
    const char *stage = "socket";
    int fd = open_bound(af, v6only, bind_ip, o->port, &stage);
    if (fd < 0 && af == AF_INET6 && o->family == HK_FAMILY_ANY && !o->bind_addr && family_unavailable(errno)) {
        af = AF_INET; /* no IPv6 on this host: IPv4 only, as the listener falls back */
        fd = open_bound(af, false, NULL, o->port, &stage);
    }
    if (fd < 0) {
        const char *addr = o->bind_addr ? o->bind_addr : af == AF_INET ? "0.0.0.0" : "::";
        snprintf(err, errlen, "udp %s %s%s%s:%u: %s", stage, af == AF_INET6 ? "[" : "", addr,
                 af == AF_INET6 ? "]" : "", (unsigned)o->port, strerror(errno));
        return -1;
    }
    u->fd = fd;
    u->af = af;
    u->v6only = af == AF_INET6 && v6only;
    u->family = af == AF_INET ? HK_FAMILY_V4 : HK_FAMILY_V6;
    return 0;
}

hk_udp_port *hk_udp_port_new(struct ev_loop *loop, const hk_udp_port_opts *o, char *err, size_t errlen)
{
    hk_udp_port *u = calloc(1, sizeof *u);
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (open_planned(u, o, err, errlen) != 0) {
        free(u);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    hk_addr bound;
    if (getsockname(u->fd, (struct sockaddr *)&ss, &sl) != 0 ||
        !hk_addr_from_sockaddr((struct sockaddr *)&ss, sl, &bound)) {
        snprintf(err, errlen, "udp getsockname: %s", strerror(errno));
        close(u->fd);
        free(u);
        return NULL;
    }
    u->loop = loop;
    u->port = bound.port;
    u->batch = o->batch ? o->batch : 64;
    ev_io_init(&u->io, read_cb, u->fd, EV_READ);
    u->io.data = u;
    ev_io_start(loop, &u->io);
    return u;
}

void hk_udp_port_free(hk_udp_port *u)
{
    if (!u)
        return;
    ev_io_stop(u->loop, &u->io);
    close(u->fd);
    free(u);
}

void hk_udp_port_set_handler(hk_udp_port *u, hk_udp_class c, hk_udp_recv_fn fn, void *arg)
{
    if ((unsigned)c >= HK_UDP_CLASSES)
        return;
    u->handlers[c].fn = fn;
    u->handlers[c].arg = fn ? arg : NULL;
}

uint16_t hk_udp_port_port(const hk_udp_port *u)
{
    return u->port;
}

hk_family hk_udp_port_family(const hk_udp_port *u)
{
    return u->family;
}

void hk_udp_port_stats_get(const hk_udp_port *u, hk_udp_port_stats *s)
{
    *s = u->stats;
}
