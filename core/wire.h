/* wire: the BitTorrent peer wire protocol codec (BEP 3, BEP 6 fast extension, BEP 10 extended messages).
 *
 * Contract
 * --------
 * Decoder. A wire_decoder turns a byte stream, fed in chunks of ANY size, into typed messages. It is a pull API:
 * wire_feed() consumes bytes until one message is complete (WIRE_READY), the input is exhausted (WIRE_NEED_MORE) or
 * the stream is invalid (WIRE_ERROR). Feeding one byte at a time yields exactly the same messages, the same error and
 * the same error offsets as feeding the whole stream at once (the fuzz target checks this).
 *
 *   - Handshake first (unless wire_limits.skip_handshake): pstrlen must be 19 and pstr "BitTorrent protocol"; each
 *     byte is checked as it arrives, so a wrong byte is reported at once, at its own offset. The handshake message is
 *     yielded after all 68 bytes. Because a receiver of an incoming connection must pick the torrent before the peer
 *     id arrives (some peers wait for our handshake before sending theirs in full), wire_decoder_info_hash() returns
 *     the info-hash as soon as 48 bytes have been consumed, while wire_feed() still reports WIRE_NEED_MORE, and
 *     wire_decoder_reserved() the 8 reserved bytes as soon as 28 have (both stay available after the handshake).
 *   - Then length-prefixed messages. Every message with a fixed size has its exact length checked as soon as its id
 *     byte is read (request/cancel/reject 13, have/suggest/allowed_fast 5, port 3, the payload-less ones 1; piece at
 *     least 9, extended at least 2).
 *   - Length limit: a prefix larger than the limit is rejected AS SOON AS its 4 bytes are read, before anything is
 *     buffered. The limit is max_msg_len, except for a bitfield once the piece count is known: its length is then
 *     fixed by the protocol (1 + ceil(pieces / 8)) and accepted even when larger than max_msg_len, so a seeder may
 *     keep max_msg_len small for torrents with many pieces. (The prefix check uses the larger of the two; the exact
 *     check follows at the id byte.)
 *   - Bitfield: with a known piece count its length must be exactly ceil(pieces / 8) bytes and the spare bits of the
 *     last byte must be zero. With an unknown piece count (0) it is only bounded by max_msg_len.
 *   - Piece indices (have, request, piece, cancel, suggest, reject, allowed_fast) must be < piece count when it is
 *     known. Block offsets and lengths are NOT judged here (the peer state machine knows the piece sizes).
 *   - Unknown message ids (10-12, 18, 19, 21-255): an error by default (WIRE_ERR_UNKNOWN_ID, reported at the id byte,
 *     before the payload is read). With wire_limits.allow_unknown they are yielded as WIRE_UNKNOWN with their payload
 *     (bounded by max_msg_len) so a caller can ignore them.
 *   - NOT checked here (the peer state machine's job, which knows what was negotiated): message order (bitfield or
 *     have_all/have_none only first), whether the fast extension or BEP 10 were negotiated, request sizes.
 *
 * Memory and the hot path. A valid message lying whole in the input is decoded by one straight-line function (the
 * byte-wise state machine handles the rest, with identical results). Decoding never allocates for fixed-size messages
 * or keep-alives. A variable-length payload (bitfield, piece, extended, unknown) that lies entirely inside the chunk
 * being fed is returned as a pointer INTO THE CALLER'S INPUT (zero copy); one that spans chunks is gathered inside the
 * decoder if it is at most 68 bytes, else in a heap buffer the decoder owns. That buffer grows with the bytes that
 * actually arrived (to at most twice what was received of the message, never beyond its length), not with what the
 * length prefix announces: a peer that sends a 64 KiB prefix and one byte makes the decoder hold one byte, not
 * 64 KiB. It is kept across messages (a stream of large messages reallocates only when a larger one comes) until
 * wire_decoder_trim() (frees it unless a partial message is being gathered in it: a caller holding many mostly idle
 * decoders calls it after handling its messages), wire_decoder_reset() or wire_decoder_free().
 * wire_decoder_memory() says how many heap bytes a decoder holds. So a stream of small messages never allocates,
 * however it is cut, and a trimmed decoder between messages holds no heap at all.
 * Pointers in a wire_msg are valid until the next call on the decoder, and only while the caller's input is intact.
 *
 * Errors. Errors are sticky: after WIRE_ERROR every later wire_feed() returns WIRE_ERROR and consumes nothing.
 * *consumed then counts the bytes up to and including the byte that revealed the error (a 2 GiB prefix: 4 bytes).
 * wire_decoder_error() gives a specific code, the stream offset of the offending message and of the offending field,
 * and the offending value; wire_strerror() names a code; wire_error_format() writes a full sentence.
 *
 * Encoder. wire_encode_* write one message into a caller buffer whose size is at least the documented WIRE_*_LEN
 * constant and return the number of bytes written (0 on invalid arguments). wire_encode_piece_header() writes only
 * the 13-byte header so the block data can be sent from the file without copying. Every message has exactly one
 * encoding, so decode -> encode reproduces the input bytes.
 *
 * No global state; a decoder is used by one thread at a time.
 */
#ifndef HEKATE_WIRE_H
#define HEKATE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Sizes (bytes on the wire, length prefix included) ---- */
#define WIRE_PSTR "BitTorrent protocol"
#define WIRE_PSTRLEN 19
#define WIRE_HANDSHAKE_LEN 68          /* 1 + 19 + 8 reserved + 20 info-hash + 20 peer id */
#define WIRE_HANDSHAKE_RESERVED_END 28  /* bytes after which the reserved bytes are known */
#define WIRE_HANDSHAKE_INFO_HASH_END 48 /* bytes after which the info-hash is known */
#define WIRE_KEEPALIVE_LEN 4
#define WIRE_SIMPLE_LEN 5              /* choke, unchoke, interested, not interested, have all, have none */
#define WIRE_INDEX_MSG_LEN 9           /* have, suggest, allowed fast: prefix, id, index */
#define WIRE_BLOCK_MSG_LEN 17          /* request, cancel, reject: prefix, id, index, begin, length */
#define WIRE_PORT_LEN 7
#define WIRE_PIECE_HEADER_LEN 13       /* prefix, id, index, begin; the block data follows */
#define WIRE_BITFIELD_HEADER_LEN 5     /* prefix, id; the bits follow */
#define WIRE_EXTENDED_HEADER_LEN 6     /* prefix, id 20, extended id; the payload follows */
#define WIRE_MAX_FIXED_LEN WIRE_HANDSHAKE_LEN /* no fixed-size encoding is longer */

/* Default max_msg_len (the length prefix: id + payload): a 16 KiB block plus its header, with room for a
 * ut_metadata data message (16 KiB + its dictionary). */
#define WIRE_DEFAULT_MAX_MSG_LEN (32u * 1024u + 64u)

/* Reserved-byte bits (BEP 6 fast extension, BEP 10 extension protocol, BEP 5 DHT). */
#define WIRE_RESERVED_LEN 8
bool wire_reserved_has_fast(const uint8_t reserved[WIRE_RESERVED_LEN]);      /* reserved[7] & 0x04 */
bool wire_reserved_has_extended(const uint8_t reserved[WIRE_RESERVED_LEN]);  /* reserved[5] & 0x10 */
bool wire_reserved_has_dht(const uint8_t reserved[WIRE_RESERVED_LEN]);       /* reserved[7] & 0x01 */
void wire_reserved_set_fast(uint8_t reserved[WIRE_RESERVED_LEN]);
void wire_reserved_set_extended(uint8_t reserved[WIRE_RESERVED_LEN]);
void wire_reserved_set_dht(uint8_t reserved[WIRE_RESERVED_LEN]);

/* Message types. Values 0..255 are the wire ids; the others have no id byte. */
typedef enum wire_msg_type {
    WIRE_CHOKE = 0,
    WIRE_UNCHOKE = 1,
    WIRE_INTERESTED = 2,
    WIRE_NOT_INTERESTED = 3,
    WIRE_HAVE = 4,
    WIRE_BITFIELD = 5,
    WIRE_REQUEST = 6,
    WIRE_PIECE = 7,
    WIRE_CANCEL = 8,
    WIRE_PORT = 9,
    WIRE_SUGGEST = 13,
    WIRE_HAVE_ALL = 14,
    WIRE_HAVE_NONE = 15,
    WIRE_REJECT = 16,
    WIRE_ALLOWED_FAST = 17,
    WIRE_EXTENDED = 20,
    WIRE_KEEPALIVE = 0x100,
    WIRE_HANDSHAKE = 0x101,
    WIRE_UNKNOWN = 0x102, /* only with wire_limits.allow_unknown */
} wire_msg_type;

/* Name of a type ("request", "have_all", ...); "?" for values outside the enum. */
const char *wire_msg_name(wire_msg_type type);

typedef struct wire_block {
    uint32_t index, begin, length;
} wire_block;

typedef struct wire_msg {
    wire_msg_type type;
    union {
        struct {
            uint8_t reserved[WIRE_RESERVED_LEN];
            uint8_t info_hash[20];
            uint8_t peer_id[20];
        } handshake;
        uint32_t index;    /* HAVE, SUGGEST, ALLOWED_FAST */
        wire_block block;  /* REQUEST, CANCEL, REJECT */
        struct {
            uint32_t index, begin;
            const uint8_t *data;
            uint32_t len;
        } piece;
        struct {
            const uint8_t *bits;
            uint32_t len; /* bytes */
        } bitfield;
        uint16_t port;     /* PORT */
        struct {
            uint8_t id;    /* EXTENDED: extended message id (0 = extension handshake); UNKNOWN: the wire id */
            const uint8_t *payload;
            uint32_t len;
        } ext;             /* EXTENDED and UNKNOWN */
    } u;
} wire_msg;

typedef enum wire_status {
    WIRE_ERROR = -1,
    WIRE_NEED_MORE = 0, /* all input consumed, no complete message yet */
    WIRE_READY = 1,     /* *msg holds a message; bytes after *consumed are not consumed yet */
} wire_status;

typedef enum wire_err {
    WIRE_ERR_NONE = 0,
    WIRE_ERR_PSTRLEN,          /* handshake's first byte is not 19 */
    WIRE_ERR_PSTR,             /* handshake protocol string is not "BitTorrent protocol" */
    WIRE_ERR_TOO_LONG,         /* length prefix above the limit */
    WIRE_ERR_BAD_LENGTH,       /* length prefix wrong for the message id */
    WIRE_ERR_BITFIELD_LENGTH,  /* bitfield length is not ceil(pieces / 8) */
    WIRE_ERR_BITFIELD_SPARE,   /* spare bits after the last piece are set */
    WIRE_ERR_PIECE_INDEX,      /* piece index >= piece count */
    WIRE_ERR_UNKNOWN_ID,       /* message id not known (and unknown ids not allowed) */
    WIRE_ERR_NOMEM,            /* could not allocate the payload buffer */
    WIRE_ERR_TRUNCATED,        /* wire_finish(): the stream ended inside a message */
} wire_err;

typedef struct wire_error {
    uint64_t msg_offset;  /* stream offset of the first byte of the offending message (0 for the handshake) */
    uint64_t offset;      /* stream offset of the offending field or byte */
    uint64_t value;       /* the offending value: the length, id, index or byte */
    wire_err code;        /* (after the 64-bit fields: no padding; every connection embeds one) */
    int msg_id;           /* id of the offending message, -1 if unknown yet or the handshake */
} wire_error;

const char *wire_strerror(wire_err code);
/* Writes e.g. "request at offset 68: length 12, expected 13 (byte 68)" into buf (always NUL-terminated when n > 0);
 * returns what snprintf returns. */
int wire_error_format(const wire_error *e, char *buf, size_t n);

typedef struct wire_limits {
    uint32_t max_msg_len;  /* largest length prefix (id + payload) accepted; 0 = WIRE_DEFAULT_MAX_MSG_LEN */
    uint32_t piece_count;  /* 0 = not known yet (see wire_decoder_set_piece_count) */
    bool skip_handshake;   /* the stream starts directly with length-prefixed messages */
    bool allow_unknown;    /* yield unknown ids as WIRE_UNKNOWN instead of failing */
} wire_limits;

/* The decoder. Embed it by value; fields are private (use the functions below). */
typedef struct wire_decoder {
    wire_limits lim;
    uint8_t state;
    uint8_t msg_id;
    bool hs_done;          /* the handshake was decoded; info_hash and reserved hold its fields */
    uint32_t have;         /* bytes of the current unit gathered so far */
    uint32_t msg_len;      /* current message's length prefix */
    uint64_t offset;       /* stream bytes consumed */
    uint64_t msg_start;    /* stream offset of the current message */
    uint32_t prefix_lim;   /* largest length prefix accepted before the id is read */
    uint32_t buf_cap;      /* bytes allocated at buf (0 when buf is NULL) */
    uint8_t *buf;          /* lazily allocated buffer for larger payloads that span chunks */
    uint8_t info_hash[20];
    uint8_t reserved[WIRE_RESERVED_LEN];
    union {
        uint8_t hs[WIRE_HANDSHAKE_LEN];        /* the handshake being gathered */
        uint8_t small[WIRE_HANDSHAKE_LEN];     /* afterwards: variable payloads this small that span chunks */
    } u;
    uint8_t hdr[WIRE_BLOCK_MSG_LEN];
    wire_error err;
} wire_decoder;

/* limits may be NULL (all defaults). Never allocates. */
void wire_decoder_init(wire_decoder *d, const wire_limits *limits);
/* Sets the piece count once it is known (normally right after the handshake); 0 makes it unknown again. */
void wire_decoder_set_piece_count(wire_decoder *d, uint32_t piece_count);
/* Back to the start of a stream (same limits); frees the payload buffer. */
void wire_decoder_reset(wire_decoder *d);
/* Frees the payload buffer; the decoder may be re-initialised afterwards. */
void wire_decoder_free(wire_decoder *d);
/* Frees the payload buffer unless a message partly received is being gathered in it (then the buffer holds at most
 * about twice the bytes received of that message). Payload pointers of the last message may point into the buffer:
 * call it once they are no longer used. Never changes what is decoded. */
void wire_decoder_trim(wire_decoder *d);
/* Heap bytes the decoder holds now (its payload buffer; the struct itself is the caller's). */
size_t wire_decoder_memory(const wire_decoder *d);

/* Consumes bytes from buf[0..len) until a message is complete, the input runs out, or an error. Always sets
 * *consumed. *msg is meaningful only on WIRE_READY. */
wire_status wire_feed(wire_decoder *d, const uint8_t *buf, size_t len, size_t *consumed, wire_msg *msg);

/* The peer's info-hash once 48 handshake bytes have been consumed, else NULL (also NULL with skip_handshake). */
const uint8_t *wire_decoder_info_hash(const wire_decoder *d);
/* The peer's WIRE_RESERVED_LEN reserved bytes once 28 handshake bytes have been consumed, else NULL (also NULL with
 * skip_handshake, or after an error inside the handshake). */
const uint8_t *wire_decoder_reserved(const wire_decoder *d);
/* Total stream bytes consumed so far. */
uint64_t wire_decoder_offset(const wire_decoder *d);
/* True if no message is partly consumed (a clean place for the stream to end). */
bool wire_decoder_at_boundary(const wire_decoder *d);
/* Call at end of stream: true if it ended cleanly; otherwise records WIRE_ERR_TRUNCATED (unless an error is already
 * recorded) and returns false. */
bool wire_finish(wire_decoder *d);
/* The recorded error (code WIRE_ERR_NONE if none). */
const wire_error *wire_decoder_error(const wire_decoder *d);

/* ---- Encoder. Each returns the bytes written, 0 on invalid arguments. ---- */
size_t wire_encode_handshake(uint8_t buf[WIRE_HANDSHAKE_LEN], const uint8_t reserved[WIRE_RESERVED_LEN],
                             const uint8_t info_hash[20], const uint8_t peer_id[20]);
size_t wire_encode_keepalive(uint8_t buf[WIRE_KEEPALIVE_LEN]);
/* type: CHOKE, UNCHOKE, INTERESTED, NOT_INTERESTED, HAVE_ALL or HAVE_NONE; 0 for any other. */
size_t wire_encode_simple(uint8_t buf[WIRE_SIMPLE_LEN], wire_msg_type type);
/* type: HAVE, SUGGEST or ALLOWED_FAST. */
size_t wire_encode_index(uint8_t buf[WIRE_INDEX_MSG_LEN], wire_msg_type type, uint32_t index);
/* type: REQUEST, CANCEL or REJECT. */
size_t wire_encode_block(uint8_t buf[WIRE_BLOCK_MSG_LEN], wire_msg_type type, uint32_t index, uint32_t begin,
                         uint32_t length);
size_t wire_encode_port(uint8_t buf[WIRE_PORT_LEN], uint16_t port);
/* Header of a piece message carrying block_len bytes of data that the caller sends right after; 0 if the length
 * would overflow the prefix. */
size_t wire_encode_piece_header(uint8_t buf[WIRE_PIECE_HEADER_LEN], uint32_t index, uint32_t begin,
                                uint32_t block_len);
/* Header of a bitfield of nbytes bytes sent right after. */
size_t wire_encode_bitfield_header(uint8_t buf[WIRE_BITFIELD_HEADER_LEN], uint32_t nbytes);
/* Header of an extended message (id 20) with extended id ext_id and payload_len bytes sent right after. */
size_t wire_encode_extended_header(uint8_t buf[WIRE_EXTENDED_HEADER_LEN], uint8_t ext_id, uint32_t payload_len);
/* Bytes wire_encode_msg() needs for m (0 if m cannot be encoded). */
size_t wire_encoded_len(const wire_msg *m);
/* Any message, payload included, into buf[0..cap); 0 if cap is too small or m is invalid. */
size_t wire_encode_msg(uint8_t *buf, size_t cap, const wire_msg *m);

/* Bitfield helpers: ceil(pieces / 8), and whether the spare bits of bits[0..ceil(pieces/8)) are clear. */
uint32_t wire_bitfield_len(uint32_t piece_count);
bool wire_bitfield_spare_clear(const uint8_t *bits, uint32_t piece_count);

#endif
