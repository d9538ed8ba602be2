/* metainfo: parses and validates a .torrent file (BEP 3) held in memory into a compact, read-only description.
 *
 * Contract
 * --------
 * mi_parse takes the bytes of a .torrent and either returns a description (one heap block, freed by mi_free) or
 * fails with a message naming the field and the reason, e.g. `info.files[3].path[1]: component is ".."`.
 * It performs no I/O. The input is not referenced after mi_parse returns (everything kept is copied into the block),
 * but the description records byte ranges in it: the raw `info` dictionary [info_start, info_end) (what ut_metadata
 * serves to magnet users, and what the v1 info-hash is the SHA-1 of) and the offset of the piece hashes, which are
 * NOT copied (a verifier reads them from the .torrent file: hash i is the 20 bytes at pieces_offset + 20 * i).
 *
 * What is accepted (anything else is an error):
 *   - the top level is a dictionary with an `info` dictionary;
 *   - `info.piece length`: integer in [1, MI_MAX_PIECE_LENGTH] (256 MiB, the largest that mktorrent, libtorrent's
 *     creator or qBittorrent produce; a verifier can hold a piece in memory). Powers of two are not required by v1;
 *   - exactly one of `info.length` (single file) and `info.files` (a non-empty list of {length, path}); lengths are
 *     integers >= 0, their sum may not exceed INT64_MAX and must be >= 1 byte;
 *   - `info.pieces`: a string of exactly 20 * ceil(total / piece length) bytes;
 *   - `info.name` (and each path component): 1..255 bytes (NAME_MAX: such a file could not exist on disk otherwise),
 *     not "." or "..", no '/', '\\' or NUL byte; so no path can leave the torrent's folder or be absolute. A file's
 *     whole path below the download folder (name included) is at most MI_MAX_PATH bytes. Two files with the same
 *     path, or a file whose path is also used as a folder by another ("a" and "a/b"), are rejected: no data layout on
 *     disk could serve both. Pad files are exempt (they have no file on disk);
 *   - UTF-8: when `name.utf-8` / `path.utf-8` are present they are used (as libtorrent and Transmission do), must be
 *     valid UTF-8 and obey the same rules; the plain `name` / `path`, when also present, are validated too (no
 *     variant of a path may leave the folder) but may hold any bytes (old torrents use local code pages);
 *   - `info.private`: absent, or the integer 0 or 1 (BEP 27);
 *   - `info.meta version`: absent, 1, or 2. Version 2 (BEP 52) is accepted only as a hybrid: its v1 part (`pieces`,
 *     `length`/`files`) is loaded, and the v2 `file tree` (which must then be a dictionary) and top-level `piece
 *     layers` are only located (core/metainfo_v2.h): v2_hashes[i] is the offset in the input of file i's piece-layer
 *     string (a file longer than one piece: 32 bytes per piece) or of its 32-byte `pieces root` (at most one piece),
 *     0 when it has none (pad, empty, or no layer given). v2_hashes is NULL when no file has v2 hashes or the v2 part
 *     does not match the v1 part (then only v1 is checked). Like the piece hashes, the v2 hashes are NOT copied. A
 *     v2-only torrent is rejected;
 *   - BEP 47 file attributes: `attr` (a string) in a file entry or, for a single-file torrent, in `info`: 'p' pad
 *     file, 'x' executable, 'h' hidden, 'l' symlink; other letters are ignored. A file is also a pad file when its
 *     path's first component is ".pad" (libtorrent 2) or its last component starts with "_____padding_file_"
 *     (BitComet). A seeder serves zeros for pad files and needs no file on disk for them;
 *   - trackers (outside `info`, not covered by the info-hash): `announce-list` (BEP 12: a list of tiers, each a list
 *     of URL strings) is used when it holds at least one URL; otherwise `announce` forms a single tier. Empty strings
 *     and empty tiers are skipped; a URL repeated in a later position is dropped. A URL is 1..MI_MAX_URL printable
 *     ASCII bytes without space (0x21..0x7e); wrong types, other bytes, or more than MI_MAX_TRACKERS URLs are errors.
 *   - bencode rules are those of core/bencode.h (strict; unsorted keys accepted); at most MI_MAX_TOKENS values.
 * Keys not named here are ignored.
 *
 * Files are listed in the torrent's order, pad and zero-length files included, so a file index is the same as in
 * every other client. A file's path is stored relative to the torrent's root folder (components joined by '/');
 * on disk, a single-file torrent is <folder>/<name> and a multi-file one <folder>/<name>/<path> (mi_file_relpath).
 *
 * Memory: one allocation holds the description, its files, trackers and strings; mi_free releases it. While parsing,
 * the bencode token array (about 40 bytes per value) is allocated temporarily. No global state; thread-compatible.
 */
#ifndef HEKATE_METAINFO_H
#define HEKATE_METAINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infohash.h"

#define MI_MAX_PIECE_LENGTH (256u << 20) /* bytes */
#define MI_MAX_COMPONENT 255u            /* bytes in one path component or the name */
#define MI_MAX_PATH 4095u                /* bytes in name + '/' + path */
#define MI_MAX_URL 2048u                 /* bytes in a tracker URL */
#define MI_MAX_TRACKERS 512u             /* tracker URLs in announce-list (bounds de-duplication) */
#define MI_MAX_TOKENS (1u << 21)         /* bencode values in a .torrent */

enum mi_file_flag {
    MI_FILE_PAD = 1u << 0,        /* BEP 47 padding: all zeros, not stored on disk */
    MI_FILE_EXECUTABLE = 1u << 1, /* attr 'x' */
    MI_FILE_HIDDEN = 1u << 2,     /* attr 'h' */
    MI_FILE_SYMLINK = 1u << 3,    /* attr 'l' */
};

typedef struct mi_file {
    uint64_t offset;   /* first byte of the file in the torrent's byte space (sum of the lengths before it) */
    uint64_t length;   /* bytes (0 allowed) */
    uint32_t path;     /* offset in strings of the path below the root folder, NUL-terminated; "" if single-file */
    uint16_t path_len; /* strlen of that path */
    uint8_t flags;     /* mi_file_flag bits */
} mi_file;             /* 24 bytes */

typedef struct mi_tier {
    uint32_t first; /* index in trackers of the tier's first URL */
    uint32_t count; /* URLs in the tier (>= 1) */
} mi_tier;

typedef struct mi_torrent {
    uint8_t info_hash[IH_LEN]; /* v1: SHA-1 of the bytes [info_start, info_end) of the input */
    bool is_private;           /* info.private == 1 */
    bool multi_file;           /* `files` (true) or `length` (false) */
    bool hybrid;               /* meta version 2 with a v1 part (loaded through the v1 part) */
    bool utf8_name;            /* name came from `name.utf-8` */
    uint16_t name_len;
    uint32_t piece_length;
    uint32_t piece_count;
    uint32_t file_count;
    uint32_t tier_count;
    uint32_t tracker_count;
    uint64_t total_length;     /* sum of file lengths, pad files included; >= 1 */
    size_t info_start;         /* raw `info` dictionary: [info_start, info_end) of the input */
    size_t info_end;
    size_t pieces_offset;      /* offset in the input of the first byte of the piece hashes (20 * piece_count) */
    const uint64_t *v2_hashes; /* hybrid with usable v2 data: file_count offsets of each file's v2 hashes, else NULL */
    const char *name;          /* NUL-terminated, name_len bytes */
    const mi_file *files;      /* file_count entries */
    const mi_tier *tiers;      /* tier_count entries, in priority order */
    const char *const *trackers; /* tracker_count NUL-terminated URLs, grouped by tier */
    const char *strings;       /* string arena (file paths are offsets into it) */
} mi_torrent;

typedef struct mi_error {
    char what[256]; /* e.g. `info.files[3].path[1]: component is ".."` */
} mi_error;

/* Parses buf[0..len). On success returns 0 and sets *out (free with mi_free). On failure returns -1, sets *out to
 * NULL and writes the reason into *err (if err is not NULL). */
int mi_parse(const uint8_t *buf, size_t len, mi_torrent **out, mi_error *err);

/* Frees a description (NULL is a no-op). */
void mi_free(mi_torrent *t);

/* The path of file i below the torrent's root folder ("" for a single-file torrent). */
static inline const char *mi_file_path(const mi_torrent *t, uint32_t i)
{
    return t->strings + t->files[i].path;
}

/* Writes the file's path relative to the download folder ("<name>" or "<name>/<path>") into buf (always
 * NUL-terminated when cap > 0) and returns its length, like snprintf: a result >= cap means it was truncated. */
size_t mi_file_relpath(const mi_torrent *t, uint32_t i, char *buf, size_t cap);

/* Index of the file holding byte `offset` of the torrent (zero-length files hold none), or -1 if offset >=
 * total_length. O(log files). */
int64_t mi_find_file(const mi_torrent *t, uint64_t offset);

/* Bytes in piece i (piece_length, or less for the last piece); 0 if i >= piece_count. */
uint32_t mi_piece_size(const mi_torrent *t, uint32_t i);

/* Writes the torrent's magnet link into buf (NUL-terminated when cap > 0) and returns its length, like snprintf:
 *   magnet:?xt=urn:btih:<40 hex>&dn=<name>[&tr=<tracker>]...[&x.pe=<peer>]
 * with one tr= per tracker URL, in tier order (BEP 12 priority; the parser already dropped repeated URLs), so a
 * client without DHT finds the swarm (BEP 9). The name and the URLs are encoded byte by byte: A-Z a-z 0-9 - . _ ~
 * are kept, every other byte becomes %XX (uppercase hex). peer (may be NULL) is the seeder's own address,
 * "IPv4:PORT" or "[IPv6]:PORT", written as x.pe= unencoded (as libtorrent reads it); it is left out unless it
 * consists only of hex digits, '.', ':', '[' and ']' (at most 64 bytes, with a ':'). */
size_t mi_magnet(const mi_torrent *t, const char *peer, char *buf, size_t cap);

#endif
