/* request_queue: owns one peer's ring buffer of pending requests and the index of its slots by key that shares the
 * ring's allocation (see request_queue.h). */
#include "request_queue.h"

#include <assert.h>
#include <string.h>

#define RQ_MIN_CAP 4u
/* The index: present once the ring's capacity reaches RQ_INDEX_MIN (below it a scan is as cheap); slots are stored
 * + 1 in 16 bits, so a ring above RQ_INDEX_CAP_MAX entries goes without (the seeder's maximum is 8,200). */
#define RQ_INDEX_MIN 64u
#define RQ_INDEX_CAP_MAX 65535u

static uint32_t slot(const hk_request_queue *q, uint32_t i)
{
    uint32_t s = q->head + i;
    return s >= q->cap ? s - q->cap : s;
}

/* ---- the index: linear probing over a power of two >= 2 x cap buckets (slot + 1; 0 empty) after the ring ---- */

static bool indexed(uint32_t cap)
{
    return cap >= RQ_INDEX_MIN && cap <= RQ_INDEX_CAP_MAX;
}

static uint32_t index_size(uint32_t cap)
{
    return indexed(cap) ? 1u << (32 - __builtin_clz(2 * cap - 1)) : 0;
}

static size_t alloc_bytes(uint32_t cap)
{
    return (size_t)cap * sizeof(hk_request) + (size_t)index_size(cap) * sizeof(uint16_t);
}

static uint16_t *idx(const hk_request_queue *q)
{
    return q->ring && indexed(q->cap) ? (uint16_t *)(void *)(q->ring + q->cap) : NULL;
}

/* A fixed mix (no seed: the core is deterministic). A peer choosing colliding keys makes a lookup O(len), the cost of
 * the scan it replaces, no worse. */
static uint32_t key_hash(uint32_t kind, uint32_t index, uint32_t begin, uint32_t length)
{
    uint64_t h = ((uint64_t)index << 32 | begin) ^ (((uint64_t)length << 1 | kind) * 0x9E3779B97F4A7C15ull);
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    return (uint32_t)h;
}

static uint32_t home(const hk_request_queue *q, uint32_t s, uint32_t mask)
{
    const hk_request *r = &q->ring[s];
    return key_hash(r->kind, r->index, r->begin, r->length) & mask;
}

static void idx_insert(hk_request_queue *q, uint16_t *ix, uint32_t s)
{
    uint32_t mask = index_size(q->cap) - 1, b = home(q, s, mask);
    while (ix[b])
        b = (b + 1) & mask;
    ix[b] = (uint16_t)(s + 1);
}

/* The bucket holding ring slot s (indexed, with its key in place). */
static uint32_t idx_bucket(const hk_request_queue *q, const uint16_t *ix, uint32_t s)
{
    uint32_t mask = index_size(q->cap) - 1, b = home(q, s, mask);
    while (ix[b] != s + 1) {
        assert(ix[b] != 0);
        b = (b + 1) & mask;
    }
    return b;
}

/* Takes ring slot s out of the index, moving back the entries after its bucket that may move (every indexed slot
 * must still hold its key: called before the ring shifts). */
static void idx_delete(hk_request_queue *q, uint32_t s)
{
    uint16_t *ix = idx(q);
    if (!ix)
        return;
    uint32_t mask = index_size(q->cap) - 1, i = idx_bucket(q, ix, s), j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!ix[j])
            break;
        uint32_t h = home(q, ix[j] - 1u, mask);
        if (((j - h) & mask) >= ((j - i) & mask)) { /* its home is not in (i, j]: it may fill bucket i */
            ix[i] = ix[j];
            i = j;
        }
    }
    ix[i] = 0;
}

/* The entry at ring slot from is about to be copied to slot to (whose own entry is out of the index). */
static void idx_move(hk_request_queue *q, uint32_t from, uint32_t to)
{
    uint16_t *ix = idx(q);
    if (ix && from != to)
        ix[idx_bucket(q, ix, from)] = (uint16_t)(to + 1);
}

/* ---- the ring ---- */

void hk_rq_init(hk_request_queue *q, hk_rq_home *home, uint32_t max)
{
    memset(q, 0, sizeof *q);
    q->home = home;
    q->max = max;
}

void hk_rq_free(hk_request_queue *q)
{
    hk_rq_clear(q);
}

void hk_rq_clear(hk_request_queue *q)
{
    hk_mem_free(q->home->mem, q->ring, q->ring ? alloc_bytes(q->cap) : 0);
    q->ring = NULL;
    q->head = q->len = q->cap = 0;
    assert(q->home->blocks >= q->count[HK_REQ_BLOCK]);
    q->home->blocks -= q->count[HK_REQ_BLOCK];
    memset(q->count, 0, sizeof q->count);
}

static bool grow(hk_request_queue *q)
{
    uint32_t ncap = q->cap ? q->cap * 2 : RQ_MIN_CAP;
    if (ncap > q->max || ncap < q->cap)
        ncap = q->max;
    assert(ncap > q->len); /* called on a full ring below the maximum */
    hk_request *n = hk_mem_alloc(q->home->mem, alloc_bytes(ncap));
    if (!n)
        return false;
    for (uint32_t i = 0; i < q->len; i++)
        n[i] = q->ring[slot(q, i)];
    hk_mem_free(q->home->mem, q->ring, q->ring ? alloc_bytes(q->cap) : 0);
    q->ring = n;
    q->cap = ncap;
    q->head = 0;
    uint16_t *ix = idx(q);
    if (ix) {
        memset(ix, 0, (size_t)index_size(ncap) * sizeof *ix);
        for (uint32_t s = 0; s < q->len; s++)
            idx_insert(q, ix, s);
    }
    return true;
}

bool hk_rq_push_back(hk_request_queue *q, const hk_request *r)
{
    if (q->len >= q->max) /* r->kind is a one-bit field: always a valid kind */
        return false;
    if (q->len == q->cap && !grow(q))
        return false;
    uint32_t s = slot(q, q->len);
    q->ring[s] = *r;
    uint16_t *ix = idx(q);
    if (ix)
        idx_insert(q, ix, s);
    q->len++;
    q->count[r->kind]++;
    q->home->blocks += r->kind == HK_REQ_BLOCK;
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
    q->home->blocks -= r->kind == HK_REQ_BLOCK;
    if (q->len == 0)
        q->head = 0;
}

bool hk_rq_pop_front(hk_request_queue *q, hk_request *out)
{
    if (q->len == 0)
        return false;
    hk_request r = q->ring[q->head];
    idx_delete(q, q->head);
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
    uint32_t from = q->head;
    q->head = slot(q, 1);
    idx_move(q, from, slot(q, q->len - 1)); /* the same slot when the ring is full */
    q->ring[slot(q, q->len - 1)] = r;
}

int64_t hk_rq_find(const hk_request_queue *q, hk_req_kind kind, uint32_t index, uint32_t begin, uint32_t length)
{
    const uint16_t *ix = idx(q);
    if (ix) { /* every entry with this key is in the probe run from its home bucket: the first in order wins */
        uint32_t mask = index_size(q->cap) - 1;
        int64_t best = -1;
        for (uint32_t b = key_hash(kind, index, begin, length) & mask; ix[b]; b = (b + 1) & mask) {
            uint32_t s = ix[b] - 1u;
            const hk_request *r = &q->ring[s];
            if (r->kind != kind || r->index != index || r->begin != begin || r->length != length)
                continue;
            int64_t pos = s >= q->head ? s - q->head : s + q->cap - q->head;
            if (best < 0 || pos < best)
                best = pos;
        }
        return best;
    }
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
    idx_delete(q, slot(q, i)); /* first: the deletion hashes the other entries in place */
    /* Shift the shorter side: serving takes the front (i = 0), which then costs nothing instead of a shift of the
     * whole queue (reqq entries per block served). */
    if (i < q->len / 2) {
        for (uint32_t k = i; k > 0; k--) {
            idx_move(q, slot(q, k - 1), slot(q, k));
            q->ring[slot(q, k)] = q->ring[slot(q, k - 1)];
        }
        q->head = slot(q, 1);
    } else {
        for (uint32_t k = i; k + 1 < q->len; k++) {
            idx_move(q, slot(q, k + 1), slot(q, k));
            q->ring[slot(q, k)] = q->ring[slot(q, k + 1)];
        }
    }
    q->len--;
    if (out)
        *out = r;
    after_remove(q, &r);
    return true;
}
