/* rescan: brings what the daemon serves in line with the .torrent files below its folders, without a restart.
 *
 * Contract
 * --------
 * A rescan walks every folder (scan.h, in the order given) and hands each .torrent path to hk_real_load under a new
 * mark (real_runtime.h): new files whose data is valid are added, files that now hold another torrent replace the
 * old one, failed torrents whose data is valid again are re-added, unchanged ones are left alone (one lstat and one
 * lookup each; their peers go on). After the walk, every record the walk did not visit is examined with lstat: a
 * file that is gone (or is no longer a regular file, or is reached only through a folder that became a symbolic link:
 * the walk never follows one) is removed with hk_real_forget (peers disconnected, `stopped` announced, storage
 * released); a file still there that the walk could not reach (an unreadable folder, a transient
 * error) is kept as it is, so a temporary problem never drops a torrent. Last, the paths that were duplicates of a
 * torrent served from a path not visited yet (HK_LOAD_DEFERRED) are tried again, once the removals are done: two
 * files that swap their contents converge in one rescan.
 *
 * Incremental: hk_rescan_step does about `seconds` of work (at least one path) and returns; an event loop calls it
 * once per iteration so serving goes on during a long rescan. hk_rescan_run does everything at once. Freeing a rescan
 * before it is finished abandons it: nothing is removed (the sweep never ran), what was added stays.
 * While a rescan runs, the runtime's torrents must change only through it, and through the catalog's own reload of
 * a .torrent that changed on disk while served (catalog.h), which keeps the record's mark: a path it reloaded before
 * the walk reaches it is examined again by the walk, one reloaded after is not taken for unvisited.
 *
 * Reporting: one event per change (added, re-added, removed, rejected, still failed, could not examine, kept,
 * walk problem), progress every `progress_every` files (0: never), and the totals (hk_rescan_stats_get).
 */
#ifndef HEKATE_RESCAN_H
#define HEKATE_RESCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "metainfo.h"
#include "real_runtime.h"

typedef struct hk_rescan hk_rescan;

typedef enum hk_rescan_kind {
    HK_RESCAN_ADDED = 0,     /* info_hash, mi */
    HK_RESCAN_READDED,       /* info_hash, mi, why: the same torrent on fresh storage */
    HK_RESCAN_REMOVED,       /* info_hash, why */
    HK_RESCAN_REJECTED,      /* why, repeated */
    HK_RESCAN_STILL_FAILED,  /* info_hash, why, repeated: a failed torrent whose data is still not valid */
    HK_RESCAN_ERROR,         /* why: the file could not be examined now; nothing changed */
    HK_RESCAN_KEPT,          /* info_hash, why: not reached by the walk but still there; left as it is */
    HK_RESCAN_PROBLEM,       /* why: the walk could not examine a folder or entry */
} hk_rescan_kind;

typedef struct hk_rescan_event {
    hk_rescan_kind kind;
    const char *path;
    const char *why;
    const uint8_t *info_hash;    /* NULL where not listed above */
    const mi_torrent *mi;        /* NULL where not listed above */
    bool repeated;               /* the same reason as the last time for this path (log it quietly) */
} hk_rescan_event;

typedef struct hk_rescan_stats {
    size_t files;                /* .torrent paths examined by the walk */
    size_t unchanged;
    size_t added;                /* newly served, replaced by another torrent, or re-added */
    size_t removed;              /* no longer served: file gone, holds another torrent, or now invalid */
    size_t failed;               /* rejected, still failed, or could not be examined */
    size_t kept;                 /* served, not reached by the walk, still there */
    size_t problems;             /* walk problems */
    size_t other_shard;          /* --shard: .torrent files whose torrent is in another shard (not served) */
    size_t served;               /* torrents served when the rescan finished (or so far) */
    double seconds;              /* since hk_rescan_new */
    bool done;
} hk_rescan_stats;

typedef struct hk_rescan_cb {
    void (*on_event)(void *arg, const hk_rescan_event *ev);           /* may be NULL */
    void (*on_progress)(void *arg, const hk_rescan_stats *st);        /* may be NULL */
    void *arg;
} hk_rescan_cb;

/* dirs (and the strings) must stay valid until the rescan is freed. NULL if out of memory. */
hk_rescan *hk_rescan_new(hk_real *r, const char *const *dirs, size_t ndirs, const hk_rescan_cb *cb,
                         size_t progress_every);
/* About `seconds` of work (at least one path); true once the rescan is finished. */
bool hk_rescan_step(hk_rescan *rs, double seconds);
void hk_rescan_stats_get(const hk_rescan *rs, hk_rescan_stats *out);
void hk_rescan_free(hk_rescan *rs);
/* The whole rescan at once. -1 if out of memory (nothing done), else 0 with the totals in out (may be NULL). */
int hk_rescan_run(hk_real *r, const char *const *dirs, size_t ndirs, const hk_rescan_cb *cb, size_t progress_every,
                  hk_rescan_stats *out);

/* One path outside a rescan (the watched folders, watch.h), reported through cb as a rescan would: loaded (mark 0,
 * seen: its lstat or NULL), or forgotten (REMOVED with why; false if nothing was served from it). Not while a rescan
 * is under way. */
void hk_rescan_one(hk_real *r, const char *path, const struct stat *seen, const hk_rescan_cb *cb);
bool hk_rescan_forget_one(hk_real *r, const char *path, const char *why, const hk_rescan_cb *cb);

#endif
