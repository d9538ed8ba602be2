/* meta: a magnet user's metadata fetch over ut_metadata (BEP 9), pure like core/: the state of one torrent's info
 * dictionary being fetched from the seeder, piece by piece, and its check against the info-hash. Used by leech.c
 * (hekate-swarm's magnet peers); written so that hekate-sim's peers can use it too.
 *
 * Contract
 * --------
 * lk_meta_init() for a peer that must fetch the metadata (wanted is true until it is done; it survives
 * reconnections: pieces received stay). lk_meta_on_ext_handshake() takes the seeder's extension handshake (the
 * payload of extended message 0) and lk_meta_on_message() each ut_metadata message the seeder sends to our id
 * (LK_META_OUR_ID). Return codes (both):
 *   LK_META_OK       nothing to do (not wanted any more, a duplicate piece, more pieces to come);
 *   LK_META_REQUEST  send a request for every piece: lk_meta_pieces() of them, each lk_meta_request()'s bytes as an
 *                    extended message to seeder_id;
 *   LK_META_DONE     every piece is in and hashes to the info-hash and parses: total_length and piece_length are
 *                    set, wanted is false;
 *   LK_META_BAD      a protocol error (a message that does not decode or was not expected): *why says what;
 *   LK_META_FAILED   the metadata cannot be had (no ut_metadata offered, a request rejected, a wrong hash, a
 *                    dictionary that does not parse): *why says what; counts as a metadata failure.
 * The *why strings are static. lk_meta_free() releases the buffers. Nothing fails except out of memory (abort).
 */
#ifndef HEKATE_LEECH_META_H
#define HEKATE_LEECH_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LK_META_OUR_ID 3u       /* our ut_metadata id, announced in our extension handshake */
#define LK_META_PIECE 16384u
#define LK_META_MAX (16u << 20) /* largest metadata_size accepted */

typedef enum lk_meta_status { LK_META_OK = 0, LK_META_REQUEST, LK_META_DONE, LK_META_BAD, LK_META_FAILED } lk_meta_status;

typedef struct lk_meta {
    uint8_t info_hash[20];
    bool wanted;                 /* the metadata is still to be fetched */
    uint8_t seeder_id;           /* the seeder's ut_metadata id (from its extension handshake) */
    uint32_t size, got;          /* metadata_size; pieces received */
    uint8_t *buf, *have;         /* size bytes; one flag per piece */
    uint64_t total_length;       /* once done: the torrent's */
    uint32_t piece_length;
} lk_meta;

/* Our extension handshake, announcing ut_metadata as LK_META_OUR_ID (a static string of *len bytes). */
const char *lk_meta_our_handshake(size_t *len);
void lk_meta_init(lk_meta *m, const uint8_t info_hash[20]);
void lk_meta_free(lk_meta *m);
lk_meta_status lk_meta_on_ext_handshake(lk_meta *m, const uint8_t *p, uint32_t len, const char **why);
lk_meta_status lk_meta_on_message(lk_meta *m, const uint8_t *p, uint32_t len, const char **why);
static inline uint32_t lk_meta_pieces(const lk_meta *m) { return (m->size + LK_META_PIECE - 1) / LK_META_PIECE; }
/* The bencoded request for piece i into buf (cap >= 64): its length. */
size_t lk_meta_request(uint32_t i, char *buf, size_t cap);

#endif
