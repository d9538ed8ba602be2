/* scenario: what one simulation run is — the seeder's configuration, the disk model, the torrents, the peer
 * profiles, the run parameters and the expected outcomes — loaded from an INI file with libinih.
 *
 * Contract
 * --------
 * scenario_load() reads a file (at most 1 MiB, lines at most 190 bytes), checks every section and key against the
 * format documented in docs/scenarios.md and fills a scenario with defaults for what is absent. Anything unknown is
 * an error: an unknown section, an unknown key, a key given twice, a section given twice, a value that does not
 * parse or is out of range, an [expect NAME] or reference to a profile that does not exist. The error message names
 * the file, the line (when known), the section and the key. The scenario owns its profiles (scenario_free).
 */
#ifndef HEKATE_SIM_SCENARIO_H
#define HEKATE_SIM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime.h"
#include "seeder.h"
#include "units.h"

typedef enum sim_behaviour {
    BEH_NORMAL = 0,   /* downloads everything, then closes */
    BEH_SLOW_READER,  /* like normal, but reads (acknowledges) at read_rate */
    BEH_IDLE,         /* handshake, then silence */
    BEH_SILENT,       /* handshake + interested, then never requests ("unchoked but silent") */
    BEH_HALF_OPEN,    /* downloads vanish_after bytes, then vanishes without FIN (no ACK, no message) */
    BEH_FLOODER,      /* sends flood_rate requests per second for random blocks, choked or not */
    BEH_INVALID,      /* sends one invalid request after the handshake */
    BEH_MAGNET,       /* fetches the info dictionary with ut_metadata first, then downloads */
    BEH_MUTE,         /* opens the connection and never sends its handshake */
    BEH_NON_READER,   /* interested; on its first unchoke requests `pipeline` blocks once, then never reads again
                       * (no ACK, nothing decoded) while it keeps sending keep-alives (slot squatting, issue 14) */
    BEH_COUNT
} sim_behaviour;

typedef enum sim_strategy { STRAT_RANDOM = 0, STRAT_SEQUENTIAL } sim_strategy;
typedef enum sim_arrival { ARRIVE_BURST = 0, ARRIVE_POISSON, ARRIVE_UNIFORM } sim_arrival;
typedef enum sim_departure { DEPART_FIN = 0, DEPART_VANISH } sim_departure;
typedef enum sim_invalid { INVALID_LENGTH = 0, INVALID_INDEX, INVALID_BEGIN } sim_invalid;
/* Where a profile's peers connect from (docs/scenarios.md): own: peer k from 10.(k>>16).(k>>8).k, so 256 peers
 * share a /24; shared: every peer of the profile from 10.255.P.1 (P the profile's index), one host. */
typedef enum sim_address { ADDRESS_OWN = 0, ADDRESS_SHARED } sim_address;
/* MSE/PE: none = the plain handshake; rc4 / plaintext = the MSE handshake offering only that method */
typedef enum sim_encryption { SIM_ENC_NONE = 0, SIM_ENC_RC4, SIM_ENC_PLAINTEXT } sim_encryption;

/* What an expectation on seeder-side closing measures from (see docs/scenarios.md, [expect NAME]). */
typedef enum sim_ref_timeout {
    REF_NONE = 0,
    REF_HANDSHAKE,        /* handshake_timeout after the connection was accepted */
    REF_IDLE,             /* idle_timeout after the last bytes received from the peer */
    REF_UNCHOKED_IDLE,    /* unchoked_idle_timeout after the last unchoke sent (choked_after only) */
    REF_SEND_STALL,       /* send_stall_timeout after the last acknowledged flight */
    REF_PROTOCOL,         /* 0 s after the last bytes received (the offending message) */
    REF_UNCHOKED_GRACE,   /* unchoked_grace after the first unchoke sent (choked_after only; issue 14 item 2) */
} sim_ref_timeout;

#define SIM_NAME_MAX 32

typedef struct sim_profile_expect {
    double complete_min;          /* fraction of peers that must complete; < 0: unset */
    hk_time complete_by;          /* every completion before this simulated time; HK_TIME_NEVER: unset */
    double jain_min;              /* < 0: unset */
    sim_ref_timeout closed_after; /* every peer closed by the seeder this long after its reference */
    sim_ref_timeout choked_after; /* every peer choked by the seeder this long after its reference */
    hk_time tolerance;            /* allowed deviation for closed_after / choked_after (default 1 s) */
    int64_t closed_by_seeder_max; /* < 0: unset */
    double median_vs_baseline_max;/* < 0: unset; needs [expect] baseline_without */
} sim_profile_expect;

typedef struct sim_profile {
    char name[SIM_NAME_MAX];
    uint32_t count;
    sim_arrival arrival;
    hk_time start;                /* first arrival */
    double rate;                  /* peers per second (poisson, uniform) */
    sim_behaviour behaviour;
    sim_strategy strategy;
    uint32_t pipeline;            /* outstanding requests while unchoked */
    units_range down, up;         /* B/s */
    units_range latency;          /* s, one-way latency of the access link */
    hk_time mtbf;                 /* mean uptime (exponential); 0: no churn */
    hk_time mttr;                 /* mean downtime before coming back (exponential); 0: never comes back */
    sim_departure departure;
    double read_rate;             /* slow_reader: B/s */
    uint64_t vanish_after;        /* half_open: payload bytes received before vanishing */
    uint32_t flood_rate;          /* flooder: requests sent per second */
    sim_invalid invalid;
    int32_t torrent;              /* index, or -1: each peer picks one uniformly */
    hk_time reconnect;            /* delay before reconnecting after a close before completion; 0: never */
    hk_time keepalive;            /* send a keep-alive after this much silence */
    bool fast;                    /* announce the fast extension (BEP 6) */
    sim_address address;          /* where its peers connect from */
    sim_encryption encryption;    /* MSE/PE handshake (default none) */
    sim_profile_expect expect;
    uint32_t first_peer;          /* index of this profile's first peer (filled by the loader) */
} sim_profile;

/* Piece verification in the simulator (issue 10 item 4): off (the default: no disk_verify, every piece counts good,
 * so the scenarios written before it keep their event logs), lazy, or full (lazy + the background pass). */
typedef enum sim_verify { SIM_VERIFY_OFF = 0, SIM_VERIFY_LAZY, SIM_VERIFY_FULL } sim_verify;
#define SIM_CORRUPT_MAX 64        /* [torrent] corrupt entries */

typedef struct sim_disk_cfg {
    hk_time seek;                 /* per non-sequential read */
    double hash_ns;               /* CPU time of hashing one byte (SHA-1) on a disk worker, ns (default 1.5) */
    double bandwidth;             /* B/s */
    uint32_t queue_depth;         /* reads served at once */
    uint64_t cache;               /* page cache capacity, bytes */
    uint32_t page;                /* page cache unit, bytes */
} sim_disk_cfg;

typedef struct sim_torrent_cfg {
    uint64_t size;                /* bytes per torrent */
    uint32_t piece_length;
    uint32_t count;               /* torrents */
    uint32_t ncorrupt;            /* pieces whose data does not match their hash: (torrent, piece) */
    struct { uint32_t torrent, piece; } corrupt[SIM_CORRUPT_MAX];
} sim_torrent_cfg;

typedef struct sim_run_cfg {
    hk_time duration;
    uint64_t seed;
    hk_time quiesce;              /* peers leave for good at duration - quiesce */
    hk_time sample;               /* metrics period */
    hk_log_level log_level;       /* core log lines at or below this level go to the event log */
} sim_run_cfg;

typedef struct sim_expect {
    int64_t unchoked_max;         /* < 0: unset */
    bool no_leak;
    double disk_read_per_sent_max;/* < 0: unset */
    int64_t sent_not_resident_max;/* < 0: unset */
    uint64_t memory_max;          /* 0: unset */
    int64_t seeder_errors_max;    /* < 0: unset (malformed output, piece/extent mismatches, room overruns) */
    char baseline_without[4 * SIM_NAME_MAX]; /* "" unset */
    /* upload rate caps (issue 11 item 5): the payload the peers receive during rate_window, per second, within
     * rate_cap_within (a fraction) of rate_cap */
    double rate_cap;              /* B/s; 0: unset */
    double rate_cap_within;       /* < 0: unset */
    units_range rate_window;      /* s; hi 0: unset */
    /* piece verification (issue 10 item 4) */
    int64_t corrupt_sent_max;     /* < 0: unset; blocks of corrupt pieces the seeder sent (and peers received) */
    hk_time request_latency_max;  /* 0: unset; the longest a block request waited for its piece */
    bool verify_done;             /* the background pass ended and checked every piece of every torrent */
    /* leechers that trade (issue 12 item 5) */
    double seeder_per_copy_max;   /* < 0: unset; seeder payload bytes sent / (completed peers x torrent size) */
    hk_time swarm_copy_by;        /* 0: unset; the leechers together held every block of torrent 0 by then */
} sim_expect;

/* [peers]: leecher-to-leecher exchange (issue 12 item 5; backend-sim/trade.h). Off by default: no peer learns of
 * another and every scenario written before it keeps its event log. With trade on, the normal peers of every
 * profile trade: each connects at its arrival to up to `connect` earlier trading peers still present (drawn from
 * its own PRNG stream), at most `max_links` such connections each. */
typedef struct sim_peers_cfg {
    bool trade;
    uint32_t connect;             /* M: earlier peers each arriving peer connects to (default 8) */
    uint32_t max_links;           /* peer-to-peer connections at once, per peer (default 40) */
    uint32_t unchoke_slots;       /* peers a peer unchokes at once: slots - 1 by tit-for-tat, 1 optimistic (4) */
    hk_time rechoke;              /* tit-for-tat period (10 s) */
    hk_time optimistic;           /* optimistic unchoke period (30 s) */
    hk_time seed_time;            /* a finished peer stays as a seed this long (0: leaves at once) */
} sim_peers_cfg;

/* The defaults of [seeder] sndbuf and window: what Linux's TCP autotuning reaches on a long fast path, the send
 * buffer's ceiling net.ipv4.tcp_wmem[2] = 4 MiB (the real backend leaves SO_SNDBUF to autotuning); a window left
 * unset is min(SIM_WINDOW_DEFAULT, sndbuf). See docs/scenarios.md, "The TCP window". */
#define SIM_SNDBUF_DEFAULT (4u << 20)
#define SIM_WINDOW_DEFAULT (4u << 20)

typedef struct sim_seeder_cfg {
    hk_config core;
    double uplink, downlink;      /* B/s */
    double latency;               /* s */
    uint32_t sndbuf;              /* bytes the backend buffers per connection (room granted to the core) */
    uint32_t window;              /* bytes per flight (one flight in flight per direction); caps a connection at
                                   * window / RTT */
    int verify;                   /* sim_verify (core.verify_full follows it) */
} sim_seeder_cfg;

typedef struct scenario {
    char path[512];
    sim_seeder_cfg seeder;
    sim_disk_cfg disk;
    sim_torrent_cfg torrent;
    sim_run_cfg run;
    sim_peers_cfg peers;
    sim_expect expect;
    sim_profile *profiles;
    uint32_t nprofiles;
    uint32_t npeers;              /* sum of counts */
} scenario;

/* Returns 0, or -1 with a message in err. */
int scenario_load(const char *path, scenario *sc, char *err, size_t errlen);
/* Same from a string (tests and tooling). */
int scenario_load_string(const char *text, const char *name, scenario *sc, char *err, size_t errlen);

/* One key of a scenario: [section] key = value. A profile's section is "profile NAME", its expectations' "expect
 * NAME". */
typedef struct scenario_entry {
    char section[64];
    char key[64];
    char value[256];
} scenario_entry;

/* Parses a command-line override "SECTION.KEY=VALUE" into e: SECTION is seeder, disk, torrent, run, peers or
 * expect, or profile.NAME / expect.NAME (also written "profile NAME"). Returns 0, or -1 with a message in err. */
int scenario_parse_set(const char *spec, scenario_entry *e, char *err, size_t errlen);

/* scenario_load(_string) with overrides (hekate-sim --set): each sets[i] (a scenario_parse_set spec) replaces the
 * value of that key in the file, or adds the key when the file does not give it, before the defaults and
 * cross-checks; an override is checked like a line of the file (its errors name it "--set SPEC"), and two overrides
 * of one key are an error. In any value (of the file or of an override), ${SECTION.KEY} stands for the value of
 * that key as the file or an override gives it (an override wins), so an [expect] entry can follow a swept key:
 * `unchoked_max = ${seeder.max_unchoked}`. A reference to a key given nowhere, or references nested deeper than 8
 * (a cycle), are errors. With nsets 0 and no ${...} the result is scenario_load's, byte for byte. 0 or -1 (err). */
int scenario_load_ex(const char *path, const char *const *sets, size_t nsets, scenario *sc, char *err,
                     size_t errlen);
int scenario_load_string_ex(const char *text, const char *name, const char *const *sets, size_t nsets, scenario *sc,
                            char *err, size_t errlen);

/* Calls fn for every key of the effective scenario (defaults included), in the order of docs/scenarios.md: [seeder],
 * [disk], [torrent], [run], [peers], [expect], then each profile's [profile NAME] and [expect NAME]. value is the key's
 * effective value as text, in the file's units (sizes in bytes, durations in s, bandwidths in B/s), or "unset" for
 * an expectation not set; is_default tells whether it equals the default. */
typedef void (*scenario_param_fn)(void *user, const char *section, const char *key, const char *value,
                                  bool is_default);
void scenario_params(const scenario *sc, scenario_param_fn fn, void *user);
void scenario_free(scenario *sc);

/* Removes a profile (the baseline run of a scenario "without flooders"), or each of a comma-separated list of them;
 * returns -1 if one is unknown (those before it are removed). */
int scenario_drop_profile(scenario *sc, const char *name);
const sim_profile *scenario_find_profile(const scenario *sc, const char *name);

/* true if piece `piece` of torrent `torrent` is listed in [torrent] corrupt. */
bool scenario_corrupt(const scenario *sc, uint32_t torrent, uint32_t piece);
const char *sim_behaviour_name(sim_behaviour b);
const char *sim_ref_name(sim_ref_timeout r);

#endif
