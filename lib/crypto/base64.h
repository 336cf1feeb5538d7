/* base64.h -- RFC 4648 base64: standard alphabet with '=' padding, and URL-safe without.
 *
 * Decoding is strict: only the variant's alphabet, no whitespace, padding exactly as the
 * variant wants it (standard: always to a multiple of four; URL: never), and the unused bits
 * of the last character zero.  So every input has at most one encoding, and decode followed
 * by encode gives the input back.
 */
#ifndef SNAP_CRYPTO_BASE64_H
#define SNAP_CRYPTO_BASE64_H

#include <stddef.h>
#include <stdint.h>

enum base64_variant {
    BASE64_STD, /* A-Z a-z 0-9 + /, padded with '=' (RFC 4648 section 4) */
    BASE64_URL, /* A-Z a-z 0-9 - _, no padding (section 5, as JWT uses it) */
};

/* Characters base64_encode writes for n input bytes, not counting the NUL. */
size_t base64_encoded_len(enum base64_variant v, size_t n);
/* Encode n bytes into out, which holds base64_encoded_len(v, n) + 1 bytes; NUL-terminates
 * and returns the length. */
size_t base64_encode(enum base64_variant v, const void *in, size_t n, char *out);

/* Bytes that decoding len characters can produce at most. */
size_t base64_decoded_max(size_t len);
/* Decode len characters into out (outsize bytes; base64_decoded_max(len) is always enough).
 * Returns 0 with *outlen set, SNAP_EFORMAT naming the offset of the first bad character or the
 * bad length, or SNAP_ETOOBIG when out is too small. */
int base64_decode(enum base64_variant v, const char *in, size_t len, uint8_t *out, size_t outsize,
                  size_t *outlen);

#endif
