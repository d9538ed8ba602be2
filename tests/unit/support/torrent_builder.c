/* torrent_builder: owns the in-memory .torrent generator for tests (see torrent_builder.h). */
#include "torrent_builder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bencode.h"

uint8_t *tb_torrent(const char *name, uint32_t piece_length, const tb_file *files, size_t nfiles, size_t *len)
{
    uint64_t total = 0;
    for (size_t i = 0; i < nfiles; i++)
        total += files[i].length;
    uint64_t pieces = (total + piece_length - 1) / piece_length;
    ben_buf b;
    ben_buf_init(&b);
    ben_put_dict_begin(&b);
    ben_put_cstr(&b, "info");
    ben_put_dict_begin(&b);
    bool single = nfiles == 1 && files[0].path == NULL;
    if (!single) {
        ben_put_cstr(&b, "files");
        ben_put_list_begin(&b);
        for (size_t i = 0; i < nfiles; i++) {
            ben_put_dict_begin(&b);
            if (files[i].pad) {
                ben_put_cstr(&b, "attr");
                ben_put_cstr(&b, "p");
            }
            ben_put_cstr(&b, "length");
            ben_put_int(&b, (int64_t)files[i].length);
            ben_put_cstr(&b, "path");
            ben_put_list_begin(&b);
            if (files[i].pad) {
                char num[32];
                snprintf(num, sizeof num, "%zu", i);
                ben_put_cstr(&b, ".pad");
                ben_put_cstr(&b, num);
            } else {
                ben_put_cstr(&b, files[i].path);
            }
            ben_put_end(&b);
            ben_put_end(&b);
        }
        ben_put_end(&b);
    } else {
        ben_put_cstr(&b, "length");
        ben_put_int(&b, (int64_t)files[0].length);
    }
    ben_put_cstr(&b, "name");
    ben_put_cstr(&b, name);
    ben_put_cstr(&b, "piece length");
    ben_put_int(&b, piece_length);
    ben_put_cstr(&b, "pieces");
    uint8_t *zeros = calloc(pieces ? pieces : 1, 20);
    ben_put_str(&b, zeros, (size_t)pieces * 20);
    free(zeros);
    ben_put_end(&b);
    ben_put_end(&b);
    if (b.failed) {
        ben_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.data; /* ownership passes to the caller (plain malloc) */
}

uint8_t *tb_single(const char *name, uint32_t piece_length, uint64_t length, size_t *len)
{
    tb_file f = {NULL, length, false};
    return tb_torrent(name, piece_length, &f, 1, len);
}
