/* md5.c -- MD5 over mbedTLS (see md5.h). */
#include "crypto/md5.h"

void md5_init(struct md5_ctx *c)
{
    mbedtls_md5_init(&c->m);
    mbedtls_md5_starts(&c->m);
}

void md5_update(struct md5_ctx *c, const void *p, size_t n)
{
    mbedtls_md5_update(&c->m, p, n);
}

void md5_final(struct md5_ctx *c, uint8_t digest[MD5_DIGEST_LEN])
{
    mbedtls_md5_finish(&c->m, digest);
    mbedtls_md5_free(&c->m);
}
