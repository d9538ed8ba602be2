/* disk: the seeder's simulated disk — a FIFO of jobs served by queue_depth worker actors (a seek unless the read is
 * sequential, then one SimGrid disk read per contiguous run of pages), the page cache behind the core's
 * disk_resident / disk_prefetch / disk_load, and the loads waiting for pages another job is reading.
 *
 * Contract
 * --------
 * The disk_rt_* functions are the runtime table's disk actions (ctx: the sim_seeder): memory only, no SimGrid call;
 * they queue a job and an SOP_DISK_KICK op that wakes a worker. A load always completes, exactly once, through
 * hk_seeder_on_disk_loaded from a worker actor: HK_DISK_OK once every page of the extent is resident, HK_DISK_ERROR
 * for an extent outside its torrent. A load whose pages were evicted before it completed reads them again.
 * A verify (disk_rt_verify, only with [seeder] verify = lazy or full) reads the piece's absent pages like a load (the
 * page cache sees them), then holds its worker hash_cost ns per byte (SHA-1 on the disk thread), then completes
 * exactly once through hk_seeder_on_piece_verified: BAD for a piece listed in [torrent] corrupt, else GOOD (ERROR for
 * an extent outside its torrent).
 * Workers serve 256 jobs, then hand over to a new worker (SimGrid keeps every finished disk activity in its actor).
 * Setup failures (no disk on the seeder host, out of memory) end the process.
 */
#ifndef HEKATE_SIM_DISK_H
#define HEKATE_SIM_DISK_H

#include <simgrid/disk.h>
#include <simgrid/semaphore.h>
#include <stdbool.h>
#include <stdint.h>

#include "list.h"
#include "pagecache.h"
#include "runtime.h"
#include "scenario.h"
#include "seeder_runtime.h"

struct sim_seeder;
typedef struct disk_job disk_job;

typedef struct sim_disk {
    pagecache *pc;
    sg_disk_t disk;
    sg_sem_t sem;                /* jobs available */
    hk_list queue;               /* disk_job, FIFO */
    hk_list waiting;             /* disk_job: loads waiting for pages read by other jobs (newest first) */
    uint64_t last_end_key;       /* position after the last read (sequential reads skip the seek) */
    bool has_last;
    uint32_t busy;               /* jobs being served */
    uint32_t workers_spawned;
    uint64_t jobs_queued;        /* in the FIFO */
    /* counters */
    uint64_t reads, bytes_read, prefetches, loads, load_errors, resident_checks, resident_yes;
    uint64_t verifies, verify_bad, bytes_hashed;
} sim_disk;

/* Before simgrid_run, once the seeder host is known: the page cache and the seeder host's disk. */
void disk_init(struct sim_seeder *s, const sim_disk_cfg *cfg);
/* Starts n worker actors on the seeder host. */
void disk_spawn_workers(struct sim_seeder *s, uint32_t n);
/* madvise(WILLNEED): queues a read of the extent's absent data pages (nothing for metadata or an invalid extent). */
void disk_rt_prefetch(void *ctx, const hk_extent *ext);
/* mincore: true if the extent is valid and metadata, or data whose pages are all resident. */
bool disk_rt_resident(void *ctx, const hk_extent *ext);
/* Queues a load of the extent; `token` comes back with its completion. */
void disk_rt_load(void *ctx, const hk_extent *ext, uint64_t token);
/* Queues a verify of the piece (the core's disk_verify); `token` comes back with its result. */
void disk_rt_verify(void *ctx, const hk_verify_req *req, uint64_t token);
/* At send time: true if ext is metadata or a data extent whose pages are all resident (false for an invalid one);
 * touches its pages (a send reads them). */
bool disk_check_and_touch(struct sim_seeder *s, const hk_extent *ext);
/* true when no job is queued, being served or waiting */
bool disk_idle(const struct sim_seeder *s);

#endif
