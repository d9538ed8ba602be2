/* Tests of backend-real/lib/log's journald mode (issue 11 item 4): when JOURNAL_STREAM holds the device:inode of
 * stderr, lines are "<N>message" (sd-daemon.h priorities: <3> error, <4> warning, <6> info, <7> debug) without a
 * timestamp; when it names something else, is malformed or is unset, lines keep their "YYYY-MM-DDTHH:MM:SS.mmmZ LEVEL"
 * prefix. stderr is a pipe the test reads. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static int rd = -1;

/* stderr becomes a pipe's write end; JOURNAL_STREAM is set to its identity (match) or to `other`. */
static void stderr_to_pipe(const char *other)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert(dup2(p[1], STDERR_FILENO) >= 0);
    close(p[1]);
    rd = p[0];
    struct stat st;
    cr_assert_eq(fstat(STDERR_FILENO, &st), 0);
    char js[64];
    snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    if (other && !*other)
        unsetenv("JOURNAL_STREAM");
    else
        setenv("JOURNAL_STREAM", other ? other : js, 1);
    hk_log_detect_journal();
    hk_log_set_level(HK_LOG_DEBUG);
}

static const char *read_all(void)
{
    static char buf[4096];
    close(STDERR_FILENO);
    ssize_t n = read(rd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

Test(log_journal, journald_lines_have_priorities_and_no_time)
{
    stderr_to_pipe(NULL);
    cr_assert(hk_log_stderr_is_journal());
    hk_log(HK_LOG_ERROR, "bad %d", 1);
    hk_log(HK_LOG_WARN, "careful");
    hk_log(HK_LOG_INFO, "serving");
    hk_log(HK_LOG_DEBUG, "detail");
    hk_log(HK_LOG_TRACE, "hidden"); /* above the threshold: dropped */
    cr_assert_str_eq(read_all(), "<3>bad 1\n<4>careful\n<6>serving\n<7>detail\n");
}

static void assert_timestamped(const char *out)
{
    int y, mo, d, h, mi, s, ms;
    char lvl[8], msg[32];
    cr_assert_eq(sscanf(out, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %7s %31s", &y, &mo, &d, &h, &mi, &s, &ms, lvl, msg), 9,
                 "%s", out);
    cr_assert_str_eq(lvl, "INFO");
    cr_assert_str_eq(msg, "serving");
}

Test(log_journal, another_stream_keeps_timestamps)
{
    stderr_to_pipe("1:2");
    cr_assert(!hk_log_stderr_is_journal());
    hk_log(HK_LOG_INFO, "serving");
    assert_timestamped(read_all());
}

Test(log_journal, malformed_or_unset_keeps_timestamps)
{
    stderr_to_pipe("garbage");
    cr_assert(!hk_log_stderr_is_journal());
    setenv("JOURNAL_STREAM", "12:34x", 1);
    cr_assert(!hk_log_stderr_is_journal());
    unsetenv("JOURNAL_STREAM");
    cr_assert(!hk_log_stderr_is_journal());
    hk_log_detect_journal();
    hk_log(HK_LOG_INFO, "serving");
    assert_timestamped(read_all());
}
