/* notify: sd_notify readiness, status, stopping and watchdog keep-alives through libsystemd (see notify.h). */
#include "notify.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "log.h"

static bool ready_sent, stopping_sent, failure_logged;

/* Sends one message: 1 sent, 0 no service manager, -1 failed (logged once). */
static int send_message(const char *msg)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    if (!sock || !*sock)
        return 0;
    int r = sd_notify(0, msg);
    if (r > 0)
        return 1;
    if (!failure_logged) {
        failure_logged = true;
        hk_log(HK_LOG_DEBUG, "sd_notify to %s failed (%d): service manager messages dropped", sock, r);
    }
    return r == 0 ? 0 : -1;
}

int hk_notify_ready(const char *status)
{
    if (ready_sent)
        return 0;
    char msg[512];
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", status && *status ? status : "serving");
    int r = send_message(msg);
    if (r > 0)
        ready_sent = true;
    return r;
}

int hk_notify_status(const char *fmt, ...)
{
    char msg[512] = "STATUS=";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + 7, sizeof msg - 7, fmt, ap);
    va_end(ap);
    return send_message(msg);
}

int hk_notify_stopping(void)
{
    if (stopping_sent)
        return 0;
    int r = send_message("STOPPING=1\nSTATUS=stopping");
    if (r > 0)
        stopping_sent = true;
    return r;
}

static void watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
    send_message("WATCHDOG=1");
}

int hk_notify_watchdog_start(hk_notify_watchdog *w, struct ev_loop *loop)
{
    w->running = 0;
    w->usec = 0;
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return 0;
    w->usec = usec;
    double half = (double)usec / 2e6;
    ev_timer_init(&w->timer, watchdog_cb, 0., half); /* the first keep-alive at once, then every half period */
    ev_timer_start(loop, &w->timer);
    w->running = 1;
    hk_log(HK_LOG_DEBUG, "systemd watchdog: %.3f s, keep-alive every %.3f s", (double)usec / 1e6, half);
    return 1;
}

void hk_notify_watchdog_stop(hk_notify_watchdog *w, struct ev_loop *loop)
{
    if (w->running)
        ev_timer_stop(loop, &w->timer);
    w->running = 0;
}
