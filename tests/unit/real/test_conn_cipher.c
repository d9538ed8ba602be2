/* Tests of backend-real/lib/net/conn's encrypted write path (set_cipher, net/conn_cipher.c): through a TCP pair on
 * 127.0.0.1 the bytes sent before set_cipher arrive plain, the bytes sent after arrive RC4-drop1024 encrypted (checked
 * with an independent RC4 straight from libcrypto), across partial writes to a slow reader with a tiny send buffer,
 * extents and bytes mixed, a cipher switched for another and set_cipher(NULL) back to plain; both copy paths
 * (process_vm_readv and the pipe fallback); a peer that never reads holds at most one 64 KiB chunk encrypted ahead;
 * a truncated mapping under an encrypted range is reported as a fault (never SIGBUS). */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/rc4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "net_fixture.h"
#include "stream_cipher.h"

#define STORAGE 1

typedef struct harness {
    struct ev_loop *loop;
    hk_conn_hub *hub;
    hk_conn *c;
    int peer;
    int file_fd;
    char file_path[64];
    uint8_t *map;
    size_t map_len;
    unsigned pins, unpins;
    hk_mem mem;
    uint8_t *expect; /* the stream as the peer must receive it (encrypted parts encrypted) */
    size_t expect_len, expect_cap;
    uint8_t *got;
    size_t got_len, got_cap;
    uint64_t rng;
    bool closed;
    int err;
    unsigned faults;
    hk_extent fault_ext;
} harness;

/* An independent RC4-drop1024 (libcrypto directly, not core/stream_cipher.c) with which the test predicts the wire. */
typedef struct ref_rc4 {
    RC4_KEY k;
} ref_rc4;

static void ref_init(ref_rc4 *r, const uint8_t *key, size_t len)
{
    RC4_set_key(&r->k, (int)len, key);
    uint8_t drop[1024];
    memset(drop, 0, sizeof drop);
    RC4(&r->k, sizeof drop, drop, drop);
}

static uint64_t rnd(harness *h)
{
    h->rng ^= h->rng << 13;
    h->rng ^= h->rng >> 7;
    h->rng ^= h->rng << 17;
    return h->rng;
}

/* Appends what the peer must receive for plaintext p: encrypted with ref (advancing it) unless ref is NULL. */
static void expect_add(harness *h, const uint8_t *p, size_t n, ref_rc4 *ref)
{
    if (h->expect_len + n > h->expect_cap) {
        h->expect_cap = (h->expect_len + n) * 2;
        h->expect = realloc(h->expect, h->expect_cap);
        cr_assert_not_null(h->expect);
    }
    if (ref)
        RC4(&ref->k, n, p, h->expect + h->expect_len);
    else
        memcpy(h->expect + h->expect_len, p, n);
    h->expect_len += n;
}

static void on_recv(void *ctx, hk_conn *c, const uint8_t *b, size_t n)
{
    (void)ctx, (void)c, (void)b, (void)n;
}

static void on_room(void *ctx, hk_conn *c, size_t room)
{
    (void)ctx, (void)c, (void)room;
}

static void on_closed(void *ctx, hk_conn *c, hk_close_reason why, int error)
{
    harness *h = ctx;
    (void)c, (void)why;
    h->closed = true;
    h->err = error;
    h->c = NULL;
}

static void on_fault(void *ctx, hk_conn *c, const hk_extent *ext, const char *why)
{
    harness *h = ctx;
    (void)c, (void)why;
    h->faults++;
    h->fault_ext = *ext;
}

static int pin(void *ctx, const hk_extent *ext, struct iovec *iov, const char **why)
{
    harness *h = ctx;
    (void)why;
    cr_assert_leq(ext->offset + ext->length, h->map_len);
    iov->iov_base = h->map + ext->offset;
    iov->iov_len = ext->length;
    h->pins++;
    return 0;
}

static void unpin(void *ctx, const hk_extent *ext)
{
    harness *h = ctx;
    (void)ext;
    h->unpins++;
}

static const hk_conn_ops ops = {
    .on_recv = on_recv, .on_room = on_room, .on_closed = on_closed, .on_fault = on_fault, .pin = pin, .unpin = unpin,
};

static void make_file(harness *h, size_t len)
{
    snprintf(h->file_path, sizeof h->file_path, "/tmp/hekate-cc-XXXXXX");
    uint8_t *buf = malloc(len);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(rnd(h) >> 24);
    h->map = nf_map_temp_file(h->file_path, buf, len, &h->file_fd);
    free(buf);
    h->map_len = len;
}

static void make_pair(harness *h, int sndbuf, int rcvbuf)
{
    int fd = nf_tcp_pair(sndbuf, rcvbuf, &h->peer);
    h->c = hk_conn_new(h->hub, fd);
    cr_assert_not_null(h->c);
}

static harness *setup(int sndbuf, int rcvbuf, size_t file_len, bool pipe_copy)
{
    harness *h = calloc(1, sizeof *h);
    h->rng = 0x2545F4914F6CDD1Dull;
    h->loop = ev_loop_new(EVFLAG_AUTO);
    h->hub = hk_conn_hub_new(h->loop, NULL, &ops, h);
    cr_assert_not_null(h->hub);
    hk_conn_hub_force_pipe_copy(h->hub, pipe_copy);
    make_file(h, file_len);
    make_pair(h, sndbuf, rcvbuf);
    return h;
}

/* Frees the hub (its connections first), then the ciphers they used, then the rest. */
static void teardown_h(harness *h, hk_cipher *c1, hk_cipher *c2)
{
    hk_conn_hub_free(h->hub);
    hk_cipher_free(c1);
    hk_cipher_free(c2);
    cr_assert_eq(h->mem.bytes, 0, "cipher memory returned");
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

static void send_bytes(harness *h, const uint8_t *p, uint32_t n, ref_rc4 *ref)
{
    hk_segment s = { .kind = HK_SEG_BYTES };
    s.u.bytes.ptr = p;
    s.u.bytes.len = n;
    hk_conn_send(h->c, &s, 1);
    expect_add(h, p, n, ref);
}

static void send_extent(harness *h, uint64_t off, uint32_t n, ref_rc4 *ref)
{
    hk_segment s = { .kind = HK_SEG_EXTENT };
    s.u.extent.storage = STORAGE;
    s.u.extent.offset = off;
    s.u.extent.length = n;
    hk_conn_send(h->c, &s, 1);
    expect_add(h, h->map + off, n, ref);
}

/* Random mix of byte and extent segments totalling about `total` bytes, in sends of 1..6 segments. */
static void send_mix(harness *h, size_t total, ref_rc4 *ref)
{
    size_t done = 0;
    while (done < total) {
        if (rnd(h) % 3 == 0) {
            uint8_t b[300];
            uint32_t n = (uint32_t)(1 + rnd(h) % sizeof b);
            for (uint32_t i = 0; i < n; i++)
                b[i] = (uint8_t)rnd(h);
            send_bytes(h, b, n, ref);
            done += n;
        } else {
            uint32_t n = (uint32_t)(1 + rnd(h) % 40000);
            send_extent(h, rnd(h) % (h->map_len - n), n, ref);
            done += n;
        }
    }
}

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

typedef struct reader {
    ev_timer t;
    harness *h;
    size_t max;
} reader;

static void reader_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    reader *r = (reader *)w;
    if (r->max)
        drain(r->h, 1 + rnd(r->h) % r->max);
}

/* Runs the loop, reading at most max bytes every `period` s (max 0: never), until everything expected arrived, the
 * connection closed or `timeout` passed. */
static void run(harness *h, double period, size_t max, double timeout)
{
    reader r = { .h = h, .max = max };
    ev_timer_init(&r.t, reader_cb, period, period); /* also the loop's wake-up when nothing else happens */
    ev_timer_start(h->loop, &r.t);
    ev_now_update(h->loop);
    ev_tstamp end = ev_now(h->loop) + timeout;
    while (ev_now(h->loop) < end && h->got_len < h->expect_len && !h->closed)
        ev_run(h->loop, EVRUN_ONCE);
    ev_timer_stop(h->loop, &r.t);
}

static void assert_stream(harness *h)
{
    cr_assert_eq(h->got_len, h->expect_len, "got %zu of %zu bytes", h->got_len, h->expect_len);
    for (size_t i = 0; i < h->got_len; i++)
        if (h->got[i] != h->expect[i])
            cr_assert_fail("byte %zu differs (got %02x, want %02x)", i, h->got[i], h->expect[i]);
}

static const uint8_t KEY1[20] = "keyB-for-the-seeder";
static const uint8_t KEY2[20] = "another-key-entirely";

/* Plain, then key 1, then key 2, then plain again: each boundary at the enqueue position, with a queue that is far
 * from written when set_cipher is called (nothing is written inside send; a 4 KiB send buffer and a slow reader). */
static void boundaries(bool pipe_copy)
{
    harness *h = setup(4096, 4096, 1 << 20, pipe_copy);
    hk_cipher *c1 = hk_cipher_new_rc4(&h->mem, KEY1, sizeof KEY1);
    hk_cipher *c2 = hk_cipher_new_rc4(&h->mem, KEY2, sizeof KEY2);
    ref_rc4 r1, r2;
    ref_init(&r1, KEY1, sizeof KEY1);
    ref_init(&r2, KEY2, sizeof KEY2);
    send_mix(h, 200000, NULL);       /* queued, still plain after set_cipher */
    hk_conn_set_cipher(h->c, c1);
    send_mix(h, 600000, &r1);
    run(h, 0.001, 20000, 0.05);      /* part of it written (a partial chunk held) before the next switch */
    hk_conn_set_cipher(h->c, c2);
    send_mix(h, 300000, &r2);
    hk_conn_set_cipher(h->c, NULL);
    send_mix(h, 200000, NULL);
    hk_conn_set_cipher(h->c, c1);    /* key 1 resumes where it stopped */
    send_mix(h, 100000, &r1);
    run(h, 0.001, 65536, 20);
    assert_stream(h);
    cr_assert_not(h->closed);
    cr_assert_eq(hk_conn_encrypted_held(h->c), 0);
    hk_conn_stats st;
    hk_conn_hub_stats(h->hub, &st);
    cr_assert_gt(st.short_writes, 10, "the writes were partial (%llu)", (unsigned long long)st.short_writes);
    cr_assert_geq(st.bytes_encrypted, 1000000);
    cr_assert_eq(st.encrypted_held, 0);
    teardown_h(h, c1, c2);
}

Test(conn_cipher, boundaries_partial_writes_and_back_to_plain)
{
    boundaries(false);
}

Test(conn_cipher, boundaries_through_the_pipe_copy)
{
    boundaries(true);
}

/* A peer that never reads: the connection holds one chunk encrypted ahead at most, its queue stays pinned, plain. */
Test(conn_cipher, non_reading_peer_holds_one_chunk)
{
    harness *h = setup(4096, 4096, 1 << 20, false);
    hk_cipher *c1 = hk_cipher_new_rc4(&h->mem, KEY1, sizeof KEY1);
    ref_rc4 r1;
    ref_init(&r1, KEY1, sizeof KEY1);
    hk_conn_set_cipher(h->c, c1);
    for (int i = 0; i < 64; i++) /* 4 MiB of extents */
        send_extent(h, (uint64_t)(i % 15) * 65536, 65536, &r1);
    run(h, 0.01, 0, 0.3);
    hk_conn_stats st;
    hk_conn_hub_stats(h->hub, &st);
    cr_assert_lt(st.bytes_written, 2u << 20, "the peer did not read: little went out (%llu)",
                 (unsigned long long)st.bytes_written);
    cr_assert_leq(hk_conn_encrypted_held(h->c), 65536);
    cr_assert_eq(st.encrypted_held, hk_conn_encrypted_held(h->c));
    cr_assert_leq(st.bytes_encrypted, st.bytes_written + 65536, "encrypted %llu, written %llu: ahead by > 64 KiB",
                  (unsigned long long)st.bytes_encrypted, (unsigned long long)st.bytes_written);
    cr_assert_gt(hk_conn_queued(h->c), 2u << 20, "the rest waits in the queue (pinned, not copied)");
    run(h, 0.0005, 65536, 20); /* now the peer reads: everything arrives, in order */
    assert_stream(h);
    teardown_h(h, c1, NULL);
}

static void truncated(bool pipe_copy)
{
    harness *h = setup(0, 0, 3 * 4096, pipe_copy);
    hk_cipher *c1 = hk_cipher_new_rc4(&h->mem, KEY1, sizeof KEY1);
    ref_rc4 r1;
    ref_init(&r1, KEY1, sizeof KEY1);
    send_bytes(h, (const uint8_t *)"plain", 5, NULL);
    hk_conn_set_cipher(h->c, c1);
    send_bytes(h, (const uint8_t *)"hdr", 3, &r1);
    send_extent(h, 0, 4096, &r1);
    hk_segment bad = { .kind = HK_SEG_EXTENT };
    bad.u.extent.storage = STORAGE;
    bad.u.extent.offset = 4096;
    bad.u.extent.length = 8192;
    hk_conn_send(h->c, &bad, 1);
    cr_assert_eq(ftruncate(h->file_fd, 4096), 0); /* the third segment now lies past the end of the file */
    ev_now_update(h->loop);
    for (ev_tstamp end = ev_now(h->loop) + 0.1; ev_now(h->loop) < end && !h->closed;)
        ev_run(h->loop, EVRUN_NOWAIT);
    cr_assert_eq(h->faults, 1);
    cr_assert_eq(h->fault_ext.offset, 4096, "the faulting extent is named");
    cr_assert(h->closed);
    cr_assert_eq(h->err, EFAULT);
    drain(h, 65536);
    assert_stream(h); /* every byte before the bad extent went out, encrypted as it must be */
    teardown_h(h, c1, NULL);
}

Test(conn_cipher, truncated_mapping_is_a_fault_not_sigbus)
{
    truncated(false);
}

Test(conn_cipher, truncated_mapping_through_the_pipe_copy)
{
    truncated(true);
}

/* A connection that never had a cipher keeps the plain path: no state, nothing encrypted. */
Test(conn_cipher, plain_connection_pays_nothing)
{
    harness *h = setup(0, 0, 1 << 20, false);
    send_mix(h, 300000, NULL);
    hk_conn_set_cipher(h->c, NULL); /* NULL on a plain connection allocates nothing */
    run(h, 0.001, 65536, 10);
    assert_stream(h);
    hk_conn_stats st;
    hk_conn_hub_stats(h->hub, &st);
    cr_assert_eq(st.bytes_encrypted, 0);
    teardown_h(h, NULL, NULL);
}
