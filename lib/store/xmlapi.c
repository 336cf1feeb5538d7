/* xmlapi.c -- the S3 / GCS XML API engine: object paths, requests, <Error> documents, ranged
 * reads, puts and the multipart calls, for the s3:// and gs:// backends (see xmlapi.h).
 *
 * Each request's query is built once by sigv4's canonical encoder and sent exactly as it would
 * be signed; authentication is added by the HTTP client's per-attempt hook, so a retry is signed
 * afresh (a new x-amz-date, or the current bearer token).  Bodies are UNSIGNED-PAYLOAD (parts go
 * straight from the caller's memory, hashed by nobody twice).  A 401 is shown to the backend,
 * which may refresh its token; the request is then repeated once.
 */
#include "store/xmlapi.h"

#include "base/err.h"
#include "base/mem.h"
#include "base/util.h"
#include "codec/xml.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define POOL_MAX 64 /* warm responses kept: one per concurrent reader or part upload */

struct xapi_resp {
    struct http_response rs;
    struct xapi_resp *next;
};

int xapi_parse_url(struct xapi *x, const char *u, const char *scheme)
{
    pthread_mutex_init(&x->pool_mu, NULL);
    size_t sl = strlen(scheme);
    const char *rest = u + sl + 3;
    const char *slash = strchr(rest, '/');
    size_t blen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (blen < 3 || blen > 222)
        return snap_fail(SNAP_EUSAGE, "%s: expected %s://BUCKET[/PREFIX] with a bucket of 3 to 222 characters", u,
                         scheme);
    memcpy(x->bucket, rest, blen);
    x->bucket[blen] = '\0';
    if (slash && strlen(slash + 1) >= sizeof x->prefix)
        return snap_fail(SNAP_EUSAGE, "%s: prefix too long", u);
    snprintf(x->prefix, sizeof x->prefix, "%s", slash ? slash + 1 : "");
    size_t pl = strlen(x->prefix);
    while (pl > 0 && x->prefix[pl - 1] == '/')
        x->prefix[--pl] = '\0';
    if (!(x->base.url = snap_strdup(u)))
        return snap_fail(SNAP_ENOMEM, "out of memory");
    return 0;
}

int xapi_connect(struct xapi *x, const char *endpoint, const struct store_opts *o)
{
    int err = url_parse(endpoint, &x->endpoint);
    if (err)
        return snap_fail_ctx(err, "%s: endpoint '%s'", x->base.url, endpoint);
    struct http_opts ho;
    store_http_opts(o, &ho);
    return http_client_new(&ho, &x->client);
}

void xapi_fini(struct xapi *x)
{
    for (struct xapi_resp *r = x->pool, *next; r; r = next) {
        next = r->next;
        http_response_free(&r->rs);
        snap_free(r);
    }
    x->pool = NULL;
    pthread_mutex_destroy(&x->pool_mu);
    http_client_free(x->client);
    x->client = NULL;
    url_free(&x->endpoint);
    snap_free(x->base.url);
    x->base.url = NULL;
}

/* A response from the pool (or a new one); NULL when out of memory. */
static struct xapi_resp *resp_take(struct xapi *x)
{
    pthread_mutex_lock(&x->pool_mu);
    struct xapi_resp *r = x->pool;
    if (r) {
        x->pool = r->next;
        x->pooled--;
    }
    pthread_mutex_unlock(&x->pool_mu);
    if (!r && (r = snap_malloc(sizeof *r)) != NULL)
        http_response_init(&r->rs);
    return r;
}

static void resp_give(struct xapi *x, struct xapi_resp *r)
{
    pthread_mutex_lock(&x->pool_mu);
    if (x->pooled < POOL_MAX) {
        r->next = x->pool;
        x->pool = r;
        x->pooled++;
        r = NULL;
    }
    pthread_mutex_unlock(&x->pool_mu);
    if (r) {
        http_response_free(&r->rs);
        snap_free(r);
    }
}

/* Build path and target for key with the given query pairs (raw; NULL value = flag). */
static int req_init(struct xapi *x, struct xapi_req *r, const char *key, const struct sigv4_kv *q, size_t nq)
{
    char raw[XAPI_TARGET_MAX];
    int n = snprintf(raw, sizeof raw, "%s%s%s%s%s", x->path_style ? "/" : "", x->path_style ? x->bucket : "",
                     "/", x->prefix, x->prefix[0] ? "/" : "");
    if (n < 0 || (size_t)n + strlen(key) >= sizeof raw)
        return snap_fail(SNAP_EUSAGE, "%s/%s: key too long", x->base.url, key);
    strcat(raw, key);
    memset(r, 0, sizeof *r);
    r->x = x;
    size_t plen, qlen = 0;
    int err = sigv4_uri_encode(raw, strlen(raw), true, r->path, sizeof r->path, &plen);
    if (err)
        return err;
    if (nq)
        memcpy(r->q, q, nq * sizeof *q);
    r->nq = nq;
    memcpy(r->target, r->path, plen);
    if (nq) {
        r->target[plen] = '?';
        err = sigv4_canonical_query(q, nq, r->target + plen + 1, sizeof r->target - plen - 1, &qlen);
        if (err)
            return err;
        r->target[plen + 1 + qlen] = '\0';
    } else {
        r->target[plen] = '\0';
    }
    r->payload_hash = SIGV4_UNSIGNED_PAYLOAD;
    return 0;
}

int xapi_sign_sigv4(struct xapi_req *r, const char *method, const struct url *url, struct http_hdrs *h,
                    const char *ak, const char *sk, const char *token, const char *region)
{
    char host[300];
    int err = url_authority(url, host, sizeof host);
    if (err)
        return err;
    /* Host and every x-amz-* / x-goog-* field the request carries (unsigned ones are refused). */
    struct sigv4_kv hv[12];
    size_t nh = 0;
    hv[nh++] = (struct sigv4_kv){"host", host};
    for (unsigned i = 0; i < h->n; i++) {
        const char *name = http_hdrs_name(h, i);
        if (strncasecmp(name, "x-amz-", 6) != 0 && strncasecmp(name, "x-goog-", 7) != 0)
            continue;
        if (nh == sizeof hv / sizeof hv[0])
            return snap_fail(SNAP_ETOOBIG, "%s: more than %zu x-amz-/x-goog- fields to sign", r->x->base.url,
                             sizeof hv / sizeof hv[0] - 1);
        hv[nh++] = (struct sigv4_kv){name, http_hdrs_value(h, i)};
    }
    struct sigv4_request sr = {
        .method = method, .path = r->path, .path_encoded = true, .query = r->q, .nquery = r->nq,
        .headers = hv, .nheaders = nh, .payload_hash = r->payload_hash, .access_key = ak,
        .secret_key = sk, .session_token = token, .region = region, .service = "s3",
        .time = time(NULL),
    };
    struct sigv4_out so;
    if ((err = sigv4_sign(&sr, &so)) != 0)
        return err;
    for (size_t i = 0; i < so.nadd; i++)
        if ((err = http_hdrs_set(h, so.add[i].name, so.add[i].value)) != 0)
            return err;
    return http_hdrs_set(h, "Authorization", so.authorization);
}

static int req_sign(void *ctx, const char *method, const struct url *url, const char *target, struct http_hdrs *h)
{
    (void)target;
    struct xapi_req *r = ctx;
    return r->x->auth->sign(r->x, r, method, url, h);
}

/* The <Code> of an error document, or "". */
static void error_code(const struct http_response *rs, char *code, size_t n)
{
    code[0] = '\0';
    struct xml_doc *doc;
    if (rs->body.data && rs->body.len && xml_parse(rs->body.data, rs->body.len, &doc) == 0) {
        if (xml_is(xml_root(doc), "Error"))
            xml_copy_text(xml_root(doc), "Code", code, n);
        xml_free(doc);
    }
}

/* An <Error> document in a 200 is the "failed while streaming" answer of a complete, worth a
 * retry if its code says so. */
static int req_check(void *ctx, const struct http_response *rs, bool *retry)
{
    struct xapi *x = ctx;
    if (rs->status != 200 || !rs->body.data || rs->body.len == 0)
        return 0;
    const char *p = (const char *)rs->body.data;
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    if (!strstr(p, "<Error>"))
        return 0;
    char code[128];
    error_code(rs, code, sizeof code);
    *retry = !strcmp(code, "InternalError") || !strcmp(code, "SlowDown") || !strcmp(code, "RequestTimeout") ||
             !strcmp(code, "ServiceUnavailable");
    return snap_fail(SNAP_EHTTP, "%s answered 200 with an error: %s", x->service, code[0] ? code : "(no code)");
}

/* A failed exchange, in the store's terms, naming the service's error code when there is one. */
static int req_error(struct xapi *x, const char *key, const char *what, const struct http_response *rs, int err)
{
    char code[128];
    error_code(rs, code, sizeof code);
    if (rs->status == 404)
        return snap_fail(SNAP_ENOTFOUND, "%s/%s: %s: not found%s%s", x->base.url, key, what, code[0] ? ": " : "", code);
    if (rs->status == 403 || rs->status == 401)
        return snap_fail(SNAP_EAUTH, "%s/%s: %s: access denied (HTTP %d%s%s); %s", x->base.url, key, what, rs->status,
                         code[0] ? " " : "", code, x->auth->hint);
    if (code[0] && rs->status != 200) {
        char cause[600];
        snprintf(cause, sizeof cause, "%s", snap_errmsg(err)); /* the URL, the status, the attempts */
        return snap_fail(err ? err : SNAP_EHTTP, "%s/%s: %s: %s %s: %s", x->base.url, key, what, x->service, code,
                         cause);
    }
    return snap_fail_ctx(err, "%s/%s: %s", x->base.url, key, what);
}

/* A refusal that fresh credentials may cure: 401 (GCS: an expired bearer token), S3's
 * ExpiredToken (400 or 403), or a 400/403 without a body to tell (HEAD). */
static bool credential_expired(const struct http_response *rs)
{
    if (rs->status == 401)
        return true;
    if (rs->status != 400 && rs->status != 403)
        return false;
    char code[128];
    error_code(rs, code, sizeof code);
    return (!rs->body.len) || !strcmp(code, "ExpiredToken") || !strcmp(code, "ExpiredTokenException") ||
           !strcmp(code, "TokenRefreshRequired");
}

static int req_do(struct xapi *x, struct xapi_req *r, struct http_request *rq, struct http_response *rs,
                  const char *key, const char *what)
{
    rq->url = &x->endpoint;
    rq->target = r->target;
    rq->sign = req_sign;
    rq->sign_ctx = r;
    rq->check = req_check;
    rq->check_ctx = x;
    int err = http_do(x->client, rq, rs);
    if (err && rs->bytes == 0 && credential_expired(rs) && x->auth->refused && x->auth->refused(x, r) == 0)
        err = http_do(x->client, rq, rs);
    return err ? req_error(x, key, what, rs, err) : 0;
}

int xapi_stat(struct store *s, const char *key, struct store_info *info)
{
    struct xapi *x = (struct xapi *)s;
    struct xapi_req r;
    int err = req_init(x, &r, key, NULL, 0);
    if (err)
        return err;
    struct xapi_resp *p = resp_take(x);
    if (!p)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    struct http_response *rs = &p->rs;
    struct http_request rq = {.method = "HEAD", .sink = HTTP_SINK_DISCARD};
    err = req_do(x, &r, &rq, rs, key, "HEAD");
    if (!err) {
        info->size = rs->total_size;
        const char *etag = http_head_get(&rs->head, "ETag"), *sum = http_head_get(&rs->head, x->meta_sha256);
        if (etag)
            snprintf(info->etag, sizeof info->etag, "%s", etag);
        if (sum && strlen(sum) == 64 && snap_unhex(sum, info->sha256, 32) == 0)
            info->has_sha256 = true;
        const char *us = http_head_get(&rs->head, x->meta_usize);
        uint64_t v;
        if (us && snap_parse_u64(us, &v, "uncompressed-size") == 0)
            info->uncompressed_size = v;
        if (rs->total_size == HTTP_SIZE_UNKNOWN)
            err = snap_fail(SNAP_EPROTO, "%s/%s: HEAD: no Content-Length in the answer", s->url, key);
    }
    resp_give(x, p);
    return err;
}

int xapi_read(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst, store_progress_fn progress,
              void *ctx, struct store_read_result *res)
{
    struct xapi *x = (struct xapi *)s;
    struct xapi_req r;
    int err = req_init(x, &r, key, NULL, 0);
    if (err || len == 0)
        return err;
    struct xapi_resp *p = resp_take(x);
    if (!p)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    struct http_response *rs = &p->rs;
    struct http_request rq = {.method = "GET", .range = true, .range_off = off, .range_len = len,
                              .sink = HTTP_SINK_BUFFER, .dst = dst, .dst_len = len,
                              .progress = progress, .progress_ctx = ctx};
    err = req_do(x, &r, &rq, rs, key, "GET");
    res->bytes = rs->bytes;
    if (rs->total_size != HTTP_SIZE_UNKNOWN)
        res->total_size = rs->total_size;
    if (err && rs->status == 416 && rs->total_size == off)
        err = 0;
    resp_give(x, p);
    return err;
}

int xapi_read_stream(struct store *s, const char *key, uint64_t off, uint64_t len, store_sink_fn sink, void *ctx,
                     struct store_read_result *res)
{
    struct xapi *x = (struct xapi *)s;
    struct xapi_req r;
    int err = req_init(x, &r, key, NULL, 0);
    if (err)
        return err;
    struct xapi_resp *p = resp_take(x);
    if (!p)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    struct http_response *rs = &p->rs;
    struct store_sink_guard k = {sink, ctx, 0, "", res, &rs->total_size};
    size_t rcap;
    uint8_t *rbuf = store_stream_recv_buf(len, &rcap);
    struct http_request rq = {.method = "GET", .range = true, .range_off = off,
                              .range_len = len == STORE_SIZE_UNKNOWN ? UINT64_MAX - off : len,
                              .sink = HTTP_SINK_CALLBACK, .data_fn = store_sink_guard_fn, .data_ctx = &k,
                              .recv_buf = rbuf, .recv_buf_len = rcap};
    err = req_do(x, &r, &rq, rs, key, "GET");
    res->bytes = rs->bytes;
    if (rs->total_size != HTTP_SIZE_UNKNOWN)
        res->total_size = rs->total_size;
    if (err && k.err)
        err = store_sink_guard_result(&k, err);
    else if (err && rs->status == 416 && rs->total_size == off)
        err = 0;
    store_stream_recv_release(rbuf);
    resp_give(x, p);
    return err;
}

/* The sha256 and uncompressed-size metadata and Content-Type fields of a put or a multipart
 * create (the list copies the values). */
static void put_headers(struct xapi *x, struct http_hdrs *h, const struct store_put_opts *po, char hex[65])
{
    http_hdrs_init(h);
    if (po->sha256) {
        snap_hex(po->sha256, 32, hex);
        http_hdrs_add(h, x->meta_sha256, hex);
    }
    if (po->uncompressed_size) {
        char num[24];
        snprintf(num, sizeof num, "%llu", (unsigned long long)po->uncompressed_size);
        http_hdrs_add(h, x->meta_usize, num);
    }
    if (po->content_type)
        http_hdrs_add(h, "Content-Type", po->content_type);
}

int xapi_put(struct store *s, const char *key, const void *buf, size_t len, const struct store_put_opts *po)
{
    struct xapi *x = (struct xapi *)s;
    struct xapi_req r;
    int err = req_init(x, &r, key, NULL, 0);
    if (err)
        return err;
    struct http_hdrs h;
    char hex[65];
    put_headers(x, &h, po, hex);
    struct http_response rs;
    http_response_init(&rs);
    struct http_request rq = {.method = "PUT", .headers = &h, .body = buf, .body_len = len,
                              .sink = HTTP_SINK_COLLECT, .retry = HTTP_RETRY_YES};
    err = req_do(x, &r, &rq, &rs, key, "PUT");
    http_response_free(&rs);
    return err;
}

int xapi_mp_create(struct store *s, const char *key, const struct store_put_opts *po, char **upload_id)
{
    struct xapi *x = (struct xapi *)s;
    struct sigv4_kv q[] = {{"uploads", NULL}};
    struct xapi_req r;
    int err = req_init(x, &r, key, q, 1);
    if (err)
        return err;
    struct http_hdrs h;
    char hex[65];
    put_headers(x, &h, po, hex);
    struct http_response rs;
    http_response_init(&rs);
    struct http_request rq = {.method = "POST", .headers = &h, .body = "", .body_len = 0,
                              .sink = HTTP_SINK_COLLECT, .retry = HTTP_RETRY_YES};
    err = req_do(x, &r, &rq, &rs, key, "create multipart upload");
    struct xml_doc *doc = NULL;
    char id[1024];
    if (!err && (err = xml_parse(rs.body.data, rs.body.len, &doc)) == 0 &&
        (err = xml_copy_text(xml_root(doc), "UploadId", id, sizeof id)) == 0 &&
        !(*upload_id = snap_strdup(id)))
        err = snap_fail(SNAP_ENOMEM, "out of memory");
    if (err && !snap_errmsg(err)[0])
        snap_fail(err, "%s/%s: no UploadId in the answer", s->url, key);
    xml_free(doc);
    http_response_free(&rs);
    return err;
}

int xapi_mp_part(struct store *s, const char *key, const char *upload_id, uint32_t number, const void *buf,
                 size_t len, store_sent_fn sent, void *sent_ctx, char etag[STORE_ETAG_MAX])
{
    struct xapi *x = (struct xapi *)s;
    char num[16];
    snprintf(num, sizeof num, "%u", number);
    struct sigv4_kv q[] = {{"partNumber", num}, {"uploadId", upload_id}};
    struct xapi_req r;
    int err = req_init(x, &r, key, q, 2);
    if (err)
        return err;
    struct xapi_resp *p = resp_take(x);
    if (!p)
        return snap_fail(SNAP_ENOMEM, "%s/%s: part %u: out of memory", s->url, key, number);
    struct http_request rq = {.method = "PUT", .body = buf, .body_len = len, .sent = sent, .sent_ctx = sent_ctx,
                              .sink = HTTP_SINK_COLLECT, .retry = HTTP_RETRY_YES};
    err = req_do(x, &r, &rq, &p->rs, key, "upload part");
    const char *e = err ? NULL : http_head_get(&p->rs.head, "ETag");
    if (!err && !e)
        err = snap_fail(SNAP_EPROTO, "%s/%s: part %u: no ETag in the answer", s->url, key, number);
    if (!err)
        snprintf(etag, STORE_ETAG_MAX, "%s", e);
    resp_give(x, p);
    return err;
}

int xapi_mp_complete(struct store *s, const char *key, const char *upload_id, const struct store_part *parts,
                     size_t nparts, char etag[STORE_ETAG_MAX])
{
    struct xapi *x = (struct xapi *)s;
    struct sigv4_kv q[] = {{"uploadId", upload_id}};
    struct xapi_req r;
    int err = req_init(x, &r, key, q, 1);
    if (err)
        return err;
    /* <CompleteMultipartUpload><Part><PartNumber>N</PartNumber><ETag>"x"</ETag></Part>... */
    size_t cap = 64 + nparts * (64 + STORE_ETAG_MAX), n = 0;
    char *body = snap_malloc(cap);
    if (!body)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    n += (size_t)snprintf(body + n, cap - n, "<CompleteMultipartUpload>");
    for (size_t i = 0; i < nparts; i++)
        n += (size_t)snprintf(body + n, cap - n, "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>",
                              parts[i].number, parts[i].etag);
    n += (size_t)snprintf(body + n, cap - n, "</CompleteMultipartUpload>");
    struct http_response rs;
    http_response_init(&rs);
    struct http_request rq = {.method = "POST", .body = body, .body_len = n, .sink = HTTP_SINK_COLLECT,
                              .retry = HTTP_RETRY_YES};
    err = req_do(x, &r, &rq, &rs, key, "complete multipart upload");
    etag[0] = '\0';
    if (!err) {
        struct xml_doc *doc;
        if (xml_parse(rs.body.data, rs.body.len, &doc) == 0) {
            xml_copy_text(xml_root(doc), "ETag", etag, STORE_ETAG_MAX); /* RGW may leave it empty */
            xml_free(doc);
        }
    }
    snap_free(body);
    http_response_free(&rs);
    return err;
}

int xapi_mp_abort(struct store *s, const char *key, const char *upload_id)
{
    struct xapi *x = (struct xapi *)s;
    struct sigv4_kv q[] = {{"uploadId", upload_id}};
    struct xapi_req r;
    int err = req_init(x, &r, key, q, 1);
    if (err)
        return err;
    struct http_response rs;
    http_response_init(&rs);
    struct http_request rq = {.method = "DELETE", .sink = HTTP_SINK_COLLECT};
    err = req_do(x, &r, &rq, &rs, key, "abort multipart upload");
    http_response_free(&rs);
    return err;
}

/* The copy source naming the object itself: /bucket/prefix/key, encoded as a path. */
static int copy_source(struct xapi *x, const char *key, char *out, size_t n)
{
    char raw[XAPI_TARGET_MAX];
    size_t l;
    int w = snprintf(raw, sizeof raw, "/%s/%s%s%s", x->bucket, x->prefix, x->prefix[0] ? "/" : "", key);
    if (w < 0 || (size_t)w >= sizeof raw)
        return snap_fail(SNAP_EUSAGE, "%s/%s: key too long", x->base.url, key);
    return sigv4_uri_encode(raw, (size_t)w, true, out, n, &l);
}

/* One copy request onto key (a whole-object copy, or a part copy with its query); the <ETag> of
 * the answer goes to etag when asked for. */
static int copy_req(struct xapi *x, const char *key, const struct sigv4_kv *q, size_t nq, struct http_hdrs *h,
                    char *etag, const char *what)
{
    struct xapi_req r;
    int err = req_init(x, &r, key, q, nq);
    if (err)
        return err;
    struct http_response rs;
    http_response_init(&rs);
    struct http_request rq = {.method = "PUT", .headers = h, .body = "", .body_len = 0,
                              .sink = HTTP_SINK_COLLECT, .retry = HTTP_RETRY_YES};
    err = req_do(x, &r, &rq, &rs, key, what);
    if (!err && etag) {
        struct xml_doc *doc;
        etag[0] = '\0';
        if (xml_parse(rs.body.data, rs.body.len, &doc) == 0) {
            xml_copy_text(xml_root(doc), "ETag", etag, STORE_ETAG_MAX);
            xml_free(doc);
        }
        if (!etag[0])
            err = snap_fail(SNAP_EPROTO, "%s/%s: %s: no ETag in the answer", x->base.url, key, what);
    }
    http_response_free(&rs);
    return err;
}

int xapi_set_meta(struct store *s, const char *key, uint64_t size, const struct store_put_opts *po)
{
    struct xapi *x = (struct xapi *)s;
    char src[XAPI_TARGET_MAX], hex[65];
    int err = copy_source(x, key, src, sizeof src);
    if (err)
        return err;
    struct http_hdrs h;
    if (!x->copy_max || size <= x->copy_max) {
        put_headers(x, &h, po, hex);
        if ((err = http_hdrs_add(&h, x->copy_source_hdr, src)) == 0 &&
            (err = http_hdrs_add(&h, x->directive_hdr, "REPLACE")) == 0)
            err = copy_req(x, key, NULL, 0, &h, NULL, "replace metadata (copy onto itself)");
        return err;
    }
    size_t nparts = (size_t)((size + x->copy_max - 1) / x->copy_max);
    if (nparts > 10000)
        return snap_fail(SNAP_ETOOBIG, "%s/%s: %llu bytes need more than 10000 copy parts", s->url, key,
                         (unsigned long long)size);
    struct store_part *parts = snap_calloc(nparts, sizeof *parts);
    if (!parts)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    char *id = NULL;
    err = xapi_mp_create(s, key, po, &id);
    for (size_t i = 0; !err && i < nparts; i++) {
        uint64_t a = i * x->copy_max, b = snap_min_u64(size, a + x->copy_max) - 1;
        char num[16], range[64];
        snprintf(num, sizeof num, "%zu", i + 1);
        snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)a, (unsigned long long)b);
        struct sigv4_kv q[] = {{"partNumber", num}, {"uploadId", id}};
        parts[i].number = (uint32_t)(i + 1);
        http_hdrs_init(&h);
        if ((err = http_hdrs_add(&h, x->copy_source_hdr, src)) == 0 &&
            (err = http_hdrs_add(&h, "x-amz-copy-source-range", range)) == 0)
            err = copy_req(x, key, q, 2, &h, parts[i].etag, "replace metadata (multipart copy)");
    }
    char etag[STORE_ETAG_MAX];
    if (!err)
        err = xapi_mp_complete(s, key, id, parts, nparts, etag);
    if (err && id) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", snap_errmsg(err));
        xapi_mp_abort(s, key, id);
        snap_fail(err, "%s", msg);
    }
    snap_free(id);
    snap_free(parts);
    return err;
}
