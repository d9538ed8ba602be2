/* Tests of backend-real/lib/options: hekate's command line. Defaults, every option in short and long form, strict
 * numbers (no sign, no junk, no overflow, ranges), size suffixes, fractional seconds, option conflicts, and the
 * messages that say what was wrong. */
#include <criterion/criterion.h>

#include <stdarg.h>
#include <string.h>

#include "options.h"

#define MAX_ARGS 32

/* Parses a NULL-terminated list of arguments (argv[0] is added). */
static hk_options_result parse_list(hk_options *o, char *err, size_t errlen, const char *const *args)
{
    static char *argv[MAX_ARGS];
    static char store[MAX_ARGS][256];
    int argc = 0;
    strcpy(store[argc], "hekate");
    argv[argc] = store[argc];
    argc++;
    for (const char *const *a = args; *a; a++) {
        cr_assert_lt(argc, MAX_ARGS - 1);
        snprintf(store[argc], sizeof store[argc], "%s", *a);
        argv[argc] = store[argc];
        argc++;
    }
    argv[argc] = NULL;
    err[0] = '\0';
    return hk_options_parse(o, argc, argv, err, errlen);
}

/* The same, the arguments given one by one (NULL last). */
static hk_options_result parse(hk_options *o, char *err, size_t errlen, ...)
{
    const char *args[MAX_ARGS];
    size_t n = 0;
    va_list ap;
    va_start(ap, errlen);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        cr_assert_lt(n, MAX_ARGS - 1);
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    return parse_list(o, err, errlen, args);
}

/* A command line that must be refused, and a part of the message that says why. */
typedef struct refusal {
    const char *want;
    const char *args[4]; /* NULL after the last */
} refusal;

static void expect_refusals(const refusal *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        hk_options o;
        char err[512];
        const refusal *c = &cases[i];
        hk_options_result r = parse_list(&o, err, sizeof err, c->args);
        cr_assert_eq(r, HK_OPTIONS_ERROR, "expected an error for %s %s (case %zu)", c->args[0],
                     c->args[1] ? c->args[1] : "", i);
        cr_assert(strstr(err, c->want), "message '%s' should contain '%s'", err, c->want);
    }
}

#define OK(...)                                                                                                   \
    do {                                                                                                          \
        hk_options_result r_ = parse(&o, err, sizeof err, __VA_ARGS__, NULL);                                     \
        cr_assert_eq(r_, HK_OPTIONS_RUN, "expected success, got %d: %s", r_, err);                                \
    } while (0)

#define BAD(want, ...)                                                                                            \
    do {                                                                                                          \
        hk_options_result r_ = parse(&o, err, sizeof err, __VA_ARGS__, NULL);                                     \
        cr_assert_eq(r_, HK_OPTIONS_ERROR, "expected an error for %s", #__VA_ARGS__);                             \
        cr_assert(strstr(err, want), "message '%s' should contain '%s'", err, want);                              \
    } while (0)

Test(options, defaults)
{
    hk_options o;
    char err[512];
    OK("/srv/torrents");
    hk_config d;
    hk_config_defaults(&d);
    cr_assert_eq(o.port, 6881);
    cr_assert_eq(o.family, HK_FAMILY_ANY);
    cr_assert_null(o.bind_addr);
    cr_assert_not(o.no_trackers);
    cr_assert_not(o.list);
    cr_assert_eq(o.verbosity, 0);
    cr_assert_eq(o.cfg.max_unchoked, 50);
    cr_assert_eq(o.cfg.max_peers, 500);
    cr_assert_eq(o.cfg.credit, 1u << 20);
    cr_assert_eq(o.cfg.slice, HK_SECONDS(300));
    cr_assert_eq(o.cfg.handshake_timeout, d.handshake_timeout);
    cr_assert_eq(o.cfg.idle_timeout, d.idle_timeout);
    cr_assert_eq(o.cfg.reqq, d.reqq);
    cr_assert_eq(o.cfg.max_block, d.max_block);
    cr_assert_eq(o.cfg.listen_port, 6881);
    cr_assert_eq(o.ndirs, 1);
    cr_assert_str_eq(o.dirs[0], "/srv/torrents");
    cr_assert_eq(hk_options_log_level(&o), HK_LOG_INFO);
}

Test(options, short_forms)
{
    hk_options o;
    char err[512];
    OK("-p", "7000", "-N", "8", "-C", "256K", "-T", "12.5", "-t", "-4", "-l", "-vv", "a", "b");
    cr_assert_eq(o.port, 7000);
    cr_assert_eq(o.cfg.listen_port, 7000);
    cr_assert_eq(o.cfg.max_unchoked, 8);
    cr_assert_eq(o.cfg.max_peers, 80, "max peers follows 10 x N");
    cr_assert_eq(o.cfg.credit, 256u * 1024);
    cr_assert_eq(o.cfg.slice, 12500000000ull);
    cr_assert(o.no_trackers);
    cr_assert_eq(o.family, HK_FAMILY_V4);
    cr_assert(o.list);
    cr_assert_eq(o.verbosity, 2);
    cr_assert_eq(hk_options_log_level(&o), HK_LOG_TRACE);
    cr_assert_eq(o.ndirs, 2);
    cr_assert_str_eq(o.dirs[1], "b");

    OK("-6", "-q", "-q", "-q", "d");
    cr_assert_eq(o.family, HK_FAMILY_V6);
    cr_assert_eq(hk_options_log_level(&o), HK_LOG_ERROR, "clamped at errors only");
}

Test(options, long_forms_and_timeouts)
{
    hk_options o;
    char err[512];
    OK("--port=0", "--max-unchoked", "100", "--max-peers=2000", "--credit=2M", "--slice=0", "--no-trackers",
       "--ipv6-only", "--list", "--verbose", "--handshake-timeout=2.5", "--idle-timeout", "90",
       "--unchoked-idle-timeout=0.25", "--send-stall-timeout=45", "--max-wait=600", "--keepalive-interval=30",
       "--reqq=500", "--max-block=32K", "--bind=127.0.0.1", "--max-mapped=1G", "--max-open-files=64",
       "--disk-threads=2", "dir");
    cr_assert_eq(o.port, 0);
    cr_assert_eq(o.cfg.max_unchoked, 100);
    cr_assert_eq(o.cfg.max_peers, 2000);
    cr_assert_eq(o.cfg.credit, 2u << 20);
    cr_assert_eq(o.cfg.slice, 0);
    cr_assert(o.no_trackers && o.list);
    cr_assert_eq(o.family, HK_FAMILY_V6);
    cr_assert_eq(o.verbosity, 1);
    cr_assert_eq(o.cfg.handshake_timeout, 2500000000ull);
    cr_assert_eq(o.cfg.idle_timeout, HK_SECONDS(90));
    cr_assert_eq(o.cfg.unchoked_idle_timeout, 250000000ull);
    cr_assert_eq(o.cfg.send_stall_timeout, HK_SECONDS(45));
    cr_assert_eq(o.cfg.max_wait, HK_SECONDS(600));
    cr_assert_eq(o.cfg.keepalive_interval, HK_SECONDS(30));
    cr_assert_eq(o.cfg.reqq, 500);
    cr_assert_eq(o.cfg.max_block, 32768);
    cr_assert_str_eq(o.bind_addr, "127.0.0.1");
    cr_assert_eq(o.max_mapped, 1ull << 30);
    cr_assert_eq(o.max_open_files, 64);
    cr_assert_eq(o.disk_threads, 2);
}

Test(options, operands_may_come_first_and_double_dash_ends_options)
{
    hk_options o;
    char err[512];
    OK("dir1", "-p", "7001", "dir2");
    cr_assert_eq(o.port, 7001);
    cr_assert_eq(o.ndirs, 2);
    OK("--", "-weird-dir");
    cr_assert_eq(o.ndirs, 1);
    cr_assert_str_eq(o.dirs[0], "-weird-dir");
}

Test(options, help_and_version)
{
    hk_options o;
    char err[512];
    cr_assert_eq(parse(&o, err, sizeof err, "--help", NULL), HK_OPTIONS_HELP);
    cr_assert_eq(parse(&o, err, sizeof err, "-h", NULL), HK_OPTIONS_HELP);
    cr_assert_eq(parse(&o, err, sizeof err, "--version", NULL), HK_OPTIONS_VERSION);
    cr_assert_eq(parse(&o, err, sizeof err, "-V", NULL), HK_OPTIONS_VERSION);
}

Test(options, sizes)
{
    hk_options o;
    char err[512];
    OK("-C", "16384", "d");
    cr_assert_eq(o.cfg.credit, 16384);
    OK("-C", "1G", "d");
    cr_assert_eq(o.cfg.credit, 1u << 30);
    OK("-C", "64k", "d");
    cr_assert_eq(o.cfg.credit, 65536);
    OK("-C", "3MiB", "d");
    cr_assert_eq(o.cfg.credit, 3u << 20);
    OK("-C", "512KB", "d");
    cr_assert_eq(o.cfg.credit, 512u << 10);
}

Test(options, seconds)
{
    hk_options o;
    char err[512];
    OK("-T", "0.000000001", "d");
    cr_assert_eq(o.cfg.slice, 1);
    OK("-T", "604800", "d");
    cr_assert_eq(o.cfg.slice, HK_SECONDS(604800));
}

Test(options, trackers_rescan_and_abbreviations)
{
    hk_options o;
    char err[512];
    OK("d");
    cr_assert_eq(o.announce_interval, 0, "0: the announcer's default");
    cr_assert_eq(o.announce_rate, 0);
    cr_assert_eq(o.rescan_interval, 0, "only on SIGHUP");
    OK("--announce-interval=60", "--announce-rate=3", "--rescan=1.5", "d");
    cr_assert_eq(o.announce_interval, HK_SECONDS(60));
    cr_assert_eq(o.announce_rate, 3);
    cr_assert_eq(o.rescan_interval, 1500000000ull);
    OK("--rescan=0", "d");
    cr_assert_eq(o.rescan_interval, 0);
    OK("--por=7002", "--max-u=4", "--verb", "d"); /* unambiguous abbreviations, as getopt_long allows */
    cr_assert_eq(o.port, 7002);
    cr_assert_eq(o.cfg.max_unchoked, 4);
    cr_assert_eq(o.verbosity, 1);
}

/* Command lines that must be refused, each with a part of the message that says why. */
static const refusal refusals[] = {
    /* numbers are strict: digits only, no sign, no junk, no overflow, in range */
    { "--port: 'abc' is not a number", { "-p", "abc", "d" } },
    { "--port: '' is not a number", { "--port=", "d" } },
    { "--port: '-1' is not a number", { "-p", "-1", "d" } },
    { "--port: '+80' is not a number", { "-p", "+80", "d" } },
    { "--port: ' 80' is not a number", { "-p", " 80", "d" } },
    { "--port: '80x' is not a number", { "-p", "80x", "d" } },
    { "--port: '0x50' is not a number", { "-p", "0x50", "d" } },
    { "--port: 65536 is out of range (0..65535)", { "-p", "65536", "d" } },
    { "--port: 99999999999999999999999 is out of range", { "-p", "99999999999999999999999", "d" } },
    { "--max-unchoked: 0 is out of range (1..10000)", { "-N", "0", "d" } },
    { "--max-unchoked: 10001 is out of range", { "-N", "10001", "d" } },
    { "--max-peers: 0 is out of range", { "--max-peers=0", "d" } },
    { "--reqq: 'many' is not a number", { "--reqq=many", "d" } },
    { "--disk-threads: 0 is out of range (1..256)", { "--disk-threads=0", "d" } },
    /* sizes: an optional K, M, G or T suffix (and B or iB), in range */
    { "--credit: 16383 is out of range (16384..1073741824 bytes)", { "-C", "16383", "d" } },
    { "--credit: 2G is out of range", { "-C", "2G", "d" } },
    { "--credit: '1.5M' is not a size", { "-C", "1.5M", "d" } },
    { "--credit: '1X' is not a size", { "-C", "1X", "d" } },
    { "--credit: '1Mb' is not a size", { "-C", "1Mb", "d" } },
    { "--credit: 'M' is not a size", { "-C", "M", "d" } },
    { "--credit: 99999999999999999999T is out of range", { "-C", "99999999999999999999T", "d" } },
    { "--credit: 20000000T is out of range", { "-C", "20000000T", "d" } },
    { "--max-block: 200K is out of range (16384..131072 bytes)", { "--max-block=200K", "d" } },
    { "--max-block: 8K is out of range", { "--max-block=8K", "d" } },
    /* seconds: fractions of at most 9 decimals, in range */
    { "--slice: 604801 is out of range (0..604800 seconds)", { "-T", "604801", "d" } },
    { "--slice: '1.' is not a number of seconds", { "-T", "1.", "d" } },
    { "--slice: '.5' is not a number of seconds", { "-T", ".5", "d" } },
    { "--slice: '1e3' is not a number of seconds", { "-T", "1e3", "d" } },
    { "--slice: '-1' is not a number of seconds", { "-T", "-1", "d" } },
    { "--slice: '5s' is not a number of seconds", { "-T", "5s", "d" } },
    { "--slice: '0.1234567891' has more than 9 decimals", { "-T", "0.1234567891", "d" } },
    { "--idle-timeout: 'x' is not a number of seconds", { "--idle-timeout=x", "d" } },
    { "--max-wait: 99999999999999999999 is out of range", { "--max-wait=99999999999999999999", "d" } },
    /* the resources, the trackers and --rescan */
    { "--max-mapped: 1K is out of range (1048576..140737488355328 bytes)", { "--max-mapped=1K", "d" } },
    { "--max-open-files: 0 is out of range (1..32768)", { "--max-open-files=0", "d" } },
    { "--max-open-files: 32769 is out of range (1..32768)", { "--max-open-files=32769", "d" } },
    { "--announce-interval: 0.5 is out of range (1..604800 seconds)", { "--announce-interval=0.5", "d" } },
    { "--announce-rate: 0 is out of range (1..1000000)", { "--announce-rate=0", "d" } },
    { "--rescan: 0.5 is too short (0 to turn it off, else at least 1 second)", { "--rescan=0.5", "d" } },
    { "--rescan: 604801 is out of range (0..604800 seconds)", { "--rescan=604801", "d" } },
    /* conflicts, missing values and operands, unknown options */
    { "-4 (--ipv4-only) and -6 (--ipv6-only) exclude each other", { "-4", "-6", "d" } },
    { "no DIR given", { "-p", "7000" } },
    { "option -p needs a value", { "d", "-p" } },
    { "option --port needs a value", { "d", "--port" } },
    { "option --idle-timeout needs a value", { "d", "--idle-timeout" } },
    { "unknown option -x", { "-x", "d" } },
    { "unknown option or unexpected value: --frobnicate", { "--frobnicate", "d" } },
    { "unknown option or unexpected value: --list=yes", { "--list=yes", "d" } },
    { "--max-peers (10) must be at least --max-unchoked (50)", { "--max-peers=10", "d" } },
    { "--port: 'p0' is not a number", { "-pp0", "d" } },
    { "option --bind needs a value", { "d", "--bind" } },
    { "unknown option or unexpected value: --max=3", { "--max=3", "d" } }, /* ambiguous abbreviation */
};

Test(options, refusals_say_what_is_wrong)
{
    expect_refusals(refusals, sizeof refusals / sizeof *refusals);
}

Test(options, config_check_applies)
{
    /* Whatever the core's own checks refuse is reported as invalid settings, not silently used. */
    hk_options o;
    char err[512];
    hk_config c;
    hk_config_defaults(&c);
    cr_assert_null(hk_config_check(&c));
    c.handshake_timeout = 0;
    const char *why = hk_config_check(&c);
    if (why) {
        BAD("invalid settings", "--handshake-timeout=0", "d");
        cr_assert(strstr(err, why), "%s", err);
    } else {
        OK("--handshake-timeout=0", "d");
        cr_assert_eq(o.cfg.handshake_timeout, 0);
    }
}

Test(options, per_address_caps)
{
    hk_options o;
    char err[512];
    OK("d");
    cr_assert_eq(o.cfg.max_peers_per_address, 8, "the core's default");
    cr_assert_eq(o.cfg.max_peers_per_prefix, 64);
    OK("--max-peers-per-address=0", "--max-peers-per-prefix", "200", "d");
    cr_assert_eq(o.cfg.max_peers_per_address, 0, "0 = unlimited");
    cr_assert_eq(o.cfg.max_peers_per_prefix, 200);
    BAD("--max-peers-per-address: 'x' is not a number", "--max-peers-per-address=x", "d");
    BAD("--max-peers-per-prefix: 1000001 is out of range (0..1000000)", "--max-peers-per-prefix=1000001", "d");
}

/* Slot squatting (issue 14 item 2): the graces, their defaults, and 0 refused. */
Test(options, unchoked_grace_and_stall)
{
    hk_options o;
    char err[512];
    OK("dir");
    cr_assert_eq(o.cfg.unchoked_grace, HK_SECONDS(2));
    cr_assert_eq(o.cfg.unchoked_stall, HK_SECONDS(10));
    OK("--unchoked-grace=0.5", "--unchoked-stall=4", "dir");
    cr_assert_eq(o.cfg.unchoked_grace, 500000000ull);
    cr_assert_eq(o.cfg.unchoked_stall, HK_SECONDS(4));
    BAD("unchoked_grace", "--unchoked-grace=0", "dir");
}

/* --encryption (issue 9): each policy name maps to its hk_encryption value; anything else is refused by name. */
Test(options, encryption_policy)
{
    hk_options o;
    char err[512];
    OK("d");
    cr_assert_eq(o.cfg.encryption, HK_ENC_ALLOW, "the default accepts both");
    OK("--encryption=allow", "d");
    cr_assert_eq(o.cfg.encryption, HK_ENC_ALLOW);
    OK("--encryption=prefer-plain", "d");
    cr_assert_eq(o.cfg.encryption, HK_ENC_PREFER_PLAIN);
    OK("--encryption", "require", "d");
    cr_assert_eq(o.cfg.encryption, HK_ENC_REQUIRE);
    OK("--encryption=off", "d");
    cr_assert_eq(o.cfg.encryption, HK_ENC_OFF);
    OK("--encr=require", "d"); /* an unambiguous abbreviation, as for every long option */
    cr_assert_eq(o.cfg.encryption, HK_ENC_REQUIRE);
    BAD("--encryption: 'forced' is not one of allow, prefer-plain, require, off", "--encryption=forced", "d");
    BAD("--encryption: 'Require' is not one of", "--encryption=Require", "d");
    BAD("--encryption: '' is not one of", "--encryption=", "d");
    BAD("option --encryption needs a value", "d", "--encryption");
}

/* --verify (issue 10): --verify=MODE is lazy (default), off or full; anything else is refused by name. A bare
 * --verify (its value is optional: "--verify lazy" is the bare form and an operand) checks every torrent and exits:
 * verify_check, full pass, unlimited rate unless --verify-rate says; it excludes -l. --verify-rate: a size, >= 1. */
Test(options, verify_mode)
{
    hk_options o;
    char err[512];
    OK("d");
    cr_assert_eq(o.verify, HK_VERIFY_LAZY, "pieces are checked by default");
    cr_assert_not(o.verify_check);
    cr_assert_not(o.cfg.verify_full);
    cr_assert_eq(o.cfg.verify_rate, 64ull << 20, "the default rate");
    OK("--verify=off", "d");
    cr_assert_eq(o.verify, HK_VERIFY_OFF);
    OK("--verify=lazy", "d");
    cr_assert_eq(o.verify, HK_VERIFY_LAZY);
    OK("--verify=full", "d");
    cr_assert_eq(o.verify, HK_VERIFY_FULL);
    cr_assert(o.cfg.verify_full);
    cr_assert_not(o.verify_check, "full serves: it does not exit");
    cr_assert_eq(o.cfg.verify_rate, 64ull << 20);
    OK("--verify=full", "--verify-rate=10M", "d");
    cr_assert_eq(o.cfg.verify_rate, 10ull << 20);
    OK("--verify-rate", "512k", "d");
    cr_assert_eq(o.cfg.verify_rate, 512ull << 10);
    BAD("--verify: 'fast' is not one of lazy, off, full", "--verify=fast", "d");
    BAD("--verify: '' is not one of", "--verify=", "d");
    BAD("--verify-rate: 0 is out of range", "--verify-rate=0", "d");
    BAD("--verify-rate", "--verify-rate=17G", "d");
    BAD("option --verify-rate needs a value", "d", "--verify-rate");
}

Test(options, bare_verify_checks_and_exits)
{
    hk_options o;
    char err[512];
    OK("--verify", "d", "e");
    cr_assert(o.verify_check);
    cr_assert(o.cfg.verify_full, "the check is a full pass");
    cr_assert_eq(o.cfg.verify_rate, HK_VPASS_RATE_MAX, "nothing else runs: as fast as the disks go");
    cr_assert_eq(o.ndirs, 2);
    OK("d", "--verify");
    cr_assert(o.verify_check, "after the operands too");
    OK("--verify", "lazy", "d");
    cr_assert(o.verify_check, "the value is optional: a separate word is an operand");
    cr_assert_eq(o.ndirs, 2);
    cr_assert_str_eq(o.dirs[0], "lazy");
    OK("--verify", "--verify-rate=100M", "d");
    cr_assert_eq(o.cfg.verify_rate, 100ull << 20, "a rate given is kept");
    BAD("--verify (check and exit) and -l (--list) exclude each other", "--verify", "-l", "d");
    BAD("no DIR given", "--verify");
}

/* --data-dir (repeatable; issue 11 item 8): every data dir kept, in order. */
Test(options, data_dirs)
{
    hk_options o;
    char err[512];
    OK("d");
    cr_assert_eq(o.data_dirs.n, 0u, "no data dir by default");
    cr_assert_not(o.follow_links, "links are not followed by default");
    hk_options_free(&o);
    OK("--data-dir=/srv/a", "d", "--data-dir", "/srv/b", "--follow-links");
    cr_assert(o.follow_links);
    cr_assert_eq(o.data_dirs.n, 2u);
    cr_assert_str_eq(o.data_dirs.v[0], "/srv/a");
    cr_assert_str_eq(o.data_dirs.v[1], "/srv/b");
    cr_assert_eq(o.ndirs, 1u, "a data dir is not a DIR");
    hk_options_free(&o);
    cr_assert_null(o.data_dirs.v);
    BAD("option --data-dir needs a value", "d", "--data-dir");
}

/* --user / --group (issue 11 item 4): text, kept as given (looked up by ops/privdrop.h at start-up). */
Test(options, user_and_group)
{
    hk_options o;
    char err[512];
    OK("d");
    cr_assert_null(o.user);
    cr_assert_null(o.group);
    OK("--user=nobody", "--group", "nogroup", "d");
    cr_assert_str_eq(o.user, "nobody");
    cr_assert_str_eq(o.group, "nogroup");
    OK("--user", "65534", "d");
    cr_assert_str_eq(o.user, "65534");
    cr_assert_null(o.group);
    BAD("option --user needs a value", "d", "--user");
    BAD("option --group needs a value", "d", "--group");
}

/* Upload rate caps (issue 11 item 5): off by default, K/M/G suffixes, the burst checked by the core's rules. */
Test(options, upload_rate_caps)
{
    hk_options o;
    char err[512];
    OK("d");
    cr_assert_eq(o.cfg.upload_rate, 0, "no cap by default");
    cr_assert_eq(o.cfg.torrent_upload_rate, 0);
    cr_assert_eq(o.cfg.upload_burst, 0);
    OK("--upload-rate=2M", "--torrent-upload-rate", "512K", "--upload-burst=1M", "d");
    cr_assert_eq(o.cfg.upload_rate, 2u << 20);
    cr_assert_eq(o.cfg.torrent_upload_rate, 512u << 10);
    cr_assert_eq(o.cfg.upload_burst, 1u << 20);
    OK("--upload-rate=1500", "d");
    cr_assert_eq(o.cfg.upload_rate, 1500);
    BAD("--upload-rate: '2X' is not a size", "--upload-rate=2X", "d");
    BAD("--torrent-upload-rate: 17179869185 is out of range", "--torrent-upload-rate=17179869185", "d");
    BAD("upload_burst", "--upload-rate=1M", "--upload-burst=1K", "d");
}

/* The DHT (issue 13): on by default, --no-dht, --dht-bootstrap repeatable (in order, repeats dropped, HOST:PORT
 * checked as it is read), --dht-state. */
Test(options, dht)
{
    hk_options o;
    char err[512];
    OK("d");
    cr_assert_not(o.no_dht);
    cr_assert_eq(o.ndht_bootstrap, 0, "0: the well-known routers");
    cr_assert_null(o.dht_state);
    OK("--no-dht", "--dht-state=/var/lib/h.state", "--dht-bootstrap", "a.example:6881", "--dht-bootstrap=[::1]:7",
       "--dht-bootstrap=a.example:6881", "d");
    cr_assert(o.no_dht);
    cr_assert_str_eq(o.dht_state, "/var/lib/h.state");
    cr_assert_eq(o.ndht_bootstrap, 2, "the repeat is dropped");
    cr_assert_str_eq(o.dht_bootstrap[0], "a.example:6881");
    cr_assert_str_eq(o.dht_bootstrap[1], "[::1]:7");
    BAD("is not HOST:PORT", "--dht-bootstrap=a.example", "d");
    BAD("is not HOST:PORT", "--dht-bootstrap=a.example:0", "d");
    BAD("is not HOST:PORT", "--dht-bootstrap=::1:7", "d");
}

/* Zero-copy writes (net/conn_splice.h): on by default, --no-zero-copy turns them off. */
Test(options, zero_copy)
{
    hk_options o;
    char err[512];
    OK("d");
    cr_assert_not(o.no_zero_copy);
    OK("--no-zero-copy", "d");
    cr_assert(o.no_zero_copy);
}
