/* options: strict parsing of hekate's command line (see options.h). First the number parsers (counts, sizes,
 * seconds), then the options themselves: one table row per option (names, kind, destination field, range) and a
 * small driver that walks argv with getopt_long, applies each row, and checks the rules between options. With -c
 * FILE the driver walks argv twice: once alone (its errors, --help, -c), then over the file's values (config_file.c,
 * through the row functions at the end of this file), so the command line wins. */
#include "options.h"

#include <assert.h>
#include <getopt.h>
#include <inttypes.h>
#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "metrics.h"
#include "store.h"
#include "config_file.h"
#include "dht_glue.h"
#include "shard.h"
#include "store.h"

/* The options that shape what is served and how (the first part of --help). */
static void usage_serving(FILE *out, const char *prog)
{
    fprintf(out,
            "Usage: %s [OPTION]... DIR...\n"
            "  or:  %s --verify [OPTION]... DIR...   (check every piece, report, exit)\n"
            "Seed every torrent found below each DIR: each *.torrent file (searched recursively; symbolic links are\n"
            "not followed unless --follow-links) whose data lies beside it or in a --data-dir, complete and of the\n"
            "right size. Upload only.\n"
            "\n"
            "  -p, --port=PORT             TCP and uTP (UDP) port to listen on (default 6881; 0: any free port)\n"
            "  -4, --ipv4-only             listen on IPv4 only\n"
            "  -6, --ipv6-only             listen on IPv6 only (default: both, on one dual-stack socket)\n"
            "      --bind=ADDR             listen on this numeric address only\n"
            "  -N, --max-unchoked=N        peers served at once (default 50)\n"
            "      --max-peers=N           connections at once (default 10 x max-unchoked)\n"
            "      --max-peers-per-address=N  connections from one address (default 8; 0: no limit)\n"
            "      --max-peers-per-prefix=N   connections from one /24 (IPv4) or /64 (IPv6) (default 64; 0: no\n"
            "                              limit)\n"
            "  -C, --credit=BYTES          bytes a peer may take per turn (default 1M; suffixes K, M, G)\n"
            "  -T, --slice=SECONDS         longest turn of a peer (default 300; 0: no limit)\n"
            "  -t, --no-trackers           do not contact trackers\n"
            "  -l, --list                  list what would be served and what is rejected, then exit\n"
            "      --data-dir=DIR          also look for a torrent's data (its <name>) in DIR, when it is not\n"
            "                              beside the .torrent (repeatable: searched in the order given)\n"
            "      --follow-links          follow symbolic links (folders below a DIR, data files and folders)\n"
            "                              whose target stays inside a DIR or a --data-dir; others are refused\n"

            "      --verify                check every piece of every torrent, name the damaged ones, then exit\n"
            "                              (status 0: all intact; 1: a piece bad or data missing)\n"
            "      --rescan=SECONDS        rescan every DIR this often (default 0: only on SIGHUP); with it,\n"
            "                              hekate also starts when there is nothing to serve yet\n"
            "      --status-interval=SECONDS  one status line (torrents, peers, MB/s) this often (default 300;\n"
            "                              0: only on SIGUSR1)\n"
            "      --shard=K/N             serve only the torrents in shard K of N (K from 0 to N-1): the first 8\n"
            "                              bytes of the info-hash, big-endian, modulo N; N processes with\n"
            "                              0/N..N-1/N over the same DIRs serve each torrent exactly once\n"
            "      --no-watch              do not watch the DIRs (inotify); by default a .torrent written, moved\n"
            "                              in or removed below a DIR is served or stopped within a second\n"
            "  -v, --verbose               more messages (repeat for more)\n"
            "  -q, --quiet                 fewer messages (repeat for fewer)\n"
            "\n",
            prog, prog);
}

/* Timeouts, resources, encryption, caps, trackers (the middle of --help). */
static void usage_tuning(FILE *out)
{
    fputs("Timeouts, in seconds (fractions allowed):\n"
            "      --handshake-timeout=S   handshake not complete (default 10)\n"
            "      --idle-timeout=S        nothing received from the peer (default 120)\n"
            "      --unchoked-idle-timeout=S  served peer asks for nothing: choke it (default 30)\n"
            "      --unchoked-grace=S      served peer asks for nothing this long while others wait:\n"
            "                              its turn goes to them, and it waits behind them (default 2)\n"
            "      --unchoked-stall=S      the same for a served peer that does not read (default 10)\n"
            "      --send-stall-timeout=S  data queued but the peer does not read (default 60)\n"
            "      --max-wait=S            longest wait in line for a turn (default 0: no limit)\n"
            "      --keepalive-interval=S  send a keep-alive after this much silence (default 90)\n"
            "\n"
            "Requests and resources:\n"
            "      --reqq=N                requests queued per peer (default 256)\n"
            "      --max-block=BYTES       largest block a peer may request (default 16K, at most 128K)\n"
            "      --max-mapped=BYTES      address space for mapped data files (default 16G)\n"
            "      --max-open-files=N      data files kept open (default 1024, at most 32768)\n"
            "      --disk-threads=N        threads reading from disk (default 8)\n"
            "      --no-zero-copy          write plain peers' data by copying it into the socket (writev) instead\n"
            "                              of handing the kernel the page-cache pages (vmsplice + splice)\n"
            "      --verify=MODE           lazy (default): each piece is checked against its SHA-1 the first time\n"
            "                              it is read, a piece that fails is never sent; full: the same, and every\n"
            "                              piece is checked in the background at --verify-rate; off: nothing is\n"
            "                              checked\n"
            "      --verify-rate=RATE      bytes per second a background check reads (default 64M; K, M, G)\n"
            "      --state=FILE            resume state: torrents and their verified pieces, saved every\n"
            "                              --state-interval and at a clean stop; unchanged torrents are served\n"
            "                              from it at start-up without reading their .torrent files\n"
            "      --state-per-dir         the resume state in DIR/.hekate-state for each DIR instead\n"
            "      --state-interval=SECONDS  save the resume state this often (default 300)\n"
            "\n"
            "Encryption (MSE/PE, \"protocol encryption\"; plain and encrypted peers share the port):\n"
            "      --encryption=POLICY     allow (default): both; RC4 when the peer offers it\n"
            "                              prefer-plain: both; plaintext after the handshake when offered\n"
            "                              require: encrypted handshakes with RC4 only; plain ones refused\n"
            "                              off: plain BitTorrent handshakes only\n"
            "\n"
            "Upload rate caps (bytes per second of piece and metadata messages, headers included; control\n"
            "messages are never held back; suffixes K, M, G = 1024^n; 0: no cap):\n"
            "      --upload-rate=RATE      cap on everything hekate uploads (default 0)\n"
            "      --torrent-upload-rate=RATE  cap on each torrent on its own (default 0)\n"
            "      --upload-burst=BYTES    bytes a cap lets go at once after a quiet spell (default 0: a tenth\n"
            "                              of a second of the rate, at least one block)\n"
            "\n"
            "DHT (BEP 5, on the listen port's UDP socket; private torrents are never announced):\n"
            "      --no-dht                do not run a DHT node (nor announce torrents on the DHT)\n"
            "      --dht-bootstrap=HOST:PORT  a node to join the DHT through (repeatable; default the well-known\n"
            "                              routers router.bittorrent.com, dht.transmissionbt.com,\n"
            "                              router.utorrent.com, port 6881); names are resolved in the background\n"
            "      --dht-state=FILE        keep the node id and known nodes in FILE across restarts\n"
            "\n"
            "Trackers (HTTP, HTTPS, UDP; every tier of announce-list):\n"
            "      --announce-interval=S   interval until a tracker gives one, and the window the first announces\n"
            "                              of many torrents are spread over (default 1800)\n"
            "      --announce-rate=N       first announces per second when few torrents are added (default 10)\n"
            "\n",
          out);
}

void hk_options_usage(FILE *out, const char *prog)
{
    usage_serving(out, prog);
    usage_tuning(out);
    fputs("Metrics (Prometheus text format, GET /metrics):\n"
            "      --metrics=[ADDR:]PORT   serve /metrics on this address (default: off; ADDR defaults to\n"
            "                              127.0.0.1; an IPv6 address in brackets, e.g. [::1]:9100)\n"
            "      --metrics-top=N         per-torrent series for the N torrents that served most (default 10;\n"
            "                              0: none; at most 1000)\n"
            "\n"
            "Privileges (started as root, e.g. to bind a port below 1024):\n"
            "      --user=NAME             once the port is bound, run as this user (name or uid)\n"
            "      --group=NAME            ... and this group (default: the user's primary group)\n"
            "\n"
            "Operations:\n"
            "  -c, --config=FILE           read settings from FILE first (INI: `key = value`, a key per long\n"
            "                              option, `dir = DIR` repeatable); the command line wins; SIGHUP\n"
            "                              reads it again and applies what can change live\n"
            "      --control=PATH          answer hekatectl(1) on this Unix socket (mode 0600; a stale socket\n"
            "                              left by a crash is replaced)\n"
            "\n"
            "  -h, --help                  show this help and exit\n"
            "  -V, --version               show the version and exit\n"
            "\n"
            "Signals: SIGHUP reads the -c FILE again (what can change live is applied: limits, timeouts, folders,\n"
            "-v; the rest waits for a restart), then rescans every DIR: new torrents are added, torrents whose\n"
            ".torrent file is gone or holds another torrent are removed (their peers disconnected, `stopped`\n"
            "announced), failed ones are tried again; the others are untouched. SIGINT, SIGTERM or SIGQUIT stop\n"
            "the seeder cleanly (`stopped` announced). SIGUSR1 logs a status summary. SIGPIPE, SIGUSR2 and the\n"
            "other signals that mean nothing to hekate are ignored.\n"
            "\n"
            "Exit status: 0 when at least one torrent was served (or listed), 1 when nothing could be served or\n"
            "the port could not be bound, 2 on a command-line error.\n",
          out);
}

/* ---- number parsing ---- */

/* What reading a number found (before its range is checked). */
typedef enum scan_result {
    SCAN_OK,
    SCAN_BAD,          /* not of the expected form */
    SCAN_TOO_BIG,      /* of the form, but past 64 bits */
    SCAN_TOO_PRECISE,  /* seconds with more than 9 decimals */
} scan_result;

/* Reads decimal digits at *p and moves *p past them: SCAN_BAD if there is none, SCAN_TOO_BIG on overflow. */
static scan_result scan_digits(const char **p, uint64_t *v)
{
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return SCAN_BAD;
    uint64_t x = 0;
    bool overflow = false;
    while (*s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        if (x > (UINT64_MAX - d) / 10)
            overflow = true; /* keep consuming: the caller still checks what follows the digits */
        else
            x = x * 10 + d;
        s++;
    }
    *p = s;
    *v = x;
    return overflow ? SCAN_TOO_BIG : SCAN_OK;
}

/* Digits only. */
static scan_result scan_count(const char *s, uint64_t *v)
{
    scan_result r = scan_digits(&s, v);
    return *s ? SCAN_BAD : r;
}

/* The shift of a size suffix letter, 0 if it is none. */
static unsigned suffix_shift(char c)
{
    switch (c) {
    case 'k': case 'K': return 10;
    case 'm': case 'M': return 20;
    case 'g': case 'G': return 30;
    case 't': case 'T': return 40;
    }
    return 0;
}

/* Digits, then optionally K, M, G or T, then optionally "B" or "iB". */
static scan_result scan_size(const char *s, uint64_t *v)
{
    scan_result r = scan_digits(&s, v);
    if (r == SCAN_BAD)
        return SCAN_BAD;
    unsigned shift = 0;
    if (*s) {
        shift = suffix_shift(*s++);
        if (shift == 0 || (*s && strcmp(s, "iB") != 0 && strcmp(s, "B") != 0))
            return SCAN_BAD;
    }
    if (r == SCAN_TOO_BIG || (shift && *v > (UINT64_MAX >> shift)))
        return SCAN_TOO_BIG;
    *v <<= shift;
    return SCAN_OK;
}

/* Digits, then optionally "." and 1 to 9 digits: nanoseconds. */
static scan_result scan_seconds(const char *s, hk_time *v)
{
    uint64_t whole, frac = 0;
    scan_result r = scan_digits(&s, &whole);
    if (r == SCAN_BAD)
        return SCAN_BAD;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return SCAN_BAD;
        uint64_t scale = HK_NS_PER_SEC;
        for (unsigned digits = 1; *s >= '0' && *s <= '9'; s++, digits++) {
            if (digits > 9)
                return SCAN_TOO_PRECISE;
            scale /= 10;
            frac += (uint64_t)(*s - '0') * scale;
        }
    }
    if (*s)
        return SCAN_BAD;
    if (r == SCAN_TOO_BIG || whole > (UINT64_MAX - frac) / HK_NS_PER_SEC)
        return SCAN_TOO_BIG;
    *v = whole * HK_NS_PER_SEC + frac;
    return SCAN_OK;
}

/* The end of every number parser: a value read (r) that lies in [min, max] goes to *out (0); else -1 and err says
 * "<what>: '<s>' is not <noun>", "<what>: <s> is out of range (<range>)" or that it has too many decimals. */
static int settle(scan_result r, uint64_t v, uint64_t min, uint64_t max, uint64_t *out, const char *what,
                  const char *s, const char *noun, const char *range, char *err, size_t errlen)
{
    switch (r) {
    case SCAN_BAD:
        snprintf(err, errlen, "%s: '%s' is not %s", what, s, noun);
        return -1;
    case SCAN_TOO_PRECISE:
        snprintf(err, errlen, "%s: '%s' has more than 9 decimals", what, s);
        return -1;
    case SCAN_TOO_BIG:
        break;
    case SCAN_OK:
        if (v >= min && v <= max) {
            *out = v;
            return 0;
        }
        break;
    }
    snprintf(err, errlen, "%s: %s is out of range (%s)", what, s, range);
    return -1;
}

int hk_parse_uint(const char *what, const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err,
                  size_t errlen)
{
    char range[64], noun[128];
    snprintf(range, sizeof range, "%" PRIu64 "..%" PRIu64, min, max);
    snprintf(noun, sizeof noun, "a number (expected digits only, %s)", range);
    uint64_t v = 0;
    scan_result r = scan_count(s, &v);
    return settle(r, v, min, max, out, what, s, noun, range, err, errlen);
}

int hk_parse_size(const char *what, const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err,
                  size_t errlen)
{
    char range[64];
    snprintf(range, sizeof range, "%" PRIu64 "..%" PRIu64 " bytes", min, max);
    uint64_t v = 0;
    scan_result r = scan_size(s, &v);
    return settle(r, v, min, max, out, what, s, "a size (expected digits with an optional K, M, G or T suffix)", range,
                  err, errlen);
}

int hk_parse_seconds(const char *what, const char *s, hk_time min, hk_time max, hk_time *out, char *err,
                     size_t errlen)
{
    char range[96];
    snprintf(range, sizeof range, "%.9g..%.9g seconds", (double)min / 1e9, (double)max / 1e9);
    hk_time v = 0;
    scan_result r = scan_seconds(s, &v);
    return settle(r, v, min, max, out, what, s, "a number of seconds (e.g. 10 or 2.5)", range, err, errlen);
}

/* ---- the command line: one row per option ---- */

#define MAX_SECONDS HK_SECONDS(7 * 86400) /* a week: longer timeouts are mistakes */
#define MAX_COUNT 1000000                 /* peers, open files, announces per second */

/* What an option does with its argument (the kind also says whether it takes one). */
typedef enum opt_kind {
    OPT_FLAG,     /* no argument: sets a bool field */
    OPT_MARK,     /* no argument: only seen (-4, -6: the family is decided after the loop) */
    OPT_STEP,     /* no argument: adds `step` to an int field (-v, -q) */
    OPT_HELP,     /* no argument: stop, usage */
    OPT_VERSION,  /* no argument: stop, version */
    OPT_COUNT,    /* decimal digits in [min, max] (hk_parse_uint) */
    OPT_SIZE,     /* bytes with an optional K, M, G, T suffix in [min, max] (hk_parse_size) */
    OPT_SECONDS,  /* seconds, fractions allowed, in [min, max] nanoseconds (hk_parse_seconds) */
    OPT_TEXT,     /* the argument itself (a pointer into argv) */
    OPT_CHOICE,   /* one of the row's `choices` names: its index, stored in an enum (int-sized) field */
    OPT_LIST,     /* the argument appended to an hk_strlist field (a repeatable option) */
} opt_kind;

typedef struct opt_row {
    const char *name;       /* long form without "--"; error messages name the option "--<name>" */
    char letter;            /* short form, or 0 */
    opt_kind kind;
    size_t at, width;       /* destination field in hk_options (offsetof, sizeof); width 0: none */
    uint64_t min, max;      /* accepted range (OPT_SECONDS: nanoseconds) */
    int step;               /* OPT_STEP */
    uint64_t floor;         /* OPT_SECONDS: if not 0, a value other than 0 must be at least this */
    const char *floor_text; /* ... else "--<name>: <arg> is too short (<floor_text>)" */
    const char *const *choices; /* OPT_CHOICE: the accepted names, NULL-terminated; a name's index is its value */
    bool optional;          /* the value may be left out ("--name" alone: apply() is given NULL); long form only */
} opt_row;

/* --encryption (issue 9): the names of hk_encryption's values, in its order. */
static const char *const encryption_names[] = { "allow", "prefer-plain", "require", "off", NULL };
/* --verify (issue 10): HK_VERIFY_LAZY, HK_VERIFY_OFF. */
static const char *const verify_names[] = { "lazy", "off", "full", NULL };

/* The fields of a row: its names, its kind and where its value goes. */
#define ROW(long_name, short_letter, k, field)                                                                    \
    .name = long_name, .letter = short_letter, .kind = k, .at = offsetof(hk_options, field),                      \
    .width = sizeof(((hk_options *)0)->field)
#define TIMEOUT(long_name, field) { ROW(long_name, 0, OPT_SECONDS, cfg.field), .min = 0, .max = MAX_SECONDS }

/* getopt_long sees the long names in this order (the order they always had). */
static const opt_row rows[] = {
    { ROW("port", 'p', OPT_COUNT, port), .min = 0, .max = 65535 },
    { ROW("max-unchoked", 'N', OPT_COUNT, cfg.max_unchoked), .min = 1, .max = 10000 },
    { ROW("credit", 'C', OPT_SIZE, cfg.credit), .min = 16 * 1024, .max = 1ull << 30 },
    { ROW("slice", 'T', OPT_SECONDS, cfg.slice), .min = 0, .max = MAX_SECONDS },
    { ROW("no-trackers", 't', OPT_FLAG, no_trackers) },
    { .name = "ipv4-only", .letter = '4', .kind = OPT_MARK },
    { .name = "ipv6-only", .letter = '6', .kind = OPT_MARK },
    { ROW("list", 'l', OPT_FLAG, list) },
    { ROW("verbose", 'v', OPT_STEP, verbosity), .step = +1 },
    { ROW("quiet", 'q', OPT_STEP, verbosity), .step = -1 },
    { .name = "help", .letter = 'h', .kind = OPT_HELP },
    { .name = "version", .letter = 'V', .kind = OPT_VERSION },
    TIMEOUT("handshake-timeout", handshake_timeout),
    TIMEOUT("idle-timeout", idle_timeout),
    TIMEOUT("unchoked-idle-timeout", unchoked_idle_timeout),
    TIMEOUT("unchoked-grace", unchoked_grace),     /* slot squatting (issue 14 item 2) */
    TIMEOUT("unchoked-stall", unchoked_stall),
    TIMEOUT("send-stall-timeout", send_stall_timeout),
    TIMEOUT("max-wait", max_wait),
    TIMEOUT("keepalive-interval", keepalive_interval),
    { ROW("max-peers", 0, OPT_COUNT, cfg.max_peers), .min = 1, .max = MAX_COUNT },
    { ROW("reqq", 0, OPT_COUNT, cfg.reqq), .min = 1, .max = 65535 },
    { ROW("max-block", 0, OPT_SIZE, cfg.max_block), .min = 16 * 1024, .max = 128 * 1024 },
    { ROW("bind", 0, OPT_TEXT, bind_addr) },
    { ROW("max-mapped", 0, OPT_SIZE, max_mapped), .min = 1ull << 20, .max = 1ull << 47 },
    { ROW("max-open-files", 0, OPT_COUNT, max_open_files), .min = 1, .max = HK_STORE_MAX_OPEN_FILES }, /* store.h */
    { ROW("disk-threads", 0, OPT_COUNT, disk_threads), .min = 1, .max = 256 },
    { ROW("announce-interval", 0, OPT_SECONDS, announce_interval), .min = HK_SECONDS(1), .max = MAX_SECONDS },
    { ROW("announce-rate", 0, OPT_COUNT, announce_rate), .min = 1, .max = MAX_COUNT },
    { ROW("rescan", 0, OPT_SECONDS, rescan_interval), .min = 0, .max = MAX_SECONDS, .floor = HK_SECONDS(1),
      .floor_text = "0 to turn it off, else at least 1 second" },
    { ROW("status-interval", 0, OPT_SECONDS, status_interval), .min = 0, .max = MAX_SECONDS,
      .floor = HK_SECONDS(1), .floor_text = "0 to turn it off, else at least 1 second" },
    /* per-address caps */
    { ROW("max-peers-per-address", 0, OPT_COUNT, cfg.max_peers_per_address), .min = 0, .max = MAX_COUNT },
    { ROW("max-peers-per-prefix", 0, OPT_COUNT, cfg.max_peers_per_prefix), .min = 0, .max = MAX_COUNT },
    { ROW("encryption", 0, OPT_CHOICE, cfg.encryption), .choices = encryption_names },
    /* watched directories (issue 11 item 6) */
    { ROW("no-watch", 0, OPT_FLAG, no_watch) },
    /* metrics (ops/metrics.h) */
    { ROW("metrics", 0, OPT_TEXT, metrics_addr) },
    { ROW("metrics-top", 0, OPT_COUNT, metrics_top), .min = 0, .max = HK_METRICS_TOP_MAX },
    /* privileges (issue 11 item 4) */
    { ROW("user", 0, OPT_TEXT, user) },
    { ROW("group", 0, OPT_TEXT, group) },
    /* config file (config_file.h) */
    { ROW("config", 'c', OPT_TEXT, config_path) },
    /* control socket */
    { ROW("control", 0, OPT_TEXT, control_path) },
    /* upload rate caps (issue 11 item 5) */
    { ROW("upload-rate", 0, OPT_SIZE, cfg.upload_rate), .min = 0, .max = HK_TB_RATE_MAX },
    { ROW("torrent-upload-rate", 0, OPT_SIZE, cfg.torrent_upload_rate), .min = 0, .max = HK_TB_RATE_MAX },
    { ROW("upload-burst", 0, OPT_SIZE, cfg.upload_burst), .min = 0, .max = HK_TB_BURST_MAX },
    /* a fleet without a coordinator (issue 11 item 7): K/N parsed as it is read (hk_shard_parse) */
    { ROW("shard", 0, OPT_TEXT, shard_text) },
    /* piece verification (issue 10 item 1) */
    { ROW("verify", 0, OPT_CHOICE, verify), .choices = verify_names, .optional = true }, /* bare: verify_check */
    { ROW("verify-rate", 0, OPT_SIZE, cfg.verify_rate), .min = 1, .max = HK_VPASS_RATE_MAX },
    /* where data lies (issue 11 item 8) */
    { ROW("data-dir", 0, OPT_LIST, data_dirs) },
    { ROW("follow-links", 0, OPT_FLAG, follow_links) },
    /* resume state (issue 10 item 2, docs/resume-state.md) */
    { ROW("state", 0, OPT_TEXT, state_file) },
    { ROW("state-per-dir", 0, OPT_FLAG, state_per_dir) },
    { ROW("state-interval", 0, OPT_SECONDS, state_interval), .min = HK_SECONDS(1), .max = MAX_SECONDS },
    /* the DHT (issue 13) */
    { ROW("no-dht", 0, OPT_FLAG, no_dht) },
    { ROW("dht-bootstrap", 0, OPT_TEXT, dht_bootstrap_last) },
    { ROW("dht-state", 0, OPT_TEXT, dht_state) },
    /* zero-copy writes (issue 12, net/conn_splice.h) */
    { ROW("no-zero-copy", 0, OPT_FLAG, no_zero_copy) },
};

#define NROWS (sizeof rows / sizeof *rows)

/* --dht-bootstrap HOST:PORT: appended to the list (a repeat of one already there is dropped). 0, or -1. */
static int add_dht_bootstrap(hk_options *o, const char *arg, char *err, size_t errlen)
{
    char host[256];
    uint16_t port;
    if (hk_dht_parse_hostport(arg, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "--dht-bootstrap: %s is not HOST:PORT (a literal IPv6 address in brackets)", arg);
        return -1;
    }
    for (size_t i = 0; i < o->ndht_bootstrap; i++)
        if (strcmp(o->dht_bootstrap[i], arg) == 0)
            return 0;
    size_t max = sizeof o->dht_bootstrap / sizeof *o->dht_bootstrap;
    if (o->ndht_bootstrap == max) {
        snprintf(err, errlen, "--dht-bootstrap: at most %zu", max);
        return -1;
    }
    o->dht_bootstrap[o->ndht_bootstrap++] = arg;
    return 0;
}
#define LONG_ONLY 1000 /* getopt_long value of rows[i] without a letter: LONG_ONLY + i */

static bool takes_argument(opt_kind kind)
{
    return kind >= OPT_COUNT;
}

/* The getopt_long tables, made from the rows: ":" first (a missing value is reported as ':'). */
static void getopt_tables(struct option longopts[NROWS + 1], char shortopts[2 + 2 * NROWS])
{
    size_t n = 0;
    shortopts[n++] = ':';
    for (size_t i = 0; i < NROWS; i++) {
        bool arg = takes_argument(rows[i].kind);
        int has_arg = !arg ? no_argument : rows[i].optional ? optional_argument : required_argument;
        int val = rows[i].letter ? rows[i].letter : LONG_ONLY + (int)i;
        longopts[i] = (struct option){ rows[i].name, has_arg, NULL, val };
        if (rows[i].letter) {
            shortopts[n++] = rows[i].letter;
            if (arg)
                shortopts[n++] = ':';
        }
    }
    longopts[NROWS] = (struct option){ NULL, 0, NULL, 0 };
    shortopts[n] = '\0';
}

/* The row getopt_long's value c stands for, or NULL (c is ':' or '?'). */
static const opt_row *row_of(int c)
{
    if (c >= LONG_ONLY && c < LONG_ONLY + (int)NROWS)
        return &rows[c - LONG_ONLY];
    for (size_t i = 0; i < NROWS; i++)
        if (rows[i].letter && rows[i].letter == c)
            return &rows[i];
    return NULL;
}

static bool seen_row(const bool seen[NROWS], const char *name)
{
    for (size_t i = 0; i < NROWS; i++)
        if (strcmp(rows[i].name, name) == 0)
            return seen[i];
    assert(!"no such option row");
    return false;
}

/* The row's field in o. */
static void *field(hk_options *o, const opt_row *r)
{
    assert(r->width > 0);
    return (char *)o + r->at;
}

/* Stores v in the row's field, whatever its width (the row's range fits it). */
static void store_number(hk_options *o, const opt_row *r, uint64_t v)
{
    assert(r->width == sizeof(uint64_t) || r->max < (1ull << (8 * r->width)));
    switch (r->width) {
    case sizeof(uint16_t): *(uint16_t *)field(o, r) = (uint16_t)v; return;
    case sizeof(uint32_t): *(uint32_t *)field(o, r) = (uint32_t)v; return;
    case sizeof(uint64_t): *(uint64_t *)field(o, r) = v; return;
    }
    assert(!"no field of that width");
}

/* Parses the argument of a number row into v: 0, or -1 with err set. */
static int parse_number(const opt_row *r, const char *arg, uint64_t *v, char *err, size_t errlen)
{
    char what[64];
    snprintf(what, sizeof what, "--%s", r->name);
    switch (r->kind) {
    case OPT_COUNT: return hk_parse_uint(what, arg, r->min, r->max, v, err, errlen);
    case OPT_SIZE: return hk_parse_size(what, arg, r->min, r->max, v, err, errlen);
    case OPT_SECONDS:
        if (hk_parse_seconds(what, arg, r->min, r->max, v, err, errlen) != 0)
            return -1;
        if (r->floor && *v != 0 && *v < r->floor) {
            snprintf(err, errlen, "%s: %s is too short (%s)", what, arg, r->floor_text);
            return -1;
        }
        return 0;
    default: assert(!"not a number row"); return -1;
    }
}

/* Stores the index of arg among the row's choices: 0, or -1 with err naming the option and the accepted values. */
static int apply_choice(hk_options *o, const opt_row *r, const char *arg, char *err, size_t errlen)
{
    assert(r->width == sizeof(int));
    char names[160] = "";
    for (int i = 0; r->choices[i]; i++) {
        if (strcmp(arg, r->choices[i]) == 0) {
            *(int *)field(o, r) = i;
            return 0;
        }
        size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", r->choices[i]);
    }
    snprintf(err, errlen, "--%s: '%s' is not one of %s", r->name, arg, names);
    return -1;
}

/* Appends arg to the list field of a repeatable option: 0, or -1 with err set (out of memory). */
static int list_append(void *fieldp, const char *arg, const opt_row *r, char *err, size_t errlen)
{
    assert(r->width == sizeof(hk_strlist));
    hk_strlist *l = fieldp;
    const char **v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v) {
        snprintf(err, errlen, "--%s: out of memory", r->name);
        return -1;
    }
    v[l->n++] = arg;
    l->v = v;
    return 0;
}

/* Does what one option says: HK_OPTIONS_RUN to go on, or HELP, VERSION, ERROR (err set) to stop. */
static hk_options_result apply(hk_options *o, const opt_row *r, const char *arg, char *err, size_t errlen)
{
    uint64_t v;
    switch (r->kind) {
    case OPT_FLAG:
        assert(r->width == sizeof(bool));
        *(bool *)field(o, r) = true;
        return HK_OPTIONS_RUN;
    case OPT_MARK:
        return HK_OPTIONS_RUN;
    case OPT_STEP:
        assert(r->width == sizeof(int));
        *(int *)field(o, r) += r->step;
        return HK_OPTIONS_RUN;
    case OPT_HELP:
        return HK_OPTIONS_HELP;
    case OPT_VERSION:
        return HK_OPTIONS_VERSION;
    case OPT_TEXT:
        assert(r->width == sizeof(const char *));
        if (strcmp(r->name, "metrics") == 0) { /* the address is checked as it is read, bound at start-up */
            struct sockaddr_storage sa;
            socklen_t salen;
            if (hk_metrics_parse_addr(arg, &sa, &salen, err, errlen) != 0)
                return HK_OPTIONS_ERROR;
        }
        if (strcmp(r->name, "dht-bootstrap") == 0 && add_dht_bootstrap(o, arg, err, errlen) != 0)
            return HK_OPTIONS_ERROR; /* repeatable: each one kept, checked as it is read */
        if (strcmp(r->name, "shard") == 0 && hk_shard_parse("--shard", arg, &o->shard_k, &o->shard_n, err, errlen) != 0)
            return HK_OPTIONS_ERROR; /* K/N checked as it is read, so a config file's line is named */
        *(const char **)field(o, r) = arg;
        return HK_OPTIONS_RUN;
    case OPT_CHOICE:
        if (!arg && r->optional) { /* only --verify has an optional value: alone, it means check and exit */
            o->verify_check = true;
            return HK_OPTIONS_RUN;
        }
        return apply_choice(o, r, arg, err, errlen) == 0 ? HK_OPTIONS_RUN : HK_OPTIONS_ERROR;
    case OPT_LIST:
        return list_append(field(o, r), arg, r, err, errlen) == 0 ? HK_OPTIONS_RUN : HK_OPTIONS_ERROR;
    case OPT_COUNT:
    case OPT_SIZE:
    case OPT_SECONDS:
        if (parse_number(r, arg, &v, err, errlen) != 0)
            return HK_OPTIONS_ERROR;
        store_number(o, r, v);
        return HK_OPTIONS_RUN;
    }
    assert(!"no such option kind");
    return HK_OPTIONS_ERROR;
}

/* What getopt_long refused (c is ':' for a missing value, else '?'): the message, always HK_OPTIONS_ERROR. */
static hk_options_result refused(int c, int argc, char **argv, char *err, size_t errlen)
{
    const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
    if (c == ':')
        snprintf(err, errlen, "option %s needs a value", arg);
    else if (strncmp(arg, "--", 2) == 0)
        snprintf(err, errlen, "unknown option or unexpected value: %s", arg);
    else if (optopt > 0 && optopt < 128)
        snprintf(err, errlen, "unknown option -%c", optopt);
    else
        snprintf(err, errlen, "unknown option %s", arg);
    return HK_OPTIONS_ERROR;
}

static void set_defaults(hk_options *o)
{
    memset(o, 0, sizeof *o);
    hk_config_defaults(&o->cfg);
    o->port = 6881;
    o->family = HK_FAMILY_ANY;
    hk_store_limits lim;
    hk_store_limits_default(&lim);
    o->max_mapped = lim.max_mapped_bytes;
    o->max_open_files = lim.max_open_files;
    o->disk_threads = 8;
    o->status_interval = HK_SECONDS(300);
    o->metrics_top = HK_METRICS_DEFAULT_TOP; /* metrics */
    o->state_interval = HK_SECONDS(300);     /* resume state */
}

/* The rules between options, once all are read, and the operands. */
static hk_options_result check_whole(hk_options *o, const bool seen[NROWS], int argc, char **argv, char *err,
                                     size_t errlen)
{
    bool v4 = seen_row(seen, "ipv4-only"), v6 = seen_row(seen, "ipv6-only");
    if (v4 && v6) {
        snprintf(err, errlen, "-4 (--ipv4-only) and -6 (--ipv6-only) exclude each other");
        return HK_OPTIONS_ERROR;
    }
    o->family = v4 ? HK_FAMILY_V4 : v6 ? HK_FAMILY_V6 : HK_FAMILY_ANY;
    if (!seen_row(seen, "max-peers")) {
        uint64_t mp = 10ull * o->cfg.max_unchoked;
        o->cfg.max_peers = (uint32_t)(mp > MAX_COUNT ? MAX_COUNT : mp);
    }
    if (o->cfg.max_peers < o->cfg.max_unchoked) {
        snprintf(err, errlen, "--max-peers (%u) must be at least --max-unchoked (%u)", o->cfg.max_peers,
                 o->cfg.max_unchoked);
        return HK_OPTIONS_ERROR;
    }
    o->cfg.listen_port = o->port;
    if (o->verify_check && o->list) {
        snprintf(err, errlen, "--verify (check and exit) and -l (--list) exclude each other");
        return HK_OPTIONS_ERROR;
    }
    if (o->verify_check && !seen_row(seen, "verify-rate"))
        o->cfg.verify_rate = HK_VPASS_RATE_MAX; /* nothing else runs: as fast as the disk threads go */
    o->cfg.verify_full = o->verify == HK_VERIFY_FULL || o->verify_check;
    const char *bad = hk_config_check(&o->cfg);
    if (bad) {
        snprintf(err, errlen, "invalid settings: %s", bad);
        return HK_OPTIONS_ERROR;
    }
    if (o->dirs_owned)
        return HK_OPTIONS_RUN; /* a config file: its DIRs, then the operands (append_operands) */
    if (optind >= argc) {
        snprintf(err, errlen, "no DIR given: name at least one folder holding .torrent files");
        return HK_OPTIONS_ERROR;
    }
    o->dirs = argv + optind;
    o->ndirs = (size_t)(argc - optind);
    return HK_OPTIONS_RUN;
}

/* The getopt_long walk over argv: applies every option to o and marks it in seen. HK_OPTIONS_RUN, or HELP, VERSION,
 * ERROR (err set) at the first option that says so. */
static hk_options_result walk(hk_options *o, bool seen[NROWS], int argc, char **argv, char *err, size_t errlen)
{
    struct option longopts[NROWS + 1];
    char shortopts[2 + 2 * NROWS];
    getopt_tables(longopts, shortopts);
    optind = 0; /* GNU: full re-initialisation, so the parser can run again */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        const opt_row *r = row_of(c);
        if (!r)
            return refused(c, argc, argv, err, errlen);
        seen[r - rows] = true;
        hk_options_result res = apply(o, r, optarg, err, errlen);
        if (res != HK_OPTIONS_RUN)
            return res;
    }
    return HK_OPTIONS_RUN;
}

/* The config file under the command line: its text (read from -c FILE unless given) applied to o, the rows it set
 * in file[]; then what the command line replaces: -v/-q replace the file's verbose/quiet, -4/-6 its ipv4-only/
 * ipv6-only. 0, or -1 with err set. */
static int under_file(hk_options *o, const char *path, const char *name, const char *text, size_t len,
                      const bool cmd[NROWS], bool file[NROWS], char *err, size_t errlen)
{
    char *buf = NULL;
    if (!text) {
        if (hk_conf_read(path, &buf, &len, err, errlen) != 0)
            return -1;
        text = buf;
        name = path;
    }
    int rc = hk_conf_apply(o, name, text, len, file, err, errlen);
    free(buf);
    if (rc != 0)
        return -1;
    for (size_t i = 0; i < NROWS; i++)
        if (cmd[i] && rows[i].kind == OPT_STEP)
            *(int *)field(o, &rows[i]) = 0;
    if (seen_row(cmd, "ipv4-only") || seen_row(cmd, "ipv6-only"))
        for (size_t i = 0; i < NROWS; i++)
            if (rows[i].kind == OPT_MARK)
                file[i] = false;
    return 0;
}

/* The DIRs when a config file is used: its `dir` keys (already in o->dirs), then the operands. 0, or -1. */
static int append_operands(hk_options *o, int argc, char **argv)
{
    size_t n = optind < argc ? (size_t)(argc - optind) : 0;
    char **d = realloc(o->dirs, (o->ndirs + n + 1) * sizeof *d);
    if (!d)
        return -1;
    o->dirs = d;
    o->dirs_owned = true;
    for (size_t i = 0; i < n; i++) {
        if (!(d[o->ndirs] = strdup(argv[optind + (int)i])))
            return -1;
        o->ndirs++;
    }
    return 0;
}

/* hk_options_parse with the config file's text given (text != NULL) or read from -c FILE (text NULL). */
static hk_options_result parse(hk_options *o, int argc, char **argv, const char *name, const char *text, size_t len,
                               char *err, size_t errlen)
{
    hk_options scratch; /* the command line alone first: its errors, --help, --version and -c come first */
    set_defaults(&scratch);
    bool cmd[NROWS] = { false }, file[NROWS] = { false }, seen[NROWS];
    hk_options_result res = walk(&scratch, cmd, argc, argv, err, errlen);
    free(scratch.data_dirs.v); /* only its errors and -c are wanted from the first walk */
    if (res != HK_OPTIONS_RUN)
        return res;
    set_defaults(o);
    bool with_file = text || scratch.config_path;
    if (with_file && under_file(o, scratch.config_path, name, text, len, cmd, file, err, errlen) != 0) {
        hk_options_free(o);
        return HK_OPTIONS_ERROR;
    }
    o->dirs_owned = with_file; /* the DIRs: the file's, then the operands */
    bool again[NROWS] = { false };
    res = walk(o, again, argc, argv, err, errlen); /* the same walk: cannot fail now */
    for (size_t i = 0; i < NROWS; i++)
        seen[i] = cmd[i] || file[i];
    if (res == HK_OPTIONS_RUN)
        res = check_whole(o, seen, argc, argv, err, errlen);
    if (res == HK_OPTIONS_RUN && with_file && append_operands(o, argc, argv) != 0) {
        snprintf(err, errlen, "out of memory");
        res = HK_OPTIONS_ERROR;
    }
    if (res == HK_OPTIONS_RUN && o->ndirs == 0) {
        snprintf(err, errlen, "no DIR given: name at least one folder holding .torrent files (an operand, or a "
                 "`dir` key in %s)", scratch.config_path ? scratch.config_path : name);
        res = HK_OPTIONS_ERROR;
    }
    if (res != HK_OPTIONS_RUN)
        hk_options_free(o);
    return res;
}

hk_options_result hk_options_parse(hk_options *o, int argc, char **argv, char *err, size_t errlen)
{
    return parse(o, argc, argv, NULL, NULL, 0, err, errlen);
}

hk_options_result hk_options_parse_text(hk_options *o, int argc, char **argv, const char *name, const char *text,
                                        size_t len, char *err, size_t errlen)
{
    return parse(o, argc, argv, name ? name : "config", text ? text : "", len, err, errlen);
}

void hk_options_free(hk_options *o)
{
    if (o->dirs_owned) {
        for (size_t i = 0; i < o->ndirs; i++)
            free(o->dirs[i]);
        free(o->dirs);
    }
    for (size_t i = 0; i < o->ntexts; i++)
        free(o->texts[i]);
    free(o->texts);
    free(o->data_dirs.v);
    o->data_dirs = (hk_strlist){ NULL, 0 };
    o->dirs = NULL;
    o->ndirs = 0;
    o->dirs_owned = false;
    o->texts = NULL;
    o->ntexts = 0;
}

hk_log_level hk_options_log_level(const hk_options *o)
{
    int lvl = (int)HK_LOG_INFO + o->verbosity;
    if (lvl < (int)HK_LOG_ERROR)
        lvl = HK_LOG_ERROR;
    if (lvl > (int)HK_LOG_TRACE)
        lvl = HK_LOG_TRACE;
    return (hk_log_level)lvl;
}

/* ---- the rows, for the config file (config_file.h) ---- */

size_t hk_options_nrows(void)
{
    return NROWS;
}

const char *hk_options_row_name(size_t i)
{
    return i < NROWS ? rows[i].name : NULL;
}

int hk_options_row_find(const char *key)
{
    char k[64];
    size_t n = strlen(key);
    if (n >= sizeof k)
        return -1;
    for (size_t i = 0; i <= n; i++)
        k[i] = key[i] == '_' ? '-' : (char)tolower((unsigned char)key[i]);
    for (size_t i = 0; i < NROWS; i++)
        if (strcmp(rows[i].name, k) == 0)
            return (int)i;
    return -1;
}

/* A boolean value of the file: 1, 0, or -1 if none. */
static int file_bool(const char *v)
{
    static const char *const yes[] = { "true", "yes", "on", "1" }, *const no[] = { "false", "no", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return 1;
        if (strcasecmp(v, no[i]) == 0)
            return 0;
    }
    return -1;
}

/* A copy of value the options keep (freed by hk_options_free), or NULL. */
static char *keep_text(hk_options *o, const char *value)
{
    char **t = realloc(o->texts, (o->ntexts + 1) * sizeof *t);
    if (!t)
        return NULL;
    o->texts = t;
    char *copy = strdup(value);
    if (copy)
        o->texts[o->ntexts++] = copy;
    return copy;
}

int hk_options_row_set(hk_options *o, size_t i, const char *value, bool *given, char *err, size_t errlen)
{
    const opt_row *r = &rows[i];
    *given = false;
    char msg[512];
    uint64_t n;
    int b;
    switch (r->kind) {
    case OPT_HELP:
    case OPT_VERSION:
        snprintf(err, errlen, "%s: works on the command line only", r->name);
        return -1;
    case OPT_FLAG:
    case OPT_MARK:
        if ((b = file_bool(value)) < 0) {
            snprintf(err, errlen, "%s: '%s' is not a boolean (true, false, yes, no, on, off, 1, 0)", r->name, value);
            return -1;
        }
        if (b && r->kind == OPT_FLAG)
            apply(o, r, NULL, msg, sizeof msg);
        *given = b;
        return 0;
    case OPT_STEP: /* verbose = N: as N times -v */
        if (hk_parse_uint(r->name, value, 0, 16, &n, err, errlen) != 0)
            return -1;
        for (uint64_t k = 0; k < n; k++)
            apply(o, r, NULL, msg, sizeof msg);
        *given = n > 0;
        return 0;
    case OPT_TEXT:
    case OPT_LIST:
        if (strcmp(r->name, "config") == 0) {
            snprintf(err, errlen, "config: works on the command line only (a config file does not name another)");
            return -1;
        }
        if (!(value = keep_text(o, value))) {
            snprintf(err, errlen, "%s: out of memory", r->name);
            return -1;
        }
        break;
    default:
        break;
    }
    if (apply(o, r, value, msg, sizeof msg) != HK_OPTIONS_RUN) {
        snprintf(err, errlen, "%s", strncmp(msg, "--", 2) == 0 ? msg + 2 : msg); /* the key, not the option */
        return -1;
    }
    *given = true;
    return 0;
}

bool hk_options_row_differs(const hk_options *a, const hk_options *b, size_t i)
{
    const opt_row *r = &rows[i];
    if (r->width == 0)
        return false;
    const void *x = (const char *)a + r->at, *y = (const char *)b + r->at;
    if (r->kind == OPT_TEXT) {
        const char *s = *(const char *const *)x, *t = *(const char *const *)y;
        return (s == NULL) != (t == NULL) || (s && strcmp(s, t) != 0);
    }
    if (r->kind == OPT_LIST) {
        const hk_strlist *s = x, *t = y;
        if (s->n != t->n)
            return true;
        for (size_t k = 0; k < s->n; k++)
            if (strcmp(s->v[k], t->v[k]) != 0)
                return true;
        return false;
    }
    return memcmp(x, y, r->width) != 0;
}

bool hk_options_row_repeatable(size_t i)
{
    return i < NROWS && (rows[i].kind == OPT_LIST || strcmp(rows[i].name, "dht-bootstrap") == 0);
}
