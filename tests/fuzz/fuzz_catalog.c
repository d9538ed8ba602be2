/* Fuzz target for the catalog: the walk (backend-real/lib/catalog/scan.c), the rescan (rescan.c), hot add and remove
 * through the catalog (catalog.c) and its table of paths (served.c), with the real store behind them, on a real
 * folder tree in a private directory (on /dev/shm when there is one: tmpfs keeps an iteration to a few ms).
 *
 * Input: a program of 3-byte instructions (op, a, b) run against a runtime (hk_real, no listener, no trackers)
 * serving DIR = <base>/dir, which starts empty. The instructions build and change the tree: write a .torrent (one of
 * six valid torrents, or a mutated copy: a byte flipped, cut short, junk appended) at one of a few paths (odd bytes,
 * hidden names, nested folders, inside a data folder), write or damage the data of a torrent beside it, remove,
 * rename, replace an entry by a symbolic link to a tree outside DIR (same names, same sizes), touch; and drive the
 * catalog: a whole rescan, a rescan a few steps at a time with the tree changing between steps, a direct add, a
 * forget, a turn of the loop (the periodic check). Every data byte inside DIR is 'I', every byte outside is 'O'.
 * Every write gives the file a new mtime (a counter), as a file system with fine timestamps would: a rewrite in place
 * within one tick of the kernel's coarse clock is not what this target looks for.
 *
 * Invariants, after every whole rescan (nothing changes during it):
 *   - every path in the table lies below DIR; the seeder serves exactly the table's storages, each under the
 *     info-hash the table records; the rescan's count of served torrents is the runtime's;
 *   - the walk examined exactly the .torrent files an independent walk finds (regular, not hidden, no link on the
 *     way);
 *   - a served torrent that is not failed serves no byte from outside DIR: a pin of the first byte of each of its
 *     files never reads 'O';
 *   - the info-hash served from a path is the one of the file there now (read again);
 *   - a second rescan right after it changes nothing (nothing added, nothing removed).
 * After every instruction the counts agree; no crash, no leak, no sanitizer report. */
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "log.h"
#include "real_runtime.h"
#include "rescan.h"
#include "scan.h"
#include "torrent_builder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NT 6            /* torrent templates */
#define MAX_OPS 48
#define MAX_FILES 4

/* ---- the world: templates, paths, the private folders ---- */

typedef struct tmpl {
    const char *name;                  /* the data's name beside the .torrent */
    size_t nfiles;
    tb_file files[MAX_FILES];          /* path NULL: single file */
    uint32_t piece_length;
    uint8_t *bytes;
    size_t len;
    uint8_t ih[20];
} tmpl;

static tmpl T[NT] = {
    { "a.bin", 1, { { NULL, 1000, false } }, 16384, NULL, 0, { 0 } },
    { "b.bin", 1, { { NULL, 40000, false } }, 16384, NULL, 0, { 0 } },
    { "m", 2, { { "x", 3000, false }, { "y", 20000, false } }, 16384, NULL, 0, { 0 } },
    { "m", 2, { { "x", 3000, false }, { "y", 20001, false } }, 16384, NULL, 0, { 0 } },
    { "a.bin", 1, { { NULL, 1000, false } }, 32768, NULL, 0, { 0 } },
    { "n", 3, { { "p", 5, false }, { "pad", 16379, true }, { "q", 70000, false } }, 16384, NULL, 0, { 0 } },
};

/* Where .torrent files go (relative to DIR). */
static const char *const slots[] = {
    "t0.torrent", "t1.torrent", "sub/t2.torrent", "sub/deep/t3.torrent", "\x01\x7f\xff odd.torrent",
    ".hidden.torrent", "sub/x.torrent", "m/inner.torrent",
};
#define NSLOTS (sizeof slots / sizeof *slots)
/* Folders data is written in (the folder of a slot). */
static const char *const folders[] = { "", "sub/", "sub/deep/", "m/" };
#define NFOLDERS (sizeof folders / sizeof *folders)
/* Entries that are removed, renamed, linked: the slots, then folders and data. */
static const char *const others[] = {
    "sub", "sub/deep", "m", "a.bin", "b.bin", "n", "m/x", "m/y", "sub/m", "sub/a.bin", "sub/deep/b.bin", "n/q",
};
#define NOTHERS (sizeof others / sizeof *others)
#define NENTRIES (NSLOTS + NOTHERS)
/* Link targets outside DIR (relative to base), and two that go nowhere or back into DIR. */
static const char *const targets[] = {
    "outside", "outside/sub", "outside/m", "outside/a.bin", "outside/t0.torrent", "outside/t2.torrent",
    "nowhere", "dir",
};
#define NTARGETS (sizeof targets / sizeof *targets)

static char base[256], dir[320];
static struct ev_loop *loop;
static long long clock_tick = 1000000000; /* mtime of the next write */

static const char *entry(unsigned i)
{
    i %= NENTRIES;
    return i < NSLOTS ? slots[i] : others[i - NSLOTS];
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    remove(p);
    return 0;
}

static void rm_tree(const char *p)
{
    nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_base(void)
{
    rm_tree(base);
}

/* Writes len bytes at path (no link followed at the end) with the next mtime: 0, or -1. */
static int write_at(const char *path, const void *b, size_t len, char fill)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    char buf[4096];
    memset(buf, fill, sizeof buf);
    size_t done = 0;
    while (done < len) {
        size_t n = len - done < sizeof buf ? len - done : sizeof buf;
        if (write(fd, b ? (const char *)b + done : buf, n) != (ssize_t)n)
            break;
        done += n;
    }
    struct timespec ts[2] = { { clock_tick, 0 }, { clock_tick, 0 } };
    clock_tick++;
    futimens(fd, ts);
    close(fd);
    return done == len ? 0 : -1;
}

/* Makes sure every folder on the way to rel (below top) exists and none is a link or a file; create: mkdir the
 * missing ones. 0, or -1 (the way is blocked: the instruction does nothing, never writes through a link). */
static int safe_way(const char *top, const char *rel, bool create)
{
    char p[PATH_MAX];
    size_t tl = strlen(top);
    memcpy(p, top, tl + 1);
    for (const char *s = rel; (s = strchr(s, '/')) != NULL; s++) {
        snprintf(p + tl, sizeof p - tl, "/%.*s", (int)(s - rel), rel);
        struct stat st;
        if (lstat(p, &st) == 0) {
            if (!S_ISDIR(st.st_mode))
                return -1;
        } else if (!create || mkdir(p, 0755) != 0) {
            return -1;
        }
    }
    return 0;
}

/* The data of template t below top/folder, every byte `fill`; damage 1: the last file one byte short, 2: it is
 * missing. */
static void write_data(const char *top, const char *folder, const tmpl *t, char fill, int damage)
{
    char rel[PATH_MAX], p[PATH_MAX];
    for (size_t i = 0; i < t->nfiles; i++) {
        if (t->files[i].pad)
            continue;
        bool last = i + 1 == t->nfiles;
        if (t->files[i].path)
            snprintf(rel, sizeof rel, "%s%s/%s", folder, t->name, t->files[i].path);
        else
            snprintf(rel, sizeof rel, "%s%s", folder, t->name);
        if (safe_way(top, rel, true) != 0)
            return;
        snprintf(p, sizeof p, "%s/%s", top, rel);
        if (last && damage == 2) {
            unlink(p);
            continue;
        }
        write_at(p, NULL, t->files[i].length - (last && damage == 1 ? 1 : 0), fill);
    }
}

/* The templates' bytes and info-hashes, the private folders and the tree outside DIR (never changed: every write
 * refuses a link on its way). */
static void init_world(void)
{
    for (size_t i = 0; i < NT; i++) {
        tmpl *t = &T[i];
        t->bytes = tb_torrent(t->name, t->piece_length, t->files, t->nfiles, &t->len);
        mi_torrent *mi;
        mi_error me = { "" };
        if (!t->bytes || mi_parse(t->bytes, t->len, &mi, &me) != 0) {
            fprintf(stderr, "template %zu: %s\n", i, me.what);
            abort();
        }
        memcpy(t->ih, mi->info_hash, 20);
        mi_free(mi);
    }
    const char *shm = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(base, sizeof base, "%s/hekate-fuzz-catalog-XXXXXX", shm);
    if (!mkdtemp(base))
        abort();
    atexit(remove_base);
    snprintf(dir, sizeof dir, "%s/dir", base);
    char out[PATH_MAX], p[PATH_MAX];
    snprintf(out, sizeof out, "%s/outside", base);
    if (mkdir(out, 0755) != 0)
        abort();
    for (int pass = 0; pass < 2; pass++) { /* outside/ and outside/sub/ hold the same */
        const char *folder = pass ? "sub/" : "";
        for (size_t i = 0; i < NT; i++) {
            if (i == 3 || i == 4)
                continue; /* same names as 2 and 0 */
            write_data(out, folder, &T[i], 'O', 0);
        }
        for (size_t i = 0; i < NT; i++) {
            snprintf(p, sizeof p, "%s/%st%zu.torrent", out, folder, i);
            if (safe_way(out, p + strlen(out) + 1, true) != 0 || write_at(p, T[i].bytes, T[i].len, 0) != 0)
                abort();
        }
    }
    hk_log_set_level(HK_LOG_ERROR);
    loop = ev_loop_new(EVFLAG_AUTO);
    if (!loop)
        abort();
}

/* ---- the program ---- */

typedef struct run {
    hk_real *r;
    hk_rescan *rs;                     /* a rescan under way (stepped), or NULL */
    const char *dirs[1];
} run;

enum { OP_TORRENT, OP_DATA, OP_REMOVE, OP_RENAME, OP_LINK, OP_TOUCH, OP_RESCAN, OP_STEP, OP_ADD, OP_FORGET, OP_LOOP,
       OP_COUNT };

/* A .torrent from template a % NT at slot `slot`; b chooses the mutation (bits 5-6; 0: none) and where. */
static void op_torrent(unsigned slot, unsigned a, unsigned b)
{
    const tmpl *t = &T[a % NT];
    const char *rel = slots[slot % NSLOTS];
    if (safe_way(dir, rel, true) != 0)
        return;
    uint8_t *bytes = malloc(t->len + 8);
    memcpy(bytes, t->bytes, t->len);
    size_t len = t->len, at = (b * 37u) % t->len;
    switch ((b >> 5) & 3) {
    case 1: bytes[at] ^= (uint8_t)(1u << (b & 7)); break;
    case 2: len = at; break;
    case 3: memcpy(bytes + len, "i1e3:abc", 8), len += 8; break;
    default: break;
    }
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    write_at(p, bytes, len, 0);
    free(bytes);
}

/* Removes, renames, links or touches an entry, never through a link on its way. */
static void op_entry(int op, unsigned a, unsigned b)
{
    const char *rel = entry(a);
    char p[PATH_MAX], q[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    if (safe_way(dir, rel, op == OP_LINK) != 0)
        return;
    switch (op) {
    case OP_REMOVE:
        rm_tree(p);
        break;
    case OP_RENAME:
        if (safe_way(dir, entry(b), true) == 0) {
            snprintf(q, sizeof q, "%s/%s", dir, entry(b));
            rename(p, q);
        }
        break;
    case OP_LINK:
        rm_tree(p);
        snprintf(q, sizeof q, "%s/%s", base, targets[b % NTARGETS]);
        if (symlink(q, p) != 0)
            abort();
        break;
    case OP_TOUCH: {
        struct timespec ts[2] = { { clock_tick, 0 }, { clock_tick, 0 } };
        clock_tick++;
        utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
        break;
    }
    }
}

static void finish_rescan(run *w)
{
    if (!w->rs)
        return;
    while (!hk_rescan_step(w->rs, 3600.0)) {
    }
    hk_rescan_free(w->rs);
    w->rs = NULL;
}

/* The counts agree: the table's storages are the seeder's torrents, each under the recorded info-hash. */
static void check_counts(run *w)
{
    const hk_served *t = hk_real_served(w->r);
    hk_stats s;
    hk_seeder_stats(hk_real_seeder(w->r), &s);
    if (hk_real_torrents(w->r) != hk_served_with_storage(t) || s.torrents != hk_served_with_storage(t))
        abort();
    size_t cursor = 0, n = 0, with = 0;
    size_t dl = strlen(dir);
    for (const hk_served_rec *sv = hk_served_next(t, &cursor); sv; sv = hk_served_next(t, &cursor), n++) {
        char path[HK_SERVED_PATH_MAX];
        hk_served_path(sv, path, sizeof path);
        if (strncmp(path, dir, dl) != 0 || path[dl] != '/')
            abort(); /* a path outside DIR */
        if (!hk_served_storage(sv))
            continue;
        with++;
        hk_torrent_stats ts;
        const uint8_t *ih = hk_seeder_info_hash(hk_real_seeder(w->r), sv->torrent);
        if (!ih || !hk_seeder_torrent_stats(hk_real_seeder(w->r), ih, &ts) || ts.storage != hk_served_storage(sv))
            abort();
        if (hk_served_find_storage(t, hk_served_storage(sv)) != sv || hk_served_find(t, path) != sv)
            abort();
    }
    if (n != hk_served_count(t) || with != hk_served_with_storage(t))
        abort();
}

static bool is_torrent_name(const char *name)
{
    size_t n = strlen(name);
    return n > 8 && strcmp(name + n - 8, ".torrent") == 0;
}

/* The .torrent files a walk must report below path: regular, not hidden, reached through folders only. */
static size_t count_torrents(const char *path, unsigned depth)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    size_t n = 0;
    char p[PATH_MAX];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth < HK_SCAN_MAX_DEPTH)
            n += count_torrents(p, depth + 1);
        else if (S_ISREG(st.st_mode) && is_torrent_name(e->d_name))
            n++;
    }
    closedir(d);
    return n;
}

/* Every served path holds, now, the torrent served from it. */
static void check_files_hold_what_is_served(run *w)
{
    const hk_served *t = hk_real_served(w->r);
    size_t cursor = 0;
    for (const hk_served_rec *sv = hk_served_next(t, &cursor); sv; sv = hk_served_next(t, &cursor)) {
        if (!hk_served_storage(sv))
            continue;
        char err[256];
        size_t len;
        uint8_t *bytes = hk_read_file(HK_SERVED_PATH(sv), HK_MAX_TORRENT_FILE, &len, err, sizeof err);
        mi_torrent *mi = NULL;
        const uint8_t *ih = hk_seeder_info_hash(hk_real_seeder(w->r), sv->torrent);
        if (!bytes || !ih || mi_parse(bytes, len, &mi, NULL) != 0 || memcmp(mi->info_hash, ih, 20) != 0) {
            fprintf(stderr, "%s: served, but the file holds %s now\n", HK_SERVED_PATH(sv), bytes ? "another torrent" : err);
            abort();
        }
        mi_free(mi);
        free(bytes);
    }
}

/* No byte from outside DIR: the first byte of every file of every healthy served torrent is not 'O'. (It may be other
 * bytes of DIR than the data's: a data file renamed over and rewritten is still mapped until the periodic check, as
 * the store's contract says; only a byte from outside is a breach.) */
static void check_no_byte_from_outside(run *w)
{
    const hk_served *t = hk_real_served(w->r);
    hk_store *st = hk_real_store(w->r);
    size_t cursor = 0;
    for (const hk_served_rec *sv = hk_served_next(t, &cursor); sv; sv = hk_served_next(t, &cursor)) {
        if (!hk_served_storage(sv) || hk_store_failed(st, hk_served_storage(sv), NULL))
            continue;
        for (uint32_t f = 0; f < MAX_FILES; f++) {
            hk_extent e = { .storage = hk_served_storage(sv), .file = f, .offset = 0, .length = 1 };
            struct iovec iov;
            if (hk_store_pin(st, &e, &iov, NULL) != 0)
                continue;
            uint8_t byte = *(const uint8_t *)iov.iov_base;
            hk_store_unpin(st, &e);
            if (byte == 'O') {
                fprintf(stderr, "%s: file %u served from outside DIR ('%c')\n", HK_SERVED_PATH(sv), f, byte);
                abort();
            }
        }
    }
}

/* A whole rescan, then the invariants of the header. */
static void rescan_checked(run *w)
{
    finish_rescan(w);
    hk_rescan_stats st, again;
    if (hk_rescan_run(w->r, w->dirs, 1, NULL, 0, &st) != 0 || !st.done)
        abort();
    if (st.served != hk_real_torrents(w->r))
        abort();
    check_counts(w);
    size_t expect = count_torrents(dir, 1);
    if (st.files != expect) {
        fprintf(stderr, "the rescan examined %zu .torrent files, there are %zu\n", st.files, expect);
        abort();
    }
    check_files_hold_what_is_served(w);
    if (hk_rescan_run(w->r, w->dirs, 1, NULL, 0, &again) != 0 || again.added || again.removed ||
        again.files != st.files || again.served != st.served) {
        fprintf(stderr, "a second rescan changed things: %zu added, %zu removed\n", again.added, again.removed);
        abort();
    }
    check_no_byte_from_outside(w);
    check_counts(w);
}

static void slot_path(char *p, size_t cap, unsigned a)
{
    snprintf(p, cap, "%s/%s", dir, slots[a % NSLOTS]);
}

static void step(run *w, unsigned op, unsigned a, unsigned b)
{
    char p[PATH_MAX], err[512];
    switch (op) {
    case OP_TORRENT: op_torrent(a, a / NSLOTS, b); break;
    case OP_DATA: write_data(dir, folders[a % NFOLDERS], &T[b % NT], 'I', (int)(b / NT) % 3); break;
    case OP_REMOVE:
    case OP_RENAME:
    case OP_LINK:
    case OP_TOUCH: op_entry((int)op, a, b); break;
    case OP_RESCAN: rescan_checked(w); break;
    case OP_STEP:
        if (!w->rs && !(w->rs = hk_rescan_new(w->r, w->dirs, 1, NULL, 0)))
            abort();
        for (unsigned i = 0; i <= a % 4; i++)
            if (hk_rescan_step(w->rs, 0)) {
                hk_rescan_free(w->rs);
                w->rs = NULL;
                break;
            }
        break;
    case OP_ADD: {
        finish_rescan(w);
        /* A direct add takes the path as the caller's choice (links above it resolved, hidden names too): only paths
         * a walk reaches, so that the rescans are judged on their own. */
        if (safe_way(dir, slots[a % NSLOTS], false) != 0 || slots[a % NSLOTS][0] == '.')
            break;
        slot_path(p, sizeof p, a);
        mi_torrent *mi = NULL;
        if (hk_real_add_torrent_file(w->r, p, b & 1 ? &mi : NULL, err, sizeof err) == 0 && mi)
            mi_free(mi);
        break;
    }
    case OP_FORGET:
        finish_rescan(w);
        slot_path(p, sizeof p, a);
        hk_real_forget(w->r, p, NULL);
        break;
    case OP_LOOP:
        ev_sleep(0.0012); /* past the 1 ms check interval: the periodic check runs */
        ev_run(loop, EVRUN_NOWAIT);
        break;
    }
    check_counts(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!loop)
        init_world();
    rm_tree(dir);
    if (mkdir(dir, 0755) != 0)
        abort();
    hk_real_opts o;
    hk_real_opts_default(&o);
    o.listen = false;
    o.trackers = false;
    o.disk_threads = 1;
    o.check_interval = 0.001;
    char err[512];
    run w = { .r = hk_real_new(loop, &o, err, sizeof err), .dirs = { dir } };
    if (!w.r)
        abort();
    for (size_t i = 0; i + 3 <= size && i / 3 < MAX_OPS; i += 3)
        step(&w, data[i] % OP_COUNT, data[i + 1], data[i + 2]);
    rescan_checked(&w);
    hk_real_free(w.r);
    rm_tree(dir);
    return 0;
}
