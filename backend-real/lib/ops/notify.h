/* notify: telling systemd (or any service manager speaking the sd_notify protocol) how the daemon is doing.
 *
 * Contract
 * --------
 * Every call is a no-op when NOTIFY_SOCKET is not set (not started by a service manager), and never fails the
 * daemon: a message that cannot be sent is dropped (logged once at debug level). Messages (sd_notify(3)):
 *   hk_notify_ready       "READY=1" plus a STATUS= line; sent once the listener is bound and the first scan is over,
 *                         i.e. when torrents are being served (a second call sends nothing);
 *   hk_notify_status      "STATUS=<text>" (the periodic summary shown by `systemctl status`);
 *   hk_notify_stopping    "STOPPING=1" when SIGINT/SIGTERM starts the clean stop (a second call sends nothing);
 *   hk_notify_watchdog_*  when the unit sets WatchdogSec= (sd_watchdog_enabled: WATCHDOG_USEC, WATCHDOG_PID), a libev
 *                         timer sends "WATCHDOG=1" every half period while the loop turns; nothing otherwise.
 * The environment is left as it is (unset_environment 0): the tests and a re-exec see the same socket.
 * Return codes: hk_notify_* return 1 when a message was sent, 0 when there is no service manager (or nothing to
 * send), -1 when sending failed; hk_notify_watchdog_start returns 1 when the timer runs, 0 when no watchdog is asked.
 */
#ifndef HEKATE_NOTIFY_H
#define HEKATE_NOTIFY_H

#include <ev.h>
#include <stdint.h>

int hk_notify_ready(const char *status);
int hk_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int hk_notify_stopping(void);

typedef struct hk_notify_watchdog {
    ev_timer timer;
    uint64_t usec;     /* the watchdog period systemd asked for (0: none) */
    int running;
} hk_notify_watchdog;

int hk_notify_watchdog_start(hk_notify_watchdog *w, struct ev_loop *loop);
void hk_notify_watchdog_stop(hk_notify_watchdog *w, struct ev_loop *loop);

#endif
