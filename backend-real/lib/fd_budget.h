/* fd_budget: the daemon's descriptor budget checked against RLIMIT_NOFILE at start (issue 14, item 4).
 *
 * Contract
 * --------
 * Every descriptor the daemon may hold at once: one per connection (--max-peers), one per open data file
 * (--max-open-files), one per page-in job in flight (disk_jobs), and HK_FD_FIXED for everything else (standard
 * streams, the listening socket and its spare, libev's epoll and wake-ups, the zero-copy pipe and /dev/null (3),
 * the thread pool's wake-up, tracker sockets and libcurl's connections, directory walks of a scan). hk_fd_budget_plan compares their sum with the soft limit
 * (the caller raised it to the hard limit first: hk_raise_fd_limit):
 *   - it fits: HK_FD_FITS;
 *   - it does not: HK_FD_LOWERED when a share fits; what is left after the jobs and HK_FD_FIXED goes at most half
 *     to data files (never more than asked), peers get the rest (never more than asked, at least min_peers:
 *     --max-unchoked), data files then what peers leave; out->peers and out->files are the lowered values;
 *   - not even min_peers and one data file fit: HK_FD_REFUSED (the daemon refuses to start rather than run out of
 *     descriptors later).
 * In every case out->fd_cap is the listener's cap (hk_listener_opts.fd_cap), limit - (disk_jobs + HK_FD_RESERVE): an
 * accepted connection whose descriptor number reaches it is closed at once (descriptors are lowest-first, so fewer
 * than that many were free), so the page-in jobs and HK_FD_RESERVE more (data files being opened) always find
 * descriptors whatever the connections do. Data files already open need none. hk_fd_budget_line formats the one
 * line the daemon logs about it.
 */
#ifndef HEKATE_FD_BUDGET_H
#define HEKATE_FD_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#define HK_FD_FIXED 64u   /* descriptors for everything but peers, data files and page-in jobs */
#define HK_FD_RESERVE 16u /* kept free above the data files' and jobs' share when connections flood in */

typedef enum hk_fd_verdict { HK_FD_FITS = 0, HK_FD_LOWERED, HK_FD_REFUSED } hk_fd_verdict;

typedef struct hk_fd_budget {
    uint64_t limit; /* the soft RLIMIT_NOFILE it was checked against */
    uint32_t max_peers, max_open_files, disk_jobs, fixed;
    uint64_t need;   /* max_peers + max_open_files + disk_jobs + fixed */
    uint32_t peers;  /* the connections allowed: max_peers, or lowered to fit */
    uint32_t files;  /* the data files kept open: max_open_files, or lowered to fit */
    uint64_t fd_cap; /* for the listener: descriptors numbered from here are refused */
    hk_fd_verdict verdict;
} hk_fd_budget;

hk_fd_verdict hk_fd_budget_plan(uint64_t limit, uint32_t max_peers, uint32_t min_peers, uint32_t max_open_files,
                                uint32_t disk_jobs, hk_fd_budget *out);
/* "descriptor budget: --max-peers 500 + --max-open-files 1024 + 32 disk jobs + 64 fixed = 1620 of 4096
 * (RLIMIT_NOFILE)", followed for LOWERED / REFUSED by what was done and which options or limit to change. */
void hk_fd_budget_line(const hk_fd_budget *b, char *buf, size_t cap);

#endif
