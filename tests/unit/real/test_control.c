/* Tests of backend-real/lib/ops/control: the control socket server on a real libev loop with real AF_UNIX clients.
 * The socket's mode is 0600 and a stale socket file is replaced, while a live socket or a plain file at the path is
 * refused and left alone; a request is answered by the handler; a bad request gets an error and the same connection
 * goes on (two requests sent at once are answered in order); a line over the cap gets an error and the connection is
 * closed; a reply that does not fit becomes an error; the client beyond HK_CTL_MAX_CLIENTS is refused while the
 * others are answered; closing removes the socket file. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "fixtures.h"

static struct ev_loop *loop;
static char *dir;
static char path[100]; /* fits sun_path */

static void handler(void *ud, const hk_ctl_request *req, hk_jw *w)
{
    (void)ud;
    hk_jw_raw(w, "{\"ok\":true");
    hk_jw_kstr(w, "cmd", hk_ctl_cmd_name(req->cmd));
    if (req->cmd == HK_CTL_PEERS) /* a reply too large for the socket */
        for (size_t i = 0; i < HK_CTL_MAX_REPLY; i++)
            hk_jw_raw(w, "x");
    hk_jw_raw(w, "}\n");
}

static void setup(void)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    dir = fx_mkdtemp("control");
    cr_assert_lt(snprintf(path, sizeof path, "%s/ctl.sock", dir), (int)sizeof path);
}

static void teardown(void)
{
    ev_loop_destroy(loop);
    fx_rmtree(dir);
    free(dir);
}

static int client(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, path, strlen(path) + 1);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect: %s", strerror(errno));
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EAGAIN) {
            ev_run(loop, EVRUN_NOWAIT);
            continue;
        }
        if (k < 0)
            return; /* closed by the server: what it said is still readable */
        s += k;
        n -= (size_t)k;
    }
}

/* Runs the loop until fd has `lines` lines (or is closed), at most ~2 s; the text read, and *closed. */
static char *read_lines(int fd, int lines, bool *closed)
{
    static char buf[1 << 16];
    size_t got = 0;
    *closed = false;
    for (int i = 0; i < 2000; i++) {
        ev_run(loop, EVRUN_NOWAIT);
        ssize_t k = read(fd, buf + got, sizeof buf - 1 - got);
        if (k == 0 || (k < 0 && errno != EAGAIN)) {
            *closed = true;
            break;
        }
        if (k > 0)
            got += (size_t)k;
        buf[got] = '\0';
        int n = 0;
        for (size_t j = 0; j < got; j++)
            n += buf[j] == '\n';
        if (n >= lines)
            break;
        usleep(1000);
    }
    buf[got] = '\0';
    return buf;
}

TestSuite(control, .init = setup, .fini = teardown);

Test(control, mode_stale_socket_and_close)
{
    int stale = socket(AF_UNIX, SOCK_STREAM, 0); /* bound, then closed: the file stays, nobody listens */
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, path, strlen(path) + 1);
    cr_assert_eq(bind(stale, (struct sockaddr *)&sa, sizeof sa), 0);
    close(stale);
    char err[512];
    hk_control *c = hk_control_open(loop, path, handler, NULL, err, sizeof err);
    cr_assert(c, "%s", err);
    struct stat st;
    cr_assert_eq(lstat(path, &st), 0);
    cr_assert(S_ISSOCK(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0600);
    hk_control *twice = hk_control_open(loop, path, handler, NULL, err, sizeof err);
    cr_assert_null(twice);
    cr_assert(strstr(err, "another process is listening on it"), "%s", err);
    cr_assert_eq(lstat(path, &st), 0, "the live socket was removed");
    hk_control_close(c);
    cr_assert_eq(lstat(path, &st), -1, "the socket file is still there after the close");

    cr_assert_eq(fx_write(path, "x", 1), 0);
    cr_assert_null(hk_control_open(loop, path, handler, NULL, err, sizeof err));
    cr_assert(strstr(err, "exists and is not a socket"), "%s", err);
    cr_assert_eq(lstat(path, &st), 0);
    cr_assert(S_ISREG(st.st_mode));
}

Test(control, requests_bad_requests_and_pipelining)
{
    char err[512];
    hk_control *c = hk_control_open(loop, path, handler, NULL, err, sizeof err);
    cr_assert(c, "%s", err);
    int fd = client();
    bool closed;
    send_all(fd, "status\n", 7);
    cr_assert_str_eq(read_lines(fd, 1, &closed), "{\"ok\":true,\"cmd\":\"status\"}\n");
    const char *three = "bogus\x01\nrescan\r\ntorrents --top 3\n";
    send_all(fd, three, strlen(three));
    char *got = read_lines(fd, 3, &closed);
    cr_assert_not(closed);
    cr_assert_str_eq(got, "{\"ok\":false,\"error\":\"request holds a control byte (0x01) at offset 5\"}\n"
                          "{\"ok\":true,\"cmd\":\"rescan\"}\n{\"ok\":true,\"cmd\":\"torrents\"}\n");
    send_all(fd, "peers\n", 6);
    cr_assert_str_eq(read_lines(fd, 1, &closed),
                     "{\"ok\":false,\"error\":\"reply too large for the control socket\"}\n");
    hk_control_stats st;
    hk_control_stats_get(c, &st);
    cr_assert_eq(st.requests, 5);
    cr_assert_eq(st.bad_requests, 1);
    cr_assert_eq(st.clients, 1);
    close(fd);
    hk_control_close(c);
}

Test(control, long_line_closes)
{
    char err[512];
    hk_control *c = hk_control_open(loop, path, handler, NULL, err, sizeof err);
    cr_assert(c, "%s", err);
    int fd = client();
    char *big = malloc(1 << 20);
    memset(big, 'a', 1 << 20);
    send_all(fd, big, HK_CTL_MAX_LINE + 2); /* a line of 4097 bytes and a '\r' is still not ended: too long */
    bool closed;
    char *got = read_lines(fd, 1, &closed);
    cr_assert_str_eq(got, "{\"ok\":false,\"error\":\"request too long (at most 4096 bytes); closing\"}\n");
    read_lines(fd, 2, &closed);
    cr_assert(closed, "the connection stays open after a line over the cap");
    close(fd);
    fd = client(); /* a line of exactly the cap is fine */
    memcpy(big, "add /", 5);
    big[HK_CTL_MAX_LINE] = '\n';
    send_all(fd, big, HK_CTL_MAX_LINE + 1);
    cr_assert_str_eq(read_lines(fd, 1, &closed), "{\"ok\":true,\"cmd\":\"add\"}\n");
    close(fd);
    free(big);
    hk_control_close(c);
}

Test(control, too_many_clients)
{
    char err[512];
    hk_control *c = hk_control_open(loop, path, handler, NULL, err, sizeof err);
    cr_assert(c, "%s", err);
    int fds[HK_CTL_MAX_CLIENTS + 1];
    for (int i = 0; i <= HK_CTL_MAX_CLIENTS; i++) {
        fds[i] = client();
        for (int k = 0; k < 5; k++)
            ev_run(loop, EVRUN_NOWAIT); /* accepted in this order */
    }
    bool closed;
    cr_assert_str_eq(read_lines(fds[HK_CTL_MAX_CLIENTS], 1, &closed),
                     "{\"ok\":false,\"error\":\"too many control clients\"}\n");
    for (int i = 0; i < HK_CTL_MAX_CLIENTS; i++) {
        send_all(fds[i], "status\n", 7);
        cr_assert_str_eq(read_lines(fds[i], 1, &closed), "{\"ok\":true,\"cmd\":\"status\"}\n", "client %d", i);
    }
    hk_control_stats st;
    hk_control_stats_get(c, &st);
    cr_assert_eq(st.clients, HK_CTL_MAX_CLIENTS);
    cr_assert_eq(st.refused_clients, 1);
    for (int i = 0; i <= HK_CTL_MAX_CLIENTS; i++)
        close(fds[i]);
    hk_control_close(c);
}
