/* watches: inotify on the DIRs, wired to the catalog and the reports (see watches.h). */
#include "watches.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "report.h"
#include "rescans.h"

static void w_load(void *arg, const char *path, const struct stat *st)
{
    app *a = arg;
    const hk_rescan_cb cb = report_callbacks(a);
    hk_rescan_one(a->real, path, st, &cb);
}

static void w_forget(void *arg, const char *path)
{
    app *a = arg;
    const hk_rescan_cb cb = report_callbacks(a);
    hk_rescan_forget_one(a->real, path, "torrent file deleted or moved away", &cb);
}

static bool is_below(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || (n > 0 && dir[n - 1] == '/'));
}

/* The records below dir whose .torrent is no longer reachable (listed first: forgetting changes the table). */
static void w_forget_below(void *arg, const char *dir)
{
    app *a = arg;
    const hk_served *t = hk_real_served(a->real);
    char **v = NULL;
    size_t n = 0, cap = 0, cursor = 0;
    for (const hk_served_rec *sv = hk_served_next(t, &cursor); sv; sv = hk_served_next(t, &cursor)) {
        char path[HK_SERVED_PATH_MAX];
        hk_served_path(sv, path, sizeof path);
        if (!is_below(path, dir) || hk_watch_reachable(a->watch, path))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nv = realloc(v, ncap * sizeof *nv);
            if (!nv)
                break;
            v = nv;
            cap = ncap;
        }
        if (!(v[n] = strdup(path)))
            break;
        n++;
    }
    const hk_rescan_cb cb = report_callbacks(a);
    for (size_t i = 0; i < n; i++) {
        hk_rescan_forget_one(a->real, v[i], "its folder was moved away or deleted", &cb);
        free(v[i]);
    }
    free(v);
}

static void w_rescan(void *arg, const char *why)
{
    rescans_request(arg, why);
}

static bool w_busy(void *arg)
{
    const app *a = arg;
    return a->rs != NULL;
}

void watches_start(app *a)
{
    if (a->opt->no_watch)
        return;
    const hk_watch_sink sink = { .load = w_load, .forget = w_forget, .forget_below = w_forget_below,
                                 .rescan = w_rescan, .busy = w_busy, .arg = a };
    char err[512];
    a->watch = hk_watch_new(a->loop, &sink, err, sizeof err);
    if (!a->watch) {
        hk_log(HK_LOG_WARN, "cannot watch the folders (%s): changes are seen by rescans only (--rescan, SIGHUP)", err);
        return;
    }
    size_t watched = 0;
    for (size_t i = 0; i < a->opt->ndirs; i++) {
        struct stat st;
        if (hk_watch_add_root(a->watch, a->opt->dirs[i], err, sizeof err) == 0)
            watched++;
        else if (stat(a->opt->dirs[i], &st) == 0 && S_ISREG(st.st_mode)) /* a .torrent named directly */
            hk_log(HK_LOG_DEBUG, "%s", err);
        else
            hk_log(HK_LOG_WARN, "%s; changes below it are seen by rescans only (--rescan, SIGHUP)", err);
    }
    hk_watch_stats st;
    hk_watch_stats_get(a->watch, &st);
    hk_log(HK_LOG_INFO, "watching %zu folder%s below %zu DIR%s for .torrent files (inotify)", st.watched,
           st.watched == 1 ? "" : "s", watched, watched == 1 ? "" : "s");
}

void watches_stop(app *a)
{
    hk_watch_free(a->watch);
    a->watch = NULL;
}
