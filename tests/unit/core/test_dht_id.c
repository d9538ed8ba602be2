/* Unit tests for core/dht_id: CRC-32C's check value, BEP 42's own examples (IPv4 addresses and random bytes with
 * the id prefixes the BEP lists), ids made for an address are valid for it and not for another, exempt ranges. */
#include <criterion/criterion.h>
#include <string.h>

#include "crc32c.h"
#include "dht_id.h"

static hk_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    hk_addr x = { .family = 4, .ip = { a, b, c, d }, .port = 1 };
    return x;
}

Test(dht_id, crc32c_check_value)
{
    cr_assert_eq(hk_crc32c(0, "123456789", 9), 0xE3069283u);
}

Test(dht_id, bep42_examples)
{
    static const struct { uint8_t ip[4]; uint8_t r; uint8_t p[3]; } ex[] = {
        { { 124, 31, 75, 21 }, 1, { 0x5f, 0xbf, 0xbf } },
        { { 21, 75, 31, 124 }, 86, { 0x5a, 0x3c, 0xe9 } },
        { { 65, 23, 51, 170 }, 22, { 0xa5, 0xd4, 0x32 } },
        { { 84, 124, 73, 14 }, 65, { 0x1b, 0x03, 0x21 } },
        { { 43, 213, 53, 83 }, 90, { 0xe5, 0x6f, 0x6c } },
    };
    for (size_t i = 0; i < sizeof ex / sizeof *ex; i++) {
        hk_addr a = v4(ex[i].ip[0], ex[i].ip[1], ex[i].ip[2], ex[i].ip[3]);
        uint8_t rnd[20] = { 0 }, id[20];
        rnd[19] = ex[i].r;
        hk_dht_id_for(&a, rnd, id);
        cr_assert_eq(id[0], ex[i].p[0], "example %zu", i);
        cr_assert_eq(id[1], ex[i].p[1], "example %zu", i);
        cr_assert_eq(id[2] & 0xF8, ex[i].p[2] & 0xF8, "example %zu", i);
        cr_assert_eq(id[19], ex[i].r);
        cr_assert(hk_dht_id_valid(id, &a));
    }
}

Test(dht_id, valid_only_for_its_address_and_exempt_ranges)
{
    hk_addr a = v4(203, 0, 113, 7), b = v4(198, 51, 100, 9);
    uint8_t rnd[20], id[20];
    memset(rnd, 0xA7, sizeof rnd);
    hk_dht_id_for(&a, rnd, id);
    cr_assert(hk_dht_id_valid(id, &a));
    cr_assert_not(hk_dht_id_valid(id, &b));
    hk_addr local = v4(192, 168, 1, 2), lo = v4(127, 0, 0, 1);
    cr_assert(hk_dht_id_valid(rnd, &local), "private ranges are exempt");
    cr_assert(hk_dht_id_valid(rnd, &lo));
    hk_addr six = { .family = 6, .ip = { 0x20, 0x01, 0x0d, 0xb8, 1, 2, 3, 4 } };
    hk_dht_id_for(&six, rnd, id);
    cr_assert(hk_dht_id_valid(id, &six));
    six.ip[7] ^= 0xFF;
    cr_assert_not(hk_dht_id_valid(id, &six));
}
