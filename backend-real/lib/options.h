/* options: the command line of the `hekate` daemon, parsed strictly.
 *
 * Contract
 * --------
 * hk_options_parse fills hk_options from argv (GNU getopt_long: short and long options, permuted operands, "--"
 * ends options). Every number is parsed by the functions below, never atoi: decimal digits only, no sign, no
 * spaces, overflow and range checked, and an error names the option, the value and the accepted range. After
 * parsing, the seeder configuration is checked with hk_config_check. A run needs at least one DIR (except with
 * --help / --version). -4 and -6 exclude each other. --max-peers defaults to 10 x --max-unchoked. --rescan is 0
 * (off) or at least 1 second.
 * getopt_long keeps global state: hk_options_parse resets it, so it may be called several times (tests).
 */
#ifndef HEKATE_OPTIONS_H
#define HEKATE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "listener.h"
#include "runtime.h"
#include "seeder.h"

#define HEKATE_VERSION "0.1.0"

typedef enum hk_options_result {
    HK_OPTIONS_RUN = 0,     /* serve (or list) */
    HK_OPTIONS_HELP,        /* --help: print usage, exit 0 */
    HK_OPTIONS_VERSION,     /* --version: print the version, exit 0 */
    HK_OPTIONS_ERROR,       /* err says why: exit 2 */
} hk_options_result;

typedef struct hk_options {
    hk_config cfg;
    uint16_t port;            /* -p, default 6881; 0: any free port */
    hk_family family;         /* -4 / -6 */
    const char *bind_addr;    /* --bind (NULL: all addresses) */
    bool no_trackers;         /* -t */
    bool list;                /* -l */
    int verbosity;            /* +1 per -v, -1 per -q */
    uint64_t max_mapped;      /* --max-mapped (bytes) */
    uint32_t max_open_files;  /* --max-open-files */
    uint32_t disk_threads;    /* --disk-threads */
    char **dirs;              /* operands (pointers into argv) */
    size_t ndirs;
    /* trackers (core/announcer.h) */
    hk_time announce_interval; /* --announce-interval: before a tracker gives one; first-announce spread (0: default) */
    uint32_t announce_rate;    /* --announce-rate: first announces per second when few torrents (0: default) */
    /* hot add/remove */
    hk_time rescan_interval;   /* --rescan: rescan the DIRs this often (0: only on SIGHUP; else at least 1 s) */
    /* watched directories (issue 11 item 6) */
    bool no_watch;             /* --no-watch: no inotify on the DIRs (changes seen only by rescans) */
} hk_options;

hk_options_result hk_options_parse(hk_options *o, int argc, char **argv, char *err, size_t errlen);
void hk_options_usage(FILE *out, const char *prog);
hk_log_level hk_options_log_level(const hk_options *o);   /* INFO, raised by -v, lowered by -q */

/* Strict number parsers: 0 on success, -1 on error (err names `what`, the text and the accepted range). */
int hk_parse_uint(const char *what, const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err,
                  size_t errlen);
/* Bytes with an optional binary suffix: K, M, G, T (also k, KiB, MiB, GiB, TiB): "1M" = 1048576. */
int hk_parse_size(const char *what, const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err,
                  size_t errlen);
/* Seconds, fractional allowed ("2.5", "0.010"; at most 9 decimals), to nanoseconds, in [min, max]. */
int hk_parse_seconds(const char *what, const char *s, hk_time min, hk_time max, hk_time *out, char *err,
                     size_t errlen);

#endif
