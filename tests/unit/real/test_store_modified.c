/* Unit tests for the store's in-place change detection (issue 10: a data file whose mtime moves loses its pieces'
 * verification marks; backend-real/lib/disk/store.h, hk_store_take_modified): an open file written in place is seen
 * by hk_store_check (counted, taken once, the storage stays healthy); a file written while closed is seen when it is
 * opened again; an mtime moved backwards on an open file counts too; a size change still fails the storage (not
 * "modified"); the .torrent file's own mtime is not the store's business. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "metainfo.h"
#include "store.h"
#include "torrent_builder.h"

static char dir[64];
static char tpath[128], dpath[128];
static mi_torrent *mi;

#define LEN 100000u

/* Sets path's mtime (and atime) to now + delta seconds. */
static void set_mtime(const char *path, long delta)
{
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec += delta;
    ts[1] = ts[0];
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* x.bin (LEN bytes) and x.torrent in a fresh folder, both dated 100 s ago. */
static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/hk-store-mod-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(tpath, sizeof tpath, "%s/x.torrent", dir);
    snprintf(dpath, sizeof dpath, "%s/x.bin", dir);
    size_t len;
    uint8_t *t = tb_single("x.bin", 16384, LEN, &len);
    FILE *f = fopen(tpath, "wb");
    cr_assert(f && fwrite(t, 1, len, f) == len && fclose(f) == 0);
    cr_assert_eq(mi_parse(t, len, &mi, NULL), 0);
    free(t);
    f = fopen(dpath, "wb");
    cr_assert(f);
    for (uint32_t i = 0; i < LEN; i++)
        fputc((int)(i * 7u & 0xFF), f);
    cr_assert_eq(fclose(f), 0);
    set_mtime(dpath, -100);
    set_mtime(tpath, -100);
}

static void teardown(void)
{
    mi_free(mi);
    mi = NULL;
    unlink(dpath);
    unlink(tpath);
    rmdir(dir);
}

TestSuite(store_modified, .init = setup, .fini = teardown, .timeout = 30);

static uint64_t add(hk_store *st)
{
    char err[512];
    uint64_t h = hk_store_add(st, tpath, mi, err, sizeof err);
    cr_assert_neq(h, 0, "%s", err);
    return h;
}

/* Opens (maps) x.bin through a pin. */
static void open_data(hk_store *st, uint64_t h)
{
    hk_extent e = {.storage = h, .file = 0, .offset = 0, .length = 100};
    struct iovec iov;
    cr_assert_eq(hk_store_pin(st, &e, &iov, NULL), 0);
    hk_store_unpin(st, &e);
}

/* One byte of x.bin rewritten in place: same size, same inode, new mtime (now). */
static void write_in_place(void)
{
    int fd = open(dpath, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, "Z", 1, 5000), 1);
    cr_assert_eq(close(fd), 0);
}

Test(store_modified, an_open_file_written_in_place_is_taken_once_and_stays_healthy)
{
    hk_store *st = hk_store_new(NULL);
    uint64_t h = add(st);
    open_data(st, h);
    cr_assert_eq(hk_store_check(st), 0u, "nothing changed yet");
    cr_assert_not(hk_store_take_modified(st, h));
    write_in_place();
    cr_assert_eq(hk_store_check(st), 1u, "the modified storage is counted");
    cr_assert_not(hk_store_failed(st, h, NULL), "same size and inode: not a failure");
    cr_assert(hk_store_take_modified(st, h));
    cr_assert_not(hk_store_take_modified(st, h), "taken once");
    cr_assert_eq(hk_store_check(st), 0u, "nothing new");
    write_in_place();
    set_mtime(dpath, +50); /* another write, later still */
    cr_assert_eq(hk_store_check(st), 1u);
    cr_assert(hk_store_take_modified(st, h), "each change is seen");
    hk_store_free(st);
}

Test(store_modified, a_file_written_while_closed_is_seen_when_it_is_opened)
{
    hk_store *st = hk_store_new(NULL);
    uint64_t h = add(st);
    write_in_place(); /* never opened since the add */
    cr_assert_not(hk_store_take_modified(st, h));
    open_data(st, h);
    cr_assert(hk_store_take_modified(st, h), "its mtime is later than at the add");
    cr_assert_not(hk_store_failed(st, h, NULL));
    hk_store_free(st);
}

Test(store_modified, an_mtime_moved_backwards_on_an_open_file_counts)
{
    hk_store *st = hk_store_new(NULL);
    uint64_t h = add(st);
    open_data(st, h);
    set_mtime(dpath, -5000); /* touch -d: earlier than anything seen */
    cr_assert_eq(hk_store_check(st), 1u);
    cr_assert(hk_store_take_modified(st, h));
    hk_store_free(st);
}

Test(store_modified, a_size_change_fails_the_storage_instead)
{
    hk_store *st = hk_store_new(NULL);
    uint64_t h = add(st);
    open_data(st, h);
    cr_assert_eq(truncate(dpath, LEN / 2), 0);
    cr_assert_eq(hk_store_check(st), 1u);
    cr_assert(hk_store_failed(st, h, NULL));
    cr_assert_not(hk_store_take_modified(st, h), "failed, not modified");
    cr_assert_eq(hk_store_check(st), 0u);
    hk_store_free(st);
}

Test(store_modified, the_torrent_files_mtime_is_not_a_data_change)
{
    hk_store *st = hk_store_new(NULL);
    uint64_t h = add(st);
    hk_extent e = {.storage = h, .file = HK_FILE_METAINFO, .offset = 0, .length = 10};
    struct iovec iov;
    cr_assert_eq(hk_store_pin(st, &e, &iov, NULL), 0);
    hk_store_unpin(st, &e);
    set_mtime(tpath, +10);
    hk_store_check(st);
    cr_assert_not(hk_store_take_modified(st, h));
    hk_store_free(st);
}
