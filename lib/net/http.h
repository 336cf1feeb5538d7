/* http.h -- the HTTP/1.1 client: pooled keep-alive connections, bodies streamed both ways
 * without staging copies, ranged reads, redirects, and retries with backoff.
 *
 *   struct http_client *c;  http_client_new(NULL, &c);          // one per store, thread safe
 *   struct http_response rs; http_response_init(&rs);           // reuse it: a warm one allocates nothing
 *   struct http_request rq = {.method = "GET", .url = &u};       // body collected into rs.body.data
 *   int e = http_do(c, &rq, &rs);   // 0 for a 2xx; SNAP_EHTTP for other statuses (rs.status says which)
 *   http_response_free(&rs); http_client_free(c);
 *
 * Request bodies are sent straight from the caller's memory (writev from an mmap on plain
 * TCP; <= 16 KiB mbedtls_ssl_write steps under TLS) or pulled from a callback.  Response
 * bodies go where the request says (sink): into the caller's buffer (received straight into
 * it where framing allows, with a progress callback), through a callback, collected into
 * rs.body.data (capped), or discarded.  Bodies of non-2xx answers never reach the sink: they are
 * kept in rs.body.data (first 64 KiB) for the caller to read (S3 error XML).
 *
 * Errors: SNAP_ENET, SNAP_ETIMEOUT, SNAP_ETLS, SNAP_EPROTO, SNAP_ESHORT, SNAP_ETOOBIG (a limit
 * of the caller's: a sink, max_object_size; a peer over the parser's caps is SNAP_EPROTO),
 * SNAP_EAUTH (a refused redirect), SNAP_ECANCELED (a callback said stop), SNAP_EHTTP (a status
 * the caller must look at),
 * SNAP_ERANGE (416: the range starts past the end; rs.total_size has the size).  Messages
 * start with "METHOD URL" (userinfo and signed query values removed) and name the status.
 * See docs/net.md for pooling, retries and timeouts.
 */
#ifndef SNAP_NET_HTTP_H
#define SNAP_NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"
#include "net/http_parse.h"
#include "net/url.h"

#define HTTP_SIZE_UNKNOWN UINT64_MAX
#define HTTP_COLLECT_MAX (1u << 20)       /* default cap of a collected body */
#define HTTP_ERROR_BODY_MAX (64u * 1024)  /* error bodies kept in rs.body.data */
#define HTTP_MAX_REDIRECTS 5
#define HTTP_HDRS_MAX 32                  /* fields in a request header list */
#define HTTP_HDRS_BYTES 6144              /* their names and values (a GCS bearer token fits) */

/* ---- request header list: inline storage, no allocation ---- */

struct http_hdrs {
    unsigned n;
    size_t used;
    struct {
        uint16_t name, value;
    } h[HTTP_HDRS_MAX];
    char buf[HTTP_HDRS_BYTES];
};

void http_hdrs_init(struct http_hdrs *h);
/* Append a field (copied).  SNAP_EUSAGE for a name that is not a token or a value with CR,
 * LF or NUL; SNAP_ETOOBIG when the list is full. */
int http_hdrs_add(struct http_hdrs *h, const char *name, const char *value);
/* Replace every field of that name (any case) by one. */
int http_hdrs_set(struct http_hdrs *h, const char *name, const char *value);
void http_hdrs_del(struct http_hdrs *h, const char *name);
/* First value of name (any case), or NULL. */
const char *http_hdrs_get(const struct http_hdrs *h, const char *name);
static inline const char *http_hdrs_name(const struct http_hdrs *h, unsigned i) { return h->buf + h->h[i].name; }
static inline const char *http_hdrs_value(const struct http_hdrs *h, unsigned i) { return h->buf + h->h[i].value; }

/* ---- retry policy ---- */

struct http_retry {
    unsigned max_attempts;       /* tries in all, default 5 (1 = never retry) */
    unsigned base_ms;            /* default 200: backoff cap of the first retry */
    unsigned cap_ms;             /* default 20000: backoff never exceeds it */
    unsigned retry_after_max_ms; /* default 60000: a longer Retry-After is clamped to it */
    uint64_t (*rand)(void *ctx); /* uniform 64-bit values; NULL = getrandom(2) */
    void *rand_ctx;
};

/* Full jitter: uniform in [0, min(cap, base * 2^(retry-1))] for retry 1, 2, ...; a server's
 * Retry-After (ms, or < 0 for none) is honoured as a lower bound, clamped to its maximum. */
uint64_t http_backoff_ms(const struct http_retry *p, unsigned retry, int64_t retry_after_ms);
/* A Retry-After value, delta-seconds or an IMF-fixdate, in ms from now (unix seconds); -1 if
 * it is neither.  A date in the past is 0. */
int64_t http_retry_after_ms(const char *value, time_t now);
/* The defaults applied to a zero field. */
void http_retry_defaults(struct http_retry *p);

/* ---- client ---- */

struct http_opts {
    unsigned connect_timeout_ms; /* default 10000 */
    unsigned tls_timeout_ms;     /* handshake, default 10000 */
    unsigned idle_timeout_ms;    /* no byte moved for this long fails the attempt, default 30000 */
    unsigned total_timeout_ms;   /* one http_do, retries and backoff included; default 0 = none */
    uint64_t deadline_ns;        /* absolute (snap_now_ns clock): no http_do runs past it; 0 = none */
    unsigned head_timeout_ms;    /* the final response head (after any 1xx) must be complete this
                                    long after the request was sent; 0 = no limit */
    uint64_t speed_limit;        /* minimum rate of a response body, bytes/s, judged over ... */
    unsigned speed_time_ms;      /* ... every window this long (like curl's --speed-limit/-time);
                                    0 = no minimum.  Head timeout and minimum rate fail with
                                    SNAP_ETIMEOUT and are not retried: a slow origin stays slow. */
    uint64_t max_object_size;    /* a 2xx announcing more (200 Content-Length, 206 Content-Range
                                    total) is SNAP_ETOOBIG before its body is read; 0 = no limit */
    bool allow_private_redirects; /* see below */
    unsigned max_idle;           /* idle connections kept in the pool, default 64 */
    unsigned max_idle_age_ms;    /* an idle connection older than this is closed, default 30000 */
    const char *ca_file;         /* trust only this PEM bundle; NULL = the system's (SSL_CERT_FILE) */
    const char *user_agent;      /* default "snapctl/VERSION" */
    struct http_retry retry;
};

/* Redirects never lead from the original URL's address class into another non-public one
 * (loopback, private, link-local, metadata: lib/net/addrclass.h), judged on the address each
 * connection is actually made to, so a name that resolves differently later changes nothing:
 * SNAP_EAUTH, unless allow_private_redirects.  Only http:// and https:// targets are followed. */

struct http_stats {
    uint64_t requests;     /* attempts sent */
    uint64_t connects;     /* connections opened */
    uint64_t reused;       /* attempts on a pooled connection */
    uint64_t stale;        /* pooled connections that had died, retried at once */
    uint64_t retries;      /* retries after backoff */
};

struct http_client;

/* o may be NULL (all defaults).  Loads the CA file now when one is given. */
int http_client_new(const struct http_opts *o, struct http_client **out);
/* Closes the pooled connections.  No request may be running. */
void http_client_free(struct http_client *c);
void http_client_stats(struct http_client *c, struct http_stats *st);

/* ---- requests ---- */

struct http_response;

/* Body callback: fill buf with up to len bytes of the body starting at off; *got < len only
 * at its end.  Called again from off 0 when the request is retried or redirected. */
typedef int (*http_body_fn)(void *ctx, uint64_t off, void *buf, size_t len, size_t *got);
/* Data callback for a streamed response body; non-zero stops the request (SNAP_ECANCELED). */
typedef int (*http_data_fn)(void *ctx, const void *p, size_t n);
/* Progress of a buffer sink: done bytes are now in the buffer (monotonic); non-zero stops. */
typedef int (*http_progress_fn)(void *ctx, uint64_t done);
/* Called before every attempt that goes to the original origin (scheme, host, port) with the
 * headers about to be sent (Host, Range, Content-Length included): add a signature (SigV4,
 * a bearer token).  Not called after a redirect to another origin.  0 or a snap_err. */
typedef int (*http_sign_fn)(void *ctx, const char *method, const struct url *url, const char *target,
                            struct http_hdrs *h);
/* Called with every complete final response (any status; rs->body.data holds a collected or error
 * body).  Return 0 to keep the default verdict, or a snap_err (with snap_fail) to fail it,
 * setting *retry when that failure is worth retrying (S3's <Error> inside a 200). */
typedef int (*http_check_fn)(void *ctx, const struct http_response *rs, bool *retry);

enum http_sink {
    HTTP_SINK_COLLECT = 0, /* into rs.body.data, NUL-terminated, at most collect_max (SNAP_ETOOBIG) */
    HTTP_SINK_BUFFER,      /* into dst[0..dst_len) (SNAP_ETOOBIG if more arrives), progress as it lands */
    HTTP_SINK_CALLBACK,    /* through data_fn */
    HTTP_SINK_DISCARD,
};

/* Observer of an in-memory request body being sent (http_request.sent): called with the body
 * bytes the kernel (or mbedTLS) has taken so far in this attempt (from 0 again on a retry). */
#define HTTP_SEND_STEP (1u << 20)
typedef void (*http_sent_fn)(void *ctx, uint64_t sent);

enum http_retry_mode {
    HTTP_RETRY_AUTO = 0, /* retry idempotent methods: GET HEAD PUT DELETE OPTIONS */
    HTTP_RETRY_YES,      /* the caller knows it is safe (a multipart part PUT, a POST that is) */
    HTTP_RETRY_NO,
};

struct http_request {
    const char *method;              /* "GET", "HEAD", "PUT", "POST", "DELETE" ... */
    const struct url *url;           /* http:// or https:// */
    const char *target;              /* "/path?query" to send, encoded; NULL = url's own */
    const struct http_hdrs *headers; /* extra fields; NULL = none */
    /* Request body: body_fn if set, else (body, body_len).  PUT and POST always send a
     * Content-Length; body_len = HTTP_SIZE_UNKNOWN with body_fn sends it chunked. */
    const void *body;
    uint64_t body_len;
    http_body_fn body_fn;
    void *body_ctx;
    /* Optional, for (body, body_len): the body is written in steps of at most HTTP_SEND_STEP
     * bytes, still straight from the caller's memory, and sent(sent_ctx, n) is called after
     * each.  The uploader uses it to drop pages of an mmap as soon as they are sent. */
    http_sent_fn sent;
    void *sent_ctx;
    /* Ranged read: Range: bytes=range_off-(range_off+range_len-1), or the open-ended
     * bytes=range_off- when range_len is UINT64_MAX - range_off (to the end).  A 206 must answer exactly
     * that (a shorter one only at the object's end); a 200 is skipped to it; a 416 is
     * SNAP_ERANGE.  A retry after part of the range arrived asks for the rest only. */
    bool range;
    uint64_t range_off, range_len;
    /* Where a 2xx body goes. */
    enum http_sink sink;
    void *dst;                       /* HTTP_SINK_BUFFER */
    uint64_t dst_len;
    http_progress_fn progress;
    void *progress_ctx;
    http_data_fn data_fn;            /* HTTP_SINK_CALLBACK */
    void *data_ctx;
    /* Optional, for CALLBACK and DISCARD sinks: a 2xx body with a Content-Length (or none)
     * is received into this buffer in reads of up to recv_buf_len bytes and handed on from
     * there -- fewer, bigger reads than through the connection's 32 KiB buffer.  NULL = that. */
    uint8_t *recv_buf;
    size_t recv_buf_len;
    size_t collect_max;              /* HTTP_SINK_COLLECT; 0 or over HTTP_COLLECT_MAX = HTTP_COLLECT_MAX */
    enum http_retry_mode retry;
    http_sign_fn sign;
    void *sign_ctx;
    http_check_fn check;
    void *check_ctx;
};

struct http_response {
    int status;             /* the final response's status, 0 if none arrived */
    struct http_head head;  /* its head: http_head_get(&rs.head, "ETag") */
    struct snap_buf body;   /* collected or error body in body.data[0 .. body.len), NUL-terminated
                               (data never NULL after a response); reused by the next request */
    uint64_t bytes;         /* body bytes delivered to the sink (all attempts of a range) */
    uint64_t total_size;    /* object size from Content-Range (206, 416) or a 200's
                               Content-Length (HEAD too); HTTP_SIZE_UNKNOWN otherwise */
    unsigned attempts;      /* tries made; 1 = no retry */
    unsigned redirects;
};

void http_response_init(struct http_response *rs);
void http_response_free(struct http_response *rs);

/* Run the request: redirects, retries, backoff.  0 when the final status is 2xx (and the
 * check hook agreed). */
int http_do(struct http_client *c, const struct http_request *rq, struct http_response *rs);

/* GET [off, off+len) of url (target as in http_request) into dst, reporting progress; rs
 * gives bytes (< len only at the object's end) and total_size.  len 0 sends nothing. */
int http_get_range(struct http_client *c, const struct url *url, const char *target, const struct http_hdrs *h,
                   uint64_t off, uint64_t len, void *dst, http_progress_fn progress, void *ctx,
                   struct http_response *rs);

#endif
