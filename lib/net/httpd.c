/* httpd.c -- a small HTTP/1.1 server for read-only range serving (see httpd.h). */
#include "net/httpd.h"

#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/prom.h"
#include "net/listen.h"
#include "net/sock.h"
#include "net/tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#define HTTPD_TLS_BUF (64u * 1024)
#define HTTPD_THROTTLE_SLICE (32u * 1024)

struct httpd_conn {
    int fd;
    struct tls_conn *tls;     /* NULL on plaintext */
    uint8_t *tls_buf;         /* file bodies go through here under TLS */
    bool keep_alive;
    bool responded;
    bool broken;
    const struct httpd_throttle *th; /* NULL: no delays */
    uint64_t t_first_ns;      /* throttled: when the head may go */
};

/* ---- parsing ---- */

static bool is_tchar(int c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

int httpd_parse_head(char *buf, size_t len, struct httpd_req *req)
{
    memset(req, 0, sizeof *req);
    char *p = buf, *end = buf + len;
    /* request-line = method SP target SP HTTP-version CRLF */
    char *m = p;
    while (p < end && is_tchar((unsigned char)*p))
        p++;
    if (p == m || p >= end || *p != ' ' || (size_t)(p - m) >= sizeof req->method)
        return snap_fail(SNAP_EPROTO, "bad request method");
    memcpy(req->method, m, (size_t)(p - m));
    char *t = ++p;
    while (p < end && (unsigned char)*p > 0x20 && *p != 0x7f)
        p++;
    if (p == t || p >= end || *p != ' ')
        return snap_fail(SNAP_EPROTO, "bad request target");
    *p++ = '\0';
    req->target = t;
    if (end - p < 10 || memcmp(p, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)p[7]) || p[8] != '\r' ||
        p[9] != '\n')
        return snap_fail(SNAP_ENOTSUP, "not an HTTP/1.x request");
    req->minor = p[7] - '0';
    p += 10;
    /* header-field = name ":" OWS value OWS CRLF, until an empty line */
    for (;;) {
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
            break;
        if (p >= end)
            return snap_fail(SNAP_EPROTO, "request head not terminated");
        if (*p == ' ' || *p == '\t')
            return snap_fail(SNAP_EPROTO, "obsolete header line folding");
        char *n = p;
        while (p < end && is_tchar((unsigned char)*p))
            p++;
        if (p == n || p >= end || *p != ':')
            return snap_fail(SNAP_EPROTO, "bad header name");
        *p++ = '\0';
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        char *v = p;
        while (p < end && *p != '\r') {
            unsigned char c = (unsigned char)*p;
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return snap_fail(SNAP_EPROTO, "control character in header %s", n);
            p++;
        }
        if (end - p < 2 || p[1] != '\n')
            return snap_fail(SNAP_EPROTO, "header line not terminated by CRLF");
        char *ve = p;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        *ve = '\0';
        p += 2;
        if (req->nh == HTTPD_MAX_HEADERS)
            return snap_fail(SNAP_ETOOBIG, "more than %d headers", HTTPD_MAX_HEADERS);
        req->h[req->nh].name = n;
        req->h[req->nh].value = v;
        req->nh++;
    }
    const char *conn = httpd_header(req, "connection");
    req->keep_alive = req->minor >= 1 ? !(conn && strcasestr(conn, "close"))
                                      : (conn && strcasestr(conn, "keep-alive"));
    return 0;
}

const char *httpd_header(const struct httpd_req *req, const char *name)
{
    for (unsigned i = 0; i < req->nh; i++)
        if (strcasecmp(req->h[i].name, name) == 0)
            return req->h[i].value;
    return NULL;
}

static bool parse_dec(const char **s, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*p))
        return false;
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
        p++;
    }
    *s = p;
    *out = v;
    return true;
}

int httpd_parse_range(const char *value, uint64_t size, uint64_t *off, uint64_t *len)
{
    const char *p = value;
    while (*p == ' ')
        p++;
    if (strncasecmp(p, "bytes=", 6) != 0)
        return snap_fail(SNAP_EPROTO, "range unit is not bytes");
    p += 6;
    uint64_t a, b;
    if (*p == '-') { /* suffix: the last n bytes */
        p++;
        if (!parse_dec(&p, &b) || *p)
            return snap_fail(SNAP_EPROTO, "bad suffix range");
        if (b == 0 || size == 0)
            return snap_fail(SNAP_ERANGE, "empty suffix range");
        *len = b < size ? b : size;
        *off = size - *len;
        return 0;
    }
    if (!parse_dec(&p, &a) || *p++ != '-')
        return snap_fail(SNAP_EPROTO, "bad range");
    bool open_end = *p == '\0';
    if (!open_end && (!parse_dec(&p, &b) || *p || b < a))
        return snap_fail(SNAP_EPROTO, "bad range end");
    if (a >= size)
        return snap_fail(SNAP_ERANGE, "range starts at %llu, past the end (%llu bytes)",
                         (unsigned long long)a, (unsigned long long)size);
    if (open_end || b >= size)
        b = size - 1;
    *off = a;
    *len = b - a + 1;
    return 0;
}

/* ---- responses ---- */

const char *httpd_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 410: return "Gone";
    case 413: return "Content Too Large";
    case 416: return "Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static int send_all(struct httpd_conn *c, struct iovec *iov, int n)
{
    int err = 0;
    if (c->tls) {
        for (int i = 0; i < n && !err; i++)
            err = tls_write(c->tls, iov[i].iov_base, iov[i].iov_len);
    } else {
        err = snap_writev_full(c->fd, iov, n, "http response");
    }
    if (err)
        c->broken = true;
    return err;
}

static int format_head(struct httpd_conn *c, char *h, size_t hn, int status, const char *extra, uint64_t clen)
{
    int n = snprintf(h, hn, "HTTP/1.1 %d %s\r\nServer: snapctl\r\nContent-Length: %llu\r\n%s%s\r\n", status,
                     httpd_reason(status), (unsigned long long)clen, c->keep_alive ? "" : "Connection: close\r\n",
                     extra ? extra : "");
    if (n < 0 || (size_t)n >= hn)
        return -1;
    return n;
}

/* Bytes [off, off + len) of fd to the client: sendfile on plaintext, through the per-connection
 * buffer under TLS.  The head promised them: on failure the connection is dropped. */
static int send_file_bytes(struct httpd_conn *c, int fd, uint64_t off, uint64_t len)
{
    if (c->tls) {
        while (len > 0) {
            size_t want = len < HTTPD_TLS_BUF ? (size_t)len : HTTPD_TLS_BUF;
            ssize_t r = pread(fd, c->tls_buf, want, (off_t)off);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                c->broken = true;
                return r < 0 ? snap_fail_errno("pread") : snap_fail(SNAP_ESHORT, "file ended early");
            }
            int err = tls_write(c->tls, c->tls_buf, (size_t)r);
            if (err) {
                c->broken = true;
                return err;
            }
            off += (uint64_t)r;
            len -= (uint64_t)r;
        }
        return 0;
    }
    off_t o = (off_t)off;
    while (len > 0) {
        ssize_t w = sendfile(c->fd, fd, &o, len > (1u << 30) ? (1u << 30) : (size_t)len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            c->broken = true;
            return w < 0 ? snap_fail_errno("sendfile") : snap_fail(SNAP_ESHORT, "file ended early");
        }
        len -= (uint64_t)w;
    }
    return 0;
}

/* A throttled response: the head at the time to first byte, then the body (from memory, or
 * from fd at off) in slices, slice k not before t_first + (bytes through slice k) / bandwidth. */
static int send_throttled(struct httpd_conn *c, const char *h, size_t hl, const uint8_t *mem, int fd, uint64_t off,
                          uint64_t len)
{
    const struct httpd_throttle *th = c->th;
    uint64_t slice = th->slice ? th->slice : HTTPD_THROTTLE_SLICE;
    snap_sleep_until_ns(c->t_first_ns);
    struct iovec iov = {(void *)h, hl};
    int err = send_all(c, &iov, 1);
    for (uint64_t sent = 0; !err && sent < len;) {
        uint64_t step = len - sent < slice ? len - sent : slice;
        if (th->bytes_per_sec)
            snap_sleep_until_ns(c->t_first_ns + (uint64_t)((double)(sent + step) * 1e9 / (double)th->bytes_per_sec));
        if (mem) {
            iov = (struct iovec){(void *)(mem + sent), (size_t)step};
            err = send_all(c, &iov, 1);
        } else {
            err = send_file_bytes(c, fd, off + sent, step);
        }
        sent += step;
    }
    return err;
}

int httpd_send(struct httpd_conn *c, int status, const char *extra, const void *body, size_t n, bool head_only)
{
    char h[2048];
    int hl = format_head(c, h, sizeof h, status, extra, n);
    if (hl < 0)
        return snap_fail(SNAP_EINTERNAL, "response head too long");
    c->responded = true;
    if (c->th)
        return send_throttled(c, h, (size_t)hl, body, -1, 0, head_only ? 0 : n);
    struct iovec iov[2] = {{h, (size_t)hl}, {(void *)body, head_only ? 0 : n}};
    return send_all(c, iov, iov[1].iov_len ? 2 : 1);
}

int httpd_send_fd(struct httpd_conn *c, int status, const char *extra, int fd, uint64_t off, uint64_t len,
                  bool head_only)
{
    char h[2048];
    int hl = format_head(c, h, sizeof h, status, extra, len);
    if (hl < 0)
        return snap_fail(SNAP_EINTERNAL, "response head too long");
    c->responded = true;
    if (c->th)
        return send_throttled(c, h, (size_t)hl, NULL, fd, off, head_only ? 0 : len);
    struct iovec iov[1] = {{h, (size_t)hl}};
    int err = send_all(c, iov, 1);
    if (err || head_only)
        return err;
    return send_file_bytes(c, fd, off, len);
}

int httpd_send_metrics(struct httpd_conn *c, const struct prom *p, bool head_only)
{
    int err = prom_end(p);
    if (!err)
        return httpd_send(c, 200, PROM_CONTENT_TYPE, p->b->data, p->b->len, head_only);
    char msg[600];
    int n = snprintf(msg, sizeof msg, "metrics: %s\n", snap_errmsg(err));
    return httpd_send(c, 500, "Content-Type: text/plain\r\n", msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1,
                      head_only);
}

int httpd_send_file(struct httpd_conn *c, const struct httpd_req *req, const char *extra, int fd, uint64_t size)
{
    bool head = strcmp(req->method, "HEAD") == 0;
    const char *range = httpd_header(req, "range");
    uint64_t off = 0, len = size;
    int status = 200;
    char hdrs[1024];
    int e = range ? httpd_parse_range(range, size, &off, &len) : SNAP_EPROTO;
    if (range && e == SNAP_ERANGE) {
        snprintf(hdrs, sizeof hdrs, "Content-Range: bytes */%llu\r\n%s", (unsigned long long)size, extra ? extra : "");
        return httpd_send(c, 416, hdrs, NULL, 0, head);
    }
    if (range && e == 0) {
        status = 206;
        snprintf(hdrs, sizeof hdrs, "Accept-Ranges: bytes\r\nContent-Range: bytes %llu-%llu/%llu\r\n%s",
                 (unsigned long long)off, (unsigned long long)(off + len - 1), (unsigned long long)size,
                 extra ? extra : "");
    } else {
        off = 0;
        len = size;
        snprintf(hdrs, sizeof hdrs, "Accept-Ranges: bytes\r\n%s", extra ? extra : "");
    }
    return httpd_send_fd(c, status, hdrs, fd, off, len, head);
}

/* ---- allowlist ---- */

int httpd_cidr_parse(const char *s, struct httpd_cidr *out)
{
    char addr[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof addr)
        return snap_fail(SNAP_EUSAGE, "'%s' is not an address or CIDR", s);
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    memset(out, 0, sizeof *out);
    unsigned max;
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return snap_fail(SNAP_EUSAGE, "'%s' is not an address or CIDR", s);
    }
    out->bits = max;
    if (slash) {
        char *end;
        unsigned long b = strtoul(slash + 1, &end, 10);
        if (!slash[1] || *end || b > max)
            return snap_fail(SNAP_EUSAGE, "'%s': prefix length must be 0..%u", s, max);
        out->bits = (unsigned)b;
    }
    return 0;
}

static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned bytes = bits / 8, rem = bits % 8;
    if (memcmp(a, b, bytes) != 0)
        return false;
    if (rem == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rem));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

bool httpd_cidr_match(const struct httpd_cidr *list, size_t n, const struct sockaddr *sa)
{
    uint8_t a[16];
    int fam;
    if (sa->sa_family == AF_INET) {
        memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        fam = AF_INET;
    } else if (sa->sa_family == AF_INET6) {
        const uint8_t *v6 = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(v6, mapped, 12) == 0) { /* ::ffff:a.b.c.d is IPv4 */
            memcpy(a, v6 + 12, 4);
            fam = AF_INET;
        } else {
            memcpy(a, v6, 16);
            fam = AF_INET6;
        }
    } else {
        return sa->sa_family == AF_UNIX; /* a local socket is as local as it gets */
    }
    for (size_t i = 0; i < n; i++)
        if (list[i].family == fam && prefix_eq(a, list[i].addr, list[i].bits))
            return true;
    return false;
}

/* ---- the connection loop ---- */

struct httpd_server {
    const struct httpd_opts *opts;
    httpd_handler_fn handler;
    void *ctx;
    struct httpd_cidr loopback[2];
};

static bool httpd_accept(void *ctx, const struct sockaddr *sa, const char *peer)
{
    struct httpd_server *s = ctx;
    bool ok = s->opts->nallow ? httpd_cidr_match(s->opts->allow, s->opts->nallow, sa)
                              : httpd_cidr_match(s->loopback, 2, sa);
    if (!ok)
        snap_warn("http: refused %s: not in the allowlist (--allow)", peer);
    return ok;
}

/* Reads until a complete head is in buf; returns its length (through the blank line), 0 on a
 * clean close between requests, or -1 (errors are answered by the caller).  Before a head's
 * first byte the connection may idle for idle_ms; from it, the whole head must be in within
 * head_ms (a client dripping a byte at a time holds a thread no longer than that). */
static ssize_t read_head(struct httpd_conn *c, char *buf, size_t *have, unsigned idle_ms, unsigned head_ms,
                         int *status)
{
    int fd = c->fd;
    uint64_t head_end = *have ? snap_now_ns() + (uint64_t)head_ms * 1000000u : 0;
    for (;;) {
        char *end = *have >= 4 ? memmem(buf, *have, "\r\n\r\n", 4) : NULL;
        if (end)
            return end + 4 - buf;
        if (*have == HTTPD_HEAD_MAX) {
            *status = 431;
            return -1;
        }
        if (c->tls) {
            size_t got = 0;
            if (tls_read(c->tls, buf + *have, HTTPD_HEAD_MAX - *have, &got) != 0 || got == 0) {
                *status = 0; /* a timeout, a reset or a close: nothing to answer on a broken stream */
                return *have ? -1 : 0;
            }
            *have += got;
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int wait = (int)idle_ms;
        if (head_end) {
            uint64_t now = snap_now_ns();
            uint64_t left = head_end > now ? (head_end - now) / 1000000u + 1 : 0;
            wait = left < idle_ms ? (int)left : (int)idle_ms;
        }
        int r = wait > 0 ? poll(&p, 1, wait) : 0;
        if (r == 0) {
            *status = *have ? 408 : 0;
            return *have ? -1 : 0;
        }
        ssize_t n = read(fd, buf + *have, HTTPD_HEAD_MAX - *have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *status = 0;
            return *have ? -1 : 0;
        }
        if (!head_end)
            head_end = snap_now_ns() + (uint64_t)head_ms * 1000000u;
        *have += (size_t)n;
    }
}

/* A TLS-only server: does the client start with a TLS handshake record (0x16)?  A plaintext
 * request is answered in plaintext, so the client can say why, and logged. */
static bool tls_start(int fd, const char *peer, unsigned idle_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    unsigned char b;
    if (poll(&p, 1, (int)idle_ms) <= 0 || recv(fd, &b, 1, MSG_PEEK) != 1)
        return false;
    if (b == 0x16)
        return true;
    static const char msg[] = "HTTP/1.1 400 Bad Request\r\nServer: snapctl\r\nConnection: close\r\n"
                              "Content-Type: text/plain\r\nContent-Length: 63\r\n\r\n"
                              "this server speaks TLS only: connect with TLS (--peer-ca FILE)\n";
    snap_warn("http: refused %s: a plaintext request on a TLS-only server (the client needs TLS: --peer-ca)",
              peer);
    struct iovec iov = {(void *)msg, sizeof msg - 1};
    (void)snap_writev_full(fd, &iov, 1, "http response");
    return false;
}

static void httpd_conn_main(void *ctx, int fd, const char *peer)
{
    struct httpd_server *s = ctx;
    unsigned idle = s->opts->idle_timeout_ms ? s->opts->idle_timeout_ms : 30000;
    unsigned head_ms = s->opts->head_timeout_ms ? s->opts->head_timeout_ms : 10000;
    bool admitted = false;
    struct sock sk;
    struct tls_conn *tls = NULL;
    uint8_t *tls_buf = NULL;
    if (s->opts->throttle)
        prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* paced sleeps, not the default 50 us late */
    if (s->opts->tls) {
        if (!tls_start(fd, peer, idle) || sock_adopt(&sk, fd, peer) != 0)
            return;
        sk.idle_ms = idle;
        int err = tls_accept(s->opts->tls, &sk, idle, &tls);
        if (!err && !(tls_buf = snap_malloc(HTTPD_TLS_BUF)))
            err = snap_fail(SNAP_ENOMEM, "out of memory");
        if (err) {
            snap_warn("http: refused %s: %s", peer, snap_errmsg(err));
            tls_close(tls);
            return;
        }
    }
    /* A response the client does not read for idle ms ends the connection (sendfile and write
     * fail with EAGAIN); harmless to set under TLS, whose sock has its own deadlines. */
    struct timeval tv = {.tv_sec = idle / 1000, .tv_usec = (idle % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char *buf = snap_malloc(HTTPD_HEAD_MAX + 1);
    if (!buf) {
        tls_close(tls);
        snap_free(tls_buf);
        return;
    }
    size_t have = 0;
    struct httpd_req req;
    for (;;) {
        struct httpd_conn c = {.fd = fd, .tls = tls, .tls_buf = tls_buf, .keep_alive = false};
        int status = 400;
        ssize_t hl = read_head(&c, buf, &have, idle, head_ms, &status);
        if (hl == 0)
            break;
        if (hl < 0) {
            if (status)
                httpd_send(&c, status, NULL, NULL, 0, false);
            break;
        }
        int err = httpd_parse_head(buf, (size_t)hl, &req);
        if (err) {
            snap_info("http %s: %s", peer, snap_errmsg(err));
            httpd_send(&c, err == SNAP_ENOTSUP ? 505 : err == SNAP_ETOOBIG ? 431 : 400, NULL, NULL, 0, false);
            break;
        }
        snprintf(req.peer, sizeof req.peer, "%s", peer);
        if (!admitted && !(admitted = net_conn_ready())) { /* the client cap counts from here */
            httpd_send(&c, 503, "Retry-After: 1\r\n", NULL, 0, false);
            break;
        }
        c.keep_alive = req.keep_alive;
        if ((c.th = s->opts->throttle) != NULL)
            c.t_first_ns = snap_now_ns() + (uint64_t)c.th->ttfb_us * 1000;
        const char *cl = httpd_header(&req, "content-length"), *te = httpd_header(&req, "transfer-encoding");
        bool has_body = te || (cl && strcmp(cl, "0") != 0);
        bool head = strcmp(req.method, "HEAD") == 0;
        if (has_body)
            c.keep_alive = false; /* we never read request bodies, so the stream ends here */
        if (!head && strcmp(req.method, "GET") != 0) {
            httpd_send(&c, 405, "Allow: GET, HEAD\r\n", NULL, 0, false);
        } else if (has_body) {
            httpd_send(&c, 413, NULL, NULL, 0, head);
        } else {
            s->handler(s->ctx, &c, &req);
            if (!c.responded)
                httpd_send(&c, 500, NULL, NULL, 0, head);
        }
        if (!c.keep_alive || c.broken)
            break;
        /* Keep what the client pipelined after this head. */
        memmove(buf, buf + hl, have - (size_t)hl);
        have -= (size_t)hl;
    }
    snap_free(buf);
    tls_close(tls);
    snap_free(tls_buf);
}

/* The server on lfd; stop_fd as in struct net_server (NULL: httpd_stop stops it). */
static int httpd_serve(int lfd, const struct httpd_opts *opts, httpd_handler_fn handler, void *ctx,
                       const int *stop_fd)
{
    struct httpd_server s = {.opts = opts, .handler = handler, .ctx = ctx};
    httpd_cidr_parse("127.0.0.0/8", &s.loopback[0]);
    httpd_cidr_parse("::1/128", &s.loopback[1]);
    struct net_server ns = {
        .conn = httpd_conn_main, .accept = httpd_accept, .ctx = &s,
        .max_conns = opts->max_conns ? opts->max_conns : 256, .nodelay = true, .stop_fd = stop_fd,
        /* Connected to first head complete; TLS handshakes count in it. */
        .handshake_ms = (opts->head_timeout_ms ? opts->head_timeout_ms : 10000) +
                        (opts->idle_timeout_ms ? opts->idle_timeout_ms : 30000),
    };
    return net_server_run(&ns, &lfd, 1);
}

int httpd_run(int lfd, const struct httpd_opts *opts, httpd_handler_fn handler, void *ctx)
{
    return httpd_serve(lfd, opts, handler, ctx, NULL);
}

/* ---- a server on a thread of its own ---- */

struct httpd_bg {
    int lfd, stop[2];         /* stop: a pipe; a byte in it ends this server alone */
    struct httpd_opts opts;
    httpd_handler_fn handler;
    void *ctx;
    pthread_t thread;
    int err;                  /* what the server returned */
};

static void *httpd_bg_main(void *arg)
{
    struct httpd_bg *b = arg;
    b->err = httpd_serve(b->lfd, &b->opts, b->handler, b->ctx, &b->stop[0]);
    return NULL;
}

int httpd_bg_start(int lfd, const struct httpd_opts *opts, httpd_handler_fn handler, void *ctx,
                   struct httpd_bg **out)
{
    struct httpd_bg *b = snap_calloc(1, sizeof *b);
    if (!b)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    *b = (struct httpd_bg){.lfd = lfd, .opts = *opts, .handler = handler, .ctx = ctx};
    if (pipe2(b->stop, O_CLOEXEC) < 0) {
        snap_free(b);
        return snap_fail_errno("http server: its stop pipe");
    }
    if (pthread_create(&b->thread, NULL, httpd_bg_main, b) != 0) {
        close(b->stop[0]);
        close(b->stop[1]);
        snap_free(b);
        return snap_fail(SNAP_EIO, "http server: cannot start its thread");
    }
    *out = b;
    return 0;
}

int httpd_bg_stop(struct httpd_bg *b)
{
    if (!b)
        return 0;
    char one = 1;
    ssize_t w = write(b->stop[1], &one, 1);
    (void)w; /* a pipe with room for a byte: cannot fail */
    pthread_join(b->thread, NULL);
    close(b->stop[0]);
    close(b->stop[1]);
    int err = b->err;
    snap_free(b);
    return err;
}

void httpd_stop(void)
{
    net_server_stop();
}
