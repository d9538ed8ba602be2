/* verify: piece verification for backend-real (the seeder's optional disk_verify, core/seeder_runtime.h): hashes a
 * piece with OpenSSL (EVP SHA-1) straight from the store's mappings on the thread pool and compares it with the
 * expected SHA-1 read from the .torrent's mapping; for a hybrid torrent's piece that has v2 hashes (req->v2_length >
 * 0) also its BEP 52 root (merkle.h, SHA-256) with the 32 bytes at req->v2_hash: GOOD only when both match.
 *
 * Contract
 * --------
 * hk_verifier_submit (loop thread) takes a copy of the request and, from the loop (never synchronously), calls
 * done(arg, token, result, error) exactly once: HK_VERIFY_GOOD / HK_VERIFY_BAD, HK_VERIFY_RETRY (a passing shortage:
 * descriptors, memory) or HK_VERIFY_ERROR (the data cannot be read: the storage is marked failed by the store, like
 * a failed page-in). The loop thread only prepares: each extent is pinned (hk_store_pin: the file mapped like for a
 * send, no descriptor of its own) or, for a tiny file (HK_STORE_COPY_MAX), its bytes copied as the send path does.
 * The pool thread populates each pinned range (MADV_POPULATE_READ: one call maps the pages, the same pages the send
 * path later writes from, so the page tables are filled once for both) and hashes it in place, under a SIGBUS guard
 * (mapguard.h): a file that shrank (populate's EFAULT, or a SIGBUS while hashing) is an ERROR, never a signal.
 * No copy, no descriptor and no system call but the populate per segment. At most HK_VERIFY_INFLIGHT verifies hold
 * pins at once; the others wait in order. hk_verifier_new installs the process's SIGBUS guard (mapguard.h) once.
 * hk_verifier_free: call after hk_pool_free (nothing in flight); waiting requests are dropped without completion.
 */
#ifndef HEKATE_VERIFY_H
#define HEKATE_VERIFY_H

#include "pool.h"
#include "seeder_runtime.h"
#include "store.h"

#define HK_VERIFY_INFLIGHT 8u

typedef struct hk_verifier hk_verifier;
/* error: the errno behind a RETRY or an ERROR (0 for GOOD and BAD). */
typedef void (*hk_verify_done_fn)(void *arg, uint64_t token, hk_verify_result result, int error);

hk_verifier *hk_verifier_new(hk_store *st, hk_pool *pool, hk_verify_done_fn done, void *arg); /* NULL: no memory */
/* 0, or -1 when out of memory (no completion will come: the caller reports RETRY itself later). */
int hk_verifier_submit(hk_verifier *v, const hk_verify_req *req, uint64_t token);
void hk_verifier_free(hk_verifier *v);

#endif
