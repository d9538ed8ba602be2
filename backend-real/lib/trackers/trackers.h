/* trackers: the announcer (core/announcer.h) on the real backend — its runtime table on libev, wired to the HTTP(S)
 * client (trackers_http.h), the UDP sockets (trackers_udp.h) and the name resolver (resolver.h).
 *
 * Contract
 * --------
 * hk_trackers_new creates the announcer with its own wake-up timer (never early, like the seeder's), getrandom(2)
 * randomness, the process log, and the three tracker actions; completions are handed back from the loop, never from
 * inside an action (a request refused at once is reported from an idle watcher). hk_trackers_stop runs the
 * announcer's shutdown (`stopped` to every tracker that has a torrent registered) and drives the loop until it is
 * finished or `seconds` have passed, whichever comes first; hk_trackers_free then releases everything (transfers
 * still under way are aborted).
 */
#ifndef HEKATE_TRACKERS_H
#define HEKATE_TRACKERS_H

#include <stdbool.h>
#include <stddef.h>

#include "announcer.h"
#include "trackers_http.h"

struct ev_loop;
typedef struct hk_trackers hk_trackers;

typedef struct hk_trackers_opts {
    hk_announcer_config ann;     /* peer_id and port must be filled in */
    hk_http_opts http;
    double dns_ttl;              /* seconds a resolved name is kept (default 300) */
    double dns_negative_ttl;     /* seconds a failed lookup is kept (default 30) */
    hk_log_level log_level;      /* announcer lines above this are not formatted (default HK_LOG_TRACE) */
} hk_trackers_opts;

void hk_trackers_opts_default(hk_trackers_opts *o);

hk_trackers *hk_trackers_new(struct ev_loop *loop, const hk_trackers_opts *o, hk_uploaded_fn uploaded, void *arg,
                             char *err, size_t errlen);
hk_announcer *hk_trackers_announcer(hk_trackers *t);
/* Sends `stopped` everywhere and waits (running the loop) until done or `seconds` passed. */
void hk_trackers_stop(hk_trackers *t, double seconds);
void hk_trackers_free(hk_trackers *t);

#endif
