/* Unit tests for mi_magnet (core/metainfo): the name, every tracker as tr= in tier order (deduplicated,
 * percent-encoded), the seeder's own address as x.pe=, snprintf-like truncation; and hekate-show's --peer option.
 * The comparison with transmission-show's links for real tool-made torrents is in test_metainfo.c (check_X). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures.h"
#include "infohash.h"
#include "metainfo.h"

/* A one-byte, one-piece torrent named `name` whose top level also holds `extra` (bencoded keys before "info"). */
static mi_torrent *torrent(const char *extra, const char *name)
{
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "d%s4:infod6:lengthi1e4:name%zu:%s12:piece lengthi1e6:pieces20:", extra,
                     strlen(name), name);
    cr_assert(n > 0 && (size_t)n + 20 + 3 < sizeof buf);
    memset(buf + n, 'p', 20);
    memcpy(buf + n + 20, "ee", 3);
    mi_torrent *t;
    mi_error err;
    int rc = mi_parse((const uint8_t *)buf, (size_t)n + 22, &t, &err);
    cr_assert_eq(rc, 0, "parse failed: %s", err.what);
    return t;
}

static char *magnet(const mi_torrent *t, const char *peer)
{
    size_t n = mi_magnet(t, peer, NULL, 0);
    char *m = malloc(n + 1);
    cr_assert_not_null(m);
    cr_assert_eq(mi_magnet(t, peer, m, n + 1), n);
    cr_assert_eq(strlen(m), n);
    return m;
}

static void expect(const mi_torrent *t, const char *peer, const char *tail)
{
    char hex[IH_HEX_LEN + 1], want[4096];
    ih_hex(t->info_hash, hex);
    snprintf(want, sizeof want, "magnet:?xt=urn:btih:%s%s", hex, tail);
    char *m = magnet(t, peer);
    cr_assert_str_eq(m, want);
    free(m);
}

Test(magnet, name_is_percent_encoded)
{
    mi_torrent *t = torrent("", "a b~c-d_e.f+\xc3\xa9&=%");
    expect(t, NULL, "&dn=a%20b~c-d_e.f%2B%C3%A9%26%3D%25");
    mi_free(t);
}

Test(magnet, every_tracker_in_tier_order_deduplicated_and_encoded)
{
    /* announce is ignored when announce-list has a URL (BEP 12); a repeat and an empty tier are dropped */
    mi_torrent *t = torrent("8:announce15:http://single/a13:announce-listll20:http://a:80/ann?x=1&16:udp://b.org:6969e"
                            "lel20:http://a:80/ann?x=1&11:https://c/%ee", "n");
    expect(t, NULL, "&dn=n&tr=http%3A%2F%2Fa%3A80%2Fann%3Fx%3D1%26&tr=udp%3A%2F%2Fb.org%3A6969"
                    "&tr=https%3A%2F%2Fc%2F%25");
    mi_free(t);
}

Test(magnet, announce_alone_is_one_tracker_and_none_gives_no_tr)
{
    mi_torrent *t = torrent("8:announce27:http://127.0.0.1:1/announce", "x");
    expect(t, NULL, "&dn=x&tr=http%3A%2F%2F127.0.0.1%3A1%2Fannounce");
    mi_free(t);
    t = torrent("", "x");
    expect(t, NULL, "&dn=x");
    mi_free(t);
}

Test(magnet, own_address_as_x_pe)
{
    mi_torrent *t = torrent("8:announce10:http://t/a", "x");
    expect(t, "127.0.0.1:6881", "&dn=x&tr=http%3A%2F%2Ft%2Fa&x.pe=127.0.0.1:6881");
    expect(t, "[2001:db8::1]:51413", "&dn=x&tr=http%3A%2F%2Ft%2Fa&x.pe=[2001:db8::1]:51413");
    /* not a numeric address and port: left out rather than written unencoded */
    const char *bad[] = {"", "6881", "host.example:1", "1.2.3.4:1&tr=x", "1.2.3.4 :1",
                         "1111111111111111111111111111111111111111111111111111111111111111111111:1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect(t, bad[i], "&dn=x&tr=http%3A%2F%2Ft%2Fa");
    mi_free(t);
}

Test(magnet, truncates_like_snprintf)
{
    mi_torrent *t = torrent("13:announce-listll10:http://t/a10:http://u/bee", "name");
    char *full = magnet(t, "10.0.0.1:2");
    size_t n = strlen(full);
    char buf[512];
    for (size_t cap = 1; cap <= n + 1; cap++) {
        memset(buf, 'Z', sizeof buf);
        cr_assert_eq(mi_magnet(t, "10.0.0.1:2", buf, cap), n);
        cr_assert_eq(strlen(buf), cap - 1, "cap %zu", cap);
        cr_assert_eq(strncmp(buf, full, cap - 1), 0, "cap %zu", cap);
        cr_assert_eq(buf[cap], 'Z', "cap %zu: wrote past the buffer", cap);
    }
    cr_assert_eq(mi_magnet(t, "10.0.0.1:2", NULL, 0), n);
    free(full);
    mi_free(t);
}

#define SHOW HEKATE_BINARY_DIR "/backend-real/hekate-show"

Test(magnet, hekate_show_peer_option)
{
    char dir[] = "/tmp/hekate-magnet-XXXXXX", path[256];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.torrent", dir);
    const char tor[] = "d8:announce10:http://t/a4:infod6:lengthi1e4:name1:x12:piece lengthi1e6:pieces20:"
                       "ppppppppppppppppppppee";
    cr_assert_eq(fx_write(path, tor, sizeof tor - 1), 0);
    mi_torrent *t;
    cr_assert_eq(mi_parse((const uint8_t *)tor, sizeof tor - 1, &t, NULL), 0);
    char *want = magnet(t, "127.0.0.1:7000");
    int st;
    char *out = fx_sh_output(&st, "'%s' -m --peer=127.0.0.1:7000 '%s'", SHOW, path);
    cr_assert_eq(st, 0, "%s", out);
    cr_assert(strncmp(out, want, strlen(want)) == 0 && strcmp(out + strlen(want), "\n") == 0, "%s", out);
    cr_assert(strstr(out, "&tr=http%3A%2F%2Ft%2Fa&x.pe=127.0.0.1:7000\n"), "%s", out);
    free(out);
    const char *bad[] = {"--peer=localhost:1", "--peer=1.2.3.4:0", "--peer=1.2.3.4:65536", "--peer=[::1:1",
                         "--peer=::1:1", "--peer=1.2.3.4"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        out = fx_sh_output(&st, "'%s' -m %s '%s' 2>&1", SHOW, bad[i], path);
        cr_assert_eq(st, 2, "%s: %s", bad[i], out);
        cr_assert(strstr(out, "hekate-show: --peer: "), "%s: %s", bad[i], out);
        free(out);
    }
    out = fx_sh_output(&st, "'%s' -m --peer=[::1]:1 '%s'", SHOW, path);
    cr_assert_eq(st, 0, "%s", out);
    cr_assert(strstr(out, "&x.pe=[::1]:1\n"), "%s", out);
    free(out);
    free(want);
    mi_free(t);
    unlink(path);
    rmdir(dir);
}
