/* Tests of backend-real/lib/net/conn_splice (the zero-copy write round of net/conn.c), driven directly on a send
 * queue (net/sendq.h): partial splices into sockets with a tiny SO_SNDBUF (a Unix socketpair and a TCP pair) deliver
 * every byte in order and leave the pipe empty after each call; staged header bytes handed to the kernel stay as
 * they were when the queue's byte area and the arena are rewritten; a file truncated under an extent gives EFAULT at
 * the head (never SIGBUS); a peer that went away gives EPIPE / ECONNRESET, not a SIGPIPE death. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn_splice.h"
#include "net_fixture.h"
#include "sendq.h"

typedef struct fixture {
    cs_pipe p;
    sendq q;
    int fd, peer;               /* the writing end (non-blocking) and the reading end */
    int file_fd;
    char path[64];
    uint8_t *map;
    size_t map_len;
    uint8_t *expect, *got;
    size_t expect_len, got_len, cap;
    unsigned unpins;
    uint64_t rng;
} fixture;

static uint64_t rnd(fixture *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    return f->rng;
}

static void unpin(void *ctx, const hk_extent *ext)
{
    (void)ext;
    ((fixture *)ctx)->unpins++;
}

static void expect_add(fixture *f, const uint8_t *p, size_t n)
{
    cr_assert_leq(f->expect_len + n, f->cap);
    memcpy(f->expect + f->expect_len, p, n);
    f->expect_len += n;
}

static void fixture_init(fixture *f, size_t file_len, size_t cap)
{
    memset(f, 0, sizeof *f);
    f->rng = 0x2545F4914F6CDD1Dull;
    cr_assert_eq(cs_pipe_init(&f->p), 0, "cs_pipe_init: %s", strerror(errno));
    uint8_t *buf = malloc(file_len);
    for (size_t i = 0; i < file_len; i++)
        buf[i] = (uint8_t)(rnd(f) >> 29);
    snprintf(f->path, sizeof f->path, "/tmp/hekate-splice-XXXXXX");
    f->map = nf_map_temp_file(f->path, buf, file_len, &f->file_fd);
    f->map_len = file_len;
    free(buf);
    f->cap = cap;
    f->expect = malloc(cap);
    f->got = malloc(cap);
}

static void fixture_free(fixture *f)
{
    cs_pipe_free(&f->p);
    free(f->q.items);
    free(f->q.buf);
    close(f->fd);
    close(f->peer);
    munmap(f->map, f->map_len);
    close(f->file_fd);
    unlink(f->path);
    free(f->expect);
    free(f->got);
}

static void push_bytes(fixture *f, const uint8_t *p, uint32_t n)
{
    cr_assert_eq(sq_add_bytes(&f->q, p, n, NULL), 0);
    expect_add(f, p, n);
}

static void push_extent(fixture *f, uint64_t off, uint32_t len)
{
    hk_extent e = { .storage = 1, .file = 0, .offset = off, .length = len };
    cr_assert_eq(sq_push_extent(&f->q, &e, f->map + off, NULL), 0);
    expect_add(f, f->map + off, len);
}

static size_t queued(const fixture *f)
{
    size_t n = 0;
    for (uint32_t i = 0; i < f->q.icount; i++)
        n += sq_at(&f->q, i)->len;
    return n;
}

static int pipe_level(const fixture *f)
{
    int n = -1;
    cr_assert_eq(ioctl(f->p.rfd, FIONREAD, &n), 0);
    return n;
}

/* Reads at most max bytes the peer has. */
static void peer_read(fixture *f, size_t max)
{
    if (max > f->cap - f->got_len)
        max = f->cap - f->got_len;
    if (max == 0)
        return;
    ssize_t r = recv(f->peer, f->got + f->got_len, max, MSG_DONTWAIT);
    if (r > 0)
        f->got_len += (size_t)r;
}

/* A queue of ~2 MiB, headers of 1-300 bytes between extents of 1 B - 20 KB at unaligned offsets, written through a
 * socket with a tiny send buffer read in random small amounts. */
static void partial_splices(fixture *f)
{
    uint8_t hdr[300];
    while (f->expect_len < (2u << 20)) {
        uint32_t hn = 1 + (uint32_t)(rnd(f) % sizeof hdr);
        for (uint32_t k = 0; k < hn; k++)
            hdr[k] = (uint8_t)rnd(f);
        push_bytes(f, hdr, hn);
        uint32_t len = 1 + (uint32_t)(rnd(f) % 20000);
        push_extent(f, rnd(f) % (f->map_len - len), len);
    }
    unsigned extents = 0;
    for (uint32_t i = 0; i < f->q.icount; i++)
        extents += sq_at(&f->q, i)->kind == SQ_EXTENT;
    size_t short_rounds = 0, calls = 0;
    static struct iovec iov[1024];
    while (f->q.icount > 0 && calls < 2000000) {
        size_t offered = 0;
        ssize_t w = cs_write(&f->p, f->fd, &f->q, 256 * 1024, iov, 1024, &offered);
        calls++;
        cr_assert(w >= 0 || errno == EAGAIN, "cs_write: %s", strerror(errno));
        cr_assert_eq(pipe_level(f), 0, "the pipe is empty after every call");
        if (w > 0) {
            cr_assert_leq((size_t)w, offered);
            short_rounds += (size_t)w < offered;
            sq_consume(&f->q, (size_t)w, unpin, f);
        }
        peer_read(f, 1 + rnd(f) % 9000);
    }
    for (int i = 0; i < 100000 && f->got_len < f->expect_len; i++)
        peer_read(f, 65536);
    cr_assert_eq(queued(f), 0, "everything written (%zu calls)", calls);
    cr_assert_eq(f->got_len, f->expect_len, "received %zu of %zu bytes", f->got_len, f->expect_len);
    cr_assert_eq(memcmp(f->got, f->expect, f->expect_len), 0, "stream out of order or corrupt");
    cr_assert_eq(f->unpins, extents, "every extent unpinned once consumed");
    cr_assert_gt(short_rounds, 10, "the tiny buffer cut rounds short (%zu)", short_rounds);
    cr_assert_gt(f->p.st.discarded, 0, "what the socket did not take was thrown away");
    cr_assert_eq(f->p.st.bytes, f->expect_len, "spliced bytes counted once");
}

Test(conn_splice, partial_splices_into_a_unix_socketpair_arrive_in_order)
{
    fixture f;
    fixture_init(&f, 1 << 20, 4u << 20);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    int small = 4096;
    cr_assert_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    f.fd = sv[0];
    f.peer = sv[1];
    partial_splices(&f);
    fixture_free(&f);
}

Test(conn_splice, partial_splices_into_tcp_arrive_in_order)
{
    fixture f;
    fixture_init(&f, 1 << 20, 4u << 20);
    f.fd = nf_tcp_pair(4096, 4096, &f.peer);
    partial_splices(&f);
    fixture_free(&f);
}

/* Header bytes spliced into a socket the peer has not read yet: the queue's byte area and the arena are then
 * rewritten (the arena recycled and filled again from its start), and the peer still reads the original bytes. */
Test(conn_splice, bytes_in_flight_survive_rewriting_the_queue_and_the_arena)
{
    fixture f;
    fixture_init(&f, 1 << 20, 1u << 20);
    f.fd = nf_tcp_pair(1 << 20, 1 << 20, &f.peer);
    struct iovec iov[64];
    uint8_t a[3000], b[3000];
    memset(a, 'A', sizeof a);
    memset(b, 'B', sizeof b);
    push_bytes(&f, a, sizeof a);
    push_extent(&f, 100, 8000);
    size_t offered;
    ssize_t w = cs_write(&f.p, f.fd, &f.q, 1 << 20, iov, 64, &offered);
    cr_assert_eq(w, (ssize_t)(sizeof a + 8000), "w %zd: %s", w, strerror(errno));
    sq_consume(&f.q, (size_t)w, unpin, &f);
    /* The arena is past half full: the next write recycles it and stages its bytes from offset 0, where the A's
     * were; the queue's byte area reuses its offset 0 for the B's as well. */
    f.p.arena_used = f.p.arena_cap / 2 + 1;
    cr_assert_eq(sq_add_bytes(&f.q, b, sizeof b, NULL), 0);
    hk_extent e = { .storage = 1, .offset = 0, .length = 5000 };
    cr_assert_eq(sq_push_extent(&f.q, &e, f.map, NULL), 0);
    w = cs_write(&f.p, f.fd, &f.q, 1 << 20, iov, 64, &offered);
    cr_assert_eq(w, (ssize_t)(sizeof b + 5000));
    cr_assert_eq(f.p.st.arena_resets, 1);
    cr_assert_eq(memcmp(f.p.arena, b, sizeof b), 0, "the B's were staged where the A's had been");
    expect_add(&f, b, sizeof b);
    expect_add(&f, f.map, 5000);
    for (int i = 0; i < 100000 && f.got_len < f.expect_len; i++)
        peer_read(&f, 65536);
    cr_assert_eq(f.got_len, f.expect_len);
    cr_assert_eq(memcmp(f.got, f.expect, f.expect_len), 0, "bytes in flight were changed");
    fixture_free(&f);
}

/* The file shrinks to one page under a queued extent of three: the first page goes out, then EFAULT at the head. */
Test(conn_splice, truncated_file_gives_efault_at_the_head_not_sigbus)
{
    fixture f;
    fixture_init(&f, 3 * 4096, 1u << 20);
    f.fd = nf_tcp_pair(0, 0, &f.peer);
    struct iovec iov[64];
    push_bytes(&f, (const uint8_t *)"hdr", 3);
    push_extent(&f, 0, 3 * 4096);
    cr_assert_eq(ftruncate(f.file_fd, 4096), 0);
    size_t offered, sent = 0;
    ssize_t w;
    while ((w = cs_write(&f.p, f.fd, &f.q, 1 << 20, iov, 64, &offered)) > 0) {
        sq_consume(&f.q, (size_t)w, unpin, &f);
        sent += (size_t)w;
    }
    cr_assert_eq(w, -1);
    cr_assert_eq(errno, EFAULT, "%s", strerror(errno));
    cr_assert_eq(sent, 3 + 4096, "everything before the missing page went out (%zu)", sent);
    cr_assert_eq(sq_at(&f.q, 0)->kind, SQ_EXTENT, "the head is the extent at fault");
    cr_assert_eq(pipe_level(&f), 0);
    for (int i = 0; i < 1000 && f.got_len < sent; i++)
        peer_read(&f, 65536);
    cr_assert_eq(f.got_len, sent);
    cr_assert_eq(memcmp(f.got, f.expect, sent), 0);
    fixture_free(&f);
}

/* The peer is gone: EPIPE or ECONNRESET, and the process lives on (SIGPIPE was set to ignored by cs_pipe_init). */
Test(conn_splice, a_peer_gone_gives_an_error_not_sigpipe)
{
    signal(SIGPIPE, SIG_DFL);
    fixture f;
    fixture_init(&f, 1 << 20, 4u << 20);
    struct sigaction sa;
    cr_assert_eq(sigaction(SIGPIPE, NULL, &sa), 0);
    cr_assert_eq(sa.sa_handler, SIG_IGN);
    f.fd = nf_tcp_pair(0, 0, &f.peer);
    close(f.peer);
    f.peer = -1;
    struct iovec iov[64];
    int err = 0;
    for (int i = 0; i < 50 && !err; i++) {
        push_extent(&f, 0, 65536);
        size_t offered;
        ssize_t w = cs_write(&f.p, f.fd, &f.q, 1 << 20, iov, 64, &offered);
        if (w > 0)
            sq_consume(&f.q, (size_t)w, unpin, &f);
        else if (w < 0)
            err = errno;
        f.expect_len = 0;
    }
    cr_assert(err == EPIPE || err == ECONNRESET, "error %d (%s)", err, strerror(err));
    cr_assert_eq(pipe_level(&f), 0);
    fixture_free(&f);
}

/* cs_extent_bytes counts only plain extent bytes within cap. */
Test(conn_splice, extent_bytes_within_cap)
{
    fixture f;
    fixture_init(&f, 1 << 16, 1u << 20);
    f.fd = f.peer = -1;
    push_bytes(&f, (const uint8_t *)"0123456789", 10);
    push_extent(&f, 0, 5000);
    push_bytes(&f, (const uint8_t *)"x", 1);
    push_extent(&f, 0, 7000);
    cr_assert_eq(cs_extent_bytes(&f.q, 1 << 20), 12000);
    cr_assert_eq(cs_extent_bytes(&f.q, 10), 0);
    cr_assert_eq(cs_extent_bytes(&f.q, 1010), 1000);
    cr_assert_eq(cs_extent_bytes(&f.q, 5012), 5001);
    fixture_free(&f);
}
