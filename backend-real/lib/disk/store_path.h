/* store_path: resolving a torrent's file paths below its folder without ever following a symbolic link (backend-real).
 *
 * Contract
 * --------
 * A relative path is '/'-separated components; each must be 1..NAME_MAX bytes and not "." or "..", so no path can
 * climb out of the folder (core/metainfo.c already enforces this; it is checked again here, where the files are
 * opened). The folder is an absolute path without symbolic links (realpath, when the storage was added: the
 * administrator may place DIR behind a link, that link is resolved then); it is opened again from "/" for every later
 * open, refusing a symbolic link at every component (openat2 with RESOLVE_NO_SYMLINKS in one call where the kernel
 * has it, else one openat(O_NOFOLLOW) per component), and must still be the directory recorded at add time (st_dev,
 * st_ino): a folder, or any directory above it, swapped for a link is refused, and so is a folder replaced by another
 * directory. Below it every component is opened without following links too (openat2 with RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS, else O_NOFOLLOW per component; directories as O_PATH|O_DIRECTORY), so nothing outside the
 * folder is ever reached. When openat2 fails for any reason the walk is done instead (it gives the precise message);
 * ENOSYS, or EPERM / EINVAL / E2BIG before it ever worked (a seccomp filter, an older kernel), stops trying it.
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

/* A directory's identity: what fstat says of it when the storage is added. */
typedef struct sp_id {
    uint64_t dev, ino;
} sp_id;

/* Opens the absolute path `folder` as an O_PATH directory descriptor, refusing a symbolic link at any component
 * ("/srv/t/sub: is a symbolic link", SP_FAULT). With expect, the directory must be that one, else SP_FAULT
 * ("/srv/t/sub: replaced, not the folder that was scanned", errno EIO). *id (if not NULL) receives its identity. */
sp_status sp_open_folder(const char *folder, const sp_id *expect, int *dirfd, sp_id *id, char *err, size_t errlen);

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
 * file; the folder is opened as sp_open_folder(folder, folder_id). On SP_OK, *fd is the descriptor (blocking mode)
 * and *st its fstat. */
sp_status sp_open_regular(const char *folder, const sp_id *folder_id, const char *rel, int *fd, struct stat *st,
                          char *err, size_t errlen);

/* Same as sp_open_regular but only reports what folder/rel is now (for change detection), without opening it. */
sp_status sp_stat_regular(const char *folder, const sp_id *folder_id, const char *rel, struct stat *st, char *err,
                          size_t errlen);

/* --follow-links: folder/rel where folder lies below a served root, following the symbolic links met on the way as
 * long as their targets stay below the root. The root (an absolute path without links, from realpath) is opened as
 * sp_open_folder(root, root_id); the folder below it (folder_rel, "" for the root itself) is walked without following
 * anything and must be the directory recorded (folder_id), as sp_open_folder requires; then rel is resolved one
 * component at a time by the process, never by the kernel: each component is looked at with AT_SYMLINK_NOFOLLOW; a
 * link's target (readlinkat) replaces it, a relative one resolved from the directory holding the link, an absolute
 * one only if it names a path below the root's path (and is then resolved from the root's descriptor, not from "/");
 * ".." never climbs above the root; at most 40 links. A link may also lead into another served folder (others): an
 * absolute target below one of them, or ".." above the current root into one of them, goes on from that folder's
 * descriptor (opened as sp_open_folder(other, its id)), never from "/". Directories are opened O_PATH|O_NOFOLLOW and the file
 * O_NOFOLLOW, so a link swapped in between the look and the open is seen and resolved (or refused) like any other:
 * nothing outside the root is ever reached, whatever changes meanwhile. A link leading out is SP_FAULT ("...: a
 * symbolic link on the way leads outside the served folders"). With fd, the regular file is opened (blocking mode,
 * *st its fstat); with fd NULL only *st is filled (its lstat). Errors as sp_open_regular. */
typedef struct sp_beneath {
    const char *root;            /* absolute, from realpath */
    const sp_id *root_id;
    const char *folder_rel;      /* the folder below the root, '/'-separated, no link in it; "" for the root */
    const sp_id *folder_id;
    const char *const *others;   /* every served folder (realpath) a link may lead into, root included or not; NULL
                                    entries are skipped */
    const sp_id *other_ids;
    size_t nothers;
} sp_beneath;
sp_status sp_open_beneath(const sp_beneath *b, const char *rel, int *fd, struct stat *st, char *err, size_t errlen);

#endif
