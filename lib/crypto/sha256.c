/* sha256.c -- SHA-256 contexts: buffering and padding for the SHA-NI path, mbedTLS otherwise.
 *
 * The default implementation is decided once (cpuid, then SNAPCTL_SHA256=generic) and kept in
 * an atomic so sha256_select() may change it while other threads hash; each context copies it
 * at init and never looks at it again.
 */
#include "crypto/sha256.h"

#include "base/err.h"
#include "base/bytes.h"
#include "base/util.h"
#include "crypto/sha256-ni.h"

#include <mbedtls/platform_util.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static bool sha256_cpu_ni;
static _Atomic int sha256_default = SHA256_IMPL_GENERIC;

static void sha256_detect(void)
{
    sha256_cpu_ni = sha256_ni_supported();
    const char *env = getenv("SNAPCTL_SHA256");
    bool force_generic = env && !strcmp(env, "generic");
    atomic_store(&sha256_default, sha256_cpu_ni && !force_generic ? SHA256_IMPL_SHANI : SHA256_IMPL_GENERIC);
}

bool sha256_have_shani(void)
{
    pthread_once(&sha256_once, sha256_detect);
    return sha256_cpu_ni;
}

enum sha256_impl sha256_impl(void)
{
    pthread_once(&sha256_once, sha256_detect);
    return (enum sha256_impl)atomic_load(&sha256_default);
}

const char *sha256_impl_name(enum sha256_impl impl)
{
    switch (impl) {
    case SHA256_IMPL_SHANI: return "sha-ni";
    case SHA256_IMPL_GENERIC: return "generic";
    default: return "auto";
    }
}

int sha256_select(enum sha256_impl impl)
{
    pthread_once(&sha256_once, sha256_detect);
    if (impl == SHA256_IMPL_AUTO)
        impl = sha256_cpu_ni ? SHA256_IMPL_SHANI : SHA256_IMPL_GENERIC;
    if (impl == SHA256_IMPL_SHANI && !sha256_cpu_ni)
        return snap_fail(SNAP_ENOTSUP, "sha256: this CPU has no SHA extensions (cpuid SHA + SSE4.1)");
    if (impl != SHA256_IMPL_SHANI && impl != SHA256_IMPL_GENERIC)
        return snap_fail(SNAP_EINTERNAL, "sha256: unknown implementation %d", (int)impl);
    atomic_store(&sha256_default, impl);
    return 0;
}

int sha256_init_impl(struct sha256_ctx *c, enum sha256_impl impl)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    if (impl == SHA256_IMPL_AUTO)
        impl = sha256_impl();
    if (impl == SHA256_IMPL_SHANI && !sha256_have_shani())
        return snap_fail(SNAP_ENOTSUP, "sha256: this CPU has no SHA extensions (cpuid SHA + SSE4.1)");
    c->impl = impl;
    if (impl == SHA256_IMPL_SHANI) {
        memcpy(c->u.ni.h, iv, sizeof iv);
        c->u.ni.total = 0;
        c->u.ni.buflen = 0;
    } else {
        c->impl = SHA256_IMPL_GENERIC;
        mbedtls_sha256_init(&c->u.mb);
        mbedtls_sha256_starts(&c->u.mb, 0); /* cannot fail for SHA-256 */
    }
    return 0;
}

void sha256_init(struct sha256_ctx *c)
{
    sha256_init_impl(c, SHA256_IMPL_AUTO); /* AUTO resolves to a usable implementation */
}

void sha256_update(struct sha256_ctx *c, const void *data, size_t len)
{
    if (len == 0)
        return;
    if (c->impl != SHA256_IMPL_SHANI) {
        mbedtls_sha256_update(&c->u.mb, data, len); /* cannot fail: no allocation, no limits */
        return;
    }
    const uint8_t *p = data;
    c->u.ni.total += len;
    if (c->u.ni.buflen > 0) {
        size_t take = snap_min_u64(SHA256_BLOCK_LEN - c->u.ni.buflen, len);
        memcpy(c->u.ni.buf + c->u.ni.buflen, p, take);
        c->u.ni.buflen += take;
        p += take;
        len -= take;
        if (c->u.ni.buflen < SHA256_BLOCK_LEN)
            return;
        sha256_ni_blocks(c->u.ni.h, c->u.ni.buf, 1);
        c->u.ni.buflen = 0;
    }
    if (len >= SHA256_BLOCK_LEN) {
        size_t n = len / SHA256_BLOCK_LEN;
        sha256_ni_blocks(c->u.ni.h, p, n);
        p += n * SHA256_BLOCK_LEN;
        len -= n * SHA256_BLOCK_LEN;
    }
    memcpy(c->u.ni.buf, p, len);
    c->u.ni.buflen = len;
}

void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_DIGEST_LEN])
{
    if (c->impl != SHA256_IMPL_SHANI) {
        mbedtls_sha256_finish(&c->u.mb, out);
        mbedtls_sha256_free(&c->u.mb);
        return;
    }
    /* 0x80, zeros up to 56 mod 64, then the length in bits, big-endian. */
    uint64_t bits = c->u.ni.total * 8;
    size_t n = c->u.ni.buflen;
    c->u.ni.buf[n++] = 0x80;
    if (n > SHA256_BLOCK_LEN - 8) {
        memset(c->u.ni.buf + n, 0, SHA256_BLOCK_LEN - n);
        sha256_ni_blocks(c->u.ni.h, c->u.ni.buf, 1);
        n = 0;
    }
    memset(c->u.ni.buf + n, 0, SHA256_BLOCK_LEN - 8 - n);
    put_be64(c->u.ni.buf + SHA256_BLOCK_LEN - 8, bits);
    sha256_ni_blocks(c->u.ni.h, c->u.ni.buf, 1);
    for (int i = 0; i < 8; i++)
        put_be32(out + 4 * i, c->u.ni.h[i]);
    mbedtls_platform_zeroize(c, sizeof *c);
}

void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_LEN])
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, data, len);
    sha256_final(&c, out);
}

void sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1])
{
    uint8_t d[SHA256_DIGEST_LEN];
    sha256(data, len, d);
    snap_hex(d, sizeof d, out);
}
