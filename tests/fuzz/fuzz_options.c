/* Fuzz target for hekate's command line (backend-real/lib/options.c): the option table, getopt_long's handling of
 * short, long, clustered and abbreviated options, the strict number parsers and the rules between options.
 *
 * Input: the arguments after argv[0], separated by NUL bytes (at most 64; each one is its own allocation, so a read
 * past an argument is caught). The parse must return one of its four results and never exit or print:
 *   RUN      at least one DIR, every DIR one of the operands given, the seeder configuration accepted by
 *            hk_config_check, --max-peers >= --max-unchoked, --rescan 0 or at least 1 s, the family one of three;
 *   ERROR    a message (NUL-terminated, not empty) in err;
 *   HELP / VERSION  nothing else to check.
 * Each argument is also handed to the three number parsers on their widest range: what they accept must be what the
 * text says (digits only for a count, the value printed back equals the digits; a size is the count shifted by its
 * suffix; seconds are whole * 10^9 + the decimals). The parse runs twice: the same result (getopt_long's global state
 * is reset by the parser). */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 64

/* The value of the leading decimal digits of s, their count in *n, and whether it passes 64 bits (*too_big). */
static uint64_t leading_digits(const char *s, size_t *n, int *too_big)
{
    uint64_t v = 0;
    size_t i = 0;
    *too_big = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++)
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
            *too_big = 1;
    *n = i;
    return v;
}

/* What the number parsers accept agrees with an independent reading of the text. */
static void check_numbers(const char *s)
{
    char err[256];
    uint64_t v = 0;
    size_t n;
    int many;
    if (hk_parse_uint("--x", s, 0, UINT64_MAX, &v, err, sizeof err) == 0) {
        uint64_t ref = leading_digits(s, &n, &many);
        if (s[n] != '\0' || n == 0)
            abort(); /* accepted something other than digits */
        if (many || ref != v)
            abort();
        char back[32];
        snprintf(back, sizeof back, "%" PRIu64, v);
        const char *sig = s;
        while (*sig == '0' && sig[1])
            sig++;
        if (strcmp(back, sig) != 0)
            abort(); /* the value is not the digits (overflow let through?) */
    } else if (strnlen(err, sizeof err) == 0 || strnlen(err, sizeof err) == sizeof err) {
        abort();
    }
    if (hk_parse_size("--x", s, 0, UINT64_MAX, &v, err, sizeof err) == 0) {
        uint64_t ref = leading_digits(s, &n, &many);
        unsigned shift = 0;
        switch (s[n]) {
        case '\0': break;
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        case 't': case 'T': shift = 40; break;
        default: abort();
        }
        if (n == 0 || many || (shift && ref > (UINT64_MAX >> shift)) || v != ref << shift)
            abort();
    }
    hk_time t = 0;
    if (hk_parse_seconds("--x", s, 0, UINT64_MAX, &t, err, sizeof err) == 0) {
        uint64_t whole = leading_digits(s, &n, &many);
        if (n == 0 || many)
            abort();
        uint64_t frac = 0, scale = HK_NS_PER_SEC;
        const char *p = s + n;
        if (*p == '.')
            for (p++; *p >= '0' && *p <= '9'; p++) {
                scale /= 10;
                if (scale == 0)
                    abort(); /* more than 9 decimals accepted */
                frac += (uint64_t)(*p - '0') * scale;
            }
        if (*p != '\0' || whole > (UINT64_MAX - frac) / HK_NS_PER_SEC || t != whole * HK_NS_PER_SEC + frac)
            abort();
    }
}

static bool is_operand(char *const *args, int nargs, const char *p)
{
    for (int i = 0; i < nargs; i++)
        if (args[i] == p)
            return true;
    return false;
}

static void check_result(hk_options_result res, const hk_options *o, char *const *args, int nargs,
                         const char *err, size_t errlen)
{
    switch (res) {
    case HK_OPTIONS_RUN:
        if (o->ndirs == 0 || !o->dirs)
            abort();
        for (size_t i = 0; i < o->ndirs && !o->config_path; i++) /* -c FILE: its DIRs first (fuzz_config) */
            if (!is_operand(args, nargs, o->dirs[i]))
                abort();
        if (hk_config_check(&o->cfg) != NULL || o->cfg.max_peers < o->cfg.max_unchoked)
            abort();
        if (o->cfg.listen_port != o->port)
            abort();
        if (o->rescan_interval != 0 && o->rescan_interval < HK_SECONDS(1))
            abort();
        if (o->family != HK_FAMILY_ANY && o->family != HK_FAMILY_V4 && o->family != HK_FAMILY_V6)
            abort();
        (void)hk_options_log_level(o);
        break;
    case HK_OPTIONS_ERROR: {
        size_t n = strnlen(err, errlen);
        if (n == 0 || n == errlen)
            abort();
        break;
    }
    case HK_OPTIONS_HELP:
    case HK_OPTIONS_VERSION:
        break;
    default:
        abort();
    }
}

/* True if p points into one of the arguments (a value given as "--bind=ADDR" or "-pVALUE" lies inside it). */
static bool inside_args(char *const *args, int nargs, const char *p)
{
    for (int i = 0; i < nargs; i++) {
        size_t n = strlen(args[i]);
        if (p >= args[i] && p <= args[i] + n)
            return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *args[MAX_ARGS + 1]; /* what was allocated (getopt_long permutes argv, not this) */
    char *argv[MAX_ARGS + 2];
    int nargs = 0;
    args[nargs++] = strdup("hekate");
    for (size_t at = 0; at <= size && nargs < MAX_ARGS; nargs++) {
        const uint8_t *end = memchr(data + at, 0, size - at);
        size_t len = end ? (size_t)(end - (data + at)) : size - at;
        args[nargs] = malloc(len + 1);
        memcpy(args[nargs], data + at, len);
        args[nargs][len] = '\0';
        at += len + 1;
    }
    for (int i = 1; i < nargs; i++)
        check_numbers(args[i]);

    hk_options_result first = HK_OPTIONS_ERROR;
    hk_options o;
    for (int round = 0; round < 2; round++) {
        memcpy(argv, args, (size_t)nargs * sizeof *argv);
        argv[nargs] = NULL;
        char err[512];
        memset(err, 0, sizeof err);
        hk_options_result res = hk_options_parse(&o, nargs, argv, err, sizeof err);
        check_result(res, &o, args, nargs, err, sizeof err);
        if (res == HK_OPTIONS_RUN && o.bind_addr && !o.config_path && !inside_args(args, nargs, o.bind_addr))
            abort();
        if (res == HK_OPTIONS_RUN)
            hk_options_free(&o);
        if (round == 0)
            first = res;
        else if (res != first)
            abort(); /* a second parse of the same arguments decides otherwise: state left behind */
    }
    for (int i = 0; i < nargs; i++)
        free(args[i]);
    return 0;
}
