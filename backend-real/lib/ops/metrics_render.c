/* metrics_render: the text buffer, the top-N heap and the Prometheus text exposition of a snapshot (see
 * metrics_render.h). The families are written in one fixed order; docs/metrics.md lists them. */
#include "metrics_render.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infohash.h"

/* ---- buffer ---- */

void hk_mbuf_init(hk_mbuf *b)
{
    memset(b, 0, sizeof *b);
}

void hk_mbuf_free(hk_mbuf *b)
{
    free(b->data);
    hk_mbuf_init(b);
}

static bool mbuf_reserve(hk_mbuf *b, size_t more)
{
    if (b->failed)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void hk_mbuf_printf(hk_mbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !mbuf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void hk_mbuf_label_value(hk_mbuf *b, const char *s)
{
    for (; *s; s++) {
        if (!mbuf_reserve(b, 2))
            return;
        switch (*s) {
        case '\\': b->data[b->len++] = '\\'; b->data[b->len++] = '\\'; break;
        case '"': b->data[b->len++] = '\\'; b->data[b->len++] = '"'; break;
        case '\n': b->data[b->len++] = '\\'; b->data[b->len++] = 'n'; break;
        default: b->data[b->len++] = *s; break;
        }
        b->data[b->len] = '\0';
    }
}

/* ---- top-N ---- */

int hk_topn_init(hk_topn *t, size_t cap)
{
    memset(t, 0, sizeof *t);
    if (cap > HK_METRICS_TOP_MAX)
        cap = HK_METRICS_TOP_MAX;
    if (cap && !(t->e = calloc(cap, sizeof *t->e)))
        return -1;
    t->cap = cap;
    return 0;
}

void hk_topn_free(hk_topn *t)
{
    free(t->e);
    memset(t, 0, sizeof *t);
}

/* a ranks below b: fewer bytes, or as many and offered later. */
static bool below(const hk_topn_entry *a, const hk_topn_entry *b)
{
    return a->uploaded < b->uploaded || (a->uploaded == b->uploaded && a->seq > b->seq);
}

static void swap_entries(hk_topn_entry *a, hk_topn_entry *b)
{
    hk_topn_entry x = *a;
    *a = *b;
    *b = x;
}

static void sift_down(hk_topn *t, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < t->n && below(&t->e[l], &t->e[m]))
            m = l;
        if (r < t->n && below(&t->e[r], &t->e[m]))
            m = r;
        if (m == i)
            return;
        swap_entries(&t->e[i], &t->e[m]);
        i = m;
    }
}

void hk_topn_offer(hk_topn *t, const uint8_t info_hash[20], uint64_t uploaded, uint32_t peers)
{
    if (t->cap == 0)
        return;
    hk_topn_entry e = { .uploaded = uploaded, .peers = peers, .seq = t->offered++ };
    memcpy(e.info_hash, info_hash, 20);
    if (t->n < t->cap) {
        size_t i = t->n++;
        t->e[i] = e;
        while (i > 0 && below(&t->e[i], &t->e[(i - 1) / 2])) {
            swap_entries(&t->e[i], &t->e[(i - 1) / 2]);
            i = (i - 1) / 2;
        }
        return;
    }
    if (!below(&t->e[0], &e))
        return;
    t->e[0] = e;
    sift_down(t, 0);
}

static int by_uploaded_desc(const void *pa, const void *pb)
{
    const hk_topn_entry *a = pa, *b = pb;
    if (a->uploaded != b->uploaded)
        return a->uploaded > b->uploaded ? -1 : 1;
    return memcmp(a->info_hash, b->info_hash, 20);
}

void hk_topn_sorted(hk_topn *t)
{
    if (t->n > 1)
        qsort(t->e, t->n, sizeof *t->e, by_uploaded_desc);
}

/* ---- families ---- */

static void family(hk_mbuf *b, const char *name, const char *type, const char *help)
{
    hk_mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(hk_mbuf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    family(b, name, type, help);
    hk_mbuf_printf(b, "%s %" PRIu64 "\n", name, v);
}

#define COUNTER(b, name, help, v) one(b, name, "counter", help, (uint64_t)(v))
#define GAUGE(b, name, help, v) one(b, name, "gauge", help, (uint64_t)(v))

/* The DHT node (docs/dht.md): torrents announced, routing table, queries, announces, the store, memory. */
static void render_dht(hk_mbuf *b, const hk_dht_stats *d)
{
    GAUGE(b, "hekate_dht_torrents", "Torrents announced on the DHT.", d->torrents);
    GAUGE(b, "hekate_dht_nodes", "Nodes in the DHT routing tables (IPv4 and IPv6).", d->nodes4 + d->nodes6);
    GAUGE(b, "hekate_dht_good_nodes", "Good nodes in the DHT routing tables (BEP 5).", d->good4 + d->good6);
    COUNTER(b, "hekate_dht_queries_sent_total", "DHT queries sent (all kinds, under the query cap).", d->queries_sent);
    COUNTER(b, "hekate_dht_queries_received_total", "DHT queries received.", d->queries_received);
    COUNTER(b, "hekate_dht_rate_dropped_total", "DHT queries dropped by the per-address rate.", d->rate_dropped);
    COUNTER(b, "hekate_dht_timeouts_total", "DHT queries left unanswered.", d->timeouts);
    COUNTER(b, "hekate_dht_announces_total", "Torrent announces acknowledged by at least one DHT node.",
            d->announces_done);
    COUNTER(b, "hekate_dht_announce_peer_ok_total", "announce_peer queries acknowledged.", d->announce_peer_ok);
    GAUGE(b, "hekate_dht_period_seconds", "Duration of the last full announce round over the torrents.",
          d->last_period / HK_NS_PER_SEC);
    GAUGE(b, "hekate_dht_stored_peers", "Peers other nodes announced to this node, held.", d->store_peers);
    GAUGE(b, "hekate_dht_memory_bytes", "Heap bytes the DHT node holds.", d->memory_bytes);
}

static void labeled(hk_mbuf *b, const char *name, const char *label, const char *value, uint64_t v)
{
    hk_mbuf_printf(b, "%s{%s=\"", name, label);
    hk_mbuf_label_value(b, value);
    hk_mbuf_printf(b, "\"} %" PRIu64 "\n", v);
}

/* Nanoseconds as decimal seconds without trailing zeros: 50000 -> "0.00005". */
static void seconds_text(uint64_t ns, char out[32])
{
    snprintf(out, 32, "%" PRIu64 ".%09" PRIu64, ns / 1000000000u, ns % 1000000000u);
    size_t n = strlen(out);
    while (out[n - 1] == '0')
        out[--n] = '\0';
    if (out[n - 1] == '.')
        out[--n] = '\0';
}

/* The samples of one histogram series; with label (not NULL), every sample carries label="value" first. */
static void histogram_series(hk_mbuf *b, const char *name, const char *label, const char *value,
                             const hk_histogram *h)
{
    char lv[64] = "";
    if (label)
        snprintf(lv, sizeof lv, "%s=\"%s\"", label, value); /* fixed label values: nothing to escape */
    const char *comma = label ? "," : "";
    uint64_t cum = 0;
    char le[32];
    for (size_t i = 0; i < h->nbounds; i++) {
        cum += h->counts[i];
        seconds_text(h->bounds_ns[i], le);
        hk_mbuf_printf(b, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, lv, comma, le, cum);
    }
    cum += h->counts[h->nbounds];
    hk_mbuf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, lv, comma, cum);
    char sum[32];
    seconds_text(h->sum_ns, sum);
    const char *open = label ? "{" : "", *close = label ? "}" : "";
    hk_mbuf_printf(b, "%s_sum%s%s%s %s\n%s_count%s%s%s %" PRIu64 "\n", name, open, lv, close, sum, name, open, lv,
                   close, h->count);
}

static void histogram(hk_mbuf *b, const char *name, const char *help, const hk_histogram *h)
{
    family(b, name, "histogram", help);
    histogram_series(b, name, NULL, NULL, h);
}

static void render_traffic(const hk_metrics_snapshot *s, hk_mbuf *b)
{
    COUNTER(b, "hekate_uploaded_bytes_total", "Block payload bytes served (handed to the sockets).",
            s->core.bytes_sent);
    COUNTER(b, "hekate_blocks_sent_total", "Blocks served.", s->core.blocks_sent);
    COUNTER(b, "hekate_sent_bytes_total", "Bytes written to peer sockets: payload and protocol.",
            s->conn.bytes_written);
    COUNTER(b, "hekate_received_bytes_total", "Bytes read from peer sockets.", s->conn.bytes_read);
    COUNTER(b, "hekate_connections_total", "Peer connections accepted and handed to the seeder.", s->conn.opened);
    family(b, "hekate_peers", "gauge", "Connected peers by state (unchoked, waiting, encrypted: subsets of connected).");
    labeled(b, "hekate_peers", "state", "connected", s->core.peers);
    labeled(b, "hekate_peers", "state", "unchoked", s->core.unchoked);
    labeled(b, "hekate_peers", "state", "waiting", s->core.waiting);
    labeled(b, "hekate_peers", "state", "encrypted", s->core.peers_encrypted);
    GAUGE(b, "hekate_peers_unchoked_max", "Most peers ever unchoked at once.", s->core.max_unchoked_seen);
    family(b, "hekate_torrents", "gauge", "Torrents by state (damaged: some piece fails its hash; verifying: a piece "
           "check in flight or the background pass on it; both subsets of served).");
    labeled(b, "hekate_torrents", "state", "served", s->torrents_served);
    labeled(b, "hekate_torrents", "state", "failed", s->torrents_failed);
    labeled(b, "hekate_torrents", "state", "damaged", s->torrents_damaged);
    labeled(b, "hekate_torrents", "state", "verifying", s->torrents_verifying);
    GAUGE(b, "hekate_torrent_files_rejected", ".torrent files found that serve nothing (invalid or data missing).",
          s->torrent_files_rejected);
}

static void render_requests(const hk_metrics_snapshot *s, hk_mbuf *b)
{
    GAUGE(b, "hekate_requests_queued", "Block requests queued across all peers.", s->core.queued_requests);
    COUNTER(b, "hekate_requests_rejected_total", "Requests rejected (fast extension) or dropped.",
            s->core.requests_rejected);
    COUNTER(b, "hekate_disk_loads_total", "Disk loads (page-ins on the thread pool) issued.", s->core.disk_loads);
    COUNTER(b, "hekate_requeues_total", "Requests passed over once because their data was not resident "
            "(page-in misses).", s->core.requeues);
    family(b, "hekate_page_cache_checks_total", "counter", "First residency check of each request: its data in "
           "memory (hit) or not (miss: passed over once, then paged in).");
    labeled(b, "hekate_page_cache_checks_total", "result", "hit", s->core.resident_hits);
    labeled(b, "hekate_page_cache_checks_total", "result", "miss", s->core.requeues);
    uint64_t addr = s->core.refused_per_address, pfx = s->core.refused_per_prefix;
    uint64_t other = s->core.peers_refused >= addr + pfx ? s->core.peers_refused - addr - pfx : 0;
    family(b, "hekate_peers_refused_total", "counter", "Connections refused at accept, by cap.");
    labeled(b, "hekate_peers_refused_total", "reason", "connections", other);
    labeled(b, "hekate_peers_refused_total", "reason", "address", addr);
    labeled(b, "hekate_peers_refused_total", "reason", "prefix", pfx);
    COUNTER(b, "hekate_protocol_errors_total", "Peers closed for violating the protocol.", s->core.protocol_errors);
    COUNTER(b, "hekate_mse_handshakes_total", "MSE/PE handshakes completed.", s->core.mse_handshakes);
    COUNTER(b, "hekate_mse_failures_total", "MSE/PE handshakes that failed (peer closed).", s->core.mse_failures);
    COUNTER(b, "hekate_disk_retries_total", "Request rounds put back to wait after a disk load said retry.",
            s->core.disk_retries);
    COUNTER(b, "hekate_disk_retry_rejects_total", "Requests given up after too many disk retries.",
            s->core.disk_retry_rejects);
    COUNTER(b, "hekate_choke_resets_total", "Non-fast peers choked and unchoked again (requests over the cap).",
            s->core.choke_resets);
    COUNTER(b, "hekate_turns_unused_total", "Unchoke turns ended because the slot was not used.",
            s->core.turns_unused);
    COUNTER(b, "hekate_preemptions_total", "Unused slots given at once to a waiting peer.", s->core.preemptions);
    COUNTER(b, "hekate_choker_turns_total", "Unchoke turns given (unchokes, and turns renewed when nobody waited).",
            s->core.choker_turns);
    /* piece verification (issue 10) */
    COUNTER(b, "hekate_piece_verifies_total", "Piece verifications issued (SHA-1 of a whole piece).",
            s->core.verifies);
    COUNTER(b, "hekate_pieces_verified_total", "Pieces found good.", s->core.pieces_verified);
    COUNTER(b, "hekate_pieces_bad_total", "Pieces that failed their hash (never sent).", s->core.pieces_bad);
    GAUGE(b, "hekate_piece_verifies_in_flight", "Piece verifications issued and not completed yet.",
          s->core.verifies_pending);
    histogram(b, "hekate_request_first_byte_seconds", "Block requests from their arrival to the first byte of their "
              "piece message handed to the socket.", &s->core.first_byte);
    family(b, "hekate_timeouts_total", "counter", "Peer timeouts fired, by kind.");
    for (int k = 0; k < HK_TIMEOUT_KINDS; k++)
        labeled(b, "hekate_timeouts_total", "kind", hk_timeout_name((hk_timeout_kind)k), s->core.timeouts[k]);
    if (s->disk_latency)
        histogram(b, "hekate_disk_load_duration_seconds", "Disk loads from submission to completion on the loop.",
                  s->disk_latency);
}

static void render_trackers(const hk_metrics_snapshot *s, hk_mbuf *b)
{
    const hk_announcer_stats *a = &s->announcer;
    COUNTER(b, "hekate_tracker_announces_sent_total", "Announces sent (stopped included).", a->announces);
    family(b, "hekate_tracker_announces_total", "counter", "Announce outcomes by result.");
    labeled(b, "hekate_tracker_announces_total", "result", "ok", a->ok);
    labeled(b, "hekate_tracker_announces_total", "result", "refused", a->refused);
    labeled(b, "hekate_tracker_announces_total", "result", "failed", a->failed);
    labeled(b, "hekate_tracker_announces_total", "result", "skipped", a->skipped);
    static const char *const protocols[3] = { "http", "https", "udp" };
    family(b, "hekate_tracker_announce_duration_seconds", "histogram", "Announces from their first transmission to "
           "the tracker's answer (ok, refused or malformed), by protocol.");
    for (size_t i = 0; i < 3; i++)
        histogram_series(b, "hekate_tracker_announce_duration_seconds", "protocol", protocols[i], &a->latency[i]);
    GAUGE(b, "hekate_tracker_requests_in_flight", "Announces admitted and not answered yet.", a->in_flight);
    GAUGE(b, "hekate_tracker_requests_waiting", "Announces waiting for their host's cap.", a->waiting);
    GAUGE(b, "hekate_trackers", "Trackers known to the announcer.", a->trackers);
    COUNTER(b, "hekate_tracker_udp_retransmits_total", "UDP announce retransmissions.", a->udp_retransmits);
    GAUGE(b, "hekate_announcer_memory_bytes", "Heap bytes the announcer holds.", a->memory_bytes);
}

static void render_resources(const hk_metrics_snapshot *s, hk_mbuf *b)
{
    GAUGE(b, "hekate_mapped_bytes", "Address space of mapped data files.", s->store.mapped_bytes);
    GAUGE(b, "hekate_open_files", "Data and .torrent files the store holds open (each mapped).", s->store.open_files);
    COUNTER(b, "hekate_residency_cache_hits_total", "Residency windows answered from the store's cache.",
            s->store.cache_hits);
    COUNTER(b, "hekate_mincore_calls_total", "mincore calls made by the store.", s->store.mincore_calls);
    GAUGE(b, "hekate_core_memory_bytes", "Heap bytes the seeding core holds.", s->core.memory_bytes);
    if (s->have_listener) {
        COUNTER(b, "hekate_accept_dropped_total", "Pending connections closed for lack of descriptors.",
                s->listener.dropped);
        COUNTER(b, "hekate_accept_pauses_total", "Times accepting paused (out of descriptors).", s->listener.pauses);
    }
    if (s->have_dht)
        render_dht(b, &s->dht);
    if (s->have_utp) {
        COUNTER(b, "hekate_utp_resets_total", "uTP connection attempts answered with a reset (TCP fallback).",
                s->utp.resets);
        COUNTER(b, "hekate_utp_rate_limited_total", "uTP connection attempts left unanswered by the rate bound.",
                s->utp.rate_limited);
        COUNTER(b, "hekate_utp_connections_total", "uTP connections accepted (bridged to the accept path).",
                s->utp_bridge.accepted);
        GAUGE(b, "hekate_utp_connections_active", "uTP connections open now.", s->utp_bridge.active);
        COUNTER(b, "hekate_utp_refused_total", "uTP SYNs over the connection bounds (left to the reset policy).",
                s->utp_bridge.refused);
        COUNTER(b, "hekate_utp_retransmits_total", "uTP packets sent again (fast retransmits and timeouts).",
                s->utp_bridge.retransmits);
        COUNTER(b, "hekate_utp_sent_bytes_total", "Payload bytes sent over uTP (first transmissions).",
                s->utp_bridge.bytes_sent);
    }
    if (s->open_fds >= 0)
        GAUGE(b, "hekate_process_open_fds", "Open file descriptors of the process.", s->open_fds);
    family(b, "hekate_process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch.");
    hk_mbuf_printf(b, "hekate_process_start_time_seconds %.3f\n", s->start_time_seconds);
    family(b, "hekate_uptime_seconds", "gauge", "Seconds since the process started.");
    hk_mbuf_printf(b, "hekate_uptime_seconds %.3f\n", s->uptime_seconds);
}

static void render_top(const hk_metrics_snapshot *s, hk_mbuf *b)
{
    char hex[IH_HEX_LEN + 1];
    if (s->ntop == 0)
        return; /* --metrics-top=0: no per-torrent families at all */
    family(b, "hekate_torrent_uploaded_bytes_total", "counter",
           "Block payload bytes served, for the top torrents by bytes served (--metrics-top).");
    for (size_t i = 0; i < s->ntop; i++) {
        ih_hex(s->top[i].info_hash, hex);
        labeled(b, "hekate_torrent_uploaded_bytes_total", "info_hash", hex, s->top[i].uploaded);
    }
    family(b, "hekate_torrent_peers", "gauge", "Connected peers, for the same top torrents.");
    for (size_t i = 0; i < s->ntop; i++) {
        ih_hex(s->top[i].info_hash, hex);
        labeled(b, "hekate_torrent_peers", "info_hash", hex, s->top[i].peers);
    }
}

void hk_metrics_render(const hk_metrics_snapshot *s, hk_mbuf *b)
{
    render_traffic(s, b);
    render_requests(s, b);
    if (s->have_announcer)
        render_trackers(s, b);
    render_resources(s, b);
    render_top(s, b);
}
