/* dht_lookup: the DHT node's iterative lookups (get_peers toward a torrent then announce_peer to the K closest that
 * gave a token; find_node for bootstrap and refresh), each a fixed array of candidates (see dht.h). */
#include <string.h>

#include "dht_internal.h"

static bool same_addr(const hk_addr *a, const hk_addr *b)
{
    return a->family == b->family && a->port == b->port && memcmp(a->ip, b->ip, a->family == 4 ? 4 : 16) == 0;
}

/* <0 when a should come before b: candidates with an id first, closer first. */
static int cand_cmp(const uint8_t target[20], const dht_cand *a, const dht_cand *b)
{
    if (a->has_id != b->has_id)
        return a->has_id ? -1 : 1;
    return a->has_id ? hk_dht_cmp_distance(target, a->id, b->id) : 0;
}

static bool usable(const dht_cand *c)
{
    return c->state != C_FAILED;
}

/* The indices of the up to `max` closest usable candidates, closest first. */
static size_t closest(const dht_lookup *l, uint8_t *idx, size_t max)
{
    size_t n = 0;
    for (uint8_t i = 0; i < l->ncand; i++) {
        if (!usable(&l->cand[i]))
            continue;
        size_t j = n < max ? n++ : max;
        if (j == max && cand_cmp(l->target, &l->cand[i], &l->cand[idx[max - 1]]) >= 0)
            continue;
        if (j == max)
            j = max - 1;
        while (j > 0 && cand_cmp(l->target, &l->cand[i], &l->cand[idx[j - 1]]) < 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    return n;
}

static void add_cand(hk_dht *d, dht_lookup *l, const uint8_t *id, const hk_addr *a)
{
    if (a->port == 0 || (id && memcmp(id, d->id, 20) == 0))
        return;
    for (uint16_t i = 0; i < l->ncand; i++)
        if ((id && l->cand[i].has_id && memcmp(l->cand[i].id, id, 20) == 0) || same_addr(&l->cand[i].addr, a))
            return;
    dht_cand c = { .addr = *a, .state = C_NEW, .has_id = id != NULL };
    if (id)
        memcpy(c.id, id, 20);
    if (l->ncand < HK_DHT_LOOKUP_CANDS) {
        l->cand[l->ncand++] = c;
        return;
    }
    int far = -1;   /* the farthest candidate not waiting for a reply */
    for (uint16_t i = 0; i < l->ncand; i++)
        if (l->cand[i].state != C_SENT &&
            (far < 0 || !usable(&l->cand[far]) ||
             (usable(&l->cand[i]) && cand_cmp(l->target, &l->cand[i], &l->cand[far]) > 0)))
            far = (int)i;
    if (far >= 0 && (!usable(&l->cand[far]) || cand_cmp(l->target, &c, &l->cand[far]) < 0))
        l->cand[far] = c;
}

/* ---- The node cache ---- */

static dht_cache_slot *cache_of(hk_dht *d, uint8_t family)
{
    return family == 4 ? d->cache4 : family == 6 ? d->cache6 : NULL;
}

static uint32_t prefix(const uint8_t id[20])
{
    return ((uint32_t)id[0] << 8 | id[1]) >> (16 - DHT_CACHE_BITS);
}

void dht_cache_put(hk_dht *d, const uint8_t id[20], const hk_addr *a)
{
    dht_cache_slot *c = cache_of(d, a->family);
    if (c && memcmp(id, d->id, 20) != 0) {
        dht_cache_slot *s = &c[prefix(id)];
        memcpy(s->id, id, 20);
        s->addr = *a;
    }
}

void dht_cache_drop(hk_dht *d, const uint8_t id[20], const hk_addr *a)
{
    dht_cache_slot *c = cache_of(d, a->family);
    if (c && memcmp(c[prefix(id)].id, id, 20) == 0 && same_addr(&c[prefix(id)].addr, a))
        c[prefix(id)].addr.family = 0;
}

/* The cached nodes of the prefixes nearest the target (XOR order on prefixes) become candidates. */
static void seed_from_cache(hk_dht *d, dht_lookup *l)
{
    dht_cache_slot *c = cache_of(d, l->family);
    if (!c)
        return;
    uint32_t p = prefix(l->target);
    for (uint32_t j = 0; j < DHT_CACHE_SEED; j++)
        if (c[p ^ j].addr.family)
            add_cand(d, l, c[p ^ j].id, &c[p ^ j].addr);
}

static void finish(hk_dht *d, dht_lookup *l)
{
    d->st.lookups_done++;
    if (l->kind == LK_ANNOUNCE && l->announced_ok)
        d->st.announces_done++;
    dht_logf(d, HK_LOG_DEBUG, "dht: lookup %s done, %u candidates, %u announces acknowledged",
             l->kind == LK_ANNOUNCE ? "get_peers" : "find_node", l->ncand, l->announced_ok);
    l->kind = LK_NONE;
}

/* Sends announce_peer to the K closest that replied with a token. false when it must wait for the budget. */
static bool step_announce(hk_dht *d, dht_lookup *l, uint16_t slot)
{
    uint8_t idx[HK_DHT_K];
    size_t n = closest(l, idx, HK_DHT_K);
    for (size_t k = 0; k < n; k++) {
        dht_cand *c = &l->cand[idx[k]];
        if (c->state != C_REPLIED || !c->token_len)
            continue;
        krpc_query q = { .method = KRPC_ANNOUNCE_PEER, .target = l->target, .token = c->token,
                         .token_len = c->token_len, .port = d->cfg.port, .implied_port = d->cfg.implied_port };
        if (dht_send_query(d, &q, &c->addr, TX_ANNOUNCE, slot, idx[k]) != 0)
            return false;
        c->state = C_ANNOUNCED;
        l->inflight++;
        d->st.announce_peer_sent++;
    }
    return true;
}

static void step(hk_dht *d, uint16_t slot)
{
    dht_lookup *l = &d->lookups[slot];
    if (l->kind == LK_NONE)
        return;
    if (l->announcing) {
        if (step_announce(d, l, slot) && l->inflight == 0)
            finish(d, l);
        return;
    }
    uint8_t idx[HK_DHT_K];
    size_t n = closest(l, idx, HK_DHT_K);
    bool pending = false;
    for (size_t k = 0; k < n && l->inflight < DHT_ALPHA; k++) {
        dht_cand *c = &l->cand[idx[k]];
        if (c->state != C_NEW)
            continue;
        krpc_query q = { .method = l->kind == LK_ANNOUNCE ? KRPC_GET_PEERS : KRPC_FIND_NODE, .target = l->target };
        int rc = dht_send_query(d, &q, &c->addr, TX_LOOKUP, slot, idx[k]);
        if (rc == -1) {
            pending = true;   /* no budget: the next wake resumes */
            break;
        }
        if (rc == -2) {       /* the address was sent a query just now (by another lookup): ask it a bit later */
            pending = true;
            hk_time at = dht_now(d) + d->cfg.per_node_interval;
            if (at < d->retry_at)
                d->retry_at = at;
            continue;
        }
        c->state = C_SENT;
        l->inflight++;
        d->st.lookup_queries++;
    }
    if (pending || l->inflight)
        return;
    if (l->kind == LK_ANNOUNCE) {
        l->announcing = true;
        step(d, slot);
    } else {
        finish(d, l);
    }
}

int dht_lookup_start(hk_dht *d, lookup_kind kind, uint8_t family, const uint8_t target[20])
{
    hk_dht_table *t = dht_table_for(d, family);
    if (!t)
        return -1;
    uint16_t slot = 0;
    while (slot < d->cfg.max_lookups && d->lookups[slot].kind != LK_NONE)
        slot++;
    if (slot == d->cfg.max_lookups)
        return -1;
    dht_lookup *l = &d->lookups[slot];
    uint16_t gen = (uint16_t)(++d->lookup_gen ? d->lookup_gen : ++d->lookup_gen);
    memset(l, 0, offsetof(dht_lookup, cand));
    l->kind = (uint8_t)kind;
    l->family = family;
    l->gen = gen;
    memcpy(l->target, target, 20);
    hk_dht_node seed[2 * HK_DHT_K];
    size_t n = hk_dht_table_closest(t, target, dht_now(d), seed, 2 * HK_DHT_K);
    for (size_t i = 0; i < n; i++)
        add_cand(d, l, seed[i].id, &seed[i].addr);
    seed_from_cache(d, l);
    if (kind == LK_FIND || n < HK_DHT_K)
        for (uint32_t i = 0; i < d->nboot; i++)
            if (d->boot[i].family == family)
                add_cand(d, l, NULL, &d->boot[i]);
    d->st.lookups_started++;
    step(d, slot);
    return slot;
}

void dht_lookup_step_all(hk_dht *d)
{
    for (uint16_t s = 0; s < d->cfg.max_lookups; s++)
        if (d->lookups[s].kind != LK_NONE)
            step(d, s);
}

static dht_lookup *live(hk_dht *d, uint16_t slot, uint16_t gen, uint8_t cand)
{
    if (slot >= d->cfg.max_lookups)
        return NULL;
    dht_lookup *l = &d->lookups[slot];
    return l->kind != LK_NONE && l->gen == gen && cand < l->ncand ? l : NULL;
}

static void add_nodes(hk_dht *d, dht_lookup *l, const uint8_t *p, size_t len, size_t each)
{
    for (size_t off = 0; off + each <= len; off += each) {
        hk_addr a;
        if (krpc_parse_addr(p + off + 20, each - 20, &a))
            add_cand(d, l, p + off, &a);
    }
}

void dht_lookup_replied(hk_dht *d, uint16_t slot, uint16_t gen, uint8_t cand, const krpc_msg *m)
{
    dht_lookup *l = live(d, slot, gen, cand);
    if (!l)
        return;
    dht_cand *c = &l->cand[cand];
    if (c->state != C_SENT)
        return;
    l->inflight--;
    c->state = C_REPLIED;
    if (!c->has_id) {
        for (uint16_t i = 0; i < l->ncand; i++)
            if (l->cand[i].has_id && memcmp(l->cand[i].id, m->id, 20) == 0)
                c->state = C_FAILED;   /* the same node twice: keep the first */
        memcpy(c->id, m->id, 20);
        c->has_id = c->state == C_REPLIED;
    }
    if (m->token_len) {
        memcpy(c->token, m->token, m->token_len);
        c->token_len = m->token_len;
    }
    if (l->family == 4 && m->nodes)
        add_nodes(d, l, m->nodes, m->nodes_len, KRPC_NODE4);
    if (l->family == 6 && m->nodes6)
        add_nodes(d, l, m->nodes6, m->nodes6_len, KRPC_NODE6);
    step(d, slot);
}

void dht_lookup_failed(hk_dht *d, uint16_t slot, uint16_t gen, uint8_t cand)
{
    dht_lookup *l = live(d, slot, gen, cand);
    if (!l || l->cand[cand].state != C_SENT)
        return;
    l->inflight--;
    l->cand[cand].state = C_FAILED;
    step(d, slot);
}

void dht_lookup_announce_done(hk_dht *d, uint16_t slot, uint16_t gen, bool ok)
{
    dht_lookup *l = live(d, slot, gen, 0);
    if (!l || !l->announcing || !l->inflight)
        return;
    l->inflight--;
    if (ok) {
        l->announced_ok++;
        d->st.announce_peer_ok++;
    }
    step(d, slot);
}

uint32_t dht_lookups_active(const hk_dht *d)
{
    uint32_t n = 0;
    for (uint16_t s = 0; s < d->cfg.max_lookups; s++)
        n += d->lookups[s].kind != LK_NONE;
    return n;
}

bool dht_lookup_free_slot(const hk_dht *d)
{
    return dht_lookups_active(d) < d->cfg.max_lookups;
}

bool dht_lookup_waiting_budget(const hk_dht *d)
{
    return dht_lookups_active(d) > 0 && !hk_tb_has(&d->budget, 1);
}
