/* seeder_loads: owns the records of pending disk loads (hks_load, see seeder_internal.h): a token per request that
 * needs loading, the count of its completions, and what a completion means: a failure fails the torrent whether or
 * not the requesting peer and its request still exist; a success marks the request loaded if it is still queued; a
 * RETRY (a passing shortage: seeder_runtime.h) puts the request back to wait with a backoff in its peer's deadline
 * (disk_retry_at), never failing the torrent, and hks_disk_retry_due tries it again when that deadline comes. */
#include <assert.h>

#include "seeder_internal.h"

static bool grow_loads(hk_seeder *s)
{
    uint32_t ncap = s->loads_cap ? s->loads_cap * 2 : 16;
    if (ncap <= s->loads_cap)
        return false;
    hks_load *n = hk_mem_realloc(&s->mem, s->loads, (size_t)s->loads_cap * sizeof *n, (size_t)ncap * sizeof *n);
    if (!n)
        return false;
    for (uint32_t i = ncap; i-- > s->loads_cap;) { /* lowest new index on top of the free list */
        n[i].gen = 0;
        n[i].torrent = HK_TT_NONE;
        n[i].pending = 0;
        n[i].slot = s->loads_free;
        s->loads_free = i;
    }
    s->loads = n;
    s->loads_cap = ncap;
    return true;
}

static void release_load(hk_seeder *s, uint32_t i)
{
    hks_load *l = &s->loads[i];
    assert(l->gen != 0 && s->loads_used > 0);
    l->gen = 0;
    l->torrent = HK_TT_NONE;
    l->slot = s->loads_free;
    s->loads_free = i;
    if (--s->loads_used == 0)
        hks_loads_free(s); /* nothing pending: hold no memory for it */
}

void hks_loads_free(hk_seeder *s)
{
    hk_mem_free(&s->mem, s->loads, (size_t)s->loads_cap * sizeof *s->loads);
    s->loads = NULL;
    s->loads_cap = s->loads_used = 0;
    s->loads_free = HKS_LOAD_NONE;
}

uint64_t hks_load_begin(hk_seeder *s, const hk_peer *p)
{
    if (s->loads_free == HKS_LOAD_NONE && !grow_loads(s))
        return 0;
    uint32_t i = s->loads_free;
    hks_load *l = &s->loads[i];
    assert(i < s->loads_cap && l->gen == 0);
    s->loads_free = l->slot;
    l->gen = s->next_load_gen++;
    if (s->next_load_gen == 0)
        s->next_load_gen = 1;
    l->torrent = p->torrent;
    l->slot = p->slot;
    l->pending = 0;
    s->loads_used++;
    return (uint64_t)l->gen << 32 | i;
}

void hks_load_issued(hk_seeder *s, uint64_t token, uint32_t n)
{
    uint32_t i = (uint32_t)token;
    assert(i < s->loads_cap && s->loads[i].gen == (uint32_t)(token >> 32) && s->loads[i].pending == 0);
    s->loads[i].pending = n;
    if (n == 0)
        release_load(s, i);
}

void hks_loads_forget_torrent(hk_seeder *s, uint32_t rec)
{
    for (uint32_t i = 0; i < s->loads_cap; i++)
        if (s->loads[i].gen != 0 && s->loads[i].torrent == rec)
            s->loads[i].torrent = HK_TT_NONE;
}

static hk_time retry_wait(uint8_t tries);

/* Every load of the request at position `at` of p's queue has completed and one said RETRY: the request waits (its
 * peer's disk_retry_at), or, for a fast peer after HKS_RETRY_REJECT_AFTER rounds, is rejected. */
static void round_retried(hk_seeder *s, hk_peer *p, uint32_t at)
{
    hk_request *r = hk_rq_at(&p->rq, at);
    r->retry = 0;
    r->token = 0;
    if (r->tries < UINT8_MAX)
        r->tries++;
    if (p->fast && r->kind == HK_REQ_BLOCK && r->tries >= HKS_RETRY_REJECT_AFTER) {
        hk_request gone;
        hk_rq_remove_at(&p->rq, at, &gone);
        s->stats.disk_retry_rejects++;
        hks_log(s, HK_LOG_DEBUG, "peer %llu: %u/%u/%u rejected: the disk was short of resources %u times",
                (unsigned long long)p->id, gone.index, gone.begin, gone.length, (unsigned)gone.tries);
        hks_send_reject(s, p, gone.index, gone.begin, gone.length);
        hks_mark_touched(s, p);
        return;
    }
    r->state = HK_RQ_BACKOFF;
    s->stats.disk_retries++;
    hk_time at_time = hks_time_add(s->now, retry_wait(r->tries));
    if (at_time < p->disk_retry_at)
        p->disk_retry_at = at_time;
    hks_log(s, HK_LOG_DEBUG, "peer %llu: %u/%u/%u: disk short of resources (round %u), tried again in %llu ms",
            (unsigned long long)p->id, r->index, r->begin, r->length, (unsigned)r->tries,
            (unsigned long long)((p->disk_retry_at - s->now) / 1000000u));
    hks_mark_touched(s, p); /* its deadline now includes disk_retry_at */
}

/* The request a completion of load `token` counts against, one of its loads taken off; NULL (logged) when the peer
 * in `slot` or its request is gone. *pp and *at name the peer and the request's place. */
static hk_request *completed_request(hk_seeder *s, uint32_t slot, uint64_t token, bool retry, hk_peer **pp,
                                     uint32_t *at)
{
    hk_peer *p = slot < s->peers_cap ? s->peers[slot] : NULL;
    int64_t found = p && !p->closed ? hk_rq_find_token(&p->rq, token) : -1;
    if (found < 0) {
        hks_log(s, HK_LOG_TRACE,
                retry ? "disk load %llu: retry for a request that is gone"
                      : "disk load %llu completed for a request that is gone",
                (unsigned long long)token);
        return NULL;
    }
    hk_request *r = hk_rq_at(&p->rq, (uint32_t)found);
    assert(r->state == HK_RQ_LOADING && r->loads > 0); /* its completions are counted with the record's */
    if (r->loads > 0)
        r->loads--;
    *pp = p;
    *at = (uint32_t)found;
    return r;
}

/* A RETRY completion for the load `token` of the peer in `slot`: counted against its request (the torrent is kept). */
static void disk_retry(hk_seeder *s, uint32_t slot, uint64_t token)
{
    hk_peer *p;
    uint32_t at;
    hk_request *r = completed_request(s, slot, token, true, &p, &at);
    if (!r)
        return;
    r->retry = 1;
    if (r->loads == 0 && r->state == HK_RQ_LOADING)
        round_retried(s, p, at);
}

void hks_disk_retry_due(hk_seeder *s, hk_peer *p)
{
    if (p->disk_retry_at == HK_TIME_NEVER || s->now < p->disk_retry_at)
        return;
    p->disk_retry_at = HK_TIME_NEVER;
    uint32_t n = 0;
    for (uint32_t i = 0; i < hk_rq_len(&p->rq); i++) {
        hk_request *r = hk_rq_at(&p->rq, i);
        if (r->state != HK_RQ_BACKOFF)
            continue;
        r->state = HK_RQ_REQUEUED; /* its residency is asked at its next turn; still not resident: loaded again */
        r->turn = p->turn;
        n++;
    }
    if (n) {
        hks_log(s, HK_LOG_TRACE, "peer %llu: %u requests tried again after a disk shortage", (unsigned long long)p->id,
                n);
        hks_mark_ready(s, p);
    }
}

void hks_disk_loaded(hk_seeder *s, uint64_t token, hk_disk_status status)
{
    uint32_t i = (uint32_t)token, gen = (uint32_t)(token >> 32);
    if (gen == 0 || i >= s->loads_cap || s->loads[i].gen != gen) {
        hks_log(s, HK_LOG_TRACE, "disk load %llu: completion for no pending load (ignored)",
                (unsigned long long)token);
        return;
    }
    uint32_t rec = s->loads[i].torrent, slot = s->loads[i].slot;
    if (--s->loads[i].pending == 0)
        release_load(s, i);
    if (status == HK_DISK_RETRY) {
        disk_retry(s, slot, token);
        return;
    }
    if (status != HK_DISK_OK) {
        const hk_torrent *t = rec == HK_TT_NONE ? NULL : hk_tt_get(&s->torrents, rec);
        if (!t)
            hks_log(s, HK_LOG_DEBUG, "disk load %llu failed for a torrent since removed", (unsigned long long)token);
        else if (t->state != HK_TORRENT_FAILED)
            hks_torrent_failed(s, rec, "a disk load failed");
        return;
    }
    hk_peer *p;
    uint32_t at;
    hk_request *r = completed_request(s, slot, token, false, &p, &at);
    if (!r)
        return;
    if (r->loads == 0 && r->state == HK_RQ_LOADING) {
        if (r->retry) {
            round_retried(s, p, at);
            return;
        }
        r->state = HK_RQ_LOADED;
        r->tries = 0;
        hks_mark_ready(s, p);
        hks_mark_touched(s, p);
    }
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Disk retry (HK_DISK_RETRY)                                                                                         */

/* The wait after the tries-th RETRY round in a row (tries >= 1): HKS_RETRY_FIRST doubling up to HKS_RETRY_MAX_WAIT. */
static hk_time retry_wait(uint8_t tries)
{
    hk_time w = HKS_RETRY_FIRST;
    for (uint8_t k = 1; k < tries && w < HKS_RETRY_MAX_WAIT; k++)
        w *= 2;
    return w < HKS_RETRY_MAX_WAIT ? w : HKS_RETRY_MAX_WAIT;
}
