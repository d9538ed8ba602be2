/* utp_conn: one uTP (BEP 29) connection's state machine: the reliable, ordered byte stream both ways over datagrams.
 * hekate uses the accepting side (a peer's ST_SYN); the dialling side exists for the tests and the fuzz target.
 *
 * Contract
 * --------
 * Pure: no I/O, no clock, no randomness. Time (`now`, nanoseconds, monotonic) and the initial sequence number come
 * from the caller; datagrams leave through ops->send, received bytes through ops->deliver. One allocation per
 * connection (hk_utp_conn_new: the struct plus a send ring of lim->send_buffer bytes; out-of-order packets are held
 * in at most lim->reorder_slots slots of HK_UTP_MAX_PAYLOAD bytes, allocated with the connection too): memory per
 * connection is fixed, whatever the peer sends.
 *
 * Connection ids (BEP 29): the initiator's SYN carries its receive id X; it sends with X + 1. The acceptor receives on
 * X + 1 and sends with X. hk_utp_conn_accept answers the SYN with an ST_STATE (ack_nr = the SYN's seq_nr, seq_nr =
 * isn, which our first ST_DATA reuses: a STATE never consumes a sequence number) and is CONNECTED at once.
 *
 * Receiving (hk_utp_conn_input, a datagram already addressed to this connection): ST_DATA in order is passed to
 * ops->deliver (never more than ops->room said the application can take; a packet that does not fit is dropped,
 * unacknowledged, and the peer resends it), early packets (up to reorder_slots ahead) are held and delivered when the
 * gap fills, duplicates and late packets are acknowledged again. Every ST_DATA and ST_FIN is answered by an ST_STATE
 * (ack_nr = the last in-order seq_nr; wnd_size = room minus what the reorder slots hold). An ST_FIN ends the peer's
 * stream once everything before it arrived: ops->deliver(NULL, 0) once (EOF). ST_RESET closes the connection
 * (HK_UTP_CLOSED_RESET). The selective-ack extension (BEP 29, type 1) is not sent; received, it marks the packets
 * the peer holds, and a packet with three marked ones after it is resent at once (at most 4 per ack; a packet already
 * resent waits for the timeout), and cwnd halves once per loss episode.
 *
 * Sending: hk_utp_conn_write copies up to hk_utp_conn_writable() bytes into the send ring and returns how many it
 * took (the caller's backpressure: never more than the ring holds). Bytes go out in ST_DATA packets of at most
 * HK_UTP_MAX_PAYLOAD bytes while the bytes in flight stay under min(the peer's wnd_size, cwnd) (one packet is always
 * allowed when nothing is in flight; with a zero window, one packet after rto probes it).
 * Acknowledged bytes leave the ring. hk_utp_conn_shutdown queues an ST_FIN after the data.
 * Congestion control: LEDBAT (BEP 29) with loss response. The queuing delay is the peer's timestamp_difference
 * above the least one seen in the last one to two minutes; slow start from 2 packets (doubling per rtt) until
 * ssthresh or a queuing delay over 50 ms; then cwnd moves by at most one packet per window, up while the queuing
 * delay is under the 100 ms target and down above it; on three duplicate ACKs the oldest packet is resent (fast
 * retransmit) and cwnd halves; on a timeout cwnd drops to one packet. Timeout per BEP 29: rto = rtt + 4 * rtt_var, at least 500 ms (1 s before any sample), doubled
 * at each consecutive timeout up to 8 s; HK_UTP_MAX_TIMEOUTS consecutive timeouts close the connection (HK_UTP_CLOSED_TIMEOUT).
 * No packet at all from the peer for lim->idle_timeout closes it too (libutp sends a keep-alive every 29 s), and an
 * accepted connection that hears nothing after the SYN closes after 10 s (a forged SYN holds its slot no longer).
 *
 * Closing: the connection is CLOSED (hk_utp_conn_state) after a reset, a timeout (HK_UTP_MAX_TIMEOUTS: an ST_RESET
 * is sent then), or once our FIN is acknowledged and the peer's FIN arrived (or, ours acknowledged, when the peer
 * has been quiet for 30 s); ops->closed(why) is called once then. hk_utp_conn_reset sends an ST_RESET and closes.
 * hk_utp_conn_tick(now) runs the timers; hk_utp_conn_deadline says when it must next run (UINT64_MAX: never).
 * No callback may free the connection; free it (hk_utp_conn_free) after the call that closed it returns.
 */
#ifndef HEKATE_UTP_CONN_H
#define HEKATE_UTP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime.h"
#include "utp_reset.h"

#define HK_UTP_MAX_PAYLOAD 1400
#define HK_UTP_MAX_PACKET (HK_UTP_HEADER + HK_UTP_MAX_PAYLOAD)
#define HK_UTP_MAX_TIMEOUTS 6
#define HK_UTP_MAX_INFLIGHT 256       /* packets sent and not yet acknowledged */

typedef enum hk_utp_state {
    HK_UTP_SYN_SENT = 0,
    HK_UTP_CONNECTED = 1,
    HK_UTP_CLOSED = 2,
} hk_utp_state;

typedef enum hk_utp_close_reason {
    HK_UTP_CLOSED_DONE = 0,      /* both FINs exchanged */
    HK_UTP_CLOSED_RESET = 1,     /* an ST_RESET from the peer, or hk_utp_conn_reset */
    HK_UTP_CLOSED_TIMEOUT = 2,   /* too many retransmission timeouts, or idle */
} hk_utp_close_reason;

typedef struct hk_utp_conn_ops {
    void (*send)(void *ctx, const uint8_t *pkt, size_t len);        /* one datagram to the peer */
    void (*deliver)(void *ctx, const uint8_t *data, size_t len);    /* in-order bytes (len <= room); NULL: EOF */
    size_t (*room)(void *ctx);                                       /* bytes the application can take now */
    void (*closed)(void *ctx, hk_utp_close_reason why);
} hk_utp_conn_ops;

typedef struct hk_utp_conn_limits {
    size_t send_buffer;          /* bytes of the send ring (default 128 KiB; at least 2 packets) */
    unsigned reorder_slots;      /* early packets held (default 16, at most 64) */
    hk_time idle_timeout;        /* default 120 s */
} hk_utp_conn_limits;

typedef struct hk_utp_conn_stats {
    uint64_t packets_sent, packets_received;
    uint64_t retransmits, fast_retransmits, timeouts;
    uint64_t bytes_sent, bytes_delivered;        /* payload: first transmissions; delivered in order */
    uint64_t dropped_no_room, dropped_out_of_window, duplicates;
    uint64_t cwnd;                               /* now, bytes */
    uint32_t queuing_delay_us;                   /* LEDBAT's last measure */
} hk_utp_conn_stats;

typedef struct hk_utp_conn hk_utp_conn;

void hk_utp_conn_limits_default(hk_utp_conn_limits *l);
/* NULL on allocation failure. lim NULL: the defaults. */
hk_utp_conn *hk_utp_conn_new(const hk_utp_conn_limits *lim, const hk_utp_conn_ops *ops, void *ctx);
void hk_utp_conn_free(hk_utp_conn *c);

/* Acceptor: syn must be a parsed ST_SYN (hk_utp_parse). Sends the ST_STATE; the connection is CONNECTED. */
void hk_utp_conn_accept(hk_utp_conn *c, const hk_utp_header *syn, uint16_t isn, hk_time now);
/* Initiator (tests): sends an ST_SYN with connection_id recv_id; CONNECTED on the peer's ST_STATE. */
void hk_utp_conn_connect(hk_utp_conn *c, uint16_t recv_id, uint16_t isn, hk_time now);

/* A datagram for this connection (its connection_id is ours, or a repeated SYN): processed, answered. Returns 0, or
 * -1 when it is not a uTP packet (hk_utp_parse failed) or not for this connection (ignored). */
int hk_utp_conn_input(hk_utp_conn *c, const uint8_t *data, size_t len, hk_time now);
size_t hk_utp_conn_writable(const hk_utp_conn *c);      /* free bytes in the send ring (0 once shut down/closed) */
size_t hk_utp_conn_write(hk_utp_conn *c, const uint8_t *data, size_t len, hk_time now);  /* bytes taken */
void hk_utp_conn_shutdown(hk_utp_conn *c, hk_time now); /* FIN after the queued bytes */
void hk_utp_conn_reset(hk_utp_conn *c, hk_time now);    /* ST_RESET, then CLOSED */
void hk_utp_conn_tick(hk_utp_conn *c, hk_time now);
hk_time hk_utp_conn_deadline(const hk_utp_conn *c);

hk_utp_state hk_utp_conn_state(const hk_utp_conn *c);
uint16_t hk_utp_conn_recv_id(const hk_utp_conn *c);     /* the connection_id of the peer's packets */
size_t hk_utp_conn_unacked(const hk_utp_conn *c);       /* bytes in the ring (unsent + in flight) */
bool hk_utp_conn_peer_eof(const hk_utp_conn *c);
void hk_utp_conn_stats_get(const hk_utp_conn *c, hk_utp_conn_stats *s);
size_t hk_utp_conn_memory(const hk_utp_conn_limits *lim);  /* bytes one connection allocates */

#endif
