/* scan: finds .torrent files below the folders given to the daemon.
 *
 * Contract
 * --------
 * hk_scan(root) walks root recursively and calls on_torrent for every regular file whose name ends in ".torrent"
 * (case-sensitive, and more than just ".torrent"), in a stable order: entries of a folder sorted by name (bytewise),
 * files and subfolders interleaved in that order. Names starting with '.' are skipped (hidden files, partial
 * downloads). Entries are examined with lstat: a symbolic link is never followed, neither to a folder (no loops, no
 * escaping the tree) nor to a file; a symbolic link named *.torrent is reported through on_problem, others are
 * skipped silently. A folder that cannot be read, a path longer than PATH_MAX or a tree deeper than HK_SCAN_MAX_DEPTH
 * is reported through on_problem and skipped; the walk goes on. If root itself is a regular *.torrent file it is
 * reported as the only result. Root itself, named by the user, may be a symbolic link to a folder (followed once).
 *
 * The callbacks return 0 to go on or non-zero to stop the walk (hk_scan then returns that value).
 * hk_scan returns 0 after a complete walk, -1 if root itself cannot be examined (on_problem says why).
 */
#ifndef HEKATE_SCAN_H
#define HEKATE_SCAN_H

#include <stddef.h>

#define HK_SCAN_MAX_DEPTH 64

typedef struct hk_scan_cb {
    int (*on_torrent)(void *arg, const char *path);
    int (*on_problem)(void *arg, const char *path, const char *why);  /* may be NULL */
    void *arg;
} hk_scan_cb;

int hk_scan(const char *root, const hk_scan_cb *cb);

typedef struct hk_scan_stats {
    size_t folders, torrents, symlinks_skipped, problems;
} hk_scan_stats;
/* As hk_scan, also counting what was seen (stats may be NULL). */
int hk_scan_stats_run(const char *root, const hk_scan_cb *cb, hk_scan_stats *stats);

#endif
