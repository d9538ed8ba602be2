/* seeder: owns the seeder object's lifecycle, the configuration rules, torrent management, the public event entry
 * points and the event discipline around them (ev_begin/ev_end: promotions for freed slots, service pass,
 * rescheduling, deferred frees, the single wake-up), the log level and statistics. An event goes on in
 * seeder_proto.c (the protocol), seeder_choke.c (choke transitions), seeder_serve.c (serving), seeder_peers.c
 * (peers: table, lists, close, control output), seeder_loads.c (disk loads) and seeder_timers.c (deadlines); shared
 * declarations and the reading order are in seeder_internal.h. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "enum_names.h"
#include "infohash.h"
#include "metainfo.h"
#include "piece_state.h"
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
    cfg->encryption = HK_ENC_ALLOW;
    cfg->max_peers_per_address = 8;  /* per-address caps */
    cfg->max_peers_per_prefix = 64;
    /* slot squatting (issue 14 item 2) */
    cfg->unchoked_grace = HK_SECONDS(2);
    cfg->unchoked_stall = HK_SECONDS(10);
    /* upload rate caps: none (upload_rate, torrent_upload_rate, upload_burst stay 0) */
    cfg->verify_rate = 64ull << 20; /* background verification: a share of one disk's bandwidth */
}

const char *hk_config_check(const hk_config *cfg)
{
    if (cfg->max_unchoked < 1 || cfg->max_unchoked > 100000)
        return "max_unchoked must be in 1..100000";
    if (cfg->max_peers < cfg->max_unchoked || cfg->max_peers > 10000000)
        return "max_peers must be in max_unchoked..10000000";
    if (cfg->verify_rate < 1 || cfg->verify_rate > HK_VPASS_RATE_MAX)
        return "verify_rate must be in 1..17179869184 (16 GiB/s)";
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
    if ((unsigned)cfg->encryption > HK_ENC_OFF)
        return "encryption must be allow, prefer-plain, require or off";
    if (cfg->max_peers_per_address > 10000000)
        return "max_peers_per_address must be in 0..10000000 (0 = unlimited)";
    if (cfg->max_peers_per_prefix > 10000000)
        return "max_peers_per_prefix must be in 0..10000000 (0 = unlimited)";
    if (cfg->unchoked_grace == 0)
        return "unchoked_grace must be > 0";
    if (cfg->unchoked_stall == 0)
        return "unchoked_stall must be > 0";
    /* upload rate caps */
    if (cfg->upload_rate > HK_TB_RATE_MAX)
        return "upload_rate must be in 0..17179869184 bytes/s (0 = unlimited)";
    if (cfg->torrent_upload_rate > HK_TB_RATE_MAX)
        return "torrent_upload_rate must be in 0..17179869184 bytes/s (0 = none)";
    if (cfg->upload_burst &&
        (cfg->upload_burst < HKS_RATE_MIN_BURST(cfg) || cfg->upload_burst > HK_TB_BURST_MAX))
        return "upload_burst must be 0 (auto) or hold the largest data message (max_block or 16 KiB, + 96 bytes) "
               "and at most 17179869184";
    return NULL;
}

const char *hk_timeout_name(hk_timeout_kind k)
{
    static const char *const names[HK_TIMEOUT_KINDS] = {
        [HK_TIMEOUT_HANDSHAKE] = "handshake", [HK_TIMEOUT_IDLE] = "idle",
        [HK_TIMEOUT_UNCHOKED_IDLE] = "unchoked-idle", [HK_TIMEOUT_SEND_STALL] = "send-stall",
        [HK_TIMEOUT_MAX_WAIT] = "max-wait",
    };
    return HK_NAME_OF(names, k);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Log level (the line formatting is hks_log's, in seeder_internal.h)                                               */

void hk_seeder_set_log_level(hk_seeder *s, hk_log_level max)
{
    s->log_level = max;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Lifecycle                                                                                                         */

hk_seeder *hk_seeder_new(const hk_config *cfg, const hk_seeder_runtime *rt)
{
    if (!cfg || hk_config_check(cfg) || hk_seeder_runtime_check(rt))
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
    hk_list_init(&s->ready);
    hk_list_init(&s->touched);
    hk_list_init(&s->grave);
    s->rq_home.mem = &s->mem;
    hk_tt_init(&s->torrents, &s->mem);
    hk_choker_init(&s->choker, cfg->max_unchoked, cfg->credit, cfg->slice);
    hk_dl_heap_init(&s->deadlines, &s->mem);
    hk_al_init(&s->addr_limit, &s->mem, cfg->max_peers_per_address, cfg->max_peers_per_prefix);
    hks_rate_init(s);
    hk_hist_init_latency(&s->stats.first_byte);
    hks_vpass_init(s);
    s->hdr = hk_mem_alloc(&s->mem, (size_t)HK_BATCH_BLOCKS * HK_BATCH_HDR);
    if (!s->hdr) {
        hk_seeder_free(s);
        return NULL;
    }
    static const uint8_t zero_id[20];
    if (memcmp(cfg->peer_id, zero_id, 20) == 0) {
        static const char alnum[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        uint8_t rnd[12];
        rt->base.random_bytes(rt->base.ctx, rnd, sizeof rnd);
        memcpy(s->peer_id, "-HK0100-", 8);
        for (int i = 0; i < 12; i++)
            s->peer_id[8 + i] = (uint8_t)alnum[rnd[i] % 62];
    } else {
        memcpy(s->peer_id, cfg->peer_id, 20);
    }
    wire_reserved_set_fast(s->reserved);
    wire_reserved_set_extended(s->reserved);
    if (cfg->dht_port)
        wire_reserved_set_dht(s->reserved);
    return s;
}

void hk_seeder_free(hk_seeder *s)
{
    if (!s)
        return;
    hks_peers_free(s);
    hk_al_free(&s->addr_limit);
    hk_mem_free(&s->mem, s->segs, (size_t)s->segs_cap * sizeof *s->segs);
    hk_mem_free(&s->mem, s->hdr, (size_t)HK_BATCH_BLOCKS * HK_BATCH_HDR);
    hks_mse_free(s);
    hks_loads_free(s);
    hks_verifies_free(s);
    hks_vpass_free(s);
    hks_rate_free(s);
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
    hk_time t = s->rt.base.now(s->rt.base.ctx);
    /* Time never goes backwards inside the core, whatever the backend's clock does. */
    s->now = t > s->now ? t : s->now;
}

void hks_ev_end(hk_seeder *s)
{
    hks_promote_freed(s); /* slots freed by closes go to the line before anything is served */
    assert(s->choker.unchoked >= s->choker.max_unchoked || s->choker.waiting == 0); /* no slot idles with a line */
    if (s->nready)
        hks_serve_pass(s);
    hks_reschedule_touched(s);
    hks_free_closed(s);
    hk_time next = hk_dl_next_time(&s->deadlines), pass = hks_vpass_run(s); /* background verification */
    if (pass < next)
        next = pass;
    if (s->nready && s->serve_at <= s->now)
        next = s->now; /* the pass ran out of budget: continue as soon as the backend lets us */
    else if (s->nready && s->serve_at < next)
        next = s->serve_at; /* the ready peers wait for tokens (upload rate caps): continue when they exist */
    if (next != s->wake_requested) {
        s->wake_requested = next;
        s->rt.base.wake_at(s->rt.base.ctx, next);
    }
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Events                                                                                                            */

hk_peer *hk_seeder_on_accept(hk_seeder *s, hk_conn *conn, const hk_addr *from)
{
    hks_ev_begin(s);
    hk_peer *p = hks_peer_accept(s, conn, from);
    hks_ev_end(s);
    return p;
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
        /* it read some of what was queued (the room grew, or came back after a stall): a slow reader at worst */
        if (room > p->room || (p->stall_since != HK_TIME_NEVER && room > 0))
            p->stall_drained = true;
        hk_peer_set_room(p, room);
        p->stall_since = HK_TIME_NEVER;
        hks_mark_ready(s, p);
        hks_mark_touched(s, p);
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

void hk_seeder_on_piece_verified(hk_seeder *s, uint64_t token, hk_verify_result result)
{
    hks_ev_begin(s);
    hks_piece_verified(s, token, result);
    hks_ev_end(s);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Torrents                                                                                                          */

static void set_err(char *err, size_t errlen, const char *fmt, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, what);
}

/* Inserts the description into the table; logs the new torrent, or explains the refusal in err. */
static hk_add_result insert_desc(hk_seeder *s, const hk_torrent_desc *d, uint32_t *id_out, char *err, size_t errlen)
{
    char hex[IH_HEX_LEN + 1];
    ih_hex(d->info_hash, hex);
    uint32_t rec;
    switch (hk_tt_insert(&s->torrents, d, &rec)) {
    case HK_TT_OK:
        if (!hks_rate_torrent_added(s, rec)) {
            hk_tt_remove(&s->torrents, d->info_hash);
            break; /* out of memory for its upload rate bucket */
        }
        if (s->rt.disk_verify && hk_tt_get(&s->torrents, rec)->pieces_rel != 0) {
            hk_tt_get(&s->torrents, rec)->all_good = false; /* every piece unknown: checked on first use */
            if (s->cfg.verify_full)
                hks_vpass_queue(s, rec); /* and by the background pass (out of memory: lazily only) */
        }
        hks_log(s, HK_LOG_DEBUG, "torrent %s added: \"%.*s\", %u pieces of %u, %u files, %llu bytes", hex,
                (int)d->name_len, d->name, d->piece_count, d->piece_length, d->nfiles,
                (unsigned long long)d->total_length);
        if (id_out)
            *id_out = rec;
        return HK_ADD_OK;
    case HK_TT_DUPLICATE:
        set_err(err, errlen, "torrent %s is already served", hex);
        return HK_ADD_DUPLICATE;
    case HK_TT_INVALID: {
        const char *why = hk_tt_desc_check(d);
        set_err(err, errlen, "%s", why ? why : "its storage handle names an id in use or out of range");
        return HK_ADD_INVALID;
    }
    case HK_TT_NOMEM:
        break;
    }
    set_err(err, errlen, "%s", "out of memory");
    return HK_ADD_NOMEM;
}

/* Adds a parsed .torrent: its file list goes to the table through a scratch description. */
static hk_add_result add_parsed(hk_seeder *s, const mi_torrent *mi, uint64_t storage, uint32_t *id_out, char *err,
                                size_t errlen)
{
    size_t files_bytes = (size_t)mi->file_count * sizeof(hk_file_desc);
    hk_file_desc *files = hk_mem_alloc(&s->mem, files_bytes);
    if (!files) {
        set_err(err, errlen, "%s", "out of memory");
        return HK_ADD_NOMEM;
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
        .pieces_offset = mi->pieces_offset,
        .v2_hashes = mi->v2_hashes,
    };
    memcpy(d.info_hash, mi->info_hash, 20);
    hk_add_result res = insert_desc(s, &d, id_out, err, errlen);
    hk_mem_free(&s->mem, files, files_bytes);
    return res;
}

hk_add_result hk_seeder_add_parsed(hk_seeder *s, const mi_torrent *mi, uint64_t storage, uint32_t *id_out, char *err,
                                   size_t errlen)
{
    hks_ev_begin(s);
    hk_add_result res = HK_ADD_INVALID;
    if (err && errlen)
        err[0] = 0;
    if (mi->info_end - mi->info_start > UINT32_MAX)
        set_err(err, errlen, "%s", "info dictionary larger than 4 GiB");
    else
        res = add_parsed(s, mi, storage, id_out, err, errlen);
    hks_ev_end(s);
    return res;
}

const uint8_t *hk_seeder_info_hash(const hk_seeder *s, uint32_t id)
{
    const hk_torrent *t = hk_tt_get(&s->torrents, id);
    return t ? t->info_hash : NULL;
}

uint64_t hk_seeder_info_start(const hk_seeder *s, uint32_t id)
{
    const hk_torrent *t = hk_tt_get(&s->torrents, id);
    return t ? t->info_start : UINT64_MAX;
}

const char *hk_seeder_torrent_name(const hk_seeder *s, uint32_t id, uint32_t *len)
{
    const hk_torrent *t = hk_tt_get(&s->torrents, id);
    return t ? hk_tt_name(&s->torrents, t, len) : NULL;
}

hk_add_result hk_seeder_add_torrent(hk_seeder *s, const uint8_t *torrent, size_t len, uint64_t storage,
                                    uint8_t info_hash_out[20], char *err, size_t errlen)
{
    hks_ev_begin(s);
    hk_add_result res = HK_ADD_INVALID;
    mi_torrent *mi = NULL;
    mi_error me;
    if (err && errlen)
        err[0] = 0;
    if (!torrent || mi_parse(torrent, len, &mi, &me) != 0) {
        set_err(err, errlen, "%s", torrent ? me.what : "no .torrent bytes");
    } else {
        if (info_hash_out)
            memcpy(info_hash_out, mi->info_hash, 20);
        if (mi->info_end - mi->info_start > UINT32_MAX)
            set_err(err, errlen, "%s", "info dictionary larger than 4 GiB");
        else
            res = add_parsed(s, mi, storage, NULL, err, errlen);
    }
    mi_free(mi);
    hks_ev_end(s);
    return res;
}

/* Closes every peer of torrent `rec`, in slot order (deterministic). */
static void close_torrent_peers(hk_seeder *s, uint32_t rec, const char *why)
{
    for (uint32_t i = 0; i < s->peers_cap; i++) {
        hk_peer *p = s->peers[i];
        if (p && !p->closed && p->torrent == rec) {
            hks_close_peer(s, p, true, "%s", why);
            hks_promote_freed(s); /* its slot goes to the line before the next peer is dropped */
        }
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
        hks_verifies_forget_torrent(s, rec);
        hks_vpass_forget_torrent(s, rec);
        hks_rate_torrent_removed(s, rec);
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
    uint32_t r = (uint32_t)storage; /* the record number (torrent_table.h) */
    const hk_torrent *t = hk_tt_get(&s->torrents, r);
    if (t && hk_tt_storage(t, r) == storage)
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
    out->verifies_pending = s->verifies_used;
    out->choker_turns = s->choker.turns;
    /* running sums over the peer table (seeder_internal.h): O(1), not a walk of every slot (issue 12: at 19,000
     * peers the walk was a stall of the order of a millisecond per status line) */
    out->queued_requests = s->rq_home.blocks;
    out->memory_bytes = s->mem.bytes + s->decoder_bytes;
    out->peers_encrypted = s->npeers_encrypted;
}

static void fill_torrent_stats(const hk_seeder *s, uint32_t rec, const hk_torrent *t, hk_torrent_stats *out)
{
    memset(out, 0, sizeof *out);
    out->uploaded = hk_torrent_uploaded(t);
    out->peers = hk_torrent_peers(t);
    out->pieces = hk_torrent_piece_count(t);
    out->total_length = t->total_length;
    out->storage = rec != HK_TT_NONE ? hk_tt_storage(t, rec) : 0;
    out->failed = t->state == HK_TORRENT_FAILED;
    out->memory_bytes = sizeof *t + hk_tt_ext_bytes(t) + t->name_len; /* the side block with its file entries */
    uint32_t rate_slot = hk_torrent_rate_slot(t);
    if (rate_slot) { /* upload rate caps */
        out->upload_rate = s->tbuckets[rate_slot - 1].tb.rate;
        out->memory_bytes += sizeof(hks_tbucket);
    }
    /* piece verification */
    const hk_pieces *ps = hk_torrent_pieces(t);
    out->pieces_good = t->all_good ? out->pieces : ps ? ps->ngood : 0;
    out->pieces_bad = hk_pieces_nbad(ps);
    out->verifying = hk_torrent_verifying(t);
    out->in_pass = rec != HK_TT_NONE && s->vq_rec == rec;
    out->memory_bytes += hk_pieces_bytes(ps);
}

bool hk_seeder_torrent_stats(const hk_seeder *s, const uint8_t info_hash[20], hk_torrent_stats *out)
{
    uint32_t rec = hk_tt_find(&s->torrents, info_hash);
    const hk_torrent *t = hk_tt_get(&s->torrents, rec);
    if (!t)
        return false;
    fill_torrent_stats(s, rec, t, out);
    return true;
}

/* metrics: every torrent by record number, no lookup */
bool hk_seeder_torrent_next(const hk_seeder *s, uint32_t *cursor, uint8_t info_hash_out[20], hk_torrent_stats *out)
{
    uint32_t rec = hk_tt_next(&s->torrents, *cursor == 0 ? HK_TT_NONE : *cursor - 1);
    const hk_torrent *t = hk_tt_get(&s->torrents, rec);
    if (rec == HK_TT_NONE || !t)
        return false;
    *cursor = rec + 1;
    memcpy(info_hash_out, t->info_hash, 20);
    fill_torrent_stats(s, rec, t, out);
    return true;
}
