/* listener: dual-stack TCP listening socket, batched accept4, descriptor-exhaustion survival (see listener.h). */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct hk_listener {
    struct ev_loop *loop;
    ev_io io;
    ev_timer pause_timer;
    int fd;
    int reserve_fd;          /* a spare descriptor given up to accept-and-close when out of descriptors */
    hk_family family;
    bool fell_back;
    uint16_t port;
    unsigned batch;
    double pause;
    bool nodelay;
    uint64_t fd_cap;         /* descriptor reserve for disk work: accepted descriptors from here are closed (0: none) */
    hk_accept_fn cb;
    void *arg;
    hk_listener_stats stats;
};

void hk_listener_opts_default(hk_listener_opts *o)
{
    memset(o, 0, sizeof *o);
    o->port = 6881;
    o->family = HK_FAMILY_ANY;
    o->backlog = 4096;
    o->batch = 64;
    o->pause = 0.1;
}

static int open_reserve(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

bool hk_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, hk_addr *out)
{
    memset(out, 0, sizeof *out);
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        out->family = 4;
        memcpy(out->ip, &s4->sin_addr, 4);
        out->port = ntohs(s4->sin_port);
        return true;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        out->port = ntohs(s6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            out->family = 4;
            memcpy(out->ip, s6->sin6_addr.s6_addr + 12, 4);
        } else {
            out->family = 6;
            memcpy(out->ip, s6->sin6_addr.s6_addr, 16);
        }
        return true;
    }
    return false;
}

void hk_addr_format(const hk_addr *a, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (a->family == 4) {
        inet_ntop(AF_INET, a->ip, ip, sizeof ip);
        snprintf(buf, cap, "%s:%u", ip, (unsigned)a->port);
    } else if (a->family == 6) {
        inet_ntop(AF_INET6, a->ip, ip, sizeof ip);
        snprintf(buf, cap, "[%s]:%u", ip, (unsigned)a->port);
    } else {
        snprintf(buf, cap, "?");
    }
}

unsigned long hk_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = rl;
        want.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    return rl.rlim_cur == RLIM_INFINITY ? (unsigned long)-1 : (unsigned long)rl.rlim_cur;
}

static bool family_unavailable(int e)
{
    return e == EAFNOSUPPORT || e == EPROTONOSUPPORT || e == EADDRNOTAVAIL;
}

/* Opens, configures, binds and listens. Returns the fd, or -1 with errno set and *stage naming the failed step. */
static int open_socket(int af, bool v6only, const hk_listener_opts *o, const void *bind_ip, int backlog,
                       const char **stage)
{
    *stage = "socket";
    int fd = socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1, v6only_val = v6only ? 1 : 0;
    *stage = "setsockopt(SO_REUSEADDR)";
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        goto fail;
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    if (af == AF_INET6) {
        *stage = "setsockopt(IPV6_V6ONLY)";
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only_val, sizeof v6only_val) != 0)
            goto fail;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(o->port);
        s6->sin6_addr = bind_ip ? *(const struct in6_addr *)bind_ip : in6addr_any;
        sl = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(o->port);
        if (bind_ip)
            memcpy(&s4->sin_addr, bind_ip, 4);
        else
            s4->sin_addr.s_addr = htonl(INADDR_ANY);
        sl = sizeof *s4;
    }
    *stage = "bind";
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0)
        goto fail;
    *stage = "listen";
    if (listen(fd, backlog) != 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents);

static void pause_done_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    hk_listener *l = w->data;
    if (l->reserve_fd < 0)
        l->reserve_fd = open_reserve();
    ev_io_start(loop, &l->io);
}

static void out_of_descriptors(hk_listener *l)
{
    /* Give the reserve back to accept-and-close the oldest pending connection, then rest for a moment so the loop
     * does not spin on a readable listener it cannot serve. */
    if (l->reserve_fd >= 0) {
        close(l->reserve_fd);
        l->reserve_fd = -1;
        l->stats.accept_calls++;
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            close(fd);
            l->stats.dropped++;
        }
        l->reserve_fd = open_reserve();
    }
    l->stats.pauses++;
    ev_io_stop(l->loop, &l->io);
    ev_timer_set(&l->pause_timer, l->pause, 0.);
    ev_timer_start(l->loop, &l->pause_timer);
}

static void setup_accepted(const hk_listener *l, int fd)
{
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    if (l->nodelay)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    hk_listener *l = w->data;
    for (unsigned i = 0; i < l->batch; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        l->stats.accept_calls++;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EMFILE || errno == ENFILE)
                out_of_descriptors(l);
            /* EAGAIN: drained. ECONNABORTED, EPROTO, ENOBUFS, ENOMEM, EPERM: give up this round. */
            return;
        }
        if (l->fd_cap && (uint64_t)fd >= l->fd_cap) {
            /* Descriptors are lowest-first: every one below fd is in use, so fewer than the reserve are left for the
             * data files and page-in jobs. The peer learns at once (a reset, not a wait in the backlog). */
            close(fd);
            l->stats.refused_reserve++;
            continue;
        }
        hk_addr from;
        if (!hk_addr_from_sockaddr((struct sockaddr *)&ss, sl, &from)) {
            close(fd);
            continue;
        }
        setup_accepted(l, fd);
        l->stats.accepted++;
        l->cb(l->arg, fd, &from);
    }
}

static int parse_bind(const char *s, hk_family fam, int *af, unsigned char ip[16])
{
    if (inet_pton(AF_INET6, s, ip) == 1 && fam != HK_FAMILY_V4) {
        *af = AF_INET6;
        return 0;
    }
    if (inet_pton(AF_INET, s, ip) == 1 && fam != HK_FAMILY_V6) {
        *af = AF_INET;
        return 0;
    }
    return -1;
}

/* What hk_listener_new asks of the kernel: the address family to open first, the family served, the bind address. */
typedef struct bind_plan {
    int af;                  /* AF_INET6 or AF_INET */
    hk_family got;           /* the family the listener serves */
    unsigned char ip[16];
    bool has_ip;             /* ip holds the numeric bind address */
} bind_plan;

/* Fills the plan from the options. 0, or -1 with err filled (a bind address that is not numeric for the family). */
static int plan_bind(const hk_listener_opts *o, bind_plan *p, char *err, size_t errlen)
{
    p->af = AF_INET6;
    p->got = o->family;
    p->has_ip = false;
    if (o->bind_addr) {
        if (parse_bind(o->bind_addr, o->family, &p->af, p->ip) != 0) {
            snprintf(err, errlen, "bind address %s: not a numeric %s address", o->bind_addr,
                     o->family == HK_FAMILY_V4 ? "IPv4" : o->family == HK_FAMILY_V6 ? "IPv6" : "IP");
            return -1;
        }
        p->has_ip = true;
        if (p->af == AF_INET)
            p->got = HK_FAMILY_V4;
        else if (p->got == HK_FAMILY_ANY && !IN6_IS_ADDR_UNSPECIFIED((const struct in6_addr *)(const void *)p->ip))
            p->got = HK_FAMILY_V6; /* a specific IPv6 address serves IPv6 only (unless v4-mapped) */
    } else if (o->family == HK_FAMILY_V4) {
        p->af = AF_INET;
    }
    return 0;
}

/* Opens the listening socket of the plan: IPv6 first when planned, falling back to IPv4 (plan updated, *fell_back
 * set) when IPv6 is unavailable and neither a family nor an address was asked for. The fd, or -1 with err filled. */
static int open_planned(const hk_listener_opts *o, bind_plan *p, bool *fell_back, char *err, size_t errlen)
{
    int backlog = o->backlog > 0 ? o->backlog : 4096;
    if (backlog < SOMAXCONN)
        backlog = SOMAXCONN;
    const void *bind_ip = p->has_ip ? p->ip : NULL;
    const char *stage = "socket";
    int fd = -1;
    if (p->af == AF_INET6) {
        if (o->test_no_ipv6) {
            errno = EAFNOSUPPORT;
            stage = "socket";
        } else {
            fd = open_socket(AF_INET6, p->got == HK_FAMILY_V6, o, bind_ip, backlog, &stage);
        }
        if (fd < 0 && p->got == HK_FAMILY_ANY && !o->bind_addr && family_unavailable(errno)) {
            *fell_back = true;
            p->got = HK_FAMILY_V4;
            p->af = AF_INET;
        }
    }
    if (p->af == AF_INET)
        fd = open_socket(AF_INET, false, o, bind_ip, backlog, &stage);
    if (fd < 0) {
        const char *addr = o->bind_addr ? o->bind_addr : p->af == AF_INET ? "0.0.0.0" : "::";
        snprintf(err, errlen, "%s %s%s%s:%u: %s", stage, p->af == AF_INET6 ? "[" : "", addr,
                 p->af == AF_INET6 ? "]" : "", (unsigned)o->port, strerror(errno));
    }
    return fd;
}

hk_listener *hk_listener_new(struct ev_loop *loop, const hk_listener_opts *o, hk_accept_fn cb, void *arg,
                             char *err, size_t errlen)
{
    bind_plan plan;
    bool fell_back = false;
    if (plan_bind(o, &plan, err, errlen) != 0)
        return NULL;
    int fd = open_planned(o, &plan, &fell_back, err, errlen);
    if (fd < 0)
        return NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    hk_addr bound;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
        !hk_addr_from_sockaddr((struct sockaddr *)&ss, sl, &bound)) {
        snprintf(err, errlen, "getsockname: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    hk_listener *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        return NULL;
    }
    l->loop = loop;
    l->fd = fd;
    l->reserve_fd = open_reserve();
    l->family = plan.got;
    l->fell_back = fell_back;
    l->port = bound.port;
    l->batch = o->batch ? o->batch : 64;
    l->pause = o->pause > 0 ? o->pause : 0.1;
    l->fd_cap = o->fd_cap;
    l->nodelay = !o->no_nodelay;
    l->cb = cb;
    l->arg = arg;
    ev_io_init(&l->io, accept_cb, fd, EV_READ);
    l->io.data = l;
    ev_timer_init(&l->pause_timer, pause_done_cb, l->pause, 0.);
    l->pause_timer.data = l;
    ev_io_start(loop, &l->io);
    return l;
}

void hk_listener_free(hk_listener *l)
{
    if (!l)
        return;
    ev_io_stop(l->loop, &l->io);
    ev_timer_stop(l->loop, &l->pause_timer);
    close(l->fd);
    if (l->reserve_fd >= 0)
        close(l->reserve_fd);
    free(l);
}

uint16_t hk_listener_port(const hk_listener *l)
{
    return l->port;
}

hk_family hk_listener_family(const hk_listener *l)
{
    return l->family;
}

bool hk_listener_fell_back(const hk_listener *l)
{
    return l->fell_back;
}

void hk_listener_stats_get(const hk_listener *l, hk_listener_stats *out)
{
    *out = l->stats;
}
