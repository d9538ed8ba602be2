/* Tests of backend-real/lib/ops/notify (issue 11 item 4): against a fake service manager, an AF_UNIX datagram socket
 * in a temporary folder named by NOTIFY_SOCKET, hk_notify_ready sends READY=1 with its STATUS= once, hk_notify_status
 * a STATUS= line, hk_notify_stopping STOPPING=1 once; the watchdog timer sends WATCHDOG=1 every half WATCHDOG_USEC;
 * without NOTIFY_SOCKET nothing is sent and the calls say so (0); a socket nobody listens on is -1, not a crash.
 * Criterion runs each test in its own process, so the "sent once" flags start cleared in each. */
#include <criterion/criterion.h>

#include <ev.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

static char dir[32], path[64];
static int sock = -1;

/* The fake service manager: a bound datagram socket, and NOTIFY_SOCKET naming it. */
static void fake_manager(void)
{
    snprintf(dir, sizeof dir, "/tmp/hk-notify-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/notify", dir);
    sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert(sock >= 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    cr_assert_eq(bind(sock, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(setenv("NOTIFY_SOCKET", path, 1), 0);
}

static void fake_manager_close(void)
{
    if (sock >= 0)
        close(sock);
    unlink(path);
    rmdir(dir);
}

/* The next datagram within timeout_ms, as a string; "" if none came. */
static const char *next_message(int timeout_ms)
{
    static char buf[1024];
    struct pollfd p = { .fd = sock, .events = POLLIN };
    buf[0] = '\0';
    if (poll(&p, 1, timeout_ms) == 1) {
        ssize_t n = recv(sock, buf, sizeof buf - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
    }
    return buf;
}

TestSuite(notify, .init = fake_manager, .fini = fake_manager_close);

Test(notify, ready_is_sent_once_with_its_status)
{
    cr_assert_eq(hk_notify_ready("serving 3 torrents on port 6881"), 1);
    cr_assert_str_eq(next_message(1000), "READY=1\nSTATUS=serving 3 torrents on port 6881");
    cr_assert_eq(hk_notify_ready("again"), 0);
    cr_assert_str_eq(next_message(100), "");
}

Test(notify, status_lines_are_sent_each_time)
{
    cr_assert_eq(hk_notify_status("%u torrents, %u peers", 5u, 7u), 1);
    cr_assert_str_eq(next_message(1000), "STATUS=5 torrents, 7 peers");
    cr_assert_eq(hk_notify_status("%s", "second"), 1);
    cr_assert_str_eq(next_message(1000), "STATUS=second");
}

Test(notify, stopping_is_sent_once)
{
    cr_assert_eq(hk_notify_stopping(), 1);
    cr_assert_str_eq(next_message(1000), "STOPPING=1\nSTATUS=stopping");
    cr_assert_eq(hk_notify_stopping(), 0);
    cr_assert_str_eq(next_message(100), "");
}

Test(notify, nothing_without_a_service_manager)
{
    unsetenv("NOTIFY_SOCKET");
    cr_assert_eq(hk_notify_ready("x"), 0);
    cr_assert_eq(hk_notify_status("y"), 0);
    cr_assert_eq(hk_notify_stopping(), 0);
    cr_assert_str_eq(next_message(100), "");
}

Test(notify, a_socket_nobody_listens_on_is_an_error_not_a_crash)
{
    setenv("NOTIFY_SOCKET", "/nonexistent-hekate/notify", 1);
    cr_assert_eq(hk_notify_status("lost"), -1);
    cr_assert_eq(hk_notify_ready("lost"), -1);
}

static void stop_loop(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)t;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

Test(notify, watchdog_keepalives_every_half_period)
{
    setenv("WATCHDOG_USEC", "200000", 1); /* 0.2 s: a keep-alive at once, then every 0.1 s */
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_notify_watchdog w;
    cr_assert_eq(hk_notify_watchdog_start(&w, loop), 1);
    cr_assert_eq(w.usec, 200000);
    ev_timer end;
    ev_timer_init(&end, stop_loop, 0.35, 0.);
    ev_timer_start(loop, &end);
    ev_run(loop, 0);
    hk_notify_watchdog_stop(&w, loop);
    int n = 0;
    while (strcmp(next_message(50), "WATCHDOG=1") == 0)
        n++;
    cr_assert(n >= 3 && n <= 5, "%d keep-alives in 0.35 s (expected 4: at 0, 0.1, 0.2, 0.3 s)", n);
    ev_loop_destroy(loop);
}

Test(notify, no_watchdog_unless_asked)
{
    unsetenv("WATCHDOG_USEC");
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_notify_watchdog w;
    cr_assert_eq(hk_notify_watchdog_start(&w, loop), 0);
    setenv("WATCHDOG_USEC", "200000", 1);
    setenv("WATCHDOG_PID", "1", 1); /* another process's watchdog: not ours */
    cr_assert_eq(hk_notify_watchdog_start(&w, loop), 0);
    hk_notify_watchdog_stop(&w, loop);
    ev_loop_destroy(loop);
}
