/* book: owns a leecher's request book (see book.h): the held-blocks bitmap, the outstanding requests, the blocks to
 * ask again and the request order. */
#include "book.h"

#include <stdlib.h>
#include <string.h>

int lk_book_layout(lk_layout *t, uint64_t size, uint32_t piece_length)
{
    if (piece_length < LK_BLOCK || size == 0)
        return -1;
    uint64_t pieces = (size + piece_length - 1) / piece_length;
    if (pieces > UINT32_MAX / 64)
        return -1;
    t->size = size;
    t->piece_length = piece_length;
    t->piece_count = (uint32_t)pieces;
    t->bpp = (piece_length + LK_BLOCK - 1) / LK_BLOCK;
    uint64_t last = size - (uint64_t)(t->piece_count - 1) * piece_length;
    t->nblocks = (t->piece_count - 1) * t->bpp + (uint32_t)((last + LK_BLOCK - 1) / LK_BLOCK);
    return 0;
}

uint32_t lk_layout_block_len(const lk_layout *t, uint32_t b)
{
    uint32_t piece = b / t->bpp, begin = (b % t->bpp) * LK_BLOCK;
    uint64_t psize = piece + 1 < t->piece_count ? t->piece_length
                                                : t->size - (uint64_t)(t->piece_count - 1) * t->piece_length;
    uint64_t left = psize - begin;
    return left < LK_BLOCK ? (uint32_t)left : LK_BLOCK;
}

void lk_book_init(lk_book *k, const lk_layout *t, bool random, uint64_t perm_seed)
{
    if (!k->have) {
        k->have = calloc((t->nblocks + 7) / 8, 1);
        if (!k->have)
            abort();
    }
    k->random = random;
    k->bpp = t->bpp;
    k->piece_count = t->piece_count;
    k->nblocks = t->nblocks;
    perm_init(&k->order, t->nblocks, perm_seed);
}

void lk_book_free(lk_book *k)
{
    free(k->have);
    free(k->out);
    free(k->requeue);
    free(k->out_at);
    free(k->lacks);
    memset(k, 0, sizeof *k);
}

bool lk_book_has(const lk_book *k, uint32_t b)
{
    return k->have[b / 8] >> (b % 8) & 1;
}

static bool outstanding(const lk_book *k, uint32_t b)
{
    for (uint32_t i = 0; i < k->nout; i++)
        if (k->out[i] == b)
            return true;
    return false;
}

static uint32_t *push(uint32_t *v, uint32_t *n, uint32_t *cap, uint32_t x)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        v = realloc(v, (size_t)*cap * sizeof *v);
        if (!v)
            abort();
    }
    v[(*n)++] = x;
    return v;
}

bool lk_book_lacks(const lk_book *k, uint32_t b)
{
    return k->lacks && k->bpp && k->lacks[b / k->bpp];
}

uint32_t lk_book_next(lk_book *k, const lk_layout *t)
{
    while (k->nrequeue) {
        uint32_t b = k->requeue[--k->nrequeue];
        if (!lk_book_has(k, b) && !outstanding(k, b) && !lk_book_lacks(k, b))
            return b;
    }
    while (k->cursor < t->nblocks) {
        uint32_t b = k->random ? (uint32_t)perm_at(&k->order, k->cursor) : (uint32_t)k->cursor;
        k->cursor++;
        if (!lk_book_has(k, b) && !outstanding(k, b) && !lk_book_lacks(k, b))
            return b;
    }
    return LK_NO_BLOCK;
}

void lk_book_ask_at(lk_book *k, uint32_t b, uint64_t at)
{
    if (k->nout == k->cap_at) { /* out_at grows with out: the same count, its own capacity */
        k->cap_at = k->cap_at ? 2 * k->cap_at : 16;
        k->out_at = realloc(k->out_at, (size_t)k->cap_at * sizeof *k->out_at);
        if (!k->out_at)
            abort();
    }
    k->out_at[k->nout] = at;
    k->out = push(k->out, &k->nout, &k->capout, b);
}

void lk_book_ask(lk_book *k, uint32_t b)
{
    lk_book_ask_at(k, b, 0);
}

bool lk_book_answered_at(lk_book *k, uint32_t b, uint64_t *at)
{
    for (uint32_t i = 0; i < k->nout; i++)
        if (k->out[i] == b) {
            if (at)
                *at = k->out_at[i];
            k->nout--;
            k->out[i] = k->out[k->nout];
            k->out_at[i] = k->out_at[k->nout];
            return true;
        }
    return false;
}

bool lk_book_answered(lk_book *k, uint32_t b)
{
    return lk_book_answered_at(k, b, NULL);
}

bool lk_book_lack_piece(lk_book *k, uint32_t piece)
{
    if (piece >= k->piece_count)
        return false;
    if (!k->lacks && !(k->lacks = calloc(k->piece_count, 1)))
        abort();
    if (k->lacks[piece])
        return false;
    k->lacks[piece] = 1;
    k->pieces_lacking++;
    for (uint32_t b = piece * k->bpp; b < k->nblocks && b < (piece + 1) * k->bpp; b++)
        if (!lk_book_has(k, b))
            k->lacking_blocks++;
    return true;
}

bool lk_book_done(const lk_book *k)
{
    return k->received + k->lacking_blocks == k->nblocks;
}

void lk_book_requeue(lk_book *k, uint32_t b)
{
    k->requeue = push(k->requeue, &k->nrequeue, &k->caprequeue, b);
}

void lk_book_requeue_all(lk_book *k)
{
    for (uint32_t i = 0; i < k->nout; i++)
        lk_book_requeue(k, k->out[i]);
    k->nout = 0;
}

bool lk_book_take(lk_book *k, uint32_t b)
{
    if (lk_book_has(k, b))
        return false;
    k->have[b / 8] |= (uint8_t)(1u << (b % 8));
    k->received++;
    if (lk_book_lacks(k, b)) /* asked before its piece was known to lack */
        k->lacking_blocks--;
    return true;
}
