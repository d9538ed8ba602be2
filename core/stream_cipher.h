/* stream_cipher: one direction of an encrypted connection's byte stream (MSE/PE's RC4, first 1024 bytes discarded).
 *
 * Contract
 * --------
 * A cipher is a core object with no I/O: the MSE handshake (core/mse.h) creates one per direction once the shared
 * secret is known. The receive direction is applied by the core to the bytes the backend delivers; the send direction
 * is handed to the backend with the seeder runtime's set_cipher action (core/seeder_runtime.h), which applies it to
 * every byte it writes, in stream order, at the moment it writes them (so nothing is encrypted ahead of the socket).
 * The RC4 primitive comes from libcrypto (pure computation, on the purity allow-list).
 *
 * Return codes: hk_cipher_new_rc4 returns the cipher or NULL when memory runs out or the key is empty; the others
 * cannot fail.
 */
#ifndef HEKATE_STREAM_CIPHER_H
#define HEKATE_STREAM_CIPHER_H

#include <stddef.h>
#include <stdint.h>

#include "mem.h"

typedef struct hk_cipher hk_cipher;

/* RC4 keyed with key[0..keylen) whose first 1024 bytes of keystream are discarded (MSE's "RC4-drop1024"); its
 * memory is counted in *mem (the owner's counter), which must outlive it. */
hk_cipher *hk_cipher_new_rc4(hk_mem *mem, const uint8_t *key, size_t keylen);
/* out[i] = in[i] xor keystream; in may equal out; advances the stream by len bytes. */
void hk_cipher_apply(hk_cipher *c, const uint8_t *in, uint8_t *out, size_t len);
/* Bytes one cipher holds on the heap (reported per encrypted peer). */
size_t hk_cipher_memory(void);
/* Frees c (NULL is a no-op). */
void hk_cipher_free(hk_cipher *c);

#endif
