/* runtime: the only door between the pure core and the world.
 *
 * The core is driven by calls (events in: see seeder.h, announcer.h) and acts through tables of function pointers
 * (actions out). A backend (backend-real: libev/mmap/writev; backend-sim: SimGrid) implements them. This header holds
 * the types every table shares and the shared base (time, wake-up, randomness, log); each core object has its own
 * table embedding that base: hk_seeder_runtime (seeder_runtime.h: peers and disk) and hk_announcer_runtime
 * (announcer_runtime.h: HTTP, UDP, name resolution). Each member is marked required or optional; the object's
 * constructor checks them and refuses a table that lacks a required one. Nothing in core/ performs I/O or reads a
 * clock or a random source by any other path; tests/purity enforces it.
 *
 * Contract
 * --------
 * Time: now() is monotonic, in nanoseconds, from an arbitrary origin. The core keeps every deadline itself and asks
 *   for ONE wake-up at a time with wake_at(t); a later call replaces the earlier request; HK_TIME_NEVER cancels it.
 *   The backend then calls the object's on_wake (hk_seeder_on_wake, hk_announcer_on_wake) at or after t (never
 *   before). Each core object has its own wake-up.
 * Randomness: random_bytes(buf, n) fills buf; the core takes no randomness from anywhere else, so the same events
 *   and the same random bytes give the same decisions (the determinism contract).
 * Logging: log(level, message) with a NUL-terminated, already formatted line (no trailing newline).
 * Shared types: hk_addr, hk_extent and hk_segment are used by the seeder's and the announcer's tables.
 *
 * Re-entrancy: an action never calls back into the core synchronously. A backend that needs to report something
 * that happened during an action (a send that failed, a close) does so later, from its event loop.
 */
#ifndef HEKATE_RUNTIME_H
#define HEKATE_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t hk_time;                    /* nanoseconds, monotonic */
#define HK_TIME_NEVER UINT64_MAX
#define HK_NS_PER_SEC 1000000000ull
#define HK_SECONDS(s) ((hk_time)(s) * HK_NS_PER_SEC)
#define HK_MILLIS(ms) ((hk_time)(ms) * 1000000ull)

typedef struct hk_conn hk_conn;              /* backend's connection (opaque to the core) */
typedef struct hk_peer hk_peer;              /* core's peer (opaque to the backend) */

/* An address without POSIX types. family is 4 or 6; v4 uses the first 4 bytes of `ip`. Port in host order. */
typedef struct hk_addr {
    uint8_t family;
    uint8_t ip[16];
    uint16_t port;
} hk_addr;

#define HK_FILE_METAINFO UINT32_MAX          /* file index naming the .torrent file itself */

typedef struct hk_extent {
    uint64_t storage;                        /* from hk_seeder_add_torrent */
    uint32_t file;                           /* index in the torrent's file list, or HK_FILE_METAINFO */
    uint64_t offset;                         /* byte offset in that file */
    uint32_t length;                         /* bytes (> 0) */
} hk_extent;

typedef enum hk_segment_kind { HK_SEG_BYTES = 1, HK_SEG_EXTENT = 2 } hk_segment_kind;

typedef struct hk_segment {
    hk_segment_kind kind;
    union {
        struct { const uint8_t *ptr; uint32_t len; } bytes; /* copied by send() before it returns */
        hk_extent extent;                                   /* written from the file by the backend */
    } u;
} hk_segment;

typedef enum hk_log_level { HK_LOG_ERROR = 0, HK_LOG_WARN, HK_LOG_INFO, HK_LOG_DEBUG, HK_LOG_TRACE } hk_log_level;

typedef enum hk_disk_status {
    HK_DISK_OK = 0,
    HK_DISK_ERROR = 1,                       /* the file is missing, shorter than expected, or unreadable */
    HK_DISK_RETRY = 2,                       /* a passing shortage (descriptors, memory: EMFILE, ENFILE, ENOMEM): the
                                              * data is fine, the load could not run now; try again later */
} hk_disk_status;

/* The shared base of every core object's runtime table: time, the single wake-up, randomness, logging. Each core
 * object embeds it as `base` in its own table (hk_seeder_runtime in seeder_runtime.h, hk_announcer_runtime in
 * announcer_runtime.h) and checks it when it is created. */
typedef struct hk_runtime {
    void *ctx;                               /* passed back as the first argument of every action of the table */
    hk_time (*now)(void *ctx);                                      /* required */
    void (*wake_at)(void *ctx, hk_time when);                       /* required */
    void (*random_bytes)(void *ctx, void *buf, size_t n);           /* required */
    void (*log)(void *ctx, hk_log_level level, const char *line);   /* optional: NULL drops every line */
} hk_runtime;

/* The first of names[i] whose present[i] is false, or NULL when all are present (the tables' checks use it). */
static inline const char *hk_runtime_first_missing(const bool *present, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!present[i])
            return names[i];
    return NULL;
}

/* NULL when every required member of the base is set, else a static message naming the first one missing. */
static inline const char *hk_runtime_check(const hk_runtime *rt)
{
    if (!rt)
        return "runtime: no table";
    const bool present[] = { rt->now, rt->wake_at, rt->random_bytes };
    static const char *const names[] = { "runtime: now is required", "runtime: wake_at is required",
                                         "runtime: random_bytes is required" };
    return hk_runtime_first_missing(present, names, sizeof names / sizeof *names);
}

#endif
