/* torrentgen: owns the synthetic .torrent files of a simulation (see torrentgen.h). */
#include "torrentgen.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bencode.h"
#include "prng.h"

int torrentgen_make(sim_torrent *t, uint32_t index, uint64_t size, uint32_t piece_length, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    uint64_t pieces = (size + piece_length - 1) / piece_length;
    if (pieces > UINT32_MAX / 20)
        return -1;
    uint8_t *hashes = malloc((size_t)pieces * 20);
    if (!hashes)
        return -1;
    prng r;
    prng_seed(&r, seed, 0x70727265ull + index);
    prng_fill(&r, hashes, (size_t)pieces * 20);
    char name[64];
    snprintf(name, sizeof name, "sim-%u.bin", index);

    ben_buf b;
    ben_buf_init(&b);
    ben_put_dict_begin(&b);
    ben_put_cstr(&b, "info");
    size_t info_start = b.len;
    ben_put_dict_begin(&b);
    ben_put_cstr(&b, "length");
    ben_put_int(&b, (int64_t)size);
    ben_put_cstr(&b, "name");
    ben_put_cstr(&b, name);
    ben_put_cstr(&b, "piece length");
    ben_put_int(&b, piece_length);
    ben_put_cstr(&b, "pieces");
    ben_put_str(&b, hashes, (size_t)pieces * 20);
    ben_put_end(&b);
    size_t info_end = b.len;
    ben_put_end(&b);
    free(hashes);
    if (b.failed) {
        ben_buf_free(&b);
        return -1;
    }
    t->bytes = b.data;
    t->len = b.len;
    t->info_start = info_start;
    t->info_end = info_end;
    SHA1(t->bytes + info_start, info_end - info_start, t->info_hash);
    t->size = size;
    t->piece_length = piece_length;
    t->piece_count = (uint32_t)pieces;
    return 0;
}

void torrentgen_free(sim_torrent *t)
{
    free(t->bytes);
    memset(t, 0, sizeof *t);
}
