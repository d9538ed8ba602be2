/* Tests of backend-real/lib/catalog/resume: the resume state through the runtime. A first run scans four torrents,
 * marks pieces good (as verification would) and saves; between runs one .torrent is removed, one data file changes,
 * one .torrent is rewritten. The second run serves from the state exactly the unchanged ones without reading them
 * (the scan that follows finds them unchanged), restores the marks whose data did not change and only those, leaves
 * the rewritten one to the scan, and drops the removed one from the next save. A truncated, corrupt or foreign state
 * file is ignored (nothing served from it, everything read from the .torrent files), and the state file is replaced
 * atomically (no temporary left behind); a save with nothing new rewrites nothing, one after a new good mark does. */
#include <criterion/criterion.h>

#include <ev.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "fixtures.h"
#include "log.h"
#include "piece_state.h"
#include "real_runtime.h"
#include "rescan.h"
#include "resume.h"
#include "resume_state.h"
#include "torrent_builder.h"

static char *dir;
static char state[256];
static uint8_t ih[4][20];

static void path_of(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

static void write_torrent(int i, const uint8_t *bytes, size_t len)
{
    char p[256], n[32];
    snprintf(n, sizeof n, "%c.torrent", 'a' + i);
    path_of(p, sizeof p, n);
    cr_assert_eq(fx_write(p, bytes, len), 0);
    mi_torrent *mi;
    mi_error e;
    cr_assert_eq(mi_parse(bytes, len, &mi, &e), 0, "%s", e.what);
    memcpy(ih[i], mi->info_hash, 20);
    mi_free(mi);
}

/* a, c, d: single-file torrents of 3 bytes (one piece); b: two files, 20000 bytes (two pieces of 16 KiB). */
static void make_fixture(void)
{
    hk_log_set_level(HK_LOG_ERROR);
    dir = fx_mkdtemp("resume");
    snprintf(state, sizeof state, "%s/state", dir);
    char p[256];
    size_t len;
    for (int i = 0; i < 4; i++) {
        if (i == 1)
            continue;
        char name[16];
        snprintf(name, sizeof name, "%c.bin", 'a' + i);
        uint8_t *t = tb_single(name, 16384, 3, &len);
        write_torrent(i, t, len);
        free(t);
        path_of(p, sizeof p, name);
        cr_assert_eq(fx_write(p, "xyz", 3), 0);
    }
    const tb_file files[2] = { { "one", 17000, false }, { "two", 3000, false } };
    uint8_t *t = tb_torrent("bdir", 16384, files, 2, &len);
    write_torrent(1, t, len);
    free(t);
    path_of(p, sizeof p, "bdir");
    mkdir(p, 0755);
    uint8_t *zeros = calloc(1, 17000);
    path_of(p, sizeof p, "bdir/one");
    cr_assert_eq(fx_write(p, zeros, 17000), 0);
    path_of(p, sizeof p, "bdir/two");
    cr_assert_eq(fx_write(p, zeros, 3000), 0);
    free(zeros);
}

static void remove_fixture(void)
{
    fx_rmtree(dir);
    free(dir);
}

TestSuite(resume, .init = make_fixture, .fini = remove_fixture, .timeout = 60);

typedef struct run {
    struct ev_loop *loop;
    hk_real *r;
    hk_resume *rs;
} run;

static void run_start(run *x)
{
    x->loop = ev_loop_new(EVFLAG_AUTO);
    hk_real_opts o;
    hk_real_opts_default(&o);
    o.listen = false;
    char err[512] = "";
    x->r = hk_real_new(x->loop, &o, err, sizeof err);
    cr_assert_not_null(x->r, "%s", err);
    const char *dirs[1] = { dir };
    x->rs = hk_resume_new(state, false, dirs, 1, err, sizeof err);
    cr_assert_not_null(x->rs, "%s", err);
    hk_catalog_set_resume(hk_real_catalog(x->r), x->rs);
}

static void run_stop(run *x)
{
    hk_catalog_set_resume(hk_real_catalog(x->r), NULL);
    hk_resume_free(x->rs);
    hk_real_free(x->r);
    ev_loop_destroy(x->loop);
}

static hk_rescan_stats scan(run *x)
{
    const char *dirs[1] = { dir };
    hk_rescan_stats st;
    cr_assert_eq(hk_rescan_run(x->r, dirs, 1, NULL, 0, &st), 0);
    return st;
}

static void save(run *x, size_t expect)
{
    char err[512] = "";
    cr_assert_eq(hk_resume_save(x->rs, hk_real_catalog(x->r), hk_real_seeder(x->r), err, sizeof err), 0, "%s", err);
    cr_assert_eq(hk_resume_stats_get(x->rs)->saved, expect);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", state);
    cr_assert_neq(access(tmp, F_OK), 0, "the temporary file is renamed, never left behind");
}

/* The marks of torrent i: 'A' all good, 'U' every piece unknown, else the good bits of piece 0 and 1 ("10"). */
static const char *marks(run *x, int i, char buf[4])
{
    bool all, verifying;
    const hk_pieces *ps;
    cr_assert(hk_seeder_torrent_marks(hk_real_seeder(x->r), ih[i], &all, &ps, &verifying), "torrent %d served", i);
    cr_assert(verifying);
    if (all)
        return "A";
    if (!ps)
        return "U";
    for (uint32_t k = 0; k < 2; k++)
        buf[k] = hk_pieces_get(ps, all, k) == HK_PIECE_GOOD ? '1' : '0';
    buf[2] = 0;
    return buf;
}

static int by_char(const void *a, const void *b)
{
    return *(const char *)a - *(const char *)b;
}

/* The paths recorded in the state file, as one string of their first letters after dir/, sorted. */
static void state_paths(char *out)
{
    size_t len;
    uint8_t *b = fx_read(state, &len);
    cr_assert_not_null(b);
    hk_rs_reader r;
    char err[256];
    cr_assert_eq(hk_rs_open(&r, b, len, err, sizeof err), 0, "%s", err);
    hk_rs_entry e;
    size_t n = 0, dl = strlen(dir) + 1;
    while (hk_rs_next(&r, &e) == 1)
        out[n++] = e.path[dl];
    out[n] = 0;
    qsort(out, n, 1, by_char); /* the state follows the table's order */
    free(b);
}

static void first_run(void)
{
    run x;
    run_start(&x);
    hk_rescan_stats st = scan(&x);
    cr_assert_eq(st.added, 4);
    hk_seeder *s = hk_real_seeder(x.r);
    static const uint8_t piece0[1] = { 0x80 };
    cr_assert_eq(hk_seeder_restore_marks(s, ih[0], NULL, 1), 1);
    cr_assert_eq(hk_seeder_restore_marks(s, ih[1], piece0, 2), 1);
    cr_assert_eq(hk_seeder_restore_marks(s, ih[2], NULL, 1), 1);
    char b[4];
    cr_assert_str_eq(marks(&x, 1, b), "10");
    cr_assert_str_eq(marks(&x, 3, b), "U");
    save(&x, 4);
    run_stop(&x);
    char paths[8];
    state_paths(paths);
    cr_assert_str_eq(paths, "abcd");
}

Test(resume, warm_start_restores_unchanged_and_drops_the_rest)
{
    first_run();
    char p[256];
    path_of(p, sizeof p, "a.torrent"); /* removed */
    cr_assert_eq(unlink(p), 0);
    path_of(p, sizeof p, "c.bin"); /* data changed (same size, another mtime) */
    struct timespec ts[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };
    cr_assert_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
    path_of(p, sizeof p, "d.torrent"); /* the .torrent rewritten (touched): read again by the scan */
    cr_assert_eq(utimensat(AT_FDCWD, p, ts, 0), 0);

    run x;
    run_start(&x);
    hk_resume_stats rst;
    cr_assert_eq(hk_resume_load(x.rs, hk_real_catalog(x.r), hk_real_seeder(x.r), NULL, NULL, &rst), 0);
    cr_assert_eq(rst.entries, 4);
    cr_assert_eq(rst.loaded, 2, "b and c served from the state, got %zu", rst.loaded);
    cr_assert_eq(rst.gone, 1);
    cr_assert_eq(rst.changed, 1);
    cr_assert_eq(rst.marked, 1, "b's marks restored");
    cr_assert_eq(rst.marks_dropped, 1, "c's data changed: its marks are not trusted");
    cr_assert_eq(hk_real_torrents(x.r), 2);
    char b[4];
    cr_assert_str_eq(marks(&x, 1, b), "10");
    cr_assert_str_eq(marks(&x, 2, b), "U", "c is checked again");

    hk_rescan_stats st = scan(&x);
    cr_assert_eq(st.unchanged, 2, "the state's torrents are not read again by the scan");
    cr_assert_eq(st.added, 1, "d is read from its .torrent");
    cr_assert_eq(hk_real_torrents(x.r), 3);
    save(&x, 3);
    cr_assert(!hk_resume_stats_get(x.rs)->unchanged);
    struct stat before, after;
    cr_assert_eq(stat(state, &before), 0);
    save(&x, 3);
    cr_assert(hk_resume_stats_get(x.rs)->unchanged, "nothing changed: the file is not rewritten");
    cr_assert_eq(stat(state, &after), 0);
    cr_assert_eq(before.st_ino, after.st_ino);
    cr_assert_eq(hk_seeder_restore_marks(hk_real_seeder(x.r), ih[2], NULL, 1), 1); /* c verified again */
    save(&x, 3);
    cr_assert(!hk_resume_stats_get(x.rs)->unchanged, "a new good mark is saved");
    run_stop(&x);
    char paths[8];
    state_paths(paths);
    cr_assert_str_eq(paths, "bcd", "the removed torrent's entry is dropped");
}

static void expect_ignored(void)
{
    run x;
    run_start(&x);
    hk_resume_stats rst;
    cr_assert_eq(hk_resume_load(x.rs, hk_real_catalog(x.r), hk_real_seeder(x.r), NULL, NULL, &rst), 0);
    cr_assert_eq(rst.loaded, 0);
    cr_assert_eq(rst.entries, 0);
    hk_rescan_stats st = scan(&x);
    cr_assert_eq(st.added, 4, "every torrent read from its .torrent");
    char b[4];
    cr_assert_str_eq(marks(&x, 0, b), "U", "no mark from an ignored file");
    save(&x, 4); /* and a good file replaces the bad one */
    run_stop(&x);
}

Test(resume, truncated_corrupt_or_foreign_state_is_ignored)
{
    first_run();
    size_t len;
    uint8_t *good = fx_read(state, &len);
    cr_assert_not_null(good);
    cr_assert_eq(fx_write(state, good, len - 7), 0); /* truncated */
    expect_ignored();
    uint8_t *bad = fx_read(state, &len);
    bad[len / 2] ^= 1; /* one bit flipped */
    cr_assert_eq(fx_write(state, bad, len), 0);
    expect_ignored();
    cr_assert_eq(fx_write(state, "d8:announce3:urle", 17), 0); /* not a state file */
    expect_ignored();
    free(bad);
    free(good);
}

Test(resume, one_state_per_dir)
{
    /* a second DIR beside the first, holding one torrent of its own */
    char *dir2 = fx_mkdtemp("resume2");
    char p[300];
    size_t len;
    uint8_t *t = tb_single("e.bin", 16384, 3, &len);
    snprintf(p, sizeof p, "%s/e.torrent", dir2);
    cr_assert_eq(fx_write(p, t, len), 0);
    free(t);
    snprintf(p, sizeof p, "%s/e.bin", dir2);
    cr_assert_eq(fx_write(p, "xyz", 3), 0);
    const char *dirs[2] = { dir, dir2 };
    for (int round = 0; round < 2; round++) {
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        hk_real_opts o;
        hk_real_opts_default(&o);
        o.listen = false;
        char err[512] = "";
        hk_real *r = hk_real_new(loop, &o, err, sizeof err);
        cr_assert_not_null(r, "%s", err);
        hk_resume *rs = hk_resume_new(NULL, true, dirs, 2, err, sizeof err);
        cr_assert_not_null(rs, "%s", err);
        hk_catalog_set_resume(hk_real_catalog(r), rs);
        hk_resume_stats rst;
        cr_assert_eq(hk_resume_load(rs, hk_real_catalog(r), hk_real_seeder(r), NULL, NULL, &rst), 0);
        cr_assert_eq(rst.loaded, round == 0 ? 0 : 5, "round %d: %zu loaded", round, rst.loaded);
        hk_rescan_stats st;
        cr_assert_eq(hk_rescan_run(r, dirs, 2, NULL, 0, &st), 0);
        cr_assert_eq(st.added, round == 0 ? 5 : 0);
        cr_assert_eq(hk_resume_save(rs, hk_real_catalog(r), hk_real_seeder(r), err, sizeof err), 0, "%s", err);
        cr_assert_eq(hk_resume_stats_get(rs)->saved, 5);
        hk_catalog_set_resume(hk_real_catalog(r), NULL);
        hk_resume_free(rs);
        hk_real_free(r);
        ev_loop_destroy(loop);
    }
    for (int d = 0; d < 2; d++) { /* each DIR's file holds its own torrents only */
        snprintf(p, sizeof p, "%s/%s", dirs[d], HK_RESUME_DIR_FILE);
        uint8_t *b = fx_read(p, &len);
        cr_assert_not_null(b, "%s written", p);
        hk_rs_reader rd;
        char err[256];
        cr_assert_eq(hk_rs_open(&rd, b, len, err, sizeof err), 0, "%s", err);
        cr_assert_eq(rd.count, d == 0 ? 4 : 1);
        hk_rs_entry e;
        while (hk_rs_next(&rd, &e) == 1)
            cr_assert(e.path_len > strlen(dirs[d]) && memcmp(e.path, dirs[d], strlen(dirs[d])) == 0);
        free(b);
    }
    fx_rmtree(dir2);
    free(dir2);
}

/* The daemon's periodic save: the snapshot in slices, the write (here on the same thread), the finish in slices;
 * between two slices of the snapshot a .torrent is removed (its record freed) and one rewritten and read again.
 * The save writes what the snapshot saw (b and c for sure); the next one follows the catalog: the refs moved to
 * the new file slice by slice stay valid, the description noted after the snapshot began is kept, and a warm start
 * from it serves every torrent unchanged. */
Test(resume, background_save_while_the_catalog_changes)
{
    first_run();
    run x;
    run_start(&x);
    hk_resume_stats rst;
    cr_assert_eq(hk_resume_load(x.rs, hk_real_catalog(x.r), hk_real_seeder(x.r), NULL, NULL, &rst), 0);
    cr_assert_eq(rst.loaded, 4);
    cr_assert_eq(scan(&x).unchanged, 4);
    cr_assert_eq(hk_seeder_restore_marks(hk_real_seeder(x.r), ih[3], NULL, 1), 1); /* d verified: a save writes */
    char err[512] = "";
    hk_resume_job *j = hk_resume_snapshot(x.rs, hk_real_catalog(x.r), hk_real_seeder(x.r), err, sizeof err);
    cr_assert_not_null(j, "%s", err);
    cr_assert_null(hk_resume_snapshot(x.rs, hk_real_catalog(x.r), hk_real_seeder(x.r), err, sizeof err),
                   "never two saves at once");
    cr_assert_eq(hk_resume_snapshot_step(j, 1), 1, "one record of four copied");
    char p[256];
    path_of(p, sizeof p, "a.torrent");
    cr_assert_eq(unlink(p), 0);
    path_of(p, sizeof p, "d.torrent");
    struct timespec ts[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };
    cr_assert_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
    hk_rescan_stats st = scan(&x);
    cr_assert_eq(st.removed, 1);
    cr_assert_eq(hk_real_torrents(x.r), 3);
    int r, slices = 1;
    while ((r = hk_resume_snapshot_step(j, 1)) == 1)
        slices++;
    cr_assert_eq(r, 0);
    cr_assert_eq(slices, 3, "four records listed at the start, one per slice");
    hk_resume_job_write(j);
    slices = 0;
    while ((r = hk_resume_job_finish(j, hk_real_catalog(x.r), 1, err, sizeof err)) == 1)
        slices++;
    cr_assert_eq(r, 0, "%s", err);
    size_t saved = hk_resume_stats_get(x.rs)->saved;
    cr_assert(saved >= 2 && saved <= 4, "what the snapshot saw: %zu", saved);
    cr_assert_geq(slices, 1);
    char paths[8];
    state_paths(paths);
    cr_assert(strchr(paths, 'b') && strchr(paths, 'c'), "%s", paths);
    save(&x, 3);
    cr_assert(!hk_resume_stats_get(x.rs)->unchanged, "d was read again after the snapshot began");
    state_paths(paths);
    cr_assert_str_eq(paths, "bcd");
    run_stop(&x);

    run_start(&x);
    cr_assert_eq(hk_resume_load(x.rs, hk_real_catalog(x.r), hk_real_seeder(x.r), NULL, NULL, &rst), 0);
    cr_assert_eq(rst.loaded, 3, "b, c and d (its new identity) served from the state, got %zu", rst.loaded);
    cr_assert_eq(rst.changed + rst.gone + rst.failed, 0);
    char b[4];
    cr_assert_str_eq(marks(&x, 1, b), "10");
    cr_assert_str_eq(marks(&x, 2, b), "A");
    run_stop(&x);
}
