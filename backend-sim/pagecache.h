/* pagecache: the simulated page cache of the seeder's host — the model behind disk_resident (mincore),
 * disk_prefetch (madvise WILLNEED: asynchronous read-ahead) and disk_load (page-in by a worker).
 *
 * Contract
 * --------
 * Pages are `page` bytes of one file (storage, file, page index). A page is ABSENT, READING (a disk read for it is
 * queued or in progress; not evictable, not counted against capacity) or RESIDENT (in an LRU list of at most
 * capacity/page pages; the least recently used page is evicted when a read completes into a full cache).
 * pc_touch moves resident pages to the front (a send reads them). Pure data structure: no SimGrid, no I/O; memory
 * grows with the number of RESIDENT + READING pages only. Keys are values, never pointers (determinism).
 */
#ifndef HEKATE_SIM_PAGECACHE_H
#define HEKATE_SIM_PAGECACHE_H

#include <stdbool.h>
#include <stdint.h>

typedef enum pc_state { PC_ABSENT = 0, PC_READING = 1, PC_RESIDENT = 2 } pc_state;

typedef struct pc_key {
    uint64_t storage;
    uint32_t file;
    uint64_t page;
} pc_key;

typedef struct pagecache pagecache;

pagecache *pc_new(uint64_t capacity_bytes, uint32_t page);
void pc_free(pagecache *pc);

uint32_t pc_page_size(const pagecache *pc);
pc_state pc_get(const pagecache *pc, pc_key k);
/* ABSENT -> READING; returns false (and changes nothing) if the page is not ABSENT. */
bool pc_begin_read(pagecache *pc, pc_key k);
/* READING -> RESIDENT at the LRU front, evicting least recently used pages beyond capacity. */
void pc_finish_read(pagecache *pc, pc_key k);
/* RESIDENT: move to the LRU front. Other states: nothing. */
void pc_touch(pagecache *pc, pc_key k);

typedef struct pc_stats {
    uint64_t resident, reading; /* pages now */
    uint64_t evictions;         /* pages evicted so far */
    uint64_t capacity;          /* pages */
} pc_stats;
void pc_get_stats(const pagecache *pc, pc_stats *out);

#endif
