/* extension: the BEP 10 extension handshake and BEP 9 ut_metadata messages (the payloads of wire id 20).
 *
 * Contract
 * --------
 * Decoding is built on core/bencode (strict: malformed bencoding, duplicate keys, trailing bytes are errors) and then
 * checks every field it knows, by type and range. Fields it does not know are ignored, because BEP 10 is meant to be
 * extended. Errors name the field and carry a byte offset into the payload.
 *
 * Extension handshake (extended id 0). Real clients send harmless oddities (a long `v`, `reqq` 0, a 5-byte `yourip`),
 * so a known field of the wrong type or out of range is IGNORED, as if absent, and the rest of the handshake is kept;
 * ext_handshake.ignored counts such fields and *err describes the first. The handshake is an error (the caller closes)
 * only when the payload is not bencode (core/bencode's strict rules, or more than EXT_HANDSHAKE_MAX_TOKENS tokens) or
 * its top level is not a dictionary; its size is capped by the wire decoder's maximum message length. What is kept is
 * bounded: `v` at EXT_CLIENT_MAX bytes, fixed-size addresses, integers in the ranges below. Decoded into
 * ext_handshake, where 0 / false / length 0 means "absent":
 *   m              dictionary name -> id 0..255 (0 = disabled). Known names (the ext_name enum) are kept; other names
 *                  are counted in m_unknown and otherwise ignored, whatever their value. A known name whose id is
 *                  not an integer in 0..255 is ignored (that extension is absent). Known names sharing a non-zero id
 *                  are all ignored (we could not tell their messages apart). `m` not a dictionary: ignored, has_m
 *                  false, no extensions.
 *   v              client name, a string without NUL byte; longer than EXT_CLIENT_MAX bytes: truncated to its first
 *                  EXT_CLIENT_MAX bytes (it is only shown in logs); kept NUL-terminated. Not a string, or a NUL byte
 *                  in the kept bytes: ignored.
 *   reqq           1..INT32_MAX; 0, negative, larger or not an integer: ignored (the caller's default applies).
 *   p              0..65535; 0 carries no information and is treated as absent; outside 0..65535: ignored.
 *   metadata_size  1..EXT_METADATA_SIZE_MAX (64 MiB); else ignored (it is the peer's claim; a seeder serves its own
 *                  metadata anyway).
 *   upload_only    0 or 1 (BEP 21); any other value: ignored.
 *   yourip         a 4- or 16-byte string; ipv4 exactly 4 bytes; ipv6 exactly 16 bytes; any other length: ignored.
 * Encoding writes the present fields in canonical form (keys sorted, m's names sorted, only non-zero ids) into a
 * caller buffer; EXT_HANDSHAKE_MAX bytes always suffice.
 *
 * ut_metadata (BEP 9). A message is a bencoded dictionary {msg_type, piece[, total_size]}; a data message's piece
 * bytes follow the dictionary in the same payload. Checks: msg_type is an integer; piece an integer in 0..2^32-1;
 * a data message has total_size 1..64 MiB (equal to metadata_size when the caller knows it), a piece below
 * total_size's piece count and exactly the piece's length of data (16 KiB, or the remainder for the last piece);
 * request and reject carry no trailing bytes. A request (or reject) for a piece beyond the metadata is NOT an error:
 * it decodes, and a server answers such a request with a reject, as BEP 9 says for a piece it does not have
 * (ext_ut_metadata_piece_len() is 0 for it). Any other failed check is an error (the caller closes).
 * An unknown msg_type is not an error: BEP 9 says it must be ignored, so decoding returns EXT_IGNORE.
 * Encoders write only the dictionary (for data: the caller sends the piece bytes right after, e.g. from a file
 * extent); EXT_UT_METADATA_MSG_MAX bytes always suffice.
 *
 * No global state; decoding allocates only bencode's token array, freed before returning. Decoded data pointers
 * point into the caller's payload.
 */
#ifndef HEKATE_EXTENSION_H
#define HEKATE_EXTENSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXT_HANDSHAKE_ID 0                 /* extended message id of the extension handshake */
#define EXT_METADATA_SIZE_MAX (64u << 20)  /* largest metadata (info dictionary) we accept or offer */
#define EXT_UT_METADATA_PIECE_LEN 16384u
#define EXT_CLIENT_MAX 128                 /* longest `v` kept (a longer one is truncated) */
#define EXT_HANDSHAKE_MAX 400              /* longest handshake ext_handshake_encode() writes */
#define EXT_HANDSHAKE_MAX_TOKENS 4096u     /* bencode tokens a handshake may have (a real one has about 30) */
#define EXT_UT_METADATA_MSG_MAX 64         /* longest ut_metadata dictionary the encoders write */

/* Extensions known by name in `m`, in sorted name order (the order they are encoded in). */
typedef enum ext_name {
    EXT_LT_DONTHAVE = 0,
    EXT_SHARE_MODE,
    EXT_UPLOAD_ONLY,
    EXT_UT_HOLEPUNCH,
    EXT_UT_METADATA,
    EXT_UT_PEX,
    EXT_NAME_COUNT
} ext_name;

/* "ut_metadata" etc.; NULL outside the enum. */
const char *ext_name_str(ext_name n);
/* The enum value of a name, or -1 if unknown. */
int ext_name_find(const uint8_t *name, size_t len);

typedef struct ext_error {
    size_t offset;  /* byte offset in the payload */
    char what[96];  /* e.g. "bencode: ..." or "reqq: not an integer in 1..2147483647, ignored" */
} ext_error;

typedef struct ext_handshake {
    uint8_t m[EXT_NAME_COUNT]; /* id the sender wants for each extension's messages; 0 = not supported/disabled */
    bool has_m;                /* the handshake carried an `m` dictionary */
    uint32_t m_unknown;        /* names in m this codec does not know (ignored) */
    uint32_t ignored;          /* known fields (or m entries) malformed or out of range, ignored; a truncated v too */
    uint32_t metadata_size;    /* 0 = absent */
    uint32_t reqq;             /* 0 = absent */
    uint16_t port;             /* `p`; 0 = absent */
    bool has_upload_only;
    bool upload_only;
    uint8_t v_len;             /* 0 = absent */
    char v[EXT_CLIENT_MAX + 1];
    uint8_t yourip_len;        /* 0 (absent), 4 or 16 */
    uint8_t yourip[16];
    bool has_ipv4;
    uint8_t ipv4[4];
    bool has_ipv6;
    uint8_t ipv6[16];
} ext_handshake;

/* Decodes a handshake payload (the bytes after the extended id). Returns 0 (then err->what describes the first
 * field ignored if out->ignored > 0, else is empty), or -1 with *err filled and *out zeroed: not bencode, or not a
 * dictionary. err may be NULL. */
int ext_handshake_decode(const uint8_t *payload, size_t len, ext_handshake *out, ext_error *err);
/* Writes h canonically into buf[0..cap). Returns the length, or 0 if cap is too small or a field is out of range
 * (v_len > EXT_CLIENT_MAX, yourip_len not 0/4/16, metadata_size > EXT_METADATA_SIZE_MAX, reqq > INT32_MAX). */
size_t ext_handshake_encode(const ext_handshake *h, uint8_t *buf, size_t cap);

/* ---- ut_metadata ---- */

typedef enum ext_ut_metadata_type {
    EXT_UT_METADATA_REQUEST = 0,
    EXT_UT_METADATA_DATA = 1,
    EXT_UT_METADATA_REJECT = 2,
} ext_ut_metadata_type;

typedef struct ext_ut_metadata_msg {
    ext_ut_metadata_type type;
    uint32_t piece;
    uint32_t total_size;   /* DATA only */
    const uint8_t *data;   /* DATA only: the piece's bytes, inside the payload */
    uint32_t data_len;
} ext_ut_metadata_msg;

typedef enum ext_status {
    EXT_ERROR = -1,
    EXT_OK = 0,
    EXT_IGNORE = 1, /* a well-formed message of a msg_type this codec does not know: ignore it (BEP 9) */
} ext_status;

/* Number of 16 KiB pieces of metadata of this size (0 for 0). */
uint32_t ext_ut_metadata_piece_count(uint32_t metadata_size);
/* Length of that piece (16 KiB, or less for the last one); 0 if piece is out of range. */
uint32_t ext_ut_metadata_piece_len(uint32_t metadata_size, uint32_t piece);

/* Decodes a ut_metadata payload (the bytes after the extended id). metadata_size: the size the caller knows (ours
 * when serving, the peer's handshake value when fetching), 0 if unknown. Returns EXT_OK (*out filled), EXT_IGNORE
 * (an unknown msg_type), or EXT_ERROR with *err filled; *out is zeroed unless EXT_OK. */
ext_status ext_ut_metadata_decode(const uint8_t *payload, size_t len, uint32_t metadata_size,
                                  ext_ut_metadata_msg *out, ext_error *err);

/* Encoders of the dictionary; each returns its length, or 0 if cap is too small or the arguments are out of range
 * (request: piece >= 4096, the piece count of 64 MiB; data: total_size not in 1..64 MiB or piece beyond it; a reject
 * takes any piece, to answer any request). */
size_t ext_ut_metadata_encode_request(uint8_t *buf, size_t cap, uint32_t piece);
size_t ext_ut_metadata_encode_reject(uint8_t *buf, size_t cap, uint32_t piece);
size_t ext_ut_metadata_encode_data_header(uint8_t *buf, size_t cap, uint32_t piece, uint32_t total_size);

#endif
