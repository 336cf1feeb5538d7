/* xmlapi.h -- the S3 / GCS XML API engine shared by the s3:// and gs:// backends.
 *
 * Both services speak the same object and multipart calls (protocols.md section 2): ranged GET
 * with the size from Content-Range, HEAD, PUT with a sha256 metadata field, POST ?uploads,
 * PUT ?partNumber&uploadId, POST ?uploadId with <CompleteMultipartUpload>, DELETE ?uploadId,
 * and <Error> documents (even inside a 200).  They differ in the endpoint, the metadata prefix
 * (x-amz-meta- / x-goog-meta-) and authentication, which a backend plugs in as a struct
 * xapi_auth: SigV4 (S3, GCS HMAC keys) or an OAuth2 Bearer token (GCS).
 *
 * A backend embeds struct xapi first, fills it with xapi_init() and its auth, and points its
 * store_ops at the xapi_* functions below.
 */
#ifndef SNAP_STORE_XMLAPI_H
#define SNAP_STORE_XMLAPI_H

#include "crypto/sigv4.h"
#include "net/http.h"
#include "net/url.h"
#include "store/store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define XAPI_TARGET_MAX 4096

struct xapi;
struct xapi_resp;

/* One request: the encoded path and target, and the raw query pairs it was built from. */
struct xapi_req {
    struct xapi *x;
    char path[XAPI_TARGET_MAX];      /* encoded */
    struct sigv4_kv q[3];
    size_t nq;
    char target[XAPI_TARGET_MAX];
    const char *payload_hash;
    uint64_t cred_gen;               /* which credential sign() used (a token's generation) */
};

struct xapi_auth {
    /* Authenticate one attempt (called again for every retry): add Authorization etc. */
    int (*sign)(struct xapi *x, struct xapi_req *r, const char *method, const struct url *url,
                struct http_hdrs *h);
    /* Optional: the server answered 401, or S3's ExpiredToken (a 400/403; or a 400/403 without a
     * body, as to HEAD), to a request signed with r's credential.  Return 0 if
     * a fresh credential may help (the request is then repeated once), else non-zero. */
    int (*refused)(struct xapi *x, struct xapi_req *r);
    /* What to tell the user on 401/403 ("check the credentials, region and endpoint"). */
    const char *hint;
};

struct xapi {
    struct store base;
    struct url endpoint;             /* scheme://host[:port] */
    bool path_style;                 /* /bucket/key rather than bucket.host/key */
    char bucket[256], prefix[1024];
    const char *service;             /* "S3", "GCS": for messages */
    const char *meta_sha256;         /* "x-amz-meta-sha256" or "x-goog-meta-sha256" */
    const char *meta_usize;          /* "x-amz-meta-uncompressed-size" or "x-goog-meta-..." */
    const char *copy_source_hdr;     /* "x-amz-copy-source" or "x-goog-copy-source" */
    const char *directive_hdr;       /* "x-amz-metadata-directive" or "x-goog-metadata-directive" */
    uint64_t copy_max;               /* largest single copy (S3: 5 GiB, then UploadPartCopy); 0: any */
    struct http_client *client;
    const struct xapi_auth *auth;
    void *auth_ctx;
    /* Warm responses for reads and parts (head buffers kept), so neither allocates. */
    pthread_mutex_t pool_mu;
    struct xapi_resp *pool;
    unsigned pooled;
};

/* Parse SCHEME://BUCKET[/PREFIX] (bucket of 3 to 222 characters) into x->bucket/prefix and keep
 * the URL.  Errors name the URL.  Call it first: it also sets up what xapi_fini frees. */
int xapi_parse_url(struct xapi *x, const char *url, const char *scheme);
/* Parse the endpoint URL and make the HTTP client from the store options. */
int xapi_connect(struct xapi *x, const char *endpoint, const struct store_opts *o);
/* Free what xapi_parse_url/xapi_connect made (not x itself). */
void xapi_fini(struct xapi *x);

/* SigV4 for an attempt, signing host and every x-amz-* / x-goog-* field (S3; GCS HMAC keys). */
int xapi_sign_sigv4(struct xapi_req *r, const char *method, const struct url *url, struct http_hdrs *h,
                    const char *ak, const char *sk, const char *token, const char *region);

/* The store operations. */
int xapi_stat(struct store *s, const char *key, struct store_info *info);
int xapi_read(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
              store_progress_fn progress, void *ctx, struct store_read_result *res);
int xapi_read_stream(struct store *s, const char *key, uint64_t off, uint64_t len, store_sink_fn sink,
                     void *ctx, struct store_read_result *res);
int xapi_put(struct store *s, const char *key, const void *buf, size_t len, const struct store_put_opts *po);
int xapi_mp_create(struct store *s, const char *key, const struct store_put_opts *po, char **upload_id);
int xapi_mp_part(struct store *s, const char *key, const char *upload_id, uint32_t number, const void *buf,
                 size_t len, store_sent_fn sent, void *sent_ctx, char etag[STORE_ETAG_MAX]);
int xapi_mp_complete(struct store *s, const char *key, const char *upload_id, const struct store_part *parts,
                     size_t nparts, char etag[STORE_ETAG_MAX]);
int xapi_mp_abort(struct store *s, const char *key, const char *upload_id);
/* Replace the sha256 / Content-Type metadata of an existing object of `size` bytes without
 * sending its data again: a server-side copy onto itself with the metadata directive REPLACE;
 * above copy_max (S3: 5 GiB) a multipart copy in copy_max parts (UploadPartCopy), aborted on
 * failure.  For the store_ops set_meta of the upload path. */
int xapi_set_meta(struct store *s, const char *key, uint64_t size, const struct store_put_opts *po);

#endif
