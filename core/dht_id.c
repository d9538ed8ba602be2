/* dht_id: BEP 42 secure node ids from an external address (contract in dht_id.h). */
#include "dht_id.h"

#include <string.h>

#include "crc32c.h"

bool hk_dht_addr_exempt(const hk_addr *a)
{
    const uint8_t *ip = a->ip;
    if (a->family == 4)
        return ip[0] == 10 || ip[0] == 127 || (ip[0] == 172 && (ip[1] & 0xF0) == 16) ||
               (ip[0] == 192 && ip[1] == 168) || (ip[0] == 169 && ip[1] == 254);
    if (a->family == 6) {
        static const uint8_t loop[16] = { [15] = 1 };
        return (ip[0] & 0xFE) == 0xFC || (ip[0] == 0xFE && (ip[1] & 0xC0) == 0x80) || memcmp(ip, loop, 16) == 0;
    }
    return true;
}

/* The 32-bit CRC of the masked address with the 3 random bits r in its top bits. */
static uint32_t prefix_crc(const hk_addr *a, uint8_t r)
{
    static const uint8_t m4[4] = { 0x03, 0x0f, 0x3f, 0xff };
    static const uint8_t m6[8] = { 0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff };
    uint8_t buf[8];
    size_t n = a->family == 4 ? 4 : 8;
    for (size_t i = 0; i < n; i++)
        buf[i] = a->ip[i] & (n == 4 ? m4[i] : m6[i]);
    buf[0] |= (uint8_t)((r & 7) << 5);
    return hk_crc32c(0, buf, n);
}

void hk_dht_id_for(const hk_addr *a, const uint8_t rnd[20], uint8_t id[20])
{
    memcpy(id, rnd, 20);
    if (a->family != 4 && a->family != 6)
        return;
    uint8_t r = rnd[19];
    uint32_t crc = prefix_crc(a, r);
    id[0] = (uint8_t)(crc >> 24);
    id[1] = (uint8_t)(crc >> 16);
    id[2] = (uint8_t)(((crc >> 8) & 0xF8) | (rnd[2] & 7));
    id[19] = r;
}

bool hk_dht_id_valid(const uint8_t id[20], const hk_addr *a)
{
    if ((a->family != 4 && a->family != 6) || hk_dht_addr_exempt(a))
        return true;
    uint32_t crc = prefix_crc(a, id[19]);
    return id[0] == (uint8_t)(crc >> 24) && id[1] == (uint8_t)(crc >> 16) &&
           (id[2] & 0xF8) == (uint8_t)((crc >> 8) & 0xF8);
}
