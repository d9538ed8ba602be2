/* real_runtime: the production hk_runtime on libev, wiring listener, connections, file store, thread pool and
 * timers to the seeding engine (core/seeder.h).
 *
 * Contract
 * --------
 * One hk_real per process, on one libev loop (the daemon uses the default loop). hk_real_new opens the listening
 * socket first (unless opts.listen is false, as for `hekate --list`) so the port it advertises is the one bound, then
 * creates the store, the hub of connections, the thread pool and the seeder. Every runtime action is carried out
 * without calling back into the core; what happens during an action (a send that cannot be queued, a disk load that
 * cannot start) is reported later from the loop.
 *
 *   now()          CLOCK_MONOTONIC in nanoseconds.
 *   wake_at(t)     one ev_timer; when it fires before t (libev measures from its cached loop time) it is re-armed
 *                  for the rest, so hk_seeder_on_wake never runs early.
 *   random_bytes   getrandom(2).
 *   send / close   conn.h (shared read buffer, one writev per flush, flow control by watermarks).
 *   disk_prefetch  hk_store_prefetch; disk_resident: hk_store_resident.
 *   disk_load      hk_store_job_prepare on the loop, hk_store_page_in on the pool, then hk_seeder_on_disk_loaded
 *                  (OK, or ERROR if the page-in failed) on the loop; exactly one completion per call.
 *   log            log.h (stderr, level filter, timestamp).
 *   trackers       not in the seeder's table: with opts.trackers an announcer (core/announcer.h) runs beside the
 *                  seeder on the same loop (trackers.h: its own wake-up, libcurl, UDP sockets, resolver); each
 *                  torrent added is handed to it, `uploaded` is read from hk_seeder_torrent_stats, and
 *                  hk_real_stop_trackers sends `stopped` (bounded in time) before hk_real_free.
 * Every second hk_store_check runs; storages it newly marks failed, and the storage of an extent that faulted
 * during a write (EFAULT), are reported once each with hk_seeder_storage_failed.
 *
 * Torrents by path (hot add and remove). The runtime keeps one record per .torrent path (served.h): the torrent
 * served from it, or that it was rejected (so a rejection that repeats can be logged quietly). hk_real_load looks
 * at one path and brings what is served from it up to date; hk_real_forget stops serving it. Both act on the store,
 * the seeder and, with trackers, the announcer together:
 *   - adding: the data is validated by the store first; the announcer is handed the torrent (hk_announcer_add_*:
 *     its first announce is spread with those of every torrent added since its last wake-up, never a burst);
 *   - removing: hk_seeder_remove_torrent first, which closes the torrent's connections; closing a connection drops
 *     its send queue and unpins every extent queued there, so no send pins the storage any more when
 *     hk_store_remove then releases it (the store would keep pinned memory mapped until the last unpin anyway);
 *     page-in jobs in flight own a duplicate descriptor, never the mapping, and their completion for a removed
 *     torrent fails nothing; hk_announcer_remove_torrent sends `stopped` to the trackers that have it registered.
 */
#ifndef HEKATE_REAL_RUNTIME_H
#define HEKATE_REAL_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "conn.h"
#include "listener.h"
#include "metainfo.h"
#include "seeder.h"
#include "served.h"
#include "store.h"
#include "trackers.h"

struct ev_loop;
typedef struct hk_real hk_real;

#define HK_MAX_TORRENT_FILE (64u << 20) /* largest .torrent file read */

typedef struct hk_real_opts {
    hk_config cfg;               /* listen_port is filled in from the bound socket */
    bool listen;                 /* open the listening socket (false: only load and list torrents) */
    hk_listener_opts listener;
    hk_conn_limits conn;
    hk_store_limits store;
    unsigned disk_threads;       /* pool threads for page-in (default 8) */
    double check_interval;       /* seconds between hk_store_check runs (default 1) */
    bool trackers;               /* announce to the torrents' trackers (default false; needs listen) */
    hk_trackers_opts trackers_opts; /* peer_id and port are filled in from the seeder and the bound socket */
} hk_real_opts;

void hk_real_opts_default(hk_real_opts *o);

hk_real *hk_real_new(struct ev_loop *loop, const hk_real_opts *o, char *err, size_t errlen);
/* Closes the listener and every connection, waits for disk jobs in flight, frees everything. NULL is a no-op. */
void hk_real_free(hk_real *r);
/* Trackers: `stopped` to every tracker that has a torrent registered, running the loop for at most `seconds`.
 * No-op without trackers. hk_real_announcer is NULL without trackers. */
void hk_real_stop_trackers(hk_real *r, double seconds);
hk_announcer *hk_real_announcer(hk_real *r);

/* Reads a .torrent file (regular file, at most HK_MAX_TORRENT_FILE bytes), parses it, validates its data with the
 * store and adds it to the seeder. On success returns 0 and, if mi_out is not NULL, hands over the parsed
 * description (free with mi_free). On failure returns -1 with err saying why (the caller prefixes the path); a path
 * already served is refused as a duplicate, and a rejected path leaves no record behind. */
int hk_real_add_torrent_file(hk_real *r, const char *path, mi_torrent **mi_out, char *err, size_t errlen);

/* What hk_real_load did with a path. */
typedef enum hk_load_outcome {
    HK_LOAD_UNCHANGED = 0,   /* served, and the file still holds that torrent: untouched (its peers go on) */
    HK_LOAD_ADDED,           /* newly served */
    HK_LOAD_REPLACED,        /* the file holds another torrent now: the old one was removed, the new one is served */
    HK_LOAD_READDED,         /* the same torrent, served again on fresh storage: it had failed and its data is valid
                                again (was_failed), or its .torrent was rewritten with the info elsewhere in it */
    HK_LOAD_REJECTED,        /* nothing served from the path: err says why (old_removed: what it served is gone) */
    HK_LOAD_STILL_FAILED,    /* served but failed, and its data is still not valid (err says why): left as it is */
    HK_LOAD_DEFERRED,        /* (HK_LOAD_MAY_DEFER) the same info-hash is served from a path this rescan has not
                                visited yet, which may disappear: ask again after the rescan's removals */
    HK_LOAD_ERROR,           /* the file could not be examined now (out of descriptors or memory): nothing changed */
} hk_load_outcome;

enum {
    HK_LOAD_WANT_MI = 1,     /* hand the parsed torrent over in info->mi (ADDED, REPLACED, READDED) */
    HK_LOAD_MAY_DEFER = 2,   /* a duplicate of a torrent whose record carries another mark is DEFERRED */
};

typedef struct hk_load_info {
    uint8_t info_hash[20];   /* UNCHANGED, ADDED, REPLACED, READDED: the torrent served from the path */
    uint8_t old_hash[20];    /* old_removed: the torrent that was served from it before */
    bool old_removed;        /* REPLACED, and REJECTED when the path served a torrent before */
    bool was_failed;         /* READDED, STILL_FAILED: the torrent's storage had failed */
    bool repeated;           /* REJECTED, STILL_FAILED: the same reason as the last time for this path */
    mi_torrent *mi;          /* with HK_LOAD_WANT_MI: the parsed torrent (ADDED, REPLACED, READDED); mi_free it */
} hk_load_info;

/* Brings what is served from `path` up to date and records `mark` on its record (a rescan's number, see
 * hk_real_next_mark; 0 outside rescans), except when DEFERRED (the retry must not count as a second visit). `seen` (may be NULL) is the file's lstat from the walk: a path served and
 * healthy whose file has the same identity (device, inode, size, mtime, ctime) is UNCHANGED without being read, and
 * a path rejected for its .torrent itself (unreadable, malformed) is not read again while its identity stays.
 * Otherwise the file is read and parsed; the same info-hash at the same place in a file of the same size is
 * UNCHANGED; a failed torrent is re-added if its data is valid now; another torrent replaces the old one; a torrent
 * already served from another path is a duplicate (REJECTED, or DEFERRED, see above). A record visited twice with
 * the same mark (overlapping folders) is UNCHANGED the second time. */
hk_load_outcome hk_real_load(hk_real *r, const char *path, const struct stat *seen, uint32_t mark, unsigned flags,
                             hk_load_info *info, char *err, size_t errlen);
/* Stops serving what is served from path and forgets its record: peers disconnected, `stopped` announced, storage
 * released (see the contract). Returns true if a torrent was served from it (its info-hash in info_hash_out, which
 * may be NULL); false if only a rejection was remembered, or nothing. */
bool hk_real_forget(hk_real *r, const char *path, uint8_t info_hash_out[20]);
/* A new rescan number (never 0). */
uint32_t hk_real_next_mark(hk_real *r);
/* The table of paths, for reading (a rescan lists the records it did not visit). */
const hk_served *hk_real_served(const hk_real *r);

hk_seeder *hk_real_seeder(hk_real *r);
hk_store *hk_real_store(hk_real *r);
const hk_listener *hk_real_listener(const hk_real *r);    /* NULL without listen */
const hk_conn_hub *hk_real_hub(const hk_real *r);
uint32_t hk_real_torrents(const hk_real *r);   /* torrents served (failed ones included) */

/* Reads a whole regular file of at most max bytes. Returns a malloc'd buffer or NULL with err set. */
uint8_t *hk_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);

#endif
