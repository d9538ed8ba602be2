/* trackers_udp: owns the IPv4 and IPv6 UDP sockets used for UDP trackers and their libev watchers (see
 * trackers_udp.h). */
#include "trackers_udp.h"

#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"

typedef struct side {
    ev_io io;
    int fd;
    uint16_t port;
    bool failed;                 /* could not be opened: do not retry on every send */
} side;

struct hk_udp_trackers {
    struct ev_loop *loop;
    hk_udp_recv_fn cb;
    void *arg;
    side v4, v6;
    hk_udp_trackers_stats st;
};

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    hk_udp_trackers *u = w->data;
    uint8_t buf[HK_UDP_TRACKERS_MAX_DATAGRAM];
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        ssize_t n = recvfrom(w->fd, buf, sizeof buf, MSG_TRUNC, (struct sockaddr *)&ss, &sl);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* EAGAIN, or an ICMP error queued on the socket: nothing more to read now */
        }
        if ((size_t)n > sizeof buf) {
            u->st.truncated++;
            continue;
        }
        hk_addr from;
        if (!hk_addr_from_sockaddr((struct sockaddr *)&ss, sl, &from))
            continue;
        u->st.received++;
        u->cb(u->arg, &from, buf, (size_t)n);
    }
}

static int open_side(hk_udp_trackers *u, side *s, int family)
{
    if (s->fd >= 0)
        return 0;
    if (s->failed) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    if (family == AF_INET6) {
        int one = 1;
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
            goto fail;
        struct sockaddr_in6 a6;
        memset(&a6, 0, sizeof a6);
        a6.sin6_family = AF_INET6;
        a6.sin6_addr = in6addr_any;
        if (bind(fd, (struct sockaddr *)&a6, sizeof a6) != 0)
            goto fail;
    } else {
        struct sockaddr_in a4;
        memset(&a4, 0, sizeof a4);
        a4.sin_family = AF_INET;
        a4.sin_addr.s_addr = htonl(INADDR_ANY);
        if (bind(fd, (struct sockaddr *)&a4, sizeof a4) != 0)
            goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        s->port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                          : ((struct sockaddr_in6 *)&ss)->sin6_port);
    s->fd = fd;
    ev_io_init(&s->io, read_cb, fd, EV_READ);
    s->io.data = u;
    ev_io_start(u->loop, &s->io);
    hk_log(HK_LOG_DEBUG, "UDP tracker socket (IPv%d) on port %u", family == AF_INET ? 4 : 6, (unsigned)s->port);
    return 0;
fail:;
    int e = errno;
    if (fd >= 0)
        close(fd);
    s->failed = true;
    hk_log(HK_LOG_WARN, "cannot open a UDP socket for IPv%d trackers: %s", family == AF_INET ? 4 : 6, strerror(e));
    errno = e;
    return -1;
}

int hk_udp_trackers_send(hk_udp_trackers *u, const hk_addr *to, const uint8_t *bytes, size_t len)
{
    side *s = to->family == 6 ? &u->v6 : &u->v4;
    if (open_side(u, s, to->family == 6 ? AF_INET6 : AF_INET) != 0) {
        u->st.send_errors++;
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    if (to->family == 6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(to->port);
        memcpy(&a6->sin6_addr, to->ip, 16);
        sl = sizeof *a6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        a4->sin_port = htons(to->port);
        memcpy(&a4->sin_addr, to->ip, 4);
        sl = sizeof *a4;
    }
    for (int tries = 0; tries < 3; tries++) {
        ssize_t n = sendto(s->fd, bytes, len, MSG_NOSIGNAL, (struct sockaddr *)&ss, sl);
        if (n >= 0) {
            u->st.sent++;
            return 0;
        }
        /* EINTR, or an ICMP error from an earlier datagram (ECONNREFUSED): this one may still go */
        if (errno != EINTR && errno != ECONNREFUSED)
            break;
    }
    u->st.send_errors++;
    return -1;
}

hk_udp_trackers *hk_udp_trackers_new(struct ev_loop *loop, hk_udp_recv_fn cb, void *arg)
{
    hk_udp_trackers *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    *u = (hk_udp_trackers){ .loop = loop, .cb = cb, .arg = arg, .v4.fd = -1, .v6.fd = -1 };
    return u;
}

void hk_udp_trackers_free(hk_udp_trackers *u)
{
    if (!u)
        return;
    side *sides[2] = { &u->v4, &u->v6 };
    for (int i = 0; i < 2; i++) {
        if (sides[i]->fd >= 0) {
            ev_io_stop(u->loop, &sides[i]->io);
            close(sides[i]->fd);
        }
    }
    free(u);
}

void hk_udp_trackers_stats_get(const hk_udp_trackers *u, hk_udp_trackers_stats *out)
{
    *out = u->st;
    out->port4 = u->v4.fd >= 0 ? u->v4.port : 0;
    out->port6 = u->v6.fd >= 0 ? u->v6.port : 0;
}
