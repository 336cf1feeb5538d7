/* sha256-ni.h -- private to lib/crypto: the SHA-256 compression function on x86 SHA extensions. */
#ifndef SNAP_CRYPTO_SHA256_NI_H
#define SNAP_CRYPTO_SHA256_NI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* cpuid says SHA, SSE4.1 and SSSE3 are there (always false off x86-64). */
bool sha256_ni_supported(void);
/* Run nblocks 64-byte blocks at p through the state h[0..7] (a..h, host order).  Only call it
 * when sha256_ni_supported() is true. */
void sha256_ni_blocks(uint32_t h[8], const uint8_t *p, size_t nblocks);

#endif
