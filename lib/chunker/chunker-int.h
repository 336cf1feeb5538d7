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

#define CHUNKER_MSG_MAX 256

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

/* A fetch thread and the buffer its store reads land in, reused only after store_read returned,
 * so no fetch ever writes memory that was given back.  A direct slot is the same without a thread:
 * a reader takes it (under ch->mu) to run one small range request itself, into its small buffer. */
struct fetcher {
    struct chunker *ch;
    pthread_t tid;
    uint8_t *staging;            /* a chunk (fetch thread) or CHUNKER_DIRECT_MAX bytes (direct slot);
                                    NULL: the fetch thread streams into the cache (fetch.c) */
    uint8_t *carry;              /* streaming: the head of a block cut by a delivery (one block) */
    size_t ncarry;
    bool direct;
    bool used;                   /* direct slot taken (under ch->mu) */
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
    uint32_t bs, chunk;
    unsigned fetch_timeout_ms, read_timeout_ms;
    uint32_t demand_window;

    pthread_mutex_t mu;          /* jobs, waiters, estimates, size changes; never held across I/O */
    pthread_cond_t work_cv;      /* fetchers wait for queued jobs */
    pthread_cond_t idle_cv;      /* evict/close wait for jobs and waiters to end; slot waits */
    _Atomic(struct cache *) cache; /* NULL until the size is known, then fixed */
    atomic_uint_fast64_t size;   /* STORE_SIZE_UNKNOWN until learned */
    atomic_bool closing;
    bool evicting;
    uint64_t next_seq;

    struct job *jobs;
    unsigned njobs;
    struct waiter *waiters;
    unsigned nwaiters;
    struct fetcher *fetchers;
    unsigned nfetchers;          /* fetcher slots (each with its staging buffer) */
    unsigned nthreads;           /* of which have a running thread */
    struct fetcher *directs;     /* direct slots */
    unsigned ndirects;

    /* What the store looks like (EWMA), for the demand-first choice; 0 = not measured yet. */
    uint64_t est_ttfb_ns;
    double est_bytes_per_ns;

    struct {
        atomic_uint_fast64_t fetches, range_fetches, direct_reads, store_reads, bytes_fetched, fetch_errors, hits,
            waits, wait_errors;
    } stats;
};

/* fetch.c */
void *chunker_fetcher_main(void *arg);
/* Record the object's size (creating the cache); SNAP_ECHECK if it contradicts a known one.
 * Called with ch->mu held. */
int chunker_learn_size_locked(struct chunker *ch, uint64_t size);
/* Run the direct job a reader took in slot f (ch->mu not held), hand the result to every
 * waiter and give the slot back. */
void chunker_run_direct(struct fetcher *f);
/* Wake the waiters whose ranges are complete.  Called with ch->mu held. */
void chunker_wake_complete_locked(struct chunker *ch);

/* A CLOCK_MONOTONIC deadline in ns as the timespec pthread_cond_timedwait wants. */
static inline struct timespec chunker_abs_ts(uint64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
}

static inline uint64_t chunker_chunk_lo(const struct chunker *ch, uint64_t k) { return k * ch->chunk; }

#endif
