/* chunker.c -- readers, waiting, and the choice of what to fetch (demand-first scheduling).
 *
 * Design notes
 *
 * Locking.  One mutex per chunker, ch->mu, guards the job slots, the waiter slots, the store
 * speed estimates and the size/cache publication.  It is held for bookkeeping only: never across
 * a store read (fetch threads drop it before store_read and take it again per progress report),
 * and never while copying out to a reader (cache_read runs after the wait, under the cache's own
 * stripe locks).  The cache pointer and the size are atomics, set once, so the hit path -- the
 * blocks are present: check the bitmap, copy out -- takes no chunker lock and allocates nothing.
 *
 * Waiting.  A reader that misses takes a preallocated waiter slot holding its range and its own
 * condition variable.  Each progress report of a fetch fills the newly whole blocks and signals
 * exactly the waiters whose ranges became complete; a reader therefore wakes when its own blocks
 * land, not when the chunk is done.  When a fetch ends, every waiter is signalled: the complete
 * ones return, those that overlap a failed fetch get its error (and detail), the rest re-check
 * what they still need and start or join fetches again.  A waiter whose deadline passes or whose
 * cancel token fires leaves its slot and returns an error; the fetch goes on, filling the cache
 * for the next reader.  Readers never lend their buffers to a fetch, so nothing a fetch can still
 * write is ever given back.
 *
 * Scheduling.  At most one chunk job per chunk is queued or running.  The first reader to need a
 * chunk starts its job; in demand-first mode the stream starts at that reader's first missing
 * block, runs to the chunk's end, then fills the part before.  A later reader of the same chunk
 * asks: when will the running stream reach my first missing block?  Once the store's time to
 * first byte and rate have been measured (EWMA over fetches), the estimate is the remaining time
 * to first byte plus distance / rate, against a fresh range request's time to first byte plus
 * one block; before any measurement, a distance above demand_window (64 KiB) counts as far.  A
 * far (or passed) block gets its own range request covering the reader's missing blocks in the
 * chunk.  So a cold 4 KiB read costs about one time to first byte, wherever it falls.
 *
 * Direct reads (demand-first only).  A chunk job needs a fetch thread; with all of them busy
 * streaming other chunks (random reads over a large object at a queue depth above the thread
 * count), a queued job would make its reader wait for a whole chunk elsewhere first.  So a reader
 * whose range request would wait -- its chunk has no job and every fetch thread is taken, or the
 * chunk's job is still queued, or its stream is far -- runs that request itself, on its own
 * thread: it takes one of `direct_reads` slots (32), each with a CHUNKER_DIRECT_MAX (128 KiB)
 * buffer allocated at open, so the request allocates nothing and the memory is bounded whatever
 * the load.  The request is an ordinary range job, marked running so no fetch thread takes it:
 * other readers of those blocks join it, its progress fills the cache and wakes them, and its
 * error reaches them.  It ends early only on evict or close, or when its own reader gives up
 * (cancel, deadline): then the others are woken to make their own fetch, not failed.  No slot
 * free, or more than 128 KiB missing: the old way, a queued job.
 *
 * Background fill policy.  A chunk's job (the fill around a read) starts only when a fetch thread
 * is free for it; a reader served by a direct read queues no fill.  So under random load the
 * store sends about what was asked for plus what the fetch threads can stream meanwhile (bounded
 * by their count), instead of a whole chunk per read; a later miss in the chunk that finds a
 * thread free starts its fill then.  Queued jobs are at most 2 x fetchers + 2.
 *
 * A far reader whose range is too large for a direct read and finds every fetch thread taken
 * waits for the chunk's stream instead of queueing a range job: the range job would wait for a
 * thread as well, and then fetch bytes the stream brings anyway.  A deep sequential reader
 * (nbdcopy: 64 MiB in flight, 256 KiB requests) otherwise queued a range job for every request
 * ahead of each stream; the store sent 1.29x the object, and the range jobs held the threads new
 * chunks' streams needed (512 MiB at 20 ms + 100 MB/s: 178-210 MiB/s, now 262-385, store 1.07x).
 */
#include "chunker/chunker-int.h"

#include "base/err.h"
#include "base/histo.h"
#include "base/io.h"
#include "base/mem.h"
#include "base/util.h"
#include "cache/cache.h"
#include "store/chunkcache.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Fetch threads: a store that streams into the cache costs a thread and one block each, so a
 * cold sequential reader gets 16 connections in parallel (3x one connection's bandwidth needs 5
 * streams at 20 ms + 100 MB/s, and readers ahead of the streams take some); where each thread
 * needs a chunk-sized staging buffer, 4. */
#define CHUNKER_FETCHERS_STREAMED 16
#define CHUNKER_FETCHERS_STAGED 4
#define CHUNKER_RANDOM_STREAMS 2
#define CHUNKER_FETCHERS_MAX 64
#define CHUNKER_WAITERS_DEFAULT 64
#define CHUNKER_WAITERS_MAX 4096
#define CHUNKER_TIMEOUT_DEFAULT_MS 60000
#define CHUNKER_WINDOW_DEFAULT (64u << 10)
#define CHUNKER_DIRECT_DEFAULT 32
#define CHUNKER_DIRECT_LIMIT 1024

struct cache *chunker_cache(struct chunker *ch)
{
    return atomic_load(&ch->cache);
}

const char *chunker_mode_name(enum chunker_mode m)
{
    switch (m) {
    case CHUNKER_DEMAND: return "demand-first";
    case CHUNKER_STREAMING: return "streaming";
    case CHUNKER_FULL: return "full";
    }
    return "unknown";
}

/* ---- job slots (ch->mu held) ---- */

static struct job *find_chunk_job(struct chunker *ch, uint64_t k)
{
    for (unsigned i = 0; i < ch->njobs_hw; i++)
        if (ch->jobs[i].state != JOB_FREE && !ch->jobs[i].range && ch->jobs[i].chunk == k)
            return &ch->jobs[i];
    return NULL;
}

static bool range_job_covers(struct chunker *ch, uint64_t x)
{
    for (unsigned i = 0; i < ch->njobs_hw; i++) {
        const struct job *j = &ch->jobs[i];
        if (j->state != JOB_FREE && j->range && j->lo <= x && x < j->hi)
            return true;
    }
    return false;
}

static struct job *start_job(struct chunker *ch, uint64_t k, bool range, uint64_t lo, uint64_t hi,
                             uint64_t start, bool direct)
{
    struct job *j = NULL;
    unsigned queued = 0; /* jobs for the fetch threads: at most 2 * fetchers + 2 of them */
    for (unsigned i = 0; i < ch->njobs_hw; i++) {
        if (ch->jobs[i].state == JOB_FREE)
            j = j ? j : &ch->jobs[i];
        else
            queued += !ch->jobs[i].direct;
    }
    if (!j && ch->njobs_hw < ch->njobs) { /* a slot never used before: its page is touched now */
        j = &ch->jobs[ch->njobs_hw++];
        atomic_init(&j->abort, false);
    }
    if (!j || (!direct && queued >= ch->njobs - ch->ndirects))
        return NULL; /* every slot busy: the waiter retries when one ends */
    j->state = JOB_QUEUED;
    j->range = range;
    j->direct = direct;
    j->seq = ch->next_seq++;
    j->chunk = k;
    j->lo = lo;
    j->hi = hi;
    j->start = start;
    j->seg_lo = j->pos = start;
    j->seg_hi = hi;
    j->wrapped = false;
    j->t_req = j->t_first = 0;
    atomic_store(&j->abort, false);
    j->err = 0;
    j->msg[0] = '\0';
    atomic_fetch_add(range ? &ch->stats.range_fetches : &ch->stats.fetches, 1);
    if (direct) {
        j->state = JOB_RUNNING; /* its reader runs it: no fetch thread may pick it up */
        atomic_fetch_add(&ch->stats.direct_reads, 1);
    } else {
        pool_post(&ch->client);
    }
    return j;
}

/* Pool threads this chunker takes (running or about to run one of its jobs). */
static unsigned fetchers_taken(const struct chunker *ch)
{
    unsigned n = 0;
    for (unsigned i = 0; i < ch->njobs_hw; i++)
        n += ch->jobs[i].state != JOB_FREE && !ch->jobs[i].direct;
    return n;
}

/* May a reader at `first` in chunk k (starting at clo) start the chunk's stream?  A sequential
 * reader -- at the chunk's start, or the block before its first is present or being fetched by a
 * range request -- may take any free fetch thread: parallel streams are its bandwidth.  (Not "the
 * chunk before is being fetched": under random reads every stream made a reader in the next chunk
 * sequential, and streams ran on from chunk to chunk.)  A random one only while fewer than
 * CHUNKER_RANDOM_STREAMS streams run: more would only compete with the small range requests of
 * the other random readers at the store (each stream moves a whole chunk); and only while fewer
 * than half the direct slots are in use: past that, readers are waiting on the store at a high
 * queue depth, and a background fill takes from their requests what it gives to later reads (fio
 * at qd32: 796-982 IOPS with fills, 1001-1089 without, against a floor of 1,176 GETs/s). */
static bool may_start_stream(struct chunker *ch, const struct cache *c, uint64_t clo,
                             uint64_t first, uint64_t hi)
{
    unsigned taken = fetchers_taken(ch);
    if (taken >= ch->nfetchers || !pool_has_free_thread(&ch->client))
        return false;
    bool seq = first == clo || (c && cache_state_at(c, first - ch->bs) != CACHE_ABSENT) ||
               range_job_covers(ch, first - ch->bs);
    /* The limit is for readers a direct read serves instead; a larger one would only queue the
     * same chunk job (and a second reader of it a range request for the same bytes). */
    bool direct_fits = hi - first <= CHUNKER_DIRECT_MAX;
    return seq || !direct_fits ||
           (taken < CHUNKER_RANDOM_STREAMS && pool_directs_in_use(&ch->client, &ch->ndirects_used) < ch->ndirects / 2);
}

/* Does a job start as soon as a pool thread wakes for it: the chunker within its thread count
 * (counting the job itself when it is already queued) and the pool with a thread free?  A queued
 * chunk job that does makes its readers wait for it rather than fetch the same bytes with a range
 * request; a job about to be queued that would not is better not queued (ensure_fetches_locked). */
static bool starts_now(struct chunker *ch, bool queued)
{
    return fetchers_taken(ch) < ch->nfetchers + queued && pool_has_free_thread(&ch->client);
}

/* Will the chunk's stream j still bring block x: ahead of it in this pass, or in the part before
 * its start that it fills after the wrap? */
static bool stream_brings(const struct chunker *ch, const struct job *j, uint64_t x)
{
    return (x >= j->pos && x < j->hi) || (ch->mode == CHUNKER_DEMAND && !j->wrapped && x >= j->lo && x < j->start);
}

/* Take a direct slot and a job for the reader's range request [lo, hi) in chunk k, marked running
 * at once so no fetch thread picks it up; NULL when none is free or the range is too large. */
static struct fetcher *start_direct(struct chunker *ch, uint64_t k, uint64_t lo, uint64_t hi)
{
    if (hi - lo > CHUNKER_DIRECT_MAX || ch->ndirects == 0)
        return NULL;
    struct fetcher *f = pool_take_direct(&ch->client, &ch->ndirects_used, ch->ndirects);
    if (!f)
        return NULL;
    struct job *j = start_job(ch, k, true, lo, hi, lo, true);
    if (!j) {
        pool_give_direct(&ch->client, f, &ch->ndirects_used);
        return NULL;
    }
    f->ch = ch;
    f->job = j;
    return f;
}

/* End a job that never ran (evict, close). */
static void cancel_queued_locked(struct chunker *ch, struct job *j)
{
    snprintf(j->msg, sizeof j->msg, "%s/%s: fetch of chunk %llu canceled before it started", ch->store->url,
             ch->key, (unsigned long long)j->chunk);
    for (unsigned i = 0; i < ch->nwaiters_hw; i++) {
        struct waiter *w = &ch->waiters[i];
        if (w->used && !w->err && w->off < j->hi && j->lo < w->end) {
            w->err = SNAP_ECANCELED;
            snprintf(w->msg, sizeof w->msg, "%s", j->msg);
            pthread_cond_signal(&w->cv);
        }
    }
    j->state = JOB_FREE;
}

/* Will the running stream j be slow to reach block x, compared with a range request of its own? */
static bool stream_far(struct chunker *ch, const struct job *j, uint64_t x)
{
    uint64_t d;
    if (x >= j->pos && x < j->seg_hi)
        d = x - j->pos;
    else if (ch->mode == CHUNKER_DEMAND && !j->wrapped && x >= j->lo && x < j->start)
        d = (j->hi - j->pos) + (x - j->lo); /* after the wrap to the chunk's start */
    else
        return true; /* behind the stream: it will not come back */
    if (ch->est_bytes_per_ns <= 0 || !ch->est_ttfb_ns)
        return d > ch->demand_window;
    double wait_first = 0;
    if (!j->t_first) {
        uint64_t elapsed = j->t_req ? snap_now_ns() - j->t_req : 0;
        wait_first = ch->est_ttfb_ns > elapsed ? (double)(ch->est_ttfb_ns - elapsed) : 0;
    }
    double stream_eta = wait_first + (double)d / ch->est_bytes_per_ns;
    double range_eta = (double)ch->est_ttfb_ns + (double)ch->bs / ch->est_bytes_per_ns;
    return stream_eta > range_eta * 1.125; /* near-ties go to the stream: one request fewer */
}

/* Make sure every missing part of w's range has a fetch coming (ch->mu held).  Returns a direct
 * slot when the reader should run a range request itself (at most one per call). */
static struct fetcher *ensure_fetches_locked(struct chunker *ch, struct waiter *w)
{
    struct cache *c = atomic_load(&ch->cache);
    uint64_t size = atomic_load(&ch->size);
    struct fetcher *direct = NULL;
    for (uint64_t k = w->off / ch->chunk; k <= (w->end - 1) / ch->chunk; k++) {
        uint64_t clo = chunker_chunk_lo(ch, k), chi = clo + ch->chunk;
        uint64_t plo = snap_max_u64(w->off, clo), phi = snap_min_u64(w->end, chi);
        if (size != STORE_SIZE_UNKNOWN) {
            chi = snap_min_u64(chi, size);
            phi = snap_min_u64(phi, size);
        }
        if (plo >= phi)
            continue;
        uint64_t first = plo & ~(uint64_t)(ch->bs - 1);
        if (c && !cache_find_absent(c, plo, phi - plo, &first))
            continue;
        struct job *j = find_chunk_job(ch, k);
        uint64_t hi = snap_min_u64(snap_round_up(phi, ch->bs), chi);
        bool started = true;
        if (ch->mode != CHUNKER_DEMAND) {
            if (!j)
                started = start_job(ch, k, false, clo, chi, clo, false) != NULL;
        } else if (range_job_covers(ch, first)) {
            /* a range request already brings it */
        } else if (!j && may_start_stream(ch, c, clo, first, hi)) {
            started = start_job(ch, k, false, clo, chi, first, false) != NULL; /* the stream starts at our block */
        } else if (!j || (j->state == JOB_QUEUED && !starts_now(ch, true)) || stream_far(ch, j, first)) {
            /* No fetch thread for this chunk soon, or its stream is far: our own range request, on
             * this thread when a slot is free and the range small; queued otherwise.  Under pressure
             * the chunk's background fill waits for a later reader that finds a fetch thread free. */
            if (!direct && c && (direct = start_direct(ch, k, first, hi)) != NULL)
                continue;
            if (j && !starts_now(ch, false) && stream_brings(ch, j, first))
                continue; /* a range job would queue for a thread too, then fetch what the stream brings */
            started = (j ? start_job(ch, k, true, first, hi, first, false)
                         : start_job(ch, k, false, clo, chi, first, false)) != NULL;
        }
        if (!started)
            break; /* every job slot is busy: re-checked when one ends */
    }
    return direct;
}

/* ---- readers ---- */

/* The slow path: wait in a waiter slot until [off, end) is in, then copy it out.  The slot is
 * held until the copy is done, so chunker_close (which waits for every slot) never frees the
 * cache under a reader. */
/* The chunk directory has [off, end): copied into dst (ch->mu held, dropped meanwhile). */
static bool dir_read_unlocked(struct chunker *ch, uint64_t off, uint64_t end, void *dst)
{
    pthread_mutex_unlock(&ch->mu);
    bool hit = store_chunkcache_read_hit(ch->store, ch->key, off, end - off, dst) == 0;
    pthread_mutex_lock(&ch->mu);
    return hit;
}

/* A waiter slot's first use: its condition variable (the monotonic clock, as the deadlines). */
static struct waiter *waiter_init(struct waiter *w)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    return w;
}

static int chunker_wait_read(struct chunker *ch, uint64_t off, uint64_t end, void *dst, unsigned timeout_ms,
                             struct chunker_cancel *cancel)
{
    unsigned tmo = timeout_ms ? timeout_ms : ch->read_timeout_ms;
    uint64_t deadline = snap_now_ns() + (uint64_t)tmo * 1000000;
    struct timespec dl = chunker_abs_ts(deadline);
    struct waiter *w = NULL;
    int err = 0;
    pthread_mutex_lock(&ch->mu);
    while (!w && !err) {
        for (unsigned i = 0; i < ch->nwaiters_hw && !w; i++)
            if (!ch->waiters[i].used)
                w = &ch->waiters[i];
        if (!w && ch->nwaiters_hw < ch->nwaiters) /* a slot never used before */
            w = waiter_init(&ch->waiters[ch->nwaiters_hw++]);
        if (w)
            break;
        if (atomic_load(&ch->closing))
            err = snap_fail(SNAP_ECANCELED, "%s/%s: chunker closing", ch->store->url, ch->key);
        else if (pthread_cond_timedwait(&ch->idle_cv, &ch->mu, &dl) == ETIMEDOUT)
            err = snap_fail(SNAP_ETIMEOUT, "%s/%s: no free waiter slot (%u readers waiting) for %llu bytes at "
                            "offset %llu", ch->store->url, ch->key, ch->nwaiters,
                            (unsigned long long)(end - off), (unsigned long long)off);
    }
    if (err) {
        atomic_fetch_add(&ch->stats.wait_errors, 1);
        pthread_mutex_unlock(&ch->mu);
        return err;
    }
    w->used = true;
    w->off = off;
    w->end = end;
    w->err = 0;
    w->cancel = cancel;
    atomic_fetch_add(&ch->stats.waits, 1);
    snap_fetch_waited(); /* this read is cold (base/histo.h) */
    for (;;) {
        struct cache *c = atomic_load(&ch->cache);
        uint64_t size = atomic_load(&ch->size);
        if (size != STORE_SIZE_UNKNOWN && end > size) {
            err = snap_fail(SNAP_ERANGE, "%s/%s: read of %llu bytes at offset %llu is past the end (%llu bytes)",
                            ch->store->url, ch->key, (unsigned long long)(end - off), (unsigned long long)off,
                            (unsigned long long)size);
            break;
        }
        if (c && cache_readable(c, off, end - off)) {
            pthread_mutex_unlock(&ch->mu);
            err = cache_read(c, off, end - off, dst);
            pthread_mutex_lock(&ch->mu);
            if (err != SNAP_ENOTFOUND)
                break;
            err = 0; /* evicted between the check and the copy: wait again */
            continue;
        }
        if (ch->dir_backed && c && dir_read_unlocked(ch, off, end, dst)) /* c: the size is known */
            break; /* handed over to the chunk directory by a fetch that just ended */
        if (w->err) {
            err = snap_fail(w->err, "%s", w->msg);
            break;
        }
        if ((cancel && atomic_load(&cancel->canceled)) || atomic_load(&ch->closing)) {
            err = snap_fail(SNAP_ECANCELED, "%s/%s: read of %llu bytes at offset %llu canceled", ch->store->url,
                            ch->key, (unsigned long long)(end - off), (unsigned long long)off);
            break;
        }
        if (snap_now_ns() >= deadline) {
            err = snap_fail(SNAP_ETIMEOUT, "%s/%s: read of %llu bytes at offset %llu waited more than %u ms",
                            ch->store->url, ch->key, (unsigned long long)(end - off), (unsigned long long)off, tmo);
            break;
        }
        if (!ch->evicting) {
            struct fetcher *d = ensure_fetches_locked(ch, w);
            if (d) {
                d->cancel = cancel;
                d->reader_deadline = deadline;
                pthread_mutex_unlock(&ch->mu);
                chunker_run_direct(d);
                pthread_mutex_lock(&ch->mu);
                continue; /* re-check: our blocks are in, or what is still missing */
            }
        }
        pthread_cond_timedwait(&w->cv, &ch->mu, &dl);
    }
    if (err)
        atomic_fetch_add(&ch->stats.wait_errors, 1);
    w->used = false;
    w->cancel = NULL;
    pthread_cond_broadcast(&ch->idle_cv);
    pthread_mutex_unlock(&ch->mu);
    return err;
}

int chunker_read_ex(struct chunker *ch, uint64_t off, uint64_t len, void *dst, unsigned timeout_ms,
                    struct chunker_cancel *cancel)
{
    if (len == 0)
        return 0;
    if (off + len < off)
        return snap_fail(SNAP_ERANGE, "%s/%s: read of %llu bytes at offset %llu overflows", ch->store->url, ch->key,
                         (unsigned long long)len, (unsigned long long)off);
    struct cache *c = atomic_load(&ch->cache);
    if (c) {
        if (off + len > cache_size(c))
            return snap_fail(SNAP_ERANGE, "%s/%s: read of %llu bytes at offset %llu is past the end (%llu bytes)",
                             ch->store->url, ch->key, (unsigned long long)len, (unsigned long long)off,
                             (unsigned long long)cache_size(c));
        if (chunker_read_cached(ch, off, len, dst) == 0)
            return 0;
    }
    return chunker_wait_read(ch, off, off + len, dst, timeout_ms, cancel);
}

int chunker_read_ref(struct chunker *ch, uint64_t off, uint64_t len, int *fd, uint64_t *fd_off)
{
    struct cache *c = atomic_load(&ch->cache);
    if (!c || ch->dir_backed /* its blocks may be handed over (punched) while the kernel sends them */ || len == 0 || off + len < off || off + len > cache_size(c) || !cache_readable(c, off, len))
        return SNAP_EAGAIN;
    atomic_fetch_add_explicit(&ch->stats.hits, 1, memory_order_relaxed);
    *fd = cache_fd(c);
    *fd_off = cache_fd_offset(c, off);
    return 0;
}

int chunker_read_cached(struct chunker *ch, uint64_t off, uint64_t len, void *dst)
{
    struct cache *c = atomic_load(&ch->cache);
    if (len == 0)
        return 0;
    if (!c || off + len < off || off + len > cache_size(c))
        return SNAP_EAGAIN;
    if ((!cache_readable(c, off, len) || cache_read(c, off, len, dst) != 0) &&
        (!ch->dir_backed || store_chunkcache_read_hit(ch->store, ch->key, off, len, dst) != 0))
        return SNAP_EAGAIN;
    atomic_fetch_add_explicit(&ch->stats.hits, 1, memory_order_relaxed);
    return 0;
}

void chunker_hand_over(struct chunker *ch, uint64_t lo, uint64_t hi)
{
    struct cache *c = atomic_load(&ch->cache);
    lo = lo / ch->chunk * ch->chunk; /* a range job's chunks, whole: the directory holds chunks */
    hi = c ? snap_min_u64(snap_round_up(hi, ch->chunk), cache_size(c)) : lo;
    if (lo < hi && store_chunkcache_has(ch->store, ch->key, lo, hi - lo) &&
        cache_evict(c, lo, hi - lo) == 0)
        atomic_fetch_add_explicit(&ch->stats.handed_over, hi - lo, memory_order_relaxed);
}

int chunker_read(struct chunker *ch, uint64_t off, uint64_t len, void *dst)
{
    return chunker_read_ex(ch, off, len, dst, 0, NULL);
}

void chunker_cancel(struct chunker *ch, struct chunker_cancel *cancel)
{
    atomic_store(&cancel->canceled, 1);
    pthread_mutex_lock(&ch->mu);
    for (unsigned i = 0; i < ch->nwaiters_hw; i++)
        if (ch->waiters[i].used && ch->waiters[i].cancel == cancel)
            pthread_cond_signal(&ch->waiters[i].cv);
    pthread_mutex_unlock(&ch->mu);
}

/* ---- lifecycle ---- */

/* Stop every job: queued ones end now, running ones at their next progress report. */
static void stop_jobs_locked(struct chunker *ch)
{
    for (unsigned i = 0; i < ch->njobs_hw; i++) {
        if (ch->jobs[i].state == JOB_QUEUED)
            cancel_queued_locked(ch, &ch->jobs[i]);
        else if (ch->jobs[i].state == JOB_RUNNING)
            atomic_store(&ch->jobs[i].abort, true);
    }
}

static bool jobs_running_locked(const struct chunker *ch)
{
    for (unsigned i = 0; i < ch->njobs_hw; i++)
        if (ch->jobs[i].state != JOB_FREE)
            return true;
    return false;
}

int chunker_evict(struct chunker *ch)
{
    pthread_mutex_lock(&ch->mu);
    ch->evicting = true;
    stop_jobs_locked(ch);
    while (jobs_running_locked(ch))
        pthread_cond_wait(&ch->idle_cv, &ch->mu);
    struct cache *c = atomic_load(&ch->cache);
    int err = c ? cache_evict(c, 0, cache_size(c)) : 0;
    ch->evicting = false;
    for (unsigned i = 0; i < ch->nwaiters_hw; i++)
        if (ch->waiters[i].used)
            pthread_cond_signal(&ch->waiters[i].cv);
    pthread_mutex_unlock(&ch->mu);
    return err;
}

uint64_t chunker_size(struct chunker *ch) { return atomic_load(&ch->size); }

void chunker_stats(struct chunker *ch, struct chunker_stats *out)
{
    out->fetches = atomic_load(&ch->stats.fetches);
    out->range_fetches = atomic_load(&ch->stats.range_fetches);
    out->direct_reads = atomic_load(&ch->stats.direct_reads);
    out->store_reads = atomic_load(&ch->stats.store_reads);
    out->bytes_fetched = atomic_load(&ch->stats.bytes_fetched);
    out->fetch_errors = atomic_load(&ch->stats.fetch_errors);
    out->hits = atomic_load(&ch->stats.hits);
    out->waits = atomic_load(&ch->stats.waits);
    out->wait_errors = atomic_load(&ch->stats.wait_errors);
    out->handed_over = atomic_load(&ch->stats.handed_over);
}

static void chunker_free(struct chunker *ch)
{
    if (ch->waiters)
        for (unsigned i = 0; i < ch->nwaiters_hw; i++)
            pthread_cond_destroy(&ch->waiters[i].cv);
    cache_close(atomic_load(&ch->cache));
    pthread_cond_destroy(&ch->idle_cv);
    pthread_mutex_destroy(&ch->mu);
    snap_free_lazy(ch->waiters, ch->nwaiters, sizeof *ch->waiters);
    snap_free_lazy(ch->jobs, ch->njobs, sizeof *ch->jobs);
    snap_free(ch->cache_path);
    snap_free(ch->key);
    snap_free(ch);
}

void chunker_close(struct chunker *ch)
{
    if (!ch)
        return;
    pthread_mutex_lock(&ch->mu);
    atomic_store(&ch->closing, true);
    stop_jobs_locked(ch);
    for (unsigned i = 0; i < ch->nwaiters_hw; i++)
        if (ch->waiters[i].used)
            pthread_cond_signal(&ch->waiters[i].cv);
    pthread_mutex_unlock(&ch->mu);
    pool_detach(&ch->client); /* its running jobs end at their next progress report */
    pthread_mutex_lock(&ch->mu);
    for (;;) {
        bool busy = false;
        for (unsigned i = 0; i < ch->nwaiters_hw; i++)
            busy |= ch->waiters[i].used;
        if (!busy)
            break;
        pthread_cond_wait(&ch->idle_cv, &ch->mu);
    }
    pthread_mutex_unlock(&ch->mu);
    chunker_free(ch);
}

int chunker_open(struct store *s, const char *key, const struct chunker_opts *o, struct chunker **out)
{
    uint32_t bs = o->block_size ? o->block_size : 4096;
    uint32_t chunk = o->chunk_size ? o->chunk_size : CHUNKER_CHUNK_DEFAULT;
    bool streamed = o->mode != CHUNKER_FULL && store_can_read_stream(s) && o->size != STORE_SIZE_UNKNOWN;
    unsigned nf = o->fetchers ? o->fetchers : streamed ? CHUNKER_FETCHERS_STREAMED : CHUNKER_FETCHERS_STAGED;
    unsigned nw = o->max_waiters ? o->max_waiters : CHUNKER_WAITERS_DEFAULT;
    unsigned nd = o->mode != CHUNKER_DEMAND ? 0 : o->direct_reads ? o->direct_reads : CHUNKER_DIRECT_DEFAULT;
    struct chunker_pool *pool = o->pool ? o->pool : chunker_pool_default();
    if ((chunk & (chunk - 1)) || (bs & (bs - 1)) || chunk < bs)
        return snap_fail(SNAP_EUSAGE, "%s/%s: chunk size %u must be a power of two and a multiple of the block "
                         "size %u", s->url, key, chunk, bs);
    if (nf > CHUNKER_FETCHERS_MAX || nw > CHUNKER_WAITERS_MAX || nd > CHUNKER_DIRECT_LIMIT)
        return snap_fail(SNAP_EUSAGE, "%s/%s: %u fetchers, %u waiters and %u direct reads (at most %u, %u and %u)",
                         s->url, key, nf, nw, nd, CHUNKER_FETCHERS_MAX, CHUNKER_WAITERS_MAX, CHUNKER_DIRECT_LIMIT);
    if (!o->cache_path && !o->cache_file)
        return snap_fail(SNAP_EUSAGE, "%s/%s: the chunker needs a cache file path", s->url, key);
    if (!pool)
        return snap_fail(SNAP_ENOMEM, "%s/%s: out of memory for the fetch pool", s->url, key);
    struct chunker *ch = snap_calloc(1, sizeof *ch);
    if (!ch)
        return snap_fail(SNAP_ENOMEM, "%s/%s: out of memory", s->url, key);
    ch->store = s;
    ch->mode = o->mode;
    ch->bs = bs;
    ch->chunk = chunk;
    ch->streamed = streamed;
    ch->dir_backed = store_is_chunkcache(s);
    ch->fetch_timeout_ms = o->fetch_timeout_ms ? o->fetch_timeout_ms : CHUNKER_TIMEOUT_DEFAULT_MS;
    ch->read_timeout_ms = o->read_timeout_ms ? o->read_timeout_ms : ch->fetch_timeout_ms;
    ch->demand_window = o->demand_window ? o->demand_window : CHUNKER_WINDOW_DEFAULT;
    atomic_init(&ch->size, STORE_SIZE_UNKNOWN);
    atomic_init(&ch->cache, NULL);
    atomic_init(&ch->closing, false);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&ch->mu, NULL);
    pthread_cond_init(&ch->idle_cv, &ca);
    ch->key = snap_strdup(key);
    ch->cache_path = snap_strdup(o->cache_path ? o->cache_path : "(shared cache file)");
    ch->cache_file = o->cache_file;
    ch->njobs = 2 * nf + 2 + nd;
    ch->nwaiters = nw;
    /* Sized for the busiest reading; a build read by one reader at a time (most of a deep chain)
     * touches the first page of each only. */
    ch->jobs = snap_calloc_lazy(ch->njobs, sizeof *ch->jobs);
    ch->waiters = snap_calloc_lazy(nw, sizeof *ch->waiters);
    int err = 0;
    if (!ch->key || !ch->cache_path || !ch->jobs || !ch->waiters) {
        err = snap_fail(SNAP_ENOMEM, "%s/%s: out of memory", s->url, key);
        goto fail;
    }
    ch->nfetchers = nf;
    ch->ndirects = nd;
    if (o->size != STORE_SIZE_UNKNOWN) {
        pthread_mutex_lock(&ch->mu);
        err = chunker_learn_size_locked(ch, o->size);
        pthread_mutex_unlock(&ch->mu);
        if (err)
            goto fail;
    }
    if ((err = pool_attach(pool, &ch->client, nf, chunker_pool_run)) != 0) {
        snap_fail_ctx(err, "%s/%s", s->url, key);
        goto fail;
    }
    pthread_condattr_destroy(&ca);
    *out = ch;
    return 0;
fail:
    pthread_condattr_destroy(&ca);
    chunker_free(ch);
    return err;
}
