/* s3.c -- the s3:// backend: S3 and S3-compatible stores (Ceph RGW, MinIO) with SigV4.
 *
 * s3://bucket/prefix.  Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN, else the [AWS_PROFILE or default] section of ~/.aws/credentials
 * (AWS_SHARED_CREDENTIALS_FILE overrides the path).  Region: AWS_REGION, AWS_DEFAULT_REGION,
 * us-east-1.  Endpoint: AWS_ENDPOINT_URL (path-style, for RGW and MinIO), else AWS's
 * virtual-hosted https://bucket.s3.region.amazonaws.com.
 *
 * Each request's query is built once by sigv4's canonical encoder and sent exactly as signed;
 * the signature is made by the HTTP client's per-attempt hook, so a retry is signed afresh.
 * Bodies are UNSIGNED-PAYLOAD (parts go straight from the caller's memory, hashed by nobody
 * twice); S3 answers an error as an <Error> document, even inside a 200 for a complete.
 */
#include "store/store.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "base/util.h"
#include "crypto/sha256.h"
#include "crypto/sigv4.h"
#include "net/http.h"
#include "net/url.h"
#include "store/xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S3_TARGET_MAX 4096

struct s3_store {
    struct store base;
    struct url endpoint;      /* scheme://host[:port] */
    bool path_style;
    char bucket[256], prefix[1024];
    char ak[256], sk[256], token[2048], region[64];
    struct http_client *client;
};

/* One request's signing context: the raw query pairs the target was built from. */
struct s3_req {
    struct s3_store *s3;
    char path[S3_TARGET_MAX];        /* encoded */
    struct sigv4_kv q[3];
    size_t nq;
    char target[S3_TARGET_MAX];
    const char *payload_hash;
};

/* Copy a NUL-terminated string into dst[n]; one that does not fit is left out ("" instead). */
static void copy_str(char *dst, size_t n, const char *src)
{
    size_t l = strlen(src);
    if (l >= n)
        l = 0;
    memcpy(dst, src, l);
    dst[l] = '\0';
}

static void env_copy(char *dst, size_t n, const char *a, const char *b, const char *def)
{
    const char *v = getenv(a);
    if ((!v || !*v) && b)
        v = getenv(b);
    snprintf(dst, n, "%s", v && *v ? v : def);
}

/* The [profile] section of the shared credentials file, if the environment has no keys. */
static void s3_load_credentials_file(struct s3_store *s3)
{
    char path[1024];
    const char *f = getenv("AWS_SHARED_CREDENTIALS_FILE"), *home = getenv("HOME");
    if (f && *f)
        snprintf(path, sizeof path, "%s", f);
    else
        snprintf(path, sizeof path, "%s/.aws/credentials", home ? home : "/");
    const char *profile = getenv("AWS_PROFILE");
    if (!profile || !*profile)
        profile = "default";
    uint8_t *buf;
    size_t len;
    if (snap_read_file(path, 1 << 20, &buf, &len))
        return;
    char *text = snap_strndup((const char *)buf, len); /* NUL-terminated for the scan */
    snap_free(buf);
    if (!text)
        return;
    bool in = false;
    char *save;
    char *line = strtok_r(text, "\n", &save);
    for (; line; line = strtok_r(NULL, "\n", &save)) {
        while (*line == ' ' || *line == '\t')
            line++;
        if (*line == '[') {
            char name[256];
            in = sscanf(line, "[%255[^]]]", name) == 1 && strcmp(name, profile) == 0;
            continue;
        }
        char k[64], v[2048];
        if (!in || sscanf(line, "%63[^= \t] = %2047[^\r]", k, v) != 2)
            continue;
        if (!strcmp(k, "aws_access_key_id"))
            copy_str(s3->ak, sizeof s3->ak, v);
        else if (!strcmp(k, "aws_secret_access_key"))
            copy_str(s3->sk, sizeof s3->sk, v);
        else if (!strcmp(k, "aws_session_token"))
            copy_str(s3->token, sizeof s3->token, v);
    }
    snap_free(text);
}

static int s3_open(const char *u, const struct store_opts *o, struct store **out)
{
    struct s3_store *s3 = snap_calloc(1, sizeof *s3);
    if (!s3)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    const char *rest = u + strlen("s3://");
    const char *slash = strchr(rest, '/');
    size_t blen = slash ? (size_t)(slash - rest) : strlen(rest);
    int err = 0;
    if (blen < 3 || blen >= sizeof s3->bucket)
        err = snap_fail(SNAP_EUSAGE, "%s: expected s3://BUCKET[/PREFIX] with a bucket of 3 to 63 characters", u);
    if (!err) {
        memcpy(s3->bucket, rest, blen);
        snprintf(s3->prefix, sizeof s3->prefix, "%s", slash ? slash + 1 : "");
        size_t pl = strlen(s3->prefix);
        while (pl > 0 && s3->prefix[pl - 1] == '/')
            s3->prefix[--pl] = '\0';
        env_copy(s3->ak, sizeof s3->ak, "AWS_ACCESS_KEY_ID", NULL, "");
        env_copy(s3->sk, sizeof s3->sk, "AWS_SECRET_ACCESS_KEY", NULL, "");
        env_copy(s3->token, sizeof s3->token, "AWS_SESSION_TOKEN", NULL, "");
        if (!s3->ak[0] || !s3->sk[0])
            s3_load_credentials_file(s3);
        if (!s3->ak[0] || !s3->sk[0])
            err = snap_fail(SNAP_EAUTH, "%s: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                            "or a profile in ~/.aws/credentials (AWS_PROFILE)", u);
        env_copy(s3->region, sizeof s3->region, "AWS_REGION", "AWS_DEFAULT_REGION", "us-east-1");
    }
    char ep[512];
    const char *endpoint = getenv("AWS_ENDPOINT_URL_S3");
    if (!endpoint || !*endpoint)
        endpoint = getenv("AWS_ENDPOINT_URL");
    if (!err && endpoint && *endpoint) {
        s3->path_style = true;
        snprintf(ep, sizeof ep, "%s", endpoint);
    } else if (!err) {
        snprintf(ep, sizeof ep, "https://%s.s3.%s.amazonaws.com", s3->bucket, s3->region);
    }
    if (!err)
        err = url_parse(ep, &s3->endpoint);
    struct http_opts ho = {.connect_timeout_ms = o->connect_timeout_ms, .idle_timeout_ms = o->idle_timeout_ms,
                           .ca_file = o->ca_file};
    http_retry_defaults(&ho.retry);
    if (o->max_attempts)
        ho.retry.max_attempts = o->max_attempts;
    if (!err)
        err = http_client_new(&ho, &s3->client);
    if (!err && !(s3->base.url = snap_strdup(u)))
        err = snap_fail(SNAP_ENOMEM, "out of memory");
    if (err) {
        http_client_free(s3->client);
        url_free(&s3->endpoint);
        snap_free(s3->base.url);
        snap_free(s3);
        return err;
    }
    s3->base.ops = &store_s3_ops;
    *out = &s3->base;
    return 0;
}

static void s3_close(struct store *s)
{
    struct s3_store *s3 = (struct s3_store *)s;
    http_client_free(s3->client);
    url_free(&s3->endpoint);
    snap_free(s3->base.url);
    snap_free(s3);
}

/* Build path and target for key with the given query pairs (raw; NULL value = flag). */
static int s3_req_init(struct s3_store *s3, struct s3_req *r, const char *key, const struct sigv4_kv *q, size_t nq)
{
    char raw[S3_TARGET_MAX];
    int n = snprintf(raw, sizeof raw, "%s%s%s%s%s", s3->path_style ? "/" : "", s3->path_style ? s3->bucket : "",
                     "/", s3->prefix, s3->prefix[0] ? "/" : "");
    if (n < 0 || (size_t)n + strlen(key) >= sizeof raw)
        return snap_fail(SNAP_EUSAGE, "%s/%s: key too long", s3->base.url, key);
    strcat(raw, key);
    memset(r, 0, sizeof *r);
    r->s3 = s3;
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

static int s3_sign(void *ctx, const char *method, const struct url *url, const char *target, struct http_hdrs *h)
{
    (void)target;
    struct s3_req *r = ctx;
    struct s3_store *s3 = r->s3;
    char host[300];
    int err = url_authority(url, host, sizeof host);
    if (err)
        return err;
    struct sigv4_kv hv[4];
    size_t nh = 0;
    hv[nh++] = (struct sigv4_kv){"host", host};
    const char *meta = http_hdrs_get(h, "x-amz-meta-sha256");
    if (meta)
        hv[nh++] = (struct sigv4_kv){"x-amz-meta-sha256", meta};
    struct sigv4_request sr = {
        .method = method, .path = r->path, .path_encoded = true, .query = r->q, .nquery = r->nq,
        .headers = hv, .nheaders = nh, .payload_hash = r->payload_hash, .access_key = s3->ak,
        .secret_key = s3->sk, .session_token = s3->token, .region = s3->region, .service = "s3",
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

/* An <Error> document (any status) is a failure; in a 200 it is S3's "failed while
 * streaming" answer, worth a retry if its code says so. */
static int s3_check(void *ctx, const struct http_response *rs, bool *retry)
{
    (void)ctx;
    if (rs->status != 200 || !rs->body || rs->body_len == 0)
        return 0;
    const char *p = (const char *)rs->body;
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    if (!strstr(p, "<Error>"))
        return 0;
    struct xml_doc *doc;
    char code[128] = "";
    if (xml_parse(rs->body, rs->body_len, &doc) == 0) {
        xml_copy_text(xml_root(doc), "Code", code, sizeof code);
        xml_free(doc);
    }
    *retry = !strcmp(code, "InternalError") || !strcmp(code, "SlowDown") || !strcmp(code, "RequestTimeout") ||
             !strcmp(code, "ServiceUnavailable");
    return snap_fail(SNAP_EHTTP, "S3 answered 200 with an error: %s", code[0] ? code : "(no code)");
}

/* A failed exchange, in the store's terms, naming the S3 error code when there is one. */
static int s3_error(struct s3_store *s3, const char *key, const char *what, const struct http_response *rs, int err)
{
    char code[128] = "";
    if (rs->body && rs->body_len) {
        struct xml_doc *doc;
        if (xml_parse(rs->body, rs->body_len, &doc) == 0) {
            xml_copy_text(xml_root(doc), "Code", code, sizeof code);
            xml_free(doc);
        }
    }
    if (rs->status == 404)
        return snap_fail(SNAP_ENOTFOUND, "%s/%s: %s: not found%s%s", s3->base.url, key, what, code[0] ? ": " : "", code);
    if (rs->status == 403 || rs->status == 401)
        return snap_fail(SNAP_EAUTH, "%s/%s: %s: access denied (%s); check the credentials, region and endpoint",
                         s3->base.url, key, what, code[0] ? code : "HTTP 403");
    if (code[0])
        return snap_fail(err ? err : SNAP_EHTTP, "%s/%s: %s: HTTP %d %s", s3->base.url, key, what, rs->status, code);
    return snap_fail_ctx(err, "%s/%s: %s", s3->base.url, key, what);
}

static int s3_do(struct s3_store *s3, struct s3_req *r, struct http_request *rq, struct http_response *rs,
                 const char *key, const char *what)
{
    rq->url = &s3->endpoint;
    rq->target = r->target;
    rq->sign = s3_sign;
    rq->sign_ctx = r;
    rq->check = s3_check;
    int err = http_do(s3->client, rq, rs);
    return err ? s3_error(s3, key, what, rs, err) : 0;
}

static int s3_stat(struct store *s, const char *key, struct store_info *info)
{
    struct s3_store *s3 = (struct s3_store *)s;
    struct s3_req r;
    int err = s3_req_init(s3, &r, key, NULL, 0);
    if (err)
        return err;
    struct http_response rs;
    http_response_init(&rs);
    struct http_request rq = {.method = "HEAD", .sink = HTTP_SINK_DISCARD};
    err = s3_do(s3, &r, &rq, &rs, key, "HEAD");
    if (!err) {
        info->size = rs.total_size;
        const char *etag = http_head_get(&rs.head, "ETag"), *sum = http_head_get(&rs.head, "x-amz-meta-sha256");
        if (etag)
            snprintf(info->etag, sizeof info->etag, "%s", etag);
        if (sum && strlen(sum) == 64 && snap_unhex(sum, info->sha256, 32) == 0)
            info->has_sha256 = true;
    }
    http_response_free(&rs);
    return err;
}

static int s3_read(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
                   store_progress_fn progress, void *ctx, struct store_read_result *res)
{
    struct s3_store *s3 = (struct s3_store *)s;
    struct s3_req r;
    int err = s3_req_init(s3, &r, key, NULL, 0);
    if (err || len == 0)
        return err;
    struct http_response rs;
    http_response_init(&rs);
    struct http_request rq = {.method = "GET", .range = true, .range_off = off, .range_len = len,
                              .sink = HTTP_SINK_BUFFER, .dst = dst, .dst_len = len,
                              .progress = progress, .progress_ctx = ctx};
    err = s3_do(s3, &r, &rq, &rs, key, "GET");
    res->bytes = rs.bytes;
    if (rs.total_size != HTTP_SIZE_UNKNOWN)
        res->total_size = rs.total_size;
    if (err && rs.status == 416 && rs.total_size == off)
        err = 0;
    http_response_free(&rs);
    return err;
}

static int s3_read_stream(struct store *s, const char *key, uint64_t off, uint64_t len, store_sink_fn sink,
                          void *ctx, struct store_read_result *res)
{
    struct s3_store *s3 = (struct s3_store *)s;
    struct s3_req r;
    int err = s3_req_init(s3, &r, key, NULL, 0);
    if (err)
        return err;
    struct store_sink_guard k = {sink, ctx, 0, ""};
    size_t rcap;
    uint8_t *rbuf = store_stream_recv_buf(len, &rcap);
    struct http_response rs;
    http_response_init(&rs);
    struct http_request rq = {.method = "GET", .range = true, .range_off = off,
                              .range_len = len == STORE_SIZE_UNKNOWN ? UINT64_MAX - off : len,
                              .sink = HTTP_SINK_CALLBACK, .data_fn = store_sink_guard_fn, .data_ctx = &k,
                              .recv_buf = rbuf, .recv_buf_len = rcap};
    err = s3_do(s3, &r, &rq, &rs, key, "GET");
    res->bytes = rs.bytes;
    if (rs.total_size != HTTP_SIZE_UNKNOWN)
        res->total_size = rs.total_size;
    if (err && k.err)
        err = store_sink_guard_result(&k, err);
    else if (err && rs.status == 416 && rs.total_size == off)
        err = 0;
    snap_free(rbuf);
    http_response_free(&rs);
    return err;
}

/* The x-amz-meta-sha256 and Content-Type fields of a put or a multipart create. */
static void s3_put_headers(struct http_hdrs *h, const struct store_put_opts *po, char hex[65])
{
    http_hdrs_init(h);
    if (po->sha256) {
        snap_hex(po->sha256, 32, hex);
        http_hdrs_add(h, "x-amz-meta-sha256", hex);
    }
    if (po->content_type)
        http_hdrs_add(h, "Content-Type", po->content_type);
}

static int s3_put(struct store *s, const char *key, const void *buf, size_t len, const struct store_put_opts *po)
{
    struct s3_store *s3 = (struct s3_store *)s;
    struct s3_req r;
    int err = s3_req_init(s3, &r, key, NULL, 0);
    if (err)
        return err;
    struct http_hdrs h;
    char hex[65];
    s3_put_headers(&h, po, hex);
    struct http_response rs;
    http_response_init(&rs);
    struct http_request rq = {.method = "PUT", .headers = &h, .body = buf, .body_len = len,
                              .sink = HTTP_SINK_COLLECT, .retry = HTTP_RETRY_YES};
    err = s3_do(s3, &r, &rq, &rs, key, "PUT");
    http_response_free(&rs);
    return err;
}

static int s3_mp_create(struct store *s, const char *key, const struct store_put_opts *po, char **upload_id)
{
    struct s3_store *s3 = (struct s3_store *)s;
    struct sigv4_kv q[] = {{"uploads", NULL}};
    struct s3_req r;
    int err = s3_req_init(s3, &r, key, q, 1);
    if (err)
        return err;
    struct http_hdrs h;
    char hex[65];
    s3_put_headers(&h, po, hex);
    struct http_response rs;
    http_response_init(&rs);
    struct http_request rq = {.method = "POST", .headers = &h, .body = "", .body_len = 0,
                              .sink = HTTP_SINK_COLLECT, .retry = HTTP_RETRY_YES};
    err = s3_do(s3, &r, &rq, &rs, key, "create multipart upload");
    struct xml_doc *doc = NULL;
    char id[1024];
    if (!err && (err = xml_parse(rs.body, rs.body_len, &doc)) == 0 &&
        (err = xml_copy_text(xml_root(doc), "UploadId", id, sizeof id)) == 0 &&
        !(*upload_id = snap_strdup(id)))
        err = snap_fail(SNAP_ENOMEM, "out of memory");
    if (err && !snap_errmsg(err)[0])
        snap_fail(err, "%s/%s: no UploadId in the answer", s->url, key);
    xml_free(doc);
    http_response_free(&rs);
    return err;
}

static int s3_mp_part(struct store *s, const char *key, const char *upload_id, uint32_t number, const void *buf,
                      size_t len, char etag[STORE_ETAG_MAX])
{
    struct s3_store *s3 = (struct s3_store *)s;
    char num[16];
    snprintf(num, sizeof num, "%u", number);
    struct sigv4_kv q[] = {{"partNumber", num}, {"uploadId", upload_id}};
    struct s3_req r;
    int err = s3_req_init(s3, &r, key, q, 2);
    if (err)
        return err;
    struct http_response rs;
    http_response_init(&rs);
    struct http_request rq = {.method = "PUT", .body = buf, .body_len = len, .sink = HTTP_SINK_COLLECT,
                              .retry = HTTP_RETRY_YES};
    err = s3_do(s3, &r, &rq, &rs, key, "upload part");
    const char *e = err ? NULL : http_head_get(&rs.head, "ETag");
    if (!err && !e)
        err = snap_fail(SNAP_EPROTO, "%s/%s: part %u: no ETag in the answer", s->url, key, number);
    if (!err)
        snprintf(etag, STORE_ETAG_MAX, "%s", e);
    http_response_free(&rs);
    return err;
}

static int s3_mp_complete(struct store *s, const char *key, const char *upload_id, const struct store_part *parts,
                          size_t nparts, char etag[STORE_ETAG_MAX])
{
    struct s3_store *s3 = (struct s3_store *)s;
    struct sigv4_kv q[] = {{"uploadId", upload_id}};
    struct s3_req r;
    int err = s3_req_init(s3, &r, key, q, 1);
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
    err = s3_do(s3, &r, &rq, &rs, key, "complete multipart upload");
    etag[0] = '\0';
    if (!err) {
        struct xml_doc *doc;
        if (xml_parse(rs.body, rs.body_len, &doc) == 0) {
            xml_copy_text(xml_root(doc), "ETag", etag, STORE_ETAG_MAX); /* RGW may leave it empty */
            xml_free(doc);
        }
    }
    snap_free(body);
    http_response_free(&rs);
    return err;
}

static int s3_mp_abort(struct store *s, const char *key, const char *upload_id)
{
    struct s3_store *s3 = (struct s3_store *)s;
    struct sigv4_kv q[] = {{"uploadId", upload_id}};
    struct s3_req r;
    int err = s3_req_init(s3, &r, key, q, 1);
    if (err)
        return err;
    struct http_response rs;
    http_response_init(&rs);
    struct http_request rq = {.method = "DELETE", .sink = HTTP_SINK_COLLECT};
    err = s3_do(s3, &r, &rq, &rs, key, "abort multipart upload");
    http_response_free(&rs);
    return err;
}

const struct store_ops store_s3_ops = {
    .scheme = "s3", .open = s3_open, .close = s3_close, .stat = s3_stat, .read = s3_read,
    .read_stream = s3_read_stream, .put = s3_put, .mp_create = s3_mp_create, .mp_part = s3_mp_part,
    .mp_complete = s3_mp_complete, .mp_abort = s3_mp_abort,
};
