/* Tests of backend-real's piece verifier (backend-real/lib/disk/verify.h): a piece whose data matches the SHA-1 in
 * the .torrent is GOOD, a piece with one flipped byte BAD, a file truncated under the store ERROR; a piece over many
 * tiny files (copied) and a large one (read on the pool) both hash right; every completion comes from the loop, one
 * per request, and no descriptor is left open afterwards; a .torrent shrunk under its mapping (a SIGBUS on the pool
 * thread) is an ERROR, not a crash. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <ev.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures.h"
#include "metainfo.h"
#include "pool.h"
#include "store.h"
#include "torrent_builder.h"
#include "verify.h"

#define PL 32768u

static char *g_dir;
static void setup(void) { g_dir = fx_mkdtemp("verify"); cr_assert_not_null(g_dir); }
static void teardown(void) { fx_rmtree(g_dir); free(g_dir); }
TestSuite(verify, .init = setup, .fini = teardown, .timeout = 60);

typedef struct done_log {
    uint64_t token[16];
    hk_verify_result result[16];
    int n;
} done_log;

static void on_done(void *arg, uint64_t token, hk_verify_result result, int error)
{
    (void)error;
    done_log *d = arg;
    cr_assert_lt(d->n, 16);
    d->token[d->n] = token;
    d->result[d->n++] = result;
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3;
}

/* Writes `data` (total bytes, files as given) and a .torrent with the real piece hashes; adds it to st. */
static uint64_t add_hashed(hk_store *st, const tb_file *files, size_t nfiles, const uint8_t *data, uint64_t total,
                           mi_torrent **mi)
{
    char path[512];
    uint64_t at = 0;
    for (size_t i = 0; i < nfiles; i++) {
        if (files[i].path)
            snprintf(path, sizeof path, "%s/t/%s", g_dir, files[i].path);
        else
            snprintf(path, sizeof path, "%s/t", g_dir);
        if (files[i].path && i == 0) {
            char folder[512];
            snprintf(folder, sizeof folder, "%s/t", g_dir);
            cr_assert_eq(fx_sh("mkdir -p '%s'", folder), 0);
        }
        cr_assert_eq(fx_write(path, data + at, files[i].length), 0);
        at += files[i].length;
    }
    size_t tlen;
    uint8_t *tb = tb_torrent("t", PL, files, nfiles, &tlen);
    mi_error err;
    cr_assert_eq(mi_parse(tb, tlen, mi, &err), 0, "%s", err.what);
    for (uint32_t p = 0; p < (*mi)->piece_count; p++) {
        uint64_t off = (uint64_t)p * PL, n = total - off < PL ? total - off : PL;
        SHA1(data + off, n, tb + (*mi)->pieces_offset + 20u * p);
    }
    snprintf(path, sizeof path, "%s/t.torrent", g_dir);
    cr_assert_eq(fx_write(path, tb, tlen), 0);
    free(tb);
    char e[512] = "";
    uint64_t h = hk_store_add(st, path, *mi, e, sizeof e);
    cr_assert_neq(h, 0u, "%s", e);
    return h;
}

/* The request for piece p of a single-file torrent (one extent). */
static hk_verify_req single_req(uint64_t storage, const mi_torrent *mi, uint32_t p, hk_extent *ext)
{
    *ext = (hk_extent){.storage = storage, .file = 0, .offset = (uint64_t)p * PL, .length = mi_piece_size(mi, p)};
    return (hk_verify_req){.piece = p, .nexts = 1, .exts = ext,
                           .hash = {.storage = storage, .file = HK_FILE_METAINFO,
                                    .offset = mi->pieces_offset + 20u * p, .length = 20}};
}

Test(verify, good_bad_and_unreadable_pieces)
{
    uint64_t total = 3 * PL + 1000;
    uint8_t *data = malloc(total);
    for (uint64_t i = 0; i < total; i++)
        data[i] = (uint8_t)(i * 31u + 7u);
    tb_file f = {.path = NULL, .length = total};
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_store *st = hk_store_new(NULL);
    hk_pool *pool = hk_pool_new(loop, 2, 1.0);
    done_log d = {0};
    hk_verifier *v = hk_verifier_new(st, pool, on_done, &d);
    mi_torrent *mi;
    uint64_t h = add_hashed(st, &f, 1, data, total, &mi);
    int fds0 = open_fds();
    /* flip one byte of piece 1 on disk (the size stays) */
    char path[512];
    snprintf(path, sizeof path, "%s/t", g_dir);
    data[PL + 100] ^= 0xFF;
    cr_assert_eq(fx_write(path, data, total), 0);
    hk_extent e0, e1, e3;
    hk_verify_req r0 = single_req(h, mi, 0, &e0), r1 = single_req(h, mi, 1, &e1), r3 = single_req(h, mi, 3, &e3);
    cr_assert_eq(hk_verifier_submit(v, &r0, 10), 0);
    cr_assert_eq(hk_verifier_submit(v, &r1, 11), 0);
    cr_assert_eq(hk_verifier_submit(v, &r3, 13), 0);
    cr_assert_eq(d.n, 0, "never completed synchronously");
    ev_run(loop, 0);
    cr_assert_eq(d.n, 3);
    for (int k = 0; k < 3; k++) {
        hk_verify_result want = d.token[k] == 11 ? HK_VERIFY_BAD : HK_VERIFY_GOOD;
        cr_assert_eq(d.result[k], want, "token %llu: %d", (unsigned long long)d.token[k], d.result[k]);
    }
    cr_assert_leq(open_fds(), fds0 + 2, "the jobs' descriptors are closed (the store may keep its own)");
    /* the file shrinks under the store: the last piece cannot be read */
    cr_assert_eq(truncate(path, 3 * PL), 0);
    cr_assert_eq(hk_verifier_submit(v, &r3, 14), 0);
    ev_run(loop, 0);
    cr_assert_eq(d.n, 4);
    cr_assert_eq(d.result[3], HK_VERIFY_ERROR);
    hk_pool_free(pool);
    hk_verifier_free(v);
    hk_store_free(st);
    ev_loop_destroy(loop);
    mi_free(mi);
    free(data);
}

Test(verify, a_piece_over_tiny_files_and_a_large_one)
{
    enum { NT = 300 };
    tb_file files[NT + 1];
    char names[NT + 1][16];
    uint64_t total = 0;
    for (int i = 0; i < NT; i++) {
        snprintf(names[i], sizeof names[i], "f%03d", i);
        files[i] = (tb_file){.path = names[i], .length = 50};
        total += 50;
    }
    snprintf(names[NT], sizeof names[NT], "big");
    files[NT] = (tb_file){.path = names[NT], .length = 3 * PL};
    total += 3 * PL;
    uint8_t *data = malloc(total);
    for (uint64_t i = 0; i < total; i++)
        data[i] = (uint8_t)(i * 17u + 3u);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_store *st = hk_store_new(NULL);
    hk_pool *pool = hk_pool_new(loop, 2, 1.0);
    done_log d = {0};
    hk_verifier *v = hk_verifier_new(st, pool, on_done, &d);
    mi_torrent *mi;
    uint64_t h = add_hashed(st, files, NT + 1, data, total, &mi);
    /* piece 0: the 300 tiny files (15000 bytes) then the start of big */
    hk_extent ext[NT + 1];
    for (int i = 0; i < NT; i++)
        ext[i] = (hk_extent){.storage = h, .file = (uint32_t)i, .offset = 0, .length = 50};
    ext[NT] = (hk_extent){.storage = h, .file = NT, .offset = 0, .length = PL - 50 * NT};
    hk_verify_req r = {.piece = 0, .nexts = NT + 1, .exts = ext,
                       .hash = {.storage = h, .file = HK_FILE_METAINFO, .offset = mi->pieces_offset, .length = 20}};
    cr_assert_eq(hk_verifier_submit(v, &r, 1), 0);
    ev_run(loop, 0);
    cr_assert_eq(d.n, 1);
    cr_assert_eq(d.result[0], HK_VERIFY_GOOD);
    hk_pool_free(pool);
    hk_verifier_free(v);
    hk_store_free(st);
    ev_loop_destroy(loop);
    mi_free(mi);
    free(data);
}

/* The .torrent shrinks to nothing after the store mapped it: the expected hash is read from a page no file backs any
 * more. That read is not populated first, so it raises SIGBUS on the pool thread; the guard (mapguard.h) makes it an
 * ERROR (the process lives, the storage is failed). */
Test(verify, a_torrent_file_shrunk_under_its_mapping_is_an_error_not_a_signal)
{
    uint64_t total = 2 * PL;
    uint8_t *data = malloc(total);
    for (uint64_t i = 0; i < total; i++)
        data[i] = (uint8_t)(i * 13u + 5u);
    tb_file f = {.path = NULL, .length = total};
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_store *st = hk_store_new(NULL);
    hk_pool *pool = hk_pool_new(loop, 2, 1.0);
    done_log d = {0};
    hk_verifier *v = hk_verifier_new(st, pool, on_done, &d);
    mi_torrent *mi;
    uint64_t h = add_hashed(st, &f, 1, data, total, &mi);
    hk_extent e0, e1;
    hk_verify_req r0 = single_req(h, mi, 0, &e0), r1 = single_req(h, mi, 1, &e1);
    cr_assert_eq(hk_verifier_submit(v, &r0, 1), 0);
    ev_run(loop, 0);
    cr_assert_eq(d.n, 1);
    cr_assert_eq(d.result[0], HK_VERIFY_GOOD, "the .torrent and the data are mapped now");
    char path[512];
    snprintf(path, sizeof path, "%s/t.torrent", g_dir);
    cr_assert_eq(truncate(path, 0), 0);
    cr_assert_eq(hk_verifier_submit(v, &r1, 2), 0);
    ev_run(loop, 0);
    cr_assert_eq(d.n, 2);
    cr_assert_eq(d.result[1], HK_VERIFY_ERROR);
    const char *why = NULL;
    cr_assert(hk_store_failed(st, h, &why), "the storage is failed");
    cr_log_info("why: %s", why ? why : "(none)");
    hk_pool_free(pool);
    hk_verifier_free(v);
    hk_store_free(st);
    ev_loop_destroy(loop);
    mi_free(mi);
    free(data);
}
