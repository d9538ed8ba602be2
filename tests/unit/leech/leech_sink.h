/* leech_sink: the scripted seeder's end of a leecher's I/O face (leech.h's lk_io), shared by the leech/ unit tests:
 * it keeps every byte the peer sends (out, n; taken for a test that consumes them in order), the connection's end
 * (ends, why, fin) and the choke changes it reported. sink_io() is the lk_io that fills it. */
#ifndef HEKATE_TEST_LEECH_SINK_H
#define HEKATE_TEST_LEECH_SINK_H

#include <criterion/criterion.h>
#include <string.h>

#include "leech.h"

typedef struct sink {
    uint8_t out[65536];
    size_t n, taken;
    int ends;
    lk_end why;
    bool fin;
    int unchokes, chokes;
} sink;

static void s_send(void *ctx, const uint8_t *b, size_t n)
{
    sink *s = ctx;
    cr_assert_leq(s->n + n, sizeof s->out);
    memcpy(s->out + s->n, b, n);
    s->n += n;
}

static void s_end(void *ctx, lk_end why, bool fin)
{
    sink *s = ctx;
    s->ends++;
    s->why = why;
    s->fin = fin;
}

static void s_choke(void *ctx, bool unchoked)
{
    sink *s = ctx;
    if (unchoked)
        s->unchokes++;
    else
        s->chokes++;
}

static inline lk_io sink_io(sink *s)
{
    return (lk_io){.ctx = s, .send = s_send, .end = s_end, .choke = s_choke};
}

#endif
