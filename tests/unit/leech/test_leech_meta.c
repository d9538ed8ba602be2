/* Tests for leech/meta.c through a magnet leecher (leech.c, LK_MAGNET) against a scripted seeder: the extension
 * handshake, every metadata piece requested, the dictionary checked against the info-hash before the peer says
 * interested and downloads; a seeder without ut_metadata, a rejected request and a dictionary of the wrong hash are
 * metadata failures that end the connection; pieces received survive a reconnection. */
#include <criterion/criterion.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "bencode.h"
#include "leech.h"
#include "leech_sink.h"
#include "wire.h"

#define PLEN LK_BLOCK
#define NPIECES 1100 /* 22,000 bytes of piece hashes: a metadata of two ut_metadata pieces */
#define SIZE ((uint64_t)NPIECES * PLEN)

static uint8_t info[NPIECES * 20 + 128];
static size_t info_len;
static lk_torrent T;

static void setup(void)
{
    int h = snprintf((char *)info, sizeof info, "d6:lengthi%llue4:name3:abc12:piece lengthi%ue6:pieces%u:",
                     (unsigned long long)SIZE, PLEN, NPIECES * 20);
    memset(info + h, 0x33, NPIECES * 20);
    info[h + NPIECES * 20] = 'e';
    info_len = (size_t)h + NPIECES * 20 + 1;
    memset(&T, 0, sizeof T);
    cr_assert_eq(lk_torrent_layout(&T, SIZE, PLEN), 0);
    SHA1(info, info_len, T.info_hash);
}

/* The extended messages the peer sent from offset *from: (id, payload) of each, in order; returns how many. */
static int extended(const sink *s, size_t *from, uint8_t *ids, char payloads[][64], wire_msg_type *others, int *nothers)
{
    wire_limits lim = {.skip_handshake = true, .allow_unknown = true};
    wire_decoder d;
    wire_decoder_init(&d, &lim);
    int k = 0;
    *nothers = 0;
    size_t off = *from < WIRE_HANDSHAKE_LEN ? WIRE_HANDSHAKE_LEN : *from;
    while (off < s->n) {
        size_t used = 0;
        wire_msg m;
        wire_status st = wire_feed(&d, s->out + off, s->n - off, &used, &m);
        off += used;
        cr_assert_neq(st, WIRE_ERROR);
        if (st == WIRE_NEED_MORE)
            break;
        if (m.type == WIRE_EXTENDED) {
            ids[k] = m.u.ext.id;
            snprintf(payloads[k], 64, "%.*s", (int)m.u.ext.len, (const char *)m.u.ext.payload);
            k++;
        } else {
            others[(*nothers)++] = m.type;
        }
    }
    *from = off;
    wire_decoder_free(&d);
    return k;
}

static void feed_ext(lk_peer *l, uint8_t id, const void *payload, size_t len, const void *tail, size_t tlen)
{
    uint8_t b[WIRE_EXTENDED_HEADER_LEN + 256 + LK_META_PIECE];
    size_t h = wire_encode_extended_header(b, id, (uint32_t)(len + tlen));
    memcpy(b + h, payload, len);
    if (tlen > 0)
        memcpy(b + h + len, tail, tlen);
    lk_feed(l, b, h + len + tlen);
}

static void seeder_handshake(lk_peer *l, bool ext)
{
    uint8_t reserved[WIRE_RESERVED_LEN] = {0}, id[20] = {0}, hs[WIRE_HANDSHAKE_LEN];
    if (ext)
        wire_reserved_set_extended(reserved);
    lk_feed(l, hs, wire_encode_handshake(hs, reserved, T.info_hash, id));
}

static void seeder_ext_handshake(lk_peer *l, const char *dict)
{
    feed_ext(l, 0, dict, strlen(dict), NULL, 0);
}

/* The seeder's extension handshake offering ut_metadata as id 7 and the metadata's size. */
static void seeder_offers_metadata(lk_peer *l)
{
    char hs[128];
    snprintf(hs, sizeof hs, "d1:md11:ut_metadatai7ee13:metadata_sizei%zuee", info_len);
    seeder_ext_handshake(l, hs);
}

static void metadata_piece(lk_peer *l, uint32_t i, const uint8_t *data)
{
    uint32_t off = i * LK_META_PIECE, len = info_len - off < LK_META_PIECE ? (uint32_t)(info_len - off) : LK_META_PIECE;
    char d[96];
    int n = snprintf(d, sizeof d, "d8:msg_typei1e5:piecei%ue10:total_sizei%zuee", i, info_len);
    feed_ext(l, LK_META_OUR_ID, d, (size_t)n, data + off, len);
}

static void magnet_peer(lk_peer *l, lk_params *par, sink *s)
{
    *par = (lk_params){.behaviour = LK_MAGNET, .strategy = LK_SEQUENTIAL, .pipeline = 4};
    lk_io io = sink_io(s);
    lk_init(l, par, &T, io, 9, 4242);
    lk_connection_start(l);
    lk_connected(l);
    cr_assert(l->meta.wanted);
}

Test(leech_meta, fetches_checks_then_downloads)
{
    setup();
    lk_params par;
    sink s = {0};
    lk_peer l;
    magnet_peer(&l, &par, &s);
    seeder_handshake(&l, true);
    size_t from = 0;
    uint8_t ids[8];
    char pl[8][64];
    wire_msg_type others[8];
    int no;
    cr_assert_eq(extended(&s, &from, ids, pl, others, &no), 1);
    cr_assert_eq(ids[0], 0);
    cr_assert_str_eq(pl[0], "d1:md11:ut_metadatai3eee");
    cr_assert_eq(no, 0, "not interested before the metadata");

    seeder_offers_metadata(&l);
    uint8_t unchoke[WIRE_SIMPLE_LEN];
    lk_feed(&l, unchoke, wire_encode_simple(unchoke, WIRE_UNCHOKE));
    cr_assert_eq(extended(&s, &from, ids, pl, others, &no), 2, "one request per metadata piece");
    cr_assert_eq(ids[0], 7);
    cr_assert_str_eq(pl[0], "d8:msg_typei0e5:piecei0ee");
    cr_assert_str_eq(pl[1], "d8:msg_typei0e5:piecei1ee");
    cr_assert_eq(no, 0, "no block requested while the metadata is fetched, unchoked or not");

    metadata_piece(&l, 1, info);
    metadata_piece(&l, 1, info); /* a duplicate changes nothing */
    cr_assert(l.meta.wanted);
    metadata_piece(&l, 0, info);
    cr_assert(!l.meta.wanted);
    cr_assert_eq(l.meta.total_length, SIZE);
    cr_assert_eq(l.meta.piece_length, PLEN);
    cr_assert_eq(extended(&s, &from, ids, pl, others, &no), 0);
    cr_assert_eq(no, 5, "interested, then the pipeline of 4 requests: %d", no);
    cr_assert_eq(others[0], WIRE_INTERESTED);
    cr_assert_eq(others[1], WIRE_REQUEST);
    cr_assert_eq(s.ends, 0);
    cr_assert_eq(l.meta_failures, 0);
    lk_free(&l);
}

Test(leech_meta, a_wrong_dictionary_is_a_metadata_failure)
{
    setup();
    static uint8_t bad[sizeof info];
    memcpy(bad, info, info_len);
    bad[info_len - 5] ^= 1; /* one byte of a piece hash */
    lk_params par;
    sink s = {0};
    lk_peer l;
    magnet_peer(&l, &par, &s);
    seeder_handshake(&l, true);
    seeder_offers_metadata(&l);
    metadata_piece(&l, 0, bad);
    metadata_piece(&l, 1, bad);
    cr_assert_eq(l.meta_failures, 1);
    cr_assert_eq(s.ends, 1);
    cr_assert_eq(s.why, LK_END_CLOSED_BY_SEEDER);
    cr_assert(l.meta.wanted);
    lk_free(&l);
}

Test(leech_meta, no_extension_protocol_or_no_ut_metadata_or_a_reject_fail)
{
    setup();
    const char *cases[] = {NULL, "d1:md6:ut_pexi1eee", "reject"};
    for (int c = 0; c < 3; c++) {
        lk_params par;
        sink s = {0};
        lk_peer l;
        magnet_peer(&l, &par, &s);
        seeder_handshake(&l, cases[c] != NULL);
        if (cases[c] != NULL && c == 1)
            seeder_ext_handshake(&l, cases[c]);
        if (c == 2) {
            seeder_offers_metadata(&l);
            const char rej[] = "d8:msg_typei2e5:piecei0ee";
            feed_ext(&l, LK_META_OUR_ID, rej, sizeof rej - 1, NULL, 0);
        }
        cr_assert_eq(l.meta_failures, 1, "case %d", c);
        cr_assert_eq(s.ends, 1, "case %d", c);
        lk_free(&l);
    }
}

Test(leech_meta, pieces_received_survive_a_reconnection)
{
    setup();
    lk_params par;
    sink s = {0};
    lk_peer l;
    magnet_peer(&l, &par, &s);
    seeder_handshake(&l, true);
    seeder_offers_metadata(&l);
    metadata_piece(&l, 0, info);
    cr_assert_eq(l.meta.got, 1);
    lk_connection_start(&l); /* the connection dropped; a new one */
    s.n = 0;
    lk_connected(&l);
    seeder_handshake(&l, true);
    seeder_offers_metadata(&l);
    cr_assert_eq(l.meta.got, 1, "piece 0 kept");
    metadata_piece(&l, 1, info);
    cr_assert(!l.meta.wanted);
    lk_free(&l);
}
