/* dht_runtime: the DHT node's runtime table: the shared base (runtime.h) plus sending a datagram.
 *
 * Contract
 * --------
 * Every action receives base.ctx as its first argument. The base's now, wake_at and random_bytes are required, log is
 * optional; udp_send is required (hk_dht_new refuses a table without it; hk_dht_runtime_check names the missing one).
 * udp_send sends one datagram from the DHT's socket (the listen port's UDP socket) at once or drops it; it never
 * calls back into the node. Datagrams received on that socket go to hk_dht_on_datagram; the node's wake-up to
 * hk_dht_on_wake (a wake-up of its own, separate from the seeder's and the announcer's).
 */
#ifndef HEKATE_DHT_RUNTIME_H
#define HEKATE_DHT_RUNTIME_H

#include "runtime.h"

typedef struct hk_dht_runtime {
    hk_runtime base;                                                               /* now, wake_at, ... */
    void (*udp_send)(void *ctx, const hk_addr *to, const uint8_t *bytes, size_t len); /* required */
} hk_dht_runtime;

/* NULL when every required member is set, else a static message naming the first one missing. */
static inline const char *hk_dht_runtime_check(const hk_dht_runtime *rt)
{
    if (!rt)
        return "dht runtime: no table";
    const char *base = hk_runtime_check(&rt->base);
    if (base)
        return base;
    return rt->udp_send ? NULL : "dht runtime: udp_send is required";
}

#endif
