/* Tests of the store's data lookup (store.h, --data-dir): data beside the .torrent first, then in each data dir in
 * order, by the torrent's name; the .torrent itself still read from its own folder; a link where the data should be
 * refused (not skipped to the next data dir); a data dir swapped for a link after the add serves nothing. */
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
    tf_tree_make("datadir");
}

TestSuite(store_datadir, .init = make_root, .fini = tf_tree_remove, .timeout = 30);

/* The first byte of file `file` of storage h, pinned (the place the store reads it from). */
static int first_byte(hk_store *st, uint64_t h, uint32_t file)
{
    hk_extent e = { h, file, 0, 1 };
    struct iovec iov;
    const char *why = NULL;
    if (hk_store_pin(st, &e, &iov, &why) != 0)
        return -1;
    int b = ((const uint8_t *)iov.iov_base)[0];
    hk_store_unpin(st, &e);
    return b;
}

static uint64_t add(hk_store *st, const char *tpath, const mi_torrent *mi, char *err, size_t errlen)
{
    return hk_store_add(st, tf_path("%s", tpath), mi, err, errlen);
}

Test(store_datadir, beside_first_then_data_dirs_in_order)
{
    tf_mkdir(tf_path("t"));
    tf_mkdir(tf_path("d1"));
    tf_mkdir(tf_path("d2"));
    mi_torrent *mi = tf_write_torrent("t/x.torrent", "x.bin", false, 20000);
    const char *dirs[] = { tf_path("missing"), tf_path("d1"), tf_path("d2") };
    hk_store *st = hk_store_new(NULL);
    cr_assert_eq(hk_store_set_data_dirs(st, dirs, 3), 0);
    char err[512] = "";

    /* nowhere: refused, the message names the place beside and the data dirs searched */
    cr_assert_eq(add(st, "t/x.torrent", mi, err, sizeof err), 0u);
    cr_assert_not_null(strstr(err, "/t/x.bin: missing"), "%s", err);
    cr_assert_not_null(strstr(err, "--data-dir"), "%s", err);

    /* in d2 only: served from d2 (the missing first data dir is passed over) */
    tf_write_fill(tf_path("d2/x.bin"), 20000, 0xd2);
    uint64_t h = add(st, "t/x.torrent", mi, err, sizeof err);
    cr_assert_neq(h, 0u, "%s", err);
    cr_assert_eq(first_byte(st, h, 0), 0xd2);
    hk_store_remove(st, h);

    /* in d1 and d2: the first data dir wins */
    tf_write_fill(tf_path("d1/x.bin"), 20000, 0xd1);
    h = add(st, "t/x.torrent", mi, err, sizeof err);
    cr_assert_neq(h, 0u, "%s", err);
    cr_assert_eq(first_byte(st, h, 0), 0xd1);
    hk_store_remove(st, h);

    /* beside the .torrent too: beside wins */
    tf_write_fill(tf_path("t/x.bin"), 20000, 0xbe);
    h = add(st, "t/x.torrent", mi, err, sizeof err);
    cr_assert_neq(h, 0u, "%s", err);
    cr_assert_eq(first_byte(st, h, 0), 0xbe);
    hk_store_free(st);
    mi_free(mi);
}

Test(store_datadir, multi_file_data_in_a_data_dir_and_the_torrent_read_from_its_folder)
{
    tf_mkdir(tf_path("t"));
    tf_mkdir(tf_path("data"));
    tf_mkdir(tf_path("data/Album"));
    tf_write_fill(tf_path("data/Album/b"), 40000, 0x11);
    tf_write_fill(tf_path("data/Album/c"), 3000, 0x22);
    mi_torrent *mi = tf_write_torrent("t/album.torrent", "Album", true, 40000);
    mi_torrent *mi2 = tf_write_torrent("t/other.torrent", "Album", true, 40000); /* a second one, same folders */
    const char *dirs[] = { tf_path("data") };
    hk_store *st = hk_store_new(NULL);
    cr_assert_eq(hk_store_set_data_dirs(st, dirs, 1), 0);
    char err[512] = "";
    uint64_t h = add(st, "t/album.torrent", mi, err, sizeof err);
    cr_assert_neq(h, 0u, "%s", err);
    uint64_t h2 = add(st, "t/other.torrent", mi2, err, sizeof err);
    cr_assert_neq(h2, 0u, "%s", err);
    cr_assert_eq(first_byte(st, h, 0), 0x11);
    cr_assert_eq(first_byte(st, h, 1), 0x22);
    cr_assert_eq(first_byte(st, h2, 1), 0x22);
    /* the metadata extent is the .torrent in t/, not anything in the data dir */
    cr_assert_eq(first_byte(st, h, HK_FILE_METAINFO), 'd');
    hk_extent info = { h, HK_FILE_METAINFO, mi->info_start, (uint32_t)(mi->info_end - mi->info_start) };
    struct iovec iov;
    cr_assert_eq(hk_store_pin(st, &info, &iov, NULL), 0, "%s", hk_store_last_error(st));
    cr_assert_eq(((const char *)iov.iov_base)[0], 'd', "the info dictionary starts with 'd'");
    hk_store_unpin(st, &info);
    cr_assert_eq(hk_store_check(st), 0u, "nothing changed");
    cr_assert(!hk_store_failed(st, h, NULL));

    /* a data file changed in the data dir is detected like one beside the .torrent */
    cr_assert_eq(truncate(tf_path("data/Album/c"), 10), 0);
    cr_assert_geq(hk_store_check(st), 1u);
    const char *why = NULL;
    cr_assert(hk_store_failed(st, h, &why));
    cr_assert_not_null(strstr(why, "/data/Album/c"), "%s", why);
    hk_store_free(st);
    mi_free(mi);
    mi_free(mi2);
}

Test(store_datadir, a_link_in_a_data_dir_is_refused_not_passed_over)
{
    tf_mkdir(tf_path("t"));
    tf_mkdir(tf_path("d1"));
    tf_mkdir(tf_path("d2"));
    tf_mkdir(tf_path("outside"));
    tf_write_fill(tf_path("outside/x.bin"), 20000, 0x66);
    tf_write_fill(tf_path("d2/x.bin"), 20000, 0xd2);
    cr_assert_eq(symlink(tf_path("outside/x.bin"), tf_path("d1/x.bin")), 0);
    mi_torrent *mi = tf_write_torrent("t/x.torrent", "x.bin", false, 20000);
    const char *dirs[] = { tf_path("d1"), tf_path("d2") };
    hk_store *st = hk_store_new(NULL);
    cr_assert_eq(hk_store_set_data_dirs(st, dirs, 2), 0);
    char err[512] = "";
    cr_assert_eq(add(st, "t/x.torrent", mi, err, sizeof err), 0u);
    cr_assert_not_null(strstr(err, "/d1/x.bin: is a symbolic link"), "%s", err);
    hk_store_free(st);
    mi_free(mi);
}

Test(store_datadir, data_dir_swapped_for_a_link_after_the_add_serves_nothing)
{
    tf_mkdir(tf_path("t"));
    tf_mkdir(tf_path("data"));
    tf_mkdir(tf_path("evil"));
    tf_write_fill(tf_path("data/x.bin"), 20000, 0x44);
    tf_write_fill(tf_path("evil/x.bin"), 20000, 0x66);
    mi_torrent *mi = tf_write_torrent("t/x.torrent", "x.bin", false, 20000);
    const char *dirs[] = { tf_path("data") };
    hk_store *st = hk_store_new(NULL);
    cr_assert_eq(hk_store_set_data_dirs(st, dirs, 1), 0);
    char err[512] = "";
    uint64_t h = add(st, "t/x.torrent", mi, err, sizeof err);
    cr_assert_neq(h, 0u, "%s", err);
    cr_assert_eq(rename(tf_path("data"), tf_path("data.old")), 0);
    cr_assert_eq(symlink(tf_path("evil"), tf_path("data")), 0);
    cr_assert_eq(first_byte(st, h, 0), -1, "nothing is read through the link");
    const char *why = NULL;
    cr_assert(hk_store_failed(st, h, &why));
    cr_assert_not_null(strstr(why, "is a symbolic link"), "%s", why);
    hk_store_free(st);
    mi_free(mi);
}

Test(store_datadir, no_data_dirs_means_beside_only)
{
    tf_mkdir(tf_path("t"));
    tf_mkdir(tf_path("data"));
    tf_write_fill(tf_path("data/x.bin"), 20000, 0x44);
    mi_torrent *mi = tf_write_torrent("t/x.torrent", "x.bin", false, 20000);
    hk_store *st = hk_store_new(NULL);
    const char *dirs[] = { tf_path("data") };
    cr_assert_eq(hk_store_set_data_dirs(st, dirs, 1), 0);
    cr_assert_eq(hk_store_set_data_dirs(st, NULL, 0), 0); /* cleared again */
    char err[512] = "";
    cr_assert_eq(add(st, "t/x.torrent", mi, err, sizeof err), 0u);
    cr_assert_not_null(strstr(err, "/t/x.bin: missing"), "%s", err);
    cr_assert_null(strstr(err, "--data-dir"), "%s", err);
    hk_store_free(st);
    mi_free(mi);
}
