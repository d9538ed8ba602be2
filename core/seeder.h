/* seeder: the seeding engine, one object per process, driven by events and acting through its runtime table
 * (core/seeder_runtime.h).
 *
 * Contract
 * --------
 * The seeder owns the torrent table, every peer's protocol state, the choker, the request queues, the block
 * readiness policy and all deadlines. It performs no I/O: everything goes through the hk_seeder_runtime given at creation.
 * Every function below is an event (backend -> core) or a management call; none may be called from inside an action
 * (actions never re-enter the core).
 *
 * Connections. hk_seeder_on_accept returns the core's peer for a new connection, or NULL when the seeder refuses it
 * (connection cap reached, or the per-address caps below): the backend then closes the socket and reports nothing
 * more. A peer's events carry the
 * hk_peer* until either the core calls rt->close(conn) (the backend then delivers nothing more for it) or the
 * backend calls hk_seeder_on_closed (the core then never touches that conn again).
 *
 * Flow control. Each peer has a `room`: bytes the backend will accept now. It starts at 0; the backend grants room
 * with hk_seeder_on_sendable(peer, room) (the new total, not an increment) whenever its queue for the connection
 * drains below its low-water mark, including once right after accept. The core keeps what it sends within room,
 * except for small control messages (handshake, have-all/bitfield, choke, unchoke, reject, keep-alive), which it may
 * send at any time; a peer whose unsent control output keeps growing (it does not read) is disconnected.
 *
 * Torrents. The backend validates data on disk, then calls hk_seeder_add_torrent with the raw .torrent bytes and a
 * `storage` handle; block sends then name (storage, file index, offset, length) extents. The handle's low 32 bits
 * are the torrent's id, chosen by the backend (its dense index of the storage: the seeder's records are slabs of 1,024
 * covering the ids in use, core/torrent_table.h), bits 32..46 a generation of its choice (the seeder keeps 15 bits, not the
 * handle, and rebuilds it for every extent: issue 10), the bits above 0. An add whose id is in use (or out of range)
 * is refused (HK_ADD_INVALID). Piece hashes and the
 * info dictionary are not kept in memory: ut_metadata is served from HK_FILE_METAINFO extents of the .torrent file.
 *
 * Piece verification (seeder_verify.c, docs/design.md §13). With the runtime's optional disk_verify, every piece of a
 * new torrent is *unknown* until checked; only *good* pieces are ever sent. A block request of an unknown piece
 * waits (like a disk load) for one disk_verify of the whole piece, shared by every request of that piece, whose
 * expected SHA-1 the backend reads from the .torrent (the 20 bytes at `pieces` + 20 x index). GOOD: served as usual
 * and never checked again. BAD: never sent; its requests are rejected (fast peers) or the peer is closed (without
 * the fast extension a request cannot be refused, and it was told it could have it); peers that connect later get a
 * bitfield without the bad pieces instead of HAVE_ALL; one WARN line names the torrent and every bad piece known so
 * far ("torrent HEX (name): damaged: pieces 3, 17 fail their hash; they are never sent"), written each time a new
 * one is found; stats count pieces_verified / pieces_bad. RETRY: the requests wait 50 ms, then the piece is checked
 * again. ERROR: the torrent is failed. Without disk_verify (backend-sim today) every piece counts as good and
 * nothing changes. The state costs a pointer and a flag per torrent; a bitmap and the bad list only while a torrent
 * has known pieces and is not all good.
 *
 * Determinism. Decisions depend only on the sequence of calls, their arguments, rt->now() and rt->random_bytes();
 * never on pointer values or iteration over pointer-keyed containers. Peers are numbered 1, 2, ... in accept order
 * (hk_peer_number); every decision is logged at HK_LOG_DEBUG as "peer N: ..." (accepted, handshake, interested,
 * unchoked, choked, reject/drop, timeout, closed: reason), so the simulator's event log is made of these lines.
 *
 * Behaviour decisions (where the design notes left a choice):
 *   - Handshake: the torrent is chosen and our handshake + HAVE_ALL (fast peers) or a full bitfield + the extension
 *     handshake (BEP 10 peers: ut_metadata, metadata_size, reqq, upload_only, p, v) are sent as soon as 48 bytes
 *     (protocol, reserved, info-hash) have arrived. Unknown info-hash, a failed torrent or a bad protocol string:
 *     close. A seed (all-ones bitfield, HAVE_ALL, upload_only) is closed (not counted as a protocol error).
 *   - Requests: invalid (index, length 0 or > max_block, beyond the piece end) -> protocol error, close. While choked,
 *     over the reqq cap (fast peers), or a duplicate of a queued request -> reject (fast) or drop; the duplicate is
 *     not queued twice (the queued one answers it; with the fast extension every request still gets exactly one
 *     answer). A peer without the fast extension cannot be told of a refusal, so it is never dropped silently while
 *     unchoked: over reqq its requests are still queued and served, up to an overflow cap (4 x reqq, at least two
 *     pieces of 16 KiB blocks, at most 8192); beyond that (or out of memory) the rest is dropped until the queued
 *     ones are served, then the peer is choked, which discards the dropped ones in a way it sees (BEP 3: it
 *     re-requests after an unchoke), and unchoked at once, keeping its slot and turn (stats choke_resets).
 *     Cancel of a queued request removes it and, with the fast extension, answers it with a reject (BEP 6); a cancel
 *     for a block already sent or never queued is ignored. requests_rejected counts rejects sent and drops.
 *   - Choking: the unchoked-idle timeout chokes the peer and puts it at the back of the line when someone waits
 *     (it stays interested, so it gets a turn again); when nobody waits it keeps its slot and the timer restarts.
 *     Slot squatting (issue 14 item 2): an unchoked peer that asks for nothing for its grace (unchoked_grace / 4 +
 *     4 x its hello, accept to first interested, at most unchoked_grace), or leaves queued data unread for
 *     unchoked_stall (its grace while it has read nothing since the unchoke), has an unused turn: if anyone waits it is choked (queued requests rejected or
 *     dropped), gets a strike and waits in a low-priority line served only when the normal line is empty (a used
 *     turn, credit or slice, clears the strikes and is not ended for low-priority waiters); if nobody waits it keeps
 *     its slot as spare, taken at once by the next peer to join the normal line (stats turns_unused, preemptions).
 *     A peer with a strike is spare whenever it is unchoked and has asked for nothing in that turn.
 *     "The line is full" means connections are at max_peers: a peer whose turn ends then is disconnected, giving its
 *     connection to a newcomer (Hekate's rule). Not interested: choked, its queued requests rejected, slot freed.
 *   - Serving: a service pass lets the ready peers take turns (equal shares of at most 256 blocks per pass; then the
 *     core asks to be woken at once to continue), each peer's share going out in sends of up to 64 blocks. A request
 *     whose extents are not resident is passed over once (checked again in a later turn), then loaded with
 *     disk_load (one per extent, one token per request) and sent when every load completed; HK_DISK_ERROR fails the
 *     torrent (storage_failed behaviour), even when the requesting peer or its request is gone by then (a token
 *     names its torrent until its last completion; a load of a torrent since removed fails nothing). Pad files are sent as zero bytes, never read.
 *   - Control output beyond room is tolerated up to 64 KiB (plus the handshake reply) until the next on_sendable;
 *     beyond that the peer does not read and is closed (counted as a protocol error). Data waiting for room for
 *     send_stall_timeout closes the peer. Memory per peer is therefore bounded by the queue cap and this bound.
 *   - ut_metadata: requests are served (even to choked peers) up to 8 queued per peer, beyond that, or for a torrent
 *     whose info dictionary exceeds 64 MiB, or for a piece index beyond the metadata, rejected (BEP 9 reject); a
 *     malformed ut_metadata message is a protocol error. A malformed or out-of-range field of the extension
 *     handshake is ignored (core/extension.h); only a handshake that is not a bencoded dictionary closes the peer.
 *   - Timeouts set to 0 are invalid except slice and max_wait (0 = unlimited).
 *   - Per-address caps: at accept, after the connection cap, a connection whose address already holds
 *     max_peers_per_address live connections, or whose /24 (IPv4 and IPv4-mapped IPv6) or /64 (IPv6) holds
 *     max_peers_per_prefix, is refused (peers_refused and refused_per_address / refused_per_prefix counted, one
 *     DEBUG line "connection from ADDR refused: per-address cap ..."). A connection counts from its accept until its
 *     close, whatever the close path (handshake never finished, timeout, protocol error, the backend's close, the
 *     torrent removed); the port is ignored. The counts take at most two entries per live connection
 *     (memory_bytes includes them). Caps of 0 keep no count at all.
 *   - Upload rate caps (cfg.upload_rate, cfg.torrent_upload_rate, hk_seeder_set_torrent_rate; docs/design.md §14):
 *     token buckets counting the bytes of data messages (piece and ut_metadata data, headers included); control
 *     messages never wait. The service pass takes a message's bytes from the global bucket and its torrent's before
 *     batching it; a short global bucket ends the pass, a short torrent bucket ends that peer's turn. A peer stopped
 *     before it sent anything keeps its place at the front of the ready ring; the core then asks to be woken when
 *     the tokens will exist (not at once). Counted in rate_delayed_bytes and rate_stops.
 *   - MSE/PE (core/mse.h; policy cfg.encryption): a connection whose first bytes are not 0x13 "BitTorrent protocol"
 *     runs the MSE responder when the policy is not HK_ENC_OFF and rt->set_cipher exists (else the plain decoder
 *     judges the bytes, as before); HK_ENC_REQUIRE closes a plain handshake ("plain handshake refused: encryption
 *     required"). The handshake timeout covers the MSE phase. On success one line is logged, which tests grep:
 *       "peer N: mse handshake for torrent HEX: encrypted rc4 (offered rc4+plaintext)"    (RC4 selected)
 *       "peer N: mse handshake for torrent HEX: plaintext (offered rc4+plaintext)"        (plaintext selected)
 *     ("offered" lists the peer's crypto_provide: rc4, plaintext or rc4+plaintext), then the usual handshake lines.
 *     With RC4 the core calls rt->set_cipher(conn, keyB) before its first BitTorrent byte and decrypts every later
 *     received byte (keyA) before the wire decoder; with plaintext it never calls set_cipher (the MSE reply is
 *     encrypted by the core itself). The BitTorrent handshake inside must name the SKEY's torrent, else close. A
 *     failure closes with "mse handshake failed: REASON" (counted in mse_failures, not in protocol_errors).
 */
#ifndef HEKATE_SEEDER_H
#define HEKATE_SEEDER_H

#include "histogram.h"
#include "metainfo.h"
#include "seeder_runtime.h"
#include "token_bucket.h"
#include "verify_pass.h"

typedef struct hk_seeder hk_seeder;

/* What the seeder accepts and selects in the MSE/PE handshake (core/mse.h). */
typedef enum hk_encryption {
    HK_ENC_ALLOW = 0,                /* plain and encrypted handshakes; RC4 selected when the peer offers it (default) */
    HK_ENC_PREFER_PLAIN,             /* both; plaintext-after-handshake selected when offered, else RC4 */
    HK_ENC_REQUIRE,                  /* only encrypted handshakes, and only with RC4 selected */
    HK_ENC_OFF,                      /* only plain BitTorrent handshakes (an MSE handshake is closed) */
} hk_encryption;

typedef struct hk_config {
    uint32_t max_unchoked;           /* N: peers unchoked at once (default 50) */
    uint32_t max_peers;              /* connections at once (default 10 * N) */
    uint64_t credit;                 /* C: bytes a peer may take per unchoke (default 1 MiB) */
    hk_time slice;                   /* T: longest unchoke turn (default 300 s; 0 = no limit) */
    hk_time handshake_timeout;       /* handshake not complete (default 10 s) */
    hk_time idle_timeout;            /* no message at all from the peer (default 120 s) */
    hk_time keepalive_interval;      /* we send a keep-alive after this much silence of ours (default 90 s) */
    hk_time unchoked_idle_timeout;   /* unchoked with an empty request queue: choke (default 30 s) */
    hk_time send_stall_timeout;      /* data queued but no send progress: disconnect (default 60 s) */
    hk_time max_wait;                /* longest wait in the unchoke line (0 = unlimited; default 0) */
    uint32_t reqq;                   /* per-peer request queue cap, advertised as `reqq` (default 256) */
    uint32_t max_block;              /* largest request length accepted (default 16 KiB, at most 128 KiB) */
    uint32_t max_message;            /* largest incoming message accepted (default 64 KiB) */
    uint16_t listen_port;            /* advertised as `p` in the extension handshake (0 = omit) */
    uint16_t dht_port;               /* the DHT node's UDP port (BEP 5): the handshake's DHT bit is set and a PORT
                                      * message follows the handshake reply to peers that set it (0 = no DHT) */
    hk_encryption encryption;        /* MSE/PE policy (default HK_ENC_ALLOW) */
    uint8_t peer_id[20];             /* all zero: "-HK0100-" + 12 random characters from the runtime */
    /* Per-address caps (core/addr_limit.h): live connections from one address, and from one /24 (IPv4, also
     * IPv4-mapped IPv6) or /64 (IPv6), counted at accept time; 0 = unlimited. */
    uint32_t max_peers_per_address;  /* default 8 */
    uint32_t max_peers_per_prefix;   /* default 64 (an eighth of the default max_peers: 8 networks fill it) */
    /* slot squatting (issue 14 item 2) */
    hk_time unchoked_grace;          /* unchoked, no block request queued this long: the turn is unused (default 2 s) */
    hk_time unchoked_stall;          /* unchoked, queued data not read (no room) this long: unused (default 10 s) */
    /* upload rate caps (issue 11 item 5; core/token_bucket.h): bytes per second of data messages (piece and
     * ut_metadata data, their headers included); control messages are never capped. 0 = unlimited. */
    uint64_t upload_rate;            /* global cap (default 0; at most HK_TB_RATE_MAX) */
    uint64_t torrent_upload_rate;    /* cap of each torrent as it is added (default 0 = none; see
                                      * hk_seeder_set_torrent_rate) */
    uint64_t upload_burst;           /* most tokens each bucket holds (0 = auto, the default: a tenth of a second of
                                      * its rate, at least HKS_RATE_MIN_BURST; else at least that) */
    /* background verification (issue 10; core/verify_pass.h, seeder_vpass.c): only with the runtime's disk_verify */
    bool verify_full;                /* every torrent added is queued for a full check (default false: lazy only) */
    uint64_t verify_rate;            /* bytes/s a background pass reads (default 64 MiB/s; 1..HK_VPASS_RATE_MAX) */
} hk_config;

void hk_config_defaults(hk_config *cfg);
/* Checks ranges; returns NULL if valid, else a static message naming the bad field. */
const char *hk_config_check(const hk_config *cfg);

/* Settings changed at run time (SIGHUP, reload-config): cfg is checked with hk_config_check (NULL returned, else
 * the message, nothing changed). Live fields, applied at once: max_unchoked (raised: waiters promoted now; lowered:
 * the extra slots end with their turns), max_peers (lowered: no one is closed, new connections are refused and
 * turns ending at the cap disconnect, until under it), credit and slice (from each peer's next turn), every
 * timeout and grace (each live peer's deadline recomputed now: a shorter timeout may fire at once), and the
 * per-address caps (checked at accept; raising a cap from 0 counts only the connections accepted from then on), and
 * the global upload cap (upload_rate, upload_burst: the bucket takes the new rate at once; 0 lifts the cap).
 * Restart-only fields, ignored (the seeder keeps its own): reqq (advertised to peers), max_block, max_message,
 * listen_port, dht_port, encryption, peer_id, torrent_upload_rate (the default given to each torrent as it is added;
 * hk_seeder_set_torrent_rate changes one torrent's), verify_full. verify_rate is live (a pass under way is paced at
 * the new rate from now on). hk_seeder_config: the settings in force. */
const char *hk_seeder_set_config(hk_seeder *s, const hk_config *cfg);
const hk_config *hk_seeder_config(const hk_seeder *s);

/* A new seeder acting through a copy of *rt. NULL when cfg fails hk_config_check, when rt lacks a required member
 * (hk_seeder_runtime_check says which), or when memory runs out. */
hk_seeder *hk_seeder_new(const hk_config *cfg, const hk_seeder_runtime *rt);
/* Frees everything. Does not call rt->close: the backend tears down its connections itself. */
void hk_seeder_free(hk_seeder *s);

/* ---- Torrent management ---- */
typedef enum hk_add_result {
    HK_ADD_OK = 0,
    HK_ADD_INVALID,                  /* the .torrent is malformed: err says why */
    HK_ADD_DUPLICATE,                /* same info-hash already served */
    HK_ADD_NOMEM,
} hk_add_result;

hk_add_result hk_seeder_add_torrent(hk_seeder *s, const uint8_t *torrent, size_t len, uint64_t storage,
                                    uint8_t info_hash_out[20], char *err, size_t errlen);
/* As hk_seeder_add_torrent, from a description parsed already (mi_parse, or a resume state's hk_rs_desc_decode): the
 * backend reads and parses each .torrent once. The seeder copies what it needs; mi may be freed after the call.
 * HK_ADD_OK sets *id_out (if not NULL) to the torrent's id, (uint32_t)storage: it names it until it is removed
 * (hk_seeder_remove_torrent), then may name a torrent added later. A backend keeps it instead of the info-hash
 * (hk_seeder_info_hash gives it back: issue 10, 20 bytes per torrent). */
struct hk_pieces;
hk_add_result hk_seeder_add_parsed(hk_seeder *s, const mi_torrent *mi, uint64_t storage, uint32_t *id_out, char *err,
                                   size_t errlen);
/* The info-hash of the torrent with this id (hk_seeder_add_parsed), valid until it is removed; NULL if no torrent
 * has that id now. */
const uint8_t *hk_seeder_info_hash(const hk_seeder *s, uint32_t id);
/* The offset of its info dictionary in its .torrent (mi->info_start); UINT64_MAX if no torrent has that id now. */
uint64_t hk_seeder_info_start(const hk_seeder *s, uint32_t id);
/* Its name (mi->name: *len bytes, not NUL-terminated), valid until the next management call; NULL if no torrent has
 * that id now. */
const char *hk_seeder_torrent_name(const hk_seeder *s, uint32_t id, uint32_t *len);
/* Piece verification marks, for a resume state (core/seeder_resume.c). hk_seeder_torrent_marks: false if the
 * torrent is unknown; else *all_good, and *pieces the detail block (core/piece_state.h; NULL: none) valid until the
 * next call into the seeder. *verifying: the runtime checks pieces (disk_verify), so marks mean something.
 * hk_seeder_restore_marks: the pieces whose bit is set in good (MSB first, piece_count bits; NULL: every piece) are
 * marked good, as if checked; nothing happens without disk_verify. Returns the pieces marked, or -1 (unknown
 * torrent, another piece count, out of memory: what was marked stays). */
bool hk_seeder_torrent_marks(hk_seeder *s, const uint8_t info_hash[20], bool *all_good,
                             const struct hk_pieces **pieces, bool *verifying);
int64_t hk_seeder_restore_marks(hk_seeder *s, const uint8_t info_hash[20], const uint8_t *good, uint32_t piece_count);
/* Stops serving: peers of that torrent are disconnected. Returns false if unknown. */
bool hk_seeder_remove_torrent(hk_seeder *s, const uint8_t info_hash[20]);
/* The backend found the torrent's data broken (file truncated, replaced, deleted): the torrent enters an error state,
 * its peers are disconnected and new connections for it are refused until it is removed and added again. */
void hk_seeder_storage_failed(hk_seeder *s, uint64_t storage, const char *why);

/* ---- Events ---- */
typedef enum hk_close_reason {
    HK_CLOSED_BY_PEER = 0,           /* orderly EOF */
    HK_CLOSED_ERROR,                 /* reset, timeout at the socket level, write error */
} hk_close_reason;

hk_peer *hk_seeder_on_accept(hk_seeder *s, hk_conn *conn, const hk_addr *from);
void hk_seeder_on_recv(hk_seeder *s, hk_peer *p, const uint8_t *bytes, size_t len);
void hk_seeder_on_sendable(hk_seeder *s, hk_peer *p, size_t room);
void hk_seeder_on_closed(hk_seeder *s, hk_peer *p, hk_close_reason why);
void hk_seeder_on_wake(hk_seeder *s);
void hk_seeder_on_disk_loaded(hk_seeder *s, uint64_t token, hk_disk_status status);
/* Piece verification: the completion of a disk_verify (seeder_runtime.h). Stale or unknown tokens are ignored. */
void hk_seeder_on_piece_verified(hk_seeder *s, uint64_t token, hk_verify_result result);

/* ---- Background verification (seeder_vpass.c; core/verify_pass.h; docs/design.md §13) ----
 * A pass checks queued torrents piece by piece through disk_verify at cfg.verify_rate bytes/s (a virtual clock: a
 * piece of n bytes holds the next one back n / rate seconds), at most HKS_VPASS_INFLIGHT pieces at once, so lazy
 * checks of requested pieces (never paced) pass it in the disk queue; pieces already good or bad, or being checked
 * for a request, are skipped; requests of a piece the pass is checking join its check. Serving goes on: the pass
 * changes nothing for pieces already good. With cfg.verify_full every torrent added is queued. An INFO line
 * "verify: T/N torrents, X of Y, R/s, ETA E" every 5 s while a pass runs, and "verify: pass done: ..." at its end.
 * Without disk_verify (verification off) there is no pass: the calls below return false. */
/* Drops every mark of the torrent's pieces (good and bad: all unknown, checked again before they are sent; the
 * results of checks already under way are not recorded, their requests start new ones) and queues it for a full
 * check. false: not served, verification off, or out of memory (marks dropped all the same). */
bool hk_seeder_verify_torrent(hk_seeder *s, const uint8_t info_hash[20]);
/* The torrent's data changed on disk (a file's size or mtime): every mark dropped as above; queued for a full check
 * only with cfg.verify_full (else lazily checked on next use). false: not served or verification off. */
bool hk_seeder_forget_pieces(hk_seeder *s, const uint8_t info_hash[20]);
typedef struct hk_verify_progress {
    bool active;                     /* a pass is queued or running */
    uint32_t torrents_total, torrents_done; /* of the pass under way (or the last one) */
    uint64_t bytes_total, bytes_done, bytes_checked; /* checked: hashed by the pass itself */
    uint32_t inflight;               /* pass pieces being checked */
} hk_verify_progress;
void hk_seeder_verify_progress(const hk_seeder *s, hk_verify_progress *out);
/* The torrent's bad pieces known so far, in increasing order: up to cap of them into out (may be NULL with cap 0);
 * returns how many are known (may exceed cap), 0 also when the torrent is not served. */
uint32_t hk_seeder_bad_pieces(const hk_seeder *s, const uint8_t info_hash[20], uint32_t *out, uint32_t cap);

/* ---- Observation ---- */
typedef enum hk_timeout_kind {
    HK_TIMEOUT_HANDSHAKE = 0,
    HK_TIMEOUT_IDLE,
    HK_TIMEOUT_UNCHOKED_IDLE,
    HK_TIMEOUT_SEND_STALL,
    HK_TIMEOUT_MAX_WAIT,
    HK_TIMEOUT_KINDS
} hk_timeout_kind;

typedef struct hk_stats {
    uint32_t torrents;
    uint32_t peers;                  /* connected (handshaken or not) */
    uint32_t unchoked;
    uint32_t waiting;                /* interested, in the unchoke line */
    uint32_t max_unchoked_seen;      /* high-water mark of `unchoked` */
    uint64_t queued_requests;        /* across all peers */
    uint64_t bytes_sent;             /* block payload bytes handed to send() */
    uint64_t blocks_sent;
    uint64_t requests_rejected;      /* rejects sent, and requests dropped (no fast extension) */
    uint64_t disk_loads;             /* disk_load calls issued */
    uint64_t requeues;               /* blocks moved back once because not resident */
    uint64_t peers_refused;          /* on_accept returned NULL */
    uint64_t protocol_errors;        /* peers closed for violating the protocol (or not reading at all) */
    uint64_t timeouts[HK_TIMEOUT_KINDS];
    uint64_t memory_bytes;           /* bytes the core currently holds on the heap */
    /* Per-address caps: connections refused (also counted in peers_refused) because their address, or their /24 or
     * /64, already held max_peers_per_address / max_peers_per_prefix connections. */
    uint64_t refused_per_address;
    uint64_t refused_per_prefix;
    /* non-fast overflow (issue 9) */
    uint64_t choke_resets;           /* non-fast peers choked and unchoked again because requests went over the cap */
    /* slot squatting (issue 14 item 2) */
    uint64_t turns_unused;           /* turns ended because the slot was not used (grace, stall, preemption) */
    uint64_t preemptions;            /* of those, spare slots taken at once for a peer waiting in the normal line */
    /* MSE/PE (core/mse.h) */
    uint32_t peers_encrypted;        /* connected peers whose stream is RC4 (peers - peers_encrypted are plain) */
    uint64_t mse_handshakes;         /* MSE handshakes completed (RC4 or plaintext selected) */
    uint64_t mse_failures;           /* MSE handshakes that failed (the peer was closed) */
    /* disk retry (HK_DISK_RETRY): */
    uint64_t disk_retries;           /* request rounds put back to wait after a load said RETRY */
    uint64_t disk_retry_rejects;     /* requests given up after too many RETRYs (rejected, fast peers only) */
    /* upload rate caps (issue 11 item 5) */
    uint64_t rate_delayed_bytes;     /* bytes of data messages that had to wait for tokens (each message once) */
    uint64_t rate_stops;             /* turns cut short for tokens (the global cap also ends the service pass) */
    /* piece verification (issue 10 item 1) */
    uint64_t verifies;               /* disk_verify calls issued */
    uint64_t pieces_verified;        /* disk_verify completions that said good */
    uint64_t pieces_bad;             /* ... that said bad (the piece is never sent) */
    uint64_t verify_retries;         /* ... that said RETRY */
    uint32_t verifies_pending;       /* piece verifications in flight now */
    uint64_t choker_turns;           /* turns the choker gave (unchokes and renewed turns) */
    uint64_t resident_hits;          /* requests whose data was resident at their first check (the misses of that
                                      * check are `requeues`) */
    /* metrics (issue 11 item 1): block requests, from their arrival (the REQUEST message handled) to their piece
     * message handed to send() (its first byte); resolution 16 us (hk_rq_stamp). Rejected, cancelled and dropped
     * requests are not observed. */
    hk_histogram first_byte;
} hk_stats;

void hk_seeder_stats(const hk_seeder *s, hk_stats *out);
const char *hk_timeout_name(hk_timeout_kind k);

/* Per-torrent observation (trackers report `uploaded`). */
typedef struct hk_torrent_stats {
    uint64_t uploaded;               /* block payload bytes handed to send() for this torrent */
    uint32_t peers;                  /* connected peers that chose this torrent */
    uint32_t pieces;
    uint64_t total_length;
    uint64_t storage;
    bool failed;                     /* hk_seeder_storage_failed was called (or a disk load failed) */
    uint64_t memory_bytes;           /* bytes the table holds for it: record, file entries, name (+ ~5 B of index,
                                      * ~13 B of MSE SKEY index: core/skey_index.h) */
    /* upload rate caps (issue 11 item 5) */
    uint64_t upload_rate;            /* its own cap in bytes/s (0 = none; the global cap applies too) */
    /* piece verification (issue 10) */
    uint32_t pieces_good;            /* verified good (= pieces when all good, or when nothing is checked) */
    uint32_t pieces_bad;             /* failed their hash (never sent) */
    uint32_t verifying;              /* piece verifications of it in flight now */
    bool in_pass;                    /* the background pass (--verify=full, hekatectl verify) is sweeping it now */
} hk_torrent_stats;

/* false if the info-hash is not served. */
bool hk_seeder_torrent_stats(const hk_seeder *s, const uint8_t info_hash[20], hk_torrent_stats *out);
/* Metrics: every served torrent (failed ones included) once, by record number, without a lookup: start with
 * *cursor = 0; each call fills info_hash_out and *out and returns true, false at the end. The seeder must not change
 * between calls (no event, no management call). */
bool hk_seeder_torrent_next(const hk_seeder *s, uint32_t *cursor, uint8_t info_hash_out[20], hk_torrent_stats *out);

/* Upload rate caps (issue 11 item 5): sets the torrent's own cap to `rate` bytes/s (0 removes it), replacing
 * cfg.torrent_upload_rate for that torrent; its bucket keeps the tokens it holds (up to the new burst). false: the
 * torrent is not served, rate is above HK_TB_RATE_MAX, or no memory for its bucket (the old cap stays). */
bool hk_seeder_set_torrent_rate(hk_seeder *s, const uint8_t info_hash[20], uint64_t rate);

/* Lines above this level are not even formatted (default HK_LOG_TRACE: everything). */
void hk_seeder_set_log_level(hk_seeder *s, hk_log_level max);

/* The 20-byte peer id the seeder sends in its handshakes (for tracker announces). */
const uint8_t *hk_seeder_peer_id(const hk_seeder *s);

/* The sequential number (from 1) the core gives a connection in its log lines, so backend logs can match them. */
uint64_t hk_peer_number(const hk_peer *p);

#endif
