/* wake: the monotonic clock, getrandom, and the never-early wake-up timer shared by the seeder's and the announcer's
 * runtime tables (backend-real). */
#include "wake.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "log.h"

hk_time hk_clock_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (hk_time)ts.tv_sec * HK_NS_PER_SEC + (hk_time)ts.tv_nsec;
}

void hk_random_fill(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            hk_log(HK_LOG_ERROR, "getrandom: %s", strerror(errno));
            abort(); /* no randomness: peer ids and choices would be predictable; refuse to run */
        }
        p += got;
        n -= (size_t)got;
    }
}

static void arm(hk_wake *w, hk_time now)
{
    assert(w->deadline != HK_TIME_NEVER);
    hk_time left = w->deadline > now ? w->deadline - now : 0;
    ev_timer_stop(w->loop, &w->timer);
    /* Round up to the microsecond so a timer is not armed a hair short of the deadline. */
    ev_timer_set(&w->timer, (double)((left + 999) / 1000) * 1e-6, 0.);
    ev_timer_start(w->loop, &w->timer);
}

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    hk_wake *w = t->data;
    assert(w->deadline != HK_TIME_NEVER); /* the timer runs only while a wake-up is asked: stopping clears it */
    if (w->deadline == HK_TIME_NEVER)
        return;
    hk_time now = hk_clock_now();
    if (now < w->deadline) { /* libev counts from its cached loop time: never wake the core early */
        arm(w, now);
        return;
    }
    w->deadline = HK_TIME_NEVER;
    w->fire(w->arg);
}

void hk_wake_init(hk_wake *w, struct ev_loop *loop, void (*fire)(void *arg), void *arg)
{
    assert(loop && fire);
    w->loop = loop;
    w->deadline = HK_TIME_NEVER;
    w->fire = fire;
    w->arg = arg;
    ev_timer_init(&w->timer, timer_cb, 0., 0.);
    w->timer.data = w;
}

void hk_wake_at(hk_wake *w, hk_time when)
{
    if (when == HK_TIME_NEVER) {
        hk_wake_stop(w);
        return;
    }
    if (when == w->deadline && ev_is_active(&w->timer))
        return;
    w->deadline = when;
    arm(w, hk_clock_now());
}

void hk_wake_stop(hk_wake *w)
{
    w->deadline = HK_TIME_NEVER;
    ev_timer_stop(w->loop, &w->timer);
}
