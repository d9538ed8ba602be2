/* page_cache_fixture: dropping a file's pages from the page cache for the residency tests, and confirming it.
 *
 * posix_fadvise(POSIX_FADV_DONTNEED) is advice: a page still in another CPU's LRU batch, under writeback or briefly
 * locked is skipped, which on a loaded machine made residency tests see pages they believed gone. pc_drop therefore
 * syncs, advises, then checks with mincore and tries again (up to about two seconds) until no page of the range is
 * resident.
 *
 * Contract: pc_drop(path, off, len) drops [off, off+len) of the file (len 0: to the end) and returns only when
 * mincore reports none of those pages resident; it asserts (Criterion) when the file cannot be opened or the pages
 * stay resident. pc_resident_pages(path) returns how many of the file's pages mincore reports resident, or -1 on
 * error (the file cannot be opened or mapped; an empty file has 0). pc_range_resident(path, off, len) returns 1 when
 * every page holding a byte of [off, off+len) is resident, 0 when one is not, -1 on error.
 */
#ifndef HEKATE_TEST_PAGE_CACHE_FIXTURE_H
#define HEKATE_TEST_PAGE_CACHE_FIXTURE_H

#include <stdint.h>

void pc_drop(const char *path, uint64_t off, uint64_t len);
long pc_resident_pages(const char *path);
int pc_range_resident(const char *path, uint64_t off, uint64_t len);

#endif
