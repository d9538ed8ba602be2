/* tracker_udp: owns the BEP 15 packet layouts (connect, announce with BEP 41 URLData, replies) and the timing of a
 * tracker's connection id (see tracker_udp.h). */
#include "tracker_udp.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void be64(uint8_t *p, uint64_t v)
{
    be32(p, (uint32_t)(v >> 32));
    be32(p + 4, (uint32_t)v);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

size_t hk_udp_connect_request(uint8_t out[HK_UDP_CONNECT_LEN], uint32_t tid)
{
    be64(out, HK_UDP_PROTOCOL_ID);
    be32(out + 8, HK_UDP_ACTION_CONNECT);
    be32(out + 12, tid);
    return HK_UDP_CONNECT_LEN;
}

size_t hk_udp_announce_request(uint8_t *out, size_t cap, uint64_t conn_id, uint32_t tid, const hk_announce_params *p,
                               const char *path, size_t path_len)
{
    size_t need = HK_UDP_ANNOUNCE_LEN;
    if (path && path_len > 0)
        need += path_len + 2 * ((path_len + 254) / 255) + 1;
    if (cap < need)
        return 0;
    be64(out, conn_id);
    be32(out + 8, HK_UDP_ACTION_ANNOUNCE);
    be32(out + 12, tid);
    memcpy(out + 16, p->info_hash, 20);
    memcpy(out + 36, p->peer_id, 20);
    be64(out + 56, p->downloaded);
    be64(out + 64, p->left);
    be64(out + 72, p->uploaded);
    be32(out + 80, (uint32_t)p->event);
    be32(out + 84, 0);            /* ip: the sender's address */
    be32(out + 88, p->key);
    be32(out + 92, (uint32_t)p->numwant);
    out[96] = (uint8_t)(p->port >> 8);
    out[97] = (uint8_t)p->port;
    size_t n = HK_UDP_ANNOUNCE_LEN;
    if (path && path_len > 0) {
        for (size_t off = 0; off < path_len;) {
            size_t chunk = path_len - off > 255 ? 255 : path_len - off;
            out[n++] = 2; /* URLData */
            out[n++] = (uint8_t)chunk;
            memcpy(out + n, path + off, chunk);
            n += chunk;
            off += chunk;
        }
        out[n++] = 0; /* EndOfOptions */
    }
    assert(n == need);
    return n;
}

static int fail(char *err, size_t errlen, size_t off, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "at byte %zu: %s", off, what);
    return -1;
}

int hk_udp_reply_decode(const uint8_t *buf, size_t len, uint8_t family, hk_udp_reply *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len < 8)
        return fail(err, errlen, len, "datagram shorter than 8 bytes");
    uint32_t action = rd32(buf);
    out->tid = rd32(buf + 4);
    switch (action) {
    case HK_UDP_ACTION_CONNECT:
        if (len != 16)
            return fail(err, errlen, len < 16 ? len : 16, "connect reply is not 16 bytes");
        out->action = HK_UDP_ACTION_CONNECT;
        out->conn_id = rd64(buf + 8);
        return 0;
    case HK_UDP_ACTION_ANNOUNCE: {
        if (len < 20)
            return fail(err, errlen, len, "announce reply shorter than 20 bytes");
        size_t entry = family == 6 ? 18 : 6;
        if (family != 4 && family != 6)
            return fail(err, errlen, 0, "unknown address family");
        if ((len - 20) % entry != 0)
            return fail(err, errlen, 20 + (len - 20) / entry * entry,
                        family == 6 ? "partial IPv6 peer entry (18 bytes each)"
                                    : "partial IPv4 peer entry (6 bytes each)");
        out->action = HK_UDP_ACTION_ANNOUNCE;
        out->interval = rd32(buf + 8);
        out->leechers = rd32(buf + 12);
        out->seeders = rd32(buf + 16);
        out->npeers = (uint32_t)((len - 20) / entry);
        return 0;
    }
    case HK_UDP_ACTION_ERROR:
        out->action = HK_UDP_ACTION_ERROR;
        hk_printable(buf + 8, len - 8, out->message, sizeof out->message);
        return 0;
    case HK_UDP_ACTION_SCRAPE:
        return fail(err, errlen, 0, "unexpected scrape reply");
    default:
        return fail(err, errlen, 0, "unknown action");
    }
}

hk_time hk_udp_timeout(unsigned n)
{
    if (n > HK_UDP_MAX_N)
        n = HK_UDP_MAX_N;
    return HK_SECONDS(15) << n;
}

void hk_udp_conn_init(hk_udp_conn *c)
{
    memset(c, 0, sizeof *c);
    c->state = HK_UDP_CONN_NONE;
    c->deadline = HK_TIME_NEVER;
}

bool hk_udp_conn_usable(const hk_udp_conn *c, hk_time now)
{
    return c->state == HK_UDP_CONN_READY && now < c->valid_until;
}

void hk_udp_conn_start(hk_udp_conn *c, uint32_t tid, hk_time now)
{
    c->state = HK_UDP_CONN_CONNECTING;
    c->attempt = 0;
    c->tid = tid;
    c->sent_at = now;
    c->deadline = now + hk_udp_timeout(0);
}

bool hk_udp_conn_timeout(hk_udp_conn *c, uint32_t tid, hk_time now, unsigned max_n)
{
    if (max_n > HK_UDP_MAX_N)
        max_n = HK_UDP_MAX_N;
    if (c->state != HK_UDP_CONN_CONNECTING || c->attempt >= max_n) {
        hk_udp_conn_init(c);
        return false;
    }
    c->attempt++;
    c->tid = tid;
    c->deadline = now + hk_udp_timeout(c->attempt);
    return true;
}

bool hk_udp_conn_reply(hk_udp_conn *c, uint32_t tid, uint64_t conn_id, hk_time now)
{
    if (c->state != HK_UDP_CONN_CONNECTING || c->tid != tid)
        return false;
    c->state = HK_UDP_CONN_READY;
    c->conn_id = conn_id;
    c->valid_until = now + HK_UDP_CONN_VALIDITY;
    c->deadline = HK_TIME_NEVER;
    return true;
}

void hk_udp_conn_reset(hk_udp_conn *c)
{
    hk_udp_conn_init(c);
}
