/* scenario_keys: the scenario file's vocabulary: the enum names, the defaults of a scenario and of a profile, and
 * one table per section saying how each key is read and where its value goes (scenario_keys.h). Read by scenario.c
 * (the parser) and scenario_params.c (the printer). */
#include "scenario.h"
#include "scenario_keys.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const char *const behaviour_names[BEH_COUNT] = {"normal",    "slow_reader", "idle",  "silent", "half_open",
                                                       "flooder",   "invalid",     "magnet", "mute",
                                                       "non_reader"};
static const char *const ref_names[] = {"none", "handshake_timeout", "idle_timeout", "unchoked_idle_timeout",
                                        "send_stall_timeout", "protocol",          "unchoked_grace"};
static const char *const arrival_names[] = {"burst", "poisson", "uniform"};
static const char *const strategy_names[] = {"random", "sequential"};
static const char *const departure_names[] = {"fin", "vanish"};
static const char *const invalid_names[] = {"length", "index", "begin"};
static const char *const address_names[] = {"own", "shared"};
static const char *const encryption_names[] = {"none", "rc4", "plaintext"};
static const char *const policy_names[] = {"allow", "prefer_plain", "require", "off"}; /* hk_encryption order */
static const char *const log_level_names[] = {"error", "warn", "info", "debug", "trace"};
static const char *const verify_names[] = {"off", "lazy", "full"}; /* sim_verify order */

#define COUNT(a) (int)(sizeof(a) / sizeof((a)[0]))

const char *sim_behaviour_name(sim_behaviour b)
{
    return (unsigned)b < BEH_COUNT ? behaviour_names[b] : "?";
}

const char *sim_ref_name(sim_ref_timeout r)
{
    return (unsigned)r < (unsigned)COUNT(ref_names) ? ref_names[r] : "none";
}

void profile_defaults(sim_profile *p, const char *name)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%.31s", name);
    p->count = 1;
    p->arrival = ARRIVE_BURST;
    p->rate = 0;
    p->behaviour = BEH_NORMAL;
    p->strategy = STRAT_RANDOM;
    p->pipeline = 16;
    p->down = (units_range){10e6, 10e6};
    p->up = (units_range){1e6, 1e6};
    p->latency = (units_range){0.02, 0.02};
    p->departure = DEPART_FIN;
    p->read_rate = 50e3;
    p->vanish_after = 256 * 1024;
    p->flood_rate = 1000;
    p->invalid = INVALID_LENGTH;
    p->torrent = -1;
    p->reconnect = HK_SECONDS(30);
    p->keepalive = HK_SECONDS(60);
    p->fast = true;
    p->expect.complete_min = -1;
    p->expect.complete_by = HK_TIME_NEVER;
    p->expect.jain_min = -1;
    p->expect.tolerance = HK_SECONDS(1);
    p->expect.closed_by_seeder_max = -1;
    p->expect.median_vs_baseline_max = -1;
}

void scenario_defaults(scenario *sc)
{
    memset(sc, 0, sizeof *sc);
    hk_config_defaults(&sc->seeder.core);
    /* Peers are numbered into 10.0.0.0/8 in order (address = own), 256 to a /24: the core's per-prefix cap would
     * measure that numbering, not the scenario, so the simulator's default is 0 (unlimited); a scenario sets it to
     * test it. The per-address default (8) stays: own addresses are distinct. */
    sc->seeder.core.max_peers_per_prefix = 0;
    sc->seeder.uplink = 100e6;
    sc->seeder.downlink = 100e6;
    sc->seeder.latency = 0.001;
    sc->seeder.sndbuf = SIM_SNDBUF_DEFAULT;
    sc->seeder.window = 0; /* auto: min(SIM_WINDOW_DEFAULT, sndbuf), resolved by cross_check */
    sc->disk.seek = HK_MILLIS(8);
    sc->disk.bandwidth = 150e6;
    sc->disk.queue_depth = 1;
    sc->disk.cache = 1ull << 30;
    sc->disk.page = 4096;
    sc->disk.hash_ns = 1.5; /* SHA-1 at ~650 MB/s on one core */
    sc->torrent.size = 4ull << 20;
    sc->torrent.piece_length = 256 * 1024;
    sc->torrent.count = 1;
    sc->run.duration = HK_SECONDS(3600);
    sc->run.seed = 1;
    sc->run.quiesce = 0;
    sc->run.sample = HK_SECONDS(1);
    sc->run.log_level = HK_LOG_DEBUG;
    sc->expect.unchoked_max = -1;
    sc->expect.disk_read_per_sent_max = -1;
    sc->expect.sent_not_resident_max = -1;
    sc->expect.seeder_errors_max = -1;
    sc->expect.rate_cap_within = -1; /* upload rate caps */
    sc->expect.corrupt_sent_max = -1; /* piece verification */
    sc->expect.seeder_per_copy_max = -1; /* leechers that trade */
    sc->peers.connect = 8;
    sc->peers.max_links = 40;
    sc->peers.unchoke_slots = 4;
    sc->peers.rechoke = HK_SECONDS(10);
    sc->peers.optimistic = HK_SECONDS(30);
}

/* ---- sections: one table of keys each ---- */


#define KEY(rec, key, field, k) .name = key, .kind = k, .off = offsetof(rec, field)
#define MAX_TIME HK_SECONDS(10ull * 365 * 86400)
#define U32(rec, key, field, a, b) {KEY(rec, key, field, K_U32), .unit = 'i', .lo = a, .hi = b}
#define LIMIT(rec, key, field, a, b) {KEY(rec, key, field, K_LIMIT), .unit = 'i', .lo = a, .hi = b}
#define SIZE(rec, key, field, a, b) {KEY(rec, key, field, K_SIZE), .unit = 's', .lo = a, .hi = b}
#define SIZE32(rec, key, field, a, b) {KEY(rec, key, field, K_SIZE32), .unit = 's', .lo = a, .hi = b}
#define TIME(rec, key, field) {KEY(rec, key, field, K_TIME), .unit = 't', .hi = MAX_TIME}
#define SECONDS(rec, key, field) {KEY(rec, key, field, K_SECONDS), .unit = 't', .hi = MAX_TIME}
#define BW(rec, key, field) {KEY(rec, key, field, K_BW)}
#define DOUBLE(rec, key, field, a, b) {KEY(rec, key, field, K_DOUBLE), .dlo = a, .dhi = b}
#define BOOL(rec, key, field) {KEY(rec, key, field, K_BOOL)}
#define RANGE(rec, key, field, u, min) {KEY(rec, key, field, K_RANGE), .unit = u, .dlo = min}
#define RATE(rec, key, field, a, b) {KEY(rec, key, field, K_RATE), .lo = a, .hi = b}
#define ENUM(rec, key, field, list) {KEY(rec, key, field, K_ENUM), .names = list, .nnames = COUNT(list)}

const key_spec seeder_keys[] = {
    U32(sim_seeder_cfg, "max_unchoked", core.max_unchoked, 1, 1000000),
    U32(sim_seeder_cfg, "max_peers", core.max_peers, 1, 10000000),
    SIZE(sim_seeder_cfg, "credit", core.credit, 1, UINT64_MAX),
    TIME(sim_seeder_cfg, "slice", core.slice),
    TIME(sim_seeder_cfg, "handshake_timeout", core.handshake_timeout),
    TIME(sim_seeder_cfg, "idle_timeout", core.idle_timeout),
    TIME(sim_seeder_cfg, "keepalive_interval", core.keepalive_interval),
    TIME(sim_seeder_cfg, "unchoked_idle_timeout", core.unchoked_idle_timeout),
    TIME(sim_seeder_cfg, "send_stall_timeout", core.send_stall_timeout),
    TIME(sim_seeder_cfg, "unchoked_grace", core.unchoked_grace), /* slot squatting (issue 14 item 2) */
    TIME(sim_seeder_cfg, "unchoked_stall", core.unchoked_stall),
    TIME(sim_seeder_cfg, "max_wait", core.max_wait),
    U32(sim_seeder_cfg, "reqq", core.reqq, 1, 1000000),
    SIZE32(sim_seeder_cfg, "max_block", core.max_block, 1, 128 * 1024),
    SIZE32(sim_seeder_cfg, "max_message", core.max_message, 1, 16u << 20),
    U32(sim_seeder_cfg, "max_peers_per_address", core.max_peers_per_address, 0, 10000000),
    U32(sim_seeder_cfg, "max_peers_per_prefix", core.max_peers_per_prefix, 0, 10000000),
    ENUM(sim_seeder_cfg, "encryption", core.encryption, policy_names),
    RATE(sim_seeder_cfg, "upload_rate", core.upload_rate, 1, HK_TB_RATE_MAX), /* upload rate caps */
    RATE(sim_seeder_cfg, "torrent_upload_rate", core.torrent_upload_rate, 1, HK_TB_RATE_MAX),
    SIZE(sim_seeder_cfg, "upload_burst", core.upload_burst, 1, HK_TB_BURST_MAX),
    BW(sim_seeder_cfg, "uplink", uplink),
    BW(sim_seeder_cfg, "downlink", downlink),
    SECONDS(sim_seeder_cfg, "latency", latency),
    SIZE32(sim_seeder_cfg, "sndbuf", sndbuf, 4096, 64u << 20),
    SIZE32(sim_seeder_cfg, "window", window, 1024, 16u << 20),
    ENUM(sim_seeder_cfg, "verify", verify, verify_names), /* piece verification (issue 10 item 4) */
    RATE(sim_seeder_cfg, "verify_rate", core.verify_rate, 1, HK_VPASS_RATE_MAX),
};

const key_spec disk_keys[] = {
    TIME(sim_disk_cfg, "seek", seek),
    BW(sim_disk_cfg, "bandwidth", bandwidth),
    U32(sim_disk_cfg, "queue_depth", queue_depth, 1, 1024),
    SIZE(sim_disk_cfg, "cache", cache, 64 * 1024, 1ull << 44),
    SIZE32(sim_disk_cfg, "page", page, 512, 1u << 20),
    DOUBLE(sim_disk_cfg, "hash_cost", hash_ns, 0, 1e6), /* ns of CPU per byte hashed */
};

const key_spec torrent_keys[] = {
    SIZE(sim_torrent_cfg, "size", size, 1, 1ull << 40),
    SIZE32(sim_torrent_cfg, "piece_length", piece_length, 16 * 1024, 64u << 20),
    U32(sim_torrent_cfg, "count", count, 1, 100000),
};

const key_spec run_keys[] = { /* and seed (run_key) */
    TIME(sim_run_cfg, "duration", duration),
    TIME(sim_run_cfg, "quiesce", quiesce),
    TIME(sim_run_cfg, "sample", sample),
    ENUM(sim_run_cfg, "log_level", log_level, log_level_names),
};

const key_spec peers_keys[] = { /* leechers that trade (issue 12 item 5) */
    BOOL(sim_peers_cfg, "trade", trade),
    U32(sim_peers_cfg, "connect", connect, 0, 1000),
    U32(sim_peers_cfg, "max_links", max_links, 1, 10000),
    U32(sim_peers_cfg, "unchoke_slots", unchoke_slots, 1, 1000),
    TIME(sim_peers_cfg, "rechoke", rechoke),
    TIME(sim_peers_cfg, "optimistic", optimistic),
    TIME(sim_peers_cfg, "seed_time", seed_time),
};

const key_spec expect_keys[] = { /* and baseline_without (expect_key) */
    LIMIT(sim_expect, "unchoked_max", unchoked_max, 0, 10000000),
    BOOL(sim_expect, "no_leak", no_leak),
    DOUBLE(sim_expect, "disk_read_per_sent_max", disk_read_per_sent_max, 0, 1e9),
    LIMIT(sim_expect, "sent_not_resident_max", sent_not_resident_max, 0, UINT32_MAX),
    SIZE(sim_expect, "memory_max", memory_max, 1, UINT64_MAX),
    LIMIT(sim_expect, "seeder_errors_max", seeder_errors_max, 0, UINT32_MAX),
    BW(sim_expect, "rate_cap", rate_cap), /* upload rate caps */
    DOUBLE(sim_expect, "rate_cap_within", rate_cap_within, 0, 1),
    RANGE(sim_expect, "rate_window", rate_window, 't', 0),
    LIMIT(sim_expect, "corrupt_sent_max", corrupt_sent_max, 0, UINT32_MAX), /* piece verification */
    TIME(sim_expect, "request_latency_max", request_latency_max),
    BOOL(sim_expect, "verify_done", verify_done),
    DOUBLE(sim_expect, "seeder_per_copy_max", seeder_per_copy_max, 0, 1e9), /* leechers that trade */
    TIME(sim_expect, "swarm_copy_by", swarm_copy_by),
};

const key_spec profile_expect_keys[] = {
    DOUBLE(sim_profile_expect, "complete", complete_min, 0, 1),
    TIME(sim_profile_expect, "complete_by", complete_by),
    DOUBLE(sim_profile_expect, "jain_min", jain_min, 0, 1),
    ENUM(sim_profile_expect, "closed_after", closed_after, ref_names),
    ENUM(sim_profile_expect, "choked_after", choked_after, ref_names),
    TIME(sim_profile_expect, "tolerance", tolerance),
    LIMIT(sim_profile_expect, "closed_by_seeder_max", closed_by_seeder_max, 0, UINT32_MAX),
    DOUBLE(sim_profile_expect, "median_vs_baseline_max", median_vs_baseline_max, 0, 1e6),
};

const key_spec profile_keys[] = { /* and torrent (profile_key) */
    U32(sim_profile, "count", count, 1, 1000000),
    ENUM(sim_profile, "arrival", arrival, arrival_names),
    TIME(sim_profile, "start", start),
    DOUBLE(sim_profile, "rate", rate, 1e-6, 1e9),
    ENUM(sim_profile, "behaviour", behaviour, behaviour_names),
    ENUM(sim_profile, "strategy", strategy, strategy_names),
    U32(sim_profile, "pipeline", pipeline, 1, 4096),
    RANGE(sim_profile, "down", down, 'b', 1),
    RANGE(sim_profile, "up", up, 'b', 1),
    RANGE(sim_profile, "latency", latency, 't', 0),
    TIME(sim_profile, "mtbf", mtbf),
    TIME(sim_profile, "mttr", mttr),
    ENUM(sim_profile, "departure", departure, departure_names),
    BW(sim_profile, "read_rate", read_rate),
    SIZE(sim_profile, "vanish_after", vanish_after, 0, 1ull << 40),
    U32(sim_profile, "flood_rate", flood_rate, 1, 1000000),
    ENUM(sim_profile, "invalid", invalid, invalid_names),
    TIME(sim_profile, "reconnect", reconnect),
    TIME(sim_profile, "keepalive", keepalive),
    BOOL(sim_profile, "fast", fast),
    ENUM(sim_profile, "address", address, address_names),
    ENUM(sim_profile, "encryption", encryption, encryption_names),
};

const size_t n_seeder_keys = COUNT(seeder_keys);
const size_t n_disk_keys = COUNT(disk_keys);
const size_t n_torrent_keys = COUNT(torrent_keys);
const size_t n_run_keys = COUNT(run_keys);
const size_t n_peers_keys = COUNT(peers_keys);
const size_t n_expect_keys = COUNT(expect_keys);
const size_t n_profile_expect_keys = COUNT(profile_expect_keys);
const size_t n_profile_keys = COUNT(profile_keys);
