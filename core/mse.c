/* mse: owns the MSE/PE responder state machine (side B): Ya, the req1 synchronisation, SKEY identification, VC,
 * crypto_provide/select, PadC, len(IA) and the encrypted reply; and the receive direction afterwards (hk_mse_rx).
 * See mse.h. */
#include "mse.h"

#include <string.h>

#include "mse_crypto.h"

enum { ST_YA = 0, ST_SYNC, ST_HDR, ST_PADC, ST_IALEN, ST_DONE, ST_FAIL };

/* After req1: HASH('req2', SKEY) xor HASH('req3', S) (20), then ENCRYPT(VC 8, crypto_provide 4, len(PadC) 2). */
#define HDR_LEN (20 + 8 + 4 + 2)
/* The sync window after Ya: PadA (at most 512) and HASH('req1', S). */
#define SYNC_WINDOW (HK_MSE_PAD_MAX + 20)
#define REPLY_LEN (8 + 4 + 2)

struct hk_mse {
    hk_mem *mem;
    hk_mse_find_fn find;
    void *find_ctx;
    const char *err;
    uint64_t pos;
    uint8_t state;
    uint8_t policy;
    uint16_t have;                 /* bytes gathered in buf for the current state */
    uint16_t padc_left;
    uint32_t provided, selected;
    hk_cipher *rx, *tx;
    uint8_t priv[HK_MSE_PRIV_LEN];
    uint8_t s[HK_MSE_KEY_LEN];
    uint8_t req1[20], req3[20];
    uint8_t info_hash[20];
    uint8_t buf[SYNC_WINDOW];      /* Ya (96), the sync window, the header, len(IA) */
    size_t out_len;
    uint16_t pad_b_len;
    uint8_t out[HK_MSE_KEY_LEN + HK_MSE_PAD_MAX + REPLY_LEN]; /* Yb + PadB (PadB stored at 96 from creation) */
};

hk_mse *hk_mse_new(hk_mem *mem, hk_encryption policy, const uint8_t priv[HK_MSE_PRIV_LEN], const uint8_t *pad_b,
                   size_t pad_b_len, hk_mse_find_fn find, void *find_ctx)
{
    if (pad_b_len > HK_MSE_PAD_MAX || !find)
        return NULL;
    hk_mse *m = hk_mem_calloc(mem, 1, sizeof *m);
    if (!m)
        return NULL;
    m->mem = mem;
    m->policy = (uint8_t)policy;
    m->find = find;
    m->find_ctx = find_ctx;
    memcpy(m->priv, priv, HK_MSE_PRIV_LEN);
    if (pad_b_len)
        memcpy(m->out + HK_MSE_KEY_LEN, pad_b, pad_b_len);
    m->pad_b_len = (uint16_t)pad_b_len;
    return m;
}

static hk_mse_status fail(hk_mse *m, const char *why)
{
    m->state = ST_FAIL;
    m->err = why;
    return HK_MSE_FAIL;
}

/* Gathers bytes into buf until it holds `want`; returns true when it does. */
static bool gather(hk_mse *m, const uint8_t *in, size_t len, size_t *at, size_t want)
{
    size_t n = want - m->have;
    if (n > len - *at)
        n = len - *at;
    memcpy(m->buf + m->have, in + *at, n);
    m->have = (uint16_t)(m->have + n);
    *at += n;
    return m->have == want;
}

/* Ya is in: answer Yb + PadB and compute S and the hashes that depend on it. */
static hk_mse_status on_ya(hk_mse *m)
{
    if (hk_mse_dh_public(m->priv, m->out) != 0)
        return fail(m, "key computation failed");
    if (hk_mse_dh_secret(m->priv, m->buf, m->s) != 0)
        return fail(m, "degenerate public key Ya");
    m->out_len = HK_MSE_KEY_LEN + m->pad_b_len;
    hk_mse_hash("req1", m->s, sizeof m->s, NULL, 0, m->req1);
    hk_mse_hash("req3", m->s, sizeof m->s, NULL, 0, m->req3);
    memset(m->priv, 0, sizeof m->priv);
    m->have = 0;
    m->state = ST_SYNC;
    return HK_MSE_NEED_MORE;
}

/* Looks for HASH('req1', S) one byte at a time, so nothing after it is taken from the input. */
static hk_mse_status sync_req1(hk_mse *m, const uint8_t *in, size_t len, size_t *at)
{
    while (*at < len) {
        if (m->have == SYNC_WINDOW)
            return fail(m, "no req1 within 628 bytes (PadA longer than 512)");
        m->buf[m->have++] = in[(*at)++];
        if (m->have >= 20 && m->buf[m->have - 1] == m->req1[19] && memcmp(m->buf + m->have - 20, m->req1, 20) == 0) {
            m->have = 0;
            m->state = ST_HDR;
            return HK_MSE_NEED_MORE;
        }
    }
    if (m->have == SYNC_WINDOW)
        return fail(m, "no req1 within 628 bytes (PadA longer than 512)");
    return HK_MSE_NEED_MORE;
}

static uint32_t select_method(hk_encryption policy, uint32_t provided)
{
    bool rc4 = provided & HK_MSE_CRYPTO_RC4, plain = provided & HK_MSE_CRYPTO_PLAIN;
    switch (policy) {
    case HK_ENC_ALLOW: return rc4 ? HK_MSE_CRYPTO_RC4 : plain ? HK_MSE_CRYPTO_PLAIN : 0;
    case HK_ENC_PREFER_PLAIN: return plain ? HK_MSE_CRYPTO_PLAIN : rc4 ? HK_MSE_CRYPTO_RC4 : 0;
    case HK_ENC_REQUIRE: return rc4 ? HK_MSE_CRYPTO_RC4 : 0;
    default: return 0;
    }
}

/* The header after req1 is in: identify SKEY, make the keys, check VC, choose the method, read len(PadC). */
static hk_mse_status on_header(hk_mse *m)
{
    uint8_t req2[20];
    for (int i = 0; i < 20; i++)
        req2[i] = m->buf[i] ^ m->req3[i];
    if (!m->find(m->find_ctx, req2, m->info_hash))
        return fail(m, "unknown torrent (no served info-hash matches the SKEY hash)");
    m->rx = hk_mse_cipher(m->mem, "keyA", m->s, m->info_hash);
    m->tx = hk_mse_cipher(m->mem, "keyB", m->s, m->info_hash);
    if (!m->rx || !m->tx)
        return fail(m, "out of memory for the ciphers");
    uint8_t *h = m->buf + 20;
    hk_cipher_apply(m->rx, h, h, 14);
    static const uint8_t vc[8];
    if (memcmp(h, vc, 8) != 0)
        return fail(m, "bad verification constant (wrong keys)");
    m->provided = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
    m->selected = select_method((hk_encryption)m->policy, m->provided);
    if (!m->selected)
        return fail(m, m->policy == HK_ENC_REQUIRE ? "peer does not offer rc4 (encryption required)"
                                                   : "peer offers no known crypto method");
    uint16_t padc = (uint16_t)(h[12] << 8 | h[13]);
    if (padc > HK_MSE_PAD_MAX)
        return fail(m, "len(PadC) above 512");
    m->padc_left = padc;
    m->have = 0;
    m->state = ST_PADC;
    return HK_MSE_NEED_MORE;
}

/* len(IA) is in: answer ENCRYPT(VC, crypto_select, len(PadD) = 0) and hand the ciphers over. */
static hk_mse_status on_ia_len(hk_mse *m, hk_mse_result *out)
{
    hk_cipher_apply(m->rx, m->buf, m->buf, 2);
    uint8_t *r = m->out + m->out_len;
    memset(r, 0, REPLY_LEN);
    r[11] = (uint8_t)m->selected;
    hk_cipher_apply(m->tx, r, r, REPLY_LEN);
    m->out_len += REPLY_LEN;
    memset(out, 0, sizeof *out);
    memcpy(out->info_hash, m->info_hash, 20);
    out->selected = m->selected;
    out->provided = m->provided;
    out->ia_len = (uint16_t)(m->buf[0] << 8 | m->buf[1]);
    out->rx = (hk_mse_rx){.cipher = m->rx, .ia_left = out->ia_len, .rc4 = m->selected == HK_MSE_CRYPTO_RC4};
    if (!out->rx.rc4 && out->ia_len == 0) {
        hk_cipher_free(m->rx);
        out->rx.cipher = NULL;
    }
    out->send = m->tx;
    m->rx = m->tx = NULL;
    memset(m->s, 0, sizeof m->s);
    m->state = ST_DONE;
    return HK_MSE_DONE;
}

static void skip_padc(hk_mse *m, const uint8_t *in, size_t len, size_t *at)
{
    size_t n = m->padc_left;
    if (n > len - *at)
        n = len - *at;
    uint8_t scratch[64];
    for (size_t done = 0; done < n;) {
        size_t k = n - done < sizeof scratch ? n - done : sizeof scratch;
        hk_cipher_apply(m->rx, in + *at + done, scratch, k); /* PadC is discarded, but advances keyA */
        done += k;
    }
    *at += n;
    m->padc_left = (uint16_t)(m->padc_left - n);
    if (m->padc_left == 0)
        m->state = ST_IALEN;
}

hk_mse_status hk_mse_feed(hk_mse *m, const uint8_t *in, size_t len, size_t *consumed, hk_mse_result *out)
{
    size_t at = 0;
    hk_mse_status st = HK_MSE_NEED_MORE;
    if (m->state == ST_FAIL || m->state == ST_DONE) {
        *consumed = 0;
        if (m->state == ST_DONE)
            m->err = "fed after the handshake was done";
        m->state = ST_FAIL;
        return HK_MSE_FAIL;
    }
    while (st == HK_MSE_NEED_MORE && at < len) {
        switch (m->state) {
        case ST_YA:
            if (gather(m, in, len, &at, HK_MSE_KEY_LEN))
                st = on_ya(m);
            break;
        case ST_SYNC: st = sync_req1(m, in, len, &at); break;
        case ST_HDR:
            if (gather(m, in, len, &at, HDR_LEN))
                st = on_header(m);
            break;
        case ST_PADC: skip_padc(m, in, len, &at); break;
        case ST_IALEN:
            if (gather(m, in, len, &at, 2))
                st = on_ia_len(m, out);
            break;
        default: st = fail(m, "internal state"); break;
        }
    }
    if (st == HK_MSE_NEED_MORE && m->state == ST_PADC && m->padc_left == 0)
        m->state = ST_IALEN;
    m->pos += at;
    *consumed = at;
    return st;
}

const uint8_t *hk_mse_output(hk_mse *m, size_t *len)
{
    *len = m->out_len;
    m->out_len = 0;
    return m->out;
}

const char *hk_mse_error(const hk_mse *m)
{
    return m->err;
}

uint64_t hk_mse_position(const hk_mse *m)
{
    return m->pos;
}

size_t hk_mse_memory(void)
{
    return sizeof(struct hk_mse);
}

void hk_mse_free(hk_mse *m)
{
    if (!m)
        return;
    hk_cipher_free(m->rx);
    hk_cipher_free(m->tx);
    hk_mem_free(m->mem, m, sizeof *m);
}

void hk_mse_rx_apply(hk_mse_rx *rx, const uint8_t *in, uint8_t *out, size_t len)
{
    if (!rx->cipher) {
        if (in != out && len)
            memmove(out, in, len);
        return;
    }
    if (rx->rc4) {
        hk_cipher_apply(rx->cipher, in, out, len);
        return;
    }
    size_t n = len < rx->ia_left ? len : rx->ia_left;
    hk_cipher_apply(rx->cipher, in, out, n);
    rx->ia_left -= (uint32_t)n;
    if (in != out && len > n)
        memmove(out + n, in + n, len - n);
    if (rx->ia_left == 0) { /* plaintext after the IA: nothing more to decrypt */
        hk_cipher_free(rx->cipher);
        rx->cipher = NULL;
    }
}

void hk_mse_rx_free(hk_mse_rx *rx)
{
    hk_cipher_free(rx->cipher);
    rx->cipher = NULL;
}

const char *hk_mse_method_name(uint32_t selected)
{
    switch (selected) {
    case HK_MSE_CRYPTO_RC4: return "rc4";
    case HK_MSE_CRYPTO_PLAIN: return "plaintext";
    case HK_MSE_CRYPTO_RC4 | HK_MSE_CRYPTO_PLAIN: return "rc4+plaintext";
    default: return "none";
    }
}
