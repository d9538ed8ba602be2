/* torrent_table: the torrents being served, keyed by info-hash, with each torrent's compact serving state.
 *
 * Contract
 * --------
 * Lookup: the shared info-hash index (core/ih_index.h: open addressing over record numbers, load factor at most 3/4,
 * grows by half from 16 slots (any capacity), shrinks back to half full below 1/8 but never under 16, backward-shift
 * deletion). The index reads each key from the records through a pointer to the table: the table must not move
 * after hk_tt_init.
 *
 * Records: each torrent is an hk_torrent addressed by a record number (hk_tt_get). The number is the owner's choice,
 * not the table's: it is the low 32 bits of the storage handle the torrent is inserted with (the backend's dense
 * index of its storage, so one number names the torrent in the seeder and in the store, issue 10), and bits 32..46
 * of that handle are a generation the record keeps (gen): the handle is rebuilt from both (hk_tt_storage), never
 * stored. Records live in the shared slab container (core/slab_array.h) in slabs of HK_TT_SLAB (1,024): record n is
 * slot n % 1,024 of slab n / 1,024. A slab is allocated (zeroed, through the table's hk_mem) when the first record in
 * it is inserted and freed when its last one is removed (the container's live counts), or with the table; the array
 * of slab entries (16 bytes each) covers the highest slab in use and its capacity doubles. Numbers should be dense
 * (and below HK_TT_MAX_REC): the spare capacity is the unused records of the slabs in use, less than one slab while
 * the numbers in use are dense (issue 10: at most 80 KiB, where a doubling pool left up to half of itself; but a
 * table holding any torrent holds a whole slab). Records never move:
 * a pointer from hk_tt_get stays valid until that torrent is removed (its slab may then be freed) or the table is
 * freed, so it may be kept across inserts and removals of other torrents. Holders that may outlive a torrent (peers)
 * still keep the number, never a pointer, and look it up again (a removed torrent's number gives NULL). The record
 * is compact (sizeof(hk_torrent) == 64 on LP64; a static assert and a test check it: 10^6 torrents, issue 10):
 * geometry (piece length and total length: the piece count is derived, hk_torrent_piece_count), storage generation,
 * the byte range of the raw `info` dictionary inside the .torrent (for ut_metadata), the SKEY index's mix of the
 * record's req2 hash (skey_mix: written by the table at insert from hk_skey_mix, read only by the SKEY index through
 * the table's mix function, core/skey_index.h) and state. Counters (uploaded, peers) are in the side block. Piece
 * hashes are NOT kept. Names live in one arena per table: it grows by a quarter (not doubling: about a fifth of it
 * is spare after a growth) and is compacted to its live bytes when more than half of it is garbage (and that is over
 * 4 KiB).
 *
 * Side block: what a tiny idle torrent never needs is in one optional hk_torrent_ext (40 bytes on LP64, t->ext): the
 * file entries (and their count), the piece-state block, the upload counter, the count of verifies in flight, the
 * rate-cap slot and the count of connected peers. t->ext is NULL while all of them are empty (NULL / 0), so a
 * single-file torrent without its own rate cap, with no piece state (all good, or all unknown), no peer and nothing
 * sent yet has none. The table allocates the block when the first of them is needed (hk_tt_ext; a peer's attach,
 * hk_tt_peer_attach, so a torrent with a peer always has one and sending never allocates) and frees it when the last
 * becomes empty again (hk_tt_ext_trim, called by the table's own setters and by whoever empties a field; a lazy
 * verify in flight then every piece good frees it; a torrent that has sent keeps it, with its counter). Readers go
 * through the inline getters (hk_torrent_pieces, hk_torrent_verifying, hk_torrent_rate_slot, hk_torrent_uploaded,
 * hk_torrent_peers, hk_torrent_nfiles), never t->ext directly.
 *
 * Files: each torrent's file entries (16 bytes each: offset in the torrent and length, pad flag in the top bit) are
 * one allocation, held by the side block (made at insert, so a multi-file torrent always has one), except for a
 * torrent of a single file that is not a pad file: its entry [0, total_length) is implied (no files allocation). Read
 * the files through the span iterator (or one entry by value, hk_torrent_file), never through t->ext->files.
 *
 * Everything (slabs of records and their array, names, side blocks, file entries, piece states) is allocated
 * through the owner's hk_mem. hk_tt_records_bytes and hk_tt_names_bytes say what the records and the arena take
 * (spare capacity included), for the memory accounting (bench/torrent_mem.c).
 *
 * Geometry helpers validate a block request (index < piece count, 0 < length <= max_block, begin + length <= that
 * piece's size, in 64-bit arithmetic: no overflow) and map a byte range of the torrent onto file spans (one span per
 * file touched; zero-length files are never produced; pad files are flagged so the caller sends zeros instead of
 * reading the disk).
 *
 * Iteration (hk_tt_next) goes by record number: deterministic for a given sequence of calls.
 */
#ifndef HEKATE_TORRENT_TABLE_H
#define HEKATE_TORRENT_TABLE_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ih_index.h"
#include "skey_index.h"
#include "mem.h"
#include "slab_array.h"

#define HK_TT_NONE UINT32_MAX
#define HK_FILE_PAD_FLAG (1ull << 63)

typedef struct hk_file_entry {
    uint64_t offset;         /* first byte of the file in the torrent's byte space */
    uint64_t length_flags;   /* length; top bit HK_FILE_PAD_FLAG for a BEP 47 pad file (zeros) */
} hk_file_entry;

typedef enum hk_torrent_state {
    HK_TORRENT_FREE = 0,     /* record unused */
    HK_TORRENT_ACTIVE,
    HK_TORRENT_FAILED,       /* storage failed: peers dropped, handshakes refused */
} hk_torrent_state;

/* What a torrent holds beyond its record only while it needs it (see the contract: "Side block"). */
typedef struct hk_torrent_ext {
    hk_file_entry *files;     /* the file entries (then, v2, the hash offsets); NULL for a single (non-pad) file */
    struct hk_pieces *pieces; /* piece verification (core/piece_state.h): NULL + all_good: every piece good */
    uint64_t uploaded;        /* payload bytes handed to send() for this torrent (hk_torrent_uploaded) */
    uint32_t nfiles;          /* entries in files (hk_torrent_nfiles); 0 while files is NULL (one implied file) */
    uint32_t verifying;       /* piece verification: its disk_verify calls in flight */
    uint32_t rate_slot;       /* upload rate caps: 1 + its bucket's index in the seeder's pool; 0 = no own cap */
    uint32_t peers;           /* connected peers attached to this torrent (hk_torrent_peers, hk_tt_peer_attach) */
} hk_torrent_ext;

typedef struct hk_torrent {
    uint8_t info_hash[20];
    uint32_t state : 2;      /* hk_torrent_state */
    uint32_t v2 : 1;         /* hybrid: files is followed by nfiles v2 hash offsets (hk_torrent_v2_hashes) */
    uint32_t all_good : 1;   /* piece verification: every piece is good (nothing to check) */
    uint32_t name_len : 13;  /* in the table's arena (at most 4096 bytes, hk_tt_desc_check) */
    uint32_t gen : 15;       /* the storage handle's generation (its bits 32..46; hk_tt_storage) */
    uint32_t piece_length;   /* the piece count follows from it and total_length: hk_torrent_piece_count */
    uint32_t name_off;       /* in the table's arena */
    uint32_t info_len;       /* bytes of the raw info dictionary (metadata_size) */
    uint32_t pieces_rel;     /* piece verification: offset of the piece hashes in the .torrent, from info_start */
    uint32_t info_start;     /* offset of the info dictionary in the .torrent file (< 2^32, hk_tt_desc_check) */
    uint32_t skey_mix;       /* the SKEY index's: hk_skey_mix(info_hash), set at insert, read by its mix function */
    uint64_t total_length;   /* the last piece's size follows from it: hk_torrent_piece_size */
    hk_torrent_ext *ext;     /* NULL while every field of the side block would be empty (zero / NULL) */
} hk_torrent;

/* What hk_tt_insert needs; the table copies everything. */
typedef struct hk_file_desc {
    uint64_t length;
    bool pad;
} hk_file_desc;

typedef struct hk_torrent_desc {
    uint8_t info_hash[20];
    const char *name;
    size_t name_len;
    uint32_t piece_length;
    uint32_t piece_count;
    uint64_t total_length;   /* must equal the sum of the file lengths */
    const hk_file_desc *files;
    uint32_t nfiles;
    uint64_t info_start;
    uint32_t info_len;
    uint64_t storage;        /* the backend's handle: low 32 bits the record number, bits 32..46 a generation */
    uint64_t pieces_offset;  /* piece verification: where the piece hashes are in the .torrent */
    const uint64_t *v2_hashes; /* optional (NULL): nfiles offsets of each file's v2 hashes (mi_torrent.v2_hashes) */
} hk_torrent_desc;

typedef enum hk_tt_result {
    HK_TT_OK = 0,
    HK_TT_DUPLICATE,
    HK_TT_INVALID,           /* geometry inconsistent (see hk_tt_desc_check) */
    HK_TT_NOMEM,
} hk_tt_result;

#define HK_TT_SLAB_BITS 10u
#define HK_TT_SLAB (1u << HK_TT_SLAB_BITS) /* records per slab */

typedef struct hk_torrent_table {
    hk_slab_array recs;      /* the records, HK_TT_SLAB a slab (core/slab_array.h), a slab's live count its records
                                in use */
    hk_ih_index index;       /* info-hash -> record number of every live torrent */
    hk_skey_index skey;      /* HASH('req2', info-hash) -> record number (MSE/PE's SKEY lookup) */
    char *arena;
    uint32_t arena_len, arena_cap, arena_garbage;
    hk_mem *mem;
} hk_torrent_table;

/* An empty table, at its final address (its index points back at it). */
void hk_tt_init(hk_torrent_table *tt, hk_mem *mem);
void hk_tt_free(hk_torrent_table *tt);

/* NULL if the description is consistent, else a static message naming the problem: piece_length 0, no pieces,
 * piece_count != ceil(total / piece_length), file lengths not summing to total, name longer than 4096 bytes,
 * more than 2^31 files. */
const char *hk_tt_desc_check(const hk_torrent_desc *d);
/* Record numbers a storage handle may name (hk_tt_insert refuses others as HK_TT_INVALID). */
#define HK_TT_MAX_REC (1u << 28)
#define HK_TT_MAX_GEN ((1u << 15) - 1)
/* Inserts d at record (uint32_t)d->storage (< HK_TT_MAX_REC, free), generation d->storage >> 32 (<= HK_TT_MAX_GEN).
 * HK_TT_DUPLICATE: the info-hash is present; HK_TT_INVALID: d is inconsistent (hk_tt_desc_check), or its handle names
 * a record in use or out of range (or higher bits are set); HK_TT_NOMEM. *rec_out (if not NULL): the record number. */
hk_tt_result hk_tt_insert(hk_torrent_table *tt, const hk_torrent_desc *d, uint32_t *rec_out);
/* Removes a torrent; returns false if unknown. Its record number becomes free (for the owner to use again). */
bool hk_tt_remove(hk_torrent_table *tt, const uint8_t info_hash[20]);
/* Record number of the torrent with this hash, or HK_TT_NONE. */
uint32_t hk_tt_find(const hk_torrent_table *tt, const uint8_t info_hash[20]);
/* Record number of the torrent whose HASH('req2', info-hash) is req2 (MSE/PE's SKEY), or HK_TT_NONE. Not const:
 * the SKEY index computes its keys in a scratch buffer (core/skey_index.h). */
uint32_t hk_tt_find_skey(hk_torrent_table *tt, const uint8_t req2[20]);
/* The record (ACTIVE or FAILED), or NULL for a free/out-of-range number (HK_TT_NONE included). Two-level: the slab
 * entry, then the record; stable until the torrent is removed (see the contract). */
static inline hk_torrent *hk_tt_get(const hk_torrent_table *tt, uint32_t rec)
{
    hk_torrent *t = hk_sa_get_fixed(&tt->recs, rec, HK_TT_SLAB_BITS, sizeof(hk_torrent));
    return t && t->state != HK_TORRENT_FREE ? t : NULL;
}
/* Next live record number after `after` (start with HK_TT_NONE), or HK_TT_NONE at the end. */
uint32_t hk_tt_next(const hk_torrent_table *tt, uint32_t after);
static inline uint32_t hk_tt_count(const hk_torrent_table *tt) { return tt->index.count; }
/* The storage handle of record rec (t = hk_tt_get(tt, rec)): the one it was inserted with. */
static inline uint64_t hk_tt_storage(const hk_torrent *t, uint32_t rec) { return ((uint64_t)t->gen << 32) | rec; }
/* Name bytes (not NUL-terminated) and length. */
const char *hk_tt_name(const hk_torrent_table *tt, const hk_torrent *t, uint32_t *len);
/* Bytes the records take: the slabs allocated (their unused records included) and the array of slab entries. */
static inline size_t hk_tt_records_bytes(const hk_torrent_table *tt) { return hk_sa_bytes(&tt->recs); }
/* Bytes the name arena takes (its capacity: live names, garbage and spare room). */
static inline size_t hk_tt_names_bytes(const hk_torrent_table *tt) { return tt->arena_cap; }

/* ---- Geometry ---- */
typedef enum hk_block_check {
    HK_BLOCK_OK = 0,
    HK_BLOCK_BAD_INDEX,      /* index >= piece count */
    HK_BLOCK_BAD_LENGTH,     /* length 0 or above max_block */
    HK_BLOCK_BAD_RANGE,      /* begin + length beyond the piece's end */
} hk_block_check;

uint32_t hk_torrent_piece_size(const hk_torrent *t, uint32_t index); /* 0 for an index out of range */
hk_block_check hk_torrent_check_block(const hk_torrent *t, uint32_t index, uint32_t begin, uint32_t length,
                                      uint32_t max_block);
const char *hk_block_check_name(hk_block_check c);

/* ---- The side block (see the contract) ---- */
static inline struct hk_pieces *hk_torrent_pieces(const hk_torrent *t) { return t->ext ? t->ext->pieces : NULL; }
static inline uint32_t hk_torrent_verifying(const hk_torrent *t) { return t->ext ? t->ext->verifying : 0; }
static inline uint32_t hk_torrent_rate_slot(const hk_torrent *t) { return t->ext ? t->ext->rate_slot : 0; }
static inline uint64_t hk_torrent_uploaded(const hk_torrent *t) { return t->ext ? t->ext->uploaded : 0; }
static inline uint32_t hk_torrent_peers(const hk_torrent *t) { return t->ext ? t->ext->peers : 0; }
/* Files in the torrent: 1 without a files allocation (the implied single file). */
static inline uint32_t hk_torrent_nfiles(const hk_torrent *t) { return t->ext && t->ext->files ? t->ext->nfiles : 1; }
/* ceil(total_length / piece_length) (hk_tt_desc_check makes the inserted piece_count equal it): one 64-bit division,
 * so per-request paths (hk_torrent_check_block, hk_torrent_piece_size) compare index * piece_length instead. */
static inline uint32_t hk_torrent_piece_count(const hk_torrent *t)
{
    return (uint32_t)((t->total_length - 1) / t->piece_length + 1); /* total_length >= 1, piece_length >= 1 */
}
/* A peer attaches to t: its count of connected peers goes up, in the side block (allocated if t had none, so a torrent
 * with a peer always has one and its uploaded counter needs no allocation when data is sent). 0, or -1 when out of
 * memory (nothing changed). */
int hk_tt_peer_attach(hk_torrent_table *tt, hk_torrent *t);
/* A peer leaves t (peers > 0 asserted): the count goes down, and the side block is trimmed when it becomes empty. */
void hk_tt_peer_detach(hk_torrent_table *tt, hk_torrent *t);
/* Adds n payload bytes to t's uploaded counter; t has a peer attached (so a side block: asserted). */
static inline void hk_torrent_add_uploaded(hk_torrent *t, uint64_t n)
{
    assert(t->ext && t->ext->peers);
    if (t->ext) /* always (hk_tt_peer_attach); checked so that a release build cannot crash */
        t->ext->uploaded += n;
}
/* t's side block, allocated (zeroed, through the table's hk_mem) if it has none; NULL when out of memory (nothing
 * changed). The caller fills the field it needed it for, or calls hk_tt_ext_trim. */
hk_torrent_ext *hk_tt_ext(hk_torrent_table *tt, hk_torrent *t);
/* Frees t's side block if every field of it is empty (no-op otherwise, or without one). */
void hk_tt_ext_trim(hk_torrent_table *tt, hk_torrent *t);
/* hk_pieces_set (core/piece_state.h) on t's piece state (all_good and the block), for piece i < piece_count: the side
 * block is allocated when a block appears and trimmed when it goes. 0, or -1 when out of memory (nothing changed). */
int hk_tt_pieces_set(hk_torrent_table *tt, hk_torrent *t, uint32_t i, bool good);
/* Frees t's piece-state block (hk_pieces_free) and trims the side block; all_good is the caller's. */
void hk_tt_pieces_free(hk_torrent_table *tt, hk_torrent *t);
/* Bytes of t's own allocations as the table makes them: the side block and its file entries (v2 offsets
 * included), not the piece-state block (hk_pieces_bytes) nor the record and name. */
size_t hk_tt_ext_bytes(const hk_torrent *t);

/* A hybrid torrent's v2 hash offsets in the .torrent, one per file (0: none; core/metainfo.h), or NULL. They are
 * kept in the files allocation, after the entries (so a v2 torrent always has one, and a side block). */
static inline const uint64_t *hk_torrent_v2_hashes(const hk_torrent *t)
{
    return t->v2 ? (const uint64_t *)(const void *)(t->ext->files + t->ext->nfiles) : NULL;
}

static inline uint64_t hk_file_length(const hk_file_entry *f) { return f->length_flags & ~HK_FILE_PAD_FLAG; }
static inline bool hk_file_is_pad(const hk_file_entry *f) { return (f->length_flags & HK_FILE_PAD_FLAG) != 0; }

/* File entry i (< hk_torrent_nfiles) by value: the implied [0, total_length) of a torrent without a files
 * allocation. */
hk_file_entry hk_torrent_file(const hk_torrent *t, uint32_t i);

/* A piece of a byte range that lies in one file. */
typedef struct hk_span {
    uint32_t file;           /* index in the torrent's file list */
    uint64_t offset;         /* in that file */
    uint32_t length;
    bool pad;
} hk_span;

/* Walks [pos, pos + len) of the torrent's byte space file by file. */
typedef struct hk_span_iter {
    const hk_torrent *t;
    uint64_t pos, end;
    uint32_t file;
} hk_span_iter;

/* false if the range is empty or does not lie inside the torrent. */
bool hk_span_iter_init(hk_span_iter *it, const hk_torrent *t, uint64_t pos, uint32_t len);
/* Next span; false at the end. */
bool hk_span_next(hk_span_iter *it, hk_span *out);

#endif
