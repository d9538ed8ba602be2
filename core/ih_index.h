/* ih_index: the one info-hash index of the core: 20-byte info-hashes -> 32-bit record numbers of the owner's pool.
 * The seeder's torrent table and the announcer use it; the DHT and the MSE SKEY lookup are meant to as well.
 *
 * Contract
 * --------
 * The index stores record numbers only; the key of a record is read through the owner's key function, so the
 * owner's pool may move (grow) freely and no key is stored twice. Open addressing with linear probing over a
 * power-of-two array of uint32 (record number + 1; 0 = empty); home slot from hk_mix_info_hash. Load factor at most
 * 3/4: the first insert allocates `min_cap` slots, later ones double. With `shrink`, a removal that leaves the table
 * under 1/8 full halves it (never under min_cap; a failed shrink is harmless). Deletion is by backward shift (no
 * tombstones), so lookups never degrade after many add/remove cycles. Every allocation goes through the owner's
 * hk_mem, so memory is accounted where the owner reports it (hk_ih_bytes says how much is the index's).
 *
 * The key function may return a buffer it reuses (each call may overwrite the previous result: the MSE SKEY index
 * computes its keys on demand, core/skey_index.h); the index never holds two of its results at once.
 *
 * A key must be in the index at most once (the owner checks with hk_ih_find before inserting; asserted). The key
 * function must return the same 20 bytes for a record for as long as the record is in the index.
 */
#ifndef HEKATE_IH_INDEX_H
#define HEKATE_IH_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"

#define HK_IH_NONE UINT32_MAX

/* The 20-byte key of record `rec` of `owner`. Required. */
typedef const uint8_t *(*hk_ih_key_fn)(const void *owner, uint32_t rec);
/* Optional: hk_mix_info_hash(key of rec) as the owner stored it, for owners whose keys are costly to produce. */
typedef uint32_t (*hk_ih_mix_fn)(const void *owner, uint32_t rec);

typedef struct hk_ih_index {
    uint32_t *slots;          /* record number + 1; 0 = empty */
    uint32_t cap;             /* slots: a power of two, or 0 before the first insert */
    uint32_t count;           /* records in the index */
    uint32_t min_cap;         /* first capacity and floor of shrinking (a power of two >= 4) */
    bool shrink;
    hk_mem *mem;
    hk_ih_key_fn key;
    hk_ih_mix_fn mix;         /* NULL unless hk_ih_set_mix_fn */
    const void *owner;
} hk_ih_index;

/* An empty index (allocates nothing). min_cap must be a power of two >= 4. */
void hk_ih_init(hk_ih_index *ix, hk_mem *mem, uint32_t min_cap, bool shrink, hk_ih_key_fn key, const void *owner);

/* Gives the index the owner's stored mixes (before the first insert): growing, shrinking and deleting then never
 * fetch a key, and a probe fetches (and compares) a key only for slots whose mix equals the looked-up key's, so a
 * lookup usually fetches one key. The values must be hk_mix_info_hash of the keys (asserted nowhere: the owner's
 * contract). Used by the MSE SKEY index, whose keys are SHA-1s computed on demand (core/skey_index.h). */
void hk_ih_set_mix_fn(hk_ih_index *ix, hk_ih_mix_fn mix);

/* Releases the slots; the index is empty (and reusable) afterwards. */
void hk_ih_free(hk_ih_index *ix);

/* The record whose key is `ih`, or HK_IH_NONE. */
uint32_t hk_ih_find(const hk_ih_index *ix, const uint8_t ih[20]);

/* Adds record `rec` (< UINT32_MAX) under its current key, which must not be in the index yet.
 * Returns 0, or -1 when growing failed for lack of memory (the index is unchanged). */
int hk_ih_insert(hk_ih_index *ix, uint32_t rec);

/* Removes the record whose key is `ih`. Returns its record number, or HK_IH_NONE when no record has that key. */
uint32_t hk_ih_remove(hk_ih_index *ix, const uint8_t ih[20]);

/* Bytes allocated by the index. */
size_t hk_ih_bytes(const hk_ih_index *ix);

#endif
