/* fuzz-http.c -- the response head parser and the chunked decoder, fed random bytes split at
 * random points, must give exactly what one call over the whole input gives: same status,
 * fields, framing, bytes consumed, decoded body, and the same error code.
 *
 * Input: byte 0 = mode (bit 0: chunked body only, no head), byte 1 = seed of the split points,
 * the rest = the response. */
#include "base/err.h"
#include "net/http_parse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct outcome {
    int err, done, status, minor, has_len, chunked, close;
    uint64_t clen;
    unsigned nfields;
    size_t consumed;      /* by the head */
    char *fields;         /* "name\0value\0"... */
    size_t flen;
    uint8_t *body;
    size_t blen;
    int berr, bdone;
    size_t bconsumed;
};

/* Piece sizes: one call (seed 0) or pseudo-random sizes from 1 to 64. */
static size_t piece(uint32_t *st, size_t left)
{
    if (*st == 0)
        return left;
    *st = *st * 1103515245u + 12345u;
    size_t n = 1 + (*st >> 16) % 64;
    return n < left ? n : left;
}

static void run(const uint8_t *p, size_t n, int chunk_only, uint32_t seed, struct outcome *o)
{
    memset(o, 0, sizeof *o);
    o->fields = malloc(HTTP_HEAD_MAX * 2 + 16);
    o->body = malloc(n + 1);
    uint32_t st = seed;
    size_t pos = 0;
    struct http_head h;
    http_head_init(&h);
    if (!chunk_only) {
        while (pos < n && !http_head_done(&h)) {
            size_t k = piece(&st, n - pos), used;
            o->err = http_head_feed(&h, p + pos, k, &used);
            if (o->err)
                break;
            if (used > k)
                abort();
            pos += used;
            if (used < k && !http_head_done(&h))
                abort(); /* it stops early only at the end of the head */
        }
        o->done = http_head_done(&h);
        o->consumed = o->err ? 0 : pos; /* where it failed depends on the split */
        if (o->done) {
            o->status = h.status;
            o->minor = h.minor;
            o->has_len = h.has_length;
            o->clen = h.content_length;
            o->chunked = h.chunked;
            o->close = h.close;
            o->nfields = h.nfields;
            for (unsigned i = 0; i < h.nfields; i++) {
                size_t a = strlen(http_head_name(&h, i)) + 1, b = strlen(http_head_value(&h, i)) + 1;
                memcpy(o->fields + o->flen, http_head_name(&h, i), a);
                memcpy(o->fields + o->flen + a, http_head_value(&h, i), b);
                o->flen += a + b;
            }
        }
    }
    http_head_free(&h);
    if (!chunk_only && !(o->done && o->chunked))
        return;
    struct http_chunked c;
    http_chunked_init(&c);
    while (pos < n && !http_chunked_done(&c)) {
        size_t k = piece(&st, n - pos), used, dl;
        const uint8_t *d;
        o->berr = http_chunked_feed(&c, p + pos, k, &used, &d, &dl);
        if (o->berr)
            break;
        if (used > k || (dl && (d < p + pos || d + dl > p + pos + used)))
            abort();
        if (dl)
            memcpy(o->body + o->blen, d, dl);
        o->blen += dl;
        pos += used;
    }
    o->bdone = http_chunked_done(&c);
    o->bconsumed = o->berr ? 0 : pos;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 4 * HTTP_HEAD_MAX)
        return 0;
    int chunk_only = data[0] & 1;
    uint32_t seed = data[1] | 0x100u;
    struct outcome a, b;
    run(data + 2, size - 2, chunk_only, 0, &a);
    run(data + 2, size - 2, chunk_only, seed, &b);
    if (a.err != b.err || a.done != b.done || a.consumed != b.consumed || a.status != b.status ||
        a.minor != b.minor || a.has_len != b.has_len || a.clen != b.clen || a.chunked != b.chunked ||
        a.close != b.close || a.nfields != b.nfields || a.flen != b.flen || memcmp(a.fields, b.fields, a.flen) ||
        a.berr != b.berr || a.bdone != b.bdone || a.bconsumed != b.bconsumed || a.blen != b.blen ||
        memcmp(a.body, b.body, a.blen)) {
        fprintf(stderr, "split outcome differs: err %d/%d consumed %zu/%zu body %zu/%zu berr %d/%d\n", a.err, b.err,
                a.consumed, b.consumed, a.blen, b.blen, a.berr, b.berr);
        abort();
    }
    free(a.fields);
    free(a.body);
    free(b.fields);
    free(b.body);
    return 0;
}
