/* verify_run: `hekate --verify DIR...` (a bare --verify): after the first scan, every torrent found is checked piece
 * by piece by the seeder's background pass (core/seeder_vpass.c, cfg.verify_full, at --verify-rate: unlimited by
 * default), nothing is served (no listener, no trackers, as with -l), then the report goes to stdout and hekate exits.
 *
 * Contract
 * --------
 * verify_run(a) runs a->loop until the pass is over (or a SIGINT/SIGTERM/SIGQUIT: "verification abandoned"), then
 * prints, in .torrent path order, one line per damaged torrent ("damaged PATH (HEX): piece 3 fails its hash" /
 * "pieces 3, 17 fail their hash"), one per torrent whose data could not be read ("unreadable PATH (HEX): WHY"), and
 * a summary ("N torrents checked: I intact, D damaged, U unreadable, R rejected; BYTES in S s"). The scan's rejections (data missing, wrong
 * size, bad .torrent) were printed by report.c as "rejected PATH: WHY" and count as failures. Returns the exit
 * status: 0 if every torrent found is intact (and at least one was), 1 otherwise (or abandoned).
 */
#ifndef HEKATE_VERIFY_RUN_H
#define HEKATE_VERIFY_RUN_H

#include "app.h"

int verify_run(app *a);

#endif
