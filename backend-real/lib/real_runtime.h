/* real_runtime: the production seeder runtime table (hk_seeder_runtime) on libev, wiring listener, connections,
 * file store, thread pool and timers to the seeding engine (core/seeder.h).
 *
 * Contract
 * --------
 * One hk_real per process, on one libev loop (the daemon uses the default loop). hk_real_new opens the listening
 * socket first (unless opts.listen is false, as for `hekate --list`) so the port it advertises is the one bound, then
 * creates the store, the hub of connections, the thread pool and the seeder. Every runtime action is carried out
 * without calling back into the core; what happens during an action (a send that cannot be queued, a disk load that
 * cannot start) is reported later from the loop.
 *
 *   now()          CLOCK_MONOTONIC in nanoseconds.
 *   wake_at(t)     one ev_timer; when it fires before t (libev measures from its cached loop time) it is re-armed
 *                  for the rest, so hk_seeder_on_wake never runs early.
 *   random_bytes   getrandom(2).
 *   send / close   conn.h (shared read buffer, one writev per flush, flow control by watermarks).
 *   set_cipher     hk_conn_set_cipher (conn.h "Encryption": later sends encrypted as written, in 64 KiB chunks).
 *   disk_prefetch  hk_store_prefetch; disk_resident: hk_store_resident.
 *   disk_load      hk_store_job_prepare on the loop, hk_store_page_in on the pool, then hk_seeder_on_disk_loaded
 *                  (OK, ERROR if the page-in failed, RETRY for a passing shortage: EMFILE, ENFILE, ENOMEM...; logged
 *                  once per burst) on the loop; exactly one completion per call. At most disk_jobs loads hold a
 *                  descriptor at once; the others wait in order. Small files (store.h, HK_STORE_COPY_MAX) are sent
 *                  by copy (hk_store_copy), not pinned, so a block over thousands of them holds no descriptor.
 *   log            log.h (stderr, level filter, timestamp).
 *   trackers       not in the seeder's table: with opts.trackers an announcer (core/announcer.h) runs beside the
 *                  seeder on the same loop (trackers.h: its own wake-up, libcurl, UDP sockets, resolver); each
 *                  torrent added is handed to it, `uploaded` is read from hk_seeder_torrent_stats, and
 *                  hk_real_stop_trackers sends `stopped` (bounded in time) before hk_real_free.
 * UDP: right after the listener, a UDP socket on its address, family and bound port (udp_port.h); its uTP datagrams
 * go to the uTP bridge (net/utp_bridge.h: each connection accepted within its bounds is bridged to a socketpair
 * handed to the listener's accept path, so the seeder sees it as an accepted connection from the uTP peer), and the
 * SYNs it refuses to the reset responder (core/utp_reset.h, rate-bounded; libutp's left unanswered); HK_UDP_KRPC is
 * left to the DHT. A port that cannot be bound is logged as a warning and TCP serving goes on without it.
 * Every second hk_store_check runs; storages it newly marks failed, and the storage of an extent that faulted
 * during a write (EFAULT), are reported once each with hk_seeder_storage_failed. The same check, and every send of
 * metadata (a pin of an HK_FILE_METAINFO extent), compare the .torrent with the identity it was read with: one that
 * changed on disk is never sent, and its path is read again at once (catalog.h).
 *
 * Torrents by path (hot add and remove): the runtime's catalog (catalog/catalog.h) owns one record per .torrent
 * path; hk_real_load, hk_real_forget, hk_real_add_torrent_file, hk_real_next_mark, hk_real_served and
 * hk_real_torrents are its functions on this runtime's store, seeder and announcer, with the same return codes.
 * Storage failures found by the periodic check, a send that faulted or a failed page-in go through the catalog too.
 */
#ifndef HEKATE_REAL_RUNTIME_H
#define HEKATE_REAL_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "catalog.h"
#include "conn.h"
#include "listener.h"
#include "metainfo.h"
#include "seeder.h"
#include "store.h"
#include "trackers.h"
#include "dht_glue.h"
#include "utp_reset.h"

struct ev_loop;
typedef struct hk_real hk_real;

typedef struct hk_real_opts {
    hk_config cfg;               /* listen_port is filled in from the bound socket */
    bool listen;                 /* open the listening socket (false: only load and list torrents) */
    hk_listener_opts listener;
    hk_conn_limits conn;
    hk_store_limits store;
    unsigned disk_threads;       /* pool threads for page-in (default 8) */
    unsigned disk_jobs;          /* page-in jobs holding a descriptor at once, the rest wait (0: 4 per thread) */
    bool verify_off;             /* piece verification (issue 10): true = --verify=off, nothing is checked */
    double check_interval;       /* seconds between hk_store_check runs (default 1) */
    bool trackers;               /* announce to the torrents' trackers (default false; needs listen) */
    hk_trackers_opts trackers_opts; /* peer_id and port are filled in from the seeder and the bound socket */
    uint32_t shard_k, shard_n;   /* --shard=K/N (shard.h): serve only the torrents of shard K (n 0 or 1: all) */
    bool dht;                    /* run a DHT node on the listen port's UDP socket (default false; needs listen) */
    hk_dht_glue_opts dht_opts;   /* port and families are filled in from the bound sockets */
} hk_real_opts;

void hk_real_opts_default(hk_real_opts *o);

hk_real *hk_real_new(struct ev_loop *loop, const hk_real_opts *o, char *err, size_t errlen);
/* Closes the listener and every connection, waits for disk jobs in flight, frees everything. NULL is a no-op. */
void hk_real_free(hk_real *r);
/* Trackers: `stopped` to every tracker that has a torrent registered, running the loop for at most `seconds`.
 * No-op without trackers. hk_real_announcer is NULL without trackers. */
void hk_real_stop_trackers(hk_real *r, double seconds);
hk_announcer *hk_real_announcer(hk_real *r);

/* The catalog's functions (catalog.h) on this runtime: hk_catalog_add_file, hk_catalog_load, hk_catalog_forget,
 * hk_catalog_next_mark, hk_catalog_served, hk_catalog_torrents. */
int hk_real_add_torrent_file(hk_real *r, const char *path, mi_torrent **mi_out, char *err, size_t errlen);
hk_load_outcome hk_real_load(hk_real *r, const char *path, const struct stat *seen, uint32_t mark, unsigned flags,
                             hk_load_info *info, char *err, size_t errlen);
bool hk_real_forget(hk_real *r, const char *path, uint8_t info_hash_out[20]);
uint32_t hk_real_next_mark(hk_real *r);
const hk_served *hk_real_served(const hk_real *r);
uint32_t hk_real_torrents(const hk_real *r);   /* torrents served (failed ones included) */

hk_seeder *hk_real_seeder(hk_real *r);
struct hk_catalog *hk_real_catalog(hk_real *r);      /* the catalog itself (resume.h's warm start and save) */
hk_store *hk_real_store(hk_real *r);
const hk_listener *hk_real_listener(const hk_real *r);    /* NULL without listen */
/* The UDP socket on the listener's port (udp_port.h): uTP resets and the DHT. NULL without listen or when it could
 * not be bound (then a warning was logged and TCP serving goes on). */
struct hk_udp_port *hk_real_udp_port(hk_real *r);
/* The DHT node (dht_glue.h), NULL without opts.dht or without the UDP socket. */
hk_dht *hk_real_dht(hk_real *r);
/* uTP (utp_reset.h): the responder's counts, with `resets` the resets the kernel took (composed ones it dropped are
 * not counted). false (out untouched) without a UDP port. */
bool hk_real_utp_stats(const hk_real *r, hk_utp_stats *out);
/* The uTP transport's counts (utp_bridge.h). false (out untouched) without a UDP port. */
struct hk_utp_bridge_stats;
bool hk_real_utp_bridge_stats(const hk_real *r, struct hk_utp_bridge_stats *out);
const hk_conn_hub *hk_real_hub(const hk_real *r);
/* Metrics (ops/metrics.h): disk loads (page-in jobs) from submission to their completion on the loop. */
const struct hk_histogram *hk_real_disk_latency(const hk_real *r);

#endif
