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
 * Everything runs on the loop thread.
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

#endif
