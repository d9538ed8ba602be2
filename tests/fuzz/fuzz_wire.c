/* Fuzz target for core/wire: decodes the stream whole and in input-derived chunk sizes, aborts if the two disagree
 * (messages, offsets, error, error offsets), and checks every decoded message re-encodes to exactly its input bytes.
 *
 * With chunking seed bit 7 set, the chunked pass also trims the decoder after each message and each exhausted chunk
 * (as the seeder does): this must not change what is decoded, and the decoder must then hold at most twice the
 * payload bytes received of the message it is gathering.
 *
 * Input layout: byte 0 flags (bit 0 skip handshake, bit 1 allow unknown ids, bit 2 piece count known,
 * bits 3-7 max message length: 8 + 32 * value, so 8..1000), bytes 1-2 piece count - 1 (13 bits: 1..8192 pieces,
 * bitfields up to 1 KiB), byte 3 chunking seed; the rest is the stream, of which the first MAX_STREAM bytes are used.
 * Every limit, message kind and split is reachable within that (the limits are scaled to it), and the cap keeps the
 * target fast (>= 100k exec/s): longer inputs would only repeat messages. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The harness itself needs no coverage feedback (and no comparison tracing, which costs more than the decoder). */
#define HARNESS __attribute__((no_sanitize("coverage")))

#define MAX_STREAM 1024u
/* The whole-input pass's messages: their payload pointers point into the fuzzer's input (a payload inside the chunk
 * being fed is never copied), so they stay valid for the chunked pass to compare against. */
static wire_msg msgs[MAX_STREAM / 4 + 2]; /* a message is at least 4 bytes */
static uint64_t ends[MAX_STREAM / 4 + 2];
static uint8_t scratch[1u << 17];

typedef struct outcome {
    size_t nmsg;
    uint64_t consumed;
    wire_status last;
    wire_error err;
    bool clean;
} outcome;

HARNESS static void check_reencode(const wire_msg *m, const uint8_t *stream, uint64_t start, uint64_t end)
{
    size_t need = wire_encoded_len(m);
    if (need == 0 || need > sizeof scratch || need != end - start)
        abort();
    if (wire_encode_msg(scratch, sizeof scratch, m) != need)
        abort();
    if (memcmp(scratch, stream + start, need) != 0)
        abort();
}

HARNESS static bool bytes_eq(const uint8_t *a, const uint8_t *b, uint32_t n) { return n == 0 || memcmp(a, b, n) == 0; }

HARNESS static bool msg_eq(const wire_msg *a, const wire_msg *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case WIRE_HANDSHAKE:
        return memcmp(&a->u.handshake, &b->u.handshake, sizeof a->u.handshake) == 0;
    case WIRE_HAVE: case WIRE_SUGGEST: case WIRE_ALLOWED_FAST:
        return a->u.index == b->u.index;
    case WIRE_REQUEST: case WIRE_CANCEL: case WIRE_REJECT:
        return a->u.block.index == b->u.block.index && a->u.block.begin == b->u.block.begin &&
               a->u.block.length == b->u.block.length;
    case WIRE_PORT:
        return a->u.port == b->u.port;
    case WIRE_PIECE:
        return a->u.piece.index == b->u.piece.index && a->u.piece.begin == b->u.piece.begin &&
               a->u.piece.len == b->u.piece.len && bytes_eq(a->u.piece.data, b->u.piece.data, a->u.piece.len);
    case WIRE_BITFIELD:
        return a->u.bitfield.len == b->u.bitfield.len &&
               bytes_eq(a->u.bitfield.bits, b->u.bitfield.bits, a->u.bitfield.len);
    case WIRE_EXTENDED: case WIRE_UNKNOWN:
        return a->u.ext.id == b->u.ext.id && a->u.ext.len == b->u.ext.len &&
               bytes_eq(a->u.ext.payload, b->u.ext.payload, a->u.ext.len);
    default:
        return true; /* no fields */
    }
}

HARNESS static uint32_t next_rand(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* The whole-input pass's message number i, m, spanning [start, end) of the stream: the decoder is at a boundary there
 * and reports the handshake's fields, m re-encodes to exactly its bytes; it is kept for the chunked pass. */
HARNESS static void record_msg(const wire_decoder *d, const wire_msg *m, const uint8_t *s, uint64_t start, uint64_t end,
                               size_t i)
{
    if (wire_decoder_offset(d) != end || !wire_decoder_at_boundary(d))
        abort();
    if (m->type == WIRE_HANDSHAKE) {
        const uint8_t *ih = wire_decoder_info_hash(d), *res = wire_decoder_reserved(d);
        if (!ih || memcmp(ih, m->u.handshake.info_hash, 20) != 0)
            abort();
        if (!res || memcmp(res, m->u.handshake.reserved, WIRE_RESERVED_LEN) != 0)
            abort();
    }
    check_reencode(m, s, start, end);
    msgs[i] = *m;
    ends[i] = end;
}

/* After an error: it is sticky, and it lies inside what was consumed. */
HARNESS static void check_error_sticks(wire_decoder *d, const uint8_t *s, size_t n, const outcome *o)
{
    size_t used = 1;
    wire_msg m;
    if (wire_feed(d, s, n, &used, &m) != WIRE_ERROR || used != 0)
        abort();
    if (o->err.code == WIRE_ERR_NONE || o->err.offset >= o->consumed || o->err.msg_offset > o->err.offset)
        abort();
}

/* record: one call with everything; check each message re-encodes to its input bytes; store messages and ends.
 * Otherwise: chunk sizes drawn from the seed; compare each message and its end with the recorded ones. */
HARNESS static outcome run(const wire_limits *lim, const uint8_t *s, size_t n, uint8_t seed, bool record, size_t want_msgs)
{
    /* Each chunk draws its own scale, so one input is cut both finely and coarsely, anywhere. */
    static const uint32_t maxchunk[8] = {1, 2, 3, 5, 8, 17, 64, 1024};
    outcome o = {0};
    wire_decoder d;
    wire_decoder_init(&d, lim);
    uint32_t rs = 0x9e3779b9u ^ ((uint32_t)seed << 8) ^ (uint32_t)n;
    size_t pos = 0;
    uint64_t msg_start = 0;
    bool trim = !record && (seed & 0x80);
    o.last = WIRE_NEED_MORE;
    while (pos < n) {
        size_t chunk = n - pos;
        if (!record) {
            uint32_t r = next_rand(&rs);
            size_t c = 1 + (r >> 3) % maxchunk[r & 7];
            if (c < chunk)
                chunk = c;
        }
        size_t off = 0;
        while (off < chunk) {
            size_t used = 0;
            wire_msg m;
            wire_status st = wire_feed(&d, s + pos + off, chunk - off, &used, &m);
            if (used > chunk - off)
                abort();
            off += used;
            o.consumed += used;
            o.last = st;
            if (st == WIRE_ERROR)
                goto out;
            if (st == WIRE_NEED_MORE) {
                if (off != chunk)
                    abort();
                if (trim) {
                    wire_decoder_trim(&d);
                    /* what is held is bounded by what arrived of the current message (prefix and id: 5 bytes) */
                    if (wire_decoder_memory(&d) > 2 * (wire_decoder_offset(&d) - msg_start))
                        abort();
                }
                continue;
            }
            uint64_t end = pos + off;
            if (record)
                record_msg(&d, &m, s, msg_start, end, o.nmsg);
            else if (o.nmsg >= want_msgs || ends[o.nmsg] != end || !msg_eq(&msgs[o.nmsg], &m))
                abort();
            msg_start = end;
            o.nmsg++;
            if (trim) { /* m is compared: its payload is no longer used */
                wire_decoder_trim(&d);
                if (wire_decoder_memory(&d) != 0)
                    abort();
            }
        }
        pos += chunk;
    }
    o.clean = wire_finish(&d);
    if (!o.clean && wire_decoder_error(&d)->code != WIRE_ERR_TRUNCATED)
        abort();
out:
    o.err = *wire_decoder_error(&d);
    if (o.last == WIRE_ERROR)
        check_error_sticks(&d, s, n, &o);
    wire_decoder_free(&d);
    return o;
}

HARNESS int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    wire_limits lim = {0};
    lim.skip_handshake = data[0] & 1;
    lim.allow_unknown = (data[0] >> 1) & 1;
    if (data[0] & 4)
        lim.piece_count = (((uint32_t)data[1] << 8 | data[2]) & 0x1fffu) + 1;
    lim.max_msg_len = 8u + (uint32_t)(data[0] >> 3) * 32u;
    uint8_t seed = data[3];
    const uint8_t *s = data + 4;
    size_t n = size - 4;
    if (n > MAX_STREAM)
        n = MAX_STREAM;

    outcome whole = run(&lim, s, n, seed, true, 0);
    outcome split = run(&lim, s, n, seed, false, whole.nmsg);
    if (whole.nmsg != split.nmsg || whole.consumed != split.consumed || whole.last != split.last ||
        whole.clean != split.clean || whole.err.code != split.err.code || whole.err.offset != split.err.offset ||
        whole.err.msg_offset != split.err.msg_offset || whole.err.value != split.err.value ||
        whole.err.msg_id != split.err.msg_id)
        abort();
    if (whole.err.code != WIRE_ERR_NONE && (seed & 7) == 0) { /* formatting is slow: one input in 8 */
        char text[256];
        if (wire_error_format(&whole.err, text, sizeof text) <= 0)
            abort();
    }
    return 0;
}
