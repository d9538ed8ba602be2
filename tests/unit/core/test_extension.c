/* Tests for core/extension: BEP 10 handshakes as real clients send them, canonical encoding, every invalid field;
 * BEP 9 ut_metadata round trips and bad messages. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "bencode.h"
#include "extension.h"

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1
#define C(lit) (lit), sizeof(lit) - 1 /* as const char * */

/* A libtorrent 2.0 handshake: its m names, metadata_size, reqq, v, yourip, p, plus keys we do not know. */
static const char LIBTORRENT_HS[] =
    "d12:complete_agoi-1e1:ei0e"
    "1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee"
    "13:metadata_sizei31235e1:pi6881e4:reqqi500e11:upload_onlyi0e1:v16:libtorrent/2.0.9"
    "6:yourip4:\x7f\x00\x00\x01" "e";

Test(extension, libtorrent_handshake)
{
    ext_handshake h;
    ext_error err = {0};
    cr_assert_eq(ext_handshake_decode(S(LIBTORRENT_HS), &h, &err), 0, "%s at %zu", err.what, err.offset);
    cr_assert(h.has_m);
    cr_assert_eq(h.m[EXT_LT_DONTHAVE], 7);
    cr_assert_eq(h.m[EXT_SHARE_MODE], 8);
    cr_assert_eq(h.m[EXT_UPLOAD_ONLY], 3);
    cr_assert_eq(h.m[EXT_UT_HOLEPUNCH], 4);
    cr_assert_eq(h.m[EXT_UT_METADATA], 2);
    cr_assert_eq(h.m[EXT_UT_PEX], 1);
    cr_assert_eq(h.m_unknown, 0);
    cr_assert_eq(h.metadata_size, 31235);
    cr_assert_eq(h.port, 6881);
    cr_assert_eq(h.reqq, 500);
    cr_assert(h.has_upload_only);
    cr_assert_not(h.upload_only);
    cr_assert_eq(h.v_len, 16);
    cr_assert_str_eq(h.v, "libtorrent/2.0.9");
    cr_assert_eq(h.yourip_len, 4);
    const uint8_t lo[4] = {127, 0, 0, 1};
    cr_assert_arr_eq(h.yourip, lo, 4);
    cr_assert_not(h.has_ipv4);
    cr_assert_not(h.has_ipv6);

    /* re-encoding drops the unknown keys and is otherwise the same bytes (the input was canonical) */
    uint8_t buf[EXT_HANDSHAKE_MAX];
    size_t n = ext_handshake_encode(&h, buf, sizeof buf);
    const char *known = strstr(LIBTORRENT_HS, "1:md");
    size_t known_len = sizeof LIBTORRENT_HS - 1 - (size_t)(known - LIBTORRENT_HS);
    cr_assert_eq(n, 1 + known_len, "%zu", n);
    cr_assert_eq(buf[0], 'd');
    cr_assert_arr_eq(buf + 1, known, known_len);
    ext_handshake again;
    cr_assert_eq(ext_handshake_decode(buf, n, &again, &err), 0);
    cr_assert_eq(memcmp(&h, &again, sizeof h), 0);
}

Test(extension, transmission_handshake_with_ipv6)
{
    static const char hs[] = "d1:ei0e4:ipv616:\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
                             "12:ipv4_address4:\x0a\0\0\x01" /* not a BEP 10 key: ignored */
                             "1:md11:ut_metadatai3e6:ut_pexi1ee13:metadata_sizei1234e1:pi51413e4:reqqi512e"
                             "11:upload_onlyi1e1:v17:Transmission 3.00e";
    ext_handshake h;
    ext_error err = {0};
    cr_assert_eq(ext_handshake_decode(S(hs), &h, &err), 0, "%s at %zu", err.what, err.offset);
    cr_assert(h.has_ipv6);
    cr_assert_eq(h.ipv6[0], 0x20);
    cr_assert_eq(h.ipv6[15], 0x01);
    cr_assert_eq(h.m[EXT_UT_METADATA], 3);
    cr_assert_eq(h.m[EXT_UT_PEX], 1);
    cr_assert_eq(h.m[EXT_LT_DONTHAVE], 0);
    cr_assert(h.upload_only);
    cr_assert_eq(h.port, 51413);
    cr_assert_str_eq(h.v, "Transmission 3.00");
}

Test(extension, unknown_names_ignored_and_zero_disables)
{
    ext_handshake h;
    ext_error err;
    cr_assert_eq(ext_handshake_decode(S("d1:md6:lt_texi5e10:ut_commenti0e11:ut_metadatai0eee"), &h, &err), 0,
                 "%s", err.what);
    cr_assert(h.has_m);
    cr_assert_eq(h.m_unknown, 2);
    cr_assert_eq(h.m[EXT_UT_METADATA], 0);
    /* an unknown name may share an id with a known one: we never send it */
    cr_assert_eq(ext_handshake_decode(S("d1:md6:lt_texi2e11:ut_metadatai2eee"), &h, &err), 0, "%s", err.what);
    cr_assert_eq(h.m[EXT_UT_METADATA], 2);
    /* an empty handshake (e.g. a later update carrying nothing) */
    cr_assert_eq(ext_handshake_decode(S("de"), &h, &err), 0);
    cr_assert_not(h.has_m);
    cr_assert_eq(h.reqq, 0);
    /* p = 0 carries nothing */
    cr_assert_eq(ext_handshake_decode(S("d1:pi0ee"), &h, &err), 0);
    cr_assert_eq(h.port, 0);
}

Test(extension, our_handshake_is_canonical)
{
    ext_handshake h = {0};
    h.has_m = true;
    h.m[EXT_UT_METADATA] = 1;
    h.m[EXT_UPLOAD_ONLY] = 2;
    h.metadata_size = 5000;
    h.port = 6881;
    h.reqq = 256;
    h.has_upload_only = true;
    h.upload_only = true;
    strcpy(h.v, "hekate 0.1");
    h.v_len = (uint8_t)strlen(h.v);
    uint8_t buf[EXT_HANDSHAKE_MAX];
    size_t n = ext_handshake_encode(&h, buf, sizeof buf);
    const char want[] = "d1:md11:upload_onlyi2e11:ut_metadatai1ee13:metadata_sizei5000e1:pi6881e4:reqqi256e"
                        "11:upload_onlyi1e1:v10:hekate 0.1e";
    cr_assert_eq(n, sizeof want - 1, "%zu: %.*s", n, (int)n, buf);
    cr_assert_arr_eq(buf, want, n);
    ben_doc doc;
    ben_error be;
    cr_assert_eq(ben_decode(buf, n, 0, &doc, &be), 0);
    cr_assert(doc.canonical);
    ben_doc_free(&doc);
    /* every shorter buffer is refused, never overrun */
    for (size_t cap = 0; cap < n; cap++)
        cr_assert_eq(ext_handshake_encode(&h, buf, cap), 0, "cap %zu", cap);
    /* nothing present: an empty dictionary */
    ext_handshake none = {0};
    cr_assert_eq(ext_handshake_encode(&none, buf, sizeof buf), 2);
    cr_assert_arr_eq(buf, "de", 2);
}

Test(extension, largest_handshake_fits_the_bound)
{
    ext_handshake h;
    memset(&h, 0xff, sizeof h);
    h.has_m = h.has_ipv4 = h.has_ipv6 = h.has_upload_only = h.upload_only = true;
    h.metadata_size = EXT_METADATA_SIZE_MAX;
    h.reqq = INT32_MAX;
    h.port = 65535;
    h.v_len = EXT_CLIENT_MAX;
    memset(h.v, 'x', EXT_CLIENT_MAX);
    h.yourip_len = 16;
    for (int i = 0; i < EXT_NAME_COUNT; i++)
        h.m[i] = (uint8_t)(250 + i); /* distinct */
    uint8_t buf[EXT_HANDSHAKE_MAX + 100];
    size_t n = ext_handshake_encode(&h, buf, sizeof buf);
    cr_assert(n > 300 && n <= EXT_HANDSHAKE_MAX, "%zu", n);
    ext_handshake back;
    ext_error err;
    cr_assert_eq(ext_handshake_decode(buf, n, &back, &err), 0, "%s", err.what);
    cr_assert_eq(back.reqq, INT32_MAX);
    cr_assert_eq(back.m[EXT_UT_PEX], 255);
    cr_assert_eq(back.v_len, EXT_CLIENT_MAX);
    /* out-of-range structs are refused */
    h.yourip_len = 5;
    cr_assert_eq(ext_handshake_encode(&h, buf, sizeof buf), 0);
    h.yourip_len = 4;
    h.v_len = EXT_CLIENT_MAX + 1;
    cr_assert_eq(ext_handshake_encode(&h, buf, sizeof buf), 0);
    h.v_len = 1;
    h.metadata_size = EXT_METADATA_SIZE_MAX + 1;
    cr_assert_eq(ext_handshake_encode(&h, buf, sizeof buf), 0);
}

typedef struct bad_case {
    const char *in;
    size_t len;
    const char *field;  /* must appear in the error */
    const char *at;     /* the error offset is where this substring starts in `in` (NULL: not checked) */
} bad_case;

#define BAD(lit, field, at) {lit, sizeof(lit) - 1, field, at}

Test(extension, invalid_handshakes)
{
    /* only the message itself can be fatal: not bencode (strict), not a dictionary, too many tokens */
    static const bad_case cases[] = {
        BAD("li1ee", "not a dictionary", NULL),
        BAD("4:spam", "not a dictionary", NULL),
        BAD("d1:m", "bencode", NULL),
        BAD("de1:x", "bencode", NULL),
        BAD("d1:pi1e1:pi2ee", "bencode", NULL), /* duplicate key */
        BAD("d1:md11:ut_metadatai1e11:ut_metadatai2eee", "bencode", NULL), /* duplicate name in m */
        BAD("d1:pi01ee", "bencode", NULL),
        BAD("", "bencode", NULL),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ext_handshake h;
        ext_error err = {0};
        cr_assert_eq(ext_handshake_decode((const uint8_t *)cases[i].in, cases[i].len, &h, &err), -1, "case %zu", i);
        cr_assert(strstr(err.what, cases[i].field) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, err.what,
                  cases[i].field);
        if (cases[i].at) {
            const char *pos = strstr(cases[i].in, cases[i].at);
            cr_assert_not_null(pos);
            cr_assert_eq(err.offset, (size_t)(pos - cases[i].in), "case %zu: offset %zu", i, err.offset);
        }
        ext_handshake zero;
        memset(&zero, 0, sizeof zero);
        cr_assert_eq(memcmp(&h, &zero, sizeof h), 0, "output cleared on error");
    }
    /* the token bound holds: a well-formed handshake of 5001 tokens is refused, allocation stays bounded */
    enum { N = 2500 };
    static char big[16 + N * 8];
    size_t n = 0;
    big[n++] = 'd';
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "4:%04dle", i); /* a key and an empty list: 2 tokens */
    big[n++] = 'e';
    ext_handshake h;
    ext_error err;
    cr_assert_eq(ext_handshake_decode((const uint8_t *)big, n, &h, &err), -1);
    cr_assert(strstr(err.what, "bencode") != NULL, "%s", err.what);
}

/* Known fields malformed or out of range: ignored (counted, the first described), the handshake decodes. */
Test(extension, malformed_fields_are_ignored)
{
    static const bad_case cases[] = {
        BAD("d1:mi1ee", "m: not a dictionary", "i1e"),
        BAD("d1:md11:ut_metadatai256eee", "m: ut_metadata: id", "i256e"),
        BAD("d1:md11:ut_metadatai-1eee", "m: ut_metadata: id", "i-1e"),
        BAD("d1:md11:ut_metadata1:1ee", "m: ut_metadata: id", "1:1e"),
        BAD("d1:md6:ut_pexi2e11:ut_metadatai2eee", "share id 2", "i2eee"), /* counts 2: both entries */
        BAD("d4:reqqi0ee", "reqq", "i0e"),
        BAD("d4:reqq3:500e", "reqq", "3:500"),
        BAD("d4:reqqi2147483648ee", "reqq", "i2147483648e"),
        BAD("d1:pi65536ee", "p: not an integer", "i65536e"),
        BAD("d1:pi-1ee", "p: not an integer", "i-1e"),
        BAD("d13:metadata_sizei0ee", "metadata_size", "i0e"),
        BAD("d13:metadata_sizei67108865ee", "metadata_size", "i67108865e"),
        BAD("d11:upload_onlyi2ee", "upload_only", "i2e"),
        BAD("d1:vi1ee", "v: not a string", "i1e"),
        BAD("d1:v3:a\0be", "NUL", "3:a"),
        BAD("d6:yourip5:12345e", "yourip", "5:"),
        BAD("d4:ipv416:0123456789abcdefe", "ipv4", "16:"),
        BAD("d4:ipv64:1234e", "ipv6", "4:1234"),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ext_handshake h;
        ext_error err = {0};
        cr_assert_eq(ext_handshake_decode((const uint8_t *)cases[i].in, cases[i].len, &h, &err), 0, "case %zu", i);
        cr_assert_eq(h.ignored, strstr(cases[i].field, "share") ? 2u : 1u, "case %zu: %u", i, h.ignored);
        cr_assert(strstr(err.what, cases[i].field) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, err.what,
                  cases[i].field);
        cr_assert(strstr(err.what, "ignored") != NULL, "case %zu: %s", i, err.what);
        const char *pos = strstr(cases[i].in, cases[i].at);
        cr_assert_not_null(pos);
        cr_assert_eq(err.offset, (size_t)(pos - cases[i].in), "case %zu: offset %zu", i, err.offset);
        /* what is ignored is absent */
        cr_assert_eq(h.reqq, 0);
        cr_assert_eq(h.port, 0);
        cr_assert_eq(h.metadata_size, 0);
        cr_assert_eq(h.v_len, 0);
        cr_assert_eq(h.yourip_len, 0);
        cr_assert_not(h.has_upload_only || h.has_ipv4 || h.has_ipv6);
        for (int k = 0; k < EXT_NAME_COUNT; k++)
            cr_assert_eq(h.m[k], 0, "case %zu", i);
    }
    /* a well-formed handshake: nothing ignored, the description empty */
    ext_handshake h;
    ext_error err;
    memset(&err, 'x', sizeof err);
    cr_assert_eq(ext_handshake_decode(S("d1:pi1ee"), &h, &err), 0);
    cr_assert_eq(h.ignored, 0);
    cr_assert_str_eq(err.what, "");
    /* several: counted, the first described; err may be NULL */
    cr_assert_eq(ext_handshake_decode(S("d1:pi-1e4:reqqi0e1:vi0ee"), &h, &err), 0);
    cr_assert_eq(h.ignored, 3);
    cr_assert(strstr(err.what, "p:") == err.what, "%s", err.what);
    cr_assert_eq(ext_handshake_decode(S("d1:pi-1e4:reqqi0e1:vi0ee"), &h, NULL), 0);
    cr_assert_eq(h.ignored, 3);
}

Test(extension, shared_ids_disable_every_name_that_shares)
{
    ext_handshake h;
    ext_error err;
    /* three names on id 2: none keeps it (the third may not take it back); the others are kept */
    cr_assert_eq(ext_handshake_decode(S("d1:md11:lt_donthavei2e11:upload_onlyi5e11:ut_metadatai2e6:ut_pexi2eee"), &h,
                                      &err), 0, "%s", err.what);
    cr_assert_eq(h.m[EXT_LT_DONTHAVE], 0);
    cr_assert_eq(h.m[EXT_UT_METADATA], 0);
    cr_assert_eq(h.m[EXT_UT_PEX], 0);
    cr_assert_eq(h.m[EXT_UPLOAD_ONLY], 5);
    cr_assert_eq(h.ignored, 3);
    /* id 0 (disabled) may repeat */
    cr_assert_eq(ext_handshake_decode(S("d1:md11:ut_metadatai0e6:ut_pexi0eee"), &h, &err), 0);
    cr_assert_eq(h.ignored, 0);
}

Test(extension, v_at_the_cap_is_kept_longer_is_truncated)
{
    /* a v of exactly EXT_CLIENT_MAX bytes is kept whole, a longer one truncated to its first EXT_CLIENT_MAX */
    char in[EXT_CLIENT_MAX + 20];
    int n = snprintf(in, sizeof in, "d1:v%d:", EXT_CLIENT_MAX);
    memset(in + n, 'a', EXT_CLIENT_MAX);
    memcpy(in + n + EXT_CLIENT_MAX, "e", 1);
    ext_handshake h;
    ext_error err;
    cr_assert_eq(ext_handshake_decode((const uint8_t *)in, (size_t)n + EXT_CLIENT_MAX + 1, &h, &err), 0);
    cr_assert_eq(h.v_len, EXT_CLIENT_MAX);
    cr_assert_eq(h.ignored, 0);
    n = snprintf(in, sizeof in, "d1:v%d:", EXT_CLIENT_MAX + 1);
    memset(in + n, 'a', EXT_CLIENT_MAX);
    in[n + EXT_CLIENT_MAX] = 'b';
    memcpy(in + n + EXT_CLIENT_MAX + 1, "e", 1);
    cr_assert_eq(ext_handshake_decode((const uint8_t *)in, (size_t)n + EXT_CLIENT_MAX + 2, &h, &err), 0);
    cr_assert_eq(h.v_len, EXT_CLIENT_MAX);
    cr_assert_eq(strlen(h.v), EXT_CLIENT_MAX);
    cr_assert_null(strchr(h.v, 'b'));
    cr_assert_eq(h.ignored, 1);
    cr_assert(strstr(err.what, "truncated") != NULL, "%s", err.what);
    /* a NUL past the cap is cut off with the rest; one inside it drops v */
    in[n + EXT_CLIENT_MAX] = '\0';
    cr_assert_eq(ext_handshake_decode((const uint8_t *)in, (size_t)n + EXT_CLIENT_MAX + 2, &h, &err), 0);
    cr_assert_eq(h.v_len, EXT_CLIENT_MAX);
    in[n + 3] = '\0';
    cr_assert_eq(ext_handshake_decode((const uint8_t *)in, (size_t)n + EXT_CLIENT_MAX + 2, &h, &err), 0);
    cr_assert_eq(h.v_len, 0);
    cr_assert_eq(h.ignored, 2);
}

/* ---- harmless oddities real clients send: the field is ignored (or v truncated), the rest is kept ---- */

typedef enum odd_field {
    ODD_NONE, ODD_M, ODD_M_ENTRY, ODD_METADATA_SIZE, ODD_P, ODD_REQQ, ODD_V, ODD_YOURIP
} odd_field;

/* A handshake with every field well-formed except `odd`, whose value is `bad` (bencoded). */
static size_t odd_handshake(char *buf, size_t cap, odd_field odd, const char *bad)
{
    const char *m = "d11:ut_metadatai2e6:ut_pexi1ee", *msize = "i1234e", *p = "i6881e", *reqq = "i250e",
               *v = "5:hello", *yourip = "4:abcd";
    switch (odd) {
    case ODD_M: case ODD_M_ENTRY: m = bad; break;
    case ODD_METADATA_SIZE: msize = bad; break;
    case ODD_P: p = bad; break;
    case ODD_REQQ: reqq = bad; break;
    case ODD_V: v = bad; break;
    case ODD_YOURIP: yourip = bad; break;
    case ODD_NONE: break;
    }
    int n = snprintf(buf, cap, "d1:m%s13:metadata_size%s1:p%s4:reqq%s1:v%s6:yourip%se", m, msize, p, reqq, v,
                     yourip);
    cr_assert(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

/* Decodes; every field but `odd` has its well-formed value. */
static ext_handshake decode_odd(odd_field odd, const char *bad)
{
    char in[512];
    size_t n = odd_handshake(in, sizeof in, odd, bad);
    ext_handshake h;
    ext_error err = {0};
    cr_assert_eq(ext_handshake_decode((const uint8_t *)in, n, &h, &err), 0, "%s: %s at %zu", in, err.what,
                 err.offset);
    cr_assert_eq(h.ignored, odd == ODD_NONE ? 0u : 1u, "%u", h.ignored);
    if (odd != ODD_M && odd != ODD_M_ENTRY) {
        cr_assert(h.has_m);
        cr_assert_eq(h.m[EXT_UT_METADATA], 2);
        cr_assert_eq(h.m[EXT_UT_PEX], 1);
    }
    if (odd != ODD_METADATA_SIZE)
        cr_assert_eq(h.metadata_size, 1234);
    if (odd != ODD_P)
        cr_assert_eq(h.port, 6881);
    if (odd != ODD_REQQ)
        cr_assert_eq(h.reqq, 250);
    if (odd != ODD_V)
        cr_assert_str_eq(h.v, "hello");
    if (odd != ODD_YOURIP) {
        cr_assert_eq(h.yourip_len, 4);
        cr_assert_arr_eq(h.yourip, "abcd", 4);
    }
    return h;
}

Test(extension, odd_control_is_fully_decoded)
{
    decode_odd(ODD_NONE, NULL);
}

Test(extension, odd_v_longer_than_the_cap_is_truncated)
{
    char v[300];
    int n = snprintf(v, sizeof v, "%d:", 200);
    memset(v + n, 'c', 200);
    v[n + 200] = '\0';
    ext_handshake h = decode_odd(ODD_V, v);
    cr_assert_eq(h.v_len, EXT_CLIENT_MAX);
    cr_assert_eq(strlen(h.v), EXT_CLIENT_MAX);
    cr_assert_arr_eq(h.v, v + n, EXT_CLIENT_MAX);
}

Test(extension, odd_reqq_zero_is_ignored)
{
    ext_handshake h = decode_odd(ODD_REQQ, "i0e");
    cr_assert_eq(h.reqq, 0, "absent: the default applies");
}

Test(extension, odd_yourip_of_five_bytes_is_ignored)
{
    ext_handshake h = decode_odd(ODD_YOURIP, "5:abcde");
    cr_assert_eq(h.yourip_len, 0);
}

Test(extension, odd_m_id_300_is_ignored_for_that_extension)
{
    ext_handshake h = decode_odd(ODD_M_ENTRY, "d11:ut_metadatai2e6:ut_pexi300ee");
    cr_assert(h.has_m);
    cr_assert_eq(h.m[EXT_UT_METADATA], 2, "the other entries are kept");
    cr_assert_eq(h.m[EXT_UT_PEX], 0);
}

Test(extension, odd_m_not_a_dictionary_means_no_extensions)
{
    ext_handshake h = decode_odd(ODD_M, "i1e");
    cr_assert_not(h.has_m);
    for (int i = 0; i < EXT_NAME_COUNT; i++)
        cr_assert_eq(h.m[i], 0);
}

Test(extension, odd_p_70000_is_ignored)
{
    ext_handshake h = decode_odd(ODD_P, "i70000e");
    cr_assert_eq(h.port, 0);
}

Test(extension, odd_metadata_size_2_pow_40_is_ignored)
{
    ext_handshake h = decode_odd(ODD_METADATA_SIZE, "i1099511627776e");
    cr_assert_eq(h.metadata_size, 0);
}

Test(extension, names)
{
    cr_assert_str_eq(ext_name_str(EXT_UT_METADATA), "ut_metadata");
    cr_assert_null(ext_name_str(EXT_NAME_COUNT));
    cr_assert_eq(ext_name_find(S("ut_pex")), EXT_UT_PEX);
    cr_assert_eq(ext_name_find(S("ut_pe")), -1);
    cr_assert_eq(ext_name_find(S("ut_pexx")), -1);
    for (int i = 1; i < EXT_NAME_COUNT; i++)
        cr_assert(strcmp(ext_name_str((ext_name)(i - 1)), ext_name_str((ext_name)i)) < 0, "enum in sorted order");
}

/* ---- ut_metadata ---- */

Test(ut_metadata, piece_arithmetic)
{
    cr_assert_eq(ext_ut_metadata_piece_count(0), 0);
    cr_assert_eq(ext_ut_metadata_piece_count(1), 1);
    cr_assert_eq(ext_ut_metadata_piece_count(16384), 1);
    cr_assert_eq(ext_ut_metadata_piece_count(16385), 2);
    cr_assert_eq(ext_ut_metadata_piece_count(EXT_METADATA_SIZE_MAX), 4096);
    cr_assert_eq(ext_ut_metadata_piece_len(16385, 0), 16384);
    cr_assert_eq(ext_ut_metadata_piece_len(16385, 1), 1);
    cr_assert_eq(ext_ut_metadata_piece_len(16385, 2), 0);
    cr_assert_eq(ext_ut_metadata_piece_len(32768, 1), 16384);
}

Test(ut_metadata, request_and_reject_round_trip)
{
    uint8_t buf[EXT_UT_METADATA_MSG_MAX];
    size_t n = ext_ut_metadata_encode_request(buf, sizeof buf, 3);
    cr_assert_eq(n, strlen("d8:msg_typei0e5:piecei3ee"));
    cr_assert_arr_eq(buf, "d8:msg_typei0e5:piecei3ee", n);
    ext_ut_metadata_msg m;
    ext_error err;
    cr_assert_eq(ext_ut_metadata_decode(buf, n, 4 * 16384, &m, &err), EXT_OK, "%s", err.what);
    cr_assert_eq(m.type, EXT_UT_METADATA_REQUEST);
    cr_assert_eq(m.piece, 3);
    cr_assert_null(m.data);

    n = ext_ut_metadata_encode_reject(buf, sizeof buf, 0);
    cr_assert_arr_eq(buf, "d8:msg_typei2e5:piecei0ee", n);
    cr_assert_eq(ext_ut_metadata_decode(buf, n, 0, &m, &err), EXT_OK);
    cr_assert_eq(m.type, EXT_UT_METADATA_REJECT);
    cr_assert_eq(m.piece, 0);

    cr_assert_eq(ext_ut_metadata_encode_request(buf, sizeof buf, 4096), 0);
    cr_assert_eq(ext_ut_metadata_encode_request(buf, 10, 1), 0);
}

Test(ut_metadata, data_round_trip)
{
    const uint32_t size = 2 * 16384 + 100;
    static uint8_t msg[EXT_UT_METADATA_MSG_MAX + 16384];
    for (uint32_t piece = 0; piece < 3; piece++) {
        size_t n = ext_ut_metadata_encode_data_header(msg, EXT_UT_METADATA_MSG_MAX, piece, size);
        cr_assert(n > 0 && n <= EXT_UT_METADATA_MSG_MAX);
        uint32_t dlen = ext_ut_metadata_piece_len(size, piece);
        for (uint32_t i = 0; i < dlen; i++)
            msg[n + i] = (uint8_t)(i * 13 + piece);
        ext_ut_metadata_msg m;
        ext_error err = {0};
        cr_assert_eq(ext_ut_metadata_decode(msg, n + dlen, size, &m, &err), EXT_OK, "%s at %zu", err.what,
                     err.offset);
        cr_assert_eq(m.type, EXT_UT_METADATA_DATA);
        cr_assert_eq(m.piece, piece);
        cr_assert_eq(m.total_size, size);
        cr_assert_eq(m.data, msg + n);
        cr_assert_eq(m.data_len, dlen);
        /* without a known size, total_size is the reference */
        cr_assert_eq(ext_ut_metadata_decode(msg, n + dlen, 0, &m, &err), EXT_OK);
        /* one byte short or long */
        cr_assert_eq(ext_ut_metadata_decode(msg, n + dlen - 1, size, &m, &err), EXT_ERROR);
        cr_assert(strstr(err.what, "data length") != NULL, "%s", err.what);
        cr_assert_eq(err.offset, n);
        cr_assert_eq(ext_ut_metadata_decode(msg, n + dlen + 1, size, &m, &err), EXT_ERROR);
    }
    size_t n = ext_ut_metadata_encode_data_header(msg, EXT_UT_METADATA_MSG_MAX, 1, 100);
    cr_assert_eq(n, 0, "piece beyond total_size");
    cr_assert_eq(ext_ut_metadata_encode_data_header(msg, EXT_UT_METADATA_MSG_MAX, 0, 0), 0);
    cr_assert_eq(ext_ut_metadata_encode_data_header(msg, EXT_UT_METADATA_MSG_MAX, 0, EXT_METADATA_SIZE_MAX + 1), 0);
    n = ext_ut_metadata_encode_data_header(msg, EXT_UT_METADATA_MSG_MAX, 4095, EXT_METADATA_SIZE_MAX);
    cr_assert_arr_eq(msg, "d8:msg_typei1e5:piecei4095e10:total_sizei67108864ee", n);
    for (size_t cap = 0; cap < n; cap++)
        cr_assert_eq(ext_ut_metadata_encode_data_header(msg, cap, 4095, EXT_METADATA_SIZE_MAX), 0);
}

Test(ut_metadata, bad_messages)
{
    static const struct {
        const char *in;
        size_t len;
        uint32_t known;
        const char *what;
    } cases[] = {
        {C("d8:msg_typei0e5:piecei-1ee"), 0, "piece"},
        {C("d8:msg_typei0e5:piecei4294967296ee"), 0, "piece"},          /* not a uint32 */
        {C("d8:msg_typei2e5:piecei-1ee"), 0, "piece"},
        {C("d8:msg_typei0ee"), 0, "piece"},
        {C("d8:msg_type1:05:piecei0ee"), 0, "msg_type"},
        {C("d5:piecei0ee"), 0, "msg_type"},
        {C("d8:msg_typei0e5:piecei0eeXY"), 0, "trailing"},
        {C("d8:msg_typei2e5:piecei0eeX"), 0, "trailing"},
        {C("d8:msg_typei1e5:piecei0eeabc"), 0, "total_size"},
        {C("d8:msg_typei1e5:piecei0e10:total_sizei0eee"), 0, "total_size"},
        {C("d8:msg_typei1e5:piecei0e10:total_sizei67108865ee"), 0, "total_size"},
        {C("d8:msg_typei1e5:piecei0e10:total_sizei3eeabc"), 4, "differs"},
        {C("d8:msg_typei1e5:piecei1e10:total_sizei3eeabc"), 0, "beyond"},
        {C("li1ee"), 0, "not a dictionary"},
        {C("d8:msg_typei0e"), 0, "bencode"},
        {C(""), 0, "bencode"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ext_ut_metadata_msg m;
        ext_error err = {0};
        cr_assert_eq(ext_ut_metadata_decode((const uint8_t *)cases[i].in, cases[i].len, cases[i].known, &m, &err),
                     EXT_ERROR, "case %zu", i);
        cr_assert(strstr(err.what, cases[i].what) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, err.what,
                  cases[i].what);
        cr_assert_eq(m.data, NULL);
    }
}

/* A request (or reject) for a piece beyond the metadata is well-formed: the server answers it with a reject (BEP 9),
 * it does not close. */
Test(ut_metadata, request_beyond_the_metadata_decodes_for_a_reject)
{
    ext_ut_metadata_msg m;
    ext_error err = {0};
    cr_assert_eq(ext_ut_metadata_decode(S("d8:msg_typei0e5:piecei4ee"), 4 * 16384, &m, &err), EXT_OK, "%s", err.what);
    cr_assert_eq(m.type, EXT_UT_METADATA_REQUEST);
    cr_assert_eq(m.piece, 4, "piece == count");
    cr_assert_eq(ext_ut_metadata_piece_len(4 * 16384, m.piece), 0, "the caller sees it is out of range");
    cr_assert_eq(ext_ut_metadata_decode(S("d8:msg_typei0e5:piecei4096ee"), 0, &m, &err), EXT_OK, "beyond 64 MiB");
    cr_assert_eq(m.piece, 4096);
    cr_assert_eq(ext_ut_metadata_decode(S("d8:msg_typei0e5:piecei4294967295ee"), 1, &m, &err), EXT_OK);
    cr_assert_eq(m.piece, UINT32_MAX);
    cr_assert_eq(ext_ut_metadata_decode(S("d8:msg_typei2e5:piecei9ee"), 16384, &m, &err), EXT_OK);
    cr_assert_eq(m.type, EXT_UT_METADATA_REJECT);
    cr_assert_eq(m.piece, 9);
    /* and the reject for it can be written, echoing the index */
    uint8_t buf[EXT_UT_METADATA_MSG_MAX];
    size_t n = ext_ut_metadata_encode_reject(buf, sizeof buf, UINT32_MAX);
    cr_assert_arr_eq(buf, "d8:msg_typei2e5:piecei4294967295ee", n);
    for (size_t cap = 0; cap < n; cap++)
        cr_assert_eq(ext_ut_metadata_encode_reject(buf, cap, UINT32_MAX), 0);
}

Test(ut_metadata, unknown_msg_type_is_ignored)
{
    ext_ut_metadata_msg m;
    ext_error err;
    cr_assert_eq(ext_ut_metadata_decode(S("d8:msg_typei3e5:piecei0ee"), 0, &m, &err), EXT_IGNORE);
    cr_assert_eq(ext_ut_metadata_decode(S("d8:msg_typei-7ee"), 0, &m, &err), EXT_IGNORE);
    /* unknown keys in a known message are ignored too */
    cr_assert_eq(ext_ut_metadata_decode(S("d3:foo3:bar8:msg_typei0e5:piecei1ee"), 0, &m, &err), EXT_OK);
    cr_assert_eq(m.piece, 1);
}
