/* dht_table: the DHT routing table (BEP 5 K-buckets) of one address family, with node liveness.
 *
 * Contract
 * --------
 * Pure: time is passed in, no randomness is drawn here (the owner picks its id and refresh targets with the
 * runtime's randomness). All memory through the owner's hk_mem, bounded: at most HK_DHT_MAX_BUCKETS buckets, each of
 * HK_DHT_K nodes plus HK_DHT_K replacements (about 190 KB at the very most; a few KB in practice).
 *
 * Buckets. Bucket i < nbuckets-1 holds the nodes whose id shares exactly i leading bits with our id; the last bucket
 * holds all the nodes sharing at least nbuckets-1 bits (so it is the one whose range covers our id). A full last
 * bucket is split (nbuckets grows by one) when a node must go in it; other full buckets never split (BEP 5).
 *
 * Liveness (BEP 5): a node is GOOD when it replied to one of our queries in the last 15 minutes, or replied once and
 * queried us in the last 15 minutes; BAD after HK_DHT_BAD_FAILS queries in a row without reply; else QUESTIONABLE.
 * Only nodes that replied to us are ever inserted (hk_dht_table_replied): a query alone never inserts a node, so
 * spoofed sources cannot fill the table. When a node's bucket is full: a bad node is replaced at once; otherwise the
 * newcomer goes into the bucket's replacement cache (newest kept) and the least recently heard questionable node is
 * offered for a ping (the *ping output); when that node then fails enough to become bad, the newest replacement takes
 * its place. Our own id is never inserted. A known id seen from another address keeps its first address (no
 * takeover by a spoofed reply).
 *
 * Return codes: see each function.
 */
#ifndef HEKATE_DHT_TABLE_H
#define HEKATE_DHT_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"
#include "runtime.h"

#define HK_DHT_K 8u
#define HK_DHT_MAX_BUCKETS 160u
#define HK_DHT_BAD_FAILS 2u
#define HK_DHT_GOOD_FOR HK_SECONDS(15 * 60)

typedef enum hk_dht_liveness { HK_DHT_GOOD = 1, HK_DHT_QUESTIONABLE, HK_DHT_BAD } hk_dht_liveness;

typedef struct hk_dht_node {
    uint8_t id[20];
    hk_addr addr;
    hk_time last_reply;        /* 0: never replied (replacements only) */
    hk_time last_query;        /* last query it sent us (0: none) */
    hk_time last_ping;         /* last ping we sent it as a liveness check (0: none) */
    uint8_t fails;             /* our queries it left unanswered, in a row */
} hk_dht_node;

typedef struct hk_dht_bucket {
    hk_dht_node nodes[HK_DHT_K];
    hk_dht_node repl[HK_DHT_K];
    uint8_t n, nrepl;
    hk_time changed;           /* last time a node was added or replied */
} hk_dht_bucket;

typedef struct hk_dht_table {
    uint8_t own[20];
    hk_dht_bucket *buckets;
    uint32_t nbuckets;
    hk_mem *mem;
} hk_dht_table;

/* An empty table for our id (allocates one bucket). 0, or -1 when out of memory. */
int hk_dht_table_init(hk_dht_table *t, hk_mem *mem, const uint8_t own[20]);
void hk_dht_table_free(hk_dht_table *t);

/* The number of leading bits a and b share (0..160). */
unsigned hk_dht_common_bits(const uint8_t a[20], const uint8_t b[20]);
/* <0, 0, >0 as a is closer to target than b, equally close (a == b), or farther (XOR metric). */
int hk_dht_cmp_distance(const uint8_t target[20], const uint8_t a[20], const uint8_t b[20]);
hk_dht_liveness hk_dht_node_liveness(const hk_dht_node *n, hk_time now);

typedef enum hk_dht_insert {
    HK_DHT_INS_UPDATED = 0,    /* known node, refreshed */
    HK_DHT_INS_ADDED,          /* new node in its bucket */
    HK_DHT_INS_REPLACEMENT,    /* bucket full: kept in the replacement cache */
    HK_DHT_INS_IGNORED,        /* our own id, or a known id from another address */
    HK_DHT_INS_NOMEM,
} hk_dht_insert;

/* A node replied to one of our queries. When the result is HK_DHT_INS_REPLACEMENT and ping is not NULL, *ping is
 * set to a questionable node of that bucket that has not been pinged in the last minute (the owner should ping it),
 * and *has_ping says whether there is one. */
hk_dht_insert hk_dht_table_replied(hk_dht_table *t, const uint8_t id[20], const hk_addr *addr, hk_time now,
                                   hk_dht_node *ping, bool *has_ping);
/* A node queried us: refreshes last_query of a known node (same id and address). true when it is known. */
bool hk_dht_table_queried(hk_dht_table *t, const uint8_t id[20], const hk_addr *addr, hk_time now);
/* One of our queries to this node went unanswered. A node that becomes bad is replaced by the newest replacement
 * when there is one (and removed otherwise only when it is bad and another node waits). true when it was known. */
bool hk_dht_table_failed(hk_dht_table *t, const uint8_t id[20], const hk_addr *addr);
/* Records that we pinged a node for liveness (so it is not offered again for a minute). */
void hk_dht_table_pinged(hk_dht_table *t, const uint8_t id[20], hk_time now);
/* True when a node with this id would be added (its bucket has room, holds a bad node, or would split). */
bool hk_dht_table_has_room(const hk_dht_table *t, const uint8_t id[20], hk_time now);

/* The up to `max` nodes closest to target that are not bad, closest first, into out. Returns how many. */
size_t hk_dht_table_closest(const hk_dht_table *t, const uint8_t target[20], hk_time now, hk_dht_node *out,
                            size_t max);
/* The index of a bucket whose `changed` is older than `age` (the least recently changed), or -1. */
int hk_dht_table_stale_bucket(const hk_dht_table *t, hk_time now, hk_time age);
/* Makes *id a random id in bucket b's range: `rnd` gives the free bits (20 bytes of the owner's randomness). */
void hk_dht_table_bucket_target(const hk_dht_table *t, unsigned b, const uint8_t rnd[20], uint8_t id[20]);
/* Marks bucket b as refreshed now (a lookup toward it was started). */
void hk_dht_table_touch_bucket(hk_dht_table *t, unsigned b, hk_time now);

typedef struct hk_dht_table_stats {
    uint32_t nodes, good, questionable, bad, replacements, buckets;
} hk_dht_table_stats;
void hk_dht_table_stats_get(const hk_dht_table *t, hk_time now, hk_dht_table_stats *s);
/* Every node, bucket by bucket (the owner saves them); f returns false to stop. */
void hk_dht_table_each(const hk_dht_table *t, bool (*f)(void *arg, const hk_dht_node *n), void *arg);
size_t hk_dht_table_bytes(const hk_dht_table *t);

#endif
