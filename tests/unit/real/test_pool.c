/* Tests of backend-real/lib/disk/pool: jobs run on pool threads, completions come back on the loop thread in order,
 * the thread count is bounded, idle threads exit, hk_pool_free drains the queue and joins. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include <ev.h>

#include "pool.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- N jobs, N completions on the loop thread ---- */

#define NJOBS 500

typedef struct counting {
    pthread_t loop_thread;
    atomic_int worked;
    atomic_int work_on_loop_thread;
    int done;
    int done_off_loop_thread;
    int done_before_work;
    int order[NJOBS];
    struct ev_loop *loop;
    int break_at;
} counting;

typedef struct cjob {
    counting *c;
    int index;
    atomic_bool worked;
    int done_count;
} cjob;

static void count_work(void *arg)
{
    cjob *j = arg;
    if (pthread_equal(pthread_self(), j->c->loop_thread))
        atomic_fetch_add(&j->c->work_on_loop_thread, 1);
    atomic_store(&j->worked, true);
    atomic_fetch_add(&j->c->worked, 1);
}

static void count_done(void *arg)
{
    cjob *j = arg;
    counting *c = j->c;
    if (!pthread_equal(pthread_self(), c->loop_thread))
        c->done_off_loop_thread++;
    if (!atomic_load(&j->worked))
        c->done_before_work++;
    j->done_count++;
    if (c->done < NJOBS)
        c->order[c->done] = j->index;
    c->done++;
    if (c->break_at > 0 && c->done == c->break_at)
        ev_break(c->loop, EVBREAK_ALL);
}

Test(pool, n_jobs_n_completions_on_loop_thread, .timeout = 20)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    cr_assert_not_null(loop);
    hk_pool *p = hk_pool_new(loop, 4, 1.0);
    cr_assert_not_null(p);
    static counting c;
    static cjob jobs[NJOBS];
    c.loop_thread = pthread_self();
    c.loop = loop;
    for (int i = 0; i < NJOBS; i++) {
        jobs[i].c = &c;
        jobs[i].index = i;
        cr_assert_eq(hk_pool_submit(p, count_work, count_done, &jobs[i]), 0);
    }
    hk_pool_stats st;
    hk_pool_stats_get(p, &st);
    cr_assert_leq(st.threads, 4u, "at most max_threads threads, got %u", st.threads);

    /* No timer, no break: ev_run returns by itself once every completion was handed back (outstanding work holds
     * the loop; an idle pool does not). The test timeout bounds it. */
    ev_run(loop, 0);

    cr_assert_eq(atomic_load(&c.worked), NJOBS);
    cr_assert_eq(c.done, NJOBS);
    cr_assert_eq(c.done_off_loop_thread, 0);
    cr_assert_eq(c.done_before_work, 0);
    cr_assert_eq(atomic_load(&c.work_on_loop_thread), 0, "work must run on pool threads");
    for (int i = 0; i < NJOBS; i++)
        cr_assert_eq(jobs[i].done_count, 1, "job %d completed %d times", i, jobs[i].done_count);
    hk_pool_stats_get(p, &st);
    cr_assert_eq(st.completed, (unsigned long long)NJOBS);
    cr_assert_eq(st.queued, 0u);
    hk_pool_free(p);
    ev_loop_destroy(loop);
}

Test(pool, one_thread_completes_in_submission_order, .timeout = 20)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_pool *p = hk_pool_new(loop, 1, 1.0);
    cr_assert_not_null(p);
    static counting c;
    static cjob jobs[NJOBS];
    c.loop_thread = pthread_self();
    c.loop = loop;
    for (int i = 0; i < NJOBS; i++) {
        jobs[i].c = &c;
        jobs[i].index = i;
        cr_assert_eq(hk_pool_submit(p, count_work, count_done, &jobs[i]), 0);
    }
    hk_pool_stats st;
    hk_pool_stats_get(p, &st);
    cr_assert_eq(st.threads, 1u);
    ev_run(loop, 0);
    cr_assert_eq(c.done, NJOBS);
    for (int i = 0; i < NJOBS; i++)
        cr_assert_eq(c.order[i], i, "completion %d was job %d", i, c.order[i]);
    hk_pool_free(p);
    ev_loop_destroy(loop);
}

/* ---- bounded concurrency ---- */

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inside, max_inside, target;
    int done;
    struct ev_loop *loop;
    int total;
} gate;

static void gate_work(void *arg)
{
    gate *g = arg;
    pthread_mutex_lock(&g->mu);
    g->inside++;
    if (g->inside > g->max_inside)
        g->max_inside = g->inside;
    pthread_cond_broadcast(&g->cv);
    /* wait (bounded) until `target` jobs run at once, so the test sees real parallelism */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 2;
    while (g->max_inside < g->target)
        if (pthread_cond_timedwait(&g->cv, &g->mu, &dl) != 0)
            break;
    g->inside--;
    pthread_mutex_unlock(&g->mu);
    sleep_ms(2);
}

static void gate_done(void *arg)
{
    gate *g = arg;
    if (++g->done == g->total)
        ev_break(g->loop, EVBREAK_ALL);
}

Test(pool, never_more_than_max_threads, .timeout = 20)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_pool *p = hk_pool_new(loop, 3, 1.0);
    static gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 3, 0, NULL, 40};
    g.loop = loop;
    for (int i = 0; i < g.total; i++)
        cr_assert_eq(hk_pool_submit(p, gate_work, gate_done, &g), 0);
    hk_pool_stats st;
    hk_pool_stats_get(p, &st);
    cr_assert_eq(st.threads, 3u, "three threads started for 40 jobs, got %u", st.threads);
    cr_assert_geq(st.queued, 30u);
    ev_run(loop, 0);
    cr_assert_eq(g.done, g.total);
    cr_assert_eq(g.max_inside, 3, "max concurrency %d, want exactly 3", g.max_inside);
    hk_pool_free(p);
    ev_loop_destroy(loop);
}

/* ---- idle threads exit ---- */

static void noop_work(void *arg)
{
    (void)arg;
    sleep_ms(5);
}

static void noop_done(void *arg)
{
    (*(int *)arg)++;
}

Test(pool, idle_threads_exit_then_restart, .timeout = 20)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    const double idle = 0.5;
    hk_pool *p = hk_pool_new(loop, 4, idle);
    int done = 0;
    for (int i = 0; i < 16; i++)
        cr_assert_eq(hk_pool_submit(p, noop_work, noop_done, &done), 0);
    ev_run(loop, 0);
    cr_assert_eq(done, 16);
    double t0 = now_s();
    hk_pool_stats st;
    hk_pool_stats_get(p, &st);
    cr_assert_gt(st.threads, 0u, "threads stay a while after work");

    double gone_at = -1;
    while (now_s() - t0 < 5.0) {
        hk_pool_stats_get(p, &st);
        if (st.threads == 0) {
            gone_at = now_s() - t0;
            break;
        }
        sleep_ms(10);
    }
    cr_assert_geq(gone_at, 0.0, "threads did not exit within 5 s of idleness (%u left)", st.threads);
    cr_assert_geq(gone_at, idle * 0.8, "threads exited after %.3f s, before the idle delay %.3f s", gone_at, idle);
    cr_assert_leq(gone_at, idle + 1.5, "threads exited only after %.3f s", gone_at);

    /* the pool starts threads again on demand (and joins the exited ones) */
    done = 0;
    for (int i = 0; i < 4; i++)
        cr_assert_eq(hk_pool_submit(p, noop_work, noop_done, &done), 0);
    hk_pool_stats_get(p, &st);
    cr_assert_gt(st.threads, 0u);
    ev_run(loop, 0);
    cr_assert_eq(done, 4);
    hk_pool_free(p);
    ev_loop_destroy(loop);
}

Test(pool, one_second_default_idle_goes_to_zero, .timeout = 20)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_pool *p = hk_pool_new(loop, 2, 1.0);
    int done = 0;
    cr_assert_eq(hk_pool_submit(p, noop_work, noop_done, &done), 0);
    cr_assert_eq(hk_pool_submit(p, noop_work, noop_done, &done), 0);
    ev_run(loop, 0);
    double t0 = now_s();
    hk_pool_stats st = {0};
    while (now_s() - t0 < 4.0) {
        hk_pool_stats_get(p, &st);
        if (st.threads == 0)
            break;
        sleep_ms(20);
    }
    cr_assert_eq(st.threads, 0u, "still %u threads %.2f s after the last job", st.threads, now_s() - t0);
    hk_pool_free(p);
    ev_loop_destroy(loop);
}

/* ---- hk_pool_free drains queued work, runs no done() ---- */

static void slow_work(void *arg)
{
    sleep_ms(3);
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void must_not_run(void *arg)
{
    (void)arg;
    cr_assert_fail("done() ran after hk_pool_free");
}

Test(pool, free_finishes_queued_work_and_joins, .timeout = 20)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_pool *p = hk_pool_new(loop, 2, 1.0);
    static atomic_int ran;
    for (int i = 0; i < 30; i++)
        cr_assert_eq(hk_pool_submit(p, slow_work, must_not_run, &ran), 0);
    hk_pool_free(p);
    cr_assert_eq(atomic_load(&ran), 30, "hk_pool_free returned with %d of 30 jobs run", atomic_load(&ran));
    /* the loop holds no watcher of the freed pool: it returns at once */
    ev_run(loop, 0);
    ev_loop_destroy(loop);
}

/* ---- re-entrancy: submitting from a done callback ---- */

typedef struct chain {
    hk_pool *p;
    int remaining;
    int done;
} chain;

static void chain_done(void *arg);

static void chain_work(void *arg)
{
    (void)arg;
}

static void chain_done(void *arg)
{
    chain *c = arg;
    c->done++;
    if (--c->remaining > 0)
        cr_assert_eq(hk_pool_submit(c->p, chain_work, chain_done, c), 0);
}

Test(pool, submit_from_done_callback, .timeout = 20)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    chain c = {hk_pool_new(loop, 2, 1.0), 50, 0};
    cr_assert_eq(hk_pool_submit(c.p, chain_work, chain_done, &c), 0);
    ev_run(loop, 0);
    cr_assert_eq(c.done, 50);
    hk_pool_free(c.p);
    ev_loop_destroy(loop);
}

Test(pool, invalid_arguments)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    cr_assert_null(hk_pool_new(loop, 0, 1.0));
    cr_assert_null(hk_pool_new(loop, 2, 0.0));
    cr_assert_null(hk_pool_new(loop, 2, -1.0));
    cr_assert_null(hk_pool_new(NULL, 2, 1.0));
    hk_pool *p = hk_pool_new(loop, 2, 1.0);
    cr_assert_eq(hk_pool_submit(p, NULL, NULL, NULL), -1);
    hk_pool_stats st;
    hk_pool_stats_get(p, &st);
    cr_assert_eq(st.threads, 0u, "no thread before the first job");
    hk_pool_free(p);
    ev_loop_destroy(loop);
}
