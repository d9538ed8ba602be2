/* app: the state the daemon's files share (main.c, report.c, rescans.c, control_cmds.c): the options and the runtime, what the first
 * scan found (for the start-up or --list report), and the rescan under way with the watchers that drive it. One app
 * lives in main() for the whole run: main.c sets it up (app_init) and takes it down (rescans_close, report_free). */
#ifndef HEKATE_APP_H
#define HEKATE_APP_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "options.h"
#include "real_runtime.h"
#include "rescan.h"
#include "watch.h"

#define MAGNETS_SHOWN 5          /* magnet links printed at start-up without -v */
#define PROGRESS_EVERY 10000     /* a progress line every this many .torrent files examined */

typedef struct shown {           /* a torrent of the first scan, kept for the start-up report */
    char *magnet;
    char *name;
} shown;

typedef struct app {
    hk_options *opt;             /* the settings in force (config_reload.c updates the live ones) */
    hk_real *real;
    struct ev_loop *loop;
    bool started;                /* the first scan is over: later changes are logged at INFO */
    size_t served, rejected;     /* first scan */
    shown first[MAGNETS_SHOWN];
    size_t nfirst;
    /* rescans */
    hk_rescan *rs;               /* the rescan under way, or NULL */
    bool again;                  /* SIGHUP during a rescan: another one follows it */
    bool asked;                  /* the rescan under way was asked for (SIGHUP), not periodic */
    size_t loud;                 /* lines it logged above DEBUG: a quiet periodic rescan logs at DEBUG only */
    ev_prepare rs_step;          /* a slice of the rescan each loop iteration */
    ev_idle rs_idle;             /* ... without blocking in between */
    ev_signal sighup;
    ev_timer rescan_timer;       /* --rescan */
    /* watched directories (watches.h) */
    hk_watch *watch;             /* NULL with --no-watch, or before serving */
    /* config file (config_reload.h): the command line, parsed again on a reload */
    int argc;
    char **argv;
    /* control socket (control_cmds.h) */
    struct hk_control *control;  /* --control, or NULL */
    ev_tstamp started_at;        /* ev_now when the daemon started serving or scanning, for `status` */
    uint64_t rescans_done;       /* rescans finished since start-up (the first scan not counted) */
    /* resume state (resume_run.h): --state / --state-per-dir, or NULL */
    struct hk_resume *resume;
    ev_timer resume_timer;       /* --state-interval */
    bool resume_timer_on;
    struct resume_bg *resume_bg; /* the background save (resume_run.c), or NULL */
    /* symbolic links to folders said (issue 11 item 8g): each once at WARN, later walks at DEBUG (report.c) */
    uint64_t *links_said;        /* hashes of their paths */
    size_t nlinks_said, links_cap;
} app;

#endif
