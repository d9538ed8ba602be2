/* skey_index: MSE/PE's SKEY lookup: HASH('req2', info-hash) -> torrent record, in O(1) at 10^6 torrents.
 *
 * Contract
 * --------
 * A second hk_ih_index (core/ih_index.h) over the same records as the owner's info-hash index, whose key for a
 * record is SHA1("req2" || info-hash), recomputed on demand (into the index's one scratch buffer) instead of stored.
 * What is stored per record is the 32-bit hk_mix_info_hash of that key (hk_ih_set_mix_fn), so growing, shrinking and
 * deleting never hash, and a lookup compares stored mixes along its probe run and computes one SHA-1 to verify the
 * candidate (a mix collision only costs another SHA-1). Bytes per torrent: 4 for the mix (an array by record number,
 * grown by doubling: at most 8) plus the slot array's 4 / load (ih_index.h: 5.3 to 8 while torrents are only added,
 * up to 32 after removals at its 1/8 shrink bound): about 9.3 to 16 while growing; 4.2 + 5.4 at 10^6. Not thread-safe (the scratch buffer), like the rest of the core. The owner inserts each
 * record after its info-hash is set and removes it before the info-hash changes or goes away.
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
    uint32_t *mix;                 /* by record number: hk_mix_info_hash of its req2 hash */
    uint32_t mix_cap;
    hk_mem *mem;
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
