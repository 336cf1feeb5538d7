/* sha256.h -- SHA-256, streaming and one-shot, with the CPU's SHA extensions when it has them.
 *
 *   struct sha256_ctx c;
 *   sha256_init(&c);
 *   sha256_update(&c, p, n);   // any number of times, any split points
 *   sha256_final(&c, digest);  // the context may be initialised again afterwards
 *
 * Two implementations: "sha-ni" (x86 SHA extensions, picked at run time by cpuid) and
 * "generic" (mbedTLS).  A context keeps the implementation it was initialised with, so
 * changing the default never disturbs a hash in progress.  SNAPCTL_SHA256=generic in the
 * environment, or sha256_select(SHA256_IMPL_GENERIC), makes new contexts use the fallback.
 * A context holds no heap memory: abandoning one without sha256_final leaks nothing.
 */
#ifndef SNAP_CRYPTO_SHA256_H
#define SNAP_CRYPTO_SHA256_H

#include <mbedtls/sha256.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32
#define SHA256_BLOCK_LEN 64
#define SHA256_HEX_LEN 64 /* plus a NUL */

enum sha256_impl {
    SHA256_IMPL_AUTO = 0, /* only for sha256_select(): the best this CPU has */
    SHA256_IMPL_GENERIC,  /* mbedTLS */
    SHA256_IMPL_SHANI,    /* x86 SHA extensions (SHA-NI) with SSE4.1 */
};

struct sha256_ctx {
    enum sha256_impl impl;
    union {
        struct {
            uint32_t h[8];
            uint64_t total; /* bytes hashed so far */
            uint8_t buf[SHA256_BLOCK_LEN];
            size_t buflen;
        } ni;
        mbedtls_sha256_context mb;
    } u;
};

/* True when this CPU can run the SHA-NI implementation (cpuid: SHA, SSE4.1, SSSE3). */
bool sha256_have_shani(void);
/* The implementation new contexts use. */
enum sha256_impl sha256_impl(void);
/* "sha-ni" or "generic". */
const char *sha256_impl_name(enum sha256_impl impl);
/* Set the implementation new contexts use: AUTO, GENERIC or SHANI.  Returns 0, or
 * SNAP_ENOTSUP when SHANI is asked for on a CPU without it (the default is then unchanged). */
int sha256_select(enum sha256_impl impl);

void sha256_init(struct sha256_ctx *c);
/* Start a hash with a given implementation (tests and benchmarks compare them); AUTO means
 * the current default.  Returns 0, or SNAP_ENOTSUP for SHANI on a CPU without it. */
int sha256_init_impl(struct sha256_ctx *c, enum sha256_impl impl);
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
/* Write the digest and wipe the context. */
void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_DIGEST_LEN]);

/* One-shot digest of len bytes. */
void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_LEN]);
/* One-shot digest as lower-case hex with a NUL. */
void sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1]);

#endif
