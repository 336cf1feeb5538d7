/* access.c -- record what the client touches, replay a trace ahead of it (see access.h).
 *
 * Hot path: a request walks its blocks once through the recorder (one relaxed load per block
 * already seen) and, for first accesses, the `ready` bitmap; nothing is allocated and no lock is
 * taken.  The prefetch threads share nothing with requests but the two bitmaps and the `demand`
 * count (client reads in flight that the prefetch had not covered), which they poll before each
 * piece: a demand read is never queued behind a prefetch piece that has not started.
 */
#include "device/access.h"

#include "base/err.h"
#include "codec/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/util.h"
#include "chunker/chunker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#define ACCESS_THREADS_DEFAULT 2

/* A piece above the chunker's direct-read size never turns into a small range request. */
_Static_assert(ACCESS_PIECE > CHUNKER_DIRECT_MAX, "prefetch pieces must exceed CHUNKER_DIRECT_MAX");
#define ACCESS_THREADS_MAX 16

struct chunk_start {
    uint64_t chunk;                 /* device offset / ACCESS_CHUNK */
    uint64_t first;                 /* device offset of its first trace block */
};

struct access;
struct pf_thread {
    struct access *a;
    uint8_t *buf;                   /* one piece */
};

struct access {
    const struct dev_ops *inner;
    void *ctx;
    struct dev_ops ops;             /* what is exported: the inner ops, wrapped */
    uint64_t size, nblocks;
    uint32_t bs;
    struct trace_rec *rec;

    /* prefetch */
    _Atomic uint64_t *ready;        /* blocks the prefetch read */
    _Atomic uint64_t *want;         /* blocks the trace asks for */
    struct chunk_start *chunks;
    size_t nchunks;
    atomic_size_t next_chunk;
    pthread_t tid[ACCESS_THREADS_MAX];
    struct pf_thread th[ACCESS_THREADS_MAX];
    unsigned nthreads;
    atomic_bool stop;
    atomic_uint running;
    atomic_int demand;
    pthread_mutex_t stop_mu;        /* one stopper at a time */

    _Atomic uint64_t trace_blocks, prefetched, used, missed, chunks_done;
};

static bool bit_get(_Atomic uint64_t *bits, uint64_t b)
{
    return atomic_load_explicit(&bits[b / 64], memory_order_acquire) >> (b % 64) & 1;
}

/* Set bit b; true when it was clear. */
static bool bit_set(_Atomic uint64_t *bits, uint64_t b)
{
    uint64_t m = (uint64_t)1 << (b % 64);
    return !(atomic_fetch_or_explicit(&bits[b / 64], m, memory_order_acq_rel) & m);
}

/* ---- the wrapped ops ------------------------------------------------------------------------ */

/* Record [off, off+len) as accessed; for reads, count first reads against the prefetch and say
 * whether one of them is a block the prefetch has not brought in (the read is a demand miss). */
static bool note(struct access *a, uint64_t off, uint64_t len, enum trace_access t)
{
    if (!len || off >= a->size)
        return false;
    uint64_t last = (snap_min_u64(off + len, a->size) - 1) / a->bs;
    bool miss = false;
    for (uint64_t b = off / a->bs; b <= last; b++) {
        if (!trace_rec_touch(a->rec, b, t) || t != TRACE_READ)
            continue;
        if (a->ready && bit_get(a->ready, b)) {
            if (bit_get(a->want, b))
                atomic_fetch_add_explicit(&a->used, 1, memory_order_relaxed);
        } else {
            atomic_fetch_add_explicit(&a->missed, 1, memory_order_relaxed);
            miss = true;
        }
    }
    return miss;
}

static int w_pread(void *ctx, void *buf, uint32_t len, uint64_t off)
{
    struct access *a = ctx;
    bool demand = note(a, off, len, TRACE_READ) && atomic_load_explicit(&a->running, memory_order_relaxed);
    if (demand)
        atomic_fetch_add(&a->demand, 1);
    int err = a->inner->pread(a->ctx, buf, len, off);
    if (demand)
        atomic_fetch_sub(&a->demand, 1);
    return err;
}

static int w_pwrite(void *ctx, const void *buf, uint32_t len, uint64_t off, bool fua)
{
    struct access *a = ctx;
    note(a, off, len, TRACE_WRITE);
    return a->inner->pwrite(a->ctx, buf, len, off, fua);
}

/* The fast paths record an access only when they did it; SNAP_EAGAIN leaves it to pread/pwrite. */
static int w_pread_nowait(void *ctx, void *buf, uint32_t len, uint64_t off)
{
    struct access *a = ctx;
    int err = a->inner->pread_nowait(a->ctx, buf, len, off);
    if (!err)
        note(a, off, len, TRACE_READ);
    return err;
}

static int w_read_ref(void *ctx, uint32_t len, uint64_t off, int *fd, uint64_t *fd_off)
{
    struct access *a = ctx;
    int err = a->inner->read_ref(a->ctx, len, off, fd, fd_off);
    if (!err)
        note(a, off, len, TRACE_READ);
    return err;
}

static int w_pwrite_nowait(void *ctx, const void *buf, uint32_t len, uint64_t off, bool fua)
{
    struct access *a = ctx;
    int err = a->inner->pwrite_nowait(a->ctx, buf, len, off, fua);
    if (!err)
        note(a, off, len, TRACE_WRITE);
    return err;
}

static int w_flush(void *ctx)
{
    struct access *a = ctx;
    return a->inner->flush(a->ctx);
}

static int w_trim(void *ctx, uint32_t len, uint64_t off, bool fua)
{
    struct access *a = ctx;
    note(a, off, len, TRACE_WRITE);
    return a->inner->trim(a->ctx, len, off, fua);
}

static int w_zero(void *ctx, uint32_t len, uint64_t off, bool may_trim, bool fua)
{
    struct access *a = ctx;
    note(a, off, len, TRACE_WRITE);
    return a->inner->zero(a->ctx, len, off, may_trim, fua);
}

static int w_cache(void *ctx, uint32_t len, uint64_t off)
{
    struct access *a = ctx;
    return a->inner->cache(a->ctx, len, off);
}

static int w_extents(void *ctx, uint32_t len, uint64_t off, struct dev_extents *x)
{
    struct access *a = ctx;
    return a->inner->extents(a->ctx, len, off, x);
}

const struct dev_ops *access_ops(const struct access *a) { return &a->ops; }

/* ---- prefetch ------------------------------------------------------------------------------- */

/* Read one piece [p, p+n) unless the client has read all of it; then mark it ready. */
static void prefetch_piece(struct access *a, uint8_t *buf, uint64_t p, uint64_t n)
{
    uint64_t first = p / a->bs, last = (p + n - 1) / a->bs, b;
    for (b = first; b <= last && (trace_rec_seen(a->rec, b) || bit_get(a->ready, b)); b++)
        ;
    if (b > last)
        return;
    const struct timespec ms = {0, 1000000};
    while (atomic_load(&a->demand) > 0 && !atomic_load(&a->stop))
        nanosleep(&ms, NULL); /* demand first */
    if (atomic_load(&a->stop))
        return;
    int err = a->inner->pread(a->ctx, buf, (uint32_t)n, p);
    if (err) {
        snap_debug("prefetch: read of %llu bytes at %llu failed: %s", (unsigned long long)n,
                   (unsigned long long)p, snap_errmsg(err));
        return;
    }
    for (b = first; b <= last; b++)
        if (bit_set(a->ready, b) && bit_get(a->want, b) && !trace_rec_seen(a->rec, b))
            atomic_fetch_add_explicit(&a->prefetched, 1, memory_order_relaxed);
}

/* A chunk in the order its fetch streams it: from the first trace block to the end, then from
 * the start. */
static void prefetch_chunk(struct access *a, uint8_t *buf, const struct chunk_start *c)
{
    uint64_t lo = c->chunk * ACCESS_CHUNK, hi = snap_min_u64(lo + ACCESS_CHUNK, a->size);
    uint64_t start = c->first / a->bs * a->bs, n;
    for (uint64_t p = start; p < hi && !atomic_load(&a->stop); p += n)
        prefetch_piece(a, buf, p, n = snap_min_u64(ACCESS_PIECE, hi - p));
    for (uint64_t p = lo; p < start && !atomic_load(&a->stop); p += n)
        prefetch_piece(a, buf, p, n = snap_min_u64(ACCESS_PIECE, start - p));
    atomic_fetch_add_explicit(&a->chunks_done, 1, memory_order_relaxed);
}

static void *prefetch_main(void *arg)
{
    struct pf_thread *th = arg;
    struct access *a = th->a;
    for (;;) {
        size_t i = atomic_fetch_add(&a->next_chunk, 1);
        if (i >= a->nchunks || atomic_load(&a->stop))
            break;
        prefetch_chunk(a, th->buf, &a->chunks[i]);
    }
    atomic_fetch_sub(&a->running, 1);
    return NULL;
}

/* The chunks to walk, in the order of their first block in the trace, and the wanted blocks. */
static int plan(struct access *a, const struct trace *t)
{
    uint64_t nall = (a->size + ACCESS_CHUNK - 1) / ACCESS_CHUNK;
    uint64_t words = (a->nblocks + 63) / 64 + 1;
    _Atomic uint64_t *taken = snap_calloc((size_t)(nall + 63) / 64 + 1, sizeof *taken);
    a->ready = snap_calloc((size_t)words, sizeof *a->ready);
    a->want = snap_calloc((size_t)words, sizeof *a->want);
    a->chunks = snap_calloc((size_t)nall + 1, sizeof *a->chunks);
    if (!taken || !a->ready || !a->want || !a->chunks) {
        snap_free((void *)taken);
        return snap_fail(SNAP_ENOMEM, "prefetch plan for %llu blocks: out of memory", (unsigned long long)a->nblocks);
    }
    for (size_t i = 0; i < t->n; i++) {
        if (t->idx[i] >= a->size / t->block_size + 1)
            continue;
        uint64_t off = t->idx[i] * t->block_size;
        if (off >= a->size)
            continue;
        uint64_t end = snap_min_u64(off + t->block_size, a->size);
        for (uint64_t b = off / a->bs; b <= (end - 1) / a->bs; b++)
            if (bit_set(a->want, b))
                atomic_fetch_add_explicit(&a->trace_blocks, 1, memory_order_relaxed);
        uint64_t k = off / ACCESS_CHUNK;
        if (bit_set(taken, k))
            a->chunks[a->nchunks++] = (struct chunk_start){.chunk = k, .first = off};
    }
    snap_free((void *)taken);
    return 0;
}

static int start_prefetch(struct access *a, const struct trace *t, unsigned threads)
{
    int err = plan(a, t);
    if (err)
        return err;
    unsigned n = threads ? threads : ACCESS_THREADS_DEFAULT, started = 0;
    if (n > ACCESS_THREADS_MAX)
        return snap_fail(SNAP_EUSAGE, "prefetch: %u threads (at most %u)", n, ACCESS_THREADS_MAX);
    for (unsigned i = 0; i < n; i++) {
        a->th[i].a = a;
        if (!(a->th[i].buf = snap_malloc(ACCESS_PIECE)))
            return snap_fail(SNAP_ENOMEM, "prefetch buffers: out of memory");
    }
    atomic_store(&a->running, n);
    for (; started < n; started++)
        if (pthread_create(&a->tid[started], NULL, prefetch_main, &a->th[started]) != 0)
            break;
    a->nthreads = started;
    if (started < n) {
        atomic_fetch_sub(&a->running, n - started);
        atomic_store(&a->stop, true);
        return snap_fail(SNAP_ENOMEM, "prefetch: cannot start a thread");
    }
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

int access_open(const struct access_opts *o, struct access **out)
{
    if (!o->ops || !o->ops->pread || !o->ops->pwrite || !o->size)
        return snap_fail(SNAP_EUSAGE, "access layer: a device with pread, pwrite and a size is needed");
    struct access *a = snap_calloc(1, sizeof *a);
    if (!a)
        return snap_fail(SNAP_ENOMEM, "access layer: out of memory");
    a->inner = o->ops;
    a->ctx = o->ctx;
    a->size = o->size;
    a->bs = o->block_size ? o->block_size : 4096;
    a->nblocks = (a->size + a->bs - 1) / a->bs;
    pthread_mutex_init(&a->stop_mu, NULL);
    a->ops = (struct dev_ops){
        .pread = w_pread, .pwrite = w_pwrite,
        .flush = o->ops->flush ? w_flush : NULL, .trim = o->ops->trim ? w_trim : NULL,
        .zero = o->ops->zero ? w_zero : NULL, .cache = o->ops->cache ? w_cache : NULL,
        .extents = o->ops->extents ? w_extents : NULL,
        .pread_nowait = o->ops->pread_nowait ? w_pread_nowait : NULL,
        .pwrite_nowait = o->ops->pwrite_nowait ? w_pwrite_nowait : NULL,
        .read_ref = o->ops->read_ref ? w_read_ref : NULL,
    };
    int err = trace_rec_new(a->size, a->bs, &a->rec);
    if (!err && o->prefetch)
        err = start_prefetch(a, o->prefetch, o->threads);
    if (err) {
        access_close(a);
        return err;
    }
    *out = a;
    return 0;
}

void access_stop_prefetch(struct access *a)
{
    pthread_mutex_lock(&a->stop_mu);
    atomic_store(&a->stop, true);
    for (unsigned i = 0; i < a->nthreads; i++)
        pthread_join(a->tid[i], NULL);
    a->nthreads = 0;
    pthread_mutex_unlock(&a->stop_mu);
}

void access_close(struct access *a)
{
    if (!a)
        return;
    access_stop_prefetch(a);
    for (unsigned i = 0; i < ACCESS_THREADS_MAX; i++)
        snap_free(a->th[i].buf);
    trace_rec_free(a->rec);
    snap_free((void *)a->ready);
    snap_free((void *)a->want);
    snap_free(a->chunks);
    pthread_mutex_destroy(&a->stop_mu);
    snap_free(a);
}

int access_trace(struct access *a, struct trace *out)
{
    return trace_rec_snapshot(a->rec, out);
}

void access_stats(struct access *a, struct access_stats *out)
{
    memset(out, 0, sizeof *out);
    out->recorded = trace_rec_count(a->rec);
    out->trace_blocks = atomic_load(&a->trace_blocks);
    out->prefetched = atomic_load(&a->prefetched);
    out->used = atomic_load(&a->used);
    out->unused = out->prefetched > out->used ? out->prefetched - out->used : 0;
    out->missed = atomic_load(&a->missed);
    out->chunks_done = atomic_load(&a->chunks_done);
    out->prefetch_running = atomic_load(&a->running) > 0;
}

void access_stats_json(const struct access_stats *s, bool prefetching, struct json *j)
{
    json_obj_begin(j);
    json_key(j, "access");
    json_obj_begin(j);
    json_kv_u64(j, "recorded_blocks", s->recorded);
    json_kv_bool(j, "prefetch", prefetching);
    json_kv_u64(j, "trace_blocks", s->trace_blocks);
    json_kv_u64(j, "prefetched", s->prefetched);
    json_kv_u64(j, "used", s->used);
    json_kv_u64(j, "unused", s->unused);
    json_kv_u64(j, "missed", s->missed);
    json_obj_end(j);
    json_obj_end(j);
}
