/* Fuzz target for HTTP tracker replies (core/tracker_http) and the announcer's handling of them (core/announcer).
 *
 * Input: byte 0 selects what the rest is:
 *   0-127   an announce reply body: decoded alone (invariants checked on success), then delivered to an announcer
 *           as the reply to a real announce (status 200, or an HTTP status / transport error chosen by byte 1), twice
 *           in a row (the second one to the retry), so answers, refusals, bad replies and failures all run through
 *           the scheduler; the announcer's books must balance afterwards.
 *   128-255 a tracker URL (NUL-terminated copy): parsed; on success the offsets must lie inside it, and an announce
 *           URL built from it must be exactly as long as announced and end with the key. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "announcer.h"
#include "fuzz_clock.h"
#include "tracker_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fake {
    fuzz_clock clk; /* first: the fuzz_clock callbacks take the context as a fuzz_clock */
    uint64_t token;
    unsigned calls;
} fake;

static void f_http(void *c, const char *url, uint64_t token)
{
    fake *f = c;
    if (strncmp(url, "http://t.example/announce?info_hash=", 36) != 0)
        abort();
    f->token = token;
    f->calls++;
}

static void check_text(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        abort(); /* not NUL-terminated */
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            abort();
}

static void reply_path(const uint8_t *body, size_t len, uint8_t mode)
{
    hk_announce_reply r;
    char err[160];
    if (hk_http_reply_decode(body, len, &r, err, sizeof err) == 0) {
        check_text(r.failure, sizeof r.failure);
        check_text(r.warning, sizeof r.warning);
        if (r.tracker_id_len > HK_TRACKER_ID_MAX || (r.has_tracker_id && r.tracker_id_len == 0))
            abort();
        if (r.interval < -1 || r.min_interval < -1 || r.complete < -1 || r.incomplete < -1)
            abort();
        if (r.failed != (r.failure[0] != '\0' || r.failed))
            abort();
    } else {
        check_text(err, sizeof err);
    }

    fake f = { .clk = fuzz_clock_start(1) };
    hk_announcer_runtime rt = {
        .base = { .ctx = &f, .now = fuzz_clock_now, .wake_at = fuzz_clock_wake, .random_bytes = fuzz_clock_rand },
        .http_get = f_http };
    hk_announcer_config c;
    hk_announcer_config_defaults(&c);
    hk_announcer *a = hk_announcer_new(&c, &rt, NULL, NULL);
    if (!a)
        abort();
    uint8_t ih[20] = { 1, 2, 3 };
    const char *url = "http://t.example/announce";
    uint32_t one = 1;
    if (hk_announcer_add_torrent(a, ih, &url, &one, 1) != HK_ANN_OK)
        abort();
    fuzz_clock_run(a, &f.clk, f.clk.now + HK_SECONDS(1));
    if (f.calls != 1)
        abort();
    int status = 200;
    if (mode >= 200)
        status = mode == 255 ? HK_HTTP_ERR_TIMEOUT : mode == 254 ? HK_HTTP_ERR_TRANSPORT : 100 + mode;
    hk_announcer_on_http_done(a, f.token, status, body, len);
    hk_announcer_on_http_done(a, f.token, status, body, len); /* a stale token: ignored */
    hk_slot_info si;
    if (!hk_announcer_slot_info(a, ih, 0, &si) || si.state != HK_SLOT_QUEUED)
        abort();
    fuzz_clock_run(a, &f.clk, si.due);
    if (f.calls != 2)
        abort();
    hk_announcer_on_http_done(a, f.token, 200, body, len);
    hk_announcer_stats st;
    hk_announcer_stats_get(a, &st);
    if (st.ok + st.refused + st.failed + st.skipped != 2 || st.in_flight != 0 || st.waiting != 0)
        abort();
    hk_announcer_shutdown(a, f.clk.now + HK_SECONDS(5));
    fuzz_clock_run(a, &f.clk, f.clk.now + HK_SECONDS(6));
    if (!hk_announcer_finished(a))
        abort();
    hk_announcer_free(a);
}

static void url_path(const uint8_t *data, size_t size)
{
    char url[2100];
    size_t n = size < sizeof url - 1 ? size : sizeof url - 1;
    memcpy(url, data, n);
    url[n] = '\0';
    hk_tracker_url u;
    char err[128];
    if (hk_tracker_url_parse(url, &u, err, sizeof err) != 0) {
        check_text(err, sizeof err);
        return;
    }
    size_t len = strlen(url);
    if (u.host_len == 0 || u.host_off + u.host_len > len || u.path_off + u.path_len > len || u.port == 0)
        abort();
    hk_announce_params p;
    memset(&p, 0, sizeof p);
    p.key = 0x1234ABCD;
    static char out[8192];
    size_t need = hk_http_announce_url(url, &p, out, sizeof out);
    if (need < sizeof out && (strlen(out) != need || strstr(out, "&key=1234ABCD") == NULL))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] < 128) {
        uint8_t mode = size > 1 ? data[1] : 0;
        reply_path(data + 2 * (size > 1), size - 1 - (size > 1), mode);
    } else {
        url_path(data + 1, size - 1);
    }
    return 0;
}
