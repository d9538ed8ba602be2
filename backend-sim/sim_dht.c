/* sim_dht: owns the simulated DHT's discrete-event driver: the event queue, the star network (latency, loss),
 * hekate's core DHT node behind its runtime table, churn steps, findability probes and the run's figures and hash
 * (see sim_dht.h; the nodes are sim_dht_node.c). */
#include "sim_dht.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dht.h"
#include "krpc.h"
#include "prng.h"
#include "sim_dht_node.h"

#define NS 1000000000.0

enum { EV_TO_NODE = 1, EV_TO_HEKATE, EV_WAKE, EV_CHURN, EV_PROBE, EV_ROTATE };

typedef struct ev {
    uint64_t t, seq;
    uint32_t kind, node;
    uint8_t *data;          /* datagram (malloc'd), len bytes */
    uint32_t len;
} ev;

typedef struct world {
    const sim_dht_cfg *cfg;
    sim_dht_result *res;
    uint64_t now, seq;
    ev *heap;
    size_t nheap, capheap;
    sim_net net;
    double *lat;            /* per node link latency (s) */
    double hekate_lat;
    prng net_rng, core_rng;
    hk_dht *dht;
    uint64_t wake;          /* the node's wake-up time (UINT64_MAX: none) */
    uint64_t queued;        /* the earliest EV_WAKE known to be queued (UINT64_MAX: none) */
    uint8_t (*ih)[20];
    bool dropped_torrents;
    EVP_MD_CTX *sha;
    uint32_t churn_steps, churn_done;
    bool failed;
} world;

/* ---- events ---- */

static bool before(const ev *a, const ev *b)
{
    return a->t != b->t ? a->t < b->t : a->seq < b->seq;
}

static void push(world *w, uint64_t t, uint32_t kind, uint32_t node, uint8_t *data, uint32_t len)
{
    if (w->nheap == w->capheap) {
        size_t ncap = w->capheap ? w->capheap * 2 : 1024;
        ev *n = realloc(w->heap, ncap * sizeof *n);
        if (!n) {
            free(data);
            w->failed = true;
            return;
        }
        w->heap = n;
        w->capheap = ncap;
    }
    ev e = { .t = t, .seq = w->seq++, .kind = kind, .node = node, .data = data, .len = len };
    size_t i = w->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&e, &w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = e;
}

static ev pop(world *w)
{
    ev top = w->heap[0], last = w->heap[--w->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->nheap)
            break;
        if (c + 1 < w->nheap && before(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!before(&w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->nheap)
        w->heap[i] = last;
    return top;
}

/* ---- the trace hash ---- */

static void trace(world *w, uint32_t kind, uint32_t node, const uint8_t *data, size_t len)
{
    uint64_t head[2] = { w->now, ((uint64_t)kind << 32) | node };
    EVP_DigestUpdate(w->sha, head, sizeof head);
    if (len)
        EVP_DigestUpdate(w->sha, data, len);
}

/* ---- the network ---- */

static uint64_t delay(world *w, uint32_t node)
{
    return (uint64_t)((w->hekate_lat + w->lat[node]) * NS + 0.5);
}

static bool lost(world *w)
{
    return w->cfg->loss > 0 && prng_unit(&w->net_rng) < w->cfg->loss;
}

static uint8_t *copy(const uint8_t *b, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    if (p)
        memcpy(p, b, len);
    return p;
}

/* hekate's queries per simulated second. */
static void count_query(world *w, const uint8_t *bytes, size_t len)
{
    krpc_msg m;
    if (krpc_decode(bytes, len, &m) != KRPC_OK || m.type != KRPC_QUERY)
        return;
    w->res->queries_sent++;
    uint64_t s = w->now / 1000000000u;
    if (s < w->res->seconds && ++w->res->per_second[s] > w->res->max_rate) {
        w->res->max_rate = w->res->per_second[s];
        w->res->max_rate_at = (double)s;
    }
}

static void on_wake(struct world *w);

/* ---- hekate's runtime table ---- */

static hk_time rt_now(void *ctx)
{
    return ((world *)ctx)->now;
}

static void rt_wake_at(void *ctx, hk_time when)
{
    world *w = ctx;
    if (when < w->now)
        when = w->now;
    w->wake = when;
    if (when < w->queued) { /* one event per earlier wake-up; a stale one (not at w->wake) is ignored */
        push(w, when, EV_WAKE, 0, NULL, 0);
        w->queued = when;
    }
}

/* An EV_WAKE at time t: the node's wake-up when it is due, else the wake-up re-queued when no event is. */
static void wake_event(world *w, uint64_t t)
{
    if (t == w->queued)
        w->queued = UINT64_MAX;
    if (w->wake == t) {
        w->wake = UINT64_MAX;
        on_wake(w);
    } else if (w->wake != UINT64_MAX && w->wake > t && w->wake < w->queued) {
        push(w, w->wake, EV_WAKE, 0, NULL, 0);
        w->queued = w->wake;
    }
}

static void rt_random(void *ctx, void *buf, size_t n)
{
    prng_fill(&((world *)ctx)->core_rng, buf, n);
}

static void rt_udp_send(void *ctx, const hk_addr *to, const uint8_t *bytes, size_t len)
{
    world *w = ctx;
    count_query(w, bytes, len);
    w->res->datagrams++;
    long i = sim_net_index(&w->net, to);
    if (i < 0 || lost(w)) {
        w->res->lost++;
        return;
    }
    uint8_t *p = copy(bytes, len);
    if (p)
        push(w, w->now + delay(w, (uint32_t)i), EV_TO_NODE, (uint32_t)i, p, (uint32_t)len);
}

/* ---- event handlers ---- */

static void to_node(world *w, const ev *e)
{
    if (!w->net.n[e->node].alive) {
        w->res->to_departed++;
        return;
    }
    trace(w, EV_TO_NODE, e->node, e->data, e->len);
    uint8_t out[KRPC_MAX_DATAGRAM];
    size_t n = sim_node_handle(&w->net, e->node, e->data, e->len, w->now, out, sizeof out);
    if (n == 0)
        return;
    w->res->datagrams++;
    if (lost(w)) {
        w->res->lost++;
        return;
    }
    uint8_t *p = copy(out, n);
    if (p)
        push(w, w->now + delay(w, e->node), EV_TO_HEKATE, e->node, p, (uint32_t)n);
}

static void to_hekate(world *w, const ev *e)
{
    trace(w, EV_TO_HEKATE, e->node, e->data, e->len);
    hk_addr from;
    sim_net_addr(e->node, &from);
    hk_dht_on_datagram(w->dht, &from, e->data, e->len);
}

/* The node's owner view (hk_dht_set_torrents): torrent k is the world's k-th info-hash. */
static const uint8_t *torrent_info_hash(void *ctx, uint32_t id)
{
    return ((const world *)ctx)->ih[id];
}

static void on_wake(world *w)
{
    hk_dht_on_wake(w->dht);
    if (!w->cfg->reannounce && !w->dropped_torrents) {
        hk_dht_stats st;
        hk_dht_stats_get(w->dht, &st);
        if (st.rounds >= 1) { /* the broken variant: no announce after the first round */
            for (uint32_t k = 0; k < w->cfg->torrents; k++)
                (void)hk_dht_remove_torrent(w->dht, k);
            w->dropped_torrents = true;
        }
    }
}

static void probe(world *w)
{
    uint32_t found = 0;
    for (uint32_t k = 0; k < w->cfg->torrents; k++)
        found += sim_net_probe(&w->net, w->ih[k], w->now);
    sim_dht_result *r = w->res;
    sim_dht_probe *p = realloc(r->probes, sizeof *p * (r->nprobes + 1));
    if (!p) {
        w->failed = true;
        return;
    }
    r->probes = p;
    p[r->nprobes++] = (sim_dht_probe){ .t = (double)w->now / NS, .findable = found, .alive = w->net.live,
                                       .hekate_queries = r->queries_sent };
    trace(w, EV_PROBE, found, NULL, 0);
}

static void churn(world *w)
{
    long out = sim_net_leave(&w->net), in = sim_net_join(&w->net);
    w->res->departed += out >= 0;
    w->res->joined += in >= 0;
    trace(w, EV_CHURN, (uint32_t)(out < 0 ? 0 : out), NULL, 0);
    if (++w->churn_done < w->churn_steps) {
        double step = w->cfg->churn_length / w->churn_steps;
        push(w, (uint64_t)((w->cfg->churn_start + step * w->churn_done) * NS), EV_CHURN, 0, NULL, 0);
    }
}

/* ---- setup and the run ---- */

static int setup_hekate(world *w, char *err, size_t errlen)
{
    const sim_dht_cfg *c = w->cfg;
    hk_dht_config dc;
    hk_dht_config_defaults(&dc);
    dc.port = 6881;
    dc.query_rate = c->query_rate;
    dc.query_burst = c->query_burst;
    dc.announce_interval = (hk_time)(c->announce_period * NS);
    if (c->max_lookups)
        dc.max_lookups = c->max_lookups;
    const char *why = hk_dht_config_check(&dc);
    if (why) {
        snprintf(err, errlen, "dht configuration: %s", why);
        return -1;
    }
    hk_dht_runtime rt = { .base = { .ctx = w, .now = rt_now, .wake_at = rt_wake_at, .random_bytes = rt_random },
                          .udp_send = rt_udp_send };
    w->dht = hk_dht_new(&dc, &rt);
    w->ih = malloc(sizeof *w->ih * (c->torrents ? c->torrents : 1));
    if (!w->dht || !w->ih) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t k = 0; k < c->bootstrap && k < c->nodes; k++) {
        hk_addr a;
        sim_net_addr((uint32_t)prng_below(&w->net_rng, c->nodes), &a);
        (void)hk_dht_add_bootstrap(w->dht, &a);
    }
    prng tr;
    prng_seed(&tr, c->seed, 0x7e11);
    hk_dht_set_torrents(w->dht, torrent_info_hash, w);
    for (uint32_t k = 0; k < c->torrents; k++) {
        prng_fill(&tr, w->ih[k], 20);
        if (hk_dht_add_torrent(w->dht, k) == HK_DHT_NOMEM) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

static int setup(world *w, char *err, size_t errlen)
{
    const sim_dht_cfg *c = w->cfg;
    prng_seed(&w->net_rng, c->seed, 0x4e7);
    prng_seed(&w->core_rng, c->seed, 0xc02e);
    uint32_t spare = (uint32_t)(c->churn * c->nodes + 0.5);
    hk_addr hekate = { .family = 4, .ip = { 10, 200, 0, 1 }, .port = 6881 };
    double rounds = c->duration / (c->store_ttl < c->announce_period ? c->store_ttl : c->announce_period) + 2;
    size_t cap = (size_t)(2.0 * c->torrents * SIM_DHT_K * rounds) + 1024;
    w->lat = malloc(sizeof *w->lat * (c->nodes + spare + 1));
    w->res->seconds = (uint32_t)c->duration + 1;
    w->res->per_second = calloc(w->res->seconds, sizeof *w->res->per_second);
    w->sha = EVP_MD_CTX_new();
    if (!w->lat || !w->res->per_second || !w->sha || !EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL) ||
        sim_net_init(&w->net, c->nodes, spare, c->seed, &hekate, (uint64_t)(c->store_ttl * NS), cap) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < c->nodes + spare; i++)
        w->lat[i] = c->latency + (c->jitter > 0 ? prng_unit(&w->net_rng) * c->jitter : 0);
    w->hekate_lat = c->latency;
    w->wake = w->queued = UINT64_MAX;
    if (setup_hekate(w, err, errlen) != 0)
        return -1;
    w->churn_steps = spare;
    if (spare)
        push(w, (uint64_t)(c->churn_start * NS), EV_CHURN, 0, NULL, 0);
    if (c->probe_every > 0)
        for (double t = c->probe_every; t < c->duration; t += c->probe_every)
            if (t != c->findable_at)
                push(w, (uint64_t)(t * NS), EV_PROBE, 0, NULL, 0);
    push(w, (uint64_t)(c->findable_at * NS), EV_PROBE, 0, NULL, 0);
    push(w, (uint64_t)(c->duration * NS), EV_PROBE, 0, NULL, 0);
    push(w, (uint64_t)(c->token_rotate * NS), EV_ROTATE, 0, NULL, 0);
    hk_dht_on_wake(w->dht); /* the node's first wake-up: bootstrap and the first round start now */
    return 0;
}

static void run(world *w)
{
    uint64_t end = (uint64_t)(w->cfg->duration * NS);
    while (w->nheap && !w->failed) {
        ev e = pop(w);
        if (e.t > end) {
            free(e.data);
            break;
        }
        w->now = e.t;
        w->res->events++;
        switch (e.kind) {
        case EV_TO_NODE: to_node(w, &e); break;
        case EV_TO_HEKATE: to_hekate(w, &e); break;
        case EV_WAKE: wake_event(w, e.t); break;
        case EV_CHURN: churn(w); break;
        case EV_PROBE: probe(w); break;
        case EV_ROTATE:
            sim_net_rotate_tokens(&w->net);
            push(w, w->now + (uint64_t)(w->cfg->token_rotate * NS), EV_ROTATE, 0, NULL, 0);
            break;
        }
        free(e.data);
    }
}

static void collect(world *w)
{
    hk_dht_stats st;
    hk_dht_stats_get(w->dht, &st);
    sim_dht_result *r = w->res;
    r->lookups_done = st.lookups_done;
    r->announces_done = st.announces_done;
    r->announce_peer_sent = st.announce_peer_sent;
    r->announce_peer_ok = st.announce_peer_ok;
    r->lookup_queries = st.lookup_queries;
    r->timeouts = st.timeouts;
    r->rounds = st.rounds;
    r->last_period = (double)st.last_period / NS;
    r->dht_memory = st.memory_bytes;
    r->torrent_bytes = st.torrent_bytes;
    r->good4 = st.good4;
    r->node_replies = w->net.replies;
    r->node_stored = w->net.stored;
    r->node_bad_token = w->net.bad_token;
    unsigned n = 0;
    EVP_DigestFinal_ex(w->sha, r->sha256, &n);
}

static void teardown(world *w)
{
    while (w->nheap)
        free(pop(w).data);
    free(w->heap);
    hk_dht_free(w->dht);
    sim_net_free(&w->net);
    free(w->lat);
    free(w->ih);
    EVP_MD_CTX_free(w->sha);
}

int sim_dht_run(const sim_dht_cfg *cfg, sim_dht_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (cfg->nodes < SIM_DHT_K || cfg->nodes > 4000000 || cfg->duration <= 0 || cfg->findable_at > cfg->duration) {
        snprintf(err, errlen, "dht scenario: nodes in [%u, 4000000], duration > 0, findable_at <= duration",
                 SIM_DHT_K);
        return -1;
    }
    world *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->cfg = cfg;
    w->res = out;
    int rc = setup(w, err, errlen);
    if (rc == 0) {
        run(w);
        if (w->failed) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        } else
            collect(w);
    }
    teardown(w);
    free(w);
    if (rc != 0)
        sim_dht_result_free(out);
    return rc;
}

void sim_dht_result_free(sim_dht_result *r)
{
    free(r->probes);
    free(r->per_second);
    r->probes = NULL;
    r->per_second = NULL;
}

void sim_dht_cfg_default(sim_dht_cfg *c)
{
    *c = (sim_dht_cfg){ .seed = 1, .nodes = 5000, .torrents = 10000, .duration = 3600, .latency = 0.025,
                        .jitter = 0.05, .loss = 0.01, .churn = 0, .churn_start = 0, .churn_length = 0,
                        .store_ttl = 2250, .token_rotate = 300, .probe_every = 300, .announce_period = 1800,
                        .query_rate = 200, .query_burst = 20, .bootstrap = 8, .max_lookups = 0,
                        .reannounce = true, .findable_at = 0 };
}
