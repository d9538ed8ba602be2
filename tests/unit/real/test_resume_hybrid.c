/* Tests of the resume state with a hybrid (BEP 52) torrent made at test time by libtorrent's creator: a torrent
 * served warm from the state is verified exactly as one read from its .torrent, against its v1 hashes and its v2
 * hashes (piece layers, pieces roots). Its piece layer is altered in the .torrent (outside `info`: the v1 hashes and
 * the info-hash stay and still match the data), so only the v2 check can find the piece bad. Run 1 reads the good
 * .torrent cold and saves; the .torrent is then altered: run 2 finds it changed (identity), reads it again and finds
 * the piece bad through v2; run 3 serves it warm from the state saved by run 2 and must find the same bad piece. */
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
#include "metainfo.h"
#include "real_runtime.h"
#include "rescan.h"
#include "resume.h"
#include "seeder.h"

#define PL 32768u

static char *g_dir;
static char g_state[512], g_torrent[512];
static uint8_t g_ih[20];

/* d/: big (4 pieces: a piece layer), small (2 blocks: a pieces root), tiny (one partial block); libtorrent pads
 * each to the piece size: 6 pieces. */
static void setup(void)
{
    hk_log_set_level(HK_LOG_ERROR);
    g_dir = fx_mkdtemp("resume-hybrid");
    cr_assert_not_null(g_dir);
    snprintf(g_state, sizeof g_state, "%s/state", g_dir);
    snprintf(g_torrent, sizeof g_torrent, "%s/h.torrent", g_dir);
    cr_assert_eq(fx_make_lt_hybrid(g_dir, PL), 0);
}

static void teardown(void)
{
    fx_rmtree(g_dir);
    free(g_dir);
}

TestSuite(resume_hybrid, .init = setup, .fini = teardown, .timeout = 120);

/* Flips a bit of entry 1 (piece 1) of big's piece layer in the .torrent, and gives the file another mtime. */
static void alter_piece_layer(void)
{
    size_t len;
    uint8_t *tb = fx_read(g_torrent, &len);
    cr_assert_not_null(tb);
    mi_torrent *mi;
    mi_error err;
    cr_assert_eq(mi_parse(tb, len, &mi, &err), 0, "%s", err.what);
    cr_assert(mi->hybrid);
    cr_assert_not_null(mi->v2_hashes, "libtorrent's hybrid has v2 hashes");
    cr_assert_eq(mi->piece_count, 6u);
    memcpy(g_ih, mi->info_hash, 20);
    uint64_t at = mi->v2_hashes[0] + 32u + 7u;
    cr_assert(at >= mi->info_end || at < mi->info_start, "piece layers lie outside info");
    tb[at] ^= 0x01;
    mi_free(mi);
    cr_assert_eq(fx_write(g_torrent, tb, len), 0);
    free(tb);
    struct timespec ts[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };
    cr_assert_eq(utimensat(AT_FDCWD, g_torrent, ts, 0), 0);
}

typedef struct run {
    struct ev_loop *loop;
    hk_real *r;
    hk_resume *rs;
    hk_resume_stats loaded;
    hk_rescan_stats scanned;
} run;

/* A runtime with the state, loaded, then one scan of the folder. */
static void run_start(run *x)
{
    x->loop = ev_loop_new(EVFLAG_AUTO);
    hk_real_opts o;
    hk_real_opts_default(&o);
    o.listen = false;
    char err[512] = "";
    x->r = hk_real_new(x->loop, &o, err, sizeof err);
    cr_assert_not_null(x->r, "%s", err);
    const char *dirs[1] = { g_dir };
    x->rs = hk_resume_new(g_state, false, dirs, 1, err, sizeof err);
    cr_assert_not_null(x->rs, "%s", err);
    hk_catalog_set_resume(hk_real_catalog(x->r), x->rs);
    cr_assert_eq(hk_resume_load(x->rs, hk_real_catalog(x->r), hk_real_seeder(x->r), NULL, NULL, &x->loaded), 0);
    cr_assert_eq(hk_rescan_run(x->r, dirs, 1, NULL, 0, &x->scanned), 0);
    cr_assert_eq(hk_real_torrents(x->r), 1);
}

static void run_stop(run *x)
{
    char err[512] = "";
    cr_assert_eq(hk_resume_save(x->rs, hk_real_catalog(x->r), hk_real_seeder(x->r), err, sizeof err), 0, "%s", err);
    cr_assert_eq(hk_resume_stats_get(x->rs)->saved, 1);
    hk_catalog_set_resume(hk_real_catalog(x->r), NULL);
    hk_resume_free(x->rs);
    hk_real_free(x->r);
    ev_loop_destroy(x->loop);
}

/* A full check of the torrent (every mark dropped first); returns its bad pieces as a bit set. */
static unsigned full_check(run *x)
{
    hk_seeder *s = hk_real_seeder(x->r);
    cr_assert(hk_seeder_verify_torrent(s, g_ih));
    hk_verify_progress vp;
    int spins = 0;
    do {
        ev_run(x->loop, EVRUN_NOWAIT);
        hk_seeder_verify_progress(s, &vp);
        if (vp.active)
            usleep(1000);
    } while (vp.active && ++spins < 20000);
    cr_assert(!vp.active, "the pass ended");
    cr_assert_eq(vp.bytes_done, vp.bytes_total);
    uint32_t bad[8];
    uint32_t n = hk_seeder_bad_pieces(s, g_ih, bad, 8);
    cr_assert_leq(n, 8u);
    unsigned set = 0;
    for (uint32_t k = 0; k < n; k++)
        set |= 1u << bad[k];
    return set;
}

Test(resume_hybrid, warm_hybrid_verifies_its_v2_hashes_as_a_cold_one)
{
    run x;
    run_start(&x); /* run 1: no state yet, the good .torrent read cold */
    cr_assert_eq(x.loaded.loaded, 0);
    cr_assert_eq(x.scanned.added, 1);
    size_t len;
    uint8_t *tb = fx_read(g_torrent, &len);
    mi_torrent *mi;
    mi_error err;
    cr_assert_eq(mi_parse(tb, len, &mi, &err), 0, "%s", err.what);
    memcpy(g_ih, mi->info_hash, 20);
    mi_free(mi);
    free(tb);
    cr_assert_eq(full_check(&x), 0u, "every piece good as libtorrent made it");
    run_stop(&x);

    alter_piece_layer();
    run_start(&x); /* run 2: the .torrent changed since the save: read again, cold */
    cr_assert_eq(x.loaded.changed, 1, "the identity check sees the rewrite");
    cr_assert_eq(x.loaded.loaded, 0);
    cr_assert_eq(x.scanned.added, 1, "the scan reads the changed .torrent");
    cr_assert_eq(full_check(&x), 1u << 1, "cold: piece 1 disagrees with its piece layer");
    run_stop(&x);

    run_start(&x); /* run 3: unchanged since run 2's save: served warm from the state */
    cr_assert_eq(x.loaded.loaded, 1, "served from the state");
    cr_assert_eq(x.scanned.unchanged, 1, "and not read again by the scan");
    cr_assert_eq(x.scanned.added, 0);
    cr_assert_eq(full_check(&x), 1u << 1, "warm: the same v2 check as cold, piece 1 bad");
    run_stop(&x);
}
