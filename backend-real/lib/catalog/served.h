/* served: the daemon's table of .torrent files, one record per path a scan found: what is served from it (storage
 * handle, info-hash) or that it was rejected, and the identity of the file when it was last read (its fingerprint,
 * hk_file_fp, and its size), so a rescan skips an unchanged file with one lstat and one lookup.
 *
 * Contract
 * --------
 * Records are found by path (exact bytes) in O(1) expected time: an open-addressing table (linear probing,
 * backward-shift deletion, so no tombstones: a table that churns through adds and removals stays as fast as a fresh
 * one) of 32-bit slots (4 bytes a slot, issue 10's 10^6 torrents), each the record number + 1 in its low
 * HK_SERVED_REC_BITS (26) bits and 6 bits of the path's 32-bit hash above (a tag: a probe reads a record only when
 * its tag matches, so 1 in 64 of the slots it passes; the record keeps no hash, issue 10: 4 bytes a record). Hence at
 * most HK_SERVED_MAX_RECS (2^26 - 1 = 67,108,863) records: hk_served_insert refuses one more (hk_served_full says
 * why). The home slot of a path and its tag come from its hash, which is computed again from the record's path when
 * the table grows or a deletion shifts an entry back (FNV-1a over the folder's saved state, then the last
 * component: a few tens of bytes). Its capacity need not be a power of two
 * (home slot ((uint64_t)hash * cap) >> 32, runs wrap at cap): 16 slots first, grown by half before an insert would
 * make it more than 3/4 full, so it is between 1/2 and 3/4 full once grown (5.3 to 8 bytes a record; 10^6 records
 * take 1,347,984 slots, 5.4 bytes a record), the same sequence as the seeder's info-hash indexes (ih_index.h): at
 * 3/4 a probe passes 2.5 slots expected for a path found (a rescan's lookups) and 8.5 for one absent (a new path),
 * a record read for the first and 0.13 for the second, thanks to the tags; and it never shrinks. And while they have a
 * storage, by storage handle in O(1): an array of record numbers by the handle's table index (store.h: its low 32
 * bits, reused, so as many entries as storages were live at once). Records are fixed-size entries of slabs of 1024
 * (the shared container, core/slab_array.h: allocated as needed, never moved, never freed before the table; freed numbers reused last-freed-first); the
 * path's last component, without a ".torrent" suffix (which a flag implies), is in one name arena per table (grown
 * by a quarter, realloc, so about a fifth of it at most is room not yet used: issue 10, doubling left up to half;
 * compacted to its live names when more than half of it is garbage, so a compaction copies fewer bytes than the
 * deletions since the last one made garbage: O(1) amortized, as the growth), the folder part of the path
 * (everything up to the last '/') is interned once per folder in a record the torrents of that folder share (issue
 * 10: 30 of a path's 47 bytes were the folder, repeated by 1,000 torrents). hk_served_path rebuilds the whole path.
 * A record is 48 bytes on LP64 (issue 10: 88 before the fingerprint and the narrowed fields below, each saying why
 * its width is safe; 56 before the hash went into the slot and the mark shrank to 4 bits). A pointer to a record
 * stays valid until it is deleted. hk_served_next visits every record once if the table does not change meanwhile.
 * Out of memory (or HK_SERVED_MAX_RECS records): hk_served_insert and hk_served_set_storage return NULL / -1 and
 * change nothing; nothing else allocates. Pure data structure: no I/O.
 */
#ifndef HEKATE_SERVED_H
#define HEKATE_SERVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hash.h"

/* A file as seen by stat: a rescan re-reads a .torrent only when one of these changed. A record keeps only its
 * fingerprint and size (issue 10: 12 bytes instead of 40). */
typedef struct hk_file_id {
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
} hk_file_id;

/* The fingerprint of an identity (also what the resume state keeps, docs/resume-state.md): starting from
 * HK_GOLDEN64, h = hk_mix64(h ^ x) for x = dev, ino, size, mtime_ns, ctime_ns in turn (as 64-bit words); 0 becomes 1,
 * so 0 is "no identity" and matches no file. Equal fingerprints stand for equal identities: two different identities
 * share one with odds of about 2^-64 (each step is a bijection of the 64-bit state, so identities that differ only
 * in their last field collide only through the fold of 0 into 1). */
static inline uint64_t hk_file_fp(const hk_file_id *id)
{
    const uint64_t x[5] = { id->dev, id->ino, id->size, (uint64_t)id->mtime_ns, (uint64_t)id->ctime_ns };
    uint64_t h = HK_GOLDEN64;
    for (int i = 0; i < 5; i++)
        h = hk_mix64(h ^ x[i]);
    return h ? h : 1;
}

/* Longest path a record holds (NUL included): hk_served_insert refuses longer ones. */
#define HK_SERVED_PATH_MAX 4096

typedef struct hk_served_folder hk_served_folder;   /* private to served.c */

/* Bits of a record's size, trackers_hash, torrent and mark (see there). */
#define HK_SERVED_SIZE_BITS 27
#define HK_SERVED_TRACKERS_BITS 48
#define HK_SERVED_TORRENT_BITS 28
#define HK_SERVED_MARK_BITS 4
#define HK_SERVED_MARK_MAX ((1u << HK_SERVED_MARK_BITS) - 1) /* marks are 1..15 (0: none), see mark */

/* Record numbers + 1 take the low HK_SERVED_REC_BITS of a slot (the contract): at most this many records. */
#define HK_SERVED_REC_BITS 26
#define HK_SERVED_MAX_RECS ((1u << HK_SERVED_REC_BITS) - 1)

typedef struct hk_served_rec {
    const hk_served_folder *folder; /* the interned folder part of the path (served.c); use hk_served_path. Not a
                                  32-bit folder number: hk_served_path and the other path calls take the record
                                  alone, and the folder is how they reach the table's name arena */
    uint64_t fp;               /* hk_file_fp of the .torrent file when it was last read (0: none): a rescan compares
                                  it with the fingerprint of its lstat (equality is all it needs of the identity) */
    uint64_t resume_ref;       /* where its serving description is kept for the resume state (resume.h); 0: none */
    uint64_t trackers_hash : HK_SERVED_TRACKERS_BITS; /* the tracker list it was announced with (catalog.c): a
                                  rewrite with the same info dictionary but other trackers is applied to the
                                  announcer. 48 bits of a mixed 64-bit hash (issue 10: so that storage_gen shares
                                  its word): another list goes unnoticed with odds 2^-48 per rewrite that keeps the
                                  info-hash (it was a hash already, at 2^-64) */
    uint64_t storage_gen : 16; /* the store handle's generation (>= 1, at most HK_STORE_MAX_GEN, 15 bits: store.h);
                                  0: nothing served (it was rejected) */
    uint32_t why_hash;         /* hash of the last rejection or failure logged for it (0: none): repeats are quiet.
                                  Not shared with torrent: a served torrent whose storage failed has both */
    uint32_t torrent : HK_SERVED_TORRENT_BITS; /* while storage_gen != 0: the seeder's id of the torrent, which is
                                  its storage handle's table index (store.h, seeder.h): its info-hash is
                                  hk_seeder_info_hash's (issue 10: 4 bytes instead of 20, and no 8-byte handle).
                                  28 bits: table indexes are below HK_STORE_MAX_INDEX = 2^28 (static-asserted in
                                  catalog.c; hk_served_set_storage refuses a larger one) */
    uint32_t mark : HK_SERVED_MARK_BITS; /* the last rescan that visited the path (1..HK_SERVED_MARK_MAX, 0: none).
                                  4 bits (issue 10): the catalog hands out 1..15 in turn and, before it hands out
                                  1 again, sets every record's mark to 0 (hk_served_clear_marks: one pass over the
                                  records per 15 rescans, each of which visits them all), so equal marks still mean
                                  "visited by this rescan" */
    uint32_t base_off;         /* (served.c) the path's last component (without ".torrent" if torrent_ext), NUL
                                  terminated, at this offset in the table's name arena */
    uint32_t size : HK_SERVED_SIZE_BITS; /* with fp: the .torrent file's size when it was last read. 27 bits hold
                                  it: the catalog keeps the identity only of a file it read whole or resumed, and
                                  either is at most HK_MAX_TORRENT_FILE (64 MiB = 2^26, static-asserted in
                                  catalog.c) */
    bool reported : 1;         /* its storage failure was reported to the seeder */
    bool bad_file : 1;         /* rejected for the .torrent itself (unreadable, malformed): not read again until
                                  its identity changes */
    bool stale : 1;            /* its .torrent changed on disk since it was read (catalog.h): none of its bytes
                                  go out as metadata until it is read again */
    bool other_shard : 1;      /* (--shard) with bad_file: its torrent is in another shard (catalog.h) */
    bool torrent_ext : 1;      /* (served.c) the path ends in ".torrent", not kept in the base */
} hk_served_rec;

/* A record is a fixed-size slab entry (issue 10: no allocation, header or rounding of its own). */
_Static_assert(sizeof(void *) != 8 || sizeof(hk_served_rec) == 48, "a path record is 48 bytes on LP64");

/* The store handle of what is served from this path (store.h: (generation << 32) | table index); 0: nothing. */
static inline uint64_t hk_served_storage(const hk_served_rec *r)
{
    return r->storage_gen ? ((uint64_t)r->storage_gen << 32) | r->torrent : 0;
}

typedef struct hk_served hk_served;

hk_served *hk_served_new(void);                       /* NULL if out of memory */
void hk_served_free(hk_served *t);                    /* frees every record; NULL is a no-op */

hk_served_rec *hk_served_find(const hk_served *t, const char *path);
hk_served_rec *hk_served_find_storage(const hk_served *t, uint64_t storage);   /* storage 0: NULL */
/* A new zeroed record for path (which must not be in the table). NULL if out of memory or the table holds
 * HK_SERVED_MAX_RECS records already (hk_served_full). */
hk_served_rec *hk_served_insert(hk_served *t, const char *path);
/* true if the table holds as many records as it can (HK_SERVED_MAX_RECS, or the limit of hk_served_set_limit): an
 * insert fails until one is deleted. */
bool hk_served_full(const hk_served *t);
/* Lowers the most records the table holds to max (at least 1, at most HK_SERVED_MAX_RECS): for tests of the limit. */
void hk_served_set_limit(hk_served *t, uint32_t max);
/* Sets rec's storage (hk_served_storage: rec->torrent and rec->storage_gen) and indexes the record by its table
 * index (0: not indexed). At most one record holds a storage of a given table index (the store's live handles).
 * 0; -1 if out of memory or storage is not a handle (its generation 0 or above 16 bits, or its table index not below
 * 2^HK_SERVED_TORRENT_BITS): rec is unchanged. Setting
 * 0 never fails. */
int hk_served_set_storage(hk_served *t, hk_served_rec *rec, uint64_t storage);
void hk_served_delete(hk_served *t, hk_served_rec *rec);

/* Sets every record's mark to 0 (one pass over the records: the catalog before it hands out mark 1 again). */
void hk_served_clear_marks(hk_served *t);

size_t hk_served_count(const hk_served *t);           /* records */
size_t hk_served_with_storage(const hk_served *t);    /* records with a storage (served, possibly failed) */
/* Iteration: start with *cursor = 0; NULL at the end. */
hk_served_rec *hk_served_next(const hk_served *t, size_t *cursor);
size_t hk_served_memory(const hk_served *t);          /* heap bytes: tables, record slabs, name arena, folders */
size_t hk_served_folder_bytes(const hk_served *t);    /* of which the interned folders (their records and table) */

/* The record's whole path into buf (cap bytes, at least HK_SERVED_PATH_MAX for every path to fit): buf, NUL
 * terminated (truncated if cap is too small). */
const char *hk_served_path(const hk_served_rec *r, char *buf, size_t cap);
/* The whole path in a buffer that lives until the end of the enclosing block (for log lines and one-off calls). */
#define HK_SERVED_PATH(r) hk_served_path((r), (char[HK_SERVED_PATH_MAX]){ 0 }, HK_SERVED_PATH_MAX)
/* The path's last component (the .torrent's file name) into buf (cap bytes): buf, or NULL if it does not fit. */
const char *hk_served_base(const hk_served_rec *r, char *buf, size_t cap);
/* Its length in bytes (the NUL not counted). */
size_t hk_served_path_len(const hk_served_rec *r);
/* The 32-bit hash of the record's path that places it in the path index (computed from the path: the record keeps
 * none): the same as for the path's bytes given to hk_served_find. */
uint32_t hk_served_path_hash(const hk_served_rec *r);
/* strcmp of two records' paths. */
int hk_served_path_cmp(const hk_served_rec *a, const hk_served_rec *b);

#endif
