/* Tests of the store under a descriptor shortage and with many tiny files (issue 14, items 4 and 5): with the
 * descriptor table full (RLIMIT_NOFILE lowered and filled with dup, in the test's own forked process) a page-in job,
 * a pin and a copy fail with EMFILE and the storage stays healthy, and all succeed once descriptors are free again;
 * a page-in that ends with a shortage (ENOMEM) does not fail the storage while a real read error still does; a
 * block over 5,000 three-byte files is copied byte for byte with hk_store_copy under a budget of 8 open files,
 * holding no descriptor afterwards; large files are not copied (they stay zero-copy, pinned). The bounds of a
 * storage entry (issue 10): an open-files budget above HK_STORE_MAX_OPEN_FILES is refused, a pin beyond 2^24 - 1 on
 * one storage is a passing shortage. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixtures.h"
#include "metainfo.h"
#include "store.h"
#include "torrent_builder.h"

static char *g_dir;

static void setup(void)
{
    g_dir = fx_mkdtemp("store-short");
    cr_assert_not_null(g_dir);
}

static void teardown(void)
{
    fx_rmtree(g_dir);
    free(g_dir);
}

TestSuite(store_shortage, .init = setup, .fini = teardown, .timeout = 60);

static uint8_t byte_of(uint32_t file, uint64_t off) { return (uint8_t)(file * 7u + off * 13u + 1u); }

/* A multi-file torrent "m" of n files of `each` bytes (file i: "f<i>", bytes byte_of(i, off)), added to st. */
static uint64_t add_many(hk_store *st, uint32_t n, uint32_t each, mi_torrent **mi_out)
{
    tb_file *files = calloc(n, sizeof *files);
    char(*names)[16] = calloc(n, sizeof *names);
    cr_assert(files && names);
    char path[512];
    snprintf(path, sizeof path, "%s/m", g_dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    uint8_t *buf = malloc(each);
    for (uint32_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "f%u", i);
        files[i].path = names[i];
        files[i].length = each;
        for (uint32_t k = 0; k < each; k++)
            buf[k] = byte_of(i, k);
        snprintf(path, sizeof path, "%s/m/%s", g_dir, names[i]);
        cr_assert_eq(fx_write(path, buf, each), 0);
    }
    free(buf);
    size_t tlen = 0;
    uint8_t *tb = tb_torrent("m", 16384, files, n, &tlen);
    cr_assert_not_null(tb);
    snprintf(path, sizeof path, "%s/m.torrent", g_dir);
    cr_assert_eq(fx_write(path, tb, tlen), 0);
    mi_error err;
    cr_assert_eq(mi_parse(tb, tlen, mi_out, &err), 0, "mi_parse: %s", err.what);
    free(tb);
    free(files);
    free(names);
    char e[512] = "";
    uint64_t h = hk_store_add(st, path, *mi_out, e, sizeof e);
    cr_assert_neq(h, 0u, "hk_store_add: %s", e);
    return h;
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", "..", and the directory's own descriptor */
}

/* Lowers RLIMIT_NOFILE to 64 and fills every free descriptor with dup(0). The dups, to be closed by the caller. */
static int fill_fd_table(int *fds, int cap)
{
    struct rlimit rl = {64, 64};
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    int n = 0;
    for (;;) {
        int fd = dup(0);
        if (fd < 0) {
            cr_assert_eq(errno, EMFILE);
            break;
        }
        cr_assert_lt(n, cap);
        fds[n++] = fd;
    }
    return n;
}

Test(store_shortage, no_descriptor_left_is_transient_and_the_storage_stays_healthy)
{
    hk_store *st = hk_store_new(NULL);
    mi_torrent *mi;
    uint64_t h = add_many(st, 4, 5000, &mi);
    int fds[128];
    int n = fill_fd_table(fds, 128);
    hk_extent e = {h, 1, 100, 200};
    hk_store_job job;
    errno = 0;
    cr_assert_eq(hk_store_job_prepare(st, &e, &job), -1);
    cr_assert_eq(errno, EMFILE, "errno %d", errno);
    cr_assert(hk_store_transient(errno));
    struct iovec iov;
    cr_assert_eq(hk_store_pin(st, &e, &iov, NULL), -1);
    cr_assert_eq(errno, EMFILE);
    cr_assert_not(hk_store_failed(st, h, NULL), "a shortage never fails the storage");
    /* a small file's copy needs a descriptor too */
    hk_store_free(st);
    mi_free(mi);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    fx_rmtree(g_dir);
    free(g_dir);
    setup();
    st = hk_store_new(NULL);
    h = add_many(st, 3, 3, &mi);
    n = fill_fd_table(fds, 128);
    hk_extent small = {h, 2, 0, 3};
    uint8_t buf[16];
    const char *why = NULL;
    cr_assert_eq(hk_store_copy(st, &small, buf, sizeof buf, &why), -1);
    cr_assert_eq(errno, EMFILE);
    cr_assert_not_null(why);
    cr_assert_not(hk_store_failed(st, h, NULL));
    for (int i = 0; i < n; i++)
        close(fds[i]);
    /* descriptors are back: everything works */
    cr_assert_eq(hk_store_copy(st, &small, buf, sizeof buf, NULL), 1);
    for (uint32_t k = 0; k < 3; k++)
        cr_assert_eq(buf[k], byte_of(2, k));
    cr_assert_eq(hk_store_job_prepare(st, &small, &job), 0);
    hk_store_page_in(&job);
    cr_assert_eq(job.error, 0);
    hk_store_job_release(st, &job);
    cr_assert_not(hk_store_failed(st, h, NULL));
    hk_store_free(st);
    mi_free(mi);
}

Test(store_shortage, a_page_in_short_of_memory_keeps_the_storage_a_read_error_fails_it)
{
    hk_store *st = hk_store_new(NULL);
    mi_torrent *mi;
    uint64_t h = add_many(st, 2, 5000, &mi);
    hk_extent e = {h, 0, 0, 5000};
    hk_store_job job;
    cr_assert_eq(hk_store_job_prepare(st, &e, &job), 0);
    job.error = ENOMEM; /* what hk_store_page_in reports when pread is short of memory */
    hk_store_job_release(st, &job);
    cr_assert_not(hk_store_failed(st, h, NULL), "ENOMEM is a passing shortage");
    cr_assert_eq(hk_store_job_prepare(st, &e, &job), 0);
    job.error = EIO;
    hk_store_job_release(st, &job);
    cr_assert(hk_store_failed(st, h, NULL), "EIO is the data's fault");
    hk_store_free(st);
    mi_free(mi);
}

Test(store_shortage, a_block_over_5000_tiny_files_is_copied_within_the_budget)
{
    hk_store_limits lim;
    hk_store_limits_default(&lim);
    lim.max_open_files = 8;
    hk_store *st = hk_store_new(&lim);
    mi_torrent *mi;
    const uint32_t n = 5000;
    uint64_t h = add_many(st, n, 3, &mi);
    /* block 0/0/15000: files 0..4999, three bytes each; some of them mapped already (a prefetch) */
    for (uint32_t i = 0; i < 20; i++) {
        hk_extent pf = {h, i, 0, 3};
        hk_store_prefetch(st, &pf);
    }
    hk_store_stats ss;
    hk_store_stats_get(st, &ss);
    cr_assert_leq(ss.open_files, 8);
    int before = open_fds();
    for (uint32_t i = 0; i < n; i++) {
        hk_extent e = {h, i, i % 3 == 2 ? 1 : 0, i % 3 == 2 ? 2 : 3};
        uint8_t buf[HK_STORE_COPY_MAX];
        memset(buf, 0xee, sizeof buf);
        cr_assert_eq(hk_store_copy(st, &e, buf, sizeof buf, NULL), 1, "file %u", i);
        for (uint32_t k = 0; k < e.length; k++)
            cr_assert_eq(buf[k], byte_of(i, e.offset + k), "file %u byte %u", i, k);
        cr_assert_eq(buf[e.length], 0xee, "nothing past the extent");
    }
    hk_store_stats_get(st, &ss);
    cr_assert_leq(ss.open_files, 8, "copies hold no descriptor");
    cr_assert_eq(ss.pinned_files, 0);
    cr_assert_leq(open_fds(), before, "no descriptor leaked");
    cr_assert_not(hk_store_failed(st, h, NULL));
    hk_store_free(st);
    mi_free(mi);
}

Test(store_shortage, large_files_the_torrent_and_pads_are_not_copied)
{
    hk_store *st = hk_store_new(NULL);
    mi_torrent *mi;
    uint64_t h = add_many(st, 2, HK_STORE_COPY_MAX + 1, &mi);
    uint8_t buf[HK_STORE_COPY_MAX];
    hk_extent big = {h, 0, 0, 100};
    cr_assert_eq(hk_store_copy(st, &big, buf, sizeof buf, NULL), 0, "a large file stays zero-copy");
    hk_extent meta = {h, HK_FILE_METAINFO, 0, 10};
    cr_assert_eq(hk_store_copy(st, &meta, buf, sizeof buf, NULL), 0, "the .torrent is pinned");
    hk_extent bad = {h, 7, 0, 10};
    cr_assert_eq(hk_store_copy(st, &bad, buf, sizeof buf, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    hk_store_free(st);
    mi_free(mi);
}

Test(store_shortage, a_small_file_shorter_than_its_size_fails_the_storage)
{
    hk_store *st = hk_store_new(NULL);
    mi_torrent *mi;
    uint64_t h = add_many(st, 2, 3, &mi);
    char path[512];
    snprintf(path, sizeof path, "%s/m/f1", g_dir);
    cr_assert_eq(truncate(path, 1), 0);
    hk_extent e = {h, 1, 0, 3};
    uint8_t buf[16];
    cr_assert_eq(hk_store_copy(st, &e, buf, sizeof buf, NULL), -1);
    cr_assert_eq(errno, EIO);
    cr_assert(hk_store_failed(st, h, NULL));
    hk_store_free(st);
    mi_free(mi);
}

/* Slot numbers are 16 bits in a storage's entry (issue 10): a budget of open files above HK_STORE_MAX_OPEN_FILES is
 * refused with a message, the cap itself is accepted. */
Test(store_shortage, an_open_files_budget_above_the_cap_is_refused)
{
    hk_store_limits lim;
    hk_store_limits_default(&lim);
    char err[128] = "";
    cr_assert_eq(hk_store_limits_check(&lim, err, sizeof err), 0);
    lim.max_open_files = HK_STORE_MAX_OPEN_FILES;
    cr_assert_eq(hk_store_limits_check(&lim, err, sizeof err), 0);
    hk_store *st = hk_store_new(&lim);
    cr_assert_not_null(st, "the cap itself is accepted");
    hk_store_free(st);
    lim.max_open_files = HK_STORE_MAX_OPEN_FILES + 1;
    cr_assert_eq(hk_store_limits_check(&lim, err, sizeof err), -1);
    cr_assert_str_eq(err, "max_open_files 32769 is above the store's cap, 32768");
    errno = 0;
    cr_assert_null(hk_store_new(&lim));
    cr_assert_eq(errno, EINVAL);
}

/* A storage counts its pins in 24 bits: one pin beyond ST_MAX_PINS (2^24 - 1) is refused as a passing shortage
 * (EAGAIN, a message, the storage healthy), and succeeds again once one is released; every pin unpins cleanly. */
Test(store_shortage, a_pin_beyond_the_bound_is_a_passing_shortage)
{
    const uint32_t max_pins = (1u << 24) - 1;
    hk_store *st = hk_store_new(NULL);
    mi_torrent *mi;
    uint64_t h = add_many(st, 2, 100, &mi);
    hk_extent e = {h, 1, 10, 20}, other = {h, 0, 0, 5};
    struct iovec iov;
    for (uint32_t i = 0; i < max_pins - 1; i++)
        if (hk_store_pin(st, &e, &iov, NULL) != 0)
            cr_assert_fail("pin %u: %s", i, hk_store_last_error(st));
    cr_assert_eq(hk_store_pin(st, &other, &iov, NULL), 0, "the bound counts pins on any file of the storage");
    const char *why = NULL;
    errno = 0;
    cr_assert_eq(hk_store_pin(st, &e, &iov, &why), -1);
    cr_assert_eq(errno, EAGAIN);
    cr_assert(hk_store_transient(errno));
    cr_assert_not_null(strstr(why, "/m/f1: pinned 16777215 times already"), "%s", why);
    cr_assert_not(hk_store_failed(st, h, NULL), "refusing a pin never fails the storage");
    hk_store_unpin(st, &other);
    cr_assert_eq(hk_store_pin(st, &e, &iov, NULL), 0, "one released: one more fits");
    for (uint32_t i = 0; i < max_pins; i++)
        hk_store_unpin(st, &e);
    hk_store_stats ss;
    hk_store_stats_get(st, &ss);
    cr_assert_eq(ss.pinned_files, 0);
    hk_store_remove(st, h);
    hk_store_free(st);
    mi_free(mi);
}
