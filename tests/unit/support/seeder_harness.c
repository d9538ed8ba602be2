/* seeder_harness: owns the scripted client side used by the seeder unit tests (see seeder_harness.h). */
#include "seeder_harness.h"

#include <stdlib.h>
#include <string.h>

#include "torrent_builder.h"
#include "wire.h"

void h_init(harness *h, const hk_config *cfg)
{
    h_init_rt(h, cfg, false);
}

void h_init_rt(harness *h, const hk_config *cfg, bool with_cipher)
{
    memset(h, 0, sizeof *h);
    h->fr = fr_new(12345);
    h->rt = fr_runtime(h->fr);
    if (with_cipher)
        fr_enable_cipher(&h->rt);
    if (cfg)
        h->cfg = *cfg;
    else
        hk_config_defaults(&h->cfg);
    h->s = hk_seeder_new(&h->cfg, &h->rt);
    if (!h->s)
        abort();
}

void h_free(harness *h)
{
    hk_seeder_free(h->s);
    fr_free(h->fr);
    free(h->torrent);
    memset(h, 0, sizeof *h);
}

/* The storage handle of the next torrent added: H_STORAGE for the first, the next free id after it for others (the
 * handle's low 32 bits are the torrent's id, core/seeder.h). */
static uint64_t next_storage(const harness *h)
{
    uint64_t st = H_STORAGE;
    while (hk_seeder_info_hash(h->s, (uint32_t)st) != NULL)
        st++;
    return st;
}

hk_add_result h_add_single(harness *h, uint32_t piece_len, uint64_t total)
{
    free(h->torrent);
    h->torrent = tb_single("data.bin", piece_len, total, &h->torrent_len);
    h->piece_len = piece_len;
    h->total = total;
    h->pieces = (uint32_t)((total + piece_len - 1) / piece_len);
    char err[256];
    uint64_t st = next_storage(h);
    hk_add_result r = hk_seeder_add_torrent(h->s, h->torrent, h->torrent_len, st, h->ih, err, sizeof err);
    fr_set_metainfo(h->fr, st, h->torrent, h->torrent_len);
    return r;
}

hk_add_result h_add_files(harness *h, uint32_t piece_len, const tb_file *files, size_t n)
{
    free(h->torrent);
    h->torrent = tb_torrent("multi", piece_len, files, n, &h->torrent_len);
    h->piece_len = piece_len;
    h->total = 0;
    for (size_t i = 0; i < n; i++)
        h->total += files[i].length;
    h->pieces = (uint32_t)((h->total + piece_len - 1) / piece_len);
    uint64_t st = next_storage(h);
    hk_add_result r = hk_seeder_add_torrent(h->s, h->torrent, h->torrent_len, st, h->ih, NULL, 0);
    fr_set_metainfo(h->fr, st, h->torrent, h->torrent_len);
    return r;
}

hk_peer *h_accept(harness *h, int c, size_t room)
{
    /* each connection from its own address in its own /24 (the per-address caps see distinct hosts) */
    hk_addr a = {.family = 4, .ip = {10, (uint8_t)(c >> 8), (uint8_t)c, 1}, .port = (uint16_t)(10000 + c)};
    return h_accept_from(h, c, room, &a);
}

hk_peer *h_accept_from(harness *h, int c, size_t room, const hk_addr *a)
{
    hk_peer *p = hk_seeder_on_accept(h->s, fr_conn(h->fr, c), a);
    h->peer[c] = p;
    if (p && room)
        hk_seeder_on_sendable(h->s, p, room);
    return p;
}

void h_handshake(harness *h, int c, const uint8_t *ih, bool fast, bool ext)
{
    uint8_t res[8] = {0};
    if (fast)
        wire_reserved_set_fast(res);
    if (ext)
        wire_reserved_set_extended(res);
    uint8_t id[20];
    memcpy(id, "-TS0001-", 8);
    for (int i = 8; i < 20; i++)
        id[i] = (uint8_t)('a' + (c + i) % 26);
    uint8_t buf[WIRE_HANDSHAKE_LEN];
    wire_encode_handshake(buf, res, ih ? ih : h->ih, id);
    h_recv(h, c, buf, sizeof buf);
}

hk_peer *h_connect(harness *h, int c, bool fast, bool ext)
{
    hk_peer *p = h_accept(h, c, 1u << 20);
    if (p)
        h_handshake(h, c, NULL, fast, ext);
    return p;
}

void h_recv(harness *h, int c, const void *bytes, size_t len)
{
    hk_seeder_on_recv(h->s, h->peer[c], bytes, len);
}

void h_simple(harness *h, int c, int wire_type)
{
    uint8_t b[WIRE_SIMPLE_LEN];
    wire_encode_simple(b, (wire_msg_type)wire_type);
    h_recv(h, c, b, sizeof b);
}

void h_block(harness *h, int c, int wire_type, uint32_t index, uint32_t begin, uint32_t length)
{
    uint8_t b[WIRE_BLOCK_MSG_LEN];
    wire_encode_block(b, (wire_msg_type)wire_type, index, begin, length);
    h_recv(h, c, b, sizeof b);
}

void h_extended(harness *h, int c, uint8_t ext_id, const void *payload, size_t len)
{
    uint8_t *b = malloc(WIRE_EXTENDED_HEADER_LEN + len);
    wire_encode_extended_header(b, ext_id, (uint32_t)len);
    memcpy(b + WIRE_EXTENDED_HEADER_LEN, payload, len);
    h_recv(h, c, b, WIRE_EXTENDED_HEADER_LEN + len);
    free(b);
}

void h_room(harness *h, int c, size_t room)
{
    hk_seeder_on_sendable(h->s, h->peer[c], room);
}

void h_closed(harness *h, int c)
{
    hk_seeder_on_closed(h->s, h->peer[c], HK_CLOSED_BY_PEER);
    fr_forget_cipher(h->fr, c);
    h->peer[c] = NULL;
}

fr_msgs h_msgs(harness *h, int c)
{
    return fr_decode(h->fr, c, h->pieces);
}

size_t h_count(harness *h, int c, int wire_type)
{
    fr_msgs m = h_msgs(h, c);
    size_t n = fr_msgs_count(&m, (wire_msg_type)wire_type);
    fr_msgs_free(&m);
    return n;
}

hk_stats h_stats(harness *h)
{
    hk_stats st;
    hk_seeder_stats(h->s, &st);
    return st;
}

void h_advance(harness *h, hk_time dt)
{
    fr_run_until(h->fr, h->s, h->fr->now + dt);
}
