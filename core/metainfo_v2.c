/* metainfo_v2: finds, for a hybrid (BEP 52) torrent, where each file's v2 hashes are in the .torrent (see
 * metainfo.h, mi_torrent.v2_hashes): the file's `piece layers` string, or for a file of at most one piece its
 * `pieces root` in the file tree. Only offsets are recorded; no hash is copied or computed here. */
#include "metainfo_v2.h"

#include <string.h>

#define V2_BLOCK 16384u

/* The file tree node of file i ({"": {length, pieces root}}'s inner dict), or -1. */
static int64_t tree_leaf(const ben_doc *d, int64_t tree, const mi_torrent *t, uint32_t i)
{
    const char *p = t->multi_file ? mi_file_path(t, i) : t->name;
    int64_t node = tree;
    while (node >= 0) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        node = ben_dict_find_n(d, (uint32_t)node, p, n);
        if (node < 0 || d->tok[node].type != BEN_DICT)
            return -1;
        if (!slash)
            break;
        p = slash + 1;
    }
    if (node < 0)
        return -1;
    int64_t leaf = ben_dict_find_n(d, (uint32_t)node, "", 0);
    return leaf >= 0 && d->tok[leaf].type == BEN_DICT ? leaf : -1;
}

/* The offset of file i's v2 hashes (0: none usable), or -1 when the v2 part contradicts the v1 part. */
static int64_t file_hashes(const ben_doc *d, int64_t tree, int64_t layers, const mi_torrent *t, uint32_t i)
{
    const mi_file *f = &t->files[i];
    if ((f->flags & MI_FILE_PAD) || f->length == 0)
        return 0;
    if (f->offset % t->piece_length != 0)
        return -1; /* not aligned: a v2 piece would not be a v1 piece */
    int64_t leaf = tree_leaf(d, tree, t, i), len;
    const uint8_t *root;
    size_t n;
    if (leaf < 0 || !ben_get_int(d, ben_dict_find(d, (uint32_t)leaf, "length"), &len) || (uint64_t)len != f->length ||
        !ben_get_str(d, ben_dict_find(d, (uint32_t)leaf, "pieces root"), &root, &n) || n != MI_V2_HASH)
        return -1;
    if (f->length <= t->piece_length)
        return (int64_t)(root - d->input);
    const uint8_t *layer;
    uint64_t pieces = (f->length + t->piece_length - 1) / t->piece_length;
    if (layers < 0 || !ben_get_str(d, ben_dict_find_n(d, (uint32_t)layers, root, MI_V2_HASH), &layer, &n) ||
        (uint64_t)n / MI_V2_HASH != pieces || n % MI_V2_HASH != 0)
        return 0; /* no layer (e.g. a .torrent rebuilt from magnet metadata): this file is checked through v1 only */
    return (int64_t)(layer - d->input);
}

bool mi_v2_offsets(const ben_doc *d, uint32_t info, const mi_torrent *t, uint64_t *out)
{
    memset(out, 0, (size_t)t->file_count * sizeof *out);
    int64_t tree = ben_dict_find(d, info, "file tree");
    int64_t layers = ben_dict_find(d, 0, "piece layers");
    if (layers >= 0 && d->tok[layers].type != BEN_DICT)
        layers = -1;
    uint32_t pl = t->piece_length;
    if (tree < 0 || d->tok[tree].type != BEN_DICT || pl < V2_BLOCK || (pl & (pl - 1)) != 0)
        return false;
    bool any = false;
    for (uint32_t i = 0; i < t->file_count; i++) {
        int64_t off = file_hashes(d, tree, layers, t, i);
        if (off < 0) {
            memset(out, 0, (size_t)t->file_count * sizeof *out);
            return false;
        }
        out[i] = (uint64_t)off;
        any |= off > 0;
    }
    return any;
}
