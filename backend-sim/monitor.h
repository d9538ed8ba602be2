/* monitor: the backend's independent reading of what the core sends on each connection — message framing
 * (handshake, length prefixes, fixed lengths per id), piece messages whose data must be exactly the extent of the
 * torrent they name, the choke state (unchoked count and its maximum, observed at send time) and the room the core
 * was granted (large messages beyond it are counted). It never trusts the core's own counters.
 *
 * Contract
 * --------
 * One sim_monitor per connection (zeroed: expecting the handshake), fed in send order with every byte segment
 * (monitor_bytes) and every extent (monitor_extent) the core hands to send(). Nothing is returned: what it finds
 * goes to the seeder's counters (monitor_errors, extent_mismatch, room_overruns, unchoked_now/max, blocks_sent), to
 * the connection's timing fields (first unchoke, first choke after it) and to "error ..." lines of the event log.
 * After the first framing error a stream is no longer checked (mon.broken). No SimGrid call, no allocation.
 */
#ifndef HEKATE_SIM_MONITOR_H
#define HEKATE_SIM_MONITOR_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime.h"

struct sim_world;

typedef struct sim_monitor {
    uint8_t state;               /* framing state */
    uint8_t id;
    uint32_t need;               /* bytes left in the current unit */
    uint8_t hdr[13];
    uint32_t have;
    uint64_t piece_off;          /* torrent offset the next piece data byte must come from */
    bool unchoked;
    bool broken;                 /* framing error seen: stop checking this stream */
} sim_monitor;

/* Core-owned bytes sent on c (message headers and bodies; never piece data). */
void monitor_bytes(struct sim_world *w, hk_conn *c, const uint8_t *p, uint32_t len);
/* An extent sent on c: the data of the piece message whose header came last, or metadata bytes of a message body. */
void monitor_extent(struct sim_world *w, hk_conn *c, const hk_extent *ext);

#endif
