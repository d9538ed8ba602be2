/* merkle: BEP 52's SHA-256 merkle hashing of 16 KiB blocks, for the v2 check of a hybrid torrent's pieces
 * (verify.c; runs on pool threads).
 *
 * Contract
 * --------
 * hk_merkle_init(m, width): a tree of `width` leaves (a power of two, 1..HK_MERKLE_MAX_LEAVES); 0, or -1 when out of
 * memory or width is not allowed (nothing to free then). hk_merkle_update feeds the data in order, in any chunking:
 * every HK_MERKLE_BLOCK bytes become one leaf, SHA-256 of the block. hk_merkle_final hashes the last partial block as
 * it is (not padded), sets the leaves past the data to 32 zero bytes, reduces pairs (SHA-256 of left || right) up to
 * the root, writes it to out and frees m. More data than width blocks, or a failure of libcrypto, makes final return
 * -1 (m freed too); otherwise 0. hk_merkle_free releases an unfinished m. Thread-compatible (one m per thread).
 */
#ifndef HEKATE_MERKLE_H
#define HEKATE_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define HK_MERKLE_BLOCK 16384u
#define HK_MERKLE_MAX_LEAVES (1u << 20)  /* a piece of 16 GiB; metainfo caps pieces at 256 MiB (16,384 leaves) */

typedef struct hk_merkle {
    void *md;                /* EVP_MD_CTX of the block being hashed */
    uint8_t *leaves;         /* width x 32 bytes */
    uint32_t width, n;       /* leaves; leaves done */
    uint32_t fill;           /* bytes of the current block fed so far */
    int failed;
} hk_merkle;

int hk_merkle_init(hk_merkle *m, uint32_t width);
void hk_merkle_update(hk_merkle *m, const uint8_t *p, size_t len);
int hk_merkle_final(hk_merkle *m, uint8_t out[32]);
void hk_merkle_free(hk_merkle *m);

#endif
