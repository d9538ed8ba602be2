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

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BEN_INITIAL_TOKENS 256u

/* The decoder's per-byte helpers: inlined into its loop even where they are called twice (as a single function would
 * be), so that its hot state stays in registers. */
#if defined(__GNUC__)
#define HOT static inline __attribute__((always_inline))
#else
#define HOT static inline
#endif

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

/* Fills keys[0..count) with the keys of the dictionary tok[dict] (whose tokens are well formed) and sorts them. */
static void sort_keys(const ben_token *tok, uint32_t dict, key_ref *keys)
{
    assert(tok[dict].type == BEN_DICT);
    uint32_t k = dict + 1;
    for (uint32_t i = 0; i < tok[dict].count; i++) {
        assert(tok[k].type == BEN_STR);
        keys[i] = (key_ref){tok[k].v.s.ptr, tok[k].v.s.len, k};
        k = tok[k + 1].next;
    }
    qsort(keys, tok[dict].count, sizeof(key_ref), key_ref_cmp);
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

/* Cold state of one decode. The hot state (position, token array, count) is decode()'s cursor. */
typedef struct decoder {
    const uint8_t *buf;
    size_t len;
    ben_token *tok; /* kept equal to the cursor's array pointer */
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

/* Reads the decimal digits at b[p..) into *value as long as it stays at most `limit`. Returns the offset after the last
 * digit. *overflow is the offset of the first digit that would take the value above `limit` (SIZE_MAX if none); the
 * digits from there on are skipped without being counted. */
HOT size_t scan_digits(const uint8_t *b, size_t len, size_t p, uint64_t limit, uint64_t *value, size_t *overflow)
{
    const uint64_t q = limit / 10u;
    const unsigned r = (unsigned)(limit % 10u);
    uint64_t v = 0;
    *overflow = SIZE_MAX;
    for (; p < len && is_digit(b[p]); p++) {
        unsigned dg = (unsigned)(b[p] - '0');
        if (v > q || (v == q && dg > r)) { /* v * 10 + dg > limit = q * 10 + r */
            *overflow = p;
            while (p < len && is_digit(b[p]))
                p++;
            break;
        }
        v = v * 10u + dg;
    }
    *value = v;
    return p;
}

/* Scans `i [-] digits e` at p (which holds the 'i'). Returns the offset after the 'e' and the value in *out, or 0
 * (never a valid end: an integer takes at least 3 bytes) with the error set. */
HOT size_t scan_int(decoder *d, const uint8_t *b, size_t len, size_t p, int64_t *out)
{
    bool neg = false;
    char bd[8];

    assert(p < len && b[p] == 'i');
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
    uint64_t mag;
    size_t overflow;
    p = scan_digits(b, len, p, neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX, &mag, &overflow);
    if (overflow != SIZE_MAX)
        SCAN_FAIL(overflow, "integer does not fit in 64 bits");
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
HOT size_t scan_str(decoder *d, const uint8_t *b, size_t len, size_t p, size_t *body, size_t *n_out)
{
    const size_t start = p;
    char bd[8];

    assert(p < len && is_digit(b[p]));
    if (b[p] == '0' && p + 1 < len && is_digit(b[p + 1]))
        SCAN_FAIL(p, "string length has a leading zero");
    /* Once the length exceeds the whole input it can only be too long: scan_digits stops counting. */
    uint64_t n;
    size_t overflow;
    p = scan_digits(b, len, p, len, &n, &overflow);
    if (p >= len)
        SCAN_FAIL(len, "unexpected end of input");
    if (b[p] != ':')
        SCAN_FAIL(p, "expected ':' after the string length, found %s", byte_desc(b[p], bd));
    p++;
    size_t remaining = len - p;
    if (overflow != SIZE_MAX || n > remaining) {
        size_t ndig = p - 1 - start;
        SCAN_FAIL(start, "string length %.*s%s exceeds the %lu bytes remaining", (int)(ndig > 20 ? 20 : ndig),
                  (const char *)b + start, ndig > 20 ? "..." : "", (unsigned long)remaining);
    }
    *body = p;
    *n_out = (size_t)n;
    return p + (size_t)n;
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
    sort_keys(d->tok, dict, d->scratch);
    uint32_t dup = UINT32_MAX;
    for (uint32_t i = 1; i < n; i++) {
        const key_ref *a = &d->scratch[i - 1], *b = &d->scratch[i];
        if (key_cmp(a->ptr, a->len, b->ptr, b->len) == 0 && b->tok < dup)
            dup = b->tok;
    }
    return dup == UINT32_MAX ? 0 : fail_duplicate(d, dup);
}

/* The hot state of one decode (input, read position, token array, count): a local of decode() handed to inline
 * helpers, so that the compiler can keep it in registers across token stores (which could alias the decoder's fields).
 * d->tok and d->cap follow tok and cap. */
typedef struct cursor {
    const uint8_t *buf;
    size_t len, p;
    ben_token *tok;
    uint32_t ntok, cap;
} cursor;

/* Appends a token of type `type` whose encoding starts at `start`. Returns it, or NULL with the error set. */
HOT ben_token *new_token(decoder *d, cursor *c, ben_type type, size_t start)
{
    if (c->ntok == c->cap) {
        if (!grow_tokens(d, c->ntok, start))
            return NULL;
        c->tok = d->tok;
        c->cap = d->cap;
    }
    assert(c->ntok < c->cap);
    ben_token *t = &c->tok[c->ntok++];
    t->type = (uint8_t)type;
    t->next = c->ntok;
    t->count = 0;
    t->start = start;
    return t;
}

/* The helpers below read one item at c->p (which is inside the input) and return 1 when it completed a value, 0 when
 * the value goes on (a container was opened, a key was read), -1 with the error set. */

/* A string at c->p (which holds a digit) as a new token. Returns it, or NULL with the error set. */
HOT ben_token *read_str(decoder *d, cursor *c)
{
    size_t body, n, end = scan_str(d, c->buf, c->len, c->p, &body, &n);
    ben_token *t;
    if (end == 0 || !(t = new_token(d, c, BEN_STR, c->p)))
        return NULL;
    t->v.s.ptr = c->buf + body;
    t->v.s.len = n;
    t->end = c->p = end;
    return t;
}

/* An integer or a string value; anything else is an error here. */
HOT int read_scalar(decoder *d, cursor *c)
{
    const uint8_t ch = c->buf[c->p];
    if (is_digit(ch))
        return read_str(d, c) ? 1 : -1;
    if (ch != 'i') {
        char bd[8];
        return fail(d, c->p, "unexpected byte %s where a value was expected", byte_desc(ch, bd));
    }
    int64_t v = 0;
    size_t end = scan_int(d, c->buf, c->len, c->p, &v);
    ben_token *t;
    if (end == 0 || !(t = new_token(d, c, BEN_INT, c->p)))
        return -1;
    t->v.i = v;
    t->end = c->p = end;
    return 1;
}

/* The 'l' or 'd' of a new container, pushed as stack[*depth]. */
HOT int open_container(decoder *d, cursor *c, frame stack[BEN_MAX_DEPTH], unsigned *depth)
{
    const uint8_t ch = c->buf[c->p];
    assert(ch == 'l' || ch == 'd');
    if (*depth == BEN_MAX_DEPTH)
        return fail(d, c->p, "nesting deeper than %d", BEN_MAX_DEPTH);
    if (!new_token(d, c, ch == 'l' ? BEN_LIST : BEN_DICT, c->p))
        return -1;
    stack[(*depth)++] = (frame){c->ntok - 1, UINT32_MAX, ch == 'd', false, false};
    c->p++;
    return 0;
}

/* The 'e' that closes the container of frame f (already popped). */
HOT int close_container(decoder *d, cursor *c, const frame *f)
{
    assert(c->buf[c->p] == 'e' && f->tok < c->ntok);
    if (f->want_value)
        return fail(d, c->p, "dictionary key has no value");
    ben_token *t = &c->tok[f->tok];
    assert(t->type == (f->is_dict ? BEN_DICT : BEN_LIST));
    t->end = ++c->p;
    t->next = c->ntok;
    if (f->unsorted && check_unsorted_dict(d, f->tok) < 0)
        return -1;
    return 1;
}

/* A key of the dictionary of frame f, checked against the previous key for order and duplicates. */
HOT int read_key(decoder *d, cursor *c, frame *f, bool *canonical)
{
    assert(f->is_dict && !f->want_value);
    if (!is_digit(c->buf[c->p]))
        return fail(d, c->p, "dictionary key is not a string");
    const ben_token *t = read_str(d, c);
    if (!t)
        return -1;
    uint32_t k = c->ntok - 1;
    if (f->last_key != UINT32_MAX) {
        const ben_token *pk = &c->tok[f->last_key];
        int cmp = key_cmp(pk->v.s.ptr, pk->v.s.len, t->v.s.ptr, t->v.s.len);
        if (cmp == 0)
            return fail_duplicate(d, k);
        if (cmp > 0) {
            f->unsorted = true;
            *canonical = false;
        }
    }
    f->last_key = k;
    f->want_value = true;
    c->tok[f->tok].count++;
    return 0;
}

/* Decodes one value from the start of d->buf. On success returns 0 with the token count in *ntok_out, the end of
 * the value in *end_out and whether every dictionary was in order in *canonical. */
static int decode(decoder *d, uint32_t *ntok_out, size_t *end_out, bool *canonical_out)
{
    cursor c = {d->buf, d->len, 0, d->tok, 0, d->cap};
    bool canonical = true;
    frame stack[BEN_MAX_DEPTH];
    unsigned depth = 0;

    for (;;) {
        if (c.p >= c.len)
            return fail_eof(d);
        const uint8_t ch = c.buf[c.p];
        frame *f = depth > 0 ? &stack[depth - 1] : NULL;
        int r;
        if (f && ch == 'e') {
            depth--;
            r = close_container(d, &c, f);
        } else if (f && f->is_dict && !f->want_value) {
            r = read_key(d, &c, f, &canonical);
        } else if (ch == 'l' || ch == 'd') {
            r = open_container(d, &c, stack, &depth);
        } else {
            r = read_scalar(d, &c);
        }
        if (r < 0)
            return -1;
        if (r == 0)
            continue;
        /* A value is complete: it was the whole document, a dictionary's value or a list's element. */
        if (depth == 0) {
            *ntok_out = c.ntok;
            *end_out = c.p;
            *canonical_out = canonical;
            return 0;
        }
        frame *up = &stack[depth - 1];
        if (up->is_dict)
            up->want_value = false;
        else
            c.tok[up->tok].count++;
    }
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

static void put_value_rec(ben_buf *b, const ben_doc *doc, uint32_t idx, unsigned depth);

/* The list doc->tok[idx], its elements at nesting level `depth` + 1. */
static void put_list_rec(ben_buf *b, const ben_doc *doc, uint32_t idx, unsigned depth)
{
    const ben_token *t = &doc->tok[idx];
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
}

/* Whether the keys of the dictionary doc->tok[idx] are already in order (the common case even in a non-canonical
 * document). Fails the buffer, and returns false, when its tokens are malformed (a hand-made document). */
static bool dict_sorted(ben_buf *b, const ben_doc *doc, uint32_t idx)
{
    bool sorted = true;
    uint32_t k = idx + 1, prev = UINT32_MAX;
    for (uint32_t i = 0; i < doc->tok[idx].count; i++) {
        if (k + 1 >= doc->ntok || doc->tok[k].type != BEN_STR) {
            b->failed = true;
            return false;
        }
        if (prev != UINT32_MAX && key_cmp(doc->tok[prev].v.s.ptr, doc->tok[prev].v.s.len, doc->tok[k].v.s.ptr,
                                          doc->tok[k].v.s.len) > 0)
            sorted = false;
        prev = k;
        k = doc->tok[k + 1].next;
    }
    return sorted;
}

/* The dictionary doc->tok[idx], its keys sorted, its values at nesting level `depth` + 1. */
static void put_dict_rec(ben_buf *b, const ben_doc *doc, uint32_t idx, unsigned depth)
{
    const ben_token *t = &doc->tok[idx];
    put_byte(b, 'd');
    bool sorted = dict_sorted(b, doc, idx);
    if (b->failed)
        return;
    if (sorted) {
        uint32_t k = idx + 1;
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
        sort_keys(doc->tok, idx, keys);
        for (uint32_t i = 0; i < t->count && !b->failed; i++) {
            ben_put_str(b, keys[i].ptr, keys[i].len);
            put_value_rec(b, doc, keys[i].tok + 1, depth + 1);
        }
        free(keys);
    }
    put_byte(b, 'e');
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
    case BEN_LIST:
        put_list_rec(b, doc, idx, depth);
        return;
    case BEN_DICT:
        put_dict_rec(b, doc, idx, depth);
        return;
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
