/* resume_run: the resume state's life in the daemon (see resume_run.h): open, warm start, periodic and final
 * saves. */
#include "resume_run.h"

#include <stdio.h>
#include <string.h>

#include "catalog.h"
#include "early_signals.h"
#include "log.h"
#include "resume.h"

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
    if (!a->resume) {
        fprintf(stderr, "%s: cannot start: resume state: %s\n", prog, err);
        return -1;
    }
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

void resume_save(app *a, const char *when)
{
    if (!a->resume)
        return;
    if (!a->started) { /* stopped during the load or the first scan: the file on disk knows more than we do */
        hk_log(HK_LOG_INFO, "resume state not saved: start-up did not finish; the previous file is kept");
        return;
    }
    char err[1024];
    if (hk_resume_save(a->resume, hk_real_catalog(a->real), hk_real_seeder(a->real), err, sizeof err) != 0) {
        hk_log(HK_LOG_WARN, "resume state not saved (%s): %s", when, err);
        return;
    }
    const hk_resume_stats *st = hk_resume_stats_get(a->resume);
    if (st->unchanged) {
        hk_log(HK_LOG_DEBUG, "resume state unchanged (%s): not rewritten", when);
        return;
    }
    hk_log(strcmp(when, "periodic") == 0 ? HK_LOG_DEBUG : HK_LOG_INFO, "resume state saved (%s): %zu torrent%s",
           when, st->saved, st->saved == 1 ? "" : "s");
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    resume_save(w->data, "periodic");
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
    if (a->resume)
        hk_catalog_set_resume(hk_real_catalog(a->real), NULL);
    hk_resume_free(a->resume);
    a->resume = NULL;
}
