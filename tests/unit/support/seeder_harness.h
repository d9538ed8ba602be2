/* seeder_harness: drives a real hk_seeder through the fake runtime with a few lines per step, as a client would
 * (connect, handshake, messages, room), so seeder tests read like scripts. Every helper asserts nothing itself;
 * tests inspect h->fr (recorded actions) and hk_seeder_stats. */
#ifndef HEKATE_TEST_SEEDER_HARNESS_H
#define HEKATE_TEST_SEEDER_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fake_runtime.h"
#include "seeder.h"
#include "torrent_builder.h"

#define H_MAX_PEERS FR_MAX_CONNS
#define H_STORAGE 7

typedef struct harness {
    fake_runtime *fr;
    hk_seeder_runtime rt;
    hk_config cfg;
    hk_seeder *s;
    uint8_t *torrent;        /* the last torrent added */
    size_t torrent_len;
    uint8_t ih[20];
    uint32_t piece_len, pieces;
    uint64_t total;
    hk_peer *peer[H_MAX_PEERS];
} harness;

/* cfg NULL: defaults. */
void h_init(harness *h, const hk_config *cfg);
/* As h_init; with_cipher adds the runtime's optional set_cipher (MSE/PE peers can then be served). */
void h_init_rt(harness *h, const hk_config *cfg, bool with_cipher);
void h_free(harness *h);
/* Adds a single-file torrent (storage H_STORAGE, or the next free id after it when a torrent holds it) and registers
 * its bytes as the HK_FILE_METAINFO content. */
hk_add_result h_add_single(harness *h, uint32_t piece_len, uint64_t total);

/* Adds a multi-file torrent built by tb_torrent (storage as h_add_single). */
hk_add_result h_add_files(harness *h, uint32_t piece_len, const tb_file *files, size_t n);

/* Accepts connection c (from 10.(c/256).(c%256).1: its own address and /24) and grants it `room` bytes (0: no
 * on_sendable). Returns the peer (NULL if refused). */
hk_peer *h_accept(harness *h, int c, size_t room);
/* The same from address a. */
hk_peer *h_accept_from(harness *h, int c, size_t room, const hk_addr *a);
/* Sends the 68-byte handshake for info-hash ih (NULL: the harness torrent) with the given reserved bits. */
void h_handshake(harness *h, int c, const uint8_t *ih, bool fast, bool ext);
/* Accept with 1 MiB room + handshake. */
hk_peer *h_connect(harness *h, int c, bool fast, bool ext);
void h_recv(harness *h, int c, const void *bytes, size_t len);
void h_simple(harness *h, int c, int wire_type);             /* interested, not interested, have_all, ... */
void h_block(harness *h, int c, int wire_type, uint32_t index, uint32_t begin, uint32_t length);
void h_extended(harness *h, int c, uint8_t ext_id, const void *payload, size_t len);
void h_room(harness *h, int c, size_t room);
void h_closed(harness *h, int c);

/* Messages the seeder sent to c (decoded as a client). */
fr_msgs h_msgs(harness *h, int c);
/* Messages of type t sent to c. */
size_t h_count(harness *h, int c, int wire_type);
hk_stats h_stats(harness *h);
/* Advances the clock by dt, delivering due wake-ups. */
void h_advance(harness *h, hk_time dt);

#endif
