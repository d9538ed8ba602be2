/* request_queue: owns one peer's ring buffer of pending requests (see request_queue.h). */
#include "request_queue.h"

#include <assert.h>
#include <string.h>

#define RQ_MIN_CAP 4u

void hk_rq_init(hk_request_queue *q, hk_mem *mem, uint32_t max)
{
    memset(q, 0, sizeof *q);
    q->mem = mem;
    q->max = max;
}

void hk_rq_free(hk_request_queue *q)
{
    hk_rq_clear(q);
}

void hk_rq_clear(hk_request_queue *q)
{
    hk_mem_free(q->mem, q->ring, (size_t)q->cap * sizeof *q->ring);
    q->ring = NULL;
    q->head = q->len = q->cap = 0;
    memset(q->count, 0, sizeof q->count);
}

static uint32_t slot(const hk_request_queue *q, uint32_t i)
{
    uint32_t s = q->head + i;
    return s >= q->cap ? s - q->cap : s;
}

static bool grow(hk_request_queue *q)
{
    uint32_t ncap = q->cap ? q->cap * 2 : RQ_MIN_CAP;
    if (ncap > q->max || ncap < q->cap)
        ncap = q->max;
    assert(ncap > q->len); /* called on a full ring below the maximum */
    hk_request *n = hk_mem_alloc(q->mem, (size_t)ncap * sizeof *n);
    if (!n)
        return false;
    for (uint32_t i = 0; i < q->len; i++)
        n[i] = q->ring[slot(q, i)];
    hk_mem_free(q->mem, q->ring, (size_t)q->cap * sizeof *q->ring);
    q->ring = n;
    q->cap = ncap;
    q->head = 0;
    return true;
}

bool hk_rq_push_back(hk_request_queue *q, const hk_request *r)
{
    if (q->len >= q->max) /* r->kind is a one-bit field: always a valid kind */
        return false;
    if (q->len == q->cap && !grow(q))
        return false;
    q->ring[slot(q, q->len)] = *r;
    q->len++;
    q->count[r->kind]++;
    return true;
}

hk_request *hk_rq_at(hk_request_queue *q, uint32_t i)
{
    return i < q->len ? &q->ring[slot(q, i)] : NULL;
}

static void after_remove(hk_request_queue *q, const hk_request *r)
{
    assert(r->kind < HK_REQ_KINDS && q->count[r->kind] > 0);
    q->count[r->kind]--;
    if (q->len == 0)
        q->head = 0;
}

bool hk_rq_pop_front(hk_request_queue *q, hk_request *out)
{
    if (q->len == 0)
        return false;
    hk_request r = q->ring[q->head];
    q->head = slot(q, 1);
    q->len--;
    if (out)
        *out = r;
    after_remove(q, &r);
    return true;
}

void hk_rq_rotate(hk_request_queue *q)
{
    if (q->len < 2)
        return;
    hk_request r = q->ring[q->head];
    q->head = slot(q, 1);
    q->ring[slot(q, q->len - 1)] = r;
}

int64_t hk_rq_find(const hk_request_queue *q, hk_req_kind kind, uint32_t index, uint32_t begin, uint32_t length)
{
    for (uint32_t i = 0; i < q->len; i++) {
        const hk_request *r = &q->ring[slot(q, i)];
        if (r->kind == kind && r->index == index && r->begin == begin && r->length == length)
            return i;
    }
    return -1;
}

int64_t hk_rq_find_token(const hk_request_queue *q, uint64_t token)
{
    if (token == 0)
        return -1;
    for (uint32_t i = 0; i < q->len; i++)
        if (q->ring[slot(q, i)].token == token)
            return i;
    return -1;
}

bool hk_rq_remove_at(hk_request_queue *q, uint32_t i, hk_request *out)
{
    if (i >= q->len)
        return false;
    hk_request r = q->ring[slot(q, i)];
    /* Shift the shorter side: serving takes the front (i = 0), which then costs nothing instead of a shift of the
     * whole queue (reqq entries per block served). */
    if (i < q->len / 2) {
        for (uint32_t k = i; k > 0; k--)
            q->ring[slot(q, k)] = q->ring[slot(q, k - 1)];
        q->head = slot(q, 1);
    } else {
        for (uint32_t k = i; k + 1 < q->len; k++)
            q->ring[slot(q, k)] = q->ring[slot(q, k + 1)];
    }
    q->len--;
    if (out)
        *out = r;
    after_remove(q, &r);
    return true;
}
