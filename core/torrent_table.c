/* torrent_table: owns the torrent records (in the shared slab container, core/slab_array.h; indexed by the shared
 * info-hash index), the name arena and each torrent's side block with its file entries; also the piece geometry and
 * the byte-range -> file-span mapping. See torrent_table.h. */
#include "torrent_table.h"

#include <assert.h>
#include <string.h>

#include "enum_names.h"
#include "piece_state.h"

_Static_assert(HK_IH_NONE == HK_TT_NONE, "the index's 'no record' is the table's");
_Static_assert(sizeof(void *) != 8 || sizeof(hk_torrent) == 64, "the torrent record is 64 bytes on LP64 (issue 10)");
_Static_assert(sizeof(void *) != 8 || sizeof(hk_torrent_ext) == 40, "the side block is 40 bytes on LP64");
_Static_assert(HK_TORRENT_FREE == 0, "a zeroed slab is all FREE records");
_Static_assert((HK_TT_MAX_REC >> HK_TT_SLAB_BITS) < HK_SA_MAX_SLABS, "every record number has a slab");

#define TT_MIN_SLOTS 16u
#define TT_MAX_NAME 4096u
#define TT_ARENA_MIN_COMPACT 4096u

/* The index's key function: the info-hash of a live record. */
static const uint8_t *record_key(const void *owner, uint32_t rec)
{
    const hk_torrent *t = hk_tt_get(owner, rec);
    assert(t);
    return t->info_hash;
}

/* The SKEY index's mix function: the mix the table stored in the record at insert (hk_skey_mix). */
static uint32_t record_skey_mix(const void *owner, uint32_t rec)
{
    const hk_torrent *t = hk_tt_get(owner, rec);
    assert(t);
    return t->skey_mix;
}

/* A torrent of one data file (not a pad file) has no file entry allocated (files NULL): its only file is
 * [0, total_length), 16 bytes and an allocation saved per torrent (most torrents hold one file). */
static bool inline_file(const hk_torrent_desc *d)
{
    return d->nfiles == 1 && !d->files[0].pad && !d->v2_hashes;
}

/* Bytes of a torrent's files allocation: its entries, then (v2) one hash offset per file. */
static size_t files_bytes_of(uint32_t nfiles, bool v2)
{
    return (size_t)nfiles * (sizeof(hk_file_entry) + (v2 ? sizeof(uint64_t) : 0));
}

hk_file_entry hk_torrent_file(const hk_torrent *t, uint32_t i)
{
    if (!t->ext || !t->ext->files)
        return (hk_file_entry){ .offset = 0, .length_flags = t->total_length };
    return t->ext->files[i];
}

/* ---- the side block ---- */

hk_torrent_ext *hk_tt_ext(hk_torrent_table *tt, hk_torrent *t)
{
    if (!t->ext)
        t->ext = hk_mem_calloc(tt->mem, 1, sizeof *t->ext);
    return t->ext;
}

void hk_tt_ext_trim(hk_torrent_table *tt, hk_torrent *t)
{
    hk_torrent_ext *x = t->ext;
    if (x && !x->files && !x->pieces && x->verifying == 0 && x->rate_slot == 0 && x->uploaded == 0 && x->peers == 0) {
        hk_mem_free(tt->mem, x, sizeof *x);
        t->ext = NULL;
    }
}

size_t hk_tt_ext_bytes(const hk_torrent *t)
{
    if (!t->ext)
        return 0;
    return sizeof *t->ext + (t->ext->files ? files_bytes_of(t->ext->nfiles, t->v2) : 0);
}

int hk_tt_peer_attach(hk_torrent_table *tt, hk_torrent *t)
{
    hk_torrent_ext *x = hk_tt_ext(tt, t);
    if (!x)
        return -1;
    assert(x->peers < UINT32_MAX);
    x->peers++;
    return 0;
}

void hk_tt_peer_detach(hk_torrent_table *tt, hk_torrent *t)
{
    assert(t->ext && t->ext->peers > 0);
    if (!t->ext || t->ext->peers == 0)
        return;
    t->ext->peers--;
    hk_tt_ext_trim(tt, t);
}

int hk_tt_pieces_set(hk_torrent_table *tt, hk_torrent *t, uint32_t i, bool good)
{
    hk_pieces *ps = hk_torrent_pieces(t);
    bool all_good = t->all_good;
    if (hk_pieces_set(tt->mem, &ps, &all_good, hk_torrent_piece_count(t), i, good) != 0)
        return -1;
    if (ps && !t->ext && !hk_tt_ext(tt, t)) {
        hk_pieces_free(tt->mem, &ps); /* the block was new (there was no side block to hold one): undone */
        return -1;
    }
    t->all_good = all_good;
    if (t->ext) {
        t->ext->pieces = ps;
        hk_tt_ext_trim(tt, t);
    }
    return 0;
}

void hk_tt_pieces_free(hk_torrent_table *tt, hk_torrent *t)
{
    if (!t->ext)
        return;
    hk_pieces_free(tt->mem, &t->ext->pieces);
    hk_tt_ext_trim(tt, t);
}

/* The side block and what it holds, freed (a record being removed). */
static void ext_free(hk_torrent_table *tt, hk_torrent *t)
{
    hk_torrent_ext *x = t->ext;
    if (!x)
        return;
    if (x->files)
        hk_mem_free(tt->mem, x->files, files_bytes_of(x->nfiles, t->v2));
    hk_pieces_free(tt->mem, &x->pieces);
    hk_mem_free(tt->mem, x, sizeof *x);
    t->ext = NULL;
}

void hk_tt_init(hk_torrent_table *tt, hk_mem *mem)
{
    memset(tt, 0, sizeof *tt);
    tt->mem = mem;
    hk_sa_init(&tt->recs, mem, sizeof(hk_torrent), HK_TT_SLAB_BITS);
    hk_ih_init(&tt->index, mem, TT_MIN_SLOTS, true, record_key, tt);
    hk_skey_init(&tt->skey, mem, record_key, record_skey_mix, tt);
}

void hk_tt_free(hk_torrent_table *tt)
{
    for (uint32_t r = hk_tt_next(tt, HK_TT_NONE); r != HK_TT_NONE; r = hk_tt_next(tt, r))
        ext_free(tt, hk_tt_get(tt, r));
    hk_sa_free(&tt->recs);
    hk_ih_free(&tt->index);
    hk_skey_free(&tt->skey);
    hk_mem_free(tt->mem, tt->arena, tt->arena_cap);
    hk_mem *mem = tt->mem;
    hk_tt_init(tt, mem);
}

/* ---- lookup ---- */

uint32_t hk_tt_find(const hk_torrent_table *tt, const uint8_t info_hash[20])
{
    return hk_ih_find(&tt->index, info_hash);
}

uint32_t hk_tt_find_skey(hk_torrent_table *tt, const uint8_t req2[20])
{
    return hk_skey_find(&tt->skey, req2);
}

uint32_t hk_tt_next(const hk_torrent_table *tt, uint32_t after)
{
    /* i < HK_TT_MAX_REC in the loop (a slab allocated holds a record number below it): no wrap */
    for (uint32_t i = hk_sa_next_allocated(&tt->recs, after == HK_TT_NONE ? 0 : after + 1); i != UINT32_MAX;
         i = hk_sa_next_allocated(&tt->recs, i + 1)) {
        const hk_torrent *t = hk_sa_at_fixed(&tt->recs, i, HK_TT_SLAB_BITS, sizeof(hk_torrent));
        if (t->state != HK_TORRENT_FREE)
            return i;
    }
    return HK_TT_NONE;
}

/* ---- names ---- */

static void arena_compact(hk_torrent_table *tt)
{
    uint32_t live = tt->arena_len - tt->arena_garbage;
    char *n = live ? hk_mem_alloc(tt->mem, live) : NULL;
    if (live && !n)
        return; /* keep the garbage; compaction is an optimisation */
    uint32_t at = 0;
    for (uint32_t r = hk_tt_next(tt, HK_TT_NONE); r != HK_TT_NONE; r = hk_tt_next(tt, r)) {
        hk_torrent *t = hk_tt_get(tt, r);
        memcpy(n + at, tt->arena + t->name_off, t->name_len);
        t->name_off = at;
        at += t->name_len;
    }
    assert(at == live);
    hk_mem_free(tt->mem, tt->arena, tt->arena_cap);
    tt->arena = n;
    tt->arena_len = tt->arena_cap = at;
    tt->arena_garbage = 0;
}

static bool arena_add(hk_torrent_table *tt, const char *s, uint32_t len, uint32_t *off)
{
    if (len > UINT32_MAX - tt->arena_len)
        return false;
    if (tt->arena_len + len > tt->arena_cap) {
        /* By a quarter, not doubling (issue 10: 10^6 names of 12 bytes took 16.8 B per torrent in a doubled arena);
         * still geometric, so the copies stay linear overall. */
        uint64_t ncap = tt->arena_cap >= 256 ? tt->arena_cap + tt->arena_cap / 4 : 256;
        while (ncap < (uint64_t)tt->arena_len + len)
            ncap += ncap / 4;
        if (ncap > UINT32_MAX)
            ncap = UINT32_MAX;
        char *n = hk_mem_realloc(tt->mem, tt->arena, tt->arena_cap, (size_t)ncap);
        if (!n)
            return false;
        tt->arena = n;
        tt->arena_cap = (uint32_t)ncap;
    }
    *off = tt->arena_len;
    if (len)
        memcpy(tt->arena + tt->arena_len, s, len);
    tt->arena_len += len;
    return true;
}

const char *hk_tt_name(const hk_torrent_table *tt, const hk_torrent *t, uint32_t *len)
{
    *len = t->name_len;
    return t->name_len ? tt->arena + t->name_off : "";
}

/* ---- insert / remove ---- */

const char *hk_tt_desc_check(const hk_torrent_desc *d)
{
    if (d->piece_length == 0)
        return "piece length is 0";
    if (d->piece_count == 0 || d->total_length == 0)
        return "torrent has no data";
    uint64_t pieces = d->total_length / d->piece_length + (d->total_length % d->piece_length != 0);
    if (pieces != d->piece_count)
        return "piece count does not match total length / piece length";
    if (d->name_len > TT_MAX_NAME)
        return "name longer than 4096 bytes";
    if (d->info_start > UINT32_MAX)
        return "info dictionary beyond 4 GiB into the .torrent";
    if (d->nfiles == 0 || d->nfiles > (1u << 31) || !d->files)
        return "file count out of range";
    uint64_t sum = 0;
    for (uint32_t i = 0; i < d->nfiles; i++) {
        if (d->files[i].length >= HK_FILE_PAD_FLAG || d->files[i].length > UINT64_MAX - sum)
            return "file lengths overflow";
        sum += d->files[i].length;
    }
    if (sum != d->total_length)
        return "file lengths do not sum to the total length";
    return NULL;
}

/* Record r (in use) becomes FREE; its slab is freed when no record of it is left in use (the container's live
 * count). */
static void free_record(hk_torrent_table *tt, uint32_t r)
{
    memset(hk_sa_at_fixed(&tt->recs, r, HK_TT_SLAB_BITS, sizeof(hk_torrent)), 0, sizeof(hk_torrent)); /* FREE */
    (void)hk_sa_dec(&tt->recs, r);
}

/* Fills record t (number r, just allocated) from d, with its side block ext (NULL, or holding its file entries
 * `files`, to be filled) and its name at name_off in the arena; it counts as in use in its slab. */
static void fill_record(hk_torrent_table *tt, uint32_t r, hk_torrent *t, const hk_torrent_desc *d,
                        hk_torrent_ext *ext, hk_file_entry *files, uint32_t name_off)
{
    uint64_t off = 0;
    for (uint32_t i = 0; files && i < d->nfiles; i++) {
        files[i].offset = off;
        files[i].length_flags = d->files[i].length | (d->files[i].pad ? HK_FILE_PAD_FLAG : 0);
        off += d->files[i].length;
    }
    if (files && d->v2_hashes)
        memcpy(files + d->nfiles, d->v2_hashes, (size_t)d->nfiles * sizeof *d->v2_hashes);
    hk_sa_inc(&tt->recs, r);
    memset(t, 0, sizeof *t);
    t->v2 = files && d->v2_hashes;
    memcpy(t->info_hash, d->info_hash, 20);
    t->state = HK_TORRENT_ACTIVE;
    t->gen = (uint32_t)(d->storage >> 32);
    t->piece_length = d->piece_length;
    t->name_off = name_off;
    t->name_len = (uint32_t)d->name_len;
    t->info_start = (uint32_t)d->info_start;
    t->info_len = d->info_len;
    t->total_length = d->total_length;
    t->skey_mix = hk_skey_mix(d->info_hash);
    if (ext)
        *ext = (hk_torrent_ext){.files = files, .nfiles = d->nfiles};
    t->ext = ext;
    t->pieces_rel = d->pieces_offset > d->info_start && d->pieces_offset - d->info_start < d->info_len
                        ? (uint32_t)(d->pieces_offset - d->info_start)
                        : 0; /* 0: not known (a table built without a .torrent) */
    t->all_good = true; /* the seeder makes it unknown when it verifies */
}

hk_tt_result hk_tt_insert(hk_torrent_table *tt, const hk_torrent_desc *d, uint32_t *rec_out)
{
    if (hk_tt_desc_check(d))
        return HK_TT_INVALID;
    if (hk_tt_find(tt, d->info_hash) != HK_TT_NONE)
        return HK_TT_DUPLICATE;
    uint32_t r = (uint32_t)d->storage;
    if (r >= HK_TT_MAX_REC || (d->storage >> 32) > HK_TT_MAX_GEN || hk_tt_get(tt, r) != NULL)
        return HK_TT_INVALID; /* the owner's number is out of range or taken */
    size_t files_bytes = inline_file(d) ? 0 : files_bytes_of(d->nfiles, d->v2_hashes != NULL);
    hk_file_entry *files = files_bytes ? hk_mem_alloc(tt->mem, files_bytes) : NULL;
    hk_torrent_ext *ext = files ? hk_mem_alloc(tt->mem, sizeof *ext) : NULL; /* the files need the side block */
    if (files_bytes && !ext) {
        hk_mem_free(tt->mem, files, files_bytes);
        return HK_TT_NOMEM;
    }
    uint32_t name_off = 0;
    if (!arena_add(tt, d->name, (uint32_t)d->name_len, &name_off)) {
        hk_mem_free(tt->mem, ext, sizeof *ext);
        hk_mem_free(tt->mem, files, files_bytes);
        return HK_TT_NOMEM;
    }
    hk_torrent *t = hk_sa_ensure(&tt->recs, r); /* FREE: its slab allocated zeroed if it had none */
    if (t) {
        fill_record(tt, r, t, d, ext, files, name_off);
        if (hk_ih_insert(&tt->index, r) == 0) {
            if (hk_skey_insert(&tt->skey, r) == 0) {
                if (rec_out)
                    *rec_out = r;
                return HK_TT_OK;
            }
            (void)hk_ih_remove(&tt->index, d->info_hash);
        }
        free_record(tt, r); /* the index could not grow */
    }
    assert(tt->arena_len >= d->name_len && name_off == tt->arena_len - d->name_len);
    tt->arena_len -= (uint32_t)d->name_len; /* the name was the last one added */
    hk_mem_free(tt->mem, ext, sizeof *ext);
    hk_mem_free(tt->mem, files, files_bytes);
    return HK_TT_NOMEM;
}

bool hk_tt_remove(hk_torrent_table *tt, const uint8_t info_hash[20])
{
    uint32_t r = hk_ih_remove(&tt->index, info_hash); /* shrinks the index below 1/8 full */
    if (r == HK_IH_NONE)
        return false;
    hk_skey_remove(&tt->skey, info_hash);
    hk_torrent *t = hk_tt_get(tt, r);
    assert(t);
    ext_free(tt, t);
    tt->arena_garbage += t->name_len;
    free_record(tt, r);
    if (tt->arena_garbage > TT_ARENA_MIN_COMPACT && tt->arena_garbage * 2 > tt->arena_len)
        arena_compact(tt);
    return true;
}

/* ---- geometry ---- */

/* No division: index is in range iff its first byte index * piece_length (< 2^64) is below total_length. */
uint32_t hk_torrent_piece_size(const hk_torrent *t, uint32_t index)
{
    uint64_t start = (uint64_t)index * t->piece_length;
    if (start >= t->total_length)
        return 0;
    uint64_t left = t->total_length - start;
    return left < t->piece_length ? (uint32_t)left : t->piece_length; /* the last piece: what is left */
}

hk_block_check hk_torrent_check_block(const hk_torrent *t, uint32_t index, uint32_t begin, uint32_t length,
                                      uint32_t max_block)
{
    uint32_t size = hk_torrent_piece_size(t, index); /* 0: index >= the piece count (every piece has a byte) */
    if (size == 0)
        return HK_BLOCK_BAD_INDEX;
    if (length == 0 || length > max_block)
        return HK_BLOCK_BAD_LENGTH;
    if ((uint64_t)begin + length > size)
        return HK_BLOCK_BAD_RANGE;
    return HK_BLOCK_OK;
}

const char *hk_block_check_name(hk_block_check c)
{
    static const char *const names[] = {
        [HK_BLOCK_OK] = "ok", [HK_BLOCK_BAD_INDEX] = "piece index out of range",
        [HK_BLOCK_BAD_LENGTH] = "block length out of range",
        [HK_BLOCK_BAD_RANGE] = "block extends past the end of its piece",
    };
    return HK_NAME_OF(names, c);
}

bool hk_span_iter_init(hk_span_iter *it, const hk_torrent *t, uint64_t pos, uint32_t len)
{
    it->t = t;
    it->pos = it->end = pos;
    it->file = 0;
    if (len == 0 || pos >= t->total_length || len > t->total_length - pos)
        return false;
    it->end = pos + len;
    /* Last file whose offset is <= pos: it holds pos (files are contiguous; an empty file shares its offset with
     * the next one, so the last such file is never empty). */
    uint32_t lo = 0, hi = hk_torrent_nfiles(t); /* invariant: files[lo].offset <= pos, answer in [lo, hi) */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (hk_torrent_file(t, mid).offset <= pos)
            lo = mid;
        else
            hi = mid;
    }
    it->file = lo;
    return true;
}

bool hk_span_next(hk_span_iter *it, hk_span *out)
{
    const hk_torrent *t = it->t;
    uint32_t nfiles = hk_torrent_nfiles(t);
    while (it->pos < it->end && it->file < nfiles) {
        hk_file_entry fe = hk_torrent_file(t, it->file);
        const hk_file_entry *f = &fe;
        uint64_t flen = hk_file_length(f);
        if (flen == 0 || it->pos >= f->offset + flen) {
            it->file++;
            continue;
        }
        uint64_t in_file = it->pos - f->offset;
        uint64_t n = flen - in_file;
        if (n > it->end - it->pos)
            n = it->end - it->pos;
        out->file = it->file;
        out->offset = in_file;
        out->length = (uint32_t)n;
        out->pad = hk_file_is_pad(f);
        it->pos += n;
        it->file++;
        return true;
    }
    return false;
}
