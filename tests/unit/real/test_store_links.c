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
#include "tree_fixture.h"

static void make_root(void)
{
    tf_tree_make("links");
}

TestSuite(store_links, .init = make_root, .fini = tf_tree_remove, .timeout = 30);

static void symlink_ok(const char *target, const char *at)
{
    cr_assert_eq(symlink(target, at), 0, "symlink %s -> %s: %s", at, target, strerror(errno));
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

/* A store following links below <root>/served (and, when data is set, <root>/data too). */
static hk_store *store_following(bool follow, bool data)
{
    hk_store *st = hk_store_new(NULL);
    const char *roots[] = { tf_path("served"), tf_path("data") };
    cr_assert_eq(hk_store_set_links(st, follow, roots, data ? 2 : 1), 0);
    return st;
}

static uint64_t add(hk_store *st, const char *tpath, const mi_torrent *mi, char *err, size_t errlen)
{
    err[0] = '\0';
    return hk_store_add(st, tf_path("%s", tpath), mi, err, errlen);
}

Test(store_links, links_inside_are_followed_only_when_asked)
{
    tf_mkdir(tf_path("served"));
    tf_mkdir(tf_path("served/t"));
    tf_mkdir(tf_path("served/pool"));
    tf_write_fill(tf_path("served/pool/real.bin"), 20000, 0x51);
    symlink_ok("../pool/real.bin", tf_path("served/t/rel.bin"));           /* relative, climbing and back */
    symlink_ok(tf_path("served/pool/real.bin"), tf_path("served/t/abs.bin")); /* absolute, below the root */
    mi_torrent *rel = tf_write_torrent("served/t/rel.torrent", "rel.bin", false, 20000);
    mi_torrent *abs = tf_write_torrent("served/t/abs.torrent", "abs.bin", false, 20000);
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
    tf_mkdir(tf_path("served"));
    tf_mkdir(tf_path("served/t"));
    tf_mkdir(tf_path("served/store"));
    tf_mkdir(tf_path("served/store/Album.v2"));
    tf_write_fill(tf_path("served/store/Album.v2/b"), 40000, 0x61);
    tf_write_fill(tf_path("served/store/Album.v2/c"), 3000, 0x62);
    symlink_ok("../store/Album.v2", tf_path("served/t/Album"));
    mi_torrent *mi = tf_write_torrent("served/t/album.torrent", "Album", true, 40000);
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
    tf_mkdir(tf_path("served"));
    tf_mkdir(tf_path("outside"));
    tf_write_fill(tf_path("outside/secret.bin"), 20000, 0x66);
    symlink_ok(tf_path("outside/secret.bin"), tf_path("served/abs.bin"));
    symlink_ok("../outside/secret.bin", tf_path("served/rel.bin"));
    symlink_ok("loop2.bin", tf_path("served/loop1.bin"));
    symlink_ok("loop1.bin", tf_path("served/loop2.bin"));
    symlink_ok("/etc/passwd", tf_path("served/etc.bin"));
    const char *names[] = { "abs.bin", "rel.bin", "loop1.bin", "etc.bin" };
    const char *want[] = { "leads outside the served folders", "leads outside the served folders",
                           "too many levels of symbolic links", "leads outside the served folders" };
    hk_store *st = store_following(true, false);
    for (size_t i = 0; i < 4; i++) {
        char tpath[64], err[512];
        snprintf(tpath, sizeof tpath, "served/%zu.torrent", i);
        mi_torrent *mi = tf_write_torrent(tpath, names[i], false, 20000);
        cr_assert_eq(add(st, tpath, mi, err, sizeof err), 0u, "%s was served", names[i]);
        cr_assert_not_null(strstr(err, want[i]), "%s: %s", names[i], err);
        mi_free(mi);
    }
    hk_store_free(st);
}

Test(store_links, a_folder_outside_every_served_folder_is_refused)
{
    tf_mkdir(tf_path("served"));
    tf_mkdir(tf_path("elsewhere"));
    tf_write_fill(tf_path("elsewhere/x.bin"), 20000, 0x11);
    mi_torrent *mi = tf_write_torrent("elsewhere/x.torrent", "x.bin", false, 20000);
    symlink_ok(tf_path("elsewhere"), tf_path("served/door")); /* reached as served/door/x.torrent */
    hk_store *st = store_following(false, false);
    char err[512];
    cr_assert_eq(add(st, "served/door/x.torrent", mi, err, sizeof err), 0u);
    cr_assert_not_null(strstr(err, "is outside the served folders"), "%s", err);
    hk_store_free(st);
    mi_free(mi);
}

Test(store_links, a_link_swapped_to_point_outside_is_never_followed_again)
{
    tf_mkdir(tf_path("served"));
    tf_mkdir(tf_path("served/pool"));
    tf_mkdir(tf_path("outside"));
    tf_write_fill(tf_path("served/pool/real.bin"), 20000, 0x51);
    tf_write_fill(tf_path("outside/secret.bin"), 20000, 0x66);
    symlink_ok("pool/real.bin", tf_path("served/x.bin"));
    mi_torrent *mi = tf_write_torrent("served/x.torrent", "x.bin", false, 20000);
    hk_store *st = store_following(true, false);
    char err[512];
    uint64_t h = add(st, "served/x.torrent", mi, err, sizeof err);
    cr_assert_neq(h, 0u, "%s", err);
    /* swapped before the first open (the data is opened lazily): the open refuses it */
    cr_assert_eq(unlink(tf_path("served/x.bin")), 0);
    symlink_ok(tf_path("outside/secret.bin"), tf_path("served/x.bin"));
    cr_assert_eq(first_byte(st, h, 0), -1, "nothing read through the swapped link");
    const char *why = NULL;
    cr_assert(hk_store_failed(st, h, &why));
    cr_assert_not_null(strstr(why, "leads outside the served folders"), "%s", why);
    hk_store_free(st);

    /* swapped while mapped: the periodic check sees it, and a re-open after eviction would refuse it */
    cr_assert_eq(unlink(tf_path("served/x.bin")), 0);
    symlink_ok("pool/real.bin", tf_path("served/x.bin"));
    st = store_following(true, false);
    h = add(st, "served/x.torrent", mi, err, sizeof err);
    cr_assert_neq(h, 0u, "%s", err);
    cr_assert_eq(first_byte(st, h, 0), 0x51);
    cr_assert_eq(unlink(tf_path("served/x.bin")), 0);
    symlink_ok("../outside/secret.bin", tf_path("served/x.bin"));
    cr_assert_geq(hk_store_check(st), 1u);
    cr_assert(hk_store_failed(st, h, &why));
    hk_store_free(st);
    mi_free(mi);
}

Test(store_links, data_dir_links_followed_below_the_data_dir)
{
    tf_mkdir(tf_path("served"));
    tf_mkdir(tf_path("data"));
    tf_mkdir(tf_path("data/pool"));
    tf_write_fill(tf_path("data/pool/real.bin"), 20000, 0x71);
    symlink_ok("pool/real.bin", tf_path("data/x.bin"));
    mi_torrent *mi = tf_write_torrent("served/x.torrent", "x.bin", false, 20000);
    hk_store *st = store_following(true, true);
    const char *dirs[] = { tf_path("data") };
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
    tf_mkdir(tf_path("served"));
    tf_mkdir(tf_path("data"));
    tf_mkdir(tf_path("unserved"));
    tf_write_fill(tf_path("data/real.bin"), 20000, 0x81);
    tf_write_fill(tf_path("unserved/real.bin"), 20000, 0x66);
    symlink_ok("../data/real.bin", tf_path("served/rel.bin"));
    symlink_ok(tf_path("data/real.bin"), tf_path("served/abs.bin"));
    symlink_ok("../unserved/real.bin", tf_path("served/no.bin"));
    mi_torrent *rel = tf_write_torrent("served/rel.torrent", "rel.bin", false, 20000);
    mi_torrent *abs = tf_write_torrent("served/abs.torrent", "abs.bin", false, 20000);
    mi_torrent *no = tf_write_torrent("served/no.torrent", "no.bin", false, 20000);
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
    tf_mkdir(tf_path("elsewhere"));
    hk_store *st = store_following(false, true); /* served and data: neither exists yet */
    const char *const *roots;
    size_t n;
    cr_assert_not(hk_store_links(st, &roots, &n));
    cr_assert_eq(n, 2u);
    cr_assert_null(roots[0], "not resolved while missing");
    tf_mkdir(tf_path("served"));
    tf_write_fill(tf_path("served/x.bin"), 20000, 0x31);
    mi_torrent *mi = tf_write_torrent("served/x.torrent", "x.bin", false, 20000);
    tf_write_fill(tf_path("elsewhere/x.bin"), 20000, 0x31);
    mi_torrent *mi2 = tf_write_torrent("elsewhere/x.torrent", "x.bin", false, 20000);
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
