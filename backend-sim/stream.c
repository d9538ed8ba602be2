/* stream: owns the simulated byte stream of one connection direction (a queue of chunks cut into ACK-clocked
 * flights), the messages that travel through mailboxes and the outboxes that send them (see stream.h). */
#include "stream.h"

#include <assert.h>
#include <simgrid/actor.h>
#include <stdlib.h>
#include <string.h>

#define ZERO_SIZE (16u << 20)

static uint8_t *zero_buf;

const uint8_t *sim_zero_bytes(void)
{
    if (!zero_buf) {
        zero_buf = calloc(1, ZERO_SIZE);
        if (!zero_buf)
            abort();
    }
    return zero_buf;
}

size_t sim_zero_size(void)
{
    return ZERO_SIZE;
}

void stream_init(sim_stream *s)
{
    hk_list_init(&s->chunks);
    s->queued = 0;
    s->inflight = 0;
    s->sent = s->delivered = s->learnt = 0;
    s->want_delivery = false;
}

static sim_chunk *chunk_new(uint32_t cap, bool virt)
{
    sim_chunk *c = malloc(sizeof *c + (virt ? 0 : cap));
    if (!c)
        abort();
    hk_list_init(&c->link);
    c->len = c->off = 0;
    c->cap = virt ? 0 : cap;
    c->virt = virt;
    return c;
}

static sim_chunk *first_chunk(const sim_stream *s)
{
    hk_list *n = hk_list_first(&s->chunks);
    return n ? HK_LIST_ENTRY(n, sim_chunk, link) : NULL;
}

static sim_chunk *last_chunk(const sim_stream *s)
{
    hk_list *n = hk_list_last(&s->chunks);
    return n ? HK_LIST_ENTRY(n, sim_chunk, link) : NULL;
}

static sim_chunk *next_chunk(const sim_stream *s, const sim_chunk *c)
{
    hk_list *n = hk_list_next(&s->chunks, &c->link);
    return n ? HK_LIST_ENTRY(n, sim_chunk, link) : NULL;
}

void stream_write(sim_stream *s, const uint8_t *bytes, uint32_t len)
{
    s->queued += len;
    while (len > 0) {
        sim_chunk *t = last_chunk(s);
        if (!t || t->virt || t->len == t->cap) {
            t = chunk_new(len > 512 ? len : 512, false);
            hk_list_insert_tail(&s->chunks, &t->link);
        }
        uint32_t n = t->cap - t->len < len ? t->cap - t->len : len;
        memcpy(t->data + t->len, bytes, n);
        t->len += n;
        bytes += n;
        len -= n;
    }
}

void stream_write_virtual(sim_stream *s, uint32_t len)
{
    s->queued += len;
    sim_chunk *t = last_chunk(s);
    if (t && t->virt) {
        t->len += len;
        return;
    }
    t = chunk_new(0, true);
    t->len = len;
    hk_list_insert_tail(&s->chunks, &t->link);
}

/* Copies the queue's first `total` bytes into m's parts (one per chunk), freeing the chunks they empty. */
static void fill_flight(sim_stream *s, sim_msg *m, uint32_t total)
{
    uint8_t *dst = (uint8_t *)&m->parts[m->nparts];
    uint32_t left = total;
    for (uint32_t i = 0; i < m->nparts; i++) {
        sim_chunk *c = first_chunk(s);
        assert(c); /* the first pass counted nparts chunks */
        uint32_t n = c->len - c->off;
        if (n > left)
            n = left;
        m->parts[i].len = n;
        m->parts[i].virt = c->virt;
        if (c->virt) {
            m->parts[i].bytes = NULL;
        } else {
            memcpy(dst, c->data + c->off, n);
            m->parts[i].bytes = dst;
            dst += n;
        }
        c->off += n;
        left -= n;
        if (c->off == c->len) {
            hk_list_remove(&c->link);
            free(c);
        }
    }
}

sim_msg *stream_take_flight(sim_stream *s, uint32_t window)
{
    if (s->inflight || s->queued == 0)
        return NULL;
    uint64_t transit = s->sent - s->delivered;
    if (transit >= window) {
        s->want_delivery = true;
        return NULL;
    }
    window -= (uint32_t)transit;
    /* first pass: size the message */
    uint32_t total = 0, nparts = 0, real = 0;
    for (sim_chunk *c = first_chunk(s); c && total < window; c = next_chunk(s, c)) {
        uint32_t n = c->len - c->off;
        if (n > window - total)
            n = window - total;
        total += n;
        nparts++;
        if (!c->virt)
            real += n;
    }
    sim_msg *m = malloc(sizeof *m + nparts * sizeof(sim_part) + real);
    if (!m)
        abort();
    m->type = MSG_DATA;
    m->refs = 1;
    m->len = total;
    m->nparts = nparts;
    fill_flight(s, m, total);
    s->queued -= total;
    s->inflight = total;
    s->sent += total;
    return m;
}

uint64_t stream_learn_delivered(sim_stream *s)
{
    uint64_t n = s->delivered - s->learnt;
    s->learnt = s->delivered;
    return n;
}

bool stream_delivered(sim_stream *s, uint32_t len)
{
    s->delivered += len;
    bool want = s->want_delivery;
    s->want_delivery = false;
    return want;
}

void stream_clear(sim_stream *s)
{
    hk_list *pos, *tmp;
    HK_LIST_FOREACH_SAFE(pos, tmp, &s->chunks)
        free(HK_LIST_ENTRY(pos, sim_chunk, link));
    hk_list_init(&s->chunks);
    s->queued = 0;
}

sim_msg *msg_new_ctl(sim_msg_type type)
{
    sim_msg *m = malloc(sizeof *m);
    if (!m)
        abort();
    m->type = (uint8_t)type;
    m->refs = 1;
    m->len = 0;
    m->nparts = 0;
    return m;
}

void msg_free(sim_msg *m)
{
    free(m);
}

void msg_release(sim_msg *m)
{
    assert(m->refs > 0);
    if (--m->refs == 0)
        free(m);
}

/* ---- outboxes (see stream.h: why sends are not detached) ---- */

/* Reaping costs one simcall per send, but every completion the issuer waits for scans its activity list, whose nodes
 * are cache misses: measured at 4,000 peers, reaping from 2-4 pending sends on is fastest (7.3-7.6 s of CPU against
 * 8.0-9.1 s from 32 on and 8.0-9.4 s never reaping before the actor ends); at 10,000 peers 2 is a little faster
 * than 4 and holds 19 MiB less (674 MiB peak RSS). */
#define OUTBOX_REAP_AT 2u

void msg_put(sim_outbox *ob, sg_mailbox_t mb, sim_msg *m)
{
    if (ob->n == ob->cap) {
        uint32_t cap = ob->cap ? ob->cap * 2 : 8;
        sim_sent *v = realloc(ob->v, cap * sizeof *v);
        if (!v)
            abort();
        ob->v = v;
        ob->cap = cap;
    }
    m->refs = 2; /* the receiver's and ours */
    long size = m->type == MSG_STOP ? 0 : (long)m->len + SIM_MSG_HEADER;
    ob->waiting = m; /* in flight but not recorded yet: the actor must not be killed during the simcall */
    sg_comm_t comm = sg_mailbox_put_async(mb, m, size);
    ob->waiting = NULL;
    ob->v[ob->n++] = (sim_sent){.comm = comm, .m = m};
}

/* The receiver got it: the communication is done, waiting on it returns at once. */
static bool delivered(const sim_sent *e)
{
    return e->m->refs == 1;
}

bool outbox_all_delivered(const sim_outbox *ob)
{
    if (ob->waiting && ob->waiting->refs != 1)
        return false;
    for (uint32_t i = 0; i < ob->n; i++)
        if (!delivered(&ob->v[i]))
            return false;
    return true;
}

/* Takes entry i out before waiting on it: an actor killed during the wait (the end of the simulation) must find its
 * outbox consistent in its exit callback; the handle is then released by the interrupted simcall (C++ unwinding),
 * the message by outbox_drop through ob->waiting. */
static sim_sent take(sim_outbox *ob, uint32_t i)
{
    assert(i < ob->n && !ob->waiting);
    sim_sent e = ob->v[i];
    ob->v[i] = ob->v[--ob->n];
    ob->waiting = e.m;
    return e;
}

void outbox_reap(sim_outbox *ob)
{
    if (ob->n < OUTBOX_REAP_AT)
        return;
    uint32_t i = 0;
    while (i < ob->n) {
        if (!delivered(&ob->v[i])) {
            i++;
            continue;
        }
        sim_sent e = take(ob, i);
        sg_comm_wait(e.comm); /* done: returns at once, takes it out of our activity list, drops the handle */
        ob->waiting = NULL;
        msg_release(e.m);
    }
}

void outbox_close(sim_outbox *ob)
{
    while (ob->n > 0) {
        if (delivered(&ob->v[ob->n - 1])) {
            sim_sent e = ob->v[--ob->n];
            sg_comm_unref(e.comm); /* done: the cancel of an ending actor leaves it alone, no need to wait */
            msg_release(e.m);
            continue;
        }
        sim_sent e = take(ob, ob->n - 1);
        if (sg_comm_wait(e.comm) != SG_OK)
            e.m->refs = 1; /* failed (its receiver was killed): nobody will ever get it */
        ob->waiting = NULL;
        msg_release(e.m);
    }
    free(ob->v);
    ob->v = NULL;
    ob->cap = 0;
}

void outbox_drop(sim_outbox *ob)
{
    for (uint32_t i = 0; i < ob->n; i++) {
        sg_comm_unref(ob->v[i].comm); /* the actor's activity list still holds the communication: nothing dies here */
        msg_release(ob->v[i].m);
    }
    if (ob->waiting)
        msg_release(ob->waiting);
    ob->waiting = NULL;
    free(ob->v);
    ob->v = NULL;
    ob->n = ob->cap = 0;
}

static void outbox_exit(int failed, void *data)
{
    (void)failed;
    outbox_drop(data); /* empty unless killed */
    free(data);
}

sim_outbox *outbox_new_for_self(void)
{
    sim_outbox *box = calloc(1, sizeof *box);
    if (!box)
        abort();
    sg_actor_on_exit(outbox_exit, box);
    return box;
}
