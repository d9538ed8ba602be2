/* early_signals: SIGHUP, SIGINT, SIGTERM, SIGQUIT and SIGUSR1 from the first line of main() until the event loop's
 * watchers (ev_signal) take them over. Before its watchers are started, libev does not catch a signal, and the
 * default disposition of these kills the process: a SIGHUP sent just after start-up, or a SIGTERM during a long first
 * scan, would end hekate by the signal. Here a handler of our own only records what arrived, for main.c and rescans.c
 * to act on once they can: a SIGINT, SIGTERM or SIGQUIT is a stop (the first scan polls it between steps), a SIGHUP a
 * rescan once serving starts, a SIGUSR1 a status line once serving starts. Every other catchable signal whose
 * default would end the process for nothing is ignored for the whole run (SIGPIPE, SIGUSR2, SIGALRM, SIGVTALRM,
 * SIGPROF, SIGIO, SIGXFSZ, SIGPWR, SIGSTKFLT, the real-time ones); job control, faults and SIGXCPU keep their default.
 *
 * Contract
 * --------
 * early_signals_install: call first in main(), before anything slow. Installs the recording handler (SA_RESTART, so
 * nothing in start-up sees EINTR) for the five and ignores the others listed above. Starting an ev_signal watcher for
 * one of them replaces the handler for that signal (libev's own); anything that arrived before stays recorded here,
 * so check after starting the watcher. Stopping the last watcher of a signal puts its default back (libev): call
 * early_signals_install again then, so a late signal is still never fatal. Safe with other threads: the handler
 * only stores into lock-free atomics.
 * early_signals_stop: the number of the first SIGINT, SIGTERM or SIGQUIT recorded, 0 if none (not cleared: a stop
 * stays).
 * early_signals_take_hup: true once for any number of SIGHUPs recorded since the last call.
 * early_signals_take_usr1: the same for SIGUSR1.
 */
#ifndef HEKATE_EARLY_SIGNALS_H
#define HEKATE_EARLY_SIGNALS_H

#include <stdbool.h>

void early_signals_install(void);
int early_signals_stop(void);
bool early_signals_take_hup(void);
bool early_signals_take_usr1(void);

#endif
