/* dht_rpc: the DHT node's transactions (a ring in send order), every query it sends (under the global budget and the
 * per-node interval), its answers to other nodes' queries (bounded in size), and the dispatch of replies to their
 * transactions (see dht.h). */
#include <string.h>

#include "dht_internal.h"

bool dht_sent_recently(hk_dht *d, const hk_addr *to, hk_time now); /* dht_store.c */

static bool same_addr(const hk_addr *a, const hk_addr *b)
{
    return a->family == b->family && a->port == b->port && memcmp(a->ip, b->ip, a->family == 4 ? 4 : 16) == 0;
}

int dht_tx_init(hk_dht *d)
{
    d->tx = hk_mem_calloc(&d->mem, HK_DHT_MAX_TX, sizeof *d->tx);
    return d->tx ? 0 : -1;
}

void dht_tx_free(hk_dht *d)
{
    hk_mem_free(&d->mem, d->tx, HK_DHT_MAX_TX * sizeof *d->tx);
    d->tx = NULL;
}

/* ---- Sending ---- */

int dht_send_query(hk_dht *d, const krpc_query *q0, const hk_addr *to, dht_purpose purpose, uint16_t lookup,
                   uint8_t cand)
{
    hk_time now = dht_now(d);
    if (!dht_serves(d, to->family))
        return -1;
    if (d->tx_head - d->tx_tail >= HK_DHT_MAX_TX)
        return -1;
    hk_tb_refill(&d->budget, now);
    if (!hk_tb_has(&d->budget, 1))
        return -1;
    if (purpose != TX_ANNOUNCE && dht_sent_recently(d, to, now)) { /* an announce follows its get_peers */
        d->st.queries_skipped++;
        return -2;
    }
    uint32_t slot = d->tx_head % HK_DHT_MAX_TX;
    dht_tx *t = &d->tx[slot];
    uint16_t check;
    dht_random(d, &check, sizeof check);
    uint8_t tid[4] = { (uint8_t)(slot >> 8), (uint8_t)slot, (uint8_t)(check >> 8), (uint8_t)check };
    krpc_query q = *q0;
    q.tid = tid;
    q.tid_len = 4;
    q.id = d->id;
    size_t n = krpc_put_query(d->scratch, sizeof d->scratch, &q);
    if (!n)
        return -1;
    hk_tb_take(&d->budget, 1);
    *t = (dht_tx){ .purpose = (uint8_t)purpose, .cand = cand, .check = check, .lookup = lookup,
                   .gen = purpose == TX_PING ? 0 : d->lookups[lookup].gen, .to = *to, .sent = now };
    d->tx_head++;
    d->tx_live++;
    d->st.queries_sent++;
    d->rt.udp_send(d->rt.base.ctx, to, d->scratch, n);
    return 0;
}

void dht_send_ping(hk_dht *d, const hk_addr *to, const uint8_t *id)
{
    krpc_query q = { .method = KRPC_PING };
    uint32_t slot = d->tx_head % HK_DHT_MAX_TX;
    if (dht_send_query(d, &q, to, TX_PING, 0, 0) == 0 && id) {
        d->tx[slot].has_id = true;
        memcpy(d->tx[slot].id, id, 20);
    }
}

/* The transaction a reply names, or NULL. */
static dht_tx *tx_of(hk_dht *d, const krpc_msg *m, const hk_addr *from)
{
    if (m->tid_len != 4)
        return NULL;
    uint32_t slot = (uint32_t)m->tid[0] << 8 | m->tid[1];
    uint16_t check = (uint16_t)(m->tid[2] << 8 | m->tid[3]);
    if (slot >= HK_DHT_MAX_TX)
        return NULL;
    dht_tx *t = &d->tx[slot];
    if (t->purpose == TX_FREE || t->check != check || !same_addr(&t->to, from))
        return NULL;
    return t;
}

static void tx_release(hk_dht *d, dht_tx *t)
{
    t->purpose = TX_FREE;
    d->tx_live--;
    while (d->tx_tail != d->tx_head && d->tx[d->tx_tail % HK_DHT_MAX_TX].purpose == TX_FREE)
        d->tx_tail++;
}

static void tx_timed_out(hk_dht *d, dht_tx *t)
{
    dht_tx copy = *t;
    tx_release(d, t);
    d->st.timeouts++;
    if (copy.purpose == TX_PING && copy.has_id) {
        hk_dht_table *tb = dht_table_for(d, copy.to.family);
        if (tb)
            hk_dht_table_failed(tb, copy.id, &copy.to);
    }
    if (copy.purpose == TX_LOOKUP || copy.purpose == TX_ANNOUNCE) {
        dht_lookup *l = &d->lookups[copy.lookup];
        if (l->gen == copy.gen && copy.cand < l->ncand && l->cand[copy.cand].has_id) {
            hk_dht_table *tb = dht_table_for(d, copy.to.family);
            if (tb)
                hk_dht_table_failed(tb, l->cand[copy.cand].id, &copy.to);
            dht_cache_drop(d, l->cand[copy.cand].id, &copy.to);
        }
        if (copy.purpose == TX_LOOKUP)
            dht_lookup_failed(d, copy.lookup, copy.gen, copy.cand);
        else
            dht_lookup_announce_done(d, copy.lookup, copy.gen, false);
    }
}

void dht_expire_tx(hk_dht *d, hk_time now)
{
    while (d->tx_tail != d->tx_head) {
        dht_tx *t = &d->tx[d->tx_tail % HK_DHT_MAX_TX];
        if (t->purpose != TX_FREE && now - t->sent < d->cfg.query_timeout)
            break;
        if (t->purpose != TX_FREE)
            tx_timed_out(d, t);   /* advances the tail */
        else
            d->tx_tail++;
    }
}

hk_time dht_tx_next_timeout(const hk_dht *d)
{
    for (uint32_t i = d->tx_tail; i != d->tx_head; i++) {
        const dht_tx *t = &d->tx[i % HK_DHT_MAX_TX];
        if (t->purpose != TX_FREE)
            return t->sent + d->cfg.query_timeout;
    }
    return HK_TIME_NEVER;
}

/* ---- Answering ---- */

static void send_bytes(hk_dht *d, const hk_addr *to, size_t n)
{
    if (n)
        d->rt.udp_send(d->rt.base.ctx, to, d->scratch, n);
}

static void send_error(hk_dht *d, const hk_addr *to, const krpc_msg *m, int code, const char *text)
{
    size_t n = krpc_put_error(d->scratch, sizeof d->scratch, m->tid, m->tid_len, code, text);
    send_bytes(d, to, n);
    d->st.errors_sent++;
}

/* Up to K compact nodes of the table of `family` closest to target, into out; returns bytes written. */
static size_t closest_compact(hk_dht *d, uint8_t family, const uint8_t target[20], uint8_t *out)
{
    hk_dht_table *t = dht_table_for(d, family);
    if (!t)
        return 0;
    hk_dht_node nodes[HK_DHT_K];
    size_t k = hk_dht_table_closest(t, target, dht_now(d), nodes, HK_DHT_K), len = 0;
    for (size_t i = 0; i < k; i++) {
        memcpy(out + len, nodes[i].id, 20);
        len += 20;
        len += krpc_compact_addr(&nodes[i].addr, out + len);
    }
    return len;
}

typedef struct reply_parts {
    uint8_t nodes[HK_DHT_K * KRPC_NODE4];
    uint8_t nodes6[HK_DHT_K * KRPC_NODE6];
    uint8_t values[KRPC_MAX_VALUES * 18];
    uint8_t token[8];
} reply_parts;

/* Cuts the reply until it fits in `limit` bytes: nodes6, then values, then nodes, one entry at a time. */
static bool fit_reply(krpc_reply *r, size_t limit)
{
    while (krpc_reply_size(r) > limit) {
        if (r->nodes6_len)
            r->nodes6_len -= KRPC_NODE6;
        else if (r->nvalues)
            r->nvalues--;
        else if (r->nodes_len)
            r->nodes_len -= KRPC_NODE4;
        else
            return false;
    }
    return true;
}

static void answer(hk_dht *d, const hk_addr *from, const krpc_msg *m, size_t qlen, reply_parts *p)
{
    krpc_reply r = { .tid = m->tid, .tid_len = m->tid_len, .id = d->id, .ip = from };
    uint8_t want = m->want ? m->want : (from->family == 4 ? KRPC_WANT_N4 : KRPC_WANT_N6);
    hk_time now = dht_now(d);
    if (m->method == KRPC_GET_PEERS) {
        dht_token_make(d, from, 0, p->token);
        r.token = p->token;
        r.token_len = 8;
        r.value_len = from->family == 4 ? 6 : 18;
        r.nvalues = dht_store_get(d, m->target, r.value_len, now, p->values, KRPC_MAX_VALUES);
        if (r.nvalues)
            r.values = p->values;
    }
    if ((m->method == KRPC_FIND_NODE || (m->method == KRPC_GET_PEERS && !r.nvalues))) {
        if (want & KRPC_WANT_N4) {
            r.nodes_len = closest_compact(d, 4, m->target, p->nodes);
            r.nodes = p->nodes;
        }
        if (want & KRPC_WANT_N6) {
            r.nodes6_len = closest_compact(d, 6, m->target, p->nodes6);
            r.nodes6 = p->nodes6;
        }
    }
    size_t limit = qlen * d->cfg.reply_factor;
    if (limit > KRPC_MAX_DATAGRAM)
        limit = KRPC_MAX_DATAGRAM;
    if (!fit_reply(&r, limit))
        return;
    send_bytes(d, from, krpc_put_reply(d->scratch, sizeof d->scratch, &r));
    d->st.replies_sent++;
}

static void on_announce(hk_dht *d, const hk_addr *from, const krpc_msg *m, size_t qlen, reply_parts *p)
{
    d->st.announce_peer_received++;
    if (!dht_token_ok(d, from, m->token, m->token_len)) {
        d->st.announce_peer_bad_token++;
        send_error(d, from, m, KRPC_ERR_PROTOCOL, "bad token");
        return;
    }
    hk_addr peer = *from;
    if (!m->implied_port)
        peer.port = m->port;
    (void)dht_store_put(d, m->target, &peer, dht_now(d));
    answer(d, from, m, qlen, p);
}

void dht_on_query(hk_dht *d, const hk_addr *from, const krpc_msg *m, size_t len)
{
    hk_time now = dht_now(d);
    d->st.queries_received++;
    if (!dht_rate_admit(d, from, now)) {
        d->st.rate_dropped++;
        return;
    }
    hk_dht_table *t = dht_table_for(d, from->family);
    if (t && !m->read_only && !hk_dht_table_queried(t, m->id, from, now) && hk_dht_table_has_room(t, m->id, now) &&
        2 * d->budget.tokens > d->budget.burst)
        dht_send_ping(d, from, NULL);   /* verify it before it may enter the table */
    reply_parts p;
    if (m->method == KRPC_ANNOUNCE_PEER)
        on_announce(d, from, m, len, &p);
    else
        answer(d, from, m, len, &p);
}

void dht_on_reply(hk_dht *d, const hk_addr *from, const krpc_msg *m)
{
    dht_tx *t = tx_of(d, m, from);
    if (!t) {
        d->st.stray++;
        return;
    }
    dht_tx copy = *t;
    tx_release(d, t);
    d->st.responses++;
    hk_time now = dht_now(d);
    hk_dht_table *tb = dht_table_for(d, from->family);
    if (m->type == KRPC_RESPONSE && tb) {
        hk_dht_node ping;
        bool has_ping = false;
        if (hk_dht_table_replied(tb, m->id, from, now, &ping, &has_ping) == HK_DHT_INS_REPLACEMENT && has_ping) {
            hk_dht_table_pinged(tb, ping.id, now);
            dht_send_ping(d, &ping.addr, ping.id);
        }
        dht_cache_put(d, m->id, from);
        if (m->has_ip)
            dht_external_vote(d, &m->ip);
    }
    if (copy.purpose == TX_LOOKUP) {
        if (m->type == KRPC_RESPONSE)
            dht_lookup_replied(d, copy.lookup, copy.gen, copy.cand, m);
        else
            dht_lookup_failed(d, copy.lookup, copy.gen, copy.cand);
    } else if (copy.purpose == TX_ANNOUNCE) {
        dht_lookup_announce_done(d, copy.lookup, copy.gen, m->type == KRPC_RESPONSE);
    }
}
