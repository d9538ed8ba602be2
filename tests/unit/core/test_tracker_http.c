/* Tracker URLs, HTTP announce URLs and bencoded announce replies (core/tracker_http.h). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tracker_http.h"

static hk_tracker_url parse_ok(const char *url)
{
    hk_tracker_url u;
    char err[128] = "";
    cr_assert_eq(hk_tracker_url_parse(url, &u, err, sizeof err), 0, "%s: %s", url, err);
    return u;
}

static void parse_bad(const char *url, const char *what)
{
    hk_tracker_url u;
    char err[128] = "";
    cr_assert_eq(hk_tracker_url_parse(url, &u, err, sizeof err), -1, "%s accepted", url);
    cr_assert(strstr(err, what), "%s: error '%s' does not say '%s'", url, err, what);
}

static void expect_host(const char *url, const hk_tracker_url *u, const char *host)
{
    cr_assert_eq(u->host_len, strlen(host));
    cr_assert(memcmp(url + u->host_off, host, u->host_len) == 0);
}

Test(tracker_url, schemes_ports_and_paths)
{
    const char *a = "http://tracker.example.org/announce";
    hk_tracker_url u = parse_ok(a);
    cr_assert_eq(u.scheme, HK_TRACKER_HTTP);
    cr_assert_eq(u.port, 80);
    expect_host(a, &u, "tracker.example.org");
    cr_assert_eq(u.path_len, strlen("/announce"));

    const char *b = "HTTPS://t.example:8443/a?passkey=x#frag";
    u = parse_ok(b);
    cr_assert_eq(u.scheme, HK_TRACKER_HTTPS);
    cr_assert_eq(u.port, 8443);
    cr_assert_eq(u.path_len, strlen("/a?passkey=x"), "the fragment is not part of the path");

    const char *c = "https://t.example";
    u = parse_ok(c);
    cr_assert_eq(u.port, 443);
    cr_assert_eq(u.path_len, 0);

    const char *d = "udp://[2001:db8::1]:6969/announce";
    u = parse_ok(d);
    cr_assert_eq(u.scheme, HK_TRACKER_UDP);
    cr_assert(u.ipv6_literal);
    expect_host(d, &u, "2001:db8::1");
    cr_assert_eq(u.port, 6969);

    const char *e = "udp://127.0.0.1:1";
    u = parse_ok(e);
    cr_assert_eq(u.port, 1);
    expect_host(e, &u, "127.0.0.1");
}

Test(tracker_url, rejects_with_position)
{
    parse_bad("wss://tracker.example/announce", "unsupported scheme");
    parse_bad("ftp://x/", "unsupported scheme");
    parse_bad("udp://tracker.example/announce", "needs a port");
    parse_bad("http://tracker.example:0/", "port out of range");
    parse_bad("http://tracker.example:65536/", "port out of range");
    parse_bad("http://tracker.example:/", "port out of range");
    parse_bad("http://user:pw@tracker.example/", "user info");
    parse_bad("http:///announce", "empty host");
    parse_bad("http://[zz::1]/", "IPv6 literal");
    parse_bad("http://[::1/", "IPv6 literal");
    parse_bad("http://tracker.example/an nounce", "space or control");
    parse_bad("http://tracker.example/\x01", "space or control");
    parse_bad("http://tracker.example\\x/", "unexpected byte");
    char long_host[400] = "http://";
    memset(long_host + 7, 'a', 300);
    parse_bad(long_host, "too long");
    hk_tracker_url u;
    char err[128];
    hk_tracker_url_parse("http://t:70000/", &u, err, sizeof err);
    cr_assert(strstr(err, "at byte 9"), "the error names the offset of the port: %s", err);
}

static hk_announce_params params(void)
{
    hk_announce_params p;
    memset(&p, 0, sizeof p);
    for (int i = 0; i < 20; i++)
        p.info_hash[i] = (uint8_t)(i * 13 + 0x41); /* mixes unreserved letters and bytes to escape */
    memcpy(p.peer_id, "-HK0100-abcdefghij~.", 20);
    p.port = 6881;
    p.uploaded = 123456789012ull;
    p.event = HK_EVENT_STARTED;
    p.key = 0xDEADBEEF;
    return p;
}

Test(tracker_http, announce_url_exact)
{
    hk_announce_params p = params();
    char buf[1024];
    size_t n = hk_http_announce_url("http://t.example/announce", &p, buf, sizeof buf);
    char ih[61];
    hk_percent_encode(p.info_hash, 20, ih, sizeof ih);
    char want[1024];
    snprintf(want, sizeof want,
             "http://t.example/announce?info_hash=%s&peer_id=-HK0100-abcdefghij~.&port=6881&uploaded=123456789012"
             "&downloaded=0&left=0&compact=1&numwant=0&no_peer_id=1&event=started&key=DEADBEEF", ih);
    cr_assert_str_eq(buf, want);
    cr_assert_eq(n, strlen(want));
    /* A=0x41 stays, 0x4e 'N' stays, 0x5b '[' is escaped */
    cr_assert(strncmp(ih, "AN%5Bh", 6) == 0, "encoding: %s", ih);
}

Test(tracker_http, announce_url_joins_existing_query_and_echoes_tracker_id)
{
    hk_announce_params p = params();
    p.event = HK_EVENT_NONE;
    const uint8_t tid[] = { 'i', 'd', ' ', 0xff };
    p.tracker_id = tid;
    p.tracker_id_len = sizeof tid;
    p.numwant = -1;
    char buf[1024];
    hk_http_announce_url("https://t.example/a?passkey=abc#x", &p, buf, sizeof buf);
    cr_assert(strncmp(buf, "https://t.example/a?passkey=abc&info_hash=", 42) == 0, "%s", buf);
    cr_assert(!strstr(buf, "event="), "a regular announce carries no event");
    cr_assert(strstr(buf, "&numwant=-1&"));
    cr_assert(strstr(buf, "&trackerid=id%20%FF"), "%s", buf);
    cr_assert(!strchr(buf, '#'));
    hk_http_announce_url("http://t.example/a?", &p, buf, sizeof buf);
    cr_assert(strncmp(buf, "http://t.example/a?info_hash=", 29) == 0, "%s", buf);
}

Test(tracker_http, announce_url_truncates_like_snprintf)
{
    hk_announce_params p = params();
    char full[1024], small[40];
    size_t n = hk_http_announce_url("http://t.example/announce", &p, full, sizeof full);
    size_t m = hk_http_announce_url("http://t.example/announce", &p, small, sizeof small);
    cr_assert_eq(n, m);
    cr_assert_eq(strlen(small), sizeof small - 1);
    cr_assert(strncmp(full, small, sizeof small - 1) == 0);
    cr_assert_eq(hk_http_announce_url("http://t.example/announce", &p, NULL, 0), n);
}

static int decode(const char *body, hk_announce_reply *r, char *err)
{
    return hk_http_reply_decode((const uint8_t *)body, strlen(body), r, err, 160);
}

Test(tracker_http, reply_ok)
{
    hk_announce_reply r;
    char err[160];
    cr_assert_eq(decode("d8:completei5e10:incompletei2e8:intervali1800e12:min intervali900e5:peers0:"
                        "10:tracker id3:abc15:warning message4:hmm!e", &r, err), 0, "%s", err);
    cr_assert(!r.failed);
    cr_assert_eq(r.interval, 1800);
    cr_assert_eq(r.min_interval, 900);
    cr_assert_eq(r.complete, 5);
    cr_assert_eq(r.incomplete, 2);
    cr_assert(r.has_tracker_id);
    cr_assert_eq(r.tracker_id_len, 3);
    cr_assert(memcmp(r.tracker_id, "abc", 3) == 0);
    cr_assert(r.has_warning);
    cr_assert_str_eq(r.warning, "hmm!");

    cr_assert_eq(decode("d5:peersld2:ip9:127.0.0.14:porti1eeee", &r, err), 0, "a non-compact list is ignored");
    cr_assert_eq(r.interval, -1);
    cr_assert_eq(r.min_interval, -1);
    cr_assert(!r.has_tracker_id);
}

Test(tracker_http, reply_failure_reason_printable)
{
    hk_announce_reply r;
    char err[160];
    cr_assert_eq(decode("d14:failure reason21:unregistered\ntorrent!e", &r, err), 0);
    cr_assert(r.failed);
    cr_assert_str_eq(r.failure, "unregistered?torrent!");
    char big[600];
    int n = snprintf(big, sizeof big, "d14:failure reason300:");
    memset(big + n, 'x', 300);
    snprintf(big + n + 300, sizeof big - (size_t)n - 300, "e");
    cr_assert_eq(decode(big, &r, err), 0);
    cr_assert_eq(strlen(r.failure), HK_REPLY_TEXT_MAX);
    cr_assert(strcmp(r.failure + HK_REPLY_TEXT_MAX - 3, "...") == 0, "a cut text ends with ...");
}

static void bad(const char *body, const char *what)
{
    hk_announce_reply r;
    char err[160] = "";
    cr_assert_eq(hk_http_reply_decode((const uint8_t *)body, strlen(body), &r, err, sizeof err), -1, "%s accepted",
                 body);
    cr_assert(strstr(err, what), "'%s': '%s' does not say '%s'", body, err, what);
}

Test(tracker_http, reply_errors)
{
    bad("", "empty reply");
    bad("<html>500</html>", "not bencode");
    bad("d8:intervali1800e", "not bencode");
    bad("d8:intervali1800eeXX", "not bencode");
    bad("le", "not a dictionary");
    bad("i3e", "not a dictionary");
    bad("d8:interval4:1800e", "`interval` is not an integer");
    bad("d8:intervali-5ee", "`interval` is negative");
    bad("d12:min intervalli1eee", "`min interval` is not an integer");
    bad("d14:failure reasoni1ee", "`failure reason` is not a string");
    bad("d15:warning messagedee", "`warning message` is not a string");
    bad("d10:tracker idi7ee", "`tracker id` is not a string");
    char big[200];
    int n = snprintf(big, sizeof big, "d10:tracker id65:");
    memset(big + n, 'a', 65);
    snprintf(big + n + 65, sizeof big - (size_t)n - 65, "e");
    bad(big, "`tracker id` is too long");
    bad("d8:intervali99999999999999999999ee", "not bencode");
    char err[160];
    hk_announce_reply r;
    hk_http_reply_decode((const uint8_t *)"d8:intervali-5ee", 16, &r, err, sizeof err);
    cr_assert(strstr(err, "at byte 11"), "names the offset: %s", err);
}

Test(tracker_http, event_names)
{
    cr_assert_str_eq(hk_announce_event_name(HK_EVENT_STARTED), "started");
    cr_assert_str_eq(hk_announce_event_name(HK_EVENT_STOPPED), "stopped");
    cr_assert_str_eq(hk_announce_event_name(HK_EVENT_COMPLETED), "completed");
    cr_assert_str_eq(hk_announce_event_name(HK_EVENT_NONE), "");
}
