/* announcer: tells trackers that this seeder serves each torrent, for up to millions of torrents, evenly and politely.
 *
 * Contract
 * --------
 * One announcer per process, a core object separate from the seeder, created with its own runtime table
 * (hk_announcer_runtime, core/announcer_runtime.h: the shared base plus http_get, udp_send and resolve; the backend
 * gives it its own wake-up timer). It performs no I/O. Events come in through the
 * hk_announcer_on_* calls; none may be called from inside an action.
 *
 * What it keeps. Tracker URLs are interned once (a million torrents on one tracker hold one copy of its URL), and so
 * are tracker hosts and whole tier lists (torrents with the same announce-list share one). Per torrent it keeps its
 * info-hash and, per tier, a slot: the due time, the tier's try order (BEP 12: shuffled with the runtime's
 * randomness, the tracker that answers moves to the front), the position in it, the failure count and whether the
 * current tracker has us registered (24 bytes). Due times live in one binary heap of (due, slot) entries (16 bytes
 * each): O(log n) per announce, and sifting touches the heap array only.
 * Requests under way (bounded by the per-host cap, plus those waiting for it) are the only other per-torrent state.
 *
 * Scheduling.
 *   - First announces: a torrent added is not announced at once; at the next wake-up every torrent added since is
 *     given a due time spread evenly (stratified, jittered) over W = min(default_interval, added / start_rate): a
 *     million torrents at start-up or after a reload make no burst, a single new torrent is announced within 1/start_rate s.
 *   - After an answer: due = now + interval (raised to `min interval` when the tracker says so, then kept within
 *     [interval_floor, interval_ceiling]); a tracker that gives no interval gets default_interval. A slot that went
 *     late (it failed, or the pacer held it) draws its next time in [3/4, 5/4] of that interval instead (within min
 *     interval, the floor and the ceiling), so slots that came back together after an outage spread out again.
 *   - On failure (no answer, refusal, bad reply): the next tracker of the tier is tried at once; when every tracker of
 *     the tier failed in a row, the slot backs off: retry_base * 2^(failures - 1), at most retry_max, the delay drawn
 *     uniformly in [d/2, d] (jitter). With all_tiers (default) every tier is announced independently; without, only
 *     the first tier that works is used and a tier whose trackers all fail hands over to the next one (BEP 12).
 *   - Per tracker host (the URL's host name), at most host_inflight announces are in flight; more wait in a FIFO.
 *   - Per tracker host, a pacer (token bucket) lets announces go at most at pace_factor times the host's steady rate
 *     (the (torrent, tier) slots it serves over the last interval it gave, or over default_interval if that is
 *     shorter, and at least start_rate per second), with
 *     pace_burst of allowance; a slot over the rate is moved to its token's time. The even schedule never touches
 *     it; a backlog (after an outage, a reload, a clock jump) drains at the spare rate instead of in a burst.
 *   - An unresponsive tracker (a request went unanswered and nothing at all was heard from that tracker since it
 *     was sent) is not sent more announces: one request at a time probes it (for UDP, the connect exchange with its
 *     BEP 15 retransmissions), the others fail at once and back off; a failed probe delays the next one by
 *     probe_base * 2^k (at most probe_max). When the tracker answers again the backed-off slots come back at their
 *     own, jittered times: an outage ends without a burst.
 *   - Events: `started` on the first announce to a tracker (and again after switching to another tracker of the tier),
 *     none on regular announces, `stopped` on removal and on shutdown to every tracker that has us registered.
 *     Regular announces carry left=0, downloaded=0, compact=1, numwant=0, the session's key, the tracker id the
 *     tracker last gave, and uploaded read through the `uploaded` callback (the seeder's per-torrent counter).
 *   - UDP (BEP 15): one connection id per tracker, reused for its 60 s; transaction ids drawn from the runtime's
 *     randomness; requests retransmitted after 15 * 2^n s, n up to udp_max_n; replies accepted only from the
 *     tracker's own addresses and with a transaction id under way. Names are resolved with rt->resolve (the backend
 *     caches); addresses of the configured family only.
 *   - Removal and shutdown: `stopped` is sent to each tracker that has the torrent registered, once, bounded in time
 *     (stop_timeout after a removal; the deadline given to hk_announcer_shutdown); past that the announce is dropped.
 *
 * Completions. Every http_get gets exactly one hk_announcer_on_http_done (the backend enforces its timeouts), every
 * resolve exactly one hk_announcer_on_resolved. Tokens the announcer no longer knows are ignored.
 *
 * Errors. Tracker replies are parsed strictly (tracker_http.h, tracker_udp.h); a bad reply is a failed announce,
 * logged with the parser's message. Failure reasons and warnings are logged; at most one WARN line per tracker per
 * minute, the rest at DEBUG with a count. Out of memory: the operation fails and says so; nothing is left half-done.
 *
 * Determinism. Decisions depend only on the calls, rt->now() and rt->random_bytes(); ties between equal due times
 * are broken by slot number, which depends only on the call sequence.
 */
#ifndef HEKATE_ANNOUNCER_H
#define HEKATE_ANNOUNCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "histogram.h"
#include "metainfo.h"
#include "announcer_runtime.h"
#include "tracker_http.h"

#define HK_ANN_MAX_TIER_TRACKERS 16u /* trackers used per tier (more are ignored, with a log line) */
#define HK_ANN_MAX_TIERS 32u         /* tiers used per torrent */

typedef struct hk_announcer hk_announcer;

typedef struct hk_announcer_config {
    uint8_t peer_id[20];
    uint16_t port;                 /* the listening port announced */
    uint8_t family;                /* UDP trackers: 0 any address, 4 or 6 only that family */
    bool all_tiers;                /* announce to every tier (default) or only the first tier that works */
    hk_time default_interval;      /* interval before a tracker gives one; first-announce spread (default 1800 s) */
    hk_time interval_floor;        /* shortest interval honoured (default 60 s) */
    hk_time interval_ceiling;      /* longest (default 86400 s) */
    uint32_t start_rate;           /* first announces per second when few torrents are added (default 10) */
    hk_time retry_base;            /* first backoff (default 60 s) */
    hk_time retry_max;             /* backoff cap (default 3600 s) */
    hk_time probe_base;            /* an unresponsive tracker is probed again after probe_base * 2^k (default 15 s) */
    hk_time probe_max;             /* ... at most (default 300 s) */
    uint32_t host_inflight;        /* announces in flight per tracker host (default 512) */
    double pace_factor;            /* announces per host at most pace_factor x its steady rate (default 1.25) */
    hk_time pace_burst;            /* ... with this much burst allowance (default 200 ms of that rate) */
    uint8_t udp_max_n;             /* BEP 15: retransmit after 15 * 2^n s for n = 0 .. udp_max_n (default 8) */
    hk_time stop_timeout;          /* a `stopped` after a removal is given up after this (default 30 s) */
} hk_announcer_config;

void hk_announcer_config_defaults(hk_announcer_config *c);
/* NULL if valid, else a static message naming the bad field. */
const char *hk_announcer_config_check(const hk_announcer_config *c);

/* Bytes uploaded for a torrent (block payload sent), read when an announce is built. */
typedef uint64_t (*hk_uploaded_fn)(void *arg, const uint8_t info_hash[20]);

/* A new announcer acting through a copy of *rt. NULL when cfg fails hk_announcer_config_check, when rt lacks a
 * required member (hk_announcer_runtime_check says which), or when memory runs out. */
hk_announcer *hk_announcer_new(const hk_announcer_config *cfg, const hk_announcer_runtime *rt,
                               hk_uploaded_fn uploaded, void *arg);
/* Frees everything at once (no `stopped`: call hk_announcer_shutdown and let it finish first). */
void hk_announcer_free(hk_announcer *a);
/* Lines above this level are not formatted (default HK_LOG_TRACE). */
void hk_announcer_set_log_level(hk_announcer *a, hk_log_level max);

/* ---- Torrents ---- */
typedef enum hk_ann_result {
    HK_ANN_OK = 0,
    HK_ANN_NO_TRACKERS,      /* no usable tracker URL (none, or all of unsupported schemes): nothing to do */
    HK_ANN_DUPLICATE,
    HK_ANN_NOMEM,
    HK_ANN_STOPPING,         /* after hk_announcer_shutdown */
} hk_ann_result;

/* urls: the tracker URLs grouped by tier, in priority order; tier_sizes[i] URLs in tier i. URLs that do not parse or
 * are repeated are skipped (logged at DEBUG). */
hk_ann_result hk_announcer_add_torrent(hk_announcer *a, const uint8_t info_hash[20], const char *const *urls,
                                       const uint32_t *tier_sizes, uint32_t ntiers);
/* The same from a parsed .torrent (its announce-list, or announce). */
hk_ann_result hk_announcer_add_metainfo(hk_announcer *a, const mi_torrent *mi);
/* Forgets the torrent at once and sends `stopped` to the trackers that have it registered. false if unknown. */
bool hk_announcer_remove_torrent(hk_announcer *a, const uint8_t info_hash[20]);
/* Stops all announcing: `stopped` for every registered (torrent, tracker), until `deadline` at the latest. */
void hk_announcer_shutdown(hk_announcer *a, hk_time deadline);
/* After hk_announcer_shutdown: true once every `stopped` is answered, failed or given up. */
bool hk_announcer_finished(const hk_announcer *a);

/* ---- Events ---- */
void hk_announcer_on_wake(hk_announcer *a);
/* status: the HTTP status of a received reply (body = its bytes), or a negative hk_http_error (body = an error text,
 * not NUL-terminated, possibly empty). */
typedef enum hk_http_error {
    HK_HTTP_ERR_TRANSPORT = -1,  /* connection refused, reset, TLS, DNS, ... */
    HK_HTTP_ERR_TIMEOUT = -2,    /* connect or total timeout */
    HK_HTTP_ERR_TOO_LARGE = -3,  /* the reply exceeded the size cap */
} hk_http_error;
void hk_announcer_on_http_done(hk_announcer *a, uint64_t token, int status, const uint8_t *body, size_t len);
void hk_announcer_on_datagram(hk_announcer *a, const hk_addr *from, const uint8_t *bytes, size_t len);
/* n == 0: the name could not be resolved. */
void hk_announcer_on_resolved(hk_announcer *a, uint64_t token, const hk_addr *addrs, size_t n);

/* ---- Observation ---- */
typedef struct hk_announcer_stats {
    uint32_t torrents, slots, trackers, hosts, tier_lists;
    uint32_t queued;              /* slots waiting for their due time */
    uint32_t in_flight;           /* requests admitted (sent, or waiting for a name or a connection id) */
    uint32_t waiting;             /* requests waiting for their host's cap */
    uint64_t announces;           /* announces sent (HTTP requests, first UDP transmissions), `stopped` included */
    uint64_t ok, refused, failed, skipped;  /* outcomes; skipped: failed at once (tracker unresponsive) */
    uint64_t stopped_sent, stopped_ok, abandoned;
    uint64_t udp_retransmits, udp_connects, stray_datagrams;
    uint64_t paced;               /* announces held back by a host's pacer */
    uint64_t memory_bytes;        /* heap held by the announcer now */
    uint64_t memory_peak;
    /* Announce latency by protocol (HK_TRACKER_HTTP - 1, HTTPS - 1, UDP - 1): from the first transmission of the
     * announce (the HTTP request handed to http_get; the UDP announce datagram, after any connect exchange) to its
     * answer (ok, refused or a bad reply); announces that get no answer are counted in `failed` only. */
    hk_histogram latency[3];
} hk_announcer_stats;

void hk_announcer_stats_get(const hk_announcer *a, hk_announcer_stats *out);

typedef enum hk_slot_state { HK_SLOT_IDLE = 1, HK_SLOT_QUEUED, HK_SLOT_BUSY } hk_slot_state;
typedef struct hk_slot_info {
    hk_slot_state state;
    hk_time due;                  /* QUEUED */
    uint8_t fails, tried, tier_size;
    bool registered;
    const char *url;              /* the tracker in use (valid until the next call) */
    const char *order[HK_ANN_MAX_TIER_TRACKERS]; /* the tier's order, front first (tier_size entries); url is
                                                    order[position in use] */
} hk_slot_info;
/* false if the torrent or tier is unknown. */
bool hk_announcer_slot_info(const hk_announcer *a, const uint8_t info_hash[20], uint32_t tier, hk_slot_info *out);

typedef struct hk_tracker_info {
    hk_tracker_scheme scheme;
    bool unresponsive;
    bool probing;
    uint8_t udp_state;            /* hk_udp_conn_state */
    hk_time probe_after;
    uint32_t host_in_flight;
    uint32_t host_waiting;
    uint32_t refs;                /* tier lists and requests using it */
} hk_tracker_info;
bool hk_announcer_tracker_info(const hk_announcer *a, const char *url, hk_tracker_info *out);

#endif
