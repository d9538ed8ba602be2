/* dht_glue: owns the DHT node's runtime table on libev, its bootstrap resolution and its state file (see
 * dht_glue.h). */
#include "dht_glue.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "resolver.h"
#include "rt_common.h"
#include "udp_port.h"
#include "wake.h"

const char *const hk_dht_default_routers[] = { "router.bittorrent.com:6881", "dht.transmissionbt.com:6881",
                                               "router.utorrent.com:6881", NULL };

#define STATE_MAX (1u << 20)
#define SAVE_EVERY 600.0   /* seconds between state file writes (and one at exit) */

struct hk_dht_glue {
    struct ev_loop *loop;
    hk_udp_port *udp;
    hk_dht_runtime rt;
    hk_dht *dht;
    hk_wake wake;
    ev_timer save;                 /* writes the state file every SAVE_EVERY (with state_path) */
    hk_resolver *resolver;
    char *state_path;
    uint16_t boot_port[HK_DHT_GLUE_MAX_BOOTSTRAP];
    char boot_name[HK_DHT_GLUE_MAX_BOOTSTRAP][256];
};

int hk_dht_parse_hostport(const char *s, char *host, size_t hostcap, uint16_t *port)
{
    const char *colon, *h = s;
    size_t hlen;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen))
            return -1;   /* an IPv6 literal needs brackets */
    }
    if (hlen == 0 || hlen >= hostcap)
        return -1;
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || p == 0 || p > 65535 || colon[1] < '0' || colon[1] > '9')
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)p;
    return 0;
}

static void rt_wake_at(void *ctx, hk_time when)
{
    hk_dht_glue *g = ctx;
    hk_wake_at(&g->wake, when);
}

static void wake_fire(void *arg)
{
    hk_dht_glue *g = arg;
    hk_dht_on_wake(g->dht);
}

static void rt_udp_send(void *ctx, const hk_addr *to, const uint8_t *bytes, size_t len)
{
    hk_dht_glue *g = ctx;
    (void)hk_udp_port_send(g->udp, bytes, len, to); /* a drop is a lost datagram: the node times it out */
}

static void on_krpc(void *arg, const uint8_t *data, size_t len, const hk_addr *from)
{
    hk_dht_glue *g = arg;
    hk_dht_on_datagram(g->dht, from, data, len);
}

static void resolved(void *arg, uint64_t token, const hk_addr *addrs, size_t n, const char *error)
{
    hk_dht_glue *g = arg;
    if (token >= HK_DHT_GLUE_MAX_BOOTSTRAP)
        return;
    if (n == 0) {
        hk_log(HK_LOG_INFO, "dht: bootstrap %s skipped: %s", g->boot_name[token], error ? error : "not resolved");
        return;
    }
    unsigned used = 0;
    for (size_t i = 0; i < n; i++) {
        hk_addr a = addrs[i];
        a.port = g->boot_port[token];
        used += hk_dht_add_bootstrap(g->dht, &a) == 0;
    }
    hk_log(HK_LOG_DEBUG, "dht: bootstrap %s: %u address(es)", g->boot_name[token], used);
}

/* The state file's bytes (malloc'd, *len), or NULL when absent or unreadable (logged unless absent). */
static uint8_t *read_state(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno != ENOENT)
            hk_log(HK_LOG_WARN, "dht: cannot read the state file %s: %s", path, strerror(errno));
        return NULL;
    }
    uint8_t *buf = malloc(STATE_MAX);
    *len = buf ? fread(buf, 1, STATE_MAX, f) : 0;
    fclose(f);
    if (buf && *len == 0) {
        free(buf);
        buf = NULL;
    }
    return buf;
}

int hk_dht_glue_save(hk_dht_glue *g)
{
    if (!g || !g->state_path)
        return 0;
    ben_buf b;
    ben_buf_init(&b);
    hk_dht_save(g->dht, &b);
    size_t plen = strlen(g->state_path);
    char *tmp = malloc(plen + 5);
    int rc = -1;
    if (tmp && !b.failed) {
        memcpy(tmp, g->state_path, plen);
        memcpy(tmp + plen, ".tmp", 5);
        FILE *f = fopen(tmp, "wb");
        bool ok = f && fwrite(b.data, 1, b.len, f) == b.len;
        ok = f && fclose(f) == 0 && ok;
        if (ok && rename(tmp, g->state_path) == 0)
            rc = 0;
        else
            hk_log(HK_LOG_WARN, "dht: cannot write the state file %s: %s", g->state_path, strerror(errno));
    }
    free(tmp);
    ben_buf_free(&b);
    return rc;
}

static void save_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    hk_dht_glue_save(w->data);
}

static int start_bootstrap(hk_dht_glue *g, const hk_dht_glue_opts *o, char *err, size_t errlen)
{
    const char *const *list = o->nbootstrap ? o->bootstrap : hk_dht_default_routers;
    size_t n = o->nbootstrap;
    if (!o->nbootstrap)
        while (list[n])
            n++;
    for (size_t i = 0; i < n && i < HK_DHT_GLUE_MAX_BOOTSTRAP; i++) {
        if (hk_dht_parse_hostport(list[i], g->boot_name[i], sizeof g->boot_name[i], &g->boot_port[i]) != 0) {
            snprintf(err, errlen, "--dht-bootstrap: %s is not HOST:PORT", list[i]);
            return -1;
        }
        hk_addr num = { .port = g->boot_port[i] };
        if (inet_pton(AF_INET, g->boot_name[i], num.ip) == 1 || inet_pton(AF_INET6, g->boot_name[i], num.ip) == 1) {
            num.family = strchr(g->boot_name[i], ':') ? 6 : 4;   /* a numeric address needs no resolver */
            if (hk_dht_add_bootstrap(g->dht, &num) != 0)
                hk_log(HK_LOG_INFO, "dht: bootstrap %s skipped (address family not served)", list[i]);
            continue;
        }
        if (hk_resolver_resolve(g->resolver, g->boot_name[i], i) != 0)
            hk_log(HK_LOG_WARN, "dht: out of memory resolving %s", g->boot_name[i]);
    }
    return 0;
}

static hk_dht *create_node(hk_dht_glue *g, const hk_dht_glue_opts *o)
{
    hk_dht_config cfg;
    hk_dht_config_defaults(&cfg);
    cfg.port = o->port;
    cfg.v4 = o->v4;
    cfg.v6 = o->v6;
    size_t len = 0;
    uint8_t *state = o->state_path ? read_state(o->state_path, &len) : NULL;
    if (state && hk_dht_load(NULL, state, len, cfg.id, &cfg.has_id) != 0)
        hk_log(HK_LOG_WARN, "dht: the state file %s is not a saved DHT state: ignored", o->state_path);
    hk_dht *d = hk_dht_new(&cfg, &g->rt);
    if (d && state)
        (void)hk_dht_load(d, state, len, cfg.id, &cfg.has_id);
    free(state);
    return d;
}

hk_dht_glue *hk_dht_glue_new(struct ev_loop *loop, hk_udp_port *udp, const hk_dht_glue_opts *o, char *err,
                             size_t errlen)
{
    hk_dht_glue *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "dht: out of memory");
        return NULL;
    }
    g->loop = loop;
    g->udp = udp;
    hk_wake_init(&g->wake, loop, wake_fire, g);
    g->rt = (hk_dht_runtime){ .base = { .ctx = g, .now = hk_rt_now, .wake_at = rt_wake_at,
                                        .random_bytes = hk_rt_random_bytes, .log = hk_rt_log },
                              .udp_send = rt_udp_send };
    g->state_path = o->state_path ? strdup(o->state_path) : NULL;
    g->resolver = hk_resolver_new(loop, 300, 30, 1, resolved, g);
    g->dht = g->resolver && (!o->state_path || g->state_path) ? create_node(g, o) : NULL;
    if (!g->dht) {
        snprintf(err, errlen, "dht: out of memory");
        hk_dht_glue_free(g);
        return NULL;
    }
    hk_dht_set_log_level(g->dht, o->log_level);
    if (start_bootstrap(g, o, err, errlen) != 0) {
        hk_dht_glue_free(g);
        return NULL;
    }
    hk_udp_port_set_handler(udp, HK_UDP_KRPC, on_krpc, g);
    ev_timer_init(&g->save, save_cb, SAVE_EVERY, SAVE_EVERY);
    g->save.data = g;
    if (g->state_path)
        ev_timer_start(loop, &g->save);
    char id[41];
    for (int i = 0; i < 20; i++)
        snprintf(id + 2 * i, 3, "%02x", hk_dht_id(g->dht)[i]);
    hk_log(HK_LOG_INFO, "dht: node %s on UDP port %u (%s%s%s)%s%s", id, o->port, o->v4 ? "IPv4" : "",
           o->v4 && o->v6 ? ", " : "", o->v6 ? "IPv6" : "", g->state_path ? ", state in " : "",
           g->state_path ? g->state_path : "");
    return g;
}

void hk_dht_glue_free(hk_dht_glue *g)
{
    if (!g)
        return;
    if (g->dht) {
        hk_udp_port_set_handler(g->udp, HK_UDP_KRPC, NULL, NULL);
        hk_dht_glue_save(g);
    }
    hk_resolver_free(g->resolver);
    if (g->loop)
        ev_timer_stop(g->loop, &g->save);
    hk_wake_stop(&g->wake);
    hk_dht_free(g->dht);
    free(g->state_path);
    free(g);
}

hk_dht *hk_dht_glue_node(hk_dht_glue *g)
{
    return g ? g->dht : NULL;
}
