/* Unit tests for core/seeder through the fake runtime: configuration, torrent management, handshake paths, message
 * legality, request validation and admission (reject/drop, cap, duplicates, cancel), ut_metadata, bounded memory
 * under a request flood, and determinism. Choking, timeouts and serving have their own files. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bencode.h"
#include "extension.h"
#include "metainfo.h"
#include "seeder_harness.h"
#include "seeder_internal.h" /* the torrent table's records, for a memory bound */
#include "torrent_builder.h"
#include "wire.h"

static harness h;

static void setup(void)
{
    h_init(&h, NULL);
    cr_assert_eq(h_add_single(&h, 32768, 100000), HK_ADD_OK); /* 4 pieces: 3 x 32768 + 1696 */
}

static void teardown(void)
{
    h_free(&h);
}

TestSuite(seeder, .init = setup, .fini = teardown);

/* The suite's seeder again, with configuration c, serving the same single-file torrent. */
static void restart(const hk_config *c)
{
    h_free(&h);
    h_init(&h, c);
    h_add_single(&h, 32768, 100000);
}

/* ---- configuration ---- */

Test(config, defaults_are_valid_and_documented_values)
{
    hk_config c;
    hk_config_defaults(&c);
    cr_assert_null(hk_config_check(&c));
    cr_assert_eq(c.max_unchoked, 50);
    cr_assert_eq(c.max_peers, 500);
    cr_assert_eq(c.credit, 1u << 20);
    cr_assert_eq(c.slice, HK_SECONDS(300));
    cr_assert_eq(c.handshake_timeout, HK_SECONDS(10));
    cr_assert_eq(c.idle_timeout, HK_SECONDS(120));
    cr_assert_eq(c.unchoked_idle_timeout, HK_SECONDS(30));
    cr_assert_eq(c.send_stall_timeout, HK_SECONDS(60));
    cr_assert_eq(c.reqq, 256);
    cr_assert_eq(c.max_block, 16384);
}

/* The defaults with one field set to a bad value are refused, and the reason names the field. */
#define ASSERT_NAMED(field, value)                                                                                     \
    do {                                                                                                               \
        hk_config_defaults(&c);                                                                                        \
        c.field = value;                                                                                               \
        const char *why = hk_config_check(&c);                                                                         \
        cr_assert(why && strstr(why, #field), "%s = %s: %s", #field, #value, why ? why : "accepted");                  \
    } while (0)

Test(config, bad_values_are_named)
{
    hk_config c;
    ASSERT_NAMED(max_unchoked, 0);
    ASSERT_NAMED(max_peers, 10);
    ASSERT_NAMED(credit, 1000);
    ASSERT_NAMED(max_block, 200000);
    ASSERT_NAMED(idle_timeout, 0);
    ASSERT_NAMED(reqq, 0);
    fake_runtime *fr = fr_new(1);
    hk_seeder_runtime rt = fr_runtime(fr);
    cr_assert_null(hk_seeder_new(&c, &rt), "an invalid configuration creates no seeder");
    fr_free(fr);
    cr_assert_str_eq(hk_timeout_name(HK_TIMEOUT_SEND_STALL), "send-stall");
}

Test(seeder, peer_id_from_the_runtime_randomness)
{
    const uint8_t *id = hk_seeder_peer_id(h.s);
    cr_assert_eq(memcmp(id, "-HK0100-", 8), 0);
    for (int i = 8; i < 20; i++)
        cr_assert(id[i] >= '0' && id[i] <= 'z');
    hk_config c;
    hk_config_defaults(&c);
    memcpy(c.peer_id, "-XX0000-abcdefghijkl", 20);
    fake_runtime *fr = fr_new(1);
    hk_seeder_runtime rt = fr_runtime(fr);
    hk_seeder *s = hk_seeder_new(&c, &rt);
    cr_assert_eq(memcmp(hk_seeder_peer_id(s), "-XX0000-abcdefghijkl", 20), 0);
    hk_seeder_free(s);
    fr_free(fr);
}

/* ---- torrents ---- */

Test(seeder, add_duplicate_invalid)
{
    uint8_t ih[20];
    char err[256];
    cr_assert_eq(hk_seeder_add_torrent(h.s, h.torrent, h.torrent_len, 99, ih, err, sizeof err), HK_ADD_DUPLICATE);
    cr_assert_eq(memcmp(ih, h.ih, 20), 0);
    cr_assert_not_null(strstr(err, "already served"));
    const uint8_t junk[] = "d4:infoi3ee";
    cr_assert_eq(hk_seeder_add_torrent(h.s, junk, sizeof junk - 1, 99, ih, err, sizeof err), HK_ADD_INVALID);
    cr_assert_neq(err[0], 0, "the reason is given");
    hk_stats st = h_stats(&h);
    cr_assert_eq(st.torrents, 1);
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &ts));
    cr_assert_eq(ts.pieces, 4);
    cr_assert_eq(ts.total_length, 100000);
    cr_assert_eq(ts.storage, H_STORAGE);
    cr_assert_not(ts.failed);
    cr_assert_lt(ts.memory_bytes, 200, "compact per-torrent state");
}

Test(seeder, remove_torrent_disconnects_its_peers)
{
    size_t len;
    uint8_t *other = tb_single("other", 16384, 50000, &len);
    uint8_t ih2[20];
    cr_assert_eq(hk_seeder_add_torrent(h.s, other, len, 8, ih2, NULL, 0), HK_ADD_OK);
    free(other);
    h_connect(&h, 0, true, false);
    h_connect(&h, 1, true, false);
    h_accept(&h, 2, 1 << 20);
    h_handshake(&h, 2, ih2, true, false);
    cr_assert_eq(h_stats(&h).peers, 3);
    cr_assert(hk_seeder_remove_torrent(h.s, h.ih));
    cr_assert(fr_closed(h.fr, 0));
    cr_assert(fr_closed(h.fr, 1));
    cr_assert_not(fr_closed(h.fr, 2), "peers of other torrents stay");
    cr_assert_eq(h_stats(&h).peers, 1);
    cr_assert_eq(h_stats(&h).torrents, 1);
    cr_assert_not(hk_seeder_remove_torrent(h.s, h.ih), "unknown now");
    /* a new connection for the removed torrent is refused */
    h_accept(&h, 3, 1 << 20);
    h_handshake(&h, 3, NULL, true, false);
    cr_assert(fr_closed(h.fr, 3));
    cr_assert_eq(fr_count_conn(h.fr, FR_SEND, 3), 0);
    cr_assert_geq(fr_find_log(h.fr, "torrent removed", 0), 0);
}

Test(seeder, storage_failed_drops_peers_and_refuses_new_ones)
{
    h_connect(&h, 0, true, false);
    h_simple(&h, 0, WIRE_INTERESTED);
    cr_assert_eq(h_stats(&h).unchoked, 1);
    hk_seeder_storage_failed(h.s, H_STORAGE, "file truncated");
    cr_assert(fr_closed(h.fr, 0));
    cr_assert_eq(h_stats(&h).peers, 0);
    cr_assert_eq(h_stats(&h).unchoked, 0, "the slot is given back");
    hk_torrent_stats ts;
    cr_assert(hk_seeder_torrent_stats(h.s, h.ih, &ts));
    cr_assert(ts.failed);
    h_accept(&h, 1, 1 << 20);
    h_handshake(&h, 1, NULL, true, false);
    cr_assert(fr_closed(h.fr, 1));
    cr_assert_eq(fr_count_conn(h.fr, FR_SEND, 1), 0);
    /* remove + add brings it back */
    cr_assert(hk_seeder_remove_torrent(h.s, h.ih));
    cr_assert_eq(hk_seeder_add_torrent(h.s, h.torrent, h.torrent_len, H_STORAGE, NULL, NULL, 0), HK_ADD_OK);
    h_accept(&h, 2, 1 << 20);
    h_handshake(&h, 2, NULL, true, false);
    cr_assert_not(fr_closed(h.fr, 2));
}

/* ---- handshake ---- */

Test(seeder, handshake_fast_and_extensions)
{
    h_connect(&h, 0, true, true);
    fr_msgs m = h_msgs(&h, 0);
    cr_assert_not(m.error);
    cr_assert_eq(m.n, 3);
    cr_assert_eq(m.m[0].type, WIRE_HANDSHAKE);
    cr_assert_eq(memcmp(m.m[0].u.handshake.info_hash, h.ih, 20), 0);
    cr_assert(wire_reserved_has_fast(m.m[0].u.handshake.reserved));
    cr_assert(wire_reserved_has_extended(m.m[0].u.handshake.reserved));
    cr_assert_eq(memcmp(m.m[0].u.handshake.peer_id, hk_seeder_peer_id(h.s), 20), 0);
    cr_assert_eq(m.m[1].type, WIRE_HAVE_ALL);
    cr_assert_eq(m.m[2].type, WIRE_EXTENDED);
    cr_assert_eq(m.m[2].u.ext.id, 0);
    ext_handshake eh;
    ext_error err;
    cr_assert_eq(ext_handshake_decode(m.m[2].u.ext.payload, m.m[2].u.ext.len, &eh, &err), 0, "%s", err.what);
    mi_torrent *mi;
    cr_assert_eq(mi_parse(h.torrent, h.torrent_len, &mi, NULL), 0);
    cr_assert_eq(eh.m[EXT_UT_METADATA], 1);
    cr_assert_eq(eh.metadata_size, mi->info_end - mi->info_start);
    cr_assert_eq(eh.reqq, 256);
    cr_assert(eh.has_upload_only && eh.upload_only);
    cr_assert_gt(eh.v_len, 0);
    cr_assert_eq(eh.port, 0, "no listen port configured: `p` omitted");
    mi_free(mi);
    fr_msgs_free(&m);
    cr_assert_eq(h_stats(&h).peers, 1);
    cr_assert_eq(fr_count(h.fr, FR_SEND), 1, "the whole reply in one send");
}

Test(seeder, handshake_without_fast_sends_a_full_bitfield)
{
    h_free(&h);
    h_init(&h, NULL);
    h_add_single(&h, 16384, 16384 * 10 + 5); /* 11 pieces: 2 bytes, 5 spare bits */
    h_connect(&h, 0, false, false);
    fr_msgs m = h_msgs(&h, 0);
    cr_assert_eq(m.n, 2);
    cr_assert_eq(m.m[1].type, WIRE_BITFIELD);
    cr_assert_eq(m.m[1].u.bitfield.len, 2);
    cr_assert_eq(m.m[1].u.bitfield.bits[0], 0xFF);
    cr_assert_eq(m.m[1].u.bitfield.bits[1], 0xE0, "11 pieces set, spare bits zero");
    cr_assert(wire_reserved_has_fast(m.m[0].u.handshake.reserved), "we always offer fast");
    fr_msgs_free(&m);
}

Test(seeder, listen_port_is_advertised)
{
    hk_config c;
    hk_config_defaults(&c);
    c.listen_port = 6881;
    restart(&c);
    h_connect(&h, 0, false, true);
    fr_msgs m = h_msgs(&h, 0);
    cr_assert_eq(m.m[2].type, WIRE_EXTENDED);
    ext_handshake eh;
    cr_assert_eq(ext_handshake_decode(m.m[2].u.ext.payload, m.m[2].u.ext.len, &eh, NULL), 0);
    cr_assert_eq(eh.port, 6881);
    fr_msgs_free(&m);
}

/* BEP 5: with a DHT port the handshake carries the DHT bit, and a peer that sets it gets a PORT message. */
Test(seeder, dht_bit_and_port_message)
{
    hk_config c;
    hk_config_defaults(&c);
    c.dht_port = 7001;
    restart(&c);
    h_accept(&h, 0, 1 << 20);
    uint8_t hs[WIRE_HANDSHAKE_LEN];
    uint8_t res[8] = {0}, id[20] = {0};
    wire_reserved_set_fast(res);
    wire_reserved_set_dht(res);
    wire_encode_handshake(hs, res, h.ih, id);
    h_recv(&h, 0, hs, sizeof hs);
    fr_msgs m = h_msgs(&h, 0);
    cr_assert(wire_reserved_has_dht(m.m[0].u.handshake.reserved), "our handshake sets the DHT bit");
    cr_assert_eq(fr_msgs_count(&m, WIRE_PORT), 1);
    for (size_t i = 0; i < m.n; i++)
        if (m.m[i].type == WIRE_PORT)
            cr_assert_eq(m.m[i].u.port, 7001);
    fr_msgs_free(&m);
    /* a peer without the bit gets no PORT; without a DHT port the bit is not set */
    h_connect(&h, 1, true, false);
    m = h_msgs(&h, 1);
    cr_assert_eq(fr_msgs_count(&m, WIRE_PORT), 0);
    fr_msgs_free(&m);
    restart(NULL);
    h_connect(&h, 0, true, false);
    m = h_msgs(&h, 0);
    cr_assert_not(wire_reserved_has_dht(m.m[0].u.handshake.reserved));
    fr_msgs_free(&m);
}

Test(seeder, reply_goes_out_after_48_bytes_before_the_peer_id)
{
    h_accept(&h, 0, 1 << 20);
    uint8_t hs[WIRE_HANDSHAKE_LEN];
    uint8_t res[8] = {0}, id[20] = {0};
    wire_reserved_set_fast(res);
    wire_encode_handshake(hs, res, h.ih, id);
    h_recv(&h, 0, hs, 47);
    cr_assert_eq(fr_count_conn(h.fr, FR_SEND, 0), 0);
    h_recv(&h, 0, hs + 47, 1);
    cr_assert_eq(fr_count_conn(h.fr, FR_SEND, 0), 1, "answered at 48 bytes");
    cr_assert_lt(fr_find_log(h.fr, "handshake complete", 0), 0);
    h_recv(&h, 0, hs + 48, 20);
    cr_assert_geq(fr_find_log(h.fr, "handshake complete", 0), 0);
    cr_assert_eq(h_count(&h, 0, WIRE_HAVE_ALL), 1);
}

Test(seeder, handshake_fed_one_byte_at_a_time)
{
    h_accept(&h, 0, 1 << 20);
    uint8_t hs[WIRE_HANDSHAKE_LEN];
    uint8_t res[8] = {0}, id[20] = {0};
    wire_reserved_set_fast(res);
    wire_reserved_set_extended(res);
    wire_encode_handshake(hs, res, h.ih, id);
    for (size_t i = 0; i < sizeof hs; i++)
        h_recv(&h, 0, hs + i, 1);
    uint8_t in[WIRE_SIMPLE_LEN];
    wire_encode_simple(in, WIRE_INTERESTED);
    for (size_t i = 0; i < sizeof in; i++)
        h_recv(&h, 0, in + i, 1);
    cr_assert_eq(h_count(&h, 0, WIRE_HAVE_ALL), 1);
    cr_assert_eq(h_count(&h, 0, WIRE_EXTENDED), 1);
    cr_assert_eq(h_count(&h, 0, WIRE_UNCHOKE), 1);
}

Test(seeder, unknown_info_hash_is_closed)
{
    uint8_t other[20];
    memset(other, 0xAB, 20);
    h_accept(&h, 0, 1 << 20);
    h_handshake(&h, 0, other, true, true);
    cr_assert(fr_closed(h.fr, 0));
    cr_assert_eq(fr_count_conn(h.fr, FR_SEND, 0), 0, "nothing sent to a stranger");
    cr_assert_eq(h_stats(&h).peers, 0);
    cr_assert_geq(fr_find_log(h.fr, "unknown info-hash abababab", 0), 0);
}

/* Peer c was closed for one protocol error. */
static void assert_protocol_error(int c)
{
    cr_assert(fr_closed(h.fr, c));
    cr_assert_eq(h_stats(&h).protocol_errors, 1);
}

Test(seeder, bad_protocol_string_is_closed)
{
    h_accept(&h, 0, 1 << 20);
    const char bad[] = "\x13" "BitTorrent protocoX";
    h_recv(&h, 0, bad, 20);
    assert_protocol_error(0);
    h_accept(&h, 1, 1 << 20);
    const char http[] = "GET / HTTP/1.1\r\n";
    h_recv(&h, 1, http, sizeof http - 1);
    cr_assert(fr_closed(h.fr, 1));
    cr_assert_eq(h_stats(&h).protocol_errors, 2);
}

Test(seeder, seed_with_full_bitfield_is_closed)
{
    h_connect(&h, 0, false, false);
    uint8_t bf[WIRE_BITFIELD_HEADER_LEN + 1];
    wire_encode_bitfield_header(bf, 1);
    bf[5] = 0xF0; /* 4 pieces */
    h_recv(&h, 0, bf, sizeof bf);
    cr_assert(fr_closed(h.fr, 0));
    cr_assert_eq(h_stats(&h).protocol_errors, 0, "a seed is not an error");
    cr_assert_geq(fr_find_log(h.fr, "peer is a seed", 0), 0);
}

Test(seeder, partial_bitfield_stays)
{
    h_connect(&h, 0, false, false);
    uint8_t bf[WIRE_BITFIELD_HEADER_LEN + 1];
    wire_encode_bitfield_header(bf, 1);
    bf[5] = 0xE0;
    h_recv(&h, 0, bf, sizeof bf);
    cr_assert_not(fr_closed(h.fr, 0));
}

Test(seeder, seed_with_have_all_is_closed)
{
    h_connect(&h, 0, true, false);
    h_simple(&h, 0, WIRE_HAVE_ALL);
    cr_assert(fr_closed(h.fr, 0));
    cr_assert_eq(h_stats(&h).protocol_errors, 0);
}

Test(seeder, have_all_without_fast_is_a_protocol_error)
{
    h_connect(&h, 0, false, false);
    h_simple(&h, 0, WIRE_HAVE_ALL);
    assert_protocol_error(0);
}

Test(seeder, upload_only_peer_is_closed)
{
    h_connect(&h, 0, true, true);
    const char eh[] = "d1:md11:ut_metadatai3ee11:upload_onlyi1ee";
    h_extended(&h, 0, 0, eh, sizeof eh - 1);
    cr_assert(fr_closed(h.fr, 0));
    cr_assert_geq(fr_find_log(h.fr, "upload-only", 0), 0);
}

Test(seeder, extended_message_without_the_bit_is_an_error)
{
    h_connect(&h, 0, true, false);
    const char eh[] = "d1:md11:ut_metadatai3eee";
    h_extended(&h, 0, 0, eh, sizeof eh - 1);
    assert_protocol_error(0);
}

Test(seeder, malformed_extension_handshake_is_an_error)
{
    h_connect(&h, 0, true, true);
    const char eh[] = "d1:md11:ut_metadatai3ee"; /* truncated */
    h_extended(&h, 0, 0, eh, sizeof eh - 1);
    assert_protocol_error(0);
}

Test(seeder, piece_from_a_peer_is_an_error)
{
    h_connect(&h, 0, true, false);
    uint8_t pc[WIRE_PIECE_HEADER_LEN + 4] = {0};
    wire_encode_piece_header(pc, 0, 0, 4);
    h_recv(&h, 0, pc, sizeof pc);
    assert_protocol_error(0);
}

Test(seeder, libtorrent_order_extension_handshake_before_have_none)
{
    h_connect(&h, 0, true, true);
    const char eh[] = "d1:md11:ut_metadatai2ee1:v18:libtorrent/2.0.8.0e";
    h_extended(&h, 0, 0, eh, sizeof eh - 1);
    h_simple(&h, 0, WIRE_HAVE_NONE);
    h_simple(&h, 0, WIRE_INTERESTED);
    cr_assert_not(fr_closed(h.fr, 0));
    cr_assert_eq(h_count(&h, 0, WIRE_UNCHOKE), 1);
}

Test(seeder, aria2_order_bitfield_after_interested)
{
    h_connect(&h, 0, false, true);
    h_simple(&h, 0, WIRE_INTERESTED);
    uint8_t bf[WIRE_BITFIELD_HEADER_LEN + 1];
    wire_encode_bitfield_header(bf, 1);
    bf[5] = 0x00;
    h_recv(&h, 0, bf, sizeof bf);
    cr_assert_not(fr_closed(h.fr, 0));
    bf[5] = 0xF0; /* later it has everything: a seed now */
    h_recv(&h, 0, bf, sizeof bf);
    cr_assert(fr_closed(h.fr, 0));
    cr_assert_eq(h_stats(&h).protocol_errors, 0);
}

Test(seeder, harmless_messages_are_tolerated)
{
    h_connect(&h, 0, true, true);
    h_simple(&h, 0, WIRE_HAVE_NONE);
    uint8_t ka[4] = {0};
    h_recv(&h, 0, ka, 4);
    h_simple(&h, 0, WIRE_CHOKE);
    h_simple(&h, 0, WIRE_UNCHOKE);
    uint8_t have[WIRE_INDEX_MSG_LEN];
    wire_encode_index(have, WIRE_HAVE, 2);
    h_recv(&h, 0, have, sizeof have);
    uint8_t port[WIRE_PORT_LEN];
    wire_encode_port(port, 6881);
    h_recv(&h, 0, port, sizeof port);
    uint8_t unknown[6] = {0, 0, 0, 2, 30, 1}; /* id 30, one byte */
    h_recv(&h, 0, unknown, sizeof unknown);
    h_extended(&h, 0, 77, "xyz", 3); /* an extension we do not know */
    cr_assert_not(fr_closed(h.fr, 0));
    cr_assert_eq(h_stats(&h).protocol_errors, 0);
}

/* ---- requests ---- */

static void unchoked_peer(int c, bool fast, size_t room)
{
    h_accept(&h, c, room);
    h_handshake(&h, c, NULL, fast, false);
    h_simple(&h, c, WIRE_INTERESTED);
    cr_assert_eq(h_count(&h, c, WIRE_UNCHOKE), 1);
}

static void expect_protocol_close(uint32_t index, uint32_t begin, uint32_t length)
{
    unchoked_peer(0, true, 1 << 20);
    h_block(&h, 0, WIRE_REQUEST, index, begin, length);
    cr_assert(fr_closed(h.fr, 0), "request %u/%u/%u", index, begin, length);
    cr_assert_eq(h_stats(&h).protocol_errors, 1);
    cr_assert_eq(h_stats(&h).blocks_sent, 0);
}

Test(seeder, request_index_out_of_range) { expect_protocol_close(4, 0, 16384); }
Test(seeder, request_zero_length) { expect_protocol_close(0, 0, 0); }
Test(seeder, request_too_long) { expect_protocol_close(0, 0, 16385); }
Test(seeder, request_past_piece_end) { expect_protocol_close(0, 16385, 16384); }
Test(seeder, request_past_short_last_piece) { expect_protocol_close(3, 0, 1697); }
Test(seeder, request_begin_overflow) { expect_protocol_close(0, UINT32_MAX - 100, 16384); }

Test(seeder, valid_edge_requests_are_served)
{
    unchoked_peer(0, true, 1 << 20);
    h_block(&h, 0, WIRE_REQUEST, 3, 0, 1696);
    h_block(&h, 0, WIRE_REQUEST, 0, 16384, 16384);
    h_block(&h, 0, WIRE_REQUEST, 2, 32767, 1);
    cr_assert_not(fr_closed(h.fr, 0));
    fr_msgs m = h_msgs(&h, 0);
    cr_assert_eq(fr_msgs_count(&m, WIRE_PIECE), 3);
    for (size_t i = 0; i < m.n; i++) {
        if (m.m[i].type != WIRE_PIECE)
            continue;
        uint64_t pos = (uint64_t)m.m[i].u.piece.index * 32768 + m.m[i].u.piece.begin;
        for (uint32_t b = 0; b < m.m[i].u.piece.len; b++)
            cr_assert_eq(m.m[i].u.piece.data[b], fr_pattern_byte(H_STORAGE, 0, pos + b));
    }
    fr_msgs_free(&m);
    hk_torrent_stats ts;
    hk_seeder_torrent_stats(h.s, h.ih, &ts);
    cr_assert_eq(ts.uploaded, 1696 + 16384 + 1);
    cr_assert_eq(h_stats(&h).bytes_sent, 1696 + 16384 + 1);
}

Test(seeder, request_while_choked_is_rejected_with_fast)
{
    h_connect(&h, 0, true, false);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    cr_assert_not(fr_closed(h.fr, 0));
    fr_msgs m = h_msgs(&h, 0);
    cr_assert_eq(fr_msgs_count(&m, WIRE_REJECT), 1);
    cr_assert_eq(m.m[m.n - 1].u.block.index, 0);
    cr_assert_eq(m.m[m.n - 1].u.block.length, 16384);
    fr_msgs_free(&m);
    cr_assert_eq(h_stats(&h).requests_rejected, 1);
    cr_assert_eq(h_stats(&h).queued_requests, 0);
}

Test(seeder, request_while_choked_is_dropped_without_fast)
{
    h_connect(&h, 0, false, false);
    size_t sends = fr_count(h.fr, FR_SEND);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    cr_assert_not(fr_closed(h.fr, 0));
    cr_assert_eq(fr_count(h.fr, FR_SEND), sends, "dropped silently");
    cr_assert_eq(h_stats(&h).requests_rejected, 1);
    cr_assert_eq(h_stats(&h).queued_requests, 0);
}

Test(seeder, over_the_queue_cap)
{
    hk_config c;
    hk_config_defaults(&c);
    c.reqq = 3;
    restart(&c);
    unchoked_peer(0, true, 0); /* no room: nothing leaves, the queue fills */
    unchoked_peer(1, false, 0);
    for (int c2 = 0; c2 < 2; c2++)
        for (uint32_t i = 0; i < 5; i++)
            h_block(&h, c2, WIRE_REQUEST, i % 3, (i / 3) * 16384, 16384);
    cr_assert_eq(h_stats(&h).queued_requests, 8);
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 2, "fast: the two over the cap are rejected");
    cr_assert_eq(h_count(&h, 1, WIRE_REJECT), 0, "no fast: it cannot be told, so all five are queued (issue 9)");
    cr_assert_eq(h_count(&h, 1, WIRE_CHOKE), 0);
    cr_assert_eq(h_stats(&h).requests_rejected, 2);
}

Test(seeder, duplicate_requests)
{
    unchoked_peer(0, true, 0);
    unchoked_peer(1, false, 0);
    for (int c2 = 0; c2 < 2; c2++) {
        h_block(&h, c2, WIRE_REQUEST, 1, 0, 16384);
        h_block(&h, c2, WIRE_REQUEST, 1, 0, 16384);
    }
    cr_assert_eq(h_stats(&h).queued_requests, 2, "one each: a duplicate is not queued twice");
    cr_assert_eq(h_count(&h, 0, WIRE_REJECT), 1, "fast: the duplicate gets its one answer, a reject");
    cr_assert_eq(h_count(&h, 1, WIRE_REJECT), 0);
    h_room(&h, 0, 1 << 20);
    h_room(&h, 1, 1 << 20);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1);
    cr_assert_eq(h_count(&h, 1, WIRE_PIECE), 1);
}

Test(seeder, cancel_removes_a_queued_request)
{
    unchoked_peer(0, true, 0);
    unchoked_peer(1, false, 0);
    for (int c2 = 0; c2 < 2; c2++) {
        h_block(&h, c2, WIRE_REQUEST, 0, 0, 16384);
        h_block(&h, c2, WIRE_REQUEST, 0, 16384, 16384);
        h_block(&h, c2, WIRE_CANCEL, 0, 0, 16384);
        h_block(&h, c2, WIRE_CANCEL, 2, 0, 16384); /* never requested: ignored */
    }
    cr_assert_eq(h_stats(&h).queued_requests, 2);
    fr_msgs m = h_msgs(&h, 0);
    cr_assert_eq(fr_msgs_count(&m, WIRE_REJECT), 1, "BEP 6: a cancelled request is answered by a reject");
    cr_assert_eq(m.m[m.n - 1].type, WIRE_REJECT);
    cr_assert_eq(m.m[m.n - 1].u.block.begin, 0);
    fr_msgs_free(&m);
    cr_assert_eq(h_count(&h, 1, WIRE_REJECT), 0);
    h_room(&h, 0, 1 << 20);
    h_room(&h, 1, 1 << 20);
    m = h_msgs(&h, 0);
    cr_assert_eq(fr_msgs_count(&m, WIRE_PIECE), 1);
    cr_assert_eq(m.m[m.n - 1].u.piece.begin, 16384, "only the one not cancelled");
    fr_msgs_free(&m);
    cr_assert_eq(h_count(&h, 1, WIRE_PIECE), 1);
    cr_assert_not(fr_closed(h.fr, 0));
}

/* ---- ut_metadata ---- */

static void metadata_peer(int c, size_t room)
{
    h_accept(&h, c, room);
    h_handshake(&h, c, NULL, true, true);
    const char eh[] = "d1:md11:ut_metadatai3eee";
    h_extended(&h, c, 0, eh, sizeof eh - 1);
}

static void md_request(int c, uint32_t piece)
{
    uint8_t buf[EXT_UT_METADATA_MSG_MAX];
    size_t n = ext_ut_metadata_encode_request(buf, sizeof buf, piece);
    h_extended(&h, c, 1, buf, n);
}

Test(seeder, ut_metadata_serves_the_info_dictionary)
{
    /* a bigger info dictionary: several metadata pieces */
    h_free(&h);
    h_init(&h, NULL);
    cr_assert_eq(h_add_single(&h, 16384, 16384ull * 2000), HK_ADD_OK); /* 2000 hashes: 40 KB of info */
    mi_torrent *mi;
    cr_assert_eq(mi_parse(h.torrent, h.torrent_len, &mi, NULL), 0);
    uint32_t info_len = (uint32_t)(mi->info_end - mi->info_start);
    cr_assert_eq(ext_ut_metadata_piece_count(info_len), 3);
    metadata_peer(0, 1 << 20);
    for (uint32_t piece = 0; piece < 3; piece++)
        md_request(0, piece);
    cr_assert_not(fr_closed(h.fr, 0));
    fr_msgs m = h_msgs(&h, 0);
    uint8_t *got = calloc(1, info_len);
    uint32_t pieces_seen = 0;
    for (size_t i = 3; i < m.n; i++) {
        cr_assert_eq(m.m[i].type, WIRE_EXTENDED);
        cr_assert_eq(m.m[i].u.ext.id, 3, "sent with the id the peer asked for");
        ext_ut_metadata_msg um;
        cr_assert_eq(ext_ut_metadata_decode(m.m[i].u.ext.payload, m.m[i].u.ext.len, info_len, &um, NULL), EXT_OK);
        cr_assert_eq(um.type, EXT_UT_METADATA_DATA);
        cr_assert_eq(um.total_size, info_len);
        memcpy(got + um.piece * 16384, um.data, um.data_len);
        pieces_seen++;
    }
    cr_assert_eq(pieces_seen, 3);
    cr_assert_eq(memcmp(got, h.torrent + mi->info_start, info_len), 0, "the exact info bytes");
    uint8_t ih[20];
    cr_assert(ih_sha1(got, info_len, ih));
    cr_assert_eq(memcmp(ih, h.ih, 20), 0, "a magnet user can verify it");
    free(got);
    fr_msgs_free(&m);
    /* metadata reads go through the disk interface: HK_FILE_METAINFO extents */
    const fr_action *a = fr_last(h.fr, FR_SEND);
    const fr_seg *last = &h.fr->segs[a->first_seg + a->nsegs - 1];
    cr_assert_eq(last->kind, HK_SEG_EXTENT);
    cr_assert_eq(last->ext.file, HK_FILE_METAINFO);
    cr_assert_eq(last->ext.offset, mi->info_start + 2 * 16384);
    mi_free(mi);
    cr_assert_eq(h_stats(&h).blocks_sent, 0, "metadata is not block payload");
}

Test(seeder, ut_metadata_works_while_choked_and_not_interested)
{
    metadata_peer(0, 1 << 20);
    md_request(0, 0);
    cr_assert_eq(h_count(&h, 0, WIRE_EXTENDED), 2);
}

Test(seeder, ut_metadata_queue_full_rejects)
{
    metadata_peer(0, 0); /* no room: requests stay queued */
    for (int i = 0; i < 9; i++)
        md_request(0, 0);
    fr_msgs m = h_msgs(&h, 0);
    const wire_msg *last = &m.m[m.n - 1];
    cr_assert_eq(last->type, WIRE_EXTENDED);
    ext_ut_metadata_msg um;
    cr_assert_eq(ext_ut_metadata_decode(last->u.ext.payload, last->u.ext.len, 0, &um, NULL), EXT_OK);
    cr_assert_eq(um.type, EXT_UT_METADATA_REJECT);
    fr_msgs_free(&m);
    h_room(&h, 0, 1 << 20);
    cr_assert_eq(h_count(&h, 0, WIRE_EXTENDED), 1 + 1 + 8, "handshake, reject, 8 data");
}

/* The last ut_metadata message sent to c is a reject of `piece`. */
static void assert_md_reject(int c, uint32_t piece)
{
    fr_msgs m = h_msgs(&h, c);
    const wire_msg *last = &m.m[m.n - 1];
    cr_assert_eq(last->type, WIRE_EXTENDED);
    cr_assert_eq(last->u.ext.id, 3);
    ext_ut_metadata_msg um;
    cr_assert_eq(ext_ut_metadata_decode(last->u.ext.payload, last->u.ext.len, 0, &um, NULL), EXT_OK);
    cr_assert_eq(um.type, EXT_UT_METADATA_REJECT);
    cr_assert_eq(um.piece, piece);
    fr_msgs_free(&m);
}

/* BEP 9: a piece we do not have gets a reject; the peer stays and can still fetch what exists. */
Test(seeder, ut_metadata_piece_out_of_range_is_rejected)
{
    metadata_peer(0, 1 << 20);
    md_request(0, 5);
    cr_assert_not(fr_closed(h.fr, 0));
    assert_md_reject(0, 5);
    static const char far[] = "d8:msg_typei0e5:piecei4000000000ee"; /* beyond any metadata */
    h_extended(&h, 0, 1, far, sizeof far - 1);
    cr_assert_not(fr_closed(h.fr, 0));
    assert_md_reject(0, 4000000000u);
    md_request(0, 0);
    cr_assert_eq(h_count(&h, 0, WIRE_EXTENDED), 1 + 2 + 1, "handshake, 2 rejects, the data");
    cr_assert_eq(h_stats(&h).protocol_errors, 0);
}

Test(seeder, ut_metadata_respects_residency)
{
    fr_set_resident(h.fr, H_STORAGE, HK_FILE_METAINFO, 0, 1 << 20, false);
    metadata_peer(0, 1 << 20);
    md_request(0, 0);
    cr_assert_eq(h_count(&h, 0, WIRE_EXTENDED), 1, "not sent: not resident");
    const fr_action *ld = fr_last(h.fr, FR_LOAD);
    cr_assert_not_null(ld, "requeued once, then loaded");
    cr_assert_eq(ld->ext.file, HK_FILE_METAINFO);
    cr_assert_eq(h_stats(&h).requeues, 1);
    hk_seeder_on_disk_loaded(h.s, ld->token, HK_DISK_OK);
    cr_assert_eq(h_count(&h, 0, WIRE_EXTENDED), 2);
}

/* The harmless oddities of real clients' extension handshakes (issue 14): a long v, reqq 0, a 5-byte yourip, an m id
 * of 300, p 70000, metadata_size 2^40. The peer stays, and fetches metadata and a block. */
Test(seeder, odd_extension_handshake_is_tolerated)
{
    h_accept(&h, 0, 1 << 20);
    h_handshake(&h, 0, NULL, true, true);
    static const char pre[] = "d1:md11:ut_metadatai3e6:ut_pexi300ee13:metadata_sizei1099511627776e1:pi70000e"
                              "4:reqqi0e1:v200:";
    static const char post[] = "6:yourip5:abcdee";
    char eh[sizeof pre - 1 + 200 + sizeof post - 1];
    memcpy(eh, pre, sizeof pre - 1);
    memset(eh + sizeof pre - 1, 'v', 200);
    memcpy(eh + sizeof pre - 1 + 200, post, sizeof post - 1);
    h_extended(&h, 0, 0, eh, sizeof eh);
    cr_assert_not(fr_closed(h.fr, 0));
    cr_assert_geq(fr_find_log(h.fr, "6 field(s) ignored, the first: m: ut_pex: id", 0), 0);
    md_request(0, 0);
    fr_msgs m = h_msgs(&h, 0);
    const wire_msg *last = &m.m[m.n - 1];
    cr_assert_eq(last->type, WIRE_EXTENDED);
    cr_assert_eq(last->u.ext.id, 3, "the peer's ut_metadata id was kept");
    ext_ut_metadata_msg um;
    cr_assert_eq(ext_ut_metadata_decode(last->u.ext.payload, last->u.ext.len, 0, &um, NULL), EXT_OK);
    cr_assert_eq(um.type, EXT_UT_METADATA_DATA);
    fr_msgs_free(&m);
    h_simple(&h, 0, WIRE_INTERESTED);
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1);
    cr_assert_not(fr_closed(h.fr, 0));
    cr_assert_eq(h_stats(&h).protocol_errors, 0);
}

/* `m` that is not a dictionary: no extensions, but the peer stays and fetches blocks. */
Test(seeder, extension_handshake_with_m_not_a_dictionary_is_tolerated)
{
    h_connect(&h, 0, true, true);
    const char eh[] = "d1:ml11:ut_metadatae1:pi-1e4:reqqi-5e1:v6:odditye";
    h_extended(&h, 0, 0, eh, sizeof eh - 1);
    cr_assert_not(fr_closed(h.fr, 0));
    h_simple(&h, 0, WIRE_INTERESTED);
    h_block(&h, 0, WIRE_REQUEST, 1, 0, 16384);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1);
    cr_assert_not(fr_closed(h.fr, 0));
    cr_assert_eq(h_stats(&h).protocol_errors, 0);
}

/* ---- bounded memory under a flood ---- */

static void flood(bool fast)
{
    h.fr->record_logs = false;
    hk_seeder_set_log_level(h.s, HK_LOG_INFO);
    h_accept(&h, 0, 64 * 1024); /* room granted once; the peer never reads again */
    h_handshake(&h, 0, NULL, fast, false);
    h_simple(&h, 0, WIRE_INTERESTED);
    uint64_t base = h_stats(&h).memory_bytes;
    enum { BATCH = 1000 };
    uint8_t *buf = malloc(BATCH * WIRE_BLOCK_MSG_LEN);
    uint64_t peak = 0;
    for (uint32_t n = 0; n < 100000 && !fr_closed(h.fr, 0); n += BATCH) {
        for (uint32_t k = 0; k < BATCH; k++) {
            uint32_t r = n + k;
            wire_encode_block(buf + k * WIRE_BLOCK_MSG_LEN, WIRE_REQUEST, r % 3, (r / 3 % 2) * 16384, 16384);
        }
        h_recv(&h, 0, buf, BATCH * WIRE_BLOCK_MSG_LEN);
        uint64_t m = h_stats(&h).memory_bytes;
        peak = m > peak ? m : peak;
    }
    free(buf);
    cr_assert_lt(peak, base + 64 * 1024, "memory bounded: base %llu peak %llu", (unsigned long long)base,
                 (unsigned long long)peak);
    cr_assert_leq(h_stats(&h).queued_requests, 256);
}

Test(seeder, request_flood_with_fast_is_bounded_and_disconnected)
{
    flood(true);
    cr_assert(fr_closed(h.fr, 0), "rejects pile up unread: the peer is dropped");
    cr_assert_geq(h_stats(&h).protocol_errors, 1);
    /* what is left is small: the flood's state went with the peer (the torrent table's records are a slab of
     * 1,024, 80 KiB, a fixed cost whatever the peers do) */
    cr_assert_lt(h_stats(&h).memory_bytes - hk_tt_records_bytes(&h.s->torrents), 64 * 1024 + 8192);
}

Test(seeder, request_flood_without_fast_is_bounded)
{
    flood(false);
    cr_assert_not(fr_closed(h.fr, 0), "drops cost nothing");
    /* ...until the send stall timeout: it never reads */
    h_advance(&h, HK_SECONDS(61));
    cr_assert(fr_closed(h.fr, 0));
    cr_assert_eq(h_stats(&h).timeouts[HK_TIMEOUT_SEND_STALL], 1);
}

/* ---- a peer's memory returns to its level after a large message ---- */

/* Sends one 40 KiB message (an extended message with an id that is not ours, or an unknown message id; both are
 * ignored) to connection 0 cut into TCP-sized chunks; checks the core's heap while it arrives and after. */
static void large_message(bool unknown_id)
{
    h_connect(&h, 0, true, true);
    h_simple(&h, 0, WIRE_INTERESTED);
    uint64_t base = h_stats(&h).memory_bytes;
    enum { PAYLOAD = 40 * 1024, MSS = 1448 };
    size_t len = WIRE_EXTENDED_HEADER_LEN + PAYLOAD;
    uint8_t *b = malloc(len);
    cr_assert_not_null(b);
    wire_encode_extended_header(b, 77, PAYLOAD);
    if (unknown_id)
        b[4] = 42;
    for (size_t i = WIRE_EXTENDED_HEADER_LEN; i < len; i++)
        b[i] = (uint8_t)i;
    /* the length prefix announces 40 KiB; only what arrives is held */
    h_recv(&h, 0, b, WIRE_EXTENDED_HEADER_LEN + 1);
    cr_assert_leq(h_stats(&h).memory_bytes, base + 8, "base %llu now %llu", (unsigned long long)base,
                  (unsigned long long)h_stats(&h).memory_bytes);
    for (size_t at = WIRE_EXTENDED_HEADER_LEN + 1; at < len; at += MSS) {
        uint64_t before = h_stats(&h).memory_bytes;
        cr_assert_leq(before, base + 2 * at, "at most twice what arrived");
        h_recv(&h, 0, b + at, len - at < MSS ? len - at : MSS);
    }
    cr_assert_not(fr_closed(h.fr, 0), "ignored, not an error");
    cr_assert_eq(h_stats(&h).memory_bytes, base, "base %llu after %llu", (unsigned long long)base,
                 (unsigned long long)h_stats(&h).memory_bytes);
    /* a second one, half of it with the previous message's tail: the half-received one holds its bytes only */
    uint8_t *two = malloc(2 * len);
    memcpy(two, b, len);
    memcpy(two + len, b, len);
    h_recv(&h, 0, two, len + len / 2);
    uint64_t mid = h_stats(&h).memory_bytes;
    cr_assert_gt(mid, base + len / 2 - 1024);
    cr_assert_leq(mid, base + len);
    h_recv(&h, 0, two + len + len / 2, len - len / 2);
    cr_assert_eq(h_stats(&h).memory_bytes, base);
    /* the connection still works */
    h_block(&h, 0, WIRE_REQUEST, 0, 0, 16384);
    cr_assert_eq(h_count(&h, 0, WIRE_PIECE), 1);
    free(two);
    free(b);
}

Test(seeder, large_extended_message_memory_returns_to_its_level) { large_message(false); }
Test(seeder, large_unknown_message_memory_returns_to_its_level) { large_message(true); }

/* ---- memory of idle connections ---- */

/* 10,000 handshaken peers that then say nothing: what the core holds per connection (hk_stats.memory_bytes, which
 * counts every allocation of the core: peer records, the peer table, the deadline heap, decoder buffers). The
 * budget is 2 KiB per connection all in; the backend needs ~136 bytes + libev's, so the core must stay well under
 * 1 KiB. Connections are fake hk_conn pointers (beyond the fake runtime's numbered ones: their sends are recorded
 * under connection -1). */
Test(idle_memory, ten_thousand_handshaken_idle_peers)
{
    enum { N = 10000 };
    hk_config c;
    hk_config_defaults(&c);
    c.max_peers = 2 * N;
    harness g;
    h_init(&g, &c);
    cr_assert_eq(h_add_single(&g, 32768, 100000), HK_ADD_OK);
    g.fr->record_logs = false;
    hk_seeder_set_log_level(g.s, HK_LOG_INFO);
    uint8_t *conns = malloc(N);
    hk_peer **peers = malloc(N * sizeof *peers);
    uint8_t hs[WIRE_HANDSHAKE_LEN], res[8] = {0};
    wire_reserved_set_fast(res);
    wire_reserved_set_extended(res);
    uint64_t base = h_stats(&g).memory_bytes;
    for (int i = 0; i < N; i++) {
        /* each from its own address and /24 (the default per-address caps hold; their counts are in the budget) */
        hk_addr a = {.family = 4, .ip = {10, (uint8_t)(i >> 8), (uint8_t)i, 1}, .port = 6881};
        peers[i] = hk_seeder_on_accept(g.s, (hk_conn *)(void *)(conns + i), &a);
        cr_assert_not_null(peers[i]);
        hk_seeder_on_sendable(g.s, peers[i], 65536);
        uint8_t id[20] = "-XX0001-";
        memcpy(id + 8, &i, sizeof i);
        wire_encode_handshake(hs, res, g.ih, id);
        /* the handshake in two reads, as it often comes (the peer waits for ours before its id) */
        hk_seeder_on_recv(g.s, peers[i], hs, WIRE_HANDSHAKE_INFO_HASH_END);
        hk_seeder_on_recv(g.s, peers[i], hs + WIRE_HANDSHAKE_INFO_HASH_END, 20);
    }
    hk_stats st = h_stats(&g);
    cr_assert_eq(st.peers, N);
    cr_assert_eq(fr_count(g.fr, FR_CLOSE), 0);
    cr_assert_eq(fr_count(g.fr, FR_SEND), N, "one handshake reply each, %zu sends", fr_count(g.fr, FR_SEND));
    double per_peer = (double)(st.memory_bytes - base) / N;
    cr_log_info("core memory per handshaken idle peer: %.1f bytes", per_peer);
    cr_assert_leq(per_peer, 640.0, "%.1f bytes per idle peer", per_peer);
    /* interested: 50 unchoked, the others waiting in line; still nothing allocated per peer */
    uint8_t in[WIRE_SIMPLE_LEN];
    wire_encode_simple(in, WIRE_INTERESTED);
    for (int i = 0; i < N; i++)
        hk_seeder_on_recv(g.s, peers[i], in, sizeof in);
    st = h_stats(&g);
    cr_assert_eq(st.unchoked, c.max_unchoked);
    cr_assert_eq(st.waiting, N - c.max_unchoked);
    double per_interested = (double)(st.memory_bytes - base) / N;
    cr_log_info("core memory per interested waiting peer: %.1f bytes", per_interested);
    cr_assert_leq(per_interested, 640.0);
    free(peers);
    free(conns);
    h_free(&g);
}

/* ---- determinism ---- */

static char *script(void)
{
    harness g;
    hk_config c;
    hk_config_defaults(&c);
    c.max_unchoked = 2;
    c.credit = 65536;
    h_init(&g, &c);
    h_add_single(&g, 32768, 1000000);
    fr_set_resident(g.fr, H_STORAGE, 0, 300000, 200000, false);
    for (int i = 0; i < 5; i++) {
        h_accept(&g, i, 100000);
        h_handshake(&g, i, NULL, i % 2 == 0, i % 3 == 0);
        h_simple(&g, i, WIRE_INTERESTED);
    }
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 5; i++) {
            if (!g.peer[i] || fr_closed(g.fr, i))
                continue;
            uint32_t piece = (uint32_t)((round * 5 + i) % 30);
            h_block(&g, i, WIRE_REQUEST, piece, 0, 16384);
            h_block(&g, i, WIRE_REQUEST, piece, 16384, 16384);
            if (round % 3 == 0)
                h_room(&g, i, 200000);
        }
        const fr_action *ld = fr_last(g.fr, FR_LOAD);
        if (ld)
            hk_seeder_on_disk_loaded(g.s, ld->token, HK_DISK_OK);
        h_advance(&g, HK_SECONDS(7));
    }
    h_advance(&g, HK_SECONDS(400));
    char *log = fr_action_log(g.fr);
    h_free(&g);
    return log;
}

Test(determinism, same_events_same_actions)
{
    char *a = script();
    char *b = script();
    cr_assert_gt(strlen(a), 10000, "the script does a lot");
    cr_assert_not_null(strstr(a, "unchoked"));
    cr_assert_not_null(strstr(a, "choked ("), "turns rotate");
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
}
