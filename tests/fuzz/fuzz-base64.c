/* fuzz-base64.c -- strict decoding: whatever decodes re-encodes to the same text, and any
 * bytes round-trip through both variants.  The first input byte picks the variant. */
#include "base/err.h"
#include "crypto/base64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    enum base64_variant v = data[0] & 1 ? BASE64_URL : BASE64_STD;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    uint8_t dec[4096];
    char enc[5462];
    size_t n;
    if (base64_decode(v, text, len, dec, base64_decoded_max(len), &n) == 0) {
        size_t m = base64_encode(v, dec, n, enc);
        if (m != len || memcmp(enc, text, len) != 0)
            abort(); /* two encodings of one value */
    }
    /* A buffer one byte short must be refused, not overrun. */
    if (len > 0 && base64_decode(v, text, len, dec, 0, &n) == 0 && n != 0)
        abort();

    for (int w = BASE64_STD; w <= BASE64_URL; w++) {
        size_t m = base64_encode((enum base64_variant)w, data, size, enc);
        if (m != base64_encoded_len((enum base64_variant)w, size) || enc[m] != '\0')
            abort();
        if (base64_decode((enum base64_variant)w, enc, m, dec, sizeof dec, &n) != 0 || n != size ||
            memcmp(dec, data, size) != 0)
            abort();
    }
    return 0;
}
