/* Tests of the v2 (BEP 52) side of piece verification: the SHA-256 block tree (backend-real/lib/disk/merkle.h)
 * against Python's hashlib; and, on a hybrid torrent made at test time by libtorrent's creator (/usr/bin/python3), the
 * v2 hash locations core/metainfo finds and backend-real's verifier: every piece GOOD as made, a flipped data byte
 * BAD, and a piece whose piece-layer entry in the .torrent was altered (v1 hashes untouched and still matching) BAD. */
#include <criterion/criterion.h>

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "merkle.h"
#include "metainfo.h"
#include "pool.h"
#include "store.h"
#include "verify.h"

#define PL 32768u

static char *g_dir;
static void setup(void) { g_dir = fx_mkdtemp("verify-v2"); cr_assert_not_null(g_dir); }
static void teardown(void) { fx_rmtree(g_dir); free(g_dir); }
TestSuite(verify_v2, .init = setup, .fini = teardown, .timeout = 60);

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* The root of len bytes of the pattern in a tree of width leaves, by Python's hashlib. */
static char *py_root(size_t len, unsigned width)
{
    int st;
    char *out = fx_sh_output(&st, "/usr/bin/python3 -c '\n"
                                  "import hashlib\n"
                                  "d = bytes((i * 7 + 3) %% 251 for i in range(%zu))\n"
                                  "h = [hashlib.sha256(d[i:i + 16384]).digest() for i in range(0, len(d), 16384)]\n"
                                  "h += [bytes(32)] * (%u - len(h))\n"
                                  "while len(h) > 1: h = [hashlib.sha256(h[i] + h[i + 1]).digest() for i in range(0, len(h), 2)]\n"
                                  "print(h[0].hex())'",
                               len, width);
    cr_assert_eq(st, 0);
    return out;
}

Test(verify_v2, merkle_roots_match_hashlib)
{
    static const struct { size_t len; unsigned width; size_t chunk; } cases[] = {
        {5000, 1, 5000}, {16384, 1, 100}, {16385, 2, 7000}, {40000, 4, 16384}, {100000, 8, 1}, {65536, 4, 65536},
    };
    uint8_t *d = malloc(100000);
    for (size_t i = 0; i < 100000; i++)
        d[i] = (uint8_t)((i * 7 + 3) % 251);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        hk_merkle m;
        cr_assert_eq(hk_merkle_init(&m, cases[c].width), 0);
        size_t step = cases[c].len / 37 + cases[c].chunk % 997 + 1; /* odd chunking, across block boundaries */
        for (size_t at = 0; at < cases[c].len; at += step)
            hk_merkle_update(&m, d + at, cases[c].len - at < step ? cases[c].len - at : step);
        uint8_t root[32];
        char got[65];
        cr_assert_eq(hk_merkle_final(&m, root), 0);
        hex(root, 32, got);
        char *want = py_root(cases[c].len, cases[c].width);
        cr_assert_eq(strncmp(got, want, 64), 0, "len %zu width %u: %s vs %s", cases[c].len, cases[c].width, got, want);
        free(want);
    }
    hk_merkle m;
    cr_assert_eq(hk_merkle_init(&m, 3), -1, "a width that is not a power of two");
    cr_assert_eq(hk_merkle_init(&m, 1), 0);
    hk_merkle_update(&m, d, 16385);
    uint8_t root[32];
    cr_assert_eq(hk_merkle_final(&m, root), -1, "more data than the tree holds");
    free(d);
}

typedef struct done_log {
    uint64_t token[32];
    hk_verify_result result[32];
    int n;
} done_log;

static void on_done(void *arg, uint64_t token, hk_verify_result result, int error)
{
    (void)error;
    done_log *d = arg;
    cr_assert_lt(d->n, 32);
    d->token[d->n] = token;
    d->result[d->n++] = result;
}

/* Files of d/: big (3 pieces and a bit: a piece layer of 4 entries), small (2 blocks, pieces root), tiny (one
 * partial block); libtorrent pads each to the piece size. Returns the .torrent's path (static). */
static const char *make_hybrid(void)
{
    static char path[512];
    cr_assert_eq(fx_make_lt_hybrid(g_dir, PL), 0);
    snprintf(path, sizeof path, "%s/h.torrent", g_dir);
    return path;
}

/* The request for piece p as core/seeder_verify.c builds it: the extents, the SHA-1, and the v2 part. */
static hk_verify_req piece_req(uint64_t h, const mi_torrent *mi, uint32_t p, bool v2, hk_extent *ext)
{
    uint64_t pos = (uint64_t)p * PL, end = pos + mi_piece_size(mi, p);
    uint32_t n = 0;
    for (uint32_t i = 0; i < mi->file_count; i++) {
        const mi_file *f = &mi->files[i];
        uint64_t a = f->offset > pos ? f->offset : pos, b = f->offset + f->length < end ? f->offset + f->length : end;
        if (a < b)
            ext[n++] = (hk_extent){.storage = h, .file = i, .offset = a - f->offset, .length = (uint32_t)(b - a)};
    }
    hk_verify_req r = {.piece = p, .nexts = n, .exts = ext,
                       .hash = {.storage = h, .file = HK_FILE_METAINFO, .offset = mi->pieces_offset + 20u * p, .length = 20}};
    const mi_file *f = &mi->files[ext[0].file];
    uint64_t v2off = mi->v2_hashes ? mi->v2_hashes[ext[0].file] : 0;
    if (!v2 || v2off == 0)
        return r;
    r.v2_hash = (hk_extent){.storage = h, .file = HK_FILE_METAINFO, .length = 32};
    if (f->length > PL) {
        r.v2_hash.offset = v2off + 32u * (ext[0].offset / PL);
        r.v2_length = ext[0].length;
        r.v2_leaves = PL / 16384u;
    } else {
        r.v2_hash.offset = v2off;
        r.v2_length = f->length;
        for (r.v2_leaves = 1; (uint64_t)r.v2_leaves * 16384u < f->length; r.v2_leaves *= 2)
            ;
    }
    return r;
}

typedef struct rig {
    struct ev_loop *loop;
    hk_store *st;
    hk_pool *pool;
    hk_verifier *v;
    done_log d;
    mi_torrent *mi;
    uint64_t h;
} rig;

static void rig_open(rig *g, const char *torrent)
{
    memset(g, 0, sizeof *g);
    size_t len;
    uint8_t *tb = fx_read(torrent, &len);
    cr_assert_not_null(tb);
    mi_error err;
    cr_assert_eq(mi_parse(tb, len, &g->mi, &err), 0, "%s", err.what);
    free(tb);
    g->loop = ev_loop_new(EVFLAG_AUTO);
    g->st = hk_store_new(NULL);
    g->pool = hk_pool_new(g->loop, 2, 1.0);
    g->v = hk_verifier_new(g->st, g->pool, on_done, &g->d);
    char e[512] = "";
    g->h = hk_store_add(g->st, torrent, g->mi, e, sizeof e);
    cr_assert_neq(g->h, 0u, "%s", e);
}

static void rig_close(rig *g)
{
    hk_pool_free(g->pool);
    hk_verifier_free(g->v);
    hk_store_free(g->st);
    ev_loop_destroy(g->loop);
    mi_free(g->mi);
}

/* Verifies every piece (with or without its v2 part); result[p] of piece p. */
static void check_all(rig *g, bool v2, hk_verify_result *result)
{
    hk_extent ext[16];
    g->d.n = 0;
    for (uint32_t p = 0; p < g->mi->piece_count; p++) {
        hk_verify_req r = piece_req(g->h, g->mi, p, v2, ext);
        cr_assert(!v2 || r.v2_length > 0, "piece %u has v2 hashes", p);
        cr_assert_eq(hk_verifier_submit(g->v, &r, p), 0);
    }
    ev_run(g->loop, 0);
    cr_assert_eq(g->d.n, (int)g->mi->piece_count);
    for (int k = 0; k < g->d.n; k++)
        result[g->d.token[k]] = g->d.result[k];
}

Test(verify_v2, libtorrent_hybrid_flipped_byte_is_bad)
{
    const char *torrent = make_hybrid();
    rig g;
    rig_open(&g, torrent);
    const mi_torrent *mi = g.mi;
    cr_assert(mi->hybrid);
    cr_assert_not_null(mi->v2_hashes, "the v2 hashes were located");
    cr_assert_eq(mi->piece_count, 6u, "big: 4 pieces, small: 1, tiny: 1");
    hk_verify_result res[8];
    check_all(&g, true, res);
    for (uint32_t p = 0; p < 6; p++)
        cr_assert_eq(res[p], HK_VERIFY_GOOD, "piece %u as libtorrent made it", p);
    /* one byte of big's third piece and one of tiny flipped: those two pieces only */
    char path[600];
    snprintf(path, sizeof path, "%s/d/big", g_dir);
    cr_assert_eq(fx_sh("printf '\\377' | dd of='%s' bs=1 seek=%u conv=notrunc status=none", path, 2 * PL + 5), 0);
    snprintf(path, sizeof path, "%s/d/tiny", g_dir);
    cr_assert_eq(fx_sh("printf '\\377' | dd of='%s' bs=1 seek=4999 conv=notrunc status=none", path), 0);
    check_all(&g, true, res);
    for (uint32_t p = 0; p < 6; p++)
        cr_assert_eq(res[p], p == 2 || p == 5 ? HK_VERIFY_BAD : HK_VERIFY_GOOD, "piece %u: %d", p, res[p]);
    rig_close(&g);
}

Test(verify_v2, a_piece_layer_that_disagrees_with_the_data_is_bad)
{
    const char *torrent = make_hybrid();
    size_t len;
    uint8_t *tb = fx_read(torrent, &len);
    mi_torrent *mi;
    mi_error err;
    cr_assert_eq(mi_parse(tb, len, &mi, &err), 0, "%s", err.what);
    /* big is file 0; its piece layer's entry 1 (outside the info dict: the v1 hashes and the info-hash stay) */
    uint64_t at = mi->v2_hashes[0] + 32u + 7u;
    cr_assert(at > mi->info_end || at < mi->info_start, "piece layers are outside info");
    tb[at] ^= 0x01;
    cr_assert_eq(fx_write(torrent, tb, len), 0);
    mi_free(mi);
    free(tb);
    rig g;
    rig_open(&g, torrent);
    hk_verify_result res[8];
    check_all(&g, false, res);
    for (uint32_t p = 0; p < 6; p++)
        cr_assert_eq(res[p], HK_VERIFY_GOOD, "v1 alone: piece %u matches", p);
    check_all(&g, true, res);
    for (uint32_t p = 0; p < 6; p++)
        cr_assert_eq(res[p], p == 1 ? HK_VERIFY_BAD : HK_VERIFY_GOOD, "v1 and v2: piece %u: %d", p, res[p]);
    rig_close(&g);
}
