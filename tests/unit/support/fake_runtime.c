/* fake_runtime: owns the recording seeder runtime table (hk_seeder_runtime) used by unit tests and the seeder fuzz target (see fake_runtime.h). */
#include "fake_runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(p, n * elem);
    if (!q)
        abort();
    *cap = n;
    return q;
}

static size_t put_data(fake_runtime *fr, const void *src, size_t len)
{
    fr->data = grow(fr->data, &fr->capdata, fr->ndata + len + 1, 1);
    size_t off = fr->ndata;
    if (len && src)
        memcpy(fr->data + off, src, len);
    else if (len)
        memset(fr->data + off, 0, len);
    fr->ndata += len;
    return off;
}

static fr_action *new_action(fake_runtime *fr, fr_kind kind)
{
    fr->actions = grow(fr->actions, &fr->capactions, fr->nactions + 1, sizeof *fr->actions);
    fr_action *a = &fr->actions[fr->nactions++];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->at = fr->now;
    a->conn = -1;
    return a;
}

hk_conn *fr_conn(fake_runtime *fr, int n)
{
    return (hk_conn *)(void *)&fr->conns[n];
}

int fr_conn_index(const fake_runtime *fr, const hk_conn *c)
{
    const uint8_t *p = (const uint8_t *)(const void *)c;
    if (p < fr->conns || p >= fr->conns + FR_MAX_CONNS)
        return -1;
    return (int)(p - fr->conns);
}

/* ---- the runtime actions ---- */

static hk_time a_now(void *ctx)
{
    return ((fake_runtime *)ctx)->now;
}

static void a_wake_at(void *ctx, hk_time when)
{
    fake_runtime *fr = ctx;
    fr->wake = when;
    new_action(fr, FR_WAKE_AT)->when = when;
}

static void a_random(void *ctx, void *buf, size_t n)
{
    fake_runtime *fr = ctx;
    uint8_t *b = buf;
    for (size_t i = 0; i < n; i++) {
        fr->rng ^= fr->rng << 13;
        fr->rng ^= fr->rng >> 7;
        fr->rng ^= fr->rng << 17;
        b[i] = (uint8_t)(fr->rng >> 24);
    }
}

static uint8_t extent_byte(const fake_runtime *fr, const hk_extent *e, uint64_t o)
{
    if (e->file == HK_FILE_METAINFO)
        return fr->metainfo && e->storage == fr->metainfo_storage && o < fr->metainfo_len ? fr->metainfo[o] : 0xEE;
    return fr_pattern_byte(e->storage, e->file, o);
}

/* A send on a connection with a cipher: every segment becomes encrypted bytes. */
static void send_encrypted(fake_runtime *fr, fr_action *a, hk_cipher *c, const hk_segment *segs, size_t nsegs)
{
    for (size_t i = 0; i < nsegs; i++) {
        fr_seg *s = &fr->segs[fr->nsegs++];
        memset(s, 0, sizeof *s);
        s->kind = HK_SEG_BYTES;
        if (segs[i].kind == HK_SEG_BYTES) {
            s->len = segs[i].u.bytes.len;
            s->off = put_data(fr, segs[i].u.bytes.ptr, s->len);
        } else {
            s->len = segs[i].u.extent.length;
            s->off = put_data(fr, NULL, s->len);
            for (uint32_t b = 0; b < s->len; b++)
                fr->data[s->off + b] = extent_byte(fr, &segs[i].u.extent, segs[i].u.extent.offset + b);
        }
        hk_cipher_apply(c, fr->data + s->off, fr->data + s->off, s->len);
        a->bytes += s->len;
    }
    fr->sends++;
}

static void a_set_cipher(void *ctx, hk_conn *conn, hk_cipher *cipher)
{
    fake_runtime *fr = ctx;
    int n = fr_conn_index(fr, conn);
    fr->set_cipher_calls++;
    if (n >= 0)
        fr->cipher[n] = cipher;
}

void fr_enable_cipher(hk_seeder_runtime *rt)
{
    rt->set_cipher = a_set_cipher;
}

static void a_verify(void *ctx, const hk_verify_req *req, uint64_t token)
{
    fr_action *a = new_action(ctx, FR_VERIFY);
    a->ext = req->hash;
    a->token = token;
    a->piece = req->piece;
    a->nexts = req->nexts;
    a->v2_hash = req->v2_hash;
    a->v2_length = req->v2_length;
    a->v2_leaves = req->v2_leaves;
    for (uint32_t k = 0; k < req->nexts; k++)
        a->vbytes += req->exts[k].length;
}

void fr_enable_verify(hk_seeder_runtime *rt)
{
    rt->disk_verify = a_verify;
}

void fr_forget_cipher(fake_runtime *fr, int conn)
{
    if (conn >= 0 && conn < FR_MAX_CONNS)
        fr->cipher[conn] = NULL;
}

static void a_send(void *ctx, hk_conn *conn, const hk_segment *segs, size_t nsegs)
{
    fake_runtime *fr = ctx;
    fr_action *a = new_action(fr, FR_SEND);
    a->conn = fr_conn_index(fr, conn);
    a->first_seg = fr->nsegs;
    a->nsegs = nsegs;
    fr->segs = grow(fr->segs, &fr->capsegs, fr->nsegs + nsegs, sizeof *fr->segs);
    if (a->conn >= 0 && fr->cipher[a->conn]) {
        send_encrypted(fr, a, fr->cipher[a->conn], segs, nsegs);
        return;
    }
    size_t extents = 0;
    for (size_t i = 0; i < nsegs; i++) {
        fr_seg *s = &fr->segs[fr->nsegs++];
        memset(s, 0, sizeof *s);
        s->kind = segs[i].kind;
        if (segs[i].kind == HK_SEG_BYTES) {
            s->len = segs[i].u.bytes.len;
            /* put_data may move fr->data; a was taken from fr->actions, which it does not move */
            s->off = put_data(fr, segs[i].u.bytes.ptr, segs[i].u.bytes.len);
        } else {
            s->ext = segs[i].u.extent;
            s->len = segs[i].u.extent.length;
            extents++;
        }
        a->bytes += s->len;
    }
    fr->sends++;
    if (extents > 1)
        fr->send_calls_with_many_blocks++;
}

static void a_close(void *ctx, hk_conn *conn)
{
    fake_runtime *fr = ctx;
    new_action(fr, FR_CLOSE)->conn = fr_conn_index(fr, conn);
    fr_forget_cipher(fr, fr_conn_index(fr, conn));
}

static void a_prefetch(void *ctx, const hk_extent *ext)
{
    new_action(ctx, FR_PREFETCH)->ext = *ext;
}

static bool answer_resident(const fake_runtime *fr, const hk_extent *ext)
{
    for (size_t i = fr->nrules; i-- > 0;) {
        const fr_rule *r = &fr->rules[i];
        if (r->storage == ext->storage && r->file == ext->file && ext->offset >= r->offset &&
            ext->offset - r->offset < r->length)
            return r->resident;
    }
    return fr->default_resident;
}

static bool a_resident(void *ctx, const hk_extent *ext)
{
    fake_runtime *fr = ctx;
    bool yes = answer_resident(fr, ext);
    fr_action *a = new_action(fr, FR_RESIDENT);
    a->ext = *ext;
    a->answer = yes;
    return yes;
}

static void a_load(void *ctx, const hk_extent *ext, uint64_t token)
{
    fr_action *a = new_action(ctx, FR_LOAD);
    a->ext = *ext;
    a->token = token;
}

static void a_log(void *ctx, hk_log_level level, const char *line)
{
    fake_runtime *fr = ctx;
    if (fr->echo_logs)
        fprintf(stderr, "[%llu.%09llu] %d %s\n", (unsigned long long)(fr->now / HK_NS_PER_SEC),
                (unsigned long long)(fr->now % HK_NS_PER_SEC), (int)level, line);
    if (!fr->record_logs)
        return;
    size_t len = strlen(line);
    size_t off = put_data(fr, line, len + 1);
    fr_action *a = new_action(fr, FR_LOG);
    a->level = (int)level;
    a->log_off = off;
}

fake_runtime *fr_new(uint64_t seed)
{
    fake_runtime *fr = calloc(1, sizeof *fr);
    if (!fr)
        abort();
    fr->rng = seed ? seed : 0x2545F4914F6CDD1Dull;
    fr->wake = HK_TIME_NEVER;
    fr->default_resident = true;
    fr->record_logs = true;
    fr->now = HK_SECONDS(1000); /* an arbitrary origin, not 0 */
    return fr;
}

void fr_free(fake_runtime *fr)
{
    if (!fr)
        return;
    free(fr->actions);
    free(fr->segs);
    free(fr->data);
    free(fr->rules);
    free(fr);
}

hk_seeder_runtime fr_runtime(fake_runtime *fr)
{
    hk_seeder_runtime rt = {
        .base = { .ctx = fr, .now = a_now, .wake_at = a_wake_at, .random_bytes = a_random, .log = a_log },
        .send = a_send,
        .close = a_close,
        .disk_prefetch = a_prefetch,
        .disk_resident = a_resident,
        .disk_load = a_load,
    };
    return rt;
}

void fr_set_now(fake_runtime *fr, hk_time t)
{
    fr->now = t;
}

int fr_run_until(fake_runtime *fr, hk_seeder *s, hk_time t)
{
    int n = 0;
    while (fr->wake != HK_TIME_NEVER && fr->wake <= t) {
        if (fr->wake > fr->now)
            fr->now = fr->wake;
        fr->wake = HK_TIME_NEVER;
        hk_seeder_on_wake(s);
        n++;
        if (n > 10000000)
            abort(); /* a wake-up loop that never ends is a bug */
    }
    if (t > fr->now)
        fr->now = t;
    return n;
}

void fr_set_default_resident(fake_runtime *fr, bool resident)
{
    fr->default_resident = resident;
}

void fr_set_resident(fake_runtime *fr, uint64_t storage, uint32_t file, uint64_t offset, uint64_t length,
                     bool resident)
{
    fr->rules = grow(fr->rules, &fr->caprules, fr->nrules + 1, sizeof *fr->rules);
    fr->rules[fr->nrules++] = (fr_rule){storage, file, offset, length, resident};
}

void fr_set_metainfo(fake_runtime *fr, uint64_t storage, const uint8_t *bytes, size_t len)
{
    fr->metainfo_storage = storage;
    fr->metainfo = bytes;
    fr->metainfo_len = len;
}

void fr_clear(fake_runtime *fr)
{
    fr->nactions = 0;
    fr->nsegs = 0;
    fr->ndata = 0;
}

size_t fr_count(const fake_runtime *fr, fr_kind kind)
{
    size_t n = 0;
    for (size_t i = 0; i < fr->nactions; i++)
        n += fr->actions[i].kind == kind;
    return n;
}

size_t fr_count_conn(const fake_runtime *fr, fr_kind kind, int conn)
{
    size_t n = 0;
    for (size_t i = 0; i < fr->nactions; i++)
        n += fr->actions[i].kind == kind && fr->actions[i].conn == conn;
    return n;
}

const fr_action *fr_last(const fake_runtime *fr, fr_kind kind)
{
    for (size_t i = fr->nactions; i-- > 0;)
        if (fr->actions[i].kind == kind)
            return &fr->actions[i];
    return NULL;
}

bool fr_closed(const fake_runtime *fr, int conn)
{
    return fr_count_conn(fr, FR_CLOSE, conn) > 0;
}

const char *fr_log_line(const fake_runtime *fr, const fr_action *a)
{
    return (const char *)fr->data + a->log_off;
}

long fr_find_log(const fake_runtime *fr, const char *needle, size_t from)
{
    for (size_t i = from; i < fr->nactions; i++)
        if (fr->actions[i].kind == FR_LOG && strstr(fr_log_line(fr, &fr->actions[i]), needle))
            return (long)i;
    return -1;
}

uint8_t fr_pattern_byte(uint64_t storage, uint32_t file, uint64_t offset)
{
    uint64_t x = storage * 0x9E3779B97F4A7C15ull ^ (uint64_t)file * 0xC2B2AE3D27D4EB4Full ^ offset;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    return (uint8_t)x;
}

uint8_t *fr_stream(const fake_runtime *fr, int conn, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < fr->nactions; i++)
        if (fr->actions[i].kind == FR_SEND && fr->actions[i].conn == conn)
            total += fr->actions[i].bytes;
    uint8_t *out = malloc(total + 1);
    if (!out)
        abort();
    size_t at = 0;
    for (size_t i = 0; i < fr->nactions; i++) {
        const fr_action *a = &fr->actions[i];
        if (a->kind != FR_SEND || a->conn != conn)
            continue;
        for (size_t k = 0; k < a->nsegs; k++) {
            const fr_seg *s = &fr->segs[a->first_seg + k];
            if (s->kind == HK_SEG_BYTES) {
                memcpy(out + at, fr->data + s->off, s->len);
            } else if (s->ext.file == HK_FILE_METAINFO) {
                for (uint32_t b = 0; b < s->len; b++) {
                    uint64_t o = s->ext.offset + b;
                    out[at + b] = fr->metainfo && s->ext.storage == fr->metainfo_storage && o < fr->metainfo_len
                                      ? fr->metainfo[o]
                                      : 0xEE;
                }
            } else {
                for (uint32_t b = 0; b < s->len; b++)
                    out[at + b] = fr_pattern_byte(s->ext.storage, s->ext.file, s->ext.offset + b);
            }
            at += s->len;
        }
    }
    *len = at;
    return out;
}

fr_msgs fr_decode(const fake_runtime *fr, int conn, uint32_t piece_count)
{
    fr_msgs r;
    memset(&r, 0, sizeof r);
    r.stream = fr_stream(fr, conn, &r.len);
    wire_decoder d;
    wire_limits lim = {.max_msg_len = 1u << 20, .piece_count = 0, .allow_unknown = true};
    wire_decoder_init(&d, &lim);
    size_t cap = 0, at = 0;
    bool got_handshake = false;
    while (at < r.len) {
        size_t used = 0;
        wire_msg m;
        wire_status st = wire_feed(&d, r.stream + at, r.len - at, &used, &m);
        at += used;
        if (st == WIRE_ERROR) {
            r.error = true;
            break;
        }
        if (st == WIRE_NEED_MORE)
            break;
        if (!got_handshake && m.type == WIRE_HANDSHAKE) {
            got_handshake = true;
            wire_decoder_set_piece_count(&d, piece_count);
        }
        r.m = grow(r.m, &cap, r.n + 1, sizeof *r.m);
        r.m[r.n++] = m;
    }
    if (!r.error && !wire_decoder_at_boundary(&d))
        r.partial = true;
    wire_decoder_free(&d);
    return r;
}

void fr_msgs_free(fr_msgs *m)
{
    free(m->stream);
    free(m->m);
    memset(m, 0, sizeof *m);
}

size_t fr_msgs_count(const fr_msgs *m, wire_msg_type type)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += m->m[i].type == type;
    return n;
}

static void appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n < 0)
            abort();
        if ((size_t)n < *cap - *len) {
            *len += (size_t)n;
            return;
        }
        *cap = (*cap + (size_t)n + 1) * 2;
        *buf = realloc(*buf, *cap);
        if (!*buf)
            abort();
    }
}

static void append_ext(char **b, size_t *l, size_t *c, const hk_extent *e)
{
    appendf(b, l, c, "s%llu f%lld @%llu +%u", (unsigned long long)e->storage,
            e->file == HK_FILE_METAINFO ? -1LL : (long long)e->file, (unsigned long long)e->offset, e->length);
}

char *fr_action_log(const fake_runtime *fr)
{
    size_t cap = 4096, len = 0;
    char *b = malloc(cap);
    if (!b)
        abort();
    b[0] = 0;
    for (size_t i = 0; i < fr->nactions; i++) {
        const fr_action *a = &fr->actions[i];
        appendf(&b, &len, &cap, "%llu ", (unsigned long long)a->at);
        switch (a->kind) {
        case FR_SEND:
            appendf(&b, &len, &cap, "send c%d %zu segs %llu bytes:", a->conn, a->nsegs,
                    (unsigned long long)a->bytes);
            for (size_t k = 0; k < a->nsegs; k++) {
                const fr_seg *s = &fr->segs[a->first_seg + k];
                if (s->kind == HK_SEG_BYTES) {
                    appendf(&b, &len, &cap, " [");
                    for (uint32_t x = 0; x < s->len && x < 64; x++)
                        appendf(&b, &len, &cap, "%02x", fr->data[s->off + x]);
                    appendf(&b, &len, &cap, "%s]", s->len > 64 ? "..." : "");
                } else {
                    appendf(&b, &len, &cap, " {");
                    append_ext(&b, &len, &cap, &s->ext);
                    appendf(&b, &len, &cap, "}");
                }
            }
            break;
        case FR_CLOSE: appendf(&b, &len, &cap, "close c%d", a->conn); break;
        case FR_WAKE_AT: appendf(&b, &len, &cap, "wake_at %llu", (unsigned long long)a->when); break;
        case FR_PREFETCH:
            appendf(&b, &len, &cap, "prefetch ");
            append_ext(&b, &len, &cap, &a->ext);
            break;
        case FR_RESIDENT:
            appendf(&b, &len, &cap, "resident? ");
            append_ext(&b, &len, &cap, &a->ext);
            appendf(&b, &len, &cap, " -> %d", a->answer);
            break;
        case FR_LOAD:
            appendf(&b, &len, &cap, "load ");
            append_ext(&b, &len, &cap, &a->ext);
            appendf(&b, &len, &cap, " token %llu", (unsigned long long)a->token);
            break;
        case FR_LOG: appendf(&b, &len, &cap, "log %d %s", a->level, fr_log_line(fr, a)); break;
        case FR_VERIFY:
            appendf(&b, &len, &cap, "verify piece %u token %llu (%u extents, %llu bytes)", a->piece,
                    (unsigned long long)a->token, a->nexts, (unsigned long long)a->vbytes);
            break;
        }
        appendf(&b, &len, &cap, "\n");
    }
    return b;
}
