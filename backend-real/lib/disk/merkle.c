/* merkle: owns the SHA-256 block tree of BEP 52 (contract in merkle.h): leaves of 16 KiB blocks, zero padding
 * leaves, pairwise reduction to the root. */
#include "merkle.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

int hk_merkle_init(hk_merkle *m, uint32_t width)
{
    memset(m, 0, sizeof *m);
    if (width == 0 || width > HK_MERKLE_MAX_LEAVES || (width & (width - 1)) != 0)
        return -1;
    m->leaves = calloc(width, 32);
    m->md = EVP_MD_CTX_new();
    if (!m->leaves || !m->md || EVP_DigestInit_ex(m->md, EVP_sha256(), NULL) != 1) {
        hk_merkle_free(m);
        return -1;
    }
    m->width = width;
    return 0;
}

void hk_merkle_free(hk_merkle *m)
{
    EVP_MD_CTX_free(m->md);
    free(m->leaves);
    memset(m, 0, sizeof *m);
}

/* The current block's digest into the next leaf; the context ready for the next block. */
static void end_block(hk_merkle *m)
{
    unsigned n = 0;
    if (m->n >= m->width) {
        m->failed = 1; /* more data than the tree holds */
        return;
    }
    if (EVP_DigestFinal_ex(m->md, m->leaves + 32u * m->n, &n) != 1 || n != 32 ||
        EVP_DigestInit_ex(m->md, EVP_sha256(), NULL) != 1)
        m->failed = 1;
    m->n++;
    m->fill = 0;
}

void hk_merkle_update(hk_merkle *m, const uint8_t *p, size_t len)
{
    while (len > 0 && !m->failed) {
        size_t take = HK_MERKLE_BLOCK - m->fill;
        if (take > len)
            take = len;
        if (EVP_DigestUpdate(m->md, p, take) != 1)
            m->failed = 1;
        m->fill += (uint32_t)take;
        p += take;
        len -= take;
        if (m->fill == HK_MERKLE_BLOCK)
            end_block(m);
    }
}

int hk_merkle_final(hk_merkle *m, uint8_t out[32])
{
    if (m->fill > 0 && !m->failed)
        end_block(m);
    /* leaves [n, width) are already zero (calloc) */
    for (uint32_t w = m->width; w > 1 && !m->failed; w /= 2)
        for (uint32_t i = 0; i < w / 2; i++) {
            unsigned n = 0;
            if (EVP_DigestInit_ex(m->md, EVP_sha256(), NULL) != 1 ||
                EVP_DigestUpdate(m->md, m->leaves + 64u * i, 64) != 1 ||
                EVP_DigestFinal_ex(m->md, m->leaves + 32u * i, &n) != 1 || n != 32)
                m->failed = 1;
        }
    int rc = m->failed ? -1 : 0;
    if (rc == 0)
        memcpy(out, m->leaves, 32);
    hk_merkle_free(m);
    return rc;
}
