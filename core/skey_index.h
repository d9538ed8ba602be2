/* skey_index: MSE/PE's SKEY lookup: HASH('req2', info-hash) -> torrent record, in O(1) at 10^6 torrents.
 *
 * Contract
 * --------
 * A second hk_ih_index (core/ih_index.h) over the same records as the owner's info-hash index, whose key for a
 * record is SHA1("req2" || info-hash) recomputed on demand (into the index's one scratch buffer) instead of stored:
 * the index holds only its slot array, 4 bytes per slot at a load factor between 1/8 and 3/4 (about 5.3 bytes per
 * torrent at 3/4, at most 32 after heavy removal). A lookup hashes the probe key's home slot and, for each occupied
 * slot on its probe run (about 2 on average), recomputes that record's SHA-1 and compares all 20 bytes, so a match is
 * verified and a collision of home slots only costs a probe. Not thread-safe (the scratch buffer), like the rest of
 * the core. The owner must insert each record after, and remove it before, its info-hash changes or goes away.
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
    const void *owner;
    uint8_t scratch[20];
} hk_skey_index;

/* The index must not move after init (it is its own key function's owner). */
void hk_skey_init(hk_skey_index *sk, hk_mem *mem, hk_ih_key_fn info_hash_of, const void *owner);
void hk_skey_free(hk_skey_index *sk);
int hk_skey_insert(hk_skey_index *sk, uint32_t rec);
/* Removes the record with this info-hash (no-op when absent). */
void hk_skey_remove(hk_skey_index *sk, const uint8_t info_hash[20]);
uint32_t hk_skey_find(hk_skey_index *sk, const uint8_t req2[20]);
size_t hk_skey_bytes(const hk_skey_index *sk);

#endif
