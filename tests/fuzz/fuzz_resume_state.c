/* Fuzz target for the resume state file's reader (core/resume_state.c): the input is a whole state file. The reader
 * either refuses it or hands out exactly the entry count its trailer states; each entry's description either fails
 * to decode or decodes into a description that encodes back to the very same bytes, whose files lie end to end
 * (offsets sum the lengths to the total) and whose every path stays below the torrent's folder (no component "."
 * or "..", no '/' inside one), and whose v2 hash offsets (a hybrid's) lie inside the entry's .torrent size. Then the
 * same input is tried as a bare description (size unknown). No crash, no leak, no sanitizer report. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metainfo.h"
#include "resume_state.h"

/* Each v2 hash offset a description hands out names 32 bytes a piece of its file (or 32 for a file of at most one
 * piece) inside the .torrent's tsize bytes, none for pad and empty files. */
static void check_v2(const mi_torrent *mi, uint64_t tsize)
{
    if (!mi->v2_hashes)
        return;
    if (!mi->hybrid || mi->info_end > tsize)
        abort();
    for (uint32_t i = 0; i < mi->file_count; i++) {
        const mi_file *f = &mi->files[i];
        uint64_t o = mi->v2_hashes[i];
        uint64_t n = f->length <= mi->piece_length ? 32 : (f->length + mi->piece_length - 1) / mi->piece_length * 32;
        if (o != 0 && ((f->flags & MI_FILE_PAD) || f->length == 0 || o > tsize || tsize - o < n ||
                       f->offset % mi->piece_length != 0))
            abort();
    }
}

static void check_desc(const uint8_t *d, size_t len, uint64_t tsize)
{
    char err[256];
    mi_torrent *mi = hk_rs_desc_decode(d, len, tsize, err, sizeof err);
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
    check_v2(mi, tsize);
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
            check_desc(e.desc, e.desc_len, e.id.size); /* the .torrent's size, as on load */
            n++;
        }
        if (n != r.count)
            abort();
    }
    check_desc(data, size, UINT64_MAX);
    return 0;
}
