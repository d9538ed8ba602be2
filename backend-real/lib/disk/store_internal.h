/* store_internal: what the parts of the store share (the public contract is store.h). Not for other modules.
 *
 * The store is four files, one per layer, from the top (and store_copy.c beside store_resident.c):
 *   store.c          the public face: creation, storages (add, remove, failure), handles, errors, statistics
 *   store_copy.c     small files copied out (hk_store_copy): open, pread, close, never mapped nor kept open
 *   store_resident.c residency and page-in: hk_store_resident (mincore, or preadv2(RWF_NOWAIT) where the guard page
 *                    shows mincore blind), hk_store_prefetch and the batching switches, page-in jobs
 *   store_map.c      the mappings: lazy open + mmap of data files under the budgets of mapped bytes and open files,
 *                    the LRU of unpinned files, pins, failure marking, change detection
 *   store_cache.c    the caches below the mappings: the per-epoch residency windows and the recorded prefetches
 *                    (merged madvise). They read slots but never open, close or evict one.
 * Calls go downwards (store.c and store_resident.c use the mappings, the mappings use the caches, never the reverse),
 * with one leaf as the exception: mapping a file runs the guard page test, st_mincore_is_blind (store_resident.c),
 * which only reads the new slot.
 *
 * Data layout (sizes on x86-64):
 *   storage       st_storage   40 bytes, the handle table's entry itself: slabs of ST_SLAB entries, never moved,
 *                              addressed by table index (st_at; core/slab_array.h, its entries only grow).
 *                              A 32-byte header: folder, stamp_ns (exact: the latest mtime seen) or the failure's
 *                              reason, nfiles (free: the free-list link), pins (24 bits) and flags, the generation,
 *                              the .torrent's slot (16 bits) and size; then one word: the single data file inline,
 *                              48-bit length and 16-bit slot (no path: no names kept), so a single-file torrent named
 *                              by the namer costs these 40 bytes and nothing else. Otherwise (several files, names
 *                              kept, or a file of 2^48 bytes or more: ST_FILES_APART) the word points to one
 *                              allocation: an 8-byte header (names_len), 16 bytes per data file, the names: the
 *                              files' paths below the torrent's name (multi-file); the .torrent's name and the
 *                              torrent's name come from the namer (hk_store_set_namer), or without one are kept first
 *                              (ST_OWN_NAMES; the .torrent's without ".torrent"). Slot numbers in 16 bits hold
 *                              because open files are bounded (HK_STORE_MAX_OPEN_FILES, ST_MAX_SLOTS; the kernel's
 *                              default vm.max_map_count, 65530, bounds the mappings about as much); reads resolve
 *                              storage -> file -> slot with one test of ST_FILES_APART (st_fslot, st_flen)
 *   folder        st_folder    shared by consecutive storages of the same folder (a directory scan adds them so;
 *                              a --data-dir's record also names the .torrent's folder, and is shared likewise):
 *                              its path and identity (st_dev, st_ino); no descriptor is held
 *   open file     st_slot      allocated one by one (its list node must not move), kept for reuse once closed;
 *                              bounded by max_open_files + pinned, below ST_MAX_SLOTS; st_slot *[] indexes them
 *   batching      st_pf[]      24 bytes per prefetch recorded in the current loop iteration (at most PF_MAX)
 *                 st_rc[]      RC_ENTRIES x 32 bytes: the residency cache, one 64-page window per entry
 * A handle is (generation << 32) | table index, generation >= 1, so it is never 0 (store.h).
 */
#ifndef HEKATE_STORE_INTERNAL_H
#define HEKATE_STORE_INTERNAL_H

#include <assert.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "list.h"
#include "slab_array.h"
#include "store.h"
#include "store_path.h"

#define NONE UINT32_MAX
#define SLOT_PAD (UINT32_MAX - 1)                /* st_file.slot of a pad file: no file on disk, zeros */
#define ZERO_REGION_BYTES ((size_t)1 << 32)      /* > any extent (length is a uint32_t); reserved, never touched */
#define PATH_BUF (MI_MAX_PATH + NAME_MAX + 2)
#define PF_MAX 4096u                             /* prefetches recorded before an early flush */
#define RC_PAGES 64u                             /* pages per residency window: one bit each in a uint64_t */
#define RC_BITS 8u
#define RC_ENTRIES (1u << RC_BITS)               /* windows cached at once (direct-mapped) */
#define PROBE_IOVS 64                            /* iovecs per RWF_NOWAIT probe read */

typedef struct st_folder {
    uint32_t refs;
    uint32_t root_len;                           /* the served folder it lies in (hk_store_set_links) is path[0..
                                                    root_len), identity root_id; 0: none (no served folders set) */
    sp_id id;                                    /* the directory opened at add time: every later open must find it */
    sp_id root_id;
    struct st_folder *meta;                      /* a --data-dir's record: the folder of the .torrent (one reference
                                                    held); NULL: the .torrent sits in this folder too */
    char path[];                                 /* absolute, from realpath: no symbolic link in it */
} st_folder;

typedef struct st_file {
    uint64_t length;                             /* bytes, from the metainfo (the .torrent: its size at add) */
    uint32_t path;                               /* offset in the storage's names of its path below the root */
    uint32_t slot;                               /* NONE (closed), SLOT_PAD, or index in hk_store.slots */
} st_file;

/* A storage's file entries kept apart (ST_FILES_APART): one allocation, this header, nfiles entries, the names. */
typedef struct st_apart {
    uint32_t names_len;                          /* bytes of names after files[nfiles] */
    uint32_t unused;
    st_file files[];
} st_apart;

/* Slot numbers kept in 16 bits (the inline file's and the .torrent's, issue 10): a slot index is below ST_MAX_SLOTS
 * (slot_alloc refuses more, EMFILE), NONE and SLOT_PAD keep their low 16 bits (SLOT16_NONE, SLOT16_PAD). */
#define SLOT16_NONE 0xffffu
#define SLOT16_PAD 0xfffeu
#define ST_MAX_SLOTS 0xfffeu                     /* slot indexes 0..0xfffd: open (or pinned) files at once */
#define ST_INLINE_BITS 48u                       /* the inline file's length: below 2^48 bytes, else kept apart */
#define ST_INLINE_LEN_MASK ((UINT64_C(1) << ST_INLINE_BITS) - 1)
#define ST_MAX_PINS ((1u << 24) - 1)             /* pins outstanding on one storage (more: refused, EAGAIN) */

/* A storage, and the entry of its table index (see Data layout). A free entry has ST_FREE, next_free and its
 * generation (moved on at the free: the next handle of the index differs from every earlier one). */
typedef struct st_storage {
    st_folder *folder;                           /* NULL in a free entry */
    union {                                      /* by ST_FAILED: */
        char *why;                               /* failed: malloc'd reason (NULL: "failed", out of memory) */
        int64_t stamp_ns;                        /* healthy: the latest mtime of its data files seen (at add, then
                                                  * at each open and check): a later one means a file changed */
    };
    union {
        uint32_t nfiles;                         /* data files; file index nfiles is the .torrent file */
        uint32_t next_free;                      /* ST_FREE: the next free table index, or NONE */
    };
    uint32_t pins : 24;                          /* pins outstanding on any of its files (pad files included), at
                                                  * most ST_MAX_PINS */
    uint32_t flags : 8;                          /* ST_* */
    uint16_t gen;                                /* the index's generation, 1..HK_STORE_MAX_GEN (0: never used) */
    uint16_t meta_slot;                          /* the .torrent file's slot, 16 bits (SLOT16_*; st_fslot) */
    uint32_t meta_len;                           /* and its size at add (< 4 GiB, hk_store_add) */
    union {                                      /* by ST_FILES_APART: */
        uint64_t one;                            /* clear: the one data file, no names kept: its length in the low
                                                  * ST_INLINE_BITS bits, its 16-bit slot above (st_flen, st_fslot) */
        st_apart *apart;                         /* set: its file entries and names */
    };
} st_storage;

enum { ST_MULTI_FILE = 1, ST_FAILED = 2, ST_REMOVED = 4, ST_MODIFIED = 8 /* a data file's mtime moved: not yet
                                                                             * taken by hk_store_take_modified */,
       ST_TORRENT_EXT = 16, /* (ST_OWN_NAMES) the .torrent's name ends in TORRENT_EXT, not kept in names */
       ST_OWN_NAMES = 32 /* added without a namer: names holds the .torrent's name and the torrent's name first */,
       ST_FILES_APART = 64 /* the file entries and names are in their own allocation (apart): several files, names
                            * kept, or a file of 2^48 bytes or more; clear: the single file inline (one), no names */,
       ST_FREE = 128 /* a free table index: no storage */ };
#define TORRENT_EXT ".torrent"

/* The names a storage keeps (names_len bytes; "" when none) and the bytes of its allocation apart (0: none). */
static inline uint32_t st_names_len(const st_storage *s)
{
    return (s->flags & ST_FILES_APART) ? s->apart->names_len : 0;
}
static inline const char *st_names(const st_storage *s)
{
    return (s->flags & ST_FILES_APART) ? (const char *)(s->apart->files + s->nfiles) : "";
}
static inline size_t st_apart_bytes(const st_storage *s)
{
    return (s->flags & ST_FILES_APART)
               ? sizeof(st_apart) + (size_t)s->nfiles * sizeof(st_file) + s->apart->names_len : 0;
}

/* File f's length (f == nfiles: the .torrent's size) and slot (NONE, SLOT_PAD or a slot index), f <= nfiles. */
static inline uint64_t st_flen(const st_storage *s, uint32_t f)
{
    if (f == s->nfiles)
        return s->meta_len;
    return (s->flags & ST_FILES_APART) ? s->apart->files[f].length : (s->one & ST_INLINE_LEN_MASK);
}
static inline uint32_t st_slot_widen(uint32_t v16)
{
    return v16 >= SLOT16_PAD ? (v16 | 0xffff0000u) : v16;
}
static inline uint32_t st_fslot(const st_storage *s, uint32_t f)
{
    if (f == s->nfiles)
        return st_slot_widen(s->meta_slot);
    return (s->flags & ST_FILES_APART) ? s->apart->files[f].slot : st_slot_widen((uint32_t)(s->one >> ST_INLINE_BITS));
}
/* Sets file f's slot: v is NONE, SLOT_PAD or a slot index (< ST_MAX_SLOTS). */
static inline void st_set_fslot(st_storage *s, uint32_t f, uint32_t v)
{
    assert(v < ST_MAX_SLOTS || v == NONE || v == SLOT_PAD);
    uint16_t v16 = (uint16_t)v;
    if (f == s->nfiles)
        s->meta_slot = v16;
    else if (s->flags & ST_FILES_APART)
        s->apart->files[f].slot = v;
    else
        s->one = (s->one & ST_INLINE_LEN_MASK) | ((uint64_t)v16 << ST_INLINE_BITS);
}


/* The folder file f of s is opened below: its data folder, or for the .torrent (f == nfiles) the folder holding it. */
static inline const st_folder *st_folder_of(const st_storage *s, uint32_t f)
{
    return f == s->nfiles && s->folder->meta != NULL ? s->folder->meta : s->folder;
}

/* The per-torrent figures above are a design target (millions of torrents): keep them from growing unnoticed. A
 * single-file storage is its entry, 40 bytes: a 32-byte header and one word for the inline file (length and slot),
 * in whose place a storage with its files apart keeps the pointer to them. */
_Static_assert(sizeof(st_file) == 16, "a file entry is 16 bytes");
_Static_assert(sizeof(st_apart) == 8, "the header of the files apart is 8 bytes");
_Static_assert(offsetof(st_storage, one) <= 16 + 2 * sizeof(void *), "a storage's header is 32 bytes on LP64");
_Static_assert(sizeof(st_storage) <= 24 + 2 * sizeof(void *), "a storage is 40 bytes on LP64");
_Static_assert(HK_STORE_MAX_GEN <= UINT16_MAX, "a generation fits the entry's 16 bits");
_Static_assert(HK_STORE_MAX_OPEN_FILES < ST_MAX_SLOTS, "the open files' budget fits the 16-bit slot numbers");
_Static_assert(SLOT_PAD == (0xffff0000u | SLOT16_PAD) && NONE == (0xffff0000u | SLOT16_NONE), "slot widening");

/* The handle table: storage entries in the shared slab container (core/slab_array.h), slabs of ST_SLAB, never moved
 * nor freed before the store (a pointer to an entry stays valid until the store is freed), index i at slab i / ST_SLAB,
 * slot i % ST_SLAB. */
#define ST_SLAB_BITS 10u
#define ST_SLAB (1u << ST_SLAB_BITS)

typedef struct st_slot {
    uint8_t *map;                                /* len bytes of file, then one guard page past its end */
    uint64_t len;
    uint64_t dev, ino;
    int64_t mtime_ns;                            /* its mtime when opened (or last checked) */
    uint32_t sidx, file;                         /* owner: table index and file index */
    uint32_t pins;
    uint32_t index;                              /* its own index in hk_store.slots */
    hk_list link;                                /* open and unpinned: on the LRU; unused: on the free list */
    int fd;                                      /* -1 when the slot is unused */
    uint8_t blind;                               /* mincore lies for this file: probe with RWF_NOWAIT reads */
} st_slot;

/* A prefetch recorded while batching: file offsets [first, end) of open slot `slot` (first is page-aligned). */
typedef struct st_pf {
    uint64_t first, end;
    uint32_t slot;
} st_pf;

/* One cached residency window: pages [window * RC_PAGES, +RC_PAGES) of open slot `slot`, clipped to the file's
 * pages; bit k set if page k was resident when mincore was asked. Valid while gen == hk_store.rc_gen and either
 * epoch == hk_store.epoch or, when every page was resident (full), for lim.resident_keep_ms after at_ms. */
typedef struct st_rc {
    uint64_t bits;
    uint64_t window;
    uint32_t slot;
    uint32_t epoch;           /* 0: forgotten */
    uint32_t gen;
    uint32_t at_ms : 31;      /* hk_store.now_ms when mincore was asked */
    uint32_t full : 1;
} st_rc;

struct hk_store {
    hk_store_limits lim;
    hk_slab_array tab;                           /* the handle table: slabs of ST_SLAB entries (st_at) */
    hk_mem tab_mem;                              /* what tab allocates */
    uint32_t ntab, free_tab;                     /* indexes handed out (live or free); the first free one, or NONE */
    st_slot **slots;
    uint32_t nslots, capslots;
    hk_list free_slots;                          /* unused slots, last closed first */
    hk_list lru;                                 /* open unpinned slots, most recently used first */
    uint32_t open, pinned_files, storages, blind;
    uint32_t modified;                           /* storages flagged ST_MODIFIED */
    uint64_t mapped, maps, unmaps;
    st_folder *last_folder;                      /* the last folder record of a .torrent (shared while it repeats) */
    st_folder *last_data;                        /* the last record of a data dir (with its .torrent folder) */
    char **data_dirs;                            /* --data-dir, in order (hk_store_set_data_dirs) */
    size_t ndata_dirs;
    char **roots;                                /* the served folders (realpath), hk_store_set_links; NULL where
                                                    one did not resolve yet (filled in later, never moved) */
    sp_id *root_ids;
    char **root_src;                             /* the folders as given, to resolve a missing one later */
    size_t nroots;                               /* slots of all three (0: no check) */
    bool follow_links;                           /* --follow-links: data paths may go through links below a root */
    /* With batching, within one loop iteration (epoch): the spelling of the folder of the last add, its
     * resolution last_folder and an open descriptor of it, reused by the adds that follow in the same folder. */
    char *last_dir;
    int last_root;                               /* -1: none */
    uint32_t last_epoch;
    uint8_t *zeros;                              /* ZERO_REGION_BYTES of PROT_READ anonymous memory, lazily */
    bool batching;                               /* hk_store_set_batching */
    st_pf *pf;                                   /* prefetches recorded, not yet advised */
    uint32_t npf, cappf;
    st_rc *rc;                                   /* RC_ENTRIES while batching (NULL: out of memory, no cache) */
    uint32_t epoch;                              /* >= 1; entries of other epochs are invalid unless full */
    uint32_t rc_gen;                             /* entries of other generations are invalid (st_rc_drop_all) */
    uint32_t now_ms;                             /* CLOCK_MONOTONIC_COARSE at the epoch's start, mod 2^31 ms */
    uint64_t madvise_calls, madvise_skipped, mincore_calls, probe_calls, rc_hits;
    hk_store_namer namer;                        /* hk_store_set_namer (NULL: storages keep their names) */
    void *namer_ctx;
    const st_storage *adding;                    /* the storage hk_store_add is checking (no handle yet), whose */
    const char *adding_base, *adding_name;       /* .torrent name and torrent name are these */
    char err[PATH_BUF + 128];
};

/* ---- store.c: handles, names, errors ---- */

/* The entry of table index sidx (< ntab): a storage, or ST_FREE. */
static inline st_storage *st_at(const hk_store *st, uint32_t sidx)
{
    return hk_sa_at_fixed(&st->tab, sidx, ST_SLAB_BITS, sizeof(st_storage));
}

/* The handle of the storage at table index sidx (store.h). */
static inline uint64_t st_handle(const hk_store *st, uint32_t sidx)
{
    return ((uint64_t)st_at(st, sidx)->gen << 32) | sidx;
}

/* Forgets the folder cache of the adds (last_dir, last_root): at each new epoch and when its folder goes. */
void st_folder_cache_drop(hk_store *st);

/* The storage of a handle (removed ones only if include_removed), its table index in *sidx; NULL if stale. */
st_storage *st_lookup(const hk_store *st, uint64_t handle, bool include_removed, uint32_t *sidx);
/* Resolves ext to a live storage and internal file index, checking bounds. 0, or -1 (errno EINVAL, st->err set). */
int st_resolve(hk_store *st, const hk_extent *ext, uint32_t *sidx, st_storage **sp, uint32_t *fp);
/* The internal index of an extent's file (HK_FILE_METAINFO: nfiles); > nfiles when there is no such file. */
uint32_t st_file_index(const st_storage *s, uint32_t ext_file);
/* The path of file f of storage s (table index sidx; NONE while hk_store_add builds it) below its folder ("<name>",
 * "<name>/<path>", or the .torrent's name), into buf (PATH_BUF bytes). Names the storage does not keep come from
 * the add under way (st->adding) or from the namer (hk_store_set_namer); a name it cannot get is "". */
void st_file_rel(const hk_store *st, uint32_t sidx, const st_storage *s, uint32_t f, char *buf, size_t cap);
void st_set_err(hk_store *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Fills st->err with the storage's failure and returns -1 with errno EIO. */
int st_failed_error(hk_store *st, const st_storage *s);
/* Frees a storage whose pins are gone (its files apart, its folder reference) and recycles its table index with the
 * next generation. */
void st_storage_free(hk_store *st, uint32_t sidx);
/* Grows an array of *cap elements of elem bytes: doubles *cap (0: to `initial`) and reallocates. The new array, or
 * NULL with nothing changed if the new capacity would overflow (or reach NONE - 1) or memory is short. */
void *st_grow(void *arr, uint32_t *cap, uint32_t initial, size_t elem);

/* --follow-links: the resolution of a data file of a folder below its served root (sp_open_beneath); false when
 * links are not followed for it (the store does not follow links, or the folder has no root). folder_rel points into
 * fo->path. */
static inline bool st_beneath(const hk_store *st, const st_folder *fo, char root[PATH_BUF], sp_beneath *b)
{
    if (!st->follow_links || fo->root_len == 0 || fo->root_len >= PATH_BUF)
        return false;
    memcpy(root, fo->path, fo->root_len);
    root[fo->root_len] = '\0';
    const char *rel = fo->path + fo->root_len;
    while (*rel == '/')
        rel++;
    *b = (sp_beneath){ .root = root, .root_id = &fo->root_id, .folder_rel = rel, .folder_id = &fo->id,
                       .others = (const char *const *)st->roots, .other_ids = st->root_ids, .nothers = st->nroots };
    return true;
}

/* ---- store_map.c: the mappings ---- */

size_t st_page_size(void);
/* Bytes mapped for a file of len bytes: rounded up to pages, plus the guard page. */
size_t st_map_length(uint64_t len);
static inline st_slot *st_slot_at(const hk_store *st, uint32_t i)
{
    return st->slots[i];
}
/* Opens and maps file f of s if it is not already. The slot index, or NONE with errno set (EIO: the storage is now
 * failed; otherwise a transient error) and st->err filled. */
uint32_t st_slot_acquire(hk_store *st, uint32_t sidx, st_storage *s, uint32_t f);
/* Opens file f (path rel below the folder) of s and checks its size against the metainfo. 0 with *fd, *sb; or -1
 * (errno as st_slot_acquire: transient errors leave s healthy, faults mark it failed). */
struct stat;
int st_open_checked(hk_store *st, st_storage *s, uint32_t f, const char *rel, int *fd, struct stat *sb);
/* Moves an unpinned open slot to the front of the LRU (most recently used). */
void st_lru_touch(hk_store *st, uint32_t i);
/* A data file of s (f < nfiles) seen with mtime m: later than the storage's stamp, s is flagged ST_MODIFIED (once
 * until taken) and the stamp moves to m. true if it was later. */
bool st_note_mtime(hk_store *st, st_storage *s, uint32_t f, int64_t m);
/* sb's mtime in nanoseconds. */
int64_t st_stat_mtime_ns(const struct stat *sb);
/* Marks s failed with the message in st->err (kept). true if it was not failed before. */
bool st_mark_failed(hk_store *st, st_storage *s);
/* Unmaps and closes every open unpinned file of s. */
void st_close_unpinned(hk_store *st, st_storage *s);
/* Unmaps and closes every open file, pinned or not (hk_store_free). */
void st_close_all(hk_store *st);

/* ---- store_resident.c ---- */

/* true if mincore cannot see the page cache of this mapping (its guard page claims to be resident). */
bool st_mincore_is_blind(const st_slot *sl);

/* ---- store_cache.c: the caches below the mappings ---- */

/* Invalidates every cached residency window (a file closed, a storage failed); a new epoch too. */
void st_rc_drop_all(hk_store *st);
/* A new epoch (a loop iteration): windows of earlier epochs stay valid only if full and recent (now_ms). */
void st_rc_next_epoch(hk_store *st);
/* true if every page of file bytes [first, end) of slot i is resident according to the cache; windows not cached are
 * asked with mincore only if `fill` (otherwise they count as not known resident). */
bool st_rc_resident(hk_store *st, uint32_t i, uint64_t first, uint64_t end, bool fill);
/* Forgets the cached windows that cover file bytes [first, end) of slot i (their pages changed state). */
void st_rc_forget(hk_store *st, uint32_t i, uint64_t first, uint64_t end);
/* Records a prefetch of [first, end) of slot i. false if it could not be recorded (out of memory). */
bool st_pf_record(hk_store *st, uint32_t i, uint64_t first, uint64_t end);
/* Issues the recorded prefetches, merged per file (see store.h's batching contract). */
void st_pf_flush(hk_store *st);
/* One madvise(WILLNEED) over file bytes [first, end) of a slot. */
void st_advise(hk_store *st, const st_slot *sl, uint64_t first, uint64_t end);

#endif
