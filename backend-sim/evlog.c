/* evlog: owns the event log file and its running SHA-256 (see evlog.h). */
#include "evlog.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>

struct evlog {
    FILE *f;
    EVP_MD_CTX *md;
    uint64_t lines;
    char *buf;
    size_t cap, len; /* write buffer, flushed to the file and the hash together */
};

evlog *evlog_open(const char *path)
{
    evlog *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->cap = 1u << 20;
    l->buf = malloc(l->cap);
    l->md = EVP_MD_CTX_new();
    if (!l->buf || !l->md || EVP_DigestInit_ex(l->md, EVP_sha256(), NULL) != 1)
        goto fail;
    if (path) {
        l->f = fopen(path, "w");
        if (!l->f)
            goto fail;
    }
    return l;
fail:
    EVP_MD_CTX_free(l->md);
    free(l->buf);
    free(l);
    return NULL;
}

static void flush(evlog *l)
{
    if (l->len == 0)
        return;
    EVP_DigestUpdate(l->md, l->buf, l->len);
    if (l->f)
        fwrite(l->buf, 1, l->len, l->f);
    l->len = 0;
}

void evlog_line(evlog *l, hk_time t, const char *fmt, ...)
{
    if (l->cap - l->len < 1024)
        flush(l);
    char *p = l->buf + l->len;
    size_t room = 1024;
    int n = snprintf(p, room, "%llu.%09llu ", (unsigned long long)(t / HK_NS_PER_SEC),
                     (unsigned long long)(t % HK_NS_PER_SEC));
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(p + n, room - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t used = (size_t)n + (size_t)m;
    if (used > room - 2)
        used = room - 2; /* truncated line */
    p[used++] = '\n';
    l->len += used;
    l->lines++;
}

uint64_t evlog_count(const evlog *l)
{
    return l->lines;
}

int evlog_close(evlog *l, char hex[65])
{
    flush(l);
    unsigned char d[32];
    unsigned int dl = 0;
    EVP_DigestFinal_ex(l->md, d, &dl);
    for (unsigned i = 0; i < 32; i++) {
        static const char x[] = "0123456789abcdef";
        hex[2 * i] = x[d[i] >> 4];
        hex[2 * i + 1] = x[d[i] & 15];
    }
    hex[64] = '\0';
    int rc = 0;
    if (l->f && (ferror(l->f) || fclose(l->f) != 0))
        rc = -1;
    EVP_MD_CTX_free(l->md);
    free(l->buf);
    free(l);
    return rc;
}
