/* fleet: owns hekate-swarm's peers on the libev loop — their lives (arrival, connect, keep-alives, flooding,
 * departure and return, reconnect), their sockets (own source address, token bucket on reading, delay line) and the
 * I/O face their protocol logic (leech.h) runs on. See fleet.h. */
#include "fleet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <math.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "leech_profile.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { PH_ARRIVE = 0, PH_CONN, PH_WAIT_RECONNECT, PH_AWAY, PH_DONE };

#define READ_MAX 65536u

typedef struct dchunk {
    struct dchunk *next;
    double due;
    uint32_t len;                /* 0: the seeder closed the connection (EOF) */
    uint8_t data[];
} dchunk;

typedef struct peer_ev {
    ev_io io;
    ev_timer life, rd, dl;
} peer_ev;

static peer_ev *PEV(swarm_peer *p) { return p->io; }

double fleet_now(const swarm *sw)
{
    return ev_now((struct ev_loop *)sw->loop) - sw->t0;
}

static struct ev_loop *LOOP(const swarm_peer *p) { return p->sw->loop; }

/* ---------------- the socket ---------------- */

static void close_socket(swarm_peer *p, bool fin)
{
    peer_ev *e = PEV(p);
    ev_io_stop(LOOP(p), &e->io);
    ev_timer_stop(LOOP(p), &e->rd);
    ev_timer_stop(LOOP(p), &e->dl);
    while (p->dh) {
        dchunk *c = p->dh;
        p->dh = c->next;
        free(c);
    }
    p->dt = NULL;
    p->olen = 0;
    p->inflight = 0;
    if (p->fd >= 0 && fin) {
        close(p->fd);
    } else if (p->fd >= 0) {
        /* vanished: no FIN, nothing read or written any more; closed once the seeder has closed it */
        swarm *sw = p->sw;
        if (sw->nzombie == sw->capzombie) {
            sw->capzombie = sw->capzombie ? 2 * sw->capzombie : 64;
            sw->zombie_fds = realloc(sw->zombie_fds, sw->capzombie * sizeof *sw->zombie_fds);
            if (!sw->zombie_fds)
                abort();
        }
        sw->zombie_fds[sw->nzombie++] = (swarm_zombie){p->fd, p->id};
    }
    p->fd = -1;
}

static void on_conn_end(swarm_peer *p, lk_end why);
static void io_choke(void *ctx, bool unchoked);
static void go_blind(swarm_peer *p);

/* io.end from the protocol, or the socket's end: the connection is over (once). */
static void end_conn(swarm_peer *p, lk_end why, bool fin)
{
    if (!p->open)
        return;
    if (!fin)
        go_blind(p); /* vanished: it will never see a choke */
    p->open = false;
    p->connecting = false;
    if (p->lk.unchoked && !p->blind) { /* the connection's end chokes it */
        p->lk.unchoked = false;
        p->rx_time = fleet_now(p->sw);
        io_choke(p, false);
    }
    p->sw->connected_now--;
    close_socket(p, fin);
    on_conn_end(p, why);
}

static void io_end(void *ctx, lk_end why, bool fin)
{
    swarm_peer *p = ctx;
    if (why == LK_END_COMPLETE) {
        p->completed = true;
        p->complete_at = fleet_now(p->sw);
    }
    if (why == LK_END_CLOSED_BY_SEEDER)
        p->closed_by_seeder++;
    end_conn(p, why, fin);
}

static void want_io(swarm_peer *p)
{
    peer_ev *e = PEV(p);
    int ev = (p->reading ? EV_READ : 0) | (p->olen || p->connecting ? EV_WRITE : 0);
    if (ev == (ev_is_active(&e->io) ? e->io.events & (EV_READ | EV_WRITE) : 0))
        return;
    ev_io_stop(LOOP(p), &e->io);
    if (ev) {
        ev_io_set(&e->io, p->fd, ev);
        ev_io_start(LOOP(p), &e->io);
    }
}

static void flush_out(swarm_peer *p)
{
    while (p->olen) {
        ssize_t n = send(p->fd, p->ob, p->olen, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (n <= 0) {
            p->closed_by_seeder++;
            end_conn(p, LK_END_CLOSED_BY_SEEDER, true);
            return;
        }
        memmove(p->ob, p->ob + n, p->olen - (size_t)n);
        p->olen -= (size_t)n;
    }
    want_io(p);
}

static void io_send(void *ctx, const uint8_t *b, size_t n)
{
    swarm_peer *p = ctx;
    if (!p->open || p->fd < 0)
        return;
    if (p->olen + n > p->ocap) {
        p->ocap = (p->olen + n) * 2;
        p->ob = realloc(p->ob, p->ocap);
        if (!p->ob)
            abort();
    }
    memcpy(p->ob + p->olen, b, n);
    p->olen += n;
    p->last_sent = fleet_now(p->sw);
    if (!p->connecting)
        flush_out(p);
}

/* A choke state change, timed when its bytes left the socket (before the delay line): the seeder's order of
 * sending, which is what hekate-sim's monitor counts at send time (fleet_unchoked_max sorts them). */
static void hist_push(swarm_peer *p, swarm_event e)
{
    if (p->nhist == p->caphist) {
        p->caphist = p->caphist ? 2 * p->caphist : 8;
        p->hist = realloc(p->hist, p->caphist * sizeof *p->hist);
        if (!p->hist)
            abort();
    }
    p->hist[p->nhist++] = e;
}

static void io_choke(void *ctx, bool unchoked)
{
    swarm_peer *p = ctx;
    if (p->blind)
        return;
    if (unchoked)
        p->sw->unchoked_now++;
    else
        p->sw->unchoked_now--;
    hist_push(p, (swarm_event){p->rx_time, unchoked, false});
}

/* The peer stops reading its socket for the rest of the connection (non_reader, vanished): it can no longer see
 * its chokes, so from now on it is counted out of the peers unchoked (a "blind" event, a choke for the count). */
static void go_blind(swarm_peer *p)
{
    if (p->blind)
        return;
    if (p->lk.unchoked) {
        p->sw->unchoked_now--;
        hist_push(p, (swarm_event){fleet_now(p->sw), false, true});
    }
    p->blind = true;
}

/* ---------------- receiving: token bucket, then the delay line ---------------- */

static void feed(swarm_peer *p, double due, const uint8_t *data, uint32_t len)
{
    if (len == 0) {
        /* the seeder closed: nothing from it at all and at once is a refusal at accept (the connection cap) */
        bool refused = !p->got_bytes && fleet_now(p->sw) - p->conn_at < 0.5 + p->delay;
        if (refused)
            p->refusals++;
        else
            p->closed_by_seeder++;
        end_conn(p, refused ? LK_END_REFUSED : LK_END_CLOSED_BY_SEEDER, true);
        return;
    }
    p->rx_time = due - p->delay;
    p->sw->payload_received -= p->lk.bytes;
    lk_feed(&p->lk, data, len);
    p->sw->payload_received += p->lk.bytes;
    if (p->open && lk_stopped_reading(&p->lk) && p->reading) {
        go_blind(p);
        p->reading = false; /* non_reader: the socket is never read again */
        want_io(p);
    }
}

static void dl_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    swarm_peer *p = w->data;
    double now = fleet_now(p->sw);
    while (p->dh && p->dh->due <= now + 1e-4 && p->open) {
        dchunk *c = p->dh;
        p->dh = c->next;
        if (!p->dh)
            p->dt = NULL;
        p->inflight -= c->len;
        feed(p, c->due, c->data, c->len);
        free(c);
    }
    if (p->open && !p->reading && p->sw->window && !lk_stopped_reading(&p->lk) && p->fd >= 0 &&
        !ev_is_active(&PEV(p)->rd)) {
        p->reading = true; /* the window has room again */
        want_io(p);
    }
    if (p->dh && p->open) {
        ev_timer_set(w, p->dh->due - now, 0);
        ev_timer_start(LOOP(p), w);
    }
}

static void delay_push(swarm_peer *p, const uint8_t *b, uint32_t n)
{
    if (p->delay <= 0 && !p->dh) {
        p->inflight -= n; /* on_readable counted it in; it is out of the (empty) delay line at once */
        feed(p, fleet_now(p->sw), b, n); /* no round trip to play and nothing ahead: decode now, without a copy */
        return;
    }
    dchunk *c = malloc(sizeof *c + n);
    if (!c)
        abort();
    c->next = NULL;
    c->due = fleet_now(p->sw) + p->delay;
    c->len = n;
    memcpy(c->data, b, n);
    if (p->dt)
        p->dt->next = c;
    else
        p->dh = c;
    p->dt = c;
    peer_ev *e = PEV(p);
    if (!ev_is_active(&e->dl)) {
        ev_timer_set(&e->dl, p->delay, 0);
        ev_timer_start(LOOP(p), &e->dl);
    }
}

static void rd_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    swarm_peer *p = w->data;
    if (p->open && !lk_stopped_reading(&p->lk)) {
        p->reading = true;
        want_io(p);
    }
}

static void on_readable(swarm_peer *p)
{
    static uint8_t buf[READ_MAX];
    double now = fleet_now(p->sw);
    p->tokens += (now - p->tb_last) * p->rate;
    p->tb_last = now;
    if (p->tokens > p->burst)
        p->tokens = p->burst;
    uint64_t room = p->sw->window > p->inflight ? p->sw->window - p->inflight : 0;
    if (p->sw->window && room < 1024) {
        p->reading = false; /* a window's worth is on its way through the delay line: wait for it (dl_cb) */
        want_io(p);
        return;
    }
    if (p->tokens < 1024) {
        p->reading = false; /* out of tokens: the socket waits, TCP's window closes, the seeder slows down */
        want_io(p);
        peer_ev *e = PEV(p);
        ev_timer_set(&e->rd, (4096 - p->tokens) / p->rate, 0);
        ev_timer_start(LOOP(p), &e->rd);
        return;
    }
    size_t want = p->tokens < READ_MAX ? (size_t)p->tokens : READ_MAX;
    if (p->sw->window && want > room)
        want = (size_t)room;
    ssize_t n = recv(p->fd, buf, want, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        p->reading = false;
        want_io(p);
        delay_push(p, buf, 0);
        return;
    }
    p->got_bytes = true;
    p->tokens -= (double)n;
    p->inflight += (uint64_t)n;
    p->sw->bytes_read += (uint64_t)n;
    delay_push(p, buf, (uint32_t)n);
}

static void on_connect_done(swarm_peer *p)
{
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    p->connecting = false;
    if (err) {
        p->refusals++;
        end_conn(p, LK_END_REFUSED, true);
        return;
    }
    p->reading = true;
    p->tb_last = fleet_now(p->sw);
    lk_connected(&p->lk);
    flush_out(p);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    swarm_peer *p = w->data;
    if (p->connecting) {
        if (revents & (EV_WRITE | EV_READ))
            on_connect_done(p);
        return;
    }
    if ((revents & EV_WRITE) && p->open)
        flush_out(p);
    if ((revents & EV_READ) && p->open && p->reading)
        on_readable(p);
}

/* ---------------- life ---------------- */

static void source_address(const swarm_peer *p, struct sockaddr_in *a)
{
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    uint32_t k = p->id, ip;
    if (p->prof->address == ADDRESS_SHARED)
        ip = (127u << 24) | (255u << 16) | ((p->profile_index & 255u) << 8) | 1u;
    else
        ip = (127u << 24) | ((1u + (k >> 16)) << 16) | (((k >> 8) & 255u) << 8) | (k & 255u);
    a->sin_addr.s_addr = htonl(ip);
}

static void arm_life(swarm_peer *p, double at)
{
    peer_ev *e = PEV(p);
    ev_timer_stop(LOOP(p), &e->life);
    double d = at - fleet_now(p->sw);
    ev_timer_set(&e->life, d > 0 ? d : 0, 0);
    ev_timer_start(LOOP(p), &e->life);
}

static double next_timer(const swarm_peer *p)
{
    double t = p->sw->stop_time;
    if (p->leave_at < t)
        t = p->leave_at;
    if (p->open && !p->connecting && lk_sends_keepalives(&p->lk) && p->last_sent + p->prof->keepalive / 1e9 < t)
        t = p->last_sent + p->prof->keepalive / 1e9;
    if (p->open && lk_flooding(&p->lk) && p->next_flood < t)
        t = p->next_flood;
    if (p->open && !p->reading) { /* not reading (non_reader, tokens): watch for the seeder's close every second */
        double c = fleet_now(p->sw) + 1;
        if (c < t)
            t = c;
    }
    return t;
}

/* true if the kernel says the seeder closed the connection (used where the socket is not read) */
static bool seeder_closed(int fd)
{
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0)
        return true;
    return ti.tcpi_state != TCP_ESTABLISHED && ti.tcpi_state != TCP_SYN_SENT;
}

static void connect_once(swarm_peer *p)
{
    swarm *sw = p->sw;
    p->phase = PH_CONN;
    p->connects++;
    double now = fleet_now(sw);
    if (!p->first_connect)
        p->first_connect = now;
    p->conn_at = p->last_sent = now;
    p->next_flood = now + 1;
    p->open = true;
    p->got_bytes = p->reading = false;
    p->tokens = p->burst;
    sw->connected_now++;
    if (sw->connected_now > sw->connected_max)
        sw->connected_max = sw->connected_now;
    lk_connection_start(&p->lk);
    p->blind = false;
    struct sockaddr_in src;
    source_address(p, &src);
    int one = 1, rcvbuf = (int)sw->window;
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* with the window emulated, the kernel's receive buffer is a window too (the simulator's peer has nothing
     * beyond its flight): a peer that does not read holds back the seeder after about `window` bytes */
    if (p->fd >= 0 && rcvbuf > 0)
        setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (p->fd < 0 || setsockopt(p->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) < 0 ||
        bind(p->fd, (struct sockaddr *)&src, sizeof src) < 0 ||
        (connect(p->fd, (struct sockaddr *)&sw->target, sizeof sw->target) < 0 && errno != EINPROGRESS)) {
        fprintf(stderr, "hekate-swarm: peer %u: connect: %s\n", p->id, strerror(errno));
        p->refusals++;
        end_conn(p, LK_END_REFUSED, true);
        return;
    }
    setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    p->connecting = true;
    want_io(p);
    arm_life(p, next_timer(p));
}

static void finish(swarm_peer *p)
{
    if (p->finished)
        return;
    p->phase = PH_DONE;
    p->finished = true;
    if (p->end == LK_END_NONE)
        p->end = LK_END_TIME;
    p->end_at = fleet_now(p->sw);
    p->sw->lives_running--;
    ev_timer_stop(LOOP(p), &PEV(p)->life);
}

static bool reconnects(const swarm_peer *p)
{
    sim_behaviour b = p->prof->behaviour;
    return p->prof->reconnect > 0 && (b == BEH_NORMAL || b == BEH_SLOW_READER || b == BEH_MAGNET);
}

/* Away for a downtime, then back with a new uptime; false if it never comes back. */
static bool away(swarm_peer *p)
{
    if (!p->prof->mttr)
        return false;
    double now = fleet_now(p->sw);
    double back = now + prng_exponential(&p->rng, (double)p->prof->mttr) / 1e9;
    p->leave_at = back + prng_exponential(&p->rng, (double)p->prof->mtbf) / 1e9;
    p->phase = PH_AWAY;
    arm_life(p, back < p->sw->stop_time ? back : p->sw->stop_time);
    return true;
}

static void on_conn_end(swarm_peer *p, lk_end why)
{
    p->end = why;
    if (why == LK_END_COMPLETE || why == LK_END_VANISHED || why == LK_END_TIME) {
        finish(p);
        return;
    }
    if (why == LK_END_DEPARTED) {
        if (!away(p))
            finish(p);
        return;
    }
    if (!reconnects(p)) {
        finish(p);
        return;
    }
    p->phase = PH_WAIT_RECONNECT;
    double at = fleet_now(p->sw) + p->prof->reconnect / 1e9;
    arm_life(p, at < p->sw->stop_time ? at : p->sw->stop_time);
}

/* Connect now, unless the run is over or the uptime ran out while waiting (then away first). */
static void try_connect(swarm_peer *p)
{
    double now = fleet_now(p->sw);
    if (now >= p->sw->stop_time) {
        finish(p);
        return;
    }
    if (now >= p->leave_at) {
        if (!away(p))
            finish(p);
        return;
    }
    connect_once(p);
}

static void on_timer(swarm_peer *p)
{
    double now = fleet_now(p->sw);
    if (now >= p->sw->stop_time) {
        end_conn(p, LK_END_TIME, true);
        return;
    }
    if (now >= p->leave_at) {
        end_conn(p, LK_END_DEPARTED, p->prof->departure == DEPART_FIN);
        return;
    }
    if (!p->reading && !p->connecting && seeder_closed(p->fd)) {
        p->closed_by_seeder++;
        end_conn(p, LK_END_CLOSED_BY_SEEDER, true);
        return;
    }
    if (!p->connecting && lk_sends_keepalives(&p->lk) && now >= p->last_sent + p->prof->keepalive / 1e9)
        lk_keepalive(&p->lk);
    if (p->open && lk_flooding(&p->lk) && now >= p->next_flood) {
        lk_flood(&p->lk);
        p->next_flood = now + 1;
    }
    if (p->open)
        arm_life(p, next_timer(p));
}

static void life_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    swarm_peer *p = w->data;
    switch (p->phase) {
    case PH_ARRIVE:
        p->leave_at = p->prof->mtbf ? fleet_now(p->sw) + prng_exponential(&p->rng, (double)p->prof->mtbf) / 1e9
                                    : INFINITY;
        try_connect(p);
        break;
    case PH_CONN:
        on_timer(p);
        break;
    case PH_WAIT_RECONNECT:
    case PH_AWAY:
        try_connect(p);
        break;
    default:
        break;
    }
}

/* ---------------- the run ---------------- */

/* The draws of hekate-sim for peer id, stream for stream: arrival (by the caller), torrent and request order
 * (leechers_start), link speeds and latency (main.c's platform). */
static void setup_peer(swarm *sw, swarm_peer *p, uint32_t pi, uint32_t id, double arrival)
{
    const scenario *sc = sw->sc;
    const sim_profile *pr = &sc->profiles[pi];
    p->sw = sw;
    p->id = id;
    p->profile_index = pi;
    p->prof = pr;
    p->fd = -1;
    p->arrival = arrival;
    p->leave_at = INFINITY;
    prng_seed(&p->rng, sc->run.seed, 0x1000000ull + id);
    p->torrent = pr->torrent >= 0 ? (uint32_t)pr->torrent : (uint32_t)prng_below(&p->rng, sc->torrent.count);
    uint64_t perm_seed = prng_next(&p->rng);
    prng r;
    prng_seed(&r, sc->run.seed, 0x4000000ull + id);
    p->down = prng_uniform(&r, pr->down.lo, pr->down.hi);
    (void)prng_uniform(&r, pr->up.lo, pr->up.hi);
    p->latency = prng_uniform(&r, pr->latency.lo, pr->latency.hi);
    p->delay = 2 * (p->latency + sc->seeder.latency); /* the RTT of the simulated path (loopback's is ~0) */
    p->rate = p->down;
    if (pr->behaviour == BEH_SLOW_READER && pr->read_rate < p->rate)
        p->rate = pr->read_rate;
    p->burst = p->rate * 0.05 > 32768 ? p->rate * 0.05 : 32768;
    lk_io io = {.ctx = p, .send = io_send, .end = io_end, .choke = io_choke};
    lk_init(&p->lk, &sw->params[pi], &sw->torrents[p->torrent], io, id, perm_seed);
    peer_ev *e = calloc(1, sizeof *e);
    if (!e)
        abort();
    p->io = e;
    ev_io_init(&e->io, io_cb, -1, 0);
    e->io.data = p;
    ev_timer_init(&e->life, life_cb, 0, 0);
    e->life.data = p;
    ev_timer_init(&e->rd, rd_cb, 0, 0);
    e->rd.data = p;
    ev_timer_init(&e->dl, dl_cb, 0, 0);
    e->dl.data = p;
    p->phase = PH_ARRIVE;
    arm_life(p, arrival);
    sw->lives_running++;
}

/* The seeder verifies pieces ([seeder] verify): the peers complete without the ones it refuses, as in hekate-sim. */
static void setup_params(swarm *sw)
{
    for (uint32_t pi = 0; pi < sw->sc->nprofiles; pi++)
        lk_params_from_profile(&sw->params[pi], &sw->sc->profiles[pi], sw->sc->seeder.verify != SIM_VERIFY_OFF);
}

static void setup_peers(swarm *sw)
{
    const scenario *sc = sw->sc;
    for (uint32_t pi = 0; pi < sc->nprofiles; pi++) {
        const sim_profile *p = &sc->profiles[pi];
        prng arr;
        prng_seed(&arr, sc->run.seed, 0x617272ull + pi);
        double t = (double)p->start / 1e9;
        for (uint32_t k = 0; k < p->count; k++) {
            if (p->arrival == ARRIVE_POISSON)
                t += prng_exponential(&arr, 1.0 / p->rate);
            else if (p->arrival == ARRIVE_UNIFORM && k > 0)
                t += 1.0 / p->rate;
            setup_peer(sw, &sw->peers[p->first_peer + k], pi, p->first_peer + k, (double)llround(t * 1e9) / 1e9);
        }
    }
}

static void sample_rate_window(swarm *sw, double now)
{
    const units_range *win = &sw->sc->expect.rate_window;
    double ends[2] = {win->lo, win->hi};
    for (int i = 0; i < 2 && win->hi > 0; i++)
        if (!sw->rate_at[i] && now >= ends[i]) {
            sw->rate_at[i] = now;
            sw->rate_bytes[i] = sw->payload_received;
        }
}

static void reap_zombies(swarm *sw)
{
    uint32_t j = 0;
    for (uint32_t i = 0; i < sw->nzombie; i++) {
        if (seeder_closed(sw->zombie_fds[i].fd)) {
            close(sw->zombie_fds[i].fd);
            sw->zombies_closed++;
            sw->peers[sw->zombie_fds[i].peer].closed_by_seeder++; /* as hekate-sim's backend sees it */
        } else {
            sw->zombie_fds[j++] = sw->zombie_fds[i];
        }
    }
    sw->nzombie = j;
}

static void controller_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    swarm *sw = w->data;
    double now = fleet_now(sw);
    sample_rate_window(sw, now);
    reap_zombies(sw);
    if (sw->series && now >= sw->next_sample) {
        fprintf(sw->series, "%.3f,%llu,%u,%u,%u\n", now, (unsigned long long)sw->payload_received, sw->connected_now,
                sw->unchoked_now, sw->lives_running);
        sw->next_sample += sw->sc->run.sample ? (double)sw->sc->run.sample / 1e9 : 1;
    }
    if (now >= (double)sw->sc->run.duration / 1e9 || sw->lives_running == 0)
        ev_break(loop, EVBREAK_ALL);
}

/* One descriptor per connected peer (and per vanished connection not yet closed by the seeder). */
static void raise_nofile(uint32_t npeers)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if ((uint64_t)npeers + 64 > rl.rlim_cur)
        fprintf(stderr, "hekate-swarm: %u peers but at most %llu descriptors (RLIMIT_NOFILE): connections beyond "
                        "them fail and count as refusals\n", npeers, (unsigned long long)rl.rlim_cur);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int cmp_event(const void *a, const void *b)
{
    const swarm_event *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return (int)x->unchoked - (int)y->unchoked; /* at the same moment a choke goes first */
}

/* Most peers unchoked at once, from every peer's history in the order the seeder sent them. The seeder sends a
 * choke and the unchoke that replaces it in one go, but the fleet reads its sockets in turns, each under its token
 * bucket: a choke read up to CHOKE_SKEW after an unchoke counts as sent before it (hekate's own count is
 * hekate_peers_unchoked_max, which scripts/sim-vs-real.sh prints beside this one). */
#define CHOKE_SKEW 0.02
static uint32_t unchoked_max(const swarm *sw)
{
    size_t n = 0, k = 0;
    for (uint32_t i = 0; i < sw->npeers; i++)
        n += sw->peers[i].nhist;
    swarm_event *all = malloc((n + 1) * sizeof *all);
    if (!all)
        abort();
    for (uint32_t i = 0; i < sw->npeers; i++)
        for (uint32_t j = 0; j < sw->peers[i].nhist; j++) {
            all[k] = sw->peers[i].hist[j];
            if (!all[k].unchoked)
                all[k].t -= CHOKE_SKEW;
            k++;
        }
    qsort(all, n, sizeof *all, cmp_event);
    int64_t now = 0, max = 0;
    for (size_t i = 0; i < n; i++) {
        now += all[i].unchoked ? 1 : -1;
        if (now > max)
            max = now;
    }
    free(all);
    return (uint32_t)max;
}

int fleet_run(swarm *sw)
{
    raise_nofile(sw->npeers);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    if (!loop) {
        fprintf(stderr, "hekate-swarm: cannot create the event loop\n");
        return -1;
    }
    sw->loop = loop;
    ev_now_update(loop);
    sw->t0 = ev_now(loop);
    sw->stop_time = (double)(sw->sc->run.duration - sw->sc->run.quiesce) / 1e9;
    sw->peers = calloc(sw->npeers ? sw->npeers : 1, sizeof *sw->peers);
    sw->params = calloc(sw->sc->nprofiles ? sw->sc->nprofiles : 1, sizeof *sw->params);
    if (!sw->peers || !sw->params)
        return -1;
    setup_params(sw);
    setup_peers(sw);
    ev_timer ctl;
    double period = sw->sc->run.sample ? (double)sw->sc->run.sample / 1e9 : 1;
    ev_timer_init(&ctl, controller_cb, period, period < 0.25 ? period : 0.25);
    ctl.data = sw;
    ev_timer_start(loop, &ctl);
    double cpu0 = cpu_seconds();
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    ev_run(loop, 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    sw->end_time = fleet_now(sw);
    if (sw->series) /* the last sample: the run's end */
        fprintf(sw->series, "%.3f,%llu,%u,%u,%u\n", sw->end_time, (unsigned long long)sw->payload_received,
                sw->connected_now, sw->unchoked_now, sw->lives_running);
    sw->wall_s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    sw->cpu_s = cpu_seconds() - cpu0;
    for (uint32_t i = 0; i < sw->npeers; i++) { /* the run is over: whoever is still there leaves */
        swarm_peer *p = &sw->peers[i];
        if (p->open)
            end_conn(p, LK_END_TIME, true);
        finish(p);
    }
    for (uint32_t i = 0; i < sw->nzombie; i++)
        close(sw->zombie_fds[i].fd);
    sw->unchoked_max = unchoked_max(sw);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    sw->rss_kib = ru.ru_maxrss;
    return 0;
}

void fleet_free(swarm *sw)
{
    for (uint32_t i = 0; sw->peers && i < sw->npeers; i++) {
        swarm_peer *p = &sw->peers[i];
        if (p->io) {
            close_socket(p, true);
            free(p->io);
        }
        lk_free(&p->lk);
        free(p->ob);
        free(p->hist);
    }
    free(sw->peers);
    free(sw->params);
    free(sw->zombie_fds);
    if (sw->loop)
        ev_loop_destroy(sw->loop);
    sw->peers = NULL;
    sw->params = NULL;
    sw->zombie_fds = NULL;
    sw->loop = NULL;
}
