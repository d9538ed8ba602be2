/* utp_conn: one uTP connection: packets in flight over a fixed send ring, in-order delivery with bounded reorder
 * slots, ACKs, LEDBAT congestion control and BEP 29 timeouts (see utp_conn.h). */
#include "utp_conn.h"

#include <stdlib.h>
#include <string.h>

#define MSS HK_UTP_MAX_PAYLOAD
#define SLOT_BYTES 2048
#define MAX_REORDER 64
#define MIN_RTO HK_MILLIS(500)
#define MAX_RTO HK_SECONDS(8)
#define TARGET_US 100000          /* LEDBAT's target queuing delay */
#define BASE_WINDOW HK_SECONDS(60) /* base delay: least of this minute's and the last one's */
#define SYN_IDLE HK_SECONDS(10) /* accepted, nothing heard since the SYN: its source may be forged */
#define FIN_WAIT HK_SECONDS(30)  /* our FIN acknowledged: how long a quiet peer's FIN is awaited */

typedef struct pkt_rec {
    uint64_t off;          /* absolute offset of the payload in the send stream */
    hk_time sent;
    uint16_t len;
    uint8_t tx;            /* transmissions */
    bool sacked;           /* the peer's selective ack says it has it */
    uint8_t type;          /* HK_UTP_ST_DATA, _FIN or _SYN */
} pkt_rec;

typedef struct slot {
    bool used, fin;
    uint16_t seq, len;
} slot;

struct hk_utp_conn {
    hk_utp_conn_ops ops;
    void *ctx;
    hk_utp_conn_limits lim;
    hk_utp_state state;
    bool acceptor;
    uint16_t recv_id, send_id;
    /* send side */
    uint8_t *ring;
    size_t ring_cap;
    uint64_t ring_acked, ring_sent, ring_end;   /* absolute stream offsets: acked <= sent <= end */
    uint16_t seq_nr;                           /* next to send */
    uint16_t acked_nr;                         /* last acknowledged by the peer */
    unsigned inflight;                         /* packets acked_nr+1 .. seq_nr-1 */
    size_t inflight_bytes;
    pkt_rec recs[HK_UTP_MAX_INFLIGHT];
    bool fin_queued, fin_sent, fin_acked;
    size_t cwnd, ssthresh;
    uint32_t peer_wnd;
    hk_time rtt, rtt_var, rto, last_progress, probe_at;
    bool have_rtt, recovering;
    uint16_t recover_seq;
    unsigned timeouts, dup_acks;
    uint32_t base[2], qdelay_us;               /* LEDBAT: base delays (this minute, the last) and queuing delay */
    hk_time base_epoch;
    bool have_base;
    /* receive side */
    uint16_t ack_nr;                           /* last in-order seq_nr received */
    bool eof;
    bool heard;                                /* a packet after the SYN (a forged SYN's source never sends one) */
    uint32_t reply_micro;
    hk_time last_recv;
    size_t reorder_bytes;
    slot slots[MAX_REORDER];
    uint8_t *slot_data;
    hk_utp_conn_stats stats;
};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void hk_utp_conn_limits_default(hk_utp_conn_limits *l)
{
    l->send_buffer = 128 * 1024;
    l->reorder_slots = 16;
    l->idle_timeout = HK_SECONDS(120);
}

static void fix_limits(hk_utp_conn_limits *l)
{
    if (l->send_buffer < 2 * MSS)
        l->send_buffer = 2 * MSS;
    if (l->reorder_slots > MAX_REORDER)
        l->reorder_slots = MAX_REORDER;
    if (!l->idle_timeout)
        l->idle_timeout = HK_SECONDS(120);
}

size_t hk_utp_conn_memory(const hk_utp_conn_limits *lim)
{
    hk_utp_conn_limits l;
    if (lim)
        l = *lim;
    else
        hk_utp_conn_limits_default(&l);
    fix_limits(&l);
    return sizeof(hk_utp_conn) + l.send_buffer + (size_t)l.reorder_slots * SLOT_BYTES;
}

hk_utp_conn *hk_utp_conn_new(const hk_utp_conn_limits *lim, const hk_utp_conn_ops *ops, void *ctx)
{
    hk_utp_conn_limits l;
    if (lim)
        l = *lim;
    else
        hk_utp_conn_limits_default(&l);
    fix_limits(&l);
    hk_utp_conn *c = calloc(1, hk_utp_conn_memory(&l));
    if (!c)
        return NULL;
    c->ops = *ops;
    c->ctx = ctx;
    c->lim = l;
    c->state = HK_UTP_CLOSED;
    c->ring = (uint8_t *)(c + 1);
    c->ring_cap = l.send_buffer;
    c->slot_data = c->ring + l.send_buffer;
    c->cwnd = 2 * MSS;
    c->ssthresh = l.send_buffer;
    c->rto = HK_SECONDS(1);
    return c;
}

void hk_utp_conn_free(hk_utp_conn *c)
{
    free(c);
}

static uint32_t micros(hk_time now)
{
    return (uint32_t)(now / 1000u);
}

static uint32_t advertised(const hk_utp_conn *c)
{
    size_t room = c->ops.room(c->ctx);
    room = room > c->reorder_bytes ? room - c->reorder_bytes : 0;
    return room > UINT32_MAX ? UINT32_MAX : (uint32_t)room;
}

static void header(const hk_utp_conn *c, uint8_t *p, uint8_t type, uint16_t id, uint16_t seq, hk_time now)
{
    p[0] = (uint8_t)(type << 4 | 1);
    p[1] = 0;
    put16(p + 2, id);
    put32(p + 4, micros(now));
    put32(p + 8, c->reply_micro);
    put32(p + 12, advertised(c));
    put16(p + 16, seq);
    put16(p + 18, c->ack_nr);
}

static void send_state(hk_utp_conn *c, hk_time now)
{
    uint8_t p[HK_UTP_HEADER];
    header(c, p, HK_UTP_ST_STATE, c->send_id, c->seq_nr, now);
    c->stats.packets_sent++;
    c->ops.send(c->ctx, p, sizeof p);
}

static void close_conn(hk_utp_conn *c, hk_utp_close_reason why)
{
    if (c->state == HK_UTP_CLOSED)
        return;
    c->state = HK_UTP_CLOSED;
    c->ops.closed(c->ctx, why);
}

static pkt_rec *rec_of(hk_utp_conn *c, uint16_t seq)
{
    return &c->recs[seq % HK_UTP_MAX_INFLIGHT];
}

/* (Re)sends one packet of the flight with the current ack_nr, window and timestamps. */
static void transmit(hk_utp_conn *c, uint16_t seq, hk_time now)
{
    pkt_rec *r = rec_of(c, seq);
    uint8_t p[HK_UTP_MAX_PACKET];
    uint16_t id = r->type == HK_UTP_ST_SYN ? c->recv_id : c->send_id;
    header(c, p, r->type, id, seq, now);
    size_t at = (size_t)(r->off % c->ring_cap), first = r->len;
    if (first > c->ring_cap - at)
        first = c->ring_cap - at;
    memcpy(p + HK_UTP_HEADER, c->ring + at, first);
    memcpy(p + HK_UTP_HEADER + first, c->ring, r->len - first);
    if (r->tx++)
        c->stats.retransmits++;
    else
        c->stats.bytes_sent += r->len;
    r->sent = now;
    c->stats.packets_sent++;
    c->ops.send(c->ctx, p, HK_UTP_HEADER + (size_t)r->len);
}

/* A new packet of `len` stream bytes at ring_sent (or a SYN/FIN of none). */
static void push_packet(hk_utp_conn *c, uint8_t type, uint16_t len, hk_time now)
{
    pkt_rec *r = rec_of(c, c->seq_nr);
    r->off = c->ring_sent;
    r->len = len;
    r->tx = 0;
    r->sacked = false;
    r->type = type;
    c->ring_sent += len;
    if (c->inflight == 0)
        c->last_progress = now;
    c->inflight++;
    c->inflight_bytes += len;
    uint16_t seq = c->seq_nr++;
    transmit(c, seq, now);
}

static void flush(hk_utp_conn *c, hk_time now)
{
    if (c->state != HK_UTP_CONNECTED)
        return;
    size_t window = c->cwnd < c->peer_wnd ? c->cwnd : c->peer_wnd;
    while (c->inflight < HK_UTP_MAX_INFLIGHT) {
        uint64_t unsent = c->ring_end - c->ring_sent;
        if (unsent == 0) {
            if (c->fin_queued && !c->fin_sent) {
                c->fin_sent = true;
                push_packet(c, HK_UTP_ST_FIN, 0, now);
            }
            return;
        }
        uint16_t len = (uint16_t)(unsent < MSS ? unsent : MSS);
        if (c->inflight_bytes + len > window) {
            if (c->inflight_bytes)
                return;
            if (c->peer_wnd == 0) { /* a zero window: one packet after rto probes it */
                if (!c->probe_at)
                    c->probe_at = now + c->rto;
                if (now < c->probe_at)
                    return;
            }
        }
        c->probe_at = 0;
        push_packet(c, HK_UTP_ST_DATA, len, now);
    }
}

static void sample_rtt(hk_utp_conn *c, hk_time sample)
{
    if (!c->have_rtt) {
        c->rtt = sample;
        c->rtt_var = sample / 2;
        c->have_rtt = true;
    } else {
        hk_time delta = c->rtt > sample ? c->rtt - sample : sample - c->rtt;
        c->rtt_var = c->rtt_var + (delta > c->rtt_var ? (delta - c->rtt_var) / 4 : 0) -
                     (delta < c->rtt_var ? (c->rtt_var - delta) / 4 : 0);
        c->rtt = c->rtt + (sample > c->rtt ? (sample - c->rtt) / 8 : 0) - (sample < c->rtt ? (c->rtt - sample) / 8 : 0);
    }
    c->rto = c->rtt + 4 * c->rtt_var;
    if (c->rto < MIN_RTO)
        c->rto = MIN_RTO;
    if (c->rto > MAX_RTO)
        c->rto = MAX_RTO;
}

/* One-way delay as the peer reports it (timestamp_difference: its receive time minus our send time, any clock
 * offset included): the base delay is the least seen over the last one to two minutes, the queuing delay this sample
 * above it (BEP 29's LEDBAT). 0 (the peer had no sample yet) is not a sample. */
static void delay_sample(hk_utp_conn *c, uint32_t d, hk_time now)
{
    if (d == 0)
        return;
    if (!c->have_base) {
        c->base[0] = c->base[1] = d;
        c->base_epoch = now;
        c->have_base = true;
    }
    if (now - c->base_epoch >= BASE_WINDOW) {
        c->base[1] = c->base[0];
        c->base[0] = d;
        c->base_epoch = now;
    }
    if ((int32_t)(d - c->base[0]) < 0)
        c->base[0] = d;
    uint32_t b = (int32_t)(c->base[1] - c->base[0]) < 0 ? c->base[1] : c->base[0];
    c->qdelay_us = d - b;
}

/* Slow start (doubling per rtt) until ssthresh or until the queuing delay passes half the target; then LEDBAT: cwnd
 * moves by at most one packet per window, up below the 100 ms target, down above it (never under one packet). */
static void grow_cwnd(hk_utp_conn *c, size_t acked)
{
    if (c->cwnd < c->ssthresh && c->qdelay_us > TARGET_US / 2)
        c->ssthresh = c->cwnd;
    if (c->cwnd < c->ssthresh) {
        c->cwnd += acked;
    } else {
        int64_t off = (int64_t)TARGET_US - (int64_t)c->qdelay_us;
        if (off < -(int64_t)TARGET_US)
            off = -(int64_t)TARGET_US;
        int64_t delta = (int64_t)MSS * off / TARGET_US * (int64_t)acked / (int64_t)c->cwnd;
        int64_t w = (int64_t)c->cwnd + (delta ? delta : (off > 0));
        c->cwnd = w < MSS ? MSS : (size_t)w;
    }
    if (c->cwnd > c->ring_cap)
        c->cwnd = c->ring_cap;
}

static void lose(hk_utp_conn *c, bool timeout)
{
    c->ssthresh = c->cwnd / 2 > 2 * MSS ? c->cwnd / 2 : 2 * MSS;
    c->cwnd = timeout ? MSS : c->ssthresh;
    c->recovering = true;
    c->recover_seq = (uint16_t)(c->seq_nr - 1);
}

/* A selective ack (extension 1): bit i of the mask is seq_nr ack + 2 + i. Those packets are marked; a packet with at
 * least 3 marked ones after it is taken as lost and resent, if it was sent only once, up to 4 per ack. */
static void on_sack(hk_utp_conn *c, uint16_t ack, const uint8_t *mask, size_t len, hk_time now)
{
    if ((uint16_t)(ack - c->acked_nr) != 0 || !c->inflight)
        return;
    unsigned bits = (unsigned)len * 8, last = 0, marked = 0;
    for (unsigned i = 0; i < bits && i + 1 < c->inflight; i++) {
        if (mask[i / 8] >> (i % 8) & 1) {
            rec_of(c, (uint16_t)(ack + 2 + i))->sacked = true;
            last = i + 2; /* offset from ack of the newest marked */
            marked++;
        }
    }
    if (marked < 3)
        return;
    unsigned resent = 0, after = marked;
    for (unsigned d = 1; d < last && resent < 4 && after >= 3; d++) {
        pkt_rec *r = rec_of(c, (uint16_t)(ack + d));
        if (r->sacked) {
            after--;
            continue;
        }
        if (r->tx == 1) { /* a lost retransmission waits for the timeout */
            if (!c->recovering)
                lose(c, false);
            c->stats.fast_retransmits++;
            transmit(c, (uint16_t)(ack + d), now);
            resent++;
        }
    }
}

/* The selective-ack extension of a packet, if any: its mask and length, or NULL. */
static const uint8_t *find_sack(const uint8_t *data, size_t len, uint8_t first, size_t *mask_len)
{
    size_t off = HK_UTP_HEADER;
    for (uint8_t type = first; type != 0 && off + 2 <= len;) {
        uint8_t next = data[off], n = data[off + 1];
        if (off + 2 + n > len)
            return NULL;
        if (type == 1 && n >= 4) {
            *mask_len = n;
            return data + off + 2;
        }
        type = next;
        off += 2u + n;
    }
    return NULL;
}

/* The peer acknowledged everything up to ack_nr. */
static void on_ack(hk_utp_conn *c, uint16_t ack, uint8_t type, hk_time now)
{
    uint16_t n = (uint16_t)(ack - c->acked_nr);
    if (n == 0 || n > c->inflight) {
        if (n == 0 && c->inflight && type == HK_UTP_ST_STATE && ++c->dup_acks == 3) {
            c->stats.fast_retransmits++;
            lose(c, false);
            transmit(c, (uint16_t)(c->acked_nr + 1), now);
        }
        return;
    }
    size_t bytes = 0;
    for (uint16_t i = 0; i < n; i++) {
        pkt_rec *r = rec_of(c, (uint16_t)(c->acked_nr + 1));
        if (r->tx == 1 && i == n - 1) /* the newest only: older ones may have waited behind a hole */
            sample_rtt(c, now - r->sent);
        if (r->type == HK_UTP_ST_FIN)
            c->fin_acked = true;
        bytes += r->len;
        c->ring_acked = r->off + r->len;
        c->acked_nr++;
    }
    c->inflight -= n;
    c->inflight_bytes -= bytes;
    c->timeouts = 0;
    c->dup_acks = 0;
    c->last_progress = now;
    grow_cwnd(c, bytes ? bytes : 1);
    if (c->recovering) {
        if ((int16_t)(c->acked_nr - c->recover_seq) >= 0)
            c->recovering = false;
        else if (c->inflight)
            transmit(c, (uint16_t)(c->acked_nr + 1), now); /* a partial ACK: the next hole is lost too */
    }
}

static void deliver_in_order(hk_utp_conn *c)
{
    for (;;) {
        uint16_t next = (uint16_t)(c->ack_nr + 1);
        slot *s = &c->slots[next % c->lim.reorder_slots];
        if (!s->used || s->seq != next)
            return;
        if (s->fin) {
            s->used = false;
            c->ack_nr = next;
            c->eof = true;
            c->ops.deliver(c->ctx, NULL, 0);
            return;
        }
        if (s->len > c->ops.room(c->ctx))
            return;
        s->used = false;
        c->reorder_bytes -= s->len;
        c->ack_nr = next;
        c->stats.bytes_delivered += s->len;
        c->ops.deliver(c->ctx, c->slot_data + (size_t)(s - c->slots) * SLOT_BYTES, s->len);
    }
}

static void hold(hk_utp_conn *c, const hk_utp_header *h, const uint8_t *payload, size_t len)
{
    slot *s = &c->slots[h->seq_nr % c->lim.reorder_slots];
    if (s->used || len > SLOT_BYTES) {
        if (!s->used)
            c->stats.dropped_out_of_window++;
        else
            c->stats.duplicates++;
        return;
    }
    s->used = true;
    s->fin = h->type == HK_UTP_ST_FIN;
    s->seq = h->seq_nr;
    s->len = s->fin ? 0 : (uint16_t)len;
    memcpy(c->slot_data + (size_t)(s - c->slots) * SLOT_BYTES, payload, s->len);
    c->reorder_bytes += s->len;
}

static void on_data(hk_utp_conn *c, const hk_utp_header *h, const uint8_t *payload, size_t len, hk_time now)
{
    uint16_t d = (uint16_t)(h->seq_nr - c->ack_nr);
    if (c->eof || d == 0 || d > 0x8000) {
        c->stats.duplicates++;
    } else if (d == 1) {
        if (h->type == HK_UTP_ST_FIN) {
            c->ack_nr = h->seq_nr;
            c->eof = true;
            c->ops.deliver(c->ctx, NULL, 0);
        } else if (len > c->ops.room(c->ctx)) {
            c->stats.dropped_no_room++;
        } else {
            c->ack_nr = h->seq_nr;
            c->stats.bytes_delivered += len;
            if (len)
                c->ops.deliver(c->ctx, payload, len);
            deliver_in_order(c);
        }
    } else if (d <= c->lim.reorder_slots) {
        hold(c, h, payload, len);
    } else {
        c->stats.dropped_out_of_window++;
    }
    if (c->state != HK_UTP_CLOSED)
        send_state(c, now);
}

void hk_utp_conn_accept(hk_utp_conn *c, const hk_utp_header *syn, uint16_t isn, hk_time now)
{
    c->acceptor = true;
    c->state = HK_UTP_CONNECTED;
    c->send_id = syn->connection_id;
    c->recv_id = (uint16_t)(syn->connection_id + 1);
    c->ack_nr = syn->seq_nr;
    c->seq_nr = isn;
    c->acked_nr = (uint16_t)(isn - 1);
    c->peer_wnd = syn->wnd_size;
    c->reply_micro = micros(now) - syn->timestamp_us;
    c->last_recv = now;
    c->stats.packets_received++;
    send_state(c, now);
}

void hk_utp_conn_connect(hk_utp_conn *c, uint16_t recv_id, uint16_t isn, hk_time now)
{
    c->state = HK_UTP_SYN_SENT;
    c->recv_id = recv_id;
    c->send_id = (uint16_t)(recv_id + 1);
    c->seq_nr = isn;
    c->acked_nr = (uint16_t)(isn - 1);
    c->peer_wnd = MSS;
    c->last_recv = now;
    push_packet(c, HK_UTP_ST_SYN, 0, now);
}

int hk_utp_conn_input(hk_utp_conn *c, const uint8_t *data, size_t len, hk_time now)
{
    hk_utp_header h;
    if (c->state == HK_UTP_CLOSED || hk_utp_parse(data, len, &h) != HK_UTP_OK)
        return -1;
    if (h.type == HK_UTP_ST_SYN) {
        if (!c->acceptor || h.connection_id != c->send_id)
            return -1;
        c->last_recv = now;
        send_state(c, now); /* our STATE was lost: the SYN is repeated */
        return 0;
    }
    if (h.connection_id != c->recv_id)
        return -1;
    c->stats.packets_received++;
    c->last_recv = now;
    c->heard = true;
    c->reply_micro = micros(now) - h.timestamp_us;
    if (h.type == HK_UTP_ST_RESET) {
        close_conn(c, HK_UTP_CLOSED_RESET);
        return 0;
    }
    if (c->state == HK_UTP_SYN_SENT) {
        if (h.type != HK_UTP_ST_STATE)
            return 0;
        c->state = HK_UTP_CONNECTED;
        c->ack_nr = (uint16_t)(h.seq_nr - 1);
    }
    c->peer_wnd = h.wnd_size;
    delay_sample(c, h.timestamp_diff_us, now);
    on_ack(c, h.ack_nr, h.type, now);
    size_t mask_len;
    const uint8_t *mask = h.extension ? find_sack(data, len, h.extension, &mask_len) : NULL;
    if (mask && c->state == HK_UTP_CONNECTED)
        on_sack(c, h.ack_nr, mask, mask_len, now);
    if (h.type == HK_UTP_ST_DATA || h.type == HK_UTP_ST_FIN)
        on_data(c, &h, data + h.payload_off, len - h.payload_off, now);
    if (c->fin_acked && c->eof && c->state == HK_UTP_CONNECTED) {
        close_conn(c, HK_UTP_CLOSED_DONE);
        return 0;
    }
    flush(c, now);
    return 0;
}

size_t hk_utp_conn_writable(const hk_utp_conn *c)
{
    if (c->state == HK_UTP_CLOSED || c->fin_queued)
        return 0;
    return c->ring_cap - (size_t)(c->ring_end - c->ring_acked);
}

size_t hk_utp_conn_write(hk_utp_conn *c, const uint8_t *data, size_t len, hk_time now)
{
    size_t room = hk_utp_conn_writable(c);
    if (len > room)
        len = room;
    for (size_t done = 0; done < len;) {
        size_t at = (size_t)(c->ring_end % c->ring_cap), n = c->ring_cap - at;
        if (n > len - done)
            n = len - done;
        memcpy(c->ring + at, data + done, n);
        c->ring_end += n;
        done += n;
    }
    flush(c, now);
    return len;
}

void hk_utp_conn_shutdown(hk_utp_conn *c, hk_time now)
{
    if (c->state == HK_UTP_CLOSED || c->fin_queued)
        return;
    c->fin_queued = true;
    flush(c, now);
}

void hk_utp_conn_reset(hk_utp_conn *c, hk_time now)
{
    if (c->state == HK_UTP_CLOSED)
        return;
    uint8_t p[HK_UTP_HEADER];
    header(c, p, HK_UTP_ST_RESET, c->send_id, c->seq_nr, now);
    c->stats.packets_sent++;
    c->ops.send(c->ctx, p, sizeof p);
    close_conn(c, HK_UTP_CLOSED_RESET);
}

void hk_utp_conn_tick(hk_utp_conn *c, hk_time now)
{
    if (c->state == HK_UTP_CLOSED)
        return;
    if (now - c->last_recv >= (c->heard || !c->acceptor ? c->lim.idle_timeout : SYN_IDLE)) {
        close_conn(c, HK_UTP_CLOSED_TIMEOUT);
        return;
    }
    if (c->fin_acked && now - c->last_recv >= FIN_WAIT) {
        close_conn(c, HK_UTP_CLOSED_DONE);
        return;
    }
    if (c->inflight && now - c->last_progress >= c->rto) {
        c->stats.timeouts++;
        bool persist = c->peer_wnd == 0 && c->last_recv > c->last_progress; /* alive, its window closed */
        if (!persist && ++c->timeouts > HK_UTP_MAX_TIMEOUTS) {
            uint8_t p[HK_UTP_HEADER];
            header(c, p, HK_UTP_ST_RESET, c->send_id, c->seq_nr, now);
            c->stats.packets_sent++;
            c->ops.send(c->ctx, p, sizeof p);
            close_conn(c, HK_UTP_CLOSED_TIMEOUT);
            return;
        }
        lose(c, true);
        c->rto = c->rto * 2 > MAX_RTO ? MAX_RTO : c->rto * 2;
        c->last_progress = now;
        transmit(c, (uint16_t)(c->acked_nr + 1), now);
        return;
    }
    flush(c, now);
}

hk_time hk_utp_conn_deadline(const hk_utp_conn *c)
{
    if (c->state == HK_UTP_CLOSED)
        return UINT64_MAX;
    hk_time d = c->last_recv + (c->heard || !c->acceptor ? c->lim.idle_timeout : SYN_IDLE);
    if (c->fin_acked && c->last_recv + FIN_WAIT < d)
        d = c->last_recv + FIN_WAIT;
    if (c->inflight && c->last_progress + c->rto < d)
        d = c->last_progress + c->rto;
    if (!c->inflight && c->ring_end > c->ring_sent && c->probe_at && c->probe_at < d)
        d = c->probe_at;
    return d;
}

hk_utp_state hk_utp_conn_state(const hk_utp_conn *c)
{
    return c->state;
}

uint16_t hk_utp_conn_recv_id(const hk_utp_conn *c)
{
    return c->recv_id;
}

size_t hk_utp_conn_unacked(const hk_utp_conn *c)
{
    return (size_t)(c->ring_end - c->ring_acked);
}

bool hk_utp_conn_peer_eof(const hk_utp_conn *c)
{
    return c->eof;
}

void hk_utp_conn_stats_get(const hk_utp_conn *c, hk_utp_conn_stats *s)
{
    *s = c->stats;
    s->cwnd = c->cwnd;
    s->queuing_delay_us = c->qdelay_us;
}
