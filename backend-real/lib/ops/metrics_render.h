/* metrics_render: the Prometheus text exposition (format 0.0.4) of a snapshot of hekate's counters, with no I/O,
 * so it is unit-testable; ops/metrics.h takes the snapshot on the loop and serves it over HTTP.
 *
 * Contract
 * --------
 * hk_metrics_snapshot is plain data: the counters the core (hk_stats), the connections, the listener, the store and
 * the announcer already keep, the torrents by state, the disk-load latency histogram and the top-N torrents by bytes
 * served. hk_metrics_render appends the whole exposition to a buffer: for every family one "# HELP" and one "# TYPE"
 * line, then its samples; names start with "hekate_", counters end in "_total", units are bytes and seconds; label
 * values are escaped (backslash, double quote, newline); histogram buckets are cumulative and end with le="+Inf",
 * whose count equals _count. Families whose source is absent (no listener, no announcer) are left out. The output
 * size does not depend on the number of torrents beyond the top-N (at most HK_METRICS_TOP_MAX series each).
 *
 * Top-N: hk_topn keeps the N torrents with the most bytes served seen so far in a binary min-heap of N entries:
 * offering a torrent is O(log N), so a pass over T torrents costs O(T log N) and N entries of memory; ties keep the
 * torrent offered first. hk_topn_sorted orders the entries by bytes served, descending (ties by info-hash).
 */
#ifndef HEKATE_METRICS_RENDER_H
#define HEKATE_METRICS_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "announcer.h"
#include "conn.h"
#include "histogram.h"
#include "listener.h"
#include "seeder.h"
#include "store.h"
#include "dht.h"
#include "utp_bridge.h"
#include "utp_reset.h"

#define HK_METRICS_TOP_MAX 1000

/* ---- a growable text buffer ---- */
typedef struct hk_mbuf {
    char *data;
    size_t len, cap;
    bool failed;                 /* an append ran out of memory: the contents are incomplete */
} hk_mbuf;

void hk_mbuf_init(hk_mbuf *b);
void hk_mbuf_free(hk_mbuf *b);
/* printf-style append; on out of memory sets b->failed and appends nothing more. */
void hk_mbuf_printf(hk_mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a label value: \ -> \\, " -> \", newline -> \n (the text format's escapes). */
void hk_mbuf_label_value(hk_mbuf *b, const char *s);

/* ---- top-N torrents by bytes served ---- */
typedef struct hk_topn_entry {
    uint8_t info_hash[20];
    uint64_t uploaded;
    uint32_t peers;
    uint64_t seq;                /* offer order (ties keep the earlier) */
} hk_topn_entry;

typedef struct hk_topn {
    hk_topn_entry *e;            /* min-heap on (uploaded, later offers smaller) */
    size_t n, cap;
    uint64_t offered;
} hk_topn;

/* An empty selection of at most cap (<= HK_METRICS_TOP_MAX) entries: 0, or -1 out of memory (cap 0: no memory). */
int hk_topn_init(hk_topn *t, size_t cap);
void hk_topn_free(hk_topn *t);
void hk_topn_offer(hk_topn *t, const uint8_t info_hash[20], uint64_t uploaded, uint32_t peers);
/* Sorts the entries in place (descending bytes served): the heap is spent, only hk_topn_free may follow. */
void hk_topn_sorted(hk_topn *t);

/* ---- the snapshot ---- */
typedef struct hk_metrics_snapshot {
    hk_stats core;
    hk_conn_stats conn;
    bool have_listener;
    hk_listener_stats listener;
    bool have_dht;                               /* a DHT node runs (dht_glue.h) */
    hk_dht_stats dht;                            /* its statistics (core/dht.h) */
    bool have_utp;                               /* the UDP port is open (udp_port.h) */
    hk_utp_stats utp;                            /* uTP resets (utp_reset.h), resets = sent */
    hk_utp_bridge_stats utp_bridge;              /* uTP connections (utp_bridge.h), with have_utp */
    hk_store_stats store;
    bool have_announcer;
    hk_announcer_stats announcer;
    uint32_t torrents_served, torrents_failed;   /* served (not failed) / failed (storage or disk error) */
    uint32_t torrents_damaged;                   /* served, with pieces that fail their hash */
    uint32_t torrents_verifying;                 /* served, with a piece verification in flight */
    uint32_t torrent_files_rejected;             /* .torrent paths found that serve nothing */
    const hk_histogram *disk_latency;            /* NULL: left out */
    long open_fds;                               /* descriptors of the process; < 0: unknown, left out */
    double start_time_seconds;                   /* Unix time the process started */
    double uptime_seconds;
    const hk_topn_entry *top;                    /* sorted, ntop of them */
    size_t ntop;
} hk_metrics_snapshot;

/* Appends the exposition of *s to b (b->failed on out of memory). */
void hk_metrics_render(const hk_metrics_snapshot *s, hk_mbuf *b);

#endif
