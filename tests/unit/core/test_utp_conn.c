/* Unit tests for core/utp_conn: an initiator and an acceptor joined by an in-memory link that can lose, reorder and
 * duplicate datagrams; byte streams both ways arrive complete and in order, FINs close both ends, the send ring and
 * the receiver's room bound what is in flight, resets and timeouts close the connection. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "utp_conn.h"

#define MS HK_MILLIS(1)
#define QMAX 4096

typedef struct dgram {
    hk_time at;
    size_t len;
    uint8_t b[HK_UTP_MAX_PACKET];
} dgram;

typedef struct end end;
typedef struct link {
    dgram *q[QMAX];      /* in flight towards `to` */
    unsigned n;
    uint64_t rng;
    unsigned loss, dup, reorder;   /* percent */
    hk_time delay;
} link;

struct end {
    hk_utp_conn *c;
    link *out;           /* what this end sends */
    hk_time *now;
    uint8_t *got;        /* received bytes */
    size_t got_len, got_cap, room;
    bool eof, closed;
    hk_utp_close_reason why;
    unsigned sent;
};

static unsigned pct(link *l)
{
    return (unsigned)(hk_splitmix64(&l->rng) % 100);
}

static void e_send(void *ctx, const uint8_t *pkt, size_t len)
{
    end *e = ctx;
    link *l = e->out;
    e->sent++;
    cr_assert_leq(len, HK_UTP_MAX_PACKET);
    unsigned copies = pct(l) < l->dup ? 2 : 1;
    if (pct(l) < l->loss)
        return;
    for (unsigned i = 0; i < copies && l->n < QMAX; i++) {
        dgram *d = malloc(sizeof *d);
        d->at = *e->now + l->delay + (pct(l) < l->reorder ? (hk_splitmix64(&l->rng) % 20) * MS : 0);
        d->len = len;
        memcpy(d->b, pkt, len);
        l->q[l->n++] = d;
    }
}

static void e_deliver(void *ctx, const uint8_t *data, size_t len)
{
    end *e = ctx;
    if (!data) {
        cr_assert(!e->eof, "EOF delivered once");
        e->eof = true;
        return;
    }
    cr_assert(!e->eof);
    cr_assert_leq(e->got_len + len, e->got_cap);
    memcpy(e->got + e->got_len, data, len);
    e->got_len += len;
}

static size_t e_room(void *ctx)
{
    end *e = ctx;
    return e->room;
}

static void e_closed(void *ctx, hk_utp_close_reason why)
{
    end *e = ctx;
    cr_assert(!e->closed);
    e->closed = true;
    e->why = why;
}

static const hk_utp_conn_ops ops = { .send = e_send, .deliver = e_deliver, .room = e_room, .closed = e_closed };

static void end_init(end *e, link *out, hk_time *now, size_t cap, const hk_utp_conn_limits *lim)
{
    memset(e, 0, sizeof *e);
    e->out = out;
    e->now = now;
    e->got = malloc(cap ? cap : 1);
    e->got_cap = cap;
    e->room = 1 << 20;
    e->c = hk_utp_conn_new(lim, &ops, e);
    cr_assert_not_null(e->c);
}

/* Delivers every datagram due by *now from l to e (the acceptor is created on the first SYN). */
static void pump(link *l, end *e, hk_time now, bool *accepted)
{
    for (unsigned i = 0; i < l->n;) {
        dgram *d = l->q[i];
        if (d->at > now) {
            i++;
            continue;
        }
        memmove(&l->q[i], &l->q[i + 1], (--l->n - i) * sizeof l->q[0]); /* in order unless delayed apart */
        hk_utp_header h;
        if (accepted && !*accepted) {
            cr_assert_eq(hk_utp_parse(d->b, d->len, &h), HK_UTP_OK);
            cr_assert_eq(h.type, HK_UTP_ST_SYN);
            hk_utp_conn_accept(e->c, &h, 0x7000, now);
            *accepted = true;
        } else {
            (void)hk_utp_conn_input(e->c, d->b, d->len, now);
        }
        free(d);
    }
}

static void drain(link *l)
{
    while (l->n)
        free(l->q[--l->n]);
}

typedef struct pair {
    hk_time now;
    link ab, ba;         /* initiator -> acceptor, acceptor -> initiator */
    end a, b;            /* initiator, acceptor */
    bool accepted;
} pair;

static void pair_init(pair *p, unsigned loss, unsigned dup, unsigned reorder, size_t cap_a, size_t cap_b,
                      const hk_utp_conn_limits *lim)
{
    memset(p, 0, sizeof *p);
    p->now = HK_SECONDS(1000);
    p->ab = (link){ .rng = 1, .loss = loss, .dup = dup, .reorder = reorder, .delay = 5 * MS };
    p->ba = (link){ .rng = 2, .loss = loss, .dup = dup, .reorder = reorder, .delay = 5 * MS };
    end_init(&p->a, &p->ab, &p->now, cap_a, lim);
    end_init(&p->b, &p->ba, &p->now, cap_b, lim);
}

static void pair_free(pair *p)
{
    drain(&p->ab);
    drain(&p->ba);
    hk_utp_conn_free(p->a.c);
    hk_utp_conn_free(p->b.c);
    free(p->a.got);
    free(p->b.got);
}

/* One millisecond of simulated time: links, timers, and each side writing what its ring takes from src. */
static void step(pair *p, const uint8_t *src_a, size_t len_a, size_t *off_a, const uint8_t *src_b, size_t len_b,
                 size_t *off_b)
{
    p->now += MS;
    pump(&p->ab, &p->b, p->now, &p->accepted);
    pump(&p->ba, &p->a, p->now, NULL);
    if (!p->a.closed && hk_utp_conn_deadline(p->a.c) <= p->now)
        hk_utp_conn_tick(p->a.c, p->now);
    if (p->accepted && !p->b.closed && hk_utp_conn_deadline(p->b.c) <= p->now)
        hk_utp_conn_tick(p->b.c, p->now);
    if (!p->a.closed && *off_a < len_a) {
        *off_a += hk_utp_conn_write(p->a.c, src_a + *off_a, len_a - *off_a, p->now);
        if (*off_a == len_a)
            hk_utp_conn_shutdown(p->a.c, p->now);
    }
    if (p->accepted && !p->b.closed && *off_b < len_b) {
        *off_b += hk_utp_conn_write(p->b.c, src_b + *off_b, len_b - *off_b, p->now);
        if (*off_b == len_b)
            hk_utp_conn_shutdown(p->b.c, p->now);
    }
    cr_assert_leq(hk_utp_conn_unacked(p->a.c), 128 * 1024);
    if (p->accepted)
        cr_assert_leq(hk_utp_conn_unacked(p->b.c), 128 * 1024);
}

static uint8_t *pattern(size_t n, uint64_t seed)
{
    uint8_t *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)hk_splitmix64(&seed);
    return b;
}

/* Transfers len_a bytes a->b and len_b bytes b->a over a link with those faults; asserts both arrive intact. */
static void transfer(unsigned loss, unsigned dup, unsigned reorder, size_t len_a, size_t len_b, hk_time bound)
{
    pair p;
    pair_init(&p, loss, dup, reorder, len_b, len_a, NULL);
    uint8_t *sa = pattern(len_a, 11), *sb = pattern(len_b, 22);
    size_t oa = 0, ob = 0;
    hk_utp_conn_connect(p.a.c, 0x1234, 0xfff0, p.now); /* near the wrap of the 16-bit seq_nr */
    if (len_a == 0)
        hk_utp_conn_shutdown(p.a.c, p.now);
    hk_time start = p.now;
    while (!(p.a.closed && p.b.closed) && p.now - start < bound) {
        step(&p, sa, len_a, &oa, sb, len_b, &ob);
        if (p.accepted && len_b == 0 && ob == 0) {
            hk_utp_conn_shutdown(p.b.c, p.now);
            ob = 1; /* shut down once */
        }
    }
    cr_assert(p.a.closed && p.b.closed, "both ends closed (loss %u dup %u reorder %u): %d %d why %d %d got %zu %zu eof %d %d", loss, dup, reorder, p.a.closed, p.b.closed, p.a.why, p.b.why, p.b.got_len, p.a.got_len, p.a.eof, p.b.eof);
    hk_utp_conn_stats sb0, sa0;
    hk_utp_conn_stats_get(p.b.c, &sb0);
    hk_utp_conn_stats_get(p.a.c, &sa0);
    cr_log_info("t %.3f b: rtx %lu to %lu sent %lu rcv %lu; a: rtx %lu to %lu sent %lu rcv %lu dropwin %lu", (double)(p.now - start) / 1e9,
                (unsigned long)sb0.retransmits, (unsigned long)sb0.timeouts, (unsigned long)sb0.packets_sent, (unsigned long)sb0.packets_received,
                (unsigned long)sa0.retransmits, (unsigned long)sa0.timeouts, (unsigned long)sa0.packets_sent, (unsigned long)sa0.packets_received, (unsigned long)sa0.dropped_out_of_window);
    cr_assert_eq(p.a.why, HK_UTP_CLOSED_DONE, "a %d", p.a.why);
    cr_assert_eq(p.b.why, HK_UTP_CLOSED_DONE, "b %d, got %zu %zu", p.b.why, p.b.got_len, p.a.got_len);
    cr_assert_eq(p.b.got_len, len_a);
    cr_assert_eq(p.a.got_len, len_b);
    cr_assert(memcmp(p.b.got, sa, len_a) == 0);
    cr_assert(memcmp(p.a.got, sb, len_b) == 0);
    cr_assert(p.a.eof && p.b.eof);
    hk_utp_conn_stats st;
    hk_utp_conn_stats_get(p.b.c, &st);
    cr_log_info("loss %u: retransmits %lu fast %lu timeouts %lu, %.3f s", loss, (unsigned long)st.retransmits,
                (unsigned long)st.fast_retransmits, (unsigned long)st.timeouts, (double)(p.now - start) / 1e9);
    if (loss)
        cr_assert_gt(st.retransmits, 0);
    else
        cr_assert_eq(st.retransmits, 0);
    free(sa);
    free(sb);
    pair_free(&p);
}

Test(utp_conn, clean_link_both_ways)
{
    transfer(0, 0, 0, 300000, 1000000, HK_SECONDS(60));
}

Test(utp_conn, loss_reordering_and_duplication)
{
    transfer(5, 5, 20, 200000, 800000, HK_SECONDS(600));
}

Test(utp_conn, heavy_loss)
{
    transfer(20, 0, 10, 20000, 200000, HK_SECONDS(1200));
}

Test(utp_conn, empty_streams)
{
    transfer(0, 0, 0, 0, 0, HK_SECONDS(10));
}

Test(utp_conn, accept_answers_syn_with_state)
{
    pair p;
    pair_init(&p, 0, 0, 0, 0, 0, NULL);
    hk_utp_conn_connect(p.a.c, 0x4242, 100, p.now);
    cr_assert_eq(p.ab.n, 1);
    hk_utp_header syn, st;
    cr_assert_eq(hk_utp_parse(p.ab.q[0]->b, p.ab.q[0]->len, &syn), HK_UTP_OK);
    cr_assert_eq(syn.type, HK_UTP_ST_SYN);
    cr_assert_eq(syn.connection_id, 0x4242);
    cr_assert_eq(syn.seq_nr, 100);
    hk_utp_conn_accept(p.b.c, &syn, 0x9000, p.now);
    cr_assert_eq(p.ba.n, 1);
    cr_assert_eq(hk_utp_parse(p.ba.q[0]->b, p.ba.q[0]->len, &st), HK_UTP_OK);
    cr_assert_eq(st.type, HK_UTP_ST_STATE);
    cr_assert_eq(st.connection_id, 0x4242);    /* the acceptor sends with the SYN's id */
    cr_assert_eq(st.ack_nr, 100);
    cr_assert_eq(st.seq_nr, 0x9000);
    cr_assert_eq(hk_utp_conn_recv_id(p.b.c), 0x4243);
    cr_assert_eq(hk_utp_conn_state(p.b.c), HK_UTP_CONNECTED);
    /* A repeated SYN (our STATE lost) is answered again; the first data packet reuses the STATE's seq_nr. */
    cr_assert_eq(hk_utp_conn_input(p.b.c, p.ab.q[0]->b, p.ab.q[0]->len, p.now), 0);
    cr_assert_eq(p.ba.n, 2);
    cr_assert_eq(hk_utp_conn_write(p.b.c, (const uint8_t *)"hello", 5, p.now), 5);
    cr_assert_eq(p.ba.n, 3);
    hk_utp_header d;
    cr_assert_eq(hk_utp_parse(p.ba.q[2]->b, p.ba.q[2]->len, &d), HK_UTP_OK);
    cr_assert_eq(d.type, HK_UTP_ST_DATA);
    cr_assert_eq(d.seq_nr, 0x9000);
    cr_assert_eq(p.ba.q[2]->len, HK_UTP_HEADER + 5);
    /* A packet with another connection id is not ours. */
    uint8_t other[HK_UTP_HEADER];
    memcpy(other, p.ba.q[2]->b, sizeof other);
    other[2] = 0x55, other[3] = 0x55;
    cr_assert_eq(hk_utp_conn_input(p.b.c, other, sizeof other, p.now), -1);
    pair_free(&p);
}

Test(utp_conn, send_ring_bounds_what_is_taken)
{
    hk_utp_conn_limits lim;
    hk_utp_conn_limits_default(&lim);
    lim.send_buffer = 16 * 1024;
    pair p;
    pair_init(&p, 0, 0, 0, 0, 0, &lim);
    hk_utp_conn_connect(p.a.c, 7, 1, p.now);
    size_t oa = 0, ob = 0;
    while (!p.accepted)
        step(&p, NULL, 0, &oa, NULL, 0, &ob);
    uint8_t *big = pattern(100000, 3);
    size_t took = hk_utp_conn_write(p.b.c, big, 100000, p.now);
    cr_assert_eq(took, 16 * 1024);
    cr_assert_eq(hk_utp_conn_writable(p.b.c), 0);
    cr_assert_eq(hk_utp_conn_write(p.b.c, big, 100, p.now), 0);
    free(big);
    pair_free(&p);
}

Test(utp_conn, receiver_room_is_backpressure)
{
    pair p;
    pair_init(&p, 0, 0, 0, 400000, 0, NULL);
    p.a.room = 0;                                /* the initiator's application reads nothing */
    hk_utp_conn_connect(p.a.c, 7, 1, p.now);
    uint8_t *src = pattern(400000, 5);
    size_t oa = 0, ob = 0;
    for (int i = 0; i < 3000; i++)
        step(&p, NULL, 0, &oa, src, 400000, &ob);
    cr_assert_eq(p.a.got_len, 0);
    cr_assert_leq(ob, 128 * 1024 + 2 * HK_UTP_MAX_PAYLOAD, "the ring took %zu", ob);
    cr_assert(!p.b.closed, "zero-window probes keep the connection");
    p.a.room = 1 << 20;
    for (int i = 0; i < 60000 && !p.b.closed; i++)
        step(&p, NULL, 0, &oa, src, 400000, &ob);
    cr_assert_eq(p.a.got_len, 400000);
    cr_assert(memcmp(p.a.got, src, 400000) == 0);
    free(src);
    pair_free(&p);
}

Test(utp_conn, reset_closes)
{
    pair p;
    pair_init(&p, 0, 0, 0, 0, 0, NULL);
    hk_utp_conn_connect(p.a.c, 9, 1, p.now);
    size_t oa = 0, ob = 0;
    for (int i = 0; i < 20; i++)
        step(&p, NULL, 0, &oa, NULL, 0, &ob);
    hk_utp_conn_reset(p.a.c, p.now);
    cr_assert(p.a.closed);
    cr_assert_eq(p.a.why, HK_UTP_CLOSED_RESET);
    for (int i = 0; i < 20; i++)
        step(&p, NULL, 0, &oa, NULL, 0, &ob);
    cr_assert(p.b.closed);
    cr_assert_eq(p.b.why, HK_UTP_CLOSED_RESET);
    pair_free(&p);
}

Test(utp_conn, silent_peer_times_out)
{
    pair p;
    pair_init(&p, 100, 0, 0, 0, 0, NULL);        /* every datagram lost */
    p.b.closed = true;                           /* no acceptor */
    hk_utp_conn_connect(p.a.c, 9, 1, p.now);
    uint8_t x[1000] = { 0 };
    hk_utp_conn_write(p.a.c, x, sizeof x, p.now);
    size_t oa = 0, ob = 0;
    for (int i = 0; i < 200000 && !p.a.closed; i++)
        step(&p, NULL, 0, &oa, NULL, 0, &ob);
    cr_assert(p.a.closed);
    cr_assert_eq(p.a.why, HK_UTP_CLOSED_TIMEOUT);
    hk_utp_conn_stats st;
    hk_utp_conn_stats_get(p.a.c, &st);
    cr_assert_eq(st.timeouts, HK_UTP_MAX_TIMEOUTS + 1);
    pair_free(&p);
}

Test(utp_conn, a_syn_never_followed_closes_in_10_s)
{
    pair p;
    pair_init(&p, 0, 0, 0, 0, 0, NULL);
    hk_utp_conn_connect(p.a.c, 9, 1, p.now);
    hk_utp_header syn;
    cr_assert_eq(hk_utp_parse(p.ab.q[0]->b, p.ab.q[0]->len, &syn), HK_UTP_OK);
    hk_utp_conn_accept(p.b.c, &syn, 1, p.now);
    cr_assert_eq(hk_utp_conn_deadline(p.b.c), p.now + HK_SECONDS(10));
    hk_utp_conn_tick(p.b.c, p.now + HK_SECONDS(9));
    cr_assert(!p.b.closed);
    hk_utp_conn_tick(p.b.c, p.now + HK_SECONDS(10));
    cr_assert(p.b.closed);
    cr_assert_eq(p.b.why, HK_UTP_CLOSED_TIMEOUT);
    pair_free(&p);
}

Test(utp_conn, idle_timeout)
{
    pair p;
    pair_init(&p, 0, 0, 0, 0, 0, NULL);
    hk_utp_conn_connect(p.a.c, 9, 1, p.now);
    size_t oa = 0, ob = 0;
    for (int i = 0; i < 20; i++)
        step(&p, NULL, 0, &oa, NULL, 0, &ob);
    cr_assert(p.accepted);
    p.now += HK_SECONDS(121);
    hk_utp_conn_tick(p.b.c, p.now);
    cr_assert(p.b.closed);
    cr_assert_eq(p.b.why, HK_UTP_CLOSED_TIMEOUT);
    pair_free(&p);
}

Test(utp_conn, selective_ack_resends_the_hole)
{
    pair p;
    pair_init(&p, 0, 0, 0, 0, 0, NULL);
    hk_utp_conn_connect(p.a.c, 0x100, 1, p.now);
    hk_utp_header syn;
    cr_assert_eq(hk_utp_parse(p.ab.q[0]->b, p.ab.q[0]->len, &syn), HK_UTP_OK);
    syn.wnd_size = 1 << 20;
    hk_utp_conn_accept(p.b.c, &syn, 500, p.now);
    drain(&p.ba);
    uint8_t *src = pattern(10 * HK_UTP_MAX_PAYLOAD, 9);
    uint8_t st[HK_UTP_HEADER + 6];
    memset(st, 0, sizeof st);
    st[0] = HK_UTP_ST_STATE << 4 | 1;
    st[2] = 0x01, st[3] = 0x01;                  /* b receives on the SYN's id + 1 */
    st[12] = 0x00, st[13] = 0x10;                /* wnd 1 MiB */
    /* slow start: packets sent and acknowledged until the window holds 8 packets (seq 500 onwards) */
    uint16_t next = 500;
    while (next < 530) {
        hk_utp_conn_write(p.b.c, src, HK_UTP_MAX_PAYLOAD, p.now);
        next++;
        st[18] = (uint8_t)((next - 1) >> 8), st[19] = (uint8_t)(next - 1);
        cr_assert_eq(hk_utp_conn_input(p.b.c, st, HK_UTP_HEADER, p.now), 0);
    }
    cr_assert_eq(hk_utp_conn_unacked(p.b.c), 0);
    cr_assert_eq(hk_utp_conn_write(p.b.c, src, 8 * HK_UTP_MAX_PAYLOAD, p.now), 8 * HK_UTP_MAX_PAYLOAD);
    unsigned before = p.b.sent;
    hk_utp_conn_stats s0;
    hk_utp_conn_stats_get(p.b.c, &s0);
    /* 530 lost; the peer holds 531..534: ack 529 with a mask whose bits 0..3 are 531..534 */
    st[1] = 1;
    st[20] = 0, st[21] = 4, st[22] = 0x0f, st[23] = st[24] = st[25] = 0;
    cr_assert_eq(hk_utp_conn_input(p.b.c, st, sizeof st, p.now + MS), 0);
    hk_utp_conn_stats s1;
    hk_utp_conn_stats_get(p.b.c, &s1);
    cr_assert_eq(s1.retransmits, s0.retransmits + 1, "the hole (530) is resent at once");
    cr_assert_geq(p.b.sent, before + 1);
    hk_utp_header h;
    dgram *last = p.ba.q[p.ba.n - 1];
    cr_assert_eq(hk_utp_parse(last->b, last->len, &h), HK_UTP_OK);
    cr_assert_eq(h.seq_nr, 530);
    /* the same ack again within an rtt resends nothing more */
    cr_assert_eq(hk_utp_conn_input(p.b.c, st, sizeof st, p.now + 2 * MS), 0);
    hk_utp_conn_stats_get(p.b.c, &s1);
    cr_assert_eq(s1.retransmits, s0.retransmits + 1);
    free(src);
    pair_free(&p);
}

/* ST_STATE from the initiator of `pair_init`'s acceptor test: ack `ack`, window 1 MiB, timestamp_difference `diff`. */
static void state_to_b(pair *p, uint16_t ack, uint32_t diff)
{
    uint8_t st[HK_UTP_HEADER];
    memset(st, 0, sizeof st);
    st[0] = HK_UTP_ST_STATE << 4 | 1;
    st[2] = 0x01, st[3] = 0x01;
    st[8] = (uint8_t)(diff >> 24), st[9] = (uint8_t)(diff >> 16), st[10] = (uint8_t)(diff >> 8), st[11] = (uint8_t)diff;
    st[13] = 0x10;
    st[18] = (uint8_t)(ack >> 8), st[19] = (uint8_t)ack;
    cr_assert_eq(hk_utp_conn_input(p->b.c, st, sizeof st, p->now), 0);
}

Test(utp_conn, ledbat_backs_off_when_the_queuing_delay_passes_the_target)
{
    pair p;
    pair_init(&p, 0, 0, 0, 0, 0, NULL);
    hk_utp_conn_connect(p.a.c, 0x100, 1, p.now);
    hk_utp_header syn;
    cr_assert_eq(hk_utp_parse(p.ab.q[0]->b, p.ab.q[0]->len, &syn), HK_UTP_OK);
    syn.wnd_size = 1 << 20;
    hk_utp_conn_accept(p.b.c, &syn, 1000, p.now);
    uint8_t *src = pattern(HK_UTP_MAX_PAYLOAD, 4);
    uint16_t next = 1000;
    /* 200 packets, each acknowledged with a steady one-way delay of 20 ms: the window grows */
    for (int i = 0; i < 200; i++) {
        hk_utp_conn_write(p.b.c, src, HK_UTP_MAX_PAYLOAD, p.now);
        p.now += MS;
        state_to_b(&p, next++, 20000);
    }
    hk_utp_conn_stats s;
    hk_utp_conn_stats_get(p.b.c, &s);
    uint64_t grown = s.cwnd;
    cr_assert_gt(grown, 10 * HK_UTP_MAX_PAYLOAD);
    cr_assert_eq(s.queuing_delay_us, 0);
    /* the same with 300 ms of queuing on top: the window shrinks by about one packet per window's worth of acks */
    for (int i = 0; i < 1000; i++) {
        hk_utp_conn_write(p.b.c, src, HK_UTP_MAX_PAYLOAD, p.now);
        p.now += MS;
        state_to_b(&p, next++, 320000);
    }
    hk_utp_conn_stats_get(p.b.c, &s);
    cr_assert_eq(s.queuing_delay_us, 300000);
    cr_assert_lt(s.cwnd, grown - 5 * HK_UTP_MAX_PAYLOAD, "cwnd %llu after %llu", (unsigned long long)s.cwnd,
                 (unsigned long long)grown);
    cr_assert_geq(s.cwnd, HK_UTP_MAX_PAYLOAD);
    cr_assert_eq(s.retransmits, 0, "no loss: the delay alone did it");
    free(src);
    drain(&p.ab);
    pair_free(&p);
}
