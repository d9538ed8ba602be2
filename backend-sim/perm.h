/* perm: a pseudo-random permutation of [0, n) without a table (a 4-round Feistel network on the next power of two
 * with cycle walking), so each simulated peer can visit blocks in its own random order in O(1) memory. */
#ifndef HEKATE_SIM_PERM_H
#define HEKATE_SIM_PERM_H

#include <stdint.h>

typedef struct perm {
    uint64_t n;
    unsigned half_bits;
    uint64_t half_mask;
    uint64_t keys[4];
} perm;

void perm_init(perm *p, uint64_t n, uint64_t seed); /* n >= 1 */
uint64_t perm_at(const perm *p, uint64_t i);        /* i < n; a bijection on [0, n) */

#endif
