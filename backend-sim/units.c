/* units: owns the parsing of quantities with units for scenario files (see units.h). */
#include "units.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Splits "  12.5 MiB/s " into a number and a unit suffix; rejects anything else. */
static int split_number(const char *s, double *num, const char **unit, size_t *unit_len)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0' || *s == '-' || *s == '+')
        return -1;
    if (!isdigit((unsigned char)*s) && *s != '.')
        return -1;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v) || v < 0)
        return -1;
    while (*end == ' ' || *end == '\t')
        end++;
    const char *u = end;
    size_t n = strlen(u);
    while (n > 0 && (u[n - 1] == ' ' || u[n - 1] == '\t'))
        n--;
    *num = v;
    *unit = u;
    *unit_len = n;
    return 0;
}

static bool unit_is(const char *u, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(u, name, n) == 0;
}

int units_u64(const char *s, uint64_t *out)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (!isdigit((unsigned char)*s))
        return -1;
    uint64_t v = 0;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s != '\0')
        return -1;
    *out = v;
    return 0;
}

int units_double(const char *s, double *out)
{
    double v;
    const char *u;
    size_t n;
    if (split_number(s, &v, &u, &n) < 0 || n != 0)
        return -1;
    *out = v;
    return 0;
}

static int to_u64(double v, uint64_t *out)
{
    if (!(v >= 0) || v >= 18446744073709551616.0)
        return -1;
    /* llround stops at 2^63 (long long); from 2^53 up a double is a whole number already */
    *out = v < 9007199254740992.0 ? (uint64_t)llround(v) : (uint64_t)v;
    return 0;
}

typedef struct unit_factor { const char *name; double f; } unit_factor;

/* The factor of the unit u[0..n) in a table, or -1 if the table has no such unit. */
static int unit_lookup(const unit_factor *tab, size_t count, const char *u, size_t n, double *f)
{
    for (size_t i = 0; i < count; i++)
        if (unit_is(u, n, tab[i].name)) {
            *f = tab[i].f;
            return 0;
        }
    return -1;
}

static int size_factor(const char *u, size_t n, double *f)
{
    static const unit_factor tab[] = {
        {"", 1},        {"B", 1},          {"kB", 1e3},       {"KB", 1e3},        {"MB", 1e6},
        {"GB", 1e9},    {"TB", 1e12},      {"KiB", 1024.0},   {"MiB", 1048576.0}, {"GiB", 1073741824.0},
        {"TiB", 1099511627776.0},
    };
    return unit_lookup(tab, sizeof tab / sizeof tab[0], u, n, f);
}

static int time_factor(const char *u, size_t n, double *f)
{
    static const unit_factor tab[] = {
        {"", 1e9}, {"s", 1e9}, {"ms", 1e6}, {"us", 1e3}, {"ns", 1}, {"min", 60e9}, {"h", 3600e9},
    };
    return unit_lookup(tab, sizeof tab / sizeof tab[0], u, n, f);
}

static int bw_factor(const char *u, size_t n, double *f)
{
    static const unit_factor tab[] = {
        {"", 1},           {"B/s", 1},           {"kB/s", 1e3},          {"KB/s", 1e3},
        {"MB/s", 1e6},     {"GB/s", 1e9},        {"KiB/s", 1024.0},      {"MiB/s", 1048576.0},
        {"GiB/s", 1073741824.0},                 {"bit/s", 1.0 / 8},     {"kbit/s", 1e3 / 8},
        {"Mbit/s", 1e6 / 8},                     {"Gbit/s", 1e9 / 8},
    };
    return unit_lookup(tab, sizeof tab / sizeof tab[0], u, n, f);
}

typedef int (*factor_fn)(const char *u, size_t n, double *f);

/* A number with a unit of one kind, scaled by the unit's factor. */
static int scaled(const char *s, factor_fn factor, double *out)
{
    double v, f;
    const char *u;
    size_t n;
    if (split_number(s, &v, &u, &n) < 0 || factor(u, n, &f) < 0 || !isfinite(v * f))
        return -1; /* a finite number times its unit may still overflow: "1e300GB/s" */
    *out = v * f;
    return 0;
}

int units_size(const char *s, uint64_t *out)
{
    double v;
    return scaled(s, size_factor, &v) < 0 ? -1 : to_u64(v, out);
}

int units_time(const char *s, uint64_t *out_ns)
{
    double v;
    return scaled(s, time_factor, &v) < 0 ? -1 : to_u64(v, out_ns);
}

int units_bandwidth(const char *s, double *out_bps)
{
    return scaled(s, bw_factor, out_bps);
}

int units_bool(const char *s, bool *out)
{
    static const char *yes[] = {"yes", "true", "on", "1"}, *no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int one_value(const char *s, char kind, double *out)
{
    uint64_t u;
    switch (kind) {
    case 's':
        if (units_size(s, &u) < 0)
            return -1;
        *out = (double)u;
        return 0;
    case 't':
        if (units_time(s, &u) < 0)
            return -1;
        *out = (double)u / 1e9;
        return 0;
    case 'b':
        return units_bandwidth(s, out);
    default:
        return -1;
    }
}

int units_range_parse(const char *s, char kind, units_range *out)
{
    const char *dots = strstr(s, "..");
    units_range r;
    if (!dots) {
        if (one_value(s, kind, &r.lo) < 0)
            return -1;
        r.hi = r.lo;
    } else {
        char a[128];
        size_t alen = (size_t)(dots - s);
        if (alen >= sizeof a)
            return -1;
        memcpy(a, s, alen);
        a[alen] = '\0';
        if (one_value(a, kind, &r.lo) < 0 || one_value(dots + 2, kind, &r.hi) < 0 || r.hi < r.lo)
            return -1;
    }
    *out = r;
    return 0;
}
