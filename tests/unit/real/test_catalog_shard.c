/* Tests of --shard in the catalog (catalog.h, HK_LOAD_OTHER_SHARD) through the runtime: a .torrent whose info-hash is
 * in another shard is not served (its load says which shard), is remembered (a rescan with the same file identity
 * does not read it again and gives the same outcome), is counted by the rescan, and hk_real_add_torrent_file refuses
 * it with a message naming the shards; the shard the function names serves it. */
#include <criterion/criterion.h>

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "infohash.h"
#include "log.h"
#include "real_runtime.h"
#include "rescan.h"
#include "shard.h"

static char dir[64], torrent_path[128];
static uint8_t ih[20];

/* One single-file torrent of 3 bytes, written with its data into a fresh folder. */
static void make_fixture(void)
{
    hk_log_set_level(HK_LOG_WARN);
    snprintf(dir, sizeof dir, "/tmp/hekate-shard-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char data_path[128];
    snprintf(data_path, sizeof data_path, "%s/a.bin", dir);
    snprintf(torrent_path, sizeof torrent_path, "%s/a.torrent", dir);
    FILE *f = fopen(data_path, "wb");
    cr_assert_not_null(f);
    fputs("abc", f);
    fclose(f);
    uint8_t info[128], piece[20];
    cr_assert(ih_sha1((const uint8_t *)"abc", 3, piece));
    int n = snprintf((char *)info, sizeof info, "d6:lengthi3e4:name5:a.bin12:piece lengthi16384e6:pieces20:");
    memcpy(info + n, piece, 20);
    info[n + 20] = 'e';
    size_t info_len = (size_t)n + 21;
    cr_assert(ih_sha1(info, info_len, ih));
    f = fopen(torrent_path, "wb");
    cr_assert_not_null(f);
    fputs("d4:info", f);
    fwrite(info, 1, info_len, f);
    fputs("e", f);
    fclose(f);
}

static void remove_fixture(void)
{
    char p[160];
    snprintf(p, sizeof p, "%s/a.bin", dir);
    unlink(p);
    unlink(torrent_path);
    rmdir(dir);
}

TestSuite(catalog_shard, .init = make_fixture, .fini = remove_fixture, .timeout = 30);

static hk_real *runtime(struct ev_loop *loop, uint32_t k, uint32_t n)
{
    hk_real_opts o;
    hk_real_opts_default(&o);
    o.listen = false;
    o.shard_k = k;
    o.shard_n = n;
    char err[256] = "";
    hk_real *r = hk_real_new(loop, &o, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    return r;
}

Test(catalog_shard, other_shard_is_skipped_remembered_and_counted)
{
    const uint32_t n = 4, mine = hk_shard_of(ih, n), other = (mine + 1) % n;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_real *r = runtime(loop, other, n);
    struct stat st;
    cr_assert_eq(lstat(torrent_path, &st), 0);
    hk_load_info info;
    char err[256];
    uint32_t mark = hk_real_next_mark(r);
    cr_assert_eq(hk_real_load(r, torrent_path, &st, mark, 0, &info, err, sizeof err), HK_LOAD_OTHER_SHARD);
    char want[96];
    snprintf(want, sizeof want, "in shard %u of %u (this process serves shard %u)", mine, n, other);
    cr_assert_str_eq(err, want);
    cr_assert_eq(hk_real_torrents(r), 0);
    /* remembered: the same identity again is decided without reading (the same outcome) */
    mark = hk_real_next_mark(r);
    cr_assert_eq(hk_real_load(r, torrent_path, &st, mark, 0, &info, err, sizeof err), HK_LOAD_OTHER_SHARD);
    cr_assert_eq(hk_real_torrents(r), 0);
    const char *dirs[] = { dir };
    hk_rescan_stats rs;
    cr_assert_eq(hk_rescan_run(r, dirs, 1, NULL, 0, &rs), 0);
    cr_assert_eq(rs.other_shard, 1);
    cr_assert_eq(rs.served, 0);
    cr_assert_eq(rs.failed, 0, "another shard's torrent is not a failure");
    hk_real_free(r);
    ev_loop_destroy(loop);
}

Test(catalog_shard, add_file_refuses_another_shard_and_its_own_serves_it)
{
    const uint32_t n = 3, mine = hk_shard_of(ih, n);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_real *r = runtime(loop, (mine + 2) % n, n);
    char err[256] = "";
    cr_assert_eq(hk_real_add_torrent_file(r, torrent_path, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "in shard") && strstr(err, "of 3"), "%s", err);
    cr_assert_eq(hk_real_torrents(r), 0);
    hk_real_free(r);

    r = runtime(loop, mine, n);
    const char *dirs[] = { dir };
    hk_rescan_stats rs;
    cr_assert_eq(hk_rescan_run(r, dirs, 1, NULL, 0, &rs), 0);
    cr_assert_eq(rs.served, 1, "the shard the function names serves it");
    cr_assert_eq(rs.other_shard, 0);
    hk_real_free(r);

    r = runtime(loop, 0, 0); /* no --shard: everything */
    cr_assert_eq(hk_real_add_torrent_file(r, torrent_path, NULL, err, sizeof err), 0, "%s", err);
    hk_real_free(r);
    ev_loop_destroy(loop);
}
