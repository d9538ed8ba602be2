/* bencode: owns the strict zero-copy BEP 3 decoder (flat pre-order token array with skip pointers), the navigation
 * helpers over that array, and the canonical encoder (ben_buf). See bencode.h for the contract.
 *
 * Decoder design: one forward pass with an explicit stack of at most BEN_MAX_DEPTH open containers (no recursion),
 * one token array grown geometrically (never per token), and one scratch array reused for the duplicate-key check of
 * dictionaries whose keys arrive out of order. Keys in order are checked for duplicates by comparing each key with
 * the previous one (O(1) per key); only a dictionary that turned out unsorted is sorted, at its close, to find
 * duplicates in O(n log n).
 *
 * A strict, canonical document is byte-identical to its canonical re-encoding (no leading zeros, no -0, sorted
 * unique keys), so ben_put_value copies the input range verbatim when doc->canonical is true and rebuilds the value
 * (sorting keys) otherwise.
 */
#include "bencode.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BEN_INITIAL_TOKENS 256u

/* ---------------------------------------------------------------------------------------------------------------- */
/* Shared helpers                                                                                                    */

static inline bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static inline bool mul_overflows(size_t a, size_t b) { return b != 0 && a > SIZE_MAX / b; }

/* Byte-wise order, a proper prefix first: the order BEP 3 requires for dictionary keys. */
static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return (alen > blen) - (alen < blen);
}

/* One dictionary key, for sorting: the bytes and its position (token index) for a deterministic tie-break. */
typedef struct key_ref {
    const uint8_t *ptr;
    size_t len;
    uint32_t tok;
} key_ref;

static int key_ref_cmp(const void *pa, const void *pb)
{
    const key_ref *a = pa, *b = pb;
    int c = key_cmp(a->ptr, a->len, b->ptr, b->len);
    if (c != 0)
        return c;
    return (a->tok > b->tok) - (a->tok < b->tok);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Decoder                                                                                                           */

typedef struct frame {
    uint32_t tok;      /* the container's token */
    uint32_t last_key; /* token of the previous key (dicts), UINT32_MAX before the first */
    bool is_dict;
    bool want_value;   /* dict: a key was read, its value comes next */
    bool unsorted;     /* dict: some key was smaller than its predecessor */
} frame;

/* Cold state of one decode. The hot state (position, token array, count) lives in locals of decode() so that the
 * compiler can keep it in registers across token stores. */
typedef struct decoder {
    const uint8_t *buf;
    size_t len;
    ben_token *tok; /* kept equal to decode()'s local array pointer */
    uint32_t cap, max_tokens;
    key_ref *scratch; /* reused for the duplicate check of unsorted dictionaries */
    size_t scratch_cap;
    ben_error *err;
} decoder;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4), cold))
#endif
static int fail(decoder *d, size_t offset, const char *fmt, ...)
{
    if (d->err) {
        va_list ap;
        d->err->offset = offset;
        va_start(ap, fmt);
        vsnprintf(d->err->what, sizeof d->err->what, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Describes one input byte for an error message: 'x' when printable, 0xNN otherwise. */
static const char *byte_desc(uint8_t c, char out[8])
{
    if (c > 0x20 && c < 0x7f)
        snprintf(out, 8, "'%c'", (char)c);
    else
        snprintf(out, 8, "0x%02x", (unsigned)c);
    return out;
}

static int fail_eof(decoder *d) { return fail(d, d->len, "unexpected end of input"); }

/* The token array is full (ntok == cap). The cap never exceeds max_tokens, so this is also where the limit is
 * enforced. Grows geometrically; returns false with the error set. */
static bool grow_tokens(decoder *d, uint32_t ntok, size_t start)
{
    if (ntok >= d->max_tokens) {
        fail(d, start, "more than %lu tokens", (unsigned long)d->max_tokens);
        return false;
    }
    uint32_t ncap = d->cap > d->max_tokens / 2 ? d->max_tokens : d->cap * 2;
    if (ncap < 16)
        ncap = 16 < d->max_tokens ? 16 : d->max_tokens;
    ben_token *t = mul_overflows(ncap, sizeof(ben_token)) ? NULL : realloc(d->tok, (size_t)ncap * sizeof(ben_token));
    if (!t) {
        fail(d, start, "out of memory");
        return false;
    }
    d->tok = t;
    d->cap = ncap;
    return true;
}

/* The scanners below return 0 on error, which is never a valid end offset (a value takes at least 2 bytes). */
#define SCAN_FAIL(...)                                                                                                 \
    do {                                                                                                               \
        fail(d, __VA_ARGS__);                                                                                          \
        return 0;                                                                                                      \
    } while (0)

/* Scans `i [-] digits e` at p (which holds the 'i'). Returns the offset after the 'e' and the value in *out, or 0
 * (never a valid end: an integer takes at least 3 bytes) with the error set. */
static inline size_t scan_int(decoder *d, const uint8_t *b, size_t len, size_t p, int64_t *out)
{
    bool neg = false;
    char bd[8];

    p++;
    if (p < len && b[p] == '-') {
        neg = true;
        p++;
    }
    if (p >= len)
        SCAN_FAIL(len, "unexpected end of input");
    if (!is_digit(b[p])) {
        if (b[p] == 'e')
            SCAN_FAIL(p, "integer has no digits");
        SCAN_FAIL(p, "unexpected byte %s in integer", byte_desc(b[p], bd));
    }
    if (b[p] == '0') {
        if (neg)
            SCAN_FAIL(p, "integer is negative zero");
        if (p + 1 < len && is_digit(b[p + 1]))
            SCAN_FAIL(p, "integer has a leading zero");
    }
    /* Magnitude in uint64_t; the bound is 2^63 for negatives (INT64_MIN) and 2^63-1 otherwise. */
    const uint64_t limit = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    uint64_t mag = 0;
    while (p < len && is_digit(b[p])) {
        unsigned dg = (unsigned)(b[p] - '0');
        if (mag > (limit - dg) / 10u)
            SCAN_FAIL(p, "integer does not fit in 64 bits");
        mag = mag * 10u + dg;
        p++;
    }
    if (p >= len)
        SCAN_FAIL(len, "unexpected end of input");
    if (b[p] != 'e')
        SCAN_FAIL(p, "unexpected byte %s in integer", byte_desc(b[p], bd));
    if (!neg)
        *out = (int64_t)mag;
    else if (mag == (uint64_t)INT64_MAX + 1u)
        *out = INT64_MIN;
    else
        *out = -(int64_t)mag;
    return p + 1;
}

/* Scans `length : bytes` at p (which holds a digit). Returns the offset after the bytes, with the offset of the
 * bytes in *body and their count in *n, or 0 (never a valid end: a string takes at least 2 bytes) with the error
 * set. */
static inline size_t scan_str(decoder *d, const uint8_t *b, size_t len, size_t p, size_t *body, size_t *n_out)
{
    const size_t start = p;
    char bd[8];

    if (b[p] == '0' && p + 1 < len && is_digit(b[p + 1]))
        SCAN_FAIL(p, "string length has a leading zero");
    /* Accumulate without overflow: once the value exceeds the whole input it can only be too long; stop counting. */
    size_t n = 0;
    bool too_long = false;
    while (p < len && is_digit(b[p])) {
        size_t dg = (size_t)(b[p] - '0');
        if (!too_long) {
            if (n > len / 10u || dg > len - n * 10u) /* n * 10 + dg > len, computed without overflow */
                too_long = true;
            else
                n = n * 10u + dg;
        }
        p++;
    }
    if (p >= len)
        SCAN_FAIL(len, "unexpected end of input");
    if (b[p] != ':')
        SCAN_FAIL(p, "expected ':' after the string length, found %s", byte_desc(b[p], bd));
    p++;
    size_t remaining = len - p;
    if (too_long || n > remaining) {
        size_t ndig = p - 1 - start;
        SCAN_FAIL(start, "string length %.*s%s exceeds the %lu bytes remaining", (int)(ndig > 20 ? 20 : ndig),
                  (const char *)b + start, ndig > 20 ? "..." : "", (unsigned long)remaining);
    }
    *body = p;
    *n_out = n;
    return p + n;
}
#undef SCAN_FAIL

/* Prints a key for an error message: printable bytes as they are, others as '.', at most 24 of them. */
static void key_desc(const uint8_t *k, size_t klen, char out[32])
{
    size_t n = klen > 24 ? 24 : klen, o = 0;
    for (size_t i = 0; i < n; i++)
        out[o++] = (k[i] >= 0x20 && k[i] < 0x7f && k[i] != '"') ? (char)k[i] : '.';
    if (klen > n) {
        out[o++] = '.';
        out[o++] = '.';
        out[o++] = '.';
    }
    out[o] = 0;
}

static int fail_duplicate(decoder *d, uint32_t key_tok)
{
    char kd[32];
    const ben_token *k = &d->tok[key_tok];
    key_desc(k->v.s.ptr, k->v.s.len, kd);
    return fail(d, k->start, "duplicate dictionary key \"%s\"", kd);
}

/* At the close of a dictionary whose keys were not in order: sort its keys and look for equal neighbours.
 * Reports the duplicate that appears first in the input (the second occurrence with the smallest offset). */
static int check_unsorted_dict(decoder *d, uint32_t dict)
{
    uint32_t n = d->tok[dict].count;
    if (n > d->scratch_cap) {
        size_t ncap = d->scratch_cap ? d->scratch_cap : 16;
        while (ncap < n)
            ncap *= 2;
        key_ref *s = mul_overflows(ncap, sizeof(key_ref)) ? NULL : realloc(d->scratch, ncap * sizeof(key_ref));
        if (!s)
            return fail(d, d->tok[dict].start, "out of memory");
        d->scratch = s;
        d->scratch_cap = ncap;
    }
    uint32_t k = dict + 1;
    for (uint32_t i = 0; i < n; i++) {
        d->scratch[i] = (key_ref){d->tok[k].v.s.ptr, d->tok[k].v.s.len, k};
        k = d->tok[k + 1].next;
    }
    qsort(d->scratch, n, sizeof(key_ref), key_ref_cmp);
    uint32_t dup = UINT32_MAX;
    for (uint32_t i = 1; i < n; i++) {
        const key_ref *a = &d->scratch[i - 1], *b = &d->scratch[i];
        if (key_cmp(a->ptr, a->len, b->ptr, b->len) == 0 && b->tok < dup)
            dup = b->tok;
    }
    return dup == UINT32_MAX ? 0 : fail_duplicate(d, dup);
}

/* Decodes one value from the start of d->buf. On success returns 0 with the token count in *ntok_out, the end of
 * the value in *end_out and whether every dictionary was in order in *canonical. */
static int decode(decoder *d, uint32_t *ntok_out, size_t *end_out, bool *canonical_out)
{
    const uint8_t *const b = d->buf;
    const size_t len = d->len;
    ben_token *tok = d->tok;
    uint32_t ntok = 0, cap = d->cap;
    size_t p = 0;
    bool canonical = true;
    frame stack[BEN_MAX_DEPTH];
    unsigned depth = 0;
    char bd[8];

/* Appends a token of type T starting at offset S and points `t` at it. */
#define NEW_TOKEN(T, S)                                                                                                \
    do {                                                                                                               \
        if (ntok == cap) {                                                                                             \
            if (!grow_tokens(d, ntok, (S)))                                                                            \
                return -1;                                                                                             \
            tok = d->tok;                                                                                              \
            cap = d->cap;                                                                                              \
        }                                                                                                              \
        t = &tok[ntok++];                                                                                              \
        t->type = (uint8_t)(T);                                                                                        \
        t->next = ntok;                                                                                                \
        t->count = 0;                                                                                                  \
        t->start = (S);                                                                                                \
    } while (0)

    for (;;) {
        ben_token *t;
        if (p >= len)
            return fail_eof(d);
        uint8_t c = b[p];

        if (depth > 0) {
            frame *f = &stack[depth - 1];
            if (c == 'e') {
                if (f->want_value)
                    return fail(d, p, "dictionary key has no value");
                t = &tok[f->tok];
                t->end = ++p;
                t->next = ntok;
                if (f->unsorted && check_unsorted_dict(d, f->tok) < 0)
                    return -1;
                depth--;
                goto value_done;
            }
            if (f->is_dict && !f->want_value) {
                if (!is_digit(c))
                    return fail(d, p, "dictionary key is not a string");
                size_t body, n, end = scan_str(d, b, len, p, &body, &n);
                if (end == 0)
                    return -1;
                NEW_TOKEN(BEN_STR, p);
                t->v.s.ptr = b + body;
                t->v.s.len = n;
                t->end = p = end;
                uint32_t k = ntok - 1;
                if (f->last_key != UINT32_MAX) {
                    const ben_token *pk = &tok[f->last_key];
                    int cmp = key_cmp(pk->v.s.ptr, pk->v.s.len, b + body, n);
                    if (cmp == 0)
                        return fail_duplicate(d, k);
                    if (cmp > 0) {
                        f->unsorted = true;
                        canonical = false;
                    }
                }
                f->last_key = k;
                f->want_value = true;
                tok[f->tok].count++;
                continue;
            }
        }

        if (c == 'i') {
            int64_t v = 0;
            size_t end = scan_int(d, b, len, p, &v);
            if (end == 0)
                return -1;
            NEW_TOKEN(BEN_INT, p);
            t->v.i = v;
            t->end = p = end;
        } else if (is_digit(c)) {
            size_t body, n, end = scan_str(d, b, len, p, &body, &n);
            if (end == 0)
                return -1;
            NEW_TOKEN(BEN_STR, p);
            t->v.s.ptr = b + body;
            t->v.s.len = n;
            t->end = p = end;
        } else if (c == 'l' || c == 'd') {
            if (depth == BEN_MAX_DEPTH)
                return fail(d, p, "nesting deeper than %d", BEN_MAX_DEPTH);
            NEW_TOKEN(c == 'l' ? BEN_LIST : BEN_DICT, p);
            stack[depth++] = (frame){ntok - 1, UINT32_MAX, c == 'd', false, false};
            p++;
            continue;
        } else {
            return fail(d, p, "unexpected byte %s where a value was expected", byte_desc(c, bd));
        }

    value_done:
        if (depth == 0) {
            *ntok_out = ntok;
            *end_out = p;
            *canonical_out = canonical;
            return 0;
        }
        frame *up = &stack[depth - 1];
        if (up->is_dict)
            up->want_value = false;
        else
            tok[up->tok].count++;
    }
#undef NEW_TOKEN
}

static int decode_common(const uint8_t *buf, size_t len, uint32_t max_tokens, ben_doc *doc, size_t *consumed,
                         ben_error *err)
{
    decoder d = {0};
    d.buf = buf;
    d.len = len;
    d.max_tokens = max_tokens ? max_tokens : BEN_DEFAULT_MAX_TOKENS;
    d.err = err;
    if (doc)
        *doc = (ben_doc){0};

    uint32_t ntok = 0;
    size_t end = 0;
    bool canonical = true;
    int rc;
    if (!doc)
        rc = fail(&d, 0, "no document to fill");
    else if (!buf && len)
        rc = fail(&d, 0, "no input buffer");
    else {
        /* Every value takes at least two bytes, so len/2 + 1 tokens always suffice: small inputs get one allocation.
         * The capacity never exceeds max_tokens (grow_tokens relies on it to enforce the limit). */
        size_t want = len / 2 + 1;
        d.cap = (uint32_t)(want < BEN_INITIAL_TOKENS ? want : BEN_INITIAL_TOKENS);
        if (d.cap > d.max_tokens)
            d.cap = d.max_tokens;
        d.tok = malloc((size_t)d.cap * sizeof(ben_token));
        rc = d.tok ? decode(&d, &ntok, &end, &canonical) : fail(&d, 0, "out of memory");
        if (rc == 0 && !consumed && end != len)
            rc = fail(&d, end, "trailing bytes after the value");
    }
    free(d.scratch);
    if (rc < 0) {
        free(d.tok);
        return -1;
    }
    doc->input = buf;
    doc->input_len = len;
    doc->tok = d.tok;
    doc->ntok = ntok;
    doc->canonical = canonical;
    if (consumed)
        *consumed = end;
    return 0;
}

int ben_decode(const uint8_t *buf, size_t len, uint32_t max_tokens, ben_doc *doc, ben_error *err)
{
    return decode_common(buf, len, max_tokens, doc, NULL, err);
}

int ben_decode_prefix(const uint8_t *buf, size_t len, uint32_t max_tokens, ben_doc *doc, size_t *consumed,
                      ben_error *err)
{
    size_t dummy;
    return decode_common(buf, len, max_tokens, doc, consumed ? consumed : &dummy, err);
}

void ben_doc_free(ben_doc *doc)
{
    if (!doc)
        return;
    free(doc->tok);
    *doc = (ben_doc){0};
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Navigation                                                                                                        */

static const ben_token *tok_at(const ben_doc *doc, int64_t idx)
{
    if (!doc || !doc->tok || idx < 0 || (uint64_t)idx >= doc->ntok)
        return NULL;
    return &doc->tok[idx];
}

int64_t ben_dict_find_n(const ben_doc *doc, uint32_t dict, const void *key, size_t keylen)
{
    const ben_token *d = tok_at(doc, dict);
    if (!d || d->type != BEN_DICT || (!key && keylen))
        return -1;
    uint32_t k = dict + 1;
    for (uint32_t i = 0; i < d->count; i++) {
        const ben_token *kt = &doc->tok[k];
        if (kt->v.s.len == keylen && (keylen == 0 || memcmp(kt->v.s.ptr, key, keylen) == 0))
            return (int64_t)k + 1;
        k = doc->tok[k + 1].next;
    }
    return -1;
}

int64_t ben_dict_find(const ben_doc *doc, uint32_t dict, const char *key)
{
    if (!key)
        return -1;
    return ben_dict_find_n(doc, dict, key, strlen(key));
}

int64_t ben_list_at(const ben_doc *doc, uint32_t list, uint32_t n)
{
    const ben_token *l = tok_at(doc, list);
    if (!l || l->type != BEN_LIST || n >= l->count)
        return -1;
    uint32_t c = list + 1;
    for (uint32_t i = 0; i < n; i++)
        c = doc->tok[c].next;
    return c;
}

int64_t ben_first_child(const ben_doc *doc, uint32_t container)
{
    const ben_token *t = tok_at(doc, container);
    if (!t || (t->type != BEN_LIST && t->type != BEN_DICT) || t->count == 0)
        return -1;
    return (int64_t)container + 1;
}

int64_t ben_next_sibling(const ben_doc *doc, uint32_t container, uint32_t child)
{
    const ben_token *t = tok_at(doc, container);
    if (!t || (t->type != BEN_LIST && t->type != BEN_DICT) || child <= container || child >= t->next)
        return -1;
    uint32_t n = doc->tok[child].next;
    return n < t->next ? (int64_t)n : -1;
}

bool ben_get_int(const ben_doc *doc, int64_t idx, int64_t *out)
{
    const ben_token *t = tok_at(doc, idx);
    if (!t || t->type != BEN_INT)
        return false;
    if (out)
        *out = t->v.i;
    return true;
}

bool ben_get_str(const ben_doc *doc, int64_t idx, const uint8_t **ptr, size_t *len)
{
    const ben_token *t = tok_at(doc, idx);
    if (!t || t->type != BEN_STR)
        return false;
    if (ptr)
        *ptr = t->v.s.ptr;
    if (len)
        *len = t->v.s.len;
    return true;
}

bool ben_str_eq(const ben_doc *doc, int64_t idx, const char *s)
{
    const ben_token *t = tok_at(doc, idx);
    if (!t || t->type != BEN_STR || !s)
        return false;
    size_t n = strlen(s);
    return t->v.s.len == n && (n == 0 || memcmp(t->v.s.ptr, s, n) == 0);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Encoder                                                                                                           */

void ben_buf_init(ben_buf *b) { *b = (ben_buf){0}; }

void ben_buf_free(ben_buf *b)
{
    free(b->data);
    *b = (ben_buf){0};
}

/* Makes room for n more bytes; false (and failed set) on overflow or allocation failure. */
static bool reserve(ben_buf *b, size_t n)
{
    if (b->failed)
        return false;
    if (n > SIZE_MAX - b->len) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + n;
    if (need <= b->cap)
        return true;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    uint8_t *d = realloc(b->data, ncap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = ncap;
    return true;
}

static void put_bytes(ben_buf *b, const void *p, size_t n)
{
    if (!reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_byte(ben_buf *b, uint8_t c) { put_bytes(b, &c, 1); }

/* Writes the decimal digits of v into the end of out[0..24) and returns a pointer to the first one. */
static char *fmt_u64(uint64_t v, char out[24])
{
    char *p = out + 24;
    do {
        *--p = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    return p;
}

void ben_put_int(ben_buf *b, int64_t v)
{
    /* 'i', an optional '-', at most 19 digits (INT64_MIN's magnitude has 19), 'e': 22 bytes. */
    char out[24];
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char *p = out + sizeof out;
    *--p = 'e';
    do {
        *--p = (char)('0' + mag % 10u);
        mag /= 10u;
    } while (mag);
    if (v < 0)
        *--p = '-';
    *--p = 'i';
    put_bytes(b, p, (size_t)(out + sizeof out - p));
}

void ben_put_str(ben_buf *b, const void *s, size_t len)
{
    if (b->failed)
        return;
    if (!s && len) {
        b->failed = true;
        return;
    }
    char digits[24];
    char *p = fmt_u64(len, digits);
    size_t nd = (size_t)(digits + 24 - p);
    if (len > SIZE_MAX - nd - 1) {
        b->failed = true;
        return;
    }
    if (!reserve(b, nd + 1 + len))
        return;
    memcpy(b->data + b->len, p, nd);
    b->data[b->len + nd] = ':';
    if (len)
        memcpy(b->data + b->len + nd + 1, s, len);
    b->len += nd + 1 + len;
}

void ben_put_cstr(ben_buf *b, const char *s)
{
    if (!s) {
        b->failed = true;
        return;
    }
    ben_put_str(b, s, strlen(s));
}

void ben_put_list_begin(ben_buf *b) { put_byte(b, 'l'); }
void ben_put_dict_begin(ben_buf *b) { put_byte(b, 'd'); }
void ben_put_end(ben_buf *b) { put_byte(b, 'e'); }

void ben_put_raw(ben_buf *b, const void *bytes, size_t len)
{
    if (!bytes && len) {
        b->failed = true;
        return;
    }
    put_bytes(b, bytes, len);
}

/* Rebuilds a value, sorting the keys of any dictionary found out of order. `depth` is the nesting level of idx if it
 * is a container (the top-level value is level 1). Recursion is bounded by BEN_MAX_DEPTH: the decoder never produces
 * deeper documents, and a deeper hand-made one fails the buffer. */
static void put_value_rec(ben_buf *b, const ben_doc *doc, uint32_t idx, unsigned depth)
{
    if (b->failed)
        return;
    if (idx >= doc->ntok) {
        b->failed = true;
        return;
    }
    const ben_token *t = &doc->tok[idx];
    if ((t->type == BEN_LIST || t->type == BEN_DICT) && depth > BEN_MAX_DEPTH) {
        b->failed = true; /* `depth` counts containers, as the decoder does: scalars inside the 64th are fine */
        return;
    }
    switch (t->type) {
    case BEN_INT:
        ben_put_int(b, t->v.i);
        return;
    case BEN_STR:
        ben_put_str(b, t->v.s.ptr, t->v.s.len);
        return;
    case BEN_LIST: {
        put_byte(b, 'l');
        uint32_t c = idx + 1;
        for (uint32_t i = 0; i < t->count && !b->failed; i++) {
            if (c >= doc->ntok) {
                b->failed = true;
                return;
            }
            put_value_rec(b, doc, c, depth + 1);
            c = doc->tok[c].next;
        }
        put_byte(b, 'e');
        return;
    }
    case BEN_DICT: {
        put_byte(b, 'd');
        /* Are the keys already in order? (The common case even in a non-canonical document.) */
        bool sorted = true;
        uint32_t k = idx + 1, prev = UINT32_MAX;
        for (uint32_t i = 0; i < t->count; i++) {
            if (k + 1 >= doc->ntok || doc->tok[k].type != BEN_STR) {
                b->failed = true;
                return;
            }
            if (prev != UINT32_MAX && key_cmp(doc->tok[prev].v.s.ptr, doc->tok[prev].v.s.len, doc->tok[k].v.s.ptr,
                                              doc->tok[k].v.s.len) > 0)
                sorted = false;
            prev = k;
            k = doc->tok[k + 1].next;
        }
        if (sorted) {
            k = idx + 1;
            for (uint32_t i = 0; i < t->count && !b->failed; i++) {
                ben_put_str(b, doc->tok[k].v.s.ptr, doc->tok[k].v.s.len);
                put_value_rec(b, doc, k + 1, depth + 1);
                k = doc->tok[k + 1].next;
            }
        } else {
            key_ref *keys = mul_overflows(t->count, sizeof(key_ref)) ? NULL : malloc((size_t)t->count * sizeof(key_ref));
            if (!keys) {
                b->failed = true;
                return;
            }
            k = idx + 1;
            for (uint32_t i = 0; i < t->count; i++) {
                keys[i] = (key_ref){doc->tok[k].v.s.ptr, doc->tok[k].v.s.len, k};
                k = doc->tok[k + 1].next;
            }
            qsort(keys, t->count, sizeof(key_ref), key_ref_cmp);
            for (uint32_t i = 0; i < t->count && !b->failed; i++) {
                ben_put_str(b, keys[i].ptr, keys[i].len);
                put_value_rec(b, doc, keys[i].tok + 1, depth + 1);
            }
            free(keys);
        }
        put_byte(b, 'e');
        return;
    }
    default:
        b->failed = true;
        return;
    }
}

void ben_put_value(ben_buf *b, const ben_doc *doc, uint32_t idx)
{
    if (b->failed)
        return;
    if (!doc || !doc->tok || idx >= doc->ntok) {
        b->failed = true;
        return;
    }
    const ben_token *t = &doc->tok[idx];
    if (doc->canonical && doc->input && t->end <= doc->input_len && t->start < t->end) {
        /* A strict canonical document is its own canonical encoding. */
        put_bytes(b, doc->input + t->start, t->end - t->start);
        return;
    }
    put_value_rec(b, doc, idx, 1);
}
