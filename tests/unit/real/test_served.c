/* Tests of backend-real/lib/served: the table of .torrent paths. Against a plain array as reference, through many
 * rounds of inserts, storage changes and deletions in a pseudo-random order (which exercises the backward-shift
 * deletion across wrapped probe runs): every record is found by path and by storage, nothing deleted is found,
 * iteration visits each record once, counts and memory follow. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "served.h"

#define N 20000

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

typedef struct ref {
    char path[64];
    hk_served_rec *rec;      /* NULL: not in the table */
    uint64_t storage;
} ref;

static ref refs[N];

static size_t nrefs = N;

static void check_all(const hk_served *t)
{
    size_t live = 0, with = 0;
    for (size_t i = 0; i < nrefs; i++) {
        hk_served_rec *r = hk_served_find(t, refs[i].path);
        cr_assert_eq(r, refs[i].rec, "%s: found %p, expected %p", refs[i].path, (void *)r, (void *)refs[i].rec);
        if (refs[i].rec) {
            live++;
            cr_assert_str_eq(HK_SERVED_PATH(r), refs[i].path);
            cr_assert_eq(hk_served_storage(r), refs[i].storage);
            if (refs[i].storage) {
                with++;
                cr_assert_eq(hk_served_find_storage(t, refs[i].storage), r, "storage %llu",
                             (unsigned long long)refs[i].storage);
            }
        }
    }
    cr_assert_eq(hk_served_count(t), live);
    cr_assert_eq(hk_served_with_storage(t), with);
    size_t cursor = 0, seen = 0;
    for (hk_served_rec *r = hk_served_next(t, &cursor); r; r = hk_served_next(t, &cursor)) {
        cr_assert_eq(r->mark, 0, "visited twice: %s", HK_SERVED_PATH(r));
        r->mark = 1;
        seen++;
    }
    cr_assert_eq(seen, live);
    cursor = 0;
    for (hk_served_rec *r = hk_served_next(t, &cursor); r; r = hk_served_next(t, &cursor))
        r->mark = 0;
}

/* n paths, `rounds` rounds of 3n random operations, everything checked after each round. */
static void churn(size_t n, int rounds)
{
    nrefs = n;
    hk_served *t = hk_served_new();
    cr_assert_not_null(t);
    size_t empty_mem = hk_served_memory(t);
    cr_assert_null(hk_served_find(t, "/nothing"));
    cr_assert_null(hk_served_find_storage(t, 5));
    uint64_t next_storage = 1;
    for (size_t i = 0; i < n; i++)
        snprintf(refs[i].path, sizeof refs[i].path, "/srv/t/%zu/file-%zu.torrent", i % 97, i);

    for (int round = 0; round < rounds; round++) {
        for (size_t k = 0; k < 3 * n; k++) {
            size_t i = (size_t)(next_rand() % n);
            unsigned op = (unsigned)(next_rand() % 4);
            ref *f = &refs[i];
            if (!f->rec) {
                f->rec = hk_served_insert(t, f->path);
                cr_assert_not_null(f->rec);
                cr_assert_eq(hk_served_storage(f->rec), 0);
                f->storage = 0;
            } else if (op == 0) {
                hk_served_delete(t, f->rec);
                f->rec = NULL;
                f->storage = 0;
            } else if (op == 1) { /* handles as the store's: a generation, 1 + a table index (one per ref) */
                f->storage = f->storage ? 0 : ((next_storage++ % 65535 + 1) << 32) | i;
                cr_assert_eq(hk_served_set_storage(t, f->rec, f->storage), 0);
            } else if (op == 2 && f->storage) {
                f->storage = ((next_storage++ % 65535 + 1) << 32) | i;
                cr_assert_eq(hk_served_set_storage(t, f->rec, f->storage), 0);
            }
        }
        check_all(t);
    }
    cr_assert_gt(hk_served_memory(t), empty_mem);
    /* Delete everything: the table is empty and the records' memory is returned. */
    for (size_t i = 0; i < n; i++) {
        if (refs[i].rec)
            hk_served_delete(t, refs[i].rec);
        refs[i].rec = NULL;
        refs[i].storage = 0;
    }
    check_all(t);
    cr_assert_eq(hk_served_count(t), 0);
    size_t cursor = 0;
    cr_assert_null(hk_served_next(t, &cursor));
    hk_served_free(t);
}

Test(served, follows_a_reference_through_churn)
{
    churn(N, 4);
}

/* A small table (at most 30 records: 54 slots, not a power of two, as 16 grows by half to 24, 36, 54): probe runs
 * often wrap past the last slot, so deletions shift entries across the end. */
Test(served, small_table_wraps_and_stays_consistent)
{
    churn(30, 3000);
}

Test(served, records_hold_their_path_and_fields)
{
    hk_served *t = hk_served_new();
    hk_served_rec *a = hk_served_insert(t, "/a.torrent");
    hk_served_rec *b = hk_served_insert(t, "/b.torrent");
    cr_assert(a && b && a != b);
    a->torrent = 7;
    a->fp = 42;
    a->size = 1234;
    const uint64_t ha = (1ull << 32) | 99, hb = (1ull << 32) | 100;
    hk_served_set_storage(t, a, ha);
    hk_served_set_storage(t, b, hb);
    cr_assert_eq(hk_served_find_storage(t, ha), a);
    cr_assert_eq(hk_served_find_storage(t, hb), b);
    cr_assert_eq(a->torrent, 99, "the torrent id is the handle's table index");
    cr_assert_null(hk_served_find_storage(t, (2ull << 32) | 99), "another generation of the same index is not a");
    cr_assert_eq(hk_served_set_storage(t, a, 99), -1, "not a handle: its generation is 0");
    cr_assert_eq(hk_served_set_storage(t, a, (1ull << 48) | 99), -1, "not a handle: its generation is above 16 bits");
    cr_assert_eq(hk_served_storage(a), ha, "a refused handle changes nothing");
    hk_served_set_storage(t, a, 0);
    cr_assert_null(hk_served_find_storage(t, ha), "a storage cleared is no longer indexed");
    cr_assert_eq(hk_served_with_storage(t), 1);
    cr_assert_eq(hk_served_find(t, "/a.torrent")->fp, 42);
    cr_assert_eq(hk_served_find(t, "/a.torrent")->size, 1234);
    /* the narrowed fields (served.h) hold their largest values side by side with their neighbours */
    const uint64_t hmax = (0xffffull << 32) | 99;
    a->trackers_hash = (1ull << HK_SERVED_TRACKERS_BITS) - 1;
    a->size = (1u << HK_SERVED_SIZE_BITS) - 1;
    a->reported = a->torrent_ext = true;
    cr_assert_eq(hk_served_set_storage(t, a, hmax), 0);
    cr_assert_eq(hk_served_storage(a), hmax, "a 16-bit generation beside a 48-bit trackers hash");
    cr_assert_eq(a->trackers_hash, (1ull << HK_SERVED_TRACKERS_BITS) - 1);
    cr_assert_eq(a->size, (1u << HK_SERVED_SIZE_BITS) - 1);
    cr_assert(a->reported && a->torrent_ext && !a->bad_file && !a->stale && !a->other_shard);
    a->trackers_hash = 0;
    a->reported = false;
    cr_assert_str_eq(HK_SERVED_PATH(a), "/a.torrent");
    cr_assert_eq(hk_served_find_storage(t, hmax), a);
    hk_served_set_storage(t, a, 0);
    a->size = 1234;
    cr_assert_eq(hk_served_storage(hk_served_find(t, "/a.torrent")), 0);
    cr_assert_null(hk_served_find(t, "/a.torrent/"), "paths match exactly");
    hk_served_delete(t, b);
    cr_assert_null(hk_served_find_storage(t, hb), "deleting a record unindexes its storage");
    cr_assert_eq(hk_served_count(t), 1);
    hk_served_free(t); /* frees a */
    hk_served_free(NULL);
}

/* Issue 10 (10^6 torrents): beyond its records, the table costs 4-byte path slots (at most 3/4 full, at least half
 * full after growing: 16 grows by half, so 1,000 records take 1,369 slots), a name arena grown by a quarter, and
 * freed numbers are reused: churn does not grow it. */
Test(served, slots_are_32_bits_and_numbers_are_reused)
{
    hk_served *t = hk_served_new();
    char path[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(path, sizeof path, "/d/t%04d.torrent", i);
        cr_assert_not_null(hk_served_insert(t, path));
    }
    /* 1000 records: one slab of 1024, 1369 path slots, 1000 names of 6 bytes in an arena of at most 5/4 of that
     * (4096 grown by a quarter: 5120, 6400), the slab pointers, the folder and the table's own struct. */
    size_t before = hk_served_memory(t) - hk_served_folder_bytes(t);
    cr_assert_leq(before, 1024 * sizeof(hk_served_rec) + 1369 * 4 + 1000 * 6 * 5 / 4 + 16 * 8 + 256,
                  "%zu bytes for 1000 records", before);
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < 1000; i += 2) {
            snprintf(path, sizeof path, "/d/t%04d.torrent", i);
            hk_served_rec *r = hk_served_find(t, path);
            cr_assert_not_null(r);
            hk_served_delete(t, r);
            cr_assert_not_null(hk_served_insert(t, path));
        }
    size_t after = hk_served_memory(t) - hk_served_folder_bytes(t);
    cr_assert_lt(after, before + 1024 * sizeof(hk_served_rec), "churn reuses the freed record numbers: no new slab "
                 "(%zu bytes, %zu before)", after, before);
    cr_assert_leq(after, before + 2 * 4096, "the name arena's garbage is bounded (%zu bytes, %zu before)", after,
                  before);
    hk_served_free(t);
}

/* Issue 10: the folder part of the paths is kept once per folder; each record keeps its last component without a
 * ".torrent" suffix; paths come back whole and match exactly. */
Test(served, folders_are_interned_and_paths_come_back_whole)
{
    hk_served *t = hk_served_new();
    const char *paths[] = { "/d/one/t1.torrent", "/d/one/t2.torrent", "/d/two/t1.torrent", "plain.torrent",
                            "/d/one/.torrent", "/d/one/t1.torrentx", "/d/one/t1", "/", "/d/one/" };
    size_t n = sizeof paths / sizeof *paths;
    hk_served_rec *r[sizeof paths / sizeof *paths];
    for (size_t i = 0; i < n; i++)
        cr_assert_not_null(r[i] = hk_served_insert(t, paths[i]), "%s", paths[i]);
    for (size_t i = 0; i < n; i++) {
        char buf[HK_SERVED_PATH_MAX];
        cr_assert_str_eq(hk_served_path(r[i], buf, sizeof buf), paths[i]);
        cr_assert_eq(hk_served_path_len(r[i]), strlen(paths[i]));
        cr_assert_eq(hk_served_find(t, paths[i]), r[i], "%s", paths[i]);
    }
    cr_assert_null(hk_served_find(t, "/d/one/t1.torren"));
    cr_assert_null(hk_served_find(t, "/d/one/t"));
    cr_assert_null(hk_served_find(t, "/d/one"));
    cr_assert_null(hk_served_find(t, "/d/two/t2.torrent"));
    cr_assert_eq(r[0]->folder, r[1]->folder, "one folder record for the paths of a folder");
    cr_assert_neq(r[0]->folder, r[2]->folder);
    char bb[64];
    cr_assert(r[0]->torrent_ext, "the suffix is implied");
    cr_assert_str_eq(hk_served_base(r[0], bb, sizeof bb), "t1.torrent");
    cr_assert_not(r[4]->torrent_ext, "a bare suffix is a name");
    cr_assert_str_eq(hk_served_base(r[4], bb, sizeof bb), ".torrent");
    cr_assert_null(hk_served_base(r[0], bb, 10), "a base that does not fit");
    cr_assert_lt(hk_served_path_cmp(r[0], r[1]), 0);
    cr_assert_gt(hk_served_path_cmp(r[2], r[1]), 0);
    cr_assert_eq(hk_served_path_cmp(r[5], r[5]), 0);
    char small[8];
    cr_assert_str_eq(hk_served_path(r[0], small, sizeof small), "/d/one/", "truncated to the buffer");
    size_t folders = hk_served_folder_bytes(t);
    cr_assert_gt(folders, 0);
    for (size_t i = 0; i < n; i++)
        hk_served_delete(t, r[i]);
    cr_assert_eq(hk_served_count(t), 0);
    cr_assert_leq(hk_served_folder_bytes(t), 16 * sizeof(void *), "the last reference frees a folder: only the "
                  "empty table is left (%zu bytes)", hk_served_folder_bytes(t));
    hk_served_free(t);
}

/* 1,000 torrents of 100 folders: the folder paths are paid for once each. */
Test(served, a_folder_costs_once)
{
    hk_served *t = hk_served_new();
    char path[128];
    for (int i = 0; i < 1000; i++) {
        snprintf(path, sizeof path, "/a/fairly/long/folder/name/for/the/test/d%03d/t%04d.torrent", i / 10, i);
        cr_assert_not_null(hk_served_insert(t, path));
    }
    size_t f = hk_served_folder_bytes(t);
    /* a folder: its header (with the 8-byte FNV state its records' path hashes start from) and its path */
    cr_assert_leq(f, 100 * (sizeof(void *) + 24 + 50) + 256 * sizeof(void *), "folders %zu bytes", f);
    for (int i = 0; i < 1000; i++) {
        snprintf(path, sizeof path, "/a/fairly/long/folder/name/for/the/test/d%03d/t%04d.torrent", i / 10, i);
        hk_served_rec *r = hk_served_find(t, path);
        cr_assert_not_null(r);
        cr_assert_str_eq(HK_SERVED_PATH(r), path);
    }
    hk_served_free(t);
}

/* Records live in slabs and their last components in one arena: deleting most of them compacts the arena, and every
 * record left keeps its path (and its address); numbers freed are reused. */
Test(served, the_name_arena_compacts_under_churn)
{
    enum { M = 3000 };
    hk_served *t = hk_served_new();
    static hk_served_rec *r[M];
    char path[128];
    for (int i = 0; i < M; i++) {
        snprintf(path, sizeof path, "/srv/a/%d/a-rather-long-torrent-name-number-%d.torrent", i % 7, i);
        cr_assert_not_null(r[i] = hk_served_insert(t, path));
        r[i]->why_hash = (uint32_t)i + 1;
    }
    size_t full = hk_served_memory(t);
    for (int i = 0; i < M; i++)
        if (i % 10 != 0)
            hk_served_delete(t, r[i]);
    cr_assert_lt(hk_served_memory(t), full, "the arena shrank to its live names");
    for (int i = 0; i < M; i += 10) {
        snprintf(path, sizeof path, "/srv/a/%d/a-rather-long-torrent-name-number-%d.torrent", i % 7, i);
        cr_assert_eq(hk_served_find(t, path), r[i], "%s", path);
        cr_assert_str_eq(HK_SERVED_PATH(r[i]), path);
        cr_assert_eq(r[i]->why_hash, (uint32_t)i + 1, "the record did not move");
    }
    hk_served_rec *again = hk_served_insert(t, "/srv/b/new.torrent");
    cr_assert_not_null(again);
    cr_assert_eq(again->why_hash, 0, "a reused entry starts zeroed");
    cr_assert_str_eq(HK_SERVED_PATH(again), "/srv/b/new.torrent");
    cr_assert_eq(hk_served_count(t), M / 10 + 1);
    hk_served_free(t);
}

/* The fingerprint of a .torrent's identity (what a record and the resume state keep): fixed (the state files of
 * earlier runs hold it), never 0 (0 is "none"), and any one field changed changes it. */
Test(served, a_file_fingerprint_follows_every_field)
{
    const hk_file_id id = { .dev = 2049, .ino = 1234567, .size = 4321, .mtime_ns = 1700000000123456789,
                            .ctime_ns = 1700000000987654321 };
    uint64_t h = HK_GOLDEN64;
    const uint64_t x[5] = { 2049, 1234567, 4321, 1700000000123456789ull, 1700000000987654321ull };
    for (int i = 0; i < 5; i++)
        h = hk_mix64(h ^ x[i]);
    cr_assert_eq(hk_file_fp(&id), h, "the chain docs/resume-state.md defines");
    cr_assert_neq(hk_file_fp(&id), 0);
    cr_assert_neq(hk_file_fp(&(hk_file_id){ 0 }), 0, "0 stays \"no identity\"");
    hk_file_id d = id;
    d.dev++;
    cr_assert_neq(hk_file_fp(&d), hk_file_fp(&id));
    d = id;
    d.ino++;
    cr_assert_neq(hk_file_fp(&d), hk_file_fp(&id));
    d = id;
    d.size++;
    cr_assert_neq(hk_file_fp(&d), hk_file_fp(&id));
    d = id;
    d.mtime_ns++;
    cr_assert_neq(hk_file_fp(&d), hk_file_fp(&id));
    d = id;
    d.ctime_ns--;
    cr_assert_neq(hk_file_fp(&d), hk_file_fp(&id));
    d = id;
    d.ino = id.dev; /* fields are not interchangeable */
    d.dev = id.ino;
    cr_assert_neq(hk_file_fp(&d), hk_file_fp(&id));
}

/* Issue 10: a record keeps no hash of its path (the slots keep a 6-bit tag of it): hk_served_path_hash, computed
 * from the record, is the hash of the path's bytes; the torrent id (28 bits) and the 4-bit mark share a word; the
 * mark can be cleared for every record at once. */
Test(served, the_path_hash_the_narrow_fields_and_the_mark)
{
    hk_served *t = hk_served_new();
    hk_served_rec *a = hk_served_insert(t, "/srv/x/a.torrent");
    hk_served_rec *b = hk_served_insert(t, "/srv/x/b.bin");
    hk_served_rec *c = hk_served_insert(t, "plain");
    cr_assert(a && b && c);
    cr_assert_neq(hk_served_path_hash(a), hk_served_path_hash(b));
    uint32_t ha = hk_served_path_hash(a);
    hk_served_delete(t, b);
    cr_assert_eq(hk_served_path_hash(a), ha, "computed from the path alone");
    const uint64_t top = (1ull << 32) | ((1u << HK_SERVED_TORRENT_BITS) - 1);
    cr_assert_eq(hk_served_set_storage(t, a, (1ull << 32) | (1u << HK_SERVED_TORRENT_BITS)), -1,
                 "a table index of more than 28 bits is refused");
    a->mark = HK_SERVED_MARK_MAX;
    cr_assert_eq(hk_served_set_storage(t, a, top), 0);
    cr_assert_eq(hk_served_storage(a), top, "a 28-bit table index beside the mark");
    cr_assert_eq(a->mark, HK_SERVED_MARK_MAX);
    cr_assert_eq(hk_served_find_storage(t, top), a);
    c->mark = 3;
    hk_served_clear_marks(t);
    cr_assert_eq(a->mark, 0);
    cr_assert_eq(c->mark, 0);
    cr_assert_eq(hk_served_storage(a), top, "clearing the marks keeps the rest");
    cr_assert_str_eq(HK_SERVED_PATH(a), "/srv/x/a.torrent");
    cr_assert_eq(hk_served_find(t, "plain"), c);
    hk_served_free(t);
}

/* The record numbers take 26 bits of a slot: the table holds at most HK_SERVED_MAX_RECS records (tested with a
 * lower limit), refuses one more (hk_served_full), and takes one again once one is deleted. */
Test(served, the_table_refuses_a_record_beyond_its_limit)
{
    hk_served *t = hk_served_new();
    hk_served_set_limit(t, 100);
    char path[32];
    for (int i = 0; i < 100; i++) {
        snprintf(path, sizeof path, "/d/t%03d.torrent", i);
        cr_assert_not_null(hk_served_insert(t, path));
        cr_assert_eq(hk_served_full(t), i == 99);
    }
    cr_assert_null(hk_served_insert(t, "/d/one-more.torrent"), "full");
    cr_assert_eq(hk_served_count(t), 100, "a refused insert changes nothing");
    hk_served_delete(t, hk_served_find(t, "/d/t042.torrent"));
    cr_assert(!hk_served_full(t));
    cr_assert_not_null(hk_served_insert(t, "/d/one-more.torrent"));
    for (int i = 0; i < 100; i++) {
        snprintf(path, sizeof path, "/d/t%03d.torrent", i);
        cr_assert_eq(hk_served_find(t, path) != NULL, i != 42, "%s", path);
    }
    hk_served_free(t);
}
