/* chunkcache.c -- the host's read-through chunk cache directory (a store in front of a store).
 *
 * Design notes
 *
 * Hits: a chunk whose file exists with the length its name says is pread from it (and its mtime,
 * the LRU clock every process on the root shares, is bumped).  No lock, no allocation.
 *
 * Misses: one filler per chunk, host-wide.  The reader takes the chunk's lock file
 * `{index}.lock` (flock, exclusive; an flock belongs to an open file description, so it also
 * orders two threads of one process), checks again for the file (someone may have just made it)
 * and fetches the whole chunk: first from the reader's own offset to the chunk's end -- the
 * bytes stream into a temp file and, as they land, into the reader's buffer with its progress
 * callback, so a miss wakes its reader as soon as without the cache -- then the chunk's head.  It
 * also takes, without waiting, the locks of up to 3 following chunks the reader's range needs and
 * that nobody fills, and streams them in the same inner read.  A complete temp file is
 * fdatasync'd and renamed to its final name; then the lock file is unlinked and closed.  A reader
 * that finds the lock held polls it (1 to 16 ms, calling its progress callback so it can be
 * canceled) and, once it gets it, finds the file; after wait_ms it reads the store itself,
 * uncached.  Lock files are unlinked while held: whoever gets a lock checks that the name still
 * points at the file it locked, else opens it again.  The kernel drops the flock of a killed
 * filler, so its waiters take over at once.
 *
 * Bytes: `.usage` holds the bytes of chunk files plus the full length of every temp file being
 * filled (reserved when the temp file is made, released when it is dropped; a rename changes
 * nothing), read and written under its flock (and a mutex: the flock is one per process).  Going
 * over the limit rescans the directory -- the truth, whatever the count said: chunk files, live
 * temp files at their full length; dead temp files, free lock files and chunk files of the wrong
 * size are removed -- and unlinks the least recently used chunk files until the new reservation
 * fits.  The same rescan runs at open.
 *
 * Failures to cache never fail a read: the chunk is dropped (temp file unlinked, reservation
 * released) and the bytes still go to the reader; the first such failure is logged (snap_warn).
 */
#include "store/chunkcache.h"

#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/util.h"
#include "crypto/sha256.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CC_LIMIT_DEFAULT (10ull << 30)
#define CC_CHUNK_DEFAULT (4u << 20)
#define CC_WAIT_DEFAULT_MS 30000u
#define CC_RUN_MAX 4
#define CC_PATH 1024
#define CC_DIR (CC_PATH - 128) /* {root}/{key}: room left for a file name */
#define CC_MEMO 8
#define CC_NAME 192     /* {uuid}/{file}, or url-{hash}/{key} */
#define CC_SCAN_DEPTH 16
#define CC_READ_STEP (1u << 20)
#define CC_TMP_TAG ".tmp."
#define CC_TOUCH_NS 10000000 /* a hit bumps a chunk's mtime at most every 10 ms */

struct chunkcache {
    struct store base;
    struct store *inner;
    bool owns_inner;
    char *root;
    char url_uuid[SNAP_UUID_STRLEN + 1]; /* the inner store URL's last part, if a build ID; else "" */
    char url_tag[24];          /* "url-" + 16 hex digits of the SHA-256 of the inner store's URL */
    uint64_t limit;            /* acct_mu; lowered on ENOSPC */
    uint32_t chunk;
    unsigned wait_ms;
    int usage_fd;              /* {root}/.usage; -1: the root cannot be written, nothing is cached */
    pthread_mutex_t acct_mu;   /* with usage_fd's flock: the byte count */
    pthread_mutex_t mu;        /* st, memo */
    struct { char name[CC_NAME]; uint64_t size; } memo[CC_MEMO];
    unsigned memo_next;
    atomic_uint seq;
    atomic_bool warned;
    struct chunkcache_stats st;
};

static const struct store_ops chunkcache_ops;

static uint64_t cc_mtime(const struct stat *st)
{
    return (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
}

static int cc_path(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cc_path(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    return r < 0 || (size_t)r >= n ? -1 : 0;
}

static int cc_chunk_path(const struct chunkcache *cc, const char *key, uint64_t k, uint64_t len, char *out)
{
    return cc_path(out, CC_PATH, "%s/%s/%012" PRIu64 "-%" PRIu64 ".bin", cc->root, key, k, len);
}

static uint64_t cc_chunk_len(const struct chunkcache *cc, uint64_t size, uint64_t k)
{
    uint64_t clo = k * cc->chunk;
    return size == STORE_SIZE_UNKNOWN || clo >= size ? 0 : snap_min_u64(cc->chunk, size - clo);
}

static void cc_count(struct chunkcache *cc, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&cc->mu);
    *field += n;
    pthread_mutex_unlock(&cc->mu);
}

/* The one warning of a cache that cannot write its directory. */
static void cc_warn(struct chunkcache *cc, const char *what, int e)
{
    if (!atomic_exchange(&cc->warned, true))
        snap_warn("chunk cache %s: %s: %s; reading from the store without caching what cannot be written "
                  "(this warning is given once)", cc->root, what, strerror(e));
}

/* ---- names ---- */

static uint64_t cc_frame_name_len(const char *name, size_t n);

/* "{12 digits}-{length}.bin" or a frame's "{16 hex}-{hex length}.frm" (followed by `tail`) ->
 * length, or 0 when the name is something else. */
static uint64_t cc_chunk_name_len(const char *name, size_t n)
{
    if (n > 4 && memcmp(name + n - 4, ".frm", 4) == 0)
        return cc_frame_name_len(name, n);
    if (n < 18 || name[12] != '-' || memcmp(name + n - 4, ".bin", 4) != 0)
        return 0;
    for (int i = 0; i < 12; i++)
        if (name[i] < '0' || name[i] > '9')
            return 0;
    uint64_t len = 0;
    for (const char *p = name + 13; p < name + n - 4; p++) {
        if (*p < '0' || *p > '9' || len > UINT64_MAX / 10)
            return 0;
        len = len * 10 + (uint64_t)(*p - '0');
    }
    return len;
}

/* "{16 hex digits}-{hex length}.frm" -> length, or 0. */
static uint64_t cc_frame_name_len(const char *name, size_t n)
{
    if (n < 22 || name[16] != '-')
        return 0;
    for (int i = 0; i < 16; i++)
        if (!isxdigit((unsigned char)name[i]))
            return 0;
    uint64_t len = 0;
    for (const char *p = name + 17; p < name + n - 4; p++) {
        if (!isxdigit((unsigned char)*p) || len > UINT64_MAX / 16)
            return 0;
        len = len * 16 + (uint64_t)(isdigit((unsigned char)*p) ? *p - '0' : (*p | 0x20) - 'a' + 10);
    }
    return len;
}

/* ---- the chunk locks ---- */

/* Lock path: 1 locked (*fd), 0 held by someone else, -1 an error (errno). */
static int cc_lock_try(const char *path, int *fd)
{
    for (int tries = 0; tries < 16; tries++) {
        int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (f < 0)
            return -1;
        if (flock(f, LOCK_EX | LOCK_NB) < 0) {
            int e = errno;
            close(f);
            if (e == EWOULDBLOCK || e == EINTR)
                return 0;
            errno = e;
            return -1;
        }
        struct stat a, b;
        if (fstat(f, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            *fd = f;
            return 1;
        }
        close(f); /* its holder unlinked it before we locked it: open the name again */
    }
    return 0;
}

static void cc_lock_release(const char *path, int fd)
{
    unlink(path); /* while held: see cc_lock_try */
    close(fd);
}

/* ---- the byte count (.usage) and the rescan ---- */

static void cc_acct_lock(struct chunkcache *cc)
{
    pthread_mutex_lock(&cc->acct_mu);
    while (flock(cc->usage_fd, LOCK_EX) < 0 && errno == EINTR)
        ;
}

static void cc_acct_unlock(struct chunkcache *cc)
{
    flock(cc->usage_fd, LOCK_UN);
    pthread_mutex_unlock(&cc->acct_mu);
}

static uint64_t cc_usage_get(struct chunkcache *cc)
{
    char buf[32] = {0};
    uint64_t v = 0;
    if (pread(cc->usage_fd, buf, sizeof buf - 1, 0) > 0) {
        char *p = buf;
        while (*p == ' ')
            p++;
        p[strcspn(p, "\n")] = '\0';
        if (snap_parse_u64(p, &v, ".usage"))
            v = 0; /* unreadable: the next rescan says */
    }
    return v;
}

static void cc_usage_put(struct chunkcache *cc, uint64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%20" PRIu64 "\n", v); /* fixed width: no truncate needed */
    if (pwrite(cc->usage_fd, buf, (size_t)n, 0) != n) {
        /* best effort: a wrong count only moves the next rescan */
    }
    pthread_mutex_lock(&cc->mu);
    cc->st.bytes = v;
    pthread_mutex_unlock(&cc->mu);
}

struct cc_file {
    char *path;
    uint64_t bytes, stamp;
};

struct cc_scan {
    struct cc_file *v;
    size_t n, cap;
    uint64_t total;
};

static void cc_scan_file(struct cc_scan *sc, const char *path, const char *name, const struct stat *st)
{
    size_t n = strlen(name);
    const char *tmp = strstr(name, CC_TMP_TAG);
    uint64_t want;
    if (tmp) { /* a live filler's (the dead ones are gone): it will be this long */
        sc->total += cc_chunk_name_len(name, (size_t)(tmp - name));
    } else if (n > 5 && !strcmp(name + n - 5, ".lock")) {
        int fd;
        if (cc_lock_try(path, &fd) == 1)
            cc_lock_release(path, fd); /* nobody fills that chunk: a dead filler's */
    } else if ((want = cc_chunk_name_len(name, n)) != 0) {
        if ((uint64_t)st->st_size != want) {
            unlink(path); /* not what its name says: never served */
            return;
        }
        sc->total += want;
        if (sc->n == sc->cap) {
            size_t ncap = sc->cap ? sc->cap * 2 : 256;
            struct cc_file *nv = snap_reallocarray(sc->v, ncap, sizeof *nv);
            if (!nv)
                return; /* counted, not evictable this time */
            sc->v = nv;
            sc->cap = ncap;
        }
        char *copy = snap_strdup(path);
        if (copy)
            sc->v[sc->n++] = (struct cc_file){copy, want, cc_mtime(st)};
    }
}

static void cc_scan_dir(struct cc_scan *sc, char *path, size_t plen, int depth)
{
    snap_clean_stale_tmp(path, CC_TMP_TAG);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || (!depth && !strcmp(e->d_name, ".usage")) ||
            plen + 1 + n >= CC_PATH)
            continue;
        path[plen] = '/';
        memcpy(path + plen + 1, e->d_name, n + 1);
        struct stat st;
        if (lstat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode) && depth < CC_SCAN_DEPTH)
                cc_scan_dir(sc, path, plen + 1 + n, depth + 1);
            else if (S_ISREG(st.st_mode))
                cc_scan_file(sc, path, e->d_name, &st);
        }
        path[plen] = '\0';
    }
    closedir(d);
}

static int cc_older(const void *a, const void *b)
{
    const struct cc_file *x = a, *y = b;
    return x->stamp < y->stamp ? -1 : x->stamp > y->stamp;
}

/* Rescan the directory and remove the least recently used chunk files until it holds at most
 * target bytes (acct lock held).  Returns what it holds then. */
static uint64_t cc_evict_to(struct chunkcache *cc, uint64_t target)
{
    struct cc_scan sc = {0};
    char path[CC_PATH];
    snprintf(path, sizeof path, "%s", cc->root);
    cc_scan_dir(&sc, path, strlen(path), 0);
    if (sc.n)
        qsort(sc.v, sc.n, sizeof *sc.v, cc_older);
    uint64_t evicted = 0;
    for (size_t i = 0; i < sc.n; i++) {
        if (sc.total > target && unlink(sc.v[i].path) == 0) {
            sc.total -= sc.v[i].bytes;
            evicted++;
        }
        snap_free(sc.v[i].path);
    }
    snap_free(sc.v);
    cc_count(cc, &cc->st.evictions, evicted);
    return sc.total;
}

/* Count len more bytes (a temp file about to be made), evicting first if they do not fit. */
static void cc_reserve_locked(struct chunkcache *cc, uint64_t len)
{
    uint64_t total = cc_usage_get(cc) + len;
    if (total > cc->limit)
        total = cc_evict_to(cc, cc->limit > len ? cc->limit - len : 0) + len;
    cc_usage_put(cc, total);
}

static void cc_unreserve(struct chunkcache *cc, uint64_t len)
{
    cc_acct_lock(cc);
    uint64_t total = cc_usage_get(cc);
    cc_usage_put(cc, total > len ? total - len : 0);
    cc_acct_unlock(cc);
}

/* The directory is full: keep 3/4 of what it holds from now on. */
static void cc_shrink(struct chunkcache *cc)
{
    cc_acct_lock(cc);
    uint64_t total = cc_usage_get(cc), keep = total - total / 4;
    if (keep < cc->limit)
        cc->limit = snap_max_u64(keep, cc->chunk);
    cc_usage_put(cc, cc_evict_to(cc, cc->limit));
    cc_acct_unlock(cc);
}

/* ---- size.txt and the in-memory sizes ---- */

static uint64_t cc_size_get(struct chunkcache *cc, const char *key)
{
    uint64_t v = STORE_SIZE_UNKNOWN;
    pthread_mutex_lock(&cc->mu);
    for (int i = 0; i < CC_MEMO; i++)
        if (!strcmp(cc->memo[i].name, key))
            v = cc->memo[i].size;
    pthread_mutex_unlock(&cc->mu);
    if (v != STORE_SIZE_UNKNOWN)
        return v;
    char path[CC_PATH], buf[32] = {0};
    if (cc_path(path, sizeof path, "%s/%s/size.txt", cc->root, key))
        return STORE_SIZE_UNKNOWN;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return STORE_SIZE_UNKNOWN;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r <= 0)
        return STORE_SIZE_UNKNOWN;
    buf[strcspn(buf, "\n")] = '\0';
    return snap_parse_u64(buf, &v, "size.txt") == 0 ? v : STORE_SIZE_UNKNOWN;
}

static void cc_memo_put(struct chunkcache *cc, const char *key, uint64_t size)
{
    if (strlen(key) >= CC_NAME)
        return;
    pthread_mutex_lock(&cc->mu);
    unsigned i = cc->memo_next++ % CC_MEMO;
    snprintf(cc->memo[i].name, sizeof cc->memo[i].name, "%s", key);
    cc->memo[i].size = size;
    pthread_mutex_unlock(&cc->mu);
}

/* Write size.txt atomically (temp + rename); failures are ignored (the next filler tries again). */
static void cc_size_put(struct chunkcache *cc, const char *key, uint64_t size)
{
    char path[CC_PATH], tmp[CC_PATH + 48], text[32];
    if (cc_path(path, sizeof path, "%s/%s/size.txt", cc->root, key))
        return;
    cc_memo_put(cc, key, size);
    snprintf(tmp, sizeof tmp, "%s%s%ld.%u", path, CC_TMP_TAG, (long)getpid(), atomic_fetch_add(&cc->seq, 1));
    int len = snprintf(text, sizeof text, "%" PRIu64 "\n", size);
    int fd = snap_tmp_open(tmp, O_WRONLY | O_EXCL, 0644);
    if (fd < 0)
        return;
    bool ok = write(fd, text, (size_t)len) == len;
    close(fd);
    if (!ok || rename(tmp, path) < 0)
        unlink(tmp);
}

/* mkdir -p {root}/{key}: 0, or -1 (errno). */
static int cc_mkdirs(const struct chunkcache *cc, const char *key, char *dir)
{
    if (cc_path(dir, CC_DIR, "%s/%s", cc->root, key)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = dir + strlen(cc->root) + 1;; p++) {
        char c = *p;
        if (c != '/' && c != '\0')
            continue;
        *p = '\0';
        int r = mkdir(dir, 0755);
        *p = c;
        if (r < 0 && errno != EEXIST)
            return -1;
        if (c == '\0')
            return 0;
    }
}

/* ---- names of objects ---- */

static bool cc_is_uuid(const char *s, size_t n)
{
    char buf[SNAP_UUID_STRLEN + 1];
    snap_uuid u;
    if (n != SNAP_UUID_STRLEN)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return snap_uuid_parse(buf, &u) == 0;
}

/* The directory of an object under the root: two stores may hold different objects under one
 * key, so the name says which object it is.  A build's object {uuid}/{file} (the store is the
 * bucket) is {uuid}/{file} as in the reference layout, and so is {file} of a store whose URL
 * ends in /{uuid} (fetch of .../{uuid}/{file}): a build ID names the same bytes wherever they
 * are.  Any other key is url-{hash of the store's URL}/{key}.  0, or -1 when it is too long. */
static int cc_name(const struct chunkcache *cc, const char *key, char out[CC_NAME])
{
    const char *slash = strchr(key, '/');
    if (slash && cc_is_uuid(key, (size_t)(slash - key)))
        return cc_path(out, CC_NAME, "%s", key);
    if (!slash && cc->url_uuid[0])
        return cc_path(out, CC_NAME, "%s/%s", cc->url_uuid, key);
    return cc_path(out, CC_NAME, "%s/%s", cc->url_tag, key);
}

static void cc_name_init(struct chunkcache *cc)
{
    const char *u = cc->base.url;
    size_t n = strlen(u), b;
    while (n && u[n - 1] == '/')
        n--;
    for (b = n; b && u[b - 1] != '/'; b--)
        ;
    if (cc_is_uuid(u + b, n - b))
        memcpy(cc->url_uuid, u + b, SNAP_UUID_STRLEN);
    char hex[SHA256_HEX_LEN + 1];
    sha256_hex(u, strlen(u), hex);
    snprintf(cc->url_tag, sizeof cc->url_tag, "url-%.16s", hex);
}

/* ---- open and close ---- */

static void cc_free(struct chunkcache *cc)
{
    if (cc->usage_fd >= 0)
        close(cc->usage_fd);
    pthread_mutex_destroy(&cc->mu);
    pthread_mutex_destroy(&cc->acct_mu);
    snap_free(cc->root);
    snap_free(cc->base.url);
    snap_free(cc);
}

int store_chunkcache_open(struct store *inner, const char *root, const struct chunkcache_opts *o,
                          struct store **out)
{
    static const struct chunkcache_opts defaults;
    if (!o)
        o = &defaults;
    struct chunkcache *cc = snap_calloc(1, sizeof *cc);
    if (!cc || !(cc->base.url = snap_strdup(inner->url)) || !(cc->root = snap_strdup(root))) {
        if (cc)
            snap_free(cc->base.url);
        snap_free(cc);
        if (o->owns_inner)
            store_close(inner);
        return snap_fail(SNAP_ENOMEM, "%s: out of memory", root);
    }
    cc->base.ops = &chunkcache_ops;
    cc->inner = inner;
    cc_name_init(cc);
    cc->owns_inner = o->owns_inner;
    cc->limit = o->limit ? o->limit : CC_LIMIT_DEFAULT;
    cc->chunk = o->chunk_size ? o->chunk_size : CC_CHUNK_DEFAULT;
    cc->wait_ms = o->wait_ms ? o->wait_ms : CC_WAIT_DEFAULT_MS;
    pthread_mutex_init(&cc->mu, NULL);
    pthread_mutex_init(&cc->acct_mu, NULL);
    size_t n = strlen(cc->root);
    while (n > 1 && cc->root[n - 1] == '/')
        cc->root[--n] = '\0';
    char path[CC_PATH];
    int e = 0;
    if (n + 16 >= CC_PATH)
        e = ENAMETOOLONG;
    else if (mkdir(cc->root, 0755) < 0 && errno != EEXIST)
        e = errno;
    snprintf(path, sizeof path, "%s/.usage", cc->root);
    if (!e && (cc->usage_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) < 0)
        e = errno;
    if (e) {
        int err = snap_fail(SNAP_EUSAGE, "chunk cache %s: %s", cc->root, strerror(e));
        if (o->owns_inner)
            store_close(inner);
        cc->usage_fd = -1;
        cc_free(cc);
        return err;
    }
    cc_acct_lock(cc);
    cc_usage_put(cc, cc_evict_to(cc, cc->limit));
    cc_acct_unlock(cc);
    *out = &cc->base;
    return 0;
}

static void cc_close(struct store *s)
{
    struct chunkcache *cc = (struct chunkcache *)s;
    if (cc->owns_inner)
        store_close(cc->inner);
    cc_free(cc);
}

void store_chunkcache_stats(struct store *s, struct chunkcache_stats *out)
{
    if (!s || s->ops != &chunkcache_ops) {
        *out = (struct chunkcache_stats){0};
        return;
    }
    struct chunkcache *cc = (struct chunkcache *)s;
    pthread_mutex_lock(&cc->mu);
    *out = cc->st;
    pthread_mutex_unlock(&cc->mu);
}

bool store_is_chunkcache(const struct store *s)
{
    return s && s->ops == &chunkcache_ops;
}

static int cc_stat(struct store *s, const char *key, struct store_info *info)
{
    return store_stat(((struct chunkcache *)s)->inner, key, info);
}

/* ---- hits ---- */

struct cc_fwd {
    store_progress_fn fn;
    void *ctx;
    uint64_t base;
};

static int cc_fwd_progress(void *p, uint64_t done)
{
    struct cc_fwd *f = p;
    return f->fn ? f->fn(f->ctx, f->base + done) : 0;
}

/* The LRU clock, best effort (another user's file may refuse); not on every hit, as a chunker
 * without a copy of its own reads every hit from here. */
static void cc_touch(int fd, const struct stat *st)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t age_ns = ((int64_t)now.tv_sec - (int64_t)st->st_mtim.tv_sec) * 1000000000 + (now.tv_nsec - st->st_mtim.tv_nsec);
    if (age_ns >= CC_TOUCH_NS || age_ns < 0)
        futimens(fd, NULL);
}

/* Serve [off, end) of chunk k from its file into dst; false (nothing reported) on a miss. */
static bool cc_hit(struct chunkcache *cc, const char *key, uint64_t size, uint64_t k, uint64_t off, uint64_t end,
                   uint8_t *dst, struct cc_fwd *fwd, int *err)
{
    uint64_t clo = k * cc->chunk, len = cc_chunk_len(cc, size, k);
    char path[CC_PATH];
    if (!len || cc_chunk_path(cc, key, k, len, path))
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != len) {
        close(fd); /* a file of the wrong length: never served; the fill replaces it */
        return false;
    }
    cc_touch(fd, &st);
    for (uint64_t pos = off; pos < end && !*err;) {
        uint64_t step = snap_min_u64(CC_READ_STEP, end - pos);
        *err = snap_pread_full(fd, dst + (pos - off), (size_t)step, pos - clo, path);
        pos += step;
        if (!*err && cc_fwd_progress(fwd, pos - off) != 0)
            *err = snap_fail(SNAP_ECANCELED, "%s: read canceled", path);
    }
    close(fd);
    if (!*err)
        cc_count(cc, &cc->st.hits, 1);
    return true;
}

static bool cc_chunk_exists(const struct chunkcache *cc, const char *key, uint64_t size, uint64_t k)
{
    char path[CC_PATH];
    struct stat st;
    uint64_t len = cc_chunk_len(cc, size, k);
    return len && cc_chunk_path(cc, key, k, len, path) == 0 && stat(path, &st) == 0 &&
           (uint64_t)st.st_size == len;
}

/* ---- fills ---- */

struct cc_slot {
    int lock_fd, tmp_fd;
    uint64_t len, got;          /* len 0: not known (yet) */
    unsigned seq;
    bool dead;                  /* not cached after all */
};

struct cc_fill {
    struct chunkcache *cc;
    const char *key;            /* the object's key in the inner store */
    const char *name;           /* its directory under the root (cc_name) */
    char dir[CC_DIR];           /* {root}/{key} */
    uint64_t size;
    uint64_t k0;                /* the first chunk of the run */
    unsigned n;
    struct cc_slot s[CC_RUN_MAX];
    uint64_t pos;               /* object offset of the next streamed byte */
    uint8_t *dst;               /* the caller's buffer, holding [dlo, dhi) */
    uint64_t dlo, dhi;
    struct cc_fwd fwd;          /* the caller's progress, base: bytes before dlo */
    struct store_read_result res;
};

static void cc_slot_name(const struct cc_fill *f, unsigned i, const char *suffix, char *out)
{
    const struct cc_slot *s = &f->s[i];
    if (!strcmp(suffix, "lock"))
        snprintf(out, CC_PATH, "%s/%012" PRIu64 ".lock", f->dir, f->k0 + i);
    else if (!strcmp(suffix, "tmp"))
        snprintf(out, CC_PATH, "%s/%012" PRIu64 "-%" PRIu64 ".bin" CC_TMP_TAG "%ld.%u", f->dir, f->k0 + i, s->len,
                 (long)getpid(), s->seq);
    else
        snprintf(out, CC_PATH, "%s/%012" PRIu64 "-%" PRIu64 ".bin", f->dir, f->k0 + i, s->len);
}

static void cc_slot_drop(struct cc_fill *f, unsigned i)
{
    struct cc_slot *s = &f->s[i];
    if (s->tmp_fd >= 0) {
        char tmp[CC_PATH];
        cc_slot_name(f, i, "tmp", tmp);
        close(s->tmp_fd);
        unlink(tmp);
        s->tmp_fd = -1;
        cc_unreserve(f->cc, s->len);
    }
    s->dead = true;
}

/* A write to the cache failed with e: drop the chunk, warn once, make room on a full disk. */
static void cc_slot_failed(struct cc_fill *f, unsigned i, const char *what, int e)
{
    cc_slot_drop(f, i);
    cc_warn(f->cc, what, e);
    if (e == ENOSPC || e == EDQUOT)
        cc_shrink(f->cc);
}

static void cc_slot_write(struct cc_fill *f, unsigned i, uint64_t at, const uint8_t *p, size_t n)
{
    struct cc_slot *s = &f->s[i];
    if (s->dead)
        return;
    if (!s->len) {
        s->dead = true; /* the size is not known: the chunk's name is not either */
        return;
    }
    if (s->tmp_fd < 0) {
        char tmp[CC_PATH];
        s->seq = atomic_fetch_add(&f->cc->seq, 1);
        cc_slot_name(f, i, "tmp", tmp);
        cc_acct_lock(f->cc); /* counted and made together: a rescan sees it at its full length */
        cc_reserve_locked(f->cc, s->len);
        s->tmp_fd = snap_tmp_open(tmp, O_WRONLY | O_EXCL, 0644);
        int e = errno;
        cc_acct_unlock(f->cc);
        if (s->tmp_fd < 0) {
            cc_unreserve(f->cc, s->len);
            s->dead = true;
            cc_warn(f->cc, "a temp file", e);
            return;
        }
    }
    while (n) {
        ssize_t w = pwrite(s->tmp_fd, p, n, (off_t)at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            cc_slot_failed(f, i, "writing a chunk", w < 0 ? errno : ENOSPC);
            return;
        }
        p += w, n -= (size_t)w, at += (uint64_t)w, s->got += (uint64_t)w;
    }
}

static void cc_learn_size(struct cc_fill *f, uint64_t size)
{
    if (f->size != STORE_SIZE_UNKNOWN)
        return;
    f->size = size;
    cc_size_put(f->cc, f->name, size);
    for (unsigned i = 0; i < f->n; i++)
        f->s[i].len = cc_chunk_len(f->cc, size, f->k0 + i);
}

/* The inner store's bytes, in order from f->pos: into the temp files and the caller's buffer. */
static int cc_sink(void *p, const uint8_t *data, size_t n)
{
    struct cc_fill *f = p;
    struct chunkcache *cc = f->cc;
    if (f->res.total_size != STORE_SIZE_UNKNOWN)
        cc_learn_size(f, f->res.total_size);
    uint64_t at = f->pos, end = at + n;
    for (uint64_t q = at; q < end;) {
        uint64_t k = q / cc->chunk, qe = snap_min_u64(end, (k + 1) * cc->chunk);
        if (k >= f->k0 && k < f->k0 + f->n)
            cc_slot_write(f, (unsigned)(k - f->k0), q - k * cc->chunk, data + (q - at), (size_t)(qe - q));
        q = qe;
    }
    f->pos = end;
    uint64_t lo = snap_max_u64(at, f->dlo), hi = snap_min_u64(end, f->dhi);
    if (lo < hi) {
        memcpy(f->dst + (lo - f->dlo), data + (lo - at), (size_t)(hi - lo));
        if (cc_fwd_progress(&f->fwd, hi - f->dlo) != 0)
            return snap_fail(SNAP_ECANCELED, "%s/%s: read canceled", cc->base.url, f->key);
    }
    return 0;
}

static void cc_publish(struct cc_fill *f, unsigned i)
{
    struct cc_slot *s = &f->s[i];
    char tmp[CC_PATH], final[CC_PATH];
    cc_slot_name(f, i, "tmp", tmp);
    cc_slot_name(f, i, "bin", final);
    if (fdatasync(s->tmp_fd) < 0) {
        cc_slot_failed(f, i, "fdatasync of a chunk", errno);
        return;
    }
    close(s->tmp_fd);
    s->tmp_fd = -1;
    /* rename, not link: a file of the wrong length may be in the way, and only this lock's holder
     * writes the name */
    if (rename(tmp, final) < 0) {
        int e = errno;
        unlink(tmp);
        cc_unreserve(f->cc, s->len);
        cc_warn(f->cc, "renaming a chunk into place", e);
        return;
    }
    cc_count(f->cc, &f->cc->st.files_written, 1);
}

/* Publish the complete chunks, drop the others, let go of the locks. */
static void cc_fill_end(struct cc_fill *f, int err)
{
    for (unsigned i = 0; i < f->n; i++) {
        struct cc_slot *s = &f->s[i];
        if (!err && !s->dead && s->tmp_fd >= 0 && s->len && s->got == s->len)
            cc_publish(f, i);
        else
            cc_slot_drop(f, i);
        char lock[CC_PATH];
        cc_slot_name(f, i, "lock", lock);
        cc_lock_release(lock, s->lock_fd);
    }
    f->n = 0;
}

/* Wait for the lock file `lock` of `what` (a chunk or a frame of key): 0 with *fd the lock, or 0
 * with *fd -1 when giving up (a timeout or an error: read uncached); or a snap_err (canceled by
 * the caller's progress, reported as `done` bytes every 100 ms). */
static int cc_lock_wait(struct chunkcache *cc, const char *lock, const char *what, const char *key,
                        struct cc_fwd *fwd, uint64_t done, int *fd)
{
    uint64_t start = snap_now_ns(), last = start;
    unsigned sleep_us = 1000;
    bool waited = false;
    *fd = -1;
    for (;;) {
        int r = cc_lock_try(lock, fd);
        if (r < 0)
            cc_warn(cc, "a lock file", errno);
        if (r != 0)
            return 0;
        if (!waited)
            cc_count(cc, &cc->st.waits, 1);
        waited = true;
        uint64_t now = snap_now_ns();
        if (now - start >= (uint64_t)cc->wait_ms * 1000000u) {
            snap_info("chunk cache %s: %s of %s still being fetched by another after %u ms; reading it from the "
                      "store", cc->root, what, key, cc->wait_ms);
            return 0;
        }
        if (now - last >= 100000000u) {
            last = now;
            if (cc_fwd_progress(fwd, done) != 0)
                return snap_fail(SNAP_ECANCELED, "%s/%s: read canceled", cc->base.url, key);
        }
        usleep(sleep_us);
        sleep_us = sleep_us < 16000 ? sleep_us * 2 : 16000;
    }
}

/* Add the chunks after k0 that [.., end) needs, nobody fills and are not there, to the run. */
static void cc_fill_extend(struct cc_fill *f, uint64_t end)
{
    struct chunkcache *cc = f->cc;
    if (f->size == STORE_SIZE_UNKNOWN)
        return; /* the run would be a guess past the object's end */
    while (f->n < CC_RUN_MAX) {
        uint64_t k = f->k0 + f->n;
        if (k * cc->chunk >= snap_min_u64(end, f->size) || cc_chunk_exists(cc, f->name, f->size, k))
            return;
        char lock[CC_PATH];
        cc_slot_name(f, f->n, "lock", lock);
        int fd;
        if (cc_lock_try(lock, &fd) != 1)
            return;
        if (cc_chunk_exists(cc, f->name, f->size, k)) { /* made since we looked */
            cc_lock_release(lock, fd);
            return;
        }
        f->s[f->n++] = (struct cc_slot){.lock_fd = fd, .tmp_fd = -1, .len = cc_chunk_len(cc, f->size, k)};
    }
}

/* The run is locked: stream [pos, its end), then the first chunk's head [its start, pos).
 * Returns the inner store's error for the caller's part; a failed head only drops chunk k0. */
static int cc_fill_stream(struct cc_fill *f, uint64_t pos)
{
    struct chunkcache *cc = f->cc;
    uint64_t stop = (f->k0 + f->n) * cc->chunk;
    if (f->size != STORE_SIZE_UNKNOWN)
        stop = snap_min_u64(stop, f->size);
    f->pos = pos;
    f->res = (struct store_read_result){0, STORE_SIZE_UNKNOWN};
    cc_count(cc, &cc->st.inner_reads, 1);
    int err = store_read_stream(cc->inner, f->key, pos, stop - pos, cc_sink, f, &f->res);
    if (f->res.total_size != STORE_SIZE_UNKNOWN)
        cc_learn_size(f, f->res.total_size);
    else if (!err && f->res.bytes < stop - pos)
        cc_learn_size(f, pos + f->res.bytes); /* the object ended there */
    uint64_t clo = f->k0 * cc->chunk;
    if (err || pos == clo || f->s[0].dead || f->s[0].tmp_fd < 0)
        return err;
    f->pos = clo;
    f->dhi = f->dlo; /* nothing of the head goes to the caller */
    struct store_read_result hr = {0, STORE_SIZE_UNKNOWN};
    cc_count(cc, &cc->st.inner_reads, 1);
    if (store_read_stream(cc->inner, f->key, clo, pos - clo, cc_sink, f, &hr) != 0 || hr.bytes != pos - clo)
        cc_slot_drop(f, 0);
    return 0;
}

/* Read [pos, piece_end) of chunk k0 straight from the inner store, uncached. */
static int cc_uncached(struct cc_fill *f, uint64_t pos, uint64_t piece_end, uint64_t *got)
{
    struct store_read_result r = {0, STORE_SIZE_UNKNOWN};
    struct cc_fwd fwd = {f->fwd.fn, f->fwd.ctx, f->fwd.base + (pos - f->dlo)};
    cc_count(f->cc, &f->cc->st.inner_reads, 1);
    cc_count(f->cc, &f->cc->st.uncached, 1);
    int err = store_read(f->cc->inner, f->key, pos, piece_end - pos, f->dst + (pos - f->dlo), cc_fwd_progress,
                         &fwd, &r);
    if (r.total_size != STORE_SIZE_UNKNOWN)
        cc_learn_size(f, r.total_size);
    *got = r.bytes;
    return err;
}

/* A miss at pos (in chunk k0) of the caller's [off, end): fill the chunk (and maybe the next
 * ones), delivering [pos, ...) to the caller; *got: how many of its bytes from pos on arrived (0:
 * the chunk was made meanwhile, look again). */
static int cc_fill_run(struct cc_fill *f, uint64_t pos, uint64_t end, uint64_t *got)
{
    struct chunkcache *cc = f->cc;
    f->k0 = pos / cc->chunk;
    f->dhi = end;
    f->n = 0;
    uint64_t piece_end = snap_min_u64(end, (f->k0 + 1) * cc->chunk);
    *got = 0;
    if (cc->usage_fd < 0 || cc_mkdirs(cc, f->name, f->dir) < 0) {
        if (cc->usage_fd >= 0)
            cc_warn(cc, "making the object's directory", errno);
        return cc_uncached(f, pos, piece_end, got);
    }
    char lock[CC_PATH], what[40];
    cc_slot_name(f, 0, "lock", lock);
    snprintf(what, sizeof what, "chunk %" PRIu64, f->k0);
    int fd, err = cc_lock_wait(cc, lock, what, f->key, &f->fwd, pos - f->dlo, &fd);
    if (err)
        return err;
    if (fd < 0)
        return cc_uncached(f, pos, piece_end, got);
    f->size = cc_size_get(cc, f->name);
    f->n = 1;
    f->s[0] = (struct cc_slot){.lock_fd = fd, .tmp_fd = -1, .len = cc_chunk_len(cc, f->size, f->k0)};
    if (f->size != STORE_SIZE_UNKNOWN && (pos >= f->size || cc_chunk_exists(cc, f->name, f->size, f->k0))) {
        cc_fill_end(f, SNAP_ECANCELED); /* made while we waited (or nothing to make) */
        return 0;
    }
    cc_fill_extend(f, end);
    err = cc_fill_stream(f, pos);
    *got = snap_min_u64(f->res.bytes, end - pos);
    cc_fill_end(f, err);
    return err;
}

/* ---- reads ---- */

/* The object's size and the file name of key, for the hit-only calls below; false: not cached. */
static bool cc_known(struct store *s, const char *key, char name[CC_NAME], uint64_t *size)
{
    struct chunkcache *cc = (struct chunkcache *)s;
    if (!store_is_chunkcache(s) || cc_name(cc, key, name))
        return false;
    *size = cc_size_get(cc, name);
    return *size != STORE_SIZE_UNKNOWN;
}

int store_chunkcache_read_hit(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst)
{
    struct chunkcache *cc = (struct chunkcache *)s;
    char name[CC_NAME];
    uint64_t size, end = off + len;
    if (!cc_known(s, key, name, &size) || end < off || end > size)
        return SNAP_EAGAIN;
    for (uint64_t pos = off; pos < end;) {
        uint64_t k = pos / cc->chunk, piece_end = snap_min_u64(end, (k + 1) * cc->chunk);
        struct cc_fwd fwd = {NULL, NULL, 0};
        int err = 0;
        if (!cc_hit(cc, name, size, k, pos, piece_end, (uint8_t *)dst + (pos - off), &fwd, &err) || err)
            return SNAP_EAGAIN; /* a read error of a chunk file: the caller fetches instead */
        pos = piece_end;
    }
    return 0;
}

bool store_chunkcache_has(struct store *s, const char *key, uint64_t off, uint64_t len)
{
    struct chunkcache *cc = (struct chunkcache *)s;
    char name[CC_NAME];
    uint64_t size, end = off + len;
    if (!cc_known(s, key, name, &size) || end < off || end > size)
        return false;
    for (uint64_t k = off / cc->chunk; k * cc->chunk < end; k++)
        if (!cc_chunk_exists(cc, name, size, k))
            return false;
    return true;
}

static int cc_read(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
                   store_progress_fn progress, void *ctx, struct store_read_result *res)
{
    struct chunkcache *cc = (struct chunkcache *)s;
    uint8_t *d = dst;
    char name[CC_NAME];
    if (cc_name(cc, key, name)) { /* a key too long for a file name: not cached */
        cc_count(cc, &cc->st.uncached, 1);
        return store_read(cc->inner, key, off, len, dst, progress, ctx, res);
    }
    uint64_t size = cc_size_get(cc, name);
    if (size != STORE_SIZE_UNKNOWN) {
        res->total_size = size;
        if (off > size)
            return snap_fail(SNAP_ERANGE, "%s/%s: read at offset %" PRIu64 " is past the end (%" PRIu64 " bytes)",
                             s->url, key, off, size);
        len = snap_min_u64(len, size - off);
    }
    struct cc_fill f = {.cc = cc, .key = key, .name = name, .size = size, .dst = d, .dlo = off, .fwd = {progress, ctx, 0}};
    uint64_t pos = off, end = off + len;
    unsigned again = 0;
    while (pos < end) {
        uint64_t k = pos / cc->chunk, piece_end = snap_min_u64(end, (k + 1) * cc->chunk);
        struct cc_fwd fwd = {progress, ctx, pos - off};
        int err = 0;
        if (size != STORE_SIZE_UNKNOWN && cc_hit(cc, name, size, k, pos, piece_end, d + (pos - off), &fwd, &err)) {
            if (err)
                return err;
            res->bytes += piece_end - pos;
            pos = piece_end;
            continue;
        }
        uint64_t got;
        f.size = size;
        f.k0 = k;
        if (again > 8) /* a chunk that keeps vanishing between its fill and its read */
            err = cc_uncached(&f, pos, piece_end, &got);
        else
            err = cc_fill_run(&f, pos, end, &got);
        if (f.size != STORE_SIZE_UNKNOWN) {
            size = f.size;
            res->total_size = size;
            end = snap_min_u64(end, size);
        }
        res->bytes += got;
        pos += got;
        if (err)
            return err;
        if (!got && (size == STORE_SIZE_UNKNOWN || pos >= size))
            break; /* the object's end */
        again = got ? 0 : again + 1;
    }
    return 0;
}

/* ---- compressed frames (.frm) ---- */

/* {root}/{key less .lz4/.zstd}/{off %016x}-{len %x}.frm + tail, and that directory in dir. */
static int cc_frame_paths(struct chunkcache *cc, const char *key, uint64_t off, uint64_t len, char *path, char *lock,
                          char *dir)
{
    char name[CC_NAME];
    if (cc_name(cc, key, name))
        return -1;
    size_t n = strlen(name);
    if (n > 4 && !strcmp(name + n - 4, ".lz4"))
        name[n - 4] = '\0';
    else if (n > 5 && !strcmp(name + n - 5, ".zstd"))
        name[n - 5] = '\0';
    if (cc_path(path, CC_PATH, "%s/%s/%016" PRIx64 "-%" PRIx64 ".frm", cc->root, name, off, len) ||
        cc_path(lock, CC_PATH, "%s.lock", path))
        return -1;
    return cc->usage_fd >= 0 && cc_mkdirs(cc, name, dir) == 0 ? 0 : -1;
}

/* A whole frame file of len bytes into dst, checked by verify; a file that fails it is removed. */
static bool cc_frame_hit(struct chunkcache *cc, const char *path, uint64_t len, uint8_t *dst,
                         store_verify_fn verify, void *vctx)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && (uint64_t)st.st_size == len && snap_pread_full(fd, dst, len, 0, path) == 0;
    if (ok)
        cc_touch(fd, &st);
    close(fd);
    int verr = ok && verify ? verify(vctx, dst, len) : 0;
    if (verr) {
        snap_warn("chunk cache %s: %s does not check (%s); removed, fetching the frame again", cc->root, path,
                  snap_errmsg(verr));
        unlink(path);
        ok = false;
    }
    if (ok)
        cc_count(cc, &cc->st.hits, 1);
    return ok;
}

/* Store a fetched and checked frame (its lock held): temp file, fdatasync, rename. */
static void cc_frame_put(struct chunkcache *cc, const char *path, const uint8_t *p, uint64_t len)
{
    char tmp[CC_PATH + 48];
    snprintf(tmp, sizeof tmp, "%s" CC_TMP_TAG "%ld.%u", path, (long)getpid(), atomic_fetch_add(&cc->seq, 1));
    cc_acct_lock(cc);
    cc_reserve_locked(cc, len);
    int fd = snap_tmp_open(tmp, O_WRONLY | O_EXCL, 0644), e = errno;
    cc_acct_unlock(cc);
    if (fd >= 0) {
        ssize_t w = pwrite(fd, p, (size_t)len, 0);
        e = w == (ssize_t)len ? 0 : w < 0 ? errno : ENOSPC;
        if (!e && fdatasync(fd) < 0)
            e = errno;
        close(fd);
        if (!e && rename(tmp, path) < 0) /* only the lock's holder writes the name */
            e = errno;
    }
    if (!e) {
        cc_count(cc, &cc->st.files_written, 1);
        return;
    }
    unlink(tmp);
    cc_unreserve(cc, len);
    cc_warn(cc, "writing a frame", e);
    if (e == ENOSPC || e == EDQUOT)
        cc_shrink(cc);
}

int store_chunkcache_read_frame(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
                                store_verify_fn verify, void *vctx, store_progress_fn progress, void *ctx,
                                struct store_read_result *res)
{
    struct chunkcache *cc = (struct chunkcache *)s;
    char path[CC_PATH], lock[CC_PATH], dir[CC_PATH];
    int fd = -1, err = 0;
    bool is_cc = store_is_chunkcache(s), cached = is_cc && cc_frame_paths(cc, key, off, len, path, lock, dir) == 0;
    if (cached && cc_frame_hit(cc, path, len, dst, verify, vctx)) {
        res->bytes = len;
        return 0;
    }
    struct cc_fwd fwd = {progress, ctx, 0};
    if (cached && (err = cc_lock_wait(cc, lock, "a frame", key, &fwd, 0, &fd)) != 0)
        return err;
    if (fd >= 0 && cc_frame_hit(cc, path, len, dst, verify, vctx)) { /* made while we waited */
        cc_lock_release(lock, fd);
        res->bytes = len;
        return 0;
    }
    struct store *from = is_cc ? cc->inner : s;
    if (is_cc)
        cc_count(cc, &cc->st.inner_reads, 1);
    err = store_read(from, key, off, len, dst, progress, ctx, res);
    if (!err && res->bytes == len && verify)
        err = verify(vctx, dst, len);
    if (!err && res->bytes == len && fd >= 0)
        cc_frame_put(cc, path, dst, len);
    if (fd >= 0)
        cc_lock_release(lock, fd);
    return err;
}

static const struct store_ops chunkcache_ops = {
    .scheme = "chunkcache",
    .open = NULL,
    .close = cc_close,
    .stat = cc_stat,
    .read = cc_read,
};
