/* catalog: the torrents served by .torrent path (hot add and remove) and the reports of their storage failures.
 *
 * Contract
 * --------
 * The catalog owns the table of .torrent paths (served.h: one record per path, the torrent served from it or that it
 * was rejected, so a rejection that repeats can be logged quietly) and the rescan numbers ("marks"). It does not own
 * the store, the seeder or the announcer it acts on: the runtime (real_runtime.h) creates them first and frees them
 * after the catalog. hk_catalog_load looks at one path and brings what is served from it up to date;
 * hk_catalog_forget stops serving it. Both act on the store, the seeder and, with trackers, the announcer together:
 *   - adding: the data is validated by the store first; the announcer is handed the torrent (hk_announcer_add_*:
 *     its first announce is spread with those of every torrent added since its last wake-up, never a burst);
 *   - removing: hk_seeder_remove_torrent first, which closes the torrent's connections; closing a connection drops
 *     its send queue and unpins every extent queued there, so no send pins the storage any more when
 *     hk_store_remove then releases it (the store would keep pinned memory mapped until the last unpin anyway);
 *     page-in jobs in flight own a duplicate descriptor, never the mapping, and their completion for a removed
 *     torrent fails nothing; hk_announcer_remove_torrent sends `stopped` to the trackers that have it registered.
 * Storage failures: each storage the store marks failed, or whose data is broken (a send faulted, a page-in failed),
 * is reported once to the seeder with hk_seeder_storage_failed (hk_served_rec.reported) until it is served afresh.
 * A .torrent that changes on disk while served: the metadata peers fetch (ut_metadata) is sent straight from the
 * .torrent file (HK_FILE_METAINFO extents, mapped by the store), so a file rewritten in place at the same size would
 * send bytes that no longer hash to the info-hash. The catalog compares the file's identity (device, inode, size,
 * mtime, ctime) with the one recorded when it was read: before every send of its bytes
 * (hk_catalog_torrent_file_current, one lstat) and, for every .torrent the store has open, at each periodic check. A
 * file whose identity changed is read again: if it holds the same torrent at the same place it is only touched (the
 * new identity is recorded, nothing else happens); otherwise its record is stale, no byte of it goes out as metadata,
 * and the path is reloaded at once as a rescan would (the periodic check does it, or the send fault that follows the
 * refused send): the old torrent goes, what the file holds now is served (a new torrent if the info-hash changed).
 * One warning names the path ("<path>: the .torrent changed on disk; its metadata is no longer served; rescanning
 * it"), one line says what is served then. If the file cannot be read again now, the torrent is failed until a
 * rescan. A .torrent that is not open is checked when its bytes are next sent, or by the next rescan.
 * Trackers: the tracker list (announce-list, or announce) a torrent was announced with is remembered (a hash of its
 * tiers and URLs). A .torrent read again that holds the same torrent with another tracker list (UNCHANGED or
 * READDED) has the new list applied: the announcer cannot swap a torrent's trackers, so the torrent is removed from
 * it (`stopped` to the old trackers that have it registered) and added again with the new list; its peers go on. A
 * tracker list that differs also counts as a change for the checks above (the file is read again).
 * Nothing here calls back into the runtime; everything runs on the loop thread.
 */
#ifndef HEKATE_CATALOG_H
#define HEKATE_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "announcer.h"
#include "dht.h"
#include "metainfo.h"
#include "seeder.h"
#include "served.h"
#include "store.h"

#define HK_MAX_TORRENT_FILE (64u << 20) /* largest .torrent file read */

typedef struct hk_catalog hk_catalog;

/* What hk_catalog_load (hk_real_load) did with a path. */
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
    HK_LOAD_OTHER_SHARD,     /* (--shard) its torrent is in another shard: not served (err says which; what the
                                path served before is gone: old_removed), logged at DEBUG when the file is read */
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

/* A catalog acting on store, seeder and announcer (NULL without trackers). NULL if out of memory. It names the
 * store's storages (hk_store_set_namer: the .torrent's name from its record's path, the torrent's from the seeder),
 * so the store must not be used after the catalog is freed (hk_store_free may be). */
hk_catalog *hk_catalog_new(hk_store *store, hk_seeder *seeder, hk_announcer *ann);
/* Gives the catalog the DHT node (NULL: none, the default): every torrent served from then on is added to it (a
 * private one, BEP 27, is refused by the node and never announced) and every torrent unserved is removed from it. */
void hk_catalog_set_dht(hk_catalog *c, hk_dht *dht);
/* Frees the table of paths; serves nothing down (the runtime frees seeder and store). NULL is a no-op. */
void hk_catalog_free(hk_catalog *c);

/* Brings what is served from `path` up to date and records `mark` on its record (a rescan's number, see
 * hk_catalog_next_mark; 0 outside rescans), except when DEFERRED (the retry must not count as a second visit).
 * `seen` (may be NULL) is the file's lstat from the walk: a path served and healthy whose file has the same identity
 * (device, inode, size, mtime, ctime) is UNCHANGED without being read, and a path rejected for its .torrent itself
 * (unreadable, malformed) is not read again while its identity stays. Otherwise the file is read and parsed; the same
 * info-hash at the same place in a file of the same size is UNCHANGED; a failed torrent is re-added if its data is
 * valid now; another torrent replaces the old one; a torrent already served from another path is a duplicate
 * (REJECTED, or DEFERRED, see above). A record visited twice with the same mark (overlapping folders) is UNCHANGED
 * the second time. Returns the outcome; info is always filled in, err (may be errlen 0) says why for REJECTED,
 * STILL_FAILED and ERROR. */
hk_load_outcome hk_catalog_load(hk_catalog *c, const char *path, const struct stat *seen, uint32_t mark,
                                unsigned flags, hk_load_info *info, char *err, size_t errlen);
/* Stops serving what is served from path and forgets its record (see the contract). Returns true if a torrent was
 * served from it (its info-hash in info_hash_out, which may be NULL); false if only a rejection was remembered, or
 * nothing. */
bool hk_catalog_forget(hk_catalog *c, const char *path, uint8_t info_hash_out[20]);
/* Loads one path outside rescans, for a caller that wants it newly served: returns 0 (ADDED) and, if mi_out is not
 * NULL, hands over the parsed description (free with mi_free). Returns -1 with err saying why otherwise: a path
 * already served is refused as a duplicate, and a rejected path leaves no record behind. */
int hk_catalog_add_file(hk_catalog *c, const char *path, mi_torrent **mi_out, char *err, size_t errlen);
/* Warm start (resume.h): serves mi, read from a resume state, from `path` (not known yet) whose lstat is `seen`,
 * without reading the file: the data is validated by the store as for any add, the torrent goes to the seeder and
 * the announcer, and the record gets the identity of `seen` (so the scan that follows finds it UNCHANGED with one
 * lstat). Returns ADDED (*sv_out: the record), OTHER_SHARD, REJECTED (err says why: data, duplicate, already
 * known), or ERROR. */
hk_load_outcome hk_catalog_add_resumed(hk_catalog *c, const char *path, const struct stat *seen,
                                       const mi_torrent *mi, hk_served_rec **sv_out, char *err, size_t errlen);
/* --state: the resume object told of every .torrent read and parsed (resume.h: hk_resume_note); NULL: none. */
struct hk_resume;
void hk_catalog_set_resume(hk_catalog *c, struct hk_resume *rs);
/* --shard=K/N (shard.h): from now on, a path whose torrent is not in shard k of n is HK_LOAD_OTHER_SHARD when it is
 * read (torrents served already stay until their path is loaded again). n 0 or 1: every torrent is served. */
void hk_catalog_set_shard(hk_catalog *c, uint32_t k, uint32_t n);
/* A new rescan number: 1..HK_SERVED_MARK_MAX in turn, never 0 (a record keeps 4 bits of it, served.h). Before it
 * hands out 1 again it sets every record's mark to 0 (one pass over the records), so no record carries the new
 * number: call it only when no rescan is under way (a rescan takes its number when it starts). */
uint32_t hk_catalog_next_mark(hk_catalog *c);
/* The table of paths, for reading (a rescan lists the records it did not visit). */
const hk_served *hk_catalog_served(const hk_catalog *c);
uint32_t hk_catalog_torrents(const hk_catalog *c);   /* torrents served (failed ones included) */

/* Storage failures, each reported to the seeder once. */
/* The runtime's periodic check: compares every open .torrent with the identity it was read with (a changed one is
 * reloaded, see the contract), then runs hk_store_check and reports every storage it newly marked failed; a storage
 * whose data files were modified in place (hk_store_take_modified) has its verification marks dropped
 * (hk_seeder_forget_pieces: re-checked on next use). */
void hk_catalog_check_storages(hk_catalog *c);
/* A send from `storage` faulted (a mapping page vanished: EFAULT) or could not pin its extent: checks every storage,
 * then reloads the path if its .torrent changed (the send was refused for it), else reports the storage if the store
 * finds it failed or its page vanished; otherwise logs a warning. */
void hk_catalog_on_send_fault(hk_catalog *c, uint64_t storage, const char *why);
/* A page-in from `storage` failed with errno `error`: reported if the store finds the storage failed. */
void hk_catalog_on_load_error(hk_catalog *c, uint64_t storage, int error);
/* Before a send of bytes of `storage`'s .torrent (metadata): true if the file still holds what is served from it
 * (see the contract), or the storage is not the catalog's or has failed already (the store refuses it then). false
 * if it changed: refuse the send; the send fault that follows (hk_catalog_on_send_fault) reloads the path. For the
 * loop thread, from inside a runtime action too: it never calls into the seeder. */
bool hk_catalog_torrent_file_current(hk_catalog *c, uint64_t storage);

/* The identity of a file (served.h) from its stat: what the catalog and the resume state fingerprint (hk_file_fp). */
void hk_file_id_of(hk_file_id *id, const struct stat *st);

/* Reads a whole regular file of at most max bytes. Returns a malloc'd buffer or NULL with err set. */
uint8_t *hk_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);

#endif
