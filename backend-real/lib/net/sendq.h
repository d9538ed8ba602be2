/* sendq: one connection's send queue, the bytes and pinned extents it has yet to write (internal to net/conn.c).
 *
 * Contract
 * --------
 * A queue is a ring of items in write order. A BYTES item is bytes copied into the queue's byte area (consecutive
 * byte segments merge into one item); an EXTENT item is memory the owner pinned, unpinned through the callback once
 * its last byte is consumed or when the queue is freed. Nothing here does I/O.
 * Every item remembers the cipher its bytes pass through when written (NULL: plain), the one in force when it was
 * queued: this is the enqueue-position boundary of set_cipher (net/conn_cipher.h). Byte segments merge into one item
 * only under the same cipher, and sq_fill_iov hands out plain items only.
 *
 * Return codes: sq_add_bytes and sq_push_extent return 0, or -1 if out of memory (the queue is unchanged as far as
 * the bytes to write go: nothing of the failed segment will be written).
 */
#ifndef HEKATE_SENDQ_H
#define HEKATE_SENDQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "runtime.h"
#include "stream_cipher.h"

enum { SQ_BYTES = 1, SQ_EXTENT = 2 };

typedef struct sq_item {
    const uint8_t *base; /* EXTENT: pinned memory of the whole extent */
    hk_cipher *cipher;   /* applied to these bytes as they are written; NULL: written as they are */
    hk_extent ext;       /* EXTENT: what to unpin */
    uint32_t off;        /* BYTES: offset in the byte area of the next unsent byte; EXTENT: bytes already sent */
    uint32_t len;        /* bytes not yet sent */
    uint8_t kind;
} sq_item;

typedef struct sendq {
    uint8_t *buf;            /* byte area; live bytes lie in [first BYTES item's off, tail) */
    uint32_t cap, tail;
    uint32_t nbytes_items;   /* BYTES items in the ring */
    sq_item *items;          /* ring */
    uint32_t icap, ihead, icount;
} sendq;

typedef void (*sq_unpin_fn)(void *ctx, const hk_extent *ext);

/* The i-th item from the head (i < icount). */
static inline sq_item *sq_at(const sendq *q, uint32_t i)
{
    return &q->items[(q->ihead + i) % q->icap];
}

/* Appends len > 0 bytes (copied), to be written through cipher (NULL: plain). */
int sq_add_bytes(sendq *q, const uint8_t *ptr, uint32_t len, hk_cipher *cipher);
/* Appends a pinned extent whose memory is base, to be written through cipher (NULL: plain). */
int sq_push_extent(sendq *q, const hk_extent *ext, const uint8_t *base, hk_cipher *cipher);
/* Drops the first n queued bytes (n <= what is queued), unpinning every extent fully consumed. */
void sq_consume(sendq *q, size_t n, sq_unpin_fn unpin, void *ctx);
/* Fills iov with up to max segments from the head, stopping at the first item with a cipher; returns how many (0 if
 * the head has a cipher), their bytes in *total. */
int sq_fill_iov(const sendq *q, struct iovec *iov, int max, size_t *total);
/* Unpins every extent still queued and frees q. */
void sq_free(sendq *q, sq_unpin_fn unpin, void *ctx);

#endif
