/* infohash: SHA-1 digests and their text forms (40-char lowercase hex), for info-hashes and piece hashes.
 *
 * Contract
 * --------
 * ih_sha1 hashes a byte range with libcrypto (EVP, SHA-1); it may fail only if libcrypto cannot allocate its
 * context, and then says so by returning false (out is zeroed). ih_hex/ih_from_hex convert a 20-byte digest to and
 * from 40 hex characters. Pure: no I/O, no global state.
 */
#ifndef HEKATE_INFOHASH_H
#define HEKATE_INFOHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IH_LEN 20        /* bytes in a SHA-1 digest */
#define IH_HEX_LEN 40    /* characters in its hex form (plus 1 for the NUL) */

/* out = SHA-1(data[0..len)). Returns false (out zeroed) if libcrypto fails. data may be NULL when len == 0. */
bool ih_sha1(const void *data, size_t len, uint8_t out[IH_LEN]);

/* Writes 40 lowercase hex digits and a NUL into out. */
void ih_hex(const uint8_t hash[IH_LEN], char out[IH_HEX_LEN + 1]);

/* Parses exactly 40 hex digits (either case) from hex[0..len). Returns false on any other input. */
bool ih_from_hex(const char *hex, size_t len, uint8_t out[IH_LEN]);

#endif
