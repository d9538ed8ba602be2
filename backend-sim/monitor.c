/* monitor: owns the backend's independent reading of what the core sends on each connection: message framing
 * (handshake, length prefixes, fixed lengths per id), piece messages whose data must be exactly the extent of the
 * torrent they name, the choke state (unchoked count and its maximum, observed at send time) and the room the core
 * was granted (large messages beyond it are counted). It never trusts the core's own counters (see monitor.h). */
#include "monitor.h"

#include <assert.h>
#include <string.h>

#include "world.h"

enum { M_HANDSHAKE = 0, M_PREFIX, M_ID, M_PIECE_HDR, M_PIECE_DATA, M_BODY };

#define MAX_MSG (1u << 20)

static void broken(sim_world *w, hk_conn *c, const char *why)
{
    if (c->mon.broken)
        return;
    c->mon.broken = true;
    w->seeder.monitor_errors++;
    evlog_line(w->log, sim_now(w), "error output c%llu: %s", (unsigned long long)c->id, why);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The next unit is a message's 4-byte length prefix. */
static void expect_prefix(sim_monitor *m)
{
    m->state = M_PREFIX;
    m->need = 4;
    m->have = 0;
}

/* The exact payload length of a message id: -1 variable, -2 unknown id. */
static int fixed_length(uint8_t id)
{
    switch (id) {
    case WIRE_CHOKE:
    case WIRE_UNCHOKE:
    case WIRE_INTERESTED:
    case WIRE_NOT_INTERESTED:
    case WIRE_HAVE_ALL:
    case WIRE_HAVE_NONE:
        return 0;
    case WIRE_HAVE:
    case WIRE_SUGGEST:
    case WIRE_ALLOWED_FAST:
        return 4;
    case WIRE_REQUEST:
    case WIRE_CANCEL:
    case WIRE_REJECT:
        return 12;
    case WIRE_PORT:
        return 2;
    case WIRE_BITFIELD:
    case WIRE_PIECE:
    case WIRE_EXTENDED:
        return -1;
    default:
        return -2;
    }
}

/* The choke state on the wire (what the unchoked_max expectation and the choke timings measure). */
static void track_choke(sim_world *w, hk_conn *c, uint8_t id, hk_time now)
{
    sim_seeder *s = &w->seeder;
    sim_monitor *m = &c->mon;
    if (id == WIRE_UNCHOKE && !m->unchoked) {
        m->unchoked = true;
        s->unchoked_now++;
        if (s->unchoked_now > s->unchoked_max)
            s->unchoked_max = s->unchoked_now;
        if (!c->first_unchoke)
            c->first_unchoke = now;
    } else if (id == WIRE_CHOKE && m->unchoked) {
        assert(s->unchoked_now > 0);
        m->unchoked = false;
        s->unchoked_now--;
        if (c->first_unchoke && !c->first_choke_after_unchoke)
            c->first_choke_after_unchoke = now;
    }
}

/* Large messages (pieces, extended) spend the room granted by the last on_sendable (an overrun counts once). */
static void spend_room(sim_world *w, hk_conn *c, uint32_t rem, hk_time now)
{
    c->room_left -= (int64_t)rem + 5;
    if (c->room_left < 0) {
        w->seeder.room_overruns++;
        evlog_line(w->log, now, "error room-overrun c%llu", (unsigned long long)c->id);
        c->room_left = INT64_MAX / 2; /* count once per grant */
    }
}

/* A message id was read; rem payload bytes follow. */
static void on_id(sim_world *w, hk_conn *c, uint8_t id, uint32_t rem)
{
    sim_monitor *m = &c->mon;
    int want = fixed_length(id);
    if (want == -2) {
        broken(w, c, "unknown message id");
        return;
    }
    if (want >= 0 && rem != (uint32_t)want) {
        broken(w, c, "wrong length for a fixed-size message");
        return;
    }
    hk_time now = sim_now(w);
    track_choke(w, c, id, now);
    if (id == WIRE_PIECE || id == WIRE_EXTENDED)
        spend_room(w, c, rem, now);
    if (id == WIRE_PIECE) {
        if (rem < 9) {
            broken(w, c, "piece message too short");
            return;
        }
        m->state = M_PIECE_HDR;
        m->need = 8;
        m->have = 0;
        m->hdr[12] = 0;
        m->piece_off = rem - 8; /* temporarily the data length, until the header names the offset */
        return;
    }
    if (rem == 0) {
        expect_prefix(m);
    } else {
        m->state = M_BODY;
        m->need = rem;
    }
}

/* Consumes up to `len` bytes of a unit that is only counted (the handshake, a message body); returns them. */
static uint32_t skip(sim_monitor *m, uint32_t len)
{
    uint32_t n = len < m->need ? len : m->need;
    m->have += n;
    m->need -= n;
    if (m->need == 0)
        expect_prefix(m);
    return n;
}

/* The 4 bytes of a length prefix are in hdr: a keep-alive, or a message of that length (its id comes next). */
static void on_prefix(sim_world *w, hk_conn *c)
{
    sim_monitor *m = &c->mon;
    uint32_t l = be32(m->hdr);
    m->have = 0;
    if (l == 0) {
        m->need = 4; /* keep-alive */
    } else if (l > MAX_MSG) {
        broken(w, c, "length prefix above 1 MiB");
    } else {
        m->state = M_ID;
        m->need = l;
    }
}

/* The 8 bytes of a piece header are in hdr: the piece data that follows must be that torrent offset. */
static void on_piece_header(sim_world *w, hk_conn *c)
{
    sim_monitor *m = &c->mon;
    uint32_t index = be32(m->hdr), begin = be32(m->hdr + 4);
    uint32_t data = (uint32_t)m->piece_off;
    const sim_torrent *t = &w->torrents[c->torrent];
    if (index >= t->piece_count) {
        broken(w, c, "piece index out of range");
        return;
    }
    m->piece_off = (uint64_t)index * t->piece_length + begin;
    m->state = M_PIECE_DATA;
    m->need = data;
    m->have = 0;
}

/* Consumes bytes of the current unit; returns how many (0 once the stream is found broken). */
static uint32_t feed_unit(sim_world *w, hk_conn *c, const uint8_t *p, uint32_t len)
{
    sim_monitor *m = &c->mon;
    switch (m->state) {
    case M_HANDSHAKE:
        if (m->need == 0)
            m->need = WIRE_HANDSHAKE_LEN;
        if (m->have == 0 && p[0] != WIRE_PSTRLEN) {
            broken(w, c, "handshake does not start with 19");
            return 0;
        }
        return skip(m, len);
    case M_PREFIX:
    case M_PIECE_HDR: {
        bool prefix = m->state == M_PREFIX; /* 4 bytes of length, or 8 of index and begin */
        m->hdr[m->have++] = *p;
        if (m->have == (prefix ? 4u : 8u)) {
            if (prefix)
                on_prefix(w, c);
            else
                on_piece_header(w, c);
        }
        return 1;
    }
    case M_ID:
        m->id = *p;
        on_id(w, c, m->id, m->need - 1);
        return 1;
    case M_PIECE_DATA:
        /* block data must come from the data file (an extent), never from core-owned bytes */
        w->seeder.extent_mismatch++;
        broken(w, c, "piece data sent as bytes");
        return 0;
    case M_BODY:
        return skip(m, len);
    default:
        assert(!"unknown monitor state");
        return 0;
    }
}

void monitor_bytes(sim_world *w, hk_conn *c, const uint8_t *p, uint32_t len)
{
    sim_monitor *m = &c->mon;
    while (len > 0 && !m->broken) {
        uint32_t n = feed_unit(w, c, p, len);
        if (n == 0)
            return;
        p += n;
        len -= n;
    }
}

void monitor_extent(sim_world *w, hk_conn *c, const hk_extent *e)
{
    sim_monitor *m = &c->mon;
    sim_seeder *s = &w->seeder;
    if (m->broken)
        return;
    if (m->state == M_PIECE_DATA && e->file != HK_FILE_METAINFO) {
        if (e->storage != c->torrent || e->file != 0 || e->offset != m->piece_off || e->length > m->need) {
            s->extent_mismatch++;
            broken(w, c, "piece data is not the extent its header names");
            return;
        }
        m->piece_off += e->length;
        m->need -= e->length;
        if (m->need == 0) {
            s->blocks_sent++;
            expect_prefix(m);
        }
        return;
    }
    if (m->state == M_BODY && e->file == HK_FILE_METAINFO && e->length <= m->need) {
        m->need -= e->length;
        if (m->need == 0)
            expect_prefix(m);
        return;
    }
    s->extent_mismatch++;
    broken(w, c, "extent outside a piece or metadata message");
}
