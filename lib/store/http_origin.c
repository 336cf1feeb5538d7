/* http_origin.c -- the http:// and https:// backend: read-only, ranged GETs on a pooled client.
 *
 * Keys are appended to the base URL's path, each segment percent-encoded once.  A ranged read
 * learns the object's size from Content-Range, so nothing asks for the size separately; the
 * client retries and resumes a broken range itself, asking only for the rest.
 */
#include "store/store.h"

#include "base/err.h"
#include "base/mem.h"
#include "net/http.h"
#include "net/url.h"

#include <stdio.h>
#include <string.h>

#define HTTP_TARGET_MAX 4096

struct http_store {
    struct store base;
    struct url url;
    struct http_client *client;
};

static int hs_open(const char *u, const struct store_opts *o, struct store **out)
{
    struct http_store *hs = snap_calloc(1, sizeof *hs);
    if (!hs)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    int err = url_parse(u, &hs->url);
    if (err) {
        snap_free(hs);
        return err;
    }
    struct http_opts ho;
    store_http_opts(o, &ho);
    if ((err = http_client_new(&ho, &hs->client)) != 0 || !(hs->base.url = snap_strdup(u))) {
        if (!err)
            err = snap_fail(SNAP_ENOMEM, "out of memory");
        http_client_free(hs->client);
        url_free(&hs->url);
        snap_free(hs);
        return err;
    }
    hs->base.ops = u[4] == 's' ? &store_https_ops : &store_http_ops;
    *out = &hs->base;
    return 0;
}

static void hs_close(struct store *s)
{
    struct http_store *hs = (struct http_store *)s;
    http_client_free(hs->client);
    url_free(&hs->url);
    snap_free(hs->base.url);
    snap_free(hs);
}

/* base path + "/" + key, percent-encoded with '/' kept. */
static int hs_target(struct http_store *hs, const char *key, char *out, size_t cap)
{
    size_t n = strlen(hs->url.path);
    while (n > 0 && hs->url.path[n - 1] == '/')
        n--;
    if (n + 2 >= cap)
        return snap_fail(SNAP_EUSAGE, "%s: URL too long", hs->base.url);
    memcpy(out, hs->url.path, n);
    out[n++] = '/';
    size_t enc;
    int err = url_encode(key, strlen(key), "/", out + n, cap - n, &enc);
    if (err)
        return snap_fail_ctx(err, "%s/%s", hs->base.url, key);
    out[n + enc] = '\0';
    return 0;
}

/* A failed exchange, in the store's terms: 404 is "not found", 401/403 "permission denied". */
static int hs_error(struct http_store *hs, const char *key, const struct http_response *rs, int err)
{
    if (rs->status == 404 || rs->status == 410)
        return snap_fail(SNAP_ENOTFOUND, "%s/%s: not found (HTTP %d)", hs->base.url, key, rs->status);
    if (rs->status == 401 || rs->status == 403)
        return snap_fail(SNAP_EAUTH, "%s/%s: access denied (HTTP %d)", hs->base.url, key, rs->status);
    return err;
}

static int hs_stat(struct store *s, const char *key, struct store_info *info)
{
    struct http_store *hs = (struct http_store *)s;
    char target[HTTP_TARGET_MAX];
    int err = hs_target(hs, key, target, sizeof target);
    if (err)
        return err;
    struct http_response rs;
    http_response_init(&rs);
    struct http_request rq = {.method = "HEAD", .url = &hs->url, .target = target, .sink = HTTP_SINK_DISCARD};
    err = http_do(hs->client, &rq, &rs);
    if (err) {
        err = hs_error(hs, key, &rs, err);
    } else if (rs.total_size == HTTP_SIZE_UNKNOWN) {
        err = snap_fail(SNAP_EPROTO, "%s/%s: the server did not say the size", s->url, key);
    } else {
        info->size = rs.total_size;
        const char *etag = http_head_get(&rs.head, "ETag");
        if (etag)
            snprintf(info->etag, sizeof info->etag, "%s", etag);
    }
    http_response_free(&rs);
    return err;
}

static int hs_read(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
                   store_progress_fn progress, void *ctx, struct store_read_result *res)
{
    struct http_store *hs = (struct http_store *)s;
    char target[HTTP_TARGET_MAX];
    int err = hs_target(hs, key, target, sizeof target);
    if (err || len == 0)
        return err;
    struct http_response rs;
    http_response_init(&rs);
    err = http_get_range(hs->client, &hs->url, target, NULL, off, len, dst, progress, ctx, &rs);
    res->bytes = rs.bytes;
    if (rs.total_size != HTTP_SIZE_UNKNOWN)
        res->total_size = rs.total_size;
    if (err && rs.status == 416 && rs.total_size == off)
        err = 0; /* reading at exactly the end: zero bytes, like a file */
    else if (err)
        err = hs_error(hs, key, &rs, err);
    http_response_free(&rs);
    return err;
}

static int hs_read_stream(struct store *s, const char *key, uint64_t off, uint64_t len, store_sink_fn sink,
                          void *ctx, struct store_read_result *res)
{
    struct http_store *hs = (struct http_store *)s;
    char target[HTTP_TARGET_MAX];
    int err = hs_target(hs, key, target, sizeof target);
    if (err)
        return err;
    size_t rcap;
    uint8_t *rbuf = store_stream_recv_buf(len, &rcap);
    struct http_response rs;
    http_response_init(&rs);
    struct store_sink_guard k = {sink, ctx, 0, "", res, &rs.total_size};
    struct http_request rq = {
        .method = "GET", .url = &hs->url, .target = target, .range = true, .range_off = off,
        .range_len = len == STORE_SIZE_UNKNOWN ? UINT64_MAX - off : len, .sink = HTTP_SINK_CALLBACK,
        .data_fn = store_sink_guard_fn, .data_ctx = &k,
        .recv_buf = rbuf, .recv_buf_len = rcap,
    };
    err = http_do(hs->client, &rq, &rs);
    res->bytes = rs.bytes;
    if (rs.total_size != HTTP_SIZE_UNKNOWN)
        res->total_size = rs.total_size;
    if (err && k.err)
        err = store_sink_guard_result(&k, err);
    else if (err && rs.status == 416 && rs.total_size == off)
        err = 0;
    else if (err)
        err = hs_error(hs, key, &rs, err);
    store_stream_recv_release(rbuf);
    http_response_free(&rs);
    return err;
}

const struct store_ops store_http_ops = {
    .scheme = "http", .open = hs_open, .close = hs_close, .stat = hs_stat, .read = hs_read,
    .read_stream = hs_read_stream,
};
const struct store_ops store_https_ops = {
    .scheme = "https", .open = hs_open, .close = hs_close, .stat = hs_stat, .read = hs_read,
    .read_stream = hs_read_stream,
};
