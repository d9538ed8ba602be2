/* leech_mse: the leecher's side of MSE/PE (internal to leech/): the initiator's handshake with the BitTorrent
 * handshake as its initial payload, then the selected cipher on every byte both ways. leech.c calls it; nothing else
 * does.
 *
 * Contract
 * --------
 * Over the link of mse_link.h (the part hekate-sim's peers share). lk_send() is the one way BitTorrent bytes leave a peer: straight to io.send without MSE, dropped while the MSE
 * handshake is pending, RC4-encrypted after it when RC4 was selected. lk_mse_start() begins the handshake (Ya and
 * PadA go out at once). lk_mse_feed() takes the seeder's bytes while the handshake is pending and returns how many
 * were the handshake's (the rest is the BitTorrent stream, to pass through lk_mse_link_decrypt()); -1 when it failed.
 * Nothing fails except out of memory, which aborts.
 */
#ifndef HEKATE_LEECH_MSE_H
#define HEKATE_LEECH_MSE_H

#include "leech.h"

/* splitmix64: the leecher's one pseudo-random generator (flooder draws, MSE keys and pads) */
static inline uint64_t lk_splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void lk_send(lk_peer *l, const uint8_t *b, size_t n);
void lk_mse_start(lk_peer *l, const uint8_t *hs, size_t hl);
long lk_mse_feed(lk_peer *l, const uint8_t *p, size_t n);

#endif
