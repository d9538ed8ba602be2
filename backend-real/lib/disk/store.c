/* store: the public face of the store (contract in store.h; its layers in store_internal.h).
 *
 * Owns creation and destruction of the store, storages (hk_store_add validates one torrent's files and keeps a
 * compact record of them; remove; failure; which of them have their .torrent open), the handle table (the storages
 * themselves, in slabs; generations, so stale handles never resolve), the shared folders, the last error message and
 * the statistics. Mapping, residency and the caches are in store_map.c,
 * store_resident.c and store_cache.c; path walking is in store_path.c.
 */
#include "store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_internal.h"
#include "store_path.h"

void st_set_err(hk_store *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->err, sizeof st->err, fmt, ap);
    va_end(ap);
}

void *st_grow(void *arr, uint32_t *cap, uint32_t initial, size_t elem)
{
    uint32_t ncap = *cap ? *cap * 2 : initial;
    if (ncap <= *cap || ncap >= NONE - 1)
        return NULL;
    void *n = realloc(arr, (size_t)ncap * elem);
    if (n != NULL)
        *cap = ncap;
    return n;
}

void hk_store_limits_default(hk_store_limits *lim)
{
    lim->max_mapped_bytes = 16ull << 30;
    lim->max_open_files = 1024;
    lim->resident_keep_ms = 10;
}

int hk_store_limits_check(const hk_store_limits *lim, char *err, size_t errlen)
{
    if (lim->max_open_files <= HK_STORE_MAX_OPEN_FILES)
        return 0;
    snprintf(err, errlen, "max_open_files %u is above the store's cap, %u", lim->max_open_files,
             HK_STORE_MAX_OPEN_FILES);
    return -1;
}

hk_store *hk_store_new(const hk_store_limits *lim)
{
    char why[96];
    if (lim != NULL && hk_store_limits_check(lim, why, sizeof why) != 0) {
        errno = EINVAL;
        return NULL;
    }
    hk_store *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    if (lim != NULL)
        st->lim = *lim;
    else
        hk_store_limits_default(&st->lim);
    st->free_tab = NONE;
    hk_sa_init(&st->tab, &st->tab_mem, sizeof(st_storage), ST_SLAB_BITS);
    st->last_root = -1;
    hk_list_init(&st->free_slots);
    hk_list_init(&st->lru);
    return st;
}

/* ---- handles ---- */

st_storage *st_lookup(const hk_store *st, uint64_t handle, bool include_removed, uint32_t *sidx)
{
    uint32_t i = (uint32_t)handle;
    uint64_t gen = handle >> 32;
    if (i >= st->ntab || gen == 0)
        return NULL;
    st_storage *s = st_at(st, i);
    if ((s->flags & ST_FREE) || s->gen != gen || ((s->flags & ST_REMOVED) && !include_removed))
        return NULL;
    if (sidx != NULL)
        *sidx = i;
    return s;
}

uint32_t st_file_index(const st_storage *s, uint32_t ext_file)
{
    return ext_file == HK_FILE_METAINFO ? s->nfiles : ext_file;
}

/* The .torrent's name (which HK_STORE_NAME_TORRENT_FILE) or the torrent's name of s, buf as scratch; "" if unknown. */
static const char *storage_name(const hk_store *st, uint32_t sidx, const st_storage *s, int which,
                                char buf[NAME_MAX + 1])
{
    const char *names = st_names(s), *n = NULL;
    if (s->flags & ST_OWN_NAMES)
        n = which == HK_STORE_NAME_TORRENT_FILE ? names : names + strlen(names) + 1;
    else if (s == st->adding)
        n = which == HK_STORE_NAME_TORRENT_FILE ? st->adding_base : st->adding_name;
    else if (st->namer != NULL && sidx != NONE) {
        n = st->namer(st->namer_ctx, st_handle(st, sidx), which, buf, NAME_MAX + 1);
    }
    return n != NULL ? n : "";
}

void st_file_rel(const hk_store *st, uint32_t sidx, const st_storage *s, uint32_t f, char *buf, size_t cap)
{
    char nbuf[NAME_MAX + 1];
    if (f == s->nfiles) {
        const char *ext = (s->flags & ST_TORRENT_EXT) ? TORRENT_EXT : "";
        snprintf(buf, cap, "%s%s", storage_name(st, sidx, s, HK_STORE_NAME_TORRENT_FILE, nbuf), ext);
    } else if (s->flags & ST_MULTI_FILE) {
        const char *name = storage_name(st, sidx, s, HK_STORE_NAME_TORRENT, nbuf);
        snprintf(buf, cap, "%s/%s", name, st_names(s) + s->apart->files[f].path);
    } else {
        snprintf(buf, cap, "%s", storage_name(st, sidx, s, HK_STORE_NAME_TORRENT, nbuf));
    }
}

void hk_store_set_namer(hk_store *st, hk_store_namer fn, void *ctx)
{
    st->namer = fn;
    st->namer_ctx = ctx;
}

int st_resolve(hk_store *st, const hk_extent *ext, uint32_t *sidx, st_storage **sp, uint32_t *fp)
{
    st_storage *s = st_lookup(st, ext->storage, false, sidx);
    if (s == NULL) {
        st_set_err(st, "storage %llu: unknown", (unsigned long long)ext->storage);
        errno = EINVAL;
        return -1;
    }
    uint32_t f = st_file_index(s, ext->file);
    if (f > s->nfiles || (f == s->nfiles && ext->file != HK_FILE_METAINFO)) {
        st_set_err(st, "storage %llu: no file %u", (unsigned long long)ext->storage, ext->file);
        errno = EINVAL;
        return -1;
    }
    uint64_t len = st_flen(s, f);
    if (ext->length == 0 || ext->offset > len || ext->length > len - ext->offset) {
        st_set_err(st, "storage %llu file %u: extent [%llu, +%u) outside its %llu bytes",
                   (unsigned long long)ext->storage, ext->file, (unsigned long long)ext->offset, ext->length,
                   (unsigned long long)len);
        errno = EINVAL;
        return -1;
    }
    *sp = s;
    *fp = f;
    return 0;
}

int st_failed_error(hk_store *st, const st_storage *s)
{
    st_set_err(st, "%s", (s->flags & ST_FAILED) && s->why ? s->why : "storage failed");
    errno = EIO;
    return -1;
}

static void folder_unref(hk_store *st, st_folder *fo)
{
    assert(fo->refs > 0);
    if (--fo->refs == 0) {
        if (st->last_folder == fo) {
            st->last_folder = NULL;
            st_folder_cache_drop(st);
        }
        if (st->last_data == fo)
            st->last_data = NULL;
        if (fo->meta != NULL)
            folder_unref(st, fo->meta);
        free(fo);
    }
}

/* The storage's fields but its generation, cleared (a free entry, or one about to be filled). */
static void entry_clear(st_storage *s)
{
    uint16_t gen = s->gen;
    memset(s, 0, sizeof *s);
    s->gen = gen;
}

/* Frees what a storage holds beside its entry: its files apart (the entry itself is not touched). */
static void storage_release(st_storage *s)
{
    if (s->flags & ST_FILES_APART)
        free(s->apart);
}

void st_storage_free(hk_store *st, uint32_t sidx)
{
    st_storage *s = st_at(st, sidx);
    assert(sidx < st->ntab && !(s->flags & ST_FREE) && s->folder != NULL);
    folder_unref(st, s->folder);
    if (s->flags & ST_FAILED)
        free(s->why);
    if (s->flags & ST_MODIFIED)
        st->modified--;
    storage_release(s);
    entry_clear(s);
    s->flags = ST_FREE;
    s->next_free = st->free_tab;
    s->gen = s->gen < HK_STORE_MAX_GEN ? (uint16_t)(s->gen + 1) : 1; /* no earlier handle of sidx resolves now */
    st->free_tab = sidx;
}

/* A table index for a new storage: the last one freed, else the next one (a new slab every ST_SLAB). Its entry is
 * ST_FREE with its generation (1 for a new index); NONE if out of memory or past HK_STORE_MAX_INDEX. */
static uint32_t table_alloc(hk_store *st)
{
    if (st->free_tab != NONE) {
        uint32_t i = st->free_tab;
        st->free_tab = st_at(st, i)->next_free;
        return i;
    }
    if (st->ntab >= HK_STORE_MAX_INDEX)
        return NONE;
    st_storage *s = hk_sa_ensure(&st->tab, st->ntab); /* a new slab (zeroed) every ST_SLAB */
    if (s == NULL)
        return NONE;
    s->flags = ST_FREE;
    s->next_free = NONE;
    s->gen = 1;
    return st->ntab++;
}

/* ---- adding a storage ---- */

static void roots_resolve(hk_store *st);

/* The served folder (hk_store_set_links) that real (an absolute path from realpath) lies in: the longest one; -1 if
 * none. */
static long root_of(const hk_store *st, const char *real)
{
    long best = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < st->nroots; i++) {
        if (st->roots[i] == NULL)
            continue;
        size_t n = strlen(st->roots[i]);
        size_t cmp = strcmp(st->roots[i], "/") == 0 ? 0 : n;
        if (strncmp(real, st->roots[i], cmp) == 0 && (real[cmp] == '/' || real[cmp] == '\0') &&
            (best < 0 || n > best_len)) {
            best = (long)i;
            best_len = n;
        }
    }
    return best;
}

void st_folder_cache_drop(hk_store *st)
{
    if (st->last_root >= 0)
        close(st->last_root);
    st->last_root = -1;
    free(st->last_dir);
    st->last_dir = NULL;
}

/* With batching: dir (spelled so), resolved to last_folder, is reused by the adds of this epoch; root becomes the
 * cache's own descriptor of it (a duplicate is handed to each add). */
static void folder_cache_set(hk_store *st, const char *dir, int root)
{
    st_folder_cache_drop(st);
    if (root < 0)
        return; /* no descriptor to keep: nothing cached */
    st->last_dir = strdup(dir);
    if (st->last_dir == NULL) { /* out of memory: nothing cached */
        close(root);
        return;
    }
    st->last_root = root;
    st->last_epoch = st->epoch;
}

/* The folder record of dir (resolved with realpath) for a .torrent's folder (meta NULL) or a data dir holding the
 * data of a .torrent in folder meta (the record then holds a reference on meta), shared with the previous storage's
 * if it is the same; *root is a new descriptor of it (the caller closes it), opened without following any link (the
 * path realpath gave has none) and whose identity the record keeps; or, when borrowed is not NULL and the batching
 * cache below answers, the cache's own descriptor, *borrowed set: the caller must not close it, and it stays valid
 * until the next folder_get of a .torrent folder. NULL with err filled if it cannot be resolved.
 * With batching, within one loop iteration, a .torrent folder spelled as the previous add's reuses its resolution
 * and its descriptor (a warm start or a scan adds a folder's torrents one after the other: realpath
 * costs a readlink per component, the confined open three system calls); a folder swapped meanwhile is found at the
 * next map or check, as one swapped just after its add. */
static st_folder *folder_get(hk_store *st, const char *dir, st_folder *meta, int *root, bool *borrowed, char *err,
                             size_t errlen)
{
    if (borrowed != NULL)
        *borrowed = false;
    if (meta == NULL && st->batching && st->last_folder && st->last_dir && st->last_root >= 0 &&
        st->last_epoch == st->epoch && strcmp(st->last_dir, dir) == 0) {
        *root = borrowed != NULL ? st->last_root : fcntl(st->last_root, F_DUPFD_CLOEXEC, 0);
        if (*root >= 0) {
            if (borrowed != NULL)
                *borrowed = true;
            st->last_folder->refs++;
            return st->last_folder;
        }
    }
    char *real = realpath(dir, NULL);
    if (real == NULL) {
        snprintf(err, errlen, "%s: %s", dir, errno == ENOENT ? "missing" : strerror(errno));
        return NULL;
    }
    long r = st->nroots ? root_of(st, real) : -1;
    if (st->nroots && r < 0) { /* a served folder missing when set may exist now */
        roots_resolve(st);
        r = root_of(st, real);
    }
    if (st->nroots && r < 0) { /* nothing outside the served folders, whatever links led here */
        snprintf(err, errlen, "%s: %s is outside the served folders", dir, real);
        free(real);
        return NULL;
    }
    sp_id id;
    if (sp_open_folder(real, NULL, root, &id, err, errlen) != SP_OK) {
        free(real);
        return NULL;
    }
    st_folder **cache = meta ? &st->last_data : &st->last_folder;
    st_folder *last = *cache;
    if (last != NULL && last->meta == meta && strcmp(last->path, real) == 0 && last->id.dev == id.dev &&
        last->id.ino == id.ino) {
        free(real);
        last->refs++;
        if (st->batching && meta == NULL)
            folder_cache_set(st, dir, fcntl(*root, F_DUPFD_CLOEXEC, 0));
        return last;
    }
    size_t n = strlen(real);
    st_folder *fo = malloc(sizeof *fo + n + 1);
    if (fo == NULL) {
        free(real);
        close(*root);
        snprintf(err, errlen, "%s: out of memory", dir);
        return NULL;
    }
    fo->refs = 1;
    fo->id = id;
    fo->meta = meta;
    fo->root_len = r < 0 ? 0 : (uint32_t)strlen(st->roots[r]);
    fo->root_id = r < 0 ? (sp_id){ 0, 0 } : st->root_ids[r];
    if (meta != NULL)
        meta->refs++;
    memcpy(fo->path, real, n + 1);
    free(real);
    *cache = fo;
    if (meta == NULL) {
        st_folder_cache_drop(st);
        if (st->batching)
            folder_cache_set(st, dir, fcntl(*root, F_DUPFD_CLOEXEC, 0));
    }
    return fo;
}

/* The folder holding the .torrent file (slash: its last '/', or NULL) and a descriptor of it in *root, as
 * folder_get. NULL with err filled if it cannot be resolved. */
static st_folder *torrent_folder(hk_store *st, const char *torrent_path, const char *slash, int *root,
                                 bool *borrowed, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == torrent_path)
        snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - torrent_path) >= sizeof dir) {
        snprintf(err, errlen, "%s: path too long", torrent_path);
        return NULL;
    } else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - torrent_path), torrent_path);
    return folder_get(st, dir, NULL, root, borrowed, err, errlen);
}

/* true if `name` is an entry of the directory root (whatever it is: a link there is found, and refused later). */
static bool has_entry(int root, const char *name)
{
    struct stat sb;
    return fstatat(root, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT;
}

/* Where the data of a torrent named `name` whose .torrent is in folder meta (descriptor *root) lies: beside it if
 * meta has an entry of that name, else in the first data dir that has one (then *root is replaced by that dir's
 * descriptor). The folder record (meta itself, or a data dir's record holding a reference on meta), or NULL with err
 * filled: the data is in none of them. The descriptor *root had is left open (the caller's). */
static st_folder *data_folder(hk_store *st, st_folder *meta, int *root, const char *name, char *err, size_t errlen)
{
    if (st->ndata_dirs == 0 || has_entry(*root, name))
        return meta;
    for (size_t i = 0; i < st->ndata_dirs; i++) {
        int droot;
        char derr[PATH_BUF + 64];
        st_folder *fo = folder_get(st, st->data_dirs[i], meta, &droot, NULL, derr, sizeof derr);
        if (fo == NULL)
            continue; /* a data dir that cannot be opened now holds nothing (the daemon warned at start-up) */
        if (has_entry(droot, name)) {
            folder_unref(st, meta); /* fo holds its own reference */
            *root = droot;          /* the caller still holds (and closes) the .torrent folder's descriptor */
            return fo;
        }
        close(droot);
        folder_unref(st, fo);
    }
    snprintf(err, errlen, "%s/%s: missing (and in no --data-dir: %zu searched)", meta->path, name, st->ndata_dirs);
    return NULL;
}

/* Checks the .torrent file itself (below the folder's descriptor root): it must hold the info dictionary. Records
 * its size. */
static int verify_metainfo(const hk_store *st, st_storage *s, int root, const mi_torrent *mi, char *err,
                           size_t errlen)
{
    char rel[PATH_BUF];
    struct stat sb;
    st_file_rel(st, NONE, s, s->nfiles, rel, sizeof rel);
    const char *folder = st_folder_of(s, s->nfiles)->path;
    if (sp_lstat(root, folder, rel, NULL, &sb, err, errlen) != SP_OK)
        return -1;
    if (sb.st_size < 0 || (uint64_t)sb.st_size < mi->info_end) {
        snprintf(err, errlen, "%s/%s: %lld bytes, shorter than its info dictionary's end %zu", folder, rel,
                 (long long)sb.st_size, mi->info_end);
        return -1;
    }
    if ((uint64_t)sb.st_size > UINT32_MAX) {
        snprintf(err, errlen, "%s/%s: %lld bytes: a .torrent file of 4 GiB or more", folder, rel,
                 (long long)sb.st_size);
        return -1;
    }
    s->meta_len = (uint32_t)sb.st_size;
    return 0;
}

/* The lstat of data file rel of s below root (its folder's descriptor, the cache keeping the last parent open); with
 * --follow-links, resolved beneath the folder's served root instead (sp_open_beneath). */
static sp_status data_lstat(const hk_store *st, const st_storage *s, int root, const char *rel, sp_cache *cache,
                            struct stat *sb, char *err, size_t errlen)
{
    char rbuf[PATH_BUF];
    sp_beneath b;
    if (st_beneath(st, s->folder, rbuf, &b))
        return sp_open_beneath(&b, rel, NULL, sb, err, errlen);
    return sp_lstat(root, s->folder->path, rel, cache, sb, err, errlen);
}

/* Checks every file of s on disk: the .torrent below meta_root (its folder's descriptor), the data below root (its
 * data folder's; symbolic links refused, or followed beneath the served root with --follow-links; sizes exact). 0,
 * or -1 with err filled. */
static int storage_verify(const hk_store *st, st_storage *s, int meta_root, int root, const mi_torrent *mi, char *err,
                          size_t errlen)
{
    sp_cache cache;
    sp_cache_init(&cache);
    char rel[PATH_BUF];
    struct stat sb;
    int rc = verify_metainfo(st, s, meta_root, mi, err, errlen);
    for (uint32_t f = 0; rc == 0 && f < s->nfiles; f++) {
        uint64_t length = st_flen(s, f);
        if (st_fslot(s, f) == SLOT_PAD || length == 0)
            continue; /* no bytes on disk to serve */
        st_file_rel(st, NONE, s, f, rel, sizeof rel);
        if (data_lstat(st, s, root, rel, &cache, &sb, err, errlen) != SP_OK) {
            rc = -1;
        } else if (sb.st_size < 0 || (uint64_t)sb.st_size != length) {
            snprintf(err, errlen, "%s/%s: size %lld but the torrent says %llu", s->folder->path, rel,
                     (long long)sb.st_size, (unsigned long long)length);
            rc = -1;
        } else if (st_stat_mtime_ns(&sb) > s->stamp_ns) {
            s->stamp_ns = st_stat_mtime_ns(&sb); /* a data file changed later than this: hk_store_take_modified */
        }
    }
    sp_cache_clear(&cache);
    return rc;
}

/* true for a file whose path is stored: the data files of a multi-file torrent, pad files excepted. */
static bool has_path(const mi_torrent *mi, uint32_t f)
{
    return mi->multi_file && !(mi->files[f].flags & MI_FILE_PAD);
}

/* The bytes of the .torrent's name a storage keeps: without its ".torrent" suffix, which ST_TORRENT_EXT implies. */
static size_t kept_base_len(const char *base)
{
    size_t n = strlen(base), e = sizeof TORRENT_EXT - 1;
    return n > e && memcmp(base + n - e, TORRENT_EXT, e) == 0 ? n - e : n;
}

/* Checks the names of a storage and returns the bytes of those its record will hold (own: the .torrent name and the
 * torrent name, then in any case one path per data file of a multi-file torrent), or UINT64_MAX with err filled if a
 * name is unsafe or the record would be too large. */
static uint64_t names_bytes(const char *torrent_path, const char *base, const mi_torrent *mi, bool own, char *err,
                            size_t errlen)
{
    if (!sp_component_ok(base, strlen(base))) {
        snprintf(err, errlen, "%s: not a file name", torrent_path);
        return UINT64_MAX;
    }
    if (!sp_component_ok(mi->name, strlen(mi->name)) || strlen(mi->name) != mi->name_len) {
        snprintf(err, errlen, "%s: torrent name is not a safe file name", torrent_path);
        return UINT64_MAX;
    }
    size_t base_len = kept_base_len(base);
    uint64_t names = own ? (uint64_t)base_len + 1 + mi->name_len + 1 : 0;
    for (uint32_t f = 0; f < mi->file_count; f++) {
        if (!has_path(mi, f))
            continue;
        const char *path = mi_file_path(mi, f);
        if (!sp_relpath_ok(path)) {
            snprintf(err, errlen, "%s: file %u has an unsafe path", torrent_path, f);
            return UINT64_MAX;
        }
        names += strlen(path) + 1;
    }
    if (names >= UINT32_MAX || mi->file_count >= NONE - 1) {
        snprintf(err, errlen, "%s: too many files or names", torrent_path);
        return UINT64_MAX;
    }
    return names;
}

/* Copies s into names at *at and advances *at past it and its terminator. */
static void put_name(char *names, size_t *at, const char *s, size_t len)
{
    memcpy(names + *at, s, len);
    names[*at + len] = '\0';
    *at += len + 1;
}

/* Fills s (cleared; its folder not yet set) with the storage of mi, with names_len bytes of names (own: the
 * .torrent's and the torrent's names first, ST_OWN_NAMES): the single file of a storage without names inline, the
 * others' files and names in one allocation (ST_FILES_APART; a file too long for the inline entry as well). -1 if
 * out of memory. */
static int storage_build(st_storage *s, const char *base, const mi_torrent *mi, uint64_t names_len, bool own)
{
    s->nfiles = mi->file_count;
    s->flags = mi->multi_file ? ST_MULTI_FILE : 0;
    char *nm = NULL;
    if (mi->file_count != 1 || names_len != 0 || mi->multi_file || mi->files[0].length > ST_INLINE_LEN_MASK) {
        st_apart *a = calloc(1, sizeof *a + (size_t)mi->file_count * sizeof(st_file) + (size_t)names_len);
        if (a == NULL)
            return -1;
        s->flags |= ST_FILES_APART;
        s->apart = a;
        a->names_len = (uint32_t)names_len;
        nm = (char *)(a->files + mi->file_count);
    } else {
        s->one = mi->files[0].length; /* fits ST_INLINE_BITS (tested above) */
    }
    size_t at = 0;
    if (own) {
        size_t base_len = kept_base_len(base);
        s->flags |= ST_OWN_NAMES | (base_len < strlen(base) ? ST_TORRENT_EXT : 0);
        put_name(nm, &at, base, base_len);
        put_name(nm, &at, mi->name, mi->name_len);
    }
    for (uint32_t f = 0; f < mi->file_count; f++) {
        if (s->flags & ST_FILES_APART)
            s->apart->files[f] = (st_file){ .length = mi->files[f].length };
        st_set_fslot(s, f, (mi->files[f].flags & MI_FILE_PAD) ? SLOT_PAD : NONE);
        if (!has_path(mi, f))
            continue;
        assert(s->flags & ST_FILES_APART); /* a path is a name kept */
        const char *path = mi_file_path(mi, f);
        s->apart->files[f].path = (uint32_t)at;
        put_name(nm, &at, path, strlen(path));
    }
    assert(at == names_len);
    st_set_fslot(s, s->nfiles, NONE);
    return 0;
}

uint64_t hk_store_add(hk_store *st, const char *torrent_path, const mi_torrent *mi, char *err, size_t errlen)
{
    char dummy[8];
    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (torrent_path == NULL || mi == NULL || mi->file_count == 0 || mi->info_start >= mi->info_end) {
        snprintf(err, errlen, "invalid arguments");
        return 0;
    }
    const char *slash = strrchr(torrent_path, '/');
    const char *base = slash ? slash + 1 : torrent_path;
    bool own = st->namer == NULL;
    uint64_t names = names_bytes(torrent_path, base, mi, own, err, errlen);
    if (names == UINT64_MAX)
        return 0;
    /* Built and checked here, copied into its table entry once it is sound (the entry's generation kept). */
    st_storage built = { 0 }, *s = &built;
    if (storage_build(s, base, mi, names, own) != 0) {
        snprintf(err, errlen, "%s: out of memory", torrent_path);
        return 0;
    }
    int meta_root;
    bool borrowed;
    st_folder *meta = torrent_folder(st, torrent_path, slash, &meta_root, &borrowed, err, errlen);
    if (meta == NULL) {
        storage_release(s);
        return 0;
    }
    int root = meta_root; /* the data folder's descriptor: meta_root itself, or a data dir's of its own */
    s->folder = data_folder(st, meta, &root, mi->name, err, errlen);
    if (s->folder == NULL) {
        if (!borrowed)
            close(meta_root);
        folder_unref(st, meta);
        storage_release(s);
        return 0;
    }
    uint32_t sidx = NONE;
    st->adding = s; /* its names, until it has a handle */
    st->adding_base = base;
    st->adding_name = mi->name;
    int verified = storage_verify(st, s, meta_root, root, mi, err, errlen);
    st->adding = NULL;
    if (root != meta_root)
        close(root);
    if (!borrowed)
        close(meta_root);
    if (verified != 0 || (sidx = table_alloc(st)) == NONE) {
        if (sidx == NONE && err[0] == '\0')
            snprintf(err, errlen, "%s: out of memory", torrent_path);
        folder_unref(st, s->folder);
        storage_release(s);
        return 0;
    }
    st_storage *e = st_at(st, sidx);
    built.gen = e->gen;
    *e = built;
    st->storages++;
    return st_handle(st, sidx);
}

/* ---- the rest of the public face ---- */

static void roots_clear(hk_store *st)
{
    for (size_t i = 0; i < st->nroots; i++) {
        free(st->roots[i]);
        free(st->root_src[i]);
    }
    free(st->roots);
    free(st->root_ids);
    free(st->root_src);
    st->roots = st->root_src = NULL;
    st->root_ids = NULL;
    st->nroots = 0;
}

/* Resolves the served folders that are not yet (missing when set: a DIR created later). Slots once filled keep
 * their string: the scan holds the array (hk_store_links). */
static void roots_resolve(hk_store *st)
{
    for (size_t i = 0; i < st->nroots; i++) {
        if (st->roots[i] != NULL)
            continue;
        struct stat sb;
        char *real = realpath(st->root_src[i], NULL);
        if (real == NULL || stat(real, &sb) != 0) {
            free(real); /* missing now: nothing to serve there yet */
            continue;
        }
        if (!S_ISDIR(sb.st_mode)) { /* a .torrent file named as a DIR: its folder */
            char *slash = strrchr(real, '/');
            if (slash == real)
                slash[1] = '\0';
            else if (slash != NULL)
                *slash = '\0';
            if (stat(real, &sb) != 0) {
                free(real);
                continue;
            }
        }
        st->root_ids[i] = (sp_id){ (uint64_t)sb.st_dev, (uint64_t)sb.st_ino };
        st->roots[i] = real;
    }
}

int hk_store_set_links(hk_store *st, bool follow, const char *const *roots, size_t n)
{
    roots_clear(st);
    st->follow_links = follow;
    if (n == 0)
        return 0;
    st->roots = calloc(n, sizeof *st->roots);
    st->root_src = calloc(n, sizeof *st->root_src);
    st->root_ids = calloc(n, sizeof *st->root_ids);
    if (!st->roots || !st->root_src || !st->root_ids) {
        free(st->roots);
        free(st->root_src);
        free(st->root_ids);
        st->roots = st->root_src = NULL;
        st->root_ids = NULL;
        return -1;
    }
    st->nroots = n;
    for (size_t i = 0; i < n; i++) {
        if ((st->root_src[i] = strdup(roots[i])) == NULL) {
            roots_clear(st);
            return -1;
        }
    }
    roots_resolve(st);
    return 0;
}

bool hk_store_links(const hk_store *st, const char *const **roots, size_t *n)
{
    *roots = (const char *const *)st->roots;
    *n = st->nroots;
    return st->follow_links;
}

int hk_store_set_data_dirs(hk_store *st, const char *const *dirs, size_t n)
{
    char **copy = n ? calloc(n, sizeof *copy) : NULL;
    if (n && copy == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if ((copy[i] = strdup(dirs[i])) == NULL) {
            while (i > 0)
                free(copy[--i]);
            free(copy);
            return -1;
        }
    }
    for (size_t i = 0; i < st->ndata_dirs; i++)
        free(st->data_dirs[i]);
    free(st->data_dirs);
    st->data_dirs = copy;
    st->ndata_dirs = n;
    return 0;
}

void hk_store_remove(hk_store *st, uint64_t storage)
{
    uint32_t sidx;
    st_storage *s = st_lookup(st, storage, false, &sidx);
    if (s == NULL)
        return;
    s->flags |= ST_REMOVED;
    if (s->flags & ST_MODIFIED) {
        s->flags &= (uint8_t)~ST_MODIFIED;
        st->modified--;
    }
    st->storages--;
    st_close_unpinned(st, s);
    if (s->pins == 0)
        st_storage_free(st, sidx);
}

bool hk_store_take_modified(hk_store *st, uint64_t storage)
{
    st_storage *s = st_lookup(st, storage, false, NULL);
    if (s == NULL || !(s->flags & ST_MODIFIED))
        return false;
    s->flags &= (uint8_t)~ST_MODIFIED;
    st->modified--;
    return true;
}

bool hk_store_failed(const hk_store *st, uint64_t storage, const char **why)
{
    const st_storage *s = st_lookup(st, storage, false, NULL);
    if (s == NULL) {
        if (why != NULL)
            *why = "unknown storage";
        return true;
    }
    if (!(s->flags & ST_FAILED))
        return false;
    if (why != NULL)
        *why = s->why ? s->why : "storage failed";
    return true;
}

uint64_t hk_store_next_open_torrent(const hk_store *st, uint32_t *cursor)
{
    while (*cursor < st->nslots) {
        const st_slot *sl = st_slot_at(st, (*cursor)++);
        if (sl->fd < 0)
            continue;
        const st_storage *s = st_at(st, sl->sidx);
        if ((s->flags & ST_FREE) || sl->file != s->nfiles || (s->flags & (ST_FAILED | ST_REMOVED)))
            continue;
        return st_handle(st, sl->sidx);
    }
    return 0;
}

const char *hk_store_last_error(const hk_store *st)
{
    return st->err;
}

void hk_store_stats_get(const hk_store *st, hk_store_stats *out)
{
    out->mapped_bytes = st->mapped;
    out->open_files = st->open;
    out->pinned_files = st->pinned_files;
    out->storages = st->storages;
    out->blind_files = st->blind;
    out->maps = st->maps;
    out->unmaps = st->unmaps;
    out->madvise_calls = st->madvise_calls;
    out->madvise_skipped = st->madvise_skipped;
    out->mincore_calls = st->mincore_calls;
    out->probe_calls = st->probe_calls;
    out->cache_hits = st->rc_hits;
    out->prefetches_pending = st->npf;
}

size_t hk_store_storage_bytes(const hk_store *st, uint64_t storage)
{
    const st_storage *s = st_lookup(st, storage, false, NULL);
    if (s == NULL)
        return 0;
    size_t n = sizeof *s; /* its table entry */
    n += st_apart_bytes(s);
    n += (sizeof(st_folder) + strlen(s->folder->path) + 1) / s->folder->refs;
    if (s->folder->meta != NULL)
        n += (sizeof(st_folder) + strlen(s->folder->meta->path) + 1) / s->folder->meta->refs;
    if ((s->flags & ST_FAILED) && s->why != NULL)
        n += strlen(s->why) + 1;
    return n;
}

void hk_store_free(hk_store *st)
{
    if (st == NULL)
        return;
    st_close_all(st);
    for (uint32_t i = 0; i < st->ntab; i++)
        if (!(st_at(st, i)->flags & ST_FREE))
            st_storage_free(st, i);
    if (st->zeros != NULL)
        munmap(st->zeros, ZERO_REGION_BYTES);
    hk_store_set_data_dirs(st, NULL, 0);
    roots_clear(st);
    free(st->pf);
    st_folder_cache_drop(st);
    free(st->rc);
    free(st->slots);
    hk_sa_free(&st->tab);
    free(st);
}
