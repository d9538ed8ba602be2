/* Unit tests for core/peer: message legality, flow-control accounting. */
#include <criterion/criterion.h>
#include <string.h>

#include "peer.h"

static hk_mem mem;
static hk_rq_home rq_home = {.mem = &mem};
static hk_peer p;

static void setup(void)
{
    memset(&mem, 0, sizeof mem);
    hk_peer_init(&p, 1, NULL, 0, 100, &rq_home, 16, 65536);
}

static void teardown(void)
{
    hk_peer_release(&p);
}

TestSuite(peer, .init = setup, .fini = teardown);

Test(peer, init_state)
{
    cr_assert_eq(p.phase, HK_PHASE_HANDSHAKE);
    cr_assert_eq(p.room, 0);
    cr_assert_eq(p.last_recv, 100);
    cr_assert_eq(p.stall_since, HK_TIME_NEVER);
    cr_assert_eq(p.choke.state, HK_CHOKE_IDLE);
    cr_assert_not(hk_deadline_queued(&p.dl));
}

static wire_msg simple(wire_msg_type t)
{
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = t;
    return m;
}

/* The verdict on a payload-less message of type t from peer x (10 pieces). */
static hk_msg_verdict verdict(const hk_peer *x, wire_msg_type t)
{
    wire_msg m = simple(t);
    return hk_peer_check_msg(x, &m, 10);
}

Test(peer, bitfield_may_come_at_any_time)
{
    /* aria2 sends "interested" before its bitfield once a magnet's metadata arrived; libtorrent its extension
     * handshake before have_none: order is not judged */
    uint8_t bits[2] = {0x0F, 0x00};
    wire_msg m = simple(WIRE_BITFIELD);
    m.u.bitfield.bits = bits;
    m.u.bitfield.len = 2;
    wire_msg i = simple(WIRE_INTERESTED), ex = simple(WIRE_EXTENDED);
    p.extended = true;
    cr_assert_eq(hk_peer_check_msg(&p, &ex, 10), HK_MSG_OK);
    cr_assert_eq(hk_peer_check_msg(&p, &i, 10), HK_MSG_OK);
    cr_assert_eq(hk_peer_check_msg(&p, &m, 10), HK_MSG_OK);
    cr_assert_eq(hk_peer_check_msg(&p, &m, 10), HK_MSG_OK);
}

Test(peer, full_bitfield_is_a_seed)
{
    uint8_t bits[2] = {0xFF, 0xC0}; /* 10 pieces */
    wire_msg m = simple(WIRE_BITFIELD);
    m.u.bitfield.bits = bits;
    m.u.bitfield.len = 2;
    cr_assert_eq(hk_peer_check_msg(&p, &m, 10), HK_MSG_SEED);
}

Test(peer, almost_full_bitfield_is_not_a_seed)
{
    uint8_t bits[2] = {0xFF, 0x80};
    wire_msg m = simple(WIRE_BITFIELD);
    m.u.bitfield.bits = bits;
    m.u.bitfield.len = 2;
    cr_assert_eq(hk_peer_check_msg(&p, &m, 10), HK_MSG_OK);
}

Test(peer, bitfield_of_wrong_length)
{
    uint8_t bits[3] = {0xFF, 0xC0, 0};
    wire_msg m = simple(WIRE_BITFIELD);
    m.u.bitfield.bits = bits;
    m.u.bitfield.len = 3;
    cr_assert_eq(hk_peer_check_msg(&p, &m, 10), HK_MSG_BAD_BITFIELD);
}

Test(peer, fast_messages_need_the_fast_bit)
{
    cr_assert_eq(verdict(&p, WIRE_HAVE_ALL), HK_MSG_NOT_NEGOTIATED);
    cr_assert_eq(verdict(&p, WIRE_SUGGEST), HK_MSG_NOT_NEGOTIATED);
    cr_assert_eq(verdict(&p, WIRE_REJECT), HK_MSG_NOT_NEGOTIATED);
}

Test(peer, fast_peer_have_all_is_a_seed_have_none_is_fine)
{
    p.fast = true;
    cr_assert_eq(verdict(&p, WIRE_HAVE_ALL), HK_MSG_SEED);
    hk_peer q;
    hk_peer_init(&q, 2, NULL, 0, 0, &rq_home, 4, 65536);
    q.fast = true;
    cr_assert_eq(verdict(&q, WIRE_HAVE_NONE), HK_MSG_OK);
    cr_assert_eq(verdict(&q, WIRE_ALLOWED_FAST), HK_MSG_OK);
    cr_assert_eq(verdict(&q, WIRE_REJECT), HK_MSG_UNEXPECTED);
    hk_peer_release(&q);
}

Test(peer, piece_is_unexpected_extended_needs_the_bit)
{
    cr_assert_eq(verdict(&p, WIRE_PIECE), HK_MSG_UNEXPECTED);
    wire_msg ex = simple(WIRE_EXTENDED);
    cr_assert_eq(hk_peer_check_msg(&p, &ex, 10), HK_MSG_NOT_NEGOTIATED);
    p.extended = true;
    cr_assert_eq(hk_peer_check_msg(&p, &ex, 10), HK_MSG_OK);
    cr_assert_str_eq(hk_msg_verdict_name(HK_MSG_SEED), "peer is a seed");
}

Test(peer, room_and_debt)
{
    hk_peer_set_room(&p, 100);
    cr_assert(hk_peer_account(&p, 60));
    cr_assert_eq(p.room, 40);
    cr_assert_eq(p.debt, 0);
    cr_assert(hk_peer_account(&p, 50));
    cr_assert_eq(p.room, 0);
    cr_assert_eq(p.debt, 10);
    p.debt_limit = 20;
    cr_assert(hk_peer_account(&p, 10));
    cr_assert_eq(p.debt, 20);
    cr_assert_not(hk_peer_account(&p, 1), "debt above the limit");
    hk_peer_set_room(&p, 5);
    cr_assert_eq(p.debt, 0, "new room clears the debt");
    cr_assert_eq(p.room, 5);
}
