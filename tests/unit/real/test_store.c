/* Tests of backend-real/lib/disk/store: validation of a torrent's files on disk (missing, wrong size, symbolic links,
 * FIFOs, unsafe names), pins that return the file's bytes, pad files, the .torrent extent, eviction under tiny
 * budgets without ever evicting a pinned file, residency after a page-in, change detection (truncate, replace,
 * delete), folders swapped for symbolic links after the add, the handle table (storages across slabs, reused indexes,
 * generations wrapping) and the kernel's EFAULT (not SIGBUS) on a writev from a truncated mapping. */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include "bencode.h"
#include "metainfo.h"
#include "page_cache_fixture.h"
#include "pool.h"
#include "store.h"

/* ---- fixtures: a temporary folder with a .torrent and its data ---- */

static char g_dir[64];

static void make_dir(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/hekate-store-XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir));
}

static void remove_dir(void)
{
    if (strncmp(g_dir, "/tmp/hekate-store-", 18) == 0 && strchr(g_dir, '\'') == NULL) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        cr_assert_eq(system(cmd), 0);
    }
}

static char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *pathf(const char *fmt, ...)
{
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ % 8];
    int n = snprintf(b, 4096, "%s/", g_dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, (size_t)(4096 - n), fmt, ap);
    va_end(ap);
    return b;
}

static uint8_t pattern_byte(uint32_t file, uint64_t off)
{
    uint64_t x = (off + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)file << 40);
    return (uint8_t)(x >> 56);
}

static void write_pattern(const char *path, uint32_t file, uint64_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0, "create %s: %s", path, strerror(errno));
    uint8_t buf[8192];
    for (uint64_t off = 0; off < len;) {
        size_t n = len - off < sizeof buf ? (size_t)(len - off) : sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern_byte(file, off + i);
        cr_assert_eq(write(fd, buf, n), (ssize_t)n);
        off += n;
    }
    close(fd);
}

static void mkdirs_for(const char *file_path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", file_path);
    for (char *p = tmp + strlen(g_dir) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    }
}

typedef struct tfile {
    const char *path; /* "a/b/c" below the torrent's name (multi-file); ignored for single-file */
    uint64_t len;
    bool pad;
} tfile;

typedef struct ttorrent {
    mi_torrent *mi;
    uint8_t *bytes; /* the .torrent's bytes */
    size_t len;
    char path[4096];
} ttorrent;

static void put_path_list(ben_buf *b, const char *path)
{
    ben_put_list_begin(b);
    const char *p = path;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        ben_put_str(b, p, n);
        if (!slash)
            break;
        p = slash + 1;
    }
    ben_put_end(b);
}

/* Writes <g_dir>/<tname> describing `files` (or a single file when multi is false) and, unless write_data is false,
 * the data files with their patterns. Parses the .torrent back with mi_parse. */
static ttorrent make_torrent(const char *tname, const char *name, bool multi, const tfile *files, size_t n,
                             bool write_data)
{
    const uint32_t plen = 16384;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += files[i].len;
    uint64_t pieces = (total + plen - 1) / plen;

    ben_buf b;
    ben_buf_init(&b);
    ben_put_dict_begin(&b);
    ben_put_cstr(&b, "announce");
    ben_put_cstr(&b, "http://127.0.0.1:1/announce");
    ben_put_cstr(&b, "info");
    ben_put_dict_begin(&b);
    if (multi) {
        ben_put_cstr(&b, "files");
        ben_put_list_begin(&b);
        for (size_t i = 0; i < n; i++) {
            ben_put_dict_begin(&b);
            if (files[i].pad) {
                ben_put_cstr(&b, "attr");
                ben_put_cstr(&b, "p");
            }
            ben_put_cstr(&b, "length");
            ben_put_int(&b, (int64_t)files[i].len);
            ben_put_cstr(&b, "path");
            put_path_list(&b, files[i].path);
            ben_put_end(&b);
        }
        ben_put_end(&b);
    } else {
        ben_put_cstr(&b, "length");
        ben_put_int(&b, (int64_t)files[0].len);
    }
    ben_put_cstr(&b, "name");
    ben_put_cstr(&b, name);
    ben_put_cstr(&b, "piece length");
    ben_put_int(&b, plen);
    ben_put_cstr(&b, "pieces");
    uint8_t *hashes = calloc(pieces ? pieces * 20 : 1, 1);
    ben_put_str(&b, hashes, pieces * 20);
    free(hashes);
    ben_put_end(&b);
    ben_put_end(&b);
    cr_assert(!b.failed);

    ttorrent t;
    snprintf(t.path, sizeof t.path, "%s/%s", g_dir, tname);
    FILE *f = fopen(t.path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(b.data, 1, b.len, f), b.len);
    fclose(f);
    mi_error err;
    cr_assert_eq(mi_parse(b.data, b.len, &t.mi, &err), 0, "mi_parse: %s", err.what);
    t.bytes = b.data;
    t.len = b.len;

    if (write_data) {
        for (size_t i = 0; i < n; i++) {
            if (files[i].pad)
                continue;
            char *p = multi ? pathf("%s/%s", name, files[i].path) : pathf("%s", name);
            mkdirs_for(p);
            write_pattern(p, (uint32_t)i, files[i].len);
        }
    }
    return t;
}

static void free_torrent(ttorrent *t)
{
    mi_free(t->mi);
    free(t->bytes);
}

static hk_extent ext_of(uint64_t storage, uint32_t file, uint64_t off, uint32_t len)
{
    hk_extent e = {storage, file, off, len};
    return e;
}

/* Pins ext and compares the memory with a pread of the file at path. */
static void assert_pin_matches(hk_store *st, uint64_t h, const char *path, uint32_t file, uint64_t off, uint32_t len)
{
    hk_extent e = ext_of(h, file, off, len);
    struct iovec iov;
    const char *why = NULL;
    cr_assert_eq(hk_store_pin(st, &e, &iov, &why), 0, "pin %s [%llu,+%u): %s", path, (unsigned long long)off, len,
                 why ? why : "?");
    cr_assert_eq(iov.iov_len, len);
    uint8_t *want = malloc(len);
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, want, len, (off_t)off), (ssize_t)len);
    close(fd);
    cr_assert_eq(memcmp(iov.iov_base, want, len), 0, "pinned bytes of %s at %llu differ from pread", path,
                 (unsigned long long)off);
    free(want);
    hk_store_unpin(st, &e);
}

static uint64_t add_ok(hk_store *st, const ttorrent *t)
{
    char err[512] = "";
    uint64_t h = hk_store_add(st, t->path, t->mi, err, sizeof err);
    cr_assert_neq(h, 0u, "hk_store_add: %s", err);
    return h;
}

static void add_fails(hk_store *st, const ttorrent *t, const char *needle)
{
    char err[512] = "";
    uint64_t h = hk_store_add(st, t->path, t->mi, err, sizeof err);
    cr_assert_eq(h, 0u, "hk_store_add accepted what should fail with \"%s\"", needle);
    cr_assert_not_null(strstr(err, needle), "error \"%s\" does not say \"%s\"", err, needle);
}

TestSuite(store, .init = make_dir, .fini = remove_dir, .timeout = 30);

/* ---- adding and pinning ---- */

Test(store, single_file_pins_match_pread)
{
    tfile f[] = {{"", 100003, false}};
    ttorrent t = make_torrent("one.torrent", "data.bin", false, f, 1, true);
    hk_store *st = hk_store_new(NULL);
    uint64_t h = add_ok(st, &t);
    cr_assert(!hk_store_failed(st, h, NULL));
    const char *p = pathf("data.bin");
    assert_pin_matches(st, h, p, 0, 0, 16384);
    assert_pin_matches(st, h, p, 0, 4095, 4097);
    assert_pin_matches(st, h, p, 0, 100003 - 1, 1);
    assert_pin_matches(st, h, p, 0, 100003 - 16384, 16384);
    assert_pin_matches(st, h, p, 0, 0, 100003);
    hk_store_stats s;
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.maps, 1u, "mapped once, lazily");
    cr_assert_eq(s.open_files, 1u);
    cr_assert_eq(s.mapped_bytes, 100003u);
    cr_assert_eq(s.pinned_files, 0u);
    cr_assert_eq(s.storages, 1u);

    /* invalid extents are caller errors: -1 / EINVAL, the storage stays healthy */
    struct iovec iov;
    hk_extent bad[] = {ext_of(h, 0, 100003 - 10, 11), ext_of(h, 0, 0, 0), ext_of(h, 1, 0, 1),
                       ext_of(h, 0, UINT64_MAX, 2), ext_of(h + 1, 0, 0, 1), ext_of(0, 0, 0, 1)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        cr_assert_eq(hk_store_pin(st, &bad[i], &iov, NULL), -1, "bad extent %zu pinned", i);
        cr_assert_eq(errno, EINVAL);
    }
    cr_assert(!hk_store_failed(st, h, NULL));
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, multi_file_with_pad_zero_length_and_metainfo)
{
    tfile f[] = {{"cd1/01.flac", 20000, false},
                 {".pad/12768", 12768, true},
                 {"cd1/empty.txt", 0, false},
                 {"cd2/deeper/02.flac", 50001, false},
                 {"cover.jpg", 777, false}};
    ttorrent t = make_torrent("album.torrent", "Album", true, f, 5, true);
    cr_assert_eq(t.mi->file_count, 5u);
    cr_assert(t.mi->files[1].flags & MI_FILE_PAD);
    hk_store *st = hk_store_new(NULL);
    uint64_t h = add_ok(st, &t);

    assert_pin_matches(st, h, pathf("Album/cd1/01.flac"), 0, 0, 20000);
    assert_pin_matches(st, h, pathf("Album/cd2/deeper/02.flac"), 3, 33333, 16384);
    assert_pin_matches(st, h, pathf("Album/cover.jpg"), 4, 0, 777);

    /* pad file: zeros, no file on disk, always resident */
    hk_extent pad = ext_of(h, 1, 100, 12668);
    struct iovec iov;
    cr_assert_eq(hk_store_pin(st, &pad, &iov, NULL), 0);
    cr_assert_eq(iov.iov_len, 12668u);
    for (size_t i = 0; i < iov.iov_len; i++)
        cr_assert_eq(((const uint8_t *)iov.iov_base)[i], 0);
    cr_assert(hk_store_resident(st, &pad));
    hk_store_unpin(st, &pad);

    /* zero-length file: no extent can name it */
    hk_extent empty = ext_of(h, 2, 0, 1);
    errno = 0;
    cr_assert_eq(hk_store_pin(st, &empty, &iov, NULL), -1);
    cr_assert_eq(errno, EINVAL);

    /* HK_FILE_METAINFO: the .torrent's own bytes; its info dictionary serves ut_metadata */
    size_t ilen = t.mi->info_end - t.mi->info_start;
    hk_extent info = ext_of(h, HK_FILE_METAINFO, t.mi->info_start, (uint32_t)ilen);
    cr_assert_eq(hk_store_pin(st, &info, &iov, NULL), 0);
    cr_assert_eq(memcmp(iov.iov_base, t.bytes + t.mi->info_start, ilen), 0);
    uint8_t digest[20];
    cr_assert(ih_sha1(iov.iov_base, ilen, digest));
    cr_assert_eq(memcmp(digest, t.mi->info_hash, 20), 0, "pinned info dictionary hashes to the info-hash");
    hk_store_unpin(st, &info);
    hk_extent past = ext_of(h, HK_FILE_METAINFO, t.len - 1, 2);
    cr_assert_eq(hk_store_pin(st, &past, &iov, NULL), -1);

    hk_store_stats s;
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.open_files, 4u, "three data files and the .torrent were mapped; the pad file was not");
    hk_store_free(st);
    free_torrent(&t);
}

/* ---- refusals ---- */

Test(store, missing_file_refused)
{
    tfile f[] = {{"a.bin", 1000, false}, {"b.bin", 1000, false}};
    ttorrent t = make_torrent("t.torrent", "Set", true, f, 2, true);
    cr_assert_eq(unlink(pathf("Set/b.bin")), 0);
    hk_store *st = hk_store_new(NULL);
    add_fails(st, &t, "Set/b.bin: missing");
    hk_store_stats s;
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.storages, 0u);
    cr_assert_eq(s.open_files, 0u);
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, missing_torrent_folder_or_torrent_refused)
{
    tfile f[] = {{"", 10, false}};
    ttorrent t = make_torrent("t.torrent", "x", false, f, 1, true);
    hk_store *st = hk_store_new(NULL);
    char err[512];
    cr_assert_eq(hk_store_add(st, pathf("nowhere/t.torrent"), t.mi, err, sizeof err), 0u);
    cr_assert_not_null(strstr(err, "missing"), "%s", err);
    cr_assert_eq(hk_store_add(st, pathf("other.torrent"), t.mi, err, sizeof err), 0u);
    cr_assert_not_null(strstr(err, "other.torrent: missing"), "%s", err);
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, wrong_sizes_refused)
{
    tfile f[] = {{"", 5000, false}};
    ttorrent t = make_torrent("t.torrent", "x.iso", false, f, 1, true);
    hk_store *st = hk_store_new(NULL);
    cr_assert_eq(truncate(pathf("x.iso"), 4999), 0);
    add_fails(st, &t, "x.iso: size 4999 but the torrent says 5000");
    cr_assert_eq(truncate(pathf("x.iso"), 5001), 0);
    add_fails(st, &t, "x.iso: size 5001 but the torrent says 5000");
    cr_assert_eq(truncate(pathf("x.iso"), 5000), 0);
    add_ok(st, &t);
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, symlinked_file_refused)
{
    tfile f[] = {{"", 3000, false}};
    ttorrent t = make_torrent("t.torrent", "x.bin", false, f, 1, true);
    /* the real data sits elsewhere with the right size: only the link is wrong */
    cr_assert_eq(rename(pathf("x.bin"), pathf("elsewhere.bin")), 0);
    cr_assert_eq(symlink(pathf("elsewhere.bin"), pathf("x.bin")), 0);
    hk_store *st = hk_store_new(NULL);
    add_fails(st, &t, "x.bin: is a symbolic link");
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, symlinked_directory_refused)
{
    tfile f[] = {{"sub/a.bin", 3000, false}};
    ttorrent t = make_torrent("t.torrent", "Dir", true, f, 1, true);
    hk_store *st = hk_store_new(NULL);
    /* the torrent's own folder <name> is a link */
    cr_assert_eq(rename(pathf("Dir"), pathf("RealDir")), 0);
    cr_assert_eq(symlink("RealDir", pathf("Dir")), 0);
    add_fails(st, &t, "/Dir: is a symbolic link");
    /* a directory deeper down is a link */
    cr_assert_eq(unlink(pathf("Dir")), 0);
    cr_assert_eq(mkdir(pathf("Dir"), 0755), 0);
    cr_assert_eq(symlink(pathf("RealDir/sub"), pathf("Dir/sub")), 0);
    add_fails(st, &t, "Dir/sub: is a symbolic link");
    /* a plain file where a directory should be */
    cr_assert_eq(unlink(pathf("Dir/sub")), 0);
    write_pattern(pathf("Dir/sub"), 0, 10);
    add_fails(st, &t, "Dir/sub: is not a directory");
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, symlinked_torrent_refused)
{
    tfile f[] = {{"", 3000, false}};
    ttorrent t = make_torrent("t.torrent", "x.bin", false, f, 1, true);
    cr_assert_eq(symlink("t.torrent", pathf("link.torrent")), 0);
    hk_store *st = hk_store_new(NULL);
    char err[512];
    cr_assert_eq(hk_store_add(st, pathf("link.torrent"), t.mi, err, sizeof err), 0u);
    cr_assert_not_null(strstr(err, "link.torrent: is a symbolic link"), "%s", err);
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, fifo_and_directory_in_place_of_a_file_refused)
{
    tfile f[] = {{"", 3000, false}};
    ttorrent t = make_torrent("t.torrent", "x.bin", false, f, 1, false);
    cr_assert_eq(mkfifo(pathf("x.bin"), 0644), 0);
    hk_store *st = hk_store_new(NULL);
    add_fails(st, &t, "x.bin: is not a regular file");
    cr_assert_eq(unlink(pathf("x.bin")), 0);
    cr_assert_eq(mkdir(pathf("x.bin"), 0755), 0);
    add_fails(st, &t, "x.bin: is not a regular file");
    hk_store_free(st);
    free_torrent(&t);
}

/* The metainfo parser refuses unsafe names; the store checks again on its own. Hand-built descriptions that the
 * parser would never produce must still be refused. */
Test(store, unsafe_names_refused_even_past_the_parser)
{
    tfile f[] = {{"ok/a.bin", 100, false}};
    ttorrent t = make_torrent("t.torrent", "Safe", true, f, 1, true);
    hk_store *st = hk_store_new(NULL);
    const char *bad_names[] = {"..", ".", "a/b", ""};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        mi_torrent copy = *t.mi;
        copy.name = bad_names[i];
        copy.name_len = (uint16_t)strlen(bad_names[i]);
        char err[512] = "";
        cr_assert_eq(hk_store_add(st, t.path, &copy, err, sizeof err), 0u, "name \"%s\" accepted", bad_names[i]);
        cr_assert_not_null(strstr(err, "not a safe file name"), "%s", err);
    }
    const char *bad_paths[] = {"../x", "ok/../../x", "/abs", "ok//a", "ok/.", ""};
    for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths[0]; i++) {
        size_t n = strlen(bad_paths[i]);
        char *strings = calloc(n + 1, 1);
        memcpy(strings, bad_paths[i], n);
        mi_file mf = t.mi->files[0];
        mf.path = 0;
        mf.path_len = (uint16_t)n;
        mi_torrent copy = *t.mi;
        copy.strings = strings;
        copy.files = &mf;
        char err[512] = "";
        cr_assert_eq(hk_store_add(st, t.path, &copy, err, sizeof err), 0u, "path \"%s\" accepted", bad_paths[i]);
        cr_assert_not_null(strstr(err, "unsafe path"), "%s", err);
        free(strings);
    }
    add_ok(st, &t);
    hk_store_free(st);
    free_torrent(&t);
}

/* ---- budgets and eviction ---- */

#define NFILES 6
#define FLEN 65536u

static ttorrent six_files(void)
{
    static tfile f[NFILES] = {{"f0", FLEN, false}, {"f1", FLEN, false}, {"f2", FLEN, false},
                              {"f3", FLEN, false}, {"f4", FLEN, false}, {"f5", FLEN, false}};
    return make_torrent("six.torrent", "Six", true, f, NFILES, true);
}

Test(store, tiny_mapped_budget_evicts_lru_never_pinned)
{
    ttorrent t = six_files();
    hk_store_limits lim = {2 * FLEN, 1000, 10};
    hk_store *st = hk_store_new(&lim);
    uint64_t h = add_ok(st, &t);
    hk_store_stats s;

    /* hold file 0 pinned through everything */
    hk_extent held = ext_of(h, 0, 1000, 5000);
    struct iovec held_iov;
    cr_assert_eq(hk_store_pin(st, &held, &held_iov, NULL), 0);

    for (int round = 0; round < 3; round++) {
        for (uint32_t i = 1; i < NFILES; i++) {
            assert_pin_matches(st, h, pathf("Six/f%u", i), i, (uint64_t)i * 100, 20000);
            hk_store_stats_get(st, &s);
            cr_assert_leq(s.mapped_bytes, 2 * FLEN, "round %d file %u: %llu bytes mapped over a %u budget", round, i,
                          (unsigned long long)s.mapped_bytes, 2 * FLEN);
        }
    }
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.pinned_files, 1u);
    cr_assert_eq(s.maps - s.unmaps, s.open_files);
    cr_assert_geq(s.unmaps, 14u, "files 1..5 are cycled through one free slot: %llu unmaps",
                  (unsigned long long)s.unmaps);
    /* the pinned file never left: its memory is still the file's bytes */
    for (size_t k = 0; k < 5000; k++)
        cr_assert_eq(((uint8_t *)held_iov.iov_base)[k], pattern_byte(0, 1000 + k));
    uint64_t maps_before = s.maps;
    assert_pin_matches(st, h, pathf("Six/f0"), 0, 0, 100);
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.maps, maps_before, "file 0 was still mapped (no new map)");

    hk_store_unpin(st, &held);
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.pinned_files, 0u);
    cr_assert_leq(s.mapped_bytes, 2 * FLEN);
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, lru_order_is_least_recently_used)
{
    ttorrent t = six_files();
    hk_store_limits lim = {3 * FLEN, 1000, 10};
    hk_store *st = hk_store_new(&lim);
    uint64_t h = add_ok(st, &t);
    struct iovec iov;
    hk_store_stats s;
    for (uint32_t i = 0; i < 3; i++) { /* map 0, 1, 2 */
        hk_extent e = ext_of(h, i, 0, 10);
        hk_store_prefetch(st, &e);
    }
    hk_extent e0 = ext_of(h, 0, 0, 10);
    cr_assert_eq(hk_store_pin(st, &e0, &iov, NULL), 0); /* touch 0: now 1 is the least recently used */
    hk_store_unpin(st, &e0);
    hk_extent e3 = ext_of(h, 3, 0, 10);
    hk_store_prefetch(st, &e3); /* evicts 1 */
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.maps, 4u);
    cr_assert_eq(s.unmaps, 1u);
    uint64_t maps = s.maps;
    cr_assert_eq(hk_store_pin(st, &e0, &iov, NULL), 0);
    hk_store_unpin(st, &e0);
    hk_extent e2 = ext_of(h, 2, 0, 10);
    cr_assert_eq(hk_store_pin(st, &e2, &iov, NULL), 0);
    hk_store_unpin(st, &e2);
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.maps, maps, "0 and 2 were still mapped");
    hk_extent e1 = ext_of(h, 1, 0, 10);
    cr_assert_eq(hk_store_pin(st, &e1, &iov, NULL), 0);
    hk_store_unpin(st, &e1);
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.maps, maps + 1, "1 had been evicted");
    hk_store_free(st);
    free_torrent(&t);
}

/* A residency query touches an open file like a pin does (the file moves to the front of the LRU without being
 * pinned), and files evicted in turn leave in least-recently-used order. */
Test(store, residency_query_touches_the_lru)
{
    ttorrent t = six_files();
    hk_store_limits lim = {3 * FLEN, 1000, 10};
    hk_store *st = hk_store_new(&lim);
    uint64_t h = add_ok(st, &t);
    hk_store_stats s;
    for (uint32_t i = 0; i < 3; i++) { /* map 0, 1, 2: LRU order 2, 1, 0 */
        hk_extent e = ext_of(h, i, 0, 10);
        hk_store_prefetch(st, &e);
    }
    hk_extent e0 = ext_of(h, 0, 0, 10), e1 = ext_of(h, 1, 0, 10);
    (void)hk_store_resident(st, &e0); /* order 0, 2, 1 */
    (void)hk_store_resident(st, &e1); /* order 1, 0, 2 */
    hk_extent e3 = ext_of(h, 3, 0, 10), e4 = ext_of(h, 4, 0, 10);
    hk_store_prefetch(st, &e3); /* evicts 2: order 3, 1, 0 */
    hk_store_prefetch(st, &e4); /* evicts 0: order 4, 3, 1 */
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.maps, 5u);
    cr_assert_eq(s.unmaps, 2u);
    uint64_t maps = s.maps;
    /* 1, 3 and 4 are mapped (prefetching them maps nothing new); 0 and 2 are not (a residency query says so) */
    hk_store_prefetch(st, &e1);
    hk_store_prefetch(st, &e3);
    hk_store_prefetch(st, &e4);
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.maps, maps, "1, 3 and 4 were still mapped");
    hk_extent e2 = ext_of(h, 2, 0, 10);
    cr_assert(!hk_store_resident(st, &e0), "0 was evicted (an unmapped file is not resident)");
    cr_assert(!hk_store_resident(st, &e2), "2 was evicted");
    cr_assert_eq(s.open_files, 3u);
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, fd_budget_of_two)
{
    ttorrent t = six_files();
    hk_store_limits lim = {1ull << 40, 2, 10};
    hk_store *st = hk_store_new(&lim);
    uint64_t h = add_ok(st, &t);
    hk_store_stats s;
    for (int round = 0; round < 2; round++)
        for (uint32_t i = 0; i < NFILES; i++) {
            assert_pin_matches(st, h, pathf("Six/f%u", i), i, 0, FLEN);
            hk_store_stats_get(st, &s);
            cr_assert_leq(s.open_files, 2u);
        }
    /* pin three at once: the budget is exceeded rather than a pinned file evicted */
    struct iovec iov[3];
    hk_extent e[3];
    for (uint32_t i = 0; i < 3; i++) {
        e[i] = ext_of(h, i, 10, 100);
        cr_assert_eq(hk_store_pin(st, &e[i], &iov[i], NULL), 0);
    }
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.open_files, 3u);
    cr_assert_eq(s.pinned_files, 3u);
    for (uint32_t i = 0; i < 3; i++)
        for (size_t k = 0; k < 100; k++)
            cr_assert_eq(((uint8_t *)iov[i].iov_base)[k], pattern_byte(i, 10 + k));
    /* a fourth file still works: pinned ones stay, it is mapped beside them */
    assert_pin_matches(st, h, pathf("Six/f4"), 4, 0, 100);
    for (uint32_t i = 0; i < 3; i++)
        hk_store_unpin(st, &e[i]);
    hk_store_stats_get(st, &s);
    cr_assert_leq(s.open_files, 2u, "back under budget once unpinned: %u open", s.open_files);
    cr_assert_eq(s.pinned_files, 0u);
    /* nested pins of one extent: the memory stays until the last unpin */
    hk_extent n = ext_of(h, 5, 0, 10);
    struct iovec a, b;
    cr_assert_eq(hk_store_pin(st, &n, &a, NULL), 0);
    cr_assert_eq(hk_store_pin(st, &n, &b, NULL), 0);
    cr_assert_eq(a.iov_base, b.iov_base);
    hk_store_unpin(st, &n);
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.pinned_files, 1u);
    hk_store_unpin(st, &n);
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.pinned_files, 0u);
    hk_store_free(st);
    free_torrent(&t);
}

/* ---- residency and page-in ---- */

static void drop_cache(const char *path)
{
    pc_drop(path, 0, 0);
}

Test(store, resident_after_page_in)
{
    tfile f[] = {{"", 8u << 20, false}}; /* 8 MiB: the kernel's readahead after the page-in never reaches `far` */
    ttorrent t = make_torrent("t.torrent", "big.bin", false, f, 1, true);
    hk_store *st = hk_store_new(NULL);
    uint64_t h = add_ok(st, &t);
    hk_extent e = ext_of(h, 0, 300000, 16384);
    cr_assert(!hk_store_resident(st, &e), "not mapped yet: not resident");

    drop_cache(pathf("big.bin"));
    hk_store_job job;
    cr_assert_eq(hk_store_job_prepare(st, &e, &job), 0);
    cr_assert_geq(job.fd, 0);
    cr_assert(!hk_store_resident(st, &e), "the page cache was dropped: not resident");
    hk_store_page_in(&job);
    cr_assert_eq(job.error, 0);
    hk_store_job_release(st, &job);
    cr_assert_eq(job.fd, -1);
    cr_assert(hk_store_resident(st, &e), "resident after the page-in");
    hk_extent far = ext_of(h, 0, 7800000, 16384);
    cr_assert(!hk_store_resident(st, &far), "pages far away were not read");
    cr_assert(!hk_store_failed(st, h, NULL));
    hk_store_stats s;
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.open_files, 1u, "the job's descriptor was closed");
    hk_store_free(st);
    free_torrent(&t);
}

typedef struct pool_case {
    hk_store *st;
    hk_store_job jobs[8];
    int done;
    struct ev_loop *loop;
} pool_case;

static void job_work(void *arg)
{
    hk_store_page_in(arg);
}

static pool_case *g_case;
static void job_done(void *arg)
{
    hk_store_job_release(g_case->st, arg);
    g_case->done++;
}

Test(store, page_in_on_the_pool)
{
    tfile f[] = {{"", 1u << 20, false}};
    ttorrent t = make_torrent("t.torrent", "big.bin", false, f, 1, true);
    static pool_case pc;
    g_case = &pc;
    pc.st = hk_store_new(NULL);
    pc.loop = ev_loop_new(EVFLAG_AUTO);
    hk_pool *pool = hk_pool_new(pc.loop, 3, 1.0);
    uint64_t h = add_ok(pc.st, &t);
    hk_extent e0 = ext_of(h, 0, 0, 10);
    hk_store_prefetch(pc.st, &e0); /* map it, so the cache drop below applies to a mapped file */
    drop_cache(pathf("big.bin"));
    for (int i = 0; i < 8; i++) {
        hk_extent e = ext_of(h, 0, (uint64_t)i * 131072, 65536);
        cr_assert_eq(hk_store_job_prepare(pc.st, &e, &pc.jobs[i]), 0);
        cr_assert_eq(hk_pool_submit(pool, job_work, job_done, &pc.jobs[i]), 0);
    }
    ev_run(pc.loop, 0);
    cr_assert_eq(pc.done, 8);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(pc.jobs[i].error, 0);
        hk_extent e = ext_of(h, 0, (uint64_t)i * 131072, 65536);
        cr_assert(hk_store_resident(pc.st, &e), "extent %d resident", i);
    }
    hk_pool_free(pool);
    ev_loop_destroy(pc.loop);
    hk_store_free(pc.st);
    free_torrent(&t);
}

Test(store, page_in_of_a_shrunk_file_fails_the_storage)
{
    tfile f[] = {{"", 200000, false}};
    ttorrent t = make_torrent("t.torrent", "x.bin", false, f, 1, true);
    hk_store *st = hk_store_new(NULL);
    uint64_t h = add_ok(st, &t);
    hk_extent e = ext_of(h, 0, 150000, 16384);
    hk_store_job job;
    cr_assert_eq(hk_store_job_prepare(st, &e, &job), 0);
    cr_assert_eq(truncate(pathf("x.bin"), 100000), 0);
    hk_store_page_in(&job);
    cr_assert_eq(job.error, EIO);
    hk_store_job_release(st, &job);
    const char *why = NULL;
    cr_assert(hk_store_failed(st, h, &why));
    cr_assert_not_null(strstr(why, "read failed"), "%s", why);
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, pad_job_needs_no_descriptor)
{
    tfile f[] = {{"a", 1000, false}, {".pad/15384", 15384, true}, {"b", 1000, false}};
    ttorrent t = make_torrent("t.torrent", "P", true, f, 3, true);
    hk_store *st = hk_store_new(NULL);
    uint64_t h = add_ok(st, &t);
    hk_extent e = ext_of(h, 1, 0, 15384);
    hk_store_job job;
    cr_assert_eq(hk_store_job_prepare(st, &e, &job), 0);
    cr_assert_eq(job.fd, -1);
    hk_store_page_in(&job);
    cr_assert_eq(job.error, 0);
    hk_store_job_release(st, &job);
    hk_store_stats s;
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.open_files, 0u);
    hk_store_free(st);
    free_torrent(&t);
}

/* ---- change detection ---- */

static uint64_t mapped_storage(hk_store *st, const ttorrent *t)
{
    uint64_t h = add_ok(st, t);
    hk_extent e = ext_of(h, 0, 0, 100);
    hk_store_prefetch(st, &e);
    hk_store_stats s;
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.open_files, 1u);
    cr_assert_eq(hk_store_check(st), 0u, "nothing changed yet");
    return h;
}

static void assert_failed_with(hk_store *st, uint64_t h, const char *needle)
{
    const char *why = NULL;
    cr_assert(hk_store_failed(st, h, &why), "storage not failed");
    cr_assert_not_null(strstr(why, needle), "why \"%s\" does not say \"%s\"", why, needle);
    struct iovec iov;
    hk_extent e = ext_of(h, 0, 0, 100);
    const char *pwhy = NULL;
    errno = 0;
    cr_assert_eq(hk_store_pin(st, &e, &iov, &pwhy), -1, "a failed storage pins nothing");
    cr_assert_eq(errno, EIO);
    cr_assert_not_null(strstr(pwhy, needle), "pin why \"%s\"", pwhy);
    cr_assert(!hk_store_resident(st, &e));
    hk_store_job job;
    cr_assert_eq(hk_store_job_prepare(st, &e, &job), -1);
    hk_store_stats s;
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.open_files, 0u, "a failed storage's files are closed");
}

Test(store, check_detects_truncation)
{
    tfile f[] = {{"", 100000, false}};
    ttorrent t = make_torrent("t.torrent", "x.bin", false, f, 1, true);
    hk_store *st = hk_store_new(NULL);
    uint64_t h = mapped_storage(st, &t);
    cr_assert_eq(truncate(pathf("x.bin"), 50000), 0);
    cr_assert_eq(hk_store_check(st), 1u);
    cr_assert_eq(hk_store_check(st), 0u, "counted once");
    assert_failed_with(st, h, "size changed from 100000 to 50000");
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, check_detects_growth)
{
    tfile f[] = {{"", 100000, false}};
    ttorrent t = make_torrent("t.torrent", "x.bin", false, f, 1, true);
    hk_store *st = hk_store_new(NULL);
    uint64_t h = mapped_storage(st, &t);
    cr_assert_eq(truncate(pathf("x.bin"), 100001), 0);
    cr_assert_eq(hk_store_check(st), 1u);
    assert_failed_with(st, h, "size changed");
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, check_detects_replacement)
{
    tfile f[] = {{"", 100000, false}};
    ttorrent t = make_torrent("t.torrent", "x.bin", false, f, 1, true);
    hk_store *st = hk_store_new(NULL);
    uint64_t h = mapped_storage(st, &t);
    /* same size, same bytes, new inode: keep the old one linked so only the inode comparison can tell */
    cr_assert_eq(link(pathf("x.bin"), pathf("old.bin")), 0);
    write_pattern(pathf("new.bin"), 0, 100000);
    cr_assert_eq(rename(pathf("new.bin"), pathf("x.bin")), 0);
    cr_assert_eq(hk_store_check(st), 1u);
    assert_failed_with(st, h, "replaced");
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, check_detects_deletion)
{
    tfile f[] = {{"", 100000, false}};
    ttorrent t = make_torrent("t.torrent", "x.bin", false, f, 1, true);
    hk_store *st = hk_store_new(NULL);
    uint64_t h = mapped_storage(st, &t);
    cr_assert_eq(unlink(pathf("x.bin")), 0);
    cr_assert_eq(hk_store_check(st), 1u);
    assert_failed_with(st, h, "deleted");
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, check_detects_move_with_another_link)
{
    tfile f[] = {{"", 100000, false}};
    ttorrent t = make_torrent("t.torrent", "x.bin", false, f, 1, true);
    hk_store *st = hk_store_new(NULL);
    uint64_t h = mapped_storage(st, &t);
    cr_assert_eq(rename(pathf("x.bin"), pathf("moved.bin")), 0); /* link count stays 1: the path lookup tells */
    cr_assert_eq(hk_store_check(st), 1u);
    assert_failed_with(st, h, "x.bin: missing");
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, check_detects_directory_swapped_for_a_symlink)
{
    tfile f[] = {{"d/a.bin", 100000, false}};
    ttorrent t = make_torrent("t.torrent", "M", true, f, 1, true);
    hk_store *st = hk_store_new(NULL);
    uint64_t h = mapped_storage(st, &t);
    cr_assert_eq(rename(pathf("M/d"), pathf("M/real")), 0);
    cr_assert_eq(symlink("real", pathf("M/d")), 0);
    cr_assert_eq(hk_store_check(st), 1u);
    assert_failed_with(st, h, "M/d: is a symbolic link");
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, fresh_pin_detects_truncation_replacement_and_deletion)
{
    tfile f[] = {{"a", 100000, false}, {"b", 100000, false}, {"c", 100000, false}, {"d", 100000, false}};
    ttorrent t = make_torrent("t.torrent", "F", true, f, 4, true);
    hk_store *st = hk_store_new(NULL);
    struct iovec iov;
    const char *why;

    uint64_t h = add_ok(st, &t);
    cr_assert_eq(truncate(pathf("F/a"), 10), 0);
    hk_extent e = ext_of(h, 0, 0, 5);
    cr_assert_eq(hk_store_pin(st, &e, &iov, &why), -1, "the first pin maps, sees the size and refuses");
    cr_assert_not_null(strstr(why, "F/a: size 10 but the torrent says 100000"), "%s", why);
    cr_assert(hk_store_failed(st, h, NULL));
    hk_store_remove(st, h);
    write_pattern(pathf("F/a"), 0, 100000);

    h = add_ok(st, &t);
    cr_assert_eq(unlink(pathf("F/b")), 0);
    e = ext_of(h, 1, 0, 5);
    cr_assert_eq(hk_store_pin(st, &e, &iov, &why), -1);
    cr_assert_not_null(strstr(why, "F/b: missing"), "%s", why);
    cr_assert(hk_store_failed(st, h, NULL));
    hk_store_remove(st, h);
    write_pattern(pathf("F/b"), 1, 100000);

    h = add_ok(st, &t);
    cr_assert_eq(unlink(pathf("F/c")), 0);
    cr_assert_eq(symlink("d", pathf("F/c")), 0);
    e = ext_of(h, 2, 0, 5);
    cr_assert_eq(hk_store_pin(st, &e, &iov, &why), -1);
    cr_assert_not_null(strstr(why, "F/c: is a symbolic link"), "%s", why);
    hk_store_remove(st, h);

    hk_store_stats s;
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.storages, 0u);
    cr_assert_eq(s.open_files, 0u);
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, failure_while_pinned_keeps_memory_until_unpin)
{
    tfile f[] = {{"", 100000, false}};
    ttorrent t = make_torrent("t.torrent", "x.bin", false, f, 1, true);
    hk_store *st = hk_store_new(NULL);
    uint64_t h = add_ok(st, &t);
    hk_extent e = ext_of(h, 0, 0, 4096);
    struct iovec iov;
    cr_assert_eq(hk_store_pin(st, &e, &iov, NULL), 0);
    cr_assert_eq(unlink(pathf("x.bin")), 0);
    cr_assert_eq(hk_store_check(st), 1u);
    hk_store_stats s;
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.open_files, 1u, "pinned: still mapped");
    /* deleted but open: the bytes are still there */
    for (size_t k = 0; k < 4096; k++)
        cr_assert_eq(((uint8_t *)iov.iov_base)[k], pattern_byte(0, k));
    hk_store_unpin(st, &e);
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.open_files, 0u, "closed at the last unpin");
    hk_store_free(st);
    free_torrent(&t);
}

/* ---- truncation safety: the kernel reports EFAULT, it does not raise SIGBUS ---- */

static volatile sig_atomic_t g_sigbus;
static void on_sigbus(int sig)
{
    (void)sig;
    g_sigbus = 1;
    _exit(99); /* a SIGBUS here means the store's safety premise is false on this kernel: fail loudly */
}

static void expect_efault_writev(const struct iovec *iov, int out_fd, const char *what)
{
    errno = 0;
    ssize_t r = writev(out_fd, iov, 1);
    int e = errno;
    cr_log_info("writev from a truncated mapping into %s: %zd (%s)", what, r, r < 0 ? strerror(e) : "short");
    cr_assert(r < 0 ? e == EFAULT : (size_t)r < iov->iov_len,
              "%s: writev returned %zd errno %d: the vanished pages were neither refused nor cut short", what, r, e);
}

Test(store, writev_from_truncated_mapping_is_efault_not_sigbus)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigbus;
    sigaction(SIGBUS, &sa, NULL);

    tfile f[] = {{"", 1u << 20, false}};
    ttorrent t = make_torrent("t.torrent", "x.bin", false, f, 1, true);
    hk_store *st = hk_store_new(NULL);
    uint64_t h = add_ok(st, &t);
    hk_extent beyond = ext_of(h, 0, 512 * 1024, 65536);
    hk_extent across = ext_of(h, 0, 4096 - 100, 65536);
    struct iovec iov_beyond, iov_across;
    cr_assert_eq(hk_store_pin(st, &beyond, &iov_beyond, NULL), 0);
    cr_assert_eq(hk_store_pin(st, &across, &iov_across, NULL), 0);

    cr_assert_eq(truncate(pathf("x.bin"), 4096), 0);
    cr_assert(!hk_store_resident(st, &beyond), "bytes past the end are never resident");

    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    expect_efault_writev(&iov_beyond, sv[0], "a socketpair (all pages gone)");
    expect_efault_writev(&iov_across, sv[0], "a socketpair (first page still there)");
    int p[2];
    cr_assert_eq(pipe(p), 0);
    expect_efault_writev(&iov_beyond, p[1], "a pipe");
    cr_assert_eq(g_sigbus, 0);

    cr_assert_eq(hk_store_check(st), 1u, "and the store notices the truncation");
    hk_store_unpin(st, &beyond);
    hk_store_unpin(st, &across);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
    hk_store_free(st);
    free_torrent(&t);
}

/* ---- removal and handles ---- */

Test(store, remove_while_pinned_defers_release)
{
    tfile f[] = {{"a", 1000, false}, {".pad/1000", 1000, true}, {"b", 1000, false}};
    ttorrent t = make_torrent("t.torrent", "R", true, f, 3, true);
    hk_store *st = hk_store_new(NULL);
    uint64_t h = add_ok(st, &t);
    hk_extent a = ext_of(h, 0, 0, 1000), pad = ext_of(h, 1, 0, 1000), b = ext_of(h, 2, 0, 1000);
    struct iovec ia, ip, ib;
    cr_assert_eq(hk_store_pin(st, &a, &ia, NULL), 0);
    cr_assert_eq(hk_store_pin(st, &pad, &ip, NULL), 0);
    cr_assert_eq(hk_store_pin(st, &b, &ib, NULL), 0);
    hk_store_unpin(st, &b);
    hk_store_remove(st, h);
    hk_store_stats s;
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.storages, 0u);
    cr_assert_eq(s.open_files, 1u, "b (unpinned) closed at once, a kept");
    cr_assert(hk_store_failed(st, h, NULL), "a removed storage resolves as unknown");
    cr_assert_eq(hk_store_pin(st, &b, &ib, NULL), -1);
    for (size_t k = 0; k < 1000; k++)
        cr_assert_eq(((uint8_t *)ia.iov_base)[k], pattern_byte(0, k));
    hk_store_unpin(st, &a);
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.open_files, 0u);
    hk_store_unpin(st, &pad); /* the last pin frees the storage */
    uint64_t h2 = add_ok(st, &t);
    cr_assert_neq(h2, h, "a reused slot gets a new generation");
    cr_assert_eq((uint32_t)h2, (uint32_t)h, "the table slot was reused");
    hk_extent stale = ext_of(h, 0, 0, 10);
    errno = 0;
    cr_assert_eq(hk_store_pin(st, &stale, &ia, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    hk_store_unpin(st, &stale); /* harmless */
    hk_store_free(st);
    free_torrent(&t);
}

Test(store, memory_per_storage_and_file)
{
    tfile one[] = {{"", 1000, false}};
    ttorrent t1 = make_torrent("t1.torrent", "data.bin", false, one, 1, true);
    tfile many[] = {{"01.flac", 10, false}, {"02.flac", 10, false}, {"03.flac", 10, false}, {"04.flac", 10, false}};
    ttorrent t4 = make_torrent("t4.torrent", "Album", true, many, 4, true);
    hk_store *st = hk_store_new(NULL);
    uint64_t h1 = add_ok(st, &t1), h4 = add_ok(st, &t4);
    size_t b1 = hk_store_storage_bytes(st, h1), b4 = hk_store_storage_bytes(st, h4);
    size_t names1 = strlen("t1.torrent") + 1 + strlen("data.bin") + 1;
    size_t names4 = strlen("t4.torrent") + 1 + strlen("Album") + 1 + 4 * (strlen("01.flac") + 1);
    cr_log_info("store memory: single-file storage %zu bytes (%zu of names); 4-file storage %zu bytes (%zu of names)",
                b1, names1, b4, names4);
    /* per file: a 16-byte entry plus its path; fixed: record + .torrent entry + handle table + share of the folder */
    cr_assert_eq(b4 - b1, 16 * 3 + (names4 - names1), "16 bytes per file entry plus names");
    /* both storages share the folder (same one, added in a row): 48 bytes (references, st_dev, st_ino, the length
     * and identity of its served root for --follow-links, the pointer a --data-dir's record has to its .torrent's
     * folder) + its path */
    size_t folder_share = (sizeof(void *) + 40 + strlen(g_dir) + 1) / 2;
    size_t fixed = b1 - 16 - names1 - folder_share;
    cr_log_info("store memory: fixed part per storage %zu bytes, 16 bytes per file entry", fixed);
    cr_assert_leq(fixed, 64u, "fixed per-storage memory grew to %zu bytes", fixed);
    cr_assert_eq(hk_store_storage_bytes(st, 12345), 0u);
    hk_store_free(st);
    free_torrent(&t1);
    free_torrent(&t4);
}

/* ---- the handle table: storages in slabs, generations (issue 10) ---- */

#define SLAB_TEST_N 2100u /* storages: past two slab boundaries of the table (1,024 entries per slab) */

/* Names for the storages of the slab tests: h[i] of kind single (t1) or multi (t4, every third). */
typedef struct slab_names {
    uint64_t h[SLAB_TEST_N];
    uint32_t n;
} slab_names;

static bool slab_multi(uint32_t i)
{
    return i % 3 == 2;
}

static const char *slab_namer(void *ctx, uint64_t storage, int which, char *buf, size_t cap)
{
    (void)buf;
    (void)cap;
    const slab_names *sn = ctx;
    for (uint32_t i = 0; i < sn->n; i++)
        if (sn->h[i] == storage) {
            if (which == HK_STORE_NAME_TORRENT_FILE)
                return slab_multi(i) ? "t4.torrent" : "t1.torrent";
            return slab_multi(i) ? "Album" : "data.bin";
        }
    return NULL;
}

/* Pins the first bytes of file 0 of storage i (of sn) and compares them with the file. */
static void slab_pin_ok(hk_store *st, const slab_names *sn, uint32_t i)
{
    if (slab_multi(i))
        assert_pin_matches(st, sn->h[i], pathf("Album/01.flac"), 0, 0, 10);
    else
        assert_pin_matches(st, sn->h[i], pathf("data.bin"), 0, 0, 1000);
}

/* h resolves for no call; with `freed` (no pin of it outstanding: a removed storage still pinned takes its unpins),
 * unpin and remove are tried too and do nothing. */
static void assert_stale(hk_store *st, uint64_t h, bool freed)
{
    const char *why = NULL;
    cr_assert(hk_store_failed(st, h, &why), "stale handle %#llx resolves", (unsigned long long)h);
    cr_assert_str_eq(why, "unknown storage");
    hk_extent e = ext_of(h, 0, 0, 10);
    struct iovec iov;
    errno = 0;
    cr_assert_eq(hk_store_pin(st, &e, &iov, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    if (!freed)
        return;
    hk_store_unpin(st, &e); /* harmless */
    hk_store_remove(st, h); /* harmless */
}

/* Storages past two slab boundaries: each keeps its entry (pins resolve across later adds), a single-file storage
 * named by the namer is its table entry alone while a multi-file one keeps its files apart, removed indexes are
 * reused with the next generation and their old handles never resolve, a removal while pinned waits for the unpin. */
Test(store, handles_across_slabs_and_reused_indexes)
{
    tfile one[] = {{"", 1000, false}};
    ttorrent t1 = make_torrent("t1.torrent", "data.bin", false, one, 1, true);
    tfile many[] = {{"01.flac", 10, false}, {"02.flac", 10, false}, {"03.flac", 10, false}, {"04.flac", 10, false}};
    ttorrent t4 = make_torrent("t4.torrent", "Album", true, many, 4, true);
    hk_store *st = hk_store_new(NULL);
    slab_names *sn = calloc(1, sizeof *sn);
    cr_assert_not_null(sn);
    hk_store_set_namer(st, slab_namer, sn);
    bool *seen = calloc(SLAB_TEST_N, sizeof *seen);
    for (uint32_t i = 0; i < SLAB_TEST_N; i++) {
        sn->h[i] = add_ok(st, slab_multi(i) ? &t4 : &t1);
        sn->n = i + 1;
        uint32_t idx = (uint32_t)sn->h[i];
        cr_assert_lt(idx, SLAB_TEST_N, "indexes stay below the storages live at once");
        cr_assert(!seen[idx], "index %u handed out twice", idx);
        seen[idx] = true;
        cr_assert_eq(sn->h[i] >> 32, 1u, "a new index starts at generation 1");
    }
    const uint32_t probe[] = {0, 1, 2, 1022, 1023, 1024, 1025, 2047, 2048, 2049, SLAB_TEST_N - 1};
    for (size_t k = 0; k < sizeof probe / sizeof probe[0]; k++)
        slab_pin_ok(st, sn, probe[k]);

    /* The folder is shared by all (its share rounds to 0): a single-file storage is its entry, 40 bytes on LP64; a
     * multi-file one adds its four entries and paths, apart, behind an 8-byte header. */
    size_t b1 = hk_store_storage_bytes(st, sn->h[0]), b4 = hk_store_storage_bytes(st, sn->h[2]);
    cr_log_info("store memory with a namer: single-file storage %zu bytes, 4-file storage %zu bytes", b1, b4);
    if (sizeof(void *) == 8)
        cr_assert_eq(b1, 40u, "a single-file storage is its 40-byte table entry, not %zu bytes", b1);
    cr_assert_eq(b4 - b1, 8 + 4 * 16 + 4 * (strlen("01.flac") + 1), "the files apart: a header, 16 bytes per file "
                 "plus paths");

    /* A pin held on an entry of the second slab across the removals: its memory stays until the unpin. */
    hk_extent held = ext_of(sn->h[1024], 0, 0, 100);
    struct iovec hv;
    cr_assert_eq(hk_store_pin(st, &held, &hv, NULL), 0, "%s", hk_store_last_error(st));
    uint64_t old[SLAB_TEST_N];
    memcpy(old, sn->h, sizeof old);
    for (uint32_t i = 0; i < SLAB_TEST_N; i += 2)
        hk_store_remove(st, sn->h[i]);
    hk_store_stats stats;
    hk_store_stats_get(st, &stats);
    cr_assert_eq(stats.storages, SLAB_TEST_N / 2);
    for (uint32_t i = 0; i < SLAB_TEST_N; i += 2)
        assert_stale(st, old[i], i != 1024);
    for (uint32_t i = 1; i < SLAB_TEST_N; i += 2)
        cr_assert(!hk_store_failed(st, sn->h[i], NULL), "storage %u lost by the removal of others", i);
    for (size_t k = 0; k < sizeof probe / sizeof probe[0]; k++)
        if (probe[k] % 2 == 1)
            slab_pin_ok(st, sn, probe[k]);
    cr_assert_eq(((const uint8_t *)hv.iov_base)[0], pattern_byte(0, 0), "a pinned removed storage keeps its bytes");
    hk_store_unpin(st, &held); /* the last pin frees it */

    /* Adds reuse the freed indexes, every one with generation 2 (freed once); the old handles stay stale. */
    memset(seen, 0, SLAB_TEST_N * sizeof *seen);
    for (uint32_t i = 0; i < SLAB_TEST_N; i += 2) {
        sn->h[i] = add_ok(st, slab_multi(i) ? &t4 : &t1);
        uint32_t idx = (uint32_t)sn->h[i];
        cr_assert(idx % 2 == 0 && idx < SLAB_TEST_N && !seen[idx], "index %u is not a freed one, once", idx);
        seen[idx] = true;
        cr_assert_eq(sn->h[i] >> 32, 2u, "a reused index moves to the next generation");
    }
    for (uint32_t i = 0; i < SLAB_TEST_N; i += 2)
        assert_stale(st, old[i], true);
    /* The new handles resolve, and name their files through the namer. */
    for (uint32_t i = 0; i < SLAB_TEST_N; i += 2)
        cr_assert(!hk_store_failed(st, sn->h[i], NULL));
    for (size_t k = 0; k < sizeof probe / sizeof probe[0]; k++)
        slab_pin_ok(st, sn, probe[k]);
    hk_store_stats_get(st, &stats);
    cr_assert_eq(stats.storages, SLAB_TEST_N);
    hk_store_free(st); /* frees every storage and its files apart (ASan: no leak) */
    free(seen);
    free(sn);
    free_torrent(&t1);
    free_torrent(&t4);
}

/* One index freed and reused HK_STORE_MAX_GEN + 2 times: its generation goes 1, 2, ..., HK_STORE_MAX_GEN, then 1
 * again (a handle is never 0), and the previous handle never resolves. */
Test(store, generation_wraps_and_handles_stay_nonzero)
{
    tfile one[] = {{"", 100, false}};
    ttorrent t1 = make_torrent("t1.torrent", "data.bin", false, one, 1, true);
    hk_store *st = hk_store_new(NULL);
    uint64_t prev = 0;
    for (uint32_t i = 0; i < HK_STORE_MAX_GEN + 2; i++) {
        uint64_t h = add_ok(st, &t1);
        cr_assert_neq(h, 0u);
        cr_assert_eq((uint32_t)h, 0u, "the one index is reused");
        cr_assert_eq(h >> 32, (uint64_t)(i % HK_STORE_MAX_GEN) + 1, "add %u", i);
        if (prev != 0)
            cr_assert(hk_store_failed(st, prev, NULL), "the previous handle resolves at add %u", i);
        cr_assert(!hk_store_failed(st, h, NULL));
        hk_store_remove(st, h);
        cr_assert(hk_store_failed(st, h, NULL));
        prev = h;
    }
    hk_store_free(st);
    free_torrent(&t1);
}

/* ---- folders swapped for symbolic links after the add (issue 14: nothing outside DIR is ever served) ---- */

/* Moves the .torrent and its data (made by make_torrent in g_dir) into g_dir/DIR/sub, where the store will find them,
 * and builds g_dir/outside/<name>/... holding same-named, same-sized files with other bytes (and a copy of the
 * .torrent), the place a swapped folder will point to. */
static void move_into_sub(ttorrent *t, const char *name, const tfile *files, size_t n)
{
    cr_assert_eq(mkdir(pathf("DIR"), 0755), 0);
    cr_assert_eq(mkdir(pathf("DIR/sub"), 0755), 0);
    cr_assert_eq(rename(t->path, pathf("DIR/sub/t.torrent")), 0);
    cr_assert_eq(rename(pathf("%s", name), pathf("DIR/sub/%s", name)), 0);
    snprintf(t->path, sizeof t->path, "%s", pathf("DIR/sub/t.torrent"));
    cr_assert_eq(mkdir(pathf("outside"), 0755), 0);
    for (size_t i = 0; i < n; i++) {
        char *p = pathf("outside/%s/%s", name, files[i].path);
        mkdirs_for(p);
        write_pattern(p, (uint32_t)i + 100, files[i].len); /* other bytes, same size */
    }
    FILE *f = fopen(pathf("outside/t.torrent"), "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(t->bytes, 1, t->len, f), t->len);
    fclose(f);
}

/* Every way of reaching file `file` of h fails with EIO and leaves the storage failed, naming `needle`; whatever
 * memory a pin might still hand out never holds the outside bytes. */
static void assert_nothing_served(hk_store *st, uint64_t h, uint32_t file, uint32_t len, const char *needle)
{
    hk_extent e = ext_of(h, file, 0, len);
    struct iovec iov;
    const char *why = NULL;
    errno = 0;
    int rc = hk_store_pin(st, &e, &iov, &why);
    if (rc == 0) {
        uint8_t first = ((const uint8_t *)iov.iov_base)[0];
        hk_store_unpin(st, &e);
        cr_assert_fail("file %u pinned after its folder was swapped (first byte %s the outside one)", file,
                       first == pattern_byte(file + 100, 0) ? "is" : "is not");
    }
    cr_assert_eq(errno, EIO, "pin: %s", why ? why : "?");
    cr_assert_not_null(strstr(why, needle), "pin why \"%s\" does not say \"%s\"", why, needle);
    const char *fwhy = NULL;
    cr_assert(hk_store_failed(st, h, &fwhy), "storage not failed");
    cr_assert_not_null(strstr(fwhy, needle), "failed why \"%s\"", fwhy);
    hk_store_job job;
    cr_assert_eq(hk_store_job_prepare(st, &e, &job), -1);
    hk_extent meta = ext_of(h, HK_FILE_METAINFO, 0, 10);
    cr_assert_eq(hk_store_pin(st, &meta, &iov, NULL), -1, "the .torrent of a failed storage is not served");
}

static const tfile g_swap_files[] = {{"a.bin", 70000, false}, {"d/b.bin", 50000, false}, {"c.bin", 30000, false}};

/* The <name> folder of a multi-file torrent becomes a link to an outside folder: a file evicted and mapped again, and
 * one never mapped before, both fail the storage. */
Test(store, name_folder_swapped_for_a_link_serves_nothing)
{
    ttorrent t = make_torrent("t.torrent", "M", true, g_swap_files, 3, true);
    move_into_sub(&t, "M", g_swap_files, 3);
    hk_store_limits lim = {.max_mapped_bytes = 1u << 30, .max_open_files = 1, .resident_keep_ms = 10};
    hk_store *st = hk_store_new(&lim);
    uint64_t h = add_ok(st, &t);
    assert_pin_matches(st, h, pathf("DIR/sub/M/a.bin"), 0, 0, 1000);
    assert_pin_matches(st, h, pathf("DIR/sub/M/d/b.bin"), 1, 0, 1000); /* evicts a.bin (one descriptor) */
    cr_assert_eq(rename(pathf("DIR/sub/M"), pathf("DIR/sub/M.orig")), 0);
    cr_assert_eq(symlink(pathf("outside/M"), pathf("DIR/sub/M")), 0);
    assert_nothing_served(st, h, 0, 1000, "DIR/sub/M: is a symbolic link"); /* re-map after eviction */
    hk_store_remove(st, h);
    /* a fresh storage added before the swap, never mapped: its first map refuses too */
    cr_assert_eq(unlink(pathf("DIR/sub/M")), 0);
    cr_assert_eq(rename(pathf("DIR/sub/M.orig"), pathf("DIR/sub/M")), 0);
    h = add_ok(st, &t);
    cr_assert_eq(rename(pathf("DIR/sub/M"), pathf("DIR/sub/M.orig")), 0);
    cr_assert_eq(symlink(pathf("outside/M"), pathf("DIR/sub/M")), 0);
    assert_nothing_served(st, h, 2, 1000, "DIR/sub/M: is a symbolic link");
    hk_store_free(st);
    free_torrent(&t);
}

/* The folder holding the .torrent becomes a link to an outside folder with the same layout: re-maps, fresh maps, the
 * .torrent itself (ut_metadata) and the periodic check all refuse it, naming the folder. */
Test(store, torrent_folder_swapped_for_a_link_serves_nothing)
{
    ttorrent t = make_torrent("t.torrent", "M", true, g_swap_files, 3, true);
    move_into_sub(&t, "M", g_swap_files, 3);
    hk_store_limits lim = {.max_mapped_bytes = 1u << 30, .max_open_files = 1, .resident_keep_ms = 10};
    hk_store *st = hk_store_new(&lim);
    uint64_t h = add_ok(st, &t);
    assert_pin_matches(st, h, pathf("DIR/sub/M/a.bin"), 0, 0, 1000);
    assert_pin_matches(st, h, pathf("DIR/sub/M/d/b.bin"), 1, 0, 1000); /* evicts a.bin */
    cr_assert_eq(rename(pathf("DIR/sub"), pathf("DIR/sub.orig")), 0);
    cr_assert_eq(symlink(pathf("outside"), pathf("DIR/sub")), 0);
    assert_nothing_served(st, h, 0, 1000, "DIR/sub: is a symbolic link");
    hk_store_remove(st, h);

    /* never mapped: the .torrent (ut_metadata) and a data file */
    cr_assert_eq(unlink(pathf("DIR/sub")), 0);
    cr_assert_eq(rename(pathf("DIR/sub.orig"), pathf("DIR/sub")), 0);
    h = add_ok(st, &t);
    cr_assert_eq(rename(pathf("DIR/sub"), pathf("DIR/sub.orig")), 0);
    cr_assert_eq(symlink(pathf("outside"), pathf("DIR/sub")), 0);
    hk_extent meta = ext_of(h, HK_FILE_METAINFO, 0, 10);
    struct iovec iov;
    const char *why = NULL;
    cr_assert_eq(hk_store_pin(st, &meta, &iov, &why), -1, "the outside .torrent was served");
    assert_nothing_served(st, h, 2, 1000, "DIR/sub: is a symbolic link");
    hk_store_remove(st, h);

    /* mapped before the swap: the periodic check fails the storage at once */
    cr_assert_eq(unlink(pathf("DIR/sub")), 0);
    cr_assert_eq(rename(pathf("DIR/sub.orig"), pathf("DIR/sub")), 0);
    h = add_ok(st, &t);
    assert_pin_matches(st, h, pathf("DIR/sub/M/c.bin"), 2, 0, 1000);
    cr_assert_eq(rename(pathf("DIR/sub"), pathf("DIR/sub.orig")), 0);
    cr_assert_eq(symlink(pathf("outside"), pathf("DIR/sub")), 0);
    cr_assert_eq(hk_store_check(st), 1u);
    assert_nothing_served(st, h, 0, 1000, "DIR/sub: is a symbolic link");
    hk_store_free(st);
    free_torrent(&t);
}

/* The folder holding the .torrent renamed away and a real directory (no link) with the outside files put in its
 * place: only the identity recorded at add time can tell, and it does. */
Test(store, torrent_folder_replaced_by_another_directory_serves_nothing)
{
    ttorrent t = make_torrent("t.torrent", "M", true, g_swap_files, 3, true);
    move_into_sub(&t, "M", g_swap_files, 3);
    hk_store *st = hk_store_new(NULL);
    uint64_t h = add_ok(st, &t);
    cr_assert_eq(rename(pathf("DIR/sub"), pathf("DIR/sub.orig")), 0);
    cr_assert_eq(rename(pathf("outside"), pathf("DIR/sub")), 0);
    assert_nothing_served(st, h, 0, 1000, "DIR/sub: replaced, not the folder that was scanned");
    hk_store_free(st);
    free_torrent(&t);
}

/* Where openat2 is missing (an older kernel, or a seccomp filter answering ENOSYS), the component walk with
 * O_NOFOLLOW refuses the swapped folder just the same. The child installs such a filter and reports by exit code. */
static void deny_openat2(void)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat2, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = (unsigned short)(sizeof code / sizeof code[0]), .filter = code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        _exit(10);
    if (syscall(__NR_openat2, AT_FDCWD, "/", NULL, 0) != -1 || errno != ENOSYS)
        _exit(11);
}

Test(store, swapped_folder_refused_without_openat2)
{
    ttorrent t = make_torrent("t.torrent", "M", true, g_swap_files, 3, true);
    move_into_sub(&t, "M", g_swap_files, 3);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        deny_openat2();
        hk_store *st = hk_store_new(NULL);
        char err[512];
        uint64_t h = hk_store_add(st, t.path, t.mi, err, sizeof err);
        hk_extent e = ext_of(h, 0, 0, 1000);
        struct iovec iov;
        const char *why = NULL;
        if (h == 0 || hk_store_pin(st, &e, &iov, &why) != 0)
            _exit(12); /* the walk must work where nothing was swapped */
        hk_store_unpin(st, &e);
        if (rename(pathf("DIR/sub"), pathf("DIR/sub.orig")) != 0 || symlink(pathf("outside"), pathf("DIR/sub")) != 0)
            _exit(13);
        e.file = 1; /* never mapped */
        if (hk_store_pin(st, &e, &iov, &why) == 0)
            _exit(14);
        if (strstr(why, "DIR/sub: is a symbolic link") == NULL || !hk_store_failed(st, h, NULL))
            _exit(15);
        hk_store_free(st);
        _exit(0);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "the child died");
    static const char *const what[] = {[10] = "could not install the seccomp filter",
                                       [11] = "openat2 still works under the filter",
                                       [12] = "the walk refused an intact storage",
                                       [13] = "could not swap the folder",
                                       [14] = "the swapped folder was served",
                                       [15] = "the failure does not name the link or the storage is not failed"};
    int code = WEXITSTATUS(status);
    cr_assert_eq(code, 0, "without openat2: %s (exit %d)", code >= 10 && code <= 15 ? what[code] : "?", code);
    free_torrent(&t);
}

/* Issue 10: a storage keeps the .torrent's name without its ".torrent" suffix (a flag implies it); the .torrent is
 * still found under its whole name, with or without the suffix, and the suffix alone is a name. */
Test(store, torrent_name_suffix_is_implied_not_lost)
{
    tfile f[] = {{NULL, 3000, false}};
    const char *names[] = { "a.torrent", "b.tor", ".torrent", "c.torrent.torrent" };
    const char *data[] = { "A", "B", "C", "D" };
    hk_store *st = hk_store_new(NULL);
    for (size_t i = 0; i < 4; i++) {
        ttorrent t = make_torrent(names[i], data[i], false, f, 1, true);
        uint64_t h = add_ok(st, &t);
        size_t ilen = t.mi->info_end - t.mi->info_start;
        hk_extent info = ext_of(h, HK_FILE_METAINFO, t.mi->info_start, (uint32_t)ilen);
        struct iovec iov;
        cr_assert_eq(hk_store_pin(st, &info, &iov, NULL), 0, "%s: %s", names[i], hk_store_last_error(st));
        cr_assert_eq(memcmp(iov.iov_base, t.bytes + t.mi->info_start, ilen), 0, "%s", names[i]);
        hk_store_unpin(st, &info);
        free_torrent(&t);
    }
    hk_store_free(st);
}
