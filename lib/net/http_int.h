/* http_int.h -- what http.c and http_conn.c share; not an API for other modules. */
#ifndef SNAP_NET_HTTP_INT_H
#define SNAP_NET_HTTP_INT_H

#include "net/addrclass.h"
#include "net/http.h"
#include "net/sock.h"
#include "net/tls.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/uio.h>

#define HTTP_RBUF_SIZE (32u * 1024) /* per connection: response heads, framing, small bodies */
#define HTTP_WBUF_SIZE (16u * 1024) /* per connection: the request head */

/* One keep-alive connection.  Its buffers come in the same allocation and live as long as it
 * does, so a request on a pooled connection allocates nothing. */
struct http_conn {
    struct http_conn *next;   /* in the idle list */
    struct sock sock;
    struct tls_conn *tls;     /* NULL for plain http */
    enum url_scheme scheme;
    uint16_t port;
    char host[URL_HOST_MAX + 1];
    enum net_addr_class addr_class; /* of the address it is connected to */
    char addr[48];                  /* that address, for messages */
    uint64_t idle_since_ns;
    uint8_t *rbuf;            /* bytes read but not yet parsed are rbuf[rpos..rend) */
    size_t rcap, rpos, rend;
    char *wbuf;
    size_t wcap;
};

struct http_client {
    struct http_opts o;
    char user_agent[128];
    struct tls_config *tls_own;  /* from o.ca_file */
    pthread_mutex_t lock;        /* guards the idle list; never held across I/O */
    struct http_conn *idle;      /* most recently used first */
    unsigned nidle;
    atomic_uint_fast64_t n_requests, n_connects, n_reused, n_stale, n_retries;
};

/* A connection to u's origin: a live pooled one unless fresh, else a new one (connect, TLS
 * handshake) bounded by the client's timeouts and deadline_ns.  *reused tells which. */
int http_conn_get(struct http_client *c, const struct url *u, uint64_t deadline_ns, bool fresh,
                  struct http_conn **out, bool *reused);
/* Back to the pool when reusable (a whole response read, nothing extra buffered), else closed. */
void http_conn_release(struct http_client *c, struct http_conn *k, bool reusable);
int http_conn_read(struct http_conn *k, void *buf, size_t len, size_t *got);
int http_conn_writev(struct http_conn *k, struct iovec *iov, int n);

#define HTTP_DRAIN_MAX (256u * 1024) /* body bytes we read and drop to keep a connection */
#define HTTP_INTERIM_MAX 16          /* interim (1xx) responses before the final one */

enum http_body_mode { BM_NONE, BM_LENGTH, BM_CHUNKED, BM_CLOSE };
enum http_sink_kind { SK_CALLER, SK_ERROR, SK_DRAIN };

/* One http_do call: what http.c decides, and the per-response state of http_xfer.c. */
struct http_xfer {
    struct http_client *c;
    const struct http_request *rq;
    struct http_response *rs;
    const char *method;
    const struct url *url;       /* current: rq->url, or a redirect's */
    const char *target;          /* current request target */
    char tbuf[URL_MAX + 2];      /* target when taken from the url */
    bool send_body;
    bool same_origin;            /* sign and send Authorization */
    uint64_t deadline;
    uint64_t off, len;           /* the part of the range still wanted */
    char what[600];              /* "GET http://host/path" for messages */
    bool no_retry;               /* the failure is not worth another attempt (too slow, refused) */
    bool origin_known;           /* origin_class is the class of the original URL's address */
    enum net_addr_class origin_class;
    uint64_t win_end;            /* minimum-rate rule: the current window ends then ... */
    uint64_t win_bytes;          /* ... and must have moved this many body bytes by then */
    /* Per response. */
    struct http_conn *k;
    enum http_body_mode mode;
    uint64_t left;               /* BM_LENGTH */
    struct http_chunked ch;
    enum http_sink_kind sink;
    uint64_t skip;               /* bytes to drop before the sink (200 answered to a range) */
    uint64_t limit;              /* bytes the sink still takes */
    uint64_t drained;
    bool cut;                    /* stop reading: the rest of the body is not wanted */
    bool reusable;
};

/* One attempt: a connection, the request, the whole response (any status).  Following says
 * a 3xx with Location will be followed, so its body is drained rather than kept. */
int http_xfer_attempt(struct http_xfer *x, bool following_ok);
/* Append to rs->body.data (NUL-terminated), at most max bytes in all: 0, SNAP_ETOOBIG, SNAP_ENOMEM. */
int http_body_append(struct http_response *rs, const void *p, size_t n, size_t max);
bool http_is_redirect(int status);
bool http_method_is(const char *m, const char *want);

#endif
