/* seeder_choke: owns the choke transitions applied to peers: unchoke (on interest, or promotion from the head of the
 * line when a slot frees up), choke (not interested, end of a turn with others waiting, rejecting what the peer had
 * queued), disconnect at the end of a turn when connections are at their cap, filling the slots that closes
 * freed (hks_promote_freed), unused turns and the preemption of spare slots (slot squatting, issue 14 item 2), and
 * the choke-and-unchoke reset of a non-fast peer whose requests overflow. Who gets a slot and when is
 * core/choker.c's pure policy; this file turns its answers into messages and log lines. */
#include <stddef.h>

#include "seeder_internal.h"

static hk_peer *peer_of_entry(hk_choke_entry *e)
{
    return (hk_peer *)(void *)((char *)e - offsetof(hk_peer, choke));
}

/* p's position in the line it just joined at the back (O(1); the low-priority line comes after the normal one). */
static uint32_t back_position(const hk_seeder *s, const hk_peer *p)
{
    return p->choke.low ? s->choker.waiting : s->choker.waiting - s->choker.waiting_low;
}

static bool send_simple(hk_seeder *s, hk_peer *p, wire_msg_type type)
{
    uint8_t b[WIRE_SIMPLE_LEN];
    wire_encode_simple(b, type);
    return hks_send_control_bytes(s, p, b, sizeof b);
}

/* Sends choke and answers (or drops) the block requests p had queued. */
static void choke(hk_seeder *s, hk_peer *p, const char *why)
{
    p->reset_pending = false; /* this choke discards the requests over the cap as well */
    if (send_simple(s, p, WIRE_CHOKE))
        hks_reject_queued_blocks(s, p, why);
}

/* The choker just gave p a slot: say so and let it be served. */
static void unchoke(hk_seeder *s, hk_peer *p)
{
    if (s->choker.unchoked > s->stats.max_unchoked_seen)
        s->stats.max_unchoked_seen = s->choker.unchoked;
    hks_log(s, HK_LOG_DEBUG, "peer %llu: unchoked (%u/%u slots, %u waiting)", (unsigned long long)p->id,
            s->choker.unchoked, s->choker.max_unchoked, s->choker.waiting);
    p->idle_armed = true;
    p->idle_since = s->now;
    p->grace_over = false;
    p->turn_requested = false;
    p->stall_drained = false;
    hks_mark_touched(s, p);
    if (send_simple(s, p, WIRE_UNCHOKE))
        hks_mark_ready(s, p);
}

/* The choker ended p's turn as unused (hk_choker_turn_unused, hk_choker_preempt): choke it, or close it when
 * connections are at their cap. Does not promote (the caller does). Returns false if p was closed. */
static bool unused_turn_ended(hk_seeder *s, hk_peer *p, hk_turn_result r, const char *why)
{
    s->stats.turns_unused++;
    hks_mark_touched(s, p);
    if (r == HK_TURN_DISCONNECT) {
        hks_log(s, HK_LOG_DEBUG, "peer %llu: choked (%s; slot unused); connections at their cap: disconnected to "
                "make room", (unsigned long long)p->id, why);
        hks_close_peer(s, p, true, "unused turn while connections are at their cap (%u)", s->cfg.max_peers);
        return false;
    }
    hks_log(s, HK_LOG_DEBUG, "peer %llu: choked (%s; slot unused, %u in a row); back of the low-priority line at "
            "position %u", (unsigned long long)p->id, why, p->choke.strikes, back_position(s, p));
    choke(s, p, "choked");
    return !p->closed;
}

bool hks_turn_unused(hk_seeder *s, hk_peer *p, const char *why)
{
    hks_mark_touched(s, p);
    hk_turn_result r = hk_choker_turn_unused(&s->choker, &p->choke, s->now, s->npeers >= s->cfg.max_peers);
    if (r == HK_TURN_REFILLED) { /* TRACE, here and below: it repeats once per credit (1 MiB) while nobody waits */
        hks_log(s, HK_LOG_TRACE, "peer %llu: turn renewed (%s; nobody waiting)", (unsigned long long)p->id, why);
        p->idle_since = s->now;
        return true;
    }
    bool open = unused_turn_ended(s, p, r, why);
    hks_promote_waiters(s);
    return open;
}

void hks_slot_used(hk_seeder *s, hk_peer *p)
{
    if (p->stall_since != HK_TIME_NEVER)
        return; /* asking while not reading what is queued does not use the slot (its stall grace runs on) */
    p->grace_over = false;
    p->turn_requested = true;
    hk_choker_set_spare(&s->choker, &p->choke, false);
}

hk_time hks_peer_grace(const hk_seeder *s, const hk_peer *p)
{
    return hk_choker_grace(&p->choke, s->cfg.unchoked_grace);
}

hk_time hks_peer_stall_grace(const hk_seeder *s, const hk_peer *p)
{
    hk_time g = hks_peer_grace(s, p);
    return p->stall_drained || g > s->cfg.unchoked_stall ? s->cfg.unchoked_stall : g;
}

void hks_choke_reset(hk_seeder *s, hk_peer *p, const char *why)
{
    if (p->reset_pending || p->closed || p->choke.state != HK_CHOKE_UNCHOKED)
        return;
    s->stats.choke_resets++;
    hks_log(s, HK_LOG_DEBUG, "peer %llu: request over the cap (%s; no fast extension): its %u queued requests are "
            "served, then a choke discards the rest", (unsigned long long)p->id, why,
            hk_rq_count(&p->rq, HK_REQ_BLOCK));
    p->reset_pending = true;
    hks_mark_touched(s, p);
}

void hks_choke_reset_end(hk_seeder *s, hk_peer *p)
{
    if (!p->reset_pending || p->closed || hk_rq_count(&p->rq, HK_REQ_BLOCK) > 0)
        return;
    p->reset_pending = false;
    if (p->choke.state != HK_CHOKE_UNCHOKED)
        return; /* choked meanwhile: that choke discarded them */
    hks_log(s, HK_LOG_DEBUG, "peer %llu: choked and unchoked again (the choke discards the requests over the cap; "
            "turn kept)", (unsigned long long)p->id);
    uint8_t b[2 * WIRE_SIMPLE_LEN];
    wire_encode_simple(b, WIRE_CHOKE);
    wire_encode_simple(b + WIRE_SIMPLE_LEN, WIRE_UNCHOKE);
    if (hks_send_control_bytes(s, p, b, sizeof b)) {
        p->idle_armed = true;
        p->idle_since = s->now;
    }
}

void hks_choke_discard_dropped(hk_seeder *s, hk_peer *p)
{
    p->bad_dropped = false;
    if (p->closed || p->choke.state != HK_CHOKE_UNCHOKED)
        return;
    hks_log(s, HK_LOG_DEBUG, "peer %llu: choked and unchoked again (it waits for a request of a piece that fails its "
            "hash, dropped: no fast extension; turn kept)", (unsigned long long)p->id);
    uint8_t b[2 * WIRE_SIMPLE_LEN];
    wire_encode_simple(b, WIRE_CHOKE);
    wire_encode_simple(b + WIRE_SIMPLE_LEN, WIRE_UNCHOKE);
    if (hks_send_control_bytes(s, p, b, sizeof b)) {
        p->idle_armed = true;
        p->idle_since = s->now;
    }
}

void hks_promote_waiters(hk_seeder *s)
{
    hk_choke_entry *e;
    for (;;) {
        /* A promoted peer closed by its unchoke frees its slot again: the loop gives it to the next in line. */
        while ((e = hk_choker_promote(&s->choker, s->now)) != NULL)
            unchoke(s, peer_of_entry(e));
        /* A spare slot (its peer idle past its grace, or idle with strikes) goes at once to the normal line. */
        hk_turn_result r;
        e = hk_choker_preempt(&s->choker, s->now, s->npeers >= s->cfg.max_peers, &r);
        if (!e)
            break;
        s->stats.preemptions++;
        unused_turn_ended(s, peer_of_entry(e), r, "preempted: its slot idles while a peer waits");
    }
    s->slot_freed = false;
}

void hks_promote_freed(hk_seeder *s)
{
    if (s->slot_freed)
        hks_promote_waiters(s);
}

void hks_peer_interested(hk_seeder *s, hk_peer *p)
{
    if (p->interested)
        return;
    p->interested = true;
    /* the first interest answers our handshake and bitfield: about one round trip (the choker keeps the first) */
    hk_choker_set_hello(&p->choke, s->now - p->accepted_at);
    hks_mark_touched(s, p);
    if (hk_choker_interested(&s->choker, &p->choke, s->now)) {
        hks_log(s, HK_LOG_DEBUG, "peer %llu: interested", (unsigned long long)p->id);
        unchoke(s, p);
    } else {
        hks_log(s, HK_LOG_DEBUG, "peer %llu: interested; waiting in line at position %u (%u unchoked)",
                (unsigned long long)p->id, back_position(s, p), s->choker.unchoked);
        hks_promote_waiters(s); /* a spare slot goes to it at once */
    }
}

void hks_peer_not_interested(hk_seeder *s, hk_peer *p)
{
    if (!p->interested)
        return;
    p->interested = false;
    hks_mark_touched(s, p);
    bool was_unchoked = p->choke.state == HK_CHOKE_UNCHOKED;
    bool freed = hk_choker_leave(&s->choker, &p->choke);
    hks_log(s, HK_LOG_DEBUG, "peer %llu: not interested%s", (unsigned long long)p->id,
            was_unchoked ? "; choked, slot freed" : "");
    if (was_unchoked)
        choke(s, p, "not interested");
    if (freed)
        hks_promote_waiters(s);
}

bool hks_turn_over(hk_seeder *s, hk_peer *p, const char *why)
{
    bool full = s->npeers >= s->cfg.max_peers;
    hks_mark_touched(s, p);
    switch (hk_choker_turn_over(&s->choker, &p->choke, s->now, full)) {
    case HK_TURN_REFILLED:
        hks_log(s, HK_LOG_TRACE, "peer %llu: turn renewed (%s; nobody waiting)", (unsigned long long)p->id, why);
        p->idle_since = s->now;
        return true;
    case HK_TURN_REQUEUED:
        hks_log(s, HK_LOG_DEBUG, "peer %llu: choked (%s); back of the line at position %u",
                (unsigned long long)p->id, why, back_position(s, p));
        choke(s, p, "choked");
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
