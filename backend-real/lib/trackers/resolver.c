/* resolver: owns the name cache, the lookups on its thread pool and the deferred delivery of results on the loop
 * (see resolver.h). */
#include "resolver.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ev.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hash.h"
#include "later.h"
#include "list.h"
#include "pool.h"

typedef struct waiter {
    struct waiter *next;
    uint64_t token;
} waiter;

typedef struct entry {
    struct entry *next;           /* hash chain */
    hk_list age;                  /* in the age list (oldest first) */
    char *host;
    double expires;               /* ev_now; 0 while the first lookup runs */
    bool busy;                    /* a lookup is under way */
    waiter *waiters;
    hk_addr addrs[HK_RESOLVER_MAX_ADDRS];
    size_t naddrs;
    char error[128];
} entry;

typedef struct job {
    hk_list link;                 /* in the outstanding jobs (newest first) */
    hk_resolver *r;
    entry *e;
    char *host;
    hk_addr addrs[HK_RESOLVER_MAX_ADDRS];
    size_t naddrs;
    char error[128];
} job;

typedef struct delivery {
    hk_list link;                 /* in the queue of results to deliver */
    uint64_t token;
    hk_addr addrs[HK_RESOLVER_MAX_ADDRS];
    size_t naddrs;
    char error[128];
} delivery;

#define NBUCKETS 1024u

struct hk_resolver {
    struct ev_loop *loop;
    hk_pool *pool;
    double ttl, negative_ttl;
    hk_resolved_fn cb;
    void *arg;
    entry *buckets[NBUCKETS];
    hk_list age;                  /* every entry, oldest first: the oldest idle one is dropped when full */
    size_t nentries;
    hk_later out;                 /* results, delivered in the order they came */
    hk_list jobs;
    bool freeing;
    hk_resolver_stats st;
};

static unsigned hash(const char *s)
{
    return hk_fnv1a32_str(s) % NBUCKETS;
}

static void entry_drop(hk_resolver *r, entry *e)
{
    entry **pp = &r->buckets[hash(e->host)];
    while (*pp != e) {
        assert(*pp); /* every entry is in its bucket's chain */
        pp = &(*pp)->next;
    }
    *pp = e->next;
    hk_list_remove(&e->age);
    free(e->host);
    free(e);
    r->nentries--;
}

static void queue(hk_resolver *r, uint64_t token, const hk_addr *addrs, size_t n, const char *error)
{
    delivery *d = calloc(1, sizeof *d);
    if (!d)
        return; /* documented: out of memory loses the completion; the announcer's probe backoff recovers */
    d->token = token;
    memcpy(d->addrs, addrs, n * sizeof *addrs);
    d->naddrs = n;
    snprintf(d->error, sizeof d->error, "%s", error ? error : "");
    hk_later_add(&r->out, &d->link);
}

static void deliver(void *arg, hk_list *node)
{
    hk_resolver *r = arg;
    delivery *d = HK_LIST_ENTRY(node, delivery, link);
    r->cb(r->arg, d->token, d->addrs, d->naddrs, d->naddrs ? NULL : d->error);
    free(d);
}

static bool parse_numeric(const char *host, hk_addr *out)
{
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, host, out->ip) == 1) {
        out->family = 4;
        return true;
    }
    if (inet_pton(AF_INET6, host, out->ip) == 1) {
        out->family = 6;
        return true;
    }
    return false;
}

static void work(void *arg)
{
    job *j = arg;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    int rc = getaddrinfo(j->host, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(j->error, sizeof j->error, "%s", gai_strerror(rc));
        return;
    }
    for (struct addrinfo *ai = res; ai && j->naddrs < HK_RESOLVER_MAX_ADDRS; ai = ai->ai_next) {
        hk_addr x;
        memset(&x, 0, sizeof x);
        if (ai->ai_family == AF_INET) {
            x.family = 4;
            memcpy(x.ip, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
        } else if (ai->ai_family == AF_INET6) {
            x.family = 6;
            memcpy(x.ip, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
        } else {
            continue;
        }
        bool dup = false;
        for (size_t k = 0; k < j->naddrs && !dup; k++)
            dup = memcmp(&j->addrs[k], &x, sizeof x) == 0;
        if (!dup)
            j->addrs[j->naddrs++] = x;
    }
    freeaddrinfo(res);
    if (j->naddrs == 0)
        snprintf(j->error, sizeof j->error, "no IPv4 or IPv6 address");
}

static void done(void *arg)
{
    job *j = arg;
    hk_resolver *r = j->r;
    entry *e = j->e;
    hk_list_remove(&j->link);
    e->busy = false;
    memcpy(e->addrs, j->addrs, sizeof e->addrs);
    e->naddrs = j->naddrs;
    snprintf(e->error, sizeof e->error, "%s", j->error);
    e->expires = ev_now(r->loop) + (j->naddrs ? r->ttl : r->negative_ttl);
    if (!j->naddrs)
        r->st.failures++;
    waiter *w = e->waiters;
    e->waiters = NULL;
    while (w) {
        waiter *next = w->next;
        if (!r->freeing)
            queue(r, w->token, e->addrs, e->naddrs, e->error);
        free(w);
        w = next;
    }
    free(j->host);
    free(j);
}

static entry *find_entry(const hk_resolver *r, const char *host, unsigned bucket)
{
    entry *e = r->buckets[bucket];
    while (e && strcmp(e->host, host) != 0)
        e = e->next;
    return e;
}

/* A new entry for host (not in the cache), newest in the age list; when the cache is full the oldest entry without a
 * lookup under way goes first. NULL if out of memory. */
static entry *new_entry(hk_resolver *r, const char *host, unsigned bucket)
{
    if (r->nentries >= HK_RESOLVER_MAX_ENTRIES) {
        hk_list *n;
        HK_LIST_FOREACH(n, &r->age) {
            entry *old = HK_LIST_ENTRY(n, entry, age);
            if (!old->busy) {
                entry_drop(r, old);
                break;
            }
        }
    }
    entry *e = calloc(1, sizeof *e);
    if (!e || !(e->host = strdup(host))) {
        free(e);
        return NULL;
    }
    e->next = r->buckets[bucket];
    r->buckets[bucket] = e;
    hk_list_insert_tail(&r->age, &e->age);
    r->nentries++;
    return e;
}

/* Takes back the waiter just added to e (its request is refused). */
static void drop_newest_waiter(entry *e)
{
    waiter *w = e->waiters;
    e->waiters = w->next;
    free(w);
}

/* Starts the lookup of e's name on the pool; e becomes the newest entry. 0, or -1 if out of memory (then the newest
 * waiter is taken back). */
static int start_lookup(hk_resolver *r, entry *e)
{
    job *j = calloc(1, sizeof *j);
    if (!j || !(j->host = strdup(e->host))) {
        free(j);
        drop_newest_waiter(e);
        return -1;
    }
    j->r = r;
    j->e = e;
    e->busy = true;
    hk_list_move_tail(&r->age, &e->age);
    r->st.lookups++;
    hk_list_insert_head(&r->jobs, &j->link);
    if (hk_pool_submit(r->pool, work, done, j) != 0) {
        hk_list_remove(&j->link);
        e->busy = false;
        drop_newest_waiter(e);
        free(j->host);
        free(j);
        return -1;
    }
    return 0;
}

int hk_resolver_resolve(hk_resolver *r, const char *host, uint64_t token)
{
    r->st.requests++;
    hk_addr num;
    if (parse_numeric(host, &num)) {
        r->st.cache_hits++;
        queue(r, token, &num, 1, NULL);
        return 0;
    }
    unsigned b = hash(host);
    entry *e = find_entry(r, host, b);
    if (e && !e->busy && ev_now(r->loop) < e->expires) {
        r->st.cache_hits++;
        queue(r, token, e->addrs, e->naddrs, e->error);
        return 0;
    }
    waiter *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->token = token;
    if (!e && !(e = new_entry(r, host, b))) {
        free(w);
        return -1;
    }
    w->next = e->waiters;
    e->waiters = w;
    if (e->busy)
        return 0;
    return start_lookup(r, e);
}

hk_resolver *hk_resolver_new(struct ev_loop *loop, double ttl, double negative_ttl, unsigned threads,
                             hk_resolved_fn cb, void *arg)
{
    hk_resolver *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->loop = loop;
    r->ttl = ttl;
    r->negative_ttl = negative_ttl;
    r->cb = cb;
    r->arg = arg;
    r->pool = hk_pool_new(loop, threads ? threads : 2, 5.0);
    if (!r->pool) {
        free(r);
        return NULL;
    }
    hk_list_init(&r->age);
    hk_list_init(&r->jobs);
    hk_later_init(&r->out, loop, HK_LATER_FIFO, deliver, r);
    return r;
}

void hk_resolver_free(hk_resolver *r)
{
    if (!r)
        return;
    r->freeing = true;
    hk_pool_free(r->pool); /* waits for lookups under way; runs no completion */
    for (hk_list *n; (n = hk_list_first(&r->jobs)) != NULL;) {
        job *j = HK_LIST_ENTRY(n, job, link);
        hk_list_remove(n);
        free(j->host);
        free(j);
    }
    hk_later_stop(&r->out);
    for (hk_list *n; (n = hk_later_take(&r->out)) != NULL;)
        free(HK_LIST_ENTRY(n, delivery, link));
    for (hk_list *n; (n = hk_list_first(&r->age)) != NULL;) {
        entry *e = HK_LIST_ENTRY(n, entry, age);
        for (waiter *w = e->waiters; w;) {
            waiter *next = w->next;
            free(w);
            w = next;
        }
        e->waiters = NULL;
        entry_drop(r, e);
    }
    free(r);
}

void hk_resolver_stats_get(const hk_resolver *r, hk_resolver_stats *out)
{
    *out = r->st;
    out->entries = r->nentries;
}
