/* seeder_config: the seeder's settings changed while it runs (hk_seeder_set_config, see seeder.h): the fields that
 * can change live are copied in, the choker and the per-address limiter take their new limits, and every live peer
 * is rescheduled so its deadline follows the new timeouts at once. */
#include "seeder_internal.h"

const hk_config *hk_seeder_config(const hk_seeder *s)
{
    return &s->cfg;
}

/* cfg's live fields over cur's (the others stay cur's). */
static hk_config live_merge(const hk_config *cur, const hk_config *cfg)
{
    hk_config n = *cur;
    n.max_unchoked = cfg->max_unchoked;
    n.max_peers = cfg->max_peers;
    n.credit = cfg->credit;
    n.slice = cfg->slice;
    n.handshake_timeout = cfg->handshake_timeout;
    n.idle_timeout = cfg->idle_timeout;
    n.keepalive_interval = cfg->keepalive_interval;
    n.unchoked_idle_timeout = cfg->unchoked_idle_timeout;
    n.send_stall_timeout = cfg->send_stall_timeout;
    n.max_wait = cfg->max_wait;
    n.max_peers_per_address = cfg->max_peers_per_address;
    n.max_peers_per_prefix = cfg->max_peers_per_prefix;
    n.unchoked_grace = cfg->unchoked_grace;
    n.unchoked_stall = cfg->unchoked_stall;
    n.upload_rate = cfg->upload_rate;
    n.upload_burst = cfg->upload_burst;
    n.verify_rate = cfg->verify_rate;
    return n;
}

const char *hk_seeder_set_config(hk_seeder *s, const hk_config *cfg)
{
    const char *bad = hk_config_check(cfg);
    if (bad)
        return bad;
    hk_config n = live_merge(&s->cfg, cfg);
    if ((bad = hk_config_check(&n)) != NULL) /* with the restart-only fields kept (credit >= max_block) */
        return bad;
    hks_ev_begin(s);
    uint64_t old_rate = s->cfg.upload_rate;
    s->cfg = n;
    hks_rate_config_changed(s, old_rate); /* the global bucket at its new rate and burst (0: no cap) */
    hk_vpass_set_rate(&s->vpass, n.verify_rate); /* a background verification pass: paced at the new rate now */
    s->choker.max_unchoked = n.max_unchoked; /* fewer: the extra slots end with their turns; more: promoted below */
    s->choker.credit = n.credit;             /* credit and slice: from each peer's next turn */
    s->choker.slice = n.slice;
    s->addr_limit.per_addr = n.max_peers_per_address; /* checked at accept; holds taken keep their release */
    s->addr_limit.per_prefix = n.max_peers_per_prefix;
    for (uint32_t i = 0; i < s->peers_cap; i++)
        if (s->peers[i] && !s->peers[i]->closed)
            hks_mark_touched(s, s->peers[i]); /* its deadline recomputed at the end of this event */
    hks_log(s, HK_LOG_DEBUG, "settings changed: %u unchoked, %u peers, %u per address, %u per prefix",
            n.max_unchoked, n.max_peers, n.max_peers_per_address, n.max_peers_per_prefix);
    hks_promote_waiters(s); /* a raised max_unchoked gives its new slots to the line now */
    hks_ev_end(s);
    return NULL;
}
