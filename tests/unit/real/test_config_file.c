/* Tests of backend-real/lib/config_file (and the config-file part of options.c): every long option is a key, values
 * go through the option's own parser, defaults < file < command line, DIRs from repeated `dir` keys then the
 * operands, and every error names the file, the line and the key. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_file.h"
#include "options.h"

#define MAX_ARGS 16

static char *argv_of(const char *const *args, int *argc)
{
    static char *argv[MAX_ARGS];
    static char store[MAX_ARGS][256];
    int n = 0;
    strcpy(store[n], "hekate");
    argv[n] = store[n];
    n++;
    for (; *args; args++, n++) {
        cr_assert_lt(n, MAX_ARGS - 1);
        snprintf(store[n], sizeof store[n], "%s", *args);
        argv[n] = store[n];
    }
    argv[n] = NULL;
    *argc = n;
    return (char *)argv;
}

/* Parses the command line args (NULL-terminated) with text as the config file "t.conf". */
static hk_options_result with_text(hk_options *o, const char *text, const char *const *args, char *err,
                                   size_t errlen)
{
    int argc;
    char **argv = (char **)(void *)argv_of(args, &argc);
    err[0] = '\0';
    return hk_options_parse_text(o, argc, argv, "t.conf", text, strlen(text), err, errlen);
}

static const char *const none[] = { NULL };

/* text must be refused with a message holding want. */
static void refused(const char *text, const char *want)
{
    hk_options o;
    char err[1024];
    cr_assert_eq(with_text(&o, text, none, err, sizeof err), HK_OPTIONS_ERROR, "accepted: %s", text);
    cr_assert(strstr(err, want), "for %s: got \"%s\", want \"%s\"", text, err, want);
    cr_assert_null(o.dirs, "nothing left to free after an error");
    cr_assert_null(o.texts);
}

Test(config_file, every_long_option_is_a_key)
{
    size_t n = hk_options_nrows();
    cr_assert_gt(n, 30);
    for (size_t i = 0; i < n; i++) {
        const char *name = hk_options_row_name(i);
        cr_assert_eq(hk_options_row_find(name), (int)i, "%s", name);
        char alt[64];
        for (size_t k = 0; k <= strlen(name); k++)
            alt[k] = name[k] == '-' ? '_' : (char)(name[k] >= 'a' && name[k] <= 'z' ? name[k] - 32 : name[k]);
        cr_assert_eq(hk_options_row_find(alt), (int)i, "%s", alt);
        /* every key is known: a bad value is blamed on the key at its line, never "unknown key" */
        char text[256], err[1024];
        snprintf(text, sizeof text, "dir = /srv\n%s = zz!z\n", name);
        hk_options o;
        hk_options_result r = with_text(&o, text, none, err, sizeof err);
        if (r == HK_OPTIONS_RUN) {
            hk_options_free(&o);
            continue; /* a text option (--bind) takes any value here */
        }
        char want[96];
        snprintf(want, sizeof want, "t.conf:2: %s", name);
        cr_assert(strstr(err, want), "%s: %s", name, err);
        cr_assert_null(strstr(err, "unknown key"), "%s", err);
    }
    cr_assert_eq(hk_options_row_find("max-peer"), -1);
    cr_assert_eq(hk_options_row_find("dir"), -1, "dir is the file's own key, not an option");
}

Test(config_file, values_and_defaults)
{
    hk_options o;
    char err[1024];
    const char *text = "; comment\n# comment\n[hekate]\nport = 7000\nmax-unchoked = 20\ncredit = 2M ; inline\n"
                       "idle_timeout = 2.5\nno-trackers = yes\nlist = off\nencryption = require\nbind = ::1\n"
                       "verbose = 2\n   rescan = 30\ndir = /srv/a\ndir = /srv/b with space\n";
    cr_assert_eq(with_text(&o, text, none, err, sizeof err), HK_OPTIONS_RUN, "%s", err);
    cr_assert_eq(o.port, 7000);
    cr_assert_eq(o.cfg.listen_port, 7000);
    cr_assert_eq(o.cfg.max_unchoked, 20);
    cr_assert_eq(o.cfg.max_peers, 200, "derived from the file's max-unchoked");
    cr_assert_eq(o.cfg.credit, 2u << 20);
    cr_assert_eq(o.cfg.idle_timeout, HK_SECONDS(2) + HK_SECONDS(1) / 2);
    cr_assert(o.no_trackers);
    cr_assert_not(o.list);
    cr_assert_eq(o.cfg.encryption, HK_ENC_REQUIRE);
    cr_assert_str_eq(o.bind_addr, "::1");
    cr_assert_eq(o.verbosity, 2);
    cr_assert_eq(o.rescan_interval, HK_SECONDS(30));
    cr_assert_eq(o.ndirs, 2);
    cr_assert_str_eq(o.dirs[0], "/srv/a");
    cr_assert_str_eq(o.dirs[1], "/srv/b with space");
    hk_options_free(&o);
    cr_assert_null(o.dirs);
}

Test(config_file, the_command_line_wins)
{
    hk_options o;
    char err[1024];
    const char *text = "port = 7000\nmax-peers = 100\nverbose = 2\nipv4-only = true\nreqq = 64\ndir = /srv/a\n";
    const char *const args[] = { "-p", "7001", "-N", "20", "-q", "-6", "/cmd/dir", NULL };
    cr_assert_eq(with_text(&o, text, args, err, sizeof err), HK_OPTIONS_RUN, "%s", err);
    cr_assert_eq(o.port, 7001);
    cr_assert_eq(o.cfg.max_unchoked, 20);
    cr_assert_eq(o.cfg.max_peers, 100, "the file's max-peers stands: the command line did not set it");
    cr_assert_eq(o.verbosity, -1, "-q replaces the file's verbose = 2");
    cr_assert_eq(o.family, HK_FAMILY_V6, "-6 replaces the file's ipv4-only");
    cr_assert_eq(o.cfg.reqq, 64);
    cr_assert_eq(o.ndirs, 2);
    cr_assert_str_eq(o.dirs[0], "/srv/a");
    cr_assert_str_eq(o.dirs[1], "/cmd/dir", "the operands come after the file's folders");
    hk_options_free(&o);

    /* the file's max-unchoked beyond the command line's max-peers: the rule between options still holds */
    const char *const args2[] = { "--max-peers", "10", NULL };
    cr_assert_eq(with_text(&o, "max-unchoked = 20\ndir = /x\n", args2, err, sizeof err), HK_OPTIONS_ERROR);
    cr_assert(strstr(err, "--max-peers (10) must be at least --max-unchoked (20)"), "%s", err);
}

/* data-dir may repeat (each value kept, in order: the file's, then the command line's). */
Test(config_file, data_dir_repeats)
{
    hk_options o;
    char err[1024];
    const char *const args[] = { "--data-dir", "/cmd/data", NULL };
    const char *text = "dir = /srv/t\ndata-dir = /srv/d1\ndata_dir = /srv/d2\n";
    cr_assert_eq(with_text(&o, text, args, err, sizeof err), HK_OPTIONS_RUN, "%s", err);
    cr_assert_eq(o.data_dirs.n, 3u);
    cr_assert_str_eq(o.data_dirs.v[0], "/srv/d1");
    cr_assert_str_eq(o.data_dirs.v[1], "/srv/d2");
    cr_assert_str_eq(o.data_dirs.v[2], "/cmd/data");
    cr_assert_eq(o.ndirs, 1u);
    hk_options n;
    cr_assert_eq(with_text(&n, "dir = /srv/t\ndata-dir = /srv/d1\n", none, err, sizeof err), HK_OPTIONS_RUN);
    int row = hk_options_row_find("data-dir");
    cr_assert_geq(row, 0);
    cr_assert(hk_options_row_repeatable((size_t)row));
    cr_assert_not(hk_options_row_repeatable((size_t)hk_options_row_find("port")));
    cr_assert(hk_options_row_differs(&o, &n, (size_t)row), "a reload sees the list changed");
    hk_options_free(&n);
    hk_options_free(&o);
}

Test(config_file, errors_name_the_file_the_line_and_the_key)
{
    refused("port = 7000\n\nmax-peer = 3\n", "t.conf:3: unknown key 'max-peer'");
    refused("dir = /x\nmax-unchoked = 0\n", "t.conf:2: max-unchoked: 0 is out of range (1..10000)");
    refused("dir = /x\nidle-timeout = soon\n", "t.conf:2: idle-timeout: 'soon' is not a number of seconds");
    refused("dir = /x\nencryption = always\n", "t.conf:2: encryption: 'always' is not one of allow, prefer-plain");
    refused("no-trackers = maybe\n", "t.conf:1: no-trackers: 'maybe' is not a boolean");
    refused("port = 1\nport = 2\n", "t.conf:2: key 'port' given twice (first at line 1)");
    refused("port =\n", "t.conf:1: key 'port' has no value");
    refused("[hekate]\nport = 1\n[other]\nreqq = 3\n", "t.conf:4: unknown section [other]");
    refused("port = 1\njust words\n", "t.conf:2: not a `key = value` line nor a [section]");
    refused("help = yes\n", "t.conf:1: help: works on the command line only");
    refused("version = 1\n", "t.conf:1: version: works on the command line only");
    refused("config = other.conf\n", "t.conf:1: config: works on the command line only");
    refused("port = 1\n", "no DIR given");
    refused("dir = /x\nrescan = 0.5\n", "t.conf:2: rescan: 0.5 is too short");
    /* what libinih cannot see */
    hk_options o;
    char err[1024];
    int argc;
    char **argv = (char **)(void *)argv_of(none, &argc);
    static const char nul[] = "dir = /x\nport = 1\0 junk\n";
    cr_assert_eq(hk_options_parse_text(&o, argc, argv, "t.conf", nul, sizeof nul - 1, err, sizeof err),
                 HK_OPTIONS_ERROR);
    cr_assert(strstr(err, "t.conf:2: the line holds a NUL byte"), "%s", err);
    static char big[HK_CONF_MAX_LINE + 64];
    memset(big, 'x', sizeof big - 1);
    memcpy(big, "dir = /x\ndir = /", 16);
    cr_assert_eq(hk_options_parse_text(&o, argc, argv, "t.conf", big, strlen(big), err, sizeof err),
                 HK_OPTIONS_ERROR);
    cr_assert(strstr(err, "t.conf:2: line longer than"), "%s", err);
}

Test(config_file, a_long_path_fits)
{
    static char text[4200];
    char path[4097];
    memset(path, 'p', sizeof path - 1);
    path[0] = '/';
    path[sizeof path - 1] = '\0';
    snprintf(text, sizeof text, "dir = %s\n", path);
    hk_options o;
    char err[1024];
    cr_assert_eq(with_text(&o, text, none, err, sizeof err), HK_OPTIONS_RUN, "%s", err);
    cr_assert_eq(strlen(o.dirs[0]), 4096);
    hk_options_free(&o);
}

Test(config_file, read_from_dash_c)
{
    char dir[] = "/tmp/hekate-conf-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128], fifo[128];
    snprintf(path, sizeof path, "%s/hekate.conf", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("port = 7100\ndir = /srv/a\n\nmax-block = 1M\n", f);
    fclose(f);
    hk_options o;
    char err[1024];
    const char *const ok[] = { "-c", path, NULL };
    int argc;
    char **argv = (char **)(void *)argv_of(ok, &argc);
    cr_assert_eq(hk_options_parse(&o, argc, argv, err, sizeof err), HK_OPTIONS_ERROR);
    char want[256];
    snprintf(want, sizeof want, "%s:4: max-block: 1M is out of range", path);
    cr_assert(strstr(err, want), "%s", err);

    f = fopen(path, "w");
    fputs("port = 7100\ndir = /srv/a\n", f);
    fclose(f);
    const char *const okl[] = { "--config", path, "/srv/b", NULL };
    argv = (char **)(void *)argv_of(okl, &argc);
    cr_assert_eq(hk_options_parse(&o, argc, argv, err, sizeof err), HK_OPTIONS_RUN, "%s", err);
    cr_assert_eq(o.port, 7100);
    cr_assert_str_eq(o.config_path, path);
    cr_assert_eq(o.ndirs, 2);
    hk_options_free(&o);

    const char *const missing[] = { "-c", "/nonexistent/hekate.conf", NULL };
    argv = (char **)(void *)argv_of(missing, &argc);
    cr_assert_eq(hk_options_parse(&o, argc, argv, err, sizeof err), HK_OPTIONS_ERROR);
    cr_assert(strstr(err, "cannot read config file /nonexistent/hekate.conf: No such file"), "%s", err);

    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    const char *const pipe[] = { "-c", fifo, NULL };
    argv = (char **)(void *)argv_of(pipe, &argc);
    cr_assert_eq(hk_options_parse(&o, argc, argv, err, sizeof err), HK_OPTIONS_ERROR, "a FIFO is never read");
    cr_assert(strstr(err, "not a regular file"), "%s", err);

    const char *const help[] = { "-c", "/nonexistent", "--help", NULL };
    argv = (char **)(void *)argv_of(help, &argc);
    cr_assert_eq(hk_options_parse(&o, argc, argv, err, sizeof err), HK_OPTIONS_HELP, "--help before the file");
    unlink(fifo);
    unlink(path);
    rmdir(dir);
}
