/* BEP 15 packets and the connection-id state machine (core/tracker_udp.h). */
#include <criterion/criterion.h>
#include <string.h>

#include "tracker_udp.h"

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

Test(tracker_udp, connect_request_bytes)
{
    uint8_t b[16];
    cr_assert_eq(hk_udp_connect_request(b, 0x01020304), 16);
    const uint8_t want[16] = { 0x00, 0x00, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 1, 2, 3, 4 };
    cr_assert(memcmp(b, want, 16) == 0);
}

static hk_announce_params params(void)
{
    hk_announce_params p;
    memset(&p, 0, sizeof p);
    memset(p.info_hash, 0xAA, 20);
    memset(p.peer_id, 0xBB, 20);
    p.port = 51413;
    p.uploaded = 0x0102030405060708ull;
    p.event = HK_EVENT_STOPPED;
    p.key = 0xCAFEBABE;
    p.numwant = 0;
    return p;
}

Test(tracker_udp, announce_request_layout)
{
    hk_announce_params p = params();
    uint8_t b[HK_UDP_ANNOUNCE_MAX];
    size_t n = hk_udp_announce_request(b, sizeof b, 0x1122334455667788ull, 0x99AABBCC, &p, NULL, 0);
    cr_assert_eq(n, 98);
    cr_assert_eq(rd64(b), 0x1122334455667788ull);
    cr_assert_eq(rd32(b + 8), 1);
    cr_assert_eq(rd32(b + 12), 0x99AABBCC);
    cr_assert_eq(b[16], 0xAA);
    cr_assert_eq(b[35], 0xAA);
    cr_assert_eq(b[36], 0xBB);
    cr_assert_eq(b[55], 0xBB);
    cr_assert_eq(rd64(b + 56), 0, "downloaded");
    cr_assert_eq(rd64(b + 64), 0, "left");
    cr_assert_eq(rd64(b + 72), 0x0102030405060708ull, "uploaded");
    cr_assert_eq(rd32(b + 80), 3, "stopped");
    cr_assert_eq(rd32(b + 84), 0, "ip");
    cr_assert_eq(rd32(b + 88), 0xCAFEBABE, "key");
    cr_assert_eq(rd32(b + 92), 0, "num_want");
    cr_assert_eq(b[96] << 8 | b[97], 51413);
    cr_assert_eq(hk_udp_announce_request(b, 97, 1, 2, &p, NULL, 0), 0, "too small a buffer");
}

Test(tracker_udp, announce_request_url_data)
{
    hk_announce_params p = params();
    uint8_t b[HK_UDP_ANNOUNCE_MAX];
    char path[301];
    for (int i = 0; i < 300; i++)
        path[i] = (char)('a' + i % 26);
    path[300] = 0;
    size_t n = hk_udp_announce_request(b, sizeof b, 1, 2, &p, path, 300);
    cr_assert_eq(n, 98 + 2 + 255 + 2 + 45 + 1);
    cr_assert_eq(b[98], 2);
    cr_assert_eq(b[99], 255);
    cr_assert(memcmp(b + 100, path, 255) == 0);
    cr_assert_eq(b[355], 2);
    cr_assert_eq(b[356], 45);
    cr_assert(memcmp(b + 357, path + 255, 45) == 0);
    cr_assert_eq(b[402], 0, "EndOfOptions");
    n = hk_udp_announce_request(b, sizeof b, 1, 2, &p, "/announce", 9);
    cr_assert_eq(n, 98 + 2 + 9 + 1);
    cr_assert_eq(hk_udp_announce_request(b, 100, 1, 2, &p, "/announce", 9), 0);
}

static size_t put32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
    return 4;
}

Test(tracker_udp, decode_connect_and_announce)
{
    uint8_t b[64];
    hk_udp_reply r;
    char err[128];
    put32(b, 0);
    put32(b + 4, 77);
    put32(b + 8, 0x01020304);
    put32(b + 12, 0x05060708);
    cr_assert_eq(hk_udp_reply_decode(b, 16, 4, &r, err, sizeof err), 0, "%s", err);
    cr_assert_eq(r.action, HK_UDP_ACTION_CONNECT);
    cr_assert_eq(r.tid, 77);
    cr_assert_eq(r.conn_id, 0x0102030405060708ull);
    cr_assert_eq(hk_udp_reply_decode(b, 15, 4, &r, err, sizeof err), -1);
    cr_assert_eq(hk_udp_reply_decode(b, 17, 4, &r, err, sizeof err), -1);
    cr_assert(strstr(err, "not 16 bytes"));

    put32(b, 1);
    put32(b + 8, 1800);
    put32(b + 12, 3);
    put32(b + 16, 9);
    memset(b + 20, 7, 36);
    cr_assert_eq(hk_udp_reply_decode(b, 20 + 12, 4, &r, err, sizeof err), 0, "%s", err);
    cr_assert_eq(r.action, HK_UDP_ACTION_ANNOUNCE);
    cr_assert_eq(r.interval, 1800);
    cr_assert_eq(r.leechers, 3);
    cr_assert_eq(r.seeders, 9);
    cr_assert_eq(r.npeers, 2);
    cr_assert_eq(hk_udp_reply_decode(b, 20 + 18, 6, &r, err, sizeof err), 0, "one IPv6 entry: %s", err);
    cr_assert_eq(r.npeers, 1);
    cr_assert_eq(hk_udp_reply_decode(b, 20 + 18, 4, &r, err, sizeof err), 0, "three IPv4 entries");
    cr_assert_eq(r.npeers, 3);
    cr_assert_eq(hk_udp_reply_decode(b, 20 + 12, 6, &r, err, sizeof err), -1);
    cr_assert(strstr(err, "IPv6 peer entry"), "%s", err);
    cr_assert(strstr(err, "at byte 20"), "%s", err);
    cr_assert_eq(hk_udp_reply_decode(b, 20 + 7, 4, &r, err, sizeof err), -1);
    cr_assert(strstr(err, "at byte 26"), "%s", err);
    cr_assert_eq(hk_udp_reply_decode(b, 19, 4, &r, err, sizeof err), -1);
    cr_assert_eq(hk_udp_reply_decode(b, 20, 4, &r, err, sizeof err), 0, "no peers");
    cr_assert_eq(r.npeers, 0);
    cr_assert_eq(hk_udp_reply_decode(b, 20, 5, &r, err, sizeof err), -1, "unknown family");
}

Test(tracker_udp, decode_error_and_others)
{
    uint8_t b[64];
    hk_udp_reply r;
    char err[128];
    put32(b, 3);
    put32(b + 4, 5);
    memcpy(b + 8, "bad\x01hash", 8);
    cr_assert_eq(hk_udp_reply_decode(b, 16, 4, &r, err, sizeof err), 0);
    cr_assert_eq(r.action, HK_UDP_ACTION_ERROR);
    cr_assert_str_eq(r.message, "bad?hash");
    cr_assert_eq(hk_udp_reply_decode(b, 8, 4, &r, err, sizeof err), 0, "an empty message");
    cr_assert_str_eq(r.message, "");
    put32(b, 2);
    cr_assert_eq(hk_udp_reply_decode(b, 16, 4, &r, err, sizeof err), -1);
    cr_assert(strstr(err, "scrape"));
    put32(b, 9);
    cr_assert_eq(hk_udp_reply_decode(b, 16, 4, &r, err, sizeof err), -1);
    cr_assert(strstr(err, "unknown action"));
    cr_assert_eq(hk_udp_reply_decode(b, 7, 4, &r, err, sizeof err), -1);
    cr_assert(strstr(err, "shorter than 8"));
}

Test(tracker_udp, retransmission_times)
{
    cr_assert_eq(hk_udp_timeout(0), HK_SECONDS(15));
    cr_assert_eq(hk_udp_timeout(1), HK_SECONDS(30));
    cr_assert_eq(hk_udp_timeout(4), HK_SECONDS(240));
    cr_assert_eq(hk_udp_timeout(8), HK_SECONDS(3840));
    cr_assert_eq(hk_udp_timeout(9), HK_SECONDS(3840), "n stops growing at 8");
    cr_assert_eq(hk_udp_timeout(100), HK_SECONDS(3840));
}

Test(tracker_udp, connection_state_machine)
{
    hk_udp_conn c;
    hk_udp_conn_init(&c);
    hk_time t0 = HK_SECONDS(1000);
    cr_assert(!hk_udp_conn_usable(&c, t0));
    hk_udp_conn_start(&c, 11, t0);
    cr_assert_eq(c.state, HK_UDP_CONN_CONNECTING);
    cr_assert_eq(c.deadline, t0 + HK_SECONDS(15));
    hk_time t = c.deadline;
    cr_assert(hk_udp_conn_timeout(&c, 12, t, 2));
    cr_assert_eq(c.attempt, 1);
    cr_assert_eq(c.deadline, t + HK_SECONDS(30));
    cr_assert(!hk_udp_conn_reply(&c, 11, 99, t), "the previous transmission's tid is no longer current");
    t = c.deadline;
    cr_assert(hk_udp_conn_timeout(&c, 13, t, 2));
    cr_assert_eq(c.deadline, t + HK_SECONDS(60));
    cr_assert(!hk_udp_conn_timeout(&c, 14, c.deadline, 2), "n reached max_n: the exchange failed");
    cr_assert_eq(c.state, HK_UDP_CONN_NONE);

    hk_udp_conn_start(&c, 21, t0);
    cr_assert(hk_udp_conn_reply(&c, 21, 0xABCDEF, t0 + HK_SECONDS(2)));
    cr_assert_eq(c.conn_id, 0xABCDEF);
    cr_assert(hk_udp_conn_usable(&c, t0 + HK_SECONDS(2)));
    cr_assert(hk_udp_conn_usable(&c, t0 + HK_SECONDS(62) - 1), "valid for 60 s after it was received");
    cr_assert(!hk_udp_conn_usable(&c, t0 + HK_SECONDS(62)), "expired after 60 s");
    cr_assert(!hk_udp_conn_reply(&c, 21, 1, t0), "not connecting any more");
    hk_udp_conn_reset(&c);
    cr_assert(!hk_udp_conn_usable(&c, t0));

    hk_udp_conn_start(&c, 31, t0);
    for (unsigned n = 1; n <= 8; n++)
        cr_assert(hk_udp_conn_timeout(&c, 31 + n, c.deadline, 8));
    cr_assert_eq(c.attempt, 8);
    cr_assert(!hk_udp_conn_timeout(&c, 40, c.deadline, 8), "after n = 8 the exchange is over");
}
