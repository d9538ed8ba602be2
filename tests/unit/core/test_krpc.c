/* Unit tests for core/krpc: decoding of the four queries, responses and errors (BEP 5, BEP 32 fields), the strict
 * refusals (wrong sizes and types, unknown methods, missing transaction ids), encode/decode round trips, canonical
 * key order, buffers too small, and compact addresses. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "bencode.h"
#include "krpc.h"

#define ID20 "abcdefghij0123456789"
#define IH20 "mnopqrstuvwxyz123456"
#define ANN "1:q13:announce_peer1:t1:x1:y1:qe"

static int dec(const char *s, krpc_msg *m) { return krpc_decode((const uint8_t *)s, strlen(s), m); }

Test(krpc, decodes_a_ping_query)
{
    krpc_msg m;
    cr_assert_eq(dec("d1:ad2:id20:" ID20 "e1:q4:ping1:t2:aa1:y1:qe", &m), KRPC_OK);
    cr_assert_eq(m.type, KRPC_QUERY);
    cr_assert_eq(m.method, KRPC_PING);
    cr_assert_eq(m.tid_len, 2);
    cr_assert(memcmp(m.id, ID20, 20) == 0);
}

Test(krpc, decodes_find_node_get_peers_and_want)
{
    krpc_msg m;
    cr_assert_eq(dec("d1:ad2:id20:" ID20 "6:target20:" IH20 "4:wantl2:n42:n6ee1:q9:find_node1:t1:x1:y1:qe", &m),
                 KRPC_OK);
    cr_assert_eq(m.method, KRPC_FIND_NODE);
    cr_assert(memcmp(m.target, IH20, 20) == 0);
    cr_assert_eq(m.want, KRPC_WANT_N4 | KRPC_WANT_N6);
    cr_assert_eq(dec("d1:ad2:id20:" ID20 "9:info_hash20:" IH20 "e1:q9:get_peers1:t1:x1:y1:qe", &m), KRPC_OK);
    cr_assert_eq(m.method, KRPC_GET_PEERS);
    cr_assert(memcmp(m.target, IH20, 20) == 0);
    cr_assert_eq(m.want, 0);
}

Test(krpc, decodes_announce_peer_with_port_or_implied_port)
{
    krpc_msg m;
    cr_assert_eq(dec("d1:ad2:id20:" ID20 "9:info_hash20:" IH20 "4:porti6881e5:token4:abcde" ANN, &m), KRPC_OK);
    cr_assert_eq(m.method, KRPC_ANNOUNCE_PEER);
    cr_assert_eq(m.port, 6881);
    cr_assert_not(m.implied_port);
    cr_assert_eq(m.token_len, 4);
    cr_assert_eq(dec("d1:ad2:id20:" ID20 "12:implied_porti1e9:info_hash20:" IH20 "5:token4:abcde" ANN, &m), KRPC_OK);
    cr_assert(m.implied_port);
    cr_assert_eq(dec("d1:ad2:id20:" ID20 "9:info_hash20:" IH20 "5:token4:abcde" ANN, &m),
                 KRPC_EPROTOCOL, "no port and no implied_port");
    cr_assert_eq(dec("d1:ad2:id20:" ID20 "9:info_hash20:" IH20 "4:porti70000e5:token4:abcde" ANN, &m),
                 KRPC_EPROTOCOL);
    cr_assert_eq(dec("d1:ad2:id20:" ID20 "9:info_hash20:" IH20 "4:porti1e5:token0:e" ANN, &m),
                 KRPC_EPROTOCOL, "an empty token");
}

Test(krpc, refuses_bad_fields_with_the_right_code)
{
    krpc_msg m;
    cr_assert_eq(dec("d1:ad2:id19:" "abcdefghij012345678" "e1:q4:ping1:t1:x1:y1:qe", &m), KRPC_EPROTOCOL, "19-byte id");
    cr_assert_eq(m.tid_len, 1, "the transaction id is kept for the error reply");
    cr_assert_eq(dec("d1:ad2:id20:" ID20 "e1:q4:vote1:t1:x1:y1:qe", &m), KRPC_EMETHOD);
    cr_assert_eq(dec("d1:ad2:id20:" ID20 "e1:q4:ping1:y1:qe", &m), KRPC_EMALFORMED, "no t");
    cr_assert_eq(dec("d1:ad2:id20:" ID20 "e1:q4:ping1:t0:1:y1:qe", &m), KRPC_EMALFORMED, "empty t");
    cr_assert_eq(dec("d1:ad2:id20:" ID20 "e1:q4:ping1:t1:x1:y1:ze", &m), KRPC_EMALFORMED, "y is z");
    cr_assert_eq(dec("d1:ad2:id20:" ID20 "e1:q4:ping1:t1:x1:t1:x1:y1:qe", &m), KRPC_EMALFORMED, "duplicate key");
    cr_assert_eq(dec("l1:ae", &m), KRPC_EMALFORMED);
    cr_assert_eq(dec("d1:ad2:id20:" ID20 "e1:q4:ping1:t1:x1:y1:qeXX", &m), KRPC_EMALFORMED, "trailing bytes");
    cr_assert_eq(dec("d1:ad2:id20:" ID20 "6:target5:shorte1:q9:find_node1:t1:x1:y1:qe", &m), KRPC_EPROTOCOL);
    cr_assert_eq(dec("d1:ad2:id20:" ID20 "2:roi2ee1:q4:ping1:t1:x1:y1:qe", &m), KRPC_EPROTOCOL);
    cr_assert_eq(dec("d1:ad2:id20:" ID20 "4:wantli1eee1:q4:ping1:t1:x1:y1:qe", &m), KRPC_EPROTOCOL);
}

Test(krpc, decodes_responses_with_nodes_values_and_ip)
{
    char node[27] = ID20 "\x7f\x00\x00\x01\x1a\xe1";
    char buf[512];
    int n = snprintf(buf, sizeof buf, "d2:ip6:");
    memcpy(buf + n, "\x0a\x00\x00\x02\x00\x50", 6);
    n += 6;
    n += snprintf(buf + n, sizeof buf - n, "1:rd2:id20:%s5:nodes26:", ID20);
    memcpy(buf + n, node, 26);
    n += 26;
    n += snprintf(buf + n, sizeof buf - n, "5:token2:tk6:valuesl6:ABCDEF6:GHIJKLee1:t1:x1:y1:re");
    krpc_msg m;
    cr_assert_eq(krpc_decode((const uint8_t *)buf, (size_t)n, &m), KRPC_OK, "%s", m.why);
    cr_assert_eq(m.type, KRPC_RESPONSE);
    cr_assert_eq(m.nodes_len, 26);
    cr_assert_eq(m.nvalues, 2);
    cr_assert(memcmp(m.values[1], "GHIJKL", 6) == 0);
    cr_assert(m.has_ip);
    cr_assert_eq(m.ip.family, 4);
    cr_assert_eq(m.ip.port, 80);
    cr_assert_eq(m.ip.ip[0], 10);
    cr_assert_eq(dec("d1:rd2:id20:" ID20 "5:nodes3:abce1:t1:x1:y1:re", &m), KRPC_EPROTOCOL, "nodes not of 26");
    cr_assert_eq(dec("d1:rd2:id20:" ID20 "6:valuesl5:ABCDEee1:t1:x1:y1:re", &m), KRPC_EPROTOCOL, "5-byte value");
}

Test(krpc, keeps_at_most_max_values)
{
    char buf[KRPC_MAX_DATAGRAM];
    int n = snprintf(buf, sizeof buf, "d1:rd2:id20:" ID20 "6:valuesl");
    for (int i = 0; i < 120; i++)
        n += snprintf(buf + n, sizeof buf - n, "6:ABCDEF");
    n += snprintf(buf + n, sizeof buf - n, "ee1:t1:x1:y1:re");
    krpc_msg m;
    int rc = krpc_decode((const uint8_t *)buf, (size_t)n, &m);
    /* 120 values need more tokens than KRPC_MAX_TOKENS allows only if > 160; they fit */
    cr_assert_eq(rc, KRPC_OK, "%s", m.why);
    cr_assert_eq(m.nvalues, KRPC_MAX_VALUES);
    cr_assert_eq(m.values_dropped, 20);
}

Test(krpc, decodes_errors)
{
    krpc_msg m;
    cr_assert_eq(dec("d1:eli203e14:Protocol Errore1:t1:x1:y1:ee", &m), KRPC_OK);
    cr_assert_eq(m.type, KRPC_ERROR);
    cr_assert_eq(m.err_code, 203);
    cr_assert_eq(m.err_text_len, 14);
    cr_assert_eq(dec("d1:eli203ee1:t1:x1:y1:ee", &m), KRPC_EPROTOCOL);
}

Test(krpc, queries_round_trip_in_canonical_order)
{
    static const krpc_method ms[] = { KRPC_PING, KRPC_FIND_NODE, KRPC_GET_PEERS, KRPC_ANNOUNCE_PEER };
    for (size_t i = 0; i < 4; i++) {
        krpc_query q = { .method = ms[i], .tid = (const uint8_t *)"ab", .tid_len = 2, .id = (const uint8_t *)ID20,
                         .target = (const uint8_t *)IH20, .token = (const uint8_t *)"tok", .token_len = 3,
                         .port = 51413, .implied_port = i == 3, .want = KRPC_WANT_N4 };
        uint8_t buf[512];
        size_t n = krpc_put_query(buf, sizeof buf, &q);
        cr_assert_gt(n, 0);
        ben_doc doc;
        ben_error err;
        cr_assert_eq(ben_decode(buf, n, 0, &doc, &err), 0, "%s", err.what);
        cr_assert(doc.canonical, "keys in sorted order");
        ben_doc_free(&doc);
        krpc_msg m;
        cr_assert_eq(krpc_decode(buf, n, &m), KRPC_OK, "%s", m.why);
        cr_assert_eq(m.method, ms[i]);
        cr_assert(memcmp(m.id, ID20, 20) == 0);
        if (ms[i] != KRPC_PING)
            cr_assert(memcmp(m.target, IH20, 20) == 0);
        if (ms[i] == KRPC_ANNOUNCE_PEER) {
            cr_assert_eq(m.port, 51413);
            cr_assert(m.implied_port);
            cr_assert_eq(m.token_len, 3);
        }
        cr_assert_eq(m.want, KRPC_WANT_N4);
        cr_assert_eq(krpc_put_query(buf, n - 1, &q), 0, "one byte short does not fit");
    }
}

Test(krpc, replies_and_errors_round_trip)
{
    uint8_t nodes[52], values[12] = "ABCDEFGHIJKL";
    memset(nodes, 7, sizeof nodes);
    hk_addr ip = { .family = 4, .ip = { 1, 2, 3, 4 }, .port = 999 };
    krpc_reply r = { .tid = (const uint8_t *)"z", .tid_len = 1, .id = (const uint8_t *)ID20, .nodes = nodes,
                     .nodes_len = 52, .token = (const uint8_t *)"12345678", .token_len = 8, .values = values,
                     .nvalues = 2, .value_len = 6, .ip = &ip };
    uint8_t buf[512];
    size_t n = krpc_put_reply(buf, sizeof buf, &r);
    cr_assert_gt(n, 0);
    cr_assert_eq(krpc_reply_size(&r), n);
    krpc_msg m;
    cr_assert_eq(krpc_decode(buf, n, &m), KRPC_OK, "%s", m.why);
    cr_assert_eq(m.nodes_len, 52);
    cr_assert_eq(m.nvalues, 2);
    cr_assert_eq(m.token_len, 8);
    cr_assert(m.has_ip);
    cr_assert_eq(m.ip.port, 999);
    cr_assert_eq(krpc_put_reply(buf, n - 1, &r), 0);
    r.nodes_len = 51;
    cr_assert_eq(krpc_put_reply(buf, sizeof buf, &r), 0, "nodes not a multiple of 26");
    n = krpc_put_error(buf, sizeof buf, (const uint8_t *)"z", 1, 204, "Method Unknown");
    cr_assert_eq(krpc_decode(buf, n, &m), KRPC_OK);
    cr_assert_eq(m.err_code, 204);
}

Test(krpc, compact_addresses)
{
    hk_addr a = { .family = 6, .ip = { 0x20, 0x01, [15] = 1 }, .port = 6881 }, b;
    uint8_t c[18];
    cr_assert_eq(krpc_compact_addr(&a, c), 18);
    cr_assert(krpc_parse_addr(c, 18, &b));
    cr_assert_eq(b.family, 6);
    cr_assert_eq(b.port, 6881);
    cr_assert(memcmp(a.ip, b.ip, 16) == 0);
    cr_assert_not(krpc_parse_addr(c, 7, &b));
    hk_addr z = { .family = 9 };
    cr_assert_eq(krpc_compact_addr(&z, c), 0);
}
