/* conn_splice: the zero-copy write path of net/conn.c (contract in conn_splice.h). Owns a hub's pipe, its /dev/null
 * and the staging arena of byte items, and the vmsplice -> splice round of one connection's write.
 *
 * The invariant: a byte handed to the kernel by reference is never changed while the kernel may still read it.
 * ---------------------------------------------------------------------------------------------------------------
 * vmsplice() without SPLICE_F_GIFT does not copy: the pipe takes references to the physical pages under the iovecs,
 * and splice() into a TCP socket passes those references on to the socket's buffers, which keep them until the peer
 * has acknowledged the bytes (a retransmission reads the pages again). So whatever memory is vmspliced must keep its
 * bytes, not merely stay mapped, until long after cs_write() returns. How each kind of memory meets that:
 *
 *  - Extent payload (pinned store mappings, read-only, MAP_SHARED over the page cache). The references are to the
 *    page-cache pages, not to the mapping: once vmsplice returned, unmapping (the store's unpin, a mapping evicted
 *    under --max-mapped) cannot free or change them. hekate never writes its data files. An extent stays pinned
 *    (in the queue, not consumed) until its bytes reached the socket, so it is pinned for as long as they sit in the
 *    pipe; the socket then holds the pages itself. A file truncated under its mapping: vmsplice cannot reference a
 *    page past the new end (the kernel's fault there fails with EFAULT, no SIGBUS, since no user code touches the
 *    mapping), so cs_write stops short before it and the next call fails with EFAULT at the head of the queue, the
 *    extent conn.c then reports; pages referenced before the truncation keep their bytes (the kernel zeroes in place
 *    only the tail of the page at the new end, which a writev would have read as zeros as well). Another process
 *    rewriting a data file in place changes bytes in flight, as it would change them under a writev; such a piece
 *    was bad for the peer either way (its hash check fails).
 *
 *  - Byte items (headers etc.). The queue's byte area is rewritten: compacted with memmove, reused from offset 0
 *    once drained, realloc'ed. Its bytes are therefore NEVER vmspliced: each byte item is first copied into the
 *    arena, a private anonymous mapping filled like a bump allocator, and vmspliced from there. A byte of the arena
 *    is written once and never again until the arena is recycled, and recycling is madvise(MADV_DONTNEED) over what
 *    was used: the pages leave the process (the kernel's references keep the old pages and their bytes for the pipe
 *    and the socket) and the next write faults in a fresh zeroed page. (MADV_FREE would not do: a page written again
 *    before reclaim stays the same page.) Writing other bytes of a page that is referenced is harmless: a pipe buffer
 *    or socket fragment covers only its own range of the page.
 *
 *  - The pipe is empty between calls: what splice did not move into the socket is moved into /dev/null (it is still
 *    in the queue, unconsumed, and is offered again next time), so bytes of one connection can never reach another
 *    connection's socket, and the queue is consumed by exactly the bytes the socket took. If the pipe cannot be
 *    emptied it is closed and a new one made.
 *
 * Costs: per round one vmsplice, one splice, one memcpy of the byte items (~13 bytes per 16 KiB block) and, when the
 * socket is full, one splice into /dev/null (dropping page references, no copy); the arena is recycled about once per
 * 512 KiB of byte items.
 */
#include "conn_splice.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CS_ARENA_BYTES (1u << 20)
#define CS_PIPE_WANT (1u << 20) /* the default pipe-max-size an unprivileged process may ask for */

/* splice() into a socket raises SIGPIPE on EPIPE (it has no MSG_NOSIGNAL): ignore it unless someone handles it. */
static void ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) != 0)
        return;
    if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        (void)sigaction(SIGPIPE, &sa, NULL);
    }
}

/* A fresh non-blocking pipe, as large as allowed (1 MiB, else 256 KiB, else the default). 0, or -1 with errno. */
static int pipe_open(cs_pipe *p)
{
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        p->rfd = p->wfd = -1;
        return -1;
    }
    p->rfd = fds[0];
    p->wfd = fds[1];
    if (fcntl(p->wfd, F_SETPIPE_SZ, (int)CS_PIPE_WANT) < 0)
        (void)fcntl(p->wfd, F_SETPIPE_SZ, (int)(CS_PIPE_WANT / 4));
    int sz = fcntl(p->wfd, F_GETPIPE_SZ);
    p->pipe_bytes = sz > 0 ? (size_t)sz : 65536;
    return 0;
}

static void pipe_close(cs_pipe *p)
{
    if (p->rfd >= 0)
        close(p->rfd);
    if (p->wfd >= 0)
        close(p->wfd);
    p->rfd = p->wfd = -1;
}

int cs_pipe_init(cs_pipe *p)
{
    memset(p, 0, sizeof *p);
    p->rfd = p->wfd = p->null_fd = -1;
    p->null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (p->null_fd < 0)
        return -1;
    void *a = mmap(NULL, CS_ARENA_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED || pipe_open(p) != 0) {
        int e = errno;
        if (a != MAP_FAILED)
            munmap(a, CS_ARENA_BYTES);
        close(p->null_fd);
        p->null_fd = -1;
        errno = e;
        return -1;
    }
    p->arena = a;
    p->arena_cap = CS_ARENA_BYTES;
    ignore_sigpipe();
    return 0;
}

void cs_pipe_free(cs_pipe *p)
{
    pipe_close(p);
    if (p->null_fd >= 0)
        close(p->null_fd);
    p->null_fd = -1;
    if (p->arena)
        munmap(p->arena, p->arena_cap);
    p->arena = NULL;
}

size_t cs_extent_bytes(const sendq *q, size_t cap)
{
    size_t sum = 0, ext = 0;
    for (uint32_t i = 0; i < q->icount && sum < cap; i++) {
        const sq_item *it = sq_at(q, i);
        if (it->cipher)
            break;
        size_t len = it->len < cap - sum ? it->len : cap - sum;
        if (it->kind == SQ_EXTENT)
            ext += len;
        sum += len;
    }
    return ext;
}

/* Recycles the arena once past half full: what was handed to the kernel leaves the process (see the invariant). */
static void arena_recycle(cs_pipe *p)
{
    if (p->arena_used <= p->arena_cap / 2)
        return;
    if (madvise(p->arena, p->arena_used, MADV_DONTNEED) == 0) {
        p->arena_used = 0;
        p->st.arena_resets++;
    } /* else it keeps filling up; a full arena only makes rounds shorter (never rewrites a byte) */
}

/* The iovecs of up to cap plain bytes from the head of q, byte items copied into the arena: how many, their bytes in
 * *total. */
static int stage(cs_pipe *p, const sendq *q, size_t cap, struct iovec *iov, int max, size_t *total)
{
    int n = 0;
    size_t sum = 0;
    for (uint32_t i = 0; i < q->icount && n < max && sum < cap; i++) {
        const sq_item *it = sq_at(q, i);
        if (it->cipher)
            break;
        size_t len = it->len < cap - sum ? it->len : cap - sum;
        const uint8_t *base;
        if (it->kind == SQ_BYTES) {
            size_t room = p->arena_cap - p->arena_used;
            if (len > room)
                len = room;
            if (len == 0)
                break;
            base = p->arena + p->arena_used;
            memcpy(p->arena + p->arena_used, q->buf + it->off, len);
            p->arena_used += len;
        } else {
            base = it->base + it->off;
        }
        iov[n].iov_base = (void *)(uintptr_t)base;
        iov[n].iov_len = len;
        n++;
        sum += len;
        if (len < it->len)
            break;
    }
    *total = sum;
    return n;
}

/* Throws away the n bytes left in the pipe; a pipe that cannot be emptied is replaced (cs_ready false if no new one
 * could be made). */
static void discard(cs_pipe *p, size_t n)
{
    p->st.discarded += n;
    while (n > 0) {
        ssize_t r = splice(p->rfd, NULL, p->null_fd, NULL, n, SPLICE_F_NONBLOCK);
        if (r > 0) {
            n -= (size_t)r;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            int e = errno;
            pipe_close(p);
            p->st.pipe_resets++;
            (void)pipe_open(p);
            errno = e;
            return;
        }
    }
}

ssize_t cs_write(cs_pipe *p, int fd, const sendq *q, size_t cap, struct iovec *iov, int max, size_t *offered)
{
    *offered = 0;
    if (!cs_ready(p)) {
        errno = ENOMEM;
        return -1;
    }
    arena_recycle(p);
    size_t total;
    int n = stage(p, q, cap < p->pipe_bytes ? cap : p->pipe_bytes, iov, max, &total);
    if (n == 0)
        return 0;
    ssize_t v;
    do
        v = vmsplice(p->wfd, iov, (unsigned long)n, SPLICE_F_NONBLOCK);
    while (v < 0 && errno == EINTR);
    if (v <= 0)
        return v; /* nothing entered the pipe: EFAULT at the head, EAGAIN, ENOMEM */
    p->st.rounds++;
    p->st.iovecs += (uint64_t)n;
    *offered = (size_t)v;
    ssize_t s;
    do
        s = splice(p->rfd, NULL, fd, NULL, (size_t)v, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (s < 0 && errno == EINTR);
    int e = errno;
    size_t moved = s > 0 ? (size_t)s : 0;
    p->st.bytes += moved;
    if (moved < (size_t)v)
        discard(p, (size_t)v - moved);
    if (s < 0) {
        errno = e;
        return -1;
    }
    return s;
}
