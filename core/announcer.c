/* announcer: owns the announce schedule of every (torrent, tier), the interned trackers, hosts and tier lists, the
 * requests under way (HTTP and BEP 15 UDP) and their per-host caps (see announcer.h). */
#include "announcer.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deadline.h"
#include "mem.h"
#include "tracker_udp.h"

#define NONE UINT32_MAX
#define URL_BUF 4096u
#define STOP_BATCH 4096u        /* `stopped` requests created ahead during shutdown */
#define LOG_EVERY HK_SECONDS(60)
#define MAX_ADDRS 4u

/* ---------------- records ---------------- */

enum slot_state { SLOT_FREE = 0, SLOT_IDLE = HK_SLOT_IDLE, SLOT_QUEUED = HK_SLOT_QUEUED, SLOT_BUSY = HK_SLOT_BUSY };
enum slot_flags {
    SLOT_REGISTERED = 1u << 0,
    SLOT_PACED = 1u << 1,   /* holds a pacer token: goes when due */
    SLOT_LATE = 1u << 2,    /* went later than its schedule (failures, pacer): its next time is re-drawn */
};

typedef struct an_slot {
    uint64_t order;      /* nibble k: index in the tier of the k-th tracker to try */
    uint32_t link;       /* QUEUED: heap position; BUSY: request index; FREE: next free run */
    uint32_t torrent;
    uint8_t tier;
    uint8_t pos;         /* order position of the tracker in use */
    uint8_t fails;       /* failed rounds in a row: the backoff exponent */
    uint8_t tried;       /* trackers of the tier tried since the last answer or backoff */
    uint8_t state;
    uint8_t flags;
} an_slot;               /* 24 bytes; its due time lives in the heap entry */

typedef struct an_hent {
    hk_time due;
    uint32_t slot;
} an_hent;               /* the heap holds due times itself: sifting touches only the heap array */

enum torrent_flags { TOR_LIVE = 1u << 0, TOR_PENDING = 1u << 1 };

typedef struct an_torrent {
    uint8_t ih[20];
    uint32_t tierset;    /* FREE: next free torrent */
    uint32_t first_slot;
    uint8_t ntiers;
    uint8_t active_tier; /* without all_tiers: the tier in use */
    uint8_t flags;
} an_torrent;

typedef struct an_tierset {
    uint32_t refs;
    uint32_t hash;
    uint32_t next;       /* hash chain, or free list */
    uint32_t ntiers, ntrackers;
    uint32_t *start;     /* ntiers + 1 offsets into trackers */
    uint32_t *trackers;
} an_tierset;

typedef struct an_tracker {
    hk_deadline dl;      /* UDP: connect retransmission */
    hk_udp_conn udp;
    hk_time probe_after;
    hk_time last_heard;
    hk_time log_after;
    uint32_t log_suppressed;
    uint32_t idx, gen, refs, host, next;
    uint32_t wait_head, wait_tail;   /* UDP: requests waiting for a connection id */
    hk_tracker_url u;
    uint8_t unresponsive, probe_busy, probe_fails, resolving, naddr, cur_addr, tracker_id_len;
    hk_addr addr[MAX_ADDRS];
    uint8_t tracker_id[HK_TRACKER_ID_MAX];
    size_t url_len;
    char url[];
} an_tracker;

typedef struct an_host {
    char *name;
    size_t name_len;
    uint32_t refs, hash, next;
    uint32_t inflight;
    uint32_t head, tail, waiting;    /* FIFO of requests over the cap */
    bool pumping;
    uint32_t slots;                  /* (torrent, tier) slots with a tracker on this host: its steady load */
    uint32_t interval_s;             /* the last interval a tracker of this host gave (seconds) */
    hk_time pace_next;               /* the pacer's virtual clock: when the next announce may go */
} an_host;

enum req_state { REQ_NEW = 0, REQ_WAIT_HOST, REQ_RESOLVE, REQ_WAIT_CONN, REQ_SENT };
enum req_flags { REQ_PROBE = 1u << 0, REQ_COUNTED = 1u << 1, REQ_TID = 1u << 2, REQ_ABANDONED = 1u << 3 };

typedef struct an_req {
    hk_deadline dl;      /* UDP retransmission, or expiry of a `stopped` */
    hk_time sent_at;     /* last transmission */
    hk_time expires;     /* HK_TIME_NEVER for regular announces */
    uint64_t uploaded;
    uint32_t idx, gen;
    uint32_t slot;       /* NONE: its torrent is gone */
    uint32_t tracker;
    uint32_t next;
    uint32_t tid;
    uint8_t ih[20];
    uint8_t event, state, attempt, flags;
} an_req;

typedef enum outcome {
    OUT_OK = 0,
    OUT_REFUSED,         /* failure reason / UDP error: the tracker answered no */
    OUT_BAD_REPLY,       /* answered, but not a valid announce reply (or an HTTP 4xx) */
    OUT_DOWN,            /* no answer, transport error, HTTP 5xx */
    OUT_SKIPPED,         /* not sent: tracker unresponsive */
    OUT_ABANDONED,       /* a `stopped` given up (deadline, removal) */
    OUT_CANCELLED,       /* a regular announce dropped at shutdown */
} outcome;

typedef struct tid_entry {
    uint32_t tid;
    uint32_t val;        /* request index, or tracker index | TID_TRACKER; NONE: empty */
} tid_entry;
#define TID_TRACKER 0x80000000u

struct hk_announcer {
    hk_announcer_config cfg;
    hk_runtime rt;
    hk_uploaded_fn uploaded;
    void *uploaded_arg;
    hk_mem mem;
    hk_log_level log_max;
    uint32_t key;
    uint8_t rnd[64];
    uint32_t rnd_left;

    an_slot *slots;
    uint32_t nslots, capslots;           /* slots [0, nslots) ever used */
    uint32_t free_runs[HK_ANN_MAX_TIERS + 1];
    uint32_t live_slots;

    an_hent *heap;
    uint32_t heap_len, heap_cap;

    an_torrent *torrents;
    uint32_t ntorrents, captorrents, free_torrent, live_torrents;
    uint32_t *ih_table;                  /* open addressing: torrent index or NONE */
    uint32_t ih_cap;

    uint32_t *pending;                   /* torrents added since the last wake-up */
    uint32_t npending, cappending;

    an_tierset *sets;
    uint32_t nsets, capsets, free_set, live_sets;
    uint32_t *set_buckets;
    uint32_t set_nb;

    an_tracker **trackers;               /* NULL: free index */
    uint32_t ntrackers, captrackers, live_trackers;
    uint32_t *tracker_gen;               /* captrackers entries each */
    uint32_t *tracker_free;
    uint32_t ntracker_free;
    uint32_t *tr_buckets;
    uint32_t tr_nb;

    an_host *hosts;
    uint32_t nhosts, caphosts, free_host, live_hosts;
    uint32_t *host_buckets;
    uint32_t host_nb;

    an_req **reqs;                       /* NULL: free index */
    uint32_t *req_gen;                   /* capreqs entries each */
    uint32_t *req_free;
    uint32_t nreqs, capreqs, nreq_free, live_reqs;

    tid_entry *tids;
    uint32_t tid_cap, tid_len;

    hk_deadline_heap req_heap, tracker_heap;
    hk_time wake_asked;

    bool shutting;
    bool finished;
    bool hold;                           /* host_pump does nothing (while requests are being cancelled) */
    hk_time stop_deadline;
    uint32_t stop_cursor;

    hk_announcer_stats st;
};

/* ---------------- small helpers ---------------- */

static void an_log(hk_announcer *a, hk_log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void an_log(hk_announcer *a, hk_log_level level, const char *fmt, ...)
{
    if (level > a->log_max || !a->rt.log)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    a->rt.log(a->rt.ctx, level, line);
}

static hk_time now_of(hk_announcer *a)
{
    return a->rt.now(a->rt.ctx);
}

static uint64_t rand64(hk_announcer *a)
{
    if (a->rnd_left < 8) {
        a->rt.random_bytes(a->rt.ctx, a->rnd, sizeof a->rnd);
        a->rnd_left = sizeof a->rnd;
    }
    uint64_t v;
    memcpy(&v, a->rnd + sizeof a->rnd - a->rnd_left, 8);
    a->rnd_left -= 8;
    return v;
}

/* Uniform in [0, n) (n > 0); the bias of a 64-bit modulo is below 2^-40 for the ranges used here. */
static uint64_t rand_below(hk_announcer *a, uint64_t n)
{
    return n ? rand64(a) % n : 0;
}

static uint32_t fnv(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = b[i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        h = (h ^ c) * 16777619u;
    }
    return h;
}

static bool grow(hk_announcer *a, void **p, uint32_t *cap, size_t elem, uint32_t need)
{
    if (need <= *cap)
        return true;
    uint32_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > UINT32_MAX / 2)
            return false;
        ncap *= 2;
    }
    void *n = hk_mem_realloc(&a->mem, *p, (size_t)*cap * elem, (size_t)ncap * elem);
    if (!n)
        return false;
    *p = n;
    *cap = ncap;
    return true;
}

static hk_time clamp_time(hk_time v, hk_time lo, hk_time hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* ---------------- the slot heap ---------------- */

static bool hent_before(const an_hent *x, const an_hent *y)
{
    return x->due < y->due || (x->due == y->due && x->slot < y->slot);
}

static void heap_place(hk_announcer *a, uint32_t i, an_hent e)
{
    a->heap[i] = e;
    a->slots[e.slot].link = i;
}

static void heap_up(hk_announcer *a, uint32_t i)
{
    an_hent e = a->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!hent_before(&e, &a->heap[p]))
            break;
        heap_place(a, i, a->heap[p]);
        i = p;
    }
    heap_place(a, i, e);
}

static void heap_down(hk_announcer *a, uint32_t i)
{
    an_hent e = a->heap[i];
    for (;;) {
        uint32_t l = 2 * i + 1, best = i;
        const an_hent *b = &e;
        if (l < a->heap_len && hent_before(&a->heap[l], b)) {
            best = l;
            b = &a->heap[l];
        }
        if (l + 1 < a->heap_len && hent_before(&a->heap[l + 1], b))
            best = l + 1;
        if (best == i)
            break;
        heap_place(a, i, a->heap[best]);
        i = best;
    }
    heap_place(a, i, e);
}

static void heap_remove(hk_announcer *a, uint32_t s)
{
    uint32_t i = a->slots[s].link;
    an_hent last = a->heap[--a->heap_len];
    if (i < a->heap_len) {
        heap_place(a, i, last);
        heap_up(a, i);
        heap_down(a, a->slots[last.slot].link);
    }
    a->slots[s].link = NONE;
}

static hk_time slot_due(const hk_announcer *a, uint32_t s)
{
    return a->slots[s].state == SLOT_QUEUED ? a->heap[a->slots[s].link].due : HK_TIME_NEVER;
}

/* Heap capacity is reserved when slots are allocated, so queuing never fails. */
static void slot_schedule(hk_announcer *a, uint32_t s, hk_time when)
{
    an_slot *sl = &a->slots[s];
    if (sl->state == SLOT_QUEUED) {
        uint32_t i = sl->link;
        a->heap[i].due = when;
        heap_up(a, i);
        heap_down(a, a->slots[s].link);
        return;
    }
    sl->state = SLOT_QUEUED;
    heap_place(a, a->heap_len++, (an_hent){ when, s });
    heap_up(a, a->heap_len - 1);
}

static void slot_unqueue(hk_announcer *a, uint32_t s)
{
    if (a->slots[s].state == SLOT_QUEUED)
        heap_remove(a, s);
    a->slots[s].state = SLOT_IDLE;
    a->slots[s].link = NONE;
}

/* ---------------- tier order ---------------- */

static unsigned nib(uint64_t order, unsigned k)
{
    return (unsigned)(order >> (4 * k)) & 15u;
}

static uint64_t set_nib(uint64_t order, unsigned k, unsigned v)
{
    return (order & ~(15ull << (4 * k))) | ((uint64_t)v << (4 * k));
}

static uint64_t shuffled_order(hk_announcer *a, unsigned n)
{
    uint64_t o = 0;
    for (unsigned k = 0; k < n; k++)
        o = set_nib(o, k, k);
    for (unsigned k = n; k > 1; k--) { /* Fisher-Yates */
        unsigned j = (unsigned)rand_below(a, k);
        unsigned x = nib(o, k - 1), y = nib(o, j);
        o = set_nib(set_nib(o, k - 1, y), j, x);
    }
    return o;
}

/* The tracker at position pos moves to the front; the others keep their order. */
static uint64_t move_to_front(uint64_t o, unsigned pos)
{
    unsigned v = nib(o, pos);
    for (unsigned k = pos; k > 0; k--)
        o = set_nib(o, k, nib(o, k - 1));
    return set_nib(o, 0, v);
}

static const an_tierset *slot_set(const hk_announcer *a, uint32_t s)
{
    return &a->sets[a->torrents[a->slots[s].torrent].tierset];
}

static unsigned tier_size(const hk_announcer *a, uint32_t s)
{
    const an_tierset *set = slot_set(a, s);
    unsigned t = a->slots[s].tier;
    return set->start[t + 1] - set->start[t];
}

static uint32_t slot_tracker_at(const hk_announcer *a, uint32_t s, unsigned pos)
{
    const an_tierset *set = slot_set(a, s);
    const an_slot *sl = &a->slots[s];
    return set->trackers[set->start[sl->tier] + nib(sl->order, pos)];
}

static uint32_t slot_tracker(const hk_announcer *a, uint32_t s)
{
    return slot_tracker_at(a, s, a->slots[s].pos);
}

/* ---------------- hosts and trackers (interned) ---------------- */

static bool rehash(hk_announcer *a, uint32_t **buckets, uint32_t *nb, uint32_t count)
{
    if (count * 2 < *nb)
        return true;
    uint32_t nnb = *nb ? *nb * 2 : 64;
    uint32_t *nbk = hk_mem_alloc(&a->mem, (size_t)nnb * sizeof *nbk);
    if (!nbk)
        return count < *nb; /* still usable while not full */
    for (uint32_t i = 0; i < nnb; i++)
        nbk[i] = NONE;
    hk_mem_free(&a->mem, *buckets, (size_t)*nb * sizeof **buckets);
    *buckets = nbk;
    *nb = nnb;
    return true;
}

static void host_buckets_rebuild(hk_announcer *a)
{
    for (uint32_t i = 0; i < a->host_nb; i++)
        a->host_buckets[i] = NONE;
    for (uint32_t i = 0; i < a->nhosts; i++) {
        an_host *h = &a->hosts[i];
        if (!h->name)
            continue;
        uint32_t b = h->hash & (a->host_nb - 1);
        h->next = a->host_buckets[b];
        a->host_buckets[b] = i;
    }
}

static bool eq_ci(const char *x, const char *y, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char cx = x[i], cy = y[i];
        if (cx >= 'A' && cx <= 'Z')
            cx = (char)(cx - 'A' + 'a');
        if (cy >= 'A' && cy <= 'Z')
            cy = (char)(cy - 'A' + 'a');
        if (cx != cy)
            return false;
    }
    return true;
}

static uint32_t host_intern(hk_announcer *a, const char *name, size_t len)
{
    uint32_t h = fnv(name, len);
    if (a->host_nb) {
        for (uint32_t i = a->host_buckets[h & (a->host_nb - 1)]; i != NONE; i = a->hosts[i].next) {
            an_host *x = &a->hosts[i];
            if (x->hash == h && x->name_len == len && eq_ci(x->name, name, len)) {
                x->refs++;
                return i;
            }
        }
    }
    uint32_t idx = a->free_host;
    if (idx == NONE) {
        if (!grow(a, (void **)&a->hosts, &a->caphosts, sizeof *a->hosts, a->nhosts + 1))
            return NONE;
        idx = a->nhosts++;
    } else {
        a->free_host = a->hosts[idx].next;
    }
    char *copy = hk_mem_alloc(&a->mem, len + 1);
    if (!copy) {
        a->hosts[idx].name = NULL;
        a->hosts[idx].next = a->free_host;
        a->free_host = idx;
        return NONE;
    }
    for (size_t i = 0; i < len; i++)
        copy[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
    copy[len] = '\0';
    an_host *x = &a->hosts[idx];
    memset(x, 0, sizeof *x);
    x->name = copy;
    x->name_len = len;
    x->refs = 1;
    x->hash = h;
    x->head = x->tail = NONE;
    x->interval_s = (uint32_t)(a->cfg.default_interval / HK_NS_PER_SEC);
    a->live_hosts++;
    uint32_t old_nb = a->host_nb;
    rehash(a, &a->host_buckets, &a->host_nb, a->live_hosts);
    if (a->host_nb != old_nb) {
        host_buckets_rebuild(a);
    } else {
        uint32_t b = h & (a->host_nb - 1);
        x->next = a->host_buckets[b];
        a->host_buckets[b] = idx;
    }
    return idx;
}

static void host_unref(hk_announcer *a, uint32_t idx)
{
    an_host *x = &a->hosts[idx];
    if (--x->refs > 0)
        return;
    uint32_t *pp = &a->host_buckets[x->hash & (a->host_nb - 1)];
    while (*pp != idx)
        pp = &a->hosts[*pp].next;
    *pp = x->next;
    hk_mem_free(&a->mem, x->name, x->name_len + 1);
    x->name = NULL;
    x->next = a->free_host;
    a->free_host = idx;
    a->live_hosts--;
}

static void tracker_buckets_rebuild(hk_announcer *a)
{
    for (uint32_t i = 0; i < a->tr_nb; i++)
        a->tr_buckets[i] = NONE;
    for (uint32_t i = 0; i < a->ntrackers; i++) {
        an_tracker *t = a->trackers[i];
        if (!t)
            continue;
        uint32_t b = fnv(t->url, t->url_len) & (a->tr_nb - 1);
        t->next = a->tr_buckets[b];
        a->tr_buckets[b] = i;
    }
}

static uint32_t tracker_find(const hk_announcer *a, const char *url, size_t len)
{
    if (!a->tr_nb)
        return NONE;
    uint32_t h = fnv(url, len);
    for (uint32_t i = a->tr_buckets[h & (a->tr_nb - 1)]; i != NONE; i = a->trackers[i]->next) {
        const an_tracker *t = a->trackers[i];
        if (t->url_len == len && memcmp(t->url, url, len) == 0)
            return i;
    }
    return NONE;
}


static uint32_t tracker_intern(hk_announcer *a, const char *url, char *err, size_t errlen)
{
    err[0] = '\0';
    size_t len = strnlen(url, MI_MAX_URL + 1);
    if (len > MI_MAX_URL) {
        snprintf(err, errlen, "URL longer than %u bytes", MI_MAX_URL);
        return NONE;
    }
    uint32_t idx = tracker_find(a, url, len);
    if (idx != NONE) {
        a->trackers[idx]->refs++;
        return idx;
    }
    hk_tracker_url u;
    if (hk_tracker_url_parse(url, &u, err, errlen) != 0)
        return NONE;
    if (u.scheme == HK_TRACKER_UDP && (!a->rt.udp_send || !a->rt.resolve)) {
        snprintf(err, errlen, "UDP trackers are not available in this backend");
        return NONE;
    }
    if (u.scheme != HK_TRACKER_UDP && !a->rt.http_get) {
        snprintf(err, errlen, "HTTP trackers are not available in this backend");
        return NONE;
    }
    if (a->ntracker_free == 0) {
        uint32_t cap = a->captrackers, cap2 = a->captrackers;
        if (!grow(a, (void **)&a->trackers, &a->captrackers, sizeof *a->trackers, a->ntrackers + 1))
            return NONE;
        if (!grow(a, (void **)&a->tracker_gen, &cap, sizeof *a->tracker_gen, a->captrackers) ||
            !grow(a, (void **)&a->tracker_free, &cap2, sizeof *a->tracker_free, a->captrackers))
            return NONE; /* the arrays stay consistent: the larger capacity is simply not used yet */
        for (uint32_t i = a->ntrackers; i < a->captrackers; i++) {
            a->trackers[i] = NULL;
            a->tracker_gen[i] = 0;
        }
    }
    size_t size = sizeof(an_tracker) + len + 1;
    an_tracker *t = hk_mem_alloc(&a->mem, size);
    if (!t)
        return NONE;
    memset(t, 0, sizeof *t);
    memcpy(t->url, url, len + 1);
    t->url_len = len;
    t->u = u;
    t->host = host_intern(a, url + u.host_off, u.host_len);
    if (t->host == NONE) {
        hk_mem_free(&a->mem, t, size);
        return NONE;
    }
    idx = a->ntracker_free ? a->tracker_free[--a->ntracker_free] : a->ntrackers++;
    hk_deadline_init(&t->dl);
    hk_udp_conn_init(&t->udp);
    t->idx = idx;
    t->gen = ++a->tracker_gen[idx];
    t->refs = 1;
    t->wait_head = t->wait_tail = NONE;
    t->last_heard = 0;
    t->probe_after = 0;
    a->trackers[idx] = t;
    a->live_trackers++;
    uint32_t old_nb = a->tr_nb;
    rehash(a, &a->tr_buckets, &a->tr_nb, a->live_trackers);
    if (a->tr_nb != old_nb) {
        tracker_buckets_rebuild(a);
    } else {
        uint32_t b = fnv(url, len) & (a->tr_nb - 1);
        t->next = a->tr_buckets[b];
        a->tr_buckets[b] = idx;
    }
    return idx;
}

/* ---------------- transaction ids ---------------- */

static uint32_t tid_slot(const hk_announcer *a, uint32_t tid)
{
    uint32_t m = a->tid_cap - 1;
    uint32_t i = (tid * 2654435761u) & m;
    while (a->tids[i].val != NONE && a->tids[i].tid != tid)
        i = (i + 1) & m;
    return i;
}

static uint32_t tid_lookup(const hk_announcer *a, uint32_t tid)
{
    if (!a->tid_cap)
        return NONE;
    return a->tids[tid_slot(a, tid)].val;
}

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
        n[i].val = NONE;
    for (uint32_t i = 0; i < oldcap; i++)
        if (old[i].val != NONE)
            n[tid_slot(a, old[i].tid)] = old[i];
    hk_mem_free(&a->mem, old, (size_t)oldcap * sizeof *old);
    return true;
}

/* A fresh random transaction id mapped to val, or false (out of memory). */
static bool tid_new(hk_announcer *a, uint32_t val, uint32_t *out)
{
    if (!tid_reserve(a))
        return false;
    uint32_t tid;
    do
        tid = (uint32_t)rand64(a);
    while (tid_lookup(a, tid) != NONE);
    uint32_t i = tid_slot(a, tid);
    a->tids[i].tid = tid;
    a->tids[i].val = val;
    a->tid_len++;
    *out = tid;
    return true;
}

static void tid_remove(hk_announcer *a, uint32_t tid)
{
    if (!a->tid_cap)
        return;
    uint32_t m = a->tid_cap - 1;
    uint32_t i = tid_slot(a, tid);
    if (a->tids[i].val == NONE)
        return;
    a->tids[i].val = NONE;
    a->tid_len--;
    /* backward-shift deletion */
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & m;
        if (a->tids[j].val == NONE)
            break;
        uint32_t home = (a->tids[j].tid * 2654435761u) & m;
        if (((j - home) & m) >= ((j - i) & m)) {
            a->tids[i] = a->tids[j];
            a->tids[j].val = NONE;
            i = j;
        }
    }
}

static void tracker_unref(hk_announcer *a, uint32_t idx)
{
    an_tracker *t = a->trackers[idx];
    if (--t->refs > 0)
        return;
    hk_dl_cancel(&a->tracker_heap, &t->dl);
    if (t->udp.state == HK_UDP_CONN_CONNECTING)
        tid_remove(a, t->udp.tid);
    uint32_t *pp = &a->tr_buckets[fnv(t->url, t->url_len) & (a->tr_nb - 1)];
    while (*pp != idx)
        pp = &a->trackers[*pp]->next;
    *pp = t->next;
    host_unref(a, t->host);
    hk_mem_free(&a->mem, t, sizeof(an_tracker) + t->url_len + 1);
    a->trackers[idx] = NULL;
    a->tracker_gen[idx]++;
    a->tracker_free[a->ntracker_free++] = idx;
    a->live_trackers--;
}

static void tracker_note(hk_announcer *a, an_tracker *t, hk_time now, const char *what, const char *detail)
{
    if (now >= t->log_after) {
        if (t->log_suppressed)
            an_log(a, HK_LOG_WARN, "tracker %s: %s%s%s (%u similar messages in the last minute)", t->url, what,
                   detail[0] ? ": " : "", detail, t->log_suppressed);
        else
            an_log(a, HK_LOG_WARN, "tracker %s: %s%s%s", t->url, what, detail[0] ? ": " : "", detail);
        t->log_after = now + LOG_EVERY;
        t->log_suppressed = 0;
    } else {
        t->log_suppressed++;
        an_log(a, HK_LOG_DEBUG, "tracker %s: %s%s%s", t->url, what, detail[0] ? ": " : "", detail);
    }
}

static void mark_unresponsive(hk_announcer *a, an_tracker *t, hk_time now)
{
    if (t->unresponsive)
        return;
    t->unresponsive = 1;
    t->probe_after = now;
    an_log(a, HK_LOG_WARN, "tracker %s is not answering: announces to it are held back and it is probed", t->url);
}

static void mark_heard(hk_announcer *a, an_tracker *t, hk_time now)
{
    t->last_heard = now;
    if (t->unresponsive)
        an_log(a, HK_LOG_INFO, "tracker %s answers again", t->url);
    t->unresponsive = 0;
    t->probe_fails = 0;
}

/* May a request go to t now? (An unresponsive tracker takes one probe at a time, after probe_after.) */
static bool gate_open(const an_tracker *t, hk_time now)
{
    return !t->unresponsive || (!t->probe_busy && now >= t->probe_after);
}

/* ---------------- tier lists (interned) ---------------- */

static uint32_t set_hash(const uint32_t *start, uint32_t ntiers, const uint32_t *trackers, uint32_t n)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i <= ntiers; i++)
        h = (h ^ start[i]) * 16777619u;
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ trackers[i]) * 16777619u;
    return h;
}

static void set_buckets_rebuild(hk_announcer *a)
{
    for (uint32_t i = 0; i < a->set_nb; i++)
        a->set_buckets[i] = NONE;
    for (uint32_t i = 0; i < a->nsets; i++) {
        an_tierset *s = &a->sets[i];
        if (!s->refs)
            continue;
        uint32_t b = s->hash & (a->set_nb - 1);
        s->next = a->set_buckets[b];
        a->set_buckets[b] = i;
    }
}

/* Takes over one reference per tracker in `trackers` (released if an equal set exists). */
static uint32_t set_intern(hk_announcer *a, const uint32_t *start, uint32_t ntiers, const uint32_t *trackers,
                           uint32_t n)
{
    uint32_t h = set_hash(start, ntiers, trackers, n);
    if (a->set_nb) {
        for (uint32_t i = a->set_buckets[h & (a->set_nb - 1)]; i != NONE; i = a->sets[i].next) {
            an_tierset *s = &a->sets[i];
            if (s->hash == h && s->ntiers == ntiers && s->ntrackers == n &&
                memcmp(s->start, start, (ntiers + 1) * sizeof *start) == 0 &&
                memcmp(s->trackers, trackers, n * sizeof *trackers) == 0) {
                s->refs++;
                for (uint32_t k = 0; k < n; k++)
                    tracker_unref(a, trackers[k]);
                return i;
            }
        }
    }
    uint32_t idx = a->free_set;
    if (idx == NONE) {
        if (!grow(a, (void **)&a->sets, &a->capsets, sizeof *a->sets, a->nsets + 1))
            return NONE;
        idx = a->nsets;
    }
    uint32_t *data = hk_mem_alloc(&a->mem, (size_t)(ntiers + 1 + n) * sizeof *data);
    if (!data)
        return NONE;
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
    uint32_t old_nb = a->set_nb;
    rehash(a, &a->set_buckets, &a->set_nb, a->live_sets);
    if (a->set_nb != old_nb) {
        set_buckets_rebuild(a);
    } else {
        uint32_t b = h & (a->set_nb - 1);
        s->next = a->set_buckets[b];
        a->set_buckets[b] = idx;
    }
    return idx;
}

static void set_unref(hk_announcer *a, uint32_t idx)
{
    an_tierset *s = &a->sets[idx];
    if (--s->refs > 0)
        return;
    uint32_t *pp = &a->set_buckets[s->hash & (a->set_nb - 1)];
    while (*pp != idx)
        pp = &a->sets[*pp].next;
    *pp = s->next;
    for (uint32_t k = 0; k < s->ntrackers; k++)
        tracker_unref(a, s->trackers[k]);
    hk_mem_free(&a->mem, s->start, (size_t)(s->ntiers + 1 + s->ntrackers) * sizeof *s->start);
    s->start = s->trackers = NULL;
    s->next = a->free_set;
    a->free_set = idx;
    a->live_sets--;
}

/* ---------------- torrents by info-hash ---------------- */

static uint32_t ih_home(const hk_announcer *a, const uint8_t ih[20])
{
    /* SHA-1 outputs are uniform, but synthetic or patterned hashes (tests, benches) are not: mix 16 bytes */
    uint64_t x, y;
    memcpy(&x, ih, 8);
    memcpy(&y, ih + 8, 8);
    x = (x ^ (y * 0xC2B2AE3D27D4EB4Full)) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 32) & (a->ih_cap - 1);
}

static uint32_t ih_find_pos(const hk_announcer *a, const uint8_t ih[20])
{
    if (!a->ih_cap)
        return NONE;
    uint32_t m = a->ih_cap - 1;
    for (uint32_t i = ih_home(a, ih);; i = (i + 1) & m) {
        uint32_t t = a->ih_table[i];
        if (t == NONE)
            return NONE;
        if (memcmp(a->torrents[t].ih, ih, 20) == 0)
            return i;
    }
}

static bool ih_insert(hk_announcer *a, uint32_t t)
{
    if ((a->live_torrents + 1) * 4 > a->ih_cap * 3) {
        uint32_t ncap = a->ih_cap ? a->ih_cap * 2 : 64;
        uint32_t *n = hk_mem_alloc(&a->mem, (size_t)ncap * sizeof *n);
        if (!n)
            return false;
        uint32_t *old = a->ih_table;
        uint32_t oldcap = a->ih_cap;
        a->ih_table = n;
        a->ih_cap = ncap;
        for (uint32_t i = 0; i < ncap; i++)
            n[i] = NONE;
        for (uint32_t i = 0; i < oldcap; i++) {
            if (old[i] == NONE)
                continue;
            uint32_t j = ih_home(a, a->torrents[old[i]].ih);
            while (n[j] != NONE)
                j = (j + 1) & (ncap - 1);
            n[j] = old[i];
        }
        hk_mem_free(&a->mem, old, (size_t)oldcap * sizeof *old);
    }
    uint32_t j = ih_home(a, a->torrents[t].ih);
    while (a->ih_table[j] != NONE)
        j = (j + 1) & (a->ih_cap - 1);
    a->ih_table[j] = t;
    return true;
}

static void ih_remove_at(hk_announcer *a, uint32_t i)
{
    uint32_t m = a->ih_cap - 1;
    a->ih_table[i] = NONE;
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & m;
        uint32_t t = a->ih_table[j];
        if (t == NONE)
            break;
        uint32_t home = ih_home(a, a->torrents[t].ih);
        if (((j - home) & m) >= ((j - i) & m)) {
            a->ih_table[i] = t;
            a->ih_table[j] = NONE;
            i = j;
        }
    }
}

/* ---------------- slot runs ---------------- */

static uint32_t slots_alloc(hk_announcer *a, uint32_t n)
{
    uint32_t first = a->free_runs[n];
    if (first != NONE) {
        a->free_runs[n] = a->slots[first].link;
        return first;
    }
    if (a->nslots > UINT32_MAX - 1 - n)
        return NONE;
    if (!grow(a, (void **)&a->slots, &a->capslots, sizeof *a->slots, a->nslots + n))
        return NONE;
    if (!grow(a, (void **)&a->heap, &a->heap_cap, sizeof *a->heap, a->capslots))
        return NONE;
    first = a->nslots;
    a->nslots += n;
    return first;
}

static void slots_release(hk_announcer *a, uint32_t first, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++)
        a->slots[first + k].state = SLOT_FREE;
    a->slots[first].link = a->free_runs[n];
    a->free_runs[n] = first;
}

/* ---------------- requests ---------------- */

static an_req *req_of(const hk_announcer *a, uint32_t idx)
{
    return idx < a->nreqs ? a->reqs[idx] : NULL;
}

static an_req *req_new(hk_announcer *a, uint32_t tracker, const uint8_t ih[20], uint8_t event, uint32_t slot)
{
    if (a->nreq_free == 0) {
        uint32_t cap = a->capreqs, cap2 = a->capreqs;
        if (a->nreqs == a->capreqs) {
            if (!grow(a, (void **)&a->reqs, &a->capreqs, sizeof *a->reqs, a->nreqs + 1))
                return NULL;
            if (!grow(a, (void **)&a->req_gen, &cap, sizeof *a->req_gen, a->capreqs) ||
                !grow(a, (void **)&a->req_free, &cap2, sizeof *a->req_free, a->capreqs))
                return NULL;
            for (uint32_t i = a->nreqs; i < a->capreqs; i++) {
                a->reqs[i] = NULL;
                a->req_gen[i] = 0;
            }
        }
    }
    an_req *r = hk_mem_alloc(&a->mem, sizeof *r);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    uint32_t idx = a->nreq_free ? a->req_free[--a->nreq_free] : a->nreqs++;
    hk_deadline_init(&r->dl);
    r->idx = idx;
    r->gen = ++a->req_gen[idx];
    r->slot = slot;
    r->tracker = tracker;
    r->next = NONE;
    r->expires = HK_TIME_NEVER;
    memcpy(r->ih, ih, 20);
    r->event = event;
    r->state = REQ_NEW;
    a->reqs[idx] = r;
    a->trackers[tracker]->refs++;
    a->live_reqs++;
    if (a->uploaded)
        r->uploaded = a->uploaded(a->uploaded_arg, ih);
    return r;
}

static void req_free(hk_announcer *a, an_req *r)
{
    uint32_t tracker = r->tracker;
    a->reqs[r->idx] = NULL;
    a->req_free[a->nreq_free++] = r->idx;
    a->live_reqs--;
    hk_mem_free(&a->mem, r, sizeof *r);
    tracker_unref(a, tracker);
}

static uint64_t req_token(const an_req *r)
{
    return (uint64_t)r->gen << 32 | r->idx;
}

static void fifo_push(hk_announcer *a, uint32_t *head, uint32_t *tail, an_req *r)
{
    r->next = NONE;
    if (*tail == NONE)
        *head = r->idx;
    else
        a->reqs[*tail]->next = r->idx;
    *tail = r->idx;
}

static an_req *fifo_pop(hk_announcer *a, uint32_t *head, uint32_t *tail)
{
    if (*head == NONE)
        return NULL;
    an_req *r = a->reqs[*head];
    *head = r->next;
    if (*head == NONE)
        *tail = NONE;
    r->next = NONE;
    return r;
}

static void fifo_unlink(hk_announcer *a, uint32_t *head, uint32_t *tail, an_req *r)
{
    uint32_t prev = NONE;
    for (uint32_t i = *head; i != NONE; prev = i, i = a->reqs[i]->next) {
        if (i != r->idx)
            continue;
        if (prev == NONE)
            *head = r->next;
        else
            a->reqs[prev]->next = r->next;
        if (*tail == r->idx)
            *tail = prev;
        r->next = NONE;
        return;
    }
}

static void req_schedule(hk_announcer *a, an_req *r, hk_time when)
{
    if (r->expires < when)
        when = r->expires;
    if (when == HK_TIME_NEVER)
        hk_dl_cancel(&a->req_heap, &r->dl);
    else if (!hk_dl_schedule(&a->req_heap, &r->dl, when))
        an_log(a, HK_LOG_ERROR, "announcer: out of memory for a timer (a UDP request may wait for its next event)");
}

static void req_finish(hk_announcer *a, an_req *r, outcome out, int64_t interval, int64_t min_interval,
                       const char *detail);
static void slot_start(hk_announcer *a, uint32_t s, hk_time now);

/* ---------------- sending ---------------- */

static void fill_params(const hk_announcer *a, const an_req *r, const an_tracker *t, hk_announce_params *p)
{
    memset(p, 0, sizeof *p);
    memcpy(p->info_hash, r->ih, 20);
    memcpy(p->peer_id, a->cfg.peer_id, 20);
    p->port = a->cfg.port;
    p->uploaded = r->uploaded;
    p->event = (hk_announce_event)r->event;
    p->key = a->key;
    p->numwant = 0;
    if (t->tracker_id_len) {
        p->tracker_id = t->tracker_id;
        p->tracker_id_len = t->tracker_id_len;
    }
}

static void udp_send_connect(hk_announcer *a, an_tracker *t)
{
    uint8_t pkt[HK_UDP_CONNECT_LEN];
    size_t n = hk_udp_connect_request(pkt, t->udp.tid);
    a->st.udp_connects++;
    an_log(a, HK_LOG_TRACE, "tracker %s: connect (n = %u, transaction %08x)", t->url, t->udp.attempt, t->udp.tid);
    a->rt.udp_send(a->rt.ctx, &t->addr[t->cur_addr], pkt, n);
}

static void tracker_fail_waiting(hk_announcer *a, an_tracker *t, outcome out, const char *why, bool keep_probe);

static void tracker_connect(hk_announcer *a, an_tracker *t, hk_time now)
{
    if (t->resolving || t->udp.state == HK_UDP_CONN_CONNECTING)
        return;
    if (t->naddr == 0 || hk_udp_conn_usable(&t->udp, now) == false) {
        /* each exchange starts from a fresh resolution (the backend caches it), so address changes are followed */
        if (t->udp.state != HK_UDP_CONN_NONE || t->naddr == 0) {
            hk_udp_conn_init(&t->udp);
            t->resolving = 1;
            char host[HK_TRACKER_HOST_MAX + 1];
            memcpy(host, t->url + t->u.host_off, t->u.host_len);
            host[t->u.host_len] = '\0';
            an_log(a, HK_LOG_TRACE, "tracker %s: resolving %s", t->url, host);
            a->rt.resolve(a->rt.ctx, host, (uint64_t)t->gen << 32 | t->idx);
            return;
        }
    }
    uint32_t tid;
    if (!tid_new(a, t->idx | TID_TRACKER, &tid)) {
        tracker_fail_waiting(a, t, OUT_DOWN, "out of memory", false);
        return;
    }
    hk_udp_conn_start(&t->udp, tid, now);
    if (!hk_dl_schedule(&a->tracker_heap, &t->dl, t->udp.deadline))
        an_log(a, HK_LOG_ERROR, "announcer: out of memory for a timer");
    udp_send_connect(a, t);
}

static void udp_send_announce(hk_announcer *a, an_req *r, an_tracker *t, hk_time now)
{
    if (r->flags & REQ_TID) {
        tid_remove(a, r->tid);
        r->flags &= (uint8_t)~REQ_TID;
    }
    if (!tid_new(a, r->idx, &r->tid)) {
        req_finish(a, r, OUT_DOWN, -1, -1, "out of memory");
        return;
    }
    r->flags |= REQ_TID;
    hk_announce_params p;
    fill_params(a, r, t, &p);
    uint8_t pkt[HK_UDP_ANNOUNCE_MAX];
    const char *path = t->u.path_len ? t->url + t->u.path_off : NULL;
    size_t n = hk_udp_announce_request(pkt, sizeof pkt, t->udp.conn_id, r->tid, &p, path, t->u.path_len);
    if (r->attempt == 0 && r->state != REQ_SENT) {
        a->st.announces++;
        if (r->event == HK_EVENT_STOPPED)
            a->st.stopped_sent++;
    }
    r->state = REQ_SENT;
    r->sent_at = now;
    req_schedule(a, r, now + hk_udp_timeout(r->attempt));
    a->rt.udp_send(a->rt.ctx, &t->addr[t->cur_addr], pkt, n);
}

/* Needs a connection id first: wait on the tracker (and get one). */
static void udp_wait_conn(hk_announcer *a, an_req *r, an_tracker *t, hk_time now)
{
    r->state = REQ_WAIT_CONN;
    req_schedule(a, r, HK_TIME_NEVER);
    fifo_push(a, &t->wait_head, &t->wait_tail, r);
    tracker_connect(a, t, now);
}

static void dispatch(hk_announcer *a, an_req *r, hk_time now)
{
    an_tracker *t = a->trackers[r->tracker];
    if (!gate_open(t, now)) {
        req_finish(a, r, OUT_SKIPPED, -1, -1, "");
        return;
    }
    if (t->unresponsive) {
        r->flags |= REQ_PROBE;
        t->probe_busy = 1;
    }
    if (t->u.scheme == HK_TRACKER_UDP) {
        if (hk_udp_conn_usable(&t->udp, now))
            udp_send_announce(a, r, t, now);
        else
            udp_wait_conn(a, r, t, now);
        return;
    }
    hk_announce_params p;
    fill_params(a, r, t, &p);
    char url[URL_BUF];
    size_t n = hk_http_announce_url(t->url, &p, url, sizeof url);
    if (n >= sizeof url) {
        req_finish(a, r, OUT_BAD_REPLY, -1, -1, "announce URL too long");
        return;
    }
    r->state = REQ_SENT;
    r->sent_at = now;
    req_schedule(a, r, HK_TIME_NEVER);
    a->st.announces++;
    if (r->event == HK_EVENT_STOPPED)
        a->st.stopped_sent++;
    a->rt.http_get(a->rt.ctx, url, req_token(r));
}

static void host_pump(hk_announcer *a, uint32_t hidx, hk_time now)
{
    an_host *h = &a->hosts[hidx];
    if (h->pumping || a->hold)
        return;
    h->pumping = true;
    while (a->hosts[hidx].inflight < a->cfg.host_inflight && a->hosts[hidx].head != NONE) {
        h = &a->hosts[hidx];
        an_req *r = fifo_pop(a, &h->head, &h->tail);
        h->waiting--;
        a->st.waiting--;
        h->inflight++;
        a->st.in_flight++;
        r->flags |= REQ_COUNTED;
        dispatch(a, r, now);
    }
    a->hosts[hidx].pumping = false;
}

static void admit(hk_announcer *a, an_req *r, hk_time now)
{
    uint32_t hidx = a->trackers[r->tracker]->host;
    an_host *h = &a->hosts[hidx];
    if (h->inflight < a->cfg.host_inflight && h->head == NONE) {
        h->inflight++;
        a->st.in_flight++;
        r->flags |= REQ_COUNTED;
        dispatch(a, r, now);
        return;
    }
    r->state = REQ_WAIT_HOST;
    fifo_push(a, &h->head, &h->tail, r);
    h->waiting++;
    a->st.waiting++;
    req_schedule(a, r, HK_TIME_NEVER); /* only a `stopped` expires while waiting */
}

/* ---------------- slots: outcomes ---------------- */

static hk_time backoff(hk_announcer *a, unsigned fails)
{
    hk_time d = a->cfg.retry_base;
    for (unsigned k = 1; k < fails && d < a->cfg.retry_max; k++)
        d *= 2;
    if (d > a->cfg.retry_max)
        d = a->cfg.retry_max;
    return d / 2 + rand_below(a, d / 2 + 1);
}

static void slot_success(hk_announcer *a, uint32_t s, hk_time now, int64_t interval, int64_t min_interval)
{
    an_slot *sl = &a->slots[s];
    sl->flags |= SLOT_REGISTERED;
    sl->fails = 0;
    sl->tried = 0;
    if (sl->pos) {
        sl->order = move_to_front(sl->order, sl->pos);
        sl->pos = 0;
    }
    an_torrent *t = &a->torrents[sl->torrent];
    if (!a->cfg.all_tiers) {
        t->active_tier = sl->tier;
        a->slots[t->first_slot].fails = 0;
    }
    hk_time iv = interval >= 0 ? HK_SECONDS((uint64_t)interval) : a->cfg.default_interval;
    if (interval > (int64_t)(UINT64_MAX / HK_NS_PER_SEC))
        iv = a->cfg.interval_ceiling;
    if (min_interval >= 0 && min_interval < (int64_t)(UINT64_MAX / HK_NS_PER_SEC) &&
        HK_SECONDS((uint64_t)min_interval) > iv)
        iv = HK_SECONDS((uint64_t)min_interval);
    iv = clamp_time(iv, a->cfg.interval_floor, a->cfg.interval_ceiling);
    a->hosts[a->trackers[slot_tracker(a, s)]->host].interval_s = (uint32_t)(iv / HK_NS_PER_SEC);
    if (sl->flags & SLOT_LATE) {
        /* Slots that come back together after an outage would otherwise keep announcing together, interval after
         * interval: draw this one's next time in [3/4, 5/4] of the interval (never below min interval or the floor,
         * never above the ceiling), so the crowd spreads out again within a few intervals. */
        hk_time lo = iv - iv / 4, hi = iv + iv / 4;
        if (min_interval >= 0 && HK_SECONDS((uint64_t)min_interval) > lo)
            lo = HK_SECONDS((uint64_t)min_interval);
        if (lo < a->cfg.interval_floor)
            lo = a->cfg.interval_floor;
        if (hi > a->cfg.interval_ceiling)
            hi = a->cfg.interval_ceiling;
        if (lo < hi)
            iv = lo + rand_below(a, hi - lo + 1);
        sl->flags &= (uint8_t)~SLOT_LATE;
    }
    slot_schedule(a, s, now + iv);
}

static void slot_failure(hk_announcer *a, uint32_t s, hk_time now)
{
    an_slot *sl = &a->slots[s];
    sl->flags |= SLOT_LATE;
    unsigned size = tier_size(a, s);
    sl->tried++;
    if (sl->tried < size) { /* BEP 12: the next tracker of the tier, now */
        sl->pos = (uint8_t)((sl->pos + 1) % size);
        sl->flags &= (uint8_t)~SLOT_REGISTERED;
        slot_schedule(a, s, now);
        return;
    }
    sl->tried = 0;
    if (size > 1) {
        sl->pos = (uint8_t)((sl->pos + 1) % size);
        sl->flags &= (uint8_t)~SLOT_REGISTERED;
    }
    an_torrent *t = &a->torrents[sl->torrent];
    if (!a->cfg.all_tiers && t->ntiers > 1) {
        if (sl->tier + 1u < t->ntiers) { /* the whole tier failed: the next tier, now */
            t->active_tier = (uint8_t)(sl->tier + 1);
            slot_unqueue(a, s);
            slot_schedule(a, t->first_slot + sl->tier + 1, now);
            return;
        }
        an_slot *s0 = &a->slots[t->first_slot];
        if (s0->fails < 255)
            s0->fails++;
        unsigned f = s0->fails;
        t->active_tier = 0;
        if (s != t->first_slot)
            slot_unqueue(a, s);
        slot_schedule(a, t->first_slot, now + backoff(a, f));
        return;
    }
    if (sl->fails < 255)
        sl->fails++;
    slot_schedule(a, s, now + backoff(a, sl->fails));
}

static void start_stop(hk_announcer *a, uint32_t s, hk_time now);

static void issue_orphan_stop(hk_announcer *a, uint32_t tracker, const uint8_t ih[20], hk_time now)
{
    an_req *r = req_new(a, tracker, ih, HK_EVENT_STOPPED, NONE);
    if (!r) {
        a->st.abandoned++;
        return;
    }
    r->expires = a->shutting ? a->stop_deadline : now + a->cfg.stop_timeout;
    admit(a, r, now);
}

static void req_finish(hk_announcer *a, an_req *r, outcome out, int64_t interval, int64_t min_interval,
                       const char *detail)
{
    hk_time now = now_of(a);
    an_tracker *t = a->trackers[r->tracker];
    uint32_t hidx = t->host;
    an_host *h = &a->hosts[hidx];
    uint32_t tracker = r->tracker;
    t->refs++; /* held until the end: the request may hold the last reference */
    if (r->flags & REQ_TID)
        tid_remove(a, r->tid);
    hk_dl_cancel(&a->req_heap, &r->dl);
    if (r->state == REQ_WAIT_HOST) {
        fifo_unlink(a, &h->head, &h->tail, r);
        h->waiting--;
        a->st.waiting--;
    } else if (r->state == REQ_WAIT_CONN) {
        fifo_unlink(a, &t->wait_head, &t->wait_tail, r);
    }
    if (r->flags & REQ_COUNTED) {
        h->inflight--;
        a->st.in_flight--;
    }
    if (r->flags & REQ_ABANDONED) { /* given up earlier; this is the late completion */
        req_free(a, r);
        host_pump(a, hidx, now);
        tracker_unref(a, tracker);
        return;
    }

    switch (out) {
    case OUT_OK:
    case OUT_REFUSED:
    case OUT_BAD_REPLY:
        mark_heard(a, t, now);
        break;
    case OUT_DOWN:
        if (r->state == REQ_SENT && t->last_heard < r->sent_at)
            mark_unresponsive(a, t, now);
        if (r->flags & REQ_PROBE) {
            unsigned k = t->probe_fails < 20 ? t->probe_fails : 20;
            hk_time d = a->cfg.probe_base << k;
            if (d > a->cfg.probe_max || d < a->cfg.probe_base)
                d = a->cfg.probe_max;
            t->probe_after = now + d;
            if (t->probe_fails < 255)
                t->probe_fails++;
        }
        break;
    case OUT_SKIPPED:
    case OUT_ABANDONED:
    case OUT_CANCELLED:
        break;
    }
    if (r->flags & REQ_PROBE)
        t->probe_busy = 0;

    switch (out) {
    case OUT_OK: a->st.ok++; break;
    case OUT_REFUSED: a->st.refused++; break;
    case OUT_BAD_REPLY:
    case OUT_DOWN: a->st.failed++; break;
    case OUT_SKIPPED: a->st.skipped++; break;
    case OUT_ABANDONED: a->st.abandoned++; break;
    case OUT_CANCELLED: break;
    }
    if (r->event == HK_EVENT_STOPPED && out == OUT_OK)
        a->st.stopped_ok++;
    if (out == OUT_REFUSED)
        tracker_note(a, t, now, "announce refused", detail);
    else if (out == OUT_BAD_REPLY || out == OUT_DOWN)
        tracker_note(a, t, now, out == OUT_DOWN ? "no answer" : "bad reply", detail);
    else if (out == OUT_OK)
        an_log(a, HK_LOG_TRACE, "tracker %s: announce%s%s ok", t->url, r->event ? " " : "",
               hk_announce_event_name((hk_announce_event)r->event));

    uint32_t s = r->slot;
    uint8_t ih[20];
    memcpy(ih, r->ih, 20);
    uint8_t event = r->event;
    req_free(a, r);

    if (s != NONE) {
        an_slot *sl = &a->slots[s];
        sl->state = SLOT_IDLE;
        sl->link = NONE;
        if (a->shutting) {
            if (event == HK_EVENT_STOPPED) {
                if (out == OUT_OK)
                    sl->flags &= (uint8_t)~SLOT_REGISTERED;
            } else if (out == OUT_OK) {
                sl->flags |= SLOT_REGISTERED;
                start_stop(a, s, now);
            }
        } else if (out == OUT_OK) {
            slot_success(a, s, now, interval, min_interval);
        } else if (out != OUT_ABANDONED && out != OUT_CANCELLED) {
            slot_failure(a, s, now);
        }
    } else if (out == OUT_OK && event != HK_EVENT_STOPPED && !(a->shutting && now >= a->stop_deadline)) {
        issue_orphan_stop(a, tracker, ih, now); /* its torrent went away while this announce was out */
    }
    host_pump(a, hidx, now);
    tracker_unref(a, tracker);
}

/* Fails every request waiting for t's connection id (keeping the first as the probe when asked). */
static void tracker_fail_waiting(hk_announcer *a, an_tracker *t, outcome out, const char *why, bool keep_probe)
{
    uint32_t keep = NONE;
    if (keep_probe && t->wait_head != NONE) {
        an_req *first = a->reqs[t->wait_head];
        if ((first->flags & REQ_PROBE) || !t->probe_busy) {
            keep = first->idx;
            first->flags |= REQ_PROBE;
            t->probe_busy = 1;
        }
    }
    t->refs++; /* t may lose its last request here */
    uint32_t i = t->wait_head;
    while (i != NONE) {
        an_req *r = a->reqs[i];
        i = r->next;
        if (r->idx != keep)
            req_finish(a, r, out, -1, -1, why);
    }
    tracker_unref(a, t->idx);
}

/* ---------------- slots: starting ---------------- */

/* The per-host pacer: a token bucket at pace_factor times the host's steady rate (its slots over its interval, at
 * least start_rate per second) holding pace_burst of tokens. Takes one token and returns when it may be used: now,
 * or later when the host is over its rate (a backlog after an outage drains at the spare rate, never as a burst). */
static hk_time pace(hk_announcer *a, uint32_t hidx, hk_time now)
{
    an_host *h = &a->hosts[hidx];
    /* the steady rate at the tracker's interval, or at default_interval if that is shorter (the schedule the
     * configuration asks for, first announces included, is never throttled) */
    uint64_t iv = h->interval_s ? h->interval_s : 1;
    uint64_t div = a->cfg.default_interval / HK_NS_PER_SEC;
    if (div >= 1 && div < iv)
        iv = div;
    double rate = a->cfg.pace_factor * (double)h->slots / (double)iv;
    if (rate < (double)a->cfg.start_rate)
        rate = (double)a->cfg.start_rate;
    hk_time gap = (hk_time)(1e9 / rate);
    if (gap == 0)
        gap = 1;
    hk_time burst = a->cfg.pace_burst;
    if (h->pace_next + burst < now)
        h->pace_next = now > burst ? now - burst : 0;
    hk_time at = h->pace_next > now ? h->pace_next : now;
    h->pace_next += gap;
    return at;
}

/* Adds delta to the load of every host of the torrent's tiers (each host once per tier). */
static void hosts_load(hk_announcer *a, uint32_t set, int delta)
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

static void slot_start(hk_announcer *a, uint32_t s, hk_time now)
{
    an_slot *sl = &a->slots[s];
    uint32_t tracker = slot_tracker(a, s);
    an_tracker *t = a->trackers[tracker];
    if (!gate_open(t, now)) {
        sl->state = SLOT_IDLE;
        a->st.skipped++;
        slot_failure(a, s, now);
        return;
    }
    if (!(sl->flags & SLOT_PACED)) {
        hk_time at = pace(a, t->host, now);
        if (at > now) { /* over the host's rate: go later, with the token this call reserved */
            sl->flags |= SLOT_PACED | SLOT_LATE;
            a->st.paced++;
            slot_schedule(a, s, at);
            return;
        }
    }
    sl->flags &= (uint8_t)~SLOT_PACED;
    uint8_t event = (sl->flags & SLOT_REGISTERED) ? HK_EVENT_NONE : HK_EVENT_STARTED;
    an_req *r = req_new(a, tracker, a->torrents[sl->torrent].ih, event, s);
    if (!r) {
        an_log(a, HK_LOG_ERROR, "announcer: out of memory for an announce; retrying later");
        sl->state = SLOT_IDLE;
        slot_schedule(a, s, now + a->cfg.retry_base);
        return;
    }
    sl->state = SLOT_BUSY;
    sl->link = r->idx;
    admit(a, r, now);
}

static void start_stop(hk_announcer *a, uint32_t s, hk_time now)
{
    an_slot *sl = &a->slots[s];
    an_req *r = req_new(a, slot_tracker(a, s), a->torrents[sl->torrent].ih, HK_EVENT_STOPPED, s);
    if (!r) {
        a->st.abandoned++;
        return;
    }
    r->expires = a->stop_deadline;
    sl->state = SLOT_BUSY;
    sl->link = r->idx;
    admit(a, r, now);
}

/* ---------------- the loop ---------------- */

static void place_pending(hk_announcer *a, hk_time now)
{
    uint32_t live = 0;
    for (uint32_t i = 0; i < a->npending; i++)
        if (a->torrents[a->pending[i]].flags & TOR_PENDING)
            live++;
    hk_time w = 0;
    if (live > 0 && a->cfg.start_rate > 0) {
        uint64_t per = HK_NS_PER_SEC / a->cfg.start_rate;
        w = (uint64_t)live > a->cfg.default_interval / (per ? per : 1) ? a->cfg.default_interval : per * live;
    }
    hk_time step = live ? w / live : 0;
    uint32_t k = 0;
    for (uint32_t i = 0; i < a->npending; i++) {
        an_torrent *t = &a->torrents[a->pending[i]];
        if (!(t->flags & TOR_PENDING))
            continue;
        t->flags &= (uint8_t)~TOR_PENDING;
        uint32_t n = a->cfg.all_tiers ? t->ntiers : 1;
        for (uint32_t j = 0; j < n; j++)
            slot_schedule(a, t->first_slot + j, now + step * k + (step ? rand_below(a, step) : 0));
        k++;
    }
    hk_mem_free(&a->mem, a->pending, (size_t)a->cappending * sizeof *a->pending);
    a->pending = NULL;
    a->npending = a->cappending = 0;
}

static void pump_stops(hk_announcer *a, hk_time now)
{
    static const uint32_t batch = STOP_BATCH;
    while (a->live_reqs < batch && a->stop_cursor < a->ntorrents) {
        an_torrent *t = &a->torrents[a->stop_cursor++];
        if (!(t->flags & TOR_LIVE))
            continue;
        for (uint32_t j = 0; j < t->ntiers; j++) {
            uint32_t s = t->first_slot + j;
            if (a->slots[s].state != SLOT_BUSY && (a->slots[s].flags & SLOT_REGISTERED))
                start_stop(a, s, now);
        }
    }
}

static void abandon_all(hk_announcer *a)
{
    for (uint32_t c = a->stop_cursor; c < a->ntorrents; c++) {
        an_torrent *t = &a->torrents[c];
        if (!(t->flags & TOR_LIVE))
            continue;
        for (uint32_t j = 0; j < t->ntiers; j++)
            if (a->slots[t->first_slot + j].flags & SLOT_REGISTERED)
                a->st.abandoned++;
    }
    a->stop_cursor = a->ntorrents;
    for (uint32_t i = 0; i < a->nreqs; i++) {
        an_req *r = a->reqs[i];
        if (!r || (r->flags & REQ_ABANDONED))
            continue;
        if (r->state == REQ_SENT && a->trackers[r->tracker]->u.scheme != HK_TRACKER_UDP) {
            /* its completion will still come: keep the record (and its host count) until then */
            if (r->slot != NONE) {
                a->slots[r->slot].state = SLOT_IDLE;
                a->slots[r->slot].link = NONE;
            }
            r->slot = NONE;
            r->flags |= REQ_ABANDONED;
            if (r->event == HK_EVENT_STOPPED)
                a->st.abandoned++;
            continue;
        }
        req_finish(a, r, r->event == HK_EVENT_STOPPED ? OUT_ABANDONED : OUT_CANCELLED, -1, -1, "");
    }
}

static bool work_left(const hk_announcer *a)
{
    if (a->stop_cursor < a->ntorrents)
        return true;
    for (uint32_t i = 0; i < a->nreqs; i++)
        if (a->reqs[i] && !(a->reqs[i]->flags & REQ_ABANDONED))
            return true;
    return false;
}

static void req_timer(hk_announcer *a, an_req *r, hk_time now);
static void tracker_timer(hk_announcer *a, an_tracker *t, hk_time now);

static void rearm(hk_announcer *a)
{
    hk_time t = HK_TIME_NEVER;
    if (a->heap_len)
        t = a->heap[0].due;
    hk_time x = hk_dl_next_time(&a->req_heap);
    if (x < t)
        t = x;
    x = hk_dl_next_time(&a->tracker_heap);
    if (x < t)
        t = x;
    if (a->npending && 0 < t)
        t = 0; /* as soon as the backend gets back to its loop */
    if (a->shutting && !a->finished && a->stop_deadline < t)
        t = a->stop_deadline;
    if (t != a->wake_asked) {
        a->wake_asked = t;
        a->rt.wake_at(a->rt.ctx, t);
    }
}

static void run(hk_announcer *a)
{
    hk_time now = now_of(a);
    for (;;) {
        bool did = false;
        if (a->npending) {
            place_pending(a, now);
            did = true;
        }
        while (a->heap_len && a->heap[0].due <= now) {
            uint32_t s = a->heap[0].slot;
            heap_remove(a, s);
            a->slots[s].state = SLOT_IDLE;
            slot_start(a, s, now);
            did = true;
        }
        hk_deadline *d;
        while ((d = hk_dl_pop_due(&a->req_heap, now)) != NULL) {
            req_timer(a, (an_req *)((char *)d - offsetof(an_req, dl)), now);
            did = true;
        }
        while ((d = hk_dl_pop_due(&a->tracker_heap, now)) != NULL) {
            tracker_timer(a, (an_tracker *)((char *)d - offsetof(an_tracker, dl)), now);
            did = true;
        }
        if (a->shutting && !a->finished) {
            if (now >= a->stop_deadline) {
                abandon_all(a);
                a->finished = true;
                an_log(a, HK_LOG_INFO, "announcer: stop deadline reached; %llu `stopped` announces given up",
                       (unsigned long long)a->st.abandoned);
            } else {
                uint32_t before = a->live_reqs;
                uint32_t cursor = a->stop_cursor;
                pump_stops(a, now);
                if (a->live_reqs != before || a->stop_cursor != cursor)
                    did = true;
                if (!work_left(a))
                    a->finished = true;
            }
        }
        if (!did)
            break;
    }
    rearm(a);
}

/* ---------------- timers ---------------- */

static void req_timer(hk_announcer *a, an_req *r, hk_time now)
{
    if (now >= r->expires) {
        req_finish(a, r, OUT_ABANDONED, -1, -1, "");
        return;
    }
    an_tracker *t = a->trackers[r->tracker];
    if (r->state != REQ_SENT || t->u.scheme != HK_TRACKER_UDP)
        return;
    if (r->flags & REQ_TID) {
        tid_remove(a, r->tid);
        r->flags &= (uint8_t)~REQ_TID;
    }
    if (t->last_heard < r->sent_at)
        mark_unresponsive(a, t, now);
    if (r->attempt >= a->cfg.udp_max_n) {
        req_finish(a, r, OUT_DOWN, -1, -1, "no answer to the last retransmission");
        return;
    }
    if (t->unresponsive && !(r->flags & REQ_PROBE)) {
        if (t->probe_busy) {
            req_finish(a, r, OUT_DOWN, -1, -1, "no answer");
            return;
        }
        r->flags |= REQ_PROBE;
        t->probe_busy = 1;
    }
    r->attempt++;
    a->st.udp_retransmits++;
    if (hk_udp_conn_usable(&t->udp, now))
        udp_send_announce(a, r, t, now);
    else
        udp_wait_conn(a, r, t, now);
}

static void tracker_timer(hk_announcer *a, an_tracker *t, hk_time now)
{
    if (t->udp.state != HK_UDP_CONN_CONNECTING)
        return;
    tid_remove(a, t->udp.tid);
    if (t->last_heard < t->udp.sent_at)
        mark_unresponsive(a, t, now);
    t->refs++;
    if (t->unresponsive)
        tracker_fail_waiting(a, t, OUT_DOWN, "no answer to connect", true);
    if (t->wait_head == NONE) { /* nobody needs the connection any more */
        hk_udp_conn_init(&t->udp);
        tracker_unref(a, t->idx);
        return;
    }
    uint32_t tid;
    if (!tid_new(a, t->idx | TID_TRACKER, &tid)) {
        hk_udp_conn_init(&t->udp);
        tracker_fail_waiting(a, t, OUT_DOWN, "out of memory", false);
        tracker_unref(a, t->idx);
        return;
    }
    if (!hk_udp_conn_timeout(&t->udp, tid, now, a->cfg.udp_max_n)) {
        tid_remove(a, tid);
        tracker_fail_waiting(a, t, OUT_DOWN, "no answer to the last connect retransmission", false);
        tracker_unref(a, t->idx);
        return;
    }
    if (t->naddr > 1)
        t->cur_addr = (uint8_t)((t->cur_addr + 1) % t->naddr);
    a->st.udp_retransmits++;
    if (!hk_dl_schedule(&a->tracker_heap, &t->dl, t->udp.deadline))
        an_log(a, HK_LOG_ERROR, "announcer: out of memory for a timer");
    udp_send_connect(a, t);
    tracker_unref(a, t->idx);
}

/* ---------------- events ---------------- */

void hk_announcer_on_wake(hk_announcer *a)
{
    a->wake_asked = HK_TIME_NEVER; /* the backend's wake-up is used up */
    run(a);
}

static an_req *req_by_token(const hk_announcer *a, uint64_t token)
{
    uint32_t idx = (uint32_t)token, gen = (uint32_t)(token >> 32);
    an_req *r = req_of(a, idx);
    return r && r->gen == gen ? r : NULL;
}

void hk_announcer_on_http_done(hk_announcer *a, uint64_t token, int status, const uint8_t *body, size_t len)
{
    an_req *r = req_by_token(a, token);
    if (!r || r->state != REQ_SENT || a->trackers[r->tracker]->u.scheme == HK_TRACKER_UDP) {
        an_log(a, HK_LOG_DEBUG, "announcer: completion for an unknown HTTP request %llu", (unsigned long long)token);
        return;
    }
    char detail[HK_REPLY_TEXT_MAX + 64];
    if (status < 0 || status >= 500) {
        char text[HK_REPLY_TEXT_MAX + 1];
        hk_printable(body, len, text, sizeof text);
        if (status >= 500)
            snprintf(detail, sizeof detail, "HTTP %d", status);
        else
            snprintf(detail, sizeof detail, "%s%s%s",
                     status == HK_HTTP_ERR_TIMEOUT ? "timeout" : status == HK_HTTP_ERR_TOO_LARGE ? "reply too large" : "transport error",
                     text[0] ? ": " : "", text);
        req_finish(a, r, status == HK_HTTP_ERR_TOO_LARGE ? OUT_BAD_REPLY : OUT_DOWN, -1, -1, detail);
    } else if (status != 200) {
        snprintf(detail, sizeof detail, "HTTP %d", status);
        req_finish(a, r, OUT_BAD_REPLY, -1, -1, detail);
    } else {
        hk_announce_reply rep;
        char err[160];
        if (hk_http_reply_decode(body, len, &rep, err, sizeof err) != 0) {
            req_finish(a, r, OUT_BAD_REPLY, -1, -1, err);
        } else {
            an_tracker *t = a->trackers[r->tracker];
            if (rep.has_tracker_id) {
                memcpy(t->tracker_id, rep.tracker_id, rep.tracker_id_len);
                t->tracker_id_len = rep.tracker_id_len;
            }
            if (rep.has_warning)
                tracker_note(a, t, now_of(a), "warning", rep.warning);
            if (rep.failed)
                req_finish(a, r, OUT_REFUSED, rep.interval, rep.min_interval, rep.failure);
            else
                req_finish(a, r, OUT_OK, rep.interval, rep.min_interval, "");
        }
    }
    run(a);
}

static bool addr_eq(const hk_addr *x, const hk_addr *y)
{
    return x->family == y->family && x->port == y->port && memcmp(x->ip, y->ip, x->family == 4 ? 4 : 16) == 0;
}

static bool tracker_has_addr(const an_tracker *t, const hk_addr *from)
{
    for (unsigned i = 0; i < t->naddr; i++)
        if (addr_eq(&t->addr[i], from))
            return true;
    return false;
}

static void on_connect_reply(hk_announcer *a, an_tracker *t, const hk_udp_reply *rep, hk_time now)
{
    if (rep->action == HK_UDP_ACTION_ERROR) {
        tid_remove(a, t->udp.tid);
        hk_dl_cancel(&a->tracker_heap, &t->dl);
        hk_udp_conn_init(&t->udp);
        mark_heard(a, t, now);
        tracker_fail_waiting(a, t, OUT_REFUSED, rep->message, false);
        return;
    }
    if (rep->action != HK_UDP_ACTION_CONNECT || !hk_udp_conn_reply(&t->udp, rep->tid, rep->conn_id, now)) {
        a->st.stray_datagrams++;
        return;
    }
    tid_remove(a, rep->tid);
    hk_dl_cancel(&a->tracker_heap, &t->dl);
    mark_heard(a, t, now);
    t->refs++;
    an_req *r;
    while ((r = fifo_pop(a, &t->wait_head, &t->wait_tail)) != NULL)
        udp_send_announce(a, r, t, now);
    tracker_unref(a, t->idx);
}

void hk_announcer_on_datagram(hk_announcer *a, const hk_addr *from, const uint8_t *bytes, size_t len)
{
    hk_time now = now_of(a);
    if (len < 8) {
        a->st.stray_datagrams++;
        return;
    }
    uint32_t tid = (uint32_t)bytes[4] << 24 | (uint32_t)bytes[5] << 16 | (uint32_t)bytes[6] << 8 | bytes[7];
    uint32_t val = tid_lookup(a, tid);
    if (val == NONE) {
        a->st.stray_datagrams++;
        return;
    }
    an_tracker *t;
    an_req *r = NULL;
    if (val & TID_TRACKER) {
        t = a->trackers[val & ~TID_TRACKER];
    } else {
        r = a->reqs[val];
        t = a->trackers[r->tracker];
    }
    if (!tracker_has_addr(t, from)) {
        a->st.stray_datagrams++;
        return;
    }
    hk_udp_reply rep;
    char err[128];
    if (hk_udp_reply_decode(bytes, len, from->family, &rep, err, sizeof err) != 0) {
        if (r) {
            req_finish(a, r, OUT_BAD_REPLY, -1, -1, err);
        } else {
            a->st.stray_datagrams++;
            tracker_note(a, t, now, "bad connect reply", err);
        }
        run(a);
        return;
    }
    if (!r) {
        on_connect_reply(a, t, &rep, now);
    } else if (rep.action == HK_UDP_ACTION_ANNOUNCE) {
        req_finish(a, r, OUT_OK, rep.interval, -1, "");
    } else if (rep.action == HK_UDP_ACTION_ERROR) {
        req_finish(a, r, OUT_REFUSED, -1, -1, rep.message);
    } else {
        a->st.stray_datagrams++;
    }
    run(a);
}

void hk_announcer_on_resolved(hk_announcer *a, uint64_t token, const hk_addr *addrs, size_t n)
{
    uint32_t idx = (uint32_t)token, gen = (uint32_t)(token >> 32);
    an_tracker *t = idx < a->ntrackers ? a->trackers[idx] : NULL;
    if (!t || t->gen != gen || !t->resolving) {
        an_log(a, HK_LOG_DEBUG, "announcer: resolution for an unknown tracker %llu", (unsigned long long)token);
        return;
    }
    hk_time now = now_of(a);
    t->resolving = 0;
    hk_addr old = t->addr[t->cur_addr];
    bool had = t->naddr > 0;
    t->naddr = 0;
    for (size_t i = 0; i < n && t->naddr < MAX_ADDRS; i++) {
        if (addrs[i].family != 4 && addrs[i].family != 6)
            continue;
        if (a->cfg.family && addrs[i].family != a->cfg.family)
            continue;
        hk_addr x = addrs[i];
        x.port = t->u.port;
        t->addr[t->naddr++] = x;
    }
    t->cur_addr = 0;
    for (unsigned i = 0; had && i < t->naddr; i++)
        if (addr_eq(&t->addr[i], &old))
            t->cur_addr = (uint8_t)i; /* keep talking to the same address */
    t->refs++;
    if (t->naddr == 0) {
        char host[HK_TRACKER_HOST_MAX + 1];
        memcpy(host, t->url + t->u.host_off, t->u.host_len);
        host[t->u.host_len] = '\0';
        mark_unresponsive(a, t, now);
        char why[HK_TRACKER_HOST_MAX + 64];
        snprintf(why, sizeof why, "cannot resolve %s%s", host,
                 n ? " to an address of the configured family" : "");
        /* the first waiting request stands for the probe that failed */
        if (t->wait_head != NONE && !t->probe_busy) {
            a->reqs[t->wait_head]->flags |= REQ_PROBE;
            t->probe_busy = 1;
        }
        tracker_fail_waiting(a, t, OUT_DOWN, why, false);
    } else if (t->wait_head != NONE) {
        tracker_connect(a, t, now);
    }
    tracker_unref(a, t->idx);
    run(a);
}

/* ---------------- management ---------------- */

void hk_announcer_config_defaults(hk_announcer_config *c)
{
    memset(c, 0, sizeof *c);
    c->all_tiers = true;
    c->default_interval = HK_SECONDS(1800);
    c->interval_floor = HK_SECONDS(60);
    c->interval_ceiling = HK_SECONDS(86400);
    c->start_rate = 10;
    c->retry_base = HK_SECONDS(60);
    c->retry_max = HK_SECONDS(3600);
    c->probe_base = HK_SECONDS(15);
    c->probe_max = HK_SECONDS(300);
    c->host_inflight = 512;
    c->pace_factor = 1.25;
    c->pace_burst = HK_MILLIS(200);
    c->udp_max_n = HK_UDP_MAX_N;
    c->stop_timeout = HK_SECONDS(30);
}

const char *hk_announcer_config_check(const hk_announcer_config *c)
{
    if (c->family != 0 && c->family != 4 && c->family != 6)
        return "family: 0, 4 or 6";
    if (c->default_interval < HK_SECONDS(1) || c->default_interval > HK_SECONDS(86400 * 7))
        return "default_interval: 1 s .. 7 days";
    if (c->interval_floor < HK_MILLIS(1) || c->interval_floor > c->interval_ceiling)
        return "interval_floor: at least 1 ms and at most interval_ceiling";
    if (c->interval_ceiling > HK_SECONDS(86400 * 7))
        return "interval_ceiling: at most 7 days";
    if (c->start_rate == 0 || c->start_rate > 1000000)
        return "start_rate: 1 .. 1000000 per second";
    if (c->retry_base < HK_MILLIS(1) || c->retry_base > c->retry_max || c->retry_max > HK_SECONDS(86400 * 7))
        return "retry_base / retry_max: 1 ms <= retry_base <= retry_max <= 7 days";
    if (c->probe_base < HK_MILLIS(1) || c->probe_base > c->probe_max || c->probe_max > HK_SECONDS(86400))
        return "probe_base / probe_max: 1 ms <= probe_base <= probe_max <= 1 day";
    if (c->host_inflight == 0 || c->host_inflight > 65536)
        return "host_inflight: 1 .. 65536";
    if (!(c->pace_factor >= 1.0 && c->pace_factor <= 100.0))
        return "pace_factor: 1 .. 100";
    if (c->pace_burst > HK_SECONDS(60))
        return "pace_burst: at most 60 s";
    if (c->udp_max_n > HK_UDP_MAX_N)
        return "udp_max_n: 0 .. 8";
    if (c->stop_timeout > HK_SECONDS(3600))
        return "stop_timeout: at most 3600 s";
    return NULL;
}

hk_announcer *hk_announcer_new(const hk_announcer_config *cfg, const hk_runtime *rt, hk_uploaded_fn uploaded,
                               void *arg)
{
    if (hk_announcer_config_check(cfg) || !rt->now || !rt->wake_at || !rt->random_bytes)
        return NULL;
    hk_announcer *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->cfg = *cfg;
    a->rt = *rt;
    a->uploaded = uploaded;
    a->uploaded_arg = arg;
    a->log_max = HK_LOG_TRACE;
    for (unsigned i = 0; i <= HK_ANN_MAX_TIERS; i++)
        a->free_runs[i] = NONE;
    a->free_torrent = a->free_set = a->free_host = NONE;
    hk_dl_heap_init(&a->req_heap, &a->mem);
    hk_dl_heap_init(&a->tracker_heap, &a->mem);
    a->wake_asked = HK_TIME_NEVER;
    a->key = (uint32_t)rand64(a);
    return a;
}

void hk_announcer_free(hk_announcer *a)
{
    if (!a)
        return;
    for (uint32_t i = 0; i < a->nreqs; i++)
        if (a->reqs[i])
            hk_mem_free(&a->mem, a->reqs[i], sizeof(an_req));
    for (uint32_t i = 0; i < a->ntrackers; i++)
        if (a->trackers[i])
            hk_mem_free(&a->mem, a->trackers[i], sizeof(an_tracker) + a->trackers[i]->url_len + 1);
    for (uint32_t i = 0; i < a->nhosts; i++)
        if (a->hosts[i].name)
            hk_mem_free(&a->mem, a->hosts[i].name, a->hosts[i].name_len + 1);
    for (uint32_t i = 0; i < a->nsets; i++)
        if (a->sets[i].start)
            hk_mem_free(&a->mem, a->sets[i].start,
                        (size_t)(a->sets[i].ntiers + 1 + a->sets[i].ntrackers) * sizeof(uint32_t));
    hk_dl_heap_free(&a->req_heap);
    hk_dl_heap_free(&a->tracker_heap);
    hk_mem_free(&a->mem, a->slots, (size_t)a->capslots * sizeof *a->slots);
    hk_mem_free(&a->mem, a->heap, (size_t)a->heap_cap * sizeof *a->heap);
    hk_mem_free(&a->mem, a->torrents, (size_t)a->captorrents * sizeof *a->torrents);
    hk_mem_free(&a->mem, a->ih_table, (size_t)a->ih_cap * sizeof *a->ih_table);
    hk_mem_free(&a->mem, a->pending, (size_t)a->cappending * sizeof *a->pending);
    hk_mem_free(&a->mem, a->sets, (size_t)a->capsets * sizeof *a->sets);
    hk_mem_free(&a->mem, a->set_buckets, (size_t)a->set_nb * sizeof *a->set_buckets);
    hk_mem_free(&a->mem, a->trackers, (size_t)a->captrackers * sizeof *a->trackers);
    hk_mem_free(&a->mem, a->tracker_gen, (size_t)a->captrackers * sizeof *a->tracker_gen);
    hk_mem_free(&a->mem, a->tracker_free, (size_t)a->captrackers * sizeof *a->tracker_free);
    hk_mem_free(&a->mem, a->tr_buckets, (size_t)a->tr_nb * sizeof *a->tr_buckets);
    hk_mem_free(&a->mem, a->hosts, (size_t)a->caphosts * sizeof *a->hosts);
    hk_mem_free(&a->mem, a->host_buckets, (size_t)a->host_nb * sizeof *a->host_buckets);
    hk_mem_free(&a->mem, a->reqs, (size_t)a->capreqs * sizeof *a->reqs);
    hk_mem_free(&a->mem, a->req_gen, (size_t)a->capreqs * sizeof *a->req_gen);
    hk_mem_free(&a->mem, a->req_free, (size_t)a->capreqs * sizeof *a->req_free);
    hk_mem_free(&a->mem, a->tids, (size_t)a->tid_cap * sizeof *a->tids);
    free(a);
}

void hk_announcer_set_log_level(hk_announcer *a, hk_log_level max)
{
    a->log_max = max;
}

hk_ann_result hk_announcer_add_torrent(hk_announcer *a, const uint8_t info_hash[20], const char *const *urls,
                                       const uint32_t *tier_sizes, uint32_t ntiers)
{
    if (a->shutting)
        return HK_ANN_STOPPING;
    if (ih_find_pos(a, info_hash) != NONE)
        return HK_ANN_DUPLICATE;
    uint32_t start[HK_ANN_MAX_TIERS + 1];
    uint32_t ids[HK_ANN_MAX_TIERS * HK_ANN_MAX_TIER_TRACKERS];
    uint32_t nt = 0, n = 0, u = 0;
    bool nomem = false;
    char err[160];
    for (uint32_t tier = 0; tier < ntiers; u += tier_sizes[tier], tier++) {
        if (nt == HK_ANN_MAX_TIERS) {
            an_log(a, HK_LOG_DEBUG, "announcer: tiers after the %uth ignored", HK_ANN_MAX_TIERS);
            break;
        }
        uint32_t first = n;
        for (uint32_t k = 0; k < tier_sizes[tier]; k++) {
            const char *url = urls[u + k];
            if (n - first == HK_ANN_MAX_TIER_TRACKERS) {
                an_log(a, HK_LOG_DEBUG, "announcer: %s ignored: more than %u trackers in a tier", url,
                       HK_ANN_MAX_TIER_TRACKERS);
                continue;
            }
            uint32_t id = tracker_intern(a, url, err, sizeof err);
            if (id == NONE) {
                if (err[0]) {
                    an_log(a, HK_LOG_DEBUG, "announcer: tracker %s ignored: %s", url, err);
                    continue;
                }
                nomem = true;
                break;
            }
            bool dup = false;
            for (uint32_t j = 0; j < n && !dup; j++)
                dup = ids[j] == id;
            if (dup) {
                tracker_unref(a, id);
                continue;
            }
            ids[n++] = id;
        }
        if (nomem)
            break;
        if (n > first)
            start[nt++] = first;
    }
    start[nt] = n;
    if (nomem || n == 0) {
        for (uint32_t j = 0; j < n; j++)
            tracker_unref(a, ids[j]);
        return nomem ? HK_ANN_NOMEM : HK_ANN_NO_TRACKERS;
    }
    uint32_t set = set_intern(a, start, nt, ids, n);
    if (set == NONE) {
        for (uint32_t j = 0; j < n; j++)
            tracker_unref(a, ids[j]);
        return HK_ANN_NOMEM;
    }
    uint32_t ti = a->free_torrent;
    if (ti == NONE && !grow(a, (void **)&a->torrents, &a->captorrents, sizeof *a->torrents, a->ntorrents + 1))
        goto nomem_set;
    if (!grow(a, (void **)&a->pending, &a->cappending, sizeof *a->pending, a->npending + 1))
        goto nomem_set;
    uint32_t first = slots_alloc(a, nt);
    if (first == NONE)
        goto nomem_set;
    if (ti == NONE)
        ti = a->ntorrents++;
    else
        a->free_torrent = a->torrents[ti].tierset;
    an_torrent *t = &a->torrents[ti];
    memcpy(t->ih, info_hash, 20);
    t->tierset = set;
    t->first_slot = first;
    t->ntiers = (uint8_t)nt;
    t->active_tier = 0;
    t->flags = TOR_LIVE | TOR_PENDING;
    if (!ih_insert(a, ti)) {
        t->flags = 0;
        t->tierset = a->free_torrent;
        a->free_torrent = ti;
        slots_release(a, first, nt);
        goto nomem_set;
    }
    for (uint32_t j = 0; j < nt; j++) {
        an_slot *sl = &a->slots[first + j];
        memset(sl, 0, sizeof *sl);
        sl->torrent = ti;
        sl->tier = (uint8_t)j;
        sl->state = SLOT_IDLE;
        sl->link = NONE;
        unsigned size = start[j + 1] - start[j];
        sl->order = size > 1 ? shuffled_order(a, size) : 0;
    }
    a->live_torrents++;
    a->live_slots += nt;
    hosts_load(a, set, +1);
    a->pending[a->npending++] = ti;
    rearm(a);
    return HK_ANN_OK;
nomem_set:
    set_unref(a, set);
    return HK_ANN_NOMEM;
}

hk_ann_result hk_announcer_add_metainfo(hk_announcer *a, const mi_torrent *mi)
{
    if (mi->tier_count == 0)
        return HK_ANN_NO_TRACKERS;
    uint32_t sizes[MI_MAX_TRACKERS];
    uint32_t n = mi->tier_count < MI_MAX_TRACKERS ? mi->tier_count : MI_MAX_TRACKERS;
    for (uint32_t i = 0; i < n; i++)
        sizes[i] = mi->tiers[i].count;
    /* trackers are grouped by tier in order: tiers[i].first == sum of the sizes before it */
    return hk_announcer_add_torrent(a, mi->info_hash, mi->trackers, sizes, n);
}

bool hk_announcer_remove_torrent(hk_announcer *a, const uint8_t info_hash[20])
{
    uint32_t pos = ih_find_pos(a, info_hash);
    if (pos == NONE)
        return false;
    hk_time now = now_of(a);
    uint32_t ti = a->ih_table[pos];
    an_torrent *t = &a->torrents[ti];
    uint32_t set = t->tierset;
    a->sets[set].refs++; /* keep the trackers alive while the slots are taken apart */
    for (uint32_t j = 0; j < t->ntiers; j++) {
        uint32_t s = t->first_slot + j;
        an_slot *sl = &a->slots[s];
        bool registered = sl->flags & SLOT_REGISTERED;
        if (sl->state == SLOT_BUSY) {
            an_req *r = a->reqs[sl->link];
            r->slot = NONE;
            if (r->state == REQ_WAIT_HOST || r->state == REQ_WAIT_CONN) { /* not sent yet */
                if (r->event == HK_EVENT_STOPPED || registered) {
                    r->event = HK_EVENT_STOPPED;
                    r->expires = a->shutting ? a->stop_deadline : now + a->cfg.stop_timeout;
                    req_schedule(a, r, HK_TIME_NEVER);
                } else {
                    req_finish(a, r, OUT_ABANDONED, -1, -1, "");
                    a->st.abandoned--; /* nothing was owed to that tracker */
                }
            }
        } else {
            slot_unqueue(a, s);
            if (registered && !a->shutting)
                issue_orphan_stop(a, slot_tracker(a, s), t->ih, now);
        }
        a->slots[s].state = SLOT_IDLE;
    }
    t = &a->torrents[ti];
    hosts_load(a, set, -1);
    slots_release(a, t->first_slot, t->ntiers);
    a->live_slots -= t->ntiers;
    ih_remove_at(a, ih_find_pos(a, info_hash));
    t->flags = 0;
    t->tierset = a->free_torrent;
    a->free_torrent = ti;
    a->live_torrents--;
    set_unref(a, set);
    set_unref(a, set);
    run(a);
    return true;
}

void hk_announcer_shutdown(hk_announcer *a, hk_time deadline)
{
    if (a->shutting)
        return;
    a->shutting = true;
    a->stop_deadline = deadline;
    a->stop_cursor = 0;
    for (uint32_t i = 0; i < a->npending; i++)
        a->torrents[a->pending[i]].flags &= (uint8_t)~TOR_PENDING;
    a->npending = 0;
    while (a->heap_len) {
        uint32_t s = a->heap[0].slot;
        heap_remove(a, s);
        a->slots[s].state = SLOT_IDLE;
    }
    /* Regular announces not sent yet are dropped (or become the `stopped` a registered slot owes); `stopped` for
     * removed torrents still waiting now share the shutdown deadline. Sent ones are waited for: an answer may
     * register the torrent, which then gets its `stopped`. */
    a->hold = true;
    for (uint32_t i = 0; i < a->nreqs; i++) {
        an_req *r = a->reqs[i];
        if (!r || (r->flags & REQ_ABANDONED))
            continue;
        bool unsent = r->state == REQ_WAIT_HOST || r->state == REQ_WAIT_CONN;
        an_tracker *t = a->trackers[r->tracker];
        if (!unsent && r->event != HK_EVENT_STOPPED && t->unresponsive) { /* no answer expected: do not wait */
            if (t->u.scheme == HK_TRACKER_UDP) {
                req_finish(a, r, OUT_CANCELLED, -1, -1, "");
            } else { /* its completion will still come: keep the record until then */
                if (r->slot != NONE) {
                    a->slots[r->slot].state = SLOT_IDLE;
                    a->slots[r->slot].link = NONE;
                }
                r->slot = NONE;
                r->flags |= REQ_ABANDONED;
            }
            continue;
        }
        if (unsent && r->event != HK_EVENT_STOPPED) {
            if (r->slot != NONE && (a->slots[r->slot].flags & SLOT_REGISTERED)) {
                r->event = HK_EVENT_STOPPED;
            } else {
                req_finish(a, r, OUT_CANCELLED, -1, -1, "");
                continue;
            }
        }
        if (r->expires > deadline && (r->event == HK_EVENT_STOPPED || r->slot == NONE)) {
            r->expires = deadline;
            if (r->state != REQ_SENT || a->trackers[r->tracker]->u.scheme == HK_TRACKER_UDP)
                req_schedule(a, r, r->state == REQ_SENT ? r->dl.when : deadline);
        }
    }
    a->hold = false;
    for (uint32_t h = 0; h < a->nhosts; h++)
        if (a->hosts[h].name)
            host_pump(a, h, now_of(a));
    uint32_t sent = 0;
    for (uint32_t i = 0; i < a->nreqs; i++)
        if (a->reqs[i] && !(a->reqs[i]->flags & REQ_ABANDONED) && a->reqs[i]->state == REQ_SENT)
            sent++;
    an_log(a, HK_LOG_INFO, "announcer: stopping: `stopped` to every tracker that has a torrent registered "
           "(%u announces still out are waited for)", sent);
    run(a);
}

bool hk_announcer_finished(const hk_announcer *a)
{
    return a->shutting && a->finished;
}

/* ---------------- observation ---------------- */

void hk_announcer_stats_get(const hk_announcer *a, hk_announcer_stats *out)
{
    *out = a->st;
    out->torrents = a->live_torrents;
    out->slots = a->live_slots;
    out->trackers = a->live_trackers;
    out->hosts = a->live_hosts;
    out->tier_lists = a->live_sets;
    out->queued = a->heap_len;
    out->memory_bytes = a->mem.bytes + sizeof *a;
    out->memory_peak = a->mem.peak + sizeof *a;
}

bool hk_announcer_slot_info(const hk_announcer *a, const uint8_t info_hash[20], uint32_t tier, hk_slot_info *out)
{
    uint32_t pos = ih_find_pos(a, info_hash);
    if (pos == NONE)
        return false;
    const an_torrent *t = &a->torrents[a->ih_table[pos]];
    if (tier >= t->ntiers)
        return false;
    uint32_t s = t->first_slot + tier;
    const an_slot *sl = &a->slots[s];
    memset(out, 0, sizeof *out);
    out->state = (hk_slot_state)sl->state;
    out->due = slot_due(a, s);
    out->fails = sl->fails;
    out->tried = sl->tried;
    out->registered = sl->flags & SLOT_REGISTERED;
    out->tier_size = (uint8_t)tier_size(a, s);
    out->url = a->trackers[slot_tracker(a, s)]->url;
    for (unsigned k = 0; k < out->tier_size; k++)
        out->order[k] = a->trackers[slot_tracker_at(a, s, k)]->url;
    return true;
}

bool hk_announcer_tracker_info(const hk_announcer *a, const char *url, hk_tracker_info *out)
{
    uint32_t idx = tracker_find(a, url, strlen(url));
    if (idx == NONE)
        return false;
    const an_tracker *t = a->trackers[idx];
    const an_host *h = &a->hosts[t->host];
    memset(out, 0, sizeof *out);
    out->scheme = t->u.scheme;
    out->unresponsive = t->unresponsive;
    out->probing = t->probe_busy;
    out->udp_state = t->udp.state;
    out->probe_after = t->probe_after;
    out->host_in_flight = h->inflight;
    out->host_waiting = h->waiting;
    out->refs = t->refs;
    return true;
}
