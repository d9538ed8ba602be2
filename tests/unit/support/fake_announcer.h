/* fake_announcer: the announcer's runtime table (hk_announcer_runtime) for unit tests: a clock the test moves, the
 * one wake-up the announcer asked for, a fixed xorshift behind random_bytes, and a record of every action.
 *
 * - Clock: fa->now (fa_reset sets 1000 s); fa->wake is the last wake_at (HK_TIME_NEVER after reset).
 * - http_get: appended to fa->http[] (url copied, token, time); the test answers with hk_announcer_on_http_done.
 * - udp_send: appended to fa->udp[] (address, bytes, time); resolve: appended to fa->res[] (at most 64).
 * - log: warnings and errors are counted in fa->warns, the last one kept in fa->last_warn.
 * - fa_uploaded: an hk_uploaded_fn reporting fa->uploaded for every torrent (pass the fake as its argument).
 * Nothing fails; a call beyond the fixed bounds aborts (the test is broken). fa_reset frees what the record holds
 * and starts over; call it before first use and after the last.
 */
#ifndef HEKATE_FAKE_ANNOUNCER_H
#define HEKATE_FAKE_ANNOUNCER_H

#include <stddef.h>
#include <stdint.h>

#include "announcer.h"
#include "tracker_udp.h"

typedef struct fa_http_call {
    char *url;
    uint64_t token;
    hk_time at;
} fa_http_call;

typedef struct fa_udp_call {
    hk_addr to;
    uint8_t bytes[HK_UDP_ANNOUNCE_MAX];
    size_t len;
    hk_time at;
} fa_udp_call;

typedef struct fa_res_call {
    char host[256];
    uint64_t token;
} fa_res_call;

typedef struct fake_announcer {
    hk_time now, wake;
    uint64_t rng;
    fa_http_call *http;
    size_t nhttp, caphttp;
    fa_udp_call *udp;
    size_t nudp, capudp;
    fa_res_call res[64];
    size_t nres;
    unsigned warns;
    char last_warn[1024];
    uint64_t uploaded;
} fake_announcer;

hk_announcer_runtime fa_runtime(fake_announcer *fa);
void fa_reset(fake_announcer *fa);
uint64_t fa_uploaded(void *arg, const uint8_t ih[20]);

#endif
