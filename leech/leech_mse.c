/* leech_mse: owns the MSE/PE initiator side of a leecher's connection (see leech_mse.h): starting the handshake with
 * keys and pads from the peer's own generator, feeding it the seeder's answer, and the ciphers afterwards. */
#include "leech_mse.h"

#include <stdlib.h>
#include <string.h>

#include "mse_initiator.h"
#include "stream_cipher.h"

/* Buffer `which` (0: received, 1: sent) of at least n bytes. */
static uint8_t *scratch(lk_peer *l, int which, size_t n)
{
    if (n > l->scratch_cap[which]) {
        size_t cap = n > 65536 ? n : 65536;
        uint8_t *b = realloc(l->scratch[which], cap);
        if (b == NULL)
            abort();
        l->scratch[which] = b;
        l->scratch_cap[which] = cap;
    }
    return l->scratch[which];
}

void lk_send(lk_peer *l, const uint8_t *b, size_t n)
{
    if (l->par->encryption == LK_ENC_NONE || (l->mse_done && !l->mse_rc4)) {
        l->io.send(l->io.ctx, b, n);
        return;
    }
    if (!l->mse_done)
        return; /* nothing but the handshake's own bytes before the seeder has answered */
    uint8_t *e = scratch(l, 1, n);
    hk_cipher_apply(l->mse_res.send, b, e, n);
    l->io.send(l->io.ctx, e, n);
}

static void fill(uint64_t *rng, uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = lk_splitmix(rng);
        memcpy(b + i, &v, n - i < 8 ? n - i : 8);
    }
}

void lk_mse_start(lk_peer *l, const uint8_t *hs, size_t hl)
{
    lk_mse_reset(l);
    uint8_t priv[HK_MSE_PRIV_LEN], pad[64];
    fill(&l->mse_rng, priv, sizeof priv);
    fill(&l->mse_rng, pad, sizeof pad);
    hk_mse_init_opts o = {.priv = priv,
                          .provide = l->par->encryption == LK_ENC_RC4 ? HK_MSE_CRYPTO_RC4 : HK_MSE_CRYPTO_PLAIN,
                          .pad = pad, .pad_a_len = pad[0] % 64, .pad_c_len = pad[1] % 32, .ia = hs, .ia_len = hl};
    memcpy(o.skey, l->t->info_hash, 20);
    l->mse = hk_mse_init_new(&l->mse_mem, &o);
    if (l->mse == NULL)
        abort();
    size_t n;
    const uint8_t *out = hk_mse_init_output(l->mse, &n);
    l->io.send(l->io.ctx, out, n);
}

long lk_mse_feed(lk_peer *l, const uint8_t *p, size_t n)
{
    if (l->mse == NULL)
        return -1;
    size_t used = 0, k;
    hk_mse_status st = hk_mse_init_feed(l->mse, p, n, &used, &l->mse_res);
    const uint8_t *out = hk_mse_init_output(l->mse, &k);
    if (k > 0)
        l->io.send(l->io.ctx, out, k);
    if (st == HK_MSE_FAIL)
        return -1;
    if (st == HK_MSE_NEED_MORE)
        return (long)n;
    hk_mse_init_free(l->mse);
    l->mse = NULL;
    l->mse_done = true;
    l->mse_rc4 = l->mse_res.selected == HK_MSE_CRYPTO_RC4;
    l->mse_handshakes++;
    l->mse_rc4_handshakes += l->mse_rc4 ? 1u : 0u;
    return (long)used;
}

const uint8_t *lk_mse_rx(lk_peer *l, const uint8_t *p, size_t n)
{
    if (!hk_mse_rx_active(&l->mse_res.rx))
        return p;
    uint8_t *d = scratch(l, 0, n);
    hk_mse_rx_apply(&l->mse_res.rx, p, d, n);
    return d;
}

void lk_mse_reset(lk_peer *l)
{
    hk_mse_init_free(l->mse);
    l->mse = NULL;
    hk_mse_rx_free(&l->mse_res.rx);
    hk_cipher_free(l->mse_res.send);
    memset(&l->mse_res, 0, sizeof l->mse_res);
    l->mse_done = l->mse_rc4 = false;
}
