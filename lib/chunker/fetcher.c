/* fetcher.c -- a chunker's fetches, on the fetch pool's threads (pool.c): run a job's store reads, fill whole blocks into the
 * cache as they land, wake the readers they complete, and hand the result to every waiter.
 *
 * Staging.  A chunk job over a streaming store (http, s3, gs: store_read_stream) whose size is
 * known, in demand-first or streaming mode, has no staging buffer: each delivery is copied from
 * the transport's buffer straight into the cache (cache_fill, whole blocks only; a block cut in two
 * by a delivery is assembled in a one-block carry buffer).  So a fetch thread costs one block of
 * memory, not one chunk, and the memory no longer grows with the number of fetch threads.  Writing
 * into the mapping directly from the socket was not chosen: a local write landing in an absent
 * block while the fetch streams into it would be clobbered, which cache_fill (copy and state change
 * under the block's stripe lock, absent blocks only) rules out.
 *
 * Otherwise (other stores, full mode, the size still unknown: no cache yet to fill) a job's reads
 * land in the thread's staging buffer (chunk-relative; a direct read's in its slot's small buffer,
 * relative to the range); each progress report
 * copies the newly whole blocks into the cache with cache_fill (absent blocks only, under the
 * cache's stripe locks) and then, under ch->mu, wakes the waiters whose ranges are complete.
 * The store read itself runs with no lock held.  Progress returns non-zero -- ending the read --
 * when the chunker is closing or evicting, or the job's own timeout has passed.
 */
#include "chunker/chunker-int.h"

#include "base/err.h"
#include "base/io.h"
#include "base/util.h"
#include "cache/cache.h"
#include "store/store.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int chunker_learn_size_locked(struct chunker *ch, uint64_t size)
{
    uint64_t known = atomic_load(&ch->size);
    if (known != STORE_SIZE_UNKNOWN) {
        if (known != size)
            return snap_fail(SNAP_ECHECK, "%s/%s: object size changed from %llu to %llu bytes", ch->store->url,
                             ch->key, (unsigned long long)known, (unsigned long long)size);
        return 0;
    }
    struct cache *c;
    int err = cache_open_unlinked(ch->cache_file, ch->cache_path, size, ch->bs, &c);
    if (err)
        return snap_fail_ctx(err, "%s/%s: cache", ch->store->url, ch->key);
    atomic_store(&ch->cache, c);
    atomic_store(&ch->size, size);
    return 0;
}

void chunker_wake_complete_locked(struct chunker *ch)
{
    struct cache *c = atomic_load(&ch->cache);
    if (!c)
        return;
    for (unsigned i = 0; i < ch->nwaiters_hw; i++) {
        struct waiter *w = &ch->waiters[i];
        if (w->used && w->end <= cache_size(c) && cache_readable(c, w->off, w->end - w->off))
            pthread_cond_signal(&w->cv);
    }
}

/* The blocks up to `upto` (an object offset) are in the cache: count them, wake their readers. */
static void fetch_advance(struct fetcher *f, uint64_t upto)
{
    struct chunker *ch = f->ch;
    atomic_fetch_add(&ch->stats.bytes_fetched, upto - f->filled);
    f->filled = upto;
    pthread_mutex_lock(&ch->mu);
    f->job->pos = upto;
    chunker_wake_complete_locked(ch);
    pthread_mutex_unlock(&ch->mu);
}

/* Staging: fill the whole blocks that landed up to `landed` and wake their readers. */
static int fetch_fill(struct fetcher *f, uint64_t landed)
{
    struct chunker *ch = f->ch;
    struct cache *c = atomic_load(&ch->cache);
    if (!c)
        return 0; /* size not known yet: filled once it is */
    uint64_t size = cache_size(c), upto = landed & ~(uint64_t)(ch->bs - 1);
    if (landed >= size)
        upto = size; /* the last, partial block is whole at the object's end */
    if (upto <= f->filled)
        return 0;
    int err = cache_fill(c, f->filled, upto - f->filled, f->staging + (f->filled - f->base), NULL);
    if (err)
        return err;
    fetch_advance(f, upto);
    return 0;
}

/* Stop the read in flight for err, keeping the detail (the store overwrites it with its own). */
static int fetch_stop(struct fetcher *f, int err)
{
    f->stop_err = err;
    snprintf(f->stop_msg, sizeof f->stop_msg, "%s", snap_errmsg(err));
    return 1;
}

/* Every report of bytes landing: `done` bytes of the segment are in.  Non-zero stops the read. */
static int fetch_check(struct fetcher *f, uint64_t done)
{
    struct chunker *ch = f->ch;
    struct job *j = f->job;
    if (done > f->want || done < f->last_done) {
        return fetch_stop(f, snap_fail(SNAP_EPROTO, "%s/%s: store reported %llu of %llu bytes after %llu",
                                       ch->store->url, ch->key, (unsigned long long)done,
                                       (unsigned long long)f->want, (unsigned long long)f->last_done));
    }
    f->last_done = done;
    if (atomic_load(&j->abort) || atomic_load(&ch->closing)) {
        return fetch_stop(f, snap_fail(SNAP_ECANCELED, "%s/%s: fetch of chunk %llu stopped (evict or close)",
                                       ch->store->url, ch->key, (unsigned long long)j->chunk));
    }
    uint64_t now = snap_now_ns();
    if (f->direct && ((f->cancel && atomic_load(&f->cancel->canceled)) || now >= f->reader_deadline)) {
        f->reader_gone = true; /* its reader gave up: nobody else waits on it alone (see chunker.c) */
        return fetch_stop(f, snap_fail(SNAP_ECANCELED, "%s/%s: range request in chunk %llu stopped: its reader "
                                       "gave up", ch->store->url, ch->key, (unsigned long long)j->chunk));
    }
    if (now > f->deadline)
        return fetch_stop(f, snap_fail(SNAP_ETIMEOUT, "%s/%s: fetch of chunk %llu took more than %u ms",
                                       ch->store->url, ch->key, (unsigned long long)j->chunk,
                                       ch->fetch_timeout_ms));
    if (!j->t_first || (atomic_load(&ch->size) == STORE_SIZE_UNKNOWN && f->res.total_size != STORE_SIZE_UNKNOWN)) {
        pthread_mutex_lock(&ch->mu);
        if (!j->t_first)
            j->t_first = now;
        int err = 0;
        if (atomic_load(&ch->size) == STORE_SIZE_UNKNOWN && f->res.total_size != STORE_SIZE_UNKNOWN)
            err = chunker_learn_size_locked(ch, f->res.total_size);
        pthread_mutex_unlock(&ch->mu);
        if (err)
            return fetch_stop(f, err);
    }
    return 0;
}

static int fetch_progress(void *ctx, uint64_t done)
{
    struct fetcher *f = ctx;
    if (fetch_check(f, done))
        return 1;
    if (f->ch->mode == CHUNKER_FULL)
        return 0; /* the old behaviour: nothing is visible before the whole chunk is in */
    int err = fetch_fill(f, f->seg_lo + done);
    return err ? fetch_stop(f, err) : 0;
}

/* No staging (a streaming store, the size known): each delivery goes from the transport's buffer
 * straight into the cache, whole blocks only; the head of a block cut by the delivery's end waits
 * in f->carry (one block) for the rest.  f->filled is where the carried bytes start. */
static int fetch_sink(void *ctx, const uint8_t *p, size_t n)
{
    struct fetcher *f = ctx;
    struct chunker *ch = f->ch;
    if (fetch_check(f, f->last_done + n))
        return f->stop_err;
    struct cache *c = atomic_load(&ch->cache);
    uint64_t size = cache_size(c), upto = f->filled;
    int err = 0;
    if (f->ncarry) {
        uint64_t blk_end = snap_min_u64(upto + ch->bs, size);
        size_t m = (size_t)snap_min_u64(n, blk_end - upto - f->ncarry);
        memcpy(f->carry + f->ncarry, p, m);
        f->ncarry += m;
        p += m;
        n -= m;
        if (upto + f->ncarry == blk_end) {
            err = cache_fill(c, upto, f->ncarry, f->carry, NULL);
            upto = blk_end;
            f->ncarry = 0;
        }
    }
    if (!err && n && !f->ncarry) {
        uint64_t end = upto + n, whole = end >= size ? size : end & ~(uint64_t)(ch->bs - 1);
        if (whole > upto) {
            err = cache_fill(c, upto, whole - upto, p, NULL);
            p += whole - upto;
            n -= (size_t)(whole - upto);
            upto = whole;
        }
        memcpy(f->carry, p, n);
        f->ncarry = n;
    }
    if (err) {
        fetch_stop(f, err);
        return err;
    }
    if (upto > f->filled)
        fetch_advance(f, upto);
    return 0;
}

/* Fold one read's timing into the estimates of the store's speed (ch->mu held). */
static void fetch_estimate_locked(struct chunker *ch, const struct job *j, uint64_t bytes, uint64_t t_end)
{
    if (!j->t_first)
        return;
    uint64_t ttfb = j->t_first - j->t_req;
    ch->est_ttfb_ns = ch->est_ttfb_ns ? (ch->est_ttfb_ns * 3 + ttfb) / 4 : ttfb;
    if (bytes >= (256u << 10) && t_end > j->t_first) {
        double rate = (double)bytes / (double)(t_end - j->t_first);
        ch->est_bytes_per_ns = ch->est_bytes_per_ns > 0 ? (ch->est_bytes_per_ns * 3 + rate) / 4 : rate;
    }
}

/* Read [lo, hi) of the job's chunk into staging and the cache. */
static int fetch_segment(struct fetcher *f, uint64_t lo, uint64_t hi)
{
    struct chunker *ch = f->ch;
    struct job *j = f->job;
    f->seg_lo = lo;
    f->want = hi - lo;
    f->filled = lo;
    f->last_done = 0;
    f->stop_err = 0;
    memset(&f->res, 0, sizeof f->res);
    pthread_mutex_lock(&ch->mu);
    j->seg_lo = lo;
    j->seg_hi = hi;
    j->pos = lo;
    j->t_req = snap_now_ns();
    j->t_first = 0;
    pthread_mutex_unlock(&ch->mu);

    atomic_fetch_add(&ch->stats.store_reads, 1);
    bool streamed = !f->staging; /* see chunker_pool_run: no staging only when the sink can be used */
    f->ncarry = 0;
    int err = streamed ? store_read_stream(ch->store, ch->key, lo, hi - lo, fetch_sink, f, &f->res)
                       : store_read(ch->store, ch->key, lo, hi - lo, f->staging + (lo - f->base), fetch_progress, f,
                                    &f->res);
    if (err && f->stop_err)
        err = snap_fail(f->stop_err, "%s", f->stop_msg); /* our own reason, with its detail */
    uint64_t landed = lo + f->res.bytes;

    pthread_mutex_lock(&ch->mu);
    int serr = 0;
    if (f->res.total_size != STORE_SIZE_UNKNOWN)
        serr = chunker_learn_size_locked(ch, f->res.total_size);
    else if (!err && f->res.bytes < f->want)
        serr = chunker_learn_size_locked(ch, landed); /* bytes < len only at the object's end */
    fetch_estimate_locked(ch, j, f->res.bytes, snap_now_ns());
    pthread_mutex_unlock(&ch->mu);
    if (!err && serr)
        err = serr;
    if (!err && atomic_load(&ch->size) == STORE_SIZE_UNKNOWN) {
        /* A backend that never says the size: ask once. */
        struct store_info info;
        err = store_stat(ch->store, ch->key, &info);
        if (!err) {
            pthread_mutex_lock(&ch->mu);
            err = chunker_learn_size_locked(ch, info.size);
            pthread_mutex_unlock(&ch->mu);
        }
    }
    uint64_t size = atomic_load(&ch->size);
    if (!err && f->res.bytes < f->want && landed != size)
        err = snap_fail(SNAP_ESHORT, "%s/%s: store returned %llu of %llu bytes at offset %llu, before the "
                        "object's end (%llu)", ch->store->url, ch->key, (unsigned long long)f->res.bytes,
                        (unsigned long long)f->want, (unsigned long long)lo, (unsigned long long)size);
    /* What arrived whole is kept even when the read failed (except in full mode, which is all or
     * nothing): the next read only fetches the rest. */
    if (!streamed && (ch->mode != CHUNKER_FULL || !err)) {
        int ferr = fetch_fill(f, landed);
        if (!err)
            err = ferr;
    }
    return err;
}

/* Run a job: its segments in order, clipped to the object once the size is known. */
static int fetch_run(struct fetcher *f)
{
    struct chunker *ch = f->ch;
    struct job *j = f->job;
    f->deadline = snap_now_ns() + (uint64_t)ch->fetch_timeout_ms * 1000000;
    f->base = f->direct ? j->lo : chunker_chunk_lo(ch, j->chunk);
    uint64_t seg[2][2] = {{j->start, j->hi}, {j->lo, j->start}};
    int nseg = ch->mode == CHUNKER_DEMAND && !j->range ? 2 : 1;
    if (nseg == 1) {
        seg[0][0] = j->lo;
        seg[0][1] = j->hi;
    }
    for (int i = 0; i < nseg; i++) {
        uint64_t lo = seg[i][0], hi = seg[i][1], size = atomic_load(&ch->size);
        if (size != STORE_SIZE_UNKNOWN)
            hi = snap_min_u64(hi, size);
        struct cache *c = atomic_load(&ch->cache);
        if (c && lo < hi && !cache_find_absent(c, lo, hi - lo, &lo))
            continue; /* all there already (a range request got it) */
        if (lo >= hi)
            continue;
        if (i == 1) {
            pthread_mutex_lock(&ch->mu);
            j->wrapped = true;
            pthread_mutex_unlock(&ch->mu);
        }
        int err = fetch_segment(f, lo, hi);
        if (err)
            return err;
    }
    return 0;
}

/* The job ended: tell every waiter, free the slot.  ch->mu held. */
static void fetch_finish_locked(struct chunker *ch, struct job *j, int err)
{
    struct cache *c = atomic_load(&ch->cache);
    for (unsigned i = 0; i < ch->nwaiters_hw; i++) {
        struct waiter *w = &ch->waiters[i];
        if (!w->used)
            continue;
        /* The error reaches the waiters whose blocks in this job's range did not all arrive. */
        uint64_t lo = snap_max_u64(w->off, j->lo), hi = snap_min_u64(w->end, j->hi);
        bool missing = lo < hi && (!c || hi > cache_size(c) || !cache_readable(c, lo, hi - lo));
        if (err && missing && !w->err) {
            w->err = err;
            snprintf(w->msg, sizeof w->msg, "%s", j->msg);
        }
        pthread_cond_signal(&w->cv); /* complete, failed, or to re-check what it needs */
    }
    j->state = JOB_FREE;
    pthread_cond_broadcast(&ch->idle_cv);
}

/* Record a job's result and end it (ch->mu held). */
static void fetch_end_locked(struct chunker *ch, struct job *j, int err)
{
    j->err = err;
    j->msg[0] = '\0';
    if (err) {
        atomic_fetch_add(&ch->stats.fetch_errors, 1);
        snprintf(j->msg, sizeof j->msg, "%s", snap_errmsg(err));
    }
    fetch_finish_locked(ch, j, err);
}

void chunker_run_direct(struct fetcher *f)
{
    struct chunker *ch = f->ch;
    struct job *j = f->job;
    f->reader_gone = false;
    int err = fetch_run(f);
    pthread_mutex_lock(&ch->mu);
    /* Stopped because its own reader gave up: not a failure of the store.  Whoever else waited on
     * these blocks is woken by the finish below and makes its own fetch; the reader returns its own
     * cancel or timeout. */
    uint64_t lo = j->lo, hi = j->hi;
    fetch_end_locked(ch, j, f->reader_gone && err == SNAP_ECANCELED ? 0 : err);
    f->job = NULL;
    f->cancel = NULL;
    pool_give_direct(&ch->client, f, &ch->ndirects_used);
    pthread_mutex_unlock(&ch->mu);
    if (!err && ch->dir_backed)
        chunker_hand_over(ch, lo, hi);
}

/* The oldest queued job, or NULL (ch->mu held). */
static struct job *oldest_queued_locked(struct chunker *ch)
{
    struct job *j = NULL;
    for (unsigned i = 0; i < ch->njobs_hw; i++)
        if (ch->jobs[i].state == JOB_QUEUED && (!j || ch->jobs[i].seq < j->seq))
            j = &ch->jobs[i];
    return j;
}

void chunker_pool_run(struct pool_client *c, struct pool_worker *w)
{
    struct chunker *ch = (struct chunker *)((char *)c - offsetof(struct chunker, client));
    struct fetcher *f = pool_worker_fetcher(w);
    pthread_mutex_lock(&ch->mu);
    struct job *j = atomic_load(&ch->closing) ? NULL : oldest_queued_locked(ch);
    if (!j) { /* canceled by evict or close since it was posted */
        pthread_mutex_unlock(&ch->mu);
        return;
    }
    j->state = JOB_RUNNING;
    pthread_mutex_unlock(&ch->mu);

    memset(f, 0, sizeof *f);
    f->ch = ch;
    f->job = j;
    int err = 0;
    /* The thread's buffers, grown once to what this chunker needs: a chunk of staging where the
     * store cannot stream into the cache, else one block to carry. */
    if (ch->streamed ? !(f->carry = pool_worker_carry(w, ch->bs)) : !(f->staging = pool_worker_buf(w, ch->chunk)))
        err = snap_fail(SNAP_ENOMEM, "%s/%s: out of memory for a fetch buffer", ch->store->url, ch->key);
    else
        err = fetch_run(f);

    pthread_mutex_lock(&ch->mu);
    uint64_t lo = j->lo, hi = j->hi;
    fetch_end_locked(ch, j, err);
    f->job = NULL;
    pthread_mutex_unlock(&ch->mu);
    if (!err && ch->dir_backed)
        chunker_hand_over(ch, lo, hi);
}
