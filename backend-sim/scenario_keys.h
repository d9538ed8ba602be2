/* scenario_keys: internal to the scenario reader (scenario.c) and its printer (scenario_params.c): the tables that
 * say, for every key of a section, how its value is read and where it goes in the section's record, and the
 * defaults. Not a public interface: tools use scenario.h. */
#ifndef HEKATE_SIM_SCENARIO_KEYS_H
#define HEKATE_SIM_SCENARIO_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "scenario.h"

/* How a key's value is read and where it goes in its section's record. */
typedef enum key_kind {
    K_U32,                       /* integer in [lo, hi] -> uint32_t */
    K_LIMIT,                     /* integer in [lo, hi] -> int64_t (an expectation limit; < 0 is "unset") */
    K_SIZE,                      /* size in [lo, hi] -> uint64_t */
    K_SIZE32,                    /* size in [lo, hi] -> uint32_t */
    K_TIME,                      /* duration -> hk_time */
    K_SECONDS,                   /* duration -> double seconds */
    K_BW,                        /* bandwidth -> double B/s */
    K_DOUBLE,                    /* number in [dlo, dhi] -> double */
    K_BOOL,                      /* yes/no -> bool */
    K_RANGE,                     /* A or A..B of `unit` ('b' bandwidth, 't' duration), A >= dlo -> units_range */
    K_ENUM,                      /* one of names -> an enum */
    K_RATE,                      /* bandwidth in [lo, hi] B/s -> uint64_t (upload rate caps) */
} key_kind;

typedef struct key_spec {
    const char *name;
    key_kind kind;
    size_t off;                  /* of the destination in the record */
    uint64_t lo, hi;             /* integer kinds */
    double dlo, dhi;             /* K_DOUBLE, K_RANGE (dlo) */
    char unit;                   /* integer kinds: 'i', 's' or 't' (get_int); K_RANGE: 'b' or 't' */
    const char *const *names;    /* K_ENUM */
    int nnames;
} key_spec;

/* One table per section (the keys read through it; run's seed, expect's baseline_without and a profile's torrent are
 * read apart), with its length. */
extern const key_spec seeder_keys[], disk_keys[], torrent_keys[], run_keys[], peers_keys[], expect_keys[],
    profile_expect_keys[], profile_keys[];
extern const size_t n_seeder_keys, n_disk_keys, n_torrent_keys, n_run_keys, n_peers_keys, n_expect_keys,
    n_profile_expect_keys, n_profile_keys;

/* The defaults of a scenario, and of a profile named name. */
void scenario_defaults(scenario *sc);
void profile_defaults(sim_profile *p, const char *name);

#endif
