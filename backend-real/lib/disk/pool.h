/* pool: a small bounded thread pool whose results are handed back to the libev loop (backend-real).
 *
 * Contract
 * --------
 * hk_pool_submit queues work(arg) to run on a pool thread; when it has run, done(arg) runs on the loop thread (woken
 * through an ev_async), in completion order. Threads are started on demand up to max_threads and exit after
 * idle_exit_seconds without work (about a second by default), so an idle seeder holds no pool threads.
 * Submission never blocks. Work functions must not touch loop-owned state. hk_pool_free waits for queued work to
 * finish, runs nothing more on the loop, and joins every thread.
 */
#ifndef HEKATE_POOL_H
#define HEKATE_POOL_H

#include <stddef.h>

struct ev_loop;
typedef struct hk_pool hk_pool;

typedef void (*hk_pool_work_fn)(void *arg);  /* on a pool thread */
typedef void (*hk_pool_done_fn)(void *arg);  /* on the loop thread, after work(arg) returned */

hk_pool *hk_pool_new(struct ev_loop *loop, unsigned max_threads, double idle_exit_seconds);
int hk_pool_submit(hk_pool *p, hk_pool_work_fn work, hk_pool_done_fn done, void *arg); /* 0, or -1 (ENOMEM) */
void hk_pool_free(hk_pool *p);

typedef struct hk_pool_stats {
    unsigned threads;       /* alive now */
    size_t queued;          /* submitted, not yet started */
    unsigned long long completed;
} hk_pool_stats;
void hk_pool_stats_get(const hk_pool *p, hk_pool_stats *out);

#endif
