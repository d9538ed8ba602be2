/* Fuzz target for core/krpc and the DHT node behind it: any datagram either fails with a named reason or decodes
 * into a message whose fields are within their bounds; a decoded query re-encodes and decodes to the same method,
 * ids and arguments. Each input is also read as a saved state (hk_dht_load) and delivered to one long-lived node
 * (core/dht.h, a fake runtime whose clock moves 1 s per input) from one of 16 addresses: every reply it sends must
 * decode and stay within its reply bound, and its heap must not grow after the first inputs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dht.h"
#include "hash.h"
#include "krpc.h"

static hk_time clk = 1000000000ull;
static uint64_t rnd_state = 42;
static size_t last_query_len;
static hk_time f_now(void *c) { (void)c; return clk; }
static void f_wake(void *c, hk_time t) { (void)c; (void)t; }
static void f_rand(void *c, void *buf, size_t n)
{
    (void)c;
    for (size_t i = 0; i < n; i++)
        ((uint8_t *)buf)[i] = (uint8_t)hk_splitmix64(&rnd_state);
}
static void f_send(void *c, const hk_addr *to, const uint8_t *b, size_t len)
{
    (void)c;
    (void)to;
    krpc_msg m;
    if (len > KRPC_MAX_DATAGRAM || krpc_decode(b, len, &m) != KRPC_OK)
        abort();
    if (m.type == KRPC_RESPONSE && len > 8 * last_query_len)
        abort();
}

static hk_dht *node(void)
{
    static hk_dht *d;
    if (!d) {
        hk_dht_runtime rt = { .base = { .now = f_now, .wake_at = f_wake, .random_bytes = f_rand }, .udp_send = f_send };
        hk_dht_config cfg;
        hk_dht_config_defaults(&cfg);
        d = hk_dht_new(&cfg, &rt);
        if (!d)
            abort();
    }
    return d;
}

static void deliver(const uint8_t *data, size_t size)
{
    static uint64_t inputs, mem_after_warmup;
    hk_dht *d = node();
    hk_addr from = { .family = 4, .ip = { 10, 0, 0, (uint8_t)(size % 16) }, .port = 6881 };
    clk += 1000000000ull;
    last_query_len = size;
    hk_dht_on_datagram(d, &from, data, size);
    hk_dht_on_wake(d);
    hk_dht_stats st;
    hk_dht_stats_get(d, &st);
    if (++inputs == 64)
        mem_after_warmup = st.memory_bytes;
    /* the store may fill (bounded by store_torrents records): allow for it, nothing else */
    if (mem_after_warmup && st.memory_bytes > mem_after_warmup + 1024u * 260u + 65536u)
        abort();
    uint8_t id[20];
    bool has_id;
    (void)hk_dht_load(NULL, data, size, id, &has_id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_bounds(const krpc_msg *m)
{
    if (m->tid_len == 0 || m->tid_len > KRPC_MAX_TID || m->token_len > KRPC_MAX_TOKEN || m->nvalues > KRPC_MAX_VALUES)
        abort();
    if (m->nodes_len % KRPC_NODE4 || m->nodes6_len % KRPC_NODE6)
        abort();
    for (unsigned i = 0; i < m->nvalues; i++)
        if (m->values_len[i] != 6 && m->values_len[i] != 18)
            abort();
}

static void check_requery(const krpc_msg *m)
{
    krpc_query q = { .method = m->method, .tid = m->tid, .tid_len = m->tid_len, .id = m->id, .target = m->target,
                     .token = m->token, .token_len = m->token_len, .port = m->port,
                     .implied_port = m->implied_port, .want = m->want };
    uint8_t buf[KRPC_MAX_DATAGRAM];
    size_t n = krpc_put_query(buf, sizeof buf, &q);
    krpc_msg back;
    if (n == 0 || krpc_decode(buf, n, &back) != KRPC_OK)
        abort();
    if (back.method != m->method || memcmp(back.id, m->id, 20) || back.want != m->want ||
        (m->method != KRPC_PING && memcmp(back.target, m->target, 20)))
        abort();
    if (m->method == KRPC_ANNOUNCE_PEER && (back.port != m->port || back.implied_port != m->implied_port ||
                                            back.token_len != m->token_len))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    deliver(data, size);
    krpc_msg m;
    int rc = krpc_decode(data, size, &m);
    if (rc != KRPC_OK) {
        if (!m.why || (rc != KRPC_EMALFORMED && m.tid_len == 0))
            abort();
        return 0;
    }
    check_bounds(&m);
    if (m.type == KRPC_QUERY)
        check_requery(&m);
    return 0;
}
