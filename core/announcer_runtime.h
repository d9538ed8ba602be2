/* announcer_runtime: the announcer's runtime table: the shared base (runtime.h) plus the tracker transports.
 *
 * Contract
 * --------
 * Every action receives base.ctx as its first argument. The base's now, wake_at and random_bytes are required
 * (hk_announcer_new refuses a table without them; hk_announcer_runtime_check names the missing one); log is optional.
 * The transports are optional: without http_get, http(s) tracker URLs are skipped; UDP tracker URLs are used only
 * when both udp_send and resolve are given. A table with no transport at all is valid (nothing is announced).
 * Transports: http_get / udp_send / resolve serve the announcer (core/announcer.h), a core object separate from the
 *   seeder with its own table (and its own wake-up); their completions go to it: hk_announcer_on_http_done
 *   (exactly one per http_get; the backend enforces connect and total timeouts and a reply size cap),
 *   hk_announcer_on_datagram (every datagram received on the tracker sockets), hk_announcer_on_resolved (exactly one
 *   per resolve; the backend caches names with a TTL and never blocks its loop). Address ports passed to
 *   on_resolved are ignored.
 */
#ifndef HEKATE_ANNOUNCER_RUNTIME_H
#define HEKATE_ANNOUNCER_RUNTIME_H

#include "runtime.h"

typedef struct hk_announcer_runtime {
    hk_runtime base;                                                             /* now, wake_at, ... */
    void (*http_get)(void *ctx, const char *url, uint64_t token);                /* optional */
    void (*udp_send)(void *ctx, const hk_addr *to, const uint8_t *bytes, size_t len); /* optional, with resolve */
    void (*resolve)(void *ctx, const char *host, uint64_t token);                /* optional, with udp_send */
} hk_announcer_runtime;

/* NULL when every required member is set, else a static message naming the first one missing. */
static inline const char *hk_announcer_runtime_check(const hk_announcer_runtime *rt)
{
    return rt ? hk_runtime_check(&rt->base) : "announcer runtime: no table";
}

#endif
