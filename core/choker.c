/* choker: owns the unchoke slots, the FIFO waiting line and each turn's credit and slice. See choker.h. */
#include "choker.h"

#include <assert.h>
#include <stddef.h>

#include "enum_names.h"

void hk_choker_init(hk_choker *c, uint32_t max_unchoked, uint64_t credit, hk_time slice)
{
    c->max_unchoked = max_unchoked;
    c->credit = credit;
    c->slice = slice;
    c->unchoked = 0;
    c->waiting = 0;
    hk_list_init(&c->line);
    c->waiting_low = 0;
    hk_list_init(&c->low);
    hk_list_init(&c->spare);
    c->turns = 0;
}

void hk_choke_entry_init(hk_choke_entry *e)
{
    hk_list_init(&e->link);
    e->credit = 0;
    e->slice_end = HK_TIME_NEVER;
    e->since = 0;
    e->state = HK_CHOKE_IDLE;
    e->strikes = 0;
    e->low = false;
    e->hello_us = HK_HELLO_UNKNOWN;
    hk_list_init(&e->spare_link);
}

void hk_choker_set_hello(hk_choke_entry *e, hk_time hello)
{
    if (e->hello_us != HK_HELLO_UNKNOWN)
        return;
    hk_time us = hello / 1000u;
    e->hello_us = us >= HK_HELLO_UNKNOWN ? HK_HELLO_UNKNOWN - 1 : (uint32_t)us;
}

hk_time hk_choker_grace(const hk_choke_entry *e, hk_time full)
{
    if (e->hello_us == HK_HELLO_UNKNOWN)
        return full;
    hk_time hello = (hk_time)e->hello_us * 1000u;
    if (hello >= full / 4) /* full / 4 + 4 x hello >= full */
        return full;
    return full / 4 + 4 * hello;
}

static hk_time slice_end(const hk_choker *c, hk_time now)
{
    if (c->slice == 0 || now > HK_TIME_NEVER - 1 - c->slice)
        return HK_TIME_NEVER;
    return now + c->slice;
}

static void start_turn(hk_choker *c, hk_choke_entry *e, hk_time now)
{
    assert(c->unchoked < c->max_unchoked && !hk_list_linked(&e->link));
    e->state = HK_CHOKE_UNCHOKED;
    e->credit = c->credit;
    e->slice_end = slice_end(c, now);
    e->since = now;
    c->unchoked++;
    c->turns++;
}

/* A peer with strikes waits in the low-priority line. */
static void line_push_back(hk_choker *c, hk_choke_entry *e, hk_time now)
{
    assert(!hk_list_linked(&e->link));
    e->state = HK_CHOKE_WAITING;
    e->since = now;
    e->low = e->strikes > 0;
    hk_list_insert_tail(e->low ? &c->low : &c->line, &e->link);
    c->waiting++;
    c->waiting_low += e->low;
}

static void line_unlink(hk_choker *c, hk_choke_entry *e)
{
    assert(e->state == HK_CHOKE_WAITING && hk_list_linked(&e->link) && c->waiting > 0);
    hk_list_remove(&e->link);
    c->waiting--;
    c->waiting_low -= e->low;
    e->low = false;
}

static void spare_unlink(hk_choke_entry *e)
{
    if (hk_list_linked(&e->spare_link))
        hk_list_remove(&e->spare_link);
}

bool hk_choker_interested(hk_choker *c, hk_choke_entry *e, hk_time now)
{
    if (e->state != HK_CHOKE_IDLE)
        return e->state == HK_CHOKE_UNCHOKED;
    if (c->unchoked < c->max_unchoked && c->waiting == 0) {
        start_turn(c, e, now);
        return true;
    }
    line_push_back(c, e, now);
    return false;
}

bool hk_choker_leave(hk_choker *c, hk_choke_entry *e)
{
    bool freed = false;
    if (e->state == HK_CHOKE_WAITING) {
        line_unlink(c, e);
    } else if (e->state == HK_CHOKE_UNCHOKED) {
        assert(c->unchoked > 0);
        c->unchoked--;
        spare_unlink(e);
        freed = true;
    }
    e->state = HK_CHOKE_IDLE;
    e->credit = 0;
    e->slice_end = HK_TIME_NEVER;
    return freed;
}

hk_choke_entry *hk_choker_promote(hk_choker *c, hk_time now)
{
    hk_list *head = hk_list_first(&c->line);
    if (!head)
        head = hk_list_first(&c->low);
    if (c->unchoked >= c->max_unchoked || !head)
        return NULL;
    hk_choke_entry *e = HK_LIST_ENTRY(head, hk_choke_entry, link);
    line_unlink(c, e);
    start_turn(c, e, now);
    return e;
}

bool hk_choker_may_send(const hk_choker *c, const hk_choke_entry *e, hk_time now, uint64_t n)
{
    (void)c;
    return e->state == HK_CHOKE_UNCHOKED && e->credit >= n && now < e->slice_end;
}

void hk_choker_charge(hk_choker *c, hk_choke_entry *e, uint64_t n)
{
    (void)c;
    e->credit = e->credit >= n ? e->credit - n : 0;
}

/* Ends e's turn: refilled when `refill`, else requeued (or out of the choker when connections are full). */
static hk_turn_result end_turn(hk_choker *c, hk_choke_entry *e, hk_time now, bool connections_full, bool refill)
{
    if (refill) {
        e->credit = c->credit;
        e->slice_end = slice_end(c, now);
        e->since = now;
        c->turns++;
        return HK_TURN_REFILLED;
    }
    spare_unlink(e);
    c->unchoked--;
    e->credit = 0;
    e->slice_end = HK_TIME_NEVER;
    if (connections_full) {
        e->state = HK_CHOKE_IDLE;
        return HK_TURN_DISCONNECT;
    }
    line_push_back(c, e, now);
    return HK_TURN_REQUEUED;
}

hk_turn_result hk_choker_turn_over(hk_choker *c, hk_choke_entry *e, hk_time now, bool connections_full)
{
    assert(e->state == HK_CHOKE_UNCHOKED && c->unchoked > 0); /* callers only call this for unchoked peers */
    if (e->state != HK_CHOKE_UNCHOKED)
        return HK_TURN_REQUEUED; /* nothing to take back */
    e->strikes = 0; /* a used turn: back to normal priority; low-priority waiters do not end it */
    return end_turn(c, e, now, connections_full, c->waiting == c->waiting_low);
}

hk_turn_result hk_choker_turn_unused(hk_choker *c, hk_choke_entry *e, hk_time now, bool connections_full)
{
    assert(e->state == HK_CHOKE_UNCHOKED && c->unchoked > 0);
    if (e->state != HK_CHOKE_UNCHOKED)
        return HK_TURN_REQUEUED;
    if (c->waiting == 0)
        return end_turn(c, e, now, connections_full, true);
    if (e->strikes < UINT8_MAX)
        e->strikes++;
    return end_turn(c, e, now, connections_full, false);
}

void hk_choker_set_spare(hk_choker *c, hk_choke_entry *e, bool spare)
{
    if (!spare)
        spare_unlink(e);
    else if (e->state == HK_CHOKE_UNCHOKED && !hk_list_linked(&e->spare_link))
        hk_list_insert_tail(&c->spare, &e->spare_link);
}

hk_choke_entry *hk_choker_preempt(hk_choker *c, hk_time now, bool connections_full, hk_turn_result *result)
{
    hk_list *first = hk_list_first(&c->spare);
    if (!first || c->waiting == c->waiting_low)
        return NULL;
    hk_choke_entry *e = HK_LIST_ENTRY(first, hk_choke_entry, spare_link);
    *result = hk_choker_turn_unused(c, e, now, connections_full);
    return e;
}

uint32_t hk_choker_position(const hk_choker *c, const hk_choke_entry *e)
{
    if (e->state != HK_CHOKE_WAITING)
        return 0;
    uint32_t pos = e->low ? c->waiting - c->waiting_low + 1 : 1;
    const hk_list *x;
    HK_LIST_FOREACH(x, e->low ? &c->low : &c->line) {
        if (x == &e->link)
            return pos;
        pos++;
    }
    assert(!"a WAITING entry is in the line");
    return pos;
}

const char *hk_choke_state_name(hk_choke_state s)
{
    static const char *const names[] = {
        [HK_CHOKE_IDLE] = "idle", [HK_CHOKE_WAITING] = "waiting", [HK_CHOKE_UNCHOKED] = "unchoked",
    };
    return HK_NAME_OF(names, s);
}
