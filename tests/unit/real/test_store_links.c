/* Tests of --follow-links in the store (store.h Confinement, store_path.h sp_open_beneath): data reached through
 * symbolic links that stay below a served folder is served (relative and absolute links, a link to the torrent's
 * folder of a multi-file torrent, a link that climbs with ".." and comes back down); a link leading outside, a loop,
 * or a folder outside every served folder is refused; and a link swapped after the add to point outside is never
 * followed when the data is opened again. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "metainfo.h"
#include "store.h"
#include "torrent_builder.h"

static char g_root[64];

static void make_root(void)
{
    snprintf(g_root, sizeof g_root, "/tmp/hekate-links-XXXXXX");
    cr_assert_not_null(mkdtemp(g_root));
}

static void remove_root(void)
{
    if (strncmp(g_root, "/tmp/hekate-links-", 18) == 0 && strchr(g_root, '\'') == NULL) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
        cr_assert_eq(system(cmd), 0);
    }
}

TestSuite(store_links, .init = make_root, .fini = remove_root, .timeout = 30);

static char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *pathf(const char *fmt, ...)
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

static void mkdir_ok(const char *p)
{
    cr_assert_eq(mkdir(p, 0755), 0, "mkdir %s: %s", p, strerror(errno));
}

static void symlink_ok(const char *target, const char *at)
{
    cr_assert_eq(symlink(target, at), 0, "symlink %s -> %s: %s", at, target, strerror(errno));
}

static void write_fill(const char *path, size_t len, uint8_t fill)
{
    uint8_t *buf = malloc(len);
    memset(buf, fill, len);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0, "create %s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, buf, len), (ssize_t)len);
    close(fd);
    free(buf);
}

/* <g_root>/<tpath> holding a torrent `name`: one file of len bytes, or (multi) files b and c below name. */
static mi_torrent *write_torrent(const char *tpath, const char *name, bool multi, uint64_t len)
{
    tb_file files[2] = { { multi ? "b" : NULL, len, false }, { "c", 3000, false } };
    size_t n;
    uint8_t *bytes = tb_torrent(name, 16384, files, multi ? 2 : 1, &n);
    cr_assert_not_null(bytes);
    FILE *f = fopen(pathf("%s", tpath), "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    fclose(f);
    mi_torrent *mi;
    mi_error err;
    cr_assert_eq(mi_parse(bytes, n, &mi, &err), 0, "mi_parse: %s", err.what);
    free(bytes);
    return mi;
}

static int first_byte(hk_store *st, uint64_t h, uint32_t file)
{
    hk_extent e = { h, file, 0, 1 };
    struct iovec iov;
    if (hk_store_pin(st, &e, &iov, NULL) != 0)
        return -1;
    int b = ((const uint8_t *)iov.iov_base)[0];
    hk_store_unpin(st, &e);
    return b;
}

/* A store following links below <g_root>/served (and, when data is set, <g_root>/data too). */
static hk_store *store_following(bool follow, bool data)
{
    hk_store *st = hk_store_new(NULL);
    const char *roots[] = { pathf("served"), pathf("data") };
    cr_assert_eq(hk_store_set_links(st, follow, roots, data ? 2 : 1), 0);
    return st;
}

static uint64_t add(hk_store *st, const char *tpath, const mi_torrent *mi, char *err, size_t errlen)
{
    err[0] = '\0';
    return hk_store_add(st, pathf("%s", tpath), mi, err, errlen);
}

Test(store_links, links_inside_are_followed_only_when_asked)
{
    mkdir_ok(pathf("served"));
    mkdir_ok(pathf("served/t"));
    mkdir_ok(pathf("served/pool"));
    write_fill(pathf("served/pool/real.bin"), 20000, 0x51);
    symlink_ok("../pool/real.bin", pathf("served/t/rel.bin"));           /* relative, climbing and back */
    symlink_ok(pathf("served/pool/real.bin"), pathf("served/t/abs.bin")); /* absolute, below the root */
    mi_torrent *rel = write_torrent("served/t/rel.torrent", "rel.bin", false, 20000);
    mi_torrent *abs = write_torrent("served/t/abs.torrent", "abs.bin", false, 20000);
    char err[512];

    hk_store *st = store_following(false, false);
    cr_assert_eq(add(st, "served/t/rel.torrent", rel, err, sizeof err), 0u);
    cr_assert_not_null(strstr(err, "rel.bin: is a symbolic link"), "%s", err);
    hk_store_free(st);

    st = store_following(true, false);
    uint64_t h1 = add(st, "served/t/rel.torrent", rel, err, sizeof err);
    cr_assert_neq(h1, 0u, "%s", err);
    uint64_t h2 = add(st, "served/t/abs.torrent", abs, err, sizeof err);
    cr_assert_neq(h2, 0u, "%s", err);
    cr_assert_eq(first_byte(st, h1, 0), 0x51);
    cr_assert_eq(first_byte(st, h2, 0), 0x51);
    cr_assert_eq(hk_store_check(st), 0u, "nothing changed");
    hk_store_free(st);
    mi_free(rel);
    mi_free(abs);
}

Test(store_links, a_linked_torrent_folder_of_a_multi_file_torrent)
{
    mkdir_ok(pathf("served"));
    mkdir_ok(pathf("served/t"));
    mkdir_ok(pathf("served/store"));
    mkdir_ok(pathf("served/store/Album.v2"));
    write_fill(pathf("served/store/Album.v2/b"), 40000, 0x61);
    write_fill(pathf("served/store/Album.v2/c"), 3000, 0x62);
    symlink_ok("../store/Album.v2", pathf("served/t/Album"));
    mi_torrent *mi = write_torrent("served/t/album.torrent", "Album", true, 40000);
    hk_store *st = store_following(true, false);
    char err[512];
    uint64_t h = add(st, "served/t/album.torrent", mi, err, sizeof err);
    cr_assert_neq(h, 0u, "%s", err);
    cr_assert_eq(first_byte(st, h, 0), 0x61);
    cr_assert_eq(first_byte(st, h, 1), 0x62);
    hk_store_free(st);
    mi_free(mi);
}

Test(store_links, links_leading_outside_and_loops_are_refused)
{
    mkdir_ok(pathf("served"));
    mkdir_ok(pathf("outside"));
    write_fill(pathf("outside/secret.bin"), 20000, 0x66);
    symlink_ok(pathf("outside/secret.bin"), pathf("served/abs.bin"));
    symlink_ok("../outside/secret.bin", pathf("served/rel.bin"));
    symlink_ok("loop2.bin", pathf("served/loop1.bin"));
    symlink_ok("loop1.bin", pathf("served/loop2.bin"));
    symlink_ok("/etc/passwd", pathf("served/etc.bin"));
    const char *names[] = { "abs.bin", "rel.bin", "loop1.bin", "etc.bin" };
    const char *want[] = { "leads outside the served folders", "leads outside the served folders",
                           "too many levels of symbolic links", "leads outside the served folders" };
    hk_store *st = store_following(true, false);
    for (size_t i = 0; i < 4; i++) {
        char tpath[64], err[512];
        snprintf(tpath, sizeof tpath, "served/%zu.torrent", i);
        mi_torrent *mi = write_torrent(tpath, names[i], false, 20000);
        cr_assert_eq(add(st, tpath, mi, err, sizeof err), 0u, "%s was served", names[i]);
        cr_assert_not_null(strstr(err, want[i]), "%s: %s", names[i], err);
        mi_free(mi);
    }
    hk_store_free(st);
}

Test(store_links, a_folder_outside_every_served_folder_is_refused)
{
    mkdir_ok(pathf("served"));
    mkdir_ok(pathf("elsewhere"));
    write_fill(pathf("elsewhere/x.bin"), 20000, 0x11);
    mi_torrent *mi = write_torrent("elsewhere/x.torrent", "x.bin", false, 20000);
    symlink_ok(pathf("elsewhere"), pathf("served/door")); /* reached as served/door/x.torrent */
    hk_store *st = store_following(false, false);
    char err[512];
    cr_assert_eq(add(st, "served/door/x.torrent", mi, err, sizeof err), 0u);
    cr_assert_not_null(strstr(err, "is outside the served folders"), "%s", err);
    hk_store_free(st);
    mi_free(mi);
}

Test(store_links, a_link_swapped_to_point_outside_is_never_followed_again)
{
    mkdir_ok(pathf("served"));
    mkdir_ok(pathf("served/pool"));
    mkdir_ok(pathf("outside"));
    write_fill(pathf("served/pool/real.bin"), 20000, 0x51);
    write_fill(pathf("outside/secret.bin"), 20000, 0x66);
    symlink_ok("pool/real.bin", pathf("served/x.bin"));
    mi_torrent *mi = write_torrent("served/x.torrent", "x.bin", false, 20000);
    hk_store *st = store_following(true, false);
    char err[512];
    uint64_t h = add(st, "served/x.torrent", mi, err, sizeof err);
    cr_assert_neq(h, 0u, "%s", err);
    /* swapped before the first open (the data is opened lazily): the open refuses it */
    cr_assert_eq(unlink(pathf("served/x.bin")), 0);
    symlink_ok(pathf("outside/secret.bin"), pathf("served/x.bin"));
    cr_assert_eq(first_byte(st, h, 0), -1, "nothing read through the swapped link");
    const char *why = NULL;
    cr_assert(hk_store_failed(st, h, &why));
    cr_assert_not_null(strstr(why, "leads outside the served folders"), "%s", why);
    hk_store_free(st);

    /* swapped while mapped: the periodic check sees it, and a re-open after eviction would refuse it */
    cr_assert_eq(unlink(pathf("served/x.bin")), 0);
    symlink_ok("pool/real.bin", pathf("served/x.bin"));
    st = store_following(true, false);
    h = add(st, "served/x.torrent", mi, err, sizeof err);
    cr_assert_neq(h, 0u, "%s", err);
    cr_assert_eq(first_byte(st, h, 0), 0x51);
    cr_assert_eq(unlink(pathf("served/x.bin")), 0);
    symlink_ok("../outside/secret.bin", pathf("served/x.bin"));
    cr_assert_geq(hk_store_check(st), 1u);
    cr_assert(hk_store_failed(st, h, &why));
    hk_store_free(st);
    mi_free(mi);
}

Test(store_links, data_dir_links_followed_below_the_data_dir)
{
    mkdir_ok(pathf("served"));
    mkdir_ok(pathf("data"));
    mkdir_ok(pathf("data/pool"));
    write_fill(pathf("data/pool/real.bin"), 20000, 0x71);
    symlink_ok("pool/real.bin", pathf("data/x.bin"));
    mi_torrent *mi = write_torrent("served/x.torrent", "x.bin", false, 20000);
    hk_store *st = store_following(true, true);
    const char *dirs[] = { pathf("data") };
    cr_assert_eq(hk_store_set_data_dirs(st, dirs, 1), 0);
    char err[512];
    uint64_t h = add(st, "served/x.torrent", mi, err, sizeof err);
    cr_assert_neq(h, 0u, "%s", err);
    cr_assert_eq(first_byte(st, h, 0), 0x71);
    const char *const *roots;
    size_t n;
    cr_assert(hk_store_links(st, &roots, &n));
    cr_assert_eq(n, 2u);
    hk_store_free(st);
    mi_free(mi);
}

/* A link may lead from one served folder into another (absolute, or ".." above the first), never elsewhere. */
Test(store_links, links_between_served_folders)
{
    mkdir_ok(pathf("served"));
    mkdir_ok(pathf("data"));
    mkdir_ok(pathf("unserved"));
    write_fill(pathf("data/real.bin"), 20000, 0x81);
    write_fill(pathf("unserved/real.bin"), 20000, 0x66);
    symlink_ok("../data/real.bin", pathf("served/rel.bin"));
    symlink_ok(pathf("data/real.bin"), pathf("served/abs.bin"));
    symlink_ok("../unserved/real.bin", pathf("served/no.bin"));
    mi_torrent *rel = write_torrent("served/rel.torrent", "rel.bin", false, 20000);
    mi_torrent *abs = write_torrent("served/abs.torrent", "abs.bin", false, 20000);
    mi_torrent *no = write_torrent("served/no.torrent", "no.bin", false, 20000);
    hk_store *st = store_following(true, true);
    char err[512];
    uint64_t h1 = add(st, "served/rel.torrent", rel, err, sizeof err);
    cr_assert_neq(h1, 0u, "%s", err);
    uint64_t h2 = add(st, "served/abs.torrent", abs, err, sizeof err);
    cr_assert_neq(h2, 0u, "%s", err);
    cr_assert_eq(first_byte(st, h1, 0), 0x81);
    cr_assert_eq(first_byte(st, h2, 0), 0x81);
    cr_assert_eq(add(st, "served/no.torrent", no, err, sizeof err), 0u);
    cr_assert_not_null(strstr(err, "leads outside the served folders"), "%s", err);
    hk_store_free(st);
    mi_free(rel);
    mi_free(abs);
    mi_free(no);
}

/* A served folder missing when the folders are set (a DIR created later, with --rescan) serves once it exists; a
 * folder outside them is still refused. */
Test(store_links, a_served_folder_created_later)
{
    mkdir_ok(pathf("elsewhere"));
    hk_store *st = store_following(false, true); /* served and data: neither exists yet */
    const char *const *roots;
    size_t n;
    cr_assert_not(hk_store_links(st, &roots, &n));
    cr_assert_eq(n, 2u);
    cr_assert_null(roots[0], "not resolved while missing");
    mkdir_ok(pathf("served"));
    write_fill(pathf("served/x.bin"), 20000, 0x31);
    mi_torrent *mi = write_torrent("served/x.torrent", "x.bin", false, 20000);
    write_fill(pathf("elsewhere/x.bin"), 20000, 0x31);
    mi_torrent *mi2 = write_torrent("elsewhere/x.torrent", "x.bin", false, 20000);
    char err[512];
    uint64_t h = add(st, "served/x.torrent", mi, err, sizeof err);
    cr_assert_neq(h, 0u, "%s", err);
    cr_assert_not_null(roots[0], "resolved once it exists");
    cr_assert_eq(first_byte(st, h, 0), 0x31);
    cr_assert_eq(add(st, "elsewhere/x.torrent", mi2, err, sizeof err), 0u);
    cr_assert_not_null(strstr(err, "is outside the served folders"), "%s", err);
    hk_store_free(st);
    mi_free(mi);
    mi_free(mi2);
}
