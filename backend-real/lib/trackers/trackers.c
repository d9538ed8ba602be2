/* trackers: owns the announcer's runtime table on libev and the transports behind it (see trackers.h). */
#include "trackers.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "later.h"
#include "log.h"
#include "resolver.h"
#include "rt_common.h"
#include "trackers_udp.h"
#include "wake.h"

typedef struct failed {
    hk_list link;                /* in the queue of failures to report */
    uint64_t token;
    bool resolve;                /* a resolve (else an http_get) */
} failed;

struct hk_trackers {
    struct ev_loop *loop;
    hk_announcer_runtime rt;
    hk_announcer *ann;
    hk_http *http;
    hk_udp_trackers *udp;
    hk_resolver *resolver;
    hk_wake wake;                  /* the announcer's one wake-up */
    hk_later failed;               /* requests refused at once, reported from the loop (newest first) */
};

void hk_trackers_opts_default(hk_trackers_opts *o)
{
    memset(o, 0, sizeof *o);
    hk_announcer_config_defaults(&o->ann);
    hk_http_opts_default(&o->http);
    o->dns_ttl = 300;
    o->dns_negative_ttl = 30;
    o->log_level = HK_LOG_TRACE;
}

/* now, random_bytes and log: rt_common.h */

static void rt_wake_at(void *ctx, hk_time when)
{
    hk_trackers *t = ctx;
    hk_wake_at(&t->wake, when);
}

static void wake_fire(void *arg)
{
    hk_trackers *t = arg;
    hk_announcer_on_wake(t->ann);
}

static void defer_failure(hk_trackers *t, uint64_t token, bool resolve)
{
    failed *f = calloc(1, sizeof *f);
    if (!f) {
        hk_log(HK_LOG_ERROR, "trackers: out of memory; a tracker request is lost");
        return;
    }
    f->token = token;
    f->resolve = resolve;
    hk_later_add(&t->failed, &f->link);
}

static void report_failure(void *arg, hk_list *node)
{
    hk_trackers *t = arg;
    failed *f = HK_LIST_ENTRY(node, failed, link);
    if (f->resolve)
        hk_announcer_on_resolved(t->ann, f->token, NULL, 0);
    else
        hk_announcer_on_http_done(t->ann, f->token, HK_HTTP_ERR_TRANSPORT, (const uint8_t *)"cannot start the request", 24);
    free(f);
}

static void rt_http_get(void *ctx, const char *url, uint64_t token)
{
    hk_trackers *t = ctx;
    if (hk_http_get(t->http, url, token) != 0)
        defer_failure(t, token, false);
}

static void rt_udp_send(void *ctx, const hk_addr *to, const uint8_t *bytes, size_t len)
{
    hk_trackers *t = ctx;
    hk_udp_trackers_send(t->udp, to, bytes, len); /* a drop is a lost datagram: the announcer retransmits */
}

static void rt_resolve(void *ctx, const char *host, uint64_t token)
{
    hk_trackers *t = ctx;
    if (hk_resolver_resolve(t->resolver, host, token) != 0)
        defer_failure(t, token, true);
}

static void http_done(void *arg, uint64_t token, int status, const uint8_t *body, size_t len)
{
    hk_trackers *t = arg;
    hk_announcer_on_http_done(t->ann, token, status, body, len);
}

static void udp_recv(void *arg, const hk_addr *from, const uint8_t *bytes, size_t len)
{
    hk_trackers *t = arg;
    hk_announcer_on_datagram(t->ann, from, bytes, len);
}

static void resolved(void *arg, uint64_t token, const hk_addr *addrs, size_t n, const char *error)
{
    hk_trackers *t = arg;
    if (n == 0)
        hk_log(HK_LOG_DEBUG, "trackers: name resolution failed: %s", error ? error : "?");
    hk_announcer_on_resolved(t->ann, token, addrs, n);
}

hk_trackers *hk_trackers_new(struct ev_loop *loop, const hk_trackers_opts *o, hk_uploaded_fn uploaded, void *arg,
                             char *err, size_t errlen)
{
    const char *bad = hk_announcer_config_check(&o->ann);
    if (bad) {
        snprintf(err, errlen, "announcer configuration: %s", bad);
        return NULL;
    }
    hk_trackers *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->loop = loop;
    hk_wake_init(&t->wake, loop, wake_fire, t);
    hk_later_init(&t->failed, loop, HK_LATER_LIFO, report_failure, t);
    hk_http_opts ho = o->http;
    if (!ho.family)
        ho.family = o->ann.family;
    t->http = hk_http_new(loop, &ho, http_done, t, err, errlen);
    if (!t->http)
        goto fail;
    t->udp = hk_udp_trackers_new(loop, udp_recv, t);
    t->resolver = hk_resolver_new(loop, o->dns_ttl, o->dns_negative_ttl, 2, resolved, t);
    if (!t->udp || !t->resolver) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    t->rt = (hk_announcer_runtime){
        .base = { .ctx = t, .now = hk_rt_now, .wake_at = rt_wake_at, .random_bytes = hk_rt_random_bytes,
                  .log = hk_rt_log },
        .http_get = rt_http_get,
        .udp_send = rt_udp_send,
        .resolve = rt_resolve,
    };
    t->ann = hk_announcer_new(&o->ann, &t->rt, uploaded, arg);
    if (!t->ann) {
        snprintf(err, errlen, "cannot create the announcer (out of memory?)");
        goto fail;
    }
    hk_announcer_set_log_level(t->ann, o->log_level);
    return t;
fail:
    hk_trackers_free(t);
    return NULL;
}

hk_announcer *hk_trackers_announcer(hk_trackers *t)
{
    return t->ann;
}

void hk_trackers_stop(hk_trackers *t, double seconds)
{
    hk_time deadline = hk_clock_now() + (hk_time)(seconds * 1e9);
    hk_announcer_shutdown(t->ann, deadline);
    while (!hk_announcer_finished(t->ann)) /* the announcer's own wake-up at the deadline ends this */
        ev_run(t->loop, EVRUN_ONCE);
    hk_announcer_stats st;
    hk_announcer_stats_get(t->ann, &st);
    hk_log(HK_LOG_INFO, "trackers: %llu `stopped` sent, %llu answered, %llu given up",
           (unsigned long long)st.stopped_sent, (unsigned long long)st.stopped_ok, (unsigned long long)st.abandoned);
    hk_log(HK_LOG_INFO, "trackers: %u torrents, %u slots, %u trackers, %u hosts; %llu announces (%llu ok, "
           "%llu refused, %llu failed, %llu skipped, %llu paced); announcer memory %llu bytes (peak %llu)",
           st.torrents, st.slots, st.trackers, st.hosts, (unsigned long long)st.announces,
           (unsigned long long)st.ok, (unsigned long long)st.refused, (unsigned long long)st.failed,
           (unsigned long long)st.skipped, (unsigned long long)st.paced, (unsigned long long)st.memory_bytes,
           (unsigned long long)st.memory_peak);
}

void hk_trackers_free(hk_trackers *t)
{
    if (!t)
        return;
    hk_wake_stop(&t->wake);
    hk_later_stop(&t->failed);
    for (hk_list *n; (n = hk_later_take(&t->failed)) != NULL;)
        free(HK_LIST_ENTRY(n, failed, link));
    hk_http_free(t->http);
    hk_udp_trackers_free(t->udp);
    hk_resolver_free(t->resolver);
    hk_announcer_free(t->ann);
    free(t);
}
