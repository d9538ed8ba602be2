/* Tests of backend-real/lib/ops/control_proto: every command and its arguments, the size cap, control bytes, unknown
 * commands and bad arguments (each with its message), and the JSON writer: escaping (quotes, backslashes, control
 * bytes, invalid UTF-8 as \u00XX, valid UTF-8 kept), overflow (cut, flagged, NUL-terminated, never past cap) and
 * the error reply. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_proto.h"

static hk_ctl_request req;
static char err[256];

static int parse(const char *s)
{
    return hk_ctl_parse(s, strlen(s), &req, err, sizeof err);
}

static void refused(const char *s, const char *why)
{
    cr_assert_eq(parse(s), -1, "accepted: %s", s);
    cr_assert(strstr(err, why), "%s: error %s, expected %s", s, err, why);
}

Test(control_proto, every_command)
{
    static const struct { const char *line; hk_ctl_cmd cmd; } cases[] = {
        { "status", HK_CTL_STATUS }, { "torrents", HK_CTL_TORRENTS }, { "peers", HK_CTL_PEERS },
        { "rescan", HK_CTL_RESCAN }, { "reload-config", HK_CTL_RELOAD_CONFIG }, { "  status\t ", HK_CTL_STATUS },
        { "status\r", HK_CTL_STATUS },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cr_assert_eq(parse(cases[i].line), 0, "%s: %s", cases[i].line, err);
        cr_assert_eq(req.cmd, cases[i].cmd);
        cr_assert_str_eq(hk_ctl_cmd_name(req.cmd), strtok(strdup(cases[i].line), " \t\r"));
    }
    cr_assert_eq(parse("torrents"), 0);
    cr_assert_eq(req.top, HK_CTL_DEFAULT_TOP);
}

Test(control_proto, top)
{
    cr_assert_eq(parse("torrents --top 2"), 0);
    cr_assert_eq(req.top, 2);
    cr_assert_eq(parse("torrents --top 1000"), 0);
    cr_assert_eq(req.top, 1000);
    refused("torrents --top 0", "--top needs a number from 1 to 1000");
    refused("torrents --top 1001", "--top needs");
    refused("torrents --top 99999999999999999999", "--top needs");
    refused("torrents --top -1", "--top needs");
    refused("torrents --top", "--top needs");
    refused("torrents --top 2 3", "unexpected argument");
    refused("torrents --bottom 2", "expected --top N");
}

Test(control_proto, info_hashes)
{
    const char *hex = "00112233445566778899AABBCCDDEEFFaabbccdd";
    static const uint8_t want[20] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99,
                                      0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0xaa, 0xbb, 0xcc, 0xdd };
    const char *cmds[] = { "torrent", "remove", "verify" };
    for (size_t i = 0; i < 3; i++) {
        char line[128];
        snprintf(line, sizeof line, "%s %s", cmds[i], hex);
        cr_assert_eq(parse(line), 0, "%s: %s", line, err);
        cr_assert_eq(memcmp(req.info_hash, want, 20), 0);
        snprintf(line, sizeof line, "%s %.39s", cmds[i], hex);
        refused(line, "expected an info-hash of 40 hex digits");
        snprintf(line, sizeof line, "%s %.39sg", cmds[i], hex);
        refused(line, "40 hex digits");
        snprintf(line, sizeof line, "%s %s x", cmds[i], hex);
        refused(line, "unexpected argument");
        refused(cmds[i], "40 hex digits");
    }
}

Test(control_proto, add_takes_the_rest_of_the_line)
{
    cr_assert_eq(parse("add /srv/my torrents/a b.torrent  "), 0);
    cr_assert_eq(req.cmd, HK_CTL_ADD);
    cr_assert_str_eq(req.path, "/srv/my torrents/a b.torrent");
    refused("add", "expected the path of a .torrent file");
    refused("add   \t", "expected the path");
}

Test(control_proto, refusals)
{
    refused("", "empty request");
    refused("   ", "empty request");
    refused("frobnicate", "unknown command");
    refused("STATUS", "unknown command");
    refused("statusx", "unknown command");
    refused("status now", "status: unexpected argument");
    refused("peers 1", "peers: unexpected argument");
    refused("status\x01", "control byte (0x01) at offset 6");
    refused("add /a\x7f.torrent", "control byte (0x7f)");
    cr_assert_eq(hk_ctl_parse("status\0x", 8, &req, err, sizeof err), -1);
    cr_assert(strstr(err, "control byte (0x00) at offset 6"), "%s", err);
}

Test(control_proto, size_cap)
{
    char *line = malloc(HK_CTL_MAX_LINE + 2);
    memcpy(line, "add /", 5);
    memset(line + 5, 'x', HK_CTL_MAX_LINE - 5);
    cr_assert_eq(hk_ctl_parse(line, HK_CTL_MAX_LINE, &req, err, sizeof err), 0, "%s", err);
    cr_assert_eq(strlen(req.path), HK_CTL_MAX_LINE - 4);
    line[HK_CTL_MAX_LINE] = '\r'; /* the cap does not count a trailing '\r' */
    cr_assert_eq(hk_ctl_parse(line, HK_CTL_MAX_LINE + 1, &req, err, sizeof err), 0, "%s", err);
    line[HK_CTL_MAX_LINE] = 'x';
    cr_assert_eq(hk_ctl_parse(line, HK_CTL_MAX_LINE + 1, &req, err, sizeof err), -1);
    cr_assert(strstr(err, "request too long (at most 4096 bytes)"), "%s", err);
    free(line);
}

Test(control_proto, error_text_fits_any_buffer)
{
    char small[8];
    cr_assert_eq(hk_ctl_parse("frobnicate", 10, &req, small, sizeof small), -1);
    cr_assert_eq(strlen(small), sizeof small - 1);
    cr_assert_eq(hk_ctl_parse("frobnicate", 10, &req, small, 0), -1); /* errlen 0: nothing written */
}

static char out[256];
static hk_jw w;

Test(control_proto, json_escaping)
{
    hk_jw_init(&w, out, sizeof out);
    const char s[] = "a\"b\\c\n\x01\x7f \xc3\xa9 \xff \xe2\x82 \xed\xa0\x80 \xf0\x9f\x98\x80";
    hk_jw_string(&w, s, sizeof s - 1);
    cr_assert_not(w.overflow);
    cr_assert_str_eq(out, "\"a\\\"b\\\\c\\u000a\\u0001\\u007f \xc3\xa9 \\u00ff \\u00e2\\u0082 \\u00ed\\u00a0\\u0080 "
                          "\xf0\x9f\x98\x80\"");
    hk_jw_init(&w, out, sizeof out);
    hk_jw_string(&w, "a\0b", 3);
    cr_assert_str_eq(out, "\"a\\u0000b\"");
}

Test(control_proto, json_objects)
{
    hk_jw_init(&w, out, sizeof out);
    hk_jw_raw(&w, "{\"ok\":true");
    hk_jw_ku64(&w, "n", 18446744073709551615ull);
    hk_jw_key(&w, "l");
    hk_jw_raw(&w, "[");
    hk_jw_raw(&w, "{");
    hk_jw_key(&w, "h");
    hk_jw_hex(&w, (const uint8_t *)"\x01\xab", 2);
    hk_jw_key(&w, "b");
    hk_jw_bool(&w, false);
    hk_jw_key(&w, "d");
    hk_jw_double(&w, 1.5);
    hk_jw_raw(&w, "}]}\n");
    cr_assert_str_eq(out,
                     "{\"ok\":true,\"n\":18446744073709551615,\"l\":[{\"h\":\"01ab\",\"b\":false,\"d\":1.500}]}\n");
}

Test(control_proto, json_overflow)
{
    char small[10];
    memset(small, 'Z', sizeof small);
    hk_jw_init(&w, small, 8);
    hk_jw_raw(&w, "1234");
    hk_jw_raw(&w, "5678"); /* does not fit: nothing of it is written */
    cr_assert(w.overflow);
    cr_assert_str_eq(small, "1234");
    hk_jw_raw(&w, "5"); /* after an overflow nothing more is written either */
    cr_assert_str_eq(small, "1234");
    cr_assert_eq(small[8], 'Z');
    hk_jw_init(&w, small, 0); /* cap 0: nothing is ever written */
    hk_jw_raw(&w, "x");
    cr_assert(w.overflow);
    cr_assert_eq(small[0], '1');
}

Test(control_proto, error_reply)
{
    hk_jw_init(&w, out, sizeof out);
    hk_jw_raw(&w, "{\"ok\":true,\"partial\"");
    hk_ctl_error_reply(&w, "bad \"thing\"");
    cr_assert_str_eq(out, "{\"ok\":false,\"error\":\"bad \\\"thing\\\"\"}\n");
}
