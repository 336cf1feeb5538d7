/* fuzz-resp.c -- libFuzzer target for lib/net/resp's reply parser: any input parses or fails
 * cleanly (SNAP_ESHORT / SNAP_EPROTO, never a crash or a read outside the input), a parsed reply
 * lies within the bytes it consumed, and parsing is prefix-stable: every proper prefix of a
 * reply is "need more", and the reply parses the same with bytes appended. */
#include "base/err.h"
#include "net/resp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly `size` bytes, so ASan catches a read one past the end. */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    struct resp_reply r;
    size_t used = 0;
    int err = resp_parse(buf, size, &r, &used);
    if (err && err != SNAP_ESHORT && err != SNAP_EPROTO)
        abort();
    if (!err) {
        if (used == 0 || used > size)
            abort();
        if ((r.type == RESP_BULK || r.type == RESP_SIMPLE || r.type == RESP_ERROR) &&
            (r.str < buf || r.str + r.len > buf + used))
            abort();
        if (r.type == RESP_BULK && (int64_t)r.len != r.integer)
            abort();
        /* Every proper prefix needs more bytes (or is already malformed, never a reply). */
        for (size_t cut = 0; cut < used; cut += 1 + cut / 8) {
            struct resp_reply p;
            size_t u2 = 0;
            if (resp_parse(buf, cut, &p, &u2) == 0)
                abort();
        }
        /* The same reply with bytes appended. */
        char *more = malloc(used + 8);
        if (more) {
            memcpy(more, buf, used);
            memcpy(more + used, "+OK\r\n:1\r\n", 8);
            struct resp_reply q;
            size_t u3 = 0;
            if (resp_parse(more, used + 8, &q, &u3) || u3 != used || q.type != r.type || q.len != r.len ||
                q.integer != r.integer)
                abort();
            free(more);
        }
    }
    free(buf);
    return 0;
}
