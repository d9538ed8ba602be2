/* torrentgen: builds the synthetic .torrent files a scenario serves (single file "sim-<k>.bin", `size` bytes,
 * `piece_length` pieces, piece hashes drawn from the scenario's PRNG: the simulated data has no content, so nothing
 * verifies them; the info-hash is real, and magnet users check the info dictionary against it). */
#ifndef HEKATE_SIM_TORRENTGEN_H
#define HEKATE_SIM_TORRENTGEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct sim_torrent {
    uint8_t *bytes;        /* the .torrent file */
    size_t len;
    uint8_t info_hash[20];
    size_t info_start, info_end; /* the raw info dictionary inside bytes */
    uint64_t size;
    uint32_t piece_length, piece_count;
} sim_torrent;

/* Returns 0, or -1 on allocation failure. */
int torrentgen_make(sim_torrent *t, uint32_t index, uint64_t size, uint32_t piece_length, uint64_t seed);
void torrentgen_free(sim_torrent *t);

#endif
