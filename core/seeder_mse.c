/* seeder_mse: owns what the seeder does with a connection's bytes before the wire decoder: telling a plain
 * BitTorrent handshake from an MSE/PE one by the first bytes, running the MSE responder (core/mse.h) with the
 * policy, installing the send cipher (rt->set_cipher) and decrypting every later received byte. See seeder.h's
 * MSE/PE paragraph for the behaviour and the log lines. */
#include <stdio.h>
#include <string.h>

#include "infohash.h"
#include "seeder_internal.h"

static const uint8_t plain_prefix[20] = "\x13" "BitTorrent protocol";

static unsigned long long pid(const hk_peer *p)
{
    return (unsigned long long)p->id;
}

/* The first bytes are looked at when an MSE handshake may follow, or when a plain one must be refused. */
static bool sniffing(const hk_seeder *s)
{
    return (s->cfg.encryption != HK_ENC_OFF && s->rt.set_cipher != NULL) || s->cfg.encryption == HK_ENC_REQUIRE;
}

/* The SKEY lookup the responder calls: HASH('req2', info-hash) through the torrent table's SKEY index. */
static bool find_skey(void *ctx, const uint8_t req2[20], uint8_t info_hash_out[20])
{
    hk_seeder *s = ctx;
    const hk_torrent *t = hk_tt_get(&s->torrents, hk_tt_find_skey(&s->torrents, req2));
    if (!t)
        return false;
    memcpy(info_hash_out, t->info_hash, 20);
    return true;
}

static void mse_fail(hk_seeder *s, hk_peer *p, const char *why)
{
    s->stats.mse_failures++;
    hks_close_peer(s, p, true, "mse handshake failed: %s", why);
}

/* Received plaintext-to-be: through p->mse->rx (a bounded scratch at a time) into the wire decoder. */
static void recv_payload(hk_seeder *s, hk_peer *p, const uint8_t *bytes, size_t len)
{
    while (len && !p->closed) {
        if (!p->mse || !hk_mse_rx_active(&p->mse->rx)) {
            hks_wire_recv(s, p, bytes, len);
            return;
        }
        if (!s->rxbuf && !(s->rxbuf = hk_mem_alloc(&s->mem, HKS_RX_SCRATCH))) {
            hks_close_peer(s, p, true, "out of memory for decryption");
            return;
        }
        size_t k = len < HKS_RX_SCRATCH ? len : HKS_RX_SCRATCH;
        hk_mse_rx_apply(&p->mse->rx, bytes, s->rxbuf, k);
        hks_wire_recv(s, p, s->rxbuf, k);
        bytes += k;
        len -= k;
    }
}

/* The responder finished: keep the ciphers, log the method, restart the wire decoder for the BitTorrent stream. */
static void mse_done(hk_seeder *s, hk_peer *p, hk_mse_result *r)
{
    hk_peer_mse *m = p->mse;
    hk_mse_free(m->hs);
    m->hs = NULL;
    s->stats.mse_handshakes++;
    p->via_mse = true;
    memcpy(m->ih, r->info_hash, 20);
    m->rx = r->rx;
    char hex[IH_HEX_LEN + 1];
    ih_hex(r->info_hash, hex);
    if (r->selected == HK_MSE_CRYPTO_RC4) {
        p->encrypted = true;
        s->npeers_encrypted++;
        m->send = r->send;
        s->rt.set_cipher(s->rt.base.ctx, p->conn, r->send);
        hks_log(s, HK_LOG_DEBUG, "peer %llu: mse handshake for torrent %s: encrypted rc4 (offered %s)", pid(p), hex,
                hk_mse_method_name(r->provided & 3u));
    } else {
        hk_cipher_free(r->send); /* the MSE reply was encrypted by the responder; the rest goes in clear */
        hks_log(s, HK_LOG_DEBUG, "peer %llu: mse handshake for torrent %s: plaintext (offered %s)", pid(p), hex,
                hk_mse_method_name(r->provided & 3u));
    }
    uint64_t before = wire_decoder_memory(&p->dec);
    wire_decoder_reset(&p->dec); /* it had seen the bytes that turned out not to be a plain handshake */
    s->decoder_bytes = s->decoder_bytes + wire_decoder_memory(&p->dec) - before;
}

static void mse_recv(hk_seeder *s, hk_peer *p, const uint8_t *bytes, size_t len)
{
    size_t used = 0, n = 0;
    hk_mse_result r;
    hk_mse *hs = p->mse->hs;
    hk_mse_status st = hk_mse_feed(hs, bytes, len, &used, &r);
    const uint8_t *out = hk_mse_output(hs, &n);
    if (n && !hks_send_control_bytes(s, p, out, n)) {
        if (st == HK_MSE_DONE) { /* closed for not reading: the ciphers are ours to free */
            hk_mse_rx_free(&r.rx);
            hk_cipher_free(r.send);
        }
        return;
    }
    if (st == HK_MSE_FAIL) {
        mse_fail(s, p, hk_mse_error(hs));
        return;
    }
    if (st == HK_MSE_NEED_MORE)
        return;
    mse_done(s, p, &r);
    if (used < len)
        recv_payload(s, p, bytes + used, len - used);
}

/* The stream's first bytes are not a plain handshake: start the responder with the prefix bytes already seen. */
static void mse_start(hk_seeder *s, hk_peer *p, const uint8_t *bytes, size_t len)
{
    uint8_t rnd[HK_MSE_PRIV_LEN + 1 + 255];
    s->rt.base.random_bytes(s->rt.base.ctx, rnd, HK_MSE_PRIV_LEN + 1);
    size_t pad_len = rnd[HK_MSE_PRIV_LEN]; /* PadB: 0..255 random bytes (the spec allows up to 512) */
    if (pad_len)
        s->rt.base.random_bytes(s->rt.base.ctx, rnd + HK_MSE_PRIV_LEN + 1, pad_len);
    hk_peer_mse *m = hk_mem_calloc(&s->mem, 1, sizeof *m);
    if (m) {
        m->mem = &s->mem;
        p->mse = m;
        m->hs = hk_mse_new(&s->mem, s->cfg.encryption, rnd, rnd + HK_MSE_PRIV_LEN + 1, pad_len, find_skey, s);
    }
    memset(rnd, 0, HK_MSE_PRIV_LEN);
    if (!m || !m->hs) {
        hks_close_peer(s, p, true, "out of memory for the mse handshake");
        return;
    }
    hks_log(s, HK_LOG_DEBUG, "peer %llu: mse handshake started", pid(p));
    if (p->sniffed)
        mse_recv(s, p, plain_prefix, p->sniffed);
    if (!p->closed && p->mse->hs)
        mse_recv(s, p, bytes, len);
    else if (!p->closed)
        recv_payload(s, p, bytes, len); /* not reached: the prefix alone never completes a handshake */
}

/* While the stream's start may still be a plain handshake: true when the bytes go on to the wire decoder. */
static bool sniff(hk_seeder *s, hk_peer *p, const uint8_t *bytes, size_t len)
{
    size_t n = sizeof plain_prefix - p->sniffed;
    if (n > len)
        n = len;
    if (memcmp(bytes, plain_prefix + p->sniffed, n) != 0) {
        if (!s->rt.set_cipher || s->cfg.encryption == HK_ENC_OFF)
            return true; /* no MSE here: the wire decoder names what is wrong */
        mse_start(s, p, bytes, len);
        return false;
    }
    p->sniffed = (uint8_t)(p->sniffed + n);
    if (p->sniffed == sizeof plain_prefix && s->cfg.encryption == HK_ENC_REQUIRE) {
        hks_close_peer(s, p, true, "plain handshake refused: encryption required");
        return false;
    }
    return true;
}

void hks_proto_recv(hk_seeder *s, hk_peer *p, const uint8_t *bytes, size_t len)
{
    hks_mark_touched(s, p);
    if (p->mse && p->mse->hs) {
        mse_recv(s, p, bytes, len);
        return;
    }
    if (p->phase == HK_PHASE_HANDSHAKE && !p->via_mse && p->sniffed < sizeof plain_prefix && sniffing(s) &&
        !sniff(s, p, bytes, len))
        return;
    recv_payload(s, p, bytes, len);
}

void hks_mse_free(hk_seeder *s)
{
    hk_mem_free(&s->mem, s->rxbuf, HKS_RX_SCRATCH);
    s->rxbuf = NULL;
}
