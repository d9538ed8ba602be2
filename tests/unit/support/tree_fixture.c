/* tree_fixture: the temporary folder tree of the store's confinement tests (contract in tree_fixture.h). */
#include "tree_fixture.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixtures.h"
#include "torrent_builder.h"

static char *g_root;

void tf_tree_make(const char *tag)
{
    g_root = fx_mkdtemp(tag);
    cr_assert_not_null(g_root, "mkdtemp /tmp/hekate-%s-XXXXXX", tag);
}

void tf_tree_remove(void)
{
    if (g_root) {
        fx_rmtree(g_root);
        cr_assert_neq(access(g_root, F_OK), 0, "%s is still there", g_root);
    }
    free(g_root);
    g_root = NULL;
}

char *tf_path(const char *fmt, ...)
{
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ % 8];
    int n = snprintf(b, 4096, "%s/", g_root);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, (size_t)(4096 - n), fmt, ap);
    va_end(ap);
    return b;
}

void tf_mkdir(const char *path)
{
    cr_assert_eq(mkdir(path, 0755), 0, "mkdir %s: %s", path, strerror(errno));
}

void tf_write_fill(const char *path, size_t len, uint8_t fill)
{
    uint8_t *buf = malloc(len);
    cr_assert_not_null(buf);
    memset(buf, fill, len);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0, "create %s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, buf, len), (ssize_t)len);
    close(fd);
    free(buf);
}

mi_torrent *tf_write_torrent(const char *tpath, const char *name, bool multi, uint64_t len)
{
    tb_file files[2] = { { multi ? "b" : NULL, len, false }, { "c", 3000, false } };
    size_t n;
    uint8_t *bytes = tb_torrent(name, 16384, files, multi ? 2 : 1, &n);
    cr_assert_not_null(bytes);
    FILE *f = fopen(tf_path("%s", tpath), "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    fclose(f);
    mi_torrent *mi;
    mi_error err;
    cr_assert_eq(mi_parse(bytes, n, &mi, &err), 0, "mi_parse: %s", err.what);
    free(bytes);
    return mi;
}
