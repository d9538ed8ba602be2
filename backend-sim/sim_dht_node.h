/* sim_dht_node: the simulated DHT's nodes (see sim_dht.h): ids, addresses, routing tables, the store of announced
 * peers, answering KRPC queries, churn (leave / join) and the instantaneous probe lookup.
 *
 * Contract: pure memory (no SimGrid, no clock, no I/O); every random choice comes from the net's PRNG, so the same
 * seed gives the same nodes. Node i has the address 10.(i >> 16).(i >> 8).(i) port 6881; hekate's address is given
 * at creation. Return codes per function. */
#ifndef HEKATE_SIM_DHT_NODE_H
#define HEKATE_SIM_DHT_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prng.h"
#include "runtime.h"

typedef struct sim_node {
    uint8_t id[20];
    bool alive, knows_hekate;
    uint32_t *contacts;             /* node indexes */
    uint32_t ncontacts, cap;
} sim_node;

typedef struct sim_store_entry {
    uint32_t node_plus1;            /* 0: empty slot */
    uint8_t ih[20];
    uint64_t expires;               /* ns */
    hk_addr peer;
} sim_store_entry;

typedef struct sim_net {
    sim_node *n;
    uint32_t count, live, used;     /* slots, live nodes, slots ever used (joins take the next) */
    prng r;
    hk_addr hekate;
    uint8_t hekate_id[20];
    bool hekate_id_known;
    sim_store_entry *store;
    size_t store_cap, store_used;   /* cap a power of two */
    uint64_t secret[2];             /* token secrets: current, previous */
    uint64_t store_ttl;             /* ns */
    uint64_t replies, stored, bad_token, store_full;
} sim_net;

/* Nodes [0, nodes) live with tables built from each other, `spare` more slots for joins. 0, or -1 out of memory. */
int sim_net_init(sim_net *net, uint32_t nodes, uint32_t spare, uint64_t seed, const hk_addr *hekate,
                 uint64_t store_ttl, size_t store_cap);
void sim_net_free(sim_net *net);

void sim_net_addr(uint32_t i, hk_addr *out);
/* The node index of a 10.x.y.z:6881 address, or -1 when none. */
long sim_net_index(const sim_net *net, const hk_addr *a);

/* Node i handles a datagram from hekate at time now: the reply (if any) is written to out (cap bytes); returns its
 * length, 0 for none. */
size_t sim_node_handle(sim_net *net, uint32_t i, const uint8_t *data, size_t len, uint64_t now, uint8_t *out,
                       size_t cap);
void sim_net_rotate_tokens(sim_net *net);

/* Churn: a random live node leaves (its index, or -1 when none is left); a new node joins (its index, or -1 when
 * no slot is left or out of memory). */
long sim_net_leave(sim_net *net);
long sim_net_join(sim_net *net);

/* A random live node's lookup of ih: true when a live node it reaches stores hekate's address for ih. */
bool sim_net_probe(sim_net *net, const uint8_t ih[20], uint64_t now);

#endif
