/* store_path: resolving a torrent's file paths below its folder without ever following a symbolic link (backend-real).
 *
 * Contract
 * --------
 * A relative path is '/'-separated components; each must be 1..NAME_MAX bytes and not "." or "..", so no path can
 * climb out of the folder (core/metainfo.c already enforces this; it is checked again here, where the files are
 * opened). The folder itself is opened as given (the administrator may place it behind a symbolic link); every
 * component below it is opened with O_NOFOLLOW (directories as O_PATH|O_DIRECTORY), so a symbolic link anywhere in the
 * data path is refused and nothing outside the folder is ever reached.
 *
 * Errors are classified: SP_FAULT means the data is wrong (missing, a symbolic link, not a regular file, wrong size,
 * unreadable): the storage is at fault. SP_TRANSIENT means the process is short of a resource (EMFILE, ENFILE,
 * ENOMEM): nothing is wrong with the data and a later retry may succeed; errno then holds the cause. Messages name
 * the path and the reason ("/srv/t/album/cd1: is a symbolic link").
 */
#ifndef HEKATE_STORE_PATH_H
#define HEKATE_STORE_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

typedef enum sp_status { SP_OK = 0, SP_FAULT = -1, SP_TRANSIENT = -2 } sp_status;

/* true if s[0..len) is a usable path component: 1..255 bytes, no '/', no NUL, not "." or "..". */
bool sp_component_ok(const char *s, size_t len);

/* true if every '/'-separated component of rel is usable (and rel is not empty). */
bool sp_relpath_ok(const char *rel);

/* Opens `folder` (following symbolic links: it is the administrator's choice) as an O_PATH directory descriptor. */
sp_status sp_open_folder(const char *folder, int *dirfd, char *err, size_t errlen);

/* lstat of folder/rel: every directory on the way opened with O_NOFOLLOW, the last component with AT_SYMLINK_NOFOLLOW.
 * A symbolic link anywhere is SP_FAULT ("is a symbolic link"). `folder` is only used in messages; `root` is its
 * descriptor. The cache, when not NULL, keeps the parent directory of the previous lookup open so that files listed
 * directory by directory cost one fstatat each; release it with sp_cache_clear. */
typedef struct sp_cache {
    int fd;        /* -1 when empty */
    size_t len;    /* the cached directory is rel[0..len) of the previous path */
    char dir[4096];
} sp_cache;
void sp_cache_init(sp_cache *c);
void sp_cache_clear(sp_cache *c);
sp_status sp_lstat(int root, const char *folder, const char *rel, sp_cache *cache, struct stat *st, char *err,
                   size_t errlen);

/* Opens folder/rel read-only (O_RDONLY|O_CLOEXEC|O_NOFOLLOW, never blocking on a FIFO), and checks it is a regular
 * file. On SP_OK, *fd is the descriptor (blocking mode) and *st its fstat. */
sp_status sp_open_regular(const char *folder, const char *rel, int *fd, struct stat *st, char *err, size_t errlen);

/* Same as sp_open_regular but only reports what folder/rel is now (for change detection), without opening it. */
sp_status sp_stat_regular(const char *folder, const char *rel, struct stat *st, char *err, size_t errlen);

#endif
