/* mse_link: one connection's MSE/PE initiator side (BEP-less "Message Stream Encryption"), shared by hekate-swarm's
 * peers (leech/leech_mse.c) and hekate-sim's (backend-sim/peer_wire.c): the core's initiator (core/mse_initiator.h)
 * with the BitTorrent handshake as its initial payload, then the ciphers it negotiated. Pure: the caller draws the
 * private key and the pads from its own randomness, and sends the bytes it is handed.
 *
 * Contract
 * --------
 * lk_mse_link_start() begins a handshake offering RC4 only (rc4) or plaintext only: priv is the 20-byte private key,
 * pad 64 random bytes (pad[0] % 64 bytes of PadA, pad[1] % 32 of PadC, their contents from pad); it returns Ya and
 * PadA, *len bytes to send at once (valid until the next call on k). lk_mse_link_feed() takes the seeder's bytes
 * while the handshake runs and returns how many of them were the handshake's: n when it needs more, fewer once it is
 * done (the rest is the BitTorrent stream), -1 when it failed (lk_mse_link_error says why; sticky until reset);
 * bytes to send (req1, req2^req3, the encrypted VC and the rest) come back in *out / *out_len (valid until the next
 * call). Once done: lk_mse_link_encrypt() returns what to send for b (b itself with plaintext selected, else an
 * internal buffer valid until the next encrypt), lk_mse_link_decrypt() the plaintext of received bytes (p itself
 * when nothing applies, else an internal buffer valid until the next decrypt; p NULL: contentless bytes, the key
 * stream advanced over n zeros and NULL returned). The two buffers are separate, so received bytes stay valid while
 * sending. lk_mse_link_reset() drops the handshake and ciphers (a new connection); lk_mse_link_free() also the
 * buffers (the end). A zeroed lk_mse_link is a valid empty one. Out of memory aborts.
 */
#ifndef HEKATE_LEECH_MSE_LINK_H
#define HEKATE_LEECH_MSE_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"
#include "mse.h"

typedef struct lk_mse_link {
    hk_mem mem;
    struct hk_mse_init *init;    /* the initiator while the handshake runs */
    hk_mse_result res;           /* the negotiated ciphers (send: keyA; rx: keyB) */
    bool done, rc4;
    uint8_t *buf[2];             /* decryption [0] and encryption [1] buffers */
    size_t cap[2];
} lk_mse_link;

const uint8_t *lk_mse_link_start(lk_mse_link *k, bool rc4, const uint8_t info_hash[20], const uint8_t priv[20],
                                 const uint8_t pad[64], const uint8_t *hs, size_t hl, size_t *len);
long lk_mse_link_feed(lk_mse_link *k, const uint8_t *p, size_t n, const uint8_t **out, size_t *out_len);
const char *lk_mse_link_error(const lk_mse_link *k);
const uint8_t *lk_mse_link_encrypt(lk_mse_link *k, const uint8_t *b, size_t n);
const uint8_t *lk_mse_link_decrypt(lk_mse_link *k, const uint8_t *p, size_t n);
void lk_mse_link_reset(lk_mse_link *k);
void lk_mse_link_free(lk_mse_link *k);

#endif
