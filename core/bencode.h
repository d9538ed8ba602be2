/* bencode: a strict, zero-copy decoder and a canonical encoder for BEP 3 bencoding.
 *
 * Contract
 * --------
 * Decoding turns one complete bencoded value into a flat array of tokens in document order (pre-order, like jsmn).
 * Tokens never copy bytes: strings point into the caller's input, which must outlive the document.
 * Every token records the byte range [start, end) of its whole encoding in the input, so a caller can hash or
 * re-serve a sub-value verbatim (the .torrent `info` dictionary).
 *
 * Strictness (any violation is an error naming what and the byte offset):
 *   - integers: `i` [-] digits `e`; no leading zeros, no `-0`, no empty digits, must fit int64_t (overflow detected);
 *   - strings: decimal length without leading zeros (except "0"), `:`, then exactly that many bytes; the length may not
 *     exceed the input that remains;
 *   - lists `l...e` and dictionaries `d...e`; nesting deeper than BEN_MAX_DEPTH is rejected;
 *   - dictionary keys must be byte strings;
 *   - duplicate keys in one dictionary are rejected (a value that two readers could interpret differently is an attack
 *     vector);
 *   - keys out of sorted order are ACCEPTED (real .torrent files contain them) and the document is flagged
 *     non-canonical (ben_doc.canonical == false); lookups work either way;
 *   - trailing bytes after the top-level value are an error;
 *   - the token count is bounded by the caller's limit; exceeding it is an error, never a reallocation storm.
 *
 * Memory: ben_decode allocates one token array (at most max_tokens entries, grown geometrically); ben_doc_free frees it.
 * No global state. Thread-compatible.
 */
#ifndef HEKATE_BENCODE_H
#define HEKATE_BENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BEN_MAX_DEPTH 64

typedef enum ben_type { BEN_INT = 1, BEN_STR, BEN_LIST, BEN_DICT } ben_type;

typedef struct ben_token {
    uint8_t type;   /* ben_type */
    uint32_t next;  /* index of the token after this value and all its descendants (skip pointer) */
    uint32_t count; /* LIST: number of elements; DICT: number of key/value pairs; else 0 */
    size_t start;   /* offset of the first byte of this value's encoding */
    size_t end;     /* offset one past its last byte */
    union {
        int64_t i;                                  /* BEN_INT */
        struct { const uint8_t *ptr; size_t len; } s; /* BEN_STR: points into the input */
    } v;
} ben_token;

typedef struct ben_error {
    size_t offset;    /* byte offset in the input where the problem was found: the offending byte (e.g. the extra
                         leading '0', the 'l'/'d' one level too deep, the second copy of a duplicate key, the first
                         trailing byte); the start of a string whose length exceeds the input; len for a truncated
                         input */
    char what[96];    /* human-readable reason, e.g. "integer has a leading zero" */
} ben_error;

typedef struct ben_doc {
    const uint8_t *input;
    size_t input_len;
    ben_token *tok;   /* tok[0] is the top-level value */
    uint32_t ntok;
    bool canonical;   /* false if any dictionary had keys out of order */
} ben_doc;

/* Default bound on tokens a decode may produce. */
#define BEN_DEFAULT_MAX_TOKENS (1u << 22)

/* Decodes exactly one value spanning all of buf[0..len). Returns 0 and fills *doc on success; returns -1 and fills
 * *err on failure (doc is left empty and needs no free). max_tokens == 0 means BEN_DEFAULT_MAX_TOKENS. */
int ben_decode(const uint8_t *buf, size_t len, uint32_t max_tokens, ben_doc *doc, ben_error *err);

/* Decodes the first complete value at the start of buf and reports its length in *consumed; trailing bytes allowed
 * (used for ut_metadata messages, whose payload follows the dictionary). doc->input_len is still len; the value spans
 * [0, *consumed) == [tok[0].start, tok[0].end). A string length is bounded by all of buf, trailing bytes included. */
int ben_decode_prefix(const uint8_t *buf, size_t len, uint32_t max_tokens, ben_doc *doc, size_t *consumed,
                      ben_error *err);

void ben_doc_free(ben_doc *doc);

/* Navigation. Indices are token indices into doc->tok. All return -1 (or false) when absent or of the wrong type. */
int64_t ben_dict_find(const ben_doc *doc, uint32_t dict, const char *key);            /* index of the value */
int64_t ben_dict_find_n(const ben_doc *doc, uint32_t dict, const void *key, size_t keylen);
int64_t ben_list_at(const ben_doc *doc, uint32_t list, uint32_t n);                  /* O(n) */
/* Iteration: first child index is tok+1 (for a dict: the first key; its value is key+1... i.e. key's `next`).
 * ben_first_child / ben_next_sibling hide the arithmetic. Return -1 at the end. `child` must be a direct child of
 * `container` (one returned by these two functions); for a dict the walk visits key, value, key, value... */
int64_t ben_first_child(const ben_doc *doc, uint32_t container);
int64_t ben_next_sibling(const ben_doc *doc, uint32_t container, uint32_t child);
bool ben_get_int(const ben_doc *doc, int64_t idx, int64_t *out);
bool ben_get_str(const ben_doc *doc, int64_t idx, const uint8_t **ptr, size_t *len);
bool ben_str_eq(const ben_doc *doc, int64_t idx, const char *s);

/* ---- Encoder: canonical output into a growable buffer. ----
 * The encoder writes what it is told; ben_buf_dict_* does not sort keys for you: callers emit keys in sorted order
 * (every encoder call site in hekate does). ben_buf.failed becomes true on allocation failure or size overflow and
 * every later call is a no-op, so callers check once at the end. */
typedef struct ben_buf {
    uint8_t *data;
    size_t len, cap;
    bool failed;
} ben_buf;

void ben_buf_init(ben_buf *b);
void ben_buf_free(ben_buf *b);
void ben_put_int(ben_buf *b, int64_t v);
void ben_put_str(ben_buf *b, const void *s, size_t len);
void ben_put_cstr(ben_buf *b, const char *s);
void ben_put_list_begin(ben_buf *b);
void ben_put_dict_begin(ben_buf *b);
void ben_put_end(ben_buf *b);
void ben_put_raw(ben_buf *b, const void *bytes, size_t len); /* an already-encoded value, copied verbatim */

/* Re-encodes a decoded value canonically (keys sorted); used to test round-trips and normalise input. */
void ben_put_value(ben_buf *b, const ben_doc *doc, uint32_t idx);

#endif
