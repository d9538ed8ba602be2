/* trackers_http: HTTP and HTTPS tracker requests through libcurl's multi interface, driven by the libev loop.
 *
 * Contract
 * --------
 * hk_http_get(url, token) starts a GET and returns at once; the completion callback runs later on the loop thread,
 * exactly once per accepted request (never from inside hk_http_get), with the HTTP status and the body, or a negative
 * hk_http_error (core/announcer.h) and an error text. libcurl's sockets and timeouts are watched by libev
 * (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION): nothing blocks the loop, name resolution included (libcurl's
 * threaded resolver, with its DNS cache).
 * Per request: connect timeout and total timeout (both enforced by libcurl), at most max_reply bytes of body (more:
 * HK_HTTP_ERR_TOO_LARGE), http and https only (redirects too, at most 3), compressed replies accepted, no signals.
 * Connections are kept alive and reused across requests to the same host (the multi handle's connection cache);
 * at most max_host_connections per host and max_total_connections overall, more requests wait inside libcurl.
 * hk_http_free aborts what is under way and delivers nothing more.
 */
#ifndef HEKATE_TRACKERS_HTTP_H
#define HEKATE_TRACKERS_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
typedef struct hk_http hk_http;

typedef struct hk_http_opts {
    long connect_timeout_ms;     /* default 10000 */
    long total_timeout_ms;       /* default 30000 */
    long max_host_connections;   /* default 8 */
    long max_total_connections;  /* default 256 */
    size_t max_reply;            /* default 256 KiB */
    int family;                  /* 0 any, 4 or 6 */
    const char *user_agent;      /* default "hekate" */
} hk_http_opts;

void hk_http_opts_default(hk_http_opts *o);

typedef void (*hk_http_done_fn)(void *arg, uint64_t token, int status, const uint8_t *body, size_t len);

/* NULL with err filled if libcurl cannot be initialised. */
hk_http *hk_http_new(struct ev_loop *loop, const hk_http_opts *o, hk_http_done_fn cb, void *arg, char *err,
                     size_t errlen);
/* 0: accepted (one completion will follow); -1: refused at once (out of memory, libcurl refused the URL). */
int hk_http_get(hk_http *h, const char *url, uint64_t token);
void hk_http_free(hk_http *h);

typedef struct hk_http_stats {
    uint64_t started, completed, failed, too_large, timeouts;
    uint64_t connects;           /* new connections made (the rest reused one) */
    uint32_t in_flight;
} hk_http_stats;
void hk_http_stats_get(const hk_http *h, hk_http_stats *out);

#endif
