/* Tests of backend-real/lib/scan: nested .torrent files found in sorted order, symbolic links never followed
 * (folders or files), hidden entries and other names skipped, depth limit, a .torrent given directly, a symlinked
 * root folder, errors for missing roots, and stopping the walk from a callback. The step-by-step iterator gives the
 * same results in the same order, each torrent with the lstat of its file, sees changes made between its steps, and
 * can be dropped half-way (the sanitizer build checks that nothing leaks). */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scan.h"

#define MAX_FOUND 128

typedef struct found {
    char *paths[MAX_FOUND];
    size_t n;
    char *problems[MAX_FOUND];
    size_t nproblems;
    size_t stop_after;   /* 0: never stop */
} found;

static int on_torrent(void *arg, const char *path)
{
    found *f = arg;
    cr_assert_lt(f->n, MAX_FOUND);
    f->paths[f->n++] = strdup(path);
    return f->stop_after && f->n >= f->stop_after ? 7 : 0;
}

static int on_problem(void *arg, const char *path, const char *why)
{
    found *f = arg;
    cr_assert_lt(f->nproblems, MAX_FOUND);
    char buf[PATH_MAX + 256];
    snprintf(buf, sizeof buf, "%s: %s", path, why);
    f->problems[f->nproblems++] = strdup(buf);
    return 0;
}

static void found_free(found *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->paths[i]);
    for (size_t i = 0; i < f->nproblems; i++)
        free(f->problems[i]);
    memset(f, 0, sizeof *f);
}

static char root[256];

static void mk(const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    cr_assert_eq(mkdir(p, 0755), 0, "mkdir %s: %s", p, strerror(errno));
}

static void touch(const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0, "create %s: %s", p, strerror(errno));
    cr_assert_eq(write(fd, "d8:announce0:e", 14), 14);
    close(fd);
}

static void link_to(const char *target, const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    cr_assert_eq(symlink(target, p), 0, "symlink %s: %s", p, strerror(errno));
}

static const char *rel(const char *path)
{
    size_t n = strlen(root);
    cr_assert_eq(strncmp(path, root, n), 0, "%s is not below %s", path, root);
    return path + n + (path[n] == '/' ? 1 : 0);
}

/* hk_scan of root/relpath with the recording callbacks; its return code. */
static int scan_rel(found *f, const char *relpath)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", root, relpath);
    hk_scan_cb cb = { .on_torrent = on_torrent, .on_problem = on_problem, .arg = f };
    return hk_scan(p, &cb);
}

static void make_root(void)
{
    snprintf(root, sizeof root, "/tmp/hekate-scan-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
}

static void remove_root(void)
{
    char cmd[PATH_MAX + 32];
    if (strncmp(root, "/tmp/hekate-scan-", 17) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        cr_assert_eq(system(cmd), 0);
    }
}

TestSuite(scan, .init = make_root, .fini = remove_root);

Test(scan, finds_nested_torrents_in_sorted_order_and_skips_links)
{
    touch("b.torrent");
    touch("a.torrent");
    touch("notes.txt");
    touch("UPPER.TORRENT");      /* suffix is case-sensitive */
    touch(".torrent");           /* hidden, and nothing before the suffix */
    mk("sub");
    touch("sub/c.torrent");
    mk("sub/deeper");
    touch("sub/deeper/d.torrent");
    mk("sub/deeper/e.torrent");  /* a folder named like a torrent: descended into, not reported */
    touch("sub/deeper/e.torrent/f.torrent");
    mk(".hidden");
    touch(".hidden/g.torrent");
    mk("outside");
    touch("outside/h.torrent");
    link_to("../outside", "sub/linkdir");         /* symlinked folder: reported, not followed */
    link_to("sub/c.torrent", "linked.torrent");   /* symlinked .torrent: reported, not followed */
    link_to("notes.txt", "other-link");            /* other symlinks: skipped silently */
    link_to(".", "sub/deeper/loop");               /* a loop: reported (a link to a folder), never followed */

    found f = { .n = 0 };
    hk_scan_cb cb = { .on_torrent = on_torrent, .on_problem = on_problem, .arg = &f };
    hk_scan_stats st;
    cr_assert_eq(hk_scan_stats_run(root, &cb, &st), 0);

    const char *want[] = { "a.torrent", "b.torrent", "outside/h.torrent", "sub/c.torrent", "sub/deeper/d.torrent",
                           "sub/deeper/e.torrent/f.torrent" };
    cr_assert_eq(f.n, sizeof want / sizeof *want, "found %zu", f.n);
    for (size_t i = 0; i < f.n; i++)
        cr_assert_str_eq(rel(f.paths[i]), want[i]);
    cr_assert_eq(f.nproblems, 3);
    cr_assert(strstr(f.problems[0], "linked.torrent: is a symbolic link"), "%s", f.problems[0]);
    cr_assert(strstr(f.problems[1], "sub/deeper/loop: is a symbolic link to a folder; not followed"), "%s",
              f.problems[1]);
    cr_assert(strstr(f.problems[2], "sub/linkdir: is a symbolic link to a folder; not followed"), "%s",
              f.problems[2]);
    cr_assert_eq(st.torrents, 6);
    cr_assert_eq(st.symlinks_skipped, 4);
    cr_assert_eq(st.folders, 5); /* root, outside, sub, sub/deeper, sub/deeper/e.torrent */
    found_free(&f);
}

Test(scan, trailing_slashes_and_a_torrent_given_directly)
{
    mk("x");
    touch("x/one.torrent");
    found f = { .n = 0 };
    cr_assert_eq(scan_rel(&f, "x///"), 0);
    cr_assert_eq(f.n, 1);
    cr_assert_str_eq(rel(f.paths[0]), "x/one.torrent", "no doubled slash in %s", f.paths[0]);
    found_free(&f);

    cr_assert_eq(scan_rel(&f, "x/one.torrent"), 0);
    cr_assert_eq(f.n, 1);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/x/one.torrent", root);
    cr_assert_str_eq(f.paths[0], p);
    found_free(&f);
}

Test(scan, symlinked_root_folder_is_followed_once)
{
    mk("real");
    touch("real/r.torrent");
    mk("real/inner");
    link_to("..", "real/inner/up");  /* below the root, links are still not followed */
    link_to("real", "alias");
    found f = { .n = 0 };
    cr_assert_eq(scan_rel(&f, "alias"), 0);
    cr_assert_eq(f.n, 1);
    cr_assert_str_eq(rel(f.paths[0]), "alias/r.torrent");
    cr_assert_eq(f.nproblems, 1); /* the link below the root is said, not followed */
    cr_assert(strstr(f.problems[0], "alias/inner/up: is a symbolic link to a folder; not followed"), "%s",
              f.problems[0]);
    found_free(&f);

    link_to("real/r.torrent", "file-alias.torrent");
    cr_assert_eq(scan_rel(&f, "file-alias.torrent"), -1);
    cr_assert_eq(f.n, 0);
    cr_assert_eq(f.nproblems, 1);
    cr_assert(strstr(f.problems[0], "symbolic link"), "%s", f.problems[0]);
    found_free(&f);
}

Test(scan, missing_or_wrong_roots_are_reported)
{
    found f = { .n = 0 };
    cr_assert_eq(scan_rel(&f, "nope"), -1);
    cr_assert_eq(f.nproblems, 1);
    cr_assert(strstr(f.problems[0], "No such file or directory"), "%s", f.problems[0]);
    found_free(&f);

    touch("plain.txt");
    cr_assert_eq(scan_rel(&f, "plain.txt"), -1);
    cr_assert(strstr(f.problems[0], "not a folder or a .torrent file"), "%s", f.problems[0]);
    found_free(&f);

    hk_scan_cb cb = { .on_torrent = on_torrent, .on_problem = on_problem, .arg = &f };
    cr_assert_eq(hk_scan("", &cb), -1);
    cr_assert_eq(f.nproblems, 1);
    found_free(&f);

    /* Without an on_problem callback the walk still works and still fails. */
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/plain.txt", root);
    hk_scan_cb quiet = { .on_torrent = on_torrent, .arg = &f };
    cr_assert_eq(hk_scan(p, &quiet), -1);
    found_free(&f);
}

Test(scan, depth_is_bounded)
{
    char relp[1024] = "";
    for (int i = 0; i < HK_SCAN_MAX_DEPTH + 3; i++) {
        strcat(relp, i ? "/d" : "d");
        mk(relp);
        if (i == 2 || i == HK_SCAN_MAX_DEPTH + 2) {
            char t[PATH_MAX + 32];
            snprintf(t, sizeof t, "%s/t%d.torrent", relp, i);
            touch(t);
        }
    }
    found f = { .n = 0 };
    hk_scan_cb cb = { .on_torrent = on_torrent, .on_problem = on_problem, .arg = &f };
    cr_assert_eq(hk_scan(root, &cb), 0);
    cr_assert_eq(f.n, 1, "only the shallow torrent is found");
    cr_assert(strstr(f.paths[0], "t2.torrent"));
    cr_assert_eq(f.nproblems, 1);
    cr_assert(strstr(f.problems[0], "too deep"), "%s", f.problems[0]);
    found_free(&f);
}

Test(scan, callback_can_stop_the_walk)
{
    touch("1.torrent");
    touch("2.torrent");
    touch("3.torrent");
    found f = { .n = 0, .stop_after = 2 };
    hk_scan_cb cb = { .on_torrent = on_torrent, .on_problem = on_problem, .arg = &f };
    cr_assert_eq(hk_scan(root, &cb), 7);
    cr_assert_eq(f.n, 2);
    cr_assert_str_eq(rel(f.paths[1]), "2.torrent");
    found_free(&f);
}

Test(scan, iterator_steps_match_the_callback_walk)
{
    mk("a");
    touch("a/1.torrent");
    mk("a/b");
    touch("a/b/2.torrent");
    touch("a/b/skip.txt");
    link_to("1.torrent", "a/link.torrent");
    touch("c.torrent");
    mk("d");
    touch("d/3.torrent");

    found f = { .n = 0 };
    hk_scan_cb cb = { .on_torrent = on_torrent, .on_problem = on_problem, .arg = &f };
    cr_assert_eq(hk_scan(root, &cb), 0);

    hk_scan_iter *it = hk_scan_iter_new(root);
    cr_assert_not_null(it);
    size_t nt = 0, np = 0;
    for (;;) {
        const char *path = NULL, *why = NULL;
        struct stat st;
        memset(&st, 0, sizeof st);
        hk_scan_event ev = hk_scan_iter_next(it, &path, &why, &st);
        if (ev == HK_SCAN_END)
            break;
        cr_assert_not_null(path);
        if (ev == HK_SCAN_TORRENT) {
            cr_assert_lt(nt, f.n, "the iterator finds more than the walk: %s", path);
            cr_assert_str_eq(path, f.paths[nt], "result %zu differs", nt);
            struct stat want;
            cr_assert_eq(lstat(path, &want), 0);
            cr_assert(S_ISREG(st.st_mode) && st.st_ino == want.st_ino && st.st_dev == want.st_dev,
                      "%s: the stat handed out is not the file's", path);
            nt++;
        } else {
            cr_assert_eq(ev, HK_SCAN_PROBLEM);
            cr_assert_not_null(why);
            char buf[PATH_MAX + 256];
            snprintf(buf, sizeof buf, "%s: %s", path, why);
            cr_assert_lt(np, f.nproblems);
            cr_assert_str_eq(buf, f.problems[np]);
            np++;
        }
    }
    cr_assert_eq(nt, 4);
    cr_assert_eq(nt, f.n);
    cr_assert_eq(np, f.nproblems);
    cr_assert_eq(np, 1, "the symbolic link named *.torrent");
    cr_assert_eq(hk_scan_iter_next(it, NULL, NULL, NULL), HK_SCAN_END, "END stays END");
    cr_assert(!hk_scan_iter_root_failed(it));
    hk_scan_stats st;
    hk_scan_iter_stats(it, &st);
    cr_assert_eq(st.torrents, 4);
    cr_assert_eq(st.folders, 4); /* root, a, a/b, d */
    cr_assert_eq(st.problems, 1);
    hk_scan_iter_free(it);
    found_free(&f);
}

/* Regression (fuzz_catalog): a folder swapped for a symbolic link between two steps of the walk was followed: the
 * walk examined the paths it had listed through the link, so a rescan served a same-named torrent (and its data) from
 * the tree the link points to. */
Test(scan, a_folder_swapped_for_a_link_between_steps_is_left)
{
    mk("sub");
    mk("sub/deep");
    touch("sub/deep/a.torrent");
    touch("sub/t.torrent");
    mk(".elsewhere"); /* hidden: not walked; the tree the link will point to */
    mk(".elsewhere/sub");
    mk(".elsewhere/sub/deep");
    touch(".elsewhere/sub/t.torrent");
    touch(".elsewhere/sub/deep/z.torrent");
    hk_scan_iter *it = hk_scan_iter_new(root);
    cr_assert_not_null(it);
    const char *path, *why;
    cr_assert_eq(hk_scan_iter_next(it, &path, &why, NULL), HK_SCAN_TORRENT);
    cr_assert_str_eq(rel(path), "sub/deep/a.torrent");
    /* Between two steps, sub becomes a link to .elsewhere/sub, which holds t.torrent and deep/ too. */
    char from[PATH_MAX], to[PATH_MAX];
    snprintf(from, sizeof from, "%s/sub", root);
    snprintf(to, sizeof to, "%s/.old", root);
    cr_assert_eq(rename(from, to), 0);
    snprintf(to, sizeof to, "%s/.elsewhere/sub", root);
    cr_assert_eq(symlink(to, from), 0);
    size_t problems = 0;
    for (hk_scan_event ev; (ev = hk_scan_iter_next(it, &path, &why, NULL)) != HK_SCAN_END;) {
        cr_assert_neq(ev, HK_SCAN_TORRENT, "%s reported, reached through the link", path);
        cr_assert(strstr(why, "replaced while it was being scanned"), "%s: %s", path, why);
        problems++;
    }
    cr_assert_eq(problems, 2, "sub/deep and sub are left, each with a problem");
    hk_scan_stats st;
    hk_scan_iter_stats(it, &st);
    cr_assert_eq(st.torrents, 1);
    hk_scan_iter_free(it);
}

Test(scan, iterator_sees_changes_between_steps_and_can_stop_half_way)
{
    mk("a");
    touch("a/1.torrent");
    touch("a/2.torrent");
    mk("b");
    touch("b/3.torrent");
    hk_scan_iter *it = hk_scan_iter_new(root);
    cr_assert_not_null(it);
    const char *path;
    cr_assert_eq(hk_scan_iter_next(it, &path, NULL, NULL), HK_SCAN_TORRENT);
    cr_assert_str_eq(rel(path), "a/1.torrent");
    /* A file of the folder being read vanishes, and one appears in a folder not read yet. */
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/a/2.torrent", root);
    cr_assert_eq(unlink(p), 0);
    touch("b/0.torrent");
    cr_assert_eq(hk_scan_iter_next(it, &path, NULL, NULL), HK_SCAN_TORRENT);
    cr_assert_str_eq(rel(path), "b/0.torrent", "the vanished file is skipped silently, the new one found");
    hk_scan_iter_free(it); /* half-way: the folder frames are freed */

    /* A root that is not there: one problem, then the end; root_failed says so. */
    snprintf(p, sizeof p, "%s/nope", root);
    it = hk_scan_iter_new(p);
    const char *why = NULL;
    cr_assert_eq(hk_scan_iter_next(it, &path, &why, NULL), HK_SCAN_PROBLEM);
    cr_assert(strstr(why, "No such file"), "%s", why);
    cr_assert_eq(hk_scan_iter_next(it, &path, &why, NULL), HK_SCAN_END);
    cr_assert(hk_scan_iter_root_failed(it));
    hk_scan_iter_free(it);

    /* A root longer than PATH_MAX is refused as such, named as given. */
    char *longp = malloc(PATH_MAX + 10);
    memset(longp, 'x', PATH_MAX + 9);
    longp[PATH_MAX + 9] = '\0';
    it = hk_scan_iter_new(longp);
    cr_assert_eq(hk_scan_iter_next(it, &path, &why, NULL), HK_SCAN_PROBLEM);
    cr_assert_str_eq(why, "path too long");
    cr_assert_str_eq(path, longp);
    cr_assert(hk_scan_iter_root_failed(it));
    hk_scan_iter_free(it);
    free(longp);
}

/* All of one iterator walk of root with links followed below `roots`, recorded in f. */
static void walk_following(found *f, const char *const *roots, size_t n, hk_scan_stats *st)
{
    hk_scan_iter *it = hk_scan_iter_new(root);
    cr_assert_not_null(it);
    hk_scan_iter_follow(it, roots, n);
    for (;;) {
        const char *path, *why;
        hk_scan_event ev = hk_scan_iter_next(it, &path, &why, NULL);
        if (ev == HK_SCAN_END)
            break;
        if (ev == HK_SCAN_TORRENT)
            on_torrent(f, path);
        else
            on_problem(f, path, why);
    }
    hk_scan_iter_stats(it, st);
    hk_scan_iter_free(it);
}

/* --follow-links (issue 11 item 8): a link to a folder inside the served folders is walked under the link's path; a
 * link leading outside them is said and not followed, a link to a folder the walk is in (a loop) too; links to files
 * (a .torrent link included) are still not followed. */
Test(scan, links_to_folders_inside_are_followed_when_asked)
{
    mk("served");
    mk("served/pool");
    touch("served/pool/p.torrent");
    mk("served/sub");
    mk("outside");
    touch("outside/h.torrent");
    link_to("../pool", "served/sub/in");           /* inside: followed */
    link_to("../../outside", "served/sub/out");    /* outside: said */
    link_to("..", "served/sub/up");                /* a loop: said */
    link_to("pool/p.torrent", "served/l.torrent"); /* a .torrent link: said, not followed */
    char real[PATH_MAX], served[PATH_MAX + 16];
    cr_assert_not_null(realpath(root, real));
    snprintf(served, sizeof served, "%s/served", real);
    const char *roots[] = { served };
    snprintf(root + strlen(root), sizeof root - strlen(root), "/served");
    found f = { .n = 0 };
    hk_scan_stats st;
    walk_following(&f, roots, 1, &st);
    root[strlen(root) - strlen("/served")] = '\0';
    const char *want[] = { "served/pool/p.torrent", "served/sub/in/p.torrent" };
    cr_assert_eq(f.n, 2, "found %zu", f.n);
    for (size_t i = 0; i < f.n; i++)
        cr_assert_str_eq(rel(f.paths[i]), want[i]);
    cr_assert_eq(f.nproblems, 3);
    cr_assert(strstr(f.problems[0], "served/l.torrent: is a symbolic link; not followed"), "%s", f.problems[0]);
    cr_assert(strstr(f.problems[1], "served/sub/out: is a symbolic link to a folder outside the served folders"), "%s",
              f.problems[1]);
    cr_assert(strstr(f.problems[2], "served/sub/up: is a symbolic link to a folder it is in (a loop)"), "%s",
              f.problems[2]);
    cr_assert_eq(st.symlinks_followed, 1u);
    cr_assert_eq(st.symlinks_skipped, 3u);
    found_free(&f);

    /* without hk_scan_iter_follow nothing is followed: the same links are said as before */
    snprintf(root + strlen(root), sizeof root - strlen(root), "/served");
    walk_following(&f, roots, 0, &st);
    root[strlen(root) - strlen("/served")] = '\0';
    cr_assert_eq(f.n, 1);
    cr_assert_eq(st.symlinks_followed, 0u);
    found_free(&f);
}
