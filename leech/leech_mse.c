/* leech_mse: owns how a leecher's bytes meet MSE/PE (see leech_mse.h): the handshake started with keys and pads from
 * the peer's own generator over the shared link (mse_link.h), the seeder's answer fed to it, the ciphers after. */
#include "leech_mse.h"

#include <string.h>

void lk_send(lk_peer *l, const uint8_t *b, size_t n)
{
    if (l->par->encryption != LK_ENC_NONE && !l->mse.done)
        return; /* nothing but the handshake's own bytes before the seeder has answered */
    l->io.send(l->io.ctx, l->par->encryption == LK_ENC_NONE ? b : lk_mse_link_encrypt(&l->mse, b, n), n);
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
    uint8_t priv[HK_MSE_PRIV_LEN], pad[64];
    const lk_hooks *h = l->io.hooks;
    if (h && h->random_fill) {
        h->random_fill(l->io.ctx, priv, sizeof priv);
        h->random_fill(l->io.ctx, pad, sizeof pad);
    } else {
        fill(&l->mse_rng, priv, sizeof priv);
        fill(&l->mse_rng, pad, sizeof pad);
    }
    size_t n;
    const uint8_t *out = lk_mse_link_start(&l->mse, l->par->encryption == LK_ENC_RC4, l->t->info_hash, priv, pad, hs,
                                           hl, &n);
    l->io.send(l->io.ctx, out, n);
}

long lk_mse_feed(lk_peer *l, const uint8_t *p, size_t n)
{
    const uint8_t *out;
    size_t k;
    long used = lk_mse_link_feed(&l->mse, p, n, &out, &k);
    if (k > 0)
        l->io.send(l->io.ctx, out, k);
    if (used >= 0 && l->mse.done) {
        l->mse_handshakes++;
        l->mse_rc4_handshakes += l->mse.rc4 ? 1u : 0u;
    }
    return used;
}
