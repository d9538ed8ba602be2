/* monitor: owns the backend's independent reading of what the core sends on each connection: message framing
 * (handshake, length prefixes, fixed lengths per id), piece messages whose data must be exactly the extent of the
 * torrent they name, the choke state (unchoked count and its maximum, observed at send time) and the room the core
 * was granted (large messages beyond it are counted). It never trusts the core's own counters. */
#include <string.h>

#include "sim.h"

enum { M_HANDSHAKE = 0, M_PREFIX, M_ID, M_PIECE_HDR, M_PIECE_DATA, M_BODY };

#define MAX_MSG (1u << 20)

static void broken(hk_conn *c, const char *why)
{
    if (c->mon.broken)
        return;
    c->mon.broken = true;
    g_world->seeder.monitor_errors++;
    evlog_line(g_world->log, sim_now(), "error output c%llu: %s", (unsigned long long)c->id, why);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void on_id(hk_conn *c, uint8_t id, uint32_t rem)
{
    sim_seeder *s = &g_world->seeder;
    sim_monitor *m = &c->mon;
    int want = -1; /* exact payload length, -1: variable */
    switch (id) {
    case WIRE_CHOKE:
    case WIRE_UNCHOKE:
    case WIRE_INTERESTED:
    case WIRE_NOT_INTERESTED:
    case WIRE_HAVE_ALL:
    case WIRE_HAVE_NONE:
        want = 0;
        break;
    case WIRE_HAVE:
    case WIRE_SUGGEST:
    case WIRE_ALLOWED_FAST:
        want = 4;
        break;
    case WIRE_REQUEST:
    case WIRE_CANCEL:
    case WIRE_REJECT:
        want = 12;
        break;
    case WIRE_PORT:
        want = 2;
        break;
    case WIRE_BITFIELD:
    case WIRE_PIECE:
    case WIRE_EXTENDED:
        break;
    default:
        broken(c, "unknown message id");
        return;
    }
    if (want >= 0 && rem != (uint32_t)want) {
        broken(c, "wrong length for a fixed-size message");
        return;
    }
    hk_time now = sim_now();
    if (id == WIRE_UNCHOKE && !m->unchoked) {
        m->unchoked = true;
        s->unchoked_now++;
        if (s->unchoked_now > s->unchoked_max)
            s->unchoked_max = s->unchoked_now;
        if (!c->first_unchoke)
            c->first_unchoke = now;
    } else if (id == WIRE_CHOKE && m->unchoked) {
        m->unchoked = false;
        s->unchoked_now--;
        if (c->first_unchoke && !c->first_choke_after_unchoke)
            c->first_choke_after_unchoke = now;
    }
    if (id == WIRE_PIECE || id == WIRE_EXTENDED) {
        c->room_left -= (int64_t)rem + 5;
        if (c->room_left < 0) {
            s->room_overruns++;
            evlog_line(g_world->log, now, "error room-overrun c%llu", (unsigned long long)c->id);
            c->room_left = INT64_MAX / 2; /* count once per grant */
        }
    }
    if (id == WIRE_PIECE) {
        if (rem < 9) {
            broken(c, "piece message too short");
            return;
        }
        m->state = M_PIECE_HDR;
        m->need = 8;
        m->have = 0;
        m->hdr[12] = 0;
        /* remaining data length kept in `need` of M_PIECE_DATA later */
        m->piece_off = rem - 8; /* temporarily: data length */
        return;
    }
    if (rem == 0) {
        m->state = M_PREFIX;
        m->need = 4;
        m->have = 0;
    } else {
        m->state = M_BODY;
        m->need = rem;
    }
}

void monitor_bytes(hk_conn *c, const uint8_t *p, uint32_t len)
{
    sim_monitor *m = &c->mon;
    while (len > 0 && !m->broken) {
        uint32_t n;
        switch (m->state) {
        case M_HANDSHAKE:
            if (m->need == 0)
                m->need = WIRE_HANDSHAKE_LEN;
            n = len < m->need ? len : m->need;
            if (m->have == 0 && p[0] != WIRE_PSTRLEN) {
                broken(c, "handshake does not start with 19");
                return;
            }
            m->have += n;
            m->need -= n;
            p += n;
            len -= n;
            if (m->need == 0) {
                m->state = M_PREFIX;
                m->need = 4;
                m->have = 0;
            }
            break;
        case M_PREFIX:
            m->hdr[m->have++] = *p++;
            len--;
            if (m->have == 4) {
                uint32_t l = be32(m->hdr);
                m->have = 0;
                if (l == 0) {
                    m->need = 4; /* keep-alive */
                } else if (l > MAX_MSG) {
                    broken(c, "length prefix above 1 MiB");
                    return;
                } else {
                    m->state = M_ID;
                    m->need = l;
                }
            }
            break;
        case M_ID:
            m->id = *p++;
            len--;
            on_id(c, m->id, m->need - 1);
            break;
        case M_PIECE_HDR:
            m->hdr[m->have++] = *p++;
            len--;
            if (m->have == 8) {
                uint32_t index = be32(m->hdr), begin = be32(m->hdr + 4);
                uint32_t data = (uint32_t)m->piece_off;
                const sim_torrent *t = &g_world->torrents[c->torrent];
                if (index >= t->piece_count) {
                    broken(c, "piece index out of range");
                    return;
                }
                m->piece_off = (uint64_t)index * t->piece_length + begin;
                m->state = M_PIECE_DATA;
                m->need = data;
                m->have = 0;
            }
            break;
        case M_PIECE_DATA:
            /* block data must come from the data file (an extent), never from core-owned bytes */
            g_world->seeder.extent_mismatch++;
            broken(c, "piece data sent as bytes");
            return;
        case M_BODY:
            n = len < m->need ? len : m->need;
            m->need -= n;
            p += n;
            len -= n;
            if (m->need == 0) {
                m->state = M_PREFIX;
                m->need = 4;
                m->have = 0;
            }
            break;
        }
    }
}

void monitor_extent(hk_conn *c, const hk_extent *e)
{
    sim_monitor *m = &c->mon;
    sim_seeder *s = &g_world->seeder;
    if (m->broken)
        return;
    if (m->state == M_PIECE_DATA && e->file != HK_FILE_METAINFO) {
        if (e->storage != c->torrent || e->file != 0 || e->offset != m->piece_off || e->length > m->need) {
            s->extent_mismatch++;
            broken(c, "piece data is not the extent its header names");
            return;
        }
        m->piece_off += e->length;
        m->need -= e->length;
        if (m->need == 0) {
            s->blocks_sent++;
            m->state = M_PREFIX;
            m->need = 4;
            m->have = 0;
        }
        return;
    }
    if (m->state == M_BODY && e->file == HK_FILE_METAINFO && e->length <= m->need) {
        m->need -= e->length;
        if (m->need == 0) {
            m->state = M_PREFIX;
            m->need = 4;
            m->have = 0;
        }
        return;
    }
    s->extent_mismatch++;
    broken(c, "extent outside a piece or metadata message");
}
