/* tracker_http: the tracker protocol's pure parts shared by every transport, and the HTTP(S) flavour of it.
 *
 * Contract
 * --------
 * Tracker URLs. hk_tracker_url_parse classifies an announce URL: scheme http, https or udp (case-insensitive), a host
 * (a name of [A-Za-z0-9.-_~] or an IPv6 literal in brackets, 1..253 bytes), an optional port (1..65535; default 80 for
 * http, 443 for https; required for udp), then an optional path and query starting with '/' or '?'. A fragment ('#...')
 * is dropped. User info ('@'), spaces, control bytes and unknown schemes are errors that name the position. The parse
 * records offsets into the caller's string; nothing is copied.
 *
 * Announce URLs (BEP 3). hk_http_announce_url appends the announce parameters to the tracker URL: info_hash and
 * peer_id percent-encoded byte by byte (A-Z a-z 0-9 - . _ ~ kept, every other byte %XX), port, uploaded, downloaded,
 * left, compact=1, numwant, no_peer_id=1, event (started/stopped/completed, omitted for regular announces), key (8 hex
 * digits) and trackerid (percent-encoded) when the tracker gave one. '?' or '&' joins them to the URL's own query.
 * The result is written like snprintf (always NUL-terminated when cap > 0, the full length returned).
 *
 * Replies. hk_http_reply_decode decodes a reply body as strict bencode (core/bencode.h, at most
 * HK_REPLY_MAX_TOKENS values): a dictionary whose `failure reason` (a string) makes it a refusal; otherwise
 * `interval` and `min interval` (integers >= 0, optional), `warning message`, `tracker id` (a string of at most
 * HK_TRACKER_ID_MAX bytes), `complete`, `incomplete` are read when present. Wrong types and negative numbers are errors
 * naming the key; unknown keys (`peers`, `peers6`, ...) are ignored. Texts are copied, truncated to HK_REPLY_TEXT_MAX
 * bytes and made printable (bytes outside 0x20..0x7e become '?'), so they can be logged as they are.
 *
 * No allocation survives a call (the bencode token array is freed before returning). No global state.
 */
#ifndef HEKATE_TRACKER_HTTP_H
#define HEKATE_TRACKER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HK_REPLY_TEXT_MAX 200u     /* bytes kept of a failure reason / warning message */
#define HK_TRACKER_ID_MAX 64u      /* longest tracker id kept (longer is an error) */
#define HK_REPLY_MAX_TOKENS 65536u /* bencode values in a reply (a non-compact peer list of ~13,000 peers) */
#define HK_TRACKER_HOST_MAX 253u

typedef enum hk_tracker_scheme {
    HK_TRACKER_HTTP = 1,
    HK_TRACKER_HTTPS = 2,
    HK_TRACKER_UDP = 3,
} hk_tracker_scheme;

typedef struct hk_tracker_url {
    hk_tracker_scheme scheme;
    uint16_t port;             /* explicit, or the scheme's default */
    bool ipv6_literal;         /* the host was written [v6] (host_* excludes the brackets) */
    size_t host_off, host_len; /* the host in the URL string */
    size_t path_off, path_len; /* path and query ("/announce?x=1"), 0 bytes when absent; fragment excluded */
} hk_tracker_url;

/* 0 and *out filled, or -1 with err saying what is wrong and where. */
int hk_tracker_url_parse(const char *url, hk_tracker_url *out, char *err, size_t errlen);

typedef enum hk_announce_event {   /* numbered as in BEP 15 */
    HK_EVENT_NONE = 0,
    HK_EVENT_COMPLETED = 1,
    HK_EVENT_STARTED = 2,
    HK_EVENT_STOPPED = 3,
} hk_announce_event;

const char *hk_announce_event_name(hk_announce_event e); /* "started", ..., "" for NONE */

typedef struct hk_announce_params {
    uint8_t info_hash[20];
    uint8_t peer_id[20];
    uint16_t port;
    uint64_t uploaded, downloaded, left;
    hk_announce_event event;
    uint32_t key;
    int32_t numwant;                 /* a seeder asks for 0 */
    const uint8_t *tracker_id;       /* NULL when none */
    size_t tracker_id_len;
} hk_announce_params;

/* The announce URL for `base` (a URL hk_tracker_url_parse accepted); see the contract. */
size_t hk_http_announce_url(const char *base, const hk_announce_params *p, char *buf, size_t cap);

/* Percent-encodes n bytes into buf like snprintf (unreserved bytes kept); returns the full length. */
size_t hk_percent_encode(const uint8_t *bytes, size_t n, char *buf, size_t cap);

typedef struct hk_announce_reply {
    bool failed;                         /* `failure reason` present: the tracker refused the announce */
    bool has_warning;
    bool has_tracker_id;
    uint8_t tracker_id_len;
    int64_t interval;                    /* seconds; -1 when absent */
    int64_t min_interval;                /* seconds; -1 when absent */
    int64_t complete, incomplete;        /* -1 when absent */
    char failure[HK_REPLY_TEXT_MAX + 1]; /* printable, NUL-terminated; "" unless failed */
    char warning[HK_REPLY_TEXT_MAX + 1];
    uint8_t tracker_id[HK_TRACKER_ID_MAX];
} hk_announce_reply;

/* 0 and *out filled (a refusal is a successful decode with out->failed), or -1 with err naming the problem. */
int hk_http_reply_decode(const uint8_t *body, size_t len, hk_announce_reply *out, char *err, size_t errlen);

/* Copies n bytes as printable text (see the contract) into buf[cap] (NUL-terminated when cap > 0); "..." marks a
 * cut. Used for every text that comes from a tracker. */
void hk_printable(const uint8_t *bytes, size_t n, char *buf, size_t cap);

#endif
