/* metainfo: validation of a decoded .torrent and construction of its one-block description (see metainfo.h).
 *
 * The document is walked twice by the same code: a first pass validates everything and measures what must be stored
 * (files, trackers, string bytes); the block is allocated once; a second pass, which cannot fail, fills it. Only the
 * path-collision check (which needs the joined paths) runs after the fill. */
#include "metainfo.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bencode.h"
#include "metainfo_v2.h"

#define FIELD_MAX 80 /* e.g. "announce-list[1023][1023]" or "info.files[4294967295].path.utf-8[4294967295]" */
#define QUOTE_MAX 48 /* bytes of a name shown in an error message */

typedef struct parse {
    const ben_doc *doc;
    mi_error *err;
    uint32_t info;       /* token index of the info dictionary */
    bool fill;           /* second pass: write into the block */
    /* Counts: pass 1 measures upper bounds, pass 2 the actual values (duplicate trackers are dropped in pass 2). */
    uint32_t nfiles, ntiers, ntrackers;
    size_t nstr;         /* string arena bytes */
    /* Pass 2 destinations. */
    mi_torrent *t;
    mi_file *files;
    mi_tier *tiers;
    const char **trackers;
    char *strings;
    /* What pass 1 measured: the room the block has for pass 2. */
    uint32_t files_cap, tiers_cap, trackers_cap;
    uint64_t *v2;        /* hybrid: file_count v2 hash offsets (metainfo_v2.h) */
    size_t strings_cap;
    /* Values found in pass 1 that pass 2 reuses. */
    uint64_t total;
} parse;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int fail(parse *P, const char *fmt, ...)
{
    if (P->err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(P->err->what, sizeof P->err->what, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A byte string as a C-escaped, quoted, shortened literal for error messages. */
static const char *quote(char out[QUOTE_MAX * 4 + 8], const uint8_t *s, size_t n)
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n && i < QUOTE_MAX; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            static const char hx[] = "0123456789abcdef";
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hx[c >> 4];
            out[o++] = hx[c & 15];
        }
    }
    out[o++] = '"';
    if (n > QUOTE_MAX) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

/* Length of the longest valid UTF-8 prefix of s (== n when all of s is valid): no overlong forms, no surrogates,
 * nothing above U+10FFFF. */
static size_t utf8_valid_prefix(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t need;
        uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the first continuation byte */
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            if (c == 0xf4)
                hi = 0x8f; /* > U+10FFFF */
        } else {
            return i;
        }
        if (n - i <= need)
            return i;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
        i += need + 1;
    }
    return n;
}

/* One name or path component. `field` names it for errors. */
static int check_component(parse *P, const uint8_t *s, size_t n, bool utf8, const char *field)
{
    char q[QUOTE_MAX * 4 + 8];
    if (n == 0)
        return fail(P, "%s: component is empty", field);
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return fail(P, "%s: component is %s", field, quote(q, s, n));
    if (n > MI_MAX_COMPONENT)
        return fail(P, "%s: component is %zu bytes long (at most %u)", field, n, MI_MAX_COMPONENT);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '/')
            return fail(P, "%s: component %s contains '/'", field, quote(q, s, n));
        if (s[i] == '\\')
            return fail(P, "%s: component %s contains '\\'", field, quote(q, s, n));
        if (s[i] == '\0')
            return fail(P, "%s: component %s contains a NUL byte", field, quote(q, s, n));
    }
    if (utf8) {
        size_t ok = utf8_valid_prefix(s, n);
        if (ok != n)
            return fail(P, "%s: component %s is not valid UTF-8 (byte %zu)", field, quote(q, s, n), ok);
    }
    return 0;
}

/* Appends n bytes and a NUL to the arena (pass 2) or counts them (pass 1); returns the offset of the copy. */
static uint32_t arena_put(parse *P, const void *s, size_t n)
{
    size_t at = P->nstr;
    if (P->fill) {
        assert(n < P->strings_cap && at <= P->strings_cap - n - 1);
        memcpy(P->strings + at, s, n);
        P->strings[at + n] = '\0';
    }
    P->nstr += n + 1;
    return (uint32_t)at;
}

/* ---- name ---- */

static int parse_name(parse *P)
{
    const ben_doc *d = P->doc;
    int64_t plain = ben_dict_find(d, P->info, "name");
    int64_t utf = ben_dict_find(d, P->info, "name.utf-8");
    const uint8_t *s;
    size_t n;
    if (plain < 0 && utf < 0)
        return fail(P, "info.name: missing");
    if (plain >= 0) {
        if (!ben_get_str(d, plain, &s, &n))
            return fail(P, "info.name: not a string");
        if (check_component(P, s, n, false, "info.name") < 0)
            return -1;
    }
    bool use_utf = utf >= 0;
    if (use_utf) {
        if (!ben_get_str(d, utf, &s, &n))
            return fail(P, "info.name.utf-8: not a string");
        if (check_component(P, s, n, true, "info.name.utf-8") < 0)
            return -1;
    }
    uint32_t at = arena_put(P, s, n);
    if (P->fill) {
        P->t->name = P->strings + at;
        P->t->name_len = (uint16_t)n;
        P->t->utf8_name = use_utf;
    }
    return 0;
}

static size_t name_len(parse *P)
{
    const uint8_t *s;
    size_t n;
    int64_t idx = ben_dict_find(P->doc, P->info, "name.utf-8");
    if (idx < 0)
        idx = ben_dict_find(P->doc, P->info, "name");
    return ben_get_str(P->doc, idx, &s, &n) ? n : 0;
}

/* ---- files ---- */

/* BEP 47 `attr` of the dictionary `dict` (absent: no flags). */
static int parse_attr(parse *P, int64_t dict, const char *field, uint8_t *flags)
{
    int64_t a = ben_dict_find(P->doc, (uint32_t)dict, "attr");
    const uint8_t *s;
    size_t n;
    if (a < 0)
        return 0;
    if (!ben_get_str(P->doc, a, &s, &n))
        return fail(P, "%s.attr: not a string", field);
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case 'p': *flags |= MI_FILE_PAD; break;
        case 'x': *flags |= MI_FILE_EXECUTABLE; break;
        case 'h': *flags |= MI_FILE_HIDDEN; break;
        case 'l': *flags |= MI_FILE_SYMLINK; break;
        default: break; /* future attributes */
        }
    }
    return 0;
}

/* Validates the path list `list` (field names it, e.g. "info.files[3].path"). Sets *joined to the length of its
 * components joined by '/', and *pad_hint when its form marks a pad file. If out is not NULL, writes the joined
 * path there. */
static int check_path(parse *P, int64_t list, const char *field, bool utf8, size_t room, char *out, size_t *joined,
                      bool *pad_hint)
{
    const ben_doc *d = P->doc;
    if (d->tok[list].type != BEN_LIST)
        return fail(P, "%s: not a list", field);
    if (d->tok[list].count == 0)
        return fail(P, "%s: empty list", field);
    size_t len = 0;
    uint32_t k = 0;
    *pad_hint = false;
    for (int64_t c = ben_first_child(d, (uint32_t)list); c >= 0;
         c = ben_next_sibling(d, (uint32_t)list, (uint32_t)c), k++) {
        char cf[FIELD_MAX + 16];
        const uint8_t *s;
        size_t n;
        snprintf(cf, sizeof cf, "%s[%u]", field, k);
        if (!ben_get_str(d, c, &s, &n))
            return fail(P, "%s: not a string", cf);
        if (check_component(P, s, n, utf8, cf) < 0)
            return -1;
        size_t add = n + (k > 0);
        if (len + add > room)
            return fail(P, "%s: path is longer than %u bytes with the torrent's name", field, MI_MAX_PATH);
        if (out) {
            if (k > 0)
                out[len] = '/';
            memcpy(out + len + (k > 0), s, n);
        }
        len += add;
        if (k == 0 && n == 4 && memcmp(s, ".pad", 4) == 0)
            *pad_hint = true;
        if (k + 1 == d->tok[list].count && n >= 18 && memcmp(s, "_____padding_file_", 18) == 0)
            *pad_hint = true;
    }
    *joined = len;
    return 0;
}

/* Reads a file length: an integer >= 0 added to the running total without overflow. */
static int file_length(parse *P, int64_t idx, const char *field, uint64_t *total, uint64_t *len)
{
    int64_t v;
    if (idx < 0)
        return fail(P, "%s: missing", field);
    if (!ben_get_int(P->doc, idx, &v))
        return fail(P, "%s: not an integer", field);
    if (v < 0)
        return fail(P, "%s: negative (%lld)", field, (long long)v);
    if ((uint64_t)v > (uint64_t)INT64_MAX - *total)
        return fail(P, "%s: total length of the torrent overflows (more than %lld bytes)", field,
                    (long long)INT64_MAX);
    *total += (uint64_t)v;
    *len = (uint64_t)v;
    return 0;
}

static void add_file(parse *P, uint64_t offset, uint64_t length, uint32_t path, size_t path_len, uint8_t flags)
{
    if (P->fill) {
        assert(P->nfiles < P->files_cap);
        mi_file *f = &P->files[P->nfiles];
        f->offset = offset;
        f->length = length;
        f->path = path;
        f->path_len = (uint16_t)path_len;
        f->flags = flags;
    }
    P->nfiles++;
}

static int parse_single(parse *P, int64_t length)
{
    uint64_t total = 0, len;
    uint8_t flags = 0;
    if (file_length(P, length, "info.length", &total, &len) < 0)
        return -1;
    if (parse_attr(P, P->info, "info", &flags) < 0)
        return -1;
    add_file(P, 0, len, arena_put(P, "", 0), 0, flags);
    P->total = total;
    return 0;
}

static int parse_multi(parse *P, int64_t files)
{
    const ben_doc *d = P->doc;
    if (d->tok[files].type != BEN_LIST)
        return fail(P, "info.files: not a list");
    if (d->tok[files].count == 0)
        return fail(P, "info.files: empty list");
    size_t room = MI_MAX_PATH - 1 - name_len(P); /* name_len <= MI_MAX_COMPONENT */
    uint64_t total = 0;
    uint32_t i = 0;
    for (int64_t e = ben_first_child(d, (uint32_t)files); e >= 0;
         e = ben_next_sibling(d, (uint32_t)files, (uint32_t)e), i++) {
        char f[FIELD_MAX], pf[FIELD_MAX];
        snprintf(f, sizeof f, "info.files[%u]", i);
        if (d->tok[e].type != BEN_DICT)
            return fail(P, "%s: not a dictionary", f);
        uint64_t offset = total, len;
        uint8_t flags = 0;
        snprintf(pf, sizeof pf, "info.files[%u].length", i);
        if (file_length(P, ben_dict_find(d, (uint32_t)e, "length"), pf, &total, &len) < 0)
            return -1;
        if (parse_attr(P, e, f, &flags) < 0)
            return -1;
        int64_t plain = ben_dict_find(d, (uint32_t)e, "path");
        int64_t utf = ben_dict_find(d, (uint32_t)e, "path.utf-8");
        if (plain < 0 && utf < 0)
            return fail(P, "%s.path: missing", f);
        size_t joined = 0;
        bool pad = false;
        if (plain >= 0) {
            snprintf(pf, sizeof pf, "info.files[%u].path", i);
            if (check_path(P, plain, pf, false, room, NULL, &joined, &pad) < 0)
                return -1;
        }
        if (utf >= 0) {
            snprintf(pf, sizeof pf, "info.files[%u].path.utf-8", i);
            if (check_path(P, utf, pf, true, room, NULL, &joined, &pad) < 0)
                return -1;
        }
        /* The preferred variant (path.utf-8 if present) was checked last: joined and pad describe it. */
        uint32_t at = (uint32_t)P->nstr;
        if (P->fill) {
            size_t again;
            bool pad_again;
            assert(at + joined < P->strings_cap);
            check_path(P, utf >= 0 ? utf : plain, pf, utf >= 0, room, P->strings + at, &again, &pad_again);
            P->strings[at + joined] = '\0';
        }
        P->nstr += joined + 1;
        if (pad)
            flags |= MI_FILE_PAD;
        add_file(P, offset, len, at, joined, flags);
    }
    P->total = total;
    return 0;
}

/* ---- pieces, flags ---- */

/* The integer `key` of the info dictionary: 1 with *v set when present, 0 when absent, -1 (error set) when it is not an
 * integer. */
static int info_int(parse *P, const char *key, int64_t *v)
{
    int64_t idx = ben_dict_find(P->doc, P->info, key);
    if (idx < 0)
        return 0;
    if (!ben_get_int(P->doc, idx, v))
        return fail(P, "info.%s: not an integer", key);
    return 1;
}

static int parse_pieces(parse *P)
{
    const ben_doc *d = P->doc;
    int64_t v;
    int found = info_int(P, "piece length", &v);
    if (found < 0)
        return -1;
    if (found == 0)
        return fail(P, "info.piece length: missing");
    if (v < 1 || v > (int64_t)MI_MAX_PIECE_LENGTH)
        return fail(P, "info.piece length: %lld is outside [1, %u]", (long long)v, MI_MAX_PIECE_LENGTH);
    uint64_t piece_length = (uint64_t)v;

    int64_t pc = ben_dict_find(d, P->info, "pieces");
    const uint8_t *s;
    size_t n;
    if (pc < 0)
        return fail(P, "info.pieces: missing");
    if (!ben_get_str(d, pc, &s, &n))
        return fail(P, "info.pieces: not a string");
    if (n % IH_LEN != 0)
        return fail(P, "info.pieces: length %zu is not a multiple of 20", n);
    uint64_t need = P->total / piece_length + (P->total % piece_length != 0);
    if ((uint64_t)(n / IH_LEN) != need)
        return fail(P, "info.pieces: holds %zu hashes, but %llu bytes in pieces of %llu need %llu", n / IH_LEN,
                    (unsigned long long)P->total, (unsigned long long)piece_length, (unsigned long long)need);
    if (need > UINT32_MAX)
        return fail(P, "info.pieces: %llu pieces are too many", (unsigned long long)need);
    if (P->fill) {
        P->t->piece_length = (uint32_t)piece_length;
        P->t->piece_count = (uint32_t)need;
        P->t->pieces_offset = (size_t)(s - d->input);
    }
    return 0;
}

static int parse_flags(parse *P, bool *hybrid, bool *priv)
{
    const ben_doc *d = P->doc;
    int64_t v;
    int found = info_int(P, "private", &v);
    if (found < 0)
        return -1;
    if (found && v != 0 && v != 1)
        return fail(P, "info.private: %lld is neither 0 nor 1", (long long)v);
    *priv = found && v == 1;
    found = info_int(P, "meta version", &v);
    if (found < 0)
        return -1;
    if (found && v != 1 && v != 2)
        return fail(P, "info.meta version: unsupported version %lld", (long long)v);
    *hybrid = found && v == 2;
    int64_t idx = ben_dict_find(d, P->info, "file tree");
    if (idx >= 0 && d->tok[idx].type != BEN_DICT)
        return fail(P, "info.file tree: not a dictionary");
    return 0;
}

/* ---- trackers ---- */

static int check_url(parse *P, const uint8_t *s, size_t n, const char *field)
{
    char q[QUOTE_MAX * 4 + 8];
    if (n > MI_MAX_URL)
        return fail(P, "%s: URL is %zu bytes long (at most %u)", field, n, MI_MAX_URL);
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return fail(P, "%s: URL %s has byte 0x%02x at %zu (only printable ASCII without spaces)", field,
                        quote(q, s, n), s[i], i);
    return 0;
}

/* Adds one URL to the current tier; pass 2 drops URLs already present. Returns 1 if added. */
static int add_tracker(parse *P, const uint8_t *s, size_t n)
{
    if (P->fill) {
        for (uint32_t i = 0; i < P->ntrackers; i++)
            if (strncmp(P->trackers[i], (const char *)s, n) == 0 && P->trackers[i][n] == '\0')
                return 0;
        assert(P->ntrackers < P->trackers_cap);
        P->trackers[P->ntrackers] = P->strings + arena_put(P, s, n);
    } else {
        arena_put(P, s, n);
    }
    P->ntrackers++;
    return 1;
}

static void end_tier(parse *P, uint32_t first)
{
    if (P->ntrackers == first)
        return; /* empty tier */
    if (P->fill) {
        assert(P->ntiers < P->tiers_cap);
        P->tiers[P->ntiers].first = first;
        P->tiers[P->ntiers].count = P->ntrackers - first;
    }
    P->ntiers++;
}

static int parse_trackers(parse *P)
{
    const ben_doc *d = P->doc;
    int64_t list = ben_dict_find(d, 0, "announce-list");
    int64_t single = ben_dict_find(d, 0, "announce");
    const uint8_t *s = NULL;
    size_t n = 0;
    if (single >= 0) {
        if (!ben_get_str(d, single, &s, &n))
            return fail(P, "announce: not a string");
        if (check_url(P, s, n, "announce") < 0)
            return -1;
    }
    uint32_t seen = 0; /* URLs in announce-list, before de-duplication */
    if (list >= 0) {
        if (d->tok[list].type != BEN_LIST)
            return fail(P, "announce-list: not a list");
        uint32_t t = 0;
        for (int64_t tier = ben_first_child(d, (uint32_t)list); tier >= 0;
             tier = ben_next_sibling(d, (uint32_t)list, (uint32_t)tier), t++) {
            char f[FIELD_MAX];
            snprintf(f, sizeof f, "announce-list[%u]", t);
            if (d->tok[tier].type != BEN_LIST)
                return fail(P, "%s: not a list", f);
            uint32_t first = P->ntrackers, u = 0;
            for (int64_t url = ben_first_child(d, (uint32_t)tier); url >= 0;
                 url = ben_next_sibling(d, (uint32_t)tier, (uint32_t)url), u++) {
                const uint8_t *us;
                size_t un;
                snprintf(f, sizeof f, "announce-list[%u][%u]", t, u);
                if (!ben_get_str(d, url, &us, &un))
                    return fail(P, "%s: not a string", f);
                if (check_url(P, us, un, f) < 0)
                    return -1;
                if (un == 0)
                    continue;
                if (++seen > MI_MAX_TRACKERS)
                    return fail(P, "announce-list: more than %u tracker URLs", MI_MAX_TRACKERS);
                add_tracker(P, us, un);
            }
            end_tier(P, first);
        }
    }
    if (seen == 0 && n > 0) { /* no usable announce-list: `announce` is the only tier */
        uint32_t first = P->ntrackers;
        add_tracker(P, s, n);
        end_tier(P, first);
    }
    return 0;
}

/* ---- the whole document ---- */

static int walk(parse *P)
{
    const ben_doc *d = P->doc;
    P->nfiles = P->ntiers = P->ntrackers = 0;
    P->nstr = 0;
    if (parse_name(P) < 0)
        return -1;
    bool hybrid = false, priv = false;
    if (parse_flags(P, &hybrid, &priv) < 0)
        return -1;
    int64_t length = ben_dict_find(d, P->info, "length");
    int64_t files = ben_dict_find(d, P->info, "files");
    if (length >= 0 && files >= 0)
        return fail(P, "info: has both `length` (single file) and `files` (multi-file)");
    if (length < 0 && files < 0) {
        if (hybrid || ben_dict_find(d, P->info, "file tree") >= 0)
            return fail(P, "info: v2-only torrent (no v1 `length` or `files`): not supported");
        return fail(P, "info: has neither `length` (single file) nor `files` (multi-file)");
    }
    if ((length >= 0 ? parse_single(P, length) : parse_multi(P, files)) < 0)
        return -1;
    if (P->total == 0)
        return fail(P, "%s: the torrent holds no data (total length 0)", length >= 0 ? "info.length" : "info.files");
    if (parse_pieces(P) < 0)
        return -1;
    if (parse_trackers(P) < 0)
        return -1;
    if (P->fill) {
        mi_torrent *t = P->t;
        t->is_private = priv;
        t->hybrid = hybrid;
        t->multi_file = files >= 0;
        t->total_length = P->total;
        t->file_count = P->nfiles;
        t->tier_count = P->ntiers;
        t->tracker_count = P->ntrackers;
        t->info_start = d->tok[P->info].start;
        t->info_end = d->tok[P->info].end;
    }
    return 0;
}

/* ---- path collisions ---- */

typedef struct path_ref {
    const char *path;
    uint32_t index;
} path_ref;

/* Orders paths component by component: '/' sorts before every other byte, so "a" < "a/b" < "a-b" and every path
 * inside folder "a" directly follows "a". */
static int path_cmp(const void *a, const void *b)
{
    const unsigned char *x = (const unsigned char *)((const path_ref *)a)->path;
    const unsigned char *y = (const unsigned char *)((const path_ref *)b)->path;
    for (;; x++, y++) {
        int cx = *x == '/' ? 1 : *x == 0 ? 0 : *x + 1;
        int cy = *y == '/' ? 1 : *y == 0 ? 0 : *y + 1;
        if (cx != cy || cx == 0)
            return cx - cy;
    }
}

static int check_collisions(parse *P)
{
    mi_torrent *t = P->t;
    if (t->file_count < 2)
        return 0;
    path_ref *refs = malloc(sizeof *refs * t->file_count);
    if (!refs)
        return fail(P, "out of memory");
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->file_count; i++)
        if (!(t->files[i].flags & MI_FILE_PAD))
            refs[n++] = (path_ref){mi_file_path(t, i), i};
    qsort(refs, n, sizeof *refs, path_cmp);
    int rc = 0;
    for (uint32_t i = 0; i + 1 < n && rc == 0; i++) {
        const path_ref *a = &refs[i], *b = &refs[i + 1];
        size_t la = strlen(a->path);
        char q[QUOTE_MAX * 4 + 8];
        uint32_t lo = a->index < b->index ? a->index : b->index, hi = a->index ^ b->index ^ lo;
        if (strcmp(a->path, b->path) == 0)
            rc = fail(P, "info.files[%u].path: same path as info.files[%u] (%s)", hi, lo,
                      quote(q, (const uint8_t *)a->path, la));
        else if (strncmp(a->path, b->path, la) == 0 && b->path[la] == '/')
            rc = fail(P, "info.files[%u].path: %s is a file, but info.files[%u] uses it as a folder", a->index,
                      quote(q, (const uint8_t *)a->path, la), b->index);
    }
    free(refs);
    return rc;
}

/* ---- public ---- */

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* The top-level dictionary's `info` dictionary, into P->info. */
static int find_info(parse *P)
{
    const ben_doc *d = P->doc;
    if (d->tok[0].type != BEN_DICT)
        return fail(P, "torrent: not a dictionary");
    int64_t info = ben_dict_find(d, 0, "info");
    if (info < 0)
        return fail(P, "info: missing");
    if (d->tok[info].type != BEN_DICT)
        return fail(P, "info: not a dictionary");
    P->info = (uint32_t)info;
    return 0;
}

/* After pass 1: allocates the one block for what it measured and points pass 2's destinations into it. */
static int alloc_block(parse *P)
{
    if (P->nstr > UINT32_MAX) /* file paths are 32-bit offsets into the arena */
        return fail(P, "torrent: names and URLs take more than 4 GiB");
    /* One block: header, files, tiers, tracker pointers, strings. Counts are bounded by the token count and the
     * string bytes by the input size plus one separator per token, so none of this can overflow. */
    size_t files_at = align8(sizeof(mi_torrent));
    size_t v2_at = align8(files_at + sizeof(mi_file) * P->nfiles);
    bool v2 = ben_dict_find(P->doc, P->info, "file tree") >= 0;
    size_t tiers_at = align8(v2_at + (v2 ? sizeof(uint64_t) * P->nfiles : 0));
    size_t trackers_at = align8(tiers_at + sizeof(mi_tier) * P->ntiers);
    size_t strings_at = trackers_at + sizeof(char *) * P->ntrackers;
    size_t total = strings_at + P->nstr;
    unsigned char *block = calloc(1, total);
    if (!block)
        return fail(P, "out of memory (%zu bytes for the description)", total);
    P->t = (mi_torrent *)block;
    P->files = (mi_file *)(block + files_at);
    P->v2 = v2 ? (uint64_t *)(block + v2_at) : NULL;
    P->tiers = (mi_tier *)(block + tiers_at);
    P->trackers = (const char **)(block + trackers_at);
    P->strings = (char *)(block + strings_at);
    P->files_cap = P->nfiles;
    P->tiers_cap = P->ntiers;
    P->trackers_cap = P->ntrackers;
    P->strings_cap = P->nstr;
    P->fill = true;
    return 0;
}

/* Pass 2 into the block, then what needs the filled block: the path collisions and the info hash of buf. Frees the
 * block on failure. */
static int fill_block(parse *P, const uint8_t *buf)
{
    int rc = walk(P);
    assert(rc == 0); /* pass 1 validated the same document */
    if (rc == 0) {
        P->t->files = P->files;
        P->t->tiers = P->tiers;
        P->t->trackers = P->trackers;
        P->t->strings = P->strings;
        rc = check_collisions(P);
    }
    if (rc == 0 && P->v2 && P->t->hybrid && mi_v2_offsets(P->doc, P->info, P->t, P->v2))
        P->t->v2_hashes = P->v2;
    if (rc == 0 && !ih_sha1(buf + P->t->info_start, P->t->info_end - P->t->info_start, P->t->info_hash))
        rc = fail(P, "out of memory (SHA-1)");
    if (rc < 0) {
        free(P->t);
        P->t = NULL;
    }
    return rc;
}

int mi_parse(const uint8_t *buf, size_t len, mi_torrent **out, mi_error *err)
{
    ben_doc doc;
    ben_error berr;
    parse P = {.err = err, .doc = &doc};
    *out = NULL;
    if (ben_decode(buf, len, MI_MAX_TOKENS, &doc, &berr) < 0) {
        berr.what[sizeof berr.what - 1] = '\0';
        return fail(&P, "bencode: %s (at byte %zu)", berr.what, berr.offset);
    }
    int rc = -1;
    if (find_info(&P) == 0 && walk(&P) == 0 && alloc_block(&P) == 0 && fill_block(&P, buf) == 0) {
        *out = P.t;
        rc = 0;
    }
    ben_doc_free(&doc);
    return rc;
}

void mi_free(mi_torrent *t)
{
    free(t);
}

size_t mi_file_relpath(const mi_torrent *t, uint32_t i, char *buf, size_t cap)
{
    const mi_file *f = &t->files[i];
    int n = f->path_len ? snprintf(buf, cap, "%s/%s", t->name, mi_file_path(t, i))
                        : snprintf(buf, cap, "%s", t->name);
    return n < 0 ? 0 : (size_t)n;
}

int64_t mi_find_file(const mi_torrent *t, uint64_t offset)
{
    if (offset >= t->total_length)
        return -1;
    /* The last file starting at or before offset: its successor starts after offset, so it is not empty. */
    uint32_t lo = 0, hi = t->file_count; /* invariant: files[lo].offset <= offset, answer in [lo, hi) */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->files[mid].offset <= offset)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

uint32_t mi_piece_size(const mi_torrent *t, uint32_t i)
{
    if (i >= t->piece_count)
        return 0;
    if (i + 1 < t->piece_count)
        return t->piece_length;
    return (uint32_t)(t->total_length - (uint64_t)t->piece_length * (t->piece_count - 1));
}

/* An output buffer filled like snprintf: o counts every byte, only the first cap - 1 are stored. */
typedef struct magnet_out {
    char *buf;
    size_t cap, o;
} magnet_out;

static void mo_put(magnet_out *m, char c)
{
    if (m->o + 1 < m->cap)
        m->buf[m->o] = c;
    m->o++;
}

static void mo_raw(magnet_out *m, const char *s)
{
    while (*s)
        mo_put(m, *s++);
}

/* s[0..n) percent-encoded: A-Z a-z 0-9 - . _ ~ kept, every other byte %XX (uppercase hex). */
static void mo_escaped(magnet_out *m, const char *s, size_t n)
{
    static const char hx[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            mo_put(m, (char)c);
        } else {
            mo_put(m, '%');
            mo_put(m, hx[c >> 4]);
            mo_put(m, hx[c & 15]);
        }
    }
}

/* True if peer is "HOST:PORT" or "[V6]:PORT" made of the bytes a numeric address and port consist of. */
static bool peer_ok(const char *peer)
{
    size_t n = strlen(peer);
    if (n == 0 || n > 64 || !strchr(peer, ':'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = peer[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' || c == ':' ||
              c == '[' || c == ']'))
            return false;
    }
    return true;
}

size_t mi_magnet(const mi_torrent *t, const char *peer, char *buf, size_t cap)
{
    char hex[IH_HEX_LEN + 1];
    magnet_out m = {.buf = buf, .cap = cap, .o = 0};
    ih_hex(t->info_hash, hex);
    mo_raw(&m, "magnet:?xt=urn:btih:");
    mo_raw(&m, hex);
    mo_raw(&m, "&dn=");
    mo_escaped(&m, t->name, t->name_len);
    for (uint32_t k = 0; k < t->tracker_count; k++) { /* grouped by tier, in priority order, already deduplicated */
        mo_raw(&m, "&tr=");
        mo_escaped(&m, t->trackers[k], strlen(t->trackers[k]));
    }
    if (peer && peer_ok(peer)) {
        mo_raw(&m, "&x.pe=");
        mo_raw(&m, peer);
    }
    if (cap > 0)
        buf[m.o < cap ? m.o : cap - 1] = '\0';
    return m.o;
}
