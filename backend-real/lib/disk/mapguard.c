/* mapguard: owns the process's SIGBUS handler and the per-thread guard that turns a fault while reading a file mapping
 * into EIO (contract in mapguard.h), and the MADV_POPULATE_READ of a range to read. */
#include "mapguard.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

static __thread sigjmp_buf *armed;      /* this thread's guard, NULL when none is armed */
static struct sigaction previous;       /* SIGBUS's disposition before the guard's */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_error;                  /* 0, or the errno of sigaction */

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    sigjmp_buf *j = armed;
    if (j) {
        armed = NULL;
        siglongjmp(*j, 1);
    }
    /* Not ours: what was there before. The default (or an ignored fault, which would only repeat) is put back and the
     * handler returns: the faulting instruction runs again and the fault now ends the process as it always did. */
    if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) {
        previous.sa_sigaction(sig, si, uc);
        return;
    }
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    signal(SIGBUS, SIG_DFL);
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    /* SA_NODEFER: SIGBUS is not blocked while the handler runs, so jumping out of it leaves the thread's mask as it
     * was, and sigsetjmp need not save the mask (a rt_sigprocmask call per guarded read). */
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &previous) != 0)
        init_error = errno ? errno : EINVAL;
}

int hk_mapguard_init(void)
{
    pthread_once(&once, install);
    if (init_error) {
        errno = init_error;
        return -1;
    }
    return 0;
}

int hk_mapguard_run(void (*fn)(void *arg), void *arg)
{
    if (hk_mapguard_init() != 0) {
        fn(arg); /* no handler (see the contract) */
        return 0;
    }
    sigjmp_buf here;
    sigjmp_buf *volatile outer = armed;
    if (sigsetjmp(here, 0) != 0) { /* SA_NODEFER: SIGBUS was never blocked, nothing to restore */
        armed = outer;
        return EIO;
    }
    armed = &here;
    fn(arg);
    armed = outer;
    return 0;
}

int hk_mapguard_populate(const void *addr, size_t len)
{
    if (len == 0)
        return 0;
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t first = (uintptr_t)addr / pg * pg;
    uintptr_t end = ((uintptr_t)addr + len + pg - 1) / pg * pg;
    if (madvise((void *)first, end - first, MADV_POPULATE_READ) == 0)
        return 0;
    switch (errno) {
    case EFAULT:
        return EIO;     /* a page past the end of the file, or a read error */
    case ENOMEM:
    case EAGAIN:
        return errno;
    default:
        return 0;       /* EINVAL (older kernel), EINTR...: the reads fault the pages in themselves */
    }
}
