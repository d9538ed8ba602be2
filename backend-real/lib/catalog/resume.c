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
#include "resume_state.h"

#define REF_SPOOL (1ull << 63)
#define REF_TSHIFT 40
#define REF_OFF_MASK ((1ull << REF_TSHIFT) - 1)
#define SPOOL_BUF (256u << 10)
#define SAVE_BUF (1u << 20)

typedef struct target {
    char *file;                  /* the state file */
    char **dirs;                 /* the DIRs it records (the object's copies) */
    size_t ndirs;
    int fd;                      /* the file last loaded or written (its descriptions), -1: none */
    uint64_t size;
} target;

struct hk_resume {
    target *t;
    size_t nt;
    int spool;                   /* unlinked file of descriptions; -1 if it could not be made */
    uint64_t spool_len;          /* bytes written to it, the buffer included */
    uint8_t *sbuf;
    size_t sbuf_len;
    uint64_t digest;             /* of what the last save wrote (0: nothing saved yet) */
    hk_resume_stats st;
};

static double mono(void)
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
    rs->spool = -1;
    for (size_t i = 0; i < nt; i++) {
        target *t = &rs->t[i];
        t->fd = -1;
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
        if (rs->t[i].fd >= 0)
            close(rs->t[i].fd);
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
static long target_of(const hk_resume *rs, const char *path)
{
    for (size_t i = 0; i < rs->nt; i++)
        for (size_t d = 0; d < rs->t[i].ndirs; d++) {
            const char *dir = rs->t[i].dirs[d];
            size_t n = strlen(dir);
            while (n > 1 && dir[n - 1] == '/')
                n--;
            if (strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == 0 || dir[n - 1] == '/'))
                return (long)i;
        }
    return -1;
}

/* ---- the spool ---- */

static int write_all(int fd, const uint8_t *p, size_t n)
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

static int spool_flush(hk_resume *rs)
{
    if (rs->sbuf_len == 0)
        return 0;
    int r = write_all(rs->spool, rs->sbuf, rs->sbuf_len);
    rs->sbuf_len = 0;
    return r;
}

void hk_resume_note(hk_resume *rs, hk_served_rec *sv, const mi_torrent *mi)
{
    sv->resume_ref = 0;
    if (!rs || rs->spool < 0 || target_of(rs, sv->path) < 0)
        return;
    size_t n = hk_rs_desc_encode(mi, NULL, 0);
    if (n > HK_RS_MAX_DESC)
        return;
    if (rs->sbuf_len + 4 + n > SPOOL_BUF && spool_flush(rs) != 0)
        return;
    uint64_t off = rs->spool_len;
    uint8_t len4[4] = { (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24) };
    if (4 + n > SPOOL_BUF) { /* a huge description: straight to the file */
        uint8_t *tmp = malloc(n);
        if (!tmp)
            return;
        hk_rs_desc_encode(mi, tmp, n);
        int r = write_all(rs->spool, len4, 4) == 0 ? write_all(rs->spool, tmp, n) : -1;
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
static long data_ids(const char *tpath, const mi_torrent *mi, hk_rs_data_id *out)
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

static bool same_id(const hk_rs_id *a, const struct stat *st)
{
    return a->dev == (uint64_t)st->st_dev && a->ino == (uint64_t)st->st_ino && a->size == (uint64_t)st->st_size &&
           a->mtime_ns == (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec &&
           a->ctime_ns == (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

/* The good marks of entry e, restored on the torrent just served from it if its data files are unchanged. */
static void restore_marks(load_ctx *lc, const hk_rs_entry *e, const char *path, const mi_torrent *mi)
{
    if (e->marks == HK_RS_MARKS_NONE)
        return;
    long n = data_ids(path, mi, NULL);
    hk_rs_data_id *now = n > 0 ? malloc((size_t)n * sizeof *now) : NULL;
    bool same = n >= 0 && (uint32_t)n == e->ndata && (n == 0 || (now && data_ids(path, mi, now) == n));
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
    if (target_of(lc->rs, path) != (long)lc->ti) {
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
    mi_torrent *mi = hk_rs_desc_decode(e->desc, e->desc_len, err, sizeof err);
    hk_served_rec *sv = NULL;
    hk_load_outcome out = mi ? hk_catalog_add_resumed(lc->c, path, &sb, mi, &sv, err, sizeof err) : HK_LOAD_REJECTED;
    if (out != HK_LOAD_ADDED) {
        if (out != HK_LOAD_OTHER_SHARD) /* another shard's torrent is skipped quietly, as the scan skips it */
            st->failed++;
        hk_log(HK_LOG_DEBUG, "%s: not served from the resume state: %s", path, err);
        mi_free(mi);
        return;
    }
    sv->resume_ref = ((uint64_t)lc->ti << REF_TSHIFT) | (uint64_t)(e->desc - 4 - lc->base);
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
    t->fd = fd;
    t->size = (uint64_t)sb.st_size;
    return stopped;
}

int hk_resume_load(hk_resume *rs, hk_catalog *c, hk_seeder *s, int (*step)(void *arg), void *arg,
                   hk_resume_stats *out)
{
    double t0 = mono();
    load_ctx lc = { .rs = rs, .c = c, .s = s, .dirfd = -1 };
    int stopped = 0;
    for (lc.ti = 0; lc.ti < rs->nt && !stopped; lc.ti++)
        stopped = load_target(&lc, step, arg);
    rs->st.seconds = mono() - t0;
    if (out)
        *out = rs->st;
    return stopped;
}

/* ---- save ---- */

typedef struct sink_buf {
    int fd;
    uint8_t *buf;
    size_t len;
    uint64_t total;
} sink_buf;

static int sink_write(void *arg, const uint8_t *b, size_t n)
{
    sink_buf *sb = arg;
    sb->total += n;
    if (sb->len + n > SAVE_BUF) {
        if (write_all(sb->fd, sb->buf, sb->len) != 0)
            return -1;
        sb->len = 0;
        if (n > SAVE_BUF)
            return write_all(sb->fd, b, n);
    }
    memcpy(sb->buf + sb->len, b, n);
    sb->len += n;
    return 0;
}

/* A mapping of a whole file (len 0: none). */
typedef struct fmap {
    const uint8_t *p;
    size_t len;
} fmap;

static fmap map_fd(int fd, uint64_t len)
{
    fmap m = { 0 };
    if (fd < 0 || len == 0)
        return m;
    void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
        madvise(p, (size_t)len, MADV_SEQUENTIAL);
        m.p = p;
        m.len = (size_t)len;
    }
    return m;
}

static void unmap(fmap *m)
{
    if (m->p)
        munmap((void *)m->p, m->len);
    m->p = NULL;
}

typedef struct save_ctx {
    hk_resume *rs;
    hk_seeder *s;
    fmap spool, *old;            /* old: one per target */
    sink_buf sb;
    hk_rs_writer w;
    uint8_t *bits;               /* scratch for data identities */
    size_t bits_cap;
} save_ctx;

/* The description a ref names: its bytes, or NULL. */
static const uint8_t *desc_of(const save_ctx *x, uint64_t ref, uint32_t *len)
{
    const fmap *m = (ref & REF_SPOOL) ? &x->spool : &x->old[(ref & ~REF_SPOOL) >> REF_TSHIFT];
    uint64_t off = ref & REF_OFF_MASK;
    if (!m->p || off + 4 > m->len)
        return NULL;
    const uint8_t *p = m->p + off;
    *len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return *len <= m->len - off - 4 ? p + 4 : NULL;
}

/* Fills the marks and data identities of e for sv's torrent (e->desc set). */
static void entry_marks(save_ctx *x, const hk_served_rec *sv, hk_rs_entry *e)
{
    bool all_good, verifying;
    const hk_pieces *ps;
    if (!hk_seeder_torrent_marks(x->s, sv->info_hash, &all_good, &ps, &verifying) || !verifying)
        return;
    if (!all_good && (!ps || ps->ngood == 0))
        return;
    mi_torrent *mi = hk_rs_desc_decode(e->desc, e->desc_len, NULL, 0);
    long n = mi ? data_ids(sv->path, mi, NULL) : -1;
    size_t need = n > 0 ? (size_t)n * 24 : 0;
    if (n >= 0 && need > x->bits_cap) {
        uint8_t *nb = realloc(x->bits, need);
        if (nb) {
            x->bits = nb;
            x->bits_cap = need;
        }
    }
    hk_rs_data_id *ids = n > 0 ? malloc((size_t)n * sizeof *ids) : NULL;
    bool ok = n >= 0 && need <= x->bits_cap && (n == 0 || (ids && data_ids(sv->path, mi, ids) == n));
    for (long i = 0; ok && i < n; i++)
        hk_rs_data_put(x->bits + 24 * i, &ids[i]);
    free(ids);
    if (ok) {
        e->ndata = (uint32_t)n;
        e->data = x->bits;
        e->marks = all_good ? HK_RS_MARKS_ALL : HK_RS_MARKS_SOME;
        e->piece_count = all_good ? 0 : ps->count;
        e->bitmap = all_good ? NULL : ps->good;
    }
    mi_free(mi);
}

/* Writes sv's entry if it belongs to target ti and is served and healthy; its new ref, or 0 if not written. */
static uint64_t save_rec(save_ctx *x, size_t ti, const hk_served_rec *sv)
{
    if (!sv->storage || sv->reported || sv->stale || !sv->resume_ref || target_of(x->rs, sv->path) != (long)ti)
        return 0;
    hk_rs_entry e = { .path = sv->path, .path_len = (uint32_t)strlen(sv->path) };
    e.id = (hk_rs_id){ .dev = sv->id.dev, .ino = sv->id.ino, .size = sv->id.size, .mtime_ns = sv->id.mtime_ns,
                       .ctime_ns = sv->id.ctime_ns };
    e.desc = desc_of(x, sv->resume_ref, &e.desc_len);
    if (!e.desc)
        return 0;
    entry_marks(x, sv, &e);
    uint64_t at = x->sb.total + 4 + 2 + e.path_len + 40;
    uint64_t before = x->w.count;
    hk_rs_write_entry(&x->w, &e);
    return x->w.count > before ? ((uint64_t)ti << REF_TSHIFT) | at : 0;
}

static int sync_dir_of(const char *file)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(file, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash == file ? 1 : slash - file) : 1, slash ? file : ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

/* Writes target ti to FILE.tmp and renames it over FILE. refs[k] gets the new ref of list[k]. */
static int save_target(save_ctx *x, size_t ti, hk_served_rec *const *list, size_t n, uint64_t *refs, char *err,
                       size_t errlen)
{
    target *t = &x->rs->t[ti];
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", t->file);
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    x->sb.fd = fd;
    x->sb.len = 0;
    x->sb.total = 0;
    hk_rs_writer_begin(&x->w, sink_write, &x->sb);
    for (size_t k = 0; k < n; k++)
        refs[k] = save_rec(x, ti, list[k]);
    int r = hk_rs_writer_end(&x->w);
    if (r == 0)
        r = write_all(fd, x->sb.buf, x->sb.len);
    if (r == 0)
        r = fsync(fd);
    if (r == 0)
        r = rename(tmp, t->file);
    if (r != 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno ? errno : EIO));
        close(fd);
        unlink(tmp);
        return -1;
    }
    sync_dir_of(t->file); /* the rename is durable once the folder is synced */
    if (t->fd >= 0)
        close(t->fd);
    t->fd = fd;
    t->size = x->sb.total;
    x->rs->st.saved += x->w.count;
    return 0;
}

/* After target ti was saved: every record's ref into its old file or the spool becomes its new one (or 0). */
static void apply_refs(hk_served_rec *const *list, size_t n, size_t ti, const uint64_t *refs)
{
    for (size_t k = 0; k < n; k++) {
        hk_served_rec *sv = list[k];
        bool old_here = sv->resume_ref && !(sv->resume_ref & REF_SPOOL) && (sv->resume_ref >> REF_TSHIFT) == ti;
        if (refs[k])
            sv->resume_ref = refs[k];
        else if (old_here)
            sv->resume_ref = 0; /* not saved: its description is gone with the old file */
    }
}

static void drop_spool(hk_resume *rs, hk_served_rec *const *list, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (list[k]->resume_ref & REF_SPOOL)
            list[k]->resume_ref = 0;
    if (ftruncate(rs->spool, 0) == 0 && lseek(rs->spool, 0, SEEK_SET) == 0)
        rs->spool_len = 0;
}

static int by_path(const void *a, const void *b)
{
    return strcmp((*(hk_served_rec *const *)a)->path, (*(hk_served_rec *const *)b)->path);
}

/* Every record, sorted by path: the state lists torrents in the scan's order, so a warm start adds the torrents of
 * one folder one after the other (the store shares a folder between consecutive storages). NULL if out of memory. */
static hk_served_rec **sorted_records(const hk_served *sd, size_t *n)
{
    *n = hk_served_count(sd);
    hk_served_rec **list = malloc((*n ? *n : 1) * sizeof *list);
    if (!list)
        return NULL;
    size_t cursor = 0, k = 0;
    for (hk_served_rec *sv = hk_served_next(sd, &cursor); sv && k < *n; sv = hk_served_next(sd, &cursor))
        list[k++] = sv;
    *n = k;
    qsort(list, k, sizeof *list, by_path);
    return list;
}

/* What a save would write, as one number: every record that would be saved (path, storage, .torrent identity) and
 * its torrent's marks (all good, good and bad counts), summed so that the table's order does not matter. */
static uint64_t save_digest(const hk_served *sd, hk_seeder *s)
{
    uint64_t sum = 0;
    size_t cursor = 0;
    for (const hk_served_rec *sv = hk_served_next(sd, &cursor); sv; sv = hk_served_next(sd, &cursor)) {
        if (!sv->storage || sv->reported || sv->stale || !sv->resume_ref)
            continue;
        bool all = false, verifying = false;
        const hk_pieces *ps = NULL;
        hk_seeder_torrent_marks(s, sv->info_hash, &all, &ps, &verifying);
        uint64_t h = hk_mix64(sv->path_hash ^ (sv->storage << 1) ^ hk_mix64(sv->id.ino ^ (uint64_t)sv->id.mtime_ns));
        h = hk_mix64(h ^ (uint64_t)sv->id.ctime_ns ^ sv->id.size ^ ((uint64_t)all << 63) ^
                     (ps ? (uint64_t)ps->ngood << 32 | ps->nbad : 0));
        sum += h;
    }
    return sum ? sum : 1;
}

/* true if every target's file on disk is still the one this process wrote or loaded last. */
static bool files_ours(const hk_resume *rs)
{
    for (size_t i = 0; i < rs->nt; i++) {
        struct stat a, b;
        if (rs->t[i].fd < 0 || fstat(rs->t[i].fd, &a) != 0 || stat(rs->t[i].file, &b) != 0 || a.st_ino != b.st_ino ||
            a.st_dev != b.st_dev)
            return false;
    }
    return true;
}

int hk_resume_save(hk_resume *rs, hk_catalog *c, hk_seeder *s, char *err, size_t errlen)
{
    uint64_t digest = save_digest(hk_catalog_served(c), s);
    rs->st.unchanged = rs->digest == digest && rs->spool_len == 0 && rs->sbuf_len == 0 && files_ours(rs);
    if (rs->st.unchanged)
        return 0; /* nothing new since the last save: the file on disk says it all */
    size_t n;
    hk_served_rec **list = sorted_records(hk_catalog_served(c), &n);
    uint64_t *refs = malloc((n ? n : 1) * sizeof *refs);
    save_ctx x = { .rs = rs, .s = s, .old = calloc(rs->nt, sizeof(fmap)) };
    x.sb.buf = malloc(SAVE_BUF);
    int res = 0;
    if (!list || !refs || !x.old || !x.sb.buf || spool_flush(rs) != 0) {
        snprintf(err, errlen, "%s: out of memory or spool write error", rs->t[0].file);
        res = -1;
        goto out;
    }
    x.spool = map_fd(rs->spool, rs->spool_len);
    for (size_t i = 0; i < rs->nt; i++)
        x.old[i] = map_fd(rs->t[i].fd, rs->t[i].size);
    rs->st.saved = 0;
    bool all = true;
    for (size_t i = 0; i < rs->nt; i++) {
        if (save_target(&x, i, list, n, refs, err, errlen) != 0) {
            all = false;
            res = -1;
            continue;
        }
        apply_refs(list, n, i, refs);
    }
    unmap(&x.spool);
    for (size_t i = 0; i < rs->nt; i++)
        unmap(&x.old[i]);
    if (all) {
        drop_spool(rs, list, n);
        rs->digest = digest;
    }
out:
    free(x.bits);
    free(x.old);
    free(x.sb.buf);
    free(refs);
    free(list);
    return res;
}
