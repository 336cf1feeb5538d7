/* pool.c -- the fetch pool: the fetch threads and direct-read slots every chunker of a process
 * shares (see chunker.h, "Fetch pool").
 *
 * Design note.  A chunker (or a frame chunker) is a client of the pool.  It keeps its own jobs,
 * waiters and cache under its own mutex, exactly as when it had threads of its own; queuing a job
 * posts it to the pool (pool_post: the client's `pending` count goes up and the client joins the
 * ready list).  A pool thread takes the first client on the ready list that runs fewer than its
 * own cap (`max_active`: the chunker's fetcher count) and calls its `run` callback with no pool
 * lock held; the callback takes the client's oldest queued job -- or none, when evict or close
 * canceled it meanwhile -- and runs it to the end.  The client then goes to the tail of the list,
 * so clients with work take turns (round robin per job): a busy chunker with many queued jobs
 * never holds every thread for long, a chunker with one job waits for at most one job end per
 * busier client.  `pending` is at least the client's queued jobs (a canceled job leaves one run
 * that finds nothing), so no job waits for a post that never comes.
 *
 * Lock order: a client's mutex, then the pool's; the pool never calls into a client with its own
 * mutex held.  Detach (chunker close) unlists the client and waits until none of its runs is on
 * a thread; the client has stopped its jobs first, so that wait is one progress report long.
 *
 * Threads start on demand, up to the pool's size, and stay (idle ones sleep on a condition
 * variable).  Each owns the memory its jobs need, grown to the largest asked and kept: a staging
 * buffer (a chunk for stores that cannot stream into the cache; a frame's compressed bytes), the
 * carry block of a streamed fetch, a frame decoder.  So no fetch allocates, and memory is bounded
 * by the pool's size, not by the number of chunkers.  Direct slots (a reader's own small range
 * request) are shared the same way, their buffers allocated with the pool.
 */
#include "chunker/chunker-int.h"

#include "base/err.h"
#include "base/mem.h"
#include "header/header.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct pool_worker {
    struct chunker_pool *pool;
    pthread_t tid;
    struct fetcher f;            /* a chunker job's state while it runs */
    uint8_t *buf;                /* staging, grown to the largest asked */
    size_t cap;
    uint8_t *carry;              /* a streamed fetch's one block */
    size_t carry_cap;
    struct hdr_frame_dec *dec;   /* frames: created at first use */
};

struct chunker_pool {
    pthread_mutex_t mu;
    pthread_cond_t work_cv;      /* threads wait for posted jobs */
    pthread_cond_t idle_cv;      /* detach waits for a client's runs to end */
    unsigned max_threads, nthreads, idle;
    unsigned pending, active;    /* over every client */
    bool stopping;
    struct pool_worker *workers;
    struct pool_client *head, *tail; /* the ready list: clients with pending > 0 */
    struct fetcher *directs;
    unsigned ndirects, directs_used;
    struct {                     /* decoded frames being published (pool_take_scratch) */
        uint8_t *buf;
        size_t cap;
        bool busy;
    } scratch[CHUNKER_POOL_SCRATCH];
};

static void *pool_main(void *arg);

int chunker_pool_new(unsigned threads, unsigned direct_slots, struct chunker_pool **out)
{
    if (threads == 0 || threads > CHUNKER_POOL_THREADS_MAX || direct_slots > CHUNKER_POOL_DIRECT_MAX)
        return snap_fail(SNAP_EUSAGE, "fetch pool: %u threads and %u direct slots (1 to %u threads, at most %u "
                         "slots)", threads, direct_slots, CHUNKER_POOL_THREADS_MAX, CHUNKER_POOL_DIRECT_MAX);
    struct chunker_pool *p = snap_calloc(1, sizeof *p);
    if (p) {
        p->workers = snap_calloc(threads, sizeof *p->workers);
        p->directs = direct_slots ? snap_calloc(direct_slots, sizeof *p->directs) : NULL;
    }
    bool ok = p && p->workers && (!direct_slots || p->directs);
    /* Direct buffers now, so a demand request allocates nothing; pages never touched cost no memory. */
    for (unsigned i = 0; ok && i < direct_slots; i++)
        ok = (p->directs[i].staging = snap_malloc(CHUNKER_DIRECT_MAX)) != NULL;
    if (!ok) {
        if (p) {
            for (unsigned i = 0; p->directs && i < direct_slots; i++)
                snap_free(p->directs[i].staging);
            snap_free(p->workers);
            snap_free(p->directs);
        }
        snap_free(p);
        return snap_fail(SNAP_ENOMEM, "fetch pool: out of memory");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->idle_cv, NULL);
    p->max_threads = threads;
    p->ndirects = direct_slots;
    for (unsigned i = 0; i < direct_slots; i++)
        p->directs[i].direct = true;
    *out = p;
    return 0;
}

void chunker_pool_free(struct chunker_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++) {
        struct pool_worker *w = &p->workers[i];
        pthread_join(w->tid, NULL);
        snap_free(w->buf);
        snap_free(w->carry);
        hdr_frame_dec_free(w->dec);
    }
    for (unsigned i = 0; i < p->ndirects; i++)
        snap_free(p->directs[i].staging);
    for (unsigned i = 0; i < CHUNKER_POOL_SCRATCH; i++)
        snap_free(p->scratch[i].buf);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->idle_cv);
    pthread_mutex_destroy(&p->mu);
    snap_free(p->workers);
    snap_free(p->directs);
    snap_free(p);
}

static struct chunker_pool *g_pool;
static pthread_once_t g_pool_once = PTHREAD_ONCE_INIT;

static void default_pool_init(void)
{
    /* Never freed: its threads serve the process until it exits. */
    if (chunker_pool_new(CHUNKER_POOL_THREADS, CHUNKER_POOL_DIRECT, &g_pool) != 0)
        g_pool = NULL;
}

struct chunker_pool *chunker_pool_default(void)
{
    pthread_once(&g_pool_once, default_pool_init);
    return g_pool;
}

void chunker_pool_stats(struct chunker_pool *p, struct chunker_pool_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = (struct chunker_pool_stats){.threads = p->nthreads, .max_threads = p->max_threads,
                                       .busy = p->active, .queued = p->pending,
                                       .direct_slots = p->ndirects, .directs_used = p->directs_used};
    pthread_mutex_unlock(&p->mu);
}

/* Start one more thread (p->mu held); false when none could be started. */
static bool spawn_locked(struct chunker_pool *p)
{
    if (p->nthreads >= p->max_threads)
        return false;
    struct pool_worker *w = &p->workers[p->nthreads];
    w->pool = p;
    if (pthread_create(&w->tid, NULL, pool_main, w) != 0)
        return false;
    p->nthreads++;
    return true;
}

int pool_attach(struct chunker_pool *p, struct pool_client *c, unsigned max_active,
                void (*run)(struct pool_client *, struct pool_worker *))
{
    memset(c, 0, sizeof *c);
    c->pool = p;
    c->max_active = max_active ? max_active : 1;
    c->run = run;
    pthread_mutex_lock(&p->mu);
    bool ok = p->nthreads > 0 || spawn_locked(p); /* so a post never finds no thread at all */
    pthread_mutex_unlock(&p->mu);
    return ok ? 0 : snap_fail(SNAP_ENOMEM, "fetch pool: cannot start a fetch thread");
}

static void unlist_locked(struct chunker_pool *p, struct pool_client *c)
{
    struct pool_client **pp = &p->head, *prev = NULL;
    while (*pp && *pp != c) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = c->next;
    if (p->tail == c)
        p->tail = prev;
    c->next = NULL;
    c->listed = false;
}

static void append_locked(struct chunker_pool *p, struct pool_client *c)
{
    c->next = NULL;
    c->listed = true;
    if (p->tail)
        p->tail->next = c;
    else
        p->head = c;
    p->tail = c;
}

void pool_post(struct pool_client *c)
{
    struct chunker_pool *p = c->pool;
    pthread_mutex_lock(&p->mu);
    if (!c->detached) {
        c->pending++;
        p->pending++;
        if (!c->listed)
            append_locked(p, c);
        if (p->idle == 0 || p->idle < p->pending)
            spawn_locked(p); /* at the pool's size (or failing) the post waits for a thread */
        pthread_cond_signal(&p->work_cv);
    }
    pthread_mutex_unlock(&p->mu);
}

bool pool_has_free_thread(struct pool_client *c)
{
    struct chunker_pool *p = c->pool;
    pthread_mutex_lock(&p->mu);
    bool free = p->active + p->pending < p->max_threads;
    pthread_mutex_unlock(&p->mu);
    return free;
}

void pool_detach(struct pool_client *c)
{
    struct chunker_pool *p = c->pool;
    pthread_mutex_lock(&p->mu);
    c->detached = true;
    unlist_locked(p, c);
    p->pending -= c->pending;
    c->pending = 0;
    while (c->active)
        pthread_cond_wait(&p->idle_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* The first listed client below its cap; it moves to the tail when it has more (p->mu held). */
static struct pool_client *take_client_locked(struct chunker_pool *p)
{
    for (struct pool_client *c = p->head; c; c = c->next) {
        if (c->active >= c->max_active)
            continue;
        unlist_locked(p, c);
        c->pending--;
        p->pending--;
        c->active++;
        p->active++;
        if (c->pending)
            append_locked(p, c);
        return c;
    }
    return NULL;
}

static void *pool_main(void *arg)
{
    struct pool_worker *w = arg;
    struct chunker_pool *p = w->pool;
    pthread_setname_np(pthread_self(), "snapctl-fetch"); /* so /proc/PID/task tells them apart */
    pthread_mutex_lock(&p->mu);
    while (!p->stopping) {
        struct pool_client *c = take_client_locked(p);
        if (!c) {
            p->idle++;
            pthread_cond_wait(&p->work_cv, &p->mu);
            p->idle--;
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        c->run(c, w);
        pthread_mutex_lock(&p->mu);
        c->active--;
        p->active--;
        if (c->detached)
            pthread_cond_broadcast(&p->idle_cv);
        else if (c->pending)
            pthread_cond_signal(&p->work_cv); /* it may have waited for its cap */
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct fetcher *pool_worker_fetcher(struct pool_worker *w) { return &w->f; }

/* *buf grown to at least n bytes (its old bytes are not kept: nothing is in it between jobs). */
static uint8_t *grow(uint8_t **buf, size_t *cap, size_t n)
{
    if (n > *cap) {
        uint8_t *b = snap_malloc(n);
        if (!b)
            return NULL;
        snap_free(*buf);
        *buf = b;
        *cap = n;
    }
    return *buf;
}

uint8_t *pool_worker_buf(struct pool_worker *w, size_t n) { return grow(&w->buf, &w->cap, n); }
uint8_t *pool_worker_carry(struct pool_worker *w, size_t n) { return grow(&w->carry, &w->carry_cap, n); }

uint8_t *pool_take_scratch(struct pool_client *c, size_t n)
{
    struct chunker_pool *p = c->pool;
    uint8_t *buf = NULL;
    pthread_mutex_lock(&p->mu);
    for (unsigned i = 0; i < CHUNKER_POOL_SCRATCH && !buf; i++) {
        if (p->scratch[i].busy)
            continue;
        /* Grown under the lock: rare (once per slot and larger size), bounded by the slot count. */
        buf = grow(&p->scratch[i].buf, &p->scratch[i].cap, n);
        p->scratch[i].busy = buf != NULL;
    }
    pthread_mutex_unlock(&p->mu);
    return buf;
}

void pool_give_scratch(struct pool_client *c, uint8_t *buf)
{
    struct chunker_pool *p = c->pool;
    pthread_mutex_lock(&p->mu);
    for (unsigned i = 0; i < CHUNKER_POOL_SCRATCH; i++)
        if (p->scratch[i].buf == buf)
            p->scratch[i].busy = false;
    pthread_mutex_unlock(&p->mu);
}

struct hdr_frame_dec *pool_worker_dec(struct pool_worker *w)
{
    if (!w->dec && hdr_frame_dec_new(&w->dec) != 0)
        return NULL;
    return w->dec;
}

struct fetcher *pool_take_direct(struct pool_client *c, unsigned *used, unsigned cap)
{
    struct chunker_pool *p = c->pool;
    struct fetcher *f = NULL;
    pthread_mutex_lock(&p->mu);
    for (unsigned i = 0; i < p->ndirects && !f && *used < cap; i++) {
        struct fetcher *d = &p->directs[i];
        if (d->used)
            continue;
        d->used = true;
        f = d;
        (*used)++;
        p->directs_used++;
    }
    pthread_mutex_unlock(&p->mu);
    return f;
}

unsigned pool_directs_in_use(struct pool_client *c, const unsigned *used)
{
    struct chunker_pool *p = c->pool;
    pthread_mutex_lock(&p->mu);
    unsigned n = *used;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void pool_give_direct(struct pool_client *c, struct fetcher *f, unsigned *used)
{
    struct chunker_pool *p = c->pool;
    pthread_mutex_lock(&p->mu);
    f->used = false;
    f->ch = NULL;
    (*used)--;
    p->directs_used--;
    pthread_mutex_unlock(&p->mu);
}
