/* krpc: the DHT's message codec (BEP 5 KRPC over bencoding, BEP 32 IPv6 fields), strict and bounded.
 *
 * Contract
 * --------
 * Decoding: krpc_decode reads one datagram (at most KRPC_MAX_DATAGRAM bytes) into a flat krpc_msg. The bencoding is
 * parsed by core/bencode with at most KRPC_MAX_TOKENS tokens (so the only allocation is a bounded token array, freed
 * before returning); fixed-size fields (ids, info-hash, transaction id, token) are copied into the message, the
 * variable ones (nodes, nodes6, values, error text) point into the datagram, which must outlive the message.
 *   - the top level must be a dictionary with `t` (a string of 1..KRPC_MAX_TID bytes) and `y` ("q", "r" or "e");
 *   - a query has `q` (a string) and `a` (a dictionary) with a 20-byte `id`; ping needs nothing else; find_node a
 *     20-byte `target`; get_peers a 20-byte `info_hash`; announce_peer `info_hash`, a `token` of 1..KRPC_MAX_TOKEN
 *     bytes and a `port` in 1..65535 unless `implied_port` is 1 (`implied_port` 0 or 1); `want` (BEP 32) is a list
 *     of strings of which "n4" and "n6" are understood; `ro` (BEP 43) is 0 or 1;
 *   - a response has `r` (a dictionary) with a 20-byte `id`; optional `nodes` (a multiple of 26 bytes), `nodes6` (of
 *     38), `token` (1..KRPC_MAX_TOKEN bytes), `values` (a list of 6-byte or 18-byte strings, at most
 *     KRPC_MAX_VALUES are kept, the rest counted in values_dropped);
 *   - an error has `e`, a list of an integer code and a string;
 *   - optional top-level `ip` (BEP 42: 6 or 18 bytes, our address as the sender sees it) and `v` (ignored);
 *   - any other key is ignored (BEP 5's forward compatibility), but a known key with a wrong type or size is an
 *     error.
 * Return codes: KRPC_OK; KRPC_EMALFORMED (not a KRPC message at all, or no usable transaction id: drop it);
 * KRPC_EPROTOCOL (a query or response with a usable `t` but a bad or missing field: a query deserves error 203);
 * KRPC_EMETHOD (a well-formed query of an unknown method: error 204). On the last two, msg->tid and msg->type are
 * set. msg->why names the problem (a static string) on every error.
 *
 * Encoding: the krpc_put_* functions write one message into buf[0..cap) with keys in canonical order and return its
 * length, or 0 when it does not fit (nothing useful is left in buf then). They never allocate. A version `v` of
 * "HK" followed by two bytes (KRPC_VERSION) is written in every message.
 *
 * Compact forms: a node is id(20) + IPv4(4) + port(2) = 26 bytes, or id(20) + IPv6(16) + port(2) = 38; a peer is
 * 6 or 18 bytes. krpc_compact_addr / krpc_parse_addr convert between them and hk_addr.
 */
#ifndef HEKATE_KRPC_H
#define HEKATE_KRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime.h"

#define KRPC_MAX_DATAGRAM 1500u
#define KRPC_MAX_TOKENS 160u        /* bencode tokens per datagram: 100 values plus the frame */
#define KRPC_MAX_TID 16u
#define KRPC_MAX_TOKEN 32u
#define KRPC_MAX_VALUES 100u
#define KRPC_NODE4 26u
#define KRPC_NODE6 38u
#define KRPC_VERSION "HK\x00\x01"

typedef enum krpc_type { KRPC_QUERY = 1, KRPC_RESPONSE, KRPC_ERROR } krpc_type;
typedef enum krpc_method {
    KRPC_NONE = 0,
    KRPC_PING,
    KRPC_FIND_NODE,
    KRPC_GET_PEERS,
    KRPC_ANNOUNCE_PEER,
    KRPC_UNKNOWN_METHOD,
} krpc_method;

enum { KRPC_OK = 0, KRPC_EMALFORMED = -1, KRPC_EPROTOCOL = -2, KRPC_EMETHOD = -3 };

/* BEP 5 error codes */
enum { KRPC_ERR_GENERIC = 201, KRPC_ERR_SERVER = 202, KRPC_ERR_PROTOCOL = 203, KRPC_ERR_METHOD = 204 };

#define KRPC_WANT_N4 1u
#define KRPC_WANT_N6 2u

typedef struct krpc_msg {
    krpc_type type;
    krpc_method method;                  /* queries */
    uint8_t tid[KRPC_MAX_TID];
    uint8_t tid_len;
    uint8_t id[20];                      /* queries and responses: the sender's node id */
    uint8_t target[20];                  /* find_node target, get_peers / announce_peer info_hash */
    uint8_t token[KRPC_MAX_TOKEN];       /* announce_peer query, get_peers response */
    uint8_t token_len;                   /* 0: none */
    uint16_t port;                       /* announce_peer */
    bool implied_port;
    bool read_only;                      /* BEP 43 `ro` */
    uint8_t want;                        /* KRPC_WANT_* bits; 0: not given */
    const uint8_t *nodes;                /* response: compact IPv4 nodes, nodes_len a multiple of 26 */
    size_t nodes_len;
    const uint8_t *nodes6;               /* response: compact IPv6 nodes, a multiple of 38 */
    size_t nodes6_len;
    const uint8_t *values[KRPC_MAX_VALUES]; /* response: compact peers, each values_len[i] (6 or 18) bytes */
    uint8_t values_len[KRPC_MAX_VALUES];
    uint16_t nvalues;
    uint32_t values_dropped;             /* values beyond KRPC_MAX_VALUES */
    int64_t err_code;                    /* error */
    const uint8_t *err_text;
    size_t err_text_len;
    bool has_ip;                         /* top-level `ip` (BEP 42) */
    hk_addr ip;
    const char *why;                     /* on an error return */
} krpc_msg;

/* Decodes data[0..len). KRPC_OK or a negative code (see the contract). */
int krpc_decode(const uint8_t *data, size_t len, krpc_msg *msg);

/* ---- Encoding ---- */
typedef struct krpc_query {
    krpc_method method;                  /* KRPC_PING .. KRPC_ANNOUNCE_PEER */
    const uint8_t *tid;
    uint8_t tid_len;                     /* 1..KRPC_MAX_TID */
    const uint8_t *id;                   /* our id, 20 bytes */
    const uint8_t *target;               /* find_node target / info_hash (20 bytes) */
    const uint8_t *token;                /* announce_peer */
    uint8_t token_len;
    uint16_t port;                       /* announce_peer */
    bool implied_port;
    uint8_t want;                        /* KRPC_WANT_* (0: no `want` key) */
} krpc_query;

typedef struct krpc_reply {
    const uint8_t *tid;
    uint8_t tid_len;
    const uint8_t *id;                   /* our id */
    const uint8_t *nodes;                /* compact, a multiple of 26 (NULL: none) */
    size_t nodes_len;
    const uint8_t *nodes6;               /* compact, a multiple of 38 (NULL: none) */
    size_t nodes6_len;
    const uint8_t *token;                /* NULL: none */
    uint8_t token_len;
    const uint8_t *values;               /* `nvalues` compact peers of `value_len` bytes each, back to back */
    uint16_t nvalues;
    uint8_t value_len;                   /* 6 or 18 */
    const hk_addr *ip;                   /* the querier's address as we see it (BEP 42), NULL: none */
} krpc_reply;

/* Each returns the length written, or 0 when the message does not fit in cap bytes or an argument is invalid. */
size_t krpc_put_query(uint8_t *buf, size_t cap, const krpc_query *q);
size_t krpc_put_reply(uint8_t *buf, size_t cap, const krpc_reply *r);
size_t krpc_put_error(uint8_t *buf, size_t cap, const uint8_t *tid, uint8_t tid_len, int code, const char *text);

/* Bytes a reply would take (the same arithmetic as krpc_put_reply, without writing). */
size_t krpc_reply_size(const krpc_reply *r);

/* ---- Compact addresses ---- */
/* Writes a 6-byte (family 4) or 18-byte (family 6) compact address; returns its length, 0 for another family. */
size_t krpc_compact_addr(const hk_addr *a, uint8_t *out);
/* Reads a compact address of 6 or 18 bytes; false for another length. */
bool krpc_parse_addr(const uint8_t *p, size_t len, hk_addr *out);
/* The method's name ("ping", ...), "?" for others. */
const char *krpc_method_name(krpc_method m);

#endif
