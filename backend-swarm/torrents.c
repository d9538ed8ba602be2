/* torrents: owns the real torrents of a hekate-swarm run: writing them (--make-torrents) and loading them with the
 * block digests the leechers verify against (see torrents.h). */
#include "torrents.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bencode.h"
#include "metainfo.h"
#include "prng.h"

#define CHUNK (1u << 20)

/* Writes the data file and returns its piece hashes (malloc'ed), or NULL after a message. */
static uint8_t *write_data(const char *path, uint64_t size, uint32_t plen, uint64_t seed, uint32_t k)
{
    uint32_t pieces = (uint32_t)((size + plen - 1) / plen);
    uint8_t *hashes = malloc((size_t)pieces * 20), *buf = malloc(plen);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!hashes || !buf || fd < 0) {
        fprintf(stderr, "hekate-swarm: %s: %s\n", path, fd < 0 ? strerror(errno) : "out of memory");
        goto fail;
    }
    prng r;
    prng_seed(&r, seed, 0x64617461ull + k);
    for (uint32_t i = 0; i < pieces; i++) {
        uint64_t n = size - (uint64_t)i * plen < plen ? size - (uint64_t)i * plen : plen;
        prng_fill(&r, buf, (size_t)n);
        SHA1(buf, (size_t)n, hashes + (size_t)i * 20);
        if (write(fd, buf, (size_t)n) != (ssize_t)n) {
            fprintf(stderr, "hekate-swarm: writing %s: %s\n", path, strerror(errno));
            goto fail;
        }
    }
    if (fsync(fd) < 0 || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0) {
        fprintf(stderr, "hekate-swarm: %s: cannot flush it\n", path);
        goto fail;
    }
    close(fd);
    free(buf);
    return hashes;
fail:
    if (fd >= 0)
        close(fd);
    free(buf);
    free(hashes);
    return NULL;
}

static int write_torrent(const char *path, const char *name, uint64_t size, uint32_t plen, const uint8_t *hashes)
{
    uint32_t pieces = (uint32_t)((size + plen - 1) / plen);
    ben_buf b;
    ben_buf_init(&b);
    ben_put_dict_begin(&b);
    ben_put_cstr(&b, "info");
    ben_put_dict_begin(&b);
    ben_put_cstr(&b, "length");
    ben_put_int(&b, (int64_t)size);
    ben_put_cstr(&b, "name");
    ben_put_cstr(&b, name);
    ben_put_cstr(&b, "piece length");
    ben_put_int(&b, plen);
    ben_put_cstr(&b, "pieces");
    ben_put_str(&b, hashes, (size_t)pieces * 20);
    ben_put_end(&b);
    ben_put_end(&b);
    FILE *f = b.failed ? NULL : fopen(path, "wb");
    int rc = f && fwrite(b.data, 1, b.len, f) == b.len ? 0 : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    ben_buf_free(&b);
    if (rc < 0)
        fprintf(stderr, "hekate-swarm: cannot write %s\n", path);
    return rc;
}

int swarm_torrents_make(const scenario *sc, const char *dir)
{
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "hekate-swarm: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (uint32_t k = 0; k < sc->torrent.count; k++) {
        char name[64], path[4200];
        snprintf(name, sizeof name, "sim-%u.bin", k);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        uint8_t *h = write_data(path, sc->torrent.size, sc->torrent.piece_length, sc->run.seed, k);
        if (!h)
            return -1;
        snprintf(path, sizeof path, "%s/sim-%u.torrent", dir, k);
        int rc = write_torrent(path, name, sc->torrent.size, sc->torrent.piece_length, h);
        free(h);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 65536;
            uint8_t *nb = realloc(buf, cap);
            if (!nb)
                break;
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* A scenario's data, all its torrents together, up to this size is kept in memory once verified, and each received
 * block is compared with its bytes (lk_torrent.block_data: memcmp, far cheaper than hashing every block); larger
 * data keeps one SHA-1 per block. */
#define KEEP_DATA_MAX (256ull << 20)

/* Every piece of the data file against its hash; then the data into t->block_data (keep) or every block's digest
 * into t->block_sha1; 0 or -1. */
static int digest_data(lk_torrent *t, const char *path, const uint8_t *torrent, const mi_torrent *mt, bool keep)
{
    uint8_t (*d)[20] = keep ? NULL : malloc((size_t)t->lay.nblocks * 20);
    uint8_t *all = keep ? malloc(t->lay.size ? (size_t)t->lay.size : 1) : NULL;
    uint8_t *buf = keep ? NULL : malloc(t->lay.piece_length);
    FILE *f = fopen(path, "rb");
    int rc = (keep ? all != NULL : d && buf) && f ? 0 : -1;
    for (uint32_t i = 0; rc == 0 && i < t->lay.piece_count; i++) {
        uint64_t n = t->lay.size - (uint64_t)i * t->lay.piece_length;
        if (n > t->lay.piece_length)
            n = t->lay.piece_length;
        uint8_t h[20], *p = keep ? all + (size_t)i * t->lay.piece_length : buf;
        if (fread(p, 1, (size_t)n, f) != n) {
            rc = -1;
            break;
        }
        SHA1(p, (size_t)n, h);
        if (memcmp(h, torrent + mt->pieces_offset + (size_t)i * 20, 20) != 0) {
            fprintf(stderr, "hekate-swarm: %s: piece %u does not match its hash\n", path, i);
            rc = -1;
            break;
        }
        for (uint32_t j = 0; !keep && j < t->lay.bpp && (uint64_t)j * LK_BLOCK < n; j++) {
            uint32_t b = i * t->lay.bpp + j;
            SHA1(buf + (size_t)j * LK_BLOCK, lk_block_len(t, b), d[b]);
        }
    }
    if (f) { /* the seeder must find the data where --make-torrents left it: not in the page cache */
        posix_fadvise(fileno(f), 0, 0, POSIX_FADV_DONTNEED);
        fclose(f);
    }
    free(buf);
    if (rc < 0) {
        free(d);
        free(all);
        return -1;
    }
    t->block_sha1 = (const uint8_t(*)[20])d;
    t->block_data = all;
    return 0;
}

static int load_one(const scenario *sc, const char *dir, uint32_t k, bool verify, lk_torrent *t)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/sim-%u.torrent", dir, k);
    size_t len = 0;
    uint8_t *buf = read_all(path, &len);
    mi_torrent *mt = NULL;
    mi_error me;
    if (!buf || mi_parse(buf, len, &mt, &me) < 0) {
        fprintf(stderr, "hekate-swarm: %s: %s (make them with --make-torrents)\n", path,
                buf ? me.what : "cannot read it");
        free(buf);
        return -1;
    }
    int rc = 0;
    if (mt->total_length != sc->torrent.size || mt->piece_length != sc->torrent.piece_length || mt->multi_file) {
        fprintf(stderr, "hekate-swarm: %s: not the scenario's torrent (size or piece length differ)\n", path);
        rc = -1;
    }
    if (rc == 0) {
        memcpy(t->info_hash, mt->info_hash, 20);
        rc = lk_torrent_layout(t, mt->total_length, mt->piece_length);
    }
    if (rc == 0 && verify) {
        snprintf(path, sizeof path, "%s/sim-%u.bin", dir, k);
        rc = digest_data(t, path, buf, mt, (uint64_t)sc->torrent.size * sc->torrent.count <= KEEP_DATA_MAX);
        if (rc < 0)
            fprintf(stderr, "hekate-swarm: %s: cannot verify the data\n", path);
    }
    mi_free(mt);
    free(buf);
    return rc;
}

int swarm_torrents_load(const scenario *sc, const char *dir, bool verify, lk_torrent **out)
{
    lk_torrent *t = calloc(sc->torrent.count, sizeof *t);
    if (!t)
        return -1;
    for (uint32_t k = 0; k < sc->torrent.count; k++)
        if (load_one(sc, dir, k, verify, &t[k]) < 0) {
            swarm_torrents_free(t, k);
            return -1;
        }
    *out = t;
    return 0;
}

void swarm_torrents_free(lk_torrent *t, uint32_t count)
{
    for (uint32_t k = 0; t && k < count; k++)
        free((void *)t[k].block_sha1), free((void *)t[k].block_data);
    free(t);
}
