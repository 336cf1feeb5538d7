/* gs.c -- the gs:// backend: Google Cloud Storage through its XML API.
 *
 * gs://bucket/prefix.  The object and multipart calls are S3's (xmlapi.c) on
 * https://storage.googleapis.com/BUCKET/KEY, with x-goog-meta-sha256 as the checksum field.
 * Credentials, the first that is configured wins:
 *   1. GOOGLE_OAUTH_ACCESS_TOKEN: a bearer token as is (never refreshed);
 *   2. GCS_HMAC_ACCESS_ID + GCS_HMAC_SECRET: an HMAC key, SigV4 with region "auto", service "s3";
 *   3. GOOGLE_APPLICATION_CREDENTIALS: a service-account JSON key (JWT exchanged at its token_uri);
 *   4. with STORAGE_EMULATOR_HOST and none of the above: no authentication (an emulator);
 *   5. the GCE metadata server (GCE_METADATA_HOST, default 169.254.169.254).
 * Endpoint: SNAPCTL_GCS_ENDPOINT (a URL, any credentials), else STORAGE_EMULATOR_HOST ("host:port"
 * or a URL), else https://storage.googleapis.com.  Bearer tokens come from gauth.c's cache,
 * shared by every thread of the store; a 401 drops the token and the request is repeated once.
 */
#include "store/store.h"

#include "base/err.h"
#include "base/mem.h"
#include "store/gauth.h"
#include "store/xmlapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gs_store {
    struct xapi x;
    struct gauth *ga;                 /* bearer tokens (NULL with HMAC or none) */
    char ak[256], sk[256];            /* HMAC key */
};

static int gs_sign_bearer(struct xapi *x, struct xapi_req *r, const char *method, const struct url *url,
                          struct http_hdrs *h)
{
    (void)method;
    (void)url;
    struct gs_store *gs = (struct gs_store *)x;
    char v[GAUTH_TOKEN_MAX + 8] = "Bearer ";
    int err = gauth_get(gs->ga, v + 7, sizeof v - 7, &r->cred_gen);
    if (!err)
        err = http_hdrs_set(h, "Authorization", v);
    return err;
}

static int gs_refused(struct xapi *x, struct xapi_req *r)
{
    struct gs_store *gs = (struct gs_store *)x;
    return gauth_refused(gs->ga, r->cred_gen);
}

static int gs_sign_hmac(struct xapi *x, struct xapi_req *r, const char *method, const struct url *url,
                        struct http_hdrs *h)
{
    struct gs_store *gs = (struct gs_store *)x;
    return xapi_sign_sigv4(r, method, url, h, gs->ak, gs->sk, NULL, "auto");
}

static int gs_sign_none(struct xapi *x, struct xapi_req *r, const char *method, const struct url *url,
                        struct http_hdrs *h)
{
    (void)x, (void)r, (void)method, (void)url, (void)h;
    return 0;
}

static const struct xapi_auth auth_env_token = {
    .sign = gs_sign_bearer, .refused = gs_refused,
    .hint = "the token in GOOGLE_OAUTH_ACCESS_TOKEN was refused: it may have expired (they last an hour; get "
            "a new one with gcloud auth print-access-token) or lack access to the bucket",
};
static const struct xapi_auth auth_service_account = {
    .sign = gs_sign_bearer, .refused = gs_refused,
    .hint = "check that the service account of GOOGLE_APPLICATION_CREDENTIALS has storage access to the bucket",
};
static const struct xapi_auth auth_metadata = {
    .sign = gs_sign_bearer, .refused = gs_refused,
    .hint = "check that the VM's service account has storage access to the bucket and a storage scope",
};
static const struct xapi_auth auth_hmac = {
    .sign = gs_sign_hmac,
    .hint = "check GCS_HMAC_ACCESS_ID and GCS_HMAC_SECRET (an active HMAC key of an account with access)",
};
static const struct xapi_auth auth_none = {
    .sign = gs_sign_none,
    .hint = "no credentials were sent (STORAGE_EMULATOR_HOST without any); set GOOGLE_APPLICATION_CREDENTIALS, "
            "GOOGLE_OAUTH_ACCESS_TOKEN or GCS_HMAC_ACCESS_ID/GCS_HMAC_SECRET",
};

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static void gs_close(struct store *s)
{
    struct gs_store *gs = (struct gs_store *)s;
    gauth_free(gs->ga);
    xapi_fini(&gs->x);
    memset(gs->sk, 0, sizeof gs->sk);
    snap_free(gs);
}

/* Pick the credentials (see the top of this file). */
static int gs_auth(struct gs_store *gs, bool emulator)
{
    const char *tok = env("GOOGLE_OAUTH_ACCESS_TOKEN"), *id = env("GCS_HMAC_ACCESS_ID"),
               *secret = env("GCS_HMAC_SECRET"), *key = env("GOOGLE_APPLICATION_CREDENTIALS");
    if (tok) {
        gs->x.auth = &auth_env_token;
        return gauth_new_static(tok, "GOOGLE_OAUTH_ACCESS_TOKEN", &gs->ga);
    }
    if (id || secret) {
        if (!id || !secret)
            return snap_fail(SNAP_EAUTH, "%s: set both GCS_HMAC_ACCESS_ID and GCS_HMAC_SECRET (only %s is set)",
                             gs->x.base.url, id ? "GCS_HMAC_ACCESS_ID" : "GCS_HMAC_SECRET");
        if (strlen(id) >= sizeof gs->ak || strlen(secret) >= sizeof gs->sk)
            return snap_fail(SNAP_EAUTH, "%s: GCS_HMAC_ACCESS_ID or GCS_HMAC_SECRET is too long", gs->x.base.url);
        snprintf(gs->ak, sizeof gs->ak, "%s", id);
        snprintf(gs->sk, sizeof gs->sk, "%s", secret);
        gs->x.auth = &auth_hmac;
        return 0;
    }
    if (key) {
        gs->x.auth = &auth_service_account;
        int err = gauth_new_service_account(key, &gs->ga);
        return err ? snap_fail_ctx(err, "%s", gs->x.base.url) : 0;
    }
    if (emulator) {
        gs->x.auth = &auth_none;
        return 0;
    }
    gs->x.auth = &auth_metadata;
    return gauth_new_metadata(env("GCE_METADATA_HOST"), &gs->ga);
}

static int gs_open(const char *u, const struct store_opts *o, struct store **out)
{
    struct gs_store *gs = snap_calloc(1, sizeof *gs);
    if (!gs)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    gs->x.base.ops = &store_gs_ops;
    gs->x.service = "GCS";
    gs->x.meta_sha256 = "x-goog-meta-sha256";
    gs->x.meta_usize = "x-goog-meta-uncompressed-size";
    gs->x.copy_source_hdr = "x-goog-copy-source";
    gs->x.directive_hdr = "x-goog-metadata-directive";
    gs->x.copy_max = 0; /* a copy onto itself is a metadata rewrite at any size */
    gs->x.path_style = true;
    gs->x.auth = &auth_none;
    int err = xapi_parse_url(&gs->x, u, "gs");
    const char *ep = env("SNAPCTL_GCS_ENDPOINT"), *emu = env("STORAGE_EMULATOR_HOST");
    char epbuf[600];
    if (!ep && emu) {
        int n = snprintf(epbuf, sizeof epbuf, "%s%s", strstr(emu, "://") ? "" : "http://", emu);
        if (n < 0 || (size_t)n >= sizeof epbuf)
            err = err ? err : snap_fail(SNAP_EUSAGE, "STORAGE_EMULATOR_HOST is too long");
        ep = epbuf;
    }
    if (!err)
        err = gs_auth(gs, !env("SNAPCTL_GCS_ENDPOINT") && emu);
    if (!err)
        err = xapi_connect(&gs->x, ep ? ep : "https://storage.googleapis.com", o);
    if (err) {
        gs_close(&gs->x.base);
        return err;
    }
    *out = &gs->x.base;
    return 0;
}

const struct store_ops store_gs_ops = {
    .scheme = "gs", .open = gs_open, .close = gs_close, .stat = xapi_stat, .read = xapi_read,
    .read_stream = xapi_read_stream, .put = xapi_put, .mp_create = xapi_mp_create, .mp_part = xapi_mp_part,
    .mp_complete = xapi_mp_complete, .mp_abort = xapi_mp_abort, .set_meta = xapi_set_meta,
};
