/* Unit tests for core/mse, core/mse_initiator, core/mse_crypto and core/skey_index: known answers (DH, hashes, the
 * RC4-drop1024 keys), the full handshake initiator <-> responder in random chunkings (both methods, IA present or
 * absent, pads), the policies, and the hostile cases the responder must refuse within its bounds. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <criterion/criterion.h>
#include <openssl/rc4.h>
#include <openssl/sha.h>
#include <string.h>

#include "mse.h"
#include "mse_crypto.h"
#include "mse_initiator.h"
#include "hash.h"
#include "skey_index.h"

static const uint8_t IH[20] = "0123456789abcdefghij";

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

static bool find_ih(void *ctx, const uint8_t req2[20], uint8_t out[20])
{
    (void)ctx;
    uint8_t want[20];
    hk_mse_hash("req2", IH, 20, NULL, 0, want);
    if (memcmp(want, req2, 20) != 0)
        return false;
    memcpy(out, IH, 20);
    return true;
}

/* ---- known answers ---- */

Test(mse_crypto, dh_known_answer_and_symmetry)
{
    uint8_t one[20] = {0}, y[96], expect[96] = {0};
    one[19] = 1;
    cr_assert_eq(hk_mse_dh_public(one, y), 0);
    expect[95] = 2; /* 2^1 mod P */
    cr_assert_arr_eq(y, expect, 96);
    uint8_t a[20], b[20], ya[96], yb[96], sa[96], sb[96];
    fill(a, 20, 1);
    fill(b, 20, 2);
    cr_assert_eq(hk_mse_dh_public(a, ya), 0);
    cr_assert_eq(hk_mse_dh_public(b, yb), 0);
    cr_assert_eq(hk_mse_dh_secret(a, yb, sa), 0);
    cr_assert_eq(hk_mse_dh_secret(b, ya, sb), 0);
    cr_assert_arr_eq(sa, sb, 96);
    cr_assert(memcmp(sa, ya, 96) != 0);
    /* S = Y^1 = Y */
    cr_assert_eq(hk_mse_dh_secret(one, ya, sa), 0);
    cr_assert_arr_eq(sa, ya, 96);
}

Test(mse_crypto, degenerate_keys_refused)
{
    uint8_t a[20], y[96] = {0}, s[96];
    fill(a, 20, 3);
    cr_assert_eq(hk_mse_dh_secret(a, y, s), -1); /* 0 */
    y[95] = 1;
    cr_assert_eq(hk_mse_dh_secret(a, y, s), -1); /* 1 */
    memcpy(y, hk_mse_prime, 96);
    y[95]--;
    cr_assert_eq(hk_mse_dh_secret(a, y, s), -1); /* P - 1 */
    memcpy(y, hk_mse_prime, 96);
    cr_assert_eq(hk_mse_dh_secret(a, y, s), -1); /* P */
    memset(y, 0, 96);
    y[95] = 2;
    cr_assert_eq(hk_mse_dh_secret(a, y, s), 0);
}

Test(mse_crypto, hash_and_rc4_drop1024_keys)
{
    uint8_t s[96], got[20], want[20], cat[4 + 96 + 20];
    fill(s, 96, 4);
    memcpy(cat, "keyA", 4);
    memcpy(cat + 4, s, 96);
    memcpy(cat + 100, IH, 20);
    SHA1(cat, sizeof cat, want);
    hk_mse_hash("keyA", s, 96, IH, 20, got);
    cr_assert_arr_eq(got, want, 20);
    hk_mem mem = {0};
    hk_cipher *c = hk_mse_cipher(&mem, "keyA", s, IH);
    cr_assert_not_null(c);
    RC4_KEY k;
    RC4_set_key(&k, 20, want);
    uint8_t drop[1024] = {0}, z[64] = {0}, a[64], b[64];
    RC4(&k, sizeof drop, drop, drop);
    RC4(&k, sizeof z, z, a);
    hk_cipher_apply(c, z, b, sizeof z);
    cr_assert_arr_eq(a, b, sizeof a);
    hk_cipher_free(c);
    cr_assert_eq(mem.bytes, 0);
}

/* ---- the handshake, driven ---- */

typedef struct run {
    hk_mse_status a_st, b_st;
    hk_mse_result a_res, b_res;
    uint8_t b_payload[4096];      /* what B received after its handshake, decrypted */
    size_t b_payload_len;
    uint8_t a_payload[4096];
    size_t a_payload_len;
    const char *b_err;
    uint64_t b_pos;
} run;

/* Feeds src to the side in random chunks; after DONE the rest goes through the result's rx into payload. */
static void deliver(bool to_b, void *side, const uint8_t *src, size_t n, uint32_t *seed, hk_mse_status *st,
                    hk_mse_result *res, uint8_t *payload, size_t *plen)
{
    size_t at = 0;
    while (at < n) {
        *seed = *seed * 1103515245u + 12345u;
        size_t k = 1 + (*seed >> 16) % 97;
        if (k > n - at)
            k = n - at;
        if (*st == HK_MSE_DONE) {
            hk_mse_rx_apply(&res->rx, src + at, payload + *plen, k);
            *plen += k;
            at += k;
            continue;
        }
        if (*st == HK_MSE_FAIL)
            return;
        size_t used = 0;
        *st = to_b ? hk_mse_feed(side, src + at, k, &used, res) : hk_mse_init_feed(side, src + at, k, &used, res);
        cr_assert_leq(used, k);
        if (*st == HK_MSE_NEED_MORE)
            cr_assert_eq(used, k);
        at += used;
    }
}

static void drive(run *r, const hk_mse_init_opts *o, hk_encryption policy, uint32_t seed, hk_mem *mem)
{
    memset(r, 0, sizeof *r);
    uint8_t privb[20], padb[512];
    fill(privb, 20, seed * 7 + 1);
    fill(padb, sizeof padb, seed);
    hk_mse_init *a = hk_mse_init_new(mem, o);
    hk_mse *b = hk_mse_new(mem, policy, privb, padb, seed % 513, find_ih, NULL);
    cr_assert(a && b);
    for (int round = 0; round < 8; round++) {
        size_t n;
        const uint8_t *out = hk_mse_init_output(a, &n);
        uint8_t copy[70000];
        memcpy(copy, out, n);
        deliver(true, b, copy, n, &seed, &r->b_st, &r->b_res, r->b_payload, &r->b_payload_len);
        out = hk_mse_output(b, &n);
        memcpy(copy, out, n);
        deliver(false, a, copy, n, &seed, &r->a_st, &r->a_res, r->a_payload, &r->a_payload_len);
    }
    r->b_err = hk_mse_error(b);
    r->b_pos = hk_mse_position(b);
    hk_mse_init_free(a);
    hk_mse_free(b);
}

static void release(run *r)
{
    hk_mse_rx_free(&r->a_res.rx);
    hk_mse_rx_free(&r->b_res.rx);
    hk_cipher_free(r->a_res.send);
    hk_cipher_free(r->b_res.send);
    memset(&r->a_res, 0, sizeof r->a_res);
    memset(&r->b_res, 0, sizeof r->b_res);
}

static hk_mse_init_opts opts(uint8_t *priv, uint8_t *pad, uint32_t provide, const uint8_t *ia, size_t ia_len,
                             size_t pad_a, size_t pad_c)
{
    hk_mse_init_opts o = {.priv = priv, .provide = provide, .pad = pad, .pad_a_len = pad_a, .pad_c_len = pad_c,
                          .ia = ia, .ia_len = ia_len};
    memcpy(o.skey, IH, 20);
    return o;
}

Test(mse, full_handshake_random_chunkings_both_methods)
{
    hk_mem mem = {0};
    uint8_t priv[20], pad[1024], ia[68];
    fill(pad, sizeof pad, 9);
    fill(ia, sizeof ia, 10);
    for (uint32_t seed = 1; seed <= 40; seed++) {
        fill(priv, 20, seed);
        uint32_t provide = seed % 3 == 0 ? HK_MSE_CRYPTO_PLAIN : seed % 3 == 1 ? HK_MSE_CRYPTO_RC4 : 3;
        size_t ia_len = seed % 2 ? sizeof ia : 0;
        hk_mse_init_opts o = opts(priv, pad, provide, ia, ia_len, (seed * 37) % 513, (seed * 53) % 513);
        run r;
        drive(&r, &o, HK_ENC_ALLOW, seed, &mem);
        cr_assert_eq(r.b_st, HK_MSE_DONE, "seed %u: %s", seed, r.b_err ? r.b_err : "-");
        cr_assert_eq(r.a_st, HK_MSE_DONE, "seed %u", seed);
        uint32_t want = provide & HK_MSE_CRYPTO_RC4 ? HK_MSE_CRYPTO_RC4 : HK_MSE_CRYPTO_PLAIN;
        cr_assert_eq(r.b_res.selected, want);
        cr_assert_eq(r.a_res.selected, want);
        cr_assert_eq(r.b_res.provided, provide);
        cr_assert_arr_eq(r.b_res.info_hash, IH, 20);
        cr_assert_eq(r.b_res.ia_len, ia_len);
        cr_assert_eq(r.b_payload_len, ia_len); /* the IA, decrypted */
        if (ia_len)
            cr_assert_arr_eq(r.b_payload, ia, ia_len);
        cr_assert_eq(r.a_payload_len, 0);
        /* the payload stream both ways: B -> A and A -> B, through the ciphers when RC4 */
        uint8_t msg[300], wire[300], back[300];
        fill(msg, sizeof msg, seed + 100);
        memcpy(wire, msg, sizeof msg);
        if (want == HK_MSE_CRYPTO_RC4)
            hk_cipher_apply(r.b_res.send, wire, wire, sizeof wire);
        cr_assert_eq(memcmp(wire, msg, sizeof msg) != 0, want == HK_MSE_CRYPTO_RC4);
        hk_mse_rx_apply(&r.a_res.rx, wire, back, sizeof wire);
        cr_assert_arr_eq(back, msg, sizeof msg);
        memcpy(wire, msg, sizeof msg);
        if (want == HK_MSE_CRYPTO_RC4)
            hk_cipher_apply(r.a_res.send, wire, wire, sizeof wire);
        hk_mse_rx_apply(&r.b_res.rx, wire, back, sizeof wire);
        cr_assert_arr_eq(back, msg, sizeof msg);
        release(&r);
    }
    cr_assert_eq(mem.bytes, 0);
}

Test(mse, payload_in_the_same_chunk_as_the_handshake)
{
    /* plaintext selected: IA (encrypted) then clear bytes, all in A's one message: B must split them exactly */
    hk_mem mem = {0};
    uint8_t priv[20], ia[68];
    fill(priv, 20, 77);
    fill(ia, sizeof ia, 78);
    hk_mse_init_opts o = opts(priv, NULL, HK_MSE_CRYPTO_PLAIN, ia, sizeof ia, 10, 5);
    hk_mse_init *a = hk_mse_init_new(&mem, &o);
    uint8_t privb[20];
    fill(privb, 20, 79);
    hk_mse *b = hk_mse_new(&mem, HK_ENC_ALLOW, privb, NULL, 0, find_ih, NULL);
    size_t n, used;
    hk_mse_result res;
    const uint8_t *out = hk_mse_init_output(a, &n);
    cr_assert_eq(hk_mse_feed(b, out, n, &used, &res), HK_MSE_NEED_MORE);
    out = hk_mse_output(b, &n);
    cr_assert_eq(n, 96);
    hk_mse_result ares;
    cr_assert_eq(hk_mse_init_feed(a, out, n, &used, &ares), HK_MSE_NEED_MORE);
    out = hk_mse_init_output(a, &n);
    uint8_t all[1024];
    memcpy(all, out, n);
    memcpy(all + n, "clear!", 6);
    cr_assert_eq(hk_mse_feed(b, all, n + 6, &used, &res), HK_MSE_DONE);
    cr_assert_eq(used, n - sizeof ia);
    uint8_t plain[80];
    hk_mse_rx_apply(&res.rx, all + used, plain, sizeof ia + 6);
    cr_assert_arr_eq(plain, ia, sizeof ia);
    cr_assert_arr_eq(plain + sizeof ia, "clear!", 6);
    cr_assert_null(res.rx.cipher); /* nothing more to decrypt */
    cr_assert_eq(hk_mse_feed(b, all, 1, &used, &res), HK_MSE_FAIL); /* fed after done */
    hk_cipher_free(res.send);
    hk_mse_free(b);
    hk_mse_init_free(a);
    cr_assert_eq(mem.bytes, 0);
}

Test(mse, policies_select_what_they_should)
{
    hk_mem mem = {0};
    uint8_t priv[20];
    fill(priv, 20, 5);
    struct { hk_encryption pol; uint32_t provide; uint32_t want; } cases[] = {
        {HK_ENC_ALLOW, 3, HK_MSE_CRYPTO_RC4},          {HK_ENC_ALLOW, 1, HK_MSE_CRYPTO_PLAIN},
        {HK_ENC_PREFER_PLAIN, 3, HK_MSE_CRYPTO_PLAIN}, {HK_ENC_PREFER_PLAIN, 2, HK_MSE_CRYPTO_RC4},
        {HK_ENC_REQUIRE, 3, HK_MSE_CRYPTO_RC4},        {HK_ENC_REQUIRE, 1, 0},
        {HK_ENC_ALLOW, 0x10, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        hk_mse_init_opts o = opts(priv, NULL, cases[i].provide, NULL, 0, 0, 0);
        run r;
        drive(&r, &o, cases[i].pol, (uint32_t)i + 3, &mem);
        if (cases[i].want) {
            cr_assert_eq(r.b_st, HK_MSE_DONE, "case %zu", i);
            cr_assert_eq(r.b_res.selected, cases[i].want, "case %zu", i);
            cr_assert_eq(r.a_res.selected, cases[i].want, "case %zu", i);
        } else {
            cr_assert_eq(r.b_st, HK_MSE_FAIL, "case %zu", i);
            cr_assert_eq(r.a_st, HK_MSE_NEED_MORE, "case %zu", i); /* B never answered VC */
        }
        release(&r);
    }
    cr_assert_eq(mem.bytes, 0);
}

Test(mse, hostile_pads_and_keys)
{
    hk_mem mem = {0};
    uint8_t priv[20], pad[1024];
    fill(priv, 20, 6);
    fill(pad, sizeof pad, 7);
    run r;
    /* PadA of 600 bytes: no req1 within 628 bytes */
    hk_mse_init_opts o = opts(priv, pad, 2, NULL, 0, 600, 0);
    drive(&r, &o, HK_ENC_ALLOW, 11, &mem);
    cr_assert_eq(r.b_st, HK_MSE_FAIL);
    cr_assert(strstr(r.b_err, "no req1"));
    cr_assert_eq(r.b_pos, 628);
    release(&r);
    /* PadA of exactly 512: accepted */
    o = opts(priv, pad, 2, NULL, 0, 512, 512);
    drive(&r, &o, HK_ENC_ALLOW, 12, &mem);
    cr_assert_eq(r.b_st, HK_MSE_DONE);
    release(&r);
    /* len(PadC) 513 */
    o = opts(priv, pad, 2, NULL, 0, 0, 513);
    drive(&r, &o, HK_ENC_ALLOW, 13, &mem);
    cr_assert_eq(r.b_st, HK_MSE_FAIL);
    cr_assert(strstr(r.b_err, "PadC"));
    release(&r);
    /* wrong SKEY */
    o = opts(priv, pad, 2, NULL, 0, 0, 0);
    o.skey[0] ^= 1;
    drive(&r, &o, HK_ENC_ALLOW, 14, &mem);
    cr_assert_eq(r.b_st, HK_MSE_FAIL);
    cr_assert(strstr(r.b_err, "unknown torrent"));
    release(&r);
    cr_assert_eq(mem.bytes, 0);
}

Test(mse, garbage_never_syncs_and_holds_a_bounded_object)
{
    hk_mem mem = {0};
    uint8_t privb[20], junk[2000];
    fill(privb, 20, 8);
    fill(junk, sizeof junk, 9);
    hk_mse *b = hk_mse_new(&mem, HK_ENC_ALLOW, privb, NULL, 0, find_ih, NULL);
    cr_assert_eq(mem.bytes, hk_mse_memory());
    cr_assert_leq(hk_mse_memory(), 2048);
    size_t used, at = 0;
    hk_mse_result res;
    hk_mse_status st = HK_MSE_NEED_MORE;
    while (st == HK_MSE_NEED_MORE && at < sizeof junk) {
        st = hk_mse_feed(b, junk + at, 1, &used, &res);
        at += used;
        cr_assert_eq(mem.bytes, hk_mse_memory());
    }
    cr_assert_eq(st, HK_MSE_FAIL);
    cr_assert_eq(at, 628);
    cr_assert_eq(hk_mse_feed(b, junk, 10, &used, &res), HK_MSE_FAIL); /* sticky */
    cr_assert_eq(used, 0);
    hk_mse_free(b);
    cr_assert_eq(mem.bytes, 0);
}

Test(mse, replayed_ya_gets_another_yb_and_fails)
{
    /* A replay of a recorded initiator stream meets a fresh private key: another Yb, another S, so the recorded
     * HASH('req1', S) never matches and the responder fails at the sync bound (the spec's protection). */
    hk_mem mem = {0};
    uint8_t priv[20], ia[68];
    fill(priv, 20, 21);
    fill(ia, sizeof ia, 22);
    hk_mse_init_opts o = opts(priv, NULL, 2, ia, sizeof ia, 100, 400);
    hk_mse_init *a = hk_mse_init_new(&mem, &o);
    uint8_t pb1[20], pb2[20], rec[4096], yb1[96];
    fill(pb1, 20, 23);
    fill(pb2, 20, 24);
    hk_mse *b1 = hk_mse_new(&mem, HK_ENC_ALLOW, pb1, NULL, 0, find_ih, NULL);
    size_t n, used, reclen = 0;
    hk_mse_result r1, ar;
    const uint8_t *out = hk_mse_init_output(a, &n);
    memcpy(rec, out, n);
    reclen = n;
    cr_assert_eq(hk_mse_feed(b1, rec, n, &used, &r1), HK_MSE_NEED_MORE);
    out = hk_mse_output(b1, &n);
    memcpy(yb1, out, 96);
    cr_assert_eq(hk_mse_init_feed(a, out, n, &used, &ar), HK_MSE_NEED_MORE);
    out = hk_mse_init_output(a, &n);
    memcpy(rec + reclen, out, n);
    cr_assert_eq(hk_mse_feed(b1, rec + reclen, n, &used, &r1), HK_MSE_DONE);
    reclen += n;
    hk_mse *b2 = hk_mse_new(&mem, HK_ENC_ALLOW, pb2, NULL, 0, find_ih, NULL);
    hk_mse_result r2;
    hk_mse_status st = hk_mse_feed(b2, rec, reclen, &used, &r2);
    out = hk_mse_output(b2, &n);
    cr_assert_geq(n, 96);
    cr_assert(memcmp(out, yb1, 96) != 0);
    cr_assert_eq(st, HK_MSE_FAIL);
    cr_assert(strstr(hk_mse_error(b2), "no req1"));
    hk_mse_rx_free(&r1.rx);
    hk_cipher_free(r1.send);
    hk_mse_free(b1);
    hk_mse_free(b2);
    hk_mse_init_free(a);
    cr_assert_eq(mem.bytes, 0);
}

/* ---- SKEY index ---- */

typedef struct owner {
    uint8_t ih[64][20];
    uint32_t mix[64];    /* the owner's stored hk_skey_mix of each record */
} owner;

static const uint8_t *ih_of(const void *o, uint32_t rec)
{
    return ((const owner *)o)->ih[rec];
}

static uint32_t mix_of(const void *o, uint32_t rec)
{
    return ((const owner *)o)->mix[rec];
}

Test(skey_index, finds_every_torrent_by_req2_and_nothing_else)
{
    hk_mem mem = {0};
    static owner ow;
    hk_skey_index sk;
    hk_skey_init(&sk, &mem, ih_of, mix_of, &ow);
    for (uint32_t i = 0; i < 64; i++) {
        fill(ow.ih[i], 20, i + 1);
        ow.ih[i][0] = (uint8_t)i; /* patterned, distinct */
        ow.mix[i] = hk_skey_mix(ow.ih[i]);
        uint8_t req2[20];
        hk_mse_hash("req2", ow.ih[i], 20, NULL, 0, req2);
        cr_assert_eq(ow.mix[i], hk_mix_info_hash(req2));
        cr_assert_eq(hk_skey_insert(&sk, i), 0);
    }
    for (uint32_t i = 0; i < 64; i++) {
        uint8_t req2[20];
        hk_mse_hash("req2", ow.ih[i], 20, NULL, 0, req2);
        cr_assert_eq(hk_skey_find(&sk, req2), i);
        cr_assert_eq(hk_skey_find(&sk, ow.ih[i]), HK_IH_NONE); /* the info-hash itself is not a key */
    }
    for (uint32_t i = 0; i < 64; i += 2)
        hk_skey_remove(&sk, ow.ih[i]);
    for (uint32_t i = 0; i < 64; i++) {
        uint8_t req2[20];
        hk_mse_hash("req2", ow.ih[i], 20, NULL, 0, req2);
        cr_assert_eq(hk_skey_find(&sk, req2), i % 2 ? i : HK_IH_NONE);
    }
    /* 64 records: 121 slots (load <= 3/4; 16 grown by half: 24, 36, 54, 81, 121) of 4 bytes and nothing else (the
     * mixes are the owner's); all of it from the counter */
    cr_assert_eq(hk_skey_bytes(&sk), 121 * 4);
    cr_assert_eq(mem.bytes, hk_skey_bytes(&sk));
    hk_skey_free(&sk);
    cr_assert_eq(mem.bytes, 0);
}
