/* disk: owns the seeder's simulated disk — the job FIFO served by queue_depth worker actors (seek + SimGrid disk
 * read per contiguous run of pages), the page cache behind disk_resident/disk_prefetch/disk_load, and the loads
 * waiting for pages that another job is reading. Completions reach the core from the worker actor (see disk.h). */
#include "disk.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "world.h"

enum { JOB_PREFETCH = 1, JOB_LOAD = 2, JOB_VERIFY = 3 };

struct disk_job {
    hk_list link;                /* in the FIFO or the waiting list */
    uint8_t kind;
    bool error;
    hk_extent ext;
    uint64_t token;
    uint32_t piece;              /* JOB_VERIFY */
    uint32_t nown;
    uint64_t *own;               /* pages this job reads (it moved them ABSENT -> READING) */
};

static bool extent_valid(const sim_world *w, const hk_extent *e)
{
    if (e->length == 0 || e->storage >= w->ntorrents)
        return false;
    const sim_torrent *t = &w->torrents[e->storage];
    if (e->file == HK_FILE_METAINFO)
        return e->offset <= t->len && e->length <= t->len - e->offset;
    return e->file == 0 && e->offset <= t->size && e->length <= t->size - e->offset;
}

static pc_key key_of(const hk_extent *e, uint64_t page)
{
    return (pc_key){.storage = e->storage, .file = e->file, .page = page};
}

static void page_range(const sim_disk *d, const hk_extent *e, uint64_t *first, uint64_t *last)
{
    uint32_t ps = pc_page_size(d->pc);
    *first = e->offset / ps;
    *last = (e->offset + e->length - 1) / ps;
}

static bool all_resident(const sim_disk *d, const hk_extent *e)
{
    uint64_t a, b;
    page_range(d, e, &a, &b);
    for (uint64_t p = a; p <= b; p++)
        if (pc_get(d->pc, key_of(e, p)) != PC_RESIDENT)
            return false;
    return true;
}

static bool any_absent(const sim_disk *d, const hk_extent *e)
{
    uint64_t a, b;
    page_range(d, e, &a, &b);
    for (uint64_t p = a; p <= b; p++)
        if (pc_get(d->pc, key_of(e, p)) == PC_ABSENT)
            return true;
    return false;
}

/* Takes ownership of the extent's ABSENT pages. */
static disk_job *job_new(sim_disk *d, uint8_t kind, const hk_extent *e, uint64_t token, bool valid)
{
    disk_job *j = calloc(1, sizeof *j);
    if (!j)
        abort();
    hk_list_init(&j->link);
    j->kind = kind;
    j->ext = *e;
    j->token = token;
    j->error = !valid;
    if (valid && e->file != HK_FILE_METAINFO) {
        uint64_t a, b;
        page_range(d, e, &a, &b);
        j->own = malloc((size_t)(b - a + 1) * sizeof *j->own);
        if (!j->own)
            abort();
        for (uint64_t p = a; p <= b; p++)
            if (pc_begin_read(d->pc, key_of(e, p)))
                j->own[j->nown++] = p;
    }
    return j;
}

static void job_free(disk_job *j)
{
    free(j->own);
    free(j);
}

static void enqueue(sim_seeder *s, disk_job *j)
{
    sim_disk *d = &s->disk;
    hk_list_insert_tail(&d->queue, &j->link);
    d->jobs_queued++;
    opq_push(&s->ops, SOP_DISK_KICK, NULL);
}

/* ---- runtime actions ---- */

void disk_rt_prefetch(void *ctx, const hk_extent *e)
{
    sim_seeder *s = ctx;
    sim_disk *d = &s->disk;
    d->prefetches++;
    if (!extent_valid(s->world, e) || e->file == HK_FILE_METAINFO)
        return;
    if (!any_absent(d, e))
        return;
    enqueue(s, job_new(d, JOB_PREFETCH, e, 0, true));
}

bool disk_rt_resident(void *ctx, const hk_extent *e)
{
    sim_seeder *s = ctx;
    sim_disk *d = &s->disk;
    d->resident_checks++;
    if (!extent_valid(s->world, e))
        return false;
    bool yes = e->file == HK_FILE_METAINFO || all_resident(d, e);
    if (yes)
        d->resident_yes++;
    return yes;
}

void disk_rt_load(void *ctx, const hk_extent *e, uint64_t token)
{
    sim_seeder *s = ctx;
    sim_disk *d = &s->disk;
    d->loads++;
    evlog_line(s->world->log, sim_now(s->world), "disk_load %llu s%llu f%u o%llu l%u", (unsigned long long)token,
               (unsigned long long)e->storage, e->file, (unsigned long long)e->offset, e->length);
    enqueue(s, job_new(d, JOB_LOAD, e, token, extent_valid(s->world, e)));
}

void disk_rt_verify(void *ctx, const hk_verify_req *req, uint64_t token)
{
    sim_seeder *s = ctx;
    sim_disk *d = &s->disk;
    d->verifies++;
    /* the simulated torrents are single files: the piece is one extent (its hull, whatever the core split) */
    hk_extent e = req->nexts ? req->exts[0] : (hk_extent){0};
    bool valid = req->nexts > 0;
    for (uint32_t i = 1; valid && i < req->nexts; i++)
        valid = req->exts[i].file == e.file && req->exts[i].offset == e.offset + e.length;
    for (uint32_t i = 1; valid && i < req->nexts; i++)
        e.length += req->exts[i].length;
    evlog_line(s->world->log, sim_now(s->world), "disk_verify %llu s%llu p%u o%llu l%u", (unsigned long long)token,
               (unsigned long long)e.storage, req->piece, (unsigned long long)e.offset, e.length);
    disk_job *j = job_new(d, JOB_VERIFY, &e, token, valid && extent_valid(s->world, &e));
    j->piece = req->piece;
    enqueue(s, j);
}

bool disk_check_and_touch(sim_seeder *s, const hk_extent *e)
{
    sim_disk *d = &s->disk;
    if (!extent_valid(s->world, e))
        return false;
    if (e->file == HK_FILE_METAINFO)
        return true;
    bool ok = all_resident(d, e);
    uint64_t a, b;
    page_range(d, e, &a, &b);
    for (uint64_t p = a; p <= b; p++)
        pc_touch(d->pc, key_of(e, p));
    return ok;
}

bool disk_idle(const sim_seeder *s)
{
    return s->disk.jobs_queued == 0 && s->disk.busy == 0 && hk_list_empty(&s->disk.waiting);
}

/* ---- worker actors ---- */

static void complete_load(sim_seeder *s, disk_job *j, hk_disk_status st)
{
    if (st != HK_DISK_OK)
        s->disk.load_errors++;
    evlog_line(s->world->log, sim_now(s->world), "disk_loaded %llu %d", (unsigned long long)j->token, (int)st);
    s->core_calls++;
    hk_seeder_on_disk_loaded(s->core, j->token, st);
}

/* A verify whose pages are all resident: the worker hashes them (hash_cost per byte), then the result goes to the
 * core. */
static void complete_verify(sim_seeder *s, disk_job *j)
{
    sim_disk *d = &s->disk;
    hk_verify_result r = HK_VERIFY_ERROR;
    if (!j->error) {
        double ns = (double)j->ext.length * s->world->sc->disk.hash_ns;
        if (ns > 0)
            sg_actor_sleep_for(ns / 1e9);
        d->bytes_hashed += j->ext.length;
        uint64_t a, b;
        page_range(d, &j->ext, &a, &b);
        for (uint64_t p = a; p <= b; p++)
            pc_touch(d->pc, key_of(&j->ext, p)); /* the hash read them */
        r = scenario_corrupt(s->world->sc, (uint32_t)j->ext.storage, j->piece) ? HK_VERIFY_BAD : HK_VERIFY_GOOD;
    }
    if (r == HK_VERIFY_BAD)
        d->verify_bad++;
    evlog_line(s->world->log, sim_now(s->world), "disk_verified %llu %d", (unsigned long long)j->token, (int)r);
    s->core_calls++;
    hk_seeder_on_piece_verified(s->core, j->token, r);
}

/* Reads the job's pages: one seek (unless sequential) + one disk read per contiguous run. */
static void serve(sim_seeder *s, disk_job *j)
{
    sim_disk *d = &s->disk;
    uint32_t ps = pc_page_size(d->pc);
    const sim_disk_cfg *cfg = &s->world->sc->disk;
    const sim_torrent *t = &s->world->torrents[j->ext.storage];
    for (uint32_t i = 0; i < j->nown;) {
        uint32_t k = i + 1;
        while (k < j->nown && j->own[k] == j->own[k - 1] + 1)
            k++;
        uint64_t start = j->own[i] * ps;
        uint64_t end = (j->own[k - 1] + 1) * ps;
        if (end > t->size)
            end = t->size;
        uint64_t pos_key = j->ext.storage << 44 ^ start; /* sequential if it starts where the last read ended */
        bool seq = d->has_last && d->last_end_key == pos_key;
        d->last_end_key = j->ext.storage << 44 ^ end;
        d->has_last = true;
        d->reads++;
        d->bytes_read += end - start;
        if (!seq && cfg->seek)
            sg_actor_sleep_for((double)cfg->seek / 1e9);
        sg_disk_read(d->disk, (sg_size_t)(end - start));
        i = k;
    }
    for (uint32_t i = 0; i < j->nown; i++) {
        assert(pc_get(d->pc, key_of(&j->ext, j->own[i])) == PC_READING); /* this job owns the page's read */
        pc_finish_read(d->pc, key_of(&j->ext, j->own[i]));
    }
}

/* After any job: loads whose pages are now all resident complete; those that lost a page to eviction read again. */
static void check_waiting(sim_seeder *s)
{
    sim_disk *d = &s->disk;
    hk_list *pos, *tmp;
    HK_LIST_FOREACH_SAFE(pos, tmp, &d->waiting) {
        disk_job *j = HK_LIST_ENTRY(pos, disk_job, link);
        if (j->kind == JOB_VERIFY && (all_resident(d, &j->ext) || any_absent(d, &j->ext))) {
            hk_list_remove(&j->link); /* hashed by a worker: queued again (reading what was evicted) */
            disk_job *again = job_new(d, JOB_VERIFY, &j->ext, j->token, true);
            again->piece = j->piece;
            job_free(j);
            enqueue(s, again);
        } else if (j->kind == JOB_VERIFY) {
            continue;
        } else if (all_resident(d, &j->ext)) {
            hk_list_remove(&j->link);
            complete_load(s, j, HK_DISK_OK);
            job_free(j);
        } else if (any_absent(d, &j->ext)) {
            hk_list_remove(&j->link);
            disk_job *again = job_new(d, JOB_LOAD, &j->ext, j->token, true);
            job_free(j);
            enqueue(s, again);
        }
    }
}

/* The oldest queued job, taken out of the FIFO; NULL if another worker took it first. */
static disk_job *dequeue(sim_disk *d)
{
    hk_list *first = hk_list_first(&d->queue);
    if (!first)
        return NULL;
    hk_list_remove(first);
    assert(d->jobs_queued > 0);
    d->jobs_queued--;
    return HK_LIST_ENTRY(first, disk_job, link);
}

/* After a job was served: a load completes, or waits for pages that other jobs are still reading. */
static void job_done(sim_seeder *s, disk_job *j)
{
    sim_disk *d = &s->disk;
    if (j->kind == JOB_VERIFY && (j->error || all_resident(d, &j->ext))) {
        complete_verify(s, j);
        job_free(j);
    } else if (j->kind == JOB_VERIFY) {
        hk_list_insert_head(&d->waiting, &j->link); /* pages another job is reading */
    } else if (j->kind != JOB_LOAD) {
        job_free(j);
    } else if (j->error) {
        complete_load(s, j, HK_DISK_ERROR);
        job_free(j);
    } else if (all_resident(d, &j->ext)) {
        complete_load(s, j, HK_DISK_OK);
        job_free(j);
    } else {
        hk_list_insert_head(&d->waiting, &j->link);
    }
}

static void worker_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    sim_world *w = sg_actor_self_get_data();
    sim_seeder *s = &w->seeder;
    sim_disk *d = &s->disk;
    sim_outbox *box = outbox_new_for_self();
    sg_actor_daemonize(sg_actor_self());
    /* SimGrid 3.32 keeps every finished disk activity in the actor (docs/simgrid.md pitfall 7): recycle */
    for (int served = 0; served < 256; served++) {
        outbox_reap(box);
        sg_sem_acquire(d->sem);
        disk_job *j = dequeue(d);
        if (!j)
            continue;
        d->busy++;
        if (!j->error)
            serve(s, j);
        job_done(s, j); /* a verify hashes here: still busy */
        d->busy--;
        check_waiting(s);
        seeder_drain(s, box);
    }
    disk_spawn_workers(s, 1);
    outbox_close(box); /* the new worker has taken over; this one only waits for its sends in flight */
    return;
}

void disk_spawn_workers(sim_seeder *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "disk%u", s->disk.workers_spawned++);
        sim_spawn(name, s->host, worker_main, s->world);
    }
}

void disk_init(sim_seeder *s, const sim_disk_cfg *cfg)
{
    sim_disk *d = &s->disk;
    hk_list_init(&d->queue);
    hk_list_init(&d->waiting);
    d->pc = pc_new(cfg->cache, cfg->page);
    if (!d->pc)
        abort();
    unsigned n = 0;
    sg_disk_t *disks = NULL;
    sg_host_get_disks(s->host, &n, &disks);
    if (n < 1) {
        fprintf(stderr, "hekate-sim: the seeder host has no disk\n");
        exit(2);
    }
    d->disk = disks[0];
    free(disks);
    d->sem = sg_sem_init(0);
}
