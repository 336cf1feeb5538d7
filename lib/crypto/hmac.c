/* hmac.c -- HMAC-SHA256: the padded key starts both the inner and the outer hash at init. */
#include "crypto/hmac.h"

#include <mbedtls/platform_util.h>

#include <string.h>

void hmac_sha256_init(struct hmac_sha256_ctx *h, const void *key, size_t keylen)
{
    uint8_t k[SHA256_BLOCK_LEN] = {0}, pad[SHA256_BLOCK_LEN];
    if (keylen > SHA256_BLOCK_LEN)
        sha256(key, keylen, k);
    else if (keylen > 0)
        memcpy(k, key, keylen);

    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x36;
    sha256_init(&h->inner);
    sha256_update(&h->inner, pad, sizeof pad);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x5c;
    sha256_init(&h->outer);
    sha256_update(&h->outer, pad, sizeof pad);

    mbedtls_platform_zeroize(k, sizeof k);
    mbedtls_platform_zeroize(pad, sizeof pad);
}

void hmac_sha256_update(struct hmac_sha256_ctx *h, const void *data, size_t len)
{
    sha256_update(&h->inner, data, len);
}

void hmac_sha256_final(struct hmac_sha256_ctx *h, uint8_t out[HMAC_SHA256_LEN])
{
    uint8_t ih[SHA256_DIGEST_LEN];
    sha256_final(&h->inner, ih);
    sha256_update(&h->outer, ih, sizeof ih);
    sha256_final(&h->outer, out);
    mbedtls_platform_zeroize(ih, sizeof ih);
    mbedtls_platform_zeroize(h, sizeof *h);
}

void hmac_sha256(const void *key, size_t keylen, const void *data, size_t len, uint8_t out[HMAC_SHA256_LEN])
{
    struct hmac_sha256_ctx h;
    hmac_sha256_init(&h, key, keylen);
    hmac_sha256_update(&h, data, len);
    hmac_sha256_final(&h, out);
}
