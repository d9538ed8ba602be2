/* mse_initiator: owns MSE/PE's side A: Ya + PadA, the req1/req2/req3 message with the encrypted VC, provide, PadC
 * and IA, the search for B's encrypted VC, crypto_select and PadD (see mse_initiator.h). */
#include "mse_initiator.h"

#include <string.h>

#include "mse_crypto.h"

enum { ST_YB = 0, ST_SYNC, ST_SEL, ST_PADD, ST_DONE, ST_FAIL };

#define VC_WINDOW (HK_MSE_PAD_MAX + 8)

struct hk_mse_init {
    hk_mem *mem;
    const char *err;
    uint8_t state;
    uint16_t have;
    uint16_t padd_left;
    uint32_t provide, selected;
    hk_cipher *rx, *tx;            /* keyB (B's stream), keyA (ours) */
    uint8_t priv[HK_MSE_PRIV_LEN];
    uint8_t skey[20];
    uint8_t s[HK_MSE_KEY_LEN];
    uint8_t enc_vc[8];
    uint8_t buf[VC_WINDOW];
    uint8_t *msg3;                 /* VC, provide, len(PadC), PadC, len(IA), IA in clear */
    size_t msg3_len;
    uint8_t *out;
    size_t out_len, out_cap;
};

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

static void put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static bool build_msg3(hk_mse_init *m, const hk_mse_init_opts *o)
{
    m->msg3_len = 8 + 4 + 2 + o->pad_c_len + 2 + o->ia_len;
    m->msg3 = hk_mem_calloc(m->mem, 1, m->msg3_len);
    if (!m->msg3)
        return false;
    uint8_t *p = m->msg3 + 8;
    p[0] = (uint8_t)(o->provide >> 24);
    p[1] = (uint8_t)(o->provide >> 16);
    p[2] = (uint8_t)(o->provide >> 8);
    p[3] = (uint8_t)o->provide;
    put16(p + 4, o->pad_c_len);
    if (o->pad && o->pad_c_len)
        memcpy(p + 6, o->pad, o->pad_c_len);
    put16(p + 6 + o->pad_c_len, o->ia_len);
    if (o->ia_len)
        memcpy(p + 8 + o->pad_c_len, o->ia, o->ia_len);
    return true;
}

hk_mse_init *hk_mse_init_new(hk_mem *mem, const hk_mse_init_opts *o)
{
    if (o->pad_a_len > HK_MSE_INIT_FIELD_MAX || o->pad_c_len > HK_MSE_INIT_FIELD_MAX || o->ia_len > 65535 ||
        (o->ia_len && !o->ia) || !o->priv)
        return NULL;
    hk_mse_init *m = hk_mem_calloc(mem, 1, sizeof *m);
    if (!m)
        return NULL;
    m->mem = mem;
    m->provide = o->provide;
    memcpy(m->priv, o->priv, sizeof m->priv);
    memcpy(m->skey, o->skey, sizeof m->skey);
    m->out_cap = HK_MSE_KEY_LEN + HK_MSE_INIT_FIELD_MAX + 40 + 8 + 4 + 2 + HK_MSE_INIT_FIELD_MAX + 2 + o->ia_len;
    m->out = hk_mem_alloc(mem, m->out_cap);
    if (!m->out || !build_msg3(m, o) || hk_mse_dh_public(m->priv, m->out) != 0) {
        hk_mse_init_free(m);
        return NULL;
    }
    if (o->pad_a_len) {
        if (o->pad)
            memcpy(m->out + HK_MSE_KEY_LEN, o->pad, o->pad_a_len);
        else
            memset(m->out + HK_MSE_KEY_LEN, 0, o->pad_a_len);
    }
    m->out_len = HK_MSE_KEY_LEN + o->pad_a_len;
    return m;
}

static hk_mse_status fail(hk_mse_init *m, const char *why)
{
    m->state = ST_FAIL;
    m->err = why;
    return HK_MSE_FAIL;
}

/* Yb is in: S, the keys, and the third message. */
static hk_mse_status on_yb(hk_mse_init *m)
{
    if (hk_mse_dh_secret(m->priv, m->buf, m->s) != 0)
        return fail(m, "degenerate public key Yb");
    m->tx = hk_mse_cipher(m->mem, "keyA", m->s, m->skey);
    m->rx = hk_mse_cipher(m->mem, "keyB", m->s, m->skey);
    if (!m->tx || !m->rx)
        return fail(m, "out of memory for the ciphers");
    hk_cipher_apply(m->rx, m->enc_vc, m->enc_vc, 8); /* ENCRYPT(VC) as B will send it; rx is now past it */
    uint8_t *o = m->out + m->out_len;
    uint8_t req2[20], req3[20];
    hk_mse_hash("req1", m->s, sizeof m->s, NULL, 0, o);
    hk_mse_hash("req2", m->skey, 20, NULL, 0, req2);
    hk_mse_hash("req3", m->s, sizeof m->s, NULL, 0, req3);
    for (int i = 0; i < 20; i++)
        o[20 + i] = req2[i] ^ req3[i];
    hk_cipher_apply(m->tx, m->msg3, o + 40, m->msg3_len);
    m->out_len += 40 + m->msg3_len;
    m->have = 0;
    m->state = ST_SYNC;
    return HK_MSE_NEED_MORE;
}

static hk_mse_status sync_vc(hk_mse_init *m, const uint8_t *in, size_t len, size_t *at)
{
    while (*at < len) {
        if (m->have == VC_WINDOW)
            return fail(m, "no encrypted VC within PadB's bound");
        m->buf[m->have++] = in[(*at)++];
        if (m->have >= 8 && memcmp(m->buf + m->have - 8, m->enc_vc, 8) == 0) {
            m->have = 0;
            m->state = ST_SEL;
            return HK_MSE_NEED_MORE;
        }
    }
    return m->have == VC_WINDOW ? fail(m, "no encrypted VC within PadB's bound") : HK_MSE_NEED_MORE;
}

static hk_mse_status on_select(hk_mse_init *m)
{
    uint8_t *h = m->buf;
    hk_cipher_apply(m->rx, h, h, 6);
    m->selected = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    if ((m->selected != HK_MSE_CRYPTO_RC4 && m->selected != HK_MSE_CRYPTO_PLAIN) || !(m->selected & m->provide))
        return fail(m, "crypto_select is not one method we offered");
    m->padd_left = (uint16_t)(h[4] << 8 | h[5]);
    if (m->padd_left > HK_MSE_PAD_MAX)
        return fail(m, "len(PadD) above 512");
    m->state = ST_PADD;
    return HK_MSE_NEED_MORE;
}

static hk_mse_status finish(hk_mse_init *m, hk_mse_result *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out->info_hash, m->skey, 20);
    out->selected = m->selected;
    out->provided = m->provide;
    bool rc4 = m->selected == HK_MSE_CRYPTO_RC4;
    out->rx = (hk_mse_rx){.cipher = rc4 ? m->rx : NULL, .ia_left = 0, .rc4 = rc4};
    if (!rc4)
        hk_cipher_free(m->rx);
    out->send = m->tx;
    m->rx = m->tx = NULL;
    m->state = ST_DONE;
    return HK_MSE_DONE;
}

static void skip_padd(hk_mse_init *m, const uint8_t *in, size_t len, size_t *at)
{
    uint8_t scratch[64];
    while (m->padd_left && *at < len) {
        size_t k = len - *at;
        if (k > m->padd_left)
            k = m->padd_left;
        if (k > sizeof scratch)
            k = sizeof scratch;
        hk_cipher_apply(m->rx, in + *at, scratch, k);
        *at += k;
        m->padd_left = (uint16_t)(m->padd_left - k);
    }
}

hk_mse_status hk_mse_init_feed(hk_mse_init *m, const uint8_t *in, size_t len, size_t *consumed, hk_mse_result *out)
{
    size_t at = 0;
    hk_mse_status st = HK_MSE_NEED_MORE;
    *consumed = 0;
    if (m->state == ST_FAIL || m->state == ST_DONE)
        return m->state == ST_DONE ? fail(m, "fed after the handshake was done") : HK_MSE_FAIL;
    while (st == HK_MSE_NEED_MORE && (at < len || (m->state == ST_PADD && m->padd_left == 0))) {
        if (m->state == ST_YB) {
            size_t n = min_sz((size_t)HK_MSE_KEY_LEN - m->have, len - at);
            memcpy(m->buf + m->have, in + at, n);
            m->have = (uint16_t)(m->have + n);
            at += n;
            if (m->have == HK_MSE_KEY_LEN)
                st = on_yb(m);
        } else if (m->state == ST_SYNC) {
            st = sync_vc(m, in, len, &at);
        } else if (m->state == ST_SEL) {
            size_t n = min_sz((size_t)6 - m->have, len - at);
            memcpy(m->buf + m->have, in + at, n);
            m->have = (uint16_t)(m->have + n);
            at += n;
            if (m->have == 6)
                st = on_select(m);
        } else if (m->state == ST_PADD) {
            skip_padd(m, in, len, &at);
            if (m->padd_left == 0)
                st = finish(m, out);
        } else {
            st = fail(m, "internal state");
        }
    }
    *consumed = at;
    return st;
}

const uint8_t *hk_mse_init_output(hk_mse_init *m, size_t *len)
{
    *len = m->out_len;
    m->out_len = 0;
    return m->out;
}

const char *hk_mse_init_error(const hk_mse_init *m)
{
    return m->err;
}

void hk_mse_init_free(hk_mse_init *m)
{
    if (!m)
        return;
    hk_cipher_free(m->rx);
    hk_cipher_free(m->tx);
    hk_mem_free(m->mem, m->msg3, m->msg3_len);
    hk_mem_free(m->mem, m->out, m->out_cap);
    hk_mem_free(m->mem, m, sizeof *m);
}
