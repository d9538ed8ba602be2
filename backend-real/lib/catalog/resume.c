/* resume: loading and saving the resume state (see resume.h): the targets' files, the spool of descriptions, warm
 * start through the catalog, atomic replace on save. */
#include "resume.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"
#include "piece_state.h"
#include "resume_int.h"
#include "resume_state.h"

#define SPOOL_BUF (256u << 10)

double hk_resume_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- set-up ---- */

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* The spool: an unlinked file beside the first state file (same file system as the data it describes is not
 * needed; beside the state keeps it off /tmp). */
static int open_spool(const char *near)
{
    char tmpl[PATH_MAX];
    const char *slash = strrchr(near, '/');
    int n = slash ? snprintf(tmpl, sizeof tmpl, "%.*s/.hekate-spool-XXXXXX", (int)(slash - near), near)
                  : snprintf(tmpl, sizeof tmpl, ".hekate-spool-XXXXXX");
    if (n < 0 || (size_t)n >= sizeof tmpl)
        return -1;
    int fd = mkostemp(tmpl, O_CLOEXEC);
    if (fd >= 0)
        unlink(tmpl);
    return fd;
}

hk_resume *hk_resume_new(const char *state_file, bool per_dir, const char *const *dirs, size_t ndirs, char *err,
                         size_t errlen)
{
    hk_resume *rs = calloc(1, sizeof *rs);
    size_t nt = per_dir ? ndirs : 1;
    if (rs)
        rs->t = calloc(nt ? nt : 1, sizeof *rs->t);
    if (rs)
        rs->sbuf = malloc(SPOOL_BUF);
    if (!rs || !rs->t || !rs->sbuf) {
        snprintf(err, errlen, "out of memory");
        hk_resume_free(rs);
        return NULL;
    }
    rs->nt = nt;
    rs->per_dir = per_dir;
    rs->spool = -1;
    for (size_t i = 0; i < nt; i++) {
        target *t = &rs->t[i];
        t->fd[0] = t->fd[1] = -1;
        t->file = per_dir ? join(dirs[i], HK_RESUME_DIR_FILE) : strdup(state_file);
        t->ndirs = per_dir ? 1 : ndirs;
        t->dirs = calloc(t->ndirs ? t->ndirs : 1, sizeof *t->dirs);
        for (size_t d = 0; t->dirs && d < t->ndirs; d++)
            if (!(t->dirs[d] = strdup(dirs[per_dir ? i : d])))
                t->ndirs = d; /* freed as far as copied */
        if (!t->file || !t->dirs || t->ndirs != (per_dir ? 1 : ndirs)) {
            snprintf(err, errlen, "out of memory");
            hk_resume_free(rs);
            return NULL;
        }
    }
    rs->spool = open_spool(rs->t[0].file);
    if (rs->spool < 0) {
        snprintf(err, errlen, "%s: cannot create its spool file beside it: %s", rs->t[0].file, strerror(errno));
        hk_resume_free(rs);
        return NULL;
    }
    return rs;
}

void hk_resume_free(hk_resume *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; rs->t && i < rs->nt; i++) {
        for (int g = 0; g < 2; g++)
            if (rs->t[i].fd[g] >= 0)
                close(rs->t[i].fd[g]);
        free(rs->t[i].file);
        for (size_t d = 0; rs->t[i].dirs && d < rs->t[i].ndirs; d++)
            free(rs->t[i].dirs[d]);
        free(rs->t[i].dirs);
    }
    if (rs->spool >= 0)
        close(rs->spool);
    free(rs->t);
    free(rs->sbuf);
    free(rs);
}

const hk_resume_stats *hk_resume_stats_get(const hk_resume *rs)
{
    return &rs->st;
}

/* The target whose DIRs hold path (the first one), or -1. */
long hk_resume_target_of(const hk_resume *rs, const char *path)
{
    for (size_t i = 0; i < rs->nt; i++)
        for (size_t d = 0; !rs->t[i].retired && d < rs->t[i].ndirs; d++) {
            const char *dir = rs->t[i].dirs[d];
            size_t n = strlen(dir);
            while (n > 1 && dir[n - 1] == '/')
                n--;
            if (strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == 0 || dir[n - 1] == '/'))
                return (long)i;
        }
    return -1;
}

/* ---- a reload's DIRs ---- */

static char **copy_dirs(const char *const *dirs, size_t n)
{
    char **v = calloc(n ? n : 1, sizeof *v);
    for (size_t d = 0; v && d < n; d++)
        if (!(v[d] = strdup(dirs[d]))) {
            while (d--)
                free(v[d]);
            free(v);
            return NULL;
        }
    return v;
}

static void free_dirs(char **v, size_t n)
{
    for (size_t d = 0; v && d < n; d++)
        free(v[d]);
    free(v);
}

/* --state-per-dir: the target of dir (live or retired), or -1. */
static long target_of_dir(const hk_resume *rs, const char *dir)
{
    for (size_t i = 0; i < rs->nt; i++)
        if (rs->t[i].ndirs == 1 && strcmp(rs->t[i].dirs[0], dir) == 0)
            return (long)i;
    return -1;
}

static int add_dir_target(hk_resume *rs, const char *dir)
{
    target *nt = realloc(rs->t, (rs->nt + 1) * sizeof *nt);
    if (!nt)
        return -1;
    rs->t = nt;
    target *t = &rs->t[rs->nt];
    *t = (target){ .fd = { -1, -1 }, .ndirs = 1, .file = join(dir, HK_RESUME_DIR_FILE),
                   .dirs = copy_dirs(&dir, 1) };
    if (!t->file || !t->dirs) {
        free(t->file);
        free_dirs(t->dirs, 1);
        return -1;
    }
    rs->nt++;
    return 0;
}

int hk_resume_set_dirs(hk_resume *rs, const char *const *dirs, size_t ndirs)
{
    if (rs->busy)
        return 1;
    if (!rs->per_dir) {
        char **v = copy_dirs(dirs, ndirs);
        if (!v)
            return -1;
        free_dirs(rs->t[0].dirs, rs->t[0].ndirs);
        rs->t[0].dirs = v;
        rs->t[0].ndirs = ndirs;
        return 0;
    }
    for (size_t i = 0; i < rs->nt; i++) {
        bool kept = false;
        for (size_t d = 0; d < ndirs && !kept; d++)
            kept = strcmp(rs->t[i].dirs[0], dirs[d]) == 0;
        rs->t[i].retired = !kept; /* a retired file keeps its descriptions open while refs into it remain */
    }
    for (size_t d = 0; d < ndirs; d++)
        if (target_of_dir(rs, dirs[d]) < 0 && add_dir_target(rs, dirs[d]) != 0)
            return -1;
    return 0;
}

/* ---- the spool ---- */

int hk_resume_write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int hk_resume_spool_flush(hk_resume *rs)
{
    if (rs->sbuf_len == 0)
        return 0;
    int r = hk_resume_write_all(rs->spool, rs->sbuf, rs->sbuf_len);
    rs->sbuf_len = 0;
    return r;
}

void hk_resume_note(hk_resume *rs, hk_served_rec *sv, const mi_torrent *mi)
{
    sv->resume_ref = 0;
    char path[HK_SERVED_PATH_MAX];
    if (!rs || rs->spool < 0 || hk_resume_target_of(rs, hk_served_path(sv, path, sizeof path)) < 0)
        return;
    size_t n = hk_rs_desc_encode(mi, NULL, 0);
    if (n > HK_RS_MAX_DESC)
        return;
    if (rs->sbuf_len + 4 + n > SPOOL_BUF && hk_resume_spool_flush(rs) != 0)
        return;
    uint64_t off = rs->spool_len;
    uint8_t len4[4] = { (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24) };
    if (4 + n > SPOOL_BUF) { /* a huge description: straight to the file */
        uint8_t *tmp = malloc(n);
        if (!tmp)
            return;
        hk_rs_desc_encode(mi, tmp, n);
        int r = hk_resume_write_all(rs->spool, len4, 4) == 0 ? hk_resume_write_all(rs->spool, tmp, n) : -1;
        free(tmp);
        if (r != 0)
            return;
    } else {
        memcpy(rs->sbuf + rs->sbuf_len, len4, 4);
        hk_rs_desc_encode(mi, rs->sbuf + rs->sbuf_len + 4, n);
        rs->sbuf_len += 4 + n;
    }
    rs->spool_len += 4 + n;
    sv->resume_ref = REF_SPOOL | off;
}

/* ---- data file identities ---- */

/* The identities of mi's data files (pad and empty files have none) beside the .torrent at tpath: their count, or
 * -1 if one cannot be examined. out may be NULL (count only). */
long hk_resume_data_ids(const char *tpath, const mi_torrent *mi, hk_rs_data_id *out)
{
    char path[PATH_MAX];
    const char *slash = strrchr(tpath, '/');
    int dl = slash ? (int)(slash - tpath) : 1;
    const char *dir = slash ? tpath : ".";
    long n = 0;
    for (uint32_t i = 0; i < mi->file_count; i++) {
        if ((mi->files[i].flags & MI_FILE_PAD) || mi->files[i].length == 0)
            continue;
        if (out) {
            int k = snprintf(path, sizeof path, "%.*s/", dl, dir);
            if (k < 0 || (size_t)k >= sizeof path || mi_file_relpath(mi, i, path + k, sizeof path - (size_t)k) >=
                                                         sizeof path - (size_t)k)
                return -1;
            struct stat st;
            if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
                return -1;
            out[n] = (hk_rs_data_id){ .ino = (uint64_t)st.st_ino, .size = (uint64_t)st.st_size,
                                      .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec };
        }
        n++;
    }
    return n;
}

/* ---- load ---- */

typedef struct load_ctx {
    hk_resume *rs;
    hk_catalog *c;
    hk_seeder *s;
    size_t ti;
    const uint8_t *base;
    char dir[HK_RS_MAX_PATH];    /* the folder of the last entry, open as dirfd (-1: none): the entries of a folder */
    int dirfd;                   /* follow each other, each lstat walks one component instead of the whole path */
} load_ctx;

static void dir_drop(load_ctx *lc)
{
    if (lc->dirfd >= 0)
        close(lc->dirfd);
    lc->dirfd = -1;
    lc->dir[0] = 0;
}

/* lstat of path through the cached folder descriptor (opened for its folder if needed). */
static int entry_lstat(load_ctx *lc, const char *path, struct stat *sb)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return lstat(path, sb);
    size_t dl = (size_t)(slash - path);
    if (lc->dirfd < 0 || strlen(lc->dir) != dl || memcmp(lc->dir, path, dl) != 0) {
        dir_drop(lc);
        memcpy(lc->dir, path, dl);
        lc->dir[dl] = 0;
        lc->dirfd = open(lc->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (lc->dirfd < 0)
            return -1;
    }
    return fstatat(lc->dirfd, slash + 1, sb, AT_SYMLINK_NOFOLLOW);
}

/* The entry's .torrent identity is the file's now: the same fingerprint (served.h) and size (a state that passed its
 * checksum is still not trusted: the size the description is checked against is the file's). */
static bool same_id(const hk_rs_id *a, const struct stat *st)
{
    hk_file_id now;
    hk_file_id_of(&now, st);
    return a->fp == hk_file_fp(&now) && a->size == now.size;
}

/* The good marks of entry e, restored on the torrent just served from it if its data files are unchanged. */
static void restore_marks(load_ctx *lc, const hk_rs_entry *e, const char *path, const mi_torrent *mi)
{
    if (e->marks == HK_RS_MARKS_NONE)
        return;
    long n = hk_resume_data_ids(path, mi, NULL);
    hk_rs_data_id *now = n > 0 ? malloc((size_t)n * sizeof *now) : NULL;
    bool same = n >= 0 && (uint32_t)n == e->ndata && (n == 0 || (now && hk_resume_data_ids(path, mi, now) == n));
    for (long i = 0; same && i < n; i++) {
        hk_rs_data_id was = hk_rs_data_at(e, (uint32_t)i);
        same = was.ino == now[i].ino && was.size == now[i].size && was.mtime_ns == now[i].mtime_ns;
    }
    free(now);
    if (!same) {
        lc->rs->st.marks_dropped++;
        hk_log(HK_LOG_DEBUG, "%s: its data changed since the state was saved: its pieces are checked again", path);
        return;
    }
    const uint8_t *bits = e->marks == HK_RS_MARKS_ALL ? NULL : e->bitmap;
    uint32_t count = e->marks == HK_RS_MARKS_ALL ? mi->piece_count : e->piece_count;
    if (hk_seeder_restore_marks(lc->s, mi->info_hash, bits, count) >= 0)
        lc->rs->st.marked++;
}

static void load_entry(load_ctx *lc, const hk_rs_entry *e)
{
    hk_resume_stats *st = &lc->rs->st;
    char path[HK_RS_MAX_PATH];
    memcpy(path, e->path, e->path_len);
    path[e->path_len] = 0;
    if (hk_resume_target_of(lc->rs, path) != (long)lc->ti) {
        st->outside++;
        return;
    }
    struct stat sb;
    if (entry_lstat(lc, path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st->gone++;
        return;
    }
    if (!same_id(&e->id, &sb)) {
        st->changed++;
        return;
    }
    char err[512];
    mi_torrent *mi = hk_rs_desc_decode(e->desc, e->desc_len, e->id.size, err, sizeof err);
    hk_served_rec *sv = NULL;
    hk_load_outcome out = mi ? hk_catalog_add_resumed(lc->c, path, &sb, mi, &sv, err, sizeof err) : HK_LOAD_REJECTED;
    if (out != HK_LOAD_ADDED) {
        if (out != HK_LOAD_OTHER_SHARD) /* another shard's torrent is skipped quietly, as the scan skips it */
            st->failed++;
        hk_log(HK_LOG_DEBUG, "%s: not served from the resume state: %s", path, err);
        mi_free(mi);
        return;
    }
    sv->resume_ref = ((uint64_t)lc->ti << REF_TSHIFT) | (lc->rs->t[lc->ti].gen ? REF_GEN : 0) |
                     (uint64_t)(e->desc - 4 - lc->base);
    st->loaded++;
    restore_marks(lc, e, path, mi);
    mi_free(mi);
}

/* One target's file: 0, 1 if step stopped it. */
static int load_target(load_ctx *lc, int (*step)(void *arg), void *arg)
{
    target *t = &lc->rs->t[lc->ti];
    int fd = open(t->file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            hk_log(HK_LOG_INFO, "resume state %s: none yet: a cold start", t->file);
        else
            hk_log(HK_LOG_WARN, "resume state %s ignored: %s", t->file, strerror(errno));
        return 0;
    }
    struct stat sb;
    char why[256] = "";
    void *map = MAP_FAILED;
    hk_rs_reader rd;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0)
        snprintf(why, sizeof why, "not a regular file, or empty");
    else if ((map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED)
        snprintf(why, sizeof why, "cannot map it: %s", strerror(errno));
    else if (madvise(map, (size_t)sb.st_size, MADV_SEQUENTIAL) != 0 && errno == ENOMEM)
        snprintf(why, sizeof why, "cannot map it: %s", strerror(errno));
    else
        hk_rs_open(&rd, map, (size_t)sb.st_size, why, sizeof why); /* why says what is wrong, if anything */
    if (why[0]) {
        hk_log(HK_LOG_WARN, "resume state %s ignored: %s; its torrents are read from their .torrent files", t->file,
               why);
        if (map != MAP_FAILED)
            munmap(map, (size_t)sb.st_size);
        close(fd);
        return 0;
    }
    lc->base = map;
    lc->rs->st.entries += rd.count;
    int stopped = 0;
    hk_rs_entry e;
    for (size_t n = 1; !stopped && hk_rs_next(&rd, &e) == 1; n++) {
        load_entry(lc, &e);
        if (step && n % HK_RESUME_STEP == 0) {
            dir_drop(lc); /* the loop runs: a folder may change meanwhile */
            stopped = step(arg) != 0;
        }
    }
    dir_drop(lc);
    munmap(map, (size_t)sb.st_size);
    t->fd[t->gen] = fd;
    t->size[t->gen] = (uint64_t)sb.st_size;
    return stopped;
}

int hk_resume_load(hk_resume *rs, hk_catalog *c, hk_seeder *s, int (*step)(void *arg), void *arg,
                   hk_resume_stats *out)
{
    double t0 = hk_resume_mono();
    load_ctx lc = { .rs = rs, .c = c, .s = s, .dirfd = -1 };
    int stopped = 0;
    for (lc.ti = 0; lc.ti < rs->nt && !stopped; lc.ti++)
        stopped = load_target(&lc, step, arg);
    rs->st.seconds = hk_resume_mono() - t0;
    if (out)
        *out = rs->st;
    return stopped;
}
