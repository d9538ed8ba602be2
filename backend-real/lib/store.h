/* store: the data files of every served torrent, mapped lazily under budgets (backend-real).
 *
 * Contract
 * --------
 * A storage is one torrent's set of files on disk plus its .torrent file. hk_store_add checks that every file exists,
 * is a regular file (symbolic links are refused) inside the torrent's folder, and has exactly the size the metainfo
 * says; pad files (BEP 47) need no file on disk and read as zeros. It opens nothing else up front.
 *
 * Mapping is lazy: the first access to a file opens it and maps it read-only (MAP_SHARED, so the mapping and the page
 * cache are the same pages). The store keeps at most `max_mapped_bytes` mapped and `max_open_files` descriptors
 * open; past either budget it unmaps / closes the least recently used files (never one pinned by an in-flight send).
 * Before mapping, the file's size is checked with fstat against the metainfo: a shorter file is an error for that
 * storage (hk_store_failed returns true from then on), never SIGBUS.
 *
 * Safety against files changing under us: the event loop never dereferences mapped memory itself. Data leaves by
 * writev from the mapping (the kernel reports a vanished page as EFAULT, not a signal), residency is asked with
 * mincore, prefetch is madvise(WILLNEED), and page-in on the thread pool uses pread/readahead on a descriptor, not the
 * mapping. A file replaced (different inode) or truncated is detected at the next (re)map or by hk_store_check, and
 * the storage is marked failed.
 *
 * Threading: every function is for the event-loop thread, except hk_store_page_in, which a pool thread may call with
 * a hk_store_job prepared on the loop thread by hk_store_job_prepare.
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
    uint32_t max_open_files;     /* default 1024 */
} hk_store_limits;

void hk_store_limits_default(hk_store_limits *lim);
hk_store *hk_store_new(const hk_store_limits *lim);
void hk_store_free(hk_store *st);

/* Validates the data of one torrent: torrent_path is the .torrent file; data lives beside it (single file:
 * <folder>/<name>; multi-file: <folder>/<name>/<path...>). Returns a storage handle (> 0), or 0 with err filled
 * ("<path>: missing", "<path>: size 100 but the torrent says 120", "<path>: is a symbolic link", ...).
 * The store keeps its own copy of whatever it needs from mi. */
uint64_t hk_store_add(hk_store *st, const char *torrent_path, const hk_metainfo *mi, char *err, size_t errlen);
void hk_store_remove(hk_store *st, uint64_t storage);
bool hk_store_failed(const hk_store *st, uint64_t storage, const char **why);

/* Fills iov with the memory of ext (mapping the file if needed). Returns 0, or -1 if the storage is failed or the
 * file cannot be mapped (then the storage is marked failed and *why says why). Pad-file extents point to zeros.
 * The mapping stays valid until hk_store_unpin(ext) is called the same number of times as hk_store_pin. */
int hk_store_pin(hk_store *st, const hk_extent *ext, struct iovec *iov);
void hk_store_unpin(hk_store *st, const hk_extent *ext);

bool hk_store_resident(hk_store *st, const hk_extent *ext);   /* mincore; false if unmapped */
void hk_store_prefetch(hk_store *st, const hk_extent *ext);   /* madvise WILLNEED (maps if needed) */

/* Page-in on a pool thread: prepare on the loop thread (opens/dups a descriptor the job owns), run anywhere,
 * release on the loop thread. */
typedef struct hk_store_job {
    int fd;
    uint64_t offset;
    uint32_t length;
    int error;                   /* errno-style result of hk_store_page_in; 0 on success */
} hk_store_job;
int hk_store_job_prepare(hk_store *st, const hk_extent *ext, hk_store_job *job);
void hk_store_page_in(hk_store_job *job);                  /* thread-safe: touches only the job */
void hk_store_job_release(hk_store *st, hk_store_job *job);

/* Re-stats every currently open file; marks storages whose files were truncated, replaced or deleted. Returns the
 * number of storages newly marked failed. Call it periodically (e.g. every second) from the loop. */
uint32_t hk_store_check(hk_store *st);

typedef struct hk_store_stats {
    uint64_t mapped_bytes;
    uint32_t open_files;
    uint64_t maps, unmaps;
} hk_store_stats;
void hk_store_stats_get(const hk_store *st, hk_store_stats *out);

#endif
