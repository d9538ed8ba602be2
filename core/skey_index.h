/* skey_index: MSE/PE's SKEY lookup: HASH('req2', info-hash) -> torrent record, in O(1) at 10^6 torrents.
 *
 * Contract
 * --------
 * A second hk_ih_index (core/ih_index.h) over the same records as the owner's info-hash index, whose key for a
 * record is SHA1("req2" || info-hash), recomputed on demand (into the index's one scratch buffer) instead of stored.
 * The owner stores, in each record, the 32-bit hk_skey_mix of its info-hash (the hk_mix_info_hash of that key) and
 * returns it from its mix function (hk_ih_set_mix_fn), so growing, shrinking and deleting never hash, and a lookup
 * compares stored mixes along its probe run and computes one SHA-1 to verify the candidate (a mix collision only
 * costs another SHA-1). The index holds no per-record array of its own (issue 10: the mixes were an array by record
 * number here, 4.2 bytes per torrent at 10^6; they now sit in 4 bytes of the owner's record, core/torrent_table.h):
 * bytes per torrent are the slot array's 4 / load (ih_index.h: 5.3 to 8 while torrents are only added, up to 32
 * after removals at its 1/8 shrink bound): 5.4 at 10^6. Not thread-safe (the scratch buffer), like the rest of the
 * core. The owner sets a record's info-hash and its mix before inserting it, keeps both while it is in the index,
 * and removes it before either changes or goes away.
 *
 * Return codes: hk_skey_insert returns 0, or -1 when memory runs out (index unchanged); hk_skey_find returns the
 * record or HK_IH_NONE.
 */
#ifndef HEKATE_SKEY_INDEX_H
#define HEKATE_SKEY_INDEX_H

#include "ih_index.h"

typedef struct hk_skey_index {
    hk_ih_index ix;
    hk_ih_key_fn info_hash_of;     /* the owner's info-hash of a record */
    hk_ih_mix_fn mix_of;           /* the owner's stored hk_skey_mix of a record */
    const void *owner;
    uint8_t scratch[20];
} hk_skey_index;

/* The index must not move after init (it is its own key function's owner). Both functions are required. */
void hk_skey_init(hk_skey_index *sk, hk_mem *mem, hk_ih_key_fn info_hash_of, hk_ih_mix_fn mix_of, const void *owner);
void hk_skey_free(hk_skey_index *sk);
/* What the owner stores for a record with this info-hash: hk_mix_info_hash(SHA1("req2" || info_hash)). One SHA-1. */
uint32_t hk_skey_mix(const uint8_t info_hash[20]);
/* Adds record rec (its info-hash and mix already set by the owner). */
int hk_skey_insert(hk_skey_index *sk, uint32_t rec);
/* Removes the record with this info-hash (no-op when absent). */
void hk_skey_remove(hk_skey_index *sk, const uint8_t info_hash[20]);
uint32_t hk_skey_find(hk_skey_index *sk, const uint8_t req2[20]);
size_t hk_skey_bytes(const hk_skey_index *sk);

#endif
