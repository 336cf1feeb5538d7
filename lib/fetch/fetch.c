/* fetch.c -- verified streaming download into a content-addressed cache. */
#include "fetch/fetch.h"

#include "base/cancel.h"
#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/util.h"
#include "crypto/sha256.h"
#include "fetch/hasher.h"
#include "store/store.h"
#include "store/tiered.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FETCH_DEFAULT_MAX (8ull << 30)
#define TMP_TAG ".snapctl-tmp."

struct sink_state {
    int fd;
    char tmp[PATH_MAX]; /* the temp file being written */
    const char *url;
    uint64_t written, max;
    struct fetch_hasher *hasher; /* hashes what is written, on its own thread */
    const struct fetch_opts *o;
    uint64_t total; /* 0 = unknown */
    const struct store_read_result *res; /* of the read in progress: its total_size, once learned */
    uint64_t pace_ns;                    /* --limit-rate: when the first byte was written */
};

/* --limit-rate: sleep until `written` bytes are due at the rate since the first byte. */
static void pace(struct sink_state *s)
{
    if (!s->pace_ns)
        s->pace_ns = snap_now_ns();
    snap_sleep_until_ns(s->pace_ns + (uint64_t)((double)s->written * 1e9 / (double)s->o->limit_rate));
}

static int sink(void *ctx, const uint8_t *p, size_t n)
{
    struct sink_state *s = ctx;
    if (snap_cancelled(s->o->cancel))
        return snap_fail(SNAP_EINTR, "%s: interrupted; nothing was cached", s->url);
    if (n > s->max - s->written)
        return snap_fail(SNAP_ETOOBIG, "%s: more than the limit of %llu bytes (--max-size)", s->url,
                         (unsigned long long)s->max);
    if (s->res->total_size != STORE_SIZE_UNKNOWN) /* from the response head: before the body ends */
        s->total = s->res->total_size;
    /* Paced in slices of 1/16 s, so that progress moves smoothly at a low rate. */
    size_t slice = s->o->limit_rate ? (size_t)snap_max_u64(s->o->limit_rate / 16, 4096) : n;
    for (size_t off = 0; off < n;) {
        size_t k = n - off < slice ? n - off : slice;
        int err = snap_write_full(s->fd, p + off, k, s->tmp);
        if (err)
            return err;
        off += k;
        s->written += k;
        fetch_hasher_wrote(s->hasher, s->written);
        if (s->o->progress)
            s->o->progress(s->o->progress_ctx, s->written, s->total);
        if (s->o->limit_rate)
            pace(s);
    }
    return 0;
}

static int hash_file(const char *path, uint8_t out[32], uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return snap_fail_errno("%s", path);
    struct sha256_ctx sha;
    sha256_init(&sha);
    uint8_t *buf = snap_malloc(1 << 20);
    int err = buf ? 0 : snap_fail(SNAP_ENOMEM, "out of memory");
    *size = 0;
    while (!err) {
        ssize_t r = read(fd, buf, 1 << 20);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            err = snap_fail_errno("%s: read", path);
        if (r <= 0)
            break;
        sha256_update(&sha, buf, (size_t)r);
        *size += (uint64_t)r;
    }
    sha256_final(&sha, out);
    snap_free(buf);
    close(fd);
    return err;
}

int fetch_clean_stale(const char *dir)
{
    int n = snap_clean_stale_tmp(dir, TMP_TAG);
    if (n)
        snap_info("removed %d stale temp file%s in %s", n, n == 1 ? "" : "s", dir);
    return n;
}

static bool retryable(int err)
{
    return err == SNAP_ENET || err == SNAP_ETIMEOUT || err == SNAP_ESHORT || err == SNAP_EPROTO;
}

/* The minimum rate in bytes/s, 0 for none. */
static uint64_t speed_limit(const struct fetch_opts *o)
{
    uint64_t limit = o->speed_limit ? o->speed_limit : FETCH_SPEED_LIMIT;
    return limit == FETCH_SPEED_NONE ? 0 : limit;
}

void fetch_store_opts(const struct fetch_opts *o, struct store_opts *so)
{
    *so = (struct store_opts){
        .idle_timeout_ms = o->idle_timeout_ms,
        .deadline_ns = o->max_time_ms ? snap_now_ns() + (uint64_t)o->max_time_ms * 1000000 : 0,
        .head_timeout_ms = o->head_timeout_ms ? o->head_timeout_ms : FETCH_HEAD_TIMEOUT_MS,
        .speed_limit = speed_limit(o),
        .speed_time_ms = o->speed_time_ms ? o->speed_time_ms : FETCH_SPEED_TIME_MS,
        .max_object_size = o->max_size ? o->max_size : FETCH_DEFAULT_MAX,
        .allow_private_redirects = o->allow_private_redirects,
    };
}

/* Resume after a break?  Only one that moved the file on at the minimum rate, within max_time. */
static bool fetch_resume_ok(const struct fetch_opts *o, int err, uint64_t moved, uint64_t t0, uint64_t deadline)
{
    uint64_t now = snap_now_ns(), ms = (now - t0) / 1000000 + 1;
    if (!retryable(err) || moved == 0 || (deadline && now >= deadline))
        return false;
    return (double)moved * 1000 / (double)ms >= (double)speed_limit(o);
}

static int fetch_download(const struct fetch_opts *o, const char *final, struct fetch_result *r)
{
    char *key = NULL;
    struct store *st = NULL;
    struct store_opts so;
    fetch_store_opts(o, &so);
    int err = 0;
    if (o->store) {
        st = o->store;
        if (!(key = snap_strdup(o->key)))
            err = snap_fail(SNAP_ENOMEM, "out of memory");
    } else {
        err = store_open_object(o->url, &so, NULL, &st, &key);
    }
    if (err)
        goto out;

    const char *slash = strrchr(final, '/');
    struct sink_state s = {.url = o->url, .max = o->max_size, .o = o};
    snprintf(s.tmp, sizeof s.tmp, "%.*s/.%s%s%ld.%08x", (int)(slash - final), final, slash + 1, TMP_TAG,
             (long)getpid(), (unsigned)(snap_now_ns() & 0xffffffff));
    s.fd = snap_tmp_open(s.tmp, O_RDWR | O_EXCL, 0600);
    if (s.fd < 0) {
        err = snap_fail_errno("%s: create temp file", s.tmp);
        goto out;
    }
    snap_cancel_track(o->cancel, s.tmp); /* a signal that ends the process removes it */
    if ((err = fetch_hasher_start(s.fd, s.tmp, &s.hasher)) != 0) {
        close(s.fd);
        unlink(s.tmp);
        snap_cancel_untrack(o->cancel, s.tmp);
        goto out;
    }

    struct store_read_result res;
    s.res = &res;
    for (;;) {
        /* To the end (bytes=K-): the sink refuses byte max_size + 1, so an oversize or endless
         * source is seen, not truncated, and nothing past that byte is read. */
        uint64_t before = s.written, t_try = snap_now_ns();
        err = store_read_stream(st, key, s.written, STORE_SIZE_UNKNOWN, sink, &s, &res);
        if (res.total_size != STORE_SIZE_UNKNOWN)
            s.total = res.total_size;
        if (!err && s.total && s.written < s.total)
            err = snap_fail(SNAP_ESHORT, "%s: body ended after %llu of %llu bytes", o->url,
                            (unsigned long long)s.written, (unsigned long long)s.total);
        /* The transport has retried already; resume only a break that moved the file on. */
        if (!err || !fetch_resume_ok(o, err, s.written - before, t_try, so.deadline_ns))
            break;
        /* Resume from what is on disk; the hash state already covers it. */
        snap_warn("%s: %s; resuming at byte %llu", o->url, snap_errmsg(err), (unsigned long long)s.written);
        r->resumed++;
    }
    if (err == SNAP_ETIMEOUT && so.deadline_ns && snap_now_ns() >= so.deadline_ns)
        snap_fail_ctx(err, "%s: not done within the time limit of %u ms (--max-time)", o->url, o->max_time_ms);
    uint8_t got[32];
    if (err)
        fetch_hasher_abort(s.hasher);
    else
        err = fetch_hasher_finish(s.hasher, got);
    if (!err && s.total && s.written != s.total)
        err = snap_fail(SNAP_ESHORT, "%s: got %llu bytes, the source says %llu", o->url,
                        (unsigned long long)s.written, (unsigned long long)s.total);
    if (!err && memcmp(got, o->sha256, 32) != 0) {
        char want_hex[65], got_hex[65];
        snap_hex(o->sha256, 32, want_hex);
        snap_hex(got, 32, got_hex);
        err = snap_fail(SNAP_EHASH, "%s: SHA-256 mismatch: expected %s, got %s (%llu bytes)", o->url,
                        want_hex, got_hex, (unsigned long long)s.written);
    }
    if (!err && fchmod(s.fd, o->mode) < 0)
        err = snap_fail_errno("%s: chmod", s.tmp);
    if (!err && fsync(s.fd) < 0)
        err = snap_fail_errno("%s: fsync", s.tmp);
    if (close(s.fd) < 0 && !err)
        err = snap_fail_errno("%s: close", s.tmp);
    if (!err && rename(s.tmp, final) < 0)
        err = snap_fail_errno("%s: rename into place", final);
    snap_cancel_untrack(o->cancel, s.tmp);
    if (err) {
        unlink(s.tmp);
    } else {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - final), final);
        int dfd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        r->size = s.written;
    }
out:
    if (st != o->store)
        store_close(st);
    snap_free(key);
    return err;
}

int fetch_run(const struct fetch_opts *in, struct fetch_result *r)
{
    struct fetch_opts o = *in;
    if (!o.max_size)
        o.max_size = FETCH_DEFAULT_MAX;
    if (!o.mode)
        o.mode = 0644;
    if (!o.prefix)
        o.prefix = "";
    memset(r, 0, sizeof *r);
    uint64_t t0 = snap_now_ns();
    if (strchr(o.prefix, '/'))
        return snap_fail(SNAP_EUSAGE, "--prefix '%s' must not contain '/'", o.prefix);
    char hex[65];
    snap_hex(o.sha256, 32, hex);
    if ((size_t)snprintf(r->path, sizeof r->path, "%s/%s%s", o.cache_dir, o.prefix, hex) >= sizeof r->path)
        return snap_fail(SNAP_EUSAGE, "%s: cache path too long", o.cache_dir);
    struct stat st;
    if (stat(o.cache_dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return snap_fail(SNAP_ENOTFOUND, "cache directory %s does not exist (create it first)", o.cache_dir);
    fetch_clean_stale(o.cache_dir);

    if (stat(r->path, &st) == 0) {
        /* The limit holds for a cached file too: the answer does not depend on the cache. */
        if ((uint64_t)st.st_size > o.max_size)
            return snap_fail(SNAP_ETOOBIG, "%s: the cached file is %llu bytes, more than the limit of %llu bytes "
                             "(--max-size)", r->path, (unsigned long long)st.st_size,
                             (unsigned long long)o.max_size);
        if (!o.verify) {
            r->hit = true;
            r->size = (uint64_t)st.st_size;
            r->seconds = (double)(snap_now_ns() - t0) / 1e9;
            return 0;
        }
        uint8_t got[32];
        uint64_t size = 0;
        int err = hash_file(r->path, got, &size);
        if (err)
            return err;
        if (memcmp(got, o.sha256, 32) == 0) {
            r->hit = true;
            r->size = size;
            r->seconds = (double)(snap_now_ns() - t0) / 1e9;
            return 0;
        }
        snap_warn("%s: cached file fails verification; fetching it again", r->path);
        unlink(r->path);
        r->replaced = true;
    }
    int err = fetch_download(&o, r->path, r);
    r->seconds = (double)(snap_now_ns() - t0) / 1e9;
    return err;
}
