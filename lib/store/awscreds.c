/* awscreds.c -- AWS credentials from the environment, web identity, the shared files (keys,
 * AssumeRole, credential_process), the container endpoint and IMDSv2, behind one thread-shared
 * cache.  See awscreds.h for the order; awscreds_parse.c holds the parsers. */
#include "store/awscreds.h"

#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"
#include "crypto/sha256.h"
#include "crypto/sigv4.h"
#include "net/http.h"
#include "net/url.h"
#include "store/credcache.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MARGIN_MAX 600            /* seconds before expiry credentials are replaced */
#define REFRESH_RETRY_S 10        /* after a failed refresh, the old credentials are used this long */
#define FILE_MAX (1u << 20)
#define ANSWER_MAX (64u << 10)
#define IMDS_TOKEN_TTL 21600
#define ARN_MAX 2048

enum src_kind { SRC_STATIC, SRC_WEBID, SRC_ASSUME, SRC_PROCESS, SRC_CONTAINER, SRC_IMDS };

struct awscreds {
    pthread_mutex_t mu;
    enum src_kind kind;
    struct awscreds_val v;
    struct credcache cc;          /* when to fetch again (unix seconds) */
    char source[1200];
    /* STS (web identity, assume role) */
    char role_arn[ARN_MAX], session_name[128], external_id[256], token_file[1024], sts_url[512],
        sts_region[64];
    unsigned duration;
    struct awscreds *src;         /* assume role: the credentials that sign the call */
    /* credential_process */
    char *command;
    /* container, IMDS */
    char url[1024], auth_token[2048], auth_file[1024];
    char imds_token[256];
    int64_t imds_token_until;
    struct http_client *client;
};

/* The environment and the shared files, read once for a resolution. */
struct awsfiles {
    char *cred, *conf;
    size_t cred_len, conf_len;
    char cred_path[1024], conf_path[1024];
};

/* snprintf that may cut (messages, names from files): the cut is fine, a warning is not. */
static void fmt(char *dst, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *dst, size_t n, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(dst, n, f, ap);
    va_end(ap);
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static struct awscreds *creds_alloc(enum src_kind kind)
{
    struct awscreds *c = snap_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->kind = kind;
    c->duration = 3600;
    return c;
}

void awscreds_free(struct awscreds *c)
{
    if (!c)
        return;
    awscreds_free(c->src);
    http_client_free(c->client);
    snap_free(c->command);
    pthread_mutex_destroy(&c->mu);
    memset(c, 0, sizeof *c);
    snap_free(c);
}

const char *awscreds_source(const struct awscreds *c) { return c->source; }

uint64_t awscreds_fetches(struct awscreds *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t n = c->cc.fetches;
    pthread_mutex_unlock(&c->mu);
    return n;
}

static int make_client(struct awscreds *c, unsigned timeout_ms, unsigned attempts)
{
    struct http_opts ho = {.connect_timeout_ms = timeout_ms, .idle_timeout_ms = timeout_ms,
                           .total_timeout_ms = timeout_ms * attempts + 2000};
    http_retry_defaults(&ho.retry);
    ho.retry.max_attempts = attempts;
    return http_client_new(&ho, &c->client);
}

/* One exchange with a credentials service; the answer (2xx or not) is in rs. */
static int call(struct awscreds *c, const char *method, const char *u, const struct http_hdrs *h,
                const char *body, size_t blen, struct http_response *rs)
{
    struct url url;
    int err = url_parse(u, &url);
    if (err)
        return snap_fail_ctx(SNAP_EUSAGE, "credentials URL");
    if (url.scheme != URL_HTTP && url.scheme != URL_HTTPS) {
        url_free(&url);
        return snap_fail(SNAP_EUSAGE, "credentials URL is not http(s)://");
    }
    struct http_request rq = {.method = method, .url = &url, .headers = h, .body = body, .body_len = blen,
                              .sink = HTTP_SINK_COLLECT, .collect_max = ANSWER_MAX, .retry = HTTP_RETRY_YES};
    err = http_do(c->client, &rq, rs);
    url_free(&url);
    return err;
}

/* "cannot get AWS credentials from SOURCE: CAUSE; FIX", always SNAP_EAUTH. */
static int fetch_failed(struct awscreds *c, int err, const char *fix)
{
    char cause[800];
    snprintf(cause, sizeof cause, "%s", snap_errmsg(err));
    return snap_fail(SNAP_EAUTH, "cannot get AWS credentials from %s: %s; %s", c->source, cause, fix);
}

/* ---- STS ---- */

/* Append &name=value (form-encoded) to body[cap] at *n. */
static int form_add(char *body, size_t cap, size_t *n, const char *name, const char *value)
{
    int w = snprintf(body + *n, cap - *n, "%s%s=", *n ? "&" : "", name);
    if (w < 0 || (size_t)w >= cap - *n)
        return snap_fail(SNAP_ETOOBIG, "STS request too long");
    *n += (size_t)w;
    size_t el;
    if (url_encode(value, strlen(value), "", body + *n, cap - *n, &el))
        return snap_fail(SNAP_ETOOBIG, "STS request too long");
    *n += el;
    return 0;
}

/* Sign an STS POST with v: host, x-amz-date, x-amz-content-sha256, the token, Authorization. */
static int sts_sign(struct awscreds *c, const struct awscreds_val *v, const char *body, size_t blen,
                    struct http_hdrs *h)
{
    struct url url;
    char host[300], hash[SHA256_HEX_LEN + 1];
    if (url_parse(c->sts_url, &url))
        return snap_fail_ctx(SNAP_EUSAGE, "STS endpoint");
    int err = url_authority(&url, host, sizeof host);
    const char *path = url.path[0] ? url.path : "/";
    sha256_hex(body, blen, hash);
    struct sigv4_kv hv[] = {{"host", host}, {"content-type", "application/x-www-form-urlencoded"}};
    struct sigv4_request sr = {.method = "POST", .path = path, .headers = hv, .nheaders = 2, .payload_hash = hash,
                               .access_key = v->ak, .secret_key = v->sk, .session_token = v->token,
                               .region = c->sts_region, .service = "sts", .time = time(NULL)};
    struct sigv4_out so;
    if (!err)
        err = sigv4_sign(&sr, &so);
    for (size_t i = 0; !err && i < so.nadd; i++)
        err = http_hdrs_set(h, so.add[i].name, so.add[i].value);
    if (!err)
        err = http_hdrs_set(h, "Authorization", so.authorization);
    url_free(&url);
    return err;
}

/* The form body of the STS call into body[cap]; *n its length. */
static int sts_body(struct awscreds *c, const char *web_token, char *body, size_t cap, size_t *n)
{
    char dur[16];
    snprintf(dur, sizeof dur, "%u", c->duration);
    int err;
    *n = 0;
    if ((err = form_add(body, cap, n, "Action", web_token ? "AssumeRoleWithWebIdentity" : "AssumeRole")) ||
        (err = form_add(body, cap, n, "Version", "2011-06-15")) ||
        (err = form_add(body, cap, n, "RoleArn", c->role_arn)) ||
        (err = form_add(body, cap, n, "RoleSessionName", c->session_name)) ||
        (err = form_add(body, cap, n, "DurationSeconds", dur)) ||
        (web_token && (err = form_add(body, cap, n, "WebIdentityToken", web_token))) ||
        (c->external_id[0] && (err = form_add(body, cap, n, "ExternalId", c->external_id))))
        return err;
    return 0;
}

static int sts_fetch(struct awscreds *c, struct awscreds_val *out)
{
    struct awscreds_val sv;
    size_t n = 0, cap, tlen = 0;
    uint8_t *tok = NULL;
    char *body = NULL;
    bool web = c->kind == SRC_WEBID;
    int err = 0;
    if (web) {
        if ((err = snap_read_file(c->token_file, 64u << 10, &tok, &tlen)) != 0)
            return fetch_failed(c, err, "check that the web identity token file exists and is readable");
        while (tlen && (tok[tlen - 1] == '\n' || tok[tlen - 1] == '\r' || tok[tlen - 1] == ' '))
            tlen--;
        tok[tlen] = '\0';
    } else if ((err = awscreds_get(c->src, &sv, &(uint64_t){0})) != 0) {
        return snap_fail_ctx(SNAP_EAUTH, "the source credentials of %s", c->source);
    }
    cap = 3 * tlen + 8192; /* every byte of the token percent-encoded, and the rest */
    struct http_hdrs h;
    http_hdrs_init(&h);
    http_hdrs_add(&h, "Content-Type", "application/x-www-form-urlencoded");
    if (!(body = snap_malloc(cap)))
        err = snap_fail(SNAP_ENOMEM, "out of memory");
    if (!err)
        err = sts_body(c, web ? (char *)tok : NULL, body, cap, &n);
    if (!err && !web)
        err = sts_sign(c, &sv, body, n, &h);
    if (!err) {
        struct http_response rs;
        http_response_init(&rs);
        err = call(c, "POST", c->sts_url, &h, body, n, &rs);
        if (!err) {
            err = awscreds_parse_sts(rs.body.data, rs.body.len, out);
        } else if (rs.status >= 400 && rs.body.len) { /* STS's <ErrorResponse> says more than the status */
            char http_msg[600];
            snprintf(http_msg, sizeof http_msg, "%s", snap_errmsg(err));
            if (awscreds_parse_sts(rs.body.data, rs.body.len, out) == SNAP_EAUTH)
                err = snap_fail_ctx(SNAP_EAUTH, "HTTP %d", rs.status);
            else
                snap_fail(err, "%s", http_msg);
        }
        http_response_free(&rs);
    }
    if (body)
        memset(body, 0, n);
    snap_free(body);
    if (tok)
        memset(tok, 0, tlen);
    snap_free(tok);
    memset(&sv, 0, sizeof sv);
    if (err)
        return fetch_failed(c, err, web ? "check the role's trust policy for this identity provider, the token "
                                          "file, and the STS endpoint (AWS_ENDPOINT_URL_STS)"
                                        : "check role_arn, that the source credentials may assume it, and the "
                                          "STS endpoint (AWS_ENDPOINT_URL_STS)");
    return 0;
}

/* ---- credential_process ---- */

static int process_run(struct awscreds *c, uint8_t *buf, size_t cap, size_t *len, int *status)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return snap_fail_errno("credential_process: pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    char *argv[] = {"sh", "-c", c->command, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return snap_fail(SNAP_EAUTH, "credential_process: cannot run /bin/sh: %s", strerror(rc));
    }
    int err = 0;
    *len = 0;
    for (;;) {
        ssize_t r = read(fds[0], buf + *len, cap - 1 - *len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        *len += (size_t)r;
        if (*len == cap - 1) {
            err = snap_fail(SNAP_ETOOBIG, "credential_process printed more than %zu bytes", cap - 1);
            break;
        }
    }
    close(fds[0]);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return err;
}

static int process_fetch(struct awscreds *c, struct awscreds_val *out)
{
    uint8_t *buf = snap_malloc(ANSWER_MAX);
    if (!buf)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    size_t len = 0;
    int status = 0;
    int err = process_run(c, buf, ANSWER_MAX, &len, &status);
    if (!err && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        err = snap_fail(SNAP_EAUTH, "the command %s %d", WIFEXITED(status) ? "exited with status" : "died of signal",
                        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    if (!err)
        err = awscreds_parse_json(buf, len, out);
    memset(buf, 0, len);
    snap_free(buf);
    if (err)
        return fetch_failed(c, err, "run the command by hand: it must print {\"Version\": 1, \"AccessKeyId\", "
                                    "\"SecretAccessKey\"[, \"SessionToken\", \"Expiration\"]} and exit 0");
    return 0;
}

/* ---- container endpoint, IMDS ---- */

static int json_answer(struct awscreds *c, const char *u, struct http_hdrs *h, struct awscreds_val *out)
{
    struct http_response rs;
    http_response_init(&rs);
    int err = call(c, "GET", u, h, NULL, 0, &rs);
    if (!err)
        err = awscreds_parse_json(rs.body.data, rs.body.len, out);
    http_response_free(&rs);
    return err;
}

static int container_fetch(struct awscreds *c, struct awscreds_val *out)
{
    struct http_hdrs h;
    http_hdrs_init(&h);
    int err = 0;
    if (c->auth_file[0]) {
        uint8_t *t;
        size_t n;
        if ((err = snap_read_file(c->auth_file, sizeof c->auth_token, &t, &n)) != 0)
            return fetch_failed(c, err, "check AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        while (n && (t[n - 1] == '\n' || t[n - 1] == '\r'))
            n--;
        t[n] = '\0';
        err = http_hdrs_add(&h, "Authorization", (char *)t);
        memset(t, 0, n);
        snap_free(t);
    } else if (c->auth_token[0]) {
        err = http_hdrs_add(&h, "Authorization", c->auth_token);
    }
    if (!err)
        err = json_answer(c, c->url, &h, out);
    if (err)
        return fetch_failed(c, err, "check the task or pod role and, where the endpoint wants one, "
                                    "AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]");
    return 0;
}

/* An IMDSv2 session token (cached), or "" when the service only speaks IMDSv1. */
static int imds_token(struct awscreds *c, bool renew)
{
    int64_t now = time(NULL);
    if (!renew && c->imds_token[0] && now < c->imds_token_until)
        return 0;
    c->imds_token[0] = '\0';
    char u[1100], ttl[16];
    fmt(u, sizeof u, "%s/latest/api/token", c->url);
    fmt(ttl, sizeof ttl, "%d", IMDS_TOKEN_TTL);
    struct http_hdrs h;
    http_hdrs_init(&h);
    http_hdrs_add(&h, "X-aws-ec2-metadata-token-ttl-seconds", ttl);
    struct http_response rs;
    http_response_init(&rs);
    int err = call(c, "PUT", u, &h, "", 0, &rs);
    if (!err) {
        size_t n = rs.body.len;
        if (n == 0 || n >= sizeof c->imds_token || memchr(rs.body.data, '\r', n) || memchr(rs.body.data, '\n', n) ||
            memchr(rs.body.data, '\0', n))
            err = snap_fail(SNAP_EPROTO, "PUT %s: the session token is not 1..%zu characters on one line", u,
                            sizeof c->imds_token - 1);
        else {
            memcpy(c->imds_token, rs.body.data, n);
            c->imds_token[n] = '\0';
            c->imds_token_until = now + IMDS_TOKEN_TTL - 60;
        }
    } else if (rs.status == 404 || rs.status == 405) {
        err = 0; /* IMDSv1 only */
        snap_errclear();
    }
    http_response_free(&rs);
    return err;
}

/* GET a metadata path with the session token, renewing the token once on 401. */
static int imds_get(struct awscreds *c, const char *path, struct http_response *rs)
{
    char u[1400];
    fmt(u, sizeof u, "%s%s", c->url, path);
    int err = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        if ((err = imds_token(c, attempt > 0)) != 0)
            return err;
        struct http_hdrs h;
        http_hdrs_init(&h);
        if (c->imds_token[0])
            http_hdrs_add(&h, "X-aws-ec2-metadata-token", c->imds_token);
        http_response_free(rs);
        http_response_init(rs);
        err = call(c, "GET", u, &h, NULL, 0, rs);
        if (!(err && rs->status == 401))
            break;
    }
    return err;
}

static int imds_fetch(struct awscreds *c, struct awscreds_val *out)
{
    static const char base[] = "/latest/meta-data/iam/security-credentials/";
    struct http_response rs;
    http_response_init(&rs);
    char path[300];
    int err = imds_get(c, base, &rs);
    if (!err) {
        size_t n = 0;
        const char *b = (const char *)rs.body.data;
        while (n < rs.body.len && n < 128 && b[n] != '\n' && b[n] != '\r' &&
               (strchr("+=,.@_-", b[n]) || (b[n] >= '0' && b[n] <= '9') || ((b[n] | 0x20) >= 'a' && (b[n] | 0x20) <= 'z')))
            n++;
        if (n == 0 || (n < rs.body.len && b[n] != '\n' && b[n] != '\r'))
            err = snap_fail(SNAP_EAUTH, "the instance has no IAM role (GET %s gave no role name)", base);
        else
            fmt(path, sizeof path, "%s%.*s", base, (int)n, b);
    }
    if (!err)
        err = imds_get(c, path, &rs);
    if (!err)
        err = awscreds_parse_json(rs.body.data, rs.body.len, out);
    http_response_free(&rs);
    if (err)
        return fetch_failed(c, err, "outside EC2 set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE "
                                    "(AWS_EC2_METADATA_DISABLED=true skips the metadata service); on EC2 check "
                                    "that the instance has an IAM role and that the metadata hop limit reaches "
                                    "this host");
    return 0;
}

static int fetch(struct awscreds *c, struct awscreds_val *out)
{
    switch (c->kind) {
    case SRC_WEBID:
    case SRC_ASSUME: return sts_fetch(c, out);
    case SRC_PROCESS: return process_fetch(c, out);
    case SRC_CONTAINER: return container_fetch(c, out);
    case SRC_IMDS: return imds_fetch(c, out);
    case SRC_STATIC: break;
    }
    return 0;
}

/* ---- the cache ---- */

int awscreds_get(struct awscreds *c, struct awscreds_val *v, uint64_t *gen)
{
    pthread_mutex_lock(&c->mu);
    int err = 0;
    int64_t now = time(NULL);
    if (c->kind != SRC_STATIC && credcache_due(&c->cc, now)) {
        struct awscreds_val *fresh = snap_malloc(sizeof *fresh);
        err = fresh ? fetch(c, fresh) : snap_fail(SNAP_ENOMEM, "out of memory");
        if (!err) {
            int64_t ttl = fresh->expires ? fresh->expires - now : 0;
            c->v = *fresh;
            credcache_fresh(&c->cc, now, fresh->expires ? fresh->expires : INT64_MAX, MARGIN_MAX);
            snap_log(c->cc.gen > 1 ? SNAP_LOG_INFO : SNAP_LOG_DEBUG, "aws: credentials from %s (access key ...%s), %s%lld s", c->source,
                      strlen(c->v.ak) > 4 ? c->v.ak + strlen(c->v.ak) - 4 : "", ttl ? "valid for " : "no expiry",
                      ttl ? (long long)ttl : 0LL);
        } else if (credcache_keep(&c->cc, now, REFRESH_RETRY_S)) {
            /* Keep them, and let the next try wait: every signer would otherwise sit through
             * the failing service's timeout again. */
            snap_warn("aws: %s; using the current credentials for their last %lld s", snap_errmsg(err),
                      (long long)(c->v.expires - now));
            err = 0;
        }
        if (fresh)
            memset(fresh, 0, sizeof *fresh);
        snap_free(fresh);
    }
    if (!err) {
        *v = c->v;
        *gen = c->cc.gen;
    }
    pthread_mutex_unlock(&c->mu);
    return err;
}

int awscreds_refused(struct awscreds *c, uint64_t gen)
{
    if (c->kind == SRC_STATIC)
        return snap_fail(SNAP_EAUTH, "the credentials from %s were refused as expired and cannot be refreshed",
                         c->source);
    pthread_mutex_lock(&c->mu);
    credcache_refused(&c->cc, gen);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

/* ---- choosing the source ---- */

static void files_load(struct awsfiles *f)
{
    const char *home = env("HOME") ? env("HOME") : "/";
    const char *cp = env("AWS_SHARED_CREDENTIALS_FILE"), *fp = env("AWS_CONFIG_FILE");
    if (cp)
        fmt(f->cred_path, sizeof f->cred_path, "%s", cp);
    else
        fmt(f->cred_path, sizeof f->cred_path, "%s/.aws/credentials", home);
    if (fp)
        fmt(f->conf_path, sizeof f->conf_path, "%s", fp);
    else
        fmt(f->conf_path, sizeof f->conf_path, "%s/.aws/config", home);
    uint8_t *b;
    if (snap_read_file(f->cred_path, FILE_MAX, &b, &f->cred_len) == 0)
        f->cred = (char *)b;
    if (snap_read_file(f->conf_path, FILE_MAX, &b, &f->conf_len) == 0)
        f->conf = (char *)b;
    snap_errclear();
}

static void files_free(struct awsfiles *f)
{
    if (f->cred)
        memset(f->cred, 0, f->cred_len);
    snap_free(f->cred);
    snap_free(f->conf);
}

static const char *profile_name(void)
{
    const char *p = env("AWS_PROFILE");
    return p ? p : env("AWS_DEFAULT_PROFILE") ? env("AWS_DEFAULT_PROFILE") : "default";
}

/* A key of a profile: the credentials file's [NAME] first, then the config file's
 * [profile NAME] (or [default]).  0, SNAP_ENOTFOUND, SNAP_ETOOBIG. */
static int prof_get(const struct awsfiles *f, const char *profile, const char *key, char *out, size_t cap)
{
    int err = awscreds_ini_get(f->cred, f->cred_len, profile, key, out, cap);
    if (err != SNAP_ENOTFOUND)
        return err;
    char sec[300];
    fmt(sec, sizeof sec, "profile %s", profile);
    err = awscreds_ini_get(f->conf, f->conf_len, sec, key, out, cap);
    if (err == SNAP_ENOTFOUND && !strcmp(profile, "default"))
        err = awscreds_ini_get(f->conf, f->conf_len, "default", key, out, cap);
    return err;
}

static bool prof_exists(const struct awsfiles *f, const char *profile)
{
    char sec[300];
    fmt(sec, sizeof sec, "profile %s", profile);
    return awscreds_ini_has(f->cred, f->cred_len, profile) || awscreds_ini_has(f->conf, f->conf_len, sec) ||
           (!strcmp(profile, "default") && awscreds_ini_has(f->conf, f->conf_len, "default"));
}

void awscreds_region(char *out, size_t n, const struct awscreds *c);

static void sts_setup(struct awscreds *c)
{
    const char *u = env("AWS_ENDPOINT_URL_STS") ? env("AWS_ENDPOINT_URL_STS") : env("AWS_ENDPOINT_URL");
    awscreds_region(c->sts_region, sizeof c->sts_region, NULL);
    if (u)
        fmt(c->sts_url, sizeof c->sts_url, "%s", u);
    else if (c->sts_region[0])
        fmt(c->sts_url, sizeof c->sts_url, "https://sts.%s.amazonaws.com/", c->sts_region);
    else
        fmt(c->sts_url, sizeof c->sts_url, "https://sts.amazonaws.com/");
    if (!c->sts_region[0])
        fmt(c->sts_region, sizeof c->sts_region, "us-east-1");
    if (!c->session_name[0])
        fmt(c->session_name, sizeof c->session_name, "snapctl-%lld", (long long)time(NULL));
}

static int new_static(const char *ak, const char *sk, const char *tok, const char *what, struct awscreds **out)
{
    if (strlen(ak) >= AWSCREDS_KEY_MAX || strlen(sk) >= AWSCREDS_KEY_MAX || strlen(tok) >= AWSCREDS_TOKEN_MAX)
        return snap_fail(SNAP_EAUTH, "%s: a key or the session token is too long", what);
    struct awscreds *c = creds_alloc(SRC_STATIC);
    if (!c)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    fmt(c->v.ak, sizeof c->v.ak, "%s", ak);
    fmt(c->v.sk, sizeof c->v.sk, "%s", sk);
    fmt(c->v.token, sizeof c->v.token, "%s", tok);
    credcache_set_static(&c->cc);
    fmt(c->source, sizeof c->source, "%s", what);
    *out = c;
    return 0;
}

static int new_env(struct awscreds **out)
{
    const char *ak = env("AWS_ACCESS_KEY_ID"), *sk = env("AWS_SECRET_ACCESS_KEY");
    if (!ak || !sk)
        return snap_fail(SNAP_EAUTH, "the environment has %s but not %s", ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                         ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
    const char *tok = env("AWS_SESSION_TOKEN") ? env("AWS_SESSION_TOKEN") : env("AWS_SECURITY_TOKEN");
    return new_static(ak, sk, tok ? tok : "", "the environment (AWS_ACCESS_KEY_ID)", out);
}

static int new_webid(const char *file, const char *arn, const char *session, const char *origin, struct awscreds **out)
{
    struct awscreds *c = creds_alloc(SRC_WEBID);
    if (!c)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    fmt(c->token_file, sizeof c->token_file, "%s", file);
    fmt(c->role_arn, sizeof c->role_arn, "%s", arn);
    fmt(c->session_name, sizeof c->session_name, "%s", session ? session : "");
    sts_setup(c);
    fmt(c->source, sizeof c->source, "web identity (%s, token file %s, role %s) via STS %s", origin, file, arn,
             c->sts_url);
    *out = c;
    return make_client(c, 10000, 3);
}

static int new_container(struct awscreds **out)
{
    const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    struct awscreds *c = creds_alloc(SRC_CONTAINER);
    if (!c)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    *out = c;
    if (rel)
        fmt(c->url, sizeof c->url, "%s%s", AWSCREDS_DEFAULT_ECS_HOST, rel);
    else
        fmt(c->url, sizeof c->url, "%s", full);
    struct url u;
    if (url_parse(c->url, &u) != 0)
        return snap_fail(SNAP_EAUTH, "%s is not a URL", rel ? "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" :
                         "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    /* The AWS SDKs' rule: plain http only to loopback or the ECS / EKS link-local hosts. */
    bool ok = u.scheme == URL_HTTPS ||
              (u.scheme == URL_HTTP && (!strncmp(u.host, "127.", 4) || !strcmp(u.host, "localhost") ||
                                        !strcmp(u.host, "::1") || !strcmp(u.host, "169.254.170.2") ||
                                        !strcmp(u.host, "169.254.170.23") || !strcmp(u.host, "fd00:ec2::23")));
    url_free(&u);
    if (!ok)
        return snap_fail(SNAP_EAUTH, "AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http:// is taken only to a loopback "
                         "address or 169.254.170.2/.23; use https://");
    const char *tf = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"), *tok = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    if (tf)
        fmt(c->auth_file, sizeof c->auth_file, "%s", tf);
    else if (tok && strlen(tok) < sizeof c->auth_token)
        fmt(c->auth_token, sizeof c->auth_token, "%s", tok);
    fmt(c->source, sizeof c->source, "the container credentials endpoint %s (%s%s)", c->url,
             rel ? "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" : "AWS_CONTAINER_CREDENTIALS_FULL_URI",
             tf ? ", token file" : tok ? ", token" : "");
    return make_client(c, 2000, 3);
}

static unsigned env_uint(const char *name, unsigned def, unsigned max)
{
    const char *v = env(name);
    char *end;
    unsigned long n = v ? strtoul(v, &end, 10) : 0;
    return v && !*end && n >= 1 && n <= max ? (unsigned)n : def;
}

/* The IMDS base URL (no trailing '/') into out; false when it is disabled. */
static bool imds_base(char *out, size_t n)
{
    const char *dis = env("AWS_EC2_METADATA_DISABLED");
    if (dis && !strcasecmp(dis, "true"))
        return false;
    const char *ep = env("AWS_EC2_METADATA_SERVICE_ENDPOINT"), *mode = env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
    fmt(out, n, "%s", ep ? ep : mode && !strcasecmp(mode, "IPv6") ? "http://[fd00:ec2::254]" :
             AWSCREDS_DEFAULT_IMDS);
    size_t l = strlen(out);
    while (l && out[l - 1] == '/')
        out[--l] = '\0';
    return true;
}

static int new_imds(struct awscreds **out)
{
    struct awscreds *c = creds_alloc(SRC_IMDS);
    if (!c)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    *out = c;
    if (!imds_base(c->url, sizeof c->url))
        return snap_fail(SNAP_EAUTH, "AWS_EC2_METADATA_DISABLED is set");
    fmt(c->source, sizeof c->source, "the EC2 instance metadata service at %s%s", c->url,
             env("AWS_EC2_METADATA_SERVICE_ENDPOINT") ? " (AWS_EC2_METADATA_SERVICE_ENDPOINT)" : "");
    unsigned t = env_uint("AWS_METADATA_SERVICE_TIMEOUT", 1, 300), a = env_uint("AWS_METADATA_SERVICE_NUM_ATTEMPTS", 1, 10);
    return make_client(c, t * 1000, a);
}

static int new_profile(const struct awsfiles *f, const char *profile, int depth, struct awscreds **out);

/* A profile with role_arn: AssumeRole with the credentials of source_profile or credential_source. */
static int new_assume(const struct awsfiles *f, const char *profile, const char *arn, int depth, struct awscreds **out)
{
    char srcp[256] = "", csrc[64] = "", v[256];
    prof_get(f, profile, "source_profile", srcp, sizeof srcp);
    prof_get(f, profile, "credential_source", csrc, sizeof csrc);
    struct awscreds *c = creds_alloc(SRC_ASSUME);
    if (!c)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    *out = c;
    fmt(c->role_arn, sizeof c->role_arn, "%s", arn);
    if (prof_get(f, profile, "role_session_name", v, sizeof v) == 0)
        fmt(c->session_name, sizeof c->session_name, "%s", v);
    prof_get(f, profile, "external_id", c->external_id, sizeof c->external_id);
    if (prof_get(f, profile, "duration_seconds", v, sizeof v) == 0 && atoi(v) >= 900 && atoi(v) <= 43200)
        c->duration = (unsigned)atoi(v);
    sts_setup(c);
    int err;
    char ak[AWSCREDS_KEY_MAX], sk[AWSCREDS_KEY_MAX];
    if (srcp[0] && !strcmp(srcp, profile)) { /* its own keys sign the call */
        if (prof_get(f, profile, "aws_access_key_id", ak, sizeof ak) || prof_get(f, profile, "aws_secret_access_key", sk, sizeof sk))
            return snap_fail(SNAP_EAUTH, "profile %s names itself as source_profile but has no keys", profile);
        err = new_static(ak, sk, "", "its own keys", &c->src);
        memset(sk, 0, sizeof sk);
    } else if (srcp[0]) {
        err = new_profile(f, srcp, depth + 1, &c->src);
    } else if (!strcmp(csrc, "Environment")) {
        err = new_env(&c->src);
    } else if (!strcmp(csrc, "Ec2InstanceMetadata")) {
        err = new_imds(&c->src);
    } else if (!strcmp(csrc, "EcsContainer")) {
        err = new_container(&c->src);
    } else {
        return snap_fail(SNAP_EAUTH, "profile %s has role_arn but no source_profile or credential_source "
                         "(Environment, Ec2InstanceMetadata, EcsContainer)", profile);
    }
    if (err == SNAP_ENOTFOUND)
        return snap_fail(SNAP_EAUTH, "profile %s: its source_profile %s has no credentials", profile, srcp);
    if (err)
        return snap_fail_ctx(SNAP_EAUTH, "profile %s", profile);
    fmt(c->source, sizeof c->source, "profile %s: role %s via STS %s, signed with %s", profile, arn, c->sts_url,
             c->src->source);
    return make_client(c, 10000, 3);
}

/* The profile's credentials; SNAP_ENOTFOUND when it configures none. */
static int new_profile(const struct awsfiles *f, const char *profile, int depth, struct awscreds **out)
{
    if (depth >= AWSCREDS_MAX_DEPTH)
        return snap_fail(SNAP_EAUTH, "profile %s: source_profile chain longer than %d (a loop?)", profile,
                         AWSCREDS_MAX_DEPTH);
    char arn[ARN_MAX], tf[1024], proc[4096], ak[AWSCREDS_KEY_MAX], sk[AWSCREDS_KEY_MAX], tok[AWSCREDS_TOKEN_MAX] = "";
    int err;
    if ((err = prof_get(f, profile, "role_arn", arn, sizeof arn)) == 0) {
        if (prof_get(f, profile, "web_identity_token_file", tf, sizeof tf) == 0) {
            char sn[128] = "";
            prof_get(f, profile, "role_session_name", sn, sizeof sn);
            return new_webid(tf, arn, sn, "profile", out);
        }
        return new_assume(f, profile, arn, depth, out);
    }
    if (err == SNAP_ETOOBIG)
        return snap_fail_ctx(SNAP_EAUTH, "profile %s", profile);
    if ((err = prof_get(f, profile, "aws_access_key_id", ak, sizeof ak)) == 0) {
        if (prof_get(f, profile, "aws_secret_access_key", sk, sizeof sk) != 0)
            return snap_fail(SNAP_EAUTH, "profile %s has aws_access_key_id but no aws_secret_access_key (%s, %s)",
                             profile, f->cred_path, f->conf_path);
        prof_get(f, profile, "aws_session_token", tok, sizeof tok);
        char what[1200];
        fmt(what, sizeof what, "profile %s of %s", profile,
                 awscreds_ini_has(f->cred, f->cred_len, profile) ? f->cred_path : f->conf_path);
        err = new_static(ak, sk, tok, what, out);
        memset(sk, 0, sizeof sk);
        memset(tok, 0, sizeof tok);
        return err;
    }
    if (prof_get(f, profile, "credential_process", proc, sizeof proc) == 0) {
        struct awscreds *c = creds_alloc(SRC_PROCESS);
        if (!c || !(c->command = snap_strdup(proc))) {
            awscreds_free(c);
            return snap_fail(SNAP_ENOMEM, "out of memory");
        }
        fmt(c->source, sizeof c->source, "profile %s: credential_process", profile);
        *out = c;
        return 0;
    }
    if (depth > 0 && !prof_exists(f, profile))
        return snap_fail(SNAP_EAUTH, "source_profile %s is not in %s or %s", profile, f->cred_path, f->conf_path);
    return SNAP_ENOTFOUND;
}

/* The chain, without fetching. */
static int resolve(struct awscreds **out)
{
    *out = NULL;
    if (env("AWS_ACCESS_KEY_ID") || env("AWS_SECRET_ACCESS_KEY"))
        return new_env(out);
    const char *tf = env("AWS_WEB_IDENTITY_TOKEN_FILE"), *arn = env("AWS_ROLE_ARN");
    if (tf && arn)
        return new_webid(tf, arn, env("AWS_ROLE_SESSION_NAME"), "AWS_WEB_IDENTITY_TOKEN_FILE", out);
    struct awsfiles f = {0};
    files_load(&f);
    const char *profile = profile_name();
    bool named = env("AWS_PROFILE") || env("AWS_DEFAULT_PROFILE");
    int err;
    if (named && !prof_exists(&f, profile)) /* a profile asked for must exist (the CLI's rule) */
        err = snap_fail(SNAP_EAUTH, "AWS_PROFILE: profile %s is not in %s or %s", profile, f.cred_path, f.conf_path);
    else
        err = new_profile(&f, profile, 0, out);
    files_free(&f);
    if (err != SNAP_ENOTFOUND)
        return err;
    snap_errclear();
    awscreds_free(*out);
    *out = NULL;
    if (env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || env("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
        return new_container(out);
    char base[8];
    if (!imds_base(base, sizeof base))
        return snap_fail(SNAP_EAUTH, "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile "
                         "in ~/.aws/credentials or ~/.aws/config (AWS_PROFILE), AWS_WEB_IDENTITY_TOKEN_FILE with "
                         "AWS_ROLE_ARN, or a container credentials endpoint (AWS_EC2_METADATA_DISABLED is set, so "
                         "the instance metadata service was not asked)");
    return new_imds(out);
}

int awscreds_new(struct awscreds **out)
{
    struct awscreds *c;
    int err = resolve(&c);
    struct awscreds_val v;
    uint64_t gen;
    if (!err)
        err = awscreds_get(c, &v, &gen);
    memset(&v, 0, sizeof v);
    if (err) {
        awscreds_free(c);
        return err;
    }
    *out = c;
    return 0;
}

static bool imds_region(char *out, size_t n)
{
    struct awscreds *c = NULL;
    bool ok = false;
    if (new_imds(&c) == 0) {
        struct http_response rs;
        http_response_init(&rs);
        if (imds_get(c, "/latest/meta-data/placement/region", &rs) == 0 && rs.body.len && rs.body.len < n &&
            rs.body.len < 64) {
            ok = true;
            for (size_t i = 0; i < rs.body.len; i++)
                ok &= (rs.body.data[i] >= 'a' && rs.body.data[i] <= 'z') || (rs.body.data[i] >= '0' && rs.body.data[i] <= '9') ||
                      rs.body.data[i] == '-';
            if (ok)
                fmt(out, n, "%.*s", (int)rs.body.len, (const char *)rs.body.data);
        }
        http_response_free(&rs);
    }
    awscreds_free(c);
    snap_errclear();
    return ok;
}

void awscreds_region(char *out, size_t n, const struct awscreds *c)
{
    bool imds_ok = c && c->kind == SRC_IMDS;
    const char *r = env("AWS_REGION") ? env("AWS_REGION") : env("AWS_DEFAULT_REGION");
    out[0] = '\0';
    if (r) {
        fmt(out, n, "%s", r);
        return;
    }
    struct awsfiles f = {0};
    files_load(&f);
    char sec[300];
    const char *profile = profile_name();
    fmt(sec, sizeof sec, "profile %s", profile);
    if (awscreds_ini_get(f.conf, f.conf_len, sec, "region", out, n) != 0 &&
        (strcmp(profile, "default") != 0 || awscreds_ini_get(f.conf, f.conf_len, "default", "region", out, n) != 0))
        out[0] = '\0';
    files_free(&f);
    snap_errclear();
    if (!out[0] && imds_ok)
        imds_region(out, n);
}
