/* piece_state: the verification state of one torrent's pieces (docs/design.md §13): each piece is unknown, good
 * (its SHA-1 matched) or bad (it did not).
 *
 * Contract
 * --------
 * A torrent holds a pointer (hk_pieces *, NULL at first) and one flag `all_good`. NULL with all_good false: every
 * piece is unknown (nothing allocated); NULL with all_good true: every piece is good (a fully verified torrent, or
 * one served without verification). The detail block (one bit per piece of good marks plus the short list of bad
 * pieces) exists only while some piece is known and the torrent is not all good; it is freed the moment the last
 * piece turns good. Every byte comes from the caller's hk_mem (accounted). Pure: no I/O.
 */
#ifndef HEKATE_PIECE_STATE_H
#define HEKATE_PIECE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"

typedef enum hk_piece_kind { HK_PIECE_UNKNOWN = 0, HK_PIECE_GOOD, HK_PIECE_BAD } hk_piece_kind;

typedef struct hk_pieces {
    uint32_t count;              /* pieces of the torrent */
    uint32_t ngood;              /* bits set in good */
    uint32_t nbad, bad_cap;      /* bad: nbad piece indices in increasing order */
    uint32_t *bad;
    uint8_t good[];              /* (count + 7) / 8 bytes, bit i (MSB first) = piece i is good */
} hk_pieces;

/* The state of piece i (i < count). */
hk_piece_kind hk_pieces_get(const hk_pieces *ps, bool all_good, uint32_t i);
/* Records the result of checking piece i (i < count): good or bad. May allocate (the first result) or free (the last
 * piece turned good: *ps becomes NULL and *all_good true). A piece already bad may turn good (re-checked after the
 * data was repaired) and vice versa. Returns 0, or -1 when out of memory (nothing changed). */
int hk_pieces_set(hk_mem *mem, hk_pieces **ps, bool *all_good, uint32_t count, uint32_t i, bool good);
/* Frees the detail block (NULL is a no-op); *ps becomes NULL (the flag is the caller's). */
void hk_pieces_free(hk_mem *mem, hk_pieces **ps);
/* Bad pieces known (0 when ps is NULL). */
static inline uint32_t hk_pieces_nbad(const hk_pieces *ps) { return ps ? ps->nbad : 0; }
/* Heap bytes held by ps (0 when NULL). */
size_t hk_pieces_bytes(const hk_pieces *ps);
/* Writes the advertised bitfield (BEP 3, MSB first, spare bits zero) of `count` pieces into out ((count + 7) / 8
 * bytes): every piece that is not bad (unknown pieces are offered: they are checked before they are sent). */
void hk_pieces_bitfield(const hk_pieces *ps, uint32_t count, uint8_t *out);

#endif
