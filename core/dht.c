/* dht: the DHT node's life (configuration, creation), its torrents and their round-robin announce schedule, the
 * wake-up (timeouts, token rotation, bootstrap, bucket refresh, store expiry), saved state and statistics
 * (contract in dht.h). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dht_id.h"
#include "dht_internal.h"

void hk_dht_config_defaults(hk_dht_config *c)
{
    memset(c, 0, sizeof *c);
    c->port = 6881;
    c->implied_port = true;
    c->v4 = true;
    c->query_rate = 200;
    c->query_burst = 20;
    c->per_node_interval = HK_MILLIS(500);
    c->announce_interval = HK_SECONDS(1800);
    c->max_lookups = 16;
    c->query_timeout = HK_SECONDS(4);
    c->in_rate_per_addr = 20;
    c->store_torrents = 1024;
    c->store_ttl = HK_SECONDS(30 * 60);
    c->token_rotate = HK_SECONDS(300);
    c->reply_factor = 8;
    c->bootstrap_retry = HK_SECONDS(60);
    c->secure_id = true;
}

const char *hk_dht_config_check(const hk_dht_config *c)
{
    if (!c)
        return "dht: no config";
    if (!c->v4 && !c->v6)
        return "dht: no address family";
    if (c->port == 0)
        return "dht: port is 0";
    if (c->query_rate == 0 || c->query_rate > 100000)
        return "dht: query_rate out of 1..100000";
    if (c->query_burst == 0 || c->query_burst > 100000)
        return "dht: query_burst out of 1..100000";
    if (c->max_lookups == 0 || c->max_lookups > 256)
        return "dht: max_lookups out of 1..256";
    if (c->query_timeout == 0 || c->announce_interval == 0 || c->token_rotate == 0 || c->store_ttl == 0 ||
        c->bootstrap_retry == 0)
        return "dht: a time is 0";
    if (c->in_rate_per_addr == 0)
        return "dht: in_rate_per_addr is 0";
    if (c->reply_factor < 2)
        return "dht: reply_factor under 2";
    if (c->store_torrents > (1u << 20))
        return "dht: store_torrents over 2^20";
    return NULL;
}

/* ---- Helpers of all the files ---- */

hk_time dht_now(const hk_dht *d)
{
    return d->rt.base.now(d->rt.base.ctx);
}

void dht_random(hk_dht *d, void *buf, size_t n)
{
    d->rt.base.random_bytes(d->rt.base.ctx, buf, n);
}

void dht_logf(const hk_dht *d, hk_log_level lvl, const char *fmt, ...)
{
    if (!d->rt.base.log || lvl > d->log_max)
        return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    d->rt.base.log(d->rt.base.ctx, lvl, line);
}

bool dht_serves(const hk_dht *d, uint8_t family)
{
    return (family == 4 && d->cfg.v4) || (family == 6 && d->cfg.v6);
}

hk_dht_table *dht_table_for(hk_dht *d, uint8_t family)
{
    if (!dht_serves(d, family))
        return NULL;
    return family == 4 ? &d->table4 : &d->table6;
}

/* ---- BEP 42: the external address and a secure id ---- */

static bool re_add(void *arg, const hk_dht_node *n)
{
    hk_dht_table *t = arg;
    (void)hk_dht_table_replied(t, n->id, &n->addr, n->last_reply, NULL, NULL);
    return true;
}

/* Our id becomes `id`: both routing tables are rebuilt around it with every node they held. */
static void change_id(hk_dht *d, const uint8_t id[20])
{
    hk_dht_table *tabs[2] = { &d->table4, &d->table6 };
    for (int i = 0; i < 2; i++) {
        hk_dht_table fresh;
        if (hk_dht_table_init(&fresh, &d->mem, id) < 0)
            return;   /* out of memory: keep the old id and tables */
        hk_dht_table_each(tabs[i], re_add, &fresh);
        hk_dht_table_free(tabs[i]);
        *tabs[i] = fresh;
    }
    memcpy(d->id, id, 20);
    d->st.id_changes++;
}

void dht_external_vote(hk_dht *d, const hk_addr *ip)
{
    hk_addr a = { .family = ip->family };
    memcpy(a.ip, ip->ip, ip->family == 4 ? 4 : 16);
    if (memcmp(&a, &d->ext_candidate, sizeof a) != 0) {
        d->ext_candidate = a;
        d->ext_votes = 0;
    }
    if (++d->ext_votes < HK_DHT_EXTERNAL_VOTES)
        return;
    if (!d->has_external || memcmp(&a, &d->external, sizeof a) != 0)
        dht_logf(d, HK_LOG_DEBUG, "dht: our external address is now known (IPv%u)", a.family);
    d->has_external = true;
    d->external = a;
    if (!d->cfg.secure_id || hk_dht_id_valid(d->id, &a))
        return;
    uint8_t rnd[20], id[20];
    dht_random(d, rnd, sizeof rnd);
    hk_dht_id_for(&a, rnd, id);
    change_id(d, id);
    dht_logf(d, HK_LOG_INFO, "dht: node id replaced by a BEP 42 secure id for our external address");
}

/* ---- Life ---- */

static int alloc_parts(hk_dht *d)
{
    if (hk_dht_table_init(&d->table4, &d->mem, d->id) < 0 || hk_dht_table_init(&d->table6, &d->mem, d->id) < 0 ||
        dht_tx_init(d) < 0)
        return -1;
    d->lookups = hk_mem_calloc(&d->mem, d->cfg.max_lookups, sizeof *d->lookups);
    d->in_rate = hk_mem_calloc(&d->mem, DHT_RATE_SLOTS, sizeof *d->in_rate);
    d->sent_at = hk_mem_calloc(&d->mem, DHT_SENT_SLOTS, sizeof *d->sent_at);
    if (d->cfg.v4 && !(d->cache4 = hk_mem_calloc(&d->mem, DHT_CACHE_SLOTS, sizeof *d->cache4)))
        return -1;
    if (d->cfg.v6 && !(d->cache6 = hk_mem_calloc(&d->mem, DHT_CACHE_SLOTS, sizeof *d->cache6)))
        return -1;
    return d->lookups && d->in_rate && d->sent_at ? 0 : -1;
}

hk_dht *hk_dht_new(const hk_dht_config *cfg, const hk_dht_runtime *rt)
{
    if (hk_dht_config_check(cfg) || hk_dht_runtime_check(rt))
        return NULL;
    hk_mem mem = { 0 };
    hk_dht *d = hk_mem_calloc(&mem, 1, sizeof *d);
    if (!d)
        return NULL;
    d->mem = mem;
    d->cfg = *cfg;
    d->rt = *rt;
    d->log_max = HK_LOG_TRACE;
    if (cfg->has_id)
        memcpy(d->id, cfg->id, 20);
    else
        dht_random(d, d->id, 20);
    hk_id_set_init(&d->torrents);
    dht_store_init(d);
    if (alloc_parts(d) < 0) {
        hk_dht_free(d);
        return NULL;
    }
    hk_time now = dht_now(d);
    hk_tb_init(&d->budget, cfg->query_rate, cfg->query_burst, now);
    dht_random(d, d->secret[0], 16);
    dht_random(d, d->secret[1], 16);
    d->rotate_at = now + cfg->token_rotate;
    d->next_start = d->round_started = now;
    d->bootstrap_at = now;
    d->housekeep_at = now;
    d->retry_at = HK_TIME_NEVER;
    d->rt.base.wake_at(d->rt.base.ctx, now);
    return d;
}

void hk_dht_free(hk_dht *d)
{
    if (!d)
        return;
    hk_dht_table_free(&d->table4);
    hk_dht_table_free(&d->table6);
    dht_tx_free(d);
    hk_mem_free(&d->mem, d->lookups, d->cfg.max_lookups * sizeof *d->lookups);
    hk_mem_free(&d->mem, d->in_rate, DHT_RATE_SLOTS * sizeof *d->in_rate);
    hk_mem_free(&d->mem, d->sent_at, DHT_SENT_SLOTS * sizeof *d->sent_at);
    hk_mem_free(&d->mem, d->cache4, d->cache4 ? DHT_CACHE_SLOTS * sizeof *d->cache4 : 0);
    hk_mem_free(&d->mem, d->cache6, d->cache6 ? DHT_CACHE_SLOTS * sizeof *d->cache6 : 0);
    hk_id_set_free(&d->torrents, &d->mem);
    dht_store_free(d);
    hk_mem mem = d->mem;
    hk_mem_free(&mem, d, sizeof *d);
}

void hk_dht_set_log_level(hk_dht *d, hk_log_level max)
{
    d->log_max = max;
}

const uint8_t *hk_dht_id(const hk_dht *d)
{
    return d->id;
}

int hk_dht_add_bootstrap(hk_dht *d, const hk_addr *a)
{
    if (d->nboot == HK_DHT_MAX_BOOTSTRAP || !dht_serves(d, a->family) || a->port == 0)
        return -1;
    hk_addr c = { .family = a->family, .port = a->port };
    memcpy(c.ip, a->ip, a->family == 4 ? 4 : 16);
    for (uint32_t i = 0; i < d->nboot; i++)
        if (memcmp(&d->boot[i], &c, sizeof c) == 0)
            return 0;
    d->boot[d->nboot++] = c;
    /* a new address (a name resolved late): bootstrap again at the next wake-up if the table needs it */
    hk_time now = dht_now(d);
    d->bootstrap_at = d->housekeep_at = now;
    d->rt.base.wake_at(d->rt.base.ctx, now);
    return 0;
}

/* ---- Torrents ---- */

void hk_dht_set_torrents(hk_dht *d, hk_dht_info_hash_fn info_hash_of, void *ctx)
{
    d->ih_of = info_hash_of;
    d->ih_ctx = ctx;
}

hk_dht_result hk_dht_add_torrent(hk_dht *d, uint32_t id)
{
    assert(d->ih_of); /* hk_dht_set_torrents first */
    switch (hk_id_set_add(&d->torrents, &d->mem, id)) {
    case 0: return HK_DHT_OK;
    case 1: return HK_DHT_DUPLICATE;
    default: return HK_DHT_NOMEM;
    }
}

hk_dht_result hk_dht_add_metainfo(hk_dht *d, uint32_t id, const mi_torrent *mi)
{
    return mi->is_private ? HK_DHT_PRIVATE : hk_dht_add_torrent(d, id);
}

hk_dht_result hk_dht_remove_torrent(hk_dht *d, uint32_t id)
{
    return hk_id_set_remove(&d->torrents, id) ? HK_DHT_OK : HK_DHT_UNKNOWN;
}

bool hk_dht_has_torrent(const hk_dht *d, uint32_t id)
{
    return hk_id_set_has(&d->torrents, id);
}

/* ---- Scheduling ---- */

/* A family can announce once the bootstrap put a node in its table: a lookup started before would time out and the
 * torrent would wait a whole period. */
static bool table_has_nodes(const hk_dht *d, uint8_t family)
{
    const hk_dht_table *t = family == 4 ? &d->table4 : &d->table6;
    bool on = family == 4 ? d->cfg.v4 : d->cfg.v6;
    return on && (t->buckets[0].n || t->nbuckets > 1);
}

/* Starts as many announce lookups as are due, the lookup slots and the budget allow. */
static void start_announces(hk_dht *d, hk_time now)
{
    uint32_t n = hk_id_set_count(&d->torrents);
    if (n == 0) {
        d->next_start = now;
        return;
    }
    hk_time gap = d->cfg.announce_interval / n;
    if (gap == 0)
        gap = 1;
    bool v4 = table_has_nodes(d, 4);
    bool v6 = table_has_nodes(d, 6);
    if (!v4 && !v6)
        return;   /* nobody to ask yet: the round waits (housekeeping wakes the node) */
    while (now >= d->next_start && dht_lookup_free_slot(d) && hk_tb_has(&d->budget, DHT_ALPHA)) {
        uint32_t id = hk_id_set_next(&d->torrents, d->cursor);
        if (id == HK_ID_NONE) { /* past the last one: a round is over */
            d->st.last_period = now - d->round_started;
            d->st.rounds++;
            d->round_started = now;
            id = hk_id_set_next(&d->torrents, 0);
            assert(id != HK_ID_NONE); /* n > 0 */
        }
        d->cursor = id + 1;
        const uint8_t *ih = d->ih_of(d->ih_ctx, id);
        assert(ih); /* the owner removes an id from the node before its info-hash goes */
        if (v4)
            (void)dht_lookup_start(d, LK_ANNOUNCE, 4, ih);
        if (v6)
            (void)dht_lookup_start(d, LK_ANNOUNCE, 6, ih);
        /* behind by more than a gap: the cap (or the slots) is what limits; do not catch up in a burst */
        d->next_start = d->next_start + gap < now ? now : d->next_start + gap;
    }
}

static void upkeep_family(hk_dht *d, uint8_t family, hk_time now)
{
    hk_dht_table *t = dht_table_for(d, family);
    if (!t)
        return;
    hk_dht_table_stats s;
    hk_dht_table_stats_get(t, now, &s);
    if (s.good < HK_DHT_K && now >= d->bootstrap_at) {
        if (dht_lookup_start(d, LK_FIND, family, d->id) >= 0)
            dht_logf(d, HK_LOG_DEBUG, "dht: bootstrap (IPv%u, %u good nodes)", family, s.good);
        return;
    }
    int b = s.nodes ? hk_dht_table_stale_bucket(t, now, DHT_REFRESH_AGE) : -1;
    if (b >= 0 && dht_lookup_free_slot(d)) {
        uint8_t rnd[20], target[20];
        dht_random(d, rnd, sizeof rnd);
        hk_dht_table_bucket_target(t, (unsigned)b, rnd, target);
        hk_dht_table_touch_bucket(t, (unsigned)b, now);
        dht_lookup_start(d, LK_FIND, family, target);
    }
}

static void housekeep(hk_dht *d, hk_time now)
{
    if (now >= d->rotate_at) {
        dht_token_rotate(d);
        d->rotate_at = now + d->cfg.token_rotate;
    }
    if (now < d->housekeep_at)
        return;
    d->housekeep_at = now + DHT_HOUSEKEEP;
    bool boot = now >= d->bootstrap_at;
    upkeep_family(d, 4, now);
    upkeep_family(d, 6, now);
    if (boot)
        d->bootstrap_at = now + d->cfg.bootstrap_retry;
    dht_store_sweep(d, now, 64);
}

static void schedule_wake(hk_dht *d, hk_time now)
{
    hk_time w = d->housekeep_at < d->rotate_at ? d->housekeep_at : d->rotate_at;
    hk_time t = dht_tx_next_timeout(d);
    if (t < w)
        w = t;
    /* an empty table starts nothing (start_announces): waking for it would spin until the bootstrap answers */
    if (hk_id_set_count(&d->torrents) && dht_lookup_free_slot(d) && (table_has_nodes(d, 4) || table_has_nodes(d, 6))) {
        /* the next start when it is ahead; when it is due, it waits for the budget (a full set of slots waits for
         * a reply or a timeout, which wake the node anyway) */
        t = d->next_start > now ? d->next_start : hk_tb_time_for(&d->budget, DHT_ALPHA);
        if (t < w)
            w = t;
    }
    if (d->retry_at < w)
        w = d->retry_at;
    if (dht_lookup_waiting_budget(d)) {
        t = hk_tb_time_for(&d->budget, 1);
        if (t < w)
            w = t;
    }
    d->rt.base.wake_at(d->rt.base.ctx, w > now ? w : now + 1);
}

void hk_dht_on_wake(hk_dht *d)
{
    hk_time now = dht_now(d);
    hk_tb_refill(&d->budget, now);
    dht_expire_tx(d, now);
    housekeep(d, now);
    d->retry_at = HK_TIME_NEVER;   /* set again by the lookups that still wait */
    dht_lookup_step_all(d);
    start_announces(d, now);
    schedule_wake(d, now);
}

void hk_dht_on_datagram(hk_dht *d, const hk_addr *from, const uint8_t *bytes, size_t len)
{
    if (!from || !dht_serves(d, from->family) || from->port == 0) {
        d->st.bad_datagrams++;
        return;
    }
    krpc_msg m;
    int rc = krpc_decode(bytes, len, &m);
    hk_time now = dht_now(d);
    if (rc == KRPC_OK && m.type == KRPC_QUERY) {
        dht_on_query(d, from, &m, len);
    } else if (rc == KRPC_OK) {
        dht_on_reply(d, from, &m);
    } else {
        d->st.bad_datagrams++;
        if (m.type == KRPC_QUERY && rc != KRPC_EMALFORMED && dht_rate_admit(d, from, now)) {
            size_t n = krpc_put_error(d->scratch, sizeof d->scratch, m.tid, m.tid_len,
                                      rc == KRPC_EMETHOD ? KRPC_ERR_METHOD : KRPC_ERR_PROTOCOL,
                                      rc == KRPC_EMETHOD ? "Method Unknown" : "Protocol Error");
            if (n && n <= len * d->cfg.reply_factor) {
                d->rt.udp_send(d->rt.base.ctx, from, d->scratch, n);
                d->st.errors_sent++;
            }
        }
    }
    schedule_wake(d, now);
}

/* ---- State ---- */

typedef struct save_ctx {
    ben_buf *b;
    uint8_t family;
} save_ctx;

static bool put_node(void *arg, const hk_dht_node *n)
{
    uint8_t c[38];
    memcpy(c, n->id, 20);
    size_t len = 20 + krpc_compact_addr(&n->addr, c + 20);
    ben_put_raw(((save_ctx *)arg)->b, c, len);
    return true;
}

void hk_dht_save(const hk_dht *d, ben_buf *b)
{
    ben_put_dict_begin(b);
    ben_put_cstr(b, "id");
    ben_put_str(b, d->id, 20);
    const hk_dht_table *tabs[2] = { &d->table4, &d->table6 };
    static const char *const keys[2] = { "nodes", "nodes6" };
    for (int i = 0; i < 2; i++) {
        hk_dht_table_stats s;
        hk_dht_table_stats_get(tabs[i], 0, &s);
        if (!s.nodes)
            continue;
        char len[24];
        snprintf(len, sizeof len, "%u:", (unsigned)(s.nodes * (i ? KRPC_NODE6 : KRPC_NODE4)));
        ben_put_cstr(b, keys[i]);
        ben_put_raw(b, len, strlen(len));
        save_ctx c = { b, (uint8_t)(i ? 6 : 4) };
        hk_dht_table_each(tabs[i], put_node, &c);
    }
    ben_put_end(b);
}

static void load_nodes(hk_dht *d, const uint8_t *p, size_t len, size_t each)
{
    for (size_t off = 0; d && off + each <= len; off += each) {
        hk_addr a;
        if (krpc_parse_addr(p + off + 20, each - 20, &a))
            (void)hk_dht_add_bootstrap(d, &a);
    }
}

int hk_dht_load(hk_dht *d, const uint8_t *data, size_t len, uint8_t id[20], bool *has_id)
{
    ben_doc doc;
    ben_error err;
    *has_id = false;
    if (ben_decode(data, len, 4096, &doc, &err) != 0)
        return -1;
    int rc = -1;
    const uint8_t *p;
    size_t n;
    if (doc.tok[0].type == BEN_DICT) {
        rc = 0;
        if (ben_get_str(&doc, ben_dict_find(&doc, 0, "id"), &p, &n) && n == 20) {
            memcpy(id, p, 20);
            *has_id = true;
        }
        if (ben_get_str(&doc, ben_dict_find(&doc, 0, "nodes"), &p, &n) && n % KRPC_NODE4 == 0)
            load_nodes(d, p, n, KRPC_NODE4);
        if (ben_get_str(&doc, ben_dict_find(&doc, 0, "nodes6"), &p, &n) && n % KRPC_NODE6 == 0)
            load_nodes(d, p, n, KRPC_NODE6);
    }
    ben_doc_free(&doc);
    return rc;
}

/* ---- Statistics ---- */

void hk_dht_stats_get(const hk_dht *d, hk_dht_stats *out)
{
    *out = d->st;
    hk_time now = dht_now(d);
    hk_dht_table_stats s;
    hk_dht_table_stats_get(&d->table4, now, &s);
    out->nodes4 = s.nodes;
    out->good4 = s.good;
    hk_dht_table_stats_get(&d->table6, now, &s);
    out->nodes6 = s.nodes;
    out->good6 = s.good;
    out->torrents = hk_id_set_count(&d->torrents);
    out->lookups_active = dht_lookups_active(d);
    out->store_torrents = d->store.live;
    uint32_t peers = 0;
    for (uint32_t r = 0; r < d->store.used; r++)
        if (hk_ih_find(&d->store.index, d->store.recs[r].ih) == r)
            for (unsigned i = 0; i < HK_DHT_STORE_PEERS; i++)
                peers += d->store.recs[r].peers[i].len && d->store.recs[r].peers[i].expires > now;
    out->store_peers = peers;
    out->memory_bytes = d->mem.bytes;
    out->torrent_bytes = hk_id_set_bytes(&d->torrents);
    out->has_external = d->has_external;
    out->id_changes = d->st.id_changes;
    out->external = d->external;
}
