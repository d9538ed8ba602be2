/* seeder_timers: owns each peer's deadline (the earliest of its timeouts, kept in the one deadline heap), what
 * happens when one fires (DESIGN §6), and the choke transitions that turn the choker's answers into messages. */
#include <stddef.h>

#include "seeder_internal.h"

static hk_time tmin(hk_time a, hk_time b)
{
    return a < b ? a : b;
}

hk_time hks_peer_deadline(const hk_seeder *s, const hk_peer *p)
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
    }
    return t;
}

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
    if (p->choke.state == HK_CHOKE_UNCHOKED && p->idle_armed &&
        now >= hks_time_add(p->idle_since, c->unchoked_idle_timeout)) {
        s->stats.timeouts[HK_TIMEOUT_UNCHOKED_IDLE]++;
        hks_log(s, HK_LOG_DEBUG, "peer %llu: timeout %s after %llu ms", (unsigned long long)p->id,
               hk_timeout_name(HK_TIMEOUT_UNCHOKED_IDLE), ms(now - p->idle_since));
        if (!hks_turn_over(s, p, "unchoked without requests"))
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
        hks_mark_dirty(s, p); /* rescheduled at the end of the event (no-op if closed) */
    }
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Choke transitions                                                                                                 */

static hk_peer *peer_of_entry(hk_choke_entry *e)
{
    return (hk_peer *)(void *)((char *)e - offsetof(hk_peer, choke));
}

static bool send_simple(hk_seeder *s, hk_peer *p, wire_msg_type type)
{
    uint8_t b[WIRE_SIMPLE_LEN];
    wire_encode_simple(b, type);
    return hks_send_control_bytes(s, p, b, sizeof b);
}

static void do_unchoke(hk_seeder *s, hk_peer *p)
{
    if (s->choker.unchoked > s->stats.max_unchoked_seen)
        s->stats.max_unchoked_seen = s->choker.unchoked;
    hks_log(s, HK_LOG_DEBUG, "peer %llu: unchoked (%u/%u slots, %u waiting)", (unsigned long long)p->id,
           s->choker.unchoked, s->choker.max_unchoked, s->choker.waiting);
    p->idle_armed = true;
    p->idle_since = s->now;
    hks_mark_dirty(s, p);
    if (send_simple(s, p, WIRE_UNCHOKE))
        hks_mark_ready(s, p);
}

void hks_promote_waiters(hk_seeder *s)
{
    hk_choke_entry *e;
    while ((e = hk_choker_promote(&s->choker, s->now)) != NULL)
        do_unchoke(s, peer_of_entry(e));
}

void hks_peer_interested(hk_seeder *s, hk_peer *p)
{
    if (p->interested)
        return;
    p->interested = true;
    hks_mark_dirty(s, p);
    if (hk_choker_interested(&s->choker, &p->choke, s->now)) {
        hks_log(s, HK_LOG_DEBUG, "peer %llu: interested", (unsigned long long)p->id);
        do_unchoke(s, p);
    } else {
        hks_log(s, HK_LOG_DEBUG, "peer %llu: interested; waiting in line at position %u (%u unchoked)",
               (unsigned long long)p->id, s->choker.waiting, s->choker.unchoked);
    }
}

void hks_peer_not_interested(hk_seeder *s, hk_peer *p)
{
    if (!p->interested)
        return;
    p->interested = false;
    hks_mark_dirty(s, p);
    bool was_unchoked = p->choke.state == HK_CHOKE_UNCHOKED;
    bool freed = hk_choker_leave(&s->choker, &p->choke);
    hks_log(s, HK_LOG_DEBUG, "peer %llu: not interested%s", (unsigned long long)p->id,
           was_unchoked ? "; choked, slot freed" : "");
    if (was_unchoked && send_simple(s, p, WIRE_CHOKE))
        hks_reject_queued_blocks(s, p, "not interested");
    if (freed)
        hks_promote_waiters(s);
}

bool hks_turn_over(hk_seeder *s, hk_peer *p, const char *why)
{
    bool full = s->npeers >= s->cfg.max_peers;
    hks_mark_dirty(s, p);
    switch (hk_choker_turn_over(&s->choker, &p->choke, s->now, full)) {
    case HK_TURN_REFILLED:
        hks_log(s, HK_LOG_DEBUG, "peer %llu: turn renewed (%s; nobody waiting)", (unsigned long long)p->id, why);
        p->idle_since = s->now;
        return true;
    case HK_TURN_REQUEUED:
        hks_log(s, HK_LOG_DEBUG, "peer %llu: choked (%s); back of the line at position %u",
               (unsigned long long)p->id, why, s->choker.waiting);
        if (send_simple(s, p, WIRE_CHOKE))
            hks_reject_queued_blocks(s, p, "choked");
        hks_promote_waiters(s);
        return !p->closed;
    case HK_TURN_DISCONNECT:
        hks_log(s, HK_LOG_DEBUG, "peer %llu: choked (%s); connections at their cap: disconnected to make room",
               (unsigned long long)p->id, why);
        hks_close_peer(s, p, true, "turn over while connections are at their cap (%u)", s->cfg.max_peers);
        hks_promote_waiters(s);
        return false;
    }
    return !p->closed;
}
