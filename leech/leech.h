/* leech: one BitTorrent leecher's protocol logic — handshake, interest, requests by strategy and pipeline,
 * choke/unchoke and reject handling, block verification, the magnet users' ut_metadata fetch, MSE/PE, and the hostile
 * behaviours of the scenario format — written against the wire codec (core/wire.h) and a small I/O face (send bytes,
 * end the connection, report events), pure like core/: no sockets, no clock, no randomness except the seed it is
 * given or the host's hooks. The one implementation of a leecher: hekate-swarm (libev sockets, backend-swarm/fleet.c)
 * and hekate-sim (SimGrid, backend-sim/peer_wire.c) both drive it; the simulator's extras (its clock for request
 * latencies, its event log, its random streams, leecher-to-leecher trading) come in through lk_hooks.
 *
 * Contract
 * --------
 * lk_init() sets up one peer for one torrent (its block layout and its request order, drawn from `seed`; a host with
 * hooks->metadata draws a magnet peer's order when its metadata arrives instead); the peer then lives through any
 * number of connections: lk_connection_start() for each new one (outstanding requests are asked again later),
 * lk_connected() when the transport is up (sends the handshake; a mute peer sends nothing), lk_feed() for every byte
 * received, lk_keepalive() / lk_flood() when the host's timers say so, lk_connection_lost() when the host saw the
 * connection end (nothing more is sent or decoded on it). Every byte to send goes through io.send; the end of a
 * connection (completion, a protocol error of the seeder, a bad block, a half-open peer vanishing) through io.end,
 * once per connection, after which lk_feed ignores its input. Choke state changes seen on the wire go through
 * io.choke. Nothing here fails except out of memory, which aborts.
 * Verification: when the torrent carries block digests (lk_torrent.block_sha1, each the SHA-1 of one 16 KiB block
 * of data whose pieces were checked against the .torrent's piece hashes), every received block is hashed and
 * compared; a mismatch counts in bad_blocks and ends the connection as a protocol error of the seeder. When it
 * carries the verified data itself (lk_torrent.block_data, checked against the piece hashes the same way), every
 * received block is compared with its bytes instead (memcmp: the same verdicts, a tenth of SHA-1's CPU); block_data
 * is used when both are set.
 * Pieces not offered (lk_params.lack_refused, for a seeder that verifies pieces): a piece left out of the seeder's
 * bitfield, or rejected LK_LACK_REJECTS times in a row while unchoked, is taken as lacking (book.h): it is not asked
 * for again and the peer completes without it.
 * Encryption: with par.encryption set, lk_connected() opens with the MSE/PE initiator (core/mse_initiator.h), the
 * handshake as its initial payload, offering RC4 or plaintext only; until the seeder's answer is complete nothing
 * else is sent (a keep-alive asked for meanwhile is dropped), then every byte goes through the selected cipher both
 * ways. A failed MSE handshake is a protocol error of the seeder (mse_failures).
 * Magnet peers (LK_MAGNET) fetch the info dictionary over ut_metadata first (meta.h: extension handshake, every
 * piece requested, the whole hashed against the info-hash and parsed, its length and piece length checked against
 * the torrent's), and only then say interested and download like normal peers; a seeder without the extension
 * protocol or ut_metadata, a rejected request or a wrong dictionary is a metadata failure (meta_failures) and a
 * protocol error of the seeder. Pieces of metadata received survive a reconnection.
 */
#ifndef HEKATE_LEECH_H
#define HEKATE_LEECH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "book.h"
#include "meta.h"
#include "mse_link.h"
#include "wire.h"

/* The same values as backend-sim's sim_behaviour, sim_strategy, sim_invalid (scenario.h). */
typedef enum lk_behaviour {
    LK_NORMAL = 0, LK_SLOW_READER, LK_IDLE, LK_SILENT, LK_HALF_OPEN, LK_FLOODER, LK_INVALID, LK_MAGNET, LK_MUTE,
    LK_NON_READER
} lk_behaviour;
typedef enum lk_strategy { LK_RANDOM = 0, LK_SEQUENTIAL } lk_strategy;
typedef enum lk_invalid { LK_INVALID_LENGTH = 0, LK_INVALID_INDEX, LK_INVALID_BEGIN } lk_invalid;
/* The same values as backend-sim's sim_encryption: no MSE, MSE with RC4 for the whole stream, MSE then plaintext. */
typedef enum lk_encryption { LK_ENC_NONE = 0, LK_ENC_RC4, LK_ENC_PLAINTEXT } lk_encryption;

/* Why a connection ended (the same values as backend-sim's lee_end). */
typedef enum lk_end {
    LK_END_NONE = 0, LK_END_COMPLETE, LK_END_REFUSED, LK_END_CLOSED_BY_SEEDER, LK_END_DEPARTED, LK_END_VANISHED,
    LK_END_TIME
} lk_end;

typedef struct lk_params {
    lk_behaviour behaviour;
    lk_strategy strategy;
    uint32_t pipeline;           /* requests kept outstanding while unchoked */
    bool fast;                   /* announce the fast extension */
    uint32_t flood_rate;         /* flooder: requests per lk_flood() call */
    lk_invalid invalid;
    uint64_t vanish_after;       /* half_open: payload bytes before it vanishes */
    lk_encryption encryption;    /* MSE/PE initiator (leech_mse.c): the BitTorrent handshake goes as its IA */
    bool lack_refused;           /* pieces the seeder leaves out of its bitfield or keeps rejecting are done without */
    const char *peer_id_prefix;  /* the peer id's first 8 characters; NULL: "-SW0100-" */
} lk_params;

#define LK_LACK_REJECTS 4 /* rejects of a piece in a row (lack_refused) after which it is taken as not offered */

typedef struct lk_torrent {
    uint8_t info_hash[20];
    lk_layout lay;               /* lk_torrent_layout */
    const uint8_t (*block_sha1)[20]; /* lay.nblocks digests, or NULL: no verification */
    const uint8_t *block_data;       /* lay.size bytes of verified data, or NULL (then block_sha1 decides) */
} lk_torrent;

/* What a host may add (every member optional; a NULL table or member: the default named with it). Each gets io.ctx.
 * One table shared by all of a host's peers. */
typedef struct lk_hooks {
    uint64_t (*now)(void *ctx);                 /* requests' ask times (answered gets the wait); default: none */
    void (*note)(void *ctx, const char *event); /* one line for the host's event log ("lacks piece 3"); default: none */
    void (*answered)(void *ctx, uint32_t b, uint64_t waited); /* block b's request answered (piece or reject) */
    void (*taken)(void *ctx, uint32_t b, uint32_t len);       /* block b received, new to the book */
    void (*handshake)(void *ctx);               /* the seeder's handshake accepted */
    uint64_t (*random_below)(void *ctx, uint64_t n); /* a flooder's block choice; default: the peer's own stream */
    void (*random_fill)(void *ctx, uint8_t *b, size_t n); /* MSE keys and pad; default: the peer's own stream */
    /* a magnet peer's metadata arrived: the host learns the layout now and gives the request order's seed; with it,
     * lk_init leaves a magnet peer's book to this moment (default: the layout and seed given to lk_init) */
    uint64_t (*metadata)(void *ctx, uint64_t total_length, uint32_t piece_length);
    /* requests to the seeder kept by the host (trading peers: trade.h) instead of the book alone; all or none:
     * outstanding count, next block to ask (LK_NO_BLOCK: none), a request sent, every request back to be asked */
    uint32_t (*trade_out)(void *ctx);
    uint32_t (*trade_pick)(void *ctx);
    void (*trade_asked)(void *ctx, uint32_t b);
    void (*trade_requeue_all)(void *ctx);
    const uint8_t *(*zeros)(void *ctx);         /* contentless bytes (lk_feed with p NULL) decode as these zeros */
} lk_hooks;

typedef struct lk_io {
    void *ctx;
    void (*send)(void *ctx, const uint8_t *b, size_t n);   /* required */
    void (*end)(void *ctx, lk_end why, bool fin);          /* required: end the connection (with a FIN when fin) */
    void (*choke)(void *ctx, bool unchoked);       /* a choke state change seen on the wire (may be NULL) */
    const lk_hooks *hooks;                         /* may be NULL */
} lk_io;

typedef struct lk_peer {
    const lk_params *par;
    const lk_torrent *t;
    lk_io io;
    uint32_t id;                 /* in the peer id */
    uint64_t rng;                /* flooder's block choices (splitmix64 state) */
    uint64_t mse_rng;            /* MSE keys and pads (splitmix64 state) */
    wire_decoder dec;
    bool conn_ended, got_handshake, unchoked, fast, ext, stopped_reading;
    lk_book book;                /* held, outstanding and to-ask-again blocks, the request order (book.h) */
    lk_mse_link mse;             /* MSE (mse_link.h): the initiator until its handshake is done, then its ciphers */
    lk_meta meta;                /* a magnet peer's ut_metadata fetch (meta.h), wanted until it is done */
    /* results */
    bool completed, vanished;
    uint64_t bytes, flood_sent;
    uint32_t unrequested, dup_blocks, rejects, protocol_errors, bad_blocks, unchokes, chokes;
    uint32_t mse_handshakes, mse_rc4_handshakes; /* MSE handshakes completed; of them, with RC4 selected */
    uint32_t mse_failures;       /* MSE handshakes that failed (the connection then ended as a seeder's error) */
    uint32_t meta_failures;      /* magnet: the metadata could not be had (meta.h's LK_META_FAILED) */
    uint8_t *piece_rejects;      /* lack_refused: per piece, rejects since the last block of it (NULL until one) */
} lk_peer;

/* Fills the block layout of t from size and piece_length (piece_length >= 16 KiB); 0, or -1 if it is too large. */
static inline int lk_torrent_layout(lk_torrent *t, uint64_t size, uint32_t piece_length)
{
    return lk_book_layout(&t->lay, size, piece_length);
}
/* The length of block b of t. */
static inline uint32_t lk_block_len(const lk_torrent *t, uint32_t b) { return lk_layout_block_len(&t->lay, b); }

/* seed: the request order's permutation seed (hekate-sim's peers draw it with prng_next from their stream) */
void lk_init(lk_peer *l, const lk_params *par, const lk_torrent *t, lk_io io, uint32_t id, uint64_t seed);
void lk_free(lk_peer *l);
/* A new connection: a fresh decoder; requests still outstanding are asked again later. */
void lk_connection_start(lk_peer *l);
/* The host saw the connection end (closed by the seeder, a departure): nothing more is sent or decoded on it. */
void lk_connection_lost(lk_peer *l);
/* The peer holds (or lacks) every block, learnt by the host (a trading link): completed, the connection ends. */
void lk_complete(lk_peer *l);
/* Asks for more blocks now if the connection allows (the host's book changed: a trading link took some). */
void lk_request_more(lk_peer *l);
/* The transport is up: the handshake (nothing for a mute peer). */
void lk_connected(lk_peer *l);
/* Bytes received, decoded and acted upon until the connection ends; p NULL: n contentless bytes (hooks->zeros). */
void lk_feed(lk_peer *l, const uint8_t *p, size_t n);
/* true for the behaviours that keep an idle connection alive with keep-alives */
bool lk_sends_keepalives(const lk_peer *l);
void lk_keepalive(lk_peer *l);
/* A flooder's tick (the host calls it every second once lk_flooding() is true): flood_rate random requests. */
bool lk_flooding(const lk_peer *l);
void lk_flood(lk_peer *l);
/* non_reader: it has sent its one burst and reads nothing more (the host stops reading the socket). */
static inline bool lk_stopped_reading(const lk_peer *l) { return l->stopped_reading; }

#endif
