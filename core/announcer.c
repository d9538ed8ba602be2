/* announcer: owns the announcer's events and loop (the hk_announcer_on_* entry points, the due slots and timers,
 * first-announce placement, shutdown progress), its creation and destruction, torrent management and observation
 * (see announcer.h; the records and the other files are described in announcer_internal.h). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "announcer_internal.h"

#define STOP_BATCH 4096u        /* `stopped` requests created ahead during shutdown */

/* ---------------- small helpers ---------------- */

void an_log(hk_announcer *a, hk_log_level level, const char *fmt, ...)
{
    if (level > a->log_max || !a->rt.base.log)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    a->rt.base.log(a->rt.base.ctx, level, line);
}

hk_time an_now(hk_announcer *a)
{
    return a->rt.base.now(a->rt.base.ctx);
}

uint64_t an_rand64(hk_announcer *a)
{
    if (a->rnd_left < 8) {
        a->rt.base.random_bytes(a->rt.base.ctx, a->rnd, sizeof a->rnd);
        a->rnd_left = sizeof a->rnd;
    }
    uint64_t v;
    memcpy(&v, a->rnd + sizeof a->rnd - a->rnd_left, 8);
    a->rnd_left -= 8;
    return v;
}

/* The bias of a 64-bit modulo is below 2^-40 for the ranges used here. */
uint64_t an_rand_below(hk_announcer *a, uint64_t n)
{
    return n ? an_rand64(a) % n : 0;
}

/* ---------------- the loop ---------------- */

/* Gives every torrent added since the last wake-up its first due time, spread evenly (stratified, jittered) over
 * min(default_interval, added / start_rate). */
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
            an_slot_schedule(a, t->first_slot + j, now + step * k + (step ? an_rand_below(a, step) : 0));
        k++;
    }
    hk_mem_free(&a->mem, a->pending, (size_t)a->cappending * sizeof *a->pending);
    a->pending = NULL;
    a->npending = a->cappending = 0;
}

/* Shutdown: the `stopped` of the next torrents, at most STOP_BATCH requests under way at a time. */
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
                an_start_stop(a, s, now);
        }
    }
}

/* The stop deadline passed: every `stopped` not sent yet is given up, every request under way ends. */
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
            an_req_abandon_sent(a, r);
            if (r->event == HK_EVENT_STOPPED)
                a->st.abandoned++;
            continue;
        }
        an_req_finish(a, r, r->event == HK_EVENT_STOPPED ? OUT_ABANDONED : OUT_CANCELLED, -1, -1, "");
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

/* Asks the runtime for one wake-up at the earliest thing to do (when that changed). */
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
        a->rt.base.wake_at(a->rt.base.ctx, t);
    }
}

/* One round of shutdown progress; true when it did something. */
static bool shutdown_step(hk_announcer *a, hk_time now)
{
    if (now >= a->stop_deadline) {
        abandon_all(a);
        a->finished = true;
        an_log(a, HK_LOG_INFO, "announcer: stop deadline reached; %llu `stopped` announces given up",
               (unsigned long long)a->st.abandoned);
        return false;
    }
    uint32_t before = a->live_reqs;
    uint32_t cursor = a->stop_cursor;
    pump_stops(a, now);
    bool did = a->live_reqs != before || a->stop_cursor != cursor;
    if (!work_left(a))
        a->finished = true;
    return did;
}

/* Does everything that is due at the clock's time, until nothing is, then re-arms the wake-up. */
static void run(hk_announcer *a)
{
    hk_time now = an_now(a);
    for (;;) {
        bool did = false;
        if (a->npending) {
            place_pending(a, now);
            did = true;
        }
        while (a->heap_len && a->heap[0].due <= now) {
            an_slot_start(a, an_heap_pop(a), now);
            did = true;
        }
        hk_deadline *d;
        while ((d = hk_dl_pop_due(&a->req_heap, now)) != NULL) {
            an_req_timer(a, (an_req *)((char *)d - offsetof(an_req, dl)), now);
            did = true;
        }
        while ((d = hk_dl_pop_due(&a->tracker_heap, now)) != NULL) {
            an_tracker_timer(a, (an_tracker *)((char *)d - offsetof(an_tracker, dl)), now);
            did = true;
        }
        if (a->shutting && !a->finished && shutdown_step(a, now))
            did = true;
        if (!did)
            break;
    }
    rearm(a);
}

/* ---------------- events ---------------- */

void hk_announcer_on_wake(hk_announcer *a)
{
    a->wake_asked = HK_TIME_NEVER; /* the backend's wake-up is used up */
    run(a);
}

void hk_announcer_on_http_done(hk_announcer *a, uint64_t token, int status, const uint8_t *body, size_t len)
{
    an_req *r = an_req_by_token(a, token);
    if (!r || r->state != REQ_SENT || a->trackers[r->tracker]->u.scheme == HK_TRACKER_UDP) {
        an_log(a, HK_LOG_DEBUG, "announcer: completion for an unknown HTTP request %llu", (unsigned long long)token);
        return;
    }
    an_http_answer(a, r, status, body, len);
    run(a);
}

void hk_announcer_on_datagram(hk_announcer *a, const hk_addr *from, const uint8_t *bytes, size_t len)
{
    if (an_udp_datagram(a, from, bytes, len))
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
    an_udp_resolved(a, t, addrs, n);
    run(a);
}

/* ---------------- creation ---------------- */

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

hk_announcer *hk_announcer_new(const hk_announcer_config *cfg, const hk_announcer_runtime *rt,
                               hk_uploaded_fn uploaded, void *arg)
{
    if (!cfg || hk_announcer_config_check(cfg) || hk_announcer_runtime_check(rt))
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
        a->free_runs[i] = AN_NONE;
    a->free_torrent = a->free_set = a->free_host = AN_NONE;
    for (unsigned i = 0; i < 3; i++)
        hk_hist_init_latency(&a->st.latency[i]);
    an_index_init(a);
    hk_dl_heap_init(&a->req_heap, &a->mem);
    hk_dl_heap_init(&a->tracker_heap, &a->mem);
    a->wake_asked = HK_TIME_NEVER;
    a->key = (uint32_t)an_rand64(a);
    return a;
}

void hk_announcer_free(hk_announcer *a)
{
    if (!a)
        return;
    an_reqs_free(a);
    an_intern_free(a);
    hk_dl_heap_free(&a->req_heap);
    hk_dl_heap_free(&a->tracker_heap);
    an_index_free(a);
    hk_mem_free(&a->mem, a->pending, (size_t)a->cappending * sizeof *a->pending);
    free(a);
}

void hk_announcer_set_log_level(hk_announcer *a, hk_log_level max)
{
    a->log_max = max;
}

/* ---------------- adding a torrent ---------------- */

static void release_trackers(hk_announcer *a, const uint32_t *ids, uint32_t n)
{
    for (uint32_t j = 0; j < n; j++)
        an_tracker_unref(a, ids[j]);
}

/* Appends to ids (n so far) the usable trackers of one tier's urls not listed yet, each with a reference.
 * false without memory (ids keeps what was taken). */
static bool collect_tier(hk_announcer *a, const char *const *urls, uint32_t count, uint32_t *ids, uint32_t *n)
{
    char err[160];
    uint32_t first = *n;
    for (uint32_t k = 0; k < count; k++) {
        const char *url = urls[k];
        if (*n - first == HK_ANN_MAX_TIER_TRACKERS) {
            an_log(a, HK_LOG_DEBUG, "announcer: %s ignored: more than %u trackers in a tier", url,
                   HK_ANN_MAX_TIER_TRACKERS);
            continue;
        }
        uint32_t id = an_tracker_intern(a, url, err, sizeof err);
        if (id == AN_NONE) {
            if (!err[0])
                return false;
            an_log(a, HK_LOG_DEBUG, "announcer: tracker %s ignored: %s", url, err);
            continue;
        }
        bool dup = false;
        for (uint32_t j = 0; j < *n && !dup; j++)
            dup = ids[j] == id;
        if (dup) {
            an_tracker_unref(a, id);
            continue;
        }
        ids[(*n)++] = id;
    }
    return true;
}

/* The tier list of an announce-list: start (*nt + 1 offsets) into ids (*n trackers, a reference each); tiers left
 * empty are dropped. false without memory (ids keeps what was taken). */
static bool collect_tiers(hk_announcer *a, const char *const *urls, const uint32_t *tier_sizes, uint32_t ntiers,
                          uint32_t *start, uint32_t *ids, uint32_t *nt, uint32_t *n)
{
    bool ok = true;
    *nt = *n = 0;
    for (uint32_t tier = 0, u = 0; tier < ntiers && ok; u += tier_sizes[tier], tier++) {
        if (*nt == HK_ANN_MAX_TIERS) {
            an_log(a, HK_LOG_DEBUG, "announcer: tiers after the %uth ignored", HK_ANN_MAX_TIERS);
            break;
        }
        uint32_t first = *n;
        ok = collect_tier(a, urls + u, tier_sizes[tier], ids, n);
        if (ok && *n > first)
            start[(*nt)++] = first;
    }
    start[*nt] = *n;
    return ok;
}

/* A torrent record for ih on tier list set, with a run of nt slots, indexed, with room in a->pending;
 * AN_NONE without memory (nothing taken). */
static uint32_t torrent_create(hk_announcer *a, const uint8_t ih[20], uint32_t set, uint32_t nt)
{
    uint32_t ti = a->free_torrent;
    if (ti == AN_NONE && !an_grow(a, (void **)&a->torrents, &a->captorrents, sizeof *a->torrents, a->ntorrents + 1))
        return AN_NONE;
    if (!an_grow(a, (void **)&a->pending, &a->cappending, sizeof *a->pending, a->npending + 1))
        return AN_NONE;
    uint32_t first = an_slots_alloc(a, nt);
    if (first == AN_NONE)
        return AN_NONE;
    if (ti == AN_NONE)
        ti = a->ntorrents++;
    else
        a->free_torrent = a->torrents[ti].tierset;
    an_torrent *t = &a->torrents[ti];
    memcpy(t->ih, ih, 20);
    t->tierset = set;
    t->first_slot = first;
    t->ntiers = (uint8_t)nt;
    t->active_tier = 0;
    t->flags = TOR_LIVE | TOR_PENDING;
    if (!an_torrent_index(a, ti)) {
        t->flags = 0;
        t->tierset = a->free_torrent;
        a->free_torrent = ti;
        an_slots_release(a, first, nt);
        return AN_NONE;
    }
    return ti;
}

/* The slots of a new torrent: IDLE, each tier's try order shuffled. */
static void torrent_init_slots(hk_announcer *a, uint32_t ti, const uint32_t *start)
{
    const an_torrent *t = &a->torrents[ti];
    for (uint32_t j = 0; j < t->ntiers; j++) {
        an_slot *sl = &a->slots[t->first_slot + j];
        memset(sl, 0, sizeof *sl);
        sl->torrent = ti;
        sl->tier = (uint8_t)j;
        sl->state = SLOT_IDLE;
        sl->link = AN_NONE;
        unsigned size = start[j + 1] - start[j];
        sl->order = size > 1 ? an_shuffled_order(a, size) : 0;
    }
}

hk_ann_result hk_announcer_add_torrent(hk_announcer *a, const uint8_t info_hash[20], const char *const *urls,
                                       const uint32_t *tier_sizes, uint32_t ntiers)
{
    if (a->shutting)
        return HK_ANN_STOPPING;
    if (an_torrent_find(a, info_hash) != AN_NONE)
        return HK_ANN_DUPLICATE;
    uint32_t start[HK_ANN_MAX_TIERS + 1];
    uint32_t ids[HK_ANN_MAX_TIERS * HK_ANN_MAX_TIER_TRACKERS];
    uint32_t nt, n;
    bool ok = collect_tiers(a, urls, tier_sizes, ntiers, start, ids, &nt, &n);
    if (!ok || n == 0) {
        release_trackers(a, ids, n);
        return ok ? HK_ANN_NO_TRACKERS : HK_ANN_NOMEM;
    }
    uint32_t set = an_set_intern(a, start, nt, ids, n);
    if (set == AN_NONE) {
        release_trackers(a, ids, n);
        return HK_ANN_NOMEM;
    }
    uint32_t ti = torrent_create(a, info_hash, set, nt);
    if (ti == AN_NONE) {
        an_set_unref(a, set);
        return HK_ANN_NOMEM;
    }
    torrent_init_slots(a, ti, start);
    a->live_torrents++;
    a->live_slots += nt;
    an_hosts_load(a, set, +1);
    a->pending[a->npending++] = ti;
    rearm(a);
    return HK_ANN_OK;
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

/* ---------------- removal and shutdown ---------------- */

/* Slot s of a torrent being removed (ih): its request not sent yet becomes the `stopped` a registered slot owes
 * (or is dropped); an idle registered slot gets a `stopped` of its own. */
static void slot_forget(hk_announcer *a, uint32_t s, const uint8_t ih[20], hk_time now)
{
    an_slot *sl = &a->slots[s];
    bool registered = sl->flags & SLOT_REGISTERED;
    if (sl->state == SLOT_BUSY) {
        an_req *r = a->reqs[sl->link];
        assert(r && r->slot == s);
        r->slot = AN_NONE;
        if (r->state == REQ_WAIT_HOST || r->state == REQ_WAIT_CONN) { /* not sent yet */
            if (r->event == HK_EVENT_STOPPED || registered) {
                r->event = HK_EVENT_STOPPED;
                r->expires = an_stop_expiry(a, now);
                an_req_schedule(a, r, HK_TIME_NEVER);
            } else {
                an_req_finish(a, r, OUT_ABANDONED, -1, -1, "");
                a->st.abandoned--; /* nothing was owed to that tracker */
            }
        }
    } else {
        an_slot_unqueue(a, s);
        if (registered && !a->shutting)
            an_issue_orphan_stop(a, an_slot_tracker(a, s), ih, now);
    }
    a->slots[s].state = SLOT_IDLE;
}

bool hk_announcer_remove_torrent(hk_announcer *a, const uint8_t info_hash[20])
{
    uint32_t ti = an_torrent_find(a, info_hash);
    if (ti == AN_NONE)
        return false;
    hk_time now = an_now(a);
    an_torrent *t = &a->torrents[ti];
    uint32_t set = t->tierset;
    a->sets[set].refs++; /* keep the trackers alive while the slots are taken apart */
    for (uint32_t j = 0; j < t->ntiers; j++)
        slot_forget(a, t->first_slot + j, t->ih, now);
    t = &a->torrents[ti];
    an_hosts_load(a, set, -1);
    an_slots_release(a, t->first_slot, t->ntiers);
    a->live_slots -= t->ntiers;
    an_torrent_unindex(a, info_hash);
    t->flags = 0;
    t->tierset = a->free_torrent;
    a->free_torrent = ti;
    a->live_torrents--;
    an_set_unref(a, set);
    an_set_unref(a, set);
    run(a);
    return true;
}

/* Shutdown, for request r: regular announces not sent yet are dropped (or become the `stopped` a registered slot
 * owes); `stopped` for removed torrents still waiting now share the deadline. Sent ones are waited for (an answer
 * may register the torrent, which then gets its `stopped`), unless their tracker is not answering. */
static void shutdown_request(hk_announcer *a, an_req *r, hk_time deadline)
{
    bool unsent = r->state == REQ_WAIT_HOST || r->state == REQ_WAIT_CONN;
    an_tracker *t = a->trackers[r->tracker];
    if (!unsent && r->event != HK_EVENT_STOPPED && t->unresponsive) { /* no answer expected: do not wait */
        if (t->u.scheme == HK_TRACKER_UDP)
            an_req_finish(a, r, OUT_CANCELLED, -1, -1, "");
        else /* its completion will still come: keep the record until then */
            an_req_abandon_sent(a, r);
        return;
    }
    if (unsent && r->event != HK_EVENT_STOPPED) {
        if (r->slot == AN_NONE || !(a->slots[r->slot].flags & SLOT_REGISTERED)) {
            an_req_finish(a, r, OUT_CANCELLED, -1, -1, "");
            return;
        }
        r->event = HK_EVENT_STOPPED;
    }
    if (r->expires > deadline && (r->event == HK_EVENT_STOPPED || r->slot == AN_NONE)) {
        r->expires = deadline;
        if (r->state != REQ_SENT || a->trackers[r->tracker]->u.scheme == HK_TRACKER_UDP)
            an_req_schedule(a, r, r->state == REQ_SENT ? r->dl.when : deadline);
    }
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
    while (a->heap_len)
        (void)an_heap_pop(a);
    a->hold = true;
    for (uint32_t i = 0; i < a->nreqs; i++)
        if (a->reqs[i] && !(a->reqs[i]->flags & REQ_ABANDONED))
            shutdown_request(a, a->reqs[i], deadline);
    a->hold = false;
    for (uint32_t h = 0; h < a->nhosts; h++)
        if (a->hosts[h].name)
            an_host_pump(a, h, an_now(a));
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
    uint32_t ti = an_torrent_find(a, info_hash);
    if (ti == AN_NONE)
        return false;
    const an_torrent *t = &a->torrents[ti];
    if (tier >= t->ntiers)
        return false;
    uint32_t s = t->first_slot + tier;
    const an_slot *sl = &a->slots[s];
    memset(out, 0, sizeof *out);
    out->state = (hk_slot_state)sl->state;
    out->due = an_slot_due(a, s);
    out->fails = sl->fails;
    out->tried = sl->tried;
    out->registered = sl->flags & SLOT_REGISTERED;
    out->tier_size = (uint8_t)an_tier_size(a, s);
    out->url = a->trackers[an_slot_tracker(a, s)]->url;
    for (unsigned k = 0; k < out->tier_size; k++)
        out->order[k] = a->trackers[an_slot_tracker_at(a, s, k)]->url;
    return true;
}

bool hk_announcer_tracker_info(const hk_announcer *a, const char *url, hk_tracker_info *out)
{
    uint32_t idx = an_tracker_find(a, url, strlen(url));
    if (idx == AN_NONE)
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
