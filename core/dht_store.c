/* dht_store: the DHT node's rotating token secrets, the bounded store of peers announced to it (announce_peer), and
 * the per-address rate limit on incoming queries (see dht.h). */
#include <string.h>

#include "dht_internal.h"
#include "hash.h"
#include "infohash.h"

/* A 64-bit key of an address (family, ip, no port): the rate table's and the per-node interval's. */
static uint64_t addr_key(const hk_addr *a, bool with_port)
{
    uint64_t hi = 0, lo = 0;
    memcpy(&hi, a->ip, 8);
    memcpy(&lo, a->ip + 8, 8);
    uint64_t k = hk_mix64(hi ^ hk_mix64(lo ^ a->family));
    return with_port ? hk_mix64(k ^ a->port) : k;
}

/* ---- Tokens: SHA-1(secret || ip), 8 bytes ---- */

void dht_token_make(const hk_dht *d, const hk_addr *a, unsigned which, uint8_t out[8])
{
    uint8_t buf[16 + 17], h[20];
    size_t n = a->family == 4 ? 4 : 16;
    memcpy(buf, d->secret[which], 16);
    buf[16] = a->family;
    memcpy(buf + 17, a->ip, n);
    if (!ih_sha1(buf, 17 + n, h))
        memset(h, 0, sizeof h);
    memcpy(out, h, 8);
}

bool dht_token_ok(const hk_dht *d, const hk_addr *a, const uint8_t *tok, size_t len)
{
    if (len != 8)
        return false;
    for (unsigned w = 0; w < 2; w++) {
        uint8_t t[8];
        dht_token_make(d, a, w, t);
        if (memcmp(t, tok, 8) == 0)
            return true;
    }
    return false;
}

void dht_token_rotate(hk_dht *d)
{
    memcpy(d->secret[1], d->secret[0], 16);
    dht_random(d, d->secret[0], 16);
}

/* ---- The announce_peer store ---- */

static const uint8_t *store_key(const void *owner, uint32_t rec)
{
    return ((const dht_store *)owner)->recs[rec].ih;
}

void dht_store_init(hk_dht *d)
{
    memset(&d->store, 0, sizeof d->store);
    d->store.free_head = UINT32_MAX;
    hk_ih_init(&d->store.index, &d->mem, 16, true, store_key, &d->store);
}

void dht_store_free(hk_dht *d)
{
    hk_ih_free(&d->store.index);
    hk_mem_free(&d->mem, d->store.recs, d->store.cap * sizeof *d->store.recs);
    d->store.recs = NULL;
    d->store.cap = 0;
}

static uint32_t store_new_rec(hk_dht *d, const uint8_t ih[20])
{
    dht_store *s = &d->store;
    uint32_t r;
    if (s->free_head != UINT32_MAX) {
        r = s->free_head;
        s->free_head = s->recs[r].next_free;
    } else {
        if (s->used == d->cfg.store_torrents)
            return UINT32_MAX;
        if (s->used == s->cap) {
            uint32_t ncap = s->cap ? s->cap * 2 : 16;
            if (ncap > d->cfg.store_torrents)
                ncap = d->cfg.store_torrents;
            dht_store_rec *n = hk_mem_realloc(&d->mem, s->recs, s->cap * sizeof *n, ncap * sizeof *n);
            if (!n)
                return UINT32_MAX;
            s->recs = n;
            s->cap = ncap;
        }
        r = s->used++;
    }
    memset(&s->recs[r], 0, sizeof s->recs[r]);
    memcpy(s->recs[r].ih, ih, 20);
    if (hk_ih_insert(&s->index, r) < 0) {
        s->recs[r].next_free = s->free_head;
        s->free_head = r;
        return UINT32_MAX;
    }
    s->live++;
    return r;
}

static void store_drop_rec(hk_dht *d, uint32_t r)
{
    dht_store *s = &d->store;
    hk_ih_remove(&s->index, s->recs[r].ih);
    s->recs[r].next_free = s->free_head;
    s->free_head = r;
    s->live--;
}

bool dht_store_put(hk_dht *d, const uint8_t ih[20], const hk_addr *peer, hk_time now)
{
    uint8_t c[18];
    size_t n = krpc_compact_addr(peer, c);
    if (!n)
        return false;
    uint32_t r = hk_ih_find(&d->store.index, ih);
    if (r == HK_IH_NONE && (r = store_new_rec(d, ih)) == UINT32_MAX)
        return false;
    dht_store_rec *rec = &d->store.recs[r];
    unsigned slot = 0;
    for (unsigned i = 0; i < HK_DHT_STORE_PEERS; i++) {
        dht_store_peer *p = &rec->peers[i];
        if (p->len == n && memcmp(p->compact, c, n) == 0) {
            slot = i;
            break;
        }
        if (!p->len || p->expires <= now) {
            slot = i;
            continue;
        }
        if (rec->peers[slot].len && rec->peers[slot].expires > now && p->expires < rec->peers[slot].expires)
            slot = i;   /* the oldest goes */
    }
    dht_store_peer *p = &rec->peers[slot];
    memcpy(p->compact, c, n);
    p->len = (uint8_t)n;
    p->expires = now + d->cfg.store_ttl;
    return true;
}

uint16_t dht_store_get(hk_dht *d, const uint8_t ih[20], uint8_t len, hk_time now, uint8_t *out, uint16_t max)
{
    uint32_t r = hk_ih_find(&d->store.index, ih);
    if (r == HK_IH_NONE)
        return 0;
    uint16_t k = 0;
    const dht_store_rec *rec = &d->store.recs[r];
    for (unsigned i = 0; i < HK_DHT_STORE_PEERS && k < max; i++) {
        const dht_store_peer *p = &rec->peers[i];
        if (p->len == len && p->expires > now)
            memcpy(out + (size_t)k++ * len, p->compact, len);
    }
    return k;
}

void dht_store_sweep(hk_dht *d, hk_time now, uint32_t budget)
{
    dht_store *s = &d->store;
    for (uint32_t k = 0; k < budget && s->used; k++) {
        uint32_t r = s->sweep++ % s->used;
        dht_store_rec *rec = &s->recs[r];
        if (hk_ih_find(&s->index, rec->ih) != r)
            continue;   /* a free record */
        bool any = false;
        for (unsigned i = 0; i < HK_DHT_STORE_PEERS; i++) {
            if (rec->peers[i].len && rec->peers[i].expires <= now)
                rec->peers[i].len = 0;
            any |= rec->peers[i].len != 0;
        }
        if (!any)
            store_drop_rec(d, r);
    }
}

/* ---- Incoming rate per address: a hashed table of one-second windows ---- */

bool dht_rate_admit(hk_dht *d, const hk_addr *from, hk_time now)
{
    uint64_t k = addr_key(from, false);
    dht_rate_slot *s = &d->in_rate[k % DHT_RATE_SLOTS];
    uint32_t key = (uint32_t)(k >> 32);
    if (s->key != key || now - s->window >= HK_NS_PER_SEC || now < s->window) {
        s->key = key;
        s->window = now;
        s->count = 0;
    }
    if (s->count >= d->cfg.in_rate_per_addr)
        return false;
    s->count++;
    return true;
}

/* The per-node interval of outgoing queries (used by dht_rpc.c through this helper). */
bool dht_sent_recently(hk_dht *d, const hk_addr *to, hk_time now);
bool dht_sent_recently(hk_dht *d, const hk_addr *to, hk_time now)
{
    hk_time *t = &d->sent_at[addr_key(to, true) % DHT_SENT_SLOTS];
    if (*t && now - *t < d->cfg.per_node_interval && now >= *t)
        return true;
    *t = now ? now : 1;
    return false;
}
