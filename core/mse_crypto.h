/* mse_crypto: the computations MSE/PE's two sides share: 768-bit Diffie-Hellman over the spec's prime, the SHA-1
 * "HASH(...)" of labelled parts, and the derivation of the two RC4 keys.
 *
 * Contract
 * --------
 * Pure functions over libcrypto's BN_* and SHA1 (on the purity allow-list). Numbers are 96-byte big-endian,
 * left-padded with zeros. Return codes: hk_mse_dh_public returns 0, or -1 when libcrypto fails (memory);
 * hk_mse_dh_secret returns 0, or -1 when the other side's Y is outside 2..P-2 (a degenerate key) or libcrypto fails.
 */
#ifndef HEKATE_MSE_CRYPTO_H
#define HEKATE_MSE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "stream_cipher.h"

#define HK_MSE_DH_LEN 96

/* The spec's prime P (768 bits, big-endian). */
extern const uint8_t hk_mse_prime[HK_MSE_DH_LEN];

/* y = 2^priv mod P. */
int hk_mse_dh_public(const uint8_t priv[20], uint8_t y[HK_MSE_DH_LEN]);
/* s = y_other^priv mod P. */
int hk_mse_dh_secret(const uint8_t priv[20], const uint8_t y_other[HK_MSE_DH_LEN], uint8_t s[HK_MSE_DH_LEN]);
/* out = SHA1(label || a || b); a or b may be NULL with length 0. */
void hk_mse_hash(const char *label, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t out[20]);
/* The RC4-drop1024 cipher keyed HASH(label, S, SKEY) ("keyA" or "keyB"); NULL when memory runs out. */
hk_cipher *hk_mse_cipher(hk_mem *mem, const char *label, const uint8_t s[HK_MSE_DH_LEN], const uint8_t skey[20]);

#endif
