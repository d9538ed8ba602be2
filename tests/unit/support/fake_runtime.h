/* fake_runtime: the seeder's runtime table (hk_seeder_runtime) for unit tests and the stateful fuzz target. It drives
 * the seeder without sockets.
 *
 * - Clock: fr->now, set by the test (fr_set_now / fr_advance); fr_run_until() advances time, calling
 *   hk_seeder_on_wake() exactly when the wake-up the core asked for is due (never before).
 * - Randomness: a seeded xorshift generator (same seed, same bytes).
 * - Records every action in order: send (with a copy of every segment: bytes copied, extents recorded), close,
 *   wake_at, disk_prefetch, disk_resident (the question and the answer), disk_load (extent + token), and log lines.
 * - Residency answers are configurable per extent: rules (storage, file, [offset, offset+len)) -> resident or not.
 *   The last rule of the same storage and file whose range contains the extent's first byte decides; the default
 *   answer applies when none does.
 * - Connections: fr_conn(fr, n) gives a stable fake hk_conn* for n in [0, FR_MAX_CONNS); logs print the number.
 * - fr_stream() reassembles every byte sent to a connection, extents materialised from a deterministic pattern
 *   (fr_pattern_byte) or, for HK_FILE_METAINFO, from bytes registered with fr_set_metainfo; fr_decode() parses that
 *   stream with the wire decoder as a client would.
 * - fr_action_log() renders the whole action log as text (no pointer values), for determinism comparisons.
 */
#ifndef HEKATE_TEST_FAKE_RUNTIME_H
#define HEKATE_TEST_FAKE_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime.h"
#include "seeder.h"
#include "wire.h"

#define FR_MAX_CONNS 4096

typedef enum fr_kind {
    FR_SEND = 1,
    FR_CLOSE,
    FR_WAKE_AT,
    FR_PREFETCH,
    FR_RESIDENT,
    FR_LOAD,
    FR_LOG,
    FR_VERIFY,           /* disk_verify (fr_enable_verify) */
} fr_kind;

typedef struct fr_seg {
    hk_segment_kind kind;
    size_t off;          /* BYTES: offset of the copy in fr->data */
    uint32_t len;        /* BYTES: length; EXTENT: ext.length */
    hk_extent ext;       /* EXTENT */
} fr_seg;

typedef struct fr_action {
    fr_kind kind;
    hk_time at;          /* fake clock when the action was taken */
    int conn;            /* SEND, CLOSE: connection number (-1 if not from fr_conn) */
    hk_time when;        /* WAKE_AT */
    hk_extent ext;       /* PREFETCH, RESIDENT, LOAD */
    bool answer;         /* RESIDENT */
    uint64_t token;      /* LOAD */
    size_t first_seg;    /* SEND: index in fr->segs */
    size_t nsegs;        /* SEND */
    uint64_t bytes;      /* SEND: total bytes of all segments */
    int level;           /* LOG */
    size_t log_off;      /* LOG: offset of the NUL-terminated line in fr->data */
    uint32_t piece;      /* VERIFY: the piece (token in `token`, its hash's extent in `ext`) */
    uint32_t nexts;      /* VERIFY: data extents */
    uint64_t vbytes;     /* VERIFY: their total length */
    hk_extent v2_hash;   /* VERIFY: a hybrid piece's v2 root in the .torrent (v2_length > 0) */
    uint64_t v2_length;  /* VERIFY: bytes of the piece under the v2 tree */
    uint32_t v2_leaves;  /* VERIFY: the tree's width */
} fr_action;

typedef struct fr_rule {
    uint64_t storage;
    uint32_t file;
    uint64_t offset, length;
    bool resident;
} fr_rule;

typedef struct fake_runtime {
    hk_time now;
    hk_time wake;        /* last wake_at request (HK_TIME_NEVER when none) */
    uint64_t rng;
    bool default_resident;
    bool record_logs;    /* default true */
    bool echo_logs;      /* print log lines to stderr (debugging) */
    fr_action *actions;
    size_t nactions, capactions;
    fr_seg *segs;
    size_t nsegs, capsegs;
    uint8_t *data;
    size_t ndata, capdata;
    fr_rule *rules;
    size_t nrules, caprules;
    uint8_t conns[FR_MAX_CONNS];   /* addresses used as fake hk_conn* */
    const uint8_t *metainfo;       /* bytes behind HK_FILE_METAINFO extents (not owned) */
    size_t metainfo_len;
    uint64_t metainfo_storage;
    uint64_t sends, send_calls_with_many_blocks;
    hk_cipher *cipher[FR_MAX_CONNS]; /* set_cipher (fr_enable_cipher): applied to every later byte sent to conn */
    uint64_t set_cipher_calls;
} fake_runtime;

fake_runtime *fr_new(uint64_t seed);
void fr_free(fake_runtime *fr);
hk_seeder_runtime fr_runtime(fake_runtime *fr);

/* Adds the optional set_cipher action to rt (MSE/PE): a send on a connection with a cipher is recorded as BYTES,
 * extents materialised (fr_pattern_byte / metainfo) and every byte encrypted in stream order, so fr_stream returns
 * what the socket would carry. close (and fr_forget_cipher, for on_closed) drop the connection's cipher. */
void fr_enable_cipher(hk_seeder_runtime *rt);
void fr_forget_cipher(fake_runtime *fr, int conn);
/* Adds the optional disk_verify action (piece verification): each call is recorded as a VERIFY action; the test
 * answers with hk_seeder_on_piece_verified(token, result). */
void fr_enable_verify(hk_seeder_runtime *rt);

hk_conn *fr_conn(fake_runtime *fr, int n);
int fr_conn_index(const fake_runtime *fr, const hk_conn *c);

void fr_set_now(fake_runtime *fr, hk_time t);
/* Advances the clock to t, calling hk_seeder_on_wake at each due wake-up (at exactly the requested time). Returns
 * the number of wake-ups delivered. */
int fr_run_until(fake_runtime *fr, hk_seeder *s, hk_time t);

void fr_set_default_resident(fake_runtime *fr, bool resident);
void fr_set_resident(fake_runtime *fr, uint64_t storage, uint32_t file, uint64_t offset, uint64_t length,
                     bool resident);
void fr_set_metainfo(fake_runtime *fr, uint64_t storage, const uint8_t *bytes, size_t len);

/* Forgets recorded actions (keeps configuration, clock and pending wake). */
void fr_clear(fake_runtime *fr);

size_t fr_count(const fake_runtime *fr, fr_kind kind);
/* Number of actions of this kind on connection n. */
size_t fr_count_conn(const fake_runtime *fr, fr_kind kind, int conn);
const fr_action *fr_last(const fake_runtime *fr, fr_kind kind);
bool fr_closed(const fake_runtime *fr, int conn);
/* Index of the first LOG action whose line contains `needle`, starting at action `from`; -1 if none. */
long fr_find_log(const fake_runtime *fr, const char *needle, size_t from);
const char *fr_log_line(const fake_runtime *fr, const fr_action *a);

uint8_t fr_pattern_byte(uint64_t storage, uint32_t file, uint64_t offset);

/* Every byte sent to connection n, in order (malloc'd; *len set). */
uint8_t *fr_stream(const fake_runtime *fr, int conn, size_t *len);

/* The stream to connection n decoded as a client would (handshake first). Payload pointers point into `stream`. */
typedef struct fr_msgs {
    uint8_t *stream;
    size_t len;
    wire_msg *m;
    size_t n;
    bool error;          /* the stream did not decode */
    bool partial;        /* it ended inside a message */
} fr_msgs;
fr_msgs fr_decode(const fake_runtime *fr, int conn, uint32_t piece_count);
void fr_msgs_free(fr_msgs *m);
/* Number of messages of this type in m. */
size_t fr_msgs_count(const fr_msgs *m, wire_msg_type type);

/* The whole action log as text, one line per action (malloc'd). */
char *fr_action_log(const fake_runtime *fr);

#endif
