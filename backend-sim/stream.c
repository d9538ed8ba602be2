/* stream: owns the simulated byte stream of one connection direction (a queue of chunks cut into ACK-clocked
 * flights), the messages that travel through mailboxes, the deferred-op queue and connection reference counts. */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

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

static sim_chunk *chunk_new(uint32_t cap, bool virt)
{
    sim_chunk *c = malloc(sizeof *c + (virt ? 0 : cap));
    if (!c)
        abort();
    c->next = NULL;
    c->len = c->off = 0;
    c->cap = virt ? 0 : cap;
    c->virt = virt;
    return c;
}

static void append(sim_stream *s, sim_chunk *c)
{
    if (s->tail)
        s->tail->next = c;
    else
        s->head = c;
    s->tail = c;
}

void stream_write(sim_stream *s, const uint8_t *bytes, uint32_t len)
{
    s->queued += len;
    while (len > 0) {
        sim_chunk *t = s->tail;
        if (!t || t->virt || t->len == t->cap) {
            t = chunk_new(len > 512 ? len : 512, false);
            append(s, t);
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
    sim_chunk *t = s->tail;
    if (t && t->virt) {
        t->len += len;
        return;
    }
    t = chunk_new(0, true);
    t->len = len;
    append(s, t);
}

sim_msg *stream_take_flight(sim_stream *s, uint32_t window)
{
    if (s->inflight || s->queued == 0)
        return NULL;
    /* first pass: size the message */
    uint32_t total = 0, nparts = 0, real = 0;
    for (sim_chunk *c = s->head; c && total < window; c = c->next) {
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
    m->len = total;
    m->nparts = nparts;
    uint8_t *dst = (uint8_t *)&m->parts[nparts];
    uint32_t left = total;
    for (uint32_t i = 0; i < nparts; i++) {
        sim_chunk *c = s->head;
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
            s->head = c->next;
            if (!s->head)
                s->tail = NULL;
            free(c);
        }
    }
    s->queued -= total;
    s->inflight = total;
    return m;
}

void stream_clear(sim_stream *s)
{
    sim_chunk *c = s->head;
    while (c) {
        sim_chunk *n = c->next;
        free(c);
        c = n;
    }
    s->head = s->tail = NULL;
    s->queued = 0;
}

sim_msg *msg_new_ctl(sim_msg_type type)
{
    sim_msg *m = malloc(sizeof *m);
    if (!m)
        abort();
    m->type = (uint8_t)type;
    m->len = 0;
    m->nparts = 0;
    return m;
}

void msg_free(void *m)
{
    free(m);
}

void msg_put(sg_mailbox_t mb, sim_msg *m)
{
    sg_comm_t comm = sg_mailbox_put_init(mb, m, (long)m->len + SIM_MSG_HEADER);
    sg_comm_detach(comm, msg_free);
}

/* ---- connections ---- */

void conn_ref(hk_conn *c)
{
    c->refs++;
}

void conn_unref(hk_conn *c)
{
    if (--c->refs > 0)
        return;
    stream_clear(&c->s_out);
    stream_clear(&c->p_out);
    free(c);
}

/* ---- deferred ops ---- */

void opq_push(sim_opq *q, sop_type type, hk_conn *c)
{
    if (q->len == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 64;
        sim_op *v = malloc(cap * sizeof *v);
        if (!v)
            abort();
        for (uint32_t i = 0; i < q->len; i++)
            v[i] = q->v[(q->head + i) % q->cap];
        free(q->v);
        q->v = v;
        q->cap = cap;
        q->head = 0;
    }
    if (c)
        conn_ref(c);
    q->v[(q->head + q->len) % q->cap] = (sim_op){.type = (uint8_t)type, .c = c};
    q->len++;
}

bool opq_pop(sim_opq *q, sim_op *out)
{
    if (q->len == 0)
        return false;
    *out = q->v[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    return true;
}

void opq_free(sim_opq *q)
{
    free(q->v);
    q->v = NULL;
    q->len = q->cap = q->head = 0;
}
