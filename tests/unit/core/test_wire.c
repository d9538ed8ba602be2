/* Tests for core/wire: encode -> decode round trips of every message, chunking independence, and each malformed
 * input the decoder must reject (with the right code, offset and consumed count). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

/* ---- helpers ---- */

typedef struct rec {
    wire_msg msg;      /* pointers inside are NOT kept valid; use enc */
    uint8_t *enc;      /* re-encoding of the message */
    size_t enc_len;
    uint64_t end;      /* stream offset just past the message */
} rec;

typedef struct run {
    rec *r;
    size_t n, cap;
    wire_status last;
    wire_error err;
    uint64_t consumed;
    bool finished_clean;
} run;

static void run_free(run *x)
{
    for (size_t i = 0; i < x->n; i++)
        free(x->r[i].enc);
    free(x->r);
    memset(x, 0, sizeof *x);
}

/* Decodes buf in chunks of `chunk` bytes (0 = all at once) and records every message. */
static run decode_chunked(const uint8_t *buf, size_t len, size_t chunk, const wire_limits *lim)
{
    run x = {0};
    wire_decoder d;
    wire_decoder_init(&d, lim);
    size_t pos = 0;
    x.last = WIRE_NEED_MORE;
    while (pos < len) {
        size_t n = chunk == 0 ? len - pos : (len - pos < chunk ? len - pos : chunk);
        const uint8_t *p = buf + pos;
        size_t left = n;
        while (left > 0) {
            size_t used = 0;
            wire_msg m;
            wire_status st = wire_feed(&d, p, left, &used, &m);
            cr_assert(used <= left);
            p += used;
            left -= used;
            x.consumed += used;
            x.last = st;
            if (st == WIRE_ERROR)
                goto done;
            if (st == WIRE_READY) {
                if (x.n == x.cap) {
                    x.cap = x.cap ? 2 * x.cap : 16;
                    x.r = realloc(x.r, x.cap * sizeof *x.r);
                    cr_assert(x.r);
                }
                rec *r = &x.r[x.n++];
                r->msg = m;
                r->enc_len = wire_encoded_len(&m);
                cr_assert(r->enc_len > 0, "message %s not encodable", wire_msg_name(m.type));
                r->enc = malloc(r->enc_len);
                cr_assert_eq(wire_encode_msg(r->enc, r->enc_len, &m), r->enc_len);
                r->end = wire_decoder_offset(&d);
            } else {
                cr_assert_eq(left, 0, "NEED_MORE must consume everything");
            }
        }
        pos += n;
    }
    x.finished_clean = wire_finish(&d);
done:
    x.err = *wire_decoder_error(&d);
    wire_decoder_free(&d);
    return x;
}

static void assert_same_runs(const run *a, const run *b)
{
    cr_assert_eq(a->n, b->n, "message counts differ: %zu vs %zu", a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        cr_assert_eq(a->r[i].msg.type, b->r[i].msg.type, "message %zu type", i);
        cr_assert_eq(a->r[i].end, b->r[i].end, "message %zu end offset", i);
        cr_assert_eq(a->r[i].enc_len, b->r[i].enc_len);
        cr_assert_arr_eq(a->r[i].enc, b->r[i].enc, a->r[i].enc_len, "message %zu bytes", i);
    }
    cr_assert_eq(a->last, b->last);
    cr_assert_eq(a->consumed, b->consumed);
    cr_assert_eq(a->err.code, b->err.code);
    cr_assert_eq(a->err.offset, b->err.offset);
    cr_assert_eq(a->err.msg_offset, b->err.msg_offset);
    cr_assert_eq(a->err.value, b->err.value);
    cr_assert_eq(a->finished_clean, b->finished_clean);
}

/* Feeds the whole buffer once; expects an error; returns the decoder state through out params. */
static wire_err feed_expect_error(const uint8_t *buf, size_t len, const wire_limits *lim, size_t *consumed,
                                  wire_error *err)
{
    wire_decoder d;
    wire_decoder_init(&d, lim);
    size_t total = 0;
    wire_status st;
    do {
        size_t used = 0;
        wire_msg m;
        st = wire_feed(&d, buf + total, len - total, &used, &m);
        total += used;
    } while (st == WIRE_READY);
    cr_assert_eq(st, WIRE_ERROR, "expected an error, got status %d", st);
    *consumed = total;
    *err = *wire_decoder_error(&d);
    /* sticky */
    size_t used = 99;
    wire_msg m;
    cr_assert_eq(wire_feed(&d, buf, len, &used, &m), WIRE_ERROR);
    cr_assert_eq(used, 0);
    wire_decoder_free(&d);
    return err->code;
}

static const wire_limits no_hs = {.skip_handshake = true};

/* Decodes exactly one message from buf (skip_handshake unless it is a handshake) and checks it consumed all. */
static wire_msg decode_one(const uint8_t *buf, size_t len, const wire_limits *lim, wire_decoder *d)
{
    wire_decoder_init(d, lim);
    size_t used = 0;
    wire_msg m;
    wire_status st = wire_feed(d, buf, len, &used, &m);
    cr_assert_eq(st, WIRE_READY, "status %d err %s", st, wire_strerror(wire_decoder_error(d)->code));
    cr_assert_eq(used, len);
    cr_assert(wire_decoder_at_boundary(d));
    /* the re-encoding is byte-identical */
    uint8_t again[256];
    cr_assert_eq(wire_encode_msg(again, sizeof again, &m), len);
    cr_assert_arr_eq(again, buf, len);
    return m;
}

static const uint8_t IH[20] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
static const uint8_t PID[20] = "-HK0001-abcdefghijkl";

/* ---- round trips ---- */

Test(wire, handshake_round_trip)
{
    uint8_t res[8] = {0};
    wire_reserved_set_fast(res);
    wire_reserved_set_extended(res);
    wire_reserved_set_dht(res);
    cr_assert_eq(res[5], 0x10);
    cr_assert_eq(res[7], 0x05);
    cr_assert(wire_reserved_has_fast(res) && wire_reserved_has_extended(res) && wire_reserved_has_dht(res));
    uint8_t none[8] = {0};
    cr_assert(!wire_reserved_has_fast(none) && !wire_reserved_has_extended(none) && !wire_reserved_has_dht(none));

    uint8_t buf[WIRE_HANDSHAKE_LEN];
    cr_assert_eq(wire_encode_handshake(buf, res, IH, PID), WIRE_HANDSHAKE_LEN);
    cr_assert_eq(buf[0], 19);
    cr_assert_arr_eq(buf + 1, "BitTorrent protocol", 19);
    wire_decoder d;
    wire_msg m = decode_one(buf, sizeof buf, NULL, &d);
    cr_assert_eq(m.type, WIRE_HANDSHAKE);
    cr_assert_arr_eq(m.u.handshake.reserved, res, 8);
    cr_assert_arr_eq(m.u.handshake.info_hash, IH, 20);
    cr_assert_arr_eq(m.u.handshake.peer_id, PID, 20);
    cr_assert_arr_eq(wire_decoder_info_hash(&d), IH, 20);
    wire_decoder_free(&d);
}

Test(wire, info_hash_known_after_48_bytes)
{
    uint8_t res[8] = {0}, buf[WIRE_HANDSHAKE_LEN];
    wire_encode_handshake(buf, res, IH, PID);
    wire_decoder d;
    wire_decoder_init(&d, NULL);
    size_t used;
    wire_msg m;
    cr_assert_eq(wire_feed(&d, buf, 47, &used, &m), WIRE_NEED_MORE);
    cr_assert_eq(used, 47);
    cr_assert_null(wire_decoder_info_hash(&d));
    cr_assert_eq(wire_feed(&d, buf + 47, 1, &used, &m), WIRE_NEED_MORE);
    const uint8_t *ih = wire_decoder_info_hash(&d);
    cr_assert_not_null(ih);
    cr_assert_arr_eq(ih, IH, 20);
    cr_assert_not(wire_decoder_at_boundary(&d));
    cr_assert_eq(wire_feed(&d, buf + 48, 20, &used, &m), WIRE_READY);
    cr_assert_eq(used, 20);
    cr_assert_arr_eq(m.u.handshake.peer_id, PID, 20);
    wire_decoder_free(&d);

    wire_decoder_init(&d, &no_hs);
    cr_assert_null(wire_decoder_info_hash(&d));
}

Test(wire, reserved_known_after_28_bytes_whatever_the_chunking)
{
    uint8_t res[8] = {1, 2, 3, 4, 5, 0x10, 7, 0x05}, hs[WIRE_HANDSHAKE_LEN + 2 * WIRE_SIMPLE_LEN + 60];
    size_t n = wire_encode_handshake(hs, res, IH, PID);
    n += wire_encode_simple(hs + n, WIRE_INTERESTED);
    /* an extended message gathered in the bytes that held the handshake, when cut */
    n += wire_encode_extended_header(hs + n, 0, 50);
    memset(hs + n, 0xEE, 50);
    n += 50;
    for (size_t chunk = 1; chunk <= n; chunk++) {
        wire_decoder d;
        wire_decoder_init(&d, NULL);
        cr_assert_null(wire_decoder_reserved(&d));
        for (size_t at = 0; at < n;) {
            size_t k = n - at < chunk ? n - at : chunk, used;
            wire_msg m;
            wire_status st = wire_feed(&d, hs + at, k, &used, &m);
            cr_assert_neq(st, WIRE_ERROR);
            at += used;
            const uint8_t *r = wire_decoder_reserved(&d);
            if (at < WIRE_HANDSHAKE_RESERVED_END) {
                cr_assert_null(r, "chunk %zu, %zu bytes in", chunk, at);
                continue;
            }
            cr_assert_not_null(r, "chunk %zu, %zu bytes in", chunk, at);
            cr_assert_arr_eq(r, res, 8, "chunk %zu, %zu bytes in", chunk, at);
            if (st == WIRE_READY && m.type == WIRE_HANDSHAKE)
                cr_assert_arr_eq(m.u.handshake.reserved, res, 8);
        }
        cr_assert(wire_reserved_has_fast(wire_decoder_reserved(&d)));
        cr_assert(wire_reserved_has_extended(wire_decoder_reserved(&d)));
        wire_decoder_free(&d);
    }
    /* none without a handshake, none after a bad protocol string */
    wire_decoder d;
    wire_decoder_init(&d, &no_hs);
    cr_assert_null(wire_decoder_reserved(&d));
    wire_decoder_init(&d, NULL);
    uint8_t bad[WIRE_HANDSHAKE_LEN];
    memcpy(bad, hs, sizeof bad);
    bad[5] = 'x';
    size_t used;
    wire_msg m;
    cr_assert_eq(wire_feed(&d, bad, sizeof bad, &used, &m), WIRE_ERROR);
    cr_assert_null(wire_decoder_reserved(&d));
    cr_assert_null(wire_decoder_info_hash(&d));
}

Test(wire, simple_messages_round_trip)
{
    const wire_msg_type types[] = {WIRE_CHOKE, WIRE_UNCHOKE, WIRE_INTERESTED, WIRE_NOT_INTERESTED, WIRE_HAVE_ALL,
                                   WIRE_HAVE_NONE};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        uint8_t buf[WIRE_SIMPLE_LEN];
        cr_assert_eq(wire_encode_simple(buf, types[i]), WIRE_SIMPLE_LEN);
        const uint8_t want[5] = {0, 0, 0, 1, (uint8_t)types[i]};
        cr_assert_arr_eq(buf, want, 5);
        wire_decoder d;
        wire_msg m = decode_one(buf, sizeof buf, &no_hs, &d);
        cr_assert_eq(m.type, types[i], "%s", wire_msg_name(types[i]));
        wire_decoder_free(&d);
    }
    uint8_t buf[WIRE_SIMPLE_LEN];
    cr_assert_eq(wire_encode_simple(buf, WIRE_HAVE), 0);
    cr_assert_eq(wire_encode_simple(buf, WIRE_KEEPALIVE), 0);
}

Test(wire, keepalive_round_trip)
{
    uint8_t buf[WIRE_KEEPALIVE_LEN];
    cr_assert_eq(wire_encode_keepalive(buf), 4);
    wire_decoder d;
    wire_msg m = decode_one(buf, sizeof buf, &no_hs, &d);
    cr_assert_eq(m.type, WIRE_KEEPALIVE);
}

Test(wire, index_messages_round_trip)
{
    const wire_msg_type types[] = {WIRE_HAVE, WIRE_SUGGEST, WIRE_ALLOWED_FAST};
    for (size_t i = 0; i < 3; i++) {
        uint8_t buf[WIRE_INDEX_MSG_LEN];
        cr_assert_eq(wire_encode_index(buf, types[i], 0xdeadbeef), WIRE_INDEX_MSG_LEN);
        const uint8_t want[9] = {0, 0, 0, 5, (uint8_t)types[i], 0xde, 0xad, 0xbe, 0xef};
        cr_assert_arr_eq(buf, want, 9);
        wire_decoder d;
        wire_msg m = decode_one(buf, sizeof buf, &no_hs, &d);
        cr_assert_eq(m.type, types[i]);
        cr_assert_eq(m.u.index, 0xdeadbeef);
    }
    uint8_t buf[WIRE_INDEX_MSG_LEN];
    cr_assert_eq(wire_encode_index(buf, WIRE_REQUEST, 1), 0);
}

Test(wire, block_messages_round_trip)
{
    const wire_msg_type types[] = {WIRE_REQUEST, WIRE_CANCEL, WIRE_REJECT};
    for (size_t i = 0; i < 3; i++) {
        uint8_t buf[WIRE_BLOCK_MSG_LEN];
        cr_assert_eq(wire_encode_block(buf, types[i], 7, 16384, 16384), WIRE_BLOCK_MSG_LEN);
        const uint8_t want[17] = {0, 0, 0, 13, (uint8_t)types[i], 0, 0, 0, 7, 0, 0, 0x40, 0, 0, 0, 0x40, 0};
        cr_assert_arr_eq(buf, want, 17);
        wire_decoder d;
        wire_msg m = decode_one(buf, sizeof buf, &no_hs, &d);
        cr_assert_eq(m.type, types[i]);
        cr_assert_eq(m.u.block.index, 7);
        cr_assert_eq(m.u.block.begin, 16384);
        cr_assert_eq(m.u.block.length, 16384);
    }
    uint8_t buf[WIRE_BLOCK_MSG_LEN];
    cr_assert_eq(wire_encode_block(buf, WIRE_HAVE, 1, 2, 3), 0);
}

Test(wire, port_round_trip)
{
    uint8_t buf[WIRE_PORT_LEN];
    cr_assert_eq(wire_encode_port(buf, 6881), WIRE_PORT_LEN);
    const uint8_t want[7] = {0, 0, 0, 3, 9, 0x1a, 0xe1};
    cr_assert_arr_eq(buf, want, 7);
    wire_decoder d;
    wire_msg m = decode_one(buf, sizeof buf, &no_hs, &d);
    cr_assert_eq(m.type, WIRE_PORT);
    cr_assert_eq(m.u.port, 6881);
}

Test(wire, piece_round_trip_zero_copy)
{
    uint8_t buf[WIRE_PIECE_HEADER_LEN + 100];
    cr_assert_eq(wire_encode_piece_header(buf, 3, 32768, 100), WIRE_PIECE_HEADER_LEN);
    const uint8_t want[13] = {0, 0, 0, 109, 7, 0, 0, 0, 3, 0, 0, 0x80, 0};
    cr_assert_arr_eq(buf, want, 13);
    for (int i = 0; i < 100; i++)
        buf[13 + i] = (uint8_t)(i * 7);
    wire_decoder d;
    wire_msg m = decode_one(buf, sizeof buf, &no_hs, &d);
    cr_assert_eq(m.type, WIRE_PIECE);
    cr_assert_eq(m.u.piece.index, 3);
    cr_assert_eq(m.u.piece.begin, 32768);
    cr_assert_eq(m.u.piece.len, 100);
    cr_assert_eq(m.u.piece.data, buf + 13, "whole payload in one chunk must not be copied");
    cr_assert_null(d.buf, "no buffer allocated for a payload that was all in the chunk");
    wire_decoder_free(&d);

    /* empty block */
    uint8_t e[WIRE_PIECE_HEADER_LEN];
    wire_encode_piece_header(e, 1, 2, 0);
    m = decode_one(e, sizeof e, &no_hs, &d);
    cr_assert_eq(m.u.piece.len, 0);
    cr_assert_eq(wire_encode_piece_header(e, 1, 2, UINT32_MAX - 8), 0);
}

Test(wire, piece_split_is_buffered_and_freed_on_reset)
{
    uint8_t buf[WIRE_PIECE_HEADER_LEN + 1000];
    wire_encode_piece_header(buf, 1, 0, 1000);
    for (int i = 0; i < 1000; i++)
        buf[13 + i] = (uint8_t)(i ^ 0x5a);
    wire_decoder d;
    wire_decoder_init(&d, &no_hs);
    size_t used;
    wire_msg m;
    cr_assert_eq(wire_feed(&d, buf, 500, &used, &m), WIRE_NEED_MORE);
    cr_assert_geq(wire_decoder_memory(&d), 500 - 5, "the 495 payload bytes received are buffered");
    cr_assert_eq(wire_feed(&d, buf + 500, sizeof buf - 500, &used, &m), WIRE_READY);
    cr_assert_eq(m.u.piece.len, 1000);
    cr_assert_arr_eq(m.u.piece.data, buf + 13, 1000);
    cr_assert_eq(wire_decoder_memory(&d), 1008, "grown to the payload, not beyond");
    wire_decoder_reset(&d);
    cr_assert_eq(wire_decoder_memory(&d), 0);
    cr_assert_null(d.buf);
    cr_assert_eq(wire_decoder_offset(&d), 0);
}

/* Feeds buf[0..len) to d; expects NEED_MORE and everything consumed. */
static void feed_need_more(wire_decoder *d, const uint8_t *buf, size_t len)
{
    size_t used = 0;
    wire_msg m;
    cr_assert_eq(wire_feed(d, buf, len, &used, &m), WIRE_NEED_MORE);
    cr_assert_eq(used, len);
}

/* A 40 KiB extended message: header, then payload bytes (i * 31 + 7). */
enum { BIG_PAYLOAD = 40 * 1024 };
static uint8_t *big_extended(size_t *len)
{
    *len = WIRE_EXTENDED_HEADER_LEN + BIG_PAYLOAD;
    uint8_t *b = malloc(*len);
    cr_assert_not_null(b);
    wire_encode_extended_header(b, 3, BIG_PAYLOAD);
    for (size_t i = 0; i < BIG_PAYLOAD; i++)
        b[WIRE_EXTENDED_HEADER_LEN + i] = (uint8_t)(i * 31 + 7);
    return b;
}

/* The big extended message, and d initialised for a stream of such messages (no handshake, 64 KiB limit). */
static uint8_t *big_extended_for(wire_decoder *d, size_t *len)
{
    wire_limits lim = {.skip_handshake = true, .max_msg_len = 64 * 1024};
    wire_decoder_init(d, &lim);
    return big_extended(len);
}

Test(wire, buffer_grows_with_the_bytes_received_not_the_announced_length)
{
    size_t len;
    wire_decoder d;
    uint8_t *b = big_extended_for(&d, &len);
    /* prefix, id, extended id and one more byte: the 41 KiB announced are not allocated */
    feed_need_more(&d, b, WIRE_EXTENDED_HEADER_LEN + 1);
    cr_assert_leq(wire_decoder_memory(&d), 4, "held %zu bytes for 2 received", wire_decoder_memory(&d));
    cr_assert_gt(wire_decoder_memory(&d), 0);
    /* then byte by byte up to 1000 payload bytes: at most twice what arrived, and O(log n) reallocations */
    size_t at = WIRE_EXTENDED_HEADER_LEN + 1, grows = 0, last = wire_decoder_memory(&d);
    for (; at < WIRE_EXTENDED_HEADER_LEN + 999; at++) {
        feed_need_more(&d, b + at, 1);
        size_t got = at + 1 - 5; /* payload bytes received (the extended id counts) */
        cr_assert_leq(wire_decoder_memory(&d), 2 * got);
        grows += wire_decoder_memory(&d) != last;
        last = wire_decoder_memory(&d);
    }
    cr_assert_leq(grows, 10);
    /* the rest in one chunk: complete, never above the payload size */
    size_t used;
    wire_msg m;
    cr_assert_eq(wire_feed(&d, b + at, len - at, &used, &m), WIRE_READY);
    cr_assert_eq(used, len - at);
    cr_assert_eq(m.type, WIRE_EXTENDED);
    cr_assert_eq(m.u.ext.id, 3);
    cr_assert_eq(m.u.ext.len, BIG_PAYLOAD);
    cr_assert_arr_eq(m.u.ext.payload, b + WIRE_EXTENDED_HEADER_LEN, BIG_PAYLOAD);
    cr_assert_leq(wire_decoder_memory(&d), BIG_PAYLOAD + 1);
    wire_decoder_free(&d);
    free(b);
}

Test(wire, trim_frees_the_buffer_between_messages_only)
{
    size_t len;
    wire_decoder d;
    uint8_t *b = big_extended_for(&d, &len);
    wire_decoder_trim(&d); /* nothing to free: harmless */
    cr_assert_eq(wire_decoder_memory(&d), 0);
    for (int round = 0; round < 2; round++) {
        /* half of the message, trimmed in the middle: the buffer holds received bytes and must stay */
        feed_need_more(&d, b, len / 2);
        size_t held = wire_decoder_memory(&d);
        cr_assert_geq(held, len / 2 - 5);
        wire_decoder_trim(&d);
        cr_assert_eq(wire_decoder_memory(&d), held, "a partial message's buffer is kept");
        size_t used;
        wire_msg m;
        cr_assert_eq(wire_feed(&d, b + len / 2, len - len / 2, &used, &m), WIRE_READY);
        cr_assert_eq(m.u.ext.len, BIG_PAYLOAD);
        cr_assert_arr_eq(m.u.ext.payload, b + WIRE_EXTENDED_HEADER_LEN, BIG_PAYLOAD, "round %d", round);
        cr_assert_gt(wire_decoder_memory(&d), BIG_PAYLOAD / 2);
        wire_decoder_trim(&d);
        cr_assert_eq(wire_decoder_memory(&d), 0, "round %d: the completed message's buffer is freed", round);
        cr_assert(wire_decoder_at_boundary(&d));
    }
    /* only the header of the next one (payload not started): nothing buffered, nothing held */
    feed_need_more(&d, b, WIRE_EXTENDED_HEADER_LEN - 1);
    wire_decoder_trim(&d);
    cr_assert_eq(wire_decoder_memory(&d), 0);
    /* a small message after trimming decodes as before */
    uint8_t have[WIRE_INDEX_MSG_LEN];
    wire_encode_index(have, WIRE_HAVE, 5);
    size_t used;
    wire_msg m;
    wire_decoder_reset(&d);
    cr_assert_eq(wire_feed(&d, have, sizeof have, &used, &m), WIRE_READY);
    cr_assert_eq(m.u.index, 5);
    wire_decoder_free(&d);
    free(b);
}

Test(wire, trim_after_an_error_frees_the_buffer)
{
    size_t len;
    wire_decoder d;
    uint8_t *b = big_extended_for(&d, &len);
    size_t used;
    wire_msg m;
    feed_need_more(&d, b, 1000);
    cr_assert_eq(wire_feed(&d, b + 1000, len - 1000, &used, &m), WIRE_READY);
    const uint8_t bad[5] = {0, 0, 0, 1, 200}; /* unknown id */
    cr_assert_eq(wire_feed(&d, bad, sizeof bad, &used, &m), WIRE_ERROR);
    cr_assert_gt(wire_decoder_memory(&d), 0);
    wire_decoder_trim(&d);
    cr_assert_eq(wire_decoder_memory(&d), 0);
    cr_assert_eq(wire_decoder_error(&d)->code, WIRE_ERR_UNKNOWN_ID, "the error is kept");
    cr_assert_eq(wire_feed(&d, bad, sizeof bad, &used, &m), WIRE_ERROR);
    wire_decoder_free(&d);
    free(b);
}

Test(wire, small_split_payloads_do_not_allocate)
{
    /* after a handshake (whose buffer the decoder reuses), extended messages of up to 68 payload bytes fed byte by
     * byte are gathered inside the decoder */
    uint8_t buf[WIRE_HANDSHAKE_LEN + 2 * (WIRE_EXTENDED_HEADER_LEN + 67)];
    uint8_t res[8] = {0};
    size_t n = wire_encode_handshake(buf, res, IH, PID);
    for (int k = 0; k < 2; k++) {
        n += wire_encode_extended_header(buf + n, (uint8_t)(k + 1), 67);
        for (int i = 0; i < 67; i++)
            buf[n++] = (uint8_t)(i + k);
    }
    wire_decoder d;
    wire_decoder_init(&d, NULL);
    int got = 0;
    for (size_t i = 0; i < n; i++) {
        size_t used;
        wire_msg m;
        wire_status st = wire_feed(&d, buf + i, 1, &used, &m);
        cr_assert_neq(st, WIRE_ERROR);
        if (st == WIRE_READY && m.type == WIRE_EXTENDED) {
            cr_assert_eq(m.u.ext.id, got + 1);
            cr_assert_eq(m.u.ext.len, 67);
            cr_assert_arr_eq(m.u.ext.payload, buf + WIRE_HANDSHAKE_LEN + (size_t)got * 73 + 6, 67);
            got++;
        }
    }
    cr_assert_eq(got, 2);
    cr_assert_null(d.buf);
    /* the info-hash survives the reuse of the handshake buffer */
    cr_assert_arr_eq(wire_decoder_info_hash(&d), IH, 20);
    wire_decoder_free(&d);
}

Test(wire, bitfield_round_trip)
{
    /* 20 pieces: 3 bytes, 4 spare bits */
    uint8_t buf[WIRE_BITFIELD_HEADER_LEN + 3];
    cr_assert_eq(wire_encode_bitfield_header(buf, 3), WIRE_BITFIELD_HEADER_LEN);
    buf[5] = 0xff;
    buf[6] = 0x0f;
    buf[7] = 0xf0;
    const wire_limits lim = {.skip_handshake = true, .piece_count = 20};
    wire_decoder d;
    wire_msg m = decode_one(buf, sizeof buf, &lim, &d);
    cr_assert_eq(m.type, WIRE_BITFIELD);
    cr_assert_eq(m.u.bitfield.len, 3);
    cr_assert_arr_eq(m.u.bitfield.bits, buf + 5, 3);
    cr_assert_eq(wire_bitfield_len(20), 3);
    cr_assert_eq(wire_bitfield_len(16), 2);
    cr_assert_eq(wire_bitfield_len(0), 0);
    cr_assert_eq(wire_bitfield_len(UINT32_MAX), 536870912u);
    cr_assert(wire_bitfield_spare_clear(buf + 5, 20));
    cr_assert_not(wire_bitfield_spare_clear(buf + 5, 19));
}

Test(wire, extended_round_trip)
{
    const char *payload = "d1:md11:ut_metadatai3eee";
    size_t pl = strlen(payload);
    uint8_t buf[64];
    cr_assert_eq(wire_encode_extended_header(buf, 0, (uint32_t)pl), WIRE_EXTENDED_HEADER_LEN);
    memcpy(buf + 6, payload, pl);
    wire_decoder d;
    wire_msg m = decode_one(buf, 6 + pl, &no_hs, &d);
    cr_assert_eq(m.type, WIRE_EXTENDED);
    cr_assert_eq(m.u.ext.id, 0);
    cr_assert_eq(m.u.ext.len, pl);
    cr_assert_arr_eq(m.u.ext.payload, payload, pl);

    /* an extended message with an empty payload after the id */
    wire_encode_extended_header(buf, 3, 0);
    m = decode_one(buf, 6, &no_hs, &d);
    cr_assert_eq(m.u.ext.id, 3);
    cr_assert_eq(m.u.ext.len, 0);
}

Test(wire, unknown_id_allowed_when_asked)
{
    const uint8_t buf[] = {0, 0, 0, 3, 21, 0xaa, 0xbb, 0, 0, 0, 1, 10};
    const wire_limits lim = {.skip_handshake = true, .allow_unknown = true};
    run x = decode_chunked(buf, sizeof buf, 0, &lim);
    cr_assert_eq(x.n, 2);
    cr_assert_eq(x.r[0].msg.type, WIRE_UNKNOWN);
    cr_assert_eq(x.r[0].msg.u.ext.id, 21);
    cr_assert_eq(x.r[0].msg.u.ext.len, 2);
    cr_assert_arr_eq(x.r[0].enc, buf, 7);
    cr_assert_eq(x.r[1].msg.type, WIRE_UNKNOWN);
    cr_assert_eq(x.r[1].msg.u.ext.id, 10);
    cr_assert(x.finished_clean);
    run_free(&x);
    /* a known id cannot be encoded as "unknown" */
    wire_msg m = {.type = WIRE_UNKNOWN};
    m.u.ext.id = WIRE_REQUEST;
    cr_assert_eq(wire_encoded_len(&m), 0);
}

/* ---- chunking independence ---- */

static size_t build_mixed_stream(uint8_t *out, size_t cap)
{
    size_t n = 0;
    uint8_t res[8] = {0};
    wire_reserved_set_fast(res);
    wire_reserved_set_extended(res);
    n += wire_encode_handshake(out + n, res, IH, PID);
    const char *exths = "d1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:"
                        "ut_pexi1ee13:metadata_sizei31235e4:reqqi500e1:v17:libtorrent/2.0.9e";
    n += wire_encode_extended_header(out + n, 0, (uint32_t)strlen(exths));
    memcpy(out + n, exths, strlen(exths));
    n += strlen(exths);
    n += wire_encode_bitfield_header(out + n, 13); /* 100 pieces */
    for (int i = 0; i < 12; i++)
        out[n++] = (uint8_t)(0xa5 ^ i);
    out[n++] = 0xf0;
    for (int round = 0; round < 20; round++) {
        n += wire_encode_simple(out + n, WIRE_INTERESTED);
        n += wire_encode_keepalive(out + n);
        n += wire_encode_index(out + n, WIRE_HAVE, (uint32_t)round);
        n += wire_encode_block(out + n, WIRE_REQUEST, (uint32_t)round, (uint32_t)round * 16384, 16384);
        n += wire_encode_block(out + n, WIRE_CANCEL, (uint32_t)round, 0, 16384);
        n += wire_encode_block(out + n, WIRE_REJECT, (uint32_t)round, 0, 16384);
        uint32_t blk = (uint32_t)(round * 37 % 300);
        n += wire_encode_piece_header(out + n, (uint32_t)round, 0, blk);
        for (uint32_t i = 0; i < blk; i++)
            out[n++] = (uint8_t)(i * 31 + (uint32_t)round);
        n += wire_encode_index(out + n, WIRE_SUGGEST, 99);
        n += wire_encode_index(out + n, WIRE_ALLOWED_FAST, 0);
        n += wire_encode_port(out + n, (uint16_t)(6881 + round));
        n += wire_encode_simple(out + n, round % 2 ? WIRE_CHOKE : WIRE_UNCHOKE);
        n += wire_encode_extended_header(out + n, 2, 3);
        out[n++] = 'a';
        out[n++] = 'b';
        out[n++] = (uint8_t)round;
        n += wire_encode_simple(out + n, WIRE_NOT_INTERESTED);
        n += wire_encode_simple(out + n, WIRE_HAVE_ALL);
        n += wire_encode_simple(out + n, WIRE_HAVE_NONE);
        cr_assert(n < cap);
    }
    return n;
}

Test(wire, chunking_does_not_change_messages)
{
    static uint8_t buf[32768];
    size_t len = build_mixed_stream(buf, sizeof buf);
    const wire_limits lim = {.piece_count = 100, .max_msg_len = 1024};
    run whole = decode_chunked(buf, len, 0, &lim);
    cr_assert_eq(whole.last, WIRE_READY);
    cr_assert(whole.finished_clean);
    cr_assert_eq(whole.n, 3 + 20 * 15, "got %zu messages", whole.n);
    cr_assert_eq(whole.consumed, len);
    /* the re-encoded messages concatenate back to the input */
    size_t pos = 0;
    for (size_t i = 0; i < whole.n; i++) {
        cr_assert_arr_eq(whole.r[i].enc, buf + pos, whole.r[i].enc_len, "message %zu", i);
        pos += whole.r[i].enc_len;
        cr_assert_eq(whole.r[i].end, pos);
    }
    cr_assert_eq(pos, len);
    const size_t chunks[] = {1, 2, 3, 4, 5, 7, 13, 17, 64, 68, 69, 1000};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        run x = decode_chunked(buf, len, chunks[c], &lim);
        assert_same_runs(&whole, &x);
        run_free(&x);
    }
    run_free(&whole);
}

Test(wire, chunking_does_not_change_errors)
{
    static uint8_t buf[32768];
    size_t len = build_mixed_stream(buf, sizeof buf);
    /* corrupt the bitfield's spare bits: an error at a fixed offset */
    const wire_limits lim = {.piece_count = 100};
    size_t bf_last = 0;
    for (size_t i = 0; i + 5 < len; i++)
        if (buf[i] == 0 && buf[i + 1] == 0 && buf[i + 2] == 0 && buf[i + 3] == 14 && buf[i + 4] == 5) {
            bf_last = i + 4 + 13;
            break;
        }
    cr_assert(bf_last > 0);
    buf[bf_last] |= 0x01;
    run whole = decode_chunked(buf, len, 0, &lim);
    cr_assert_eq(whole.last, WIRE_ERROR);
    cr_assert_eq(whole.err.code, WIRE_ERR_BITFIELD_SPARE);
    cr_assert_eq(whole.err.offset, bf_last);
    cr_assert_eq(whole.consumed, bf_last + 1);
    cr_assert_eq(whole.n, 2);
    for (size_t c = 1; c < 40; c += 3) {
        run x = decode_chunked(buf, len, c, &lim);
        assert_same_runs(&whole, &x);
        run_free(&x);
    }
    run_free(&whole);
}

/* ---- malformed input ---- */

Test(wire, wrong_pstrlen_rejected_at_first_byte)
{
    uint8_t res[8] = {0}, buf[WIRE_HANDSHAKE_LEN];
    wire_encode_handshake(buf, res, IH, PID);
    buf[0] = 18;
    size_t used;
    wire_error e;
    cr_assert_eq(feed_expect_error(buf, sizeof buf, NULL, &used, &e), WIRE_ERR_PSTRLEN);
    cr_assert_eq(used, 1);
    cr_assert_eq(e.offset, 0);
    cr_assert_eq(e.value, 18);
}

Test(wire, wrong_pstr_rejected_at_the_wrong_byte)
{
    uint8_t res[8] = {0}, buf[WIRE_HANDSHAKE_LEN];
    wire_encode_handshake(buf, res, IH, PID);
    buf[11] = 'X'; /* the space in "BitTorrent protocol" */
    size_t used;
    wire_error e;
    cr_assert_eq(feed_expect_error(buf, sizeof buf, NULL, &used, &e), WIRE_ERR_PSTR);
    cr_assert_eq(used, 12);
    cr_assert_eq(e.offset, 11);
    cr_assert_eq(e.value, 'X');
    char text[160];
    wire_error_format(&e, text, sizeof text);
    cr_assert(strstr(text, "offset 11") != NULL, "%s", text);

    /* an HTTP request sent to the peer port */
    const uint8_t http[] = "GET / HTTP/1.1\r\n\r\n";
    cr_assert_eq(feed_expect_error(http, sizeof http - 1, NULL, &used, &e), WIRE_ERR_PSTRLEN);
    cr_assert_eq(used, 1);
}

Test(wire, fixed_lengths_checked_exactly)
{
    struct { uint8_t id; uint32_t good; } ids[] = {{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 5}, {6, 13}, {8, 13},
                                                   {9, 3}, {13, 5}, {14, 1}, {15, 1}, {16, 13}, {17, 5}};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        const uint32_t bad[] = {ids[i].good - 1, ids[i].good + 1, ids[i].good + 100};
        for (size_t b = 0; b < 3; b++) {
            if (bad[b] == 0)
                continue; /* that is a keep-alive */
            uint8_t buf[200] = {0};
            buf[0] = (uint8_t)(bad[b] >> 24);
            buf[1] = (uint8_t)(bad[b] >> 16);
            buf[2] = (uint8_t)(bad[b] >> 8);
            buf[3] = (uint8_t)bad[b];
            buf[4] = ids[i].id;
            size_t used;
            wire_error e;
            cr_assert_eq(feed_expect_error(buf, 4 + bad[b], &no_hs, &used, &e), WIRE_ERR_BAD_LENGTH,
                         "id %u length %u", ids[i].id, bad[b]);
            cr_assert_eq(used, 5, "rejected at the id byte, before the payload");
            cr_assert_eq(e.msg_offset, 0);
            cr_assert_eq(e.value, bad[b]);
            cr_assert_eq(e.msg_id, ids[i].id);
        }
    }
    /* request with 12 bytes of payload after a valid message: offsets are stream offsets */
    uint8_t buf[64];
    size_t n = wire_encode_simple(buf, WIRE_INTERESTED);
    const uint8_t req12[] = {0, 0, 0, 12, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40};
    memcpy(buf + n, req12, sizeof req12);
    size_t used;
    wire_error e;
    cr_assert_eq(feed_expect_error(buf, n + sizeof req12, &no_hs, &used, &e), WIRE_ERR_BAD_LENGTH);
    cr_assert_eq(e.msg_offset, 5);
    cr_assert_eq(used, 10);
    char text[160];
    wire_error_format(&e, text, sizeof text);
    cr_assert(strstr(text, "request at offset 5") != NULL, "%s", text);
    cr_assert(strstr(text, "length 12") != NULL, "%s", text);

    /* piece shorter than its 8-byte index/begin, extended without its id byte */
    const uint8_t piece8[] = {0, 0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(feed_expect_error(piece8, sizeof piece8, &no_hs, &used, &e), WIRE_ERR_BAD_LENGTH);
    cr_assert_eq(used, 5);
    const uint8_t ext1[] = {0, 0, 0, 1, 20};
    cr_assert_eq(feed_expect_error(ext1, sizeof ext1, &no_hs, &used, &e), WIRE_ERR_BAD_LENGTH);
}

Test(wire, huge_prefix_rejected_after_four_bytes)
{
    uint8_t buf[64] = {0x80, 0, 0, 0, 7}; /* 2 GiB */
    wire_limits lim = {.skip_handshake = true, .max_msg_len = 32 * 1024 + 13};
    wire_decoder d;
    wire_decoder_init(&d, &lim);
    size_t used = 0;
    wire_msg m;
    cr_assert_eq(wire_feed(&d, buf, sizeof buf, &used, &m), WIRE_ERROR);
    cr_assert_eq(used, 4);
    cr_assert_eq(wire_decoder_error(&d)->code, WIRE_ERR_TOO_LONG);
    cr_assert_eq(wire_decoder_error(&d)->value, 0x80000000u);
    cr_assert_null(d.buf, "nothing buffered");
    wire_decoder_free(&d);

    /* byte by byte: the error comes with the fourth byte */
    wire_decoder_init(&d, &lim);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(wire_feed(&d, buf + i, 1, &used, &m), WIRE_NEED_MORE);
        cr_assert_eq(used, 1);
    }
    cr_assert_eq(wire_feed(&d, buf + 3, 1, &used, &m), WIRE_ERROR);
    cr_assert_eq(used, 1);
    cr_assert_eq(wire_decoder_offset(&d), 4);
    wire_decoder_free(&d);

    /* exactly the limit passes the prefix check; one more does not */
    uint8_t at[5] = {0, 0, 0x80, 0x0d, 7};
    wire_decoder_init(&d, &lim);
    cr_assert_eq(wire_feed(&d, at, 5, &used, &m), WIRE_NEED_MORE);
    wire_decoder_free(&d);
    at[3] = 0x0e;
    wire_error e;
    cr_assert_eq(feed_expect_error(at, 5, &lim, &used, &e), WIRE_ERR_TOO_LONG);
    cr_assert_eq(used, 4);

    /* the default limit applies when max_msg_len is 0 */
    const uint8_t big[] = {0, 0x10, 0, 0, 7};
    cr_assert_eq(feed_expect_error(big, sizeof big, &no_hs, &used, &e), WIRE_ERR_TOO_LONG);
}

Test(wire, bitfield_length_and_spare_bits)
{
    const wire_limits lim = {.skip_handshake = true, .piece_count = 20};
    size_t used;
    wire_error e;
    /* 2 bytes for 20 pieces */
    const uint8_t short_bf[] = {0, 0, 0, 3, 5, 0xff, 0xff};
    cr_assert_eq(feed_expect_error(short_bf, sizeof short_bf, &lim, &used, &e), WIRE_ERR_BITFIELD_LENGTH);
    cr_assert_eq(used, 5);
    cr_assert_eq(e.value, 3);
    /* 4 bytes for 20 pieces */
    const uint8_t long_bf[] = {0, 0, 0, 5, 5, 0xff, 0xff, 0xf0, 0};
    cr_assert_eq(feed_expect_error(long_bf, sizeof long_bf, &lim, &used, &e), WIRE_ERR_BITFIELD_LENGTH);
    /* spare bit set (piece 20 would be bit 0x08 of byte 2) */
    const uint8_t spare[] = {0, 0, 0, 4, 5, 0xff, 0xff, 0xf8};
    cr_assert_eq(feed_expect_error(spare, sizeof spare, &lim, &used, &e), WIRE_ERR_BITFIELD_SPARE);
    cr_assert_eq(used, sizeof spare);
    cr_assert_eq(e.offset, 7);
    cr_assert_eq(e.value, 0xf8);
    /* spare bit set in a bitfield fed in two parts (buffered path) */
    wire_decoder d;
    wire_decoder_init(&d, &lim);
    wire_msg m;
    cr_assert_eq(wire_feed(&d, spare, 6, &used, &m), WIRE_NEED_MORE);
    cr_assert_eq(wire_feed(&d, spare + 6, 2, &used, &m), WIRE_ERROR);
    cr_assert_eq(wire_decoder_error(&d)->code, WIRE_ERR_BITFIELD_SPARE);
    wire_decoder_free(&d);
    /* unknown piece count: any length up to the limit is accepted */
    run x = decode_chunked(long_bf, sizeof long_bf, 0, &no_hs);
    cr_assert_eq(x.n, 1);
    cr_assert_eq(x.r[0].msg.u.bitfield.len, 4);
    run_free(&x);
}

Test(wire, bitfield_may_exceed_max_msg_len_when_piece_count_known)
{
    /* 100,000 pieces: 12,500-byte bitfield with a 1 KiB message limit */
    const uint32_t pieces = 100000, bytes = 12500;
    uint8_t *buf = calloc(1, 5 + bytes + 17);
    wire_encode_bitfield_header(buf, bytes);
    memset(buf + 5, 0xff, bytes);
    const wire_limits lim = {.skip_handshake = true, .max_msg_len = 1024, .piece_count = pieces};
    run x = decode_chunked(buf, 5 + bytes, 0, &lim);
    cr_assert_eq(x.n, 1);
    cr_assert_eq(x.r[0].msg.u.bitfield.len, bytes);
    run_free(&x);
    run y = decode_chunked(buf, 5 + bytes, 333, &lim);
    cr_assert_eq(y.n, 1);
    cr_assert_eq(y.r[0].enc_len, 5 + bytes);
    cr_assert_arr_eq(y.r[0].enc, buf, 5 + bytes);
    run_free(&y);
    /* but another message of that size is still too long (checked at its id byte) */
    wire_encode_piece_header(buf, 0, 0, bytes - 8);
    size_t used;
    wire_error e;
    cr_assert_eq(feed_expect_error(buf, 5 + bytes, &lim, &used, &e), WIRE_ERR_TOO_LONG);
    cr_assert_eq(used, 5);
    /* and a prefix above the bitfield's size fails at once */
    wire_encode_bitfield_header(buf, bytes + 1);
    cr_assert_eq(feed_expect_error(buf, 5 + bytes, &lim, &used, &e), WIRE_ERR_TOO_LONG);
    cr_assert_eq(used, 4);
    free(buf);
}

Test(wire, piece_index_checked_against_piece_count)
{
    const wire_limits lim = {.skip_handshake = true, .piece_count = 10};
    uint8_t buf[WIRE_PIECE_HEADER_LEN + 4];
    size_t used;
    wire_error e;
    wire_encode_index(buf, WIRE_HAVE, 10);
    cr_assert_eq(feed_expect_error(buf, WIRE_INDEX_MSG_LEN, &lim, &used, &e), WIRE_ERR_PIECE_INDEX);
    cr_assert_eq(e.offset, 5);
    cr_assert_eq(e.value, 10);
    wire_encode_block(buf, WIRE_REQUEST, 11, 0, 16384);
    cr_assert_eq(feed_expect_error(buf, WIRE_BLOCK_MSG_LEN, &lim, &used, &e), WIRE_ERR_PIECE_INDEX);
    cr_assert_eq(used, WIRE_BLOCK_MSG_LEN);
    wire_encode_piece_header(buf, 0xffffffff, 0, 4);
    cr_assert_eq(feed_expect_error(buf, sizeof buf, &lim, &used, &e), WIRE_ERR_PIECE_INDEX);
    /* index 9 is fine */
    wire_encode_index(buf, WIRE_ALLOWED_FAST, 9);
    run x = decode_chunked(buf, WIRE_INDEX_MSG_LEN, 1, &lim);
    cr_assert_eq(x.n, 1);
    cr_assert_eq(x.r[0].msg.u.index, 9);
    run_free(&x);
}

Test(wire, piece_count_set_after_handshake)
{
    uint8_t buf[128];
    uint8_t res[8] = {0};
    size_t n = wire_encode_handshake(buf, res, IH, PID);
    n += wire_encode_index(buf + n, WIRE_HAVE, 50);
    wire_decoder d;
    wire_decoder_init(&d, NULL);
    size_t used;
    wire_msg m;
    cr_assert_eq(wire_feed(&d, buf, n, &used, &m), WIRE_READY);
    cr_assert_eq(used, WIRE_HANDSHAKE_LEN);
    wire_decoder_set_piece_count(&d, 40);
    cr_assert_eq(wire_feed(&d, buf + used, n - used, &used, &m), WIRE_ERROR);
    cr_assert_eq(wire_decoder_error(&d)->code, WIRE_ERR_PIECE_INDEX);
    cr_assert_eq(wire_decoder_error(&d)->msg_offset, WIRE_HANDSHAKE_LEN);
    wire_decoder_free(&d);
}

Test(wire, unknown_id_is_an_error_by_default)
{
    const uint8_t ids[] = {10, 11, 12, 18, 19, 21, 255};
    for (size_t i = 0; i < sizeof ids; i++) {
        const uint8_t buf[] = {0, 0, 0, 3, ids[i], 1, 2};
        size_t used;
        wire_error e;
        cr_assert_eq(feed_expect_error(buf, sizeof buf, &no_hs, &used, &e), WIRE_ERR_UNKNOWN_ID);
        cr_assert_eq(used, 5);
        cr_assert_eq(e.offset, 4);
        cr_assert_eq(e.value, ids[i]);
    }
}

Test(wire, truncated_stream)
{
    uint8_t buf[WIRE_HANDSHAKE_LEN];
    size_t n = wire_encode_simple(buf, WIRE_UNCHOKE);
    n += wire_encode_block(buf + n, WIRE_REQUEST, 1, 2, 3);
    for (size_t cut = 0; cut <= n; cut++) {
        run x = decode_chunked(buf, cut, 0, &no_hs);
        bool boundary = cut == 0 || cut == 5 || cut == n;
        cr_assert_eq(x.finished_clean, boundary, "cut at %zu", cut);
        if (!boundary) {
            cr_assert_eq(x.err.code, WIRE_ERR_TRUNCATED);
            cr_assert_eq(x.err.msg_offset, cut < 5 ? 0 : 5);
            cr_assert_eq(x.err.offset, cut);
        }
        run_free(&x);
    }
    /* a handshake cut short */
    uint8_t res[8] = {0};
    wire_encode_handshake(buf, res, IH, PID);
    run x = decode_chunked(buf, 50, 0, NULL);
    cr_assert_not(x.finished_clean);
    cr_assert_eq(x.err.code, WIRE_ERR_TRUNCATED);
    cr_assert_eq(x.err.value, 50);
    run_free(&x);
}

Test(wire, empty_input_in_every_state)
{
    /* an empty (even NULL) input is accepted anywhere and changes nothing */
    uint8_t buf[WIRE_HANDSHAKE_LEN + WIRE_BLOCK_MSG_LEN + WIRE_PIECE_HEADER_LEN + 100];
    uint8_t res[8] = {0};
    size_t n = wire_encode_handshake(buf, res, IH, PID);
    n += wire_encode_block(buf + n, WIRE_REQUEST, 1, 2, 3);
    n += wire_encode_piece_header(buf + n, 1, 0, 100);
    memset(buf + n, 7, 100);
    n += 100;
    wire_decoder d;
    wire_decoder_init(&d, NULL);
    int msgs = 0;
    for (size_t i = 0; i <= n; i++) {
        size_t used = 1;
        wire_msg m;
        cr_assert_eq(wire_feed(&d, NULL, 0, &used, &m), WIRE_NEED_MORE, "at %zu", i);
        cr_assert_eq(used, 0);
        cr_assert_eq(wire_decoder_offset(&d), i);
        if (i < n) {
            wire_status st = wire_feed(&d, buf + i, 1, &used, &m);
            cr_assert_neq(st, WIRE_ERROR);
            msgs += st == WIRE_READY;
        }
    }
    cr_assert_eq(msgs, 3);
    cr_assert(wire_finish(&d));
    wire_decoder_free(&d);
}

Test(wire, strerror_names_every_code)
{
    for (int c = WIRE_ERR_NONE; c <= WIRE_ERR_TRUNCATED; c++) {
        const char *s = wire_strerror((wire_err)c);
        cr_assert(s && strlen(s) > 5);
        cr_assert(strcmp(s, "unknown error code") != 0);
        wire_error e = {.code = (wire_err)c, .msg_offset = 17, .offset = 21, .value = 5, .msg_id = 6};
        char text[200];
        cr_assert(wire_error_format(&e, text, sizeof text) > 0);
        cr_assert(strstr(text, s) != NULL, "%s", text);
    }
    cr_assert_str_eq(wire_strerror((wire_err)999), "unknown error code");
    cr_assert_str_eq(wire_msg_name(WIRE_ALLOWED_FAST), "allowed_fast");
    cr_assert_str_eq(wire_msg_name((wire_msg_type)12), "?");
}
