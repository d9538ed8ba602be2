/* tracker_udp: the UDP tracker protocol (BEP 15): packet codec and the connection-id state machine.
 *
 * Contract
 * --------
 * Requests. hk_udp_connect_request writes the 16-byte connect request (protocol id 0x41727101980, action 0, the
 * transaction id). hk_udp_announce_request writes the 98-byte announce (connection id, action 1, transaction id,
 * info_hash, peer_id, downloaded, left, uploaded, event, ip 0, key, num_want, port), followed by a BEP 41 URLData
 * option carrying the URL's path and query when there is one (in chunks of at most 255 bytes, then EndOfOptions).
 * All integers are big-endian. Transaction ids are chosen by the caller (the announcer draws them from the runtime's
 * randomness).
 *
 * Replies. hk_udp_reply_decode checks a datagram strictly: at least 8 bytes; action 0 (connect: exactly 16 bytes),
 * 1 (announce: 20 bytes then whole peer entries, 6 bytes each over IPv4 and 18 over IPv6 as BEP 15 says, so the
 * family of the socket the reply came on is needed) or 3 (error: the rest is a message, made printable). Anything
 * else is an error naming the offset. Peers are counted, not kept (a seeder asks for none).
 *
 * Connection ids (hk_udp_conn). A tracker's connection id is usable for HK_UDP_CONN_VALIDITY (60 s) after it was
 * received; every announce in that window reuses it. A connect exchange, like an announce, is retransmitted after
 * 15 * 2^n seconds, n starting at 0 and growing after every retransmission up to max_n (at most 8, BEP 15's 3840 s);
 * when the wait for n == max_n runs out as well, the exchange has failed. The state machine only keeps time and
 * state; the caller sends the packets and feeds the replies.
 */
#ifndef HEKATE_TRACKER_UDP_H
#define HEKATE_TRACKER_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime.h"
#include "tracker_http.h"

#define HK_UDP_PROTOCOL_ID 0x41727101980ull
#define HK_UDP_CONNECT_LEN 16u
#define HK_UDP_ANNOUNCE_LEN 98u
#define HK_UDP_ANNOUNCE_MAX (HK_UDP_ANNOUNCE_LEN + 2048u + 2u * 9u + 1u) /* with the longest URLData option */
#define HK_UDP_CONN_VALIDITY HK_SECONDS(60)
#define HK_UDP_MAX_N 8u
#define HK_UDP_ERROR_TEXT_MAX 200u

typedef enum hk_udp_action {
    HK_UDP_ACTION_CONNECT = 0,
    HK_UDP_ACTION_ANNOUNCE = 1,
    HK_UDP_ACTION_SCRAPE = 2,
    HK_UDP_ACTION_ERROR = 3,
} hk_udp_action;

size_t hk_udp_connect_request(uint8_t out[HK_UDP_CONNECT_LEN], uint32_t tid);
/* Writes the announce into out[cap]; returns its length, or 0 if cap is too small. path may be NULL (no option). */
size_t hk_udp_announce_request(uint8_t *out, size_t cap, uint64_t conn_id, uint32_t tid, const hk_announce_params *p,
                               const char *path, size_t path_len);

typedef struct hk_udp_reply {
    hk_udp_action action;
    uint32_t tid;
    uint64_t conn_id;                         /* connect */
    uint32_t interval, leechers, seeders;     /* announce (interval in seconds) */
    uint32_t npeers;                          /* announce: peer entries that followed */
    char message[HK_UDP_ERROR_TEXT_MAX + 1];  /* error */
} hk_udp_reply;

/* family: 4 or 6, the family of the socket the datagram arrived on. 0 and *out, or -1 with err. */
int hk_udp_reply_decode(const uint8_t *buf, size_t len, uint8_t family, hk_udp_reply *out, char *err, size_t errlen);

/* 15 * 2^n seconds, n capped at HK_UDP_MAX_N. */
hk_time hk_udp_timeout(unsigned n);

typedef enum hk_udp_conn_state {
    HK_UDP_CONN_NONE = 0,     /* no connection id and no exchange under way */
    HK_UDP_CONN_CONNECTING,   /* a connect request is out: tid, attempt, deadline */
    HK_UDP_CONN_READY,        /* conn_id usable until valid_until */
} hk_udp_conn_state;

typedef struct hk_udp_conn {
    hk_time deadline;         /* CONNECTING: when to retransmit (or give up) */
    hk_time valid_until;      /* READY: end of the connection id's validity */
    hk_time sent_at;          /* CONNECTING: first transmission of this exchange */
    uint64_t conn_id;
    uint32_t tid;             /* CONNECTING: transaction id of the request out */
    uint8_t state;            /* hk_udp_conn_state */
    uint8_t attempt;          /* CONNECTING: n of the last transmission */
} hk_udp_conn;

void hk_udp_conn_init(hk_udp_conn *c);
/* READY with an id still valid at `now` (a READY id that expired reads as NONE). */
bool hk_udp_conn_usable(const hk_udp_conn *c, hk_time now);
/* Starts an exchange: CONNECTING, attempt 0, deadline now + 15 s; the caller sends the connect with `tid`. */
void hk_udp_conn_start(hk_udp_conn *c, uint32_t tid, hk_time now);
/* The deadline passed. If attempt < max_n: attempt + 1, the new tid, deadline now + 15 * 2^attempt; returns true (the
 * caller retransmits). Otherwise the exchange failed: state NONE, returns false. */
bool hk_udp_conn_timeout(hk_udp_conn *c, uint32_t tid, hk_time now, unsigned max_n);
/* A connect reply with the right tid arrived: READY until now + 60 s. Returns false (and changes nothing) if the
 * state is not CONNECTING or the tid differs. */
bool hk_udp_conn_reply(hk_udp_conn *c, uint32_t tid, uint64_t conn_id, hk_time now);
/* Forget the id (the tracker answered an announce with an error about it, or the address changed). */
void hk_udp_conn_reset(hk_udp_conn *c);

#endif
