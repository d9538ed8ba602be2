/* The per-address caps: core/addr_limit (counts per address, /24, /64, IPv4-mapped IPv6, release, memory) and the
 * seeder's use of them at accept (refusal, counters, the log line, release on every close path). */
#include <criterion/criterion.h>
#include <string.h>

#include "addr_limit.h"
#include "seeder_harness.h"
#include "wire.h"

static hk_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
    return (hk_addr){.family = 4, .ip = {a, b, c, d}, .port = port};
}

/* 2001:db8:P:Q::H, P/Q varying the /64 and H the host part */
static hk_addr v6(uint16_t p, uint16_t q, uint16_t host)
{
    hk_addr a = {.family = 6, .ip = {0x20, 0x01, 0x0d, 0xb8}, .port = 6881};
    a.ip[4] = (uint8_t)(p >> 8), a.ip[5] = (uint8_t)p, a.ip[6] = (uint8_t)(q >> 8), a.ip[7] = (uint8_t)q;
    a.ip[14] = (uint8_t)(host >> 8), a.ip[15] = (uint8_t)host;
    return a;
}

static hk_addr mapped(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    hk_addr m = {.family = 6, .ip = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d}, .port = 1};
    return m;
}

Test(addr_limit, per_address_cap_ignores_the_port)
{
    hk_mem mem = {0};
    hk_addr_limit al;
    hk_al_init(&al, &mem, 3, 0);
    hk_addr_hold h[4];
    for (int i = 0; i < 3; i++) {
        hk_addr a = v4(192, 0, 2, 7, (uint16_t)(1000 + i));
        cr_assert_eq(hk_al_acquire(&al, &a, &h[i]), HK_AL_OK, "connection %d", i);
    }
    hk_addr a = v4(192, 0, 2, 7, 9999);
    cr_assert_eq(hk_al_acquire(&al, &a, &h[3]), HK_AL_ADDRESS);
    cr_assert_eq(h[3].addr, HK_AL_NONE, "a refused acquire holds nothing");
    cr_assert_eq(hk_al_address_count(&al, &a), 3);
    hk_addr other = v4(192, 0, 2, 8, 9999); /* same /24, another host: the prefix is not capped here */
    cr_assert_eq(hk_al_acquire(&al, &other, &h[3]), HK_AL_OK);
    hk_al_free(&al);
    cr_assert_eq(mem.bytes, 0);
}

Test(addr_limit, per_prefix_cap_on_the_ipv4_slash_24)
{
    hk_mem mem = {0};
    hk_addr_limit al;
    hk_al_init(&al, &mem, 2, 5);
    hk_addr_hold h;
    for (int i = 0; i < 5; i++) {
        hk_addr a = v4(198, 51, 100, (uint8_t)(10 + i), 1);
        cr_assert_eq(hk_al_acquire(&al, &a, &h), HK_AL_OK, "host %d", i);
    }
    hk_addr sixth = v4(198, 51, 100, 200, 1);
    cr_assert_eq(hk_al_acquire(&al, &sixth, &h), HK_AL_PREFIX, "a sixth host of the /24 is refused");
    cr_assert_eq(hk_al_prefix_count(&al, &sixth), 5);
    cr_assert_eq(hk_al_address_count(&al, &sixth), 0, "nothing was counted for the refused address");
    hk_addr next_net = v4(198, 51, 101, 200, 1);
    cr_assert_eq(hk_al_acquire(&al, &next_net, &h), HK_AL_OK, "the next /24 is another prefix");
    cr_assert_eq(hk_al_prefix_bits(&sixth), 24);
    hk_al_free(&al);
}

Test(addr_limit, per_prefix_cap_on_the_ipv6_slash_64)
{
    hk_mem mem = {0};
    hk_addr_limit al;
    hk_al_init(&al, &mem, 1, 4);
    hk_addr_hold h;
    /* an attacker's /64 holds 2^64 addresses: one connection each, the /64 still stops at 4 */
    for (uint16_t i = 0; i < 4; i++) {
        hk_addr a = v6(1, 2, (uint16_t)(i + 1));
        cr_assert_eq(hk_al_acquire(&al, &a, &h), HK_AL_OK);
    }
    hk_addr fifth = v6(1, 2, 77);
    cr_assert_eq(hk_al_acquire(&al, &fifth, &h), HK_AL_PREFIX);
    hk_addr same = v6(1, 2, 1);
    cr_assert_eq(hk_al_acquire(&al, &same, &h), HK_AL_ADDRESS, "the address cap is checked first");
    hk_addr next = v6(1, 3, 77); /* differs in bits 48..63: another /64 */
    cr_assert_eq(hk_al_acquire(&al, &next, &h), HK_AL_OK);
    cr_assert_eq(hk_al_prefix_bits(&next), 64);
    hk_al_free(&al);
}

Test(addr_limit, ipv4_mapped_ipv6_is_the_ipv4_host)
{
    hk_mem mem = {0};
    hk_addr_limit al;
    hk_al_init(&al, &mem, 2, 3);
    hk_addr_hold h;
    hk_addr a4 = v4(203, 0, 113, 5, 1), m = mapped(203, 0, 113, 5), m2 = mapped(203, 0, 113, 6);
    cr_assert_eq(hk_al_acquire(&al, &a4, &h), HK_AL_OK);
    cr_assert_eq(hk_al_acquire(&al, &m, &h), HK_AL_OK);
    cr_assert_eq(hk_al_address_count(&al, &a4), 2, "the mapped form counts against the IPv4 address");
    cr_assert_eq(hk_al_acquire(&al, &m, &h), HK_AL_ADDRESS);
    cr_assert_eq(hk_al_acquire(&al, &a4, &h), HK_AL_ADDRESS);
    cr_assert_eq(hk_al_acquire(&al, &m2, &h), HK_AL_OK);
    cr_assert_eq(hk_al_prefix_bits(&m2), 24, "a mapped address has the IPv4 /24");
    hk_addr a4b = v4(203, 0, 113, 99, 1);
    cr_assert_eq(hk_al_acquire(&al, &a4b, &h), HK_AL_PREFIX, "the /24 holds three, mapped or not");
    hk_al_free(&al);
}

Test(addr_limit, release_gives_the_slot_back_and_the_memory_follows)
{
    hk_mem mem = {0};
    hk_addr_limit al;
    hk_al_init(&al, &mem, 2, 0);
    enum { N = 3000 };
    static hk_addr_hold h[N][2];
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 2; k++) {
            hk_addr a = v4(10, (uint8_t)(i >> 8), (uint8_t)i, 1, (uint16_t)k);
            cr_assert_eq(hk_al_acquire(&al, &a, &h[i][k]), HK_AL_OK);
        }
    cr_assert_eq(hk_al_entries(&al), N);
    size_t peak = hk_al_bytes(&al);
    cr_assert_eq(mem.bytes, peak, "every byte through the owner's hk_mem");
    hk_addr a0 = v4(10, 0, 0, 1, 5);
    hk_addr_hold extra;
    cr_assert_eq(hk_al_acquire(&al, &a0, &extra), HK_AL_ADDRESS);
    hk_al_release(&al, &h[0][0]);
    cr_assert_eq(h[0][0].addr, HK_AL_NONE);
    hk_al_release(&al, &h[0][0]); /* a second release of the same hold is a no-op */
    cr_assert_eq(hk_al_address_count(&al, &a0), 1);
    cr_assert_eq(hk_al_acquire(&al, &a0, &extra), HK_AL_OK, "the released connection's place is free again");
    hk_al_release(&al, &extra);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 2; k++)
            hk_al_release(&al, &h[i][k]);
    cr_assert_eq(hk_al_entries(&al), 0);
    cr_assert_lt(hk_al_bytes(&al), peak, "the index shrank with the entries");
    /* the pool's records are reused: a second round does not allocate more than the first */
    for (int i = 0; i < N; i++) {
        hk_addr a = v4(10, (uint8_t)(i >> 8), (uint8_t)i, 1, 0);
        cr_assert_eq(hk_al_acquire(&al, &a, &h[i][0]), HK_AL_OK);
    }
    cr_assert_leq(hk_al_bytes(&al), peak);
    hk_al_free(&al);
    cr_assert_eq(mem.bytes, 0);
}

Test(addr_limit, zero_caps_count_nothing)
{
    hk_mem mem = {0};
    hk_addr_limit al;
    hk_al_init(&al, &mem, 0, 0);
    hk_addr_hold h;
    for (int i = 0; i < 1000; i++) {
        hk_addr a = v4(127, 0, 0, 1, (uint16_t)i);
        cr_assert_eq(hk_al_acquire(&al, &a, &h), HK_AL_OK);
    }
    cr_assert_eq(mem.bytes, 0);
    hk_al_release(&al, &h);
    cr_assert_eq(hk_al_acquire(&al, NULL, &h), HK_AL_OK, "no address: not counted");
    hk_al_free(&al);
}

/* ---- the seeder ---- */

static hk_config caps(uint32_t per_addr, uint32_t per_prefix)
{
    hk_config c;
    hk_config_defaults(&c);
    c.max_peers_per_address = per_addr;
    c.max_peers_per_prefix = per_prefix;
    return c;
}

Test(seeder_addr, defaults_and_ranges)
{
    hk_config c;
    hk_config_defaults(&c);
    cr_assert_eq(c.max_peers_per_address, 8);
    cr_assert_eq(c.max_peers_per_prefix, 64);
    c.max_peers_per_address = 0;
    c.max_peers_per_prefix = 0;
    cr_assert_null(hk_config_check(&c), "0 = unlimited");
    c.max_peers_per_address = 10000001;
    cr_assert(hk_config_check(&c) && strstr(hk_config_check(&c), "max_peers_per_address"));
    c.max_peers_per_address = 8;
    c.max_peers_per_prefix = 10000001;
    cr_assert(hk_config_check(&c) && strstr(hk_config_check(&c), "max_peers_per_prefix"));
}

/* One address opening a thousand connections gets 8 of them; every other host still connects. */
Test(seeder_addr, one_address_cannot_take_every_slot)
{
    hk_config c = caps(8, 0);
    c.max_peers = 100;
    harness h;
    h_init(&h, &c);
    cr_assert_eq(h_add_single(&h, 32768, 100000), HK_ADD_OK);
    int accepted = 0;
    for (int i = 0; i < 1000; i++) {
        hk_addr a = v4(127, 0, 0, 1, (uint16_t)(20000 + i));
        accepted += h_accept_from(&h, i, 1u << 20, &a) != NULL;
    }
    cr_assert_eq(accepted, 8);
    hk_stats st = h_stats(&h);
    cr_assert_eq(st.peers, 8);
    cr_assert_eq(st.peers_refused, 992);
    cr_assert_eq(st.refused_per_address, 992);
    cr_assert_eq(st.refused_per_prefix, 0);
    cr_assert_geq(fr_find_log(h.fr, "connection from 127.0.0.1:20008 refused: per-address cap", 0), 0);
    for (int i = 1000; i < 1092; i++)
        cr_assert_not_null(h_accept(&h, i, 1u << 20), "another host (connection %d) is accepted", i);
    cr_assert_eq(h_stats(&h).peers, 100);
    h_free(&h);
}

Test(seeder_addr, prefix_cap_refusals_are_counted_apart)
{
    hk_config c = caps(0, 3);
    harness h;
    h_init(&h, &c);
    cr_assert_eq(h_add_single(&h, 32768, 100000), HK_ADD_OK);
    for (int i = 0; i < 5; i++) {
        hk_addr a = v4(192, 0, 2, (uint8_t)(1 + i), 1);
        cr_assert_eq(h_accept_from(&h, i, 0, &a) != NULL, i < 3, "host %d", i);
    }
    hk_addr a6 = v6(7, 7, 1), b6 = v6(7, 7, 2);
    for (int i = 5; i < 8; i++)
        cr_assert_not_null(h_accept_from(&h, i, 0, &a6));
    cr_assert_null(h_accept_from(&h, 8, 0, &b6));
    hk_stats st = h_stats(&h);
    cr_assert_eq(st.refused_per_prefix, 3);
    cr_assert_eq(st.refused_per_address, 0);
    cr_assert_eq(st.peers_refused, 3);
    cr_assert_geq(fr_find_log(h.fr, "refused: per-prefix cap (3 connections from its /24)", 0), 0);
    cr_assert_geq(fr_find_log(h.fr, "refused: per-prefix cap (3 connections from its /64)", 0), 0);
    h_free(&h);
}

/* Every way a connection ends gives its place back: the backend's close, a protocol error, a timeout, the
 * torrent's removal. */
Test(seeder_addr, every_close_path_releases_the_address)
{
    hk_config c = caps(2, 0);
    harness h;
    h_init(&h, &c);
    cr_assert_eq(h_add_single(&h, 32768, 100000), HK_ADD_OK);
    hk_addr a = v4(127, 0, 0, 1, 1);
    int next = 0;
    /* backend close */
    cr_assert_not_null(h_accept_from(&h, next++, 1u << 20, &a));
    cr_assert_not_null(h_accept_from(&h, next++, 1u << 20, &a));
    cr_assert_null(h_accept_from(&h, next++, 1u << 20, &a));
    h_closed(&h, 0);
    cr_assert_not_null(h_accept_from(&h, next, 1u << 20, &a), "closed by the peer: released");
    int c3 = next++;
    /* protocol error: a bad handshake closes the peer from the core */
    uint8_t junk[68] = "\x13" "NotTheBitTorrentProto";
    h_recv(&h, c3, junk, sizeof junk);
    cr_assert(fr_closed(h.fr, c3));
    cr_assert_not_null(h_accept_from(&h, next, 1u << 20, &a), "closed for a protocol error: released");
    int c4 = next++;
    /* timeout: both open connections never finish their handshake */
    cr_assert_null(h_accept_from(&h, next++, 1u << 20, &a));
    h_advance(&h, c.handshake_timeout + HK_SECONDS(1));
    cr_assert(fr_closed(h.fr, 1) && fr_closed(h.fr, c4));
    cr_assert_eq(h_stats(&h).peers, 0);
    /* torrent removed: its peers are dropped */
    int c5 = next++, c6 = next++;
    cr_assert_not_null(h_accept_from(&h, c5, 1u << 20, &a));
    cr_assert_not_null(h_accept_from(&h, c6, 1u << 20, &a));
    uint8_t res[8] = {0}, hs[WIRE_HANDSHAKE_LEN], id[20] = "-XX0001-abcdefghijkl";
    wire_encode_handshake(hs, res, h.ih, id);
    h_recv(&h, c5, hs, sizeof hs);
    h_recv(&h, c6, hs, sizeof hs);
    cr_assert(hk_seeder_remove_torrent(h.s, h.ih));
    cr_assert(fr_closed(h.fr, c5) && fr_closed(h.fr, c6));
    cr_assert_not_null(h_accept_from(&h, next++, 1u << 20, &a), "dropped with its torrent: released");
    cr_assert_not_null(h_accept_from(&h, next++, 1u << 20, &a));
    cr_assert_null(h_accept_from(&h, next++, 1u << 20, &a));
    hk_stats st = h_stats(&h);
    cr_assert_eq(st.refused_per_address, 3);
    h_free(&h);
}

Test(seeder_addr, unlimited_when_zero)
{
    hk_config c = caps(0, 0);
    harness h;
    h_init(&h, &c);
    hk_addr a = v4(127, 0, 0, 1, 1);
    for (int i = 0; i < 300; i++)
        cr_assert_not_null(h_accept_from(&h, i, 0, &a));
    cr_assert_eq(h_stats(&h).peers_refused, 0);
    h_free(&h);
}
