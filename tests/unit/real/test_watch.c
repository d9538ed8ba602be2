/* Tests of backend-real/lib/catalog/watch: in a temporary folder, .torrent files written, renamed in, renamed within,
 * deleted, and folders created, moved in and moved out become the right loads and removals (coalesced: each path
 * once per flush, removals before loads); hidden files, other names and symbolic links are ignored; a lost queue
 * (IN_Q_OVERFLOW) asks for a rescan; nothing is applied while the sink is busy; the debounce timer flushes on its
 * own; hk_watch_reachable refuses a path through a symbolic link. */
#include <criterion/criterion.h>

#include <ev.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "watch.h"

#define MAX_CALLS 64

typedef struct calls {
    char *v[MAX_CALLS];
    size_t n;
    size_t rescans;
    bool busy;
} calls;

static calls got;
static char root[256];
static struct ev_loop *loop;
static hk_watch *w;

static void record(const char *kind, const char *path)
{
    cr_assert_lt(got.n, MAX_CALLS);
    char buf[PATH_MAX + 16];
    snprintf(buf, sizeof buf, "%s %s", kind, path + strlen(root)); /* relative to root: "/a.torrent" */
    got.v[got.n++] = strdup(buf);
}

static void s_load(void *arg, const char *path, const struct stat *st)
{
    (void)arg;
    cr_assert(S_ISREG(st->st_mode), "load of a non-file %s", path);
    record("load", path);
}

static void s_forget(void *arg, const char *path)
{
    (void)arg;
    record("forget", path);
}

static void s_below(void *arg, const char *dir)
{
    (void)arg;
    record("below", dir);
}

static void s_rescan(void *arg, const char *why)
{
    (void)arg;
    cr_assert(why && why[0]);
    got.rescans++;
}

static bool s_busy(void *arg)
{
    (void)arg;
    return got.busy;
}

static void reset(void)
{
    for (size_t i = 0; i < got.n; i++)
        free(got.v[i]);
    got.n = 0;
    got.rescans = 0;
}

static void path_of(char *p, const char *rel)
{
    snprintf(p, PATH_MAX, "%s/%s", root, rel);
}

static void write_file(const char *rel, const char *text)
{
    char p[PATH_MAX];
    path_of(p, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0, "%s", p);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void mkdir_rel(const char *rel)
{
    char p[PATH_MAX];
    path_of(p, rel);
    cr_assert_eq(mkdir(p, 0755), 0, "%s", p);
}

static void rename_rel(const char *from, const char *to)
{
    char a[PATH_MAX], b[PATH_MAX];
    path_of(a, from);
    path_of(b, to);
    cr_assert_eq(rename(a, b), 0, "%s -> %s", a, b);
}

/* Reads what the kernel queued (the events of a syscall are queued when it returns), then flushes. */
static void pump(void)
{
    ev_run(loop, EVRUN_NOWAIT);
    hk_watch_flush(w);
}

static void expect(size_t n, const char *const *want)
{
    for (size_t i = 0; i < got.n && i < n; i++)
        cr_expect_str_eq(got.v[i], want[i], "call %zu", i);
    cr_assert_eq(got.n, n, "%zu calls, %zu expected (first: %s)", got.n, n, got.n ? got.v[0] : "-");
}

static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/hk_watch_test_XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    loop = ev_loop_new(EVFLAG_AUTO);
    const hk_watch_sink sink = { .load = s_load, .forget = s_forget, .forget_below = s_below, .rescan = s_rescan,
                                 .busy = s_busy, .arg = NULL };
    char err[256];
    w = hk_watch_new(loop, &sink, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
}

static void teardown(void)
{
    hk_watch_free(w);
    ev_loop_destroy(loop);
    reset();
    got.busy = false;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(watch, .init = setup, .fini = teardown);

static void add_root(void)
{
    char err[256];
    cr_assert_eq(hk_watch_add_root(w, root, err, sizeof err), 0, "%s", err);
}

Test(watch, files_written_renamed_and_deleted)
{
    mkdir_rel("old");
    add_root();
    hk_watch_stats st;
    hk_watch_stats_get(w, &st);
    cr_assert_eq(st.watched, 2, "the root and old/");
    cr_assert_eq(got.n, 0, "watching loads nothing by itself");

    write_file("a.torrent", "x");
    write_file("a.torrent", "xy"); /* two writes in one spell: one load */
    write_file("b.torrent.part", "x");
    rename_rel("b.torrent.part", "b.torrent");
    write_file(".hidden.torrent", "x");
    write_file("notes.txt", "x");
    pump();
    expect(2, (const char *const[]){ "load /a.torrent", "load /b.torrent" });
    reset();

    rename_rel("b.torrent", "old/c.torrent"); /* within the tree: forgotten, then loaded under its new name */
    pump();
    expect(2, (const char *const[]){ "forget /b.torrent", "load /old/c.torrent" });
    reset();

    char p[PATH_MAX];
    path_of(p, "a.torrent");
    cr_assert_eq(unlink(p), 0);
    write_file("d.torrent", "x");
    pump();
    expect(2, (const char *const[]){ "forget /a.torrent", "load /d.torrent" });
    reset();
    pump();
    cr_assert_eq(got.n, 0, "a flush without events does nothing");
}

Test(watch, folders_created_moved_in_and_out)
{
    char outside[300];
    snprintf(outside, sizeof outside, "%s.out", root);
    cr_assert_eq(mkdir(outside, 0755), 0);
    add_root();

    mkdir_rel("new");
    write_file("new/e.torrent", "x"); /* before the folder's watch exists: found by the subtree's listing */
    pump();
    expect(1, (const char *const[]){ "load /new/e.torrent" });
    reset();
    write_file("new/f.torrent", "x"); /* the new folder is watched now */
    pump();
    expect(1, (const char *const[]){ "load /new/f.torrent" });
    reset();

    /* a tree moved in from outside: every .torrent in it, at any depth */
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/deep", outside);
    cr_assert_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/deep/er", outside);
    cr_assert_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/deep/er/g.torrent", outside);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fclose(f);
    char in[PATH_MAX];
    path_of(in, "deep");
    snprintf(p, sizeof p, "%s/deep", outside);
    cr_assert_eq(rename(p, in), 0);
    pump();
    expect(1, (const char *const[]){ "load /deep/er/g.torrent" });
    reset();
    hk_watch_stats st;
    hk_watch_stats_get(w, &st);
    cr_assert_eq(st.watched, 4, "root, new, deep, deep/er: %zu", st.watched);

    /* moved out: what was below it is forgotten, its watches dropped; later changes in it are not seen */
    snprintf(p, sizeof p, "%s/gone", outside);
    cr_assert_eq(rename(in, p), 0);
    pump();
    expect(1, (const char *const[]){ "below /deep" });
    reset();
    hk_watch_stats_get(w, &st);
    cr_assert_eq(st.watched, 2, "deep and deep/er no longer watched: %zu", st.watched);
    snprintf(p, sizeof p, "%s/gone/er/h.torrent", outside);
    f = fopen(p, "w");
    cr_assert_not_null(f);
    fclose(f);
    pump();
    cr_assert_eq(got.n, 0, "a change in a folder moved out is not seen (%s)", got.n ? got.v[0] : "");
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", outside);
    cr_assert_eq(system(cmd), 0);
}

Test(watch, symbolic_links_are_not_followed)
{
    char outside[300];
    snprintf(outside, sizeof outside, "%s.out", root);
    cr_assert_eq(mkdir(outside, 0755), 0);
    add_root();
    char p[PATH_MAX];
    path_of(p, "link");
    cr_assert_eq(symlink(outside, p), 0);
    pump();
    snprintf(p, sizeof p, "%s/i.torrent", outside);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fclose(f);
    path_of(p, "j.torrent");
    cr_assert_eq(symlink("/etc/hostname", p), 0);
    pump();
    for (size_t i = 0; i < got.n; i++)
        cr_assert(strncmp(got.v[i], "load", 4) != 0, "loaded through a link: %s", got.v[i]);
    hk_watch_stats st;
    hk_watch_stats_get(w, &st);
    cr_assert_eq(st.watched, 1, "the linked folder is not watched");
    path_of(p, "link/i.torrent");
    cr_assert(!hk_watch_reachable(w, p), "a path through a link is not reachable");
    write_file("k.torrent", "x");
    path_of(p, "k.torrent");
    cr_assert(hk_watch_reachable(w, p));
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", outside);
    cr_assert_eq(system(cmd), 0);
}

Test(watch, busy_holds_changes)
{
    add_root();
    got.busy = true;
    write_file("a.torrent", "x");
    pump();
    cr_assert_eq(got.n, 0, "nothing applied during a rescan");
    got.busy = false;
    hk_watch_flush(w);
    expect(1, (const char *const[]){ "load /a.torrent" });
}

Test(watch, timer_flushes_on_its_own)
{
    add_root();
    write_file("a.torrent", "x");
    ev_tstamp t0 = ev_time();
    while (got.n == 0 && ev_time() - t0 < 3.0)
        ev_run(loop, EVRUN_ONCE);
    expect(1, (const char *const[]){ "load /a.torrent" });
    cr_assert_geq(ev_time() - t0, HK_WATCH_DEBOUNCE * 0.9, "debounced");
    cr_assert_lt(ev_time() - t0, 1.0, "within a second");
}

Test(watch, overflow_asks_for_a_rescan)
{
    add_root();
    long max = 16384;
    FILE *f = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
    if (f) {
        cr_assert_eq(fscanf(f, "%ld", &max), 1);
        fclose(f);
    }
    cr_assert_lt(max, 1 << 20, "max_queued_events %ld: too many to overflow in a test", max);
    long files = max / 3 + 64; /* create, close_write, delete: 3 events each */
    char p[PATH_MAX];
    for (long i = 0; i < files; i++) {
        snprintf(p, sizeof p, "%s/f%ld.torrent", root, i);
        int fd = open(p, O_WRONLY | O_CREAT, 0644);
        cr_assert_geq(fd, 0);
        close(fd);
        unlink(p);
    }
    for (int i = 0; i < 100; i++) /* read the queue (several reads of 64 KiB) */
        ev_run(loop, EVRUN_NOWAIT);
    hk_watch_flush(w);
    cr_assert_eq(got.rescans, 1, "one rescan asked for");
    cr_assert_eq(got.n, 0, "the rescan looks at everything: no path applied (%zu)", got.n);
    hk_watch_stats st;
    hk_watch_stats_get(w, &st);
    cr_assert_eq(st.watched, 1, "the root is still watched");
    write_file("after.torrent", "x"); /* and watching goes on */
    pump();
    expect(1, (const char *const[]){ "load /after.torrent" });
}

Test(watch, a_dir_deleted_asks_for_a_rescan_and_is_watched_again_once_back)
{
    add_root();
    cr_assert_eq(rmdir(root), 0);
    for (int i = 0; i < 5; i++) /* IN_DELETE_SELF, then IN_IGNORED */
        ev_run(loop, EVRUN_NOWAIT);
    hk_watch_flush(w);
    cr_assert_eq(got.rescans, 1, "a rescan asked for");
    hk_watch_stats st;
    hk_watch_stats_get(w, &st);
    cr_assert_eq(st.watched, 0, "nothing watched while the DIR is gone");
    cr_assert_eq(hk_watch_rewatch(w), 0, "not there: not watched");
    cr_assert_eq(mkdir(root, 0755), 0);
    cr_assert_eq(hk_watch_rewatch(w), 1, "there again: watched");
    cr_assert_eq(hk_watch_rewatch(w), 0, "already watched: nothing to do");
    write_file("back.torrent", "x");
    pump();
    expect(1, (const char *const[]){ "load /back.torrent" });
}
