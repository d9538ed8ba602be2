/* scenario_params: owns the printing of an effective scenario, key by key, as the summary and the JSON results echo
 * it (see scenario_params in scenario.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "scenario.h"
#include "scenario_keys.h"

/* A duration in ns as seconds, without trailing zeros ("0.008s", "30s"). */
static void fmt_ns(char *buf, size_t n, uint64_t ns)
{
    int len = snprintf(buf, n, "%" PRIu64 ".%09" PRIu64, ns / 1000000000u, ns % 1000000000u);
    while (len > 0 && buf[len - 1] == '0')
        buf[--len] = '\0';
    if (len > 0 && buf[len - 1] == '.')
        buf[--len] = '\0';
    snprintf(buf + len, n - (size_t)len, "s");
}

static void fmt_range(char *buf, size_t n, const units_range *r, const char *unit)
{
    if (r->lo == r->hi)
        snprintf(buf, n, "%.15g%s", r->lo, unit);
    else
        snprintf(buf, n, "%.15g%s..%.15g%s", r->lo, unit, r->hi, unit);
}

/* The value of key k in record rec as text. */
static void fmt_key(char *buf, size_t n, const key_spec *k, const void *rec)
{
    const char *src = (const char *)rec + k->off;
    switch (k->kind) {
    case K_U32:
    case K_SIZE32: snprintf(buf, n, "%" PRIu32, *(const uint32_t *)(const void *)src); return;
    case K_LIMIT: {
        int64_t v = *(const int64_t *)(const void *)src;
        if (v < 0)
            snprintf(buf, n, "unset");
        else
            snprintf(buf, n, "%" PRId64, v);
        return;
    }
    case K_SIZE: {
        uint64_t v = *(const uint64_t *)(const void *)src;
        if (v < k->lo)
            snprintf(buf, n, "unset");
        else
            snprintf(buf, n, "%" PRIu64, v);
        return;
    }
    case K_TIME: {
        uint64_t v = *(const uint64_t *)(const void *)src;
        if (v == HK_TIME_NEVER)
            snprintf(buf, n, "unset");
        else
            fmt_ns(buf, n, v);
        return;
    }
    case K_SECONDS: snprintf(buf, n, "%.15gs", *(const double *)(const void *)src); return;
    case K_BW:
    case K_DOUBLE: {
        double v = *(const double *)(const void *)src;
        if (k->kind == K_BW ? v <= 0 : v < k->dlo)
            snprintf(buf, n, "unset");
        else
            snprintf(buf, n, "%.15g%s", v, k->kind == K_BW ? "B/s" : "");
        return;
    }
    case K_BOOL: snprintf(buf, n, "%s", *(const bool *)(const void *)src ? "yes" : "no"); return;
    case K_RANGE: {
        const units_range *r = (const units_range *)(const void *)src;
        if (r->hi <= 0 && strcmp(k->name, "rate_window") == 0) /* the one range that may be unset */
            snprintf(buf, n, "unset");
        else
            fmt_range(buf, n, r, k->unit == 'b' ? "B/s" : "s");
        return;
    }
    case K_ENUM: {
        int v = *(const int *)(const void *)src;
        snprintf(buf, n, "%s", v >= 0 && v < k->nnames ? k->names[v] : "?");
        return;
    }
    case K_RATE: {
        uint64_t v = *(const uint64_t *)(const void *)src;
        if (v == 0)
            snprintf(buf, n, "unset");
        else
            snprintf(buf, n, "%" PRIu64 "B/s", v);
        return;
    }
    }
    snprintf(buf, n, "?");
}

static void table(const char *section, const key_spec *tab, size_t ntab, const void *rec, const void *def,
                  scenario_param_fn fn, void *user)
{
    for (size_t i = 0; i < ntab; i++) {
        char v[160], d[160];
        fmt_key(v, sizeof v, &tab[i], rec);
        fmt_key(d, sizeof d, &tab[i], def);
        fn(user, section, tab[i].name, v, strcmp(v, d) == 0);
    }
}

void scenario_params(const scenario *sc, scenario_param_fn fn, void *user)
{
    scenario d;
    scenario_defaults(&d);
    d.seeder.window = SIM_WINDOW_DEFAULT < d.seeder.sndbuf ? SIM_WINDOW_DEFAULT : d.seeder.sndbuf;
    char v[160];
    table("seeder", seeder_keys, n_seeder_keys, &sc->seeder, &d.seeder, fn, user);
    table("disk", disk_keys, n_disk_keys, &sc->disk, &d.disk, fn, user);
    table("torrent", torrent_keys, n_torrent_keys, &sc->torrent, &d.torrent, fn, user);
    snprintf(v, sizeof v, "%" PRIu64, sc->run.seed);
    fn(user, "run", "seed", v, sc->run.seed == d.run.seed);
    table("run", run_keys, n_run_keys, &sc->run, &d.run, fn, user);
    table("peers", peers_keys, n_peers_keys, &sc->peers, &d.peers, fn, user);
    table("expect", expect_keys, n_expect_keys, &sc->expect, &d.expect, fn, user);
    fn(user, "expect", "baseline_without", sc->expect.baseline_without[0] ? sc->expect.baseline_without : "unset",
       sc->expect.baseline_without[0] == '\0');
    for (uint32_t i = 0; i < sc->nprofiles; i++) {
        const sim_profile *p = &sc->profiles[i];
        sim_profile pd;
        profile_defaults(&pd, p->name);
        char sec[80];
        snprintf(sec, sizeof sec, "profile %s", p->name);
        table(sec, profile_keys, n_profile_keys, p, &pd, fn, user);
        if (p->torrent < 0)
            snprintf(v, sizeof v, "any");
        else
            snprintf(v, sizeof v, "%d", (int)p->torrent);
        fn(user, sec, "torrent", v, p->torrent == pd.torrent);
        snprintf(sec, sizeof sec, "expect %s", p->name);
        table(sec, profile_expect_keys, n_profile_expect_keys, &p->expect, &pd.expect, fn, user);
    }
}
