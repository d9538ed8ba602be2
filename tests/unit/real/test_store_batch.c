/* Tests of the store's batching for an event loop (backend-real/lib/disk/store.h, "Batching"): prefetches recorded and
 * merged per file into one madvise per contiguous run (never advising a page nobody asked for), the per-epoch
 * residency cache (same answers as the uncached path on a file partly in the page cache, invalid after the epoch
 * changes, dropped on eviction and failure, updated by page-in jobs), and the system-call counters. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fixtures.h"
#include "metainfo.h"
#include "page_cache_fixture.h"
#include "store.h"
#include "torrent_builder.h"


/* A store whose residency answers last one epoch each (resident_keep_ms 0), as these tests were written for; the
 * windows kept longer by default are tested on their own (store_batch.a_wholly_resident_window_is_kept...). */
static hk_store *epoch_store(void)
{
    hk_store_limits lim;
    hk_store_limits_default(&lim);
    lim.resident_keep_ms = 0;
    return hk_store_new(&lim);
}

static char *g_dir;
static size_t g_pg;

static void setup(void)
{
    g_dir = fx_mkdtemp("store-batch");
    cr_assert_not_null(g_dir);
    g_pg = (size_t)sysconf(_SC_PAGESIZE);
}

static void teardown(void)
{
    fx_rmtree(g_dir);
    free(g_dir);
}

TestSuite(store_batch, .init = setup, .fini = teardown, .timeout = 60);

typedef struct tdata {
    mi_torrent *mi;
    char torrent[512];
    char data[512];
} tdata;

/* A single-file torrent <g_dir>/<name>.torrent over <g_dir>/<name> of len bytes: written and synced (so that
 * POSIX_FADV_DONTNEED can drop its pages), or a sparse file when `sparse`. */
static tdata make_file(const char *name, uint64_t len, bool sparse)
{
    tdata t;
    snprintf(t.torrent, sizeof t.torrent, "%s/%s.torrent", g_dir, name);
    snprintf(t.data, sizeof t.data, "%s/%s", g_dir, name);
    size_t tlen = 0;
    uint8_t *tb = tb_single(name, 16384, len, &tlen);
    cr_assert_not_null(tb);
    cr_assert_eq(fx_write(t.torrent, tb, tlen), 0);
    mi_error err;
    cr_assert_eq(mi_parse(tb, tlen, &t.mi, &err), 0, "mi_parse: %s", err.what);
    free(tb);
    int fd = open(t.data, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    if (sparse)
        cr_assert_eq(ftruncate(fd, (off_t)len), 0);
    uint8_t buf[65536];
    for (uint64_t off = 0; !sparse && off < len;) {
        size_t n = len - off < sizeof buf ? (size_t)(len - off) : sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)((off + i) * 131 >> 3);
        cr_assert_eq(write(fd, buf, n), (ssize_t)n);
        off += n;
    }
    cr_assert_eq(fsync(fd), 0);
    close(fd);
    return t;
}

static tdata make_data(const char *name, uint64_t len)
{
    return make_file(name, len, false);
}

static uint64_t add(hk_store *st, const tdata *t)
{
    char err[512] = "";
    uint64_t h = hk_store_add(st, t->torrent, t->mi, err, sizeof err);
    cr_assert_neq(h, 0u, "hk_store_add: %s", err);
    return h;
}

static hk_extent ext(uint64_t h, uint64_t off, uint32_t len)
{
    hk_extent e = {h, 0, off, len};
    return e;
}

/* Drops [off, off+len) of the file from the page cache (0, 0: all of it). */
static void drop(const tdata *t, uint64_t off, uint64_t len)
{
    pc_drop(t->data, off, len);
}

/* Reads the whole file into the page cache one page at a time without readahead, so that it is cached in single
 * pages (the kernel may otherwise cache it in large folios, which a drop of one page cannot split). */
static void load(const tdata *t)
{
    drop(t, 0, 0);
    int fd = open(t->data, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM), 0);
    uint8_t buf[65536];
    cr_assert_leq(g_pg, sizeof buf);
    ssize_t n;
    for (off_t off = 0; (n = pread(fd, buf, g_pg, off)) > 0; off += n)
        ;
    cr_assert_eq(n, 0);
    close(fd);
}

/* Residency of each page of the file, asked with our own mapping (the test's truth). */
static void truth(const tdata *t, uint64_t len, unsigned char *vec)
{
    int fd = open(t->data, O_RDONLY);
    cr_assert_geq(fd, 0);
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    cr_assert_neq(m, MAP_FAILED);
    cr_assert_eq(mincore(m, len, vec), 0);
    munmap(m, len);
    close(fd);
}

static hk_store_stats stats(const hk_store *st)
{
    hk_store_stats s;
    hk_store_stats_get(st, &s);
    return s;
}

/* ---- prefetch batching ---- */

Test(store_batch, adjacent_prefetches_of_one_iteration_make_one_madvise)
{
    tdata t = make_data("a.bin", 1u << 20);
    hk_store *st = epoch_store();
    uint64_t h = add(st, &t);
    hk_store_set_batching(st, true);
    hk_store_next_epoch(st);
    drop(&t, 0, 0);
    uint64_t before = stats(st).madvise_calls;
    static const int order[16] = {3, 0, 15, 7, 1, 2, 4, 14, 13, 5, 6, 12, 8, 11, 9, 10};
    for (int k = 0; k < 16; k++) {
        hk_extent e = ext(h, (uint64_t)order[k] * 16384, 16384);
        hk_store_prefetch(st, &e);
    }
    hk_extent dup = ext(h, 5 * 16384, 16384);
    hk_store_prefetch(st, &dup); /* a duplicate merges too */
    hk_store_stats s = stats(st);
    cr_assert_eq(s.madvise_calls, before, "nothing advised before the flush");
    cr_assert_eq(s.prefetches_pending, 17u);
    hk_store_flush_prefetch(st);
    s = stats(st);
    cr_assert_eq(s.madvise_calls, before + 1, "17 adjacent blocks: %llu madvise calls",
                 (unsigned long long)(s.madvise_calls - before));
    cr_assert_eq(s.prefetches_pending, 0u);
    hk_store_flush_prefetch(st);
    cr_assert_eq(stats(st).madvise_calls, before + 1, "an empty flush advises nothing");
    hk_store_free(st);
    mi_free(t.mi);
}

Test(store_batch, runs_split_at_gaps_and_join_inside_a_page)
{
    tdata t = make_data("a.bin", 1u << 20);
    tdata u = make_data("b.bin", 1u << 20);
    hk_store *st = epoch_store();
    uint64_t h = add(st, &t), h2 = add(st, &u);
    hk_store_set_batching(st, true);
    drop(&t, 0, 0);
    drop(&u, 0, 0);
    uint64_t before = stats(st).madvise_calls;
    hk_extent e[] = {
        ext(h, 0, 16384),                      /* run 1: [0, 32K) */
        ext(h, 16384, 16384),
        ext(h, 32768 + g_pg, 16384),           /* run 2: one untouched page after run 1 */
        ext(h, 100 * g_pg + 100, 2000),        /* run 3: two records sharing page 100 */
        ext(h, 100 * g_pg + 2100, (uint32_t)g_pg), /* ends in page 101 */
        ext(h, 102 * g_pg, 10),                /* starts in the page after: joins run 3 */
        ext(h2, 0, 16384),                     /* another file: its own run */
    };
    for (size_t k = 0; k < sizeof e / sizeof e[0]; k++)
        hk_store_prefetch(st, &e[k]);
    hk_store_flush_prefetch(st);
    cr_assert_eq(stats(st).madvise_calls, before + 4, "expected 4 runs, got %llu madvise calls",
                 (unsigned long long)(stats(st).madvise_calls - before));
    hk_store_free(st);
    mi_free(t.mi);
    mi_free(u.mi);
}

Test(store_batch, flush_advises_only_requested_pages)
{
    const uint64_t len = 4u << 20;
    tdata t = make_data("a.bin", len);
    hk_store *st = epoch_store();
    uint64_t h = add(st, &t);
    hk_store_set_batching(st, true);
    drop(&t, 0, 0);
    /* two runs with a 256 KiB hole between them, and nothing past 1 MiB */
    for (uint64_t off = 0; off < 256 * 1024; off += 16384) {
        hk_extent a = ext(h, off, 16384), b = ext(h, 512 * 1024 + off, 16384);
        hk_store_prefetch(st, &a);
        hk_store_prefetch(st, &b);
    }
    hk_store_flush_prefetch(st);
    /* wait (bounded) for the advised pages to arrive */
    size_t pages = len / g_pg;
    unsigned char *vec = malloc(pages);
    cr_assert_not_null(vec);
    struct timespec nap = {0, 5 * 1000 * 1000};
    for (int tries = 0; tries < 400; tries++) {
        truth(&t, len, vec);
        if ((vec[0] & 1) && (vec[(256 * 1024 - 1) / g_pg] & 1) && (vec[512 * 1024 / g_pg] & 1) &&
            (vec[(768 * 1024 - 1) / g_pg] & 1))
            break;
        nanosleep(&nap, NULL);
    }
    size_t advised = 0;
    for (size_t p = 0; p < pages; p++) {
        uint64_t off = (uint64_t)p * g_pg;
        bool asked = off < 256 * 1024 || (off >= 512 * 1024 && off < 768 * 1024);
        if (asked)
            advised += vec[p] & 1;
        else
            cr_assert_eq(vec[p] & 1, 0, "page %zu (offset %llu) was never requested but is resident", p,
                         (unsigned long long)off);
    }
    cr_assert_gt(advised, 0u, "the advised pages arrived");
    free(vec);
    hk_store_free(st);
    mi_free(t.mi);
}

Test(store_batch, without_batching_every_prefetch_is_advised_at_once)
{
    tdata t = make_data("a.bin", 1u << 20);
    hk_store *st = epoch_store();
    uint64_t h = add(st, &t);
    uint64_t before = stats(st).madvise_calls;
    for (int k = 0; k < 4; k++) {
        hk_extent e = ext(h, (uint64_t)k * 16384, 16384);
        hk_store_prefetch(st, &e);
    }
    cr_assert_eq(stats(st).madvise_calls, before + 4);
    cr_assert_eq(stats(st).prefetches_pending, 0u);
    /* turning batching on and off again: what was recorded is flushed */
    hk_store_set_batching(st, true);
    hk_extent e = ext(h, 500000, 100);
    hk_store_prefetch(st, &e);
    cr_assert_eq(stats(st).prefetches_pending, 1u);
    hk_store_set_batching(st, false);
    cr_assert_eq(stats(st).prefetches_pending, 0u);
    cr_assert_eq(stats(st).madvise_calls, before + 5);
    hk_store_free(st);
    mi_free(t.mi);
}

Test(store_batch, a_miss_flushes_at_once)
{
    tdata t = make_data("a.bin", 1u << 20);
    hk_store *st = epoch_store();
    uint64_t h = add(st, &t);
    hk_store_set_batching(st, true);
    hk_store_next_epoch(st);
    drop(&t, 0, 0);
    for (int k = 0; k < 4; k++) {
        hk_extent e = ext(h, (uint64_t)k * 16384, 16384);
        hk_store_prefetch(st, &e);
    }
    uint64_t before = stats(st).madvise_calls;
    hk_extent e = ext(h, 0, 16384);
    cr_assert(!hk_store_resident(st, &e), "dropped from the page cache: not resident");
    cr_assert_eq(stats(st).prefetches_pending, 0u, "a miss starts the recorded prefetches");
    cr_assert_eq(stats(st).madvise_calls, before + 1);
    hk_store_free(st);
    mi_free(t.mi);
}

Test(store_batch, runs_known_resident_are_not_advised)
{
    tdata t = make_data("a.bin", 1u << 20);
    hk_store *st = epoch_store();
    uint64_t h = add(st, &t);
    hk_store_set_batching(st, true);
    hk_store_next_epoch(st);
    load(&t);
    hk_extent e = ext(h, 65536, 16384);
    hk_store_prefetch(st, &e);
    cr_assert(hk_store_resident(st, &e));
    hk_store_stats s0 = stats(st);
    hk_store_flush_prefetch(st);
    hk_store_stats s1 = stats(st);
    cr_assert_eq(s1.madvise_calls, s0.madvise_calls, "the cache knew the run resident");
    cr_assert_eq(s1.madvise_skipped, s0.madvise_skipped + 1);
    cr_assert_eq(s1.mincore_calls, s0.mincore_calls, "the flush asks the kernel nothing");
    /* the same in a new epoch, where nothing is known: advised */
    hk_store_next_epoch(st);
    hk_store_prefetch(st, &e);
    hk_store_flush_prefetch(st);
    cr_assert_eq(stats(st).madvise_calls, s1.madvise_calls + 1);
    /* a prefetch the cache already knows resident when it is asked is not even recorded */
    cr_assert(hk_store_resident(st, &e));
    hk_store_stats s2 = stats(st);
    hk_store_prefetch(st, &e);
    cr_assert_eq(stats(st).madvise_skipped, s2.madvise_skipped + 1, "skipped when asked");
    hk_store_flush_prefetch(st);
    cr_assert_eq(stats(st).madvise_calls, s2.madvise_calls);
    cr_assert_eq(stats(st).madvise_skipped, s2.madvise_skipped + 1, "nothing left for the flush");
    hk_store_free(st);
    mi_free(t.mi);
}

Test(store_batch, eviction_flushes_and_failure_drops_the_records)
{
    tdata t = make_data("a.bin", 1u << 20);
    tdata u = make_data("b.bin", 1u << 20);
    hk_store_limits lim = {1ull << 40, 1, 10};
    hk_store *st = hk_store_new(&lim);
    uint64_t ha = add(st, &t), hb = add(st, &u);
    hk_store_set_batching(st, true);
    drop(&t, 0, 0);
    drop(&u, 0, 0);
    uint64_t before = stats(st).madvise_calls;
    hk_extent a = ext(ha, 0, 16384), b = ext(hb, 0, 16384);
    hk_store_prefetch(st, &a);
    hk_store_prefetch(st, &b); /* one descriptor: a.bin is closed, its record is advised first */
    hk_store_stats s = stats(st);
    cr_assert_eq(s.unmaps, 1u);
    cr_assert_eq(s.madvise_calls, before + 1);
    cr_assert_eq(s.prefetches_pending, 1u);
    /* b.bin shrinks: the check fails its storage; its record is dropped, not advised */
    cr_assert_eq(truncate(u.data, 4096), 0);
    cr_assert_eq(hk_store_check(st), 1u);
    hk_store_flush_prefetch(st);
    s = stats(st);
    cr_assert_eq(s.madvise_calls, before + 1, "nothing advised for a failed storage");
    cr_assert_eq(s.prefetches_pending, 0u);
    hk_store_free(st);
    mi_free(t.mi);
    mi_free(u.mi);
}

Test(store_batch, records_beyond_the_cap_flush_early)
{
    tdata t = make_file("a.bin", 10000 * g_pg, true);
    hk_store *st = epoch_store();
    uint64_t h = add(st, &t);
    hk_store_set_batching(st, true);
    uint64_t before = stats(st).madvise_calls;
    /* 5000 records, every other page: no two merge */
    for (uint64_t k = 0; k < 5000; k++) {
        hk_extent e = ext(h, k * 2 * g_pg, 100);
        hk_store_prefetch(st, &e);
    }
    hk_store_stats s = stats(st);
    cr_assert_eq(s.madvise_calls, before + 4096, "the first 4096 were flushed when the 4097th came");
    cr_assert_eq(s.prefetches_pending, 5000u - 4096u);
    hk_store_free(st);
    mi_free(t.mi);
}

/* ---- the residency cache ---- */

Test(store_batch, cached_answers_equal_uncached_ones_on_a_partly_cached_file)
{
    const uint64_t len = (2u << 20) + 12345; /* a partial last page, windows clipped at the end */
    tdata t = make_data("a.bin", len);
    hk_store *plain = epoch_store();
    hk_store *cached = epoch_store();
    uint64_t hp = add(plain, &t), hc = add(cached, &t);
    hk_store_set_batching(cached, true);
    hk_store_next_epoch(cached);
    load(&t);
    /* holes: a whole window, single pages, a range across a window boundary, the last page */
    drop(&t, 256 * 1024, 256 * 1024);
    drop(&t, 300 * g_pg, g_pg);
    drop(&t, 350 * g_pg, 3 * g_pg);
    drop(&t, 440 * g_pg, 40 * g_pg); /* across the boundary of windows 6 and 7 */
    drop(&t, len / g_pg * g_pg, g_pg);
    /* both stores map the file (mapping does not read it) */
    hk_extent m = ext(hp, 0, 1);
    hk_store_prefetch(plain, &m);
    m.storage = hc;
    hk_store_prefetch(cached, &m);
    hk_store_flush_prefetch(cached);

    size_t pages = (len + g_pg - 1) / g_pg;
    unsigned char *vec = malloc(pages);
    cr_assert_not_null(vec);
    truth(&t, len, vec);
    cr_assert_eq(pages, 516u);
    cr_assert_eq(vec[300] & 1, 0, "the test's holes are in place");
    cr_assert_eq(vec[450] & 1, 0);
    cr_assert_eq(vec[515] & 1, 0);
    cr_assert_eq(vec[2] & 1, 1);
    cr_assert_eq(vec[301] & 1, 1);

    uint64_t mc0 = stats(cached).mincore_calls, mp0 = stats(plain).mincore_calls;
    int yes = 0, no = 0, queries = 0;
    /* every 16 KiB block, then unaligned extents of many lengths, some across window boundaries */
    for (int pass = 0; pass < 2; pass++) {
        for (uint64_t off = 0; off < len; off += pass == 0 ? 16384 : 7919) {
            uint32_t l = pass == 0 ? 16384 : (uint32_t)(1 + (off * 31) % 300000);
            if (l > len - off)
                l = (uint32_t)(len - off);
            hk_extent ep = ext(hp, off, l), ec = ext(hc, off, l);
            bool want = hk_store_resident(plain, &ep);
            bool got = hk_store_resident(cached, &ec);
            cr_assert_eq(got, want, "extent [%llu, +%u): cached says %d, uncached %d", (unsigned long long)off, l,
                         got, want);
            /* and the truth from the test's own mapping */
            bool all = true;
            for (uint64_t p = off / g_pg; p <= (off + l - 1) / g_pg; p++)
                all = all && (vec[p] & 1);
            cr_assert_eq(want, all, "extent [%llu, +%u): store says %d, mincore %d", (unsigned long long)off, l,
                         want, all);
            yes += want;
            no += !want;
            queries++;
        }
    }
    cr_assert_gt(yes, 10);
    cr_assert_gt(no, 10);
    uint64_t windows = (pages + 63) / 64;
    hk_store_stats sc = stats(cached), sp = stats(plain);
    cr_assert_leq(sc.mincore_calls - mc0, windows, "%llu mincore calls for %llu windows",
                  (unsigned long long)(sc.mincore_calls - mc0), (unsigned long long)windows);
    cr_assert_geq(sp.mincore_calls - mp0, (uint64_t)queries, "uncached: one mincore (at least) per query");
    cr_assert_gt(sc.cache_hits, 0u);
    free(vec);
    hk_store_free(plain);
    hk_store_free(cached);
    mi_free(t.mi);
}

Test(store_batch, the_cache_is_invalid_after_the_epoch_changes)
{
    tdata t = make_data("a.bin", 1u << 20);
    hk_store_limits lim;
    hk_store_limits_default(&lim);
    lim.resident_keep_ms = 0; /* every window for one epoch only (the next test: wholly resident ones for longer) */
    hk_store *st = hk_store_new(&lim);
    uint64_t h = add(st, &t);
    hk_store_set_batching(st, true);
    hk_store_next_epoch(st);
    load(&t);
    hk_extent e = ext(h, 300000, 16384), near = ext(h, 300000 + 16384, 16384);
    hk_store_prefetch(st, &e); /* maps the file */
    hk_store_flush_prefetch(st);
    uint64_t mc = stats(st).mincore_calls;
    cr_assert(hk_store_resident(st, &e));
    cr_assert_eq(stats(st).mincore_calls, mc + 1);
    drop(&t, 0, 0);
    cr_assert(hk_store_resident(st, &near), "same window, same epoch: answered from the cache");
    cr_assert_eq(stats(st).mincore_calls, mc + 1, "no new mincore inside the window");
    hk_store_next_epoch(st);
    cr_assert(!hk_store_resident(st, &e), "new epoch: asked again, the pages are gone");
    cr_assert(!hk_store_resident(st, &near));
    cr_assert_eq(stats(st).mincore_calls, mc + 2);
    hk_store_free(st);
    mi_free(t.mi);
}

/* lim.resident_keep_ms (issue 12, CPU per GiB): a window found wholly resident keeps its answer across epochs for
 * that long, a window with a page missing is asked again at the next epoch; once the time is over, the kernel is
 * asked again; a file closed (here: the storage removed and added again) drops the kept answers too. */
static void keep_case(uint32_t keep_ms, int sleep_ms, bool kept)
{
    tdata t = make_data("keep.bin", 1u << 20);
    hk_store_limits lim;
    hk_store_limits_default(&lim);
    lim.resident_keep_ms = keep_ms;
    hk_store *st = hk_store_new(&lim);
    uint64_t h = add(st, &t);
    hk_store_set_batching(st, true);
    hk_store_next_epoch(st);
    load(&t);
    drop(&t, 150 * g_pg, g_pg); /* window 2 (pages 128-191) lacks a page; window 1 is whole */
    hk_extent whole = ext(h, 300000, 16384), holed = ext(h, 130 * g_pg, 16384);
    hk_store_prefetch(st, &whole);
    hk_store_flush_prefetch(st);
    cr_assert(hk_store_resident(st, &whole));
    cr_assert(hk_store_resident(st, &holed), "the block itself is resident, the page missing is further on");
    uint64_t mc = stats(st).mincore_calls;
    drop(&t, 0, 0);
    usleep((useconds_t)sleep_ms * 1000);
    hk_store_next_epoch(st);
    cr_assert_eq(hk_store_resident(st, &whole), kept, "the wholly resident window %s", kept ? "kept" : "asked again");
    cr_assert(!hk_store_resident(st, &holed), "the window with a page missing is asked again");
    cr_assert_eq(stats(st).mincore_calls, mc + (kept ? 1 : 2));
    if (kept) { /* a close drops what was kept */
        hk_store_remove(st, h);
        h = add(st, &t);
        whole = ext(h, 300000, 16384);
        hk_store_next_epoch(st);
        cr_assert(!hk_store_resident(st, &whole), "after a close: asked again");
    }
    hk_store_free(st);
    mi_free(t.mi);
}

Test(store_batch, a_wholly_resident_window_is_kept_for_keep_ms)
{
    keep_case(60000, 0, true);
}

Test(store_batch, a_kept_window_is_asked_again_after_keep_ms)
{
    keep_case(20, 80, false);
}

Test(store_batch, eviction_drops_the_cache_even_when_the_slot_is_reused)
{
    tdata t = make_data("a.bin", 1u << 20);
    tdata u = make_data("b.bin", 1u << 20);
    hk_store_limits lim = {1ull << 40, 1, 10};
    hk_store *st = hk_store_new(&lim);
    uint64_t ha = add(st, &t), hb = add(st, &u);
    hk_store_set_batching(st, true);
    hk_store_next_epoch(st);
    load(&t);
    load(&u);
    drop(&u, 0, 0);
    hk_extent a = ext(ha, 0, 16384), b = ext(hb, 0, 16384);
    hk_store_prefetch(st, &a);
    cr_assert(hk_store_resident(st, &a), "a.bin is in the page cache");
    hk_store_prefetch(st, &b); /* closes a.bin; b.bin takes its slot in the same epoch */
    cr_assert_eq(stats(st).unmaps, 1u);
    cr_assert(!hk_store_resident(st, &b), "b.bin's pages were dropped: a.bin's cached window must not answer");
    cr_assert(!hk_store_resident(st, &a), "a.bin is not mapped any more");
    hk_store_free(st);
    mi_free(t.mi);
    mi_free(u.mi);
}

Test(store_batch, a_failed_storage_is_never_resident_from_the_cache)
{
    tdata t = make_data("a.bin", 1u << 20);
    hk_store *st = epoch_store();
    uint64_t h = add(st, &t);
    hk_store_set_batching(st, true);
    hk_store_next_epoch(st);
    load(&t);
    hk_extent e = ext(h, 0, 16384);
    struct iovec iov;
    cr_assert_eq(hk_store_pin(st, &e, &iov, NULL), 0); /* pinned: the file stays mapped after the failure */
    cr_assert(hk_store_resident(st, &e));
    cr_assert_eq(truncate(t.data, 8192), 0);
    cr_assert_eq(hk_store_check(st), 1u);
    cr_assert(!hk_store_resident(st, &e), "failed: not resident, whatever the cache held");
    hk_store_unpin(st, &e);
    hk_store_free(st);
    mi_free(t.mi);
}

Test(store_batch, a_page_in_updates_the_cache)
{
    tdata t = make_data("a.bin", 1u << 20);
    hk_store *st = epoch_store();
    uint64_t h = add(st, &t);
    hk_store_set_batching(st, true);
    hk_store_next_epoch(st);
    drop(&t, 0, 0);
    hk_extent e = ext(h, 300000, 16384), other = ext(h, 900000, 16384);
    hk_store_job job;
    cr_assert_eq(hk_store_job_prepare(st, &e, &job), 0);
    cr_assert(!hk_store_resident(st, &e), "not resident: cached as such for this epoch");
    cr_assert(!hk_store_resident(st, &other));
    hk_store_page_in(&job);
    cr_assert_eq(job.error, 0);
    hk_store_job_release(st, &job);
    cr_assert(hk_store_resident(st, &e), "the job's windows were forgotten: resident in the same epoch");
    cr_assert(!hk_store_resident(st, &other));
    hk_store_free(st);
    mi_free(t.mi);
}

Test(store_batch, pad_and_metainfo_extents)
{
    tdata t = make_data("a.bin", 100000);
    hk_store *st = epoch_store();
    uint64_t h = add(st, &t);
    hk_store_set_batching(st, true);
    hk_store_next_epoch(st);
    load(&t);
    hk_extent md = {h, HK_FILE_METAINFO, t.mi->info_start, (uint32_t)(t.mi->info_end - t.mi->info_start)};
    hk_store_prefetch(st, &md);
    hk_store_flush_prefetch(st);
    cr_assert(hk_store_resident(st, &md), "the .torrent was just written: resident");
    hk_extent last = ext(h, 100000 - 10, 10);
    hk_store_prefetch(st, &last);
    cr_assert(hk_store_resident(st, &last), "the file's last (partial) page");
    hk_extent bad = ext(h, 100000 - 10, 11);
    cr_assert(!hk_store_resident(st, &bad), "past the end: refused");
    hk_store_free(st);
    mi_free(t.mi);
}
