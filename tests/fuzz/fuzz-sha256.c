/* fuzz-sha256.c -- differential: SHA-NI (where the CPU has it) against mbedTLS, the input cut
 * at split points taken from the input itself. */
#include "crypto/sha256.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t ref[32], got[32];
    struct sha256_ctx c;
    sha256_init_impl(&c, SHA256_IMPL_GENERIC);
    sha256_update(&c, data, size);
    sha256_final(&c, ref);

    enum sha256_impl impl = sha256_have_shani() ? SHA256_IMPL_SHANI : SHA256_IMPL_GENERIC;
    sha256_init_impl(&c, impl);
    size_t off = 0, k = 0;
    while (off < size) {
        size_t step = (size_t)data[k++ % size] * 3 % 200; /* 0..199: crosses block edges */
        if (step == 0) { /* an empty update, then make progress */
            sha256_update(&c, data + off, 0);
            step = 1;
        }
        if (step > size - off)
            step = size - off;
        sha256_update(&c, data + off, step);
        off += step;
    }
    sha256_final(&c, got);
    if (memcmp(ref, got, 32) != 0)
        abort();
    return 0;
}
