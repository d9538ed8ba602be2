/* conn_splice: zero-copy writes of a plain send queue (net/sendq.h) for net/conn.c: vmsplice into one pipe shared by
 * all connections of a hub, then splice from the pipe into the socket (internal to net/conn.c).
 *
 * Contract
 * --------
 * A cs_pipe is one hub's: a pipe (enlarged towards 1 MiB), /dev/null to throw away what the socket did not take, and a
 * staging arena for the queue's byte items (message headers, control messages, small-file copies). The payload of
 * extent items is never copied: the pipe and then the socket hold references to the page-cache pages under the
 * pinned mappings. See the invariant at the top of conn_splice.c: bytes handed to the kernel are never rewritten.
 *
 * cs_write() writes at most cap bytes from the head of q (plain items only: it stops at the first item with a cipher)
 * to the socket fd in one vmsplice and one splice. The pipe is empty before and after every call (what the socket
 * did not take is discarded: it is still in q, not consumed, and goes out in a later call), so the shared pipe can
 * never hand one connection's bytes to another socket. Returns the bytes that reached the socket (the caller
 * consumes exactly these from q), with *offered the bytes that were in the pipe (fewer than the caller asked for
 * when the pipe filled up, or when a page further on could not be referenced: EFAULT, a file truncated under its
 * mapping, comes as an error of the next call, at the head); a return < *offered means the socket is full. -1 with
 * errno: EAGAIN (socket full, nothing written), EFAULT (the head of q lies in a mapping whose file shrank: no SIGBUS
 * is ever raised, the kernel reports it), EPIPE / ECONNRESET / ... from the socket, or ENOMEM. After a failure the
 * pipe is empty again; if it could not be emptied it is replaced, and if that fails cs_ready() turns false (the
 * caller goes back to sendmsg).
 *
 * splice() to a socket has no MSG_NOSIGNAL: cs_pipe_init() makes SIGPIPE ignored when its disposition is the default
 * (the daemon ignores it from the start anyway, early_signals.c); a program that installed a handler keeps it.
 *
 * Descriptors: 3 per hub (the pipe's two ends and /dev/null), whatever the number of connections.
 * Return codes: cs_pipe_init 0, or -1 with errno (nothing held; the hub writes with sendmsg).
 */
#ifndef HEKATE_CONN_SPLICE_H
#define HEKATE_CONN_SPLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "sendq.h"

/* Extent bytes a write must carry for the splice path to be taken (below, one sendmsg is cheaper than two calls). */
#define CS_MIN_EXTENT_BYTES 4096u

typedef struct cs_stats {
    uint64_t rounds;          /* vmsplice + splice pairs that moved something into the pipe */
    uint64_t iovecs;          /* iovecs passed to vmsplice */
    uint64_t bytes;           /* bytes spliced into sockets */
    uint64_t discarded;       /* bytes thrown away from the pipe (the socket was full; sent again later) */
    uint64_t arena_resets;    /* staging arena recycled (MADV_DONTNEED) */
    uint64_t pipe_resets;     /* pipe replaced because it could not be emptied */
} cs_stats;

typedef struct cs_pipe {
    int rfd, wfd;             /* the pipe; -1 when the splice path is off */
    int null_fd;              /* /dev/null */
    size_t pipe_bytes;        /* the pipe's capacity (F_GETPIPE_SZ) */
    uint8_t *arena;           /* staging of byte items: written once, then handed to the kernel (see conn_splice.c) */
    size_t arena_cap, arena_used;
    cs_stats st;
} cs_pipe;

int cs_pipe_init(cs_pipe *p);
void cs_pipe_free(cs_pipe *p);             /* safe on a zeroed or failed cs_pipe with rfd = wfd = null_fd = -1 */
static inline bool cs_ready(const cs_pipe *p)
{
    return p->rfd >= 0;
}

/* The extent bytes among the first cap plain bytes of q (whether the splice path is worth it). */
size_t cs_extent_bytes(const sendq *q, size_t cap);

/* See the contract. iov is scratch space for max entries. */
ssize_t cs_write(cs_pipe *p, int fd, const sendq *q, size_t cap, struct iovec *iov, int max, size_t *offered);

#endif
