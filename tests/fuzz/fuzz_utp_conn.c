/* Fuzz target for core/utp_conn: one accepted uTP connection driven by arbitrary packets, application writes,
 * shutdowns and clock steps.
 *
 * Input: byte 0: the application's room (0, 100, 3000 or 1 MiB by bits 0-1) and the SYN's window (bits 2-3); bytes
 * 1-2: the SYN's connection id. Then records: a control byte (bit 0: patch the datagram's first 4 bytes so it is a
 * version-1 packet of type (control >> 4) % 5 with our receive id, so it reaches the connection; bit 1: then write
 * (control >> 2) * 97 bytes of application data; bit 2 with bit 3: shut down; bits 4-7 also: milliseconds * 16 the
 * clock moves, then a tick), a length byte, that many bytes (the last record takes what is left).
 * Checked: every datagram sent is a well-formed uTP packet of at most HK_UTP_MAX_PACKET bytes with our send id
 * (the SYN's connection id); delivery never exceeds the room given; no callback after closed; the send ring never
 * holds more than its size; EOF is delivered at most once and nothing after it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utp_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz {
    size_t room;
    uint16_t send_id;
    bool closed, eof;
} fz;

static void f_send(void *ctx, const uint8_t *pkt, size_t len)
{
    fz *f = ctx;
    hk_utp_header h;
    if (f->closed || len > HK_UTP_MAX_PACKET || hk_utp_parse(pkt, len, &h) != HK_UTP_OK || h.connection_id != f->send_id)
        abort();
}

static void f_deliver(void *ctx, const uint8_t *d, size_t len)
{
    fz *f = ctx;
    if (f->closed || f->eof || (d && len > f->room) || (!d && len))
        abort();
    if (!d)
        f->eof = true;
}

static size_t f_room(void *ctx)
{
    return ((fz *)ctx)->room;
}

static void f_closed(void *ctx, hk_utp_close_reason why)
{
    fz *f = ctx;
    if (f->closed || why > HK_UTP_CLOSED_TIMEOUT)
        abort();
    f->closed = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t rooms[] = { 0, 100, 3000, 1 << 20 };
    static const uint32_t wnds[] = { 0, 1000, 65536, 1 << 20 };
    static uint8_t app[64 * 97];
    if (size < 3)
        return 0;
    fz f = { .room = rooms[data[0] & 3] };
    hk_utp_conn_limits lim;
    hk_utp_conn_limits_default(&lim);
    lim.send_buffer = 16384;
    lim.reorder_slots = 8;
    static const hk_utp_conn_ops ops = { .send = f_send, .deliver = f_deliver, .room = f_room, .closed = f_closed };
    hk_utp_conn *c = hk_utp_conn_new(&lim, &ops, &f);
    if (!c)
        return 0;
    hk_utp_header syn = { .type = HK_UTP_ST_SYN, .version = 1, .connection_id = (uint16_t)(data[1] << 8 | data[2]),
                          .wnd_size = wnds[data[0] >> 2 & 3], .seq_nr = 77 };
    f.send_id = syn.connection_id;
    hk_time now = HK_SECONDS(5);
    hk_utp_conn_accept(c, &syn, 0xfffa, now);
    uint16_t recv_id = hk_utp_conn_recv_id(c);
    uint8_t dg[256];
    for (size_t off = 3; off + 2 <= size;) {
        uint8_t ctl = data[off], len = data[off + 1];
        off += 2;
        size_t n = len > size - off ? size - off : len;
        memcpy(dg, data + off, n);
        off += n;
        if ((ctl & 1) && n >= 4) {
            dg[0] = (uint8_t)(((ctl >> 4) % 5) << 4 | 1);
            dg[2] = (uint8_t)(recv_id >> 8);
            dg[3] = (uint8_t)recv_id;
        }
        (void)hk_utp_conn_input(c, dg, n, now);
        if (ctl & 2)
            (void)hk_utp_conn_write(c, app, (size_t)(ctl >> 2) * 97, now);
        if ((ctl & 12) == 12)
            hk_utp_conn_shutdown(c, now);
        now += (hk_time)(ctl >> 4) * 16 * HK_MILLIS(1);
        if (hk_utp_conn_deadline(c) <= now)
            hk_utp_conn_tick(c, now);
        if (hk_utp_conn_unacked(c) > lim.send_buffer)
            abort();
    }
    hk_utp_conn_free(c);
    return 0;
}
