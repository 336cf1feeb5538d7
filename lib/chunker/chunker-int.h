/* chunker-int.h -- the chunker's internals, shared by chunker.c (readers, scheduling) and
 * fetch.c (fetch threads).  Not for use outside lib/chunker/. */
#ifndef SNAP_CHUNKER_INT_H
#define SNAP_CHUNKER_INT_H

#include "chunker/chunker.h"
#include "store/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct cache;
struct pool_worker;

#define CHUNKER_MSG_MAX 256
#define CHUNKER_POOL_SCRATCH 4   /* decoded-frame buffers per pool (frames.c) */

/* A chunker's (or frame chunker's) membership in the fetch pool (pool.c).  Fields under the
 * pool's mutex. */
struct pool_client {
    struct chunker_pool *pool;
    void (*run)(struct pool_client *c, struct pool_worker *w); /* run one queued job, if any */
    unsigned max_active;         /* jobs of this client on pool threads at once */
    unsigned pending, active;    /* posted and not yet taken; running */
    bool listed, detached;
    struct pool_client *next;    /* the ready list */
};

/* pool.c.  Lock order: the client's mutex, then the pool's. */
/* Join pool p with at most max_active jobs running at once; starts the pool's first thread. */
int pool_attach(struct chunker_pool *p, struct pool_client *c, unsigned max_active,
                void (*run)(struct pool_client *, struct pool_worker *));
/* One more job was queued: a thread will call c->run once for it. */
void pool_post(struct pool_client *c);
/* Would a job posted now find a thread without waiting for another job to end? */
bool pool_has_free_thread(struct pool_client *c);
/* No more runs; waits for the running ones (stop the client's jobs first). */
void pool_detach(struct pool_client *c);
/* The worker's own state and buffers, grown to the largest asked and kept; NULL: out of memory. */
struct fetcher *pool_worker_fetcher(struct pool_worker *w);
uint8_t *pool_worker_buf(struct pool_worker *w, size_t n);
uint8_t *pool_worker_carry(struct pool_worker *w, size_t n);
struct hdr_frame_dec *pool_worker_dec(struct pool_worker *w);
/* One of the pool's CHUNKER_POOL_SCRATCH buffers of at least n bytes, warm (kept and reused, so
 * its pages are faulted in once), or NULL when all are taken (or out of memory). */
uint8_t *pool_take_scratch(struct pool_client *c, size_t n);
void pool_give_scratch(struct pool_client *c, uint8_t *buf);
/* A direct slot (CHUNKER_DIRECT_MAX buffer) when fewer than cap are *used by the client and one is
 * free, else NULL; counted in *used (under the pool's mutex). */
struct fetcher *pool_take_direct(struct pool_client *c, unsigned *used, unsigned cap);
/* *used (a count pool_take_direct keeps), read under the pool's mutex. */
unsigned pool_directs_in_use(struct pool_client *c, const unsigned *used);
void pool_give_direct(struct pool_client *c, struct fetcher *f, unsigned *used);

enum job_state { JOB_FREE, JOB_QUEUED, JOB_RUNNING };

/* One fetch: a whole chunk (a stream over one or two segments) or a demand range request.
 * Fields are under ch->mu unless marked. */
struct job {
    enum job_state state;
    bool range;                  /* a demand range request */
    bool direct;                 /* ... run by its reader (never queued, never on a fetch thread) */
    uint64_t seq;                /* FIFO order among queued jobs */
    uint64_t chunk;
    uint64_t lo, hi;             /* what it covers: [chunk start, chunk end) or the range; hi may pass
                                    the object's end while the size is unknown */
    uint64_t start;              /* where the stream starts (block-aligned, in [lo, hi)) */
    /* Where the stream is: the segment being read, and the end of what has been filled. */
    uint64_t seg_lo, seg_hi, pos;
    bool wrapped;                /* in the segment before `start` */
    uint64_t t_req, t_first;     /* ns: request sent, first bytes landed (0: not yet) */
    atomic_bool abort;           /* evict/close: stop at the next progress report */
    int err;                     /* result, for the waiters */
    char msg[CHUNKER_MSG_MAX];
};

/* A reader waiting for [off, end).  Under ch->mu. */
struct waiter {
    bool used;
    uint64_t off, end;
    pthread_cond_t cv;
    int err;                     /* set by a failed fetch it depended on */
    char msg[CHUNKER_MSG_MAX];
    struct chunker_cancel *cancel;
};

/* A job's run on a pool thread and the buffer its store reads land in (the thread's own, reused
 * only after store_read returned, so no fetch ever writes memory that was given back).  A direct
 * slot is the same without a thread: a reader takes one of the pool's to run one small range
 * request itself, into the slot's small buffer. */
struct fetcher {
    struct chunker *ch;
    uint8_t *staging;            /* a chunk (fetch thread) or CHUNKER_DIRECT_MAX bytes (direct slot);
                                    NULL: the fetch thread streams into the cache (fetch.c) */
    uint8_t *carry;              /* streaming: the head of a block cut by a delivery (one block) */
    size_t ncarry;
    bool direct;
    bool used;                   /* direct slot taken (under the pool's mutex) */
    /* Direct: its reader's cancel token and deadline; the read stops when the reader gives up. */
    struct chunker_cancel *cancel;
    uint64_t reader_deadline;
    bool reader_gone;
    /* The read in flight (fetch thread only). */
    struct job *job;
    uint64_t base;               /* the object offset of staging[0] */
    uint64_t seg_lo, want, filled, last_done;
    uint64_t deadline;           /* ns: the job's own timeout */
    struct store_read_result res;
    int stop_err;                /* why progress stopped the read, and the detail */
    char stop_msg[CHUNKER_MSG_MAX];
};

struct chunker {
    struct store *store;
    char *key;
    enum chunker_mode mode;
    char *cache_path;
    struct cache_file *cache_file; /* NULL: a file of its own at cache_path */
    uint32_t bs, chunk;
    unsigned fetch_timeout_ms, read_timeout_ms;
    uint32_t demand_window;

    pthread_mutex_t mu;          /* jobs, waiters, estimates, size changes; never held across I/O */
    pthread_cond_t idle_cv;      /* evict/close wait for jobs and waiters to end; slot waits */
    _Atomic(struct cache *) cache; /* NULL until the size is known, then fixed */
    atomic_uint_fast64_t size;   /* STORE_SIZE_UNKNOWN until learned */
    atomic_bool closing;
    bool evicting;
    uint64_t next_seq;

    struct job *jobs;            /* njobs slots, of which the first njobs_hw were ever used (the
                                    others untouched: snap_calloc_lazy) */
    unsigned njobs, njobs_hw;
    struct waiter *waiters;      /* the same: nwaiters slots, nwaiters_hw initialized */
    unsigned nwaiters, nwaiters_hw;
    bool streamed;               /* fetches go from the transport straight into the cache (no staging) */
    bool dir_backed;             /* the store is a chunk cache: whole fetched chunks are handed over to
                                    its directory and dropped from the cache here (chunker.c) */
    unsigned nfetchers;          /* jobs on pool threads at once (the pool client's cap) */
    unsigned ndirects;           /* direct slots it may hold at once */
    unsigned ndirects_used;      /* under the pool's mutex */
    struct pool_client client;

    /* What the store looks like (EWMA), for the demand-first choice; 0 = not measured yet. */
    uint64_t est_ttfb_ns;
    double est_bytes_per_ns;

    struct {
        atomic_uint_fast64_t fetches, range_fetches, direct_reads, store_reads, bytes_fetched, fetch_errors, hits,
            waits, wait_errors, handed_over;
    } stats;
};

/* fetch.c */
/* The pool client's run: take the oldest queued job and run it on worker w. */
void chunker_pool_run(struct pool_client *c, struct pool_worker *w);
/* Record the object's size (creating the cache); SNAP_ECHECK if it contradicts a known one.
 * Called with ch->mu held. */
int chunker_learn_size_locked(struct chunker *ch, uint64_t size);
/* Run the direct job a reader took in slot f (ch->mu not held), hand the result to every
 * waiter and give the slot back. */
void chunker_run_direct(struct fetcher *f);
/* After a fetch of [lo, hi) succeeded (ch->mu not held): the chunks holding it that a chunk-cache
 * store now has whole are dropped from this chunker's cache (chunker.c, "Chunk directory"). */
void chunker_hand_over(struct chunker *ch, uint64_t lo, uint64_t hi);
/* Wake the waiters whose ranges are complete.  Called with ch->mu held. */
void chunker_wake_complete_locked(struct chunker *ch);

/* A CLOCK_MONOTONIC deadline in ns as the timespec pthread_cond_timedwait wants. */
static inline struct timespec chunker_abs_ts(uint64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
}

static inline uint64_t chunker_chunk_lo(const struct chunker *ch, uint64_t k) { return k * ch->chunk; }

#endif
