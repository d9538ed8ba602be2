/* seeder: owns the seeder object's lifecycle, the configuration rules, torrent management, the peer table
 * (accept/close), the event discipline (ev_begin/ev_end: service pass, rescheduling, deferred frees, the single
 * wake-up), logging and statistics. The protocol is in seeder_proto.c, serving in seeder_serve.c, deadlines and
 * choke transitions in seeder_timers.c (shared declarations: seeder_internal.h). */
#include <stdio.h>
#include <string.h>

#include "infohash.h"
#include "metainfo.h"
#include "seeder_internal.h"

/* ---------------------------------------------------------------------------------------------------------------- */
/* Configuration                                                                                                     */

void hk_config_defaults(hk_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_unchoked = 50;
    cfg->max_peers = 500;
    cfg->credit = 1u << 20;
    cfg->slice = HK_SECONDS(300);
    cfg->handshake_timeout = HK_SECONDS(10);
    cfg->idle_timeout = HK_SECONDS(120);
    cfg->keepalive_interval = HK_SECONDS(90);
    cfg->unchoked_idle_timeout = HK_SECONDS(30);
    cfg->send_stall_timeout = HK_SECONDS(60);
    cfg->max_wait = 0;
    cfg->reqq = 256;
    cfg->max_block = 16u * 1024u;
    cfg->max_message = 64u * 1024u;
    cfg->listen_port = 0;
}

const char *hk_config_check(const hk_config *cfg)
{
    if (cfg->max_unchoked < 1 || cfg->max_unchoked > 100000)
        return "max_unchoked must be in 1..100000";
    if (cfg->max_peers < cfg->max_unchoked || cfg->max_peers > 10000000)
        return "max_peers must be in max_unchoked..10000000";
    if (cfg->max_block < 1 || cfg->max_block > 128u * 1024u)
        return "max_block must be in 1..131072";
    if (cfg->credit < cfg->max_block)
        return "credit must be at least max_block (else no block could ever be sent)";
    if (cfg->handshake_timeout == 0)
        return "handshake_timeout must be > 0";
    if (cfg->idle_timeout == 0)
        return "idle_timeout must be > 0";
    if (cfg->keepalive_interval == 0)
        return "keepalive_interval must be > 0";
    if (cfg->unchoked_idle_timeout == 0)
        return "unchoked_idle_timeout must be > 0";
    if (cfg->send_stall_timeout == 0)
        return "send_stall_timeout must be > 0";
    if (cfg->reqq < 1 || cfg->reqq > 8192)
        return "reqq must be in 1..8192";
    if (cfg->max_message < 1024 || cfg->max_message > (16u << 20))
        return "max_message must be in 1024..16777216";
    if (cfg->max_message < cfg->max_block + 13)
        return "max_message must hold a request of max_block";
    return NULL;
}

const char *hk_timeout_name(hk_timeout_kind k)
{
    switch (k) {
    case HK_TIMEOUT_HANDSHAKE: return "handshake";
    case HK_TIMEOUT_IDLE: return "idle";
    case HK_TIMEOUT_UNCHOKED_IDLE: return "unchoked-idle";
    case HK_TIMEOUT_SEND_STALL: return "send-stall";
    case HK_TIMEOUT_MAX_WAIT: return "max-wait";
    case HK_TIMEOUT_KINDS: break;
    }
    return "?";
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Logging                                                                                                           */

void hks_log(hk_seeder *s, hk_log_level level, const char *fmt, ...)
{
    if (level > s->log_level || !s->rt.log)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->rt.log(s->rt.ctx, level, line);
}

void hk_seeder_set_log_level(hk_seeder *s, hk_log_level max)
{
    s->log_level = max;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Lifecycle                                                                                                         */

hk_seeder *hk_seeder_new(const hk_config *cfg, const hk_runtime *rt)
{
    if (!cfg || !rt || hk_config_check(cfg) || !rt->now || !rt->wake_at || !rt->random_bytes || !rt->send ||
        !rt->close || !rt->disk_prefetch || !rt->disk_resident || !rt->disk_load)
        return NULL;
    hk_mem mem = {0};
    hk_seeder *s = hk_mem_calloc(&mem, 1, sizeof *s);
    if (!s)
        return NULL;
    s->mem = mem;
    s->cfg = *cfg;
    s->rt = *rt;
    s->log_level = HK_LOG_TRACE;
    s->wake_requested = HK_TIME_NEVER;
    s->next_peer_id = 1;
    s->next_load_gen = 1;
    s->loads_free = HKS_LOAD_NONE;
    hk_tt_init(&s->torrents, &s->mem);
    hk_choker_init(&s->choker, cfg->max_unchoked, cfg->credit, cfg->slice);
    hk_dl_heap_init(&s->deadlines, &s->mem);
    s->hdr = hk_mem_alloc(&s->mem, (size_t)HK_BATCH_BLOCKS * HK_BATCH_HDR);
    if (!s->hdr) {
        hk_seeder_free(s);
        return NULL;
    }
    static const uint8_t zero_id[20];
    if (memcmp(cfg->peer_id, zero_id, 20) == 0) {
        static const char alnum[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        uint8_t rnd[12];
        rt->random_bytes(rt->ctx, rnd, sizeof rnd);
        memcpy(s->peer_id, "-HK0100-", 8);
        for (int i = 0; i < 12; i++)
            s->peer_id[8 + i] = (uint8_t)alnum[rnd[i] % 62];
    } else {
        memcpy(s->peer_id, cfg->peer_id, 20);
    }
    wire_reserved_set_fast(s->reserved);
    wire_reserved_set_extended(s->reserved);
    return s;
}

static void free_peer_memory(hk_seeder *s, hk_peer *p)
{
    hk_peer_release(p);
    hk_mem_free(&s->mem, p, sizeof *p);
}

void hk_seeder_free(hk_seeder *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->peers_cap; i++)
        if (s->peers && s->peers[i])
            free_peer_memory(s, s->peers[i]);
    for (hk_peer *p = s->grave, *next; p; p = next) {
        next = p->grave_next;
        free_peer_memory(s, p);
    }
    hk_mem_free(&s->mem, s->peers, (size_t)s->peers_cap * sizeof *s->peers);
    hk_mem_free(&s->mem, s->free_slots, (size_t)s->peers_cap * sizeof *s->free_slots);
    hk_mem_free(&s->mem, s->segs, (size_t)s->segs_cap * sizeof *s->segs);
    hk_mem_free(&s->mem, s->hdr, (size_t)HK_BATCH_BLOCKS * HK_BATCH_HDR);
    hks_loads_free(s);
    hk_tt_free(&s->torrents);
    hk_dl_heap_free(&s->deadlines);
    hk_mem mem = s->mem;
    hk_mem_free(&mem, s, sizeof *s);
}

const uint8_t *hk_seeder_peer_id(const hk_seeder *s)
{
    return s->peer_id;
}

uint64_t hk_peer_number(const hk_peer *p)
{
    return p ? p->id : 0;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Event discipline                                                                                                  */

void hks_ev_begin(hk_seeder *s)
{
    hk_time t = s->rt.now(s->rt.ctx);
    /* Time never goes backwards inside the core, whatever the backend's clock does. */
    s->now = t > s->now ? t : s->now;
}

void hks_mark_dirty(hk_seeder *s, hk_peer *p)
{
    if (p->closed || p->in_dirty)
        return;
    p->in_dirty = true;
    p->dirty_next = s->dirty;
    s->dirty = p;
}

static void reschedule(hk_seeder *s, hk_peer *p)
{
    bool unchoked = p->choke.state == HK_CHOKE_UNCHOKED;
    if (unchoked && hk_rq_count(&p->rq, HK_REQ_BLOCK) == 0) {
        if (!p->idle_armed) {
            p->idle_armed = true;
            p->idle_since = s->now;
        }
    } else {
        p->idle_armed = false;
    }
    if (hk_rq_len(&p->rq) == 0)
        p->stall_since = HK_TIME_NEVER; /* nothing to send: not stalled */
    else if (p->room == 0 && p->stall_since == HK_TIME_NEVER)
        p->stall_since = s->now; /* requests wait and the backend grants no room: stalled from now */
    hk_time t = hks_peer_deadline(s, p);
    if (t == HK_TIME_NEVER)
        hk_dl_cancel(&s->deadlines, &p->dl);
    else if (!hk_dl_schedule(&s->deadlines, &p->dl, t))
        hks_close_peer(s, p, true, "out of memory for its deadline");
}

void hks_ev_end(hk_seeder *s)
{
    if (s->nready)
        hks_serve_pass(s);
    /* Reschedule the peers touched during this event. The list is LIFO; reverse it so peers are rescheduled in
     * the order they were touched (the deadline sequence numbers follow that order). */
    hk_peer *list = NULL;
    while (s->dirty) {
        hk_peer *p = s->dirty;
        s->dirty = p->dirty_next;
        p->dirty_next = list;
        list = p;
    }
    for (hk_peer *p = list, *next; p; p = next) {
        next = p->dirty_next;
        p->in_dirty = false;
        p->dirty_next = NULL;
        if (!p->closed)
            reschedule(s, p);
    }
    /* A close during rescheduling (no memory) may have dirtied others; they need no deadline change beyond what
     * their own close did, so the list is not walked again. */
    s->dirty = NULL;
    while (s->grave) {
        hk_peer *p = s->grave;
        s->grave = p->grave_next;
        free_peer_memory(s, p);
    }
    hk_time next = hk_dl_next_time(&s->deadlines);
    if (s->nready)
        next = s->now; /* the pass ran out of budget: continue as soon as the backend lets us */
    if (next != s->wake_requested) {
        s->wake_requested = next;
        s->rt.wake_at(s->rt.ctx, next);
    }
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Ready ring                                                                                                        */

void hks_mark_ready(hk_seeder *s, hk_peer *p)
{
    if (p->closed || p->in_ready || hk_rq_len(&p->rq) == 0 || p->room == 0)
        return;
    p->in_ready = true;
    p->ready_next = NULL;
    p->ready_prev = s->ready_tail;
    if (s->ready_tail)
        s->ready_tail->ready_next = p;
    else
        s->ready_head = p;
    s->ready_tail = p;
    s->nready++;
}

void hks_ready_unlink(hk_seeder *s, hk_peer *p)
{
    if (!p->in_ready)
        return;
    if (p->ready_prev)
        p->ready_prev->ready_next = p->ready_next;
    else
        s->ready_head = p->ready_next;
    if (p->ready_next)
        p->ready_next->ready_prev = p->ready_prev;
    else
        s->ready_tail = p->ready_prev;
    p->ready_prev = p->ready_next = NULL;
    p->in_ready = false;
    s->nready--;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Peers                                                                                                             */

hk_torrent *hks_peer_torrent(const hk_seeder *s, const hk_peer *p)
{
    return p->torrent == HK_TT_NONE ? NULL : hk_tt_get(&s->torrents, p->torrent);
}

static bool grow_peer_table(hk_seeder *s)
{
    uint32_t ncap = s->peers_cap ? s->peers_cap * 2 : 64;
    if (ncap <= s->peers_cap)
        return false;
    hk_peer **np = hk_mem_alloc(&s->mem, (size_t)ncap * sizeof *np);
    uint32_t *nf = hk_mem_alloc(&s->mem, (size_t)ncap * sizeof *nf);
    if (!np || !nf) {
        hk_mem_free(&s->mem, np, (size_t)ncap * sizeof *np);
        hk_mem_free(&s->mem, nf, (size_t)ncap * sizeof *nf);
        return false;
    }
    if (s->peers_cap) {
        memcpy(np, s->peers, (size_t)s->peers_cap * sizeof *np);
        memcpy(nf, s->free_slots, (size_t)s->nfree * sizeof *nf);
    }
    hk_mem_free(&s->mem, s->peers, (size_t)s->peers_cap * sizeof *s->peers);
    hk_mem_free(&s->mem, s->free_slots, (size_t)s->peers_cap * sizeof *s->free_slots);
    s->peers = np;
    s->free_slots = nf;
    for (uint32_t i = ncap; i-- > s->peers_cap;) {
        s->peers[i] = NULL;
        s->free_slots[s->nfree++] = i; /* lowest new slot on top of the stack */
    }
    s->peers_cap = ncap;
    return true;
}

static void format_addr(const hk_addr *a, char *buf, size_t n)
{
    if (!a) {
        snprintf(buf, n, "?");
    } else if (a->family == 4) {
        snprintf(buf, n, "%u.%u.%u.%u:%u", a->ip[0], a->ip[1], a->ip[2], a->ip[3], a->port);
    } else {
        size_t at = 0;
        at += (size_t)snprintf(buf + at, n - at, "[");
        for (int i = 0; i < 16 && at < n; i += 2)
            at += (size_t)snprintf(buf + at, n - at, "%s%x", i ? ":" : "", (a->ip[i] << 8) | a->ip[i + 1]);
        if (at < n)
            snprintf(buf + at, n - at, "]:%u", a->port);
    }
}

hk_peer *hk_seeder_on_accept(hk_seeder *s, hk_conn *conn, const hk_addr *from)
{
    hks_ev_begin(s);
    char addr[64];
    format_addr(from, addr, sizeof addr);
    hk_peer *p = NULL;
    if (s->npeers >= s->cfg.max_peers) {
        s->stats.peers_refused++;
        hks_log(s, HK_LOG_DEBUG, "connection from %s refused: %u peers connected (cap %u)", addr, s->npeers,
               s->cfg.max_peers);
        goto out;
    }
    if (s->nfree == 0 && !grow_peer_table(s)) {
        s->stats.peers_refused++;
        hks_log(s, HK_LOG_WARN, "connection from %s refused: out of memory", addr);
        goto out;
    }
    p = hk_mem_alloc(&s->mem, sizeof *p);
    if (!p) {
        s->stats.peers_refused++;
        hks_log(s, HK_LOG_WARN, "connection from %s refused: out of memory", addr);
        goto out;
    }
    uint32_t slot = s->free_slots[--s->nfree];
    hk_peer_init(p, s->next_peer_id++, conn, slot, s->now, &s->mem, s->cfg.reqq + HK_METADATA_QUEUE,
                 s->cfg.max_message);
    s->peers[slot] = p;
    s->npeers++;
    hks_log(s, HK_LOG_DEBUG, "peer %llu: accepted from %s", (unsigned long long)p->id, addr);
    hks_mark_dirty(s, p);
out:
    hks_ev_end(s);
    return p;
}

void hks_close_peer(hk_seeder *s, hk_peer *p, bool call_close, const char *fmt, ...)
{
    if (p->closed)
        return;
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    hks_log(s, HK_LOG_DEBUG, "peer %llu: closed: %s", (unsigned long long)p->id, why);
    p->closed = true;
    hks_ready_unlink(s, p);
    hk_dl_cancel(&s->deadlines, &p->dl);
    bool freed = hk_choker_leave(&s->choker, &p->choke);
    hk_torrent *t = hks_peer_torrent(s, p);
    if (t && t->peers)
        t->peers--;
    p->torrent = HK_TT_NONE;
    hk_rq_clear(&p->rq);
    if (call_close)
        s->rt.close(s->rt.ctx, p->conn);
    s->peers[p->slot] = NULL;
    s->free_slots[s->nfree++] = p->slot;
    s->npeers--;
    p->grave_next = s->grave;
    s->grave = p;
    if (freed)
        hks_promote_waiters(s);
}

bool hks_send_control(hk_seeder *s, hk_peer *p, const hk_segment *segs, size_t nsegs)
{
    if (p->closed)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < nsegs; i++)
        n += segs[i].kind == HK_SEG_BYTES ? segs[i].u.bytes.len : segs[i].u.extent.length;
    s->rt.send(s->rt.ctx, p->conn, segs, nsegs);
    p->last_send = s->now;
    hks_mark_dirty(s, p);
    if (!hk_peer_account(p, n)) {
        s->stats.protocol_errors++;
        hks_close_peer(s, p, true, "does not read: %llu bytes of control output beyond its send room",
                      (unsigned long long)p->debt);
        return false;
    }
    return true;
}

bool hks_send_control_bytes(hk_seeder *s, hk_peer *p, const uint8_t *bytes, size_t len)
{
    hk_segment seg = {.kind = HK_SEG_BYTES, .u.bytes = {bytes, (uint32_t)len}};
    return hks_send_control(s, p, &seg, 1);
}

void hk_seeder_on_recv(hk_seeder *s, hk_peer *p, const uint8_t *bytes, size_t len)
{
    hks_ev_begin(s);
    if (p && !p->closed && len)
        hks_proto_recv(s, p, bytes, len);
    hks_ev_end(s);
}

void hk_seeder_on_sendable(hk_seeder *s, hk_peer *p, size_t room)
{
    hks_ev_begin(s);
    if (p && !p->closed) {
        hk_peer_set_room(p, room);
        p->stall_since = HK_TIME_NEVER;
        hks_mark_ready(s, p);
        hks_mark_dirty(s, p);
    }
    hks_ev_end(s);
}

void hk_seeder_on_closed(hk_seeder *s, hk_peer *p, hk_close_reason why)
{
    hks_ev_begin(s);
    if (p && !p->closed)
        hks_close_peer(s, p, false, "%s", why == HK_CLOSED_BY_PEER ? "closed by the peer" : "connection error");
    hks_ev_end(s);
}

void hk_seeder_on_wake(hk_seeder *s)
{
    hks_ev_begin(s);
    s->wake_requested = HK_TIME_NEVER; /* the backend delivered it; ev_end asks again if needed */
    hks_fire_deadlines(s);
    hks_ev_end(s);
}

void hk_seeder_on_disk_loaded(hk_seeder *s, uint64_t token, hk_disk_status status)
{
    hks_ev_begin(s);
    hks_disk_loaded(s, token, status);
    hks_ev_end(s);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Torrents                                                                                                          */

static void set_err(char *err, size_t errlen, const char *fmt, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, what);
}

hk_add_result hk_seeder_add_torrent(hk_seeder *s, const uint8_t *torrent, size_t len, uint64_t storage,
                                    uint8_t info_hash_out[20], char *err, size_t errlen)
{
    hks_ev_begin(s);
    hk_add_result res = HK_ADD_OK;
    mi_torrent *mi = NULL;
    mi_error me;
    hk_file_desc *files = NULL;
    size_t files_bytes = 0;
    if (err && errlen)
        err[0] = 0;
    if (!torrent || mi_parse(torrent, len, &mi, &me) != 0) {
        set_err(err, errlen, "%s", torrent ? me.what : "no .torrent bytes");
        res = HK_ADD_INVALID;
        goto out;
    }
    if (info_hash_out)
        memcpy(info_hash_out, mi->info_hash, 20);
    if (mi->info_end - mi->info_start > UINT32_MAX) {
        set_err(err, errlen, "%s", "info dictionary larger than 4 GiB");
        res = HK_ADD_INVALID;
        goto out;
    }
    files_bytes = (size_t)mi->file_count * sizeof *files;
    files = hk_mem_alloc(&s->mem, files_bytes);
    if (!files) {
        res = HK_ADD_NOMEM;
        set_err(err, errlen, "%s", "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < mi->file_count; i++) {
        files[i].length = mi->files[i].length;
        files[i].pad = (mi->files[i].flags & MI_FILE_PAD) != 0;
    }
    hk_torrent_desc d = {
        .name = mi->name,
        .name_len = mi->name_len,
        .piece_length = mi->piece_length,
        .piece_count = mi->piece_count,
        .total_length = mi->total_length,
        .files = files,
        .nfiles = mi->file_count,
        .info_start = mi->info_start,
        .info_len = (uint32_t)(mi->info_end - mi->info_start),
        .storage = storage,
    };
    memcpy(d.info_hash, mi->info_hash, 20);
    char hex[IH_HEX_LEN + 1];
    ih_hex(mi->info_hash, hex);
    uint32_t rec;
    switch (hk_tt_insert(&s->torrents, &d, &rec)) {
    case HK_TT_OK:
        hks_log(s, HK_LOG_DEBUG, "torrent %s added: \"%.*s\", %u pieces of %u, %u files, %llu bytes", hex,
               (int)mi->name_len, mi->name, mi->piece_count, mi->piece_length, mi->file_count,
               (unsigned long long)mi->total_length);
        break;
    case HK_TT_DUPLICATE:
        set_err(err, errlen, "torrent %s is already served", hex);
        res = HK_ADD_DUPLICATE;
        break;
    case HK_TT_INVALID:
        set_err(err, errlen, "%s", hk_tt_desc_check(&d));
        res = HK_ADD_INVALID;
        break;
    case HK_TT_NOMEM:
        set_err(err, errlen, "%s", "out of memory");
        res = HK_ADD_NOMEM;
        break;
    }
out:
    hk_mem_free(&s->mem, files, files_bytes);
    mi_free(mi);
    hks_ev_end(s);
    return res;
}

/* Closes every peer of torrent `rec`, in slot order (deterministic). */
static void close_torrent_peers(hk_seeder *s, uint32_t rec, const char *why)
{
    for (uint32_t i = 0; i < s->peers_cap; i++) {
        hk_peer *p = s->peers[i];
        if (p && !p->closed && p->torrent == rec)
            hks_close_peer(s, p, true, "%s", why);
    }
}

bool hk_seeder_remove_torrent(hk_seeder *s, const uint8_t info_hash[20])
{
    hks_ev_begin(s);
    uint32_t rec = hk_tt_find(&s->torrents, info_hash);
    bool ok = rec != HK_TT_NONE;
    if (ok) {
        char hex[IH_HEX_LEN + 1];
        ih_hex(info_hash, hex);
        close_torrent_peers(s, rec, "torrent removed");
        hks_loads_forget_torrent(s, rec);
        hk_tt_remove(&s->torrents, info_hash);
        hks_log(s, HK_LOG_DEBUG, "torrent %s removed", hex);
    }
    hks_ev_end(s);
    return ok;
}

void hks_torrent_failed(hk_seeder *s, uint32_t rec, const char *why)
{
    hk_torrent *t = hk_tt_get(&s->torrents, rec);
    if (!t)
        return;
    char hex[IH_HEX_LEN + 1];
    ih_hex(t->info_hash, hex);
    if (t->state != HK_TORRENT_FAILED) {
        t->state = HK_TORRENT_FAILED;
        hks_log(s, HK_LOG_ERROR, "torrent %s: storage failed: %s; its peers are dropped", hex, why ? why : "?");
    }
    close_torrent_peers(s, rec, "torrent storage failed");
}

void hk_seeder_storage_failed(hk_seeder *s, uint64_t storage, const char *why)
{
    hks_ev_begin(s);
    for (uint32_t r = hk_tt_next(&s->torrents, HK_TT_NONE); r != HK_TT_NONE; r = hk_tt_next(&s->torrents, r))
        if (hk_tt_get(&s->torrents, r)->storage == storage)
            hks_torrent_failed(s, r, why);
    hks_ev_end(s);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Observation                                                                                                       */

void hk_seeder_stats(const hk_seeder *s, hk_stats *out)
{
    *out = s->stats;
    out->torrents = hk_tt_count(&s->torrents);
    out->peers = s->npeers;
    out->unchoked = s->choker.unchoked;
    out->waiting = s->choker.waiting;
    uint64_t queued = 0, mem = s->mem.bytes;
    for (uint32_t i = 0; i < s->peers_cap; i++) {
        const hk_peer *p = s->peers[i];
        if (!p)
            continue;
        queued += hk_rq_count(&p->rq, HK_REQ_BLOCK);
        mem += wire_decoder_memory(&p->dec);
    }
    out->queued_requests = queued;
    out->memory_bytes = mem;
}

bool hk_seeder_torrent_stats(const hk_seeder *s, const uint8_t info_hash[20], hk_torrent_stats *out)
{
    uint32_t rec = hk_tt_find(&s->torrents, info_hash);
    const hk_torrent *t = hk_tt_get(&s->torrents, rec);
    if (!t)
        return false;
    memset(out, 0, sizeof *out);
    out->uploaded = t->uploaded;
    out->peers = t->peers;
    out->pieces = t->piece_count;
    out->total_length = t->total_length;
    out->storage = t->storage;
    out->failed = t->state == HK_TORRENT_FAILED;
    out->memory_bytes = sizeof *t + (uint64_t)t->nfiles * sizeof *t->files + t->name_len;
    return true;
}
