/* torrent_builder: builds .torrent bytes in memory for unit tests and fuzz seeds (bencode encoder; piece hashes are
 * zeros: the seeder never checks them). A single entry with path NULL makes a single-file torrent; otherwise a
 * multi-file one. Pad files get attr "p" and a ".pad/<n>" path. */
#ifndef HEKATE_TEST_TORRENT_BUILDER_H
#define HEKATE_TEST_TORRENT_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tb_file {
    const char *path;   /* NULL: single-file torrent (only as the sole entry) */
    uint64_t length;
    bool pad;
} tb_file;

/* malloc'd .torrent bytes (free with free()); *len set. NULL on allocation failure. */
uint8_t *tb_torrent(const char *name, uint32_t piece_length, const tb_file *files, size_t nfiles, size_t *len);

/* Single-file shortcut. */
uint8_t *tb_single(const char *name, uint32_t piece_length, uint64_t length, size_t *len);

#endif
