/* peer_client.c -- the peer:// backend: another host's `snapctl peer serve`, read with ranged GETs.
 *
 * See peer_client.h.  The host is resolved and checked against the allowlist once, at open; the HTTP
 * client then dials the numeric address, so a later DNS answer cannot point it elsewhere.
 * Keys must be {uuid}/{file}: anything else is "not found" without a request.
 */
#include "store/peer_client.h"

#include "base/err.h"
#include "base/mem.h"
#include "base/util.h"
#include "net/http.h"
#include "net/url.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

struct peer_store {
    struct store base;
    struct url url; /* http(s)://NUMERIC:PORT */
    struct http_client *client;
};

bool store_is_peer(const struct store *s)
{
    return s && (s->ops == &store_peer_ops || s->ops == &store_peers_ops || s->ops == &store_peer_registry_ops);
}

int store_peer_url(const char *addr, char *url, size_t cap)
{
    bool bare = !strstr(addr, "://");
    if (!bare && strncmp(addr, "peer://", 7) != 0 && strncmp(addr, "peers://", 8) != 0)
        return snap_fail(SNAP_EUSAGE, "'%s': a peer is HOST:PORT, peer://HOST:PORT or peers://HOST:PORT", addr);
    if ((size_t)snprintf(url, cap, "%s%s", bare ? "peer://" : "", addr) >= cap)
        return snap_fail(SNAP_EUSAGE, "peer address '%.40s...' is too long (%zu bytes at most)", addr, cap - 8);
    return 0;
}

int store_peer_check_addr(const char *host, const struct httpd_cidr *allow, size_t nallow, char *numeric,
                          size_t cap)
{
    struct httpd_cidr loopback[2];
    if (!nallow) {
        httpd_cidr_parse("127.0.0.0/8", &loopback[0]);
        httpd_cidr_parse("::1/128", &loopback[1]);
        allow = loopback;
        nallow = 2;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, NULL, &hints, &res);
    if (g != 0 || !res)
        return snap_fail(SNAP_ENET, "peer '%s': cannot resolve: %s", host, g ? gai_strerror(g) : "no address");
    int err = 0;
    numeric[0] = '\0';
    for (struct addrinfo *ai = res; ai && !err; ai = ai->ai_next) {
        char a[INET6_ADDRSTRLEN] = "?";
        const void *p = ai->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                                 : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        inet_ntop(ai->ai_family, p, a, sizeof a);
        if (!httpd_cidr_match(allow, nallow, ai->ai_addr))
            err = snap_fail(SNAP_EAUTH,
                            "peer '%s' (%s) is not in the peer allowlist (%s); not dialing it -- add "
                            "--peer-allow CIDR if this host really is a peer",
                            host, a, allow == loopback ? "default: loopback only" : "--peer-allow");
        else if (!numeric[0])
            snprintf(numeric, cap, "%s", a);
    }
    freeaddrinfo(res);
    return err;
}

int store_peer_open(const char *u, const struct store_opts *o, const struct httpd_cidr *allow, size_t nallow,
                    struct store **out)
{
    /* peers://host:port is peer:// over TLS (with the system's CAs unless ca_file says). */
    bool tls = o->ca_file != NULL;
    char plain[512];
    if (strncmp(u, "peers://", 8) == 0) {
        tls = true;
        if ((size_t)snprintf(plain, sizeof plain, "peer://%s", u + 8) >= sizeof plain)
            return snap_fail(SNAP_EUSAGE, "peer URL too long");
    } else {
        snprintf(plain, sizeof plain, "%s", u);
    }
    struct url pu;
    int err = url_parse(plain, &pu);
    if (err)
        return err;
    if (pu.scheme != URL_PEER || (pu.path[0] && strcmp(pu.path, "/") != 0) || pu.query || pu.user) {
        url_free(&pu);
        return snap_fail(SNAP_EUSAGE, "'%s': a peer is peer://HOST:PORT, nothing more", u);
    }
    char num[INET6_ADDRSTRLEN], hu[INET6_ADDRSTRLEN + 32];
    err = store_peer_check_addr(pu.host, allow, nallow, num, sizeof num);
    if (!err)
        snprintf(hu, sizeof hu, strchr(num, ':') ? "%s://[%s]:%u" : "%s://%s:%u", tls ? "https" : "http", num,
                 (unsigned)pu.port);
    url_free(&pu);
    if (err)
        return err;
    struct peer_store *ps = snap_calloc(1, sizeof *ps);
    if (!ps)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    if ((err = url_parse(hu, &ps->url)) != 0) {
        snap_free(ps);
        return err;
    }
    struct http_opts ho = {
        .connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : PEER_DEFAULT_TIMEOUT_MS,
        .tls_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : PEER_DEFAULT_TIMEOUT_MS,
        .idle_timeout_ms = o->idle_timeout_ms ? o->idle_timeout_ms : PEER_DEFAULT_TIMEOUT_MS,
        .ca_file = o->ca_file,
    };
    http_retry_defaults(&ho.retry);
    ho.retry.max_attempts = o->max_attempts ? o->max_attempts : 1; /* the fallback is storage, not a retry */
    if ((err = http_client_new(&ho, &ps->client)) != 0 || !(ps->base.url = snap_strdup(u))) {
        if (!err)
            err = snap_fail(SNAP_ENOMEM, "out of memory");
        http_client_free(ps->client);
        url_free(&ps->url);
        snap_free(ps);
        return err;
    }
    ps->base.ops = tls ? &store_peers_ops : &store_peer_ops;
    *out = &ps->base;
    return 0;
}

static int ps_open(const char *u, const struct store_opts *o, struct store **out)
{
    return store_peer_open(u, o, NULL, 0, out);
}

static void ps_close(struct store *s)
{
    struct peer_store *ps = (struct peer_store *)s;
    http_client_free(ps->client);
    url_free(&ps->url);
    snap_free(ps->base.url);
    snap_free(ps);
}

/* "/v1/builds/{uuid}/{file}" for a key of exactly that shape. */
static int ps_target(struct peer_store *ps, const char *key, char *out, size_t cap)
{
    const char *slash = strchr(key, '/');
    char id[SNAP_UUID_STRLEN + 1];
    snap_uuid u;
    if (!slash || slash - key != SNAP_UUID_STRLEN || strchr(slash + 1, '/') || !slash[1])
        return snap_fail(SNAP_ENOTFOUND, "%s: '%s' is not a build object ({uuid}/{file})", ps->base.url, key);
    memcpy(id, key, SNAP_UUID_STRLEN);
    id[SNAP_UUID_STRLEN] = '\0';
    if (snap_uuid_parse(id, &u))
        return snap_fail(SNAP_ENOTFOUND, "%s: '%s' does not start with a build UUID", ps->base.url, key);
    size_t n = (size_t)snprintf(out, cap, "/v1/builds/%s/", id), enc;
    int err = n < cap ? url_encode(slash + 1, strlen(slash + 1), "", out + n, cap - n, &enc) : SNAP_ETOOBIG;
    return err ? snap_fail(SNAP_EUSAGE, "%s: key too long", ps->base.url) : 0;
}

/* A failed exchange: 410 + X-Snapctl-Use-Storage is "use storage"; 404 is "not found". */
static int ps_error(struct peer_store *ps, const char *key, const struct http_response *rs, int err,
                    bool *use_storage)
{
    if (rs->status == 410) {
        const char *h = http_head_get(&rs->head, "X-Snapctl-Use-Storage");
        if (h && strcmp(h, "1") == 0) {
            *use_storage = true;
            return snap_fail(SNAP_ENOTFOUND, "%s/%s: the peer's upload of this build finished: read it from storage",
                             ps->base.url, key);
        }
    }
    if (rs->status == 404 || rs->status == 410)
        return snap_fail(SNAP_ENOTFOUND, "%s/%s: not on this peer (HTTP %d)", ps->base.url, key, rs->status);
    if (rs->status == 400 && rs->body.data && strstr((const char *)rs->body.data, "speaks TLS only"))
        return snap_fail(SNAP_ETLS, "%s: the peer speaks TLS only; give --peer-ca FILE (or use peers://)",
                         ps->base.url);
    if (rs->status == 403)
        return snap_fail(SNAP_EAUTH, "%s/%s: the peer refused (HTTP 403)", ps->base.url, key);
    return err;
}

int store_peer_stat_ex(struct store *s, const char *key, struct store_info *info, bool *use_storage)
{
    if (store_is_peer_registry(s))
        return store_peer_registry_stat_ex(s, key, info, use_storage);
    struct peer_store *ps = (struct peer_store *)s;
    *use_storage = false;
    char target[256];
    int err = ps_target(ps, key, target, sizeof target);
    if (err)
        return err;
    struct http_response rs;
    http_response_init(&rs);
    struct http_request rq = {.method = "HEAD", .url = &ps->url, .target = target, .sink = HTTP_SINK_DISCARD};
    err = http_do(ps->client, &rq, &rs);
    if (err)
        err = ps_error(ps, key, &rs, err, use_storage);
    else if (rs.total_size == HTTP_SIZE_UNKNOWN)
        err = snap_fail(SNAP_EPROTO, "%s/%s: the peer did not say the size", s->url, key);
    else
        info->size = rs.total_size;
    http_response_free(&rs);
    return err;
}

int store_peer_read_ex(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
                       store_progress_fn progress, void *ctx, struct store_read_result *res, bool *use_storage)
{
    if (store_is_peer_registry(s))
        return store_peer_registry_read_ex(s, key, off, len, dst, progress, ctx, res, use_storage);
    struct peer_store *ps = (struct peer_store *)s;
    *use_storage = false;
    char target[256];
    int err = ps_target(ps, key, target, sizeof target);
    if (err || len == 0)
        return err;
    struct http_response rs;
    http_response_init(&rs);
    err = http_get_range(ps->client, &ps->url, target, NULL, off, len, dst, progress, ctx, &rs);
    res->bytes = rs.bytes;
    if (rs.total_size != HTTP_SIZE_UNKNOWN)
        res->total_size = rs.total_size;
    if (err && rs.status == 416 && rs.total_size == off)
        err = 0;
    else if (err)
        err = ps_error(ps, key, &rs, err, use_storage);
    http_response_free(&rs);
    return err;
}

static int ps_stat(struct store *s, const char *key, struct store_info *info)
{
    bool gone;
    return store_peer_stat_ex(s, key, info, &gone);
}

static int ps_read(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
                   store_progress_fn progress, void *ctx, struct store_read_result *res)
{
    bool gone;
    return store_peer_read_ex(s, key, off, len, dst, progress, ctx, res, &gone);
}

const struct store_ops store_peer_ops = {
    .scheme = "peer", .open = ps_open, .close = ps_close, .stat = ps_stat, .read = ps_read,
};
const struct store_ops store_peers_ops = {
    .scheme = "peers", .open = ps_open, .close = ps_close, .stat = ps_stat, .read = ps_read,
};
