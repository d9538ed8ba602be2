/* metrics: the snapshot of a running hekate and the libmicrohttpd server of /metrics on the libev loop (see
 * metrics.h). */
#include "metrics.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <ev.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics_render.h"
#include "served.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct hk_metrics {
    struct ev_loop *loop;
    hk_real *real;
    uint32_t top;
    struct MHD_Daemon *d;
    ev_io io;                    /* MHD's epoll descriptor */
    ev_timer timer;              /* MHD_get_timeout */
    double start_time;           /* CLOCK_REALTIME at start */
    double start_mono;           /* CLOCK_MONOTONIC at start */
    uint16_t port;
    char url[INET6_ADDRSTRLEN + 32];  /* http://ADDR:PORT/metrics, the port bound */
};

static double clock_seconds(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the address ---- */

static int parse_port(const char *s, uint16_t *port)
{
    if (!*s || strlen(s) > 5)
        return -1;
    unsigned long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* Splits s into host (copied into host[cap], "" if none) and port text; -1 if malformed. */
static int split_addr(const char *s, char *host, size_t cap, const char **port)
{
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= cap)
            return -1;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        *port = close + 2;
        return 0;
    }
    colon = strrchr(s, ':');
    if (!colon) {
        host[0] = '\0';
        *port = s;
        return 0;
    }
    if ((size_t)(colon - s) >= cap || memchr(s, ':', (size_t)(colon - s)))
        return -1; /* an IPv6 address must be in brackets */
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = colon + 1;
    return 0;
}

int hk_metrics_parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *outlen, char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *ptext;
    uint16_t port;
    memset(out, 0, sizeof *out);
    if (split_addr(s, host, sizeof host, &ptext) != 0 || parse_port(ptext, &port) != 0) {
        snprintf(err, errlen, "--metrics: '%s' is not PORT, ADDR:PORT or [IPV6]:PORT (numeric, port 0..65535)", s);
        return -1;
    }
    bool v6 = s[0] == '[';
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            goto bad_host;
        *outlen = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)out;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        if (inet_pton(AF_INET, host[0] ? host : "127.0.0.1", &a->sin_addr) != 1)
            goto bad_host;
        *outlen = sizeof *a;
    }
    return 0;
bad_host:
    snprintf(err, errlen, "--metrics: '%s' is not a numeric IPv%d address (in '%s')", host, v6 ? 6 : 4, s);
    return -1;
}

/* ---- the snapshot ---- */

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* One pass over the seeder's torrents (sequential, no lookup): states and the top-N. */
static void torrents_pass(hk_real *r, hk_metrics_snapshot *s, hk_topn *top)
{
    const hk_served *t = hk_real_served(r);
    size_t records = hk_served_count(t), with = hk_served_with_storage(t);
    s->torrent_files_rejected = (uint32_t)(records - with);
    uint32_t cursor = 0;
    uint8_t ih[20];
    hk_torrent_stats ts;
    while (hk_seeder_torrent_next(hk_real_seeder(r), &cursor, ih, &ts)) {
        if (ts.failed) {
            s->torrents_failed++;
        } else {
            s->torrents_served++;
            s->torrents_damaged += ts.pieces_bad > 0;
            s->torrents_verifying += ts.verifying > 0 || ts.in_pass;
        }
        hk_topn_offer(top, ih, ts.uploaded, ts.peers);
    }
}

char *hk_metrics_scrape(hk_real *r, uint32_t ntop, double start_time, double uptime, size_t *len)
{
    hk_metrics_snapshot s;
    memset(&s, 0, sizeof s);
    hk_seeder_stats(hk_real_seeder(r), &s.core);
    hk_conn_hub_stats(hk_real_hub(r), &s.conn);
    const hk_listener *l = hk_real_listener(r);
    if ((s.have_listener = l != NULL))
        hk_listener_stats_get(l, &s.listener);
    s.have_utp = hk_real_utp_stats(r, &s.utp) && hk_real_utp_bridge_stats(r, &s.utp_bridge);
    hk_dht *dht = hk_real_dht(r);
    if ((s.have_dht = dht != NULL))
        hk_dht_stats_get(dht, &s.dht);
    hk_store_stats_get(hk_real_store(r), &s.store);
    hk_announcer *a = hk_real_announcer(r);
    if ((s.have_announcer = a != NULL))
        hk_announcer_stats_get(a, &s.announcer);
    s.disk_latency = hk_real_disk_latency(r);
    s.open_fds = count_fds();
    s.start_time_seconds = start_time;
    s.uptime_seconds = uptime;
    hk_topn top;
    if (hk_topn_init(&top, ntop) != 0)
        return NULL;
    torrents_pass(r, &s, &top);
    hk_topn_sorted(&top);
    s.top = top.e;
    s.ntop = top.n;
    hk_mbuf b;
    hk_mbuf_init(&b);
    hk_metrics_render(&s, &b);
    hk_topn_free(&top);
    if (b.failed) {
        hk_mbuf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.data ? b.data : calloc(1, 1);
}

/* ---- HTTP ---- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *text, const char *allow)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls; /* answered on the first call, body unread: MHD closes the connection after a request body */
    hk_metrics *m = cls;
    bool head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!head && strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n", "GET, HEAD");
    if (strcmp(url, "/metrics") != 0)
        return reply(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n", NULL);
    size_t len = 0;
    double now = clock_seconds(CLOCK_MONOTONIC);
    char *body = hk_metrics_scrape(m->real, m->top, m->start_time, now - m->start_mono, &len);
    if (!body)
        return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n", NULL);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Runs MHD and re-arms the timer from MHD_get_timeout (0 ms: the next loop iteration). */
static void drive(hk_metrics *m)
{
    MHD_run(m->d);
    MHD_UNSIGNED_LONG_LONG ms;
    ev_timer_stop(m->loop, &m->timer);
    if (MHD_get_timeout(m->d, &ms) == MHD_YES) {
        ev_timer_set(&m->timer, (double)ms / 1000.0, 0.);
        ev_timer_start(m->loop, &m->timer);
    }
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    drive(w->data);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    drive(w->data);
}

/* MHD's messages: warnings while the daemon starts (why it cannot bind), then debug lines (a client's doing must not
 * flood the log). */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    const hk_metrics *m = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    hk_log(m->d ? HK_LOG_DEBUG : HK_LOG_WARN, "metrics: %s", line);
}

/* The MHD daemon on sa (its own epoll descriptor, no thread); NULL if it cannot listen there. */
static struct MHD_Daemon *start_daemon(hk_metrics *m, const struct sockaddr_storage *sa)
{
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (sa->ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    uint16_t port = ntohs(sa->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                                    : ((const struct sockaddr_in *)sa)->sin_port);
    return MHD_start_daemon(flags, port, NULL, NULL, on_request, m, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, (void *)m,
                            MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)sa, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HK_METRICS_REQUEST_MEMORY,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)HK_METRICS_MAX_CONNECTIONS,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, 4u, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)HK_METRICS_TIMEOUT_S, MHD_OPTION_END);
}

static void make_url(hk_metrics *m, const struct sockaddr_storage *sa)
{
    char host[INET6_ADDRSTRLEN] = "?";
    bool v6 = sa->ss_family == AF_INET6;
    const void *a = v6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                       : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    inet_ntop(sa->ss_family, a, host, sizeof host);
    snprintf(m->url, sizeof m->url, "http://%s%s%s:%u/metrics", v6 ? "[" : "", host, v6 ? "]" : "",
             (unsigned)m->port);
}

hk_metrics *hk_metrics_start(struct ev_loop *loop, hk_real *r, const char *addr, uint32_t top, char *err,
                             size_t errlen)
{
    struct sockaddr_storage sa;
    socklen_t salen;
    if (hk_metrics_parse_addr(addr, &sa, &salen, err, errlen) != 0)
        return NULL;
    hk_metrics *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "--metrics: out of memory");
        return NULL;
    }
    m->loop = loop;
    m->real = r;
    m->top = top > HK_METRICS_TOP_MAX ? HK_METRICS_TOP_MAX : top;
    m->start_time = clock_seconds(CLOCK_REALTIME);
    m->start_mono = clock_seconds(CLOCK_MONOTONIC);
    m->d = start_daemon(m, &sa);
    const union MHD_DaemonInfo *efd = m->d ? MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    const union MHD_DaemonInfo *port = m->d ? MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!efd || !port) {
        snprintf(err, errlen, "--metrics=%s: cannot listen there (address in use or not local?)", addr);
        if (m->d)
            MHD_stop_daemon(m->d);
        free(m);
        return NULL;
    }
    m->port = port->port;
    make_url(m, &sa);
    ev_io_init(&m->io, io_cb, efd->epoll_fd, EV_READ);
    m->io.data = m;
    ev_io_start(loop, &m->io);
    ev_init(&m->timer, timer_cb);
    m->timer.data = m;
    drive(m);
    return m;
}

uint16_t hk_metrics_port(const hk_metrics *m)
{
    return m->port;
}

const char *hk_metrics_url(const hk_metrics *m)
{
    return m->url;
}

void hk_metrics_stop(hk_metrics *m)
{
    if (!m)
        return;
    ev_io_stop(m->loop, &m->io);
    ev_timer_stop(m->loop, &m->timer);
    MHD_stop_daemon(m->d);
    free(m);
}
