/* chunkcache.c -- the read-through local chunk cache directory (a store in front of a store).
 *
 * Design notes
 *
 * Reads: the request is walked chunk by chunk.  A chunk whose file exists is pread from it (a
 * hit bumps the file's mtime, the LRU clock shared by every process on the root).  A run of
 * missing chunks goes to the inner store as one ranged read, straight into the caller's buffer
 * with the caller's progress callback (offset by what was already delivered), so a miss costs one
 * time to first byte and wakes the caller as bytes land, exactly as without the cache.
 *
 * Writes happen after the inner read returned (never delaying progress): the landed bytes go to
 * per-chunk assemblies -- a temp file plus the list of byte intervals it holds -- so a chunk can
 * be completed by several partial reads (a demand-first chunker asks for the part after the
 * reader's block, then the part before, then maybe small ranges).  Once an assembly holds every
 * byte it is fdatasync'd and linked to its final name (EEXIST: another process won, fine) and the
 * temp name removed.  A killed writer leaves only a temp file, removed by the next open.
 * Failures to write the cache never fail a read: the assembly is dropped.
 *
 * One mutex guards the assemblies and the index; it is held for local file I/O only (the
 * assembly pwrite, the link, evictions), never across an inner store read.  Hits take no lock.
 */
#include "store/chunkcache.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CC_LIMIT_DEFAULT (10ull << 30)
#define CC_CHUNK_DEFAULT (4u << 20)
#define CC_ASSEMBLIES 16
#define CC_INTERVALS 16
#define CC_INDEX_MAX (1u << 20)
#define CC_SCAN_DEPTH 16
#define CC_READ_STEP (1u << 20)

struct cc_assembly {
    char *final;                 /* NULL: a free slot */
    char tmp[PATH_MAX + 48];     /* final + ".tmp-{pid}-{n}" */
    int fd;
    uint64_t len, stamp;
    unsigned niv;
    struct { uint64_t a, b; } iv[CC_INTERVALS]; /* sorted, disjoint, not touching */
};

struct cc_entry {
    char *path;
    uint64_t bytes, stamp;       /* stamp: ns since the epoch (mtime as last seen) */
};

struct chunkcache {
    struct store base;
    struct store *inner;
    char *root;
    uint64_t limit;
    uint32_t chunk;
    pthread_mutex_t mu;
    struct cc_assembly as[CC_ASSEMBLIES];
    struct cc_entry *index;
    size_t nindex, capindex;
    uint64_t seq;
    struct chunkcache_stats st;
};

static const struct store_ops chunkcache_ops;

static uint64_t cc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

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
    if (r < 0 || (size_t)r >= n)
        return snap_fail(SNAP_EUSAGE, "chunk cache path too long: %s...", out);
    return 0;
}

static int cc_chunk_path(const struct chunkcache *cc, const char *key, uint64_t k, uint64_t len, char *out,
                         size_t n)
{
    return cc_path(out, n, "%s/%s/%012" PRIu64 "-%" PRIu64 ".bin", cc->root, key, k, len);
}

/* ---- the index and the limit (cc->mu held) ---- */

static void cc_index_remove(struct chunkcache *cc, size_t i)
{
    cc->st.bytes -= cc->index[i].bytes;
    snap_free(cc->index[i].path);
    cc->index[i] = cc->index[--cc->nindex];
}

static void cc_enforce_limit_locked(struct chunkcache *cc)
{
    while (cc->nindex && (cc->st.bytes > cc->limit || cc->nindex >= CC_INDEX_MAX)) {
        size_t old = 0;
        for (size_t i = 1; i < cc->nindex; i++)
            if (cc->index[i].stamp < cc->index[old].stamp)
                old = i;
        struct stat st;
        if (stat(cc->index[old].path, &st) < 0) {
            cc_index_remove(cc, old); /* gone already (another process evicted it) */
            continue;
        }
        if (cc_mtime(&st) > cc->index[old].stamp) {
            cc->index[old].stamp = cc_mtime(&st); /* used since we looked: not the oldest after all */
            continue;
        }
        unlink(cc->index[old].path);
        cc_index_remove(cc, old);
        cc->st.evictions++;
    }
}

/* Add a chunk file to the index; takes ownership of path. */
static void cc_index_add_locked(struct chunkcache *cc, char *path, uint64_t bytes, uint64_t stamp)
{
    if (cc->nindex == cc->capindex) {
        size_t ncap = cc->capindex ? cc->capindex * 2 : 64;
        struct cc_entry *ni = snap_reallocarray(cc->index, ncap, sizeof *ni);
        if (!ni) {
            snap_free(path); /* not indexed: it will not count toward the limit until reopened */
            return;
        }
        cc->index = ni;
        cc->capindex = ncap;
    }
    cc->index[cc->nindex++] = (struct cc_entry){path, bytes, stamp};
    cc->st.bytes += bytes;
}

/* ---- open: rebuild the index, remove dead writers' temp files ---- */

static bool cc_dead_writer(const char *name)
{
    const char *t = strstr(name, ".tmp-");
    if (!t)
        return false;
    long pid = strtol(t + 5, NULL, 10);
    return pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* "{12 digits}-{length}.bin" -> length, or 0 when the name is something else. */
static uint64_t cc_chunk_name_len(const char *name)
{
    size_t n = strlen(name);
    if (n < 18 || name[12] != '-' || strcmp(name + n - 4, ".bin") != 0)
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

static void cc_scan(struct chunkcache *cc, char *path, size_t plen, int depth)
{
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        size_t n = strlen(e->d_name);
        if (plen + 1 + n >= PATH_MAX)
            continue;
        path[plen] = '/';
        memcpy(path + plen + 1, e->d_name, n + 1);
        struct stat st;
        if (lstat(path, &st) == 0) {
            uint64_t want;
            if (S_ISDIR(st.st_mode) && depth < CC_SCAN_DEPTH) {
                cc_scan(cc, path, plen + 1 + n, depth + 1);
            } else if (S_ISREG(st.st_mode) && cc_dead_writer(e->d_name)) {
                unlink(path);
            } else if (S_ISREG(st.st_mode) && (want = cc_chunk_name_len(e->d_name)) != 0) {
                char *copy;
                if ((uint64_t)st.st_size != want)
                    unlink(path); /* not what its name says: never serve it */
                else if ((copy = snap_strdup(path)) != NULL)
                    cc_index_add_locked(cc, copy, want, cc_mtime(&st));
            }
        }
        path[plen] = '\0';
    }
    closedir(d);
}

int store_chunkcache_open(struct store *inner, const char *root, const struct chunkcache_opts *o,
                          struct store **out)
{
    static const struct chunkcache_opts defaults;
    if (!o)
        o = &defaults;
    uint32_t chunk = o->chunk_size ? o->chunk_size : CC_CHUNK_DEFAULT;
    if (mkdir(root, 0755) < 0 && errno != EEXIST)
        return snap_fail_errno("%s: chunk cache directory", root);
    struct chunkcache *cc = snap_calloc(1, sizeof *cc);
    if (!cc)
        return snap_fail(SNAP_ENOMEM, "%s: out of memory", root);
    cc->base.ops = &chunkcache_ops;
    cc->base.url = snap_strdup(inner->url); /* errors name the object, as the inner store would */
    cc->root = snap_strdup(root);
    if (!cc->base.url || !cc->root) {
        snap_free(cc->base.url);
        snap_free(cc->root);
        snap_free(cc);
        return snap_fail(SNAP_ENOMEM, "%s: out of memory", root);
    }
    cc->inner = inner;
    cc->limit = o->limit ? o->limit : CC_LIMIT_DEFAULT;
    cc->chunk = chunk;
    for (int i = 0; i < CC_ASSEMBLIES; i++)
        cc->as[i].fd = -1;
    pthread_mutex_init(&cc->mu, NULL);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", cc->root);
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        path[--n] = '\0';
    pthread_mutex_lock(&cc->mu);
    cc_scan(cc, path, n, 0);
    cc_enforce_limit_locked(cc);
    pthread_mutex_unlock(&cc->mu);
    *out = &cc->base;
    return 0;
}

static void cc_abandon(struct cc_assembly *a)
{
    if (a->fd >= 0) {
        close(a->fd);
        unlink(a->tmp);
    }
    a->fd = -1;
    snap_free(a->final);
    a->final = NULL;
}

static void cc_close(struct store *s)
{
    struct chunkcache *cc = (struct chunkcache *)s;
    for (int i = 0; i < CC_ASSEMBLIES; i++)
        cc_abandon(&cc->as[i]);
    for (size_t i = 0; i < cc->nindex; i++)
        snap_free(cc->index[i].path);
    snap_free(cc->index);
    pthread_mutex_destroy(&cc->mu);
    snap_free(cc->root);
    snap_free(cc->base.url);
    snap_free(cc);
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

static int cc_stat(struct store *s, const char *key, struct store_info *info)
{
    return store_stat(((struct chunkcache *)s)->inner, key, info);
}

/* ---- size.txt ---- */

static uint64_t cc_size_get(const struct chunkcache *cc, const char *key)
{
    char path[PATH_MAX], buf[32] = {0};
    if (cc_path(path, sizeof path, "%s/%s/size.txt", cc->root, key))
        return STORE_SIZE_UNKNOWN;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return STORE_SIZE_UNKNOWN;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    uint64_t v;
    if (r <= 0)
        return STORE_SIZE_UNKNOWN;
    buf[strcspn(buf, "\n")] = '\0';
    return snap_parse_u64(buf, &v, "size.txt") == 0 ? v : STORE_SIZE_UNKNOWN;
}

/* mkdir -p {root}/{key} and write size.txt atomically (temp + rename); failures are ignored. */
static void cc_size_put(struct chunkcache *cc, const char *key, uint64_t size)
{
    char path[PATH_MAX], tmp[PATH_MAX + 64];
    if (cc_path(path, sizeof path, "%s/%s/size.txt", cc->root, key))
        return;
    size_t base = strlen(cc->root);
    for (char *p = path + base + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    pthread_mutex_lock(&cc->mu);
    uint64_t n = cc->seq++;
    pthread_mutex_unlock(&cc->mu);
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld-%" PRIu64, path, (long)getpid(), n);
    char text[32];
    int len = snprintf(text, sizeof text, "%" PRIu64 "\n", size);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    int err = snap_write_full(fd, text, (size_t)len, tmp);
    close(fd);
    if (err || rename(tmp, path) < 0)
        unlink(tmp);
}

/* ---- assemblies (cc->mu held) ---- */

static void cc_publish_locked(struct chunkcache *cc, struct cc_assembly *a)
{
    bool ok = fdatasync(a->fd) == 0;
    close(a->fd);
    a->fd = -1;
    if (ok && link(a->tmp, a->final) == 0) {
        cc->st.files_written++;
        cc_index_add_locked(cc, a->final, a->len, cc_now());
        a->final = NULL;
    }
    unlink(a->tmp);
    snap_free(a->final);
    a->final = NULL;
    cc_enforce_limit_locked(cc);
}

/* Add [off, off+n) of the chunk at `final` (len bytes long) to its assembly. */
static void cc_record_locked(struct chunkcache *cc, const char *final, uint64_t len, uint64_t off,
                             const uint8_t *data, uint64_t n)
{
    struct cc_assembly *a = NULL, *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < CC_ASSEMBLIES; i++) {
        struct cc_assembly *s = &cc->as[i];
        if (!s->final)
            free_slot = free_slot ? free_slot : s;
        else if (!strcmp(s->final, final))
            a = s;
        else if (!oldest || s->stamp < oldest->stamp)
            oldest = s;
    }
    if (!a) {
        if (access(final, F_OK) == 0)
            return; /* someone else completed it */
        a = free_slot ? free_slot : oldest;
        cc_abandon(a);
        a->final = snap_strdup(final);
        if (!a->final)
            return;
        snprintf(a->tmp, sizeof a->tmp, "%s.tmp-%ld-%" PRIu64, final, (long)getpid(), cc->seq++);
        a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (a->fd < 0) {
            cc_abandon(a);
            return;
        }
        a->len = len;
        a->niv = 0;
    }
    a->stamp = cc_now();
    if (snap_pwrite_full(a->fd, data, (size_t)n, off, a->tmp) != 0) {
        cc_abandon(a);
        return;
    }
    /* Insert [off, off+n) and merge neighbours that overlap or touch. */
    uint64_t lo = off, hi = off + n;
    unsigned w = 0;
    for (unsigned i = 0; i < a->niv; i++) {
        if (a->iv[i].b < lo || a->iv[i].a > hi) {
            a->iv[w++] = a->iv[i];
        } else {
            lo = snap_min_u64(lo, a->iv[i].a);
            hi = snap_max_u64(hi, a->iv[i].b);
        }
    }
    if (w == CC_INTERVALS) {
        cc_abandon(a); /* too fragmented to be worth tracking */
        return;
    }
    unsigned pos = w;
    while (pos > 0 && a->iv[pos - 1].a > lo) {
        a->iv[pos] = a->iv[pos - 1];
        pos--;
    }
    a->iv[pos].a = lo;
    a->iv[pos].b = hi;
    a->niv = w + 1;
    if (a->niv == 1 && a->iv[0].a == 0 && a->iv[0].b >= a->len)
        cc_publish_locked(cc, a);
}

/* The inner store delivered [off, off+n) of key into data: keep the chunks' pieces. */
static void cc_record(struct chunkcache *cc, const char *key, uint64_t size, uint64_t off, const uint8_t *data,
                      uint64_t n)
{
    pthread_mutex_lock(&cc->mu);
    for (uint64_t pos = off; pos < off + n;) {
        uint64_t k = pos / cc->chunk, clo = k * cc->chunk;
        uint64_t end = snap_min_u64(off + n, clo + cc->chunk), len = snap_min_u64(cc->chunk, size - clo);
        char final[PATH_MAX];
        if (cc_chunk_path(cc, key, k, len, final, sizeof final) == 0)
            cc_record_locked(cc, final, len, pos - clo, data + (pos - off), end - pos);
        pos = end;
    }
    pthread_mutex_unlock(&cc->mu);
}

/* ---- reads ---- */

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

/* Serve [off, end) of chunk k from its file into dst; false (nothing reported) on a miss. */
static bool cc_hit(struct chunkcache *cc, const char *key, uint64_t size, uint64_t k, uint64_t off, uint64_t end,
                   uint8_t *dst, struct cc_fwd *fwd, int *err)
{
    uint64_t clo = k * cc->chunk, len = snap_min_u64(cc->chunk, size - clo);
    char path[PATH_MAX];
    if (cc_chunk_path(cc, key, k, len, path, sizeof path))
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != len) {
        close(fd);
        return false;
    }
    futimens(fd, NULL); /* the LRU clock; best effort (another user's file may refuse) */
    for (uint64_t pos = off; pos < end && !*err;) {
        uint64_t step = snap_min_u64(CC_READ_STEP, end - pos);
        *err = snap_pread_full(fd, dst + (pos - off), (size_t)step, pos - clo, path);
        pos += step;
        if (!*err && cc_fwd_progress(fwd, pos - off) != 0)
            *err = snap_fail(SNAP_ECANCELED, "%s/%s: read canceled", cc->base.url, key);
    }
    close(fd);
    if (!*err) {
        pthread_mutex_lock(&cc->mu);
        cc->st.hits++;
        pthread_mutex_unlock(&cc->mu);
    }
    return true;
}

static bool cc_chunk_exists(const struct chunkcache *cc, const char *key, uint64_t size, uint64_t k)
{
    char path[PATH_MAX];
    uint64_t clo = k * cc->chunk;
    return clo < size && cc_chunk_path(cc, key, k, snap_min_u64(cc->chunk, size - clo), path, sizeof path) == 0 &&
           access(path, F_OK) == 0;
}

static int cc_read(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
                   store_progress_fn progress, void *ctx, struct store_read_result *res)
{
    struct chunkcache *cc = (struct chunkcache *)s;
    uint8_t *d = dst;
    uint64_t size = cc_size_get(cc, key);
    if (size != STORE_SIZE_UNKNOWN) {
        res->total_size = size;
        if (off > size)
            return snap_fail(SNAP_ERANGE, "%s/%s: read at offset %" PRIu64 " is past the end (%" PRIu64 " bytes)",
                             s->url, key, off, size);
        len = snap_min_u64(len, size - off);
    }
    uint64_t pos = off, end = off + len;
    while (pos < end) {
        uint64_t k = pos / cc->chunk, piece_end = snap_min_u64(end, (k + 1) * cc->chunk);
        struct cc_fwd fwd = {progress, ctx, pos - off};
        int err = 0;
        if (size != STORE_SIZE_UNKNOWN && cc_hit(cc, key, size, k, pos, piece_end, d + (pos - off), &fwd, &err)) {
            if (err)
                return err;
            res->bytes += piece_end - pos;
            pos = piece_end;
            continue;
        }
        /* A run of missing chunks: one inner read. */
        uint64_t run_end = piece_end;
        while (run_end < end && !(size != STORE_SIZE_UNKNOWN && cc_chunk_exists(cc, key, size, run_end / cc->chunk)))
            run_end = snap_min_u64(end, run_end + cc->chunk);
        struct store_read_result ir;
        pthread_mutex_lock(&cc->mu);
        cc->st.inner_reads++;
        pthread_mutex_unlock(&cc->mu);
        err = store_read(cc->inner, key, pos, run_end - pos, d + (pos - off), cc_fwd_progress, &fwd, &ir);
        if (size == STORE_SIZE_UNKNOWN && ir.total_size != STORE_SIZE_UNKNOWN) {
            size = ir.total_size;
            cc_size_put(cc, key, size);
        }
        if (ir.total_size != STORE_SIZE_UNKNOWN)
            res->total_size = ir.total_size;
        if (size != STORE_SIZE_UNKNOWN && ir.bytes && pos + ir.bytes <= size)
            cc_record(cc, key, size, pos, d + (pos - off), ir.bytes);
        res->bytes += ir.bytes;
        if (err)
            return err;
        if (ir.bytes < run_end - pos)
            break; /* the object's end */
        pos = run_end;
    }
    return 0;
}

static const struct store_ops chunkcache_ops = {
    .scheme = "chunkcache",
    .open = NULL,
    .close = cc_close,
    .stat = cc_stat,
    .read = cc_read,
};
