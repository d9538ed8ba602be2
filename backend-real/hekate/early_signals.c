/* early_signals: the signals that arrive before the event loop watches them, recorded (see early_signals.h). */
#include "early_signals.h"

#include <assert.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_BOOL_LOCK_FREE == 2, "the handler needs lock-free atomics");

static atomic_int stop_signal;   /* 0, or the first SIGINT/SIGTERM */
static atomic_bool hup;

static void record(int signum)
{
    if (signum == SIGHUP) {
        atomic_store(&hup, true);
        return;
    }
    int none = 0;
    atomic_compare_exchange_strong(&stop_signal, &none, signum);
}

void early_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = record;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a peer that goes away must not kill us; sends use MSG_NOSIGNAL as well */
}

int early_signals_stop(void)
{
    return atomic_load(&stop_signal);
}

bool early_signals_take_hup(void)
{
    return atomic_exchange(&hup, false);
}
