/* report_json: owns the JSON results of a run (hekate-sim --json FILE, see report.h and docs/scenarios.md): the
 * effective scenario, the run's setup, the summary's figures, every expectation's verdict and the hash. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report.h"

void report_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* A JSON number (null for the "none" marker -1 and for non-finite values). */
static void num(FILE *out, double v)
{
    if (v != v || v < 0 || v > 1e300)
        fprintf(out, "null");
    else
        fprintf(out, "%.17g", v);
}

typedef struct params_ctx {
    FILE *out;
    char section[80];
    bool first_key;
} params_ctx;

/* "section": {"key": "value", ...}, one object per section, in scenario_params' order. */
static void param_json(void *user, const char *section, const char *key, const char *value, bool is_default)
{
    (void)is_default;
    params_ctx *c = user;
    if (strcmp(c->section, section) != 0) {
        fprintf(c->out, "%s\n    ", c->section[0] ? "}," : "");
        report_json_string(c->out, section);
        fprintf(c->out, ": {");
        snprintf(c->section, sizeof c->section, "%s", section);
        c->first_key = true;
    }
    fprintf(c->out, "%s", c->first_key ? "" : ", ");
    c->first_key = false;
    report_json_string(c->out, key);
    fprintf(c->out, ": ");
    report_json_string(c->out, value);
}

static void json_setup(FILE *f, const sim_world *w, const report_run *run)
{
    fprintf(f, "{\n  \"scenario\": ");
    report_json_string(f, w->sc->path);
    fprintf(f, ",\n  \"seed\": %llu,\n  \"sets\": [", (unsigned long long)w->sc->run.seed);
    for (size_t i = 0; i < run->nsets; i++) {
        fprintf(f, "%s", i ? ", " : "");
        report_json_string(f, run->sets[i]);
    }
    fprintf(f, "],\n  \"parameters\": {");
    params_ctx c = {.out = f};
    scenario_params(w->sc, param_json, &c);
    fprintf(f, "}\n  },\n  \"simgrid\": {\"network_model\": ");
    report_json_string(f, run->network_model);
    fprintf(f, ", \"crosstraffic\": %s, \"platform\": ", run->crosstraffic ? "true" : "false");
    if (run->platform || run->platform_kept)
        report_json_string(f, run->platform ? run->platform : run->platform_kept);
    else
        fprintf(f, "null");
    fprintf(f, ", \"platform_generated\": %s},\n", run->platform ? "false" : "true");
}

static void json_profiles(FILE *f, const sim_world *w)
{
    fprintf(f, "  \"profiles\": [");
    for (uint32_t i = 0; i < w->sc->nprofiles; i++) {
        profile_result r;
        report_profile(w, i, &r);
        fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
        report_json_string(f, w->sc->profiles[i].name);
        fprintf(f, ", \"behaviour\": ");
        report_json_string(f, sim_behaviour_name(w->sc->profiles[i].behaviour));
        fprintf(f, ", \"peers\": %u, \"completed\": %u, \"p50_s\": ", r.peers, r.completed);
        num(f, r.p50);
        fprintf(f, ", \"p95_s\": ");
        num(f, r.p95);
        fprintf(f, ", \"max_s\": ");
        num(f, r.max);
        fprintf(f, ", \"bytes\": %llu, \"jain\": ", (unsigned long long)r.bytes);
        num(f, r.jain);
        fprintf(f, ", \"closed_by_seeder\": %u, \"refused\": %u}", r.closed_by_seeder_peers, r.refused_peers);
    }
    fprintf(f, "\n  ],\n");
}

static void json_seeder(FILE *f, const sim_world *w, const hk_stats *st)
{
    const sim_seeder *s = &w->seeder;
    report_uplink_figures u;
    report_uplink(w, &u);
    fprintf(f, "  \"run\": {\"simulated_s\": %.9f, \"wall_s\": %.3f, \"peak_rss_kib\": %ld, \"peers\": %u, "
               "\"connections\": %llu, \"core_calls\": %llu},\n",
            (double)w->end_time / 1e9, w->wall_s, w->rss_kib, w->npeers,
            (unsigned long long)(s->conns_total + s->refused), (unsigned long long)s->core_calls);
    fprintf(f, "  \"uplink\": {\"capacity_Bps\": %.17g, \"mean_run_Bps\": %.17g, \"mean_busy_Bps\": %.17g, "
               "\"busy_s\": %.9f, \"peak_sample_Bps\": %.17g, \"utilisation_run\": %.6f, \"utilisation_busy\": "
               "%.6f},\n",
            u.capacity, u.mean_run, u.mean_busy, u.busy_s, u.peak, u.mean_run / u.capacity,
            u.mean_busy / u.capacity);
    report_swarm_figures sw;
    report_swarm(w, &sw);
    fprintf(f, "  \"swarm\": {\"trade\": %s, \"seeder_bytes\": %llu, \"completed\": %u, \"per_copy\": ",
            sw.trade ? "true" : "false", (unsigned long long)sw.seeder_bytes, sw.completed);
    num(f, isfinite(sw.per_copy) ? sw.per_copy : -1);
    fprintf(f, ", \"copy_s\": ");
    num(f, sw.copy_s);
    fprintf(f, ", \"first_complete_s\": ");
    num(f, sw.first_complete_s);
    fprintf(f, ", \"p50_s\": ");
    num(f, sw.p50);
    fprintf(f, ", \"p90_s\": ");
    num(f, sw.p90);
    fprintf(f, ", \"traded_bytes\": %llu},\n", (unsigned long long)sw.traded);
    fprintf(f, "  \"choker\": {\"unchoked_max_wire\": %llu, \"unchoked_max_core\": %u, \"max_unchoked\": %u, "
               "\"waiting_max\": %u},\n",
            (unsigned long long)s->unchoked_max, st->max_unchoked_seen, w->sc->seeder.core.max_unchoked,
            w->waiting_max);
    fprintf(f, "  \"disk\": {\"reads\": %llu, \"bytes_read\": %llu, \"blocks_sent\": %llu, \"data_bytes_sent\": "
               "%llu, \"sent_not_resident\": %llu},\n",
            (unsigned long long)s->disk.reads, (unsigned long long)s->disk.bytes_read,
            (unsigned long long)s->blocks_sent, (unsigned long long)s->data_bytes_sent,
            (unsigned long long)s->sent_not_resident);
    fprintf(f, "  \"core\": {\"requests_rejected\": %llu, \"protocol_errors\": %llu, \"peers_refused\": %llu, "
               "\"memory_max\": %llu, \"timeouts\": {",
            (unsigned long long)st->requests_rejected, (unsigned long long)st->protocol_errors,
            (unsigned long long)st->peers_refused, (unsigned long long)s->memory_max);
    for (int k = 0; k < HK_TIMEOUT_KINDS; k++) {
        fprintf(f, "%s", k ? ", " : "");
        report_json_string(f, hk_timeout_name((hk_timeout_kind)k));
        fprintf(f, ": %llu", (unsigned long long)st->timeouts[k]);
    }
    fprintf(f, "}},\n  \"seeder_errors\": {\"monitor\": %llu, \"extent_mismatch\": %llu, \"room_overruns\": %llu},\n",
            (unsigned long long)s->monitor_errors, (unsigned long long)s->extent_mismatch,
            (unsigned long long)s->room_overruns);
}

int report_json(const sim_world *w, const report_run *run, const char *path, const hk_stats *st,
                const double *baseline_medians)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    json_setup(f, w, run);
    json_profiles(f, w);
    json_seeder(f, w, st);
    fprintf(f, "  \"expectations\": [");
    int failures = report_expectations_as(w, f, true, st, baseline_medians);
    fprintf(f, "\n  ],\n  \"failures\": %d,\n  \"result\": \"%s\",\n  \"event_log_lines\": %llu,\n  \"hash\": \"%s\"\n}\n",
            failures, failures ? "FAIL" : "ok", (unsigned long long)w->log_lines, w->hash);
    return fclose(f) == 0 ? 0 : -1;
}
