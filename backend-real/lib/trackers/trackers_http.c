/* trackers_http: owns the libcurl multi handle, its easy handles, and the libev watchers that drive them (see
 * trackers_http.h). */
#include "trackers_http.h"

#include <assert.h>
#include <curl/curl.h>
#include <ev.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "announcer.h"
#include "list.h"
#include "log.h"

typedef struct sock {
    ev_io io;
    hk_http *h;
    curl_socket_t fd;
} sock;

typedef struct req {
    hk_list link;                 /* in the requests under way (newest first) */
    hk_http *h;
    CURL *easy;
    uint64_t token;
    uint8_t *body;
    size_t len, cap;
    bool too_large;
    char error[CURL_ERROR_SIZE];
} req;

struct hk_http {
    struct ev_loop *loop;
    hk_http_opts o;
    hk_http_done_fn cb;
    void *arg;
    CURLM *multi;
    ev_timer timer;
    int running;
    hk_list reqs;
    hk_http_stats st;
};

void hk_http_opts_default(hk_http_opts *o)
{
    memset(o, 0, sizeof *o);
    o->connect_timeout_ms = 10000;
    o->total_timeout_ms = 30000;
    o->max_host_connections = 8;
    o->max_total_connections = 256;
    o->max_reply = 256 * 1024;
    o->user_agent = "hekate";
}

static void req_free(hk_http *h, req *r)
{
    hk_list_remove(&r->link);
    curl_multi_remove_handle(h->multi, r->easy);
    curl_easy_cleanup(r->easy);
    free(r->body);
    free(r);
    h->st.in_flight--;
}

static void check_done(hk_http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        assert(r); /* every easy handle carries its request */
        CURLcode rc = m->data.result;
        long conns = 0;
        if (curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK)
            h->st.connects += (uint64_t)conns;
        int status;
        const uint8_t *body = r->body;
        size_t len = r->len;
        char text[CURL_ERROR_SIZE + 64];
        if (rc == CURLE_OK) {
            long code = 0;
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
            status = (int)code;
            h->st.completed++;
        } else {
            h->st.failed++;
            if (r->too_large) {
                status = HK_HTTP_ERR_TOO_LARGE;
                h->st.too_large++;
                snprintf(text, sizeof text, "reply larger than %zu bytes", h->o.max_reply);
            } else {
                status = rc == CURLE_OPERATION_TIMEDOUT ? HK_HTTP_ERR_TIMEOUT : HK_HTTP_ERR_TRANSPORT;
                if (rc == CURLE_OPERATION_TIMEDOUT)
                    h->st.timeouts++;
                snprintf(text, sizeof text, "%s%s%s", curl_easy_strerror(rc), r->error[0] ? ": " : "", r->error);
            }
            body = (const uint8_t *)text;
            len = strlen(text);
        }
        uint64_t token = r->token;
        /* Detach the request first: the callback may start new requests (not re-entering libcurl's callbacks). */
        hk_list_remove(&r->link);
        curl_multi_remove_handle(h->multi, r->easy);
        h->cb(h->arg, token, status, body, len);
        curl_easy_cleanup(r->easy);
        free(r->body);
        free(r);
        h->st.in_flight--;
    }
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    sock *s = w->data;
    hk_http *h = s->h;
    int action = (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(h->multi, s->fd, action, &h->running);
    check_done(h);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    hk_http *h = w->data;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &h->running);
    check_done(h);
}

static int socket_fn(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    hk_http *h = userp;
    sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            ev_io_stop(h->loop, &s->io);
            curl_multi_assign(h->multi, fd, NULL);
            free(s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        s->h = h;
        s->fd = fd;
        curl_multi_assign(h->multi, fd, s);
    } else {
        ev_io_stop(h->loop, &s->io);
    }
    int ev = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    ev_io_init(&s->io, io_cb, fd, ev);
    s->io.data = s;
    ev_io_start(h->loop, &s->io);
    return 0;
}

static int timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    hk_http *h = userp;
    ev_timer_stop(h->loop, &h->timer);
    if (timeout_ms >= 0) { /* 0: as soon as the loop runs again (never from inside this callback) */
        ev_timer_set(&h->timer, (double)timeout_ms / 1000.0, 0.);
        ev_timer_start(h->loop, &h->timer);
    }
    return 0;
}

static size_t write_fn(char *data, size_t size, size_t n, void *userp)
{
    req *r = userp;
    size_t bytes = size * n;
    if (bytes > r->h->o.max_reply - r->len) {
        r->too_large = true;
        return 0; /* libcurl aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (r->len + bytes > r->cap) {
        size_t ncap = r->cap ? r->cap : 1024;
        while (ncap < r->len + bytes)
            ncap *= 2;
        if (ncap > r->h->o.max_reply)
            ncap = r->h->o.max_reply;
        uint8_t *nb = realloc(r->body, ncap);
        if (!nb)
            return 0;
        r->body = nb;
        r->cap = ncap;
    }
    memcpy(r->body + r->len, data, bytes);
    r->len += bytes;
    return bytes;
}

int hk_http_get(hk_http *h, const char *url, uint64_t token)
{
    req *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->h = h;
    r->token = token;
    r->easy = curl_easy_init();
    if (!r->easy) {
        free(r);
        return -1;
    }
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_fn);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->o.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->o.total_timeout_ms);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_USERAGENT, h->o.user_agent ? h->o.user_agent : "hekate");
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_IPRESOLVE,
                     h->o.family == 4 ? CURL_IPRESOLVE_V4 : h->o.family == 6 ? CURL_IPRESOLVE_V6 : CURL_IPRESOLVE_WHATEVER);
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        free(r);
        return -1;
    }
    hk_list_insert_head(&h->reqs, &r->link);
    h->st.started++;
    h->st.in_flight++;
    return 0;
}

hk_http *hk_http_new(struct ev_loop *loop, const hk_http_opts *o, hk_http_done_fn cb, void *arg, char *err,
                     size_t errlen)
{
    static bool global_done;
    if (!global_done) { /* once per process, on the loop thread, before any other thread uses libcurl */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(err, errlen, "cannot initialise libcurl");
            return NULL;
        }
        global_done = true;
    }
    hk_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->loop = loop;
    h->o = *o;
    if (!h->o.max_reply)
        h->o.max_reply = 256 * 1024;
    h->cb = cb;
    h->arg = arg;
    h->multi = curl_multi_init();
    if (!h->multi) {
        free(h);
        snprintf(err, errlen, "cannot create a libcurl multi handle");
        return NULL;
    }
    hk_list_init(&h->reqs);
    ev_timer_init(&h->timer, timer_cb, 0., 0.);
    h->timer.data = h;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_fn);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, o->max_host_connections);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, o->max_total_connections);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, o->max_total_connections);
    return h;
}

void hk_http_free(hk_http *h)
{
    if (!h)
        return;
    for (hk_list *n; (n = hk_list_first(&h->reqs)) != NULL;)
        req_free(h, HK_LIST_ENTRY(n, req, link));
    ev_timer_stop(h->loop, &h->timer);
    curl_multi_cleanup(h->multi); /* closes cached connections; their sockets get CURL_POLL_REMOVE */
    free(h);
}

void hk_http_stats_get(const hk_http *h, hk_http_stats *out)
{
    *out = h->st;
}
