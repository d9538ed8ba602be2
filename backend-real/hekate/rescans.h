/* rescans: the folders scanned again once hekate serves. A SIGHUP (or the folder watch losing events, watches.h:
 * rescans_request) starts a rescan (one during a rescan queues one
 * more after it); --rescan starts one every so often (never queued behind one under way). A rescan works in slices
 * of 10 ms, one each loop iteration, so serving goes on during a long one; what it finds goes to report.h.
 *
 * Contract
 * --------
 * rescans_init sets up the watchers (none started). rescans_start, once serving starts (never with --list), watches
 * SIGHUP and arms --rescan (if set); if any SIGHUP arrived before (during start-up or the first scan: recorded by
 * early_signals.h), one rescan starts at once. rescans_abandon drops a rescan under way at the stop (an unfinished
 * rescan removes nothing). rescans_stop_timer and rescans_close undo rescans_start (harmless if it was not called);
 * call both before the loop is destroyed. An out-of-memory rescan is logged and skipped.
 * With a config file (-c), a SIGHUP first reloads it (config_reload.h), then rescans. rescans_rearm_timer applies a
 * changed --rescan (a->opt->rescan_interval; 0 stops the timer). rescans_folders_changed: the DIRs in a->opt
 * changed (a reload): the rescan under way (if any) is abandoned, as is one queued, and a new one starts at once.
 * rescans_request (the control socket's `rescan`, the folder watch when it lost events) does what a SIGHUP does,
 * logged with `why`: true if a rescan
 * started now, false if one is under way and another one was queued after it (during the first scan, when the loop
 * already serves, it is queued until rescans_start). a->rescans_done counts the rescans
 * finished (not the first scan).
 */
#ifndef HEKATE_RESCANS_H
#define HEKATE_RESCANS_H

#include "app.h"

void rescans_init(app *a);
void rescans_start(app *a);
void rescans_abandon(app *a);
void rescans_stop_timer(app *a);
void rescans_close(app *a);
void rescans_rearm_timer(app *a);
void rescans_folders_changed(app *a);
bool rescans_request(app *a, const char *why);

#endif
