/* mse_initiator: side A of the MSE/PE handshake (core/mse.h describes the exchange), an I/O-free state machine for
 * the unit tests, the fuzz corpus generator and the simulator's leechers.
 *
 * Contract
 * --------
 * hk_mse_init_new produces Ya + PadA at once (hk_mse_init_output). Fed B's bytes in any chunking, it computes S when
 * Yb is in and outputs HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S), ENCRYPT(VC, crypto_provide,
 * len(PadC), PadC, len(IA), IA) (keyA); then it searches B's stream for ENCRYPT(VC) (keyB) within PadB's bound (512),
 * reads crypto_select and PadD, and reports DONE. After DONE the caller encrypts what it sends with result.send
 * (keyA) when RC4 was selected, and decrypts what it receives with result.rx (keyB; rx.ia_left is 0).
 * The opts' pad bytes are used as given (NULL: zeros), so a test can send garbage or patterned pads; the lengths are
 * NOT checked against the spec's bounds (a test may send 600 bytes of PadA on purpose): at most 1024 each.
 *
 * Return codes: hk_mse_init_new returns NULL when memory runs out, a length exceeds 1024 or ia_len exceeds 65535.
 * hk_mse_init_feed: as hk_mse_feed (HK_MSE_FAIL when Yb is degenerate, VC never appears within 628 bytes, or B
 * selects a method that was not offered; sticky).
 */
#ifndef HEKATE_MSE_INITIATOR_H
#define HEKATE_MSE_INITIATOR_H

#include "mse.h"

#define HK_MSE_INIT_FIELD_MAX 1024u

typedef struct hk_mse_init_opts {
    const uint8_t *priv;           /* 20 bytes */
    uint8_t skey[20];              /* the info-hash */
    uint32_t provide;              /* crypto_provide bits */
    const uint8_t *pad;            /* bytes for PadA and PadC (NULL: zeros) */
    size_t pad_a_len, pad_c_len;
    const uint8_t *ia;             /* initial payload (the BitTorrent handshake), may be NULL with ia_len 0 */
    size_t ia_len;
} hk_mse_init_opts;

typedef struct hk_mse_init hk_mse_init;

hk_mse_init *hk_mse_init_new(hk_mem *mem, const hk_mse_init_opts *opts);
hk_mse_status hk_mse_init_feed(hk_mse_init *m, const uint8_t *in, size_t len, size_t *consumed,
                               hk_mse_result *out);
/* Bytes to send now (valid until the next call on m); taking them empties the output. */
const uint8_t *hk_mse_init_output(hk_mse_init *m, size_t *len);
const char *hk_mse_init_error(const hk_mse_init *m);
void hk_mse_init_free(hk_mse_init *m);

#endif
