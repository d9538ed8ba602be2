/* verify: owns backend-real's piece verification jobs (contract in verify.h): their preparation on the loop, the
 * pread + SHA-1 on a pool thread, the comparison with the hash read from the .torrent, and their bounded number. */
#include "verify.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "list.h"
#include "merkle.h"

typedef struct vseg {
    bool copied;                 /* a tiny file: its bytes are in buf */
    uint8_t *buf;
    hk_store_job job;            /* otherwise: the descriptor to read (fd -1: a pad file, zeros) */
} vseg;

typedef struct vjob {
    hk_list link;                /* waiting (not started) */
    hk_verifier *v;
    uint64_t token;
    hk_extent hash;
    hk_extent v2_hash;           /* hybrid: the piece's v2 root in the .torrent (v2_length > 0) */
    uint64_t v2_length;
    uint32_t v2_leaves;
    hk_extent *exts;
    uint32_t nexts, nsegs;       /* nsegs: segments prepared (segs[nexts] is the SHA-1's, segs[nexts + 1] the v2's) */
    vseg *segs;                  /* nexts + 2 */
    int error;                   /* errno-style, 0 when read */
    bool good;
} vjob;

struct hk_verifier {
    hk_store *st;
    hk_pool *pool;
    hk_verify_done_fn done;
    void *arg;
    hk_list waiting;
    hk_list running;             /* on the pool (released by hk_verifier_free if the pool ran no completion) */
    unsigned inflight;
};

hk_verifier *hk_verifier_new(hk_store *st, hk_pool *pool, hk_verify_done_fn done, void *arg)
{
    hk_verifier *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->st = st;
    v->pool = pool;
    v->done = done;
    v->arg = arg;
    hk_list_init(&v->waiting);
    hk_list_init(&v->running);
    return v;
}

static void job_free(vjob *j)
{
    free(j->exts);
    free(j->segs);
    free(j);
}

/* Closes the prepared descriptors and frees the copies (loop thread). A read error marks the storage failed. */
static void job_release(vjob *j)
{
    for (uint32_t k = 0; k < j->nsegs; k++) {
        vseg *g = &j->segs[k];
        if (g->copied)
            free(g->buf);
        else
            hk_store_job_release(j->v->st, &g->job);
    }
    j->nsegs = 0;
}

void hk_verifier_free(hk_verifier *v)
{
    if (!v)
        return;
    for (hk_list *n; (n = hk_list_first(&v->waiting)) != NULL;) {
        hk_list_remove(n);
        job_free(HK_LIST_ENTRY(n, vjob, link));
    }
    for (hk_list *n; (n = hk_list_first(&v->running)) != NULL;) {
        hk_list_remove(n);
        vjob *j = HK_LIST_ENTRY(n, vjob, link);
        job_release(j);
        job_free(j);
    }
    free(v);
}

/* Where a piece's bytes go: SHA-1 of all of them, and the first v2_left of them (hybrid) into the v2 tree. */
typedef struct vsink {
    EVP_MD_CTX *md;
    hk_merkle tree;
    uint64_t v2_left;
} vsink;

static void sink_put(vsink *k, const uint8_t *p, size_t n)
{
    EVP_DigestUpdate(k->md, p, n);
    size_t v = k->v2_left < n ? (size_t)k->v2_left : n;
    if (v > 0)
        hk_merkle_update(&k->tree, p, v);
    k->v2_left -= v;
}

/* Reads [off, off + len) of fd into the sink (fd -1: zeros). 0, or an errno. */
static int hash_fd(vsink *md, int fd, uint64_t off, uint64_t len, uint8_t *buf, size_t cap)
{
    while (len > 0) {
        size_t want = len < cap ? (size_t)len : cap;
        ssize_t r = (ssize_t)want;
        if (fd < 0)
            memset(buf, 0, want);
        else
            r = pread(fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            return EIO; /* the file is shorter than the torrent says */
        sink_put(md, buf, (size_t)r);
        off += (uint64_t)r;
        len -= (uint64_t)r;
    }
    return 0;
}

enum { CAP = 256 * 1024 }; /* bytes read at a time */

/* Each pool thread's read buffer, made on its first verify and freed when the thread ends: a fresh 256 KiB malloc
 * per piece is an mmap, 64 page faults and an munmap (about 1,000 fewer system calls per GiB served at K = 50; no
 * CPU difference measurable next to the SHA-1 itself, docs/benchmarks.md). */
static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static bool buf_key_ok;

static void buf_key_init(void)
{
    buf_key_ok = pthread_key_create(&buf_key, free) == 0;
}

/* NULL when out of memory. *own: the caller frees it (no thread key). */
static uint8_t *thread_buf(bool *own)
{
    pthread_once(&buf_once, buf_key_init);
    *own = !buf_key_ok;
    uint8_t *b = buf_key_ok ? pthread_getspecific(buf_key) : NULL;
    if (!b && (b = malloc(CAP)) != NULL && buf_key_ok && pthread_setspecific(buf_key, b) != 0)
        *own = true;
    return b;
}

/* Pool thread: the n bytes of hash segment h (copied, or read from its descriptor) into out. 0, or an errno. */
static int read_hash(vseg *h, uint8_t *out, size_t n)
{
    if (h->copied) {
        memcpy(out, h->buf, n);
        return 0;
    }
    ssize_t r = h->job.fd < 0 ? -1 : pread(h->job.fd, out, n, (off_t)h->job.offset);
    if (r == (ssize_t)n)
        return 0;
    return h->job.error = r < 0 ? (errno ? errno : EIO) : EIO;
}

/* Pool thread: the v2 root of the piece's first v2_length bytes against its 32 bytes in the .torrent. */
static bool v2_good(vjob *j, vsink *k)
{
    uint8_t got[32], want[32];
    if (hk_merkle_final(&k->tree, got) != 0) {
        j->error = ENOMEM;
        return false;
    }
    if ((j->error = read_hash(&j->segs[j->nexts + 1], want, sizeof want)) != 0)
        return false;
    return memcmp(got, want, 32) == 0;
}

/* Pool thread: the piece's bytes through SHA-1 (and, hybrid, the v2 tree), compared with the hashes' segments. */
static void job_work(void *arg)
{
    vjob *j = arg;
    bool own_buf;
    uint8_t *buf = thread_buf(&own_buf);
    vsink k = {.md = EVP_MD_CTX_new(), .v2_left = j->v2_length};
    bool tree = j->v2_length > 0 && hk_merkle_init(&k.tree, j->v2_leaves) == 0;
    if (!buf || !k.md || EVP_DigestInit_ex(k.md, EVP_sha1(), NULL) != 1 || (j->v2_length > 0 && !tree)) {
        j->error = ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < j->nexts && !j->error; i++) {
        vseg *g = &j->segs[i];
        if (g->copied)
            sink_put(&k, g->buf, j->exts[i].length);
        else if ((j->error = hash_fd(&k, g->job.fd, g->job.offset, g->job.length, buf, CAP)) != 0)
            g->job.error = j->error;
    }
    uint8_t got[EVP_MAX_MD_SIZE], want[20];
    unsigned n = 0;
    if (!j->error)
        j->error = read_hash(&j->segs[j->nexts], want, sizeof want);
    if (!j->error && EVP_DigestFinal_ex(k.md, got, &n) == 1)
        j->good = n == 20 && memcmp(got, want, 20) == 0;
    if (!j->error && tree) {
        tree = false; /* v2_good frees it */
        j->good = v2_good(j, &k) && j->good;
    }
out:
    if (tree)
        hk_merkle_free(&k.tree);
    EVP_MD_CTX_free(k.md);
    if (own_buf)
        free(buf);
}

static void start_job(hk_verifier *v, vjob *j);

static void pump(hk_verifier *v)
{
    while (v->inflight < HK_VERIFY_INFLIGHT && !hk_list_empty(&v->waiting)) {
        hk_list *n = hk_list_first(&v->waiting);
        hk_list_remove(n);
        start_job(v, HK_LIST_ENTRY(n, vjob, link));
    }
}

static hk_verify_result result_of(const vjob *j)
{
    if (j->error == 0)
        return j->good ? HK_VERIFY_GOOD : HK_VERIFY_BAD;
    return hk_store_transient(j->error) ? HK_VERIFY_RETRY : HK_VERIFY_ERROR;
}

/* Loop thread: the job ran (or could not start): descriptors closed, the result handed to the seeder. */
static void job_done(void *arg)
{
    vjob *j = arg;
    hk_verifier *v = j->v;
    hk_list_remove(&j->link);
    job_release(j);
    hk_verify_result res = result_of(j);
    uint64_t token = j->token;
    int error = j->error;
    job_free(j);
    v->inflight--;
    pump(v);
    v->done(v->arg, token, res, error);
}

static void noop_work(void *arg)
{
    (void)arg;
}

/* Prepares one segment: a tiny file copied, anything else a descriptor. 0, or an errno. */
static int prepare_seg(hk_verifier *v, const hk_extent *ext, vseg *g)
{
    uint8_t *buf = ext->length <= HK_STORE_COPY_MAX ? malloc(ext->length ? ext->length : 1) : NULL;
    if (buf) {
        int c = hk_store_copy(v->st, ext, buf, ext->length, NULL);
        if (c == 1) {
            g->copied = true;
            g->buf = buf;
            return 0;
        }
        free(buf);
        if (c < 0)
            return errno ? errno : EIO;
    }
    if (hk_store_job_prepare(v->st, ext, &g->job) != 0)
        return errno ? errno : EIO;
    return 0;
}

/* Loop thread: every descriptor prepared, then the pool; a failure is reported through the pool too (never
 * synchronously). */
static void start_job(hk_verifier *v, vjob *j)
{
    v->inflight++;
    uint32_t nsegs = j->nexts + 1 + (j->v2_length > 0);
    for (uint32_t k = 0; k < nsegs && !j->error; k++) {
        j->error = prepare_seg(v, k < j->nexts ? &j->exts[k] : k == j->nexts ? &j->hash : &j->v2_hash, &j->segs[k]);
        if (!j->error)
            j->nsegs = k + 1;
    }
    hk_list_insert_tail(&v->running, &j->link);
    if (hk_pool_submit(v->pool, j->error ? noop_work : job_work, job_done, j) == 0)
        return;
    /* The pool is out of memory: the job goes back to wait, started again when another verify completes. */
    hk_list_remove(&j->link);
    job_release(j);
    j->error = 0;
    v->inflight--;
    hk_list_insert_head(&v->waiting, &j->link);
}

int hk_verifier_submit(hk_verifier *v, const hk_verify_req *req, uint64_t token)
{
    vjob *j = calloc(1, sizeof *j);
    if (j) {
        j->exts = malloc((size_t)(req->nexts ? req->nexts : 1) * sizeof *j->exts);
        j->segs = calloc((size_t)req->nexts + 2, sizeof *j->segs);
    }
    if (!j || !j->exts || !j->segs) {
        if (j)
            job_free(j);
        return -1;
    }
    hk_list_init(&j->link);
    j->v = v;
    j->token = token;
    j->hash = req->hash;
    j->v2_hash = req->v2_hash;
    j->v2_length = req->v2_length;
    j->v2_leaves = req->v2_leaves;
    j->nexts = req->nexts;
    memcpy(j->exts, req->exts, (size_t)req->nexts * sizeof *j->exts);
    for (uint32_t k = 0; k < req->nexts + 2; k++)
        j->segs[k].job.fd = -1;
    hk_list_insert_tail(&v->waiting, &j->link);
    pump(v);
    return 0;
}
