/* verify: owns backend-real's piece verification jobs (contract in verify.h): their preparation on the loop (pins of
 * the store's mappings), the SHA-1 straight from those mappings on a pool thread (under a SIGBUS guard, mapguard.h),
 * the comparison with the hash read from the .torrent, and their bounded number. */
#include "verify.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "list.h"
#include "mapguard.h"
#include "merkle.h"

enum { SEG_NONE, SEG_COPIED, SEG_PINNED };

typedef struct vseg {
    uint8_t kind;                /* SEG_*: SEG_COPIED: a tiny file's bytes malloc'd in mem; SEG_PINNED: ext pinned,
                                    mem points into the store's mapping (or the zero region of a pad file) */
    const uint8_t *mem;
    hk_extent ext;
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
    uint32_t fault;              /* the segment whose read failed (error EIO), or UINT32_MAX */
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
    (void)hk_mapguard_init(); /* once per process, from the loop thread: no pool thread races the install */
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

/* Unpins the mappings and frees the copies (loop thread). A read fault marks the storage failed, as a failed page-in
 * job does (hk_store_job_release with the fault's errno), unless it is a passing shortage. */
static void job_release(vjob *j)
{
    for (uint32_t k = 0; k < j->nsegs; k++) {
        vseg *g = &j->segs[k];
        if (g->kind == SEG_COPIED)
            free((void *)g->mem);
        else if (g->kind == SEG_PINNED)
            hk_store_unpin(j->v->st, &g->ext);
        g->kind = SEG_NONE;
    }
    if (j->fault < j->nsegs && j->error != 0) {
        const hk_extent *e = &j->segs[j->fault].ext;
        hk_store_job bad = {.storage = e->storage, .file = e->file, .fd = -1, .offset = e->offset,
                            .length = e->length, .error = j->error};
        hk_store_job_release(j->v->st, &bad);
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

/* SHA-1, fetched once (an EVP_sha1() passed to every EVP_DigestInit_ex is looked up again in the provider store, with
 * its locks, at each piece), and each pool thread's context, made on its first verify and freed when it ends. */
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static bool ctx_key_ok;
static const EVP_MD *sha1_md;

static void ctx_free(void *c)
{
    EVP_MD_CTX_free(c);
}

static void ctx_init(void)
{
    ctx_key_ok = pthread_key_create(&ctx_key, ctx_free) == 0;
    sha1_md = EVP_MD_fetch(NULL, "SHA1", NULL);
    if (!sha1_md)
        sha1_md = EVP_sha1();
}

/* This thread's context, initialised for SHA-1; NULL when out of memory. *own: the caller frees it (no thread key). */
static EVP_MD_CTX *thread_ctx(bool *own)
{
    pthread_once(&ctx_once, ctx_init);
    *own = !ctx_key_ok;
    EVP_MD_CTX *c = ctx_key_ok ? pthread_getspecific(ctx_key) : NULL;
    if (!c && (c = EVP_MD_CTX_new()) != NULL && ctx_key_ok && pthread_setspecific(ctx_key, c) != 0)
        *own = true;
    if (c && EVP_DigestInit_ex(c, sha1_md, NULL) != 1) {
        if (*own)
            EVP_MD_CTX_free(c);
        return NULL;
    }
    return c;
}

/* What the guarded read does: populate and hash the segments in order, then copy the hashes from the .torrent. */
typedef struct vread {
    vjob *j;
    vsink *k;
    uint32_t at;                 /* the segment being read (the faulty one if a SIGBUS cut the read) */
    int error;                   /* from populate: EIO (segment `at` is not backed by its file), ENOMEM, EAGAIN */
    uint8_t want[20], want2[32];
} vread;

static void read_all(void *arg)
{
    vread *r = arg;
    vjob *j = r->j;
    uint32_t nsegs = j->nexts + 1 + (j->v2_length > 0);
    for (r->at = 0; r->at < nsegs; r->at++) {
        const vseg *g = &j->segs[r->at];
        size_t n = g->ext.length;
        /* The data is populated (one call, not a fault per 16 pages); the hashes' page of the .torrent is faulted
         * in by the first piece and stays mapped: a call per piece for it would cost more than that one fault. */
        if (g->kind == SEG_PINNED && r->at < j->nexts && (r->error = hk_mapguard_populate(g->mem, n)) != 0)
            return;
        if (r->at < j->nexts)
            sink_put(r->k, g->mem, n);
        else
            memcpy(r->at == j->nexts ? r->want : r->want2, g->mem, r->at == j->nexts ? 20 : 32);
    }
}

/* Pool thread: the piece's bytes through SHA-1 (and, hybrid, the v2 tree) straight from the pinned mappings (the
 * pages the send path writes from: populated once, no copy), compared with the hashes in the .torrent. */
static void job_work(void *arg)
{
    vjob *j = arg;
    bool own;
    vsink k = {.md = thread_ctx(&own), .v2_left = j->v2_length};
    bool tree = j->v2_length > 0 && hk_merkle_init(&k.tree, j->v2_leaves) == 0;
    if (!k.md || (j->v2_length > 0 && !tree)) {
        j->error = ENOMEM;
        goto out;
    }
    vread r = {.j = j, .k = &k};
    int rc = hk_mapguard_run(read_all, &r);
    if (rc != 0 || r.error != 0) {
        j->error = rc ? rc : r.error;
        if (j->error == EIO)
            j->fault = r.at;
        goto out;
    }
    uint8_t got[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (EVP_DigestFinal_ex(k.md, got, &n) == 1)
        j->good = n == 20 && memcmp(got, r.want, 20) == 0;
    if (tree) {
        tree = false; /* final frees it */
        if (hk_merkle_final(&k.tree, got) != 0)
            j->error = ENOMEM;
        else
            j->good = j->good && memcmp(got, r.want2, 32) == 0;
    }
out:
    if (tree)
        hk_merkle_free(&k.tree);
    if (own)
        EVP_MD_CTX_free(k.md);
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

/* Prepares one segment: a tiny file copied, anything else pinned in the store's mapping. 0, or an errno. */
static int prepare_seg(hk_verifier *v, const hk_extent *ext, vseg *g)
{
    g->ext = *ext;
    uint8_t *buf = ext->length <= HK_STORE_COPY_MAX ? malloc(ext->length ? ext->length : 1) : NULL;
    if (buf) {
        int c = hk_store_copy(v->st, ext, buf, ext->length, NULL);
        if (c == 1) {
            g->kind = SEG_COPIED;
            g->mem = buf;
            return 0;
        }
        free(buf);
        if (c < 0)
            return errno ? errno : EIO;
    }
    struct iovec iov;
    if (hk_store_pin(v->st, ext, &iov, NULL) != 0)
        return errno ? errno : EIO;
    g->kind = SEG_PINNED;
    g->mem = iov.iov_base;
    return 0;
}

/* Loop thread: every segment prepared, then the pool; a failure is reported through the pool too (never
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
    j->fault = UINT32_MAX;
    hk_list_insert_tail(&v->waiting, &j->link);
    pump(v);
    return 0;
}
