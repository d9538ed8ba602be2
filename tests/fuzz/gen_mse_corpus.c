/* Writes the seed corpus of fuzz_mse (tests/fuzz/corpus/mse/): valid handshakes made with core/mse_initiator.
 * Raw-mode seeds are side A's whole stream against the fuzz target's fixed responder key (so they pass req1 and
 * libFuzzer's mutations reach VC, crypto_provide, PadC and len(IA)); handshake-mode seeds are parameter sets.
 * Build and run (from the source tree, after a release build):
 *   cc -Icore tests/fuzz/gen_mse_corpus.c build/release/core/libhekate_core.a -lcrypto -o /tmp/gen_mse_corpus
 *   /tmp/gen_mse_corpus tests/fuzz/corpus/mse */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mse.h"
#include "mse_crypto.h"
#include "mse_initiator.h"

static const uint8_t IH[20] = "fuzz-info-hash-00000";
static const uint8_t PRIV_B[20] = {0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19};

static bool find_ih(void *ctx, const uint8_t req2[20], uint8_t out[20])
{
    (void)ctx;
    uint8_t want[20];
    hk_mse_hash("req2", IH, 20, NULL, 0, want);
    if (memcmp(want, req2, 20) != 0)
        return false;
    memcpy(out, IH, 20);
    return true;
}

static void write_file(const char *dir, const char *name, const uint8_t *b, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* A's stream against the fixed responder: flags byte (raw mode, policy), seed byte, then the bytes. */
static void raw_seed(const char *dir, int k, uint32_t provide, size_t pad_a, size_t pad_c, size_t ia_len)
{
    hk_mem mem = {0};
    uint8_t priv[20], pad[600], ia[100] = "\x13" "BitTorrent protocol";
    for (int i = 0; i < 20; i++)
        priv[i] = (uint8_t)(k * 17 + i);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = (uint8_t)(i * 31 + (size_t)k);
    hk_mse_init_opts o = {.priv = priv, .provide = provide, .pad = pad, .pad_a_len = pad_a, .pad_c_len = pad_c,
                          .ia = ia, .ia_len = ia_len};
    memcpy(o.skey, IH, 20);
    hk_mse_init *a = hk_mse_init_new(&mem, &o);
    hk_mse *b = hk_mse_new(&mem, HK_ENC_ALLOW, PRIV_B, (const uint8_t *)"padpadpad", 9, find_ih, NULL);
    uint8_t out[4096];
    size_t len = 2;
    out[0] = (uint8_t)(4 | (k & 3));
    out[1] = (uint8_t)(k * 7);
    hk_mse_result ra, rb;
    for (int round = 0; round < 3; round++) {
        size_t n, used;
        const uint8_t *p = hk_mse_init_output(a, &n);
        memcpy(out + len, p, n);
        hk_mse_feed(b, out + len, n, &used, &rb);
        len += n;
        p = hk_mse_output(b, &n);
        if (n)
            hk_mse_init_feed(a, p, n, &used, &ra);
    }
    char name[64];
    snprintf(name, sizeof name, "raw-%02d", k);
    write_file(dir, name, out, len);
    hk_mse_init_free(a);
    hk_mse_free(b); /* the results' ciphers are not needed: a tool's leak at exit is harmless */
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    raw_seed(dir, 0, 3, 0, 0, 68);
    raw_seed(dir, 1, 2, 512, 512, 68);
    raw_seed(dir, 2, 1, 17, 0, 0);
    raw_seed(dir, 3, 3, 100, 200, 100);
    raw_seed(dir, 4, 2, 600, 0, 68);
    /* handshake mode: flags, seed, provide, pad_a(2), pad_c(2), ia_len, padb flag, unused, offset(2), rest */
    static const uint8_t hs[][16] = {
        {0, 1, 3, 0, 0, 0, 0, 68, 0, 0, 0, 0, 1, 2, 3, 4},
        {1, 9, 3, 0x01, 0x00, 0x00, 0x40, 68, 1, 0, 0, 0, 0, 0, 0, 0},
        {2, 5, 1, 0, 10, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0},
        {0, 7, 2, 0x02, 0x58, 0, 0, 68, 0, 0, 0, 0, 0, 0, 0, 0},
        {3, 3, 3, 0, 5, 0, 5, 68, 0, 0, 0, 0x80, 0xFF, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof hs / sizeof *hs; i++) {
        char name[64];
        snprintf(name, sizeof name, "handshake-%02zu", i);
        write_file(dir, name, hs[i], sizeof hs[i]);
    }
    return 0;
}
