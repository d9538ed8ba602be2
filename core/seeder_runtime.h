/* seeder_runtime: the seeder's runtime table: the shared base (runtime.h) plus the peer and disk actions.
 *
 * Contract
 * --------
 * Every action receives base.ctx as its first argument. Every member below is required unless marked optional;
 * hk_seeder_new refuses a table without one (hk_seeder_runtime_check names it). Optional: the base's log, and
 * set_cipher (without it the seeder cannot serve encrypted peers: an MSE handshake is closed as not BitTorrent).
 * Connections: the backend owns sockets and hands the core an opaque hk_conn*; the core hands the backend an opaque
 *   hk_peer* (from hk_seeder_on_accept) that it passes with every later event of that connection.
 *   - send(conn, segs, n): the backend takes ALL the segments, in order, and writes them as one stream (ideally in one
 *     writev). BYTES segments are copied by the backend before send() returns; EXTENT segments are read from the
 *     data files (or mapped) by the backend when it writes them. The core limits what it queues by the `room` the
 *     backend announced in on_sendable; it never sends more than that.
 *   - close(conn): the backend closes the socket; it will deliver no further event for that connection (not even
 *     on_closed). The core forgets the connection before or right after calling close.
 *   - set_cipher(conn, cipher) (optional): every byte of every send() the core makes on conn from now on, until the
 *     next set_cipher, passes through hk_cipher_apply(cipher, ...) (core/stream_cipher.h) exactly once, in stream
 *     order, before it reaches the socket; bytes of earlier sends are written as they were given, even if still
 *     queued. cipher NULL: later sends are written as given (MSE's plaintext-after-handshake). The backend encrypts
 *     as it writes (a bounded buffer per connection or per loop), never a whole queue ahead. The cipher stays valid
 *     until the core calls close(conn) or the backend's on_closed returns (or hk_seeder_free); the backend never
 *     frees it. The core calls set_cipher at most once per connection, right after the MSE handshake (core/mse.h),
 *     before its first BitTorrent byte; the MSE handshake's own bytes are encrypted by the core itself.
 * Storage: a torrent's data is named by the `storage` handle given to hk_seeder_add_torrent (seeder.h), a file index in
 *   the torrent's file list, an offset in that file and a length. HK_FILE_METAINFO names the .torrent file itself
 *   (metadata for magnet users is served from its raw `info` bytes without keeping them in memory).
 *   - disk_prefetch(ext): a hint (madvise WILLNEED); no completion.
 *   - disk_resident(ext): true if sending ext now would not wait for the disk (mincore); may be approximate but must
 *     never claim residency for bytes that do not exist.
 *   - disk_load(ext, token): make ext resident asynchronously; completion arrives as hk_seeder_on_disk_loaded(token,
 *     status). Every disk_load gets exactly one completion, even after the requesting peer is gone.
 *     Status: HK_DISK_OK (resident now), HK_DISK_ERROR (the data is at fault: the torrent is failed and its peers
 *     dropped), HK_DISK_RETRY (a passing shortage of the process: descriptors or memory; the backend logs it once per
 *     burst). A RETRY never fails the torrent nor closes the peer: the request waits with a backoff kept by the core
 *     in the peer's own deadline (50 ms after its first RETRY, doubling up to 2 s), then its residency is asked and
 *     it is loaded again. A fast peer's block request is rejected after 8 RETRYs in a row (about 8 s: it may ask
 *     another peer); without the fast extension a request cannot be refused, so it keeps retrying at the 2 s pace while it
 *     stays queued (the peer may cancel it; the usual timeouts apply). A later OK sends it as usual.
 */
#ifndef HEKATE_SEEDER_RUNTIME_H
#define HEKATE_SEEDER_RUNTIME_H

#include "runtime.h"
#include "stream_cipher.h"

/* The result of a disk_verify. */
typedef enum hk_verify_result {
    HK_VERIFY_GOOD = 0,
    HK_VERIFY_BAD = 1,
    HK_VERIFY_RETRY = 2,
    HK_VERIFY_ERROR = 3,
} hk_verify_result;

/* A piece to verify (disk_verify). */
typedef struct hk_verify_req {
    uint32_t piece;                      /* index in the torrent */
    uint32_t nexts;
    const hk_extent *exts;               /* the piece's bytes, in order (pad files included) */
    hk_extent hash;                      /* its 20-byte SHA-1 in the .torrent (file HK_FILE_METAINFO) */
    /* Hybrid torrents (BEP 52), where the .torrent has v2 hashes for the piece (else v2_length 0): the first
     * v2_length bytes of the piece (one file's data; the rest is padding) are cut in 16 KiB blocks, each hashed with
     * SHA-256 (the last one as it is), completed with zero leaves to v2_leaves (a power of two) and reduced pairwise
     * with SHA-256 to one root, which must equal the 32 bytes at v2_hash. The piece is good only if both match. */
    uint64_t v2_length;
    uint32_t v2_leaves;
    hk_extent v2_hash;                   /* 32 bytes in the .torrent: a piece-layer entry or a file's pieces root */
} hk_verify_req;

typedef struct hk_seeder_runtime {
    hk_runtime base;                                                                      /* now, wake_at, ... */
    void (*send)(void *ctx, hk_conn *conn, const hk_segment *segs, size_t nsegs);         /* required */
    void (*close)(void *ctx, hk_conn *conn);                                              /* required */
    void (*disk_prefetch)(void *ctx, const hk_extent *ext);                               /* required */
    bool (*disk_resident)(void *ctx, const hk_extent *ext);                               /* required */
    void (*disk_load)(void *ctx, const hk_extent *ext, uint64_t token);                   /* required */
    void (*set_cipher)(void *ctx, hk_conn *conn, hk_cipher *cipher);                      /* optional */
    void (*disk_verify)(void *ctx, const hk_verify_req *req, uint64_t token);             /* optional */
} hk_seeder_runtime;

/* NULL when every required member is set, else a static message naming the first one missing. */
static inline const char *hk_seeder_runtime_check(const hk_seeder_runtime *rt)
{
    if (!rt)
        return "seeder runtime: no table";
    const char *base = hk_runtime_check(&rt->base);
    if (base)
        return base;
    const bool present[] = { rt->send, rt->close, rt->disk_prefetch, rt->disk_resident, rt->disk_load };
    static const char *const names[] = {
        "seeder runtime: send is required",          "seeder runtime: close is required",
        "seeder runtime: disk_prefetch is required", "seeder runtime: disk_resident is required",
        "seeder runtime: disk_load is required",
    };
    return hk_runtime_first_missing(present, names, sizeof names / sizeof *names);
}

#endif
