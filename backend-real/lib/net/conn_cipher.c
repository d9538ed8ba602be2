/* conn_cipher: chunked copy + encrypt of a send queue's encrypted range, the fault-safe copy out of mappings and the
 * per-connection remainder (see conn_cipher.h). */
#include "conn_cipher.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int cc_copier_init(cc_copier *cp)
{
    cp->pipe_fd[0] = cp->pipe_fd[1] = -1;
    cp->use_pipe = 0;
    cp->pid = getpid();
    cp->buf = malloc(CC_CHUNK);
    return cp->buf ? 0 : -1;
}

void cc_copier_free(cc_copier *cp)
{
    for (int i = 0; i < 2; i++)
        if (cp->pipe_fd[i] >= 0)
            close(cp->pipe_fd[i]);
    cp->pipe_fd[0] = cp->pipe_fd[1] = -1;
    free(cp->buf);
    cp->buf = NULL;
}

void cc_copier_force_pipe(cc_copier *cp, int on)
{
    cp->use_pipe = on;
}

/* Copies len bytes from mapped memory through a pipe (the kernel reads src): bytes copied, short at a vanished page. */
static size_t copy_via_pipe(cc_copier *cp, uint8_t *dst, const uint8_t *src, size_t len)
{
    if (cp->pipe_fd[0] < 0 && pipe2(cp->pipe_fd, O_NONBLOCK | O_CLOEXEC) != 0) {
        cp->pipe_fd[0] = cp->pipe_fd[1] = -1;
        return 0;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(cp->pipe_fd[1], src + done, len - done); /* the pipe is empty: takes up to its capacity */
        if (w <= 0)
            break; /* EFAULT: the next byte is gone */
        size_t got = 0;
        while (got < (size_t)w) {
            ssize_t r = read(cp->pipe_fd[0], dst + done + got, (size_t)w - got);
            if (r <= 0)
                return done + got; /* cannot happen with bytes in the pipe; never leave them behind unread */
            got += (size_t)r;
        }
        done += got;
    }
    return done;
}

/* Copies n regions of pinned mapped memory (rem[i]) to their places in the chunk (loc[i]) without the loop touching
 * the mappings: returns the bytes copied, a prefix of the regions in order (short where a page vanished). */
static size_t copy_mapped(cc_copier *cp, const struct iovec *loc, const struct iovec *rem, int n)
{
    if (!cp->use_pipe) {
        ssize_t got = process_vm_readv(cp->pid, loc, (unsigned long)n, rem, (unsigned long)n, 0);
        if (got >= 0)
            return (size_t)got;
        if (errno != ENOSYS && errno != EPERM)
            return 0; /* EFAULT: nothing readable at the first region */
        cp->use_pipe = 1;
    }
    size_t done = 0;
    for (int i = 0; i < n; i++) {
        size_t got = copy_via_pipe(cp, loc[i].iov_base, rem[i].iov_base, rem[i].iov_len);
        done += got;
        if (got < rem[i].iov_len)
            break;
    }
    return done;
}

/* The chunk's length when only `copied` bytes of its n extent regions arrived: up to the first missing byte. */
static size_t cut_at(const cc_copier *cp, const struct iovec *loc, int n, size_t copied)
{
    for (int i = 0; i < n; i++) {
        if (copied < loc[i].iov_len)
            return (size_t)((uint8_t *)loc[i].iov_base - cp->buf) + copied;
        copied -= loc[i].iov_len;
    }
    assert(!"more copied than asked");
    return 0;
}

size_t cc_fill(cc_copier *cp, const sendq *q)
{
    assert(q->icount > 0 && sq_at(q, 0)->cipher != NULL);
    hk_cipher *ci = sq_at(q, 0)->cipher;
    struct iovec loc[CC_MAX_EXTENTS], rem[CC_MAX_EXTENTS];
    int ne = 0;
    size_t n = 0, want = 0;
    for (uint32_t i = 0; i < q->icount && n < CC_CHUNK; i++) {
        const sq_item *it = sq_at(q, i);
        if (it->cipher != ci || (it->kind == SQ_EXTENT && ne == CC_MAX_EXTENTS))
            break;
        size_t take = it->len < CC_CHUNK - n ? it->len : CC_CHUNK - n;
        if (it->kind == SQ_BYTES) {
            memcpy(cp->buf + n, q->buf + it->off, take);
        } else {
            loc[ne] = (struct iovec){ .iov_base = cp->buf + n, .iov_len = take };
            rem[ne] = (struct iovec){ .iov_base = (void *)(uintptr_t)(it->base + it->off), .iov_len = take };
            ne++;
            want += take;
        }
        n += take;
    }
    if (ne > 0) { /* one system call for every extent of the chunk */
        size_t got = copy_mapped(cp, loc, rem, ne);
        if (got < want)
            n = cut_at(cp, loc, ne, got); /* the bytes before the fault go out; it is met again at the head */
    }
    hk_cipher_apply(ci, cp->buf, cp->buf, n);
    return n;
}

int cc_keep(cc_state *s, const uint8_t *p, size_t n)
{
    assert(cc_held(s) == 0 && n <= CC_CHUNK);
    free(s->rem);
    s->rem = malloc(n);
    s->rem_off = s->rem_len = 0;
    if (!s->rem)
        return -1;
    memcpy(s->rem, p, n);
    s->rem_len = (uint32_t)n;
    return 0;
}

void cc_advance(cc_state *s, size_t n)
{
    assert(n <= cc_held(s));
    s->rem_off += (uint32_t)n;
    if (s->rem_off == s->rem_len) {
        free(s->rem);
        s->rem = NULL;
        s->rem_off = s->rem_len = 0;
    }
}

void cc_state_free(cc_state *s)
{
    if (!s)
        return;
    free(s->rem);
    free(s);
}
