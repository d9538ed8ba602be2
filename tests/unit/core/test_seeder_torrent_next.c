/* Tests of hk_seeder_torrent_next (core/seeder.h): the walk the metrics endpoint makes over every torrent. After
 * adds, a removal, a re-add and a storage failure, it visits every served torrent exactly once (failed ones
 * included, removed ones not), with the same statistics hk_seeder_torrent_stats gives for its info-hash; an empty
 * seeder yields nothing. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seeder_harness.h"

#define NT 50

Test(seeder_torrent_next, visits_each_served_torrent_once)
{
    harness h;
    h_init(&h, NULL);
    uint32_t cursor = 0;
    uint8_t ih[20];
    hk_torrent_stats ts;
    cr_assert(!hk_seeder_torrent_next(h.s, &cursor, ih, &ts), "an empty seeder has no torrent");

    uint8_t hashes[NT][20];
    bool live[NT];
    for (int i = 0; i < NT; i++) {
        char name[32];
        snprintf(name, sizeof name, "file%02d.bin", i);
        size_t len;
        uint8_t *t = tb_single(name, 16384, 20000 + (uint64_t)i, &len);
        char err[256];
        cr_assert_eq(hk_seeder_add_torrent(h.s, t, len, 100 + (uint64_t)i, hashes[i], err, sizeof err), HK_ADD_OK,
                     "%s", err);
        free(t);
        live[i] = true;
    }
    for (int i = 0; i < NT; i += 7) { /* removed: their records are freed, and some reused below */
        cr_assert(hk_seeder_remove_torrent(h.s, hashes[i]));
        live[i] = false;
    }
    size_t len;
    uint8_t *t = tb_single("file07.bin", 16384, 20007, &len);
    char err[256];
    cr_assert_eq(hk_seeder_add_torrent(h.s, t, len, 999, hashes[7], err, sizeof err), HK_ADD_OK, "%s", err);
    free(t);
    live[7] = true;
    hk_seeder_storage_failed(h.s, 100 + 3, "test");

    int seen[NT] = { 0 };
    int visits = 0, failed = 0;
    cursor = 0;
    while (hk_seeder_torrent_next(h.s, &cursor, ih, &ts)) {
        visits++;
        cr_assert_leq(visits, NT, "the walk ends");
        int which = -1;
        for (int i = 0; i < NT; i++)
            if (memcmp(hashes[i], ih, 20) == 0)
                which = i;
        cr_assert_geq(which, 0, "a torrent that was added");
        cr_assert(live[which], "torrent %d was removed", which);
        seen[which]++;
        hk_torrent_stats by_hash;
        cr_assert(hk_seeder_torrent_stats(h.s, ih, &by_hash));
        cr_assert_eq(memcmp(&by_hash, &ts, sizeof ts), 0, "torrent %d: the same statistics as by lookup", which);
        cr_assert_eq(ts.total_length, 20000 + (uint64_t)which);
        failed += ts.failed;
    }
    for (int i = 0; i < NT; i++)
        cr_assert_eq(seen[i], live[i] ? 1 : 0, "torrent %d visited %d times", i, seen[i]);
    cr_assert_eq(failed, 1, "the failed torrent is visited, marked failed");
    cr_assert(!hk_seeder_torrent_next(h.s, &cursor, ih, &ts), "and stays at the end");
    h_free(&h);
}
