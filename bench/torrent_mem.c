/* torrent_mem: where the heap goes per torrent (issue 10 item 3). Loads every .torrent below DIR into a runtime
 * without a listener (the daemon's catalog, store and seeder), then prints the heap in use per torrent (mallinfo2:
 * what malloc handed out, its chunk overheads included) and, per torrent, each record's parts as the owners account
 * them: the seeder (torrent records with their slabs' spare records and the slab array, info-hash and SKEY indexes,
 * name arena, other: file entries, piece states), the table of .torrent paths (records, paths' last components,
 * interned folders, the two slot tables), the store (handle table slack, storage entries, file entries kept apart,
 * names, shared folder records) and what is left (malloc's chunk headers and rounding, the libraries' own heap).
 * Reads the seeder's and the store's internals: a measuring tool, not a client.
 * bench/startup_bench.py builds and runs it; by hand, from the release build's libraries:
 *   cc -O2 -Icore -Ibackend-real/lib -Ibackend-real/lib/catalog -Ibackend-real/lib/disk -Ibackend-real/lib/net \
 *      -Ibackend-real/lib/trackers -Ibackend-real/lib/ops bench/torrent_mem.c build/release/backend-real/libhekate_real.a \
 *      build/release/core/libhekate_core.a -lev -lcurl -lmicrohttpd -lsystemd -linih -lcrypto -lpthread -o /tmp/torrent_mem
 * Usage: torrent_mem DIR      (e.g. /tmp/hk_startup/1000000, written by bench/startup_bench.py) */
#include <ev.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "real_runtime.h"
#include "rescan.h"
#include "seeder_internal.h"
#include "served.h"
#include "store.h"
#undef PF_MAX /* <sys/socket.h>'s, not the store's */
#include "store_internal.h"

typedef struct parts {
    double sd_recs, sd_ih, sd_skey, sd_names, sd_other;
    double pt_recs, pt_paths, pt_folders, pt_tables;
    double st_handles, st_recs, st_files, st_names, st_folders;
} parts;

static void seeder_parts(const hk_seeder *s, uint64_t seeder_bytes, parts *p)
{
    const hk_torrent_table *tt = &s->torrents;
    p->sd_recs = (double)hk_tt_records_bytes(tt);
    p->sd_ih = (double)hk_ih_bytes(&tt->index);
    p->sd_skey = (double)hk_skey_bytes(&tt->skey);
    p->sd_names = (double)hk_tt_names_bytes(tt);
    p->sd_other = (double)seeder_bytes - p->sd_recs - p->sd_ih - p->sd_skey - p->sd_names;
}

static void served_parts(const hk_served *sd, parts *p)
{
    size_t cursor = 0;
    for (const hk_served_rec *sv = hk_served_next(sd, &cursor); sv; sv = hk_served_next(sd, &cursor)) {
        p->pt_recs += sizeof *sv;
        char base[HK_SERVED_PATH_MAX];
        if (hk_served_base(sv, base, sizeof base)) /* kept without its ".torrent" (served.h) */
            p->pt_paths += strlen(base) + 1 - (sv->torrent_ext ? strlen(".torrent") : 0);
    }
    p->pt_folders = (double)hk_served_folder_bytes(sd);
    p->pt_tables = (double)hk_served_memory(sd) - p->pt_recs - p->pt_paths - p->pt_folders;
}

static void store_parts(const hk_store *st, const hk_served *sd, parts *p)
{
    /* The handle table is the slabs of storage entries: each live storage's entry counts as its record, the slab
     * pointers and the entries not in use (free or never handed out) as the table. */
    p->st_handles = (double)hk_sa_bytes(&st->tab);
    size_t cursor = 0;
    for (const hk_served_rec *sv = hk_served_next(sd, &cursor); sv; sv = hk_served_next(sd, &cursor)) {
        const st_storage *s = st_lookup(st, hk_served_storage(sv), false, NULL);
        if (!s)
            continue;
        double apart = (double)st_apart_bytes(s);
        p->st_handles -= sizeof *s;
        p->st_recs += sizeof *s;
        p->st_files += apart - st_names_len(s); /* the entries and their header */
        p->st_names += st_names_len(s);
        p->st_folders += (double)hk_store_storage_bytes(st, hk_served_storage(sv)) - (sizeof *s + apart);
    }
}

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
    malloc_trim(0);
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
    parts p = { 0 };
    seeder_parts(hk_real_seeder(r), s1.memory_bytes - s0.memory_bytes, &p);
    served_parts(hk_real_served(r), &p);
    store_parts(hk_real_store(r), hk_real_served(r), &p);
    double n = (double)st.served, heap = (double)(m1.uordblks + m1.hblkhd - m0.uordblks - m0.hblkhd);
    double seeder = p.sd_recs + p.sd_ih + p.sd_skey + p.sd_names + p.sd_other;
    double paths = p.pt_recs + p.pt_paths + p.pt_folders + p.pt_tables;
    double store = p.st_handles + p.st_recs + p.st_files + p.st_names + p.st_folders;
    printf("%zu torrents: heap in use %.1f B/torrent = seeder %.1f + paths table %.1f + store %.1f + malloc "
           "overheads and the rest %.1f\n", st.served, heap / n, seeder / n, paths / n, store / n,
           (heap - seeder - paths - store) / n);
    const hk_torrent_table *tt = &hk_real_seeder(r)->torrents;
    uint32_t slabs = tt->recs.allocated;
    printf("  seeder:      records %.1f (%zu B each, %u slabs of %u), info-hash index %.1f, SKEY index %.1f, "
           "name arena %.1f (%u B for %.0f B of names), other %.1f\n", p.sd_recs / n, sizeof(hk_torrent), slabs,
           HK_TT_SLAB, p.sd_ih / n, p.sd_skey / n, p.sd_names / n, tt->arena_cap,
           (double)(tt->arena_len - tt->arena_garbage), p.sd_other / n);
    printf("  paths table: records %.1f (%zu B each), path names %.1f, folders %.1f, slot tables and slab / arena "
           "slack %.1f\n",
           p.pt_recs / n, sizeof(hk_served_rec), p.pt_paths / n, p.pt_folders / n, p.pt_tables / n);
    printf("  store:       handle table (slab pointers, entries not in use) %.1f, storage entries %.1f (%zu B each, "
           "one file inline), file entries apart %.1f, names %.1f, folders %.1f\n", p.st_handles / n,
           p.st_recs / n, sizeof(st_storage), p.st_files / n, p.st_names / n, p.st_folders / n);
    printf("  names (counted in the parts above): %.1f\n", (p.sd_names + p.pt_paths + p.pt_folders + p.st_names) / n);
    hk_real_free(r);
    ev_loop_destroy(loop);
    return 0;
}
