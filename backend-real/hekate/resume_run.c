/* resume_run: the resume state's life in the daemon (see resume_run.h): open, warm start, periodic saves in the
 * background (snapshot on the loop, write on a thread of its own pool, finish in slices on the loop), the final
 * save at a clean stop, and a reload's DIRs. */
#include "resume_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "early_signals.h"
#include "log.h"
#include "pool.h"
#include "resume.h"

#define FINISH_SLICE 20000u /* records per finish slice: about 5 ms of the loop at 10^6 torrents */
#define SNAP_SLICE 20000u   /* records per snapshot slice */

typedef struct resume_bg {
    app *a;
    hk_pool *pool;               /* one thread, made on the first periodic save */
    hk_resume_job *job;          /* the save in flight, or NULL */
    bool snapping;               /* its snapshot is being taken, a slice per loop iteration */
    bool writing;                /* submitted to the pool, its write not yet done */
    bool dirs_pending;           /* a reload changed the DIRs while a save ran: applied when it is finished */
    ev_timer finish;             /* the snapshot's and the finish's slices, one per loop iteration */
    double max_slice, max_cpu;   /* its longest part on the loop: wall-clock and the loop thread's CPU time */
} resume_bg;

int resume_open(app *a, const char *prog)
{
    const hk_options *opt = a->opt;
    if (opt->list || (!opt->state_file && !opt->state_per_dir))
        return 0;
    if (opt->state_file && opt->state_per_dir) {
        fprintf(stderr, "%s: --state and --state-per-dir exclude each other\n", prog);
        return -1;
    }
    char err[1024];
    a->resume = hk_resume_new(opt->state_file, opt->state_per_dir, (const char *const *)opt->dirs, opt->ndirs, err,
                              sizeof err);
    a->resume_bg = a->resume ? calloc(1, sizeof *a->resume_bg) : NULL;
    if (!a->resume || !a->resume_bg) {
        fprintf(stderr, "%s: cannot start: resume state: %s\n", prog, a->resume ? "out of memory" : err);
        hk_resume_free(a->resume);
        a->resume = NULL;
        return -1;
    }
    a->resume_bg->a = a;
    hk_catalog_set_resume(hk_real_catalog(a->real), a->resume);
    return 0;
}

/* Between two slices of the load: the loop serves what is loaded so far; a stop recorded ends the load. */
static int warm_step(void *arg)
{
    app *a = arg;
    ev_run(a->loop, EVRUN_NOWAIT);
    return early_signals_stop() != 0;
}

int resume_warm(app *a)
{
    if (!a->resume)
        return 0;
    hk_resume_stats st;
    int stopped = hk_resume_load(a->resume, hk_real_catalog(a->real), hk_real_seeder(a->real), warm_step, a, &st);
    a->served += st.loaded; /* the first scan finds them unchanged: counted here */
    if (st.entries || st.loaded)
        hk_log(HK_LOG_INFO, "resume state: %zu torrent%s served from it in %.3f s (%zu with verified pieces, %zu whose "
               "data changed: checked again); %zu changed, %zu gone, %zu outside the DIRs, %zu failed", st.loaded,
               st.loaded == 1 ? "" : "s", st.seconds, st.marked, st.marks_dropped, st.changed, st.gone, st.outside,
               st.failed);
    return stopped;
}

static void apply_dirs(app *a)
{
    int r = hk_resume_set_dirs(a->resume, (const char *const *)a->opt->dirs, a->opt->ndirs);
    a->resume_bg->dirs_pending = r == 1;
    if (r < 0)
        hk_log(HK_LOG_WARN, "resume state: out of memory: it keeps recording the previous DIRs");
}

/* The loop thread's CPU time (a loaded machine stretches the wall-clock time of a slice; this does not). */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A save ended (res 0 saved or unchanged, -1 failed with err): one line. */
static void said(app *a, const char *when, int res, const char *err, double loop_max, double cpu_max)
{
    const hk_resume_stats *st = hk_resume_stats_get(a->resume);
    if (res != 0)
        hk_log(HK_LOG_WARN, "resume state not saved (%s): %s", when, err);
    else if (st->unchanged)
        hk_log(HK_LOG_DEBUG, "resume state unchanged (%s): not rewritten", when);
    else
        hk_log(HK_LOG_INFO, "resume state saved (%s): %zu torrent%s; loop held %.1f ms at most (%.1f ms of CPU; snapshot %.1f ms in "
               "%u slice%s, finish %.1f ms in %u slice%s), written in %.3f s", when, st->saved,
               st->saved == 1 ? "" : "s", loop_max * 1e3, cpu_max * 1e3, st->last.snapshot * 1e3, st->last.snap_slices + 1,
               st->last.snap_slices ? "s" : "", st->last.finish * 1e3, st->last.slices,
               st->last.slices == 1 ? "" : "s", st->last.write);
}

static void write_work(void *arg)
{
    hk_resume_job_write(((resume_bg *)arg)->job);
}

static void next_slice(resume_bg *bg)
{
    ev_timer_set(&bg->finish, 0., 0.);
    ev_timer_start(bg->a->loop, &bg->finish);
}

static void write_done(void *arg)
{
    resume_bg *bg = arg;
    bg->writing = false;
    next_slice(bg);
}

static void slice_time(resume_bg *bg, double t0, double c0)
{
    double dt = ev_time() - t0, dc = cpu_now() - c0;
    if (dt > bg->max_slice)
        bg->max_slice = dt;
    if (dc > bg->max_cpu)
        bg->max_cpu = dc;
}

/* The snapshot is complete: the write goes to the pool's thread. */
static void submit_write(resume_bg *bg)
{
    bg->snapping = false;
    bg->writing = true;
    if (hk_pool_submit(bg->pool, write_work, write_done, bg) != 0) { /* no memory for the queue: here, then */
        write_work(bg);
        write_done(bg);
    }
}

/* One slice per loop iteration: of the snapshot, then (after the write) of the finish. */
static void slice_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    resume_bg *bg = w->data;
    char err[1024] = "";
    double t0 = ev_time(), c0 = cpu_now();
    int r;
    if (bg->snapping) {
        r = hk_resume_snapshot_step(bg->job, SNAP_SLICE);
        slice_time(bg, t0, c0);
        if (r == 1) {
            next_slice(bg);
        } else if (r == 0) {
            submit_write(bg);
        } else {
            hk_resume_job_free(bg->job);
            bg->job = NULL;
            bg->snapping = false;
            said(bg->a, "periodic", -1, "out of memory", 0, 0);
        }
        return;
    }
    r = hk_resume_job_finish(bg->job, hk_real_catalog(bg->a->real), FINISH_SLICE, err, sizeof err);
    slice_time(bg, t0, c0);
    if (r == 1) {
        next_slice(bg);
        return;
    }
    bg->job = NULL;
    said(bg->a, "periodic", r, err, bg->max_slice, bg->max_cpu);
    if (bg->dirs_pending)
        apply_dirs(bg->a);
}

/* The periodic save: its snapshot and finish in slices on the loop, its write on the pool's thread; skipped while
 * the previous one runs. */
static void save_bg(app *a)
{
    resume_bg *bg = a->resume_bg;
    if (!a->started)
        return;
    if (bg->job) {
        hk_log(HK_LOG_DEBUG, "resume state: the previous save is still running: this period's is skipped");
        return;
    }
    char err[1024];
    if (!bg->pool)
        bg->pool = hk_pool_new(a->loop, 1, 5.0);
    double t0 = ev_time(), c0 = cpu_now();
    bg->job = bg->pool ? hk_resume_snapshot(a->resume, hk_real_catalog(a->real), hk_real_seeder(a->real), err,
                                            sizeof err)
                       : NULL;
    if (!bg->job) {
        hk_log(HK_LOG_WARN, "resume state not saved (periodic): %s", bg->pool ? err : "no thread for it");
        return;
    }
    bg->max_slice = bg->max_cpu = 0;
    slice_time(bg, t0, c0);
    bg->snapping = true;
    ev_timer_init(&bg->finish, slice_cb, 0., 0.);
    bg->finish.data = bg;
    ev_timer_start(a->loop, &bg->finish);
}

/* A save in flight is brought to its end here (its write waited for, its finish run whole). */
static void drain(app *a, const char *when)
{
    resume_bg *bg = a->resume_bg;
    if (!bg || !bg->job)
        return;
    if (bg->writing) { /* the pool joins its thread; write_done is not run */
        hk_pool_free(bg->pool);
        bg->pool = NULL;
        bg->writing = false;
    }
    if (ev_is_active(&bg->finish))
        ev_timer_stop(a->loop, &bg->finish);
    char err[1024] = "";
    int r = 0;
    if (bg->snapping) { /* the rest of the snapshot, then the write, here */
        bg->snapping = false;
        r = hk_resume_snapshot_step(bg->job, 0);
        if (r == 0)
            hk_resume_job_write(bg->job);
    }
    if (r != 0) {
        hk_resume_job_free(bg->job);
        bg->job = NULL;
        said(a, when, -1, "out of memory", 0, 0);
        return;
    }
    r = hk_resume_job_finish(bg->job, hk_real_catalog(a->real), 0, err, sizeof err);
    bg->job = NULL;
    said(a, when, r, err, 0, 0);
    if (bg->dirs_pending)
        apply_dirs(a);
}

void resume_save(app *a, const char *when)
{
    if (!a->resume)
        return;
    if (!a->started) { /* stopped during the load or the first scan: the file on disk knows more than we do */
        hk_log(HK_LOG_INFO, "resume state not saved: start-up did not finish; the previous file is kept");
        return;
    }
    drain(a, "periodic");
    char err[1024];
    double t0 = ev_time(), c0 = cpu_now();
    int r = hk_resume_save(a->resume, hk_real_catalog(a->real), hk_real_seeder(a->real), err, sizeof err);
    said(a, when, r, err, ev_time() - t0, cpu_now() - c0); /* on the loop, whole */
}

void resume_dirs_changed(app *a)
{
    if (a->resume)
        apply_dirs(a);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    save_bg(w->data);
}

void resume_start_timer(app *a)
{
    if (!a->resume)
        return;
    double every = (double)a->opt->state_interval / 1e9;
    ev_timer_init(&a->resume_timer, timer_cb, every, every);
    a->resume_timer.data = a;
    ev_timer_start(a->loop, &a->resume_timer);
    a->resume_timer_on = true;
}

void resume_close(app *a)
{
    if (a->resume_timer_on)
        ev_timer_stop(a->loop, &a->resume_timer);
    a->resume_timer_on = false;
    resume_bg *bg = a->resume_bg;
    if (bg) {
        if (bg->writing)
            hk_pool_free(bg->pool); /* joins the writer */
        else if (bg->pool)
            hk_pool_free(bg->pool);
        if (bg->job && ev_is_active(&bg->finish))
            ev_timer_stop(a->loop, &bg->finish);
        hk_resume_job_free(bg->job);
        free(bg);
        a->resume_bg = NULL;
    }
    if (a->resume)
        hk_catalog_set_resume(hk_real_catalog(a->real), NULL);
    hk_resume_free(a->resume);
    a->resume = NULL;
}
