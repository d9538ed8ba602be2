/* Unit tests for core/torrent_table: insert/find/remove under churn (the MSE SKEY index too), duplicates, record
 * size, slabs of records (stable addresses, freed when empty), names (the arena's growth), geometry, block
 * validation and the byte range -> file span mapping (multi-file, pad and empty files). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "mse_crypto.h"
#include "torrent_table.h"

/* Every test starts from an empty table and must leave nothing allocated once it is freed. */
static hk_mem m;
static hk_torrent_table tt;

static void setup(void)
{
    hk_tt_init(&tt, &m);
}

static void teardown(void)
{
    hk_tt_free(&tt);
    cr_assert_eq(m.bytes, 0, "%llu bytes left", (unsigned long long)m.bytes);
}

TestSuite(torrent_table, .init = setup, .fini = teardown);

static void hash_of(uint32_t n, uint8_t h[20])
{
    /* spread like SHA-1 would, but reproducible */
    uint64_t x = n * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < 20; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        h[i] = (uint8_t)x;
    }
}

static hk_file_desc one_file;

static hk_torrent_desc simple_desc(uint32_t n, uint64_t total, uint32_t piece_len)
{
    hk_torrent_desc d;
    memset(&d, 0, sizeof d);
    hash_of(n, d.info_hash);
    d.name = "name";
    d.name_len = 4;
    d.piece_length = piece_len;
    d.piece_count = (uint32_t)((total + piece_len - 1) / piece_len);
    d.total_length = total;
    one_file.length = total;
    one_file.pad = false;
    d.files = &one_file;
    d.nfiles = 1;
    d.storage = 1000 + n;
    return d;
}

/* Inserts d (which must be accepted) and returns its record. */
static const hk_torrent *inserted(const hk_torrent_desc *d)
{
    uint32_t rec;
    cr_assert_eq(hk_tt_insert(&tt, d, &rec), HK_TT_OK);
    return hk_tt_get(&tt, rec);
}

Test(torrent_table, record_is_compact)
{
    if (sizeof(void *) == 8) {
        cr_assert_eq(sizeof(hk_torrent), 64, "the torrent record is 64 bytes on LP64 (10^6 torrents, issue 10)");
        cr_assert_eq(sizeof(hk_torrent_ext), 40);
    } else {
        cr_assert_leq(sizeof(hk_torrent), 64);
    }
    cr_assert_eq(sizeof(hk_file_entry), 16);
}

Test(torrent_table, side_block_exists_only_while_needed)
{
    hk_torrent_desc d = simple_desc(1, 100000, 32768); /* 4 pieces, one file: no side block */
    uint32_t rec;
    uint64_t before = m.bytes;
    cr_assert_eq(hk_tt_insert(&tt, &d, &rec), HK_TT_OK);
    hk_torrent *t = hk_tt_get(&tt, rec);
    uint64_t plain = m.bytes;
    cr_assert_null(t->ext);
    cr_assert_eq(hk_tt_ext_bytes(t), 0);
    cr_assert_null(hk_torrent_pieces(t));
    cr_assert_eq(hk_torrent_verifying(t), 0);
    cr_assert_eq(hk_torrent_rate_slot(t), 0);
    cr_assert_eq(hk_torrent_uploaded(t), 0);
    cr_assert_eq(hk_torrent_peers(t), 0);
    cr_assert_eq(hk_torrent_nfiles(t), 1, "the implied single file");
    hk_file_entry fe = hk_torrent_file(t, 0);
    cr_assert_eq(fe.offset, 0);
    cr_assert_eq(hk_file_length(&fe), 100000);

    /* a verify in flight, then the pieces known one by one: the block lives until the last turns good */
    t->all_good = false;
    hk_torrent_ext *x = hk_tt_ext(&tt, t);
    cr_assert_not_null(x);
    cr_assert_eq(hk_tt_ext(&tt, t), x, "one block per torrent");
    cr_assert_eq(m.bytes, plain + sizeof *x);
    cr_assert_eq(hk_tt_ext_bytes(t), sizeof *x);
    x->verifying = 1;
    hk_tt_ext_trim(&tt, t);
    cr_assert_eq(t->ext, x, "not empty: kept");
    cr_assert_eq(hk_tt_pieces_set(&tt, t, 0, true), 0);
    cr_assert_not_null(hk_torrent_pieces(t));
    x->verifying = 0;
    hk_tt_ext_trim(&tt, t);
    cr_assert_eq(t->ext, x, "a piece state: kept");
    cr_assert_eq(hk_tt_pieces_set(&tt, t, 1, false), 0);
    for (uint32_t i = 1; i < 4; i++)
        cr_assert_eq(hk_tt_pieces_set(&tt, t, i, true), 0);
    cr_assert(t->all_good);
    cr_assert_null(t->ext, "every piece good, nothing in flight: freed");
    cr_assert_eq(m.bytes, plain);

    /* a one-piece torrent turns all good without a block: no side block either */
    hk_torrent_desc d2 = simple_desc(2, 1000, 32768);
    cr_assert_eq(hk_tt_insert(&tt, &d2, &rec), HK_TT_OK);
    hk_torrent *t2 = hk_tt_get(&tt, rec);
    t = hk_tt_get(&tt, (uint32_t)d.storage);
    t2->all_good = false;
    uint64_t two = m.bytes;
    cr_assert_eq(hk_tt_pieces_set(&tt, t2, 0, true), 0);
    cr_assert(t2->all_good);
    cr_assert_null(t2->ext);
    cr_assert_eq(m.bytes, two);

    /* dropped marks free the block; a removal frees whatever is left */
    t->all_good = false;
    cr_assert_eq(hk_tt_pieces_set(&tt, t, 2, false), 0);
    cr_assert_not_null(t->ext);
    hk_tt_pieces_free(&tt, t);
    cr_assert_null(t->ext);
    cr_assert_eq(hk_tt_pieces_set(&tt, t, 3, false), 0);
    hk_tt_ext(&tt, t)->rate_slot = 7;
    cr_assert_eq(hk_torrent_rate_slot(t), 7);
    cr_assert(hk_tt_remove(&tt, d.info_hash));
    cr_assert(hk_tt_remove(&tt, d2.info_hash));
    hk_tt_free(&tt); /* the pool and the index's slots */
    cr_assert_eq(m.bytes, before);
}

Test(torrent_table, files_live_in_the_side_block)
{
    hk_file_desc f[2] = {{100, false}, {50, false}};
    hk_torrent_desc d;
    memset(&d, 0, sizeof d);
    hash_of(9, d.info_hash);
    d.piece_length = 64;
    d.total_length = 150;
    d.piece_count = 3;
    d.files = f;
    d.nfiles = 2;
    d.storage = 5;
    hk_torrent *t = (hk_torrent *)inserted(&d);
    cr_assert_not_null(t->ext, "a multi-file torrent always has one");
    cr_assert_eq(hk_torrent_nfiles(t), 2);
    cr_assert_eq(hk_tt_ext_bytes(t), sizeof(hk_torrent_ext) + 2 * sizeof(hk_file_entry));
    hk_tt_ext_trim(&tt, t);
    cr_assert_not_null(t->ext, "its files keep it");
    hk_file_entry fe = hk_torrent_file(t, 1);
    cr_assert_eq(fe.offset, 100);
    cr_assert_eq(hk_file_length(&fe), 50);
    t->all_good = false;
    cr_assert_eq(hk_tt_pieces_set(&tt, t, 0, true), 0);
    for (uint32_t i = 1; i < 3; i++)
        cr_assert_eq(hk_tt_pieces_set(&tt, t, i, true), 0);
    cr_assert(t->all_good);
    cr_assert_not_null(t->ext, "still its files");
    cr_assert_null(hk_torrent_pieces(t));
}

Test(torrent_table, peers_and_uploaded_live_in_the_side_block)
{
    hk_torrent_desc d = simple_desc(1, 100000, 32768); /* one file: no side block */
    uint32_t rec;
    cr_assert_eq(hk_tt_insert(&tt, &d, &rec), HK_TT_OK);
    hk_torrent *t = hk_tt_get(&tt, rec);
    uint64_t plain = m.bytes;
    cr_assert_null(t->ext);
    cr_assert_eq(hk_tt_peer_attach(&tt, t), 0);
    cr_assert_not_null(t->ext, "a torrent with a peer has one");
    cr_assert_eq(m.bytes, plain + sizeof(hk_torrent_ext));
    cr_assert_eq(hk_tt_peer_attach(&tt, t), 0);
    cr_assert_eq(hk_torrent_peers(t), 2);
    hk_tt_peer_detach(&tt, t);
    hk_tt_peer_detach(&tt, t);
    cr_assert_null(t->ext, "no peer, nothing sent: freed");
    cr_assert_eq(m.bytes, plain);
    cr_assert_eq(hk_tt_peer_attach(&tt, t), 0);
    hk_torrent_add_uploaded(t, 16384);
    hk_torrent_add_uploaded(t, 1696);
    hk_tt_peer_detach(&tt, t);
    cr_assert_eq(hk_torrent_peers(t), 0);
    cr_assert_eq(hk_torrent_uploaded(t), 16384 + 1696, "the counter outlives the peers");
    cr_assert_not_null(t->ext);
    cr_assert(hk_tt_remove(&tt, d.info_hash));
}

Test(torrent_table, the_piece_count_follows_from_the_lengths)
{
    static const struct { uint64_t total; uint32_t plen, count; } cases[] = {
        {1, 1, 1}, {1, 16384, 1}, {16384, 16384, 1}, {16385, 16384, 2}, {100000, 32768, 4},
        {(uint64_t)UINT32_MAX * 7, 7, UINT32_MAX}, {(1ull << 40) + 1, 1u << 20, (1u << 20) + 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hk_torrent_desc d = simple_desc((uint32_t)i + 1, cases[i].total, cases[i].plen);
        cr_assert_eq(d.piece_count, cases[i].count);
        uint32_t rec;
        cr_assert_eq(hk_tt_insert(&tt, &d, &rec), HK_TT_OK);
        const hk_torrent *t = hk_tt_get(&tt, rec);
        uint32_t n = cases[i].count;
        cr_assert_eq(hk_torrent_piece_count(t), n);
        cr_assert_eq(hk_torrent_piece_size(t, n - 1), cases[i].total - (uint64_t)(n - 1) * cases[i].plen);
        cr_assert_eq(hk_torrent_piece_size(t, n), 0);
        cr_assert_eq(hk_torrent_check_block(t, n, 0, 1, 16384), HK_BLOCK_BAD_INDEX);
        cr_assert_eq(hk_torrent_check_block(t, n - 1, 0, 1, 16384), HK_BLOCK_OK);
    }
}

Test(torrent_table, insert_find_duplicate_remove)
{
    hk_torrent_desc d = simple_desc(1, 100000, 32768);
    uint32_t rec;
    cr_assert_eq(hk_tt_insert(&tt, &d, &rec), HK_TT_OK);
    cr_assert_eq(hk_tt_find(&tt, d.info_hash), rec);
    cr_assert_eq(hk_tt_insert(&tt, &d, NULL), HK_TT_DUPLICATE);
    cr_assert_eq(hk_tt_count(&tt), 1);
    hk_torrent *t = hk_tt_get(&tt, rec);
    cr_assert_not_null(t);
    cr_assert_eq(hk_torrent_piece_count(t), 4);
    cr_assert_eq(hk_torrent_piece_size(t, 3), 100000 - 3 * 32768);
    cr_assert_eq(rec, 1001, "the record number is the storage handle's low 32 bits");
    cr_assert_eq(hk_tt_storage(t, rec), 1001);
    uint32_t nl;
    const char *name = hk_tt_name(&tt, t, &nl);
    cr_assert_eq(nl, 4);
    cr_assert_eq(memcmp(name, "name", 4), 0);
    cr_assert(hk_tt_remove(&tt, d.info_hash));
    cr_assert_not(hk_tt_remove(&tt, d.info_hash));
    cr_assert_eq(hk_tt_find(&tt, d.info_hash), HK_TT_NONE);
    cr_assert_null(hk_tt_get(&tt, rec));
}

Test(torrent_table, the_handle_names_the_record_and_its_generation)
{
    hk_torrent_desc d = simple_desc(1, 100000, 32768);
    d.storage = ((uint64_t)HK_TT_MAX_GEN << 32) | 5;
    uint32_t rec;
    cr_assert_eq(hk_tt_insert(&tt, &d, &rec), HK_TT_OK);
    cr_assert_eq(rec, 5);
    cr_assert_eq(hk_tt_storage(hk_tt_get(&tt, rec), rec), d.storage, "the generation comes back whole");
    hk_torrent_desc o = simple_desc(2, 100000, 32768);
    o.storage = 5;
    cr_assert_eq(hk_tt_insert(&tt, &o, NULL), HK_TT_INVALID, "record 5 is taken");
    o.storage = (uint64_t)(HK_TT_MAX_GEN + 1) << 32 | 6;
    cr_assert_eq(hk_tt_insert(&tt, &o, NULL), HK_TT_INVALID, "a generation above 15 bits");
    o.storage = HK_TT_MAX_REC;
    cr_assert_eq(hk_tt_insert(&tt, &o, NULL), HK_TT_INVALID, "a record number out of range");
    cr_assert_eq(hk_tt_count(&tt), 1);
    cr_assert(hk_tt_remove(&tt, d.info_hash));
    o.storage = (2ull << 32) | 5;
    cr_assert_eq(hk_tt_insert(&tt, &o, &rec), HK_TT_OK, "a removed record's number is free for the owner");
    cr_assert_eq(rec, 5);
    cr_assert_eq(hk_tt_get(&tt, 5)->gen, 2);
    cr_assert_null(hk_tt_get(&tt, 4), "numbers below stay free");
}

Test(torrent_table, churn_keeps_every_lookup_right)
{
    enum { N = 5000 };
    static bool live[N];
    memset(live, 0, sizeof live);
    uint64_t x = 12345;
    for (int step = 0; step < 40000; step++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        uint32_t n = (uint32_t)(x % N);
        hk_torrent_desc d = simple_desc(n, 1 + (x >> 40) % 1000000, 16384);
        if (!live[n]) {
            cr_assert_eq(hk_tt_insert(&tt, &d, NULL), HK_TT_OK);
            live[n] = true;
        } else if ((x >> 33) & 1) {
            cr_assert(hk_tt_remove(&tt, d.info_hash));
            live[n] = false;
        } else {
            cr_assert_eq(hk_tt_insert(&tt, &d, NULL), HK_TT_DUPLICATE);
        }
        if (step % 4000 == 0) {
            uint32_t count = 0;
            for (uint32_t k = 0; k < N; k++) {
                uint8_t h[20];
                hash_of(k, h);
                uint32_t r = hk_tt_find(&tt, h);
                cr_assert_eq(r != HK_TT_NONE, live[k], "torrent %u", k);
                uint8_t req2[20];
                hk_mse_hash("req2", h, 20, NULL, 0, req2);
                cr_assert_eq(hk_tt_find_skey(&tt, req2), r, "torrent %u by its SKEY hash", k);
                if (r != HK_TT_NONE) {
                    cr_assert_eq(memcmp(hk_tt_get(&tt, r)->info_hash, h, 20), 0);
                    cr_assert_eq(r, 1000 + k);
                    cr_assert_eq(hk_tt_storage(hk_tt_get(&tt, r), r), 1000 + k);
                }
                count += live[k];
            }
            cr_assert_eq(count, hk_tt_count(&tt));
            cr_assert_leq((uint64_t)hk_tt_count(&tt) * 4, (uint64_t)tt.index.cap * 3, "load factor <= 3/4");
        }
    }
    /* iteration visits each live torrent once */
    uint32_t seen = 0;
    for (uint32_t r = hk_tt_next(&tt, HK_TT_NONE); r != HK_TT_NONE; r = hk_tt_next(&tt, r))
        seen++;
    cr_assert_eq(seen, hk_tt_count(&tt));
    /* remove everything: the index shrinks and memory returns to the small floor */
    for (uint32_t k = 0; k < N; k++) {
        if (!live[k])
            continue;
        uint8_t h[20];
        hash_of(k, h);
        cr_assert(hk_tt_remove(&tt, h));
    }
    cr_assert_eq(hk_tt_count(&tt), 0);
    cr_assert_eq(tt.index.cap, 16);
    cr_assert_eq(tt.arena_len - tt.arena_garbage, 0);
}

Test(torrent_table, names_survive_arena_compaction)
{
    char name[64];
    for (uint32_t n = 0; n < 2000; n++) {
        hk_torrent_desc d = simple_desc(n, 5000, 16384);
        int len = snprintf(name, sizeof name, "torrent-number-%u", n);
        d.name = name;
        d.name_len = (size_t)len;
        cr_assert_eq(hk_tt_insert(&tt, &d, NULL), HK_TT_OK);
    }
    for (uint32_t n = 0; n < 2000; n++) {
        if (n % 10 == 0)
            continue;
        uint8_t h[20];
        hash_of(n, h);
        cr_assert(hk_tt_remove(&tt, h));
    }
    cr_assert_lt(tt.arena_garbage * 2, tt.arena_len + 1, "compaction ran");
    for (uint32_t n = 0; n < 2000; n += 10) {
        uint8_t h[20];
        hash_of(n, h);
        uint32_t r = hk_tt_find(&tt, h);
        cr_assert_neq(r, HK_TT_NONE);
        uint32_t nl;
        const char *s = hk_tt_name(&tt, hk_tt_get(&tt, r), &nl);
        int len = snprintf(name, sizeof name, "torrent-number-%u", n);
        cr_assert_eq(nl, (uint32_t)len);
        cr_assert_eq(memcmp(s, name, nl), 0);
    }
}

/* Inserts torrent n at record number rec (storage handle rec, generation 0). */
static hk_torrent *inserted_at(uint32_t n, uint32_t rec)
{
    hk_torrent_desc d = simple_desc(n, 5000, 16384);
    d.storage = rec;
    uint32_t got;
    cr_assert_eq(hk_tt_insert(&tt, &d, &got), HK_TT_OK);
    cr_assert_eq(got, rec);
    return hk_tt_get(&tt, rec);
}

static void removed(uint32_t n)
{
    uint8_t h[20];
    hash_of(n, h);
    cr_assert(hk_tt_remove(&tt, h));
}

Test(torrent_table, records_live_in_slabs_and_never_move)
{
    size_t slab = (size_t)HK_TT_SLAB * sizeof(hk_torrent);
    cr_assert_eq(hk_tt_records_bytes(&tt), 0, "an empty table holds no slab");
    hk_torrent *first = inserted_at(0, 0);
    size_t one = hk_tt_records_bytes(&tt);
    cr_assert_geq(one, slab);
    cr_assert_lt(one, slab + 4096, "one slab and its small array");
    /* fill three slabs and a bit: the first record stays where it was (no pool that moves when it grows) */
    for (uint32_t n = 1; n < 3 * HK_TT_SLAB + 10; n++)
        cr_assert_not_null(inserted_at(n, n));
    cr_assert_eq(hk_tt_get(&tt, 0), first, "a record never moves");
    cr_assert_eq(memcmp(first->info_hash, hk_tt_get(&tt, 0)->info_hash, 20), 0);
    cr_assert_eq(hk_tt_records_bytes(&tt) - one, 3 * slab, "four slabs: the spare capacity is under one slab");
    /* emptying a whole slab frees it; its numbers read as free, the records around it keep their addresses */
    hk_torrent *last = hk_tt_get(&tt, 3 * HK_TT_SLAB + 9);
    for (uint32_t n = HK_TT_SLAB; n < 2 * HK_TT_SLAB; n++)
        removed(n);
    cr_assert_eq(hk_tt_records_bytes(&tt) - one, 2 * slab, "the empty slab was freed");
    cr_assert_null(hk_tt_get(&tt, HK_TT_SLAB));
    cr_assert_null(hk_tt_get(&tt, 2 * HK_TT_SLAB - 1));
    cr_assert_eq(hk_tt_get(&tt, 3 * HK_TT_SLAB + 9), last);
    /* iteration goes by number and skips the freed slab */
    uint32_t seen = 0, prev = 0;
    for (uint32_t r = hk_tt_next(&tt, HK_TT_NONE); r != HK_TT_NONE; r = hk_tt_next(&tt, r), seen++) {
        cr_assert(seen == 0 || r > prev);
        cr_assert(r < HK_TT_SLAB || r >= 2 * HK_TT_SLAB);
        prev = r;
    }
    cr_assert_eq(seen, hk_tt_count(&tt));
    cr_assert_eq(seen, 2 * HK_TT_SLAB + 10);
    /* a number in the freed slab brings one slab back */
    cr_assert_not_null(inserted_at(HK_TT_SLAB, HK_TT_SLAB + 5));
    cr_assert_eq(hk_tt_records_bytes(&tt) - one, 3 * slab);
    /* the top slabs emptied: the slab entries in use shrink, numbers beyond are out of range */
    for (uint32_t n = 2 * HK_TT_SLAB; n < 3 * HK_TT_SLAB + 10; n++)
        removed(n);
    cr_assert_eq(tt.recs.nslabs, 2);
    cr_assert_null(hk_tt_get(&tt, 3 * HK_TT_SLAB + 9));
    cr_assert_eq(hk_tt_next(&tt, HK_TT_SLAB + 5), HK_TT_NONE);
    cr_assert_null(hk_tt_get(&tt, HK_TT_NONE));
}

Test(torrent_table, sparse_numbers_allocate_only_their_slabs)
{
    size_t slab = (size_t)HK_TT_SLAB * sizeof(hk_torrent);
    inserted_at(1, 7);
    inserted_at(2, 100 * HK_TT_SLAB + 3);
    size_t b = hk_tt_records_bytes(&tt);
    cr_assert_geq(b, 2 * slab);
    cr_assert_lt(b, 3 * slab, "two slabs, not the 101 below the highest number");
    cr_assert_null(hk_tt_get(&tt, 50 * HK_TT_SLAB), "a number in no slab is free");
    cr_assert_eq(hk_tt_next(&tt, 7), 100 * HK_TT_SLAB + 3, "iteration jumps the slabs not allocated");
    removed(2);
    cr_assert_eq(tt.recs.nslabs, 1);
    removed(1);
    cr_assert_eq(tt.recs.nslabs, 0);
    cr_assert_eq(hk_tt_records_bytes(&tt), (size_t)tt.recs.capslabs * sizeof *tt.recs.slabs, "only the slab array is left");
}

Test(torrent_table, the_name_arena_grows_by_a_quarter)
{
    char name[64];
    uint32_t prev_cap = 0, growths = 0;
    for (uint32_t n = 0; n < 20000; n++) {
        hk_torrent_desc d = simple_desc(n, 5000, 16384);
        int len = snprintf(name, sizeof name, "name-%u", n);
        d.name = name;
        d.name_len = (size_t)len;
        d.storage = n;
        cr_assert_eq(hk_tt_insert(&tt, &d, NULL), HK_TT_OK);
        if (tt.arena_cap != prev_cap) {
            if (prev_cap >= 256)
                cr_assert_eq(tt.arena_cap, prev_cap + prev_cap / 4, "%u -> %u", prev_cap, tt.arena_cap);
            prev_cap = tt.arena_cap;
            growths++;
        }
        cr_assert_leq(tt.arena_len, tt.arena_cap);
    }
    cr_assert_gt(growths, 10);
    cr_assert_geq((uint64_t)tt.arena_len * 5, (uint64_t)tt.arena_cap * 4 - 5 * 64, "a fifth spare (and a name)");
    cr_assert_eq(hk_tt_names_bytes(&tt), tt.arena_cap);
    /* removing most of them compacts the arena to its live bytes; growing again starts from there, by a quarter */
    for (uint32_t n = 0; n < 20000; n++) {
        if (n % 8 == 0)
            continue;
        uint8_t h[20];
        hash_of(n, h);
        cr_assert(hk_tt_remove(&tt, h));
    }
    cr_assert_lt(tt.arena_garbage * 2, tt.arena_len + 1, "compaction ran");
    cr_assert_leq(tt.arena_garbage, tt.arena_len);
    uint32_t live = tt.arena_len - tt.arena_garbage;
    cr_assert_geq(tt.arena_cap, live);
    /* fill up to the capacity exactly, then one more name: the arena grows by a quarter of what it was */
    uint32_t n = 20000;
    for (; tt.arena_cap - tt.arena_len >= 10; n++) {
        hk_torrent_desc d = simple_desc(n, 5000, 16384);
        d.name = "abcdefghij";
        d.name_len = 10;
        d.storage = n;
        cr_assert_eq(hk_tt_insert(&tt, &d, NULL), HK_TT_OK);
    }
    uint32_t cap = tt.arena_cap;
    hk_torrent_desc d = simple_desc(n, 5000, 16384);
    d.name = "abcdefghij";
    d.name_len = 10;
    d.storage = n;
    cr_assert_eq(hk_tt_insert(&tt, &d, NULL), HK_TT_OK);
    cr_assert_eq(tt.arena_cap, cap + cap / 4);
}

Test(torrent_table, inconsistent_descriptions_are_refused)
{
    hk_torrent_desc d = simple_desc(1, 100000, 32768);
    d.piece_count = 5;
    cr_assert_not_null(hk_tt_desc_check(&d));
    cr_assert_eq(hk_tt_insert(&tt, &d, NULL), HK_TT_INVALID);
    d = simple_desc(1, 100000, 32768);
    d.piece_length = 0;
    cr_assert_not_null(hk_tt_desc_check(&d));
    d = simple_desc(1, 100000, 32768);
    hk_file_desc two[2] = {{50000, false}, {49999, false}};
    d.files = two;
    d.nfiles = 2;
    cr_assert_not_null(hk_tt_desc_check(&d), "lengths do not sum to total");
    hk_file_desc huge[2] = {{UINT64_MAX / 2 + 10, false}, {UINT64_MAX / 2 + 10, false}};
    d.files = huge;
    cr_assert_not_null(hk_tt_desc_check(&d), "overflow");
    cr_assert_eq(m.bytes, 0);
}

Test(torrent_table, block_validation)
{
    hk_torrent_desc d = simple_desc(1, 100000, 32768); /* pieces 32768 x3 + 1696 */
    uint32_t rec;
    hk_tt_insert(&tt, &d, &rec);
    const hk_torrent *t = hk_tt_get(&tt, rec);
    cr_assert_eq(hk_torrent_piece_size(t, 0), 32768);
    cr_assert_eq(hk_torrent_piece_size(t, 3), 1696);
    cr_assert_eq(hk_torrent_piece_size(t, 4), 0);
    cr_assert_eq(hk_torrent_check_block(t, 0, 0, 16384, 16384), HK_BLOCK_OK);
    cr_assert_eq(hk_torrent_check_block(t, 0, 16384, 16384, 16384), HK_BLOCK_OK);
    cr_assert_eq(hk_torrent_check_block(t, 0, 16385, 16384, 16384), HK_BLOCK_BAD_RANGE);
    cr_assert_eq(hk_torrent_check_block(t, 3, 0, 1696, 16384), HK_BLOCK_OK);
    cr_assert_eq(hk_torrent_check_block(t, 3, 0, 1697, 16384), HK_BLOCK_BAD_RANGE, "last piece is short");
    cr_assert_eq(hk_torrent_check_block(t, 3, 1000, 696, 16384), HK_BLOCK_OK);
    cr_assert_eq(hk_torrent_check_block(t, 4, 0, 1, 16384), HK_BLOCK_BAD_INDEX);
    cr_assert_eq(hk_torrent_check_block(t, 0, 0, 0, 16384), HK_BLOCK_BAD_LENGTH);
    cr_assert_eq(hk_torrent_check_block(t, 0, 0, 16385, 16384), HK_BLOCK_BAD_LENGTH);
    cr_assert_eq(hk_torrent_check_block(t, 0, UINT32_MAX, 16384, 16384), HK_BLOCK_BAD_RANGE, "no overflow");
    cr_assert_eq(hk_torrent_check_block(t, 0, UINT32_MAX - 10, 11, 16384), HK_BLOCK_BAD_RANGE);
    cr_assert_str_eq(hk_block_check_name(HK_BLOCK_BAD_INDEX), "piece index out of range");
}

Test(torrent_table, spans_cross_files_skip_empty_and_flag_pads)
{
    /* files: a(10) empty(0) b(5) pad(3) empty(0) c(20) = 38 bytes */
    hk_file_desc f[6] = {{10, false}, {0, false}, {5, false}, {3, true}, {0, false}, {20, false}};
    hk_torrent_desc d;
    memset(&d, 0, sizeof d);
    hash_of(9, d.info_hash);
    d.name = "multi";
    d.name_len = 5;
    d.piece_length = 16;
    d.piece_count = 3;
    d.total_length = 38;
    d.files = f;
    d.nfiles = 6;
    const hk_torrent *t = inserted(&d);
    hk_span_iter it;
    hk_span s;
    cr_assert(hk_span_iter_init(&it, t, 8, 20)); /* bytes 8..27 */
    cr_assert(hk_span_next(&it, &s));
    cr_assert_eq(s.file, 0); cr_assert_eq(s.offset, 8); cr_assert_eq(s.length, 2); cr_assert_not(s.pad);
    cr_assert(hk_span_next(&it, &s));
    cr_assert_eq(s.file, 2); cr_assert_eq(s.offset, 0); cr_assert_eq(s.length, 5);
    cr_assert(hk_span_next(&it, &s));
    cr_assert_eq(s.file, 3); cr_assert_eq(s.offset, 0); cr_assert_eq(s.length, 3); cr_assert(s.pad);
    cr_assert(hk_span_next(&it, &s));
    cr_assert_eq(s.file, 5); cr_assert_eq(s.offset, 0); cr_assert_eq(s.length, 10);
    cr_assert_not(hk_span_next(&it, &s));
    /* starting exactly at a boundary shared with an empty file */
    cr_assert(hk_span_iter_init(&it, t, 10, 1));
    cr_assert(hk_span_next(&it, &s));
    cr_assert_eq(s.file, 2);
    cr_assert_eq(s.offset, 0);
    /* the very last byte */
    cr_assert(hk_span_iter_init(&it, t, 37, 1));
    cr_assert(hk_span_next(&it, &s));
    cr_assert_eq(s.file, 5); cr_assert_eq(s.offset, 19); cr_assert_eq(s.length, 1);
    /* out of range */
    cr_assert_not(hk_span_iter_init(&it, t, 38, 1));
    cr_assert_not(hk_span_iter_init(&it, t, 30, 9));
    cr_assert_not(hk_span_iter_init(&it, t, 0, 0));
}

Test(torrent_table, every_byte_maps_to_exactly_one_span)
{
    hk_file_desc f[7] = {{1, false}, {0, false}, {7, false}, {2, true}, {13, false}, {0, false}, {3, false}};
    hk_torrent_desc d;
    memset(&d, 0, sizeof d);
    hash_of(3, d.info_hash);
    d.piece_length = 4;
    d.total_length = 26;
    d.piece_count = 7;
    d.files = f;
    d.nfiles = 7;
    const hk_torrent *t = inserted(&d);
    for (uint64_t pos = 0; pos < 26; pos++) {
        for (uint32_t len = 1; pos + len <= 26; len++) {
            hk_span_iter it;
            hk_span s;
            cr_assert(hk_span_iter_init(&it, t, pos, len));
            uint64_t at = pos, total = 0;
            while (hk_span_next(&it, &s)) {
                hk_file_entry fe = hk_torrent_file(t, s.file);
                cr_assert_eq(fe.offset + s.offset, at, "contiguous");
                cr_assert_gt(s.length, 0);
                cr_assert_leq(s.offset + s.length, hk_file_length(&fe));
                at += s.length;
                total += s.length;
            }
            cr_assert_eq(total, len);
        }
    }
}
