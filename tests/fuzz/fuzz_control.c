/* Fuzz target for the control socket's protocol (backend-real/lib/ops/control_proto.c): the request parser and the
 * JSON string writer.
 *
 * Input: any bytes, taken as one request line (the server hands the parser a line without its '\n'; bytes after a
 * '\n' here are part of the line and must be refused as a control byte). The parse must return 0 or -1, never read
 * past the input (the line is its own allocation), and agree with an independent reading:
 *   -1  err is NUL-terminated and not empty;
 *   0   the line is at most HK_CTL_MAX_LINE bytes (plus an optional '\r') and holds no control byte; the command
 *       is the first word and hk_ctl_cmd_name gives it back; TORRENTS: top in 1..HK_CTL_MAX_TOP; ADD: the path is
 *       not empty, NUL-terminated within the buffer, found in the line, and neither starts nor ends with a blank.
 * The parse runs twice with the same result. The input is also written as a JSON string into a buffer of a size
 * taken from the input: the text never passes the buffer, is NUL-terminated, holds no raw control byte, and when it
 * did not overflow it decodes (\" \\ \u00XX, bytes as they are) back to the input byte for byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parse(const char *line, size_t size)
{
    static hk_ctl_request req, req2;
    char err[256], err2[256];
    int r = hk_ctl_parse(line, size, &req, err, sizeof err);
    int r2 = hk_ctl_parse(line, size, &req2, err2, sizeof err2);
    if (r != r2 || (r == 0 && memcmp(&req, &req2, sizeof req) != 0) || (r != 0 && strcmp(err, err2) != 0))
        abort();
    if (r != 0) {
        if (r != -1 || memchr(err, '\0', sizeof err) == NULL || err[0] == '\0')
            abort();
        return;
    }
    size_t len = size > 0 && line[size - 1] == '\r' ? size - 1 : size;
    if (len > HK_CTL_MAX_LINE)
        abort();
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)line[i] < 0x20 && line[i] != '\t') || line[i] == 0x7f)
            abort();
    size_t at = 0;
    while (at < len && (line[at] == ' ' || line[at] == '\t'))
        at++;
    const char *name = hk_ctl_cmd_name(req.cmd);
    size_t n = strlen(name);
    if (len - at < n || memcmp(line + at, name, n) != 0 ||
        (at + n < len && line[at + n] != ' ' && line[at + n] != '\t'))
        abort();
    if (req.cmd == HK_CTL_TORRENTS && (req.top < 1 || req.top > HK_CTL_MAX_TOP))
        abort();
    if (req.cmd == HK_CTL_ADD) {
        size_t pl = strnlen(req.path, sizeof req.path);
        if (pl == 0 || pl == sizeof req.path || pl > len || req.path[0] == ' ' || req.path[0] == '\t' ||
            req.path[pl - 1] == ' ' || req.path[pl - 1] == '\t')
            abort();
        if (!memmem(line, len, req.path, pl))
            abort();
    }
}

static int unhex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void check_json(const uint8_t *data, size_t size)
{
    size_t cap = size ? data[0] : 0; /* 0..255 bytes, so that overflows happen */
    char *buf = malloc(cap ? cap : 1);
    hk_jw w;
    hk_jw_init(&w, buf, cap);
    hk_jw_string(&w, (const char *)data, size);
    if (cap == 0) {
        if (!w.overflow)
            abort();
        free(buf);
        return;
    }
    if (w.len >= cap || buf[w.len] != '\0' || strlen(buf) != w.len)
        abort();
    for (size_t i = 0; i < w.len; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            abort();
    if (!w.overflow) {
        if (w.len < 2 || buf[0] != '"' || buf[w.len - 1] != '"')
            abort();
        size_t o = 0;
        for (size_t i = 1; i + 1 < w.len; o++) {
            uint8_t b;
            if (buf[i] != '\\') {
                b = (uint8_t)buf[i++];
            } else if (buf[i + 1] == '"' || buf[i + 1] == '\\') {
                b = (uint8_t)buf[i + 1];
                i += 2;
            } else {
                if (i + 6 > w.len - 1 || memcmp(buf + i, "\\u00", 4) != 0 || unhex(buf[i + 4]) < 0 ||
                    unhex(buf[i + 5]) < 0)
                    abort();
                b = (uint8_t)(unhex(buf[i + 4]) * 16 + unhex(buf[i + 5]));
                i += 6;
            }
            if (o >= size || b != data[o])
                abort();
        }
        if (o != size)
            abort();
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = malloc(size ? size : 1); /* its own allocation: a read past it is caught */
    memcpy(line, data, size);
    check_parse(line, size);
    free(line);
    check_json(data, size);
    return 0;
}
