/* mapguard: reading a file's mapping on a pool thread without dying of SIGBUS (backend-real; used by verify.c to
 * hash a piece straight from the store's mapping, the same pages the send path writes from).
 *
 * Contract
 * --------
 * hk_mapguard_run(fn, arg) runs fn(arg) on the calling thread and returns 0 when fn returned. If fn touches a page of
 * a file mapping that the file no longer backs (the file shrank, or the disk failed to read it), the kernel raises
 * SIGBUS on that thread: the guard's handler abandons fn at that instruction (siglongjmp) and hk_mapguard_run
 * returns EIO. fn must therefore only read mapped memory and compute while it may fault: it must not take locks,
 * allocate or free, or leave shared state half-changed (hashing the bytes into a context of the caller's is fine; the
 * caller frees that context afterwards). Calls nest on one thread only if the inner one returns before the outer
 * faults (the innermost guard wins). Thread-safe: the armed guard is per thread.
 *
 * hk_mapguard_init installs the handler once per process (later calls do nothing) and returns 0, or -1 with errno
 * when sigaction failed; then hk_mapguard_run runs fn unguarded and returns 0 (sigaction fails only for a bad signal
 * number: not expected; a caller that populated the range first, hk_mapguard_populate, would then die only of a file
 * that shrinks during the read itself).
 * A SIGBUS that no guard armed on its thread goes to the disposition there was before (another handler, e.g. a
 * sanitizer's, or the default: the process ends as it would have without the guard).
 *
 * hk_mapguard_populate(addr, len): MADV_POPULATE_READ over the pages of [addr, addr + len) of a read-only file
 * mapping: one system call maps every page into the process (reading the file where it is not cached) instead of a
 * fault per 16 pages. 0; EIO when the range is not backed by the file (shrunk: no signal, the fault is reported);
 * ENOMEM or EAGAIN as the kernel says; other errors (EINVAL: a kernel before 5.14) return 0: the pages are then
 * faulted in by the reads themselves.
 */
#ifndef HEKATE_MAPGUARD_H
#define HEKATE_MAPGUARD_H

#include <stddef.h>

int hk_mapguard_init(void);
int hk_mapguard_run(void (*fn)(void *arg), void *arg);
int hk_mapguard_populate(const void *addr, size_t len);

#endif
