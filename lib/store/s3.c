/* s3.c -- the s3:// backend: S3 and S3-compatible stores (Ceph RGW, MinIO) with SigV4.
 *
 * s3://bucket/prefix.  Credentials as the AWS CLI finds them (awscreds.h: environment, web
 * identity, profiles, container endpoint, instance metadata), cached and refreshed there; a
 * request refused with ExpiredToken gets new credentials and is repeated once.  Region:
 * AWS_REGION, AWS_DEFAULT_REGION, the profile's region, the instance metadata, us-east-1.
 * Endpoint: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, path style (RGW, MinIO); else AWS,
 * virtual-hosted (path style for a bucket name with dots, which the certificate cannot match).
 *
 * The requests themselves (ranges, puts, multipart, <Error> documents) are xmlapi.c's, shared
 * with gs://; this file only finds the credentials and endpoint and signs each attempt.
 */
#include "store/store.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "base/log.h"
#include "store/awscreds.h"
#include "store/xmlapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct s3_store {
    struct xapi x;
    struct awscreds *creds;
    char region[64];
};

static int s3_sign(struct xapi *x, struct xapi_req *r, const char *method, const struct url *url,
                   struct http_hdrs *h)
{
    struct s3_store *s3 = (struct s3_store *)x;
    struct awscreds_val v;
    int err = awscreds_get(s3->creds, &v, &r->cred_gen);
    if (!err)
        err = xapi_sign_sigv4(r, method, url, h, v.ak, v.sk, v.token, s3->region);
    memset(v.sk, 0, sizeof v.sk);
    return err;
}

static int s3_refused(struct xapi *x, struct xapi_req *r)
{
    struct s3_store *s3 = (struct s3_store *)x;
    int err = awscreds_refused(s3->creds, r->cred_gen);
    if (!err)
        snap_info("s3: the credentials from %s were refused as expired; fetching new ones and retrying once",
                  awscreds_source(s3->creds));
    return err;
}

static const struct xapi_auth s3_auth = {
    .sign = s3_sign,
    .refused = s3_refused,
    .hint = "check the credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE; -v names their source), region and endpoint",
};

static void s3_close(struct store *s)
{
    struct s3_store *s3 = (struct s3_store *)s;
    xapi_fini(&s3->x);
    awscreds_free(s3->creds);
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
    if (!err)
        err = awscreds_new(&s3->creds);
    if (err)
        err = snap_fail_ctx(err, "%s", u);
    if (!err) {
        awscreds_region(s3->region, sizeof s3->region, s3->creds);
        if (!s3->region[0])
            snprintf(s3->region, sizeof s3->region, "us-east-1");
    }
    char ep[512];
    const char *endpoint = getenv("AWS_ENDPOINT_URL_S3");
    if (!endpoint || !*endpoint)
        endpoint = getenv("AWS_ENDPOINT_URL");
    if (!err && endpoint && *endpoint) {
        s3->x.path_style = true;
        snprintf(ep, sizeof ep, "%s", endpoint);
    } else if (!err && strchr(s3->x.bucket, '.')) {
        /* A dotted bucket would not match the *.s3 certificate: path style, as the SDKs do. */
        s3->x.path_style = true;
        snprintf(ep, sizeof ep, "https://s3.%s.amazonaws.com", s3->region);
    } else if (!err) {
        snprintf(ep, sizeof ep, "https://%s.s3.%s.amazonaws.com", s3->x.bucket, s3->region);
    }
    if (!err) {
        struct awscreds_val v;
        uint64_t gen;
        awscreds_get(s3->creds, &v, &gen);
        size_t n = strlen(v.ak);
        snap_info("s3: %s: credentials from %s, access key ...%s%s; region %s, %s %s", u,
                  awscreds_source(s3->creds), n > 4 ? v.ak + n - 4 : "", v.token[0] ? ", with a session token" : "",
                  s3->region, ep, s3->x.path_style ? "(path style)" : "(virtual-hosted style)");
        memset(&v, 0, sizeof v);
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
