/* Fuzz target for leech/: a leecher (any behaviour, strategy, pipeline, fast or not, verification on or off) fed
 * whatever a hostile seeder sends after a valid handshake, in input-derived chunk sizes. Aborts unless its
 * invariants hold: the connection ends at most once and nothing is sent after it, outstanding requests never exceed
 * the pipeline (flooders aside), no block is counted twice, the bytes received never exceed the torrent, every
 * request it sends is for a block of the torrent (invalid peers aside), completion means every block.
 *
 * With encryption (byte 0 / 30 mod 3: none, RC4, plaintext) the stream is the seeder's MSE answer and what follows it
 * (leech_mse.c against garbage or a partial handshake); what the peer sends is then not decoded.
 *
 * Input layout: byte 0 behaviour (mod 10), byte 1 bits 0-3 pipeline - 1, bit 4 sequential, bit 5 fast, bit 6
 * verification, bit 7 the seeder's handshake offers the fast extension; byte 2 chunking seed; the rest is the
 * seeder's stream after its handshake (at most 4096 bytes used). */
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "leech.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PLEN (2 * LK_BLOCK)
#define SIZE (2 * PLEN + 1000)
#define MAX_STREAM 4096u

typedef struct sink {
    int ends;
    bool after_end, raw; /* raw: MSE bytes, not decoded */
    uint32_t sent_requests, bad_requests;
    wire_decoder dec;
    const lk_torrent *t;
} sink;

static void s_send(void *ctx, const uint8_t *b, size_t n)
{
    sink *s = ctx;
    if (s->ends)
        s->after_end = true;
    while (n > 0 && !s->raw) { /* decode what the peer says: every request must name a block of the torrent */
        size_t used = 0;
        wire_msg m;
        wire_status st = wire_feed(&s->dec, b, n, &used, &m);
        b += used;
        n -= used;
        if (st == WIRE_ERROR)
            abort();
        if (st == WIRE_NEED_MORE)
            break;
        if (m.type == WIRE_REQUEST) {
            s->sent_requests++;
            uint32_t blk = m.u.block.index * s->t->lay.bpp + m.u.block.begin / LK_BLOCK;
            if (m.u.block.begin % LK_BLOCK || blk >= s->t->lay.nblocks || m.u.block.length != lk_block_len(s->t, blk))
                s->bad_requests++;
        }
    }
}

static void s_end(void *ctx, lk_end why, bool fin)
{
    (void)why;
    (void)fin;
    ((sink *)ctx)->ends++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t content[SIZE], digests[8][20];
    static lk_torrent t;
    if (!t.lay.nblocks) {
        for (size_t i = 0; i < SIZE; i++)
            content[i] = (uint8_t)(i * 7 + 3);
        if (lk_torrent_layout(&t, SIZE, PLEN) < 0)
            abort();
        for (uint32_t b = 0; b < t.lay.nblocks; b++)
            SHA1(content + (size_t)b * LK_BLOCK, lk_block_len(&t, b), digests[b]);
        memset(t.info_hash, 0xab, 20);
    }
    if (size < 3)
        return 0;
    lk_torrent tt = t;
    tt.block_sha1 = data[1] & 0x40 ? (const uint8_t(*)[20])digests : NULL;
    lk_params par = {.behaviour = (lk_behaviour)(data[0] % 10), .strategy = data[1] & 0x10 ? LK_SEQUENTIAL : LK_RANDOM,
                     .pipeline = (data[1] & 15u) + 1, .fast = data[1] & 0x20, .flood_rate = 3,
                     .invalid = (lk_invalid)(data[0] / 10 % 3), .vanish_after = 20000,
                     .encryption = (lk_encryption)(data[0] / 30 % 3)};
    sink s = {.t = &tt, .raw = par.encryption != LK_ENC_NONE};
    wire_decoder_init(&s.dec, NULL);
    lk_io io = {.ctx = &s, .send = s_send, .end = s_end};
    lk_peer l;
    lk_init(&l, &par, &tt, io, 1, data[2]);
    lk_connection_start(&l);
    lk_connected(&l);
    uint8_t reserved[WIRE_RESERVED_LEN] = {0}, id[20] = {0}, hs[WIRE_HANDSHAKE_LEN];
    if (data[1] & 0x80)
        wire_reserved_set_fast(reserved);
    wire_reserved_set_extended(reserved); /* so a magnet peer's ut_metadata fetch meets the stream */
    if (!s.raw)
        lk_feed(&l, hs, wire_encode_handshake(hs, reserved, tt.info_hash, id));
    const uint8_t *p = data + 3;
    size_t n = size - 3 < MAX_STREAM ? size - 3 : MAX_STREAM;
    uint32_t seed = data[2] | 1u;
    while (n > 0) {
        seed = seed * 1103515245u + 12345u;
        size_t chunk = 1 + (seed >> 16) % 64;
        if (chunk > n)
            chunk = n;
        lk_feed(&l, p, chunk);
        if (par.behaviour == LK_FLOODER)
            lk_flood(&l);
        if (par.behaviour != LK_FLOODER && l.book.nout > par.pipeline)
            abort();
        p += chunk;
        n -= chunk;
    }
    if (s.ends > 1 || s.after_end || l.book.received > tt.lay.nblocks || l.bytes > tt.lay.size)
        abort();
    if (l.completed && l.book.received != tt.lay.nblocks)
        abort();
    if (par.behaviour != LK_INVALID && s.bad_requests)
        abort();
    lk_free(&l);
    wire_decoder_free(&s.dec);
    return 0;
}
