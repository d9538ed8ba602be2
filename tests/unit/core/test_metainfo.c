/* Unit tests for core/metainfo: hand-built torrents for every validation rule, and torrents made by real tools
 * (mktorrent, transmission-create, libtorrent) checked against what libtorrent and transmission-show compute. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "infohash.h"
#include "metainfo.h"

/* ---- a compact notation for hand-built torrents ----
 * 'text'  a bencoded string of the bytes between quotes ('^' stands for a NUL byte)
 * @N      a bencoded string of N 20-byte piece hashes
 * #N      a bencoded string of N 'a' bytes
 * other characters are copied as they are (d l e i42e ...). */
typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *s, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        cr_assert_not_null(b->p);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put_len(bytes *b, size_t n)
{
    char head[32];
    int h = snprintf(head, sizeof head, "%zu:", n);
    put(b, head, (size_t)h);
}

static bytes build(const char *spec)
{
    bytes b = {0};
    for (const char *s = spec; *s;) {
        if (*s == '\'') {
            const char *end = strchr(s + 1, '\'');
            cr_assert_not_null(end, "unterminated string in spec %s", spec);
            put_len(&b, (size_t)(end - s - 1));
            for (const char *c = s + 1; c < end; c++)
                put(&b, *c == '^' ? "" : c, 1);
            s = end + 1;
        } else if (*s == '@' || *s == '#') {
            char kind = *s;
            char *end;
            size_t n = strtoul(s + 1, &end, 10);
            size_t len = kind == '@' ? n * 20 : n;
            put_len(&b, len);
            for (size_t i = 0; i < len; i++)
                put(&b, kind == '@' ? (const char[]){(char)(i * 7)} : "a", 1);
            s = end;
        } else {
            put(&b, s++, 1);
        }
    }
    return b;
}

/* A valid single-file torrent (100 bytes in two 64-byte pieces) with `extra` keys added to its info dictionary. */
#define SINGLE(extra) "d'info'd'length'i100e'name''f.bin''piece length'i64e'pieces'@2" extra "ee"

static mi_torrent *parse_ok(const char *spec)
{
    bytes b = build(spec);
    mi_torrent *t = NULL;
    mi_error err = {{0}};
    int rc = mi_parse(b.p, b.n, &t, &err);
    cr_assert_eq(rc, 0, "expected %s to parse, got: %s", spec, err.what);
    cr_assert_not_null(t);
    free(b.p);
    return t;
}

static void parse_bad(const char *spec, const char *expect)
{
    bytes b = build(spec);
    mi_torrent *t = (mi_torrent *)&b; /* must be reset to NULL */
    mi_error err = {{0}};
    int rc = mi_parse(b.p, b.n, &t, &err);
    cr_assert_eq(rc, -1, "expected %s to fail with \"%s\"", spec, expect);
    cr_assert_null(t);
    cr_assert(strstr(err.what, expect) != NULL, "spec %s: expected \"%s\" in \"%s\"", spec, expect, err.what);
    free(b.p);
}

static void sha1(const void *p, size_t n, uint8_t out[20])
{
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    cr_assert(ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) && EVP_DigestUpdate(ctx, p, n) &&
              EVP_DigestFinal_ex(ctx, out, &len) && len == 20);
    EVP_MD_CTX_free(ctx);
}

/* ---- infohash helpers ---- */

Test(infohash, sha1_known_vectors)
{
    uint8_t h[20];
    char hex[41];
    cr_assert(ih_sha1("abc", 3, h));
    ih_hex(h, hex);
    cr_assert_str_eq(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    cr_assert(ih_sha1(NULL, 0, h));
    ih_hex(h, hex);
    cr_assert_str_eq(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

Test(infohash, hex_round_trip_and_rejects)
{
    uint8_t h[20], back[20];
    for (int i = 0; i < 20; i++)
        h[i] = (uint8_t)(i * 13 + 250);
    char hex[41];
    ih_hex(h, hex);
    cr_assert(ih_from_hex(hex, 40, back));
    cr_assert_arr_eq(h, back, 20);
    cr_assert(ih_from_hex("A9993E364706816ABA3E25717850C26C9CD0D89D", 40, back));
    cr_assert_eq(back[0], 0xa9);
    cr_assert_not(ih_from_hex(hex, 39, back));
    cr_assert_not(ih_from_hex("g9993e364706816aba3e25717850c26c9cd0d89d", 40, back));
    cr_assert_not(ih_from_hex(NULL, 40, back));
}

/* ---- valid torrents ---- */

Test(metainfo, single_file)
{
    const char *spec = "d'announce''http://t/a''info'd'length'i100e'name''f.bin''piece length'i64e'pieces'@2ee";
    bytes b = build(spec);
    mi_torrent *t;
    mi_error err;
    cr_assert_eq(mi_parse(b.p, b.n, &t, &err), 0, "%s", err.what);
    cr_assert_str_eq(t->name, "f.bin");
    cr_assert_eq(t->name_len, 5);
    cr_assert_not(t->multi_file);
    cr_assert_not(t->is_private);
    cr_assert_not(t->hybrid);
    cr_assert_eq(t->piece_length, 64);
    cr_assert_eq(t->piece_count, 2);
    cr_assert_eq(t->total_length, 100);
    cr_assert_eq(mi_piece_size(t, 0), 64);
    cr_assert_eq(mi_piece_size(t, 1), 36);
    cr_assert_eq(mi_piece_size(t, 2), 0);
    cr_assert_eq(t->file_count, 1);
    cr_assert_eq(t->files[0].offset, 0);
    cr_assert_eq(t->files[0].length, 100);
    cr_assert_eq(t->files[0].flags, 0);
    cr_assert_str_eq(mi_file_path(t, 0), "");
    char rel[64];
    cr_assert_eq(mi_file_relpath(t, 0, rel, sizeof rel), 5);
    cr_assert_str_eq(rel, "f.bin");
    /* the info dictionary is everything after "d8:announce10:http://t/a4:info" up to the final 'e' */
    size_t head = strlen("d8:announce10:http://t/a4:info");
    cr_assert_eq(t->info_start, head);
    cr_assert_eq(t->info_end, b.n - 1);
    uint8_t h[20];
    sha1(b.p + head, b.n - 1 - head, h);
    cr_assert_arr_eq(t->info_hash, h, 20);
    /* pieces_offset points at the hash bytes themselves */
    cr_assert_eq(t->pieces_offset + 40, b.n - 2);
    cr_assert_eq(memcmp(b.p + t->pieces_offset - 3, "40:", 3), 0);
    cr_assert_eq(t->tier_count, 1);
    cr_assert_eq(t->tracker_count, 1);
    cr_assert_str_eq(t->trackers[0], "http://t/a");
    cr_assert_eq(mi_find_file(t, 0), 0);
    cr_assert_eq(mi_find_file(t, 99), 0);
    cr_assert_eq(mi_find_file(t, 100), -1);
    mi_free(t);
    free(b.p);
}

Test(metainfo, multi_file_offsets_zero_length_and_lookup)
{
    mi_torrent *t = parse_ok("d'info'd'files'l"
                             "d'length'i10e'path'l'a.txt'ee"
                             "d'length'i0e'path'l'sub''empty'ee"
                             "d'length'i0e'path'l'sub''empty2'ee"
                             "d'length'i25e'path'l'sub''deep''b.bin'ee"
                             "d'length'i0e'path'l'z'ee"
                             "e'name''top''piece length'i16e'pieces'@3ee");
    cr_assert(t->multi_file);
    cr_assert_eq(t->file_count, 5);
    cr_assert_eq(t->total_length, 35);
    cr_assert_eq(t->piece_count, 3);
    cr_assert_eq(mi_piece_size(t, 2), 3);
    const uint64_t off[] = {0, 10, 10, 10, 35}, len[] = {10, 0, 0, 25, 0};
    const char *path[] = {"a.txt", "sub/empty", "sub/empty2", "sub/deep/b.bin", "z"};
    for (uint32_t i = 0; i < 5; i++) {
        cr_assert_eq(t->files[i].offset, off[i], "file %u", i);
        cr_assert_eq(t->files[i].length, len[i], "file %u", i);
        cr_assert_str_eq(mi_file_path(t, i), path[i]);
        cr_assert_eq(t->files[i].path_len, strlen(path[i]));
    }
    char rel[64];
    cr_assert_eq(mi_file_relpath(t, 3, rel, sizeof rel), strlen("top/sub/deep/b.bin"));
    cr_assert_str_eq(rel, "top/sub/deep/b.bin");
    /* truncation behaves like snprintf */
    cr_assert_eq(mi_file_relpath(t, 3, rel, 5), strlen("top/sub/deep/b.bin"));
    cr_assert_str_eq(rel, "top/");
    cr_assert_eq(mi_find_file(t, 0), 0);
    cr_assert_eq(mi_find_file(t, 9), 0);
    cr_assert_eq(mi_find_file(t, 10), 3); /* skips the empty files at offset 10 */
    cr_assert_eq(mi_find_file(t, 34), 3);
    cr_assert_eq(mi_find_file(t, 35), -1);
    cr_assert_eq(t->tier_count, 0);
    cr_assert_eq(t->tracker_count, 0);
    mi_free(t);
}

Test(metainfo, find_file_agrees_with_linear_scan)
{
    /* 40 files of lengths 0..3 in a repeating pattern; every byte maps to the file that holds it */
    char spec[8192] = "d'info'd'files'l";
    uint64_t total = 0;
    for (int i = 0; i < 40; i++) {
        char e[64];
        snprintf(e, sizeof e, "d'length'i%de'path'l'f%02d'ee", i % 4, i);
        strcat(spec, e);
        total += (uint64_t)(i % 4);
    }
    char tail[128];
    snprintf(tail, sizeof tail, "e'name''n''piece length'i7e'pieces'@%lluee", (unsigned long long)((total + 6) / 7));
    strcat(spec, tail);
    mi_torrent *t = parse_ok(spec);
    cr_assert_eq(t->total_length, total);
    for (uint64_t o = 0; o < total; o++) {
        int64_t want = -1;
        for (uint32_t i = 0; i < t->file_count; i++)
            if (o >= t->files[i].offset && o < t->files[i].offset + t->files[i].length)
                want = i;
        cr_assert_eq(mi_find_file(t, o), want, "offset %llu", (unsigned long long)o);
    }
    mi_free(t);
}

Test(metainfo, trackers_announce_list_takes_precedence)
{
    mi_torrent *t = parse_ok("d'announce''http://single/a''announce-list'l"
                             "l'http://a/1''udp://a/2'e"
                             "le"                       /* empty tier: skipped */
                             "l'http://b/1''''http://a/1'e" /* empty URL skipped, repeated URL dropped */
                             "l'http://a/2'e"           /* becomes empty after de-duplication? no: a/2 != udp a/2 */
                             "l'udp://a/2'e"            /* only a repeat: the tier disappears */
                             "e'info'd'length'i1e'name''x''piece length'i1e'pieces'@1ee");
    cr_assert_eq(t->tier_count, 3);
    cr_assert_eq(t->tracker_count, 4);
    cr_assert_eq(t->tiers[0].first, 0);
    cr_assert_eq(t->tiers[0].count, 2);
    cr_assert_str_eq(t->trackers[0], "http://a/1");
    cr_assert_str_eq(t->trackers[1], "udp://a/2");
    cr_assert_eq(t->tiers[1].first, 2);
    cr_assert_eq(t->tiers[1].count, 1);
    cr_assert_str_eq(t->trackers[2], "http://b/1");
    cr_assert_eq(t->tiers[2].first, 3);
    cr_assert_eq(t->tiers[2].count, 1);
    cr_assert_str_eq(t->trackers[3], "http://a/2");
    mi_free(t);
}

Test(metainfo, trackers_fall_back_to_announce)
{
    mi_torrent *t = parse_ok("d'announce''http://single/a''announce-list'llelee"
                             "'info'd'length'i1e'name''x''piece length'i1e'pieces'@1ee");
    cr_assert_eq(t->tier_count, 1);
    cr_assert_eq(t->tracker_count, 1);
    cr_assert_str_eq(t->trackers[0], "http://single/a");
    mi_free(t);
    t = parse_ok("d'announce''''info'd'length'i1e'name''x''piece length'i1e'pieces'@1ee");
    cr_assert_eq(t->tier_count, 0);
    cr_assert_eq(t->tracker_count, 0);
    mi_free(t);
}

Test(metainfo, private_flag)
{
    mi_torrent *t = parse_ok(SINGLE("'private'i1e"));
    cr_assert(t->is_private);
    mi_free(t);
    t = parse_ok(SINGLE("'private'i0e"));
    cr_assert_not(t->is_private);
    mi_free(t);
}

Test(metainfo, hybrid_loads_through_v1)
{
    mi_torrent *t = parse_ok(SINGLE("'meta version'i2e'file tree'd'f.bin'd''d'length'i100eeee"));
    cr_assert(t->hybrid);
    cr_assert_eq(t->total_length, 100);
    mi_free(t);
    t = parse_ok(SINGLE("'meta version'i1e"));
    cr_assert_not(t->hybrid);
    mi_free(t);
}

Test(metainfo, pad_and_attribute_flags)
{
    mi_torrent *t = parse_ok("d'info'd'files'l"
                             "d'attr''x''length'i3e'path'l'run.sh'ee"
                             "d'attr''p''length'i13e'path'l'.pad''13'ee"
                             "d'length'i16e'path'l'.pad''16'ee"           /* .pad by path (no attr) */
                             "d'attr''hx''length'i16e'path'l'.hidden'ee"
                             "d'length'i16e'path'l'dir''_____padding_file_0_'ee" /* BitComet */
                             "d'attr''p''length'i16e'path'l'.pad''13'ee"  /* same path as another pad: fine */
                             "d'attr''lq''length'i0e'path'l'link'e'symlink path'l'run.sh'ee"
                             "e'name''n''piece length'i16e'pieces'@5ee");
    cr_assert_eq(t->files[0].flags, MI_FILE_EXECUTABLE);
    cr_assert_eq(t->files[1].flags, MI_FILE_PAD);
    cr_assert_eq(t->files[2].flags, MI_FILE_PAD);
    cr_assert_eq(t->files[3].flags, MI_FILE_HIDDEN | MI_FILE_EXECUTABLE);
    cr_assert_eq(t->files[4].flags, MI_FILE_PAD);
    cr_assert_eq(t->files[5].flags, MI_FILE_PAD);
    cr_assert_eq(t->files[6].flags, MI_FILE_SYMLINK); /* unknown 'q' ignored */
    cr_assert_eq(t->total_length, 3 + 13 + 16 + 16 + 16 + 16);
    mi_free(t);
    /* single-file torrents carry attr in info */
    t = parse_ok(SINGLE("'attr''x'"));
    cr_assert_eq(t->files[0].flags, MI_FILE_EXECUTABLE);
    mi_free(t);
}

Test(metainfo, utf8_variants_are_preferred)
{
    /* name.utf-8 and path.utf-8 win over name and path, which may hold legacy (non-UTF-8) bytes */
    mi_torrent *t = parse_ok("d'info'd'files'l"
                             "d'length'i5e'path'l'caf\xe9'e'path.utf-8'l'caf\xc3\xa9''x'ee"
                             "d'length'i5e'path.utf-8'l'only-utf8'ee"
                             "e'name''\xe9t\xe9''name.utf-8''\xc3\xa9t\xc3\xa9''piece length'i16e'pieces'@1ee");
    cr_assert_str_eq(t->name, "\xc3\xa9t\xc3\xa9");
    cr_assert(t->utf8_name);
    cr_assert_str_eq(mi_file_path(t, 0), "caf\xc3\xa9/x");
    cr_assert_str_eq(mi_file_path(t, 1), "only-utf8");
    mi_free(t);
    t = parse_ok(SINGLE("'name.utf-8''\xe6\x97\xa5\xe6\x9c\xac'"));
    cr_assert_str_eq(t->name, "\xe6\x97\xa5\xe6\x9c\xac");
    mi_free(t);
    t = parse_ok("d'info'd'length'i1e'name''\xff\xfe''piece length'i1e'pieces'@1ee");
    cr_assert_str_eq(t->name, "\xff\xfe");
    cr_assert_not(t->utf8_name);
    mi_free(t);
}

Test(metainfo, utf8_variants_must_be_valid)
{
    parse_bad(SINGLE("'name.utf-8''caf\xe9'"), "info.name.utf-8: component \"caf\\xe9\" is not valid UTF-8 (byte 3)");
    parse_bad(SINGLE("'name.utf-8''\xc0\xaf'"), "not valid UTF-8 (byte 0)");       /* overlong '/' */
    parse_bad(SINGLE("'name.utf-8''a\xed\xa0\x80'"), "not valid UTF-8 (byte 1)");  /* surrogate */
    parse_bad(SINGLE("'name.utf-8''\xf4\x90\x80\x80'"), "not valid UTF-8");        /* > U+10FFFF */
    parse_bad(SINGLE("'name.utf-8''ab\xe2\x82'"), "not valid UTF-8 (byte 2)");     /* truncated */
    parse_bad(SINGLE("'name.utf-8''..'"), "info.name.utf-8: component is \"..\"");
    parse_bad(SINGLE("'name.utf-8'i1e"), "info.name.utf-8: not a string");
    parse_bad("d'info'd'files'ld'length'i5e'path'l'ok'e'path.utf-8'l'a''\xc3'ee"
              "e'name''n''piece length'i16e'pieces'@1ee",
              "info.files[0].path.utf-8[1]: component \"\\xc3\" is not valid UTF-8 (byte 0)");
    /* the plain path is checked too, even when path.utf-8 is the one used */
    parse_bad("d'info'd'files'ld'length'i5e'path'l'..'e'path.utf-8'l'fine'ee"
              "e'name''n''piece length'i16e'pieces'@1ee",
              "info.files[0].path[0]: component is \"..\"");
}

Test(metainfo, unsorted_keys_are_accepted)
{
    mi_torrent *t = parse_ok("d'info'd'pieces'@1'name''x''length'i3e'piece length'i4ee'announce''http://t/a'e");
    cr_assert_eq(t->total_length, 3);
    cr_assert_str_eq(t->trackers[0], "http://t/a");
    mi_free(t);
}

Test(metainfo, piece_length_bounds)
{
    mi_torrent *t = parse_ok("d'info'd'length'i1e'name''x''piece length'i268435456e'pieces'@1ee");
    cr_assert_eq(t->piece_length, MI_MAX_PIECE_LENGTH);
    cr_assert_eq(mi_piece_size(t, 0), 1);
    mi_free(t);
    t = parse_ok("d'info'd'length'i3e'name''x''piece length'i1e'pieces'@3ee");
    cr_assert_eq(t->piece_count, 3);
    mi_free(t);
}

Test(metainfo, limits_of_names_and_paths)
{
    char spec[16384];
    snprintf(spec, sizeof spec, "d'info'd'length'i1e'name'#255'piece length'i1e'pieces'@1ee");
    mi_torrent *t = parse_ok(spec);
    cr_assert_eq(t->name_len, 255);
    mi_free(t);
    /* name (1) + '/' + 15 components of 255 bytes and one of 253, joined by '/' = 4095 bytes: exactly the limit */
    strcpy(spec, "d'info'd'files'ld'length'i1e'path'l");
    for (int i = 0; i < 15; i++)
        strcat(spec, "#255");
    strcat(spec, "#253ee");
    strcat(spec, "e'name''n''piece length'i1e'pieces'@1ee");
    t = parse_ok(spec);
    char rel[8192];
    cr_assert_eq(mi_file_relpath(t, 0, rel, sizeof rel), MI_MAX_PATH);
    mi_free(t);
    char *longer = strstr(spec, "#253");
    longer[3] = '4';
    parse_bad(spec, "info.files[0].path: path is longer than 4095 bytes with the torrent's name");
}

/* ---- invalid torrents: one per rule, with the message ---- */

Test(metainfo_invalid, not_bencode_or_wrong_shape)
{
    parse_bad("", "bencode:");
    parse_bad("d'info'd'length'i1ee", "bencode:");      /* unterminated */
    parse_bad("d'info'de'info'dee", "bencode:");         /* duplicate key */
    parse_bad("l'info'e", "torrent: not a dictionary");
    parse_bad("d'announce''http://t/a'e", "info: missing");
    parse_bad("d'info'l'x'ee", "info: not a dictionary");
}

Test(metainfo_invalid, name_rules)
{
    parse_bad("d'info'd'length'i1e'piece length'i1e'pieces'@1ee", "info.name: missing");
    parse_bad("d'info'd'length'i1e'name'i5e'piece length'i1e'pieces'@1ee", "info.name: not a string");
    parse_bad("d'info'd'length'i1e'name''''piece length'i1e'pieces'@1ee", "info.name: component is empty");
    parse_bad("d'info'd'length'i1e'name''.''piece length'i1e'pieces'@1ee", "info.name: component is \".\"");
    parse_bad("d'info'd'length'i1e'name''..''piece length'i1e'pieces'@1ee", "info.name: component is \"..\"");
    parse_bad("d'info'd'length'i1e'name''/etc''piece length'i1e'pieces'@1ee",
              "info.name: component \"/etc\" contains '/'");
    parse_bad("d'info'd'length'i1e'name''a\\b''piece length'i1e'pieces'@1ee",
              "info.name: component \"a\\\\b\" contains '\\'");
    parse_bad("d'info'd'length'i1e'name''a^b''piece length'i1e'pieces'@1ee",
              "info.name: component \"a\\x00b\" contains a NUL byte");
    parse_bad("d'info'd'length'i1e'name'#256'piece length'i1e'pieces'@1ee",
              "info.name: component is 256 bytes long (at most 255)");
}

Test(metainfo_invalid, path_rules)
{
#define FILES(entries) "d'info'd'files'l" entries "e'name''n''piece length'i16e'pieces'@1ee"
#define OK3 "d'length'i1e'path'l'a'eed'length'i1e'path'l'b'eed'length'i1e'path'l'c'ee"
    parse_bad(FILES(OK3 "d'length'i1e'path'l'x''..'ee"), "info.files[3].path[1]: component is \"..\"");
    parse_bad(FILES("d'length'i1e'path'l'.'ee"), "info.files[0].path[0]: component is \".\"");
    parse_bad(FILES("d'length'i1e'path'l'x'''ee"), "info.files[0].path[1]: component is empty");
    parse_bad(FILES("d'length'i1e'path'l'/abs'ee"), "info.files[0].path[0]: component \"/abs\" contains '/'");
    parse_bad(FILES("d'length'i1e'path'l'a/b'ee"), "info.files[0].path[0]: component \"a/b\" contains '/'");
    parse_bad(FILES("d'length'i1e'path'l'..\\x'ee"), "contains '\\'");
    parse_bad(FILES("d'length'i1e'path'l'x^'ee"), "info.files[0].path[0]: component \"x\\x00\" contains a NUL");
    parse_bad(FILES("d'length'i1e'path'l#256ee"), "info.files[0].path[0]: component is 256 bytes long");
    parse_bad(FILES("d'length'i1e'path'lee"), "info.files[0].path: empty list");
    parse_bad(FILES("d'length'i1e'path''a'e"), "info.files[0].path: not a list");
    parse_bad(FILES("d'length'i1e'path'l'a'i3eee"), "info.files[0].path[1]: not a string");
    parse_bad(FILES("d'length'i1ee"), "info.files[0].path: missing");
    parse_bad(FILES("d'length'i1e'path'l'a'e'attr'i1ee"), "info.files[0].attr: not a string");
    parse_bad(SINGLE("'attr'le"), "info.attr: not a string");
}

Test(metainfo_invalid, path_collisions)
{
    parse_bad(FILES("d'length'i1e'path'l'a''b'eed'length'i1e'path'l'c'eed'length'i1e'path'l'a''b'ee"),
              "info.files[2].path: same path as info.files[0] (\"a/b\")");
    parse_bad(FILES("d'length'i1e'path'l'a'eed'length'i1e'path'l'a-b'eed'length'i1e'path'l'a''x'ee"),
              "info.files[0].path: \"a\" is a file, but info.files[2] uses it as a folder");
    parse_bad(FILES("d'length'i1e'path'l'a''b''c'eed'length'i1e'path'l'a''b'ee"),
              "info.files[1].path: \"a/b\" is a file, but info.files[0] uses it as a folder");
    /* "a" and "a-b" and "ab" do not collide */
    mi_torrent *t = parse_ok(FILES("d'length'i1e'path'l'a'eed'length'i1e'path'l'a-b'eed'length'i1e'path'l'ab'ee"
                                   "d'length'i1e'path'l'b''a'ee"));
    cr_assert_eq(t->file_count, 4);
    mi_free(t);
}

Test(metainfo_invalid, lengths)
{
    parse_bad("d'info'd'length'i-1e'name''x''piece length'i1e'pieces'@0ee", "info.length: negative (-1)");
    parse_bad("d'info'd'length''1''name''x''piece length'i1e'pieces'@1ee", "info.length: not an integer");
    parse_bad("d'info'd'length'i0e'name''x''piece length'i1e'pieces'@0ee",
              "info.length: the torrent holds no data (total length 0)");
    parse_bad(FILES("d'length'i0e'path'l'a'ee"), "info.files: the torrent holds no data (total length 0)");
    parse_bad(FILES("d'length'i-5e'path'l'a'ee"), "info.files[0].length: negative (-5)");
    parse_bad(FILES("d'path'l'a'ee"), "info.files[0].length: missing");
    parse_bad(FILES("d'length'i9223372036854775807e'path'l'a'eed'length'i1e'path'l'b'ee"),
              "info.files[1].length: total length of the torrent overflows");
    parse_bad("d'info'd'files''x''name''n''piece length'i16e'pieces'@1ee", "info.files: not a list");
    parse_bad("d'info'd'files'le'name''n''piece length'i16e'pieces'@1ee", "info.files: empty list");
    parse_bad(FILES("l'x'e"), "info.files[0]: not a dictionary");
    parse_bad("d'info'd'length'i1e'files'ld'length'i1e'path'l'a'eee'name''n''piece length'i1e'pieces'@1ee",
              "info: has both `length` (single file) and `files` (multi-file)");
    parse_bad("d'info'd'name''n''piece length'i1e'pieces'@1ee", "info: has neither `length`");
    parse_bad("d'info'd'name''n''piece length'i16384e'meta version'i2e'file tree'deee",
              "info: v2-only torrent (no v1 `length` or `files`): not supported");
}

Test(metainfo_invalid, pieces_and_piece_length)
{
    parse_bad("d'info'd'length'i1e'name''x''pieces'@1ee", "info.piece length: missing");
    parse_bad("d'info'd'length'i1e'name''x''piece length''1''pieces'@1ee", "info.piece length: not an integer");
    parse_bad("d'info'd'length'i1e'name''x''piece length'i0e'pieces'@1ee",
              "info.piece length: 0 is outside [1, 268435456]");
    parse_bad("d'info'd'length'i1e'name''x''piece length'i-16e'pieces'@1ee", "info.piece length: -16 is outside");
    parse_bad("d'info'd'length'i1e'name''x''piece length'i268435457e'pieces'@1ee",
              "info.piece length: 268435457 is outside");
    parse_bad("d'info'd'length'i1e'name''x''piece length'i1eee", "info.pieces: missing");
    parse_bad("d'info'd'length'i1e'name''x''piece length'i1e'pieces'i1eee", "info.pieces: not a string");
    parse_bad("d'info'd'length'i1e'name''x''piece length'i1e'pieces'#21ee",
              "info.pieces: length 21 is not a multiple of 20");
    parse_bad("d'info'd'length'i100e'name''x''piece length'i64e'pieces'@1ee",
              "info.pieces: holds 1 hashes, but 100 bytes in pieces of 64 need 2");
    parse_bad("d'info'd'length'i100e'name''x''piece length'i64e'pieces'@3ee",
              "info.pieces: holds 3 hashes, but 100 bytes in pieces of 64 need 2");
    parse_bad("d'info'd'length'i128e'name''x''piece length'i64e'pieces'@3ee", "need 2");
    parse_bad("d'info'd'length'i129e'name''x''piece length'i64e'pieces'@2ee", "need 3");
}

Test(metainfo_invalid, flags)
{
    parse_bad(SINGLE("'private'i2e"), "info.private: 2 is neither 0 nor 1");
    parse_bad(SINGLE("'private''1'"), "info.private: not an integer");
    parse_bad(SINGLE("'meta version'i3e"), "info.meta version: unsupported version 3");
    parse_bad(SINGLE("'meta version''2'"), "info.meta version: not an integer");
    parse_bad(SINGLE("'meta version'i2e'file tree'le"), "info.file tree: not a dictionary");
}

Test(metainfo_invalid, trackers)
{
#define WITH(top) "d" top "'info'd'length'i1e'name''x''piece length'i1e'pieces'@1ee"
    parse_bad(WITH("'announce'i1e"), "announce: not a string");
    parse_bad(WITH("'announce''http://a b/'"), "announce: URL \"http://a b/\" has byte 0x20 at 8");
    parse_bad(WITH("'announce''http://\xc3\xa9/'"), "has byte 0xc3 at 7");
    parse_bad(WITH("'announce-list''x'"), "announce-list: not a list");
    parse_bad(WITH("'announce-list'll'http://a/'e'x'e"), "announce-list[1]: not a list");
    parse_bad(WITH("'announce-list'll'http://a/'eli7eee"), "announce-list[1][0]: not a string");
    parse_bad(WITH("'announce-list'll'http://a/''http://a/\x01'ee"), "announce-list[0][1]: URL");
    char spec[8192];
    snprintf(spec, sizeof spec, WITH("'announce'#2049"));
    parse_bad(spec, "announce: URL is 2049 bytes long (at most 2048)");
    snprintf(spec, sizeof spec, WITH("'announce'#2048"));
    mi_torrent *t = parse_ok(spec);
    cr_assert_eq(strlen(t->trackers[0]), 2048);
    mi_free(t);
}

Test(metainfo_invalid, too_many_trackers)
{
    size_t cap = 600 * 32 + 256;
    char *spec = malloc(cap);
    strcpy(spec, "d'announce-list'l");
    for (int i = 0; i < 513; i++)
        sprintf(spec + strlen(spec), "l'http://t/%d'e", i);
    strcat(spec, "e'info'd'length'i1e'name''x''piece length'i1e'pieces'@1ee");
    parse_bad(spec, "announce-list: more than 512 tracker URLs");
    /* 512 is fine, and all of them are kept in order */
    char *last = strstr(spec, "l'http://t/512'e");
    memmove(last, last + strlen("l'http://t/512'e"), strlen(last + strlen("l'http://t/512'e")) + 1);
    mi_torrent *t = parse_ok(spec);
    cr_assert_eq(t->tracker_count, 512);
    cr_assert_eq(t->tier_count, 512);
    cr_assert_str_eq(t->trackers[511], "http://t/511");
    mi_free(t);
    free(spec);
}

Test(metainfo_invalid, error_pointer_may_be_null_and_every_prefix_fails_cleanly)
{
    bytes b = build("d'announce''http://t/a''info'd'files'ld'length'i10e'path'l'a''b'eee'name''n'"
                    "'piece length'i4e'pieces'@3ee");
    mi_torrent *t;
    cr_assert_eq(mi_parse(b.p, b.n, &t, NULL), 0);
    mi_free(t);
    for (size_t n = 0; n < b.n; n++) {
        mi_error err;
        cr_assert_eq(mi_parse(b.p, n, &t, &err), -1, "prefix of %zu bytes", n);
        cr_assert_null(t);
        cr_assert_eq(mi_parse(b.p, n, &t, NULL), -1);
    }
    mi_free(NULL);
    free(b.p);
}

/* ---- real tools ---- */

typedef struct fixture_set {
    char *dir;
    char *manifest;
} fixture_set;

static fixture_set make_fixtures(void)
{
    fixture_set fx;
    fx.dir = fx_mkdtemp("metainfo");
    cr_assert_not_null(fx.dir);
    int rc = fx_sh("'%s/tests/fixtures/make_fixtures.sh' '%s' >'%s/log' 2>&1", HEKATE_SOURCE_DIR, fx.dir, fx.dir);
    if (rc != 0) {
        int st;
        char *log = fx_sh_output(&st, "cat '%s/log'", fx.dir);
        cr_assert_fail("make_fixtures.sh failed (%d): %s", rc, log ? log : "");
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.tsv", fx.dir);
    size_t len;
    fx.manifest = (char *)fx_read(path, &len);
    cr_assert_not_null(fx.manifest);
    return fx;
}

static void free_fixtures(fixture_set *fx)
{
    fx_rmtree(fx->dir);
    free(fx->dir);
    free(fx->manifest);
}

/* Splits a manifest line into tab-separated fields (in place). Returns the field count. */
static int split(char *line, char **f, int max)
{
    int n = 0;
    f[n++] = line;
    for (char *c = line; *c && n < max; c++)
        if (*c == '\t') {
            *c = '\0';
            f[n++] = c + 1;
        }
    return n;
}

typedef struct parsed {
    char name[256];
    uint8_t *bytes;
    size_t len;
    mi_torrent *t;
} parsed;

static parsed load(const fixture_set *fx, const char *name)
{
    parsed p;
    snprintf(p.name, sizeof p.name, "%s", name);
    char path[4096];
    snprintf(path, sizeof path, "%s/torrents/%s", fx->dir, name);
    p.bytes = fx_read(path, &p.len);
    cr_assert_not_null(p.bytes, "cannot read %s", path);
    mi_error err;
    cr_assert_eq(mi_parse(p.bytes, p.len, &p.t, &err), 0, "%s: %s", name, err.what);
    return p;
}

static void unload(parsed *p)
{
    mi_free(p->t);
    free(p->bytes);
}

/* Walks the manifest line by line calling fn for each line whose first field is `kind`. */
typedef void (*line_fn)(const fixture_set *fx, char **f, int n, void *ctx);
static int each_line(const fixture_set *fx, char kind, line_fn fn, void *ctx)
{
    char *copy = strdup(fx->manifest);
    int count = 0;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] != kind || line[1] != '\t')
            continue;
        char *f[16];
        int n = split(line, f, 16);
        fn(fx, f, n, ctx);
        count++;
    }
    free(copy);
    return count;
}

static void check_T(const fixture_set *fx, char **f, int n, void *ctx)
{
    (void)ctx;
    cr_assert_eq(n, 9);
    parsed p = load(fx, f[1]);
    char hex[41];
    ih_hex(p.t->info_hash, hex);
    cr_assert_str_eq(hex, f[2], "%s: info-hash %s, libtorrent says %s", f[1], hex, f[2]);
    cr_assert_eq(p.t->piece_length, strtoull(f[3], NULL, 10), "%s", f[1]);
    cr_assert_eq(p.t->piece_count, strtoull(f[4], NULL, 10), "%s", f[1]);
    cr_assert_eq(p.t->total_length, strtoull(f[5], NULL, 10), "%s", f[1]);
    cr_assert_eq(p.t->file_count, strtoull(f[6], NULL, 10), "%s", f[1]);
    cr_assert_eq(p.t->is_private, f[7][0] == '1', "%s", f[1]);
    cr_assert_str_eq(p.t->name, f[8], "%s", f[1]);
    cr_assert_eq(p.t->hybrid, strncmp(f[1], "lt_hybrid", 9) == 0, "%s", f[1]);
    /* the info range holds exactly the bytes whose SHA-1 is the info-hash, and pieces lie inside it */
    uint8_t h[20];
    sha1(p.bytes + p.t->info_start, p.t->info_end - p.t->info_start, h);
    cr_assert_arr_eq(h, p.t->info_hash, 20);
    cr_assert_eq(p.bytes[p.t->info_start], 'd');
    cr_assert(p.t->pieces_offset > p.t->info_start &&
              p.t->pieces_offset + 20 * (size_t)p.t->piece_count < p.t->info_end);
    unload(&p);
}

static void check_F(const fixture_set *fx, char **f, int n, void *ctx)
{
    (void)ctx;
    cr_assert_eq(n, 7);
    parsed p = load(fx, f[1]);
    uint32_t i = (uint32_t)strtoul(f[2], NULL, 10);
    cr_assert_lt(i, p.t->file_count, "%s", f[1]);
    char rel[4096];
    mi_file_relpath(p.t, i, rel, sizeof rel);
    cr_assert_str_eq(rel, f[6], "%s file %u", f[1], i);
    cr_assert_eq(p.t->files[i].length, strtoull(f[3], NULL, 10), "%s file %u", f[1], i);
    cr_assert_eq(p.t->files[i].offset, strtoull(f[4], NULL, 10), "%s file %u", f[1], i);
    cr_assert_eq((p.t->files[i].flags & MI_FILE_PAD) != 0, f[5][0] == '1', "%s file %u pad", f[1], i);
    unload(&p);
}

static void check_K(const fixture_set *fx, char **f, int n, void *ctx)
{
    (void)ctx;
    cr_assert_eq(n, 4);
    parsed p = load(fx, f[1]);
    uint32_t tier = (uint32_t)strtoul(f[2], NULL, 10);
    cr_assert_lt(tier, p.t->tier_count, "%s", f[1]);
    bool found = false;
    for (uint32_t j = 0; j < p.t->tiers[tier].count; j++)
        found |= strcmp(p.t->trackers[p.t->tiers[tier].first + j], f[3]) == 0;
    cr_assert(found, "%s: tracker %s not in tier %u", f[1], f[3], tier);
    unload(&p);
}

static void check_X(const fixture_set *fx, char **f, int n, void *ctx)
{
    int *compared = ctx;
    cr_assert_eq(n, 4);
    parsed p = load(fx, f[1]);
    if (strcmp(f[2], "-") == 0) {
        /* transmission-show 3.00 cannot read BEP 52 hybrids; every other fixture must be compared */
        cr_assert(p.t->hybrid, "%s: transmission-show failed on a v1 torrent", f[1]);
    } else {
        char hex[41], magnet[1024];
        ih_hex(p.t->info_hash, hex);
        cr_assert_str_eq(hex, f[2], "%s: transmission-show says %s", f[1], f[2]);
        mi_magnet(p.t, NULL, magnet, sizeof magnet); /* trackers (tr=) included, encoded as Transmission does */
        cr_assert_str_eq(magnet, f[3], "%s", f[1]);
        ++*compared;
    }
    unload(&p);
}

static void check_Y(const fixture_set *fx, char **f, int n, void *ctx)
{
    (void)ctx;
    cr_assert_eq(n, 3);
    parsed p = load(fx, f[1]);
    bool found = false;
    for (uint32_t i = 0; i < p.t->file_count && !found; i++) {
        char rel[4096];
        mi_file_relpath(p.t, i, rel, sizeof rel);
        found = strcmp(rel, f[2]) == 0;
    }
    cr_assert(found, "%s: transmission-show lists %s, metainfo does not", f[1], f[2]);
    unload(&p);
}

Test(metainfo_real, agrees_with_libtorrent_and_transmission, .timeout = 120)
{
    fixture_set fx = make_fixtures();
    int compared = 0;
    cr_assert_eq(each_line(&fx, 'T', check_T, NULL), 13, "every fixture torrent is described by libtorrent");
    cr_assert_geq(each_line(&fx, 'F', check_F, NULL), 30);
    cr_assert_geq(each_line(&fx, 'K', check_K, NULL), 14);
    cr_assert_eq(each_line(&fx, 'X', check_X, &compared), 13);
    cr_assert_eq(compared, 12, "transmission-show read every fixture but the hybrid");
    cr_assert_geq(each_line(&fx, 'Y', check_Y, NULL), 25);
    /* file counts: libtorrent's F lines are the whole list, so counts match; tiers: mk_multi has two tiers */
    parsed p = load(&fx, "mk_multi_l15.torrent");
    cr_assert_eq(p.t->tier_count, 2);
    cr_assert_eq(p.t->tiers[0].count, 2);
    cr_assert_str_eq(p.t->trackers[2], "udp://127.0.0.1:6969/announce");
    cr_assert_eq(p.t->files[1].length, 0); /* the zero-length file is kept */
    unload(&p);
    p = load(&fx, "py_utf8_keys.torrent");
    cr_assert(p.t->utf8_name);
    unload(&p);
    free_fixtures(&fx);
}

/* Reads bytes [off, off + n) of the torrent's byte space from the files in `folder` (pad files read as zeros). */
static void read_span(const mi_torrent *t, const char *folder, uint64_t off, uint8_t *out, size_t n)
{
    while (n > 0) {
        int64_t i = mi_find_file(t, off);
        cr_assert_geq(i, 0);
        const mi_file *f = &t->files[i];
        uint64_t in = off - f->offset;
        size_t take = (size_t)(f->length - in < n ? f->length - in : n);
        if (f->flags & MI_FILE_PAD) {
            memset(out, 0, take);
        } else {
            char rel[4096], path[8192];
            mi_file_relpath(t, (uint32_t)i, rel, sizeof rel);
            snprintf(path, sizeof path, "%s/%s", folder, rel);
            FILE *fp = fopen(path, "rb");
            cr_assert_not_null(fp, "cannot open %s", path);
            cr_assert_eq(fseeko(fp, (off_t)in, SEEK_SET), 0);
            cr_assert_eq(fread(out, 1, take, fp), take, "short read in %s", path);
            fclose(fp);
        }
        out += take;
        off += take;
        n -= take;
    }
}

static void verify_pieces(const uint8_t *torrent, const mi_torrent *t, const char *folder)
{
    uint8_t *piece = malloc(t->piece_length);
    cr_assert_not_null(piece);
    for (uint32_t i = 0; i < t->piece_count; i++) {
        uint32_t size = mi_piece_size(t, i);
        read_span(t, folder, (uint64_t)i * t->piece_length, piece, size);
        uint8_t h[20];
        sha1(piece, size, h);
        cr_assert_arr_eq(h, torrent + t->pieces_offset + 20 * (size_t)i, 20, "piece %u of %s", i, t->name);
    }
    free(piece);
}

static void check_D(const fixture_set *fx, char **f, int n, void *ctx)
{
    int *pieces = ctx;
    cr_assert_eq(n, 3);
    parsed p = load(fx, f[1]);
    verify_pieces(p.bytes, p.t, f[2]);
    *pieces += (int)p.t->piece_count;
    unload(&p);
}

Test(metainfo_real, piece_hashes_match_the_data_on_disk, .timeout = 120)
{
    fixture_set fx = make_fixtures();
    int pieces = 0;
    cr_assert_eq(each_line(&fx, 'D', check_D, &pieces), 13);
    cr_assert_gt(pieces, 500);
    free_fixtures(&fx);
}

Test(metainfo_real, bundled_demo_is_reproducible, .timeout = 60)
{
    char *dir = fx_mkdtemp("demo");
    cr_assert_not_null(dir);
    cr_assert_eq(fx_sh("'%s/examples/make-demo.sh' '%s' '%s/demo.torrent' >/dev/null 2>&1", HEKATE_SOURCE_DIR, dir,
                       dir),
                 0);
    char path[4096];
    size_t n1, n2;
    snprintf(path, sizeof path, "%s/examples/demo.torrent", HEKATE_SOURCE_DIR);
    uint8_t *bundled = fx_read(path, &n1);
    snprintf(path, sizeof path, "%s/demo.torrent", dir);
    uint8_t *fresh = fx_read(path, &n2);
    cr_assert(bundled && fresh);
    mi_torrent *a, *b;
    mi_error err;
    cr_assert_eq(mi_parse(bundled, n1, &a, &err), 0, "%s", err.what);
    cr_assert_eq(mi_parse(fresh, n2, &b, &err), 0, "%s", err.what);
    cr_assert_arr_eq(a->info_hash, b->info_hash, 20);
    cr_assert_eq(a->info_end - a->info_start, b->info_end - b->info_start);
    cr_assert_arr_eq(bundled + a->info_start, fresh + b->info_start, a->info_end - a->info_start);
    cr_assert(a->multi_file);
    cr_assert_geq(a->file_count, 3);
    cr_assert_gt(a->piece_count, 1);
    /* the regenerated data is what the bundled torrent describes, laid out as <folder>/<name>/<path> */
    verify_pieces(bundled, a, dir);
    mi_free(a);
    mi_free(b);
    free(bundled);
    free(fresh);
    fx_rmtree(dir);
    free(dir);
}

/* ---- hekate-show ---- */

#define SHOW HEKATE_BINARY_DIR "/backend-real/hekate-show"

Test(show, prints_what_the_torrent_describes, .timeout = 120)
{
    fixture_set fx = make_fixtures();
    int st;
    char *out = fx_sh_output(&st, "'%s' '%s/torrents/mk_multi_l15.torrent' '%s/torrents/lt_hybrid_16k.torrent'",
                             SHOW, fx.dir, fx.dir);
    cr_assert_not_null(out);
    cr_assert_eq(st, 0, "%s", out);
    parsed p = load(&fx, "mk_multi_l15.torrent");
    char hex[41], magnet[512], line[8192];
    ih_hex(p.t->info_hash, hex);
    mi_magnet(p.t, NULL, magnet, sizeof magnet);
    snprintf(line, sizeof line, "  Hash: %s\n", hex);
    cr_assert(strstr(out, line), "missing %s in:\n%s", line, out);
    snprintf(line, sizeof line, "  Magnet: %s\n", magnet);
    cr_assert(strstr(out, line), "missing %s in:\n%s", line, out);
    const char *expect[] = {"  Name: multi\n", "  Privacy: Public torrent\n", "  Piece Count: 4\n",
                            "  Piece Size: 32.00 KiB (32768 bytes)\n", "  Total Size: 108.40 KiB (111001 bytes)\n",
                            "  Tier #1\n  http://127.0.0.1:6969/announce\n  http://127.0.0.1:6970/announce\n\n"
                            "  Tier #2\n  udp://127.0.0.1:6969/announce\n",
                            "  multi/a/b/deep.bin (39.06 KiB, 40000 bytes)\n",
                            "  multi/a/empty.dat (0 bytes)\n",
                            "  multi/.pad/9152 (8.94 KiB, 9152 bytes) [padding]\n",
                            "  Meta Version: hybrid (v1 + v2), loaded as v1\n"};
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++)
        cr_assert(strstr(out, expect[i]), "missing \"%s\" in:\n%s", expect[i], out);
    unload(&p);
    free(out);

    /* a bad file among good ones: the good one is shown, the bad one named with the reason, exit status 1 */
    char bad[4096];
    snprintf(bad, sizeof bad, "%s/bad.torrent", fx.dir);
    cr_assert_eq(fx_write(bad, "d4:infod4:name2:..ee", 20), 0);
    out = fx_sh_output(&st, "'%s' '%s' '%s/torrents/mk_single_l15.torrent' 2>&1", SHOW, bad, fx.dir);
    cr_assert_eq(st, 1, "%s", out);
    snprintf(line, sizeof line, "hekate-show: %s: info.name: component is \"..\"", bad);
    cr_assert(strstr(out, line), "missing %s in:\n%s", line, out);
    cr_assert(strstr(out, "  Name: short.bin\n"), "%s", out);
    free(out);
    out = fx_sh_output(&st, "'%s' '%s/does-not-exist.torrent' 2>&1", SHOW, fx.dir);
    cr_assert_eq(st, 1, "%s", out);
    cr_assert(strstr(out, "does-not-exist.torrent: No such file or directory"), "%s", out);
    free(out);
    out = fx_sh_output(&st, "'%s' -m '%s/torrents/mk_single_l15.torrent'", SHOW, fx.dir);
    p = load(&fx, "mk_single_l15.torrent");
    mi_magnet(p.t, NULL, magnet, sizeof magnet);
    strcat(magnet, "\n");
    cr_assert_str_eq(out, magnet);
    cr_assert_eq(st, 0);
    unload(&p);
    free(out);
    free_fixtures(&fx);
}

Test(show, usage)
{
    int st;
    char *out = fx_sh_output(&st, "'%s' --help", SHOW);
    cr_assert_eq(st, 0);
    cr_assert(strstr(out, "Usage: hekate-show"), "%s", out);
    free(out);
    out = fx_sh_output(&st, "'%s' 2>&1", SHOW);
    cr_assert_eq(st, 2, "no argument is a usage error");
    cr_assert(strstr(out, "Usage: hekate-show"), "%s", out);
    free(out);
    out = fx_sh_output(&st, "'%s' --bogus 2>&1", SHOW);
    cr_assert_eq(st, 2);
    cr_assert(strstr(out, "unknown option --bogus"), "%s", out);
    free(out);
}
