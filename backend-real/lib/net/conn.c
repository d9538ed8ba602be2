/* conn: per-connection read path (shared buffer), writev of the send queue (net/sendq.c), its zero-copy path on top
 * of net/conn_splice.c, the encrypted write path on top of net/conn_cipher.c and flow control (see conn.h).
 *
 * Owns the connections of a hub and three lists of them (core/list.h): every live connection (newest first), the
 * flush list (connections with output queued this iteration, in the order they queued it) and the graveyard
 * (closed connections whose memory the next prepare pass frees, last closed first).
 * Write fairness (issue 12, reactivity): per loop iteration a byte budget shared by all connections, per connection
 * turn a quantum; the prepare pass writes short queues before long ones (see hk_conn_limits).
 * Write coalescing (issue 12, CPU per GiB): a fourth list, the held connections (a short queue of a peer with a deep
 * pipeline, waiting for more; oldest hold first) and the timer of the oldest hold's end.
 */
#include "conn.h"

#include <assert.h>
#include <errno.h>
#include <ev.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn_cipher.h"
#include "conn_splice.h"
#include "list.h"
#include "sendq.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

typedef struct conn_fault {
    hk_extent ext;
    char why[160];
} conn_fault;                 /* allocated only when an extent could not be sent */

enum {
    CF_DEAD = 1u << 0,        /* closed: no more I/O, no more events; memory freed at the next sweep */
    CF_PENDING = 1u << 1,     /* on the hub's flush list */
    CF_WANT_WRITE = 1u << 2,  /* EV_WRITE is in the watcher's events */
    CF_FAILED = 1u << 3,      /* output could not be queued or written: report (fault, then on_closed) from the loop */
    CF_PROBE = 1u << 4,       /* a write hit EFAULT: write one segment at a time to find the bad one */
    CF_HELD = 1u << 5,        /* on the hub's held list: its short queue waits for more (write coalescing) */
    CF_EXPIRED = 1u << 6,     /* its hold ran out, or the raised SO_RCVLOWAT was met: the next flush writes it
                               * whatever its size */
};

struct hk_conn {
    ev_io io;                 /* fd lives here */
    hk_conn_hub *hub;
    void *user;
    sendq *q;                 /* NULL while nothing is queued */
    conn_fault *fault;        /* with CF_FAILED: the extent at fault, if any */
    cc_state *crypt;          /* NULL until the first set_cipher: plain connections never pay for encryption */
    size_t queued;
    size_t written_since_grant;
    hk_list pend;             /* on the flush list while CF_PENDING, the held list while CF_HELD; the graveyard once
                               * CF_DEAD */
    hk_list all;              /* on the hub's list of live connections */
    uint16_t flags;
    int16_t fail_errno;       /* with CF_FAILED (errno values fit) */
    uint16_t lowat;           /* read coalescing: the socket's SO_RCVLOWAT now (0: never set, the default 1) */
    uint16_t ratio;           /* read coalescing: bytes queued per byte read by bulk reads (0: not learned yet) */
    uint32_t depth;           /* write coalescing: the most bytes asked for at once (the peer's pipeline, at least) */
    uint32_t held_at;         /* with CF_HELD: when the hold began (hub_us) */
    uint32_t burst;           /* bytes queued since burst_at */
    uint32_t burst_at;        /* start of the current burst (hub_us) */
};

struct hk_conn_hub {
    struct ev_loop *loop;
    hk_conn_ops ops;
    void *ctx;
    hk_conn_limits lim;
    uint8_t *rbuf;
    struct iovec *iov;
    int iov_max;
    cc_copier copier;         /* the encrypted write path's chunk buffer (conn_cipher.h) */
    cs_pipe zc;               /* the zero-copy path's pipe and staging arena (conn_splice.h); off: rfd < 0 */
    ev_prepare prepare;
    ev_idle idle;
    hk_list pending;          /* flush list, FIFO */
    size_t npending;
    hk_list graveyard;        /* closed, freed by the next sweep */
    hk_list all;              /* live connections, newest first */
    hk_conn_stats stats;
    size_t budget;            /* bytes the connections may still write in this loop iteration (lim.iter_budget) */
    hk_list held;             /* connections whose short queue waits for more (CF_HELD), oldest hold first */
    ev_timer hold_timer;      /* the oldest hold's end */
    ev_tstamp t0;             /* hub_us counts from here */
};

void hk_conn_limits_default(hk_conn_limits *lim)
{
    lim->read_buffer = 64 * 1024;
    lim->high_water = 256 * 1024;
    lim->low_water = 64 * 1024;
    lim->turn_quantum = 256 * 1024;
    lim->iter_budget = 512 * 1024;
    lim->short_queue = 32 * 1024;
    lim->coalesce = 128 * 1024;
    lim->hold_max = 0.25;
    lim->read_coalesce = true;
    lim->zero_copy = true;
}

size_t hk_conn_size(void)
{
    return sizeof(struct hk_conn);
}

/* ---- lists ---- */

static void held_remove(hk_conn_hub *h, hk_conn *c);

static void pending_add(hk_conn_hub *h, hk_conn *c)
{
    if (c->flags & (CF_PENDING | CF_DEAD))
        return;
    held_remove(h, c);
    c->flags |= CF_PENDING;
    hk_list_insert_tail(&h->pending, &c->pend);
    h->npending++;
    if (!ev_is_active(&h->idle))
        ev_idle_start(h->loop, &h->idle);
}

static void pending_remove(hk_conn_hub *h, hk_conn *c)
{
    if (!(c->flags & CF_PENDING))
        return;
    c->flags &= (uint16_t)~CF_PENDING;
    assert(hk_list_linked(&c->pend) && h->npending > 0);
    hk_list_remove(&c->pend);
    h->npending--;
}

/* ---- write coalescing: a short queue of a peer with a deep pipeline waits for more before it is written ---- */

/* Microseconds since the hub's creation, at the loop's time (wraps after 71 minutes: only differences are used). */
static uint32_t hub_us(const hk_conn_hub *h)
{
    return (uint32_t)(uint64_t)((ev_now(h->loop) - h->t0) * 1e6);
}

/* The queue c waits for before its write: half the pipeline it has shown (the other half is still on its way to the
 * peer or in its hands), at most lim.coalesce; 0 (no waiting) for a pipeline of up to 2 * short_queue. */
static size_t hold_target(const hk_conn *c)
{
    const hk_conn_hub *h = c->hub;
    size_t half = c->depth / 2;
    if (half <= h->lim.short_queue || h->lim.coalesce == 0)
        return 0;
    return half < h->lim.coalesce ? half : h->lim.coalesce;
}

static void note_depth(hk_conn *c)
{
    if (c->queued > c->depth)
        c->depth = c->queued > UINT32_MAX ? UINT32_MAX : (uint32_t)c->queued;
}

/* n bytes were queued: what a peer asks for within BURST_US (its pipeline's first fill, a batch of requests) counts
 * as asked for at once, even if it came in several reads and writes. */
#define BURST_US 1000u
static void note_burst(hk_conn *c, size_t n)
{
    uint32_t now = hub_us(c->hub);
    if (now - c->burst_at > BURST_US) {
        c->burst_at = now;
        c->burst = 0;
    }
    c->burst = n > UINT32_MAX - c->burst ? UINT32_MAX : c->burst + (uint32_t)n;
    if (c->burst > c->depth)
        c->depth = c->burst;
}

static void held_remove(hk_conn_hub *h, hk_conn *c)
{
    if (!(c->flags & CF_HELD))
        return;
    c->flags &= (uint16_t)~CF_HELD;
    hk_list_remove(&c->pend);
    if (hk_list_empty(&h->held))
        ev_timer_stop(h->loop, &h->hold_timer);
}

static void hold_timer_arm(hk_conn_hub *h)
{
    hk_list *first = hk_list_first(&h->held);
    if (!first || ev_is_active(&h->hold_timer))
        return;
    const hk_conn *c = HK_LIST_ENTRY(first, hk_conn, pend);
    uint32_t age = hub_us(h) - c->held_at;
    double left = h->lim.hold_max - age / 1e6;
    ev_timer_set(&h->hold_timer, left > 0 ? left : 0, 0);
    ev_timer_start(h->loop, &h->hold_timer);
}

/* ---- read coalescing: while a hold waits for requests, the socket's SO_RCVLOWAT waits for them too ---- */

#define RATIO_MIN 64u     /* a read that made the owner queue fewer bytes per byte read was not a batch of requests */
#define LOWAT_MAX 4096u

/* A read of r bytes made the owner queue t bytes: learn how many bytes a byte of requests asks for. The estimate
 * follows a higher sample at once and a lower one by 1/8: the low water it gives errs towards waking early. */
static void note_ratio(hk_conn *c, size_t r, size_t t)
{
    if (r == 0 || t / r < RATIO_MIN)
        return;
    size_t x = t / r > UINT16_MAX ? UINT16_MAX : t / r;
    if (x >= c->ratio)
        c->ratio = (uint16_t)x;
    else
        c->ratio = (uint16_t)(c->ratio - c->ratio / 8 + x / 8);
}

/* SO_RCVLOWAT = v (1: every byte wakes the loop again). One setsockopt when it changes; a failure keeps the old
 * value (the hold's timer bounds the wait either way). */
static void set_lowat(hk_conn *c, unsigned v)
{
    unsigned cur = c->lowat ? c->lowat : 1;
    if (v == cur || c->io.fd < 0)
        return;
    int iv = (int)v;
    c->hub->stats.lowat_sets++;
    if (setsockopt(c->io.fd, SOL_SOCKET, SO_RCVLOWAT, &iv, sizeof iv) == 0)
        c->lowat = (uint16_t)v;
}

/* The low water for a hold that still needs `need` queued bytes: 7/8 of the request bytes that ask for them at the
 * learned ratio (a few bytes of other messages, a short block, must not leave it short), 1 when unknown or tiny. */
static unsigned lowat_for(const hk_conn *c, size_t need)
{
    if (c->ratio == 0 || !c->hub->lim.read_coalesce)
        return 1;
    size_t v = need / 8 * 7 / c->ratio;
    return v < 2 ? 1 : v > LOWAT_MAX ? LOWAT_MAX : (unsigned)v;
}

/* c (off the flush list, its queue short of target) waits on the held list, and its socket for the requests that
 * would fill the queue. */
static void hold_start(hk_conn_hub *h, hk_conn *c, size_t target)
{
    c->flags |= CF_HELD;
    c->held_at = hub_us(h);
    h->stats.holds++;
    hk_list_insert_tail(&h->held, &c->pend);
    hold_timer_arm(h);
    set_lowat(c, lowat_for(c, target - c->queued));
}

/* In the flush pass, c (just taken off the flush list) waits for more instead of being written: true if it was put on
 * the held list. Not when it failed, waits for EV_WRITE, its hold ran out, or its queue reached the target. */
static bool hold(hk_conn_hub *h, hk_conn *c)
{
    note_depth(c);
    size_t target = hold_target(c);
    if ((c->flags & (CF_FAILED | CF_WANT_WRITE | CF_EXPIRED | CF_DEAD)) || c->queued == 0 || c->queued >= target)
        return false;
    pending_remove(h, c);
    hold_start(h, c, target);
    return true;
}

/* After a write that emptied c's queue: when the next batch of requests can be waited for (a deep pipeline, a
 * learned ratio), the socket's low water is raised for it and c waits on the held list, empty, so that the hold's
 * end lowers the water again if the batch does not come; else the low water is 1 again. */
static void hold_empty(hk_conn_hub *h, hk_conn *c)
{
    size_t target = hold_target(c);
    if (target > 0 && !(c->flags & (CF_FAILED | CF_DEAD | CF_HELD | CF_PENDING)) && lowat_for(c, target) > 1) {
        hold_start(h, c, target);
        h->stats.holds_empty++;
    } else {
        set_lowat(c, 1);
    }
}

/* The oldest holds ran out: their queues are written in the coming flush pass, and the pipeline they waited for is
 * taken to be half as deep from now on (a peer that asks for less does not wait again and again). */
static void hold_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    hk_conn_hub *h = w->data;
    uint32_t now = hub_us(h), max = (uint32_t)(h->lim.hold_max * 1e6);
    hk_list *node;
    while ((node = hk_list_first(&h->held)) != NULL) {
        hk_conn *c = HK_LIST_ENTRY(node, hk_conn, pend);
        if (now - c->held_at < max)
            break;
        c->depth /= 2;
        h->stats.holds_expired++;
        pending_add(h, c); /* off the held list */
        c->flags |= CF_EXPIRED;
        set_lowat(c, 1); /* what came meanwhile is read now (the kernel signals it readable) */
    }
    hold_timer_arm(h);
}

/* ---- send queue ---- */

static void queue_free(hk_conn_hub *h, hk_conn *c)
{
    if (!c->q)
        return;
    sq_free(c->q, h->ops.unpin, h->ctx);
    c->q = NULL;
    c->queued = 0;
}

/* Marks the connection failed; with an extent, the fault is reported to the owner before the close. */
static void set_failed(hk_conn *c, int err, const hk_extent *ext, const char *why)
{
    if (c->flags & CF_FAILED)
        return;
    c->flags |= CF_FAILED;
    c->fail_errno = (int16_t)err;
    if (ext) {
        c->fault = calloc(1, sizeof *c->fault);
        if (c->fault) { /* without memory the close is still reported, only without the fault */
            c->fault->ext = *ext;
            snprintf(c->fault->why, sizeof c->fault->why, "%s", why ? why : "unreadable data");
        }
    }
}

/* ---- watcher ---- */

static void set_write_interest(hk_conn *c, bool on)
{
    bool has = (c->flags & CF_WANT_WRITE) != 0;
    if (has == on)
        return;
    struct ev_loop *loop = c->hub->loop;
    ev_io_stop(loop, &c->io);
    ev_io_set(&c->io, c->io.fd, EV_READ | (on ? EV_WRITE : 0));
    ev_io_start(loop, &c->io);
    if (on)
        c->flags |= CF_WANT_WRITE;
    else
        c->flags &= (uint16_t)~CF_WANT_WRITE;
}

/* Stops I/O and releases everything but the struct itself, which goes to the graveyard. */
static void teardown(hk_conn *c)
{
    hk_conn_hub *h = c->hub;
    c->flags |= CF_DEAD;
    pending_remove(h, c);
    held_remove(h, c);
    ev_io_stop(h->loop, &c->io);
    if (c->io.fd >= 0) {
        close(c->io.fd);
        c->io.fd = -1;
    }
    queue_free(h, c);
    free(c->fault);
    c->fault = NULL;
    h->stats.encrypted_held -= cc_held(c->crypt);
    cc_state_free(c->crypt);
    c->crypt = NULL;
    hk_list_remove(&c->all);
    hk_list_insert_head(&h->graveyard, &c->pend);
    h->stats.live--;
}

static void close_with(hk_conn *c, hk_close_reason why, int err)
{
    if (c->flags & CF_DEAD)
        return;
    teardown(c);
    c->hub->ops.on_closed(c->hub->ctx, c, why, err);
}

/* Reports a failure: the fault first (the owner may close the connection from on_fault; then nothing more is
 * reported), then on_closed(ERROR). */
static void report_failure(hk_conn *c)
{
    hk_conn_hub *h = c->hub;
    if (c->fault) {
        conn_fault f = *c->fault;
        free(c->fault);
        c->fault = NULL;
        h->stats.faults++;
        h->ops.on_fault(h->ctx, c, &f.ext, f.why);
    }
    close_with(c, HK_CLOSED_ERROR, c->fail_errno);
}

/* ---- writing ---- */

static void consume(hk_conn *c, size_t n)
{
    assert(c->q != NULL && n <= c->queued);
    c->queued -= n;
    c->written_since_grant += n;
    sq_consume(c->q, n, c->hub->ops.unpin, c->hub->ctx);
}

static void maybe_grant(hk_conn *c)
{
    hk_conn_hub *h = c->hub;
    if (c->queued < h->lim.low_water && c->written_since_grant >= h->lim.low_water) {
        c->written_since_grant = 0;
        h->ops.on_room(h->ctx, c, h->lim.high_water - c->queued);
    }
}

/* The head of the queue is an extent whose next byte cannot be read (EFAULT): report it, then close. */
static void head_vanished(hk_conn *c)
{
    const sq_item *it = sq_at(c->q, 0);
    char why[128];
    snprintf(why, sizeof why, "data vanished under the mapping (file %u at offset %llu truncated?)",
             (unsigned)it->ext.file, (unsigned long long)(it->ext.offset + it->off));
    set_failed(c, EFAULT, it->kind == SQ_EXTENT ? &it->ext : NULL, why);
    report_failure(c);
}

/* sendmsg failed with errno e: wait for room, report the extent at fault, or close. */
static void write_failed(hk_conn *c, int e)
{
    if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR) {
        c->hub->stats.write_blocked++;
        set_write_interest(c, true);
        return;
    }
    if (e == EFAULT) {
        head_vanished(c); /* one segment alone faulted: it is the bad one (a byte segment is our own memory) */
        return;
    }
    close_with(c, HK_CLOSED_ERROR, e);
}

/* Cuts the n segments of iov to at most cap bytes (cap > 0); returns how many remain, their bytes in *total. */
static int trim_iov(struct iovec *iov, int n, size_t cap, size_t *total)
{
    size_t sum = 0;
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len >= cap - sum) {
            iov[i].iov_len = cap - sum;
            *total = cap;
            return i + 1;
        }
        sum += iov[i].iov_len;
    }
    *total = sum;
    return n;
}

/* The bytes c may write in this turn: its quantum, within what is left of the iteration's budget (a short queue may
 * exceed the budget: it is written whole). */
static size_t turn_cap(const hk_conn *c)
{
    const hk_conn_hub *h = c->hub;
    if (c->queued <= h->lim.short_queue)
        return h->lim.short_queue;
    size_t cap = h->lim.turn_quantum < h->budget ? h->lim.turn_quantum : h->budget;
    return cap ? cap : 1;
}

/* One sendmsg of the plain items at the head of the queue (zero-copy from the mappings), at most cap bytes: bytes
 * written, or -1 with errno; their bytes offered in *total. */
static ssize_t write_plain(hk_conn *c, size_t cap, size_t *total)
{
    hk_conn_hub *h = c->hub;
    ssize_t w;
    for (;;) {
        int n = sq_fill_iov(c->q, h->iov, (c->flags & CF_PROBE) ? 1 : h->iov_max, total);
        n = trim_iov(h->iov, n, cap, total);
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = h->iov;
        msg.msg_iovlen = (size_t)n;
        w = sendmsg(c->io.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        h->stats.iovecs += (uint64_t)n;
        if (w >= 0 || errno != EFAULT || n == 1)
            break;
        /* EFAULT with several segments: the kernel copies in chunks and may drop good bytes with a bad chunk, so
         * the bad segment is not necessarily the first. Write one segment at a time from now on to find it. */
        c->flags |= CF_PROBE;
    }
    return w;
}

/* w of total offered bytes were written from the head of the queue. */
static void wrote(hk_conn *c, size_t w, size_t total)
{
    hk_conn_hub *h = c->hub;
    h->stats.writes++;
    h->stats.bytes_written += (uint64_t)w;
    h->budget -= w < h->budget ? w : h->budget;
    if (w < total)
        h->stats.short_writes++;
    consume(c, w);
}

/* After the writes of one flush: free an empty queue, wait for EV_WRITE while bytes remain, grant room. */
static void after_writes(hk_conn *c)
{
    c->flags &= (uint16_t)~CF_EXPIRED;
    if (c->q->icount == 0) {
        queue_free(c->hub, c);
        set_write_interest(c, false);
        hold_empty(c->hub, c);
    } else {
        set_write_interest(c, true);
    }
    maybe_grant(c);
}

/* One write of encrypted bytes: the held remainder, else a fresh chunk (conn_cipher.h). Bytes written, or -1 with
 * errno (0 with *vanished when the head extent lost its mapping); the bytes offered in *total. */
static ssize_t write_encrypted(hk_conn *c, size_t *total, bool *vanished)
{
    hk_conn_hub *h = c->hub;
    cc_state *s = c->crypt;
    size_t held = cc_held(s);
    if (held > 0) {
        *total = held;
        ssize_t w = send(c->io.fd, s->rem + s->rem_off, held, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            cc_advance(s, (size_t)w);
            h->stats.encrypted_held -= (uint64_t)w;
        }
        return w;
    }
    size_t n = cc_fill(&h->copier, c->q);
    *total = n;
    if (n == 0) {
        *vanished = true;
        return 0;
    }
    h->stats.bytes_encrypted += n;
    ssize_t w = send(c->io.fd, h->copier.buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    size_t done = w > 0 ? (size_t)w : 0;
    if (done < n) { /* encrypted already: the rest must go out next, exactly as it is */
        int e = errno;
        if (cc_keep(s, h->copier.buf + done, n - done) != 0) {
            errno = ENOMEM;
            return -1;
        }
        h->stats.encrypted_held += n - done;
        errno = e;
    }
    return w;
}

/* The write pass of a connection that has (had) a cipher: plain ranges as one writev, encrypted ones chunk by chunk,
 * until the socket is full, the queue empty or 8 writes were made (the others' turn; EV_WRITE resumes). */
static void do_write_mixed(hk_conn *c)
{
    size_t cap = turn_cap(c), done = 0;
    for (int pass = 0; pass < 8 && c->q->icount > 0 && done < cap; pass++) {
        size_t total = 0;
        bool vanished = false;
        bool plain = cc_held(c->crypt) == 0 && sq_at(c->q, 0)->cipher == NULL;
        ssize_t w = plain ? write_plain(c, cap - done, &total) : write_encrypted(c, &total, &vanished);
        if (vanished) {
            head_vanished(c);
            return;
        }
        if (w < 0) {
            if (errno == ENOMEM) {
                set_failed(c, ENOMEM, NULL, NULL);
                report_failure(c);
            } else {
                write_failed(c, errno);
            }
            return;
        }
        wrote(c, (size_t)w, total);
        done += (size_t)w;
        if ((size_t)w < total)
            break;
    }
    after_writes(c);
}

/* The write pass of a plain connection by the zero-copy path (conn_splice.h): rounds of vmsplice + splice until the
 * socket is full, the queue empty or cap bytes were written (at most 4 rounds: the pipe holds up to 1 MiB). */
static void do_write_splice(hk_conn *c, size_t cap)
{
    hk_conn_hub *h = c->hub;
    size_t done = 0;
    for (int round = 0; round < 4 && c->q->icount > 0 && done < cap && cs_ready(&h->zc); round++) {
        size_t total = 0;
        ssize_t w = cs_write(&h->zc, c->io.fd, c->q, cap - done, h->iov, h->iov_max, &total);
        if (w < 0) {
            write_failed(c, errno);
            return;
        }
        if (total == 0)
            break;
        wrote(c, (size_t)w, total);
        done += (size_t)w;
        if ((size_t)w < total)
            break;
    }
    after_writes(c);
}

static void do_write(hk_conn *c)
{
    sendq *q = c->q;
    if (!q || q->icount == 0) {
        set_write_interest(c, false);
        return;
    }
    if (c->crypt) {
        do_write_mixed(c);
        return;
    }
    size_t cap = turn_cap(c);
    if (cs_ready(&c->hub->zc) && cs_extent_bytes(q, cap) >= CS_MIN_EXTENT_BYTES) {
        do_write_splice(c, cap);
        return;
    }
    size_t total;
    ssize_t w = write_plain(c, cap, &total);
    if (w < 0) {
        write_failed(c, errno);
        return;
    }
    wrote(c, (size_t)w, total);
    after_writes(c);
}

/* ---- reading ---- */

static void do_read(hk_conn *c)
{
    hk_conn_hub *h = c->hub;
    ssize_t r = read(c->io.fd, h->rbuf, h->lim.read_buffer);
    if (r > 0) {
        h->stats.reads++;
        h->stats.bytes_read += (uint64_t)r;
        if (c->lowat > 1) { /* the batch a hold waited for: written in the coming flush, whatever its size */
            c->flags |= CF_EXPIRED;
            h->stats.lowat_reads++;
        }
        size_t q0 = c->queued;
        h->ops.on_recv(h->ctx, c, h->rbuf, (size_t)r);
        if (!(c->flags & CF_DEAD) && c->queued > q0)
            note_ratio(c, (size_t)r, c->queued - q0);
        return;
    }
    if (r == 0) {
        close_with(c, HK_CLOSED_BY_PEER, 0);
        return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return;
    close_with(c, HK_CLOSED_ERROR, errno);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    hk_conn *c = w->data;
    if (revents & EV_WRITE) {
        if (c->flags & CF_FAILED) {
            pending_remove(c->hub, c);
            report_failure(c);
        } else if (c->hub->budget > 0) {
            pending_remove(c->hub, c);
            do_write(c);
        } /* else the iteration's bytes are used up: EV_WRITE stays armed, its turn comes in the next iteration */
    }
    if ((revents & EV_READ) && !(c->flags & CF_DEAD))
        do_read(c);
}

/* ---- the prepare pass: flush what was queued during this iteration, then free closed connections ---- */

static void sweep(hk_conn_hub *h)
{
    hk_list *node;
    while ((node = hk_list_first(&h->graveyard)) != NULL) {
        hk_list_remove(node);
        free(HK_LIST_ENTRY(node, hk_conn, pend));
    }
}

/* The flush pass's turn of c, popped off the flush list: report its failure, or write (unless EV_WRITE is armed: the
 * socket is full, the event resumes it). */
static void flush_one(hk_conn_hub *h, hk_conn *c)
{
    pending_remove(h, c); /* CF_EXPIRED stays until a write (after_writes): an empty hold that ran out writes the
                           * requests read next at once */
    if (c->flags & CF_FAILED)
        report_failure(c);
    else if (!(c->flags & CF_WANT_WRITE))
        do_write(c);
}

/* The flush pass, once per loop iteration (the iteration's write budget starts here): first the short queues (a
 * single block, control messages) in the order they were queued, the others moved behind them; then the others, one
 * turn each (turn_quantum) while the budget lasts. What the budget does not cover stays on the list (FIFO) and the
 * idle watcher makes the next iteration come at once. */
static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    hk_conn_hub *h = w->data;
    h->budget = h->lim.iter_budget;
    size_t n = h->npending;
    hk_list *node;
    while (n-- > 0 && (node = hk_list_first(&h->pending)) != NULL) {
        hk_conn *c = HK_LIST_ENTRY(node, hk_conn, pend);
        if (hold(h, c))
            continue;
        if ((c->flags & (CF_FAILED | CF_WANT_WRITE)) || c->queued <= h->lim.short_queue)
            flush_one(h, c);
        else
            hk_list_move_tail(&h->pending, node); /* a long queue: after the short ones */
    }
    n = h->npending;
    while (n-- > 0 && h->budget > 0 && (node = hk_list_first(&h->pending)) != NULL)
        flush_one(h, HK_LIST_ENTRY(node, hk_conn, pend));
    if (hk_list_empty(&h->pending) && ev_is_active(&h->idle))
        ev_idle_stop(loop, &h->idle);
    sweep(h);
}

static void idle_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents; /* its only job is to keep the loop from blocking while connections wait to be flushed */
}

/* ---- public ---- */

hk_conn_hub *hk_conn_hub_new(struct ev_loop *loop, const hk_conn_limits *lim, const hk_conn_ops *ops, void *ctx)
{
    hk_conn_hub *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->loop = loop;
    h->ops = *ops;
    h->ctx = ctx;
    if (lim)
        h->lim = *lim;
    else
        hk_conn_limits_default(&h->lim);
    if (h->lim.read_buffer == 0)
        h->lim.read_buffer = 64 * 1024;
    if (h->lim.high_water == 0)
        h->lim.high_water = 256 * 1024;
    if (h->lim.low_water == 0 || h->lim.low_water > h->lim.high_water / 2)
        h->lim.low_water = h->lim.high_water / 2;
    if (h->lim.turn_quantum == 0)
        h->lim.turn_quantum = 256 * 1024;
    if (h->lim.iter_budget == 0)
        h->lim.iter_budget = 512 * 1024;
    if (h->lim.short_queue == 0)
        h->lim.short_queue = 32 * 1024;
    if (h->lim.coalesce > h->lim.high_water / 2)
        h->lim.coalesce = h->lim.high_water / 2; /* the room granted covers the target: the core can always reach it */
    if (!(h->lim.hold_max > 0))
        h->lim.coalesce = 0;
    h->budget = h->lim.iter_budget;
    hk_list_init(&h->pending);
    hk_list_init(&h->graveyard);
    hk_list_init(&h->all);
    hk_list_init(&h->held);
    h->t0 = ev_now(loop);
    h->iov_max = IOV_MAX;
    h->rbuf = malloc(h->lim.read_buffer);
    h->iov = malloc((size_t)h->iov_max * sizeof *h->iov);
    h->zc.rfd = h->zc.wfd = h->zc.null_fd = -1;
    if (h->lim.zero_copy && cs_pipe_init(&h->zc) != 0)
        h->zc.rfd = h->zc.wfd = h->zc.null_fd = -1; /* no pipe: every write goes through sendmsg */
    if (cc_copier_init(&h->copier) != 0 || !h->rbuf || !h->iov) {
        cs_pipe_free(&h->zc);
        cc_copier_free(&h->copier);
        free(h->rbuf);
        free(h->iov);
        free(h);
        return NULL;
    }
    ev_prepare_init(&h->prepare, prepare_cb);
    h->prepare.data = h;
    ev_prepare_start(loop, &h->prepare);
    ev_idle_init(&h->idle, idle_cb);
    h->idle.data = h;
    ev_timer_init(&h->hold_timer, hold_timer_cb, 0, 0);
    h->hold_timer.data = h;
    return h;
}

void hk_conn_hub_free(hk_conn_hub *h)
{
    if (!h)
        return;
    hk_list *node;
    while ((node = hk_list_first(&h->all)) != NULL)
        teardown(HK_LIST_ENTRY(node, hk_conn, all));
    sweep(h);
    ev_prepare_stop(h->loop, &h->prepare);
    ev_idle_stop(h->loop, &h->idle);
    ev_timer_stop(h->loop, &h->hold_timer);
    cs_pipe_free(&h->zc);
    cc_copier_free(&h->copier);
    free(h->rbuf);
    free(h->iov);
    free(h);
}

hk_conn *hk_conn_new(hk_conn_hub *h, int fd)
{
    hk_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return NULL;
    }
    c->hub = h;
    ev_io_init(&c->io, io_cb, fd, EV_READ);
    c->io.data = c;
    hk_list_init(&c->pend);
    hk_list_insert_head(&h->all, &c->all);
    h->stats.live++;
    h->stats.opened++;
    ev_io_start(h->loop, &c->io);
    return c;
}

void hk_conn_set_user(hk_conn *c, void *user)
{
    c->user = user;
}

void *hk_conn_user(const hk_conn *c)
{
    return c->user;
}

int hk_conn_fd(const hk_conn *c)
{
    return c->io.fd;
}

size_t hk_conn_queued(const hk_conn *c)
{
    return c->queued;
}

size_t hk_conn_grant_room(hk_conn *c)
{
    c->written_since_grant = 0;
    size_t high = c->hub->lim.high_water;
    return c->queued < high ? high - c->queued : 0;
}

static bool shortage(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOMEM || e == ENOBUFS || e == EAGAIN;
}

/* ext could not be copied or pinned (errno e): a passing shortage closes the connection without blaming the data;
 * anything else is a fault reported with the extent. */
static void extent_failed(hk_conn *c, int e, const hk_extent *ext, const char *why)
{
    if (shortage(e))
        set_failed(c, e, NULL, NULL);
    else
        set_failed(c, EIO, ext, why);
}

/* A small file's extent copied into the queue (ops.copy). 0 copied; 1 failed (the connection is failed); 2 not
 * copied (pin it); -1 if out of memory. */
static int copy_extent(hk_conn *c, const hk_extent *ext)
{
    hk_conn_hub *h = c->hub;
    if (!h->ops.copy || ext->length > HK_CONN_COPY_MAX)
        return 2;
    uint8_t buf[HK_CONN_COPY_MAX];
    const char *why = NULL;
    errno = 0;
    int rc = h->ops.copy(h->ctx, ext, buf, sizeof buf, &why);
    if (rc == 0)
        return 2;
    if (rc < 0) {
        extent_failed(c, errno, ext, why);
        return 1;
    }
    if (sq_add_bytes(c->q, buf, ext->length, c->crypt ? c->crypt->cur : NULL) != 0)
        return -1;
    c->queued += ext->length;
    return 0;
}

/* Copies (a small file) or pins ext and queues its memory. 0; 1 if it could not be pinned (the connection is failed,
 * with the fault unless it was a passing shortage); -1 if out of memory (nothing stays pinned). */
static int queue_extent(hk_conn *c, const hk_extent *ext)
{
    hk_conn_hub *h = c->hub;
    int cp = copy_extent(c, ext);
    if (cp != 2)
        return cp;
    struct iovec iov;
    const char *why = NULL;
    errno = 0;
    if (h->ops.pin(h->ctx, ext, &iov, &why) != 0) {
        extent_failed(c, errno, ext, why);
        return 1;
    }
    if (iov.iov_len != ext->length) {
        h->ops.unpin(h->ctx, ext);
        set_failed(c, EIO, ext, "mapping shorter than the extent");
        return 1;
    }
    if (sq_push_extent(c->q, ext, iov.iov_base, c->crypt ? c->crypt->cur : NULL) != 0) {
        h->ops.unpin(h->ctx, ext);
        return -1;
    }
    c->queued += ext->length;
    return 0;
}

void hk_conn_send(hk_conn *c, const hk_segment *segs, size_t nsegs)
{
    hk_conn_hub *h = c->hub;
    if (c->flags & (CF_DEAD | CF_FAILED))
        return;
    size_t before = c->queued;
    if (!c->q) {
        c->q = calloc(1, sizeof *c->q);
        if (!c->q)
            goto nomem;
    }
    for (size_t i = 0; i < nsegs; i++) {
        const hk_segment *s = &segs[i];
        int rc = 0;
        if (s->kind == HK_SEG_BYTES && s->u.bytes.len > 0) {
            rc = sq_add_bytes(c->q, s->u.bytes.ptr, s->u.bytes.len, c->crypt ? c->crypt->cur : NULL);
            if (rc == 0)
                c->queued += s->u.bytes.len;
        } else if (s->kind == HK_SEG_EXTENT && s->u.extent.length > 0) {
            rc = queue_extent(c, &s->u.extent);
        }
        if (rc < 0)
            goto nomem;
        if (rc > 0)
            break;
    }
    if (c->queued > before)
        note_burst(c, c->queued - before);
    if ((c->flags & CF_HELD) && !(c->flags & (CF_FAILED | CF_EXPIRED))) {
        note_depth(c);
        if (c->queued < hold_target(c))
            return; /* still short: it keeps waiting, its hold's end unchanged */
    }
    if ((c->flags & CF_FAILED) || (c->q && c->q->icount > 0))
        pending_add(h, c);
    return;
nomem:
    /* Cannot queue what the core sent: the stream would be corrupt. Report the connection as failed. */
    set_failed(c, ENOMEM, NULL, NULL);
    pending_add(h, c);
}

void hk_conn_set_cipher(hk_conn *c, hk_cipher *cipher)
{
    if (c->flags & (CF_DEAD | CF_FAILED))
        return;
    if (!c->crypt) {
        if (!cipher)
            return; /* plain already */
        c->crypt = calloc(1, sizeof *c->crypt);
        if (!c->crypt) {
            set_failed(c, ENOMEM, NULL, NULL); /* later sends could not be encrypted: the stream would be wrong */
            pending_add(c->hub, c);
            return;
        }
    }
    c->crypt->cur = cipher;
}

size_t hk_conn_encrypted_held(const hk_conn *c)
{
    return cc_held(c->crypt);
}

void hk_conn_hub_force_pipe_copy(hk_conn_hub *h, bool on)
{
    cc_copier_force_pipe(&h->copier, on ? 1 : 0);
}

void hk_conn_close(hk_conn *c)
{
    if (c->flags & CF_DEAD)
        return;
    teardown(c);
}

void hk_conn_hub_stats(const hk_conn_hub *h, hk_conn_stats *out)
{
    *out = h->stats;
    out->iovecs += h->zc.st.iovecs;
    out->splices = h->zc.st.rounds;
    out->bytes_spliced = h->zc.st.bytes;
    out->splice_discarded = h->zc.st.discarded;
}

bool hk_conn_hub_zero_copy(const hk_conn_hub *h)
{
    return cs_ready(&h->zc);
}
