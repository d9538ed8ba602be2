/* fake_announcer: owns the recording announcer runtime table used by unit tests (see fake_announcer.h). */
#include "fake_announcer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static hk_time f_now(void *ctx) { return ((fake_announcer *)ctx)->now; }
static void f_wake_at(void *ctx, hk_time t) { ((fake_announcer *)ctx)->wake = t; }

static void f_random(void *ctx, void *buf, size_t n)
{
    fake_announcer *f = ctx;
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++) {
        f->rng ^= f->rng << 13;
        f->rng ^= f->rng >> 7;
        f->rng ^= f->rng << 17;
        p[i] = (uint8_t)f->rng;
    }
}

static void f_http(void *ctx, const char *url, uint64_t token)
{
    fake_announcer *f = ctx;
    if (f->nhttp == f->caphttp) {
        f->caphttp = f->caphttp ? f->caphttp * 2 : 64;
        f->http = realloc(f->http, f->caphttp * sizeof *f->http);
    }
    f->http[f->nhttp++] = (fa_http_call){ strdup(url), token, f->now };
}

static void f_udp(void *ctx, const hk_addr *to, const uint8_t *b, size_t len)
{
    fake_announcer *f = ctx;
    if (f->nudp == f->capudp) {
        f->capudp = f->capudp ? f->capudp * 2 : 64;
        f->udp = realloc(f->udp, f->capudp * sizeof *f->udp);
    }
    fa_udp_call *c = &f->udp[f->nudp++];
    c->to = *to;
    if (len > sizeof c->bytes)
        abort(); /* a datagram larger than any announce: the announcer is broken */
    memcpy(c->bytes, b, len);
    c->len = len;
    c->at = f->now;
}

static void f_resolve(void *ctx, const char *host, uint64_t token)
{
    fake_announcer *f = ctx;
    if (f->nres >= sizeof f->res / sizeof *f->res)
        abort(); /* more lookups in flight than any test makes */
    snprintf(f->res[f->nres].host, sizeof f->res[f->nres].host, "%s", host);
    f->res[f->nres++].token = token;
}

static void f_log(void *ctx, hk_log_level level, const char *line)
{
    fake_announcer *f = ctx;
    if (level <= HK_LOG_WARN) {
        f->warns++;
        snprintf(f->last_warn, sizeof f->last_warn, "%s", line);
    }
}

uint64_t fa_uploaded(void *arg, const uint8_t ih[20])
{
    (void)ih;
    return ((fake_announcer *)arg)->uploaded;
}

hk_announcer_runtime fa_runtime(fake_announcer *fa)
{
    return (hk_announcer_runtime){
        .base = { .ctx = fa, .now = f_now, .wake_at = f_wake_at, .random_bytes = f_random, .log = f_log },
        .http_get = f_http, .udp_send = f_udp, .resolve = f_resolve };
}

void fa_reset(fake_announcer *fa)
{
    for (size_t i = 0; i < fa->nhttp; i++)
        free(fa->http[i].url);
    free(fa->http);
    free(fa->udp);
    memset(fa, 0, sizeof *fa);
    fa->now = HK_SECONDS(1000);
    fa->wake = HK_TIME_NEVER;
    fa->rng = 0x9E3779B97F4A7C15ull;
}
