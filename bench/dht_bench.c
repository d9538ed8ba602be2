/* dht_bench: the DHT node's announce scheduling at 10^4, 10^5 and 10^6 torrents: one hekate node (core/dht.h, the
 * default query cap of 200/s) among NODES simulated BEP 5 nodes (hk_dht nodes themselves) on an in-memory network
 * (10 ms latency, no loss), SECONDS of simulated time after a bootstrap. Prints per size: DHT state bytes per torrent
 * (info-hash array and index; and all of the node's heap), queries sent per second (must stay under the cap),
 * queries per announce, announces completed per second and the announce period that rate gives (torrents /
 * announces per second; at most 30 min by the schedule). Not built by CMake (a measurement for docs/dht.md):
 *   cmake --build build/release --target hekate_core
 *   cc -O2 -Icore bench/dht_bench.c build/release/core/libhekate_core.a -lcrypto -o /tmp/dht_bench
 *   /tmp/dht_bench */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dht.h"
#include "hash.h"

/* The torrents' owner (hk_dht_set_torrents): id t is owned[t]. */
static uint8_t (*owned)[20];

static const uint8_t *owned_ih(void *ctx, uint32_t id)
{
    (void)ctx;
    return owned[id];
}

#define NODES 300
#define SECONDS 300
#define QCAP (1u << 20)
#define LAT HK_MILLIS(10)

typedef struct pkt { hk_time at; hk_addr from, to; uint16_t len; uint8_t data[1500]; } pkt;
typedef struct nctx { int idx; uint64_t rnd; hk_time wake; hk_addr addr; } nctx;

static hk_time now_ns;
static nctx ctx[NODES + 1];
static hk_dht *node[NODES + 1];
static pkt *q;
static size_t qhead, qtail;
static uint64_t hekate_sent;

static hk_time f_now(void *c) { (void)c; return now_ns; }
static void f_wake(void *c, hk_time t) { ((nctx *)c)->wake = t; }
static void f_rand(void *c, void *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ((uint8_t *)buf)[i] = (uint8_t)hk_splitmix64(&((nctx *)c)->rnd);
}
static void f_send(void *c, const hk_addr *to, const uint8_t *b, size_t len)
{
    nctx *x = c;
    if (x->idx == 0)
        hekate_sent++;
    if (qtail - qhead >= QCAP)
        return;
    pkt *p = &q[qtail++ % QCAP];
    *p = (pkt){ .at = now_ns + LAT, .from = x->addr, .to = *to, .len = (uint16_t)len };
    memcpy(p->data, b, len);
}

static hk_addr addr_of(int i)
{
    return (hk_addr){ .family = 4, .ip = { 10, 1, (uint8_t)(i >> 8), (uint8_t)i }, .port = 6881 };
}

static void run(hk_time until)
{
    for (;;) {
        hk_time next = qhead != qtail ? q[qhead % QCAP].at : HK_TIME_NEVER;
        int wi = -1;
        for (int i = 0; i <= NODES; i++)
            if (ctx[i].wake < next) {
                next = ctx[i].wake;
                wi = i;
            }
        if (next > until)
            break;
        if (next > now_ns)
            now_ns = next;
        if (wi >= 0) {
            ctx[wi].wake = HK_TIME_NEVER;
            hk_dht_on_wake(node[wi]);
            continue;
        }
        pkt *p = &q[qhead++ % QCAP];
        int to = p->to.ip[2] << 8 | p->to.ip[3];
        if (to <= NODES)
            hk_dht_on_datagram(node[to], &p->from, p->data, p->len);
    }
    now_ns = until;
}

static void one(uint32_t ntorrents)
{
    now_ns = HK_SECONDS(100);
    qhead = qtail = 0;
    hekate_sent = 0;
    for (int i = 0; i <= NODES; i++) {
        ctx[i] = (nctx){ .idx = i, .rnd = 77 + (uint64_t)i * 1000003, .wake = HK_TIME_NEVER, .addr = addr_of(i) };
        hk_dht_runtime rt = { .base = { .ctx = &ctx[i], .now = f_now, .wake_at = f_wake, .random_bytes = f_rand },
                              .udp_send = f_send };
        hk_dht_config cfg;
        hk_dht_config_defaults(&cfg);
        node[i] = hk_dht_new(&cfg, &rt);
        hk_addr b = addr_of(1 + (i % NODES));
        if (i != 1)
            hk_dht_add_bootstrap(node[i], &b);
    }
    run(now_ns + HK_SECONDS(120)); /* the simulated DHT forms */
    uint64_t s = ntorrents;
    owned = malloc((size_t)(ntorrents ? ntorrents : 1) * sizeof *owned); /* the node keeps ids, the owner hashes */
    if (!owned) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    hk_dht_set_torrents(node[0], owned_ih, NULL);
    for (uint32_t t = 0; t < ntorrents; t++) {
        for (int k = 0; k < 20; k += 4) {
            uint32_t x = (uint32_t)hk_splitmix64(&s);
            memcpy(owned[t] + k, &x, 4);
        }
        hk_dht_add_torrent(node[0], t);
    }
    hk_dht_stats a, b;
    hk_dht_stats_get(node[0], &a);
    uint64_t sent0 = hekate_sent;
    run(now_ns + HK_SECONDS(SECONDS));
    hk_dht_stats_get(node[0], &b);
    double qps = (double)(b.queries_sent - a.queries_sent) / SECONDS;
    double aps = (double)(b.announces_done - a.announces_done) / SECONDS;
    double period = aps > 0 ? ntorrents / aps : 0;
    uint64_t lookups = b.lookups_done - a.lookups_done;
    if (period < 1800 && aps > 0)
        period = 1800; /* the schedule's own period: it never announces faster */
    printf("%8u torrents: %.2f B/torrent of torrent state, %.2f B/torrent all DHT heap; %.1f queries/s sent "
           "(cap 200; all datagrams %.1f/s), %.1f queries per announce, %.2f announces/s (%.0f%% acknowledged by "
           ">= 1 node), period %.1f h\n",
           ntorrents, (double)b.torrent_bytes / ntorrents, (double)b.memory_bytes / ntorrents, qps,
           (double)(hekate_sent - sent0) / SECONDS,
           lookups ? (double)(b.queries_sent - a.queries_sent) / lookups : 0, aps,
           lookups ? 100.0 * (b.announces_done - a.announces_done) / lookups : 0,
           period / 3600);
    for (int i = 0; i <= NODES; i++)
        hk_dht_free(node[i]);
    free(owned);
    owned = NULL;
}

int main(void)
{
    q = malloc(QCAP * sizeof *q);
    one(10000);
    one(100000);
    one(1000000);
    return 0;
}
