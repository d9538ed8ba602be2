/* Unit tests for core/dht through a fake runtime: a shared clock and an in-memory network of DHT nodes exchanging
 * datagrams (10 ms latency). A node alone: ping, find_node, get_peers with a token, announce_peer validated by the
 * token (the previous secret still accepted, an older one not), unknown methods and bad queries answered with
 * errors, replies bounded by the query's size, a flood from many addresses that allocates nothing and is rate
 * limited. A network: bootstrap through one node, a torrent announced to the nodes closest to its info-hash and
 * found by a get_peers of another node, private torrents never announced, the global query cap held with many
 * torrents (the period grows instead), saved state round trip, and determinism (same seeds, same statistics). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dht.h"
#include "dht_id.h"
#include "dht_table.h"
#include "hash.h"
#include "krpc.h"

#define MAXN 64
#define QCAP 200000
#define LAT HK_MILLIS(10)

typedef struct pkt {
    hk_time at;
    hk_addr from, to;
    uint16_t len;
    uint8_t data[KRPC_MAX_DATAGRAM];
} pkt;

typedef struct net net;
typedef struct nctx {
    net *n;
    int idx;
    uint64_t rnd;
    hk_time wake;
    hk_addr addr;
} nctx;

struct net {
    hk_time now;
    nctx ctx[MAXN];
    hk_dht *node[MAXN];
    int nnodes;
    pkt *q;
    size_t qhead, qtail;
    uint64_t sent_by[MAXN];
    /* the seeder's sends per second window */
    int watch;
    hk_time win_start;
    uint64_t win_count, win_max;
    bool v6;                  /* new nodes get IPv6 addresses and serve IPv6 only */
    bool pub;                 /* new nodes get public IPv4 addresses (100.64.0.0/10: not exempt from BEP 42) */
    /* captured replies to the test's own address */
    pkt last_to_test;
    int got_to_test;
    uint64_t wakes;           /* hk_dht_on_wake calls made by run() */
    uint64_t wake_limit;      /* run() stops after this many (0: no limit), so a spinning node fails, not hangs */
};

static hk_addr test_addr = { .family = 4, .ip = { 10, 9, 9, 9 }, .port = 999 };

static hk_time f_now(void *c) { return ((nctx *)c)->n->now; }
static void f_wake(void *c, hk_time t) { ((nctx *)c)->wake = t; }
static void f_rand(void *c, void *buf, size_t len)
{
    nctx *x = c;
    uint8_t *b = buf;
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)hk_splitmix64(&x->rnd);
}

static void f_send(void *c, const hk_addr *to, const uint8_t *bytes, size_t len)
{
    nctx *x = c;
    net *n = x->n;
    cr_assert_leq(len, KRPC_MAX_DATAGRAM);
    n->sent_by[x->idx]++;
    if (x->idx == n->watch) {
        if (n->now - n->win_start >= HK_NS_PER_SEC) {
            n->win_start = n->now;
            n->win_count = 0;
        }
        if (++n->win_count > n->win_max)
            n->win_max = n->win_count;
    }
    if (memcmp(to, &test_addr, sizeof *to) == 0) {
        n->last_to_test.len = (uint16_t)len;
        memcpy(n->last_to_test.data, bytes, len);
        n->got_to_test++;
        return;
    }
    if (n->qtail - n->qhead >= QCAP)
        return;
    pkt *p = &n->q[n->qtail++ % QCAP];
    p->at = n->now + LAT;
    p->from = x->addr;
    p->to = *to;
    p->len = (uint16_t)len;
    memcpy(p->data, bytes, len);
}

static hk_addr addr_of(int i)
{
    hk_addr a = { .family = 4, .ip = { 10, 0, (uint8_t)(i >> 8), (uint8_t)i }, .port = 6881 };
    return a;
}

static hk_addr addr6_of(int i)
{
    hk_addr a = { .family = 6, .ip = { 0x20, 0x01, 0x0d, 0xb8, [14] = (uint8_t)(i >> 8), [15] = (uint8_t)i },
                  .port = 6881 };
    return a;
}

static net *net_new(void)
{
    net *n = calloc(1, sizeof *n);
    n->q = calloc(QCAP, sizeof *n->q);
    n->now = HK_SECONDS(1000);
    n->watch = -1;
    return n;
}

static hk_dht *add_node(net *n, uint64_t seed, hk_dht_config *cfg_in)
{
    int i = n->nnodes++;
    nctx *x = &n->ctx[i];
    *x = (nctx){ .n = n, .idx = i, .rnd = seed, .wake = HK_TIME_NEVER, .addr = n->v6 ? addr6_of(i) : addr_of(i) };
    if (n->pub)
        x->addr.ip[0] = 100, x->addr.ip[1] = 64;
    hk_dht_runtime rt = { .base = { .ctx = x, .now = f_now, .wake_at = f_wake, .random_bytes = f_rand },
                          .udp_send = f_send };
    hk_dht_config cfg;
    hk_dht_config_defaults(&cfg);
    if (cfg_in)
        cfg = *cfg_in;
    if (n->v6) {
        cfg.v4 = false;
        cfg.v6 = true;
    }
    n->node[i] = hk_dht_new(&cfg, &rt);
    cr_assert_not_null(n->node[i]);
    return n->node[i];
}

static int node_at(net *n, const hk_addr *a)
{
    for (int i = 0; i < n->nnodes; i++)
        if (memcmp(&n->ctx[i].addr, a, sizeof *a) == 0)
            return i;
    return -1;
}

/* Runs the network until `until`: datagrams in order, wake-ups when due. */
static void run(net *n, hk_time until)
{
    for (;;) {
        hk_time next = HK_TIME_NEVER;
        if (n->qhead != n->qtail)
            next = n->q[n->qhead % QCAP].at;
        int wi = -1;
        for (int i = 0; i < n->nnodes; i++)
            if (n->ctx[i].wake < next) {
                next = n->ctx[i].wake;
                wi = i;
            }
        if (next > until || (n->wake_limit && n->wakes >= n->wake_limit))
            break;
        if (next > n->now)
            n->now = next;
        if (wi >= 0) {
            n->ctx[wi].wake = HK_TIME_NEVER;
            n->wakes++;
            hk_dht_on_wake(n->node[wi]);
            continue;
        }
        pkt *p = &n->q[n->qhead++ % QCAP];
        int to = node_at(n, &p->to);
        if (to >= 0)
            hk_dht_on_datagram(n->node[to], &p->from, p->data, p->len);
    }
    n->now = until;
}

static void net_free(net *n)
{
    for (int i = 0; i < n->nnodes; i++)
        hk_dht_free(n->node[i]);
    free(n->q);
    free(n);
}

/* Sends a query from the test's address straight to node i and returns the decoded reply (false: none). */
static bool ask(net *n, int i, const uint8_t *q, size_t len, krpc_msg *out, pkt *keep)
{
    n->got_to_test = 0;
    hk_dht_on_datagram(n->node[i], &test_addr, q, len);
    if (!n->got_to_test)
        return false;
    *keep = n->last_to_test;
    return krpc_decode(keep->data, keep->len, out) == KRPC_OK;
}

static size_t mkq(uint8_t *buf, krpc_method m, const uint8_t *target, const uint8_t *token, uint8_t toklen,
                  uint16_t port)
{
    static const uint8_t id[20] = "TESTNODE-0123456789X";
    krpc_query q = { .method = m, .tid = (const uint8_t *)"tt", .tid_len = 2, .id = id, .target = target,
                     .token = token, .token_len = toklen, .port = port };
    return krpc_put_query(buf, KRPC_MAX_DATAGRAM, &q);
}

Test(dht, answers_ping_find_node_get_peers_and_validates_announces)
{
    net *n = net_new();
    add_node(n, 1, NULL);
    uint8_t buf[KRPC_MAX_DATAGRAM], ih[20];
    memset(ih, 0x42, 20);
    krpc_msg m;
    pkt keep;
    cr_assert(ask(n, 0, buf, mkq(buf, KRPC_PING, NULL, NULL, 0, 0), &m, &keep));
    cr_assert_eq(m.type, KRPC_RESPONSE);
    cr_assert(memcmp(m.id, hk_dht_id(n->node[0]), 20) == 0);
    cr_assert(m.has_ip, "the reply tells the querier its address (BEP 42)");
    cr_assert(ask(n, 0, buf, mkq(buf, KRPC_FIND_NODE, ih, NULL, 0, 0), &m, &keep));
    cr_assert_eq(m.nodes_len, 0, "an empty table has no nodes to give");
    cr_assert(ask(n, 0, buf, mkq(buf, KRPC_GET_PEERS, ih, NULL, 0, 0), &m, &keep));
    cr_assert_eq(m.token_len, 8);
    cr_assert_eq(m.nvalues, 0);
    uint8_t tok[8];
    memcpy(tok, m.token, 8);
    uint8_t bad[8] = { 0 };
    cr_assert(ask(n, 0, buf, mkq(buf, KRPC_ANNOUNCE_PEER, ih, bad, 8, 5000), &m, &keep));
    cr_assert_eq(m.type, KRPC_ERROR, "a wrong token is refused");
    cr_assert(ask(n, 0, buf, mkq(buf, KRPC_ANNOUNCE_PEER, ih, tok, 8, 5000), &m, &keep));
    cr_assert_eq(m.type, KRPC_RESPONSE);
    cr_assert(ask(n, 0, buf, mkq(buf, KRPC_GET_PEERS, ih, NULL, 0, 0), &m, &keep));
    cr_assert_eq(m.nvalues, 1);
    hk_addr peer;
    cr_assert(krpc_parse_addr(m.values[0], 6, &peer));
    cr_assert_eq(peer.port, 5000);
    cr_assert(memcmp(peer.ip, test_addr.ip, 4) == 0);
    /* the token survives one rotation, not two */
    run(n, n->now + HK_SECONDS(301));
    cr_assert(ask(n, 0, buf, mkq(buf, KRPC_ANNOUNCE_PEER, ih, tok, 8, 5001), &m, &keep));
    cr_assert_eq(m.type, KRPC_RESPONSE, "the previous secret is still accepted");
    run(n, n->now + HK_SECONDS(301));
    cr_assert(ask(n, 0, buf, mkq(buf, KRPC_ANNOUNCE_PEER, ih, tok, 8, 5002), &m, &keep));
    cr_assert_eq(m.type, KRPC_ERROR, "two rotations later it is not");
    /* stored values expire */
    run(n, n->now + HK_SECONDS(31 * 60));
    cr_assert(ask(n, 0, buf, mkq(buf, KRPC_GET_PEERS, ih, NULL, 0, 0), &m, &keep));
    cr_assert_eq(m.nvalues, 0);
    net_free(n);
}

Test(dht, answers_bad_queries_with_errors)
{
    net *n = net_new();
    add_node(n, 2, NULL);
    krpc_msg m;
    pkt keep;
    const char *unk = "d1:ad2:id20:TESTNODE-0123456789Xe1:q4:vote1:t2:tt1:y1:qe";
    cr_assert(ask(n, 0, (const uint8_t *)unk, strlen(unk), &m, &keep));
    cr_assert_eq(m.type, KRPC_ERROR);
    cr_assert_eq(m.err_code, KRPC_ERR_METHOD);
    const char *bad = "d1:ad2:id3:abce1:q4:ping1:t2:tt1:y1:qe";
    cr_assert(ask(n, 0, (const uint8_t *)bad, strlen(bad), &m, &keep));
    cr_assert_eq(m.err_code, KRPC_ERR_PROTOCOL);
    const char *junk = "not bencode";
    cr_assert_not(ask(n, 0, (const uint8_t *)junk, strlen(junk), &m, &keep), "junk is dropped silently");
    net_free(n);
}

/* A network of `count` nodes all bootstrapped through node 0; node 0 itself knows nobody. */
/* The tests' owner of torrent ids (hk_dht_set_torrents): id k is owned[k] (each test runs in its own process). */
static uint8_t owned[4096][20];
static uint32_t nowned;

static const uint8_t *owned_ih(void *ctx, uint32_t id)
{
    (void)ctx;
    cr_assert_lt(id, nowned, "the node asked for an id never handed out");
    return owned[id];
}

/* A new id for ih, its owner set on d. */
static uint32_t own(hk_dht *d, const uint8_t ih[20])
{
    cr_assert_lt(nowned, 4096);
    memcpy(owned[nowned], ih, 20);
    hk_dht_set_torrents(d, owned_ih, NULL);
    return nowned++;
}

static net *network(int count, uint64_t seed)
{
    net *n = net_new();
    for (int i = 0; i < count; i++) {
        hk_dht *d = add_node(n, seed * 1000 + (uint64_t)i, NULL);
        if (i) {
            hk_addr a = addr_of(0);
            cr_assert_eq(hk_dht_add_bootstrap(d, &a), 0);
        }
    }
    return n;
}

Test(dht, a_network_bootstraps_and_a_torrent_becomes_findable)
{
    net *n = network(40, 7);
    run(n, n->now + HK_SECONDS(120));
    hk_dht_stats st;
    for (int i = 1; i < 40; i++) {
        hk_dht_stats_get(n->node[i], &st);
        cr_assert_geq(st.good4, 8, "node %d knows %u good nodes", i, st.good4);
    }
    uint8_t ih[20];
    memset(ih, 0xA5, 20);
    int seeder = 5;
    uint32_t id = own(n->node[seeder], ih);
    cr_assert_eq(hk_dht_add_torrent(n->node[seeder], id), HK_DHT_OK);
    cr_assert_eq(hk_dht_add_torrent(n->node[seeder], id), HK_DHT_DUPLICATE);
    run(n, n->now + HK_SECONDS(60));
    hk_dht_stats_get(n->node[seeder], &st);
    cr_assert_geq(st.announces_done, 1);
    cr_assert_geq(st.announce_peer_ok, 4, "announced to %lu nodes", (unsigned long)st.announce_peer_ok);
    /* the nodes closest to the info-hash hold the seeder as a value */
    int holders = 0;
    for (int i = 0; i < 40; i++) {
        hk_dht_stats s;
        hk_dht_stats_get(n->node[i], &s);
        holders += s.store_peers > 0;
    }
    cr_assert_geq(holders, 4);
    /* a get_peers from outside, sent to the closest holder, returns the seeder's address */
    uint8_t buf[KRPC_MAX_DATAGRAM];
    bool found = false;
    for (int i = 0; i < 40 && !found; i++) {
        krpc_msg m;
        pkt keep;
        if (ask(n, i, buf, mkq(buf, KRPC_GET_PEERS, ih, NULL, 0, 0), &m, &keep) && m.nvalues) {
            hk_addr p;
            krpc_parse_addr(m.values[0], 6, &p);
            found = memcmp(p.ip, n->ctx[seeder].addr.ip, 4) == 0 && p.port == 6881;
        }
    }
    cr_assert(found);
    net_free(n);
}

/* A node whose bootstrap never answers (no DHT reachable) has torrents to announce but nobody to ask: it must sleep
 * until its next bootstrap retry or housekeeping, not ask to be woken at once again and again (the daemon spun a core
 * at 95 % with DHT on and no route). */
Test(dht, an_unanswered_bootstrap_does_not_spin)
{
    net *n = net_new();
    hk_dht *d = add_node(n, 11, NULL);
    hk_addr nobody = addr_of(77);
    cr_assert_eq(hk_dht_add_bootstrap(d, &nobody), 0);
    uint8_t ih[20];
    memset(ih, 0x3C, 20);
    cr_assert_eq(hk_dht_add_torrent(d, own(d, ih)), HK_DHT_OK);
    n->ctx[0].wake = n->now;
    n->wake_limit = 2000;
    run(n, n->now + HK_SECONDS(600));
    cr_assert_lt(n->wakes, 2000, "%lu wake-ups in 600 s with nobody to ask", (unsigned long)n->wakes);
    cr_assert_gt(n->wakes, 0);
    net_free(n);
}

Test(dht, private_torrents_are_never_announced)
{
    net *n = network(2, 3);
    mi_torrent mi;
    memset(&mi, 0, sizeof mi);
    memset(mi.info_hash, 1, 20);
    mi.is_private = true;
    uint32_t id = own(n->node[1], mi.info_hash);
    cr_assert_eq(hk_dht_add_metainfo(n->node[1], id, &mi), HK_DHT_PRIVATE);
    hk_dht_stats st;
    hk_dht_stats_get(n->node[1], &st);
    cr_assert_eq(st.torrents, 0);
    mi.is_private = false;
    cr_assert_eq(hk_dht_add_metainfo(n->node[1], id, &mi), HK_DHT_OK);
    cr_assert(hk_dht_has_torrent(n->node[1], id));
    cr_assert_eq(hk_dht_remove_torrent(n->node[1], id), HK_DHT_OK);
    cr_assert_eq(hk_dht_remove_torrent(n->node[1], id), HK_DHT_UNKNOWN);
    cr_assert(!hk_dht_has_torrent(n->node[1], id));
    net_free(n);
}

Test(dht, the_query_cap_holds_and_the_period_grows)
{
    net *n = net_new();
    hk_dht_config cfg;
    hk_dht_config_defaults(&cfg);
    cfg.query_rate = 50;
    cfg.query_burst = 10;
    cfg.announce_interval = HK_SECONDS(60);
    for (int i = 0; i < 30; i++) {
        hk_dht *d = add_node(n, 500 + (uint64_t)i, i == 1 ? &cfg : NULL);
        if (i) {
            hk_addr a = addr_of(0);
            hk_dht_add_bootstrap(d, &a);
        }
    }
    run(n, n->now + HK_SECONDS(60));
    for (uint32_t t = 0; t < 2000; t++) {
        uint8_t ih[20];
        uint64_t s = t;
        for (int k = 0; k < 20; k += 4) {
            uint32_t x = (uint32_t)hk_splitmix64(&s);
            memcpy(ih + k, &x, 4);
        }
        cr_assert_eq(hk_dht_add_torrent(n->node[1], own(n->node[1], ih)), HK_DHT_OK);
    }
    n->watch = 1;
    n->win_start = n->now;
    hk_time t0 = n->now;
    uint64_t sent0 = n->sent_by[1];
    run(n, n->now + HK_SECONDS(120));
    hk_dht_stats st;
    hk_dht_stats_get(n->node[1], &st);
    double rate = (double)(n->sent_by[1] - sent0 - st.replies_sent - st.errors_sent) / ((double)(n->now - t0) / 1e9);
    cr_assert_leq(rate, 50.0 * 1.01, "queries per second %.1f above the cap", rate);
    cr_assert_gt(rate, 25.0, "the budget is used (%.1f/s)", rate);
    cr_assert_geq(st.announces_done, 10);
    cr_assert_lt(st.lookups_started, 2000, "2000 torrents in 60 s do not fit under 50 queries/s");
    net_free(n);
}

Test(dht, a_flood_allocates_nothing_and_replies_stay_small)
{
    net *n = net_new();
    hk_dht *d = add_node(n, 9, NULL);
    uint8_t buf[KRPC_MAX_DATAGRAM], ih[20];
    memset(ih, 7, 20);
    size_t qlen = mkq(buf, KRPC_GET_PEERS, ih, NULL, 0, 0);
    hk_dht_stats st0, st;
    hk_dht_stats_get(d, &st0);
    /* 20000 queries from one address in one instant, then from 5000 addresses */
    n->got_to_test = 0;
    for (int i = 0; i < 20000; i++)
        hk_dht_on_datagram(d, &test_addr, buf, qlen);
    cr_assert_leq(n->got_to_test, 20 + 1, "one address gets its rate (and one verification ping), not more (%d)",
                  n->got_to_test);
    for (int i = 0; i < 5000; i++) {
        hk_addr a = { .family = 4, .ip = { 172, 16, (uint8_t)(i >> 8), (uint8_t)i }, .port = 1234 };
        hk_dht_on_datagram(d, &a, buf, qlen);
    }
    hk_dht_stats_get(d, &st);
    cr_assert_eq(st.memory_bytes, st0.memory_bytes, "the flood allocated nothing");
    cr_assert_geq(st.rate_dropped, 19980);
    /* every reply sent is within reply_factor x the query */
    for (size_t i = n->qhead; i < n->qtail; i++) {
        pkt *p = &n->q[i % QCAP];
        krpc_msg m;
        if (krpc_decode(p->data, p->len, &m) == KRPC_OK && m.type == KRPC_RESPONSE)
            cr_assert_leq(p->len, 8 * qlen);
    }
    net_free(n);
}

Test(dht, state_round_trip)
{
    net *n = network(20, 11);
    run(n, n->now + HK_SECONDS(90));
    ben_buf b;
    ben_buf_init(&b);
    hk_dht_save(n->node[3], &b);
    cr_assert_not(b.failed);
    uint8_t id[20];
    bool has_id;
    cr_assert_eq(hk_dht_load(NULL, b.data, b.len, id, &has_id), 0);
    cr_assert(has_id);
    cr_assert(memcmp(id, hk_dht_id(n->node[3]), 20) == 0);
    /* a new node restored from it bootstraps from the saved nodes alone */
    hk_dht_config cfg;
    hk_dht_config_defaults(&cfg);
    memcpy(cfg.id, id, 20);
    cfg.has_id = true;
    hk_dht *fresh = add_node(n, 999, &cfg);
    cr_assert_eq(hk_dht_load(fresh, b.data, b.len, id, &has_id), 0);
    run(n, n->now + HK_SECONDS(30));
    hk_dht_stats st;
    hk_dht_stats_get(fresh, &st);
    cr_assert_geq(st.good4, 8);
    cr_assert_eq(hk_dht_load(NULL, (const uint8_t *)"junk", 4, id, &has_id), -1);
    ben_buf_free(&b);
    net_free(n);
}

static void fingerprint(uint64_t seed, hk_dht_stats *out)
{
    net *n = network(15, seed);
    uint8_t ih[20];
    memset(ih, 0x3C, 20);
    run(n, n->now + HK_SECONDS(30));
    hk_dht_add_torrent(n->node[2], own(n->node[2], ih));
    run(n, n->now + HK_SECONDS(60));
    hk_dht_stats_get(n->node[2], out);
    net_free(n);
}

Test(dht, same_seeds_same_decisions)
{
    hk_dht_stats a, b;
    fingerprint(21, &a);
    fingerprint(21, &b);
    cr_assert_eq(a.queries_sent, b.queries_sent);
    cr_assert_eq(a.responses, b.responses);
    cr_assert_eq(a.announce_peer_ok, b.announce_peer_ok);
    cr_assert_eq(a.replies_sent, b.replies_sent);
    cr_assert_gt(a.queries_sent, 0);
}

/* BEP 32: the same over IPv6 (nodes6, 18-byte values), a network of IPv6-only nodes. */
Test(dht, an_ipv6_network_finds_the_torrent)
{
    net *n = net_new();
    n->v6 = true;
    for (int i = 0; i < 25; i++) {
        hk_dht *d = add_node(n, 4000 + (uint64_t)i, NULL);
        if (i) {
            hk_addr a = addr6_of(0);
            cr_assert_eq(hk_dht_add_bootstrap(d, &a), 0);
            hk_addr v4 = addr_of(0);
            cr_assert_eq(hk_dht_add_bootstrap(d, &v4), -1, "an IPv4 address is refused by an IPv6-only node");
        }
    }
    run(n, n->now + HK_SECONDS(120));
    uint8_t ih[20];
    memset(ih, 0x5A, 20);
    cr_assert_eq(hk_dht_add_torrent(n->node[3], own(n->node[3], ih)), HK_DHT_OK);
    run(n, n->now + HK_SECONDS(60));
    hk_dht_stats st;
    hk_dht_stats_get(n->node[3], &st);
    cr_assert_geq(st.good6, 8);
    cr_assert_eq(st.nodes4, 0);
    cr_assert_geq(st.announce_peer_ok, 4);
    int holders = 0;
    for (int i = 0; i < 25; i++) {
        hk_dht_stats s;
        hk_dht_stats_get(n->node[i], &s);
        holders += s.store_peers > 0;
    }
    cr_assert_geq(holders, 4);
    net_free(n);
}

/* BEP 42: nodes on public addresses learn them from the replies' `ip` and take secure ids; the DHT still works. */
Test(dht, nodes_take_secure_ids_once_their_address_is_known)
{
    net *n = net_new();
    n->pub = true;
    for (int i = 0; i < 30; i++) {
        hk_dht *d = add_node(n, 7000 + (uint64_t)i, NULL);
        cr_assert_not(hk_dht_id_valid(hk_dht_id(d), &n->ctx[i].addr), "random ids are (almost surely) not secure");
        if (i) {
            hk_addr a = n->ctx[0].addr;
            hk_dht_add_bootstrap(d, &a);
        }
    }
    run(n, n->now + HK_SECONDS(120));
    int secure = 0;
    for (int i = 0; i < 30; i++) {
        hk_dht_stats st;
        hk_dht_stats_get(n->node[i], &st);
        if (st.has_external) {
            cr_assert(memcmp(st.external.ip, n->ctx[i].addr.ip, 4) == 0, "the address the others see");
            cr_assert(hk_dht_id_valid(hk_dht_id(n->node[i]), &n->ctx[i].addr));
            cr_assert_eq(st.id_changes, 1);
            secure++;
        }
    }
    cr_assert_geq(secure, 25, "%d of 30 nodes have a secure id", secure);
    uint8_t ih[20];
    memset(ih, 0x77, 20);
    hk_dht_add_torrent(n->node[4], own(n->node[4], ih));
    run(n, n->now + HK_SECONDS(60));
    hk_dht_stats st;
    hk_dht_stats_get(n->node[4], &st);
    cr_assert_geq(st.announce_peer_ok, 4, "announces still reach the closest nodes after the id changes");
    net_free(n);
}
