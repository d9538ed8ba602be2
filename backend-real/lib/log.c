/* log: timestamped, level-filtered lines on stderr, or syslog-prefixed ones when stderr is journald (see log.h). */
#include "log.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_threshold = HK_LOG_INFO;

void hk_log_set_level(hk_log_level max)
{
    atomic_store(&log_threshold, (int)max);
}

hk_log_level hk_log_get_level(void)
{
    return (hk_log_level)atomic_load(&log_threshold);
}

bool hk_log_enabled(hk_log_level level)
{
    return (int)level <= atomic_load(&log_threshold);
}

const char *hk_log_level_name(hk_log_level level)
{
    switch (level) {
    case HK_LOG_ERROR: return "ERROR";
    case HK_LOG_WARN: return "WARN";
    case HK_LOG_INFO: return "INFO";
    case HK_LOG_DEBUG: return "DEBUG";
    case HK_LOG_TRACE: return "TRACE";
    }
    assert(!"no such log level");
    return "?";
}

/* ---- journald (systemd.exec(5), JOURNAL_STREAM): -1 not decided yet, 0 no, 1 yes ---- */

static _Atomic int log_journal = -1;

bool hk_log_stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    char end;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu%c", &dev, &ino, &end) != 2 || fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void hk_log_detect_journal(void)
{
    atomic_store(&log_journal, hk_log_stderr_is_journal() ? 1 : 0);
}

static const char *syslog_prefix(hk_log_level level)
{
    switch (level) {
    case HK_LOG_ERROR: return SD_ERR;
    case HK_LOG_WARN: return SD_WARNING;
    case HK_LOG_INFO: return SD_INFO;
    case HK_LOG_DEBUG: return SD_DEBUG;
    case HK_LOG_TRACE: return SD_DEBUG;
    }
    return SD_INFO;
}

static size_t format_prefix(char *buf, size_t cap, hk_log_level level)
{
    if (atomic_load(&log_journal) < 0)
        hk_log_detect_journal();
    if (atomic_load(&log_journal) > 0) { /* journald stamps the time itself and reads the level from <N> */
        int n = snprintf(buf, cap, "%s", syslog_prefix(level));
        return n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap - 1);
    }
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L, hk_log_level_name(level));
    return n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap - 1);
}

static void emit(char *buf, size_t len)
{
    /* buf has room for the newline: callers keep len <= HK_LOG_MAX_LINE - 1 (clip). */
    assert(len <= HK_LOG_MAX_LINE - 1);
    buf[len++] = '\n';
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(STDERR_FILENO, buf + off, len - off);
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

static size_t clip(char *buf, size_t len, size_t cap)
{
    /* Keeps one byte for the newline (and one for vsnprintf's NUL); marks a cut line with "...". */
    assert(cap >= 5);
    if (len > cap - 2) {
        len = cap - 2;
        memcpy(buf + len - 3, "...", 3);
    }
    return len;
}

void hk_vlog(hk_log_level level, const char *fmt, va_list ap)
{
    if (!hk_log_enabled(level))
        return;
    char buf[HK_LOG_MAX_LINE + 1];
    size_t len = format_prefix(buf, sizeof buf, level);
    int n = vsnprintf(buf + len, sizeof buf - len, fmt, ap);
    if (n < 0)
        n = 0;
    len += (size_t)n;
    emit(buf, clip(buf, len, sizeof buf));
}

void hk_log(hk_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hk_vlog(level, fmt, ap);
    va_end(ap);
}

void hk_log_line(hk_log_level level, const char *line)
{
    hk_log(level, "%s", line);
}
