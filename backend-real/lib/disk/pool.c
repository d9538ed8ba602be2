/* pool: a bounded pool of pthreads whose results come back to the libev loop (backend-real; contract in pool.h).
 *
 * Owns: the job queue (mutex + condition variable), the worker threads (started on demand, each exits after
 * idle_exit_seconds without work and puts itself on a reap list so its pthread_t is always joined), the completion
 * list (locked, drained by an ev_async callback on the loop thread in completion order).
 *
 * Loop reference: while no work is outstanding (submitted and its done callback not yet run), the pool's ev_async
 * holds no reference on the loop, so ev_run() returns once everything else is idle and every completion was handed
 * back; while work is outstanding it keeps the loop alive.
 */
#include "pool.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include <ev.h>

#include "list.h"

typedef struct pool_job {
    hk_list link;                /* on the queue, then on the completion list */
    hk_pool_work_fn work;
    hk_pool_done_fn done;
    void *arg;
} pool_job;

typedef struct pool_thread {
    hk_list link;                /* on the reap list once exited */
    pthread_t tid;
    hk_pool *pool;
} pool_thread;

struct hk_pool {
    struct ev_loop *loop;
    ev_async wake;
    unsigned max_threads;
    double idle_exit_seconds;
    size_t outstanding;          /* loop thread only: submitted, done() not yet run */

    pthread_mutex_t mu;          /* guards everything below */
    pthread_cond_t work_cv;      /* work queued, or stopping */
    pthread_cond_t exit_cv;      /* a thread exited (hk_pool_free waits for threads == 0) */
    hk_list queue;               /* submitted, not yet taken: FIFO */
    size_t queued;
    hk_list done;                /* finished, done() not yet run: completion order */
    hk_list reap;                /* exited threads, still to be joined: last exited first */
    unsigned threads;            /* alive (started, not yet on the reap list) */
    unsigned idle;               /* alive and waiting for work */
    bool stopping;
    unsigned long long completed;
};

static void deadline_after(struct timespec *ts, double seconds)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    double whole = (double)(long long)seconds;
    long long sec = (long long)whole;
    long long nsec = (long long)((seconds - whole) * 1e9);
    ts->tv_sec += (time_t)sec;
    ts->tv_nsec += (long)nsec;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec += 1;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Moves every element of `from` (left empty) to the list head `to`, in order, in O(1): `to` joins from's ring as its
 * last node, then `from` leaves the ring, so `to` heads everything `from` headed. */
static void list_move_all(hk_list *to, hk_list *from)
{
    hk_list_init(to);
    hk_list_insert_tail(from, to);
    hk_list_remove(from);
}

static void *pool_thread_main(void *self_arg)
{
    pool_thread *self = self_arg;
    hk_pool *p = self->pool;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (hk_list_empty(&p->queue)) {
            if (p->stopping)
                break;
            struct timespec deadline;
            deadline_after(&deadline, p->idle_exit_seconds);
            int rc = 0;
            p->idle++;
            while (hk_list_empty(&p->queue) && !p->stopping && rc != ETIMEDOUT)
                rc = pthread_cond_timedwait(&p->work_cv, &p->mu, &deadline);
            p->idle--;
            if (hk_list_empty(&p->queue))
                break; /* idle too long, or stopping with nothing left */
        }
        pool_job *job = HK_LIST_ENTRY(hk_list_first(&p->queue), pool_job, link);
        hk_list_remove(&job->link);
        assert(p->queued > 0);
        p->queued--;
        pthread_mutex_unlock(&p->mu);

        job->work(job->arg);

        pthread_mutex_lock(&p->mu);
        hk_list_insert_tail(&p->done, &job->link);
        p->completed++;
        ev_async_send(p->loop, &p->wake); /* thread-safe; coalesces */
    }
    p->threads--;
    hk_list_insert_head(&p->reap, &self->link);
    pthread_cond_broadcast(&p->exit_cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* list_move_all of a list the lock guards, taking the lock. Loop thread. */
static void take_locked(hk_pool *p, hk_list *to, hk_list *from)
{
    pthread_mutex_lock(&p->mu);
    list_move_all(to, from);
    pthread_mutex_unlock(&p->mu);
}

/* Joins the threads that have exited. Loop thread, without the lock held. */
static void pool_reap(hk_pool *p)
{
    hk_list exited;
    take_locked(p, &exited, &p->reap);
    hk_list *node, *tmp;
    HK_LIST_FOREACH_SAFE(node, tmp, &exited) {
        pool_thread *t = HK_LIST_ENTRY(node, pool_thread, link);
        pthread_join(t->tid, NULL);
        free(t);
    }
}

static void pool_on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)revents;
    hk_pool *p = w->data;
    hk_list finished;
    take_locked(p, &finished, &p->done);
    hk_list *node, *tmp;
    HK_LIST_FOREACH_SAFE(node, tmp, &finished) {
        pool_job *job = HK_LIST_ENTRY(node, pool_job, link);
        if (job->done != NULL)
            job->done(job->arg);
        free(job);
        assert(p->outstanding > 0);
        if (--p->outstanding == 0)
            ev_unref(loop); /* nothing outstanding: the pool no longer keeps the loop alive */
    }
    pool_reap(p);
}

hk_pool *hk_pool_new(struct ev_loop *loop, unsigned max_threads, double idle_exit_seconds)
{
    if (loop == NULL || max_threads == 0 || !(idle_exit_seconds > 0.0) || idle_exit_seconds > 1e6)
        return NULL;
    hk_pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->loop = loop;
    p->max_threads = max_threads;
    p->idle_exit_seconds = idle_exit_seconds;
    hk_list_init(&p->queue);
    hk_list_init(&p->done);
    hk_list_init(&p->reap);
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) {
        free(p);
        return NULL;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    bool ok = pthread_mutex_init(&p->mu, NULL) == 0;
    if (ok && pthread_cond_init(&p->work_cv, &ca) != 0) {
        pthread_mutex_destroy(&p->mu);
        ok = false;
    }
    if (ok && pthread_cond_init(&p->exit_cv, NULL) != 0) {
        pthread_cond_destroy(&p->work_cv);
        pthread_mutex_destroy(&p->mu);
        ok = false;
    }
    pthread_condattr_destroy(&ca);
    if (!ok) {
        free(p);
        return NULL;
    }
    ev_async_init(&p->wake, pool_on_wake);
    p->wake.data = p;
    ev_async_start(loop, &p->wake);
    ev_unref(loop); /* idle pool: holds no reference on the loop */
    return p;
}

/* Starts one more worker. Called with the lock held. Returns 0 or an errno value. */
static int pool_spawn_locked(hk_pool *p)
{
    pool_thread *t = malloc(sizeof *t);
    if (t == NULL)
        return ENOMEM;
    t->pool = p;
    hk_list_init(&t->link);
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc != 0) {
        free(t);
        return rc;
    }
    /* Workers need little stack: hk_store_page_in uses a 64 KiB scratch buffer. */
    pthread_attr_setstacksize(&attr, 256 * 1024);
    rc = pthread_create(&t->tid, &attr, pool_thread_main, t);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        free(t);
        return rc;
    }
    p->threads++;
    return 0;
}

int hk_pool_submit(hk_pool *p, hk_pool_work_fn work, hk_pool_done_fn done, void *arg)
{
    if (p == NULL || work == NULL) {
        errno = EINVAL;
        return -1;
    }
    pool_reap(p);
    pool_job *job = malloc(sizeof *job);
    if (job == NULL) {
        errno = ENOMEM;
        return -1;
    }
    hk_list_init(&job->link);
    job->work = work;
    job->done = done;
    job->arg = arg;

    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        free(job);
        errno = EINVAL;
        return -1;
    }
    /* Every idle thread will take one queued job; start a thread only when the queue outnumbers them. */
    if (p->queued + 1 > p->idle && p->threads < p->max_threads) {
        int rc = pool_spawn_locked(p);
        if (rc != 0 && p->threads == 0) {
            pthread_mutex_unlock(&p->mu);
            free(job);
            errno = rc == EAGAIN ? EAGAIN : ENOMEM;
            return -1; /* no thread would ever run it */
        }
        /* a failure with threads alive is fine: they will get to the job */
    }
    hk_list_insert_tail(&p->queue, &job->link);
    p->queued++;
    if (p->idle > 0)
        pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->mu);

    if (p->outstanding++ == 0)
        ev_ref(p->loop); /* outstanding work keeps the loop alive until its done() has run */
    return 0;
}

void hk_pool_free(hk_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->work_cv);
    while (p->threads > 0) /* workers drain the queue first, then exit */
        pthread_cond_wait(&p->exit_cv, &p->mu);
    hk_list finished;
    list_move_all(&finished, &p->done);
    pthread_mutex_unlock(&p->mu);
    pool_reap(p);

    hk_list *node, *tmp;
    HK_LIST_FOREACH_SAFE(node, tmp, &finished) /* finished, but their done() will not run any more */
        free(HK_LIST_ENTRY(node, pool_job, link));
    if (p->outstanding == 0)
        ev_ref(p->loop); /* the watcher was unreferenced: restore before stopping it (libev rule) */
    ev_async_stop(p->loop, &p->wake);
    pthread_cond_destroy(&p->exit_cv);
    pthread_cond_destroy(&p->work_cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void hk_pool_stats_get(const hk_pool *p, hk_pool_stats *out)
{
    hk_pool *mp = (hk_pool *)p; /* the lock is the only thing mutated */
    pthread_mutex_lock(&mp->mu);
    out->threads = mp->threads;
    out->queued = mp->queued;
    out->completed = mp->completed;
    pthread_mutex_unlock(&mp->mu);
}
