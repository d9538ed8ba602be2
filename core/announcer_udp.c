/* announcer_udp: owns the BEP 15 side of a request: each tracker's connection id (name resolution, the connect
 * exchange and its retransmissions, the requests waiting for it), announce transmissions and retransmissions, and
 * the datagrams that answer them (see announcer.h). */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "announcer_internal.h"

static void udp_send_connect(hk_announcer *a, an_tracker *t)
{
    uint8_t pkt[HK_UDP_CONNECT_LEN];
    size_t n = hk_udp_connect_request(pkt, t->udp.tid);
    a->st.udp_connects++;
    an_log(a, HK_LOG_TRACE, "tracker %s: connect (n = %u, transaction %08x)", t->url, t->udp.attempt, t->udp.tid);
    a->rt.udp_send(a->rt.base.ctx, &t->addr[t->cur_addr], pkt, n);
}

static void schedule_connect_timer(hk_announcer *a, an_tracker *t)
{
    if (!hk_dl_schedule(&a->tracker_heap, &t->dl, t->udp.deadline))
        an_log(a, HK_LOG_ERROR, "announcer: out of memory for a timer");
}

/* Fails every request waiting for t's connection id (keeping the first as the probe when asked). */
static void tracker_fail_waiting(hk_announcer *a, an_tracker *t, an_outcome out, const char *why, bool keep_probe)
{
    uint32_t keep = AN_NONE;
    if (keep_probe && t->wait_head != AN_NONE) {
        an_req *first = a->reqs[t->wait_head];
        if ((first->flags & REQ_PROBE) || !t->probe_busy) {
            keep = first->idx;
            first->flags |= REQ_PROBE;
            t->probe_busy = 1;
        }
    }
    t->refs++; /* t may lose its last request here */
    uint32_t i = t->wait_head;
    while (i != AN_NONE) {
        an_req *r = a->reqs[i];
        i = r->next;
        if (r->idx != keep)
            an_req_finish(a, r, out, -1, -1, why);
    }
    an_tracker_unref(a, t->idx);
}

/* Gets t a connection id: resolves its name first when needed, else starts a connect exchange. */
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
            an_tracker_host(t, host);
            an_log(a, HK_LOG_TRACE, "tracker %s: resolving %s", t->url, host);
            a->rt.resolve(a->rt.base.ctx, host, (uint64_t)t->gen << 32 | t->idx);
            return;
        }
    }
    uint32_t tid;
    if (!an_tid_new(a, t->idx | TID_TRACKER, &tid)) {
        tracker_fail_waiting(a, t, OUT_DOWN, "out of memory", false);
        return;
    }
    hk_udp_conn_start(&t->udp, tid, now);
    schedule_connect_timer(a, t);
    udp_send_connect(a, t);
}

void an_udp_send_announce(hk_announcer *a, an_req *r, an_tracker *t, hk_time now)
{
    if (r->flags & REQ_TID) {
        an_tid_remove(a, r->tid);
        r->flags &= (uint8_t)~REQ_TID;
    }
    if (!an_tid_new(a, r->idx, &r->tid)) {
        an_req_finish(a, r, OUT_DOWN, -1, -1, "out of memory");
        return;
    }
    r->flags |= REQ_TID;
    hk_announce_params p;
    an_fill_params(a, r, t, &p);
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
    if (!(r->flags & REQ_TIMED)) { /* retransmissions keep the first one's time */
        r->first_sent = now;
        r->flags |= REQ_TIMED;
    }
    an_req_schedule(a, r, now + hk_udp_timeout(r->attempt));
    a->rt.udp_send(a->rt.base.ctx, &t->addr[t->cur_addr], pkt, n);
}

void an_udp_wait_conn(hk_announcer *a, an_req *r, an_tracker *t, hk_time now)
{
    r->state = REQ_WAIT_CONN;
    an_req_schedule(a, r, HK_TIME_NEVER);
    an_fifo_push(a, &t->wait_head, &t->wait_tail, r);
    tracker_connect(a, t, now);
}

/* ---------------- timers ---------------- */

void an_req_timer(hk_announcer *a, an_req *r, hk_time now)
{
    if (now >= r->expires) {
        an_req_finish(a, r, OUT_ABANDONED, -1, -1, "");
        return;
    }
    an_tracker *t = a->trackers[r->tracker];
    if (r->state != REQ_SENT || t->u.scheme != HK_TRACKER_UDP)
        return;
    if (r->flags & REQ_TID) {
        an_tid_remove(a, r->tid);
        r->flags &= (uint8_t)~REQ_TID;
    }
    if (t->last_heard < r->sent_at)
        an_mark_unresponsive(a, t, now);
    if (r->attempt >= a->cfg.udp_max_n) {
        an_req_finish(a, r, OUT_DOWN, -1, -1, "no answer to the last retransmission");
        return;
    }
    if (t->unresponsive && !(r->flags & REQ_PROBE)) {
        if (t->probe_busy) {
            an_req_finish(a, r, OUT_DOWN, -1, -1, "no answer");
            return;
        }
        r->flags |= REQ_PROBE;
        t->probe_busy = 1;
    }
    r->attempt++;
    a->st.udp_retransmits++;
    if (hk_udp_conn_usable(&t->udp, now))
        an_udp_send_announce(a, r, t, now);
    else
        an_udp_wait_conn(a, r, t, now);
}

/* The connect retransmission of t, once t's waiters were dealt with (t->refs is held by the caller). */
static void connect_retransmit(hk_announcer *a, an_tracker *t, hk_time now)
{
    if (t->wait_head == AN_NONE) { /* nobody needs the connection any more */
        hk_udp_conn_init(&t->udp);
        return;
    }
    uint32_t tid;
    if (!an_tid_new(a, t->idx | TID_TRACKER, &tid)) {
        hk_udp_conn_init(&t->udp);
        tracker_fail_waiting(a, t, OUT_DOWN, "out of memory", false);
        return;
    }
    if (!hk_udp_conn_timeout(&t->udp, tid, now, a->cfg.udp_max_n)) {
        an_tid_remove(a, tid);
        tracker_fail_waiting(a, t, OUT_DOWN, "no answer to the last connect retransmission", false);
        return;
    }
    if (t->naddr > 1)
        t->cur_addr = (uint8_t)((t->cur_addr + 1) % t->naddr);
    a->st.udp_retransmits++;
    schedule_connect_timer(a, t);
    udp_send_connect(a, t);
}

void an_tracker_timer(hk_announcer *a, an_tracker *t, hk_time now)
{
    if (t->udp.state != HK_UDP_CONN_CONNECTING)
        return;
    an_tid_remove(a, t->udp.tid);
    if (t->last_heard < t->udp.sent_at)
        an_mark_unresponsive(a, t, now);
    t->refs++;
    if (t->unresponsive)
        tracker_fail_waiting(a, t, OUT_DOWN, "no answer to connect", true);
    connect_retransmit(a, t, now);
    an_tracker_unref(a, t->idx);
}

/* ---------------- datagrams ---------------- */

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
        an_tid_remove(a, t->udp.tid);
        hk_dl_cancel(&a->tracker_heap, &t->dl);
        hk_udp_conn_init(&t->udp);
        an_mark_heard(a, t, now);
        tracker_fail_waiting(a, t, OUT_REFUSED, rep->message, false);
        return;
    }
    if (rep->action != HK_UDP_ACTION_CONNECT || !hk_udp_conn_reply(&t->udp, rep->tid, rep->conn_id, now)) {
        a->st.stray_datagrams++;
        return;
    }
    an_tid_remove(a, rep->tid);
    hk_dl_cancel(&a->tracker_heap, &t->dl);
    an_mark_heard(a, t, now);
    t->refs++;
    an_req *r;
    while ((r = an_fifo_pop(a, &t->wait_head, &t->wait_tail)) != NULL) {
        r->state = REQ_NEW; /* waits no more (if the send fails, req_detach must not look for it in the FIFO) */
        an_udp_send_announce(a, r, t, now);
    }
    an_tracker_unref(a, t->idx);
}

/* The tracker (and request, NULL for a connect) a transaction id under way belongs to; NULL if none. */
static an_tracker *tid_owner(hk_announcer *a, const uint8_t *bytes, an_req **r)
{
    uint32_t tid = (uint32_t)bytes[4] << 24 | (uint32_t)bytes[5] << 16 | (uint32_t)bytes[6] << 8 | bytes[7];
    uint32_t val = an_tid_lookup(a, tid);
    *r = NULL;
    if (val == AN_NONE)
        return NULL;
    if (val & TID_TRACKER) {
        assert((val & ~TID_TRACKER) < a->ntrackers && a->trackers[val & ~TID_TRACKER]);
        return a->trackers[val & ~TID_TRACKER];
    }
    assert(val < a->nreqs && a->reqs[val] && (a->reqs[val]->flags & REQ_TID));
    *r = a->reqs[val];
    return a->trackers[(*r)->tracker];
}

bool an_udp_datagram(hk_announcer *a, const hk_addr *from, const uint8_t *bytes, size_t len)
{
    hk_time now = an_now(a);
    an_req *r;
    an_tracker *t = len < 8 ? NULL : tid_owner(a, bytes, &r);
    if (!t || !tracker_has_addr(t, from)) {
        a->st.stray_datagrams++;
        return false;
    }
    hk_udp_reply rep;
    char err[128];
    if (hk_udp_reply_decode(bytes, len, from->family, &rep, err, sizeof err) != 0) {
        if (r) {
            an_req_finish(a, r, OUT_BAD_REPLY, -1, -1, err);
        } else {
            a->st.stray_datagrams++;
            an_tracker_note(a, t, now, "bad connect reply", err);
        }
        return true;
    }
    if (!r)
        on_connect_reply(a, t, &rep, now);
    else if (rep.action == HK_UDP_ACTION_ANNOUNCE)
        an_req_finish(a, r, OUT_OK, rep.interval, -1, "");
    else if (rep.action == HK_UDP_ACTION_ERROR)
        an_req_finish(a, r, OUT_REFUSED, -1, -1, rep.message);
    else
        a->st.stray_datagrams++;
    return true;
}

/* ---------------- name resolution ---------------- */

/* Keeps the usable addresses (of the configured family), staying on the address in use when it is among them. */
static void tracker_set_addrs(hk_announcer *a, an_tracker *t, const hk_addr *addrs, size_t n)
{
    hk_addr old = t->addr[t->cur_addr];
    bool had = t->naddr > 0;
    t->naddr = 0;
    for (size_t i = 0; i < n && t->naddr < AN_MAX_ADDRS; i++) {
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
}

static void resolve_failed(hk_announcer *a, an_tracker *t, size_t n, hk_time now)
{
    char host[HK_TRACKER_HOST_MAX + 1];
    an_tracker_host(t, host);
    an_mark_unresponsive(a, t, now);
    char why[HK_TRACKER_HOST_MAX + 64];
    snprintf(why, sizeof why, "cannot resolve %s%s", host, n ? " to an address of the configured family" : "");
    /* the first waiting request stands for the probe that failed */
    if (t->wait_head != AN_NONE && !t->probe_busy) {
        a->reqs[t->wait_head]->flags |= REQ_PROBE;
        t->probe_busy = 1;
    }
    tracker_fail_waiting(a, t, OUT_DOWN, why, false);
}

void an_udp_resolved(hk_announcer *a, an_tracker *t, const hk_addr *addrs, size_t n)
{
    hk_time now = an_now(a);
    t->resolving = 0;
    tracker_set_addrs(a, t, addrs, n);
    t->refs++;
    if (t->naddr == 0)
        resolve_failed(a, t, n, now);
    else if (t->wait_head != AN_NONE)
        tracker_connect(a, t, now);
    an_tracker_unref(a, t->idx);
}
