/* tiered.c -- peer first, storage behind it (see tiered.h).
 *
 * State shared by all readers, under one mutex and in fixed tables (nothing is allocated per
 * read): the builds a 410 sent to storage, the sizes learned per key (to catch a peer whose
 * answer has the wrong length), and the time until which a timed-out peer is skipped.
 * Counters are atomics.
 */
#include "store/tiered.h"

#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/util.h"
#include "store/peer_client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define GONE_MAX 256
#define SIZES_MAX 128
#define BUILD_MAX 64
#define SIZE_KEY_MAX 128

struct tiered {
    struct store base;
    struct store *front, *inner;
    unsigned skip_ms;
    pthread_mutex_t lock;
    char gone[GONE_MAX][BUILD_MAX];
    unsigned ngone;
    bool all_gone;                   /* the table overflowed: every build goes to storage */
    struct {
        char key[SIZE_KEY_MAX];
        uint64_t size;
        bool from_storage;
    } sizes[SIZES_MAX];
    unsigned nsizes, next_size;
    uint64_t skip_until_ns;
    atomic_bool warned;              /* a peer misconfiguration was logged once */
    _Atomic uint64_t peer_reads, peer_bytes, storage_reads, storage_bytes, fallbacks, gone_builds;
};

bool store_is_tiered(const struct store *s)
{
    return s && s->ops == &store_tiered_ops;
}

/* The build of a key: its first segment. */
static size_t build_len(const char *key)
{
    const char *slash = strchr(key, '/');
    return slash ? (size_t)(slash - key) : strlen(key);
}

static bool gone_locked(struct tiered *t, const char *key, size_t n)
{
    if (t->all_gone)
        return true;
    for (unsigned i = 0; i < t->ngone; i++)
        if (strlen(t->gone[i]) == n && memcmp(t->gone[i], key, n) == 0)
            return true;
    return false;
}

bool store_tiered_build_gone(struct store *s, const char *uuid)
{
    struct tiered *t = (struct tiered *)s;
    pthread_mutex_lock(&t->lock);
    bool g = gone_locked(t, uuid, strlen(uuid));
    pthread_mutex_unlock(&t->lock);
    return g;
}

static void mark_gone(struct tiered *t, const char *key, int err)
{
    size_t n = build_len(key);
    pthread_mutex_lock(&t->lock);
    if (!gone_locked(t, key, n)) {
        if (t->ngone == GONE_MAX || n >= BUILD_MAX) {
            t->all_gone = true;
        } else {
            memcpy(t->gone[t->ngone], key, n);
            t->gone[t->ngone][n] = '\0';
            t->ngone++;
        }
        t->gone_builds++;
        snap_info("tiered: %s; build %.*s is read from storage from now on", snap_errmsg(err), (int)n, key);
    }
    pthread_mutex_unlock(&t->lock);
}

enum route { ROUTE_PEER, ROUTE_SKIPPED, ROUTE_GONE };

static enum route route(struct tiered *t, const char *key)
{
    pthread_mutex_lock(&t->lock);
    enum route r = gone_locked(t, key, build_len(key)) ? ROUTE_GONE
                   : t->skip_until_ns && snap_now_ns() < t->skip_until_ns ? ROUTE_SKIPPED
                                                                           : ROUTE_PEER;
    pthread_mutex_unlock(&t->lock);
    return r;
}

static uint64_t known_size(struct tiered *t, const char *key)
{
    uint64_t sz = STORE_SIZE_UNKNOWN;
    pthread_mutex_lock(&t->lock);
    for (unsigned i = 0; i < t->nsizes; i++)
        if (strcmp(t->sizes[i].key, key) == 0) {
            sz = t->sizes[i].size;
            break;
        }
    pthread_mutex_unlock(&t->lock);
    return sz;
}

/* Remember a key's size; storage's word replaces the peer's. */
static void learn_size(struct tiered *t, const char *key, uint64_t size, bool from_storage)
{
    if (size == STORE_SIZE_UNKNOWN || strlen(key) >= SIZE_KEY_MAX)
        return;
    pthread_mutex_lock(&t->lock);
    unsigned i;
    for (i = 0; i < t->nsizes; i++)
        if (strcmp(t->sizes[i].key, key) == 0)
            break;
    if (i < t->nsizes) {
        if (from_storage || !t->sizes[i].from_storage)
            t->sizes[i].size = size, t->sizes[i].from_storage = from_storage;
    } else {
        if (t->nsizes < SIZES_MAX)
            i = t->nsizes++;
        else
            i = t->next_size++ % SIZES_MAX;
        snprintf(t->sizes[i].key, SIZE_KEY_MAX, "%s", key);
        t->sizes[i].size = size;
        t->sizes[i].from_storage = from_storage;
    }
    pthread_mutex_unlock(&t->lock);
}

static void peer_failed(struct tiered *t, const char *key, int err, bool use_storage)
{
    t->fallbacks++;
    if (use_storage) {
        mark_gone(t, key, err);
    } else if (err == SNAP_ETIMEOUT && t->skip_ms != TIERED_NO_SKIP) {
        pthread_mutex_lock(&t->lock);
        t->skip_until_ns = snap_now_ns() + (uint64_t)t->skip_ms * 1000000;
        pthread_mutex_unlock(&t->lock);
    }
    /* Misconfigurations (TLS, a refusal, a plaintext client on a TLS peer) deserve a warning, once;
     * a peer that is down, busy or behind is business as usual. */
    if ((err == SNAP_ETLS || err == SNAP_EAUTH) && !atomic_exchange(&t->warned, true))
        snap_warn("peer: %s; reading from storage instead (this warning is shown once)", snap_errmsg(err));
    else
        snap_debug("tiered: %s: peer failed (%s); reading from storage", key, snap_errmsg(err));
}

/* Progress to the caller stays monotonic across the peer try and the storage redo. */
struct tprog {
    store_progress_fn fn;
    void *ctx;
    uint64_t sent;
    bool canceled;
};

static int tprog_cb(void *c, uint64_t done)
{
    struct tprog *p = c;
    if (done <= p->sent)
        return 0;
    p->sent = done;
    if (p->fn && p->fn(p->ctx, done)) {
        p->canceled = true;
        return 1;
    }
    return 0;
}

/* A successful peer answer must have the length the range and the object's size imply. */
static int check_length(struct tiered *t, const char *key, uint64_t off, uint64_t len,
                        const struct store_read_result *r)
{
    uint64_t known = known_size(t, key);
    if (r->total_size != STORE_SIZE_UNKNOWN && known != STORE_SIZE_UNKNOWN && r->total_size != known)
        return snap_fail(SNAP_ECHECK, "%s: the peer says %llu bytes, the object has %llu", key,
                         (unsigned long long)r->total_size, (unsigned long long)known);
    if (r->bytes > len)
        return snap_fail(SNAP_EPROTO, "%s: the peer sent more than asked", key);
    if (r->bytes < len) {
        uint64_t size = r->total_size != STORE_SIZE_UNKNOWN ? r->total_size : known;
        if (size == STORE_SIZE_UNKNOWN || off + r->bytes != size)
            return snap_fail(SNAP_ESHORT, "%s: the peer sent %llu of %llu bytes at %llu before the object's end",
                             key, (unsigned long long)r->bytes, (unsigned long long)len, (unsigned long long)off);
    }
    return 0;
}

static int front_read(struct tiered *t, const char *key, uint64_t off, uint64_t len, void *dst, struct tprog *tp,
                      struct store_read_result *r)
{
    bool use_storage = false;
    r->bytes = 0;
    r->total_size = STORE_SIZE_UNKNOWN;
    int err = store_is_peer(t->front)
                  ? store_peer_read_ex(t->front, key, off, len, dst, tprog_cb, tp, r, &use_storage)
                  : store_read(t->front, key, off, len, dst, tprog_cb, tp, r);
    if (tp->canceled)
        return err ? err : SNAP_ECANCELED;
    if (!err)
        err = check_length(t, key, off, len, r);
    if (!err) {
        t->peer_reads++;
        t->peer_bytes += r->bytes;
        learn_size(t, key, r->total_size, false);
        return 0;
    }
    peer_failed(t, key, err, use_storage);
    return -1;
}

int store_tiered_read_front(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst)
{
    struct tiered *t = (struct tiered *)s;
    if (!store_is_tiered(s) || route(t, key) != ROUTE_PEER)
        return SNAP_ENOTFOUND;
    struct tprog tp = {NULL, NULL, 0, false};
    struct store_read_result r;
    int err = front_read(t, key, off, len, dst, &tp, &r);
    if (err > 0)
        return err;
    if (err == 0 && r.bytes != len) { /* short at the object's end: a frame must be whole */
        peer_failed(t, key, snap_fail(SNAP_ESHORT, "%s: the peer has only %llu of %llu bytes at %llu", key,
                                      (unsigned long long)r.bytes, (unsigned long long)len,
                                      (unsigned long long)off), false);
        return SNAP_ENOTFOUND;
    }
    return err ? SNAP_ENOTFOUND : 0;
}

static int tr_read(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
                   store_progress_fn progress, void *ctx, struct store_read_result *res)
{
    struct tiered *t = (struct tiered *)s;
    struct tprog tp = {progress, ctx, 0, false};
    enum route rt = route(t, key);
    if (rt == ROUTE_PEER) {
        int e = front_read(t, key, off, len, dst, &tp, res);
        if (e >= 0)
            return e;
    }
    int err = store_read(t->inner, key, off, len, dst, tprog_cb, &tp, res);
    if (!err) {
        t->storage_reads++;
        t->storage_bytes += res->bytes;
        learn_size(t, key, res->total_size, true);
        return 0;
    }
    if (rt == ROUTE_SKIPPED && !tp.canceled) { /* storage failed too: the peer is worth one more try */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", snap_errmsg(err));
        if (front_read(t, key, off, len, dst, &tp, res) == 0)
            return 0;
        err = snap_fail(err, "%s", msg);
    }
    return err;
}

static int tr_stat(struct store *s, const char *key, struct store_info *info)
{
    struct tiered *t = (struct tiered *)s;
    if (route(t, key) == ROUTE_PEER) {
        bool use_storage = false;
        int err = store_is_peer(t->front) ? store_peer_stat_ex(t->front, key, info, &use_storage)
                                          : store_stat(t->front, key, info);
        uint64_t known = known_size(t, key);
        if (!err && known != STORE_SIZE_UNKNOWN && info->size != known)
            err = snap_fail(SNAP_ECHECK, "%s: the peer says %llu bytes, the object has %llu", key,
                            (unsigned long long)info->size, (unsigned long long)known);
        if (!err) {
            t->peer_reads++;
            learn_size(t, key, info->size, false);
            return 0;
        }
        peer_failed(t, key, err, use_storage);
        memset(info, 0, sizeof *info);
    }
    int err = store_stat(t->inner, key, info);
    if (!err) {
        t->storage_reads++;
        learn_size(t, key, info->size, true);
    }
    return err;
}

static void tr_close(struct store *s)
{
    struct tiered *t = (struct tiered *)s;
    store_close(t->front);
    store_close(t->inner);
    pthread_mutex_destroy(&t->lock);
    snap_free(t->base.url);
    snap_free(t);
}

static int tr_open_url(const char *url, const struct store_opts *o, struct store **out)
{
    (void)o;
    (void)out;
    return snap_fail(SNAP_EUSAGE, "%s: a tiered store is made with --peer ADDR --store URL", url);
}

const struct store_ops store_tiered_ops = {
    .scheme = "tiered", .open = tr_open_url, .close = tr_close, .stat = tr_stat, .read = tr_read,
};

int store_tiered_open(struct store *front, struct store *inner, const struct tiered_opts *o, struct store **out)
{
    struct tiered *t = snap_calloc(1, sizeof *t);
    size_t n = strlen(front->url) + strlen(inner->url) + 4;
    char *u = snap_malloc(n);
    if (!t || !u) {
        snap_free(t);
        snap_free(u);
        store_close(front);
        store_close(inner);
        return snap_fail(SNAP_ENOMEM, "out of memory");
    }
    snprintf(u, n, "%s -> %s", front->url, inner->url);
    t->base.ops = &store_tiered_ops;
    t->base.url = u;
    t->front = front;
    t->inner = inner;
    t->skip_ms = o && o->skip_ms ? o->skip_ms : 2000;
    pthread_mutex_init(&t->lock, NULL);
    *out = &t->base;
    return 0;
}

void store_tiered_stats(struct store *s, struct tiered_stats *st)
{
    struct tiered *t = (struct tiered *)s;
    st->peer_reads = t->peer_reads;
    st->peer_bytes = t->peer_bytes;
    st->storage_reads = t->storage_reads;
    st->storage_bytes = t->storage_bytes;
    st->fallbacks = t->fallbacks;
    st->gone_builds = t->gone_builds;
}

int store_tiered_stats_text(struct store *s, char *buf, size_t cap)
{
    struct tiered_stats st;
    store_tiered_stats(s, &st);
    int n = snprintf(buf, cap,
                     "snapctl_tiered_peer_reads_total %llu\n"
                     "snapctl_tiered_peer_bytes_total %llu\n"
                     "snapctl_tiered_storage_reads_total %llu\n"
                     "snapctl_tiered_storage_bytes_total %llu\n"
                     "snapctl_tiered_fallbacks_total %llu\n"
                     "snapctl_tiered_builds_sent_to_storage_total %llu\n",
                     (unsigned long long)st.peer_reads, (unsigned long long)st.peer_bytes,
                     (unsigned long long)st.storage_reads, (unsigned long long)st.storage_bytes,
                     (unsigned long long)st.fallbacks, (unsigned long long)st.gone_builds);
    return n < 0 || (size_t)n >= cap ? snap_fail(SNAP_ETOOBIG, "stats buffer") : 0;
}

/* ---- assembly: a store behind a peer ---- */

static bool front_wanted(const struct store_peer_front *f)
{
    return f && (f->peer || f->registry);
}

int store_open_tiered(const char *url, const struct store_opts *opts, const struct store_peer_front *f,
                      struct store **out)
{
    if (!front_wanted(f)) {
        if (f && (f->ca_file || f->nallow))
            return snap_fail(SNAP_EUSAGE, "--peer-ca and --peer-allow only go with --peer or --peer-registry");
        return store_open(url, opts, out);
    }
    if (f->peer && f->registry)
        return snap_fail(SNAP_EUSAGE, "--peer and --peer-registry: give one of them");
    struct store_opts po = {.connect_timeout_ms = f->timeout_ms, .idle_timeout_ms = f->timeout_ms,
                            .ca_file = f->ca_file};
    struct store *front = NULL, *inner = NULL;
    int err;
    if (f->registry) {
        if ((err = store_peer_registry_open(f->registry, &po, f->allow, f->nallow, &front)) != 0)
            return snap_fail_ctx(err, "--peer-registry");
    } else {
        char purl[512];
        if ((err = store_peer_url(f->peer, purl, sizeof purl)) != 0 ||
            (err = store_peer_open(purl, &po, f->allow, f->nallow, &front)) != 0)
            return snap_fail_ctx(err, "--peer");
    }
    if ((err = store_open(url, opts, &inner)) != 0) {
        store_close(front);
        return err;
    }
    return store_tiered_open(front, inner, NULL, out);
}

/* Behind a peer: base is STORE/{uuid}; the store is STORE and the key "{uuid}/{name}". */
static int open_build_object(const char *url, const char *base, const char *name, const struct store_opts *opts,
                             const struct store_peer_front *f, struct store **out, char **key)
{
    char *top = NULL, *build = NULL;
    snap_uuid u;
    int err = store_split_url(base, &top, &build);
    if (!err && snap_uuid_parse(build, &u))
        err = snap_fail(SNAP_EUSAGE, "%s: with a peer the object must be STORE/{uuid}/{file} ('%s' is not a UUID)",
                        url, build);
    size_t n = build ? strlen(build) + strlen(name) + 2 : 0;
    if (!err && !(*key = snap_malloc(n)))
        err = snap_fail(SNAP_ENOMEM, "out of memory");
    if (!err) {
        snprintf(*key, n, "%s/%s", build, name);
        if ((err = store_open_tiered(top, opts, f, out)) != 0) {
            snap_free(*key);
            *key = NULL;
        }
    }
    snap_free(top);
    snap_free(build);
    return err;
}

int store_open_object(const char *url, const struct store_opts *opts, const struct store_peer_front *f,
                      struct store **out, char **key)
{
    char *base = NULL, *name = NULL;
    int err = store_split_url(url, &base, &name);
    if (!err && front_wanted(f)) {
        err = open_build_object(url, base, name, opts, f, out, key);
    } else if (!err && (err = store_open_tiered(base, opts, f, out)) == 0) {
        *key = name;
        name = NULL;
    }
    snap_free(base);
    snap_free(name);
    return err;
}
