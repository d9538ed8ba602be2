/* shard: which of N processes serves a torrent (--shard=K/N), so a fleet over one shared catalogue splits it with no
 * coordination and no overlap.
 *
 * Contract
 * --------
 * The shard of a torrent is a pure function of its (v1, SHA-1) info-hash, stable across versions and hosts so other
 * tools can compute it: the first 8 bytes of the info-hash read as a big-endian unsigned 64-bit integer, modulo N.
 * Shards are numbered from 0: with N shards, K is 0..N-1, and every torrent falls in exactly one of them (a
 * Kubernetes StatefulSet pod ordinal is K as it is). N = 1 (or no --shard) serves everything.
 * Example: info-hash 0123456789abcdef... is 0x0123456789abcdef = 81985529216486895; mod 3 = 0: shard 0 of 3.
 */
#ifndef HEKATE_SHARD_H
#define HEKATE_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HK_SHARD_MAX 65536u /* largest N accepted */

/* The shard (0..n-1) of info_hash among n (n >= 1). */
uint32_t hk_shard_of(const uint8_t info_hash[20], uint32_t n);
/* true if info_hash falls in shard k of n; n 0 or 1: every torrent does. */
bool hk_shard_has(const uint8_t info_hash[20], uint32_t k, uint32_t n);
/* Parses "K/N" (decimal digits only, 1 <= N <= HK_SHARD_MAX, 0 <= K < N). 0, or -1 with err naming `what`, the text
 * and what is expected. */
int hk_shard_parse(const char *what, const char *s, uint32_t *k, uint32_t *n, char *err, size_t errlen);

#endif
