/* Tests of the `hekate` executable (backend-real/hekate/main.c): --help/--version, command-line errors (exit 2 with a
 * pointer to --help), --list output and exit status, nothing to serve (exit 1), a port in use (exit 1), and a real
 * start on 127.0.0.1 (start-up report with port and magnet link, accepts connections) stopped by SIGTERM (exit 0). */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixtures.h"
#include "infohash.h"

extern char **environ;

#define HEKATE HEKATE_BINARY_DIR "/backend-real/hekate"

static char *dir; /* the suite's temporary folder: /tmp/hekate-cli-XXXXXX */

typedef struct run {
    pid_t pid;
    int out, err;             /* read ends */
    char obuf[65536], ebuf[65536];
    size_t olen, elen;
    int status;               /* exit code, or 128 + signal */
} run;

static void start(run *r, const char *const *args)
{
    memset(r, 0, sizeof *r);
    int po[2], pe[2];
    cr_assert_eq(pipe2(po, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(pe, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)HEKATE;
    for (; args[n - 1]; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    int rc = posix_spawn(&r->pid, HEKATE, &fa, NULL, argv, environ);
    cr_assert_eq(rc, 0, "spawn %s: %s", HEKATE, strerror(rc));
    posix_spawn_file_actions_destroy(&fa);
    close(po[1]);
    close(pe[1]);
    r->out = po[0];
    r->err = pe[0];
}

/* Reads what is available on both pipes for up to `ms` (returns early once both are at EOF). */
static void collect(run *r, int ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd p[2] = { { .fd = r->out, .events = POLLIN }, { .fd = r->err, .events = POLLIN } };
        clock_gettime(CLOCK_MONOTONIC, &t);
        long el = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (el >= ms || (r->out < 0 && r->err < 0))
            return;
        if (r->out < 0)
            p[0].fd = -1;
        if (r->err < 0)
            p[1].fd = -1;
        if (poll(p, 2, (int)(ms - el)) <= 0)
            return;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP)))
                continue;
            char *b = i ? r->ebuf : r->obuf;
            size_t *l = i ? &r->elen : &r->olen;
            ssize_t k = read(p[i].fd, b + *l, 65535 - *l);
            if (k <= 0) {
                close(p[i].fd);
                if (i)
                    r->err = -1;
                else
                    r->out = -1;
            } else {
                *l += (size_t)k;
                b[*l] = '\0';
            }
        }
    }
}

static int finish(run *r, int timeout_ms)
{
    collect(r, timeout_ms);
    int st;
    for (int i = 0; i < timeout_ms / 10; i++) {
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return r->status;
        }
        usleep(10000);
    }
    kill(r->pid, SIGKILL);
    waitpid(r->pid, &st, 0);
    cr_assert_fail("hekate did not exit within %d ms; stderr:\n%s", timeout_ms, r->ebuf);
    return -1;
}

static int run_args(run *r, const char *const *args)
{
    start(r, args);
    return finish(r, 10000);
}

/* ---- fixtures ---- */

static void write_file(const char *path, const void *p, size_t n)
{
    cr_assert_eq(fx_write(path, p, n), 0, "%s: %s", path, strerror(errno));
}

/* Writes <sub>/<name> (len bytes) and <sub>/<name>.torrent (single file, 16 KiB pieces); hex info-hash in hex. */
static void make_torrent(const char *sub, const char *name, size_t len, bool with_data, char hex[41])
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    mkdir(p, 0755);
    uint8_t *content = malloc(len);
    for (size_t i = 0; i < len; i++)
        content[i] = (uint8_t)(i * 31 + strlen(name));
    if (with_data) {
        snprintf(p, sizeof p, "%s/%s/%s", dir, sub, name);
        write_file(p, content, len);
    }
    size_t pl = 16384, pieces = (len + pl - 1) / pl;
    uint8_t *info = malloc(256 + 20 * pieces);
    int n = snprintf((char *)info, 256, "d6:lengthi%zue4:name%zu:%s12:piece lengthi%zue6:pieces%zu:", len,
                     strlen(name), name, pl, 20 * pieces);
    size_t at = (size_t)n;
    for (size_t i = 0; i < pieces; i++) {
        cr_assert(ih_sha1(content + i * pl, i + 1 < pieces ? pl : len - i * pl, info + at));
        at += 20;
    }
    info[at++] = 'e';
    uint8_t ih[20];
    cr_assert(ih_sha1(info, at, ih));
    ih_hex(ih, hex);
    uint8_t *t = malloc(at + 16);
    memcpy(t, "d4:info", 7);
    memcpy(t + 7, info, at);
    t[7 + at] = 'e';
    snprintf(p, sizeof p, "%s/%s/%s.torrent", dir, sub, name);
    write_file(p, t, at + 8);
    free(t);
    free(info);
    free(content);
}

static void make_dir(void)
{
    dir = fx_mkdtemp("cli");
    cr_assert_not_null(dir);
}

static void remove_dir(void)
{
    fx_rmtree(dir);
    free(dir);
    dir = NULL;
}

TestSuite(hekate_cli, .init = make_dir, .fini = remove_dir, .timeout = 60);

/* ---- tests ---- */

Test(hekate_cli, help_and_version)
{
    run r;
    cr_assert_eq(run_args(&r, (const char *[]){ "--help", NULL }), 0);
    cr_assert(strstr(r.obuf, "Usage: hekate [OPTION]... DIR..."), "%s", r.obuf);
    cr_assert(strstr(r.obuf, "--max-unchoked") && strstr(r.obuf, "--send-stall-timeout"));
    cr_assert_eq(run_args(&r, (const char *[]){ "--version", NULL }), 0);
    cr_assert(strncmp(r.obuf, "hekate ", 7) == 0, "%s", r.obuf);
}

Test(hekate_cli, command_line_errors_exit_2)
{
    run r;
    cr_assert_eq(run_args(&r, (const char *[]){ "-p", "70000", dir, NULL }), 2);
    cr_assert(strstr(r.ebuf, "hekate: --port: 70000 is out of range (0..65535)"), "%s", r.ebuf);
    cr_assert(strstr(r.ebuf, "Try 'hekate --help'"), "%s", r.ebuf);
    cr_assert_eq(r.olen, 0);
    cr_assert_eq(run_args(&r, (const char *[]){ "-t", NULL }), 2);
    cr_assert(strstr(r.ebuf, "no DIR given"), "%s", r.ebuf);
    cr_assert_eq(run_args(&r, (const char *[]){ "-C", "1Q", dir, NULL }), 2);
    cr_assert(strstr(r.ebuf, "--credit: '1Q' is not a size"), "%s", r.ebuf);
}

Test(hekate_cli, list_reports_served_and_rejected)
{
    char good[41], missing[41];
    make_torrent("a", "good.bin", 50000, true, good);
    make_torrent("b", "missing.bin", 30000, false, missing);
    char bad[256];
    snprintf(bad, sizeof bad, "%s/b/broken.torrent", dir);
    write_file(bad, "d4:infod", 8);
    run r;
    cr_assert_eq(run_args(&r, (const char *[]){ "-l", dir, NULL }), 0, "%s", r.ebuf);
    char want[256];
    snprintf(want, sizeof want, "served   %s  48.8 KiB (50000 bytes), 1 file  \"good.bin\"  %s/a/good.bin.torrent",
             good, dir);
    cr_assert(strstr(r.obuf, want), "expected\n%s\nin\n%s", want, r.obuf);
    snprintf(want, sizeof want, "rejected %s/b/broken.torrent: invalid torrent: ", dir);
    cr_assert(strstr(r.obuf, want), "%s", r.obuf);
    snprintf(want, sizeof want, "rejected %s/b/missing.bin.torrent: data: ", dir);
    cr_assert(strstr(r.obuf, want), "%s", r.obuf);
    cr_assert(strstr(r.obuf, "1 torrent would be served, 2 rejected"), "%s", r.obuf);

    /* With -v, the magnet link too. */
    cr_assert_eq(run_args(&r, (const char *[]){ "-lv", dir, NULL }), 0);
    snprintf(want, sizeof want, "magnet:?xt=urn:btih:%s&dn=good.bin", good);
    cr_assert(strstr(r.obuf, want), "%s", r.obuf);
}

Test(hekate_cli, nothing_to_serve_exits_1)
{
    char h[41];
    make_torrent("b", "missing.bin", 30000, false, h);
    run r;
    cr_assert_eq(run_args(&r, (const char *[]){ "-l", dir, NULL }), 1);
    cr_assert(strstr(r.obuf, "0 torrents would be served, 1 rejected"), "%s", r.obuf);
    cr_assert_eq(run_args(&r, (const char *[]){ "-t", "--no-dht", "-p", "0", "--bind", "127.0.0.1", dir, NULL }), 1);
    cr_assert(strstr(r.ebuf, "rejected") && strstr(r.ebuf, "missing.bin"), "%s", r.ebuf);
    cr_assert(strstr(r.ebuf, "hekate: nothing to serve"), "%s", r.ebuf);
    char nope[128];
    snprintf(nope, sizeof nope, "%s/does-not-exist", dir);
    cr_assert_eq(run_args(&r, (const char *[]){ "-t", "--no-dht", "-p", "0", "--bind", "127.0.0.1", nope, NULL }), 1);
    cr_assert(strstr(r.ebuf, "does-not-exist: No such file or directory"), "%s", r.ebuf);
}

static uint16_t parse_port(const char *out)
{
    const char *p = strstr(out, "on port ");
    cr_assert_not_null(p, "no port in: %s", out);
    return (uint16_t)strtoul(p + 8, NULL, 10);
}

Test(hekate_cli, serves_until_sigterm_then_exits_0)
{
    char h1[41], h2[41];
    make_torrent("a", "one.bin", 40000, true, h1);
    make_torrent("c", "two.bin", 20000, true, h2);
    run r;
    start(&r, (const char *[]){ "-t", "--no-dht", "-p", "0", "--bind", "127.0.0.1", dir, NULL });
    for (int i = 0; i < 100 && !strstr(r.obuf, "two.bin\n    magnet"); i++)
        collect(&r, 50);
    cr_assert(strstr(r.obuf, "serving 2 torrents on port "), "%s\n%s", r.obuf, r.ebuf);
    cr_assert(strstr(r.obuf, "(IPv4)"), "%s", r.obuf);
    char want[128];
    snprintf(want, sizeof want, "magnet:?xt=urn:btih:%s&dn=one.bin", h1);
    cr_assert(strstr(r.obuf, want), "%s", r.obuf);
    snprintf(want, sizeof want, "magnet:?xt=urn:btih:%s&dn=two.bin", h2);
    cr_assert(strstr(r.obuf, want), "%s", r.obuf);

    uint16_t port = parse_port(r.obuf);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(connect(c, (struct sockaddr *)&a, sizeof a), 0, "connect to %u: %s", port, strerror(errno));

    /* A port in use: a second instance cannot start. */
    char ps[16];
    snprintf(ps, sizeof ps, "%u", port);
    run r2;
    cr_assert_eq(run_args(&r2, (const char *[]){ "-t", "--no-dht", "-p", ps, "--bind", "127.0.0.1", dir, NULL }), 1);
    cr_assert(strstr(r2.ebuf, "cannot start: bind 127.0.0.1:") && strstr(r2.ebuf, "Address already in use"), "%s",
              r2.ebuf);

    kill(r.pid, SIGTERM);
    cr_assert_eq(finish(&r, 10000), 0, "stderr:\n%s", r.ebuf);
    cr_assert(strstr(r.ebuf, "stopping"), "%s", r.ebuf);
    char b;
    cr_assert_eq(recv(c, &b, 1, 0), 0, "the open connection was closed");
    close(c);
}
