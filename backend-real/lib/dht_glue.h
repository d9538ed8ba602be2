/* dht_glue: the DHT node (core/dht.h) on the real backend: its runtime table on libev, the UDP socket it shares with
 * uTP on the listen port (udp_port.h, class HK_UDP_KRPC), bootstrap names resolved without blocking the loop, and
 * the saved state file.
 *
 * Contract
 * --------
 * hk_dht_glue_new creates the node announcing `port` (the TCP listen port, which is also the UDP port: the node
 * announces with implied_port), for the families given (v4, v6), with its own wake-up timer, getrandom(2)
 * randomness and the process log. With state_path, the file (if it exists and parses) gives the node id and the
 * nodes to bootstrap from; an unreadable or corrupt file is logged and ignored. Each bootstrap entry is HOST:PORT
 * ([V6ADDR]:PORT for a literal IPv6 address); names are resolved on the resolver's thread (resolver.h) and every
 * address of a served family becomes a bootstrap address as it arrives; a name that cannot be resolved is logged
 * and skipped. Returns NULL with err filled on a bad bootstrap entry or out of memory.
 * With state_path the state file (id and routing table; written to FILE.tmp then renamed) is written every 10
 * minutes and by hk_dht_glue_free, which then frees everything. NULL is a no-op. At creation an INFO line names
 * the node id, the port and the families.
 */
#ifndef HEKATE_DHT_GLUE_H
#define HEKATE_DHT_GLUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dht.h"

struct ev_loop;
struct hk_udp_port;
typedef struct hk_dht_glue hk_dht_glue;

#define HK_DHT_GLUE_MAX_BOOTSTRAP 16

typedef struct hk_dht_glue_opts {
    uint16_t port;
    bool v4, v6;
    const char *bootstrap[HK_DHT_GLUE_MAX_BOOTSTRAP];
    size_t nbootstrap;
    const char *state_path;            /* NULL: no state file */
    hk_log_level log_level;
} hk_dht_glue_opts;

/* The well-known routers used when no --dht-bootstrap is given. */
extern const char *const hk_dht_default_routers[];

/* Splits "host:port" / "[v6]:port" into host (NUL-terminated, at most hostcap-1 bytes) and port. 0, or -1. */
int hk_dht_parse_hostport(const char *s, char *host, size_t hostcap, uint16_t *port);

hk_dht_glue *hk_dht_glue_new(struct ev_loop *loop, struct hk_udp_port *udp, const hk_dht_glue_opts *o, char *err,
                             size_t errlen);
void hk_dht_glue_free(hk_dht_glue *g);
hk_dht *hk_dht_glue_node(hk_dht_glue *g);
/* Writes the state file now (also done by hk_dht_glue_free). 0, or -1 (logged). */
int hk_dht_glue_save(hk_dht_glue *g);

#endif
