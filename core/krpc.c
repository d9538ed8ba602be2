/* krpc: decoding of KRPC datagrams into krpc_msg and encoding of queries, replies and errors into a caller's buffer
 * (contract in krpc.h). */
#include "krpc.h"

#include <string.h>

#include "bencode.h"

/* ---- Decoding ---- */

typedef struct dec {
    const ben_doc *doc;
    krpc_msg *m;
} dec;

static int bad(krpc_msg *m, int code, const char *why)
{
    m->why = why;
    return code;
}

/* A string value of exactly n bytes (n == 0: any length) at key; 1 found, 0 absent, -1 wrong type/size. */
static int get_fixed(const ben_doc *doc, uint32_t dict, const char *key, size_t n, const uint8_t **p, size_t *len)
{
    int64_t v = ben_dict_find(doc, dict, key);
    if (v < 0)
        return 0;
    if (!ben_get_str(doc, v, p, len) || (n && *len != n))
        return -1;
    return 1;
}

/* An integer 0 or 1 at key (absent: false). -1 when present with another value or type. */
static int get_flag(const ben_doc *doc, uint32_t dict, const char *key, bool *out)
{
    int64_t v = ben_dict_find(doc, dict, key), i;
    *out = false;
    if (v < 0)
        return 0;
    if (!ben_get_int(doc, v, &i) || (i != 0 && i != 1))
        return -1;
    *out = i == 1;
    return 1;
}

static int get_token(const ben_doc *doc, uint32_t dict, krpc_msg *m)
{
    const uint8_t *p;
    size_t len;
    int r = get_fixed(doc, dict, "token", 0, &p, &len);
    if (r <= 0)
        return r;
    if (len == 0 || len > KRPC_MAX_TOKEN)
        return -1;
    memcpy(m->token, p, len);
    m->token_len = (uint8_t)len;
    return 1;
}

static int get_want(const ben_doc *doc, uint32_t dict, krpc_msg *m)
{
    int64_t w = ben_dict_find(doc, dict, "want");
    if (w < 0)
        return 0;
    if (doc->tok[w].type != BEN_LIST)
        return -1;
    for (int64_t c = ben_first_child(doc, (uint32_t)w); c >= 0; c = ben_next_sibling(doc, (uint32_t)w, (uint32_t)c)) {
        if (ben_str_eq(doc, c, "n4"))
            m->want |= KRPC_WANT_N4;
        else if (ben_str_eq(doc, c, "n6"))
            m->want |= KRPC_WANT_N6;
        else if (doc->tok[c].type != BEN_STR)
            return -1;
    }
    return 1;
}

static krpc_method method_of(const uint8_t *q, size_t len)
{
    static const struct { const char *name; krpc_method m; } tab[] = {
        { "ping", KRPC_PING }, { "find_node", KRPC_FIND_NODE }, { "get_peers", KRPC_GET_PEERS },
        { "announce_peer", KRPC_ANNOUNCE_PEER },
    };
    for (size_t i = 0; i < sizeof tab / sizeof *tab; i++)
        if (strlen(tab[i].name) == len && memcmp(tab[i].name, q, len) == 0)
            return tab[i].m;
    return KRPC_UNKNOWN_METHOD;
}

static int need20(const ben_doc *doc, uint32_t a, const char *key, uint8_t out[20])
{
    const uint8_t *p;
    size_t len;
    if (get_fixed(doc, a, key, 20, &p, &len) != 1)
        return -1;
    memcpy(out, p, 20);
    return 0;
}

static int decode_announce_args(const ben_doc *doc, uint32_t a, krpc_msg *m)
{
    if (need20(doc, a, "info_hash", m->target) < 0)
        return bad(m, KRPC_EPROTOCOL, "announce_peer without a 20-byte info_hash");
    if (get_token(doc, a, m) != 1)
        return bad(m, KRPC_EPROTOCOL, "announce_peer without a valid token");
    if (get_flag(doc, a, "implied_port", &m->implied_port) < 0)
        return bad(m, KRPC_EPROTOCOL, "announce_peer implied_port is not 0 or 1");
    int64_t pv = ben_dict_find(doc, a, "port"), port = 0;
    if (pv >= 0 && (!ben_get_int(doc, pv, &port) || port < 0 || port > 65535))
        return bad(m, KRPC_EPROTOCOL, "announce_peer port out of range");
    if (!m->implied_port && port == 0)
        return bad(m, KRPC_EPROTOCOL, "announce_peer without a port");
    m->port = (uint16_t)port;
    return KRPC_OK;
}

static int decode_query(const ben_doc *doc, krpc_msg *m)
{
    const uint8_t *q;
    size_t qlen;
    if (get_fixed(doc, 0, "q", 0, &q, &qlen) != 1)
        return bad(m, KRPC_EPROTOCOL, "query without a method name");
    int64_t a = ben_dict_find(doc, 0, "a");
    if (a < 0 || doc->tok[a].type != BEN_DICT)
        return bad(m, KRPC_EPROTOCOL, "query without an argument dictionary");
    m->method = method_of(q, qlen);
    if (need20(doc, (uint32_t)a, "id", m->id) < 0)
        return bad(m, KRPC_EPROTOCOL, "query without a 20-byte id");
    if (get_want(doc, (uint32_t)a, m) < 0)
        return bad(m, KRPC_EPROTOCOL, "query want is not a list of strings");
    if (get_flag(doc, (uint32_t)a, "ro", &m->read_only) < 0)
        return bad(m, KRPC_EPROTOCOL, "query ro is not 0 or 1");
    switch (m->method) {
    case KRPC_PING:
        return KRPC_OK;
    case KRPC_FIND_NODE:
        return need20(doc, (uint32_t)a, "target", m->target) < 0
                   ? bad(m, KRPC_EPROTOCOL, "find_node without a 20-byte target") : KRPC_OK;
    case KRPC_GET_PEERS:
        return need20(doc, (uint32_t)a, "info_hash", m->target) < 0
                   ? bad(m, KRPC_EPROTOCOL, "get_peers without a 20-byte info_hash") : KRPC_OK;
    case KRPC_ANNOUNCE_PEER:
        return decode_announce_args(doc, (uint32_t)a, m);
    default:
        return bad(m, KRPC_EMETHOD, "unknown method");
    }
}

static int decode_values(const ben_doc *doc, uint32_t r, krpc_msg *m)
{
    int64_t v = ben_dict_find(doc, r, "values");
    if (v < 0)
        return 0;
    if (doc->tok[v].type != BEN_LIST)
        return -1;
    for (int64_t c = ben_first_child(doc, (uint32_t)v); c >= 0; c = ben_next_sibling(doc, (uint32_t)v, (uint32_t)c)) {
        const uint8_t *p;
        size_t len;
        if (!ben_get_str(doc, c, &p, &len) || (len != 6 && len != 18))
            return -1;
        if (m->nvalues == KRPC_MAX_VALUES) {
            m->values_dropped++;
            continue;
        }
        m->values[m->nvalues] = p;
        m->values_len[m->nvalues++] = (uint8_t)len;
    }
    return 1;
}

static int decode_response(const ben_doc *doc, krpc_msg *m)
{
    int64_t r = ben_dict_find(doc, 0, "r");
    if (r < 0 || doc->tok[r].type != BEN_DICT)
        return bad(m, KRPC_EPROTOCOL, "response without a result dictionary");
    if (need20(doc, (uint32_t)r, "id", m->id) < 0)
        return bad(m, KRPC_EPROTOCOL, "response without a 20-byte id");
    if (get_fixed(doc, (uint32_t)r, "nodes", 0, &m->nodes, &m->nodes_len) < 0 || m->nodes_len % KRPC_NODE4)
        return bad(m, KRPC_EPROTOCOL, "response nodes is not a multiple of 26 bytes");
    if (get_fixed(doc, (uint32_t)r, "nodes6", 0, &m->nodes6, &m->nodes6_len) < 0 || m->nodes6_len % KRPC_NODE6)
        return bad(m, KRPC_EPROTOCOL, "response nodes6 is not a multiple of 38 bytes");
    if (get_token(doc, (uint32_t)r, m) < 0)
        return bad(m, KRPC_EPROTOCOL, "response token is empty or too long");
    if (decode_values(doc, (uint32_t)r, m) < 0)
        return bad(m, KRPC_EPROTOCOL, "response values is not a list of compact peers");
    return KRPC_OK;
}

static int decode_error(const ben_doc *doc, krpc_msg *m)
{
    int64_t e = ben_dict_find(doc, 0, "e");
    if (e < 0 || doc->tok[e].type != BEN_LIST || doc->tok[e].count != 2)
        return bad(m, KRPC_EPROTOCOL, "error without a [code, message] list");
    if (!ben_get_int(doc, ben_list_at(doc, (uint32_t)e, 0), &m->err_code) ||
        !ben_get_str(doc, ben_list_at(doc, (uint32_t)e, 1), &m->err_text, &m->err_text_len))
        return bad(m, KRPC_EPROTOCOL, "error list is not [integer, string]");
    return KRPC_OK;
}

static int decode_frame(const ben_doc *doc, krpc_msg *m)
{
    const uint8_t *p;
    size_t len;
    if (doc->tok[0].type != BEN_DICT)
        return bad(m, KRPC_EMALFORMED, "not a dictionary");
    if (get_fixed(doc, 0, "t", 0, &p, &len) != 1 || len == 0 || len > KRPC_MAX_TID)
        return bad(m, KRPC_EMALFORMED, "no usable transaction id");
    memcpy(m->tid, p, len);
    m->tid_len = (uint8_t)len;
    if (get_fixed(doc, 0, "y", 1, &p, &len) != 1)
        return bad(m, KRPC_EMALFORMED, "no message type");
    m->type = *p == 'q' ? KRPC_QUERY : *p == 'r' ? KRPC_RESPONSE : *p == 'e' ? KRPC_ERROR : 0;
    if (!m->type)
        return bad(m, KRPC_EMALFORMED, "unknown message type");
    int ipr = get_fixed(doc, 0, "ip", 0, &p, &len);
    if (ipr < 0 || (ipr == 1 && !krpc_parse_addr(p, len, &m->ip)))
        return bad(m, KRPC_EPROTOCOL, "ip is not a compact address");
    m->has_ip = ipr == 1;
    return m->type == KRPC_QUERY ? decode_query(doc, m) : m->type == KRPC_RESPONSE ? decode_response(doc, m)
                                                                                 : decode_error(doc, m);
}

int krpc_decode(const uint8_t *data, size_t len, krpc_msg *msg)
{
    memset(msg, 0, sizeof *msg);
    if (!data || len == 0 || len > KRPC_MAX_DATAGRAM || data[0] != 'd')
        return bad(msg, KRPC_EMALFORMED, "not a bencoded dictionary of datagram size");
    ben_doc doc;
    ben_error err;
    if (ben_decode(data, len, KRPC_MAX_TOKENS, &doc, &err) != 0)
        return bad(msg, KRPC_EMALFORMED, "bad bencoding");
    int rc = decode_frame(&doc, msg);
    ben_doc_free(&doc);
    return rc;
}

/* ---- Encoding ---- */

typedef struct out {
    uint8_t *p;
    size_t len, cap;
    bool over;
} out;

static void put(out *o, const void *b, size_t n)
{
    if (o->over || n > o->cap - o->len) {
        o->over = true;
        return;
    }
    if (o->p)
        memcpy(o->p + o->len, b, n);
    o->len += n;
}

static void put_c(out *o, char c) { put(o, &c, 1); }

static void put_uint(out *o, uint64_t v)
{
    char d[24];
    size_t n = 0;
    do {
        d[sizeof d - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, d + sizeof d - n, n);
}

static void put_str(out *o, const void *s, size_t n)
{
    put_uint(o, n);
    put_c(o, ':');
    put(o, s, n);
}

static void put_key(out *o, const char *k) { put_str(o, k, strlen(k)); }

static void put_int(out *o, int64_t v)
{
    put_c(o, 'i');
    if (v < 0) {
        put_c(o, '-');
        put_uint(o, (uint64_t)0 - (uint64_t)v);
    } else {
        put_uint(o, (uint64_t)v);
    }
    put_c(o, 'e');
}

/* "1:t<tid>1:v4:HK..1:y1:<y>e": the common tail, keys t < v < y. */
static void put_tail(out *o, const uint8_t *tid, uint8_t tid_len, char y)
{
    put_key(o, "t");
    put_str(o, tid, tid_len);
    put_key(o, "v");
    put_str(o, KRPC_VERSION, 4);
    put_key(o, "y");
    put_str(o, &y, 1);
    put_c(o, 'e');
}

static size_t done(out *o) { return o->over ? 0 : o->len; }

static void put_want(out *o, uint8_t want)
{
    if (!want)
        return;
    put_key(o, "want");
    put_c(o, 'l');
    if (want & KRPC_WANT_N4)
        put_str(o, "n4", 2);
    if (want & KRPC_WANT_N6)
        put_str(o, "n6", 2);
    put_c(o, 'e');
}

size_t krpc_put_query(uint8_t *buf, size_t cap, const krpc_query *q)
{
    if (!q->tid || q->tid_len == 0 || q->tid_len > KRPC_MAX_TID || !q->id || q->method < KRPC_PING ||
        q->method > KRPC_ANNOUNCE_PEER || (q->method != KRPC_PING && !q->target) ||
        (q->method == KRPC_ANNOUNCE_PEER && (!q->token || q->token_len == 0 || q->token_len > KRPC_MAX_TOKEN)))
        return 0;
    out o = { buf, 0, cap, false };
    put_c(&o, 'd');
    put_key(&o, "a");
    put_c(&o, 'd');
    put_key(&o, "id");
    put_str(&o, q->id, 20);
    if (q->method == KRPC_ANNOUNCE_PEER) {
        put_key(&o, "implied_port");
        put_int(&o, q->implied_port ? 1 : 0);
    }
    if (q->method == KRPC_GET_PEERS || q->method == KRPC_ANNOUNCE_PEER) {
        put_key(&o, "info_hash");
        put_str(&o, q->target, 20);
    }
    if (q->method == KRPC_ANNOUNCE_PEER) {
        put_key(&o, "port");
        put_int(&o, q->port);
    }
    if (q->method == KRPC_FIND_NODE) {
        put_key(&o, "target");
        put_str(&o, q->target, 20);
    }
    if (q->method == KRPC_ANNOUNCE_PEER) {
        put_key(&o, "token");
        put_str(&o, q->token, q->token_len);
    }
    put_want(&o, q->want);
    put_c(&o, 'e');
    put_key(&o, "q");
    put_key(&o, krpc_method_name(q->method));
    put_tail(&o, q->tid, q->tid_len, 'q');
    return done(&o);
}

static void put_reply_body(out *o, const krpc_reply *r)
{
    uint8_t ip[18];
    size_t iplen = r->ip ? krpc_compact_addr(r->ip, ip) : 0;
    put_c(o, 'd');
    if (iplen) {
        put_key(o, "ip");
        put_str(o, ip, iplen);
    }
    put_key(o, "r");
    put_c(o, 'd');
    put_key(o, "id");
    put_str(o, r->id, 20);
    if (r->nodes) {
        put_key(o, "nodes");
        put_str(o, r->nodes, r->nodes_len);
    }
    if (r->nodes6) {
        put_key(o, "nodes6");
        put_str(o, r->nodes6, r->nodes6_len);
    }
    if (r->token) {
        put_key(o, "token");
        put_str(o, r->token, r->token_len);
    }
    if (r->values) {
        put_key(o, "values");
        put_c(o, 'l');
        for (uint16_t i = 0; i < r->nvalues; i++)
            put_str(o, r->values + (size_t)i * r->value_len, r->value_len);
        put_c(o, 'e');
    }
    put_c(o, 'e');
    put_tail(o, r->tid, r->tid_len, 'r');
}

static bool reply_valid(const krpc_reply *r)
{
    return r->tid && r->tid_len && r->tid_len <= KRPC_MAX_TID && r->id &&
           (!r->nodes || r->nodes_len % KRPC_NODE4 == 0) && (!r->nodes6 || r->nodes6_len % KRPC_NODE6 == 0) &&
           (!r->token || (r->token_len && r->token_len <= KRPC_MAX_TOKEN)) &&
           (!r->values || r->value_len == 6 || r->value_len == 18);
}

size_t krpc_put_reply(uint8_t *buf, size_t cap, const krpc_reply *r)
{
    if (!reply_valid(r))
        return 0;
    out o = { buf, 0, cap, false };
    put_reply_body(&o, r);
    return done(&o);
}

size_t krpc_reply_size(const krpc_reply *r)
{
    if (!reply_valid(r))
        return 0;
    out o = { NULL, 0, SIZE_MAX, false }; /* p == NULL: put() counts only */
    put_reply_body(&o, r);
    return o.len;
}

size_t krpc_put_error(uint8_t *buf, size_t cap, const uint8_t *tid, uint8_t tid_len, int code, const char *text)
{
    if (!tid || tid_len == 0 || tid_len > KRPC_MAX_TID || !text)
        return 0;
    out o = { buf, 0, cap, false };
    put_c(&o, 'd');
    put_key(&o, "e");
    put_c(&o, 'l');
    put_int(&o, code);
    put_key(&o, text);
    put_c(&o, 'e');
    put_tail(&o, tid, tid_len, 'e');
    return done(&o);
}

/* ---- Compact addresses ---- */

size_t krpc_compact_addr(const hk_addr *a, uint8_t *o)
{
    size_t n = a->family == 4 ? 4 : a->family == 6 ? 16 : 0;
    if (!n)
        return 0;
    memcpy(o, a->ip, n);
    o[n] = (uint8_t)(a->port >> 8);
    o[n + 1] = (uint8_t)a->port;
    return n + 2;
}

bool krpc_parse_addr(const uint8_t *p, size_t len, hk_addr *a)
{
    if (len != 6 && len != 18)
        return false;
    size_t n = len - 2;
    memset(a, 0, sizeof *a);
    a->family = n == 4 ? 4 : 6;
    memcpy(a->ip, p, n);
    a->port = (uint16_t)(p[n] << 8 | p[n + 1]);
    return true;
}

const char *krpc_method_name(krpc_method m)
{
    switch (m) {
    case KRPC_PING: return "ping";
    case KRPC_FIND_NODE: return "find_node";
    case KRPC_GET_PEERS: return "get_peers";
    case KRPC_ANNOUNCE_PEER: return "announce_peer";
    default: return "?";
    }
}
