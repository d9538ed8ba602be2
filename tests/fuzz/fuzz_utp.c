/* Fuzz target for core/utp_reset: the uTP header parser and the reset responder.
 *
 * Input: byte 0 flags (bit 0: sources are IPv6; bit 1: answer libutp's SYNs too; bits 2-7: quarter seconds the
 * clock moves between datagrams), then
 * datagrams, each a length byte followed by that many bytes (the last one takes what is left). Each datagram is
 * parsed alone (a parse that succeeds is consistent with its length) and given to one responder with tight limits;
 * every reply must be a well-formed ST_RESET to a well-formed ST_SYN, no larger than it, carrying its connection id
 * and acknowledging its seq_nr, and the responder's books must balance. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utp_reset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_one(hk_utp_responder *r, const uint8_t *dg, size_t len, const hk_addr *from, hk_time now)
{
    hk_utp_header q;
    int pr = hk_utp_parse(dg, len, &q);
    if (pr == HK_UTP_OK && (q.payload_off > len || q.payload_off < HK_UTP_HEADER || q.version != 1 ||
                            q.type > HK_UTP_ST_SYN || q.extensions > HK_UTP_MAX_EXTENSIONS))
        abort();
    uint8_t out[HK_UTP_HEADER];
    uint64_t resets = r->stats.resets;
    size_t n = hk_utp_respond(r, dg, len, from, now, out);
    if (n == 0) {
        if (r->stats.resets != resets)
            abort();
        return;
    }
    hk_utp_header a;
    if (n != HK_UTP_HEADER || n > len || pr != HK_UTP_OK || q.type != HK_UTP_ST_SYN ||
        (!r->answer_libutp && q.extensions > 0 && q.extension == 2))
        abort();
    if (hk_utp_parse(out, n, &a) != HK_UTP_OK || a.type != HK_UTP_ST_RESET || a.extension != 0 ||
        a.connection_id != q.connection_id || a.ack_nr != q.seq_nr || r->stats.resets != resets + 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    hk_utp_limits lim = { .per_source_rate = 2, .per_source_burst = 3, .global_rate = 5, .global_burst = 8,
                          .answer_libutp = (flags & 2) != 0 };
    static hk_utp_responder r; /* ~21 KiB: not on the stack */
    hk_utp_responder_init(&r, &lim, 0x5eed, 0);
    hk_time now = 0, step = (hk_time)(flags >> 2) * HK_NS_PER_SEC / 4;
    uint64_t count = 0;
    size_t off = 1;
    while (off < size) {
        size_t len = data[off++];
        if (len > size - off)
            len = size - off;
        hk_addr from = { .family = (flags & 1) ? 6 : 4, .port = 6881 };
        from.ip[0] = (uint8_t)count; /* a few sources */
        from.ip[3] = (uint8_t)(count >> 2);
        check_one(&r, data + off, len, &from, now);
        off += len;
        now += step;
        count++;
    }
    const hk_utp_stats *s = &r.stats;
    uint64_t unanswered_libutp = lim.answer_libutp ? 0 : s->libutp_syn;
    if (s->malformed + s->ignored + s->syn != count || s->resets + s->rate_limited + unanswered_libutp != s->syn ||
        s->libutp_syn > s->syn)
        abort();
    return 0;
}
