/* conn_cipher: the encrypted half of a connection's write path (internal to net/conn.c): the loop-wide chunk
 * buffer, the fault-safe copy out of pinned mappings, and a connection's held remainder.
 *
 * Contract
 * --------
 * An encrypted range of a send queue (items whose cipher is set, net/sendq.h) is written in chunks: cc_fill copies at
 * most CC_CHUNK bytes from the head of the queue (consecutive items under the head's cipher, BYTES and EXTENT alike)
 * into the copier's buffer and encrypts them there, advancing the cipher by exactly the bytes it returns. The caller
 * writes the chunk; what the socket does not take is kept with cc_keep (the encrypted remainder, at most CC_CHUNK
 * bytes) and written before anything else, so the cipher never runs ahead of the socket by more than one chunk and
 * never advances for bytes that are not written, in that order, later. The queue's items stay queued (and their
 * extents pinned) until their bytes are written: the remainder mirrors the head of the queue.
 *
 * Mapped memory is never read by the event loop itself (a page of a truncated file would raise SIGBUS): extents are
 * copied by the kernel, all extents of a chunk in one process_vm_readv on the own process, or, where that call is refused (ENOSYS, EPERM: a
 * seccomp filter), by writing them into a pipe and reading them back. Either way a vanished page ends the copy short
 * (EFAULT), exactly like the plain path's writev.
 *
 * Return codes: cc_copier_init and cc_keep return 0, or -1 if out of memory; cc_fill returns the bytes ready in the
 * buffer, 0 only when the head item's next byte cannot be read (its mapping lost the page).
 */
#ifndef HEKATE_CONN_CIPHER_H
#define HEKATE_CONN_CIPHER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sendq.h"
#include "stream_cipher.h"

enum { CC_CHUNK = 64 * 1024, CC_MAX_EXTENTS = 64 /* extents copied into one chunk (one system call) */ };

typedef struct cc_copier {
    uint8_t *buf;            /* CC_CHUNK bytes, shared by every connection of a hub */
    int pipe_fd[2];          /* the pipe fallback's ends (-1 until used) */
    int use_pipe;            /* 1 once process_vm_readv was refused */
    pid_t pid;               /* our own, read once: a hub is not used across fork() (neither is its libev loop) */
} cc_copier;

typedef struct cc_state {    /* one connection's, from its first set_cipher on */
    hk_cipher *cur;          /* applied to later sends; NULL: plain */
    uint8_t *rem;            /* encrypted bytes not yet written (the queue's head), rem[off, len) */
    uint32_t rem_off, rem_len;
} cc_state;

int cc_copier_init(cc_copier *cp);
void cc_copier_free(cc_copier *cp);
/* For tests: 1 makes every copy go through the pipe fallback. */
void cc_copier_force_pipe(cc_copier *cp, int on);

/* Encrypted bytes ready at cp->buf from the head of q (whose head item has a cipher); see the contract. */
size_t cc_fill(cc_copier *cp, const sendq *q);
/* Unwritten encrypted bytes held by s. */
static inline size_t cc_held(const cc_state *s)
{
    return s ? s->rem_len - s->rem_off : 0;
}
/* Holds p[0, n) (n <= CC_CHUNK, nothing held before) as the remainder to write first. */
int cc_keep(cc_state *s, const uint8_t *p, size_t n);
/* n bytes of the remainder were written; frees it once empty. */
void cc_advance(cc_state *s, size_t n);
/* Frees s and what it holds (NULL is a no-op). */
void cc_state_free(cc_state *s);

#endif
