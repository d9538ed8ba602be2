/* leech_profile: a scenario's peer profile (backend-sim/scenario.h) as leech.h's parameters, the one conversion
 * hekate-sim (backend-sim/peer_wire.c) and hekate-swarm (backend-swarm/fleet.c) both use, so a scenario's peers
 * behave alike in both. lk_params_from_profile fills q from pr; the simulator adds its peer-id prefix. */
#ifndef HEKATE_LEECH_PROFILE_H
#define HEKATE_LEECH_PROFILE_H

#include "leech.h"
#include "scenario.h"

_Static_assert((int)LK_ENC_NONE == (int)SIM_ENC_NONE && (int)LK_ENC_RC4 == (int)SIM_ENC_RC4 &&
                   (int)LK_ENC_PLAINTEXT == (int)SIM_ENC_PLAINTEXT,
               "leech's encryption values are the scenario's");
_Static_assert((int)LK_NON_READER == (int)BEH_NON_READER && (int)LK_MAGNET == (int)BEH_MAGNET &&
                   (int)LK_FLOODER == (int)BEH_FLOODER && (int)LK_SEQUENTIAL == (int)STRAT_SEQUENTIAL &&
                   (int)LK_INVALID_BEGIN == (int)INVALID_BEGIN,
               "leech's behaviours, strategies and invalid kinds are the scenario's");

/* lack_refused: the seeder verifies pieces ([seeder] verify), so the peers complete without the ones it refuses. */
static inline void lk_params_from_profile(lk_params *q, const sim_profile *pr, bool lack_refused)
{
    *q = (lk_params){.behaviour = (lk_behaviour)pr->behaviour,
                     .strategy = (lk_strategy)pr->strategy,
                     .pipeline = pr->pipeline,
                     .fast = pr->fast,
                     .flood_rate = pr->flood_rate,
                     .invalid = (lk_invalid)pr->invalid,
                     .vanish_after = pr->vanish_after,
                     .encryption = (lk_encryption)pr->encryption,
                     .lack_refused = lack_refused};
}

#endif
