/* early_signals: the signals that arrive before the event loop watches them, recorded, and every other catchable
 * signal given a deliberate disposition (see early_signals.h). */
#include "early_signals.h"

#include <assert.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_BOOL_LOCK_FREE == 2, "the handler needs lock-free atomics");

static atomic_int stop_signal;   /* 0, or the first SIGINT/SIGTERM/SIGQUIT */
static atomic_bool hup;
static atomic_bool usr1;

static void record(int signum)
{
    if (signum == SIGHUP) {
        atomic_store(&hup, true);
        return;
    }
    if (signum == SIGUSR1) {
        atomic_store(&usr1, true);
        return;
    }
    int none = 0;
    atomic_compare_exchange_strong(&stop_signal, &none, signum);
}

/* Signals whose default would end the process but that mean nothing to hekate: ignored (documented in hekate.1).
 * Left at their default on purpose: job control (SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT), the ones ignored by default
 * (SIGCHLD, SIGURG, SIGWINCH), the faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS) and SIGXCPU
 * (an operator's CPU limit is meant to end it). */
static const int ignored[] = {
    SIGPIPE, /* a peer that goes away must not kill us; sends use MSG_NOSIGNAL as well */
    SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGXFSZ,
#ifdef SIGPWR
    SIGPWR,
#endif
#ifdef SIGSTKFLT
    SIGSTKFLT,
#endif
};

void early_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = record;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    static const int recorded[] = { SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGUSR1 };
    for (size_t i = 0; i < sizeof recorded / sizeof *recorded; i++)
        sigaction(recorded[i], &sa, NULL);
    for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++)
        signal(ignored[i], SIG_IGN);
    for (int s = SIGRTMIN; s <= SIGRTMAX; s++) /* real-time signals: nothing here sends or expects one */
        signal(s, SIG_IGN);
}

int early_signals_stop(void)
{
    return atomic_load(&stop_signal);
}

bool early_signals_take_hup(void)
{
    return atomic_exchange(&hup, false);
}

bool early_signals_take_usr1(void)
{
    return atomic_exchange(&usr1, false);
}
