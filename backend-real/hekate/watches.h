/* watches: the DIRs watched with inotify while hekate serves (watch.h), unless --no-watch. What the watcher finds is
 * loaded or removed through the catalog one path at a time (rescan.h: hk_rescan_one, hk_rescan_forget_one) and
 * reported as a rescan's changes are (report.h); lost events start a rescan (rescans_request). Nothing is applied
 * while a rescan is under way: the watcher holds its changes until it is over.
 *
 * Contract
 * --------
 * watches_start, once serving starts: watches every DIR (a DIR that cannot be watched is said once, at WARN; a DIR
 * that is a .torrent file is not watched). Cannot fail: without inotify, changes are seen by rescans only (said).
 * watches_stop: stops and frees the watcher (harmless if never started); before the stop's announces.
 */
#ifndef HEKATE_WATCHES_H
#define HEKATE_WATCHES_H

#include "app.h"

void watches_start(app *a);
void watches_stop(app *a);

#endif
