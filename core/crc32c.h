/* crc32c: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI, ext4 and BEP 42; one
 * implementation shared by the resume state's checksum (resume_state.h) and the DHT's secure node ids (dht_id.h).
 *
 * Contract: hk_crc32c(crc, buf, len) returns the CRC-32C of len bytes of buf continuing from crc (0 to start; feed
 * the result back to continue over more bytes: the CRC of A then B equals hk_crc32c(hk_crc32c(0, A), B)). Pure,
 * table-driven (slicing by 8), any alignment. "123456789" gives 0xE3069283.
 */
#ifndef HEKATE_CRC32C_H
#define HEKATE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t hk_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
