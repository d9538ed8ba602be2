/* Tests of backend-real/lib/fd_budget (issue 14, item 4): the start-up descriptor budget fits, lowers --max-peers and
 * --max-open-files to a share that fits (never below --max-unchoked peers, never above what was asked), or refuses;
 * the listener's cap keeps the jobs' share plus HK_FD_RESERVE free; the one line names the options.
 * And the listener's cap itself: a connection whose descriptor number reaches fd_cap is closed at once. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd_budget.h"
#include "listener.h"

Test(fd_budget, fits_when_the_limit_is_enough)
{
    hk_fd_budget b;
    cr_assert_eq(hk_fd_budget_plan(4096, 500, 50, 1024, 32, &b), HK_FD_FITS);
    cr_assert_eq(b.need, 500 + 1024 + 32 + HK_FD_FIXED);
    cr_assert_eq(b.peers, 500);
    cr_assert_eq(b.files, 1024);
    cr_assert_eq(b.fd_cap, 4096 - 32 - HK_FD_RESERVE);
    char line[512];
    hk_fd_budget_line(&b, line, sizeof line);
    cr_assert(strstr(line, "--max-peers 500 + --max-open-files 1024 + 32 disk jobs"), "%s", line);
    cr_assert(strstr(line, "of 4096"), "%s", line);
}

Test(fd_budget, lowers_peers_and_files_to_a_share_that_fits)
{
    hk_fd_budget b;
    cr_assert_eq(hk_fd_budget_plan(1024, 500, 50, 1024, 32, &b), HK_FD_LOWERED);
    cr_assert_leq((uint64_t)b.peers + b.files + 32 + HK_FD_FIXED, 1024);
    cr_assert_geq(b.peers, 50);
    cr_assert_leq(b.peers, 500);
    cr_assert_geq(b.files, 1);
    cr_assert_lt(b.fd_cap, 1024);
    cr_assert_geq(b.fd_cap, b.peers, "the cap leaves room for the lowered peers");
    char line[512];
    hk_fd_budget_line(&b, line, sizeof line);
    cr_assert(strstr(line, "over the limit 1024"), "%s", line);
    cr_assert(strstr(line, "--max-peers lowered to"), "%s", line);
    /* few peers asked: they keep their number, data files get the rest */
    cr_assert_eq(hk_fd_budget_plan(1024, 60, 50, 2000, 32, &b), HK_FD_LOWERED);
    cr_assert_eq(b.peers, 60);
    cr_assert_eq(b.files, 1024 - 32 - HK_FD_FIXED - 60);
    /* a tight limit: at least --max-unchoked peers */
    cr_assert_eq(hk_fd_budget_plan(150, 500, 50, 1024, 32, &b), HK_FD_LOWERED);
    cr_assert_eq(b.peers, 50);
    cr_assert_eq(b.files, 150 - 32 - HK_FD_FIXED - 50);
}

Test(fd_budget, refuses_when_not_even_the_unchoked_peers_fit)
{
    hk_fd_budget b;
    cr_assert_eq(hk_fd_budget_plan(100, 500, 50, 1024, 32, &b), HK_FD_REFUSED);
    cr_assert_eq(hk_fd_budget_plan(64, 10, 1, 10, 32, &b), HK_FD_REFUSED);
    char line[512];
    hk_fd_budget_line(&b, line, sizeof line);
    cr_assert(strstr(line, "ulimit -n"), "%s", line);
}

static int g_accepted;
static void on_accept(void *arg, int fd, const hk_addr *from)
{
    (void)arg;
    (void)from;
    g_accepted++;
    close(fd);
}

static void run_once(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

Test(fd_budget, the_listener_closes_connections_past_its_cap)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_listener_opts o;
    hk_listener_opts_default(&o);
    o.port = 0;
    o.family = HK_FAMILY_V4;
    o.bind_addr = "127.0.0.1";
    o.fd_cap = 1; /* every descriptor is >= 1: every connection is refused */
    char err[256];
    hk_listener *l = hk_listener_new(loop, &o, on_accept, NULL, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(hk_listener_port(l))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_eq(connect(c[i], (struct sockaddr *)&sa, sizeof sa), 0);
    }
    ev_timer t;
    ev_timer_init(&t, run_once, 0.2, 0.);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    hk_listener_stats st;
    hk_listener_stats_get(l, &st);
    cr_assert_eq(g_accepted, 0);
    cr_assert_eq(st.refused_reserve, 3);
    char b;
    for (int i = 0; i < 3; i++) {
        cr_assert_leq(read(c[i], &b, 1), 0, "closed by the seeder");
        close(c[i]);
    }
    hk_listener_free(l);
    ev_loop_destroy(loop);
}
