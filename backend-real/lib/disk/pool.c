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

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include <ev.h>

typedef struct pool_job {
    struct pool_job *next;
    hk_pool_work_fn work;
    hk_pool_done_fn done;
    void *arg;
} pool_job;

typedef struct pool_thread {
    struct pool_thread *next;
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
    pool_job *queue_head, *queue_tail;
    size_t queued;
    pool_job *done_head, *done_tail;
    pool_thread *reap;           /* exited threads, still to be joined */
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

static void *pool_thread_main(void *self_arg)
{
    pool_thread *self = self_arg;
    hk_pool *p = self->pool;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->queue_head == NULL) {
            if (p->stopping)
                break;
            struct timespec deadline;
            deadline_after(&deadline, p->idle_exit_seconds);
            int rc = 0;
            p->idle++;
            while (p->queue_head == NULL && !p->stopping && rc != ETIMEDOUT)
                rc = pthread_cond_timedwait(&p->work_cv, &p->mu, &deadline);
            p->idle--;
            if (p->queue_head == NULL)
                break; /* idle too long, or stopping with nothing left */
        }
        pool_job *job = p->queue_head;
        p->queue_head = job->next;
        if (p->queue_head == NULL)
            p->queue_tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->mu);

        job->work(job->arg);

        job->next = NULL;
        pthread_mutex_lock(&p->mu);
        if (p->done_tail != NULL)
            p->done_tail->next = job;
        else
            p->done_head = job;
        p->done_tail = job;
        p->completed++;
        ev_async_send(p->loop, &p->wake); /* thread-safe; coalesces */
    }
    p->threads--;
    self->next = p->reap;
    p->reap = self;
    pthread_cond_broadcast(&p->exit_cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Joins the threads that have exited. Loop thread, without the lock held. */
static void pool_reap(hk_pool *p)
{
    pthread_mutex_lock(&p->mu);
    pool_thread *list = p->reap;
    p->reap = NULL;
    pthread_mutex_unlock(&p->mu);
    while (list != NULL) {
        pool_thread *next = list->next;
        pthread_join(list->tid, NULL);
        free(list);
        list = next;
    }
}

static void pool_on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)revents;
    hk_pool *p = w->data;
    pthread_mutex_lock(&p->mu);
    pool_job *list = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->mu);
    while (list != NULL) {
        pool_job *next = list->next;
        if (list->done != NULL)
            list->done(list->arg);
        free(list);
        list = next;
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
    t->next = NULL;
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
    job->next = NULL;
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
    if (p->queue_tail != NULL)
        p->queue_tail->next = job;
    else
        p->queue_head = job;
    p->queue_tail = job;
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
    pool_job *done = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->mu);
    pool_reap(p);

    while (done != NULL) { /* finished, but their done() will not run any more */
        pool_job *next = done->next;
        free(done);
        done = next;
    }
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
