/* Tests of backend-real/lib/shard (--shard=K/N): the documented shard function (first 8 bytes of the info-hash,
 * big-endian, modulo N), that N shards cover every torrent exactly once, the parsing of K/N with its messages, and
 * the --shard option of hekate's command line. */
#include <criterion/criterion.h>

#include <string.h>

#include "options.h"
#include "shard.h"

Test(shard, first_eight_bytes_big_endian_mod_n)
{
    uint8_t ih[20];
    for (int i = 0; i < 20; i++)
        ih[i] = (uint8_t)(0x01 + 0x22 * i); /* 01 23 45 67 89 ab cd ef, then bytes that must not matter */
    cr_assert_eq(ih[7], 0xef);
    const uint64_t x = 0x0123456789abcdefull; /* 81985529216486895 */
    cr_assert_eq(hk_shard_of(ih, 3), (uint32_t)(x % 3));
    cr_assert_eq(hk_shard_of(ih, 3), 0);
    cr_assert_eq(hk_shard_of(ih, 7), (uint32_t)(x % 7));
    cr_assert_eq(hk_shard_of(ih, 1000), 895);
    cr_assert_eq(hk_shard_of(ih, 1), 0);
    uint8_t other[20];
    memcpy(other, ih, 20);
    for (int i = 8; i < 20; i++)
        other[i] ^= 0xff;
    cr_assert_eq(hk_shard_of(other, 1000), 895, "bytes 8..19 are not part of the function");
    uint8_t top[20] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    cr_assert_eq(hk_shard_of(top, 10), (uint32_t)(UINT64_MAX % 10)); /* unsigned: no sign bit */
}

Test(shard, every_hash_in_exactly_one_shard)
{
    uint8_t ih[20] = { 0 };
    for (uint32_t n = 1; n <= 9; n++) {
        for (uint32_t i = 0; i < 500; i++) {
            ih[0] = (uint8_t)(i * 37);
            ih[5] = (uint8_t)i;
            ih[7] = (uint8_t)(i >> 3);
            unsigned owners = 0;
            for (uint32_t k = 0; k < n; k++)
                owners += hk_shard_has(ih, k, n);
            cr_assert_eq(owners, 1, "n %u hash %u: %u owners", n, i, owners);
        }
    }
    cr_assert(hk_shard_has(ih, 0, 0), "no shard configured: every torrent is served");
}

Test(shard, parse_k_of_n)
{
    uint32_t k = 99, n = 99;
    char err[256];
    cr_assert_eq(hk_shard_parse("--shard", "0/3", &k, &n, err, sizeof err), 0);
    cr_assert(k == 0 && n == 3);
    cr_assert_eq(hk_shard_parse("--shard", "2/3", &k, &n, err, sizeof err), 0);
    cr_assert(k == 2 && n == 3);
    cr_assert_eq(hk_shard_parse("--shard", "0/1", &k, &n, err, sizeof err), 0);
    cr_assert_eq(hk_shard_parse("--shard", "65535/65536", &k, &n, err, sizeof err), 0);
    cr_assert(k == 65535 && n == 65536);
    static const char *const bad[] = { "", "3", "/3", "1/", "1/0", "-1/3", "1/-3", "1/3x", " 1/3", "1 /3",
                                       "1/65537", "99999999999999999999/3", "a/b", "1//3" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        k = n = 7;
        cr_assert_eq(hk_shard_parse("--shard", bad[i], &k, &n, err, sizeof err), -1, "'%s' accepted", bad[i]);
        cr_assert(strstr(err, "--shard") && strstr(err, "K/N"), "'%s': %s", bad[i], err);
        cr_assert(k == 7 && n == 7, "nothing is stored on error");
    }
    cr_assert_eq(hk_shard_parse("--shard", "3/3", &k, &n, err, sizeof err), -1);
    cr_assert(strstr(err, "K must be below N") && strstr(err, "numbered from 0"), "%s", err);
}

static hk_options_result parse3(hk_options *o, const char *a1, const char *a2, char *err, size_t errlen)
{
    static char s0[] = "hekate", s1[64], s2[64];
    snprintf(s1, sizeof s1, "%s", a1);
    snprintf(s2, sizeof s2, "%s", a2);
    char *argv[] = { s0, s1, s2, NULL };
    return hk_options_parse(o, 3, argv, err, errlen);
}

Test(shard, the_shard_option)
{
    hk_options o;
    char err[512] = "";
    cr_assert_eq(parse3(&o, "--shard=1/4", "dir", err, sizeof err), HK_OPTIONS_RUN, "%s", err);
    cr_assert(o.shard_k == 1 && o.shard_n == 4);
    cr_assert_eq(parse3(&o, "-t", "dir", err, sizeof err), HK_OPTIONS_RUN, "%s", err);
    cr_assert(o.shard_text == NULL && o.shard_n == 0, "no --shard: every torrent");
    cr_assert_eq(parse3(&o, "--shard=4/4", "dir", err, sizeof err), HK_OPTIONS_ERROR);
    cr_assert(strstr(err, "--shard") && strstr(err, "4/4"), "%s", err);
    cr_assert_eq(parse3(&o, "--shard=x", "dir", err, sizeof err), HK_OPTIONS_ERROR);
    cr_assert(strstr(err, "--shard: 'x' is not K/N"), "%s", err);
}
