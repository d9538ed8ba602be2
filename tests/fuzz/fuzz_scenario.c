/* Fuzz target for the simulator's scenario reader (backend-sim/scenario.c: the pre-scan of section headers, the key
 * tables through libinih, the cross-checks) and the quantities it reads (backend-sim/units.c). Both are pure: no
 * SimGrid, compiled into this target.
 *
 * Input: the text of a scenario file (up to the first NUL, at most 1 MiB, as scenario_load would accept it), loaded
 * with scenario_load_string. On success everything scenario.h and docs/scenarios.md promise must hold (profiles
 * named, unique and counted, every range finite with lo <= hi, the cross-checks met, dropping a profile recounts the
 * peers); on failure the message is not empty and never an "internal" error (the pre-scan and libinih disagreeing
 * about a line). Each of the first lines of the input is also read as every kind of quantity: a value accepted is
 * finite and not negative, a failed parse leaves the output untouched, and a plain integer read as a size (bytes) or
 * a duration (seconds) is that integer (to a double's precision). Lines "; set: SECTION.KEY=VALUE" (comments to the
 * file) are passed as --set overrides (scenario_load_string_ex), and values may hold ${SECTION.KEY} references. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"
#include "units.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TEXT (1u << 20)
#define UNIT_LINES 8
#define MAX_SETS 4

static bool valid_name(const char *s)
{
    size_t n = strnlen(s, SIM_NAME_MAX);
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

static void check_range(units_range r, double min)
{
    if (!isfinite(r.lo) || !isfinite(r.hi) || r.lo > r.hi || r.lo < min)
        abort();
}

static void check_profile(const scenario *sc, const sim_profile *p, uint64_t first)
{
    if (!valid_name(p->name) || scenario_find_profile(sc, p->name) != p)
        abort(); /* a bad name, or two profiles of one name */
    if (p->count < 1 || p->first_peer != first)
        abort();
    if ((unsigned)p->behaviour >= BEH_COUNT || (unsigned)p->arrival > ARRIVE_UNIFORM ||
        (unsigned)p->strategy > STRAT_SEQUENTIAL || (unsigned)p->departure > DEPART_VANISH ||
        (unsigned)p->invalid > INVALID_BEGIN || (unsigned)p->expect.closed_after > REF_PROTOCOL ||
        (unsigned)p->expect.choked_after > REF_PROTOCOL)
        abort();
    if (p->arrival != ARRIVE_BURST && !(p->rate > 0))
        abort();
    if (p->torrent < -1 || (p->torrent >= 0 && (uint32_t)p->torrent >= sc->torrent.count))
        abort();
    check_range(p->down, 1);
    check_range(p->up, 1);
    check_range(p->latency, 0);
    if (!isfinite(p->read_rate) || !isfinite(p->rate) || p->read_rate < 1)
        abort();
    if (p->expect.median_vs_baseline_max >= 0 && sc->expect.baseline_without[0] == '\0')
        abort();
    if (strcmp(sim_behaviour_name(p->behaviour), "?") == 0)
        abort();
    (void)sim_ref_name(p->expect.closed_after);
}

static void check_loaded(scenario *sc)
{
    if (sc->nprofiles < 1 || sc->nprofiles > 64 || !sc->profiles)
        abort();
    if (hk_config_check(&sc->seeder.core) != NULL)
        abort();
    if (sc->seeder.window > sc->seeder.sndbuf || sc->run.quiesce >= sc->run.duration || sc->run.sample == 0)
        abort();
    if (sc->disk.page == 0 || sc->disk.cache % sc->disk.page != 0 || sc->disk.cache / sc->disk.page < 16)
        abort();
    if (sc->torrent.count < 1 || sc->torrent.piece_length < 16 * 1024 || sc->torrent.size < 1)
        abort();
    if (!isfinite(sc->seeder.uplink) || !isfinite(sc->seeder.downlink) || !isfinite(sc->disk.bandwidth) ||
        !isfinite(sc->seeder.latency))
        abort();
    if (sc->expect.baseline_without[0] && !scenario_find_profile(sc, sc->expect.baseline_without))
        abort();
    uint64_t total = 0;
    for (uint32_t i = 0; i < sc->nprofiles; i++) {
        check_profile(sc, &sc->profiles[i], total);
        total += sc->profiles[i].count;
    }
    if (total != sc->npeers || total > 1000000)
        abort();
    /* Dropping a profile (the baseline run): the others are recounted. */
    uint32_t n = sc->nprofiles, dropped = sc->profiles[0].count;
    char name[SIM_NAME_MAX];
    memcpy(name, sc->profiles[0].name, sizeof name);
    if (scenario_drop_profile(sc, "") != -1)
        abort();
    if (scenario_drop_profile(sc, name) != 0 || sc->nprofiles != n - 1 || sc->npeers != total - dropped ||
        scenario_find_profile(sc, name))
        abort();
    for (uint32_t i = 0, first = 0; i < sc->nprofiles; first += sc->profiles[i].count, i++)
        if (sc->profiles[i].first_peer != first)
            abort();
}

/* |got - want| within a double's rounding of want (and of the rounding to an integer). */
static bool close_to(double got, double want)
{
    return fabs(got - want) <= 1.0 + fabs(want) * 0x1p-50;
}

/* One line read as every kind of quantity. */
static void check_units(const char *s)
{
    const uint64_t sentinel = 0x5eed5eed5eed5eedull;
    uint64_t u = sentinel, plain = 0;
    bool is_plain = units_u64(s, &plain) == 0;
    if (units_size(s, &u) == 0) {
        if (is_plain && !close_to((double)u, (double)plain))
            abort(); /* "N" is N bytes */
    } else if (u != sentinel) {
        abort();
    }
    u = sentinel;
    if (units_time(s, &u) == 0) {
        if (is_plain && !close_to((double)u, (double)plain * 1e9))
            abort(); /* "N" is N seconds */
    } else if (u != sentinel) {
        abort();
    }
    double d = -1;
    if (units_bandwidth(s, &d) == 0 ? !isfinite(d) || d < 0 : d != -1)
        abort();
    d = -1;
    if (units_double(s, &d) == 0 ? !isfinite(d) || d < 0 : d != -1)
        abort();
    bool b = false;
    (void)units_bool(s, &b);
    static const char kinds[] = { 's', 't', 'b' };
    for (size_t k = 0; k < sizeof kinds; k++) {
        units_range r = { -7, -7 };
        if (units_range_parse(s, kinds[k], &r) == 0)
            check_range(r, 0);
        else if (r.lo != -7 || r.hi != -7)
            abort();
    }
}

static void units_on_lines(const char *text)
{
    char line[256];
    const char *p = text;
    for (int i = 0; i < UNIT_LINES && *p; i++) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        size_t n = len < sizeof line - 1 ? len : sizeof line - 1;
        memcpy(line, p, n);
        line[n] = '\0';
        const char *eq = strchr(line, '=');
        check_units(eq ? eq + 1 : line); /* "key = value": the value */
        p = eol ? eol + 1 : p + len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_TEXT)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    units_on_lines(text);

    /* lines "; set: SPEC" (comments to the file) are --set overrides */
    const char *sets[MAX_SETS];
    char setbuf[MAX_SETS][300];
    size_t nsets = 0;
    for (const char *p = strstr(text, "; set: "); p && nsets < MAX_SETS; p = strstr(p + 1, "; set: ")) {
        size_t len = strcspn(p + 7, "\n");
        snprintf(setbuf[nsets], sizeof setbuf[0], "%.*s", (int)(len < 299 ? len : 299), p + 7);
        sets[nsets] = setbuf[nsets];
        nsets++;
    }
    scenario sc;
    char err[512];
    memset(err, 0, sizeof err);
    if (scenario_load_string_ex(text, "fuzz.ini", sets, nsets, &sc, err, sizeof err) == 0) {
        check_loaded(&sc);
        scenario_free(&sc);
        if (sc.profiles)
            abort();
    } else {
        size_t n = strnlen(err, sizeof err);
        if (n == 0 || n == sizeof err || sc.profiles)
            abort();
        static const char internal[] = "internal: profile not pre-scanned";
        if (n >= sizeof internal - 1 && strcmp(err + n - (sizeof internal - 1), internal) == 0)
            abort(); /* the pre-scan and libinih read a header differently */
    }
    free(text);
    return 0;
}
