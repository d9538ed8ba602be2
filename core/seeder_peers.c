/* seeder_peers: owns the seeder's peers: the peer table (slots, accept and the per-address caps), the torrent a peer
 * is attached to, closing a peer (its per-address counts released), control output (bytes exempt from room, accounted
 * as debt), and the three peer lists of an event: the ready ring (peers that may have something to send;
 * seeder_serve.c serves them in turn), the peers touched during the event (seeder_timers.c reschedules them at its
 * end) and the grave (peers closed during it, freed at its end). */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "seeder_internal.h"

/* ---------------------------------------------------------------------------------------------------------------- */
/* The peer table                                                                                                    */

static bool grow_peer_table(hk_seeder *s)
{
    uint32_t ncap = s->peers_cap ? s->peers_cap * 2 : 64;
    if (ncap <= s->peers_cap)
        return false;
    hk_peer **np = hk_mem_alloc(&s->mem, (size_t)ncap * sizeof *np);
    uint32_t *nf = hk_mem_alloc(&s->mem, (size_t)ncap * sizeof *nf);
    hk_addr_hold *nh = hk_mem_alloc(&s->mem, (size_t)ncap * sizeof *nh);
    if (!np || !nf || !nh) {
        hk_mem_free(&s->mem, np, (size_t)ncap * sizeof *np);
        hk_mem_free(&s->mem, nf, (size_t)ncap * sizeof *nf);
        hk_mem_free(&s->mem, nh, (size_t)ncap * sizeof *nh);
        return false;
    }
    if (s->peers_cap) {
        memcpy(np, s->peers, (size_t)s->peers_cap * sizeof *np);
        memcpy(nf, s->free_slots, (size_t)s->nfree * sizeof *nf);
        memcpy(nh, s->holds, (size_t)s->peers_cap * sizeof *nh);
    }
    hk_mem_free(&s->mem, s->peers, (size_t)s->peers_cap * sizeof *s->peers);
    hk_mem_free(&s->mem, s->free_slots, (size_t)s->peers_cap * sizeof *s->free_slots);
    hk_mem_free(&s->mem, s->holds, (size_t)s->peers_cap * sizeof *s->holds);
    s->peers = np;
    s->free_slots = nf;
    s->holds = nh;
    for (uint32_t i = ncap; i-- > s->peers_cap;) {
        s->peers[i] = NULL;
        s->holds[i] = HK_ADDR_HOLD_NONE;
        s->free_slots[s->nfree++] = i; /* lowest new slot on top of the stack */
    }
    s->peers_cap = ncap;
    return true;
}

static void format_addr(const hk_addr *a, char *buf, size_t n)
{
    if (!a) {
        snprintf(buf, n, "?");
    } else if (a->family == 4) {
        snprintf(buf, n, "%u.%u.%u.%u:%u", a->ip[0], a->ip[1], a->ip[2], a->ip[3], a->port);
    } else {
        size_t at = 0;
        at += (size_t)snprintf(buf + at, n - at, "[");
        for (int i = 0; i < 16 && at < n; i += 2)
            at += (size_t)snprintf(buf + at, n - at, "%s%x", i ? ":" : "", (a->ip[i] << 8) | a->ip[i + 1]);
        if (at < n)
            snprintf(buf + at, n - at, "]:%u", a->port);
    }
}

/* The per-address caps (core/addr_limit.h): true when `from` may connect, its counts taken into *hold. */
static bool addr_admit(hk_seeder *s, const hk_addr *from, const char *addr, hk_addr_hold *hold)
{
    hk_al_verdict v = hk_al_acquire(&s->addr_limit, from, hold);
    if (v == HK_AL_OK)
        return true;
    s->stats.peers_refused++;
    if (v == HK_AL_ADDRESS) {
        s->stats.refused_per_address++;
        hks_log(s, HK_LOG_DEBUG, "connection from %s refused: per-address cap (%u connections from that address)",
                addr, s->cfg.max_peers_per_address);
    } else if (v == HK_AL_PREFIX) {
        s->stats.refused_per_prefix++;
        hks_log(s, HK_LOG_DEBUG, "connection from %s refused: per-prefix cap (%u connections from its /%u)", addr,
                s->cfg.max_peers_per_prefix, hk_al_prefix_bits(from));
    } else {
        hks_log(s, HK_LOG_WARN, "connection from %s refused: out of memory", addr);
    }
    return false;
}

hk_peer *hks_peer_accept(hk_seeder *s, hk_conn *conn, const hk_addr *from)
{
    char addr[64];
    format_addr(from, addr, sizeof addr);
    if (s->npeers >= s->cfg.max_peers) {
        s->stats.peers_refused++;
        hks_log(s, HK_LOG_DEBUG, "connection from %s refused: %u peers connected (cap %u)", addr, s->npeers,
                s->cfg.max_peers);
        return NULL;
    }
    hk_peer *p = s->nfree > 0 || grow_peer_table(s) ? hk_mem_alloc(&s->mem, sizeof *p) : NULL;
    if (!p) {
        s->stats.peers_refused++;
        hks_log(s, HK_LOG_WARN, "connection from %s refused: out of memory", addr);
        return NULL;
    }
    hk_addr_hold hold;
    if (!addr_admit(s, from, addr, &hold)) {
        hk_mem_free(&s->mem, p, sizeof *p);
        return NULL;
    }
    uint32_t slot = s->free_slots[--s->nfree];
    assert(slot < s->peers_cap && !s->peers[slot]);
    hk_peer_init(p, s->next_peer_id++, conn, slot, s->now, &s->rq_home, HK_QUEUE_MAX,
                 s->cfg.max_message);
    s->peers[slot] = p;
    s->holds[slot] = hold;
    s->npeers++;
    hks_log(s, HK_LOG_DEBUG, "peer %llu: accepted from %s", (unsigned long long)p->id, addr);
    hks_mark_touched(s, p);
    return p;
}

static void free_peer(hk_seeder *s, hk_peer *p)
{
    hk_peer_release(p);
    hk_mem_free(&s->mem, p, sizeof *p);
}

void hks_free_closed(hk_seeder *s)
{
    hk_list *n;
    while ((n = hk_list_first(&s->grave)) != NULL) {
        hk_list_remove(n);
        free_peer(s, HK_LIST_ENTRY(n, hk_peer, event_link));
    }
}

void hks_peers_free(hk_seeder *s)
{
    for (uint32_t i = 0; i < s->peers_cap; i++)
        if (s->peers[i])
            free_peer(s, s->peers[i]);
    hks_free_closed(s);
    hk_mem_free(&s->mem, s->peers, (size_t)s->peers_cap * sizeof *s->peers);
    hk_mem_free(&s->mem, s->free_slots, (size_t)s->peers_cap * sizeof *s->free_slots);
    hk_mem_free(&s->mem, s->holds, (size_t)s->peers_cap * sizeof *s->holds);
    s->peers = NULL;
    s->free_slots = NULL;
    s->holds = NULL;
    s->peers_cap = s->nfree = s->npeers = 0;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Torrent attachment and close                                                                                      */

bool hks_peer_attach(hk_seeder *s, hk_peer *p, uint32_t rec)
{
    hk_torrent *t = hk_tt_get(&s->torrents, rec);
    assert(t && p->torrent == HK_TT_NONE);
    if (hk_tt_peer_attach(&s->torrents, t) != 0)
        return false;
    p->torrent = rec;
    return true;
}

static void detach(hk_seeder *s, hk_peer *p)
{
    hk_torrent *t = hks_peer_torrent(s, p);
    if (t)
        hk_tt_peer_detach(&s->torrents, t);
    p->torrent = HK_TT_NONE;
}

void hks_close_peer(hk_seeder *s, hk_peer *p, bool call_close, const char *fmt, ...)
{
    if (p->closed)
        return;
    char head[48];
    snprintf(head, sizeof head, "peer %llu: closed: ", (unsigned long long)p->id);
    va_list ap;
    va_start(ap, fmt);
    hks_vlog(s, HK_LOG_DEBUG, head, fmt, ap);
    va_end(ap);
    p->closed = true;
    hks_ready_unlink(s, p);
    hk_dl_cancel(&s->deadlines, &p->dl);
    if (hk_choker_leave(&s->choker, &p->choke))
        s->slot_freed = true; /* the step that closed it gives the slot to the line (hks_promote_freed) */
    detach(s, p);
    hk_rq_clear(&p->rq); /* its queued blocks leave s->rq_home.blocks */
    /* the running sums are over the peer table, which it leaves here (a close inside hks_wire_recv: that call adds
     * the decoder's change up to now when it returns) */
    assert(s->npeers_encrypted >= p->encrypted);
    s->decoder_bytes -= wire_decoder_memory(&p->dec);
    s->npeers_encrypted -= p->encrypted;
    if (call_close)
        s->rt.close(s->rt.base.ctx, p->conn);
    assert(p->slot < s->peers_cap && s->peers[p->slot] == p && s->npeers > 0);
    s->peers[p->slot] = NULL;
    hk_al_release(&s->addr_limit, &s->holds[p->slot]); /* every close path passes here */
    s->free_slots[s->nfree++] = p->slot;
    s->npeers--;
    hk_list_remove(&p->event_link); /* a closed peer is not rescheduled */
    hk_list_insert_head(&s->grave, &p->event_link);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Control output                                                                                                    */

bool hks_send_control(hk_seeder *s, hk_peer *p, const hk_segment *segs, size_t nsegs)
{
    if (p->closed)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < nsegs; i++)
        n += segs[i].kind == HK_SEG_BYTES ? segs[i].u.bytes.len : segs[i].u.extent.length;
    s->rt.send(s->rt.base.ctx, p->conn, segs, nsegs);
    p->last_send = s->now;
    hks_mark_touched(s, p);
    if (!hk_peer_account(p, n)) {
        s->stats.protocol_errors++;
        hks_close_peer(s, p, true, "does not read: %llu bytes of control output beyond its send room",
                       (unsigned long long)p->debt);
        return false;
    }
    return true;
}

bool hks_send_control_bytes(hk_seeder *s, hk_peer *p, const uint8_t *bytes, size_t len)
{
    hk_segment seg = {.kind = HK_SEG_BYTES, .u.bytes = {bytes, (uint32_t)len}};
    return hks_send_control(s, p, &seg, 1);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* The peers touched during the event                                                                                */

void hks_mark_touched(hk_seeder *s, hk_peer *p)
{
    if (p->closed || hk_list_linked(&p->event_link))
        return;
    hk_list_insert_tail(&s->touched, &p->event_link);
}

hk_peer *hks_take_touched(hk_seeder *s)
{
    hk_list *n = hk_list_first(&s->touched);
    if (!n)
        return NULL;
    hk_list_remove(n);
    return HK_LIST_ENTRY(n, hk_peer, event_link);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* The ready ring                                                                                                    */

void hks_mark_ready(hk_seeder *s, hk_peer *p)
{
    if (p->closed || hk_list_linked(&p->ready_link) || hk_rq_len(&p->rq) == 0 || p->room == 0)
        return;
    hk_list_insert_tail(&s->ready, &p->ready_link);
    s->nready++;
}

void hks_ready_unlink(hk_seeder *s, hk_peer *p)
{
    if (!hk_list_linked(&p->ready_link))
        return;
    assert(s->nready > 0);
    hk_list_remove(&p->ready_link);
    s->nready--;
    p->ready_first = false;
    if (p->rate_passed) { /* upload rate caps: it was waiting for tokens in the pass under way */
        p->rate_passed = false;
        s->npassed--;
    }
}

hk_peer *hks_ready_pop(hk_seeder *s)
{
    hk_list *n = hk_list_first(&s->ready);
    if (!n)
        return NULL;
    hk_peer *p = HK_LIST_ENTRY(n, hk_peer, ready_link);
    hks_ready_unlink(s, p);
    return p;
}
