/* buf.h -- one growable byte buffer with a hard size limit fixed when it is set up.
 *
 * The buffer grows by doubling from `first` bytes and never past `max`: asking for more is
 * SNAP_ETOOBIG, never a bigger allocation.  It only grows; snap_buf_reset() keeps the memory, so a
 * buffer reused per request allocates nothing once it has reached its working size.
 *
 *   struct snap_buf b;
 *   snap_buf_init(&b, 1024, 1 << 20);
 *   err = snap_buf_append(&b, p, n);   // b.data[0 .. b.len)
 *   snap_buf_free(&b);
 */
#ifndef SNAP_BUF_H
#define SNAP_BUF_H

#include <stddef.h>
#include <stdint.h>

struct snap_buf {
    uint8_t *data;  /* NULL until the first reserve */
    size_t len;     /* bytes in use */
    size_t cap;     /* bytes allocated */
    size_t first;   /* size of the first allocation (at most max) */
    size_t max;     /* the limit: cap never exceeds it */
};

/* An empty buffer; nothing is allocated yet. */
void snap_buf_init(struct snap_buf *b, size_t first, size_t max);
/* Room for n bytes in all (not n more): 0, SNAP_ETOOBIG when n > max, or SNAP_ENOMEM. */
int snap_buf_reserve(struct snap_buf *b, size_t n);
/* Copy n bytes after the used ones (b->len grows by n). */
int snap_buf_append(struct snap_buf *b, const void *p, size_t n);
/* Forget the contents, keep the memory. */
void snap_buf_reset(struct snap_buf *b);
/* Hand the data to the caller (snap_free it) and leave the buffer empty, limits kept. */
uint8_t *snap_buf_take(struct snap_buf *b);
/* Free the memory; the buffer is empty and can be used again with the same limits. */
void snap_buf_free(struct snap_buf *b);

#endif
