/* config_reload: the config file applied again while serving (see config_reload.h). */
#include "config_reload.h"
#include "resume_run.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "fd_budget.h"
#include "log.h"
#include "paths.h"
#include "rescans.h"
#include "watches.h"

/* want's max_peers within the descriptor budget, as at start-up (main.c): false if not even max_unchoked fit. */
static bool fit_descriptors(const hk_options *cur, hk_config *want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return true;
    unsigned threads = cur->disk_threads ? cur->disk_threads : 8;
    hk_fd_budget b;
    hk_fd_verdict v = hk_fd_budget_plan((uint64_t)rl.rlim_cur, want->max_peers, want->max_unchoked,
                                        cur->max_open_files, 4 * threads, &b);
    if (v == HK_FD_REFUSED)
        return false;
    if (b.peers < want->max_peers)
        hk_log(HK_LOG_WARN, "config reload: --max-peers %u lowered to %u (descriptor limit %llu)", want->max_peers,
               b.peers, (unsigned long long)rl.rlim_cur);
    want->max_peers = b.peers;
    return true;
}

static bool same_dirs(const hk_options *a, const hk_options *b)
{
    if (a->ndirs != b->ndirs)
        return false;
    for (size_t i = 0; i < a->ndirs; i++)
        if (strcmp(a->dirs[i], b->dirs[i]) != 0)
            return false;
    return true;
}

/* The changed settings that need a restart, one warning each (cur holds the live ones of n already). */
static void warn_restart_only(const hk_options *cur, const hk_options *n)
{
    for (size_t i = 0; i < hk_options_nrows(); i++)
        if (hk_options_row_differs(cur, n, i))
            hk_log(HK_LOG_WARN, "config reload: --%s changed in %s: takes effect at the next start (the running "
                   "value is kept)", hk_options_row_name(i), cur->config_path);
    if (cur->family != n->family)
        hk_log(HK_LOG_WARN, "config reload: ipv4-only / ipv6-only changed in %s: takes effect at the next start",
               cur->config_path);
}

/* n's DIRs become cur's (n gets cur's, freed with it); true if they differ. */
static bool take_dirs(hk_options *cur, hk_options *n)
{
    if (same_dirs(cur, n))
        return false;
    char **d = cur->dirs;
    size_t nd = cur->ndirs;
    bool owned = cur->dirs_owned;
    cur->dirs = n->dirs;
    cur->ndirs = n->ndirs;
    cur->dirs_owned = n->dirs_owned;
    n->dirs = d;
    n->ndirs = nd;
    n->dirs_owned = owned;
    return true;
}

int app_reload_config(app *a)
{
    hk_options *cur = a->opt;
    if (!cur->config_path) {
        hk_log(HK_LOG_ERROR, "config reload: no config file was given (-c FILE)");
        return -1;
    }
    hk_options n;
    char err[1024];
    hk_options_result r = hk_options_parse(&n, a->argc, a->argv, err, sizeof err);
    if (r != HK_OPTIONS_RUN) {
        if (r == HK_OPTIONS_ERROR)
            hk_log(HK_LOG_ERROR, "config reload failed: %s; the current settings are kept", err);
        return -1; /* HELP/VERSION cannot come back: the same argv started this run */
    }
    hk_seeder *s = hk_real_seeder(a->real);
    hk_config want = n.cfg;
    const char *bad = fit_descriptors(cur, &want) ? hk_seeder_set_config(s, &want)
                                                  : "not even --max-unchoked peers fit the descriptor limit";
    if (bad) {
        hk_log(HK_LOG_ERROR, "config reload failed: %s: invalid settings: %s; the current settings are kept",
               cur->config_path, bad);
        hk_options_free(&n);
        return -1;
    }
    n.cfg.max_peers = want.max_peers;
    cur->cfg = *hk_seeder_config(s);
    cur->verbosity = n.verbosity;
    hk_log_set_level(hk_options_log_level(cur));
    hk_seeder_set_log_level(s, hk_log_get_level());
    cur->status_interval = n.status_interval; /* main.c's status timer reads it every second */
    if (cur->rescan_interval != n.rescan_interval) {
        cur->rescan_interval = n.rescan_interval;
        rescans_rearm_timer(a);
    }
    bool moved = take_dirs(cur, &n);
    warn_restart_only(cur, &n);
    hk_log(HK_LOG_INFO, "config reloaded from %s: %zu folder%s%s; %u unchoked, %u peers, %u per address",
           cur->config_path, cur->ndirs, cur->ndirs == 1 ? "" : "s", moved ? " (changed)" : "",
           cur->cfg.max_unchoked, cur->cfg.max_peers, cur->cfg.max_peers_per_address);
    hk_options_free(&n);
    if (!moved)
        return 0;
    paths_apply(a->real, cur); /* the served folders follow the DIRs */
    rescans_folders_changed(a);
    resume_dirs_changed(a); /* --state: the state follows the DIRs */
    if (a->watch) { /* watched directories: the new DIRs watched, the dropped ones no longer */
        watches_stop(a);
        watches_start(a);
    }
    return 1;
}
