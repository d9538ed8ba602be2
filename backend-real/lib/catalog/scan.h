/* scan: finds .torrent files below the folders given to the daemon.
 *
 * Contract
 * --------
 * A walk of root reports every regular file whose name ends in ".torrent" (case-sensitive, and more than just
 * ".torrent"), in a stable order: entries of a folder sorted by name (bytewise), files and subfolders interleaved in
 * that order. Names starting with '.' are skipped (hidden files, partial downloads). Entries are examined with lstat:
 * a symbolic link is never followed (except as hk_scan_iter_follow allows), neither to a folder (no loops, no
 * escaping the tree) nor to a file; a symbolic
 * link named *.torrent, or one that leads to a folder, is reported as a problem, others are skipped silently. A
 * folder that cannot be read, a path longer than PATH_MAX or a tree deeper than HK_SCAN_MAX_DEPTH is reported as a
 * problem and skipped; the walk goes on. If root itself is a regular *.torrent file it is reported as the only result. Root itself, named by the user,
 * may be a symbolic link to a folder (followed once).
 *
 * A folder replaced while the walk is inside it (between two hk_scan_iter_next calls: a rescan walks a slice at a
 * time), or any folder above it, e.g. swapped for a symbolic link to another tree, is detected at the next call (its
 * path no longer resolves to the device and inode that were read): the walk leaves it, reported as a problem, and
 * never examines a path through it; a folder that is gone is left silently.
 *
 * Two ways to walk:
 *   - hk_scan_iter: one result per hk_scan_iter_next call (a torrent with the lstat of its file, or a problem), so a
 *     caller on an event loop can walk a large tree a slice at a time. Memory: the sorted names of the folders on
 *     the current path (one folder per level), nothing per file reported.
 *   - hk_scan / hk_scan_stats_run: the whole walk at once through callbacks, which return 0 to go on or non-zero to
 *     stop the walk (hk_scan then returns that value). hk_scan returns 0 after a complete walk, -1 if root itself
 *     cannot be examined (on_problem says why).
 */
#ifndef HEKATE_SCAN_H
#define HEKATE_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#define HK_SCAN_MAX_DEPTH 64

typedef struct hk_scan_stats {
    size_t folders, torrents, symlinks_skipped, problems;
    size_t symlinks_followed;        /* hk_scan_iter_follow: links to folders entered */
} hk_scan_stats;

/* ---- step by step ---- */
typedef struct hk_scan_iter hk_scan_iter;

typedef enum hk_scan_event {
    HK_SCAN_END = 0,         /* the walk is complete */
    HK_SCAN_TORRENT,         /* *path is a regular *.torrent file; *st its lstat */
    HK_SCAN_PROBLEM,         /* *path could not be examined or was skipped; *why says why */
} hk_scan_event;

/* NULL if out of memory. Nothing is examined before the first hk_scan_iter_next. */
hk_scan_iter *hk_scan_iter_new(const char *root);
/* --follow-links: from now on a symbolic link to a folder whose resolved path (realpath) lies below one of roots
 * (absolute paths from realpath, NULL entries skipped; the array and strings stay the caller's and must outlive
 * the walk) is followed: the
 * folder is walked as if it were there, under the link's path, with the same checks at each resume (its path must
 * still lead to the folder entered; a link swapped meanwhile is left); a link to a folder the walk is already inside
 * is a loop, reported and not followed; a link to a folder outside them is reported ("... outside the served folders;
 * not followed"). Links to files, *.torrent links included, are still not followed. n 0: nothing followed. */
void hk_scan_iter_follow(hk_scan_iter *it, const char *const *roots, size_t n);
/* The next result. *path and *why point into the iterator, valid until the next call; st may be NULL. After
 * HK_SCAN_END every further call returns HK_SCAN_END. */
hk_scan_event hk_scan_iter_next(hk_scan_iter *it, const char **path, const char **why, struct stat *st);
/* true if root itself could not be examined (or is neither a folder nor a *.torrent file). */
bool hk_scan_iter_root_failed(const hk_scan_iter *it);
void hk_scan_iter_stats(const hk_scan_iter *it, hk_scan_stats *out);
void hk_scan_iter_free(hk_scan_iter *it);

/* ---- all at once ---- */
typedef struct hk_scan_cb {
    int (*on_torrent)(void *arg, const char *path);
    int (*on_problem)(void *arg, const char *path, const char *why);  /* may be NULL */
    void *arg;
} hk_scan_cb;

int hk_scan(const char *root, const hk_scan_cb *cb);
/* As hk_scan, also counting what was seen (stats may be NULL). */
int hk_scan_stats_run(const char *root, const hk_scan_cb *cb, hk_scan_stats *stats);

#endif
