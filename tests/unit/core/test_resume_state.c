/* Tests of core/resume_state: the state file's bytes. A file written by the writer reads back entry for entry;
 * every prefix of it (truncated), another version, a flipped byte anywhere (checksum), a foreign file and a lying
 * entry count are refused whole; descriptions round-trip mi_parse's output field for field and malformed ones
 * (bad names, lengths that do not sum, unprintable URLs) are refused. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
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
                          .id = { .dev = 1, .ino = 100 + (uint64_t)i, .size = 999, .mtime_ns = 5, .ctime_ns = 6 } };
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
        cr_assert_eq(e.id.ino, 100 + (uint64_t)i);
        cr_assert_eq(e.id.ctime_ns, 6);
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

    mi_torrent *back = hk_rs_desc_decode(e.desc, e.desc_len, err, sizeof err);
    cr_assert(back, "%s", err);
    cr_assert(memcmp(back->info_hash, mi->info_hash, 20) == 0);
    cr_assert_eq(back->piece_length, mi->piece_length);
    cr_assert_eq(back->piece_count, mi->piece_count);
    cr_assert_eq(back->total_length, mi->total_length);
    cr_assert_eq(back->info_start, mi->info_start);
    cr_assert_eq(back->info_end, mi->info_end);
    cr_assert_eq(back->pieces_offset, mi->pieces_offset);
    cr_assert_eq(back->multi_file, mi->multi_file);
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
    mi_torrent *back = hk_rs_desc_decode(buf, n, err, sizeof err);
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
    c[8] = 2; /* version 2, with a checksum that matches it: refused for the version */
    uint32_t crc = hk_crc32c(0, c, m.len - 4);
    memcpy(c + m.len - 4, &crc, 4); /* little-endian host */
    hk_rs_reader r;
    char err[256];
    cr_assert_eq(hk_rs_open(&r, c, m.len, err, sizeof err), -1);
    cr_assert(strstr(err, "version"), "%s", err);
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
        cr_assert_null(hk_rs_desc_decode(d, n, err, sizeof err), "truncated to %zu accepted", n);
    size_t name_at = 20 + 1 + 4 + 4 + 8 + 8 + 8 + 8 + 2;
    uint8_t *c = malloc(dlen);
    memcpy(c, d, dlen);
    c[name_at] = '/'; /* a name with a slash */
    cr_assert_null(hk_rs_desc_decode(c, dlen, err, sizeof err));
    memcpy(c, d, dlen);
    memcpy(c + name_at, "..", 2);
    c[name_at - 2] = 2; /* name ".." */
    cr_assert_null(hk_rs_desc_decode(c, dlen, err, sizeof err));
    memcpy(c, d, dlen);
    c[25] ^= 1; /* piece count off by one */
    cr_assert_null(hk_rs_desc_decode(c, dlen, err, sizeof err));
    memcpy(c, d, dlen);
    size_t first_len = name_at + mi->name_len + 4;
    c[first_len] ^= 1; /* file lengths no longer sum to the total */
    cr_assert_null(hk_rs_desc_decode(c, dlen, err, sizeof err));
    free(c);
    free(d);
    mi_free(mi);
    free(bytes);
}
