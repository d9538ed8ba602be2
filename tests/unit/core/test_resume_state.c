/* Tests of core/resume_state: the state file's bytes. A file written by the writer reads back entry for entry;
 * every prefix of it (truncated), another version, a flipped byte anywhere (checksum), a foreign file and a lying
 * entry count are refused whole; descriptions round-trip mi_parse's output field for field and malformed ones
 * (bad names, lengths that do not sum, unprintable URLs) are refused. A hybrid's description (libtorrent's creator)
 * keeps each file's v2 hash offset exactly as mi_parse found it, and one whose v2 part is truncated, points outside
 * the .torrent's size, into or out of `info` where it may not, or names hashes for a pad file is refused. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "fixtures.h"
#include "metainfo.h"
#include "resume_state.h"
#include "torrent_builder.h"

typedef struct membuf {
    uint8_t *p;
    size_t len, cap;
    int fail_after;          /* sink calls before it fails (-1: never) */
} membuf;

static int mem_sink(void *arg, const uint8_t *b, size_t n)
{
    membuf *m = arg;
    if (m->fail_after == 0)
        return -1;
    if (m->fail_after > 0)
        m->fail_after--;
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2;
        m->p = realloc(m->p, m->cap);
        cr_assert(m->p);
    }
    memcpy(m->p + m->len, b, n);
    m->len += n;
    return 0;
}

static mi_torrent *multi_mi(uint8_t **bytes, size_t *len)
{
    const tb_file f[3] = { { "one.bin", 40000, false }, { "pad", 1000, true }, { "b.txt", 3, false } };
    *bytes = tb_torrent("album", 16384, f, 3, len);
    cr_assert(*bytes);
    mi_torrent *mi;
    mi_error e;
    cr_assert_eq(mi_parse(*bytes, *len, &mi, &e), 0, "%s", e.what);
    return mi;
}

/* A state of three entries: no marks, all good, some (a bitmap). */
static membuf write_three(const uint8_t *desc, uint32_t dlen)
{
    membuf m = { .fail_after = -1 };
    hk_rs_writer w;
    cr_assert_eq(hk_rs_writer_begin(&w, mem_sink, &m), 0);
    uint8_t data[2][24];
    hk_rs_data_id d0 = { .ino = 7, .size = 40000, .mtime_ns = 123456789 }, d1 = { .ino = 8, .size = 3, .mtime_ns = -1 };
    hk_rs_data_put(data[0], &d0);
    hk_rs_data_put(data[1], &d1);
    static const uint8_t bits[1] = { 0xa0 };
    for (int i = 0; i < 3; i++) {
        char path[32];
        snprintf(path, sizeof path, "/srv/t/%d.torrent", i);
        hk_rs_entry e = { .path = path, .path_len = (uint32_t)strlen(path), .desc = desc, .desc_len = dlen,
                          .id = { .fp = 0xfedcba9876543210ull + (uint64_t)i, .size = 999 + (uint32_t)i } };
        if (i > 0) {
            e.ndata = 2;
            e.data = &data[0][0];
            e.marks = i == 1 ? HK_RS_MARKS_ALL : HK_RS_MARKS_SOME;
            e.piece_count = i == 2 ? 3 : 0;
            e.bitmap = i == 2 ? bits : NULL;
        }
        cr_assert_eq(hk_rs_write_entry(&w, &e), 0);
    }
    cr_assert_eq(hk_rs_writer_end(&w), 0);
    return m;
}

Test(resume_state, round_trip)
{
    uint8_t *bytes;
    size_t len;
    mi_torrent *mi = multi_mi(&bytes, &len);
    size_t dlen = hk_rs_desc_encode(mi, NULL, 0);
    uint8_t *desc = malloc(dlen);
    cr_assert_eq(hk_rs_desc_encode(mi, desc, dlen), dlen);
    membuf m = write_three(desc, (uint32_t)dlen);

    hk_rs_reader r;
    char err[256];
    cr_assert_eq(hk_rs_open(&r, m.p, m.len, err, sizeof err), 0, "%s", err);
    cr_assert_eq(r.count, 3);
    hk_rs_entry e;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(hk_rs_next(&r, &e), 1);
        char path[32];
        snprintf(path, sizeof path, "/srv/t/%d.torrent", i);
        cr_assert_eq(e.path_len, strlen(path));
        cr_assert(memcmp(e.path, path, e.path_len) == 0);
        cr_assert_eq(e.id.fp, 0xfedcba9876543210ull + (uint64_t)i);
        cr_assert_eq(e.id.size, 999 + (uint32_t)i);
        cr_assert_eq(e.desc_len, dlen);
        cr_assert(memcmp(e.desc, desc, dlen) == 0);
        cr_assert_eq(e.marks, i == 0 ? HK_RS_MARKS_NONE : i == 1 ? HK_RS_MARKS_ALL : HK_RS_MARKS_SOME);
        if (i > 0) {
            cr_assert_eq(e.ndata, 2);
            cr_assert_eq(hk_rs_data_at(&e, 0).size, 40000);
            cr_assert_eq(hk_rs_data_at(&e, 1).mtime_ns, -1);
        }
        if (i == 2) {
            cr_assert_eq(e.piece_count, 3);
            cr_assert_eq(e.bitmap[0], 0xa0);
        }
    }
    cr_assert_eq(hk_rs_next(&r, &e), 0);

    mi_torrent *back = hk_rs_desc_decode(e.desc, e.desc_len, UINT64_MAX, err, sizeof err);
    cr_assert(back, "%s", err);
    cr_assert(memcmp(back->info_hash, mi->info_hash, 20) == 0);
    cr_assert_eq(back->piece_length, mi->piece_length);
    cr_assert_eq(back->piece_count, mi->piece_count);
    cr_assert_eq(back->total_length, mi->total_length);
    cr_assert_eq(back->info_start, mi->info_start);
    cr_assert_eq(back->info_end, mi->info_end);
    cr_assert_eq(back->pieces_offset, mi->pieces_offset);
    cr_assert_eq(back->multi_file, mi->multi_file);
    cr_assert_null(back->v2_hashes, "a v1 torrent has no v2 hashes");
    cr_assert_str_eq(back->name, mi->name);
    cr_assert_eq(back->file_count, mi->file_count);
    for (uint32_t i = 0; i < mi->file_count; i++) {
        cr_assert_eq(back->files[i].offset, mi->files[i].offset);
        cr_assert_eq(back->files[i].length, mi->files[i].length);
        cr_assert_eq(back->files[i].flags, mi->files[i].flags);
        cr_assert_str_eq(mi_file_path(back, i), mi_file_path(mi, i));
    }
    char a[64], b[64];
    mi_file_relpath(back, 0, a, sizeof a);
    mi_file_relpath(mi, 0, b, sizeof b);
    cr_assert_str_eq(a, b);
    mi_free(back);
    mi_free(mi);
    free(desc);
    free(bytes);
    free(m.p);
}

Test(resume_state, trackers_round_trip)
{
    /* a .torrent with an announce-list of two tiers, written by hand */
    const char *t = "d13:announce-listll9:http://a/9:http://b/el8:udp://c/ee4:infod6:lengthi5e4:name1:x"
                    "12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
    mi_torrent *mi;
    mi_error me;
    cr_assert_eq(mi_parse((const uint8_t *)t, strlen(t), &mi, &me), 0, "%s", me.what);
    uint8_t buf[512];
    size_t n = hk_rs_desc_encode(mi, buf, sizeof buf);
    cr_assert_lt(n, sizeof buf);
    char err[128];
    mi_torrent *back = hk_rs_desc_decode(buf, n, UINT64_MAX, err, sizeof err);
    cr_assert(back, "%s", err);
    cr_assert_eq(back->tier_count, 2);
    cr_assert_eq(back->tracker_count, 3);
    cr_assert_eq(back->tiers[1].first, 2);
    cr_assert_str_eq(back->trackers[1], "http://b/");
    cr_assert_str_eq(back->trackers[2], "udp://c/");
    cr_assert_eq(back->multi_file, false);
    cr_assert_str_eq(mi_file_path(back, 0), "");
    mi_free(back);
    mi_free(mi);
}

static void expect_refused(const uint8_t *p, size_t len, const char *what)
{
    hk_rs_reader r;
    char err[256] = "";
    cr_assert_eq(hk_rs_open(&r, p, len, err, sizeof err), -1, "%s accepted", what);
    cr_assert_neq(err[0], 0, "%s: no reason given", what);
    hk_rs_entry e;
    cr_assert_eq(hk_rs_next(&r, &e), 0, "%s: an entry handed out", what);
}

Test(resume_state, truncated_at_every_length)
{
    static const uint8_t desc[8] = "xxxxxxx";
    membuf m = write_three(desc, sizeof desc);
    for (size_t len = 0; len < m.len; len++)
        expect_refused(m.p, len, "a truncated file");
    free(m.p);
}

Test(resume_state, wrong_version_foreign_and_bad_checksum)
{
    static const uint8_t desc[8] = "xxxxxxx";
    membuf m = write_three(desc, sizeof desc);
    uint8_t *c = malloc(m.len);
    memcpy(c, m.p, m.len);
    cr_assert_eq(c[8], HK_RS_VERSION);
    hk_rs_reader r;
    char err[256];
    /* the older versions 1 (no v2 hash offsets) and 2 (five lstat fields per .torrent), with a checksum that
     * matches: refused for the version */
    for (uint8_t v = 1; v <= 2; v++) {
        c[8] = v;
        uint32_t crc = hk_crc32c(0, c, m.len - 4);
        memcpy(c + m.len - 4, &crc, 4); /* little-endian host */
        cr_assert_eq(hk_rs_open(&r, c, m.len, err, sizeof err), -1);
        char want[16];
        snprintf(want, sizeof want, "version %u,", v);
        cr_assert(strstr(err, want) && strstr(err, "reads version 3"), "%s", err);
    }
    memcpy(c, "PK\003\004....", 8); /* a zip file */
    expect_refused(c, m.len, "a foreign file");
    for (size_t i = 0; i < m.len; i++) { /* one flipped bit anywhere */
        memcpy(c, m.p, m.len);
        c[i] ^= 0x10;
        expect_refused(c, m.len, "a corrupt file");
    }
    free(c);
    free(m.p);
}

Test(resume_state, count_must_match_and_checksum_known_value)
{
    cr_assert_eq(hk_crc32c(0, "123456789", 9), 0xE3069283u); /* the CRC32C check value */
    membuf m = { .fail_after = -1 };
    hk_rs_writer w;
    hk_rs_writer_begin(&w, mem_sink, &m);
    w.count = 5; /* lies: no entry follows */
    hk_rs_writer_end(&w);
    expect_refused(m.p, m.len, "a wrong count");
    free(m.p);
    membuf f = { .fail_after = 1 };
    cr_assert_eq(hk_rs_writer_begin(&w, mem_sink, &f), 0);
    hk_rs_entry e = { .path = "/x", .path_len = 2 };
    cr_assert_eq(hk_rs_write_entry(&w, &e), -1, "a failing sink is reported");
    cr_assert_eq(hk_rs_writer_end(&w), -1);
    free(f.p);
}

Test(resume_state, malformed_descriptions)
{
    uint8_t *bytes;
    size_t len;
    mi_torrent *mi = multi_mi(&bytes, &len);
    size_t dlen = hk_rs_desc_encode(mi, NULL, 0);
    uint8_t *d = malloc(dlen);
    hk_rs_desc_encode(mi, d, dlen);
    char err[128];
    for (size_t n = 0; n < dlen; n++) /* every truncation */
        cr_assert_null(hk_rs_desc_decode(d, n, UINT64_MAX, err, sizeof err), "truncated to %zu accepted", n);
    size_t name_at = 20 + 1 + 4 + 4 + 8 + 8 + 8 + 8 + 2;
    uint8_t *c = malloc(dlen);
    memcpy(c, d, dlen);
    c[name_at] = '/'; /* a name with a slash */
    cr_assert_null(hk_rs_desc_decode(c, dlen, UINT64_MAX, err, sizeof err));
    memcpy(c, d, dlen);
    memcpy(c + name_at, "..", 2);
    c[name_at - 2] = 2; /* name ".." */
    cr_assert_null(hk_rs_desc_decode(c, dlen, UINT64_MAX, err, sizeof err));
    memcpy(c, d, dlen);
    c[25] ^= 1; /* piece count off by one */
    cr_assert_null(hk_rs_desc_decode(c, dlen, UINT64_MAX, err, sizeof err));
    memcpy(c, d, dlen);
    size_t first_len = name_at + mi->name_len + 4;
    c[first_len] ^= 1; /* file lengths no longer sum to the total */
    cr_assert_null(hk_rs_desc_decode(c, dlen, UINT64_MAX, err, sizeof err));
    free(c);
    free(d);
    mi_free(mi);
    free(bytes);
}

/* ---- hybrid (BEP 52) descriptions ---- */

/* A hybrid made by libtorrent's creator (d/big: 4 pieces and a piece layer, d/small and d/tiny: a pieces root each,
 * pad files between them), parsed; its bytes in *bytes. */
static mi_torrent *hybrid_mi(uint8_t **bytes, size_t *len)
{
    char *dir = fx_mkdtemp("rs-hybrid");
    cr_assert_not_null(dir);
    cr_assert_eq(fx_make_lt_hybrid(dir, 32768), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/h.torrent", dir);
    *bytes = fx_read(path, len);
    fx_rmtree(dir);
    free(dir);
    cr_assert_not_null(*bytes);
    mi_torrent *mi;
    mi_error e;
    cr_assert_eq(mi_parse(*bytes, *len, &mi, &e), 0, "%s", e.what);
    cr_assert(mi->hybrid);
    cr_assert_not_null(mi->v2_hashes);
    return mi;
}

/* Where file i's v2 hash offset (u64) is in mi's description. */
static size_t v2_at(const mi_torrent *mi, uint32_t i)
{
    size_t at = 20 + 1 + 4 + 4 + 8 + 8 + 8 + 8 + 2 + mi->name_len + 4;
    for (uint32_t k = 0; k < i; k++)
        at += 8 + 1 + 2 + mi->files[k].path_len + 8;
    return at + 8 + 1 + 2 + mi->files[i].path_len;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The index of a file of mi that is a pad file / holds at most one piece / holds more (UINT32_MAX: none). */
static uint32_t file_where(const mi_torrent *mi, int kind)
{
    for (uint32_t i = 0; i < mi->file_count; i++) {
        const mi_file *f = &mi->files[i];
        int k = (f->flags & MI_FILE_PAD) ? 0 : f->length <= mi->piece_length ? 1 : 2;
        if (f->length > 0 && k == kind)
            return i;
    }
    return UINT32_MAX;
}

Test(resume_state, hybrid_round_trip)
{
    uint8_t *bytes;
    size_t len;
    mi_torrent *mi = hybrid_mi(&bytes, &len);
    size_t dlen = hk_rs_desc_encode(mi, NULL, 0);
    uint8_t *d = malloc(dlen), *again = malloc(dlen);
    cr_assert_eq(hk_rs_desc_encode(mi, d, dlen), dlen);
    membuf m = write_three(d, (uint32_t)dlen); /* through a whole state file */
    hk_rs_reader r;
    char err[256];
    cr_assert_eq(hk_rs_open(&r, m.p, m.len, err, sizeof err), 0, "%s", err);
    hk_rs_entry e;
    cr_assert_eq(hk_rs_next(&r, &e), 1);
    mi_torrent *back = hk_rs_desc_decode(e.desc, e.desc_len, len, err, sizeof err);
    cr_assert(back, "%s", err);
    cr_assert(back->hybrid);
    cr_assert_not_null(back->v2_hashes, "the v2 hash offsets came back");
    cr_assert_eq(back->file_count, mi->file_count);
    int roots = 0, layers = 0;
    for (uint32_t i = 0; i < mi->file_count; i++) {
        cr_assert_eq(back->v2_hashes[i], mi->v2_hashes[i], "file %u", i);
        if (mi->v2_hashes[i])
            *(mi->files[i].length > mi->piece_length ? &layers : &roots) += 1;
    }
    cr_assert_eq(layers, 1, "big has a piece layer");
    cr_assert_eq(roots, 2, "small and tiny have a pieces root");
    cr_assert_eq(hk_rs_desc_encode(back, again, dlen), dlen);
    cr_assert(memcmp(again, d, dlen) == 0, "decode then encode is the identity");
    mi_free(back);
    /* the .torrent's size bounds the piece layer: big's is the last string of the file but for "ee" */
    uint32_t big = file_where(mi, 2);
    uint64_t end = mi->v2_hashes[big] + 32u * ((mi->files[big].length + mi->piece_length - 1) / mi->piece_length);
    back = hk_rs_desc_decode(d, dlen, end, err, sizeof err);
    cr_assert(back, "a .torrent that ends right after the layer: %s", err);
    mi_free(back);
    cr_assert_null(hk_rs_desc_decode(d, dlen, end - 1, err, sizeof err), "a layer past the .torrent's end");
    cr_assert(strstr(err, "v2"), "%s", err);
    cr_assert_null(hk_rs_desc_decode(d, dlen, mi->info_end - 1, err, sizeof err), "info past the .torrent's end");
    free(m.p);
    free(again);
    free(d);
    mi_free(mi);
    free(bytes);
}

/* d with the u64 at `at` replaced by v must be refused (err names the v2 part when v2 is true). */
static void refused_with(const uint8_t *d, size_t dlen, size_t len, size_t at, uint64_t v, const char *what)
{
    uint8_t *c = malloc(dlen);
    memcpy(c, d, dlen);
    put_u64(c + at, v);
    char err[128] = "";
    mi_torrent *m = hk_rs_desc_decode(c, dlen, len, err, sizeof err);
    cr_assert_null(m, "%s accepted", what);
    cr_assert(strstr(err, "v2"), "%s: %s", what, err);
    free(c);
}

Test(resume_state, malformed_hybrid_descriptions)
{
    uint8_t *bytes;
    size_t len;
    mi_torrent *mi = hybrid_mi(&bytes, &len);
    size_t dlen = hk_rs_desc_encode(mi, NULL, 0);
    uint8_t *d = malloc(dlen);
    hk_rs_desc_encode(mi, d, dlen);
    char err[128];
    for (size_t n = 0; n < dlen; n++) /* every truncation, the v2 part's included */
        cr_assert_null(hk_rs_desc_decode(d, n, len, err, sizeof err), "truncated to %zu accepted", n);
    uint32_t pad = file_where(mi, 0), small = file_where(mi, 1), big = file_where(mi, 2);
    cr_assert(pad != UINT32_MAX && small != UINT32_MAX && big != UINT32_MAX);
    refused_with(d, dlen, len, v2_at(mi, big), len - 10, "a piece layer reaching past the .torrent");
    refused_with(d, dlen, len, v2_at(mi, big), UINT64_MAX - 8, "a piece layer at an offset that wraps");
    refused_with(d, dlen, len, v2_at(mi, big), mi->info_start + 4, "a piece layer inside info");
    refused_with(d, dlen, len, v2_at(mi, small), mi->info_end, "a pieces root outside info");
    refused_with(d, dlen, len, v2_at(mi, small), mi->info_end - 31, "a pieces root cut by info's end");
    refused_with(d, dlen, len, v2_at(mi, small), 0, "a short file without its pieces root");
    refused_with(d, dlen, len, v2_at(mi, pad), mi->v2_hashes[small], "v2 hashes for a pad file");
    /* a long file without a layer is fine (checked through v1 only), as mi_parse leaves a missing layer */
    uint8_t *c = malloc(dlen);
    memcpy(c, d, dlen);
    put_u64(c + v2_at(mi, big), 0);
    mi_torrent *back = hk_rs_desc_decode(c, dlen, len, err, sizeof err);
    cr_assert(back, "%s", err);
    cr_assert_eq(back->v2_hashes[big], 0u);
    mi_free(back);
    /* every offset 0 (a v2 part that says nothing) is refused */
    for (uint32_t i = 0; i < mi->file_count; i++)
        put_u64(c + v2_at(mi, i), 0);
    cr_assert_null(hk_rs_desc_decode(c, dlen, len, err, sizeof err));
    /* the v2 flag on a torrent that is not a hybrid, or with unknown flags */
    memcpy(c, d, dlen);
    c[20] &= (uint8_t)~4;
    cr_assert_null(hk_rs_desc_decode(c, dlen, len, err, sizeof err), "v2 hashes on a v1 torrent");
    memcpy(c, d, dlen);
    c[20] |= 32;
    cr_assert_null(hk_rs_desc_decode(c, dlen, len, err, sizeof err), "an unknown flag");
    /* the same description without its v2 flag (and without the offsets) is a plain hybrid: checked through v1 */
    mi_torrent plain = *mi;
    plain.v2_hashes = NULL;
    size_t plen = hk_rs_desc_encode(&plain, NULL, 0);
    cr_assert_eq(plen, dlen - 8u * mi->file_count, "8 bytes a file");
    free(c);
    free(d);
    mi_free(mi);
    free(bytes);
}
