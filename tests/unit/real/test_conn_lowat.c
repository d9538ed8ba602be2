/* Tests of backend-real/lib/net/conn's read coalescing (issue 12, CPU per GiB at K = 500; conn.h, read_coalesce):
 * while a deep-pipeline peer's queue is held (also emptied by a write), its socket's SO_RCVLOWAT waits for the batch
 * of requests that would fill it, so the batch is read once and written at once; the wait runs out with the hold
 * (the low water is lowered, what came is read), the depth halves until the peer is no longer held; EOF still wakes
 * the loop; a shallow peer and a hub with read_coalesce off keep the low water at 1.
 *
 * The test plays the core: every 17 bytes read ("a request") queue one 16 KiB block of the mapped file. */
#include <criterion/criterion.h>

#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "net_fixture.h"

#define REQ 17u
#define BLOCK (16u << 10)

typedef struct lw {
    struct ev_loop *loop;
    hk_conn_hub *hub;
    hk_conn *c;
    int peer;
    int file_fd;
    char path[64];
    uint8_t *map;
    size_t map_len;
    uint64_t next_off;        /* the next block the "core" queues */
    size_t partial;           /* bytes of a request read so far */
    unsigned recvs;           /* on_recv calls */
    size_t last_recv;         /* bytes of the last one */
    size_t got;               /* bytes the peer received */
    bool closed;
    hk_close_reason why;
} lw;

static void on_recv(void *ctx, hk_conn *c, const uint8_t *bytes, size_t len)
{
    lw *t = ctx;
    (void)bytes;
    t->recvs++;
    t->last_recv = len;
    t->partial += len;
    for (; t->partial >= REQ; t->partial -= REQ) {
        hk_segment s = {.kind = HK_SEG_EXTENT};
        s.u.extent.storage = 1;
        s.u.extent.offset = t->next_off % (t->map_len - BLOCK);
        s.u.extent.length = BLOCK;
        t->next_off += BLOCK;
        hk_conn_send(c, &s, 1);
    }
}

static void on_room(void *ctx, hk_conn *c, size_t room)
{
    (void)ctx, (void)c, (void)room;
}

static void on_closed(void *ctx, hk_conn *c, hk_close_reason why, int error)
{
    lw *t = ctx;
    (void)c, (void)error;
    t->closed = true;
    t->why = why;
    t->c = NULL;
}

static void on_fault(void *ctx, hk_conn *c, const hk_extent *ext, const char *why)
{
    (void)ctx, (void)c, (void)ext;
    cr_assert_fail("unexpected fault: %s", why);
}

static int pin(void *ctx, const hk_extent *ext, struct iovec *iov, const char **why)
{
    lw *t = ctx;
    (void)why;
    iov->iov_base = t->map + ext->offset;
    iov->iov_len = ext->length;
    return 0;
}

static void unpin(void *ctx, const hk_extent *ext)
{
    (void)ctx, (void)ext;
}

static const hk_conn_ops ops = {
    .on_recv = on_recv, .on_room = on_room, .on_closed = on_closed, .on_fault = on_fault, .pin = pin, .unpin = unpin,
};

static lw *setup(bool read_coalesce)
{
    lw *t = calloc(1, sizeof *t);
    t->loop = ev_loop_new(EVFLAG_AUTO);
    hk_conn_limits lim;
    hk_conn_limits_default(&lim);
    lim.hold_max = 0.2;
    lim.read_coalesce = read_coalesce;
    t->hub = hk_conn_hub_new(t->loop, &lim, &ops, t);
    cr_assert_not_null(t->hub);
    t->map_len = 1 << 20;
    uint8_t *content = calloc(1, t->map_len);
    snprintf(t->path, sizeof t->path, "/tmp/hekate-lowat-XXXXXX");
    t->map = nf_map_temp_file(t->path, content, t->map_len, &t->file_fd);
    free(content);
    t->c = hk_conn_new(t->hub, nf_tcp_pair(4 << 20, 4 << 20, &t->peer));
    cr_assert_not_null(t->c);
    int one = 1; /* a leecher's requests leave as it sends them (hekate-swarm, libtorrent): no Nagle */
    cr_assert_eq(setsockopt(t->peer, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
    return t;
}

static void teardown_lw(lw *t)
{
    hk_conn_hub_free(t->hub);
    close(t->peer);
    munmap(t->map, t->map_len);
    close(t->file_fd);
    unlink(t->path);
    ev_loop_destroy(t->loop);
    free(t);
}

/* A few loop iterations (a read, then the flush that writes it) and whatever reached the peer, drained. */
static void spin(lw *t)
{
    uint8_t buf[1 << 16];
    for (int i = 0; i < 4; i++) {
        ev_run(t->loop, EVRUN_NOWAIT);
        usleep(1000);
        ssize_t r;
        while ((r = recv(t->peer, buf, sizeof buf, MSG_DONTWAIT)) > 0)
            t->got += (size_t)r;
    }
}

static void requests(lw *t, unsigned n)
{
    uint8_t req[REQ * 64];
    cr_assert_leq(n, 64);
    memset(req, 6, sizeof req);
    cr_assert_eq(send(t->peer, req, REQ * n, 0), (ssize_t)(REQ * n));
}

static int lowat(const lw *t)
{
    int v = -1;
    socklen_t len = sizeof v;
    cr_assert_eq(getsockopt(hk_conn_fd(t->c), SOL_SOCKET, SO_RCVLOWAT, &v, &len), 0);
    return v;
}

/* 16 requests at once: the pipeline's depth (256 KiB) and the ratio (16 KiB per 17 bytes) are learned, the queue
 * written at once. */
static void prime(lw *t)
{
    requests(t, 16);
    spin(t);
    cr_assert_eq(t->got, 16 * BLOCK, "the first pipeline is written at once");
    cr_assert_eq(hk_conn_queued(t->c), 0);
}

Test(conn_lowat, a_batch_of_requests_is_read_once_and_written_at_once)
{
    lw *t = setup(true);
    prime(t);
    /* the emptied queue waits for half the depth (128 KiB): 7/8 of its 8 requests */
    int water = lowat(t);
    cr_assert_eq(water, 128 * 1024 / 8 * 7 / (16 * BLOCK / (16 * REQ)), "low water %d", water);
    cr_assert_gt(lowat(t), 6 * (int)REQ);
    cr_assert_leq(lowat(t), 7 * (int)REQ);
    unsigned recvs = t->recvs;
    for (int i = 0; i < 6; i++) { /* one request per send, as a leecher sends them */
        requests(t, 1);
        spin(t);
    }
    cr_assert_eq(t->recvs, recvs, "6 requests are below the low water: not read");
    cr_assert_eq(t->got, 16 * BLOCK);
    requests(t, 1);
    spin(t);
    cr_assert_eq(t->recvs, recvs + 1, "the 7th request meets it: one read for the batch (%u reads, last %zu)", t->recvs - recvs, t->last_recv);
    cr_assert_eq(t->last_recv, 7 * REQ);
    cr_assert_eq(t->got, 23 * BLOCK, "the batch (7 blocks, short of the 8 of the target) is written at once");
    hk_conn_stats st;
    hk_conn_hub_stats(t->hub, &st);
    cr_assert_geq(st.lowat_reads, 1);
    cr_assert_geq(st.holds_empty, 2);
    cr_assert_eq(lowat(t), water, "the same batch is waited for again");
    cr_assert_eq(st.lowat_sets, 1, "one setsockopt for all of it");
    teardown_lw(t);
}

/* A peer that stops short of the batch: what it sent is read when the hold runs out (hold_max 0.2 s); each run-out
 * halves the depth, so after two the peer is no longer held and every byte wakes the loop again. */
Test(conn_lowat, a_short_batch_is_read_when_the_hold_runs_out)
{
    lw *t = setup(true);
    prime(t);
    unsigned recvs = t->recvs;
    requests(t, 2);
    ev_now_update(t->loop);
    ev_tstamp t0 = ev_now(t->loop);
    spin(t);
    cr_assert_eq(t->recvs, recvs, "2 requests wait");
    for (int i = 0; i < 400 && t->recvs == recvs; i++)
        spin(t);
    ev_now_update(t->loop);
    cr_assert_eq(t->recvs, recvs + 1, "read once the hold ran out");
    cr_assert_geq(ev_now(t->loop) - t0, 0.19);
    spin(t);
    cr_assert_eq(t->got, 18 * BLOCK, "and written");
    cr_assert_gt(lowat(t), 1, "depth 128 KiB: still held, for half the batch");
    cr_assert_leq(lowat(t), 4 * (int)REQ);
    requests(t, 1);
    for (int i = 0; i < 400 && t->recvs == recvs + 1; i++)
        spin(t);
    spin(t);
    cr_assert_eq(t->got, 19 * BLOCK);
    cr_assert_eq(lowat(t), 1, "depth 64 KiB: no longer held");
    recvs = t->recvs;
    requests(t, 1);
    spin(t);
    cr_assert_eq(t->recvs, recvs + 1, "a single request is read at once");
    cr_assert_eq(t->got, 20 * BLOCK);
    hk_conn_stats st;
    hk_conn_hub_stats(t->hub, &st);
    cr_assert_eq(st.holds_expired, 2);
    teardown_lw(t);
}

/* EOF wakes the loop at any low water: the request before it is read and the close reported without waiting. */
Test(conn_lowat, eof_is_seen_under_a_raised_low_water)
{
    lw *t = setup(true);
    prime(t);
    cr_assert_gt(lowat(t), 1);
    unsigned recvs = t->recvs;
    requests(t, 1);
    shutdown(t->peer, SHUT_WR);
    for (int i = 0; i < 20 && !t->closed; i++)
        spin(t);
    cr_assert(t->closed, "EOF reported within 20 iterations (hold_max is 0.2 s)");
    cr_assert_eq(t->why, HK_CLOSED_BY_PEER);
    cr_assert_eq(t->recvs, recvs + 1, "the request before the EOF was read");
    teardown_lw(t);
}

/* read_coalesce off: the low water stays 1 and every request is read as it comes (the holds still coalesce
 * writes). A shallow peer (one request at a time) never gets a raised one either. */
Test(conn_lowat, off_and_shallow_peers_keep_the_low_water_at_one)
{
    lw *t = setup(false);
    prime(t);
    cr_assert_eq(lowat(t), 1);
    unsigned recvs = t->recvs;
    for (int i = 0; i < 3; i++) {
        requests(t, 1);
        spin(t);
    }
    cr_assert_eq(t->recvs, recvs + 3, "each request read as it came (%u)", t->recvs - recvs);
    teardown_lw(t);

    t = setup(true);
    for (int i = 0; i < 4; i++) {
        requests(t, 1);
        spin(t);
        cr_assert_eq(t->got, (size_t)(i + 1) * BLOCK, "request %d served at once", i);
        cr_assert_eq(lowat(t), 1);
    }
    teardown_lw(t);
}
