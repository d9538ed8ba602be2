/* seeder_rt: owns the seeder side of the simulation — the seeder's runtime table (hk_seeder_runtime) handed to the
 * core, the seeder's deferred-op queue and its drain, the per-connection receiver actors and the timer actor (the
 * core's single wake-up). Disk actions live in disk.c, the output monitor in monitor.c (see seeder_rt.h). */
#include "seeder_rt.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "world.h"

static void track_memory(sim_seeder *s)
{
    hk_stats st;
    hk_seeder_stats(s->core, &st);
    if (st.memory_bytes > s->memory_max)
        s->memory_max = st.memory_bytes;
}

/* ---------------- runtime actions (called by the core: memory only, no SimGrid call) ---------------- */

static hk_time rt_now(void *ctx)
{
    sim_seeder *s = ctx;
    return sim_now(s->world);
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

static uint8_t *enc_scratch(sim_seeder *s, size_t len)
{
    if (s->enc_cap < len) {
        free(s->enc_buf);
        s->enc_cap = len > 65536 ? len : 65536;
        s->enc_buf = malloc(s->enc_cap);
        if (!s->enc_buf)
            abort();
    }
    return s->enc_buf;
}

/* Real bytes onto the connection's stream, through its cipher when it has one. */
static void write_bytes(sim_seeder *s, hk_conn *c, const uint8_t *b, uint32_t len)
{
    if (!c->s_cipher) {
        stream_write(&c->s_out, b, len);
        return;
    }
    uint8_t *e = enc_scratch(s, len);
    hk_cipher_apply(c->s_cipher, b, e, len);
    stream_write(&c->s_out, e, len);
}

/* Data-file bytes (no content in the simulation): an RC4 stream still advances over them, as the peer's does. */
static void write_virtual(sim_seeder *s, hk_conn *c, uint32_t len)
{
    if (c->s_cipher) {
        uint8_t *e = enc_scratch(s, 65536);
        for (uint32_t done = 0; done < len;) {
            uint32_t k = len - done < 65536 ? len - done : 65536;
            hk_cipher_apply(c->s_cipher, sim_zero_bytes(), e, k);
            done += k;
        }
    }
    stream_write_virtual(&c->s_out, len);
}

static void rt_set_cipher(void *ctx, hk_conn *c, hk_cipher *cipher)
{
    sim_seeder *s = ctx;
    c->s_cipher = cipher;
    evlog_line(s->world->log, sim_now(s->world), "cipher c%llu %s", (unsigned long long)c->id, cipher ? "on" : "off");
}

/* A METAINFO extent: the .torrent bytes the core names (counted as a monitor error when outside the torrent). */
static void send_metainfo(sim_seeder *s, hk_conn *c, const hk_extent *e)
{
    sim_world *w = s->world;
    const sim_torrent *t = e->storage < w->ntorrents ? &w->torrents[e->storage] : NULL;
    if (!t || e->offset > t->len || e->length > t->len - e->offset) {
        s->monitor_errors++;
        write_virtual(s, c, e->length);
    } else {
        write_bytes(s, c, t->bytes + e->offset, e->length);
    }
    monitor_extent(w, c, e);
}

/* A data extent: its pages must be resident (the core checked or loaded them); the bytes have no content. */
static void send_data(sim_seeder *s, hk_conn *c, const hk_extent *e)
{
    sim_world *w = s->world;
    if (!disk_check_and_touch(s, e)) {
        s->sent_not_resident++;
        evlog_line(w->log, sim_now(w), "error not-resident c%llu s%llu f%u o%llu l%u", (unsigned long long)c->id,
                   (unsigned long long)e->storage, e->file, (unsigned long long)e->offset, e->length);
    }
    write_virtual(s, c, e->length);
    s->data_bytes_sent += e->length;
    if (w->sc->torrent.ncorrupt && e->storage < w->ntorrents) { /* piece verification: never a corrupt byte */
        uint32_t pl = w->sc->torrent.piece_length;
        for (uint64_t p = e->offset / pl; p <= (e->offset + e->length - 1) / pl; p++)
            if (scenario_corrupt(w->sc, (uint32_t)e->storage, (uint32_t)p)) {
                s->corrupt_sent++;
                evlog_line(w->log, sim_now(w), "error corrupt-sent c%llu s%llu p%llu", (unsigned long long)c->id,
                           (unsigned long long)e->storage, (unsigned long long)p);
            }
    }
    if (w->fault_extent_offset) {
        hk_extent wrong = *e; /* test hook: what a backend bug shifting file offsets would send */
        wrong.offset++;
        monitor_extent(w, c, &wrong);
        return;
    }
    monitor_extent(w, c, e);
}

/* The MSE handshake's own bytes (Yb, PadB, the encrypted reply: sends before the seeder's BitTorrent handshake on
 * an MSE peer's connection) are not BitTorrent framing: the monitor starts at the handshake. */
static bool mse_handshake_bytes(hk_conn *c, const hk_segment *segs, size_t n)
{
    if (c->s_mse_phase_over || !c->lee || c->lee->prof->encryption == SIM_ENC_NONE)
        return false;
    if (n && segs[0].kind == HK_SEG_BYTES && segs[0].u.bytes.len >= 20 &&
        memcmp(segs[0].u.bytes.ptr, "\x13" "BitTorrent protocol", 20) == 0) {
        c->s_mse_phase_over = true;
        return false;
    }
    return true;
}

static void rt_send(void *ctx, hk_conn *c, const hk_segment *segs, size_t n)
{
    sim_seeder *s = ctx;
    sim_world *w = s->world;
    if (c->s_closed) {
        s->monitor_errors++;
        evlog_line(w->log, sim_now(w), "error send-after-close c%llu", (unsigned long long)c->id);
        return;
    }
    if (mse_handshake_bytes(c, segs, n)) {
        uint64_t total = 0;
        for (size_t i = 0; i < n; i++) {
            write_bytes(s, c, segs[i].u.bytes.ptr, segs[i].u.bytes.len); /* the core sends them as BYTES */
            total += segs[i].u.bytes.len;
        }
        c->s_unacked += total;
        evlog_line(w->log, sim_now(w), "send c%llu mse bytes=%llu", (unsigned long long)c->id,
                   (unsigned long long)total);
        queue_flush(s, c);
        return;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const hk_segment *g = &segs[i];
        if (g->kind == HK_SEG_BYTES) {
            write_bytes(s, c, g->u.bytes.ptr, g->u.bytes.len);
            monitor_bytes(w, c, g->u.bytes.ptr, g->u.bytes.len);
            total += g->u.bytes.len;
        } else if (g->u.extent.file == HK_FILE_METAINFO) {
            send_metainfo(s, c, &g->u.extent);
            total += g->u.extent.length;
        } else {
            send_data(s, c, &g->u.extent);
            total += g->u.extent.length;
        }
    }
    c->s_unacked += total;
    evlog_line(w->log, sim_now(w), "send c%llu segs=%zu bytes=%llu", (unsigned long long)c->id, n,
               (unsigned long long)total);
    queue_flush(s, c);
}

/* The connection stops existing for the core (either side closed it). */
static void seeder_forget(sim_seeder *s, hk_conn *c)
{
    c->s_closed = true;
    c->s_cipher = NULL; /* the core frees it with the peer */
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
    c->closed_at = sim_now(s->world);
    record_seeder_close(c);
    seeder_forget(s, c);
    evlog_line(s->world->log, c->closed_at, "close c%llu", (unsigned long long)c->id);
    opq_push(&s->ops, SOP_FIN, c);
    opq_push(&s->ops, SOP_KILL, c);
}

static void rt_log(void *ctx, hk_log_level level, const char *line)
{
    sim_seeder *s = ctx;
    if (level <= s->world->sc->run.log_level)
        evlog_line(s->world->log, sim_now(s->world), "log %d %s", (int)level, line);
}

/* ---------------- deferred ops ---------------- */

void seeder_drain(sim_seeder *s, sim_outbox *ob)
{
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
                m = stream_take_flight(&c->s_out, s->world->sc->seeder.window);
            if (m && !drop) {
                msg_put(ob, mb, msg_new_ctl(MSG_HEAD)); /* the flight's first segment (stream.h) */
                drop = c->p_closed; /* the put let other actors run */
            }
            break;
        case SOP_ACK: m = msg_new_ctl(MSG_ACK); break;
        case SOP_FIN: m = msg_new_ctl(MSG_FIN); break;
        case SOP_SYNACK: m = msg_new_ctl(c->peer ? MSG_SYNACK : MSG_RST); break;
        case SOP_KILL: m = conn_stop_receiver(c, true, &mb, &drop, &victim); break;
        case SOP_TIMER_KICK:
            s->kick_queued = false;
            sg_sem_release(s->timer_sem);
            break;
        case SOP_DISK_KICK: sg_sem_release(s->disk.sem); break;
        default: assert(!"a peer op in the seeder's queue"); abort();
        }
        op_finish(ob, c, m, mb, drop, victim); /* the one SimGrid call of the op, last */
    }
}

/* ---------------- receiver actor: one per connection, on the seeder host ---------------- */

static void grant(sim_seeder *s, hk_conn *c)
{
    sim_world *w = s->world;
    uint32_t sndbuf = w->sc->seeder.sndbuf;
    size_t room = c->s_unacked >= sndbuf ? 0 : sndbuf - (size_t)c->s_unacked;
    c->room_left = (int64_t)room;
    evlog_line(w->log, sim_now(w), "sendable c%llu %zu", (unsigned long long)c->id, room);
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
    sim_world *w = s->world;
    uint32_t pid = c->lee ? c->lee->id : 0;
    hk_addr a = {.family = 4, .ip = {10, (uint8_t)(pid >> 16), (uint8_t)(pid >> 8), (uint8_t)pid}, .port = 6881};
    if (c->lee && c->lee->prof->address == ADDRESS_SHARED) /* one host for the whole profile (scenario.h) */
        a = (hk_addr){.family = 4, .ip = {10, 255, (uint8_t)c->lee->profile_index, 1}, .port = 6881};
    c->accepted_at = c->last_rx = c->last_ack = sim_now(w);
    s->core_calls++;
    opq_push(&s->ops, SOP_SYNACK, c); /* becomes RST if refused; before any data the core may queue */
    hk_peer *p = hk_seeder_on_accept(s->core, c, &a);
    if (!p) {
        s->refused++;
        c->s_closed = true;
        evlog_line(w->log, sim_now(w), "refuse c%llu p%u", (unsigned long long)c->id, pid);
        return;
    }
    evlog_line(w->log, sim_now(w), "accept c%llu p%u as peer %llu", (unsigned long long)c->id, pid,
               (unsigned long long)hk_peer_number(p));
    c->peer = p;
    s->conns_open++;
    s->conns_total++;
    track_memory(s);
    grant(s, c);
}

static void rx_data(sim_seeder *s, hk_conn *c, const sim_msg *m)
{
    c->last_rx = sim_now(s->world); /* acknowledged at its head, or here if the peer waits for it (stream.h) */
    if (stream_delivered(&c->p_out, m->len))
        opq_push(&s->ops, SOP_ACK, c);
    for (uint32_t i = 0; i < m->nparts && !c->s_closed; i++) {
        evlog_line(s->world->log, c->last_rx, "recv c%llu %u", (unsigned long long)c->id, m->parts[i].len);
        s->core_calls++;
        hk_seeder_on_recv(s->core, c->peer, m->parts[i].bytes, m->parts[i].len);
    }
}

static void rx_ack(sim_seeder *s, hk_conn *c)
{
    c->last_ack = sim_now(s->world);
    uint64_t done = stream_learn_delivered(&c->s_out); /* the socket buffer holds what is in transit (stream.h) */
    assert(c->s_unacked >= done);
    c->s_unacked -= done;
    c->s_out.inflight = 0;
    queue_flush(s, c);
    if (c->s_unacked <= s->world->sc->seeder.sndbuf / 2)
        grant(s, c);
}

static void rx_closed(sim_seeder *s, hk_conn *c, hk_close_reason why)
{
    seeder_forget(s, c);
    evlog_line(s->world->log, sim_now(s->world), "closed c%llu %s", (unsigned long long)c->id,
               why == HK_CLOSED_BY_PEER ? "by-peer" : "error");
    s->core_calls++;
    hk_seeder_on_closed(s->core, c->peer, why);
}

/* One message from the peer, unless the connection is closed on the seeder's side. */
static void rx_dispatch(sim_seeder *s, hk_conn *c, const sim_msg *m)
{
    if (c->s_closed)
        return;
    switch ((sim_msg_type)m->type) {
    case MSG_SYN: rx_syn(s, c); break;
    case MSG_HEAD: opq_push(&s->ops, SOP_ACK, c); break;
    case MSG_DATA: rx_data(s, c, m); break;
    case MSG_ACK: rx_ack(s, c); break;
    case MSG_FIN: rx_closed(s, c, HK_CLOSED_BY_PEER); break;
    default: break; /* MSG_STOP: a wake-up, the loop sees s_closed */
    }
}

static void rx_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    hk_conn *c = sg_actor_self_get_data();
    sim_seeder *s = &c->world->seeder;
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
            seeder_drain(s, &c->s_box);
            break;
        }
        sim_msg *m = data;
        rx_dispatch(s, c, m);
        msg_release(m);
        seeder_drain(s, &c->s_box);
        if (c->s_closed)
            break;
        outbox_reap(&c->s_box);
    }
    c->s_stopping = true; /* nobody kills or wakes it any more */
    outbox_close(&c->s_box);
    return;
}

void seeder_spawn_rx(sim_seeder *s, hk_conn *c)
{
    char name[48];
    snprintf(name, sizeof name, "rx%llu", (unsigned long long)c->id);
    conn_ref(c);
    sim_spawn(name, s->host, rx_main, c);
}

/* ---------------- timer actor: the core's single wake-up ---------------- */

static void timer_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    sim_world *w = sg_actor_self_get_data();
    sim_seeder *s = &w->seeder;
    sim_outbox *box = outbox_new_for_self();
    sg_actor_daemonize(sg_actor_self());
    /* SimGrid 3.32 keeps finished synchronisations in the actor's activity list and scans that list whenever a
     * communication this actor sent completes: a long-lived actor slows every completion down. Recycle. */
    for (int round = 0; round < 256; round++) {
        outbox_reap(box);
        hk_time now = sim_now(w);
        hk_time t = s->wake_at;
        if (t != HK_TIME_NEVER && t <= now + 1000) {
            /* due (within 1 us: below SimGrid's clock precision a sleep would not advance time) */
            if (t > now)
                w->now_floor = t;
            s->wake_at = HK_TIME_NEVER;
            s->sleeping_until = 0;
            evlog_line(w->log, sim_now(w), "wake");
            s->core_calls++;
            hk_seeder_on_wake(s->core);
            seeder_drain(s, box);
            continue;
        }
        s->sleeping_until = t;
        sim_sem_wait_until(s->timer_sem, t, now);
        s->sleeping_until = 0;
    }
    sim_spawn("timer", s->host, timer_main, w);
    outbox_close(box); /* the new timer actor has taken over; this one only waits for its sends in flight */
}

/* ---------------- setup ---------------- */

void seeder_init(sim_world *w)
{
    sim_seeder *s = &w->seeder;
    s->world = w;
    s->host = sg_host_by_name("seeder");
    s->rt = (hk_seeder_runtime){
        .base = { .ctx = s, .now = rt_now, .wake_at = rt_wake_at, .random_bytes = rt_random, .log = rt_log },
        .send = rt_send,
        .close = rt_close,
        .disk_prefetch = disk_rt_prefetch,
        .disk_resident = disk_rt_resident,
        .disk_load = disk_rt_load,
        .set_cipher = rt_set_cipher,
    };
    if (w->sc->seeder.verify != SIM_VERIFY_OFF)
        s->rt.disk_verify = disk_rt_verify; /* piece verification (issue 10 item 4); off by default */
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
    sim_spawn("timer", s->host, timer_main, w);
    disk_spawn_workers(s, w->sc->disk.queue_depth);
}
