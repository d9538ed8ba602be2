/* world: owns the building of a run's world (torrents, peer records), the simulated clock and actor start-up (see
 * world.h). */
#include "world.h"

#include <math.h>
#include <simgrid/engine.h>
#include <stdlib.h>
#include <string.h>

int world_build(sim_world *w, scenario *sc)
{
    w->sc = sc;
    w->ntorrents = sc->torrent.count;
    w->torrents = calloc(w->ntorrents, sizeof *w->torrents);
    w->info_hashes = calloc(w->ntorrents, sizeof *w->info_hashes);
    w->npeers = sc->npeers;
    w->peers = calloc(w->npeers ? w->npeers : 1, sizeof *w->peers);
    if (!w->torrents || !w->info_hashes || !w->peers)
        return -1;
    for (uint32_t i = 0; i < w->ntorrents; i++) {
        if (torrentgen_make(&w->torrents[i], i, sc->torrent.size, sc->torrent.piece_length, sc->run.seed) < 0)
            return -1;
        memcpy(w->info_hashes[i], w->torrents[i].info_hash, 20);
    }
    return 0;
}

hk_time sim_now(sim_world *w)
{
    hk_time t = (hk_time)llround(simgrid_get_clock() * 1e9);
    if (t < w->now_floor)
        t = w->now_floor;
    else
        w->now_floor = t;
    return t;
}

sg_actor_t sim_spawn(const char *name, sg_host_t host, void (*fn)(int, char **), void *arg)
{
    sg_actor_t a = sg_actor_init(name, host);
    sg_actor_set_data(a, arg);
    sg_actor_start(a, fn, 0, NULL);
    return a;
}

void sim_sem_wait_until(sg_sem_t sem, hk_time until, hk_time now)
{
    if (until == HK_TIME_NEVER)
        sg_sem_acquire(sem);
    else
        sg_sem_acquire_timeout(sem, (double)(until - now) / 1e9);
}
