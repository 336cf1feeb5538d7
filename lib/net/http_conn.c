/* http_conn.c -- the client object and its keep-alive pool of connections. */
#include "net/http_int.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"

#include <stdio.h>
#include <string.h>

int http_client_new(const struct http_opts *o, struct http_client **out)
{
    struct http_client *c = snap_calloc(1, sizeof *c);
    if (!c)
        return snap_fail(SNAP_ENOMEM, "HTTP client");
    if (o)
        c->o = *o;
    if (!c->o.connect_timeout_ms)
        c->o.connect_timeout_ms = 10000;
    if (!c->o.tls_timeout_ms)
        c->o.tls_timeout_ms = 10000;
    if (!c->o.idle_timeout_ms)
        c->o.idle_timeout_ms = 30000;
    if (!c->o.max_idle)
        c->o.max_idle = 64;
    if (!c->o.max_idle_age_ms)
        c->o.max_idle_age_ms = 30000;
    http_retry_defaults(&c->o.retry);
    snprintf(c->user_agent, sizeof c->user_agent, "%s",
             c->o.user_agent ? c->o.user_agent : "snapctl/" SNAPCTL_VERSION);
    c->o.user_agent = c->user_agent;
    if (c->o.ca_file) {
        int e = tls_config_new(c->o.ca_file, &c->tls_own);
        if (e) {
            snap_free(c);
            return e;
        }
        c->o.ca_file = tls_config_ca_file(c->tls_own);
    }
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return 0;
}

static void conn_close(struct http_conn *k)
{
    tls_close(k->tls);
    sock_close(&k->sock);
    snap_free(k);
}

void http_client_free(struct http_client *c)
{
    if (!c)
        return;
    while (c->idle) {
        struct http_conn *k = c->idle;
        c->idle = k->next;
        conn_close(k);
    }
    pthread_mutex_destroy(&c->lock);
    tls_config_free(c->tls_own);
    snap_free(c);
}

void http_client_stats(struct http_client *c, struct http_stats *st)
{
    st->requests = atomic_load(&c->n_requests);
    st->connects = atomic_load(&c->n_connects);
    st->reused = atomic_load(&c->n_reused);
    st->stale = atomic_load(&c->n_stale);
    st->retries = atomic_load(&c->n_retries);
}

static bool conn_matches(const struct http_conn *k, const struct url *u)
{
    return k->scheme == u->scheme && k->port == u->port && strcmp(k->host, u->host) == 0;
}

/* Take the most recently used idle connection to u's origin off the list, or NULL. */
static struct http_conn *pool_take(struct http_client *c, const struct url *u)
{
    pthread_mutex_lock(&c->lock);
    struct http_conn **pp = &c->idle, *k;
    while ((k = *pp) && !conn_matches(k, u))
        pp = &k->next;
    if (k) {
        *pp = k->next;
        c->nidle--;
    }
    pthread_mutex_unlock(&c->lock);
    return k;
}

static int conn_open(struct http_client *c, const struct url *u, uint64_t deadline_ns, struct http_conn **out)
{
    struct tls_config *tc = NULL;
    if (url_is_tls(u)) {
        int e = c->tls_own ? (tc = c->tls_own, 0) : tls_config_system(&tc);
        if (e)
            return e;
    }
    struct http_conn *k = snap_malloc(sizeof *k + HTTP_RBUF_SIZE + HTTP_WBUF_SIZE);
    if (!k)
        return snap_fail(SNAP_ENOMEM, "HTTP connection");
    memset(k, 0, sizeof *k);
    sock_init(&k->sock);
    k->scheme = u->scheme;
    k->port = u->port;
    snprintf(k->host, sizeof k->host, "%s", u->host);
    k->rbuf = (uint8_t *)(k + 1);
    k->rcap = HTTP_RBUF_SIZE;
    k->wbuf = (char *)k->rbuf + HTTP_RBUF_SIZE;
    k->wcap = HTTP_WBUF_SIZE;
    k->sock.idle_ms = c->o.idle_timeout_ms;
    k->sock.deadline_ns = deadline_ns;
    int e = sock_connect(&k->sock, u->host, u->port, c->o.connect_timeout_ms);
    if (!e && tc)
        e = tls_connect(tc, &k->sock, u->host, c->o.tls_timeout_ms, &k->tls);
    if (e) {
        conn_close(k);
        return e;
    }
    k->addr_class = net_addr_peer(k->sock.fd, k->addr, sizeof k->addr);
    atomic_fetch_add(&c->n_connects, 1);
    *out = k;
    return 0;
}

int http_conn_get(struct http_client *c, const struct url *u, uint64_t deadline_ns, bool fresh,
                  struct http_conn **out, bool *reused)
{
    struct http_conn *k;
    while (!fresh && (k = pool_take(c, u))) {
        /* Too old (the server has likely dropped it) or visibly closed: throw it away.  The
         * clock is read after the take: another thread may have released k a moment ago. */
        uint64_t now = snap_now_ns();
        bool old = now > k->idle_since_ns && now - k->idle_since_ns > (uint64_t)c->o.max_idle_age_ms * 1000000;
        if (old || !sock_alive(&k->sock) || (k->tls && tls_pending(k->tls))) {
            conn_close(k);
            continue;
        }
        k->rpos = k->rend = 0;
        *out = k;
        *reused = true;
        return 0;
    }
    *reused = false;
    return conn_open(c, u, deadline_ns, out);
}

void http_conn_release(struct http_client *c, struct http_conn *k, bool reusable)
{
    if (!reusable || k->rpos != k->rend) {
        conn_close(k);
        return;
    }
    k->idle_since_ns = snap_now_ns();
    struct http_conn *drop = NULL;
    pthread_mutex_lock(&c->lock);
    k->next = c->idle;
    c->idle = k;
    if (++c->nidle > c->o.max_idle) {
        /* Over the limit: the least recently used one goes. */
        struct http_conn **pp = &c->idle;
        while ((*pp)->next)
            pp = &(*pp)->next;
        drop = *pp;
        *pp = NULL;
        c->nidle--;
    }
    pthread_mutex_unlock(&c->lock);
    if (drop)
        conn_close(drop);
}

int http_conn_read(struct http_conn *k, void *buf, size_t len, size_t *got)
{
    return k->tls ? tls_read(k->tls, buf, len, got) : sock_read(&k->sock, buf, len, got);
}

int http_conn_writev(struct http_conn *k, struct iovec *iov, int n)
{
    if (!k->tls)
        return sock_writev(&k->sock, iov, n);
    for (int i = 0; i < n; i++) {
        int e = tls_write(k->tls, iov[i].iov_base, iov[i].iov_len);
        if (e)
            return e;
    }
    return 0;
}
