/* log: the process-wide log of the real backend, written to stderr.
 *
 * Contract
 * --------
 * One line per message: "2024-05-01T12:00:00.123Z LEVEL message\n" (UTC wall-clock time with milliseconds: a log is
 * read by people and compared with other logs; ordering inside the process is the order of the lines). Messages
 * whose level is above the threshold are dropped before they are formatted. Each line is written with one write(2),
 * so lines from several threads never interleave; a line longer than HK_LOG_MAX_LINE is cut and ends with "...".
 * Default threshold: HK_LOG_INFO. Write errors on stderr are ignored (a log must never stop the seeder).
 * Under journald (JOURNAL_STREAM holds the "device:inode" of stderr, systemd.exec(5)) a line is instead
 * "<N>message\n": the syslog level prefix of sd-daemon(3) (<3> error, <4> warning, <6> info, <7> debug and trace)
 * and no timestamp, since the journal records the time and the priority itself. Decided at the first line (or by
 * hk_log_detect_journal); stderr redirected elsewhere later is not noticed.
 */
#ifndef HEKATE_LOG_H
#define HEKATE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include "runtime.h"

#define HK_LOG_MAX_LINE 2048

void hk_log_set_level(hk_log_level max);   /* messages with level <= max are written */
hk_log_level hk_log_get_level(void);
bool hk_log_enabled(hk_log_level level);

void hk_log(hk_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hk_vlog(hk_log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* An already formatted line (the runtime's log action). */
void hk_log_line(hk_log_level level, const char *line);

const char *hk_log_level_name(hk_log_level level);

/* journald: whether stderr is the journal stream named by JOURNAL_STREAM (true/false, never fails), and the decision
 * taken again now (the first line takes it otherwise). */
bool hk_log_stderr_is_journal(void);
void hk_log_detect_journal(void);

#endif
