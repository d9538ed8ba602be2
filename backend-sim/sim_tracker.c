/* sim_tracker: owns the simulated tracker (HTTP-like and BEP 15 UDP), its network model and the discrete-event
 * driver of the announcer (see sim_tracker.h). No SimGrid: compiled into hekate-sim, and usable alone. */
#include "sim_tracker.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "announcer.h"
#include "hash.h"
#include "prng.h"
#include "tracker_udp.h"

/* ---- randomness: one prng.h stream per use, seeded the tracker's own way (its runs' hashes depend on it) ---- */

static void rng_seed(prng *r, uint64_t seed, uint64_t stream)
{
    prng_seed_state(r, seed ^ (stream * 0xD1B54A32D192ED03ull));
}

/* ---- events ---- */

enum ev_type { EV_HTTP_ARRIVE = 1, EV_HTTP_DONE, EV_UDP_ARRIVE, EV_UDP_DELIVER, EV_RESOLVED };

typedef struct ev {
    uint64_t t, seq;
    uint64_t token;        /* HTTP token / resolve token / UDP connection id */
    uint64_t sent;         /* HTTP: when the request left (for its timeout) */
    uint32_t torrent;
    uint32_t tid;
    int32_t status;        /* HTTP_DONE: status; UDP: action */
    uint8_t type;
    uint8_t event;         /* announce event */
    uint8_t failed;        /* the tracker answers with a failure reason */
} ev;

typedef struct world {
    const sim_tracker_cfg *cfg;
    hk_announcer *a;
    prng ann_rng, net_rng;
    hk_time now, wake;
    ev *heap;
    size_t nheap, capheap;
    uint64_t seq;
    bool oom;
    sim_tracker_result *res;
    uint8_t *seen;
    uint64_t conn_id;      /* the tracker's current connection id (UDP) */
    hk_time conn_until;
    uint64_t hash;
    hk_time first_window;  /* the first interval, plus the network's delay for an announce sent at its very end */
} world;

static bool ev_before(const ev *x, const ev *y)
{
    return x->t < y->t || (x->t == y->t && x->seq < y->seq);
}

static void push(world *w, ev e)
{
    if (w->nheap == w->capheap) {
        size_t ncap = w->capheap ? w->capheap * 2 : 1024;
        ev *n = realloc(w->heap, ncap * sizeof *n);
        if (!n) {
            w->oom = true;
            return;
        }
        w->heap = n;
        w->capheap = ncap;
    }
    e.seq = w->seq++;
    size_t i = w->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_before(&e, &w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = e;
}

static ev pop(world *w)
{
    ev top = w->heap[0];
    ev last = w->heap[--w->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, b = i;
        const ev *bv = &last;
        if (l < w->nheap && ev_before(&w->heap[l], bv)) {
            b = l;
            bv = &w->heap[l];
        }
        if (l + 1 < w->nheap && ev_before(&w->heap[l + 1], bv))
            b = l + 1;
        if (b == i)
            break;
        w->heap[i] = w->heap[b];
        i = b;
    }
    if (w->nheap)
        w->heap[i] = last;
    return top;
}

static hk_time secs(double s)
{
    return s <= 0 ? 0 : (hk_time)(s * 1e9 + 0.5);
}

static hk_time delay(world *w)
{
    return secs(w->cfg->latency + w->cfg->jitter * prng_unit(&w->net_rng));
}

static bool lost(world *w)
{
    return w->cfg->loss > 0 && prng_unit(&w->net_rng) < w->cfg->loss;
}

static bool down(const world *w, hk_time t)
{
    hk_time s = secs(w->cfg->outage_start);
    return w->cfg->outage_length > 0 && t >= s && t < s + secs(w->cfg->outage_length);
}

/* ---- the announcer's runtime ---- */

static hk_time rt_now(void *ctx)
{
    return ((world *)ctx)->now;
}

static void rt_wake_at(void *ctx, hk_time t)
{
    ((world *)ctx)->wake = t;
}

static void rt_random(void *ctx, void *buf, size_t n)
{
    world *w = ctx;
    prng_fill(&w->ann_rng, buf, n);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

/* The torrent number is the first 4 bytes of its info-hash (big-endian). */
static uint32_t url_torrent(const char *url)
{
    const char *p = strstr(url, "info_hash=");
    if (!p)
        return UINT32_MAX;
    p += 10;
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        uint8_t b;
        if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            b = (uint8_t)(hexval(p[1]) << 4 | hexval(p[2]));
            p += 3;
        } else {
            b = (uint8_t)*p++;
        }
        v = v << 8 | b;
    }
    return v;
}

static uint8_t url_event(const char *url)
{
    const char *p = strstr(url, "&event=");
    if (!p)
        return HK_EVENT_NONE;
    p += 7;
    return strncmp(p, "started", 7) == 0 ? HK_EVENT_STARTED : strncmp(p, "stopped", 7) == 0 ? HK_EVENT_STOPPED
                                                                                            : HK_EVENT_COMPLETED;
}

static void rt_http_get(void *ctx, const char *url, uint64_t token)
{
    world *w = ctx;
    ev e = { .token = token, .sent = w->now, .torrent = url_torrent(url), .event = url_event(url) };
    hk_time arrive = w->now + delay(w);
    if (down(w, arrive)) {
        e.type = EV_HTTP_DONE;
        if (w->cfg->outage_refuse) {
            e.t = arrive + delay(w);
            e.status = HK_HTTP_ERR_TRANSPORT;
        } else {
            e.t = w->now + secs(w->cfg->http_timeout);
            e.status = HK_HTTP_ERR_TIMEOUT;
        }
    } else if (lost(w)) {
        e.type = EV_HTTP_DONE;
        e.t = w->now + secs(w->cfg->http_timeout);
        e.status = HK_HTTP_ERR_TIMEOUT;
    } else {
        e.type = EV_HTTP_ARRIVE;
        e.t = arrive;
    }
    push(w, e);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void rt_udp_send(void *ctx, const hk_addr *to, const uint8_t *b, size_t len)
{
    world *w = ctx;
    (void)to;
    if (len < 16)
        return;
    hk_time arrive = w->now + delay(w);
    if (down(w, arrive) || lost(w))
        return; /* silence: the announcer retransmits */
    ev e = { .type = EV_UDP_ARRIVE, .t = arrive, .tid = rd32(b + 12) };
    if (rd32(b + 8) == HK_UDP_ACTION_CONNECT) {
        e.status = HK_UDP_ACTION_CONNECT;
    } else if (len >= HK_UDP_ANNOUNCE_LEN) {
        e.status = HK_UDP_ACTION_ANNOUNCE;
        e.token = (uint64_t)rd32(b) << 32 | rd32(b + 4);
        e.torrent = rd32(b + 16);
        e.event = (uint8_t)rd32(b + 80);
    } else {
        return;
    }
    push(w, e);
}

static void rt_resolve(void *ctx, const char *host, uint64_t token)
{
    world *w = ctx;
    (void)host;
    push(w, (ev){ .type = EV_RESOLVED, .t = w->now + secs(0.001), .token = token });
}

/* ---- the tracker ---- */

static void count(world *w, hk_time t, uint32_t torrent, uint8_t event)
{
    sim_tracker_result *r = w->res;
    uint64_t s = t / HK_NS_PER_SEC;
    if (s < r->seconds)
        r->per_second[s]++;
    r->received++;
    if (event == HK_EVENT_STOPPED)
        r->stopped_received++;
    else if (torrent < w->cfg->torrents && t < w->first_window && !w->seen[torrent]) {
        w->seen[torrent] = 1;
        r->announced_in_first_interval++;
    }
    uint64_t x[3] = { s, torrent, event };
    const uint8_t *p = (const uint8_t *)x;
    for (size_t i = 0; i < sizeof x; i++)
        w->hash = (w->hash ^ p[i]) * HK_FNV1A64_PRIME;
}

static void tracker_http(world *w, ev e)
{
    count(w, e.t, e.torrent, e.event);
    ev d = { .type = EV_HTTP_DONE, .token = e.token, .status = 200 };
    d.failed = w->cfg->failure_rate > 0 && prng_unit(&w->net_rng) < w->cfg->failure_rate;
    if (lost(w)) {
        d.t = e.sent + secs(w->cfg->http_timeout);
        d.status = HK_HTTP_ERR_TIMEOUT;
    } else {
        d.t = e.t + delay(w);
    }
    push(w, d);
}

static void tracker_udp(world *w, ev e)
{
    ev d = { .type = EV_UDP_DELIVER, .tid = e.tid };
    if (e.status == HK_UDP_ACTION_CONNECT) {
        if (e.t >= w->conn_until) {
            w->conn_id = prng_next(&w->net_rng);
            w->conn_until = e.t + HK_SECONDS(120);
        }
        d.status = HK_UDP_ACTION_CONNECT;
        d.token = w->conn_id;
    } else {
        if (e.token != w->conn_id || e.t >= w->conn_until) {
            d.status = HK_UDP_ACTION_ERROR; /* "connection id mismatch" */
        } else {
            count(w, e.t, e.torrent, e.event);
            d.failed = w->cfg->failure_rate > 0 && prng_unit(&w->net_rng) < w->cfg->failure_rate;
            d.status = d.failed ? HK_UDP_ACTION_ERROR : HK_UDP_ACTION_ANNOUNCE;
        }
    }
    if (lost(w))
        return;
    d.t = e.t + delay(w);
    push(w, d);
}

static void deliver_udp(world *w, const ev *e)
{
    uint8_t b[20];
    memset(b, 0, sizeof b);
    b[3] = (uint8_t)e->status;
    b[4] = (uint8_t)(e->tid >> 24);
    b[5] = (uint8_t)(e->tid >> 16);
    b[6] = (uint8_t)(e->tid >> 8);
    b[7] = (uint8_t)e->tid;
    size_t len;
    if (e->status == HK_UDP_ACTION_CONNECT) {
        for (int i = 0; i < 8; i++)
            b[8 + i] = (uint8_t)(e->token >> (56 - 8 * i));
        len = 16;
    } else if (e->status == HK_UDP_ACTION_ANNOUNCE) {
        uint32_t iv = (uint32_t)w->cfg->interval;
        b[8] = (uint8_t)(iv >> 24);
        b[9] = (uint8_t)(iv >> 16);
        b[10] = (uint8_t)(iv >> 8);
        b[11] = (uint8_t)iv;
        len = 20;
    } else {
        memcpy(b + 8, "refused", 7);
        len = 15;
    }
    hk_addr from = { .family = 4, .port = 6969 };
    from.ip[0] = 10;
    from.ip[3] = 1;
    hk_announcer_on_datagram(w->a, &from, b, len);
}

static void deliver_http(world *w, const ev *e)
{
    char body[128];
    int n;
    if (e->status != 200)
        n = snprintf(body, sizeof body, "simulated %s", e->status == HK_HTTP_ERR_TIMEOUT ? "timeout" : "refusal");
    else if (e->failed)
        n = snprintf(body, sizeof body, "d14:failure reason9:simulatede");
    else if (w->cfg->min_interval > 0)
        n = snprintf(body, sizeof body, "d8:intervali%de12:min intervali%dee", (int)w->cfg->interval,
                     (int)w->cfg->min_interval);
    else
        n = snprintf(body, sizeof body, "d8:intervali%dee", (int)w->cfg->interval);
    hk_announcer_on_http_done(w->a, e->token, e->status, (const uint8_t *)body, (size_t)n);
}

/* ---- the run ---- */

void sim_tracker_cfg_default(sim_tracker_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->seed = 1;
    c->torrents = 1000;
    c->duration = 3600;
    c->interval = 1800;
    c->latency = 0.02;
    c->jitter = 0.01;
    c->http_timeout = 30;
}

static bool cfg_valid(const sim_tracker_cfg *cfg)
{
    return cfg->torrents > 0 && cfg->duration > 0 && cfg->duration <= 30 * 86400 && cfg->interval >= 1 &&
           cfg->interval <= 86400 && cfg->loss >= 0 && cfg->loss < 1 && cfg->failure_rate >= 0 &&
           cfg->failure_rate <= 1 && cfg->latency >= 0 && cfg->jitter >= 0 && cfg->http_timeout > 0;
}

/* The announcer's settings for the scenario; NULL, or why they are refused. */
static const char *announcer_config(const sim_tracker_cfg *cfg, hk_announcer_config *ac)
{
    hk_announcer_config_defaults(ac);
    memcpy(ac->peer_id, "-HK0100-simulation00", 20);
    ac->port = 6881;
    if (cfg->spread > 0)
        ac->default_interval = secs(cfg->spread);
    if (cfg->host_inflight)
        ac->host_inflight = cfg->host_inflight;
    if (cfg->retry_base > 0)
        ac->retry_base = secs(cfg->retry_base);
    if (cfg->retry_max > 0)
        ac->retry_max = secs(cfg->retry_max);
    if (ac->retry_max < ac->retry_base)
        ac->retry_max = ac->retry_base;
    return hk_announcer_config_check(ac);
}

/* Torrent i's info-hash starts with i (big-endian), which the tracker reads back; the rest is drawn. */
static int add_torrents(world *w)
{
    const char *url = w->cfg->udp ? "udp://tracker.sim:6969/announce" : "http://tracker.sim/announce";
    uint32_t one = 1;
    prng ihr;
    rng_seed(&ihr, w->cfg->seed, 3);
    for (uint32_t i = 0; i < w->cfg->torrents; i++) {
        uint8_t ih[20];
        ih[0] = (uint8_t)(i >> 24);
        ih[1] = (uint8_t)(i >> 16);
        ih[2] = (uint8_t)(i >> 8);
        ih[3] = (uint8_t)i;
        for (int k = 4; k < 20; k += 8) {
            uint64_t v = prng_next(&ihr);
            memcpy(ih + k, &v, (size_t)(20 - k < 8 ? 20 - k : 8));
        }
        if (hk_announcer_add_torrent(w->a, ih, &url, &one, 1) != HK_ANN_OK)
            return -1;
    }
    return 0;
}

static void dispatch(world *w, ev e)
{
    switch (e.type) {
    case EV_HTTP_ARRIVE: tracker_http(w, e); break;
    case EV_HTTP_DONE: deliver_http(w, &e); break;
    case EV_UDP_ARRIVE: tracker_udp(w, e); break;
    case EV_UDP_DELIVER: deliver_udp(w, &e); break;
    case EV_RESOLVED: {
        hk_addr ad = { .family = 4 };
        ad.ip[0] = 10;
        ad.ip[3] = 1;
        hk_announcer_on_resolved(w->a, e.token, &ad, 1);
        break;
    }
    default: assert(!"unknown event type"); break;
    }
}

/* Runs events and wake-ups in time order until the end; the announcer's heap is measured after the first interval.
 * Returns 0, or -1 out of memory. */
static int event_loop(world *w)
{
    sim_tracker_result *out = w->res;
    hk_time end = secs(w->cfg->duration), first_interval = secs(w->cfg->interval);
    bool measured = false;
    for (;;) {
        if (w->oom)
            return -1;
        hk_time t_ev = w->nheap ? w->heap[0].t : HK_TIME_NEVER;
        hk_time next = t_ev < w->wake ? t_ev : w->wake;
        if (!measured && next >= first_interval) {
            hk_announcer_stats st;
            hk_announcer_stats_get(w->a, &st);
            out->memory_bytes = st.memory_bytes;
            measured = true;
        }
        if (next == HK_TIME_NEVER || next >= end)
            break;
        if (next > w->now)
            w->now = next;
        out->events++;
        if (w->wake <= t_ev) {
            w->wake = HK_TIME_NEVER;
            hk_announcer_on_wake(w->a);
            continue;
        }
        dispatch(w, pop(w));
    }
    hk_announcer_stats st;
    hk_announcer_stats_get(w->a, &st);
    if (!measured)
        out->memory_bytes = st.memory_bytes;
    out->memory_peak = st.memory_peak;
    out->ok = st.ok;
    out->failed = st.failed;
    out->skipped = st.skipped;
    out->refused = st.refused;
    out->hash = w->hash;
    return 0;
}

int sim_tracker_run(const sim_tracker_cfg *cfg, sim_tracker_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!cfg_valid(cfg)) {
        snprintf(err, errlen, "invalid tracker scenario (torrents >= 1, 0 < duration <= 30 days, 1 <= interval <= "
                              "86400, 0 <= loss < 1, 0 <= failure_rate <= 1, latencies >= 0, http_timeout > 0)");
        return -1;
    }
    world w;
    memset(&w, 0, sizeof w);
    w.cfg = cfg;
    w.res = out;
    w.wake = HK_TIME_NEVER;
    w.hash = HK_FNV1A64_INIT;
    w.first_window = secs(cfg->interval + cfg->latency + cfg->jitter);
    rng_seed(&w.ann_rng, cfg->seed, 1);
    rng_seed(&w.net_rng, cfg->seed, 2);
    out->seconds = (uint32_t)cfg->duration + 1;
    out->per_second = calloc(out->seconds, sizeof *out->per_second);
    w.seen = calloc(cfg->torrents, 1);
    hk_announcer_config ac;
    const char *bad = announcer_config(cfg, &ac);
    int rc = -1;
    if (!out->per_second || !w.seen) {
        snprintf(err, errlen, "out of memory");
    } else if (bad) {
        snprintf(err, errlen, "announcer settings: %s", bad);
    } else {
        hk_announcer_runtime rt = {
            .base = { .ctx = &w, .now = rt_now, .wake_at = rt_wake_at, .random_bytes = rt_random },
            .http_get = rt_http_get, .udp_send = rt_udp_send, .resolve = rt_resolve };
        w.a = hk_announcer_new(&ac, &rt, NULL, NULL);
        if (w.a)
            hk_announcer_set_log_level(w.a, HK_LOG_ERROR);
        rc = w.a && add_torrents(&w) == 0 && event_loop(&w) == 0 ? 0 : -1;
        if (rc < 0)
            snprintf(err, errlen, "out of memory");
    }
    hk_announcer_free(w.a);
    free(w.heap);
    free(w.seen);
    if (rc < 0) {
        free(out->per_second);
        out->per_second = NULL;
    }
    return rc;
}

void sim_tracker_result_free(sim_tracker_result *r)
{
    free(r->per_second);
    r->per_second = NULL;
}

double sim_tracker_peak_ratio(const sim_tracker_result *r, uint32_t from, uint32_t to, uint32_t *max, double *mean)
{
    if (to > r->seconds)
        to = r->seconds;
    uint64_t sum = 0;
    uint32_t m = 0;
    for (uint32_t s = from; s < to; s++) {
        sum += r->per_second[s];
        m = r->per_second[s] > m ? r->per_second[s] : m;
    }
    double avg = to > from ? (double)sum / (to - from) : 0;
    if (max)
        *max = m;
    if (mean)
        *mean = avg;
    return avg > 0 ? m / avg : 0;
}
