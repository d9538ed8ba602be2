/* rescans: when and how the folders are scanned again while hekate serves (see rescans.h). */
#include "rescans.h"

#include <signal.h>

#include "config_reload.h"
#include "early_signals.h"
#include "log.h"
#include "report.h"

#define STEP_SECONDS 0.010       /* rescan work per loop iteration, so serving goes on during a long rescan */

static void start_rescan(app *a, const char *why, bool asked)
{
    const hk_rescan_cb cb = report_callbacks(a);
    a->rs = hk_rescan_new(a->real, (const char *const *)a->opt->dirs, a->opt->ndirs, &cb, PROGRESS_EVERY);
    if (!a->rs) {
        hk_log(HK_LOG_ERROR, "cannot rescan: out of memory");
        return;
    }
    a->asked = asked;
    a->loud = 0;
    hk_log(asked ? HK_LOG_INFO : HK_LOG_DEBUG, "%s: rescanning %zu folder%s", why, a->opt->ndirs,
           a->opt->ndirs == 1 ? "" : "s");
    ev_prepare_start(a->loop, &a->rs_step);
    ev_idle_start(a->loop, &a->rs_idle);
}

static void stop_rescan(app *a)
{
    ev_prepare_stop(a->loop, &a->rs_step);
    ev_idle_stop(a->loop, &a->rs_idle);
    hk_rescan_free(a->rs);
    a->rs = NULL;
}

/* A slice of the rescan under way; at its end the summary, and the rescan a SIGHUP queued meanwhile. */
static void rs_step_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    app *a = w->data;
    if (!a->rs || !hk_rescan_step(a->rs, STEP_SECONDS))
        return;
    hk_rescan_stats st;
    hk_rescan_stats_get(a->rs, &st);
    report_scan_done(a, &st);
    stop_rescan(a);
    a->rescans_done++;
    if (a->watch && hk_watch_rewatch(a->watch) > 0) /* a DIR deleted and made again: watched again */
        hk_log(HK_LOG_INFO, "watching the folders again after the rescan");
    if (a->again) {
        a->again = false;
        start_rescan(a, "a rescan asked for during the last one (SIGHUP, or the folder watch)", true);
    }
}

static void rs_idle_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents; /* keeps the loop from blocking while a rescan has work left */
}

static void sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    app *a = w->data;
    if (a->opt->config_path && app_reload_config(a) == 1)
        return; /* the folders changed: the rescan that started does what SIGHUP asks */
    if (a->rs) {
        a->again = true;
        hk_log(HK_LOG_INFO, "SIGHUP received: a rescan is under way; another one follows it");
        return;
    }
    start_rescan(a, "SIGHUP received", true);
}

bool rescans_request(app *a, const char *why)
{
    if (a->rs || !a->started) { /* a rescan, or the first scan (the loop serves during it), is under way */
        a->again = true;
        hk_log(HK_LOG_INFO, "%s: a rescan is under way; another one follows it", why);
        return false;
    }
    start_rescan(a, why, true);
    return true;
}

static void rescan_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    app *a = w->data;
    if (!a->rs) /* a rescan still under way is not queued again by the timer */
        start_rescan(a, "periodic rescan (--rescan)", false);
}

void rescans_init(app *a)
{
    ev_prepare_init(&a->rs_step, rs_step_cb);
    a->rs_step.data = a;
    ev_idle_init(&a->rs_idle, rs_idle_cb);
    a->rs_idle.data = a;
    ev_signal_init(&a->sighup, sighup_cb, SIGHUP);
    a->sighup.data = a;
    double every = (double)a->opt->rescan_interval / 1e9;
    ev_timer_init(&a->rescan_timer, rescan_timer_cb, every, every);
    a->rescan_timer.data = a;
}

void rescans_start(app *a)
{
    ev_signal_start(a->loop, &a->sighup); /* from here on libev's; one that came before is recorded (below) */
    if (a->opt->rescan_interval)
        ev_timer_start(a->loop, &a->rescan_timer);
    if (early_signals_take_hup()) /* any number of SIGHUPs before serving: one rescan, now */
        start_rescan(a, "SIGHUP received before serving", true);
    else if (a->again) /* asked for during the first scan (control socket, folder watch) */
        start_rescan(a, "rescan asked for during the first scan", true);
    a->again = false;
}

void rescans_abandon(app *a)
{
    if (!a->rs)
        return;
    hk_log(HK_LOG_INFO, "rescan abandoned (an unfinished rescan removes nothing)");
    stop_rescan(a);
}

void rescans_stop_timer(app *a)
{
    ev_timer_stop(a->loop, &a->rescan_timer);
}

void rescans_close(app *a)
{
    ev_signal_stop(a->loop, &a->sighup);
}

void rescans_rearm_timer(app *a)
{
    ev_timer_stop(a->loop, &a->rescan_timer);
    double every = (double)a->opt->rescan_interval / 1e9;
    ev_timer_set(&a->rescan_timer, every, every);
    if (a->opt->rescan_interval)
        ev_timer_start(a->loop, &a->rescan_timer);
}

void rescans_folders_changed(app *a)
{
    if (a->rs) {
        hk_log(HK_LOG_INFO, "the folders changed: the rescan under way is abandoned (it removes nothing)");
        stop_rescan(a);
    }
    a->again = false;
    start_rescan(a, "config reload: the folders changed", true);
}
