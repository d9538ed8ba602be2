/* leecher: owns the simulated peers' actors — per peer a life actor (arrival, connect, keep-alives, flooding ticks,
 * churn departures and returns, reconnects) and one receiver actor per connection (the peer's end of the stream:
 * ACKs, then decoding by peer_wire.c) — and the peer-side deferred ops. Behaviours: see scenario.h; contract:
 * leecher.h. */
#include "leecher.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leech_profile.h"
#include "peer_wire.h"
#include "trade.h"
#include "world.h"

static bool reconnects(const leecher *l)
{
    sim_behaviour b = l->prof->behaviour;
    return l->prof->reconnect > 0 && (b == BEH_NORMAL || b == BEH_SLOW_READER || b == BEH_MAGNET);
}

static hk_time stop_time(const leecher *l)
{
    return l->world->sc->run.duration - l->world->sc->run.quiesce;
}

/* ---------------- peer-side deferred ops ---------------- */

void leecher_push(leecher *l, sop_type t, hk_conn *c)
{
    opq_push(&l->ops, t, c);
}

/* ob: the sends of the calling actor (the life actor's or the connection receiver's) */
static void lee_drain(leecher *l, sim_outbox *ob)
{
    sim_op op;
    while (opq_pop(&l->ops, &op)) {
        hk_conn *c = op.c;
        sim_msg *m = NULL;
        sg_mailbox_t mb = c ? c->mb_s : NULL;
        sg_actor_t victim = NULL;
        bool drop = c && (c->p_vanished || (c->s_closed && op.type != POP_SYN));
        switch ((sop_type)op.type) {
        case POP_FLUSH:
            c->p_flush_queued = false;
            m = stream_take_flight(&c->p_out, l->world->sc->seeder.window);
            if (m && !drop) {
                msg_put(ob, mb, msg_new_ctl(MSG_HEAD)); /* the flight's first segment (stream.h) */
                drop = c->p_vanished || c->s_closed; /* the put let other actors run */
            }
            break;
        case POP_ACK:
            m = msg_new_ctl(MSG_ACK);
            break;
        case POP_FIN:
            m = msg_new_ctl(MSG_FIN);
            break;
        case POP_SYN:
            m = msg_new_ctl(MSG_SYN);
            break;
        case POP_KILL_NIC:
            m = conn_stop_receiver(c, false, &mb, &drop, &victim);
            break;
        case POP_WAKE:
            l->wake_queued = false;
            break;
        default:
            assert(!"a seeder op in a peer's queue");
            abort();
        }
        if (!op_finish(ob, c, m, mb, drop, victim) && op.type == POP_WAKE)
            sg_sem_release(l->wake);
    }
    if (l->trade)
        trade_drain(l, ob);
}

void leecher_drain(leecher *l, sim_outbox *ob)
{
    lee_drain(l, ob);
}

static void wake_life(leecher *l)
{
    if (!l->wake_queued) {
        l->wake_queued = true;
        leecher_push(l, POP_WAKE, NULL);
    }
}

/* ---------------- ending a connection ---------------- */

void leecher_end_conn(leecher *l, lee_end why, bool fin)
{
    hk_conn *c = l->conn;
    if (!c || l->conn_ended)
        return;
    l->conn_ended = true;
    l->conn_end = why;
    peer_conn_lost(l);
    if (fin)
        leecher_push(l, POP_FIN, c);
    c->p_closed = true;
    leecher_push(l, POP_KILL_NIC, c); /* no-op when the receiver itself ends the connection */
    wake_life(l);
}

static hk_time next_timer(const leecher *l);

/* ---------------- receiver actor (peer side of one connection) ---------------- */

static void nic_exit(int failed, void *data)
{
    (void)failed;
    hk_conn *c = data;
    c->p_actor = NULL;
    outbox_drop(&c->p_box); /* empty unless killed */
    if (c->p_pending) {
        msg_release(c->p_pending);
        c->p_pending = NULL;
    }
    if (c->p_next) {
        msg_release(c->p_next);
        c->p_next = NULL;
    }
    if (c->p_get) {
        sg_comm_unref(c->p_get); /* cancelled with the actor; the handle is ours */
        c->p_get = NULL;
    }
    conn_unref(c);
}

#define SLOW_READ_SLICE 16384u /* a slow reader reads (and decodes, and answers) this much at a time */

static void nic_dispatch(leecher *l, hk_conn *c, sim_msg *m);

/* What arrives while a slow reader reads: its kernel takes it at once (acknowledgements of its requests, the seeder's
 * FIN...), so it is handled at once, except the data, kept for later (p_next), and heads, whose acknowledgement waits
 * until the reader reaches that flight: the seeder's next flight travels while it reads this one, and the receive
 * buffer holds at most one flight beside the one being read. */
static void slow_take(leecher *l, hk_conn *c)
{
    while (!l->conn_ended && !c->p_closed && l->conn == c) {
        if (!c->p_get)
            c->p_get = sg_mailbox_get_async(c->mb_p, &c->p_get_data);
        if (!sg_comm_test(c->p_get))
            return;
        c->p_get = NULL; /* done: the test dropped the handle */
        sim_msg *m = c->p_get_data;
        if (m->type == MSG_DATA) {
            if (stream_delivered(&c->s_out, m->len))
                leecher_push(l, POP_ACK, c); /* the seeder's window is full of data in transit (stream.h) */
            if (c->p_next)
                abort(); /* a second flight needs a second acknowledged head */
            c->p_next = m;
            continue;
        }
        if (m->type == MSG_HEAD)
            c->p_ack_owed = true;
        else
            nic_dispatch(l, c, m);
        msg_release(m);
    }
}

/* Reads one flight at the read rate, decoding each slice once read and handling what arrived meanwhile. */
static void slow_read_flight(leecher *l, hk_conn *c, sim_msg *m)
{
    for (uint32_t i = 0; i < m->nparts; i++) {
        const sim_part *pt = &m->parts[i];
        for (uint32_t off = 0; off < pt->len;) {
            uint32_t n = pt->len - off < SLOW_READ_SLICE ? pt->len - off : SLOW_READ_SLICE;
            sg_actor_sleep_for((double)n / l->prof->read_rate);
            if (l->conn_ended || c->p_closed || l->conn != c)
                return;
            peer_feed_part(l, pt->virt ? NULL : pt->bytes + off, n);
            off += n;
            slow_take(l, c);
            if (next_timer(l) < l->life_sleep_until)
                wake_life(l);
            lee_drain(l, &c->p_box); /* the requests it just made, the acknowledgements it owes */
            outbox_reap(&c->p_box);
        }
    }
}

/* A slow reader reads a flight at its read rate and decodes each slice as it has read it, so its next requests go
 * out while the rest is still unread, as a real reader's do; then the flight that arrived meanwhile, if any. */
static void slow_read(leecher *l, hk_conn *c, sim_msg *m)
{
    c->p_pending = m; /* the caller's reference, released by the exit callback if killed */
    slow_read_flight(l, c, m);
    c->p_pending = NULL;
    while (!l->conn_ended && !c->p_closed && l->conn == c) {
        if (c->p_ack_owed) { /* the head of the flight it reads next (p_next, or still on its way) */
            c->p_ack_owed = false;
            leecher_push(l, POP_ACK, c);
        }
        sim_msg *n = c->p_next;
        if (!n)
            break;
        c->p_next = NULL;
        c->p_pending = n;
        lee_drain(l, &c->p_box);
        slow_read_flight(l, c, n);
        c->p_pending = NULL;
        msg_release(n);
    }
}

/* One message from the seeder on the current connection c. A slow reader holds a data message while it "reads". */
static void nic_dispatch(leecher *l, hk_conn *c, sim_msg *m)
{
    switch ((sim_msg_type)m->type) {
    case MSG_SYNACK:
        peer_on_connected(l);
        break;
    case MSG_RST:
        l->refusals++;
        evlog_line(l->world->log, sim_now(l->world), "peer p%u refused", l->id);
        leecher_end_conn(l, END_REFUSED, false);
        break;
    case MSG_HEAD:
        if (!l->lk.stopped_reading)
            leecher_push(l, POP_ACK, c); /* the window slides (stream.h); a non-reader keeps it closed */
        break;
    case MSG_DATA:
        if (stream_delivered(&c->s_out, m->len) && !l->lk.stopped_reading)
            leecher_push(l, POP_ACK, c); /* the seeder's window is full of data in transit (stream.h) */
        if (l->lk.stopped_reading)
            break; /* non_reader: never decoded */
        if (l->prof->behaviour == BEH_SLOW_READER) {
            slow_read(l, c, m);
            break;
        }
        for (uint32_t i = 0; i < m->nparts && !l->conn_ended; i++)
            peer_feed_part(l, m->parts[i].virt ? NULL : m->parts[i].bytes, m->parts[i].len);
        break;
    case MSG_ACK:
        c->p_out.inflight = 0;
        if (c->p_out.queued && !c->p_flush_queued) {
            c->p_flush_queued = true;
            leecher_push(l, POP_FLUSH, c);
        }
        break;
    case MSG_FIN:
        evlog_line(l->world->log, sim_now(l->world), "peer p%u closed-by-seeder c%llu", l->id,
                   (unsigned long long)c->id);
        leecher_end_conn(l, END_CLOSED_BY_SEEDER, false);
        break;
    default:
        break;
    }
}

static void nic_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    hk_conn *c = sg_actor_self_get_data();
    leecher *l = c->lee;
    sg_actor_daemonize(sg_actor_self());
    sg_actor_on_exit(nic_exit, c);
    c->p_actor = sg_actor_self();
    sg_mailbox_set_receiver(sg_mailbox_get_name(c->mb_p));
    while (!c->p_closed) {
        void *data = NULL;
        sg_comm_t comm = c->p_get ? c->p_get : sg_mailbox_get_async(c->mb_p, &data);
        bool posted = c->p_get != NULL; /* by a slow reader, which stopped reading with it pending */
        c->p_get = NULL;
        sg_error_t rc = sg_comm_wait(comm);
        if (posted)
            data = c->p_get_data;
        if (rc != SG_OK) {
            leecher_end_conn(l, END_CLOSED_BY_SEEDER, false);
            lee_drain(l, &c->p_box);
            break;
        }
        sim_msg *m = data;
        if (c->p_closed || l->conn != c) {
            msg_release(m);
            break;
        }
        nic_dispatch(l, c, m);
        msg_release(m);
        if (next_timer(l) < l->life_sleep_until)
            wake_life(l); /* a keep-alive or flooding deadline appeared or moved earlier */
        lee_drain(l, &c->p_box);
        outbox_reap(&c->p_box);
    }
    c->p_stopping = true; /* nobody kills or wakes it any more */
    outbox_close(&c->p_box);
    return;
}

/* ---------------- life actor ---------------- */

static void connect_once(leecher *l)
{
    hk_conn *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->id = l->world->next_conn_id++;
    c->world = l->world;
    stream_init(&c->s_out);
    stream_init(&c->p_out);
    c->torrent = l->torrent;
    c->lee = l;
    c->refs = 1; /* l->conn */
    char name[48];
    snprintf(name, sizeof name, "c%llus", (unsigned long long)c->id);
    c->mb_s = sg_mailbox_by_name(name);
    snprintf(name, sizeof name, "c%llup", (unsigned long long)c->id);
    c->mb_p = sg_mailbox_by_name(name);
    l->conn = c;
    l->conn_ended = false;
    l->conn_end = END_NONE;
    peer_reset_protocol(l);
    l->connects++;
    if (!l->first_connect)
        l->first_connect = sim_now(l->world);
    evlog_line(l->world->log, sim_now(l->world), "peer p%u connect c%llu", l->id, (unsigned long long)c->id);

    conn_ref(c);
    snprintf(name, sizeof name, "nic%llu", (unsigned long long)c->id);
    sim_spawn(name, l->host, nic_main, c);
    seeder_spawn_rx(&l->world->seeder, c);
    leecher_push(l, POP_SYN, c);
    lee_drain(l, &l->box);
}

static hk_time next_timer(const leecher *l)
{
    hk_time t = stop_time(l);
    if (l->leave_at < t)
        t = l->leave_at;
    if (l->connected && !l->conn_ended && peer_sends_keepalives(l) && l->last_sent + l->prof->keepalive < t)
        t = l->last_sent + l->prof->keepalive;
    if (l->prof->behaviour == BEH_FLOODER && l->lk.got_handshake && !l->conn_ended && l->next_flood < t)
        t = l->next_flood;
    if (l->trade && trade_next(l) < t)
        t = trade_next(l); /* the next rechoke among leechers */
    return t;
}

static void on_timer(leecher *l)
{
    hk_time now = sim_now(l->world);
    if (l->trade)
        trade_tick(l, now);
    if (l->conn_ended)
        return;
    if (now >= stop_time(l)) {
        leecher_end_conn(l, END_TIME, true);
        return;
    }
    if (now >= l->leave_at) {
        bool fin = l->prof->departure == DEPART_FIN;
        evlog_line(l->world->log, now, "peer p%u depart %s", l->id, fin ? "fin" : "vanish");
        if (!fin)
            l->conn->p_vanished = true;
        leecher_end_conn(l, END_DEPARTED, fin);
        return;
    }
    if (l->connected && peer_sends_keepalives(l) && now >= l->last_sent + l->prof->keepalive) {
        peer_send_keepalive(l);
    }
    if (l->prof->behaviour == BEH_FLOODER && l->lk.got_handshake && now >= l->next_flood) {
        peer_flood(l);
        l->next_flood = now + HK_NS_PER_SEC;
    }
}

/* Sleeps until t (or a wake-up); true if the sleep ran its full course. */
static void life_sleep_until(leecher *l, hk_time t)
{
    hk_time now = sim_now(l->world);
    if (t <= now + 1000) {
        if (t > now && t != HK_TIME_NEVER)
            l->world->now_floor = t > l->world->now_floor ? t : l->world->now_floor;
        return;
    }
    l->life_sleep_until = t;
    sim_sem_wait_until(l->wake, t, now);
    l->life_sleep_until = 0;
}

/* Sleeps until t, but never past the moment peers stop (duration - quiesce). */
static void plain_sleep_until(leecher *l, hk_time t)
{
    hk_time now = sim_now(l->world);
    if (t > stop_time(l))
        t = stop_time(l);
    if (t > now + 1000)
        sg_actor_sleep_for((double)(t - now) / 1e9);
}

static void life_exit(int failed, void *data)
{
    (void)failed;
    leecher *l = data;
    outbox_drop(&l->box); /* empty unless killed */
}

/* Away for a downtime (mttr), then back with a new uptime (mtbf); false if the peer never comes back. */
static bool away(leecher *l)
{
    const sim_profile *p = l->prof;
    if (!p->mttr)
        return false;
    plain_sleep_until(l, sim_now(l->world) + (hk_time)prng_exponential(&l->rng, (double)p->mttr));
    l->leave_at = sim_now(l->world) + (hk_time)prng_exponential(&l->rng, (double)p->mtbf);
    return true;
}

/* One connection, from connect to its end (keep-alives, flooding, departure meanwhile); returns why it ended. */
static lee_end live_connection(leecher *l)
{
    connect_once(l);
    while (!l->conn_ended) {
        outbox_reap(&l->box);
        life_sleep_until(l, next_timer(l));
        on_timer(l);
        lee_drain(l, &l->box);
    }
    hk_conn *c = l->conn;
    l->conn = NULL;
    conn_unref(c);
    return l->conn_end;
}

static void life_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    leecher *l = sg_actor_self_get_data();
    const sim_profile *p = l->prof;
    sg_actor_on_exit(life_exit, l);
    plain_sleep_until(l, l->arrival);
    if (l->trade)
        trade_arrive(l);
    l->leave_at = p->mtbf ? sim_now(l->world) + (hk_time)prng_exponential(&l->rng, (double)p->mtbf) : HK_TIME_NEVER;
    while (sim_now(l->world) < stop_time(l)) {
        if (l->lk.completed) { /* from other leechers while it had no seeder connection (trade.h) */
            l->end = END_COMPLETE;
            break;
        }
        if (sim_now(l->world) >= l->leave_at) {
            /* the uptime ran out while waiting to (re)connect: away for a downtime, then back */
            if (!away(l))
                break;
            continue;
        }
        lee_end why = live_connection(l);
        l->end = why;
        if (why == END_COMPLETE || why == END_VANISHED || why == END_TIME)
            break;
        if (why == END_DEPARTED) {
            if (!away(l))
                break;
            continue;
        }
        /* refused or closed by the seeder */
        if (!reconnects(l))
            break;
        plain_sleep_until(l, sim_now(l->world) + p->reconnect);
    }
    if (l->trade)
        trade_finish(l, &l->box); /* seeds for [peers] seed_time if complete, then closes its links */
    if (l->end == END_NONE)
        l->end = l->lk.completed ? END_COMPLETE : END_TIME;
    l->end_at = sim_now(l->world);
    l->finished = true;
    l->world->lives_running--;
    evlog_line(l->world->log, l->end_at, "peer p%u end %d", l->id, (int)l->end);
    /* Its last messages (a FIN) must still reach the seeder if the simulation goes on, but waiting for them must
     * not keep the simulation alive: a daemon ends with the last ordinary actor. */
    sg_actor_daemonize(sg_actor_self());
    outbox_close(&l->box);
    return;
}

void leechers_start(sim_world *w)
{
    w->peer_params = calloc(w->sc->nprofiles ? w->sc->nprofiles : 1, sizeof *w->peer_params);
    if (!w->peer_params)
        abort();
    for (uint32_t pi = 0; pi < w->sc->nprofiles; pi++) {
        lk_params_from_profile(&w->peer_params[pi], &w->sc->profiles[pi], w->sc->seeder.verify != SIM_VERIFY_OFF);
        w->peer_params[pi].peer_id_prefix = "-SM0100-";
    }
    for (uint32_t pi = 0; pi < w->sc->nprofiles; pi++) {
        const sim_profile *p = &w->sc->profiles[pi];
        prng arr;
        prng_seed(&arr, w->sc->run.seed, 0x617272ull + pi);
        double t = (double)p->start / 1e9;
        for (uint32_t k = 0; k < p->count; k++) {
            uint32_t id = p->first_peer + k;
            leecher *l = &w->peers[id];
            l->world = w;
            l->id = id;
            l->prof = p;
            l->profile_index = pi;
            prng_seed(&l->rng, w->sc->run.seed, 0x1000000ull + id);
            if (p->arrival == ARRIVE_POISSON)
                t += prng_exponential(&arr, 1.0 / p->rate);
            else if (p->arrival == ARRIVE_UNIFORM && k > 0)
                t += 1.0 / p->rate;
            l->arrival = (hk_time)llround(t * 1e9);
            l->torrent = p->torrent >= 0 ? (uint32_t)p->torrent : (uint32_t)prng_below(&l->rng, w->ntorrents);
            bool trading = w->sc->peers.trade && p->behaviour == BEH_NORMAL;
            const sim_torrent *tt = &w->torrents[l->torrent];
            peer_init(l, &w->peer_params[pi], tt->size, tt->piece_length, trading);
            if (trading)
                l->trade = trade_new(l);
            l->wake = sg_sem_init(0);
            l->leave_at = HK_TIME_NEVER;
            char name[32];
            snprintf(name, sizeof name, "p%u", id);
            l->host = sg_host_by_name(name);
            snprintf(name, sizeof name, "life%u", id);
            sim_spawn(name, l->host, life_main, l);
            w->lives_running++;
        }
    }
}
