/* Unit tests for hk_seeder_set_config (core/seeder_config.c): the live fields take effect at once (more slots
 * promote the line, a shorter timeout fires on its new deadline, a lower connection cap or per-address cap refuses
 * newcomers), an invalid configuration is refused with nothing changed, restart-only fields are kept. */
#include <criterion/criterion.h>
#include <string.h>

#include "seeder_harness.h"
#include "wire.h"

static harness h;

static void teardown(void)
{
    h_free(&h);
}

TestSuite(seeder_config, .fini = teardown);

static void start(uint32_t max_unchoked)
{
    hk_config c;
    hk_config_defaults(&c);
    c.max_unchoked = max_unchoked;
    c.max_peers = 10 * max_unchoked;
    h_init(&h, &c);
    cr_assert_eq(h_add_single(&h, 32768, 100000), HK_ADD_OK);
}

static void connect_interested(int c)
{
    h_connect(&h, c, true, false);
    h_simple(&h, c, WIRE_INTERESTED);
}

Test(seeder_config, more_slots_promote_the_line_at_once)
{
    start(1);
    for (int c = 0; c < 3; c++)
        connect_interested(c);
    cr_assert_eq(h_stats(&h).unchoked, 1);
    cr_assert_eq(h_stats(&h).waiting, 2);
    hk_config n = *hk_seeder_config(h.s);
    n.max_unchoked = 3;
    cr_assert_null(hk_seeder_set_config(h.s, &n));
    cr_assert_eq(h_stats(&h).unchoked, 3, "the two waiters are unchoked by the change itself");
    cr_assert_eq(h_stats(&h).waiting, 0);
    cr_assert_eq(h_count(&h, 2, WIRE_UNCHOKE), 1);
    cr_assert_eq(hk_seeder_config(h.s)->max_unchoked, 3);
}

Test(seeder_config, fewer_slots_end_with_their_turns)
{
    start(3);
    for (int c = 0; c < 3; c++)
        connect_interested(c);
    cr_assert_eq(h_stats(&h).unchoked, 3);
    hk_config n = *hk_seeder_config(h.s);
    n.max_unchoked = 1;
    cr_assert_null(hk_seeder_set_config(h.s, &n));
    cr_assert_eq(h_stats(&h).unchoked, 3, "nobody is choked by the change");
    connect_interested(3);
    cr_assert_eq(h_stats(&h).waiting, 1, "no free slot at 3 unchoked of 1");
    h_simple(&h, 0, WIRE_NOT_INTERESTED); /* a slot frees: still 2 >= 1, the waiter stays in line */
    cr_assert_eq(h_stats(&h).unchoked, 2);
    cr_assert_eq(h_stats(&h).waiting, 1);
}

Test(seeder_config, a_shorter_idle_timeout_fires_on_its_new_deadline)
{
    start(4);
    h_connect(&h, 0, true, false);
    hk_time t0 = h.fr->now;
    hk_config n = *hk_seeder_config(h.s);
    n.idle_timeout = HK_SECONDS(5);
    n.keepalive_interval = HK_SECONDS(90);
    cr_assert_null(hk_seeder_set_config(h.s, &n));
    fr_run_until(h.fr, h.s, t0 + HK_SECONDS(5) - 1);
    cr_assert_not(fr_closed(h.fr, 0));
    fr_run_until(h.fr, h.s, t0 + HK_SECONDS(5));
    cr_assert(fr_closed(h.fr, 0), "closed at 5 s, not at the 120 s it was scheduled for");
    cr_assert_eq(h_stats(&h).timeouts[HK_TIMEOUT_IDLE], 1);
}

Test(seeder_config, lower_caps_refuse_newcomers_and_keep_the_connected)
{
    start(2);
    h_connect(&h, 0, true, false);
    h_connect(&h, 1, true, false);
    hk_config n = *hk_seeder_config(h.s);
    n.max_peers = 2;
    cr_assert_null(hk_seeder_set_config(h.s, &n));
    cr_assert_eq(h_stats(&h).peers, 2);
    cr_assert_null(h_accept(&h, 2, 65536), "a third connection over max_peers 2");
    hk_addr a = { .family = 4, .port = 1000, .ip = { 192, 0, 2, 7 } };
    n.max_peers = 20;
    n.max_peers_per_address = 1;
    cr_assert_null(hk_seeder_set_config(h.s, &n));
    cr_assert_not_null(h_accept_from(&h, 3, 65536, &a));
    a.port = 1001;
    cr_assert_null(h_accept_from(&h, 4, 65536, &a), "a second connection from 192.0.2.7 over the new cap of 1");
    cr_assert_eq(h_stats(&h).refused_per_address, 1);
}

Test(seeder_config, invalid_is_refused_and_restart_fields_are_kept)
{
    start(2);
    hk_config before = *hk_seeder_config(h.s);
    hk_config n = before;
    n.idle_timeout = 0;
    n.max_peers = 7;
    const char *why = hk_seeder_set_config(h.s, &n);
    cr_assert_not_null(why);
    cr_assert(strstr(why, "idle_timeout"), "%s", why);
    cr_assert_eq(memcmp(hk_seeder_config(h.s), &before, sizeof before), 0, "nothing changed");
    n = before;
    n.max_peers = 1; /* below max_unchoked */
    cr_assert_not_null(hk_seeder_set_config(h.s, &n));
    n = before;
    n.reqq = 17;
    n.encryption = HK_ENC_OFF;
    n.credit = before.credit * 2;
    cr_assert_null(hk_seeder_set_config(h.s, &n));
    cr_assert_eq(hk_seeder_config(h.s)->reqq, before.reqq, "reqq needs a restart");
    cr_assert_eq(hk_seeder_config(h.s)->encryption, before.encryption, "encryption needs a restart");
    cr_assert_eq(hk_seeder_config(h.s)->credit, before.credit * 2, "credit is live");
}
