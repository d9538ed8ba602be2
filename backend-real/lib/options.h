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
 * -c FILE (--config) reads settings from a file first (config_file.h); the command line wins over it.
 * A repeatable option (--data-dir) collects every value: the file's first, then the command line's.
 * --verify takes an optional value: --verify=MODE (lazy, off, full) sets the mode; a bare --verify (check every
 * torrent and exit) sets verify_check, excludes -l, and without --verify-rate reads as fast as the disk threads go
 * (cfg.verify_rate = HK_VPASS_RATE_MAX). --verify=full without --verify-rate keeps the seeder's default rate.
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

/* A repeatable option's values, in order (pointers into argv or into the options' own copies of a file's values). */
typedef struct hk_strlist {
    const char **v;           /* malloc'd array, freed by hk_options_free */
    size_t n;
} hk_strlist;

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
    hk_time status_interval;   /* --status-interval: one status line (INFO) this often (0: only on SIGUSR1) */
    /* watched directories (issue 11 item 6) */
    bool no_watch;             /* --no-watch: no inotify on the DIRs (changes seen only by rescans) */
    /* metrics (ops/metrics.h) */
    const char *metrics_addr;  /* --metrics=[ADDR:]PORT: serve /metrics there (NULL: off); checked when parsed */
    uint32_t metrics_top;      /* --metrics-top: per-torrent series for this many torrents (default 10; 0: none) */
    /* systemd / privileges (issue 11 item 4; ops/privdrop.h) */
    const char *user;          /* --user: run as this user once the port is bound (NULL: stay) */
    const char *group;         /* --group: and this group (default: the user's primary group) */
    /* config file (-c FILE, config_file.h): what the file's values need kept, freed by hk_options_free */
    const char *config_path;   /* -c / --config (a pointer into argv), NULL if none */
    bool dirs_owned;           /* dirs (the file's `dir` keys, then the operands) is an array of the options' own */
    char **texts;              /* copies of the file's values that text options (--bind, ...) point to */
    size_t ntexts;
    /* control socket (backend-real/lib/ops/control.h) */
    const char *control_path;  /* --control: the Unix socket hekatectl talks to (NULL: none) */
    /* a fleet without a coordinator (issue 11 item 7): --shard=K/N, shard.h */
    const char *shard_text;    /* the value as given (NULL: no --shard) */
    uint32_t shard_k, shard_n; /* parsed from it; shard_n 0: every torrent */
    /* piece verification (issue 10 item 1) */
    int verify;                /* --verify=MODE: HK_VERIFY_LAZY (0, default), HK_VERIFY_OFF or HK_VERIFY_FULL */
    bool verify_check;         /* a bare --verify: check every torrent of the DIRs, report, exit (like -l) */
    /* where data lies (issue 11 item 8) */
    hk_strlist data_dirs;      /* --data-dir (repeatable): searched for a torrent's data after its .torrent's folder */
    bool follow_links;         /* --follow-links: follow symbolic links that stay inside the served folders */
    /* resume state (issue 10 item 2, catalog/resume.h) */
    const char *state_file;    /* --state=FILE: one state file for every DIR (NULL: none) */
    bool state_per_dir;        /* --state-per-dir: DIR/.hekate-state for each DIR */
    hk_time state_interval;    /* --state-interval: save this often (default 300 s) */
    /* the DHT (issue 13; dht_glue.h) */
    bool no_dht;               /* --no-dht */
    bool no_zero_copy;         /* --no-zero-copy: plain peers written by writev (copied), not vmsplice + splice */
    const char *dht_bootstrap_last; /* --dht-bootstrap as last given (the list is below) */
    const char *dht_bootstrap[16]; /* every --dht-bootstrap HOST:PORT, in order, duplicates dropped */
    size_t ndht_bootstrap;     /* 0: the well-known routers */
    const char *dht_state;     /* --dht-state FILE (NULL: none) */
} hk_options;
enum { HK_VERIFY_LAZY = 0, HK_VERIFY_OFF = 1, HK_VERIFY_FULL = 2 };

hk_options_result hk_options_parse(hk_options *o, int argc, char **argv, char *err, size_t errlen);
void hk_options_usage(FILE *out, const char *prog);
hk_log_level hk_options_log_level(const hk_options *o);   /* INFO, raised by -v, lowered by -q */

/* Config file (-c FILE, see config_file.h): precedence defaults < file < command line; DIRs are the file's `dir` keys
 * followed by the operands. hk_options_parse reads FILE; hk_options_parse_text is the same with the file's text
 * given (name is used in messages "NAME:LINE: ..."). After HK_OPTIONS_RUN call hk_options_free when done (a no-op
 * without a file); on any other result nothing is left to free. */
hk_options_result hk_options_parse_text(hk_options *o, int argc, char **argv, const char *name, const char *text,
                                        size_t len, char *err, size_t errlen);
void hk_options_free(hk_options *o);
/* The option rows, for the config file: their count, the long name of row i, the row of a key (its long name; '_'
 * also accepted for '-', any case), or -1. hk_options_row_set applies a file value to row i: 0 (*given: the row
 * counts as set, false for a flag set to false or a count of 0), -1 with err naming the key (not "--key").
 * hk_options_row_differs: row i's field differs between a and b (false for rows without a field: -4, -6, -h, -V). */
size_t hk_options_nrows(void);
const char *hk_options_row_name(size_t i);
int hk_options_row_find(const char *key);
int hk_options_row_set(hk_options *o, size_t i, const char *value, bool *given, char *err, size_t errlen);
bool hk_options_row_differs(const hk_options *a, const hk_options *b, size_t i);
/* true if row i may be given several times (data-dir, dht-bootstrap: each value is kept, in order). */
bool hk_options_row_repeatable(size_t i);

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
