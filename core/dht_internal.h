/* dht_internal: the DHT node's state, shared by its files (dht.c: life, torrents, scheduling, state; dht_rpc.c:
 * transactions, queries in and replies; dht_lookup.c: iterative lookups and announces; dht_store.c: tokens and the
 * announce_peer store). Not a public header. */
#ifndef HEKATE_DHT_INTERNAL_H
#define HEKATE_DHT_INTERNAL_H

#include "dht.h"
#include "dht_table.h"
#include "id_set.h"
#include "ih_index.h"
#include "krpc.h"
#include "mem.h"
#include "token_bucket.h"

#define DHT_ALPHA 3u
#define DHT_RATE_SLOTS 4096u          /* incoming per-address rate table */
#define DHT_SENT_SLOTS 4096u          /* outgoing per-address interval table */
#define DHT_HOUSEKEEP HK_SECONDS(5)
#define DHT_REFRESH_AGE HK_SECONDS(15 * 60)
#define DHT_CACHE_BITS 12u            /* node cache: one node per 12-bit id prefix, per family */
#define DHT_CACHE_SLOTS (1u << DHT_CACHE_BITS)
#define DHT_CACHE_SEED 16u            /* prefixes nearest a lookup's target that seed it */

/* The node cache shared by all lookups: the last node that answered us in each id prefix, so a lookup starts near its
 * target instead of at the routing table's (few, far) nodes. Fixed size; an entry is cleared when its node fails. */
typedef struct dht_cache_slot {
    uint8_t id[20];
    hk_addr addr;                     /* family 0: empty */
} dht_cache_slot;

typedef enum dht_purpose { TX_FREE = 0, TX_PING, TX_LOOKUP, TX_ANNOUNCE } dht_purpose;

typedef struct dht_tx {
    uint8_t purpose;                  /* dht_purpose */
    uint8_t cand;                     /* lookup candidate */
    uint16_t check;                   /* the random half of the transaction id */
    uint16_t lookup;                  /* lookup slot */
    uint16_t gen;                     /* the lookup's generation when sent */
    bool has_id;                      /* pings: the node's id is known (a timeout then counts against it) */
    uint8_t id[20];
    hk_addr to;
    hk_time sent;
} dht_tx;

typedef enum cand_state { C_NEW = 0, C_SENT, C_REPLIED, C_FAILED, C_ANNOUNCED } cand_state;

typedef struct dht_cand {
    uint8_t id[20];
    hk_addr addr;
    uint8_t state;                    /* cand_state */
    bool has_id;                      /* bootstrap addresses have none until they reply */
    uint8_t token_len;
    uint8_t token[KRPC_MAX_TOKEN];
} dht_cand;

typedef enum lookup_kind { LK_NONE = 0, LK_ANNOUNCE, LK_FIND } lookup_kind;

typedef struct dht_lookup {
    uint8_t kind;                     /* lookup_kind */
    uint8_t family;
    bool announcing;                  /* the get_peers phase is over: announce_peer to the closest */
    uint16_t gen;
    uint16_t inflight;
    uint16_t ncand;
    uint16_t announced_ok;
    uint8_t target[20];
    dht_cand cand[HK_DHT_LOOKUP_CANDS];
} dht_lookup;

typedef struct dht_rate_slot {
    uint32_t key;
    uint32_t count;
    hk_time window;
} dht_rate_slot;

typedef struct dht_store_peer {
    uint8_t compact[18];
    uint8_t len;                      /* 6 or 18; 0: empty */
    hk_time expires;
} dht_store_peer;

typedef struct dht_store_rec {
    uint8_t ih[20];
    uint32_t next_free;
    dht_store_peer peers[HK_DHT_STORE_PEERS];
} dht_store_rec;

typedef struct dht_store {
    hk_ih_index index;
    dht_store_rec *recs;
    uint32_t cap, used, free_head, live;
    uint32_t sweep;                   /* next record the sweep looks at */
} dht_store;

struct hk_dht {
    hk_dht_config cfg;
    hk_dht_runtime rt;
    hk_mem mem;
    hk_log_level log_max;
    uint8_t id[20];
    hk_dht_table table4, table6;
    dht_cache_slot *cache4, *cache6;  /* DHT_CACHE_SLOTS each, for the families served (else NULL) */
    /* transactions: a ring in send order (so timeouts come out in order) */
    dht_tx *tx;
    uint32_t tx_head, tx_tail, tx_live;
    /* lookups */
    dht_lookup *lookups;
    uint16_t lookup_gen;
    hk_token_bucket budget;
    dht_rate_slot *in_rate;
    hk_time *sent_at;                 /* per hashed address: when it was last sent a query */
    uint64_t sent_key_seed;
    /* tokens */
    uint8_t secret[2][16];
    hk_time rotate_at;
    /* torrents: the owner's ids (hk_dht_set_torrents), announced in id order; their info-hashes stay the owner's */
    hk_id_set torrents;
    hk_dht_info_hash_fn ih_of;
    void *ih_ctx;
    uint32_t cursor;                  /* the next id the round robin looks at */
    hk_time next_start, round_started;
    /* bootstrap */
    hk_addr boot[HK_DHT_MAX_BOOTSTRAP];
    uint32_t nboot;
    hk_time bootstrap_at, housekeep_at;
    hk_time retry_at;                 /* a lookup waits for the per-node interval of a candidate (NEVER: none) */
    dht_store store;
    hk_dht_stats st;
    bool has_external;
    hk_addr external;
    hk_addr ext_candidate;            /* the address the last replies named, and how many in a row */
    uint32_t ext_votes;
    uint8_t scratch[KRPC_MAX_DATAGRAM];
};

/* dht.c */
hk_time dht_now(const hk_dht *d);
void dht_random(hk_dht *d, void *buf, size_t n);
void dht_logf(const hk_dht *d, hk_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
hk_dht_table *dht_table_for(hk_dht *d, uint8_t family);
/* A reply named our address `ip` (BEP 42): counts the vote, may adopt it and take a secure id. */
void dht_external_vote(hk_dht *d, const hk_addr *ip);
bool dht_serves(const hk_dht *d, uint8_t family);

/* dht_rpc.c */
int dht_tx_init(hk_dht *d);
void dht_tx_free(hk_dht *d);
/* Sends a query; purpose/lookup/cand say where the reply goes. 0 sent, -1 no budget or no slot, -2 skipped (the
 * address was sent a query too recently). */
int dht_send_query(hk_dht *d, const krpc_query *q, const hk_addr *to, dht_purpose purpose, uint16_t lookup,
                   uint8_t cand);
/* A ping (liveness check or verification); id: the node's id when known (NULL: none). */
void dht_send_ping(hk_dht *d, const hk_addr *to, const uint8_t *id);
void dht_expire_tx(hk_dht *d, hk_time now);
hk_time dht_tx_next_timeout(const hk_dht *d);
void dht_on_query(hk_dht *d, const hk_addr *from, const krpc_msg *m, size_t len);
void dht_on_reply(hk_dht *d, const hk_addr *from, const krpc_msg *m);

/* dht_lookup.c */
/* A node answered us (cache_put) or failed to (cache_drop). */
void dht_cache_put(hk_dht *d, const uint8_t id[20], const hk_addr *a);
void dht_cache_drop(hk_dht *d, const uint8_t id[20], const hk_addr *a);
/* Starts a lookup (seeded from the table and, for LK_FIND, the bootstrap list). Its slot, or -1 when none is free. */
int dht_lookup_start(hk_dht *d, lookup_kind kind, uint8_t family, const uint8_t target[20]);
void dht_lookup_step_all(hk_dht *d);
void dht_lookup_replied(hk_dht *d, uint16_t slot, uint16_t gen, uint8_t cand, const krpc_msg *m);
void dht_lookup_failed(hk_dht *d, uint16_t slot, uint16_t gen, uint8_t cand);
void dht_lookup_announce_done(hk_dht *d, uint16_t slot, uint16_t gen, bool ok);
uint32_t dht_lookups_active(const hk_dht *d);
bool dht_lookup_free_slot(const hk_dht *d);
bool dht_lookup_waiting_budget(const hk_dht *d);

/* dht_store.c */
void dht_token_make(const hk_dht *d, const hk_addr *a, unsigned which, uint8_t out[8]);
bool dht_token_ok(const hk_dht *d, const hk_addr *a, const uint8_t *tok, size_t len);
void dht_token_rotate(hk_dht *d);
void dht_store_init(hk_dht *d);
void dht_store_free(hk_dht *d);
/* Stores a peer; false when the store is full (or out of memory). */
bool dht_store_put(hk_dht *d, const uint8_t ih[20], const hk_addr *peer, hk_time now);
/* Writes up to max compact peers of the given length (6 or 18) for ih into out; returns how many. */
uint16_t dht_store_get(hk_dht *d, const uint8_t ih[20], uint8_t len, hk_time now, uint8_t *out, uint16_t max);
void dht_store_sweep(hk_dht *d, hk_time now, uint32_t budget);
/* Admits one incoming query from `from` (per-address rate): true when it may be answered. */
bool dht_rate_admit(hk_dht *d, const hk_addr *from, hk_time now);

#endif
