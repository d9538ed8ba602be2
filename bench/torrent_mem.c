/* torrent_mem: where the heap goes per torrent (issue 10 item 3). Loads every .torrent below DIR into a runtime
 * without a listener (the daemon's catalog, store and seeder), optionally through a resume state, then prints the
 * heap in use per torrent (mallinfo2: what malloc handed out, its chunk overheads included) and the share of each
 * owner: the seeder (its accounted hk_mem: torrent records, indexes, file entries, names), the table of .torrent
 * paths (hk_served_memory), the store (hk_store_storage_bytes summed over the served storages). Built by hand from
 * the release build's libraries:
 *   cc -O2 -Icore -Ibackend-real/lib -Ibackend-real/lib/catalog -Ibackend-real/lib/disk -Ibackend-real/lib/net \
 *      -Ibackend-real/lib/trackers -Ibackend-real/lib/ops bench/torrent_mem.c build/release/backend-real/libhekate_real.a \
 *      build/release/core/libhekate_core.a -lev -lcurl -lmicrohttpd -lsystemd -linih -lcrypto -lpthread -o /tmp/torrent_mem
 * Usage: torrent_mem DIR      (e.g. /tmp/hk_startup/1000000, written by bench/startup_bench.py) */
#include <ev.h>
#include <malloc.h>
#include <stdio.h>

#include "log.h"
#include "real_runtime.h"
#include "rescan.h"
#include "served.h"
#include "store.h"

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    hk_log_set_level(HK_LOG_ERROR);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_real_opts o;
    hk_real_opts_default(&o);
    o.listen = false;
    char err[512];
    hk_real *r = hk_real_new(loop, &o, err, sizeof err);
    if (!r) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct mallinfo2 m0 = mallinfo2();
    hk_stats s0;
    hk_seeder_stats(hk_real_seeder(r), &s0);
    const char *dirs[1] = { argv[1] };
    hk_rescan_stats st;
    hk_rescan_run(r, dirs, 1, NULL, 0, &st);
    malloc_trim(0);
    struct mallinfo2 m1 = mallinfo2();
    hk_stats s1;
    hk_seeder_stats(hk_real_seeder(r), &s1);
    const hk_served *sd = hk_real_served(r);
    size_t store = 0, cursor = 0;
    for (const hk_served_rec *sv = hk_served_next(sd, &cursor); sv; sv = hk_served_next(sd, &cursor))
        store += hk_store_storage_bytes(hk_real_store(r), sv->storage);
    double n = (double)st.served;
    printf("%zu torrents: heap in use %.1f B/torrent; seeder (accounted) %.1f, paths table %.1f, store %.1f\n",
           st.served, (double)(m1.uordblks + m1.hblkhd - m0.uordblks - m0.hblkhd) / n, (double)(s1.memory_bytes - s0.memory_bytes) / n,
           (double)hk_served_memory(sd) / n, (double)store / n);
    hk_real_free(r);
    ev_loop_destroy(loop);
    return 0;
}
