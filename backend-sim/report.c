/* report: owns the figures, the summary, the per-peer CSV and the expectation verdicts of a run (see report.h). */
#include "report.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "trade.h"

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
    if (i >= n)
        i = n - 1;
    return v[i];
}

static double secs(hk_time t)
{
    return (double)t / 1e9;
}

static hk_time peer_end(const leecher *l)
{
    return l->lk.completed ? l->complete_at : l->end_at;
}

void report_profile(const sim_world *w, uint32_t pi, profile_result *r)
{
    const sim_profile *p = &w->sc->profiles[pi];
    memset(r, 0, sizeof *r);
    r->baseline_median = -1;
    double *times = malloc((p->count + 1) * sizeof *times), *rates = malloc((p->count + 1) * sizeof *rates);
    if (!times || !rates)
        abort();
    uint32_t nt = 0, nr = 0;
    for (uint32_t k = 0; k < p->count; k++) {
        const leecher *l = &w->peers[p->first_peer + k];
        r->peers++;
        r->bytes += l->lk.bytes;
        if (l->lk.completed) {
            r->completed++;
            times[nt++] = secs(l->complete_at - l->arrival);
        }
        if (l->closed_by_seeder)
            r->closed_by_seeder_peers++;
        if (l->refusals)
            r->refused_peers++;
        hk_time end = peer_end(l);
        if (end > l->arrival && l->connects > 0)
            rates[nr++] = (double)l->lk.bytes / secs(end - l->arrival);
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

void report_baseline_lines(const sim_world *w, FILE *out)
{
    for (uint32_t i = 0; i < w->sc->nprofiles; i++) {
        profile_result r;
        report_profile(w, i, &r);
        fprintf(out, "baseline-median %s %.9f\n", w->sc->profiles[i].name, r.p50);
    }
}

/* Prints one "[section] key = value" line for a key that differs from its default. */
static void param_line(void *user, const char *section, const char *key, const char *value, bool is_default)
{
    if (!is_default)
        fprintf(user, "  [%s] %s = %s\n", section, key, value);
}

void report_uplink(const sim_world *w, report_uplink_figures *u)
{
    memset(u, 0, sizeof *u);
    u->capacity = w->sc->seeder.uplink;
    hk_time first = HK_TIME_NEVER, last = 0;
    for (uint32_t i = 0; i < w->npeers; i++) {
        const leecher *l = &w->peers[i];
        if (l->connects == 0)
            continue;
        if (l->first_connect < first)
            first = l->first_connect;
        hk_time end = peer_end(l);
        if (end > last)
            last = end;
    }
    u->busy_s = last > first && first != HK_TIME_NEVER ? secs(last - first) : 0;
    u->mean_run = w->end_time ? (double)w->payload_received / secs(w->end_time) : 0;
    u->mean_busy = u->busy_s > 0 ? (double)w->payload_received / u->busy_s : 0;
    u->peak = w->uplink_peak;
}

void report_swarm(const sim_world *w, report_swarm_figures *f)
{
    memset(f, 0, sizeof *f);
    f->trade = w->sc->peers.trade;
    f->seeder_bytes = w->seeder.data_bytes_sent;
    f->peers = w->npeers;
    double *times = malloc((w->npeers + 1) * sizeof *times);
    if (!times)
        abort();
    hk_time first = HK_TIME_NEVER;
    for (uint32_t i = 0; i < w->npeers; i++) {
        const leecher *l = &w->peers[i];
        f->traded += trade_bytes_in(l);
        if (!l->lk.completed)
            continue;
        times[f->completed++] = secs(l->complete_at - l->arrival);
        if (l->complete_at < first)
            first = l->complete_at;
    }
    qsort(times, f->completed, sizeof *times, cmp_double);
    f->p50 = pct(times, f->completed, 0.5);
    f->p90 = pct(times, f->completed, 0.9);
    free(times);
    f->per_copy = f->completed ? (double)f->seeder_bytes / ((double)f->completed * (double)w->sc->torrent.size)
                               : INFINITY;
    f->copy_s = w->swarm_copy_at ? secs(w->swarm_copy_at) : -1;
    f->first_complete_s = first != HK_TIME_NEVER ? secs(first) : -1;
}

static void summary_setup(const sim_world *w, const report_run *run, FILE *out)
{
    fprintf(out, "parameters (the effective scenario: keys that differ from the defaults; --json lists all):\n");
    scenario_params(w->sc, param_line, out);
    for (size_t i = 0; i < run->nsets; i++)
        fprintf(out, "  --set %s\n", run->sets[i]);
    fprintf(out, "simgrid: network/model %s, crosstraffic %s; platform %s\n", run->network_model,
            run->crosstraffic ? "on" : "off",
            run->platform ? run->platform : run->platform_kept ? run->platform_kept : "generated (a star)");
}

void report_summary(const sim_world *w, const report_run *run, FILE *out, const hk_stats *st)
{
    const sim_seeder *s = &w->seeder;
    const scenario *sc = w->sc;
    fprintf(out, "== hekate-sim: %s (seed %llu) ==\n", sc->path, (unsigned long long)sc->run.seed);
    summary_setup(w, run, out);
    fprintf(out, "simulated %.3f s, wall %.2f s, peak RSS %.1f MiB, %u peers, %llu connections, %llu core calls\n",
            secs(w->end_time), w->wall_s, (double)w->rss_kib / 1024.0, w->npeers,
            (unsigned long long)s->conns_total + s->refused, (unsigned long long)s->core_calls);
    fprintf(out, "%-18s %6s %9s %9s %9s %9s %12s %6s %7s %7s\n", "profile", "peers", "completed", "p50 s", "p95 s",
            "max s", "bytes", "jain", "closed", "refused");
    for (uint32_t i = 0; i < sc->nprofiles; i++) {
        profile_result r;
        report_profile(w, i, &r);
        fprintf(out, "%-18s %6u %9u %9.3f %9.3f %9.3f %12llu %6.3f %7u %7u\n", sc->profiles[i].name, r.peers,
                r.completed, r.p50, r.p95, r.max, (unsigned long long)r.bytes, r.jain, r.closed_by_seeder_peers,
                r.refused_peers);
    }
    report_swarm_figures sw;
    report_swarm(w, &sw);
    fprintf(out, "swarm: trading %s; seeder sent %llu bytes for %u completed copies: %.4f seeder bytes per copy; "
                 "peers traded %llu bytes; the swarm first held a full copy at %.3f s, the first peer completed at "
                 "%.3f s; completion after arrival p50 %.3f s, p90 %.3f s (all peers)\n",
            sw.trade ? "on" : "off", (unsigned long long)sw.seeder_bytes, sw.completed, sw.per_copy,
            (unsigned long long)sw.traded, sw.copy_s, sw.first_complete_s, sw.p50, sw.p90);
    report_uplink_figures u;
    report_uplink(w, &u);
    fprintf(out, "uplink: %.0f B/s capacity; payload delivered %.0f B/s over the run (%.1f %%), %.0f B/s while peers were "
                 "connected (%.3f s, %.1f %%), busiest %.3f s sample %.0f B/s (%.1f %%)\n",
            u.capacity, u.mean_run, 100 * u.mean_run / u.capacity, u.mean_busy, u.busy_s,
            100 * u.mean_busy / u.capacity, secs(sc->run.sample), u.peak, 100 * u.peak / u.capacity);
    fprintf(out, "choker: max unchoked %llu observed on the wire (core says %u; N = %u), max waiting %u\n",
            (unsigned long long)s->unchoked_max, st->max_unchoked_seen, sc->seeder.core.max_unchoked,
            w->waiting_max);
    double ratio = s->data_bytes_sent ? (double)s->disk.bytes_read / (double)s->data_bytes_sent : 0;
    pc_stats pcs;
    pc_get_stats(s->disk.pc, &pcs);
    fprintf(out, "disk: %llu reads, %llu bytes read, %.3f bytes read per byte sent, %llu loads, %llu prefetches, "
                 "%llu evictions; %llu blocks (%llu bytes) sent, %llu not resident at send\n",
            (unsigned long long)s->disk.reads, (unsigned long long)s->disk.bytes_read, ratio,
            (unsigned long long)s->disk.loads, (unsigned long long)s->disk.prefetches,
            (unsigned long long)pcs.evictions, (unsigned long long)s->blocks_sent,
            (unsigned long long)s->data_bytes_sent, (unsigned long long)s->sent_not_resident);
    if (sc->seeder.verify != SIM_VERIFY_OFF) { /* piece verification (issue 10 item 4) */
        hk_verify_progress vp;
        hk_seeder_verify_progress(s->core, &vp);
        fprintf(out, "verify: %llu pieces checked (%llu bad), %llu bytes hashed; core: %llu good, %llu bad; pass %s "
                     "(%u/%u torrents, %llu bytes); %llu corrupt extents sent; longest request wait %.3f s\n",
                (unsigned long long)s->disk.verifies, (unsigned long long)s->disk.verify_bad,
                (unsigned long long)s->disk.bytes_hashed, (unsigned long long)st->pieces_verified,
                (unsigned long long)st->pieces_bad, vp.active ? "running" : "idle", vp.torrents_done,
                vp.torrents_total, (unsigned long long)vp.bytes_checked, (unsigned long long)s->corrupt_sent,
                secs(w->request_latency_max));
    }
    fprintf(out, "timeouts:");
    for (int k = 0; k < HK_TIMEOUT_KINDS; k++)
        fprintf(out, " %s=%llu", hk_timeout_name((hk_timeout_kind)k), (unsigned long long)st->timeouts[k]);
    fprintf(out, "\ncore: requests rejected %llu, requeues %llu, protocol errors %llu, refused %llu, memory now %llu "
                 "(max sampled %llu) bytes\n",
            (unsigned long long)st->requests_rejected, (unsigned long long)st->requeues,
            (unsigned long long)st->protocol_errors, (unsigned long long)st->peers_refused,
            (unsigned long long)st->memory_bytes, (unsigned long long)s->memory_max);
    if (sc->seeder.core.upload_rate || sc->seeder.core.torrent_upload_rate) /* upload rate caps */
        fprintf(out, "rate caps: upload_rate %llu B/s, torrent_upload_rate %llu B/s; %llu bytes delayed, %llu turns "
                     "stopped for tokens\n",
                (unsigned long long)sc->seeder.core.upload_rate,
                (unsigned long long)sc->seeder.core.torrent_upload_rate,
                (unsigned long long)st->rate_delayed_bytes, (unsigned long long)st->rate_stops);
    fprintf(out, "end: connections %llu (core: peers %u, unchoked %u, waiting %u, queued requests %llu)\n",
            (unsigned long long)s->conns_open, st->peers, st->unchoked, st->waiting,
            (unsigned long long)st->queued_requests);
    fprintf(out, "seeder output errors: monitor %llu, extent mismatches %llu, room overruns %llu\n",
            (unsigned long long)s->monitor_errors, (unsigned long long)s->extent_mismatch,
            (unsigned long long)s->room_overruns);
    fprintf(out, "event log: %llu lines, sha256 %s\n", (unsigned long long)w->log_lines, w->hash);
}

const char *report_end_name(int end)
{
    static const char *const names[] = {"none", "complete", "refused", "closed_by_seeder", "departed", "vanished",
                                        "time"};
    return end >= 0 && end < (int)(sizeof names / sizeof *names) ? names[end] : "?";
}

int report_peers_csv(const sim_world *w, const report_run *run, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "peer,profile,behaviour,torrent,arrival_s,first_connect_s,complete_s,end_s,end_reason,bytes,connects,"
               "refusals,closed_by_seeder,rejects,unrequested,dup_blocks,protocol_errors,down_Bps,up_Bps,latency_s,"
               "rtt_s,window_cap_Bps\n");
    const scenario *sc = w->sc;
    for (uint32_t i = 0; i < w->npeers; i++) {
        const leecher *l = &w->peers[i];
        const sim_peer_link *k = &run->links[i];
        /* generated star: two hops each way; --platform: the route's latency (one way) */
        double rtt = run->platform ? 2 * k->latency : 2 * (k->latency + sc->seeder.latency);
        fprintf(f, "%u,%s,%s,%u,%.9f,%.9f,%.9f,%.9f,%s,%llu,%u,%u,%u,%u,%u,%u,%u,%.17g,%.17g,%.9g,%.9g,%.17g\n",
                l->id, l->prof->name, sim_behaviour_name(l->prof->behaviour), l->torrent, secs(l->arrival),
                secs(l->first_connect), l->lk.completed ? secs(l->complete_at) : -1.0, secs(l->end_at),
                report_end_name((int)l->end), (unsigned long long)l->lk.bytes, l->connects, l->refusals,
                l->closed_by_seeder, l->lk.rejects, l->lk.unrequested, l->lk.dup_blocks, l->lk.protocol_errors, k->down, k->up,
                k->latency, rtt, rtt > 0 ? sc->seeder.window / rtt : 0.0);
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- expectations ---- */

typedef struct verdicts {
    FILE *out;
    int failures, count;
    bool json;                   /* JSON objects, comma-separated, instead of EXPECT lines */
} verdicts;

static void verdict(verdicts *v, bool ok, const char *name, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void verdict(verdicts *v, bool ok, const char *name, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (v->json) {
        fprintf(v->out, "%s\n    {\"name\": ", v->count++ ? "," : "");
        report_json_string(v->out, name);
        fprintf(v->out, ", \"ok\": %s, \"detail\": ", ok ? "true" : "false");
        report_json_string(v->out, detail);
        fprintf(v->out, "}");
    } else
        fprintf(v->out, "EXPECT %s %s: %s\n", ok ? "ok  " : "FAIL", name, detail);
    if (!ok)
        v->failures++;
}

static hk_time ref_timeout(const hk_config *c, sim_ref_timeout r)
{
    switch (r) {
    case REF_HANDSHAKE: return c->handshake_timeout;
    case REF_IDLE: return c->idle_timeout;
    case REF_UNCHOKED_IDLE: return c->unchoked_idle_timeout;
    case REF_UNCHOKED_GRACE: return c->unchoked_grace;
    case REF_SEND_STALL: return c->send_stall_timeout;
    default: return 0;
    }
}

static hk_time ref_point(const leecher *l, sim_ref_timeout r)
{
    switch (r) {
    case REF_HANDSHAKE: return l->c_accepted;
    case REF_IDLE:
    case REF_PROTOCOL: return l->c_last_rx;
    case REF_UNCHOKED_IDLE:
    case REF_UNCHOKED_GRACE: return l->c_first_unchoke;
    case REF_SEND_STALL: return l->c_last_ack;
    default: return 0;
    }
}

/* Every peer of the profile shows `event` at ref + timeout +- tolerance. */
static void check_timing(verdicts *v, const sim_world *w, const sim_profile *p, sim_ref_timeout r, bool choke)
{
    const hk_config *cfg = &w->sc->seeder.core;
    hk_time T = ref_timeout(cfg, r), tol = p->expect.tolerance;
    uint32_t bad = 0, missing = 0;
    double worst = 0;
    for (uint32_t k = 0; k < p->count; k++) {
        const leecher *l = &w->peers[p->first_peer + k];
        hk_time ev = choke ? l->c_first_choke : l->c_closed_at;
        if (!l->closed_by_seeder || !ev) {
            missing++;
            continue;
        }
        hk_time ref = ref_point(l, r);
        if (choke && !ref) {
            missing++;
            continue;
        }
        double dev = (double)((int64_t)ev - (int64_t)(ref + T)) / 1e9;
        if (fabs(dev) > fabs(worst))
            worst = dev;
        if (fabs(dev) * 1e9 > (double)tol)
            bad++;
    }
    char name[128];
    snprintf(name, sizeof name, "%s.%s_after_%s", p->name, choke ? "choked" : "closed", sim_ref_name(r));
    verdict(v, bad == 0 && missing == 0, name,
            "%u peers: %u never %s by the seeder, %u outside %.3f s of %s + %.3f s (worst deviation %+.3f s)",
            p->count, missing, choke ? "choked" : "closed", bad, (double)tol / 1e9,
            r == REF_IDLE || r == REF_PROTOCOL ? "last bytes received"
            : r == REF_SEND_STALL             ? "last acknowledged flight"
            : r == REF_HANDSHAKE              ? "accept"
                                              : "first unchoke",
            (double)T / 1e9, worst);
}

/* The [expect] section: the seeder as a whole. */
static void check_seeder(verdicts *v, const sim_world *w, const hk_stats *st)
{
    const sim_expect *e = &w->sc->expect;
    const sim_seeder *s = &w->seeder;
    if (e->unchoked_max >= 0)
        verdict(v, s->unchoked_max <= (uint64_t)e->unchoked_max, "unchoked_max",
                "at most %llu peers unchoked at once on the wire (limit %lld)", (unsigned long long)s->unchoked_max,
                (long long)e->unchoked_max);
    if (e->no_leak) {
        bool ok = s->conns_open == 0 && st->peers == 0 && st->unchoked == 0 && st->waiting == 0 &&
                  st->queued_requests == 0 && disk_idle(s);
        verdict(v, ok, "no_leak",
                "at the end: %llu connections, core peers %u, unchoked %u, waiting %u, queued requests %llu, "
                "disk %s",
                (unsigned long long)s->conns_open, st->peers, st->unchoked, st->waiting,
                (unsigned long long)st->queued_requests, disk_idle(s) ? "idle" : "busy");
    }
    if (e->disk_read_per_sent_max >= 0) {
        double r = s->data_bytes_sent ? (double)s->disk.bytes_read / (double)s->data_bytes_sent : INFINITY;
        verdict(v, r <= e->disk_read_per_sent_max, "disk_read_per_sent_max",
                "%.4f disk bytes read per byte sent (limit %.4f; %llu read, %llu sent)", r,
                e->disk_read_per_sent_max, (unsigned long long)s->disk.bytes_read,
                (unsigned long long)s->data_bytes_sent);
    }
    if (e->sent_not_resident_max >= 0)
        verdict(v, s->sent_not_resident <= (uint64_t)e->sent_not_resident_max, "sent_not_resident_max",
                "%llu extents handed to send() before they were resident (limit %lld)",
                (unsigned long long)s->sent_not_resident, (long long)e->sent_not_resident_max);
    if (e->memory_max)
        verdict(v, s->memory_max <= e->memory_max, "memory_max",
                "seeder heap at most %llu bytes (hk_stats.memory_bytes, sampled; limit %llu)",
                (unsigned long long)s->memory_max, (unsigned long long)e->memory_max);
    if (e->seeder_errors_max >= 0) {
        uint64_t n = s->monitor_errors + s->extent_mismatch + s->room_overruns;
        verdict(v, n <= (uint64_t)e->seeder_errors_max, "seeder_errors_max",
                "%llu errors in the seeder's output (framing %llu, extent mismatches %llu, room overruns %llu)",
                (unsigned long long)n, (unsigned long long)s->monitor_errors,
                (unsigned long long)s->extent_mismatch, (unsigned long long)s->room_overruns);
    }
}

/* Peers that hold a block of a corrupt piece, and completed peers that lack a piece that is not corrupt. */
static void corrupt_at_peers(const sim_world *w, uint32_t *holders, uint32_t *short_of_good)
{
    *holders = *short_of_good = 0;
    for (uint32_t k = 0; k < w->npeers; k++) {
        const leecher *l = &w->peers[k];
        if (!l->lk.book.have)
            continue;
        bool holds = false, short_good = false;
        for (uint32_t b = 0; b < l->tor.lay.nblocks; b++) {
            bool has = lk_book_has(&l->lk.book, b), bad = scenario_corrupt(w->sc, l->torrent, b / l->tor.lay.bpp);
            holds |= has && bad;
            short_good |= l->lk.completed && !has && !bad;
        }
        *holders += holds;
        *short_of_good += short_good;
    }
}

/* [expect] corrupt_sent_max, request_latency_max, verify_done (piece verification, issue 10 item 4). */
static void check_verify(verdicts *v, const sim_world *w)
{
    const sim_expect *e = &w->sc->expect;
    const sim_seeder *s = &w->seeder;
    if (e->corrupt_sent_max >= 0) {
        uint32_t holders, short_good;
        corrupt_at_peers(w, &holders, &short_good);
        verdict(v, s->corrupt_sent <= (uint64_t)e->corrupt_sent_max && holders == 0, "corrupt_sent_max",
                "%llu extents of corrupt pieces sent (limit %lld); %u peers hold a block of one",
                (unsigned long long)s->corrupt_sent, (long long)e->corrupt_sent_max, holders);
        verdict(v, short_good == 0, "every_other_piece_served",
                "%u completed peers lack a piece that is not corrupt", short_good);
    }
    if (e->request_latency_max)
        verdict(v, w->request_latency_max <= e->request_latency_max, "request_latency_max",
                "the longest block request waited %.3f s for its piece (limit %.3f s)", secs(w->request_latency_max),
                secs(e->request_latency_max));
    if (e->verify_done) {
        hk_verify_progress vp;
        hk_seeder_verify_progress(s->core, &vp);
        uint64_t all = (uint64_t)w->sc->torrent.count * w->sc->torrent.size;
        hk_stats st;
        hk_seeder_stats(s->core, &st);
        uint64_t pieces = w->sc->torrent.count *
                          ((w->sc->torrent.size + w->sc->torrent.piece_length - 1) / w->sc->torrent.piece_length);
        verdict(v, !vp.active && vp.torrents_done == w->sc->torrent.count && st.pieces_verified + st.pieces_bad ==
                pieces, "verify_done", "pass %s, %u of %u torrents, %llu of %llu bytes checked by it; %llu of %llu "
                "pieces verified", vp.active ? "still running" : "over", vp.torrents_done, w->sc->torrent.count,
                (unsigned long long)vp.bytes_checked, (unsigned long long)all,
                (unsigned long long)(st.pieces_verified + st.pieces_bad), (unsigned long long)pieces);
    }
}

/* [expect] rate_cap: the peers' payload over rate_window, per second, within rate_cap_within of rate_cap. */
static void check_rate_cap(verdicts *v, const sim_world *w)
{
    const sim_expect *e = &w->sc->expect;
    if (e->rate_cap_within < 0)
        return;
    bool sampled = w->rate_at[0] && w->rate_at[1] > w->rate_at[0];
    double secs_ = sampled ? secs(w->rate_at[1] - w->rate_at[0]) : 0;
    double rate = sampled ? (double)(w->rate_bytes[1] - w->rate_bytes[0]) / secs_ : 0;
    double dev = rate / e->rate_cap - 1;
    verdict(v, sampled && fabs(dev) <= e->rate_cap_within, "rate_cap_within",
            "peers received %.0f B/s of payload over %.3f s (t=%.3f..%.3f s), %+.4f%% of the %.0f B/s cap "
            "(allowed +-%.2f%%)",
            rate, secs_, secs(w->rate_at[0]), secs(w->rate_at[1]), dev * 100, e->rate_cap,
            e->rate_cap_within * 100);
}

/* [expect] seeder_per_copy_max, swarm_copy_by (leechers that trade). */
static void check_swarm(verdicts *v, const sim_world *w)
{
    const sim_expect *e = &w->sc->expect;
    if (e->seeder_per_copy_max < 0 && !e->swarm_copy_by)
        return;
    report_swarm_figures sw;
    report_swarm(w, &sw);
    if (e->seeder_per_copy_max >= 0)
        verdict(v, sw.per_copy <= e->seeder_per_copy_max, "seeder_per_copy_max",
                "the seeder sent %.4f torrent sizes per completed copy (limit %.4f; %llu bytes, %u copies; peers "
                "traded %llu bytes)", sw.per_copy, e->seeder_per_copy_max, (unsigned long long)sw.seeder_bytes,
                sw.completed, (unsigned long long)sw.traded);
    if (e->swarm_copy_by)
        verdict(v, sw.copy_s >= 0 && sw.copy_s <= secs(e->swarm_copy_by), "swarm_copy_by",
                "the peers together first held a full copy at %.3f s (limit %.3f s; -1: never)", sw.copy_s,
                secs(e->swarm_copy_by));
}

/* [expect NAME] complete_by: every peer of the profile completed by then. */
static void check_complete_by(verdicts *v, const sim_world *w, const sim_profile *p)
{
    uint32_t late = 0;
    hk_time last = 0;
    for (uint32_t k = 0; k < p->count; k++) {
        const leecher *l = &w->peers[p->first_peer + k];
        if (!l->lk.completed || l->complete_at > p->expect.complete_by)
            late++;
        if (l->lk.completed && l->complete_at > last)
            last = l->complete_at;
    }
    char name[128];
    snprintf(name, sizeof name, "%s.complete_by", p->name);
    verdict(v, late == 0, name, "%u peers not complete by t=%.3f s (last completion at %.3f s)", late,
            secs(p->expect.complete_by), secs(last));
}

/* [expect NAME]: one profile's peers. */
static void check_profile(verdicts *v, const sim_world *w, uint32_t i, const double *baseline_medians)
{
    const sim_profile *p = &w->sc->profiles[i];
    const sim_profile_expect *x = &p->expect;
    profile_result r;
    report_profile(w, i, &r);
    char name[128];
    if (x->complete_min >= 0) {
        snprintf(name, sizeof name, "%s.complete", p->name);
        double f = r.peers ? (double)r.completed / r.peers : 0;
        verdict(v, f >= x->complete_min, name, "%u of %u peers completed (%.3f, required %.3f)", r.completed,
                r.peers, f, x->complete_min);
    }
    if (x->complete_by != HK_TIME_NEVER)
        check_complete_by(v, w, p);
    if (x->jain_min >= 0) {
        snprintf(name, sizeof name, "%s.jain_min", p->name);
        verdict(v, r.jain >= x->jain_min, name, "Jain's index of download rates %.4f (required >= %.4f)", r.jain,
                x->jain_min);
    }
    if (x->closed_after != REF_NONE)
        check_timing(v, w, p, x->closed_after, false);
    if (x->choked_after != REF_NONE)
        check_timing(v, w, p, x->choked_after, true);
    if (x->closed_by_seeder_max >= 0) {
        snprintf(name, sizeof name, "%s.closed_by_seeder_max", p->name);
        verdict(v, r.closed_by_seeder_peers <= (uint64_t)x->closed_by_seeder_max, name,
                "%u peers were closed by the seeder (limit %lld)", r.closed_by_seeder_peers,
                (long long)x->closed_by_seeder_max);
    }
    if (x->median_vs_baseline_max >= 0) {
        snprintf(name, sizeof name, "%s.median_vs_baseline_max", p->name);
        double base = baseline_medians ? baseline_medians[i] : -1;
        double ratio = base > 0 && r.p50 > 0 ? r.p50 / base : INFINITY;
        verdict(v, ratio <= x->median_vs_baseline_max, name,
                "median completion %.3f s vs %.3f s without [profile %s]: ratio %.4f (limit %.4f)", r.p50, base,
                w->sc->expect.baseline_without, ratio, x->median_vs_baseline_max);
    }
}

int report_expectations_as(const sim_world *w, FILE *out, bool json, const hk_stats *st,
                           const double *baseline_medians)
{
    verdicts v = {.out = out, .json = json};
    check_seeder(&v, w, st);
    check_rate_cap(&v, w);
    check_verify(&v, w);
    check_swarm(&v, w);
    for (uint32_t i = 0; i < w->sc->nprofiles; i++)
        check_profile(&v, w, i, baseline_medians);
    return v.failures;
}

int report_expectations(const sim_world *w, FILE *out, const hk_stats *st, const double *baseline_medians)
{
    return report_expectations_as(w, out, false, st, baseline_medians);
}
