/* utp_bridge: hekate's uTP transport (BEP 29, accepting side): each accepted uTP connection (core/utp_conn.h) is
 * bridged to a local stream socket whose other end is handed to the listener's accept path, so the seeder sees an
 * ordinary accepted connection from the uTP peer's address (its caps, MSE, everything unchanged).
 *
 * Contract
 * --------
 * hk_utp_bridge_new keeps a table of connections keyed by (peer address and port, our receive connection id),
 * sending through the given UDP port. hk_utp_bridge_input takes one uTP datagram from `from`: a packet of a known
 * connection is processed (returns true); a well-formed ST_SYN that is not a repeat opens a connection (true) when
 * the bounds allow it (opts.max_conns in all, opts.per_address per IP address; opts.libutp_only: only SYNs whose
 * first extension is 2, libutp's) and the socketpair can be made; anything else returns false and the caller applies
 * its own policy (the reset responder, utp_reset.h); so does a SYN whose socketpair would take descriptors numbered
 * opts.fd_cap or more (the listener's descriptor reserve, listener.h). A new connection is one socketpair(AF_UNIX, SOCK_STREAM,
 * non-blocking, close-on-exec): one end goes to accept(arg, fd, from) at once (which owns it from then on), the other
 * is the bridge's:
 *   - bytes read from it go out as ST_DATA; it is read only while the connection's send ring has room (the ring,
 *     opts.conn.send_buffer bytes, is the whole send-side buffer: backpressure reaches the seeder through the socket);
 *   - ST_DATA received is written to it; what the socket does not take waits in a buffer of opts.app_buffer bytes,
 *     and the window advertised to the peer is what is left of it (a full socket stops the peer, never the memory);
 *   - EOF from it sends our ST_FIN; the peer's FIN shuts down its write side; a read or write error, a reset or a
 *     timeout closes both.
 * One ev_timer per connection runs hk_utp_conn_tick at hk_utp_conn_deadline. Each connection's memory is fixed:
 * hk_utp_conn_memory(&opts.conn) + opts.app_buffer + ~200 bytes. At DEBUG level (-v) one line is logged per
 * connection accepted ("utp: connection from ADDR accepted") and one when it ends. hk_utp_bridge_free closes every connection
 * (an ST_RESET to each peer) and frees the table; NULL is a no-op.
 */
#ifndef HEKATE_UTP_BRIDGE_H
#define HEKATE_UTP_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime.h"
#include "udp_port.h"
#include "utp_conn.h"

struct ev_loop;
typedef struct hk_utp_bridge hk_utp_bridge;

typedef void (*hk_utp_accept_fn)(void *arg, int fd, const hk_addr *from);

typedef struct hk_utp_bridge_opts {
    unsigned max_conns;          /* default 512 */
    unsigned per_address;        /* default 8 */
    size_t app_buffer;           /* default 16 KiB: received bytes the local socket did not take yet */
    bool libutp_only;            /* accept only libutp's SYN (default false: every well-formed SYN) */
    uint64_t fd_cap;             /* as the listener's: a socketpair numbered fd_cap or more is refused (0: none) */
    hk_utp_conn_limits conn;
} hk_utp_bridge_opts;

typedef struct hk_utp_bridge_stats {
    uint64_t accepted;           /* connections opened */
    uint64_t refused;            /* SYNs over a bound (or socketpair failed): left to the caller's policy */
    uint64_t active;             /* connections now */
    uint64_t retransmits, timeouts;      /* summed over closed and open connections */
    uint64_t bytes_sent, bytes_received; /* payload */
} hk_utp_bridge_stats;

void hk_utp_bridge_opts_default(hk_utp_bridge_opts *o);
/* NULL on allocation failure. */
hk_utp_bridge *hk_utp_bridge_new(struct ev_loop *loop, hk_udp_port *udp, const hk_utp_bridge_opts *o,
                                 hk_utp_accept_fn accept, void *arg, uint64_t seed);
void hk_utp_bridge_free(hk_utp_bridge *b);
bool hk_utp_bridge_input(hk_utp_bridge *b, const uint8_t *data, size_t len, const hk_addr *from);
void hk_utp_bridge_stats_get(const hk_utp_bridge *b, hk_utp_bridge_stats *s);

#endif
