/* report: what the daemon says about the torrents it finds. During the first scan, the --list report on stdout
 * (served and rejected, with trackers; magnet links with -v) or the material of the start-up report (counts, the
 * first magnet links); after it, one log line per change a rescan makes; for every scan, progress lines and the
 * closing summary. Nothing here changes what is served.
 *
 * Contract
 * --------
 * report_callbacks gives the hk_rescan_cb for hk_rescan_run / hk_rescan_new: its events count into a->served,
 * a->rejected and a->loud and keep up to MAGNETS_SHOWN magnet links in a->first (freed by report_startup or
 * report_free). Before a->started, events belong to the first scan. No function fails: a magnet link that cannot be
 * made (out of memory) is left out or printed as "?".
 */
#ifndef HEKATE_REPORT_H
#define HEKATE_REPORT_H

#include "app.h"

hk_rescan_cb report_callbacks(app *a);
/* "scan done: ..." / "rescan done: ...", at INFO for a rescan that was asked for or changed something, else DEBUG. */
void report_scan_done(const app *a, const hk_rescan_stats *st);
/* A SIGINT/SIGTERM (sig) ended the first scan (st: its totals so far) or came before it (st NULL): what is abandoned
 * (the --list report, or the start), logged. */
void report_first_scan_stopped(const app *a, int sig, const hk_rescan_stats *st);
/* --list: the closing line ("N torrents would be served, M rejected"). */
void report_list_total(const app *a);
/* Serving: the start-up report on stdout (not with -q), then the kept magnet links are freed. */
void report_startup(app *a);
void report_free(app *a);
/* Frees what report.c remembers across scans (the symbolic links to folders already said). */
void report_links_free(app *a);

#endif
