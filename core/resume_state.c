/* resume_state: the resume state file's reader, writer and serving descriptions (see resume_state.h and
 * docs/resume-state.md). Pure: bytes in, bytes out. */
#include "resume_state.h"

#include "crc32c.h"
#include "metainfo_v2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- little-endian helpers ---- */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

/* A bounded cursor over bytes: every read checks the room first; a short read sets bad and returns zeros. */
typedef struct cur {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
} cur;

static const uint8_t *take(cur *c, size_t n)
{
    if (c->bad || c->len - c->pos < n) {
        c->bad = true;
        return NULL;
    }
    const uint8_t *r = c->p + c->pos;
    c->pos += n;
    return r;
}
static uint8_t rd8(cur *c) { const uint8_t *p = take(c, 1); return p ? p[0] : 0; }
static uint16_t rd16(cur *c) { const uint8_t *p = take(c, 2); return p ? get16(p) : 0; }
static uint32_t rd32(cur *c) { const uint8_t *p = take(c, 4); return p ? get32(p) : 0; }
static uint64_t rd64(cur *c) { const uint8_t *p = take(c, 8); return p ? get64(p) : 0; }

/* ---- entries ---- */

size_t hk_rs_parse_entry(const uint8_t *buf, size_t len, hk_rs_entry *e)
{
    cur c = { .p = buf, .len = len };
    uint32_t elen = rd32(&c);
    if (c.bad || elen > len - 4)
        return 0;
    c.len = 4 + (size_t)elen; /* nothing of the entry may reach past its length */
    memset(e, 0, sizeof *e);
    e->path_len = rd16(&c);
    e->path = (const char *)take(&c, e->path_len);
    e->id.fp = rd64(&c);
    e->id.size = rd32(&c);
    e->desc_len = rd32(&c);
    e->desc = e->desc_len <= HK_RS_MAX_DESC ? take(&c, e->desc_len) : (c.bad = true, NULL);
    e->ndata = rd32(&c);
    e->data = e->ndata <= (c.len - c.pos) / 24 ? take(&c, (size_t)e->ndata * 24) : (c.bad = true, NULL);
    e->marks = rd8(&c);
    if (e->marks == HK_RS_MARKS_SOME) {
        e->piece_count = rd32(&c);
        e->bitmap = take(&c, ((size_t)e->piece_count + 7) / 8);
    } else if (e->marks > HK_RS_MARKS_SOME) {
        c.bad = true;
    }
    if (c.bad || c.pos != c.len || e->path_len == 0 || e->path_len >= HK_RS_MAX_PATH ||
        memchr(e->path, 0, e->path_len))
        return 0;
    return c.pos;
}

int hk_rs_open(hk_rs_reader *r, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (len < 8 || memcmp(buf, HK_RS_MAGIC, 8) != 0) {
        snprintf(err, errlen, len < 8 ? "truncated (%zu bytes)" : "not a hekate resume state file (bad magic)", len);
        return -1;
    }
    if (len < HK_RS_HEADER + HK_RS_TRAILER) {
        snprintf(err, errlen, "truncated (%zu bytes)", len);
        return -1;
    }
    uint32_t version = get32(buf + 8);
    if (version != HK_RS_VERSION || get32(buf + 12) != 0) {
        snprintf(err, errlen, "version %u, flags %#x (this hekate reads version %u)", version, get32(buf + 12),
                 HK_RS_VERSION);
        return -1;
    }
    uint32_t want = get32(buf + len - 4);
    if (hk_crc32c(0, buf, len - 4) != want) {
        snprintf(err, errlen, "checksum mismatch (truncated or corrupt)");
        return -1;
    }
    r->buf = buf;
    r->pos = HK_RS_HEADER;
    r->end = len - HK_RS_TRAILER;
    r->count = get64(buf + r->end);
    uint64_t n = 0;
    for (size_t pos = r->pos; pos < r->end; n++) { /* every entry's framing, before any is used */
        hk_rs_entry e;
        size_t used = hk_rs_parse_entry(buf + pos, r->end - pos, &e);
        if (used == 0) {
            snprintf(err, errlen, "malformed entry %llu", (unsigned long long)n);
            return -1;
        }
        pos += used;
    }
    if (n != r->count) {
        snprintf(err, errlen, "%llu entries but the trailer says %llu", (unsigned long long)n,
                 (unsigned long long)r->count);
        return -1;
    }
    return 0;
}

int hk_rs_next(hk_rs_reader *r, hk_rs_entry *e)
{
    if (!r->buf || r->pos >= r->end)
        return 0;
    size_t used = hk_rs_parse_entry(r->buf + r->pos, r->end - r->pos, e);
    if (used == 0)
        return 0;
    r->pos += used;
    r->seen++;
    return 1;
}

hk_rs_data_id hk_rs_data_at(const hk_rs_entry *e, uint32_t i)
{
    const uint8_t *p = e->data + (size_t)i * 24;
    return (hk_rs_data_id){ .ino = get64(p), .size = get64(p + 8), .mtime_ns = (int64_t)get64(p + 16) };
}

void hk_rs_data_put(uint8_t out[24], const hk_rs_data_id *d)
{
    put64(out, d->ino);
    put64(out + 8, d->size);
    put64(out + 16, (uint64_t)d->mtime_ns);
}

/* ---- writer ---- */

static int emit(hk_rs_writer *w, const void *bytes, size_t len)
{
    if (w->failed)
        return -1;
    if (len == 0)
        return 0;
    w->crc = hk_crc32c(w->crc, bytes, len);
    if (w->sink(w->arg, bytes, len) != 0) {
        w->failed = true;
        return -1;
    }
    return 0;
}

int hk_rs_writer_begin(hk_rs_writer *w, hk_rs_sink sink, void *arg)
{
    *w = (hk_rs_writer){ .sink = sink, .arg = arg };
    uint8_t h[HK_RS_HEADER];
    memcpy(h, HK_RS_MAGIC, 8);
    put32(h + 8, HK_RS_VERSION);
    put32(h + 12, 0);
    return emit(w, h, sizeof h);
}

int hk_rs_write_entry(hk_rs_writer *w, const hk_rs_entry *e)
{
    size_t bits = e->marks == HK_RS_MARKS_SOME ? ((size_t)e->piece_count + 7) / 8 : 0;
    size_t elen = 2 + e->path_len + HK_RS_ID_BYTES + 4 + e->desc_len + 4 + (size_t)e->ndata * 24 + 1 +
                  (e->marks == HK_RS_MARKS_SOME ? 4 + bits : 0);
    if (e->path_len == 0 || e->path_len >= HK_RS_MAX_PATH || e->desc_len > HK_RS_MAX_DESC || elen > UINT32_MAX)
        return w->failed ? -1 : 0; /* never written: it could not be read back */
    uint8_t head[4 + 2], id[HK_RS_ID_BYTES + 4], mid[4], tail[1 + 4];
    put32(head, (uint32_t)elen);
    put16(head + 4, (uint16_t)e->path_len);
    put64(id, e->id.fp);
    put32(id + 8, e->id.size);
    put32(id + HK_RS_ID_BYTES, e->desc_len);
    put32(mid, e->ndata);
    tail[0] = e->marks;
    put32(tail + 1, e->piece_count);
    emit(w, head, sizeof head);
    emit(w, e->path, e->path_len);
    emit(w, id, sizeof id);
    emit(w, e->desc, e->desc_len);
    emit(w, mid, sizeof mid);
    emit(w, e->data, (size_t)e->ndata * 24);
    emit(w, tail, e->marks == HK_RS_MARKS_SOME ? 5 : 1);
    if (e->marks == HK_RS_MARKS_SOME)
        emit(w, e->bitmap, bits);
    if (!w->failed)
        w->count++;
    return w->failed ? -1 : 0;
}

int hk_rs_writer_end(hk_rs_writer *w)
{
    uint8_t t[8];
    put64(t, w->count);
    if (emit(w, t, 8) != 0)
        return -1;
    uint8_t c[4];
    put32(c, w->crc);
    if (w->failed || w->sink(w->arg, c, 4) != 0) {
        w->failed = true;
        return -1;
    }
    return 0;
}

/* ---- descriptions ---- */

enum { DF_PRIVATE = 1, DF_MULTI = 2, DF_HYBRID = 4, DF_UTF8 = 8, DF_V2 = 16 };
#define DESC_FIXED (20 + 1 + 4 + 4 + 8 + 8 + 8 + 8)
#define V2_BLOCK 16384u

/* Appends n bytes at *pos when they fit (the position always advances: the total is the size needed). */
static void app(uint8_t *out, size_t cap, size_t *pos, const void *b, size_t n)
{
    if (*pos <= cap && n <= cap - *pos && n)
        memcpy(out + *pos, b, n);
    *pos += n;
}
static void app16(uint8_t *out, size_t cap, size_t *pos, uint16_t v)
{
    uint8_t b[2];
    put16(b, v);
    app(out, cap, pos, b, 2);
}

size_t hk_rs_desc_encode(const mi_torrent *mi, uint8_t *out, size_t cap)
{
    uint8_t f[DESC_FIXED];
    memcpy(f, mi->info_hash, 20);
    f[20] = (uint8_t)((mi->is_private ? DF_PRIVATE : 0) | (mi->multi_file ? DF_MULTI : 0) |
                      (mi->hybrid ? DF_HYBRID : 0) | (mi->utf8_name ? DF_UTF8 : 0) |
                      (mi->hybrid && mi->v2_hashes ? DF_V2 : 0));
    put32(f + 21, mi->piece_length);
    put32(f + 25, mi->piece_count);
    put64(f + 29, mi->total_length);
    put64(f + 37, mi->info_start);
    put64(f + 45, mi->info_end);
    put64(f + 53, mi->pieces_offset);
    size_t pos = 0;
    app(out, cap, &pos, f, sizeof f);
    app16(out, cap, &pos, mi->name_len);
    app(out, cap, &pos, mi->name, mi->name_len);
    uint8_t b[9];
    put32(b, mi->file_count);
    app(out, cap, &pos, b, 4);
    for (uint32_t i = 0; i < mi->file_count; i++) {
        put64(b, mi->files[i].length);
        b[8] = mi->files[i].flags;
        app(out, cap, &pos, b, 9);
        app16(out, cap, &pos, mi->files[i].path_len);
        app(out, cap, &pos, mi_file_path(mi, i), mi->files[i].path_len);
        if (f[20] & DF_V2) {
            put64(b, mi->v2_hashes[i]);
            app(out, cap, &pos, b, 8);
        }
    }
    app16(out, cap, &pos, (uint16_t)mi->tier_count);
    for (uint32_t t = 0; t < mi->tier_count; t++) {
        app16(out, cap, &pos, (uint16_t)mi->tiers[t].count);
        for (uint32_t k = 0; k < mi->tiers[t].count; k++) {
            const char *u = mi->trackers[mi->tiers[t].first + k];
            size_t ul = strlen(u);
            app16(out, cap, &pos, (uint16_t)ul);
            app(out, cap, &pos, u, ul);
        }
    }
    return pos;
}

/* A name or path component as the .torrent parser accepts them. */
static bool component_ok(const uint8_t *s, size_t n)
{
    if (n == 0 || n > MI_MAX_COMPONENT || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == '\\' || s[i] == 0)
            return false;
    return true;
}

static bool path_ok(const uint8_t *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++)
        if (i == n || s[i] == '/') {
            if (!component_ok(s + start, i - start))
                return false;
            start = i + 1;
        }
    return true;
}

static bool url_ok(const uint8_t *s, size_t n)
{
    if (n == 0 || n > MI_MAX_URL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    return true;
}

typedef struct desc_sizes {
    uint32_t nfiles, ntiers, nurls;
    size_t strings;
    bool v2;                     /* DF_V2: each file's v2 hash offset follows its path */
    uint64_t tsize;              /* the .torrent's size: every offset lies below it */
} desc_sizes;

/* The fixed part of a description, checked. */
static bool desc_fixed(cur *c, mi_torrent *m, desc_sizes *z, char *err, size_t errlen)
{
    const uint8_t *f = take(c, DESC_FIXED);
    if (!f) {
        snprintf(err, errlen, "description truncated");
        return false;
    }
    memcpy(m->info_hash, f, 20);
    m->is_private = f[20] & DF_PRIVATE;
    m->multi_file = f[20] & DF_MULTI;
    m->hybrid = f[20] & DF_HYBRID;
    m->utf8_name = f[20] & DF_UTF8;
    m->piece_length = get32(f + 21);
    m->piece_count = get32(f + 25);
    m->total_length = get64(f + 29);
    m->info_start = (size_t)get64(f + 37);
    m->info_end = (size_t)get64(f + 45);
    m->pieces_offset = (size_t)get64(f + 53);
    uint64_t pl = m->piece_length;
    if (pl == 0 || pl > MI_MAX_PIECE_LENGTH || m->total_length == 0 || m->total_length > INT64_MAX ||
        (m->total_length + pl - 1) / pl != m->piece_count || m->info_start >= m->info_end ||
        m->pieces_offset < m->info_start || m->pieces_offset > m->info_end ||
        (m->info_end - m->pieces_offset) / 20 < m->piece_count || m->info_end > z->tsize || (f[20] & ~0x1f)) {
        snprintf(err, errlen, "description: inconsistent geometry");
        return false;
    }
    z->v2 = f[20] & DF_V2;
    if (z->v2 && (!m->hybrid || pl < V2_BLOCK || (pl & (pl - 1)) != 0)) {
        snprintf(err, errlen, "description: v2 hashes without a hybrid's geometry");
        return false;
    }
    return true;
}

/* File [at, at + len) (flags) with v2 hash offset o, as core/metainfo_v2.c finds them in a .torrent of m's geometry
 * and z->tsize bytes: none for pad and empty files; a data file starts on a piece boundary; one of at most one
 * piece has its 32-byte pieces root inside `info`; a longer one has its piece layer (32 bytes a piece) outside
 * `info`, within the file, or none (0: checked through v1 only). */
static bool v2_ok(const mi_torrent *m, const desc_sizes *z, uint64_t at, uint64_t len, uint8_t flags, uint64_t o)
{
    uint64_t pl = m->piece_length;
    if ((flags & MI_FILE_PAD) || len == 0)
        return o == 0;
    if (at % pl != 0)
        return false;
    if (len <= pl)
        return o >= m->info_start && o < m->info_end && m->info_end - o >= MI_V2_HASH;
    uint64_t n = (len + pl - 1) / pl * MI_V2_HASH;
    return o == 0 || (o < z->tsize && z->tsize - o >= n && (o >= m->info_end || (o <= m->info_start && n <= m->info_start - o)));
}

/* First pass over the variable part: validates and sizes it. */
static bool desc_scan(cur c, const mi_torrent *m, desc_sizes *z, char *err, size_t errlen)
{
    uint16_t nl = rd16(&c);
    const uint8_t *name = take(&c, nl);
    if (!name || !component_ok(name, nl)) {
        snprintf(err, errlen, "description: bad name");
        return false;
    }
    z->strings = (size_t)nl + 1;
    z->nfiles = rd32(&c);
    if (c.bad || z->nfiles == 0 || z->nfiles > (c.len - c.pos) / 11 || (!m->multi_file && z->nfiles != 1)) {
        snprintf(err, errlen, "description: bad file count");
        return false;
    }
    uint64_t sum = 0;
    bool any_v2 = false;
    for (uint32_t i = 0; i < z->nfiles; i++) {
        uint64_t len = rd64(&c);
        uint8_t flags = rd8(&c);
        uint16_t pl = rd16(&c);
        const uint8_t *p = take(&c, pl);
        bool ok = !c.bad && (m->multi_file ? path_ok(p, pl) && (size_t)nl + 1 + pl <= MI_MAX_PATH : pl == 0);
        if (!ok || len > INT64_MAX - sum) {
            snprintf(err, errlen, "description: bad file %u", i);
            return false;
        }
        uint64_t v2 = z->v2 ? rd64(&c) : 0;
        if (z->v2 && (c.bad || !v2_ok(m, z, sum, len, flags, v2))) {
            snprintf(err, errlen, "description: bad v2 hash offset of file %u", i);
            return false;
        }
        any_v2 |= v2 != 0;
        sum += len;
        z->strings += (size_t)pl + 1;
    }
    if (sum != m->total_length || (z->v2 && !any_v2)) {
        snprintf(err, errlen, sum != m->total_length ? "description: file lengths do not sum to the total"
                                                     : "description: v2 part without a v2 hash");
        return false;
    }
    z->ntiers = rd16(&c);
    for (uint32_t t = 0; t < z->ntiers && !c.bad; t++) {
        uint16_t n = rd16(&c);
        if (n == 0)
            c.bad = true;
        for (uint32_t k = 0; k < n && !c.bad; k++) {
            uint16_t ul = rd16(&c);
            const uint8_t *u = take(&c, ul);
            if (!u || !url_ok(u, ul) || ++z->nurls > MI_MAX_TRACKERS)
                c.bad = true;
            z->strings += (size_t)ul + 1;
        }
    }
    if (c.bad || c.pos != c.len) {
        snprintf(err, errlen, "description: bad tracker list");
        return false;
    }
    return true;
}

/* Second pass: copies the variable part into the block laid out for it. */
static void desc_fill(cur c, mi_torrent *m, mi_file *files, uint64_t *v2, mi_tier *tiers, const char **urls, char *s)
{
    size_t sp = 0;
    m->name_len = rd16(&c);
    memcpy(s, take(&c, m->name_len), m->name_len);
    s[m->name_len] = 0;
    m->name = s;
    sp = (size_t)m->name_len + 1;
    m->file_count = rd32(&c);
    uint64_t off = 0;
    for (uint32_t i = 0; i < m->file_count; i++) {
        files[i].offset = off;
        files[i].length = rd64(&c);
        files[i].flags = rd8(&c);
        files[i].path_len = rd16(&c);
        files[i].path = (uint32_t)sp;
        memcpy(s + sp, take(&c, files[i].path_len), files[i].path_len);
        sp += files[i].path_len;
        s[sp++] = 0;
        off += files[i].length;
        if (v2)
            v2[i] = rd64(&c);
    }
    m->tier_count = rd16(&c);
    uint32_t u = 0;
    for (uint32_t t = 0; t < m->tier_count; t++) {
        tiers[t].first = u;
        tiers[t].count = rd16(&c);
        for (uint32_t k = 0; k < tiers[t].count; k++, u++) {
            uint16_t ul = rd16(&c);
            memcpy(s + sp, take(&c, ul), ul);
            urls[u] = s + sp;
            sp += ul;
            s[sp++] = 0;
        }
    }
    m->tracker_count = u;
}

mi_torrent *hk_rs_desc_decode(const uint8_t *d, size_t len, uint64_t torrent_size, char *err, size_t errlen)
{
    mi_torrent fixed;
    memset(&fixed, 0, sizeof fixed);
    cur c = { .p = d, .len = len };
    desc_sizes z = { .tsize = torrent_size };
    if (!desc_fixed(&c, &fixed, &z, err, errlen) || !desc_scan(c, &fixed, &z, err, errlen))
        return NULL;
    size_t nv2 = z.v2 ? z.nfiles : 0;
    size_t bytes = sizeof(mi_torrent) + (size_t)z.nfiles * sizeof(mi_file) + nv2 * sizeof(uint64_t) +
                   (size_t)z.ntiers * sizeof(mi_tier) + (size_t)z.nurls * sizeof(char *) + z.strings;
    mi_torrent *m = malloc(bytes);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *m = fixed;
    mi_file *files = (mi_file *)(m + 1);
    uint64_t *v2 = (uint64_t *)(files + z.nfiles);
    mi_tier *tiers = (mi_tier *)(v2 + nv2);
    const char **urls = (const char **)(tiers + z.ntiers);
    char *s = (char *)(urls + z.nurls);
    desc_fill(c, m, files, nv2 ? v2 : NULL, tiers, urls, s);
    m->v2_hashes = nv2 ? v2 : NULL;
    m->files = files;
    m->tiers = tiers;
    m->trackers = urls;
    m->strings = s;
    return m;
}
