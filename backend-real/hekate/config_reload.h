/* config_reload: the config file (-c FILE) read again while hekate serves, on SIGHUP (rescans.c) or when the
 * control socket asks (`hekatectl reload-config`).
 *
 * Contract
 * --------
 * app_reload_config parses the whole command line again (hk_options_parse on the argv main() got: defaults < file <
 * command line, so the command line still wins) and applies what can change live: the seeder's live settings
 * (hk_seeder_set_config: slots, connection and per-address caps, credit, slice, every timeout and grace; --max-peers
 * lowered to the descriptor budget as at start-up), the log level (-v/-q, verbose/quiet), --rescan, and the DIRs
 * (when they changed, a rescan under way is abandoned and a new one starts: it adds what the new folders hold and
 * removes what the dropped ones held; the folder watch, if on, is set up again on the new DIRs). Every other setting (port, bind, families, trackers, reqq, max-block,
 * encryption, mapped bytes, open files, disk threads, announce interval and rate) needs a restart: a changed one is
 * logged as a warning naming the option and the running value is kept. Returns 0 (1 when the DIRs changed and a
 * rescan started) and logs one INFO line on success; -1 when there is no -c, or the file cannot be read or has an error: one ERROR line naming FILE:LINE and the key,
 * and every setting stays as it was. Call only while serving (after rescans_start).
 */
#ifndef HEKATE_CONFIG_RELOAD_H
#define HEKATE_CONFIG_RELOAD_H

#include "app.h"

int app_reload_config(app *a);

#endif
