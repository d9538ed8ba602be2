/* dht: hekate's mainline DHT node (BEP 5, BEP 32 for IPv6): answers other nodes and announces every public torrent.
 *
 * Contract
 * --------
 * One node per process, a core object with its own runtime table (hk_dht_runtime, core/dht_runtime.h: the shared base
 * plus udp_send) and its own wake-up. It performs no I/O; events come in through hk_dht_on_datagram and hk_dht_on_wake
 * (never from inside an action). Decisions depend only on the calls, rt->now() and rt->random_bytes().
 *
 * Identity. The node id is the config's (restored from a state file) or 20 bytes of the runtime's randomness.
 *   BEP 42: replies carry `ip`, our address as the responder sees it; when HK_DHT_EXTERNAL_VOTES replies in a row
 *   name the same address, it is taken as our external address, and with secure_id an id that is not a secure id
 *   for it (core/dht_id.h; local and private addresses accept any id) is replaced by one that is: the routing
 *   tables are rebuilt around the new id (every node kept), lookups under way go on.
 *
 * Serving other nodes (every query is validated by core/krpc first; a bad one gets error 203, an unknown method 204):
 *   - ping: our id. find_node: the K closest nodes of the table of the querier's family (BEP 32 `want` may ask for
 *     the other family's too). get_peers: a token and the values announce_peer stored for that info-hash, or the K
 *     closest nodes when there are none. announce_peer: accepted only with a token we gave that address in the
 *     last two token periods (the secret rotates every token_rotate, default 5 min, the previous one still accepted);
 *     the peer (the source address, with `port` or, with implied_port, the source port) is stored.
 *   - The store of announced peers is bounded: store_torrents info-hashes, HK_DHT_STORE_PEERS peers each (the
 *     oldest replaced), every entry expiring after store_ttl (default 30 min). A full store refuses new info-hashes.
 *     hekate holds no other values (it does not return itself as a peer).
 *   - Incoming queries are rate-limited per source address (in_rate_per_addr per second, in a fixed-size hashed
 *     table: addresses colliding share a budget); queries over it are dropped unanswered.
 *   - Amplification: a reply is never more than reply_factor times the query's size (nodes6, then values, then
 *     nodes are cut to fit), and at most KRPC_MAX_DATAGRAM bytes.
 *   - A node that queries us enters the routing table only after it answers a ping of ours (sent when its bucket
 *     has room): a query alone never inserts a node.
 *
 * Announcing. Torrents are added by the owner's id (hk_dht_add_torrent: the seeder's torrent id, a dense record
 *   number), or from a parsed .torrent (hk_dht_add_metainfo, which refuses a private one, BEP 27: those are never
 *   announced); the node asks the owner for an id's info-hash when it starts its lookup (hk_dht_set_torrents). Per
 *   torrent the node keeps one bit (an id_set: see hk_dht_stats.torrent_bytes; issue 10: it kept a copy of the
 *   info-hash and an index entry, 25.7 B at 10^6). Torrents are announced in a round robin in id order:
 *   one lookup start every announce_interval / torrents (default 30 min over all of them), so each is re-announced
 *   about every announce_interval, spread evenly; a lookup is an iterative get_peers toward the info-hash (alpha =
 *   3 queries in flight, up to HK_DHT_LOOKUP_CANDS candidates, ending when the K closest have answered or failed),
 *   then announce_peer to the K closest that gave a token (with implied_port, or port = config port). At most
 *   max_lookups run at once. Every query the node sends (lookups, announces, pings, bootstrap, refresh) takes a
 *   token of one global bucket of query_rate per second (default 200) with query_burst; a query to an address
 *   already sent one in the last per_node_interval (default 500 ms) is skipped. When the cap is what limits, lookups
 *   start later than planned and the period grows (hk_dht_stats.last_period) instead of bursting.
 *   The first round starts at creation: torrents added in bulk are not announced in a burst.
 *
 * Routing table upkeep: bootstrap (a find_node lookup toward our own id seeded with the bootstrap addresses and the
 * saved nodes) at start and again every bootstrap_retry while the table holds fewer than K good nodes; a bucket
 * not changed for 15 minutes is refreshed by a find_node lookup toward a random id in its range; the least
 * recently heard questionable node of a full bucket is pinged when a newcomer waits for its place.
 *
 * Transactions: 4-byte transaction ids (a slot number and 16 bits of the runtime's randomness); a reply is
 * accepted only from the address the query went to; a query unanswered after query_timeout (default 4 s) fails.
 *
 * Memory: bounded apart from the torrent list: routing tables (dht_table.h), HK_DHT_MAX_TX transactions,
 * max_lookups lookups, the per-address rate table, the store. A flood of queries allocates nothing.
 *
 * Return codes: see each function.
 */
#ifndef HEKATE_DHT_H
#define HEKATE_DHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bencode.h"
#include "dht_runtime.h"
#include "metainfo.h"

#define HK_DHT_STORE_PEERS 8u
#define HK_DHT_LOOKUP_CANDS 32u
#define HK_DHT_MAX_TX 2048u
#define HK_DHT_MAX_BOOTSTRAP 64u
#define HK_DHT_EXTERNAL_VOTES 4u

typedef struct hk_dht hk_dht;

typedef struct hk_dht_config {
    uint8_t id[20];
    bool has_id;                   /* use id (else a random one) */
    uint16_t port;                 /* the TCP listen port announced */
    bool implied_port;             /* announce with implied_port = 1 (the UDP port is the listen port; default) */
    bool v4, v6;                   /* families served (default v4 only) */
    uint32_t query_rate;           /* queries sent per second, all kinds (default 200) */
    uint32_t query_burst;          /* (default 20) */
    hk_time per_node_interval;     /* min time between two queries to one address (default 500 ms) */
    hk_time announce_interval;     /* target re-announce period (default 1800 s) */
    uint32_t max_lookups;          /* lookups at once (default 16, at most 256) */
    hk_time query_timeout;         /* (default 4 s) */
    uint32_t in_rate_per_addr;     /* incoming queries per second per address (default 20) */
    uint32_t store_torrents;       /* info-hashes kept from announce_peer (default 1024) */
    hk_time store_ttl;             /* (default 30 min) */
    hk_time token_rotate;          /* (default 300 s) */
    uint32_t reply_factor;         /* replies at most this many times the query's size (default 8) */
    hk_time bootstrap_retry;       /* (default 60 s) */
    bool secure_id;                /* BEP 42: take an id derived from our external address once known (default) */
} hk_dht_config;

void hk_dht_config_defaults(hk_dht_config *c);
/* NULL if valid, else a static message naming the bad field. */
const char *hk_dht_config_check(const hk_dht_config *c);

/* A node acting through a copy of *rt. NULL when cfg fails the check, rt lacks a required member, or memory runs
 * out. */
hk_dht *hk_dht_new(const hk_dht_config *cfg, const hk_dht_runtime *rt);
void hk_dht_free(hk_dht *d);
void hk_dht_set_log_level(hk_dht *d, hk_log_level max);
const uint8_t *hk_dht_id(const hk_dht *d);

/* A bootstrap address (router or saved node). 0, or -1 when the list is full (HK_DHT_MAX_BOOTSTRAP) or the family is
 * not served. The next bootstrap uses it; call before the first hk_dht_on_wake to have it used at once. */
int hk_dht_add_bootstrap(hk_dht *d, const hk_addr *a);

typedef enum hk_dht_result {
    HK_DHT_OK = 0,
    HK_DHT_DUPLICATE,        /* add: already there */
    HK_DHT_PRIVATE,          /* add_metainfo: a private torrent (BEP 27), never announced */
    HK_DHT_NOMEM,
    HK_DHT_UNKNOWN,          /* remove: not there */
} hk_dht_result;
/* The owner's info-hash of its torrent id (required before the first hk_dht_add_torrent): called only for an id
 * added and not yet removed, so the owner removes an id from the node before that id's info-hash goes or changes. */
typedef const uint8_t *(*hk_dht_info_hash_fn)(void *ctx, uint32_t id);
void hk_dht_set_torrents(hk_dht *d, hk_dht_info_hash_fn info_hash_of, void *ctx);
/* Announces the owner's torrent id (< HK_ID_SET_MAX, id_set.h): OK, DUPLICATE (already), NOMEM (or id too big). */
hk_dht_result hk_dht_add_torrent(hk_dht *d, uint32_t id);
/* The same from its parsed .torrent: PRIVATE for a private torrent (BEP 27, never announced). */
hk_dht_result hk_dht_add_metainfo(hk_dht *d, uint32_t id, const mi_torrent *mi);
/* Stops announcing id: OK, or UNKNOWN when it was not announced. */
hk_dht_result hk_dht_remove_torrent(hk_dht *d, uint32_t id);
bool hk_dht_has_torrent(const hk_dht *d, uint32_t id);

void hk_dht_on_datagram(hk_dht *d, const hk_addr *from, const uint8_t *bytes, size_t len);
void hk_dht_on_wake(hk_dht *d);

/* State: writes {id, nodes, nodes6} (bencoded, our id and the table's nodes in compact form) into b. */
void hk_dht_save(const hk_dht *d, ben_buf *b);
/* Reads a saved state: *id gets the id (has_id true when present), and every saved node of a served family becomes a
 * bootstrap address of d (when d is not NULL). 0, or -1 when the data is not a saved state. */
int hk_dht_load(hk_dht *d, const uint8_t *data, size_t len, uint8_t id[20], bool *has_id);

typedef struct hk_dht_stats {
    uint32_t torrents;
    uint32_t nodes4, good4, nodes6, good6;
    uint32_t lookups_active;
    uint64_t queries_sent, queries_skipped;     /* skipped: per-node interval */
    uint64_t queries_received, replies_sent, errors_sent, rate_dropped, bad_datagrams;
    uint64_t responses, timeouts, stray;
    uint64_t lookups_started, lookups_done, announces_done; /* announces_done: lookups that announced to >= 1 node */
    uint64_t announce_peer_sent, announce_peer_ok;
    uint64_t announce_peer_received, announce_peer_bad_token;
    uint64_t lookup_queries;                    /* get_peers/find_node sent by lookups */
    uint32_t store_torrents, store_peers;
    hk_time last_period;                        /* duration of the last full round over the torrents (0: none yet) */
    uint64_t rounds;
    uint64_t memory_bytes;                      /* all heap held by the node */
    uint64_t torrent_bytes;                     /* of which per-torrent state (the id set's bits) */
    bool has_external;                          /* our external address is known (BEP 42 `ip` votes) */
    hk_addr external;
    uint32_t id_changes;                        /* ids replaced by a BEP 42 secure id */
} hk_dht_stats;
void hk_dht_stats_get(const hk_dht *d, hk_dht_stats *out);

#endif
