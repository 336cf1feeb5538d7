/* http.c -- the request loop: redirects, retries with backoff, and the public entry points.
 *
 * Retries: a ranged read that got part of its range asks for the rest only; any other request
 * whose body already reached a buffer or callback sink is not retried (the caller has seen
 * bytes we cannot take back).  The stale-connection repeat lives in http_xfer.c and is not a
 * retry.
 */
#include "net/http_int.h"

#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void http_response_init(struct http_response *rs)
{
    memset(rs, 0, sizeof *rs);
    http_head_init(&rs->head);
    snap_buf_init(&rs->body, 1024, HTTP_COLLECT_MAX + 1); /* +1: the NUL after the body */
    rs->total_size = HTTP_SIZE_UNKNOWN;
}

void http_response_free(struct http_response *rs)
{
    http_head_free(&rs->head);
    snap_buf_free(&rs->body);
    http_response_init(rs);
}

static bool same_origin(const struct url *a, const struct url *b)
{
    return a->scheme == b->scheme && a->port == b->port && strcmp(a->host, b->host) == 0;
}

static bool retryable_status(int st)
{
    return st == 408 || st == 429 || st == 500 || st == 502 || st == 503 || st == 504;
}

/* The failure for a final status that is not 2xx, with the start of the body for humans. */
static int status_error(struct http_xfer *x)
{
    const struct http_response *rs = x->rs;
    char snip[160];
    size_t n = 0;
    for (size_t i = 0; i < rs->body.len && n + 1 < sizeof snip; i++) {
        char ch = (char)rs->body.data[i];
        if (ch == '\r' || ch == '\n' || ch == '\t')
            ch = ' ';
        if (ch < 0x20 || ch > 0x7e || (ch == ' ' && n && snip[n - 1] == ' '))
            continue;
        snip[n++] = ch;
    }
    snip[n] = '\0';
    if (rs->status == 416 && x->rq->range) {
        char size[32] = "unknown";
        if (rs->total_size != HTTP_SIZE_UNKNOWN)
            snprintf(size, sizeof size, "%" PRIu64, rs->total_size);
        return snap_fail(SNAP_ERANGE, "%s: HTTP 416: range bytes=%" PRIu64 "-%" PRIu64 " starts past the end "
                         "(size %s)", x->what, x->off, x->off + x->len - 1, size);
    }
    return snap_fail(SNAP_EHTTP, "%s: HTTP %d %s%s%s", x->what, rs->status, http_head_reason(&rs->head),
                     n ? ": " : "", snip);
}

/* Point x at the redirect target; *owned holds it. */
static int follow(struct http_xfer *x, struct url *owned)
{
    struct http_response *rs = x->rs;
    const char *loc = http_head_get(&rs->head, "Location");
    struct url base, next;
    /* The base is where the request went: the url's origin and the target we sent. */
    char *b = snap_malloc(URL_MAX + 600);
    if (!b)
        return snap_fail(SNAP_ENOMEM, "redirect");
    char auth[URL_HOST_MAX + 16];
    url_authority(x->url, auth, sizeof auth);
    snprintf(b, URL_MAX + 600, "%s://%s%s", x->url->scheme_name, auth, x->target);
    int e = url_parse(b, &base);
    snap_free(b);
    if (e)
        return snap_fail_ctx(SNAP_EPROTO, "%s: redirect base", x->what);
    e = url_resolve(&base, loc, &next);
    url_free(&base);
    if (e)
        return snap_fail_ctx(SNAP_EPROTO, "%s: HTTP %d Location", x->what, rs->status);
    if (next.scheme != URL_HTTP && next.scheme != URL_HTTPS) {
        e = snap_fail(SNAP_EPROTO, "%s: HTTP %d redirect to %s:// refused (only http:// and https:// "
                      "redirects are followed)", x->what, rs->status, next.scheme_name);
        url_free(&next);
        return e;
    }
    url_free(owned);
    *owned = next;
    x->url = owned;
    x->target = url_target(owned, x->tbuf, sizeof x->tbuf) == 0 ? x->tbuf : "/";
    x->same_origin = same_origin(owned, x->rq->url);
    int st = rs->status;
    if ((st == 303 && !http_method_is(x->method, "HEAD")) ||
        ((st == 301 || st == 302) && http_method_is(x->method, "POST"))) {
        x->method = "GET";
        x->send_body = false;
    }
    rs->redirects++;
    int w = snprintf(x->what, sizeof x->what, "%s ", x->method);
    url_redact(x->url, x->target, x->what + w, sizeof x->what - (size_t)w);
    snap_debug("redirected to %s", x->what);
    return 0;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int req_check(const struct http_request *rq)
{
    if (!rq->method || !*rq->method || strpbrk(rq->method, " \t\r\n"))
        return snap_fail(SNAP_EUSAGE, "HTTP request without a valid method");
    if (!rq->url || (rq->url->scheme != URL_HTTP && rq->url->scheme != URL_HTTPS))
        return snap_fail(SNAP_EUSAGE, "%s: not an http:// or https:// URL", rq->method);
    if (rq->target && (rq->target[0] != '/' || strpbrk(rq->target, " \t\r\n")))
        return snap_fail(SNAP_EUSAGE, "%s: request target '%.80s' must start with '/' and hold no space",
                         rq->method, rq->target);
    if ((rq->sink == HTTP_SINK_BUFFER && !rq->dst && rq->dst_len) ||
        (rq->sink == HTTP_SINK_CALLBACK && !rq->data_fn))
        return snap_fail(SNAP_EUSAGE, "%s: response sink without its buffer or callback", rq->method);
    if (rq->range && rq->range_len > UINT64_MAX - rq->range_off)
        return snap_fail(SNAP_EUSAGE, "%s: range overflows", rq->method);
    return 0;
}

int http_do(struct http_client *c, const struct http_request *rq, struct http_response *rs)
{
    rs->status = 0;
    rs->bytes = 0;
    rs->body.len = 0;
    rs->total_size = HTTP_SIZE_UNKNOWN;
    rs->attempts = 0;
    rs->redirects = 0;
    if (rs->body.data)
        rs->body.data[0] = '\0';
    int e = req_check(rq);
    if (e)
        return e;
    if (rq->range && rq->range_len == 0)
        return 0;
    /* Big (URL_MAX target buffer), and per call: on the heap would be an allocation. */
    struct http_xfer x = {
        .c = c, .rq = rq, .rs = rs, .method = rq->method, .url = rq->url, .send_body = true,
        .same_origin = true, .off = rq->range_off, .len = rq->range_len,
    };
    if (c->o.total_timeout_ms)
        x.deadline = snap_now_ns() + (uint64_t)c->o.total_timeout_ms * 1000000;
    if (c->o.deadline_ns && (!x.deadline || c->o.deadline_ns < x.deadline))
        x.deadline = c->o.deadline_ns;
    x.target = rq->target ? rq->target : url_target(rq->url, x.tbuf, sizeof x.tbuf) == 0 ? x.tbuf : NULL;
    if (!x.target)
        return snap_fail(SNAP_ETOOBIG, "%s: URL target too long", rq->method);
    int w = snprintf(x.what, sizeof x.what, "%s ", rq->method);
    url_redact(rq->url, x.target, x.what + w, sizeof x.what - (size_t)w);

    const struct http_retry *pol = &c->o.retry;
    bool idem = http_method_is(x.method, "GET") || http_method_is(x.method, "HEAD") || http_method_is(x.method, "PUT") ||
                http_method_is(x.method, "DELETE") || http_method_is(x.method, "OPTIONS");
    bool may_retry = rq->retry == HTTP_RETRY_YES || (rq->retry == HTTP_RETRY_AUTO && idem);
    struct url redirected = {0};
    for (;;) {
        rs->attempts++;
        bool retry = false;
        int64_t after = -1;
        e = http_xfer_attempt(&x, rs->redirects < HTTP_MAX_REDIRECTS);
        if (e == 0 && http_is_redirect(rs->status) && http_head_get(&rs->head, "Location") &&
            rs->redirects < HTTP_MAX_REDIRECTS) {
            rs->attempts--;
            if ((e = follow(&x, &redirected)))
                break;
            continue;
        }
        if (e == 0) {
            if (rq->check && (e = rq->check(rq->check_ctx, rs, &retry)) != 0) {
                snap_fail_ctx(e, "%s: HTTP %d", x.what, rs->status);
            } else if (rs->status < 200 || rs->status > 299) {
                e = status_error(&x);
                retry = retryable_status(rs->status);
                after = http_retry_after_ms(http_head_get(&rs->head, "Retry-After"), time(NULL));
            } else {
                break;
            }
        } else {
            snap_fail_ctx(e, "%s", x.what);
            /* EPROTO here is a head that contradicts itself (a 206 whose Content-Length is not
             * its Content-Range): a glitch of some proxy as often as not, worth one more try
             * of an idempotent request; a server that always lies still fails. */
            retry = e == SNAP_ENET || e == SNAP_ETIMEOUT || e == SNAP_ESHORT || e == SNAP_EPROTO;
        }
        if (x.no_retry)
            retry = false;
        /* Partial delivery: a range resumes; anything else that reached the caller cannot. */
        if (rs->bytes && !rq->range && (rq->sink == HTTP_SINK_BUFFER || rq->sink == HTTP_SINK_CALLBACK))
            retry = false;
        if (!retry || !may_retry || rs->attempts >= pol->max_attempts)
            break;
        uint64_t delay = http_backoff_ms(pol, rs->attempts, after);
        if (x.deadline && snap_now_ns() + delay * 1000000 >= x.deadline)
            break;
        snap_debug("%s; retry %u in %" PRIu64 " ms", snap_errmsg(e), rs->attempts, delay);
        sleep_ms(delay);
        atomic_fetch_add(&c->n_retries, 1);
        if (rq->range) {
            x.off = rq->range_off + rs->bytes;
            x.len = rq->range_len - rs->bytes;
        } else {
            rs->bytes = 0;
        }
        rs->body.len = 0;
    }
    url_free(&redirected);
    if (e && rs->attempts > 1) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", snap_errmsg(e));
        snap_fail(e, "%s (after %u attempts)", msg, rs->attempts);
    }
    return e;
}

int http_get_range(struct http_client *c, const struct url *url, const char *target, const struct http_hdrs *h,
                   uint64_t off, uint64_t len, void *dst, http_progress_fn progress, void *ctx,
                   struct http_response *rs)
{
    struct http_request rq = {
        .method = "GET", .url = url, .target = target, .headers = h,
        .range = true, .range_off = off, .range_len = len,
        .sink = HTTP_SINK_BUFFER, .dst = dst, .dst_len = len, .progress = progress, .progress_ctx = ctx,
    };
    return http_do(c, &rq, rs);
}
