/* control_cmds: what the daemon does with each control-socket request (--control=PATH; the socket itself is
 * backend-real/lib/ops/control.h, the protocol control_proto.h).
 *
 * Contract
 * --------
 * control_cmds_open opens the socket at a->opt->control_path (nothing without --control) and answers on the loop:
 *   status          version, pid, uptime, torrents, peers by state, bytes and blocks sent, refusals, rescans
 *   torrents        the top N torrents by bytes uploaded (a heap of N: O(torrents log N) per request)
 *   torrent H       one torrent: path, state (served / failed / stale), peers, uploaded, pieces, length
 *   peers           counts by state (connected, unchoked, waiting, encrypted, plain); no per-peer list
 *   add PATH        hk_real_add_torrent_file on one .torrent, confined as the scan is: an absolute path to a
 *                   regular file named *.torrent (not hidden) below one of the DIRs, reached without a symbolic link;
 *                   recorded under the spelling a scan of that DIR uses, so a later rescan sees the same record
 *   remove H        hk_real_forget on the path serving H (a later rescan adds it again if the file is still there)
 *   rescan          what SIGHUP does (rescans_request): started, or queued behind the one under way
 *   verify H        every mark of H's pieces dropped, a full check queued at --verify-rate (core/seeder_vpass.c):
 *                   "started"; refused for a torrent not served or failed, or with --verify=off
 *   reload-config   refused: no config file support yet
 * add and remove are refused while a rescan is under way (rescan.h: the torrents change only through it then).
 * Returns: control_cmds_open 0, or -1 after printing why on stderr. control_cmds_close is harmless without --control.
 */
#ifndef HEKATE_CONTROL_CMDS_H
#define HEKATE_CONTROL_CMDS_H

#include "app.h"

int control_cmds_open(app *a, const char *prog);
void control_cmds_close(app *a);

#endif
