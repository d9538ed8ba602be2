/* seeder_rt: owns the seeder side of the simulation — the hk_runtime table handed to the core, the seeder's
 * deferred-op queue and its drain, the per-connection receiver actors and the timer actor (the core's single
 * wake-up). Disk actions live in disk.c, the output monitor in monitor.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

sim_world *g_world;

#define S (&g_world->seeder)

hk_time sim_now(void)
{
    hk_time t = (hk_time)llround(simgrid_get_clock() * 1e9);
    if (t < S->now_floor)
        t = S->now_floor;
    else
        S->now_floor = t;
    return t;
}

static void track_memory(void)
{
    hk_stats st;
    hk_seeder_stats(S->core, &st);
    if (st.memory_bytes > S->memory_max)
        S->memory_max = st.memory_bytes;
}

/* ---------------- runtime actions (called by the core: memory only, no SimGrid call) ---------------- */

static hk_time rt_now(void *ctx)
{
    (void)ctx;
    return sim_now();
}

static void rt_wake_at(void *ctx, hk_time when)
{
    sim_seeder *s = ctx;
    s->wake_at = when;
    if (when < s->sleeping_until && !s->kick_queued) {
        s->kick_queued = true;
        opq_push(&s->ops, SOP_TIMER_KICK, NULL);
    }
}

static void rt_random(void *ctx, void *buf, size_t n)
{
    sim_seeder *s = ctx;
    prng_fill(&s->rng, buf, n);
}

static void queue_flush(sim_seeder *s, hk_conn *c)
{
    if (!c->s_flush_queued && !c->s_out.inflight && c->s_out.queued) {
        c->s_flush_queued = true;
        opq_push(&s->ops, SOP_FLUSH, c);
    }
}

static void rt_send(void *ctx, hk_conn *c, const hk_segment *segs, size_t n)
{
    sim_seeder *s = ctx;
    if (c->s_closed) {
        s->monitor_errors++;
        evlog_line(g_world->log, sim_now(), "error send-after-close c%llu", (unsigned long long)c->id);
        return;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const hk_segment *g = &segs[i];
        if (g->kind == HK_SEG_BYTES) {
            stream_write(&c->s_out, g->u.bytes.ptr, g->u.bytes.len);
            monitor_bytes(c, g->u.bytes.ptr, g->u.bytes.len);
            total += g->u.bytes.len;
            continue;
        }
        const hk_extent *e = &g->u.extent;
        if (e->file == HK_FILE_METAINFO) {
            const sim_torrent *t = e->storage < g_world->ntorrents ? &g_world->torrents[e->storage] : NULL;
            if (!t || e->offset > t->len || e->length > t->len - e->offset) {
                s->monitor_errors++;
                stream_write_virtual(&c->s_out, e->length);
            } else {
                stream_write(&c->s_out, t->bytes + e->offset, e->length);
            }
        } else {
            if (!disk_check_and_touch(s, e)) {
                s->sent_not_resident++;
                evlog_line(g_world->log, sim_now(), "error not-resident c%llu s%llu f%u o%llu l%u",
                           (unsigned long long)c->id, (unsigned long long)e->storage, e->file,
                           (unsigned long long)e->offset, e->length);
            }
            stream_write_virtual(&c->s_out, e->length);
            s->data_bytes_sent += e->length;
            if (g_world->fault_extent_offset) {
                hk_extent wrong = *e; /* test hook: what a backend bug shifting file offsets would send */
                wrong.offset++;
                monitor_extent(c, &wrong);
                total += e->length;
                continue;
            }
        }
        monitor_extent(c, e);
        total += e->length;
    }
    c->s_unacked += total;
    evlog_line(g_world->log, sim_now(), "send c%llu segs=%zu bytes=%llu", (unsigned long long)c->id, n,
               (unsigned long long)total);
    queue_flush(s, c);
}

/* The connection stops existing for the core (either side closed it). */
static void seeder_forget(sim_seeder *s, hk_conn *c)
{
    c->s_closed = true;
    if (c->mon.unchoked) {
        c->mon.unchoked = false;
        s->unchoked_now--;
    }
    if (c->peer)
        s->conns_open--;
    stream_clear(&c->s_out);
}

/* What the expectations on timeouts measure, kept with the peer (whose end may never see the FIN: vanished). */
static void record_seeder_close(hk_conn *c)
{
    leecher *l = c->lee;
    if (!l)
        return;
    l->closed_by_seeder++;
    l->c_accepted = c->accepted_at;
    l->c_last_rx = c->last_rx;
    l->c_last_ack = c->last_ack;
    l->c_first_unchoke = c->first_unchoke;
    l->c_first_choke = c->first_choke_after_unchoke;
    l->c_closed_at = c->closed_at;
}

static void rt_close(void *ctx, hk_conn *c)
{
    sim_seeder *s = ctx;
    if (c->s_closed) {
        s->monitor_errors++;
        return;
    }
    c->closed_by_seeder = true;
    c->closed_at = sim_now();
    record_seeder_close(c);
    seeder_forget(s, c);
    evlog_line(g_world->log, c->closed_at, "close c%llu", (unsigned long long)c->id);
    opq_push(&s->ops, SOP_FIN, c);
    opq_push(&s->ops, SOP_KILL, c);
}

static void rt_log(void *ctx, hk_log_level level, const char *line)
{
    (void)ctx;
    if (level <= g_world->sc->run.log_level)
        evlog_line(g_world->log, sim_now(), "log %d %s", (int)level, line);
}

/* ---------------- deferred ops ---------------- */

void seeder_drain(sim_outbox *ob)
{
    sim_seeder *s = S;
    sim_op op;
    while (opq_pop(&s->ops, &op)) {
        hk_conn *c = op.c;
        sg_mailbox_t mb = c ? c->mb_p : NULL;
        bool drop = c ? c->p_closed : false; /* nobody will ever read it (the peer vanished or left): a lost segment */
        sim_msg *m = NULL;
        sg_actor_t victim = NULL;
        switch ((sop_type)op.type) {
        case SOP_FLUSH:
            c->s_flush_queued = false;
            if (!c->s_closed)
                m = stream_take_flight(&c->s_out, g_world->sc->seeder.window);
            break;
        case SOP_ACK:
            m = msg_new_ctl(MSG_ACK);
            break;
        case SOP_FIN:
            m = msg_new_ctl(MSG_FIN);
            break;
        case SOP_SYNACK:
            m = msg_new_ctl(c->peer ? MSG_SYNACK : MSG_RST);
            break;
        case SOP_KILL:
            if (c->s_actor == sg_actor_self() || !c->s_actor || c->s_stopping)
                break; /* the receiver loop ends by itself (s_closed) */
            if (outbox_all_delivered(&c->s_box)) {
                victim = c->s_actor;
                break;
            }
            /* killing it would cancel its sends in flight: wake it up instead, it ends by itself */
            c->s_stopping = true;
            m = msg_new_ctl(MSG_STOP);
            mb = c->mb_s;
            drop = false;
            break;
        case SOP_TIMER_KICK:
            s->kick_queued = false;
            sg_sem_release(s->timer_sem);
            break;
        case SOP_DISK_KICK:
            sg_sem_release(s->disk.sem);
            break;
        default:
            abort();
        }
        op_finish(ob, c, m, mb, drop, victim); /* the one SimGrid call of the op, last */
    }
}

/* ---------------- receiver actor: one per connection, on the seeder host ---------------- */

static void grant(sim_seeder *s, hk_conn *c)
{
    uint32_t sndbuf = g_world->sc->seeder.sndbuf;
    size_t room = c->s_unacked >= sndbuf ? 0 : sndbuf - (size_t)c->s_unacked;
    c->room_left = (int64_t)room;
    evlog_line(g_world->log, sim_now(), "sendable c%llu %zu", (unsigned long long)c->id, room);
    s->core_calls++;
    hk_seeder_on_sendable(s->core, c->peer, room);
}

static void rx_exit(int failed, void *data)
{
    (void)failed;
    hk_conn *c = data;
    c->s_actor = NULL;
    outbox_drop(&c->s_box); /* empty unless killed */
    conn_unref(c);
}

static void rx_syn(sim_seeder *s, hk_conn *c)
{
    uint32_t pid = c->lee ? c->lee->id : 0;
    hk_addr a = {.family = 4, .ip = {10, (uint8_t)(pid >> 16), (uint8_t)(pid >> 8), (uint8_t)pid}, .port = 6881};
    c->accepted_at = c->last_rx = c->last_ack = sim_now();
    s->core_calls++;
    opq_push(&s->ops, SOP_SYNACK, c); /* becomes RST if refused; before any data the core may queue */
    hk_peer *p = hk_seeder_on_accept(s->core, c, &a);
    if (!p) {
        s->refused++;
        c->s_closed = true;
        evlog_line(g_world->log, sim_now(), "refuse c%llu p%u", (unsigned long long)c->id, pid);
        return;
    }
    evlog_line(g_world->log, sim_now(), "accept c%llu p%u as peer %llu", (unsigned long long)c->id, pid,
               (unsigned long long)hk_peer_number(p));
    c->peer = p;
    s->conns_open++;
    s->conns_total++;
    track_memory();
    grant(s, c);
}

static void rx_data(sim_seeder *s, hk_conn *c, const sim_msg *m)
{
    c->last_rx = sim_now();
    opq_push(&s->ops, SOP_ACK, c);
    for (uint32_t i = 0; i < m->nparts && !c->s_closed; i++) {
        evlog_line(g_world->log, c->last_rx, "recv c%llu %u", (unsigned long long)c->id, m->parts[i].len);
        s->core_calls++;
        hk_seeder_on_recv(s->core, c->peer, m->parts[i].bytes, m->parts[i].len);
    }
}

static void rx_ack(sim_seeder *s, hk_conn *c)
{
    c->last_ack = sim_now();
    c->s_unacked -= c->s_out.inflight;
    c->s_out.inflight = 0;
    queue_flush(s, c);
    if (c->s_unacked <= g_world->sc->seeder.sndbuf / 2)
        grant(s, c);
}

static void rx_closed(sim_seeder *s, hk_conn *c, hk_close_reason why)
{
    seeder_forget(s, c);
    evlog_line(g_world->log, sim_now(), "closed c%llu %s", (unsigned long long)c->id,
               why == HK_CLOSED_BY_PEER ? "by-peer" : "error");
    s->core_calls++;
    hk_seeder_on_closed(s->core, c->peer, why);
}

static void rx_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    hk_conn *c = sg_actor_self_get_data();
    sim_seeder *s = S;
    sg_actor_daemonize(sg_actor_self());
    sg_actor_on_exit(rx_exit, c);
    c->s_actor = sg_actor_self();
    c->s_started = true;
    sg_mailbox_set_receiver(sg_mailbox_get_name(c->mb_s));
    for (;;) {
        void *data = NULL;
        sg_comm_t comm = sg_mailbox_get_async(c->mb_s, &data);
        sg_error_t e = sg_comm_wait(comm);
        if (e != SG_OK) {
            if (!c->s_closed && c->peer)
                rx_closed(s, c, HK_CLOSED_ERROR);
            seeder_drain(&c->s_box);
            break;
        }
        sim_msg *m = data;
        if (!c->s_closed) {
            switch ((sim_msg_type)m->type) {
            case MSG_SYN:
                rx_syn(s, c);
                break;
            case MSG_DATA:
                rx_data(s, c, m);
                break;
            case MSG_ACK:
                rx_ack(s, c);
                break;
            case MSG_FIN:
                rx_closed(s, c, HK_CLOSED_BY_PEER);
                break;
            default:
                break;
            }
        }
        msg_release(m);
        seeder_drain(&c->s_box);
        if (c->s_closed)
            break;
        outbox_reap(&c->s_box);
    }
    c->s_stopping = true; /* nobody kills or wakes it any more */
    outbox_close(&c->s_box);
    return;
}

void seeder_spawn_rx(hk_conn *c)
{
    char name[48];
    snprintf(name, sizeof name, "rx%llu", (unsigned long long)c->id);
    conn_ref(c);
    sg_actor_t a = sg_actor_init(name, S->host);
    sg_actor_set_data(a, c);
    sg_actor_start(a, rx_main, 0, NULL);
}

/* ---------------- timer actor: the core's single wake-up ---------------- */

static void timer_exit(int failed, void *data)
{
    (void)failed;
    outbox_drop(data); /* empty unless killed */
    free(data);
}

static void timer_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    sim_seeder *s = S;
    sim_outbox *box = calloc(1, sizeof *box); /* not on the stack: the exit callback runs after it is unwound */
    if (!box)
        abort();
    sg_actor_on_exit(timer_exit, box);
    sg_actor_daemonize(sg_actor_self());
    /* SimGrid 3.32 keeps finished synchronisations in the actor's activity list and scans that list whenever a
     * communication this actor sent completes: a long-lived actor slows every completion down. Recycle. */
    for (int round = 0; round < 256; round++) {
        outbox_reap(box);
        hk_time now = sim_now();
        hk_time t = s->wake_at;
        if (t != HK_TIME_NEVER && t <= now + 1000) {
            /* due (within 1 us: below SimGrid's clock precision a sleep would not advance time) */
            if (t > now)
                s->now_floor = t;
            s->wake_at = HK_TIME_NEVER;
            s->sleeping_until = 0;
            evlog_line(g_world->log, sim_now(), "wake");
            s->core_calls++;
            hk_seeder_on_wake(s->core);
            seeder_drain(box);
            continue;
        }
        s->sleeping_until = t;
        if (t == HK_TIME_NEVER)
            sg_sem_acquire(s->timer_sem);
        else
            sg_sem_acquire_timeout(s->timer_sem, (double)(t - now) / 1e9);
        s->sleeping_until = 0;
    }
    sg_actor_create("timer", s->host, timer_main, 0, NULL);
    outbox_close(box); /* the new timer actor has taken over; this one only waits for its sends in flight */
}

/* ---------------- setup ---------------- */

void seeder_init(sim_world *w)
{
    sim_seeder *s = &w->seeder;
    s->host = sg_host_by_name("seeder");
    s->rt = (hk_runtime){
        .ctx = s,
        .now = rt_now,
        .wake_at = rt_wake_at,
        .random_bytes = rt_random,
        .send = rt_send,
        .close = rt_close,
        .disk_prefetch = disk_rt_prefetch,
        .disk_resident = disk_rt_resident,
        .disk_load = disk_rt_load,
        .udp_send = NULL,
        .http_get = NULL,
        .log = rt_log,
    };
    prng_seed(&s->rng, w->sc->run.seed, 1);
    s->wake_at = HK_TIME_NEVER;
    s->sleeping_until = 0;
    s->timer_sem = sg_sem_init(0);
    disk_init(s, &w->sc->disk);
    s->core = hk_seeder_new(&w->sc->seeder.core, &s->rt);
    if (!s->core) {
        fprintf(stderr, "hekate-sim: hk_seeder_new failed\n");
        exit(2);
    }
    hk_seeder_set_log_level(s->core, w->sc->run.log_level); /* lines we would drop are not even formatted */
    for (uint32_t i = 0; i < w->ntorrents; i++) {
        char err[256];
        hk_add_result r = hk_seeder_add_torrent(s->core, w->torrents[i].bytes, w->torrents[i].len, i,
                                                w->info_hashes[i], err, sizeof err);
        if (r != HK_ADD_OK) {
            fprintf(stderr, "hekate-sim: add_torrent %u failed (%d): %s\n", i, (int)r, err);
            exit(2);
        }
    }
    sg_actor_create("timer", s->host, timer_main, 0, NULL);
    disk_spawn_workers(s, w->sc->disk.queue_depth);
}
