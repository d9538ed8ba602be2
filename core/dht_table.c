/* dht_table: K-buckets, splitting on our own range, liveness and replacement caches (contract in dht_table.h). */
#include "dht_table.h"

#include <string.h>

#define PING_AGAIN_AFTER HK_SECONDS(60)

static bool same_addr(const hk_addr *a, const hk_addr *b)
{
    return a->family == b->family && a->port == b->port && memcmp(a->ip, b->ip, a->family == 4 ? 4 : 16) == 0;
}

unsigned hk_dht_common_bits(const uint8_t a[20], const uint8_t b[20])
{
    for (unsigned i = 0; i < 20; i++) {
        uint8_t x = a[i] ^ b[i];
        if (x) {
            unsigned n = 0;
            while (!(x & 0x80)) {
                x <<= 1;
                n++;
            }
            return i * 8 + n;
        }
    }
    return 160;
}

int hk_dht_cmp_distance(const uint8_t target[20], const uint8_t a[20], const uint8_t b[20])
{
    for (unsigned i = 0; i < 20; i++) {
        uint8_t da = a[i] ^ target[i], db = b[i] ^ target[i];
        if (da != db)
            return da < db ? -1 : 1;
    }
    return 0;
}

hk_dht_liveness hk_dht_node_liveness(const hk_dht_node *n, hk_time now)
{
    if (n->fails >= HK_DHT_BAD_FAILS)
        return HK_DHT_BAD;
    bool replied_lately = now - n->last_reply < HK_DHT_GOOD_FOR;
    bool queried_lately = n->last_query && now - n->last_query < HK_DHT_GOOD_FOR;
    if (n->last_reply && (replied_lately || queried_lately))
        return HK_DHT_GOOD;
    return HK_DHT_QUESTIONABLE;
}

int hk_dht_table_init(hk_dht_table *t, hk_mem *mem, const uint8_t own[20])
{
    memset(t, 0, sizeof *t);
    t->mem = mem;
    memcpy(t->own, own, 20);
    t->buckets = hk_mem_calloc(mem, 1, sizeof *t->buckets);
    if (!t->buckets)
        return -1;
    t->nbuckets = 1;
    return 0;
}

void hk_dht_table_free(hk_dht_table *t)
{
    hk_mem_free(t->mem, t->buckets, t->nbuckets * sizeof *t->buckets);
    t->buckets = NULL;
    t->nbuckets = 0;
}

static unsigned bucket_of(const hk_dht_table *t, const uint8_t id[20])
{
    unsigned c = hk_dht_common_bits(t->own, id);
    return c < t->nbuckets - 1 ? c : t->nbuckets - 1;
}

static hk_dht_node *find_in(hk_dht_node *arr, unsigned n, const uint8_t id[20])
{
    for (unsigned i = 0; i < n; i++)
        if (memcmp(arr[i].id, id, 20) == 0)
            return &arr[i];
    return NULL;
}

/* Moves the last bucket's nodes (and replacements) that share more bits into a new last bucket. */
static int split_last(hk_dht_table *t)
{
    size_t old = t->nbuckets * sizeof *t->buckets;
    hk_dht_bucket *nb = hk_mem_realloc(t->mem, t->buckets, old, old + sizeof *t->buckets);
    if (!nb)
        return -1;
    t->buckets = nb;
    hk_dht_bucket *lo = &nb[t->nbuckets - 1], *hi = &nb[t->nbuckets];
    memset(hi, 0, sizeof *hi);
    unsigned depth = t->nbuckets - 1;
    t->nbuckets++;
    hk_dht_bucket keep = *lo;
    lo->n = lo->nrepl = 0;
    for (unsigned i = 0; i < keep.n; i++) {
        hk_dht_bucket *to = hk_dht_common_bits(t->own, keep.nodes[i].id) > depth ? hi : lo;
        to->nodes[to->n++] = keep.nodes[i];
    }
    for (unsigned i = 0; i < keep.nrepl; i++) {
        hk_dht_bucket *to = hk_dht_common_bits(t->own, keep.repl[i].id) > depth ? hi : lo;
        to->repl[to->nrepl++] = keep.repl[i];
    }
    hi->changed = lo->changed;
    return 0;
}

static void add_replacement(hk_dht_bucket *b, const hk_dht_node *n)
{
    hk_dht_node *r = find_in(b->repl, b->nrepl, n->id);
    if (r) {
        *r = *n;
        return;
    }
    if (b->nrepl == HK_DHT_K) { /* drop the oldest (index 0): newest are kept at the end */
        memmove(&b->repl[0], &b->repl[1], (HK_DHT_K - 1) * sizeof b->repl[0]);
        b->nrepl--;
    }
    b->repl[b->nrepl++] = *n;
}

/* The least recently heard questionable node of the bucket, not pinged in the last minute. */
static const hk_dht_node *ping_candidate(const hk_dht_bucket *b, hk_time now)
{
    const hk_dht_node *best = NULL;
    for (unsigned i = 0; i < b->n; i++) {
        const hk_dht_node *n = &b->nodes[i];
        if (hk_dht_node_liveness(n, now) != HK_DHT_QUESTIONABLE)
            continue;
        if (n->last_ping && now - n->last_ping < PING_AGAIN_AFTER)
            continue;
        if (!best || n->last_reply < best->last_reply)
            best = n;
    }
    return best;
}

static int bad_index(const hk_dht_bucket *b, hk_time now)
{
    for (unsigned i = 0; i < b->n; i++)
        if (hk_dht_node_liveness(&b->nodes[i], now) == HK_DHT_BAD)
            return (int)i;
    return -1;
}

hk_dht_insert hk_dht_table_replied(hk_dht_table *t, const uint8_t id[20], const hk_addr *addr, hk_time now,
                                   hk_dht_node *ping, bool *has_ping)
{
    if (has_ping)
        *has_ping = false;
    if (memcmp(id, t->own, 20) == 0)
        return HK_DHT_INS_IGNORED;
    for (;;) {
        unsigned bi = bucket_of(t, id);
        hk_dht_bucket *b = &t->buckets[bi];
        hk_dht_node *n = find_in(b->nodes, b->n, id);
        if (n) {
            if (!same_addr(&n->addr, addr))
                return HK_DHT_INS_IGNORED;
            n->last_reply = now;
            n->fails = 0;
            b->changed = now;
            return HK_DHT_INS_UPDATED;
        }
        hk_dht_node fresh = { .addr = *addr, .last_reply = now };
        memcpy(fresh.id, id, 20);
        int bad = b->n == HK_DHT_K ? bad_index(b, now) : -1;
        if (b->n < HK_DHT_K || bad >= 0) {
            b->nodes[b->n < HK_DHT_K ? b->n++ : (unsigned)bad] = fresh;
            b->changed = now;
            return HK_DHT_INS_ADDED;
        }
        if (bi == t->nbuckets - 1 && t->nbuckets < HK_DHT_MAX_BUCKETS) {
            if (split_last(t) < 0)
                return HK_DHT_INS_NOMEM;
            continue;
        }
        add_replacement(b, &fresh);
        const hk_dht_node *c = ping_candidate(b, now);
        if (c && ping && has_ping) {
            *ping = *c;
            *has_ping = true;
        }
        return HK_DHT_INS_REPLACEMENT;
    }
}

bool hk_dht_table_queried(hk_dht_table *t, const uint8_t id[20], const hk_addr *addr, hk_time now)
{
    hk_dht_bucket *b = &t->buckets[bucket_of(t, id)];
    hk_dht_node *n = find_in(b->nodes, b->n, id);
    if (!n || !same_addr(&n->addr, addr))
        return false;
    n->last_query = now;
    return true;
}

bool hk_dht_table_failed(hk_dht_table *t, const uint8_t id[20], const hk_addr *addr)
{
    hk_dht_bucket *b = &t->buckets[bucket_of(t, id)];
    hk_dht_node *n = find_in(b->nodes, b->n, id);
    if (!n || !same_addr(&n->addr, addr))
        return false;
    if (n->fails < UINT8_MAX)
        n->fails++;
    if (n->fails >= HK_DHT_BAD_FAILS && b->nrepl) {
        *n = b->repl[--b->nrepl]; /* the newest replacement */
    }
    return true;
}

void hk_dht_table_pinged(hk_dht_table *t, const uint8_t id[20], hk_time now)
{
    hk_dht_bucket *b = &t->buckets[bucket_of(t, id)];
    hk_dht_node *n = find_in(b->nodes, b->n, id);
    if (n)
        n->last_ping = now;
}

bool hk_dht_table_has_room(const hk_dht_table *t, const uint8_t id[20], hk_time now)
{
    if (memcmp(id, t->own, 20) == 0)
        return false;
    unsigned bi = bucket_of(t, id);
    const hk_dht_bucket *b = &t->buckets[bi];
    if (find_in((hk_dht_node *)b->nodes, b->n, id))
        return false;
    return b->n < HK_DHT_K || bad_index(b, now) >= 0 ||
           (bi == t->nbuckets - 1 && t->nbuckets < HK_DHT_MAX_BUCKETS);
}

/* Inserts n into out[0..*cnt) kept sorted by distance to target, at most max entries. */
static void keep_closest(const uint8_t target[20], hk_dht_node *out, size_t *cnt, size_t max, const hk_dht_node *n)
{
    size_t i = *cnt;
    if (i == max) {
        if (hk_dht_cmp_distance(target, n->id, out[max - 1].id) >= 0)
            return;
        i = max - 1;
    } else {
        (*cnt)++;
    }
    while (i > 0 && hk_dht_cmp_distance(target, n->id, out[i - 1].id) < 0) {
        out[i] = out[i - 1];
        i--;
    }
    out[i] = *n;
}

size_t hk_dht_table_closest(const hk_dht_table *t, const uint8_t target[20], hk_time now, hk_dht_node *out,
                            size_t max)
{
    size_t cnt = 0;
    if (max == 0)
        return 0;
    for (unsigned bi = 0; bi < t->nbuckets; bi++) {
        const hk_dht_bucket *b = &t->buckets[bi];
        for (unsigned i = 0; i < b->n; i++)
            if (hk_dht_node_liveness(&b->nodes[i], now) != HK_DHT_BAD)
                keep_closest(target, out, &cnt, max, &b->nodes[i]);
    }
    return cnt;
}

int hk_dht_table_stale_bucket(const hk_dht_table *t, hk_time now, hk_time age)
{
    int best = -1;
    for (unsigned bi = 0; bi < t->nbuckets; bi++) {
        hk_time c = t->buckets[bi].changed;
        if (now - c >= age && (best < 0 || c < t->buckets[best].changed))
            best = (int)bi;
    }
    return best;
}

void hk_dht_table_bucket_target(const hk_dht_table *t, unsigned b, const uint8_t rnd[20], uint8_t id[20])
{
    /* share b bits with our id, then differ at bit b (unless b is the last bucket, whose range includes ours) */
    memcpy(id, rnd, 20);
    for (unsigned bit = 0; bit < b && bit < 160; bit++) {
        uint8_t m = (uint8_t)(0x80 >> (bit % 8));
        id[bit / 8] = (uint8_t)((id[bit / 8] & ~m) | (t->own[bit / 8] & m));
    }
    if (b < t->nbuckets - 1 && b < 160) {
        uint8_t m = (uint8_t)(0x80 >> (b % 8));
        id[b / 8] = (uint8_t)((id[b / 8] & ~m) | (~t->own[b / 8] & m));
    }
}

void hk_dht_table_touch_bucket(hk_dht_table *t, unsigned b, hk_time now)
{
    if (b < t->nbuckets)
        t->buckets[b].changed = now;
}

void hk_dht_table_stats_get(const hk_dht_table *t, hk_time now, hk_dht_table_stats *s)
{
    memset(s, 0, sizeof *s);
    s->buckets = t->nbuckets;
    for (unsigned bi = 0; bi < t->nbuckets; bi++) {
        const hk_dht_bucket *b = &t->buckets[bi];
        s->nodes += b->n;
        s->replacements += b->nrepl;
        for (unsigned i = 0; i < b->n; i++) {
            hk_dht_liveness l = hk_dht_node_liveness(&b->nodes[i], now);
            s->good += l == HK_DHT_GOOD;
            s->questionable += l == HK_DHT_QUESTIONABLE;
            s->bad += l == HK_DHT_BAD;
        }
    }
}

void hk_dht_table_each(const hk_dht_table *t, bool (*f)(void *arg, const hk_dht_node *n), void *arg)
{
    for (unsigned bi = 0; bi < t->nbuckets; bi++)
        for (unsigned i = 0; i < t->buckets[bi].n; i++)
            if (!f(arg, &t->buckets[bi].nodes[i]))
                return;
}

size_t hk_dht_table_bytes(const hk_dht_table *t)
{
    return t->nbuckets * sizeof *t->buckets;
}
