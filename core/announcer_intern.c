/* announcer_intern: owns the interned records of the announcer: tracker hosts (by lower-cased name), trackers (by
 * URL, with their health: unresponsive, probing, rate-limited log lines), tier lists (by content) and the UDP
 * transaction ids (see announcer_internal.h). */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "announcer_internal.h"
#include "hash.h"

#define LOG_EVERY HK_SECONDS(60)

/* ---------------- hash chains ---------------- */

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* FNV-1a of the lower-cased bytes. */
static uint32_t fnv_ci(const void *p, size_t n)
{
    const char *b = p;
    uint32_t h = HK_FNV1A32_INIT;
    for (size_t i = 0; i < n; i++)
        h = hk_fnv1a32_u32(h, (uint8_t)lower(b[i]));
    return h;
}

static bool eq_ci(const char *x, const char *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(x[i]) != lower(y[i]))
            return false;
    return true;
}

/* Record rec's chain link, with its hash in *hash; NULL for a free record (a record being released is not free
 * yet: it is unlinked before its storage goes). */
typedef uint32_t *(*chain_link_fn)(hk_announcer *a, uint32_t rec, uint32_t *hash);

typedef struct chain {
    uint32_t **buckets;
    uint32_t *nb;
    uint32_t nrecs;      /* records [0, nrecs) */
    chain_link_fn link;
} chain;

static uint32_t *host_link(hk_announcer *a, uint32_t rec, uint32_t *hash)
{
    *hash = a->hosts[rec].hash;
    return a->hosts[rec].name ? &a->hosts[rec].next : NULL;
}

static uint32_t *tracker_link(hk_announcer *a, uint32_t rec, uint32_t *hash)
{
    an_tracker *t = a->trackers[rec];
    if (!t)
        return NULL;
    *hash = fnv_ci(t->url, t->url_len);
    return &t->next;
}

static uint32_t *set_link(hk_announcer *a, uint32_t rec, uint32_t *hash)
{
    *hash = a->sets[rec].hash;
    return a->sets[rec].start ? &a->sets[rec].next : NULL; /* start is NULL exactly for a free record */
}

static chain host_chain(hk_announcer *a)
{
    return (chain){ &a->host_buckets, &a->host_nb, a->nhosts, host_link };
}

static chain tracker_chain(hk_announcer *a)
{
    return (chain){ &a->tr_buckets, &a->tr_nb, a->ntrackers, tracker_link };
}

static chain set_chain(hk_announcer *a)
{
    return (chain){ &a->set_buckets, &a->set_nb, a->nsets, set_link };
}

/* Doubles the bucket array when count reaches half of it (64 at first); on failure it stays as it is. */
static void rehash(hk_announcer *a, uint32_t **buckets, uint32_t *nb, uint32_t count)
{
    if (count * 2 < *nb)
        return;
    uint32_t nnb = *nb ? *nb * 2 : 64;
    uint32_t *nbk = hk_mem_alloc(&a->mem, (size_t)nnb * sizeof *nbk);
    if (!nbk)
        return;
    for (uint32_t i = 0; i < nnb; i++)
        nbk[i] = AN_NONE;
    hk_mem_free(&a->mem, *buckets, (size_t)*nb * sizeof **buckets);
    *buckets = nbk;
    *nb = nnb;
}

/* Links the new record rec (hash h; `live` records now, it included), growing and relinking the table first when
 * it is half full. */
static void chain_add(hk_announcer *a, chain c, uint32_t live, uint32_t rec, uint32_t h)
{
    uint32_t old_nb = *c.nb;
    rehash(a, c.buckets, c.nb, live);
    uint32_t mask = *c.nb - 1, x;
    if (*c.nb == old_nb) {
        uint32_t *next = c.link(a, rec, &x);
        *next = (*c.buckets)[h & mask];
        (*c.buckets)[h & mask] = rec;
        return;
    }
    for (uint32_t i = 0; i < c.nrecs; i++) {
        uint32_t *next = c.link(a, i, &x);
        if (!next)
            continue;
        *next = (*c.buckets)[x & mask];
        (*c.buckets)[x & mask] = i;
    }
}

static void chain_remove(hk_announcer *a, chain c, uint32_t rec)
{
    uint32_t h;
    uint32_t next = *c.link(a, rec, &h);
    uint32_t *pp = &(*c.buckets)[h & (*c.nb - 1)];
    while (*pp != rec) {
        assert(*pp != AN_NONE); /* rec is in its chain */
        pp = c.link(a, *pp, &(uint32_t){ 0 });
    }
    *pp = next;
}

void an_intern_free(hk_announcer *a)
{
    for (uint32_t i = 0; i < a->ntrackers; i++)
        if (a->trackers[i])
            hk_mem_free(&a->mem, a->trackers[i], sizeof(an_tracker) + a->trackers[i]->url_len + 1);
    hk_mem_free(&a->mem, a->trackers, (size_t)a->captrackers * sizeof *a->trackers);
    hk_mem_free(&a->mem, a->tracker_gen, (size_t)a->captrackers * sizeof *a->tracker_gen);
    hk_mem_free(&a->mem, a->tracker_free, (size_t)a->captrackers * sizeof *a->tracker_free);
    hk_mem_free(&a->mem, a->tr_buckets, (size_t)a->tr_nb * sizeof *a->tr_buckets);
    for (uint32_t i = 0; i < a->nhosts; i++)
        if (a->hosts[i].name)
            hk_mem_free(&a->mem, a->hosts[i].name, a->hosts[i].name_len + 1);
    hk_mem_free(&a->mem, a->hosts, (size_t)a->caphosts * sizeof *a->hosts);
    hk_mem_free(&a->mem, a->host_buckets, (size_t)a->host_nb * sizeof *a->host_buckets);
    for (uint32_t i = 0; i < a->nsets; i++)
        if (a->sets[i].start)
            hk_mem_free(&a->mem, a->sets[i].start,
                        (size_t)(a->sets[i].ntiers + 1 + a->sets[i].ntrackers) * sizeof(uint32_t));
    hk_mem_free(&a->mem, a->sets, (size_t)a->capsets * sizeof *a->sets);
    hk_mem_free(&a->mem, a->set_buckets, (size_t)a->set_nb * sizeof *a->set_buckets);
    hk_mem_free(&a->mem, a->tids, (size_t)a->tid_cap * sizeof *a->tids);
}

/* ---------------- hosts ---------------- */

static uint32_t host_find(hk_announcer *a, const char *name, size_t len, uint32_t h)
{
    if (!a->host_nb)
        return AN_NONE;
    for (uint32_t i = a->host_buckets[h & (a->host_nb - 1)]; i != AN_NONE; i = a->hosts[i].next) {
        const an_host *x = &a->hosts[i];
        if (x->hash == h && x->name_len == len && eq_ci(x->name, name, len))
            return i;
    }
    return AN_NONE;
}

static uint32_t host_intern(hk_announcer *a, const char *name, size_t len)
{
    uint32_t h = fnv_ci(name, len);
    uint32_t idx = host_find(a, name, len, h);
    if (idx != AN_NONE) {
        a->hosts[idx].refs++;
        return idx;
    }
    idx = a->free_host;
    if (idx == AN_NONE) {
        if (!an_grow(a, (void **)&a->hosts, &a->caphosts, sizeof *a->hosts, a->nhosts + 1))
            return AN_NONE;
        idx = a->nhosts++;
    } else {
        a->free_host = a->hosts[idx].next;
    }
    char *copy = hk_mem_alloc(&a->mem, len + 1);
    if (!copy) {
        a->hosts[idx].name = NULL;
        a->hosts[idx].next = a->free_host;
        a->free_host = idx;
        return AN_NONE;
    }
    for (size_t i = 0; i < len; i++)
        copy[i] = lower(name[i]);
    copy[len] = '\0';
    an_host *x = &a->hosts[idx];
    memset(x, 0, sizeof *x);
    x->name = copy;
    x->name_len = len;
    x->refs = 1;
    x->hash = h;
    x->head = x->tail = AN_NONE;
    x->interval_s = (uint32_t)(a->cfg.default_interval / HK_NS_PER_SEC);
    a->live_hosts++;
    chain_add(a, host_chain(a), a->live_hosts, idx, h);
    return idx;
}

static void host_unref(hk_announcer *a, uint32_t idx)
{
    an_host *x = &a->hosts[idx];
    assert(x->name && x->refs > 0);
    if (--x->refs > 0)
        return;
    chain_remove(a, host_chain(a), idx);
    hk_mem_free(&a->mem, x->name, x->name_len + 1);
    x->name = NULL;
    x->next = a->free_host;
    a->free_host = idx;
    a->live_hosts--;
}

void an_hosts_load(hk_announcer *a, uint32_t set, int delta)
{
    const an_tierset *ts = &a->sets[set];
    for (uint32_t t = 0; t < ts->ntiers; t++) {
        for (uint32_t k = ts->start[t]; k < ts->start[t + 1]; k++) {
            uint32_t h = a->trackers[ts->trackers[k]]->host;
            bool seen = false;
            for (uint32_t j = ts->start[t]; j < k && !seen; j++)
                seen = a->trackers[ts->trackers[j]]->host == h;
            if (!seen)
                a->hosts[h].slots = (uint32_t)((int64_t)a->hosts[h].slots + delta);
        }
    }
}

/* ---------------- trackers ---------------- */

uint32_t an_tracker_find(const hk_announcer *a, const char *url, size_t len)
{
    if (!a->tr_nb)
        return AN_NONE;
    uint32_t h = fnv_ci(url, len);
    for (uint32_t i = a->tr_buckets[h & (a->tr_nb - 1)]; i != AN_NONE; i = a->trackers[i]->next) {
        const an_tracker *t = a->trackers[i];
        if (t->url_len == len && memcmp(t->url, url, len) == 0)
            return i;
    }
    return AN_NONE;
}

/* Parses url and checks that this backend can announce to it; false with err set. */
static bool tracker_usable(const hk_announcer *a, const char *url, hk_tracker_url *u, char *err, size_t errlen)
{
    if (hk_tracker_url_parse(url, u, err, errlen) != 0)
        return false;
    if (u->scheme == HK_TRACKER_UDP && (!a->rt.udp_send || !a->rt.resolve)) {
        snprintf(err, errlen, "UDP trackers are not available in this backend");
        return false;
    }
    if (u->scheme != HK_TRACKER_UDP && !a->rt.http_get) {
        snprintf(err, errlen, "HTTP trackers are not available in this backend");
        return false;
    }
    return true;
}

/* A new tracker record for url (len bytes, parsed as u), with one reference; AN_NONE without memory. */
static uint32_t tracker_create(hk_announcer *a, const char *url, size_t len, const hk_tracker_url *u)
{
    if (a->ntracker_free == 0 && !an_table_grow(a, (void ***)&a->trackers, &a->tracker_gen, &a->tracker_free,
                                                &a->captrackers, a->ntrackers))
        return AN_NONE;
    size_t size = sizeof(an_tracker) + len + 1;
    an_tracker *t = hk_mem_alloc(&a->mem, size);
    if (!t)
        return AN_NONE;
    memset(t, 0, sizeof *t);
    memcpy(t->url, url, len + 1);
    t->url_len = len;
    t->u = *u;
    t->host = host_intern(a, url + u->host_off, u->host_len);
    if (t->host == AN_NONE) {
        hk_mem_free(&a->mem, t, size);
        return AN_NONE;
    }
    uint32_t idx = a->ntracker_free ? a->tracker_free[--a->ntracker_free] : a->ntrackers++;
    hk_deadline_init(&t->dl);
    hk_udp_conn_init(&t->udp);
    t->idx = idx;
    t->gen = ++a->tracker_gen[idx];
    t->refs = 1;
    t->wait_head = t->wait_tail = AN_NONE;
    t->last_heard = 0;
    t->probe_after = 0;
    a->trackers[idx] = t;
    a->live_trackers++;
    chain_add(a, tracker_chain(a), a->live_trackers, idx, fnv_ci(url, len));
    return idx;
}

uint32_t an_tracker_intern(hk_announcer *a, const char *url, char *err, size_t errlen)
{
    err[0] = '\0';
    size_t len = strnlen(url, MI_MAX_URL + 1);
    if (len > MI_MAX_URL) {
        snprintf(err, errlen, "URL longer than %u bytes", MI_MAX_URL);
        return AN_NONE;
    }
    uint32_t idx = an_tracker_find(a, url, len);
    if (idx != AN_NONE) {
        a->trackers[idx]->refs++;
        return idx;
    }
    hk_tracker_url u;
    if (!tracker_usable(a, url, &u, err, errlen))
        return AN_NONE;
    return tracker_create(a, url, len, &u);
}

void an_tracker_unref(hk_announcer *a, uint32_t idx)
{
    assert(idx < a->ntrackers);
    an_tracker *t = a->trackers[idx];
    assert(t && t->refs > 0);
    if (--t->refs > 0)
        return;
    hk_dl_cancel(&a->tracker_heap, &t->dl);
    if (t->udp.state == HK_UDP_CONN_CONNECTING)
        an_tid_remove(a, t->udp.tid);
    chain_remove(a, tracker_chain(a), idx);
    host_unref(a, t->host);
    hk_mem_free(&a->mem, t, sizeof(an_tracker) + t->url_len + 1);
    a->trackers[idx] = NULL;
    a->tracker_gen[idx]++;
    a->tracker_free[a->ntracker_free++] = idx;
    a->live_trackers--;
}

void an_tracker_host(const an_tracker *t, char *buf)
{
    memcpy(buf, t->url + t->u.host_off, t->u.host_len);
    buf[t->u.host_len] = '\0';
}

/* ---------------- tracker health ---------------- */

void an_tracker_note(hk_announcer *a, an_tracker *t, hk_time now, const char *what, const char *detail)
{
    const char *sep = detail[0] ? ": " : "";
    if (now >= t->log_after) {
        if (t->log_suppressed)
            an_log(a, HK_LOG_WARN, "tracker %s: %s%s%s (%u similar messages in the last minute)", t->url, what, sep,
                   detail, t->log_suppressed);
        else
            an_log(a, HK_LOG_WARN, "tracker %s: %s%s%s", t->url, what, sep, detail);
        t->log_after = now + LOG_EVERY;
        t->log_suppressed = 0;
    } else {
        t->log_suppressed++;
        an_log(a, HK_LOG_DEBUG, "tracker %s: %s%s%s", t->url, what, sep, detail);
    }
}

void an_mark_unresponsive(hk_announcer *a, an_tracker *t, hk_time now)
{
    if (t->unresponsive)
        return;
    t->unresponsive = 1;
    t->probe_after = now;
    an_log(a, HK_LOG_WARN, "tracker %s is not answering: announces to it are held back and it is probed", t->url);
}

void an_mark_heard(hk_announcer *a, an_tracker *t, hk_time now)
{
    t->last_heard = now;
    if (t->unresponsive)
        an_log(a, HK_LOG_INFO, "tracker %s answers again", t->url);
    t->unresponsive = 0;
    t->probe_fails = 0;
}

bool an_gate_open(const an_tracker *t, hk_time now)
{
    return !t->unresponsive || (!t->probe_busy && now >= t->probe_after);
}

/* ---------------- tier lists ---------------- */

static uint32_t set_hash(const uint32_t *start, uint32_t ntiers, const uint32_t *trackers, uint32_t n)
{
    uint32_t h = HK_FNV1A32_INIT;
    for (uint32_t i = 0; i <= ntiers; i++)
        h = hk_fnv1a32_u32(h, start[i]);
    for (uint32_t i = 0; i < n; i++)
        h = hk_fnv1a32_u32(h, trackers[i]);
    return h;
}

static uint32_t set_find(const hk_announcer *a, const uint32_t *start, uint32_t ntiers, const uint32_t *trackers,
                         uint32_t n, uint32_t h)
{
    if (!a->set_nb)
        return AN_NONE;
    for (uint32_t i = a->set_buckets[h & (a->set_nb - 1)]; i != AN_NONE; i = a->sets[i].next) {
        const an_tierset *s = &a->sets[i];
        if (s->hash == h && s->ntiers == ntiers && s->ntrackers == n &&
            memcmp(s->start, start, (ntiers + 1) * sizeof *start) == 0 &&
            memcmp(s->trackers, trackers, n * sizeof *trackers) == 0)
            return i;
    }
    return AN_NONE;
}

uint32_t an_set_intern(hk_announcer *a, const uint32_t *start, uint32_t ntiers, const uint32_t *trackers,
                       uint32_t n)
{
    uint32_t h = set_hash(start, ntiers, trackers, n);
    uint32_t idx = set_find(a, start, ntiers, trackers, n, h);
    if (idx != AN_NONE) {
        a->sets[idx].refs++;
        for (uint32_t k = 0; k < n; k++)
            an_tracker_unref(a, trackers[k]);
        return idx;
    }
    idx = a->free_set;
    if (idx == AN_NONE) {
        if (!an_grow(a, (void **)&a->sets, &a->capsets, sizeof *a->sets, a->nsets + 1))
            return AN_NONE;
        idx = a->nsets;
    }
    uint32_t *data = hk_mem_alloc(&a->mem, (size_t)(ntiers + 1 + n) * sizeof *data);
    if (!data)
        return AN_NONE;
    if (idx == a->nsets)
        a->nsets++;
    else
        a->free_set = a->sets[idx].next;
    an_tierset *s = &a->sets[idx];
    s->refs = 1;
    s->hash = h;
    s->ntiers = ntiers;
    s->ntrackers = n;
    s->start = data;
    s->trackers = data + ntiers + 1;
    memcpy(s->start, start, (ntiers + 1) * sizeof *start);
    memcpy(s->trackers, trackers, n * sizeof *trackers);
    a->live_sets++;
    chain_add(a, set_chain(a), a->live_sets, idx, h);
    return idx;
}

void an_set_unref(hk_announcer *a, uint32_t idx)
{
    an_tierset *s = &a->sets[idx];
    assert(idx < a->nsets && s->refs > 0);
    if (--s->refs > 0)
        return;
    chain_remove(a, set_chain(a), idx);
    for (uint32_t k = 0; k < s->ntrackers; k++)
        an_tracker_unref(a, s->trackers[k]);
    hk_mem_free(&a->mem, s->start, (size_t)(s->ntiers + 1 + s->ntrackers) * sizeof *s->start);
    s->start = s->trackers = NULL;
    s->next = a->free_set;
    a->free_set = idx;
    a->live_sets--;
}

/* ---------------- transaction ids ---------------- */

static uint32_t tid_home(const hk_announcer *a, uint32_t tid)
{
    return (tid * 2654435761u) & (a->tid_cap - 1);
}

static uint32_t tid_slot(const hk_announcer *a, uint32_t tid)
{
    uint32_t m = a->tid_cap - 1;
    uint32_t i = tid_home(a, tid);
    while (a->tids[i].val != AN_NONE && a->tids[i].tid != tid)
        i = (i + 1) & m;
    return i;
}

uint32_t an_tid_lookup(const hk_announcer *a, uint32_t tid)
{
    if (!a->tid_cap)
        return AN_NONE;
    return a->tids[tid_slot(a, tid)].val;
}

/* Room for one more id (at most half full); false when it cannot grow and is that full already. */
static bool tid_reserve(hk_announcer *a)
{
    if ((a->tid_len + 1) * 2 <= a->tid_cap)
        return true;
    uint32_t ncap = a->tid_cap ? a->tid_cap * 2 : 64;
    tid_entry *n = hk_mem_alloc(&a->mem, (size_t)ncap * sizeof *n);
    if (!n)
        return a->tid_len + 1 < a->tid_cap;
    tid_entry *old = a->tids;
    uint32_t oldcap = a->tid_cap;
    a->tids = n;
    a->tid_cap = ncap;
    for (uint32_t i = 0; i < ncap; i++)
        n[i].val = AN_NONE;
    for (uint32_t i = 0; i < oldcap; i++)
        if (old[i].val != AN_NONE)
            n[tid_slot(a, old[i].tid)] = old[i];
    hk_mem_free(&a->mem, old, (size_t)oldcap * sizeof *old);
    return true;
}

bool an_tid_new(hk_announcer *a, uint32_t val, uint32_t *out)
{
    if (!tid_reserve(a))
        return false;
    uint32_t tid;
    do
        tid = (uint32_t)an_rand64(a);
    while (an_tid_lookup(a, tid) != AN_NONE);
    uint32_t i = tid_slot(a, tid);
    a->tids[i].tid = tid;
    a->tids[i].val = val;
    a->tid_len++;
    *out = tid;
    return true;
}

void an_tid_remove(hk_announcer *a, uint32_t tid)
{
    if (!a->tid_cap)
        return;
    uint32_t m = a->tid_cap - 1;
    uint32_t i = tid_slot(a, tid);
    if (a->tids[i].val == AN_NONE)
        return;
    a->tids[i].val = AN_NONE;
    a->tid_len--;
    /* backward-shift deletion */
    for (uint32_t j = (i + 1) & m; a->tids[j].val != AN_NONE; j = (j + 1) & m) {
        uint32_t home = tid_home(a, a->tids[j].tid);
        if (((j - home) & m) >= ((j - i) & m)) {
            a->tids[i] = a->tids[j];
            a->tids[j].val = AN_NONE;
            i = j;
        }
    }
}
