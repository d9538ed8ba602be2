/* Unit test of residency where mincore is blind (backend-real/lib/disk/store_resident.c): since Linux 5.0 mincore
 * claims every page resident for a file the process neither owns nor may write, the usual case for a seeder serving
 * another user's data. The store detects that (the guard page) and asks the page cache with RWF_NOWAIT probes
 * instead. The store runs here as an unprivileged user on root's file; the parent (root, the owner, for whom mincore
 * is truthful) is the oracle.
 *
 * A probe that misses starts the kernel's readahead, and on a device fast enough to finish that read within the call
 * (seen on CI: three runs out of three) the probe then rightly answers "resident": the pages are there. So a "resident"
 * answer where the pages were known absent is not by itself a lie; it is one only if the oracle, asked at once, finds
 * a page missing. Every such answer is checked with the parent through a pair of pipes. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metainfo.h"
#include "page_cache_fixture.h"
#include "store.h"
#include "torrent_builder.h"

#define DATA_LEN (8u << 20) /* 8 MiB: `far` stays out of the page-in's readahead */

/* A store whose residency answers last one epoch each (resident_keep_ms 0), as these tests were written for; the
 * windows kept longer by default are tested on their own (store_batch.a_wholly_resident_window_is_kept...). */
static hk_store *epoch_store(void)
{
    hk_store_limits lim;
    hk_store_limits_default(&lim);
    lim.resident_keep_ms = 0;
    return hk_store_new(&lim);
}

static char dir[64], tpath[128], dpath[128];
static mi_torrent *mi;

/* big.bin (DATA_LEN bytes of a pattern, owned by root, 0644) and t.torrent in a fresh folder anyone may enter. */
static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/hk-store-blind-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(chmod(dir, 0755), 0);
    snprintf(tpath, sizeof tpath, "%s/t.torrent", dir);
    snprintf(dpath, sizeof dpath, "%s/big.bin", dir);
    size_t len;
    uint8_t *t = tb_single("big.bin", 16384, DATA_LEN, &len);
    FILE *f = fopen(tpath, "wb");
    cr_assert(f && fwrite(t, 1, len, f) == len && fclose(f) == 0);
    cr_assert_eq(chmod(tpath, 0644), 0);
    cr_assert_eq(mi_parse(t, len, &mi, NULL), 0);
    free(t);
    int fd = open(dpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    static uint8_t buf[1 << 16];
    for (uint32_t off = 0; off < DATA_LEN; off += sizeof buf) {
        for (uint32_t i = 0; i < sizeof buf; i++)
            buf[i] = (uint8_t)(((off + i + 1) * 2654435761u) >> 24);
        cr_assert_eq(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
    }
    cr_assert_eq(close(fd), 0);
}

static void teardown(void)
{
    mi_free(mi);
    mi = NULL;
    unlink(dpath);
    unlink(tpath);
    rmdir(dir);
}

TestSuite(store_blind, .init = setup, .fini = teardown, .timeout = 60);

static hk_extent ext_at(uint64_t storage, uint64_t offset, uint32_t length)
{
    return (hk_extent){.storage = storage, .file = 0, .offset = offset, .length = length};
}

/* The child's side of the oracle: true when the parent finds every page of e resident right now. */
static int g_ask = -1, g_answer = -1;
static bool oracle_confirms(const hk_extent *e)
{
    uint64_t q[2] = {e->offset, e->length};
    char verdict = 0;
    if (write(g_ask, q, sizeof q) != (ssize_t)sizeof q || read(g_answer, &verdict, 1) != 1)
        _exit(22);
    return verdict == 1;
}

/* A "not resident" answer is expected for e: exit with code when the store says resident and the oracle disagrees. */
static void expect_absent(hk_store *st, const hk_extent *e, int code)
{
    if (hk_store_resident(st, e) && !oracle_confirms(e))
        _exit(code);
}

/* The unprivileged store's run; returns (as the exit code) 0 or the number of the first wrong answer. */
static int blind_store_run(void)
{
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0)
        return 10;
    hk_store *st = epoch_store();
    char err[512];
    uint64_t h = hk_store_add(st, tpath, mi, err, sizeof err);
    if (h == 0)
        return 11;
    hk_extent e = ext_at(h, 300000, 16384); /* pages 73..77 */
    hk_store_job job;
    if (hk_store_job_prepare(st, &e, &job) != 0)
        return 12;
    hk_store_stats s;
    hk_store_stats_get(st, &s);
    if (s.blind_files != 1)
        return 13;
    expect_absent(st, &e, 14);
    hk_store_page_in(&job);
    if (job.error != 0)
        return 15;
    hk_store_job_release(st, &job);
    if (!hk_store_resident(st, &e))
        return 16;
    hk_extent far = ext_at(h, 7800000, 16384);
    expect_absent(st, &far, 17);
    /* one probe read per extent (not one per page) */
    hk_store_stats_get(st, &s);
    uint64_t probes = s.probe_calls;
    hk_extent aligned = ext_at(h, 303104, 16384); /* pages 74..77: inside the page-in's range */
    if (!hk_store_resident(st, &aligned))
        return 16;
    hk_store_stats_get(st, &s);
    if (s.probe_calls != probes + 1)
        return 18;
    /* batching: blind files are never answered from the residency cache */
    hk_store_set_batching(st, true);
    hk_store_next_epoch(st);
    if (!hk_store_resident(st, &e))
        return 16;
    int dfd = open(dpath, O_RDONLY); /* drop page 74, inside e */
    if (dfd < 0 || posix_fadvise(dfd, 303104, 4096, POSIX_FADV_DONTNEED) != 0)
        return 19;
    close(dfd);
    expect_absent(st, &e, 20);
    hk_extent before_hole = ext_at(h, 300000, 3104); /* page 73 */
    if (!hk_store_resident(st, &before_hole))
        return 16;
    hk_store_stats_get(st, &s);
    if (s.cache_hits != 0)
        return 21;
    hk_store_free(st);
    return 0;
}

/* The parent's side: answers the child's questions with its truthful mincore until the child closes its end. */
static void serve_oracle(int ask, int answer)
{
    uint64_t q[2];
    while (read(ask, q, sizeof q) == (ssize_t)sizeof q) {
        char verdict = (char)(pc_range_resident(dpath, q[0], q[1]) == 1);
        cr_assert_eq(write(answer, &verdict, 1), 1);
    }
}

Test(store_blind, residency_is_right_where_mincore_is_blind)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to make a file the test process can read but neither owns nor may write");
    /* as root (the owner): mincore is trusted */
    hk_store *st = epoch_store();
    char err[512];
    uint64_t h = hk_store_add(st, tpath, mi, err, sizeof err);
    cr_assert_neq(h, 0, "%s", err);
    hk_extent e0 = ext_at(h, 0, 10);
    hk_store_prefetch(st, &e0);
    hk_store_stats s;
    hk_store_stats_get(st, &s);
    cr_assert_eq(s.blind_files, 0u, "mincore sees the page cache of the owner's file");
    hk_store_free(st);

    pc_drop(dpath, 0, 0);
    int ask[2], answer[2];
    cr_assert_eq(pipe(ask), 0);
    cr_assert_eq(pipe(answer), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(ask[0]);
        close(answer[1]);
        g_ask = ask[1];
        g_answer = answer[0];
        _exit(blind_store_run());
    }
    close(ask[1]);
    close(answer[0]);
    serve_oracle(ask[0], answer[1]);
    close(ask[0]);
    close(answer[1]);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "the unprivileged child died (signal %d)", WTERMSIG(status));
    int code = WEXITSTATUS(status);
    static const char *what[] = {[10] = "could not drop privileges",
                                 [11] = "could not add the storage",
                                 [12] = "could not prepare the job",
                                 [13] = "did not detect the blind mincore",
                                 [14] = "claimed residency after the cache was dropped (the owner's mincore disagrees)",
                                 [15] = "page-in failed",
                                 [16] = "not resident after the page-in",
                                 [17] = "claimed residency of pages never read (the owner's mincore disagrees)",
                                 [18] = "probed a 16 KiB extent with more than one read",
                                 [19] = "could not drop a page of the file",
                                 [20] = "claimed residency of a dropped page (the owner's mincore disagrees)",
                                 [21] = "used the residency cache for a blind file",
                                 [22] = "lost the oracle's pipe"};
    cr_assert_eq(code, 0, "unprivileged store: %s (exit %d)", code >= 10 && code <= 22 ? what[code] : "?", code);
}
