/* extension: owns the BEP 10 extension handshake and BEP 9 ut_metadata payload formats: validation of decoded
 * bencode against each field's type and range, and canonical encoding into caller buffers. See extension.h. */
#include "extension.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bencode.h"

#define UT_METADATA_MAX_TOKENS 256u
#define UT_METADATA_MAX_PIECES (EXT_METADATA_SIZE_MAX / EXT_UT_METADATA_PIECE_LEN)

static const char *const NAMES[EXT_NAME_COUNT] = {
    [EXT_LT_DONTHAVE] = "lt_donthave", [EXT_SHARE_MODE] = "share_mode",   [EXT_UPLOAD_ONLY] = "upload_only",
    [EXT_UT_HOLEPUNCH] = "ut_holepunch", [EXT_UT_METADATA] = "ut_metadata", [EXT_UT_PEX] = "ut_pex",
};

const char *ext_name_str(ext_name n)
{
    if ((unsigned)n >= EXT_NAME_COUNT)
        return NULL;
    return NAMES[n];
}

int ext_name_find(const uint8_t *name, size_t len)
{
    for (int i = 0; i < EXT_NAME_COUNT; i++)
        if (strlen(NAMES[i]) == len && memcmp(NAMES[i], name, len) == 0)
            return i;
    return -1;
}

static int set_err(ext_error *err, size_t offset, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->what, sizeof err->what, fmt, ap);
        va_end(ap);
        err->offset = offset;
    }
    return -1;
}

static void copy_ben_err(ext_error *err, const ben_error *be)
{
    set_err(err, be->offset, "bencode: %s", be->what);
}

/* ---- decoding helpers ---- */

static bool key_is(const ben_doc *doc, int64_t k, const char *name) { return ben_str_eq(doc, k, name); }

static size_t tok_start(const ben_doc *doc, int64_t idx) { return doc->tok[idx].start; }

/* A handshake field that is present but malformed or out of range: counted, and the first one described in *err. */
static void ignore(ext_handshake *h, ext_error *err, size_t offset, const char *fmt, ...)
{
    if (h->ignored++ == 0 && err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->what, sizeof err->what, fmt, ap);
        va_end(ap);
        err->offset = offset;
    }
}

/* An integer value in [lo, hi]; false if it is not one (the caller ignores the field). */
static bool get_ranged(const ben_doc *doc, int64_t v, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t x;
    if (!ben_get_int(doc, v, &x) || x < lo || x > hi)
        return false;
    *out = x;
    return true;
}

/* A string value whose length is one of the allowed lengths (len2 0 = only len1); false (nothing written) if not. */
static bool get_bytes(const ben_doc *doc, int64_t v, size_t len1, size_t len2, uint8_t *out, uint8_t *out_len)
{
    const uint8_t *p;
    size_t n;
    if (!ben_get_str(doc, v, &p, &n) || (n != len1 && (len2 == 0 || n != len2)))
        return false;
    memcpy(out, p, n);
    if (out_len)
        *out_len = (uint8_t)n;
    return true;
}

/* One entry of m: a known name takes its id unless another known name has it too, in which case neither keeps it
 * (clash remembers the ids so shared, so a third name cannot take one either). */
static void decode_m_entry(const ben_doc *doc, int64_t v, int which, int64_t id, ext_handshake *h, bool *clash,
                           ext_error *err)
{
    if (id != 0 && clash[id]) {
        ignore(h, err, tok_start(doc, v), "m: %s: id %d is shared by other extensions, ignored", NAMES[which],
               (int)id);
        return;
    }
    if (id != 0)
        for (int i = 0; i < EXT_NAME_COUNT; i++)
            if (h->m[i] == id) {
                ignore(h, err, tok_start(doc, v), "m: %s and %s share id %d, both ignored", NAMES[i], NAMES[which],
                       (int)id);
                h->ignored++; /* the earlier entry is ignored too */
                h->m[i] = 0;
                clash[id] = true;
                return;
            }
    h->m[which] = (uint8_t)id;
}

static void decode_m(const ben_doc *doc, int64_t mdict, ext_handshake *h, ext_error *err)
{
    if (doc->tok[mdict].type != BEN_DICT) {
        ignore(h, err, tok_start(doc, mdict), "m: not a dictionary, ignored (no extensions)");
        return;
    }
    h->has_m = true;
    bool clash[256] = {false};
    for (int64_t k = ben_first_child(doc, (uint32_t)mdict); k >= 0;) {
        int64_t v = ben_next_sibling(doc, (uint32_t)mdict, (uint32_t)k);
        const uint8_t *name;
        size_t name_len;
        bool key_ok = ben_get_str(doc, k, &name, &name_len);
        assert(key_ok && v >= 0); /* keys are strings, each with a value (bencode guarantees it) */
        (void)key_ok;
        int which = ext_name_find(name, name_len);
        int64_t id;
        if (which < 0)
            h->m_unknown++; /* whatever its value: we never send its messages */
        else if (!get_ranged(doc, v, 0, 255, &id))
            ignore(h, err, tok_start(doc, v), "m: %s: id is not an integer in 0..255, ignored", NAMES[which]);
        else
            decode_m_entry(doc, v, which, id, h, clash, err);
        k = ben_next_sibling(doc, (uint32_t)mdict, (uint32_t)v);
    }
}

/* The integer fields of a handshake: the key and its range; store_int says where the value goes. */
typedef enum int_field { F_REQQ, F_PORT, F_METADATA_SIZE, F_UPLOAD_ONLY, F_COUNT } int_field;

static const struct {
    const char *key;
    int64_t lo, hi;
} INT_FIELDS[F_COUNT] = {
    [F_REQQ] = {"reqq", 1, INT32_MAX},
    [F_PORT] = {"p", 0, 65535},
    [F_METADATA_SIZE] = {"metadata_size", 1, EXT_METADATA_SIZE_MAX},
    [F_UPLOAD_ONLY] = {"upload_only", 0, 1},
};

static void store_int(ext_handshake *h, int_field f, int64_t x)
{
    switch (f) {
    case F_REQQ: h->reqq = (uint32_t)x; break;
    case F_PORT: h->port = (uint16_t)x; break;
    case F_METADATA_SIZE: h->metadata_size = (uint32_t)x; break;
    case F_UPLOAD_ONLY:
        h->has_upload_only = true;
        h->upload_only = x == 1;
        break;
    case F_COUNT: assert(!"not a field"); break;
    }
}

/* `v`: the client's name, a string without NUL; only its first EXT_CLIENT_MAX bytes are kept. */
static void decode_client(const ben_doc *doc, int64_t v, ext_handshake *h, ext_error *err)
{
    const uint8_t *p;
    size_t n;
    if (!ben_get_str(doc, v, &p, &n)) {
        ignore(h, err, tok_start(doc, v), "v: not a string, ignored");
        return;
    }
    if (n > EXT_CLIENT_MAX) {
        ignore(h, err, tok_start(doc, v), "v: %zu bytes, truncated to %d", n, EXT_CLIENT_MAX);
        n = EXT_CLIENT_MAX;
    }
    if (memchr(p, 0, n)) {
        ignore(h, err, tok_start(doc, v), "v: contains a NUL byte, ignored");
        return;
    }
    memcpy(h->v, p, n);
    h->v[n] = '\0';
    h->v_len = (uint8_t)n;
}

static void decode_field(const ben_doc *doc, int64_t k, int64_t v, ext_handshake *h, ext_error *err)
{
    if (key_is(doc, k, "m")) {
        decode_m(doc, v, h, err);
        return;
    }
    if (key_is(doc, k, "v")) {
        decode_client(doc, v, h, err);
        return;
    }
    for (int f = 0; f < F_COUNT; f++) {
        if (key_is(doc, k, INT_FIELDS[f].key)) {
            int64_t x;
            if (get_ranged(doc, v, INT_FIELDS[f].lo, INT_FIELDS[f].hi, &x))
                store_int(h, (int_field)f, x);
            else
                ignore(h, err, tok_start(doc, v), "%s: not an integer in %lld..%lld, ignored", INT_FIELDS[f].key,
                       (long long)INT_FIELDS[f].lo, (long long)INT_FIELDS[f].hi);
            return;
        }
    }
    if (key_is(doc, k, "yourip")) {
        if (!get_bytes(doc, v, 4, 16, h->yourip, &h->yourip_len))
            ignore(h, err, tok_start(doc, v), "yourip: not a string of 4 or 16 bytes, ignored");
        return;
    }
    if (key_is(doc, k, "ipv4")) {
        h->has_ipv4 = get_bytes(doc, v, 4, 0, h->ipv4, NULL);
        if (!h->has_ipv4)
            ignore(h, err, tok_start(doc, v), "ipv4: not a string of 4 bytes, ignored");
        return;
    }
    if (key_is(doc, k, "ipv6")) {
        h->has_ipv6 = get_bytes(doc, v, 16, 0, h->ipv6, NULL);
        if (!h->has_ipv6)
            ignore(h, err, tok_start(doc, v), "ipv6: not a string of 16 bytes, ignored");
        return;
    }
    /* unknown keys are ignored: BEP 10 is extensible */
}

int ext_handshake_decode(const uint8_t *payload, size_t len, ext_handshake *out, ext_error *err)
{
    memset(out, 0, sizeof *out);
    if (err) {
        err->what[0] = '\0';
        err->offset = 0;
    }
    ben_doc doc;
    ben_error be;
    if (ben_decode(payload, len, EXT_HANDSHAKE_MAX_TOKENS, &doc, &be) < 0) {
        copy_ben_err(err, &be);
        return -1;
    }
    int rc = 0;
    if (doc.tok[0].type != BEN_DICT) {
        rc = set_err(err, 0, "extension handshake is not a dictionary");
    } else {
        for (int64_t k = ben_first_child(&doc, 0); k >= 0;) {
            int64_t v = ben_next_sibling(&doc, 0, (uint32_t)k);
            assert(v >= 0); /* every key has a value */
            decode_field(&doc, k, v, out, err);
            k = ben_next_sibling(&doc, 0, (uint32_t)v);
        }
    }
    ben_doc_free(&doc);
    if (rc < 0)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- encoding: a bounded writer into the caller's buffer ---- */

typedef struct writer {
    uint8_t *buf;
    size_t cap, len;
    bool overflow;
} writer;

static void put_raw(writer *w, const void *p, size_t n)
{
    assert(w->len <= w->cap);
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_int(writer *w, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "i%llde", (long long)v);
    assert(n > 0 && (size_t)n < sizeof tmp);
    put_raw(w, tmp, (size_t)n);
}

static void put_str(writer *w, const void *p, size_t n)
{
    char tmp[24];
    int k = snprintf(tmp, sizeof tmp, "%zu:", n);
    assert(k > 0 && (size_t)k < sizeof tmp);
    put_raw(w, tmp, (size_t)k);
    put_raw(w, p, n);
}

static void put_cstr(writer *w, const char *s) { put_str(w, s, strlen(s)); }

size_t ext_handshake_encode(const ext_handshake *h, uint8_t *buf, size_t cap)
{
    if (h->v_len > EXT_CLIENT_MAX || (h->yourip_len != 0 && h->yourip_len != 4 && h->yourip_len != 16) ||
        h->metadata_size > EXT_METADATA_SIZE_MAX || h->reqq > INT32_MAX)
        return 0;
    writer w = {buf, cap, 0, false};
    /* keys in sorted order: ipv4 ipv6 m metadata_size p reqq upload_only v yourip */
    put_raw(&w, "d", 1);
    if (h->has_ipv4) {
        put_cstr(&w, "ipv4");
        put_str(&w, h->ipv4, 4);
    }
    if (h->has_ipv6) {
        put_cstr(&w, "ipv6");
        put_str(&w, h->ipv6, 16);
    }
    if (h->has_m) {
        put_cstr(&w, "m");
        put_raw(&w, "d", 1);
        for (int i = 0; i < EXT_NAME_COUNT; i++) /* the enum is in sorted name order */
            if (h->m[i]) {
                put_cstr(&w, NAMES[i]);
                put_int(&w, h->m[i]);
            }
        put_raw(&w, "e", 1);
    }
    if (h->metadata_size) {
        put_cstr(&w, "metadata_size");
        put_int(&w, h->metadata_size);
    }
    if (h->port) {
        put_cstr(&w, "p");
        put_int(&w, h->port);
    }
    if (h->reqq) {
        put_cstr(&w, "reqq");
        put_int(&w, h->reqq);
    }
    if (h->has_upload_only) {
        put_cstr(&w, "upload_only");
        put_int(&w, h->upload_only ? 1 : 0);
    }
    if (h->v_len) {
        put_cstr(&w, "v");
        put_str(&w, h->v, h->v_len);
    }
    if (h->yourip_len) {
        put_cstr(&w, "yourip");
        put_str(&w, h->yourip, h->yourip_len);
    }
    put_raw(&w, "e", 1);
    return w.overflow ? 0 : w.len;
}

/* ---- ut_metadata ---- */

uint32_t ext_ut_metadata_piece_count(uint32_t metadata_size)
{
    return metadata_size / EXT_UT_METADATA_PIECE_LEN + (metadata_size % EXT_UT_METADATA_PIECE_LEN != 0);
}

uint32_t ext_ut_metadata_piece_len(uint32_t metadata_size, uint32_t piece)
{
    if (piece >= ext_ut_metadata_piece_count(metadata_size))
        return 0;
    uint32_t rest = metadata_size - piece * EXT_UT_METADATA_PIECE_LEN;
    return rest < EXT_UT_METADATA_PIECE_LEN ? rest : EXT_UT_METADATA_PIECE_LEN;
}

static ext_status ut_fail(ext_error *err, size_t offset, const char *what)
{
    set_err(err, offset, "ut_metadata: %s", what);
    return EXT_ERROR;
}

static ext_status ut_decode_doc(const ben_doc *doc, const uint8_t *payload, size_t len, size_t dict_len,
                                uint32_t metadata_size, ext_ut_metadata_msg *out, ext_error *err)
{
    if (doc->tok[0].type != BEN_DICT)
        return ut_fail(err, 0, "message is not a dictionary");
    int64_t t = ben_dict_find(doc, 0, "msg_type");
    int64_t type;
    if (t < 0 || !ben_get_int(doc, t, &type))
        return ut_fail(err, t < 0 ? 0 : tok_start(doc, t), "msg_type: missing or not an integer");
    if (type < EXT_UT_METADATA_REQUEST || type > EXT_UT_METADATA_REJECT)
        return EXT_IGNORE;
    out->type = (ext_ut_metadata_type)type;

    int64_t p = ben_dict_find(doc, 0, "piece");
    int64_t piece;
    if (p < 0 || !ben_get_int(doc, p, &piece) || piece < 0 || piece > UINT32_MAX)
        return ut_fail(err, p < 0 ? 0 : tok_start(doc, p), "piece: missing or not an integer in 0..4294967295");
    out->piece = (uint32_t)piece;

    /* a request or reject beyond the metadata is well-formed: the caller answers a request with a reject (BEP 9) */
    uint32_t size = metadata_size;
    if (type == EXT_UT_METADATA_DATA) {
        int64_t s = ben_dict_find(doc, 0, "total_size");
        int64_t total;
        if (s < 0 || !ben_get_int(doc, s, &total) || total < 1 || total > EXT_METADATA_SIZE_MAX)
            return ut_fail(err, s < 0 ? 0 : tok_start(doc, s), "total_size: missing or not in 1..64 MiB");
        if (metadata_size && (uint32_t)total != metadata_size)
            return ut_fail(err, tok_start(doc, s), "total_size differs from the known metadata size");
        out->total_size = (uint32_t)total;
        size = (uint32_t)total;
        if (out->piece >= ext_ut_metadata_piece_count(size))
            return ut_fail(err, tok_start(doc, p), "data: piece index beyond total_size");
    }

    assert(dict_len <= len);
    if (type == EXT_UT_METADATA_DATA) {
        uint32_t want = ext_ut_metadata_piece_len(size, out->piece);
        if (len - dict_len != want)
            return ut_fail(err, dict_len, "data length is not the piece's length");
        out->data = payload + dict_len;
        out->data_len = want;
    } else if (dict_len != len) {
        return ut_fail(err, dict_len, "trailing bytes after the dictionary");
    }
    return EXT_OK;
}

ext_status ext_ut_metadata_decode(const uint8_t *payload, size_t len, uint32_t metadata_size,
                                  ext_ut_metadata_msg *out, ext_error *err)
{
    memset(out, 0, sizeof *out);
    if (metadata_size > EXT_METADATA_SIZE_MAX)
        return ut_fail(err, 0, "known metadata size above 64 MiB");
    ben_doc doc;
    ben_error be;
    size_t dict_len = 0;
    if (ben_decode_prefix(payload, len, UT_METADATA_MAX_TOKENS, &doc, &dict_len, &be) < 0) {
        copy_ben_err(err, &be);
        return EXT_ERROR;
    }
    ext_status st = ut_decode_doc(&doc, payload, len, dict_len, metadata_size, out, err);
    ben_doc_free(&doc);
    if (st != EXT_OK)
        memset(out, 0, sizeof *out);
    return st;
}

static size_t ut_encode(uint8_t *buf, size_t cap, ext_ut_metadata_type type, uint32_t piece, uint32_t total_size)
{
    writer w = {buf, cap, 0, false};
    put_raw(&w, "d", 1);
    put_cstr(&w, "msg_type");
    put_int(&w, type);
    put_cstr(&w, "piece");
    put_int(&w, piece);
    if (type == EXT_UT_METADATA_DATA) {
        put_cstr(&w, "total_size");
        put_int(&w, total_size);
    }
    put_raw(&w, "e", 1);
    return w.overflow ? 0 : w.len;
}

size_t ext_ut_metadata_encode_request(uint8_t *buf, size_t cap, uint32_t piece)
{
    if (piece >= UT_METADATA_MAX_PIECES)
        return 0;
    return ut_encode(buf, cap, EXT_UT_METADATA_REQUEST, piece, 0);
}

size_t ext_ut_metadata_encode_reject(uint8_t *buf, size_t cap, uint32_t piece)
{
    return ut_encode(buf, cap, EXT_UT_METADATA_REJECT, piece, 0);
}

size_t ext_ut_metadata_encode_data_header(uint8_t *buf, size_t cap, uint32_t piece, uint32_t total_size)
{
    if (total_size < 1 || total_size > EXT_METADATA_SIZE_MAX || piece >= ext_ut_metadata_piece_count(total_size))
        return 0;
    return ut_encode(buf, cap, EXT_UT_METADATA_DATA, piece, total_size);
}
