/* book: a leecher's request book — which blocks it holds, which it has asked for and not received, which must be
 * asked again, and in what order it asks (random: a per-peer pseudo-random permutation, backend-sim/perm.h; or
 * sequential). Shared by hekate-swarm's leechers (leech.h) and hekate-sim's (backend-sim/peer_wire.c), so both ask
 * for the same blocks in the same order. Pure; out of memory aborts.
 *
 * Contract
 * --------
 * lk_book_layout() sets the block layout (16 KiB blocks of pieces of piece_length; -1 if the size does not fit).
 * lk_book_init() allocates the held-blocks bitmap once (kept by later calls, so a peer that learns its layout again
 * keeps what it has) and draws the order from perm_seed. lk_book_next() gives the next block to ask: first those to
 * ask again (last put back first), then the order's next, skipping held and outstanding blocks; LK_NO_BLOCK when
 * none is left. lk_book_ask() records a request, lk_book_answered() removes one (false: it was not outstanding),
 * lk_book_requeue() puts a block back to be asked again, lk_book_requeue_all() every outstanding one (a choke that
 * drops requests, a new connection), lk_book_take() records a received block (false: already held).
 * Request times: lk_book_ask_at() records a request made at `at` (any clock of the caller's), lk_book_answered_at()
 * removes one and gives its time in *at (NULL: not wanted).
 * Pieces not offered (the seeder verifies pieces and leaves out, or keeps rejecting, those that fail their hash):
 * lk_book_lack_piece() marks a piece lacking (true when it was not yet): lk_book_next() no longer gives its blocks,
 * and they count toward lk_book_done() (every block held or lacking). lk_book_lacks() tells whether block b's piece
 * is lacking. With no piece lacking, the book behaves exactly as without these calls. */
#ifndef HEKATE_LEECH_BOOK_H
#define HEKATE_LEECH_BOOK_H

#include <stdbool.h>
#include <stdint.h>

#include "perm.h"

#define LK_BLOCK 16384u
#define LK_NO_BLOCK UINT32_MAX

typedef struct lk_layout {
    uint64_t size;
    uint32_t piece_length, piece_count;
    uint32_t nblocks, bpp;       /* blocks in all, blocks per piece */
} lk_layout;

typedef struct lk_book {
    uint8_t *have;
    uint32_t received;
    perm order;
    uint64_t cursor;
    bool random;
    uint32_t *out, nout, capout;
    uint32_t *requeue, nrequeue, caprequeue;
    uint64_t *out_at, cap_at;    /* when each outstanding request was made (lk_book_ask_at; 0 from lk_book_ask) */
    uint32_t bpp, piece_count, nblocks; /* from the layout at lk_book_init */
    uint8_t *lacks;              /* per piece: the seeder does not offer it (lk_book_lack_piece); NULL until one */
    uint32_t lacking_blocks;     /* blocks of lacking pieces not held */
    uint32_t pieces_lacking;
} lk_book;

int lk_book_layout(lk_layout *t, uint64_t size, uint32_t piece_length);
uint32_t lk_layout_block_len(const lk_layout *t, uint32_t b);

void lk_book_init(lk_book *k, const lk_layout *t, bool random, uint64_t perm_seed);
void lk_book_free(lk_book *k);
bool lk_book_has(const lk_book *k, uint32_t b);
uint32_t lk_book_next(lk_book *k, const lk_layout *t);
void lk_book_ask(lk_book *k, uint32_t b);
bool lk_book_answered(lk_book *k, uint32_t b);
void lk_book_requeue(lk_book *k, uint32_t b);
void lk_book_requeue_all(lk_book *k);
bool lk_book_take(lk_book *k, uint32_t b);
void lk_book_ask_at(lk_book *k, uint32_t b, uint64_t at);
bool lk_book_answered_at(lk_book *k, uint32_t b, uint64_t *at);
bool lk_book_lack_piece(lk_book *k, uint32_t piece);
bool lk_book_lacks(const lk_book *k, uint32_t b);
bool lk_book_done(const lk_book *k);

#endif
