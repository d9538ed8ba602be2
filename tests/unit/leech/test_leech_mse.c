/* Tests for leech/leech_mse.c: a leecher with encryption on against the seeder's own MSE responder (core/mse.h):
 * the handshake completes with RC4 or plaintext as offered, the BitTorrent handshake arrives as the initial payload,
 * everything after it is (or is not) encrypted both ways, nothing but the handshake leaves before the seeder answered,
 * and a seeder that answers garbage ends the connection as a protocol error. */
#include <criterion/criterion.h>
#include <string.h>

#include "leech.h"
#include "leech_sink.h"
#include "mse.h"
#include "mse_crypto.h"
#include "stream_cipher.h"
#include "wire.h"

#define SIZE (3 * LK_BLOCK)

static uint8_t data[SIZE];
static lk_torrent T;

static bool find_ih(void *ctx, const uint8_t req2[20], uint8_t out[20])
{
    (void)ctx;
    uint8_t want[20];
    hk_mse_hash("req2", T.info_hash, 20, NULL, 0, want);
    if (memcmp(want, req2, 20) != 0)
        return false;
    memcpy(out, T.info_hash, 20);
    return true;
}

static void setup_torrent(void)
{
    for (size_t i = 0; i < SIZE; i++)
        data[i] = (uint8_t)(i * 13 + 1);
    memset(&T, 0, sizeof T);
    cr_assert_eq(lk_torrent_layout(&T, SIZE, LK_BLOCK), 0);
    memset(T.info_hash, 0x5a, 20);
    T.block_data = data;
}

/* The seeder's side of one connection: its responder until done, then its ciphers. */
typedef struct seeder {
    hk_mem mem;
    hk_mse *mse;
    hk_mse_result res;
    hk_mse_status st;
    uint8_t plain[16384]; /* what the leecher sent after the handshake, decrypted */
    size_t nplain;
} seeder;

/* Hands the leecher's new bytes to the seeder side: through the responder while it runs, then decrypted. */
static void seeder_take(seeder *sd, sink *s)
{
    const uint8_t *p = s->out + s->taken;
    size_t n = s->n - s->taken;
    s->taken = s->n;
    if (sd->st == HK_MSE_NEED_MORE) {
        size_t used = 0;
        sd->st = hk_mse_feed(sd->mse, p, n, &used, &sd->res);
        cr_assert_neq(sd->st, HK_MSE_FAIL, "%s", hk_mse_error(sd->mse));
        p += used;
        n -= used;
        if (sd->st == HK_MSE_NEED_MORE)
            return;
    }
    cr_assert_leq(sd->nplain + n, sizeof sd->plain);
    hk_mse_rx_apply(&sd->res.rx, p, sd->plain + sd->nplain, n);
    sd->nplain += n;
}

/* The seeder sends b (encrypted when RC4 was selected, the responder's own bytes as they are). */
static void seeder_send(seeder *sd, lk_peer *l, const uint8_t *b, size_t n)
{
    uint8_t e[WIRE_PIECE_HEADER_LEN + LK_BLOCK + 64];
    cr_assert_leq(n, sizeof e);
    if (sd->res.selected == HK_MSE_CRYPTO_RC4)
        hk_cipher_apply(sd->res.send, b, e, n);
    else
        memcpy(e, b, n);
    lk_feed(l, e, n);
}

/* Runs the MSE exchange between a fresh leecher (policy: what it offers) and the responder until both are done. */
static void handshake(lk_peer *l, lk_params *par, sink *s, seeder *sd)
{
    lk_io io = sink_io(s);
    lk_init(l, par, &T, io, 3, 777);
    lk_connection_start(l);
    lk_connected(l);
    cr_assert_gt(s->n, 95, "Ya (96 bytes) and PadA go out at once");
    uint8_t priv[20], padb[40];
    memset(priv, 0x21, sizeof priv);
    memset(padb, 0x42, sizeof padb);
    sd->mse = hk_mse_new(&sd->mem, HK_ENC_ALLOW, priv, padb, sizeof padb, find_ih, NULL);
    cr_assert_not_null(sd->mse);
    sd->st = HK_MSE_NEED_MORE;
    for (int round = 0; round < 6 && (sd->st != HK_MSE_DONE || !l->mse.done); round++) {
        seeder_take(sd, s);
        size_t n;
        const uint8_t *out = hk_mse_output(sd->mse, &n);
        if (n > 0) {
            uint8_t copy[2048];
            cr_assert_leq(n, sizeof copy);
            memcpy(copy, out, n);
            lk_feed(l, copy, n);
        }
    }
    cr_assert_eq(sd->st, HK_MSE_DONE);
    cr_assert(l->mse.done);
    seeder_take(sd, s);
    cr_assert_geq(sd->nplain, WIRE_HANDSHAKE_LEN, "the BitTorrent handshake came as the initial payload");
    cr_assert_eq(memcmp(sd->plain + 28, T.info_hash, 20), 0);
    cr_assert_eq(memcmp(sd->plain + 1, "BitTorrent protocol", 19), 0);
}

/* The messages the seeder side decrypted from offset `from` of plain: their types into types; returns how many. */
static int messages(const seeder *sd, size_t from, wire_msg_type *types)
{
    wire_limits lim = {.skip_handshake = true};
    wire_decoder d;
    wire_decoder_init(&d, &lim);
    int k = 0;
    while (from < sd->nplain) {
        size_t used = 0;
        wire_msg m;
        wire_status st = wire_feed(&d, sd->plain + from, sd->nplain - from, &used, &m);
        from += used;
        cr_assert_neq(st, WIRE_ERROR);
        if (st == WIRE_NEED_MORE)
            break;
        types[k++] = m.type;
    }
    wire_decoder_free(&d);
    return k;
}

static void download_through(lk_encryption enc, uint32_t want_selected)
{
    setup_torrent();
    lk_params par = {.behaviour = LK_NORMAL, .strategy = LK_SEQUENTIAL, .pipeline = 3, .encryption = enc};
    sink s = {0};
    seeder sd = {0};
    lk_peer l;
    handshake(&l, &par, &s, &sd);
    cr_assert_eq(sd.res.selected, want_selected);
    cr_assert_eq(l.mse.rc4, want_selected == HK_MSE_CRYPTO_RC4);
    if (want_selected == HK_MSE_CRYPTO_RC4)
        cr_assert_neq(memcmp(s.out + s.n - WIRE_HANDSHAKE_LEN, sd.plain, 20), 0, "not sent in the clear");

    uint8_t hs[WIRE_HANDSHAKE_LEN], reserved[WIRE_RESERVED_LEN] = {0}, id[20] = {0};
    size_t mark = WIRE_HANDSHAKE_LEN;
    seeder_send(&sd, &l, hs, wire_encode_handshake(hs, reserved, T.info_hash, id));
    uint8_t b[WIRE_SIMPLE_LEN];
    seeder_send(&sd, &l, b, wire_encode_simple(b, WIRE_UNCHOKE));
    seeder_take(&sd, &s);
    wire_msg_type types[16];
    int k = messages(&sd, mark, types);
    cr_assert_eq(k, 4, "interested, then the pipeline's 3 requests: %d", k);
    cr_assert_eq(types[0], WIRE_INTERESTED);
    cr_assert_eq(types[1], WIRE_REQUEST);
    for (uint32_t blk = 0; blk < 3; blk++) {
        uint8_t msg[WIRE_PIECE_HEADER_LEN + LK_BLOCK];
        size_t h = wire_encode_piece_header(msg, blk, 0, LK_BLOCK);
        memcpy(msg + h, data + (size_t)blk * LK_BLOCK, LK_BLOCK);
        seeder_send(&sd, &l, msg, h + LK_BLOCK);
    }
    cr_assert_eq(l.bad_blocks, 0, "every block decrypted to the verified data");
    cr_assert(l.completed);
    cr_assert_eq(s.why, LK_END_COMPLETE);
    lk_free(&l);
    hk_mse_rx_free(&sd.res.rx);
    hk_cipher_free(sd.res.send);
    hk_mse_free(sd.mse);
    cr_assert_eq(sd.mem.bytes, 0);
    cr_assert_eq(l.mse.mem.bytes, 0, "the leecher's MSE state is freed");
}

Test(leech_mse, rc4_both_ways_downloads_and_verifies)
{
    download_through(LK_ENC_RC4, HK_MSE_CRYPTO_RC4);
}

Test(leech_mse, plaintext_after_the_handshake_downloads_and_verifies)
{
    download_through(LK_ENC_PLAINTEXT, HK_MSE_CRYPTO_PLAIN);
}

Test(leech_mse, nothing_but_the_handshake_leaves_before_the_seeder_answers)
{
    setup_torrent();
    lk_params par = {.behaviour = LK_NORMAL, .pipeline = 2, .encryption = LK_ENC_RC4};
    sink s = {0};
    lk_peer l;
    lk_io io = sink_io(&s);
    lk_init(&l, &par, &T, io, 3, 777);
    lk_connection_start(&l);
    lk_connected(&l);
    size_t first = s.n;
    cr_assert_lt(first, 96 + 64, "Ya and at most 63 bytes of PadA");
    lk_keepalive(&l);
    cr_assert_eq(s.n, first, "a keep-alive before the answer is dropped");
    lk_free(&l);
}

Test(leech_mse, a_garbage_answer_ends_the_connection_as_the_seeders_error)
{
    setup_torrent();
    lk_params par = {.behaviour = LK_NORMAL, .pipeline = 2, .encryption = LK_ENC_RC4};
    sink s = {0};
    lk_peer l;
    lk_io io = sink_io(&s);
    lk_init(&l, &par, &T, io, 3, 777);
    lk_connection_start(&l);
    lk_connected(&l);
    uint8_t junk[1200];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 31 + 7);
    lk_feed(&l, junk, sizeof junk); /* Yb, then no VC within PadB's bound */
    cr_assert_eq(l.mse_failures, 1);
    cr_assert_eq(s.ends, 1);
    cr_assert_eq(s.why, LK_END_CLOSED_BY_SEEDER);
    lk_feed(&l, junk, sizeof junk); /* ended: ignored */
    cr_assert_eq(s.ends, 1);
    lk_free(&l);
}
