/* store.c -- backend table, key checks and the thin dispatchers of the storage interface. */
#include "store/store.h"

#include "base/buf.h"
#include "base/err.h"
#include "base/mem.h"
#include "net/url.h"
#include "net/http.h"
#include "store/chunkcache.h"
#include "store/peer_client.h"
#include "store/tiered.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct store_ops *const backends[] = {
    &store_file_ops,
    &store_http_ops,
    &store_https_ops,
    &store_s3_ops,
    &store_gs_ops,
    &store_peer_ops,
    &store_peers_ops,
};

int store_split_url(const char *url, char **base, char **key)
{
    bool is_url;
    int err = url_check_arg(url, &is_url);
    if (err)
        return err;
    const char *sep = strstr(url, "://");
    const char *slash = strrchr(url, '/');
    if (!sep || !slash || slash < sep + 3 || slash[1] == '\0' || slash == sep + 2)
        return snap_fail(SNAP_EUSAGE, "'%s' does not name an object (expected SCHEME://.../NAME)", url);
    /* file:///name keeps "/" as its directory. */
    size_t blen = (size_t)(slash - url);
    if (slash == sep + 3 && strncmp(url, "file", 4) == 0)
        blen++;
    *base = snap_strndup(url, blen);
    *key = snap_strdup(slash + 1);
    if (!*base || !*key) {
        snap_free(*base);
        snap_free(*key);
        *base = *key = NULL; /* callers free both on every path */
        return snap_fail(SNAP_ENOMEM, "out of memory");
    }
    return 0;
}

const struct store_ops *store_ops_for(const char *url)
{
    const char *sep = strstr(url, "://");
    if (!sep)
        return NULL;
    size_t n = (size_t)(sep - url);
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (strlen(backends[i]->scheme) == n && strncmp(backends[i]->scheme, url, n) == 0)
            return backends[i];
    return NULL;
}

/* An integer environment setting within [lo, hi], or 0 when unset; SNAP_EUSAGE otherwise. */
static int env_uint(const char *name, unsigned lo, unsigned hi, unsigned *out)
{
    const char *v = getenv(name);
    *out = 0;
    if (!v || !*v)
        return 0;
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (*end || v[0] == '-' || n < lo || n > hi)
        return snap_fail(SNAP_EUSAGE, "%s='%s': expected a whole number from %u to %u", name, v, lo, hi);
    *out = (unsigned)n;
    return 0;
}

int store_open(const char *url, const struct store_opts *opts, struct store **out)
{
    struct store_opts o = opts ? *opts : (struct store_opts){0};
    unsigned idle_s, attempts;
    int err = env_uint("SNAPCTL_IDLE_TIMEOUT", 1, 3600, &idle_s);
    if (!err)
        err = env_uint("SNAPCTL_MAX_ATTEMPTS", 1, 100, &attempts);
    if (err)
        return err;
    if (!o.idle_timeout_ms && idle_s)
        o.idle_timeout_ms = idle_s * 1000;
    if (!o.max_attempts && attempts)
        o.max_attempts = attempts;
    bool is_url;
    if ((err = url_check_arg(url, &is_url)) != 0)
        return err;
    const char *priv = getenv("SNAPCTL_ALLOW_PRIVATE_REDIRECTS");
    if (priv && strcmp(priv, "1") == 0)
        o.allow_private_redirects = true;
    const struct store_ops *ops = store_ops_for(url);
    if (!ops) {
        if (!strstr(url, "://"))
            return snap_fail(SNAP_EUSAGE, "'%s' is not a store URL (try file:///dir, s3://bucket/prefix, "
                             "gs://bucket/prefix, https://host/path)", url);
        return snap_fail(SNAP_ENOTSUP, "%s: this build of snapctl has no backend for that URL scheme", url);
    }
    if (!o.chunk_cache)
        return ops->open(url, &o, out);
    struct store *inner;
    if ((err = ops->open(url, &o, &inner)) != 0)
        return err;
    struct chunkcache_opts co = {.limit = o.chunk_cache_max, .owns_inner = true};
    return store_chunkcache_open(inner, o.chunk_cache, &co, out);
}

void store_http_opts(const struct store_opts *o, struct http_opts *ho)
{
    *ho = (struct http_opts){
        .connect_timeout_ms = o->connect_timeout_ms, .idle_timeout_ms = o->idle_timeout_ms, .ca_file = o->ca_file,
        .deadline_ns = o->deadline_ns, .head_timeout_ms = o->head_timeout_ms, .speed_limit = o->speed_limit,
        .speed_time_ms = o->speed_time_ms, .max_object_size = o->max_object_size,
        .allow_private_redirects = o->allow_private_redirects,
    };
    http_retry_defaults(&ho->retry);
    if (o->max_attempts)
        ho->retry.max_attempts = o->max_attempts;
}

void store_close(struct store *s)
{
    if (s)
        s->ops->close(s);
}

/* Keys are relative object names: no empty, "." or ".." segment, no leading '/', no NUL or
 * control characters.  Backends map keys onto paths and URLs, so this is where traversal stops. */
static int store_key_check(const struct store *s, const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > 1024)
        return snap_fail(SNAP_EUSAGE, "%s: object key of %zu bytes (1..1024 allowed)", s->url, n);
    const char *seg = key;
    for (const char *p = key;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t len = (size_t)(p - seg);
            if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
                return snap_fail(SNAP_EUSAGE, "%s: object key '%s' has an empty, '.' or '..' segment",
                                 s->url, key);
            if (*p == '\0')
                break;
            seg = p + 1;
        } else if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            return snap_fail(SNAP_EUSAGE, "%s: object key has a control character", s->url);
        }
    }
    return 0;
}

int store_stat(struct store *s, const char *key, struct store_info *info)
{
    int err = store_key_check(s, key);
    if (err)
        return err;
    memset(info, 0, sizeof *info);
    info->uncompressed_size = STORE_SIZE_UNKNOWN;
    return s->ops->stat(s, key, info);
}

/* What every read checks first; res is reset.  len == STORE_SIZE_UNKNOWN means "to the end". */
static int store_read_begin(struct store *s, const char *key, uint64_t off, uint64_t len,
                            struct store_read_result *res)
{
    res->bytes = 0;
    res->total_size = STORE_SIZE_UNKNOWN;
    int err = store_key_check(s, key);
    if (err)
        return err;
    if (len != STORE_SIZE_UNKNOWN && len > UINT64_MAX - off)
        return snap_fail(SNAP_ERANGE, "%s/%s: range at %llu of %llu bytes overflows", s->url, key,
                         (unsigned long long)off, (unsigned long long)len);
    return 0;
}

int store_read(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
               store_progress_fn progress, void *ctx, struct store_read_result *res)
{
    struct store_read_result dummy;
    if (!res)
        res = &dummy;
    int err = store_read_begin(s, key, off, len == STORE_SIZE_UNKNOWN ? len - 1 : len, res);
    return err ? err : s->ops->read(s, key, off, len, dst, progress, ctx, res);
}

bool store_can_read_stream(const struct store *s) { return s->ops->read_stream != NULL; }

/* The generic stream: ranged reads of STREAM_STEP into one buffer, handed to the sink. */
#define STREAM_STEP (1u << 20)

int store_read_stream(struct store *s, const char *key, uint64_t off, uint64_t len,
                      store_sink_fn sink, void *ctx, struct store_read_result *res)
{
    struct store_read_result dummy;
    if (!res)
        res = &dummy;
    int err = store_read_begin(s, key, off, len, res);
    if (err)
        return err;
    if (s->ops->read_stream)
        return s->ops->read_stream(s, key, off, len, sink, ctx, res);
    uint8_t *buf = snap_malloc(STREAM_STEP);
    if (!buf)
        return snap_fail(SNAP_ENOMEM, "%s/%s: out of memory", s->url, key);
    while (len == STORE_SIZE_UNKNOWN || res->bytes < len) {
        uint64_t want = STREAM_STEP;
        if (len != STORE_SIZE_UNKNOWN && len - res->bytes < want)
            want = len - res->bytes;
        if (res->total_size != STORE_SIZE_UNKNOWN && off + res->bytes >= res->total_size)
            break;
        struct store_read_result r = {0, STORE_SIZE_UNKNOWN};
        err = s->ops->read(s, key, off + res->bytes, want, buf, NULL, NULL, &r);
        if (err)
            break;
        if (r.total_size != STORE_SIZE_UNKNOWN)
            res->total_size = r.total_size;
        if (r.bytes && (err = sink(ctx, buf, (size_t)r.bytes)) != 0)
            break;
        res->bytes += r.bytes;
        if (r.bytes < want)
            break; /* the object ended */
    }
    snap_free(buf);
    return err;
}

/* One receive buffer per thread, kept for the thread's life (a fetch thread streams chunk after
 * chunk: no allocation per read).  A nested streamed read on the same thread (a sink that reads
 * another store) gets a buffer of its own. */
static pthread_key_t recv_key;
static pthread_once_t recv_once = PTHREAD_ONCE_INIT;
static __thread uint8_t *recv_tl;
static __thread bool recv_busy;

static void recv_key_init(void) { pthread_key_create(&recv_key, snap_free); }

uint8_t *store_stream_recv_buf(uint64_t len, size_t *cap)
{
    *cap = len < STORE_STREAM_RECV ? (size_t)len : STORE_STREAM_RECV;
    if (!*cap)
        return NULL;
    if (!recv_busy) {
        if (!recv_tl) {
            pthread_once(&recv_once, recv_key_init);
            if ((recv_tl = snap_malloc(STORE_STREAM_RECV)) != NULL)
                pthread_setspecific(recv_key, recv_tl); /* freed at thread exit */
        }
        if (recv_tl) {
            recv_busy = true;
            return recv_tl;
        }
    }
    uint8_t *b = snap_malloc(*cap);
    if (!b)
        *cap = 0;
    return b;
}

void store_stream_recv_release(uint8_t *buf)
{
    if (buf && buf == recv_tl)
        recv_busy = false;
    else
        snap_free(buf);
}

int store_sink_guard_fn(void *guard, const void *p, size_t n)
{
    struct store_sink_guard *g = guard;
    if (g->res && g->head_total && *g->head_total != STORE_SIZE_UNKNOWN)
        g->res->total_size = *g->head_total;
    int err = g->sink(g->ctx, p, n);
    if (err) {
        g->err = err;
        snprintf(g->msg, sizeof g->msg, "%s", snap_errmsg(err));
    }
    return err;
}

int store_sink_guard_result(const struct store_sink_guard *g, int transport_err)
{
    if (transport_err && g->err)
        return snap_fail(g->err, "%s", g->msg);
    return transport_err;
}

bool store_can_write(const struct store *s) { return s->ops->put != NULL; }
bool store_can_multipart(const struct store *s) { return s->ops->mp_create != NULL; }

static int store_readonly(const struct store *s, const char *what)
{
    return snap_fail(SNAP_ENOTSUP, "%s: this store is read-only (%s); upload to file://, s3:// or gs://",
                     s->url, what);
}

int store_put(struct store *s, const char *key, const void *buf, size_t len, const struct store_put_opts *po)
{
    int err = store_key_check(s, key);
    if (err)
        return err;
    if (!s->ops->put)
        return store_readonly(s, "put");
    static const struct store_put_opts none;
    return s->ops->put(s, key, buf, len, po ? po : &none);
}

int store_mp_create(struct store *s, const char *key, const struct store_put_opts *po, char **upload_id)
{
    int err = store_key_check(s, key);
    if (err)
        return err;
    if (!s->ops->mp_create)
        return store_readonly(s, "multipart upload");
    static const struct store_put_opts none;
    return s->ops->mp_create(s, key, po ? po : &none, upload_id);
}

int store_mp_part(struct store *s, const char *key, const char *upload_id, uint32_t number,
                  const void *buf, size_t len, store_sent_fn sent, void *sent_ctx,
                  char etag[STORE_ETAG_MAX])
{
    if (!s->ops->mp_part)
        return store_readonly(s, "multipart upload");
    if (number < 1 || number > 10000)
        return snap_fail(SNAP_ERANGE, "%s/%s: part number %u (1..10000 allowed)", s->url, key, number);
    return s->ops->mp_part(s, key, upload_id, number, buf, len, sent, sent_ctx, etag);
}

int store_mp_complete(struct store *s, const char *key, const char *upload_id,
                      const struct store_part *parts, size_t nparts, char etag[STORE_ETAG_MAX])
{
    if (!s->ops->mp_complete)
        return store_readonly(s, "multipart upload");
    for (size_t i = 1; i < nparts; i++)
        if (parts[i].number <= parts[i - 1].number)
            return snap_fail(SNAP_EINTERNAL, "%s/%s: parts not ascending at %zu", s->url, key, i);
    return s->ops->mp_complete(s, key, upload_id, parts, nparts, etag);
}

int store_mp_abort(struct store *s, const char *key, const char *upload_id)
{
    if (!s->ops->mp_abort)
        return store_readonly(s, "multipart upload");
    return s->ops->mp_abort(s, key, upload_id);
}

bool store_can_put_file(const struct store *s) { return s->ops->put_file != NULL; }
bool store_can_set_meta(const struct store *s) { return s->ops->set_meta != NULL; }

int store_put_file(struct store *s, const char *key, int fd, uint64_t len, const struct store_put_opts *po)
{
    int err = store_key_check(s, key);
    if (err)
        return err;
    if (!s->ops->put_file)
        return snap_fail(SNAP_ENOTSUP, "%s: this store cannot copy from a file; use store_put", s->url);
    static const struct store_put_opts none;
    return s->ops->put_file(s, key, fd, len, po ? po : &none);
}

int store_set_meta(struct store *s, const char *key, uint64_t size, const struct store_put_opts *po)
{
    int err = store_key_check(s, key);
    if (err)
        return err;
    if (!s->ops->set_meta)
        return snap_fail(SNAP_ENOTSUP, "%s/%s: this store cannot change an object's metadata", s->url, key);
    static const struct store_put_opts none;
    return s->ops->set_meta(s, key, size, po ? po : &none);
}

struct grow_buf {
    struct snap_buf b;
    const char *url;
};

static int grow_sink(void *ctx, const uint8_t *p, size_t n)
{
    struct grow_buf *g = ctx;
    if (n > g->b.max - g->b.len)
        return snap_fail(SNAP_ETOOBIG, "%s: larger than %zu bytes", g->url, g->b.max);
    int err = snap_buf_append(&g->b, p, n);
    return err ? snap_fail_ctx(err, "%s", g->url) : 0;
}

int store_read_all(struct store *s, const char *key, size_t max, uint8_t **out, size_t *len)
{
    struct grow_buf g = {.url = s->url};
    snap_buf_init(&g.b, 65536, max);
    int err = store_read_stream(s, key, 0, (uint64_t)max + 1, grow_sink, &g, NULL);
    if (err) {
        snap_buf_free(&g.b);
        return err;
    }
    *len = g.b.len;
    *out = g.b.data ? snap_buf_take(&g.b) : snap_malloc(1);
    return *out ? 0 : snap_fail(SNAP_ENOMEM, "out of memory");
}

int store_read_object(const char *url, size_t max, uint8_t **out, size_t *len)
{
    char *key = NULL;
    struct store *s = NULL;
    int err = store_open_object(url, NULL, NULL, &s, &key);
    if (!err)
        err = store_read_all(s, key, max, out, len);
    store_close(s);
    snap_free(key);
    return err;
}
