/* http_int.h -- what http.c and http_conn.c share; not an API for other modules. */
#ifndef SNAP_NET_HTTP_INT_H
#define SNAP_NET_HTTP_INT_H

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

#endif
