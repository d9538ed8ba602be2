/* verify_run: owns `hekate --verify DIR...` after the first scan (contract in verify_run.h): waiting for the
 * seeder's pass on the loop, then the report and the exit status. */
#include "verify_run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "early_signals.h"
#include "infohash.h"
#include "log.h"
#include "served.h"
#include "store.h"

#define POLL_EVERY 0.05 /* seconds between two looks at the pass and at a pending stop */
#define BAD_SHOWN 64    /* bad pieces listed per torrent, then a count */

typedef struct waiter {
    hk_seeder *s;
    bool stopped;
} waiter;

static void poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    waiter *wt = w->data;
    hk_verify_progress p;
    hk_seeder_verify_progress(wt->s, &p);
    if (early_signals_stop()) {
        wt->stopped = true;
        ev_break(loop, EVBREAK_ALL);
    } else if (!p.active) {
        ev_break(loop, EVBREAK_ALL);
    }
}

/* "piece 3 fails its hash" / "pieces 3, 17 and 5 more fail their hash" into buf. */
static void bad_list(hk_seeder *s, const uint8_t ih[20], uint32_t n, char *buf, size_t len)
{
    uint32_t bad[BAD_SHOWN];
    uint32_t nshown = hk_seeder_bad_pieces(s, ih, bad, BAD_SHOWN) < BAD_SHOWN ? n : BAD_SHOWN;
    size_t at = (size_t)snprintf(buf, len, "%s ", n == 1 ? "piece" : "pieces");
    for (uint32_t k = 0; k < nshown && at < len; k++)
        at += (size_t)snprintf(buf + at, len - at, "%s%" PRIu32, k ? ", " : "", bad[k]);
    if (n > nshown && at < len)
        at += (size_t)snprintf(buf + at, len - at, " and %" PRIu32 " more", n - nshown);
    if (at < len)
        snprintf(buf + at, len - at, " %s", n == 1 ? "fails its hash" : "fail their hash");
}

typedef struct tally {
    size_t intact, damaged, unreadable;
} tally;

static int by_path(const void *x, const void *y)
{
    const hk_served_rec *a = *(const hk_served_rec *const *)x, *b = *(const hk_served_rec *const *)y;
    return hk_served_path_cmp(a, b);
}

/* The served records with a storage, sorted by path (malloc'd, *n of them); NULL when out of memory. */
static const hk_served_rec **sorted_records(const hk_served *sv, size_t *n)
{
    size_t cap = hk_served_with_storage(sv), cursor = 0;
    const hk_served_rec **v = malloc((cap ? cap : 1) * sizeof *v);
    *n = 0;
    if (!v)
        return NULL;
    for (const hk_served_rec *r = hk_served_next(sv, &cursor); r && *n < cap; r = hk_served_next(sv, &cursor))
        if (hk_served_storage(r))
            v[(*n)++] = r;
    qsort(v, *n, sizeof *v, by_path);
    return v;
}

/* One line per torrent found damaged or unreadable, in path order, counted into *t. */
static void report_torrents(app *a, tally *t)
{
    hk_seeder *s = hk_real_seeder(a->real);
    size_t n;
    const hk_served_rec **recs = sorted_records(hk_real_served(a->real), &n);
    if (!recs) {
        printf("out of memory for the report\n");
        t->unreadable++; /* not a clean bill of health */
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const hk_served_rec *r = recs[i];
        hk_torrent_stats ts;
        const uint8_t *ih = hk_seeder_info_hash(s, r->torrent);
        if (!ih || !hk_seeder_torrent_stats(s, ih, &ts))
            continue;
        char hex[IH_HEX_LEN + 1], list[1024];
        ih_hex(ih, hex);
        if (ts.failed) {
            const char *why = NULL;
            hk_store_failed(hk_real_store(a->real), hk_served_storage(r), &why);
            printf("unreadable %s (%s): %s\n", HK_SERVED_PATH(r), hex, why ? why : "its data could not be read");
            t->unreadable++;
        } else if (ts.pieces_bad > 0) {
            bad_list(s, ih, ts.pieces_bad, list, sizeof list);
            printf("damaged %s (%s): %s\n", HK_SERVED_PATH(r), hex, list);
            t->damaged++;
        } else {
            t->intact++;
        }
    }
    free(recs);
}

int verify_run(app *a)
{
    hk_seeder *s = hk_real_seeder(a->real);
    waiter wt = {.s = s};
    ev_timer poll;
    ev_timer_init(&poll, poll_cb, POLL_EVERY, POLL_EVERY);
    poll.data = &wt;
    ev_timer_start(a->loop, &poll);
    ev_tstamp start = ev_time();
    hk_verify_progress p;
    hk_seeder_verify_progress(s, &p);
    if (p.active)
        ev_run(a->loop, 0);
    ev_timer_stop(a->loop, &poll);
    hk_seeder_verify_progress(s, &p);
    double secs = ev_time() - start, mib_s = secs > 0 ? (double)p.bytes_checked / secs / 1048576.0 : 0.0;
    tally t = {0};
    report_torrents(a, &t);
    size_t checked = t.intact + t.damaged + t.unreadable;
    printf("%zu torrent%s checked: %zu intact, %zu damaged, %zu unreadable, %zu rejected; %" PRIu64
           " bytes hashed in %.1f s (%.1f MiB/s)%s\n", checked, checked == 1 ? "" : "s", t.intact, t.damaged,
           t.unreadable, a->rejected, p.bytes_checked, secs, mib_s,
           wt.stopped ? "; verification abandoned (stopped by a signal): the report is incomplete" : "");
    fflush(stdout);
    if (wt.stopped || checked == 0)
        return 1;
    return t.damaged + t.unreadable + a->rejected == 0 ? 0 : 1;
}
