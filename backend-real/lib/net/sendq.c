/* sendq: a connection's send queue: the item ring, the byte area and its compaction (contract in sendq.h). */
#include "sendq.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static sq_item *queue_last(sendq *q)
{
    return q->icount ? sq_at(q, q->icount - 1) : NULL;
}

/* A new zeroed item at the tail, growing the ring (unrolled to the front of the new one) if full; NULL if out of
 * memory. */
static sq_item *queue_push(sendq *q)
{
    if (q->icount == q->icap) {
        uint32_t ncap = q->icap ? q->icap * 2 : 8;
        if (ncap < q->icap)
            return NULL;
        sq_item *ni = malloc((size_t)ncap * sizeof *ni);
        if (!ni)
            return NULL;
        for (uint32_t i = 0; i < q->icount; i++)
            ni[i] = *sq_at(q, i);
        free(q->items);
        q->items = ni;
        q->icap = ncap;
        q->ihead = 0;
    }
    sq_item *it = &q->items[(q->ihead + q->icount) % q->icap];
    q->icount++;
    memset(it, 0, sizeof *it);
    return it;
}

/* Moves the live bytes to the front of the byte area. */
static void bytes_compact(sendq *q)
{
    uint32_t start = UINT32_MAX;
    for (uint32_t i = 0; i < q->icount && start == UINT32_MAX; i++) {
        const sq_item *it = sq_at(q, i);
        if (it->kind == SQ_BYTES)
            start = it->off;
    }
    assert(start != UINT32_MAX); /* nbytes_items > 0 */
    if (start == 0 || start == UINT32_MAX)
        return;
    memmove(q->buf, q->buf + start, q->tail - start);
    q->tail -= start;
    for (uint32_t i = 0; i < q->icount; i++) {
        sq_item *it = sq_at(q, i);
        if (it->kind == SQ_BYTES)
            it->off -= start;
    }
}

/* Makes room for n more bytes at the end of the byte area: first by moving live bytes to the front, then by growing. */
static int bytes_reserve(sendq *q, uint32_t n)
{
    if ((uint64_t)q->tail + n <= q->cap)
        return 0;
    if (q->nbytes_items > 0)
        bytes_compact(q);
    else
        q->tail = 0;
    uint64_t need = (uint64_t)q->tail + n;
    if (need <= q->cap)
        return 0;
    if (need > (UINT32_MAX >> 1))
        return -1;
    uint64_t ncap = q->cap ? (uint64_t)q->cap * 2 : 512;
    while (ncap < need)
        ncap *= 2;
    uint8_t *nb = realloc(q->buf, ncap);
    if (!nb)
        return -1;
    q->buf = nb;
    q->cap = (uint32_t)ncap;
    return 0;
}

int sq_add_bytes(sendq *q, const uint8_t *ptr, uint32_t len, hk_cipher *cipher)
{
    if (bytes_reserve(q, len) != 0)
        return -1;
    memcpy(q->buf + q->tail, ptr, len);
    sq_item *last = queue_last(q);
    if (last && last->kind == SQ_BYTES && last->cipher == cipher && last->off + last->len == q->tail) {
        last->len += len;
    } else {
        sq_item *it = queue_push(q);
        if (!it)
            return -1;
        it->kind = SQ_BYTES;
        it->cipher = cipher;
        it->off = q->tail;
        it->len = len;
        q->nbytes_items++;
    }
    q->tail += len;
    return 0;
}

int sq_push_extent(sendq *q, const hk_extent *ext, const uint8_t *base, hk_cipher *cipher)
{
    sq_item *it = queue_push(q);
    if (!it)
        return -1;
    it->kind = SQ_EXTENT;
    it->base = base;
    it->cipher = cipher;
    it->ext = *ext;
    it->len = ext->length;
    return 0;
}

void sq_consume(sendq *q, size_t n, sq_unpin_fn unpin, void *ctx)
{
    while (n > 0) {
        assert(q->icount > 0);
        sq_item *it = &q->items[q->ihead];
        uint32_t take = n < it->len ? (uint32_t)n : it->len;
        it->off += take;
        it->len -= take;
        n -= take;
        if (it->len == 0) {
            if (it->kind == SQ_EXTENT)
                unpin(ctx, &it->ext);
            else if (--q->nbytes_items == 0)
                q->tail = 0;
            q->ihead = (q->ihead + 1) % q->icap;
            q->icount--;
        }
    }
}

int sq_fill_iov(const sendq *q, struct iovec *iov, int max, size_t *total)
{
    int n = 0;
    *total = 0;
    for (uint32_t i = 0; i < q->icount && n < max; i++) {
        const sq_item *it = sq_at(q, i);
        if (it->cipher)
            break;
        iov[n].iov_base = (void *)(uintptr_t)(it->kind == SQ_BYTES ? q->buf + it->off : it->base + it->off);
        iov[n].iov_len = it->len;
        *total += it->len;
        n++;
    }
    return n;
}

void sq_free(sendq *q, sq_unpin_fn unpin, void *ctx)
{
    for (uint32_t i = 0; i < q->icount; i++) {
        sq_item *it = sq_at(q, i);
        if (it->kind == SQ_EXTENT)
            unpin(ctx, &it->ext);
    }
    free(q->items);
    free(q->buf);
    free(q);
}
