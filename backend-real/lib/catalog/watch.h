/* watch: inotify on every folder below the daemon's DIRs, so a .torrent dropped in is served within a second and a
 * removed one stops; the periodic rescan (rescans.h) stays the safety net.
 *
 * Contract
 * --------
 * hk_watch_add_root watches a DIR and every folder below it, reached the way the scan walks (scan.h): names starting
 * with '.' skipped, symbolic links never followed (the DIR itself may be a link to a folder, followed once), at most
 * HK_SCAN_MAX_DEPTH levels; paths are spelled as the scan spells them, so they match the catalog's records. Events
 * only mark paths dirty: a .torrent closed after writing (IN_CLOSE_WRITE), moved in (IN_MOVED_TO), moved out
 * (IN_MOVED_FROM) or deleted (IN_DELETE), and a folder created, moved in, moved out or deleted. The first event of a
 * quiet spell arms a timer of HK_WATCH_DEBOUNCE seconds; when it fires the dirty paths are coalesced (each path
 * once) and looked at as they are then, never as the events said:
 *   1. paths that are gone (or are no longer what they were: a folder that became a file, anything reached through
 *      a symbolic link) first: a .torrent path -> sink.forget; a folder -> its watches below are dropped and
 *      sink.forget_below (the records below it whose file is not reachable any more, see hk_watch_reachable);
 *   2. then paths that exist: a regular *.torrent file -> sink.load (with its lstat); a folder -> watched, with every
 *      folder below it (added before its files are listed, so a file written meanwhile is either listed or reported),
 *      sink.forget_below for what went from it, and sink.load for every .torrent found in it.
 * So a .torrent renamed within the tree is forgotten under its old name before it is loaded under the new one.
 * While sink.busy says a rescan is under way, the dirty paths are kept and the timer is armed again.
 * A lost queue (IN_Q_OVERFLOW), or a DIR itself moved or deleted (IN_MOVE_SELF, IN_DELETE_SELF), calls sink.rescan
 * (and the DIRs' folders are watched again at the next flush: folders created meanwhile get their watches). When
 * the kernel's limit on watches is reached (fs.inotify.max_user_watches: ENOSPC) one warning is logged and the
 * folders left unwatched are seen only by rescans. A DIR that is a .torrent file is not watched. A DIR deleted or
 * moved away is watched again by hk_watch_rewatch (the daemon calls it after each rescan) once it is there again.
 * Memory: one record per watched folder (its path), the dirty paths of one spell. Everything runs on the loop thread.
 */
#ifndef HEKATE_WATCH_H
#define HEKATE_WATCH_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#define HK_WATCH_DEBOUNCE 0.150 /* seconds from the first event of a spell to the flush */

typedef struct hk_watch hk_watch;

typedef struct hk_watch_sink {
    void (*load)(void *arg, const char *path, const struct stat *st);   /* a .torrent that exists now */
    void (*forget)(void *arg, const char *path);                         /* a .torrent path that is gone */
    void (*forget_below)(void *arg, const char *dir);                    /* a folder gone or replaced */
    void (*rescan)(void *arg, const char *why);                          /* events were lost */
    bool (*busy)(void *arg);                                             /* may be NULL: never busy */
    void *arg;
} hk_watch_sink;

typedef struct hk_watch_stats {
    size_t watched;          /* folders watched now */
    size_t events;           /* inotify events read */
    size_t flushes;          /* timer expiries that applied changes */
    size_t loads, forgets, forget_belows, rescans;
    bool limited;            /* the watch limit was reached */
} hk_watch_stats;

/* A watcher on loop (inotify descriptor and its watcher started; no folder watched yet). NULL with err set. */
hk_watch *hk_watch_new(struct ev_loop *loop, const hk_watch_sink *sink, char *err, size_t errlen);
/* Watches root (a DIR as given on the command line) and every folder below it. root must stay valid until
 * hk_watch_free. Returns 0, or -1 if root cannot be watched at all (err says why; not a folder: nothing to do). */
int hk_watch_add_root(hk_watch *w, const char *root, char *err, size_t errlen);
/* Applies the dirty paths now (tests; the timer does it otherwise). */
void hk_watch_flush(hk_watch *w);
/* true if path (below one of the roots) is a regular *.torrent file reached from its root through folders only. */
bool hk_watch_reachable(const hk_watch *w, const char *path);
/* Watches again each DIR that is not watched now (deleted or moved away, and there again): after a rescan. Returns
 * how many DIRs were watched again. */
size_t hk_watch_rewatch(hk_watch *w);
void hk_watch_stats_get(const hk_watch *w, hk_watch_stats *out);
/* Stops the watchers, closes the descriptor, frees everything. NULL is a no-op. */
void hk_watch_free(hk_watch *w);

#endif
