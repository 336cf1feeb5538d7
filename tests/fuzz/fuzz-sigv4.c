/* fuzz-sigv4.c -- SigV4 on hostile inputs: lines of the input become method, path, query
 * pairs and header pairs.  Whatever signs must have a canonical request whose SHA-256 is the
 * one in the string to sign (the two outputs come from one emitter and must agree). */
#include "base/err.h"
#include "crypto/sha256.h"
#include "crypto/sigv4.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_FIELDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 16384)
        return 0;
    /* First byte: flags; the rest: NUL-separated fields. */
    uint8_t flags = data[0];
    char *buf = malloc(size);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    char *f[FZ_FIELDS];
    size_t nf = 0;
    for (char *p = buf; nf < FZ_FIELDS && p < buf + size - 1; p += strlen(p) + 1)
        f[nf++] = p;
    if (nf < 2) {
        free(buf);
        return 0;
    }
    struct sigv4_kv query[SIGV4_MAX_QUERY + 1], hdrs[SIGV4_MAX_HEADERS + 1];
    size_t nq = 0, nh = 0;
    hdrs[nh++] = (struct sigv4_kv){"host", "h.example"};
    for (size_t i = 2; i + 1 < nf; i += 2) {
        if (f[i][0] == '?' && nq < SIGV4_MAX_QUERY + 1)
            query[nq++] = (struct sigv4_kv){f[i] + 1, (flags & 4) && !*f[i + 1] ? NULL : f[i + 1]};
        else if (nh < SIGV4_MAX_HEADERS + 1)
            hdrs[nh++] = (struct sigv4_kv){f[i], f[i + 1]};
    }
    struct sigv4_request r = {
        .method = f[0], .path = f[1], .path_encoded = flags & 1, .query = query, .nquery = nq,
        .headers = hdrs, .nheaders = nh,
        .payload_hash = flags & 2 ? SIGV4_UNSIGNED_PAYLOAD
                                  : "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        .access_key = "AKIDEXAMPLE", .secret_key = "secret", .session_token = flags & 8 ? "tok" : NULL,
        .region = "us-east-1", .service = "s3", .timestamp = "20240101T000000Z",
    };
    struct sigv4_out o;
    static char creq[256 << 10];
    size_t n;
    int e1 = sigv4_sign(&r, &o);
    int e2 = sigv4_canonical_request(&r, creq, sizeof creq, &n);
    if (e1 != e2 && !(e1 == SNAP_ETOOBIG || e2 == SNAP_ETOOBIG))
        abort();
    if (e1 == 0 && e2 == 0) {
        char hex[65];
        sha256_hex(creq, n, hex);
        const char *last = strrchr(o.string_to_sign, '\n');
        if (!last || strcmp(last + 1, hex) != 0 || strlen(creq) != n)
            abort();
    }
    free(buf);
    return 0;
}
