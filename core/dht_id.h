/* dht_id: BEP 42 node ids ("DHT security extension"): the first 21 bits of the id derive from the node's external
 * IP address (CRC-32C of the masked address and 3 random bits), the last byte is the random byte used.
 *
 * Contract
 * --------
 * Pure functions, no state. hk_dht_id_for writes a secure id for `a` (family 4 or 6) from 20 bytes of the caller's
 * randomness (the caller draws them from the runtime); hk_dht_id_valid says whether `id` is a secure id for `a`.
 * Addresses BEP 42 exempts (local and private ranges: 10/8, 172.16/12, 192.168/16, 169.254/16, 127/8, and IPv6
 * fc00::/7, fe80::/10, ::1) are valid with any id. Families other than 4 and 6: hk_dht_id_for copies rnd, and
 * hk_dht_id_valid returns true.
 */
#ifndef HEKATE_DHT_ID_H
#define HEKATE_DHT_ID_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime.h"

void hk_dht_id_for(const hk_addr *a, const uint8_t rnd[20], uint8_t id[20]);
bool hk_dht_id_valid(const uint8_t id[20], const hk_addr *a);
bool hk_dht_addr_exempt(const hk_addr *a);

#endif
