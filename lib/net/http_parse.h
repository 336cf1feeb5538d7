/* http_parse.h -- incremental HTTP/1.1 response parsers: the head, and the chunked body.
 *
 * Both are state machines fed (buf, len, *consumed) in pieces of any size, curl-style: the
 * outcome does not depend on where the input is split (the fuzz target checks exactly that).
 * A failure is sticky: every later call returns the same error.
 *
 * The head parser keeps the head's bytes in its own buffer (grown up to HTTP_HEAD_MAX, then
 * reused by http_head_reset(): a warm parser allocates nothing), and stops consuming right
 * after the blank line, so what follows in the caller's buffer is body.  It rejects what
 * request smuggling is made of: obs-fold, whitespace before ':', bare CR, a repeated
 * Content-Length (even an equal one) or a list in it, Transfer-Encoding other than exactly
 * "chunked", chunked together with Content-Length, and Transfer-Encoding in HTTP/1.0.
 */
#ifndef SNAP_NET_HTTP_PARSE_H
#define SNAP_NET_HTTP_PARSE_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEAD_MAX (64 * 1024)   /* status line + fields + blank line */
#define HTTP_FIELDS_MAX 128         /* header fields in one head */
#define HTTP_CHUNK_HEX_MAX 16       /* hex digits in a chunk size */
#define HTTP_CHUNK_LINE_MAX 4096    /* a chunk-size line with its extensions */
#define HTTP_TRAILER_MAX (16 * 1024) /* all trailer lines together */

struct http_head {
    /* Results, valid once http_head_done(). */
    int status;              /* 100..999 */
    int minor;               /* HTTP/1.minor */
    bool has_length;         /* Content-Length given ... */
    uint64_t content_length; /* ... and its value */
    bool chunked;            /* Transfer-Encoding: chunked */
    bool close;              /* the server will close after this response */
    unsigned nfields;
    /* Parser state. */
    int state;
    int err;                 /* sticky snap_err */
    bool keep_alive;         /* "Connection: keep-alive" seen (matters for HTTP/1.0) */
    struct snap_buf buf;     /* the head's lines, NUL-terminated in place (at most HTTP_HEAD_MAX) */
    size_t line;             /* offset of the line being collected */
    uint32_t reason;         /* offset of the reason phrase */
    struct {
        uint32_t name, value;
    } fields[HTTP_FIELDS_MAX];
    char why[160];           /* the sticky error's detail */
};

void http_head_init(struct http_head *h);
/* Forget the parsed head, keep the buffer. */
void http_head_reset(struct http_head *h);
void http_head_free(struct http_head *h);
/* Feed bytes; *consumed says how many were used (all of them until the head is complete,
 * then up to and including the blank line).  0, SNAP_ENOMEM, or SNAP_EPROTO: malformed, or
 * over one of the caps above (a fault of the peer, not a size limit of the caller's). */
int http_head_feed(struct http_head *h, const void *buf, size_t len, size_t *consumed);
bool http_head_done(const struct http_head *h);
/* The value of the first field called name (any case), or NULL. */
const char *http_head_get(const struct http_head *h, const char *name);
const char *http_head_name(const struct http_head *h, unsigned i);
const char *http_head_value(const struct http_head *h, unsigned i);
const char *http_head_reason(const struct http_head *h);

struct http_chunked {
    int state;
    int err;            /* sticky snap_err */
    uint64_t left;      /* data bytes left in the current chunk */
    unsigned digits;
    size_t line;        /* bytes in the current size line */
    size_t trailer;     /* trailer bytes so far */
    char why[96];
};

void http_chunked_init(struct http_chunked *c);
/* Decode from buf.  Framing is consumed silently; on reaching chunk data the call returns
 * with *data and *data_len pointing at it inside buf (included in *consumed), so a call yields at
 * most one data span: loop until everything is consumed.  *data_len = 0 when none. */
int http_chunked_feed(struct http_chunked *c, const void *buf, size_t len, size_t *consumed,
                      const uint8_t **data, size_t *data_len);
bool http_chunked_done(const struct http_chunked *c);
/* Zero-copy path: chunk data bytes the decoder expects next (0 when it wants framing), and
 * telling it that n of them went straight from the socket to their destination. */
uint64_t http_chunked_data_left(const struct http_chunked *c);
void http_chunked_skip(struct http_chunked *c, uint64_t n);

#endif
