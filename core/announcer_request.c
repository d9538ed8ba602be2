/* announcer_request: owns one request's life: its record, admission under the host's cap, sending over HTTP (the
 * UDP side is announcer_udp.c), the HTTP answer, the outcome (tracker health, counters, log lines) and what it does
 * to the slot (next due time, backoff, next tracker or tier), and the per-host pacer (see announcer.h). */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "announcer_internal.h"
#include "infohash.h"

#define URL_BUF 4096u

/* ---------------- records ---------------- */

static an_req *req_new(hk_announcer *a, uint32_t tracker, const uint8_t ih[20], uint8_t event, uint32_t slot)
{
    if (a->nreq_free == 0 &&
        !an_table_grow(a, (void ***)&a->reqs, &a->req_gen, &a->req_free, &a->capreqs, a->nreqs))
        return NULL;
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
    r->next = AN_NONE;
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
    assert(a->reqs[r->idx] == r && a->live_reqs > 0 && !hk_deadline_queued(&r->dl));
    a->reqs[r->idx] = NULL;
    a->req_free[a->nreq_free++] = r->idx;
    a->live_reqs--;
    hk_mem_free(&a->mem, r, sizeof *r);
    an_tracker_unref(a, tracker);
}

void an_reqs_free(hk_announcer *a)
{
    for (uint32_t i = 0; i < a->nreqs; i++)
        if (a->reqs[i])
            hk_mem_free(&a->mem, a->reqs[i], sizeof(an_req));
    hk_mem_free(&a->mem, a->reqs, (size_t)a->capreqs * sizeof *a->reqs);
    hk_mem_free(&a->mem, a->req_gen, (size_t)a->capreqs * sizeof *a->req_gen);
    hk_mem_free(&a->mem, a->req_free, (size_t)a->capreqs * sizeof *a->req_free);
}

static uint64_t req_token(const an_req *r)
{
    return (uint64_t)r->gen << 32 | r->idx;
}

an_req *an_req_by_token(const hk_announcer *a, uint64_t token)
{
    uint32_t idx = (uint32_t)token, gen = (uint32_t)(token >> 32);
    an_req *r = idx < a->nreqs ? a->reqs[idx] : NULL;
    return r && r->gen == gen ? r : NULL;
}

void an_req_schedule(hk_announcer *a, an_req *r, hk_time when)
{
    if (r->expires < when)
        when = r->expires;
    if (when == HK_TIME_NEVER)
        hk_dl_cancel(&a->req_heap, &r->dl);
    else if (!hk_dl_schedule(&a->req_heap, &r->dl, when))
        an_log(a, HK_LOG_ERROR, "announcer: out of memory for a timer (a UDP request may wait for its next event)");
}

void an_req_abandon_sent(hk_announcer *a, an_req *r)
{
    if (r->slot != AN_NONE) {
        a->slots[r->slot].state = SLOT_IDLE;
        a->slots[r->slot].link = AN_NONE;
    }
    r->slot = AN_NONE;
    r->flags |= REQ_ABANDONED;
}

hk_time an_stop_expiry(const hk_announcer *a, hk_time now)
{
    return a->shutting ? a->stop_deadline : now + a->cfg.stop_timeout;
}

/* ---------------- FIFOs of requests (chained through an_req.next) ---------------- */

void an_fifo_push(hk_announcer *a, uint32_t *head, uint32_t *tail, an_req *r)
{
    r->next = AN_NONE;
    if (*tail == AN_NONE)
        *head = r->idx;
    else
        a->reqs[*tail]->next = r->idx;
    *tail = r->idx;
}

an_req *an_fifo_pop(hk_announcer *a, uint32_t *head, uint32_t *tail)
{
    if (*head == AN_NONE)
        return NULL;
    an_req *r = a->reqs[*head];
    *head = r->next;
    if (*head == AN_NONE)
        *tail = AN_NONE;
    r->next = AN_NONE;
    return r;
}

static void fifo_unlink(hk_announcer *a, uint32_t *head, uint32_t *tail, an_req *r)
{
    uint32_t prev = AN_NONE;
    for (uint32_t i = *head; i != AN_NONE; prev = i, i = a->reqs[i]->next) {
        if (i != r->idx)
            continue;
        if (prev == AN_NONE)
            *head = r->next;
        else
            a->reqs[prev]->next = r->next;
        if (*tail == r->idx)
            *tail = prev;
        r->next = AN_NONE;
        return;
    }
    assert(!"request not in the FIFO its state names");
}

/* ---------------- sending ---------------- */

void an_fill_params(const hk_announcer *a, const an_req *r, const an_tracker *t, hk_announce_params *p)
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

static void http_send(hk_announcer *a, an_req *r, an_tracker *t, hk_time now)
{
    hk_announce_params p;
    an_fill_params(a, r, t, &p);
    char url[URL_BUF];
    size_t n = hk_http_announce_url(t->url, &p, url, sizeof url);
    if (n >= sizeof url) {
        an_req_finish(a, r, OUT_BAD_REPLY, -1, -1, "announce URL too long");
        return;
    }
    r->state = REQ_SENT;
    r->sent_at = now;
    r->first_sent = now;
    r->flags |= REQ_TIMED;
    an_req_schedule(a, r, HK_TIME_NEVER);
    a->st.announces++;
    if (r->event == HK_EVENT_STOPPED)
        a->st.stopped_sent++;
    a->rt.http_get(a->rt.base.ctx, url, req_token(r));
}

static void dispatch(hk_announcer *a, an_req *r, hk_time now)
{
    an_tracker *t = a->trackers[r->tracker];
    if (!an_gate_open(t, now)) {
        an_req_finish(a, r, OUT_SKIPPED, -1, -1, "");
        return;
    }
    if (t->unresponsive) {
        r->flags |= REQ_PROBE;
        t->probe_busy = 1;
    }
    if (t->u.scheme != HK_TRACKER_UDP)
        http_send(a, r, t, now);
    else if (hk_udp_conn_usable(&t->udp, now))
        an_udp_send_announce(a, r, t, now);
    else
        an_udp_wait_conn(a, r, t, now);
}

static void count_in_flight(hk_announcer *a, an_host *h, an_req *r)
{
    h->inflight++;
    a->st.in_flight++;
    r->flags |= REQ_COUNTED;
}

void an_host_pump(hk_announcer *a, uint32_t hidx, hk_time now)
{
    an_host *h = &a->hosts[hidx];
    if (h->pumping || a->hold)
        return;
    h->pumping = true;
    while (a->hosts[hidx].inflight < a->cfg.host_inflight && a->hosts[hidx].head != AN_NONE) {
        h = &a->hosts[hidx];
        an_req *r = an_fifo_pop(a, &h->head, &h->tail);
        assert(r->state == REQ_WAIT_HOST);
        r->state = REQ_NEW; /* waits no more: dispatched like the fast path in admit(), and may end there */
        h->waiting--;
        a->st.waiting--;
        count_in_flight(a, h, r);
        dispatch(a, r, now);
    }
    a->hosts[hidx].pumping = false;
}

static void admit(hk_announcer *a, an_req *r, hk_time now)
{
    uint32_t hidx = a->trackers[r->tracker]->host;
    an_host *h = &a->hosts[hidx];
    if (h->inflight < a->cfg.host_inflight && h->head == AN_NONE) {
        count_in_flight(a, h, r);
        dispatch(a, r, now);
        return;
    }
    r->state = REQ_WAIT_HOST;
    an_fifo_push(a, &h->head, &h->tail, r);
    h->waiting++;
    a->st.waiting++;
    an_req_schedule(a, r, HK_TIME_NEVER); /* only a `stopped` expires while waiting */
}

/* ---------------- the HTTP answer ---------------- */

static void http_error(hk_announcer *a, an_req *r, int status, const uint8_t *body, size_t len)
{
    char detail[HK_REPLY_TEXT_MAX + 64];
    char text[HK_REPLY_TEXT_MAX + 1];
    hk_printable(body, len, text, sizeof text);
    if (status >= 500)
        snprintf(detail, sizeof detail, "HTTP %d", status);
    else
        snprintf(detail, sizeof detail, "%s%s%s",
                 status == HK_HTTP_ERR_TIMEOUT     ? "timeout"
                 : status == HK_HTTP_ERR_TOO_LARGE ? "reply too large"
                                                   : "transport error",
                 text[0] ? ": " : "", text);
    an_req_finish(a, r, status == HK_HTTP_ERR_TOO_LARGE ? OUT_BAD_REPLY : OUT_DOWN, -1, -1, detail);
}

static void http_reply(hk_announcer *a, an_req *r, const uint8_t *body, size_t len)
{
    hk_announce_reply rep;
    char err[160];
    if (hk_http_reply_decode(body, len, &rep, err, sizeof err) != 0) {
        an_req_finish(a, r, OUT_BAD_REPLY, -1, -1, err);
        return;
    }
    an_tracker *t = a->trackers[r->tracker];
    if (rep.has_tracker_id) {
        memcpy(t->tracker_id, rep.tracker_id, rep.tracker_id_len);
        t->tracker_id_len = rep.tracker_id_len;
    }
    if (rep.has_warning)
        an_tracker_note(a, t, an_now(a), "warning", rep.warning);
    if (rep.failed)
        an_req_finish(a, r, OUT_REFUSED, rep.interval, rep.min_interval, rep.failure);
    else
        an_req_finish(a, r, OUT_OK, rep.interval, rep.min_interval, "");
}

void an_http_answer(hk_announcer *a, an_req *r, int status, const uint8_t *body, size_t len)
{
    if (status < 0 || status >= 500) {
        http_error(a, r, status, body, len);
    } else if (status != 200) {
        char detail[HK_REPLY_TEXT_MAX + 64];
        snprintf(detail, sizeof detail, "HTTP %d", status);
        an_req_finish(a, r, OUT_BAD_REPLY, -1, -1, detail);
    } else {
        http_reply(a, r, body, len);
    }
}

/* ---------------- slots: outcomes ---------------- */

static hk_time clamp_time(hk_time v, hk_time lo, hk_time hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static hk_time backoff(hk_announcer *a, unsigned fails)
{
    hk_time d = a->cfg.retry_base;
    for (unsigned k = 1; k < fails && d < a->cfg.retry_max; k++)
        d *= 2;
    if (d > a->cfg.retry_max)
        d = a->cfg.retry_max;
    return d / 2 + an_rand_below(a, d / 2 + 1);
}

/* The interval an answer asks for (raised to its min interval), within the floor and the ceiling. */
static hk_time answer_interval(const hk_announcer *a, int64_t interval, int64_t min_interval)
{
    hk_time iv = interval >= 0 ? HK_SECONDS((uint64_t)interval) : a->cfg.default_interval;
    if (interval > (int64_t)(UINT64_MAX / HK_NS_PER_SEC))
        iv = a->cfg.interval_ceiling;
    if (min_interval >= 0 && min_interval < (int64_t)(UINT64_MAX / HK_NS_PER_SEC) &&
        HK_SECONDS((uint64_t)min_interval) > iv)
        iv = HK_SECONDS((uint64_t)min_interval);
    return clamp_time(iv, a->cfg.interval_floor, a->cfg.interval_ceiling);
}

/* Slots that come back together after an outage would otherwise keep announcing together, interval after
 * interval: a late slot draws its next time in [3/4, 5/4] of the interval (never below min interval or the floor,
 * never above the ceiling), so the crowd spreads out again within a few intervals. */
static hk_time late_interval(hk_announcer *a, hk_time iv, int64_t min_interval)
{
    hk_time lo = iv - iv / 4, hi = iv + iv / 4;
    if (min_interval >= 0 && HK_SECONDS((uint64_t)min_interval) > lo)
        lo = HK_SECONDS((uint64_t)min_interval);
    if (lo < a->cfg.interval_floor)
        lo = a->cfg.interval_floor;
    if (hi > a->cfg.interval_ceiling)
        hi = a->cfg.interval_ceiling;
    if (lo < hi)
        iv = lo + an_rand_below(a, hi - lo + 1);
    return iv;
}

static void slot_success(hk_announcer *a, uint32_t s, hk_time now, int64_t interval, int64_t min_interval)
{
    an_slot *sl = &a->slots[s];
    sl->flags |= SLOT_REGISTERED;
    sl->fails = 0;
    sl->tried = 0;
    if (sl->pos) {
        sl->order = an_move_to_front(sl->order, sl->pos);
        sl->pos = 0;
    }
    an_torrent *t = &a->torrents[sl->torrent];
    if (!a->cfg.all_tiers) {
        t->active_tier = sl->tier;
        a->slots[t->first_slot].fails = 0;
    }
    hk_time iv = answer_interval(a, interval, min_interval);
    a->hosts[a->trackers[an_slot_tracker(a, s)]->host].interval_s = (uint32_t)(iv / HK_NS_PER_SEC);
    if (sl->flags & SLOT_LATE) {
        iv = late_interval(a, iv, min_interval);
        sl->flags &= (uint8_t)~SLOT_LATE;
    }
    an_slot_schedule(a, s, now + iv);
}

/* Without all_tiers: a whole tier of slot s failed; the next tier goes now, or after the last the first backs off. */
static void tier_failure(hk_announcer *a, uint32_t s, an_torrent *t, hk_time now)
{
    an_slot *sl = &a->slots[s];
    if (sl->tier + 1u < t->ntiers) {
        t->active_tier = (uint8_t)(sl->tier + 1);
        an_slot_unqueue(a, s);
        an_slot_schedule(a, t->first_slot + sl->tier + 1, now);
        return;
    }
    an_slot *s0 = &a->slots[t->first_slot];
    if (s0->fails < 255)
        s0->fails++;
    unsigned f = s0->fails;
    t->active_tier = 0;
    if (s != t->first_slot)
        an_slot_unqueue(a, s);
    an_slot_schedule(a, t->first_slot, now + backoff(a, f));
}

static void slot_failure(hk_announcer *a, uint32_t s, hk_time now)
{
    an_slot *sl = &a->slots[s];
    sl->flags |= SLOT_LATE;
    unsigned size = an_tier_size(a, s);
    sl->tried++;
    if (sl->tried < size) { /* BEP 12: the next tracker of the tier, now */
        sl->pos = (uint8_t)((sl->pos + 1) % size);
        sl->flags &= (uint8_t)~SLOT_REGISTERED;
        an_slot_schedule(a, s, now);
        return;
    }
    sl->tried = 0;
    if (size > 1) {
        sl->pos = (uint8_t)((sl->pos + 1) % size);
        sl->flags &= (uint8_t)~SLOT_REGISTERED;
    }
    an_torrent *t = &a->torrents[sl->torrent];
    if (!a->cfg.all_tiers && t->ntiers > 1) {
        tier_failure(a, s, t, now);
        return;
    }
    if (sl->fails < 255)
        sl->fails++;
    an_slot_schedule(a, s, now + backoff(a, sl->fails));
}

/* ---------------- finishing a request ---------------- */

void an_issue_orphan_stop(hk_announcer *a, uint32_t tracker, const uint8_t ih[20], hk_time now)
{
    an_req *r = req_new(a, tracker, ih, HK_EVENT_STOPPED, AN_NONE);
    if (!r) {
        a->st.abandoned++;
        return;
    }
    r->expires = an_stop_expiry(a, now);
    admit(a, r, now);
}

/* Takes r out of every queue, timer and count it is in. */
static void req_detach(hk_announcer *a, an_req *r, an_tracker *t, an_host *h)
{
    if (r->flags & REQ_TID)
        an_tid_remove(a, r->tid);
    hk_dl_cancel(&a->req_heap, &r->dl);
    /* a request taken off a FIFO is REQ_NEW again, so these states mean r is in that FIFO */
    if (r->state == REQ_WAIT_HOST) {
        fifo_unlink(a, &h->head, &h->tail, r);
        h->waiting--;
        a->st.waiting--;
    } else if (r->state == REQ_WAIT_CONN) {
        fifo_unlink(a, &t->wait_head, &t->wait_tail, r);
    }
    if (r->flags & REQ_COUNTED) {
        assert(h->inflight > 0 && a->st.in_flight > 0);
        h->inflight--;
        a->st.in_flight--;
    }
}

/* What the outcome tells about the tracker: it answered, or it went quiet (and a failed probe backs off). */
static void tracker_learn(hk_announcer *a, const an_req *r, an_tracker *t, an_outcome out, hk_time now)
{
    if (out == OUT_OK || out == OUT_REFUSED || out == OUT_BAD_REPLY) {
        an_mark_heard(a, t, now);
    } else if (out == OUT_DOWN) {
        if (r->state == REQ_SENT && t->last_heard < r->sent_at)
            an_mark_unresponsive(a, t, now);
        if (r->flags & REQ_PROBE) {
            unsigned k = t->probe_fails < 20 ? t->probe_fails : 20;
            hk_time d = a->cfg.probe_base << k;
            if (d > a->cfg.probe_max || d < a->cfg.probe_base)
                d = a->cfg.probe_max;
            t->probe_after = now + d;
            if (t->probe_fails < 255)
                t->probe_fails++;
        }
    }
    if (r->flags & REQ_PROBE)
        t->probe_busy = 0;
}

static void outcome_count(hk_announcer *a, const an_req *r, an_tracker *t, an_outcome out, const char *detail,
                          hk_time now)
{
    switch (out) {
    case OUT_OK: a->st.ok++; break;
    case OUT_REFUSED: a->st.refused++; break;
    case OUT_BAD_REPLY:
    case OUT_DOWN: a->st.failed++; break;
    case OUT_SKIPPED: a->st.skipped++; break;
    case OUT_ABANDONED: a->st.abandoned++; break;
    case OUT_CANCELLED: break;
    }
    unsigned scheme = (unsigned)t->u.scheme;
    if ((r->flags & REQ_TIMED) && (out == OUT_OK || out == OUT_REFUSED || out == OUT_BAD_REPLY) && scheme >= 1 &&
        scheme <= 3)
        hk_hist_observe(&a->st.latency[scheme - 1], now >= r->first_sent ? (uint64_t)(now - r->first_sent) : 0);
    if (r->event == HK_EVENT_STOPPED && out == OUT_OK)
        a->st.stopped_ok++;
    if (out == OUT_REFUSED) { /* a refusal is about one torrent: the line names it (issue 11 item 8d) */
        char hex[IH_HEX_LEN + 1], what[IH_HEX_LEN + 32];
        ih_hex(r->ih, hex);
        snprintf(what, sizeof what, "announce of %s refused", hex);
        an_tracker_note(a, t, now, what, detail);
    }
    else if (out == OUT_BAD_REPLY || out == OUT_DOWN)
        an_tracker_note(a, t, now, out == OUT_DOWN ? "no answer" : "bad reply", detail);
    else if (out == OUT_OK)
        an_log(a, HK_LOG_TRACE, "tracker %s: announce%s%s ok", t->url, r->event ? " " : "",
               hk_announce_event_name((hk_announce_event)r->event));
}

/* What the outcome of an announce (event) does to its slot s. */
static void slot_settle(hk_announcer *a, uint32_t s, uint8_t event, an_outcome out, int64_t interval,
                        int64_t min_interval, hk_time now)
{
    an_slot *sl = &a->slots[s];
    sl->state = SLOT_IDLE;
    sl->link = AN_NONE;
    if (a->shutting) {
        if (event == HK_EVENT_STOPPED) {
            if (out == OUT_OK)
                sl->flags &= (uint8_t)~SLOT_REGISTERED;
        } else if (out == OUT_OK) {
            sl->flags |= SLOT_REGISTERED;
            an_start_stop(a, s, now);
        }
    } else if (out == OUT_OK) {
        slot_success(a, s, now, interval, min_interval);
    } else if (out != OUT_ABANDONED && out != OUT_CANCELLED) {
        slot_failure(a, s, now);
    }
}

void an_req_finish(hk_announcer *a, an_req *r, an_outcome out, int64_t interval, int64_t min_interval,
                   const char *detail)
{
    hk_time now = an_now(a);
    an_tracker *t = a->trackers[r->tracker];
    uint32_t hidx = t->host;
    uint32_t tracker = r->tracker;
    t->refs++; /* held until the end: the request may hold the last reference */
    req_detach(a, r, t, &a->hosts[hidx]);
    if (r->flags & REQ_ABANDONED) { /* given up earlier; this is the late completion */
        req_free(a, r);
    } else {
        tracker_learn(a, r, t, out, now);
        outcome_count(a, r, t, out, detail, now);
        uint32_t s = r->slot;
        uint8_t ih[20];
        memcpy(ih, r->ih, 20);
        uint8_t event = r->event;
        req_free(a, r);
        if (s != AN_NONE)
            slot_settle(a, s, event, out, interval, min_interval, now);
        else if (out == OUT_OK && event != HK_EVENT_STOPPED && !(a->shutting && now >= a->stop_deadline))
            an_issue_orphan_stop(a, tracker, ih, now); /* its torrent went away while this announce was out */
    }
    an_host_pump(a, hidx, now);
    an_tracker_unref(a, tracker);
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

/* A request for slot s (to its current tracker) goes to admission; false without memory. */
static bool slot_request(hk_announcer *a, uint32_t s, uint8_t event, hk_time expires, hk_time now)
{
    an_slot *sl = &a->slots[s];
    an_req *r = req_new(a, an_slot_tracker(a, s), a->torrents[sl->torrent].ih, event, s);
    if (!r)
        return false;
    r->expires = expires;
    sl->state = SLOT_BUSY;
    sl->link = r->idx;
    admit(a, r, now);
    return true;
}

void an_slot_start(hk_announcer *a, uint32_t s, hk_time now)
{
    an_slot *sl = &a->slots[s];
    an_tracker *t = a->trackers[an_slot_tracker(a, s)];
    if (!an_gate_open(t, now)) {
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
            an_slot_schedule(a, s, at);
            return;
        }
    }
    sl->flags &= (uint8_t)~SLOT_PACED;
    uint8_t event = (sl->flags & SLOT_REGISTERED) ? HK_EVENT_NONE : HK_EVENT_STARTED;
    if (!slot_request(a, s, event, HK_TIME_NEVER, now)) {
        an_log(a, HK_LOG_ERROR, "announcer: out of memory for an announce; retrying later");
        sl = &a->slots[s];
        sl->state = SLOT_IDLE;
        an_slot_schedule(a, s, now + a->cfg.retry_base);
    }
}

void an_start_stop(hk_announcer *a, uint32_t s, hk_time now)
{
    if (!slot_request(a, s, HK_EVENT_STOPPED, a->stop_deadline, now))
        a->st.abandoned++;
}
