/* sim_dht: a simulated BEP 5 DHT of thousands of simple nodes and a deterministic discrete-event driver of hekate's
 * real DHT node (core/dht.h) joining it, to test announcing at scale: findability of every torrent, churn, loss,
 * the query-rate cap.
 *
 * Contract
 * --------
 * sim_dht_run plays one scenario in simulated time, alone (no SimGrid, like sim_tracker.h: the DHT talks datagrams
 * only, no bandwidth is shared, so an event queue of datagrams, wake-ups, churn steps and probes is the whole world).
 * hekate's node is the production code behind a hk_dht_runtime whose now() is the simulated clock, random_bytes() a
 * PRNG stream seeded by the scenario and udp_send() queues a datagram: nothing calls back into the node from inside
 * an action, datagrams reach it through hk_dht_on_datagram and its wake-up through hk_dht_on_wake, exactly as
 * backend-real/lib/dht_glue.c wires it.
 *
 * The network is a star: every host (hekate and each node) has a link of one-way latency `latency` + U[0, jitter)
 * drawn once per host; a datagram takes the sum of both links' latencies and is lost with probability `loss`
 * (each direction on its own, from the scenario's PRNG).
 *
 * The nodes (sim_dht_node.c): a 20-byte id from the PRNG, a routing table of up to K = 8 contacts per bucket built
 * at start from the ids of the live nodes, a rotating token secret. They answer hekate's KRPC queries (core/krpc
 * encodes and decodes): ping, find_node (the K closest of its contacts), get_peers (a token, and the stored peers
 * or the K closest contacts), announce_peer (stored when the token is the one the node gave that address; kept
 * store_ttl). A node learns hekate when hekate queries it and may then return it in `nodes`.
 * Churn: during [churn_start, churn_start + churn_length) a fraction `churn` of the nodes leaves, evenly spaced, and
 * as many new nodes join (fresh ids, empty stores, a table of live nodes; they take the place of a departed contact
 * in the tables of the nodes they meet). A departed node never answers again and its store is gone.
 * Probes: every probe_every seconds (and at findable_at), for every torrent, an instantaneous iterative get_peers
 * from a random live node (alpha 1, the K closest live nodes asked, at most 64 asked; departed nodes do not answer)
 * says whether some node returns hekate's address for it: the fraction findable over time.
 * The hash (SHA-256) covers every datagram delivered (time, endpoints, bytes) and every probe's count, in order.
 */
#ifndef HEKATE_SIM_DHT_H
#define HEKATE_SIM_DHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_DHT_K 8u

typedef struct sim_dht_cfg {
    uint64_t seed;
    uint32_t nodes;                 /* simulated DHT nodes at start */
    uint32_t torrents;              /* hekate's torrents (random info-hashes: no data needed) */
    double duration;                /* simulated seconds */
    double latency, jitter;         /* per-host link: one-way latency + U[0, jitter) */
    double loss;                    /* per datagram */
    double churn;                   /* fraction of the nodes replaced during the churn window */
    double churn_start, churn_length;
    double store_ttl;               /* how long a node keeps an announced peer */
    double token_rotate;            /* nodes' token secret period (the previous one is still accepted) */
    double probe_every;             /* seconds between findability probes (0: only at findable_at and the end) */
    /* hekate (the core node's configuration) */
    double announce_period;         /* announce_interval */
    uint32_t query_rate, query_burst;
    uint32_t bootstrap;             /* live nodes given to hekate as bootstrap addresses */
    uint32_t max_lookups;
    bool reannounce;                /* false: hekate drops its torrents after its first full round */
    double findable_at;             /* the probe the first expectation looks at (seconds) */
} sim_dht_cfg;

void sim_dht_cfg_default(sim_dht_cfg *c);

typedef struct sim_dht_probe {
    double t;
    uint32_t findable;              /* torrents findable */
    uint32_t alive;                 /* live nodes then */
    uint64_t hekate_queries;        /* queries hekate had sent by then */
} sim_dht_probe;

typedef struct sim_dht_result {
    sim_dht_probe *probes;          /* malloc'd, in time order */
    uint32_t nprobes;
    uint32_t *per_second;           /* queries hekate sent in each simulated second (malloc'd, `seconds` long) */
    uint32_t seconds;
    uint32_t max_rate;              /* max of per_second */
    double max_rate_at;
    uint64_t queries_sent;          /* by hekate (decoded from its datagrams) */
    uint64_t lookups_done, announces_done, announce_peer_sent, announce_peer_ok, lookup_queries;
    uint64_t timeouts, rounds;
    double last_period;
    uint64_t dht_memory, torrent_bytes;
    uint64_t datagrams, lost, to_departed;
    uint64_t node_replies, node_stored, node_bad_token;
    uint64_t events;
    uint32_t departed, joined;
    uint32_t good4;
    uint8_t sha256[32];
} sim_dht_result;

/* 0 on success, -1 (with err) on a bad configuration or out of memory. */
int sim_dht_run(const sim_dht_cfg *cfg, sim_dht_result *out, char *err, size_t errlen);
void sim_dht_result_free(sim_dht_result *r);

/* Whether the file at path is a DHT scenario (has a [dht] section). */
bool sim_dht_is_scenario(const char *path);
/* Entry point of `hekate-sim DHT-SCENARIO.ini [--seed N] [--curve FILE]` (sim_dht_main.c). */
int sim_dht_main(int argc, char **argv);

#endif
