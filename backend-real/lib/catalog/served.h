/* served: the daemon's table of .torrent files, one record per path a scan found: what is served from it (storage
 * handle, info-hash) or that it was rejected, and the identity of the file when it was last read, so a rescan skips
 * an unchanged file with one lstat and one lookup.
 *
 * Contract
 * --------
 * Records are found by path (exact bytes) and, while they have a storage, by storage handle, both in O(1) expected
 * time: two open-addressing tables (linear probing, at most half full, backward-shift deletion, so no tombstones:
 * a table that churns through adds and removals stays as fast as a fresh one) of 32-bit record numbers (4 bytes a
 * slot, issue 10's 10^6 torrents) into one array of record pointers (freed numbers reused last-freed-first). A
 * record is one allocation (its fields, then the path); a pointer to it stays valid until it is deleted. hk_served_next visits every record once
 * if the table does not change meanwhile. Out of memory: hk_served_insert returns NULL and changes nothing;
 * nothing else allocates (the storage table grows together with the path table). Pure data structure: no I/O.
 */
#ifndef HEKATE_SERVED_H
#define HEKATE_SERVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A file as seen by stat: a rescan re-reads a .torrent only when one of these changed. */
typedef struct hk_file_id {
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
} hk_file_id;

typedef struct hk_served_rec {
    uint64_t storage;          /* store handle of what is served from this path; 0: nothing (it was rejected) */
    hk_file_id id;             /* the .torrent file when it was last read */
    uint64_t trackers_hash;    /* the tracker list it was announced with (catalog.c): a rewrite with the same info
                                  dictionary but other trackers is applied to the announcer */
    uint64_t resume_ref;       /* where its serving description is kept for the resume state (resume.h); 0: none */
    uint32_t info_start;       /* offset of the info dictionary in it (where ut_metadata is served from; a .torrent
                                  is at most HK_MAX_TORRENT_FILE, 64 MiB, long) */
    uint32_t mark;             /* the last rescan that visited the path */
    uint32_t why_hash;         /* hash of the last rejection or failure logged for it (0: none): repeats are quiet */
    uint32_t path_hash;
    uint8_t info_hash[20];     /* valid while storage != 0 */
    bool reported;             /* its storage failure was reported to the seeder */
    bool bad_file;             /* rejected for the .torrent itself (unreadable, malformed): not read again until
                                  its identity changes */
    bool stale;                /* its .torrent changed on disk since it was read (catalog.h): none of its bytes
                                  go out as metadata until it is read again */
    bool other_shard;          /* (--shard) with bad_file: its torrent is in another shard (catalog.h) */
    char path[];
} hk_served_rec;

typedef struct hk_served hk_served;

hk_served *hk_served_new(void);                       /* NULL if out of memory */
void hk_served_free(hk_served *t);                    /* frees every record; NULL is a no-op */

hk_served_rec *hk_served_find(const hk_served *t, const char *path);
hk_served_rec *hk_served_find_storage(const hk_served *t, uint64_t storage);   /* storage 0: NULL */
/* A new zeroed record for path (which must not be in the table). NULL if out of memory. */
hk_served_rec *hk_served_insert(hk_served *t, const char *path);
/* Sets rec->storage and indexes the record by it (0: not indexed). Storage handles are unique in the table. */
void hk_served_set_storage(hk_served *t, hk_served_rec *rec, uint64_t storage);
void hk_served_delete(hk_served *t, hk_served_rec *rec);

size_t hk_served_count(const hk_served *t);           /* records */
size_t hk_served_with_storage(const hk_served *t);    /* records with a storage (served, possibly failed) */
/* Iteration: start with *cursor = 0; NULL at the end. */
hk_served_rec *hk_served_next(const hk_served *t, size_t *cursor);
size_t hk_served_memory(const hk_served *t);          /* heap bytes: tables and records */

#endif
