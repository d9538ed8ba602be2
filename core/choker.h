/* choker: Hekate's credit choker (docs/design.md §5) with its bugs fixed; pure, every time is an explicit argument.
 *
 * Contract
 * --------
 * The choker decides WHO is unchoked; it sends nothing (the seeder turns its answers into messages). Each peer embeds
 * one hk_choke_entry (set up by hk_choke_entry_init, never moved while WAITING); the choker links entries into a FIFO
 * waiting line (core/list.h). States:
 *   IDLE      not interested (or interested but parked by the caller); holds nothing.
 *   WAITING   interested, in the FIFO line, since wait_since.
 *   UNCHOKED  holds one of the max_unchoked slots, with `credit` bytes left and a slice ending at slice_end.
 * Rules:
 *   - Only interested peers enter the line or a slot (hk_choker_interested); a slot is given only from the line head
 *     or directly on interest when a slot is free AND nobody is waiting (no queue jumping).
 *   - An unchoked peer gets credit C and slice T (slice_end = now + T; T == 0 means no time limit).
 *   - A block of n bytes may be sent while credit >= n and now < slice_end (hk_choker_may_send); the seeder then
 *     charges it (hk_choker_charge).
 *   - When the turn is over (credit or time ran out, or the seeder's unchoked-idle rule fires) hk_choker_turn_over:
 *     nobody waiting -> REFILLED: credit back to C AND the slice restarted at now (the original forgot the time, so
 *     after T it re-checked before every block); someone waiting -> the peer is choked and goes to the BACK of the
 *     line (REQUEUED), or, when the caller says connections are at their cap (the line is full: new connections are
 *     being refused), it is choked and removed (DISCONNECT: the caller closes it, giving its connection to a
 *     newcomer).
 *   - Leaving (not interested, close): hk_choker_leave frees the slot or the line place.
 *   - Freed slots are given by hk_choker_promote, called by the seeder until it returns NULL, from the line head.
 *   Slot squatting (issue 14 item 2): a turn the seeder finds unused (the peer asked for nothing, or did not read, for
 *   its grace: hk_choker_turn_unused) gives the peer a strike; a turn used up (credit or slice: hk_choker_turn_over)
 *   clears them. A peer with strikes waits in a second, low-priority line, promoted only when the normal line is
 *   empty; a used turn is not ended for low-priority waiters (only an unused one is). An unchoked peer the seeder
 *   marks spare (hk_choker_set_spare: idle past its grace with nobody waiting, or idle with strikes) is preempted by
 *   hk_choker_preempt as soon as someone waits in the normal line, spare peers first marked first.
 * The line order depends only on the order of calls (no pointer comparisons). All operations are O(1).
 * Invariant: unchoked <= max_unchoked; waiting == number of entries in both lines; waiting_low == entries in the low
 * line; spare entries are UNCHOKED.
 */
#ifndef HEKATE_CHOKER_H
#define HEKATE_CHOKER_H

#include <stdbool.h>
#include <stdint.h>

#include "list.h"
#include "runtime.h"

typedef enum hk_choke_state { HK_CHOKE_IDLE = 0, HK_CHOKE_WAITING, HK_CHOKE_UNCHOKED } hk_choke_state;

typedef struct hk_choke_entry {
    hk_list link;                       /* in the line (WAITING only); detached otherwise */
    uint64_t credit;                    /* bytes left in this turn (UNCHOKED) */
    hk_time slice_end;                  /* end of this turn (UNCHOKED); HK_TIME_NEVER without a slice */
    hk_time since;                      /* WAITING: entered the line; UNCHOKED: unchoked */
    uint8_t state;                      /* hk_choke_state */
    /* slot squatting (issue 14 item 2) */
    uint8_t strikes;                    /* unused turns since the last used one (saturates at 255) */
    bool low;                           /* WAITING in the low-priority line */
    uint32_t hello_us;                  /* the peer's hello (accept to first interested), µs, for hk_choker_grace;
                                         * HK_HELLO_UNKNOWN until the caller sets it (fits the padding) */
    hk_list spare_link;                 /* UNCHOKED and marked spare: in the choker's spare list */
} hk_choke_entry;

#define HK_HELLO_UNKNOWN UINT32_MAX

typedef struct hk_choker {
    uint32_t max_unchoked;
    uint64_t credit;
    hk_time slice;                      /* 0 = unlimited */
    uint32_t unchoked;
    uint32_t waiting;
    hk_list line;                       /* the waiting line, head first (so the choker must not move after init) */
    /* slot squatting (issue 14 item 2) */
    uint32_t waiting_low;               /* of `waiting`, those in the low-priority line */
    hk_list low;                        /* the low-priority line: peers whose last turn was unused */
    hk_list spare;                      /* unchoked peers marked spare, first marked first */
    uint64_t turns;                     /* turns given: unchokes, and turns renewed for a peer nobody waited behind */
} hk_choker;

typedef enum hk_turn_result {
    HK_TURN_REFILLED = 0,               /* nobody waiting: still unchoked, credit and slice renewed */
    HK_TURN_REQUEUED,                   /* choked, now at the back of the line */
    HK_TURN_DISCONNECT,                 /* choked and out of the choker: the caller must close the peer */
} hk_turn_result;

void hk_choker_init(hk_choker *c, uint32_t max_unchoked, uint64_t credit, hk_time slice);
void hk_choke_entry_init(hk_choke_entry *e);

/* An IDLE peer declared interest: unchoked at once (returns true) if a slot is free and nobody waits, else it joins
 * the back of the line (returns false). A non-IDLE entry is left as is and the call returns its current
 * "unchoked" status. */
bool hk_choker_interested(hk_choker *c, hk_choke_entry *e, hk_time now);
/* The peer leaves (not interested or gone): back to IDLE. Returns true if it freed an unchoke slot. */
bool hk_choker_leave(hk_choker *c, hk_choke_entry *e);
/* If a slot is free and the line is not empty: unchokes the line head and returns it; else NULL. */
hk_choke_entry *hk_choker_promote(hk_choker *c, hk_time now);
/* An UNCHOKED peer may send a block of n bytes now (credit >= n and the slice not over). */
bool hk_choker_may_send(const hk_choker *c, const hk_choke_entry *e, hk_time now, uint64_t n);
void hk_choker_charge(hk_choker *c, hk_choke_entry *e, uint64_t n);
/* The UNCHOKED peer's turn is over. connections_full: the connection cap is reached (the line counts as full). */
hk_turn_result hk_choker_turn_over(hk_choker *c, hk_choke_entry *e, hk_time now, bool connections_full);
/* The UNCHOKED peer's turn is unused (it asked for nothing or did not read for its grace): a strike; then as
 * hk_choker_turn_over, except that any waiter (low-priority ones too) ends the turn, and it is requeued at the back of
 * the low-priority line. */
hk_turn_result hk_choker_turn_unused(hk_choker *c, hk_choke_entry *e, hk_time now, bool connections_full);
/* Records e's hello (accept to its first interested: about one round trip plus its reply time) once; later calls
 * keep the first. Saturates below HK_HELLO_UNKNOWN. */
void hk_choker_set_hello(hk_choke_entry *e, hk_time hello);
/* e's grace for asking nothing in a turn: full / 4 + 4 x its hello, at most full (full when the hello is unknown).
 * A client requests within a round trip of its unchoke; a long link shows in the hello. Pure, O(1). */
hk_time hk_choker_grace(const hk_choke_entry *e, hk_time full);
/* Marks an UNCHOKED peer spare (it may be preempted) or not; no-op when already so or not UNCHOKED. */
void hk_choker_set_spare(hk_choker *c, hk_choke_entry *e, bool spare);
static inline bool hk_choker_is_spare(const hk_choke_entry *e) { return hk_list_linked(&e->spare_link); }
/* Someone waits in the normal line and a peer is spare: ends the first spare peer's turn as an unused one (*result:
 * REQUEUED or DISCONNECT) and returns it; else NULL. The caller chokes (or closes) it and promotes. */
hk_choke_entry *hk_choker_preempt(hk_choker *c, hk_time now, bool connections_full, hk_turn_result *result);
/* Position in the line (1 = head; the low-priority line after the normal one), 0 if not WAITING. O(position): for
 * logs and tests. */
uint32_t hk_choker_position(const hk_choker *c, const hk_choke_entry *e);
const char *hk_choke_state_name(hk_choke_state s);

#endif
