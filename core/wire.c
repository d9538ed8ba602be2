/* wire: owns the peer wire protocol's byte format: the incremental decoder (a byte-at-a-time-safe state machine that
 * gathers only what a message needs), the per-message encoders and the reserved-bit helpers. See wire.h. */
#include "wire.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    ST_HANDSHAKE = 0, /* gathering the 68-byte handshake, checking pstr byte by byte */
    ST_PREFIX,        /* gathering the 4-byte length prefix into hdr */
    ST_ID,            /* waiting for the id byte */
    ST_FIXED,         /* gathering a fixed-size payload into hdr + 5 */
    ST_VAR,           /* gathering a variable payload (zero copy or into buf) */
    ST_FAILED,
};

static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- reserved bits ---- */

bool wire_reserved_has_fast(const uint8_t reserved[WIRE_RESERVED_LEN]) { return (reserved[7] & 0x04) != 0; }
bool wire_reserved_has_extended(const uint8_t reserved[WIRE_RESERVED_LEN]) { return (reserved[5] & 0x10) != 0; }
bool wire_reserved_has_dht(const uint8_t reserved[WIRE_RESERVED_LEN]) { return (reserved[7] & 0x01) != 0; }
void wire_reserved_set_fast(uint8_t reserved[WIRE_RESERVED_LEN]) { reserved[7] |= 0x04; }
void wire_reserved_set_extended(uint8_t reserved[WIRE_RESERVED_LEN]) { reserved[5] |= 0x10; }
void wire_reserved_set_dht(uint8_t reserved[WIRE_RESERVED_LEN]) { reserved[7] |= 0x01; }

/* ---- names and errors ---- */

const char *wire_msg_name(wire_msg_type type)
{
    switch (type) {
    case WIRE_CHOKE: return "choke";
    case WIRE_UNCHOKE: return "unchoke";
    case WIRE_INTERESTED: return "interested";
    case WIRE_NOT_INTERESTED: return "not_interested";
    case WIRE_HAVE: return "have";
    case WIRE_BITFIELD: return "bitfield";
    case WIRE_REQUEST: return "request";
    case WIRE_PIECE: return "piece";
    case WIRE_CANCEL: return "cancel";
    case WIRE_PORT: return "port";
    case WIRE_SUGGEST: return "suggest";
    case WIRE_HAVE_ALL: return "have_all";
    case WIRE_HAVE_NONE: return "have_none";
    case WIRE_REJECT: return "reject";
    case WIRE_ALLOWED_FAST: return "allowed_fast";
    case WIRE_EXTENDED: return "extended";
    case WIRE_KEEPALIVE: return "keepalive";
    case WIRE_HANDSHAKE: return "handshake";
    case WIRE_UNKNOWN: return "unknown";
    }
    return "?";
}

const char *wire_strerror(wire_err code)
{
    switch (code) {
    case WIRE_ERR_NONE: return "no error";
    case WIRE_ERR_PSTRLEN: return "handshake protocol string length is not 19";
    case WIRE_ERR_PSTR: return "handshake protocol string is not \"BitTorrent protocol\"";
    case WIRE_ERR_TOO_LONG: return "message length above the limit";
    case WIRE_ERR_BAD_LENGTH: return "message length wrong for its id";
    case WIRE_ERR_BITFIELD_LENGTH: return "bitfield length does not match the piece count";
    case WIRE_ERR_BITFIELD_SPARE: return "bitfield has spare bits set after the last piece";
    case WIRE_ERR_PIECE_INDEX: return "piece index out of range";
    case WIRE_ERR_UNKNOWN_ID: return "unknown message id";
    case WIRE_ERR_NOMEM: return "out of memory for a message payload";
    case WIRE_ERR_TRUNCATED: return "stream ended inside a message";
    }
    return "unknown error code";
}

/* Per id: its exact length prefix if fixed, ID_VAR if variable, 0 if unknown. A table: this is on the hot path. */
#define ID_VAR 0x40
static const uint8_t ID_LEN[256] = {
    [WIRE_CHOKE] = 1, [WIRE_UNCHOKE] = 1, [WIRE_INTERESTED] = 1, [WIRE_NOT_INTERESTED] = 1,
    [WIRE_HAVE_ALL] = 1, [WIRE_HAVE_NONE] = 1,
    [WIRE_HAVE] = 5, [WIRE_SUGGEST] = 5, [WIRE_ALLOWED_FAST] = 5,
    [WIRE_REQUEST] = 13, [WIRE_CANCEL] = 13, [WIRE_REJECT] = 13,
    [WIRE_PORT] = 3,
    [WIRE_BITFIELD] = ID_VAR, [WIRE_PIECE] = ID_VAR, [WIRE_EXTENDED] = ID_VAR,
};

/* The exact length prefix of a fixed-size message id, 0 for variable-size ids, -1 for unknown ids. */
static int fixed_len(uint8_t id)
{
    uint8_t v = ID_LEN[id];
    return v == 0 ? -1 : v == ID_VAR ? 0 : v;
}

/* What the error is about: "handshake", a message name, or "message" when the id is not known (yet). */
static const char *err_subject(const wire_error *e)
{
    if (e->code == WIRE_ERR_PSTRLEN || e->code == WIRE_ERR_PSTR)
        return "handshake";
    if (e->msg_id >= 0 && e->msg_id <= 255 && fixed_len((uint8_t)e->msg_id) >= 0)
        return wire_msg_name((wire_msg_type)e->msg_id);
    return "message";
}

int wire_error_format(const wire_error *e, char *buf, size_t n)
{
    const char *what = wire_strerror(e->code), *subject = err_subject(e);
    unsigned long long mo = (unsigned long long)e->msg_offset, fo = (unsigned long long)e->offset;
    unsigned long long v = (unsigned long long)e->value;
    switch (e->code) {
    case WIRE_ERR_NONE:
        break;
    case WIRE_ERR_PSTRLEN:
    case WIRE_ERR_PSTR:
        return snprintf(buf, n, "%s: byte 0x%02llx at offset %llu", what, v, fo);
    case WIRE_ERR_TOO_LONG:
    case WIRE_ERR_BAD_LENGTH:
    case WIRE_ERR_BITFIELD_LENGTH:
        return snprintf(buf, n, "%s at offset %llu: %s (length %llu)", subject, mo, what, v);
    case WIRE_ERR_BITFIELD_SPARE:
        return snprintf(buf, n, "%s at offset %llu: %s (byte 0x%02llx at offset %llu)", subject, mo, what, v, fo);
    case WIRE_ERR_PIECE_INDEX:
        return snprintf(buf, n, "%s at offset %llu: %s (index %llu at offset %llu)", subject, mo, what, v, fo);
    case WIRE_ERR_UNKNOWN_ID:
        return snprintf(buf, n, "message at offset %llu: %s %llu (at offset %llu)", mo, what, v, fo);
    case WIRE_ERR_NOMEM:
        return snprintf(buf, n, "%s at offset %llu: %s (%llu bytes)", subject, mo, what, v);
    case WIRE_ERR_TRUNCATED:
        return snprintf(buf, n, "%s at offset %llu (%llu bytes of it received)", what, mo, v);
    }
    return snprintf(buf, n, "%s", what);
}

/* ---- decoder ---- */

/* Largest prefix acceptable before the id is known (kept in the decoder: it is needed for every message). */
static void update_prefix_limit(wire_decoder *d)
{
    uint32_t lim = d->lim.max_msg_len;
    if (d->lim.piece_count) {
        uint32_t bf = wire_bitfield_len(d->lim.piece_count);
        if (bf + 1 > lim) /* bf <= 2^29, no overflow */
            lim = bf + 1;
    }
    d->prefix_lim = lim;
}

void wire_decoder_init(wire_decoder *d, const wire_limits *limits)
{
    memset(d, 0, sizeof *d);
    if (limits)
        d->lim = *limits;
    if (d->lim.max_msg_len == 0)
        d->lim.max_msg_len = WIRE_DEFAULT_MAX_MSG_LEN;
    d->state = d->lim.skip_handshake ? ST_PREFIX : ST_HANDSHAKE;
    d->err.msg_id = -1;
    update_prefix_limit(d);
}

void wire_decoder_set_piece_count(wire_decoder *d, uint32_t piece_count)
{
    d->lim.piece_count = piece_count;
    update_prefix_limit(d);
}

void wire_decoder_free(wire_decoder *d)
{
    free(d->buf);
    d->buf = NULL;
    d->buf_cap = 0;
}

void wire_decoder_trim(wire_decoder *d)
{
    /* in use only while a message too large for u.small is partly gathered (have > 0: its bytes are in buf) */
    if (d->state == ST_VAR && d->have > 0 && d->msg_len - 1 > sizeof d->u.small)
        return;
    wire_decoder_free(d);
}

size_t wire_decoder_memory(const wire_decoder *d) { return d->buf ? d->buf_cap : 0; }

void wire_decoder_reset(wire_decoder *d)
{
    wire_limits lim = d->lim;
    wire_decoder_free(d);
    wire_decoder_init(d, &lim);
}

const uint8_t *wire_decoder_info_hash(const wire_decoder *d)
{
    if (d->hs_done)
        return d->info_hash;
    /* still in the handshake (or failed in it: then fewer than 20 bytes were taken) */
    if (d->lim.skip_handshake || d->state != ST_HANDSHAKE || d->have < WIRE_HANDSHAKE_INFO_HASH_END)
        return NULL;
    return d->u.hs + 28;
}

const uint8_t *wire_decoder_reserved(const wire_decoder *d)
{
    if (d->hs_done)
        return d->reserved;
    if (d->lim.skip_handshake || d->state != ST_HANDSHAKE || d->have < WIRE_HANDSHAKE_RESERVED_END)
        return NULL;
    return d->u.hs + 1 + WIRE_PSTRLEN;
}

uint64_t wire_decoder_offset(const wire_decoder *d) { return d->offset; }

bool wire_decoder_at_boundary(const wire_decoder *d)
{
    if (d->state == ST_HANDSHAKE || d->state == ST_PREFIX)
        return d->have == 0;
    return false; /* inside a message, or failed */
}

const wire_error *wire_decoder_error(const wire_decoder *d) { return &d->err; }

uint32_t wire_bitfield_len(uint32_t piece_count) { return piece_count / 8 + (piece_count % 8 != 0); }

bool wire_bitfield_spare_clear(const uint8_t *bits, uint32_t piece_count)
{
    uint32_t spare = (8 - piece_count % 8) % 8;
    if (spare == 0)
        return true;
    return (bits[wire_bitfield_len(piece_count) - 1] & ((1u << spare) - 1)) == 0;
}

static wire_status fail(wire_decoder *d, wire_err code, uint64_t at, uint64_t value)
{
    d->err.code = code;
    d->err.msg_offset = d->msg_start;
    d->err.offset = at;
    d->err.value = value;
    d->state = ST_FAILED;
    return WIRE_ERROR;
}

/* The input of one wire_feed call; stream offsets are base + (p - start). */
typedef struct cursor {
    const uint8_t *p, *end, *start;
    uint64_t base;
} cursor;

static inline uint64_t cur_off(const cursor *c) { return c->base + (uint64_t)(c->p - c->start); }

/* Gathers `want` bytes of the current unit. Returns a pointer to them (into the input when they are all there and
 * nothing was gathered before: zero copy), into store otherwise, or NULL when the input ran out first. */
static const uint8_t *gather(wire_decoder *d, uint8_t *store, uint32_t want, cursor *c)
{
    size_t avail = (size_t)(c->end - c->p);
    assert(d->have < want);
    if (d->have == 0 && avail >= want) {
        const uint8_t *r = c->p;
        c->p += want;
        return r;
    }
    size_t take = want - d->have;
    if (take > avail)
        take = avail;
    if (take == 0)
        return NULL; /* (store may still be NULL here) */
    memcpy(store + d->have, c->p, take);
    c->p += take;
    d->have += (uint32_t)take;
    if (d->have < want)
        return NULL;
    d->have = 0;
    return store;
}

static wire_status step_handshake(wire_decoder *d, cursor *c, wire_msg *msg)
{
    static const uint8_t head[20] = "\x13" WIRE_PSTR;
    /* The 20 bytes of pstrlen + pstr are checked one by one so the first wrong byte is reported where it is. */
    while (d->have < sizeof head && c->p < c->end) {
        uint8_t b = *c->p;
        uint32_t i = d->have;
        c->p++;
        if (b != head[i])
            return fail(d, i == 0 ? WIRE_ERR_PSTRLEN : WIRE_ERR_PSTR, i, b);
        d->u.hs[i] = b;
        d->have++;
    }
    assert(d->have <= WIRE_HANDSHAKE_LEN);
    size_t take = WIRE_HANDSHAKE_LEN - d->have, avail = (size_t)(c->end - c->p);
    if (take > avail)
        take = avail;
    if (take) { /* (c->p may be NULL for an empty input) */
        memcpy(d->u.hs + d->have, c->p, take);
        c->p += take;
        d->have += (uint32_t)take;
    }
    if (d->have < WIRE_HANDSHAKE_LEN)
        return WIRE_NEED_MORE;
    msg->type = WIRE_HANDSHAKE;
    memcpy(msg->u.handshake.reserved, d->u.hs + 20, 8);
    memcpy(msg->u.handshake.info_hash, d->u.hs + 28, 20);
    memcpy(msg->u.handshake.peer_id, d->u.hs + 48, 20);
    memcpy(d->info_hash, d->u.hs + 28, 20);
    memcpy(d->reserved, d->u.hs + 20, WIRE_RESERVED_LEN);
    d->hs_done = true;
    d->have = 0;
    d->state = ST_PREFIX;
    return WIRE_READY;
}

static wire_status check_index(wire_decoder *d, uint32_t index, uint64_t at)
{
    if (d->lim.piece_count && index >= d->lim.piece_count)
        return fail(d, WIRE_ERR_PIECE_INDEX, at, index);
    d->err.msg_id = -1;
    return WIRE_READY;
}

/* Validates and yields a variable-size message whose payload is pl[0..n). */
static wire_status finish_var(wire_decoder *d, const uint8_t *pl, uint32_t n, wire_msg *msg)
{
    uint64_t pay = d->msg_start + 5;
    switch (d->msg_id) {
    case WIRE_BITFIELD:
        if (d->lim.piece_count && !wire_bitfield_spare_clear(pl, d->lim.piece_count))
            return fail(d, WIRE_ERR_BITFIELD_SPARE, pay + n - 1, pl[n - 1]);
        msg->type = WIRE_BITFIELD;
        msg->u.bitfield.bits = pl;
        msg->u.bitfield.len = n;
        break;
    case WIRE_PIECE:
        assert(n >= 8); /* checked at the id */
        msg->type = WIRE_PIECE;
        msg->u.piece.index = get32(pl);
        msg->u.piece.begin = get32(pl + 4);
        msg->u.piece.data = pl + 8;
        msg->u.piece.len = n - 8;
        return check_index(d, msg->u.piece.index, pay);
    case WIRE_EXTENDED:
        assert(n >= 1); /* checked at the id */
        msg->type = WIRE_EXTENDED;
        msg->u.ext.id = pl[0];
        msg->u.ext.payload = pl + 1;
        msg->u.ext.len = n - 1;
        break;
    default:
        msg->type = WIRE_UNKNOWN;
        msg->u.ext.id = d->msg_id;
        msg->u.ext.payload = pl;
        msg->u.ext.len = n;
        break;
    }
    d->err.msg_id = -1;
    return WIRE_READY;
}

static wire_status finish_fixed(wire_decoder *d, const uint8_t *pl, wire_msg *msg)
{
    uint64_t pay = d->msg_start + 5;
    msg->type = (wire_msg_type)d->msg_id;
    switch (d->msg_id) {
    case WIRE_HAVE: case WIRE_SUGGEST: case WIRE_ALLOWED_FAST:
        msg->u.index = get32(pl);
        return check_index(d, msg->u.index, pay);
    case WIRE_REQUEST: case WIRE_CANCEL: case WIRE_REJECT:
        msg->u.block.index = get32(pl);
        msg->u.block.begin = get32(pl + 4);
        msg->u.block.length = get32(pl + 8);
        return check_index(d, msg->u.block.index, pay);
    default: /* WIRE_PORT, the only other fixed size with a payload */
        assert(d->msg_id == WIRE_PORT);
        msg->u.port = (uint16_t)(pl[0] << 8 | pl[1]);
        d->err.msg_id = -1;
        return WIRE_READY;
    }
}

static wire_status step_fixed(wire_decoder *d, cursor *c, wire_msg *msg)
{
    const uint8_t *pl = gather(d, d->hdr + 5, d->msg_len - 1, c);
    if (!pl)
        return WIRE_NEED_MORE;
    d->state = ST_PREFIX;
    return finish_fixed(d, pl, msg);
}

static wire_status step_var(wire_decoder *d, cursor *c, wire_msg *msg)
{
    uint32_t n = d->msg_len - 1;
    if (n <= sizeof d->u.small) {
        const uint8_t *pl = gather(d, d->u.small, n, c);
        if (!pl)
            return WIRE_NEED_MORE;
        d->state = ST_PREFIX;
        return finish_var(d, pl, n, msg);
    }
    size_t avail = (size_t)(c->end - c->p);
    if (avail > 0 && (d->have > 0 || avail < n)) {
        /* the payload spans chunks: gather it in our buffer (n <= the limit, checked at the prefix and id), grown to
         * hold what arrived, at least doubling (so a message costs O(log n) reallocations), at most n */
        uint32_t need = d->have + (uint32_t)(avail < n - d->have ? avail : n - d->have);
        if (need > d->buf_cap) {
            uint64_t grown = 2 * (uint64_t)d->buf_cap;
            uint32_t cap = grown < need ? need : grown > n ? n : (uint32_t)grown;
            assert(cap >= need && cap <= n);
            uint8_t *nb = realloc(d->buf, cap);
            if (!nb)
                return fail(d, WIRE_ERR_NOMEM, d->msg_start, n);
            d->buf = nb;
            d->buf_cap = cap;
        }
    }
    const uint8_t *pl = gather(d, d->buf, n, c);
    if (!pl)
        return WIRE_NEED_MORE;
    d->state = ST_PREFIX;
    return finish_var(d, pl, n, msg);
}

/* Called with the id byte read: checks the length against the id, then yields a payload-less message or picks the
 * payload state (returning WIRE_NEED_MORE to mean "go on"). */
static wire_status on_id(wire_decoder *d, wire_msg *msg)
{
    uint8_t id = d->msg_id;
    uint32_t len = d->msg_len;
    int fixed = fixed_len(id);
    d->err.msg_id = id;
    if (fixed < 0 && !d->lim.allow_unknown)
        return fail(d, WIRE_ERR_UNKNOWN_ID, d->msg_start + 4, id);
    if (fixed > 0) {
        if (len != (uint32_t)fixed)
            return fail(d, WIRE_ERR_BAD_LENGTH, d->msg_start, len);
        if (len == 1) {
            d->state = ST_PREFIX;
            d->err.msg_id = -1;
            msg->type = (wire_msg_type)id;
            return WIRE_READY;
        }
        d->state = ST_FIXED;
        return WIRE_NEED_MORE;
    }
    /* variable size */
    if (id == WIRE_BITFIELD && d->lim.piece_count) {
        if (len - 1 != wire_bitfield_len(d->lim.piece_count))
            return fail(d, WIRE_ERR_BITFIELD_LENGTH, d->msg_start, len);
    } else if (len > d->lim.max_msg_len) {
        /* the prefix passed the larger bitfield limit but this is not a bitfield */
        return fail(d, WIRE_ERR_TOO_LONG, d->msg_start, len);
    }
    if ((id == WIRE_PIECE && len < 9) || (id == WIRE_EXTENDED && len < 2))
        return fail(d, WIRE_ERR_BAD_LENGTH, d->msg_start, len);
    if (len == 1) { /* empty bitfield (unknown piece count) or unknown id without payload */
        d->state = ST_PREFIX;
        return finish_var(d, d->hdr, 0, msg);
    }
    d->state = ST_VAR;
    return WIRE_NEED_MORE;
}

/* A whole message, prefix (already checked against the prefix limit) to last byte, lies in the input: the
 * byte-wise path's checks in the same order, without gathering. */
static wire_status decode_complete(wire_decoder *d, cursor *c, uint32_t len, wire_msg *msg)
{
    assert(len >= 1 && (size_t)(c->end - c->p) - 4 >= len);
    d->msg_len = len;
    d->msg_id = c->p[4];
    c->p += 5;
    wire_status st = on_id(d, msg);
    if (st != WIRE_NEED_MORE)
        return st;
    const uint8_t *pl = c->p;
    c->p += len - 1;
    bool fixed = d->state == ST_FIXED;
    d->state = ST_PREFIX;
    return fixed ? finish_fixed(d, pl, msg) : finish_var(d, pl, len - 1, msg);
}

/* The hot path: a VALID message of a known id, p[0..len) = id + payload all in the input, len in 1..prefix limit.
 * Works on locals and writes nothing but *msg. Returns false for anything else (any invalid or unknown message),
 * which then takes the general path and its exact error reporting. The fuzz target checks that both paths agree:
 * whole-input decoding takes this one, byte-wise decoding the other. */
static bool decode_fast(const wire_decoder *d, const uint8_t *p, uint32_t len, wire_msg *msg)
{
    uint8_t id = p[0];
    uint8_t want = ID_LEN[id];
    uint32_t pieces = d->lim.piece_count, index;
    wire_msg m;
    if (want != ID_VAR) {
        if (want != len) /* also rejects unknown ids (want 0, len >= 1) */
            return false;
        m.type = (wire_msg_type)id;
        switch (len) {
        case 1:
            break;
        case 3:
            m.u.port = (uint16_t)(p[1] << 8 | p[2]);
            break;
        case 5:
            index = get32(p + 1);
            if (pieces && index >= pieces)
                return false;
            m.u.index = index;
            break;
        default:
            assert(len == 13);
            index = get32(p + 1);
            if (pieces && index >= pieces)
                return false;
            m.u.block.index = index;
            m.u.block.begin = get32(p + 5);
            m.u.block.length = get32(p + 9);
            break;
        }
        *msg = m;
        return true;
    }
    uint32_t n = len - 1;
    if (id == WIRE_BITFIELD) {
        if (pieces ? n != wire_bitfield_len(pieces) || !wire_bitfield_spare_clear(p + 1, pieces)
                   : len > d->lim.max_msg_len)
            return false;
        m.type = WIRE_BITFIELD;
        m.u.bitfield.bits = p + 1;
        m.u.bitfield.len = n;
    } else if (len > d->lim.max_msg_len) {
        return false;
    } else if (id == WIRE_PIECE) {
        if (n < 8)
            return false;
        index = get32(p + 1);
        if (pieces && index >= pieces)
            return false;
        m.type = WIRE_PIECE;
        m.u.piece.index = index;
        m.u.piece.begin = get32(p + 5);
        m.u.piece.data = p + 9;
        m.u.piece.len = n - 8;
    } else {
        assert(id == WIRE_EXTENDED);
        if (n < 1)
            return false;
        m.type = WIRE_EXTENDED;
        m.u.ext.id = p[1];
        m.u.ext.payload = p + 2;
        m.u.ext.len = n - 1;
    }
    *msg = m;
    return true;
}

/* Advances through the states until a message is complete, the input is exhausted (WIRE_NEED_MORE) or an error. */
static wire_status decode(wire_decoder *d, cursor *c, wire_msg *msg)
{
    switch (d->state) {
    case ST_HANDSHAKE:
        return step_handshake(d, c, msg);
    case ST_PREFIX: {
        if (d->have == 0) {
            d->msg_start = cur_off(c);
            if (c->end - c->p > 4) {
                uint32_t len = get32(c->p);
                if (len != 0 && len <= d->prefix_lim && (size_t)(c->end - c->p) - 4 >= len)
                    return decode_complete(d, c, len, msg);
            }
        }
        const uint8_t *h = gather(d, d->hdr, 4, c);
        if (!h)
            return WIRE_NEED_MORE;
        d->msg_len = get32(h);
        if (d->msg_len == 0) {
            msg->type = WIRE_KEEPALIVE;
            return WIRE_READY;
        }
        if (d->msg_len > d->prefix_lim)
            return fail(d, WIRE_ERR_TOO_LONG, d->msg_start, d->msg_len);
        d->state = ST_ID;
    }
        /* fallthrough */
    case ST_ID: {
        if (c->p == c->end)
            return WIRE_NEED_MORE;
        d->msg_id = *c->p++;
        wire_status st = on_id(d, msg);
        if (st != WIRE_NEED_MORE)
            return st;
        return d->state == ST_FIXED ? step_fixed(d, c, msg) : step_var(d, c, msg);
    }
    case ST_FIXED:
        return step_fixed(d, c, msg);
    case ST_VAR:
        return step_var(d, c, msg);
    default:
        return WIRE_ERROR;
    }
}

wire_status wire_feed(wire_decoder *d, const uint8_t *buf, size_t len, size_t *consumed, wire_msg *msg)
{
    uint8_t state = d->state;
    if (state == ST_PREFIX && len >= 4 && d->have == 0) {
        /* hot path: a keep-alive or a valid message whole in the input */
        uint32_t n = get32(buf);
        if (n == 0 || (n <= d->prefix_lim && len - 4 >= n && decode_fast(d, buf + 4, n, msg))) {
            if (n == 0)
                msg->type = WIRE_KEEPALIVE;
            uint64_t off = d->offset;
            d->msg_start = off;
            d->offset = off + 4 + n;
            *consumed = 4 + (size_t)n;
            return WIRE_READY;
        }
    }
    if (state == ST_FAILED) {
        *consumed = 0;
        return WIRE_ERROR;
    }
    cursor c = {buf, buf + len, buf, d->offset};
    wire_status st = decode(d, &c, msg);
    /* every path returns WIRE_NEED_MORE only once the input is exhausted */
    assert(c.p >= buf && c.p <= buf + len && (st != WIRE_NEED_MORE || c.p == buf + len));
    *consumed = (size_t)(c.p - buf);
    d->offset += *consumed;
    return st;
}

bool wire_finish(wire_decoder *d)
{
    if (d->state == ST_FAILED)
        return false;
    if (wire_decoder_at_boundary(d))
        return true;
    uint64_t got = d->offset - d->msg_start;
    if (d->state == ST_HANDSHAKE)
        d->msg_start = 0;
    fail(d, WIRE_ERR_TRUNCATED, d->offset, got);
    return false;
}

/* ---- encoder ---- */

size_t wire_encode_handshake(uint8_t buf[WIRE_HANDSHAKE_LEN], const uint8_t reserved[WIRE_RESERVED_LEN],
                             const uint8_t info_hash[20], const uint8_t peer_id[20])
{
    buf[0] = WIRE_PSTRLEN;
    memcpy(buf + 1, WIRE_PSTR, WIRE_PSTRLEN);
    memcpy(buf + 20, reserved, 8);
    memcpy(buf + 28, info_hash, 20);
    memcpy(buf + 48, peer_id, 20);
    return WIRE_HANDSHAKE_LEN;
}

size_t wire_encode_keepalive(uint8_t buf[WIRE_KEEPALIVE_LEN])
{
    put32(buf, 0);
    return WIRE_KEEPALIVE_LEN;
}

size_t wire_encode_simple(uint8_t buf[WIRE_SIMPLE_LEN], wire_msg_type type)
{
    if ((unsigned)type > 255 || fixed_len((uint8_t)type) != 1)
        return 0;
    put32(buf, 1);
    buf[4] = (uint8_t)type;
    return WIRE_SIMPLE_LEN;
}

size_t wire_encode_index(uint8_t buf[WIRE_INDEX_MSG_LEN], wire_msg_type type, uint32_t index)
{
    if (type != WIRE_HAVE && type != WIRE_SUGGEST && type != WIRE_ALLOWED_FAST)
        return 0;
    put32(buf, 5);
    buf[4] = (uint8_t)type;
    put32(buf + 5, index);
    return WIRE_INDEX_MSG_LEN;
}

size_t wire_encode_block(uint8_t buf[WIRE_BLOCK_MSG_LEN], wire_msg_type type, uint32_t index, uint32_t begin,
                         uint32_t length)
{
    if (type != WIRE_REQUEST && type != WIRE_CANCEL && type != WIRE_REJECT)
        return 0;
    put32(buf, 13);
    buf[4] = (uint8_t)type;
    put32(buf + 5, index);
    put32(buf + 9, begin);
    put32(buf + 13, length);
    return WIRE_BLOCK_MSG_LEN;
}

size_t wire_encode_port(uint8_t buf[WIRE_PORT_LEN], uint16_t port)
{
    put32(buf, 3);
    buf[4] = WIRE_PORT;
    buf[5] = (uint8_t)(port >> 8);
    buf[6] = (uint8_t)port;
    return WIRE_PORT_LEN;
}

size_t wire_encode_piece_header(uint8_t buf[WIRE_PIECE_HEADER_LEN], uint32_t index, uint32_t begin,
                                uint32_t block_len)
{
    if (block_len > UINT32_MAX - 9)
        return 0;
    put32(buf, block_len + 9);
    buf[4] = WIRE_PIECE;
    put32(buf + 5, index);
    put32(buf + 9, begin);
    return WIRE_PIECE_HEADER_LEN;
}

size_t wire_encode_bitfield_header(uint8_t buf[WIRE_BITFIELD_HEADER_LEN], uint32_t nbytes)
{
    if (nbytes > UINT32_MAX - 1)
        return 0;
    put32(buf, nbytes + 1);
    buf[4] = WIRE_BITFIELD;
    return WIRE_BITFIELD_HEADER_LEN;
}

size_t wire_encode_extended_header(uint8_t buf[WIRE_EXTENDED_HEADER_LEN], uint8_t ext_id, uint32_t payload_len)
{
    if (payload_len > UINT32_MAX - 2)
        return 0;
    put32(buf, payload_len + 2);
    buf[4] = WIRE_EXTENDED;
    buf[5] = ext_id;
    return WIRE_EXTENDED_HEADER_LEN;
}

size_t wire_encoded_len(const wire_msg *m)
{
    switch (m->type) {
    case WIRE_HANDSHAKE: return WIRE_HANDSHAKE_LEN;
    case WIRE_KEEPALIVE: return WIRE_KEEPALIVE_LEN;
    case WIRE_CHOKE: case WIRE_UNCHOKE: case WIRE_INTERESTED: case WIRE_NOT_INTERESTED:
    case WIRE_HAVE_ALL: case WIRE_HAVE_NONE:
        return WIRE_SIMPLE_LEN;
    case WIRE_HAVE: case WIRE_SUGGEST: case WIRE_ALLOWED_FAST: return WIRE_INDEX_MSG_LEN;
    case WIRE_REQUEST: case WIRE_CANCEL: case WIRE_REJECT: return WIRE_BLOCK_MSG_LEN;
    case WIRE_PORT: return WIRE_PORT_LEN;
    case WIRE_PIECE:
        return m->u.piece.len > UINT32_MAX - 9 ? 0 : (size_t)WIRE_PIECE_HEADER_LEN + m->u.piece.len;
    case WIRE_BITFIELD:
        return m->u.bitfield.len > UINT32_MAX - 1 ? 0 : (size_t)WIRE_BITFIELD_HEADER_LEN + m->u.bitfield.len;
    case WIRE_EXTENDED:
        return m->u.ext.len > UINT32_MAX - 2 ? 0 : (size_t)WIRE_EXTENDED_HEADER_LEN + m->u.ext.len;
    case WIRE_UNKNOWN:
        if (fixed_len(m->u.ext.id) >= 0 || m->u.ext.len > UINT32_MAX - 1)
            return 0; /* a known id is not "unknown" */
        return (size_t)5 + m->u.ext.len;
    }
    return 0;
}

/* Copies the payload data[0..n) after a header of hdr bytes just written; returns the message's length, need. */
static size_t put_payload(uint8_t *buf, size_t hdr, const uint8_t *data, uint32_t n, size_t need)
{
    assert(hdr > 0 && hdr + n == need); /* wire_encoded_len checked the lengths */
    if (n)
        memcpy(buf + hdr, data, n);
    return need;
}

size_t wire_encode_msg(uint8_t *buf, size_t cap, const wire_msg *m)
{
    size_t need = wire_encoded_len(m);
    if (need == 0 || cap < need)
        return 0;
    switch (m->type) {
    case WIRE_HANDSHAKE:
        return wire_encode_handshake(buf, m->u.handshake.reserved, m->u.handshake.info_hash, m->u.handshake.peer_id);
    case WIRE_KEEPALIVE:
        return wire_encode_keepalive(buf);
    case WIRE_CHOKE: case WIRE_UNCHOKE: case WIRE_INTERESTED: case WIRE_NOT_INTERESTED:
    case WIRE_HAVE_ALL: case WIRE_HAVE_NONE:
        return wire_encode_simple(buf, m->type);
    case WIRE_HAVE: case WIRE_SUGGEST: case WIRE_ALLOWED_FAST:
        return wire_encode_index(buf, m->type, m->u.index);
    case WIRE_REQUEST: case WIRE_CANCEL: case WIRE_REJECT:
        return wire_encode_block(buf, m->type, m->u.block.index, m->u.block.begin, m->u.block.length);
    case WIRE_PORT:
        return wire_encode_port(buf, m->u.port);
    case WIRE_PIECE:
        return put_payload(buf, wire_encode_piece_header(buf, m->u.piece.index, m->u.piece.begin, m->u.piece.len),
                           m->u.piece.data, m->u.piece.len, need);
    case WIRE_BITFIELD:
        return put_payload(buf, wire_encode_bitfield_header(buf, m->u.bitfield.len), m->u.bitfield.bits,
                           m->u.bitfield.len, need);
    case WIRE_EXTENDED:
        return put_payload(buf, wire_encode_extended_header(buf, m->u.ext.id, m->u.ext.len), m->u.ext.payload,
                           m->u.ext.len, need);
    case WIRE_UNKNOWN:
        put32(buf, m->u.ext.len + 1);
        buf[4] = m->u.ext.id;
        return put_payload(buf, 5, m->u.ext.payload, m->u.ext.len, need);
    }
    return 0;
}
