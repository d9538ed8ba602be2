/* addr_limit: live connections counted per remote address and per prefix (/24 for IPv4, /64 for IPv6), so one
 * host or one network cannot take every connection slot (the per-address caps of hk_config).
 *
 * Contract
 * --------
 * Pure and deterministic: no I/O, no clock, no randomness; all memory through the owner's hk_mem. The index keeps a
 * pointer to the limiter: it must not move between hk_al_init and hk_al_free (it lives inside its owner).
 *
 * - An address is canonicalised first: an IPv4 address (family 4) and an IPv4-mapped IPv6 address (::ffff:a.b.c.d)
 *   are the same host and count against the same /24; any other IPv6 address counts against its /64. The port is
 *   never part of the key.
 * - hk_al_acquire counts one more connection for the address and its prefix, or refuses it when either is already
 *   at its cap (a cap of 0 = unlimited: that count is not kept at all, so with both caps 0 nothing is allocated).
 *   A refused connection changes nothing. The hold it fills names what was counted; hk_al_release (exactly once per
 *   successful acquire, on every close path) takes it back. An entry whose count reaches 0 is removed, so memory
 *   follows the live connections: at most two entries (24 bytes each, plus 4 to 8 bytes of index) per connection
 *   held; the pool only grows (to its high-water mark), the index shrinks with it.
 * - Entries live in a pool of records indexed by the shared info-hash index (core/ih_index.h). Its 20-byte key is
 *   the canonical 16-byte address (or prefix) with each 8-byte half passed through hk_mix64 (a bijection: distinct
 *   addresses keep distinct keys) followed by a kind byte (address or prefix) and three zero bytes. The mixing
 *   matters: ih_index assumes uniform key bytes (SHA-1), and raw addresses from one network differ in few bits.
 */
#ifndef HEKATE_ADDR_LIMIT_H
#define HEKATE_ADDR_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ih_index.h"
#include "mem.h"
#include "runtime.h"

#define HK_AL_NONE UINT32_MAX

/* What one accepted connection holds: the records it counted in (HK_AL_NONE: not counted). */
typedef struct hk_addr_hold {
    uint32_t addr, prefix;
} hk_addr_hold;

#define HK_ADDR_HOLD_NONE ((hk_addr_hold){HK_AL_NONE, HK_AL_NONE})

typedef struct hk_al_entry {
    uint8_t key[20];             /* see the contract; unused while free */
    uint32_t count;              /* connections held; while free: the next free record (HK_AL_NONE ends the list) */
} hk_al_entry;

typedef struct hk_addr_limit {
    hk_ih_index index;           /* key -> record in ents */
    hk_al_entry *ents;
    uint32_t cap, used;          /* records allocated; records ever handed out (the rest are fresh) */
    uint32_t free_head;          /* released records, a list through count */
    uint32_t per_addr, per_prefix; /* caps; 0 = unlimited (not counted) */
    hk_mem *mem;
} hk_addr_limit;

typedef enum hk_al_verdict {
    HK_AL_OK = 0,
    HK_AL_ADDRESS,               /* the address already holds per_addr connections */
    HK_AL_PREFIX,                /* its /24 or /64 already holds per_prefix connections */
    HK_AL_NOMEM,
} hk_al_verdict;

/* An empty limiter with these caps (allocates nothing). */
void hk_al_init(hk_addr_limit *al, hk_mem *mem, uint32_t per_addr, uint32_t per_prefix);
/* Releases everything (outstanding holds become meaningless). */
void hk_al_free(hk_addr_limit *al);

/* Counts a new connection from `a` into *hold. HK_AL_OK, or the reason it is refused (nothing counted, *hold set to
 * HK_ADDR_HOLD_NONE). A NULL address, or a family other than 4 and 6, is accepted and not counted. */
hk_al_verdict hk_al_acquire(hk_addr_limit *al, const hk_addr *a, hk_addr_hold *hold);
/* Takes back what *hold counted and sets it to HK_ADDR_HOLD_NONE (no-op on a hold that counted nothing). */
void hk_al_release(hk_addr_limit *al, hk_addr_hold *hold);

/* Live connections counted for a's address and for its prefix (0 when not counted or the cap is 0). */
uint32_t hk_al_address_count(const hk_addr_limit *al, const hk_addr *a);
uint32_t hk_al_prefix_count(const hk_addr_limit *al, const hk_addr *a);
/* 24 for an IPv4 (or IPv4-mapped) address, 64 for another IPv6 one, 0 for an address that is not counted. */
unsigned hk_al_prefix_bits(const hk_addr *a);
/* Entries in use (addresses + prefixes). */
uint32_t hk_al_entries(const hk_addr_limit *al);
/* Bytes allocated (pool + index). */
size_t hk_al_bytes(const hk_addr_limit *al);

/* "per-address" / "per-prefix" / "out of memory" / "ok". */
const char *hk_al_verdict_name(hk_al_verdict v);

#endif
