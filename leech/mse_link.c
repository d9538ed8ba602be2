/* mse_link: owns one connection's MSE initiator and negotiated ciphers (see mse_link.h). */
#include "mse_link.h"

#include <stdlib.h>
#include <string.h>

#include "mse_initiator.h"
#include "stream_cipher.h"

/* Buffer `which` (0: received, 1: sent) of at least n bytes. */
static uint8_t *buffer(lk_mse_link *k, int which, size_t n)
{
    if (n > k->cap[which]) {
        size_t cap = n > 65536 ? n : 65536;
        uint8_t *b = realloc(k->buf[which], cap);
        if (b == NULL)
            abort();
        k->buf[which] = b;
        k->cap[which] = cap;
    }
    return k->buf[which];
}

const uint8_t *lk_mse_link_start(lk_mse_link *k, bool rc4, const uint8_t info_hash[20], const uint8_t priv[20],
                                 const uint8_t pad[64], const uint8_t *hs, size_t hl, size_t *len)
{
    lk_mse_link_reset(k);
    hk_mse_init_opts o = {.priv = priv, .provide = rc4 ? HK_MSE_CRYPTO_RC4 : HK_MSE_CRYPTO_PLAIN, .pad = pad,
                          .pad_a_len = pad[0] % 64, .pad_c_len = pad[1] % 32, .ia = hs, .ia_len = hl};
    memcpy(o.skey, info_hash, 20);
    k->init = hk_mse_init_new(&k->mem, &o);
    if (k->init == NULL)
        abort();
    return hk_mse_init_output(k->init, len);
}

long lk_mse_link_feed(lk_mse_link *k, const uint8_t *p, size_t n, const uint8_t **out, size_t *out_len)
{
    *out_len = 0;
    *out = NULL;
    if (k->init == NULL)
        return -1;
    size_t used = 0;
    hk_mse_status st = hk_mse_init_feed(k->init, p, n, &used, &k->res);
    *out = hk_mse_init_output(k->init, out_len);
    if (st == HK_MSE_FAIL)
        return -1;
    if (st == HK_MSE_NEED_MORE)
        return (long)n;
    /* done: what it output is still to be sent, so the initiator (which owns those bytes) lives until reset */
    k->done = true;
    k->rc4 = k->res.selected == HK_MSE_CRYPTO_RC4;
    return (long)used;
}

const char *lk_mse_link_error(const lk_mse_link *k)
{
    return k->init ? hk_mse_init_error(k->init) : "no handshake under way";
}

const uint8_t *lk_mse_link_encrypt(lk_mse_link *k, const uint8_t *b, size_t n)
{
    if (!k->rc4)
        return b;
    uint8_t *e = buffer(k, 1, n);
    hk_cipher_apply(k->res.send, b, e, n);
    return e;
}

const uint8_t *lk_mse_link_decrypt(lk_mse_link *k, const uint8_t *p, size_t n)
{
    if (!hk_mse_rx_active(&k->res.rx))
        return p;
    uint8_t *d = buffer(k, 0, n);
    if (p == NULL)
        memset(d, 0, n);
    hk_mse_rx_apply(&k->res.rx, p ? p : d, d, n);
    return p ? d : NULL;
}

void lk_mse_link_reset(lk_mse_link *k)
{
    hk_mse_init_free(k->init);
    k->init = NULL;
    hk_mse_rx_free(&k->res.rx);
    hk_cipher_free(k->res.send);
    memset(&k->res, 0, sizeof k->res);
    k->done = k->rc4 = false;
}

void lk_mse_link_free(lk_mse_link *k)
{
    lk_mse_link_reset(k);
    for (int i = 0; i < 2; i++) {
        free(k->buf[i]);
        k->buf[i] = NULL;
        k->cap[i] = 0;
    }
}
