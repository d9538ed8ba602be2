/* Fuzz target for core/mse (the MSE/PE responder) and core/mse_initiator: any chunking, any lengths, garbage pads.
 *
 * Input layout: byte 0 flags (bits 0-1 policy: allow, prefer-plain, require, allow; bit 2 raw mode), byte 1 the
 * chunking seed.
 *   - Raw mode: the rest is A's stream, fed to a responder with a fixed private key (so a recorded handshake against
 *     that key is a valid seed and its mutations reach VC, crypto_provide, PadC and len(IA)). It is fed whole and in
 *     seed-derived chunks: both must agree (status, position, error), NEED_MORE consumes everything, FAIL is sticky,
 *     the output is at most Yb + PadB + the reply, the memory held never exceeds the object and its two ciphers.
 *   - Handshake mode: bytes 2-9 parameterise an initiator (provide, len(PadA), len(PadC) up to 700 to cross the
 *     bounds, len(IA)), bytes 10-11 an offset; the rest are the pad bytes and an xor mask applied to A's stream from
 *     that offset. The exchange runs in chunks; with an all-zero mask, lengths within the spec and a method the policy
 *     accepts, both sides must finish, agree on the method and B must decrypt the IA exactly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mse.h"
#include "mse_crypto.h"
#include "mse_initiator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t IH[20] = "fuzz-info-hash-00000";
static const uint8_t PRIV_B[20] = {0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19};

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

static uint32_t next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

typedef struct outcome {
    hk_mse_status st;
    uint64_t pos;
    const char *err;
    size_t out_total;
    hk_mse_result res;
} outcome;

/* Feeds stream to a fresh responder, in chunks when seed != 0; checks the per-call rules. */
static outcome feed_responder(hk_encryption pol, const uint8_t *stream, size_t len, uint32_t seed)
{
    hk_mem mem = {0};
    outcome o;
    memset(&o, 0, sizeof o);
    hk_mse *b = hk_mse_new(&mem, pol, PRIV_B, (const uint8_t *)"padpadpad", 9, find_ih, NULL);
    if (!b)
        abort();
    size_t at = 0;
    o.st = HK_MSE_NEED_MORE;
    while (at < len && o.st == HK_MSE_NEED_MORE) {
        size_t k = seed ? 1 + next(&seed) % 200 : len - at;
        if (k > len - at)
            k = len - at;
        size_t used = 99999;
        o.st = hk_mse_feed(b, stream + at, k, &used, &o.res);
        if (used > k || (o.st == HK_MSE_NEED_MORE && used != k))
            abort();
        at += used;
        size_t n;
        hk_mse_output(b, &n);
        o.out_total += n;
        if (mem.bytes > hk_mse_memory() + 2 * hk_cipher_memory())
            abort();
    }
    if (o.out_total > HK_MSE_KEY_LEN + 9 + 14)
        abort();
    if (o.st == HK_MSE_FAIL) {
        size_t used = 1;
        if (hk_mse_feed(b, stream, len, &used, &o.res) != HK_MSE_FAIL || used != 0)
            abort();
        if (hk_mse_position(b) > HK_MSE_SYNC_MAX + 34 + 512 + 2)
            abort();
    }
    o.pos = hk_mse_position(b);
    o.err = hk_mse_error(b);
    if (o.st == HK_MSE_DONE) {
        hk_mse_rx_free(&o.res.rx);
        hk_cipher_free(o.res.send);
    }
    hk_mse_free(b);
    if (mem.bytes != 0)
        abort();
    return o;
}

static void raw_mode(hk_encryption pol, uint32_t seed, const uint8_t *stream, size_t len)
{
    outcome whole = feed_responder(pol, stream, len, 0);
    outcome chunked = feed_responder(pol, stream, len, seed | 1);
    if (whole.st != chunked.st || whole.pos != chunked.pos || whole.err != chunked.err)
        abort();
}

static size_t u16(const uint8_t *p)
{
    return (size_t)p[0] << 8 | p[1];
}

typedef struct exchange {
    hk_mse_status sa, sb;
    hk_mse_result ra, rb;
    uint8_t got_ia[100];           /* what B decrypted after its handshake */
    size_t got;
    bool corrupt;                  /* the mask changed a byte of A's stream */
} exchange;

/* Four rounds of A -> B (in chunks, A's bytes xored with rest from offset off) and B -> A. */
static void run_exchange(exchange *x, hk_mse_init *a, hk_mse *b, uint32_t *seed, const uint8_t *rest, size_t nrest,
                         size_t off)
{
    uint64_t apos = 0;
    for (int round = 0; round < 4; round++) {
        size_t n;
        const uint8_t *out = hk_mse_init_output(a, &n);
        uint8_t buf[4096];
        memcpy(buf, out, n);
        for (size_t i = 0; i < n; i++) {
            uint64_t p = apos + i;
            if (p >= off && p - off < nrest && rest[p - off]) {
                buf[i] ^= rest[p - off];
                x->corrupt = true;
            }
        }
        apos += n;
        for (size_t at = 0; at < n && x->sb != HK_MSE_FAIL;) {
            size_t k = 1 + next(seed) % 150, used = 0;
            if (k > n - at)
                k = n - at;
            if (x->sb == HK_MSE_DONE) {
                size_t m = k < sizeof x->got_ia - x->got ? k : sizeof x->got_ia - x->got;
                hk_mse_rx_apply(&x->rb.rx, buf + at, x->got_ia + x->got, m);
                x->got += m;
                at += k;
                continue;
            }
            x->sb = hk_mse_feed(b, buf + at, k, &used, &x->rb);
            at += used;
        }
        out = hk_mse_output(b, &n);
        memcpy(buf, out, n);
        size_t used = 0;
        if (x->sa == HK_MSE_NEED_MORE && n)
            x->sa = hk_mse_init_feed(a, buf, n, &used, &x->ra);
    }
}

static void release(hk_mse_status st, hk_mse_result *r)
{
    if (st == HK_MSE_DONE) {
        hk_mse_rx_free(&r->rx);
        hk_cipher_free(r->send);
    }
}

static void handshake_mode(hk_encryption pol, uint32_t seed, const uint8_t *d, size_t size)
{
    if (size < 12)
        return;
    static const uint8_t ia_src[100] = "\x13" "BitTorrent protocol";
    uint32_t provide = (d[2] & 3u) | (d[2] & 0x80u ? 0x10u : 0);
    size_t pad_a = u16(d + 3) % 701, pad_c = u16(d + 5) % 701, ia_len = d[7] % 101;
    const uint8_t *rest = d + 12;
    size_t nrest = size - 12;
    /* A's pads (PadA, PadC): the input's bytes masked with the seed's stream, so the fuzzer cannot plant
     * HASH('req1', S) in PadA (S follows from the fixed keys; B would sync on the planted copy and read garbage as
     * the SKEY hash: the spec's own ambiguity, which random pads make a 2^-160 event, as in life) */
    uint8_t pad[1024];
    memset(pad, 0, sizeof pad);
    memcpy(pad, rest, nrest < sizeof pad ? nrest : sizeof pad);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] ^= (uint8_t)next(&seed);
    uint8_t priv[20];
    memcpy(priv, d + 2, 8);
    memset(priv + 8, 0x33, 12);
    hk_mem mem = {0};
    hk_mse_init_opts o = {.priv = priv, .provide = provide, .pad = pad, .pad_a_len = pad_a, .pad_c_len = pad_c,
                          .ia = ia_src, .ia_len = ia_len};
    memcpy(o.skey, IH, 20);
    hk_mse_init *a = hk_mse_init_new(&mem, &o);
    uint8_t pad_b[300]; /* B's PadB is random in life: drawn here, so no input can plant ENCRYPT(VC) in it (which
                         * would make A sync early, the spec's own 2^-64 ambiguity) */
    for (size_t i = 0; i < sizeof pad_b; i++)
        pad_b[i] = (uint8_t)next(&seed);
    hk_mse *b = hk_mse_new(&mem, pol, PRIV_B, pad_b, d[8] % 2 ? 0 : sizeof pad_b, find_ih, NULL);
    if (!a || !b)
        abort();
    exchange x;
    memset(&x, 0, sizeof x);
    run_exchange(&x, a, b, &seed, rest, nrest, u16(d + 10));
    bool acceptable = pol == HK_ENC_REQUIRE ? (provide & 2u) : (provide & 3u);
    if (!x.corrupt && pad_a <= 512 && pad_c <= 512 && acceptable &&
        (x.sa != HK_MSE_DONE || x.sb != HK_MSE_DONE || x.ra.selected != x.rb.selected || x.got != ia_len ||
         memcmp(x.got_ia, ia_src, ia_len) != 0))
        abort();
    release(x.sa, &x.ra);
    release(x.sb, &x.rb);
    hk_mse_init_free(a);
    hk_mse_free(b);
    if (mem.bytes != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static const hk_encryption pols[4] = {HK_ENC_ALLOW, HK_ENC_PREFER_PLAIN, HK_ENC_REQUIRE, HK_ENC_ALLOW};
    hk_encryption pol = pols[data[0] & 3];
    uint32_t seed = data[1] * 2654435761u | 1u;
    if (data[0] & 4)
        raw_mode(pol, seed, data + 2, size - 2 > 4096 ? 4096 : size - 2);
    else
        handshake_mode(pol, seed, data, size > 1200 ? 1200 : size);
    return 0;
}
