/* s3.c -- the s3:// backend: S3 and S3-compatible stores (Ceph RGW, MinIO) with SigV4.
 *
 * s3://bucket/prefix.  Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN, else the [AWS_PROFILE or default] section of ~/.aws/credentials
 * (AWS_SHARED_CREDENTIALS_FILE overrides the path).  Region: AWS_REGION, AWS_DEFAULT_REGION,
 * us-east-1.  Endpoint: AWS_ENDPOINT_URL (path-style, for RGW and MinIO), else AWS's
 * virtual-hosted https://bucket.s3.region.amazonaws.com.
 *
 * The requests themselves (ranges, puts, multipart, <Error> documents) are xmlapi.c's, shared
 * with gs://; this file only finds the credentials and endpoint and signs each attempt.
 */
#include "store/store.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "store/xmlapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct s3_store {
    struct xapi x;
    char ak[256], sk[256], token[2048], region[64];
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

static int s3_sign(struct xapi *x, struct xapi_req *r, const char *method, const struct url *url,
                   struct http_hdrs *h)
{
    struct s3_store *s3 = (struct s3_store *)x;
    return xapi_sign_sigv4(r, method, url, h, s3->ak, s3->sk, s3->token, s3->region);
}

static const struct xapi_auth s3_auth = {
    .sign = s3_sign,
    .hint = "check the credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE), region and endpoint",
};

static void s3_close(struct store *s)
{
    struct s3_store *s3 = (struct s3_store *)s;
    xapi_fini(&s3->x);
    snap_free(s3);
}

static int s3_open(const char *u, const struct store_opts *o, struct store **out)
{
    struct s3_store *s3 = snap_calloc(1, sizeof *s3);
    if (!s3)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    s3->x.base.ops = &store_s3_ops;
    s3->x.service = "S3";
    s3->x.meta_sha256 = "x-amz-meta-sha256";
    s3->x.meta_usize = "x-amz-meta-uncompressed-size";
    s3->x.copy_source_hdr = "x-amz-copy-source";
    s3->x.directive_hdr = "x-amz-metadata-directive";
    s3->x.copy_max = 5ull << 30; /* CopyObject's limit; above it UploadPartCopy */
    s3->x.auth = &s3_auth;
    int err = xapi_parse_url(&s3->x, u, "s3");
    if (!err) {
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
        s3->x.path_style = true;
        snprintf(ep, sizeof ep, "%s", endpoint);
    } else if (!err) {
        snprintf(ep, sizeof ep, "https://%s.s3.%s.amazonaws.com", s3->x.bucket, s3->region);
    }
    if (!err)
        err = xapi_connect(&s3->x, ep, o);
    if (err) {
        s3_close(&s3->x.base);
        return err;
    }
    *out = &s3->x.base;
    return 0;
}

const struct store_ops store_s3_ops = {
    .scheme = "s3", .open = s3_open, .close = s3_close, .stat = xapi_stat, .read = xapi_read,
    .read_stream = xapi_read_stream, .put = xapi_put, .mp_create = xapi_mp_create, .mp_part = xapi_mp_part,
    .mp_complete = xapi_mp_complete, .mp_abort = xapi_mp_abort, .set_meta = xapi_set_meta,
};
