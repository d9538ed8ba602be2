/* resume_run: the daemon's resume state (--state=FILE, --state-per-dir; catalog/resume.h) from start to stop.
 *
 * Contract
 * --------
 * resume_open (after the runtime, before the first scan; never with --list) creates the resume object and hands it
 * to the catalog; 0, or -1 after saying why (the daemon then does not start: a state asked for and impossible is an
 * error, like a port that cannot be bound). resume_warm serves what the state holds (the listener is open: the loop
 * runs between slices of the load, so the first torrents are served while the rest load) and logs one line of
 * figures; a SIGINT/SIGTERM/SIGQUIT recorded meanwhile stops it (returns non-zero). resume_start_timer saves every
 * --state-interval once serving, in the background (catalog/resume.h: a snapshot on the loop, the write on the
 * thread of a one-thread pool, the refs moved in slices of 20,000 records per loop iteration; a period that finds
 * the previous save running is skipped). resume_save saves now, on the loop, after finishing a background save in
 * flight (at a clean stop; logged, a failure is a WARN; not before the first scan is over: a stop during start-up
 * keeps the previous file). resume_dirs_changed (after a reload changed the DIRs) makes the state follow the new
 * DIRs (at once, or when the running save is finished). resume_close stops the timer, waits for a background write
 * and frees the object. All are no-ops without --state / --state-per-dir.
 */
#ifndef HEKATE_RESUME_RUN_H
#define HEKATE_RESUME_RUN_H

#include "app.h"

int resume_open(app *a, const char *prog);
int resume_warm(app *a);
void resume_start_timer(app *a);
void resume_save(app *a, const char *when);
void resume_dirs_changed(app *a);
void resume_close(app *a);

#endif
