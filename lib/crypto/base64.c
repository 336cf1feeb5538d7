/* base64.c -- strict RFC 4648 base64 and base64url, table driven. */
#include "crypto/base64.h"

#include "base/err.h"

static const char base64_std_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char base64_url_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static const char *base64_name(enum base64_variant v)
{
    return v == BASE64_URL ? "base64url" : "base64";
}

size_t base64_encoded_len(enum base64_variant v, size_t n)
{
    size_t full = n / 3 * 4, rem = n % 3;
    if (rem == 0)
        return full;
    return full + (v == BASE64_URL ? rem + 1 : 4);
}

size_t base64_encode(enum base64_variant v, const void *in, size_t n, char *out)
{
    const char *abc = v == BASE64_URL ? base64_url_chars : base64_std_chars;
    const uint8_t *p = in;
    char *o = out;
    for (; n >= 3; n -= 3, p += 3) {
        uint32_t w = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        *o++ = abc[w >> 18];
        *o++ = abc[(w >> 12) & 63];
        *o++ = abc[(w >> 6) & 63];
        *o++ = abc[w & 63];
    }
    if (n > 0) {
        uint32_t w = (uint32_t)p[0] << 16 | (n == 2 ? (uint32_t)p[1] << 8 : 0);
        *o++ = abc[w >> 18];
        *o++ = abc[(w >> 12) & 63];
        if (n == 2)
            *o++ = abc[(w >> 6) & 63];
        if (v == BASE64_STD) {
            if (n == 1)
                *o++ = '=';
            *o++ = '=';
        }
    }
    *o = '\0';
    return (size_t)(o - out);
}

size_t base64_decoded_max(size_t len)
{
    return len / 4 * 3 + (len % 4 * 3) / 4;
}

/* The 6-bit value of c in the variant's alphabet, or -1. */
static int base64_value(enum base64_variant v, unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (v == BASE64_URL ? '-' : '+'))
        return 62;
    if (c == (v == BASE64_URL ? '_' : '/'))
        return 63;
    return -1;
}

int base64_decode(enum base64_variant v, const char *in, size_t len, uint8_t *out, size_t outsize,
                  size_t *outlen)
{
    const char *name = base64_name(v);
    size_t data = len; /* characters before the padding */
    if (v == BASE64_STD) {
        if (len % 4 != 0)
            return snap_fail(SNAP_EFORMAT, "%s: length %zu is not a multiple of 4", name, len);
        if (len > 0 && in[len - 1] == '=')
            data = len - (len >= 2 && in[len - 2] == '=' ? 2 : 1);
    } else if (len % 4 == 1) {
        return snap_fail(SNAP_EFORMAT, "%s: length %zu cannot be an encoding (one character over)", name, len);
    }
    size_t need = data / 4 * 3 + (data % 4 ? data % 4 - 1 : 0);
    if (need > outsize)
        return snap_fail(SNAP_ETOOBIG, "%s: %zu bytes do not fit in %zu", name, need, outsize);

    uint32_t acc = 0;
    size_t o = 0;
    for (size_t i = 0; i < data; i++) {
        int val = base64_value(v, (unsigned char)in[i]);
        if (val < 0)
            return snap_fail(SNAP_EFORMAT, "%s: invalid character 0x%02x at offset %zu", name,
                             (unsigned char)in[i], i);
        acc = acc << 6 | (uint32_t)val;
        if (i % 4 == 3) {
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            acc = 0;
        }
    }
    switch (data % 4) {
    case 1: /* excluded by the length checks above */
        return snap_fail(SNAP_EFORMAT, "%s: truncated at offset %zu", name, data);
    case 2:
        if (acc & 0xf)
            return snap_fail(SNAP_EFORMAT, "%s: non-zero unused bits at offset %zu", name, data - 1);
        out[o++] = (uint8_t)(acc >> 4);
        break;
    case 3:
        if (acc & 0x3)
            return snap_fail(SNAP_EFORMAT, "%s: non-zero unused bits at offset %zu", name, data - 1);
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
        break;
    }
    *outlen = o;
    return 0;
}
