/* Tests of backend-real/lib/ops/metrics_render and histogram: the Prometheus text exposition of a snapshot (every
 * family has one HELP and one TYPE line before its samples, names are hekate_*, counters end in _total, values are
 * the snapshot's), label-value escaping, histogram buckets (cumulative, ending with +Inf equal to _count), the top-N
 * heap against a sorted reference over 10^5 torrents, and the bounded per-torrent series; and the --metrics address
 * parser (ops/metrics.h). */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"
#include "metrics.h"
#include "metrics_render.h"

/* A snapshot with distinct, recognisable values. */
static void sample_snapshot(hk_metrics_snapshot *s, const hk_histogram *h)
{
    memset(s, 0, sizeof *s);
    s->core.bytes_sent = 123456789;
    s->core.blocks_sent = 7535;
    s->core.peers = 42;
    s->core.unchoked = 17;
    s->core.waiting = 5;
    s->core.peers_encrypted = 3;
    s->core.mse_handshakes = 21;
    s->core.peers_refused = 30;
    s->core.refused_per_address = 11;
    s->core.refused_per_prefix = 4;
    s->core.timeouts[HK_TIMEOUT_IDLE] = 9;
    s->core.memory_bytes = 4096;
    s->conn.bytes_written = 130000000;
    s->store.mapped_bytes = 1 << 20;
    s->store.open_files = 3;
    s->have_listener = true;
    s->have_dht = true;
    s->dht.torrents = 12;
    s->dht.good4 = 5;
    s->dht.good6 = 2;
    s->have_utp = true;
    s->utp.resets = 31;
    s->utp.rate_limited = 2;
    s->utp_bridge.accepted = 44;
    s->utp_bridge.active = 6;
    s->utp_bridge.retransmits = 123;
    s->have_announcer = true;
    s->announcer.ok = 77;
    s->announcer.failed = 2;
    s->torrents_served = 99999;
    s->torrents_failed = 1;
    s->disk_latency = h;
    s->open_fds = 12;
    s->start_time_seconds = 1700000000.5;
    s->uptime_seconds = 3.25;
}

static char *render(const hk_metrics_snapshot *s)
{
    hk_mbuf b;
    hk_mbuf_init(&b);
    hk_metrics_render(s, &b);
    cr_assert(!b.failed);
    cr_assert_not_null(b.data);
    cr_assert_eq(strlen(b.data), b.len, "the buffer is one NUL-terminated string");
    return b.data;
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

/* The family a sample name belongs to: itself, or without _bucket/_sum/_count for a histogram. */
static bool sample_of(const char *sample, size_t len, const char *family, const char *type)
{
    size_t fl = strlen(family);
    if (len == fl && memcmp(sample, family, fl) == 0)
        return true;
    if (strcmp(type, "histogram") != 0 || len <= fl || memcmp(sample, family, fl) != 0)
        return false;
    const char *suffix = sample + fl;
    size_t sl = len - fl;
    return (sl == 7 && !memcmp(suffix, "_bucket", 7)) || (sl == 4 && !memcmp(suffix, "_sum", 4)) ||
           (sl == 6 && !memcmp(suffix, "_count", 6));
}

/* Walks the exposition: HELP then TYPE per family, each family once, samples under their family. Returns the number
 * of families. */
static int check_structure(const char *text)
{
    char family[128] = "", type[16] = "", help_of[128] = "";
    static char seen[128][128]; /* families: more than 64 since the uTP transport and the DHT */
    int nseen = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        cr_assert_not_null(end, "the last line ends with a newline");
        size_t len = (size_t)(end - line);
        char buf[512];
        cr_assert_lt(len, sizeof buf);
        memcpy(buf, line, len);
        buf[len] = '\0';
        if (strncmp(buf, "# HELP ", 7) == 0) {
            cr_assert_eq(sscanf(buf + 7, "%127s", help_of), 1);
            cr_assert(strlen(buf) > 8 + strlen(help_of), "HELP of %s has a text", help_of);
        } else if (strncmp(buf, "# TYPE ", 7) == 0) {
            cr_assert_eq(sscanf(buf + 7, "%127s %15s", family, type), 2, "%s", buf);
            cr_assert_str_eq(family, help_of, "TYPE %s right after its HELP", family);
            cr_assert(!strncmp(family, "hekate_", 7), "%s has the prefix", family);
            bool counter = !strcmp(type, "counter");
            cr_assert(counter || !strcmp(type, "gauge") || !strcmp(type, "histogram"), "%s: type %s", family, type);
            size_t fl = strlen(family);
            cr_assert_eq(counter, fl > 6 && !strcmp(family + fl - 6, "_total"), "%s: _total iff counter", family);
            for (int i = 0; i < nseen; i++)
                cr_assert_str_neq(seen[i], family, "%s appears once", family);
            cr_assert_lt(nseen, 128);
            strcpy(seen[nseen++], family);
            help_of[0] = '\0';
        } else {
            cr_assert_neq(buf[0], '#', "no other comment: %s", buf);
            size_t nl = strcspn(buf, "{ ");
            cr_assert(family[0], "sample %s before any TYPE", buf);
            cr_assert(sample_of(buf, nl, family, type), "sample %s outside its family %s", buf, family);
            cr_assert_not_null(strchr(buf, ' '), "%s has a value", buf);
        }
        line = end + 1;
    }
    return nseen;
}

Test(metrics_render, structure_and_values)
{
    hk_histogram h;
    hk_hist_init_latency(&h);
    hk_hist_observe(&h, 70000);
    hk_metrics_snapshot s;
    sample_snapshot(&s, &h);
    char *t = render(&s);
    int families = check_structure(t);
    cr_assert_geq(families, 30, "%d families", families);
    cr_assert(has_line(t, "hekate_uploaded_bytes_total 123456789"));
    cr_assert(has_line(t, "hekate_sent_bytes_total 130000000"));
    cr_assert(has_line(t, "hekate_peers{state=\"connected\"} 42"));
    cr_assert(has_line(t, "hekate_peers{state=\"unchoked\"} 17"));
    cr_assert(has_line(t, "hekate_peers{state=\"waiting\"} 5"));
    cr_assert(has_line(t, "hekate_peers{state=\"encrypted\"} 3"));
    cr_assert(has_line(t, "hekate_mse_handshakes_total 21"));
    cr_assert(has_line(t, "hekate_torrents{state=\"served\"} 99999"));
    cr_assert(has_line(t, "hekate_torrents{state=\"failed\"} 1"));
    cr_assert(has_line(t, "hekate_peers_refused_total{reason=\"connections\"} 15"), "30 - 11 - 4");
    cr_assert(has_line(t, "hekate_peers_refused_total{reason=\"address\"} 11"));
    cr_assert(has_line(t, "hekate_peers_refused_total{reason=\"prefix\"} 4"));
    char want[128];
    snprintf(want, sizeof want, "hekate_timeouts_total{kind=\"%s\"} 9", hk_timeout_name(HK_TIMEOUT_IDLE));
    cr_assert(has_line(t, want), "%s", want);
    cr_assert(has_line(t, "hekate_tracker_announces_total{result=\"ok\"} 77"));
    cr_assert(has_line(t, "hekate_mapped_bytes 1048576"));
    cr_assert(has_line(t, "hekate_utp_resets_total 31"));
    cr_assert(has_line(t, "hekate_dht_torrents 12"));
    cr_assert(has_line(t, "hekate_dht_good_nodes 7"), "both families summed");
    cr_assert(has_line(t, "hekate_utp_rate_limited_total 2"));
    cr_assert(has_line(t, "hekate_utp_connections_total 44"));
    cr_assert(has_line(t, "hekate_utp_connections_active 6"));
    cr_assert(has_line(t, "hekate_utp_retransmits_total 123"));
    cr_assert(has_line(t, "hekate_process_open_fds 12"));
    cr_assert(has_line(t, "hekate_process_start_time_seconds 1700000000.500"));
    cr_assert(has_line(t, "hekate_uptime_seconds 3.250"));
    cr_assert_null(strstr(t, "hekate_torrent_uploaded_bytes_total"), "no top torrents: no per-torrent family");
    free(t);

    s.have_announcer = false;
    s.have_listener = false;
    s.have_utp = false;
    s.have_dht = false;
    s.open_fds = -1;
    s.disk_latency = NULL;
    t = render(&s);
    check_structure(t);
    cr_assert_null(strstr(t, "hekate_tracker_"), "no announcer, no tracker families");
    cr_assert_null(strstr(t, "hekate_accept_"));
    cr_assert_null(strstr(t, "hekate_utp_"), "no UDP port, no uTP families");
    cr_assert_null(strstr(t, "hekate_dht_"), "no DHT node, no DHT families");
    cr_assert_null(strstr(t, "hekate_process_open_fds"));
    cr_assert_null(strstr(t, "hekate_disk_load_duration_seconds"));
    free(t);
}

Test(metrics_render, label_escaping)
{
    hk_mbuf b;
    hk_mbuf_init(&b);
    hk_mbuf_label_value(&b, "a\"b\\c\nd e");
    cr_assert_str_eq(b.data, "a\\\"b\\\\c\\nd e");
    hk_mbuf_free(&b);
}

Test(metrics_render, histogram_buckets_cumulative)
{
    hk_histogram h;
    const uint64_t bounds[] = { 1000, 50000, 1000000000 };
    cr_assert_eq(hk_hist_init(&h, bounds, 3), 0);
    const uint64_t bad[] = { 5, 5 };
    cr_assert_eq(hk_hist_init(&h, bad, 2), -1, "bounds must increase");
    cr_assert_eq(hk_hist_init(&h, bounds, 3), 0);
    const uint64_t obs[] = { 10, 1000, 1001, 49999, 2000000000, 3000000000u, 7 };
    for (size_t i = 0; i < sizeof obs / sizeof *obs; i++)
        hk_hist_observe(&h, obs[i]);
    cr_assert_eq(h.count, 7);
    hk_metrics_snapshot s;
    sample_snapshot(&s, &h);
    char *t = render(&s);
    check_structure(t);
    const char *n = "hekate_disk_load_duration_seconds";
    char want[160];
    const char *lines[] = { "_bucket{le=\"0.000001\"} 3", "_bucket{le=\"0.00005\"} 5", "_bucket{le=\"1\"} 5",
                            "_bucket{le=\"+Inf\"} 7", "_sum 5.000052017", "_count 7" };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        snprintf(want, sizeof want, "%s%s", n, lines[i]);
        cr_assert(has_line(t, want), "missing: %s\n%s", want, t);
    }
    free(t);
}

static size_t count_lines(const char *t, const char *prefix);

/* Issue 11 item 1's remaining families: torrents damaged and verifying, verifications in flight, the request to first
 * byte histogram, and the announce latency histogram with one series per protocol. */
Test(metrics_render, first_byte_tracker_latency_and_torrent_states)
{
    hk_histogram h;
    hk_hist_init_latency(&h);
    hk_metrics_snapshot s;
    sample_snapshot(&s, &h);
    s.torrents_damaged = 4;
    s.torrents_verifying = 6;
    s.core.verifies_pending = 8;
    s.core.choker_turns = 31;
    s.core.resident_hits = 41;
    s.core.requeues = 43;
    hk_hist_init_latency(&s.core.first_byte);
    hk_hist_observe(&s.core.first_byte, 30000);    /* 30 us: in the 50 us bucket */
    hk_hist_observe(&s.core.first_byte, 3000000);  /* 3 ms: in the 5 ms bucket */
    for (int i = 0; i < 3; i++)
        hk_hist_init_latency(&s.announcer.latency[i]);
    hk_hist_observe(&s.announcer.latency[0], 20000000);   /* http: 20 ms */
    hk_hist_observe(&s.announcer.latency[2], 400000);     /* udp: 0.4 ms */
    hk_hist_observe(&s.announcer.latency[2], 900000000);  /* udp: 0.9 s */
    char *t = render(&s);
    check_structure(t);
    const char *lines[] = {
        "hekate_torrents{state=\"damaged\"} 4",
        "hekate_torrents{state=\"verifying\"} 6",
        "hekate_piece_verifies_in_flight 8",
        "hekate_choker_turns_total 31",
        "hekate_page_cache_checks_total{result=\"hit\"} 41",
        "hekate_page_cache_checks_total{result=\"miss\"} 43",
        "hekate_request_first_byte_seconds_bucket{le=\"0.00005\"} 1",
        "hekate_request_first_byte_seconds_bucket{le=\"0.0025\"} 1",
        "hekate_request_first_byte_seconds_bucket{le=\"0.005\"} 2",
        "hekate_request_first_byte_seconds_bucket{le=\"+Inf\"} 2",
        "hekate_request_first_byte_seconds_sum 0.00303",
        "hekate_request_first_byte_seconds_count 2",
        "hekate_tracker_announce_duration_seconds_bucket{protocol=\"http\",le=\"0.025\"} 1",
        "hekate_tracker_announce_duration_seconds_count{protocol=\"http\"} 1",
        "hekate_tracker_announce_duration_seconds_count{protocol=\"https\"} 0",
        "hekate_tracker_announce_duration_seconds_bucket{protocol=\"udp\",le=\"0.0005\"} 1",
        "hekate_tracker_announce_duration_seconds_bucket{protocol=\"udp\",le=\"0.5\"} 1",
        "hekate_tracker_announce_duration_seconds_bucket{protocol=\"udp\",le=\"1\"} 2",
        "hekate_tracker_announce_duration_seconds_bucket{protocol=\"udp\",le=\"+Inf\"} 2",
        "hekate_tracker_announce_duration_seconds_sum{protocol=\"udp\"} 0.9004",
        "hekate_tracker_announce_duration_seconds_count{protocol=\"udp\"} 2",
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        cr_assert(has_line(t, lines[i]), "missing: %s", lines[i]);
    cr_assert_eq(count_lines(t, "# TYPE hekate_tracker_announce_duration_seconds histogram"), 1u, "one family");
    free(t);
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int desc_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Counts lines starting with prefix. */
static size_t count_lines(const char *t, const char *prefix)
{
    size_t n = 0, pl = strlen(prefix);
    for (const char *p = t; *p; p = strchr(p, '\n') + 1)
        if (!strncmp(p, prefix, pl))
            n++;
    return n;
}

Test(metrics_render, top_n_bounded_and_exact)
{
    enum { T = 100000, N = 10 };
    uint64_t *ref = malloc(T * sizeof *ref);
    cr_assert_not_null(ref);
    hk_topn top;
    cr_assert_eq(hk_topn_init(&top, N), 0);
    for (uint32_t i = 0; i < T; i++) {
        uint8_t ih[20] = { 0 };
        memcpy(ih, &i, sizeof i);
        ref[i] = next_rand() % 1000000;
        hk_topn_offer(&top, ih, ref[i], i % 7);
        cr_assert_leq(top.n, N, "never more than N entries");
    }
    hk_topn_sorted(&top);
    qsort(ref, T, sizeof *ref, desc_u64);
    cr_assert_eq(top.n, N);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(top.e[i].uploaded, ref[i], "rank %zu: %llu, expected %llu", i,
                     (unsigned long long)top.e[i].uploaded, (unsigned long long)ref[i]);
    free(ref);

    hk_metrics_snapshot s;
    sample_snapshot(&s, NULL);
    s.top = top.e;
    s.ntop = top.n;
    char *t = render(&s);
    check_structure(t);
    cr_assert_eq(count_lines(t, "hekate_torrent_uploaded_bytes_total{info_hash=\""), N);
    cr_assert_eq(count_lines(t, "hekate_torrent_peers{info_hash=\""), N);
    char want[160];
    snprintf(want, sizeof want, "hekate_torrent_uploaded_bytes_total{info_hash=\"%02x", top.e[0].info_hash[0]);
    cr_assert_not_null(strstr(t, want), "the first series is the top torrent, by its hex info-hash");
    cr_assert_lt(strlen(t), 16384, "the body stays small whatever the torrent count");
    free(t);
    hk_topn_free(&top);

    cr_assert_eq(hk_topn_init(&top, 0), 0);
    uint8_t ih[20] = { 1 };
    hk_topn_offer(&top, ih, 5, 1);
    cr_assert_eq(top.n, 0, "--metrics-top=0 keeps nothing");
    hk_topn_free(&top);
}

Test(metrics_render, top_n_ties_keep_first)
{
    hk_topn top;
    cr_assert_eq(hk_topn_init(&top, 2), 0);
    for (uint8_t i = 0; i < 5; i++) {
        uint8_t ih[20] = { i };
        hk_topn_offer(&top, ih, 100, 0);
    }
    hk_topn_sorted(&top);
    cr_assert_eq(top.n, 2);
    cr_assert_eq(top.e[0].info_hash[0], 0);
    cr_assert_eq(top.e[1].info_hash[0], 1);
    hk_topn_free(&top);
}

Test(metrics_addr, parse)
{
    struct sockaddr_storage sa;
    socklen_t len;
    char err[256];
    cr_assert_eq(hk_metrics_parse_addr("9100", &sa, &len, err, sizeof err), 0, "%s", err);
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)&sa;
    cr_assert_eq(sa.ss_family, AF_INET);
    cr_assert_eq(ntohs(v4->sin_port), 9100);
    cr_assert_eq(ntohl(v4->sin_addr.s_addr), 0x7f000001u, "loopback unless told otherwise");
    cr_assert_eq(hk_metrics_parse_addr(":9101", &sa, &len, err, sizeof err), 0);
    cr_assert_eq(ntohl(v4->sin_addr.s_addr), 0x7f000001u);
    cr_assert_eq(hk_metrics_parse_addr("0.0.0.0:80", &sa, &len, err, sizeof err), 0);
    cr_assert_eq(v4->sin_addr.s_addr, 0);
    cr_assert_eq(hk_metrics_parse_addr("[::1]:9102", &sa, &len, err, sizeof err), 0, "%s", err);
    cr_assert_eq(sa.ss_family, AF_INET6);
    cr_assert_eq(len, sizeof(struct sockaddr_in6));
    cr_assert_eq(ntohs(((const struct sockaddr_in6 *)&sa)->sin6_port), 9102);
    const char *bad[] = { "", "x", "65536", "1.2.3.4:", "::1:80", "[::1]80", "[::1]:x", "999.1.1.1:80",
                          "localhost:80", "[1.2.3.4]:80", "-1", "+80" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        cr_assert_eq(hk_metrics_parse_addr(bad[i], &sa, &len, err, sizeof err), -1, "'%s' accepted", bad[i]);
        cr_assert_not_null(strstr(err, "--metrics"), "'%s': %s", bad[i], err);
    }
}
