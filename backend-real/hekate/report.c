/* report: what hekate prints and logs about the torrents its scans find (see report.h). */
#include "report.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "infohash.h"
#include "log.h"
#include "metainfo.h"

static void human_size(uint64_t n, char *buf, size_t cap)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
    double v = (double)n;
    unsigned u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof *units) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%" PRIu64 " B", n);
    else
        snprintf(buf, cap, "%.1f %s", v, units[u]);
}

/* hekate's own address for the x.pe= of its magnet links, "ADDR:PORT" or "[ADDR]:PORT", into buf; "" when it is not
 * known: no --bind or a wildcard one (0.0.0.0, ::), or no port yet (--list with -p 0). */
static void own_peer(const app *a, char *buf, size_t cap)
{
    buf[0] = '\0';
    const char *addr = a->opt->bind_addr;
    unsigned char bin[sizeof(struct in6_addr)];
    static const unsigned char zero[sizeof(struct in6_addr)];
    bool v4 = addr && inet_pton(AF_INET, addr, bin) == 1;
    bool v6 = !v4 && addr && inet_pton(AF_INET6, addr, bin) == 1;
    if (!(v4 || v6) || memcmp(bin, zero, v4 ? 4 : 16) == 0)
        return;
    const hk_listener *l = a->real ? hk_real_listener(a->real) : NULL;
    unsigned port = l ? hk_listener_port(l) : a->opt->port;
    if (port == 0)
        return;
    snprintf(buf, cap, v6 ? "[%s]:%u" : "%s:%u", addr, port);
}

/* The torrent's magnet link (every tracker as tr=, hekate itself as x.pe= when known), malloc'd; NULL if out of
 * memory. */
static char *make_magnet(const app *a, const mi_torrent *mi)
{
    char peer[INET6_ADDRSTRLEN + 16];
    own_peer(a, peer, sizeof peer);
    const char *pe = peer[0] ? peer : NULL;
    size_t need = mi_magnet(mi, pe, NULL, 0) + 1;
    char *m = malloc(need);
    if (m)
        mi_magnet(mi, pe, m, need);
    return m;
}

/* ---- the first scan ---- */

/* --list: what would be served, with trackers (and magnet links with -v). */
static void list_served(const app *a, const char *path, const mi_torrent *mi)
{
    char hex[IH_HEX_LEN + 1], size[32];
    ih_hex(mi->info_hash, hex);
    human_size(mi->total_length, size, sizeof size);
    printf("served   %s  %s (%" PRIu64 " bytes), %u file%s  \"%s\"  %s\n", hex, size, mi->total_length,
           mi->file_count, mi->file_count == 1 ? "" : "s", mi->name, path);
    if (a->opt->verbosity > 0) {
        char *m = make_magnet(a, mi);
        if (m)
            printf("         %s\n", m);
        free(m);
    }
    for (uint32_t t = 0; t < mi->tier_count; t++) { /* trackers, by tier (BEP 12) */
        printf("         tier %u:", t + 1);
        for (uint32_t k = 0; k < mi->tiers[t].count; k++)
            printf(" %s", mi->trackers[mi->tiers[t].first + k]);
        printf("\n");
    }
    if (mi->tier_count == 0)
        printf("         no trackers\n");
}

/* A torrent added by the first scan: magnet links as they come (-v), or the first few kept for the report. */
static void startup_served(app *a, const char *path, const mi_torrent *mi)
{
    char hex[IH_HEX_LEN + 1];
    ih_hex(mi->info_hash, hex);
    hk_log(HK_LOG_DEBUG, "serving %s (%s, %u files)", path, hex, mi->file_count);
    if (a->opt->verbosity > 0) {
        char *m = make_magnet(a, mi);
        if (m)
            printf("  %s\n    %s\n", mi->name, m);
        free(m);
    } else if (a->nfirst < MAGNETS_SHOWN) { /* printed after the summary if there are no more than these */
        a->first[a->nfirst].magnet = make_magnet(a, mi);
        a->first[a->nfirst].name = strdup(mi->name);
        a->nfirst++;
    }
}

/* A .torrent file or folder the first scan will not serve: --list says "rejected" for all of them; the log tells
 * skipped folders (verb "skipped") from rejected torrents (verb "rejected"). */
static void startup_refused(const app *a, const hk_rescan_event *ev, const char *verb)
{
    if (a->opt->list || a->opt->verify_check) /* --verify: a torrent without its data is a failure it reports */
        printf("rejected %s: %s\n", ev->path, ev->why);
    else
        hk_log(HK_LOG_WARN, "%s %s: %s", verb, ev->path, ev->why);
}

/* An event of the first scan, for the start-up or --list report. false: one that cannot concern it (nothing was
 * served before the first scan to remove or keep), logged as a rescan's would be. */
static bool first_scan_event(app *a, const hk_rescan_event *ev)
{
    switch (ev->kind) {
    case HK_RESCAN_ADDED:
    case HK_RESCAN_READDED:
        a->served++;
        if (a->opt->list)
            list_served(a, ev->path, ev->mi);
        else
            startup_served(a, ev->path, ev->mi);
        return true;
    case HK_RESCAN_REJECTED:
    case HK_RESCAN_STILL_FAILED:
    case HK_RESCAN_ERROR:
        a->rejected++;
        startup_refused(a, ev, "rejected");
        return true;
    case HK_RESCAN_PROBLEM:
        startup_refused(a, ev, "skipped");
        return true;
    case HK_RESCAN_REMOVED:
    case HK_RESCAN_KEPT:
        return false;
    }
    return false;
}

/* ---- rescans ---- */

static void log_added(const app *a, const hk_rescan_event *ev, const char *hex)
{
    char size[32];
    human_size(ev->mi->total_length, size, sizeof size);
    hk_log(HK_LOG_INFO, "added %s (%s): \"%s\", %s, %u file%s", ev->path, hex, ev->mi->name, size,
           ev->mi->file_count, ev->mi->file_count == 1 ? "" : "s");
    if (a->opt->verbosity > 0) {
        char *m = make_magnet(a, ev->mi);
        if (m)
            hk_log(HK_LOG_INFO, "  %s", m);
        free(m);
    }
}

/* One log line per change a rescan makes (a reason repeated from the last rescan only at DEBUG). */
static void rescan_event(const app *a, const hk_rescan_event *ev)
{
    char hex[IH_HEX_LEN + 1] = "";
    if (ev->info_hash)
        ih_hex(ev->info_hash, hex);
    hk_log_level warn_once = ev->repeated ? HK_LOG_DEBUG : HK_LOG_WARN;
    switch (ev->kind) {
    case HK_RESCAN_ADDED: log_added(a, ev, hex); return;
    case HK_RESCAN_READDED: hk_log(HK_LOG_INFO, "added %s again (%s): %s", ev->path, hex, ev->why); return;
    case HK_RESCAN_REMOVED: hk_log(HK_LOG_INFO, "removed %s (%s): %s", ev->path, hex, ev->why); return;
    case HK_RESCAN_REJECTED: hk_log(warn_once, "rejected %s: %s", ev->path, ev->why); return;
    case HK_RESCAN_STILL_FAILED: hk_log(warn_once, "still failed %s (%s): %s", ev->path, hex, ev->why); return;
    case HK_RESCAN_ERROR:
        hk_log(HK_LOG_WARN, "could not examine %s now: %s (left as it is)", ev->path, ev->why);
        return;
    case HK_RESCAN_KEPT: hk_log(HK_LOG_WARN, "kept %s (%s): %s", ev->path, hex, ev->why); return;
    case HK_RESCAN_PROBLEM: hk_log(HK_LOG_WARN, "skipped %s: %s", ev->path, ev->why); return;
    }
}

/* ---- every scan ---- */

#define LINK_PROBLEM "is a symbolic link to a folder" /* scan.c's reason for one (said once per link) */

/* true if ev is a symbolic link to a folder said before (or that cannot be remembered: out of memory); else it is
 * remembered now. */
static bool link_said_before(app *a, const hk_rescan_event *ev)
{
    uint64_t h = hk_mix64(hk_fnv1a64_str(ev->path));
    for (size_t i = 0; i < a->nlinks_said; i++)
        if (a->links_said[i] == h)
            return true;
    if (a->nlinks_said == a->links_cap) {
        size_t cap = a->links_cap ? 2 * a->links_cap : 16;
        uint64_t *v = realloc(a->links_said, cap * sizeof *v);
        if (!v)
            return false;
        a->links_said = v;
        a->links_cap = cap;
    }
    a->links_said[a->nlinks_said++] = h;
    return false;
}

void report_links_free(app *a)
{
    free(a->links_said);
    a->links_said = NULL;
    a->nlinks_said = a->links_cap = 0;
}

static void on_event(void *arg, const hk_rescan_event *ev)
{
    app *a = arg;
    if (ev->kind == HK_RESCAN_PROBLEM && strstr(ev->why, LINK_PROBLEM) && link_said_before(a, ev)) {
        hk_log(HK_LOG_DEBUG, "skipped %s: %s", ev->path, ev->why);
        return;
    }
    if (!(ev->repeated && (ev->kind == HK_RESCAN_REJECTED || ev->kind == HK_RESCAN_STILL_FAILED)))
        a->loud++;
    if (!a->started && first_scan_event(a, ev))
        return;
    rescan_event(a, ev);
}

static void on_progress(void *arg, const hk_rescan_stats *st)
{
    app *a = arg;
    if (a->opt->list || a->opt->verify_check)
        return;
    hk_log(HK_LOG_INFO, "%s: %zu .torrent files examined so far (%zu added, %zu removed, %zu failed) in %.1f s",
           a->started ? "rescan" : "scan", st->files, st->added, st->removed, st->failed, st->seconds);
}

hk_rescan_cb report_callbacks(app *a)
{
    return (hk_rescan_cb){ .on_event = on_event, .on_progress = on_progress, .arg = a };
}

void report_scan_done(const app *a, const hk_rescan_stats *st)
{
    hk_log(a->started && (a->asked || a->loud > 0) ? HK_LOG_INFO : HK_LOG_DEBUG,
           "%s done: %zu added, %zu removed, %zu failed; %zu torrent%s served (%zu .torrent file%s examined, %zu "
           "unchanged%s) in %.3f s",
           a->started ? "rescan" : "scan", st->added, st->removed, st->failed, st->served,
           st->served == 1 ? "" : "s", st->files, st->files == 1 ? "" : "s", st->unchanged,
           st->kept ? ", some kept: see above" : "", st->seconds);
    if (a->opt->shard_n > 1) /* --shard: the torrents this process leaves to the others */
        hk_log(a->started && !a->asked && a->loud == 0 ? HK_LOG_DEBUG : HK_LOG_INFO,
               "shard %u of %u: %zu torrent%s %s, %zu in other shards", a->opt->shard_k, a->opt->shard_n,
               st->served, st->served == 1 ? "" : "s", a->opt->list ? "would be served" : "served", st->other_shard);
    if (a->started && st->served == 0)
        hk_log(HK_LOG_WARN, "serving nothing until a rescan finds a torrent");
}

void report_first_scan_stopped(const app *a, int sig, const hk_rescan_stats *st)
{
    const char *what = a->opt->list ? "listing abandoned (the list above is incomplete)" : "stopping";
    if (!st) {
        hk_log(HK_LOG_WARN, "%s received during start-up: %s", strsignal(sig), what);
        return;
    }
    hk_log(HK_LOG_WARN, "%s received during the first scan: first scan abandoned after %zu .torrent file%s (%zu %s); "
           "%s", strsignal(sig), st->files, st->files == 1 ? "" : "s", st->added,
           a->opt->list ? "would be served" : "added, none announced", what);
}

/* ---- the reports at the end of the first scan ---- */

void report_list_total(const app *a)
{
    printf("%zu torrent%s would be served, %zu rejected\n", a->served, a->served == 1 ? "" : "s", a->rejected);
}

static const char *family_name(const hk_listener *l)
{
    switch (hk_listener_family(l)) {
    case HK_FAMILY_V4: return hk_listener_fell_back(l) ? "IPv4 only: no IPv6 on this host" : "IPv4";
    case HK_FAMILY_V6: return "IPv6";
    case HK_FAMILY_ANY: return "IPv4 and IPv6";
    }
    return "?";
}

void report_startup(app *a)
{
    const hk_listener *l = hk_real_listener(a->real);
    if (a->opt->verbosity >= 0) {
        printf("hekate %s: serving %zu torrent%s on port %u (%s)%s", HEKATE_VERSION, a->served,
               a->served == 1 ? "" : "s", (unsigned)hk_listener_port(l), family_name(l), a->rejected ? ", " : "\n");
        if (a->rejected)
            printf("%zu rejected (see the messages above)\n", a->rejected);
        if (a->served <= MAGNETS_SHOWN) {
            for (size_t i = 0; i < a->nfirst; i++)
                printf("  %s\n    %s\n", a->first[i].name ? a->first[i].name : "?",
                       a->first[i].magnet ? a->first[i].magnet : "?");
        }
        fflush(stdout);
    }
    report_free(a);
    if (a->served == 0)
        hk_log(HK_LOG_WARN, "serving nothing until a rescan finds a torrent (every %.9g s, or on SIGHUP)",
               (double)a->opt->rescan_interval / 1e9);
}

void report_free(app *a)
{
    for (size_t i = 0; i < a->nfirst; i++) {
        free(a->first[i].magnet);
        free(a->first[i].name);
    }
    a->nfirst = 0;
}
