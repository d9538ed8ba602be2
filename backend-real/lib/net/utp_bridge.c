/* utp_bridge: the table of accepted uTP connections and, for each, the socketpair that carries its byte stream to the
 * listener's accept path (see utp_bridge.h). */
#include "utp_bridge.h"

#include <errno.h>
#include <ev.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hash.h"
#include "list.h"
#include "listener.h"
#include "log.h"
#include "wake.h"

#define BUCKETS 1024
#define READ_CHUNK 16384

typedef struct bconn {
    hk_list link;                /* in its bucket */
    hk_utp_bridge *b;
    hk_utp_conn *c;
    hk_addr peer;
    uint16_t recv_id;
    int fd;                      /* the bridge's end of the socketpair (-1 once closed) */
    ev_io rio, wio;
    ev_timer timer;
    bool app_eof;                /* the local socket said EOF: our FIN is queued */
    bool peer_eof;               /* the peer's FIN: shut down the socket's write side once pend is written */
    bool dead;                   /* closed: freed after the call that closed it */
    bool broken;                 /* the local socket failed: reset the connection at the next settle */
    size_t pend_len;
    uint8_t *pend;               /* app_buffer bytes */
} bconn;

struct hk_utp_bridge {
    struct ev_loop *loop;
    hk_udp_port *udp;
    hk_utp_bridge_opts o;
    hk_utp_accept_fn accept;
    void *arg;
    uint64_t seed, isn_state;
    unsigned count;
    hk_list buckets[BUCKETS];
    hk_utp_bridge_stats st;      /* retransmits, timeouts, bytes: of closed connections (open ones added on read) */
};

void hk_utp_bridge_opts_default(hk_utp_bridge_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_conns = 512;
    o->per_address = 8;
    o->app_buffer = 16384;
    hk_utp_conn_limits_default(&o->conn);
}

static unsigned bucket_of(const hk_utp_bridge *b, const hk_addr *a, uint16_t id)
{
    uint64_t h = b->seed ^ ((uint64_t)a->family << 32 | (uint64_t)a->port << 16 | id);
    uint8_t ip[16] = { 0 };
    memcpy(ip, a->ip, a->family == 4 ? 4 : 16); /* only the bytes the family uses */
    for (unsigned i = 0; i < 16; i += 8) {
        uint64_t w;
        memcpy(&w, ip + i, 8);
        h = hk_mix64(h ^ w);
    }
    return (unsigned)(h % BUCKETS);
}

static bool same_ip(const hk_addr *x, const hk_addr *y)
{
    return x->family == y->family && memcmp(x->ip, y->ip, x->family == 4 ? 4 : 16) == 0;
}

static bconn *find(hk_utp_bridge *b, const hk_addr *a, uint16_t id)
{
    hk_list *head = &b->buckets[bucket_of(b, a, id)], *pos;
    HK_LIST_FOREACH(pos, head) {
        bconn *k = HK_LIST_ENTRY(pos, bconn, link);
        if (k->recv_id == id && k->peer.port == a->port && same_ip(&k->peer, a))
            return k;
    }
    return NULL;
}

static unsigned count_ip(hk_utp_bridge *b, const hk_addr *a)
{
    unsigned n = 0;
    for (unsigned i = 0; i < BUCKETS; i++) {
        hk_list *pos;
        HK_LIST_FOREACH(pos, &b->buckets[i]) {
            if (same_ip(&HK_LIST_ENTRY(pos, bconn, link)->peer, a))
                n++;
        }
    }
    return n;
}

static void fold_stats(hk_utp_bridge *b, const hk_utp_conn *c, hk_utp_bridge_stats *s)
{
    hk_utp_conn_stats cs;
    hk_utp_conn_stats_get(c, &cs);
    s->retransmits += cs.retransmits;
    s->timeouts += cs.timeouts;
    s->bytes_sent += cs.bytes_sent;
    s->bytes_received += cs.bytes_delivered;
    (void)b;
}

static void destroy(bconn *k)
{
    hk_utp_bridge *b = k->b;
    ev_io_stop(b->loop, &k->rio);
    ev_io_stop(b->loop, &k->wio);
    ev_timer_stop(b->loop, &k->timer);
    if (k->fd >= 0)
        close(k->fd);
    fold_stats(b, k->c, &b->st);
    hk_list_remove(&k->link);
    b->count--;
    hk_utp_conn_free(k->c);
    free(k);
}

/* After any call into the connection: free it if it closed, else set the watchers and the timer from its state. */
static void settle(bconn *k)
{
    hk_utp_bridge *b = k->b;
    if (k->broken && !k->dead)
        hk_utp_conn_reset(k->c, hk_clock_now());
    if (k->dead) {
        destroy(k);
        return;
    }
    if (!k->app_eof && hk_utp_conn_writable(k->c) > 0)
        ev_io_start(b->loop, &k->rio);
    else
        ev_io_stop(b->loop, &k->rio);
    if (k->pend_len)
        ev_io_start(b->loop, &k->wio);
    else
        ev_io_stop(b->loop, &k->wio);
    hk_time d = hk_utp_conn_deadline(k->c), now = hk_clock_now();
    ev_timer_stop(b->loop, &k->timer);
    if (d != UINT64_MAX) {
        ev_timer_set(&k->timer, d > now ? (double)(d - now) / 1e9 : 0., 0.);
        ev_timer_start(b->loop, &k->timer);
    }
}

static void c_send(void *ctx, const uint8_t *pkt, size_t len)
{
    bconn *k = ctx;
    (void)hk_udp_port_send(k->b->udp, pkt, len, &k->peer); /* a dropped datagram is a lost one: uTP resends */
}

/* Writes what it can of pend to the socket; after the peer's FIN, shuts the write side once pend is empty. */
static void flush_pend(bconn *k)
{
    while (k->pend_len && k->fd >= 0) {
        ssize_t n = send(k->fd, k->pend, k->pend_len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                k->broken = true; /* the seeder closed its end */
            return;
        }
        memmove(k->pend, k->pend + n, k->pend_len - (size_t)n);
        k->pend_len -= (size_t)n;
    }
    if (k->peer_eof && !k->pend_len && k->fd >= 0)
        (void)shutdown(k->fd, SHUT_WR);
}

static void c_deliver(void *ctx, const uint8_t *data, size_t len)
{
    bconn *k = ctx;
    if (!data) {
        k->peer_eof = true;
    } else {
        memcpy(k->pend + k->pend_len, data, len); /* len <= room: fits */
        k->pend_len += len;
    }
    flush_pend(k);
}

static size_t c_room(void *ctx)
{
    bconn *k = ctx;
    return k->b->o.app_buffer - k->pend_len;
}

static void c_closed(void *ctx, hk_utp_close_reason why)
{
    bconn *k = ctx;
    k->dead = true;
    if (hk_log_enabled(HK_LOG_DEBUG)) {
        char a[64];
        hk_addr_format(&k->peer, a, sizeof a);
        hk_utp_conn_stats cs;
        hk_utp_conn_stats_get(k->c, &cs);
        static const char *const names[] = { "closed", "reset", "timed out" };
        hk_log(HK_LOG_DEBUG, "utp: connection from %s %s (%llu bytes sent, %llu received, %llu retransmits: %llu fast, "
               "%llu timeouts; %llu packets sent, %llu received)", a, names[why], (unsigned long long)cs.bytes_sent,
               (unsigned long long)cs.bytes_delivered, (unsigned long long)cs.retransmits,
               (unsigned long long)cs.fast_retransmits, (unsigned long long)cs.timeouts,
               (unsigned long long)cs.packets_sent, (unsigned long long)cs.packets_received);
    }
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    bconn *k = w->data;
    uint8_t buf[READ_CHUNK];
    size_t room = hk_utp_conn_writable(k->c);
    if (room > sizeof buf)
        room = sizeof buf;
    ssize_t n = room ? recv(k->fd, buf, room, 0) : 0;
    hk_time now = hk_clock_now();
    if (n > 0) {
        hk_utp_conn_write(k->c, buf, (size_t)n, now);
    } else if (n == 0 && room) {
        k->app_eof = true;
        hk_utp_conn_shutdown(k->c, now);
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        hk_utp_conn_reset(k->c, now);
    }
    settle(k);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    bconn *k = w->data;
    flush_pend(k);
    settle(k);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    bconn *k = w->data;
    hk_utp_conn_tick(k->c, hk_clock_now());
    settle(k);
}

static bool may_open(hk_utp_bridge *b, const hk_utp_header *h, const hk_addr *from)
{
    if (b->o.libutp_only && h->extension != 2)
        return false;
    return b->count < b->o.max_conns && count_ip(b, from) < b->o.per_address;
}

static bconn *open_conn(hk_utp_bridge *b, const hk_utp_header *h, const hk_addr *from, int *app_fd)
{
    static const hk_utp_conn_ops ops = { .send = c_send, .deliver = c_deliver, .room = c_room, .closed = c_closed };
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        return NULL;
    if (b->o.fd_cap && (uint64_t)(sv[0] > sv[1] ? sv[0] : sv[1]) >= b->o.fd_cap) { /* keep the reserve */
        close(sv[0]);
        close(sv[1]);
        return NULL;
    }
    bconn *k = calloc(1, sizeof *k + b->o.app_buffer);
    hk_utp_conn *c = k ? hk_utp_conn_new(&b->o.conn, &ops, k) : NULL;
    if (!c) {
        free(k);
        close(sv[0]);
        close(sv[1]);
        return NULL;
    }
    k->b = b;
    k->c = c;
    k->peer = *from;
    k->recv_id = (uint16_t)(h->connection_id + 1);
    k->fd = sv[0];
    k->pend = (uint8_t *)(k + 1);
    ev_io_init(&k->rio, on_read, k->fd, EV_READ);
    ev_io_init(&k->wio, on_write, k->fd, EV_WRITE);
    ev_init(&k->timer, on_timer);
    k->rio.data = k->wio.data = k->timer.data = k;
    hk_list_insert_tail(&b->buckets[bucket_of(b, from, k->recv_id)], &k->link);
    b->count++;
    *app_fd = sv[1];
    return k;
}

static bool accept_syn(hk_utp_bridge *b, const hk_utp_header *h, const hk_addr *from)
{
    int app_fd;
    bconn *k = may_open(b, h, from) ? open_conn(b, h, from, &app_fd) : NULL;
    if (!k) {
        b->st.refused++;
        return false;
    }
    b->st.accepted++;
    if (hk_log_enabled(HK_LOG_DEBUG)) {
        char a[64];
        hk_addr_format(from, a, sizeof a);
        hk_log(HK_LOG_DEBUG, "utp: connection from %s accepted (connection id %u, %s)", a, (unsigned)k->recv_id,
               h->extension == 2 ? "libutp" : "no extension");
    }
    hk_utp_conn_accept(k->c, h, (uint16_t)hk_splitmix64(&b->isn_state), hk_clock_now());
    b->accept(b->arg, app_fd, from); /* owns app_fd now; may close it at once (the seeder's caps): we see EOF */
    settle(k);
    return true;
}

bool hk_utp_bridge_input(hk_utp_bridge *b, const uint8_t *data, size_t len, const hk_addr *from)
{
    hk_utp_header h;
    if (hk_utp_parse(data, len, &h) != HK_UTP_OK)
        return false;
    uint16_t id = h.type == HK_UTP_ST_SYN ? (uint16_t)(h.connection_id + 1) : h.connection_id;
    bconn *k = find(b, from, id);
    if (k) {
        (void)hk_utp_conn_input(k->c, data, len, hk_clock_now());
        settle(k);
        return true;
    }
    if (h.type != HK_UTP_ST_SYN)
        return false;
    return accept_syn(b, &h, from);
}

hk_utp_bridge *hk_utp_bridge_new(struct ev_loop *loop, hk_udp_port *udp, const hk_utp_bridge_opts *o,
                                 hk_utp_accept_fn accept, void *arg, uint64_t seed)
{
    hk_utp_bridge *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->loop = loop;
    b->udp = udp;
    if (o)
        b->o = *o;
    else
        hk_utp_bridge_opts_default(&b->o);
    if (b->o.app_buffer < HK_UTP_MAX_PACKET)
        b->o.app_buffer = HK_UTP_MAX_PACKET;
    b->accept = accept;
    b->arg = arg;
    b->seed = seed;
    b->isn_state = hk_mix64(seed + 1);
    for (unsigned i = 0; i < BUCKETS; i++)
        hk_list_init(&b->buckets[i]);
    return b;
}

void hk_utp_bridge_free(hk_utp_bridge *b)
{
    if (!b)
        return;
    for (unsigned i = 0; i < BUCKETS; i++) {
        hk_list *pos, *tmp;
        HK_LIST_FOREACH_SAFE(pos, tmp, &b->buckets[i]) {
            bconn *k = HK_LIST_ENTRY(pos, bconn, link);
            hk_utp_conn_reset(k->c, hk_clock_now());
            destroy(k);
        }
    }
    free(b);
}

void hk_utp_bridge_stats_get(const hk_utp_bridge *b, hk_utp_bridge_stats *s)
{
    *s = b->st;
    s->active = b->count;
    for (unsigned i = 0; i < BUCKETS; i++) {
        const hk_list *pos;
        HK_LIST_FOREACH(pos, &b->buckets[i])
            fold_stats(NULL, HK_LIST_ENTRY(pos, const bconn, link)->c, s);
    }
}
