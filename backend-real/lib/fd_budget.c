/* fd_budget: the descriptor budget against RLIMIT_NOFILE (contract in fd_budget.h): arithmetic and its one line. */
#include "fd_budget.h"

#include <stdbool.h>
#include <stdio.h>

/* Shares `avail` descriptors between peers and data files when the asked ones do not fit: data files get at most
 * half (and at most what was asked), peers the rest (at most what was asked, at least min_peers), data files then
 * whatever peers leave. false when not even min_peers and one data file fit. */
static bool share(uint64_t avail, uint32_t max_peers, uint32_t min_peers, uint32_t max_open_files, hk_fd_budget *out)
{
    uint64_t files = avail / 2 < max_open_files ? avail / 2 : max_open_files;
    uint64_t peers = avail - files < max_peers ? avail - files : max_peers;
    if (peers < min_peers)
        peers = min_peers;
    if (peers >= avail)
        return false;
    files = avail - peers < max_open_files ? avail - peers : max_open_files;
    out->peers = (uint32_t)peers;
    out->files = (uint32_t)files;
    return true;
}

hk_fd_verdict hk_fd_budget_plan(uint64_t limit, uint32_t max_peers, uint32_t min_peers, uint32_t max_open_files,
                                uint32_t disk_jobs, hk_fd_budget *out)
{
    out->limit = limit;
    out->max_peers = max_peers;
    out->max_open_files = max_open_files;
    out->disk_jobs = disk_jobs;
    out->fixed = HK_FD_FIXED;
    out->need = (uint64_t)max_peers + max_open_files + disk_jobs + HK_FD_FIXED;
    out->peers = max_peers;
    out->files = max_open_files;
    uint64_t base = (uint64_t)disk_jobs + HK_FD_FIXED;
    if (out->need <= limit)
        out->verdict = HK_FD_FITS;
    else if (limit > base && share(limit - base, max_peers, min_peers ? min_peers : 1, max_open_files, out))
        out->verdict = HK_FD_LOWERED;
    else
        out->verdict = HK_FD_REFUSED;
    uint64_t keep = (uint64_t)disk_jobs + HK_FD_RESERVE; /* free slots: files already open need none */
    out->fd_cap = limit > keep ? limit - keep : 0;
    return out->verdict;
}

void hk_fd_budget_line(const hk_fd_budget *b, char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
                     "descriptor budget: --max-peers %u + --max-open-files %u + %u disk jobs + %u fixed = %llu %s %llu "
                     "(RLIMIT_NOFILE)",
                     b->max_peers, b->max_open_files, b->disk_jobs, b->fixed, (unsigned long long)b->need,
                     b->verdict == HK_FD_FITS ? "of" : "over the limit", (unsigned long long)b->limit);
    if (n < 0 || (size_t)n >= cap)
        return;
    if (b->verdict == HK_FD_LOWERED)
        snprintf(buf + n, cap - (size_t)n,
                 ": --max-peers lowered to %u, --max-open-files to %u; raise the limit (ulimit -n) or lower "
                 "--max-peers / --max-open-files",
                 b->peers, b->files);
    else if (b->verdict == HK_FD_REFUSED)
        snprintf(buf + n, cap - (size_t)n,
                 ": not even --max-unchoked peers and one data file fit; raise the limit (ulimit -n) or lower "
                 "--max-unchoked / --disk-threads");
}
