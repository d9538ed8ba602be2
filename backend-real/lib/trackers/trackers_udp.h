/* trackers_udp: the UDP sockets the announcer talks to UDP trackers through (BEP 15), on the libev loop.
 *
 * Contract
 * --------
 * One socket per address family, opened on first use: IPv4 bound to 0.0.0.0:0, IPv6 bound to [::]:0 with
 * IPV6_V6ONLY (an ephemeral port each; trackers reply to the sender's address). Sockets are non-blocking and
 * close-on-exec. hk_udp_trackers_send sends one datagram without blocking: a full socket buffer or an unreachable
 * network drops it (UDP; the announcer retransmits) and is counted. Every datagram received, up to
 * HK_UDP_TRACKERS_MAX_DATAGRAM bytes (longer ones are truncated and dropped), is handed to the callback with its
 * sender; at most 64 are read per readable event so one busy socket cannot starve the loop. ICMP errors reported on
 * the socket (ECONNREFUSED) are ignored.
 */
#ifndef HEKATE_TRACKERS_UDP_H
#define HEKATE_TRACKERS_UDP_H

#include <stddef.h>
#include <stdint.h>

#include "runtime.h"

#define HK_UDP_TRACKERS_MAX_DATAGRAM 4096

struct ev_loop;
typedef struct hk_udp_trackers hk_udp_trackers;

typedef void (*hk_udp_recv_fn)(void *arg, const hk_addr *from, const uint8_t *bytes, size_t len);

hk_udp_trackers *hk_udp_trackers_new(struct ev_loop *loop, hk_udp_recv_fn cb, void *arg);
/* 0 if handed to the kernel, -1 if dropped (errno set). */
int hk_udp_trackers_send(hk_udp_trackers *u, const hk_addr *to, const uint8_t *bytes, size_t len);
void hk_udp_trackers_free(hk_udp_trackers *u);

typedef struct hk_udp_trackers_stats {
    uint64_t sent, send_errors, received, truncated;
    uint16_t port4, port6;       /* local ports (0: socket not open) */
} hk_udp_trackers_stats;
void hk_udp_trackers_stats_get(const hk_udp_trackers *u, hk_udp_trackers_stats *out);

#endif
