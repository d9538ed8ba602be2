/* swarm_report: owns the figures, summary, CSVs and expectation verdicts of a hekate-swarm run (see
 * swarm_report.h). The figures are computed as backend-sim/report.c computes them. */
#include "swarm_report.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct result {
    uint32_t peers, completed, closed, refused;
    double p50, p95, max, jain;
    uint64_t bytes;
} result;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, uint32_t n, double q)
{
    if (n == 0)
        return -1;
    uint32_t i = (uint32_t)ceil(q * n);
    if (i > 0)
        i--;
    return v[i < n ? i : n - 1];
}

static void profile_result(const swarm *sw, uint32_t pi, result *r)
{
    const sim_profile *p = &sw->sc->profiles[pi];
    memset(r, 0, sizeof *r);
    double *times = malloc((p->count + 1) * sizeof *times), *rates = malloc((p->count + 1) * sizeof *rates);
    if (!times || !rates)
        abort();
    uint32_t nt = 0, nr = 0;
    for (uint32_t k = 0; k < p->count; k++) {
        const swarm_peer *l = &sw->peers[p->first_peer + k];
        r->peers++;
        r->bytes += l->lk.bytes;
        if (l->completed)
            times[nt++] = l->complete_at - l->arrival;
        r->completed += l->completed;
        r->closed += l->closed_by_seeder > 0;
        r->refused += l->refusals > 0;
        double end = l->completed ? l->complete_at : l->end_at;
        if (end > l->arrival && l->connects > 0)
            rates[nr++] = (double)l->lk.bytes / (end - l->arrival);
    }
    qsort(times, nt, sizeof *times, cmp_double);
    r->p50 = pct(times, nt, 0.5);
    r->p95 = pct(times, nt, 0.95);
    r->max = nt ? times[nt - 1] : -1;
    double s = 0, s2 = 0;
    for (uint32_t i = 0; i < nr; i++) {
        s += rates[i];
        s2 += rates[i] * rates[i];
    }
    r->jain = nr >= 2 && s2 > 0 ? s * s / (nr * s2) : -1;
    free(times);
    free(rates);
}

void swarm_summary(const swarm *sw, FILE *out)
{
    const scenario *sc = sw->sc;
    uint64_t connects = 0, bad = 0, proto = 0, unreq = 0, dup = 0, rejects = 0;
    uint64_t mse = 0, rc4 = 0, mse_failed = 0, magnets = 0, fetched = 0, meta_failed = 0;
    for (uint32_t i = 0; i < sw->npeers; i++) {
        const swarm_peer *p = &sw->peers[i];
        mse += p->lk.mse_handshakes;
        rc4 += p->lk.mse_rc4_handshakes;
        mse_failed += p->lk.mse_failures;
        magnets += p->lk.par->behaviour == LK_MAGNET;
        fetched += p->lk.par->behaviour == LK_MAGNET && !p->lk.meta.wanted;
        meta_failed += p->lk.meta_failures;
        connects += p->connects;
        bad += p->lk.bad_blocks;
        proto += p->lk.protocol_errors;
        unreq += p->lk.unrequested;
        dup += p->lk.dup_blocks;
        rejects += p->lk.rejects;
    }
    fprintf(out, "== hekate-swarm: %s (seed %llu) ==\n", sc->path, (unsigned long long)sc->run.seed);
    fprintf(out, "real %.3f s, cpu %.2f s, peak RSS %.1f MiB, %u peers, %llu connections (at most %u at once)\n",
            sw->end_time, sw->cpu_s, (double)sw->rss_kib / 1024.0, sw->npeers, (unsigned long long)connects,
            sw->connected_max);
    fprintf(out, "%-18s %6s %9s %9s %9s %9s %12s %6s %7s %7s\n", "profile", "peers", "completed", "p50 s", "p95 s",
            "max s", "bytes", "jain", "closed", "refused");
    for (uint32_t i = 0; i < sc->nprofiles; i++) {
        result r;
        profile_result(sw, i, &r);
        fprintf(out, "%-18s %6u %9u %9.3f %9.3f %9.3f %12llu %6.3f %7u %7u\n", sc->profiles[i].name, r.peers,
                r.completed, r.p50, r.p95, r.max, (unsigned long long)r.bytes, r.jain, r.closed, r.refused);
    }
    fprintf(out, "choker: max unchoked %u observed on the wire (seeder says %lld; N = %u)\n", sw->unchoked_max,
            (long long)sw->seeder_unchoked_max, sc->seeder.core.max_unchoked);
    fprintf(out, "fleet: %llu bytes read from the sockets, %llu payload; blocks failing verification %llu, protocol "
                 "errors %llu, unrequested %llu, duplicates %llu, rejects %llu; vanished sockets closed %u\n",
            (unsigned long long)sw->bytes_read, (unsigned long long)sw->payload_received, (unsigned long long)bad,
            (unsigned long long)proto, (unsigned long long)unreq, (unsigned long long)dup,
            (unsigned long long)rejects, sw->zombies_closed);
    if (mse + mse_failed + magnets > 0)
        fprintf(out, "MSE: %llu handshakes (%llu RC4, %llu plaintext), %llu failed; magnet: %llu of %llu peers fetched the "
                     "metadata, %llu failures\n",
                (unsigned long long)mse, (unsigned long long)rc4, (unsigned long long)(mse - rc4),
                (unsigned long long)mse_failed, (unsigned long long)fetched, (unsigned long long)magnets,
                (unsigned long long)meta_failed);
}

int swarm_peers_csv(const swarm *sw, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "peer,profile,behaviour,torrent,arrival_s,first_connect_s,complete_s,end_s,end,bytes,connects,"
               "refusals,closed_by_seeder,rejects,unrequested,dup_blocks,protocol_errors,down_Bps,latency_s,"
               "unchokes,chokes\n");
    for (uint32_t i = 0; i < sw->npeers; i++) {
        const swarm_peer *l = &sw->peers[i];
        fprintf(f, "%u,%s,%s,%u,%.9f,%.9f,%.9f,%.9f,%d,%llu,%u,%u,%u,%u,%u,%u,%u,%.0f,%.6f,%u,%u\n", l->id,
                l->prof->name, sim_behaviour_name(l->prof->behaviour), l->torrent, l->arrival, l->first_connect,
                l->completed ? l->complete_at : -1.0, l->end_at, (int)l->end, (unsigned long long)l->lk.bytes,
                l->connects, l->refusals, l->closed_by_seeder, l->lk.rejects, l->lk.unrequested, l->lk.dup_blocks,
                l->lk.protocol_errors, l->down, l->latency, l->lk.unchokes, l->lk.chokes);
    }
    return fclose(f) == 0 ? 0 : -1;
}

int swarm_chokes_csv(const swarm *sw, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "peer,time_s,event\n");
    for (uint32_t i = 0; i < sw->npeers; i++)
        for (uint32_t k = 0; k < sw->peers[i].nhist; k++) {
            const swarm_event *e = &sw->peers[i].hist[k];
            fprintf(f, "%u,%.6f,%s\n", i, e->t, e->unchoked ? "unchoke" : e->blind ? "blind" : "choke");
        }
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- expectations ---- */

typedef struct verdicts {
    FILE *out;
    int failures;
} verdicts;

static void verdict(verdicts *v, int ok, const char *name, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ok: 1 ok, 0 FAIL, -1 n/a */
static void verdict(verdicts *v, int ok, const char *name, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    fprintf(v->out, "EXPECT %s %s: %s\n", ok > 0 ? "ok  " : ok == 0 ? "FAIL" : "n/a ", name, detail);
    if (ok == 0)
        v->failures++;
}

static void check_seeder(verdicts *v, const swarm *sw)
{
    const sim_expect *e = &sw->sc->expect;
    if (e->unchoked_max >= 0 && sw->seeder_unchoked_max >= 0)
        verdict(v, sw->seeder_unchoked_max <= e->unchoked_max, "unchoked_max",
                "at most %lld peers unchoked at once (the seeder's hekate_peers_unchoked_max; the peers saw %u) "
                "(limit %lld)", (long long)sw->seeder_unchoked_max, sw->unchoked_max, (long long)e->unchoked_max);
    else if (e->unchoked_max >= 0)
        verdict(v, sw->unchoked_max <= (uint64_t)e->unchoked_max, "unchoked_max",
                "at most %u peers unchoked at once as the peers saw it on the wire, late behind the data a peer had "
                "not read yet (limit %lld; --metrics gives the seeder's own count)", sw->unchoked_max,
                (long long)e->unchoked_max);
    const char *sim_only = "measured inside the simulated seeder only (hekate-sim)";
    if (e->no_leak)
        verdict(v, -1, "no_leak", "%s", sim_only);
    if (e->disk_read_per_sent_max >= 0)
        verdict(v, -1, "disk_read_per_sent_max", "%s; scripts/sim-vs-real.sh measures the daemon's", sim_only);
    if (e->sent_not_resident_max >= 0)
        verdict(v, -1, "sent_not_resident_max", "%s", sim_only);
    if (e->memory_max)
        verdict(v, -1, "memory_max", "%s", sim_only);
    if (e->seeder_errors_max >= 0) {
        uint64_t bad = 0;
        for (uint32_t i = 0; i < sw->npeers; i++)
            bad += sw->peers[i].lk.bad_blocks + sw->peers[i].lk.protocol_errors;
        verdict(v, bad <= (uint64_t)e->seeder_errors_max, "seeder_errors_max",
                "%llu errors in the seeder's output as the peers decoded and verified it", (unsigned long long)bad);
    }
    if (e->rate_cap_within >= 0) {
        bool sampled = sw->rate_at[0] > 0 && sw->rate_at[1] > sw->rate_at[0];
        double s = sampled ? sw->rate_at[1] - sw->rate_at[0] : 0;
        double rate = sampled ? (double)(sw->rate_bytes[1] - sw->rate_bytes[0]) / s : 0;
        double dev = rate / e->rate_cap - 1;
        verdict(v, sampled && fabs(dev) <= e->rate_cap_within, "rate_cap_within",
                "peers received %.0f B/s of payload over %.3f s (t=%.3f..%.3f s), %+.4f%% of the %.0f B/s cap "
                "(allowed +-%.2f%%)",
                rate, s, sw->rate_at[0], sw->rate_at[1], dev * 100, e->rate_cap, e->rate_cap_within * 100);
    }
}

static void check_profile(verdicts *v, const swarm *sw, uint32_t i)
{
    const sim_profile *p = &sw->sc->profiles[i];
    const sim_profile_expect *x = &p->expect;
    result r;
    profile_result(sw, i, &r);
    char name[128];
    if (x->complete_min >= 0) {
        snprintf(name, sizeof name, "%s.complete", p->name);
        double f = r.peers ? (double)r.completed / r.peers : 0;
        verdict(v, f >= x->complete_min, name, "%u of %u peers completed (%.3f, required %.3f)", r.completed,
                r.peers, f, x->complete_min);
    }
    if (x->complete_by != HK_TIME_NEVER) {
        uint32_t late = 0;
        for (uint32_t k = 0; k < p->count; k++) {
            const swarm_peer *l = &sw->peers[p->first_peer + k];
            late += !l->completed || l->complete_at > (double)x->complete_by / 1e9;
        }
        snprintf(name, sizeof name, "%s.complete_by", p->name);
        verdict(v, late == 0, name, "%u peers not complete by t=%.3f s", late, (double)x->complete_by / 1e9);
    }
    if (x->jain_min >= 0) {
        snprintf(name, sizeof name, "%s.jain_min", p->name);
        verdict(v, r.jain >= x->jain_min, name, "Jain's index of download rates %.4f (required >= %.4f)", r.jain,
                x->jain_min);
    }
    if (x->closed_by_seeder_max >= 0) {
        snprintf(name, sizeof name, "%s.closed_by_seeder_max", p->name);
        verdict(v, r.closed <= (uint64_t)x->closed_by_seeder_max, name,
                "%u peers were closed by the seeder (limit %lld)", r.closed, (long long)x->closed_by_seeder_max);
    }
    if (x->closed_after != REF_NONE || x->choked_after != REF_NONE) {
        snprintf(name, sizeof name, "%s.%s_after", p->name, x->closed_after != REF_NONE ? "closed" : "choked");
        verdict(v, -1, name, "timed from the simulated seeder's own events (hekate-sim)");
    }
    if (x->median_vs_baseline_max >= 0) {
        snprintf(name, sizeof name, "%s.median_vs_baseline_max", p->name);
        verdict(v, -1, name, "needs the baseline run (hekate-sim; here: run again with --drop-profile)");
    }
}

int swarm_expectations(const swarm *sw, FILE *out)
{
    verdicts v = {.out = out};
    check_seeder(&v, sw);
    for (uint32_t i = 0; i < sw->sc->nprofiles; i++)
        check_profile(&v, sw, i);
    return v.failures;
}
