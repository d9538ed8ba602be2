/* Fuzz target for the resume state file's reader (core/resume_state.c): the input is a whole state file. The reader
 * either refuses it or hands out exactly the entry count its trailer states; each entry's description either fails
 * to decode or decodes into a description that encodes back to the very same bytes, whose files lie end to end
 * (offsets sum the lengths to the total) and whose every path stays below the torrent's folder (no component "."
 * or "..", no '/' inside one). Then the same input is tried as a bare description. No crash, no leak, no sanitizer
 * report. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metainfo.h"
#include "resume_state.h"

static void check_desc(const uint8_t *d, size_t len)
{
    char err[256];
    mi_torrent *mi = hk_rs_desc_decode(d, len, err, sizeof err);
    if (!mi)
        return;
    size_t n = hk_rs_desc_encode(mi, NULL, 0);
    uint8_t *back = malloc(n ? n : 1);
    if (!back || hk_rs_desc_encode(mi, back, n) != n || n != len || memcmp(back, d, len) != 0)
        abort(); /* decode then encode must be the identity */
    uint64_t off = 0;
    for (uint32_t i = 0; i < mi->file_count; i++) {
        if (mi->files[i].offset != off)
            abort();
        off += mi->files[i].length;
        char rel[MI_MAX_PATH + 2];
        size_t rl = mi_file_relpath(mi, i, rel, sizeof rel);
        if (rl >= sizeof rel || rel[0] == '/' || strstr(rel, "/../") || strncmp(rel, "../", 3) == 0 ||
            strcmp(rel, "..") == 0)
            abort();
    }
    if (off != mi->total_length || mi->piece_count != (mi->total_length + mi->piece_length - 1) / mi->piece_length)
        abort();
    free(back);
    mi_free(mi);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hk_rs_reader r;
    char err[256];
    if (hk_rs_open(&r, data, size, err, sizeof err) == 0) {
        hk_rs_entry e;
        uint64_t n = 0;
        while (hk_rs_next(&r, &e) == 1) {
            if (e.path_len == 0 || e.path_len >= HK_RS_MAX_PATH || memchr(e.path, 0, e.path_len))
                abort();
            check_desc(e.desc, e.desc_len);
            n++;
        }
        if (n != r.count)
            abort();
    }
    check_desc(data, size);
    return 0;
}
