/* buf.c -- the capped growable byte buffer (see buf.h). */
#include "base/buf.h"

#include "base/err.h"
#include "base/mem.h"

#include <string.h>

void snap_buf_init(struct snap_buf *b, size_t first, size_t max)
{
    *b = (struct snap_buf){.first = first ? first : 1, .max = max};
    if (b->first > max)
        b->first = max;
}

int snap_buf_reserve(struct snap_buf *b, size_t n)
{
    if (n <= b->cap)
        return 0;
    if (n > b->max)
        return snap_fail(SNAP_ETOOBIG, "%zu bytes are more than the buffer's limit of %zu bytes",
                         n, b->max);
    size_t cap = b->cap ? b->cap : b->first;
    while (cap < n)
        cap = cap > b->max / 2 ? b->max : cap * 2;
    uint8_t *p = snap_realloc(b->data, cap);
    if (!p)
        return snap_fail(SNAP_ENOMEM, "cannot allocate a buffer of %zu bytes", cap);
    b->data = p;
    b->cap = cap;
    return 0;
}

int snap_buf_append(struct snap_buf *b, const void *p, size_t n)
{
    if (n > b->max - b->len)
        return snap_fail(SNAP_ETOOBIG, "%zu more bytes overflow the buffer's limit of %zu bytes",
                         n, b->max);
    int err = snap_buf_reserve(b, b->len + n);
    if (err)
        return err;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void snap_buf_reset(struct snap_buf *b)
{
    b->len = 0;
}

uint8_t *snap_buf_take(struct snap_buf *b)
{
    uint8_t *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void snap_buf_free(struct snap_buf *b)
{
    snap_free(snap_buf_take(b));
}
