/* metainfo_v2: the v2 (BEP 52) hash locations of a hybrid torrent, for core/metainfo.c.
 *
 * Contract
 * --------
 * mi_v2_offsets(doc, info, t, out) fills out[i] (t->file_count entries) for every file of t, whose v1 part is
 * already parsed (files, name, piece length): the offset in the input of the first byte of the file's v2 hashes, or
 * 0 when there are none to check it against. A file longer than one piece: its `piece layers` string (32 bytes per
 * piece of the file, SHA-256 merkle roots of the piece's 16 KiB blocks). A file of at most one piece: its 32-byte
 * `pieces root` in the file tree. 0 for pad and empty files and for a long file whose layer is absent or has the
 * wrong length. Returns true when some file has v2 hashes. The v2 part is unusable as a whole (every entry 0, false)
 * when the piece length is not a power of two >= 16 KiB, when a file of the v1 list has no leaf in the `file tree`
 * with the same length and a 32-byte `pieces root`, or when a file that holds data does not start on a piece
 * boundary (no pad files: v1 pieces would not be v2 pieces). Such a torrent is still served and checked through v1.
 * No allocation, no hashing.
 */
#ifndef HEKATE_METAINFO_V2_H
#define HEKATE_METAINFO_V2_H

#include <stdbool.h>
#include <stdint.h>

#include "bencode.h"
#include "metainfo.h"

#define MI_V2_HASH 32u /* bytes of a SHA-256 */

bool mi_v2_offsets(const ben_doc *doc, uint32_t info, const mi_torrent *t, uint64_t *out);

#endif
