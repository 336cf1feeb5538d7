/* frames.c -- the chunker of a compressed build object (see frames.h).
 *
 * Design note.  State lives in three places, all under `mu` except the cache's own bits:
 *   - the cache (lib/cache) says which blocks are present: a frame is readable exactly when its
 *     blocks are, because a fetch publishes the whole frame at once after it decoded and checked;
 *   - job_of[frame] is the running fetch of a frame (index + 1, 0 = none): a reader that finds
 *     one waits for it instead of starting another, so there is one fetch per frame;
 *   - a job slot carries the result (code and message) to its waiters and is freed by whoever
 *     leaves it last: the fetch thread when nobody waits, else the last waiter.
 * A finished fetch clears job_of first, so a failed frame is fetched again by the next read.
 * The fetch thread owns the frame's absent blocks while it runs: it range-reads the compressed
 * bytes into its staging buffer and decodes into a pool scratch buffer, with `mu` released
 * (no lock across I/O or decoding); the checked frame is then staged (FR_STAGED: waiters copy
 * their ranges from the scratch buffer, counted in `copiers`) while the fetch writes it into the
 * cache -- fresh page-cache pages are the slowest step of a cold frame when the store is fast --
 * and publishes it.  Without a free scratch buffer it decodes straight into the cache mapping.
 * Readers never copy absent blocks, so a half-decoded or failed frame is never seen.  With a peer in front (a tiered store), the fetch first asks the
 * peer for the frame's uncompressed bytes under the build's plain name, straight into the same
 * mapping, and reads the compressed object only when the peer cannot answer.
 * Waits use one condition variable broadcast at each fetch's end: frames are big (2 MiB), so
 * fetches end seldom and a wake-up costs little next to one.
 */
#include "chunker/frames.h"

#include "base/err.h"
#include "base/histo.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/util.h"
#include "cache/cache.h"
#include "chunker/chunker-int.h"
#include "header/header.h"
#include "store/chunkcache.h"
#include "store/store.h"
#include "store/tiered.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef MADV_POPULATE_WRITE
#define FR_POPULATE_WRITE MADV_POPULATE_WRITE
#else
#define FR_POPULATE_WRITE 23 /* Linux's value; musl's headers may predate it */
#endif

#define ULL(x) ((unsigned long long)(x))
#define FR_FETCHERS_DEFAULT 4u
#define FR_JOBS 64u
#define FR_TIMEOUT_MS 60000u

enum fr_state { FR_FREE, FR_QUEUED, FR_RUNNING, FR_STAGED, FR_DONE };

struct fr_job {
    enum fr_state state;
    size_t frame;
    uint64_t seq;
    unsigned waiters;
    const uint8_t *staged;        /* FR_STAGED: the decoded frame, readable by its waiters */
    unsigned copiers;             /* waiters copying from staged (the fetch waits for them) */
    int err;
    char msg[512];                /* build, frame, ranges, object and reason */
};

struct chunker_frames {
    struct store *store;
    char *key;
    char *peer_key;               /* plain name to ask a tiered store's peer first; NULL: none */
    const struct hdr *h;
    const struct hdr_build *b;
    char name[SNAP_UUID_STRLEN + 8];  /* "build <uuid>" */
    const struct hdr_frame *fr;
    size_t nfr;
    uint32_t comp;
    uint64_t size;
    unsigned read_timeout_ms;
    struct cache *cache;

    pthread_mutex_t mu;
    pthread_cond_t done_cv;
    uint32_t *job_of;             /* per frame: running job index + 1, 0 = none */
    struct fr_job *jobs;          /* FR_JOBS slots, snap_calloc_lazy: only slots ever used take memory */
    uint64_t next_seq;
    atomic_bool closing;
    size_t max_c;                 /* the largest compressed frame: a pool thread's staging */
    bool attached;
    struct pool_client client;

    struct {
        atomic_uint_fast64_t fetches, fetch_errors, bytes_fetched, bytes_decoded, hits, waits, peer_frames;
    } stats;
};

/* ---- open: the table is checked against the size before anything is fetched ---- */

static int check_table(const struct chunker_frames *c, size_t *max_c)
{
    *max_c = 0;
    for (size_t i = 0; i < c->nfr; i++) {
        const struct hdr_frame *f = &c->fr[i];
        uint64_t su = (uint64_t)f->start_u, nu = (uint64_t)f->size_u, nc = (uint64_t)f->size_c;
        if (nu > HDR_FRAME_MAX || nc > HDR_FRAME_MAX)
            return snap_fail(SNAP_ETOOBIG, "%s: frame %zu is %llu bytes (%llu compressed); this version "
                             "reads frames of at most %u bytes", c->name, i, ULL(nu), ULL(nc), HDR_FRAME_MAX);
        if (su % HDR_PAGE || su > c->size || nu > c->size - su || (nu % HDR_PAGE && su + nu != c->size))
            return snap_fail(SNAP_EFORMAT, "%s: frame %zu covers uncompressed [%llu, %llu), which is not "
                             "4096-aligned inside the size %llu", c->name, i, ULL(su), ULL(su + nu), ULL(c->size));
        if (nc > *max_c)
            *max_c = (size_t)nc;
    }
    return 0;
}

static void fr_pool_run(struct pool_client *pc, struct pool_worker *w);

int chunker_frames_open(struct store *s, const char *key, const struct chunker_frames_opts *o,
                        struct chunker_frames **out)
{
    struct chunker_frames *c = snap_calloc(1, sizeof *c);
    if (!c)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    c->store = s;
    c->h = o->h;
    c->b = o->build;
    c->fr = hdr_build_frames(o->h, o->build);
    c->nfr = o->build->nframes;
    c->comp = o->build->comp;
    c->size = o->size;
    c->read_timeout_ms = o->read_timeout_ms ? o->read_timeout_ms : FR_TIMEOUT_MS;
    memcpy(c->name, "build ", 6);
    snap_uuid_format(&o->build->id, c->name + 6);
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    struct chunker_pool *pool = o->pool ? o->pool : chunker_pool_default();
    int err = pool ? check_table(c, &c->max_c) : snap_fail(SNAP_ENOMEM, "%s: out of memory for the fetch pool", c->name);
    if (!err && o->peer_key && store_is_tiered(s) && !(c->peer_key = snap_strdup(o->peer_key)))
        err = snap_fail(SNAP_ENOMEM, "%s: out of memory", c->name);
    if (!err && (!(c->key = snap_strdup(key)) || !(c->job_of = snap_calloc(c->nfr ? c->nfr : 1, sizeof *c->job_of)) ||
                 !(c->jobs = snap_calloc_lazy(FR_JOBS, sizeof *c->jobs))))
        err = snap_fail(SNAP_ENOMEM, "%s: out of memory", c->name);
    if (!err && (err = cache_open_unlinked(o->cache_file, o->cache_path, c->size, HDR_PAGE, &c->cache)) != 0)
        snap_fail_ctx(err, "%s: the cache of %s", c->name, key);
    if (!err) {
        err = pool_attach(pool, &c->client, o->fetchers ? o->fetchers : FR_FETCHERS_DEFAULT, fr_pool_run);
        c->attached = !err;
    }
    if (err) {
        chunker_frames_close(c);
        return err;
    }
    *out = c;
    return 0;
}

void chunker_frames_close(struct chunker_frames *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    atomic_store(&c->closing, true);
    pthread_cond_broadcast(&c->done_cv);
    pthread_mutex_unlock(&c->mu);
    if (c->attached)
        pool_detach(&c->client); /* a running fetch ends at its next progress report */
    cache_close(c->cache);
    pthread_cond_destroy(&c->done_cv);
    pthread_mutex_destroy(&c->mu);
    snap_free(c->job_of);
    snap_free_lazy(c->jobs, FR_JOBS, sizeof *c->jobs);
    snap_free(c->key);
    snap_free(c->peer_key);
    snap_free(c);
}

uint64_t chunker_frames_size(const struct chunker_frames *c) { return c->size; }

void chunker_frames_stats(struct chunker_frames *c, struct chunker_frames_stats *out)
{
    out->fetches = atomic_load(&c->stats.fetches);
    out->fetch_errors = atomic_load(&c->stats.fetch_errors);
    out->bytes_fetched = atomic_load(&c->stats.bytes_fetched);
    out->bytes_decoded = atomic_load(&c->stats.bytes_decoded);
    out->peer_frames = atomic_load(&c->stats.peer_frames);
    out->hits = atomic_load(&c->stats.hits);
    out->waits = atomic_load(&c->stats.waits);
}

/* ---- fetch threads ---- */

static int fr_progress(void *ctx, uint64_t done)
{
    (void)done;
    return atomic_load_explicit(&((struct chunker_frames *)ctx)->closing, memory_order_relaxed);
}

/* Where a fetch decodes frame i (the verify step of its read). */
struct fr_decode {
    struct chunker_frames *c;
    struct hdr_frame_dec *dec;
    uint8_t *dst;                 /* the frame's place in the cache mapping */
    uint8_t *scratch;             /* a pool scratch buffer, taken at the first decode; NULL: dst */
    bool tried;
    size_t i;
};

static int decode_frame(void *ctx, const uint8_t *staging, uint64_t nc)
{
    struct fr_decode *d = ctx;
    struct chunker_frames *c = d->c;
    const struct hdr_frame *fr = &c->fr[d->i];
    uint64_t sc = (uint64_t)fr->start_c, su = (uint64_t)fr->start_u, nu = (uint64_t)fr->size_u;
    if (!d->tried) { /* a warm scratch buffer, held from here to the publish; or the mapping */
        d->tried = true;
        if (!(d->scratch = pool_take_scratch(&c->client, (size_t)nu)))
            (void)madvise(d->dst, (size_t)nu, FR_POPULATE_WRITE);
    }
    int err = hdr_frame_decode(d->dec, c->comp, staging, (size_t)nc, d->scratch ? d->scratch : d->dst, (size_t)nu);
    if (err)
        return snap_fail_ctx(err, "%s: frame %zu (uncompressed [%llu, %llu), compressed [%llu, %llu) of %s)",
                             c->name, d->i, ULL(su), ULL(su + nu), ULL(sc), ULL(sc + nc), c->key);
    return 0;
}

/* Read frame d->i's compressed bytes into staging and decode them into d->out (mu not held).
 * Through a chunk cache, the frame's .frm file serves or keeps them (only once they decoded). */
static int read_frame(struct chunker_frames *c, uint8_t *staging, struct fr_decode *d)
{
    size_t i = d->i;
    uint64_t sc = (uint64_t)c->fr[i].start_c, nc = (uint64_t)c->fr[i].size_c;
    struct store_read_result res = {.total_size = STORE_SIZE_UNKNOWN};
    int err = store_chunkcache_read_frame(c->store, c->key, sc, nc, staging, decode_frame, d, fr_progress, c, &res);
    atomic_fetch_add_explicit(&c->stats.bytes_fetched, res.bytes, memory_order_relaxed);
    if (err == SNAP_ERANGE && res.total_size != STORE_SIZE_UNKNOWN)
        return snap_fail(SNAP_EFORMAT, "%s: frame %zu: the frame table points past the end of %s: compressed "
                         "[%llu, %llu) but the object is %llu bytes", c->name, i, c->key, ULL(sc), ULL(sc + nc),
                         ULL(res.total_size));
    if (err && res.bytes == nc) /* it arrived whole and did not decode: decode_frame said why */
        return err;
    if (err)
        return snap_fail_ctx(err, "%s: frame %zu (compressed [%llu, %llu))", c->name, i, ULL(sc), ULL(sc + nc));
    if (res.bytes != nc)
        return snap_fail(SNAP_EFORMAT, "%s: frame %zu is cut off: %s ends after %llu of its %llu compressed "
                         "bytes (at [%llu, %llu)); the object is shorter than its frame table says", c->name, i,
                         c->key, ULL(res.bytes), ULL(nc), ULL(sc), ULL(sc + nc));
    return 0;
}

/* The decoded frame in scratch is shown to j's waiters (staged) while it is written to the cache:
 * they copy their bytes from it at once instead of waiting for the write (fresh page-cache pages,
 * the slowest step of a cold frame where the store is fast).  The fetch waits for the copiers
 * before it gives scratch back. */
static int publish_staged(struct chunker_frames *c, struct fr_job *j, const uint8_t *scratch, uint64_t su,
                          uint64_t nu)
{
    pthread_mutex_lock(&c->mu);
    j->staged = scratch;
    j->state = FR_STAGED;
    pthread_cond_broadcast(&c->done_cv);
    pthread_mutex_unlock(&c->mu);
    /* The scheduler tends to queue a woken thread on its waker's CPU, where it would wait behind
     * the write below (about 1 ms measured): let the readers copy first. */
    sched_yield();
    int err = cache_fill(c->cache, su, nu, scratch, NULL);
    pthread_mutex_lock(&c->mu);
    while (j->copiers)
        pthread_cond_wait(&c->done_cv, &c->mu);
    j->staged = NULL;
    j->state = FR_RUNNING;
    pthread_mutex_unlock(&c->mu);
    return err;
}

/* Fetch, decode and publish job j's frame (mu not held), with a pool thread's staging and decoder. */
static int fetch_frame(struct chunker_frames *c, uint8_t *staging, struct hdr_frame_dec *dec, struct fr_job *j)
{
    size_t i = j->frame;
    uint64_t su = (uint64_t)c->fr[i].start_u, nu = (uint64_t)c->fr[i].size_u;
    uint8_t *dst = cache_map_range(c->cache, su, nu);
    if (!dst)
        return snap_fail(SNAP_EINTERNAL, "%s: frame %zu is outside the cache", c->name, i);
    /* Bytes written straight into the mapping: fault the frame's fresh cache pages in with one call,
     * as 512 write faults on a file mapping (page_mkwrite each) cost more than decoding the frame.
     * Linux 5.14+; an older kernel says EINVAL and the writes fault them in one by one. */
    if (c->peer_key) {
        (void)madvise(dst, (size_t)nu, FR_POPULATE_WRITE);
        if (store_tiered_read_front(c->store, c->peer_key, su, nu, dst) == 0) {
            atomic_fetch_add_explicit(&c->stats.peer_frames, 1, memory_order_relaxed);
            return cache_publish(c->cache, su, nu, NULL);
        }
    }
    struct fr_decode d = {.c = c, .dec = dec, .dst = dst, .i = i};
    int err = read_frame(c, staging, &d);
    if (!err)
        err = d.scratch ? publish_staged(c, j, d.scratch, su, nu) : cache_publish(c->cache, su, nu, NULL);
    if (d.scratch)
        pool_give_scratch(&c->client, d.scratch);
    if (!err)
        atomic_fetch_add_explicit(&c->stats.bytes_decoded, nu, memory_order_relaxed);
    return err;
}

static struct fr_job *next_queued_locked(struct chunker_frames *c)
{
    struct fr_job *best = NULL;
    for (unsigned i = 0; i < FR_JOBS; i++)
        if (c->jobs[i].state == FR_QUEUED && (!best || c->jobs[i].seq < best->seq))
            best = &c->jobs[i];
    return best;
}

static void fr_pool_run(struct pool_client *pc, struct pool_worker *w)
{
    struct chunker_frames *c = (struct chunker_frames *)((char *)pc - offsetof(struct chunker_frames, client));
    pthread_mutex_lock(&c->mu);
    struct fr_job *j = atomic_load(&c->closing) ? NULL : next_queued_locked(c);
    if (!j) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    j->state = FR_RUNNING;
    size_t i = j->frame;
    pthread_mutex_unlock(&c->mu);
    uint8_t *staging = pool_worker_buf(w, c->max_c ? c->max_c : 1);
    struct hdr_frame_dec *dec = pool_worker_dec(w);
    int err = staging && dec ? fetch_frame(c, staging, dec, j)
                             : snap_fail(SNAP_ENOMEM, "%s: out of memory for a frame buffer or decoder", c->name);
    pthread_mutex_lock(&c->mu);
    j->err = err;
    j->msg[0] = '\0';
    if (err) {
        snprintf(j->msg, sizeof j->msg, "%s", snap_errmsg(err));
        atomic_fetch_add_explicit(&c->stats.fetch_errors, 1, memory_order_relaxed);
        if (err != SNAP_ECANCELED) /* once per failed fetch, however many readers wait */
            snap_warn("%s; its readers fail, the next read fetches it again", j->msg);
    }
    c->job_of[i] = 0; /* the next read of a failed frame fetches it again */
    j->state = j->waiters ? FR_DONE : FR_FREE;
    pthread_cond_broadcast(&c->done_cv);
    pthread_mutex_unlock(&c->mu);
}

/* ---- readers ---- */

static struct fr_job *start_job_locked(struct chunker_frames *c, size_t i)
{
    for (unsigned k = 0; k < FR_JOBS; k++) {
        struct fr_job *j = &c->jobs[k];
        if (j->state != FR_FREE)
            continue;
        *j = (struct fr_job){.state = FR_QUEUED, .frame = i, .seq = c->next_seq++};
        c->job_of[i] = k + 1;
        atomic_fetch_add_explicit(&c->stats.fetches, 1, memory_order_relaxed);
        pool_post(&c->client);
        return j;
    }
    return NULL; /* every slot busy: wait for one */
}

/* Copy [off, +n) of frame i from job j's staged buffer into dst (mu held; dropped for the copy). */
static void copy_staged_locked(struct chunker_frames *c, struct fr_job *j, size_t i, uint64_t off, uint64_t n,
                               void *dst)
{
    const uint8_t *src = j->staged + (off - (uint64_t)c->fr[i].start_u);
    j->copiers++;
    pthread_mutex_unlock(&c->mu);
    memcpy(dst, src, (size_t)n);
    pthread_mutex_lock(&c->mu);
    if (--j->copiers == 0)
        pthread_cond_broadcast(&c->done_cv);
}

/* Wait for frame i's fetch to end, or to stage the frame: then copy [off, +n) into dst and set
 * *copied.  Joins the running fetch or starts one. */
static int ensure_frame(struct chunker_frames *c, size_t i, uint64_t deadline, uint64_t off, uint64_t n, void *dst,
                        bool *copied)
{
    const struct hdr_frame *fr = &c->fr[i];
    struct timespec dl = chunker_abs_ts(deadline);
    int err = 0;
    pthread_mutex_lock(&c->mu);
    atomic_fetch_add_explicit(&c->stats.waits, 1, memory_order_relaxed);
    snap_fetch_waited(); /* this read is cold (base/histo.h) */
    while (!cache_readable(c->cache, (uint64_t)fr->start_u, (uint64_t)fr->size_u)) {
        if (atomic_load(&c->closing)) {
            err = snap_fail(SNAP_ECANCELED, "%s: closing", c->name);
            break;
        }
        struct fr_job *j = c->job_of[i] ? &c->jobs[c->job_of[i] - 1] : start_job_locked(c, i);
        if (!j) {
            if (pthread_cond_timedwait(&c->done_cv, &c->mu, &dl) != 0 && snap_now_ns() >= deadline)
                err = snap_fail(SNAP_ETIMEOUT, "%s: frame %zu: no fetch slot free in time", c->name, i);
            if (err)
                break;
            continue;
        }
        j->waiters++;
        while (j->state != FR_DONE && j->state != FR_FREE && !atomic_load(&c->closing) && !err && !*copied) {
            if (j->state == FR_STAGED) { /* staged is set exactly then */
                copy_staged_locked(c, j, i, off, n, dst);
                *copied = true;
            } else if (pthread_cond_timedwait(&c->done_cv, &c->mu, &dl) != 0 && snap_now_ns() >= deadline)
                err = snap_fail(SNAP_ETIMEOUT, "%s: frame %zu: no answer from the store within %u ms", c->name,
                                i, c->read_timeout_ms);
        }
        bool done = j->state == FR_DONE || j->state == FR_FREE;
        if (!err && done && j->err)
            err = snap_fail(j->err, "%s", j->msg);
        if (--j->waiters == 0 && j->state == FR_DONE)
            j->state = FR_FREE;
        if (err || *copied)
            break;
    }
    pthread_mutex_unlock(&c->mu);
    return err;
}

/* nowait: only frames already in the cache, else SNAP_EAGAIN (no message, nothing started). */
static int frames_read(struct chunker_frames *c, uint64_t off, uint64_t len, void *dst, bool nowait)
{
    if (off > c->size || len > c->size - off)
        return nowait ? SNAP_EAGAIN : snap_fail(SNAP_ERANGE, "%s: read [%llu, +%llu) past the uncompressed size %llu", c->name,
                         ULL(off), ULL(len), ULL(c->size));
    uint8_t *p = dst;
    uint64_t deadline = 0;
    while (len) {
        const struct hdr_frame *fr = hdr_frame_at(c->h, c->b, off);
        if (!fr)
            return nowait ? SNAP_EAGAIN : snap_fail(SNAP_ENOTFOUND, "%s: no frame holds uncompressed offset %llu (the header's frame "
                             "table lacks it; a trimmed table must list every frame its mapping uses)", c->name,
                             ULL(off));
        uint64_t n = snap_min_u64(len, (uint64_t)fr->start_u + (uint64_t)fr->size_u - off);
        if (nowait && !cache_readable(c->cache, off, n))
            return SNAP_EAGAIN;
        int err = cache_read(c->cache, off, n, p);
        if (err == SNAP_ENOTFOUND && nowait) { /* gone since the check */
            return SNAP_EAGAIN;
        } else if (err == SNAP_ENOTFOUND) {
            if (!deadline)
                deadline = snap_now_ns() + (uint64_t)c->read_timeout_ms * 1000000u;
            bool copied = false;
            if ((err = ensure_frame(c, (size_t)(fr - c->fr), deadline, off, n, p, &copied)) == 0 && !copied)
                err = cache_read(c->cache, off, n, p);
        } else if (!err) {
            atomic_fetch_add_explicit(&c->stats.hits, 1, memory_order_relaxed);
        }
        if (err)
            return err;
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

int chunker_frames_read(struct chunker_frames *c, uint64_t off, uint64_t len, void *dst)
{
    return frames_read(c, off, len, dst, false);
}

int chunker_frames_read_ref(struct chunker_frames *c, uint64_t off, uint64_t len, int *fd, uint64_t *fd_off)
{
    if (len == 0 || off > c->size || len > c->size - off || !cache_readable(c->cache, off, len))
        return SNAP_EAGAIN;
    atomic_fetch_add_explicit(&c->stats.hits, 1, memory_order_relaxed);
    *fd = cache_fd(c->cache);
    *fd_off = cache_fd_offset(c->cache, off);
    return 0;
}

int chunker_frames_read_cached(struct chunker_frames *c, uint64_t off, uint64_t len, void *dst)
{
    return frames_read(c, off, len, dst, true);
}
