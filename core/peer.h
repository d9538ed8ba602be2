/* peer: one connection's protocol state (the hk_peer the backend holds opaquely) and the pure rules about it.
 *
 * Contract
 * --------
 * The struct holds everything the seeder knows about one connection: its sequential id (used in every log line;
 * never a pointer value), the phase of the handshake, what was negotiated (fast extension, BEP 10), what the peer
 * said (interested, its ut_metadata id), its choke entry, its request queue, its one deadline node, the stream
 * decoder, and the flow-control account.
 *
 * The peer's reserved handshake bytes are not copied here: the decoder exposes them (wire_decoder_reserved) from
 * byte 28 on, so the seeder reads them when it answers the handshake at byte 48 and keeps only what they negotiated
 * (fast, extended).
 *
 * Memory: an idle peer holds nothing on the heap beyond this struct (the request queue's ring is released when the
 * queue is cleared, the decoder's payload buffer by wire_decoder_trim after each receive).
 *
 * Pure rules kept here (no runtime, no seeder):
 *   - hk_peer_check_msg: message legality given what was negotiated: fast-extension messages only if both sides
 *     set the bit (we always do); extended messages only if the peer set the BEP 10 bit; piece and reject never (we
 *     never request). A seed (all-ones bitfield, have_all) is reported as such. The ORDER of bitfield / have_all /
 *     have_none is not judged: real clients send them late (libtorrent after its extension handshake, aria2 after
 *     "interested" once a magnet's metadata arrived) and a seeder keeps no per-peer piece map they could confuse.
 *   - Flow control (hk_peer_account): `room` is what the backend accepts now (set by on_sendable, the new total);
 *     every byte sent is taken from it; control bytes may go beyond it and accumulate as `debt`, which on_sendable
 *     clears (the backend's new room already accounts for them). A debt above the peer's limit means the peer does
 *     not read: the caller disconnects it.
 */
#ifndef HEKATE_PEER_H
#define HEKATE_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "choker.h"
#include "deadline.h"
#include "list.h"
#include "mse.h"
#include "request_queue.h"
#include "runtime.h"
#include "wire.h"

/* Unsent control output tolerated beyond the backend's room (plus the size of our handshake reply). */
#define HK_CONTROL_DEBT_MAX (64u * 1024u)

typedef enum hk_peer_phase {
    HK_PHASE_HANDSHAKE = 0,  /* waiting for the first 48 bytes (protocol, reserved, info-hash) */
    HK_PHASE_REPLIED,        /* torrent found, our handshake sent; waiting for the peer id */
    HK_PHASE_ACTIVE,         /* handshake complete: messages flow */
} hk_peer_phase;

/* A peer's MSE/PE state, allocated (in the seeder's hk_mem) only for connections that start an MSE handshake, so a
 * plain peer pays one pointer. Freed with the peer (hk_peer_release). */
typedef struct hk_peer_mse {
    hk_mem *mem;             /* where it was allocated */
    hk_mse *hs;              /* the responder while the MSE handshake runs, else NULL */
    hk_mse_rx rx;            /* the receive direction after it */
    hk_cipher *send;         /* keyB, given to the backend with set_cipher (RC4 selected), else NULL */
    uint8_t ih[20];          /* the torrent named by SKEY */
} hk_peer_mse;

struct hk_peer {
    uint64_t id;             /* sequential, from 1 */
    hk_conn *conn;
    uint32_t slot;           /* index in the seeder's peer table */
    uint32_t torrent;        /* torrent record number, or HK_TT_NONE before the handshake */
    uint8_t phase;           /* hk_peer_phase */
    uint8_t ut_metadata;     /* the peer's extended id for ut_metadata (0: not supported) */
    uint8_t turn;            /* serving turns taken (wraps), to recognise requests moved back in this turn */
    bool fast;               /* both sides set the fast extension bit */
    bool extended;           /* the peer set the BEP 10 bit */
    bool interested;
    bool closed;
    bool idle_armed;         /* unchoked with no block queued since idle_since */
    size_t room;             /* bytes the backend accepts now */
    uint64_t debt;           /* control bytes sent beyond room since the last on_sendable */
    uint64_t debt_limit;
    uint64_t uploaded;       /* block payload bytes sent */
    hk_time accepted_at;
    hk_time last_recv;       /* last complete message (or accept) */
    hk_time last_send;       /* last send() of ours (or accept) */
    hk_time idle_since;      /* see idle_armed */
    hk_time stall_since;     /* blocked on room since; HK_TIME_NEVER when not blocked */
    hk_time disk_retry_at;   /* disk retry: when its BACKOFF requests are tried again; HK_TIME_NEVER: none */
    hk_choke_entry choke;
    hk_deadline dl;
    hk_request_queue rq;
    wire_decoder dec;
    hk_list ready_link;      /* in the seeder's ready ring (it may have something to send); detached otherwise */
    hk_list event_link;      /* open: in the seeder's list of peers touched this event (rescheduled at its end);
                              * closed: in the seeder's grave (freed at the end of the event); detached otherwise */
    /* one-bit flags, so the record stays under test_seeder's 640 bytes per idle peer */
    /* non-fast overflow (issue 9) */
    bool reset_pending : 1;      /* requests over the cap were dropped: choke + unchoke go out once the queue is served */
    bool bad_dropped : 1;        /* no fast: a request of a bad piece was dropped (seeder_verify.c); once it asks for
                              * nothing for unchoked_grace, a choke + unchoke discards it (seeder_timers.c) */
    /* slot squatting (issue 14 item 2) */
    bool grace_over : 1;         /* unchoked: this idle or stalled stretch outlasted its grace (spare, or turned over) */
    bool turn_requested : 1;     /* unchoked: a block request was queued in this turn */
    bool stall_drained : 1;      /* unchoked: the backend granted room after a stall in this turn (the peer reads) */
    bool ready_first : 1;        /* on the ready ring's front: its queue was empty (seeder_serve.c, served alone) */
    /* MSE/PE (core/mse.h; the seeder's glue is seeder_mse.c) */
    uint8_t sniffed;         /* bytes of 0x13 "BitTorrent protocol" seen at the stream's start (0..20) */
    bool via_mse;            /* the BitTorrent stream came through an MSE handshake (mse->ih names its torrent) */
    bool encrypted;          /* RC4 selected: mse->send installed, received bytes decrypted through mse->rx */
    /* upload rate caps (seeder_rate.c) */
    bool rate_passed;        /* passed over for tokens in the current service pass (in the seeder's rate_passed) */
    /* piece verification (seeder_verify.c) */
    uint8_t lt_donthave;     /* the peer's extended id for BEP 54 lt_donthave (0: not supported) */
    hk_peer_mse *mse;        /* allocated when an MSE handshake starts (plain peers carry only this pointer) */
};

void hk_peer_init(hk_peer *p, uint64_t id, hk_conn *conn, uint32_t slot, hk_time now, hk_rq_home *rq_home,
                  uint32_t queue_max, uint32_t max_message);
/* Releases what the peer owns (decoder buffer, queue memory, the MSE responder and ciphers). */
void hk_peer_release(hk_peer *p);

typedef enum hk_msg_verdict {
    HK_MSG_OK = 0,
    HK_MSG_SEED,             /* the peer has everything: a seed (close, not an error) */
    HK_MSG_NOT_NEGOTIATED,   /* fast or extended message without the bit */
    HK_MSG_UNEXPECTED,       /* piece or reject: we never request */
    HK_MSG_BAD_BITFIELD,     /* bitfield length wrong for the torrent */
} hk_msg_verdict;

/* Judges m (received in HK_PHASE_ACTIVE) for a torrent of piece_count pieces. */
hk_msg_verdict hk_peer_check_msg(const hk_peer *p, const wire_msg *m, uint32_t piece_count);
const char *hk_msg_verdict_name(hk_msg_verdict v);

/* Takes n bytes from room; control bytes may exceed it (debt). Returns false if the debt is now above the limit. */
bool hk_peer_account(hk_peer *p, size_t n);
/* The backend's new room: debt cleared. */
void hk_peer_set_room(hk_peer *p, size_t room);

#endif
