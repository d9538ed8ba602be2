/* Tests of backend-real/lib/dht_glue: HOST:PORT parsing, two DHT nodes on two UDP ports of 127.0.0.1 joining through
 * one another's numeric bootstrap address (resolved off the loop, KRPC datagrams demultiplexed by udp_port), an
 * unresolvable bootstrap name skipped without stopping the node, and the state file written at free and read back
 * (same node id, the known node restored). */
#include <criterion/criterion.h>

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dht_glue.h"
#include "udp_port.h"

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    (void)w;
    ev_break(loop, EVBREAK_ONE);
}

/* Runs the loop until `until` says stop or `seconds` pass (checked every 50 ms). */
static void run_until(struct ev_loop *loop, double seconds, bool (*until)(void *), void *arg)
{
    for (double t = 0; t < seconds && !(until && until(arg)); t += 0.05) {
        ev_timer w;
        ev_timer_init(&w, tick_cb, 0.05, 0.);
        ev_timer_start(loop, &w);
        ev_run(loop, 0);
        ev_timer_stop(loop, &w);
    }
}

static hk_udp_port *port_v4(struct ev_loop *loop)
{
    hk_udp_port_opts o;
    hk_udp_port_opts_default(&o);
    o.port = 0;
    o.family = HK_FAMILY_V4;
    o.bind_addr = "127.0.0.1";
    char err[256];
    hk_udp_port *u = hk_udp_port_new(loop, &o, err, sizeof err);
    cr_assert_not_null(u, "%s", err);
    return u;
}

Test(dht_glue, parses_host_and_port)
{
    char host[64];
    uint16_t port;
    cr_assert_eq(hk_dht_parse_hostport("router.bittorrent.com:6881", host, sizeof host, &port), 0);
    cr_assert_str_eq(host, "router.bittorrent.com");
    cr_assert_eq(port, 6881);
    cr_assert_eq(hk_dht_parse_hostport("[::1]:9", host, sizeof host, &port), 0);
    cr_assert_str_eq(host, "::1");
    cr_assert_eq(hk_dht_parse_hostport("::1:9", host, sizeof host, &port), -1, "IPv6 needs brackets");
    cr_assert_eq(hk_dht_parse_hostport("host", host, sizeof host, &port), -1);
    cr_assert_eq(hk_dht_parse_hostport("host:0", host, sizeof host, &port), -1);
    cr_assert_eq(hk_dht_parse_hostport("host:70000", host, sizeof host, &port), -1);
    cr_assert_eq(hk_dht_parse_hostport("host:+5", host, sizeof host, &port), -1);
    cr_assert_eq(hk_dht_parse_hostport(":5", host, sizeof host, &port), -1);
}

typedef struct pair {
    hk_dht *a, *b;
} pair;

static bool both_know(void *arg)
{
    pair *p = arg;
    hk_dht_stats sa, sb;
    hk_dht_stats_get(p->a, &sa);
    hk_dht_stats_get(p->b, &sb);
    return sa.nodes4 >= 1 && sb.nodes4 >= 1;
}

Test(dht_glue, two_nodes_join_through_each_other_and_state_is_kept)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hk_udp_port *ua = port_v4(loop), *ub = port_v4(loop);
    char state[] = "/tmp/hekate-dht-state-XXXXXX";
    int fd = mkstemp(state);
    cr_assert_geq(fd, 0);
    close(fd);
    unlink(state);   /* absent at first: a fresh node */
    char boot_b[64], boot_a[64];
    snprintf(boot_b, sizeof boot_b, "127.0.0.1:%u", hk_udp_port_port(ub));
    snprintf(boot_a, sizeof boot_a, "127.0.0.1:%u", hk_udp_port_port(ua));
    hk_dht_glue_opts oa = { .port = hk_udp_port_port(ua), .v4 = true, .nbootstrap = 2, .state_path = state,
                            .log_level = HK_LOG_WARN };
    oa.bootstrap[0] = boot_b;
    oa.bootstrap[1] = "no-such-host.invalid:6881";
    hk_dht_glue_opts ob = { .port = hk_udp_port_port(ub), .v4 = true, .nbootstrap = 1, .log_level = HK_LOG_WARN };
    ob.bootstrap[0] = boot_a;
    char err[256];
    hk_dht_glue *ga = hk_dht_glue_new(loop, ua, &oa, err, sizeof err);
    cr_assert_not_null(ga, "%s", err);
    hk_dht_glue *gb = hk_dht_glue_new(loop, ub, &ob, err, sizeof err);
    cr_assert_not_null(gb, "%s", err);
    pair p = { hk_dht_glue_node(ga), hk_dht_glue_node(gb) };
    run_until(loop, 10, both_know, &p);
    cr_assert(both_know(&p), "the two nodes found each other over UDP");
    uint8_t id[20];
    memcpy(id, hk_dht_id(p.a), 20);
    hk_dht_glue_free(ga);   /* writes the state */
    /* a node restarted from the state file has the same id and bootstraps from the saved node alone */
    hk_dht_glue_opts oc = oa;
    oc.nbootstrap = 1;
    oc.bootstrap[0] = "no-such-host.invalid:6881";
    ga = hk_dht_glue_new(loop, ua, &oc, err, sizeof err);
    cr_assert_not_null(ga, "%s", err);
    cr_assert(memcmp(hk_dht_id(hk_dht_glue_node(ga)), id, 20) == 0, "the id came back from the state file");
    p.a = hk_dht_glue_node(ga);
    hk_dht_stats s0;
    hk_dht_stats_get(p.a, &s0);
    cr_assert_eq(s0.nodes4, 0);
    run_until(loop, 10, both_know, &p);
    cr_assert(both_know(&p), "it rejoined through the saved node");
    hk_udp_port_stats us;
    hk_udp_port_stats_get(ua, &us);
    cr_assert_gt(us.received[HK_UDP_KRPC], 0);
    hk_dht_glue_free(ga);
    hk_dht_glue_free(gb);
    hk_udp_port_free(ua);
    hk_udp_port_free(ub);
    unlink(state);
    ev_loop_destroy(loop);
}
