/* mse: the responder (side B) of the MSE/PE handshake ("Message Stream Encryption", the Azureus/Vuze spec), one
 * I/O-free state machine per incoming connection.
 *
 * Contract
 * --------
 * The seeder is always side B. The caller tells plain from encrypted by the first bytes (a plain handshake starts
 * with 0x13 "BitTorrent protocol"; anything else is MSE) and feeds every byte of an MSE connection, in any chunking,
 * to hk_mse_feed. The spec's exchange, as this object runs it:
 *
 *   A->B  Ya (96 bytes), PadA (0..512)
 *   B->A  Yb (96 bytes), PadB (0..512 random bytes)                sent as soon as Ya is in
 *   A->B  HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
 *         ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
 *   B->A  ENCRYPT(VC, crypto_select, len(PadD) = 0)                sent once len(IA) is in (hk_mse_feed: DONE)
 *   then  both directions: the payload stream (RC4 or plaintext, as selected)
 *
 * DH: 768-bit, the spec's prime P, g = 2, a 160-bit private key from the caller's random bytes, Y and S as 96-byte
 * big-endian numbers (core/mse_crypto.h). Ya outside 2..P-2 fails. HASH is SHA-1. VC is 8 zero bytes.
 * Bounds, each checked before the value is used: PadA at most 512 (HASH('req1', S) must end within 628 bytes of the
 * stream's start, else FAIL "no req1 ..."), len(PadC) at most 512, crypto_provide must offer a method the policy
 * accepts. SKEY is identified by the caller's lookup (an index keyed by HASH('req2', info-hash): O(1), see
 * core/skey_index.h). IA is NOT buffered: DONE comes right after len(IA); the IA (the peer's BitTorrent handshake,
 * possibly followed by more) is the start of the payload stream and is decrypted by the caller through the hk_mse_rx
 * it receives (IA is always RC4-encrypted, even when plaintext is selected for what follows).
 * Selection (crypto_select is always one of the methods offered): HK_ENC_ALLOW: RC4 when offered, else plaintext;
 * HK_ENC_PREFER_PLAIN: plaintext when offered, else RC4; HK_ENC_REQUIRE: RC4 only (a peer offering only plaintext
 * fails). HK_ENC_OFF is the caller's business (it never creates the object).
 *
 * Output: every byte the object wants sent is returned by hk_mse_output (already encrypted where the spec says so):
 * the caller sends them as they are, before calling hk_mse_feed again. After DONE with RC4 selected the caller
 * installs result.send (keyB) for everything it sends from then on; with plaintext selected it sends in clear (and
 * frees result.send, which the object still hands over for uniformity).
 *
 * Memory: the object holds at most sizeof(hk_mse) bytes (hk_mse_memory(), 1,416 bytes on x86-64: Ya, S, the sync
 * window), allocated from the caller's hk_mem, whatever the peer sends; the DH computation borrows libcrypto's
 * heap for the length of one hk_mse_feed call (not accounted).
 *
 * Return codes: hk_mse_new returns NULL when memory runs out. hk_mse_feed returns HK_MSE_NEED_MORE (every byte
 * consumed), HK_MSE_DONE (*consumed bytes used, the rest of the input is payload for hk_mse_rx_apply; the result is
 * filled once and the ciphers are then the caller's), HK_MSE_FAIL (hk_mse_error says why; sticky: later calls
 * return HK_MSE_FAIL and consume nothing).
 */
#ifndef HEKATE_MSE_H
#define HEKATE_MSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"
#include "seeder.h"
#include "stream_cipher.h"

#define HK_MSE_KEY_LEN 96          /* Ya, Yb, S: 768 bits */
#define HK_MSE_PRIV_LEN 20         /* 160-bit private keys */
#define HK_MSE_PAD_MAX 512         /* PadA, PadB, PadC, PadD */
#define HK_MSE_SYNC_MAX (HK_MSE_KEY_LEN + HK_MSE_PAD_MAX + 20) /* 628: HASH('req1', S) ends by here */
#define HK_MSE_CRYPTO_PLAIN 0x01u  /* crypto_provide / crypto_select bits */
#define HK_MSE_CRYPTO_RC4 0x02u

typedef enum hk_mse_status {
    HK_MSE_NEED_MORE = 0,
    HK_MSE_DONE,
    HK_MSE_FAIL,
} hk_mse_status;

/* The receive direction once the handshake is done: the next ia_left bytes are RC4 (keyA) whatever was selected;
 * the bytes after them are RC4 when rc4, else in clear. */
typedef struct hk_mse_rx {
    hk_cipher *cipher;             /* keyA; NULL once nothing more is to be decrypted (plaintext, IA consumed) */
    uint32_t ia_left;
    bool rc4;
} hk_mse_rx;

typedef struct hk_mse_result {
    uint8_t info_hash[20];         /* SKEY: the torrent the peer asked for */
    uint32_t selected;             /* HK_MSE_CRYPTO_RC4 or HK_MSE_CRYPTO_PLAIN */
    uint32_t provided;             /* the peer's crypto_provide */
    uint16_t ia_len;               /* len(IA) */
    hk_mse_rx rx;                  /* owned by the caller: hk_mse_rx_free */
    hk_cipher *send;               /* keyB, owned by the caller */
} hk_mse_result;

/* SKEY lookup: true and *info_hash_out filled when a served torrent has HASH('req2', info-hash) == req2. */
typedef bool (*hk_mse_find_fn)(void *ctx, const uint8_t req2[20], uint8_t info_hash_out[20]);

typedef struct hk_mse hk_mse;

/* A responder: priv is the 160-bit private key (from the runtime's random bytes), pad_b the random PadB bytes
 * (pad_b_len <= 512, copied), find the SKEY lookup (called at most once, from inside hk_mse_feed). */
hk_mse *hk_mse_new(hk_mem *mem, hk_encryption policy, const uint8_t priv[HK_MSE_PRIV_LEN], const uint8_t *pad_b,
                   size_t pad_b_len, hk_mse_find_fn find, void *find_ctx);
hk_mse_status hk_mse_feed(hk_mse *m, const uint8_t *in, size_t len, size_t *consumed, hk_mse_result *out);
/* Bytes to send now (valid until the next call on m); *len 0 when none. Taking them empties the output. */
const uint8_t *hk_mse_output(hk_mse *m, size_t *len);
/* Why the handshake failed (a static string), or NULL. */
const char *hk_mse_error(const hk_mse *m);
/* Bytes consumed from the stream so far (Ya included). */
uint64_t hk_mse_position(const hk_mse *m);
/* Heap bytes one responder holds (constant). */
size_t hk_mse_memory(void);
/* Frees m and any cipher it still owns (NULL is a no-op). */
void hk_mse_free(hk_mse *m);

/* Turns len received payload bytes into plaintext (in may equal out). */
void hk_mse_rx_apply(hk_mse_rx *rx, const uint8_t *in, uint8_t *out, size_t len);
/* True when hk_mse_rx_apply would change bytes (RC4, or IA still pending). */
static inline bool hk_mse_rx_active(const hk_mse_rx *rx)
{
    return rx->cipher != NULL;
}
void hk_mse_rx_free(hk_mse_rx *rx);

const char *hk_mse_method_name(uint32_t selected);

#endif
