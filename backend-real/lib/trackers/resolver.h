/* resolver: non-blocking, cached host name resolution for the real backend (UDP trackers).
 *
 * Contract
 * --------
 * hk_resolver_resolve(host, token) never blocks the loop and never calls back synchronously: the callback runs later
 * on the loop thread, exactly once per call, with the addresses found (at most HK_RESOLVER_MAX_ADDRS, IPv4 and IPv6,
 * in getaddrinfo's order, ports 0) or n == 0 and an error text. Numeric addresses are parsed on the loop (no
 * thread). Names are looked up with getaddrinfo on a small thread pool of the resolver's own (pool.h), so a slow DNS
 * server never holds a disk thread. Results are cached per name for `ttl` seconds (failures for `negative_ttl`);
 * concurrent requests for the same name share one lookup. The cache holds at most HK_RESOLVER_MAX_ENTRIES names
 * (the oldest entry is dropped first). hk_resolver_free waits for lookups under way and delivers nothing more.
 */
#ifndef HEKATE_RESOLVER_H
#define HEKATE_RESOLVER_H

#include <stddef.h>
#include <stdint.h>

#include "runtime.h"

#define HK_RESOLVER_MAX_ADDRS 8
#define HK_RESOLVER_MAX_ENTRIES 4096

struct ev_loop;
typedef struct hk_resolver hk_resolver;

typedef void (*hk_resolved_fn)(void *arg, uint64_t token, const hk_addr *addrs, size_t n, const char *error);

hk_resolver *hk_resolver_new(struct ev_loop *loop, double ttl, double negative_ttl, unsigned threads,
                             hk_resolved_fn cb, void *arg);
/* Returns 0, or -1 when out of memory (then no callback comes). */
int hk_resolver_resolve(hk_resolver *r, const char *host, uint64_t token);
void hk_resolver_free(hk_resolver *r);

typedef struct hk_resolver_stats {
    uint64_t requests, cache_hits, lookups, failures;
    size_t entries;
} hk_resolver_stats;
void hk_resolver_stats_get(const hk_resolver *r, hk_resolver_stats *out);

#endif
