/* conn: owns connection reference counts, the deferred-op queue and the end of an op (see conn.h). */
#include "conn.h"

#include <assert.h>
#include <stdlib.h>

void conn_ref(hk_conn *c)
{
    c->refs++;
}

void conn_unref(hk_conn *c)
{
    assert(c->refs > 0);
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

bool op_finish(sim_outbox *ob, hk_conn *c, sim_msg *m, sg_mailbox_t mb, bool drop, sg_actor_t victim)
{
    if (c)
        conn_unref(c);
    if (m) {
        if (drop)
            msg_free(m);
        else
            msg_put(ob, mb, m);
        return true;
    }
    if (victim) {
        sg_actor_kill(victim);
        return true;
    }
    return false;
}

sim_msg *conn_stop_receiver(hk_conn *c, bool seeder_half, sg_mailbox_t *mb, bool *drop, sg_actor_t *victim)
{
    sg_actor_t receiver = seeder_half ? c->s_actor : c->p_actor;
    bool *stopping = seeder_half ? &c->s_stopping : &c->p_stopping;
    if (receiver == sg_actor_self() || !receiver || *stopping)
        return NULL; /* its loop ends by itself (the connection is closed on its side) */
    if (outbox_all_delivered(seeder_half ? &c->s_box : &c->p_box)) {
        *victim = receiver;
        return NULL;
    }
    /* killing it would cancel its sends in flight: wake it up instead, it ends by itself */
    *stopping = true;
    *mb = seeder_half ? c->mb_s : c->mb_p;
    *drop = false;
    return msg_new_ctl(MSG_STOP);
}
