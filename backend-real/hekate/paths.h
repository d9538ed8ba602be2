/* paths: where the daemon's data lies, handed to the store (store.h): the data dirs (--data-dir, searched after a
 * .torrent's own folder) and the served folders with the link policy (--follow-links), so nothing outside the DIRs
 * and data dirs is served, and links are followed only below them.
 *
 * Contract
 * --------
 * paths_apply, once the runtime exists and again when a config reload changes the DIRs: a data dir that is not a
 * folder now is said once at WARN (it is searched anyway: it may appear later); the served folders are the DIRs then
 * the data dirs (a DIR that is a .torrent file stands for its folder). Returns false, after saying so, only when out
 * of memory (the previous settings stay).
 */
#ifndef HEKATE_PATHS_H
#define HEKATE_PATHS_H

#include <stdbool.h>

#include "options.h"
#include "real_runtime.h"

bool paths_apply(hk_real *real, const hk_options *opt);

#endif
