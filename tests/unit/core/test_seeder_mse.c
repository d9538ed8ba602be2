/* Unit tests for the seeder's MSE/PE path (core/seeder_mse.c) through the fake runtime, whose set_cipher encrypts
 * what the seeder sends: an encrypted client (core/mse_initiator) gets the handshake, HAVE_ALL and correct blocks
 * through RC4; plaintext selection; the policies; and the hostile cases (600 bytes of PadA, no req1, a stall, a wrong
 * SKEY, an IA naming another torrent, a replayed Ya) with the memory a stalled handshake holds. */
#define _GNU_SOURCE 1 /* memmem */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infohash.h"
#include "mse_crypto.h"
#include "mse_initiator.h"
#include "seeder_harness.h"
#include "seeder_internal.h"
#include "wire.h"

static harness h;

static void setup_with(const hk_config *c)
{
    h_init_rt(&h, c, true);
    cr_assert_eq(h_add_single(&h, 32768, 100000), HK_ADD_OK);
}

static void setup(void)
{
    setup_with(NULL);
}

static void teardown(void)
{
    h_free(&h);
}

TestSuite(seeder_mse, .init = setup, .fini = teardown);

static void restart(hk_encryption pol)
{
    h_free(&h);
    hk_config c;
    hk_config_defaults(&c);
    c.encryption = pol;
    setup_with(&c);
}

/* ---- an encrypted client ---- */

typedef struct client {
    int conn;
    hk_mse_init *a;
    hk_mse_status st;
    hk_mse_result res;
    size_t seen;                 /* bytes of the seeder's stream already taken */
    uint8_t *plain;              /* the seeder's BitTorrent stream, decrypted */
    size_t plain_len;
    uint8_t *sent;               /* every byte the client sent (for the replay test) */
    size_t sent_len;
} client;

static hk_mem cmem;
static const uint8_t *priv_override; /* client_start's private key when set */

static void deliver(client *cl, const uint8_t *b, size_t n)
{
    cl->sent = realloc(cl->sent, cl->sent_len + n + 1);
    memcpy(cl->sent + cl->sent_len, b, n);
    cl->sent_len += n;
    if (!fr_closed(h.fr, cl->conn)) /* a backend delivers nothing after close */
        h_recv(&h, cl->conn, b, n);
}

/* Sends the initiator's output, then reads what the seeder sent since the last call. */
static void pump(client *cl)
{
    for (int round = 0; round < 4; round++) {
        size_t n;
        const uint8_t *out = hk_mse_init_output(cl->a, &n);
        if (n)
            deliver(cl, out, n);
        size_t len;
        uint8_t *stream = fr_stream(h.fr, cl->conn, &len);
        size_t at = cl->seen;
        while (at < len && cl->st == HK_MSE_NEED_MORE) {
            size_t used = 0;
            cl->st = hk_mse_init_feed(cl->a, stream + at, len - at, &used, &cl->res);
            at += used;
        }
        if (cl->st == HK_MSE_DONE && at < len) {
            cl->plain = realloc(cl->plain, cl->plain_len + (len - at) + 1);
            hk_mse_rx_apply(&cl->res.rx, stream + at, cl->plain + cl->plain_len, len - at);
            cl->plain_len += len - at;
            at = len;
        }
        cl->seen = at;
        free(stream);
    }
}

static void hs_bytes(uint8_t out[WIRE_HANDSHAKE_LEN], const uint8_t *ih, bool fast, bool ext)
{
    uint8_t res[8] = {0};
    if (fast)
        wire_reserved_set_fast(res);
    if (ext)
        wire_reserved_set_extended(res);
    wire_encode_handshake(out, res, ih, (const uint8_t *)"-TS0001-abcdefghijkl");
}

/* Accepts conn c and starts an initiator (IA = a fast + extended handshake when with_ia). */
static void client_start(client *cl, int c, uint32_t provide, bool with_ia, size_t pad_a, size_t pad_c,
                         const uint8_t *skey)
{
    memset(cl, 0, sizeof *cl);
    cl->conn = c;
    cr_assert_not_null(h_accept(&h, c, 1u << 20));
    uint8_t priv[20], ia[WIRE_HANDSHAKE_LEN];
    static uint8_t pad[1024];
    for (int i = 0; i < 20; i++)
        priv[i] = (uint8_t)(c * 31 + i * 7 + 1);
    if (priv_override)
        memcpy(priv, priv_override, 20);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = (uint8_t)(i * 13 + (size_t)c);
    hs_bytes(ia, h.ih, true, true);
    hk_mse_init_opts o = {.priv = priv, .provide = provide, .pad = pad, .pad_a_len = pad_a, .pad_c_len = pad_c,
                          .ia = with_ia ? ia : NULL, .ia_len = with_ia ? sizeof ia : 0};
    memcpy(o.skey, skey ? skey : h.ih, 20);
    cl->a = hk_mse_init_new(&cmem, &o);
    cr_assert_not_null(cl->a);
    pump(cl);
}

/* Sends BitTorrent bytes as the client would after the handshake (RC4 when selected). */
static void client_send(client *cl, const uint8_t *b, size_t n)
{
    uint8_t *e = malloc(n);
    memcpy(e, b, n);
    if (cl->res.selected == HK_MSE_CRYPTO_RC4)
        hk_cipher_apply(cl->res.send, e, e, n);
    deliver(cl, e, n);
    free(e);
    pump(cl);
}

static void client_simple(client *cl, wire_msg_type t)
{
    uint8_t b[WIRE_SIMPLE_LEN];
    wire_encode_simple(b, t);
    client_send(cl, b, sizeof b);
}

static void client_free(client *cl)
{
    hk_mse_init_free(cl->a);
    hk_mse_rx_free(&cl->res.rx);
    hk_cipher_free(cl->res.send);
    free(cl->plain);
    free(cl->sent);
    memset(cl, 0, sizeof *cl);
}

/* The decrypted stream decoded: counts of each message type; piece payloads checked against the pattern. */
typedef struct decoded {
    size_t count[256];
    bool handshake_ok, error, pieces_ok;
} decoded;

static decoded decode(const client *cl)
{
    decoded d;
    memset(&d, 0, sizeof d);
    d.pieces_ok = true;
    wire_decoder dec;
    wire_limits lim = {.max_msg_len = 1u << 20, .allow_unknown = true};
    wire_decoder_init(&dec, &lim);
    size_t at = 0;
    while (at < cl->plain_len) {
        size_t used = 0;
        wire_msg m;
        wire_status st = wire_feed(&dec, cl->plain + at, cl->plain_len - at, &used, &m);
        at += used;
        if (st == WIRE_ERROR) {
            d.error = true;
            break;
        }
        if (st != WIRE_READY)
            break;
        if (m.type == WIRE_HANDSHAKE) {
            d.handshake_ok = memcmp(m.u.handshake.info_hash, h.ih, 20) == 0;
            continue;
        }
        d.count[m.type & 0xFF]++;
        if (m.type == WIRE_PIECE)
            for (uint32_t i = 0; i < m.u.piece.len; i++)
                if (m.u.piece.data[i] != fr_pattern_byte(H_STORAGE, 0, (uint64_t)m.u.piece.index * 32768 +
                                                                           m.u.piece.begin + i))
                    d.pieces_ok = false;
    }
    wire_decoder_free(&dec);
    return d;
}

static bool logged(const char *needle)
{
    return fr_find_log(h.fr, needle, 0) >= 0;
}

static char *mse_line(uint64_t peer, const char *what)
{
    static char line[200];
    char hex[IH_HEX_LEN + 1];
    ih_hex(h.ih, hex);
    snprintf(line, sizeof line, "peer %llu: mse handshake for torrent %s: %s", (unsigned long long)peer, hex, what);
    return line;
}

/* ---- encrypted peers served ---- */

Test(seeder_mse, rc4_peer_gets_handshake_have_all_and_correct_blocks)
{
    client cl;
    client_start(&cl, 1, HK_MSE_CRYPTO_RC4 | HK_MSE_CRYPTO_PLAIN, true, 100, 50, NULL);
    cr_assert_eq(cl.st, HK_MSE_DONE, "%s", hk_mse_init_error(cl.a) ? hk_mse_init_error(cl.a) : "need more");
    cr_assert_eq(cl.res.selected, HK_MSE_CRYPTO_RC4);
    cr_assert(logged(mse_line(1, "encrypted rc4 (offered rc4+plaintext)")));
    cr_assert_eq(h.fr->set_cipher_calls, 1);
    client_simple(&cl, WIRE_INTERESTED);
    uint8_t req[WIRE_BLOCK_MSG_LEN];
    wire_encode_block(req, WIRE_REQUEST, 1, 16384, 16384);
    client_send(&cl, req, sizeof req);
    wire_encode_block(req, WIRE_REQUEST, 3, 0, 1696);
    client_send(&cl, req, sizeof req);
    h_advance(&h, HK_MILLIS(1));
    pump(&cl);
    decoded d = decode(&cl);
    cr_assert(!d.error);
    cr_assert(d.handshake_ok);
    cr_assert_eq(d.count[WIRE_HAVE_ALL], 1);
    cr_assert_eq(d.count[WIRE_EXTENDED], 1);
    cr_assert_eq(d.count[WIRE_UNCHOKE], 1);
    cr_assert_eq(d.count[WIRE_PIECE], 2);
    cr_assert(d.pieces_ok);
    /* the socket never carried the protocol string in clear */
    size_t len;
    uint8_t *raw = fr_stream(h.fr, 1, &len);
    cr_assert_null(memmem(raw, len, "BitTorrent protocol", 19));
    free(raw);
    hk_stats st = h_stats(&h);
    cr_assert_eq(st.peers_encrypted, 1);
    cr_assert_eq(st.mse_handshakes, 1);
    cr_assert_eq(st.mse_failures, 0);
    cr_assert_eq(st.blocks_sent, 2);
    client_free(&cl);
}

Test(seeder_mse, plaintext_selected_without_ia)
{
    client cl;
    client_start(&cl, 2, HK_MSE_CRYPTO_PLAIN, false, 0, 0, NULL);
    cr_assert_eq(cl.st, HK_MSE_DONE);
    cr_assert_eq(cl.res.selected, HK_MSE_CRYPTO_PLAIN);
    cr_assert(logged(mse_line(1, "plaintext (offered plaintext)")));
    cr_assert_eq(h.fr->set_cipher_calls, 0);
    uint8_t hs[WIRE_HANDSHAKE_LEN];
    hs_bytes(hs, h.ih, false, false);
    client_send(&cl, hs, sizeof hs);
    decoded d = decode(&cl);
    cr_assert(d.handshake_ok);
    cr_assert_eq(d.count[WIRE_BITFIELD], 1);
    /* in clear on the socket after the MSE reply */
    size_t len;
    uint8_t *raw = fr_stream(h.fr, 2, &len);
    cr_assert_not_null(memmem(raw, len, "BitTorrent protocol", 19));
    free(raw);
    cr_assert_eq(h_stats(&h).peers_encrypted, 0);
    client_free(&cl);
}

Test(seeder_mse, ya_starting_like_a_plain_handshake_is_still_mse)
{
    /* 1 in 256 Ya begin with 0x13: the seeder has fed that byte to the plain decoder when the next one tells */
    uint8_t priv[20] = {0}, y[96];
    for (uint32_t n = 1;; n++) {
        priv[16] = (uint8_t)(n >> 24), priv[17] = (uint8_t)(n >> 16), priv[18] = (uint8_t)(n >> 8);
        priv[19] = (uint8_t)n;
        cr_assert_eq(hk_mse_dh_public(priv, y), 0);
        if (y[0] == 0x13 && y[1] != 'B')
            break;
        cr_assert_lt(n, 100000);
    }
    priv_override = priv;
    client cl;
    memset(&cl, 0, sizeof cl);
    cl.conn = 1;
    cr_assert_not_null(h_accept(&h, 1, 1u << 20));
    uint8_t ia[WIRE_HANDSHAKE_LEN];
    hs_bytes(ia, h.ih, true, true);
    hk_mse_init_opts o = {.priv = priv, .provide = 3, .ia = ia, .ia_len = sizeof ia};
    memcpy(o.skey, h.ih, 20);
    cl.a = hk_mse_init_new(&cmem, &o);
    size_t n;
    const uint8_t *out = hk_mse_init_output(cl.a, &n);
    deliver(&cl, out, 1); /* 0x13 alone: still possibly plain */
    cr_assert(!logged("mse handshake started"));
    deliver(&cl, out + 1, n - 1);
    pump(&cl);
    priv_override = NULL;
    cr_assert_eq(cl.st, HK_MSE_DONE);
    cr_assert(logged(mse_line(1, "encrypted rc4 (offered rc4+plaintext)")));
    cr_assert(decode(&cl).handshake_ok);
    client_free(&cl);
}

Test(seeder_mse, plain_peers_still_served_beside)
{
    h_connect(&h, 5, true, true);
    cr_assert_eq(h_count(&h, 5, WIRE_HAVE_ALL), 1);
    cr_assert(!logged("mse handshake"));
}

/* ---- the running sums behind hk_seeder_stats (issue 12: O(1), no walk of the peer table) ---- */

/* What the walk of every peer slot (the former hk_seeder_stats) says, against the running sums; returns the walk's
 * queued blocks, decoder bytes and RC4 peers through the pointers. */
static void check_sums(uint64_t *queued, uint64_t *dec, uint32_t *enc)
{
    *queued = *dec = 0;
    *enc = 0;
    for (uint32_t i = 0; i < h.s->peers_cap; i++) {
        const hk_peer *p = h.s->peers[i];
        if (!p)
            continue;
        *queued += hk_rq_count(&p->rq, HK_REQ_BLOCK);
        *dec += wire_decoder_memory(&p->dec);
        *enc += p->encrypted;
    }
    hk_stats st = h_stats(&h);
    cr_assert_eq(st.queued_requests, *queued);
    cr_assert_eq(st.memory_bytes, h.s->mem.bytes + *dec);
    cr_assert_eq(st.peers_encrypted, *enc);
}

/* The first 1,001 bytes of a 5,000-byte extended message: gathered on c's decoder heap. */
static void partial_big_message(int c)
{
    uint8_t b[4 + 1 + 1000] = {0};
    b[2] = 0x13, b[3] = 0x88; /* length prefix 5000, big-endian */
    b[4] = WIRE_EXTENDED;
    h_recv(&h, c, b, sizeof b);
}

Test(seeder_mse, stats_sums_match_a_walk_of_the_peers)
{
    uint64_t q, dec;
    uint32_t enc;
    client cl;
    client_start(&cl, 1, HK_MSE_CRYPTO_RC4 | HK_MSE_CRYPTO_PLAIN, true, 100, 50, NULL);
    cr_assert_eq(cl.res.selected, HK_MSE_CRYPTO_RC4);
    check_sums(&q, &dec, &enc);
    cr_assert_eq(enc, 1);
    for (int c = 2; c <= 5; c++) { /* no room: their requests stay queued */
        cr_assert_not_null(h_accept(&h, c, 0));
        h_handshake(&h, c, NULL, true, true);
        h_simple(&h, c, WIRE_INTERESTED);
        for (uint32_t k = 0; k < (uint32_t)c; k++)
            h_block(&h, c, WIRE_REQUEST, k / 2, (k % 2) * 16384, 16384);
        check_sums(&q, &dec, &enc);
    }
    cr_assert_eq(q, 2 + 3 + 4 + 5, "every request queued");
    h_block(&h, 3, WIRE_CANCEL, 0, 0, 16384);
    h_block(&h, 3, WIRE_REQUEST, 0, 0, 16384); /* again */
    h_block(&h, 3, WIRE_REQUEST, 0, 0, 16384); /* a duplicate: not queued twice */
    check_sums(&q, &dec, &enc);
    cr_assert_eq(q, 14);
    partial_big_message(4);
    partial_big_message(5);
    check_sums(&q, &dec, &enc);
    cr_assert_geq(dec, 2000, "two decoders gather a big message (%llu bytes)", (unsigned long long)dec);
    h_closed(&h, 4); /* a close takes its queue and its decoder out of the sums */
    check_sums(&q, &dec, &enc);
    cr_assert_eq(q, 14 - 4);
    h_room(&h, 2, 1u << 20); /* served: its queue empties */
    check_sums(&q, &dec, &enc);
    cr_assert_eq(q, 14 - 4 - 2);
    h_advance(&h, HK_MILLIS(10));
    h_closed(&h, 1); /* the RC4 peer leaves */
    check_sums(&q, &dec, &enc);
    cr_assert_eq(enc, 0);
    /* a close inside a receive, with the decoder's buffer in use: the rest of the big message, then a prefix over
     * the limit (a protocol error) in the same read */
    static uint8_t rest[4000 + 4];
    memset(rest, 0, sizeof rest);
    memset(rest + 4000, 0x7F, 4);
    h_recv(&h, 5, rest, sizeof rest);
    cr_assert(fr_closed(h.fr, 5), "closed by the seeder");
    check_sums(&q, &dec, &enc);
    h_closed(&h, 3);
    check_sums(&q, &dec, &enc);
    cr_assert_eq(q, 0);
    cr_assert_eq(dec, 0);
    client_free(&cl);
}

/* ---- policies ---- */

Test(seeder_mse, prefer_plain_selects_plaintext_when_offered)
{
    restart(HK_ENC_PREFER_PLAIN);
    client cl;
    client_start(&cl, 1, 3, true, 0, 0, NULL);
    cr_assert_eq(cl.res.selected, HK_MSE_CRYPTO_PLAIN);
    cr_assert(logged(mse_line(1, "plaintext (offered rc4+plaintext)")));
    client_free(&cl);
    client_start(&cl, 2, HK_MSE_CRYPTO_RC4, true, 0, 0, NULL);
    cr_assert_eq(cl.res.selected, HK_MSE_CRYPTO_RC4);
    client_free(&cl);
}

Test(seeder_mse, require_refuses_plain_and_plaintext_only)
{
    restart(HK_ENC_REQUIRE);
    h_connect(&h, 1, true, true);
    cr_assert(fr_closed(h.fr, 1));
    cr_assert(logged("peer 1: closed: plain handshake refused: encryption required"));
    cr_assert_eq(h_count(&h, 1, WIRE_HAVE_ALL), 0);
    client cl;
    client_start(&cl, 2, HK_MSE_CRYPTO_PLAIN, true, 0, 0, NULL);
    cr_assert(fr_closed(h.fr, 2));
    cr_assert(logged("peer 2: closed: mse handshake failed: peer does not offer rc4"));
    client_free(&cl);
    client_start(&cl, 3, 3, true, 0, 0, NULL);
    cr_assert_eq(cl.res.selected, HK_MSE_CRYPTO_RC4);
    cr_assert(!fr_closed(h.fr, 3));
    client_free(&cl);
    cr_assert_eq(h_stats(&h).mse_failures, 1);
}

Test(seeder_mse, off_treats_mse_as_not_bittorrent)
{
    restart(HK_ENC_OFF);
    client cl;
    client_start(&cl, 1, 3, true, 0, 0, NULL);
    cr_assert(fr_closed(h.fr, 1));
    cr_assert(logged("peer 1: closed: protocol error"));
    cr_assert_eq(h_stats(&h).mse_handshakes, 0);
    client_free(&cl);
}

Test(seeder_mse, without_set_cipher_mse_is_not_bittorrent)
{
    h_free(&h);
    h_init(&h, NULL);
    h_add_single(&h, 32768, 100000);
    client cl;
    client_start(&cl, 1, 3, true, 0, 0, NULL);
    cr_assert(fr_closed(h.fr, 1));
    cr_assert(logged("peer 1: closed: protocol error"));
    client_free(&cl);
}

/* ---- hostile peers ---- */

Test(seeder_mse, pad_a_of_600_bytes_is_closed_at_the_sync_bound)
{
    client cl;
    client_start(&cl, 1, 3, true, 600, 0, NULL);
    cr_assert(fr_closed(h.fr, 1));
    cr_assert(logged("peer 1: closed: mse handshake failed: no req1 within 628 bytes"));
    cr_assert_eq(h_stats(&h).mse_failures, 1);
    client_free(&cl);
}

Test(seeder_mse, never_sending_req1_is_closed)
{
    /* Ya then garbage: closed once 628 bytes passed without req1 */
    h_accept(&h, 1, 1u << 20);
    uint8_t junk[700];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 7 + 3);
    h_recv(&h, 1, junk, 627);
    cr_assert(!fr_closed(h.fr, 1));
    h_recv(&h, 1, junk + 627, 1);
    cr_assert(fr_closed(h.fr, 1));
    cr_assert(logged("no req1"));
    /* Ya and a little garbage, then silence: closed at the handshake timeout */
    h_accept(&h, 2, 1u << 20);
    h_recv(&h, 2, junk, 300);
    h_advance(&h, HK_SECONDS(9));
    cr_assert(!fr_closed(h.fr, 2));
    h_advance(&h, HK_SECONDS(1));
    cr_assert(fr_closed(h.fr, 2));
    cr_assert(logged("peer 2: closed: timeout handshake"));
}

/* The memory a seeder holds once its peer table exists (the first accept grows it). */
static uint64_t baseline(void)
{
    h_accept(&h, 99, 0);
    h_closed(&h, 99);
    return h_stats(&h).memory_bytes;
}

Test(seeder_mse, stall_mid_handshake_closed_at_timeout_with_bounded_memory)
{
    uint64_t before = baseline();
    client cl;
    memset(&cl, 0, sizeof cl);
    cl.conn = 1;
    h_accept(&h, 1, 1u << 20);
    uint8_t priv[20] = {9, 8, 7};
    hk_mse_init_opts o = {.priv = priv, .provide = 3, .pad_a_len = 512};
    memcpy(o.skey, h.ih, 20);
    cl.a = hk_mse_init_new(&cmem, &o);
    size_t n;
    const uint8_t *out = hk_mse_init_output(cl.a, &n);
    h_recv(&h, 1, out, n - 10); /* Ya and most of PadA: the responder waits for req1 */
    uint64_t during = h_stats(&h).memory_bytes;
    cr_assert_leq(during - before, 4096 + hk_mse_memory(), "a stalled handshake holds %llu bytes",
                  (unsigned long long)(during - before));
    cr_assert_leq(hk_mse_memory(), 2048);
    h_advance(&h, HK_SECONDS(10));
    cr_assert(fr_closed(h.fr, 1));
    cr_assert(logged("peer 2: closed: timeout handshake"));
    cr_assert_eq(h_stats(&h).memory_bytes, before);
    client_free(&cl);
}

Test(seeder_mse, wrong_skey_is_closed)
{
    uint8_t other[20];
    memset(other, 0x5A, sizeof other);
    client cl;
    client_start(&cl, 1, 3, true, 0, 0, other);
    cr_assert(fr_closed(h.fr, 1));
    cr_assert(logged("peer 1: closed: mse handshake failed: unknown torrent"));
    cr_assert_neq(cl.st, HK_MSE_DONE);
    client_free(&cl);
}

Test(seeder_mse, ia_naming_another_torrent_is_closed)
{
    /* a second torrent is served; the SKEY names it, the IA's handshake names the first one */
    uint8_t first[20];
    memcpy(first, h.ih, 20);
    cr_assert_eq(h_add_single(&h, 16384, 50000), HK_ADD_OK);
    uint8_t second[20];
    memcpy(second, h.ih, 20);
    memcpy(h.ih, first, 20); /* client_start's IA is built from h.ih */
    client cl;
    client_start(&cl, 1, 3, true, 0, 0, second);
    cr_assert(fr_closed(h.fr, 1));
    cr_assert(logged("peer 1: closed: mse handshake failed: the encrypted BitTorrent handshake names torrent"));
    client_free(&cl);
}

Test(seeder_mse, replayed_ya_gets_another_yb_and_is_closed_without_harm)
{
    client cl;
    client_start(&cl, 1, 3, true, 200, 300, NULL);
    cr_assert_eq(cl.st, HK_MSE_DONE);
    cr_assert_gt(cl.sent_len, 628);
    size_t len1;
    uint8_t *s1 = fr_stream(h.fr, 1, &len1);
    /* connection 2 replays connection 1's bytes */
    h_accept(&h, 2, 1u << 20);
    h_recv(&h, 2, cl.sent, cl.sent_len);
    size_t len2;
    uint8_t *s2 = fr_stream(h.fr, 2, &len2);
    cr_assert_geq(len2, 96);
    cr_assert(memcmp(s1, s2, 96) != 0, "a replayed Ya must get a fresh Yb");
    cr_assert(fr_closed(h.fr, 2));
    cr_assert(logged("peer 2: closed: mse handshake failed: no req1"));
    cr_assert(!fr_closed(h.fr, 1));
    cr_assert_eq(h_stats(&h).peers_encrypted, 1);
    free(s1);
    free(s2);
    client_free(&cl);
}

Test(seeder_mse, ciphers_freed_with_the_peer)
{
    uint64_t before = baseline();
    client cl;
    client_start(&cl, 1, 3, true, 0, 0, NULL);
    cr_assert_gt(h_stats(&h).memory_bytes, before);
    h_closed(&h, 1);
    cr_assert_eq(h_stats(&h).peers_encrypted, 0);
    cr_assert_eq(h_stats(&h).memory_bytes, before + 16384, "%llu", /* the seeder's receive scratch remains */
                 (unsigned long long)(h_stats(&h).memory_bytes - before));
    client_free(&cl);
}
