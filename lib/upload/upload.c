/* upload.c -- one file to a store: file copy, single PUT, or parallel multipart from a
 * read-only mmap with the SHA-256 taken in the same pass (see upload.h for the whole story).
 *
 * Memory.  Pages of a file mapping count in RSS once touched, by the kernel copying a part into
 * the socket as much as by the hasher.  Each worker is told after every 1 MiB step that the
 * HTTP client sent (store_mp_part's sent callback), and the hasher follows the sent bytes in order:
 * - the hasher drops what it has hashed (everything it hashes has been sent);
 * - a worker drops a step it sent far ahead of the hasher (more than UPLOAD_HOT_WINDOW): the
 *   hasher will fault those pages in again from the page cache, which is cheap, rather than
 *   keep up to concurrency x part size bytes resident.
 * So at most the window plus one step per worker is resident, whatever the file and part
 * size.  Dropping is only ever an optimisation: a retried part faults its pages in again.
 */
#include "upload/upload.h"

#include "base/cancel.h"
#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "base/util.h"
#include "crypto/md5.h"
#include "crypto/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define UPLOAD_HOT_WINDOW (16ull << 20) /* sent bytes this close to the hasher stay mapped */
#define UPLOAD_HASH_STEP (1ull << 20)
#define UPLOAD_STACK (512u * 1024)

uint64_t upload_part_size(uint64_t size, uint64_t want, uint64_t min)
{
    if (!min)
        min = UPLOAD_PART_MIN;
    uint64_t p = want ? want : UPLOAD_PART_DEFAULT;
    if (p < min)
        p = min;
    uint64_t need = (size + UPLOAD_MAX_PARTS - 1) / UPLOAD_MAX_PARTS;
    if (p < need)
        p = snap_round_up(need, 1ull << 20);
    return p;
}

struct job {
    struct store *s;
    const char *key;
    const char *id;
    const uint8_t *map;
    uint64_t size, psize;
    uint32_t nparts;
    struct store_part *parts;
    uint64_t page;
    atomic_uint next;                /* next part to take */
    atomic_bool failed;
    _Atomic uint64_t *hi;            /* per part: bytes of it sent at least once (monotonic) */
    _Atomic uint64_t hashed;         /* the hasher's position */
    _Atomic uint64_t sent_total;     /* for progress */
    pthread_mutex_t lock;            /* err, errmsg; and the hasher's sleep */
    pthread_cond_t cond;
    int err;
    char errmsg[1024];
};

/* What a worker tells its sent-observer about the part in flight. */
struct worker_part {
    struct job *j;
    uint32_t idx;
    uint64_t prev;                   /* bytes of this attempt already seen */
};

static void drop_pages(const struct job *j, uint64_t a, uint64_t b)
{
    a = a / j->page * j->page;
    b = snap_min_u64(snap_round_up(b, j->page), snap_round_up(j->size, j->page));
    if (b > a)
        madvise((void *)(j->map + a), (size_t)(b - a), MADV_DONTNEED);
}

static void job_wake(struct job *j)
{
    pthread_mutex_lock(&j->lock);
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->lock);
}

static void on_sent(void *ctx, uint64_t sent)
{
    struct worker_part *w = ctx;
    struct job *j = w->j;
    if (sent <= w->prev)
        w->prev = 0; /* a new attempt of the part */
    uint64_t base = (uint64_t)w->idx * j->psize;
    uint64_t old = atomic_load(&j->hi[w->idx]);
    while (sent > old && !atomic_compare_exchange_weak(&j->hi[w->idx], &old, sent))
        ;
    atomic_fetch_add(&j->sent_total, sent - w->prev);
    if (base + w->prev >= atomic_load(&j->hashed) + UPLOAD_HOT_WINDOW)
        drop_pages(j, base + w->prev, base + sent);
    w->prev = sent;
    job_wake(j);
}

static void job_fail(struct job *j, int err)
{
    pthread_mutex_lock(&j->lock);
    if (!j->err) {
        j->err = err;
        snprintf(j->errmsg, sizeof j->errmsg, "%s", snap_errmsg(err));
    }
    atomic_store(&j->failed, true);
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->lock);
}

static void *worker(void *arg)
{
    struct job *j = arg;
    struct worker_part w = {.j = j};
    while (!atomic_load(&j->failed)) {
        uint32_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->nparts)
            break;
        uint64_t off = (uint64_t)i * j->psize, len = snap_min_u64(j->psize, j->size - off);
        w.idx = i;
        w.prev = 0;
        int err = store_mp_part(j->s, j->key, j->id, i + 1, j->map + off, (size_t)len, on_sent, &w,
                                j->parts[i].etag);
        if (err) {
            job_fail(j, err);
            break;
        }
        j->parts[i].number = i + 1;
        /* A backend that does not go through the HTTP client reports here at the end. */
        if (atomic_load(&j->hi[i]) < len)
            on_sent(&w, len);
    }
    return NULL;
}

/* Hash the mapping in order behind the senders; report progress; drop hashed pages. */
static void hash_behind(struct job *j, struct sha256_ctx *h, const struct upload_opts *o)
{
    uint64_t pos = 0, dropped = 0, last_report = UINT64_MAX;
    while (pos < j->size && !atomic_load(&j->failed)) {
        if (snap_cancelled(o->cancel)) {
            job_fail(j, snap_fail(SNAP_EINTR, "%s/%s: interrupted", j->s->url, j->key));
            break;
        }
        uint32_t p = (uint32_t)(pos / j->psize);
        uint64_t avail = (uint64_t)p * j->psize + atomic_load(&j->hi[p]);
        if (avail > pos) {
            uint64_t n = snap_min_u64(avail - pos, UPLOAD_HASH_STEP);
            if (h)
                sha256_update(h, j->map + pos, (size_t)n);
            pos += n;
            atomic_store(&j->hashed, pos);
            if (pos - dropped >= UPLOAD_HASH_STEP || pos == j->size) {
                drop_pages(j, dropped, pos);
                dropped = pos / j->page * j->page;
            }
        } else {
            pthread_mutex_lock(&j->lock);
            if (!atomic_load(&j->failed) && (uint64_t)p * j->psize + atomic_load(&j->hi[p]) <= pos) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 100 * 1000000;
                if (ts.tv_nsec >= 1000000000)
                    ts.tv_sec++, ts.tv_nsec -= 1000000000;
                pthread_cond_timedwait(&j->cond, &j->lock, &ts);
            }
            pthread_mutex_unlock(&j->lock);
        }
        uint64_t done = snap_min_u64(atomic_load(&j->sent_total), j->size);
        if (o->progress && done != last_report)
            o->progress(o->progress_ctx, done, j->size), last_report = done;
    }
}

/* known: the sha256 is already in r and goes into the create (a store without set_meta). */
/* After a complete that failed with "no such upload": did it go through, its answer lost?
 * Only when the object's ETag is exactly S3's multipart ETag of our parts: the MD5 of their
 * MD5s, then "-N" (parts whose ETags are not MD5s cannot be checked: no). */
static bool completed_anyway(struct store *s, const char *key, uint64_t size, const struct store_part *parts,
                             uint32_t nparts)
{
    char msg[1024], want[64];
    snprintf(msg, sizeof msg, "%s", snap_errmsg(SNAP_ENOTFOUND));
    struct md5_ctx md5;
    md5_init(&md5);
    bool ok = true;
    for (uint32_t i = 0; i < nparts && ok; i++) {
        const char *e = parts[i].etag;
        uint8_t bin[16];
        size_t n = strlen(e);
        if (n == 34 && e[0] == '"' && e[33] == '"')
            e++, n -= 2;
        char hex[33];
        ok = n == 32 && (memcpy(hex, e, 32), hex[32] = '\0', snap_unhex(hex, bin, 16) == 0);
        if (ok)
            md5_update(&md5, bin, 16);
    }
    uint8_t sum[MD5_DIGEST_LEN];
    md5_final(&md5, sum);
    char hex[33];
    snap_hex(sum, 16, hex);
    snprintf(want, sizeof want, "\"%s-%u\"", hex, nparts);
    struct store_info info = {0};
    ok = ok && store_stat(s, key, &info) == 0 && info.size == size && strcasecmp(info.etag, want) == 0;
    if (!ok)
        snap_fail(SNAP_ENOTFOUND, "%s", msg);
    return ok;
}

static int multipart(struct store *s, const char *key, const uint8_t *map, uint64_t size, uint64_t psize,
                     const struct upload_opts *o, bool known, struct upload_result *r)
{
    struct job j = {.s = s, .key = key, .map = map, .size = size, .psize = psize,
                    .nparts = (uint32_t)((size + psize - 1) / psize), .page = (uint64_t)sysconf(_SC_PAGESIZE)};
    unsigned nw = o->concurrency ? o->concurrency : UPLOAD_CONCURRENCY_DEFAULT;
    if (nw > j.nparts)
        nw = j.nparts;
    j.parts = snap_calloc(j.nparts, sizeof *j.parts);
    j.hi = snap_calloc(j.nparts, sizeof *j.hi);
    pthread_t *th = snap_calloc(nw, sizeof *th);
    char *id = NULL;
    int err = 0;
    if (!j.parts || !j.hi || !th)
        err = snap_fail(SNAP_ENOMEM, "%s/%s: out of memory for %u parts", s->url, key, j.nparts);
    if (!err)
        err = store_mp_create(s, key, &(struct store_put_opts){.sha256 = known ? r->sha256 : NULL, .uncompressed_size = o->uncompressed_size}, &id);
    if (err) {
        snap_free(j.parts);
        snap_free((void *)j.hi);
        snap_free(th);
        return err;
    }
    j.id = id;
    pthread_mutex_init(&j.lock, NULL);
    pthread_cond_init(&j.cond, NULL);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, UPLOAD_STACK);
    unsigned started = 0;
    for (; started < nw; started++) {
        int rc = pthread_create(&th[started], &attr, worker, &j);
        if (rc) {
            errno = rc;
            job_fail(&j, snap_fail_errno("%s/%s: start upload thread", s->url, key));
            break;
        }
    }
    pthread_attr_destroy(&attr);
    struct sha256_ctx h;
    sha256_init(&h);
    hash_behind(&j, known ? NULL : &h, o);
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (!known)
        sha256_final(&h, r->sha256);
    err = j.err ? snap_fail(j.err, "%s", j.errmsg) : 0;
    if (!err && snap_cancelled(o->cancel))
        err = snap_fail(SNAP_EINTR, "%s/%s: interrupted", s->url, key);
    if (!err)
        err = store_mp_complete(s, key, id, j.parts, j.nparts, r->etag);
    if (err == SNAP_ENOTFOUND && completed_anyway(s, key, size, j.parts, j.nparts)) {
        /* The complete went through but its answer was lost; the retry found no upload. */
        err = 0;
        r->etag[0] = '\0';
    }
    if (err) {
        /* Nothing may stay behind: abort, keeping the first failure's message. */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", snap_errmsg(err));
        int ae = store_mp_abort(s, key, id);
        if (ae)
            snap_fail(err, "%s; and the abort failed too (%s): the parts stay until a lifecycle rule "
                      "removes them (upload id %s)", msg, snap_errmsg(ae), id);
        else
            snap_fail(err, "%s; the upload was aborted", msg);
    }
    r->parts = j.nparts;
    pthread_cond_destroy(&j.cond);
    pthread_mutex_destroy(&j.lock);
    snap_free(id);
    snap_free(j.parts);
    snap_free((void *)j.hi);
    snap_free(th);
    return err;
}

/* Hash a mapping, dropping pages behind (the single-PUT and file-copy paths); step (if set) is
 * told the position after each 8 MiB.  An interrupt stops it: SNAP_EINTR. */
static int hash_map(struct store *s, const char *key, const uint8_t *map, uint64_t size, uint8_t out[32],
                    const struct snap_cancel *cancel, void (*step)(void *ctx, uint64_t pos), void *ctx)
{
    struct sha256_ctx h;
    sha256_init(&h);
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    for (uint64_t pos = 0; pos < size;) {
        if (snap_cancelled(cancel))
            return snap_fail(SNAP_EINTR, "%s/%s: interrupted; nothing was uploaded", s->url, key);
        uint64_t n = snap_min_u64(size - pos, 8 * UPLOAD_HASH_STEP);
        sha256_update(&h, map + pos, (size_t)n);
        madvise((void *)(map + pos), (size_t)snap_round_up(n, page), MADV_DONTNEED);
        pos += n;
        if (step)
            step(ctx, pos);
    }
    sha256_final(&h, out);
    return snap_cancelled(cancel) ? snap_fail(SNAP_EINTR, "%s/%s: interrupted; nothing was uploaded", s->url, key)
                                  : 0;
}

struct copy_job {
    struct store *s;
    const char *key;
    int fd;
    uint64_t size;
    const struct upload_opts *o;
    _Atomic uint64_t copied;
    atomic_bool hashed, done;        /* the hash is taken; the copy thread has returned */
    int err;
    char errmsg[1024];
};

/* put_file's progress: note the bytes copied; before the commit, wait for the hash (so an
 * interrupt while hashing still commits nothing); a cancel stops the copy. */
static int copy_progress(void *ctx, uint64_t done)
{
    struct copy_job *c = ctx;
    atomic_store(&c->copied, done);
    while (done == c->size && !atomic_load(&c->hashed) && !snap_cancelled(c->o->cancel))
        snap_sleep_until_ns(snap_now_ns() + 5000000);
    return snap_cancelled(c->o->cancel);
}

static void *copy_thread(void *arg)
{
    struct copy_job *c = arg;
    struct store_put_opts po = {.progress = copy_progress, .progress_ctx = c};
    c->err = store_put_file(c->s, c->key, c->fd, c->size, &po);
    if (c->err)
        snprintf(c->errmsg, sizeof c->errmsg, "%s", snap_errmsg(c->err));
    atomic_store(&c->done, true);
    return NULL;
}

/* Progress while hashing: the part that is both copied and hashed. */
static void copy_hashed(void *ctx, uint64_t pos)
{
    struct copy_job *c = ctx;
    if (c->o->progress)
        c->o->progress(c->o->progress_ctx, snap_min_u64(atomic_load(&c->copied), pos), c->size);
}

/* Report the copy's progress until it is done (a cancel ends it at its next step). */
static void copy_wait(struct copy_job *c, const struct upload_opts *o)
{
    while (!atomic_load(&c->done)) {
        if (o->progress)
            o->progress(o->progress_ctx, atomic_load(&c->copied), c->size);
        snap_sleep_until_ns(snap_now_ns() + 20000000);
    }
}

/* file://: the kernel copies while this thread hashes the mapping; then the sidecar.  Progress
 * is the copy's; an interrupt stops both, and the temp file is removed. */
static int copy_and_hash(struct store *s, const char *key, int fd, const uint8_t *map, uint64_t size,
                         const struct upload_opts *o, struct upload_result *r)
{
    struct copy_job c = {.s = s, .key = key, .fd = fd, .size = size, .o = o};
    pthread_t t;
    int rc = pthread_create(&t, NULL, copy_thread, &c);
    hash_map(s, key, map, size, r->sha256, o->cancel, rc ? NULL : copy_hashed, &c);
    atomic_store(&c.hashed, true);
    if (rc) {
        copy_thread(&c);
    } else {
        copy_wait(&c, o);
        pthread_join(t, NULL);
    }
    if (c.err == SNAP_ECANCELED && snap_cancelled(o->cancel))
        return snap_fail(SNAP_EINTR, "%s/%s: interrupted; nothing was written (the temp file is removed)",
                         s->url, key);
    if (c.err)
        return snap_fail(c.err, "%s", c.errmsg);
    struct store_put_opts po = {.sha256 = r->sha256, .uncompressed_size = o->uncompressed_size};
    int err = store_set_meta(s, key, size, &po);
    struct store_info info;
    if (!err && store_stat(s, key, &info) == 0)
        snprintf(r->etag, sizeof r->etag, "%s", info.etag);
    return err;
}

int upload_file(struct store *s, const char *key, const char *path, const struct upload_opts *opts,
                struct upload_result *r)
{
    static const struct upload_opts none;
    const struct upload_opts *o = opts ? opts : &none;
    memset(r, 0, sizeof *r);
    uint64_t t0 = snap_now_ns();
    uint64_t min = o->min_part_size ? o->min_part_size : UPLOAD_PART_MIN;
    if (o->part_size && o->part_size < min)
        return snap_fail(SNAP_EUSAGE, "part size %llu is below the minimum of %llu bytes",
                         (unsigned long long)o->part_size, (unsigned long long)min);
    if (o->concurrency > UPLOAD_CONCURRENCY_MAX)
        return snap_fail(SNAP_EUSAGE, "concurrency %u is above the maximum of %u", o->concurrency,
                         UPLOAD_CONCURRENCY_MAX);
    if (!store_can_write(s) && !store_can_put_file(s))
        return store_put(s, key, "", 0, NULL); /* says "read-only" */
    if (snap_cancelled(o->cancel))
        return snap_fail(SNAP_EINTR, "%s/%s: interrupted before it started", s->url, key);
    int fd;
    uint64_t size;
    int err = snap_open_regular(path, O_RDONLY, &fd, &size);
    if (err)
        return err;
    const uint8_t *map = NULL;
    if (size && (map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        err = snap_fail_errno("%s: mmap of %llu bytes", path, (unsigned long long)size);
        close(fd);
        return err;
    }
    uint64_t psize = upload_part_size(size, o->part_size, min);
    if (store_can_put_file(s)) {
        err = copy_and_hash(s, key, fd, map, size, o, r);
    } else if (size <= psize || !store_can_multipart(s)) {
        /* One request: hash first (pages stay hot for the send), metadata in the PUT itself. */
        err = hash_map(s, key, map, size, r->sha256, o->cancel, NULL, NULL);
        struct store_put_opts po = {.sha256 = r->sha256, .uncompressed_size = o->uncompressed_size};
        if (!err)
            err = store_put(s, key, size ? map : (const void *)"", (size_t)size, &po);
        struct store_info info;
        if (!err && store_stat(s, key, &info) == 0)
            snprintf(r->etag, sizeof r->etag, "%s", info.etag);
    } else {
        /* A backend that cannot replace metadata afterwards gets the hash first (a read pass). */
        bool known = !store_can_set_meta(s);
        err = known ? hash_map(s, key, map, size, r->sha256, o->cancel, NULL, NULL) : 0;
        if (!err)
            err = multipart(s, key, map, size, psize, o, known, r);
        if (!err && !known) {
            struct store_put_opts po = {.sha256 = r->sha256, .uncompressed_size = o->uncompressed_size};
            err = store_set_meta(s, key, size, &po);
            if (err)
                snap_fail_ctx(err, "%s/%s: uploaded, but its sha256 metadata could not be set", s->url, key);
        }
        struct store_info info; /* RGW's complete answer may carry an empty ETag */
        if (!err && !r->etag[0] && store_stat(s, key, &info) == 0)
            snprintf(r->etag, sizeof r->etag, "%s", info.etag);
    }
    if (o->progress && !err)
        o->progress(o->progress_ctx, size, size);
    if (map)
        munmap((void *)map, (size_t)size);
    close(fd);
    r->bytes = size;
    r->seconds = (double)(snap_now_ns() - t0) / 1e9;
    return err;
}
