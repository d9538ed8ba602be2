/* tracker_http: owns tracker URL classification, HTTP announce URL building and the decoding of bencoded announce
 * replies (see tracker_http.h). */
#include "tracker_http.h"

#include <stdio.h>
#include <string.h>

#include "bencode.h"

static void set_err(char *err, size_t errlen, const char *fmt, size_t pos, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, pos, what);
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool prefix_ci(const char *s, const char *p)
{
    for (; *p; s++, p++)
        if (lower(*s) != *p)
            return false;
    return true;
}

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == '_' || c == '~';
}

static bool v6_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

/* Reports an error at byte `pos` of the URL or reply; returns -1. */
static int fail_at(char *err, size_t errlen, size_t pos, const char *what)
{
    set_err(err, errlen, "at byte %zu: %s", pos, what);
    return -1;
}

/* Whether url[i] ends the authority (host and port): end of string, path, query or fragment. */
static bool authority_end(char c)
{
    return c == '\0' || c == '/' || c == '?' || c == '#';
}

/* The scheme: sets out->scheme and its default port (0 for udp: none). Returns the offset after "://", or 0. */
static size_t parse_scheme(const char *url, hk_tracker_url *out, char *err, size_t errlen)
{
    static const struct {
        const char *prefix;
        hk_tracker_scheme scheme;
        uint16_t port;
    } SCHEMES[] = {
        {"http://", HK_TRACKER_HTTP, 80},
        {"https://", HK_TRACKER_HTTPS, 443},
        {"udp://", HK_TRACKER_UDP, 0},
    };
    for (size_t k = 0; k < sizeof SCHEMES / sizeof SCHEMES[0]; k++) {
        if (prefix_ci(url, SCHEMES[k].prefix)) {
            out->scheme = SCHEMES[k].scheme;
            out->port = SCHEMES[k].port;
            return strlen(SCHEMES[k].prefix);
        }
    }
    fail_at(err, errlen, 0, "unsupported scheme (http, https or udp expected)");
    return 0;
}

/* The host at url[*i]: a name or a bracketed IPv6 literal. Advances *i past it. */
static int parse_host(const char *url, size_t *i, hk_tracker_url *out, char *err, size_t errlen)
{
    for (size_t k = *i; !authority_end(url[k]); k++)
        if (url[k] == '@')
            return fail_at(err, errlen, k, "user info is not supported");
    size_t p = *i;
    if (url[p] == '[') {
        size_t start = ++p;
        while (v6_char(url[p]))
            p++;
        if (url[p] != ']' || p == start)
            return fail_at(err, errlen, p, "malformed IPv6 literal");
        out->host_off = start;
        out->host_len = p - start;
        out->ipv6_literal = true;
        p++;
    } else {
        size_t start = p;
        while (host_char(url[p]))
            p++;
        out->host_off = start;
        out->host_len = p - start;
        if (out->host_len == 0)
            return fail_at(err, errlen, p, url[p] == '@' ? "user info is not supported" : "empty host");
    }
    if (out->host_len > HK_TRACKER_HOST_MAX)
        return fail_at(err, errlen, out->host_off, "host name too long");
    *i = p;
    return 0;
}

/* An optional ":port" at url[*i] (advancing *i past it); a udp URL must have one. */
static int parse_port(const char *url, size_t *i, hk_tracker_url *out, char *err, size_t errlen)
{
    size_t p = *i;
    if (url[p] == ':') {
        size_t start = ++p;
        uint32_t port = 0;
        while (url[p] >= '0' && url[p] <= '9') {
            port = port * 10 + (uint32_t)(url[p] - '0');
            if (port > 65535)
                break;
            p++;
        }
        if (p == start || port == 0 || port > 65535)
            return fail_at(err, errlen, start, "port out of range (1..65535)");
        out->port = (uint16_t)port;
    }
    if (out->port == 0)
        return fail_at(err, errlen, p, "a udp tracker URL needs a port");
    *i = p;
    return 0;
}

/* The path and query at url[i], up to the end or a fragment. */
static int parse_path(const char *url, size_t i, hk_tracker_url *out, char *err, size_t errlen)
{
    if (!authority_end(url[i]))
        return fail_at(err, errlen, i,
                       url[i] == '@' ? "user info is not supported" : "unexpected byte after the host");
    size_t start = i;
    for (; url[i] != '\0' && url[i] != '#'; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f)
            return fail_at(err, errlen, i, "space or control byte in the URL");
    }
    out->path_off = start;
    out->path_len = i - start;
    return 0;
}

int hk_tracker_url_parse(const char *url, hk_tracker_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t i = parse_scheme(url, out, err, errlen);
    if (i == 0)
        return -1;
    if (parse_host(url, &i, out, err, errlen) < 0 || parse_port(url, &i, out, err, errlen) < 0)
        return -1;
    return parse_path(url, i, out, err, errlen);
}

const char *hk_announce_event_name(hk_announce_event e)
{
    switch (e) {
    case HK_EVENT_COMPLETED: return "completed";
    case HK_EVENT_STARTED: return "started";
    case HK_EVENT_STOPPED: return "stopped";
    case HK_EVENT_NONE: break;
    }
    return "";
}

/* ---- building ---- */

typedef struct out_buf {
    char *buf;
    size_t cap, len;
} out_buf;

static void put_bytes(out_buf *o, const char *s, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (o->len + 1 < o->cap)
            o->buf[o->len] = s[k];
        o->len++;
    }
}

static void put_str(out_buf *o, const char *s)
{
    put_bytes(o, s, strlen(s));
}

static void put_u64(out_buf *o, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    put_bytes(o, tmp, (size_t)n);
}

static bool unreserved(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

static void put_encoded(out_buf *o, const uint8_t *bytes, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t k = 0; k < n; k++) {
        if (unreserved(bytes[k])) {
            put_bytes(o, (const char *)&bytes[k], 1);
        } else {
            char e[3] = { '%', hex[bytes[k] >> 4], hex[bytes[k] & 15] };
            put_bytes(o, e, 3);
        }
    }
}

static void finish(out_buf *o)
{
    if (o->cap > 0)
        o->buf[o->len < o->cap ? o->len : o->cap - 1] = '\0';
}

size_t hk_percent_encode(const uint8_t *bytes, size_t n, char *buf, size_t cap)
{
    out_buf o = { buf, cap, 0 };
    put_encoded(&o, bytes, n);
    finish(&o);
    return o.len;
}

size_t hk_http_announce_url(const char *base, const hk_announce_params *p, char *buf, size_t cap)
{
    out_buf o = { buf, cap, 0 };
    const char *hash = strchr(base, '#');
    size_t base_len = hash ? (size_t)(hash - base) : strlen(base);
    put_bytes(&o, base, base_len);
    const char *q = memchr(base, '?', base_len);
    if (!q)
        put_str(&o, "?");
    else if (base[base_len - 1] != '?' && base[base_len - 1] != '&')
        put_str(&o, "&");
    put_str(&o, "info_hash=");
    put_encoded(&o, p->info_hash, 20);
    put_str(&o, "&peer_id=");
    put_encoded(&o, p->peer_id, 20);
    put_str(&o, "&port=");
    put_u64(&o, p->port);
    put_str(&o, "&uploaded=");
    put_u64(&o, p->uploaded);
    put_str(&o, "&downloaded=");
    put_u64(&o, p->downloaded);
    put_str(&o, "&left=");
    put_u64(&o, p->left);
    put_str(&o, "&compact=1&numwant=");
    if (p->numwant < 0) {
        put_str(&o, "-");
        put_u64(&o, (uint64_t)(-(int64_t)p->numwant));
    } else {
        put_u64(&o, (uint64_t)p->numwant);
    }
    put_str(&o, "&no_peer_id=1");
    if (p->event != HK_EVENT_NONE) {
        put_str(&o, "&event=");
        put_str(&o, hk_announce_event_name(p->event));
    }
    char key[9];
    snprintf(key, sizeof key, "%08X", (unsigned)p->key);
    put_str(&o, "&key=");
    put_str(&o, key);
    if (p->tracker_id && p->tracker_id_len > 0) {
        put_str(&o, "&trackerid=");
        put_encoded(&o, p->tracker_id, p->tracker_id_len);
    }
    finish(&o);
    return o.len;
}

/* ---- replies ---- */

void hk_printable(const uint8_t *bytes, size_t n, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    size_t keep = n;
    bool cut = false;
    if (keep > cap - 1) {
        cut = true;
        keep = cap - 1;
    }
    for (size_t k = 0; k < keep; k++)
        buf[k] = (bytes[k] >= 0x20 && bytes[k] <= 0x7e) ? (char)bytes[k] : '?';
    if (cut && keep >= 3)
        memcpy(buf + keep - 3, "...", 3);
    buf[keep] = '\0';
}

static int get_count(const ben_doc *d, const char *key, int64_t *out, char *err, size_t errlen)
{
    *out = -1;
    int64_t idx = ben_dict_find(d, 0, key);
    if (idx < 0)
        return 0;
    int64_t v;
    if (!ben_get_int(d, idx, &v)) {
        set_err(err, errlen, "at byte %zu: `%s` is not an integer", d->tok[idx].start, key);
        return -1;
    }
    if (v < 0) {
        set_err(err, errlen, "at byte %zu: `%s` is negative", d->tok[idx].start, key);
        return -1;
    }
    *out = v;
    return 0;
}

static int get_text(const ben_doc *d, const char *key, char *dst, size_t cap, bool *present, char *err,
                    size_t errlen)
{
    *present = false;
    int64_t idx = ben_dict_find(d, 0, key);
    if (idx < 0)
        return 0;
    const uint8_t *s;
    size_t n;
    if (!ben_get_str(d, idx, &s, &n)) {
        set_err(err, errlen, "at byte %zu: `%s` is not a string", d->tok[idx].start, key);
        return -1;
    }
    hk_printable(s, n, dst, cap);
    *present = true;
    return 0;
}

int hk_http_reply_decode(const uint8_t *body, size_t len, hk_announce_reply *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->interval = out->min_interval = out->complete = out->incomplete = -1;
    if (len == 0) {
        return fail_at(err, errlen, 0, "empty reply");
    }
    ben_doc d;
    ben_error be;
    if (ben_decode(body, len, HK_REPLY_MAX_TOKENS, &d, &be) != 0) {
        set_err(err, errlen, "at byte %zu: not bencode: %s", be.offset, be.what);
        return -1;
    }
    int rc = -1;
    if (d.tok[0].type != BEN_DICT) {
        fail_at(err, errlen, 0, "the reply is not a dictionary");
        goto out;
    }
    bool present;
    if (get_text(&d, "failure reason", out->failure, sizeof out->failure, &present, err, errlen) != 0)
        goto out;
    out->failed = present;
    if (get_text(&d, "warning message", out->warning, sizeof out->warning, &out->has_warning, err, errlen) != 0)
        goto out;
    if (get_count(&d, "interval", &out->interval, err, errlen) != 0 ||
        get_count(&d, "min interval", &out->min_interval, err, errlen) != 0 ||
        get_count(&d, "complete", &out->complete, err, errlen) != 0 ||
        get_count(&d, "incomplete", &out->incomplete, err, errlen) != 0)
        goto out;
    int64_t idx = ben_dict_find(&d, 0, "tracker id");
    if (idx >= 0) {
        const uint8_t *s;
        size_t n;
        if (!ben_get_str(&d, idx, &s, &n)) {
            set_err(err, errlen, "at byte %zu: `%s` is not a string", d.tok[idx].start, "tracker id");
            goto out;
        }
        if (n > HK_TRACKER_ID_MAX) {
            set_err(err, errlen, "at byte %zu: `%s` is too long", d.tok[idx].start, "tracker id");
            goto out;
        }
        if (n > 0) {
            memcpy(out->tracker_id, s, n);
            out->tracker_id_len = (uint8_t)n;
            out->has_tracker_id = true;
        }
    }
    rc = 0;
out:
    ben_doc_free(&d);
    return rc;
}
