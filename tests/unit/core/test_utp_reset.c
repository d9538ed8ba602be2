/* Unit tests for core/utp_reset: the strict uTP header parser (length, version, types, the bounded extension chain),
 * the reset composed for a SYN (the fields libutp and libtorrent check), silence for every other packet type and for
 * malformed input, no amplification, and the per-source and global rate bounds. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "utp_reset.h"

#define S HK_NS_PER_SEC

/* A uTP header of that type: connection_id 0x1234, timestamp 1000000, seq_nr 0xabcd, ack_nr 0x0102. */
static size_t make(uint8_t *p, unsigned type, unsigned version, uint8_t ext)
{
    memset(p, 0, 64);
    p[0] = (uint8_t)(type << 4 | version);
    p[1] = ext;
    p[2] = 0x12, p[3] = 0x34;
    p[4] = 0x00, p[5] = 0x0f, p[6] = 0x42, p[7] = 0x40; /* 1000000 us */
    p[12] = 0x00, p[13] = 0x10, p[14] = 0x00, p[15] = 0x00;
    p[16] = 0xab, p[17] = 0xcd;
    p[18] = 0x01, p[19] = 0x02;
    return HK_UTP_HEADER;
}

static hk_addr v4(uint8_t last)
{
    hk_addr a = { .family = 4, .ip = { 10, 0, 0, last }, .port = 6881 };
    return a;
}

Test(utp_reset, parses_a_header)
{
    uint8_t p[64];
    size_t n = make(p, HK_UTP_ST_SYN, 1, 0);
    hk_utp_header h;
    cr_assert_eq(hk_utp_parse(p, n, &h), HK_UTP_OK);
    cr_assert_eq(h.type, HK_UTP_ST_SYN);
    cr_assert_eq(h.version, 1);
    cr_assert_eq(h.connection_id, 0x1234);
    cr_assert_eq(h.timestamp_us, 1000000u);
    cr_assert_eq(h.wnd_size, 0x100000u);
    cr_assert_eq(h.seq_nr, 0xabcd);
    cr_assert_eq(h.ack_nr, 0x0102);
    cr_assert_eq(h.extensions, 0);
    cr_assert_eq(h.payload_off, 20);
}

Test(utp_reset, rejects_short_bad_version_and_bad_type)
{
    uint8_t p[64];
    hk_utp_header h;
    make(p, HK_UTP_ST_SYN, 1, 0);
    for (size_t n = 0; n < HK_UTP_HEADER; n++)
        cr_assert_eq(hk_utp_parse(p, n, &h), HK_UTP_SHORT, "length %zu", n);
    make(p, HK_UTP_ST_SYN, 0, 0);
    cr_assert_eq(hk_utp_parse(p, 20, &h), HK_UTP_BAD_VERSION);
    make(p, HK_UTP_ST_SYN, 2, 0);
    cr_assert_eq(hk_utp_parse(p, 20, &h), HK_UTP_BAD_VERSION);
    for (unsigned t = 5; t < 16; t++) {
        make(p, t, 1, 0);
        cr_assert_eq(hk_utp_parse(p, 20, &h), HK_UTP_BAD_TYPE, "type %u", t);
    }
    for (unsigned t = 0; t <= 4; t++) {
        make(p, t, 1, 0);
        cr_assert_eq(hk_utp_parse(p, 20, &h), HK_UTP_OK, "type %u", t);
    }
}

Test(utp_reset, walks_the_extension_chain_within_bounds)
{
    uint8_t p[64];
    hk_utp_header h;
    /* libutp's SYN: extension 2 (extension bits), 8 bytes, then a selective ack of 4 bytes */
    make(p, HK_UTP_ST_SYN, 1, 2);
    p[20] = 1, p[21] = 8;
    p[30] = 0, p[31] = 4;
    cr_assert_eq(hk_utp_parse(p, 36, &h), HK_UTP_OK);
    cr_assert_eq(h.extensions, 2);
    cr_assert_eq(h.payload_off, 36);
    cr_assert_eq(hk_utp_parse(p, 35, &h), HK_UTP_BAD_EXTENSION, "the last link runs past the end");
    cr_assert_eq(hk_utp_parse(p, 21, &h), HK_UTP_BAD_EXTENSION, "a link without its length byte");
    cr_assert_eq(hk_utp_parse(p, 20, &h), HK_UTP_BAD_EXTENSION, "an extension announced, none present");
    /* a chain of zero-length links: HK_UTP_MAX_EXTENSIONS pass, one more does not */
    make(p, HK_UTP_ST_SYN, 1, 1);
    for (unsigned i = 0; i < HK_UTP_MAX_EXTENSIONS; i++)
        p[20 + 2 * i] = i + 1 < HK_UTP_MAX_EXTENSIONS ? 1 : 0, p[21 + 2 * i] = 0;
    cr_assert_eq(hk_utp_parse(p, 20 + 2 * HK_UTP_MAX_EXTENSIONS, &h), HK_UTP_OK);
    cr_assert_eq(h.extensions, HK_UTP_MAX_EXTENSIONS);
    p[20 + 2 * (HK_UTP_MAX_EXTENSIONS - 1)] = 1; /* the last link names one more */
    p[20 + 2 * HK_UTP_MAX_EXTENSIONS] = 0, p[21 + 2 * HK_UTP_MAX_EXTENSIONS] = 0;
    cr_assert_eq(hk_utp_parse(p, 22 + 2 * HK_UTP_MAX_EXTENSIONS, &h), HK_UTP_BAD_EXTENSION);
}

Test(utp_reset, answers_a_syn_with_the_reset_a_client_accepts)
{
    hk_utp_responder r;
    hk_utp_responder_init(&r, NULL, 42, 0);
    uint8_t p[64], out[HK_UTP_HEADER];
    size_t n = make(p, HK_UTP_ST_SYN, 1, 0);
    hk_addr from = v4(1);
    hk_time now = 3 * S + 500; /* 3000000.5 us */
    cr_assert_eq(hk_utp_respond(&r, p, n, &from, now, out), HK_UTP_HEADER);
    hk_utp_header h;
    cr_assert_eq(hk_utp_parse(out, sizeof out, &h), HK_UTP_OK);
    cr_assert_eq(h.type, HK_UTP_ST_RESET);
    cr_assert_eq(h.extension, 0);
    cr_assert_eq(h.connection_id, 0x1234, "the SYN's id: the initiator's receive id");
    cr_assert_eq(h.ack_nr, 0xabcd, "acknowledges the SYN's seq_nr (libtorrent ignores an ack beyond what it sent)");
    cr_assert_eq(h.timestamp_us, 3000000u);
    cr_assert_eq(h.timestamp_diff_us, 2000000u);
    cr_assert_eq(h.wnd_size, 0);
    cr_assert_eq(r.stats.syn, 1);
    cr_assert_eq(r.stats.resets, 1);
}

Test(utp_reset, libutp_syns_are_left_to_time_out_unless_asked)
{
    uint8_t p[64], out[HK_UTP_HEADER];
    make(p, HK_UTP_ST_SYN, 1, 2); /* libutp's SYN: the 8 bytes of extension bits */
    p[20] = 0, p[21] = 8;
    hk_addr from = v4(1);
    hk_utp_responder r;
    hk_utp_responder_init(&r, NULL, 1, 0);
    cr_assert_eq(hk_utp_respond(&r, p, 30, &from, 0, out), 0, "Transmission would never retry by TCP");
    cr_assert_eq(r.stats.syn, 1);
    cr_assert_eq(r.stats.libutp_syn, 1);
    cr_assert_eq(r.stats.resets, 0);
    hk_utp_limits lim;
    hk_utp_limits_default(&lim);
    lim.answer_libutp = true;
    hk_utp_responder_init(&r, &lim, 1, 0);
    cr_assert_eq(hk_utp_respond(&r, p, 30, &from, 0, out), HK_UTP_HEADER);
    cr_assert_eq(r.stats.libutp_syn, 1);
    cr_assert_eq(r.stats.resets, 1);
    /* an extension of another type first (libtorrent sends none) is answered */
    make(p, HK_UTP_ST_SYN, 1, 1);
    p[20] = 0, p[21] = 4;
    hk_utp_responder_init(&r, NULL, 1, 0);
    cr_assert_eq(hk_utp_respond(&r, p, 26, &from, 0, out), HK_UTP_HEADER);
    cr_assert_eq(r.stats.libutp_syn, 0);
}

Test(utp_reset, the_seq_nr_follows_the_seed)
{
    hk_utp_responder a, b, c;
    hk_utp_responder_init(&a, NULL, 7, 0);
    hk_utp_responder_init(&b, NULL, 7, 0);
    hk_utp_responder_init(&c, NULL, 8, 0);
    uint8_t p[64], oa[20], ob[20], oc[20];
    size_t n = make(p, HK_UTP_ST_SYN, 1, 0);
    hk_addr from = v4(1);
    unsigned differ = 0;
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(hk_utp_respond(&a, p, n, &from, 0, oa), 20);
        cr_assert_eq(hk_utp_respond(&b, p, n, &from, 0, ob), 20);
        cr_assert_eq(hk_utp_respond(&c, p, n, &from, 0, oc), 20);
        cr_assert_eq(memcmp(oa, ob, 20), 0, "same seed, same replies");
        differ += memcmp(oa + 16, oc + 16, 2) != 0;
    }
    cr_assert_gt(differ, 0, "another seed gives other seq_nrs");
}

Test(utp_reset, no_reply_but_to_a_syn)
{
    hk_utp_responder r;
    hk_utp_responder_init(&r, NULL, 1, 0);
    uint8_t p[64], out[HK_UTP_HEADER];
    hk_addr from = v4(1);
    const unsigned types[] = { HK_UTP_ST_DATA, HK_UTP_ST_FIN, HK_UTP_ST_STATE, HK_UTP_ST_RESET };
    for (size_t i = 0; i < 4; i++) {
        size_t n = make(p, types[i], 1, 0);
        cr_assert_eq(hk_utp_respond(&r, p, n, &from, 0, out), 0, "type %u", types[i]);
    }
    cr_assert_eq(r.stats.ignored, 4);
    make(p, HK_UTP_ST_SYN, 1, 0);
    cr_assert_eq(hk_utp_respond(&r, p, 19, &from, 0, out), 0, "a short SYN");
    cr_assert_eq(hk_utp_respond(&r, (const uint8_t *)"d1:ad2:id20:", 12, &from, 0, out), 0);
    p[1] = 9; /* an extension that is not there */
    cr_assert_eq(hk_utp_respond(&r, p, 20, &from, 0, out), 0);
    cr_assert_eq(r.stats.malformed, 3);
    cr_assert_eq(r.stats.resets, 0);
    cr_assert_eq(r.stats.syn, 0);
}

Test(utp_reset, the_reply_is_never_larger_than_the_query)
{
    hk_utp_responder r;
    hk_utp_responder_init(&r, NULL, 1, 0);
    uint8_t p[64], out[HK_UTP_HEADER];
    hk_addr from = v4(1);
    for (size_t len = 0; len <= 40; len++) {
        make(p, HK_UTP_ST_SYN, 1, 0);
        size_t got = hk_utp_respond(&r, p, len, &from, (hk_time)len * S, out);
        cr_assert(got == 0 || got <= len, "reply %zu for a query of %zu", got, len);
        cr_assert_eq(got != 0, len >= 20);
    }
}

Test(utp_reset, one_source_is_rate_bounded_others_are_not)
{
    hk_utp_limits lim = { .per_source_rate = 2, .per_source_burst = 4, .global_rate = 100, .global_burst = 100 };
    hk_utp_responder r;
    hk_utp_responder_init(&r, &lim, 99, 0);
    uint8_t p[64], out[HK_UTP_HEADER];
    size_t n = make(p, HK_UTP_ST_SYN, 1, 0);
    hk_addr flood = v4(1);
    unsigned sent = 0;
    for (int i = 0; i < 50; i++)
        sent += hk_utp_respond(&r, p, n, &flood, 0, out) != 0;
    cr_assert_eq(sent, 4, "the burst, then nothing");
    cr_assert_eq(r.stats.rate_limited, 46);
    /* another source (unless it shares the slot) is answered */
    unsigned others = 0;
    for (uint8_t last = 2; last < 12; last++) {
        hk_addr o = v4(last);
        others += hk_utp_respond(&r, p, n, &o, 0, out) != 0;
    }
    cr_assert_geq(others, 9);
    /* one second later the flooding source has two more */
    sent = 0;
    for (int i = 0; i < 10; i++)
        sent += hk_utp_respond(&r, p, n, &flood, S, out) != 0;
    cr_assert_eq(sent, 2);
}

Test(utp_reset, an_ipv6_slash64_is_one_source)
{
    hk_utp_limits lim = { .per_source_rate = 1, .per_source_burst = 3, .global_rate = 100, .global_burst = 100 };
    hk_utp_responder r;
    hk_utp_responder_init(&r, &lim, 5, 0);
    uint8_t p[64], out[HK_UTP_HEADER];
    size_t n = make(p, HK_UTP_ST_SYN, 1, 0);
    unsigned sent = 0;
    for (int i = 0; i < 20; i++) {
        hk_addr a = { .family = 6, .ip = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1 }, .port = 1 };
        a.ip[15] = (uint8_t)i; /* other hosts of the same /64 */
        sent += hk_utp_respond(&r, p, n, &a, 0, out) != 0;
    }
    cr_assert_eq(sent, 3);
}

Test(utp_reset, the_global_bound_holds_over_many_sources)
{
    hk_utp_limits lim = { .per_source_rate = 100, .per_source_burst = 100, .global_rate = 10, .global_burst = 20 };
    hk_utp_responder r;
    hk_utp_responder_init(&r, &lim, 3, 0);
    uint8_t p[64], out[HK_UTP_HEADER];
    size_t n = make(p, HK_UTP_ST_SYN, 1, 0);
    unsigned sent = 0;
    for (unsigned i = 0; i < 1000; i++) {
        hk_addr a = { .family = 4, .ip = { 10, (uint8_t)(i >> 8), (uint8_t)i, 1 }, .port = 1 };
        sent += hk_utp_respond(&r, p, n, &a, 0, out) != 0;
    }
    cr_assert_eq(sent, 20);
    cr_assert_eq(r.stats.rate_limited, 980);
}
