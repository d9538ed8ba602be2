/* mse_crypto: owns MSE/PE's shared computations: DH over the spec's 768-bit prime with libcrypto's BN_*, the SHA-1
 * of labelled parts, and the keyA/keyB ciphers (see mse_crypto.h). */
/* OpenSSL 3 marks the low-level SHA1_* calls deprecated; they remain its plain primitive (as RC4, stream_cipher.c). */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "mse_crypto.h"

#include <openssl/bn.h>
#include <openssl/sha.h>
#include <string.h>

const uint8_t hk_mse_prime[HK_MSE_DH_LEN] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xC9, 0x0F, 0xDA, 0xA2, 0x21, 0x68, 0xC2, 0x34,
    0xC4, 0xC6, 0x62, 0x8B, 0x80, 0xDC, 0x1C, 0xD1, 0x29, 0x02, 0x4E, 0x08, 0x8A, 0x67, 0xCC, 0x74,
    0x02, 0x0B, 0xBE, 0xA6, 0x3B, 0x13, 0x9B, 0x22, 0x51, 0x4A, 0x08, 0x79, 0x8E, 0x34, 0x04, 0xDD,
    0xEF, 0x95, 0x19, 0xB3, 0xCD, 0x3A, 0x43, 0x1B, 0x30, 0x2B, 0x0A, 0x6D, 0xF2, 0x5F, 0x14, 0x37,
    0x4F, 0xE1, 0x35, 0x6D, 0x6D, 0x51, 0xC2, 0x45, 0xE4, 0x85, 0xB5, 0x76, 0x62, 0x5E, 0x7E, 0xC6,
    0xF4, 0x4C, 0x42, 0xE9, 0xA6, 0x3A, 0x36, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x05, 0x63,
};

/* out = base^priv mod P; base NULL means g = 2. When check, base must lie in 2..P-2. */
static int mod_exp(const uint8_t *base, const uint8_t priv[20], uint8_t out[HK_MSE_DH_LEN], int check)
{
    int rc = -1;
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *p = BN_bin2bn(hk_mse_prime, HK_MSE_DH_LEN, NULL);
    BIGNUM *b = base ? BN_bin2bn(base, HK_MSE_DH_LEN, NULL) : BN_new();
    BIGNUM *x = BN_bin2bn(priv, 20, NULL);
    BIGNUM *r = BN_new();
    BIGNUM *lim = BN_new();
    if (!ctx || !p || !b || !x || !r || !lim)
        goto out;
    if (!base && !BN_set_word(b, 2))
        goto out;
    if (check) {
        /* 2 <= base <= P - 2: 0, 1 and P - 1 give a shared secret an observer knows */
        if (!BN_set_word(lim, 1) || BN_cmp(b, lim) <= 0 || !BN_sub(lim, p, lim) || BN_cmp(b, lim) >= 0)
            goto out;
    }
    if (!BN_mod_exp(r, b, x, p, ctx) || BN_bn2binpad(r, out, HK_MSE_DH_LEN) != HK_MSE_DH_LEN)
        goto out;
    rc = 0;
out:
    BN_free(lim);
    BN_free(r);
    BN_clear_free(x);
    BN_free(b);
    BN_free(p);
    BN_CTX_free(ctx);
    return rc;
}

int hk_mse_dh_public(const uint8_t priv[20], uint8_t y[HK_MSE_DH_LEN])
{
    return mod_exp(NULL, priv, y, 0);
}

int hk_mse_dh_secret(const uint8_t priv[20], const uint8_t y_other[HK_MSE_DH_LEN], uint8_t s[HK_MSE_DH_LEN])
{
    return mod_exp(y_other, priv, s, 1);
}

void hk_mse_hash(const char *label, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t out[20])
{
    /* the low-level calls: SHA1() goes through an EVP fetch each time (about 8x slower on 24 bytes), and the SKEY
     * index hashes on every probe */
    SHA_CTX c;
    SHA1_Init(&c);
    SHA1_Update(&c, label, strlen(label));
    if (alen)
        SHA1_Update(&c, a, alen);
    if (blen)
        SHA1_Update(&c, b, blen);
    SHA1_Final(out, &c);
}

hk_cipher *hk_mse_cipher(hk_mem *mem, const char *label, const uint8_t s[HK_MSE_DH_LEN], const uint8_t skey[20])
{
    uint8_t key[20];
    hk_mse_hash(label, s, HK_MSE_DH_LEN, skey, 20, key);
    return hk_cipher_new_rc4(mem, key, sizeof key);
}
