/* seeder_internal: the seeder object and the functions its files share. Not a public header: only core/seeder*.c
 * include it. Reading order, top-down: seeder.c (lifecycle, torrents, the public event entry points) calls
 * seeder_proto.c (the wire protocol), which calls seeder_choke.c (choke transitions), seeder_serve.c (queuing and
 * serving) and seeder_peers.c (the peer table and lists, close, control output); seeder_loads.c holds pending disk
 * loads, seeder_rate.c the upload rate caps the service pass takes tokens from, and seeder_timers.c the deadlines and
 * the rescheduling at the end of an event.
 *
 * Event discipline: every public entry point calls hks_ev_begin (reads the clock once: every decision of the event uses
 * that time) and hks_ev_end, the event's epilogue: it gives the slots freed by closes to the line (hks_promote_freed),
 * runs the service pass, reschedules the peers touched during the event, frees the peers closed during it (so no loop
 * ever holds a dangling pointer), and asks the runtime for one wake-up. A close never promotes by itself, wherever it
 * happens (deep in a receive, a timeout, a disk completion): it marks the slot freed, and the step that closed the
 * peer promotes once it is done with that peer: the epilogue for the events about one peer; in the events that handle
 * many peers in turn (deadlines firing, the service pass, a torrent's peers being dropped) right after each peer, so
 * the unchoke goes out before the next peer is looked at, as it always has (the next peer's deadline, its turn in the
 * pass and the event log depend on it). The choke transitions that free a slot (not interested, end of a turn)
 * give it at once: the slot is theirs to hand on in the same step.
 */
#ifndef HEKATE_SEEDER_INTERNAL_H
#define HEKATE_SEEDER_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>

#include "addr_limit.h"
#include "choker.h"
#include "deadline.h"
#include "list.h"
#include "mem.h"
#include "peer.h"
#include "seeder.h"
#include "token_bucket.h"
#include "torrent_table.h"

/* Blocks one service pass may send across all peers before it yields (asks to be woken at once). */
#define HK_PASS_BLOCKS 256u
/* Blocks (or metadata pieces) batched into one send() call. */
#define HK_BATCH_BLOCKS 64u
/* Header bytes reserved per batched entry (piece header 13; ut_metadata header + dict < 80). */
#define HK_BATCH_HDR 96u
/* ut_metadata requests a peer may have queued (beyond that: reject). */
#define HK_METADATA_QUEUE 8u
/* Non-fast overflow (issue 9): a peer without the fast extension cannot be told a request was refused, so beyond
 * reqq its requests are still queued, up to hks_overflow_cap (at least 4 x reqq, and two pieces' worth of 16 KiB
 * blocks: Enhanced CTorrent pipelines 2 x blocks-per-piece - 1), never more than HK_OVERFLOW_MAX; beyond that, or when
 * memory runs out, the rest is dropped until the queue is served, then a choke the peer sees discards it (BEP 3),
 * followed by an unchoke, keeping its slot and turn (hks_choke_reset). The request queue's ring grows only as
 * requests arrive. */
#define HK_OVERFLOW_MAX 8192u
static inline uint32_t hks_overflow_cap(const hk_config *cfg, uint32_t piece_length)
{
    uint64_t cap = (uint64_t)cfg->reqq * 4u;
    uint64_t two_pieces = 2u * (((uint64_t)piece_length + 16383u) / 16384u);
    if (cap < two_pieces)
        cap = two_pieces;
    return cap > HK_OVERFLOW_MAX ? HK_OVERFLOW_MAX : (uint32_t)cap;
}
/* Requests one peer's queue may hold: block requests (reqq, or the non-fast overflow) + metadata requests. */
#define HK_QUEUE_MAX (HK_OVERFLOW_MAX + HK_METADATA_QUEUE)
/* Received bytes decrypted at a time for an encrypted peer (seeder_mse.c). */
#define HKS_RX_SCRATCH (16u * 1024u)
/* Our extended message ids (advertised in the extension handshake's `m`). */
#define HK_EXT_UT_METADATA 1u
#define HK_EXT_UPLOAD_ONLY 2u
/* One request's disk loads while completions are pending. The runtime delivers exactly one completion per
 * disk_load, even after the requesting peer is gone, so the record lives until `pending` reaches 0, independent of
 * the peer and its request: a failed load always finds its torrent. Token = gen << 32 | index in s->loads; a free
 * record has gen 0 (no token has gen 0), so a stale or made-up token matches nothing. */
typedef struct hks_load {
    uint32_t gen;                /* the token's high half while in use; 0 when free */
    uint32_t torrent;            /* record number; HK_TT_NONE once that torrent was removed */
    uint32_t slot;               /* in use: the requesting peer's slot (checked against its queue on completion);
                                  * free: the next free record (HKS_LOAD_NONE ends the list) */
    uint32_t pending;            /* completions still expected */
} hks_load;
#define HKS_LOAD_NONE UINT32_MAX
/* A torrent's own upload rate bucket (seeder_rate.c), in a pool addressed by hk_torrent_rate_slot() - 1. */
typedef struct hks_tbucket {
    hk_token_bucket tb;
    uint32_t next_free;          /* free: the next free bucket (HKS_TB_NONE ends the list) */
} hks_tbucket;
#define HKS_TB_NONE UINT32_MAX

struct hk_seeder {
    hk_config cfg;
    hk_seeder_runtime rt;
    hk_mem mem;
    hk_log_level log_level;
    hk_time now;                 /* the current event's time */
    hk_time wake_requested;      /* what the runtime was last asked (HK_TIME_NEVER: nothing pending) */
    uint8_t peer_id[20];
    uint8_t reserved[8];         /* ours: fast + extended (+ DHT with cfg.dht_port) */

    hk_torrent_table torrents;
    hk_choker choker;
    hk_deadline_heap deadlines;

    hk_peer **peers;             /* by slot; NULL for a free slot */
    uint32_t npeers, peers_cap;
    /* Running sums over the peers in the table (hk_seeder_stats without a walk of it): */
    hk_rq_home rq_home;          /* the peers' request queues: s->mem, and the BLOCK requests queued in them */
    uint64_t decoder_bytes;      /* their wire decoders' heap bytes: every change adds its difference (feeding and
                                  * trimming in hks_wire_recv, a reset after MSE), a close takes the peer's */
    uint32_t npeers_encrypted;   /* of them, RC4 */
    uint32_t *free_slots;        /* stack of free slot numbers */
    uint32_t nfree;
    uint64_t next_peer_id;
    hk_addr_limit addr_limit;    /* per-address caps: live connections per address and prefix */
    hk_addr_hold *holds;         /* by slot (peers_cap of them): what each peer counted in addr_limit */

    hks_load *loads;             /* pending disk loads by token index (NULL when none is pending) */
    uint32_t loads_cap, loads_used, loads_free; /* loads_free: head of the free list */
    uint32_t next_load_gen;      /* never 0 */

    hk_list ready;               /* peers that may have something to send (hk_peer.ready_link), served in turn */
    uint32_t nready;
    hk_list touched;             /* peers to reschedule at the end of the event (hk_peer.event_link), in touch order */
    hk_list grave;               /* peers closed during this event (hk_peer.event_link), last closed first */
    bool slot_freed;             /* a close freed an unchoke slot since the line last moved up */

    hk_segment *segs;            /* scratch for one batched send */
    uint32_t segs_cap;
    uint8_t *hdr;                /* HK_BATCH_BLOCKS * HK_BATCH_HDR bytes of headers for one batch */
    uint8_t *rxbuf;              /* HKS_RX_SCRATCH bytes: received bytes decrypted (MSE/PE), allocated on first use */

    /* upload rate caps (seeder_rate.c; core/token_bucket.h) */
    hk_token_bucket rate;        /* the global bucket, used when cfg.upload_rate > 0 */
    hks_tbucket *tbuckets;       /* per-torrent buckets; a torrent's rate_slot is 1 + its index */
    uint32_t tb_cap, tb_used;    /* capacity, indexes handed out so far */
    uint32_t tb_free;            /* head of the free list (HKS_TB_NONE: empty) */
    hk_list rate_passed;         /* peers passed over for tokens in this pass (hk_peer.ready_link; counted in nready) */
    uint32_t npassed;
    bool rate_stopped;           /* this pass stopped: the global bucket is short */
    hk_time rate_torrent_at;     /* this pass: earliest time a passed-over peer's torrent bucket has its tokens */
    hk_time serve_at;            /* when the ready ring can be served next: s->now, or when tokens will exist */

    /* piece verification (seeder_verify.c) */
    struct hks_verify *verifies; /* pending disk_verify records by token index (NULL when none is pending) */
    uint32_t verifies_cap, verifies_used;
    uint32_t next_verify_gen;    /* never 0 */
    /* background verification pass (seeder_vpass.c, core/verify_pass.h) */
    hk_vpass vpass;
    uint32_t *vq;                /* ring of record numbers queued (HK_TT_NONE: dropped since) */
    uint32_t vq_head, vq_len, vq_cap;
    uint32_t vq_rec, vq_piece;   /* the torrent being swept (HK_TT_NONE: none) and its next piece */

    hk_stats stats;
};

/* ---- Logging (every file) -------------------------------------------------------------------------------------- */
/* Logs `prefix` followed by fmt formatted with ap: one line of at most 511 bytes, handed to rt->log when the level
 * passes the seeder's. */
__attribute__((format(printf, 4, 0))) static inline void hks_vlog(hk_seeder *s, hk_log_level level, const char *prefix,
                                                                  const char *fmt, va_list ap)
{
    if (level > s->log_level || !s->rt.base.log)
        return;
    char line[512];
    int n = snprintf(line, sizeof line, "%s", prefix);
    if (n >= 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    s->rt.base.log(s->rt.base.ctx, level, line);
}

__attribute__((format(printf, 3, 4))) static inline void hks_log(hk_seeder *s, hk_log_level level, const char *fmt,
                                                                 ...)
{
    va_list ap;
    va_start(ap, fmt);
    hks_vlog(s, level, "", fmt, ap);
    va_end(ap);
}

/* ---- seeder.c: lifecycle, torrents, events ---------------------------------------------------------------------- */
void hks_ev_begin(hk_seeder *s);
void hks_ev_end(hk_seeder *s);
/* Marks the torrent failed and closes its peers (storage_failed behaviour, inside an event). */
void hks_torrent_failed(hk_seeder *s, uint32_t rec, const char *why);

/* ---- seeder_peers.c: the peer table, the peer lists, close, control output -------------------------------------- */
/* A new peer for an accepted connection, or NULL when refused (connection cap, out of memory: counted and logged). */
hk_peer *hks_peer_accept(hk_seeder *s, hk_conn *conn, const hk_addr *from);
/* Attaches p (after its handshake) to the torrent in record `rec` (counted in its peers, in its side block:
 * hk_tt_peer_attach). false when out of memory for that block (p not attached; the caller closes it). */
bool hks_peer_attach(hk_seeder *s, hk_peer *p, uint32_t rec);
/* p's torrent, NULL before the handshake (or once closed). */
static inline hk_torrent *hks_peer_torrent(const hk_seeder *s, const hk_peer *p)
{
    return p->torrent == HK_TT_NONE ? NULL : hk_tt_get(&s->torrents, p->torrent);
}
/* Closes a peer: logs the reason, leaves the choker (a freed slot is marked for hks_promote_freed, not given at once),
 * detaches it from its torrent, forgets its requests, calls rt->close when call_close (not when the backend reported
 * the close), and moves it to the grave, freed at the end of the event. No-op on a closed peer. */
void hks_close_peer(hk_seeder *s, hk_peer *p, bool call_close, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sends control bytes (handshake, choke, reject...): exempt from room but accounted as debt. Returns false when the
 * peer is (or was just) closed because it does not read. */
bool hks_send_control(hk_seeder *s, hk_peer *p, const hk_segment *segs, size_t nsegs);
bool hks_send_control_bytes(hk_seeder *s, hk_peer *p, const uint8_t *bytes, size_t len);
/* p is to be rescheduled at the end of the event (once, in the order of first touch; no-op when closed). */
void hks_mark_touched(hk_seeder *s, hk_peer *p);
/* The first peer touched and not rescheduled yet, taken off the list; NULL when none is left. */
hk_peer *hks_take_touched(hk_seeder *s);
/* p joins the back of the ready ring if it is open, has requests queued and room (no-op when already in it). */
void hks_mark_ready(hk_seeder *s, hk_peer *p);
void hks_ready_unlink(hk_seeder *s, hk_peer *p);
/* The peer at the front of the ready ring, taken out of it; NULL when the ring is empty. */
hk_peer *hks_ready_pop(hk_seeder *s);
/* Frees the peers closed during the event. */
void hks_free_closed(hk_seeder *s);
/* Frees every peer and the peer table (destruction). */
void hks_peers_free(hk_seeder *s);

/* ---- seeder_mse.c: a connection's first bytes (plain or MSE/PE), the MSE handshake, decryption --------------- */
/* Every received byte enters here: plain bytes go to hks_wire_recv, MSE bytes to the responder, then decrypted. */
void hks_proto_recv(hk_seeder *s, hk_peer *p, const uint8_t *bytes, size_t len);
/* Frees the receive scratch buffer (destruction). */
void hks_mse_free(hk_seeder *s);

/* ---- seeder_proto.c: the wire protocol ----------------------------------------------------------------------- */
/* Plaintext BitTorrent bytes of p (decrypted already) through its wire decoder. */
void hks_wire_recv(hk_seeder *s, hk_peer *p, const uint8_t *bytes, size_t len);

/* ---- seeder_choke.c: choke transitions (they send choke/unchoke and log) --------------------------------------- */
void hks_peer_interested(hk_seeder *s, hk_peer *p);
void hks_peer_not_interested(hk_seeder *s, hk_peer *p);
/* The unchoked peer's turn is over (credit, slice, or unchoked-idle): refill, requeue or disconnect. Returns false
 * if the peer was closed. */
bool hks_turn_over(hk_seeder *s, hk_peer *p, const char *why);
/* p (no fast extension, unchoked) sent a request that cannot be queued (over hks_overflow_cap, out of memory): it and
 * the requests that follow are dropped until its queued requests are served; then (hks_choke_reset_end, at the end of
 * the event) a choke that the peer sees discards them (BEP 3: it re-requests after an unchoke), followed at once by
 * the unchoke; slot, credit and slice are kept. No-op when already pending. */
void hks_choke_reset(hk_seeder *s, hk_peer *p, const char *why);
/* End of an event: the choke + unchoke of a pending reset once p's queued block requests are all served. */
void hks_choke_reset_end(hk_seeder *s, hk_peer *p);
/* p (no fast, unchoked, asking for nothing) had a request of a bad piece dropped: a choke + unchoke tells it that
 * request is gone (BEP 3: it asks again after the unchoke); slot and turn are kept. */
void hks_choke_discard_dropped(hk_seeder *s, hk_peer *p);
/* The unchoked peer did not use its slot for its grace (asked for nothing, or did not read): its turn ends as unused
 * (seeder_choke.c: a strike, the back of the low-priority line, or closed when connections are full) when anyone
 * waits; when nobody does it keeps the slot. Returns false if the peer was closed. */
bool hks_turn_unused(hk_seeder *s, hk_peer *p, const char *why);
/* A block request of p was queued: its slot is in use (not spare; the grace starts again when it idles), unless p
 * does not read what is already queued (stalled): then nothing changes. */
void hks_slot_used(hk_seeder *s, hk_peer *p);
/* p's grace for asking nothing while unchoked: hk_choker_grace with unchoked_grace (a peer that answered the
 * handshake quickly answers an unchoke as quickly). */
hk_time hks_peer_grace(const hk_seeder *s, const hk_peer *p);
/* p's grace for leaving queued data unread: unchoked_stall once it has read something in this turn
 * (stall_drained), else hks_peer_grace (a non-reader fills its send buffer and never drains it). */
hk_time hks_peer_stall_grace(const hk_seeder *s, const hk_peer *p);
/* Unchokes waiters from the head of the line while slots are free, then preempts spare slots (hk_choker_preempt)
 * for the peers waiting in the normal line. */
void hks_promote_waiters(hk_seeder *s);
/* If a close freed a slot since the last call: hks_promote_waiters. */
void hks_promote_freed(hk_seeder *s);

/* ---- seeder_serve.c: queuing, rejecting and serving requests --------------------------------------------------- */
void hks_serve_pass(hk_seeder *s);
/* Answers every queued block request of p with a reject (fast) or drops it (no fast); metadata requests stay. */
void hks_reject_queued_blocks(hk_seeder *s, hk_peer *p, const char *why);
/* Queues a validated block request (prefetching its extents). */
void hks_queue_block(hk_seeder *s, hk_peer *p, uint32_t index, uint32_t begin, uint32_t length);
/* Queues a ut_metadata piece request (prefetching its extent); rejects when it cannot. */
void hks_queue_metadata(hk_seeder *s, hk_peer *p, uint32_t piece);
/* Sends a reject for one block request (counted). Returns false if the peer was closed for not reading. */
bool hks_send_reject(hk_seeder *s, hk_peer *p, uint32_t index, uint32_t begin, uint32_t length);

/* ---- seeder_loads.c: pending disk loads ----------------------------------------------------------------------- */
/* A new load record for a request of peer p (its torrent and slot); its token, 0 when out of memory. */
uint64_t hks_load_begin(hk_seeder *s, const hk_peer *p);
/* n disk_loads were issued with token (n == 0 releases the record at once). */
void hks_load_issued(hk_seeder *s, uint64_t token, uint32_t n);
/* A disk_load completion: HK_DISK_ERROR fails the load's torrent even if its peer or request is gone; success marks
 * the request loaded when it is still queued; HK_DISK_RETRY makes it wait (backoff) and never fails the torrent.
 * Stale or unknown tokens are ignored. */
void hks_disk_loaded(hk_seeder *s, uint64_t token, hk_disk_status status);
/* Disk retry (HK_DISK_RETRY; contract in seeder_runtime.h): the first wait, its cap, and the rounds after which a
 * fast peer's block is rejected. */
#define HKS_RETRY_FIRST HK_MILLIS(50)
#define HKS_RETRY_MAX_WAIT HK_SECONDS(2)
#define HKS_RETRY_REJECT_AFTER 8u
/* p's disk_retry_at has come (no-op before it): its BACKOFF requests go back to REQUEUED and p to the ready ring. */
void hks_disk_retry_due(hk_seeder *s, hk_peer *p);
/* The torrent in record `rec` is being removed: its pending loads no longer name it (the record may be reused). */
void hks_loads_forget_torrent(hk_seeder *s, uint32_t rec);
void hks_loads_free(hk_seeder *s);

/* ---- seeder_verify.c: piece verification (docs/design.md §13) ------------------------------------------------ */
typedef enum hks_gate {
    HKS_GATE_GO = 0,             /* the piece is good: serve the request */
    HKS_GATE_WAIT,               /* a verify of its piece is pending (VERIFYING), or its piece is bad and its reject
                                  * is held (BACKOFF, HKS_BAD_REJECT_HOLD): the request waits */
    HKS_GATE_DROPPED,            /* the piece is bad: the request was rejected (fast peer) or dropped (not fast) and removed */
    HKS_GATE_GONE,               /* the piece is bad: the peer (not fast) was closed */
} hks_gate;
/* How long the reject of a bad piece's block is held for a fast peer that cannot be told the piece is gone (no BEP 54
 * lt_donthave): such clients ask again as soon as the reject arrives (aria2: ~4,000 times a second; held, ~4). */
#define HKS_BAD_REJECT_HOLD HK_MILLIS(250)
/* Whether the block request at position `at` of p's queue may be served now (t not all good): starts or joins the
 * verify of its piece when its state is unknown. */
hks_gate hks_verify_gate(hk_seeder *s, hk_peer *p, hk_torrent *t, uint32_t at);
/* A disk_verify completion (hk_seeder_on_piece_verified). */
void hks_piece_verified(hk_seeder *s, uint64_t token, hk_verify_result result);
/* The torrent in record `rec` is being removed: its pending verifies no longer name it. */
void hks_verifies_forget_torrent(hk_seeder *s, uint32_t rec);
/* Torrent rec's marks were dropped: the results of its pending verifies are not recorded (checked again). */
void hks_verifies_stale_torrent(hk_seeder *s, uint32_t rec);
void hks_verifies_free(hk_seeder *s);
/* The background pass (seeder_vpass.c): a verify of (rec, piece) is pending (lazy or the pass's). */
bool hks_verify_pending(hk_seeder *s, uint32_t rec, uint32_t piece);
/* Starts the pass's own verify of piece `piece` of torrent rec (nobody waits for it). false: out of memory. */
bool hks_verify_start_pass(hk_seeder *s, uint32_t rec, uint32_t piece);

/* ---- seeder_vpass.c: the background verification pass ---------------------------------------------------------- */
#define HKS_VPASS_INFLIGHT 2u            /* pass pieces being checked at once */
#define HKS_VPASS_REPORT HK_SECONDS(5)   /* progress lines */
void hks_vpass_init(hk_seeder *s);
void hks_vpass_free(hk_seeder *s);
/* Queues torrent rec for a full check (the pass becomes active). false: out of memory (logged). */
bool hks_vpass_queue(hk_seeder *s, uint32_t rec);
/* Torrent rec is removed (or failed): its queue entries are dropped. */
void hks_vpass_forget_torrent(hk_seeder *s, uint32_t rec);
/* A pass verify of (rec, piece) completed (rec HK_TT_NONE: its torrent is gone); `again`: it said RETRY. */
void hks_vpass_completed(hk_seeder *s, uint32_t rec, uint32_t piece, bool again);
/* At the end of every event: starts what the pace allows, reports progress, ends a finished pass. Returns when it
 * wants to be woken (HK_TIME_NEVER: not for itself). */
hk_time hks_vpass_run(hk_seeder *s);

/* ---- seeder_rate.c: upload rate caps (token buckets, docs/design.md §14) ------------------------------------ */
/* The largest data message (a block of max_block or a ut_metadata piece, plus its header): no bucket holds less. */
#define HKS_RATE_MIN_BURST(cfg) ((uint64_t)((cfg)->max_block > 16384u ? (cfg)->max_block : 16384u) + HK_BATCH_HDR)
typedef enum hks_rate_verdict {
    HKS_RATE_OK = 0,             /* the tokens are there (or nothing caps this message) */
    HKS_RATE_SHORT_GLOBAL,       /* the global bucket is short: the pass stops */
    HKS_RATE_SHORT_TORRENT,      /* the torrent's bucket is short: this peer waits, the others go on */
} hks_rate_verdict;
/* The global bucket, full (no-op without a global cap). */
void hks_rate_init(hk_seeder *s);
void hks_rate_free(hk_seeder *s);
/* cfg.upload_rate / upload_burst changed (hk_seeder_set_config): the global bucket takes them (old_rate 0: a new
 * full bucket). */
void hks_rate_config_changed(hk_seeder *s, uint64_t old_rate);
/* A torrent was added in record `rec`: it gets the default cap (cfg.torrent_upload_rate). false: out of memory. */
bool hks_rate_torrent_added(hk_seeder *s, uint32_t rec);
/* The torrent in record `rec` is being removed: its bucket is freed. */
void hks_rate_torrent_removed(hk_seeder *s, uint32_t rec);
/* Whether a data message of `cost` bytes of torrent t may go now; when not, notes when the tokens will exist. */
hks_rate_verdict hks_rate_check(hk_seeder *s, const hk_torrent *t, uint64_t cost);
/* Takes `cost` tokens from the buckets that hks_rate_check found sufficient. */
void hks_rate_charge(hk_seeder *s, const hk_torrent *t, uint64_t cost);
/* Start of a service pass: the global bucket is refilled, serve_at is now. */
void hks_rate_pass_begin(hk_seeder *s);
/* p (popped from the ring, nothing sent in its turn) waits for tokens: it keeps its place ahead of the ring. */
void hks_rate_pass_over(hk_seeder *s, hk_peer *p);
/* End of a service pass: the passed-over peers go back to the front of the ring, in order, and serve_at says when
 * the ring can go on (now if peers were left for lack of budget, else when the tokens will exist). */
void hks_rate_pass_end(hk_seeder *s);

/* ---- seeder_timers.c: deadlines ----------------------------------------------------------------------------- */
/* Closes, turns over or keeps alive every peer whose deadline is due. */
void hks_fire_deadlines(hk_seeder *s);
/* Reschedules every peer touched during the event (hks_take_touched), in the order they were touched. */
void hks_reschedule_touched(hk_seeder *s);

static inline hk_time hks_time_add(hk_time a, hk_time b)
{
    return a > HK_TIME_NEVER - b ? HK_TIME_NEVER : a + b;
}

#endif
