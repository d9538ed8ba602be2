/* listener: the TCP listening socket of the real backend, on a libev loop.
 *
 * Contract
 * --------
 * hk_listener_new opens one listening socket. With HK_FAMILY_ANY it is an IPv6 socket with IPV6_V6ONLY=0 (dual
 * stack: IPv4 peers arrive as ::ffff:a.b.c.d); if the host has no IPv6 (socket, option or bind refused with an
 * address-family error), it falls back to an IPv4 socket and says so (hk_listener_family returns HK_FAMILY_V4 and
 * hk_listener_fell_back true). HK_FAMILY_V4 / HK_FAMILY_V6 restrict to one family (V6 sets IPV6_V6ONLY=1). The socket
 * has SO_REUSEADDR, is non-blocking and close-on-exec, and listens with a backlog of at least SOMAXCONN.
 *
 * Accepting: on each readable event, accept4(NONBLOCK|CLOEXEC) is called in a loop, at most `batch` times, until
 * EAGAIN. Each accepted socket gets SO_KEEPALIVE (and TCP_NODELAY unless disabled) and is handed to the callback,
 * which owns it from then on. Running out of descriptors (EMFILE/ENFILE) never makes the loop spin: the listener
 * closes its reserve descriptor, accepts and closes the oldest pending connection (so that peer learns at once
 * instead of waiting in the backlog), reopens the reserve, and stops accepting for `pause` seconds (default 0.1).
 * Other transient errors (ECONNABORTED, EPROTO, ENOBUFS, ENOMEM, EPERM) end the batch; the next event retries.
 * Descriptor reserve (fd_cap, issue 14): before the limit is reached, an accepted socket whose descriptor number is
 * fd_cap or more is closed at once (counted in refused_reserve): descriptors are allocated lowest-first, so every one
 * below it is in use and the rest is kept for disk work (data files, page-in jobs; fd_budget.h computes the cap).
 *
 * hk_raise_fd_limit() raises the soft RLIMIT_NOFILE to the hard limit (call it once at start-up).
 */
#ifndef HEKATE_LISTENER_H
#define HEKATE_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "runtime.h"

struct ev_loop;
typedef struct hk_listener hk_listener;

typedef enum hk_family { HK_FAMILY_ANY = 0, HK_FAMILY_V4 = 4, HK_FAMILY_V6 = 6 } hk_family;

/* Receives each accepted socket (non-blocking, close-on-exec); the callee owns fd. */
typedef void (*hk_accept_fn)(void *arg, int fd, const hk_addr *from);

typedef struct hk_listener_opts {
    uint16_t port;          /* 0: the kernel picks one (hk_listener_port tells which) */
    hk_family family;
    const char *bind_addr;  /* NULL: the wildcard address of the family; else a numeric IPv4 or IPv6 address */
    int backlog;            /* default 4096 (raised to SOMAXCONN if that is larger) */
    unsigned batch;         /* accept4 calls per readable event (default 64) */
    double pause;           /* seconds without accepting after EMFILE/ENFILE (default 0.1) */
    bool no_nodelay;        /* leave Nagle's algorithm on for accepted sockets */
    bool test_no_ipv6;      /* tests only: behave as if socket(AF_INET6) failed with EAFNOSUPPORT */
    /* descriptor reserve (issue 14): */
    uint64_t fd_cap;        /* accepted descriptors numbered fd_cap or more are closed at once (0: no cap) */
} hk_listener_opts;

void hk_listener_opts_default(hk_listener_opts *o);

/* Returns NULL with err filled ("bind [::]:6881: Address already in use") on failure. */
hk_listener *hk_listener_new(struct ev_loop *loop, const hk_listener_opts *o, hk_accept_fn cb, void *arg,
                             char *err, size_t errlen);
void hk_listener_free(hk_listener *l);          /* stops and closes; NULL is a no-op */

uint16_t hk_listener_port(const hk_listener *l);
hk_family hk_listener_family(const hk_listener *l);   /* ANY (dual stack), V4 or V6 */
bool hk_listener_fell_back(const hk_listener *l);     /* ANY was asked and IPv6 was unavailable */

typedef struct hk_listener_stats {
    uint64_t accept_calls;   /* accept4 calls, successful or not */
    uint64_t accepted;       /* sockets handed to the callback */
    uint64_t dropped;        /* pending connections closed at once for lack of descriptors */
    uint64_t pauses;         /* times accepting was paused (EMFILE/ENFILE) */
    uint64_t refused_reserve; /* accepted and closed at once to keep the descriptor reserve (fd_cap) */
} hk_listener_stats;
void hk_listener_stats_get(const hk_listener *l, hk_listener_stats *out);

/* Converts a socket address to the core's form (v4-mapped IPv6 becomes family 4). Returns false if not IP. */
bool hk_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, hk_addr *out);
/* "1.2.3.4:80" or "[::1]:80" */
void hk_addr_format(const hk_addr *a, char *buf, size_t cap);

/* Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit (or the old one if it could not). */
unsigned long hk_raise_fd_limit(void);

#endif
