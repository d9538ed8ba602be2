/* peer: owns one connection's protocol state and the pure rules about it: message legality, flow-control accounting
 * (see peer.h). */
#include "peer.h"

#include <string.h>

#include "enum_names.h"
#include "torrent_table.h"

void hk_peer_init(hk_peer *p, uint64_t id, hk_conn *conn, uint32_t slot, hk_time now, hk_rq_home *rq_home,
                  uint32_t queue_max, uint32_t max_message)
{
    memset(p, 0, sizeof *p);
    p->id = id;
    p->conn = conn;
    p->slot = slot;
    p->torrent = HK_TT_NONE;
    p->phase = HK_PHASE_HANDSHAKE;
    p->debt_limit = HK_CONTROL_DEBT_MAX;
    p->accepted_at = p->last_recv = p->last_send = now;
    p->idle_since = now;
    p->stall_since = HK_TIME_NEVER;
    p->disk_retry_at = HK_TIME_NEVER;
    hk_list_init(&p->ready_link);
    hk_list_init(&p->event_link);
    hk_choke_entry_init(&p->choke);
    hk_deadline_init(&p->dl);
    hk_rq_init(&p->rq, rq_home, queue_max);
    wire_limits lim = {.max_msg_len = max_message, .piece_count = 0, .skip_handshake = false, .allow_unknown = true};
    wire_decoder_init(&p->dec, &lim);
}

void hk_peer_release(hk_peer *p)
{
    hk_rq_free(&p->rq);
    wire_decoder_free(&p->dec);
    hk_peer_mse *m = p->mse;
    if (m) {
        hk_mse_free(m->hs);
        hk_mse_rx_free(&m->rx);
        hk_cipher_free(m->send);
        hk_mem_free(m->mem, m, sizeof *m);
        p->mse = NULL;
    }
}

static bool all_ones(const uint8_t *bits, uint32_t nbytes, uint32_t piece_count)
{
    if (nbytes == 0 || nbytes != wire_bitfield_len(piece_count))
        return false;
    for (uint32_t i = 0; i + 1 < nbytes; i++)
        if (bits[i] != 0xFF)
            return false;
    uint32_t rem = piece_count % 8;
    uint8_t last_mask = rem ? (uint8_t)(0xFF << (8 - rem)) : 0xFF;
    return (bits[nbytes - 1] & last_mask) == last_mask;
}

hk_msg_verdict hk_peer_check_msg(const hk_peer *p, const wire_msg *m, uint32_t piece_count)
{
    switch (m->type) {
    case WIRE_BITFIELD:
        if (m->u.bitfield.len != wire_bitfield_len(piece_count))
            return HK_MSG_BAD_BITFIELD;
        return all_ones(m->u.bitfield.bits, m->u.bitfield.len, piece_count) ? HK_MSG_SEED : HK_MSG_OK;
    case WIRE_HAVE_ALL:
        return p->fast ? HK_MSG_SEED : HK_MSG_NOT_NEGOTIATED;
    case WIRE_HAVE_NONE:
    case WIRE_SUGGEST:
    case WIRE_ALLOWED_FAST:
        return p->fast ? HK_MSG_OK : HK_MSG_NOT_NEGOTIATED;
    case WIRE_REJECT:
        return p->fast ? HK_MSG_UNEXPECTED : HK_MSG_NOT_NEGOTIATED;
    case WIRE_PIECE:
        return HK_MSG_UNEXPECTED;
    case WIRE_EXTENDED:
        return p->extended ? HK_MSG_OK : HK_MSG_NOT_NEGOTIATED;
    default:
        return HK_MSG_OK;
    }
}

const char *hk_msg_verdict_name(hk_msg_verdict v)
{
    static const char *const names[] = {
        [HK_MSG_OK] = "ok", [HK_MSG_SEED] = "peer is a seed",
        [HK_MSG_NOT_NEGOTIATED] = "message of an extension not negotiated",
        [HK_MSG_UNEXPECTED] = "piece or reject although we never request",
        [HK_MSG_BAD_BITFIELD] = "bitfield length wrong for the torrent",
    };
    return HK_NAME_OF(names, v);
}

bool hk_peer_account(hk_peer *p, size_t n)
{
    if (n <= p->room) {
        p->room -= n;
        return true;
    }
    p->debt += n - p->room;
    p->room = 0;
    return p->debt <= p->debt_limit;
}

void hk_peer_set_room(hk_peer *p, size_t room)
{
    p->room = room;
    p->debt = 0;
}
