/* infohash: SHA-1 through libcrypto's EVP interface (SHA1() is deprecated in OpenSSL 3) and hex conversion. */
#include "infohash.h"

#include <openssl/evp.h>
#include <string.h>

bool ih_sha1(const void *data, size_t len, uint8_t out[IH_LEN])
{
    static const uint8_t empty = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, len ? data : &empty, len) == 1 && EVP_DigestFinal_ex(ctx, out, &n) == 1 &&
              n == IH_LEN;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        memset(out, 0, IH_LEN);
    return ok;
}

void ih_hex(const uint8_t hash[IH_LEN], char out[IH_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < IH_LEN; i++) {
        out[2 * i] = digits[hash[i] >> 4];
        out[2 * i + 1] = digits[hash[i] & 15];
    }
    out[IH_HEX_LEN] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool ih_from_hex(const char *hex, size_t len, uint8_t out[IH_LEN])
{
    if (hex == NULL || len != IH_HEX_LEN)
        return false;
    uint8_t tmp[IH_LEN];
    for (size_t i = 0; i < IH_LEN; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        tmp[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(out, tmp, IH_LEN);
    return true;
}
