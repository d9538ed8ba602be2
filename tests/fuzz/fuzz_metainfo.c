/* libFuzzer target for core/metainfo: any input either fails with a message or yields a description whose every
 * accessor is exercised and whose invariants are checked (a violation aborts, which the fuzzer reports). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metainfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                                   \
    do {                                                                                                              \
        if (!(cond))                                                                                                  \
            abort();                                                                                                  \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mi_torrent *t = NULL;
    mi_error err;
    if (mi_parse(data, size, &t, &err) < 0) {
        CHECK(t == NULL);
        CHECK(memchr(err.what, '\0', sizeof err.what) != NULL && err.what[0] != '\0');
        return 0;
    }
    /* info range and piece hashes lie inside the input */
    CHECK(t->info_start < t->info_end && t->info_end <= size && data[t->info_start] == 'd');
    CHECK(t->pieces_offset + 20 * (uint64_t)t->piece_count <= t->info_end);
    CHECK(t->piece_length >= 1 && t->piece_length <= MI_MAX_PIECE_LENGTH);
    CHECK(t->total_length >= 1);
    CHECK((t->total_length + t->piece_length - 1) / t->piece_length == t->piece_count);
    CHECK(t->name_len >= 1 && t->name_len <= MI_MAX_COMPONENT && strlen(t->name) == t->name_len);
    CHECK(t->file_count >= 1 && (t->multi_file || t->file_count == 1));
    uint64_t off = 0;
    char rel[MI_MAX_PATH + 1];
    for (uint32_t i = 0; i < t->file_count; i++) {
        const mi_file *f = &t->files[i];
        CHECK(f->offset == off);
        off += f->length;
        const char *p = mi_file_path(t, i);
        CHECK(strlen(p) == f->path_len);
        CHECK(p[0] != '/' && strstr(p, "//") == NULL && strcmp(p, "..") != 0 && strncmp(p, "../", 3) != 0 &&
              strstr(p, "/../") == NULL);
        CHECK(mi_file_relpath(t, i, rel, sizeof rel) <= MI_MAX_PATH);
        if (f->length > 0) {
            CHECK(mi_find_file(t, f->offset) == i);
            CHECK(mi_find_file(t, f->offset + f->length - 1) == i);
        }
    }
    CHECK(off == t->total_length);
    /* v2 hash locations (hybrid only): inside the input, each file's hashes whole, files on piece boundaries */
    CHECK(!t->v2_hashes || t->hybrid);
    for (uint32_t i = 0; t->v2_hashes && i < t->file_count; i++) {
        const mi_file *f = &t->files[i];
        uint64_t v = t->v2_hashes[i], n = f->length <= t->piece_length ? 1 : (f->length - 1) / t->piece_length + 1;
        CHECK(v == 0 || (f->length > 0 && !(f->flags & MI_FILE_PAD) && f->offset % t->piece_length == 0));
        CHECK(v == 0 || (v + 32 * n <= size && v >= 3));
    }
    CHECK(mi_find_file(t, t->total_length) == -1);
    for (uint32_t i = 0; i < t->piece_count; i++) {
        uint32_t ps = mi_piece_size(t, i);
        CHECK(ps >= 1 && ps <= t->piece_length);
        if (i + 2 < t->piece_count) /* keep huge piece counts cheap */
            i = t->piece_count - 2;
    }
    CHECK(mi_piece_size(t, t->piece_count) == 0);
    uint32_t seen = 0;
    for (uint32_t k = 0; k < t->tier_count; k++) {
        CHECK(t->tiers[k].first == seen && t->tiers[k].count >= 1);
        seen += t->tiers[k].count;
    }
    CHECK(seen == t->tracker_count);
    for (uint32_t k = 0; k < t->tracker_count; k++)
        CHECK(strlen(t->trackers[k]) >= 1 && strlen(t->trackers[k]) <= MI_MAX_URL);
    size_t need = mi_magnet(t, "127.0.0.1:6881", NULL, 0);
    char *m = malloc(need + 1);
    CHECK(m != NULL && mi_magnet(t, "127.0.0.1:6881", m, need + 1) == need && strlen(m) == need);
    free(m);
    mi_free(t);
    return 0;
}
