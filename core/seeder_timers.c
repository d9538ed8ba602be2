/* seeder_timers: owns each peer's deadline (the earliest of its timeouts, kept in the one deadline heap), its
 * rescheduling at the end of every event that touched the peer, and what happens when one fires (docs/design.md §6): a
 * timeout closes the peer, the end of an unchoked turn goes to seeder_choke.c, a quiet connection gets a keep-alive;
 * and the slot-squatting graces (unchoked_grace, unchoked_stall): an unused slot's turn ends, or it becomes spare. */
#include <stddef.h>

#include "seeder_internal.h"

static hk_time tmin(hk_time a, hk_time b)
{
    return a < b ? a : b;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Deadlines                                                                                                         */

/* When p's unused slot outlasts its grace (unchoked_grace asking for nothing, unchoked_stall not reading);
 * HK_TIME_NEVER when it uses its slot or the grace already fired for this stretch. */
static hk_time grace_end(const hk_seeder *s, const hk_peer *p)
{
    hk_time t = HK_TIME_NEVER;
    if (p->choke.state != HK_CHOKE_UNCHOKED || p->grace_over)
        return t;
    if (p->idle_armed)
        t = tmin(t, hks_time_add(p->idle_since, hks_peer_grace(s, p)));
    if (p->stall_since != HK_TIME_NEVER)
        t = tmin(t, hks_time_add(p->stall_since, hks_peer_stall_grace(s, p)));
    return t;
}

/* The earliest time something is due for p. */
static hk_time peer_deadline(const hk_seeder *s, const hk_peer *p)
{
    const hk_config *c = &s->cfg;
    hk_time t = hks_time_add(p->last_recv, c->idle_timeout);
    if (p->phase != HK_PHASE_ACTIVE)
        t = tmin(t, hks_time_add(p->accepted_at, c->handshake_timeout));
    if (p->phase != HK_PHASE_HANDSHAKE)
        t = tmin(t, hks_time_add(p->last_send, c->keepalive_interval));
    if (p->stall_since != HK_TIME_NEVER)
        t = tmin(t, hks_time_add(p->stall_since, c->send_stall_timeout));
    if (p->choke.state == HK_CHOKE_WAITING && c->max_wait)
        t = tmin(t, hks_time_add(p->choke.since, c->max_wait));
    if (p->choke.state == HK_CHOKE_UNCHOKED) {
        if (p->idle_armed)
            t = tmin(t, hks_time_add(p->idle_since, c->unchoked_idle_timeout));
        t = tmin(t, p->choke.slice_end);
        t = tmin(t, grace_end(s, p));
    }
    if (p->bad_dropped && p->idle_armed)
        t = tmin(t, hks_time_add(p->idle_since, c->unchoked_grace));
    t = tmin(t, p->disk_retry_at); /* HK_TIME_NEVER unless a disk load said RETRY */
    return t;
}

/* Slot squatting (issue 14 item 2): an unchoked peer leaves its slot unused while it asks for nothing (idle_armed)
 * or does not read what is queued for it (stalled). */
static bool slot_unused(const hk_peer *p)
{
    return p->choke.state == HK_CHOKE_UNCHOKED && (p->idle_armed || p->stall_since != HK_TIME_NEVER);
}

/* After the event: a peer using its slot is not spare (and its next idle stretch gets a new grace); a peer with
 * strikes (its last turn unused) that has asked for nothing in this turn is spare at once. */
static void update_spare(hk_seeder *s, hk_peer *p)
{
    if (!slot_unused(p)) {
        p->grace_over = false;
        hk_choker_set_spare(&s->choker, &p->choke, false);
    } else if (p->choke.strikes > 0 && !p->turn_requested) {
        hk_choker_set_spare(&s->choker, &p->choke, true);
    }
}

/* Updates p's unchoked-idle and send-stall clocks to the end of the event and moves its deadline. */
static void reschedule(hk_seeder *s, hk_peer *p)
{
    hks_choke_reset_end(s, p);
    if (p->closed)
        return;
    bool unchoked = p->choke.state == HK_CHOKE_UNCHOKED;
    if (unchoked && hk_rq_count(&p->rq, HK_REQ_BLOCK) == 0) {
        if (!p->idle_armed) {
            p->idle_armed = true;
            p->idle_since = s->now;
        }
    } else {
        p->idle_armed = false;
    }
    if (hk_rq_len(&p->rq) == 0)
        p->stall_since = HK_TIME_NEVER; /* nothing to send: not stalled */
    else if (p->room == 0 && p->stall_since == HK_TIME_NEVER)
        p->stall_since = s->now; /* requests wait and the backend grants no room: stalled from now */
    update_spare(s, p);
    hk_time t = peer_deadline(s, p);
    if (t == HK_TIME_NEVER)
        hk_dl_cancel(&s->deadlines, &p->dl);
    else if (!hk_dl_schedule(&s->deadlines, &p->dl, t))
        hks_close_peer(s, p, true, "out of memory for its deadline");
}

void hks_reschedule_touched(hk_seeder *s)
{
    /* The deadline sequence numbers follow the order of first touch. A peer closed for lack of memory for its
     * deadline may free a slot; the waiters unchoked for it are touched in turn and rescheduled by this loop. */
    hk_peer *p;
    while ((p = hks_take_touched(s)) != NULL) {
        reschedule(s, p);
        hks_promote_freed(s);
    }
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Firing                                                                                                            */

static unsigned long long ms(hk_time t)
{
    return (unsigned long long)(t / 1000000u);
}

static void timeout_close(hk_seeder *s, hk_peer *p, hk_timeout_kind k, hk_time since)
{
    s->stats.timeouts[k]++;
    hks_log(s, HK_LOG_DEBUG, "peer %llu: timeout %s after %llu ms", (unsigned long long)p->id, hk_timeout_name(k),
           ms(s->now - since));
    hks_close_peer(s, p, true, "timeout %s", hk_timeout_name(k));
}

static void fire_peer(hk_seeder *s, hk_peer *p)
{
    const hk_config *c = &s->cfg;
    hk_time now = s->now;
    hks_disk_retry_due(s, p);
    if (p->phase != HK_PHASE_ACTIVE && now >= hks_time_add(p->accepted_at, c->handshake_timeout)) {
        timeout_close(s, p, HK_TIMEOUT_HANDSHAKE, p->accepted_at);
        return;
    }
    if (now >= hks_time_add(p->last_recv, c->idle_timeout)) {
        timeout_close(s, p, HK_TIMEOUT_IDLE, p->last_recv);
        return;
    }
    if (p->stall_since != HK_TIME_NEVER && now >= hks_time_add(p->stall_since, c->send_stall_timeout)) {
        timeout_close(s, p, HK_TIMEOUT_SEND_STALL, p->stall_since);
        return;
    }
    if (p->choke.state == HK_CHOKE_WAITING && c->max_wait && now >= hks_time_add(p->choke.since, c->max_wait)) {
        timeout_close(s, p, HK_TIMEOUT_MAX_WAIT, p->choke.since);
        return;
    }
    if (p->bad_dropped && p->idle_armed && now >= hks_time_add(p->idle_since, c->unchoked_grace))
        hks_choke_discard_dropped(s, p); /* before its grace ends its turn: it waits for that dropped request */
    if (now >= grace_end(s, p)) {
        /* its grace is over: the slot goes to whoever waits; when nobody does, it is spare (preempted later) */
        p->grace_over = true;
        if (s->choker.waiting == 0)
            hk_choker_set_spare(&s->choker, &p->choke, true);
        else if (!hks_turn_unused(s, p,
                                  p->idle_armed ? "asked for nothing for its grace" : "did not read for its grace"))
            return;
    }
    if (p->choke.state == HK_CHOKE_UNCHOKED && p->idle_armed &&
        now >= hks_time_add(p->idle_since, c->unchoked_idle_timeout)) {
        s->stats.timeouts[HK_TIMEOUT_UNCHOKED_IDLE]++;
        hks_log(s, HK_LOG_DEBUG, "peer %llu: timeout %s after %llu ms", (unsigned long long)p->id,
               hk_timeout_name(HK_TIMEOUT_UNCHOKED_IDLE), ms(now - p->idle_since));
        if (!hks_turn_unused(s, p, "unchoked without requests"))
            return;
    }
    if (p->choke.state == HK_CHOKE_UNCHOKED && now >= p->choke.slice_end) {
        if (!hks_turn_over(s, p, "slice over"))
            return;
    }
    if (p->phase != HK_PHASE_HANDSHAKE && now >= hks_time_add(p->last_send, c->keepalive_interval)) {
        uint8_t ka[WIRE_KEEPALIVE_LEN];
        wire_encode_keepalive(ka);
        hks_log(s, HK_LOG_TRACE, "peer %llu: keep-alive", (unsigned long long)p->id);
        hks_send_control_bytes(s, p, ka, sizeof ka);
    }
}

void hks_fire_deadlines(hk_seeder *s)
{
    hk_deadline *d;
    while ((d = hk_dl_pop_due(&s->deadlines, s->now)) != NULL) {
        hk_peer *p = (hk_peer *)(void *)((char *)d - offsetof(hk_peer, dl));
        fire_peer(s, p);
        hks_promote_freed(s); /* a slot freed by a timeout goes to the line before the next peer's deadline */
        hks_mark_touched(s, p); /* rescheduled at the end of the event (no-op if closed) */
    }
}
