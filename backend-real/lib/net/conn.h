/* conn: one TCP connection of the real backend: reading into a loop-wide buffer, a send queue written by writev or
 * by vmsplice + splice (zero-copy).
 *
 * Contract
 * --------
 * A hub holds what all connections of a loop share: ONE read buffer (default 64 KiB), the iovec array of a write,
 * the list of connections with output to flush, and the watermarks. A connection is small (hk_conn_size() bytes,
 * about 160 on x86-64) while idle: it has no buffer of its own. Its send queue exists only while non-empty.
 *
 * Reading: each readable event does ONE read() into the hub's buffer and hands the bytes to on_recv at once; the
 * receiver must consume or copy them before it returns (the next read overwrites them). EOF gives on_closed(BY_PEER),
 * a read or write error on_closed(ERROR, errno). A held connection's socket may have a raised SO_RCVLOWAT (read
 * coalescing, hk_conn_limits.read_coalesce): its bytes are then delivered once the batch is there, or when the hold
 * runs out (at most hold_max later), EOF and errors at once.
 *
 * Sending: hk_conn_send takes all segments in order. BYTES segments are copied into a per-connection byte area
 * (adjacent byte segments become one iovec); EXTENT segments are pinned through ops->pin (the mapping stays valid
 * until they are written or dropped, then ops->unpin) and written straight from the mapping. Nothing is written
 * inside hk_conn_send: the connection is put on the hub's flush list and written just before the loop next polls
 * (an ev_prepare watcher), so everything the core sends while handling one event goes out in one sendmsg() (a writev
 * with MSG_NOSIGNAL) of up to IOV_MAX iovecs. What the socket does not take waits for EV_WRITE; partial writes resume
 * mid-segment. A flush pass handles each connection once; work that remains keeps the loop from blocking (ev_idle).
 *
 * Encryption (MSE/PE, the seeder runtime's set_cipher): hk_conn_set_cipher(c, cipher) makes the bytes of every LATER
 * hk_conn_send pass through hk_cipher_apply(cipher) as they are written, in stream order; bytes queued before stay
 * as they were given; NULL makes later sends plain again. Each queue item remembers its cipher (the boundary is the
 * enqueue position). An encrypted range is written in chunks of at most 64 KiB: copied out of the queue (byte
 * segments and pinned mappings alike; the mappings are copied by the kernel, never read by the loop, so a truncated
 * file still gives EFAULT, not SIGBUS), encrypted in a buffer the hub shares between all its connections, written;
 * what the socket does not take stays encrypted, held by the connection, and is written first next time. Memory
 * bound per encrypted connection: the plain queue's (what flow control lets the owner queue: high_water plus the
 * last send; extents are pinned, not copied) plus at most 64 KiB held encrypted plus a 24-byte state, whatever the
 * peer does (a peer that never reads holds one chunk, not its queue); the cipher runs ahead of the socket by at most
 * those 64 KiB and never for bytes that are not written later, in order. A connection that never had a cipher takes
 * the plain path unchanged (one writev from the mappings, or the zero-copy path below). Encrypted writes are one
 * send() per chunk, up to 8 writes per flush pass.
 *
 * Zero-copy (lim.zero_copy, on by default): a plain connection's write that carries at least 4 KiB of extents is
 * made by vmsplice() of the queue's head into a pipe shared by the hub (byte segments copied first into a staging
 * arena that is never rewritten while the kernel may read it) and splice() from the pipe into the socket, at most
 * 4 rounds per turn; the payload is never copied, the socket references the page-cache pages. Only what reached the
 * socket is consumed (and its extents unpinned); what the pipe holds beyond that is thrown away and offered again
 * later, so the pipe is empty whenever another connection writes. A truncated file shows as EFAULT at the head of
 * the queue, the same fault as below. splice() raises SIGPIPE where sendmsg had MSG_NOSIGNAL: a hub with zero-copy
 * sets SIGPIPE to ignored if it was at its default. Invariants and costs: net/conn_splice.c. 3 descriptors per hub.
 *
 * Faults: a segment that cannot be pinned, or a write that fails with EFAULT (the file under a mapping was truncated:
 * the kernel reports EFAULT instead of raising SIGBUS), makes the connection report on_fault(ext, why) from the loop
 * (never from inside hk_conn_send), then on_closed(ERROR, EFAULT) unless the connection was closed meanwhile. The
 * kernel copies a writev in chunks and may fail a chunk that starts with good bytes, so after an EFAULT the
 * connection writes one segment at a time until the faulting segment is alone: on_fault names the right extent and
 * every byte before it is delivered. A segment that cannot be copied or pinned for a passing shortage (EMFILE,
 * ENFILE, ENOMEM, ENOBUFS, EAGAIN) is no fault of the data: the connection reports only on_closed(ERROR, that errno).
 * Extents of at most HK_CONN_COPY_MAX bytes are first offered to ops->copy (optional; small files): copied ones are
 * queued as bytes and hold nothing.
 *
 * Flow control (see core/seeder.h): the owner grants the first room with hk_conn_grant_room() right after creating
 * the connection. Afterwards, whenever a write leaves fewer than low_water bytes queued and at least low_water bytes
 * were written since the last grant, the connection grants room = high_water - queued through on_room. (This cannot
 * starve: if the owner used up its room while the queue is under low water, at least high_water - low_water bytes
 * were written since the grant; high_water >= 2 * low_water is enforced.)
 *
 * Closing: hk_conn_close() closes the socket at once, drops the queue (unpinning extents) and delivers no further
 * event. It may be called from inside any callback, also for the connection being served: the memory is freed only
 * at the next safe point (the hub's prepare pass), so pointers held by a running callback stay valid.
 */
#ifndef HEKATE_CONN_H
#define HEKATE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "runtime.h"
#include "seeder.h"
#include "stream_cipher.h"

struct ev_loop;
typedef struct hk_conn_hub hk_conn_hub;

typedef struct hk_conn_ops {
    void (*on_recv)(void *ctx, hk_conn *c, const uint8_t *bytes, size_t len);
    void (*on_room)(void *ctx, hk_conn *c, size_t room);
    void (*on_closed)(void *ctx, hk_conn *c, hk_close_reason why, int error); /* c is gone after this returns */
    void (*on_fault)(void *ctx, hk_conn *c, const hk_extent *ext, const char *why);
    /* Map ext: fill iov (iov_len == ext->length) and keep it valid until unpin. 0, or -1 with *why set. */
    int (*pin)(void *ctx, const hk_extent *ext, struct iovec *iov, const char **why);
    void (*unpin)(void *ctx, const hk_extent *ext);
    /* Optional (small files, store.h's hk_store_copy): copy ext (length <= HK_CONN_COPY_MAX) into buf instead of
     * pinning it. 1 copied (queued as bytes), 0 pin it instead, -1 with errno and *why set: a passing shortage
     * (EMFILE, ENFILE, ENOMEM...) closes the connection without a fault, anything else is a fault like a pin's. */
    int (*copy)(void *ctx, const hk_extent *ext, uint8_t *buf, size_t cap, const char **why);
} hk_conn_ops;
#define HK_CONN_COPY_MAX 4096u

typedef struct hk_conn_limits {
    size_t read_buffer;   /* bytes of the shared read buffer (default 64 KiB) */
    size_t high_water;    /* queued bytes the room aims at (default 256 KiB) */
    size_t low_water;     /* queue level under which room is granted again (default 64 KiB) */
    /* Fairness of the writes (issue 12, reactivity): one connection writes at most turn_quantum bytes per turn (an
     * EV_WRITE event or its turn in the flush pass; the rest waits for its next turn), and all connections together
     * at most iter_budget bytes per loop iteration, except queues of at most short_queue bytes, which the flush pass
     * writes first (a quiet peer's single block goes out before the bulk continues). 0: the default. */
    size_t turn_quantum;  /* default 256 KiB (the default high water: a full queue in one write) */
    size_t iter_budget;   /* default 512 KiB */
    size_t short_queue;   /* default 32 KiB */
    /* Write coalescing (issue 12, CPU per GiB): a connection that has shown a pipeline deeper than 2 * short_queue
     * (the most bytes queued at once so far, what the owner sent within 1 ms counting as at once: a pipeline's first
     * fill may come in several reads; its depth) does not write a queue shorter than min(depth / 2, coalesce) at
     * once: the queue waits for more requests, at most hold_max seconds, then goes out whatever its size, and the
     * depth is halved (a peer whose pipeline shrank stops waiting). Fewer, larger writes for the bulk (a peer with
     * 256 KiB outstanding gets 128 KiB writes, not one per batch of requests it happens to send); a peer that asks
     * for one block at a time (depth 16 KiB) is never held. The hold must cover the time the peer takes to ask for
     * the target: at K = 500 swarm peers each gets ~1 MB/s, 128 KiB in ~130 ms. coalesce is capped at high_water / 2
     * (the room the owner gets always covers it); hold_max <= 0 turns coalescing off. */
    size_t coalesce;      /* default 128 KiB */
    double hold_max;      /* default 0.25 s */
    /* Read coalescing (issue 12, CPU per GiB at K = 500): while a connection's queue is held, its socket's
     * SO_RCVLOWAT is raised to 7/8 of the request bytes that would bring the queue to the target (the bytes queued
     * per byte read are learned from the reads that queued at least 64 bytes per byte), so the kernel wakes the loop
     * once for the batch instead of once per request or two; the read that meets it is written in the coming flush
     * whatever its size. A queue emptied by a write is held the same way, empty. When the hold runs out the low water
     * is 1 again (the socket is read at once), the depth halves as above. Every wait stays bounded by hold_max; EOF
     * and errors wake the loop at any low water. Only connections that are held are affected: a peer that asks for
     * one block at a time never is. */
    bool read_coalesce;   /* default true */
    /* Zero-copy writes (issue 12, CPU per GiB; net/conn_splice.h): a plain connection (one that never had a cipher)
     * whose write carries at least CS_MIN_EXTENT_BYTES of extents is written by vmsplice into a pipe the hub shares
     * and splice from it into the socket: the payload goes from the page cache to the socket by reference, with no
     * copy. Encrypted connections keep their path. If the pipe cannot be made every write uses sendmsg. */
    bool zero_copy;       /* default true */
} hk_conn_limits;

void hk_conn_limits_default(hk_conn_limits *lim);

hk_conn_hub *hk_conn_hub_new(struct ev_loop *loop, const hk_conn_limits *lim, const hk_conn_ops *ops, void *ctx);
/* Closes every connection (no events) and frees the hub. */
void hk_conn_hub_free(hk_conn_hub *h);

/* Takes ownership of a connected non-blocking socket and starts reading. NULL (and fd closed) if out of memory. */
hk_conn *hk_conn_new(hk_conn_hub *h, int fd);
void hk_conn_set_user(hk_conn *c, void *user);
void *hk_conn_user(const hk_conn *c);
int hk_conn_fd(const hk_conn *c);                   /* -1 once closed */

/* Resets the flow-control accounting and returns the room to grant now: high_water - queued (0 if above). */
size_t hk_conn_grant_room(hk_conn *c);
void hk_conn_send(hk_conn *c, const hk_segment *segs, size_t nsegs);
void hk_conn_close(hk_conn *c);
size_t hk_conn_queued(const hk_conn *c);            /* bytes queued, not yet written */
/* Later sends pass through cipher (NULL: plain again); see Encryption. Out of memory fails the connection (reported
 * from the loop like a failed send). The cipher must stay valid until the connection is closed or on_closed. */
void hk_conn_set_cipher(hk_conn *c, hk_cipher *cipher);
size_t hk_conn_encrypted_held(const hk_conn *c);    /* encrypted bytes held for the next write (<= 64 KiB) */
/* For tests: copy mapped memory through the pipe fallback (as when process_vm_readv is refused). */
void hk_conn_hub_force_pipe_copy(hk_conn_hub *h, bool on);

size_t hk_conn_size(void);                          /* sizeof the per-connection struct */

typedef struct hk_conn_stats {
    uint64_t live;            /* open connections */
    uint64_t opened;
    uint64_t reads, bytes_read;
    uint64_t writes, bytes_written;   /* sendmsg calls that wrote something, and their bytes */
    uint64_t short_writes;            /* sendmsg calls that wrote less than was offered (socket buffer full) */
    uint64_t write_blocked;           /* sendmsg calls that returned EAGAIN */
    uint64_t iovecs;                  /* iovecs passed to sendmsg */
    uint64_t faults;
    uint64_t holds, holds_expired;    /* write coalescing: short queues held for more, holds that ran out */
    uint64_t holds_empty;             /* read coalescing: of the holds, emptied queues waiting for a batch */
    uint64_t lowat_sets, lowat_reads; /* SO_RCVLOWAT changes; reads that met a raised low water */
    /* MSE/PE encryption (issue 9): */
    uint64_t bytes_encrypted;         /* bytes passed through a connection's cipher */
    uint64_t encrypted_held;          /* encrypted bytes held now, not yet written (all connections) */
    /* zero-copy writes (counted in writes and bytes_written as well): */
    uint64_t splices;                 /* vmsplice + splice rounds */
    uint64_t bytes_spliced;           /* bytes that reached sockets that way */
    uint64_t splice_discarded;        /* bytes left in the pipe by a full socket, thrown away and sent again later */
} hk_conn_stats;
void hk_conn_hub_stats(const hk_conn_hub *h, hk_conn_stats *out);
/* Whether plain connections are written by the zero-copy path (lim.zero_copy, and the pipe could be made). */
bool hk_conn_hub_zero_copy(const hk_conn_hub *h);

#endif
