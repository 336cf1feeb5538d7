/* hmac.h -- HMAC-SHA256 (RFC 2104) on lib/crypto's SHA-256, one-shot and streaming.
 *
 *   struct hmac_sha256_ctx h;
 *   hmac_sha256_init(&h, key, keylen);
 *   hmac_sha256_update(&h, p, n);        // any number of times
 *   hmac_sha256_final(&h, mac);          // wipes the context
 * Keys longer than a block are hashed first, as the RFC says.  No heap memory is used.
 */
#ifndef SNAP_CRYPTO_HMAC_H
#define SNAP_CRYPTO_HMAC_H

#include "crypto/sha256.h"

#include <stddef.h>
#include <stdint.h>

#define HMAC_SHA256_LEN SHA256_DIGEST_LEN

struct hmac_sha256_ctx {
    struct sha256_ctx inner; /* H(K ^ ipad || message...) */
    struct sha256_ctx outer; /* H(K ^ opad || ...), finished in hmac_sha256_final */
};

void hmac_sha256_init(struct hmac_sha256_ctx *h, const void *key, size_t keylen);
void hmac_sha256_update(struct hmac_sha256_ctx *h, const void *data, size_t len);
void hmac_sha256_final(struct hmac_sha256_ctx *h, uint8_t out[HMAC_SHA256_LEN]);

void hmac_sha256(const void *key, size_t keylen, const void *data, size_t len, uint8_t out[HMAC_SHA256_LEN]);

#endif
