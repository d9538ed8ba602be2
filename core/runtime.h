/* runtime: the only door between the pure core and the world.
 *
 * The core is driven by calls (events in: see seeder.h) and acts through the table of function pointers below
 * (actions out). A backend (backend-real: libev/mmap/writev; backend-sim: SimGrid) implements this table. Nothing in
 * core/ performs I/O or reads a clock or a random source by any other path; tests/purity enforces it.
 *
 * Contract
 * --------
 * Time: now() is monotonic, in nanoseconds, from an arbitrary origin. The core keeps every deadline itself and asks
 *   for ONE wake-up at a time with wake_at(t); a later call replaces the earlier request; HK_TIME_NEVER cancels it.
 *   The backend then calls hk_seeder_on_wake() at or after t (never before).
 * Randomness: random_bytes(buf, n) fills buf; the core takes no randomness from anywhere else, so the same events
 *   and the same random bytes give the same decisions (the determinism contract).
 * Connections: the backend owns sockets and hands the core an opaque hk_conn*; the core hands the backend an opaque
 *   hk_peer* (from hk_seeder_on_accept) that it passes with every later event of that connection.
 *   - send(conn, segs, n): the backend takes ALL the segments, in order, and writes them as one stream (ideally in one
 *     writev). BYTES segments are copied by the backend before send() returns; EXTENT segments are read from the
 *     data files (or mapped) by the backend when it writes them. The core limits what it queues by the `room` the
 *     backend announced in on_sendable; it never sends more than that.
 *   - close(conn): the backend closes the socket; it will deliver no further event for that connection (not even
 *     on_closed). The core forgets the connection before or right after calling close.
 * Storage: a torrent's data is named by the opaque `storage` handle given to hk_seeder_add_torrent, a file index in
 *   the torrent's file list, an offset in that file and a length. HK_FILE_METAINFO names the .torrent file itself
 *   (metadata for magnet users is served from its raw `info` bytes without keeping them in memory).
 *   - disk_prefetch(ext): a hint (madvise WILLNEED); no completion.
 *   - disk_resident(ext): true if sending ext now would not wait for the disk (mincore); may be approximate but must
 *     never claim residency for bytes that do not exist.
 *   - disk_load(ext, token): make ext resident asynchronously; completion arrives as hk_seeder_on_disk_loaded(token,
 *     status). Every disk_load gets exactly one completion, even after the requesting peer is gone.
 * Trackers: http_get / udp_send / resolve serve the announcer (core/announcer.h), a core object separate from the
 *   seeder with its own hk_runtime table (and its own wake-up); their completions go to it: hk_announcer_on_http_done
 *   (exactly one per http_get; the backend enforces connect and total timeouts and a reply size cap),
 *   hk_announcer_on_datagram (every datagram received on the tracker sockets), hk_announcer_on_resolved (exactly one
 *   per resolve; the backend caches names with a TTL and never blocks its loop). The seeder uses none of them.
 * Logging: log(level, message) with a NUL-terminated, already formatted line (no trailing newline).
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
} hk_disk_status;

typedef struct hk_runtime {
    void *ctx;                               /* passed back as the first argument of every action */

    hk_time (*now)(void *ctx);
    void (*wake_at)(void *ctx, hk_time when);
    void (*random_bytes)(void *ctx, void *buf, size_t n);

    void (*send)(void *ctx, hk_conn *conn, const hk_segment *segs, size_t nsegs);
    void (*close)(void *ctx, hk_conn *conn);

    void (*disk_prefetch)(void *ctx, const hk_extent *ext);
    bool (*disk_resident)(void *ctx, const hk_extent *ext);
    void (*disk_load)(void *ctx, const hk_extent *ext, uint64_t token);

    /* Trackers (may be NULL when the backend has none; the core then does not announce). */
    void (*udp_send)(void *ctx, const hk_addr *to, const uint8_t *bytes, size_t len);
    void (*http_get)(void *ctx, const char *url, uint64_t token);

    void (*log)(void *ctx, hk_log_level level, const char *line);

    /* Appended for the announcer (may be NULL: UDP trackers are then not used). Resolves a host name (or a numeric
     * address) without blocking; completes with hk_announcer_on_resolved(token, addresses, n), n == 0 on failure.
     * Address ports are ignored by the announcer. */
    void (*resolve)(void *ctx, const char *host, uint64_t token);
} hk_runtime;

#endif
