/* announcer_internal: the announcer's records and the functions its files share (announcer.c: events, the loop,
 * management and observation; announcer_request.c: one request's life, HTTP side, outcomes and the pacer;
 * announcer_udp.c: the BEP 15 side of a request: connection ids, name resolution, retransmissions, datagrams;
 * announcer_intern.c: interned trackers, hosts, tier lists and transaction ids; announcer_index.c: growable arrays,
 * the due-time slot heap, slot runs, tier order and the torrents-by-info-hash index). Not a public header: only
 * core/announcer*.c include it.
 *
 * Records and their invariants
 * ----------------------------
 * Records live in growable arrays and refer to each other by index (AN_NONE = none), never by pointer, so an array
 * may move when it grows. The exceptions are trackers and requests: each is allocated on its own and found through
 * an index-addressed pointer table (NULL = free index) with a generation per index, so a token (gen << 32 | index)
 * handed to the backend never matches a later record at the same index.
 *
 * - Torrent (an_torrent, a->torrents): TOR_LIVE while added; its ntiers slots are the run
 *   [first_slot, first_slot + ntiers); tierset is its interned tier list (free record: the next free torrent).
 *   Every live torrent is in a->by_ih exactly once (a->by_ih.count == live_torrents). TOR_PENDING: added since the
 *   last wake-up and not given a first due time yet (then it is in a->pending).
 * - Slot (an_slot, a->slots): one (torrent, tier). State FREE (in a run of free_runs[n]; link = next free run),
 *   IDLE, QUEUED (link = its position in a->heap, and heap[link].slot is the slot) or BUSY (link = the request
 *   that is announcing it, whose `slot` is this slot). order holds the tier's try order, a nibble per tracker.
 * - Heap (a->heap): a binary min-heap of (due, slot) ordered by due then slot number; it holds exactly the QUEUED
 *   slots. heap_cap >= nslots always (reserved when slots grow), so queuing never fails.
 * - Tier list (an_tierset, a->sets): interned; refs = torrents using it (plus a temporary one during a removal).
 *   It holds one reference on each of its trackers. Chained in set_buckets by its hash.
 * - Tracker (an_tracker, a->trackers[]): interned by URL; refs = tier lists + requests using it (plus temporary
 *   ones held across calls that may drop the last). It holds one reference on its host. Chained in tr_buckets.
 *   wait_head/tail: the requests waiting for its UDP connection id (chained through an_req.next).
 * - Host (an_host, a->hosts): interned by lower-cased name; refs = its trackers. head/tail: the FIFO of requests
 *   over its in-flight cap (chained through an_req.next); a request is in at most one FIFO. inflight counts the
 *   requests with REQ_COUNTED; slots is the steady load the pacer works from.
 * - Request (an_req, a->reqs[]): one announce under way, holding one reference on its tracker. slot == AN_NONE
 *   once its torrent is gone (or it was abandoned). REQ_TID: tid is registered in a->tids. REQ_ABANDONED: given up,
 *   waiting only for the backend's HTTP completion (nothing is decided from it).
 * - Transaction ids (a->tids): open addressing, each live tid maps to a request index or tracker index | TID_TRACKER.
 *
 * The FIFOs are chained by index, not with core/list.h: a host's FIFO head lives in the growable hosts array, and
 * a list node in an_req (96 bytes, no padding) would grow every request and change the memory figures.
 *
 * The layout of struct hk_announcer leaves no padding to spare: hk_announcer_stats.memory_bytes counts sizeof *a,
 * and the scenarios print it.
 */
#ifndef HEKATE_ANNOUNCER_INTERNAL_H
#define HEKATE_ANNOUNCER_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "announcer.h"
#include "deadline.h"
#include "ih_index.h"
#include "mem.h"
#include "tracker_udp.h"

#define AN_NONE UINT32_MAX
#define AN_MAX_ADDRS 4u

/* ---------------- records ---------------- */

enum slot_state { SLOT_FREE = 0, SLOT_IDLE = HK_SLOT_IDLE, SLOT_QUEUED = HK_SLOT_QUEUED, SLOT_BUSY = HK_SLOT_BUSY };
enum slot_flags {
    SLOT_REGISTERED = 1u << 0,
    SLOT_PACED = 1u << 1,   /* holds a pacer token: goes when due */
    SLOT_LATE = 1u << 2,    /* went later than its schedule (failures, pacer): its next time is re-drawn */
};

typedef struct an_slot {
    uint64_t order;      /* nibble k: index in the tier of the k-th tracker to try */
    uint32_t link;       /* QUEUED: heap position; BUSY: request index; FREE: next free run */
    uint32_t torrent;
    uint8_t tier;
    uint8_t pos;         /* order position of the tracker in use */
    uint8_t fails;       /* failed rounds in a row: the backoff exponent */
    uint8_t tried;       /* trackers of the tier tried since the last answer or backoff */
    uint8_t state;
    uint8_t flags;
} an_slot;               /* 24 bytes; its due time lives in the heap entry */

typedef struct an_hent {
    hk_time due;
    uint32_t slot;
} an_hent;               /* the heap holds due times itself: sifting touches only the heap array */

enum torrent_flags { TOR_LIVE = 1u << 0, TOR_PENDING = 1u << 1 };

typedef struct an_torrent {
    uint8_t ih[20];
    uint32_t tierset;    /* FREE: next free torrent */
    uint32_t first_slot;
    uint8_t ntiers;
    uint8_t active_tier; /* without all_tiers: the tier in use */
    uint8_t flags;
} an_torrent;

typedef struct an_tierset {
    uint32_t refs;
    uint32_t hash;
    uint32_t next;       /* hash chain, or free list */
    uint32_t ntiers, ntrackers;
    uint32_t *start;     /* ntiers + 1 offsets into trackers */
    uint32_t *trackers;
} an_tierset;

typedef struct an_tracker {
    hk_deadline dl;      /* UDP: connect retransmission */
    hk_udp_conn udp;
    hk_time probe_after;
    hk_time last_heard;
    hk_time log_after;
    uint32_t log_suppressed;
    uint32_t idx, gen, refs, host, next;
    uint32_t wait_head, wait_tail;   /* UDP: requests waiting for a connection id */
    hk_tracker_url u;
    uint8_t unresponsive, probe_busy, probe_fails, resolving, naddr, cur_addr, tracker_id_len;
    hk_addr addr[AN_MAX_ADDRS];
    uint8_t tracker_id[HK_TRACKER_ID_MAX];
    size_t url_len;
    char url[];
} an_tracker;

typedef struct an_host {
    char *name;
    size_t name_len;
    uint32_t refs, hash, next;
    uint32_t inflight;
    uint32_t head, tail, waiting;    /* FIFO of requests over the cap */
    bool pumping;
    uint32_t slots;                  /* (torrent, tier) slots with a tracker on this host: its steady load */
    uint32_t interval_s;             /* the last interval a tracker of this host gave (seconds) */
    hk_time pace_next;               /* the pacer's virtual clock: when the next announce may go */
} an_host;

enum req_state { REQ_NEW = 0, REQ_WAIT_HOST, REQ_RESOLVE, REQ_WAIT_CONN, REQ_SENT };
enum req_flags { REQ_PROBE = 1u << 0, REQ_COUNTED = 1u << 1, REQ_TID = 1u << 2, REQ_ABANDONED = 1u << 3,
                 REQ_TIMED = 1u << 4 /* first_sent is set */ };

typedef struct an_req {
    hk_deadline dl;      /* UDP retransmission, or expiry of a `stopped` */
    hk_time sent_at;     /* last transmission */
    hk_time first_sent;  /* first transmission of the announce itself (REQ_TIMED): the latency histogram's start */
    hk_time expires;     /* HK_TIME_NEVER for regular announces */
    uint64_t uploaded;
    uint32_t idx, gen;
    uint32_t slot;       /* AN_NONE: its torrent is gone */
    uint32_t tracker;
    uint32_t next;
    uint32_t tid;
    uint8_t ih[20];
    uint8_t event, state, attempt, flags;
} an_req;

typedef enum an_outcome {
    OUT_OK = 0,
    OUT_REFUSED,         /* failure reason / UDP error: the tracker answered no */
    OUT_BAD_REPLY,       /* answered, but not a valid announce reply (or an HTTP 4xx) */
    OUT_DOWN,            /* no answer, transport error, HTTP 5xx */
    OUT_SKIPPED,         /* not sent: tracker unresponsive */
    OUT_ABANDONED,       /* a `stopped` given up (deadline, removal) */
    OUT_CANCELLED,       /* a regular announce dropped at shutdown */
} an_outcome;

typedef struct tid_entry {
    uint32_t tid;
    uint32_t val;        /* request index, or tracker index | TID_TRACKER; AN_NONE: empty */
} tid_entry;
#define TID_TRACKER 0x80000000u

struct hk_announcer {
    hk_announcer_config cfg;
    hk_announcer_runtime rt;
    hk_uploaded_fn uploaded;
    void *uploaded_arg;
    hk_mem mem;
    uint32_t key;
    uint8_t rnd[64];                     /* random bytes drawn ahead; the last rnd_left are unused */
    uint32_t rnd_left;

    an_slot *slots;
    uint32_t nslots, capslots;           /* slots [0, nslots) ever used */
    uint32_t free_runs[HK_ANN_MAX_TIERS + 1];
    uint32_t live_slots;

    an_hent *heap;
    uint32_t heap_len, heap_cap;

    an_torrent *torrents;
    uint32_t ntorrents, captorrents, free_torrent, live_torrents;
    hk_ih_index by_ih;                   /* info-hash -> torrent index */

    uint32_t *pending;                   /* torrents added since the last wake-up */
    uint32_t npending, cappending;

    an_tierset *sets;
    uint32_t nsets, capsets, free_set, live_sets;

    an_tracker **trackers;               /* NULL: free index */
    uint32_t *tracker_gen;               /* captrackers entries each */
    uint32_t *tracker_free;
    uint32_t ntrackers, captrackers, live_trackers, ntracker_free;

    an_host *hosts;
    uint32_t nhosts, caphosts, free_host, live_hosts;

    /* hash chains of the interned records (bucket heads; a power-of-two count) */
    uint32_t *set_buckets, *tr_buckets, *host_buckets;
    uint32_t set_nb, tr_nb, host_nb;
    hk_log_level log_max;

    an_req **reqs;                       /* NULL: free index */
    uint32_t *req_gen;                   /* capreqs entries each */
    uint32_t *req_free;
    uint32_t nreqs, capreqs, nreq_free, live_reqs;

    tid_entry *tids;
    uint32_t tid_cap, tid_len;

    hk_deadline_heap req_heap, tracker_heap;
    hk_time wake_asked;

    hk_time stop_deadline;
    uint32_t stop_cursor;
    bool shutting;
    bool finished;
    bool hold;                           /* host_pump does nothing (while requests are being cancelled) */

    hk_announcer_stats st;
};

/* ---------------- announcer.c: small helpers ---------------- */

void an_log(hk_announcer *a, hk_log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
hk_time an_now(hk_announcer *a);
/* 64 random bits from the runtime (drawn 64 bytes at a time). */
uint64_t an_rand64(hk_announcer *a);
/* Uniform in [0, n); 0 when n == 0. */
uint64_t an_rand_below(hk_announcer *a, uint64_t n);

/* ---------------- announcer_index.c: arrays, slots, the heap, torrents by info-hash ---------------- */

/* Grows *p (elem bytes each, *cap of them) to hold need; false on overflow or lack of memory (nothing changed). */
bool an_grow(hk_announcer *a, void **p, uint32_t *cap, size_t elem, uint32_t need);
/* Grows a pointer table with its generation and free-index arrays (all *cap entries) when n == *cap; new entries
 * are NULL with generation 0. false on lack of memory. */
bool an_table_grow(hk_announcer *a, void ***ptrs, uint32_t **gen, uint32_t **free_idx, uint32_t *cap, uint32_t n);

/* Queues slot s at `when` (or moves it there if queued); never fails. */
void an_slot_schedule(hk_announcer *a, uint32_t s, hk_time when);
/* Takes s out of the heap if queued; it is IDLE afterwards. */
void an_slot_unqueue(hk_announcer *a, uint32_t s);
/* Removes the earliest queued slot (the heap is not empty) and returns it, IDLE. */
uint32_t an_heap_pop(hk_announcer *a);
hk_time an_slot_due(const hk_announcer *a, uint32_t s);
/* A run of n free slots (1 <= n <= HK_ANN_MAX_TIERS), heap capacity reserved; AN_NONE without memory. */
uint32_t an_slots_alloc(hk_announcer *a, uint32_t n);
void an_slots_release(hk_announcer *a, uint32_t first, uint32_t n);

/* A random try order of n trackers (BEP 12 shuffle). */
uint64_t an_shuffled_order(hk_announcer *a, unsigned n);
/* The tracker at position pos moves to the front; the others keep their order. */
uint64_t an_move_to_front(uint64_t order, unsigned pos);
unsigned an_tier_size(const hk_announcer *a, uint32_t s);
/* The tracker at order position pos of slot s's tier, and the one in use. */
uint32_t an_slot_tracker_at(const hk_announcer *a, uint32_t s, unsigned pos);
uint32_t an_slot_tracker(const hk_announcer *a, uint32_t s);

void an_index_init(hk_announcer *a);
/* hk_announcer_free's part in each file: everything that file's records hold. */
void an_index_free(hk_announcer *a);
void an_intern_free(hk_announcer *a);
void an_reqs_free(hk_announcer *a);
/* The torrent with that info-hash, or AN_NONE. */
uint32_t an_torrent_find(const hk_announcer *a, const uint8_t ih[20]);
/* Indexes torrent ti under its info-hash (not indexed yet); false without memory. */
bool an_torrent_index(hk_announcer *a, uint32_t ti);
void an_torrent_unindex(hk_announcer *a, const uint8_t ih[20]);

/* ---------------- announcer_intern.c: trackers, hosts, tier lists, transaction ids ---------------- */

/* The tracker for url, with a new reference; AN_NONE with err set (unusable URL) or err empty (no memory). */
uint32_t an_tracker_intern(hk_announcer *a, const char *url, char *err, size_t errlen);
uint32_t an_tracker_find(const hk_announcer *a, const char *url, size_t len);
void an_tracker_unref(hk_announcer *a, uint32_t idx);
/* Takes over one reference per tracker in `trackers` (released if an equal set exists). AN_NONE without memory. */
uint32_t an_set_intern(hk_announcer *a, const uint32_t *start, uint32_t ntiers, const uint32_t *trackers,
                       uint32_t n);
void an_set_unref(hk_announcer *a, uint32_t idx);
/* Adds delta to the load of every host of the tier list's tiers (each host once per tier). */
void an_hosts_load(hk_announcer *a, uint32_t set, int delta);

uint32_t an_tid_lookup(const hk_announcer *a, uint32_t tid);
/* A fresh random transaction id mapped to val, or false (out of memory). */
bool an_tid_new(hk_announcer *a, uint32_t val, uint32_t *out);
void an_tid_remove(hk_announcer *a, uint32_t tid);

/* A failure or warning line: WARN at most once a minute per tracker, the rest at DEBUG (counted). */
void an_tracker_note(hk_announcer *a, an_tracker *t, hk_time now, const char *what, const char *detail);
void an_mark_unresponsive(hk_announcer *a, an_tracker *t, hk_time now);
void an_mark_heard(hk_announcer *a, an_tracker *t, hk_time now);
/* May a request go to t now? (An unresponsive tracker takes one probe at a time, after probe_after.) */
bool an_gate_open(const an_tracker *t, hk_time now);
/* The tracker's host name, NUL-terminated, into buf (HK_TRACKER_HOST_MAX + 1 bytes). */
void an_tracker_host(const an_tracker *t, char *buf);

/* ---------------- announcer_request.c: a request's life ---------------- */

an_req *an_req_by_token(const hk_announcer *a, uint64_t token);
/* The announce parameters of r to t. */
void an_fill_params(const hk_announcer *a, const an_req *r, const an_tracker *t, hk_announce_params *p);
void an_req_schedule(hk_announcer *a, an_req *r, hk_time when);
void an_fifo_push(hk_announcer *a, uint32_t *head, uint32_t *tail, an_req *r);
an_req *an_fifo_pop(hk_announcer *a, uint32_t *head, uint32_t *tail);
/* Ends a request: its outcome is counted, logged and applied to its tracker and slot; r is freed. */
void an_req_finish(hk_announcer *a, an_req *r, an_outcome out, int64_t interval, int64_t min_interval,
                   const char *detail);
/* Detaches a sent HTTP request from its slot: only its completion is still awaited (and then ignored). */
void an_req_abandon_sent(hk_announcer *a, an_req *r);
/* When a `stopped` for a removed torrent is given up. */
hk_time an_stop_expiry(const hk_announcer *a, hk_time now);
/* A `stopped` to tracker for a torrent that is gone. */
void an_issue_orphan_stop(hk_announcer *a, uint32_t tracker, const uint8_t ih[20], hk_time now);
void an_host_pump(hk_announcer *a, uint32_t hidx, hk_time now);
/* Slot s is due: announce it (or fail it at once, or let the pacer move it). */
void an_slot_start(hk_announcer *a, uint32_t s, hk_time now);
/* The `stopped` slot s owes its tracker (shutdown). */
void an_start_stop(hk_announcer *a, uint32_t s, hk_time now);
/* An HTTP completion for request r (sent, HTTP): decodes and finishes it. */
void an_http_answer(hk_announcer *a, an_req *r, int status, const uint8_t *body, size_t len);

/* ---------------- announcer_udp.c: BEP 15 ---------------- */

void an_udp_send_announce(hk_announcer *a, an_req *r, an_tracker *t, hk_time now);
/* Needs a connection id first: wait on the tracker (and get one). */
void an_udp_wait_conn(hk_announcer *a, an_req *r, an_tracker *t, hk_time now);
/* A request's timer: expiry of a `stopped`, or a UDP retransmission. */
void an_req_timer(hk_announcer *a, an_req *r, hk_time now);
/* A tracker's timer: connect retransmission. */
void an_tracker_timer(hk_announcer *a, an_tracker *t, hk_time now);
/* A datagram: false when it belongs to no transaction under way with its sender (counted as stray, nothing else
 * happened), true when it was decoded and acted on. */
bool an_udp_datagram(hk_announcer *a, const hk_addr *from, const uint8_t *bytes, size_t len);
/* A resolution for tracker t (resolving): its addresses, then the connect (or the failure of its waiters). */
void an_udp_resolved(hk_announcer *a, an_tracker *t, const hk_addr *addrs, size_t n);

#endif
