/* entropy.c -- the entropy source mbedTLS draws from: getrandom(2), so TLS, PSA and every DRBG
 * work in an empty chroot with no /dev at all.
 *
 * mbedTLS's own platform source uses getrandom only under glibc and otherwise opens /dev/urandom;
 * built against musl and run where /dev is missing, psa_crypto_init then fails with
 * PSA_ERROR_INSUFFICIENT_ENTROPY. third_party/build-deps.sh sets MBEDTLS_NO_PLATFORM_ENTROPY and
 * MBEDTLS_ENTROPY_HARDWARE_ALT, which makes this function mbedTLS's strong source.
 */
#include <errno.h>
#include <stddef.h>
#include <sys/random.h>

int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen);

int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen)
{
    (void)data;
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(output + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break; /* ENOSYS on a kernel before 3.17: mbedTLS reports the shortfall */
        }
        got += (size_t)n;
    }
    *olen = got;
    return 0;
}
