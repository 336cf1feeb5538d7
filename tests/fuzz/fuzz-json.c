/* fuzz-json.c -- libFuzzer target for lib/store/jsonr: any input parses or fails cleanly
 * (SNAP_EFORMAT / SNAP_ETOOBIG, never a crash), and a parsed tree holds its invariants:
 * counts match iteration, decoded strings are valid UTF-8 of the stated length, key lookups
 * find a member with that key. */
#include "base/err.h"
#include "codec/jsonr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!len || i + len > n)
            return 0;
        uint32_t cp = len == 1 ? c : c & (0x7F >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static void walk(const struct jsonr_value *v, const struct jsonr_value *parent, int depth)
{
    if (depth > JSONR_MAX_DEPTH + 1)
        abort();
    size_t n;
    const char *s = jsonr_str(v, &n);
    if (s && (!valid_utf8((const unsigned char *)s, n) || s[n] != '\0'))
        abort();
    const char *k = jsonr_key(v, &n);
    if (parent && (jsonr_type(parent) == JSONR_OBJECT) != (k != NULL))
        abort();
    if (k && (!valid_utf8((const unsigned char *)k, n) || k[n] != '\0'))
        abort();
    if (k && strlen(k) == n) {
        const struct jsonr_value *m = jsonr_member(parent, k);
        size_t mk;
        if (!m || strcmp(jsonr_key(m, &mk), k) != 0)
            abort();
    }
    size_t count = 0;
    for (const struct jsonr_value *c = jsonr_first(v); c; c = jsonr_next(c), count++)
        walk(c, v, depth + 1);
    if (count != jsonr_count(v))
        abort();
    if ((jsonr_type(v) != JSONR_ARRAY && jsonr_type(v) != JSONR_OBJECT) && count)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jsonr_doc *d;
    int err = jsonr_parse(data, size, &d);
    if (err) {
        if ((err != SNAP_EFORMAT && err != SNAP_ETOOBIG) || d)
            abort();
        return 0;
    }
    const struct jsonr_value *r = jsonr_root(d);
    walk(r, NULL, 1);
    /* The lookups the GCS auth and metadata code makes. */
    const char *s;
    int64_t i;
    static const char *const strs[] = {"type", "client_email", "private_key", "token_uri", "access_token"};
    for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++) {
        int e = jsonr_get_str(r, strs[k], &s, NULL);
        if (e && e != SNAP_ENOTFOUND && e != SNAP_EFORMAT)
            abort();
    }
    int e = jsonr_get_i64(r, "expires_in", &i);
    if (e && e != SNAP_ENOTFOUND && e != SNAP_EFORMAT)
        abort();
    jsonr_free(d);
    return 0;
}
