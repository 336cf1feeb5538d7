/* md5.h -- MD5, streaming, for checking S3's ETags (not for security).
 *
 *   struct md5_ctx c;
 *   md5_init(&c);
 *   md5_update(&c, p, n);   // any number of times
 *   md5_final(&c, digest);  // the context may be initialised again afterwards
 */
#ifndef SNAP_CRYPTO_MD5_H
#define SNAP_CRYPTO_MD5_H

#include <mbedtls/md5.h>

#include <stddef.h>
#include <stdint.h>

#define MD5_DIGEST_LEN 16

struct md5_ctx {
    mbedtls_md5_context m;
};

void md5_init(struct md5_ctx *c);
void md5_update(struct md5_ctx *c, const void *p, size_t n);
/* Write the digest and release the context. */
void md5_final(struct md5_ctx *c, uint8_t digest[MD5_DIGEST_LEN]);

#endif
