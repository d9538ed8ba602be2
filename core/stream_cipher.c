/* stream_cipher: RC4-drop1024 over libcrypto's RC4 (see stream_cipher.h). OpenSSL 3 marks the low-level RC4 calls
 * deprecated (EVP would need the legacy provider loaded at run time); they remain the library's plain primitive. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "stream_cipher.h"

#include <openssl/rc4.h>

struct hk_cipher {
    RC4_KEY key;
    hk_mem *mem;
};

hk_cipher *hk_cipher_new_rc4(hk_mem *mem, const uint8_t *key, size_t keylen)
{
    if (keylen == 0 || keylen > INT32_MAX)
        return NULL;
    hk_cipher *c = hk_mem_calloc(mem, 1, sizeof *c);
    if (!c)
        return NULL;
    c->mem = mem;
    RC4_set_key(&c->key, (int)keylen, key);
    uint8_t discard[1024] = { 0 };
    RC4(&c->key, sizeof discard, discard, discard);
    return c;
}

void hk_cipher_apply(hk_cipher *c, const uint8_t *in, uint8_t *out, size_t len)
{
    if (len)
        RC4(&c->key, len, in, out);
}

size_t hk_cipher_memory(void)
{
    return sizeof(struct hk_cipher);
}

void hk_cipher_free(hk_cipher *c)
{
    if (c)
        hk_mem_free(c->mem, c, sizeof *c);
}
