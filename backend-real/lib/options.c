/* options: strict parsing of hekate's command line (see options.h). */
#include "options.h"

#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "store.h"

enum {
    OPT_HANDSHAKE = 1000,
    OPT_IDLE,
    OPT_UNCHOKED_IDLE,
    OPT_SEND_STALL,
    OPT_MAX_WAIT,
    OPT_KEEPALIVE,
    OPT_MAX_PEERS,
    OPT_REQQ,
    OPT_MAX_BLOCK,
    OPT_BIND,
    OPT_MAX_MAPPED,
    OPT_MAX_OPEN_FILES,
    OPT_DISK_THREADS,
    OPT_ANNOUNCE_INTERVAL,
    OPT_ANNOUNCE_RATE,
    OPT_RESCAN,
};

static const struct option long_options[] = {
    { "port", required_argument, NULL, 'p' },
    { "max-unchoked", required_argument, NULL, 'N' },
    { "credit", required_argument, NULL, 'C' },
    { "slice", required_argument, NULL, 'T' },
    { "no-trackers", no_argument, NULL, 't' },
    { "ipv4-only", no_argument, NULL, '4' },
    { "ipv6-only", no_argument, NULL, '6' },
    { "list", no_argument, NULL, 'l' },
    { "verbose", no_argument, NULL, 'v' },
    { "quiet", no_argument, NULL, 'q' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { "handshake-timeout", required_argument, NULL, OPT_HANDSHAKE },
    { "idle-timeout", required_argument, NULL, OPT_IDLE },
    { "unchoked-idle-timeout", required_argument, NULL, OPT_UNCHOKED_IDLE },
    { "send-stall-timeout", required_argument, NULL, OPT_SEND_STALL },
    { "max-wait", required_argument, NULL, OPT_MAX_WAIT },
    { "keepalive-interval", required_argument, NULL, OPT_KEEPALIVE },
    { "max-peers", required_argument, NULL, OPT_MAX_PEERS },
    { "reqq", required_argument, NULL, OPT_REQQ },
    { "max-block", required_argument, NULL, OPT_MAX_BLOCK },
    { "bind", required_argument, NULL, OPT_BIND },
    { "max-mapped", required_argument, NULL, OPT_MAX_MAPPED },
    { "max-open-files", required_argument, NULL, OPT_MAX_OPEN_FILES },
    { "disk-threads", required_argument, NULL, OPT_DISK_THREADS },
    { "announce-interval", required_argument, NULL, OPT_ANNOUNCE_INTERVAL },
    { "announce-rate", required_argument, NULL, OPT_ANNOUNCE_RATE },
    { "rescan", required_argument, NULL, OPT_RESCAN },
    { NULL, 0, NULL, 0 },
};

void hk_options_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "Usage: %s [OPTION]... DIR...\n"
            "Seed every torrent found below each DIR: each *.torrent file (searched recursively; symbolic links are\n"
            "not followed) whose data lies beside it, complete and of the right size. Upload only.\n"
            "\n"
            "  -p, --port=PORT             TCP port to listen on (default 6881; 0: any free port)\n"
            "  -4, --ipv4-only             listen on IPv4 only\n"
            "  -6, --ipv6-only             listen on IPv6 only (default: both, on one dual-stack socket)\n"
            "      --bind=ADDR             listen on this numeric address only\n"
            "  -N, --max-unchoked=N        peers served at once (default 50)\n"
            "      --max-peers=N           connections at once (default 10 x max-unchoked)\n"
            "  -C, --credit=BYTES          bytes a peer may take per turn (default 1M; suffixes K, M, G)\n"
            "  -T, --slice=SECONDS         longest turn of a peer (default 300; 0: no limit)\n"
            "  -t, --no-trackers           do not contact trackers\n"
            "  -l, --list                  list what would be served and what is rejected, then exit\n"
            "      --rescan=SECONDS        rescan every DIR this often (default 0: only on SIGHUP); with it,\n"
            "                              hekate also starts when there is nothing to serve yet\n"
            "  -v, --verbose               more messages (repeat for more)\n"
            "  -q, --quiet                 fewer messages (repeat for fewer)\n"
            "\n"
            "Timeouts, in seconds (fractions allowed):\n"
            "      --handshake-timeout=S   handshake not complete (default 10)\n"
            "      --idle-timeout=S        nothing received from the peer (default 120)\n"
            "      --unchoked-idle-timeout=S  served peer asks for nothing: choke it (default 30)\n"
            "      --send-stall-timeout=S  data queued but the peer does not read (default 60)\n"
            "      --max-wait=S            longest wait in line for a turn (default 0: no limit)\n"
            "      --keepalive-interval=S  send a keep-alive after this much silence (default 90)\n"
            "\n"
            "Requests and resources:\n"
            "      --reqq=N                requests queued per peer (default 256)\n"
            "      --max-block=BYTES       largest block a peer may request (default 16K, at most 128K)\n"
            "      --max-mapped=BYTES      address space for mapped data files (default 16G)\n"
            "      --max-open-files=N      data files kept open (default 1024)\n"
            "      --disk-threads=N        threads reading from disk (default 8)\n"
            "\n"
            "Trackers (HTTP, HTTPS, UDP; every tier of announce-list):\n"
            "      --announce-interval=S   interval until a tracker gives one, and the window the first announces\n"
            "                              of many torrents are spread over (default 1800)\n"
            "      --announce-rate=N       first announces per second when few torrents are added (default 10)\n"
            "\n"
            "  -h, --help                  show this help and exit\n"
            "  -V, --version               show the version and exit\n"
            "\n"
            "Signals: SIGHUP rescans every DIR: new torrents are added, torrents whose .torrent file is gone or holds\n"
            "another torrent are removed (their peers disconnected, `stopped` announced), failed ones are tried\n"
            "again; the others are untouched. SIGINT or SIGTERM stop the seeder cleanly.\n"
            "\n"
            "Exit status: 0 when at least one torrent was served (or listed), 1 when nothing could be served or\n"
            "the port could not be bound, 2 on a command-line error.\n",
            prog);
}

/* ---- number parsing ---- */

/* Reads decimal digits at *p: 0, -1 if there is none, -2 on overflow (*p is past the digits in both cases). */
static int parse_digits(const char **p, uint64_t *v)
{
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return -1;
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
    return overflow ? -2 : 0;
}

int hk_parse_uint(const char *what, const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err,
                  size_t errlen)
{
    const char *p = s;
    uint64_t v;
    int rc = parse_digits(&p, &v);
    if (rc == -1 || *p != '\0') {
        snprintf(err, errlen, "%s: '%s' is not a number (expected digits only, %" PRIu64 "..%" PRIu64 ")", what, s,
                 min, max);
        return -1;
    }
    if (rc == -2 || v < min || v > max) {
        snprintf(err, errlen, "%s: %s is out of range (%" PRIu64 "..%" PRIu64 ")", what, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int hk_parse_size(const char *what, const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err,
                  size_t errlen)
{
    const char *p = s;
    uint64_t v;
    int rc = parse_digits(&p, &v);
    if (rc == -1)
        goto bad;
    unsigned shift = 0;
    if (*p) {
        switch (*p) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        case 't': case 'T': shift = 40; break;
        default: goto bad;
        }
        p++;
        if (strcmp(p, "iB") == 0 || strcmp(p, "B") == 0)
            p += strlen(p);
        if (*p)
            goto bad;
    }
    if (rc == -2 || (shift && v > (UINT64_MAX >> shift)))
        goto range;
    v <<= shift;
    if (v < min || v > max)
        goto range;
    *out = v;
    return 0;
bad:
    snprintf(err, errlen, "%s: '%s' is not a size (expected digits with an optional K, M, G or T suffix)", what, s);
    return -1;
range:
    snprintf(err, errlen, "%s: %s is out of range (%" PRIu64 "..%" PRIu64 " bytes)", what, s, min, max);
    return -1;
}

int hk_parse_seconds(const char *what, const char *s, hk_time min, hk_time max, hk_time *out, char *err,
                     size_t errlen)
{
    const char *p = s;
    uint64_t whole, frac = 0;
    int rc = parse_digits(&p, &whole);
    if (rc == -1)
        goto bad;
    if (*p == '.') {
        p++;
        unsigned digits = 0;
        uint64_t scale = HK_NS_PER_SEC;
        if (*p < '0' || *p > '9')
            goto bad;
        while (*p >= '0' && *p <= '9') {
            if (++digits > 9) {
                snprintf(err, errlen, "%s: '%s' has more than 9 decimals", what, s);
                return -1;
            }
            scale /= 10;
            frac += (uint64_t)(*p - '0') * scale;
            p++;
        }
    }
    if (*p)
        goto bad;
    if (rc == -2 || whole > (UINT64_MAX - frac) / HK_NS_PER_SEC)
        goto range;
    hk_time v = whole * HK_NS_PER_SEC + frac;
    if (v < min || v > max)
        goto range;
    *out = v;
    return 0;
bad:
    snprintf(err, errlen, "%s: '%s' is not a number of seconds (e.g. 10 or 2.5)", what, s);
    return -1;
range:
    snprintf(err, errlen, "%s: %s is out of range (%.9g..%.9g seconds)", what, s, (double)min / 1e9,
             (double)max / 1e9);
    return -1;
}

/* ---- the command line ---- */

#define MAX_SECONDS HK_SECONDS(7 * 86400) /* a week: longer timeouts are mistakes */

hk_options_result hk_options_parse(hk_options *o, int argc, char **argv, char *err, size_t errlen)
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
    bool v4 = false, v6 = false, max_peers_set = false;
    uint64_t u;
    hk_time t;

    optind = 0; /* GNU: full re-initialisation, so the parser can run again */
    opterr = 0;
    for (;;) {
        int idx = -1;
        int c = getopt_long(argc, argv, ":p:N:C:T:t46lvqhV", long_options, &idx);
        if (c == -1)
            break;
        const char *what = idx >= 0 ? long_options[idx].name : "?";
        switch (c) {
        case 'p':
            if (hk_parse_uint("--port", optarg, 0, 65535, &u, err, errlen) != 0)
                return HK_OPTIONS_ERROR;
            o->port = (uint16_t)u;
            break;
        case 'N':
            if (hk_parse_uint("--max-unchoked", optarg, 1, 10000, &u, err, errlen) != 0)
                return HK_OPTIONS_ERROR;
            o->cfg.max_unchoked = (uint32_t)u;
            break;
        case 'C':
            if (hk_parse_size("--credit", optarg, 16 * 1024, 1ull << 30, &o->cfg.credit, err, errlen) != 0)
                return HK_OPTIONS_ERROR;
            break;
        case 'T':
            if (hk_parse_seconds("--slice", optarg, 0, MAX_SECONDS, &o->cfg.slice, err, errlen) != 0)
                return HK_OPTIONS_ERROR;
            break;
        case 't': o->no_trackers = true; break;
        case '4': v4 = true; break;
        case '6': v6 = true; break;
        case 'l': o->list = true; break;
        case 'v': o->verbosity++; break;
        case 'q': o->verbosity--; break;
        case 'h': return HK_OPTIONS_HELP;
        case 'V': return HK_OPTIONS_VERSION;
        case OPT_HANDSHAKE:
        case OPT_IDLE:
        case OPT_UNCHOKED_IDLE:
        case OPT_SEND_STALL:
        case OPT_MAX_WAIT:
        case OPT_KEEPALIVE: {
            char opt[64];
            snprintf(opt, sizeof opt, "--%s", what);
            if (hk_parse_seconds(opt, optarg, 0, MAX_SECONDS, &t, err, errlen) != 0)
                return HK_OPTIONS_ERROR;
            if (c == OPT_HANDSHAKE)
                o->cfg.handshake_timeout = t;
            else if (c == OPT_IDLE)
                o->cfg.idle_timeout = t;
            else if (c == OPT_UNCHOKED_IDLE)
                o->cfg.unchoked_idle_timeout = t;
            else if (c == OPT_SEND_STALL)
                o->cfg.send_stall_timeout = t;
            else if (c == OPT_MAX_WAIT)
                o->cfg.max_wait = t;
            else
                o->cfg.keepalive_interval = t;
            break;
        }
        case OPT_MAX_PEERS:
            if (hk_parse_uint("--max-peers", optarg, 1, 1000000, &u, err, errlen) != 0)
                return HK_OPTIONS_ERROR;
            o->cfg.max_peers = (uint32_t)u;
            max_peers_set = true;
            break;
        case OPT_REQQ:
            if (hk_parse_uint("--reqq", optarg, 1, 65535, &u, err, errlen) != 0)
                return HK_OPTIONS_ERROR;
            o->cfg.reqq = (uint32_t)u;
            break;
        case OPT_MAX_BLOCK:
            if (hk_parse_size("--max-block", optarg, 16 * 1024, 128 * 1024, &u, err, errlen) != 0)
                return HK_OPTIONS_ERROR;
            o->cfg.max_block = (uint32_t)u;
            break;
        case OPT_BIND:
            o->bind_addr = optarg;
            break;
        case OPT_MAX_MAPPED:
            if (hk_parse_size("--max-mapped", optarg, 1ull << 20, 1ull << 47, &o->max_mapped, err, errlen) != 0)
                return HK_OPTIONS_ERROR;
            break;
        case OPT_MAX_OPEN_FILES:
            if (hk_parse_uint("--max-open-files", optarg, 1, 1000000, &u, err, errlen) != 0)
                return HK_OPTIONS_ERROR;
            o->max_open_files = (uint32_t)u;
            break;
        case OPT_DISK_THREADS:
            if (hk_parse_uint("--disk-threads", optarg, 1, 256, &u, err, errlen) != 0)
                return HK_OPTIONS_ERROR;
            o->disk_threads = (uint32_t)u;
            break;
        case OPT_ANNOUNCE_INTERVAL:
            if (hk_parse_seconds("--announce-interval", optarg, HK_SECONDS(1), HK_SECONDS(604800),
                                 &o->announce_interval, err, errlen) != 0)
                return HK_OPTIONS_ERROR;
            break;
        case OPT_ANNOUNCE_RATE:
            if (hk_parse_uint("--announce-rate", optarg, 1, 1000000, &u, err, errlen) != 0)
                return HK_OPTIONS_ERROR;
            o->announce_rate = (uint32_t)u;
            break;
        case OPT_RESCAN:
            if (hk_parse_seconds("--rescan", optarg, 0, MAX_SECONDS, &o->rescan_interval, err, errlen) != 0)
                return HK_OPTIONS_ERROR;
            if (o->rescan_interval != 0 && o->rescan_interval < HK_SECONDS(1)) {
                snprintf(err, errlen, "--rescan: %s is too short (0 to turn it off, else at least 1 second)",
                         optarg);
                return HK_OPTIONS_ERROR;
            }
            break;
        case ':': {
            const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
            snprintf(err, errlen, "option %s needs a value", arg);
            return HK_OPTIONS_ERROR;
        }
        default: {
            const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
            if (strncmp(arg, "--", 2) == 0)
                snprintf(err, errlen, "unknown option or unexpected value: %s", arg);
            else if (optopt > 0 && optopt < 128)
                snprintf(err, errlen, "unknown option -%c", optopt);
            else
                snprintf(err, errlen, "unknown option %s", arg);
            return HK_OPTIONS_ERROR;
        }
        }
    }
    if (v4 && v6) {
        snprintf(err, errlen, "-4 (--ipv4-only) and -6 (--ipv6-only) exclude each other");
        return HK_OPTIONS_ERROR;
    }
    o->family = v4 ? HK_FAMILY_V4 : v6 ? HK_FAMILY_V6 : HK_FAMILY_ANY;
    if (!max_peers_set) {
        uint64_t mp = 10ull * o->cfg.max_unchoked;
        o->cfg.max_peers = (uint32_t)(mp > 1000000 ? 1000000 : mp);
    }
    if (o->cfg.max_peers < o->cfg.max_unchoked) {
        snprintf(err, errlen, "--max-peers (%u) must be at least --max-unchoked (%u)", o->cfg.max_peers,
                 o->cfg.max_unchoked);
        return HK_OPTIONS_ERROR;
    }
    o->cfg.listen_port = o->port;
    const char *bad = hk_config_check(&o->cfg);
    if (bad) {
        snprintf(err, errlen, "invalid settings: %s", bad);
        return HK_OPTIONS_ERROR;
    }
    if (optind >= argc) {
        snprintf(err, errlen, "no DIR given: name at least one folder holding .torrent files");
        return HK_OPTIONS_ERROR;
    }
    o->dirs = argv + optind;
    o->ndirs = (size_t)(argc - optind);
    return HK_OPTIONS_RUN;
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
