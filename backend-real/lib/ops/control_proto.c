/* control_proto: parsing a control request line and writing JSON replies (see control_proto.h). Pure: no I/O. */
#include "control_proto.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const names[] = {
    [HK_CTL_STATUS] = "status",   [HK_CTL_TORRENTS] = "torrents", [HK_CTL_TORRENT] = "torrent",
    [HK_CTL_PEERS] = "peers",     [HK_CTL_ADD] = "add",           [HK_CTL_REMOVE] = "remove",
    [HK_CTL_RESCAN] = "rescan",   [HK_CTL_VERIFY] = "verify",     [HK_CTL_RELOAD_CONFIG] = "reload-config",
};
#define NCMDS (sizeof names / sizeof *names)

const char *hk_ctl_cmd_name(hk_ctl_cmd cmd)
{
    return (size_t)cmd < NCMDS ? names[cmd] : "?";
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* A word of the line: [*at, end of word), *at moved past it and the blanks after it. */
typedef struct word {
    const char *p;
    size_t n;
} word;

static word next_word(const char *line, size_t len, size_t *at)
{
    size_t i = *at;
    while (i < len && blank(line[i]))
        i++;
    size_t start = i;
    while (i < len && !blank(line[i]))
        i++;
    word w = { line + start, i - start };
    while (i < len && blank(line[i]))
        i++;
    *at = i;
    return w;
}

static bool word_is(word w, const char *s)
{
    return w.n == strlen(s) && memcmp(w.p, s, w.n) == 0;
}

int hk_ctl_parse_hex20(const char *s, size_t n, uint8_t out[20])
{
    if (n != 40)
        return -1;
    for (size_t i = 0; i < 40; i++) {
        char c = s[i];
        unsigned v = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                   : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                   : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16u;
        if (v == 16)
            return -1;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(v << 4);
        else
            out[i / 2] |= (uint8_t)v;
    }
    return 0;
}

/* --top N: 0, or -1 with err set. */
static int parse_top(const char *line, size_t len, size_t *at, hk_ctl_request *req, char *err, size_t errlen)
{
    req->top = HK_CTL_DEFAULT_TOP;
    if (*at == len)
        return 0;
    word opt = next_word(line, len, at);
    if (!word_is(opt, "--top")) {
        snprintf(err, errlen, "torrents: unknown argument (expected --top N)");
        return -1;
    }
    word n = next_word(line, len, at);
    uint64_t v = 0;
    bool digits = n.n > 0 && n.n <= 10;
    for (size_t i = 0; digits && i < n.n; i++) {
        if (n.p[i] < '0' || n.p[i] > '9')
            digits = false;
        else
            v = v * 10 + (uint64_t)(n.p[i] - '0');
    }
    if (!digits || v < 1 || v > HK_CTL_MAX_TOP) {
        snprintf(err, errlen, "torrents: --top needs a number from 1 to %u", HK_CTL_MAX_TOP);
        return -1;
    }
    req->top = (uint32_t)v;
    return 0;
}

/* The arguments of cmd from *at on: 0, or -1 with err set. */
static int parse_args(const char *line, size_t len, size_t at, hk_ctl_request *req, char *err, size_t errlen)
{
    const char *name = names[req->cmd];
    switch (req->cmd) {
    case HK_CTL_TORRENTS:
        if (parse_top(line, len, &at, req, err, errlen) != 0)
            return -1;
        break;
    case HK_CTL_TORRENT:
    case HK_CTL_REMOVE:
    case HK_CTL_VERIFY: {
        word h = next_word(line, len, &at);
        if (hk_ctl_parse_hex20(h.p, h.n, req->info_hash) != 0) {
            snprintf(err, errlen, "%s: expected an info-hash of 40 hex digits", name);
            return -1;
        }
        break;
    }
    case HK_CTL_ADD: {
        size_t n = len - at;
        while (n > 0 && blank(line[at + n - 1]))
            n--;
        if (n == 0) {
            snprintf(err, errlen, "add: expected the path of a .torrent file");
            return -1;
        }
        memcpy(req->path, line + at, n);
        req->path[n] = '\0';
        return 0; /* the path is the rest of the line */
    }
    default:
        break;
    }
    if (at != len) {
        snprintf(err, errlen, "%s: unexpected argument", name);
        return -1;
    }
    return 0;
}

int hk_ctl_parse(const char *line, size_t len, hk_ctl_request *req, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    memset(req, 0, sizeof *req);
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len > HK_CTL_MAX_LINE) {
        snprintf(err, errlen, "request too long (at most %u bytes)", HK_CTL_MAX_LINE);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            snprintf(err, errlen, "request holds a control byte (0x%02x) at offset %zu", c, i);
            return -1;
        }
    }
    size_t at = 0;
    word cmd = next_word(line, len, &at);
    if (cmd.n == 0) {
        snprintf(err, errlen, "empty request");
        return -1;
    }
    for (size_t i = 0; i < NCMDS; i++) {
        if (word_is(cmd, names[i])) {
            req->cmd = (hk_ctl_cmd)i;
            return parse_args(line, len, at, req, err, errlen);
        }
    }
    snprintf(err, errlen, "unknown command (expected status, torrents, torrent, peers, add, remove, rescan, verify "
                          "or reload-config)");
    return -1;
}

/* ---- the JSON writer ---- */

void hk_jw_init(hk_jw *w, char *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->overflow = false;
    if (cap)
        buf[0] = '\0';
}

static void put(hk_jw *w, const char *s, size_t n)
{
    if (w->overflow || w->cap == 0 || n > w->cap - 1 - w->len) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

void hk_jw_raw(hk_jw *w, const char *text)
{
    put(w, text, strlen(text));
}

/* The length of the valid UTF-8 sequence at s (n bytes left), 0 if none (overlong, surrogate, past U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t k = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (k == 0 || k > n || s[0] > 0xf4)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((k == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (k == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (k == 4 && s[0] == 0xf0 && s[1] < 0x90) || (k == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return k;
}

void hk_jw_string(hk_jw *w, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    put(w, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(w, esc, 2);
            i++;
        } else if (c >= 0x20 && c < 0x7f) {
            put(w, s + i, 1);
            i++;
        } else if (c >= 0x80 && utf8_len(u + i, n - i)) {
            size_t k = utf8_len(u + i, n - i);
            put(w, s + i, k);
            i += k;
        } else {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(w, esc, 6);
            i++;
        }
    }
    put(w, "\"", 1);
}

void hk_jw_key(hk_jw *w, const char *key)
{
    if (w->len > 0 && w->buf[w->len - 1] != '{' && w->buf[w->len - 1] != '[')
        put(w, ",", 1);
    hk_jw_string(w, key, strlen(key));
    put(w, ":", 1);
}

void hk_jw_u64(hk_jw *w, uint64_t v)
{
    char t[24];
    put(w, t, (size_t)snprintf(t, sizeof t, "%" PRIu64, v));
}

void hk_jw_hex(hk_jw *w, const uint8_t *bytes, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    put(w, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        char t[2] = { digits[bytes[i] >> 4], digits[bytes[i] & 15] };
        put(w, t, 2);
    }
    put(w, "\"", 1);
}

void hk_jw_bool(hk_jw *w, bool v)
{
    hk_jw_raw(w, v ? "true" : "false");
}

void hk_jw_double(hk_jw *w, double v)
{
    char t[40];
    if (!(v == v) || v > 1e300 || v < -1e300) /* NaN and infinities are not JSON */
        v = 0;
    put(w, t, (size_t)snprintf(t, sizeof t, "%.3f", v));
}

void hk_jw_kstr(hk_jw *w, const char *key, const char *s)
{
    hk_jw_key(w, key);
    hk_jw_string(w, s, strlen(s));
}

void hk_jw_ku64(hk_jw *w, const char *key, uint64_t v)
{
    hk_jw_key(w, key);
    hk_jw_u64(w, v);
}

void hk_ctl_error_reply(hk_jw *w, const char *msg)
{
    hk_jw_init(w, w->buf, w->cap);
    hk_jw_raw(w, "{\"ok\":false");
    hk_jw_kstr(w, "error", msg);
    hk_jw_raw(w, "}\n");
}
