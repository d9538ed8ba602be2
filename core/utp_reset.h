/* utp_reset: a strict parser of the uTP (BEP 29) header, and a responder that answers the connection attempts
 * (ST_SYN) the uTP transport does not take (over its bounds: backend-real/lib/net/utp_bridge.h, core/utp_conn.h)
 * with an ST_RESET, so a client that dials uTP first (libtorrent and qBittorrent) gives up on uTP at once and
 * connects by TCP, instead of waiting out its uTP connect timeout. (libutp's SYN, Transmission's, is not answered:
 * see hk_utp_respond.)
 *
 * Contract
 * --------
 * Pure and deterministic: no I/O, no clock, no randomness; time is given by the caller (as for token_bucket.h),
 * the reset's seq_nr comes from a splitmix64 stream seeded by the caller. No allocation (the responder is a fixed
 * block, ~21 KiB, owned by the caller).
 *
 * hk_utp_parse reads the 20-byte header (big-endian fields):
 *   0 type<<4 | version, 1 extension, 2-3 connection_id, 4-7 timestamp_microseconds,
 *   8-11 timestamp_difference_microseconds, 12-15 wnd_size, 16-17 seq_nr, 18-19 ack_nr
 * then the extension chain (each: next-extension type, length, `length` bytes), at most HK_UTP_MAX_EXTENSIONS links,
 * each inside the datagram. Returns HK_UTP_OK with *h filled (h->payload_off: where the payload starts), or
 * HK_UTP_SHORT (fewer than 20 bytes), HK_UTP_BAD_VERSION (not 1), HK_UTP_BAD_TYPE (above ST_SYN),
 * HK_UTP_BAD_EXTENSION (a link past the end, or more than HK_UTP_MAX_EXTENSIONS links); *h is then unspecified.
 *
 * hk_utp_reset_for_syn composes the reply to a SYN into out (HK_UTP_HEADER bytes, returned). Both libutp (which
 * matches a reset to the socket whose receive id, or send id, is the packet's connection_id, from the address it
 * dialled) and libtorrent (which requires connection_id == its receive id and ack_nr <= the seq_nr it last sent)
 * accept the reply a listening uTP endpoint would send: in BEP 29, the initiator's SYN carries its receive id and
 * the responder sends with that same id, so connection_id = the SYN's connection_id, ack_nr = the SYN's seq_nr
 * (the SYN is the only packet acknowledged), seq_nr = any (from the stream), timestamp = now in microseconds,
 * timestamp_difference = now - the SYN's timestamp, wnd_size 0, no extension. libutp then reports ECONNRESET to its
 * client (never ECONNREFUSED: it sets the socket's state before testing for SYN_SENT), libtorrent connection_reset;
 * libtorrent retries the same peer by TCP at once.
 *
 * hk_utp_respond takes one datagram from `from` and says whether to reply: it returns HK_UTP_HEADER with out
 * filled (send it back to `from` from the same port), or 0 (send nothing). Only a well-formed ST_SYN is answered,
 * and by default not libutp's (a SYN whose first extension is 2, the extension bits libutp always sends; libtorrent's
 * SYN has none): Transmission (libutp) reports every reset as ECONNRESET, which it does not count as a uTP connect
 * failure, so it would dial uTP again at every retry and never by TCP, whereas after a uTP timeout it marks the peer
 * and retries by TCP (docs/design.md §17). limits.answer_libutp answers them too (counted apart either way);
 * ST_DATA, ST_FIN, ST_STATE and ST_RESET (a reset to us must never be answered: two resetters would ping-pong),
 * and anything malformed, get nothing. The reply (20 bytes) is never larger than the query (at least 20 bytes): no
 * amplification. Replies are rate-bounded, so a forged source address cannot turn hekate into a reflector: one
 * token bucket per source slot (HK_UTP_RATE_SLOTS slots; a source is an IPv4 address or an IPv6 /64, hashed with
 * the seed; sources that share a slot share its bucket) and one global bucket; a SYN beyond either bound gets
 * nothing. Each outcome is counted in the stats.
 */
#ifndef HEKATE_UTP_RESET_H
#define HEKATE_UTP_RESET_H

#include <stddef.h>
#include <stdint.h>

#include "runtime.h"
#include "token_bucket.h"

#define HK_UTP_HEADER 20
#define HK_UTP_MAX_EXTENSIONS 8
#define HK_UTP_RATE_SLOTS 512

enum { HK_UTP_ST_DATA = 0, HK_UTP_ST_FIN = 1, HK_UTP_ST_STATE = 2, HK_UTP_ST_RESET = 3, HK_UTP_ST_SYN = 4 };

typedef enum hk_utp_parse_result {
    HK_UTP_OK = 0,
    HK_UTP_SHORT = -1,
    HK_UTP_BAD_VERSION = -2,
    HK_UTP_BAD_TYPE = -3,
    HK_UTP_BAD_EXTENSION = -4,
} hk_utp_parse_result;

typedef struct hk_utp_header {
    uint8_t type, version, extension;
    uint16_t connection_id;
    uint32_t timestamp_us, timestamp_diff_us, wnd_size;
    uint16_t seq_nr, ack_nr;
    unsigned extensions;         /* links in the extension chain */
    size_t payload_off;          /* bytes of header and extensions */
} hk_utp_header;

hk_utp_parse_result hk_utp_parse(const uint8_t *data, size_t len, hk_utp_header *h);
size_t hk_utp_reset_for_syn(const hk_utp_header *syn, uint32_t now_us, uint16_t seq_nr, uint8_t out[HK_UTP_HEADER]);

typedef struct hk_utp_limits {
    uint64_t per_source_rate, per_source_burst;  /* resets per second and burst for one source slot (default 8, 32) */
    uint64_t global_rate, global_burst;          /* for all sources together (default 1000, 1000) */
    bool answer_libutp;                          /* reset libutp's SYNs too (default false: see the contract) */
} hk_utp_limits;

typedef struct hk_utp_stats {
    uint64_t syn;                /* well-formed ST_SYN received (libutp's included) */
    uint64_t libutp_syn;         /* of which libutp's (first extension 2): unanswered unless answer_libutp */
    uint64_t resets;             /* resets composed (replies to send) */
    uint64_t rate_limited;       /* SYNs not answered: a bucket was empty */
    uint64_t ignored;            /* well-formed, not a SYN: no reply */
    uint64_t malformed;          /* not a uTP header (hk_utp_parse failed) */
} hk_utp_stats;

typedef struct hk_utp_responder {
    hk_token_bucket global;
    hk_token_bucket slots[HK_UTP_RATE_SLOTS];
    uint64_t seed;               /* slot hashing */
    uint64_t seq_state;          /* splitmix64 state for the resets' seq_nr */
    bool answer_libutp;
    hk_utp_stats stats;
} hk_utp_responder;

void hk_utp_limits_default(hk_utp_limits *l);
/* Buckets full at `now`; lim NULL: the defaults (rates and bursts of 0 become 1). */
void hk_utp_responder_init(hk_utp_responder *r, const hk_utp_limits *lim, uint64_t seed, hk_time now);
/* HK_UTP_HEADER with out filled (reply to `from`), or 0: no reply. */
size_t hk_utp_respond(hk_utp_responder *r, const uint8_t *data, size_t len, const hk_addr *from, hk_time now,
                      uint8_t out[HK_UTP_HEADER]);

#endif
