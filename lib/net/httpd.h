/* httpd.h -- a small HTTP/1.1 server for read-only range serving (the peer protocol).
 *
 * GET and HEAD only; a request with a body is refused.  Heads are parsed by a capped state
 * machine (httpd_parse_head), one connection per thread, keep-alive.  A handler answers from
 * memory (httpd_send) or straight from a file descriptor with sendfile (httpd_send_fd), so a
 * peer serves a diff without copying it through user space.  Clients outside the allowlist are
 * refused at accept, before a byte is read.  With a TLS server config every connection must
 * start with a TLS handshake; a plaintext request is answered 400 "this server speaks TLS only"
 * in plaintext (so the client can say why) and logged, then the connection is closed.  Under
 * TLS a file body is copied through a per-connection buffer (no sendfile).
 *
 * Benchmarks can make the server behave like a remote store (httpd_opts.throttle): every
 * response's head then waits a time to first byte counted from when its request was read, and
 * the body goes out in slices paced to a bandwidth (absolute deadlines, like lib/store/sim);
 * the connection threads of a throttled server sleep with 1 ns timer slack (the default 50 us
 * would make every head and slice late).  Without a throttle the send paths do not look at the
 * clock.
 */
#ifndef SNAP_HTTPD_H
#define SNAP_HTTPD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTPD_HEAD_MAX 16384
#define HTTPD_MAX_HEADERS 48

struct httpd_header {
    const char *name, *value; /* point into the request head */
};

struct httpd_req {
    char method[8];           /* "GET" or "HEAD" */
    const char *target;       /* the request target, NUL-terminated, as sent */
    int minor;                /* HTTP/1.x */
    struct httpd_header h[HTTPD_MAX_HEADERS];
    unsigned nh;
    bool keep_alive;
    char peer[64];            /* "127.0.0.1:40000" */
};

/* Parse a request head in buf[0..len) (NUL-terminated copy made by the caller is not needed:
 * the parser writes NULs into buf).  Returns 0 and fills req, or SNAP_EPROTO (malformed),
 * SNAP_ETOOBIG (too many headers), SNAP_ENOTSUP (not HTTP/1.x). */
int httpd_parse_head(char *buf, size_t len, struct httpd_req *req);
/* Case-insensitive header lookup; NULL if absent. */
const char *httpd_header(const struct httpd_req *req, const char *name);

/* Parse a Range header against an object of `size` bytes.  Returns 0 with off and len set for a
 * satisfiable single range, SNAP_ERANGE for an unsatisfiable one (answer 416), SNAP_EPROTO for
 * one we do not understand (answer the whole object, as RFC 9110 allows). */
int httpd_parse_range(const char *value, uint64_t size, uint64_t *off, uint64_t *len);

struct httpd_conn;
/* Send a complete response.  extra_headers: "Name: value\r\n" lines or NULL. */
int httpd_send(struct httpd_conn *c, int status, const char *extra_headers, const void *body, size_t n,
               bool head_only);
/* Send status + headers, then len bytes of fd from off, with sendfile. */
int httpd_send_fd(struct httpd_conn *c, int status, const char *extra_headers, int fd, uint64_t off,
                  uint64_t len, bool head_only);
/* Answer GET/HEAD for a whole file of `size` bytes at fd, honouring one Range: 206 with
 * Content-Range, 416 for a range past the end, 200 with the whole file for no range or one we do
 * not understand.  extra_headers as for httpd_send ("Accept-Ranges: bytes" is added). */
int httpd_send_file(struct httpd_conn *c, const struct httpd_req *req, const char *extra_headers, int fd,
                    uint64_t size);
const char *httpd_reason(int status);
/* Answer a /metrics request with the text p holds (lib/base/prom.h): 200, or 500 with the
 * error that stopped the writer. */
struct prom;
int httpd_send_metrics(struct httpd_conn *c, const struct prom *p, bool head_only);

typedef void (*httpd_handler_fn)(void *ctx, struct httpd_conn *c, const struct httpd_req *req);

struct httpd_cidr {
    int family;               /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned bits;
};
/* "127.0.0.0/8", "::1/128", "10.1.2.3" -> one CIDR; SNAP_EUSAGE if malformed. */
int httpd_cidr_parse(const char *s, struct httpd_cidr *out);
bool httpd_cidr_match(const struct httpd_cidr *list, size_t n, const struct sockaddr *sa);

/* Delays of a remote store, applied to every response (benchmarks; see the top). */
struct httpd_throttle {
    unsigned ttfb_us;               /* from the request's last head byte read to the response head */
    uint64_t bytes_per_sec;         /* body pace; 0 = as fast as the socket takes it */
    unsigned slice;                 /* body bytes per paced send; 0 = 32 KiB */
};

struct tls_config;
struct httpd_opts {
    const struct httpd_cidr *allow; /* NULL/0: loopback only */
    struct tls_config *tls;         /* tls_server_config_new(); NULL = plaintext */
    size_t nallow;
    unsigned idle_timeout_ms;       /* default 30 s: before a request, and for progress of a
                                     * response the client does not read */
    unsigned head_timeout_ms;       /* default 10 s: a request head, from its first byte */
    unsigned max_conns;             /* default 256 clients that sent a request; connections that
                                     * have not yet have a cap of their own, the oldest giving
                                     * way to a newcomer, and idle + head ms to send it */
    const struct httpd_throttle *throttle; /* NULL: no delays */
};

/* Serve on lfd until httpd_stop(); each request calls handler on the connection's thread. */
int httpd_run(int lfd, const struct httpd_opts *opts, httpd_handler_fn handler, void *ctx);
void httpd_stop(void);

/* The same on a thread of its own (the caller keeps lfd open until the stop; opts is copied,
 * what it points to must outlive the server).  Only httpd_bg_stop ends it, not httpd_stop: a
 * process may run it beside another server (serve-nbd's /metrics beside the NBD server) and
 * stop each when it wants.  httpd_bg_stop returns what the server returned (0 after a stop). */
struct httpd_bg;
int httpd_bg_start(int lfd, const struct httpd_opts *opts, httpd_handler_fn handler, void *ctx,
                   struct httpd_bg **out);
int httpd_bg_stop(struct httpd_bg *b);

#endif
