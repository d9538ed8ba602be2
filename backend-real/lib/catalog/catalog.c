/* catalog: the torrents by .torrent path: reading and identifying the files, adding, re-adding, replacing and
 * removing their torrents across store, seeder and announcer, reporting failed storages, and reading again a
 * .torrent that changed on disk while served (see catalog.h). */
#include "catalog.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "infohash.h"
#include "log.h"
#include "resume.h"
#include "shard.h"

struct hk_catalog {
    hk_store *store;
    hk_seeder *seeder;
    hk_announcer *ann;             /* NULL without trackers */
    hk_dht *dht;                   /* NULL without the DHT (hk_catalog_set_dht) */
    hk_served *served;             /* one record per .torrent path (served.h) */
    uint32_t mark;                 /* the last rescan number handed out */
    uint32_t shard_k, shard_n;     /* --shard=K/N: only torrents of shard K are served (n 0 or 1: all) */
    hk_resume *resume;             /* --state: told the description of every .torrent parsed (NULL: none) */
    /* serve_on under way: the storage whose record is not yet indexed by it, that record, its description (the
     * store's namer answers from them if the seeder's add asks the store for a file) */
    uint64_t adding_storage;
    const hk_served_rec *adding_sv;
    const mi_torrent *adding_mi;
};

/* One call of hk_catalog_load: the path, what to record on it and where to say what happened. */
typedef struct load_req {
    const char *path;
    uint32_t mark;
    unsigned flags;
    hk_load_info *info;
    char *err;
    size_t errlen;
} load_req;

/* The .torrent file read and parsed. */
typedef struct torrent_file {
    uint8_t *bytes;
    size_t len;
    hk_file_id id;
    mi_torrent *mi;
} torrent_file;

/* The store's namer (hk_store_set_namer): the .torrent's name is the last component of the record's path, the
 * torrent's name is the seeder's (issue 10: the store keeps neither). */
static const char *store_namer(void *ctx, uint64_t storage, int which, char *buf, size_t cap)
{
    const hk_catalog *c = ctx;
    bool adding = storage == c->adding_storage;
    const hk_served_rec *sv = adding ? c->adding_sv : hk_served_find_storage(c->served, storage);
    if (!sv)
        return NULL;
    if (which == HK_STORE_NAME_TORRENT_FILE)
        return hk_served_base(sv, buf, cap);
    uint32_t len = 0;
    const char *name = adding ? c->adding_mi->name : hk_seeder_torrent_name(c->seeder, sv->torrent, &len);
    if (adding)
        len = (uint32_t)c->adding_mi->name_len;
    if (!name || len >= cap)
        return NULL;
    memcpy(buf, name, len);
    buf[len] = '\0';
    return buf;
}

hk_catalog *hk_catalog_new(hk_store *store, hk_seeder *seeder, hk_announcer *ann)
{
    hk_catalog *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    *c = (hk_catalog){ .store = store, .seeder = seeder, .ann = ann, .served = hk_served_new() };
    if (!c->served) {
        free(c);
        return NULL;
    }
    hk_store_set_namer(store, store_namer, c);
    return c;
}

/* The DHT node's view of the torrents (hk_dht_set_torrents): its ids are the seeder's. */
static const uint8_t *dht_info_hash(void *ctx, uint32_t id)
{
    return hk_seeder_info_hash(((const hk_catalog *)ctx)->seeder, id);
}

void hk_catalog_set_dht(hk_catalog *c, hk_dht *dht)
{
    c->dht = dht;
    if (dht)
        hk_dht_set_torrents(dht, dht_info_hash, c);
}

void hk_catalog_free(hk_catalog *c)
{
    if (!c)
        return;
    hk_served_free(c->served); /* the store keeps the namer: it is freed first and names nothing meanwhile */
    free(c);
}

/* The info-hash of the torrent served from sv (hk_served_storage(sv) != 0): the seeder keeps it, sv its id (served.h). */
static const uint8_t *ih_of(const hk_catalog *c, const hk_served_rec *sv)
{
    const uint8_t *ih = hk_seeder_info_hash(c->seeder, sv->torrent);
    assert(ih && "a record with a storage names a torrent the seeder serves");
    return ih;
}

static void check_torrent_files(hk_catalog *c);
static void torrent_file_changed(hk_catalog *c, hk_served_rec *sv);

/* ---- storage failures ---- */

static void report_failed(hk_catalog *c, hk_served_rec *sv, const char *why)
{
    if (sv->reported)
        return;
    sv->reported = true;
    hk_log(HK_LOG_WARN, "%s: storage failed: %s", HK_SERVED_PATH(sv), why); /* the seeder's line names the info-hash */
    hk_seeder_storage_failed(c->seeder, hk_served_storage(sv), why);
}

void hk_catalog_check_storages(hk_catalog *c)
{
    check_torrent_files(c); /* first: a .torrent replaced under its path is read again, not failed */
    if (hk_store_check(c->store) == 0)
        return;
    size_t cursor = 0;
    for (hk_served_rec *sv = hk_served_next(c->served, &cursor); sv; sv = hk_served_next(c->served, &cursor)) {
        const char *why = NULL;
        if (hk_served_storage(sv) && !sv->reported && hk_store_failed(c->store, hk_served_storage(sv), &why))
            report_failed(c, sv, why ? why : "data changed on disk");
        else if (hk_served_storage(sv) && hk_store_take_modified(c->store, hk_served_storage(sv)) && /* written in place (mtime) */
                 hk_seeder_forget_pieces(c->seeder, ih_of(c, sv)))
            hk_log(HK_LOG_INFO, "%s: a data file was modified: its pieces are checked again", HK_SERVED_PATH(sv));
    }
}

void hk_catalog_on_send_fault(hk_catalog *c, uint64_t storage, const char *why)
{
    hk_catalog_check_storages(c); /* find out which files changed */
    hk_served_rec *sv = hk_served_find_storage(c->served, storage);
    if (!sv || sv->reported)
        return;
    if (sv->stale) { /* a send of its metadata was refused: its .torrent changed (hk_catalog_torrent_file_current) */
        torrent_file_changed(c, sv);
        return;
    }
    const char *store_why = NULL;
    if (hk_store_failed(c->store, storage, &store_why))
        report_failed(c, sv, store_why ? store_why : why);
    else if (strstr(why, "vanished"))
        report_failed(c, sv, why); /* EFAULT: the data is broken even if the files look fine now */
    else
        hk_log(HK_LOG_WARN, "%s: could not send from its data: %s", HK_SERVED_PATH(sv), why);
}

void hk_catalog_on_load_error(hk_catalog *c, uint64_t storage, int error)
{
    hk_served_rec *sv = hk_served_find_storage(c->served, storage);
    const char *why = NULL;
    if (sv && hk_store_failed(c->store, storage, &why))
        report_failed(c, sv, why ? why : strerror(error));
}

/* True if the torrent served from sv has failed (its storage, or a disk load, in the seeder's eyes); a storage the
 * store marked failed but the periodic check has not reported yet is reported now. */
static bool served_failed(hk_catalog *c, hk_served_rec *sv)
{
    if (sv->reported)
        return true;
    const char *why = NULL;
    if (hk_store_failed(c->store, hk_served_storage(sv), &why)) {
        report_failed(c, sv, why ? why : "data changed on disk");
        return true;
    }
    hk_torrent_stats ts;
    return hk_seeder_torrent_stats(c->seeder, ih_of(c, sv), &ts) && ts.failed;
}

/* ---- the .torrent files ---- */

void hk_file_id_of(hk_file_id *id, const struct stat *st)
{
    *id = (hk_file_id){
        .dev = (uint64_t)st->st_dev, .ino = (uint64_t)st->st_ino, .size = (uint64_t)st->st_size,
        .mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
        .ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec,
    };
}

/* The record keeps the .torrent's size in HK_SERVED_SIZE_BITS (served.h): only files read whole (or resumed) are
 * kept, and those are at most this big. */
_Static_assert(HK_MAX_TORRENT_FILE < (1ull << HK_SERVED_SIZE_BITS), "a .torrent's size fits a record's size field");
/* And a storage's table index in HK_SERVED_TORRENT_BITS, its generation in the 16 of storage_gen. */
_Static_assert(HK_STORE_MAX_INDEX <= (1ull << HK_SERVED_TORRENT_BITS), "a table index fits a record's torrent field");
_Static_assert(HK_STORE_MAX_GEN < (1u << 16), "a generation fits a record's storage_gen field");

/* Why hk_served_insert failed (into err). */
static void insert_failed(const hk_catalog *c, char *err, size_t errlen)
{
    if (hk_served_full(c->served))
        snprintf(err, errlen, "too many .torrent paths: this process keeps at most %zu (served.h)",
                 hk_served_count(c->served));
    else
        snprintf(err, errlen, "out of memory");
}

/* sv remembers id, the identity of a file just read (so at most HK_MAX_TORRENT_FILE bytes), or none (NULL). */
static void keep_file_id(hk_served_rec *sv, const hk_file_id *id)
{
    assert(!id || id->size <= HK_MAX_TORRENT_FILE);
    bool keep = id && id->size <= HK_MAX_TORRENT_FILE; /* (else none: the file is read again next time) */
    sv->fp = keep ? hk_file_fp(id) : 0;
    sv->size = keep ? (uint32_t)id->size : 0;
}

/* true if id is the identity sv remembers (equal fingerprints: served.h). */
static bool is_kept_file_id(const hk_served_rec *sv, const hk_file_id *id)
{
    return sv->fp != 0 && sv->fp == hk_file_fp(id);
}

/* Reads the `size` bytes of an open file. NULL with *error_out and err set on failure. */
static uint8_t *read_all(int fd, size_t size, int *error_out, char *err, size_t errlen)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        *error_out = ENOMEM;
        snprintf(err, errlen, "out of memory reading %zu bytes", size);
        return NULL;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *error_out = n < 0 ? errno : 0;
            snprintf(err, errlen, "read error: %s", n < 0 ? strerror(errno) : "file shrank while being read");
            free(buf);
            return NULL;
        }
        got += (size_t)n;
    }
    return buf;
}

/* Reads a regular file of at most max bytes without following a symbolic link; id (may be NULL) gets the identity
 * of what was read. On failure *error_out is the errno behind it (0: the file itself is unusable: not regular, too
 * large, shrank). */
static uint8_t *read_file_id(const char *path, size_t max, size_t *len, hk_file_id *id, int *error_out, char *err,
                             size_t errlen)
{
    *error_out = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        *error_out = errno;
        snprintf(err, errlen, "cannot open: %s", errno == ELOOP ? "is a symbolic link" : strerror(errno));
        return NULL;
    }
    struct stat st;
    uint8_t *buf = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        snprintf(err, errlen, "not a regular file");
    else if ((uint64_t)st.st_size > max)
        snprintf(err, errlen, "file too large: %lld bytes (at most %zu)", (long long)st.st_size, max);
    else
        buf = read_all(fd, (size_t)st.st_size, error_out, err, errlen);
    close(fd);
    if (!buf)
        return NULL;
    if (id)
        hk_file_id_of(id, &st);
    *len = (size_t)st.st_size;
    return buf;
}

uint8_t *hk_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    int error;
    return read_file_id(path, max, len, NULL, &error, err, errlen);
}

/* A rejection's or failure's reason, remembered so that a repeat is logged quietly (never 0: 0 is "none"). */
static uint32_t hash_text(const char *s)
{
    uint32_t h = hk_fnv1a32_str(s);
    return h ? h : 1;
}

/* Errors that say nothing about the file: the process is short of descriptors or memory for now. */
static bool transient_error(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOMEM || e == EAGAIN || e == EINTR;
}

/* ---- serving and unserving ---- */

/* Stops serving sv's torrent: the seeder first (it closes the torrent's connections, whose send queues unpin
 * their extents), then `stopped` to its trackers (if announce_stop), then the store releases the storage. */
static void unserve(hk_catalog *c, hk_served_rec *sv, bool announce_stop)
{
    uint8_t ih[20];
    memcpy(ih, ih_of(c, sv), 20); /* the seeder's copy goes with the torrent */
    if (c->dht) /* before the seeder: the node reads an id's info-hash from it (dht.h) */
        hk_dht_remove_torrent(c->dht, (uint32_t)hk_served_storage(sv));
    hk_seeder_remove_torrent(c->seeder, ih);
    if (announce_stop && c->ann)
        hk_announcer_remove_torrent(c->ann, ih);
    hk_store_remove(c->store, hk_served_storage(sv));
    hk_served_set_storage(c->served, sv, 0);
    sv->reported = false;
}

/* Hands the file (already validated on `storage`) to the seeder and records it in sv. On failure releases storage. */
static int serve_on(hk_catalog *c, hk_served_rec *sv, const torrent_file *tf, uint64_t storage, char *err,
                    size_t errlen)
{
    char aerr[256] = "";
    uint32_t id = 0;
    c->adding_storage = storage;
    c->adding_sv = sv;
    c->adding_mi = tf->mi;
    hk_add_result res = hk_seeder_add_parsed(c->seeder, tf->mi, storage, &id, aerr, sizeof aerr); /* parsed once */
    c->adding_storage = 0;
    if (res != HK_ADD_OK) {
        if (res == HK_ADD_DUPLICATE)
            snprintf(err, errlen, "duplicate: a torrent with the same info-hash is already served");
        else if (res == HK_ADD_NOMEM)
            snprintf(err, errlen, "out of memory");
        else
            snprintf(err, errlen, "refused by the seeder: %s", aerr[0] ? aerr : "invalid");
        hk_store_remove(c->store, storage);
        return -1;
    }
    assert(id == (uint32_t)storage && "the seeder's id is the storage's table index (seeder.h)");
    (void)id;
    if (hk_served_set_storage(c->served, sv, storage) != 0) { /* out of memory for its index entry */
        hk_seeder_remove_torrent(c->seeder, tf->mi->info_hash);
        hk_store_remove(c->store, storage);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    sv->reported = false;
    return 0;
}

/* The tracker list of a torrent (tiers and their URLs, in order) as one number of HK_SERVED_TRACKERS_BITS (the high
 * bits of its 64-bit FNV-1a, mixed: served.h says why 48 suffice): a rewritten .torrent whose info-hash is the same
 * but whose trackers differ is told apart by it. */
static uint64_t trackers_hash(const mi_torrent *mi)
{
    uint64_t h = HK_FNV1A64_INIT;
    for (uint32_t t = 0; t < mi->tier_count; t++) {
        h = (h ^ (0x100u + mi->tiers[t].count)) * HK_FNV1A64_PRIME; /* the tier boundary */
        for (uint32_t i = 0; i < mi->tiers[t].count; i++)
            for (const char *u = mi->trackers[mi->tiers[t].first + i]; ; u++) {
                h = (h ^ (uint8_t)*u) * HK_FNV1A64_PRIME; /* the NUL too: URL boundaries count */
                if (!*u)
                    break;
            }
    }
    return hk_mix64(h) >> (64 - HK_SERVED_TRACKERS_BITS);
}

/* The torrent served from sv (the same info-hash as mi) was read again from a .torrent with another tracker list: the
 * announcer has no way to swap a torrent's trackers, so the torrent is removed from it (`stopped` to the old trackers
 * that have it registered) and added again with the new list (`started` to each new tracker at its first announce,
 * spread like any torrent added). Its peers and storage are untouched. */
static void update_trackers(hk_catalog *c, hk_served_rec *sv, const mi_torrent *mi)
{
    uint64_t h = trackers_hash(mi);
    if (h == sv->trackers_hash)
        return;
    sv->trackers_hash = h;
    hk_log(HK_LOG_INFO, "%s: its tracker list changed (%u tier%s now): announcing to the new list", HK_SERVED_PATH(sv),
           mi->tier_count, mi->tier_count == 1 ? "" : "s");
    if (!c->ann)
        return;
    hk_announcer_remove_torrent(c->ann, ih_of(c, sv));
    if (hk_announcer_add_metainfo(c->ann, mi) == HK_ANN_NOMEM)
        hk_log(HK_LOG_WARN, "%s: served, but not announced: out of memory", HK_SERVED_PATH(sv));
}

static void announce_added(hk_catalog *c, const hk_served_rec *sv, const char *path, const mi_torrent *mi)
{
    uint32_t id = (uint32_t)hk_served_storage(sv);
    if (c->dht && hk_dht_add_metainfo(c->dht, id, mi) == HK_DHT_NOMEM) /* private ones (BEP 27) are refused: right */
        hk_log(HK_LOG_WARN, "%s: served, but not announced on the DHT: out of memory", path);
    if (!c->ann) /* a torrent without usable tracker URLs is simply not announced */
        return;
    if (hk_announcer_add_metainfo(c->ann, mi) == HK_ANN_NOMEM)
        hk_log(HK_LOG_WARN, "%s: served, but not announced: out of memory", path);
}

/* sv serves the torrent of a file just read (id): visited by this mark, no reason remembered. */
static void record_served(const hk_catalog *c, hk_served_rec *sv, const load_req *q, const hk_file_id *id)
{
    sv->mark = q->mark;
    keep_file_id(sv, id);
    sv->why_hash = 0;
    sv->bad_file = false;
    memcpy(q->info->info_hash, ih_of(c, sv), 20);
}

/* The path's outcome is a rejection (q->err says why): what it served before is removed, the reason remembered. */
static hk_load_outcome reject(hk_catalog *c, hk_served_rec *sv, const load_req *q, const hk_file_id *id,
                              bool bad_file)
{
    hk_load_info *info = q->info;
    bool existed = sv != NULL;
    if (sv && hk_served_storage(sv)) {
        memcpy(info->old_hash, ih_of(c, sv), 20);
        info->old_removed = true;
        unserve(c, sv, true);
    }
    if (!sv)
        sv = hk_served_insert(c->served, q->path);
    if (!sv) /* out of memory: nothing remembered, the rejection repeats loudly */
        return HK_LOAD_REJECTED;
    uint32_t h = hash_text(q->err);
    info->repeated = existed && !info->old_removed && sv->why_hash == h;
    sv->why_hash = h;
    sv->mark = q->mark;
    sv->bad_file = bad_file;
    sv->other_shard = false;
    keep_file_id(sv, id);
    return HK_LOAD_REJECTED;
}

/* The torrent served from sv (same info-hash as the file) goes onto fresh storage: the data is validated first; only
 * then the seeder forgets the old storage (closing its peers) and takes the new one. The announcer keeps it. */
static hk_load_outcome readd(hk_catalog *c, hk_served_rec *sv, const load_req *q, bool failed,
                             const torrent_file *tf)
{
    q->info->was_failed = failed;
    char serr[512];
    uint64_t storage = hk_store_add(c->store, q->path, tf->mi, serr, sizeof serr);
    if (storage == 0) {
        snprintf(q->err, q->errlen, "data: %s", serr);
        if (!failed) /* its .torrent changed and its data is not valid: nothing can be served from it */
            return reject(c, sv, q, &tf->id, false);
        uint32_t h = hash_text(q->err);
        q->info->repeated = sv->why_hash == h;
        sv->why_hash = h;
        sv->mark = q->mark;
        keep_file_id(sv, &tf->id);
        return HK_LOAD_STILL_FAILED;
    }
    uint8_t ih[20];
    memcpy(ih, ih_of(c, sv), 20); /* the seeder's copy goes with the torrent */
    /* the DHT node names it by the seeder's id, which is the storage's: it moves to the new one (before the seeder
     * forgets the old id, dht.h) */
    bool on_dht = c->dht && hk_dht_remove_torrent(c->dht, (uint32_t)hk_served_storage(sv)) == HK_DHT_OK;
    hk_seeder_remove_torrent(c->seeder, ih);
    hk_store_remove(c->store, hk_served_storage(sv));
    hk_served_set_storage(c->served, sv, 0);
    if (serve_on(c, sv, tf, storage, q->err, q->errlen) != 0) {
        if (c->ann)
            hk_announcer_remove_torrent(c->ann, tf->mi->info_hash);
        memcpy(q->info->old_hash, tf->mi->info_hash, 20);
        q->info->old_removed = true;
        return reject(c, sv, q, &tf->id, false);
    }
    if (on_dht && hk_dht_add_torrent(c->dht, (uint32_t)hk_served_storage(sv)) == HK_DHT_NOMEM)
        hk_log(HK_LOG_WARN, "%s: served, but no longer announced on the DHT: out of memory", q->path);
    record_served(c, sv, q, &tf->id);
    update_trackers(c, sv, tf->mi);
    return HK_LOAD_READDED;
}

/* ---- hk_catalog_load, step by step ---- */

/* With the walk's lstat (seen) equal to the identity the record remembers, the outcome needs no read: true with *out
 * set for a healthy served torrent (UNCHANGED) or a file rejected for itself (REJECTED, repeated). */
static bool decided_by_identity(const hk_catalog *c, hk_served_rec *sv, const load_req *q, const struct stat *seen,
                                bool failed, hk_load_outcome *out)
{
    hk_file_id sid;
    hk_file_id_of(&sid, seen);
    if (!is_kept_file_id(sv, &sid))
        return false;
    if (hk_served_storage(sv) && !failed) {
        sv->mark = q->mark;
        memcpy(q->info->info_hash, ih_of(c, sv), 20);
        *out = HK_LOAD_UNCHANGED;
        return true;
    }
    if (!hk_served_storage(sv) && sv->bad_file) {
        snprintf(q->err, q->errlen, "unchanged since it was rejected");
        sv->mark = q->mark;
        q->info->repeated = true;
        *out = sv->other_shard ? HK_LOAD_OTHER_SHARD : HK_LOAD_REJECTED;
        return true;
    }
    return false;
}

/* Reads and parses the path's file into tf. Returns 0, or -1 with *out the outcome (ERROR: nothing changed,
 * REJECTED: the file itself is unusable) and nothing left in tf to free. */
static int read_torrent(hk_catalog *c, hk_served_rec *sv, const load_req *q, torrent_file *tf,
                        hk_load_outcome *out)
{
    memset(tf, 0, sizeof *tf);
    int rerr = 0;
    tf->bytes = read_file_id(q->path, HK_MAX_TORRENT_FILE, &tf->len, &tf->id, &rerr, q->err, q->errlen);
    if (!tf->bytes) {
        if (transient_error(rerr)) {
            if (sv)
                sv->mark = q->mark;
            *out = HK_LOAD_ERROR;
            return -1;
        }
        *out = reject(c, sv, q, NULL, true);
        return -1;
    }
    mi_error me;
    if (mi_parse(tf->bytes, tf->len, &tf->mi, &me) != 0) {
        snprintf(q->err, q->errlen, "invalid torrent: %s", me.what);
        free(tf->bytes);
        tf->bytes = NULL;
        *out = reject(c, sv, q, &tf->id, true);
        return -1;
    }
    return 0;
}

/* The file's torrent is served from another path already: true with *out DEFERRED (may defer, and that path's record
 * carries another mark: it may disappear in this rescan's sweep) or REJECTED as a duplicate. */
static bool served_elsewhere(hk_catalog *c, hk_served_rec *sv, const load_req *q, const torrent_file *tf,
                             hk_load_outcome *out)
{
    hk_torrent_stats ts;
    if (!hk_seeder_torrent_stats(c->seeder, tf->mi->info_hash, &ts))
        return false;
    hk_served_rec *owner = hk_served_find_storage(c->served, ts.storage);
    if ((q->flags & HK_LOAD_MAY_DEFER) && owner && owner->mark != q->mark) {
        *out = HK_LOAD_DEFERRED; /* the record keeps its old mark: the retry is not taken for a second visit */
        return true;
    }
    snprintf(q->err, q->errlen, "duplicate: the same torrent (same info-hash) is already served from %s",
             owner ? HK_SERVED_PATH(owner) : "another path");
    *out = reject(c, sv, q, &tf->id, false);
    return true;
}

/* --shard: the file's torrent falls in another shard. What the path served goes (as for a rejection), and the record
 * remembers the file, which is not read again while its identity stays (like a file rejected for itself). */
static hk_load_outcome other_shard(hk_catalog *c, hk_served_rec *sv, const load_req *q, const torrent_file *tf)
{
    uint32_t in = hk_shard_of(tf->mi->info_hash, c->shard_n);
    snprintf(q->err, q->errlen, "in shard %u of %u (this process serves shard %u)", in, c->shard_n, c->shard_k);
    char hex[IH_HEX_LEN + 1];
    ih_hex(tf->mi->info_hash, hex);
    hk_log(HK_LOG_DEBUG, "%s (%s): skipped: %s", q->path, hex, q->err);
    reject(c, sv, q, &tf->id, true);
    sv = hk_served_find(c->served, q->path);
    if (sv) /* else out of memory: not remembered, read again next time */
        sv->other_shard = true;
    return HK_LOAD_OTHER_SHARD;
}

/* A torrent not served yet goes onto new storage and to the seeder, then to the announcer. */
static hk_load_outcome add_new(hk_catalog *c, hk_served_rec *sv, const load_req *q, const torrent_file *tf)
{
    char serr[512];
    uint64_t storage = hk_store_add(c->store, q->path, tf->mi, serr, sizeof serr);
    if (storage == 0) {
        snprintf(q->err, q->errlen, "data: %s", serr);
        return reject(c, sv, q, &tf->id, false);
    }
    if (!sv)
        sv = hk_served_insert(c->served, q->path);
    if (!sv) {
        hk_store_remove(c->store, storage);
        insert_failed(c, q->err, q->errlen);
        return HK_LOAD_REJECTED;
    }
    if (serve_on(c, sv, tf, storage, q->err, q->errlen) != 0)
        return reject(c, sv, q, &tf->id, false);
    announce_added(c, sv, q->path, tf->mi);
    sv->trackers_hash = trackers_hash(tf->mi);
    record_served(c, sv, q, &tf->id);
    return q->info->old_removed ? HK_LOAD_REPLACED : HK_LOAD_ADDED;
}

/* What the file just read (tf) means for the path's record sv (NULL: none yet). */
static hk_load_outcome load_parsed(hk_catalog *c, hk_served_rec *sv, const load_req *q, bool failed,
                                   const torrent_file *tf)
{
    const mi_torrent *mi = tf->mi;
    if (!hk_shard_has(mi->info_hash, c->shard_k, c->shard_n))
        return other_shard(c, sv, q, tf);
    if (sv && hk_served_storage(sv) && memcmp(ih_of(c, sv), mi->info_hash, 20) == 0) {
        if (failed || sv->size != tf->len || hk_seeder_info_start(c->seeder, sv->torrent) != mi->info_start)
            return readd(c, sv, q, failed, tf);
        sv->mark = q->mark; /* touched, or rewritten the same way: the store's view of it is still right */
        keep_file_id(sv, &tf->id);
        memcpy(q->info->info_hash, ih_of(c, sv), 20);
        update_trackers(c, sv, mi); /* the same info dictionary with other trackers: announced to the new ones */
        return HK_LOAD_UNCHANGED;
    }
    if (sv && hk_served_storage(sv)) { /* another torrent in the same file: the old one goes */
        memcpy(q->info->old_hash, ih_of(c, sv), 20);
        q->info->old_removed = true;
        unserve(c, sv, true);
    }
    hk_load_outcome out;
    if (served_elsewhere(c, sv, q, tf, &out))
        return out;
    return add_new(c, sv, q, tf);
}

/* hk_catalog_load once the path's record sv (NULL: none) is known not to be visited by this rescan yet. */
static hk_load_outcome load_record(hk_catalog *c, hk_served_rec *sv, const load_req *q, const struct stat *seen)
{
    bool failed = sv && hk_served_storage(sv) && served_failed(c, sv);
    hk_load_outcome out;
    if (sv && seen && !sv->stale && decided_by_identity(c, sv, q, seen, failed, &out))
        return out;
    if (sv)
        sv->stale = false; /* read now: whatever it holds is served from here on */
    torrent_file tf;
    if (read_torrent(c, sv, q, &tf, &out) != 0)
        return out;
    out = load_parsed(c, sv, q, failed, &tf);
    if (c->resume && (out == HK_LOAD_ADDED || out == HK_LOAD_REPLACED || out == HK_LOAD_READDED ||
                      out == HK_LOAD_UNCHANGED)) {
        hk_served_rec *now = sv ? sv : hk_served_find(c->served, q->path);
        if (now && hk_served_storage(now)) /* read now: its description is what a resume state keeps */
            hk_resume_note(c->resume, now, tf.mi);
    }
    if ((q->flags & HK_LOAD_WANT_MI) && (out == HK_LOAD_ADDED || out == HK_LOAD_REPLACED || out == HK_LOAD_READDED))
        q->info->mi = tf.mi;
    else
        mi_free(tf.mi);
    free(tf.bytes);
    return out;
}

hk_load_outcome hk_catalog_load(hk_catalog *c, const char *path, const struct stat *seen, uint32_t mark,
                                unsigned flags, hk_load_info *info, char *err, size_t errlen)
{
    memset(info, 0, sizeof *info);
    if (errlen)
        err[0] = '\0';
    const load_req q = { .path = path, .mark = mark, .flags = flags, .info = info, .err = err, .errlen = errlen };
    hk_served_rec *sv = hk_served_find(c->served, path);
    if (sv && mark != 0 && sv->mark == mark) { /* visited already by this rescan */
        if (hk_served_storage(sv))
            memcpy(info->info_hash, ih_of(c, sv), 20);
        return HK_LOAD_UNCHANGED;
    }
    return load_record(c, sv, &q, seen);
}

/* ---- .torrent files that change on disk while served ---- */

/* true if the file at sv's path, read now, holds the torrent served from sv at the same place in a file of the same
 * size (so the bytes served as its metadata are the same); *id is then what was read. */
static bool file_holds_served(const hk_catalog *c, const hk_served_rec *sv, hk_file_id *id)
{
    size_t len;
    int error;
    char err[256], path[HK_SERVED_PATH_MAX];
    uint8_t *bytes = read_file_id(hk_served_path(sv, path, sizeof path), HK_MAX_TORRENT_FILE, &len, id, &error, err, sizeof err);
    if (!bytes)
        return false;
    mi_torrent *mi;
    mi_error me;
    bool same = false;
    if (mi_parse(bytes, len, &mi, &me) == 0) {
        same = len == sv->size && mi->info_start == hk_seeder_info_start(c->seeder, sv->torrent) &&
               memcmp(mi->info_hash, ih_of(c, sv), 20) == 0 &&
               trackers_hash(mi) == sv->trackers_hash; /* other trackers: read again, so the announcer gets them */
        mi_free(mi);
    }
    free(bytes);
    return same;
}

/* true if sv's .torrent still holds what is served from it: the identity recorded when it was read (device, inode,
 * size, mtime, ctime) is unchanged, or the file read again holds the same torrent at the same place (touched, or
 * rewritten the same way: its new identity is recorded). Otherwise sv is marked stale and false is returned. A path
 * that cannot be examined now counts as unchanged: a mapping still holds what was read (the store finds a file gone
 * when it maps it, a rescan removes its record). */
static bool torrent_file_current(const hk_catalog *c, hk_served_rec *sv)
{
    if (sv->stale)
        return false;
    struct stat st;
    char path[HK_SERVED_PATH_MAX];
    if (lstat(hk_served_path(sv, path, sizeof path), &st) != 0)
        return true;
    hk_file_id id;
    hk_file_id_of(&id, &st);
    if (S_ISREG(st.st_mode) && is_kept_file_id(sv, &id))
        return true;
    if (S_ISREG(st.st_mode) && file_holds_served(c, sv, &id)) {
        keep_file_id(sv, &id);
        return true;
    }
    sv->stale = true;
    return false;
}

/* After torrent_file_changed reloaded sv's path (old: the info-hash it served): one line saying what is served now. */
static void log_reloaded(hk_catalog *c, hk_served_rec *sv, hk_load_outcome out, const uint8_t old[20],
                         const char *err)
{
    char was[IH_HEX_LEN + 1], now[IH_HEX_LEN + 1];
    ih_hex(old, was);
    if (hk_served_storage(sv)) /* else not served now: the lines below that name it are not reached */
        ih_hex(ih_of(c, sv), now);
    else
        now[0] = '\0';
    switch (out) {
    case HK_LOAD_UNCHANGED:
        hk_log(HK_LOG_INFO, "%s: rescanned: it holds the same torrent (%s) again; served as before", HK_SERVED_PATH(sv), now);
        return;
    case HK_LOAD_ADDED:
    case HK_LOAD_REPLACED:
        hk_log(HK_LOG_INFO, "%s: rescanned: serving %s (was %s)", HK_SERVED_PATH(sv), now, was);
        return;
    case HK_LOAD_READDED:
        hk_log(HK_LOG_INFO, "%s: rescanned: the same torrent (%s), served again on fresh storage", HK_SERVED_PATH(sv), now);
        return;
    case HK_LOAD_ERROR: /* nothing changed: the old torrent must not go on serving the file's new bytes */
        hk_log(HK_LOG_WARN, "%s: cannot be read again now (%s): %s fails until a rescan", HK_SERVED_PATH(sv), err, was);
        report_failed(c, sv, "its .torrent changed on disk");
        return;
    default:
        hk_log(HK_LOG_WARN, "%s: rescanned: %s is no longer served: %s", HK_SERVED_PATH(sv), was, err);
        return;
    }
}

/* sv's .torrent changed on disk: says so, then reads it again at once as a rescan would (the torrent served from it
 * goes before anything else happens, and what the file holds now is served if it can be; the record keeps its mark,
 * so a rescan under way neither takes it for visited nor misses it). */
static void torrent_file_changed(hk_catalog *c, hk_served_rec *sv)
{
    hk_log(HK_LOG_WARN, "%s: the .torrent changed on disk; its metadata is no longer served; rescanning it", HK_SERVED_PATH(sv));
    uint8_t old[20];
    memcpy(old, ih_of(c, sv), 20);
    hk_load_info info;
    memset(&info, 0, sizeof info);
    char err[512] = "";
    char path[HK_SERVED_PATH_MAX];
    const load_req q = { .path = hk_served_path(sv, path, sizeof path), .mark = sv->mark, .info = &info, .err = err, .errlen = sizeof err };
    hk_load_outcome out = load_record(c, sv, &q, NULL);
    log_reloaded(c, sv, out, old, err);
}

/* The .torrent files the store has open (their bytes may go out as metadata at any time): one lstat each. */
static void check_torrent_files(hk_catalog *c)
{
    uint32_t cursor = 0;
    for (uint64_t h; (h = hk_store_next_open_torrent(c->store, &cursor)) != 0;) {
        hk_served_rec *sv = hk_served_find_storage(c->served, h);
        if (sv && !sv->reported && !torrent_file_current(c, sv))
            torrent_file_changed(c, sv);
    }
}

bool hk_catalog_torrent_file_current(hk_catalog *c, uint64_t storage)
{
    hk_served_rec *sv = hk_served_find_storage(c->served, storage);
    return !sv || sv->reported || torrent_file_current(c, sv);
}

bool hk_catalog_forget(hk_catalog *c, const char *path, uint8_t info_hash_out[20])
{
    hk_served_rec *sv = hk_served_find(c->served, path);
    if (!sv)
        return false;
    bool served = hk_served_storage(sv) != 0;
    if (served) {
        if (info_hash_out)
            memcpy(info_hash_out, ih_of(c, sv), 20);
        unserve(c, sv, true);
    }
    hk_resume_forget(c->resume, sv); /* a background save's snapshot may list it */
    hk_served_delete(c->served, sv);
    return served;
}

int hk_catalog_add_file(hk_catalog *c, const char *path, mi_torrent **mi_out, char *err, size_t errlen)
{
    hk_served_rec *sv = hk_served_find(c->served, path);
    if (sv && hk_served_storage(sv)) {
        snprintf(err, errlen, "duplicate: this path is already served");
        return -1;
    }
    bool existed = sv != NULL;
    hk_load_info info;
    hk_load_outcome out = hk_catalog_load(c, path, NULL, c->mark, mi_out ? HK_LOAD_WANT_MI : 0, &info, err, errlen);
    if (out == HK_LOAD_ADDED) {
        if (mi_out)
            *mi_out = info.mi;
        return 0;
    }
    assert(!info.mi || out == HK_LOAD_READDED || out == HK_LOAD_REPLACED);
    if (info.mi) /* not handed out on failure */
        mi_free(info.mi);
    if (out == HK_LOAD_ERROR && errlen && !err[0])
        snprintf(err, errlen, "cannot be read now");
    sv = hk_served_find(c->served, path);
    if (sv && !existed && !hk_served_storage(sv)) { /* a rejection here leaves nothing behind */
        hk_resume_forget(c->resume, sv);
        hk_served_delete(c->served, sv);
    }
    return -1;
}

hk_load_outcome hk_catalog_add_resumed(hk_catalog *c, const char *path, const struct stat *seen,
                                       const mi_torrent *mi, hk_served_rec **sv_out, char *err, size_t errlen)
{
    *sv_out = NULL;
    if (errlen)
        err[0] = '\0';
    hk_served_rec *sv = hk_served_find(c->served, path);
    if (sv || (uint64_t)seen->st_size > HK_MAX_TORRENT_FILE || mi->info_end > (uint64_t)seen->st_size) {
        snprintf(err, errlen, sv ? "already known" : "file too large, or shorter than its description says");
        return HK_LOAD_REJECTED;
    }
    hk_load_info info;
    memset(&info, 0, sizeof info);
    const load_req q = { .path = path, .mark = c->mark, .info = &info, .err = err, .errlen = errlen };
    torrent_file tf = { .len = (size_t)seen->st_size, .mi = (mi_torrent *)mi };
    hk_file_id_of(&tf.id, seen);
    hk_load_outcome out;
    if (!hk_shard_has(mi->info_hash, c->shard_k, c->shard_n))
        return other_shard(c, NULL, &q, &tf);
    if (served_elsewhere(c, NULL, &q, &tf, &out))
        return out;
    sv = hk_served_insert(c->served, path);
    if (!sv) {
        insert_failed(c, err, errlen);
        return HK_LOAD_ERROR;
    }
    out = add_new(c, sv, &q, &tf);
    if (out == HK_LOAD_ADDED)
        *sv_out = sv;
    return out;
}

void hk_catalog_set_resume(hk_catalog *c, struct hk_resume *rs)
{
    c->resume = rs;
}

void hk_catalog_set_shard(hk_catalog *c, uint32_t k, uint32_t n)
{
    c->shard_k = n > 1 ? k : 0;
    c->shard_n = n > 1 ? n : 0;
}

uint32_t hk_catalog_next_mark(hk_catalog *c)
{
    if (++c->mark > HK_SERVED_MARK_MAX) { /* a record's mark has 4 bits (served.h): none may hold 1 from before */
        hk_served_clear_marks(c->served);
        c->mark = 1;
    }
    return c->mark;
}

const hk_served *hk_catalog_served(const hk_catalog *c)
{
    return c->served;
}

uint32_t hk_catalog_torrents(const hk_catalog *c)
{
    return (uint32_t)hk_served_with_storage(c->served);
}
