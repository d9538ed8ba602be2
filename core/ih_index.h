/* ih_index: the one info-hash index of the core: 20-byte info-hashes -> 32-bit record numbers of the owner's pool.
 * The seeder's torrent table and the announcer use it; the DHT and the MSE SKEY lookup are meant to as well.
 *
 * Contract
 * --------
 * The index stores record numbers only; the key of a record is read through the owner's key function, so the
 * owner's pool may move (grow) freely and no key is stored twice. Open addressing with linear probing over an array
 * of `cap` uint32 (record number + 1; 0 = empty), any cap >= 4 (not only powers of two): the home slot of a key is
 * ((uint64_t)hk_mix_info_hash(key) * cap) >> 32 (multiply-shift range reduction: the mix's high bits, no mask), and a
 * probe run wraps from slot cap - 1 to slot 0. Load factor at most 3/4: the first insert allocates `min_cap` slots;
 * an insert that would pass 3/4 first grows the table by half (cap + cap / 2, hk_ih_grown_cap), so right after a
 * growth it is about half full. From 16 slots that gives 16, 24, 36, ..., 898,656, 1,347,984, 2,021,976: 10^6
 * records get 1,347,984 slots (load 0.742, 5.4 bytes per record), 10^5 get 177,513 (0.563, 7.1 bytes). Bytes per
 * record: 4 / load, so 5.3 to 8 while the table only grows (issue 10: doubling gave 5.3 to 10.7, 8.4 at 10^6). With
 * `shrink`, a removal that leaves the table under 1/8 full shrinks it back to half full (2 * count slots, never
 * under min_cap; a failed shrink is harmless), so a shrink is never followed by a growth within count / 2 inserts,
 * nor by another shrink within 3 * count / 4 removals (core/dht.c relies on this: an insert right after a
 * removal that shrank does not grow, so it cannot fail). Deletion is by backward shift (no tombstones; the
 * distance from a home to a slot is taken cyclically, modulo cap), so lookups never degrade after many add/remove
 * cycles. Every allocation goes through the owner's hk_mem, so memory is accounted where the owner reports it
 * (hk_ih_bytes says how much is the index's).
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
    uint32_t cap;             /* slots (any number >= min_cap), or 0 before the first insert */
    uint32_t count;           /* records in the index */
    uint32_t min_cap;         /* first capacity and floor of shrinking (>= 4) */
    bool shrink;
    hk_mem *mem;
    hk_ih_key_fn key;
    hk_ih_mix_fn mix;         /* NULL unless hk_ih_set_mix_fn */
    const void *owner;
} hk_ih_index;

/* An empty index (allocates nothing). min_cap must be >= 4. */
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

/* The capacity a table of cap slots grows to: cap + cap / 2 (at most UINT32_MAX). */
uint32_t hk_ih_grown_cap(uint32_t cap);

/* Bytes allocated by the index. */
size_t hk_ih_bytes(const hk_ih_index *ix);

#endif
