/* udp_port: the UDP socket on the TCP listener's address and port, shared by the protocols that live there.
 *
 * Clients expect UDP on a seeder's listen port: uTP (BEP 29) connection attempts, which hekate answers with a reset
 * so the client falls back to TCP at once (utp_reset.h), and the DHT (BEP 5, KRPC), whose node id other nodes record
 * with this port. One socket serves both; each datagram goes to one handler chosen by its first byte:
 *   'd'                        -> HK_UDP_KRPC (a bencoded dictionary)
 *   (type << 4) | 1, type <= 4 -> HK_UDP_UTP  (a uTP header: version 1, types ST_DATA..ST_SYN)
 *   anything else              -> dropped (counted in dropped_unknown)
 *
 * Contract
 * --------
 * hk_udp_port_new binds a non-blocking, close-on-exec UDP socket to the same family and address as the listener
 * (opts.family / opts.bind_addr as in hk_listener_opts; HK_FAMILY_ANY: dual-stack IPv6 with IPv4 fallback) and to
 * opts.port, which must be the listener's bound port (never 0 in the daemon; tests may pass 0). It returns NULL with
 * err filled ("udp bind [::]:6881: Address already in use") on failure.
 * Receiving: on each readable event it reads at most `batch` datagrams (default 64) into one buffer of
 * HK_UDP_MAX_DATAGRAM bytes (longer datagrams are truncated and dropped, counted in dropped_oversize); a handler
 * gets (data, len, from) and must not keep the pointer after it returns. A class with no handler drops its
 * datagrams (counted in dropped_unhandled). Nothing read is ever buffered: memory does not grow with traffic.
 * Sending: hk_udp_port_send sends one datagram at once; it returns 0 when the kernel took it, -1 when it was dropped
 * (EAGAIN, ENOBUFS, unreachable, wrong family: counted in send_dropped). It never blocks and never queues.
 * hk_udp_port_set_handler replaces the handler of one class (NULL fn: none).
 * hk_udp_port_free stops the watcher and closes the socket; NULL is a no-op.
 */
#ifndef HEKATE_UDP_PORT_H
#define HEKATE_UDP_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "listener.h"
#include "runtime.h"

struct ev_loop;
typedef struct hk_udp_port hk_udp_port;

#define HK_UDP_MAX_DATAGRAM 2048

typedef enum hk_udp_class { HK_UDP_KRPC = 0, HK_UDP_UTP = 1, HK_UDP_CLASSES = 2 } hk_udp_class;

typedef void (*hk_udp_recv_fn)(void *arg, const uint8_t *data, size_t len, const hk_addr *from);

typedef struct hk_udp_port_opts {
    uint16_t port;          /* the listener's bound port (0: the kernel picks one, tests only) */
    hk_family family;
    const char *bind_addr;  /* NULL: the wildcard address of the family; else a numeric IPv4 or IPv6 address */
    unsigned batch;         /* datagrams read per readable event (default 64) */
} hk_udp_port_opts;

typedef struct hk_udp_port_stats {
    uint64_t received[HK_UDP_CLASSES];
    uint64_t sent;
    uint64_t send_dropped;
    uint64_t dropped_unknown;
    uint64_t dropped_unhandled;
    uint64_t dropped_oversize;
} hk_udp_port_stats;

void hk_udp_port_opts_default(hk_udp_port_opts *o);
hk_udp_port *hk_udp_port_new(struct ev_loop *loop, const hk_udp_port_opts *o, char *err, size_t errlen);
void hk_udp_port_free(hk_udp_port *u);
void hk_udp_port_set_handler(hk_udp_port *u, hk_udp_class c, hk_udp_recv_fn fn, void *arg);
int hk_udp_port_send(hk_udp_port *u, const uint8_t *data, size_t len, const hk_addr *to);
uint16_t hk_udp_port_port(const hk_udp_port *u);           /* the bound port */
hk_family hk_udp_port_family(const hk_udp_port *u);        /* HK_FAMILY_V4 or HK_FAMILY_V6 (dual stack) */
void hk_udp_port_stats_get(const hk_udp_port *u, hk_udp_port_stats *s);

#endif
