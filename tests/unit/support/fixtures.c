/* fixtures: temporary directories, whole-file reads and writes, and shell commands for unit tests. */
#include "fixtures.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char *vformat(const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *s = n < 0 ? NULL : malloc((size_t)n + 1);
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, again);
    va_end(again);
    return s;
}

char *fx_mkdtemp(const char *tag)
{
    char *path = malloc(strlen(tag) + 32);
    if (!path)
        return NULL;
    sprintf(path, "/tmp/hekate-%s-XXXXXX", tag);
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

void fx_rmtree(const char *dir)
{
    if (!dir || strncmp(dir, "/tmp/hekate-", 12) != 0 || strstr(dir, "..") || strchr(dir, '\''))
        return;
    fx_sh("rm -rf '%s'", dir);
}

uint8_t *fx_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        uint8_t *bigger = realloc(buf, cap * 2 + 1);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = n;
    }
    return buf;
}

int fx_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

static int exit_status(int raw)
{
    if (raw == -1 || !WIFEXITED(raw))
        return -1;
    return WEXITSTATUS(raw);
}

int fx_sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = vformat(fmt, ap);
    va_end(ap);
    if (!cmd)
        return -1;
    fflush(NULL);
    int rc = exit_status(system(cmd));
    free(cmd);
    return rc;
}

char *fx_sh_output(int *status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = vformat(fmt, ap);
    va_end(ap);
    if (!cmd)
        return NULL;
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p)
        return NULL;
    size_t cap = 4096, n = 0;
    char *out = malloc(cap);
    while (out) {
        n += fread(out + n, 1, cap - n - 1, p);
        if (feof(p) || ferror(p))
            break;
        if (n + 1 == cap) {
            char *bigger = realloc(out, cap * 2);
            if (!bigger) {
                free(out);
                out = NULL;
                break;
            }
            out = bigger;
            cap *= 2;
        }
    }
    int raw = pclose(p);
    if (out)
        out[n] = '\0';
    *status = exit_status(raw);
    return out;
}

int fx_make_lt_hybrid(const char *dir, uint32_t piece_length)
{
    return fx_sh("cd '%s' && mkdir d && head -c 100000 /dev/urandom > d/big && head -c 20000 /dev/urandom > "
                 "d/small && head -c 5000 /dev/urandom > d/tiny && /usr/bin/python3 -c '\n"
                 "import libtorrent as lt\n"
                 "fs = lt.file_storage(); lt.add_files(fs, \"d\")\n"
                 "ct = lt.create_torrent(fs, %u); lt.set_piece_hashes(ct, \".\")\n"
                 "open(\"h.torrent\", \"wb\").write(lt.bencode(ct.generate()))'",
                 dir, piece_length);
}
