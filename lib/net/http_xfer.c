/* http_xfer.c -- one HTTP exchange on a pooled connection: send, read the head, pump the body.
 *
 * Design notes.
 * - An attempt takes a connection from the pool, sends the head and the body straight from
 *   the caller's memory, reads the head through the connection's read buffer, then pumps the
 *   body.  A pooled connection that fails before any response byte arrived was closed by the
 *   server while idle: the attempt is repeated at once on a new connection (not a retry).
 * - Body pump: bytes already buffered are parsed from rbuf and copied to the sink; when rbuf
 *   is empty and the sink is a buffer, the socket (or mbedTLS) reads straight into the
 *   caller's buffer, as many bytes as framing allows (Content-Length left, or the current
 *   chunk's data).  So a ranged GET into an mmap slice costs one copy at most for the bytes
 *   that came with the head.  A callback or discard sink may lend a bigger receive buffer
 *   (recv_buf): 256 KiB reads instead of 32 KiB ones cut fetch's system time by a third.
 * - Only a 2xx body reaches the caller's sink.  Error bodies are kept in rs->body.data (capped);
 *   redirect bodies are drained.  A body we stop wanting (the rest of a 200 answered to a
 *   range) is drained when small, else the connection is closed instead of reading GiBs.
 */
#include "net/http_int.h"

#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Append to rs->body (NUL-terminated), at most max bytes in all. */
int http_body_append(struct http_response *rs, const void *p, size_t n, size_t max)
{
    if (n > max || rs->body.len > max - n)
        return SNAP_ETOOBIG;
    int e = snap_buf_reserve(&rs->body, rs->body.len + n + 1);
    if (e)
        return e == SNAP_ENOMEM ? snap_fail_ctx(e, "response body") : e;
    snap_buf_append(&rs->body, p, n); /* the room is there: cannot fail */
    rs->body.data[rs->body.len] = '\0';
    return 0;
}

bool http_is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

bool http_method_is(const char *m, const char *want)
{
    return strcmp(m, want) == 0;
}

/* ---- sending ---- */

/* The fields of this attempt, in order: ours, the caller's, then the signer's. */
static int req_headers(struct http_xfer *x, struct http_hdrs *hd, uint64_t *clen, bool *chunked)
{
    const struct http_request *rq = x->rq;
    char v[URL_HOST_MAX + 16];
    int e;
    *chunked = false;
    *clen = HTTP_SIZE_UNKNOWN;
    http_hdrs_init(hd);
    if ((e = url_authority(x->url, v, sizeof v)))
        return e;
    if ((e = http_hdrs_add(hd, "Host", v)))
        return e;
    if ((!rq->headers || !http_hdrs_get(rq->headers, "User-Agent")) &&
        (e = http_hdrs_add(hd, "User-Agent", x->c->o.user_agent)))
        return e;
    if (rq->range) {
        /* A range that runs to UINT64_MAX means "to the end": ask open-ended, like curl -C. */
        if (x->len == UINT64_MAX - x->off)
            snprintf(v, sizeof v, "bytes=%" PRIu64 "-", x->off);
        else
            snprintf(v, sizeof v, "bytes=%" PRIu64 "-%" PRIu64, x->off, x->off + x->len - 1);
        if ((e = http_hdrs_add(hd, "Range", v)))
            return e;
    }
    bool has_body = x->send_body && (rq->body_fn || rq->body);
    if (has_body && rq->body_fn && rq->body_len == HTTP_SIZE_UNKNOWN) {
        *chunked = true;
        e = http_hdrs_add(hd, "Transfer-Encoding", "chunked");
    } else if (has_body || http_method_is(x->method, "PUT") || http_method_is(x->method, "POST") ||
               http_method_is(x->method, "PATCH")) {
        *clen = has_body ? rq->body_len : 0;
        snprintf(v, sizeof v, "%" PRIu64, *clen);
        e = http_hdrs_add(hd, "Content-Length", v);
    }
    if (e)
        return e;
    for (unsigned i = 0; rq->headers && i < rq->headers->n; i++) {
        const char *n = http_hdrs_name(rq->headers, i);
        if (!strcasecmp(n, "Host") || !strcasecmp(n, "Content-Length") || !strcasecmp(n, "Transfer-Encoding") ||
            (rq->range && !strcasecmp(n, "Range")) ||
            (!x->same_origin && (!strcasecmp(n, "Authorization") || !strcasecmp(n, "Cookie") ||
                                 !strcasecmp(n, "Proxy-Authorization"))))
            continue;
        if ((e = http_hdrs_add(hd, n, http_hdrs_value(rq->headers, i))))
            return e;
    }
    if (rq->sign && x->same_origin && (e = rq->sign(rq->sign_ctx, x->method, x->url, x->target, hd)))
        return snap_fail_ctx(e, "signing"); /* http_do adds x->what */
    return 0;
}

/* Stream a callback body: the connection's read buffer is idle while we send. */
static int send_body_fn(struct http_xfer *x, bool chunked)
{
    const struct http_request *rq = x->rq;
    struct http_conn *k = x->k;
    uint64_t off = 0;
    for (;;) {
        size_t want = k->rcap - 32, got = 0; /* room for a chunk-size line */
        if (!chunked && rq->body_len - off < want)
            want = (size_t)(rq->body_len - off);
        int e = want ? rq->body_fn(rq->body_ctx, off, k->rbuf + 16, want, &got) : 0;
        if (e)
            return snap_fail_ctx(e, "%s: request body", x->what);
        if (got > want)
            return snap_fail(SNAP_EINTERNAL, "%s: body callback returned %zu > %zu bytes", x->what, got, want);
        off += got;
        if (!chunked && got < want)
            return snap_fail(SNAP_ESHORT, "%s: request body ended at %" PRIu64 " of %" PRIu64 " bytes", x->what, off,
                             rq->body_len);
        char pre[24];
        int pl = chunked ? snprintf(pre, sizeof pre, "%zx\r\n", got) : 0;
        struct iovec iov[3] = {{pre, (size_t)pl}, {k->rbuf + 16, got}, {(char *)"\r\n", chunked && got ? 2 : 0}};
        if (chunked && got == 0)
            iov[2] = (struct iovec){(char *)"\r\n", 2}; /* "0\r\n" + "\r\n" */
        if ((e = http_conn_writev(k, iov, 3)))
            return e;
        if (chunked ? got == 0 : off == rq->body_len)
            return 0;
    }
}

/* The rest of an in-memory body in steps, telling the request's observer after each. */
static int send_body_steps(struct http_conn *k, const struct http_request *rq, uint64_t len, uint64_t sent)
{
    const uint8_t *p = rq->body;
    http_sent_fn fn = rq->sent;
    void *ctx = rq->sent_ctx;
    fn(ctx, sent);
    while (sent < len) {
        uint64_t n = len - sent < HTTP_SEND_STEP ? len - sent : HTTP_SEND_STEP;
        struct iovec iov = {(void *)(p + sent), (size_t)n};
        int e = http_conn_writev(k, &iov, 1);
        if (e)
            return e;
        sent += n;
        fn(ctx, sent);
    }
    return 0;
}

static int req_send(struct http_xfer *x)
{
    struct http_hdrs hd;
    uint64_t clen;
    bool chunked;
    int e = req_headers(x, &hd, &clen, &chunked);
    if (e)
        return e;
    struct http_conn *k = x->k;
    int n = snprintf(k->wbuf, k->wcap, "%s %s HTTP/1.1\r\n", x->method, x->target);
    for (unsigned i = 0; i < hd.n && n > 0 && (size_t)n < k->wcap; i++)
        n += snprintf(k->wbuf + n, k->wcap - (size_t)n, "%s: %s\r\n", http_hdrs_name(&hd, i), http_hdrs_value(&hd, i));
    if (n > 0 && (size_t)n < k->wcap)
        n += snprintf(k->wbuf + n, k->wcap - (size_t)n, "\r\n");
    if (n < 0 || (size_t)n >= k->wcap)
        return snap_fail(SNAP_ETOOBIG, "%s: request head larger than %u bytes", x->what, HTTP_WBUF_SIZE);
    atomic_fetch_add(&x->c->n_requests, 1);
    bool body_mem = x->send_body && !x->rq->body_fn && x->rq->body && clen;
    /* Head and body in one writev: the body goes from the caller's memory to the kernel. */
    uint64_t first = body_mem ? clen : 0;
    if (x->rq->sent && first > HTTP_SEND_STEP)
        first = HTTP_SEND_STEP;
    struct iovec iov[2] = {{k->wbuf, (size_t)n}, {(void *)x->rq->body, (size_t)first}};
    if (body_mem && clen > SIZE_MAX)
        return snap_fail(SNAP_ETOOBIG, "%s: body of %" PRIu64 " bytes", x->what, clen);
    if ((e = http_conn_writev(k, iov, 2)))
        return e;
    if (body_mem && x->rq->sent && (e = send_body_steps(k, x->rq, clen, first)))
        return e;
    if (x->send_body && x->rq->body_fn)
        return send_body_fn(x, chunked);
    return 0;
}

/* ---- receiving ---- */

/* Read the response head (skipping 1xx) into rs->head.  *got_byte: something arrived. */
static int resp_head_read(struct http_xfer *x, bool *got_byte)
{
    struct http_conn *k = x->k;
    struct http_head *h = &x->rs->head;
    unsigned interim = 0;
    http_head_reset(h);
    for (;;) {
        if (k->rpos == k->rend) {
            size_t got;
            int e = http_conn_read(k, k->rbuf, k->rcap, &got);
            if (e)
                return e;
            if (got == 0)
                return snap_fail(*got_byte ? SNAP_ESHORT : SNAP_ENET, "%s", *got_byte ?
                                 "connection closed in the middle of the response head" :
                                 "connection closed before the response");
            *got_byte = true;
            k->rpos = 0;
            k->rend = got;
        }
        size_t used;
        int e = http_head_feed(h, k->rbuf + k->rpos, k->rend - k->rpos, &used);
        if (e)
            return e;
        k->rpos += used;
        if (!http_head_done(h))
            continue;
        if (h->status >= 200)
            return 0;
        if (h->status == 101)
            return snap_fail(SNAP_EPROTO, "unexpected 101 Switching Protocols");
        if (++interim > HTTP_INTERIM_MAX) {
            x->no_retry = true;
            return snap_fail(SNAP_EPROTO, "more than %d interim (1xx) responses before the answer",
                             HTTP_INTERIM_MAX);
        }
        http_head_reset(h); /* 100 Continue, 103 Early Hints: the real answer follows */
    }
}

/* The head, under the client's head timeout (counted from now: the request was just sent). */
static int resp_head(struct http_xfer *x, bool *got_byte)
{
    struct sock *sk = &x->k->sock;
    unsigned ms = x->c->o.head_timeout_ms;
    uint64_t saved = sk->deadline_ns, hd = ms ? snap_now_ns() + (uint64_t)ms * 1000000 : 0;
    if (hd && (!saved || hd < saved))
        sk->deadline_ns = hd;
    int e = resp_head_read(x, got_byte);
    bool ours = sk->deadline_ns != saved;
    sk->deadline_ns = saved;
    if (e == SNAP_ETIMEOUT && ours && snap_now_ns() >= hd) {
        x->no_retry = true;
        return snap_fail(SNAP_ETIMEOUT, "%s: no complete response head %u ms after the request (head timeout)",
                         sk->peer, ms);
    }
    return e;
}

/* "bytes a-b/total", "bytes a-b/ *" or "bytes * /total" (without the spaces around '/'). */
static int parse_content_range(const char *v, uint64_t *a, uint64_t *b, uint64_t *total)
{
    char *end;
    *a = *b = *total = HTTP_SIZE_UNKNOWN;
    if (!v || strncasecmp(v, "bytes ", 6) != 0)
        return -1;
    v += 6;
    if (*v == '*') {
        v++;
    } else {
        if (*v < '0' || *v > '9')
            return -1;
        errno = 0;
        *a = strtoull(v, &end, 10);
        if (errno || *end != '-' || end[1] < '0' || end[1] > '9')
            return -1;
        *b = strtoull(end + 1, &end, 10);
        if (errno || *b < *a)
            return -1;
        v = end;
    }
    if (*v++ != '/')
        return -1;
    if (*v == '*' && v[1] == '\0')
        return *a == HTTP_SIZE_UNKNOWN ? -1 : 0;
    if (*v < '0' || *v > '9')
        return -1;
    errno = 0;
    *total = strtoull(v, &end, 10);
    if (errno || *end || (*b != HTTP_SIZE_UNKNOWN && *b >= *total))
        return -1;
    return 0;
}

static int too_big(uint64_t size, const char *field, uint64_t max)
{
    return snap_fail(SNAP_ETOOBIG, "the object is %" PRIu64 " bytes (%s), over the limit of %" PRIu64
                     " bytes; nothing of it was read", size, field, max);
}

/* Decide framing and destination of the body that follows the head. */
static int resp_setup(struct http_xfer *x, bool following)
{
    const struct http_request *rq = x->rq;
    struct http_response *rs = x->rs;
    struct http_head *h = &rs->head;
    int st = h->status;
    rs->status = st;
    x->mode = h->chunked ? BM_CHUNKED : h->has_length ? BM_LENGTH : BM_CLOSE;
    if (http_method_is(x->method, "HEAD") || st == 204 || st == 304)
        x->mode = BM_NONE;
    x->left = h->content_length;
    http_chunked_init(&x->ch);
    x->reusable = !h->close && x->mode != BM_CLOSE;
    x->skip = 0;
    x->limit = UINT64_MAX;
    x->drained = 0;
    x->cut = false;
    if (st == 200 && h->has_length && !rq->range)
        rs->total_size = h->content_length;
    if (following) {
        x->sink = SK_DRAIN;
        return 0;
    }
    if (st < 200 || st > 299) {
        x->sink = SK_ERROR;
        rs->body.len = 0;
        if (st == 416) {
            uint64_t a, b, t;
            if (parse_content_range(http_head_get(h, "Content-Range"), &a, &b, &t) == 0)
                rs->total_size = t;
        }
        return 0;
    }
    x->sink = SK_CALLER;
    uint64_t max = x->c->o.max_object_size;
    if (rq->range && st == 206) {
        const char *cr = http_head_get(h, "Content-Range");
        uint64_t a, b, t, last = x->off + x->len - 1;
        int bad = parse_content_range(cr, &a, &b, &t);
        if (!bad && max && t != HTTP_SIZE_UNKNOWN && t > max)
            return too_big(t, "Content-Range", max);
        if (bad || a != x->off || b > last ||
            (b < last && b + 1 != t))
            return snap_fail(SNAP_EPROTO, "206 with Content-Range '%.80s' for bytes=%" PRIu64 "-%" PRIu64,
                             cr ? cr : "(none)", x->off, last);
        if (x->mode == BM_LENGTH && h->content_length != b - a + 1)
            return snap_fail(SNAP_EPROTO, "206 with Content-Length %" PRIu64 " for Content-Range '%.80s'",
                             h->content_length, cr);
        rs->total_size = t;
        x->limit = b - a + 1;
    } else if (rq->range) {
        /* The whole object: skip to the range. */
        if (st == 200 && h->has_length)
            rs->total_size = h->content_length;
        x->skip = x->off;
        x->limit = x->len;
    }
    if (st != 206 && max && h->has_length && h->content_length > max)
        return too_big(h->content_length, "Content-Length", max);
    uint64_t coming = h->content_length < x->limit ? h->content_length : x->limit;
    if (rq->sink == HTTP_SINK_BUFFER && x->mode == BM_LENGTH && x->skip == 0 && coming > rq->dst_len - rs->bytes)
        return snap_fail(SNAP_ETOOBIG, "body of %" PRIu64 " bytes does not fit the %" PRIu64 "-byte buffer",
                         h->content_length, rq->dst_len);
    return 0;
}

/* Bytes landed in the caller's sink. */
static int sink_landed(struct http_xfer *x, uint64_t n)
{
    const struct http_request *rq = x->rq;
    x->rs->bytes += n;
    x->limit -= n;
    if (rq->sink == HTTP_SINK_BUFFER && rq->progress && rq->progress(rq->progress_ctx, x->rs->bytes))
        return snap_fail(SNAP_ECANCELED, "canceled by the caller at %" PRIu64 " bytes", x->rs->bytes);
    return 0;
}

/* Drop n bytes of a body we do not want; give up on the connection past the drain cap. */
static void sink_drop(struct http_xfer *x, size_t n)
{
    x->drained += n;
    if (x->drained > HTTP_DRAIN_MAX) {
        x->cut = true;
        x->reusable = false;
    }
}

static int deliver(struct http_xfer *x, const uint8_t *p, size_t n)
{
    const struct http_request *rq = x->rq;
    struct http_response *rs = x->rs;
    if (x->sink == SK_ERROR) {
        size_t keep = rs->body.len < HTTP_ERROR_BODY_MAX ? HTTP_ERROR_BODY_MAX - rs->body.len : 0;
        int e = http_body_append(rs, p, n < keep ? n : keep, HTTP_ERROR_BODY_MAX);
        if (e)
            return e;
        sink_drop(x, n);
        return 0;
    }
    if (x->sink == SK_DRAIN) {
        sink_drop(x, n);
        return 0;
    }
    if (x->skip) {
        size_t s = x->skip < n ? (size_t)x->skip : n;
        x->skip -= s;
        p += s;
        n -= s;
    }
    if (n > x->limit) {
        sink_drop(x, n - (size_t)x->limit);
        n = (size_t)x->limit;
    }
    if (n) {
        int e = 0;
        switch (rq->sink) {
        case HTTP_SINK_COLLECT: {
            size_t max = rq->collect_max && rq->collect_max < HTTP_COLLECT_MAX ? rq->collect_max : HTTP_COLLECT_MAX;
            e = http_body_append(rs, p, n, max);
            if (e == SNAP_ETOOBIG)
                e = snap_fail(SNAP_ETOOBIG, "response body larger than %zu bytes", max);
            break;
        }
        case HTTP_SINK_BUFFER:
            if (n > rq->dst_len - rs->bytes)
                return snap_fail(SNAP_ETOOBIG, "response body larger than the %" PRIu64 "-byte buffer",
                                 rq->dst_len);
            memcpy((uint8_t *)rq->dst + rs->bytes, p, n);
            break;
        case HTTP_SINK_CALLBACK:
            if (rq->data_fn(rq->data_ctx, p, n))
                e = snap_fail(SNAP_ECANCELED, "canceled by the caller at %" PRIu64 " bytes", rs->bytes);
            break;
        case HTTP_SINK_DISCARD:
            break;
        }
        if (e || (e = sink_landed(x, n)))
            return e;
    }
    /* A range answered by the whole object: the rest is not wanted. */
    if (x->limit == 0 && x->rq->range) {
        if (x->mode == BM_LENGTH && x->left <= HTTP_DRAIN_MAX)
            x->sink = SK_DRAIN;
        else
            x->cut = true, x->reusable = false;
    }
    return 0;
}

static bool body_done(const struct http_xfer *x)
{
    switch (x->mode) {
    case BM_NONE: return true;
    case BM_LENGTH: return x->left == 0;
    case BM_CHUNKED: return http_chunked_done(&x->ch);
    case BM_CLOSE: return false;
    }
    return true;
}

/* The caller's buffer, when the next bytes may be read straight into it. */
static uint8_t *direct_dst(const struct http_xfer *x, uint64_t *room)
{
    const struct http_request *rq = x->rq;
    if (x->sink != SK_CALLER || rq->sink != HTTP_SINK_BUFFER || x->skip || x->limit == 0)
        return NULL;
    *room = rq->dst_len - x->rs->bytes;
    if (*room > x->limit)
        *room = x->limit;
    return *room ? (uint8_t *)rq->dst + x->rs->bytes : NULL;
}

static int body_eof(struct http_xfer *x)
{
    if (x->mode == BM_CLOSE) {
        x->mode = BM_NONE;
        return 0;
    }
    if (x->mode == BM_LENGTH)
        return snap_fail(SNAP_ESHORT, "connection closed %" PRIu64 " bytes before the end of the %" PRIu64
                         "-byte body", x->left, x->rs->head.content_length);
    return snap_fail(SNAP_ESHORT, "connection closed inside the chunked body");
}

/* The minimum-rate rule: a window of speed_time_ms must move speed_limit bytes per second. */
static uint64_t rate_need(const struct http_opts *o)
{
    uint64_t ms = o->speed_time_ms;
    uint64_t need = o->speed_limit > UINT64_MAX / (ms ? ms : 1) ? UINT64_MAX : o->speed_limit * ms / 1000;
    return need ? need : 1;
}

static void rate_window(struct http_xfer *x, uint64_t now)
{
    x->win_end = now + (uint64_t)x->c->o.speed_time_ms * 1000000;
    x->win_bytes = rate_need(&x->c->o);
}

/* A read of body bytes; the poll wakes at the end of the rate window to judge it. */
static int body_read(struct http_xfer *x, void *buf, size_t len, size_t *got)
{
    const struct http_opts *o = &x->c->o;
    struct sock *sk = &x->k->sock;
    if (!o->speed_limit || !o->speed_time_ms)
        return http_conn_read(x->k, buf, len, got);
    for (;;) {
        uint64_t now = snap_now_ns();
        if (now >= x->win_end) {
            if (x->win_bytes) {
                uint64_t moved = rate_need(o) - x->win_bytes;
                x->no_retry = true;
                return snap_fail(SNAP_ETIMEOUT, "%s: the body moved %" PRIu64 " bytes in %u ms, below the "
                                 "minimum rate of %" PRIu64 " bytes/s (speed limit)", sk->peer, moved,
                                 o->speed_time_ms, o->speed_limit);
            }
            rate_window(x, now);
        }
        uint64_t saved = sk->deadline_ns;
        if (!saved || x->win_end < saved)
            sk->deadline_ns = x->win_end;
        int e = http_conn_read(x->k, buf, len, got);
        bool ours = sk->deadline_ns != saved;
        sk->deadline_ns = saved;
        if (e == SNAP_ETIMEOUT && ours && snap_now_ns() >= x->win_end)
            continue; /* the window ended: judge it */
        if (!e)
            x->win_bytes -= *got < x->win_bytes ? *got : x->win_bytes;
        return e;
    }
}

static int body_pump(struct http_xfer *x)
{
    struct http_conn *k = x->k;
    int e = 0;
    rate_window(x, snap_now_ns());
    while (!e && !body_done(x) && !x->cut) {
        if (k->rpos < k->rend) {
            const uint8_t *p = k->rbuf + k->rpos;
            size_t n = k->rend - k->rpos;
            if (x->mode == BM_CHUNKED) {
                const uint8_t *d;
                size_t used, dl;
                e = http_chunked_feed(&x->ch, p, n, &used, &d, &dl);
                k->rpos += used;
                if (!e && dl)
                    e = deliver(x, d, dl);
                continue;
            }
            if (x->mode == BM_LENGTH && n > x->left)
                n = (size_t)x->left;
            k->rpos += n;
            x->left -= x->mode == BM_LENGTH ? n : 0;
            e = deliver(x, p, n);
            continue;
        }
        uint64_t want = x->mode == BM_LENGTH ? x->left : x->mode == BM_CHUNKED ? http_chunked_data_left(&x->ch)
                                                                              : UINT64_MAX;
        uint64_t room = 0;
        uint8_t *d = want ? direct_dst(x, &room) : NULL;
        size_t got;
        if (d) {
            size_t n = (size_t)(want < room ? want : room);
            if ((e = body_read(x, d, n, &got)))
                break;
            if (got == 0) {
                e = body_eof(x);
                continue;
            }
            if (x->mode == BM_LENGTH)
                x->left -= got;
            else if (x->mode == BM_CHUNKED)
                http_chunked_skip(&x->ch, got);
            e = sink_landed(x, got);
        } else if (x->sink == SK_CALLER && x->rq->recv_buf && x->rq->recv_buf_len && x->mode != BM_CHUNKED &&
                   want) {
            /* The caller's bigger buffer: fewer reads for a callback or a discard. */
            size_t n = (size_t)(want < x->rq->recv_buf_len ? want : x->rq->recv_buf_len);
            if ((e = body_read(x, x->rq->recv_buf, n, &got)))
                break;
            if (got == 0) {
                e = body_eof(x);
                continue;
            }
            if (x->mode == BM_LENGTH)
                x->left -= got;
            e = deliver(x, x->rq->recv_buf, got);
        } else {
            k->rpos = k->rend = 0;
            if ((e = body_read(x, k->rbuf, k->rcap, &got)))
                break;
            if (got == 0)
                e = body_eof(x);
            k->rend = got;
        }
    }
    return e;
}

/* The redirect rule (http.h): the original URL's address class is learned from its connection. */
static int addr_check(struct http_xfer *x)
{
    const struct http_conn *k = x->k;
    if (!x->origin_known && !x->rs->redirects) {
        x->origin_known = true;
        x->origin_class = k->addr_class;
    }
    if (!x->rs->redirects || x->c->o.allow_private_redirects || k->addr_class == NET_ADDR_PUBLIC ||
        (x->origin_known && k->addr_class == x->origin_class))
        return 0;
    x->no_retry = true;
    return snap_fail(SNAP_EAUTH, "refused: a redirect from a %s address to %s, a %s address (a redirect "
                     "must not lead into loopback, private, link-local or metadata addresses unless the "
                     "original URL was one; --allow-private-redirects allows it)",
                     net_addr_class_name(x->origin_class), k->addr, net_addr_class_name(k->addr_class));
}

/* One attempt: a connection, the request, the whole response. */
int http_xfer_attempt(struct http_xfer *x, bool following_ok)
{
    struct http_client *c = x->c;
    x->rs->status = 0;
    for (bool fresh = false;; fresh = true) {
        bool reused, got_byte = false;
        int e = http_conn_get(c, x->url, x->deadline, fresh, &x->k, &reused);
        if (e)
            return e;
        if (reused)
            atomic_fetch_add(&c->n_reused, 1);
        if ((e = addr_check(x))) {
            http_conn_release(c, x->k, true);
            x->k = NULL;
            return e;
        }
        x->k->sock.idle_ms = c->o.idle_timeout_ms;
        x->k->sock.deadline_ns = x->deadline;
        e = req_send(x);
        if (!e)
            e = resp_head(x, &got_byte);
        if (e && reused && !got_byte && (e == SNAP_ENET || e == SNAP_ESHORT)) {
            /* The server closed the idle connection: not the request's fault. */
            snap_debug("%s: pooled connection to %s was closed, retrying on a new one", x->what, x->k->sock.peer);
            http_conn_release(c, x->k, false);
            atomic_fetch_add(&c->n_stale, 1);
            continue;
        }
        if (!e) {
            const char *loc = http_head_get(&x->rs->head, "Location");
            e = resp_setup(x, following_ok && http_is_redirect(x->rs->head.status) && loc);
        }
        if (!e)
            e = body_pump(x);
        /* A 206 owes the bytes its Content-Range named, whatever the framing said. */
        if (!e && x->sink == SK_CALLER && x->rq->range && x->rs->status == 206 && x->limit)
            e = snap_fail(SNAP_ESHORT, "206 body ended %" PRIu64 " bytes short of its Content-Range", x->limit);
        http_conn_release(c, x->k, !e && x->reusable);
        x->k = NULL;
        return e;
    }
}

