/* torrents: the real torrents of a scenario for hekate-swarm — `--make-torrents DIR` writes, for each of the
 * scenario's [torrent] count torrents, DIR/sim-<k>.bin (size bytes of seeded pseudo-random data) and
 * DIR/sim-<k>.torrent (single file, the scenario's piece length, the data's real piece hashes), the layout of
 * backend-sim/torrentgen.c with content; a run loads them back and derives what its leechers verify against.
 *
 * Contract
 * --------
 * swarm_torrents_make() writes the files (data fsync'ed and dropped from the page cache, so a seeder started next
 * reads it from the disk, as hekate-sim's cold cache does); 0, or -1 with a message on stderr.
 * swarm_torrents_load() reads DIR/sim-<k>.torrent for k < count, checks that each describes the scenario's size and
 * piece length, and, with verify, reads the data file, checks every piece against its piece hash and keeps the
 * verified data itself (lk_torrent.block_data, when all the scenario's data is at most 256 MiB) or the SHA-1 of
 * every 16 KiB block (lk_torrent.block_sha1), so that each block a leecher receives is checked on its own; 0, or
 * -1 with a message on stderr. swarm_torrents_free() releases them. */
#ifndef HEKATE_SWARM_TORRENTS_H
#define HEKATE_SWARM_TORRENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "leech.h"
#include "scenario.h"

int swarm_torrents_make(const scenario *sc, const char *dir);
int swarm_torrents_load(const scenario *sc, const char *dir, bool verify, lk_torrent **out);
void swarm_torrents_free(lk_torrent *t, uint32_t count);

#endif
