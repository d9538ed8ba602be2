/* store: the data files of every served torrent, mapped lazily under budgets (backend-real).
 *
 * Contract
 * --------
 * A storage is one torrent's set of files on disk plus its .torrent file. The data lives in one <folder>: a
 * single-file torrent is <folder>/<name>, a multi-file one <folder>/<name>/<path...>. Data lookup, at add time: <folder>
 * is the directory holding the .torrent file if it has an entry <name> (of any type: a link found there is refused,
 * not skipped); else the first data dir (hk_store_set_data_dirs, --data-dir, in the order given) that has an entry
 * <name>; else the torrent is refused ("<dir>/<name>: missing (and in no --data-dir: N searched)"). Once found, the
 * place is fixed for the storage's life (a re-add looks again). Each folder is resolved once, with realpath, when the
 * storage is added, and the same confinement applies to a data dir as to the .torrent's folder (see Confinement; the
 * .torrent itself is always opened below its own folder). hk_store_add
 * checks that every file exists, is a regular file and has exactly the size the metainfo says; pad files (BEP 47) need
 * no file on disk and read as zeros; zero-length files hold no byte to serve, so they are not looked at (an extent is
 * never empty).
 * It opens nothing else up front.
 *
 * Confinement: every path component is checked again (1..255 bytes, not "." or "..", no '/') although the metainfo
 * parser already refused such names, and nothing is ever reached through a symbolic link, at add time or later:
 *   - <folder> is resolved with realpath once, at add time (a link above it, the administrator's choice, is resolved
 *     then), and its identity (st_dev, st_ino) recorded. Every later open (the lazy map of a data file or of the
 *     .torrent, a re-map after eviction, hk_store_check) opens that absolute path again from "/" refusing a symbolic
 *     link at every component (openat2 with RESOLVE_NO_SYMLINKS where the kernel has it, else one
 *     openat(O_NOFOLLOW) per component) and requires the same identity: <folder>, or any directory above it,
 *     swapped for a link, or replaced by another directory, makes the storage failed (EIO; "/srv/t/sub: is a
 *     symbolic link", "/srv/t/sub: replaced, not the folder that was scanned").
 *   - below <folder>, the file is opened relative to that directory descriptor with openat2(RESOLVE_BENEATH |
 *     RESOLVE_NO_SYMLINKS), else one openat(O_NOFOLLOW) per directory: a link anywhere in the data path (the <name>
 *     folder of a multi-file torrent included), or a .torrent that is a link, fails the storage likewise.
 *   - served folders (hk_store_set_links: the DIRs and data dirs): a storage whose folder, resolved, lies in none
 *     of them is refused. With follow set (--follow-links), a data file's path below its folder may go through
 *     symbolic links whose targets stay inside the served folders: every open and every check resolves it again
 *     with sp_open_beneath (store_path.h: the links read and resolved by the process from the served folder's
 *     descriptor, never by the kernel), so a link swapped later to point outside fails the storage like any other
 *     fault. The .torrent itself is never reached through a link.
 *   Page-in jobs never open a path: they read a duplicate of the mapped file's descriptor. No descriptor is held per
 *   folder (the identity check costs one fstat per open instead), so a million folders cost no descriptor. When
 *   openat2 is missing (ENOSYS) or refused (a seccomp filter) the component walk does the same job. Data files are
 *   opened O_RDONLY|O_CLOEXEC|O_NOFOLLOW and must be regular files.
 *
 * Mapping is lazy: the first pin, prefetch or page-in job of a file opens it and maps the whole file read-only
 * (PROT_READ, MAP_SHARED: the mapping and the page cache are the same pages). The store keeps at most
 * `max_mapped_bytes` mapped and `max_open_files` descriptors open (one descriptor per mapped file); past either budget
 * it unmaps and closes the least recently used files (an LRU list, O(1) per access). A pinned file is never evicted,
 * so the budgets are soft: they are exceeded by files that are pinned (or by one file larger than the whole budget).
 * Before mapping, the file's size is checked with fstat against the metainfo: a different size makes the storage
 * failed (hk_store_failed returns true from then on), never SIGBUS.
 *
 * HK_FILE_METAINFO extents name the .torrent file itself (offsets in its bytes: ut_metadata serves the raw `info`
 * dictionary from it). Its size is recorded by hk_store_add (which checks that the info range lies inside it) and
 * checked at every (re)map like a data file.
 *
 * Safety against files changing under us: the event loop never dereferences mapped memory itself. Data leaves by
 * writev from the mapping (the kernel reports a vanished page as EFAULT, not a signal: tests/unit/real/test_store.c
 * proves it on the running kernel), residency is asked with mincore, prefetch is madvise(WILLNEED), and page-in on the
 * thread pool uses readahead + pread on a descriptor the job owns, never the mapping. A file replaced (different inode
 * or device), truncated, grown or deleted is detected at the next (re)map or by hk_store_check, and the storage is
 * marked failed; its unpinned files are closed at once, pinned ones when their last pin goes. One reader of the
 * mappings outside the kernel: the piece verifier (verify.h) hashes pinned ranges on pool threads, under a SIGBUS
 * guard (mapguard.h) that turns a vanished page into EIO, which it reports like a failed page-in job.
 *
 * Errors: an extent outside the file (or of length 0, or of an unknown storage / file) is a caller error: -1 with
 * errno EINVAL, the storage is not marked. A data fault (missing, wrong size, symbolic link, unreadable) marks the
 * storage failed (errno EIO). A shortage of process resources (EMFILE, ENFILE, ENOMEM while opening or mapping) is
 * transient: -1 with that errno, the storage stays healthy and a later call may succeed. Every failing call leaves a
 * message (path and reason) readable through `why` / hk_store_last_error until the next store call.
 *
 * Removal: hk_store_remove forgets the storage at once (its handle no longer resolves for anything but unpin); memory
 * still pinned by an in-flight send stays mapped until the matching unpins, then everything is released.
 *
 * Batching (hk_store_set_batching; off by default): for an event loop that calls hk_store_next_epoch once at the
 * start of every iteration and hk_store_flush_prefetch once at its end, before it waits. Then
 *   - hk_store_prefetch maps the file at once (failures as without batching) but only records the range; the flush
 *     sorts the records, merges per file those whose page ranges touch or overlap, and issues one madvise per run.
 *     A run covers exactly the pages its records asked for (no page that was not requested is ever advised). A run
 *     the residency cache already knows to be resident is skipped (WILLNEED would do nothing), and so is a prefetch
 *     it knows resident when it is asked (not even recorded: no sort at the flush; both count in madvise_skipped). A
 *     residency query that answers "not resident" flushes at once (the disk then starts without waiting for the
 *     loop's end), and so do closing a file (an eviction) and more than 4096 records.
 *   - hk_store_resident answers from a cache: one mincore covers an aligned window of 64 pages (clipped to the
 *     file), and later queries inside the window use its result, for the current epoch only if any of its pages was
 *     not resident, for lim.resident_keep_ms (default 10 ms; CLOCK_MONOTONIC_COARSE read once per epoch, so up to a
 *     clock tick more) if all were (issue 12, CPU per GiB: at K = 500 the loop turns every 0.1-0.5 ms and asked
 *     mincore ~25,000 times per GiB for the same hot windows). The cost of the longer answer: a page the kernel
 *     evicts within those milliseconds of being found resident (the most recently used pages: only under heavy
 *     memory pressure) is faulted in by the send on the loop, as in the race between any mincore and the send
 *     that follows it, only wider. The cache is dropped when any file is closed (eviction, failure, removal) or a
 *     storage fails; a successful page-in job (hk_store_job_release) forgets the windows it read. Files where
 *     mincore is blind are never cached (their probes stay exact).
 * Without batching every prefetch is one madvise and every residency query asks the kernel.
 *
 * Threading: every function is for the event-loop thread, except hk_store_page_in, which a pool thread may call with
 * a hk_store_job prepared on the loop thread by hk_store_job_prepare.
 *
 * Implementation: store.c (storages, handles, errors, statistics), store_map.c (mappings, LRU, pins, change
 * detection), store_copy.c (small files sent by copy, hk_store_copy), store_resident.c (residency, prefetch,
 * page-in jobs), store_cache.c (residency cache, prefetch batching); their shared internals and layering are in
 * store_internal.h.
 */
#ifndef HEKATE_STORE_H
#define HEKATE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "metainfo.h"
#include "runtime.h"

typedef struct hk_store hk_store;

typedef struct hk_store_limits {
    uint64_t max_mapped_bytes;   /* default 16 GiB of address space */
    uint32_t max_open_files;     /* default 1024, at most HK_STORE_MAX_OPEN_FILES */
    uint32_t resident_keep_ms;   /* batching: how long a window found wholly resident stays so (default 10; 0: one
                                  * epoch only, like any other window) */
} hk_store_limits;

/* The store numbers its open files in 16 bits (issue 10: 40 bytes per storage): max_open_files may not exceed
 * HK_STORE_MAX_OPEN_FILES, and the files open at once, pinned ones beyond the budget included, are at most 65534 (a
 * pin, prefetch or job that would open one more fails as a passing shortage: EMFILE, "<path>: too many files open at
 * once (65534, the store's cap)"). Pins outstanding on one storage stay below 2^24 (one more: EAGAIN, "<path>:
 * pinned 16777215 times already"). */
#define HK_STORE_MAX_OPEN_FILES 32768u
void hk_store_limits_default(hk_store_limits *lim);
/* lim NULL: defaults. NULL if out of memory (errno ENOMEM) or with lim->max_open_files above HK_STORE_MAX_OPEN_FILES
 * (errno EINVAL: hk_store_limits_check says so). */
hk_store *hk_store_new(const hk_store_limits *lim);
/* 0 if lim is acceptable to hk_store_new; else -1 with err filled ("max_open_files 40000 is above the store's cap,
 * 32768"). */
int hk_store_limits_check(const hk_store_limits *lim, char *err, size_t errlen);
/* Unmaps and closes everything, pinned or not: call it when nothing is in flight any more. */
void hk_store_free(hk_store *st);

/* A storage handle is a table index in its low 32 bits and a generation above, 1..HK_STORE_MAX_GEN (so a handle is
 * never 0): an index is reused once its storage is freed (removed, and its last pin gone), so indexes stay below
 * the most storages live at once (and below HK_STORE_MAX_INDEX) and an owner may keep a dense array by index: the
 * seeder takes the index as the torrent's id (core/seeder.h, issue 10: one number for both), served.h its records.
 * The generation moves on every reuse (wrapping after HK_STORE_MAX_GEN): a stale handle (a late completion or unpin
 * for a storage freed) never resolves to the index's new storage; every call given one acts as for an unknown
 * storage (errors: EINVAL; hk_store_failed: true; hk_store_remove, hk_store_unpin, hk_store_job_release: nothing). */
#define HK_STORE_MAX_GEN 0x7fffu           /* the seeder keeps 15 bits of it (core/torrent_table.h: HK_TT_MAX_GEN) */
#define HK_STORE_MAX_INDEX (1u << 28)      /* HK_TT_MAX_REC */
/* Validates the data of one torrent (see the contract) and returns a storage handle (> 0), or 0 with err filled
 * ("/srv/t/album/cd1.flac: missing", "/srv/t/x.iso: size 100 but the torrent says 120", "/srv/t/x: is a symbolic
 * link", ...). The store keeps its own compact copy of what it needs from mi. */
uint64_t hk_store_add(hk_store *st, const char *torrent_path, const mi_torrent *mi, char *err, size_t errlen);
void hk_store_remove(hk_store *st, uint64_t storage);
/* Names a storage does not keep (issue 10: 10^6 torrents): with a namer set, storages added from then on keep
 * neither the .torrent file's name (the last component of the torrent_path hk_store_add was given) nor the torrent's
 * name (mi->name); the store asks fn for them when it opens or checks a file, or explains a fault, never inside
 * hk_store_add. fn(ctx, storage, which, buf, cap) returns that name (into buf, cap >= 256 bytes, or a string of its
 * own valid until the next call), or NULL if it does not know the storage (the file then cannot be opened: the
 * storage fails). Without a namer (NULL, the default) every storage keeps its names. */
enum { HK_STORE_NAME_TORRENT_FILE = 0, HK_STORE_NAME_TORRENT = 1 };
typedef const char *(*hk_store_namer)(void *ctx, uint64_t storage, int which, char *buf, size_t cap);
void hk_store_set_namer(hk_store *st, hk_store_namer fn, void *ctx);
/* The data dirs searched after the .torrent's folder (see the contract), copied; for storages added from now on.
 * n 0: none (data only beside the .torrent). 0, or -1 if out of memory (the previous list stays). */
int hk_store_set_data_dirs(hk_store *st, const char *const *dirs, size_t n);
/* The served folders (the DIRs and the data dirs; a DIR that is a .torrent file stands for its folder), resolved with
 * realpath now, and whether data paths may go through symbolic links below them (--follow-links, see Confinement).
 * Once set, a storage whose folder (resolved) lies in none of them is refused ("...: ... is outside the served
 * folders"); a folder that did not exist when set is resolved again when a storage would otherwise be refused (a DIR
 * created later). For storages added from now on. 0, or -1 if out of memory (then none is set). n 0: no check. */
int hk_store_set_links(hk_store *st, bool follow, const char *const *roots, size_t n);
/* What hk_store_set_links set (the resolved folders, owned by the store, valid until the next set; an entry is NULL
 * while its folder does not exist, and may be filled in later, never moved): the follow flag, for the scan to follow
 * links to folders below the same folders. */
bool hk_store_links(const hk_store *st, const char *const **roots, size_t *n);
/* true if the storage is failed (or unknown); *why (if not NULL) then says why. */
bool hk_store_failed(const hk_store *st, uint64_t storage, const char **why);

/* Fills iov with the memory of ext (mapping the file if needed). Returns 0, or -1 (see Errors; *why, if why is not
 * NULL, says why). Pad-file extents point to a shared read-only region of zeros. The memory stays valid until
 * hk_store_unpin(ext) has been called as many times as hk_store_pin succeeded for it (even across hk_store_remove). */
int hk_store_pin(hk_store *st, const hk_extent *ext, struct iovec *iov, const char **why);
void hk_store_unpin(hk_store *st, const hk_extent *ext);

/* mincore over the page-aligned range: true only if every page is resident. Pad extents are always resident; an
 * extent whose file is not mapped (or is invalid, or of a failed storage) is not. Does not map anything.
 * Since Linux 5.0 mincore sees the page cache only of files the process owns or may write; for others (data owned by
 * another user, read-only mounts) it claims that every page is resident. The store detects this per mapping (a guard
 * page mapped past the end of the file, which can never be cached) and then reads the page range with
 * preadv2(RWF_NOWAIT) instead (into a scratch buffer, one call per 256 KiB), which stops short unless every page is
 * cached. With batching, answers come from the residency cache (see the contract). */
bool hk_store_resident(hk_store *st, const hk_extent *ext);
/* madvise(MADV_WILLNEED) over the page-aligned range, mapping the file if needed; with batching, recorded and issued
 * (merged) by hk_store_flush_prefetch. A hint: failures only mark the storage as hk_store_pin would. */
void hk_store_prefetch(hk_store *st, const hk_extent *ext);

/* Batching for an event loop (see the contract). Turning it off flushes the recorded prefetches. */
void hk_store_set_batching(hk_store *st, bool on);
/* Issues the recorded prefetches (merged per file); call once per loop iteration, just before the loop waits. */
void hk_store_flush_prefetch(hk_store *st);
/* Starts a new epoch: every cached residency answer is forgotten but windows found wholly resident within
 * lim.resident_keep_ms; call once per loop iteration, after the wait. */
void hk_store_next_epoch(hk_store *st);

/* Page-in on a pool thread: prepare on the loop thread (maps the file like a pin, then dups its descriptor for the
 * job), run hk_store_page_in anywhere, release on the loop thread. A pad extent gets fd -1 and pages in at once.
 * The job's descriptor is outside the max_open_files budget: the caller bounds its outstanding jobs. */
typedef struct hk_store_job {
    uint64_t storage;
    uint32_t file;
    int fd;                      /* owned by the job; -1 for pad extents */
    uint64_t offset;
    uint32_t length;
    int error;                   /* errno-style result of hk_store_page_in; 0 on success (EIO: the file is short) */
} hk_store_job;
int hk_store_job_prepare(hk_store *st, const hk_extent *ext, hk_store_job *job);   /* 0, or -1 as hk_store_pin */
void hk_store_page_in(hk_store_job *job);                  /* thread-safe: touches only the job */
/* Closes the job's descriptor; if the page-in failed, marks the storage failed, unless job->error is a passing
 * shortage (hk_store_transient: the storage stays healthy). */
void hk_store_job_release(hk_store *st, hk_store_job *job);

/* ---- descriptor shortage and small files (issue 14, items 4 and 5) ---- */

/* true for the errors of a passing shortage of process resources (EMFILE, ENFILE, ENOMEM, ENOBUFS, EAGAIN): never a
 * fault of the data; a later call may succeed. */
bool hk_store_transient(int err);

/* Files of at most HK_STORE_COPY_MAX bytes are sent by copy, not mapped: a block of 16 KiB may span thousands of tiny
 * files, and pinning a mapping (one descriptor) per file would exceed max_open_files. */
#define HK_STORE_COPY_MAX 4096u
/* Copies the bytes of ext into buf (cap >= ext->length) when its file is a small data file (at most
 * HK_STORE_COPY_MAX bytes): read with pread from its descriptor when the file is open already, else opened (with the
 * same confinement and size checks as a map), read and closed at once, so it holds no descriptor after the call and
 * counts in no budget. Returns 1 when copied; 0 when ext is not such a file (a large file, a pad file, the .torrent,
 * or ext longer than cap: pin it instead); -1 on error as hk_store_pin (EIO: the storage is failed, e.g. the file is
 * shorter than its size; a transient errno: nothing is marked; *why, if not NULL, says why). */
int hk_store_copy(hk_store *st, const hk_extent *ext, uint8_t *buf, size_t cap, const char **why);

/* Re-checks every currently open file: fstat of its descriptor (size, link count) and a fresh lookup of its path that
 * follows no link, through its folder checked as in Confinement (st_dev, st_ino): a file truncated, grown, replaced
 * or deleted, or its folder swapped, marks its storage failed. Returns the number of storages newly marked failed.
 * Call it periodically (e.g. every second) from the loop. Cost per open file: the folder's open (one openat2, or one
 * openat per component of its path) and fstat, plus one openat per directory level below it and one fstatat. */
uint32_t hk_store_check(hk_store *st);
/* Data files changed in place (issue 10: piece verification): a data file whose mtime moves (seen by hk_store_check
 * on an open file, or at its next open against the latest mtime its storage had: at add, or since) while its size and
 * inode stay flags its storage modified; hk_store_check then counts every storage so flagged in its return value
 * (with the newly failed ones). hk_store_take_modified: true once per flagging (the flag is cleared), for the caller
 * to drop that torrent's verification marks. A size change, a new inode or a deletion fails the storage instead. */
bool hk_store_take_modified(hk_store *st, uint64_t storage);
/* The live, healthy storages whose .torrent file is open (mapped) now, for a caller that checks those files itself
 * (the catalog compares their identity with the one it read: an in-place rewrite keeps size and inode). Start with
 * *cursor = 0; each call returns the next one's handle, 0 at the end. Storages may be added or removed between calls:
 * open files are visited by slot, each at most once. Cost: O(open slots) per whole iteration, no system call. */
uint64_t hk_store_next_open_torrent(const hk_store *st, uint32_t *cursor);

/* The message of the last failing call (a store-owned string, valid until the next store call); "" if none. */
const char *hk_store_last_error(const hk_store *st);

typedef struct hk_store_stats {
    uint64_t mapped_bytes;
    uint32_t open_files;         /* descriptors the store holds (each is a mapped file) */
    uint32_t pinned_files;       /* open files with at least one pin */
    uint32_t storages;           /* added and not removed */
    uint32_t blind_files;        /* open files for which mincore cannot see the page cache (see hk_store_resident) */
    uint64_t maps, unmaps;       /* since creation */
    /* System calls and cache use since creation: */
    uint64_t madvise_calls;      /* madvise(WILLNEED) issued (one per prefetch, or per merged run with batching) */
    uint64_t madvise_skipped;    /* merged runs not advised: the residency cache knew them resident */
    uint64_t mincore_calls;      /* every mincore (residency queries, cache windows, blindness checks) */
    uint64_t probe_calls;        /* preadv2(RWF_NOWAIT) probes of files where mincore is blind */
    uint64_t cache_hits;         /* windows answered from the residency cache */
    uint32_t prefetches_pending; /* recorded, not yet flushed */
} hk_store_stats;
void hk_store_stats_get(const hk_store *st, hk_store_stats *out);

/* Heap bytes the store spends on one storage (its handle table entry, which holds a single file's entry; the file
 * entries and names it keeps apart; its share of the folder records); 0 if unknown. For memory reports and tests. */
size_t hk_store_storage_bytes(const hk_store *st, uint64_t storage);

#endif
