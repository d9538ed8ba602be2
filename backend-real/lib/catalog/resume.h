/* resume: the daemon's resume state (docs/resume-state.md): loading it at start-up (warm start) and saving it
 * periodically and at a clean stop, with atomic replace. The bytes are core/resume_state.h's.
 *
 * Contract
 * --------
 * A resume object holds one or more targets: a state file and the DIRs whose torrents it records (--state=FILE: one
 * file for every DIR; --state-per-dir: DIR/.hekate-state for each DIR). It is a cache, never an authority:
 *   - hk_resume_load maps each target's file and checks it whole (hk_rs_open); a missing file is a cold start
 *     (one INFO line), a corrupt, truncated, foreign or wrong-version one is ignored with one WARN line naming it
 *     and why. Each entry whose path lies below one of the target's DIRs and whose .torrent identity (lstat: device,
 *     inode, size, mtime, ctime) is unchanged is served from its description (hk_catalog_add_resumed: the store
 *     validates the data as for any add; the .torrent is not read); an entry that does not match is skipped (the
 *     scan reads that .torrent), one whose file is gone is dropped. Good marks are restored only when every data
 *     file still has the identity (inode, size, mtime) recorded with them; otherwise the torrent's pieces are checked
 *     again on use. `step` (may be NULL) is called every HK_RESUME_STEP entries: the caller runs its loop there (serving
 *     goes on during the load); a non-zero return stops the load (what was added stays).
 *   - The description of every torrent read and parsed from its .torrent (hk_resume_note, called by the catalog) is
 *     appended to a spool file (unlinked at once: it never outlives the process), so a save never reads a .torrent.
 *   - hk_resume_save does nothing when nothing changed since its last save (the same records with the same
 *     identities and marks, no new description, the files on disk still the ones it wrote: stats.unchanged);
 *     otherwise it writes each target to FILE.tmp (buffered), fsyncs it, renames it over FILE and fsyncs the
 *     folder; an entry per served, healthy torrent below the target's DIRs: its path and the .torrent identity the
 *     catalog holds, the description copied from the previous state or the spool, and its good marks with the data
 *     files' identities (one stat each, only for torrents that have good marks). A failure leaves the previous file
 *     in place (-1, err says why). The spool is emptied after a save of every target.
 *   - A save in the background (what the daemon does): hk_resume_snapshot on the loop lists the records (a pointer
 *     each) and hk_resume_snapshot_step, called until it returns 0, copies what each would save (path, identity,
 *     ref, marks; no description, no I/O but flushing the spool buffer) into a job, a slice per call; the object is
 *     busy from the first call (a second snapshot fails until the job is finished); hk_resume_job_write does everything else
 *     (the unchanged check, sort, encode, checksum, FILE.tmp, fsync, rename, folder fsync) on any thread, touching
 *     neither the catalog nor the seeder; hk_resume_job_finish, on the loop, moves the refs of up to `budget`
 *     records (0: all) to the new file per call: 1 while some remain, then 0 (saved or unchanged) or -1 (err says
 *     why; the previous file stays), and the job is freed. Meanwhile the loop may add, replace and remove torrents
 *     and note descriptions (they go to the spool after the snapshot's part and are saved next time); only
 *     hk_resume_load and a second save must wait. hk_resume_job_free abandons a job (the files on disk are each
 *     the old or the new complete one).
 *   - hk_resume_save is the three in a row (the clean stop's save).
 * Everything but hk_resume_job_write runs on the loop thread.
 */
#ifndef HEKATE_RESUME_H
#define HEKATE_RESUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "metainfo.h"
#include "served.h"

#define HK_RESUME_STEP 2000u
#define HK_RESUME_DIR_FILE ".hekate-state"

typedef struct hk_resume hk_resume;

typedef struct hk_resume_job hk_resume_job;

typedef struct hk_resume_job_times {
    double snapshot;             /* seconds on the loop for the snapshot, its start and every slice summed */
    double snap_max;             /* its longest part (the start or a slice) */
    unsigned snap_slices;
    double write;                /* seconds of the background write */
    double finish;               /* seconds on the loop for the finish, every slice summed */
    unsigned slices;             /* finish calls */
} hk_resume_job_times;

typedef struct hk_resume_stats {
    size_t entries;              /* in the files that were accepted */
    size_t loaded;               /* served from the state */
    size_t marked;               /* ... of which with good marks restored */
    size_t marks_dropped;        /* good marks not restored: a data file changed */
    size_t changed;              /* .torrent changed: left to the scan */
    size_t gone;                 /* .torrent gone: dropped */
    size_t outside;              /* not below the target's DIRs: dropped */
    size_t failed;               /* rejected on add (data invalid, duplicate, description malformed) */
    size_t saved;                /* entries written by the last save */
    bool unchanged;              /* the last save found nothing new since the one before: nothing written */
    double seconds;
    hk_resume_job_times last;    /* of the last save */
} hk_resume_stats;

/* state_file: one file for all dirs; NULL with per_dir: DIR/.hekate-state for each DIR (dirs are copied).
 * NULL with err set (out of memory, the spool cannot be created). */
hk_resume *hk_resume_new(const char *state_file, bool per_dir, const char *const *dirs, size_t ndirs, char *err,
                         size_t errlen);
void hk_resume_free(hk_resume *rs);               /* NULL is a no-op; saves nothing */

/* The catalog read and parsed path's .torrent and serves mi from sv: remember its description. */
void hk_resume_note(hk_resume *rs, hk_served_rec *sv, const mi_torrent *mi);

/* Warm start (see the contract). 0, or 1 if step stopped it. st (may be NULL) gets the figures. */
int hk_resume_load(hk_resume *rs, hk_catalog *c, hk_seeder *s, int (*step)(void *arg), void *arg,
                   hk_resume_stats *st);
/* Saves every target (see the contract). 0, or -1 with err naming the file and the reason. */
int hk_resume_save(hk_resume *rs, hk_catalog *c, hk_seeder *s, char *err, size_t errlen);
const hk_resume_stats *hk_resume_stats_get(const hk_resume *rs);

/* A reload changed the DIRs (copied): with one file, its entries follow them; per DIR, a new DIR gets its file
 * (DIR/.hekate-state, written from the next save on; an existing one is not loaded: the scan reads the new DIR), a
 * DIR no longer served has its file left as it is, never written again, and its torrents are in no file. 0, 1 if
 * a save is running (nothing changed: call again once it is finished), -1 out of memory (the old DIRs stay). */
int hk_resume_set_dirs(hk_resume *rs, const char *const *dirs, size_t ndirs);

/* A save in the background (see the contract). NULL with err set: busy, out of memory, spool write error. */
hk_resume_job *hk_resume_snapshot(hk_resume *rs, hk_catalog *c, hk_seeder *s, char *err, size_t errlen);
/* Copies up to budget more records (0: all): 1 while some remain, 0 when the snapshot is complete, -1 out of memory
 * (free the job). The catalog may change between two calls, as long as it calls hk_resume_forget before freeing a
 * record. */
int hk_resume_snapshot_step(hk_resume_job *j, size_t budget);
/* The catalog is about to free sv (it calls this for every record it deletes; rs NULL is a no-op). */
void hk_resume_forget(hk_resume *rs, const hk_served_rec *sv);
void hk_resume_job_write(hk_resume_job *j);       /* any thread */
int hk_resume_job_finish(hk_resume_job *j, hk_catalog *c, size_t budget, char *err, size_t errlen);
void hk_resume_job_free(hk_resume_job *j);        /* NULL is a no-op */

#endif
