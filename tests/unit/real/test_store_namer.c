/* Unit test of the store's namer (backend-real/lib/disk/store.h, hk_store_set_namer; issue 10): with a namer set, a
 * storage keeps neither the .torrent's name nor the torrent's name, and the store asks the namer for them whenever
 * it opens a file after hk_store_add (which uses the names it was given). A single-file and a multi-file torrent are
 * served through a namer that answers from a table of its own, and a storage whose namer forgot it cannot open its
 * files (it fails, no file of another name is opened). The record is smaller too (hk_store_storage_bytes). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metainfo.h"
#include "store.h"
#include "torrent_builder.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/hk-store-namer-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(store_namer, .init = setup, .fini = teardown, .timeout = 30);

static void write_file(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(bytes, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/* What the namer knows: one entry per storage (storage 0: free). */
typedef struct known {
    uint64_t storage;
    const char *tfile, *name;
} known;

typedef struct namer_state {
    known k[4];
    unsigned calls;
} namer_state;

static const char *namer(void *ctx, uint64_t storage, int which, char *buf, size_t cap)
{
    namer_state *ns = ctx;
    ns->calls++;
    cr_assert_geq(cap, 256, "the store gives room for any file name");
    for (size_t i = 0; i < 4; i++)
        if (ns->k[i].storage == storage && storage != 0) {
            snprintf(buf, cap, "%s", which == HK_STORE_NAME_TORRENT_FILE ? ns->k[i].tfile : ns->k[i].name);
            return buf;
        }
    return NULL;
}

/* A .torrent (tname, below dir) and its data; returns the storage, added with the namer set. */
static uint64_t add(hk_store *st, const char *tname, const uint8_t *t, size_t tlen, mi_torrent **mi)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, tname);
    write_file(path, t, tlen);
    cr_assert_eq(mi_parse(t, tlen, mi, NULL), 0);
    char err[512];
    uint64_t h = hk_store_add(st, path, *mi, err, sizeof err);
    cr_assert_neq(h, 0, "%s", err);
    return h;
}

/* Pins [off, +len) of file `file` of h and checks its first byte. */
static void pin_expect(hk_store *st, uint64_t h, uint32_t file, uint64_t off, uint32_t len, uint8_t first)
{
    hk_extent e = { .storage = h, .file = file, .offset = off, .length = len };
    struct iovec iov;
    cr_assert_eq(hk_store_pin(st, &e, &iov, NULL), 0, "file %u: %s", file, hk_store_last_error(st));
    cr_assert_eq(iov.iov_len, len);
    cr_assert_eq(((const uint8_t *)iov.iov_base)[0], first);
    hk_store_unpin(st, &e);
}

Test(store_namer, names_come_from_the_namer_after_the_add)
{
    char p[160];
    uint8_t data[5000];
    memset(data, 'S', sizeof data);
    snprintf(p, sizeof p, "%s/single.bin", dir);
    write_file(p, data, sizeof data);
    snprintf(p, sizeof p, "%s/album", dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    memset(data, 'M', sizeof data);
    snprintf(p, sizeof p, "%s/album/cd1.flac", dir);
    write_file(p, data, 3000);
    memset(data, 'N', sizeof data);
    snprintf(p, sizeof p, "%s/album/cd2.flac", dir);
    write_file(p, data, 2000);

    hk_store *st = hk_store_new(NULL);
    namer_state ns = { .calls = 0 };
    hk_store_set_namer(st, namer, &ns);
    size_t l1, l2;
    uint8_t *t1 = tb_single("single.bin", 16384, 5000, &l1);
    tb_file files[] = { { "cd1.flac", 3000, false }, { "cd2.flac", 2000, false } };
    uint8_t *t2 = tb_torrent("album", 16384, files, 2, &l2);
    mi_torrent *m1, *m2;
    uint64_t h1 = add(st, "one.torrent", t1, l1, &m1);
    uint64_t h2 = add(st, "two.torrent", t2, l2, &m2);
    cr_assert_eq(ns.calls, 0, "hk_store_add uses the names it is given");
    ns.k[0] = (known){ h1, "one.torrent", "single.bin" };
    ns.k[1] = (known){ h2, "two.torrent", "album" };

    pin_expect(st, h1, 0, 4000, 1000, 'S');
    pin_expect(st, h2, 1, 0, 2000, 'N');
    pin_expect(st, h2, 0, 10, 100, 'M');
    pin_expect(st, h1, HK_FILE_METAINFO, m1->info_start, (uint32_t)(m1->info_end - m1->info_start), 'd');
    cr_assert_geq(ns.calls, 4, "each first open asks the namer");
    cr_assert_eq(hk_store_check(st), 0, "the open files are found again under the names the namer gives");
    cr_assert(!hk_store_failed(st, h1, NULL) && !hk_store_failed(st, h2, NULL));

    size_t with = hk_store_storage_bytes(st, h1);
    hk_store *own = hk_store_new(NULL);
    mi_torrent *m3;
    uint64_t h3 = add(own, "one.torrent", t1, l1, &m3);
    cr_assert_lt(with, hk_store_storage_bytes(own, h3), "the names are not kept: %zu bytes", with);
    hk_store_free(own);

    ns.k[1].storage = 0; /* the namer forgets h2: its files cannot be named, so none is opened */
    hk_store_free(st);
    st = hk_store_new(NULL);
    hk_store_set_namer(st, namer, &ns);
    mi_free(m2);
    h2 = add(st, "two.torrent", t2, l2, &m2);
    hk_extent e = { .storage = h2, .file = 0, .offset = 0, .length = 100 };
    struct iovec iov;
    cr_assert_eq(hk_store_pin(st, &e, &iov, NULL), -1, "no name, no file");
    cr_assert(hk_store_failed(st, h2, NULL));
    hk_store_free(st);
    mi_free(m1);
    mi_free(m2);
    mi_free(m3);
    free(t1);
    free(t2);
}
