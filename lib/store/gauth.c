/* gauth.c -- OAuth2 access tokens for gs:// (service-account key, metadata server, as given) and
 * the thread-shared cache in front of them.  See gauth.h. */
#include "store/gauth.h"

#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"
#include "crypto/jwt.h"
#include "net/http.h"
#include "net/url.h"
#include "store/credcache.h"
#include "codec/jsonr.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MARGIN_MAX 225         /* seconds before expiry a token is replaced (Google's libraries' value) */
#define DEFAULT_LIFETIME 300   /* a token answer without expires_in */
#define KEYFILE_MAX (64u << 10)

struct gauth {
    pthread_mutex_t mu;
    char token[GAUTH_TOKEN_MAX];
    struct credcache cc;    /* when to fetch again (times on the now() clock) */
    gauth_fetch_fn fetch;   /* NULL: a static token */
    void *ctx;
    int64_t (*now)(void *);
    void *now_ctx;
    char source[1400];
    /* Service account or metadata server. */
    struct jwt_key *key;
    char email[JWT_MAX_CLAIM], key_id[JWT_MAX_CLAIM], token_uri[JWT_MAX_CLAIM];
    char key_path[512];
    struct url url;
    bool have_url;
    struct http_client *client;
};

static int64_t mono_s(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

static struct gauth *gauth_alloc(void)
{
    struct gauth *g = snap_calloc(1, sizeof *g);
    if (!g)
        return NULL;
    pthread_mutex_init(&g->mu, NULL);
    g->now = mono_s;
    return g;
}

void gauth_free(struct gauth *g)
{
    if (!g)
        return;
    jwt_key_free(g->key);
    http_client_free(g->client);
    if (g->have_url)
        url_free(&g->url);
    pthread_mutex_destroy(&g->mu);
    memset(g->token, 0, sizeof g->token);
    snap_free(g);
}

uint64_t gauth_fetches(struct gauth *g)
{
    pthread_mutex_lock(&g->mu);
    uint64_t n = g->cc.fetches;
    pthread_mutex_unlock(&g->mu);
    return n;
}

/* A visible-ASCII string that fits a header value. */
static bool token_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return n > 0;
}

/* Copy a JSON string for a message: printable ASCII, at most n-1 bytes. */
static void quote_for_msg(char *dst, size_t n, const char *s)
{
    size_t j = 0;
    for (; s && *s && j + 1 < n; s++)
        dst[j++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    dst[j] = '\0';
}

int gauth_parse_token(const void *body, size_t len, char *token, size_t cap, int64_t *expires_in)
{
    struct jsonr_doc *doc;
    int err = jsonr_parse(body, len, &doc);
    if (err)
        return snap_fail_ctx(SNAP_EFORMAT, "token answer is not JSON");
    const struct jsonr_value *root = jsonr_root(doc);
    const char *tok = NULL, *type = NULL;
    size_t tlen = 0;
    if (jsonr_type(root) != JSONR_OBJECT) {
        err = snap_fail(SNAP_EFORMAT, "token answer is a JSON %s, not an object", jsonr_type_name(jsonr_type(root)));
        goto out;
    }
    const char *e = jsonr_str(jsonr_member(root, "error"), NULL);
    if (e) {
        char code[128], desc[400];
        quote_for_msg(code, sizeof code, e);
        quote_for_msg(desc, sizeof desc, jsonr_str(jsonr_member(root, "error_description"), NULL));
        err = snap_fail(SNAP_EAUTH, "%s%s%s", code, desc[0] ? ": " : "", desc);
        goto out;
    }
    if ((err = jsonr_get_str(root, "access_token", &tok, &tlen)) != 0)
        goto out;
    if (tlen >= cap || !token_ok(tok, tlen)) {
        err = snap_fail(SNAP_EFORMAT, "access_token of %zu bytes is not 1..%zu visible ASCII characters", tlen, cap - 1);
        goto out;
    }
    *expires_in = DEFAULT_LIFETIME;
    if (jsonr_member(root, "expires_in")) {
        int64_t v;
        if ((err = jsonr_get_i64(root, "expires_in", &v)) != 0)
            goto out;
        if (v < 1 || v > 86400) {
            err = snap_fail(SNAP_EFORMAT, "expires_in %lld is not within 1..86400 seconds", (long long)v);
            goto out;
        }
        *expires_in = v;
    }
    if (jsonr_member(root, "token_type") &&
        (!(type = jsonr_str(jsonr_member(root, "token_type"), NULL)) || strcasecmp(type, "Bearer") != 0)) {
        err = snap_fail(SNAP_EFORMAT, "token_type is not \"Bearer\"");
        goto out;
    }
    memcpy(token, tok, tlen);
    token[tlen] = '\0';
out:
    jsonr_free(doc);
    return err;
}

/* Run one token request; on any failure the message says what failed at which URL. */
static int token_request(struct gauth *g, struct http_request *rq, char *token, size_t cap, int64_t *expires_in)
{
    struct http_response rs;
    http_response_init(&rs);
    rq->url = &g->url;
    rq->sink = HTTP_SINK_COLLECT;
    rq->collect_max = 64u << 10;
    int err = http_do(g->client, rq, &rs);
    if (!err) {
        err = gauth_parse_token(rs.body.data, rs.body.len, token, cap, expires_in);
    } else if (rs.status >= 400 && rs.body.len) {
        char http_msg[512], tmp[8];
        int64_t dummy;
        snprintf(http_msg, sizeof http_msg, "%s", snap_errmsg(err));
        if (gauth_parse_token(rs.body.data, rs.body.len, tmp, sizeof tmp, &dummy) == SNAP_EAUTH)
            snap_fail_ctx(err, "HTTP %d", rs.status); /* the server's {"error", "error_description"} */
        else
            snap_fail(err, "%s", http_msg);
    }
    http_response_free(&rs);
    return err;
}

/* "cannot get a GCS access token from WHERE (SOURCE): CAUSE; FIX", always SNAP_EAUTH. */
static int fetch_failed(struct gauth *g, int err, const char *where, const char *fix)
{
    char cause[700];
    snprintf(cause, sizeof cause, "%s", snap_errmsg(err));
    if (where)
        return snap_fail(SNAP_EAUTH, "cannot get a GCS access token from %s for %s: %s; %s", where, g->source,
                         cause, fix);
    return snap_fail(SNAP_EAUTH, "cannot get a GCS access token from %s: %s; %s", g->source, cause, fix);
}

static int sa_fetch(void *ctx, char *token, size_t cap, int64_t *expires_in)
{
    struct gauth *g = ctx;
    struct jwt_sa_claims c = {.iss = g->email, .scope = GAUTH_SCOPE, .aud = g->token_uri,
                              .kid = g->key_id[0] ? g->key_id : NULL, .iat = time(NULL)};
    char *jwt = NULL;
    size_t jlen;
    int err = jwt_sign_sa(g->key, &c, &jwt, &jlen);
    if (err)
        return snap_fail_ctx(SNAP_EAUTH, "cannot sign the token request with the key in %s", g->key_path);
    static const char grant[] = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
    size_t blen = sizeof grant - 1 + jlen;
    char *body = snap_malloc(blen + 1);
    if (!body) {
        snap_free(jwt);
        return snap_fail(SNAP_ENOMEM, "out of memory");
    }
    memcpy(body, grant, sizeof grant - 1);
    memcpy(body + sizeof grant - 1, jwt, jlen + 1); /* base64url needs no escaping */
    snap_free(jwt);
    struct http_hdrs h;
    http_hdrs_init(&h);
    http_hdrs_add(&h, "Content-Type", "application/x-www-form-urlencoded");
    struct http_request rq = {.method = "POST", .headers = &h, .body = body, .body_len = blen,
                              .retry = HTTP_RETRY_YES};
    err = token_request(g, &rq, token, cap, expires_in);
    snap_free(body);
    if (err)
        return fetch_failed(g, err, g->token_uri,
                            "check that the key is current (not deleted or disabled) and belongs to a service "
                            "account with storage access, and that the token URI is reachable");
    return 0;
}

static int md_fetch(void *ctx, char *token, size_t cap, int64_t *expires_in)
{
    struct gauth *g = ctx;
    struct http_hdrs h;
    http_hdrs_init(&h);
    http_hdrs_add(&h, "Metadata-Flavor", "Google");
    struct http_request rq = {.method = "GET", .headers = &h};
    int err = token_request(g, &rq, token, cap, expires_in);
    if (err)
        return fetch_failed(g, err, NULL,
                            "outside Google Cloud set GOOGLE_APPLICATION_CREDENTIALS to a service-account key "
                            "file, GOOGLE_OAUTH_ACCESS_TOKEN, or GCS_HMAC_ACCESS_ID and GCS_HMAC_SECRET; on GCE "
                            "check that the VM has a service account with a storage scope");
    return 0;
}

static int make_client(struct gauth *g, const char *url, unsigned connect_ms, unsigned idle_ms, unsigned attempts)
{
    int err = url_parse(url, &g->url);
    if (err)
        return snap_fail_ctx(SNAP_EAUTH, "token URL '%s' of %s", url, g->source);
    g->have_url = true;
    if (g->url.scheme != URL_HTTP && g->url.scheme != URL_HTTPS)
        return snap_fail(SNAP_EAUTH, "token URL '%s' of %s is not http(s)://", url, g->source);
    struct http_opts ho = {.connect_timeout_ms = connect_ms, .idle_timeout_ms = idle_ms};
    http_retry_defaults(&ho.retry);
    ho.retry.max_attempts = attempts;
    return http_client_new(&ho, &g->client);
}

int gauth_new_static(const char *token, const char *origin, struct gauth **out)
{
    size_t n = strlen(token);
    if (n >= GAUTH_TOKEN_MAX || !token_ok(token, n))
        return snap_fail(SNAP_EAUTH, "%s: not an access token (1..%u visible ASCII characters)", origin,
                         GAUTH_TOKEN_MAX - 1);
    struct gauth *g = gauth_alloc();
    if (!g)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    memcpy(g->token, token, n + 1);
    credcache_set_static(&g->cc);
    snprintf(g->source, sizeof g->source, "the token in %s", origin);
    *out = g;
    return 0;
}

int gauth_new_custom(gauth_fetch_fn fetch, void *ctx, int64_t (*now_s)(void *), void *now_ctx, struct gauth **out)
{
    struct gauth *g = gauth_alloc();
    if (!g)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    g->fetch = fetch;
    g->ctx = ctx;
    if (now_s) {
        g->now = now_s;
        g->now_ctx = now_ctx;
    }
    snprintf(g->source, sizeof g->source, "a test token source");
    *out = g;
    return 0;
}

/* Copy a string field of the key file, naming it when it is missing or too long. */
static int key_field(const struct jsonr_value *root, const char *path, const char *name, bool required, char *dst,
                     size_t cap)
{
    const char *v;
    size_t n;
    dst[0] = '\0';
    int err = jsonr_get_str(root, name, &v, &n);
    if (err == SNAP_ENOTFOUND && !required)
        return 0;
    if (err)
        return snap_fail_ctx(SNAP_EAUTH, "%s: not a service-account key", path);
    if (n >= cap || strlen(v) != n)
        return snap_fail(SNAP_EAUTH, "%s: field \"%s\" is too long or holds a NUL", path, name);
    memcpy(dst, v, n + 1);
    return 0;
}

int gauth_new_service_account(const char *path, struct gauth **out)
{
    uint8_t *buf = NULL;
    size_t len;
    int err = snap_read_file(path, KEYFILE_MAX, &buf, &len);
    if (err)
        return snap_fail_ctx(SNAP_EAUTH, "GOOGLE_APPLICATION_CREDENTIALS: cannot read the key file");
    struct jsonr_doc *doc = NULL;
    struct gauth *g = gauth_alloc();
    if (!g) {
        snap_free(buf);
        return snap_fail(SNAP_ENOMEM, "out of memory");
    }
    snprintf(g->key_path, sizeof g->key_path, "%s", path);
    if ((err = jsonr_parse(buf, len, &doc)) != 0) {
        err = snap_fail_ctx(SNAP_EAUTH, "GOOGLE_APPLICATION_CREDENTIALS: %s is not a JSON key file", path);
        goto out;
    }
    const struct jsonr_value *root = jsonr_root(doc);
    const char *type = jsonr_str(jsonr_member(root, "type"), NULL);
    if (!type || strcmp(type, "service_account") != 0) {
        char t[64];
        quote_for_msg(t, sizeof t, type ? type : "(none)");
        err = snap_fail(SNAP_EAUTH,
                        "GOOGLE_APPLICATION_CREDENTIALS: %s has credentials of type \"%s\"; snapctl takes "
                        "\"service_account\" keys (for user credentials set GOOGLE_OAUTH_ACCESS_TOKEN="
                        "$(gcloud auth print-access-token))",
                        path, t);
        goto out;
    }
    const char *pem;
    size_t pem_len;
    if ((err = key_field(root, path, "client_email", true, g->email, sizeof g->email)) ||
        (err = key_field(root, path, "private_key_id", false, g->key_id, sizeof g->key_id)) ||
        (err = key_field(root, path, "token_uri", false, g->token_uri, sizeof g->token_uri)))
        goto out;
    if ((err = jsonr_get_str(root, "private_key", &pem, &pem_len)) != 0) {
        err = snap_fail_ctx(SNAP_EAUTH, "%s: not a service-account key", path);
        goto out;
    }
    if ((err = jwt_key_parse(pem, pem_len, &g->key)) != 0) {
        err = snap_fail_ctx(SNAP_EAUTH, "%s: private_key", path);
        goto out;
    }
    if (!g->token_uri[0])
        snprintf(g->token_uri, sizeof g->token_uri, "%s", GAUTH_DEFAULT_TOKEN_URI);
    snprintf(g->source, sizeof g->source, "service account %s (key file %s)", g->email, path);
    g->fetch = sa_fetch;
    g->ctx = g;
    err = make_client(g, g->token_uri, 10000, 30000, 4);
out:
    jsonr_free(doc);
    if (buf)
        memset(buf, 0, len);
    snap_free(buf);
    if (err) {
        gauth_free(g);
        return err;
    }
    *out = g;
    return 0;
}

int gauth_new_metadata(const char *host, struct gauth **out)
{
    struct gauth *g = gauth_alloc();
    if (!g)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    bool given = host && *host;
    if (!given)
        host = GAUTH_DEFAULT_METADATA_HOST;
    snprintf(g->source, sizeof g->source, "the GCE metadata server at %s%s", host,
             given ? " (GCE_METADATA_HOST)" : " (GCE_METADATA_HOST changes it)");
    char url[600];
    int n = snprintf(url, sizeof url, "http://%s%s", host, GAUTH_METADATA_PATH);
    int err = n < 0 || (size_t)n >= sizeof url ? snap_fail(SNAP_EUSAGE, "GCE_METADATA_HOST is too long") : 0;
    g->fetch = md_fetch;
    g->ctx = g;
    /* Off GCE the link-local address does not answer: fail in seconds, not minutes. */
    if (!err)
        err = make_client(g, url, 3000, 10000, 3);
    if (err) {
        gauth_free(g);
        return err;
    }
    *out = g;
    return 0;
}

int gauth_get(struct gauth *g, char *token, size_t cap, uint64_t *gen)
{
    pthread_mutex_lock(&g->mu);
    int err = 0;
    if (g->fetch) {
        int64_t now = g->now(g->now_ctx);
        if (credcache_due(&g->cc, now)) {
            char fresh[GAUTH_TOKEN_MAX];
            int64_t ttl = 0;
            err = g->fetch(g->ctx, fresh, sizeof fresh, &ttl);
            if (!err) {
                memcpy(g->token, fresh, strlen(fresh) + 1);
                credcache_fresh(&g->cc, now, now + ttl, MARGIN_MAX);
                snap_debug("gs: new access token from %s, valid for %lld s", g->source, (long long)ttl);
            } else if (credcache_keep(&g->cc, now, 0)) {
                snap_warn("gs: %s; using the current token for its last %lld s", snap_errmsg(err),
                          (long long)(g->cc.expires_at - now));
                err = 0;
            }
            memset(fresh, 0, sizeof fresh);
        }
    }
    if (!err) {
        size_t n = strlen(g->token);
        if (n >= cap)
            err = snap_fail(SNAP_ETOOBIG, "access token of %zu bytes", n);
        else
            memcpy(token, g->token, n + 1);
        *gen = g->cc.gen;
    }
    pthread_mutex_unlock(&g->mu);
    return err;
}

int gauth_refused(struct gauth *g, uint64_t gen)
{
    if (!g->fetch)
        return snap_fail(SNAP_EAUTH, "%s was refused", g->source);
    pthread_mutex_lock(&g->mu);
    credcache_refused(&g->cc, gen);
    pthread_mutex_unlock(&g->mu);
    return 0;
}
