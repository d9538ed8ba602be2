/* Tests of backend-real/lib/net/conn: the byte stream a connection writes (bytes and pinned extents, partial writes
 * through a tiny send buffer to a slow reader), flow control (room grants), IOV_MAX batching, closing from inside a
 * callback, EOF / reset, pin failures and EFAULT from a truncated mapping (never SIGBUS), and teardown. Issue 14:
 * extents of small files are copied through ops.copy (queued as bytes, never pinned), and a pin or copy that fails
 * for a passing shortage (EMFILE) closes the connection without reporting a fault. The slow-reader stream and the
 * truncated mapping run both by writev and by the zero-copy path (vmsplice + splice, net/conn_splice.h). */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "net_fixture.h"

#define STORAGE_OK 1
#define STORAGE_BROKEN 2
#define STORAGE_SHORT 3      /* pin fails with EMFILE: a passing shortage, not the data's fault */
#define STORAGE_SMALL 4      /* small files: copied by ops.copy, never pinned */

typedef struct harness {
    struct ev_loop *loop;
    hk_conn_hub *hub;
    hk_conn *c;
    int peer;                 /* the other end, read by the test */
    hk_conn_limits lim;

    int file_fd;
    char file_path[64];
    uint8_t *map;             /* the "data file", mapped */
    size_t map_len;
    unsigned pins, unpins;

    uint8_t *expect;          /* the stream the connection must deliver */
    size_t expect_len, expect_cap;
    uint8_t *got;
    size_t got_len, got_cap;

    /* the test plays the core */
    size_t room;              /* what the "core" may still send */
    size_t target;            /* stop producing after this many bytes */
    size_t produced;
    unsigned room_calls;
    bool room_bad;            /* a grant came with queued >= low or room != high - queued */
    size_t max_queued;
    uint64_t rng;
    bool in_send;

    bool closed;
    hk_close_reason why;
    int err;
    unsigned closed_calls;
    unsigned faults;
    hk_extent fault_ext;
    char fault_why[200];
    bool event_inside_send;
    bool close_on_recv;
    bool close_on_fault;
    size_t recv_bytes;
} harness;

static uint64_t rnd(harness *h)
{
    h->rng ^= h->rng << 13;
    h->rng ^= h->rng >> 7;
    h->rng ^= h->rng << 17;
    return h->rng;
}

static void expect_add(harness *h, const void *p, size_t n)
{
    if (h->expect_len + n > h->expect_cap) {
        h->expect_cap = (h->expect_len + n) * 2;
        h->expect = realloc(h->expect, h->expect_cap);
        cr_assert_not_null(h->expect);
    }
    memcpy(h->expect + h->expect_len, p, n);
    h->expect_len += n;
}

/* ---- ops ---- */

static void on_recv(void *ctx, hk_conn *c, const uint8_t *bytes, size_t len)
{
    harness *h = ctx;
    (void)bytes;
    if (h->in_send)
        h->event_inside_send = true;
    h->recv_bytes += len;
    if (h->close_on_recv)
        hk_conn_close(c);
}

static void produce(harness *h);

static void on_room(void *ctx, hk_conn *c, size_t room)
{
    harness *h = ctx;
    if (h->in_send)
        h->event_inside_send = true;
    h->room_calls++;
    size_t q = hk_conn_queued(c);
    if (q >= h->lim.low_water || room != h->lim.high_water - q)
        h->room_bad = true;
    h->room = room;
    produce(h);
}

static void on_closed(void *ctx, hk_conn *c, hk_close_reason why, int error)
{
    harness *h = ctx;
    (void)c;
    if (h->in_send)
        h->event_inside_send = true;
    h->closed = true;
    h->closed_calls++;
    h->why = why;
    h->err = error;
    h->c = NULL;
}

static void on_fault(void *ctx, hk_conn *c, const hk_extent *ext, const char *why)
{
    harness *h = ctx;
    if (h->in_send)
        h->event_inside_send = true;
    h->faults++;
    h->fault_ext = *ext;
    snprintf(h->fault_why, sizeof h->fault_why, "%s", why);
    if (h->close_on_fault) {
        hk_conn_close(c);
        h->c = NULL;
    }
}

static int pin(void *ctx, const hk_extent *ext, struct iovec *iov, const char **why)
{
    harness *h = ctx;
    if (ext->storage == STORAGE_SHORT) {
        *why = "no descriptor left";
        errno = EMFILE;
        return -1;
    }
    if (ext->storage != STORAGE_OK) {
        *why = "storage 2 is broken";
        return -1;
    }
    cr_assert_leq(ext->offset + ext->length, h->map_len);
    iov->iov_base = h->map + ext->offset;
    iov->iov_len = ext->length;
    h->pins++;
    return 0;
}

static void unpin(void *ctx, const hk_extent *ext)
{
    harness *h = ctx;
    cr_assert_eq(ext->storage, STORAGE_OK);
    h->unpins++;
}

static unsigned g_copies;

static int copy(void *ctx, const hk_extent *ext, uint8_t *buf, size_t cap, const char **why)
{
    harness *h = ctx;
    if (ext->storage != STORAGE_SMALL)
        return 0;
    if (ext->offset == 4000) { /* the small file's open ran out of descriptors */
        *why = "no descriptor left";
        errno = EMFILE;
        return -1;
    }
    cr_assert_leq(ext->length, cap);
    memcpy(buf, h->map + ext->offset, ext->length);
    g_copies++;
    return 1;
}

static const hk_conn_ops ops = {
    .on_recv = on_recv, .on_room = on_room, .on_closed = on_closed, .on_fault = on_fault, .pin = pin, .unpin = unpin,
    .copy = copy,
};

/* ---- set-up ---- */

static void make_file(harness *h, size_t len)
{
    snprintf(h->file_path, sizeof h->file_path, "/tmp/hekate-conn-XXXXXX");
    uint8_t *buf = malloc(len);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(rnd(h) >> 24);
    h->map = nf_map_temp_file(h->file_path, buf, len, &h->file_fd);
    free(buf);
    h->map_len = len;
}

/* A connected TCP pair on 127.0.0.1: the accepted end becomes the hk_conn, the other is h->peer. */
static void make_pair(harness *h, int sndbuf, int rcvbuf)
{
    int fd = nf_tcp_pair(sndbuf, rcvbuf, &h->peer);
    h->c = hk_conn_new(h->hub, fd);
    cr_assert_not_null(h->c);
}

/* A hub (zero-copy writes on or off) with one connection, and the mapped file. */
static harness *setup_zc(int sndbuf, int rcvbuf, size_t file_len, bool zero_copy)
{
    harness *h = calloc(1, sizeof *h);
    h->rng = 0x9E3779B97F4A7C15ull;
    h->loop = ev_loop_new(EVFLAG_AUTO);
    hk_conn_limits_default(&h->lim);
    h->lim.zero_copy = zero_copy;
    h->hub = hk_conn_hub_new(h->loop, &h->lim, &ops, h);
    cr_assert_not_null(h->hub);
    cr_assert_eq(hk_conn_hub_zero_copy(h->hub), zero_copy);
    make_file(h, file_len);
    make_pair(h, sndbuf, rcvbuf);
    return h;
}

static harness *setup(int sndbuf, int rcvbuf, size_t file_len)
{
    return setup_zc(sndbuf, rcvbuf, file_len, true);
}

static void teardown_h(harness *h)
{
    hk_conn_hub_free(h->hub);
    cr_assert_eq(h->pins, h->unpins, "pins %u != unpins %u", h->pins, h->unpins);
    close(h->peer);
    munmap(h->map, h->map_len);
    close(h->file_fd);
    unlink(h->file_path);
    ev_loop_destroy(h->loop);
    free(h->expect);
    free(h->got);
    free(h);
}

static void send_segs(harness *h, const hk_segment *segs, size_t n)
{
    h->in_send = true;
    hk_conn_send(h->c, segs, n);
    h->in_send = false;
    size_t q = hk_conn_queued(h->c);
    if (q > h->max_queued)
        h->max_queued = q;
}

static hk_segment bytes_seg(const void *p, uint32_t n)
{
    hk_segment s = { .kind = HK_SEG_BYTES };
    s.u.bytes.ptr = p;
    s.u.bytes.len = n;
    return s;
}

static hk_segment ext_seg(uint64_t storage, uint64_t off, uint32_t len)
{
    hk_segment s = { .kind = HK_SEG_EXTENT };
    s.u.extent.storage = storage;
    s.u.extent.file = 0;
    s.u.extent.offset = off;
    s.u.extent.length = len;
    return s;
}

/* The "core": sends random mixes of byte and extent segments, never more than its room, until target. */
static void produce(harness *h)
{
    while (h->produced < h->target && h->room > 0) {
        hk_segment segs[8];
        uint8_t scratch[8][300];
        size_t n = 1 + rnd(h) % 8, used = 0;
        for (size_t i = 0; i < n && h->room > 0 && h->produced < h->target; i++) {
            size_t left = h->room < h->target - h->produced ? h->room : h->target - h->produced;
            if (rnd(h) % 3 == 0) {
                uint32_t len = (uint32_t)(1 + rnd(h) % 300);
                if (len > left)
                    len = (uint32_t)left;
                for (uint32_t k = 0; k < len; k++)
                    scratch[i][k] = (uint8_t)rnd(h);
                segs[used++] = bytes_seg(scratch[i], len);
                expect_add(h, scratch[i], len);
            } else {
                uint32_t len = (uint32_t)(1 + rnd(h) % 20000);
                if (len > left)
                    len = (uint32_t)left;
                uint64_t off = rnd(h) % (h->map_len - len);
                segs[used++] = ext_seg(STORAGE_OK, off, len);
                expect_add(h, h->map + off, len);
            }
            size_t len = segs[used - 1].kind == HK_SEG_BYTES ? segs[used - 1].u.bytes.len
                                                             : segs[used - 1].u.extent.length;
            h->room -= len;
            h->produced += len;
        }
        send_segs(h, segs, used);
        memset(scratch, 0xEE, sizeof scratch); /* the connection must have copied the bytes */
    }
}

/* Reads what the peer socket has (at most max bytes per call). */
static void drain(harness *h, size_t max)
{
    uint8_t buf[65536];
    if (max > sizeof buf)
        max = sizeof buf;
    ssize_t r = recv(h->peer, buf, max, MSG_DONTWAIT);
    if (r <= 0)
        return;
    if (h->got_len + (size_t)r > h->got_cap) {
        h->got_cap = (h->got_len + (size_t)r) * 2;
        h->got = realloc(h->got, h->got_cap);
    }
    memcpy(h->got + h->got_len, buf, (size_t)r);
    h->got_len += (size_t)r;
}

typedef struct slow_reader {
    ev_timer t;
    harness *h;
    size_t max;
    bool random_sizes;
} slow_reader;

static void slow_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    slow_reader *s = (slow_reader *)w;
    size_t n = s->random_sizes ? 1 + rnd(s->h) % s->max : s->max;
    drain(s->h, n);
}

/* Runs the loop, reading from the peer every `period` seconds, until the expected stream arrived or timeout. */
static void run_until_received(harness *h, double period, size_t max_read, bool random_sizes, double timeout)
{
    slow_reader s = { .h = h, .max = max_read, .random_sizes = random_sizes };
    ev_timer_init(&s.t, slow_cb, period, period);
    ev_timer_start(h->loop, &s.t);
    ev_now_update(h->loop);
    ev_tstamp end = ev_now(h->loop) + timeout;
    while (ev_now(h->loop) < end && !(h->got_len >= h->expect_len && h->produced >= h->target) && !h->closed)
        ev_run(h->loop, EVRUN_ONCE);
    ev_timer_stop(h->loop, &s.t);
}

/* Runs the loop for `seconds`, reading from the peer every 5 ms. */
static void run_for(harness *h, double seconds)
{
    slow_reader s = { .h = h, .max = 65536 };
    ev_now_update(h->loop);
    ev_tstamp end = ev_now(h->loop) + seconds;
    ev_timer_init(&s.t, slow_cb, 0.005, 0.005);
    ev_timer_start(h->loop, &s.t);
    while (ev_now(h->loop) < end)
        ev_run(h->loop, EVRUN_ONCE);
    ev_timer_stop(h->loop, &s.t);
}

/* ---- tests ---- */

/* The whole stream through a 4 KiB send buffer read in random small amounts, by writev or by vmsplice + splice. */
static void partial_writes_to_a_slow_reader(bool zero_copy)
{
    harness *h = setup_zc(4096, 4096, 1 << 20, zero_copy);
    h->target = 3u << 20;
    h->room = hk_conn_grant_room(h->c);
    cr_assert_eq(h->room, h->lim.high_water);
    produce(h);
    run_until_received(h, 0.0005, 16384, true, 30.0);

    cr_assert_not(h->closed, "closed: %s", strerror(h->err));
    cr_assert_eq(h->produced, h->target);
    cr_assert_eq(h->got_len, h->expect_len, "received %zu of %zu bytes", h->got_len, h->expect_len);
    cr_assert_eq(memcmp(h->got, h->expect, h->expect_len), 0, "stream corrupted");
    cr_assert_eq(hk_conn_queued(h->c), 0);

    hk_conn_stats st;
    hk_conn_hub_stats(h->hub, &st);
    cr_assert_gt(st.short_writes, 10, "the tiny send buffer should have cut writes short");
    cr_assert_gt(st.writes, 50);
    cr_assert_eq(st.bytes_written, h->expect_len);
    cr_assert_gt(st.iovecs, st.writes, "several segments per writev expected");
    cr_assert_gt(h->room_calls, 5, "room must be granted again as the queue drains");
    cr_assert_not(h->room_bad, "a grant came above low water or with the wrong amount");
    cr_assert_leq(h->max_queued, h->lim.high_water, "queued %zu above high water", h->max_queued);
    cr_assert_eq(h->pins, h->unpins, "every written extent is unpinned");
    cr_assert_not(h->event_inside_send);
    if (zero_copy) {
        cr_assert_gt(st.splices, 50, "the zero-copy path wrote (%llu splices)", (unsigned long long)st.splices);
        cr_assert_gt(st.bytes_spliced, h->expect_len / 2, "most bytes by splice (%llu)",
                     (unsigned long long)st.bytes_spliced);
        cr_assert_gt(st.splice_discarded, 0, "a full socket left bytes in the pipe, thrown away and sent again");
    } else {
        cr_assert_eq(st.splices, 0);
    }
    teardown_h(h);
}

Test(conn, stream_survives_partial_writes_to_a_slow_reader)
{
    partial_writes_to_a_slow_reader(false);
}

Test(conn, stream_survives_partial_splices_to_a_slow_reader)
{
    partial_writes_to_a_slow_reader(true);
}

Test(conn, room_is_granted_below_low_water_after_enough_progress)
{
    harness *h = setup(0, 0, 1 << 20);
    size_t high = h->lim.high_water, low = h->lim.low_water;
    cr_assert_eq(hk_conn_grant_room(h->c), high);

    /* 10 KiB written: less than low water since the grant, so no new room (the core still has plenty). */
    uint8_t small[10240];
    memset(small, 'a', sizeof small);
    hk_segment s = bytes_seg(small, sizeof small);
    send_segs(h, &s, 1);
    expect_add(h, small, sizeof small);
    cr_assert_eq(hk_conn_queued(h->c), sizeof small);
    cr_assert_eq(hk_conn_grant_room(h->c), high - sizeof small, "room is high water minus what is queued");
    run_until_received(h, 0.001, 65536, false, 5.0);
    cr_assert_eq(h->got_len, sizeof small);
    cr_assert_eq(h->room_calls, 0);

    /* Another 100 KiB: once it drains below low water, room comes back as high - queued. */
    hk_segment e = ext_seg(STORAGE_OK, 4096, 100 * 1024);
    send_segs(h, &e, 1);
    expect_add(h, h->map + 4096, 100 * 1024);
    run_until_received(h, 0.001, 65536, false, 5.0);
    cr_assert_eq(h->got_len, h->expect_len);
    cr_assert_eq(memcmp(h->got, h->expect, h->expect_len), 0);
    cr_assert_eq(h->room_calls, 1, "exactly one grant, got %u", h->room_calls);
    cr_assert_not(h->room_bad);
    cr_assert_geq(h->room, high - low);
    teardown_h(h);
}

Test(conn, adjacent_bytes_merge_and_writes_respect_iov_max)
{
    harness *h = setup_zc(0, 0, 1 << 20, false); /* the writev path's batching (a pipe has fewer slots) */
    (void)hk_conn_grant_room(h->c);
    /* 100 byte segments in a row: one iovec. */
    hk_segment segs[100];
    uint8_t data[100];
    for (int i = 0; i < 100; i++) {
        data[i] = (uint8_t)i;
        segs[i] = bytes_seg(&data[i], 1);
    }
    send_segs(h, segs, 100);
    expect_add(h, data, 100);
    run_until_received(h, 0.001, 65536, false, 5.0);
    hk_conn_stats st;
    hk_conn_hub_stats(h->hub, &st);
    cr_assert_eq(st.writes, 1);
    cr_assert_eq(st.iovecs, 1, "adjacent byte segments should form one iovec, got %llu",
                 (unsigned long long)st.iovecs);

    /* 3000 alternating byte and extent segments: at most IOV_MAX iovecs per write, stream intact. */
    enum { N = 3000 };
    hk_segment *many = calloc(N, sizeof *many);
    uint8_t *tags = malloc(N);
    for (int i = 0; i < N; i++) {
        if (i % 2 == 0) {
            tags[i] = (uint8_t)(i * 7);
            many[i] = bytes_seg(&tags[i], 1);
            expect_add(h, &tags[i], 1);
        } else {
            many[i] = ext_seg(STORAGE_OK, (uint64_t)i * 13, 5);
            expect_add(h, h->map + (size_t)i * 13, 5);
        }
    }
    send_segs(h, many, N);
    run_until_received(h, 0.001, 65536, false, 5.0);
    cr_assert_eq(h->got_len, h->expect_len);
    cr_assert_eq(memcmp(h->got, h->expect, h->expect_len), 0);
    hk_conn_stats st2;
    hk_conn_hub_stats(h->hub, &st2);
    uint64_t writes = st2.writes - st.writes, iovecs = st2.iovecs - st.iovecs;
    cr_assert_eq(iovecs, N, "every segment is written once (no blocked write on a fast reader)");
    cr_assert_eq(writes, (N + IOV_MAX - 1) / IOV_MAX, "writes %llu", (unsigned long long)writes);
    free(many);
    free(tags);
    teardown_h(h);
}

Test(conn, eof_and_reset_are_reported)
{
    harness *h = setup(0, 0, 4096);
    close(h->peer);
    h->peer = -1;
    run_for(h, 0.05);
    cr_assert(h->closed);
    cr_assert_eq(h->why, HK_CLOSED_BY_PEER);
    cr_assert_eq(h->closed_calls, 1);
    h->peer = socket(AF_INET, SOCK_STREAM, 0); /* teardown closes it */
    teardown_h(h);

    harness *r = setup(0, 0, 4096);
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    cr_assert_eq(setsockopt(r->peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(r->peer); /* sends RST */
    r->peer = socket(AF_INET, SOCK_STREAM, 0);
    run_for(r, 0.05);
    cr_assert(r->closed);
    cr_assert_eq(r->why, HK_CLOSED_ERROR);
    cr_assert_eq(r->err, ECONNRESET);
    teardown_h(r);
}

Test(conn, close_from_inside_a_callback_is_safe_and_silent)
{
    harness *h = setup(4096, 4096, 1 << 20);
    (void)hk_conn_grant_room(h->c);
    /* Queue more than the socket takes, so extents stay pinned, then close from on_recv. */
    hk_segment e[4] = { ext_seg(STORAGE_OK, 0, 200000), ext_seg(STORAGE_OK, 1000, 200000),
                        ext_seg(STORAGE_OK, 5000, 100000), ext_seg(STORAGE_OK, 0, 1) };
    send_segs(h, e, 4);
    h->close_on_recv = true;
    cr_assert_eq(send(h->peer, "x", 1, 0), 1);
    run_for(h, 0.1);
    cr_assert_eq(h->recv_bytes, 1);
    cr_assert_not(h->closed, "no on_closed after hk_conn_close");
    cr_assert_eq(h->pins, h->unpins, "closing drops the queue and unpins");
    /* The peer sees the connection end (after whatever was already in flight). */
    uint8_t buf[65536];
    ssize_t r;
    size_t total = 0;
    for (int i = 0; i < 1000; i++) {
        r = recv(h->peer, buf, sizeof buf, MSG_DONTWAIT);
        if (r == 0)
            break;
        if (r > 0)
            total += (size_t)r;
        else
            usleep(1000);
    }
    cr_assert_eq(r, 0, "peer sees EOF");
    cr_assert_lt(total, 500001);
    hk_conn_stats st;
    hk_conn_hub_stats(h->hub, &st);
    cr_assert_eq(st.live, 0);
    teardown_h(h);
}

/* A file shrinks under a queued extent: EFAULT names it, never SIGBUS; by writev or by vmsplice + splice. */
static void truncated_mapping(bool zero_copy)
{
    harness *h = setup_zc(0, 0, 3 * 4096, zero_copy);
    (void)hk_conn_grant_room(h->c);
    uint8_t first_page[4096];
    memcpy(first_page, h->map, sizeof first_page);
    hk_segment segs[3] = { bytes_seg("hdr", 3), ext_seg(STORAGE_OK, 0, 4096), ext_seg(STORAGE_OK, 4096, 8192) };
    send_segs(h, segs, 3);
    /* The file shrinks to one page under the mapping before the write: the third segment now lies past its end. */
    cr_assert_eq(ftruncate(h->file_fd, 4096), 0);
    run_for(h, 0.1);
    cr_assert_eq(h->faults, 1, "faults %u closed %d err %d got %zu", h->faults, h->closed, h->err, h->got_len);
    cr_assert_eq(h->fault_ext.storage, STORAGE_OK);
    cr_assert_eq(h->fault_ext.offset, 4096, "the faulting extent is named, not an earlier one");
    cr_assert_eq(h->fault_ext.length, 8192);
    cr_assert(strstr(h->fault_why, "vanished"), "%s", h->fault_why);
    cr_assert(h->closed);
    cr_assert_eq(h->why, HK_CLOSED_ERROR);
    cr_assert_eq(h->err, EFAULT);
    cr_assert_not(h->event_inside_send);
    drain(h, 65536);
    cr_assert_eq(h->got_len, 3 + 4096, "everything before the bad extent went out, got %zu", h->got_len);
    cr_assert_eq(memcmp(h->got, "hdr", 3), 0);
    cr_assert_eq(memcmp(h->got + 3, first_page, 4096), 0);
    hk_conn_stats st;
    hk_conn_hub_stats(h->hub, &st);
    cr_assert_eq(st.faults, 1);
    cr_assert_eq(st.splices > 0, zero_copy, "splices %llu", (unsigned long long)st.splices);
    teardown_h(h);
}

Test(conn, truncated_mapping_gives_efault_not_sigbus)
{
    truncated_mapping(false);
}

Test(conn, truncated_mapping_under_splice_gives_efault_not_sigbus)
{
    truncated_mapping(true);
}

Test(conn, pin_failure_is_reported_later_and_fault_handler_may_close)
{
    harness *h = setup(0, 0, 4096);
    (void)hk_conn_grant_room(h->c);
    hk_segment segs[3] = { bytes_seg("abc", 3), ext_seg(STORAGE_BROKEN, 0, 100), ext_seg(STORAGE_OK, 0, 10) };
    send_segs(h, segs, 3);
    cr_assert_eq(h->faults, 0, "nothing is reported from inside send");
    cr_assert_not(h->closed);
    hk_segment more = bytes_seg("zzz", 3);
    send_segs(h, &more, 1); /* ignored: the connection is failed */
    run_for(h, 0.05);
    cr_assert_eq(h->faults, 1);
    cr_assert_eq(h->fault_ext.storage, STORAGE_BROKEN);
    cr_assert_str_eq(h->fault_why, "storage 2 is broken");
    cr_assert(h->closed);
    cr_assert_eq(h->closed_calls, 1);
    cr_assert_eq(h->why, HK_CLOSED_ERROR);
    cr_assert_not(h->event_inside_send);
    teardown_h(h);

    harness *g = setup(0, 0, 4096);
    g->close_on_fault = true; /* the owner reacts to the fault by closing: then no on_closed follows */
    hk_segment bad = ext_seg(STORAGE_BROKEN, 0, 100);
    send_segs(g, &bad, 1);
    run_for(g, 0.05);
    cr_assert_eq(g->faults, 1);
    cr_assert_not(g->closed);
    teardown_h(g);
}

Test(conn, small_extents_are_copied_not_pinned)
{
    harness *h = setup(0, 0, 3 * 4096);
    (void)hk_conn_grant_room(h->c);
    g_copies = 0;
    hk_segment segs[4] = { bytes_seg("hdr", 3), ext_seg(STORAGE_SMALL, 10, 3), ext_seg(STORAGE_SMALL, 20, 4096),
                           ext_seg(STORAGE_OK, 100, 8000) };
    send_segs(h, segs, 4);
    cr_assert_eq(g_copies, 2);
    cr_assert_eq(h->pins, 1, "only the large extent is pinned");
    cr_assert_eq(hk_conn_queued(h->c), 3 + 3 + 4096 + 8000);
    run_for(h, 0.05);
    drain(h, 65536);
    cr_assert_eq(h->got_len, 3 + 3 + 4096 + 8000);
    cr_assert_eq(memcmp(h->got, "hdr", 3), 0);
    cr_assert_eq(memcmp(h->got + 3, h->map + 10, 3), 0);
    cr_assert_eq(memcmp(h->got + 6, h->map + 20, 4096), 0);
    cr_assert_eq(memcmp(h->got + 6 + 4096, h->map + 100, 8000), 0);
    cr_assert_not(h->closed);
    teardown_h(h);
}

Test(conn, a_shortage_while_pinning_or_copying_closes_without_a_fault)
{
    harness *h = setup(0, 0, 4096);
    (void)hk_conn_grant_room(h->c);
    hk_segment segs[2] = { bytes_seg("abc", 3), ext_seg(STORAGE_SHORT, 0, 100) };
    send_segs(h, segs, 2);
    run_for(h, 0.05);
    cr_assert_eq(h->faults, 0, "the data is not at fault");
    cr_assert(h->closed);
    cr_assert_eq(h->why, HK_CLOSED_ERROR);
    cr_assert_eq(h->err, EMFILE);
    teardown_h(h);

    harness *g = setup(0, 0, 8192);
    hk_segment small = ext_seg(STORAGE_SMALL, 4000, 50);
    send_segs(g, &small, 1);
    run_for(g, 0.05);
    cr_assert_eq(g->faults, 0);
    cr_assert(g->closed);
    cr_assert_eq(g->err, EMFILE);
    teardown_h(g);
}

Test(conn, hub_free_drops_queues_and_unpins)
{
    harness *h = setup(4096, 4096, 1 << 20);
    (void)hk_conn_grant_room(h->c);
    hk_segment e[3] = { ext_seg(STORAGE_OK, 0, 300000), bytes_seg("x", 1), ext_seg(STORAGE_OK, 10, 300000) };
    send_segs(h, e, 3);
    run_for(h, 0.02);
    cr_assert_gt(h->pins, h->unpins, "some extents still queued");
    teardown_h(h); /* asserts pins == unpins after hk_conn_hub_free */
}

Test(conn, idle_connection_is_small)
{
    cr_assert_leq(hk_conn_size(), 160, "struct hk_conn is %zu bytes", hk_conn_size());
    harness *h = setup(0, 0, 4096);
    cr_assert_eq(hk_conn_queued(h->c), 0);
    cr_assert_geq(hk_conn_fd(h->c), 0);
    int x = 5;
    hk_conn_set_user(h->c, &x);
    cr_assert_eq(hk_conn_user(h->c), &x);
    teardown_h(h);
}

/* Write fairness (issue 12, reactivity): in one loop iteration a short queue (one block) is written whole before a
 * long queue's turn, and the long one writes no more than the iteration's budget (its turns of turn_quantum, in the
 * flush pass and on EV_WRITE); the rest follows in later iterations, intact. */
Test(conn, short_queue_first_and_long_queue_bounded_per_turn)
{
    harness *h = setup(8 << 20, 8 << 20, 2 << 20);
    int peer_b;
    int fd_b = nf_tcp_pair(8 << 20, 8 << 20, &peer_b);
    hk_conn *b = hk_conn_new(h->hub, fd_b);
    cr_assert_not_null(b);
    hk_segment long_seg = ext_seg(STORAGE_OK, 0, 1u << 20);
    hk_segment short_seg = ext_seg(STORAGE_OK, 1u << 20, 16384);
    send_segs(h, &long_seg, 1);   /* queued first */
    hk_conn_send(b, &short_seg, 1); /* queued after it */
    ev_run(h->loop, EVRUN_NOWAIT); /* one iteration: the flush pass */
    cr_assert_eq(hk_conn_queued(b), 0, "the short queue goes out whole in the first flush pass");
    size_t q = hk_conn_queued(h->c);
    cr_assert_lt(q, 1u << 20, "the long queue had its turn too");
    cr_assert_geq(q, (1u << 20) - h->lim.iter_budget, "one iteration writes at most its budget (%zu left)", q);
    for (int i = 0; i < 1000 && hk_conn_queued(h->c) > 0; i++) {
        drain(h, 1 << 20);
        ev_run(h->loop, EVRUN_NOWAIT);
    }
    for (int i = 0; i < 100000 && h->got_len < (1u << 20); i++)
        drain(h, 1 << 20);
    cr_assert_eq(hk_conn_queued(h->c), 0, "the rest follows in later iterations");
    cr_assert_eq(h->got_len, 1u << 20);
    cr_assert_eq(memcmp(h->got, h->map, 1u << 20), 0, "the long stream arrives intact");
    uint8_t buf[16384];
    size_t got = 0;
    while (got < sizeof buf) {
        ssize_t r = read(peer_b, buf + got, sizeof buf - got);
        cr_assert_gt(r, 0);
        got += (size_t)r;
    }
    cr_assert_eq(memcmp(buf, h->map + (1u << 20), sizeof buf), 0, "the short stream arrives intact");
    hk_conn_close(b);
    close(peer_b);
    teardown_h(h);
}

/* Drains the peer socket until n bytes in all have arrived (bounded). */
static void drain_until(harness *h, size_t n)
{
    for (int i = 0; i < 200000 && h->got_len < n; i++)
        drain(h, 1 << 16);
    cr_assert_eq(h->got_len, n, "%zu of %zu bytes arrived", h->got_len, n);
}

/* Write coalescing (issue 12, CPU per GiB): once a connection has shown a deep pipeline (256 KiB queued at once), a
 * short queue waits for more instead of going out at once; it goes out as soon as it reaches half the depth, or when
 * the hold runs out (hold_max), and each hold that runs out halves the depth, so a peer that asks for less stops
 * waiting. A connection that never had more than one block queued is written at once (the reactivity intent). */
Test(conn, short_queue_of_a_deep_pipeline_waits_for_more)
{
    harness *h = calloc(1, sizeof *h);
    h->rng = 0x9E3779B97F4A7C15ull;
    h->loop = ev_loop_new(EVFLAG_AUTO);
    hk_conn_limits_default(&h->lim);
    h->lim.hold_max = 0.2;
    h->hub = hk_conn_hub_new(h->loop, &h->lim, &ops, h);
    make_file(h, 4 << 20);
    make_pair(h, 8 << 20, 8 << 20);
    int peer_b;
    hk_conn *b = hk_conn_new(h->hub, nf_tcp_pair(8 << 20, 8 << 20, &peer_b));
    cr_assert_not_null(b);

    hk_segment deep = ext_seg(STORAGE_OK, 0, 256 << 10);
    send_segs(h, &deep, 1);
    ev_run(h->loop, EVRUN_NOWAIT);
    drain_until(h, 256 << 10);
    cr_assert_eq(hk_conn_queued(h->c), 0, "a full pipeline is written at once");

    size_t sent = 256 << 10;
    for (int i = 0; i < 7; i++) { /* 7 blocks: short of half the depth (128 KiB) */
        hk_segment blk = ext_seg(STORAGE_OK, sent, 16 << 10);
        send_segs(h, &blk, 1);
        sent += 16 << 10;
        ev_run(h->loop, EVRUN_NOWAIT);
        cr_assert_eq(hk_conn_queued(h->c), (size_t)(i + 1) * (16 << 10), "block %d waits for more", i);
    }
    hk_segment one = ext_seg(STORAGE_OK, 0, 16 << 10); /* b: one block, its first: never held */
    hk_conn_send(b, &one, 1);
    ev_run(h->loop, EVRUN_NOWAIT);
    cr_assert_eq(hk_conn_queued(b), 0, "a single block of a shallow peer goes out at once");

    hk_segment blk = ext_seg(STORAGE_OK, sent, 16 << 10); /* the 8th block: half the depth */
    send_segs(h, &blk, 1);
    sent += 16 << 10;
    ev_run(h->loop, EVRUN_NOWAIT);
    cr_assert_eq(hk_conn_queued(h->c), 0, "the queue reached half the depth: written");
    drain_until(h, sent);

    /* A queue that never reaches the target goes out when the hold runs out; the depth halves each time (256 KiB ->
     * 128 -> 64: half of it is no longer above short_queue), so after two holds that ran out, no more waiting. */
    for (int round = 0; round < 3; round++) {
        blk = ext_seg(STORAGE_OK, sent, 16 << 10);
        send_segs(h, &blk, 1);
        sent += 16 << 10;
        ev_now_update(h->loop);
        ev_tstamp t0 = ev_now(h->loop);
        ev_run(h->loop, EVRUN_NOWAIT);
        if (round < 2) {
            cr_assert_eq(hk_conn_queued(h->c), 16u << 10, "round %d: held", round);
            for (int i = 0; i < 2000 && hk_conn_queued(h->c) > 0; i++) { /* the flush pass comes before a poll */
                usleep(1000);
                ev_run(h->loop, EVRUN_NOWAIT);
            }
            ev_now_update(h->loop);
            cr_assert_geq(ev_now(h->loop) - t0, 0.19, "round %d: held for hold_max", round);
        }
        cr_assert_eq(hk_conn_queued(h->c), 0, "round %d: written", round);
        drain_until(h, sent);
    }
    cr_assert_eq(memcmp(h->got, h->map, 256 << 10), 0, "the stream arrives intact");
    cr_assert_eq(memcmp(h->got + (256 << 10), h->map + (256 << 10), sent - (256 << 10)), 0);
    hk_conn_close(b);
    close(peer_b);
    teardown_h(h);
}

/* A held connection that is closed (and one the owner closes while it holds) leaves no hold behind: the hub's timer
 * finds nothing freed, every extent is unpinned. */
Test(conn, closing_a_held_connection)
{
    harness *h = setup(8 << 20, 8 << 20, 1 << 20);
    hk_segment deep = ext_seg(STORAGE_OK, 0, 256 << 10);
    send_segs(h, &deep, 1);
    ev_run(h->loop, EVRUN_NOWAIT);
    drain_until(h, 256 << 10);
    hk_segment blk = ext_seg(STORAGE_OK, 0, 16 << 10);
    send_segs(h, &blk, 1);
    ev_run(h->loop, EVRUN_NOWAIT);
    cr_assert_eq(hk_conn_queued(h->c), 16u << 10, "held");
    hk_conn_close(h->c);
    h->c = NULL;
    run_for(h, h->lim.hold_max + 0.05); /* past hold_max: the timer must not touch the freed connection */
    teardown_h(h);
}
