/* resume_save: saving the resume state (see resume.h) in three steps: a snapshot on the loop (a copy of what each
 * record would save: path, identity, ref, marks), the write on any thread (digest, sort, encode, checksum, FILE.tmp,
 * fsync, rename, folder fsync), and the finish on the loop, a slice of records at a time (each saved record's ref
 * moves to the new file; then the old files are closed and the spool's saved part is dropped). The snapshot itself
 * is taken in slices too: its start lists the records (one pointer each), each slice copies some of them; a record
 * forgotten meanwhile (hk_resume_forget, before the catalog frees it) is skipped. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "piece_state.h"
#include "resume_int.h"

#define SAVE_BUF (1u << 20)

typedef struct snap_ent {
    uint64_t ref, new_ref, storage;
    hk_rs_id id;                 /* the record's .torrent identity (fingerprint, size) */
    const char *path;            /* in the job's arena (set when the snapshot is complete) */
    size_t path_off, bits_off;
    uint32_t path_hash, piece_count, ngood, nbad;
    uint8_t marks;               /* HK_RS_MARKS_*: SOME: piece_count bits at bits_off */
    bool all_good;               /* for the digest */
    bool write;                  /* served and healthy: gets an entry */
    uint32_t written;            /* 1 + the target it was written to; 0: not written */
} snap_ent;

struct hk_resume_job {
    hk_resume *rs;
    hk_seeder *s;
    hk_served_rec **ptrs;        /* the records when the snapshot began; copied a slice at a time */
    size_t nptr, pdone;
    const hk_served_rec **gone;  /* records forgotten (freed) meanwhile, sorted by address once per slice */
    size_t ngone, gone_cap, gone_sorted;
    snap_ent *e;
    size_t n, cap;
    char *paths;
    size_t paths_len, paths_cap;
    uint8_t *bits;
    size_t bits_len, bits_cap;
    uint64_t spool_at;           /* the spool's length at the snapshot: the write reads [0, spool_at) */
    bool spool_clean;            /* no description noted since the last complete save */
    uint64_t digest;
    bool unchanged, all_ok;
    bool *ok;                    /* per target: written and renamed */
    int *newfd;
    uint64_t *newsize;
    size_t saved, done;          /* entries written; records the finish has handled */
    int res;
    char err[1024];
    hk_resume_job_times times;
};

/* ---- snapshot (loop) ---- */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np)
        return -1;
    *p = np;
    *cap = nc;
    return 0;
}

static int snap_add(hk_resume_job *j, hk_seeder *s, const hk_served_rec *sv)
{
    size_t pl = hk_served_path_len(sv) + 1;
    if (grow((void **)&j->e, &j->cap, j->n + 1, sizeof *j->e) != 0 ||
        grow((void **)&j->paths, &j->paths_cap, j->paths_len + pl, 1) != 0)
        return -1;
    snap_ent *e = &j->e[j->n];
    *e = (snap_ent){ .ref = sv->resume_ref, .new_ref = sv->resume_ref, .storage = hk_served_storage(sv),
                     .id = { .fp = sv->fp, .size = sv->size },
                     .path_off = j->paths_len, .path_hash = hk_served_path_hash(sv) };
    hk_served_path(sv, j->paths + j->paths_len, pl);
    j->paths_len += pl;
    j->n++;
    e->write = hk_served_storage(sv) && !sv->reported && !sv->stale;
    if (!e->write)
        return 0;
    bool all = false, verifying = false;
    const hk_pieces *ps = NULL;
    if (!hk_seeder_torrent_marks(s, hk_seeder_info_hash(s, sv->torrent), &all, &ps, &verifying))
        return 0;
    e->all_good = all;
    e->ngood = ps ? ps->ngood : 0;
    e->nbad = ps ? ps->nbad : 0;
    if (!verifying || (!all && (!ps || ps->ngood == 0)))
        return 0;
    if (all) {
        e->marks = HK_RS_MARKS_ALL;
        return 0;
    }
    size_t nb = ((size_t)ps->count + 7) / 8;
    if (grow((void **)&j->bits, &j->bits_cap, j->bits_len + nb, 1) != 0)
        return -1;
    memcpy(j->bits + j->bits_len, ps->good, nb);
    e->marks = HK_RS_MARKS_SOME;
    e->piece_count = ps->count;
    e->bits_off = j->bits_len;
    j->bits_len += nb;
    return 0;
}

void hk_resume_job_free(hk_resume_job *j)
{
    if (!j)
        return;
    for (size_t i = 0; j->newfd && i < j->rs->nt; i++)
        if (j->newfd[i] >= 0)
            close(j->newfd[i]);
    j->rs->busy = false;
    if (j->rs->snap == j)
        j->rs->snap = NULL;
    free(j->ptrs);
    free(j->gone);
    free(j->e);
    free(j->paths);
    free(j->bits);
    free(j->ok);
    free(j->newfd);
    free(j->newsize);
    free(j);
}

hk_resume_job *hk_resume_snapshot(hk_resume *rs, hk_catalog *c, hk_seeder *s, char *err, size_t errlen)
{
    if (rs->busy) {
        snprintf(err, errlen, "%s: a save is already running", rs->t[0].file);
        return NULL;
    }
    double t0 = hk_resume_mono();
    hk_resume_job *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    j->rs = rs;
    j->s = s;
    rs->busy = true;
    const hk_served *sd = hk_catalog_served(c);
    size_t n = hk_served_count(sd);
    j->ok = calloc(rs->nt, sizeof *j->ok);
    j->newfd = malloc(rs->nt * sizeof *j->newfd);
    j->newsize = calloc(rs->nt, sizeof *j->newsize);
    j->ptrs = malloc((n ? n : 1) * sizeof *j->ptrs);
    int r = j->ok && j->newfd && j->newsize && j->ptrs ? 0 : -1;
    for (size_t i = 0; r == 0 && i < rs->nt; i++)
        j->newfd[i] = -1;
    if (r == 0)
        r = grow((void **)&j->e, &j->cap, n, sizeof *j->e) | grow((void **)&j->paths, &j->paths_cap, n * 48, 1);
    if (r == 0)
        r = hk_resume_spool_flush(rs);
    if (r != 0) {
        snprintf(err, errlen, "%s: out of memory or spool write error", rs->t[0].file);
        hk_resume_job_free(j);
        return NULL;
    }
    size_t cursor = 0;
    for (hk_served_rec *sv = hk_served_next(sd, &cursor); sv && j->nptr < n; sv = hk_served_next(sd, &cursor))
        j->ptrs[j->nptr++] = sv;
    j->spool_at = rs->spool_len; /* descriptions noted from now on are after it: kept by this save's finish */
    j->spool_clean = rs->spool_len == rs->spool_mark;
    rs->snap = j;
    j->times.snapshot = hk_resume_mono() - t0;
    j->times.snap_max = j->times.snapshot;
    return j;
}

void hk_resume_forget(hk_resume *rs, const hk_served_rec *sv)
{
    hk_resume_job *j = rs ? rs->snap : NULL;
    if (!j)
        return;
    if (grow((void **)&j->gone, &j->gone_cap, j->ngone + 1, sizeof *j->gone) == 0)
        j->gone[j->ngone++] = sv;
    else /* no memory to remember it: the rest of the snapshot is given up (this save writes what it has) */
        j->nptr = j->pdone;
}

static int by_addr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(const hk_served_rec *const *)a, y = (uintptr_t)*(const hk_served_rec *const *)b;
    return x < y ? -1 : x > y;
}

int hk_resume_snapshot_step(hk_resume_job *j, size_t budget)
{
    double t0 = hk_resume_mono();
    if (j->ngone != j->gone_sorted) {
        qsort(j->gone, j->ngone, sizeof *j->gone, by_addr);
        j->gone_sorted = j->ngone;
    }
    size_t end = budget && j->nptr - j->pdone > budget ? j->pdone + budget : j->nptr;
    int r = 0;
    for (; r == 0 && j->pdone < end; j->pdone++) {
        const hk_served_rec *sv = j->ptrs[j->pdone];
        if (j->ngone && bsearch(&sv, j->gone, j->ngone, sizeof *j->gone, by_addr))
            continue; /* freed since the snapshot began */
        uint64_t ref = sv->resume_ref;
        if (!ref || ((ref & REF_SPOOL) && (ref & REF_OFF_MASK) >= j->spool_at))
            continue; /* none, or noted after the snapshot began: the next save has it */
        r = snap_add(j, j->s, sv);
    }
    double dt = hk_resume_mono() - t0;
    j->times.snapshot += dt;
    if (dt > j->times.snap_max)
        j->times.snap_max = dt;
    j->times.snap_slices++;
    if (r != 0)
        return -1;
    if (j->pdone < j->nptr)
        return 1;
    for (size_t k = 0; k < j->n; k++)
        j->e[k].path = j->paths + j->e[k].path_off;
    j->rs->snap = NULL;
    free(j->ptrs);
    j->ptrs = NULL;
    free(j->gone);
    j->gone = NULL;
    return 0;
}

/* ---- write (any thread: reads rs's targets and spool, which the loop leaves alone while busy) ---- */

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
        if (hk_resume_write_all(sb->fd, sb->buf, sb->len) != 0)
            return -1;
        sb->len = 0;
        if (n > SAVE_BUF)
            return hk_resume_write_all(sb->fd, b, n);
    }
    memcpy(sb->buf + sb->len, b, n);
    sb->len += n;
    return 0;
}

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
    hk_resume_job *j;
    fmap spool, *old;            /* old: one per target, its current generation */
    sink_buf sb;
    hk_rs_writer w;
    uint8_t *ids;                /* scratch for data identities */
    size_t ids_cap;
} save_ctx;

/* The description a ref names: its bytes, or NULL. */
static const uint8_t *desc_of(const save_ctx *x, uint64_t ref, uint32_t *len)
{
    const fmap *m = &x->spool;
    if (!(ref & REF_SPOOL)) {
        uint64_t ti = (ref >> REF_TSHIFT) & REF_TMASK;
        if (ti >= x->j->rs->nt || ((ref & REF_GEN) != 0) != (x->j->rs->t[ti].gen != 0))
            return NULL;
        m = &x->old[ti];
    }
    uint64_t off = ref & REF_OFF_MASK;
    if (!m->p || off + 4 > m->len)
        return NULL;
    const uint8_t *p = m->p + off;
    *len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return *len <= m->len - off - 4 ? p + 4 : NULL;
}

/* Fills the marks and data identities of entry re (re->desc set) from the snapshot's se. */
static void entry_marks(save_ctx *x, const snap_ent *se, hk_rs_entry *re)
{
    if (se->marks == HK_RS_MARKS_NONE)
        return;
    mi_torrent *mi = hk_rs_desc_decode(re->desc, re->desc_len, re->id.size, NULL, 0);
    long n = mi ? hk_resume_data_ids(se->path, mi, NULL) : -1;
    size_t need = n > 0 ? (size_t)n * 24 : 0;
    if (n >= 0 && need > x->ids_cap) {
        uint8_t *nb = realloc(x->ids, need);
        if (nb) {
            x->ids = nb;
            x->ids_cap = need;
        }
    }
    hk_rs_data_id *ids = n > 0 ? malloc((size_t)n * sizeof *ids) : NULL;
    bool ok = n >= 0 && need <= x->ids_cap && (n == 0 || (ids && hk_resume_data_ids(se->path, mi, ids) == n));
    for (long i = 0; ok && i < n; i++)
        hk_rs_data_put(x->ids + 24 * i, &ids[i]);
    free(ids);
    if (ok) {
        re->ndata = (uint32_t)n;
        re->data = x->ids;
        re->marks = se->marks;
        re->piece_count = se->marks == HK_RS_MARKS_SOME ? se->piece_count : 0;
        re->bitmap = se->marks == HK_RS_MARKS_SOME ? x->j->bits + se->bits_off : NULL;
    }
    mi_free(mi);
}

/* Writes se's entry if it belongs to target ti and is healthy (se->new_ref, se->written set). */
static void save_rec(save_ctx *x, size_t ti, snap_ent *se)
{
    hk_resume *rs = x->j->rs;
    if (!se->write || hk_resume_target_of(rs, se->path) != (long)ti)
        return;
    hk_rs_entry e = { .path = se->path, .path_len = (uint32_t)strlen(se->path) };
    e.id = se->id;
    e.desc = desc_of(x, se->ref, &e.desc_len);
    if (!e.desc)
        return;
    entry_marks(x, se, &e);
    uint64_t at = x->sb.total + 4 + 2 + e.path_len + HK_RS_ID_BYTES;
    uint64_t before = x->w.count;
    hk_rs_write_entry(&x->w, &e);
    if (x->w.count > before) {
        se->new_ref = ((uint64_t)ti << REF_TSHIFT) | (rs->t[ti].gen ? 0 : REF_GEN) | at;
        se->written = (uint32_t)ti + 1;
    }
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

/* Writes target ti to FILE.tmp, fsyncs it and renames it over FILE: 0, or -1 with j->err set. */
static int save_target(save_ctx *x, size_t ti, snap_ent *const *list, size_t n)
{
    hk_resume_job *j = x->j;
    target *t = &j->rs->t[ti];
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", t->file);
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(j->err, sizeof j->err, "%.900s: %s", tmp, strerror(errno));
        return -1;
    }
    x->sb = (sink_buf){ .fd = fd, .buf = x->sb.buf };
    hk_rs_writer_begin(&x->w, sink_write, &x->sb);
    for (size_t k = 0; k < n; k++)
        save_rec(x, ti, list[k]);
    errno = 0;
    int r = hk_rs_writer_end(&x->w);
    if (r == 0)
        r = hk_resume_write_all(fd, x->sb.buf, x->sb.len);
    if (r == 0)
        r = fsync(fd);
    if (r == 0)
        r = rename(tmp, t->file);
    if (r != 0) {
        snprintf(j->err, sizeof j->err, "%.900s: %s", tmp, strerror(errno ? errno : EIO));
        close(fd);
        unlink(tmp);
        return -1;
    }
    sync_dir_of(t->file); /* the rename is durable once the folder is synced */
    j->newfd[ti] = fd;
    j->newsize[ti] = x->sb.total;
    j->saved += x->w.count;
    return 0;
}

static int by_path(const void *a, const void *b)
{
    return strcmp((*(snap_ent *const *)a)->path, (*(snap_ent *const *)b)->path);
}

/* What a save would write, as one number, summed so that the table's order does not matter. */
static uint64_t job_digest(const hk_resume_job *j)
{
    uint64_t sum = 0;
    for (size_t k = 0; k < j->n; k++) {
        const snap_ent *e = &j->e[k];
        if (!e->write)
            continue;
        uint64_t h = hk_mix64(e->path_hash ^ (e->storage << 1) ^ hk_mix64(e->id.fp));
        h = hk_mix64(h ^ e->id.size ^ ((uint64_t)e->all_good << 63) ^
                     ((uint64_t)e->ngood << 32 | e->nbad));
        sum += h;
    }
    return sum ? sum : 1;
}

/* true if every live target's file on disk is still the one this process wrote or loaded last. */
static bool files_ours(const hk_resume *rs)
{
    for (size_t i = 0; i < rs->nt; i++) {
        const target *t = &rs->t[i];
        struct stat a, b;
        if (t->retired)
            continue;
        if (t->fd[t->gen] < 0 || fstat(t->fd[t->gen], &a) != 0 || stat(t->file, &b) != 0 || a.st_ino != b.st_ino ||
            a.st_dev != b.st_dev)
            return false;
    }
    return true;
}

/* Each snapshot entry's ref after the save: its new one if written; 0 if its description was in a file or the
 * spool part that the save replaced; else unchanged. */
static void settle_refs(hk_resume_job *j)
{
    for (size_t k = 0; k < j->n; k++) {
        snap_ent *e = &j->e[k];
        if (e->written && j->ok[e->written - 1])
            continue;
        e->new_ref = e->ref;
        if (e->ref & REF_SPOOL) {
            if (j->all_ok)
                e->new_ref = 0;
        } else {
            uint64_t ti = (e->ref >> REF_TSHIFT) & REF_TMASK;
            if (ti < j->rs->nt && j->ok[ti])
                e->new_ref = 0;
        }
    }
}

void hk_resume_job_write(hk_resume_job *j)
{
    double t0 = hk_resume_mono();
    hk_resume *rs = j->rs;
    j->digest = job_digest(j);
    j->unchanged = rs->digest == j->digest && j->spool_clean && files_ours(rs);
    if (j->unchanged) {
        j->times.write = hk_resume_mono() - t0;
        return;
    }
    snap_ent **list = malloc((j->n ? j->n : 1) * sizeof *list);
    save_ctx x = { .j = j, .old = calloc(rs->nt, sizeof(fmap)) };
    x.sb.buf = malloc(SAVE_BUF);
    if (!list || !x.old || !x.sb.buf) {
        snprintf(j->err, sizeof j->err, "%s: out of memory", rs->t[0].file);
        j->res = -1;
        goto out;
    }
    for (size_t k = 0; k < j->n; k++)
        list[k] = &j->e[k];
    qsort(list, j->n, sizeof *list, by_path);
    x.spool = map_fd(rs->spool, j->spool_at);
    for (size_t i = 0; i < rs->nt; i++)
        x.old[i] = map_fd(rs->t[i].fd[rs->t[i].gen], rs->t[i].size[rs->t[i].gen]);
    j->all_ok = true;
    for (size_t i = 0; i < rs->nt; i++) {
        if (rs->t[i].retired)
            continue;
        j->ok[i] = save_target(&x, i, list, j->n) == 0;
        if (!j->ok[i])
            j->all_ok = false;
    }
    j->res = j->all_ok ? 0 : -1;
    settle_refs(j);
    unmap(&x.spool);
    for (size_t i = 0; i < rs->nt; i++)
        unmap(&x.old[i]);
out:
    free(x.ids);
    free(x.old);
    free(x.sb.buf);
    free(list);
    j->times.write = hk_resume_mono() - t0;
}

/* ---- finish (loop) ---- */

/* The save is over: the new files become the targets' current generation, the spool's saved part is dropped. */
static void job_close(hk_resume *rs, hk_resume_job *j)
{
    for (size_t i = 0; i < rs->nt; i++) {
        target *t = &rs->t[i];
        if (!j->ok[i])
            continue;
        if (t->fd[t->gen] >= 0)
            close(t->fd[t->gen]);
        t->fd[t->gen] = -1;
        t->gen ^= 1;
        t->fd[t->gen] = j->newfd[i];
        t->size[t->gen] = j->newsize[i];
        j->newfd[i] = -1;
    }
    if (!j->all_ok)
        return;
    rs->digest = j->digest;
    if (rs->spool_len == j->spool_at && rs->sbuf_len == 0) { /* nothing noted since the snapshot */
        if (ftruncate(rs->spool, 0) == 0 && lseek(rs->spool, 0, SEEK_SET) == 0)
            rs->spool_len = 0;
        rs->spool_mark = rs->spool_len;
        return;
    }
#ifdef FALLOC_FL_PUNCH_HOLE
    if (j->spool_at)
        fallocate(rs->spool, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)j->spool_at);
#endif
    rs->spool_mark = j->spool_at;
}

int hk_resume_job_finish(hk_resume_job *j, hk_catalog *c, size_t budget, char *err, size_t errlen)
{
    hk_resume *rs = j->rs;
    double t0 = hk_resume_mono();
    const hk_served *sd = hk_catalog_served(c);
    size_t end = j->unchanged ? j->n : budget && j->n - j->done > budget ? j->done + budget : j->n;
    for (; j->done < end && !j->unchanged; j->done++) {
        const snap_ent *e = &j->e[j->done];
        if (e->new_ref == e->ref)
            continue;
        hk_served_rec *sv = hk_served_find(sd, e->path);
        if (sv && sv->resume_ref == e->ref) /* else deleted, or read again meanwhile: a spool ref after the snapshot */
            sv->resume_ref = e->new_ref;
    }
    j->times.finish += hk_resume_mono() - t0;
    j->times.slices++;
    if (!j->unchanged && j->done < j->n)
        return 1;
    if (!j->unchanged)
        job_close(rs, j);
    rs->st.unchanged = j->unchanged;
    if (!j->unchanged)
        rs->st.saved = j->saved;
    rs->st.last = j->times;
    int res = j->res;
    if (res != 0)
        snprintf(err, errlen, "%s", j->err);
    hk_resume_job_free(j);
    return res;
}

int hk_resume_save(hk_resume *rs, hk_catalog *c, hk_seeder *s, char *err, size_t errlen)
{
    hk_resume_job *j = hk_resume_snapshot(rs, c, s, err, errlen);
    if (!j)
        return -1;
    if (hk_resume_snapshot_step(j, 0) != 0) {
        snprintf(err, errlen, "%s: out of memory", rs->t[0].file);
        hk_resume_job_free(j);
        return -1;
    }
    hk_resume_job_write(j);
    return hk_resume_job_finish(j, c, 0, err, errlen);
}
