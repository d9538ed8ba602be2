/* sim_dht_node: owns the simulated DHT nodes: their routing tables, the store of announced peers, their answers to
 * KRPC queries (through core/krpc), churn and the probe lookup (see sim_dht_node.h). */
#include "sim_dht_node.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "krpc.h"
#include "sim_dht.h"

#define PROBE_CANDS 48u
#define PROBE_MAX_ASKED 64u
#define NODE_PORT 6881u

/* ---- ids and distances ---- */

/* The number of leading bits a and b share (160 when equal). */
static unsigned common_prefix(const uint8_t a[20], const uint8_t b[20])
{
    for (unsigned i = 0; i < 20; i++) {
        uint8_t x = a[i] ^ b[i];
        if (x)
            return i * 8 + (unsigned)__builtin_clz((unsigned)x) - 24;
    }
    return 160;
}

static void xor_dist(const uint8_t a[20], const uint8_t b[20], uint8_t out[20])
{
    for (int i = 0; i < 20; i++)
        out[i] = a[i] ^ b[i];
}

void sim_net_addr(uint32_t i, hk_addr *out)
{
    memset(out, 0, sizeof *out);
    out->family = 4;
    out->ip[0] = 10;
    out->ip[1] = (uint8_t)(i >> 16);
    out->ip[2] = (uint8_t)(i >> 8);
    out->ip[3] = (uint8_t)i;
    out->port = NODE_PORT;
}

long sim_net_index(const sim_net *net, const hk_addr *a)
{
    if (a->family != 4 || a->ip[0] != 10 || a->port != NODE_PORT)
        return -1;
    uint32_t i = ((uint32_t)a->ip[1] << 16) | ((uint32_t)a->ip[2] << 8) | a->ip[3];
    return i < net->used ? (long)i : -1;
}

/* ---- the sorted list of live nodes (by id), for building tables ---- */

static const sim_net *sort_net;
static int by_id(const void *a, const void *b)
{
    return memcmp(sort_net->n[*(const uint32_t *)a].id, sort_net->n[*(const uint32_t *)b].id, 20);
}

static uint32_t *sorted_live(const sim_net *net, uint32_t *count)
{
    uint32_t *s = malloc(sizeof *s * (net->live ? net->live : 1)), k = 0;
    if (!s)
        return NULL;
    for (uint32_t i = 0; i < net->used; i++)
        if (net->n[i].alive)
            s[k++] = i;
    sort_net = net;
    qsort(s, k, sizeof *s, by_id); /* ids are random and distinct: a total order independent of addresses */
    *count = k;
    return s;
}

/* First position in s[0..n) whose id is >= key (upper: > key). */
static uint32_t bound(const sim_net *net, const uint32_t *s, uint32_t n, const uint8_t key[20], bool upper)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = memcmp(net->n[s[mid]].id, key, 20);
        if (c < 0 || (upper && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The range of s holding the ids that share bits [0, b) with id and, flip set, differ at bit b (else share it). */
static void prefix_range(const sim_net *net, const uint32_t *s, uint32_t n, const uint8_t id[20], unsigned b,
                         bool flip, uint32_t *from, uint32_t *to)
{
    uint8_t lo[20], hi[20];
    memcpy(lo, id, 20);
    if (flip)
        lo[b / 8] ^= (uint8_t)(0x80 >> (b % 8));
    memcpy(hi, lo, 20);
    for (unsigned k = b + 1; k < 160; k++) {
        lo[k / 8] &= (uint8_t) ~(0x80 >> (k % 8));
        hi[k / 8] |= (uint8_t)(0x80 >> (k % 8));
    }
    *from = bound(net, s, n, lo, false);
    *to = bound(net, s, n, hi, true);
}

static int add_contact(sim_node *x, uint32_t c)
{
    if (x->ncontacts == x->cap) {
        uint32_t cap = x->cap ? 2 * x->cap : 64;
        uint32_t *p = realloc(x->contacts, sizeof *p * cap);
        if (!p)
            return -1;
        x->contacts = p;
        x->cap = cap;
    }
    x->contacts[x->ncontacts++] = c;
    return 0;
}

/* Node i's table: per bucket, up to K random nodes of its range among the sorted live nodes. */
static int build_table(sim_net *net, uint32_t i, const uint32_t *s, uint32_t n)
{
    sim_node *x = &net->n[i];
    x->ncontacts = 0;
    for (unsigned b = 0; b < 160; b++) {
        uint32_t from, to;
        prefix_range(net, s, n, x->id, b, true, &from, &to);
        uint32_t size = to - from, picked = 0;
        if (size <= SIM_DHT_K) {
            for (uint32_t k = from; k < to; k++)
                if (add_contact(x, s[k]) != 0)
                    return -1;
        } else {
            uint32_t first = x->ncontacts;
            while (picked < SIM_DHT_K) {
                uint32_t c = s[from + prng_below(&net->r, size)];
                bool dup = false;
                for (uint32_t k = first; k < x->ncontacts; k++)
                    dup |= x->contacts[k] == c;
                if (!dup) {
                    if (add_contact(x, c) != 0)
                        return -1;
                    picked++;
                }
            }
        }
        prefix_range(net, s, n, x->id, b, false, &from, &to);
        if (to - from <= 1)
            break; /* nobody else shares b + 1 bits: every deeper bucket is empty */
    }
    return 0;
}

int sim_net_init(sim_net *net, uint32_t nodes, uint32_t spare, uint64_t seed, const hk_addr *hekate,
                 uint64_t store_ttl, size_t store_cap)
{
    memset(net, 0, sizeof *net);
    net->count = nodes + spare;
    net->n = calloc(net->count, sizeof *net->n);
    size_t cap = 1024;
    while (cap < store_cap)
        cap *= 2;
    net->store = calloc(cap, sizeof *net->store);
    if (!net->n || !net->store)
        return -1;
    net->store_cap = cap;
    prng_seed(&net->r, seed, 0xd47);
    net->hekate = *hekate;
    net->store_ttl = store_ttl;
    net->secret[0] = prng_next(&net->r);
    net->secret[1] = prng_next(&net->r);
    for (uint32_t i = 0; i < nodes; i++) {
        prng_fill(&net->r, net->n[i].id, 20);
        net->n[i].alive = true;
    }
    net->used = net->live = nodes;
    uint32_t n, *s = sorted_live(net, &n);
    int rc = s ? 0 : -1;
    for (uint32_t i = 0; i < nodes && rc == 0; i++)
        rc = build_table(net, i, s, n);
    free(s);
    return rc;
}

void sim_net_free(sim_net *net)
{
    if (net->n)
        for (uint32_t i = 0; i < net->count; i++)
            free(net->n[i].contacts);
    free(net->n);
    free(net->store);
    memset(net, 0, sizeof *net);
}

/* ---- the store ---- */

static size_t store_slot(const sim_net *net, uint32_t node, const uint8_t ih[20])
{
    return (size_t)hk_mix64(((uint64_t)node << 32) ^ hk_mix_info_hash(ih)) & (net->store_cap - 1);
}

static sim_store_entry *store_find(sim_net *net, uint32_t node, const uint8_t ih[20], bool insert)
{
    for (size_t k = store_slot(net, node, ih), probes = 0; probes < net->store_cap; probes++) {
        sim_store_entry *e = &net->store[k];
        if (e->node_plus1 == node + 1 && memcmp(e->ih, ih, 20) == 0)
            return e;
        if (e->node_plus1 == 0) {
            if (!insert || net->store_used * 10 >= net->store_cap * 9) {
                net->store_full += insert;
                return NULL;
            }
            e->node_plus1 = node + 1;
            memcpy(e->ih, ih, 20);
            net->store_used++;
            return e;
        }
        k = (k + 1) & (net->store_cap - 1);
    }
    return NULL;
}

/* Whether node i holds hekate's address for ih at time now. */
static bool holds_hekate(sim_net *net, uint32_t i, const uint8_t ih[20], uint64_t now)
{
    sim_store_entry *e = store_find(net, i, ih, false);
    return e && e->expires > now && e->peer.family == net->hekate.family &&
           memcmp(e->peer.ip, net->hekate.ip, 4) == 0 && e->peer.port == net->hekate.port;
}

/* ---- answering ---- */

/* Up to K of node x's contacts closest to target, into best[] (count returned), live or not: a table keeps a
 * departed contact until it is replaced. */
static uint32_t closest(const sim_net *net, const sim_node *x, const uint8_t target[20], uint32_t *best)
{
    uint8_t bd[SIM_DHT_K][20];
    uint32_t nb = 0;
    for (uint32_t k = 0; k < x->ncontacts; k++) {
        uint8_t d[20];
        xor_dist(net->n[x->contacts[k]].id, target, d);
        uint32_t pos = nb;
        while (pos > 0 && memcmp(d, bd[pos - 1], 20) < 0)
            pos--;
        if (pos >= SIM_DHT_K)
            continue;
        uint32_t last = nb < SIM_DHT_K ? nb : SIM_DHT_K - 1;
        memmove(bd[pos + 1], bd[pos], 20 * (last - pos));
        memmove(&best[pos + 1], &best[pos], sizeof *best * (last - pos));
        memcpy(bd[pos], d, 20);
        best[pos] = x->contacts[k];
        nb = nb < SIM_DHT_K ? nb + 1 : nb;
    }
    return nb;
}

static uint64_t token_of(const sim_net *net, uint32_t node, int which, const hk_addr *a)
{
    uint64_t x = net->secret[which] ^ ((uint64_t)node << 40);
    uint32_t ip;
    memcpy(&ip, a->ip, 4);
    return hk_mix64(x ^ ((uint64_t)ip << 16) ^ a->port);
}

void sim_net_rotate_tokens(sim_net *net)
{
    net->secret[1] = net->secret[0];
    net->secret[0] = prng_next(&net->r);
}

static bool token_ok(const sim_net *net, uint32_t node, const krpc_msg *m, const hk_addr *from)
{
    for (int w = 0; w < 2; w++) {
        uint64_t t = token_of(net, node, w, from);
        if (m->token_len == 8 && memcmp(m->token, &t, 8) == 0)
            return true;
    }
    return false;
}

size_t sim_node_handle(sim_net *net, uint32_t i, const uint8_t *data, size_t len, uint64_t now, uint8_t *out,
                       size_t cap)
{
    krpc_msg m;
    int rc = krpc_decode(data, len, &m);
    if (rc == KRPC_EMALFORMED || m.type != KRPC_QUERY)
        return 0;
    if (rc != KRPC_OK)
        return krpc_put_error(out, cap, m.tid, m.tid_len, rc == KRPC_EMETHOD ? 204 : 203, "bad query");
    sim_node *x = &net->n[i];
    const hk_addr *from = &net->hekate;
    x->knows_hekate = true;
    memcpy(net->hekate_id, m.id, 20);
    net->hekate_id_known = true;
    uint8_t nodes[SIM_DHT_K * 26], peer[6];
    uint32_t best[SIM_DHT_K], nb = 0;
    uint64_t tok = token_of(net, i, 0, from);
    krpc_reply r = { .tid = m.tid, .tid_len = m.tid_len, .id = x->id, .ip = from };
    if (m.method == KRPC_FIND_NODE || m.method == KRPC_GET_PEERS) {
        if (m.method == KRPC_GET_PEERS) {
            r.token = (const uint8_t *)&tok;
            r.token_len = 8;
        }
        sim_store_entry *e = m.method == KRPC_GET_PEERS ? store_find(net, i, m.target, false) : NULL;
        if (e && e->expires > now) {
            krpc_compact_addr(&e->peer, peer);
            r.values = peer;
            r.nvalues = 1;
            r.value_len = 6;
        } else {
            nb = closest(net, x, m.target, best);
            for (uint32_t k = 0; k < nb; k++) {
                hk_addr a;
                sim_net_addr(best[k], &a);
                memcpy(nodes + 26 * k, net->n[best[k]].id, 20);
                krpc_compact_addr(&a, nodes + 26 * k + 20);
            }
            r.nodes = nb ? nodes : NULL;
            r.nodes_len = 26u * nb;
        }
    } else if (m.method == KRPC_ANNOUNCE_PEER) {
        if (!token_ok(net, i, &m, from)) {
            net->bad_token++;
            return krpc_put_error(out, cap, m.tid, m.tid_len, 203, "bad token");
        }
        sim_store_entry *e = store_find(net, i, m.target, true);
        if (e) {
            e->peer = *from;
            if (!m.implied_port)
                e->peer.port = m.port;
            e->expires = now + net->store_ttl;
            net->stored++;
        }
    }
    net->replies++;
    return krpc_put_reply(out, cap, &r);
}

/* ---- churn ---- */

long sim_net_leave(sim_net *net)
{
    if (net->live == 0)
        return -1;
    for (;;) {
        uint32_t i = (uint32_t)prng_below(&net->r, net->used);
        if (net->n[i].alive) {
            net->n[i].alive = false;
            net->live--;
            return i;
        }
    }
}

/* Node c meets newcomer j: j takes a departed contact's place in its bucket, or a free place (fewer than K live). */
static void meet(sim_net *net, uint32_t c, uint32_t j)
{
    sim_node *x = &net->n[c];
    unsigned b = common_prefix(x->id, net->n[j].id);
    uint32_t live = 0, dead = UINT32_MAX;
    for (uint32_t k = 0; k < x->ncontacts; k++) {
        if (common_prefix(x->id, net->n[x->contacts[k]].id) != b)
            continue;
        if (net->n[x->contacts[k]].alive)
            live++;
        else if (dead == UINT32_MAX)
            dead = k;
    }
    if (dead != UINT32_MAX)
        x->contacts[dead] = j;
    else if (live < SIM_DHT_K)
        (void)add_contact(x, j);
}

long sim_net_join(sim_net *net)
{
    if (net->used == net->count)
        return -1;
    uint32_t j = net->used++;
    sim_node *x = &net->n[j];
    prng_fill(&net->r, x->id, 20);
    uint32_t n, *s = sorted_live(net, &n);
    if (!s || build_table(net, j, s, n) != 0) {
        free(s);
        return -1;
    }
    free(s);
    x->alive = true;
    net->live++;
    for (uint32_t k = 0; k < x->ncontacts; k++)
        meet(net, x->contacts[k], j);
    return j;
}

/* ---- the probe ---- */

typedef struct cand {
    uint32_t node;
    uint8_t d[20];
    bool asked, answered;
} cand;

static void cand_add(cand *c, uint32_t *nc, uint32_t node, const uint8_t d[20])
{
    uint32_t pos = *nc;
    for (uint32_t k = 0; k < *nc; k++)
        if (c[k].node == node)
            return;
    while (pos > 0 && memcmp(d, c[pos - 1].d, 20) < 0)
        pos--;
    if (pos >= PROBE_CANDS)
        return;
    uint32_t last = *nc < PROBE_CANDS ? *nc : PROBE_CANDS - 1;
    memmove(&c[pos + 1], &c[pos], sizeof *c * (last - pos));
    c[pos] = (cand){ .node = node };
    memcpy(c[pos].d, d, 20);
    *nc = *nc < PROBE_CANDS ? *nc + 1 : *nc;
}

bool sim_net_probe(sim_net *net, const uint8_t ih[20], uint64_t now)
{
    if (net->live == 0)
        return false;
    uint32_t s;
    do
        s = (uint32_t)prng_below(&net->r, net->used);
    while (!net->n[s].alive);
    cand c[PROBE_CANDS];
    uint32_t nc = 0, asked = 0;
    uint8_t d[20];
    xor_dist(net->n[s].id, ih, d);
    cand_add(c, &nc, s, d);
    c[0].d[0] = 0; /* the start node is asked first whatever its distance */
    memset(c[0].d, 0, 20);
    while (asked < PROBE_MAX_ASKED) {
        uint32_t answered = 0, pick = UINT32_MAX;
        for (uint32_t k = 0; k < nc && answered < SIM_DHT_K; k++) {
            if (!c[k].asked) {
                pick = k;
                break;
            }
            answered += c[k].answered;
        }
        if (pick == UINT32_MAX)
            return false; /* the K closest that answer were asked */
        c[pick].asked = true;
        asked++;
        uint32_t node = c[pick].node;
        if (!net->n[node].alive)
            continue;
        c[pick].answered = true;
        if (holds_hekate(net, node, ih, now))
            return true;
        uint32_t best[SIM_DHT_K], nb = closest(net, &net->n[node], ih, best);
        for (uint32_t k = 0; k < nb; k++) {
            xor_dist(net->n[best[k]].id, ih, d);
            cand_add(c, &nc, best[k], d);
        }
    }
    return false;
}
