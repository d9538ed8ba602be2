/* wake: what every core object needs from the real backend besides I/O: the monotonic clock, the system's
 * randomness, and one wake-up timer on the libev loop that never fires early.
 *
 * Contract
 * --------
 * A core object asks for one wake-up at a time (runtime.h: wake_at). hk_wake_at(w, t) replaces any earlier request;
 * HK_TIME_NEVER cancels it. fire(arg) then runs on the loop at or after t by hk_clock_now(), never before: libev
 * measures timers from its cached loop time, so a timer that comes back early is re-armed for the rest. The seeder
 * and the announcer each own one hk_wake. hk_random_fill aborts the process if the kernel gives no randomness
 * (peer ids, transaction ids and choices would become predictable).
 */
#ifndef HEKATE_WAKE_H
#define HEKATE_WAKE_H

#include <ev.h>
#include <stddef.h>

#include "runtime.h"

typedef struct hk_wake {
    ev_timer timer;
    struct ev_loop *loop;
    hk_time deadline;                 /* HK_TIME_NEVER when no wake-up is asked */
    void (*fire)(void *arg);
    void *arg;
} hk_wake;

hk_time hk_clock_now(void);           /* CLOCK_MONOTONIC, nanoseconds */
void hk_random_fill(void *buf, size_t n);

void hk_wake_init(hk_wake *w, struct ev_loop *loop, void (*fire)(void *arg), void *arg);
void hk_wake_at(hk_wake *w, hk_time when);
void hk_wake_stop(hk_wake *w);        /* cancels; call before freeing the owner */

#endif
