/* config_file: reading hekate's configuration file (see config_file.h): the file read whole, then fed line by line
 * to libinih by a reader that counts lines (so every error names its line), each key mapped to its option row. */
#include "config_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

int hk_conf_read(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    *text = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* O_NONBLOCK: a FIFO does not block the open */
    if (fd < 0) {
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    const char *why = NULL;
    if (fstat(fd, &st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    else if ((uint64_t)st.st_size > HK_CONF_MAX_BYTES)
        why = "larger than 1 MiB";
    char *buf = why ? NULL : malloc((size_t)st.st_size + 1);
    if (!why && !buf)
        why = "out of memory";
    size_t got = 0;
    while (!why && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* shrank meanwhile: what was read */
        got += (size_t)n;
    }
    close(fd);
    if (why) {
        free(buf);
        snprintf(err, errlen, "cannot read config file %s: %s", path, why);
        return -1;
    }
    buf[got] = '\0';
    *text = buf;
    *len = got;
    return 0;
}

typedef struct conf {
    hk_options *o;
    const char *name;
    const char *text;
    size_t len, at;
    unsigned line;              /* of the line libinih works on */
    bool *given;
    unsigned *first;            /* per option row: the line that set it, 0 if none */
    bool failed;
    char *err;
    size_t errlen;
} conf;

__attribute__((format(printf, 2, 3))) static int fail(conf *c, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s:%u: %s", c->name, c->line, msg);
    c->failed = true;
    return 0;
}

/* libinih's fgets: the next line of the text (one call per line, so c->line is the line the handler sees); a line
 * too long or holding a NUL is an error that ends the reading. */
static char *next_line(char *str, int num, void *stream)
{
    conf *c = stream;
    if (c->failed || c->at >= c->len)
        return NULL;
    c->line++;
    size_t n = 0;
    bool nul = false, long_line = false;
    while (c->at < c->len && c->text[c->at] != '\n') {
        char ch = c->text[c->at++];
        nul |= ch == '\0';
        if (n + 2 < (size_t)num)
            str[n++] = ch;
        else
            long_line = true;
    }
    if (c->at < c->len)
        c->at++; /* the '\n' */
    str[n] = '\0';
    if (nul)
        return fail(c, "the line holds a NUL byte"), NULL;
    if (long_line)
        return fail(c, "line longer than %d characters", HK_CONF_MAX_LINE - 3), NULL;
    return str;
}

static int add_dir(conf *c, const char *value)
{
    hk_options *o = c->o;
    char **d = realloc(o->dirs, (o->ndirs + 1) * sizeof *d);
    if (!d)
        return fail(c, "out of memory");
    o->dirs = d;
    o->dirs_owned = true;
    if (!(d[o->ndirs] = strdup(value)))
        return fail(c, "out of memory");
    o->ndirs++;
    return 1;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
    conf *c = user;
    if (c->failed)
        return 0;
    if (section[0] && strcasecmp(section, "hekate") != 0)
        return fail(c, "unknown section [%s] (keys go at the top or in [hekate])", section);
    if (!value[0])
        return fail(c, "key '%s' has no value", key);
    if (strcasecmp(key, "dir") == 0)
        return add_dir(c, value);
    int i = hk_options_row_find(key);
    if (i < 0)
        return fail(c, "unknown key '%s'", key);
    if (c->first[i] && strcasecmp(hk_options_row_name((size_t)i), "dht-bootstrap") != 0) /* that one repeats */
        return fail(c, "key '%s' given twice (first at line %u)", key, c->first[i]);
    c->first[i] = c->line;
    char msg[512];
    bool given;
    if (hk_options_row_set(c->o, (size_t)i, value, &given, msg, sizeof msg) != 0)
        return fail(c, "%s", msg);
    c->given[i] = given;
    return 1;
}

int hk_conf_apply(hk_options *o, const char *name, const char *text, size_t len, bool *given, char *err,
                  size_t errlen)
{
    conf c = { .o = o, .name = name, .text = text, .len = len, .given = given, .err = err, .errlen = errlen };
    c.first = calloc(hk_options_nrows(), sizeof *c.first);
    if (!c.first) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    ini_allow_multiline = false;  /* an indented line is a line of its own, not a continuation */
    ini_stop_on_first_error = true;
    ini_max_line = HK_CONF_MAX_LINE;
    int r = ini_parse_stream(next_line, &c, on_key, &c);
    free(c.first);
    if (c.failed)
        return -1;
    if (r > 0) {
        c.line = (unsigned)r;
        fail(&c, "not a `key = value` line nor a [section]");
        return -1;
    }
    if (r < 0) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    return 0;
}
