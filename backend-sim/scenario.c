/* scenario: owns the scenario file format: a pre-scan of the section headers (duplicates, unknown sections, line
 * length), the parse of every section through libinih and the key tables of scenario_keys.c, --set overrides and
 * ${SECTION.KEY} references, and the cross-checks (see scenario.h and docs/scenarios.md). */
#include "scenario.h"
#include "scenario_keys.h"

#include <assert.h>
#include <ctype.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE (1u << 20)
#define MAX_LINE 190
#define MAX_PROFILES 64

typedef struct parse_ctx {
    scenario *sc;
    char *err;
    size_t errlen;
    bool failed;
    char (*seen)[96];   /* "section\x1fkey" already given */
    size_t nseen, capseen;
    scenario_entry *entries;     /* every key = value of the file, in order (for ${section.key} references) */
    size_t nentries, capentries;
    scenario_entry *sets;        /* --set overrides */
    size_t nsets;
    bool *set_used;
    bool in_sets;                /* applying the overrides of keys the file does not give */
} parse_ctx;

static void vfail(parse_ctx *c, const char *section, const char *key, const char *fmt, va_list ap)
{
    if (c->failed)
        return;
    c->failed = true;
    char what[256];
    vsnprintf(what, sizeof what, fmt, ap);
    if (key)
        snprintf(c->err, c->errlen, "[%s] %s: %s", section, key, what);
    else
        snprintf(c->err, c->errlen, "[%s]: %s", section, what);
}

static void fail(parse_ctx *c, const char *section, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(parse_ctx *c, const char *section, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, section, key, fmt, ap);
    va_end(ap);
}

/* Returns ok; when it is false, records the error (the first one only). */
static bool check(parse_ctx *c, bool ok, const char *section, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static bool check(parse_ctx *c, bool ok, const char *section, const char *key, const char *fmt, ...)
{
    if (!ok) {
        va_list ap;
        va_start(ap, fmt);
        vfail(c, section, key, fmt, ap);
        va_end(ap);
    }
    return ok;
}

#define COUNT(a) (int)(sizeof(a) / sizeof((a)[0]))

/* ---- value helpers: each returns false after recording an error ---- */

/* A whole number: unit 'i' plain, 's' a size with units, 't' a duration (ns; at most 10 years), in [lo, hi]. */
static bool get_int(parse_ctx *c, const char *sec, const char *key, const char *v, char unit, uint64_t lo,
                    uint64_t hi, uint64_t *out)
{
    uint64_t x = 0;
    int rc = unit == 's' ? units_size(v, &x) : unit == 't' ? units_time(v, &x) : units_u64(v, &x);
    bool ok = rc == 0 && x >= lo && x <= hi;
    if (ok)
        *out = x;
    if (unit == 't')
        return check(c, ok, sec, key, "\"%s\" is not a duration (units: ns, us, ms, s, min, h; bare number = s)", v);
    if (unit == 's')
        return check(c, ok, sec, key,
                     "\"%s\" is not a size in [%llu, %llu] bytes (units: B, KiB, MiB, GiB, kB, MB, GB)", v,
                     (unsigned long long)lo, (unsigned long long)hi);
    return check(c, ok, sec, key, "\"%s\" is not an integer in [%llu, %llu]", v, (unsigned long long)lo,
                 (unsigned long long)hi);
}

/* A real number: a bandwidth (B/s, with units) when bw, else a plain number, in [lo, hi]. */
static bool get_real(parse_ctx *c, const char *sec, const char *key, const char *v, bool bw, double lo, double hi,
                     double *out)
{
    double x = 0;
    bool ok = (bw ? units_bandwidth(v, &x) : units_double(v, &x)) == 0 && x >= lo && x <= hi;
    if (ok)
        *out = x;
    if (bw)
        return check(c, ok, sec, key, "\"%s\" is not a bandwidth >= 1 B/s (units: B/s, kB/s, MB/s, GB/s, KiB/s, "
                                      "MiB/s, kbit/s, Mbit/s, Gbit/s)", v);
    return check(c, ok, sec, key, "\"%s\" is not a number in [%g, %g]", v, lo, hi);
}

static bool get_bool(parse_ctx *c, const char *sec, const char *key, const char *v, bool *out)
{
    return check(c, units_bool(v, out) == 0, sec, key, "\"%s\" is not yes/no", v);
}

static bool get_range(parse_ctx *c, const char *sec, const char *key, const char *v, char kind, double min,
                      units_range *out)
{
    units_range r = {0, 0};
    bool ok = units_range_parse(v, kind, &r) == 0 && r.lo >= min;
    if (ok)
        *out = r;
    return check(c, ok, sec, key, "\"%s\" is not a %s or a range A..B (A <= B, A >= %g)", v,
                 kind == 'b' ? "bandwidth" : kind == 't' ? "duration" : "size", min);
}

static bool get_enum(parse_ctx *c, const char *sec, const char *key, const char *v, const char *const *names,
                     int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return true;
        }
    char list[256] = "";
    for (int i = 0; i < n; i++) {
        strncat(list, names[i], sizeof list - strlen(list) - 1);
        if (i + 1 < n)
            strncat(list, ", ", sizeof list - strlen(list) - 1);
    }
    fail(c, sec, key, "\"%s\" is not one of: %s", v, list);
    return false;
}

/* Every enum of a scenario is stored as an int (what K_ENUM writes). */
_Static_assert(sizeof(sim_arrival) == sizeof(int) && sizeof(sim_behaviour) == sizeof(int) &&
                   sizeof(sim_strategy) == sizeof(int) && sizeof(sim_departure) == sizeof(int) &&
                   sizeof(sim_invalid) == sizeof(int) && sizeof(sim_ref_timeout) == sizeof(int) &&
                   sizeof(hk_log_level) == sizeof(int) && sizeof(sim_address) == sizeof(int) &&
                   sizeof(sim_encryption) == sizeof(int) && sizeof(hk_encryption) == sizeof(int),
               "scenario enums are int-sized");

/* Stores a whole number as the field of an integer kind holds it. */
static void store_int(key_kind kind, char *dst, uint64_t x)
{
    switch (kind) {
    case K_U32:
    case K_SIZE32: *(uint32_t *)(void *)dst = (uint32_t)x; break;
    case K_LIMIT: *(int64_t *)(void *)dst = (int64_t)x; break;
    case K_SECONDS: *(double *)(void *)dst = (double)x / 1e9; break;
    default: *(uint64_t *)(void *)dst = x; break; /* K_SIZE, K_TIME (hk_time) */
    }
}

/* Reads value v of key spec k into the record rec; false after recording an error. */
static bool apply(parse_ctx *c, const char *sec, const key_spec *k, const char *v, void *rec)
{
    char *dst = (char *)rec + k->off;
    uint64_t x = 0;
    switch (k->kind) {
    case K_U32:
    case K_LIMIT:
    case K_SIZE:
    case K_SIZE32:
    case K_TIME:
    case K_SECONDS:
        if (!get_int(c, sec, k->name, v, k->unit, k->lo, k->hi, &x))
            return false;
        store_int(k->kind, dst, x);
        return true;
    case K_BW: return get_real(c, sec, k->name, v, true, 1, 1e13, (double *)(void *)dst);
    case K_DOUBLE: return get_real(c, sec, k->name, v, false, k->dlo, k->dhi, (double *)(void *)dst);
    case K_BOOL: return get_bool(c, sec, k->name, v, (bool *)(void *)dst);
    case K_RANGE: return get_range(c, sec, k->name, v, k->unit, k->dlo, (units_range *)(void *)dst);
    case K_ENUM: return get_enum(c, sec, k->name, v, k->names, k->nnames, (int *)(void *)dst);
    case K_RATE: {
        double r = 0;
        if (!get_real(c, sec, k->name, v, true, (double)k->lo, (double)k->hi, &r))
            return false;
        *(uint64_t *)(void *)dst = (uint64_t)(r + 0.5);
        return true;
    }
    }
    assert(!"unknown key kind");
    return false;
}

static bool key_is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* Key k of section s through its table into rec; a key the table does not have is an error. */
static void table_key(parse_ctx *c, const char *s, const key_spec *tab, size_t n, void *rec, const char *k,
                      const char *v)
{
    for (size_t i = 0; i < n; i++)
        if (key_is(k, tab[i].name)) {
            apply(c, s, &tab[i], v, rec);
            return;
        }
    fail(c, s, k, "unknown key (see docs/scenarios.md)");
}

#define TABLE_KEY(tab, rec) table_key(c, s, tab, n_##tab, rec, k, v) /* each table has its n_ length */

static void seeder_key(parse_ctx *c, const char *s, const char *k, const char *v)
{
    TABLE_KEY(seeder_keys, &c->sc->seeder);
}

static void disk_key(parse_ctx *c, const char *s, const char *k, const char *v)
{
    TABLE_KEY(disk_keys, &c->sc->disk);
}

/* [torrent] corrupt = T:P, T:P ...: pieces whose data fails their hash (checked against count after loading). */
static void corrupt_key(parse_ctx *c, const char *s, const char *k, const char *v)
{
    sim_torrent_cfg *t = &c->sc->torrent;
    for (const char *at = v; *at;) {
        char *end;
        unsigned long tor = strtoul(at, &end, 10), piece;
        if (end == at || *end != ':')
            break;
        at = end + 1;
        piece = strtoul(at, &end, 10);
        if (end == at || tor > UINT32_MAX || piece > UINT32_MAX || t->ncorrupt == SIM_CORRUPT_MAX)
            break;
        t->corrupt[t->ncorrupt].torrent = (uint32_t)tor;
        t->corrupt[t->ncorrupt++].piece = (uint32_t)piece;
        at = end;
        while (*at == ' ' || *at == ',')
            at++;
        if (*at == '\0')
            return;
    }
    fail(c, s, k, "\"%s\" is not a list of TORRENT:PIECE (at most %d)", v, SIM_CORRUPT_MAX);
}

static void torrent_key(parse_ctx *c, const char *s, const char *k, const char *v)
{
    if (key_is(k, "corrupt"))
        corrupt_key(c, s, k, v);
    else
        TABLE_KEY(torrent_keys, &c->sc->torrent);
}

bool scenario_corrupt(const scenario *sc, uint32_t torrent, uint32_t piece)
{
    for (uint32_t i = 0; i < sc->torrent.ncorrupt; i++)
        if (sc->torrent.corrupt[i].torrent == torrent && sc->torrent.corrupt[i].piece == piece)
            return true;
    return false;
}

static void peers_key(parse_ctx *c, const char *s, const char *k, const char *v)
{
    TABLE_KEY(peers_keys, &c->sc->peers);
}

static void run_key(parse_ctx *c, const char *s, const char *k, const char *v)
{
    if (!key_is(k, "seed"))
        TABLE_KEY(run_keys, &c->sc->run);
    else if (units_u64(v, &c->sc->run.seed) < 0)
        fail(c, s, k, "\"%s\" is not a non-negative integer", v);
}

/* Every name of the comma-separated list names a profile defined above. */
static bool profiles_known(const scenario *sc, const char *names)
{
    char one[SIM_NAME_MAX];
    for (const char *at = names;;) {
        const char *comma = strchr(at, ',');
        size_t len = comma ? (size_t)(comma - at) : strlen(at);
        if (len == 0 || len >= sizeof one)
            return false;
        memcpy(one, at, len);
        one[len] = '\0';
        if (!scenario_find_profile(sc, one))
            return false;
        if (!comma)
            return true;
        at = comma + 1;
    }
}

static void expect_key(parse_ctx *c, const char *s, const char *k, const char *v)
{
    if (!key_is(k, "baseline_without"))
        TABLE_KEY(expect_keys, &c->sc->expect);
    else if (strlen(v) >= sizeof c->sc->expect.baseline_without || !profiles_known(c->sc, v))
        fail(c, s, k, "no profile named \"%s\"", v);
    else
        snprintf(c->sc->expect.baseline_without, sizeof c->sc->expect.baseline_without, "%s", v);
}

static void profile_expect_key(parse_ctx *c, const char *s, sim_profile *p, const char *k, const char *v)
{
    TABLE_KEY(profile_expect_keys, &p->expect);
}

static void profile_key(parse_ctx *c, const char *s, sim_profile *p, const char *k, const char *v)
{
    uint64_t x = 0;
    if (!key_is(k, "torrent"))
        TABLE_KEY(profile_keys, p);
    else if (strcmp(v, "any") == 0)
        p->torrent = -1;
    else if (units_u64(v, &x) < 0 || x >= 100000)
        fail(c, s, k, "\"%s\" is not a torrent index or \"any\"", v);
    else
        p->torrent = (int32_t)x;
}

static sim_profile *find_profile_mut(scenario *sc, const char *name)
{
    for (uint32_t i = 0; i < sc->nprofiles; i++)
        if (strcmp(sc->profiles[i].name, name) == 0)
            return &sc->profiles[i];
    return NULL;
}

const sim_profile *scenario_find_profile(const scenario *sc, const char *name)
{
    return find_profile_mut((scenario *)sc, name);
}

/* One key = value into the scenario, through its section's table. */
static void dispatch(parse_ctx *c, const char *section, const char *name, const char *value)
{
    if (strcmp(section, "seeder") == 0)
        seeder_key(c, section, name, value);
    else if (strcmp(section, "disk") == 0)
        disk_key(c, section, name, value);
    else if (strcmp(section, "torrent") == 0)
        torrent_key(c, section, name, value);
    else if (strcmp(section, "run") == 0)
        run_key(c, section, name, value);
    else if (strcmp(section, "peers") == 0)
        peers_key(c, section, name, value);
    else if (strcmp(section, "expect") == 0)
        expect_key(c, section, name, value);
    else if (strncmp(section, "profile ", 8) == 0) {
        sim_profile *p = find_profile_mut(c->sc, section + 8);
        if (!p && c->in_sets)
            fail(c, section, name, "no profile named \"%s\" in the file", section + 8);
        else if (!p)
            fail(c, section, name, "internal: profile not pre-scanned");
        else
            profile_key(c, section, p, name, value);
    } else if (strncmp(section, "expect ", 7) == 0) {
        sim_profile *p = find_profile_mut(c->sc, section + 7);
        if (!p)
            fail(c, section, NULL, "no profile named \"%s\"", section + 7);
        else
            profile_expect_key(c, section, p, name, value);
    } else if (section[0] == '\0')
        fail(c, "(none)", name, "key outside any section");
    else
        fail(c, section, NULL, "unknown section");
}

/* ---- overrides (--set) and ${SECTION.KEY} references ---- */

static bool entry_is(const scenario_entry *e, const char *section, const char *key)
{
    return strcmp(e->section, section) == 0 && strcmp(e->key, key) == 0;
}

/* The value of (section, key) as an override or the file gives it; NULL if neither does. */
static const char *given_value(const parse_ctx *c, const char *section, const char *key)
{
    for (size_t i = 0; i < c->nsets; i++)
        if (entry_is(&c->sets[i], section, key))
            return c->sets[i].value;
    for (size_t i = 0; i < c->nentries; i++)
        if (entry_is(&c->entries[i], section, key))
            return c->entries[i].value;
    return NULL;
}

/* "SECTION.KEY" (a reference or the left side of an override) into e's section and key; false if malformed. */
static bool split_name(const char *s, size_t len, scenario_entry *e)
{
    const char *dot = NULL;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '.')
            dot = s + i;
    if (!dot || dot == s || (size_t)(dot - s) >= sizeof e->section || (size_t)(s + len - dot - 1) >= sizeof e->key ||
        dot + 1 == s + len)
        return false;
    size_t sl = (size_t)(dot - s);
    memcpy(e->section, s, sl);
    e->section[sl] = '\0';
    memcpy(e->key, dot + 1, (size_t)(s + len - dot - 1));
    e->key[s + len - dot - 1] = '\0';
    if (strncmp(e->section, "profile.", 8) == 0 || strncmp(e->section, "expect.", 7) == 0)
        *strchr(e->section, '.') = ' ';
    return true;
}

/* v with every ${SECTION.KEY} replaced by that key's given value (recursively) into out; false after an error. */
static bool substitute(parse_ctx *c, const char *sec, const char *key, const char *v, char *out, size_t outlen,
                       int depth)
{
    size_t n = 0;
    for (const char *p = v; *p;) {
        const char *close = strncmp(p, "${", 2) == 0 ? strchr(p + 2, '}') : NULL;
        if (!close) {
            if (n + 1 >= outlen)
                return check(c, false, sec, key, "value longer than %zu bytes after references", outlen - 1);
            out[n++] = *p++;
            continue;
        }
        scenario_entry ref;
        if (!split_name(p + 2, (size_t)(close - p - 2), &ref))
            return check(c, false, sec, key, "\"%.*s\" is not a reference ${SECTION.KEY}", (int)(close - p + 1), p);
        const char *rv = given_value(c, ref.section, ref.key);
        if (!rv)
            return check(c, false, sec, key, "%.*s: [%s] %s is not given in the file or by --set (a reference needs "
                         "an explicit value)", (int)(close - p + 1), p, ref.section, ref.key);
        if (depth >= 8)
            return check(c, false, sec, key, "references nested deeper than 8 (a cycle?)");
        char sub[256];
        if (!substitute(c, sec, key, rv, sub, sizeof sub, depth + 1))
            return false;
        size_t sl = strlen(sub);
        if (n + sl >= outlen)
            return check(c, false, sec, key, "value longer than %zu bytes after references", outlen - 1);
        memcpy(out + n, sub, sl);
        n += sl;
        p = close + 1;
    }
    out[n] = '\0';
    return true;
}

/* The value a key takes: its override if any (then marked used), with references replaced; then dispatched. */
static void dispatch_effective(parse_ctx *c, const char *section, const char *name, const char *value)
{
    for (size_t i = 0; i < c->nsets; i++)
        if (entry_is(&c->sets[i], section, name)) {
            c->set_used[i] = true;
            value = c->sets[i].value;
        }
    char v[256];
    if (!strstr(value, "${"))
        dispatch(c, section, name, value);
    else if (substitute(c, section, name, value, v, sizeof v, 0))
        dispatch(c, section, name, v);
}

/* inih's first pass: every key = value of the file, for references (errors are the second pass's to report). */
static int collect_handler(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx *c = user;
    if (c->nentries == c->capentries) {
        size_t n = c->capentries ? 2 * c->capentries : 64;
        void *q = realloc(c->entries, n * sizeof *c->entries);
        if (!q) {
            fail(c, section, name, "out of memory");
            return 0;
        }
        c->entries = q;
        c->capentries = n;
    }
    scenario_entry *e = &c->entries[c->nentries++];
    snprintf(e->section, sizeof e->section, "%s", section);
    snprintf(e->key, sizeof e->key, "%s", name);
    snprintf(e->value, sizeof e->value, "%s", value);
    return 1;
}

int scenario_parse_set(const char *spec, scenario_entry *e, char *err, size_t errlen)
{
    const char *eq = strchr(spec, '=');
    memset(e, 0, sizeof *e);
    if (!eq || !split_name(spec, (size_t)(eq - spec), e)) {
        snprintf(err, errlen, "--set %s: expected SECTION.KEY=VALUE (e.g. seeder.max_unchoked=10, "
                              "profile.NAME.count=100)", spec);
        return -1;
    }
    if (strlen(eq + 1) >= sizeof e->value) {
        snprintf(err, errlen, "--set %s: value longer than %zu bytes", spec, sizeof e->value - 1);
        return -1;
    }
    snprintf(e->value, sizeof e->value, "%s", eq + 1);
    return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx *c = user;
    if (c->failed)
        return 0;
    /* duplicate keys (also catches continuation lines, which inih reports as the same key again) */
    char tag[96];
    snprintf(tag, sizeof tag, "%s\x1f%s", section, name);
    for (size_t i = 0; i < c->nseen; i++)
        if (strcmp(c->seen[i], tag) == 0) {
            fail(c, section, name, "given twice");
            return 0;
        }
    if (c->nseen == c->capseen) {
        size_t n = c->capseen ? 2 * c->capseen : 64;
        void *q = realloc(c->seen, n * sizeof *c->seen);
        if (!q) {
            fail(c, section, name, "out of memory");
            return 0;
        }
        c->seen = q;
        c->capseen = n;
    }
    snprintf(c->seen[c->nseen++], sizeof c->seen[0], "%s", tag);
    dispatch_effective(c, section, name, value);
    return c->failed ? 0 : 1;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= SIM_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
              ch == '-'))
            return false;
    }
    return true;
}

/* The section headers met so far (prescan). */
typedef struct section_list {
    char (*v)[64];
    size_t n, cap;
} section_list;

/* Records a pre-scan error; returns -1. */
static int scan_error(parse_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int scan_error(parse_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* The name between the '[' at p[0] and the next ']' of the line p[0..len) into sec; 0, or -1 with the error. */
static int header_name(parse_ctx *c, const char *name, int lineno, const char *p, size_t len, char sec[64])
{
    const char *close = memchr(p, ']', len);
    if (!close)
        return scan_error(c, "%s:%d: section header without ']'", name, lineno);
    size_t sl = (size_t)(close - (p + 1));
    if (sl >= 64)
        return scan_error(c, "%s:%d: section name too long", name, lineno);
    memcpy(sec, p + 1, sl);
    sec[sl] = '\0';
    return 0;
}

/* A header [sec]: a known, well-named section not given before; a profile is created in file order. 0 or -1. */
static int scan_section(parse_ctx *c, const char *name, int lineno, const char *sec, section_list *seen)
{
    bool known = strcmp(sec, "seeder") == 0 || strcmp(sec, "disk") == 0 || strcmp(sec, "torrent") == 0 ||
                 strcmp(sec, "run") == 0 || strcmp(sec, "expect") == 0 || strcmp(sec, "peers") == 0;
    bool is_profile = strncmp(sec, "profile ", 8) == 0;
    bool is_pexpect = strncmp(sec, "expect ", 7) == 0;
    if (!known && !is_profile && !is_pexpect)
        return scan_error(c, "%s:%d: unknown section [%s]", name, lineno, sec);
    if ((is_profile && !valid_name(sec + 8)) || (is_pexpect && !valid_name(sec + 7)))
        return scan_error(c, "%s:%d: [%s]: a name is 1-31 of [A-Za-z0-9_-]", name, lineno, sec);
    for (size_t k = 0; k < seen->n; k++)
        if (strcmp(seen->v[k], sec) == 0)
            return scan_error(c, "%s:%d: section [%s] given twice", name, lineno, sec);
    if (seen->n == seen->cap) {
        seen->cap = seen->cap ? seen->cap * 2 : 16;
        void *q = realloc(seen->v, seen->cap * sizeof *seen->v);
        if (!q)
            return scan_error(c, "out of memory");
        seen->v = q;
    }
    snprintf(seen->v[seen->n++], sizeof seen->v[0], "%s", sec);
    if (is_profile) {
        if (c->sc->nprofiles == MAX_PROFILES)
            return scan_error(c, "%s:%d: more than %d profiles", name, lineno, MAX_PROFILES);
        profile_defaults(&c->sc->profiles[c->sc->nprofiles++], sec + 8);
    }
    return 0;
}

/* First pass over the raw text: line lengths, section headers (known, not repeated), profiles created in order. */
static int prescan(parse_ctx *c, const char *text, const char *name)
{
    section_list seen = {NULL, 0, 0};
    int lineno = 0, rc = 0;
    for (const char *p = text; *p && rc == 0;) {
        lineno++;
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        /* where libinih looks for '[': past a UTF-8 BOM on the first line, then past any isspace() byte */
        size_t i = lineno == 1 && len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
        while (i < len && isspace((unsigned char)p[i]))
            i++;
        char sec[64];
        if (len > MAX_LINE)
            rc = scan_error(c, "%s:%d: line longer than %d bytes", name, lineno, MAX_LINE);
        else if (i < len && p[i] == '[')
            rc = header_name(c, name, lineno, p + i, len - i, sec) < 0 ? -1
                                                                      : scan_section(c, name, lineno, sec, &seen);
        p = eol ? eol + 1 : p + len;
    }
    /* [expect NAME] must name a profile (even when it holds no key) */
    for (size_t k = 0; rc == 0 && k < seen.n; k++)
        if (strncmp(seen.v[k], "expect ", 7) == 0 && !find_profile_mut(c->sc, seen.v[k] + 7))
            rc = scan_error(c, "%s: [%s]: no profile named \"%s\"", name, seen.v[k], seen.v[k] + 7);
    free(seen.v);
    return rc;
}

/* Upload rate caps: [expect] rate_cap, rate_cap_within and rate_window are set together, the window inside the run. */
static int check_rate_expect(const scenario *sc, char *err, size_t errlen)
{
    const sim_expect *x = &sc->expect;
    if ((x->rate_cap_within >= 0 || x->rate_cap > 0 || x->rate_window.hi > 0) &&
        (x->rate_cap_within < 0 || x->rate_cap <= 0 || x->rate_window.hi <= x->rate_window.lo ||
         x->rate_window.hi * 1e9 > (double)sc->run.duration)) {
        snprintf(err, errlen, "[expect] rate_cap, rate_cap_within and rate_window go together (window A..B with "
                              "A < B <= [run] duration)");
        return -1;
    }
    return 0;
}

/* Piece verification: [torrent] corrupt names pieces that exist, verify_done needs the pass; verify_full follows
 * [seeder] verify. 0, or -1 with err set. */
static int check_verify(scenario *sc, char *err, size_t errlen)
{
    uint64_t pieces = (sc->torrent.size + sc->torrent.piece_length - 1) / sc->torrent.piece_length;
    for (uint32_t i = 0; i < sc->torrent.ncorrupt; i++)
        if (sc->torrent.corrupt[i].torrent >= sc->torrent.count || sc->torrent.corrupt[i].piece >= pieces) {
            snprintf(err, errlen, "[torrent] corrupt %u:%u: there are %u torrents of %llu pieces",
                     sc->torrent.corrupt[i].torrent, sc->torrent.corrupt[i].piece, sc->torrent.count,
                     (unsigned long long)pieces);
            return -1;
        }
    if (sc->expect.verify_done && sc->seeder.verify != SIM_VERIFY_FULL) {
        snprintf(err, errlen, "[expect] verify_done needs [seeder] verify = full");
        return -1;
    }
    sc->seeder.core.verify_full = sc->seeder.verify == SIM_VERIFY_FULL;
    return 0;
}

static int cross_check(scenario *sc, char *err, size_t errlen)
{
    const char *why = hk_config_check(&sc->seeder.core);
    if (why) {
        snprintf(err, errlen, "[seeder]: %s", why);
        return -1;
    }
    if (sc->nprofiles == 0) {
        snprintf(err, errlen, "no [profile NAME] section: a scenario needs peers");
        return -1;
    }
    if (sc->peers.rechoke < HK_MILLIS(100) || sc->peers.optimistic < HK_MILLIS(100)) {
        snprintf(err, errlen, "[peers] rechoke and optimistic are at least 100 ms");
        return -1;
    }
    if (sc->seeder.window == 0) /* not given: Linux's autotuned ceiling, within the buffer */
        sc->seeder.window = sc->seeder.sndbuf < SIM_WINDOW_DEFAULT ? sc->seeder.sndbuf : SIM_WINDOW_DEFAULT;
    if (sc->seeder.window > sc->seeder.sndbuf) {
        snprintf(err, errlen, "[seeder] window (%u) is larger than sndbuf (%u)", sc->seeder.window,
                 sc->seeder.sndbuf);
        return -1;
    }
    if (sc->run.quiesce >= sc->run.duration) {
        snprintf(err, errlen, "[run] quiesce must be shorter than duration");
        return -1;
    }
    if (sc->run.sample == 0) {
        snprintf(err, errlen, "[run] sample must be > 0");
        return -1;
    }
    if (check_rate_expect(sc, err, errlen) != 0)
        return -1;
    if (check_verify(sc, err, errlen) != 0)
        return -1;
    if (sc->disk.cache % sc->disk.page != 0 || sc->disk.cache / sc->disk.page < 16) {
        snprintf(err, errlen, "[disk] cache must be a multiple of page and hold at least 16 pages");
        return -1;
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < sc->nprofiles; i++) {
        sim_profile *p = &sc->profiles[i];
        if ((p->arrival == ARRIVE_POISSON || p->arrival == ARRIVE_UNIFORM) && p->rate <= 0) {
            snprintf(err, errlen, "[profile %s] arrival = %s needs a rate", p->name,
                     p->arrival == ARRIVE_POISSON ? "poisson" : "uniform");
            return -1;
        }
        if (p->torrent >= 0 && (uint32_t)p->torrent >= sc->torrent.count) {
            snprintf(err, errlen, "[profile %s] torrent %d: there are only %u torrents", p->name, p->torrent,
                     sc->torrent.count);
            return -1;
        }
        if (p->expect.median_vs_baseline_max >= 0 && sc->expect.baseline_without[0] == '\0') {
            snprintf(err, errlen, "[expect %s] median_vs_baseline_max needs [expect] baseline_without", p->name);
            return -1;
        }
        if (p->expect.choked_after == REF_PROTOCOL || p->expect.choked_after == REF_HANDSHAKE) {
            snprintf(err, errlen, "[expect %s] choked_after: only idle_timeout, unchoked_idle_timeout, "
                                  "unchoked_grace or send_stall_timeout make sense", p->name);
            return -1;
        }
        if (p->expect.closed_after == REF_UNCHOKED_GRACE) {
            snprintf(err, errlen, "[expect %s] closed_after: unchoked_grace chokes, it never closes", p->name);
            return -1;
        }
        p->first_peer = (uint32_t)total;
        total += p->count;
    }
    if (total > 1000000) {
        snprintf(err, errlen, "more than 1,000,000 peers");
        return -1;
    }
    sc->npeers = (uint32_t)total;
    return 0;
}

/* The overrides parsed into c->sets (none twice); 0, or -1 with the message in err. */
static int parse_sets(parse_ctx *c, const char *const *sets, size_t nsets)
{
    if (nsets == 0)
        return 0;
    c->sets = calloc(nsets, sizeof *c->sets);
    c->set_used = calloc(nsets, sizeof *c->set_used);
    if (!c->sets || !c->set_used) {
        snprintf(c->err, c->errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < nsets; i++) {
        if (scenario_parse_set(sets[i], &c->sets[i], c->err, c->errlen) < 0)
            return -1;
        for (size_t k = 0; k < i; k++)
            if (entry_is(&c->sets[k], c->sets[i].section, c->sets[i].key)) {
                snprintf(c->err, c->errlen, "--set %s: [%s] %s overridden twice", sets[i], c->sets[i].section,
                         c->sets[i].key);
                return -1;
            }
        c->nsets++;
    }
    return 0;
}

/* The overrides of keys the file does not give, in command-line order; 0, or -1 with the message in err. */
static int apply_new_sets(parse_ctx *c, const char *const *sets)
{
    c->in_sets = true;
    for (size_t i = 0; i < c->nsets; i++) {
        if (c->set_used[i])
            continue;
        const scenario_entry *e = &c->sets[i];
        dispatch_effective(c, e->section, e->key, e->value);
        if (c->failed) {
            char what[512];
            snprintf(what, sizeof what, "%s", c->err);
            snprintf(c->err, c->errlen, "--set %s: %s", sets[i], what);
            return -1;
        }
    }
    return 0;
}

/* Parses text into sc (defaults filled, profiles pre-scanned); 0, or -1 with the message in err. */
static int parse_text(parse_ctx *c, const char *text, const char *name, const char *const *sets, size_t nsets)
{
    if (parse_sets(c, sets, nsets) < 0 || prescan(c, text, name) < 0)
        return -1;
    if (ini_parse_string(text, collect_handler, c) < 0 || c->failed) {
        snprintf(c->err, c->errlen, "out of memory");
        return -1;
    }
    int line = ini_parse_string(text, handler, c);
    if (line != 0 || c->failed) {
        char what[512];
        snprintf(what, sizeof what, "%s", c->err);
        if (c->failed)
            snprintf(c->err, c->errlen, "%s:%d: %s", name, line, what);
        else
            snprintf(c->err, c->errlen, "%s:%d: syntax error (expected [section] or key = value)", name, line);
        return -1;
    }
    return apply_new_sets(c, sets);
}

int scenario_load_string_ex(const char *text, const char *name, const char *const *sets, size_t nsets, scenario *sc,
                            char *err, size_t errlen)
{
    scenario_defaults(sc);
    snprintf(sc->path, sizeof sc->path, "%s", name);
    sc->profiles = calloc(MAX_PROFILES, sizeof *sc->profiles);
    if (!sc->profiles) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    parse_ctx c = {.sc = sc, .err = err, .errlen = errlen};
    int rc = parse_text(&c, text, name, sets, nsets);
    free(c.seen);
    free(c.entries);
    free(c.sets);
    free(c.set_used);
    if (rc == 0 && cross_check(sc, err, errlen) < 0) {
        char what[512];
        snprintf(what, sizeof what, "%s", err);
        snprintf(err, errlen, "%s: %s", name, what);
        rc = -1;
    }
    if (rc < 0)
        scenario_free(sc);
    return rc;
}

int scenario_load_string(const char *text, const char *name, scenario *sc, char *err, size_t errlen)
{
    return scenario_load_string_ex(text, name, NULL, 0, sc, err, errlen);
}

int scenario_load(const char *path, scenario *sc, char *err, size_t errlen)
{
    return scenario_load_ex(path, NULL, 0, sc, err, errlen);
}

int scenario_load_ex(const char *path, const char *const *sets, size_t nsets, scenario *sc, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return -1;
    }
    char *buf = malloc(MAX_FILE + 1);
    if (!buf) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t n = fread(buf, 1, MAX_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > MAX_FILE) {
        free(buf);
        snprintf(err, errlen, "%s: %s", path, bad ? "read error" : "larger than 1 MiB");
        return -1;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        free(buf);
        snprintf(err, errlen, "%s: contains a NUL byte", path);
        return -1;
    }
    int rc = scenario_load_string_ex(buf, path, sets, nsets, sc, err, errlen);
    free(buf);
    return rc;
}

void scenario_free(scenario *sc)
{
    free(sc->profiles);
    sc->profiles = NULL;
    sc->nprofiles = 0;
}

static int drop_one_profile(scenario *sc, const char *name, size_t len)
{
    for (uint32_t i = 0; i < sc->nprofiles; i++)
        if (strlen(sc->profiles[i].name) == len && strncmp(sc->profiles[i].name, name, len) == 0) {
            memmove(&sc->profiles[i], &sc->profiles[i + 1], (sc->nprofiles - i - 1) * sizeof *sc->profiles);
            sc->nprofiles--;
            uint64_t total = 0;
            for (uint32_t k = 0; k < sc->nprofiles; k++) {
                sc->profiles[k].first_peer = (uint32_t)total;
                total += sc->profiles[k].count;
            }
            sc->npeers = (uint32_t)total;
            return 0;
        }
    return -1;
}

int scenario_drop_profile(scenario *sc, const char *names)
{
    for (const char *at = names;;) {
        const char *comma = strchr(at, ',');
        size_t len = comma ? (size_t)(comma - at) : strlen(at);
        if (drop_one_profile(sc, at, len) < 0)
            return -1;
        if (!comma)
            return 0;
        at = comma + 1;
    }
}
