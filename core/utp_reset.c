/* utp_reset: the uTP header parser and the rate-bounded reset responder (see utp_reset.h). */
#include "utp_reset.h"

#include <string.h>

#include "hash.h"

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

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

hk_utp_parse_result hk_utp_parse(const uint8_t *data, size_t len, hk_utp_header *h)
{
    if (len < HK_UTP_HEADER)
        return HK_UTP_SHORT;
    h->type = data[0] >> 4;
    h->version = data[0] & 0x0f;
    if (h->version != 1)
        return HK_UTP_BAD_VERSION;
    if (h->type > HK_UTP_ST_SYN)
        return HK_UTP_BAD_TYPE;
    h->extension = data[1];
    h->connection_id = get16(data + 2);
    h->timestamp_us = get32(data + 4);
    h->timestamp_diff_us = get32(data + 8);
    h->wnd_size = get32(data + 12);
    h->seq_nr = get16(data + 16);
    h->ack_nr = get16(data + 18);
    h->extensions = 0;
    size_t off = HK_UTP_HEADER;
    for (uint8_t next = h->extension; next != 0;) {
        if (h->extensions == HK_UTP_MAX_EXTENSIONS || len - off < 2 || len - off - 2 < data[off + 1])
            return HK_UTP_BAD_EXTENSION;
        next = data[off];
        off += 2u + data[off + 1];
        h->extensions++;
    }
    h->payload_off = off;
    return HK_UTP_OK;
}

size_t hk_utp_reset_for_syn(const hk_utp_header *syn, uint32_t now_us, uint16_t seq_nr, uint8_t out[HK_UTP_HEADER])
{
    out[0] = (uint8_t)(HK_UTP_ST_RESET << 4 | 1);
    out[1] = 0;                                  /* no extension */
    put16(out + 2, syn->connection_id);          /* the initiator's receive id, as a responder sends */
    put32(out + 4, now_us);
    put32(out + 8, now_us - syn->timestamp_us);  /* wraps, as every uTP timestamp */
    put32(out + 12, 0);                          /* wnd_size: nothing will be received */
    put16(out + 16, seq_nr);
    put16(out + 18, syn->seq_nr);                /* acknowledges the SYN, the initiator's only packet */
    return HK_UTP_HEADER;
}

void hk_utp_limits_default(hk_utp_limits *l)
{
    l->per_source_rate = 8;
    l->per_source_burst = 32;
    l->global_rate = 1000;
    l->global_burst = 1000;
    l->answer_libutp = false;
}

void hk_utp_responder_init(hk_utp_responder *r, const hk_utp_limits *lim, uint64_t seed, hk_time now)
{
    hk_utp_limits d;
    if (!lim) {
        hk_utp_limits_default(&d);
        lim = &d;
    }
    memset(r, 0, sizeof *r);
    hk_tb_init(&r->global, lim->global_rate ? lim->global_rate : 1, lim->global_burst ? lim->global_burst : 1, now);
    for (size_t i = 0; i < HK_UTP_RATE_SLOTS; i++)
        hk_tb_init(&r->slots[i], lim->per_source_rate ? lim->per_source_rate : 1,
                   lim->per_source_burst ? lim->per_source_burst : 1, now);
    r->seed = seed;
    r->answer_libutp = lim->answer_libutp;
    r->seq_state = hk_mix64(seed ^ HK_GOLDEN64);
}

/* The rate slot of a source: its IPv4 address, or its IPv6 /64 (one host may hold a whole /64), with the seed. */
static size_t source_slot(const hk_utp_responder *r, const hk_addr *from)
{
    uint64_t hi = 0, lo = 0;
    if (from->family == 4) {
        memcpy(&lo, from->ip, 4);
        hi = 4;
    } else {
        memcpy(&lo, from->ip, 8);
        hi = 6;
    }
    return (size_t)(hk_mix64(hk_mix64(lo ^ r->seed) ^ hi) % HK_UTP_RATE_SLOTS);
}

size_t hk_utp_respond(hk_utp_responder *r, const uint8_t *data, size_t len, const hk_addr *from, hk_time now,
                      uint8_t out[HK_UTP_HEADER])
{
    hk_utp_header h;
    if (hk_utp_parse(data, len, &h) != HK_UTP_OK) {
        r->stats.malformed++;
        return 0;
    }
    if (h.type != HK_UTP_ST_SYN) {
        r->stats.ignored++;
        return 0;
    }
    r->stats.syn++;
    if (h.extensions > 0 && h.extension == 2) { /* libutp's extension bits: see the contract */
        r->stats.libutp_syn++;
        if (!r->answer_libutp)
            return 0;
    }
    hk_token_bucket *src = &r->slots[source_slot(r, from)];
    hk_tb_refill(src, now);
    hk_tb_refill(&r->global, now);
    if (!hk_tb_has(src, 1) || !hk_tb_has(&r->global, 1)) {
        r->stats.rate_limited++;
        return 0;
    }
    hk_tb_take(src, 1);
    hk_tb_take(&r->global, 1);
    r->stats.resets++;
    uint16_t seq = (uint16_t)hk_splitmix64(&r->seq_state);
    return hk_utp_reset_for_syn(&h, (uint32_t)(now / 1000u), seq, out);
}
