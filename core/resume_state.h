/* resume_state: the resume state file's bytes (docs/resume-state.md): a reader over a byte buffer, a streaming
 * writer, and the compact serving description of a torrent stored in it (enough to serve it without its .torrent).
 *
 * Contract
 * --------
 * Pure: no I/O, no clock; the writer hands its bytes to a caller's sink. All integers little-endian.
 *   file    = header entries trailer
 *   header  = magic "HKRESUME" (8 bytes), u32 version (HK_RS_VERSION), u32 flags (0)
 *   entry   = u32 len (bytes after this field) then: u16 path_len, path, the .torrent's identity (u64 fingerprint
 *             of its dev, ino, size, mtime_ns, ctime_ns as docs/resume-state.md defines it, u32 size), u32 desc_len,
 *             desc, u32 ndata, ndata x 3 u64 data file identities (ino, size, mtime_ns), u8 marks (0 none, 1 all
 *             good, 2 bitmap) and for 2: u32 piece_count, (count + 7) / 8 bytes
 *   trailer = u64 entry count, u32 CRC32C (Castagnoli, reflected, init and xorout 0xFFFFFFFF) of every byte before it
 * hk_rs_open accepts a buffer only if it is whole: magic, version, flags, checksum, count and every entry's framing
 * are checked before the first entry is handed out; any failure rejects the whole file (the caller ignores it with
 * one warning). A description (hk_rs_desc_decode) is validated again when it is used: name and path components as
 * the .torrent parser requires (1..255 bytes, not "." or "..", no '/', '\\' or NUL), lengths summing to the total,
 * piece count matching, tracker URLs printable; a file that passes the checksum is still never trusted further.
 */
#ifndef HEKATE_RESUME_STATE_H
#define HEKATE_RESUME_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metainfo.h"

#define HK_RS_MAGIC "HKRESUME"
#define HK_RS_VERSION 3u   /* 3: the .torrent's identity as a fingerprint and a size (2: its five lstat fields;
                              1: no v2 hash offsets in a hybrid's description; neither is read) */
#define HK_RS_HEADER 16u
#define HK_RS_TRAILER 12u
#define HK_RS_ID_BYTES 12u /* an entry's .torrent identity: u64 fingerprint, u32 size */
#define HK_RS_MAX_PATH 4096u
#define HK_RS_MAX_DESC (16u << 20)

enum { HK_RS_MARKS_NONE = 0, HK_RS_MARKS_ALL = 1, HK_RS_MARKS_SOME = 2 };

typedef struct hk_rs_id {          /* a .torrent file as lstat saw it */
    uint64_t fp;                   /* the fingerprint of dev, ino, size, mtime_ns, ctime_ns (docs/resume-state.md) */
    uint32_t size;                 /* its size (a .torrent hekate reads is at most 64 MiB) */
} hk_rs_id;

typedef struct hk_rs_data_id {     /* a data file as stat saw it */
    uint64_t ino, size;
    int64_t mtime_ns;
} hk_rs_data_id;

/* One entry; pointers into the reader's buffer (path not NUL-terminated). */
typedef struct hk_rs_entry {
    const char *path;
    uint32_t path_len;
    hk_rs_id id;
    const uint8_t *desc;
    uint32_t desc_len;
    uint32_t ndata;
    const uint8_t *data;           /* ndata x 24 bytes: read with hk_rs_data_at */
    uint8_t marks;                 /* HK_RS_MARKS_* */
    uint32_t piece_count;          /* SOME: bits in bitmap */
    const uint8_t *bitmap;         /* SOME: bit i (MSB first) = piece i good */
} hk_rs_entry;

typedef struct hk_rs_reader {
    const uint8_t *buf;
    size_t pos, end;               /* entries lie in [HK_RS_HEADER, end) */
    uint64_t count, seen;
} hk_rs_reader;


/* Checks the whole buffer (see the contract). 0, or -1 with err (a short reason: "bad magic", "version 7 (this
 * hekate reads 3)", "checksum mismatch", "truncated", "malformed entry 12"). The buffer must outlive the reader. */
int hk_rs_open(hk_rs_reader *r, const uint8_t *buf, size_t len, char *err, size_t errlen);
/* The next entry: 1, or 0 at the end (hk_rs_open checked every entry's framing already). */
int hk_rs_next(hk_rs_reader *r, hk_rs_entry *e);
hk_rs_data_id hk_rs_data_at(const hk_rs_entry *e, uint32_t i);
/* Parses one entry at buf[0..len) (its u32 length first); bytes consumed, or 0 if malformed. */
size_t hk_rs_parse_entry(const uint8_t *buf, size_t len, hk_rs_entry *e);

/* ---- writer ---- */
typedef int (*hk_rs_sink)(void *arg, const uint8_t *bytes, size_t len);   /* 0, or -1: the writer stops */

typedef struct hk_rs_writer {
    hk_rs_sink sink;
    void *arg;
    uint32_t crc;
    uint64_t count;
    bool failed;
} hk_rs_writer;

/* Writes the header. Every call returns 0, or -1 once the sink failed (the writer then writes nothing more). */
int hk_rs_writer_begin(hk_rs_writer *w, hk_rs_sink sink, void *arg);
/* Writes one entry (e->path etc. from anywhere; data: e->ndata x 24 bytes as hk_rs_data_put wrote them). */
int hk_rs_write_entry(hk_rs_writer *w, const hk_rs_entry *e);
/* Writes the trailer. */
int hk_rs_writer_end(hk_rs_writer *w);
void hk_rs_data_put(uint8_t out[24], const hk_rs_data_id *d);

/* ---- serving description ---- */
/* Encodes what serving and verifying need of mi (info-hash, flags, geometry, the offsets of info and of the piece
 * hashes in the .torrent, name, files, trackers; for a hybrid with v2 hashes, each file's mi->v2_hashes offset: no
 * hash itself) into out (cap bytes). Returns the length (written only if it fits in cap: call with cap 0 to size
 * it). */
size_t hk_rs_desc_encode(const mi_torrent *mi, uint8_t *out, size_t cap);
/* A description in the layout mi_parse returns (one block, freed by mi_free), or NULL (malformed: err says why, or
 * out of memory). No hash is in it: pieces_offset says where the v1 hashes are in the .torrent, and for a hybrid
 * whose .torrent has v2 hashes v2_hashes (file_count offsets, in the block) where each file's are, as mi_parse
 * sets them (else NULL). torrent_size is the size of the .torrent the description was made from (the entry's
 * identity, which the caller found unchanged; UINT64_MAX: unknown): `info` and every piece layer must lie below it.
 * The v2 offsets are checked as core/metainfo_v2.c would have found them (pad and empty files none, data files on
 * piece boundaries, a pieces root of 32 bytes inside `info`, a piece layer of 32 bytes a piece outside it). */
mi_torrent *hk_rs_desc_decode(const uint8_t *d, size_t len, uint64_t torrent_size, char *err, size_t errlen);

#endif
