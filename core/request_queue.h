/* request_queue: one peer's bounded FIFO of pending requests (blocks, and ut_metadata pieces), served in order.
 *
 * Contract
 * --------
 * A ring buffer of hk_request entries that grows geometrically through the owner's hk_mem from a small start up to
 * a fixed maximum given at init (the seeder uses reqq + the metadata allowance). The ring is kept while the queue
 * empties and refills (no allocation per block); hk_rq_clear releases it (the seeder clears on choke and close, so a
 * choked or idle peer holds no queue memory). Pushing onto a full queue fails; nothing is ever evicted.
 * Operations: push at the back, look at / pop the front, rotate (front to back), find
 * an exact (kind, index, begin, length) match, remove at a position (cancel, or serving;
 * O(min(i, n - i)) shift: the front costs nothing), find by
 * disk-load token, and count by kind. Order is the order of pushes and rotations only.
 *
 * Finding (issue 12, reactivity): a ring of RQ_INDEX_MIN (64) entries or more carries, in the same allocation, an
 * open-addressed hash table of its slots by key (16-bit slot numbers, at most half full: 4 bytes per ring entry, 12.5 %
 * of the ring), so hk_rq_find, the duplicate check of every request, is O(1) expected instead of a scan of the queue;
 * its answer is the scan's (the position of the first match). Callers may change an entry's other fields through
 * hk_rq_at, never kind, index, begin or length (its key).
 * The queues of one owner share an hk_rq_home: their allocator and the running sum of their BLOCK entries (every
 * push, removal and clear updates it), so the owner knows its queued blocks without a walk (hk_seeder_stats: O(1)).
 */
#ifndef HEKATE_REQUEST_QUEUE_H
#define HEKATE_REQUEST_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "mem.h"

typedef enum hk_req_kind { HK_REQ_BLOCK = 0, HK_REQ_METADATA = 1, HK_REQ_KINDS } hk_req_kind;

typedef enum hk_req_state {
    HK_RQ_FRESH = 0,     /* accepted, prefetch issued, residency not checked yet */
    HK_RQ_REQUEUED,      /* was not resident at its turn; passed over once, checked again in a later turn */
    HK_RQ_LOADING,       /* disk_load issued; waiting for its completion(s) */
    HK_RQ_LOADED,        /* loaded: send at the next opportunity without asking residency again */
    HK_RQ_BACKOFF,       /* a load said HK_DISK_RETRY: waits for its peer's disk_retry_at, then is REQUEUED */
    HK_RQ_VERIFYING,     /* its piece is being verified (disk_verify): waits for the result, then is FRESH */
} hk_req_state;

typedef struct hk_request {
    uint32_t index;      /* piece index (BLOCK) or metadata piece (METADATA) */
    uint32_t begin;      /* BLOCK: offset in the piece; METADATA: 0 */
    uint32_t length;     /* payload bytes */
    uint32_t loads;      /* disk_load completions still expected (LOADING); a block may span many small files */
    uint64_t token;      /* disk_load token (LOADING/LOADED), 0 otherwise */
    uint8_t kind : 1;    /* hk_req_kind */
    uint8_t state : 3;   /* hk_req_state */
    /* disk retry (HK_DISK_RETRY, seeder_loads.c): */
    uint8_t retry : 1;   /* LOADING: one of this round's loads said RETRY */
    /* upload rate caps (seeder_rate.c): */
    uint8_t rate_waited : 1; /* it has waited for tokens (counted once in rate_delayed_bytes) */
    uint8_t checked : 1; /* metrics: its first residency check was counted (a hit or a miss) */
    uint8_t turn;        /* REQUEUED: the owner's turn number when it was moved back (not checked again that turn) */
    uint8_t tries;       /* RETRY rounds in a row so far (disk retry) */
    uint32_t arrived;    /* metrics: when it arrived, in HK_RQ_TICK_SHIFT units of the core's clock (wraps after
                            ~19.5 hours; hk_rq_age) */
} hk_request;            /* 32 bytes */

_Static_assert(HK_REQ_KINDS <= 2 && HK_RQ_VERIFYING < 8, "kind and state fit their bit fields");
_Static_assert(sizeof(hk_request) == 32, "a request is 32 bytes: reqq of them per peer");

/* The arrival stamp of a request arriving at `now` (nanoseconds): units of 2^14 ns (16.4 us). */
#define HK_RQ_TICK_SHIFT 14
static inline uint32_t hk_rq_stamp(uint64_t now) { return (uint32_t)(now >> HK_RQ_TICK_SHIFT); }
/* Nanoseconds from a stamp to `now` (exact to one tick; a request older than the wrap reads younger). */
static inline uint64_t hk_rq_age(uint32_t stamp, uint64_t now)
{
    return (uint64_t)(uint32_t)(hk_rq_stamp(now) - stamp) << HK_RQ_TICK_SHIFT;
}

typedef struct hk_rq_home {
    hk_mem *mem;
    uint64_t blocks;     /* BLOCK entries in all the queues of this home */
} hk_rq_home;

typedef struct hk_request_queue {
    hk_request *ring;
    hk_rq_home *home;
    uint32_t head, len, cap, max;
    uint32_t count[HK_REQ_KINDS];
} hk_request_queue;

void hk_rq_init(hk_request_queue *q, hk_rq_home *home, uint32_t max);
void hk_rq_free(hk_request_queue *q);

static inline uint32_t hk_rq_len(const hk_request_queue *q) { return q->len; }
static inline uint32_t hk_rq_count(const hk_request_queue *q, hk_req_kind k) { return q->count[k]; }
static inline bool hk_rq_full(const hk_request_queue *q) { return q->len >= q->max; }

/* false when full or out of memory (the queue is unchanged). */
bool hk_rq_push_back(hk_request_queue *q, const hk_request *r);
/* Entry at position i (0 = front), NULL past the end. Valid until the next modifying call. */
hk_request *hk_rq_at(hk_request_queue *q, uint32_t i);
static inline hk_request *hk_rq_front(hk_request_queue *q) { return hk_rq_at(q, 0); }
/* Removes the front into *out (if out); false when empty. */
bool hk_rq_pop_front(hk_request_queue *q, hk_request *out);
/* Moves the front entry to the back (no-op when len < 2). */
void hk_rq_rotate(hk_request_queue *q);
/* Position of the first exact match, or -1. O(1) expected with the index, O(len) without. */
int64_t hk_rq_find(const hk_request_queue *q, hk_req_kind kind, uint32_t index, uint32_t begin, uint32_t length);
/* Position of the entry with this disk-load token, or -1. */
int64_t hk_rq_find_token(const hk_request_queue *q, uint64_t token);
/* Removes position i into *out (if out), keeping the order of the others; false if i is out of range. */
bool hk_rq_remove_at(hk_request_queue *q, uint32_t i, hk_request *out);
/* Empties the queue and releases its memory. */
void hk_rq_clear(hk_request_queue *q);

#endif
