/* Fuzz target for UDP tracker datagrams (core/tracker_udp) and the announcer's BEP 15 state machine.
 *
 * Input: byte 0 flags (bit 0: address family 6 instead of 4; bit 1: stamp the transaction id the announcer is
 * waiting for into each datagram; bit 2: send from a foreign port), then datagrams, each a length byte followed by
 * that many bytes. Each datagram is decoded alone (invariants checked), then delivered to an announcer that has
 * resolved the tracker and sent a connect; between datagrams the clock moves 16 s, so retransmissions, connection-id
 * expiry and give-ups interleave with replies. The announcer's books must balance at the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "announcer.h"
#include "fuzz_clock.h"
#include "tracker_udp.h"

/* A datagram decoded alone: what decodes is consistent with its length and its text is NUL-terminated. */
static void check_datagram(const uint8_t *dg, size_t len, uint8_t family)
{
    hk_udp_reply rep;
    char err[128];
    if (hk_udp_reply_decode(dg, len, family, &rep, err, sizeof err) != 0)
        return;
    if (rep.action == HK_UDP_ACTION_ANNOUNCE && 20 + (size_t)rep.npeers * (family == 6 ? 18 : 6) != len)
        abort();
    if (rep.action == HK_UDP_ACTION_CONNECT && len != 16)
        abort();
    if (strnlen(rep.message, sizeof rep.message) == sizeof rep.message)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fake {
    fuzz_clock clk; /* first: the fuzz_clock callbacks take the context as a fuzz_clock */
    uint32_t last_tid;
    uint64_t res_token;
    unsigned sends, resolves;
} fake;

static void f_udp(void *c, const hk_addr *to, const uint8_t *b, size_t len)
{
    fake *f = c;
    if (to->port != 6969 || (len != 16 && len < 98))
        abort();
    f->last_tid = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
    f->sends++;
}
static void f_resolve(void *c, const char *host, uint64_t token)
{
    fake *f = c;
    if (strcmp(host, "tracker.example") != 0)
        abort();
    f->res_token = token;
    f->resolves++;
}

/* The wake-ups due by t, then the clock moved on to t. */
static void run_until(hk_announcer *a, fake *f, hk_time t)
{
    fuzz_clock_run(a, &f->clk, t);
    if (t > f->clk.now)
        f->clk.now = t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    uint8_t family = (flags & 1) ? 6 : 4;
    fake f = { .clk = fuzz_clock_start(7) };
    hk_announcer_runtime rt = {
        .base = { .ctx = &f, .now = fuzz_clock_now, .wake_at = fuzz_clock_wake, .random_bytes = fuzz_clock_rand },
        .udp_send = f_udp, .resolve = f_resolve };
    hk_announcer_config c;
    hk_announcer_config_defaults(&c);
    c.udp_max_n = 2;
    hk_announcer *a = hk_announcer_new(&c, &rt, NULL, NULL);
    if (!a)
        abort();
    const char *url = "udp://tracker.example:6969/announce";
    uint32_t one = 1;
    for (uint8_t k = 0; k < 3; k++) {
        uint8_t ih[20] = { k, 9 };
        if (hk_announcer_add_torrent(a, ih, &url, &one, 1) != HK_ANN_OK)
            abort();
    }
    run_until(a, &f, f.clk.now + HK_SECONDS(1));
    hk_addr addr = { .family = family, .port = 0 };
    addr.ip[0] = family == 4 ? 10 : 0x20;
    addr.ip[15] = 1;
    if (f.resolves != 1)
        abort();
    hk_announcer_on_resolved(a, f.res_token, &addr, 1);
    hk_addr from = addr;
    from.port = (flags & 4) ? 6970 : 6969;

    size_t i = 1;
    while (i < size) {
        size_t len = data[i++];
        if (len > size - i)
            len = size - i;
        uint8_t dg[256];
        memcpy(dg, data + i, len);
        i += len;
        if ((flags & 2) && len >= 8) {
            dg[4] = (uint8_t)(f.last_tid >> 24);
            dg[5] = (uint8_t)(f.last_tid >> 16);
            dg[6] = (uint8_t)(f.last_tid >> 8);
            dg[7] = (uint8_t)f.last_tid;
        }
        check_datagram(dg, len, family);
        hk_announcer_on_datagram(a, &from, dg, len);
        if (f.resolves > 1 && f.res_token) { /* a new exchange after the id expired: resolve again */
            hk_announcer_on_resolved(a, f.res_token, &addr, 1);
            f.res_token = 0;
        }
        run_until(a, &f, f.clk.now + HK_SECONDS(16));
    }
    hk_announcer_stats st;
    hk_announcer_stats_get(a, &st);
    if (st.ok > st.announces || st.waiting != 0)
        abort();
    hk_announcer_shutdown(a, f.clk.now + HK_SECONDS(5));
    run_until(a, &f, f.clk.now + HK_SECONDS(6));
    if (!hk_announcer_finished(a))
        abort();
    hk_announcer_free(a);
    return 0;
}
