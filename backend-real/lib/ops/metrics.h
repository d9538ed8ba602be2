/* metrics: the /metrics endpoint (--metrics=ADDR:PORT), Prometheus text format, served on the daemon's libev loop.
 *
 * Contract
 * --------
 * HTTP is libmicrohttpd's, in its external-polling epoll mode (no thread of its own): one ev_io watches MHD's epoll
 * descriptor and one ev_timer is re-armed after every MHD_run with MHD_get_timeout, so every request is parsed and
 * answered on the loop thread, by non-blocking sockets, and the snapshot is taken there directly: no lock, no copy
 * between threads. A scrape costs the loop one pass over the served torrents (hk_served_next, one
 * hk_seeder_torrent_stats each, a bounded heap of --metrics-top entries) plus rendering a body whose size does not
 * grow with the torrent count (docs/metrics.md; 1 to 5 ms for 10^5 torrents). Requests are only answered while the
 * loop runs: the daemon binds before its first scan, which does not run the loop, so a scrape then waits.
 *
 * Requests: GET or HEAD of "/metrics" (a query string is ignored) -> 200, `text/plain; version=0.0.4;
 * charset=utf-8`; another path -> 404; another method -> 405 with `Allow: GET, HEAD`. Reads are bounded by MHD:
 * request line and headers within HK_METRICS_REQUEST_MEMORY bytes (beyond: 431, connection closed), at most
 * HK_METRICS_MAX_CONNECTIONS connections (4 per address), each closed after HK_METRICS_TIMEOUT_S idle seconds; a
 * request body is never read (the connection is closed after the reply). A failure of one request never touches
 * serving.
 */
#ifndef HEKATE_METRICS_H
#define HEKATE_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "metrics_render.h"
#include "real_runtime.h"

#define HK_METRICS_REQUEST_MEMORY (16u << 10)
#define HK_METRICS_MAX_CONNECTIONS 16
#define HK_METRICS_TIMEOUT_S 10
#define HK_METRICS_DEFAULT_TOP 10

struct ev_loop;
typedef struct hk_metrics hk_metrics;

/* The address to listen on, from --metrics: "PORT" or ":PORT" (127.0.0.1), "IPV4:PORT", "[IPV6]:PORT" (numeric
 * addresses only; PORT 0..65535, 0: any free port). 0, or -1 with err naming the option and the text. */
int hk_metrics_parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *outlen, char *err, size_t errlen);

/* Listens on `addr` (hk_metrics_parse_addr's text) and serves snapshots of r with at most `top` per-torrent series
 * per family (clamped to HK_METRICS_TOP_MAX). NULL with err set if the address is invalid or cannot be bound. */
hk_metrics *hk_metrics_start(struct ev_loop *loop, hk_real *r, const char *addr, uint32_t top, char *err,
                             size_t errlen);
uint16_t hk_metrics_port(const hk_metrics *m);   /* the port bound */
const char *hk_metrics_url(const hk_metrics *m); /* "http://ADDR:PORT/metrics" with the port bound */
/* Stops the watchers and closes every connection. NULL is a no-op. */
void hk_metrics_stop(hk_metrics *m);

/* The snapshot a scrape renders, as a body: malloc'd, *len set; NULL out of memory. For tests and the handler. */
char *hk_metrics_scrape(hk_real *r, uint32_t top, double start_time, double uptime, size_t *len);

#endif
