/* control_proto: the control socket's protocol, pure (no I/O): parsing one request line and writing JSON replies.
 *
 * Contract
 * --------
 * A request is one line of at most HK_CTL_MAX_LINE bytes (the '\n' not counted, a trailing '\r' ignored):
 * a command and its arguments separated by spaces or tabs:
 *   status | torrents [--top N] | torrent INFOHASH | peers | add PATH | remove INFOHASH | rescan |
 *   verify INFOHASH | reload-config
 * INFOHASH is 40 hex digits (either case); N is 1..HK_CTL_MAX_TOP (default HK_CTL_DEFAULT_TOP); PATH is the rest of
 * the line after "add" and the blanks following it (it may hold spaces). A NUL or any other control byte (below 0x20
 * except tab, or 0x7f) anywhere in the line is refused. hk_ctl_parse returns 0 with *req filled in, or -1 with err
 * (NUL-terminated, not empty when errlen > 0) naming what is wrong; it never reads past len.
 *
 * A reply is one JSON object on one line ending in '\n': {"ok":true,...} or {"ok":false,"error":"..."}. hk_jw is a
 * writer into a caller's buffer of fixed capacity: every function appends what fits and records an overflow
 * (hk_jw.overflow) instead of writing past it; the text is NUL-terminated whenever cap > 0. Strings are escaped
 * per RFC 8259 (", \, and control bytes as \uXXXX); bytes >= 0x80 that are not valid UTF-8 are written as \u00XX so
 * the reply is always valid UTF-8 JSON.
 */
#ifndef HEKATE_CONTROL_PROTO_H
#define HEKATE_CONTROL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HK_CTL_MAX_LINE 4096     /* bytes of one request, without its '\n' */
#define HK_CTL_DEFAULT_TOP 20    /* torrents listed without --top */
#define HK_CTL_MAX_TOP 1000      /* largest --top */

typedef enum hk_ctl_cmd {
    HK_CTL_STATUS = 0,
    HK_CTL_TORRENTS,
    HK_CTL_TORRENT,
    HK_CTL_PEERS,
    HK_CTL_ADD,
    HK_CTL_REMOVE,
    HK_CTL_RESCAN,
    HK_CTL_VERIFY,
    HK_CTL_RELOAD_CONFIG,
} hk_ctl_cmd;

typedef struct hk_ctl_request {
    hk_ctl_cmd cmd;
    uint32_t top;                       /* TORRENTS */
    uint8_t info_hash[20];              /* TORRENT, REMOVE, VERIFY */
    char path[HK_CTL_MAX_LINE + 1];     /* ADD */
} hk_ctl_request;

/* Parses one line (without its '\n'): 0, or -1 with err set. */
int hk_ctl_parse(const char *line, size_t len, hk_ctl_request *req, char *err, size_t errlen);
/* The command's name as it is typed ("reload-config"). */
const char *hk_ctl_cmd_name(hk_ctl_cmd cmd);

typedef struct hk_jw {
    char *buf;
    size_t cap, len;
    bool overflow;                      /* something did not fit: the text is cut */
} hk_jw;

void hk_jw_init(hk_jw *w, char *buf, size_t cap);
void hk_jw_raw(hk_jw *w, const char *text);                 /* as it is */
void hk_jw_string(hk_jw *w, const char *s, size_t n);      /* "..." escaped */
void hk_jw_key(hk_jw *w, const char *key);                 /* "key": (a comma first unless after { or [) */
void hk_jw_u64(hk_jw *w, uint64_t v);
void hk_jw_hex(hk_jw *w, const uint8_t *bytes, size_t n);  /* "..." of lowercase hex digits */
void hk_jw_bool(hk_jw *w, bool v);
void hk_jw_double(hk_jw *w, double v);                     /* 3 decimals */
/* Convenience: "key":value members. */
void hk_jw_kstr(hk_jw *w, const char *key, const char *s);
void hk_jw_ku64(hk_jw *w, const char *key, uint64_t v);
/* A whole error reply into w (reset first): {"ok":false,"error":"<msg>"}\n. */
void hk_ctl_error_reply(hk_jw *w, const char *msg);

/* 40 hex digits to 20 bytes: 0, or -1. */
int hk_ctl_parse_hex20(const char *s, size_t n, uint8_t out[20]);

#endif
